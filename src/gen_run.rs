//! `exchange gen`: a seeded command file of realistic multi-account flow on the built-in symbols,
//! for `match`, `replay` and `backtest` to show something real.
//!
//! The flow comes from the benchmark generator (`exchange_bench::gen`), which keeps an exact
//! model of every book, so every cancel and replace names a live order: passive orders build
//! two-sided books, then limit orders, marketable IOCs that sweep one to three levels, cancels
//! and price moves follow each other. Its timestamps are spread evenly over `--minutes`, and each
//! symbol is shifted to a price of its own. The same options give the same file, byte for byte.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use engine::price_text::PriceText;
use engine::{default_symbols, AccountId, Command, CommandKind, PriceUnits, Side, SymbolId, SymbolSpec, Tif};
use harness::gen::{generate, GenConfig, Mix, Sweep, MID_TICKS, TICK_UNITS};
use serde::Serialize;

/// Mid price of each built-in symbol in the generated flow, in ticks of 0.01 (same order as
/// [`default_symbols`]): BTC-USD 60,000.00, ETH-USD 2,000.00, AAPL 190.00.
const MIDS_TICKS: [i64; 3] = [6_000_000, 200_000, 19_000];

/// Most commands one file holds: a few minutes of flow is tens of thousands.
pub const GEN_COMMANDS_MAX: usize = 10_000_000;

/// Options of `exchange gen`.
#[derive(Debug, Clone)]
pub struct GenOptions {
    /// RNG seed.
    pub seed: u64,
    /// Accounts the flow is spread over (named `acct01` …).
    pub accounts: u32,
    /// Symbols used, from the built-in list (1 to 3).
    pub symbols: u32,
    /// Commands after the book-building phase.
    pub commands: usize,
    /// Resting orders the books are built to (and held near).
    pub resting_orders: usize,
    /// Minutes the timestamps span.
    pub minutes: u64,
    /// Output file; standard output when absent.
    pub out: Option<PathBuf>,
}

/// What `gen` wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GenSummary {
    /// Lines written.
    pub lines: u64,
    /// Trades the flow produces when matched (the generator's model predicts them exactly).
    pub trades: u64,
}

/// Why `gen` failed.
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    /// An option is out of range.
    #[error("{0}")]
    Option(String),
    /// The output could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The output.
        path: String,
        /// The cause.
        source: io::Error,
    },
}

/// The flow's mix: a quarter of the commands are new limit orders (one in twenty marketable),
/// 6% are IOCs that sweep one to three levels, 15% cancels, the rest price moves. Sweeps of
/// whole levels are what reach a market maker quoting behind the best price.
fn flow_mix() -> Mix {
    Mix {
        name: "flow",
        gtc_permille: 250,
        ioc_permille: 60,
        cancel_permille: 150,
        gtc_marketable_permille: 50,
        ioc_sweep: Sweep::Levels { lo: 1, hi: 3 },
    }
}

#[derive(Serialize)]
struct Line<'a> {
    op: &'static str,
    account: String,
    symbol: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    orig_id: Option<String>,
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    side: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tif: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    price: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    qty: Option<u64>,
    ts: u64,
}

fn account_name(id: AccountId) -> String {
    format!("acct{:02}", id.0 + 1)
}

/// Price units of the generator's symbol → the decimal text of `spec`, shifted to its mid.
fn price_text(spec: &SymbolSpec, units: PriceUnits, shift_ticks: i64) -> String {
    let shifted = units.get() + shift_ticks * TICK_UNITS;
    PriceText::fixed(i128::from(shifted), spec.price_decimals()).to_string()
}

