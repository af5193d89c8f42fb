//! Money: fees, position, realised and marked PnL, drawdown and the equity curve.
//!
//! Every amount is an integer number of price units ([`engine::PRICE_SCALE`] decimals) in an
//! `i128`: a notional is `price units × quantity`, which overflows `i64` long before any real
//! trade does. Nothing here is `f64`.

use engine::{PriceUnits, Qty, Side};

/// Basis points per 1.
const BPS_PER_ONE: i128 = 10_000;

/// Fees in basis points of the notional, by liquidity. Negative is a rebate.
///
/// Defaults: maker 1 bp, taker 5 bps (a common venue tier). A fee is rounded up to the next
/// price unit (a rebate toward zero), in the venue's favour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeeSchedule {
    /// Fee of a resting (maker) fill, in basis points.
    pub maker_bps: i64,
    /// Fee of an aggressing (taker) fill, in basis points.
    pub taker_bps: i64,
}

impl Default for FeeSchedule {
    fn default() -> FeeSchedule {
        FeeSchedule { maker_bps: 1, taker_bps: 5 }
    }
}

impl FeeSchedule {
    /// The fee on `notional_units` at `bps`, rounded toward +infinity.
    pub fn fee(notional_units: i128, bps: i64) -> i128 {
        let scaled = notional_units * i128::from(bps);
        let fee = scaled.div_euclid(BPS_PER_ONE);
        if scaled.rem_euclid(BPS_PER_ONE) != 0 {
            fee + 1
        } else {
            fee
        }
    }
}

/// Position and PnL of one symbol, by the average-cost method.
///
/// `realised + (position × mark − open_cost) − fees` is the total, and it equals the cash flow
/// plus the position marked, exactly: splitting the cost basis on a partial close moves money
/// between `realised` and `open_cost` but never loses any to rounding.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Portfolio {
    /// Units bought minus units sold.
    pub position: i64,
    /// Signed cost of the open position: paid for a long (positive), received for a short
    /// (negative).
    pub open_cost: i128,
    /// Realised PnL before fees.
    pub realised: i128,
    /// Fees paid (negative: rebates earned).
    pub fees: i128,
    /// Units bought.
    pub bought_qty: u64,
    /// Units sold.
    pub sold_qty: u64,
    /// Sum of fill notionals.
    pub notional: i128,
}

impl Portfolio {
    /// Books one fill of `qty` at `price_units` on `side`, paying `fee`.
    pub fn fill(&mut self, side: Side, price_units: PriceUnits, qty: Qty, fee: i128) {
        let price = price_units.wide();
        let qty_i = i128::from(qty);
        self.notional += price * qty_i;
        self.fees += fee;
        let (dir, closing_dir) = match side {
            Side::Buy => {
                self.bought_qty += qty;
                (1i64, self.position < 0)
            }
            Side::Sell => {
                self.sold_qty += qty;
                (-1i64, self.position > 0)
            }
        };
        let mut rest = qty_i;
        if closing_dir {
            let held = i128::from(self.position.unsigned_abs());
            let closed = rest.min(held);
            let cost_removed = self.open_cost * closed / held;
            let sign = i128::from(self.position.signum());
            self.realised += sign * price * closed - cost_removed;
            self.open_cost -= cost_removed;
            self.position += dir * closed as i64;
            rest -= closed;
        }
        if rest > 0 {
            self.open_cost += i128::from(dir) * price * rest;
            self.position += dir * rest as i64;
        }
    }

    /// PnL of the open position at `mark_units` (zero when flat).
    pub fn unrealised(&self, mark_units: Option<PriceUnits>) -> i128 {
        match mark_units {
            Some(mark) if self.position != 0 => i128::from(self.position) * mark.wide() - self.open_cost,
            _ => 0,
        }
    }

    /// Total PnL after fees, the position marked at `mark_units`.
    pub fn equity(&self, mark_units: Option<PriceUnits>) -> i128 {
        self.realised + self.unrealised(mark_units) - self.fees
    }
}

/// Largest fall of equity from a previous peak (the start, zero, counts as a peak).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drawdown {
    peak: i128,
    max: i128,
}

impl Drawdown {
    /// Takes the next equity value.
    pub fn observe(&mut self, equity: i128) {
        self.peak = self.peak.max(equity);
        self.max = self.max.max(self.peak - equity);
    }

    /// The largest drawdown so far (non-negative).
    pub fn max(&self) -> i128 {
        self.max
    }
}

