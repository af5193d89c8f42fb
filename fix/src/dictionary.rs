//! The FIX 4.4 data dictionary the acceptor checks every received message against: which tag
//! numbers exist at all, which the standard header and trailer carry, and which each MsgType
//! the venue accepts may carry in its body. A message that breaks it gets a session Reject
//! (35=3) naming the tag, as QuickFIX does with a FIX44 dictionary and unknown fields not
//! allowed.
//!
//! The facts (tag numbers, header, trailer, message bodies with their components and repeating
//! groups flattened) follow the FIX 4.4 specification (Volume 6, data dictionary; the same as
//! QuickFIX's FIX44.xml).
//!
//! Repeating groups: the groups the venue uses are described ([`Group`]: count tag, delimiter
//! tag, member tags, per MsgType since a group's delimiter can differ between messages) and
//! their structure is checked: an entry starts with its delimiter, a member tag appears at most
//! once per entry and only inside its group, and the number of entries equals the count.
//! Members of a MsgType's groups are the only tags the codec lets repeat in it ([`repeatable`]). Groups not
//! described (NoAllocs, NoUnderlyings, ...) are allowed as flat tags, so a second entry of one
//! is still a duplicate tag (373=13).
//!
//! Cost: every set is a bitset over the tag numbers (FIX 4.4's, then a small window of
//! venue-defined ones), built at compile time. Checking a message is a few bit tests per field:
//! no allocation, no hashing, no search.

use thiserror::Error;

use crate::codec::{tag, Message};

/// Tag numbers below this map one-to-one onto bits: FIX 4.4 defines tags 1 to 956.
const FIX_TAGS_END: u32 = 1024;
/// First tag of the venue's window in the user-defined range (5000-9999).
const VENUE_TAG_FIRST: u32 = 5100;
/// Tags in the venue's window: `VENUE_TAG_FIRST..VENUE_TAG_FIRST + VENUE_TAGS_MAX`.
const VENUE_TAGS_MAX: u32 = 64;
/// Bits in a [`TagSet`].
const SLOTS: usize = (FIX_TAGS_END + VENUE_TAGS_MAX) as usize;
const WORDS: usize = SLOTS.div_ceil(64);

/// Tags FIX 4.4 defines, as inclusive ranges. The gaps are numbers FIX 4.4 no longer uses
/// (retired in 4.3 or 4.4, e.g. 20 ExecTransType, 47 Rule80A, 76 ExecBroker, 173-187 the old
/// settlement instructions, 204 CustomerOrFirm, 439/440 ClearingFirm/ClearingAccount) or never
/// assigned (101, 261): a FIX 4.4 engine rejects them as invalid tag numbers.
const FIX44_TAG_RANGES: &[(u32, u32)] = &[
    (1, 19),
    (21, 23),
    (25, 45),
    (48, 50),
    (52, 75),
    (77, 85),
    (87, 91),
    (93, 100),
    (102, 104),
    (106, 108),
    (110, 124),
    (126, 165),
    (167, 172),
    (188, 203),
    (206, 218),
    (220, 260),
    (262, 313),
    (315, 318),
    (320, 369),
    (371, 438),
    (441, 448),
    (451, 464),
    (466, 652),
    (654, 684),
    (686, 808),
    (810, 830),
    (832, 956),
];

/// Tags the venue defines in the user-defined range: its AdminRequest/AdminResponse fields.
const VENUE_TAGS: &[u32] =
    &[tag::ADMIN_REQ_ID, tag::ADMIN_ACTION, tag::ADMIN_LIMITS, tag::ADMIN_STATUS, tag::ADMIN_DATA];

// StandardHeader and StandardTrailer.

/// StandardHeader, with the NoHops group (627: 628, 629, 630).
const HEADER_TAGS: &[u32] = &[
    8, 9, 35, 49, 56, 115, 128, 90, 91, 34, 50, 142, 57, 143, 116, 144, 129, 145, 43, 97, 52, 122, 212, 213,
    347, 369, 627, 628, 629, 630,
];
/// StandardTrailer: SignatureLength, Signature, CheckSum.
const TRAILER_TAGS: &[u32] = &[93, 89, 10];

// Components, flattened with their repeating groups (count tag first).

/// Parties: NoPartyIDs (453: 448, 447, 452) with PtysSubGrp (802: 523, 803).
const PARTIES: &[u32] = &[453, 448, 447, 452, 802, 523, 803];
/// PreAllocGrp: NoAllocs (78: 79, 661, 736, 467, 80) with NestedParties (539: 524, 525, 538)
/// and NstdPtysSubGrp (804: 545, 805).
const PRE_ALLOC_GRP: &[u32] = &[78, 79, 661, 736, 467, 539, 524, 525, 538, 804, 545, 805, 80];
/// TrdgSesGrp: NoTradingSessions (386: 336, 625).
const TRDG_SES_GRP: &[u32] = &[386, 336, 625];
/// Instrument, with SecAltIDGrp (454: 455, 456) and EvntGrp (864: 865-868).
const INSTRUMENT: &[u32] = &[
    55, 65, 48, 22, 454, 455, 456, 460, 461, 167, 762, 200, 541, 201, 224, 225, 239, 226, 227, 228, 255, 543,
    470, 471, 472, 240, 202, 947, 206, 231, 223, 207, 106, 348, 349, 107, 350, 351, 691, 667, 875, 876, 864,
    865, 866, 867, 868, 873, 874,
];
/// FinancingDetails.
const FINANCING_DETAILS: &[u32] = &[913, 914, 915, 918, 788, 916, 917, 919, 898];
/// UndInstrmtGrp: NoUnderlyings (711) of UnderlyingInstrument, with UndSecAltIDGrp (457: 458,
/// 459) and UnderlyingStipulations (887: 888, 889).
const UND_INSTRMT_GRP: &[u32] = &[
    711, 311, 312, 309, 305, 457, 458, 459, 462, 463, 310, 763, 313, 542, 315, 241, 242, 243, 244, 245, 246,
    256, 595, 592, 593, 594, 247, 316, 941, 317, 436, 435, 308, 306, 362, 363, 307, 364, 365, 877, 878, 318,
    879, 810, 882, 883, 884, 885, 886, 887, 888, 889,
];
/// Stipulations: NoStipulations (232: 233, 234).
const STIPULATIONS: &[u32] = &[232, 233, 234];
/// OrderQtyData.
const ORDER_QTY_DATA: &[u32] = &[38, 152, 516, 468, 469];
/// SpreadOrBenchmarkCurveData.
const SPREAD_OR_BENCHMARK_CURVE_DATA: &[u32] = &[218, 220, 221, 222, 662, 663, 699, 761];
/// YieldData.
const YIELD_DATA: &[u32] = &[235, 236, 701, 696, 697, 698];
/// CommissionData.
const COMMISSION_DATA: &[u32] = &[12, 13, 479, 497];
/// PegInstructions.
const PEG_INSTRUCTIONS: &[u32] = &[211, 835, 836, 837, 838, 840];
/// DiscretionInstructions.
const DISCRETION_INSTRUCTIONS: &[u32] = &[388, 389, 841, 842, 843, 844, 846];

// Repeating groups the venue describes (FIX 4.4 names).

