//! FIX 4.4 market data on the order-entry sessions: MarketDataRequest (35=V) parsed into an
//! [`MdRequest`], and the [`MarketDataDesk`] that answers it with MarketDataSnapshotFullRefresh
//! (35=W), MarketDataIncrementalRefresh (35=X) and MarketDataRequestReject (35=Y).
//!
//! Sans-IO: the desk is fed engine events in sequence order from event 1 (the gateway thread
//! reads them from the event journal with a `journal::Tailer`) and writes messages through an
//! [`MdSink`], which also tells it how far behind each session's transport is. A session whose
//! backlog passes [`MdConfig::backlog_bytes_max`] gets no increments: its subscriptions are
//! marked stale (counted in [`MdStats::conflations`]) and, once its backlog has drained to half
//! the bound, each gets a fresh 35=W: conflation, never a silent gap.
//!
//! Batches: [`MarketDataDesk::apply`] takes events into the current batch and
//! [`MarketDataDesk::flush`] sends it (the gateway does once per loop turn): per symbol and
//! subscription one 35=X (or a few, [`INCREMENTAL_ENTRIES_MAX`] entries each) with every trade of
//! the batch and each touched level's net change, its body (from 268 on) encoded once per
//! *stream* (the subscriptions of a symbol with the same entry types and depth) and sent to all
//! of them behind each one's header and MDReqID.
//!
//! Sequencing (docs/fix.md): every stream keeps a RptSeq (83). A 35=W carries the RptSeq it is
//! as of (at the top, where FIX 5.0 puts it); each 35=X entry carries the next one, so a client
//! that applies a W and then every X entry whose 83 is one more than the last holds the book
//! exactly, and sees any gap.

use engine::Event;
use fix::codec::{Encoder, Message};
use marketdata::{Body, Channel, FeedConfig, Level, MarketData, ProjectionConfig, ProjectionError, Side};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::router::SessionId;
use crate::venue::Symbols;

/// The market-data tags of FIX 4.4 the venue reads and writes.
#[allow(missing_docs)]
pub mod tags {
    pub const RPT_SEQ: u32 = 83;
    pub const NO_RELATED_SYM: u32 = 146;
    pub const MD_REQ_ID: u32 = 262;
    pub const SUBSCRIPTION_REQUEST_TYPE: u32 = 263;
    pub const MARKET_DEPTH: u32 = 264;
    pub const MD_UPDATE_TYPE: u32 = 265;
    pub const NO_MD_ENTRY_TYPES: u32 = 267;
    pub const NO_MD_ENTRIES: u32 = 268;
    pub const MD_ENTRY_TYPE: u32 = 269;
    pub const MD_ENTRY_PX: u32 = 270;
    pub const MD_ENTRY_SIZE: u32 = 271;
    pub const MD_UPDATE_ACTION: u32 = 279;
    pub const MD_REQ_REJ_REASON: u32 = 281;
    pub const LAST_FRAGMENT: u32 = 893;
    pub const SECURITY_TRADING_STATUS: u32 = 326;
}

/// SecurityTradingStatus (326) of a halted symbol: 2, trading halt.
pub const TRADING_STATUS_HALTED: u64 = 2;
/// SecurityTradingStatus (326) of a symbol trading again after a halt: 17, ready to trade.
pub const TRADING_STATUS_READY: u64 = 17;

use fix::codec::tag::{SYMBOL, TEXT, TRANSACT_TIME};

/// Deepest MarketDepth (264) accepted other than 0 (full book): a window of N levels is kept
/// per subscribed symbol, so N is bounded.
pub const MD_DEPTH_MAX: usize = 10_000;
/// Entries in one 35=W fragment: with 3 fields each and the header, a fragment stays well
/// inside [`fix::codec::FIELDS_MAX`] and the default message size, so any FIX client parses it.
pub const SNAPSHOT_ENTRIES_MAX: usize = 20;
/// Entries in one 35=X (6 fields each), for the same reason.
pub const INCREMENTAL_ENTRIES_MAX: usize = 12;
/// MDReqID (262) length at most.
pub const MD_REQ_ID_BYTES_MAX: usize = 64;

/// Bounds of the desk (`[marketdata]` in the serve configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MdConfig {
    /// Symbol subscriptions (an MDReqID × a symbol) one session may hold.
    pub subscriptions_max: usize,
    /// Bytes waiting for a session's transport past which its subscriptions are conflated.
    pub backlog_bytes_max: usize,
}

impl Default for MdConfig {
    fn default() -> MdConfig {
        MdConfig { subscriptions_max: 16, backlog_bytes_max: 256 << 10 }
    }
}

/// Which entry types (269) a request asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EntryTypes {
    /// 269=0.
    pub bid: bool,
    /// 269=1.
    pub offer: bool,
    /// 269=2.
    pub trade: bool,
}

impl EntryTypes {
    fn side(&self, side: Side) -> bool {
        match side {
            Side::Buy => self.bid,
            Side::Sell => self.offer,
        }
    }
}

/// SubscriptionRequestType (263).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubscriptionType {
    /// 0: one 35=W per symbol.
    Snapshot,
    /// 1: a 35=W per symbol, then updates.
    Subscribe,
    /// 2: ends the subscription named by MDReqID.
    Unsubscribe,
}

/// A parsed MarketDataRequest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MdRequest {
    /// MDReqID (262).
    pub req_id: String,
    /// 263.
    pub kind: SubscriptionType,
    /// Levels per side (264); `None` is the full book (264=0).
    pub depth: Option<usize>,
    /// MDUpdateType (265) 0: every update is a fresh 35=W instead of a 35=X.
    pub full_refresh_updates: bool,
    /// 267/269.
    pub types: EntryTypes,
    /// 146/55, each once, in request order.
    pub symbols: Vec<engine::SymbolId>,
}

/// MDReqRejReason (281), FIX 4.4 codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectReason {
    /// 0.
    UnknownSymbol,
    /// 1.
    DuplicateMdReqId,
    /// 2: the session holds its most subscriptions, or market data is not available.
    InsufficientBandwidth,
    /// 4.
    UnsupportedSubscriptionRequestType,
    /// 5.
    UnsupportedMarketDepth,
    /// 6.
    UnsupportedMdUpdateType,
    /// 8.
    UnsupportedMdEntryType,
}

/// The `reason` label of a 35=Y, by [`RejectReason::index`]; the last is a refusal without a
/// 281 code (unsubscribing an unknown MDReqID).
pub const REJECT_REASON_LABELS: [&str; 8] = [
    "unknown_symbol",
    "duplicate_md_req_id",
    "insufficient_bandwidth",
    "unsupported_subscription_request_type",
    "unsupported_market_depth",
    "unsupported_md_update_type",
    "unsupported_md_entry_type",
    "unknown_md_req_id",
];

impl RejectReason {
    /// Where `reason` counts in [`MdStats::rejects_by_reason`] and [`REJECT_REASON_LABELS`].
    pub fn index(reason: Option<RejectReason>) -> usize {
        match reason {
            Some(RejectReason::UnknownSymbol) => 0,
            Some(RejectReason::DuplicateMdReqId) => 1,
            Some(RejectReason::InsufficientBandwidth) => 2,
            Some(RejectReason::UnsupportedSubscriptionRequestType) => 3,
            Some(RejectReason::UnsupportedMarketDepth) => 4,
            Some(RejectReason::UnsupportedMdUpdateType) => 5,
            Some(RejectReason::UnsupportedMdEntryType) => 6,
            None => 7,
        }
    }

    /// The 281 code.
    pub fn code(self) -> u8 {
        match self {
            RejectReason::UnknownSymbol => b'0',
            RejectReason::DuplicateMdReqId => b'1',
            RejectReason::InsufficientBandwidth => b'2',
            RejectReason::UnsupportedSubscriptionRequestType => b'4',
            RejectReason::UnsupportedMarketDepth => b'5',
            RejectReason::UnsupportedMdUpdateType => b'6',
            RejectReason::UnsupportedMdEntryType => b'8',
        }
    }
}

/// A MarketDataRequestReject (35=Y) to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MdReject {
    /// MDReqID echoed.
    pub req_id: String,
    /// 281; `None` where FIX 4.4 has no code (unsubscribing an unknown MDReqID).
    pub reason: Option<RejectReason>,
    /// 58.
    pub text: String,
}

impl MdReject {
    fn new(req_id: &str, reason: Option<RejectReason>, text: String) -> MdReject {
        MdReject { req_id: req_id.to_owned(), reason, text }
    }

    /// Writes the 35=Y body.
    pub fn encode(&self, e: &mut Encoder) {
        e.str(tags::MD_REQ_ID, &self.req_id);
        if let Some(reason) = self.reason {
            e.char(tags::MD_REQ_REJ_REASON, reason.code());
        }
        e.str(TEXT, &self.text);
    }
}

/// Why a MarketDataRequest was not parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MdRequestError {
    /// A required field is missing (a session-level Reject, 373=1): the tag and its name.
    Missing(u32, &'static str),
    /// The request is understood and refused (35=Y).
    Reject(MdReject),
}

/// Parses a MarketDataRequest (35=V) against the venue's symbols.
pub fn parse_request(msg: &Message<'_>, symbols: &Symbols) -> Result<MdRequest, MdRequestError> {
    let req_id = msg.get_str(tags::MD_REQ_ID).ok_or(MdRequestError::Missing(tags::MD_REQ_ID, "MDReqID"))?;
    if req_id.len() > MD_REQ_ID_BYTES_MAX {
        let text = format!("MDReqID (262) longer than {MD_REQ_ID_BYTES_MAX} bytes");
        return Err(refuse(req_id, RejectReason::InsufficientBandwidth, text));
    }
    let kind = subscription_type(msg, req_id)?;
    if kind == SubscriptionType::Unsubscribe {
        let request = MdRequest {
            req_id: req_id.to_owned(),
            kind,
            depth: None,
            full_refresh_updates: false,
            types: EntryTypes::default(),
            symbols: Vec::new(),
        };
        return Ok(request);
    }
    Ok(MdRequest {
        req_id: req_id.to_owned(),
        kind,
        depth: market_depth(msg, req_id)?,
        full_refresh_updates: full_refresh_updates(msg, req_id)?,
        types: entry_types(msg, req_id)?,
        symbols: related_symbols(msg, req_id, symbols)?,
    })
}

/// A 35=Y for request `req_id`.
fn refuse(req_id: &str, reason: RejectReason, text: String) -> MdRequestError {
    MdRequestError::Reject(MdReject::new(req_id, Some(reason), text))
}

/// SubscriptionRequestType (263): 0 snapshot, 1 subscribe, 2 unsubscribe.
fn subscription_type(msg: &Message<'_>, req_id: &str) -> Result<SubscriptionType, MdRequestError> {
    match msg.get(tags::SUBSCRIPTION_REQUEST_TYPE) {
        Some(b"0") => Ok(SubscriptionType::Snapshot),
        Some(b"1") => Ok(SubscriptionType::Subscribe),
        Some(b"2") => Ok(SubscriptionType::Unsubscribe),
        Some(other) => Err(refuse(
            req_id,
            RejectReason::UnsupportedSubscriptionRequestType,
            format!(
                "unsupported SubscriptionRequestType (263) {}: use 0, 1 or 2",
                String::from_utf8_lossy(other)
            ),
        )),
        None => Err(MdRequestError::Missing(tags::SUBSCRIPTION_REQUEST_TYPE, "SubscriptionRequestType")),
    }
}

