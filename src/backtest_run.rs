//! `exchange backtest`: run a built-in strategy against the flow recorded in a journal, write
//! its report (JSON) and equity curve (SVG).
//!
//! This file is the edge: it reads the journal's `meta.json` and `accounts.txt`, parses
//! options and writes files; the simulation is the `replay` crate's.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use engine::{AccountId, Command, Side};
use replay::{
    run_flow, strategy_by_name, BacktestError, BacktestOptions, BacktestOutcome, FeeSchedule, Flow,
    MarketMakerConfig, StrategyParams, TwapConfig,
};

use crate::journal_meta::{read_accounts, read_meta};
use crate::names::Names;

/// The command journal of a data directory (`<journal>/commands`) as a backtest's flow: each
/// record's CRC and the seq continuity checked by the reader.
struct JournalFlow(PathBuf);

impl Flow for JournalFlow {
    fn for_each_command<F: FnMut(&Command)>(&mut self, mut f: F) -> Result<u64, BacktestError> {
        let flow_err = |e: journal::JournalError| BacktestError::Flow(Box::new(e));
        let mut reader = journal::JournalReader::open_from_start(&self.0).map_err(flow_err)?;
        let mut n = 0;
        while let Some(record) = reader.next_record().map_err(flow_err)? {
            let command = Command::decode(record.payload)
                .map_err(|source| BacktestError::Decode { seq: record.seq, source })?;
            f(&command);
            n += 1;
        }
        Ok(n)
    }

    fn name(&self) -> String {
        self.0.display().to_string()
    }
}

/// Side of the TWAP.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum TwapSide {
    /// Buy the target quantity.
    Buy,
    /// Sell the target quantity.
    Sell,
}

/// Options of `exchange backtest`.
#[derive(Args, Debug, Clone)]
pub struct BacktestArgs {
    /// Journal directory (as written by `match --journal` or `serve`).
    #[arg(long)]
    pub journal: PathBuf,
    /// Strategy to run: `market-maker` or `twap`.
    #[arg(long)]
    pub strategy: String,
    /// Symbol to trade [default: the one with the most recorded new orders].
    #[arg(long)]
    pub symbol: Option<String>,
    /// The strategy's account name; must not be a recorded account [default: backtest].
    #[arg(long)]
    pub account: Option<String>,
    /// Latency from a strategy decision to the engine, microseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_us: u64,
    /// Extra latency per command, uniform in 0..=N microseconds, drawn from --seed.
    #[arg(long, default_value_t = 0)]
    pub jitter_us: u64,
    /// Seed of the latency jitter.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Maker fee in basis points (negative: rebate).
    #[arg(long, default_value_t = FeeSchedule::default().maker_bps, allow_negative_numbers = true)]
    pub maker_bps: i64,
    /// Taker fee in basis points.
    #[arg(long, default_value_t = FeeSchedule::default().taker_bps, allow_negative_numbers = true)]
    pub taker_bps: i64,
    /// Report (JSON) path [default: backtest-<strategy>.json].
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Equity curve (SVG) path [default: backtest-<strategy>.svg].
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Bound on live orders in the engine.
    #[arg(long, default_value_t = 1 << 20)]
    pub orders_max: usize,
    /// market-maker: quote size in lots.
    #[arg(long, default_value_t = MarketMakerConfig::default().quote_lots)]
    pub quote_lots: u64,
    /// market-maker: distance of each quote from the mid, in ticks.
    #[arg(long, default_value_t = MarketMakerConfig::default().half_spread_ticks)]
    pub half_spread_ticks: i64,
    /// market-maker: ticks both quotes move against each quote-size of inventory.
    #[arg(long, default_value_t = MarketMakerConfig::default().skew_ticks)]
    pub skew_ticks: i64,
    /// market-maker: inventory bound in lots.
    #[arg(long, default_value_t = MarketMakerConfig::default().inventory_max_lots)]
    pub inventory_max_lots: u64,
    /// twap: buy or sell.
    #[arg(long, value_enum, default_value_t = TwapSide::Buy)]
    pub side: TwapSide,
    /// twap: quantity to execute, in lots.
    #[arg(long, default_value_t = TwapConfig::default().target_lots)]
    pub target_lots: u64,
    /// twap: number of equal slices over the journal's time span.
    #[arg(long, default_value_t = TwapConfig::default().slices)]
    pub slices: u32,
    /// twap: each slice's limit is this many ticks through the best opposite price.
    #[arg(long, default_value_t = TwapConfig::default().slippage_ticks)]
    pub slippage_ticks: i64,
}

