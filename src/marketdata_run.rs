//! The market-data thread of `serve`: it follows the event journal from event 1 (the
//! projection is a function of every event, so it must see them all), feeds each event to the
//! shared [`WsFeed`] and publishes a heartbeat every [`HEARTBEAT_INTERVAL`]. It only reads the
//! journal's files, so it never slows the gateway or the engine: when nothing is new it sleeps
//! [`IDLE_SLEEP`] (no spinning on a core shared with the venue).
//!
//! The WebSocket feed's routes ([`MarketDataRun::routes`]) go onto the shared HTTP endpoint.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use engine::SymbolSpec;
use marketdata::{FeedConfig, ProjectionConfig, Publisher, PublisherConfig, SlowPolicy, WsFeed};

/// How long the thread sleeps when the journal has nothing new: the bound on the delay it adds
/// to an event's publication when idle.
pub const IDLE_SLEEP: Duration = Duration::from_micros(500);

/// How often a heartbeat carries each channel's last sequence to the subscribers.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);

/// Events applied between two looks at the stop flag and the heartbeat clock while catching up.
const CATCH_UP_BATCH: u32 = 4096;

/// Why the market-data thread could not start.
#[derive(Debug, thiserror::Error)]
pub enum MarketDataError {
    /// The event journal could not be opened for tailing.
    #[error("market data: cannot follow the event journal {path}: {source}")]
    Journal {
        /// The journal's directory.
        path: PathBuf,
        /// The cause.
        source: journal::JournalError,
    },
    /// The thread could not be spawned.
    #[error("market data: cannot start its thread: {0}")]
    Spawn(std::io::Error),
}

/// The running market-data thread and the feed it drives; stops when dropped.
pub struct MarketDataRun {
    feed: Arc<WsFeed>,
    stop: Arc<AtomicBool>,
    status: Arc<Status>,
    thread: Option<JoinHandle<()>>,
}

/// What the thread reports to the rest of `serve` (and tests).
#[derive(Debug, Default)]
struct Status {
    /// Seq of the last event applied.
    applied_seq: AtomicU64,
    /// Set when the thread stopped on an error it cannot continue past (the feed would lie).
    failure: Mutex<Option<String>>,
}

/// `[marketdata]` of the serve configuration.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MarketDataSection {
    /// Feed messages a subscriber may fall behind before `slow_policy` applies (the length of
    /// the publisher's shared log, which also bounds what a retransmission can serve).
    pub queue_len_max: usize,
    /// `conflate` (the slow subscriber's queue becomes a fresh snapshot) or `disconnect`
    /// (dropped with the reason).
    pub slow_policy: String,
    /// Levels per side the book checksum covers; 0 sends no checksums.
    pub checksum_depth: u16,
    /// Subscribers at once, over every feed.
    pub subscribers_max: usize,
    /// FIX market data: symbol subscriptions (MDReqID × symbol) one session may hold.
    pub fix_subscriptions_max: usize,
    /// FIX market data: bytes waiting for a session's transport past which its subscriptions
    /// are conflated (updates skipped, a fresh 35=W once it has drained to half of this).
    pub fix_backlog_bytes_max: usize,
    /// For testing recovery only: the binary feed drops every n-th datagram of each connection
    /// instead of sending it (deterministic loss); 0, the default, drops none.
    pub drop_datagram_every: u64,
}

impl Default for MarketDataSection {
    fn default() -> MarketDataSection {
        let d = PublisherConfig::default();
        MarketDataSection {
            queue_len_max: d.queue_len_max,
            slow_policy: "conflate".to_owned(),
            checksum_depth: d.feed.checksum_depth.unwrap_or(0),
            subscribers_max: d.subscribers_max,
            fix_subscriptions_max: gateway::md::MdConfig::default().subscriptions_max,
            fix_backlog_bytes_max: gateway::md::MdConfig::default().backlog_bytes_max,
            drop_datagram_every: 0,
        }
    }
}

/// The FIX market-data bounds of `section`.
pub fn fix_md_config(section: &MarketDataSection) -> Result<gateway::md::MdConfig, MarketDataConfigError> {
    if section.fix_subscriptions_max == 0 {
        return Err(MarketDataConfigError::Zero("fix_subscriptions_max"));
    }
    if section.fix_backlog_bytes_max == 0 {
        return Err(MarketDataConfigError::Zero("fix_backlog_bytes_max"));
    }
    Ok(gateway::md::MdConfig {
        subscriptions_max: section.fix_subscriptions_max,
        backlog_bytes_max: section.fix_backlog_bytes_max,
    })
}