/// MarketDepth (264): 0 is the full book (None), else 1 to [`MD_DEPTH_MAX`] levels.
fn market_depth(msg: &Message<'_>, req_id: &str) -> Result<Option<usize>, MdRequestError> {
    let text =
        msg.get(tags::MARKET_DEPTH).ok_or(MdRequestError::Missing(tags::MARKET_DEPTH, "MarketDepth"))?;
    match fix::codec::parse_u64(text).map(usize::try_from) {
        Some(Ok(0)) => Ok(None),
        Some(Ok(n)) if n <= MD_DEPTH_MAX => Ok(Some(n)),
        _ => Err(refuse(
            req_id,
            RejectReason::UnsupportedMarketDepth,
            format!(
                "unsupported MarketDepth (264) {}: 0 (full book) or 1 to {MD_DEPTH_MAX}",
                String::from_utf8_lossy(text)
            ),
        )),
    }
}

/// MDUpdateType (265): 1 incremental (the default) or 0 full refresh.
fn full_refresh_updates(msg: &Message<'_>, req_id: &str) -> Result<bool, MdRequestError> {
    match msg.get(tags::MD_UPDATE_TYPE) {
        None | Some(b"1") => Ok(false),
        Some(b"0") => Ok(true),
        Some(other) => Err(refuse(
            req_id,
            RejectReason::UnsupportedMdUpdateType,
            format!("unsupported MDUpdateType (265) {}: use 0 or 1", String::from_utf8_lossy(other)),
        )),
    }
}

/// The NoMDEntryTypes group (267 of 269): bid 0, offer 1, trade 2; at least one.
fn entry_types(msg: &Message<'_>, req_id: &str) -> Result<EntryTypes, MdRequestError> {
    let mut types = EntryTypes::default();
    for entry in msg.group(tags::NO_MD_ENTRY_TYPES) {
        match entry.get(tags::MD_ENTRY_TYPE) {
            Some(b"0") => types.bid = true,
            Some(b"1") => types.offer = true,
            Some(b"2") => types.trade = true,
            other => {
                let text = String::from_utf8_lossy(other.unwrap_or(b""));
                let text = format!(
                    "unsupported MDEntryType (269) {text}: the venue publishes 0 bid, 1 offer, 2 trade"
                );
                return Err(refuse(req_id, RejectReason::UnsupportedMdEntryType, text));
            }
        }
    }
    if types == EntryTypes::default() {
        return Err(MdRequestError::Missing(tags::NO_MD_ENTRY_TYPES, "NoMDEntryTypes"));
    }
    Ok(types)
}

/// The NoRelatedSym group (146 of 55): listed symbols, each once; at least one.
fn related_symbols(
    msg: &Message<'_>,
    req_id: &str,
    symbols: &Symbols,
) -> Result<Vec<engine::SymbolId>, MdRequestError> {
    let mut ids = Vec::new();
    for entry in msg.group(tags::NO_RELATED_SYM) {
        let name = entry.get_str(SYMBOL).unwrap_or("");
        let id = symbols.id(name).ok_or_else(|| {
            refuse(req_id, RejectReason::UnknownSymbol, format!("unknown symbol {name:?}: not listed"))
        })?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    if ids.is_empty() {
        return Err(MdRequestError::Missing(tags::NO_RELATED_SYM, "NoRelatedSym"));
    }
    Ok(ids)
}

/// Where the desk's messages go, and how far behind each session is.
pub trait MdSink {
    /// Bytes waiting for `session`'s transport; `None` when it has no live session.
    fn backlog(&mut self, session: SessionId) -> Option<usize>;
    /// Sends an application message on `session`: 35=W and 35=X are numbered but not kept for
    /// resend ([`fix::session::Session::send_unstored`]), 35=Y is kept like any answer.
    fn send(&mut self, session: SessionId, msg_type: &[u8], fields: &mut dyn FnMut(&mut Encoder));
}

/// Writes a SecurityStatus (35=f) of `symbol`: 55, 326 (2 halted, 17 ready to trade), 60 the
/// time of the engine event that changed it (or of the subscription, for the status a new
/// subscriber of a halted symbol is told).
fn write_status(sink: &mut impl MdSink, session: SessionId, name: &str, halted: bool, ts_ns: u64) {
    sink.send(session, b"f", &mut |e| {
        e.str(SYMBOL, name);
        e.u64(
            tags::SECURITY_TRADING_STATUS,
            if halted { TRADING_STATUS_HALTED } else { TRADING_STATUS_READY },
        );
        e.time(TRANSACT_TIME, ts_ns);
        e.str(TEXT, if halted { "halted by the venue" } else { "trading resumed" });
    });
}

/// Symbol subscriptions in `subs`.
fn held_by(subs: &[Subscription]) -> usize {
    subs.iter().map(|s| s.symbols.len()).sum()
}

/// Counters since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MdStats {
    /// 35=W messages (fragments counted one each).
    pub snapshots: u64,
    /// 35=X messages.
    pub incrementals: u64,
    /// 35=Y messages.
    pub rejects: u64,
    /// 35=Y messages by reason ([`RejectReason::index`]).
    pub rejects_by_reason: [u64; REJECT_REASON_LABELS.len()],
    /// Subscriptions made stale by a slow session (each later refreshed by a 35=W).
    pub conflations: u64,
    /// SecurityStatus (35=f) messages: a halt or resume told to a subscribed session.
    pub statuses: u64,
}

/// One entry of a 35=W or 35=X.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    /// 279: b'0' new, b'1' change, b'2' delete (unused in a 35=W).
    action: u8,
    /// 269: b'0' bid, b'1' offer, b'2' trade.
    kind: u8,
    price: i64,
    qty: u64,
}

fn entry_kind(side: Side) -> u8 {
    match side {
        Side::Buy => b'0',
        Side::Sell => b'1',
    }
}

fn side_index(side: Side) -> usize {
    match side {
        Side::Buy => 0,
        Side::Sell => 1,
    }
}

/// One symbol of a subscription: the stream it follows.
#[derive(Debug)]
struct SubSymbol {
    symbol: engine::SymbolId,
    /// Index of its [`Stream`] in [`MarketDataDesk::streams`].
    stream: usize,
}

#[derive(Debug)]
struct Subscription {
    req_id: String,
    types: EntryTypes,
    depth: Option<usize>,
    full_refresh_updates: bool,
    symbols: Vec<SubSymbol>,
    /// Updates were skipped while the session was slow: a 35=W is owed.
    stale: bool,
}

/// What every subscription of one symbol with the same entry types and depth hears: one
/// RptSeq, one depth window, and each batch's 35=X bodies (after 262) encoded once and sent to
/// all of them.
#[derive(Debug)]
struct Stream {
    symbol: engine::SymbolId,
    types: EntryTypes,
    depth: Option<usize>,
    /// The RptSeq of the last entry encoded.
    rpt_seq: u64,
    /// Depth-limited streams: the top N last sent, best first, per side.
    window: [Vec<Level>; 2],
    /// Symbol subscriptions following it; the stream ends with the last.
    users: usize,
    /// The current batch's 35=X bodies from 268 on, one after the other: each is
    /// `bytes[previous end..end]` with its byte sum, `(end, sum)` in `chunks`.
    bytes: Vec<u8>,
    chunks: Vec<(usize, u8)>,
}

impl Stream {
    /// The current batch's 35=X bodies with their byte sums.
    fn bodies(&self) -> impl Iterator<Item = (&[u8], u8)> + '_ {
        let starts = std::iter::once(0).chain(self.chunks.iter().map(|&(end, _)| end));
        starts.zip(&self.chunks).map(|(start, &(end, sum))| (&self.bytes[start..end], sum))
    }
}

/// What the events of the current batch did to one symbol, kept while the symbol has streams.
#[derive(Debug, Default)]
struct Pending {
    /// Levels touched, (is bid, price) in the order first touched, with their size before the
    /// batch (`None`: absent).
    touched: Vec<((bool, i64), Option<u64>)>,
    /// The keys in `touched`.
    seen: FxHashSet<(bool, i64)>,
    /// Every trade, in order.
    trades: Vec<Entry>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.touched.is_empty() && self.trades.is_empty()
    }
}

/// Trades and touched levels a batch holds before the desk sends it ([`MarketDataDesk::apply`]
/// flushes at this many; the gateway also ends a batch every turn, at most
/// `MD_EVENTS_PER_TURN` events).
pub const BATCH_ENTRIES_MAX: usize = 4096;

/// The FIX market-data side of the gateway; see the module docs.
#[derive(Debug)]
pub struct MarketDataDesk {
    md: MarketData,
    symbols: Symbols,
    config: MdConfig,
    sessions: FxHashMap<SessionId, Vec<Subscription>>,
    /// Per symbol, the size of every level of the full book by (is bid, price): what a
    /// full-depth subscriber holds once the current batch is sent.
    present: Vec<FxHashMap<(bool, i64), u64>>,
    /// Per symbol, the current batch (kept only for symbols with streams).
    pending: Vec<Pending>,
    /// Symbols whose `pending` is not empty.
    dirty: Vec<engine::SymbolId>,
    /// Trades and touched levels in every `pending` (bounded by [`BATCH_ENTRIES_MAX`]).
    batch_entries: usize,
    /// Streams by index (`None`: a free slot, listed in `free_streams`).
    streams: Vec<Option<Stream>>,
    free_streams: Vec<usize>,
    /// Per symbol, the indexes of its streams.
    by_symbol: Vec<Vec<usize>>,
    /// Streams with bodies in the current batch.
    changed: Vec<usize>,
    /// Encodes the shared bodies.
    body: Encoder,
    /// Sessions with a stale subscription.
    stale_sessions: FxHashSet<SessionId>,
    scratch: Vec<marketdata::Message>,
    /// The entries a full-depth subscription gets for the current batch (trades, then levels).
    full: Vec<Entry>,
    entries: Vec<Entry>,
    window_scratch: WindowScratch,
    stats: MdStats,
    /// A session with subscriptions ended since [`MarketDataDesk::take_ended`].
    ended: bool,
    /// Symbol subscriptions all sessions hold ([`MarketDataDesk::subscriptions_held`]).
    held: usize,
    /// Seq of the last event applied.
    applied_seq: u64,
}

impl MarketDataDesk {
    /// A desk before event 1.
    pub fn new(symbols: Symbols, config: MdConfig) -> MarketDataDesk {
        let count = symbols.specs().len();
        let feed = FeedConfig {
            projection: ProjectionConfig { symbols: count, ..ProjectionConfig::default() },
            checksum_depth: None,
            ..FeedConfig::default()
        };
        MarketDataDesk {
            md: MarketData::new(feed),
            symbols,
            config,
            sessions: FxHashMap::default(),
            present: vec![FxHashMap::default(); count],
            pending: (0..count).map(|_| Pending::default()).collect(),
            dirty: Vec::new(),
            batch_entries: 0,
            streams: Vec::new(),
            free_streams: Vec::new(),
            by_symbol: vec![Vec::new(); count],
            changed: Vec::new(),
            body: Encoder::new(),
            stale_sessions: FxHashSet::default(),
            scratch: Vec::new(),
            full: Vec::new(),
            entries: Vec::new(),
            window_scratch: WindowScratch::default(),
            stats: MdStats::default(),
            ended: false,
            held: 0,
            applied_seq: 0,
        }
    }

