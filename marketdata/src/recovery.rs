//! The binary feed's recovery stream and the subscriber's resequencer, both sans-IO.
//!
//! The live feed is unreliable datagrams (see [`crate::datagram`]); beside them, on the same
//! connection, one reliable bidirectional stream carries requests and their answers, each a
//! frame `length:u16 kind:u8 payload` (little-endian; `length` counts `kind` and `payload`):
//!
//! ```text
//! requests   'S' subscribe   count:u8, then count × (len:u8 name)      symbols by name
//!            'R' retransmit  from:u64 count:u32                      orders channel seqs
//!            'Q' snapshot    symbol:u32
//! replies    'A' subscribed  count:u8, then count × (symbol:u32 len:u8 name)
//!            'M' message     one codec message (a snapshot part, or a retransmitted one)
//!            'C' complete    from:u64 count:u32 sent:u32 source:u8 (1 log, 2 journal)
//!            'E' error       code:u8, then the reason (UTF-8, to the frame's end)
//! ```
//!
//! A retransmission (MoldUDP64's re-request) names a range of *channel* sequences: a subscriber
//! of some symbols sees only their messages, so it knows the channel sequences around a hole in
//! one symbol's sequence, not which of the messages in between were its own. The server sends
//! the messages of the range that belong to the connection's symbols, then `C`, which also tells
//! the subscriber that the whole range holds nothing more for it.
//!
//! [`Resequencer`] is the subscriber's side: it takes messages in any order from either path,
//! hands each symbol's messages on in symbol-sequence order without a hole, and says which
//! request heals a hole (a retransmission; a snapshot when that cannot).

use std::collections::BTreeMap;

use crate::message::{Body, Message};
use crate::{codec, SymbolId};

/// Longest frame payload (kind included): the `u16` length.
pub const FRAME_LEN_MAX: usize = u16::MAX as usize;
/// Most symbols one connection subscribes to.
pub const SUBSCRIBE_SYMBOLS_MAX: usize = 64;
/// Most channel sequences one retransmission covers; a longer hole is healed by a snapshot.
pub const RETRANSMIT_COUNT_MAX: u32 = 10_000;
/// Sequenced messages a subscriber holds per symbol while a hole before them is being filled.
pub const HELD_PER_SYMBOL_MAX: usize = 65_536;

const K_SUBSCRIBE: u8 = b'S';
const K_RETRANSMIT: u8 = b'R';
const K_SNAPSHOT: u8 = b'Q';
const K_SUBSCRIBED: u8 = b'A';
const K_MESSAGE: u8 = b'M';
const K_COMPLETE: u8 = b'C';
const K_ERROR: u8 = b'E';

/// A subscriber's request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Receive these symbols (by name): a snapshot of each on the stream, then datagrams.
    Subscribe(Vec<String>),
    /// Send again orders-channel messages `from..from + count` of the subscribed symbols.
    Retransmit {
        /// First channel sequence.
        from: u64,
        /// Channel sequences covered.
        count: u32,
    },
    /// Send a fresh snapshot of one subscribed symbol on the stream.
    Snapshot(SymbolId),
}

/// Where a retransmission was served from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The publisher's log of recent messages.
    Log,
    /// The event journal, replayed through a fresh feed (older than the log holds).
    Journal,
}

/// A subscribed symbol as the server acknowledges it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    /// The id every message carries.
    pub symbol: SymbolId,
    /// Its tick in price units (`engine::PRICE_SCALE` decimals): prices on the feed are ticks.
    pub tick_units: engine::PriceUnits,
    /// Its name.
    pub name: String,
}

/// A server's answer on the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// The subscription took effect: the symbols, in the order asked.
    Subscribed(Vec<Listed>),
    /// A snapshot part or a retransmitted message.
    Message(Message),
    /// A retransmission is done.
    Complete {
        /// First channel sequence of the range.
        from: u64,
        /// Channel sequences covered.
        count: u32,
        /// Messages of the connection's symbols sent for it.
        sent: u32,
        /// Where they came from.
        source: Source,
    },
    /// A request was refused; the connection goes on.
    Error {
        /// Which refusal ([`RequestError::code`]).
        code: u8,
        /// Why, for a person.
        reason: String,
    },
}

