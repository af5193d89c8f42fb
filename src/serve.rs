//! `exchange serve`: the engine thread (with its journal), the router, and the gateway, from a
//! TOML configuration or the embedded defaults (`docs/config.md`).
//!
//! Start-up order: data directory → journal recovery (snapshot + replay) → engine thread →
//! router thread → QUIC endpoint and TCP acceptor. Account and symbol ids are fixed by the
//! journal (`accounts.txt`, `meta.json`), so a restart with a reordered configuration keeps
//! every account's orders its own.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use engine::{AccountId, EngineConfig, SymbolId, SymbolSpec};
use fix::session::SessionConfig;
use fix::session_store::{session_day, SessionMeta, SessionStore};
use gateway::parking::{OpenedSession, Parking};
use gateway::router::{Durability, EngineLink, Router, RouterConfig, RouterHandle};
use gateway::server::{Gateway, GatewayConfig, Routing};
use gateway::tls::ServerTls;
use gateway::venue::{hash_password, AccountConfig, Accounts, Symbols, Venue};
use journal::{DurableConfig, DurableEngine, DurableRecovery, JournalConfig, SyncPolicy};
use oms::admin::AdminConfig;
use oms::{OmsConfig, RateLimits};
use runtime::{Doorbell, InlineRunner, Runner, RunnerConfig, RunnerError, SystemClock, WaitStrategy};
use serde::Deserialize;

use crate::journal_meta;
use crate::names::Names;

/// Most accounts a venue lists.
pub const ACCOUNTS_MAX: usize = 1 << 16;

/// Start-up failures, each naming what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The configuration file is unreadable or invalid.
    #[error("config: {0}")]
    Config(String),
    /// The data directory or its journal could not be used.
    #[error("data directory {path}: {what}")]
    Data {
        /// The path.
        path: PathBuf,
        /// What went wrong.
        what: String,
    },
    /// The engine thread could not start.
    #[error("engine: {0}")]
    Engine(String),
    /// The gateway could not start.
    #[error("gateway: {0}")]
    Gateway(#[from] gateway::server::ServerError),
    /// The saved risk admin state (`DATA/risk-admin.json`) cannot be used.
    #[error("risk admin state {0}")]
    AdminState(#[from] oms::admin::StateFileError),
}

/// Why the journals could not be read back to rebuild order state.
#[derive(Debug, thiserror::Error)]
pub enum JournalReadError {
    /// A journal directory exists but cannot be opened.
    #[error("{journal} journal: {source}")]
    Open {
        /// `commands` or `events`.
        journal: &'static str,
        /// Why.
        source: journal::JournalError,
    },
    /// Reading a record failed (damage past recovery's reach).
    #[error("{journal} journal: {source}")]
    Read {
        /// `commands` or `events`.
        journal: &'static str,
        /// Why.
        source: journal::JournalError,
    },
    /// A record does not decode as what its journal holds.
    #[error("{what} {seq}: {source}")]
    Decode {
        /// `command` or `event`.
        what: &'static str,
        /// The record's sequence number.
        seq: u64,
        /// Why.
        source: engine::codec::CodecError,
    },
}

/// The whole configuration; every field has the embedded default.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// The venue's CompID.
    pub comp_id: String,
    /// Where the journal, snapshots and certificate live (`--data` overrides it).
    pub data_dir: PathBuf,
    /// Listening addresses.
    pub network: NetworkConfig,
    /// Certificate files; absent: a self-signed certificate in `<data>/tls`.
    pub tls: Option<TlsConfig>,
    /// Engine thread.
    pub engine: EngineSection,
    /// Journal.
    pub journal: JournalSection,
    /// FIX sessions.
    pub session: SessionSection,
    /// Pre-trade risk limits of accounts without their own.
    pub risk: risk::RiskLimits,
    /// Message rate limits.
    pub rate_limit: RateLimitSection,
    /// Market-data publisher bounds and policy.
    pub marketdata: crate::marketdata_run::MarketDataSection,
    /// Listed symbols (ids in this order, fixed by the journal once written).
    pub symbols: Vec<SymbolEntry>,
    /// Accounts.
    pub accounts: Vec<AccountEntry>,
    /// The ledger following the event journal (`[settlement]`).
    pub settlement: crate::settlement_run::SettlementSection,
    /// Deposits, withdrawals and refunds over the ledger (`[payments]`).
    pub payments: payments::PaymentsConfig,
}

/// Listening addresses.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// QUIC order entry.
    pub quic: SocketAddr,
    /// FIX over TCP; empty string disables it.
    pub tcp: String,
    /// The HTTP endpoint (metrics, health, dashboard, ledger API, WebSocket market data);
    /// empty string disables it.
    pub http: String,
    /// The binary order-by-order market-data feed (QUIC datagrams, ALPN `itch-md`); empty
    /// string disables it.
    pub md: String,
    /// quinn transport knobs (`[network.quic_tuning]`).
    pub quic_tuning: gateway::tls::QuicTuning,
    /// Spin before blocking: wherever the gateway thread would block in its poll (always,
    /// except with `engine.thread = "gateway"` and `router_wait` yield or busy-spin), it first
    /// keeps polling without blocking for this many µs after its last work. Requests closer together than this are served at busy-spin latency, for up to
    /// this much CPU per idle gap. 0 (the default) blocks at once: a 2-core machine has no core
    /// to spare.
    pub poll_spin_us: u64,
}

/// Certificate files.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificate chain PEM.
    pub cert: PathBuf,
    /// Private key PEM.
    pub key: PathBuf,
    /// Require client certificates signed by this CA (PEM).
    pub client_ca: Option<PathBuf>,
}

/// The engine thread.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineSection {
    /// Live orders bound.
    pub orders_max: usize,
    /// `park` (default, fits 2 cores: parks when idle, woken by its producers), `backoff` (sleeps and
    /// polls), `yield` or `busy-spin` (only on an isolated core).
    pub wait: WaitSetting,
    /// Pin the engine thread to this core (with `thread = "router"`, the router thread, which
    /// then runs the engine).
    pub pin_core: Option<usize>,
    /// Wait strategy of the router thread.
    pub router_wait: WaitSetting,
    /// Where the matching engine and the router run: `gateway` (default: both on the gateway
    /// thread, so a request is read, checked, matched, journaled and answered without waking
    /// another thread, which is what a machine with few cores needs), `router` (both on a
    /// router thread of their own, the gateway thread hands requests over) or `own` (the
    /// engine on its own thread fed through the command and event rings, the router on
    /// another: for a machine with cores to dedicate).
    pub thread: EngineThread,
}