    /// Counters.
    pub fn stats(&self) -> MdStats {
        self.stats
    }

    /// Seq of the last event applied (0 before any).
    pub fn applied_seq(&self) -> u64 {
        self.applied_seq
    }

    /// Symbol subscriptions `session` holds.
    pub fn subscriptions(&self, session: SessionId) -> usize {
        self.sessions.get(&session).map_or(0, |subs| subs.iter().map(|s| s.symbols.len()).sum())
    }

    /// Symbol subscriptions (MDReqID × symbol) every session holds together (kept as they
    /// change, so the metrics copy reads one number).
    pub fn subscriptions_held(&self) -> usize {
        debug_assert_eq!(self.held, self.sessions.values().map(|subs| held_by(subs)).sum::<usize>());
        self.held
    }

    /// Streams (a symbol × entry types × depth that some subscription follows).
    pub fn streams(&self) -> usize {
        self.streams.iter().flatten().count()
    }

    /// True once after a session ended since the last call (its subscriptions went with it).
    pub fn take_ended(&mut self) -> bool {
        std::mem::take(&mut self.ended)
    }

    /// True while any session holds a subscription.
    pub fn has_subscriptions(&self) -> bool {
        self.sessions.values().any(|subs| !subs.is_empty())
    }

    /// The session ended: its subscriptions end with it.
    pub fn end_session(&mut self, session: SessionId) {
        if let Some(subs) = self.sessions.remove(&session) {
            self.held -= held_by(&subs);
            self.ended = true;
            for sub in &subs {
                release(&mut self.streams, &mut self.free_streams, &mut self.by_symbol, sub);
            }
        }
        self.stale_sessions.remove(&session);
    }

    /// Answers a MarketDataRequest of `session` (after sending the batch so far: a new
    /// subscription's 35=W is as of every event applied).
    pub fn request(&mut self, session: SessionId, request: MdRequest, sink: &mut impl MdSink) {
        self.flush(sink);
        let refusal = match request.kind {
            SubscriptionType::Unsubscribe => self.unsubscribe(session, &request.req_id),
            SubscriptionType::Snapshot => {
                self.snapshot(session, &request, sink);
                None
            }
            SubscriptionType::Subscribe => self.subscribe(session, &request, sink),
        };
        if let Some(refusal) = refusal {
            self.reject(session, &refusal, sink);
        }
    }

    /// Ends the session's subscription `req_id`, or says why not.
    fn unsubscribe(&mut self, session: SessionId, req_id: &str) -> Option<MdReject> {
        let subs = self.sessions.entry(session).or_default();
        let Some(i) = subs.iter().position(|s| s.req_id == req_id) else {
            let text = format!("unknown MDReqID {req_id:?}: no subscription of this session has it");
            return Some(MdReject::new(req_id, None, text));
        };
        let sub = subs.remove(i);
        self.held -= sub.symbols.len();
        release(&mut self.streams, &mut self.free_streams, &mut self.by_symbol, &sub);
        None
    }

    /// A 35=W of each requested symbol (no RptSeq: nothing follows it), then its status if halted.
    fn snapshot(&mut self, session: SessionId, request: &MdRequest, sink: &mut impl MdSink) {
        for &symbol in &request.symbols {
            let shape = Shape { req_id: &request.req_id, types: request.types, depth: request.depth };
            self.stats.snapshots += write_snapshot(
                &self.md,
                &self.symbols,
                &shape,
                symbol,
                None,
                session,
                sink,
                &mut self.entries,
            );
        }
        self.status_if_halted(session, &request.symbols, sink);
    }

    /// A new subscription (a 35=W of each symbol, numbered, then updates), or why not: its
    /// MDReqID is taken, or the session would hold more than `subscriptions_max`.
    fn subscribe(
        &mut self,
        session: SessionId,
        request: &MdRequest,
        sink: &mut impl MdSink,
    ) -> Option<MdReject> {
        let subs = self.sessions.entry(session).or_default();
        let held: usize = subs.iter().map(|s| s.symbols.len()).sum();
        if subs.iter().any(|s| s.req_id == request.req_id) {
            let text =
                format!("duplicate MDReqID {:?}: a subscription of this session has it", request.req_id);
            return Some(MdReject::new(&request.req_id, Some(RejectReason::DuplicateMdReqId), text));
        }
        if held + request.symbols.len() > self.config.subscriptions_max {
            let text = format!(
                "too many subscriptions: this session holds {held} of at most {} (one per MDReqID and symbol)",
                self.config.subscriptions_max
            );
            return Some(MdReject::new(&request.req_id, Some(RejectReason::InsufficientBandwidth), text));
        }
        let mut symbols = Vec::with_capacity(request.symbols.len());
        for &symbol in &request.symbols {
            let stream = self.stream_for(symbol, request.types, request.depth);
            let rpt_seq = self.streams[stream].as_ref().map(|s| s.rpt_seq);
            let shape = Shape { req_id: &request.req_id, types: request.types, depth: request.depth };
            self.stats.snapshots += write_snapshot(
                &self.md,
                &self.symbols,
                &shape,
                symbol,
                rpt_seq,
                session,
                sink,
                &mut self.entries,
            );
            symbols.push(SubSymbol { symbol, stream });
        }
        let sub = Subscription {
            req_id: request.req_id.clone(),
            types: request.types,
            depth: request.depth,
            full_refresh_updates: request.full_refresh_updates,
            symbols,
            stale: false,
        };
        self.held += sub.symbols.len();
        self.sessions.entry(session).or_default().push(sub);
        self.status_if_halted(session, &request.symbols, sink);
        None
    }

    /// The stream of `symbol` with these entry types and depth, one more user counted: the one
    /// there is, or a new one whose window is the book as it is now (RptSeq 0).
    fn stream_for(&mut self, symbol: engine::SymbolId, types: EntryTypes, depth: Option<usize>) -> usize {
        let streams = &mut self.streams;
        let list = &mut self.by_symbol[symbol.index()];
        let found = list
            .iter()
            .copied()
            .find(|&i| streams[i].as_ref().is_some_and(|s| s.types == types && s.depth == depth));
        if let Some(i) = found {
            if let Some(s) = streams[i].as_mut() {
                s.users += 1;
            }
            return i;
        }
        let mut window: [Vec<Level>; 2] = Default::default();
        if let (Some(depth), Some(book)) = (depth, self.md.projection().book(symbol)) {
            for side in [Side::Buy, Side::Sell] {
                if types.side(side) {
                    window[side_index(side)].extend(book.levels(side).take(depth));
                }
            }
        }
        let stream = Stream {
            symbol,
            types,
            depth,
            rpt_seq: 0,
            window,
            users: 1,
            bytes: Vec::new(),
            chunks: Vec::new(),
        };
        let i = match self.free_streams.pop() {
            Some(i) => {
                streams[i] = Some(stream);
                i
            }
            None => {
                streams.push(Some(stream));
                streams.len() - 1
            }
        };
        list.push(i);
        i
    }

    /// After the 35=W of a request: a 35=f for each of its symbols that is halted now (a
    /// subscriber learns the state it joins, not only the changes after it).
    fn status_if_halted(&mut self, session: SessionId, symbols: &[engine::SymbolId], sink: &mut impl MdSink) {
        let projection = self.md.projection();
        for &symbol in symbols.iter().filter(|&&s| projection.halted(s)) {
            let name = self.symbols.spec(symbol).map_or("?", |s| s.name.as_str());
            write_status(sink, session, name, true, projection.last_ts());
            self.stats.statuses += 1;
        }
    }

    /// A halt or resume of `symbol`: a 35=f to every session subscribed to it, stale ones
    /// included (a status change is rare and a later 35=W does not carry it).
    fn status_changed(&mut self, symbol: engine::SymbolId, halted: bool, ts_ns: u64, sink: &mut impl MdSink) {
        let name = self.symbols.spec(symbol).map_or("?", |s| s.name.as_str());
        for (&session, subs) in &self.sessions {
            if subs.iter().any(|s| s.symbols.iter().any(|o| o.symbol == symbol))
                && sink.backlog(session).is_some()
            {
                write_status(sink, session, name, halted, ts_ns);
                self.stats.statuses += 1;
            }
        }
    }

    /// Sends a 35=Y.
    pub fn reject(&mut self, session: SessionId, refusal: &MdReject, sink: &mut impl MdSink) {
        self.stats.rejects += 1;
        self.stats.rejects_by_reason[RejectReason::index(refusal.reason)] += 1;
        sink.send(session, b"Y", &mut |e| refusal.encode(e));
    }

    /// Applies the next engine event and sends what it changed at once: [`MarketDataDesk::apply`]
    /// then [`MarketDataDesk::flush`].
    pub fn on_event(&mut self, event: &Event, sink: &mut impl MdSink) -> Result<(), ProjectionError> {
        self.apply(event, sink)?;
        self.flush(sink);
        Ok(())
    }

    /// Applies the next engine event to the books and adds what it changed to the current
    /// batch, which [`MarketDataDesk::flush`] sends (or this call, past
    /// [`BATCH_ENTRIES_MAX`]). A halt or resume sends the batch so far, then its 35=f.
    pub fn apply(&mut self, event: &Event, sink: &mut impl MdSink) -> Result<(), ProjectionError> {
        self.scratch.clear();
        self.md.on_event(event, &mut self.scratch)?;
        self.applied_seq = event.seq;
        let Some(symbol) = self.scratch.iter().find_map(|m| m.header.symbol) else { return Ok(()) };
        if let Some(halted) = trading_status(&self.scratch) {
            if !self.sessions.is_empty() {
                self.flush(sink);
                self.status_changed(symbol, halted, event.ts, sink);
            }
            return Ok(());
        }
        let i = symbol.index();
        let pending = (!self.by_symbol[i].is_empty()).then(|| &mut self.pending[i]);
        let was_empty = pending.as_ref().is_none_or(|p| p.is_empty());
        let added = track_levels(&self.scratch, &mut self.present[i], pending);
        if added > 0 {
            if was_empty {
                self.dirty.push(symbol);
            }
            self.batch_entries += added;
            if self.batch_entries >= BATCH_ENTRIES_MAX {
                self.flush(sink);
            }
        }
        Ok(())
    }

