//! `exchange`: the command-line entry point (see README.md for every subcommand).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use engine::EngineConfig;
use exchange::match_run::{run_match, MatchOptions};

#[derive(Parser)]
#[command(name = "exchange", version, about = "Low-latency exchange core")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a command file (JSON Lines) through the engine in-process, no network.
    Match {
        /// Command file, one JSON command per line.
        #[arg(long)]
        commands: PathBuf,
        /// Write events (JSON Lines) here instead of standard output.
        #[arg(long)]
        events: Option<PathBuf>,
        /// Write the final book of every symbol (JSON) here.
        #[arg(long)]
        book: Option<PathBuf>,
        /// Stop at the first bad line (exit status 2) instead of reporting and skipping it.
        #[arg(long)]
        strict: bool,
        /// Bound on live orders across all symbols.
        #[arg(long, default_value_t = 1 << 20)]
        orders_max: usize,
        /// Bound on distinct account names in the file.
        #[arg(long, default_value_t = 1 << 16)]
        accounts_max: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Match { commands, events, book, strict, orders_max, accounts_max } => {
            let opts = MatchOptions {
                commands,
                events,
                book,
                strict,
                engine: EngineConfig { orders_max, ..EngineConfig::default() },
                accounts_max,
            };
            match run_match(&opts) {
                Ok(s) => {
                    eprintln!(
                        "match: {} commands, {} events ({} trades, {} rejects), {} lines skipped",
                        s.commands, s.events, s.trades, s.rejects, s.lines_skipped
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("match: error: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}