/// Writes the command file.
pub fn run_gen(opts: &GenOptions) -> Result<GenSummary, GenError> {
    let symbols = default_symbols();
    if !(1..=symbols.len() as u32).contains(&opts.symbols) {
        return Err(GenError::Option(format!("--symbols {}: 1 to {}", opts.symbols, symbols.len())));
    }
    if opts.accounts < 2 {
        return Err(GenError::Option("--accounts: at least 2 (takers never hit their own orders)".into()));
    }
    if opts.commands == 0 || opts.commands > GEN_COMMANDS_MAX {
        return Err(GenError::Option(format!("--commands {}: 1 to {GEN_COMMANDS_MAX}", opts.commands)));
    }
    if opts.resting_orders < 2 * opts.symbols as usize {
        return Err(GenError::Option("--resting: at least two orders per symbol".into()));
    }
    let mut config = GenConfig::new(flow_mix(), opts.symbols, opts.resting_orders, opts.commands, opts.seed);
    config.accounts = opts.accounts;
    // IOC rests and crossing GTC orders that rest their remainder, as real flow has.
    config.takers_within_limit = false;
    let work = generate(&config);

    let path = opts.out.as_ref().map_or_else(|| "standard output".to_owned(), |p| p.display().to_string());
    let io_err = |source| GenError::Io { path: path.clone(), source };
    let out: Box<dyn Write> = match &opts.out {
        Some(p) => Box::new(File::create(p).map_err(io_err)?),
        None => Box::new(io::stdout().lock()),
    };
    let mut out = BufWriter::new(out);
    let total = (work.setup.len() + work.stream.len()) as u64;
    let span_ns = opts.minutes.max(1) * 60 * 1_000_000_000;
    let mut summary = GenSummary { trades: work.stats.trades, ..GenSummary::default() };
    for (i, command) in work.setup.iter().chain(&work.stream).enumerate() {
        // Evenly spaced from 1 s, so the first command is not at time 0.
        let ts = 1_000_000_000 + span_ns / total * i as u64;
        let line = line_of(command, &symbols, ts);
        serde_json::to_writer(&mut out, &line).map_err(|e| io_err(e.into()))?;
        out.write_all(b"\n").map_err(io_err)?;
        summary.lines += 1;
    }
    out.flush().map_err(io_err)?;
    Ok(summary)
}

fn line_of<'a>(command: &Command, symbols: &'a [SymbolSpec], ts: u64) -> Line<'a> {
    let spec = |id: SymbolId| &symbols[id.index()];
    let shift = |id: SymbolId| MIDS_TICKS[id.index()] - MID_TICKS;
    match &command.kind {
        CommandKind::New(o) => Line {
            op: "new",
            account: account_name(o.account),
            symbol: &spec(o.symbol).name,
            orig_id: None,
            id: o.id.to_string(),
            side: Some(if o.side == Side::Buy { "buy" } else { "sell" }),
            tif: Some(if o.tif == Tif::Ioc { "ioc" } else { "gtc" }),
            price: Some(price_text(spec(o.symbol), o.price, shift(o.symbol))),
            qty: Some(o.qty),
            ts,
        },
        CommandKind::Cancel(c) => Line {
            op: "cancel",
            account: account_name(c.account),
            symbol: &spec(c.symbol).name,
            orig_id: None,
            id: c.id.to_string(),
            side: None,
            tif: None,
            price: None,
            qty: None,
            ts,
        },
        CommandKind::Replace(r) => Line {
            op: "replace",
            account: account_name(r.account),
            symbol: &spec(r.symbol).name,
            orig_id: Some(r.orig_id.to_string()),
            id: r.id.to_string(),
            side: None,
            tif: None,
            price: r.price.map(|p| price_text(spec(r.symbol), p, shift(r.symbol))),
            qty: Some(r.qty),
            ts,
        },
        other => unreachable!("the generator makes new, cancel and replace only, not {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_move_to_each_symbols_mid_on_its_tick() {
        let symbols = default_symbols();
        let mid_units = PriceUnits(MID_TICKS * TICK_UNITS);
        assert_eq!(price_text(&symbols[0], mid_units, MIDS_TICKS[0] - MID_TICKS), "60000.00");
        assert_eq!(
            price_text(&symbols[2], PriceUnits(mid_units.get() + TICK_UNITS), MIDS_TICKS[2] - MID_TICKS),
            "190.01"
        );
    }
}