/// Why a request is refused. Each is sent as a [`Reply::Error`]; the connection goes on
/// (except after [`RequestError::Disconnected`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The frame is not a request.
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    /// A frame kind no request has.
    #[error("unknown request type {0:#04x}")]
    UnknownType(u8),
    /// A symbol name that is not listed.
    #[error("unknown symbol {0:?}")]
    UnknownSymbol(String),
    /// A snapshot of a symbol not subscribed to, or not listed.
    #[error("symbol {0} is not subscribed on this connection")]
    NotSubscribed(SymbolId),
    /// A retransmission or snapshot before any subscription.
    #[error("subscribe first")]
    NoSubscription,
    /// More symbols than [`SUBSCRIBE_SYMBOLS_MAX`], or none.
    #[error("subscribe to 1 to {max} symbols, not {asked}", max = SUBSCRIBE_SYMBOLS_MAX)]
    SymbolCount {
        /// Symbols asked for.
        asked: usize,
    },
    /// A retransmission longer than [`RETRANSMIT_COUNT_MAX`] (or of 0 messages).
    #[error("retransmit count {count} outside 1..={max}; take a snapshot", max = RETRANSMIT_COUNT_MAX)]
    RangeTooLarge {
        /// Asked.
        count: u32,
    },
    /// A retransmission of messages not published yet (or from seq 0).
    #[error("retransmit from {from} count {count} reaches past the last published seq {last}")]
    InTheFuture {
        /// Asked from.
        from: u64,
        /// Asked count.
        count: u32,
        /// Last channel seq published.
        last: u64,
    },
    /// Neither the log nor the journal can serve the range.
    #[error("retransmit from {from}: {why}; take a snapshot")]
    Unavailable {
        /// Asked from.
        from: u64,
        /// Why.
        why: String,
    },
    /// The subscriber fell too far behind and is cut off (the connection closes after this).
    #[error("disconnected: {0}")]
    Disconnected(String),
    /// The publisher refused the subscription (it has its most subscribers).
    #[error("subscription refused: {0}")]
    SubscriptionRefused(String),
}

impl RequestError {
    /// The code on the wire.
    pub fn code(&self) -> u8 {
        match self {
            RequestError::Malformed(_) => 1,
            RequestError::UnknownType(_) => 2,
            RequestError::UnknownSymbol(_) => 3,
            RequestError::NotSubscribed(_) => 4,
            RequestError::NoSubscription => 5,
            RequestError::SymbolCount { .. } => 6,
            RequestError::RangeTooLarge { .. } => 7,
            RequestError::InTheFuture { .. } => 8,
            RequestError::Unavailable { .. } => 9,
            RequestError::Disconnected(_) => 10,
            RequestError::SubscriptionRefused(_) => 11,
        }
    }

    /// This error as a reply.
    pub fn reply(&self) -> Reply {
        Reply::Error { code: self.code(), reason: self.to_string() }
    }
}

/// Checks a retransmission's range against the last channel sequence published.
pub fn check_retransmit(from: u64, count: u32, last: u64) -> Result<(), RequestError> {
    if count == 0 || count > RETRANSMIT_COUNT_MAX {
        return Err(RequestError::RangeTooLarge { count });
    }
    let end = from.checked_add(u64::from(count) - 1);
    if from == 0 || end.is_none_or(|end| end > last) {
        return Err(RequestError::InTheFuture { from, count, last });
    }
    Ok(())
}

/// Appends one frame (`kind`, then what `payload` writes) to `out`.
fn frame(out: &mut Vec<u8>, kind: u8, payload: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0, 0, kind]);
    payload(out);
    let len = out.len() - start - 2;
    assert!(len <= FRAME_LEN_MAX, "frame of {len} bytes");
    out[start..start + 2].copy_from_slice(&(len as u16).to_le_bytes());
}

fn put_name(out: &mut Vec<u8>, name: &str) {
    // Symbol names are short; a longer one is cut at a char boundary rather than refused.
    let mut end = name.len().min(u8::MAX as usize);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    out.push(end as u8);
    out.extend_from_slice(&name.as_bytes()[..end]);
}