    /// Sends the current batch: for each symbol it touched and each of the symbol's streams,
    /// the net change of the levels the stream shows and every trade, as 35=X bodies of at most
    /// [`INCREMENTAL_ENTRIES_MAX`] entries encoded once; each subscription of the stream gets
    /// them behind its own header and MDReqID (a 265=0 subscription gets a fresh 35=W). A slow
    /// session's subscriptions are made stale instead; a gone session's end.
    pub fn flush(&mut self, sink: &mut impl MdSink) {
        if self.dirty.is_empty() {
            return;
        }
        self.encode_batch();
        self.batch_entries = 0;
        if !self.changed.is_empty() {
            self.send_batch(sink);
        }
        for i in self.changed.drain(..) {
            if let Some(stream) = self.streams[i].as_mut() {
                stream.bytes.clear();
                stream.chunks.clear();
            }
        }
    }

    /// Every touched symbol's streams get their bodies of the batch (listed in `changed`).
    fn encode_batch(&mut self) {
        let Self {
            md,
            symbols,
            present,
            pending,
            dirty,
            streams,
            by_symbol,
            changed,
            body,
            full,
            entries,
            window_scratch,
            ..
        } = self;
        for symbol in dirty.drain(..) {
            let i = symbol.index();
            net_entries(&mut pending[i], &present[i], full);
            let Some(book) = md.projection().book(symbol) else { continue };
            for &s in &by_symbol[i] {
                let Some(stream) = streams[s].as_mut() else { continue };
                stream_entries(stream, full, book, entries, window_scratch);
                if entries.is_empty() {
                    continue;
                }
                encode_bodies(stream, entries, symbols, body);
                changed.push(s);
            }
        }
    }

    /// The bodies of `changed` streams to every subscription following them.
    fn send_batch(&mut self, sink: &mut impl MdSink) {
        let Self {
            md,
            symbols,
            config,
            sessions,
            stale_sessions,
            streams,
            free_streams,
            by_symbol,
            entries,
            stats,
            held,
            ended,
            ..
        } = self;
        let has_bodies =
            |streams: &[Option<Stream>], i: usize| streams[i].as_ref().is_some_and(|s| !s.chunks.is_empty());
        sessions.retain(|&session, subs| {
            let wants =
                subs.iter().any(|s| !s.stale && s.symbols.iter().any(|o| has_bodies(streams, o.stream)));
            if !wants {
                return true;
            }
            let Some(backlog) = sink.backlog(session) else {
                *held -= held_by(subs);
                *ended = true;
                for sub in subs.iter() {
                    release(streams, free_streams, by_symbol, sub);
                }
                return false;
            };
            if backlog > config.backlog_bytes_max {
                for sub in subs.iter_mut().filter(|s| !s.stale) {
                    sub.stale = true;
                    stats.conflations += 1;
                }
                tracing::info!(session, backlog, "market data: slow session, conflating its subscriptions");
                stale_sessions.insert(session);
                return true;
            }
            for sub in subs.iter().filter(|s| !s.stale) {
                for one in &sub.symbols {
                    let Some(stream) = streams[one.stream].as_ref().filter(|s| !s.chunks.is_empty()) else {
                        continue;
                    };
                    if sub.full_refresh_updates {
                        let shape = Shape { req_id: &sub.req_id, types: sub.types, depth: sub.depth };
                        stats.snapshots += write_snapshot(
                            md,
                            symbols,
                            &shape,
                            one.symbol,
                            Some(stream.rpt_seq),
                            session,
                            sink,
                            entries,
                        );
                        continue;
                    }
                    for (bytes, sum) in stream.bodies() {
                        sink.send(session, b"X", &mut |e| {
                            e.str(tags::MD_REQ_ID, &sub.req_id);
                            e.raw_summed(bytes, sum);
                        });
                        stats.incrementals += 1;
                    }
                }
            }
            true
        });
    }

    /// Sends a fresh 35=W for every stale subscription whose session has drained its backlog
    /// to half the bound. Call once per loop turn; costs nothing while no session is stale.
    pub fn refresh_stale(&mut self, sink: &mut impl MdSink) {
        if self.stale_sessions.is_empty() {
            return;
        }
        self.flush(sink);
        let mut done = Vec::new();
        for &session in &self.stale_sessions {
            match sink.backlog(session) {
                None => done.push(session),
                Some(backlog) if backlog <= self.config.backlog_bytes_max / 2 => {
                    done.push(session);
                    let Some(subs) = self.sessions.get_mut(&session) else { continue };
                    for sub in subs.iter_mut().filter(|s| s.stale) {
                        sub.stale = false;
                        let shape = Shape { req_id: &sub.req_id, types: sub.types, depth: sub.depth };
                        for one in &sub.symbols {
                            let rpt_seq = self.streams[one.stream].as_ref().map(|s| s.rpt_seq);
                            self.stats.snapshots += write_snapshot(
                                &self.md,
                                &self.symbols,
                                &shape,
                                one.symbol,
                                rpt_seq,
                                session,
                                sink,
                                &mut self.entries,
                            );
                        }
                    }
                }
                Some(_) => {}
            }
        }
        for session in done {
            self.stale_sessions.remove(&session);
        }
    }
}

/// One user fewer for each stream of `sub`; a stream with none left ends.
fn release(
    streams: &mut [Option<Stream>],
    free: &mut Vec<usize>,
    by_symbol: &mut [Vec<usize>],
    sub: &Subscription,
) {
    for one in &sub.symbols {
        let Some(stream) = streams[one.stream].as_mut() else { continue };
        stream.users -= 1;
        if stream.users == 0 {
            by_symbol[stream.symbol.index()].retain(|&i| i != one.stream);
            streams[one.stream] = None;
            free.push(one.stream);
        }
    }
}

/// The halt (true) or resume (false) among one event's messages, if any.
fn trading_status(scratch: &[marketdata::Message]) -> Option<bool> {
    scratch.iter().find_map(|m| match m.body {
        Body::TradingStatus { halted } => Some(halted),
        _ => None,
    })
}

/// Applies one event's level changes (`scratch`) to `present` (the symbol's full book) and, when
/// the symbol has streams, adds them and its trades to the batch; returns how many trades and
/// newly touched levels it added.
fn track_levels(
    scratch: &[marketdata::Message],
    present: &mut FxHashMap<(bool, i64), u64>,
    mut pending: Option<&mut Pending>,
) -> usize {
    let mut added = 0;
    for m in scratch.iter().filter(|m| m.header.channel == Channel::Levels) {
        match m.body {
            Body::Level(level) => {
                let key = (level.side == Side::Buy, level.price.0);
                let before =
                    if level.qty == 0 { present.remove(&key) } else { present.insert(key, level.qty) };
                if let Some(p) = pending.as_deref_mut() {
                    if p.seen.insert(key) {
                        p.touched.push((key, before));
                        added += 1;
                    }
                }
            }
            Body::Trade { price, qty, .. } => {
                if let Some(p) = pending.as_deref_mut() {
                    p.trades.push(Entry { action: b'0', kind: b'2', price: price.0, qty });
                    added += 1;
                }
            }
            _ => {}
        }
    }
    added
}

/// The batch of one symbol as a full-depth subscriber hears it (into `full`, emptying
/// `pending`): every trade, then each touched level's net change (279=0 a level that was not
/// there before the batch, 1 a new size, 2 a level gone; nothing for a level back to its size).
fn net_entries(pending: &mut Pending, present: &FxHashMap<(bool, i64), u64>, full: &mut Vec<Entry>) {
    full.clear();
    full.append(&mut pending.trades);
    for (key, before) in pending.touched.drain(..) {
        let now = present.get(&key).copied();
        let action = match (before, now) {
            (None, Some(_)) => b'0',
            (Some(a), Some(b)) if a != b => b'1',
            (Some(_), None) => b'2',
            _ => continue,
        };
        let kind = if key.0 { b'0' } else { b'1' };
        full.push(Entry { action, kind, price: key.1, qty: now.unwrap_or(0) });
    }
    pending.seen.clear();
}

/// What one stream hears of a batch (into `entries`): the full-depth entries of its types, or,
/// depth-limited, the batch's trades and the moves of its window of `book`.
fn stream_entries(
    stream: &mut Stream,
    full: &[Entry],
    book: &marketdata::OrderBook,
    entries: &mut Vec<Entry>,
    window_scratch: &mut WindowScratch,
) {
    entries.clear();
    let types = stream.types;
    let Some(depth) = stream.depth else {
        entries.extend(full.iter().filter(|e| match e.kind {
            b'0' => types.bid,
            b'1' => types.offer,
            _ => types.trade,
        }));
        return;
    };
    if types.trade {
        entries.extend(full.iter().filter(|e| e.kind == b'2'));
    }
    for side in [Side::Buy, Side::Sell] {
        if types.side(side) {
            let window = &mut stream.window[side_index(side)];
            window_diff(window, book.levels(side).take(depth), side, entries, window_scratch);
        }
    }
}

/// Encodes `entries` once as 35=X bodies (268 and its entries) of at most
/// [`INCREMENTAL_ENTRIES_MAX`] entries each into `stream`, numbering them on from its RptSeq.
fn encode_bodies(stream: &mut Stream, entries: &[Entry], symbols: &Symbols, body: &mut Encoder) {
    let symbol = stream.symbol;
    let name = symbols.spec(symbol).map_or("?", |s| s.name.as_str());
    for chunk in entries.chunks(INCREMENTAL_ENTRIES_MAX) {
        body.begin_fields();
        body.u64(tags::NO_MD_ENTRIES, chunk.len() as u64);
        for entry in chunk {
            stream.rpt_seq += 1;
            body.char(tags::MD_UPDATE_ACTION, entry.action);
            body.char(tags::MD_ENTRY_TYPE, entry.kind);
            body.str(SYMBOL, name);
            body.bytes(tags::MD_ENTRY_PX, symbols.format_ticks(symbol, entry.price).as_str().as_bytes());
            body.u64(tags::MD_ENTRY_SIZE, entry.qty);
            body.u64(tags::RPT_SEQ, stream.rpt_seq);
        }
        stream.bytes.extend_from_slice(body.body());
        stream.chunks.push((stream.bytes.len(), fix::codec::checksum(body.body())));
    }
}

/// Brings a depth window to `now` (best first), writing New/Change/Delete entries for what moved.
/// `scratch` is reused from call to call, so a diff allocates nothing once the buffers have
/// grown to the depth.
fn window_diff(
    sent: &mut Vec<Level>,
    now: impl Iterator<Item = Level>,
    side: Side,
    out: &mut Vec<Entry>,
    scratch: &mut WindowScratch,
) {
    let WindowScratch { levels, adds } = scratch;
    levels.clear();
    levels.extend(now);
    adds.clear();
    let now = &*levels;
    let kind = entry_kind(side);
    let better = |a: &Level, b: &Level| match side {
        Side::Buy => a.price > b.price,
        Side::Sell => a.price < b.price,
    };
    let (mut i, mut j) = (0, 0);
    // Deletes first, then News and Changes: a client applying them in order never holds more
    // than N levels.
    loop {
        match (sent.get(i), now.get(j)) {
            (Some(old), Some(new)) if old.price == new.price => {
                if old.qty != new.qty {
                    adds.push(Entry { action: b'1', kind, price: new.price.0, qty: new.qty });
                }
                i += 1;
                j += 1;
            }
            (Some(old), Some(new)) if better(old, new) => {
                out.push(Entry { action: b'2', kind, price: old.price.0, qty: 0 });
                i += 1;
            }
            (_, Some(new)) => {
                adds.push(Entry { action: b'0', kind, price: new.price.0, qty: new.qty });
                j += 1;
            }
            (Some(old), None) => {
                out.push(Entry { action: b'2', kind, price: old.price.0, qty: 0 });
                i += 1;
            }
            (None, None) => break,
        }
    }
    out.extend(adds.iter());
    // The window becomes `now`; the old window's buffer is the next call's scratch.
    std::mem::swap(sent, levels);
}

