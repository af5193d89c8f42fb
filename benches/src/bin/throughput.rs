//! Single-thread throughput of the engine on exchange-core's command mix, side by side with
//! matchcore and orderbook-rs on the very same stream, plus how cost grows with book size and
//! symbol count.
//!
//! For each scenario: generate the workload (untimed), translate it for every venue (untimed);
//! then per run build fresh books and apply the setup phase (untimed) and time only the
//! measured stream. One warm-up run, then the median of `--runs`. Prints a table, then one JSON
//! line per result (`grep '^{'` to collect them). Rates are per wall-clock second and per CPU
//! second of the measuring thread; on a shared machine only the second compares across runs.

use std::hint::black_box;
use std::time::{Duration, Instant};

use clap::Parser;
use exchange_bench::peers::{MatchcoreVenue, OrderbookRsVenue};
use harness::gen::{generate, GenConfig, Mix, Workload};
use harness::{EngineVenue, RunCounts, Venue};

#[derive(Parser, Debug)]
#[command(about = "Engine throughput vs matchcore and orderbook-rs on the exchange-core mix")]
struct Args {
    /// Short run: 100k commands, 3 timed runs (numbers are rough).
    #[arg(long)]
    quick: bool,
    /// Commands in each measured stream (default 1,000,000; 100,000 with --quick).
    #[arg(long)]
    commands: Option<usize>,
    /// Generator seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Timed runs per venue and scenario, after one warm-up run (default 7; 3 with --quick).
    #[arg(long)]
    runs: Option<usize>,
    /// Scenarios to run (default all): ec-1k, sweep-1k, cancel-1k, ec-100k, ec-1m, ec-1k-symbols.
    #[arg(long, value_delimiter = ',')]
    scenarios: Vec<String>,
    /// Venues to run (default all): engine, matchcore, orderbook-rs.
    #[arg(long, value_delimiter = ',')]
    venues: Vec<String>,
    /// Let aggressive orders ask for more than the liquidity inside their limit (IOC rests,
    /// GTC rests after trading). matchcore 0.4.0 then sweeps past the limit, so its check
    /// column shows the divergence; see `GenConfig::takers_within_limit`.
    #[arg(long)]
    takers_past_limit: bool,
}

/// One workload shape.
struct Scenario {
    name: &'static str,
    mix: Mix,
    symbols: u32,
    resting_orders: usize,
}

fn scenarios() -> Vec<Scenario> {
    let ec = Mix::exchange_core();
    vec![
        // exchange-core's headline: one symbol, ~1k resting orders.
        Scenario { name: "ec-1k", mix: ec, symbols: 1, resting_orders: 1_000 },
        Scenario { name: "sweep-1k", mix: Mix::sweep_heavy(), symbols: 1, resting_orders: 1_000 },
        Scenario { name: "cancel-1k", mix: Mix::cancel_heavy(), symbols: 1, resting_orders: 1_000 },
        // Cost growth with book size.
        Scenario { name: "ec-100k", mix: ec, symbols: 1, resting_orders: 100_000 },
        Scenario { name: "ec-1m", mix: ec, symbols: 1, resting_orders: 1_000_000 },
        // Cost growth with symbol count: 1,000 books of ~1k orders, so each book looks like
        // the headline one and only the spread over symbols (cache footprint) changes.
        Scenario { name: "ec-1k-symbols", mix: ec, symbols: 1_000, resting_orders: 1_000_000 },
    ]
}

/// Timings of one venue on one scenario.
struct Measured {
    venue: &'static str,
    /// Commands per wall-clock second, per timed run.
    rates: Vec<f64>,
    /// Commands per CPU second of the measuring thread, per timed run.
    cpu_rates: Vec<f64>,
    check: String,
}

impl Measured {
    fn median(&self) -> f64 {
        median_of(&self.rates)
    }

    fn cpu_median(&self) -> f64 {
        median_of(&self.cpu_rates)
    }
}

fn median_of(rates: &[f64]) -> f64 {
    let mut r = rates.to_vec();
    r.sort_by(f64::total_cmp);
    r[r.len() / 2]
}

/// CPU seconds this thread has used so far (`CLOCK_THREAD_CPUTIME_ID`). On a machine shared
/// with other work the wall-clock rate falls with every time slice the loop loses; the rate per
/// CPU second does not, so it is the one to compare when the machine is loaded.
fn thread_cpu_s() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec and the clock id exists on every Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime failed");
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