/// Why `backtest` stopped.
#[derive(Debug, thiserror::Error)]
pub enum BacktestRunError {
    /// The backtest itself failed (journal, strategy name, symbol, account).
    #[error(transparent)]
    Backtest(#[from] BacktestError),
    /// A file could not be read or written.
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Where the outputs went and what the run found.
#[derive(Debug)]
pub struct BacktestRun {
    /// The report and curve.
    pub outcome: BacktestOutcome,
    /// Report path.
    pub report: PathBuf,
    /// Plot path.
    pub plot: PathBuf,
}

impl BacktestArgs {
    fn params(&self) -> StrategyParams {
        StrategyParams {
            market_maker: MarketMakerConfig {
                quote_lots: self.quote_lots,
                half_spread_ticks: self.half_spread_ticks,
                skew_ticks: self.skew_ticks,
                inventory_max_lots: self.inventory_max_lots,
            },
            twap: TwapConfig {
                side: match self.side {
                    TwapSide::Buy => Side::Buy,
                    TwapSide::Sell => Side::Sell,
                },
                target_lots: self.target_lots,
                slices: self.slices,
                slippage_ticks: self.slippage_ticks,
            },
        }
    }
}

fn write_file(path: &Path, text: &str) -> io::Result<()> {
    fs::write(path, text).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// Runs `exchange backtest`.
pub fn run_backtest(args: &BacktestArgs) -> Result<BacktestRun, BacktestRunError> {
    // The name first: a typo should not cost a pass over a large journal.
    let mut strategy = strategy_by_name(&args.strategy, &args.params())?;
    if !args.journal.is_dir() {
        return Err(BacktestError::NoJournal(args.journal.clone()).into());
    }
    let symbols = read_meta(&args.journal)?;
    let mut names = Names::new(&symbols, usize::MAX);
    read_accounts(&args.journal, &mut names)?;
    let accounts =
        (0..names.accounts_len()).map(|id| names.account_name(AccountId(id as u32)).to_string()).collect();
    let mut options = BacktestOptions::new(symbols, accounts);
    options.symbol = args.symbol.clone();
    options.account = args.account.clone();
    options.orders_max = args.orders_max;
    options.config.latency_ns = args.latency_us.saturating_mul(1_000);
    options.config.jitter_ns = args.jitter_us.saturating_mul(1_000);
    options.config.seed = args.seed;
    options.config.fees = FeeSchedule { maker_bps: args.maker_bps, taker_bps: args.taker_bps };
    let outcome = run_flow(&mut JournalFlow(args.journal.join("commands")), &options, &mut strategy)?;
    let report =
        args.report.clone().unwrap_or_else(|| PathBuf::from(format!("backtest-{}.json", args.strategy)));
    let plot = args.plot.clone().unwrap_or_else(|| PathBuf::from(format!("backtest-{}.svg", args.strategy)));
    write_file(&report, &outcome.report_json())?;
    write_file(&plot, &outcome.equity_svg())?;
    Ok(BacktestRun { outcome, report, plot })
}

/// `exchange backtest` with its messages: a summary and the output paths on standard error;
/// exit status 2 on any error.
pub fn main(args: &BacktestArgs) -> ExitCode {
    match run_backtest(args) {
        Ok(run) => {
            let r = &run.outcome.report;
            eprintln!(
                "backtest: {} on {} as {}: {} recorded + {} own commands; {} fills, inventory {}, PnL {} (fees {}), max drawdown {}",
                r.strategy,
                r.symbol,
                r.account,
                r.flow.recorded_commands,
                r.flow.own_commands,
                r.fills.count,
                r.inventory,
                r.pnl.total,
                r.pnl.fees,
                r.max_drawdown
            );
            if r.flow.first_ts == r.flow.last_ts && r.latency_ns > 0 {
                eprintln!(
                    "backtest: note: every recorded command has ts {}, so with a latency every strategy order arrives after the recorded flow",
                    r.flow.first_ts
                );
            }
            eprintln!("backtest: report {}", run.report.display());
            eprintln!("backtest: equity plot {}", run.plot.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("backtest: error: {e}");
            ExitCode::from(2)
        }
    }
}
