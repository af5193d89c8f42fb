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
//! Sequencing (docs/fix.md): every subscription keeps a RptSeq (83) per symbol. A 35=W carries
//! the RptSeq it is as of (at the top, where FIX 5.0 puts it); each 35=X entry carries the next
//! one, so a client that applies a W and then every X entry whose 83 is one more than the last
//! holds the book exactly, and sees any gap.

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

#[derive(Debug)]
struct SubSymbol {
    symbol: engine::SymbolId,
    /// The RptSeq last sent for this symbol.
    rpt_seq: u64,
    /// Depth-limited subscriptions: the top N last sent, best first, per side.
    window: [Vec<Level>; 2],
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

/// The FIX market-data side of the gateway; see the module docs.
#[derive(Debug)]
pub struct MarketDataDesk {
    md: MarketData,
    symbols: Symbols,
    config: MdConfig,
    sessions: FxHashMap<SessionId, Vec<Subscription>>,
    /// Per symbol, the (side, price) of every level of the full book: a level update is New
    /// (279=0) when its price is not there yet, Change (1) when it is.
    present: Vec<FxHashSet<(bool, i64)>>,
    /// Sessions with a stale subscription.
    stale_sessions: FxHashSet<SessionId>,
    scratch: Vec<marketdata::Message>,
    /// The entries a full-depth subscription gets for the current event (levels and trades).
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
            present: vec![FxHashSet::default(); count],
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
        }
        self.stale_sessions.remove(&session);
    }

    /// Answers a MarketDataRequest of `session`.
    pub fn request(&mut self, session: SessionId, request: MdRequest, sink: &mut impl MdSink) {
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
        self.held -= subs.remove(i).symbols.len();
        None
    }

    /// A 35=W of each requested symbol (no RptSeq: nothing follows it), then its status if halted.
    fn snapshot(&mut self, session: SessionId, request: &MdRequest, sink: &mut impl MdSink) {
        for &symbol in &request.symbols {
            let mut one = SubSymbol { symbol, rpt_seq: 0, window: Default::default() };
            self.stats.snapshots += write_snapshot(
                &self.md,
                &self.symbols,
                request,
                &mut one,
                session,
                false,
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
        let mut sub = Subscription {
            req_id: request.req_id.clone(),
            types: request.types,
            depth: request.depth,
            full_refresh_updates: request.full_refresh_updates,
            symbols: request
                .symbols
                .iter()
                .map(|&symbol| SubSymbol { symbol, rpt_seq: 0, window: Default::default() })
                .collect(),
            stale: false,
        };
        for one in &mut sub.symbols {
            self.stats.snapshots +=
                write_snapshot(&self.md, &self.symbols, request, one, session, true, sink, &mut self.entries);
        }
        self.held += sub.symbols.len();
        self.sessions.entry(session).or_default().push(sub);
        self.status_if_halted(session, &request.symbols, sink);
        None
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

    /// Applies the next engine event and sends what it changed to every subscription.
    pub fn on_event(&mut self, event: &Event, sink: &mut impl MdSink) -> Result<(), ProjectionError> {
        self.scratch.clear();
        self.md.on_event(event, &mut self.scratch)?;
        self.applied_seq = event.seq;
        let Some(symbol) = self.scratch.iter().find_map(|m| m.header.symbol) else { return Ok(()) };
        if let Some(halted) = trading_status(&self.scratch) {
            if !self.sessions.is_empty() {
                self.status_changed(symbol, halted, event.ts, sink);
            }
            return Ok(());
        }
        full_depth_entries(&self.scratch, &mut self.present[symbol.index()], &mut self.full);
        if self.full.is_empty() || self.sessions.is_empty() {
            return Ok(());
        }
        let Self {
            md,
            symbols,
            config,
            sessions,
            stale_sessions,
            full,
            entries,
            window_scratch,
            stats,
            held,
            ..
        } = self;
        let book = md.projection().book(symbol).expect("an event's symbol is listed");
        sessions.retain(|&session, subs| {
            let wants = subs.iter().any(|s| !s.stale && s.symbols.iter().any(|o| o.symbol == symbol));
            if !wants {
                return true;
            }
            let Some(backlog) = sink.backlog(session) else {
                *held -= held_by(subs);
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
            for sub in subs.iter_mut().filter(|s| !s.stale) {
                let Some(one) = sub.symbols.iter_mut().find(|o| o.symbol == symbol) else { continue };
                subscription_entries(sub.types, sub.depth, full, book, one, entries, window_scratch);
                if entries.is_empty() {
                    continue;
                }
                if sub.full_refresh_updates {
                    // As of the entries a 35=X would have carried: a skipped refresh is a gap.
                    one.rpt_seq += entries.len() as u64;
                    let request = full_refresh_request(&sub.req_id, sub.types, sub.depth);
                    let mut scratch = Vec::new();
                    stats.snapshots +=
                        write_snapshot(md, symbols, &request, one, session, true, sink, &mut scratch);
                    continue;
                }
                let to = Incremental { session, req_id: &sub.req_id, symbols, symbol };
                stats.incrementals += send_incrementals(&to, one, entries, sink);
            }
            true
        });
        Ok(())
    }

    /// Sends a fresh 35=W for every stale subscription whose session has drained its backlog
    /// to half the bound. Call once per loop turn; costs nothing while no session is stale.
    pub fn refresh_stale(&mut self, sink: &mut impl MdSink) {
        if self.stale_sessions.is_empty() {
            return;
        }
        let mut done = Vec::new();
        for &session in &self.stale_sessions {
            match sink.backlog(session) {
                None => done.push(session),
                Some(backlog) if backlog <= self.config.backlog_bytes_max / 2 => {
                    done.push(session);
                    let Some(subs) = self.sessions.get_mut(&session) else { continue };
                    for sub in subs.iter_mut().filter(|s| s.stale) {
                        sub.stale = false;
                        let request = MdRequest {
                            req_id: sub.req_id.clone(),
                            kind: SubscriptionType::Subscribe,
                            depth: sub.depth,
                            full_refresh_updates: sub.full_refresh_updates,
                            types: sub.types,
                            symbols: Vec::new(),
                        };
                        for one in &mut sub.symbols {
                            self.stats.snapshots += write_snapshot(
                                &self.md,
                                &self.symbols,
                                &request,
                                one,
                                session,
                                true,
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

/// The halt (true) or resume (false) among one event's messages, if any.
fn trading_status(scratch: &[marketdata::Message]) -> Option<bool> {
    scratch.iter().find_map(|m| match m.body {
        Body::TradingStatus { halted } => Some(halted),
        _ => None,
    })
}

/// Every level change and trade of one event's messages (`scratch`), in order, as a full-depth
/// subscriber sees them; `present` (the symbol's levels already announced) tells a new level
/// from a changed one.
fn full_depth_entries(
    scratch: &[marketdata::Message],
    present: &mut FxHashSet<(bool, i64)>,
    full: &mut Vec<Entry>,
) {
    full.clear();
    for m in scratch.iter().filter(|m| m.header.channel == Channel::Levels) {
        match m.body {
            Body::Level(level) => {
                let key = (level.side == Side::Buy, level.price.0);
                let action = if level.qty == 0 {
                    present.remove(&key);
                    b'2'
                } else if present.insert(key) {
                    b'0'
                } else {
                    b'1'
                };
                full.push(Entry {
                    action,
                    kind: entry_kind(level.side),
                    price: level.price.0,
                    qty: level.qty,
                });
            }
            Body::Trade { price, qty, .. } => {
                full.push(Entry { action: b'0', kind: b'2', price: price.0, qty });
            }
            _ => {}
        }
    }
}

/// What one subscription of `types` and `depth` hears of an event (into `entries`): the
/// full-depth entries of its types, or, depth-limited, its trades and the moves of its window
/// of `book`.
fn subscription_entries(
    types: EntryTypes,
    depth: Option<usize>,
    full: &[Entry],
    book: &marketdata::OrderBook,
    one: &mut SubSymbol,
    entries: &mut Vec<Entry>,
    window_scratch: &mut WindowScratch,
) {
    entries.clear();
    let Some(depth) = depth else {
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
            let window = &mut one.window[side_index(side)];
            window_diff(window, book.levels(side).take(depth), side, entries, window_scratch);
        }
    }
}

/// The request a full-refresh subscription (265=0) is answered by again, with a 35=W, for
/// each update.
fn full_refresh_request(req_id: &str, types: EntryTypes, depth: Option<usize>) -> MdRequest {
    MdRequest {
        req_id: req_id.to_owned(),
        kind: SubscriptionType::Subscribe,
        depth,
        full_refresh_updates: true,
        types,
        symbols: Vec::new(),
    }
}

/// Where a subscription's 35=X go.
struct Incremental<'a> {
    session: SessionId,
    req_id: &'a str,
    symbols: &'a Symbols,
    symbol: engine::SymbolId,
}

/// Sends `entries` as 35=X messages of at most [`INCREMENTAL_ENTRIES_MAX`] entries, numbering
/// them on from `one`'s RptSeq; returns how many messages.
fn send_incrementals(
    to: &Incremental<'_>,
    one: &mut SubSymbol,
    entries: &[Entry],
    sink: &mut impl MdSink,
) -> u64 {
    let name = to.symbols.spec(to.symbol).map_or("?", |s| s.name.as_str());
    let mut sent = 0;
    for chunk in entries.chunks(INCREMENTAL_ENTRIES_MAX) {
        sent += 1;
        let first = one.rpt_seq + 1;
        one.rpt_seq += chunk.len() as u64;
        sink.send(to.session, b"X", &mut |e| {
            e.str(tags::MD_REQ_ID, to.req_id);
            e.u64(tags::NO_MD_ENTRIES, chunk.len() as u64);
            for (i, entry) in chunk.iter().enumerate() {
                e.char(tags::MD_UPDATE_ACTION, entry.action);
                e.char(tags::MD_ENTRY_TYPE, entry.kind);
                e.str(SYMBOL, name);
                e.bytes(
                    tags::MD_ENTRY_PX,
                    to.symbols.format_ticks(to.symbol, entry.price).as_str().as_bytes(),
                );
                e.u64(tags::MD_ENTRY_SIZE, entry.qty);
                e.u64(tags::RPT_SEQ, first + i as u64);
            }
        });
    }
    sent
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

/// Writes the 35=W (in fragments of [`SNAPSHOT_ENTRIES_MAX`]) of one symbol of a request and
/// resets its depth window to what it shows; returns the messages written. `rpt_seq`: a
/// subscription's W carries the RptSeq it is as of; a one-off snapshot carries none.
#[allow(clippy::too_many_arguments)]
fn write_snapshot(
    md: &MarketData,
    symbols: &Symbols,
    request: &MdRequest,
    one: &mut SubSymbol,
    session: SessionId,
    rpt_seq: bool,
    sink: &mut impl MdSink,
    entries: &mut Vec<Entry>,
) -> u64 {
    let symbol = one.symbol;
    let Some(book) = md.projection().book(symbol) else { return 0 };
    entries.clear();
    for side in [Side::Buy, Side::Sell] {
        let window = &mut one.window[side_index(side)];
        window.clear();
        if !request.types.side(side) {
            continue;
        }
        let depth = request.depth.unwrap_or(usize::MAX);
        for level in book.levels(side).take(depth) {
            if request.depth.is_some() {
                window.push(level);
            }
            entries.push(Entry {
                action: b'0',
                kind: entry_kind(side),
                price: level.price.0,
                qty: level.qty,
            });
        }
    }
    if request.types.trade {
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
            e.str(tags::MD_REQ_ID, &request.req_id);
            e.str(SYMBOL, name);
            if rpt_seq {
                e.u64(tags::RPT_SEQ, one.rpt_seq);
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
}
