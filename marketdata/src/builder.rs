//! The subscriber's side: rebuild one symbol's book from a snapshot and the incrementals after
//! it, and say so the moment the stream cannot be trusted (a gap, a new epoch, a checksum that
//! disagrees, a truncated snapshot). After any of those the builder waits for a new snapshot;
//! it never goes on with a book it cannot prove.

use std::collections::VecDeque;

use crate::book::{BookError, Level, LevelBook, OrderBook};
use crate::message::{Body, Channel, Message};
use crate::{Side, SymbolId};

/// Incrementals a builder keeps while it waits for its snapshot. The feed can run ahead of the
/// snapshot by this much; beyond it the builder reports [`BuildError::PendingFull`].
pub const PENDING_MAX: usize = 65_536;

/// Why a builder dropped its book; take a new snapshot (the builder is waiting for one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// A symbol sequence was skipped: messages `expected..got` were lost.
    #[error("gap: expected symbol seq {expected}, got {got}")]
    Gap {
        /// The sequence that should have come.
        expected: u64,
        /// The one that came.
        got: u64,
    },
    /// The publisher restarted without its history.
    #[error("epoch changed from {was} to {now}")]
    EpochChanged {
        /// The epoch of the book.
        was: u64,
        /// The new one.
        now: u64,
    },
    /// The book's checksum is not the publisher's.
    #[error("checksum of top {depth} levels is {computed:#010x}, feed says {expected:#010x}")]
    ChecksumMismatch {
        /// Levels per side.
        depth: u16,
        /// The feed's.
        expected: u32,
        /// Ours.
        computed: u32,
    },
    /// A snapshot ended with a different count than it announced.
    #[error("snapshot announced {announced} items, {received} arrived")]
    SnapshotTruncated {
        /// Announced in the begin message.
        announced: u32,
        /// Received before the end.
        received: u32,
    },
    /// An update does not fit the book (the stream and the book disagree).
    #[error("update does not fit the book: {0}")]
    Book(#[from] BookError),
    /// A message of the other channel's kind arrived (a wiring mistake).
    #[error("message {0} does not belong to this channel")]
    WrongChannel(&'static str),
    /// Too many incrementals arrived before the snapshot; they were dropped.
    #[error("more than {max} updates arrived before the snapshot", max = PENDING_MAX)]
    PendingFull,
}

/// Follows one channel's `channel_seq` for a subscriber of the whole channel (every symbol), as
/// the binary feed is: any lost message, the tail included (heartbeats carry the last sequence),
/// is reported. A subscriber of one symbol sees only that symbol's messages and relies on
/// [`BookBuilder`]'s per-symbol sequence instead.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChannelTracker {
    epoch: Option<u64>,
    last: Option<u64>,
}

/// A break in a channel's sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChannelGap {
    /// Messages `expected..=last_missing` were lost.
    #[error("channel gap: expected seq {expected}, next known is {next}")]
    Lost {
        /// First missing sequence.
        expected: u64,
        /// Sequence of the message that revealed it (a heartbeat's: the last sent).
        next: u64,
    },
    /// The publisher's epoch changed: every book of the channel must be rebuilt.
    #[error("epoch changed from {was} to {now}")]
    EpochChanged {
        /// Before.
        was: u64,
        /// Now.
        now: u64,
    },
}

impl ChannelTracker {
    /// A tracker that accepts any first sequence (joining a running feed).
    pub fn new() -> ChannelTracker {
        ChannelTracker::default()
    }

    /// Last channel sequence seen.
    pub fn last(&self) -> Option<u64> {
        self.last
    }

    /// Checks one message of the channel (snapshot parts are not part of the sequence).
    pub fn check(&mut self, message: &Message) -> Result<(), ChannelGap> {
        let h = &message.header;
        if let Some(was) = self.epoch.filter(|&was| was != h.epoch) {
            self.epoch = Some(h.epoch);
            self.last = None;
            return Err(ChannelGap::EpochChanged { was, now: h.epoch });
        }
        self.epoch = Some(h.epoch);
        let seq = h.channel_seq;
        match message.body {
            Body::Heartbeat => match self.last {
                Some(last) if seq > last => {
                    self.last = Some(seq);
                    Err(ChannelGap::Lost { expected: last + 1, next: seq })
                }
                _ => Ok(()),
            },
            body if body.is_sequenced() => {
                let expected = self.last.map_or(seq, |last| last + 1);
                if seq < expected {
                    return Ok(()); // a duplicate
                }
                self.last = Some(seq);
                if seq == expected {
                    Ok(())
                } else {
                    Err(ChannelGap::Lost { expected, next: seq })
                }
            }
            _ => Ok(()),
        }
    }
}