/// The buffers [`window_diff`] reuses.
#[derive(Debug, Default)]
struct WindowScratch {
    levels: Vec<Level>,
    adds: Vec<Entry>,
}

/// What a 35=W shows and whom it answers.
struct Shape<'a> {
    req_id: &'a str,
    types: EntryTypes,
    depth: Option<usize>,
}

/// Writes the 35=W (in fragments of [`SNAPSHOT_ENTRIES_MAX`]) of one symbol; returns the
/// messages written. `rpt_seq`: a subscription's W carries the RptSeq of its stream (the last
/// entry sent before it); a one-off snapshot carries none.
#[allow(clippy::too_many_arguments)]
fn write_snapshot(
    md: &MarketData,
    symbols: &Symbols,
    shape: &Shape<'_>,
    symbol: engine::SymbolId,
    rpt_seq: Option<u64>,
    session: SessionId,
    sink: &mut impl MdSink,
    entries: &mut Vec<Entry>,
) -> u64 {
    let Some(book) = md.projection().book(symbol) else { return 0 };
    entries.clear();
    for side in [Side::Buy, Side::Sell] {
        if !shape.types.side(side) {
            continue;
        }
        let depth = shape.depth.unwrap_or(usize::MAX);
        for level in book.levels(side).take(depth) {
            entries.push(Entry {
                action: b'0',
                kind: entry_kind(side),
                price: level.price.0,
                qty: level.qty,
            });
        }
    }
    if shape.types.trade {
        if let Some(last) = md.projection().tape(symbol).last() {
            entries.push(Entry { action: b'0', kind: b'2', price: last.price.0, qty: last.qty });
        }
    }
    let name = symbols.spec(symbol).map_or("?", |s| s.name.as_str());
    let fragments = entries.len().div_ceil(SNAPSHOT_ENTRIES_MAX).max(1);
    for f in 0..fragments {
        let chunk = &entries[(f * SNAPSHOT_ENTRIES_MAX).min(entries.len())
            ..((f + 1) * SNAPSHOT_ENTRIES_MAX).min(entries.len())];
        sink.send(session, b"W", &mut |e| {
            e.str(tags::MD_REQ_ID, shape.req_id);
            e.str(SYMBOL, name);
            if let Some(rpt_seq) = rpt_seq {
                e.u64(tags::RPT_SEQ, rpt_seq);
            }
            if fragments > 1 {
                e.char(tags::LAST_FRAGMENT, if f + 1 == fragments { b'Y' } else { b'N' });
            }
            e.u64(tags::NO_MD_ENTRIES, chunk.len() as u64);
            for entry in chunk {
                e.char(tags::MD_ENTRY_TYPE, entry.kind);
                e.bytes(tags::MD_ENTRY_PX, symbols.format_ticks(symbol, entry.price).as_str().as_bytes());
                e.u64(tags::MD_ENTRY_SIZE, entry.qty);
            }
        });
    }
    fragments as u64
}

/// The client side: books rebuilt from 35=W and 35=X, checking every RptSeq (what
/// `exchange md --feed fix --check` and the tests use). Prices are kept in price units
/// ([`engine::PRICE_SCALE`] decimals), keyed by (is bid, price).
#[derive(Clone, Debug, Default)]
pub struct MdBooks {
    books: std::collections::BTreeMap<String, MdBook>,
}

/// One symbol's rebuilt book.
#[derive(Clone, Debug, Default)]
pub struct MdBook {
    /// The last RptSeq applied; `None` until a 35=W (or after a gap).
    pub rpt_seq: Option<u64>,
    /// (is bid, price units) → size.
    pub levels: std::collections::BTreeMap<(bool, engine::PriceUnits), u64>,
    /// The last trade (price units, size).
    pub last_trade: Option<(engine::PriceUnits, u64)>,
    /// A fragmented 35=W is being received (its last fragment has 893=Y).
    in_snapshot: bool,
    /// The last SecurityStatus (35=f) said the symbol is halted.
    pub halted: bool,
}

impl MdBook {
    /// Levels of one side, best first: (price units, size).
    pub fn side(&self, bid: bool) -> Vec<(engine::PriceUnits, u64)> {
        let side = self.levels.iter().filter(|((b, _), _)| *b == bid).map(|(&(_, p), &q)| (p, q));
        if bid {
            side.rev().collect()
        } else {
            side.collect()
        }
    }
}

/// Why a market-data message did not fit the rebuilt book.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MdBookError {
    /// An X entry's RptSeq is not one more than the last.
    #[error("RptSeq gap on {symbol}: {got} after {last}")]
    Gap {
        /// The symbol.
        symbol: String,
        /// RptSeq received.
        got: u64,
        /// RptSeq last applied.
        last: u64,
    },
    /// A field is missing or malformed.
    #[error("malformed market data: {0}")]
    Malformed(String),
    /// An entry does not fit the book (a change or delete of a level it does not hold, a new
    /// level it already holds).
    #[error("{symbol}: {what}")]
    Mismatch {
        /// The symbol.
        symbol: String,
        /// What does not fit.
        what: String,
    },
}

impl MdBooks {
    /// No books.
    pub fn new() -> MdBooks {
        MdBooks::default()
    }

    /// A symbol's book, once a 35=W for it arrived.
    pub fn book(&self, symbol: &str) -> Option<&MdBook> {
        self.books.get(symbol)
    }

