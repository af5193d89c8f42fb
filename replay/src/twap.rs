//! A TWAP executor: buys (or sells) a target quantity in equal slices spread evenly over the
//! recorded flow's time span.

use engine::{Price, Qty, Side};

use crate::strategy::{Ctx, Fill, OrderSpec, Strategy};

/// Bound on [`TwapConfig::slices`].
pub const TWAP_SLICES_MAX: u32 = 100_000;

/// Settings of [`Twap`]. Quantities are in lots of the traded symbol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TwapConfig {
    /// Buy or sell (default buy).
    pub side: Side,
    /// Quantity to execute, in lots (default 100).
    pub target_lots: u64,
    /// Number of slices (default 10, at most [`TWAP_SLICES_MAX`]).
    pub slices: u32,
    /// Each slice is an IOC limit this many ticks through the best opposite price (default 5),
    /// which caps its slippage; what it cannot fill is added to the next slice.
    pub slippage_ticks: i64,
}

impl Default for TwapConfig {
    fn default() -> TwapConfig {
        TwapConfig { side: Side::Buy, target_lots: 100, slices: 10, slippage_ticks: 5 }
    }
}

/// The TWAP executor.
///
/// Slice `i` of `n` is due at `first_ts + span × i / n`; when due, it sends one IOC limit order
/// for what the schedule asks by then (`target × (i + 1) / n`, in whole lots) minus what has
/// filled: so slices are equal, and a slice that could not fill is caught up by the next. With
/// no opposite quote a due slice waits for the next one. One order at a time: a slice is not
/// sent while the previous one is still on its way.
#[derive(Clone, Debug)]
pub struct Twap {
    config: TwapConfig,
    /// Due times of the slices, set at start.
    due_ts: Vec<u64>,
    next_slice: usize,
    filled: Qty,
    orders: i64,
    skipped: i64,
}

impl Twap {
    /// A TWAP with these settings.
    pub fn new(config: TwapConfig) -> Twap {
        let config = TwapConfig { slices: config.slices.clamp(1, TWAP_SLICES_MAX), ..config };
        Twap { config, due_ts: Vec::new(), next_slice: 0, filled: 0, orders: 0, skipped: 0 }
    }

    /// Quantity the schedule asks to have executed once slice `i` is done, in units.
    fn scheduled(&self, i: usize, lot: Qty) -> Qty {
        let n = u128::from(self.config.slices);
        let lots = u128::from(self.config.target_lots) * (i as u128 + 1) / n;
        lots as Qty * lot
    }
}

impl Strategy for Twap {
    fn name(&self) -> &str {
        "twap"
    }

    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        let (first, last) = (ctx.session().first_ts, ctx.session().last_ts);
        let span = u128::from(last.saturating_sub(first));
        let n = u128::from(self.config.slices);
        self.due_ts = (0..n).map(|i| first + (span * i / n) as u64).collect();
    }

    fn on_fill(&mut self, fill: &Fill, _ctx: &mut Ctx<'_>) {
        self.filled += fill.qty;
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now_ns();
        let mut due = None;
        while self.next_slice < self.due_ts.len() && self.due_ts[self.next_slice] <= now {
            due = Some(self.next_slice);
            self.next_slice += 1;
        }
        let Some(slice) = due else { return };
        if ctx.orders().next().is_some() {
            // The previous slice is still on its way; this one is caught up by the next.
            self.skipped += 1;
            return;
        }
        let lot = ctx.session().symbol.lot;
        let qty = self.scheduled(slice, lot).saturating_sub(self.filled);
        if qty == 0 {
            return;
        }
        let side = self.config.side;
        let opposite = match side {
            Side::Buy => ctx.top().ask,
            Side::Sell => ctx.top().bid,
        };
        let Some(best) = opposite else {
            self.skipped += 1;
            return;
        };
        let price = match side {
            Side::Buy => best.price.0 + self.config.slippage_ticks.max(0),
            Side::Sell => (best.price.0 - self.config.slippage_ticks.max(0)).max(1),
        };
        if ctx.send(OrderSpec::limit(side, Price(price), qty).ioc()).is_ok() {
            self.orders += 1;
        }
    }

    fn stats(&self) -> Vec<(&'static str, i64)> {
        // Signed like a position: negative for a sell.
        let target = match self.config.side {
            Side::Buy => self.config.target_lots as i64,
            Side::Sell => -(self.config.target_lots as i64),
        };
        vec![
            ("target_lots", target),
            ("slices", i64::from(self.config.slices)),
            ("slice_orders", self.orders),
            ("slices_skipped", self.skipped),
            ("filled_qty", self.filled as i64),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_is_equal_slices_in_whole_lots() {
        let t = Twap::new(TwapConfig { target_lots: 10, slices: 4, ..TwapConfig::default() });
        let cum: Vec<Qty> = (0..4).map(|i| t.scheduled(i, 10)).collect();
        assert_eq!(cum, vec![20, 50, 70, 100]);
        let t = Twap::new(TwapConfig { slices: 0, ..TwapConfig::default() });
        assert_eq!(t.config.slices, 1);
    }
}
