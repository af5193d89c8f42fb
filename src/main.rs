//! `exchange`: the command-line entry point (see README.md for every subcommand).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use engine::journal::{JournalConfig, SyncPolicy};
use engine::{DurableConfig, EngineConfig};
use exchange::match_run::{run_match, MatchOptions};
use exchange::replay_run::{run_replay, ReplayOptions};

#[derive(Parser)]
#[command(name = "exchange", version, about = "Low-latency exchange core")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the venue: engine thread, journal, router and FIX gateway (QUIC and TCP), on the
    /// embedded defaults or a TOML configuration; prints its ports and paths.
    Serve {
        /// TOML configuration (symbols, accounts, ports, journal, pinning); every field is
        /// optional and defaults to the embedded demo venue.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Data directory (journal, snapshots, certificate); overrides the configuration's.
        #[arg(long)]
        data: Option<PathBuf>,
    },
    /// Print every counter of the venue's shared-memory counters file each second.
    Stat(monitor::stat::StatArgs),
    /// Send one order over FIX/QUIC and print its execution reports.
    Order(exchange::fix_client::OrderArgs),
    /// Interactive FIX/QUIC client: new, cancel, replace, status.
    Client(exchange::fix_client::ClientArgs),
    /// Venue administration with an admin account: show and change risk limits, engage and
    /// release an account's kill switch.
    Admin(exchange::admin_cli::AdminArgs),
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
        /// Journal commands, events and snapshots into this new (or empty) directory.
        #[arg(long)]
        journal: Option<PathBuf>,
        #[command(flatten)]
        journal_opts: JournalOpts,
    },
    /// Rebuild state from a journal directory, verify it against the event journal, and emit
    /// the events (byte-identical to the original run's).
    Replay {
        /// Journal directory.
        #[arg(long)]
        journal: PathBuf,
        /// Write events (JSON Lines) here instead of standard output.
        #[arg(long)]
        events: Option<PathBuf>,
        /// Write the final book of every symbol (JSON) here.
        #[arg(long)]
        book: Option<PathBuf>,
        /// Stop after this command sequence number.
        #[arg(long)]
        until_seq: Option<u64>,
        /// Emit no events (verify and time only).
        #[arg(long)]
        quiet: bool,
        /// Bound on live orders.
        #[arg(long, default_value_t = 1 << 20)]
        orders_max: usize,
    },
    /// The latency harness: open loop, HDR histograms, a rate ramp, peers side by side
    /// (results under --out, default bench-out/).
    #[command(subcommand)]
    Bench(exchange_bench::latency::BenchMode),
    /// Run a built-in strategy against the flow recorded in a journal; write its report (JSON)
    /// and equity curve (SVG).
    Backtest(exchange::backtest_run::BacktestArgs),
}

/// When journal writes count as durable.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum SyncMode {
    /// Process-crash safe: the OS page cache holds every record (the default).
    PageCache,
    /// A background thread msyncs every `--sync-interval-ms`.
    Periodic,
    /// Records are msynced before their events are acknowledged.
    GroupCommit,
}

#[derive(Args)]
struct JournalOpts {
    /// Journal segment size in MiB.
    #[arg(long, default_value_t = 64)]
    segment_mib: usize,
    /// Durability policy of the journal.
    #[arg(long, value_enum, default_value_t = SyncMode::PageCache)]
    sync: SyncMode,
    /// Interval of the periodic sync.
    #[arg(long, default_value_t = 10)]
    sync_interval_ms: u64,
    /// Write an engine snapshot every N commands (0: never).
    #[arg(long, default_value_t = 1_000_000)]
    snapshot_every: u64,
}