impl Request {
    /// Appends the request's frame to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Request::Subscribe(names) => frame(out, K_SUBSCRIBE, |o| {
                o.push(names.len().min(u8::MAX as usize) as u8);
                for name in names.iter().take(u8::MAX as usize) {
                    put_name(o, name);
                }
            }),
            Request::Retransmit { from, count } => frame(out, K_RETRANSMIT, |o| {
                o.extend_from_slice(&from.to_le_bytes());
                o.extend_from_slice(&count.to_le_bytes());
            }),
            Request::Snapshot(symbol) => {
                frame(out, K_SNAPSHOT, |o| o.extend_from_slice(&symbol.to_le_bytes()))
            }
        }
    }

    /// Reads a request from one frame's kind and payload.
    pub fn decode(kind: u8, payload: &[u8]) -> Result<Request, RequestError> {
        let mut r = Reader { buf: payload };
        let request = match kind {
            K_SUBSCRIBE => {
                let n = r.u8().ok_or(RequestError::Malformed("subscribe without a count"))?;
                let mut names = Vec::with_capacity(usize::from(n));
                for _ in 0..n {
                    let name = r.name().ok_or(RequestError::Malformed("subscribe: truncated symbol name"))?;
                    names.push(name);
                }
                Request::Subscribe(names)
            }
            K_RETRANSMIT => {
                let from = r.u64().ok_or(RequestError::Malformed("retransmit: truncated"))?;
                let count = r.u32().ok_or(RequestError::Malformed("retransmit: truncated"))?;
                Request::Retransmit { from, count }
            }
            K_SNAPSHOT => {
                Request::Snapshot(SymbolId(r.u32().ok_or(RequestError::Malformed("snapshot: truncated"))?))
            }
            other => return Err(RequestError::UnknownType(other)),
        };
        if !r.buf.is_empty() {
            return Err(RequestError::Malformed("bytes after the request"));
        }
        Ok(request)
    }
}

/// Why a reply frame cannot be read (the server is broken or not this protocol).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// The frame is not a reply.
    #[error("malformed reply frame {0:#04x}")]
    Malformed(u8),
    /// The embedded feed message does not decode.
    #[error("embedded message: {0}")]
    Message(#[from] codec::DecodeError),
}

impl Reply {
    /// Appends the reply's frame to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Reply::Subscribed(symbols) => frame(out, K_SUBSCRIBED, |o| {
                o.push(symbols.len().min(u8::MAX as usize) as u8);
                for listed in symbols.iter().take(u8::MAX as usize) {
                    o.extend_from_slice(&listed.symbol.to_le_bytes());
                    o.extend_from_slice(&listed.tick_units.to_le_bytes());
                    put_name(o, &listed.name);
                }
            }),
            Reply::Message(m) => frame(out, K_MESSAGE, |o| {
                let mut buf = [0u8; codec::MESSAGE_LEN_MAX];
                let n = codec::encode(m, &mut buf).expect("MESSAGE_LEN_MAX holds every message");
                o.extend_from_slice(&buf[..n]);
            }),
            Reply::Complete { from, count, sent, source } => frame(out, K_COMPLETE, |o| {
                o.extend_from_slice(&from.to_le_bytes());
                o.extend_from_slice(&count.to_le_bytes());
                o.extend_from_slice(&sent.to_le_bytes());
                o.push(match source {
                    Source::Log => 1,
                    Source::Journal => 2,
                });
            }),
            Reply::Error { code, reason } => frame(out, K_ERROR, |o| {
                o.push(*code);
                let mut end = reason.len().min(FRAME_LEN_MAX - 2);
                while !reason.is_char_boundary(end) {
                    end -= 1;
                }
                o.extend_from_slice(&reason.as_bytes()[..end]);
            }),
        }
    }

    /// Reads a reply from one frame's kind and payload.
    pub fn decode(kind: u8, payload: &[u8]) -> Result<Reply, ReplyError> {
        let bad = ReplyError::Malformed(kind);
        let mut r = Reader { buf: payload };
        let reply = match kind {
            K_SUBSCRIBED => {
                let n = r.u8().ok_or(bad)?;
                let mut symbols = Vec::with_capacity(usize::from(n));
                for _ in 0..n {
                    let symbol = r.u32().ok_or(bad)?;
                    let tick_units = engine::PriceUnits(r.u64().ok_or(bad)? as i64);
                    symbols.push(Listed { symbol: SymbolId(symbol), tick_units, name: r.name().ok_or(bad)? });
                }
                Reply::Subscribed(symbols)
            }
            K_MESSAGE => {
                let (m, used) = codec::decode(payload)?;
                r.buf = &payload[used..];
                Reply::Message(m)
            }
            K_COMPLETE => {
                let from = r.u64().ok_or(bad)?;
                let count = r.u32().ok_or(bad)?;
                let sent = r.u32().ok_or(bad)?;
                let source = match r.u8().ok_or(bad)? {
                    1 => Source::Log,
                    2 => Source::Journal,
                    _ => return Err(bad),
                };
                Reply::Complete { from, count, sent, source }
            }
            K_ERROR => {
                let code = r.u8().ok_or(bad)?;
                let reason = String::from_utf8_lossy(r.buf).into_owned();
                r.buf = &[];
                Reply::Error { code, reason }
            }
            _ => return Err(bad),
        };
        if !r.buf.is_empty() {
            return Err(bad);
        }
        Ok(reply)
    }
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.buf.split_first_chunk::<N>()?;
        self.buf = rest;
        Some(*head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_le_bytes)
    }
    fn name(&mut self) -> Option<String> {
        let len = usize::from(self.u8()?);
        if self.buf.len() < len {
            return None;
        }
        let (name, rest) = self.buf.split_at(len);
        self.buf = rest;
        Some(String::from_utf8_lossy(name).into_owned())
    }
}

