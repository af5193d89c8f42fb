//! FIX 4.4 tag=value codec: framing with BodyLength and CheckSum checked, a zero-copy field
//! view, and an encoder whose output any FIX library parses.
//!
//! ```text
//! 8=FIX.4.4|9=<body length>|35=D|49=alice|56=EXCHANGE|34=2|52=...|...|10=<checksum>|
//!           ^ body starts after the SOH that ends 9=    body ends with the SOH before 10= ^
//! ```
//! `|` stands for SOH (0x01). BodyLength counts the bytes from 35= up to and including the SOH
//! before `10=`; CheckSum is the sum of every byte before `10=`, modulo 256, as three digits.

use std::fmt::Write as _;

use thiserror::Error;

/// The field separator.
pub const SOH: u8 = 0x01;
/// The only BeginString spoken here.
pub const BEGIN_STRING: &[u8] = b"FIX.4.4";
/// Most fields one message may carry: a message with more is refused, so a field index never
/// grows past this bound.
pub const FIELDS_MAX: usize = 96;
/// Default largest message accepted, in bytes (configurable per session).
pub const MESSAGE_BYTES_MAX_DEFAULT: usize = 4096;

/// The prefix of every message, up to the BodyLength value.
const PREFIX: &[u8] = b"8=FIX.4.4\x019=";
/// Length of `10=NNN<SOH>`.
const TRAILER_LEN: usize = 7;

/// Tag numbers used by this venue.
#[allow(missing_docs)]
pub mod tag {
    pub const ACCOUNT: u32 = 1;
    pub const AVG_PX: u32 = 6;
    pub const BEGIN_SEQ_NO: u32 = 7;
    pub const BEGIN_STRING: u32 = 8;
    pub const BODY_LENGTH: u32 = 9;
    pub const CHECK_SUM: u32 = 10;
    pub const CL_ORD_ID: u32 = 11;
    pub const CUM_QTY: u32 = 14;
    pub const END_SEQ_NO: u32 = 16;
    pub const EXEC_ID: u32 = 17;
    pub const EXEC_INST: u32 = 18;
    pub const LAST_PX: u32 = 31;
    pub const LAST_QTY: u32 = 32;
    pub const MSG_SEQ_NUM: u32 = 34;
    pub const MSG_TYPE: u32 = 35;
    pub const NEW_SEQ_NO: u32 = 36;
    pub const ORDER_ID: u32 = 37;
    pub const ORDER_QTY: u32 = 38;
    pub const ORD_STATUS: u32 = 39;
    pub const ORD_TYPE: u32 = 40;
    pub const ORIG_CL_ORD_ID: u32 = 41;
    pub const POSS_DUP_FLAG: u32 = 43;
    pub const PRICE: u32 = 44;
    pub const REF_SEQ_NUM: u32 = 45;
    pub const SENDER_COMP_ID: u32 = 49;
    pub const SENDER_SUB_ID: u32 = 50;
    pub const SENDING_TIME: u32 = 52;
    pub const SIDE: u32 = 54;
    pub const SYMBOL: u32 = 55;
    pub const TARGET_COMP_ID: u32 = 56;
    pub const TARGET_SUB_ID: u32 = 57;
    pub const TEXT: u32 = 58;
    pub const TIME_IN_FORCE: u32 = 59;
    pub const TRANSACT_TIME: u32 = 60;
    pub const POSS_RESEND: u32 = 97;
    pub const ENCRYPT_METHOD: u32 = 98;
    pub const STOP_PX: u32 = 99;
    pub const ORD_REJ_REASON: u32 = 103;
    pub const HEART_BT_INT: u32 = 108;
    pub const MAX_FLOOR: u32 = 111;
    pub const TEST_REQ_ID: u32 = 112;
    pub const ORIG_SENDING_TIME: u32 = 122;
    pub const GAP_FILL_FLAG: u32 = 123;
    pub const EXPIRE_TIME: u32 = 126;
    pub const RESET_SEQ_NUM_FLAG: u32 = 141;
    pub const EXEC_TYPE: u32 = 150;
    pub const LEAVES_QTY: u32 = 151;
    pub const REF_TAG_ID: u32 = 371;
    pub const REF_MSG_TYPE: u32 = 372;
    pub const SESSION_REJECT_REASON: u32 = 373;
    pub const BUSINESS_REJECT_REF_ID: u32 = 379;
    pub const BUSINESS_REJECT_REASON: u32 = 380;
    pub const CXL_REJ_RESPONSE_TO: u32 = 434;
    pub const CXL_REJ_REASON: u32 = 102;
    pub const USERNAME: u32 = 553;
    pub const ORD_STATUS_REQ_ID: u32 = 790;
    pub const HEADLINE: u32 = 148;
    pub const NO_LINES_OF_TEXT: u32 = 33;
    pub const MASS_STATUS_REQ_ID: u32 = 584;
    pub const MASS_STATUS_REQ_TYPE: u32 = 585;
    pub const TOT_NUM_REPORTS: u32 = 911;
    pub const LAST_RPT_REQUESTED: u32 = 912;
    pub const MASS_CANCEL_REQUEST_TYPE: u32 = 530;
    pub const MASS_CANCEL_RESPONSE: u32 = 531;
    pub const TOTAL_AFFECTED_ORDERS: u32 = 533;
    pub const PASSWORD: u32 = 554;
    // Venue-defined (the 5000-9999 range FIX leaves to counterparties): the admin messages.
    /// AdminReqID: echoed on the answer.
    pub const ADMIN_REQ_ID: u32 = 5100;
    /// AdminAction: `show`, `set`, `reset`, `kill`, `release`.
    pub const ADMIN_ACTION: u32 = 5101;
    /// AdminLimits: a JSON object of limit fields to change (`null` unsets one).
    pub const ADMIN_LIMITS: u32 = 5102;
    /// AdminStatus: 0 done, 1 refused.
    pub const ADMIN_STATUS: u32 = 5103;
    /// AdminData: the state after the action, as JSON.
    pub const ADMIN_DATA: u32 = 5104;
}