/// Equity over time, thinned to a bound: every sample is offered, every `stride`-th kept; when
/// `points_max` are kept, every other one is dropped and the stride doubles. Deterministic, and
/// the last sample offered is always kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EquityCurve {
    points: Vec<(u64, i128)>,
    points_max: usize,
    stride: u64,
    offered: u64,
    last: Option<(u64, i128)>,
}

impl EquityCurve {
    /// A curve of at most `points_max` points (at least 2) plus the last sample.
    pub fn new(points_max: usize) -> EquityCurve {
        let points_max = points_max.max(2);
        EquityCurve { points: Vec::with_capacity(points_max), points_max, stride: 1, offered: 0, last: None }
    }

    /// Offers a sample (timestamp ns, equity in price units).
    pub fn offer(&mut self, ts: u64, equity: i128) {
        self.last = Some((ts, equity));
        if self.offered.is_multiple_of(self.stride) {
            if self.points.len() >= self.points_max {
                let mut i = 0;
                self.points.retain(|_| {
                    i += 1;
                    i % 2 == 1
                });
                self.stride *= 2;
            }
            if self.offered.is_multiple_of(self.stride) {
                self.points.push((ts, equity));
            }
        }
        self.offered += 1;
    }

    /// The kept points, oldest first, ending with the last sample offered.
    pub fn points(&self) -> Vec<(u64, i128)> {
        let mut points = self.points.clone();
        if let Some(last) = self.last {
            if points.last() != Some(&last) {
                points.push(last);
            }
        }
        points
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: i64 = engine::PRICE_UNITS_PER_ONE;

    #[test]
    fn fees_round_in_the_venues_favour() {
        assert_eq!(FeeSchedule::fee(10_000, 5), 5);
        assert_eq!(FeeSchedule::fee(10_001, 5), 6);
        assert_eq!(FeeSchedule::fee(10_001, -5), -5);
        assert_eq!(FeeSchedule::fee(0, 5), 0);
    }

    #[test]
    fn round_trip_realises_the_difference() {
        let mut p = Portfolio::default();
        p.fill(Side::Buy, PriceUnits(100 * ONE), 10, 0);
        p.fill(Side::Sell, PriceUnits(101 * ONE), 4, 0);
        assert_eq!(p.position, 6);
        assert_eq!(p.realised, 4 * ONE as i128);
        assert_eq!(p.unrealised(Some(PriceUnits(99 * ONE))), -6 * ONE as i128);
        // Through zero: closes 6 long, opens 4 short at 102.
        p.fill(Side::Sell, PriceUnits(102 * ONE), 10, 0);
        assert_eq!(p.position, -4);
        assert_eq!(p.realised, (4 + 12) * ONE as i128);
        assert_eq!(p.open_cost, -408 * ONE as i128);
        p.fill(Side::Buy, PriceUnits(100 * ONE), 4, 3);
        assert_eq!((p.position, p.open_cost), (0, 0));
        assert_eq!(p.equity(Some(PriceUnits(1))), 24 * ONE as i128 - 3);
    }

    #[test]
    fn total_equals_cash_plus_marked_position_despite_uneven_splits() {
        let mut p = Portfolio::default();
        let mut cash: i128 = 0;
        let fills = [
            (Side::Buy, 7, 3),
            (Side::Buy, 11, 2),
            (Side::Sell, 13, 1),
            (Side::Sell, 5, 7),
            (Side::Buy, 3, 1),
        ];
        for (side, price, qty) in fills {
            p.fill(side, PriceUnits(price), qty, 1);
            let n = i128::from(price) * i128::from(qty);
            cash += if side == Side::Buy { -n } else { n } - 1;
        }
        let mark = 9;
        assert_eq!(p.equity(Some(PriceUnits(mark))), cash + i128::from(p.position) * i128::from(mark));
    }

    #[test]
    fn drawdown_is_from_the_running_peak() {
        let mut d = Drawdown::default();
        for e in [0, 5, 2, 8, 1, 7] {
            d.observe(e);
        }
        assert_eq!(d.max(), 7);
        let mut d = Drawdown::default();
        d.observe(-3);
        assert_eq!(d.max(), 3);
    }

    #[test]
    fn the_curve_stays_bounded_and_keeps_the_last_point() {
        let mut c = EquityCurve::new(8);
        for i in 0..1000u64 {
            c.offer(i, i128::from(i));
        }
        let points = c.points();
        assert!(points.len() <= 9, "{}", points.len());
        assert_eq!(points.first(), Some(&(0, 0)));
        assert_eq!(points.last(), Some(&(999, 999)));
        assert!(points.windows(2).all(|w| w[0].0 < w[1].0));
    }
}