/// Takes the first whole frame off the front of `buf`: its kind and payload, consumed from
/// `buf`. `None` until a whole frame is there. A frame of length 0 has no kind: it is taken off
/// and reported as kind 0 (which no request or reply has).
pub fn next_frame(buf: &mut Vec<u8>) -> Option<(u8, Vec<u8>)> {
    let len = usize::from(u16::from_le_bytes(buf.get(..2)?.try_into().ok()?));
    if buf.len() < 2 + len {
        return None;
    }
    let frame: Vec<u8> = buf.drain(..2 + len).skip(2).collect();
    match frame.split_first() {
        Some((&kind, payload)) => Some((kind, payload.to_vec())),
        None => Some((0, Vec::new())),
    }
}

/// What a [`Resequencer`] noticed, for the subscriber to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Note {
    /// A hole in a symbol's sequence: `expected` should have come, `got` came.
    Gap {
        /// The symbol.
        symbol: SymbolId,
        /// Symbol seq expected.
        expected: u64,
        /// Symbol seq received.
        got: u64,
    },
    /// A hole was filled: the symbol is gapless again up to `symbol_seq`.
    Healed {
        /// The symbol.
        symbol: SymbolId,
        /// Its last symbol seq handed on.
        symbol_seq: u64,
    },
    /// A snapshot of the symbol started; everything held before it is superseded.
    Snapshot {
        /// The symbol.
        symbol: SymbolId,
        /// The last symbol seq it includes.
        symbol_seq: u64,
    },
}

#[derive(Debug, Default)]
struct SymbolState {
    /// Last symbol seq handed on (`None` before the first snapshot completes).
    symbol_seq: Option<u64>,
    /// Channel seq of that message (or the snapshot's).
    channel_seq: u64,
    /// Sequenced messages after a hole (or before the snapshot), by symbol seq.
    held: BTreeMap<u64, Message>,
    /// A snapshot was asked for and has not begun.
    snapshot_asked: bool,
    /// A snapshot is being received (its parts are handed on as they come).
    in_snapshot: bool,
    /// The gap reported and not yet healed.
    gap_open: bool,
}

/// The subscriber's resequencer for the orders channel of some symbols; see the module docs.
///
/// Feed it every message from the datagrams and the stream ([`Resequencer::on_message`]) and
/// every `C` or `E` reply ([`Resequencer::on_complete`], [`Resequencer::on_refused`]); send what
/// [`Resequencer::poll_request`] returns. At most one request is outstanding at a time.
#[derive(Debug)]
pub struct Resequencer {
    symbols: BTreeMap<SymbolId, SymbolState>,
    /// Highest channel seq known to hold nothing more for us (every message up to it either
    /// arrived or belongs to another symbol).
    channel_seq_covered: u64,
    /// Highest channel seq seen on any message or heartbeat.
    channel_seq_seen: u64,
    outstanding: Option<Request>,
    notes: Vec<Note>,
    /// Holes seen.
    pub gaps: u64,
    /// Holes filled by a retransmission.
    pub healed: u64,
    /// Snapshots asked for because a retransmission could not heal.
    pub snapshots_asked: u64,
}