impl JournalOpts {
    fn durable_config(&self, dir: PathBuf) -> DurableConfig {
        let sync = match self.sync {
            SyncMode::PageCache => SyncPolicy::PageCache,
            SyncMode::Periodic => {
                SyncPolicy::Periodic { interval: std::time::Duration::from_millis(self.sync_interval_ms) }
            }
            SyncMode::GroupCommit => SyncPolicy::GroupCommit,
        };
        DurableConfig {
            dir,
            journal: JournalConfig {
                segment_size_bytes: self.segment_mib << 20,
                sync,
                ..JournalConfig::default()
            },
            snapshot_every_commands: self.snapshot_every,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Serve { config, data } => serve(config, data),
        Cmd::Stat(args) => monitor::stat::main(&args),
        Cmd::Order(args) => match exchange::fix_client::order(&args) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(1),
            Err(e) => {
                eprintln!("order: error: {e}");
                ExitCode::from(2)
            }
        },
        Cmd::Admin(args) => match exchange::admin_cli::admin(&args) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(1),
            Err(e) => {
                eprintln!("admin: error: {e}");
                ExitCode::from(2)
            }
        },
        Cmd::Client(args) => match exchange::fix_client::client(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("client: error: {e}");
                ExitCode::from(2)
            }
        },
        Cmd::Bench(mode) => exchange_bench::latency::run(mode),
        Cmd::Backtest(args) => exchange::backtest_run::main(&args),
        Cmd::Replay { journal, events, book, until_seq, quiet, orders_max } => {
            let started = std::time::Instant::now();
            match run_replay(&ReplayOptions { journal, events, book, until_seq, quiet, orders_max }) {
                Ok(s) => {
                    let secs = started.elapsed().as_secs_f64();
                    eprintln!(
                        "replay: {} commands, {} events ({} verified against the event journal) in {:.3} s",
                        s.commands, s.events, s.events_verified, secs
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("replay: error: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Cmd::Match { commands, events, book, strict, orders_max, accounts_max, journal, journal_opts } => {
            let opts = MatchOptions {
                commands,
                events,
                book,
                strict,
                engine: EngineConfig { orders_max, ..EngineConfig::default() },
                accounts_max,
                journal: journal.map(|dir| journal_opts.durable_config(dir)),
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

fn serve(config: Option<PathBuf>, data: Option<PathBuf>) -> ExitCode {
    use exchange::serve::{ServeConfig, Server};
    let config = match config {
        Some(path) => match ServeConfig::from_file(&path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("serve: error: {e}");
                return ExitCode::from(2);
            }
        },
        None => ServeConfig::default(),
    };
    let server = match Server::start(&config, data.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("serve: error: {e}");
            return ExitCode::from(2);
        }
    };
    let info = &server.info;
    let r = &info.recovery;
    println!("data: {}", info.data_dir.display());
    println!(
        "journal: recovered {} commands after snapshot {:?}; next command seq resumes there",
        r.commands_replayed, r.snapshot_seq
    );
    println!(
        "certificate: {}{}",
        info.cert.display(),
        if info.cert_created { " (self-signed, created now)" } else { "" }
    );
    println!("fix/quic: {}", info.quic_addr);
    // Linux reports twice what was granted; less than asked means net.core.rmem_max capped it.
    if info.quic_recv_buffer_bytes / 2 < gateway::quic::UDP_BUFFER_BYTES {
        eprintln!(
            "warning: the QUIC socket's receive buffer is {} bytes (asked for {}): bursts beyond it are \
             dropped and resent after a loss timeout; raise it with sysctl -w net.core.rmem_max={}",
            info.quic_recv_buffer_bytes / 2,
            gateway::quic::UDP_BUFFER_BYTES,
            gateway::quic::UDP_BUFFER_BYTES
        );
    }
    if let Some(tcp) = info.tcp_addr {
        println!("fix/tcp: {tcp}");
    }
    if !info.plain_password_accounts.is_empty() {
        eprintln!(
            "warning: accounts {} have plain-text demo passwords (password = account name on the embedded defaults)",
            info.plain_password_accounts.join(", ")
        );
    }
    println!("ready; Ctrl-C to stop");
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("serve: error: {e}");
            return ExitCode::from(2);
        }
    };
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
    });
    eprintln!("serve: stopping");
    server.stop();
    ExitCode::SUCCESS
}
