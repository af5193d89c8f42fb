//! The trade tape and OHLCV bars, both bounded and both keyed on the engine's event time.

use std::collections::VecDeque;

use crate::{OrderId, Price, Qty, Side};

/// One printed trade.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TradeTick {
    /// Engine event sequence of the trade.
    pub seq: u64,
    /// Event time, nanoseconds.
    pub ts: u64,
    /// Price in ticks.
    pub price: Price,
    /// Quantity.
    pub qty: Qty,
    /// Side of the incoming order.
    pub aggressor: Side,
    /// Resting order that traded.
    pub maker_order_id: OrderId,
    /// Incoming order that traded.
    pub taker_order_id: OrderId,
}

/// Bar length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BarPeriod {
    /// One second.
    OneSecond,
    /// One minute.
    OneMinute,
}

impl BarPeriod {
    /// Length in nanoseconds.
    pub fn ns(self) -> u64 {
        match self {
            BarPeriod::OneSecond => 1_000_000_000,
            BarPeriod::OneMinute => 60_000_000_000,
        }
    }
}

/// Open, high, low, close and volume of the trades in one period. Periods without a trade have
/// no bar (a reader carries the last close forward if it wants a continuous series).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bar {
    /// Start of the period, nanoseconds (a multiple of the period).
    pub start_ts: u64,
    /// First trade price.
    pub open: Price,
    /// Highest trade price.
    pub high: Price,
    /// Lowest trade price.
    pub low: Price,
    /// Last trade price.
    pub close: Price,
    /// Quantity traded.
    pub volume: Qty,
    /// Trades.
    pub trades: u64,
}

/// Bars of one period, newest last, at most `len_max` of them.
#[derive(Clone, Debug)]
pub(crate) struct Bars {
    period: BarPeriod,
    bars: VecDeque<Bar>,
    len_max: usize,
}

impl Bars {
    pub(crate) fn new(period: BarPeriod, len_max: usize) -> Bars {
        Bars { period, bars: VecDeque::with_capacity(len_max), len_max }
    }

    /// Adds a trade. Event time never goes back (the sequencer stamps it), so a trade always
    /// belongs to the newest bar or starts a new one.
    pub(crate) fn record(&mut self, ts: u64, price: Price, qty: Qty) {
        let start_ts = ts - ts % self.period.ns();
        match self.bars.back_mut() {
            Some(bar) if bar.start_ts >= start_ts => {
                bar.high = bar.high.max(price);
                bar.low = bar.low.min(price);
                bar.close = price;
                bar.volume += qty;
                bar.trades += 1;
            }
            _ => {
                if self.bars.len() == self.len_max {
                    self.bars.pop_front();
                }
                self.bars.push_back(Bar {
                    start_ts,
                    open: price,
                    high: price,
                    low: price,
                    close: price,
                    volume: qty,
                    trades: 1,
                });
            }
        }
    }

    /// Appends a finished or forming bar (a subscriber seeding its bars from the projection).
    #[cfg_attr(not(feature = "ws"), allow(dead_code))]
    pub(crate) fn push(&mut self, bar: Bar) {
        if self.bars.len() == self.len_max {
            self.bars.pop_front();
        }
        self.bars.push_back(bar);
    }

    pub(crate) fn iter(&self) -> std::collections::vec_deque::Iter<'_, Bar> {
        self.bars.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_bucket_by_period_and_stay_bounded() {
        let mut bars = Bars::new(BarPeriod::OneSecond, 2);
        bars.record(1_000_000_000, Price(10), 1);
        bars.record(1_500_000_000, Price(12), 2);
        bars.record(1_999_999_999, Price(9), 3);
        let first = *bars.iter().next().unwrap();
        assert_eq!(
            first,
            Bar {
                start_ts: 1_000_000_000,
                open: Price(10),
                high: Price(12),
                low: Price(9),
                close: Price(9),
                volume: 6,
                trades: 3
            }
        );
        bars.record(2_000_000_000, Price(11), 1);
        bars.record(5_000_000_000, Price(11), 1);
        let starts: Vec<u64> = bars.iter().map(|b| b.start_ts).collect();
        assert_eq!(starts, vec![2_000_000_000, 5_000_000_000]);
    }
}