fn main() {
    let args = Args::parse();
    let commands = args.commands.unwrap_or(if args.quick { 100_000 } else { 1_000_000 });
    let runs = args.runs.unwrap_or(if args.quick { 3 } else { 7 }).max(1);
    let wanted = |list: &[String], name: &str| list.is_empty() || list.iter().any(|s| s == name);

    let mut table: Vec<(String, Vec<Measured>)> = Vec::new();
    let mut json_lines = Vec::new();
    for sc in scenarios().into_iter().filter(|s| wanted(&args.scenarios, s.name)) {
        eprintln!(
            "[{}] generating {} resting + {} commands over {} symbol(s)...",
            sc.name, sc.resting_orders, commands, sc.symbols
        );
        let mut config = GenConfig::new(sc.mix, sc.symbols, sc.resting_orders, commands, args.seed);
        config.takers_within_limit = !args.takers_past_limit;
        let t = Instant::now();
        let workload = generate(&config);
        eprintln!("[{}] generated in {:.1}s: {:?}", sc.name, t.elapsed().as_secs_f64(), workload.stats);

        let mut results = Vec::new();
        if wanted(&args.venues, "engine") {
            results.push(measure(&sc, &EngineVenue::new(&workload), &workload, runs));
        }
        if wanted(&args.venues, "matchcore") {
            let venue = MatchcoreVenue::new(&workload);
            results.push(measure(&sc, &venue, &workload, runs));
        }
        if wanted(&args.venues, "orderbook-rs") {
            let venue = OrderbookRsVenue::new(&workload);
            results.push(measure(&sc, &venue, &workload, runs));
        }
        let engine = results.iter().find(|m| m.venue == "engine").map(|m| (m.median(), m.cpu_median()));
        for m in &results {
            json_lines.push(json_line(&sc, &workload, m, runs, engine));
        }
        table.push((sc.name.to_string(), results));
    }

    println!();
    println!(
        "{:<14} {:<13} {:>10} {:>8} {:>21} {:>9} {:>12} {:>9}  check",
        "scenario", "venue", "Mcmd/s", "ns/cmd", "min..max Mcmd/s", "engine×", "Mcmd/cpu-s", "cpu eng×"
    );
    for (name, results) in &table {
        let engine_rate = results.iter().find(|m| m.venue == "engine").map(Measured::median);
        let engine_cpu_rate = results.iter().find(|m| m.venue == "engine").map(Measured::cpu_median);
        for m in results {
            let med = m.median();
            let (lo, hi) = m.rates.iter().fold((f64::MAX, 0f64), |(lo, hi), &r| (lo.min(r), hi.max(r)));
            let ratio = engine_rate.map_or("-".to_string(), |e| format!("{:.2}", e / med));
            let cpu_med = m.cpu_median();
            let cpu_ratio = engine_cpu_rate.map_or("-".to_string(), |e| format!("{:.2}", e / cpu_med));
            println!(
                "{:<14} {:<13} {:>10.3} {:>8.1} {:>21} {:>9} {:>12.3} {:>9}  {}",
                name,
                m.venue,
                med / 1e6,
                1e9 / med,
                format!("{:.3}..{:.3}", lo / 1e6, hi / 1e6),
                ratio,
                cpu_med / 1e6,
                cpu_ratio,
                m.check
            );
        }
    }
    println!(
        "\n{commands} commands per stream, {runs} timed runs after 1 warm-up, median shown; \
         engine× = engine rate / venue rate; per cpu-s: commands per CPU second of the measuring \
         thread. Single thread; setup and translation untimed."
    );
    println!();
    for line in json_lines {
        println!("{line}");
    }
}

/// Warm-up plus `runs` timed runs of `venue`; each run starts from freshly built books.
fn measure<V: Venue>(sc: &Scenario, venue: &V, workload: &Workload, runs: usize) -> Measured {
    let n = workload.stream.len() as f64;
    let mut rates = Vec::with_capacity(runs);
    let mut cpu_rates = Vec::with_capacity(runs);
    let mut check = String::new();
    for run in 0..=runs {
        let (mut book, setup_counts) = venue.build();
        let (t, cpu0) = (Instant::now(), thread_cpu_s());
        let counts = venue.run(black_box(&mut book));
        let elapsed = t.elapsed().max(Duration::from_nanos(1));
        let cpu_elapsed = (thread_cpu_s() - cpu0).max(1e-9);
        let resting = venue.resting(&book);
        // Dropping a million-order book is not part of processing commands.
        drop(book);
        if run == 0 {
            // The warm-up run is the one checked: every run replays the same stream.
            check = match RunCounts::check(workload, setup_counts, counts, resting) {
                Ok(()) => "ok".to_string(),
                Err(problems) => problems.to_string(),
            };
            continue;
        }
        rates.push(n / elapsed.as_secs_f64());
        cpu_rates.push(n / cpu_elapsed);
        eprintln!(
            "[{}] {:<13} run {run}/{runs}: {:.3} Mcmd/s, {:.3} Mcmd/cpu-s",
            sc.name,
            venue.name(),
            n / elapsed.as_secs_f64() / 1e6,
            n / cpu_elapsed / 1e6
        );
    }
    Measured { venue: venue.name(), rates, cpu_rates, check }
}

fn json_line(sc: &Scenario, w: &Workload, m: &Measured, runs: usize, engine: Option<(f64, f64)>) -> String {
    let (med, cpu_med) = (m.median(), m.cpu_median());
    let s = &w.stats;
    serde_json::json!({
        "bench": "throughput",
        "scenario": sc.name,
        "venue": m.venue,
        "mix": sc.mix.name,
        "symbols": sc.symbols,
        "resting_target": sc.resting_orders,
        "resting_end": s.resting_end,
        "commands": w.stream.len(),
        "seed": w.config.seed,
        "takers_within_limit": w.config.takers_within_limit,
        "runs": runs,
        "cmd_per_s_median": med.round(),
        "ns_per_cmd_median": 1e9 / med,
        "cmd_per_s_runs": m.rates.iter().map(|r| r.round()).collect::<Vec<_>>(),
        "engine_over_venue": engine.map(|(e, _)| e / med),
        "cmd_per_cpu_s_median": cpu_med.round(),
        "cmd_per_cpu_s_runs": m.cpu_rates.iter().map(|r| r.round()).collect::<Vec<_>>(),
        "engine_over_venue_cpu": engine.map(|(_, e)| e / cpu_med),
        "realized_mix": {
            "gtc_passive": s.gtc_passive,
            "gtc_marketable": s.gtc_marketable,
            "ioc": s.ioc,
            "cancel": s.cancels,
            "move": s.moves,
            "feedback_substitutions": s.feedback_substitutions,
        },
        "trades": s.trades,
        "check": m.check,
    })
    .to_string()
}
