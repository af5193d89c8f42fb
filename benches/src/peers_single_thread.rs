//! `latency peers` (`cargo run --release -p exchange-bench --bin latency -- peers`): one command stream through our engine, matchcore and orderbook-rs,
//! each called directly on one thread, every command timed on its own.
//!
//! This is service time (closed loop: the next command starts when the previous one returns),
//! not the open-loop latency of the other modes: it answers "how long does one command take
//! inside each implementation", side by side on the same commands in the same run.
//!
//! # The timer
//! Each command is timed with two `Instant::now()` reads (`CLOCK_MONOTONIC` through the vDSO; no
//! `rdtsc`). What the reads themselves cost is measured the same way around no work at all and
//! shown as the `timer` row: every other row includes about that much. It is shown rather than
//! subtracted, because percentiles of a difference are not differences of percentiles.

use std::hint::black_box;
use std::time::{Instant, SystemTime};

use clap::Args;
use harness::gen::{generate, GenConfig, Workload};
use harness::latency::driver::Epoch;
use harness::latency::output::{publish, table_line, Progress, Report};
use harness::latency::series::{latency_histogram, Check, Series};
use harness::latency::{
    describe_harness, on_harness_thread, progress_visible, BenchError, MachineUse, OutputArgs, WorkloadArgs,
};
use harness::{CommandTimer, EngineVenue, RunCounts, Venue};
use hdrhistogram::Histogram;

use crate::peers::{MatchcoreVenue, OrderbookRsVenue};

/// `latency peers`.
#[derive(Args, Debug, Clone)]
pub struct PeersArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub output: OutputArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub workload: WorkloadArgs,
    /// Commands in the stream (default 1,000,000; 200,000 with --quick); the first tenth is
    /// warm-up and not recorded.
    #[arg(long)]
    pub commands: Option<usize>,
    /// Venues to run (default all): engine, matchcore, orderbook-rs.
    #[arg(long, value_delimiter = ',')]
    pub venues: Vec<String>,
}

/// Every venue this mode knows, in the order they run.
pub const VENUES: [&str; 3] = ["engine", "matchcore", "orderbook-rs"];

/// Records each command's time after the first `skip` commands.
pub struct HistogramTimer {
    /// Times of the recorded commands, in nanoseconds.
    pub latency_ns: Histogram<u64>,
    skip: u64,
    seen: u64,
}

impl HistogramTimer {
    /// A timer that does not record the first `skip` commands (warm-up).
    pub fn new(skip: u64) -> HistogramTimer {
        HistogramTimer { latency_ns: latency_histogram(), skip, seen: 0 }
    }
}

impl CommandTimer for HistogramTimer {
    #[inline(always)]
    fn time<R>(&mut self, work: impl FnOnce() -> R) -> R {
        let t0 = Instant::now();
        let out = work();
        let ns = t0.elapsed().as_nanos() as u64;
        if self.seen >= self.skip {
            self.latency_ns.saturating_record(ns);
        }
        self.seen += 1;
        out
    }
}