/// MsgType of the venue's AdminRequest (user-defined, `U` prefix): admin session to venue.
pub const MSG_ADMIN_REQUEST: &[u8] = b"U1";
/// MsgType of the AdminResponse: venue to admin session.
pub const MSG_ADMIN_RESPONSE: &[u8] = b"U2";

/// Why bytes could not be cut into a message. Framing errors lose the message boundary, or
/// prove the message was damaged in transit.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum FrameError {
    /// The message does not start with `8=FIX.4.4<SOH>9=`.
    #[error("message does not start with 8=FIX.4.4|9=")]
    BadBeginString,
    /// BodyLength is not a number, or `10=` is not where it says the body ends.
    #[error("BodyLength (9) is malformed or does not match the message")]
    BadBodyLength,
    /// The message is larger than the session's limit.
    #[error("message of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Declared total length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The CheckSum field does not match the bytes.
    #[error("CheckSum (10) is {found:?}, the bytes sum to {computed:03}")]
    BadChecksum {
        /// Sum of the bytes, mod 256.
        computed: u8,
        /// What the message said.
        found: String,
        /// The message's whole length, so the reader can drop exactly it.
        len: usize,
    },
}

/// Finds one whole message at the start of `buf`: `Ok(Some(len))` when `buf[..len]` is a
/// message with a good BodyLength and CheckSum, `Ok(None)` when more bytes are needed.
pub fn frame(buf: &[u8], max_len: usize) -> Result<Option<usize>, FrameError> {
    let prefix_seen = buf.len().min(PREFIX.len());
    if buf[..prefix_seen] != PREFIX[..prefix_seen] {
        return Err(FrameError::BadBeginString);
    }
    if buf.len() <= PREFIX.len() {
        return Ok(None);
    }
    let digits = &buf[PREFIX.len()..];
    let Some(digits_len) = digits.iter().position(|&b| b == SOH) else {
        // BodyLength has at most a handful of digits; more without a SOH is garbage.
        return if digits.len() > 7 || !digits.iter().all(u8::is_ascii_digit) {
            Err(FrameError::BadBodyLength)
        } else {
            Ok(None)
        };
    };
    let body_len = parse_u64(&digits[..digits_len]).ok_or(FrameError::BadBodyLength)? as usize;
    let body_start = PREFIX.len() + digits_len + 1;
    let len = body_start + body_len + TRAILER_LEN;
    if len > max_len {
        return Err(FrameError::TooLarge { len, max: max_len });
    }
    if buf.len() < len {
        return Ok(None);
    }
    let trailer = &buf[body_start + body_len..len];
    if body_len == 0 || buf[body_start + body_len - 1] != SOH || &trailer[..3] != b"10=" || trailer[6] != SOH
    {
        return Err(FrameError::BadBodyLength);
    }
    let computed = checksum(&buf[..body_start + body_len]);
    let found = &trailer[3..6];
    if parse_u64(found) != Some(u64::from(computed)) {
        return Err(FrameError::BadChecksum {
            computed,
            found: String::from_utf8_lossy(found).into_owned(),
            len,
        });
    }
    Ok(Some(len))
}

/// Sum of the bytes mod 256.
pub fn checksum(bytes: &[u8]) -> u8 {
    // Summed as u32 (which the compiler vectorises), reduced once: the same value mod 256.
    bytes.iter().fold(0u32, |sum, &b| sum.wrapping_add(u32::from(b))) as u8
}

/// A parse failure inside a well-framed message: answered with a session Reject (35=3) whose
/// SessionRejectReason (373) is [`ParseError::reject_reason`].
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ParseError {
    /// A field is not `tag=value`, or the tag is not a positive number.
    #[error("field {index} is not tag=value with a numeric tag")]
    BadField {
        /// 0-based field position.
        index: usize,
    },
    /// A tag appears twice.
    #[error("tag {0} appears more than once")]
    DuplicateTag(u32),
    /// A field has an empty value.
    #[error("tag {0} has no value")]
    EmptyValue(u32),
    /// More than [`FIELDS_MAX`] fields.
    #[error("more than {FIELDS_MAX} fields")]
    TooManyFields,
    /// The header is not 8, 9, 35 in that order.
    #[error("header fields out of order: 8, 9 and 35 must come first")]
    HeaderOrder,
}

impl ParseError {
    /// SessionRejectReason (373) for this error.
    pub fn reject_reason(&self) -> u32 {
        match self {
            ParseError::BadField { .. } => 0,  // Invalid tag number
            ParseError::DuplicateTag(_) => 13, // Tag appears more than once
            ParseError::EmptyValue(_) => 4,    // Tag specified without a value
            ParseError::TooManyFields => 99,   // Other
            ParseError::HeaderOrder => 14,     // Tag specified out of required order
        }
    }

    /// The tag at fault, when there is one (RefTagID 371).
    pub fn tag(&self) -> Option<u32> {
        match self {
            ParseError::DuplicateTag(t) | ParseError::EmptyValue(t) => Some(*t),
            _ => None,
        }
    }
}