impl Resequencer {
    /// A resequencer for `symbols`, each waiting for its first snapshot.
    pub fn new(symbols: &[SymbolId]) -> Resequencer {
        Resequencer {
            symbols: symbols.iter().map(|&s| (s, SymbolState::default())).collect(),
            channel_seq_covered: 0,
            channel_seq_seen: 0,
            outstanding: None,
            notes: Vec::new(),
            gaps: 0,
            healed: 0,
            snapshots_asked: 0,
        }
    }

    /// What happened since the last call.
    pub fn take_notes(&mut self) -> Vec<Note> {
        std::mem::take(&mut self.notes)
    }

    /// The request in flight, if any.
    pub fn outstanding(&self) -> Option<&Request> {
        self.outstanding.as_ref()
    }

    /// Takes one message of the orders channel from either path; hands on, through `out`,
    /// every message that is now next in its symbol's sequence (and snapshot parts as they come).
    pub fn on_message(&mut self, m: &Message, out: &mut impl FnMut(&Message)) {
        let h = m.header;
        if m.body == Body::Heartbeat {
            self.channel_seq_seen = self.channel_seq_seen.max(h.channel_seq);
            return;
        }
        let Some(symbol) = h.symbol else { return };
        let Some(st) = self.symbols.get_mut(&symbol) else { return };
        match m.body {
            Body::SnapshotBegin { .. } => {
                st.snapshot_asked = false;
                st.in_snapshot = true;
                st.symbol_seq = Some(h.symbol_seq);
                st.channel_seq = h.channel_seq;
                st.gap_open = false;
                st.held = st.held.split_off(&(h.symbol_seq + 1));
                if self.outstanding == Some(Request::Snapshot(symbol)) {
                    self.outstanding = None;
                }
                self.channel_seq_seen = self.channel_seq_seen.max(h.channel_seq);
                self.notes.push(Note::Snapshot { symbol, symbol_seq: h.symbol_seq });
                out(m);
            }
            Body::SnapshotOrder(_) | Body::SnapshotLevel(_) => {
                if st.in_snapshot {
                    out(m);
                }
            }
            Body::SnapshotEnd { .. } => {
                if st.in_snapshot {
                    st.in_snapshot = false;
                    out(m);
                    self.release(symbol, out);
                }
            }
            _ => {
                self.channel_seq_seen = self.channel_seq_seen.max(h.channel_seq);
                if st.symbol_seq.is_some_and(|last| h.symbol_seq <= last) {
                    return; // already handed on (a duplicate, or included in the snapshot)
                }
                if st.held.len() >= HELD_PER_SYMBOL_MAX {
                    // The hole is not being filled fast enough: start over from a snapshot.
                    st.held.clear();
                    st.snapshot_asked = true;
                    st.symbol_seq = None;
                }
                st.held.insert(h.symbol_seq, *m);
                if !st.in_snapshot {
                    self.release(symbol, out);
                }
            }
        }
    }

    /// Hands on the held messages that follow the last one handed on.
    fn release(&mut self, symbol: SymbolId, out: &mut impl FnMut(&Message)) {
        let Some(st) = self.symbols.get_mut(&symbol) else { return };
        let Some(mut last) = st.symbol_seq else { return };
        while let Some(entry) = st.held.first_entry() {
            if *entry.key() != last + 1 {
                break;
            }
            let m = entry.remove();
            last = m.header.symbol_seq;
            st.channel_seq = m.header.channel_seq;
            out(&m);
        }
        st.symbol_seq = Some(last);
        match st.held.first_key_value() {
            Some((&got, _)) if !st.gap_open => {
                st.gap_open = true;
                self.gaps += 1;
                self.notes.push(Note::Gap { symbol, expected: last + 1, got });
            }
            None if st.gap_open => {
                st.gap_open = false;
                self.healed += 1;
                self.notes.push(Note::Healed { symbol, symbol_seq: last });
            }
            _ => {}
        }
    }

