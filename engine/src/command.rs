//! Commands into the engine. Plain `Copy` data: they travel through rings and the journal.

use crate::types::{AccountId, ClOrdId, OrdType, PriceUnits, Qty, Side, StpMode, SymbolId, Tif};

/// Header every command carries, stamped by the sequencer before the engine sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct CommandHeader {
    /// Command sequence number, gapless from 1, assigned by the sequencer.
    pub seq: u64,
    /// Nanoseconds; the engine's only notion of time (GTD expiry).
    pub ts: u64,
}

/// A new order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewOrder {
    /// Owner.
    pub account: AccountId,
    /// Symbol; [`crate::SYMBOL_UNKNOWN`] is rejected `unknown_symbol`.
    pub symbol: SymbolId,
    /// Client order id, unique among the account's live orders.
    pub id: ClOrdId,
    /// Side.
    pub side: Side,
    /// Market or limit.
    pub ord_type: OrdType,
    /// Time in force.
    pub tif: Tif,
    /// Limit price in price units ([`crate::PRICE_SCALE`] decimals); ignored for market.
    pub price: PriceUnits,
    /// Total quantity in units.
    pub qty: Qty,
    /// Stop trigger price in price units; `None` for a plain order.
    pub stop_price: Option<PriceUnits>,
    /// Visible slice of an iceberg; `None` shows everything.
    pub display_qty: Option<Qty>,
    /// Expiry for `Gtd`, in nanoseconds.
    pub expire_ts: Option<u64>,
    /// Rejected `would_take` if it would trade on entry.
    pub post_only: bool,
    /// Self-trade prevention when this order is the aggressor.
    pub stp: StpMode,
}

/// Cancel an order by its client id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CancelOrder {
    /// Owner; only the owner can cancel.
    pub account: AccountId,
    /// Symbol of the order.
    pub symbol: SymbolId,
    /// Client id of the live order.
    pub id: ClOrdId,
    /// The cancel request's own client id, when it has one apart from the order's (FIX's 11
    /// beside 41); journaled, so its report names it after a restart too. Not used in matching.
    pub request_id: Option<ClOrdId>,
}

/// Cancel/replace: change price and/or total quantity, giving the order a new client id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplaceOrder {
    /// Owner; only the owner can replace.
    pub account: AccountId,
    /// Symbol of the order.
    pub symbol: SymbolId,
    /// Client id of the live order.
    pub orig_id: ClOrdId,
    /// New client id (may equal `orig_id`).
    pub id: ClOrdId,
    /// New limit price in price units; `None` keeps the order's price.
    pub price: Option<PriceUnits>,
    /// New total quantity, filled part included.
    pub qty: Qty,
}

/// Everything the engine can be asked to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandKind {
    /// Enter an order.
    New(NewOrder),
    /// Cancel an order.
    Cancel(CancelOrder),
    /// Cancel/replace an order.
    Replace(ReplaceOrder),
    /// Cancel every live order of an account, on every symbol (cancel-on-disconnect, kill
    /// switch), or on one symbol.
    CancelAll {
        /// Owner.
        account: AccountId,
        /// One symbol, or `None` for all.
        symbol: Option<SymbolId>,
    },
    /// Stop trading a symbol: new orders and replaces are rejected `halted`; cancels pass.
    Halt {
        /// Symbol to halt.
        symbol: SymbolId,
    },
    /// Resume a halted symbol.
    Resume {
        /// Symbol to resume.
        symbol: SymbolId,
    },
}

/// A sequenced command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Command {
    /// Sequence number and timestamp.
    pub header: CommandHeader,
    /// What to do.
    pub kind: CommandKind,
}

impl Command {
    /// A command with an empty header (the sequencer stamps it).
    pub fn new(kind: CommandKind) -> Command {
        Command { header: CommandHeader::default(), kind }
    }
}

impl NewOrder {
    /// A GTC limit order with every optional field at its default; `price` in price units (a
    /// [`PriceUnits`], or an `i64` of units in tests; never a tick [`crate::Price`]).
    pub fn limit(
        account: AccountId,
        symbol: SymbolId,
        id: ClOrdId,
        side: Side,
        price: impl Into<PriceUnits>,
        qty: Qty,
    ) -> NewOrder {
        let price = price.into();
        NewOrder {
            account,
            symbol,
            id,
            side,
            ord_type: OrdType::Limit,
            tif: Tif::Gtc,
            price,
            qty,
            stop_price: None,
            display_qty: None,
            expire_ts: None,
            post_only: false,
            stp: StpMode::CancelNewest,
        }
    }

    /// A market order (IOC) with every optional field at its default.
    pub fn market(account: AccountId, symbol: SymbolId, id: ClOrdId, side: Side, qty: Qty) -> NewOrder {
        NewOrder {
            ord_type: OrdType::Market,
            tif: Tif::Ioc,
            price: PriceUnits::ZERO,
            ..Self::limit(account, symbol, id, side, PriceUnits::ZERO, qty)
        }
    }
}