/// A repeating group: `count` (NumInGroup) says how many entries follow; each entry starts
/// with `delimiter` and then carries `members` (the delimiter among them) at most once each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Group {
    /// The NumInGroup tag (e.g. 268 NoMDEntries).
    pub count: u32,
    /// The first tag of every entry.
    pub delimiter: u32,
    /// Every tag an entry may carry, the delimiter first; a member may itself be the count tag
    /// of a nested group (described in the same table).
    pub members: &'static [u32],
}

impl Group {
    /// The position of `tag` among the members, if it is one.
    #[inline]
    pub fn member_index(&self, tag: u32) -> Option<usize> {
        self.members.iter().position(|&m| m == tag)
    }
}

/// Members an entry may carry at most: the per-entry duplicate check is a `u64` bitmask.
const GROUP_MEMBERS_MAX: usize = 64;
/// Nesting depth the checker follows (Parties → PtysSubGrp is 2).
pub const GROUP_DEPTH_MAX: usize = 4;

/// NoPartyIDs (453): Parties, with PtysSubGrp nested.
pub const NO_PARTY_IDS: Group = Group { count: 453, delimiter: 448, members: &[448, 447, 452, 802] };
/// NoPartySubIDs (802), nested in NoPartyIDs.
pub const NO_PARTY_SUB_IDS: Group = Group { count: 802, delimiter: 523, members: &[523, 803] };
/// NoMsgTypes (384) in Logon.
pub const NO_MSG_TYPES: Group = Group { count: 384, delimiter: 372, members: &[372, 385] };
/// NoMDEntryTypes (267) in MarketDataRequest.
pub const NO_MD_ENTRY_TYPES: Group = Group { count: 267, delimiter: 269, members: &[269] };
/// The Instrument fields the venue reads in a NoRelatedSym entry (Symbol first).
const RELATED_SYM_MEMBERS: &[u32] = &[55, 65, 48, 22, 460, 461, 167, 207, 106, 107];
/// NoRelatedSym (146) in MarketDataRequest: one entry per symbol.
pub const NO_RELATED_SYM: Group = Group { count: 146, delimiter: 55, members: RELATED_SYM_MEMBERS };
/// The entry fields of MarketDataSnapshotFullRefresh's and MarketDataIncrementalRefresh's
/// NoMDEntries (268) the venue writes or a peer may send, plus 83 RptSeq (FIX 4.4 has it in
/// incremental entries only; a peer may put it in snapshot entries, the venue puts it at the top
/// of a snapshot as FIX 5.0 does, docs/fix.md).
const MD_ENTRY_MEMBERS: &[u32] = &[
    269, 279, 278, 280, 55, 48, 22, 270, 15, 271, 272, 273, 274, 275, 336, 625, 326, 276, 277, 282, 283, 284,
    286, 59, 432, 126, 110, 18, 287, 37, 299, 288, 289, 346, 290, 546, 811, 451, 58, 83, 285,
];
/// NoMDEntries (268) in a snapshot (W): entries start with MDEntryType (269).
pub const NO_MD_ENTRIES_SNAPSHOT: Group = Group {
    count: 268,
    delimiter: 269,
    members: &[
        269, 278, 280, 55, 48, 22, 270, 15, 271, 272, 273, 274, 275, 336, 625, 326, 276, 277, 282, 283, 284,
        286, 59, 432, 126, 110, 18, 287, 37, 299, 288, 289, 346, 290, 546, 811, 451, 58, 83, 285,
    ],
};
/// NoMDEntries (268) in an incremental refresh (X): entries start with MDUpdateAction (279).
pub const NO_MD_ENTRIES_INCREMENTAL: Group = Group {
    count: 268,
    delimiter: 279,
    members: &[
        279, 269, 278, 280, 55, 48, 22, 270, 15, 271, 272, 273, 274, 275, 336, 625, 326, 276, 277, 282, 283,
        284, 286, 59, 432, 126, 110, 18, 287, 37, 299, 288, 289, 346, 290, 546, 811, 451, 58, 83, 285,
    ],
};
/// NoAltMDSource (816) in MarketDataRequestReject.
pub const NO_ALT_MD_SOURCE: Group = Group { count: 816, delimiter: 817, members: &[817] };
/// NoLinesOfText (33) in News.
pub const NO_LINES_OF_TEXT: Group = Group { count: 33, delimiter: 58, members: &[58, 354, 355] };
/// NoRoutingIDs (215) in News.
pub const NO_ROUTING_IDS: Group = Group { count: 215, delimiter: 216, members: &[216, 217] };

/// Every described group, for the repeatable-tag set and the build-time checks.
const ALL_GROUPS: &[Group] = &[
    NO_PARTY_IDS,
    NO_PARTY_SUB_IDS,
    NO_MSG_TYPES,
    NO_MD_ENTRY_TYPES,
    NO_RELATED_SYM,
    NO_MD_ENTRIES_SNAPSHOT,
    NO_MD_ENTRIES_INCREMENTAL,
    NO_ALT_MD_SOURCE,
    NO_LINES_OF_TEXT,
    NO_ROUTING_IDS,
];

const ORDER_GROUPS: &[Group] = &[NO_PARTY_IDS, NO_PARTY_SUB_IDS];
const LOGON_GROUPS: &[Group] = &[NO_MSG_TYPES];
const MD_REQUEST_GROUPS: &[Group] = &[NO_MD_ENTRY_TYPES, NO_RELATED_SYM];
const MD_SNAPSHOT_GROUPS: &[Group] = &[NO_MD_ENTRIES_SNAPSHOT];
const MD_INCREMENTAL_GROUPS: &[Group] = &[NO_MD_ENTRIES_INCREMENTAL];
const MD_REJECT_GROUPS: &[Group] = &[NO_ALT_MD_SOURCE];
const NEWS_GROUPS: &[Group] = &[NO_ROUTING_IDS, NO_LINES_OF_TEXT];

/// The described groups `msg_type` carries (empty for the others).
pub fn groups(msg_type: &[u8]) -> &'static [Group] {
    match msg_type {
        b"D" | b"F" | b"G" | b"H" | b"AF" => ORDER_GROUPS,
        b"A" => LOGON_GROUPS,
        b"V" => MD_REQUEST_GROUPS,
        b"W" => MD_SNAPSHOT_GROUPS,
        b"X" => MD_INCREMENTAL_GROUPS,
        b"Y" => MD_REJECT_GROUPS,
        b"B" => NEWS_GROUPS,
        _ => &[],
    }
}

/// Tags `msg_type` carries only inside one of its groups: one of them outside is misplaced.
fn group_only(msg_type: &[u8]) -> &'static TagSet {
    const ORDER: TagSet = TagSet::of(&[NO_PARTY_IDS.members, NO_PARTY_SUB_IDS.members]);
    const LOGON: TagSet = TagSet::of(&[NO_MSG_TYPES.members]);
    const MD_REQUEST: TagSet = TagSet::of(&[NO_MD_ENTRY_TYPES.members, NO_RELATED_SYM.members]);
    // A snapshot names its instrument at the top as well as in entries, and may carry its
    // RptSeq (83) at the top, where FIX 5.0 puts it (the venue does: docs/fix.md).
    const MD_SNAPSHOT: TagSet = TagSet::of(&[&[
        269, 278, 280, 270, 15, 271, 272, 273, 274, 275, 336, 625, 326, 276, 277, 282, 283, 284, 286, 59,
        432, 126, 110, 18, 287, 37, 299, 288, 289, 346, 290, 546, 811, 285,
    ]]);
    const MD_INCREMENTAL: TagSet = TagSet::of(&[NO_MD_ENTRIES_INCREMENTAL.members]);
    const MD_REJECT: TagSet = TagSet::of(&[NO_ALT_MD_SOURCE.members]);
    const NEWS: TagSet = TagSet::of(&[NO_LINES_OF_TEXT.members, NO_ROUTING_IDS.members]);
    match msg_type {
        b"D" | b"F" | b"G" | b"H" | b"AF" => &ORDER,
        b"A" => &LOGON,
        b"V" => &MD_REQUEST,
        b"W" => &MD_SNAPSHOT,
        b"X" => &MD_INCREMENTAL,
        b"Y" => &MD_REJECT,
        b"B" => &NEWS,
        _ => &TagSet::EMPTY,
    }
}