/// What applying a message did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Not for this builder (other symbol or channel, heartbeat), or already included.
    Ignored,
    /// Kept until the snapshot arrives.
    Buffered,
    /// Part of a snapshot being received.
    Snapshot,
    /// Applied to the live book (a snapshot just completed also reports this).
    Applied,
}

#[derive(Clone, Debug)]
enum Book {
    Orders(OrderBook),
    Levels(LevelBook),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// No book: waiting for a snapshot, buffering incrementals.
    Waiting,
    /// Receiving a snapshot.
    Receiving { announced: u32, received: u32, symbol_seq: u64 },
    /// The book is current up to `symbol_seq`.
    Live { symbol_seq: u64 },
}

/// One symbol's book on one channel, rebuilt from a feed; see the module docs.
#[derive(Clone, Debug)]
pub struct BookBuilder {
    channel: Channel,
    symbol: SymbolId,
    book: Book,
    state: State,
    epoch: Option<u64>,
    halted: bool,
    pending: VecDeque<Message>,
    checksums_verified: u64,
}

impl BookBuilder {
    /// A builder for `symbol` on `channel`, waiting for a snapshot.
    pub fn new(channel: Channel, symbol: SymbolId) -> BookBuilder {
        let book = match channel {
            Channel::Orders => Book::Orders(OrderBook::new()),
            Channel::Levels => Book::Levels(LevelBook::new()),
        };
        BookBuilder {
            channel,
            symbol,
            book,
            state: State::Waiting,
            epoch: None,
            halted: false,
            pending: VecDeque::new(),
            checksums_verified: 0,
        }
    }

    /// True once a snapshot and every incremental since have been applied.
    pub fn is_live(&self) -> bool {
        matches!(self.state, State::Live { .. })
    }

    /// Last symbol sequence the book includes, while live.
    pub fn symbol_seq(&self) -> Option<u64> {
        match self.state {
            State::Live { symbol_seq } => Some(symbol_seq),
            _ => None,
        }
    }

    /// Trading status as last reported.
    pub fn halted(&self) -> bool {
        self.halted
    }

    /// Checksums that matched so far.
    pub fn checksums_verified(&self) -> u64 {
        self.checksums_verified
    }

    /// The order book (orders channel only).
    pub fn order_book(&self) -> Option<&OrderBook> {
        match &self.book {
            Book::Orders(book) => Some(book),
            Book::Levels(_) => None,
        }
    }