/// Why a `[marketdata]` setting is refused.
#[derive(Debug, thiserror::Error)]
pub enum MarketDataConfigError {
    /// `slow_policy` is neither `conflate` nor `disconnect`.
    #[error("marketdata.slow_policy {0:?}: use conflate or disconnect")]
    SlowPolicy(String),
    /// A bound is zero.
    #[error("marketdata.{0} must be positive")]
    Zero(&'static str),
}

/// The publisher settings for `section` and a symbol table.
pub fn publisher_config(
    section: &MarketDataSection,
    symbols: &[SymbolSpec],
) -> Result<PublisherConfig, MarketDataConfigError> {
    let slow_policy = match section.slow_policy.as_str() {
        "conflate" => SlowPolicy::Conflate,
        "disconnect" => SlowPolicy::Disconnect,
        other => return Err(MarketDataConfigError::SlowPolicy(other.to_owned())),
    };
    if section.queue_len_max == 0 {
        return Err(MarketDataConfigError::Zero("queue_len_max"));
    }
    if section.subscribers_max == 0 {
        return Err(MarketDataConfigError::Zero("subscribers_max"));
    }
    Ok(PublisherConfig {
        feed: FeedConfig {
            projection: ProjectionConfig { symbols: symbols.len(), ..ProjectionConfig::default() },
            checksum_depth: (section.checksum_depth > 0).then_some(section.checksum_depth),
            ..FeedConfig::default()
        },
        queue_len_max: section.queue_len_max,
        subscribers_max: section.subscribers_max,
        slow_policy,
    })
}

impl MarketDataRun {
    /// Follows the event journal in `events_dir` from event 1 on a thread named `marketdata`.
    pub fn start(
        events_dir: &Path,
        symbols: Vec<SymbolSpec>,
        config: PublisherConfig,
        mut metrics: crate::stage_metrics::MarketDataMetrics,
    ) -> Result<MarketDataRun, MarketDataError> {
        let journal_err = |source| MarketDataError::Journal { path: events_dir.to_path_buf(), source };
        let tailer = journal::Tailer::open(events_dir, 1).map_err(journal_err)?;
        let feed = WsFeed::new(Publisher::new(config), symbols);
        let stop = Arc::new(AtomicBool::new(false));
        let status = Arc::new(Status::default());
        let thread = {
            let (feed, stop, status) = (feed.clone(), stop.clone(), status.clone());
            std::thread::Builder::new()
                .name("marketdata".into())
                .spawn(move || run(tailer, &feed, &stop, &status, &mut metrics))
                .map_err(MarketDataError::Spawn)?
        };
        Ok(MarketDataRun { feed, stop, status, thread: Some(thread) })
    }

    /// The feed (publisher and symbol table), shared with the WebSocket connections.
    pub fn feed(&self) -> &Arc<WsFeed> {
        &self.feed
    }

    /// `GET /ws`: the WebSocket JSON feed, for the shared HTTP endpoint.
    pub fn routes(&self) -> axum::Router {
        marketdata::ws_router(self.feed.clone())
    }

    /// Seq of the last event published (0 before the first).
    pub fn applied_seq(&self) -> u64 {
        self.status.applied_seq.load(Ordering::Acquire)
    }

    /// Why the thread stopped publishing, if it did.
    pub fn failure(&self) -> Option<String> {
        self.status.failure.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl std::fmt::Debug for MarketDataRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MarketDataRun")
            .field("applied_seq", &self.applied_seq())
            .field("failure", &self.failure())
            .finish_non_exhaustive()
    }
}

impl Drop for MarketDataRun {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(
    mut tailer: journal::Tailer,
    feed: &WsFeed,
    stop: &AtomicBool,
    status: &Status,
    metrics: &mut crate::stage_metrics::MarketDataMetrics,
) {
    let fail = |what: String| {
        // Publishing past an event it could not read would show a book it cannot prove: stop,
        // say why once on stderr (serve's log) and keep the reason for `failure()`.
        eprintln!("marketdata: stopped: {what}");
        *status.failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(what);
    };
    let mut last_heartbeat = Instant::now();
    while !stop.load(Ordering::Acquire) {
        let mut applied = 0u32;
        while applied < CATCH_UP_BATCH {
            let record = match tailer.poll() {
                Ok(Some(record)) => record,
                Ok(None) => break,
                Err(e) => return fail(format!("event journal: {e}")),
            };
            if record.kind != journal::RecordKind::Event {
                continue;
            }
            let seq = record.seq;
            metrics.event_read(seq);
            let event = match engine::Event::decode(record.payload) {
                Ok(event) => event,
                Err(e) => return fail(format!("event {seq}: {e}")),
            };
            if let Err(e) = feed.on_event(&event) {
                return fail(format!("event {seq}: {e}"));
            }
            status.applied_seq.store(seq, Ordering::Release);
            applied += 1;
        }
        metrics.refresh(feed, Instant::now());
        if last_heartbeat.elapsed() >= HEARTBEAT_INTERVAL {
            feed.heartbeat(gateway::server::now_ns());
            last_heartbeat = Instant::now();
        }
        if applied == 0 {
            std::thread::sleep(IDLE_SLEEP);
        }
    }
}