    /// The next request to send, if one is needed and none is outstanding: a retransmission of
    /// the first hole (or of a tail a heartbeat revealed), or a snapshot when a retransmission
    /// cannot heal it.
    pub fn poll_request(&mut self) -> Option<Request> {
        if self.outstanding.is_some() {
            return None;
        }
        let mut request = None;
        for (&symbol, st) in self.symbols.iter_mut() {
            if st.snapshot_asked && !st.in_snapshot {
                request = Some(Request::Snapshot(symbol));
                break;
            }
            let (Some(_), Some((_, next))) = (st.symbol_seq, st.held.first_key_value()) else { continue };
            if st.in_snapshot {
                continue;
            }
            let from = st.channel_seq + 1;
            let until = next.header.channel_seq; // exclusive
            let count = until.saturating_sub(from);
            if count == 0 || count > u64::from(RETRANSMIT_COUNT_MAX) {
                st.snapshot_asked = true;
                self.snapshots_asked += 1;
                request = Some(Request::Snapshot(symbol));
            } else {
                request = Some(Request::Retransmit { from, count: count as u32 });
            }
            break;
        }
        if request.is_none() && self.channel_seq_seen > self.channel_seq_covered {
            // A heartbeat (or another symbol's message) says the channel moved on: make sure
            // nothing of ours was lost at the tail.
            let floor = self.symbols.values().filter_map(|s| s.symbol_seq.map(|_| s.channel_seq)).min();
            if let Some(floor) = floor {
                // Every symbol has everything up to its own last channel seq, so up to the
                // lowest of them nothing of ours is missing.
                self.channel_seq_covered = self.channel_seq_covered.max(floor);
                let from = self.channel_seq_covered + 1;
                if from <= self.channel_seq_seen {
                    let count =
                        (self.channel_seq_seen - from + 1).min(u64::from(RETRANSMIT_COUNT_MAX)) as u32;
                    request = Some(Request::Retransmit { from, count });
                } else {
                    self.channel_seq_covered = self.channel_seq_seen;
                }
            }
        }
        self.outstanding.clone_from(&request);
        request
    }

    /// A retransmission is complete: every message of the range for our symbols has been given
    /// to [`Resequencer::on_message`]. A symbol whose hole lay inside the range and is still
    /// open cannot be healed by retransmission: it gets a snapshot.
    pub fn on_complete(&mut self, from: u64, count: u32) {
        let end = from + u64::from(count).saturating_sub(1);
        if self.channel_seq_covered + 1 >= from {
            self.channel_seq_covered = self.channel_seq_covered.max(end);
        }
        for st in self.symbols.values_mut() {
            if let (Some(_), Some((_, next))) = (st.symbol_seq, st.held.first_key_value()) {
                if !st.in_snapshot && next.header.channel_seq <= end + 1 && st.channel_seq + 1 >= from {
                    st.snapshot_asked = true;
                    self.snapshots_asked += 1;
                }
            }
        }
        if matches!(self.outstanding, Some(Request::Retransmit { .. })) {
            self.outstanding = None;
        }
    }

    /// The outstanding request was refused: a retransmission falls back to snapshots of every
    /// symbol with a hole; a refused snapshot is asked again later.
    pub fn on_refused(&mut self) {
        if let Some(Request::Retransmit { from, count }) = self.outstanding.take() {
            let end = from + u64::from(count);
            for st in self.symbols.values_mut() {
                if !st.held.is_empty() && st.symbol_seq.is_some() {
                    st.snapshot_asked = true;
                    self.snapshots_asked += 1;
                }
            }
            // A refused tail check: the range is not ours to verify; move on.
            self.channel_seq_covered = self.channel_seq_covered.max(end - 1);
        }
    }

    /// A snapshot asked for has begun: the outstanding request is done (`on_message` does this
    /// itself for a snapshot of the symbol; this is for a refused one).
    pub fn on_snapshot_done(&mut self, symbol: SymbolId) {
        if self.outstanding == Some(Request::Snapshot(symbol)) {
            self.outstanding = None;
        }
    }

    /// The book of `symbol` cannot be trusted (its builder refused an update or a checksum):
    /// hold its messages and ask for a snapshot.
    pub fn ask_snapshot(&mut self, symbol: SymbolId) {
        if let Some(st) = self.symbols.get_mut(&symbol) {
            if !st.snapshot_asked {
                st.snapshot_asked = true;
                st.symbol_seq = None;
                st.in_snapshot = false;
                self.snapshots_asked += 1;
            }
        }
    }

    /// Last symbol seq handed on for a symbol.
    pub fn symbol_seq(&self, symbol: SymbolId) -> Option<u64> {
        self.symbols.get(&symbol).and_then(|s| s.symbol_seq)
    }
}

#[cfg(test)]
mod tests {
    use engine::OrderId;
    use proptest::prelude::*;

    use super::*;
    use crate::message::{Channel, Header};