/// The described group of `msg_type` whose count tag is `count`.
pub fn group(msg_type: &[u8], count: u32) -> Option<&'static Group> {
    groups(msg_type).iter().find(|g| g.count == count)
}

/// The members of `groups` (with their nested groups' members, which are in the same list).
const fn members_of(groups: &[Group]) -> TagSet {
    let mut set = TagSet::EMPTY;
    let mut g = 0;
    while g < groups.len() {
        let mut m = 0;
        while m < groups[g].members.len() {
            set.insert(groups[g].members[m]);
            m += 1;
        }
        g += 1;
    }
    set
}

/// [`members_of`] and the count tags: what [`check`] looks at with the group machinery.
const fn group_tags_of(groups: &[Group]) -> TagSet {
    let mut set = members_of(groups);
    let mut g = 0;
    while g < groups.len() {
        set.insert(groups[g].count);
        g += 1;
    }
    set
}

/// The tags that may appear more than once in a message of `msg_type`: the members of its
/// described groups. The codec's duplicate check skips them; [`check`] then checks them entry
/// by entry. Any other tag twice is a duplicate (373=13) found by the codec.
pub fn repeatable(msg_type: &[u8]) -> &'static TagSet {
    const ORDER: TagSet = members_of(ORDER_GROUPS);
    const LOGON: TagSet = members_of(LOGON_GROUPS);
    const MD_REQUEST: TagSet = members_of(MD_REQUEST_GROUPS);
    const MD_SNAPSHOT: TagSet = members_of(MD_SNAPSHOT_GROUPS);
    const MD_INCREMENTAL: TagSet = members_of(MD_INCREMENTAL_GROUPS);
    const MD_REJECT: TagSet = members_of(MD_REJECT_GROUPS);
    const NEWS: TagSet = members_of(NEWS_GROUPS);
    match msg_type {
        b"D" | b"F" | b"G" | b"H" | b"AF" => &ORDER,
        b"A" => &LOGON,
        b"V" => &MD_REQUEST,
        b"W" => &MD_SNAPSHOT,
        b"X" => &MD_INCREMENTAL,
        b"Y" => &MD_REJECT,
        b"B" => &NEWS,
        _ => &TagSet::EMPTY,
    }
}

/// The repeatable tags and count tags of a MsgType, and the range they lie in (so most fields
/// are passed over with two comparisons).
struct GroupTags {
    set: TagSet,
    low: u32,
    high: u32,
}

impl GroupTags {
    const fn of(groups: &[Group]) -> GroupTags {
        let set = group_tags_of(groups);
        let (mut low, mut high) = (u32::MAX, 0);
        let mut g = 0;
        while g < groups.len() {
            let group = &groups[g];
            if group.count < low {
                low = group.count;
            }
            if group.count > high {
                high = group.count;
            }
            let mut m = 0;
            while m < group.members.len() {
                if group.members[m] < low {
                    low = group.members[m];
                }
                if group.members[m] > high {
                    high = group.members[m];
                }
                m += 1;
            }
            g += 1;
        }
        GroupTags { set, low, high }
    }

    #[inline]
    fn contains(&self, tag: u32) -> bool {
        tag >= self.low && tag <= self.high && self.set.contains(tag)
    }
}

/// The repeatable tags and count tags of `msg_type`: the only fields [`check`] has to look at
/// with the group machinery while no group is open.
fn group_tags(msg_type: &[u8]) -> &'static GroupTags {
    const ORDER: GroupTags = GroupTags::of(ORDER_GROUPS);
    const LOGON: GroupTags = GroupTags::of(LOGON_GROUPS);
    const MD_REQUEST: GroupTags = GroupTags::of(MD_REQUEST_GROUPS);
    const MD_SNAPSHOT: GroupTags = GroupTags::of(MD_SNAPSHOT_GROUPS);
    const MD_INCREMENTAL: GroupTags = GroupTags::of(MD_INCREMENTAL_GROUPS);
    const MD_REJECT: GroupTags = GroupTags::of(MD_REJECT_GROUPS);
    const NEWS: GroupTags = GroupTags::of(NEWS_GROUPS);
    const NONE: GroupTags = GroupTags::of(&[]);
    match msg_type {
        b"D" | b"F" | b"G" | b"H" | b"AF" => &ORDER,
        b"A" => &LOGON,
        b"V" => &MD_REQUEST,
        b"W" => &MD_SNAPSHOT,
        b"X" => &MD_INCREMENTAL,
        b"Y" => &MD_REJECT,
        b"B" => &NEWS,
        _ => &NONE,
    }
}

// Message bodies: each message's own fields, then its components.

const HEARTBEAT: TagSet = TagSet::of(&[&[112]]);
const TEST_REQUEST: TagSet = TagSet::of(&[&[112]]);
const RESEND_REQUEST: TagSet = TagSet::of(&[&[7, 16]]);
const REJECT: TagSet = TagSet::of(&[&[45, 371, 372, 373, 58, 354, 355]]);
const SEQUENCE_RESET: TagSet = TagSet::of(&[&[123, 36]]);
const LOGOUT: TagSet = TagSet::of(&[&[58, 354, 355]]);
/// Logon, with NoMsgTypes (384: 372, 385).
const LOGON: TagSet = TagSet::of(&[&[98, 108, 95, 96, 141, 789, 383, 384, 372, 385, 464, 553, 554]]);
const NEW_ORDER_SINGLE: TagSet = TagSet::of(&[
    &[
        11, 526, 583, 229, 75, 1, 660, 581, 589, 590, 591, 70, 63, 64, 544, 635, 21, 18, 110, 111, 100, 81,
        140, 54, 114, 60, 854, 40, 423, 44, 99, 15, 376, 377, 23, 117, 59, 168, 432, 126, 427, 528, 529, 582,
        121, 120, 775, 58, 354, 355, 193, 192, 640, 77, 203, 210, 847, 848, 849, 480, 481, 513, 494,
    ],
    PARTIES,
    PRE_ALLOC_GRP,
    TRDG_SES_GRP,
    INSTRUMENT,
    FINANCING_DETAILS,
    UND_INSTRMT_GRP,
    STIPULATIONS,
    ORDER_QTY_DATA,
    SPREAD_OR_BENCHMARK_CURVE_DATA,
    YIELD_DATA,
    COMMISSION_DATA,
    PEG_INSTRUCTIONS,
    DISCRETION_INSTRUCTIONS,
]);
const ORDER_CANCEL_REQUEST: TagSet = TagSet::of(&[
    &[41, 37, 11, 526, 583, 66, 586, 1, 660, 581, 54, 60, 376, 58, 354, 355],
    PARTIES,
    INSTRUMENT,
    FINANCING_DETAILS,
    UND_INSTRMT_GRP,
    ORDER_QTY_DATA,
]);
const ORDER_CANCEL_REPLACE_REQUEST: TagSet = TagSet::of(&[
    &[
        37, 229, 75, 41, 11, 526, 583, 66, 586, 1, 660, 581, 589, 590, 591, 70, 63, 64, 544, 635, 21, 18,
        110, 111, 100, 54, 60, 854, 40, 423, 44, 99, 847, 848, 849, 376, 377, 15, 59, 168, 432, 126, 427,
        528, 529, 582, 121, 120, 775, 58, 354, 355, 193, 192, 640, 77, 203, 210, 114, 480, 481, 513, 494,
    ],
    PARTIES,
    PRE_ALLOC_GRP,
    TRDG_SES_GRP,
    INSTRUMENT,
    FINANCING_DETAILS,
    UND_INSTRMT_GRP,
    ORDER_QTY_DATA,
    SPREAD_OR_BENCHMARK_CURVE_DATA,
    YIELD_DATA,
    PEG_INSTRUCTIONS,
    DISCRETION_INSTRUCTIONS,
    COMMISSION_DATA,
]);
const ORDER_STATUS_REQUEST: TagSet = TagSet::of(&[
    &[37, 11, 526, 198, 790, 1, 660, 581, 54],
    PARTIES,
    INSTRUMENT,
    FINANCING_DETAILS,
    UND_INSTRMT_GRP,
]);
const ORDER_MASS_STATUS_REQUEST: TagSet =
    TagSet::of(&[&[584, 585, 1, 660, 581, 336, 625, 54], PARTIES, INSTRUMENT, UND_INSTRMT_GRP]);
