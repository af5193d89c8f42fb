//! One symbol's order book: two ladders of price levels, the stop list and the last trade.

use crate::level::Ladder;
use crate::order::NIL;
use crate::types::{Price, Side, SymbolSpec};

/// State of one symbol. The level queues and the stop list are linked through the order pool.
pub(crate) struct Book {
    pub(crate) spec: SymbolSpec,
    pub(crate) bids: Ladder,
    pub(crate) asks: Ladder,
    /// Untriggered stops in acceptance order (head = oldest), linked by `Order::prev/next`.
    pub(crate) stops_head: u32,
    pub(crate) stops_tail: u32,
    /// Price of the last trade; stops compare against it.
    pub(crate) last_trade: Option<Price>,
    pub(crate) halted: bool,
}

impl Book {
    pub(crate) fn new(spec: SymbolSpec, levels_per_side_max: usize) -> Book {
        Book {
            spec,
            bids: Ladder::new(Side::Buy, levels_per_side_max),
            asks: Ladder::new(Side::Sell, levels_per_side_max),
            stops_head: NIL,
            stops_tail: NIL,
            last_trade: None,
            halted: false,
        }
    }

    /// The ladder where orders of `side` rest.
    #[inline]
    pub(crate) fn ladder(&self, side: Side) -> &Ladder {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }

    #[inline]
    pub(crate) fn ladder_mut(&mut self, side: Side) -> &mut Ladder {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    /// True when a limit order of `side` at `price` would trade against the best opposite level.
    #[inline]
    pub(crate) fn crosses(&self, side: Side, price: Price) -> bool {
        match self.ladder(side.opposite()).best() {
            None => false,
            Some((best, _)) => limit_crosses(side, price, best),
        }
    }
}

/// True when an order of `side` limited at `limit` trades against a resting price `resting`.
#[inline]
pub(crate) fn limit_crosses(side: Side, limit: Price, resting: Price) -> bool {
    match side {
        Side::Buy => resting <= limit,
        Side::Sell => resting >= limit,
    }
}

/// True when a stop of `side` at `stop` triggers after a trade at `last`.
#[inline]
pub(crate) fn stop_triggers(side: Side, stop: Price, last: Price) -> bool {
    match side {
        Side::Buy => last >= stop,
        Side::Sell => last <= stop,
    }
}
