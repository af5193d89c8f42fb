//! `exchange`: the command-line entry point (see README.md for every subcommand).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use engine::EngineConfig;
use exchange::match_run::{run_match, MatchOptions};
use exchange::replay_run::{run_replay, ReplayOptions};
use journal::{DurableConfig, JournalConfig, SyncPolicy};

#[derive(Parser)]
#[command(name = "exchange", version, about = "Low-latency exchange core")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the venue: matching engine, journal, router and FIX gateway (QUIC and TCP), on the
    /// embedded defaults or a TOML configuration; prints its ports, paths and the `--ca` clients
    /// need. By default one gateway thread reads, checks, matches, journals and answers each
    /// request (`[engine] thread` moves the engine and router to threads of their own).
    Serve {
        /// TOML configuration (symbols, accounts, ports, journal, pinning); every field is
        /// optional and defaults to the embedded demo venue (see --print-config, docs/config.md).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Data directory (journal, snapshots, certificate); overrides the configuration's.
        #[arg(long)]
        data: Option<PathBuf>,
        /// Print the embedded default configuration (a commented TOML file that runs
        /// unchanged with --config) and exit.
        #[arg(long, conflicts_with_all = ["config", "data", "quic", "tcp", "http", "md"])]
        print_config: bool,
        /// FIX over QUIC listening address; overrides `[network] quic`.
        #[arg(long, value_name = "ADDR")]
        quic: Option<std::net::SocketAddr>,
        /// FIX over TCP listening address, "" to turn TCP off; overrides `[network] tcp`.
        #[arg(long, value_name = "ADDR")]
        tcp: Option<String>,
        /// HTTP address (metrics, health, dashboard, ledger API, WebSocket market data), "" to
        /// turn it off; overrides `[network] http`.
        #[arg(long, value_name = "ADDR")]
        http: Option<String>,
        /// Binary market-data feed address (QUIC datagrams), "" to turn it off; overrides
        /// `[network] md`.
        #[arg(long, value_name = "ADDR")]
        md: Option<String>,
        /// Log lines (start-up, recovery, logons, admin, stop) on stderr as text or JSON lines.
        #[arg(long, value_enum, default_value = "text")]
        log_format: exchange::logging::LogFormat,
    },
    /// Print every counter of the venue's shared-memory counters file each second.
    Stat(monitor::stat::StatArgs),
    /// The live book and tape of one symbol from the market-data feed, redrawn in place on a
    /// terminal; `--check` verifies every sequence number and checksum.
    Md(exchange::md_cli::MdArgs),
    /// Send one order over FIX/QUIC and print its execution reports.
    Order(exchange::fix_client::OrderArgs),
    /// Interactive FIX/QUIC client: new orders of every type, cancel, replace, status; reads
    /// commands from a terminal or a script.
    #[command(after_help = exchange::fix_client::CLIENT_HELP)]
    Client(exchange::fix_client::ClientArgs),
    /// Venue administration with an admin account: show and change risk limits, engage and
    /// release an account's kill switch.
    Admin(exchange::admin_cli::AdminArgs),
    /// The settlement ledger: balances, entries or a settlement batch from its store (while the
    /// venue is stopped); deposits, withdrawals, refunds and payments through a running venue's
    /// HTTP API; a new API key.
    Ledger(exchange::ledger_cli::LedgerArgs),
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
        /// No progress display (shown on a terminal only) and no summary line.
        #[arg(long)]
        quiet: bool,
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
        /// Emit no events and no progress display (verify and time only).
        #[arg(long)]
        quiet: bool,
        /// Bound on live orders.
        #[arg(long, default_value_t = 1 << 20)]
        orders_max: usize,
    },
    /// The latency harness: open loop, HDR histograms and a rate ramp
    /// (results under --out, default bench-out/).
    #[command(subcommand)]
    Bench(harness::latency::BenchMode),
    /// Run a built-in strategy against the flow recorded in a journal; write its report (JSON)
    /// and equity curve (SVG).
    Backtest(exchange::backtest_run::BacktestArgs),
    /// Write a seeded command file of a few minutes of multi-account flow on the built-in
    /// symbols (books, sweeps, cancels, price moves), for match, replay and backtest.
    Gen {
        /// Output file (JSON Lines); standard output when absent.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Seed: the same options give the same file, byte for byte.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Commands after the book-building phase.
        #[arg(long, default_value_t = 50_000)]
        commands: usize,
        /// Resting orders the books are built to and held near.
        #[arg(long, default_value_t = 600)]
        resting: usize,
        /// Accounts (acct01 …).
        #[arg(long, default_value_t = 20)]
        accounts: u32,
        /// Symbols, from BTC-USD, ETH-USD, AAPL (1 to 3).
        #[arg(long, default_value_t = 3)]
        symbols: u32,
        /// Minutes the timestamps span.
        #[arg(long, default_value_t = 5)]
        minutes: u64,
    },
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
                // Saturates so an absurd size is the journal's range error, not an overflow.
                segment_size_bytes: self.segment_mib.saturating_mul(1 << 20),
                sync,
                ..JournalConfig::default()
            },
            snapshot_every_commands: self.snapshot_every,
            event_thread: false,
            derive_events: false,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Serve { print_config: true, .. } => {
            print!("{}", exchange::serve::DEFAULT_CONFIG_TOML);
            ExitCode::SUCCESS
        }
        Cmd::Serve { config, data, quic, tcp, http, md, log_format, .. } => {
            exchange::logging::init(log_format);
            serve(config, data, Listen { quic, tcp, http, md })
        }
        Cmd::Stat(args) => monitor::stat::main(&args),
        Cmd::Md(args) => match exchange::md_cli::main(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e @ exchange::md_cli::MdError::Check(_)) => {
                eprintln!("md: {e}");
                ExitCode::from(1)
            }
            Err(e) => {
                eprintln!("md: error: {e}");
                ExitCode::from(2)
            }
        },
        Cmd::Order(args) => match exchange::fix_client::order(&args) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(1),
            Err(e) => {
                eprintln!("order: error: {e}");
                ExitCode::from(2)
            }
        },
        Cmd::Ledger(args) => match exchange::ledger_cli::ledger(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ledger: error: {e}");
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
        Cmd::Bench(mode) => harness::latency::run(mode),
        Cmd::Backtest(args) => exchange::backtest_run::main(&args),
        Cmd::Gen { out, seed, commands, resting, accounts, symbols, minutes } => {
            let opts = exchange::gen_run::GenOptions {
                seed,
                accounts,
                symbols,
                commands,
                resting_orders: resting,
                minutes,
                out,
            };
            match exchange::gen_run::run_gen(&opts) {
                Ok(s) => {
                    eprintln!("gen: {} commands; matched, they make {} trades", s.lines, s.trades);
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("gen: error: {e}");
                    ExitCode::from(2)
                }
            }
        }
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
        Cmd::Match {
            commands,
            events,
            book,
            strict,
            orders_max,
            accounts_max,
            journal,
            journal_opts,
            quiet,
        } => {
            let opts = MatchOptions {
                commands,
                events,
                book,
                strict,
                engine: EngineConfig { orders_max, ..EngineConfig::default() },
                accounts_max,
                journal: journal.map(|dir| journal_opts.durable_config(dir)),
                progress: !quiet,
            };
            match run_match(&opts) {
                Ok(_) if quiet => ExitCode::SUCCESS,
                Ok(s) => {
                    eprintln!(
                        "match: {} commands, {} events ({} trades, {} rejects), {} lines skipped",
                        s.commands, s.events, s.trades, s.rejects, s.lines_skipped
                    );
                    if s.lines_with_unknown_fields > 0 {
                        eprintln!(
                            "match: {} lines name fields the command format does not have (see the warnings)",
                            s.lines_with_unknown_fields
                        );
                    }
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

/// The listening addresses given on the command line, each overriding its `[network]` field.
struct Listen {
    quic: Option<std::net::SocketAddr>,
    tcp: Option<String>,
    http: Option<String>,
    md: Option<String>,
}

fn serve(config: Option<PathBuf>, data: Option<PathBuf>, listen: Listen) -> ExitCode {
    use exchange::serve::{ServeConfig, Server};
    let mut config = match config {
        Some(path) => match ServeConfig::from_file(&path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("serve: error: {e}");
                return ExitCode::from(2);
            }
        },
        None => ServeConfig::default(),
    };
    if let Some(quic) = listen.quic {
        config.network.quic = quic;
    }
    if let Some(tcp) = listen.tcp {
        config.network.tcp = tcp;
    }
    if let Some(http) = listen.http {
        config.network.http = http;
    }
    if let Some(md) = listen.md {
        config.network.md = md;
    }
    // SIGINT and SIGTERM are caught from here on, before recovery: one that arrives while the
    // venue starts stops it cleanly once it has started (a Logout to every session, no
    // cancel-on-disconnect at the next start) instead of killing it half-way.
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("serve: error: {e}");
            return ExitCode::from(2);
        }
    };
    let signals = {
        let _entered = rt.enter();
        use tokio::signal::unix::{signal, SignalKind};
        signal(SignalKind::interrupt()).and_then(|i| Ok((i, signal(SignalKind::terminate())?)))
    };
    let (mut interrupt, mut terminate) = match signals {
        Ok(s) => s,
        Err(e) => {
            eprintln!("serve: error: cannot catch SIGINT/SIGTERM: {e}");
            return ExitCode::from(2);
        }
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
    tracing::info!(
        commands_replayed = r.commands_replayed,
        snapshot_seq = ?r.snapshot_seq,
        data = %info.data_dir.display(),
        "journal recovered"
    );
    println!("data: {}", info.data_dir.display());
    println!(
        "journal: recovered {} commands after snapshot {:?}; next command seq resumes there; commands journaled by the {}",
        r.commands_replayed,
        r.snapshot_seq,
        match config.journal.commands {
            exchange::serve::CommandsSetting::Engine => "engine thread",
            exchange::serve::CommandsSetting::Router => "router, before the engine's ring",
        }
    );
    println!(
        "certificate: {}{}",
        info.cert.display(),
        if info.cert_created { " (self-signed, created now)" } else { "" }
    );
    println!("clients: {}", client_trust_hint(info));
    println!("fix/quic: {}", info.quic_addr);
    // Linux reports twice what was granted; less than asked means net.core.rmem_max capped it.
    if info.quic_recv_buffer_bytes / 2 < gateway::quic::UDP_BUFFER_BYTES {
        tracing::warn!(
            "the QUIC socket's receive buffer is {} bytes (asked for {}): bursts beyond it are \
             dropped and resent after a loss timeout; raise it with sysctl -w net.core.rmem_max={}",
            info.quic_recv_buffer_bytes / 2,
            gateway::quic::UDP_BUFFER_BYTES,
            gateway::quic::UDP_BUFFER_BYTES
        );
    }
    if let Some(tcp) = info.tcp_addr {
        println!("fix/tcp: {tcp}");
    }
    if let Some(http) = info.http_addr {
        println!("http: http://{http}/ (metrics, health, dashboard)");
    }
    if let Some(md) = info.md_addr {
        println!("md/quic: {md} (binary market data, ALPN itch-md)");
    }
    for warning in &info.session_store_warnings {
        tracing::warn!("{warning}");
    }
    if !info.canceled_at_start.is_empty() {
        println!(
            "sessions: orders of {} canceled (cancel-on-disconnect: logged on when the venue stopped without a Logout)",
            info.canceled_at_start.join(", ")
        );
    }
    if !info.plain_password_accounts.is_empty() {
        tracing::warn!(
            "accounts {} have plain-text demo passwords (password = account name on the embedded defaults)",
            info.plain_password_accounts.join(", ")
        );
    }
    println!("ready; Ctrl-C to stop");
    let journal_failed = rt.block_on(async {
        // A journal write failure stops the engine; orders it cannot journal must not be taken,
        // so the venue stops too, saying why (checked every 50 ms: one atomic load).
        let journal_failure = async {
            loop {
                if let Some(why) = server.journal_failure() {
                    break why;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        };
        tokio::select! {
            _ = interrupt.recv() => None,
            _ = terminate.recv() => None,
            why = journal_failure => Some(why),
        }
    });
    if let Some(why) = journal_failed {
        tracing::error!("journal write failed, the venue stops taking orders: {why}");
        eprintln!("serve: error: the journal cannot be written ({why}); the venue stopped so that no order is acknowledged unjournaled");
        server.stop();
        return ExitCode::from(1);
    }
    tracing::info!("stopping");
    server.stop();
    ExitCode::SUCCESS
}

/// The exact flag a client needs to trust this venue's certificate, as absolute paths, so it
/// works from any directory.
fn client_trust_hint(info: &exchange::serve::ServerInfo) -> String {
    let absolute = |p: &std::path::Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let ca = format!("--ca {}", absolute(&info.cert).display());
    if info.cert == info.data_dir.join("tls").join("cert.pem") {
        format!("{ca}   (or --data {})", absolute(&info.data_dir).display())
    } else {
        ca
    }
}
