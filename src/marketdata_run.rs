//! The market-data thread of `serve`: it follows the event journal from event 1 (the
//! projection is a function of every event, so it must see them all), feeds each event to the
//! shared [`WsFeed`] and publishes a heartbeat every [`HEARTBEAT_INTERVAL`]. It only reads the
//! journal's files, so it never slows the gateway or the engine.
//!
//! Waiting is event-driven, with no spinning on a core shared with the venue: when the journal
//! has nothing new the thread parks on its [`Doorbell`] ([`MarketDataRun::doorbell`]), which the
//! router rings after a turn that journaled events (a fence and a load on the router's side, a
//! futex wake only while this thread is parked). Before parking it looks once more at the event
//! journal's `written_seq`, so a ring that races its last look is not lost; and it parks for at
//! most [`IDLE_SLEEP_MAX`], so a producer that does not ring (or a missed ring) delays an event
//! by at most that, never stalls it. After each batch it applied it tells the binary feed's
//! thread through a [`PublishedWake`], at most once per turn of that thread.
//!
//! The WebSocket feed's routes ([`MarketDataRun::routes`]) go onto the shared HTTP endpoint.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use engine::SymbolSpec;
use journal::JournalProgress;
use marketdata::{FeedConfig, ProjectionConfig, Publisher, PublisherConfig, SlowPolicy, WsFeed};
use runtime::Doorbell;

/// The longest the thread parks when the journal has nothing new: the bound on the delay it
/// adds to an event nobody rang for (a ring wakes it at once). Also the pace of the monitoring
/// refresh when idle.
pub const IDLE_SLEEP_MAX: Duration = Duration::from_millis(5);

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
    doorbell: Arc<Doorbell>,
    published: Arc<PublishedWake>,
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
    /// The `/readyz` check `marketdata_caught_up`, once given: passes from the first time the
    /// thread has read everything journaled, fails for good if it stops.
    ready: std::sync::OnceLock<monitor::health::CheckHandle>,
}

/// What the publisher does with a subscriber that falls `queue_len_max` behind
/// (`marketdata.slow_policy`): an enum, so the TOML parser refuses any other value and names the
/// two allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SlowPolicySetting {
    /// The subscriber's queue becomes a fresh snapshot.
    Conflate,
    /// The subscriber is dropped with the reason.
    Disconnect,
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
    pub slow_policy: SlowPolicySetting,
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
            slow_policy: SlowPolicySetting::Conflate,
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
    /// A bound is zero.
    #[error("marketdata.{0} must be positive")]
    Zero(&'static str),
}