    /// Levels of a side, best first (either channel).
    pub fn levels(&self, side: Side) -> impl Iterator<Item = Level> + '_ {
        let (orders, levels) = match &self.book {
            Book::Orders(book) => (Some(book.levels(side)), None),
            Book::Levels(book) => (None, Some(book.levels(side))),
        };
        orders.into_iter().flatten().chain(levels.into_iter().flatten())
    }

    fn checksum(&self, depth: u16) -> u32 {
        match &self.book {
            Book::Orders(book) => book.checksum(usize::from(depth)),
            Book::Levels(book) => book.checksum(usize::from(depth)),
        }
    }

    fn reset(&mut self) {
        self.state = State::Waiting;
        match &mut self.book {
            Book::Orders(book) => book.clear(),
            Book::Levels(book) => book.clear(),
        }
    }

    /// Applies one message of the feed. On an error the book is dropped and the builder waits
    /// for a new snapshot (the message that revealed a gap is kept for after it).
    pub fn apply(&mut self, message: &Message) -> Result<Progress, BuildError> {
        let h = &message.header;
        if h.channel != self.channel || h.symbol != Some(self.symbol) {
            return Ok(Progress::Ignored);
        }
        if let Some(was) = self.epoch.filter(|&was| was != h.epoch) {
            self.epoch = Some(h.epoch);
            self.pending.clear();
            let had_book = self.state != State::Waiting;
            self.reset();
            // A snapshot of the new epoch is the cure itself; anything else reports the change.
            if had_book && !matches!(message.body, Body::SnapshotBegin { .. }) {
                if message.body.is_sequenced() {
                    self.buffer(message)?;
                }
                return Err(BuildError::EpochChanged { was, now: h.epoch });
            }
        }
        self.epoch = Some(h.epoch);
        match (self.state, message.body) {
            (_, Body::Heartbeat) => Ok(Progress::Ignored),
            // A new snapshot supersedes one being received (a conflated subscriber gets a fresh
            // one): the partial one is dropped, never used, so it cannot leave stale entries.
            (_, Body::SnapshotBegin { .. }) => {
                self.reset();
                self.begin(message);
                Ok(Progress::Snapshot)
            }
            (State::Receiving { announced, received, symbol_seq }, Body::SnapshotOrder(order)) => {
                match &mut self.book {
                    Book::Orders(book) => {
                        book.add(order).inspect_err(|_| self.reset())?;
                        self.state = State::Receiving { announced, received: received + 1, symbol_seq };
                        Ok(Progress::Snapshot)
                    }
                    Book::Levels(_) => Err(BuildError::WrongChannel("snapshot order")),
                }
            }
            (State::Receiving { announced, received, symbol_seq }, Body::SnapshotLevel(level)) => {
                match &mut self.book {
                    Book::Levels(book) => {
                        book.set(level);
                        self.state = State::Receiving { announced, received: received + 1, symbol_seq };
                        Ok(Progress::Snapshot)
                    }
                    Book::Orders(_) => Err(BuildError::WrongChannel("snapshot level")),
                }
            }
            (State::Receiving { announced, received, symbol_seq }, Body::SnapshotEnd { items }) => {
                if items != announced || received != announced {
                    self.reset();
                    return Err(BuildError::SnapshotTruncated { announced, received });
                }
                self.state = State::Live { symbol_seq };
                self.replay_pending()?;
                Ok(Progress::Applied)
            }
            // Snapshot parts outside a snapshot: its begin was lost.
            (_, Body::SnapshotOrder(_) | Body::SnapshotLevel(_) | Body::SnapshotEnd { .. }) => {
                Ok(Progress::Ignored)
            }
            (State::Waiting | State::Receiving { .. }, _) => {
                self.buffer(message)?;
                Ok(Progress::Buffered)
            }
            (State::Live { .. }, _) => self.apply_incremental(message),
        }
    }

    fn begin(&mut self, message: &Message) {
        if let Body::SnapshotBegin { items, halted } = message.body {
            self.halted = halted;
            self.state =
                State::Receiving { announced: items, received: 0, symbol_seq: message.header.symbol_seq };
        }
    }

    fn buffer(&mut self, message: &Message) -> Result<(), BuildError> {
        if self.pending.len() == PENDING_MAX {
            self.pending.clear();
            return Err(BuildError::PendingFull);
        }
        self.pending.push_back(*message);
        Ok(())
    }

    fn replay_pending(&mut self) -> Result<(), BuildError> {
        while let Some(message) = self.pending.pop_front() {
            self.apply_incremental(&message)?;
        }
        Ok(())
    }

    fn apply_incremental(&mut self, message: &Message) -> Result<Progress, BuildError> {
        let State::Live { symbol_seq } = self.state else { return Ok(Progress::Ignored) };
        let got = message.header.symbol_seq;
        if got <= symbol_seq {
            return Ok(Progress::Ignored); // included in the snapshot, or a duplicate
        }
        if got != symbol_seq + 1 {
            self.reset();
            self.pending.clear();
            self.buffer(message)?;
            return Err(BuildError::Gap { expected: symbol_seq + 1, got });
        }
        let result = self.apply_body(&message.body);
        match result {
            Ok(()) => {
                self.state = State::Live { symbol_seq: got };
                Ok(Progress::Applied)
            }
            Err(e) => {
                self.reset();
                Err(e)
            }
        }
    }

    fn apply_body(&mut self, body: &Body) -> Result<(), BuildError> {
        match (&mut self.book, *body) {
            (_, Body::Trade { .. }) => {}
            (_, Body::TradingStatus { halted }) => self.halted = halted,
            (_, Body::Checksum { depth, crc32 }) => {
                let computed = self.checksum(depth);
                if computed != crc32 {
                    return Err(BuildError::ChecksumMismatch { depth, expected: crc32, computed });
                }
                self.checksums_verified += 1;
            }
            (Book::Orders(book), Body::AddOrder(order)) => {
                book.add(order)?;
            }
            (Book::Orders(book), Body::Execute { order_id, qty } | Body::Reduce { order_id, qty }) => {
                book.reduce(order_id, qty)?;
            }
            (Book::Orders(book), Body::Delete { order_id }) => {
                book.remove(order_id)?;
            }
            (Book::Orders(book), Body::Replace(order)) => {
                book.remove(order.order_id)?;
                book.add(order)?;
            }
            (Book::Levels(book), Body::Level(level)) => book.set(level),
            (Book::Orders(_), Body::Level(_)) => return Err(BuildError::WrongChannel("level")),
            (Book::Levels(_), _) => return Err(BuildError::WrongChannel("order update")),
            (Book::Orders(_), _) => return Err(BuildError::WrongChannel("snapshot part")),
        }
        Ok(())
    }
}
