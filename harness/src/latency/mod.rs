//! The latency harness behind `exchange bench <mode>`: open loop, HDR histograms, a rate ramp,
//! a state check after every run, and results as a table, JSON, an HdrHistogram interval log and
//! an SVG percentile plot.
//!
//! ```text
//!  mode          path measured                                    loop
//!  engine        harness ─▶ command ring ─▶ engine thread ─▶ event ring ─▶ harness   open, rate ramp
//!  udp-baseline  harness ─▶ loopback UDP ─▶ echo thread ─▶ loopback UDP ─▶ harness   open, rate ramp
//! ```
//!
//! `exchange-bench` adds a closed-loop `peers` mode on the same output (our engine, matchcore and
//! orderbook-rs called directly, one command at a time), so the venue never links a peer.
//!
//! Open loop ([`driver`]): request `i` of a run at `rate` has the planned send time
//! `t0 + i / rate`; the harness sends it as soon as that time has come, whether or not earlier
//! requests have completed, and its latency is counted from the *planned* time. A stall anywhere
//! (the engine, the ring, the harness itself being descheduled) therefore shows up in the
//! latency of every request planned during it: no coordinated omission.
//!
//! A new mode (the gateway's `e2e`) is one more module: implement [`driver::Target`] (send
//! request `i`, report completions) and call [`driver::ramp`] and [`output::write_all`].
#![allow(clippy::too_many_arguments)]

pub mod driver;
pub mod e2e;
pub mod output;
pub mod peer;
pub mod series;
pub mod svg;
pub mod through_rings;
pub mod udp_baseline;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use runtime::WaitStrategy;

use crate::gen::Mix;
use driver::RampPlan;

/// Why a bench run could not be completed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Reading or writing a file, or a socket operation, failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The engine thread could not be started.
    #[error("engine runner: {0}")]
    Runner(#[from] runtime::RunnerError),
    /// A flag's value cannot be used.
    #[error("bad arguments: {0}")]
    Config(String),
    /// A thread of the harness died.
    #[error("{0}")]
    Thread(String),
}

impl BenchError {
    /// An I/O error with what was being done.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> BenchError {
        BenchError::Io { what: what.into(), source }
    }
}

/// `exchange bench <mode>`.
#[derive(Subcommand, Debug)]
pub enum BenchMode {
    /// Commands through the inbound ring into the engine thread and back through the outbound
    /// ring (no network), open loop, rate ramp.
    Engine(EngineArgs),
    /// Raw UDP ping-pong on loopback through an echo thread, open loop, rate ramp: the floor for
    /// any networked mode on this machine.
    UdpBaseline(UdpArgs),
    /// FIX order → acknowledgement through a running venue (`exchange serve`, started unless
    /// --addr is given) over QUIC or TCP, open loop, rate ramp.
    E2e(e2e::E2eArgs),
}

/// Flags every mode has: where results go, how long, which seed.
#[derive(Args, Debug, Clone)]
pub struct OutputArgs {
    /// A short run (well under a minute): fewer rates, shorter phases, smaller streams.
    #[arg(long)]
    pub quick: bool,
    /// Directory for the JSON results, the HdrHistogram log, the .hgrm files and the SVG plot.
    #[arg(long, default_value = "bench-out")]
    pub out: PathBuf,
    /// Seed of the command generator.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Pin the harness thread (sender and receiver) to this core.
    #[arg(long)]
    pub harness_core: Option<usize>,
}

/// Flags of the open-loop rate ramp.
#[derive(Args, Debug, Clone)]
pub struct RampArgs {
    /// Rates to try, in requests per second, in order (default depends on the mode and --quick).
    #[arg(long, value_delimiter = ',')]
    pub rates: Vec<u64>,
    /// Stop the ramp after the first rate whose p50 exceeds this many microseconds.
    #[arg(long, default_value_t = 1_000.0)]
    pub p50_limit_us: f64,
    /// Warm-up at each rate before recording, in milliseconds (default 200; 50 with --quick).
    #[arg(long)]
    pub warmup_ms: Option<u64>,
    /// Recorded phase at each rate, in milliseconds (default 1000; 250 with --quick).
    #[arg(long)]
    pub measure_ms: Option<u64>,
    /// Most requests in one run (warm-up included): caps memory at high rates by shortening
    /// the phases (default 4,000,000; 1,500,000 with --quick).
    #[arg(long)]
    pub requests_max: Option<u64>,
    /// Pause before each rate, in milliseconds: lets a shared machine (other processes, or the
    /// kernel's real-time throttling when run under `chrt`) recover before the next rate.
    #[arg(long, default_value_t = 0)]
    pub pause_ms: u64,
    /// How the harness waits between sends: spin (accurate send times, one busy core) or yield.
    #[arg(long, value_enum, default_value_t = SenderWait::Spin)]
    pub sender_wait: SenderWait,
}

