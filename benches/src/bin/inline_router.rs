//! The inline order path on a deep book, with the router's look-ahead across a turn's requests
//! on and off (`Router::set_look_ahead`), in the same process on the same router: the
//! exchange-core stream (the `runner` bench's) as FIX-level requests into the router's channel a
//! burst at a time, order management with risk on (no limits, as `serve` runs it by default),
//! an `InlineRunner` engine (bare, or `DurableEngine` journaling to the page cache with
//! acknowledgements gated on it, as `serve` runs it), reports into the outbox. No sockets and no
//! FIX parse: what `serve`'s gateway thread does per order after the session layer.
//!
//! ```text
//! cargo build --release -p exchange-bench --bin inline_router
//! target/release/inline_router --resting 1000000 --burst 64 --journal off
//! ```
//!
//! Setup (the book, through the router) is untimed. The measured stream is cut into segments;
//! the look-ahead is switched before each, alternating (on, off), (off, on), ... so neither side
//! always follows the other. Each segment is timed by this thread's CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`: on a shared machine, wall time also counts the time slices others
//! take) and wall time. Prints, per side, the median ns per request over the segments, and the
//! median of the per-pair ratios off/on (above 1: the look-ahead is faster).

use std::time::Instant;

use clap::Parser;
use crossbeam_channel::Receiver;
use engine::{Command, CommandKind, Engine, EngineConfig, Side};
use gateway::router::{Delivery, Durability, EngineLink, Request, Router, RouterConfig, RouterTx, ToRouter};
use harness::gen::{generate, GenConfig, Mix, Workload};
use oms::admin::AdminConfig;
use oms::{OmsConfig, Report};
use runtime::{Doorbell, EngineStep, InlineRunner, SystemClock, WaitStrategy};

#[derive(Parser)]
#[command(
    about = "The inline order path (router, order management, inline engine) on a deep book, look-ahead on and off"
)]
struct Args {
    /// Resting orders the setup builds.
    #[arg(long, default_value_t = 1_000_000)]
    resting: usize,
    /// Requests queued before each round of router turns (a busy gateway turn's worth).
    #[arg(long, default_value_t = 64)]
    burst: usize,
    /// Pairs of timed segments (one on, one off).
    #[arg(long, default_value_t = 10)]
    pairs: usize,
    /// Requests per timed segment.
    #[arg(long, default_value_t = 50_000)]
    segment: usize,
    /// Journal: `off` (the bare engine) or `on` (`DurableEngine`, page cache, acknowledgements
    /// gated on it).
    #[arg(long, default_value = "off")]
    journal: String,
}

/// The request a session would send for `command` (its FIX twin); none for the others.
fn request_of(command: &Command, ref_seq: u64) -> Option<Request> {
    Some(match command.kind {
        CommandKind::New(order) => Request::New { order, ref_seq },
        CommandKind::Cancel(cancel) => {
            Request::Cancel { cancel, request_id: cancel.id, side: Side::Buy, ref_seq }
        }
        CommandKind::Replace(replace) => Request::Replace { replace, side: Side::Buy, ref_seq },
        CommandKind::CancelAll { .. } | CommandKind::Halt { .. } | CommandKind::Resume { .. } => return None,
    })
}

fn requests(commands: &[Command]) -> Vec<Request> {
    commands.iter().enumerate().filter_map(|(i, c)| request_of(c, i as u64 + 1)).collect()
}

fn router(workload: &Workload, journal: Option<&std::path::Path>) -> (Router, RouterTx, Receiver<Delivery>) {
    let engine_config = EngineConfig {
        symbols: workload.symbols.clone(),
        orders_max: workload.orders_max(),
        levels_per_side_max: workload.levels_per_side_max(),
    };
    let accounts = workload.config.accounts;
    let symbols = engine_config.symbols.clone();
    let (engine, durability): (Box<dyn EngineStep>, _) = match journal {
        None => {
            (Box::new(InlineRunner::new(Engine::new(engine_config.clone()), SystemClock, 1).unwrap()), None)
        }
        Some(dir) => {
            let _ = std::fs::remove_dir_all(dir);
            // No periodic snapshot: serializing a deep book on this thread would swamp the figure.
            let config =
                journal::DurableConfig { snapshot_every_commands: 0, ..journal::DurableConfig::new(dir) };
            let (mut durable, _) = journal::DurableEngine::open(engine_config.clone(), config).unwrap();
            durable.wait_background().unwrap();
            let durability = Durability { progress: durable.commands_progress(), group_commit: false };
            (Box::new(InlineRunner::new(durable, SystemClock, 1).unwrap()), Some(durability))
        }
    };
    // Risk tracks as many open orders as the engine holds (its default bound, 65,536, would
    // refuse most of a deep book's setup as `risk_capacity`).
    let risk_config = risk::RiskConfig {
        orders_max: engine_config.orders_max,
        ..risk::RiskConfig::new(symbols.clone(), accounts)
    };
    let risk = risk::RiskEngine::new(risk_config).unwrap();
    let config = RouterConfig {
        oms: OmsConfig {
            seq_first: 1,
            accounts: accounts as usize,
            symbols,
            risk: Some(risk),
            rate_limit: None,
            admin: AdminConfig::default(),
            cancel_at_start: Vec::new(),
            drop_copies: Vec::new(),
            funds: None,
        },
        wait: WaitStrategy::BusySpin,
        durability,
        doorbell: std::sync::Arc::new(Doorbell::new()),
        pin_core: None,
        metrics: None,
    };
    let (mut router, tx) = Router::new(EngineLink::Inline(engine), config).unwrap();
    let out_rx = tx.attach_local(accounts).unwrap();
    router.begin();
    while router.turn() {}
    (router, tx, out_rx)
}