// The settings below with a fixed set of values are enums, not strings: the TOML parser
// refuses any other value itself, naming the key's line and the values allowed
// ("unknown variant `nap`, expected one of `park`, `backoff`, `yield`, `busy-spin`"), and the
// code that uses them matches exhaustively instead of keeping an `other =>` arm in step.

/// A thread's wait strategy when it has nothing to do (`engine.wait`, `engine.router_wait`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WaitSetting {
    /// Park until a producer wakes it (fits 2 cores).
    Park,
    /// Sleep and poll.
    Backoff,
    /// Yield the core between polls.
    Yield,
    /// Poll without pause (only on an isolated core).
    BusySpin,
}

impl From<WaitSetting> for WaitStrategy {
    fn from(setting: WaitSetting) -> WaitStrategy {
        match setting {
            WaitSetting::Park => WaitStrategy::Park,
            WaitSetting::Backoff => WaitStrategy::Backoff,
            WaitSetting::Yield => WaitStrategy::Yield,
            WaitSetting::BusySpin => WaitStrategy::BusySpin,
        }
    }
}

/// Where the matching engine and the router run (`engine.thread`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineThread {
    /// Both on the gateway thread.
    Gateway,
    /// Both on a router thread of their own.
    Router,
    /// The engine on its own thread, the router on another.
    Own,
}

/// When the journal reaches the disk (`journal.sync`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SyncSetting {
    /// Written to the page cache; the OS writes it back.
    PageCache,
    /// `fdatasync` every `sync_interval_ms`.
    Periodic,
    /// A report waits for the sync of its command's group.
    GroupCommit,
}

/// Where the event journal is written (`journal.events`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventsSetting {
    /// Encoded and staged on the engine thread, published with each batch.
    Inline,
    /// Handed over a ring to a journal thread of their own.
    Thread,
    /// Derived again from the command journal by a follower engine on a thread of its own: the
    /// engine thread journals only commands.
    Derived,
}

/// The journal.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JournalSection {
    /// `page-cache` (default), `periodic` or `group-commit`.
    pub sync: SyncSetting,
    /// Interval of `periodic`.
    pub sync_interval_ms: u64,
    /// Segment size in MiB.
    pub segment_mib: usize,
    /// Snapshot every N commands (0: never).
    pub snapshot_every: u64,
    /// `inline` (default), `thread` or `derived`.
    pub events: EventsSetting,
    /// Who writes the command journal: `engine` (default: the engine thread, before it
    /// matches each command) or `router` (the router, before it pushes each command into the
    /// engine thread's ring; needs `engine.thread = "own"` and `events = "derived"`).
    pub commands: CommandsSetting,
}

/// Who writes the command journal (`journal.commands`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CommandsSetting {
    /// The thread that matches: staged before each command is matched, published with the
    /// batch.
    Engine,
    /// The router, before the engine thread's ring: the engine thread then does no journal
    /// work at all (with derived events).
    Router,
}

/// FIX sessions.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionSection {
    /// Largest message accepted, bytes.
    pub message_bytes_max: usize,
    /// Sent application messages kept for resend.
    pub resend_store_max: usize,
    /// Reject (35=3, 373=0/2) messages with tags the FIX 4.4 data dictionary does not allow in
    /// their MsgType. Off accepts and ignores such tags.
    pub validate_fields: bool,
    /// When a new session day starts, `HH:MM:SS` UTC (QuickFIX's StartTime): sequence numbers
    /// persist across connections within a day and start again from 1 at the first Logon of
    /// the next.
    pub reset_time: String,
}

/// Message rate limits: every session, every account (overridable per account).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitSection {
    /// Off: no rate limiting at all.
    pub enabled: bool,
    /// Each session's limit.
    pub session: ratelimit::LimitConfig,
    /// Each account's limit.
    pub account: ratelimit::LimitConfig,
    /// Most sessions and accounts tracked at once (idle ones are evicted).
    pub keys_max: usize,
}

impl Default for RateLimitSection {
    fn default() -> RateLimitSection {
        // A venue default generous enough for algorithmic clients, tight enough to stop a
        // runaway loop: 10,000 messages/s with bursts of 1,000; 50,000 refusals in 10 s log the
        // session out.
        let limit = ratelimit::LimitConfig {
            rate_per_sec: 10_000,
            burst: 1_000,
            abuse_rejects_max: 50_000,
            abuse_window_ms: 10_000,
        };
        RateLimitSection { enabled: true, session: limit, account: limit, keys_max: 65_536 }
    }
}

/// One symbol.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SymbolEntry {
    /// Name.
    pub name: String,
    /// Tick size as a decimal (`"0.01"`).
    pub tick: String,
    /// Lot size.
    #[serde(default = "one")]
    pub lot: u64,
    /// Reference price for risk's price band before the first trade (decimal).
    pub reference_price: Option<String>,
}

fn one() -> u64 {
    1
}

fn yes() -> bool {
    true
}

/// One account.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountEntry {
    /// Name.
    pub name: String,
    /// SenderCompID (default: the name).
    pub comp_id: Option<String>,
    /// Plain password (hashed at start-up with Argon2; a warning is printed).
    pub password: Option<String>,
    /// Argon2 PHC hash of the password (preferred).
    pub password_hash: Option<String>,
    /// Cancel resting orders when the session ends (default true).
    #[serde(default = "yes")]
    pub cancel_on_disconnect: bool,
    /// This account's risk limits (default: the `[risk]` table).
    pub risk: Option<risk::RiskLimits>,
    /// This account's message rate limit (default: `[rate_limit.account]`).
    pub rate_limit: Option<ratelimit::LimitConfig>,
    /// An operator account: it runs `exchange admin` (limits, kill switch) and never trades.
    #[serde(default)]
    pub admin: bool,
    /// A drop-copy account: its session receives a copy of every ExecutionReport of these
    /// accounts (by name), and it never trades.
    #[serde(default)]
    pub drop_copy: Vec<String>,
    /// A market-data-only account: its session subscribes to FIX market data (35=V) and every
    /// order it sends is refused.
    #[serde(default)]
    pub market_data_only: bool,
}

