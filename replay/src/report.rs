//! The backtest report: what the strategy did and earned, as JSON.
//!
//! Money is printed as decimal strings (exact: integer price units through
//! `engine::price_text`), counts as integers; maps are sorted by key, so the same run always prints
//! the same bytes.

use std::collections::BTreeMap;

use serde::Serialize;

/// An amount in price units as a decimal string with at least `decimals` places
/// ("12.50", "-0.00050250").
pub fn format_money(units: i128, decimals: u32) -> String {
    engine::price_text::PriceText::trimmed(units, decimals).to_string()
}

/// The whole report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Strategy name.
    pub strategy: String,
    /// Traded symbol.
    pub symbol: String,
    /// The strategy's account name.
    pub account: String,
    /// Seed of the latency jitter.
    pub seed: u64,
    /// Simulated latency, nanoseconds.
    pub latency_ns: u64,
    /// Largest extra latency drawn per command, nanoseconds.
    pub jitter_ns: u64,
    /// Fee schedule applied.
    pub fees_bps: FeesReport,
    /// The flow the strategy ran against.
    pub flow: FlowReport,
    /// The strategy's commands and what became of them.
    pub orders: OrdersReport,
    /// The strategy's fills.
    pub fills: FillsReport,
    /// Position at the end, in units (negative: short).
    pub inventory: i64,
    /// Profit and loss at the end.
    pub pnl: PnlReport,
    /// Largest fall of total PnL from a previous peak.
    pub max_drawdown: String,
    /// Points in the equity curve plot.
    pub equity_points: usize,
    /// The strategy's own figures.
    pub strategy_stats: BTreeMap<String, i64>,
}

/// Fees in basis points.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct FeesReport {
    /// Maker fee.
    pub maker: i64,
    /// Taker fee.
    pub taker: i64,
}

/// The flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct FlowReport {
    /// Recorded commands replayed.
    pub recorded_commands: u64,
    /// Commands of the strategy injected among them.
    pub own_commands: u64,
    /// First recorded timestamp, nanoseconds.
    pub first_ts: u64,
    /// Last recorded timestamp, nanoseconds.
    pub last_ts: u64,
}

/// The strategy's commands.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OrdersReport {
    /// New orders that reached the engine.
    pub new: u64,
    /// Cancels that reached the engine.
    pub cancels: u64,
    /// Replaces that reached the engine.
    pub replaces: u64,
    /// New orders accepted.
    pub accepted: u64,
    /// Commands the engine rejected.
    pub rejects: u64,
    /// Rejects by reason.
    pub rejects_by_reason: BTreeMap<String, u64>,
    /// Orders that left without trading out, by reason (`user`, `ioc`, ...).
    pub canceled_by_reason: BTreeMap<String, u64>,
    /// Sends the simulated gateway refused (bounds, flow over); the engine never saw them.
    pub refused: u64,
    /// Orders still live at the end.
    pub open_at_end: u64,
}

/// One fill.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FillRecord {
    /// Event seq of the trade in the backtest's own numbering.
    pub seq: u64,
    /// Flow time, nanoseconds.
    pub ts: u64,
    /// Client id of the order.
    pub id: String,
    /// `buy` or `sell`.
    pub side: &'static str,
    /// Trade price.
    pub price: String,
    /// Quantity.
    pub qty: u64,
    /// `maker` or `taker`.
    pub liquidity: &'static str,
    /// Fee charged.
    pub fee: String,
}

/// The fills.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FillsReport {
    /// Number of fills.
    pub count: u64,
    /// Fills as maker.
    pub maker: u64,
    /// Fills as taker.
    pub taker: u64,
    /// Units bought.
    pub bought_qty: u64,
    /// Units sold.
    pub sold_qty: u64,
    /// Sum of fill notionals.
    pub notional: String,
    /// The first fills, at most `listed_max`.
    pub listed: Vec<FillRecord>,
    /// Bound on `listed`.
    pub listed_max: usize,
}

/// Profit and loss.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PnlReport {
    /// Mark price: the symbol's last trade (none before the first trade).
    pub mark: Option<String>,
    /// Realised by the average-cost method, before fees.
    pub realised: String,
    /// The open position at the mark.
    pub unrealised: String,
    /// Fees paid (negative: rebates).
    pub fees: String,
    /// `realised + unrealised - fees`.
    pub total: String,
}

impl Report {
    /// The report as pretty-printed JSON with a final newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("a report always serializes");
        text.push('\n');
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_prints_exactly_with_at_least_the_price_decimals() {
        let one = i128::from(engine::PRICE_UNITS_PER_ONE);
        assert_eq!(format_money(125 * one / 10, 2), "12.50");
        assert_eq!(format_money(0, 2), "0.00");
        assert_eq!(format_money(-50_250, 2), "-0.0005025");
        assert_eq!(format_money(7 * one, 0), "7");
        // Beyond rust_decimal's 96 bits, still exact.
        assert_eq!(format_money(i128::MAX, 2), "1701411834604692317316873037158.84105727");
    }
}