impl RampArgs {
    /// Warm-up and recorded phase lengths and the request cap, with the --quick defaults.
    pub fn phases(&self, quick: bool) -> (u64, u64, u64) {
        let warmup_ms = self.warmup_ms.unwrap_or(if quick { 50 } else { 200 });
        let measure_ms = self.measure_ms.unwrap_or(if quick { 250 } else { 1_000 }).max(1);
        let requests_max = self.requests_max.unwrap_or(if quick { 1_500_000 } else { 4_000_000 });
        (warmup_ms, measure_ms, requests_max)
    }

    /// The whole ramp: the flags' rates (or the mode's defaults), phases and stop rules.
    pub fn plan(
        &self,
        quick: bool,
        rates_quick: &[u64],
        rates_default: &[u64],
    ) -> Result<RampPlan, BenchError> {
        let (warmup_ms, measure_ms, requests_max) = self.phases(quick);
        Ok(RampPlan {
            rates: self.rates_or(if quick { rates_quick } else { rates_default })?,
            warmup_ms,
            measure_ms,
            requests_max,
            p50_limit_ns: (self.p50_limit_us * 1_000.0) as u64,
            keep_up_ratio: 0.95,
            pause: std::time::Duration::from_millis(self.pause_ms),
        })
    }

    /// The ramp's rates: the flag's, or `default`.
    pub fn rates_or(&self, default: &[u64]) -> Result<Vec<u64>, BenchError> {
        let rates = if self.rates.is_empty() { default.to_vec() } else { self.rates.clone() };
        if rates.contains(&0) {
            return Err(BenchError::Config("a rate must be at least 1 request/s".into()));
        }
        Ok(rates)
    }
}

/// How the harness thread waits while no request is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SenderWait {
    /// Busy-spin: sends leave within ~50 ns of their planned time; takes a whole core.
    Spin,
    /// `yield_now` between polls: leaves the core to others when they want it.
    Yield,
}

/// The command mixes of [`crate::gen`], as a flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MixArg {
    /// exchange-core's: 9% GTC, 3% IOC, 6% cancel, 82% move.
    ExchangeCore,
    /// Multi-level sweeps refilled by GTC orders.
    SweepHeavy,
    /// Orders that come and go without trading.
    CancelHeavy,
}

impl MixArg {
    /// The generator's mix.
    pub fn mix(self) -> Mix {
        match self {
            MixArg::ExchangeCore => Mix::exchange_core(),
            MixArg::SweepHeavy => Mix::sweep_heavy(),
            MixArg::CancelHeavy => Mix::cancel_heavy(),
        }
    }
}

/// Flags that shape the generated command stream.
#[derive(Args, Debug, Clone)]
pub struct WorkloadArgs {
    /// Command mix.
    #[arg(long, value_enum, default_value_t = MixArg::ExchangeCore)]
    pub mix: MixArg,
    /// Number of symbols (order books).
    #[arg(long, default_value_t = 1)]
    pub symbols: u32,
    /// Resting orders in all books together (default 1,000 per symbol).
    #[arg(long)]
    pub resting: Option<usize>,
}

impl WorkloadArgs {
    /// Total resting orders.
    pub fn resting_total(&self) -> usize {
        self.resting.unwrap_or(1_000 * self.symbols.max(1) as usize)
    }
}

/// The engine thread's wait strategy, as a flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum WaitArg {
    /// Spin forever (needs a core of its own).
    BusySpin,
    /// Spin a little, then yield.
    Yield,
    /// Spin, yield, then sleep up to 50 µs (the default: the machine's cores are shared).
    Backoff,
}

impl WaitArg {
    /// The engine's strategy.
    pub fn strategy(self) -> WaitStrategy {
        match self {
            WaitArg::BusySpin => WaitStrategy::BusySpin,
            WaitArg::Yield => WaitStrategy::Yield,
            WaitArg::Backoff => WaitStrategy::Backoff,
        }
    }

    /// The flag's spelling.
    pub fn name(self) -> &'static str {
        match self {
            WaitArg::BusySpin => "busy-spin",
            WaitArg::Yield => "yield",
            WaitArg::Backoff => "backoff",
        }
    }
}

/// `exchange bench engine`.
#[derive(Args, Debug, Clone)]
pub struct EngineArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub output: OutputArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub ramp: RampArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub workload: WorkloadArgs,
    /// How the engine thread waits for commands.
    #[arg(long, value_enum, default_value_t = WaitArg::Backoff)]
    pub wait: WaitArg,
    /// Pin the engine thread to this core (default: unpinned).
    #[arg(long)]
    pub pin_core: Option<usize>,
    /// Capacity of the command ring.
    #[arg(long, default_value_t = 4_096)]
    pub command_ring: usize,
    /// Capacity of the event ring.
    #[arg(long, default_value_t = 16_384)]
    pub event_ring: usize,
    /// Most commands the engine takes per batch.
    #[arg(long, default_value_t = 64)]
    pub batch_max: usize,
}

