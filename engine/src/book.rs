//! One symbol's order book: two ladders of price levels, the stop list and the last trade.

use crate::divisor::ExactDivisor;
use crate::level::Ladder;
use crate::order::NIL;
use crate::types::{Price, PriceUnits, Qty, Side, SymbolSpec};

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
    /// `spec.tick_units` and `spec.lot`, ready for exact division without a `div`.
    tick: ExactDivisor,
    lot: ExactDivisor,
}

impl Book {
    pub(crate) fn new(spec: SymbolSpec, levels_per_side_max: usize) -> Book {
        Book {
            tick: ExactDivisor::new(spec.tick_units.get() as u64),
            lot: ExactDivisor::new(spec.lot),
            spec,
            bids: Ladder::new(Side::Buy, levels_per_side_max),
            asks: Ladder::new(Side::Sell, levels_per_side_max),
            stops_head: NIL,
            stops_tail: NIL,
            last_trade: None,
            halted: false,
        }
    }

    /// [`SymbolSpec::units_to_ticks`] without a divide instruction: `None` unless `units` is a
    /// positive multiple of the tick.
    #[inline(always)]
    pub(crate) fn units_to_ticks(&self, units: PriceUnits) -> Option<Price> {
        let units = units.get();
        if units <= 0 {
            return None;
        }
        // A quotient of a positive i64 fits an i64.
        self.tick.divide(units as u64).map(|ticks| Price(ticks as i64))
    }

    /// True when `qty` is a whole number of lots (0 included).
    #[inline]
    pub(crate) fn whole_lots(&self, qty: Qty) -> bool {
        self.lot.divide(qty).is_some()
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
        // `limit_crosses(side, price, best opposite)`, as the opposite ladder's keys: a buy
        // crosses when the best ask is at or below its price, a sell when the best bid is at
        // or above.
        self.ladder(side.opposite()).best_reaches(price)
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
