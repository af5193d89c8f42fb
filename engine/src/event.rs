//! Events out of the engine, in engine sequence order.

use crate::types::{AccountId, ClOrdId, OrderId, Price, Qty, Side, SymbolId, Tif};

/// Why an order left the book without trading out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CancelReason {
    /// The owner canceled it.
    User,
    /// The unfilled rest of an IOC or market order.
    Ioc,
    /// A fill-or-kill that could not fill completely at entry.
    Fok,
    /// Self-trade prevention.
    SelfTrade,
    /// A triggered stop-limit could not rest: its side's ladder or the level pool is full.
    BookFull,
    /// A `CancelAll` (cancel-on-disconnect, kill switch, admin).
    MassCancel,
}

impl CancelReason {
    /// Name used in event files.
    pub fn as_str(self) -> &'static str {
        match self {
            CancelReason::User => "user",
            CancelReason::Ioc => "ioc",
            CancelReason::Fok => "fok",
            CancelReason::SelfTrade => "self_trade",
            CancelReason::BookFull => "book_full",
            CancelReason::MassCancel => "mass_cancel",
        }
    }
}

/// Why a command was refused. Engine rejects change nothing in the book.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// The symbol is not listed.
    UnknownSymbol,
    /// Price (or stop price) not a positive multiple of the tick.
    BadPriceTick,
    /// Quantity zero, not a multiple of the lot, or a display quantity out of range.
    BadQty,
    /// The client id is already used by a live order of the account.
    DuplicateId,
    /// No live order of the account has that client id on that symbol.
    UnknownOrder,
    /// A post-only order would trade on entry.
    WouldTake,
    /// The symbol is halted.
    Halted,
    /// A combination the engine does not accept (e.g. GTD without `expire_ts`, post-only market).
    BadOrder,
    /// A pre-sized pool (orders, levels, stops, expiries) is full.
    BookFull,
}

impl RejectReason {
    /// Name used in event files and FIX text.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::UnknownSymbol => "unknown_symbol",
            RejectReason::BadPriceTick => "bad_price_tick",
            RejectReason::BadQty => "bad_qty",
            RejectReason::DuplicateId => "duplicate_id",
            RejectReason::UnknownOrder => "unknown_order",
            RejectReason::WouldTake => "would_take",
            RejectReason::Halted => "halted",
            RejectReason::BadOrder => "bad_order",
            RejectReason::BookFull => "book_full",
        }
    }
}

/// One thing that happened. Events are `Copy` so they travel through rings without allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// An order was accepted (it may trade, rest, or wait as a stop).
    Accepted {
        /// Owner.
        account: AccountId,
        /// Client id.
        id: ClOrdId,
        /// Symbol.
        symbol: SymbolId,
        /// Engine order id.
        order_id: OrderId,
        /// Side.
        side: Side,
        /// Limit price in ticks (0 for market).
        price: Price,
        /// Total quantity.
        qty: Qty,
        /// Time in force the order works under: a market order's is IOC unless FOK. With
        /// `stop_price` and `display_qty` this says where the order goes after matching, so a
        /// book can be rebuilt from events alone (only a GTC/GTD limit order rests).
        tif: Tif,
        /// Stop trigger in ticks: the order waits, off the book, until `Triggered`.
        stop_price: Option<Price>,
        /// Iceberg slice: the book shows at most this much of the open quantity.
        display_qty: Option<Qty>,
    },
    /// A trade between a resting maker and an incoming taker, at the maker's price.
    Trade {
        /// Symbol.
        symbol: SymbolId,
        /// Price in ticks.
        price: Price,
        /// Quantity.
        qty: Qty,
        /// Maker owner.
        maker_account: AccountId,
        /// Maker client id.
        maker_id: ClOrdId,
        /// Maker engine id.
        maker_order_id: OrderId,
        /// Maker's quantity left after this trade (hidden part included).
        maker_leaves_qty: Qty,
        /// Taker owner.
        taker_account: AccountId,
        /// Taker client id.
        taker_id: ClOrdId,
        /// Taker engine id.
        taker_order_id: OrderId,
        /// Taker's quantity left after this trade.
        taker_leaves_qty: Qty,
        /// Side of the taker.
        aggressor: Side,
    },
    /// An order left without trading out.
    Canceled {
        /// Owner.
        account: AccountId,
        /// Client id.
        id: ClOrdId,
        /// Symbol.
        symbol: SymbolId,
        /// Engine id.
        order_id: OrderId,
        /// Why.
        reason: CancelReason,
        /// Quantity that was still open.
        leaves_qty: Qty,
    },
    /// A command was refused.
    Rejected {
        /// Account of the command.
        account: AccountId,
        /// The command's client id (the new id of a replace).
        id: ClOrdId,
        /// Symbol of the command (may be unknown).
        symbol: SymbolId,
        /// Why.
        reason: RejectReason,
    },
    /// A replace took effect.
    Replaced {
        /// Owner.
        account: AccountId,
        /// The client id it had.
        orig_id: ClOrdId,
        /// The client id it has now.
        id: ClOrdId,
        /// Symbol.
        symbol: SymbolId,
        /// Engine id (unchanged by a replace).
        order_id: OrderId,
        /// Limit price now, in ticks.
        price: Price,
        /// New total quantity.
        qty: Qty,
        /// Open quantity now.
        leaves_qty: Qty,
    },
    /// A GTD order reached its expiry.
    Expired {
        /// Owner.
        account: AccountId,
        /// Client id.
        id: ClOrdId,
        /// Symbol.
        symbol: SymbolId,
        /// Engine id.
        order_id: OrderId,
        /// Quantity that was still open.
        leaves_qty: Qty,
    },
    /// A stop order's condition held: it now enters matching as a market or limit order.
    Triggered {
        /// Owner.
        account: AccountId,
        /// Client id.
        id: ClOrdId,
        /// Symbol.
        symbol: SymbolId,
        /// Engine id.
        order_id: OrderId,
    },
    /// A symbol was halted or resumed.
    TradingStatus {
        /// Symbol.
        symbol: SymbolId,
        /// True when halted.
        halted: bool,
    },
}

/// A sequenced event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// Event sequence number, gapless from 1, assigned by the engine.
    pub seq: u64,
    /// Sequence number of the command that caused it.
    pub command_seq: u64,
    /// Timestamp of that command.
    pub ts: u64,
    /// What happened.
    pub kind: EventKind,
}

/// Where the engine writes events. Generic, not `dyn`: one static call per event.
pub trait EventSink {
    /// Takes one event.
    fn event(&mut self, event: &Event);
}

impl EventSink for Vec<Event> {
    fn event(&mut self, event: &Event) {
        self.push(*event);
    }
}

/// A sink that counts events and drops them (benchmarks).
#[derive(Default, Debug)]
pub struct CountingSink {
    /// Events seen.
    pub events: u64,
    /// Trades seen.
    pub trades: u64,
}

impl EventSink for CountingSink {
    #[inline]
    fn event(&mut self, event: &Event) {
        self.events += 1;
        if matches!(event.kind, EventKind::Trade { .. }) {
            self.trades += 1;
        }
    }
}