impl Default for ServeConfig {
    fn default() -> ServeConfig {
        let symbol = |name: &str| SymbolEntry {
            name: name.to_owned(),
            tick: "0.01".to_owned(),
            lot: 1,
            reference_price: None,
        };
        let account = |name: &str| AccountEntry {
            name: name.to_owned(),
            comp_id: None,
            password: Some(name.to_owned()),
            password_hash: None,
            cancel_on_disconnect: true,
            risk: None,
            rate_limit: None,
            admin: false,
            drop_copy: Vec::new(),
            market_data_only: false,
        };
        ServeConfig {
            comp_id: "EXCHANGE".to_owned(),
            data_dir: PathBuf::from("var"),
            network: NetworkConfig::default(),
            tls: None,
            engine: EngineSection::default(),
            journal: JournalSection::default(),
            session: SessionSection::default(),
            risk: risk::RiskLimits::default(),
            rate_limit: RateLimitSection::default(),
            marketdata: Default::default(),
            symbols: vec![symbol("BTC-USD"), symbol("ETH-USD"), symbol("AAPL")],
            accounts: ["alice", "bob", "carol", "dave"]
                .into_iter()
                .map(account)
                .chain([AccountEntry { admin: true, cancel_on_disconnect: false, ..account("admin") }])
                .collect(),
            settlement: crate::settlement_run::SettlementSection::default(),
            payments: crate::payments_run::default_section(),
        }
    }
}

impl Default for NetworkConfig {
    fn default() -> NetworkConfig {
        NetworkConfig {
            quic: "127.0.0.1:9878".parse().expect("literal"),
            tcp: "127.0.0.1:9877".to_owned(),
            http: "127.0.0.1:9880".to_owned(),
            md: "127.0.0.1:9879".to_owned(),
            quic_tuning: gateway::tls::QuicTuning::default(),
            poll_spin_us: 0,
        }
    }
}

impl Default for EngineSection {
    fn default() -> EngineSection {
        EngineSection {
            orders_max: 1 << 20,
            wait: WaitSetting::Park,
            pin_core: None,
            router_wait: WaitSetting::Park,
            thread: EngineThread::Gateway,
        }
    }
}

impl Default for JournalSection {
    fn default() -> JournalSection {
        JournalSection {
            sync: SyncSetting::PageCache,
            sync_interval_ms: 10,
            segment_mib: 64,
            snapshot_every: 1_000_000,
            events: EventsSetting::Inline,
            commands: CommandsSetting::Engine,
        }
    }
}

impl Default for SessionSection {
    fn default() -> SessionSection {
        let defaults = SessionConfig::default();
        SessionSection {
            message_bytes_max: defaults.message_bytes_max,
            resend_store_max: defaults.resend_store_max,
            validate_fields: defaults.validate_fields,
            reset_time: "00:00:00".into(),
        }
    }
}

/// The embedded defaults as a commented TOML file (`exchange serve --print-config`): parsing it
/// gives exactly [`ServeConfig::default`] (a unit test holds the two together).
pub const DEFAULT_CONFIG_TOML: &str = include_str!("serve_default.toml");

impl ServeConfig {
    /// Reads a TOML file; fields it leaves out keep their defaults.
    pub fn from_file(path: &Path) -> Result<ServeConfig, ServeError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ServeError::Config(format!("{}: {e}", path.display())))?;
        ServeConfig::from_toml(&text, &path.display().to_string())
    }

    /// Parses TOML text; `origin` (a file name) prefixes the error.
    pub fn from_toml(text: &str, origin: &str) -> Result<ServeConfig, ServeError> {
        toml::from_str(text).map_err(|e| ServeError::Config(format!("{origin}: {e}")))
    }
}

/// Refuses a `password_hash` that is not an Argon2 PHC string at start-up: accepted silently, it
/// would fail every logon of the account later with no hint why.
fn checked_password_hash(account: &str, hash: &str) -> Result<String, ServeError> {
    let refuse = |why: String| {
        ServeError::Config(format!(
            "account {account}: password_hash {why}; write the whole PHC string \
             ($argon2id$v=19$m=...,t=...,p=...$SALT$HASH) or use password = \"...\""
        ))
    };
    let parsed = argon2::PasswordHash::new(hash).map_err(|e| refuse(format!("does not parse ({e})")))?;
    if !parsed.algorithm.as_str().starts_with("argon2") || parsed.hash.is_none() {
        return Err(refuse(format!("is not an Argon2 hash (algorithm {})", parsed.algorithm)));
    }
    Ok(hash.to_owned())
}

/// The engine's symbol table from the configured symbols.
pub fn symbol_specs(entries: &[SymbolEntry]) -> Result<Vec<SymbolSpec>, ServeError> {
    if entries.is_empty() {
        return Err(ServeError::Config("no symbols listed".into()));
    }
    entries
        .iter()
        .map(|s| {
            let tick = engine::price_text::parse_units(&s.tick)
                .map_err(|e| e.to_string())
                .and_then(|t| if t.get() > 0 { Ok(t) } else { Err("not positive".into()) })
                .map_err(|why| {
                    ServeError::Config(format!(
                        "symbol {}: tick {:?} is not a positive price: {why}",
                        s.name, s.tick
                    ))
                })?;
            if s.lot == 0 {
                return Err(ServeError::Config(format!("symbol {}: lot must be positive", s.name)));
            }
            Ok(SymbolSpec::new(&s.name, tick, s.lot))
        })
        .collect()
}