    fn message(symbol: SymbolId, channel_seq: u64, symbol_seq: u64) -> Message {
        Message {
            header: Header {
                epoch: 1,
                channel: Channel::Orders,
                channel_seq,
                symbol_seq,
                symbol: Some(symbol),
                ts_ns: 0,
            },
            body: Body::Delete { order_id: OrderId(channel_seq) },
        }
    }

    fn snapshot(symbol: SymbolId, channel_seq: u64, symbol_seq: u64) -> [Message; 2] {
        let header = Header {
            epoch: 1,
            channel: Channel::Orders,
            channel_seq,
            symbol_seq,
            symbol: Some(symbol),
            ts_ns: 0,
        };
        [
            Message { header, body: Body::SnapshotBegin { items: 0, halted: false } },
            Message { header, body: Body::SnapshotEnd { items: 0 } },
        ]
    }

    fn requests() -> impl Strategy<Value = Request> {
        prop_oneof![
            proptest::collection::vec("[A-Z]{1,8}-[A-Z]{3}", 0..5).prop_map(Request::Subscribe),
            (any::<u64>(), any::<u32>()).prop_map(|(from, count)| Request::Retransmit { from, count }),
            any::<u32>().prop_map(|s| Request::Snapshot(SymbolId(s))),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn requests_round_trip_and_any_bytes_are_refused_or_read_never_panicking(
            r in requests(),
            junk in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let mut buf = Vec::new();
            r.encode(&mut buf);
            buf.extend_from_slice(&junk);
            let (kind, payload) = next_frame(&mut buf).unwrap();
            prop_assert_eq!(Request::decode(kind, &payload), Ok(r));
            prop_assert_eq!(buf, junk.clone());
            if let Some((&kind, payload)) = junk.split_first() {
                let _ = Request::decode(kind, payload);
                let _ = Reply::decode(kind, payload);
            }
        }
    }

    #[test]
    fn replies_round_trip() {
        let m = message(SymbolId(3), 9, 4);
        for reply in [
            Reply::Subscribed(vec![
                Listed {
                    symbol: SymbolId(0),
                    tick_units: engine::PriceUnits(1_000_000),
                    name: "BTC-USD".into(),
                },
                Listed { symbol: SymbolId(2), tick_units: engine::PriceUnits(-1), name: "AAPL".into() },
            ]),
            Reply::Message(m),
            Reply::Complete { from: 5, count: 7, sent: 2, source: Source::Journal },
            RequestError::UnknownSymbol("DOGE".into()).reply(),
        ] {
            let mut buf = Vec::new();
            reply.encode(&mut buf);
            let (kind, payload) = next_frame(&mut buf).unwrap();
            assert_eq!(Reply::decode(kind, &payload), Ok(reply));
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn malformed_requests_are_named() {
        assert_eq!(Request::decode(b'R', &[1, 2, 3]), Err(RequestError::Malformed("retransmit: truncated")));
        assert_eq!(
            Request::decode(b'S', &[2, 3, b'A']),
            Err(RequestError::Malformed("subscribe: truncated symbol name"))
        );
        assert_eq!(Request::decode(b'Q', &[0; 5]), Err(RequestError::Malformed("bytes after the request")));
        assert_eq!(Request::decode(b'?', &[]), Err(RequestError::UnknownType(b'?')));
        // A zero-length frame is taken off whole and has no kind.
        let mut buf = vec![0, 0, 9];
        assert_eq!(next_frame(&mut buf), Some((0, Vec::new())));
        assert_eq!(buf, [9]);
        assert_eq!(next_frame(&mut buf), None);
        let e = RequestError::UnknownSymbol("DOGE".into());
        assert_eq!(e.to_string(), "unknown symbol \"DOGE\"");
    }

    #[test]
    fn retransmit_ranges_are_bounded_and_never_in_the_future() {
        assert_eq!(check_retransmit(5, 10, 20), Ok(()));
        assert_eq!(check_retransmit(11, 10, 20), Ok(()));
        assert_eq!(
            check_retransmit(12, 10, 20),
            Err(RequestError::InTheFuture { from: 12, count: 10, last: 20 })
        );
        assert_eq!(
            check_retransmit(0, 1, 20),
            Err(RequestError::InTheFuture { from: 0, count: 1, last: 20 })
        );
        assert_eq!(
            check_retransmit(u64::MAX, 2, 20),
            Err(RequestError::InTheFuture { from: u64::MAX, count: 2, last: 20 })
        );
        assert_eq!(check_retransmit(1, 0, 20), Err(RequestError::RangeTooLarge { count: 0 }));
        let big = RETRANSMIT_COUNT_MAX + 1;
        assert_eq!(check_retransmit(1, big, u64::MAX), Err(RequestError::RangeTooLarge { count: big }));
    }

    fn apply(r: &mut Resequencer, m: &Message, got: &mut Vec<Message>) {
        r.on_message(m, &mut |m| got.push(*m));
    }

    #[test]
    fn a_hole_asks_for_the_channel_range_around_it_and_the_retransmission_heals_it() {
        let mut r = Resequencer::new(&[SymbolId(0)]);
        let mut got = Vec::new();
        // Symbol 0's messages are at channel seqs 10, 12, 13, 15 (symbol seqs 5..=8).
        for m in snapshot(SymbolId(0), 9, 4) {
            apply(&mut r, &m, &mut got);
        }
        apply(&mut r, &message(SymbolId(0), 10, 5), &mut got);
        apply(&mut r, &message(SymbolId(0), 15, 8), &mut got); // 12 and 13 lost
        assert_eq!(got.len(), 3);
        assert_eq!(r.take_notes()[1], Note::Gap { symbol: SymbolId(0), expected: 6, got: 8 });
        assert_eq!(r.poll_request(), Some(Request::Retransmit { from: 11, count: 4 }));
        assert_eq!(r.poll_request(), None, "one request at a time");
        apply(&mut r, &message(SymbolId(0), 12, 6), &mut got);
        apply(&mut r, &message(SymbolId(0), 13, 7), &mut got);
        r.on_complete(11, 4);
        let seqs: Vec<u64> = got.iter().skip(2).map(|m| m.header.symbol_seq).collect();
        assert_eq!(seqs, [5, 6, 7, 8]);
        assert_eq!(r.take_notes(), [Note::Healed { symbol: SymbolId(0), symbol_seq: 8 }]);
        assert_eq!((r.gaps, r.healed, r.snapshots_asked), (1, 1, 0));
    }

    #[test]
    fn a_hole_the_retransmission_cannot_fill_gets_a_snapshot() {
        let mut r = Resequencer::new(&[SymbolId(0)]);
        let mut got = Vec::new();
        for m in snapshot(SymbolId(0), 9, 4) {
            apply(&mut r, &m, &mut got);
        }
        apply(&mut r, &message(SymbolId(0), 12, 6), &mut got);
        assert_eq!(r.poll_request(), Some(Request::Retransmit { from: 10, count: 2 }));
        r.on_complete(10, 2); // nothing came
        assert_eq!(r.poll_request(), Some(Request::Snapshot(SymbolId(0))));
        for m in snapshot(SymbolId(0), 20, 9) {
            apply(&mut r, &m, &mut got);
        }
        r.on_snapshot_done(SymbolId(0));
        apply(&mut r, &message(SymbolId(0), 21, 10), &mut got);
        assert_eq!(got.last().unwrap().header.symbol_seq, 10);
        // A refused retransmission falls back to a snapshot as well.
        apply(&mut r, &message(SymbolId(0), 30, 12), &mut got);
        assert_eq!(r.poll_request(), Some(Request::Retransmit { from: 22, count: 8 }));
        r.on_refused();
        assert_eq!(r.poll_request(), Some(Request::Snapshot(SymbolId(0))));
    }

    #[test]
    fn a_heartbeat_past_our_last_message_asks_for_the_tail() {
        let mut r = Resequencer::new(&[SymbolId(0)]);
        let mut got = Vec::new();
        for m in snapshot(SymbolId(0), 9, 4) {
            apply(&mut r, &m, &mut got);
        }
        assert_eq!(r.poll_request(), None);
        let header = Header {
            epoch: 1,
            channel: Channel::Orders,
            channel_seq: 14,
            symbol_seq: 0,
            symbol: None,
            ts_ns: 0,
        };
        apply(&mut r, &Message { header, body: Body::Heartbeat }, &mut got);
        assert_eq!(r.poll_request(), Some(Request::Retransmit { from: 10, count: 5 }));
        apply(&mut r, &message(SymbolId(0), 11, 5), &mut got);
        r.on_complete(10, 5);
        assert_eq!(r.poll_request(), None, "the tail is verified");
        assert_eq!(got.last().unwrap().header.symbol_seq, 5);
    }
}