const ORDER_MASS_CANCEL_REQUEST: TagSet =
    TagSet::of(&[&[11, 526, 530, 336, 625, 54, 60, 58, 354, 355], INSTRUMENT, UND_INSTRMT_GRP]);
/// The venue's AdminRequest (U1): the account it acts on and the admin fields.
const ADMIN_REQUEST: TagSet =
    TagSet::of(&[&[tag::ACCOUNT, tag::ADMIN_REQ_ID, tag::ADMIN_ACTION, tag::ADMIN_LIMITS, tag::SYMBOL]]);

/// MarketDataRequest: its own fields, NoMDEntryTypes, NoRelatedSym (the Instrument fields the
/// venue reads), NoTradingSessions.
const MARKET_DATA_REQUEST: TagSet = TagSet::of(&[
    &[262, 263, 264, 265, 266, 286, 815, 812, 267, 269, 146, 386, 336, 625],
    RELATED_SYM_MEMBERS,
]);
/// MarketDataSnapshotFullRefresh: MDReqID, Instrument, NoMDEntries, and 83 RptSeq.
// 893 LastFragment: a snapshot too large for one message is sent in fragments (docs/fix.md).
const MARKET_DATA_SNAPSHOT: TagSet =
    TagSet::of(&[&[262, 291, 292, 451, 813, 268, 893], INSTRUMENT, MD_ENTRY_MEMBERS]);
/// MarketDataIncrementalRefresh: MDReqID, NoMDEntries (with Instrument fields per entry).
const MARKET_DATA_INCREMENTAL: TagSet = TagSet::of(&[&[262, 813, 268], INSTRUMENT, MD_ENTRY_MEMBERS]);
/// MarketDataRequestReject: MDReqID, MDReqRejReason, NoAltMDSource, Text.
const MARKET_DATA_REQUEST_REJECT: TagSet = TagSet::of(&[&[262, 281, 816, 817, 58, 354, 355]]);
/// SecurityStatus (the venue sends it on a halt or resume): SecurityStatusReqID, Instrument,
/// Currency, TradingSessionID(s), UnsolicitedIndicator, SecurityTradingStatus, FinancialStatus,
/// CorporateAction, HaltReason, InViewOfCommon, DueToRelated, Buy/SellVolume, High/LowPx, LastPx,
/// TransactTime, Adjustment, Text.
const SECURITY_STATUS: TagSet = TagSet::of(&[
    &[324, 15, 336, 625, 325, 326, 291, 292, 327, 328, 329, 330, 331, 332, 333, 31, 60, 334, 58, 354, 355],
    INSTRUMENT,
]);
/// News: OrigTime, Urgency, Headline, NoRoutingIDs, NoLinesOfText, URLLink, RawData.
const NEWS: TagSet = TagSet::of(&[&[42, 61, 148, 358, 359, 215, 216, 217, 33, 58, 354, 355, 149, 95, 96]]);

const DEFINED: TagSet = TagSet::fix44_and(VENUE_TAGS);
const HEADER: TagSet = TagSet::of(&[HEADER_TAGS]);
const TRAILER: TagSet = TagSet::of(&[TRAILER_TAGS]);

/// Every checked message: its body's tags are defined, and none is also a header or trailer
/// tag (which would make the order check ambiguous).
const CHECKED: &[TagSet] = &[
    HEARTBEAT,
    TEST_REQUEST,
    RESEND_REQUEST,
    REJECT,
    SEQUENCE_RESET,
    LOGOUT,
    LOGON,
    NEW_ORDER_SINGLE,
    ORDER_CANCEL_REQUEST,
    ORDER_CANCEL_REPLACE_REQUEST,
    ORDER_STATUS_REQUEST,
    ORDER_MASS_STATUS_REQUEST,
    ORDER_MASS_CANCEL_REQUEST,
    ADMIN_REQUEST,
    MARKET_DATA_REQUEST,
    MARKET_DATA_SNAPSHOT,
    MARKET_DATA_INCREMENTAL,
    MARKET_DATA_REQUEST_REJECT,
    SECURITY_STATUS,
    NEWS,
];

const _: () = {
    // Every described group: members within the dictionary, few enough for the per-entry
    // bitmask, delimiter first.
    let mut g = 0;
    while g < ALL_GROUPS.len() {
        let group = &ALL_GROUPS[g];
        assert!(group.members.len() <= GROUP_MEMBERS_MAX && !group.members.is_empty());
        assert!(group.members[0] == group.delimiter);
        assert!(TagSet::of(&[group.members]).is_subset(&DEFINED));
        g += 1;
    }
    assert!(FIX44_TAG_RANGES[FIX44_TAG_RANGES.len() - 1].1 < FIX_TAGS_END);
    assert!(FIX_TAGS_END <= VENUE_TAG_FIRST);
    assert!(HEADER.is_subset(&DEFINED) && TRAILER.is_subset(&DEFINED) && HEADER.is_disjoint(&TRAILER));
    let mut i = 0;
    while i < CHECKED.len() {
        assert!(CHECKED[i].is_subset(&DEFINED));
        assert!(CHECKED[i].is_disjoint(&HEADER) && CHECKED[i].is_disjoint(&TRAILER));
        i += 1;
    }
};

/// A set of tag numbers as a bitset: FIX 4.4's tags map to bits `0..FIX_TAGS_END`, the venue's
/// window after them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TagSet {
    words: [u64; WORDS],
}

impl TagSet {
    /// The bit for `tag`, if the set can hold it.
    const fn slot(tag: u32) -> Option<usize> {
        if tag < FIX_TAGS_END {
            Some(tag as usize)
        } else if tag >= VENUE_TAG_FIRST && tag - VENUE_TAG_FIRST < VENUE_TAGS_MAX {
            Some((FIX_TAGS_END + (tag - VENUE_TAG_FIRST)) as usize)
        } else {
            None
        }
    }