/// `exchange bench udp-baseline`.
#[derive(Args, Debug, Clone)]
pub struct UdpArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub output: OutputArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub ramp: RampArgs,
    /// Datagram size in bytes (a FIX NewOrderSingle is ~150-250 bytes).
    #[arg(long, default_value_t = 200)]
    pub payload_bytes: usize,
    /// Pin the echo thread to this core.
    #[arg(long)]
    pub echo_core: Option<usize>,
    /// How the echo thread waits for a datagram: block in `recv_from` (like a venue that
    /// parks, the default) or busy-spin on a non-blocking socket (like `--venue-wait
    /// busy-spin`): compare each venue wait with the echo that waits the same way.
    #[arg(long, value_enum, default_value_t = EchoWait::Block)]
    pub echo_wait: EchoWait,
}

/// How the UDP baseline's echo thread waits, as a flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum EchoWait {
    /// Blocking `recv_from`: every datagram after an idle gap wakes the thread.
    Block,
    /// Non-blocking `recv_from` in a loop: no wake-up, one core busy.
    BusySpin,
}

/// How the run used the machine: printed before the results and stored in the JSON.
#[derive(Clone, Debug)]
pub struct MachineUse {
    /// Cores this process may run on.
    pub cores_available: usize,
    /// What each thread of the run was pinned to and how it waited, e.g.
    /// `("engine", "unpinned, backoff")`.
    pub threads: Vec<(String, String)>,
}

impl MachineUse {
    /// Cores available to this process, and no threads yet.
    pub fn detect() -> MachineUse {
        let cores_available = core_affinity::get_core_ids()
            .map(|ids| ids.len())
            .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
            .unwrap_or(1);
        MachineUse { cores_available, threads: Vec::new() }
    }

    /// Adds a thread's description.
    pub fn thread(&mut self, name: &str, how: String) {
        self.threads.retain(|(n, _)| n != name);
        self.threads.push((name.to_owned(), how));
    }

    /// One line for humans.
    pub fn describe(&self) -> String {
        let threads: Vec<String> = self.threads.iter().map(|(n, h)| format!("{n}: {h}")).collect();
        format!("{} core(s) available; {}", self.cores_available, threads.join("; "))
    }

    /// The JSON object.
    pub fn json(&self) -> serde_json::Value {
        let threads: serde_json::Map<String, serde_json::Value> =
            self.threads.iter().map(|(n, h)| (n.clone(), serde_json::Value::String(h.clone()))).collect();
        serde_json::json!({
            "cores_available": self.cores_available,
            "threads": threads,
            "os": std::env::consts::OS,
            "arch": std::env::consts::ARCH,
        })
    }
}

/// A flag value as it is written on the command line (`busy-spin`), for the results.
pub fn flag_name(value: impl ValueEnum) -> String {
    value.to_possible_value().map_or_else(String::new, |v| v.get_name().to_owned())
}

/// Checks that the harness may be pinned to `core` and says how the harness thread runs, for
/// [`MachineUse`]. The pinning itself happens in [`on_harness_thread`].
pub fn describe_harness(core: Option<usize>, wait: &str) -> Result<String, BenchError> {
    match core {
        None => Ok(format!("unpinned, {wait}")),
        Some(core) => {
            let allowed: Vec<usize> =
                core_affinity::get_core_ids().unwrap_or_default().into_iter().map(|c| c.id).collect();
            if !allowed.contains(&core) {
                return Err(BenchError::Config(format!(
                    "--harness-core {core}: allowed cores are {allowed:?}"
                )));
            }
            Ok(format!("pinned to core {core}, {wait}"))
        }
    }
}

/// Runs `work` as the harness: on the calling thread when `core` is `None`, otherwise on a
/// scoped thread pinned to `core`. The calling thread itself is never pinned, so the threads it
/// starts later (the engine runner, which checks its core against the caller's allowed cores,
/// and the echo thread) are not confined to the harness's core.
pub fn on_harness_thread<R: Send>(
    core: Option<usize>,
    work: impl FnOnce() -> R + Send,
) -> Result<R, BenchError> {
    let Some(core) = core else {
        return Ok(work());
    };
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name("harness".into())
            .spawn_scoped(scope, move || {
                if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
                    eprintln!("bench: the OS refused to pin the harness to core {core}; it runs unpinned");
                }
                work()
            })
            .map_err(|e| BenchError::io("start the harness thread", e))?;
        thread.join().map_err(|_| BenchError::Thread("the harness thread panicked".into()))
    })
}

/// Whether to draw progress bars: only when a person is watching standard output.
pub fn progress_visible() -> bool {
    std::io::stdout().is_terminal()
}

/// Runs one `exchange bench` mode. Exit status: 0 when every state check passed, 1 when a check
/// failed, 2 when the run could not be done (bad flags, I/O).
pub fn run(mode: BenchMode) -> ExitCode {
    exit_code(match mode {
        BenchMode::Engine(args) => through_rings::run(&args),
        BenchMode::UdpBaseline(args) => udp_baseline::run(&args),
        BenchMode::E2e(args) => e2e::run(&args),
    })
}

/// The exit status of a mode's outcome: 0 when every state check passed, 1 when one failed
/// (said on stderr), 2 when the run could not be done (the error on stderr).
pub fn exit_code(result: Result<bool, BenchError>) -> ExitCode {
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("bench: a state check FAILED (see above and the JSON file)");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("bench: error: {e}");
            ExitCode::from(2)
        }
    }
}