/// The publisher settings for `section` and a symbol table.
pub fn publisher_config(
    section: &MarketDataSection,
    symbols: &[SymbolSpec],
) -> Result<PublisherConfig, MarketDataConfigError> {
    let slow_policy = match section.slow_policy {
        SlowPolicySetting::Conflate => SlowPolicy::Conflate,
        SlowPolicySetting::Disconnect => SlowPolicy::Disconnect,
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

/// How the market-data thread wakes the binary feed's thread (`md-quic`, which blocks in
/// `mio::Poll`) when it has published, without a system call per event or per batch.
///
/// The woken side arms it ([`PublishedWake::arm`]) each turn, just before it drains the
/// publisher; the market-data thread, after a batch of events, takes the arming back and, only
/// if it was armed, writes the `mio::Waker` (an eventfd: a wake-up while the poller is busy is
/// kept for its next poll, so none is lost). So there is at most one wake per turn of the
/// woken thread, however many batches are published meanwhile, and none while it has no
/// subscriber to deliver to (it does not arm then).
///
/// No lost wake-up: arming happens before the drain takes the publisher's lock, and
/// publishing happens under the same lock before [`PublishedWake::published`] looks at the
/// arming. Either the publish holds the lock first, and the drain sees its messages, or the
/// drain does, and then the arming happened before the publish and `published` sees it.
#[derive(Debug, Default)]
pub struct PublishedWake {
    armed: AtomicBool,
    waker: OnceLock<mio::Waker>,
}

impl PublishedWake {
    /// Sets the waker to call (once; a second one is refused and handed back).
    pub fn set_waker(&self, waker: mio::Waker) -> Result<(), mio::Waker> {
        self.waker.set(waker)
    }

    /// Asks for a wake-up after the next publish: call before draining the publisher, with
    /// `true` while there is someone to deliver to.
    pub fn arm(&self, armed: bool) {
        self.armed.store(armed, Ordering::Relaxed);
    }

    /// After publishing (the publisher's lock released): wakes the poller if it armed. Costs
    /// one load when it did not.
    pub fn published(&self) {
        if self.armed.load(Ordering::Relaxed) && self.armed.swap(false, Ordering::Relaxed) {
            if let Some(waker) = self.waker.get() {
                // A failed eventfd write leaves the poller to its timeout, a delay, not a loss.
                let _ = waker.wake();
            }
        }
    }
}

impl MarketDataRun {
    /// Follows the event journal in `events_dir` from event 1 on a thread named `marketdata`.
    /// `written`, the event journal writer's progress, lets the thread check for a new event
    /// before it parks (without it a ring racing the thread's last look waits for
    /// [`IDLE_SLEEP_MAX`]).
    pub fn start(
        events_dir: &Path,
        written: Option<JournalProgress>,
        symbols: Vec<SymbolSpec>,
        config: PublisherConfig,
        metrics: crate::stage_metrics::MarketDataMetrics,
    ) -> Result<MarketDataRun, MarketDataError> {
        MarketDataRun::start_parking(events_dir, written, symbols, config, metrics, IDLE_SLEEP_MAX)
    }

    fn start_parking(
        events_dir: &Path,
        written: Option<JournalProgress>,
        symbols: Vec<SymbolSpec>,
        config: PublisherConfig,
        mut metrics: crate::stage_metrics::MarketDataMetrics,
        idle_sleep_max: Duration,
    ) -> Result<MarketDataRun, MarketDataError> {
        let journal_err = |source| MarketDataError::Journal { path: events_dir.to_path_buf(), source };
        let tailer = journal::Tailer::open(events_dir, 1).map_err(journal_err)?;
        let feed = WsFeed::new(Publisher::new(config), symbols);
        let doorbell = Arc::new(Doorbell::new());
        let published = Arc::new(PublishedWake::default());
        let stop = Arc::new(AtomicBool::new(false));
        let status = Arc::new(Status::default());
        let thread = {
            let wait =
                Wait { doorbell: doorbell.clone(), written, published: published.clone(), idle_sleep_max };
            let (feed, stop, status) = (feed.clone(), stop.clone(), status.clone());
            std::thread::Builder::new()
                .name("marketdata".into())
                .spawn(move || run(tailer, &feed, &wait, &stop, &status, &mut metrics))
                .map_err(MarketDataError::Spawn)?
        };
        Ok(MarketDataRun { feed, doorbell, published, stop, status, thread: Some(thread) })
    }

    /// The doorbell to ring after appending events to the journal (the router does, once per
    /// turn that produced events).
    pub fn doorbell(&self) -> &Arc<Doorbell> {
        &self.doorbell
    }

    /// How the binary feed's thread asks to be woken after a publish.
    pub fn published_wake(&self) -> &Arc<PublishedWake> {
        &self.published
    }

    /// The feed (publisher and symbol table), shared with the WebSocket connections.
    pub fn feed(&self) -> &Arc<WsFeed> {
        &self.feed
    }

    /// `GET /ws`: the WebSocket JSON feed, for the shared HTTP endpoint.
    pub fn routes(&self) -> axum::Router {
        marketdata::ws_router(self.feed.clone())
    }

    /// The readiness check this thread keeps: it passes once the thread has caught up with the
    /// event journal (read everything journaled since the venue started) and fails if it stops.
    pub fn ready_check(&self, check: monitor::health::CheckHandle) {
        check.set(false);
        let _ = self.status.ready.set(check);
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
        self.doorbell.ring();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// How the thread waits for events and tells the binary feed it published.
struct Wait {
    doorbell: Arc<Doorbell>,
    written: Option<JournalProgress>,
    published: Arc<PublishedWake>,
    idle_sleep_max: Duration,
}

fn run(
    mut tailer: journal::Tailer,
    feed: &WsFeed,
    wait: &Wait,
    stop: &AtomicBool,
    status: &Status,
    metrics: &mut crate::stage_metrics::MarketDataMetrics,
) {
    let fail = |what: String| {
        // Publishing past an event it could not read would show a book it cannot prove: stop,
        // say why once on stderr (serve's log) and keep the reason for `failure()`.
        eprintln!("marketdata: stopped: {what}");
        *status.failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(what);
        if let Some(check) = status.ready.get() {
            check.set(false);
        }
    };
    wait.doorbell.register();
    let mut last_heartbeat = Instant::now();
    // `written_seq` said an event was there and the tailer then found none (it can lag the
    // writer opening the next segment): not trusted on the next park, so that cannot spin.
    let mut written_ahead = false;
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
        if applied > 0 {
            wait.published.published();
        }
        metrics.refresh(feed, Instant::now());
        if last_heartbeat.elapsed() >= HEARTBEAT_INTERVAL {
            feed.heartbeat(gateway::server::now_ns());
            wait.published.published();
            last_heartbeat = Instant::now();
        }
        if applied == 0 {
            // Nothing more to read: caught up with the journal.
            if let Some(check) = status.ready.get().filter(|c| !c.is_ok()) {
                check.set(true);
            }
            let next = tailer.next_seq();
            let trust_written = !written_ahead;
            let ready = || trust_written && wait.written.as_ref().is_some_and(|w| w.written_seq() >= next);
            written_ahead = ready();
            // The heartbeat is due within the park's bound, so it is not late by more than that.
            wait.doorbell.sleep(|| ready() || stop.load(Ordering::Relaxed), wait.idle_sleep_max);
        } else {
            written_ahead = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::{Event, EventKind};

    fn poll_events(poll: &mut mio::Poll, timeout: Duration) -> usize {
        let mut events = mio::Events::with_capacity(4);
        poll.poll(&mut events, Some(timeout)).unwrap();
        events.iter().count()
    }

    #[test]
    fn a_publish_wakes_an_armed_poller_once_and_an_unarmed_one_never() {
        let mut poll = mio::Poll::new().unwrap();
        let wake = PublishedWake::default();
        wake.set_waker(mio::Waker::new(poll.registry(), mio::Token(7)).unwrap()).unwrap();

        wake.arm(true);
        wake.published();
        assert_eq!(poll_events(&mut poll, Duration::from_secs(30)), 1, "armed: the publish wakes the poll");
        // The wake-up took the arming: more publishes before the poller's next turn write nothing.
        wake.published();
        wake.published();
        assert_eq!(poll_events(&mut poll, Duration::ZERO), 0, "one wake per arming, not one per publish");

        wake.arm(false); // no subscriber: nothing to deliver, nothing to wake for
        wake.published();
        assert_eq!(poll_events(&mut poll, Duration::ZERO), 0);

        wake.arm(true);
        wake.published();
        assert_eq!(poll_events(&mut poll, Duration::ZERO), 1, "armed again: woken again");
    }

    #[test]
    fn a_ring_wakes_the_parked_thread_long_before_its_park_ends() {
        let dir = std::env::temp_dir().join(format!("md-run-ring-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (mut writer, _) = journal::JournalWriter::open(&dir, journal::JournalConfig::default()).unwrap();
        let symbols = vec![SymbolSpec::new("BTC-USD", 1_000_000, 1)];
        let config = publisher_config(&MarketDataSection::default(), &symbols).unwrap();
        // A park of a minute: once the thread is parked, the event below is applied within the
        // test's patience only if the ring wakes it. (`written` covers the case of a thread not
        // parked yet on a slow machine: it then sees the event before it parks.)
        let run = MarketDataRun::start_parking(
            &dir,
            Some(writer.progress()),
            symbols,
            config,
            crate::stage_metrics::MarketDataMetrics::unobserved().unwrap(),
            Duration::from_secs(60),
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(200)); // let it find the journal empty and park

        let event = Event {
            seq: 1,
            command_seq: 1,
            ts: 1,
            kind: EventKind::TradingStatus { symbol: engine::SymbolId(0), halted: false },
        };
        let mut buf = vec![0; event.encoded_len()];
        let len = event.encode(&mut buf);
        writer.append(journal::RecordKind::Event, 1, &buf[..len]).unwrap();
        run.doorbell().ring();

        let started = Instant::now();
        while run.applied_seq() < 1 && started.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(run.applied_seq(), 1, "woken by the ring, not the 60 s park: {:?}", run.failure());
        drop(run);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