/// The first SOH at or after `from`, or `bytes.len()`. Values are short (ids, numbers, flags),
/// so a vectorised search pays its set-up per field for little; this looks at eight bytes per
/// step with word arithmetic instead (a byte is SOH where `word ^ 0x0101..` has a zero byte).
fn find_soh(bytes: &[u8], from: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut at = from;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes")) ^ ONES;
        let zero_bytes = word.wrapping_sub(ONES) & !word & HIGHS;
        if zero_bytes != 0 {
            // The lowest flagged byte is the first zero byte (flags above it may be false
            // positives from a borrow, never below it).
            return at + (zero_bytes.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    bytes[at.min(bytes.len())..].iter().position(|&b| b == SOH).map_or(bytes.len(), |i| at + i)
}

/// Tags below this are checked for duplicates with a bitset while parsing.
const SEEN_TAGS: usize = 1024;

/// One field of a parsed message: its tag and where its value lies in the message's bytes.
pub type Field = (u32, u32, u32);

/// Room for the field index of one parsed message, reused from message to message: a session
/// keeps one, so a parsed [`Message`] is a few words that borrow it instead of a kilobyte
/// array copied along every return.
#[derive(Clone, Debug)]
pub struct Fields {
    index: [Field; FIELDS_MAX],
}

impl Fields {
    /// The first `count` entries, as the last [`Message::parse`] into this left them.
    pub fn indexed(&self, count: usize) -> &[Field] {
        &self.index[..count.min(FIELDS_MAX)]
    }
}

impl Default for Fields {
    fn default() -> Fields {
        Fields { index: [(0, 0, 0); FIELDS_MAX] }
    }
}

/// A parsed message: a view of its fields over the original bytes (no copies).
#[derive(Clone, Copy, Debug)]
pub struct Message<'a> {
    bytes: &'a [u8],
    /// (tag, value start, value end) in message order.
    fields: &'a [Field],
}

impl<'a> Message<'a> {
    /// Parses a framed message (from [`frame`]), indexing its fields into `fields`: every field
    /// `tag=value`, no duplicate tags, header in order.
    pub fn parse(bytes: &'a [u8], fields: &'a mut Fields) -> Result<Message<'a>, ParseError> {
        let index = &mut fields.index;
        let mut count = 0usize;
        // Tags below `SEEN_TAGS` (every tag the venue reads, and most FIX defines) are checked
        // for duplicates in a bitset; a rare larger tag is looked up among the fields so far.
        let mut seen = [0u64; SEEN_TAGS / 64];
        // Tags that may repeat: the members of the MsgType's repeating groups, known once 35 is
        // read (the dictionary then checks their structure).
        let mut repeatable = &crate::dictionary::TagSet::EMPTY;
        let mut start = 0usize;
        while start < bytes.len() {
            // The tag: 1 to 18 digits, then `=` (what `parse_u64` accepts, read in one pass).
            let mut tag = 0u64;
            let mut at = start;
            while at < bytes.len() && at - start < 18 && bytes[at].is_ascii_digit() {
                tag = tag * 10 + u64::from(bytes[at] - b'0');
                at += 1;
            }
            if at == start || bytes.get(at) != Some(&b'=') || tag == 0 || tag > u64::from(u32::MAX) {
                return Err(ParseError::BadField { index: count });
            }
            let tag = tag as u32;
            let value_start = at + 1;
            let end = find_soh(bytes, value_start);
            if end == value_start {
                return Err(ParseError::EmptyValue(tag));
            }
            if count == FIELDS_MAX {
                return Err(ParseError::TooManyFields);
            }
            if !repeatable.contains(tag) {
                let duplicate = if (tag as usize) < SEEN_TAGS {
                    let (word, bit) = (tag as usize / 64, 1u64 << (tag % 64));
                    let was = seen[word] & bit != 0;
                    seen[word] |= bit;
                    was
                } else {
                    index[..count].iter().any(|f| f.0 == tag)
                };
                if duplicate {
                    return Err(ParseError::DuplicateTag(tag));
                }
            }
            index[count] = (tag, value_start as u32, end as u32);
            if count == 2 && tag == tag::MSG_TYPE {
                repeatable = crate::dictionary::repeatable(&bytes[value_start..end]);
            }
            count += 1;
            start = end + 1;
        }
        let fields = &fields.index[..count];
        let order_ok = count >= 3
            && fields[0].0 == tag::BEGIN_STRING
            && fields[1].0 == tag::BODY_LENGTH
            && fields[2].0 == tag::MSG_TYPE;
        if !order_ok {
            return Err(ParseError::HeaderOrder);
        }
        Ok(Message { bytes, fields })
    }

    /// The field index, to keep beside a copy of the bytes ([`Message::from_parts`]).
    pub fn fields(&self) -> &'a [Field] {
        self.fields
    }

    /// A message from bytes and the index [`Message::parse`] made of them (as kept by
    /// [`Message::fields`]).
    pub fn from_parts(bytes: &'a [u8], fields: &'a [Field]) -> Message<'a> {
        debug_assert!(fields.iter().all(|f| f.1 <= f.2 && f.2 as usize <= bytes.len()));
        Message { bytes, fields }
    }

    /// The whole message's bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// MsgType (35).
    pub fn msg_type(&self) -> &'a [u8] {
        self.get(tag::MSG_TYPE).unwrap_or_default()
    }

    /// The value of `tag`, if present (the first one, for repeating tags).
    pub fn get(&self, tag: u32) -> Option<&'a [u8]> {
        self.fields
            .iter()
            .find(|f| f.0 == tag)
            .map(|&(_, start, end)| &self.bytes[start as usize..end as usize])
    }

    /// The value of `tag` as UTF-8 text.
    pub fn get_str(&self, tag: u32) -> Option<&'a str> {
        self.get(tag).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The value of `tag` as an unsigned integer: `Err` when present but not a number.
    pub fn get_u64(&self, tag: u32) -> Result<Option<u64>, u32> {
        match self.get(tag) {
            None => Ok(None),
            Some(v) => parse_u64(v).map(Some).ok_or(tag),
        }
    }

    /// True when the Y/N field `tag` is `Y`.
    pub fn flag(&self, tag: u32) -> bool {
        self.get(tag) == Some(b"Y")
    }

    /// Tags in message order.
    pub fn tags(&self) -> impl Iterator<Item = u32> + 'a {
        self.fields.iter().map(|f| f.0)
    }

    /// The entries of the repeating group whose NumInGroup tag is `count` (as the dictionary
    /// describes it for this MsgType), each a [`Message`] view over that entry's fields (nested
    /// groups included), in message order. Empty when the message has no such group. The
    /// entries are what the message carries; [`crate::dictionary::check`] is what says their
    /// number matches the count.
    pub fn group(&self, count: u32) -> GroupEntries<'a> {
        let msg_type = self.msg_type();
        let group = crate::dictionary::group(msg_type, count);
        let at = match group {
            Some(_) => self.fields.iter().position(|f| f.0 == count).map_or(self.fields.len(), |i| i + 1),
            None => self.fields.len(),
        };
        GroupEntries { bytes: self.bytes, fields: self.fields, at, group, msg_type }
    }
}