/// What `serve` prints and tests read.
#[derive(Debug)]
pub struct ServerInfo {
    /// QUIC address bound.
    pub quic_addr: SocketAddr,
    /// The QUIC socket's kernel receive buffer, bytes (as the kernel reports it).
    pub quic_recv_buffer_bytes: usize,
    /// TCP address bound.
    pub tcp_addr: Option<SocketAddr>,
    /// HTTP address bound.
    pub http_addr: Option<SocketAddr>,
    /// The binary market-data feed's address, when enabled (`[network] md`).
    pub md_addr: Option<SocketAddr>,
    /// The data directory.
    pub data_dir: PathBuf,
    /// The certificate clients must trust.
    pub cert: PathBuf,
    /// Whether the certificate was created by this start.
    pub cert_created: bool,
    /// Accounts whose password came in plain text.
    pub plain_password_accounts: Vec<String>,
    /// Journal recovery at start-up.
    pub recovery: DurableRecovery,
    /// FIX session stores found corrupt at start-up (each named, with its offset; the session
    /// was reset).
    pub session_store_warnings: Vec<String>,
    /// Accounts whose orders were canceled at start-up: cancel-on-disconnect accounts whose
    /// session was logged on when the venue last stopped without a Logout.
    pub canceled_at_start: Vec<String>,
}

/// The `(watched, receiver)` pairs of every account's `drop_copy` list, by id.
fn drop_copies(config: &ServeConfig, names: &Names) -> Result<Vec<(AccountId, AccountId)>, ServeError> {
    let mut pairs = Vec::new();
    for a in config.accounts.iter().filter(|a| !a.drop_copy.is_empty()) {
        let receiver = names.account_id_of(&a.name).expect("configured accounts have ids");
        for watched in &a.drop_copy {
            let id = names.account_id_of(watched).ok_or_else(|| {
                ServeError::Config(format!(
                    "account {}: drop_copy names {watched:?}, which is not an account",
                    a.name
                ))
            })?;
            pairs.push((id, receiver));
        }
    }
    Ok(pairs)
}

/// Seconds after midnight of `HH:MM:SS`.
fn parse_reset_time(text: &str) -> Result<u32, ServeError> {
    let bad = || ServeError::Config(format!("session.reset_time {text:?}: use HH:MM:SS (UTC)"));
    let parts: Vec<&str> = text.split(':').collect();
    let [h, m, sec] = parts[..] else { return Err(bad()) };
    let field =
        |v: &str, max: u32| v.parse::<u32>().ok().filter(|&n| n < max && v.len() == 2).ok_or_else(bad);
    Ok(field(h, 24)? * 3600 + field(m, 60)? * 60 + field(sec, 60)?)
}

/// Every journaled command and event, decoded in order, handed to `take`.
fn read_journals(
    journal_dir: &Path,
    take: impl FnOnce(&mut dyn Iterator<Item = engine::Command>, &mut dyn Iterator<Item = engine::Event>),
) -> Result<(), JournalReadError> {
    use journal::JournalReader;
    let open = |journal: &'static str| -> Result<Option<JournalReader>, JournalReadError> {
        let dir = journal_dir.join(journal);
        if !dir.exists() {
            return Ok(None);
        }
        JournalReader::open_from_start(&dir)
            .map(Some)
            .map_err(|source| JournalReadError::Open { journal, source })
    };
    let (mut commands, mut events) = (open("commands")?, open("events")?);
    let mut error: Option<JournalReadError> = None;
    let mut next_command = std::iter::from_fn(|| {
        let reader = commands.as_mut()?;
        match reader.next_record() {
            Ok(Some(r)) => engine::Command::decode(r.payload)
                .map_err(|source| {
                    error = Some(JournalReadError::Decode { what: "command", seq: r.seq, source })
                })
                .ok(),
            Ok(None) => None,
            Err(e) => {
                error = Some(JournalReadError::Read { journal: "commands", source: e });
                None
            }
        }
    });
    let mut event_error: Option<JournalReadError> = None;
    let mut next_event = std::iter::from_fn(|| {
        let reader = events.as_mut()?;
        match reader.next_record() {
            Ok(Some(r)) => engine::Event::decode(r.payload)
                .map_err(|source| {
                    event_error = Some(JournalReadError::Decode { what: "event", seq: r.seq, source })
                })
                .ok(),
            Ok(None) => None,
            Err(e) => {
                event_error = Some(JournalReadError::Read { journal: "events", source: e });
                None
            }
        }
    });
    take(&mut next_command, &mut next_event);
    match error.or(event_error) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// What monitoring gets from `serve`: the counters file stages register into
/// (`DATA/monitor/counters.bin`, read by `exchange stat` and `/metrics`) and the health checks of
/// `/livez` and `/readyz`.
pub struct Monitor {
    /// Where stages register their counters, gauges and histograms (at start-up).
    pub registry: monitor::Registry,
    /// The named checks.
    pub health: monitor::health::Health,
    /// Ready once the journal is recovered (it is, by the time `serve` is up).
    pub journal_recovered: monitor::health::CheckHandle,
    /// Ready once the gateway listens.
    pub gateway_listening: monitor::health::CheckHandle,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor").field("metrics", &self.registry.len()).finish_non_exhaustive()
    }
}

impl Monitor {
    fn create(data_dir: &Path) -> Result<Monitor, MonitorError> {
        use monitor::health::{Health, Probe};
        let registry = monitor::Registry::create(&monitor::counters_path(data_dir))?;
        let health = Health::new();
        let journal_recovered = health.register(Probe::Ready, "journal_recovered", true)?;
        let gateway_listening = health.register(Probe::Ready, "gateway_listening", false)?;
        Ok(Monitor { registry, health, journal_recovered, gateway_listening })
    }

    /// A `/readyz` check a satellite keeps (registered failing).
    fn ready_check(&self, name: &str) -> Result<monitor::health::CheckHandle, ServeError> {
        self.health
            .register(monitor::health::Probe::Ready, name, false)
            .map_err(|e| ServeError::Config(format!("monitor health: {e}")))
    }

    /// The router's and the gateway's handles, registered in the counters file.
    /// The router also refreshes the journals' metrics and counts open orders per symbol.
    fn stage_metrics(
        &mut self,
        journals: [(&str, journal::JournalProgress); 2],
        symbols: &[SymbolSpec],
    ) -> Result<(gateway::metrics::RouterMetrics, gateway::metrics::GatewayMetrics), monitor::CountersError>
    {
        let mut router = gateway::metrics::RouterMetrics::register(&mut self.registry)?;
        for (name, progress) in journals {
            router.watch_journal(gateway::metrics::JournalMetrics::register(
                &mut self.registry,
                name,
                progress,
            )?);
        }
        let names: Vec<&str> = symbols.iter().map(|s| s.name.as_str()).collect();
        router.watch_symbols(&mut self.registry, &names)?;
        Ok((router, gateway::metrics::GatewayMetrics::register(&mut self.registry)?))
    }