    /// The empty set.
    pub const EMPTY: TagSet = TagSet { words: [0; WORDS] };

    const fn insert(&mut self, tag: u32) {
        let Some(slot) = TagSet::slot(tag) else { panic!("tag outside the dictionary's range") };
        self.words[slot / 64] |= 1 << (slot % 64);
    }

    /// The union of `parts` (evaluated at compile time: a tag out of range fails the build).
    const fn of(parts: &[&[u32]]) -> TagSet {
        let mut set = TagSet::EMPTY;
        let mut p = 0;
        while p < parts.len() {
            let mut i = 0;
            while i < parts[p].len() {
                set.insert(parts[p][i]);
                i += 1;
            }
            p += 1;
        }
        set
    }

    /// FIX 4.4's tags and `venue`'s.
    const fn fix44_and(venue: &[u32]) -> TagSet {
        let mut set = TagSet::of(&[venue]);
        let mut r = 0;
        while r < FIX44_TAG_RANGES.len() {
            let (first, last) = FIX44_TAG_RANGES[r];
            let mut t = first;
            while t <= last {
                set.insert(t);
                t += 1;
            }
            r += 1;
        }
        set
    }

    const fn is_subset(&self, of: &TagSet) -> bool {
        let mut w = 0;
        while w < WORDS {
            if self.words[w] & !of.words[w] != 0 {
                return false;
            }
            w += 1;
        }
        true
    }

    const fn is_disjoint(&self, other: &TagSet) -> bool {
        let mut w = 0;
        while w < WORDS {
            if self.words[w] & other.words[w] != 0 {
                return false;
            }
            w += 1;
        }
        true
    }

    /// True when `tag` is in the set.
    #[inline]
    pub fn contains(&self, tag: u32) -> bool {
        match TagSet::slot(tag) {
            Some(slot) => self.words[slot / 64] & (1 << (slot % 64)) != 0,
            None => false,
        }
    }
}

/// Why a message breaks the dictionary; each maps to a SessionRejectReason (373).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum FieldViolation {
    /// Neither FIX 4.4 nor the venue defines the tag.
    #[error("Invalid tag number: {0}")]
    UndefinedTag(u32),
    /// A defined tag that this MsgType does not carry.
    #[error("Tag not defined for this message type: {0}")]
    NotInMessage(u32),
    /// A header tag after a body tag, or a body tag after a trailer tag.
    #[error("Tag specified out of required order: {0}")]
    OutOfOrder(u32),
    /// A tag twice at the top level, or twice in one group entry.
    #[error("Tag appears more than once: {0}")]
    Duplicate(u32),
    /// A group member before its entry's delimiter, or outside its group.
    #[error("Repeating group fields out of order: {0}")]
    GroupOrder(u32),
    /// A group's NumInGroup (the tag named) is not a number, or not the number of entries.
    #[error("Incorrect NumInGroup count for repeating group: {0}")]
    GroupCount(u32),
}

impl FieldViolation {
    /// SessionRejectReason (373).
    pub fn reject_reason(&self) -> u32 {
        match self {
            FieldViolation::UndefinedTag(_) => 0,
            FieldViolation::NotInMessage(_) => 2,
            FieldViolation::OutOfOrder(_) => 14,
            FieldViolation::Duplicate(_) => 13,
            FieldViolation::GroupOrder(_) => 15,
            FieldViolation::GroupCount(_) => 16,
        }
    }

    /// The tag at fault (RefTagID 371).
    pub fn tag(&self) -> u32 {
        match *self {
            FieldViolation::UndefinedTag(t)
            | FieldViolation::NotInMessage(t)
            | FieldViolation::OutOfOrder(t)
            | FieldViolation::Duplicate(t)
            | FieldViolation::GroupOrder(t)
            | FieldViolation::GroupCount(t) => t,
        }
    }
}

/// True when FIX 4.4 or the venue defines `tag`.
pub fn is_defined(tag: u32) -> bool {
    DEFINED.contains(tag)
}

/// The body tags `msg_type` may carry, for the MsgTypes whose fields are checked: the admin
/// messages, NewOrderSingle, OrderCancelRequest, OrderCancelReplaceRequest and the venue's
/// AdminRequest. `None` for any other MsgType, which the application answers as unsupported.
pub fn body_tags(msg_type: &[u8]) -> Option<&'static TagSet> {
    match msg_type {
        b"0" => Some(&HEARTBEAT),
        b"1" => Some(&TEST_REQUEST),
        b"2" => Some(&RESEND_REQUEST),
        b"3" => Some(&REJECT),
        b"4" => Some(&SEQUENCE_RESET),
        b"5" => Some(&LOGOUT),
        b"A" => Some(&LOGON),
        b"D" => Some(&NEW_ORDER_SINGLE),
        b"F" => Some(&ORDER_CANCEL_REQUEST),
        b"G" => Some(&ORDER_CANCEL_REPLACE_REQUEST),
        b"H" => Some(&ORDER_STATUS_REQUEST),
        b"AF" => Some(&ORDER_MASS_STATUS_REQUEST),
        b"q" => Some(&ORDER_MASS_CANCEL_REQUEST),
        b"U1" => Some(&ADMIN_REQUEST),
        b"V" => Some(&MARKET_DATA_REQUEST),
        b"W" => Some(&MARKET_DATA_SNAPSHOT),
        b"X" => Some(&MARKET_DATA_INCREMENTAL),
        b"Y" => Some(&MARKET_DATA_REQUEST_REJECT),
        b"f" => Some(&SECURITY_STATUS),
        b"B" => Some(&NEWS),
        _ => None,
    }
}

/// Checks `msg` against the dictionary: every tag defined, allowed in its MsgType (header,
/// body or trailer), header, body and trailer in that order, and the described repeating groups
/// well formed (entries start with the delimiter, members once per entry and only inside their
/// group, as many entries as the count says). The first fault in message order is reported.
/// MsgTypes without a body table pass unchecked.
pub fn check(msg: &Message<'_>) -> Result<(), FieldViolation> {
    let msg_type = msg.msg_type();
    let Some(body) = body_tags(msg_type) else { return Ok(()) };
    // Built on the first group tag only: most orders carry none.
    let mut groups: Option<GroupChecker> = None;
    let group_tags = group_tags(msg_type);
    #[derive(PartialEq, PartialOrd)]
    enum Part {
        Header,
        Body,
        Trailer,
    }
    let mut part = Part::Header;
    for &(t, start, end) in msg.fields() {
        // Most fields are neither group members nor count tags: one bit test, then the usual
        // checks (this keeps `check` as cheap as before groups were checked).
        if groups.as_ref().is_some_and(|g| g.depth > 0) || group_tags.contains(t) {
            let checker = groups.get_or_insert_with(|| GroupChecker::new(msg_type));
            if checker.inside(t, &msg.bytes()[start as usize..end as usize])? {
                continue;
            }
        }
        if HEADER.contains(t) {
            if part != Part::Header {
                return Err(FieldViolation::OutOfOrder(t));
            }
        } else if body.contains(t) {
            if part == Part::Trailer {
                return Err(FieldViolation::OutOfOrder(t));
            }
            part = Part::Body;
        } else if TRAILER.contains(t) {
            part = Part::Trailer;
        } else if DEFINED.contains(t) {
            return Err(FieldViolation::NotInMessage(t));
        } else {
            return Err(FieldViolation::UndefinedTag(t));
        }
    }
    groups.map_or(Ok(()), GroupChecker::finish)
}