/// The entries of one repeating group ([`Message::group`]).
#[derive(Clone, Debug)]
pub struct GroupEntries<'a> {
    bytes: &'a [u8],
    fields: &'a [Field],
    /// The next field to look at.
    at: usize,
    group: Option<&'static crate::dictionary::Group>,
    msg_type: &'a [u8],
}

impl GroupEntries<'_> {
    /// True when `tag` belongs in an entry of `group`: a member, or (recursively) a member of a
    /// nested group that one of its members counts.
    fn belongs(&self, group: &crate::dictionary::Group, tag: u32, depth: usize) -> bool {
        group.member_index(tag).is_some()
            || (depth < crate::dictionary::GROUP_DEPTH_MAX
                && group.members.iter().any(|&m| {
                    crate::dictionary::group(self.msg_type, m)
                        .is_some_and(|nested| self.belongs(nested, tag, depth + 1))
                }))
    }
}

impl<'a> Iterator for GroupEntries<'a> {
    type Item = Message<'a>;

    fn next(&mut self) -> Option<Message<'a>> {
        let group = self.group?;
        let first = *self.fields.get(self.at)?;
        if first.0 != group.delimiter {
            self.group = None;
            return None;
        }
        let start = self.at;
        self.at += 1;
        while let Some(&(t, _, _)) = self.fields.get(self.at) {
            if t == group.delimiter || !self.belongs(group, t, 1) {
                break;
            }
            self.at += 1;
        }
        Some(Message { bytes: self.bytes, fields: &self.fields[start..self.at] })
    }
}

/// Parses ASCII digits (no sign), at most 18 of them.
pub fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0')))
}

/// Builds messages: header fields, body fields, then BodyLength and CheckSum.
///
/// The body is written after room left for `8=FIX.4.4|9=<length>|`, which [`Encoder::finish`]
/// fills in place once the length is known, so the message is never copied to prepend it.
/// Reuses its buffer, so a long-lived encoder allocates only while the buffer grows.
#[derive(Debug)]
pub struct Encoder {
    buf: Vec<u8>,
    /// Where the finished message starts in `buf` (its prefix is right-aligned in the room).
    finished_at: Option<usize>,
    /// The last whole second a timestamp was written for, and its `YYYYMMDD-HH:MM:SS.`.
    second_text: (Option<u64>, [u8; 18]),
    /// Fields appended by [`Encoder::raw_summed`]: where they are in `buf` (start, end) and
    /// their byte sum, which [`Encoder::finish`] adds instead of summing them again.
    summed: Option<(usize, usize, u8)>,
}

/// Tags whose `tag=` text [`TAG_TEXT`] holds.
const TAG_TEXT_TAGS: usize = 1024;

/// `tag=` for every tag below [`TAG_TEXT_TAGS`], and its length (at most `"1023="`, 5 bytes).
static TAG_TEXT: [([u8; 5], u8); TAG_TEXT_TAGS] = tag_text();