/// Runs the peers mode; `Ok(false)` when a venue's check failed.
pub fn run(args: &PeersArgs) -> Result<bool, BenchError> {
    let bench_epoch = Epoch::start();
    let started = SystemTime::now();
    let quick = args.output.quick;
    for v in &args.venues {
        if !VENUES.contains(&v.as_str()) {
            return Err(BenchError::Config(format!("unknown venue {v}: pick from {VENUES:?}")));
        }
    }
    if args.workload.symbols == 0 {
        return Err(BenchError::Config("--symbols must be at least 1".into()));
    }
    let venues: Vec<&str> = VENUES
        .iter()
        .copied()
        .filter(|v| args.venues.is_empty() || args.venues.iter().any(|a| a == v))
        .collect();
    let commands = args.commands.unwrap_or(if quick { 200_000 } else { 1_000_000 }).max(10);
    let warmup = commands as u64 / 10;
    let mix = args.workload.mix.mix();
    let resting = args.workload.resting_total();
    let mut machine = MachineUse::detect();
    machine.thread(
        "harness",
        describe_harness(args.output.harness_core, "runs every venue in turn, no waiting")?,
    );

    let progress = Progress::new(venues.len() as u64 + 2, progress_visible());
    progress.phase(format!("generating {commands} commands ({} mix, {resting} resting)", mix.name));
    let workload = generate(&GenConfig::new(mix, args.workload.symbols, resting, commands, args.output.seed));
    progress.step_done(&format!(
        "generated {} setup + {} stream commands",
        workload.setup.len(),
        workload.stream.len()
    ));

    let mut series = Vec::new();
    progress.phase("timer overhead".into());
    let core = args.output.harness_core;
    series.push(on_harness_thread(core, || timer_series(commands as u64, warmup, &bench_epoch))?);
    progress.step_done(&table_line(&series[0]));
    for name in venues {
        progress.phase(format!("{name}: {commands} commands, one at a time"));
        let (w, epoch) = (&workload, &bench_epoch);
        let s = on_harness_thread(core, move || match name {
            "engine" => venue_series(&EngineVenue::new(w), w, warmup, epoch),
            "matchcore" => venue_series(&MatchcoreVenue::new(w), w, warmup, epoch),
            _ => venue_series(&OrderbookRsVenue::new(w), w, warmup, epoch),
        })?;
        progress.step_done(&table_line(&s));
        series.push(s);
    }
    progress.finish();

    let timer_p50_ns = series[0].latency_ns.value_at_quantile(0.5);
    let report = Report {
        mode: "peers",
        title: format!(
            "latency peers: one command at a time, single thread, {} mix, {} symbol(s), {} resting",
            mix.name, args.workload.symbols, resting
        ),
        latency_is: "service time of one command (call to return, outcome dropped), closed loop".into(),
        machine,
        config: serde_json::json!({
            "mix": mix.name,
            "symbols": args.workload.symbols,
            "resting": resting,
            "seed": args.output.seed,
            "quick": quick,
            "commands": commands,
            "warmup_commands": warmup,
            "takers_within_limit": workload.config.takers_within_limit,
        }),
        series,
        stop_reason: None,
        notes: vec![
            format!(
                "every row includes one timer read pair; the `timer` row times no work at all (p50 {timer_p50_ns} ns)"
            ),
            format!("the first {warmup} commands of the stream are warm-up and not recorded"),
            "check: each venue's trades, traded quantity, IOC rests, rejects and book size match the generator's model"
                .into(),
        ],
        started,
    };
    publish(&report, &args.output.out)
}

/// The same loop as the venues', timing no work: what the timer itself costs.
fn timer_series(commands: u64, warmup: u64, bench_epoch: &Epoch) -> Series {
    let mut timer = HistogramTimer::new(warmup);
    let t = Instant::now();
    let start_offset = t.saturating_duration_since(bench_epoch.instant());
    for i in 0..commands {
        timer.time(|| black_box(i));
    }
    let duration = t.elapsed();
    Series {
        label: "timer".into(),
        rate_target: None,
        rate_achieved: None,
        latency_ns: timer.latency_ns,
        send_lag_ns: None,
        requests: commands - warmup,
        warmup_requests: warmup,
        lost: 0,
        start_offset,
        duration,
        check: Check::ok("no work, nothing to check"),
        extra: serde_json::json!({ "what": "two Instant::now() reads around no work" }),
        steal_ms: None,
    }
}

fn venue_series<V: Venue>(venue: &V, workload: &Workload, warmup: u64, bench_epoch: &Epoch) -> Series {
    let (mut book, setup_counts) = venue.build();
    let mut timer = HistogramTimer::new(warmup);
    let t = Instant::now();
    let start_offset = t.saturating_duration_since(bench_epoch.instant());
    let counts = venue.run_each(black_box(&mut book), &mut timer);
    let duration = t.elapsed();
    let resting = venue.resting(&book);
    drop(book);
    let check = match RunCounts::check(workload, setup_counts, counts, resting) {
        Ok(()) => Check::ok(format!(
            "trades {}, traded qty {}, no rejects{}: as the generator's model predicts",
            workload.stats.trades,
            workload.stats.traded_qty,
            resting.map_or(String::new(), |r| format!(", {r} resting"))
        )),
        Err(problems) => Check { passed: false, detail: problems.to_string() },
    };
    let n = workload.stream.len() as u64;
    Series {
        label: venue.name().into(),
        rate_target: None,
        rate_achieved: None,
        latency_ns: timer.latency_ns,
        send_lag_ns: None,
        requests: n - warmup,
        warmup_requests: warmup,
        lost: 0,
        start_offset,
        duration,
        check,
        extra: serde_json::json!({
            "commands_per_s_with_timer": n as f64 / duration.as_secs_f64().max(1e-9),
        }),
        steal_ms: None,
    }
}