    /// Applies a 35=W, 35=X or 35=f (other messages are ignored). After an error the symbol's book
    /// waits for its next 35=W (`rpt_seq` is `None`).
    pub fn apply(&mut self, msg: &Message<'_>) -> Result<(), MdBookError> {
        match msg.msg_type() {
            b"W" => self.apply_snapshot(msg),
            b"X" => msg.group(tags::NO_MD_ENTRIES).try_for_each(|entry| self.apply_entry(&entry)),
            b"f" => {
                let symbol = msg.get_str(SYMBOL).ok_or_else(|| malformed("Symbol (55) in a 35=f"))?;
                let halted = match msg.get_u64(tags::SECURITY_TRADING_STATUS).ok().flatten() {
                    Some(TRADING_STATUS_HALTED) => true,
                    Some(_) => false,
                    None => return Err(malformed("SecurityTradingStatus (326)")),
                };
                self.books.entry(symbol.to_owned()).or_default().halted = halted;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// A 35=W (or one fragment of it): the symbol's book replaced by its entries.
    fn apply_snapshot(&mut self, msg: &Message<'_>) -> Result<(), MdBookError> {
        let symbol = msg.get_str(SYMBOL).ok_or_else(|| malformed("Symbol (55) in a 35=W"))?;
        let book = self.books.entry(symbol.to_owned()).or_default();
        if !book.in_snapshot {
            book.levels.clear();
        }
        book.in_snapshot = msg.get(tags::LAST_FRAGMENT) == Some(b"N");
        for entry in msg.group(tags::NO_MD_ENTRIES) {
            match entry.get(tags::MD_ENTRY_TYPE) {
                Some(b"0") => drop(book.levels.insert((true, entry_units(&entry)?), entry_size(&entry)?)),
                Some(b"1") => drop(book.levels.insert((false, entry_units(&entry)?), entry_size(&entry)?)),
                Some(b"2") => book.last_trade = Some((entry_units(&entry)?, entry_size(&entry)?)),
                _ => return Err(malformed("MDEntryType (269)")),
            }
        }
        book.rpt_seq = msg.get_u64(tags::RPT_SEQ).ok().flatten().or(Some(0));
        Ok(())
    }

    /// One entry of a 35=X: checked against its symbol's RptSeq (a gap stops the book until
    /// the next 35=W) and against the levels held (a new level already held, or a change of one
    /// not held, is a mismatch).
    fn apply_entry(&mut self, entry: &Message<'_>) -> Result<(), MdBookError> {
        let symbol = entry.get_str(SYMBOL).ok_or_else(|| malformed("Symbol (55) in an entry"))?;
        let Some(book) = self.books.get_mut(symbol) else { return Ok(()) };
        let Some(last) = book.rpt_seq else { return Ok(()) };
        let got = entry.get_u64(tags::RPT_SEQ).ok().flatten().ok_or_else(|| malformed("RptSeq (83)"))?;
        if got != last + 1 {
            book.rpt_seq = None;
            return Err(MdBookError::Gap { symbol: symbol.to_owned(), got, last });
        }
        book.rpt_seq = Some(got);
        let bid = match entry.get(tags::MD_ENTRY_TYPE) {
            Some(b"0") => true,
            Some(b"1") => false,
            Some(b"2") => {
                book.last_trade = Some((entry_units(entry)?, entry_size(entry)?));
                return Ok(());
            }
            _ => return Err(malformed("MDEntryType (269)")),
        };
        let key = (bid, entry_units(entry)?);
        let mismatch = |what: &str| {
            let text = entry.get_str(tags::MD_ENTRY_PX).unwrap_or("");
            MdBookError::Mismatch { symbol: symbol.to_owned(), what: format!("{what} at {text}") }
        };
        let held = book.levels.contains_key(&key);
        match entry.get(tags::MD_UPDATE_ACTION) {
            Some(b"0") if !held => drop(book.levels.insert(key, entry_size(entry)?)),
            Some(b"1") if held => drop(book.levels.insert(key, entry_size(entry)?)),
            Some(b"2") if held => drop(book.levels.remove(&key)),
            Some(b"0") => {
                book.rpt_seq = None;
                return Err(mismatch("a new level the book already holds"));
            }
            Some(b"1" | b"2") => {
                book.rpt_seq = None;
                return Err(mismatch("a change or delete of a level the book does not hold"));
            }
            _ => return Err(malformed("MDUpdateAction (279)")),
        }
        Ok(())
    }
}

fn malformed(what: &str) -> MdBookError {
    MdBookError::Malformed(what.to_owned())
}

/// An entry's MDEntryPx (270) in price units.
fn entry_units(entry: &Message<'_>) -> Result<engine::PriceUnits, MdBookError> {
    let text = entry.get_str(tags::MD_ENTRY_PX).ok_or_else(|| malformed("MDEntryPx (270)"))?;
    engine::price_text::parse_units(text)
        .map_err(|e| MdBookError::Malformed(format!("MDEntryPx (270) {text:?}: {e}")))
}

/// An entry's MDEntrySize (271).
fn entry_size(entry: &Message<'_>) -> Result<u64, MdBookError> {
    entry.get_u64(tags::MD_ENTRY_SIZE).ok().flatten().ok_or_else(|| malformed("MDEntrySize (271)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::{AccountId, SymbolId};
    use engine::{ClOrdId, Command, CommandHeader, CommandKind, Engine, EngineConfig, NewOrder};
    use fix::codec::Fields;

    const CENT: i64 = engine::PRICE_UNITS_PER_ONE / 100;

    /// Encodes like a session would and keeps the framed bytes.
    #[derive(Default)]
    struct Wire {
        sent: Vec<(SessionId, Vec<u8>)>,
        backlog: FxHashMap<SessionId, usize>,
        gone: FxHashSet<SessionId>,
    }

    impl MdSink for Wire {
        fn backlog(&mut self, session: SessionId) -> Option<usize> {
            (!self.gone.contains(&session)).then(|| self.backlog.get(&session).copied().unwrap_or(0))
        }

        fn send(&mut self, session: SessionId, msg_type: &[u8], fields: &mut dyn FnMut(&mut Encoder)) {
            let mut e = Encoder::new();
            e.begin(msg_type, "EXCHANGE", "client", 1, 0);
            fields(&mut e);
            self.sent.push((session, e.finish().to_vec()));
        }
    }

    impl Wire {
        /// Every message sent so far, parsed and checked against the dictionary (its groups
        /// included), handed to `each`; then forgotten.
        fn take(&mut self, mut each: impl FnMut(SessionId, &Message<'_>)) {
            for (session, bytes) in std::mem::take(&mut self.sent) {
                // BodyLength and CheckSum verified, as a counterparty would.
                assert_eq!(fix::codec::frame(&bytes, 1 << 20), Ok(Some(bytes.len())), "{}", text(&bytes));
                let mut fields = Fields::default();
                let msg = Message::parse(&bytes, &mut fields).expect("parses");
                fix::dictionary::check(&msg).unwrap_or_else(|e| panic!("{e:?} in {}", text(&bytes)));
                each(session, &msg);
            }
        }
    }

    fn text(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).replace('\x01', "|")
    }

    fn symbols() -> Symbols {
        Symbols::new(engine::default_symbols())
    }

    /// A 35=V built from `tag=value` pairs (`|`-separated), parsed.
    fn request(body: &str) -> Result<MdRequest, MdRequestError> {
        let mut e = Encoder::new();
        e.begin(b"V", "client", "EXCHANGE", 2, 0);
        for field in body.split('|').filter(|f| !f.is_empty()) {
            let (t, v) = field.split_once('=').unwrap();
            e.str(t.parse().unwrap(), v);
        }
        let bytes = e.finish().to_vec();
        let mut fields = Fields::default();
        let msg = Message::parse(&bytes, &mut fields).unwrap();
        fix::dictionary::check(&msg).unwrap();
        parse_request(&msg, &symbols())
    }

    fn reason(r: Result<MdRequest, MdRequestError>) -> (Option<u8>, String) {
        match r {
            Err(MdRequestError::Reject(reject)) => (reject.reason.map(RejectReason::code), reject.text),
            other => panic!("not a 35=Y: {other:?}"),
        }
    }

    const BOOK: &str = "267=3|269=0|269=1|269=2";

    #[test]
    fn requests_parse_with_several_symbols_and_entry_types() {
        let r = request(&format!("262=a|263=1|264=0|265=1|{BOOK}|146=2|55=BTC-USD|55=ETH-USD")).unwrap();
        assert_eq!(r.kind, SubscriptionType::Subscribe);
        assert_eq!(r.depth, None);
        assert_eq!(r.types, EntryTypes { bid: true, offer: true, trade: true });
        assert_eq!(r.symbols, vec![SymbolId(0), SymbolId(1)]);
        let r = request("262=b|263=0|264=5|267=1|269=1|146=1|55=AAPL").unwrap();
        assert_eq!(
            (r.kind, r.depth, r.types.offer, r.types.bid, r.symbols),
            (SubscriptionType::Snapshot, Some(5), true, false, vec![SymbolId(2)])
        );
        assert_eq!(request("262=a|263=2").unwrap().kind, SubscriptionType::Unsubscribe);
    }

    #[test]
    fn bad_requests_are_refused_naming_the_reason() {
        let (code, text) = reason(request(&format!("262=a|263=1|264=0|{BOOK}|146=1|55=NOPE")));
        assert_eq!(code, Some(b'0'));
        assert!(text.contains("unknown symbol \"NOPE\""), "{text}");
        let (code, text) = reason(request(&format!("262=a|263=1|264=-1|{BOOK}|146=1|55=AAPL")));
        assert_eq!(code, Some(b'5'));
        assert!(text.contains("MarketDepth (264) -1"), "{text}");
        assert_eq!(reason(request(&format!("262=a|263=1|264=99999999|{BOOK}|146=1|55=AAPL"))).0, Some(b'5'));
        let (code, text) = reason(request("262=a|263=1|264=0|267=1|269=9|146=1|55=AAPL"));
        assert_eq!(code, Some(b'8'));
        assert!(text.contains("MDEntryType (269) 9"), "{text}");
        assert_eq!(reason(request(&format!("262=a|263=7|264=0|{BOOK}|146=1|55=AAPL"))).0, Some(b'4'));
        assert_eq!(reason(request(&format!("262=a|263=1|264=0|265=4|{BOOK}|146=1|55=AAPL"))).0, Some(b'6'));
        assert_eq!(request("263=1|264=0"), Err(MdRequestError::Missing(262, "MDReqID")));
        assert_eq!(
            request(&format!("262=a|263=1|264=0|{BOOK}")),
            Err(MdRequestError::Missing(146, "NoRelatedSym"))
        );
        assert_eq!(request("262=a|263=1|146=1|55=AAPL"), Err(MdRequestError::Missing(264, "MarketDepth")));
    }

    /// Events of `n` seeded random limit orders on symbol 0 around 100.00 that rest and trade.
    fn events(n: u64, seed: u64) -> Vec<Event> {
        let mut engine = Engine::new(EngineConfig::default());
        let mut out = Vec::new();
        let mut x = seed;
        for seq in 1..=n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let side = if x.is_multiple_of(2) { Side::Sell } else { Side::Buy };
            let ticks = 10_000 + (x % 15) as i64 - 7;
            let id = ClOrdId::from_str(&format!("o{seq}")).unwrap();
            let order = NewOrder::limit(
                AccountId((x % 3) as u32),
                SymbolId(0),
                id,
                side,
                ticks * CENT,
                1 + (x >> 8) % 9,
            );
            let command =
                Command { header: CommandHeader { seq, ts: seq * 1_000 }, kind: CommandKind::New(order) };
            engine.process(&command, &mut out);
        }
        out
    }

    /// The desk's own book of symbol 0, top `depth` per side, in price units.
    fn top(desk: &MarketDataDesk, depth: usize, side: Side) -> Vec<(engine::PriceUnits, u64)> {
        let book = desk.md.projection().book(SymbolId(0)).unwrap();
        book.levels(side).take(depth).map(|l| (engine::PriceUnits(l.price.0 * CENT), l.qty)).collect()
    }

    fn feed(
        desk: &mut MarketDataDesk,
        wire: &mut Wire,
        events: &[Event],
        books: &mut [(SessionId, MdBooks)],
    ) {
        for event in events {
            desk.on_event(event, wire).unwrap();
            wire.take(|session, msg| {
                let (_, b) = books.iter_mut().find(|(s, _)| *s == session).unwrap();
                b.apply(msg).unwrap_or_else(|e| panic!("{e}"));
            });
        }
    }

    #[test]
    fn snapshot_then_increments_rebuild_the_book_at_every_depth() {
        let evs = events(600, 7);
        let mut desk = MarketDataDesk::new(symbols(), MdConfig::default());
        let mut wire = Wire::default();
        let mut books: Vec<(SessionId, MdBooks)> = (1..=3).map(|s| (s, MdBooks::new())).collect();
        feed(&mut desk, &mut wire, &evs[..200], &mut books);
        for (session, depth) in [(1, "0"), (2, "2"), (3, "5")] {
            let r = request(&format!("262=r{session}|263=1|264={depth}|{BOOK}|146=1|55=BTC-USD")).unwrap();
            desk.request(session, r, &mut wire);
        }
        feed(&mut desk, &mut wire, &[], &mut books);
        feed(&mut desk, &mut wire, &evs[200..], &mut books);
        for (session, depth) in [(1, usize::MAX), (2, 2), (3, 5)] {
            let book = books[session as usize - 1].1.book("BTC-USD").unwrap();
            assert_eq!(book.side(true), top(&desk, depth, Side::Buy), "session {session}");
            assert_eq!(book.side(false), top(&desk, depth, Side::Sell), "session {session}");
            assert!(book.rpt_seq.unwrap() > 0);
            assert!(book.last_trade.is_some(), "trades are entries too");
        }
        assert_eq!(desk.stats().conflations, 0);
    }

    #[test]
    fn halts_and_resumes_reach_the_symbols_subscribers_as_35_f() {
        let mut engine = Engine::new(EngineConfig::default());
        let mut evs = Vec::new();
        let command = |seq, kind| Command { header: CommandHeader { seq, ts: seq * 1_000 }, kind };
        engine.process(&command(1, CommandKind::Halt { symbol: SymbolId(0) }), &mut evs);
        let halt = evs.split_off(0);
        engine.process(&command(2, CommandKind::Resume { symbol: SymbolId(0) }), &mut evs);
        let resume = evs.split_off(0);
        let mut desk = MarketDataDesk::new(symbols(), MdConfig::default());
        let mut wire = Wire::default();
        desk.request(1, request(&format!("262=a|263=1|264=0|{BOOK}|146=1|55=BTC-USD")).unwrap(), &mut wire);
        desk.request(2, request(&format!("262=b|263=1|264=0|{BOOK}|146=1|55=ETH-USD")).unwrap(), &mut wire);
        wire.take(|_, _| {});
        // (session, symbol, 326, 60) of every 35=f sent.
        let statuses = |wire: &mut Wire| {
            let mut out = Vec::new();
            wire.take(|session, msg| {
                if msg.msg_type() == b"f" {
                    let status = msg.get_u64(tags::SECURITY_TRADING_STATUS).unwrap().unwrap();
                    let time = msg.get_str(TRANSACT_TIME).unwrap().to_owned();
                    out.push((session, msg.get_str(SYMBOL).unwrap().to_owned(), status, time));
                }
            });
            out
        };
        for event in &halt {
            desk.on_event(event, &mut wire).unwrap();
        }
        let sent = statuses(&mut wire);
        assert_eq!(sent.len(), 1, "only the BTC-USD subscriber hears of it: {sent:?}");
        assert_eq!((sent[0].0, sent[0].1.as_str(), sent[0].2), (1, "BTC-USD", TRADING_STATUS_HALTED));
        assert!(sent[0].3.starts_with("1970"), "60 is the event's time: {}", sent[0].3);
        // A subscriber joining while halted gets its 35=W, then a 35=f saying so; a one-off
        // snapshot too.
        desk.request(3, request(&format!("262=c|263=1|264=0|{BOOK}|146=1|55=BTC-USD")).unwrap(), &mut wire);
        desk.request(4, request(&format!("262=d|263=0|264=0|{BOOK}|146=1|55=BTC-USD")).unwrap(), &mut wire);
        let mut kinds = Vec::new();
        let mut books = MdBooks::new();
        wire.take(|session, msg| {
            kinds.push((session, msg.msg_type().to_vec()));
            if session == 3 {
                books.apply(msg).unwrap();
            }
        });
        let f = |s| (s, b"f".to_vec());
        let w = |s| (s, b"W".to_vec());
        assert_eq!(kinds, vec![w(3), f(3), w(4), f(4)]);
        assert!(books.book("BTC-USD").unwrap().halted);
        for event in &resume {
            desk.on_event(event, &mut wire).unwrap();
        }
        let mut sent: Vec<_> = statuses(&mut wire).into_iter().map(|(s, _, st, _)| (s, st)).collect();
        sent.sort_unstable();
        // Both BTC-USD subscribers, not the one-off snapshot's session.
        assert_eq!(sent, vec![(1, TRADING_STATUS_READY), (3, TRADING_STATUS_READY)]);
        assert_eq!(desk.stats().statuses, 5);
    }

    #[test]
    fn full_refresh_updates_send_a_fresh_35_w_per_change() {
        let evs = events(200, 5);
        let mut desk = MarketDataDesk::new(symbols(), MdConfig::default());
        let mut wire = Wire::default();
        let mut books = [(1, MdBooks::new())];
        desk.request(
            1,
            request(&format!("262=f|263=1|264=2|265=0|{BOOK}|146=1|55=BTC-USD")).unwrap(),
            &mut wire,
        );
        let mut last_rpt = 0;
        for event in &evs {
            desk.on_event(event, &mut wire).unwrap();
            wire.take(|_, msg| {
                assert_eq!(msg.msg_type(), b"W", "265=0: no 35=X");
                let rpt = msg.get_u64(tags::RPT_SEQ).unwrap().unwrap();
                assert!(rpt > last_rpt || rpt == 0, "RptSeq moves on with each refresh");
                last_rpt = rpt;
                books[0].1.apply(msg).unwrap();
            });
        }
        assert!(last_rpt > 10);
        let book = books[0].1.book("BTC-USD").unwrap();
        assert_eq!(book.side(true), top(&desk, 2, Side::Buy));
        assert_eq!(book.side(false), top(&desk, 2, Side::Sell));
    }

    #[test]
    fn a_big_snapshot_comes_in_fragments_and_a_gap_is_named() {
        // 40 resting bids at 40 prices: 40 entries, two 893=N fragments then 893=Y.
        let mut engine = Engine::new(EngineConfig::default());
        let mut evs = Vec::new();
        for seq in 1..=40u64 {
            let id = ClOrdId::from_str(&format!("b{seq}")).unwrap();
            let order =
                NewOrder::limit(AccountId(0), SymbolId(0), id, Side::Buy, (9_000 + seq as i64) * CENT, 1);
            let command = Command { header: CommandHeader { seq, ts: seq }, kind: CommandKind::New(order) };
            engine.process(&command, &mut evs);
        }
        let mut desk = MarketDataDesk::new(symbols(), MdConfig::default());
        let mut wire = Wire::default();
        for e in &evs {
            desk.on_event(e, &mut wire).unwrap();
        }
        desk.request(9, request(&format!("262=big|263=1|264=0|{BOOK}|146=1|55=BTC-USD")).unwrap(), &mut wire);
        let mut books = MdBooks::new();
        let mut fragments = Vec::new();
        wire.take(|_, msg| {
            fragments.push(msg.get(tags::LAST_FRAGMENT).map(|v| v.to_vec()));
            books.apply(msg).unwrap();
        });
        assert_eq!(fragments, vec![Some(b"N".to_vec()), Some(b"Y".to_vec())]);
        assert_eq!(books.book("BTC-USD").unwrap().side(true), top(&desk, usize::MAX, Side::Buy));
        // An X whose RptSeq skips one is a gap, named.
        let mut e = Encoder::new();
        e.begin(b"X", "EXCHANGE", "client", 3, 0);
        for (t, v) in [
            (262, "big"),
            (268, "1"),
            (279, "2"),
            (269, "0"),
            (55, "BTC-USD"),
            (270, "90.40"),
            (271, "0"),
            (83, "2"),
        ] {
            e.str(t, v);
        }
        let bytes = e.finish().to_vec();
        let mut fields = Fields::default();
        let msg = Message::parse(&bytes, &mut fields).unwrap();
        let gap = books.apply(&msg).unwrap_err();
        assert_eq!(gap.to_string(), "RptSeq gap on BTC-USD: 2 after 0");
    }

    #[test]
    fn duplicate_ids_too_many_subscriptions_and_unknown_unsubscribes_get_a_35_y() {
        let config = MdConfig { subscriptions_max: 3, ..MdConfig::default() };
        let mut desk = MarketDataDesk::new(symbols(), config);
        let mut wire = Wire::default();
        let sub = |id: &str, syms: &str| request(&format!("262={id}|263=1|264=1|{BOOK}|{syms}")).unwrap();
        desk.request(1, sub("a", "146=2|55=BTC-USD|55=ETH-USD"), &mut wire);
        desk.request(1, sub("a", "146=1|55=AAPL"), &mut wire);
        desk.request(1, sub("b", "146=2|55=AAPL|55=BTC-USD"), &mut wire);
        desk.request(1, request("262=zz|263=2").unwrap(), &mut wire);
        let mut ys = Vec::new();
        wire.take(|_, msg| {
            if msg.msg_type() == b"Y" {
                ys.push((msg.get_str(281).map(str::to_owned), msg.get_str(58).unwrap().to_owned()));
            }
        });
        assert_eq!(ys.len(), 3, "{ys:?}");
        assert_eq!(ys[0].0.as_deref(), Some("1"));
        assert!(ys[0].1.contains("duplicate MDReqID \"a\""));
        assert_eq!(ys[1].0.as_deref(), Some("2"));
        assert!(ys[1].1.contains("too many subscriptions: this session holds 2 of at most 3"), "{}", ys[1].1);
        assert_eq!(ys[2].0, None);
        assert!(ys[2].1.contains("unknown MDReqID \"zz\""));
        assert_eq!(desk.subscriptions(1), 2);
        assert_eq!(desk.subscriptions_held(), 2);
        desk.request(1, request("262=a|263=2").unwrap(), &mut wire);
        assert_eq!(desk.subscriptions(1), 0);
        assert_eq!(desk.subscriptions_held(), 0);
        assert_eq!(desk.stats().rejects, 3);
        // One each: duplicate id (281=1), bandwidth (281=2), unknown MDReqID (no 281).
        let by_reason = desk.stats().rejects_by_reason;
        assert_eq!(by_reason, [0, 1, 1, 0, 0, 0, 0, 1]);
        assert_eq!(REJECT_REASON_LABELS[RejectReason::index(None)], "unknown_md_req_id");
        assert!(!desk.take_ended(), "no session ended yet");
        desk.request(2, sub("c", "146=1|55=AAPL"), &mut wire);
        desk.end_session(2);
        assert!(desk.take_ended() && !desk.take_ended(), "reported once");
        assert_eq!(desk.subscriptions_held(), 0);
    }

    #[test]
    fn a_slow_session_is_conflated_then_refreshed_while_others_go_on() {
        let evs = events(400, 11);
        let config = MdConfig { backlog_bytes_max: 1000, ..MdConfig::default() };
        let mut desk = MarketDataDesk::new(symbols(), config);
        let mut wire = Wire::default();
        let mut books: Vec<(SessionId, MdBooks)> = vec![(1, MdBooks::new()), (2, MdBooks::new())];
        for session in [1, 2] {
            desk.request(
                session,
                request(&format!("262=x|263=1|264=3|{BOOK}|146=1|55=BTC-USD")).unwrap(),
                &mut wire,
            );
        }
        feed(&mut desk, &mut wire, &evs[..100], &mut books);
        wire.backlog.insert(1, 5000); // session 1 stops reading
        feed(&mut desk, &mut wire, &evs[100..300], &mut books);
        assert_eq!(desk.stats().conflations, 1, "one subscription made stale, once");
        // It is still behind: no refresh yet; then it drains to half the bound: one fresh W.
        desk.refresh_stale(&mut wire);
        assert!(wire.sent.is_empty());
        wire.backlog.insert(1, 400);
        desk.refresh_stale(&mut wire);
        let mut types = Vec::new();
        wire.take(|s, msg| {
            types.push((s, msg.msg_type().to_vec()));
            books[0].1.apply(msg).unwrap();
        });
        assert_eq!(types, vec![(1, b"W".to_vec())]);
        feed(&mut desk, &mut wire, &evs[300..390], &mut books);
        for (_, b) in &books {
            let book = b.book("BTC-USD").unwrap();
            assert_eq!(book.side(true), top(&desk, 3, Side::Buy));
            assert_eq!(book.side(false), top(&desk, 3, Side::Sell));
        }
        // A session that is gone loses its subscriptions at the next event for them.
        wire.gone.insert(2);
        feed(&mut desk, &mut wire, &evs[390..], &mut books);
        assert_eq!(desk.subscriptions(2), 0);
        assert_eq!(desk.subscriptions(1), 1);
        // The running count (checked against a walk in debug builds) lost session 2's one.
        assert_eq!(desk.subscriptions_held(), 1);
    }
    /// The bytes of a framed message from `268=` to the CheckSum: what sessions share.
    fn shared_part(bytes: &[u8]) -> &[u8] {
        let start = bytes.windows(5).position(|w| w == b"\x01268=").expect("a 268") + 1;
        &bytes[start..bytes.len() - 7]
    }

    #[test]
    fn a_batch_is_coalesced_netted_and_encoded_once_per_shape() {
        let evs = events(3_000, 21);
        let mut desk = MarketDataDesk::new(symbols(), MdConfig::default());
        let mut wire = Wire::default();
        feed(&mut desk, &mut wire, &evs[..300], &mut []);
        // Ten full-depth sessions (one shape), two at depth 3, one of bids only.
        let shapes: Vec<(SessionId, &str)> = (1..=10)
            .map(|s| (s, "264=0|267=3|269=0|269=1|269=2"))
            .chain([(11, "264=3|267=3|269=0|269=1|269=2"), (12, "264=3|267=3|269=0|269=1|269=2")])
            .chain([(13, "264=0|267=1|269=0")])
            .collect();
        let mut books: Vec<(SessionId, MdBooks)> = shapes.iter().map(|&(s, _)| (s, MdBooks::new())).collect();
        for &(session, shape) in &shapes {
            let r = request(&format!("262=r{session}|263=1|{shape}|146=1|55=BTC-USD")).unwrap();
            desk.request(session, r, &mut wire);
        }
        assert_eq!(desk.streams(), 3, "one stream per shape");
        wire.take(|session, msg| {
            books.iter_mut().find(|(s, _)| *s == session).unwrap().1.apply(msg).unwrap()
        });
        // Batches of 100 events: applied, then sent once.
        let mut per_session: FxHashMap<SessionId, Vec<Vec<u8>>> = FxHashMap::default();
        let before = desk.stats().incrementals;
        let mut entries = 0u64;
        for batch in evs[300..].chunks(100) {
            for event in batch {
                desk.apply(event, &mut wire).unwrap();
            }
            assert!(wire.sent.is_empty(), "nothing leaves before the flush");
            desk.flush(&mut wire);
            for (session, bytes) in &wire.sent {
                per_session.entry(*session).or_default().push(bytes.clone());
            }
            wire.take(|session, msg| {
                if session == 1 {
                    let n = msg.get_u64(tags::NO_MD_ENTRIES).unwrap().unwrap();
                    assert!(n as usize <= INCREMENTAL_ENTRIES_MAX, "{n} entries in one 35=X");
                    entries += n;
                }
                assert_eq!(msg.get_str(tags::MD_REQ_ID), Some(format!("r{session}").as_str()));
                books
                    .iter_mut()
                    .find(|(s, _)| *s == session)
                    .unwrap()
                    .1
                    .apply(msg)
                    .unwrap_or_else(|e| panic!("{e}"));
            });
        }
        let sent = desk.stats().incrementals - before;
        // One 35=X per event would be more than 13 × 2,000 (nearly every event changes the book).
        assert!(sent < 13 * 300, "coalesced: {sent} 35=X for 27 batches of 100 events");
        // Each event makes a trade or a level change or both: fewer entries than events is netting.
        assert!(entries < 2_200, "netted: {entries} entries for 2,700 events");
        // The same bytes from 268 on in every session of a shape, the headers aside.
        for (a, b) in [(1, 2), (1, 10), (11, 12)] {
            let (xa, xb) = (&per_session[&a], &per_session[&b]);
            assert_eq!(xa.len(), xb.len());
            assert!(xa.iter().zip(xb).all(|(x, y)| shared_part(x) == shared_part(y)), "sessions {a} and {b}");
            assert_ne!(xa[0], xb[0], "each with its own header and MDReqID");
        }
        let all = |s: SessionId| per_session[&s].iter().map(|m| shared_part(m).to_vec()).collect::<Vec<_>>();
        assert!(all(1) != all(11), "another shape, other bodies");
        for (session, b) in &books {
            let book = b.book("BTC-USD").unwrap();
            let depth = if *session == 11 || *session == 12 { 3 } else { usize::MAX };
            assert_eq!(book.side(true), top(&desk, depth, Side::Buy), "session {session}");
            let offers = if *session == 13 { Vec::new() } else { top(&desk, depth, Side::Sell) };
            assert_eq!(book.side(false), offers, "session {session}");
        }
        // Every trade is an entry of its own: the last one the client saw is the engine's last.
        let last = desk.md.projection().tape(SymbolId(0)).last().unwrap();
        let want = (engine::PriceUnits(last.price.0 * CENT), last.qty);
        assert_eq!(books[0].1.book("BTC-USD").unwrap().last_trade, Some(want));
    }

    #[test]
    fn a_level_that_comes_and_goes_within_a_batch_is_no_entry_but_each_trade_is() {
        let mut engine = Engine::new(EngineConfig::default());
        let mut evs = Vec::new();
        let mut seq = 0;
        let mut order = |side, ticks: i64, qty, evs: &mut Vec<Event>| {
            seq += 1;
            let id = ClOrdId::from_str(&format!("o{seq}")).unwrap();
            let order = NewOrder::limit(AccountId(seq as u32), SymbolId(0), id, side, ticks * CENT, qty);
            let command = Command { header: CommandHeader { seq, ts: seq }, kind: CommandKind::New(order) };
            engine.process(&command, evs);
        };
        order(Side::Buy, 9_900, 5, &mut evs); // a resting bid at 99.00, before the subscription
        let mut desk = MarketDataDesk::new(symbols(), MdConfig::default());
        let mut wire = Wire::default();
        for e in evs.drain(..) {
            desk.on_event(&e, &mut wire).unwrap();
        }
        desk.request(1, request(&format!("262=a|263=1|264=0|{BOOK}|146=1|55=BTC-USD")).unwrap(), &mut wire);
        let mut books = MdBooks::new();
        wire.take(|_, msg| books.apply(msg).unwrap());
        // One batch: an offer at 101.00 rests and is taken whole (a level that comes and goes),
        // then two sells hit the bid at 99.00 (two trades, one change of its size).
        order(Side::Sell, 10_100, 2, &mut evs);
        order(Side::Buy, 10_100, 2, &mut evs);
        order(Side::Sell, 9_900, 1, &mut evs);
        order(Side::Sell, 9_900, 1, &mut evs);
        for e in &evs {
            desk.apply(e, &mut wire).unwrap();
        }
        desk.flush(&mut wire);
        let mut seen = Vec::new();
        wire.take(|_, msg| {
            assert_eq!(msg.msg_type(), b"X");
            for entry in msg.group(tags::NO_MD_ENTRIES) {
                let field = |t| entry.get_str(t).unwrap().to_owned();
                seen.push([
                    field(tags::MD_UPDATE_ACTION),
                    field(tags::MD_ENTRY_TYPE),
                    field(tags::MD_ENTRY_PX),
                    field(tags::MD_ENTRY_SIZE),
                    field(tags::RPT_SEQ),
                ]);
            }
            books.apply(msg).unwrap();
        });
        let row = |a: &str, t: &str, px: &str, qty: &str, rpt: &str| [a, t, px, qty, rpt].map(str::to_owned);
        assert_eq!(
            seen,
            vec![
                row("0", "2", "101.00", "2", "1"),
                row("0", "2", "99.00", "1", "2"),
                row("0", "2", "99.00", "1", "3"),
                row("1", "0", "99.00", "3", "4"),
            ],
            "three trades, then the bid's new size; the offer at 101.00 came and went"
        );
        assert_eq!(books.book("BTC-USD").unwrap().side(true), top(&desk, usize::MAX, Side::Buy));
        assert!(books.book("BTC-USD").unwrap().side(false).is_empty());
    }

    #[test]
    fn a_later_subscriber_of_a_shape_joins_its_stream_at_the_streams_rpt_seq() {
        let evs = events(400, 3);
        let mut desk = MarketDataDesk::new(symbols(), MdConfig::default());
        let mut wire = Wire::default();
        let mut books: Vec<(SessionId, MdBooks)> = vec![(1, MdBooks::new()), (2, MdBooks::new())];
        let sub = |id: &str| request(&format!("262={id}|263=1|264=0|{BOOK}|146=1|55=BTC-USD")).unwrap();
        desk.request(1, sub("first"), &mut wire);
        feed(&mut desk, &mut wire, &evs[..200], &mut books);
        let rpt = books[0].1.book("BTC-USD").unwrap().rpt_seq.unwrap();
        assert!(rpt > 100);
        desk.request(2, sub("second"), &mut wire);
        let mut w_rpt = None;
        wire.take(|_, msg| {
            w_rpt = msg.get_u64(tags::RPT_SEQ).unwrap();
            books[1].1.apply(msg).unwrap();
        });
        assert_eq!(w_rpt, Some(rpt), "the 35=W is as of the stream's last entry");
        assert_eq!(desk.streams(), 1);
        feed(&mut desk, &mut wire, &evs[200..], &mut books);
        let (a, b) = (books[0].1.book("BTC-USD").unwrap(), books[1].1.book("BTC-USD").unwrap());
        assert_eq!((a.rpt_seq, &a.levels), (b.rpt_seq, &b.levels));
        // The stream ends with its last subscriber; a new one starts again from 0.
        desk.request(1, request("262=first|263=2").unwrap(), &mut wire);
        desk.end_session(2);
        assert_eq!(desk.streams(), 0);
        desk.request(3, sub("third"), &mut wire);
        wire.take(|_, msg| assert_eq!(msg.get_u64(tags::RPT_SEQ), Ok(Some(0))));
    }

    #[test]
    fn a_batch_past_its_bound_is_sent_without_waiting_for_the_flush() {
        let evs = events(12_000, 17);
        let mut desk = MarketDataDesk::new(symbols(), MdConfig::default());
        let mut wire = Wire::default();
        let mut books = MdBooks::new();
        desk.request(1, request(&format!("262=a|263=1|264=0|{BOOK}|146=1|55=BTC-USD")).unwrap(), &mut wire);
        let mut early = false;
        for e in &evs {
            desk.apply(e, &mut wire).unwrap();
            early |= !wire.sent.is_empty();
            wire.take(|_, msg| books.apply(msg).unwrap());
        }
        assert!(early, "{BATCH_ENTRIES_MAX} trades and levels at most wait for a flush");
        desk.flush(&mut wire);
        wire.take(|_, msg| books.apply(msg).unwrap());
        let book = books.book("BTC-USD").unwrap();
        assert_eq!(book.side(true), top(&desk, usize::MAX, Side::Buy));
        assert_eq!(book.side(false), top(&desk, usize::MAX, Side::Sell));
    }
    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

        /// Whatever the batch boundaries, after every flush each kind of subscriber (full depth,
        /// depth 3, bids only, and one that joins late) holds the desk's own book, gapless.
        #[test]
        fn any_batching_leaves_every_subscriber_with_the_book(
            seed in 1u64..u64::MAX,
            cuts in proptest::collection::vec(1usize..80, 1..40),
            late in 0usize..300,
        ) {
            let evs = events(1_200, seed);
            let mut desk = MarketDataDesk::new(symbols(), MdConfig::default());
            let mut wire = Wire::default();
            let shapes = [(1, "264=0|267=3|269=0|269=1|269=2"), (2, "264=3|267=3|269=0|269=1|269=2"),
                (3, "264=0|267=1|269=0"), (4, "264=0|267=3|269=0|269=1|269=2")];
            let mut books: Vec<(SessionId, MdBooks)> = shapes.iter().map(|&(s, _)| (s, MdBooks::new())).collect();
            let subscribe = |desk: &mut MarketDataDesk, wire: &mut Wire, (session, shape): (SessionId, &str)| {
                let r = request(&format!("262=r|263=1|{shape}|146=1|55=BTC-USD")).unwrap();
                desk.request(session, r, wire);
            };
            for &shape in &shapes[..3] {
                subscribe(&mut desk, &mut wire, shape);
            }
            let (mut at, mut cut) = (0, 0);
            while at < evs.len() {
                let n = cuts[cut % cuts.len()].min(evs.len() - at);
                cut += 1;
                for e in &evs[at..at + n] {
                    desk.apply(e, &mut wire).unwrap();
                }
                if at <= late && late < at + n {
                    subscribe(&mut desk, &mut wire, shapes[3]); // flushes first, then its 35=W
                }
                at += n;
                desk.flush(&mut wire);
                wire.take(|session, msg| {
                    let book = &mut books.iter_mut().find(|(s, _)| *s == session).unwrap().1;
                    book.apply(msg).unwrap_or_else(|e| panic!("session {session}: {e}"));
                });
                for (session, b) in &books {
                    let Some(book) = b.book("BTC-USD") else { continue };
                    let depth = if *session == 2 { 3 } else { usize::MAX };
                    proptest::prop_assert_eq!(book.side(true), top(&desk, depth, Side::Buy));
                    let offers = if *session == 3 { Vec::new() } else { top(&desk, depth, Side::Sell) };
                    proptest::prop_assert_eq!(book.side(false), offers);
                }
            }
        }
    }
}
