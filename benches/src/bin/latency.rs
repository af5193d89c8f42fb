//! The latency harness on its own: the same as `exchange bench <mode>`, for building and running
//! without the rest of the `exchange` binary
//! (`cargo run --release -p exchange-bench --bin latency -- engine --quick`).

use std::process::ExitCode;

use clap::Parser;
use exchange_bench::latency::{run, BenchMode};

#[derive(Parser)]
#[command(name = "latency", about = "Latency harness: open loop, HDR histograms, peers side by side")]
struct Cli {
    #[command(subcommand)]
    mode: BenchMode,
}

fn main() -> ExitCode {
    run(Cli::parse().mode)
}