/// One open group while checking: which group, how many entries it announced and has, and the
/// members the current entry has had (bit per member index).
#[derive(Clone, Copy)]
struct OpenGroup {
    group: &'static Group,
    expected: u64,
    entries: u64,
    seen: u64,
}

/// The repeating-group part of [`check`]: a stack of open groups, bounded by
/// [`GROUP_DEPTH_MAX`], and the repeatable tags met at the top level.
struct GroupChecker {
    groups: &'static [Group],
    group_only: &'static TagSet,
    repeatable: &'static TagSet,
    stack: [Option<OpenGroup>; GROUP_DEPTH_MAX],
    depth: usize,
    top_seen: TagSet,
}

impl GroupChecker {
    fn new(msg_type: &[u8]) -> GroupChecker {
        GroupChecker {
            groups: groups(msg_type),
            group_only: group_only(msg_type),
            repeatable: repeatable(msg_type),
            stack: [None; GROUP_DEPTH_MAX],
            depth: 0,
            top_seen: TagSet::EMPTY,
        }
    }

    /// Takes field `t` with `value`: `Ok(true)` when it belonged to a group (or opened one) and
    /// needs no other check, `Ok(false)` when it is a top-level field for the caller.
    fn inside(&mut self, t: u32, value: &[u8]) -> Result<bool, FieldViolation> {
        while self.depth > 0 {
            let open = self.stack[self.depth - 1].as_mut().expect("open group below depth");
            if t == open.group.delimiter {
                open.entries += 1;
                if open.entries > open.expected {
                    return Err(FieldViolation::GroupCount(open.group.count));
                }
                open.seen = 1;
                return Ok(true);
            }
            if let Some(i) = open.group.member_index(t) {
                if open.entries == 0 {
                    return Err(FieldViolation::GroupOrder(t));
                }
                if open.seen & (1 << i) != 0 {
                    return Err(FieldViolation::Duplicate(t));
                }
                open.seen |= 1 << i;
                self.open_nested(t, value)?;
                return Ok(true);
            }
            self.close()?;
        }
        if let Some(group) = self.groups.iter().find(|g| g.count == t) {
            self.note_top(t)?;
            self.push(group, value)?;
            return Ok(true);
        }
        if self.group_only.contains(t) {
            return Err(FieldViolation::GroupOrder(t));
        }
        if self.repeatable.contains(t) {
            self.note_top(t)?;
        }
        Ok(false)
    }

    /// A member that is itself a count tag opens its nested group.
    fn open_nested(&mut self, t: u32, value: &[u8]) -> Result<(), FieldViolation> {
        match self.groups.iter().find(|g| g.count == t) {
            Some(group) => self.push(group, value),
            None => Ok(()),
        }
    }

    fn push(&mut self, group: &'static Group, value: &[u8]) -> Result<(), FieldViolation> {
        let expected = crate::codec::parse_u64(value).ok_or(FieldViolation::GroupCount(group.count))?;
        if self.depth == GROUP_DEPTH_MAX {
            return Err(FieldViolation::GroupOrder(group.count));
        }
        self.stack[self.depth] = Some(OpenGroup { group, expected, entries: 0, seen: 0 });
        self.depth += 1;
        Ok(())
    }

    fn close(&mut self) -> Result<(), FieldViolation> {
        self.depth -= 1;
        let open = self.stack[self.depth].take().expect("open group at depth");
        if open.entries != open.expected {
            return Err(FieldViolation::GroupCount(open.group.count));
        }
        Ok(())
    }

    fn note_top(&mut self, t: u32) -> Result<(), FieldViolation> {
        if self.top_seen.contains(t) {
            return Err(FieldViolation::Duplicate(t));
        }
        self.top_seen.insert(t);
        Ok(())
    }