const fn tag_text() -> [([u8; 5], u8); TAG_TEXT_TAGS] {
    let mut table = [([0u8; 5], 0u8); TAG_TEXT_TAGS];
    let mut tag = 0;
    while tag < TAG_TEXT_TAGS {
        let mut digits = [0u8; 4];
        let mut len = 0;
        let mut rest = tag;
        loop {
            digits[len] = b'0' + (rest % 10) as u8;
            len += 1;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        let mut text = [0u8; 5];
        let mut i = 0;
        while i < len {
            text[i] = digits[len - 1 - i];
            i += 1;
        }
        text[len] = b'=';
        table[tag] = (text, len as u8 + 1);
        tag += 1;
    }
    table
}

/// Room before the body: the prefix and the longest BodyLength a `usize` can hold.
const PREFIX_ROOM: usize = PREFIX.len() + 20 + 1;

impl Default for Encoder {
    fn default() -> Encoder {
        Encoder { buf: vec![0; PREFIX_ROOM], finished_at: None, second_text: (None, [0; 18]), summed: None }
    }
}

impl Encoder {
    /// An empty encoder; [`Encoder::begin`] starts each message.
    pub fn new() -> Encoder {
        Encoder::default()
    }

    /// Starts a message: MsgType and the standard header (49, 56, 34, 52).
    pub fn begin(&mut self, msg_type: &[u8], sender: &str, target: &str, seq: u64, sending_time_ns: u64) {
        self.buf.clear();
        self.buf.resize(PREFIX_ROOM, 0);
        self.finished_at = None;
        self.summed = None;
        self.bytes(tag::MSG_TYPE, msg_type);
        self.str(tag::SENDER_COMP_ID, sender);
        self.str(tag::TARGET_COMP_ID, target);
        self.u64(tag::MSG_SEQ_NUM, seq);
        self.time(tag::SENDING_TIME, sending_time_ns);
    }

    /// Appends a field whose value is raw bytes (must not contain SOH).
    pub fn bytes(&mut self, tag: u32, value: &[u8]) {
        debug_assert!(!value.contains(&SOH), "SOH inside a value of tag {tag}");
        self.tag(tag);
        self.buf.extend_from_slice(value);
        self.buf.push(SOH);
    }

    /// Appends a text field; SOH and other control bytes in it become spaces, so free text
    /// (58) can never break framing.
    pub fn str(&mut self, tag: u32, value: &str) {
        self.tag(tag);
        let bytes = value.as_bytes();
        if bytes.iter().all(|&b| b >= 0x20) {
            // The usual case (ids, symbols, text): one copy instead of a byte-by-byte map.
            self.buf.extend_from_slice(bytes);
        } else {
            self.buf.extend(bytes.iter().map(|&b| if b < 0x20 { b' ' } else { b }));
        }
        self.buf.push(SOH);
    }

    /// Appends an integer field.
    pub fn u64(&mut self, tag: u32, value: u64) {
        self.tag(tag);
        self.buf.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        self.buf.push(SOH);
    }

    /// `tag=`: from a table made at compile time for the tags below [`TAG_TEXT_TAGS`] (every
    /// one the venue writes), through `itoa` above it.
    fn tag(&mut self, tag: u32) {
        match TAG_TEXT.get(tag as usize) {
            Some((text, len)) => self.buf.extend_from_slice(&text[..usize::from(*len)]),
            None => {
                self.buf.extend_from_slice(itoa::Buffer::new().format(tag).as_bytes());
                self.buf.push(b'=');
            }
        }
    }

    /// Appends a single-character field.
    pub fn char(&mut self, tag: u32, value: u8) {
        self.bytes(tag, &[value]);
    }

    /// Appends a UTCTimestamp field (`YYYYMMDD-HH:MM:SS.sss`).
    pub fn time(&mut self, tag: u32, ns: u64) {
        self.tag(tag);
        // Every message carries one or two timestamps, and most fall in the second of the one
        // before: the date and time of day are worked out once per second, the milliseconds
        // each time.
        let second = ns / 1_000_000_000;
        if self.second_text.0 == Some(second) {
            self.buf.extend_from_slice(&self.second_text.1);
            let ms = (ns / 1_000_000 % 1_000) as u16;
            self.buf.extend_from_slice(&[
                b'0' + (ms / 100) as u8,
                b'0' + (ms / 10 % 10) as u8,
                b'0' + (ms % 10) as u8,
            ]);
        } else {
            let at = self.buf.len();
            write_utc_timestamp(&mut self.buf, ns);
            self.second_text.1.copy_from_slice(&self.buf[at..at + 18]);
            self.second_text.0 = Some(second);
        }
        self.buf.push(SOH);
    }

    /// Appends a field to the body already begun: anything `Display`.
    pub fn display(&mut self, tag: u32, value: impl std::fmt::Display) {
        self.tag(tag);
        let _ = write!(Buf(&mut self.buf), "{value}\x01");
    }

    /// Appends already-encoded fields (`tag=value<SOH>` each), e.g. from a resend store.
    pub fn raw(&mut self, fields: &[u8]) {
        debug_assert!(fields.is_empty() || fields.ends_with(&[SOH]));
        self.buf.extend_from_slice(fields);
    }

    /// Starts a run of fields that is not a message of its own (no header): fields encoded once
    /// and then sent inside many messages with [`Encoder::raw_summed`]. [`Encoder::body`] is
    /// the run; [`Encoder::finish`] does not apply to it.
    pub fn begin_fields(&mut self) {
        self.buf.clear();
        self.buf.resize(PREFIX_ROOM, 0);
        self.finished_at = None;
        self.summed = None;
    }

    /// Appends already-encoded fields whose byte sum (mod 256, [`checksum`]) is `sum`: the
    /// CheckSum adds `sum` instead of summing them again. For a body shared by many messages
    /// (market data to many sessions), encoded once with [`Encoder::begin_fields`]. At most one
    /// such run per message; a second is summed like any field.
    pub fn raw_summed(&mut self, fields: &[u8], sum: u8) {
        debug_assert_eq!(checksum(fields), sum, "the sum given is not the fields' sum");
        let start = self.buf.len();
        self.raw(fields);
        if self.summed.is_none() {
            self.summed = Some((start, self.buf.len(), sum));
        }
    }

    /// Body fields written so far, from 35= on.
    pub fn body(&self) -> &[u8] {
        &self.buf[PREFIX_ROOM.min(self.buf.len())..]
    }

    /// Finishes the message: writes BeginString and BodyLength before the body, appends
    /// CheckSum, and returns the whole message (again, if called twice).
    pub fn finish(&mut self) -> &[u8] {
        if let Some(at) = self.finished_at {
            return &self.buf[at..];
        }
        let body_len = self.buf.len() - PREFIX_ROOM;
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(body_len).as_bytes();
        let at = PREFIX_ROOM - 1 - digits.len() - PREFIX.len();
        self.buf[at..at + PREFIX.len()].copy_from_slice(PREFIX);
        self.buf[at + PREFIX.len()..PREFIX_ROOM - 1].copy_from_slice(digits);
        self.buf[PREFIX_ROOM - 1] = SOH;
        let sum = match self.summed {
            Some((start, end, sum)) => {
                checksum(&self.buf[at..start]).wrapping_add(sum).wrapping_add(checksum(&self.buf[end..]))
            }
            None => checksum(&self.buf[at..]),
        };
        self.buf.extend_from_slice(&[
            b'1',
            b'0',
            b'=',
            b'0' + sum / 100,
            b'0' + sum / 10 % 10,
            b'0' + sum % 10,
            SOH,
        ]);
        self.finished_at = Some(at);
        &self.buf[at..]
    }
}

/// `fmt::Write` over a byte vector (all we write is ASCII).
struct Buf<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Buf<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Writes nanoseconds since the Unix epoch as a FIX UTCTimestamp with milliseconds.
pub fn write_utc_timestamp(out: &mut Vec<u8>, ns: u64) {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    // Years 0..=9999 (a u64 of nanoseconds ends in 2554).
    let year = t.year().clamp(0, 9999) as u16;
    let ms = t.millisecond();
    let two = |v: u8| [b'0' + v / 10, b'0' + v % 10];
    let [y0, y1] = two((year / 100) as u8);
    let [y2, y3] = two((year % 100) as u8);
    let [mo0, mo1] = two(u8::from(t.month()));
    let [d0, d1] = two(t.day());
    let [h0, h1] = two(t.hour());
    let [mi0, mi1] = two(t.minute());
    let [s0, s1] = two(t.second());
    let m = |d: u16| b'0' + (d % 10) as u8;
    out.extend_from_slice(&[
        y0,
        y1,
        y2,
        y3,
        mo0,
        mo1,
        d0,
        d1,
        b'-',
        h0,
        h1,
        b':',
        mi0,
        mi1,
        b':',
        s0,
        s1,
        b'.',
        m(ms / 100),
        m(ms / 10),
        m(ms),
    ]);
}

/// Parses a FIX UTCTimestamp (`YYYYMMDD-HH:MM:SS` with optional `.sss`, `.ssssss` or
/// `.sssssssss`) into nanoseconds since the Unix epoch.
pub fn parse_utc_timestamp(value: &[u8]) -> Option<u64> {
    if value.len() < 17 || value[8] != b'-' || value[11] != b':' || value[14] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| parse_u64(&value[r]);
    let date = time::Date::from_calendar_date(
        i32::try_from(num(0..4)?).ok()?,
        time::Month::try_from(u8::try_from(num(4..6)?).ok()?).ok()?,
        u8::try_from(num(6..8)?).ok()?,
    )
    .ok()?;
    let nanos = match value.get(17) {
        None => 0,
        Some(b'.') => {
            let frac = &value[18..];
            if frac.is_empty() || frac.len() > 9 {
                return None;
            }
            parse_u64(frac)? * 10u64.pow(9 - frac.len() as u32)
        }
        Some(_) => return None,
    };
    let clock = time::Time::from_hms_nano(
        u8::try_from(num(9..11)?).ok()?,
        u8::try_from(num(12..14)?).ok()?,
        u8::try_from(num(15..17)?).ok()?,
        u32::try_from(nanos).ok()?,
    )
    .ok()?;
    let ns = time::PrimitiveDateTime::new(date, clock).assume_utc().unix_timestamp_nanos();
    u64::try_from(ns).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::{Just, Strategy};

    fn soh(s: &str) -> Vec<u8> {
        s.replace('|', "\x01").into_bytes()
    }

    fn sample() -> Vec<u8> {
        let mut e = Encoder::new();
        e.begin(b"D", "alice", "EXCHANGE", 2, 1_700_000_000_123_000_000);
        e.str(tag::CL_ORD_ID, "a1");
        e.str(tag::SYMBOL, "BTC-USD");
        e.char(tag::SIDE, b'1');
        e.finish().to_vec()
    }

    #[test]
    fn encodes_a_message_with_the_right_length_and_checksum() {
        let m = sample();
        let text = String::from_utf8(m.clone()).unwrap().replace('\x01', "|");
        assert!(text.starts_with("8=FIX.4.4|9="), "{text}");
        assert!(text.contains("|52=20231114-22:13:20.123|"), "{text}");
        assert_eq!(frame(&m, 4096), Ok(Some(m.len())));
        // Hand-checked against the definition: body from 35= to the SOH before 10=.
        let body_start = m.iter().position(|&b| b == b'3').unwrap();
        let body_end = m.len() - 7;
        assert!(text.contains(&format!("|9={}|", body_end - body_start)));
        assert_eq!(&m[m.len() - 7..m.len() - 4], b"10=");
    }

    #[test]
    fn frames_incrementally_and_rejects_damage() {
        let m = sample();
        for cut in 0..m.len() {
            assert_eq!(frame(&m[..cut], 4096), Ok(None), "cut at {cut}");
        }
        let mut two = m.clone();
        two.extend_from_slice(&m);
        assert_eq!(frame(&two, 4096), Ok(Some(m.len())));

        let mut flipped = m.clone();
        let i = m.len() / 2;
        flipped[i] ^= 0x02;
        assert!(matches!(frame(&flipped, 4096), Err(FrameError::BadChecksum { len, .. }) if len == m.len()));

        assert_eq!(frame(&m, 40), Err(FrameError::TooLarge { len: m.len(), max: 40 }));
        assert_eq!(frame(b"8=FIX.4.2\x019=5\x01", 4096), Err(FrameError::BadBeginString));
        assert_eq!(frame(b"GET / HTTP/1.1", 4096), Err(FrameError::BadBeginString));
        assert_eq!(frame(b"8=FIX.4.4\x019=x\x01", 4096), Err(FrameError::BadBodyLength));
        assert_eq!(frame(b"8=FIX.4.4\x019=123456789", 4096), Err(FrameError::BadBodyLength));
        // BodyLength one short: 10= is not where it should be.
        let text = String::from_utf8(m.clone()).unwrap();
        let len_field = text.split('\x01').nth(1).unwrap().to_owned();
        let n: usize = len_field[2..].parse().unwrap();
        let wrong = text.replacen(&len_field, &format!("9={}", n - 1), 1);
        assert_eq!(frame(wrong.as_bytes(), 4096), Err(FrameError::BadBodyLength));
    }

    #[test]
    fn parses_fields_without_copying() {
        let m = sample();
        let mut fields = Fields::default();
        let msg = Message::parse(&m, &mut fields).unwrap();
        assert_eq!(msg.msg_type(), b"D");
        assert_eq!(msg.get_str(tag::SYMBOL), Some("BTC-USD"));
        assert_eq!(msg.get_u64(tag::MSG_SEQ_NUM), Ok(Some(2)));
        assert_eq!(msg.get(tag::PRICE), None);
        assert_eq!(msg.get_u64(tag::SYMBOL), Err(tag::SYMBOL));
        assert_eq!(msg.tags().take(3).collect::<Vec<_>>(), [8, 9, 35]);
    }

    #[test]
    fn parse_errors_name_the_fault() {
        let parse = |s: &str| Message::parse(&soh(s), &mut Fields::default()).map(|m| m.msg_type().to_vec());
        assert_eq!(parse("8=FIX.4.4|9=5|35=0|34=1|34=2|"), Err(ParseError::DuplicateTag(34)));
        assert_eq!(parse("8=FIX.4.4|9=5|35=0|58=|"), Err(ParseError::EmptyValue(58)));
        assert_eq!(parse("8=FIX.4.4|9=5|35=0|x=1|"), Err(ParseError::BadField { index: 3 }));
        assert_eq!(parse("8=FIX.4.4|9=5|35=0|0=1|"), Err(ParseError::BadField { index: 3 }));
        assert_eq!(parse("8=FIX.4.4|9=5|nothing|"), Err(ParseError::BadField { index: 2 }));
        assert_eq!(parse("8=FIX.4.4|35=0|9=5|"), Err(ParseError::HeaderOrder));
        // Group members repeat in the MsgTypes that carry their group, and only there.
        assert_eq!(parse("8=FIX.4.4|9=5|35=D|453=2|448=a|448=b|"), Ok(b"D".to_vec()));
        assert_eq!(parse("8=FIX.4.4|9=5|35=0|453=2|448=a|448=b|"), Err(ParseError::DuplicateTag(448)));
        assert_eq!(parse("8=FIX.4.4|9=5|35=V|146=2|55=A|55=B|"), Ok(b"V".to_vec()));
        assert_eq!(parse("8=FIX.4.4|9=5|35=D|55=A|55=B|"), Err(ParseError::DuplicateTag(55)));
        let many: String = (0..FIELDS_MAX).map(|i| format!("{}=1|", 1000 + i)).collect();
        assert_eq!(parse(&format!("8=FIX.4.4|9=5|35=0|{many}")), Err(ParseError::TooManyFields));
    }

    #[test]
    fn control_bytes_in_text_cannot_break_framing() {
        let mut e = Encoder::new();
        e.begin(b"3", "EXCHANGE", "alice", 9, 0);
        e.str(tag::TEXT, "bad\x0110=000\x01");
        let m = e.finish().to_vec();
        assert_eq!(frame(&m, 4096), Ok(Some(m.len())));
        assert_eq!(
            Message::parse(&m, &mut Fields::default()).unwrap().get_str(tag::TEXT),
            Some("bad 10=000 ")
        );
    }

    /// The table-made `tag=` and the once-a-second timestamp text are what the plain writers
    /// make, for every tag of the table and across second, day and year boundaries.
    #[test]
    fn tag_text_and_cached_timestamps_match_the_plain_writers() {
        let mut e = Encoder::new();
        for tag in 1..3 * TAG_TEXT_TAGS as u32 {
            e.begin(b"0", "A", "B", 1, 0);
            let start = e.body().len();
            e.u64(tag, 7);
            assert_eq!(&e.body()[start..], format!("{tag}=7\x01").as_bytes());
        }
        let moments = [
            1_796_000_000_999_000_000u64,
            1_796_000_001_000_000_000,
            1_796_000_001_000_999_999,
            1_796_000_001_001_000_000,
            1_009_843_199_999_999_999, // 2001-12-31 23:59:59.999
            1_009_843_200_000_000_000, // 2002-01-01 00:00:00.000
            1_796_000_001_500_000_000, // back to an earlier second
            0,
        ];
        for ns in moments {
            e.begin(b"0", "A", "B", 1, 0);
            let start = e.body().len();
            e.time(tag::SENDING_TIME, ns);
            let mut plain = b"52=".to_vec();
            write_utc_timestamp(&mut plain, ns);
            plain.push(SOH);
            assert_eq!(&e.body()[start..], &plain[..], "at {ns}");
        }
    }

    #[test]
    fn timestamps_round_trip() {
        let ns = 1_700_000_000_123_000_000;
        let mut out = Vec::new();
        write_utc_timestamp(&mut out, ns);
        assert_eq!(out, b"20231114-22:13:20.123");
        assert_eq!(parse_utc_timestamp(&out), Some(ns));
        assert_eq!(parse_utc_timestamp(b"20231114-22:13:20"), Some(1_700_000_000_000_000_000));
        assert_eq!(parse_utc_timestamp(b"20231114-22:13:20.000000001"), Some(1_700_000_000_000_000_001));
        assert_eq!(parse_utc_timestamp(b"20231314-22:13:20"), None);
        assert_eq!(parse_utc_timestamp(b"2023-11-14T22:13:20"), None);
        for (ns, text) in [
            (0, &b"19700101-00:00:00.000"[..]),
            (1_009_843_199_999_000_000, b"20011231-23:59:59.999"),
            (u64::MAX, b"25540721-23:34:33.709"),
        ] {
            out.clear();
            write_utc_timestamp(&mut out, ns);
            assert_eq!(out, text, "{}", String::from_utf8_lossy(&out));
        }
    }

    #[test]
    fn checksum_and_integers_are_written_with_their_digits() {
        for seq in [0, 7, 10, 99, 100, 12_345, u64::MAX] {
            let mut e = Encoder::new();
            e.begin(b"0", "A", "B", seq, 0);
            e.u64(38, seq);
            let m = e.finish().to_vec();
            let text = String::from_utf8_lossy(&m).replace('\x01', "|");
            assert!(text.contains(&format!("|34={seq}|")) && text.contains(&format!("|38={seq}|")), "{text}");
            let sum = checksum(&m[..m.len() - 7]);
            assert!(text.ends_with(&format!("|10={sum:03}|")), "{text}");
            Message::parse(&m, &mut Fields::default()).expect("parses");
        }
    }

    #[test]
    fn fields_encoded_once_make_the_same_message_as_fields_written_in_place() {
        let mut shared = Encoder::new();
        shared.begin_fields();
        shared.u64(268, 2);
        shared.str(tag::SYMBOL, "BTC-USD");
        shared.str(270, "100.00");
        let (fields, sum) = (shared.body().to_vec(), checksum(shared.body()));
        assert_eq!(String::from_utf8_lossy(&fields).replace('\x01', "|"), "268=2|55=BTC-USD|270=100.00|");
        for (seq, id) in [(9, "a"), (1_000, "longer-id")] {
            let mut e = Encoder::new();
            e.begin(b"X", "EXCHANGE", "md", seq, 1_700_000_000_000_000_000);
            e.str(262, id);
            e.raw_summed(&fields, sum);
            e.str(tag::TEXT, "after");
            let with_sum = e.finish().to_vec();
            let mut plain = Encoder::new();
            plain.begin(b"X", "EXCHANGE", "md", seq, 1_700_000_000_000_000_000);
            plain.str(262, id);
            plain.raw(&fields);
            plain.str(tag::TEXT, "after");
            assert_eq!(with_sum, plain.finish(), "the same bytes, CheckSum included");
            assert_eq!(frame(&with_sum, 4096), Ok(Some(with_sum.len())), "the checksum verifies");
            // A reused encoder forgets the summed run at the next message.
            e.begin(b"0", "EXCHANGE", "md", seq + 1, 0);
            let next = e.finish().to_vec();
            assert_eq!(frame(&next, 4096), Ok(Some(next.len())));
        }
    }

    /// The parser as first written: a field at a time, `=` found by a scan, duplicates by a
    /// scan of the fields so far. The real one must agree with it on every input.
    fn reference_parse(bytes: &[u8]) -> Result<Vec<(u32, u32, u32)>, ParseError> {
        let mut fields: Vec<(u32, u32, u32)> = Vec::new();
        let mut start = 0usize;
        while start < bytes.len() {
            let end = start + bytes[start..].iter().position(|&b| b == SOH).unwrap_or(bytes.len() - start);
            let field = &bytes[start..end];
            let index = fields.len();
            let eq = field.iter().position(|&b| b == b'=').ok_or(ParseError::BadField { index })?;
            let tag = parse_u64(&field[..eq])
                .filter(|&t| t > 0 && t <= u64::from(u32::MAX))
                .ok_or(ParseError::BadField { index })? as u32;
            if eq + 1 == field.len() {
                return Err(ParseError::EmptyValue(tag));
            }
            if fields.len() == FIELDS_MAX {
                return Err(ParseError::TooManyFields);
            }
            let repeatable = match fields.get(2) {
                Some(&(t, s, e)) if t == tag::MSG_TYPE => {
                    crate::dictionary::repeatable(&bytes[s as usize..e as usize])
                }
                _ => &crate::dictionary::TagSet::EMPTY,
            };
            if !repeatable.contains(tag) && fields.iter().any(|f| f.0 == tag) {
                return Err(ParseError::DuplicateTag(tag));
            }
            fields.push((tag, (start + eq + 1) as u32, end as u32));
            start = end + 1;
        }
        let order_ok = fields.len() >= 3
            && fields[0].0 == tag::BEGIN_STRING
            && fields[1].0 == tag::BODY_LENGTH
            && fields[2].0 == tag::MSG_TYPE;
        if !order_ok {
            return Err(ParseError::HeaderOrder);
        }
        Ok(fields)
    }

    proptest::proptest! {
        #[test]
        fn find_soh_agrees_with_a_scan(
            bytes in proptest::collection::vec(
                proptest::prop_oneof![Just(SOH), Just(0u8), Just(2u8), Just(0x81u8), proptest::num::u8::ANY],
                0..40,
            ),
            from in 0usize..40,
        ) {
            let from = from.min(bytes.len());
            let scan = bytes[from..].iter().position(|&b| b == SOH).map_or(bytes.len(), |i| from + i);
            proptest::prop_assert_eq!(find_soh(&bytes, from), scan);
        }
    }

    #[test]
    fn duplicates_of_large_tags_are_found_too() {
        let parse = |s: &str| Message::parse(&soh(s), &mut Fields::default()).map(|m| m.msg_type().to_vec());
        assert_eq!(parse("8=FIX.4.4|9=5|35=U1|5100=a|5101=b|5100=c|"), Err(ParseError::DuplicateTag(5100)));
        assert_eq!(parse("8=FIX.4.4|9=5|35=U1|1023=a|1024=b|1023=c|"), Err(ParseError::DuplicateTag(1023)));
        assert_eq!(parse("8=FIX.4.4|9=5|35=U1|1023=a|1024=b|4294967295=c|"), Ok(b"U1".to_vec()));
        assert_eq!(parse("8=FIX.4.4|9=5|35=U1|4294967296=c|"), Err(ParseError::BadField { index: 3 }));
        assert_eq!(
            parse("8=FIX.4.4|9=5|35=U1|0000000000000000001=c|"),
            Err(ParseError::BadField { index: 3 })
        );
        assert_eq!(parse("8=FIX.4.4|9=5|35=U1|000000000000000001=c|"), Ok(b"U1".to_vec()));
    }

    proptest::proptest! {
        /// The parser agrees with the reference on messages built of plausible and broken
        /// fields: the same fields, or the same error.
        #[test]
        fn parse_agrees_with_the_reference(
            fields in proptest::collection::vec(
                (
                    proptest::prop_oneof![
                        Just(String::new()),
                        (1u32..40).prop_map(|t| t.to_string()),
                        (440u32..460).prop_map(|t| t.to_string()),
                        (1000u32..1030).prop_map(|t| t.to_string()),
                        (5098u32..5106).prop_map(|t| t.to_string()),
                        "[0-9x=]{0,20}",
                    ],
                    proptest::prop_oneof![Just("=".to_owned()), Just(String::new()), Just("x".to_owned())],
                    "[ -~]{0,4}",
                ),
                0..110,
            )
        ) {
            let mut bytes = b"8=FIX.4.4\x019=5\x0135=D\x01".to_vec();
            for (tag, eq, value) in &fields {
                bytes.extend_from_slice(tag.as_bytes());
                bytes.extend_from_slice(eq.as_bytes());
                bytes.extend_from_slice(value.as_bytes());
                bytes.push(SOH);
            }
            let mut fields = Fields::default();
            let ours = Message::parse(&bytes, &mut fields).map(|m| m.fields.to_vec());
            proptest::prop_assert_eq!(ours, reference_parse(&bytes));
        }

        /// Whatever the bytes, framing and parsing answer without panicking, and parsing
        /// agrees with the reference.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = frame(&bytes, 4096);
            let mut fields = Fields::default();
            let ours = Message::parse(&bytes, &mut fields).map(|m| m.fields.to_vec());
            proptest::prop_assert_eq!(ours, reference_parse(&bytes));
            let mut prefixed = PREFIX.to_vec();
            prefixed.extend_from_slice(&bytes);
            let _ = frame(&prefixed, 4096);
        }

        /// Encoded text fields come back exactly (control bytes aside).
        #[test]
        fn encoded_values_parse_back(text in "[ -~]{1,60}", seq in 1u64..1_000_000_000) {
            let mut e = Encoder::new();
            e.begin(b"8", "EXCHANGE", "bob", seq, 0);
            e.str(tag::TEXT, &text);
            let m = e.finish().to_vec();
            proptest::prop_assert_eq!(frame(&m, 4096), Ok(Some(m.len())));
            let mut fields = Fields::default();
            let msg = Message::parse(&m, &mut fields).unwrap();
            proptest::prop_assert_eq!(msg.get_str(tag::TEXT), Some(text.as_str()));
            proptest::prop_assert_eq!(msg.get_u64(tag::MSG_SEQ_NUM), Ok(Some(seq)));
        }
    }
}