    fn routes(&self) -> axum::Router {
        monitor::http::router(monitor::http::MonitorState {
            counters: self.registry.reader(),
            health: self.health.clone(),
        })
    }
}

/// Why monitoring could not start.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// The counters file.
    #[error("monitor counters: {0}")]
    Counters(#[from] monitor::CountersError),
    /// A health check.
    #[error("monitor health: {0}")]
    Health(#[from] monitor::health::HealthError),
}

/// A running venue.
#[derive(Debug)]
pub struct Server {
    /// Addresses and paths.
    pub info: ServerInfo,
    /// Health checks and the counters registry stages register into.
    pub monitor: Monitor,
    /// The ledger following the journal; `None` with `[settlement] enabled = false`.
    pub settlement: Option<crate::settlement_run::SettlementRun>,
    http: Option<crate::http::HttpServer>,
    /// The market-data thread (journal follower feeding the WebSocket feed).
    pub marketdata: Option<crate::marketdata_run::MarketDataRun>,
    /// The binary market-data feed's endpoint (`[network] md`).
    pub md_quic: Option<crate::md_quic::MdQuic>,
    gateway: Option<Gateway>,
    router: Option<RouterHandle>,
    engine: Option<JoinHandle<DurableEngine>>,
    /// Whether the journals still take writes: once one fails the engine stops, and the host
    /// must stop the venue with the reason (`journal_failure`).
    journal_health: journal::JournalHealth,
}

impl Server {
    /// Why the engine stopped, once a journal write failed (disk full, I/O error, the data
    /// directory gone): the venue can no longer journal orders, so it must not take them.
    /// `None` while the journals work.
    pub fn journal_failure(&self) -> Option<String> {
        self.journal_health.failure()
    }

    /// Starts everything; `data_dir` overrides the configuration's.
    pub fn start(config: &ServeConfig, data_dir: Option<&Path>) -> Result<Server, ServeError> {
        config.validate().map_err(|e| ServeError::Config(e.to_string()))?;
        let reset_offset_s = parse_reset_time(&config.session.reset_time)?;
        let data_dir = data_dir.map_or_else(|| config.data_dir.clone(), Path::to_path_buf);
        let data_err = |what: String| ServeError::Data { path: data_dir.clone(), what };
        std::fs::create_dir_all(&data_dir).map_err(|e| data_err(e.to_string()))?;
        let journal_dir = data_dir.join("journal");

        // Symbols and account ids are the journal's, when it has them.
        let symbols = symbol_specs(&config.symbols)?;
        if journal_dir.join("meta.json").exists() {
            let journaled = journal_meta::read_meta(&journal_dir).map_err(|e| data_err(e.to_string()))?;
            if journaled != symbols {
                return Err(data_err(
                    "the configured symbols differ from the journal's meta.json (ids are fixed once journaled)".into(),
                ));
            }
        } else {
            journal_meta::write_meta(&journal_dir, &symbols).map_err(|e| data_err(e.to_string()))?;
        }
        let mut names = Names::new(&symbols, ACCOUNTS_MAX);
        journal_meta::read_accounts(&journal_dir, &mut names).map_err(|e| data_err(e.to_string()))?;
        let known = names.accounts_len();
        for a in &config.accounts {
            names
                .account_id(&a.name)
                .ok_or_else(|| ServeError::Config(format!("more than {ACCOUNTS_MAX} accounts")))?;
        }
        journal_meta::append_accounts(&journal_dir, &names, known).map_err(|e| data_err(e.to_string()))?;
        let mut plain_password_accounts = Vec::new();
        let mut accounts = Vec::with_capacity(names.accounts_len());
        for id in 0..names.accounts_len() as u32 {
            let name = names.account_name(AccountId(id)).to_owned();
            let entry = config.accounts.iter().find(|a| a.name == name);
            let account = match entry {
                Some(a) => {
                    let password_hash = match (&a.password_hash, &a.password) {
                        (Some(hash), _) => checked_password_hash(&a.name, hash)?,
                        (None, Some(plain)) => {
                            plain_password_accounts.push(a.name.clone());
                            hash_password(plain)
                                .map_err(|e| ServeError::Config(format!("account {}: {e}", a.name)))?
                        }
                        (None, None) => {
                            return Err(ServeError::Config(format!(
                                "account {}: password or password_hash needed",
                                a.name
                            )))
                        }
                    };
                    AccountConfig {
                        comp_id: a.comp_id.clone().unwrap_or_else(|| a.name.clone()),
                        name,
                        password_hash,
                        cancel_on_disconnect: a.cancel_on_disconnect,
                        admin: a.admin,
                        drop_copy: !a.drop_copy.is_empty(),
                        market_data_only: a.market_data_only,
                    }
                }
                // Journaled but no longer configured: kept for its id, cannot log on.
                None => AccountConfig {
                    comp_id: String::new(),
                    name,
                    password_hash: String::new(),
                    cancel_on_disconnect: true,
                    admin: false,
                    drop_copy: false,
                    market_data_only: false,
                },
            };
            accounts.push(account);
        }

        // The engine with its journal.
        let sync = match config.journal.sync {
            SyncSetting::PageCache => SyncPolicy::PageCache,
            SyncSetting::Periodic => SyncPolicy::Periodic {
                interval: std::time::Duration::from_millis(config.journal.sync_interval_ms.max(1)),
            },
            SyncSetting::GroupCommit => SyncPolicy::GroupCommit,
        };
        let engine_config = EngineConfig {
            symbols: symbols.clone(),
            orders_max: config.engine.orders_max,
            ..EngineConfig::default()
        };
        engine_config.validate().map_err(|e| ServeError::Config(format!("engine: {e}")))?;
        let router_journals = config.journal.commands == CommandsSetting::Router;
        if router_journals
            && (config.engine.thread != EngineThread::Own || config.journal.events != EventsSetting::Derived)
        {
            return Err(ServeError::Config(
                "journal.commands = \"router\" needs engine.thread = \"own\" (a ring between the router and the engine) and journal.events = \"derived\" (no event journal on the engine thread)".into(),
            ));
        }
        let durable_config = DurableConfig {
            dir: journal_dir.clone(),
            journal: JournalConfig {
                segment_size_bytes: config.journal.segment_mib << 20,
                sync,
                ..JournalConfig::default()
            },
            snapshot_every_commands: config.journal.snapshot_every,
            event_thread: config.journal.events == EventsSetting::Thread,
            derive_events: config.journal.events == EventsSetting::Derived,
        };
        // A long replay shows its progress on a terminal (never in a pipe or a log).
        let bar = crate::progress::Progress::of("commands replayed", true);
        let mut progress = |replayed: u64, total: u64| {
            bar.set_total(total);
            bar.set(replayed);
        };
        let (durable, recovery) =
            DurableEngine::open_with_progress(engine_config, durable_config, &mut progress)
                .map_err(|e| data_err(format!("journal: {e}")))?;
        drop(bar);
        let mut durable = durable;
        let mut router_journal = match router_journals {
            true => Some(durable.split_command_journal().map_err(|e| data_err(format!("journal: {e}")))?),
            false => None,
        };
        let seq_first = durable.next_command_seq();
        let journal_health = durable.health();
        let event_last = durable.engine().next_event_seq() - 1;
        // Monitoring first: each stage registers its handles before its thread starts.
        let mut monitor = Monitor::create(&data_dir).map_err(|e| data_err(e.to_string()))?;
        let md_metrics = crate::stage_metrics::MarketDataMetrics::register(&mut monitor.registry)
            .map_err(|e| data_err(e.to_string()))?;
        let marketdata = start_marketdata(
            &config.marketdata,
            &journal_dir,
            durable.events_progress(),
            &symbols,
            md_metrics,
        )?;
        marketdata.ready_check(monitor.ready_check("marketdata_caught_up")?);
        // With `journal.events = "derived"` the router's side (the gateway after its writes, or
        // the router's own thread) rings the market-data thread before the deriver has written a
        // turn's events: the deriver rings it too, after writing them.
        durable.on_events_journaled({
            let bell = marketdata.doorbell().clone();
            move || bell.ring()
        });

        // Persistent FIX sessions: each account's numbers, sent messages, and the last event
        // reported to it. A new store starts after every event journaled so far.
        let now = gateway::server::now_ns();
        let fresh = SessionMeta {
            in_seq_next: 1,
            out_seq_next: 1,
            last_event_seq: event_last,
            session_day: session_day(now, reset_offset_s),
            connected: false,
        };
        let sessions_dir = data_dir.join("sessions");
        let mut opened = Vec::new();
        let mut reported = vec![event_last; accounts.len()];
        let mut cancel_at_start = Vec::new();
        let mut canceled_at_start = Vec::new();
        let mut session_store_warnings = Vec::new();
        for (id, account) in accounts.iter().enumerate() {
            if account.comp_id.is_empty() {
                continue;
            }
            let o =
                SessionStore::open(&sessions_dir, &account.comp_id, fresh, config.session.resend_store_max)
                    .map_err(|e| data_err(e.to_string()))?;
            if let Some(e) = o.corruption {
                session_store_warnings.push(e.to_string());
            }
            let meta = o.store.meta();
            reported[id] = meta.last_event_seq;
            if meta.connected && account.cancel_on_disconnect && !account.admin {
                cancel_at_start.push(AccountId(id as u32));
                canceled_at_start.push(account.name.clone());
            }
            opened.push(OpenedSession {
                account: AccountId(id as u32),
                comp_id: account.comp_id.clone(),
                store: o.store,
                state: o.state,
            });
        }
        let (risk, admin) = build_risk(config, &symbols, &names, &data_dir)?;
        let progress = durable.commands_progress();
        let events_progress = durable.events_progress();
        let engine_error = |e: RunnerError| ServeError::Engine(e.to_string());
        let engine_wait = WaitStrategy::from(config.engine.wait);
        let hosted = config.engine.thread == EngineThread::Gateway;
        let (link, doorbell, engine, router_pin) = match config.engine.thread {
            EngineThread::Own => {
                let runner_config = RunnerConfig {
                    wait: engine_wait,
                    pin_core: config.engine.pin_core,
                    seq_first,
                    ..RunnerConfig::default()
                };
                let (handle, engine) = Runner::spawn(durable, runner_config).map_err(engine_error)?;
                let link = EngineLink::Rings {
                    commands: handle.commands,
                    events: handle.events,
                    doorbell: handle.commands_doorbell,
                    journal: router_journal.take().map(Box::new),
                };
                (link, handle.events_doorbell, Some(engine), None)
            }
            _ => {
                let inline = InlineRunner::new(durable, SystemClock, seq_first).map_err(engine_error)?;
                let link = EngineLink::Inline(Box::new(inline));
                (link, Arc::new(Doorbell::new()), None, config.engine.pin_core)
            }
        };
        let router_wait = WaitStrategy::from(config.engine.router_wait);
        let (router_metrics, gateway_metrics) = monitor
            .stage_metrics([("commands", progress.clone()), ("events", events_progress)], &symbols)
            .map_err(|e| data_err(e.to_string()))?;
        let account_names: Vec<String> = accounts.iter().map(|a| a.name.clone()).collect();
        let mut settlement = crate::settlement_run::SettlementRun::open(
            &config.settlement,
            &data_dir,
            &account_names,
            &symbols,
        )
        .map_err(|e| ServeError::Config(e.to_string()))?;
        if let Some(s) = settlement.as_mut() {
            s.start_payments(&config.payments).map_err(|e| ServeError::Config(e.to_string()))?;
        }
        let oms = OmsConfig {
            funds: settlement.as_ref().map(|s| s.funds()),
            seq_first,
            accounts: accounts.len(),
            symbols: symbols.clone(),
            cancel_at_start,
            drop_copies: drop_copies(config, &names)?,
            risk: Some(risk),
            admin,
            rate_limit: config.rate_limit.enabled.then(|| RateLimits {
                session: config.rate_limit.session,
                account: config.rate_limit.account,
                account_overrides: config
                    .accounts
                    .iter()
                    .filter_map(|a| Some((names.account_id_of(&a.name)?, a.rate_limit?)))
                    .collect(),
                keys_max: config.rate_limit.keys_max,
            }),
        };
        let router_config = RouterConfig {
            oms,
            pin_core: router_pin,
            doorbell,
            wait: router_wait,
            durability: Some(Durability { progress, group_commit: matches!(sync, SyncPolicy::GroupCommit) }),
            metrics: Some(router_metrics),
        };
        let router_error = |e: std::io::Error| ServeError::Engine(format!("router: {e}"));
        let (mut router, tx) = Router::new(link, router_config).map_err(router_error)?;
        // The market-data thread parks until events are journaled: the router rings it.
        router.ring_after_events(marketdata.doorbell().clone());
        // Order state and undelivered reports, from the journals: every live order keeps its
        // owner, ClOrdID chain and fills across the restart.
        read_journals(&journal_dir, |commands, events| router.rebuild(commands, events, reported))
            .map_err(|e| data_err(format!("rebuilding order state: {e}")))?;
        let (routing, router) = if hosted {
            (Routing::Hosted(Box::new(router), tx), None)
        } else {
            let handle = gateway::router::spawn_built(router, tx).map_err(router_error)?;
            (Routing::Thread(handle.inbound.clone()), Some(handle))
        };

        // The gateway.
        let (tls, cert_created) = match &config.tls {
            Some(t) => (
                ServerTls { cert: t.cert.clone(), key: t.key.clone(), client_ca: t.client_ca.clone() },
                false,
            ),
            None => {
                ServerTls::self_signed_in(&data_dir.join("tls")).map_err(|e| ServeError::Gateway(e.into()))?
            }
        };
        let md_quic =
            start_md_quic(config, &marketdata, &tls, &journal_dir, &symbols, &mut monitor.registry)?;
        let tcp = match config.network.tcp.trim() {
            "" => None,
            addr => Some(addr.parse().map_err(|e| ServeError::Config(format!("network.tcp {addr:?}: {e}")))?),
        };
        let venue = Arc::new(Venue {
            symbols: Symbols::new(symbols),
            accounts: Accounts::new(accounts),
            session: SessionConfig {
                our_comp_id: config.comp_id.clone(),
                message_bytes_max: config.session.message_bytes_max,
                resend_store_max: config.session.resend_store_max,
                validate_fields: config.session.validate_fields,
            },
        });
        let gateway_config = GatewayConfig {
            quic: config.network.quic,
            tcp,
            tls: tls.clone(),
            quic_tuning: config.network.quic_tuning.clone(),
            // A hosted router waits as configured for it; otherwise the gateway blocks in its poll.
            wait: if hosted { router_wait } else { WaitStrategy::Park },
            poll_spin: std::time::Duration::from_micros(config.network.poll_spin_us),
            market_data: Some(gateway::server::GatewayMarketData {
                events_dir: journal_dir.join("events"),
                config: crate::marketdata_run::fix_md_config(&config.marketdata)
                    .map_err(|e| ServeError::Config(e.to_string()))?,
            }),
        };
        let parking = Parking::new(venue.session.clone(), opened, reset_offset_s, now);
        let gateway = Gateway::start_monitored(&gateway_config, venue, routing, parking, gateway_metrics)?;
        monitor.gateway_listening.set(true);
        if let Some(s) = settlement.as_mut() {
            s.monitor(&mut monitor.registry).map_err(|e| data_err(e.to_string()))?;
            s.ready_check(monitor.ready_check("settlement_caught_up")?);
            s.start().map_err(|e| ServeError::Config(e.to_string()))?;
        }
        let http = match config.network.http.trim() {
            "" => None,
            addr => {
                let addr =
                    addr.parse().map_err(|e| ServeError::Config(format!("network.http {addr:?}: {e}")))?;
                let mut routes =
                    crate::http::HttpRoutes::new().merge(monitor.routes()).merge(marketdata.routes());
                if let Some(s) = &settlement {
                    routes = routes.merge(s.routes());
                }
                Some(
                    crate::http::HttpServer::start(addr, routes)
                        .map_err(|e| ServeError::Config(e.to_string()))?,
                )
            }
        };
        Ok(Server {
            info: ServerInfo {
                quic_addr: gateway.quic_addr,
                quic_recv_buffer_bytes: gateway.quic_buffer_bytes.0,
                tcp_addr: gateway.tcp_addr,
                http_addr: http.as_ref().map(|h| h.addr),
                md_addr: md_quic.as_ref().map(|m| m.addr),
                data_dir,
                cert: tls.cert,
                cert_created,
                plain_password_accounts,
                recovery,
                session_store_warnings,
                canceled_at_start,
            },
            monitor,
            settlement,
            http,
            marketdata: Some(marketdata),
            md_quic,
            gateway: Some(gateway),
            router,
            engine,
            journal_health,
        })
    }

    /// Stops the gateway, then the router, then the engine (which flushes its journal).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.http.take();
        self.md_quic.take();
        self.marketdata.take();
        self.settlement.take();
        if let Some(g) = self.gateway.take() {
            g.stop();
        }
        if let Some(r) = self.router.take() {
            r.stop();
        }
        if let Some(e) = self.engine.take() {
            let _ = e.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The market-data thread on the event journal, from event 1.
fn start_marketdata(
    section: &crate::marketdata_run::MarketDataSection,
    journal_dir: &Path,
    events_written: journal::JournalProgress,
    symbols: &[SymbolSpec],
    metrics: crate::stage_metrics::MarketDataMetrics,
) -> Result<crate::marketdata_run::MarketDataRun, ServeError> {
    use crate::marketdata_run::{publisher_config, MarketDataRun};
    let config = publisher_config(section, symbols).map_err(|e| ServeError::Config(e.to_string()))?;
    let events_dir = journal_dir.join("events");
    MarketDataRun::start(&events_dir, Some(events_written), symbols.to_vec(), config, metrics)
        .map_err(|e| ServeError::Data { path: events_dir, what: e.to_string() })
}

/// The binary market-data feed on `[network] md`, reading the market-data thread's publisher.
fn start_md_quic(
    config: &ServeConfig,
    marketdata: &crate::marketdata_run::MarketDataRun,
    tls: &ServerTls,
    journal_dir: &Path,
    symbols: &[SymbolSpec],
    registry: &mut monitor::Registry,
) -> Result<Option<crate::md_quic::MdQuic>, ServeError> {
    use crate::md_quic::{MdQuic, MdQuicConfig};
    let addr = match config.network.md.trim() {
        "" => return Ok(None),
        addr => addr.parse().map_err(|e| ServeError::Config(format!("network.md {addr:?}: {e}")))?,
    };
    let publisher = crate::marketdata_run::publisher_config(&config.marketdata, symbols)
        .map_err(|e| ServeError::Config(e.to_string()))?;
    let md_config = MdQuicConfig {
        addr,
        tls: tls.clone(),
        tuning: config.network.quic_tuning.clone(),
        events_dir: journal_dir.join("events"),
        feed: publisher.feed,
        symbols: symbols.to_vec(),
        drop_datagram_every: config.marketdata.drop_datagram_every,
    };
    let metrics = crate::stage_metrics::BinaryFeedMetrics::register(registry)
        .map_err(|e| ServeError::Config(e.to_string()))?;
    MdQuic::start(md_config, marketdata.feed().clone(), marketdata.published_wake().clone(), metrics)
        .map(Some)
        .map_err(|e| ServeError::Config(e.to_string()))
}

/// Risk's configuration: the venue's default limits, and room to track every open order the
/// engine may hold (a smaller bound would refuse, `risk_capacity`, orders the engine has room for).
fn risk_config(config: &ServeConfig, symbols: &[SymbolSpec], names: &Names) -> risk::RiskConfig {
    let mut risk_config = risk::RiskConfig::new(symbols.to_vec(), names.accounts_len() as u32);
    risk_config.default_limits = config.risk.clone();
    risk_config.orders_max = config.engine.orders_max;
    risk_config
}

/// The risk engine with the configured limits, then the run-time admin changes saved in
/// `<data>/risk-admin.json` (limits set and kill switches engaged by `exchange admin`), its
/// exposure rebuilt from the event journal so a restart keeps every open order's reservation
/// and every position.
fn build_risk(
    config: &ServeConfig,
    symbols: &[SymbolSpec],
    names: &Names,
    data_dir: &Path,
) -> Result<(risk::RiskEngine, AdminConfig), ServeError> {
    let journal_dir = data_dir.join("journal");
    let bad = |what: String| ServeError::Config(format!("risk: {what}"));
    let mut risk =
        risk::RiskEngine::new(risk_config(config, symbols, names)).map_err(|e| bad(e.to_string()))?;
    for a in &config.accounts {
        if let (Some(limits), Some(id)) = (&a.risk, names.account_id_of(&a.name)) {
            risk.set_limits(id, limits.clone()).map_err(|e| bad(format!("account {}: {e}", a.name)))?;
        }
    }
    let accounts = names.accounts_len();
    let entry =
        |id: usize| config.accounts.iter().find(|a| a.name == names.account_name(AccountId(id as u32)));
    let mut admin = AdminConfig {
        admins: (0..accounts).map(|id| entry(id).is_some_and(|a| a.admin)).collect(),
        configured: (0..accounts).map(|id| entry(id).and_then(|a| a.risk.clone())).collect(),
        changed: vec![false; accounts],
        names: (0..accounts).map(|id| names.account_name(AccountId(id as u32)).to_owned()).collect(),
        state_path: Some(data_dir.join("risk-admin.json")),
    };
    let state_path = admin.state_path.clone().expect("set above");
    let saved = oms::admin::load_state(&state_path)?;
    for (name, saved) in saved.accounts {
        let Some(id) = names.account_id_of(&name) else {
            tracing::warn!("{} names account {name}, which is not configured; ignored", state_path.display());
            continue;
        };
        if let Some(limits) = saved.limits {
            risk.set_limits(id, limits)
                .map_err(|e| bad(format!("{} account {name}: {e}", state_path.display())))?;
            admin.changed[id.index()] = true;
        }
        if saved.killed {
            risk.kill(id).map_err(|e| bad(e.to_string()))?;
        }
    }
    for (id, s) in config.symbols.iter().enumerate() {
        if let Some(text) = &s.reference_price {
            let units = engine::price_text::parse_units(text).map_err(|e| {
                bad(format!("symbol {}: reference_price {text:?} is not a price: {e}", s.name))
            })?;
            risk.set_reference_price(SymbolId(id as u32), units)
                .map_err(|e| bad(format!("symbol {}: {e}", s.name)))?;
        }
    }
    let events_dir = journal_dir.join("events");
    let data_err = |what: String| ServeError::Data { path: events_dir.clone(), what };
    let mut reader =
        journal::JournalReader::open_from_start(&events_dir).map_err(|e| data_err(e.to_string()))?;
    while let Some(record) = reader.next_record().map_err(|e| data_err(e.to_string()))? {
        if record.kind == journal::RecordKind::Event {
            let event = engine::Event::decode(record.payload).map_err(|e| data_err(e.to_string()))?;
            risk.on_event(&event);
        }
    }
    Ok((risk, admin))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn risk_tracks_as_many_open_orders_as_the_engine_holds() {
        // Risk once kept its own default (65,536) and refused `risk_capacity` on a venue
        // whose engine had room for a million orders.
        let mut config = ServeConfig::default();
        config.engine.orders_max = 300_000;
        let symbols = symbol_specs(&config.symbols).unwrap();
        let names = Names::new(&symbols, 4);
        let risk = risk::RiskEngine::new(risk_config(&config, &symbols, &names)).unwrap();
        assert_eq!(risk.orders_max(), 300_000);
    }

    #[test]
    fn the_printed_defaults_are_the_embedded_defaults() {
        let printed = ServeConfig::from_toml(DEFAULT_CONFIG_TOML, "embedded").unwrap();
        assert_eq!(format!("{printed:#?}"), format!("{:#?}", ServeConfig::default()));
    }

    #[test]
    fn a_password_hash_that_does_not_parse_names_the_account() {
        let e = checked_password_hash("alice", "$argon2id$v=19$...").unwrap_err().to_string();
        assert!(e.contains("account alice") && e.contains("does not parse"), "{e}");
        let e = checked_password_hash("bob", "hunter2").unwrap_err().to_string();
        assert!(e.contains("account bob"), "{e}");
        let good = hash_password("alice").unwrap();
        assert_eq!(checked_password_hash("alice", &good).unwrap(), good);
    }
}