/// Feeds `requests` a burst at a time, turning the router until it is idle after each; the
/// reports made.
fn feed(
    router: &mut Router,
    tx: &RouterTx,
    out: &Receiver<Delivery>,
    requests: &[Request],
    burst: usize,
) -> Reports {
    let mut reports = Reports::default();
    for chunk in requests.chunks(burst) {
        for request in chunk {
            let session = u64::from(request.account().0) + 1;
            tx.try_send(ToRouter::Request { session, request: *request }).unwrap();
        }
        while router.turn() {}
        while router.turn_due().is_some() {
            router.turn();
        }
        for delivery in out.try_iter() {
            reports.made += 1;
            reports.refused += u64::from(match &delivery.report {
                Report::Exec(exec) => exec.exec_type == b'8',
                Report::CancelReject(_) | Report::BusinessReject { .. } => true,
                _ => false,
            });
        }
    }
    reports
}

/// Reports made, and how many of them refuse a request (rejected orders, cancel rejects,
/// business rejects): a stream the venue mostly refuses would measure the wrong thing.
#[derive(Clone, Copy, Debug, Default)]
struct Reports {
    made: u64,
    refused: u64,
}

impl std::ops::AddAssign for Reports {
    fn add_assign(&mut self, other: Reports) {
        self.made += other.made;
        self.refused += other.refused;
    }
}

/// Nanoseconds this thread has run on a CPU (`CLOCK_THREAD_CPUTIME_ID`).
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant the OS knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime failed");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let args = Args::parse();
    let journal = match args.journal.as_str() {
        "off" => false,
        "on" => true,
        other => {
            eprintln!("--journal must be off or on, not {other:?}");
            std::process::exit(2);
        }
    };
    let (resting, burst) = (args.resting, args.burst);
    let dir = std::env::temp_dir().join(format!("inline-router-{}", std::process::id()));
    let workload =
        generate(&GenConfig::new(Mix::exchange_core(), 1, resting, 2 * args.pairs * args.segment, 1));
    let (setup, stream) = (requests(&workload.setup), requests(&workload.stream));
    let (mut router, tx, out) = router(&workload, journal.then_some(dir.as_path()));
    let setup_reports = feed(&mut router, &tx, &out, &setup, 256);
    let (mut cpu_on, mut cpu_off, mut wall_on, mut wall_off, mut ratios) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut reports = Reports::default();
    for (pair, segments) in stream.chunks(2 * args.segment).enumerate() {
        let mut pair_cpu = [0.0; 2]; // [on, off]
        for (k, segment) in segments.chunks(args.segment).enumerate() {
            let on = (pair + k) % 2 == 0;
            router.set_look_ahead(on);
            let (cpu0, wall0) = (thread_cpu_ns(), Instant::now());
            reports += feed(&mut router, &tx, &out, segment, burst);
            let cpu = (thread_cpu_ns() - cpu0) as f64 / segment.len() as f64;
            let wall = wall0.elapsed().as_nanos() as f64 / segment.len() as f64;
            let (cpus, walls) = if on { (&mut cpu_on, &mut wall_on) } else { (&mut cpu_off, &mut wall_off) };
            cpus.push(cpu);
            walls.push(wall);
            pair_cpu[usize::from(!on)] = cpu;
        }
        ratios.push(pair_cpu[1] / pair_cpu[0]);
    }
    let ratio_text: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
    println!(
        "inline_router resting {resting} burst {burst} journal {}: {} setup reports ({} refusals), {} requests, {} reports ({} refusals)",
        if journal { "on" } else { "off" },
        setup_reports.made,
        setup_reports.refused,
        stream.len(),
        reports.made,
        reports.refused,
    );
    println!(
        "  ns/request CPU median: look-ahead on {:.0}, off {:.0}; wall median: on {:.0}, off {:.0}",
        median(&mut cpu_on),
        median(&mut cpu_off),
        median(&mut wall_on),
        median(&mut wall_off)
    );
    println!("  off/on CPU per pair: {} (median {:.2})", ratio_text.join(" "), median(&mut ratios));
    router.end();
    let _ = std::fs::remove_dir_all(&dir);
}
