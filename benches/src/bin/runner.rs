//! The venue's engine thread on a deep book: the exchange-core stream through
//! [`runtime::Runner`] (command ring → engine thread → event ring), with the bare engine and with
//! the journaling engine, each both ways in the same run:
//! - `batch`: the runner hands each popped batch to `Processor::process_batch` (the engine
//!   looks ahead; what the venue runs);
//! - `one`: the same runner, but the processor is wrapped so that `process_batch` is the trait's
//!   default, `process` on each command in turn (what the runner did before).
//!
//! Figures are commands per CPU second of the engine thread (`CLOCK_THREAD_CPUTIME_ID` of that
//! thread, read through `pthread_getcpuclockid` from the harness thread): on a shared machine
//! wall-clock rates fall with each time slice the thread loses, CPU time does not. The wall-clock
//! rate is printed beside it. Setup (building the book, and journaling it) is untimed. Figures go
//! to standard output as a table and one JSON line each.

use std::os::unix::thread::JoinHandleExt;
use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use engine::{Command, CountingSink, Engine, EngineConfig, EventSink, Processor};
use harness::gen::{generate, GenConfig, Mix, Workload};
use journal::{DurableConfig, DurableEngine};
use runtime::{PushError, Runner, RunnerConfig};

#[derive(Parser)]
#[command(about = "The engine thread (runner) on a deep book: process_batch against one command at a time")]
struct Args {
    /// Resting orders the setup builds, one or more (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1000,100000,1000000")]
    resting: Vec<usize>,
    /// Commands in the measured stream.
    #[arg(long, default_value_t = 1_000_000)]
    commands: usize,
    /// Rounds; each runs every variant once, alternating which goes first.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// The runner's `batch_max`.
    #[arg(long, default_value_t = 64)]
    batch_max: usize,
    /// Journal: `off`, `on` or `both`.
    #[arg(long, default_value = "both")]
    journal: String,
    /// Which ways to run: `one`, `batch`, `hinted` (`process` per command after
    /// `prefetch_upcoming`, as the router's inline engine runs), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "one,batch")]
    modes: Vec<String>,
    /// Drive the processor on this thread, `--batch-max` commands at a time, instead of through
    /// the runner's rings: no other thread, so an instruction count (`valgrind --tool=callgrind
    /// --toggle-collect='*drive_here*'`) sees only the processor's work.
    #[arg(long)]
    on_this_thread: bool,
    /// Where to write journals (default: a directory in the system temp dir, removed at the end).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// `process` per command: `process_batch` is the trait's default, the runner's old behaviour.
struct OneAtATime<P>(P);

impl<P: Processor> Processor for OneAtATime<P> {
    #[inline]
    fn process<S: EventSink>(&mut self, cmd: &Command, sink: &mut S) {
        self.0.process(cmd, sink);
    }

    #[inline]
    fn end_batch(&mut self) {
        self.0.end_batch();
    }
}

/// `process` per command, each after `prefetch_upcoming` with the commands behind it: the
/// look-ahead of a driver that learns commands one at a time (the gateway's router with an
/// inline engine), on the same batches.
struct Hinted<P>(P);

impl<P: Processor> Processor for Hinted<P> {
    #[inline]
    fn process<S: EventSink>(&mut self, cmd: &Command, sink: &mut S) {
        self.0.process(cmd, sink);
    }

    #[inline]
    fn process_batch<S: EventSink>(&mut self, cmds: &[Command], sink: &mut S) {
        for (i, cmd) in cmds.iter().enumerate() {
            self.0.prefetch_upcoming(&cmds[i + 1..]);
            self.0.process(cmd, sink);
        }
    }

