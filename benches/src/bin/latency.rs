//! The latency harness on its own: the modes of `exchange bench <mode>`, for building and running
//! without the rest of the `exchange` binary
//! (`cargo run --release -p exchange-bench --bin latency -- engine --quick`), plus `peers`, which
//! only this binary has: our engine, matchcore and orderbook-rs side by side
//! (`cargo run --release -p exchange-bench --bin latency -- peers --quick`).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use exchange_bench::peers_single_thread::{self, PeersArgs};
use harness::latency::{exit_code, run, BenchMode};

#[derive(Parser)]
#[command(name = "latency", about = "Latency harness: open loop, HDR histograms, peers side by side")]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

// Parsed once at start-up: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Mode {
    #[command(flatten)]
    Harness(BenchMode),
    /// The same command stream through our engine, matchcore and orderbook-rs, single thread,
    /// each command timed on its own (service time, closed loop).
    Peers(PeersArgs),
}

fn main() -> ExitCode {
    match Cli::parse().mode {
        Mode::Harness(mode) => run(mode),
        Mode::Peers(args) => exit_code(peers_single_thread::run(&args)),
    }
}
