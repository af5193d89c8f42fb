//! The one publication model every feed carries: a header with the epoch and two sequences, and
//! a body. See `docs/marketdata.md` for the rules a subscriber relies on.

use crate::book::{BookOrder, Level};
use crate::{OrderId, Price, Qty, Side, SymbolId};

/// A feed's content. Each channel has its own channel sequence and per-symbol sequences.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    /// Order by order (L3): add, execute, reduce, delete, replace, trades, status.
    Orders,
    /// Aggregated levels (L2): level updates, trades, status.
    Levels,
}

impl Channel {
    /// Both channels, in index order.
    pub const ALL: [Channel; 2] = [Channel::Orders, Channel::Levels];

    /// Dense index (0, 1).
    pub fn index(self) -> usize {
        match self {
            Channel::Orders => 0,
            Channel::Levels => 1,
        }
    }
}

/// What every message carries before its body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Changes when the publisher restarts without the history to continue its sequences; a
    /// subscriber that sees a new epoch drops its book and takes a snapshot.
    pub epoch: u64,
    /// The channel.
    pub channel: Channel,
    /// Gapless from 1 per channel over every sequenced message. On a snapshot message: the last
    /// channel sequence the snapshot includes. On a heartbeat: the last one sent.
    pub channel_seq: u64,
    /// Gapless from 1 per channel and symbol (CME's RptSeq). On a snapshot message: the last
    /// symbol sequence the snapshot includes. 0 on a heartbeat.
    pub symbol_seq: u64,
    /// The symbol; `None` on a heartbeat.
    pub symbol: Option<SymbolId>,
    /// Event time, nanoseconds (the engine's command timestamp).
    pub ts_ns: u64,
}

/// A message body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    /// An order joined the back of its level (orders channel).
    AddOrder(BookOrder),
    /// A resting order traded `qty` of its displayed quantity; at 0 it left (orders channel).
    Execute {
        /// Maker order.
        order_id: OrderId,
        /// Traded quantity.
        qty: Qty,
    },
    /// A resting order shows `qty` less, keeping its place; at 0 it left (orders channel).
    Reduce {
        /// Order.
        order_id: OrderId,
        /// Quantity taken off.
        qty: Qty,
    },
    /// A resting order left the book (orders channel).
    Delete {
        /// Order.
        order_id: OrderId,
    },
    /// A resting order lost its place and now rests at the back of the given level with the given
    /// displayed quantity (orders channel).
    Replace(BookOrder),
    /// A level's new total (qty 0: the level is gone) (levels channel).
    Level(Level),
    /// A trade (both channels).
    Trade {
        /// Price in ticks.
        price: Price,
        /// Quantity.
        qty: Qty,
        /// Side of the incoming order.
        aggressor: Side,
        /// Resting order.
        maker_order_id: OrderId,
        /// Incoming order.
        taker_order_id: OrderId,
    },
    /// The symbol was halted or resumed (both channels).
    TradingStatus {
        /// True when halted.
        halted: bool,
    },
    /// CRC32 of the top `depth` levels of each side after everything up to this message.
    Checksum {
        /// Levels per side covered.
        depth: u16,
        /// The checksum (input defined in `docs/marketdata.md`).
        crc32: u32,
    },
    /// Nothing happened; carries the last channel sequence so a lost tail is seen.
    Heartbeat,
    /// A snapshot of one symbol follows: `items` orders or levels, then [`Body::SnapshotEnd`].
    SnapshotBegin {
        /// Orders (orders channel) or levels (levels channel) that follow.
        items: u32,
        /// Trading status at the snapshot.
        halted: bool,
    },
    /// One resting order of a snapshot, in priority order.
    SnapshotOrder(BookOrder),
    /// One level of a snapshot, best first per side.
    SnapshotLevel(Level),
    /// The snapshot is complete; `items` repeats the count so a truncated one is detected.
    SnapshotEnd {
        /// Items sent.
        items: u32,
    },
}

impl Body {
    /// True for the messages that take a sequence number (not heartbeats nor snapshot parts).
    pub fn is_sequenced(&self) -> bool {
        !matches!(
            self,
            Body::Heartbeat
                | Body::SnapshotBegin { .. }
                | Body::SnapshotOrder(_)
                | Body::SnapshotLevel(_)
                | Body::SnapshotEnd { .. }
        )
    }
}

/// One message of a feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message {
    /// Sequencing and addressing.
    pub header: Header,
    /// Content.
    pub body: Body,
}

/// Where a feed writes messages. Generic, not `dyn`: one static call per message.
pub trait Sink {
    /// Takes one message.
    fn message(&mut self, message: &Message);
}

impl Sink for Vec<Message> {
    fn message(&mut self, message: &Message) {
        self.push(*message);
    }
}
