//! Journal tools beyond replay: backtesting a [`Strategy`] against recorded flow.
//!
//! A backtest reads a recorded command [`Flow`] (the `exchange` binary reads a data directory's
//! command journal; this crate does no file I/O) and runs it through a fresh
//! [`engine::Engine`], the same code as every live and replayed run, with the strategy's own
//! commands injected at their sequence point plus a simulated latency (see [`backtest`] for
//! the exact timing rule). The strategy trades one symbol under an account of its own and gets
//! book tops, trades, its order updates and its fills; the result is a [`Report`] (JSON) and an
//! equity curve (SVG). Money is integer price units throughout; the same journal, options and
//! seed give byte-identical output.
#![warn(missing_docs, unreachable_pub)]
#![forbid(unsafe_code)]

pub mod backtest;
mod error;
pub mod flow;
mod market_maker;
pub mod plot;
pub mod portfolio;
pub mod report;
mod strategy;
mod twap;

pub use backtest::{
    pick_account, pick_symbol, run_flow, Backtest, BacktestConfig, BacktestOptions, BacktestOutcome,
    ACCOUNT_DEFAULT, CURVE_POINTS_MAX_DEFAULT, FILLS_LISTED_MAX_DEFAULT, IN_FLIGHT_MAX_DEFAULT,
    LIVE_ORDERS_MAX_DEFAULT,
};
pub use error::BacktestError;
pub use flow::{Flow, FlowInfo};
pub use market_maker::{MarketMaker, MarketMakerConfig};
pub use portfolio::FeeSchedule;
pub use report::Report;
pub use strategy::{
    Ctx, Fill, Liquidity, OrderRef, OrderSpec, OrderUpdate, OwnCommand, OwnOrder, Quote, SendError, Session,
    Strategy, TopOfBook, TradePrint, CLIENT_ID_PREFIX,
};
pub use twap::{Twap, TwapConfig, TWAP_SLICES_MAX};

/// Names of the built-in strategies, as `--strategy` takes them.
pub const STRATEGY_NAMES: &[&str] = &["market-maker", "twap"];

/// Settings of every built-in strategy (only the chosen one's are used).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StrategyParams {
    /// For `market-maker`.
    pub market_maker: MarketMakerConfig,
    /// For `twap`.
    pub twap: TwapConfig,
}

/// A built-in strategy by name.
pub fn strategy_by_name(name: &str, params: &StrategyParams) -> Result<Box<dyn Strategy>, BacktestError> {
    match name {
        "market-maker" => Ok(Box::new(MarketMaker::new(params.market_maker))),
        "twap" => Ok(Box::new(Twap::new(params.twap))),
        _ => Err(BacktestError::UnknownStrategy { name: name.to_string(), known: STRATEGY_NAMES.join(", ") }),
    }
}