    #[inline]
    fn end_batch(&mut self) {
        self.0.end_batch();
    }
}

/// CPU seconds the thread `thread` has used so far.
fn thread_cpu_s(thread: libc::pthread_t) -> f64 {
    let mut clock: libc::clockid_t = 0;
    // SAFETY: `thread` is a live thread (its JoinHandle is held and not joined) and `clock` is
    // a valid place for the id.
    let rc = unsafe { libc::pthread_getcpuclockid(thread, &mut clock) };
    assert_eq!(rc, 0, "pthread_getcpuclockid failed");
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec and `clock` came from pthread_getcpuclockid.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime failed");
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

struct Measured {
    cpu_rate: f64,
    wall_rate: f64,
    events: CountingSink,
}

/// Runs the stream through a runner driving `processor`; the setup is already in it.
fn run<P: Processor + 'static>(processor: P, workload: &Workload, batch_max: usize) -> Measured {
    let config =
        RunnerConfig { batch_max, seq_first: workload.setup.len() as u64 + 1, ..RunnerConfig::default() };
    let (handle, join) = Runner::spawn(processor, config).expect("runner");
    let (mut commands, mut events) = (handle.commands, handle.events);
    let thread = join.as_pthread_t();
    let mut sink = CountingSink::default();
    let expected_commands = workload.stream.len() as u64;
    let (cpu0, started) = (thread_cpu_s(thread), Instant::now());
    for cmd in &workload.stream {
        let mut cmd = *cmd;
        while let Err(PushError::Full(back)) = commands.push(cmd) {
            cmd = back;
            if events.pop_batch(usize::MAX, |event| sink.event(&event)) == 0 {
                std::thread::yield_now();
            }
        }
    }
    // Every command processed and its events read; the thread is still alive (its command
    // producer is held), so its clock can be read.
    while handle.stats.commands_processed() < expected_commands || !events.is_empty() {
        if events.pop_batch(usize::MAX, |event| sink.event(&event)) == 0 {
            std::thread::yield_now();
        }
    }
    let (cpu, wall) = (thread_cpu_s(thread) - cpu0, started.elapsed().as_secs_f64());
    drop(commands);
    while !(events.is_abandoned() && events.is_empty()) {
        events.pop_batch(usize::MAX, |event| sink.event(&event));
        std::thread::yield_now();
    }
    drop(join.join().expect("engine thread"));
    let n = workload.stream.len() as f64;
    Measured { cpu_rate: n / cpu, wall_rate: n / wall, events: sink }
}

/// The stream through `processor` on this thread, as the runner hands it batches (no rings).
#[inline(never)]
fn drive_here<P: Processor>(
    processor: &mut P,
    stream: &[Command],
    batch_max: usize,
    sink: &mut CountingSink,
) {
    for batch in stream.chunks(batch_max) {
        processor.process_batch(batch, sink);
        processor.end_batch();
    }
}

/// [`run`] without the runner: [`drive_here`], timed by this thread's CPU clock.
fn run_here<P: Processor>(mut processor: P, workload: &Workload, batch_max: usize) -> Measured {
    // SAFETY: pthread_self has no preconditions.
    let thread = unsafe { libc::pthread_self() };
    let mut sink = CountingSink::default();
    let (cpu0, started) = (thread_cpu_s(thread), Instant::now());
    drive_here(&mut processor, &workload.stream, batch_max, &mut sink);
    let (cpu, wall) = (thread_cpu_s(thread) - cpu0, started.elapsed().as_secs_f64());
    let n = workload.stream.len() as f64;
    Measured { cpu_rate: n / cpu, wall_rate: n / wall, events: sink }
}

fn bare(engine_config: &EngineConfig, workload: &Workload) -> Engine {
    let mut engine = Engine::new(engine_config.clone());
    engine.process_batch(&workload.setup, &mut CountingSink::default());
    engine
}

fn durable(engine_config: &EngineConfig, workload: &Workload, dir: &std::path::Path) -> DurableEngine {
    let _ = std::fs::remove_dir_all(dir);
    // No periodic snapshot: serializing a deep book on the engine thread would swamp the figure.
    let config = DurableConfig { snapshot_every_commands: 0, ..DurableConfig::new(dir) };
    let (mut durable, _) = DurableEngine::open(engine_config.clone(), config).expect("open journal");
    let mut sink = CountingSink::default();
    for batch in workload.setup.chunks(64) {
        durable.process_batch_staged(batch, &mut sink).expect("journal the setup");
        durable.publish_batch();
    }
    durable.wait_background().expect("journal background work");
    durable
}

fn main() {
    let args = Args::parse();
    let journals: &[bool] = match args.journal.as_str() {
        "off" => &[false],
        "on" => &[true],
        "both" => &[false, true],
        other => {
            eprintln!("--journal must be off, on or both, not {other:?}");
            std::process::exit(2);
        }
    };
    let root = args
        .dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("runner-bench-{}", std::process::id())));
    println!(
        "{:<10} {:<8} {:<6} {:>5} {:>16} {:>14} {:>9}",
        "resting", "journal", "mode", "round", "M cmd/CPU-s", "M cmd/s wall", "events"
    );
    for &resting in &args.resting {
        let workload = generate(&GenConfig::new(Mix::exchange_core(), 1, resting, args.commands, 1));
        let engine_config = EngineConfig {
            symbols: workload.symbols.clone(),
            orders_max: workload.orders_max(),
            levels_per_side_max: workload.levels_per_side_max(),
        };
        for round in 1..=args.rounds {
            for &journal in journals {
                // Alternate which goes first, so neither always gets the warmer machine.
                let mut modes: Vec<&str> = args.modes.iter().map(String::as_str).collect();
                if round % 2 == 0 {
                    modes.reverse();
                }
                let mut counts = Vec::new();
                for mode in modes {
                    let dir = root.join(format!("{resting}-{mode}"));
                    let (batch_max, here) = (args.batch_max, args.on_this_thread);
                    let measured = match (journal, mode, here) {
                        (false, "one", false) => {
                            run(OneAtATime(bare(&engine_config, &workload)), &workload, batch_max)
                        }
                        (false, "one", true) => {
                            run_here(OneAtATime(bare(&engine_config, &workload)), &workload, batch_max)
                        }
                        (false, "batch", false) => run(bare(&engine_config, &workload), &workload, batch_max),
                        (false, "batch", true) => {
                            run_here(bare(&engine_config, &workload), &workload, batch_max)
                        }
                        (true, "one", false) => {
                            run(OneAtATime(durable(&engine_config, &workload, &dir)), &workload, batch_max)
                        }
                        (true, "one", true) => run_here(
                            OneAtATime(durable(&engine_config, &workload, &dir)),
                            &workload,
                            batch_max,
                        ),
                        (true, "batch", false) => {
                            run(durable(&engine_config, &workload, &dir), &workload, batch_max)
                        }
                        (true, "batch", true) => {
                            run_here(durable(&engine_config, &workload, &dir), &workload, batch_max)
                        }
                        (false, "hinted", false) => {
                            run(Hinted(bare(&engine_config, &workload)), &workload, batch_max)
                        }
                        (false, "hinted", true) => {
                            run_here(Hinted(bare(&engine_config, &workload)), &workload, batch_max)
                        }
                        (true, "hinted", false) => {
                            run(Hinted(durable(&engine_config, &workload, &dir)), &workload, batch_max)
                        }
                        (true, "hinted", true) => {
                            run_here(Hinted(durable(&engine_config, &workload, &dir)), &workload, batch_max)
                        }
                        (_, other, _) => {
                            eprintln!("--modes takes one, batch and hinted, not {other:?}");
                            std::process::exit(2);
                        }
                    };
                    let _ = std::fs::remove_dir_all(&dir);
                    let journal_name = if journal { "on" } else { "off" };
                    println!(
                        "{:<10} {:<8} {:<6} {:>5} {:>16.3} {:>14.3} {:>9}",
                        resting,
                        journal_name,
                        mode,
                        round,
                        measured.cpu_rate / 1e6,
                        measured.wall_rate / 1e6,
                        measured.events.events
                    );
                    println!(
                        "{{\"bench\":\"runner\",\"resting\":{resting},\"journal\":\"{journal_name}\",\"mode\":\"{mode}\",\"round\":{round},\"cmd_per_cpu_s\":{},\"cmd_per_s\":{},\"events\":{},\"trades\":{}}}",
                        measured.cpu_rate, measured.wall_rate, measured.events.events, measured.events.trades
                    );
                    counts.push((measured.events.events, measured.events.trades));
                }
                assert!(
                    counts.windows(2).all(|pair| pair[0] == pair[1]),
                    "the modes emitted different (events, trades): {counts:?}"
                );
            }
        }
    }
    let _ = std::fs::remove_dir_all(&root);
}