    /// At the end of the message: every open group has its count.
    fn finish(mut self) -> Result<(), FieldViolation> {
        while self.depth > 0 {
            self.close()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{self, Encoder, Fields};

    /// A framed message of type `msg_type` whose body is `fields` (`|`-separated `tag=value`s,
    /// each ending in `|`), with the standard header and trailer.
    fn message(msg_type: &str, fields: &str) -> Vec<u8> {
        let mut e = Encoder::new();
        e.begin(msg_type.as_bytes(), "alice", "EXCHANGE", 2, 0);
        e.raw(fields.replace('|', "\x01").as_bytes());
        e.finish().to_vec()
    }

    fn check_bytes(bytes: &[u8]) -> Result<(), FieldViolation> {
        check(&Message::parse(bytes, &mut Fields::default()).unwrap())
    }

    fn check_fields(msg_type: &str, fields: &str) -> Result<(), FieldViolation> {
        check_bytes(&message(msg_type, fields))
    }

    #[test]
    fn fix44_tags_are_defined_and_retired_or_user_defined_ones_are_not() {
        for t in [1, 11, 35, 55, 448, 453, 553, 554, 789, 956] {
            assert!(is_defined(t), "{t}");
        }
        // Retired (ExecTransType, Rule80A, CustomerOrFirm, ClearingFirm), never assigned,
        // past the last FIX 4.4 tag, and the user-defined range outside the venue's tags.
        for t in [0, 20, 47, 204, 439, 101, 261, 957, 1023, 1024, 4999, 5000, 5099, 5105, 9999, 10_000] {
            assert!(!is_defined(t), "{t}");
        }
        assert_eq!((1..FIX_TAGS_END).filter(|&t| is_defined(t)).count(), 912);
    }

    #[test]
    fn venue_tags_are_defined() {
        for t in VENUE_TAGS {
            assert!(is_defined(*t), "{t}");
        }
        assert_eq!(body_tags(codec::MSG_ADMIN_REQUEST), Some(&ADMIN_REQUEST));
        assert_eq!(check_fields("U1", "1=alice|5100=r1|5101=set|5102={}|"), Ok(()));
        // AdminStatus belongs to the venue's answer, not the request.
        assert_eq!(check_fields("U1", "5100=r1|5103=0|"), Err(FieldViolation::NotInMessage(5103)));
    }

    #[test]
    fn each_message_type_allows_its_own_body_tags_only() {
        assert_eq!(check_fields("0", "112=x|"), Ok(()));
        assert_eq!(check_fields("1", "112=x|"), Ok(()));
        assert_eq!(check_fields("2", "7=1|16=0|"), Ok(()));
        assert_eq!(check_fields("3", "45=1|371=55|372=D|373=1|58=missing|"), Ok(()));
        assert_eq!(check_fields("4", "123=Y|36=9|"), Ok(()));
        assert_eq!(check_fields("5", "58=bye|"), Ok(()));
        assert_eq!(check_fields("A", "98=0|108=30|141=Y|789=1|383=4096|553=u|554=p|"), Ok(()));
        assert_eq!(check_fields("F", "41=a|11=b|37=9|55=X|54=1|60=20240101-00:00:00|38=5|"), Ok(()));
        assert_eq!(check_fields("G", "41=a|11=b|55=X|54=1|40=2|44=1.5|38=5|59=1|18=6|"), Ok(()));
        assert_eq!(check_fields("0", "108=30|"), Err(FieldViolation::NotInMessage(108)));
        assert_eq!(check_fields("D", "11=a|108=30|"), Err(FieldViolation::NotInMessage(108)));
        // A cancel has no price.
        assert_eq!(check_fields("F", "41=a|11=b|44=1|"), Err(FieldViolation::NotInMessage(44)));
        assert_eq!(check_fields("5", "112=x|"), Err(FieldViolation::NotInMessage(112)));
    }

    #[test]
    fn a_new_order_with_what_real_engines_send_passes() {
        let fields = "11=a1|1=ACC|21=1|55=BTC-USD|207=XCME|48=US0378331005|22=4|54=1|\
                      60=20240101-00:00:00.000|38=10|40=2|44=100.5|59=0|18=6|\
                      453=2|448=TRADER1|447=D|452=11|448=FIRM|447=D|452=1|58=note|";
        assert_eq!(check_fields("D", fields), Ok(()));
    }

    #[test]
    fn group_and_component_tags_are_allowed_where_their_message_has_them() {
        // Logon's NoMsgTypes, the order's Parties sub-IDs, trading sessions, underlyings,
        // stipulations, peg and discretion instructions, commission.
        assert_eq!(check_fields("A", "98=0|108=30|384=1|372=D|385=S|"), Ok(()));
        let d = "11=a|453=1|448=p|447=D|452=3|802=1|523=s|803=2|386=1|336=CORE|711=1|311=U|887=1|888=T|\
                 889=v|232=1|233=A|234=B|211=1|836=0|388=0|389=1|12=0.1|13=3|78=1|79=acc|80=5|";
        assert_eq!(check_fields("D", d), Ok(()));
        // NoPartyIDs belongs to orders, not to a heartbeat.
        assert_eq!(check_fields("0", "453=1|448=p|"), Err(FieldViolation::NotInMessage(453)));
    }

    #[test]
    fn optional_header_and_trailer_tags_are_allowed() {
        let mut e = Encoder::new();
        e.begin(b"D", "alice", "EXCHANGE", 2, 0);
        e.str(tag::SENDER_SUB_ID, "desk");
        e.str(tag::TARGET_SUB_ID, "core");
        e.str(115, "onbehalf");
        e.char(tag::POSS_DUP_FLAG, b'Y');
        e.str(tag::ORIG_SENDING_TIME, "20240101-00:00:00");
        e.u64(369, 1);
        e.u64(627, 1);
        e.str(628, "HOP");
        e.str(tag::CL_ORD_ID, "a");
        e.u64(93, 3);
        e.str(89, "sig");
        assert_eq!(check_bytes(e.finish()), Ok(()));
    }

    #[test]
    fn undefined_tags_are_told_apart_from_misplaced_ones() {
        assert_eq!(check_fields("D", "11=a|9999=x|"), Err(FieldViolation::UndefinedTag(9999)));
        assert_eq!(check_fields("D", "11=a|47=A|"), Err(FieldViolation::UndefinedTag(47)));
        assert_eq!(check_fields("0", "5000=x|"), Err(FieldViolation::UndefinedTag(5000)));
        // A venue tag is defined, but only its own message carries it.
        assert_eq!(check_fields("D", "11=a|5101=set|"), Err(FieldViolation::NotInMessage(5101)));
        // The first fault in message order is the one reported.
        assert_eq!(check_fields("D", "108=1|9999=x|"), Err(FieldViolation::NotInMessage(108)));
        let v = FieldViolation::UndefinedTag(9999);
        assert_eq!((v.reject_reason(), v.tag()), (0, 9999));
        assert_eq!(v.to_string(), "Invalid tag number: 9999");
        assert_eq!(FieldViolation::NotInMessage(108).reject_reason(), 2);
    }

    #[test]
    fn header_tags_after_the_body_and_body_tags_after_the_trailer_are_out_of_order() {
        assert_eq!(check_fields("D", "11=a|50=desk|"), Err(FieldViolation::OutOfOrder(50)));
        assert_eq!(check_fields("D", "11=a|93=3|89=sig|55=X|"), Err(FieldViolation::OutOfOrder(55)));
    }

    #[test]
    fn security_status_as_the_venue_sends_it_passes_and_an_order_field_in_it_does_not() {
        let f = "55=BTC-USD|326=2|60=20261205-18:00:00.000|58=halted by the venue|";
        assert_eq!(check_fields("f", f), Ok(()));
        assert_eq!(check_fields("f", "55=BTC-USD|326=17|38=5|"), Err(FieldViolation::NotInMessage(38)));
    }

    #[test]
    fn other_message_types_are_not_checked() {
        assert_eq!(body_tags(b"R"), None);
        assert_eq!(check_fields("R", "131=q1|9999=x|"), Ok(()));
        assert_eq!(check_fields("8", "37=1|108=1|"), Ok(()));
    }

    #[test]
    fn every_group_member_is_allowed_in_the_messages_that_carry_the_group() {
        for msg_type in [&b"D"[..], b"F", b"G", b"H", b"AF", b"A", b"V", b"W", b"X", b"Y", b"B"] {
            let body = body_tags(msg_type).unwrap();
            for g in groups(msg_type) {
                assert!(body.contains(g.count), "{:?} {}", msg_type, g.count);
                for &m in g.members {
                    assert!(body.contains(m), "{:?} {m}", std::str::from_utf8(msg_type));
                }
            }
        }
    }

    #[test]
    fn market_data_request_with_several_entry_types_and_symbols_passes() {
        let v = "262=r1|263=1|264=0|265=1|267=3|269=0|269=1|269=2|146=2|55=BTC-USD|55=ETH-USD|";
        assert_eq!(check_fields("V", v), Ok(()));
        let bytes = message("V", v);
        let mut fields = Fields::default();
        let msg = Message::parse(&bytes, &mut fields).unwrap();
        let types: Vec<&[u8]> = msg.group(267).map(|e| e.get(269).unwrap()).collect();
        assert_eq!(types, [&b"0"[..], b"1", b"2"]);
        let symbols: Vec<&str> = msg.group(146).map(|e| e.get_str(55).unwrap()).collect();
        assert_eq!(symbols, ["BTC-USD", "ETH-USD"]);
        assert_eq!(msg.group(268).count(), 0, "V has no NoMDEntries");
    }

    #[test]
    fn news_lines_of_text_repeat() {
        let b = "148=hello|33=2|58=line one|58=line two|";
        assert_eq!(check_fields("B", b), Ok(()));
        assert_eq!(check_fields("B", "148=h|33=3|58=a|58=b|"), Err(FieldViolation::GroupCount(33)));
    }

    #[test]
    fn wrong_counts_are_refused_naming_the_count_tag() {
        // Fewer entries than announced, more, and a count that is not a number.
        let few = check_fields("V", "262=r|263=0|264=0|267=3|269=0|269=1|146=1|55=A|");
        assert_eq!(few, Err(FieldViolation::GroupCount(267)));
        let many = check_fields("V", "262=r|263=0|264=0|267=1|269=0|269=1|146=1|55=A|");
        assert_eq!(many, Err(FieldViolation::GroupCount(267)));
        let nan = check_fields("V", "262=r|263=0|264=0|267=x|269=0|146=1|55=A|");
        assert_eq!(nan, Err(FieldViolation::GroupCount(267)));
        // The last group of the message is closed at the end.
        let last = check_fields("V", "262=r|263=0|264=0|267=1|269=0|146=2|55=A|");
        assert_eq!(last, Err(FieldViolation::GroupCount(146)));
        assert_eq!(FieldViolation::GroupCount(146).reject_reason(), 16);
    }

    #[test]
    fn members_outside_their_group_or_before_the_delimiter_are_out_of_order() {
        // Symbol before NoRelatedSym: V carries 55 only inside the group.
        let outside = check_fields("V", "262=r|263=0|264=0|55=A|267=1|269=0|146=1|55=B|");
        assert_eq!(outside, Err(FieldViolation::GroupOrder(55)));
        assert_eq!(FieldViolation::GroupOrder(55).reject_reason(), 15);
        // A party role with no PartyID before it.
        let order = "11=a|55=X|54=1|60=20240101-00:00:00.000|38=1|40=1|453=1|452=3|448=p|";
        assert_eq!(check_fields("D", order), Err(FieldViolation::GroupOrder(452)));
        // A party field after the group has ended.
        let after = "11=a|453=1|448=p|55=X|447=D|54=1|60=20240101-00:00:00.000|38=1|40=1|";
        assert_eq!(check_fields("D", after), Err(FieldViolation::GroupOrder(447)));
    }

    #[test]
    fn a_member_twice_in_one_entry_or_a_top_level_tag_twice_is_a_duplicate() {
        let twice = check_fields("D", "11=a|453=1|448=p|447=D|447=C|55=X|");
        assert_eq!(twice, Err(FieldViolation::Duplicate(447)));
        assert_eq!(FieldViolation::Duplicate(447).reject_reason(), 13);
        // Symbol repeats inside a V's NoRelatedSym, but in a NewOrderSingle it is a plain tag:
        // the codec refuses it twice.
        let top = message("D", "11=a|55=X|55=Y|54=1|");
        assert_eq!(
            Message::parse(&top, &mut Fields::default()).err(),
            Some(codec::ParseError::DuplicateTag(55))
        );
        // In a snapshot Symbol is both at the top and in entries: twice at the top is refused.
        let w = check_fields("W", "262=r|55=X|55=Y|268=1|269=0|270=1|271=1|");
        assert_eq!(w, Err(FieldViolation::Duplicate(55)));
        // Groups not described stay flat: a second allocation is a duplicate in the codec.
        let alloc = message("D", "11=a|78=2|79=a|80=1|79=b|80=2|");
        assert_eq!(
            Message::parse(&alloc, &mut Fields::default()).err(),
            Some(codec::ParseError::DuplicateTag(79))
        );
    }

    #[test]
    fn nested_party_sub_ids_and_snapshot_and_incremental_entries_check_and_iterate() {
        let d = "11=a|453=2|448=p|447=D|452=3|802=2|523=s|803=2|523=t|803=3|448=q|452=1|55=X|54=1|";
        assert_eq!(check_fields("D", d), Ok(()));
        let bytes = message("D", d);
        let mut fields = Fields::default();
        let msg = Message::parse(&bytes, &mut fields).unwrap();
        let parties: Vec<(String, usize)> =
            msg.group(453).map(|e| (e.get_str(448).unwrap().to_string(), e.group(802).count())).collect();
        // An entry is a view without MsgType, so its nested group is not found through it;
        // its sub-ID fields are in the entry.
        assert_eq!(parties.iter().map(|p| p.0.as_str()).collect::<Vec<_>>(), ["p", "q"]);
        let first = msg.group(453).next().unwrap();
        assert_eq!(first.tags().filter(|&t| t == 523).count(), 2);
        // Nested count wrong.
        let bad = "11=a|453=1|448=p|802=2|523=s|55=X|";
        assert_eq!(check_fields("D", bad), Err(FieldViolation::GroupCount(802)));

        let w = "262=r|55=BTC-USD|268=2|269=0|270=100|271=5|83=7|269=1|270=101|271=3|83=7|";
        assert_eq!(check_fields("W", w), Ok(()));
        let x = "262=r|268=2|279=0|269=0|55=BTC-USD|270=99|271=1|83=8|279=2|269=1|55=BTC-USD|270=101|83=9|";
        assert_eq!(check_fields("X", x), Ok(()));
        let bytes = message("X", x);
        let mut fields = Fields::default();
        let msg = Message::parse(&bytes, &mut fields).unwrap();
        let actions: Vec<(&str, &str, Option<&str>)> = msg
            .group(268)
            .map(|e| (e.get_str(279).unwrap(), e.get_str(270).unwrap(), e.get_str(271)))
            .collect();
        assert_eq!(actions, [("0", "99", Some("1")), ("2", "101", None)]);
        // In X an entry starts with MDUpdateAction, not MDEntryType.
        let x_bad = "262=r|268=1|269=0|279=0|55=A|270=1|";
        assert_eq!(check_fields("X", x_bad), Err(FieldViolation::GroupOrder(269)));
    }

    proptest::proptest! {
        /// Any number of entries of any subset of members, written in member order, checks;
        /// announcing one entry more or fewer fails with 373=16 naming the count tag; the
        /// iterator gives back exactly the entries written.
        #[test]
        fn generated_groups_check_and_iterate(
            entries in proptest::collection::vec((0u8..3, proptest::option::of(1u32..1000)), 1..12),
            off_by in proptest::sample::select(vec![-1i64, 0, 1]),
        ) {
            let mut body = String::from("262=r|263=1|264=0|");
            let announced = entries.len() as i64 + off_by;
            body.push_str(&format!("267={announced}|"));
            for (t, _) in &entries {
                body.push_str(&format!("269={t}|"));
            }
            body.push_str(&format!("146={}|", entries.len()));
            for (i, (_, sec)) in entries.iter().enumerate() {
                body.push_str(&format!("55=S{i}|"));
                if let Some(sec) = sec {
                    body.push_str(&format!("48={sec}|"));
                }
            }
            let verdict = check_fields("V", &body);
            if off_by == 0 {
                proptest::prop_assert_eq!(verdict, Ok(()));
            } else {
                proptest::prop_assert_eq!(verdict, Err(FieldViolation::GroupCount(267)));
            }
            let bytes = message("V", &body);
            let mut fields = Fields::default();
            let msg = Message::parse(&bytes, &mut fields).unwrap();
            let got: Vec<(String, Option<u32>)> = msg
                .group(146)
                .map(|e| (e.get_str(55).unwrap().to_string(), e.get_str(48).map(|v| v.parse().unwrap())))
                .collect();
            let want: Vec<(String, Option<u32>)> =
                entries.iter().enumerate().map(|(i, (_, sec))| (format!("S{i}"), *sec)).collect();
            proptest::prop_assert_eq!(got, want);
            let types: Vec<u8> = msg.group(267).map(|e| e.get(269).unwrap()[0] - b'0').collect();
            proptest::prop_assert_eq!(types, entries.iter().map(|e| e.0).collect::<Vec<_>>());
        }
    }

    #[test]
    #[ignore = "a rough measure, not a test: cargo test -p fix --release -- --ignored --nocapture"]
    fn measure_check_cost() {
        let bytes = message(
            "D",
            "11=a1|1=ACC|21=1|55=BTC-USD|54=1|60=20240101-00:00:00.000|38=10|40=2|44=100.5|59=0|",
        );
        let mut fields = Fields::default();
        let msg = Message::parse(&bytes, &mut fields).unwrap();
        let rounds = 10_000_000u32;
        let start = std::time::Instant::now();
        for _ in 0..rounds {
            std::hint::black_box(check(std::hint::black_box(&msg))).unwrap();
        }
        let ns = start.elapsed().as_nanos() as f64 / f64::from(rounds);
        println!("check: {ns:.1} ns per NewOrderSingle of {} fields", msg.tags().count());
    }
}
