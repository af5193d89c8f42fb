//! What the gateway and the router record into the monitoring counters file
//! ([`monitor::Registry`]): each set of handles is registered at start-up, before the threads
//! start, and moved to the one thread that writes it (the gateway loop, the router), so
//! recording is a plain load and store: no lock, allocation or system call per message.
//!
//! Without a registry (tests, benches) the handles live in an anonymous mapping nobody reads.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use engine::{Event, EventKind, OrdType, RejectReason};
use journal::{JournalProgress, JournalStatsSnapshot};
use monitor::{metrics, Counter, CountersError, Gauge, Histogram, Registry};
use oms::{OmsStats, Request};

use crate::md::{MdStats, REJECT_REASON_LABELS};

/// The owner name of the gateway thread's metrics in the counters file.
const GATEWAY: &str = "gateway";
/// The owner name of the router thread's metrics.
const ROUTER: &str = "router";

/// One message in this many that the gateway reads has its decode and session stages timed
/// (three monotonic clock reads, vDSO calls, no system call); the others read no clock for them.
pub const STAGE_SAMPLE_EVERY: u32 = 64;
const _: () = assert!(STAGE_SAMPLE_EVERY.is_power_of_two());

/// One command in this many that the router hands an inline engine has its engine step timed.
pub const MATCH_SAMPLE_EVERY: u64 = 64;
const _: () = assert!(MATCH_SAMPLE_EVERY.is_power_of_two());

/// The window of [`metrics::ENGINE_CYCLE_MAX`]: the gauge shows the longest turn of the current
/// window and the one before it.
const CYCLE_MAX_WINDOW: Duration = Duration::from_secs(1);

/// How often an idle router refreshes the journal gauges (a busy one does every turn).
const IDLE_REFRESH: Duration = Duration::from_millis(10);

/// Requests a session may have waiting for their first report while the end-to-end latency is
/// timed; past it the oldest is no longer timed (one sample lost, nothing refused).
pub const TIMED_REQUESTS_MAX: usize = 16;

/// Labels of [`metrics::ORDERS_IN`]'s `type`, in [`OrderKind`] order.
const ORDER_TYPES: [&str; 7] = ["limit", "market", "stop", "cancel", "replace", "mass_cancel", "status"];

/// A request's kind for [`metrics::ORDERS_IN`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderKind {
    /// A new limit order.
    Limit,
    /// A new market order.
    Market,
    /// A new stop (or stop-limit) order.
    Stop,
    /// A cancel.
    Cancel,
    /// A cancel/replace.
    Replace,
    /// A mass cancel.
    MassCancel,
    /// An order status or mass status request.
    Status,
}

impl OrderKind {
    /// The kind of `request`.
    pub fn of(request: &Request) -> OrderKind {
        match request {
            Request::New { order, .. } if order.stop_price.is_some() => OrderKind::Stop,
            Request::New { order, .. } => match order.ord_type {
                OrdType::Market => OrderKind::Market,
                OrdType::Limit => OrderKind::Limit,
            },
            Request::Cancel { .. } => OrderKind::Cancel,
            Request::Replace { .. } => OrderKind::Replace,
            Request::MassCancel { .. } => OrderKind::MassCancel,
            Request::Status { .. } | Request::MassStatus { .. } => OrderKind::Status,
        }
    }
}

/// Why the gateway itself refused a message ([`metrics::REJECTS`]'s `reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GatewayReject {
    /// A session-level Reject (35=3): a malformed or invalid message.
    Session,
    /// A BusinessMessageReject (35=j) for a message the venue does not take.
    Business,
    /// An ExecutionReport rejecting an order the gateway could not translate.
    InvalidOrder,
    /// The router's channel was full.
    GatewayBusy,
}

const GATEWAY_REJECTS: [&str; 4] = ["session", "business", "invalid_order", "gateway_busy"];

/// The gateway thread's handles.
#[derive(Debug)]
pub struct GatewayMetrics {
    orders_in: [Counter; ORDER_TYPES.len()],
    rejects: [Counter; GATEWAY_REJECTS.len()],
    logons: Counter,
    logons_failed: Counter,
    sessions: Gauge,
    order_latency: Histogram,
    decode: Histogram,
    session: Histogram,
    /// Messages polled, for [`STAGE_SAMPLE_EVERY`] (the handles are `!Sync`: one thread).
    polls: Cell<u32>,
    /// The FIX market-data desk's numbers (it runs on the gateway thread).
    md: FixMdMetrics,
}

const FIX: (&str, &str) = ("feed", "fix");

/// The FIX market-data desk's handles: its [`MdStats`] copied after each busy turn of the
/// desk, plus the 35=Y the session layer sends itself before a request reaches the desk.
#[derive(Debug)]
struct FixMdMetrics {
    subscriptions: Gauge,
    snapshots: Counter,
    incrementals: Counter,
    stale: Counter,
    statuses: Counter,
    rejects: [Counter; REJECT_REASON_LABELS.len()],
    /// The desk's counters at the last copy.
    last: Cell<MdStats>,
}

impl FixMdMetrics {
    fn register(registry: &mut Registry) -> Result<FixMdMetrics, CountersError> {
        let mut rejects = Vec::with_capacity(REJECT_REASON_LABELS.len());
        for r in REJECT_REASON_LABELS {
            rejects.push(registry.counter(&metrics::MD_REFUSALS, GATEWAY, &[FIX, ("reason", r)])?);
        }
        Ok(FixMdMetrics {
            subscriptions: registry.gauge(&metrics::MD_SUBSCRIPTIONS, GATEWAY, &[FIX])?,
            snapshots: registry.counter(&metrics::MD_SNAPSHOTS, GATEWAY, &[FIX])?,
            incrementals: registry.counter(&metrics::MD_INCREMENTALS, GATEWAY, &[FIX])?,
            stale: registry.counter(&metrics::MD_STALE_SUBSCRIPTIONS, GATEWAY, &[FIX])?,
            statuses: registry.counter(&metrics::MD_STATUS_MESSAGES, GATEWAY, &[FIX])?,
            rejects: rejects.try_into().expect("one per reason"),
            last: Cell::new(MdStats::default()),
        })
    }
}

impl GatewayMetrics {
    /// Registers the gateway's metrics.
    pub fn register(registry: &mut Registry) -> Result<GatewayMetrics, CountersError> {
        let mut orders_in = Vec::with_capacity(ORDER_TYPES.len());
        for t in ORDER_TYPES {
            orders_in.push(registry.counter(&metrics::ORDERS_IN, GATEWAY, &[("type", t)])?);
        }
        let mut rejects = Vec::with_capacity(GATEWAY_REJECTS.len());
        for r in GATEWAY_REJECTS {
            rejects.push(registry.counter(&metrics::REJECTS, GATEWAY, &[("reason", r)])?);
        }
        Ok(GatewayMetrics {
            orders_in: orders_in.try_into().expect("one per type"),
            rejects: rejects.try_into().expect("one per reason"),
            logons: registry.counter(&metrics::LOGONS, GATEWAY, &[])?,
            logons_failed: registry.counter(&metrics::LOGONS_FAILED, GATEWAY, &[("reason", "refused")])?,
            sessions: registry.gauge(&metrics::SESSIONS, GATEWAY, &[])?,
            order_latency: registry.histogram(&metrics::ORDER_LATENCY, GATEWAY, &[])?,
            decode: registry.histogram(&metrics::STAGE_LATENCY, GATEWAY, &[("stage", "decode")])?,
            session: registry.histogram(&metrics::STAGE_LATENCY, GATEWAY, &[("stage", "session")])?,
            polls: Cell::new(0),
            md: FixMdMetrics::register(registry)?,
        })
    }

    /// Copies the FIX market-data desk's counters (what changed since the last copy) and the
    /// subscriptions it holds: after a busy turn of the desk, off any order's path.
    pub fn md_desk(&self, stats: MdStats, subscriptions_held: usize) {
        let md = &self.md;
        let last = md.last.replace(stats);
        md.snapshots.add(stats.snapshots.saturating_sub(last.snapshots));
        md.incrementals.add(stats.incrementals.saturating_sub(last.incrementals));
        md.stale.add(stats.conflations.saturating_sub(last.conflations));
        md.statuses.add(stats.statuses.saturating_sub(last.statuses));
        for ((counter, now), was) in
            md.rejects.iter().zip(stats.rejects_by_reason).zip(last.rejects_by_reason)
        {
            counter.add(now.saturating_sub(was));
        }
        md.subscriptions.set(i64::try_from(subscriptions_held).unwrap_or(i64::MAX));
    }

    /// A 35=Y sent by the session layer itself (a request the desk never saw).
    pub fn md_rejected(&self, reason: Option<crate::md::RejectReason>) {
        self.md.rejects[crate::md::RejectReason::index(reason)].inc();
    }

    /// Before polling a session for its next message: the start time when this poll is one of
    /// the sampled ones ([`STAGE_SAMPLE_EVERY`]), else `None` and no clock read.
    #[inline]
    pub fn sample(&self) -> Option<Instant> {
        let n = self.polls.get().wrapping_add(1);
        self.polls.set(n);
        (cfg!(feature = "metrics") && n & (STAGE_SAMPLE_EVERY - 1) == 0).then(Instant::now)
    }

    /// A sampled message was framed, parsed and passed the session layer, which started at
    /// `started`; returns now, the start of its session (translation) stage.
    pub fn decoded(&self, started: Instant) -> Instant {
        let now = Instant::now();
        self.decode.record_ns(ns_between(started, now));
        now
    }

    /// A sampled message was translated and handed to the router, starting at `started`.
    pub fn translated(&self, started: Instant) {
        self.session.record_ns(ns_since(started));
    }

    /// Handles in an anonymous mapping: for a gateway started without monitoring.
    pub fn unobserved() -> Result<GatewayMetrics, CountersError> {
        GatewayMetrics::register(&mut Registry::anonymous()?)
    }

    /// A request decoded and passed to the router.
    pub fn order_in(&self, kind: OrderKind) {
        self.orders_in[kind as usize].inc();
    }

    /// A message refused by the gateway.
    pub fn reject(&self, reason: GatewayReject) {
        self.rejects[reason as usize].inc();
    }

    /// A Logon accepted: one more session.
    pub fn logon(&self) {
        self.logons.inc();
        self.sessions.add(1);
    }

    /// A Logon refused.
    pub fn logon_failed(&self) {
        self.logons_failed.inc();
    }

    /// A logged-on session ended.
    pub fn session_ended(&self) {
        self.sessions.add(-1);
    }

    /// A request read at `read_ns` had its first report encoded at `reported_ns`.
    pub fn order_latency(&self, read_ns: u64, reported_ns: u64) {
        self.order_latency.record_ns(reported_ns.saturating_sub(read_ns));
    }
}

/// The router thread's handles: engine outcomes recorded as events pass, order management's
/// [`OmsStats`] copied once per busy turn, the journals' progress and counters, the engine
/// loop's turns.
#[derive(Debug)]
pub struct RouterMetrics {
    trades: Counter,
    engine_rejects: [Counter; ENGINE_REJECTS.len()],
    /// risk, rate_limited, busy, then the plain counters, with the values last copied.
    copied: [(Counter, u64); 7],
    inbound: Gauge,
    /// The engine's command and event rings (`engine.thread = "own"`).
    engine_rings: [Gauge; 2],
    live_orders: Gauge,
    kill_switch: Gauge,
    /// Open orders per symbol (resting or waiting as stops), kept from the events; symbols
    /// past the registered ones are not counted.
    resting: Vec<(Gauge, i64)>,
    cycle: Histogram,
    cycle_max: CycleMax,
    match_stage: Histogram,
    /// Rate limit and risk, copied from order management's sampled gate times.
    gates: [Histogram; 2],
    gates_copied: [u64; 3],
    journals: Vec<JournalMetrics>,
    last_refresh: Option<Instant>,
}

/// The longest turn in the current window and the one before.
#[derive(Debug)]
struct CycleMax {
    gauge: Gauge,
    window_start: Option<Instant>,
    current_ns: u64,
    previous_ns: u64,
}

impl CycleMax {
    fn turn(&mut self, at: Instant, ns: u64) {
        let start = *self.window_start.get_or_insert(at);
        let age = at.saturating_duration_since(start);
        if age >= CYCLE_MAX_WINDOW {
            // A window with no turn at all shows 0, not a maximum older than two windows.
            self.previous_ns = if age < 2 * CYCLE_MAX_WINDOW { self.current_ns } else { 0 };
            self.current_ns = 0;
            self.window_start = Some(at);
        }
        self.current_ns = self.current_ns.max(ns);
        self.gauge.set(i64::try_from(self.current_ns.max(self.previous_ns)).unwrap_or(i64::MAX));
    }
}

const ENGINE_REJECTS: [RejectReason; 9] = [
    RejectReason::UnknownSymbol,
    RejectReason::BadPriceTick,
    RejectReason::BadQty,
    RejectReason::DuplicateId,
    RejectReason::UnknownOrder,
    RejectReason::WouldTake,
    RejectReason::Halted,
    RejectReason::BadOrder,
    RejectReason::BookFull,
];

/// Where a turn's queues stood, for the occupancy gauges.
#[derive(Clone, Copy, Debug, Default)]
pub struct Queues {
    /// Session messages waiting for the router.
    pub inbound: usize,
    /// Commands and events waiting in the engine's rings (0 with an inline engine).
    pub engine_rings: (usize, usize),
    /// Orders live in order management.
    pub live_orders: usize,
}

impl RouterMetrics {
    /// Registers the router's metrics.
    pub fn register(registry: &mut Registry) -> Result<RouterMetrics, CountersError> {
        let mut engine_rejects = Vec::with_capacity(ENGINE_REJECTS.len());
        for r in ENGINE_REJECTS {
            engine_rejects.push(registry.counter(&metrics::REJECTS, ROUTER, &[("reason", r.as_str())])?);
        }
        let mut reject = |reason| registry.counter(&metrics::REJECTS, ROUTER, &[("reason", reason)]);
        let (risk, rate_limited, busy) = (reject("risk")?, reject("rate_limited")?, reject("busy")?);
        let copied = [
            (risk, 0),
            (rate_limited, 0),
            (busy, 0),
            (registry.counter(&metrics::RATELIMIT_REFUSALS, ROUTER, &[("scope", "session_or_account")])?, 0),
            (registry.counter(&metrics::ROUTER_REQUESTS, ROUTER, &[])?, 0),
            (registry.counter(&metrics::REPORTS_TO_DETACHED, ROUTER, &[])?, 0),
            (registry.counter(&metrics::UNKNOWN_ORDER_EVENTS, ROUTER, &[])?, 0),
        ];
        let stage = |registry: &mut Registry, name| {
            registry.histogram(&metrics::STAGE_LATENCY, ROUTER, &[("stage", name)])
        };
        Ok(RouterMetrics {
            trades: registry.counter(&metrics::TRADES, ROUTER, &[])?,
            engine_rejects: engine_rejects.try_into().expect("one per reason"),
            copied,
            inbound: registry.gauge(&metrics::RING_OCCUPANCY, ROUTER, &[("ring", "router_inbound")])?,
            engine_rings: [
                registry.gauge(&metrics::RING_OCCUPANCY, ROUTER, &[("ring", "engine_commands")])?,
                registry.gauge(&metrics::RING_OCCUPANCY, ROUTER, &[("ring", "engine_events")])?,
            ],
            live_orders: registry.gauge(&metrics::LIVE_ORDERS, ROUTER, &[])?,
            kill_switch: registry.gauge(&metrics::KILL_SWITCH, ROUTER, &[("scope", "account")])?,
            resting: Vec::new(),
            cycle: registry.histogram(&metrics::ENGINE_CYCLE, ROUTER, &[])?,
            cycle_max: CycleMax {
                gauge: registry.gauge(&metrics::ENGINE_CYCLE_MAX, ROUTER, &[])?,
                window_start: None,
                current_ns: 0,
                previous_ns: 0,
            },
            match_stage: stage(registry, "match")?,
            gates: [stage(registry, "ratelimit")?, stage(registry, "risk")?],
            gates_copied: [0; 3],
            journals: Vec::new(),
            last_refresh: None,
        })
    }

    /// Handles in an anonymous mapping: for a router started without monitoring.
    pub fn unobserved() -> Result<RouterMetrics, CountersError> {
        RouterMetrics::register(&mut Registry::anonymous()?)
    }

    /// Also counts open orders per symbol, `symbols` naming ids `0..` in order.
    pub fn watch_symbols(&mut self, registry: &mut Registry, symbols: &[&str]) -> Result<(), CountersError> {
        for symbol in symbols {
            self.resting.push((registry.gauge(&metrics::RESTING_ORDERS, ROUTER, &[("symbol", symbol)])?, 0));
        }
        Ok(())
    }

    /// Also refreshes `journal`'s metrics on this thread.
    pub fn watch_journal(&mut self, journal: JournalMetrics) {
        self.journals.push(journal);
    }

    /// An engine event on its way to order management.
    #[inline]
    pub fn event(&mut self, event: &Event) {
        match event.kind {
            EventKind::Trade { .. } => self.trades.inc(),
            EventKind::Rejected { reason, .. } => {
                if let Some(i) = ENGINE_REJECTS.iter().position(|r| *r == reason) {
                    self.engine_rejects[i].inc();
                }
            }
            _ => {}
        }
        self.replayed_event(event);
    }

    /// An event replayed at start-up: only the open-order counts follow it (the counters count
    /// what this process does). An order is open from its acceptance until a trade leaves it
    /// nothing, a cancel or an expiry.
    #[inline]
    pub fn replayed_event(&mut self, event: &Event) {
        match event.kind {
            EventKind::Trade { symbol, maker_leaves_qty, taker_leaves_qty, .. } => {
                let done = i64::from(maker_leaves_qty == 0) + i64::from(taker_leaves_qty == 0);
                self.open_orders(symbol, -done);
            }
            EventKind::Accepted { symbol, .. } => self.open_orders(symbol, 1),
            EventKind::Canceled { symbol, .. } | EventKind::Expired { symbol, .. } => {
                self.open_orders(symbol, -1)
            }
            _ => {}
        }
    }

    #[inline]
    fn open_orders(&mut self, symbol: engine::SymbolId, delta: i64) {
        if let Some((gauge, count)) = self.resting.get_mut(symbol.index()) {
            *count += delta;
            gauge.set(*count);
        }
    }

    /// A sampled engine step ([`MATCH_SAMPLE_EVERY`]) that started at `started`: sequencing,
    /// the command's journal append, matching and the events' appends.
    pub fn match_timed(&self, started: Instant) {
        self.match_stage.record_ns(ns_since(started));
    }

    /// After a busy turn that started at `started`: its duration, order management's counters,
    /// the queues and the journals.
    pub fn turn_done(&mut self, started: Instant, stats: &OmsStats, queues: Queues) {
        let now = Instant::now();
        let ns = ns_between(started, now);
        self.cycle.record_ns(ns);
        self.cycle_max.turn(started, ns);
        let load = |v: &AtomicU64| v.load(Ordering::Relaxed);
        let values = [
            load(&stats.risk_rejects),
            load(&stats.rate_limited),
            load(&stats.busy),
            load(&stats.rate_limited),
            load(&stats.requests),
            load(&stats.to_detached),
            load(&stats.unknown_order_events),
        ];
        for ((counter, last), value) in self.copied.iter_mut().zip(values) {
            if value > *last {
                counter.add(value - *last);
                *last = value;
            }
        }
        let timed = [load(&stats.gates_timed), load(&stats.ratelimit_ns), load(&stats.risk_ns)];
        let n = timed[0].wrapping_sub(self.gates_copied[0]);
        if n > 0 {
            for (i, histogram) in self.gates.iter().enumerate() {
                record_mean(histogram, timed[i + 1].wrapping_sub(self.gates_copied[i + 1]), n);
            }
            self.gates_copied = timed;
        }
        self.kill_switch.set(i64::try_from(load(&stats.accounts_killed)).unwrap_or(i64::MAX));
        let gauge = |g: &Gauge, n: usize| g.set(i64::try_from(n).unwrap_or(i64::MAX));
        gauge(&self.inbound, queues.inbound);
        gauge(&self.engine_rings[0], queues.engine_rings.0);
        gauge(&self.engine_rings[1], queues.engine_rings.1);
        gauge(&self.live_orders, queues.live_orders);
        self.refresh_journals(now);
    }

    /// After an idle turn at `now`: the journal gauges (at most every [`IDLE_REFRESH`]; a
    /// journal syncs in the background, so its lag changes while the router has nothing to do)
    /// and the longest-cycle window.
    pub fn idle_turn(&mut self, now: Instant) {
        if self.last_refresh.is_some_and(|t| now.saturating_duration_since(t) < IDLE_REFRESH) {
            return;
        }
        self.cycle_max.turn(now, 0);
        self.refresh_journals(now);
    }

    fn refresh_journals(&mut self, now: Instant) {
        self.last_refresh = Some(now);
        for journal in &mut self.journals {
            journal.refresh(now);
        }
    }
}

/// One journal's metrics, refreshed on the router's thread from the journal's
/// [`JournalProgress`] (plain atomics the journal keeps; the journal links no monitoring).
#[derive(Debug)]
pub struct JournalMetrics {
    progress: JournalProgress,
    bytes: Counter,
    syncs: Counter,
    position: Gauge,
    unsynced: Gauge,
    sync_lag: Gauge,
    append: Histogram,
    sync: Histogram,
    last: JournalStatsSnapshot,
    /// While records are unsynced: the durable seq then, and since when no sync has completed.
    behind_since: Option<(u64, Instant)>,
}

impl JournalMetrics {
    /// Registers the metrics of the journal named `journal` (`commands`, `events`).
    pub fn register(
        registry: &mut Registry,
        journal: &str,
        progress: JournalProgress,
    ) -> Result<JournalMetrics, CountersError> {
        let labels = [("journal", journal)];
        let stage = |registry: &mut Registry, stage| {
            registry.histogram(&metrics::STAGE_LATENCY, ROUTER, &[("stage", stage), ("journal", journal)])
        };
        Ok(JournalMetrics {
            bytes: registry.counter(&metrics::JOURNAL_BYTES, ROUTER, &labels)?,
            syncs: registry.counter(&metrics::JOURNAL_SYNCS, ROUTER, &labels)?,
            position: registry.gauge(&metrics::JOURNAL_POSITION, ROUTER, &labels)?,
            unsynced: registry.gauge(&metrics::JOURNAL_UNSYNCED, ROUTER, &labels)?,
            sync_lag: registry.gauge(&metrics::JOURNAL_SYNC_LAG, ROUTER, &labels)?,
            append: stage(registry, "journal_append")?,
            sync: stage(registry, "journal_sync")?,
            last: JournalStatsSnapshot::default(),
            behind_since: None,
            progress,
        })
    }

    /// Copies the journal's progress and counters as they are at `now`.
    ///
    /// The lag is the time since the journal was first seen with unsynced records and no sync
    /// completing since: 0 while everything appended is synced, growing while a sync stalls.
    /// It is as fine as the router's turns (a busy router refreshes every turn, an idle one
    /// every 10 ms).
    pub fn refresh(&mut self, now: Instant) {
        let (written, durable) = (self.progress.written_seq(), self.progress.durable_seq());
        self.position.set(i64::try_from(written).unwrap_or(i64::MAX));
        self.unsynced.set(i64::try_from(written.saturating_sub(durable)).unwrap_or(i64::MAX));
        let lag_ns = if written <= durable {
            self.behind_since = None;
            0
        } else {
            match self.behind_since {
                Some((seen_durable, since)) if seen_durable == durable => ns_between(since, now),
                _ => {
                    self.behind_since = Some((durable, now));
                    0
                }
            }
        };
        self.sync_lag.set(i64::try_from(lag_ns).unwrap_or(i64::MAX));
        let stats = self.progress.stats();
        self.bytes.add(stats.bytes_appended.wrapping_sub(self.last.bytes_appended));
        let syncs = stats.syncs.wrapping_sub(self.last.syncs);
        self.syncs.add(syncs);
        record_mean(&self.sync, stats.sync_ns.wrapping_sub(self.last.sync_ns), syncs);
        let appends = stats.append_samples.wrapping_sub(self.last.append_samples);
        record_mean(&self.append, stats.append_sampled_ns.wrapping_sub(self.last.append_sampled_ns), appends);
        self.last = stats;
    }
}

/// Records `n` observations whose total is `total_ns`, each at their mean: what several samples
/// copied at once from plain counters become, so `_count` and `_sum` stay exact (the buckets see
/// the mean). Nothing when `n` is 0.
fn record_mean(histogram: &Histogram, total_ns: u64, n: u64) {
    if let Some(mean) = total_ns.checked_div(n) {
        histogram.record_ns_n(mean, n);
    }
}

fn ns_between(from: Instant, to: Instant) -> u64 {
    u64::try_from(to.saturating_duration_since(from).as_nanos()).unwrap_or(u64::MAX)
}

fn ns_since(from: Instant) -> u64 {
    ns_between(from, Instant::now())
}

/// Per session: when each request waiting for its first report was read, by its id.
#[derive(Debug)]
pub struct RequestTimes {
    slots: [Option<(engine::ClOrdId, u64)>; TIMED_REQUESTS_MAX],
    next: usize,
}

impl Default for RequestTimes {
    fn default() -> RequestTimes {
        RequestTimes { slots: [None; TIMED_REQUESTS_MAX], next: 0 }
    }
}

impl RequestTimes {
    /// The request `id` was read at `read_ns`.
    pub fn start(&mut self, id: engine::ClOrdId, read_ns: u64) {
        self.slots[self.next] = Some((id, read_ns));
        self.next = (self.next + 1) % TIMED_REQUESTS_MAX;
    }

    /// The first report about `id`: when its request was read, once.
    pub fn take(&mut self, id: &engine::ClOrdId) -> Option<u64> {
        let slot = self.slots.iter_mut().find(|s| s.is_some_and(|(k, _)| k == *id))?;
        slot.take().map(|(_, t)| t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::{OrderId, SymbolId};

    #[test]
    fn a_request_is_timed_once_and_the_oldest_gives_way() {
        let id = |s: &str| engine::ClOrdId::from_bytes(s.as_bytes()).unwrap();
        let mut times = RequestTimes::default();
        times.start(id("a"), 10);
        assert_eq!(times.take(&id("a")), Some(10));
        assert_eq!(times.take(&id("a")), None);
        for i in 0..=TIMED_REQUESTS_MAX {
            times.start(id(&format!("o{i}")), 100 + i as u64);
        }
        assert_eq!(times.take(&id("o0")), None, "overwritten by the newest");
        assert_eq!(times.take(&id(&format!("o{TIMED_REQUESTS_MAX}"))), Some(100 + TIMED_REQUESTS_MAX as u64));
    }

    #[test]
    #[cfg_attr(not(feature = "metrics"), ignore = "records nothing with the counters compiled out")]
    fn the_fix_desk_copy_adds_what_changed_and_counts_session_layer_rejects() {
        use crate::md::RejectReason;
        let mut registry = Registry::anonymous().unwrap();
        let m = GatewayMetrics::register(&mut registry).unwrap();
        let mut stats = MdStats { snapshots: 2, incrementals: 10, ..MdStats::default() };
        stats.rejects_by_reason[RejectReason::index(Some(RejectReason::DuplicateMdReqId))] = 1;
        m.md_desk(stats, 3);
        stats.incrementals = 15;
        stats.conflations = 1;
        stats.statuses = 2;
        m.md_desk(stats, 2);
        m.md_desk(stats, 2); // nothing new
        m.md_rejected(Some(RejectReason::UnknownSymbol));
        m.md_rejected(None);
        let mut text = String::new();
        monitor::prometheus::render(&registry.reader().snapshot().unwrap(), &mut text);
        for line in [
            "exchange_marketdata_snapshots_total{feed=\"fix\"} 2\n",
            "exchange_marketdata_incrementals_total{feed=\"fix\"} 15\n",
            "exchange_marketdata_stale_subscriptions_total{feed=\"fix\"} 1\n",
            "exchange_marketdata_status_messages_total{feed=\"fix\"} 2\n",
            "exchange_marketdata_subscriptions{feed=\"fix\"} 2\n",
            "exchange_marketdata_refusals_total{feed=\"fix\",reason=\"duplicate_md_req_id\"} 1\n",
            "exchange_marketdata_refusals_total{feed=\"fix\",reason=\"unknown_symbol\"} 1\n",
            "exchange_marketdata_refusals_total{feed=\"fix\",reason=\"unknown_md_req_id\"} 1\n",
            "exchange_marketdata_refusals_total{feed=\"fix\",reason=\"unsupported_market_depth\"} 0\n",
        ] {
            assert!(text.contains(line), "{line}{text}");
        }
    }

    #[test]
    #[cfg_attr(not(feature = "metrics"), ignore = "records nothing with the counters compiled out")]
    fn router_counters_copy_only_what_changed() {
        let mut registry = Registry::anonymous().unwrap();
        let mut m = RouterMetrics::register(&mut registry).unwrap();
        let stats = OmsStats::default();
        stats.risk_rejects.store(3, Ordering::Relaxed);
        stats.accounts_killed.store(1, Ordering::Relaxed);
        let queues = Queues { inbound: 2, engine_rings: (0, 0), live_orders: 5 };
        m.turn_done(Instant::now(), &stats, queues);
        m.turn_done(Instant::now(), &stats, queues);
        stats.risk_rejects.store(4, Ordering::Relaxed);
        stats.gates_timed.store(2, Ordering::Relaxed);
        stats.risk_ns.store(6_000, Ordering::Relaxed);
        m.turn_done(Instant::now(), &stats, queues);
        let snapshot = registry.reader().snapshot().unwrap();
        let mut text = String::new();
        monitor::prometheus::render(&snapshot, &mut text);
        assert!(text.contains("exchange_rejects_total{reason=\"risk\"} 4"), "{text}");
        assert!(text.contains("exchange_engine_cycle_seconds_count 3"), "{text}");
        assert!(text.contains("exchange_kill_switch_engaged{scope=\"account\"} 1"), "{text}");
        // Two timed requests of 3 µs each in risk.
        assert!(text.contains("exchange_stage_latency_seconds_count{stage=\"risk\"} 2"), "{text}");
        assert!(text.contains("exchange_stage_latency_seconds_sum{stage=\"risk\"} 0.000006"), "{text}");
        assert!(text.contains("exchange_engine_cycle_recent_max_seconds "), "{text}");
    }

    #[test]
    #[cfg_attr(not(feature = "metrics"), ignore = "records nothing with the counters compiled out")]
    fn open_orders_per_symbol_follow_the_events() {
        use engine::{AccountId, ClOrdId, Price, Side, Tif};
        let mut registry = Registry::anonymous().unwrap();
        let mut m = RouterMetrics::register(&mut registry).unwrap();
        m.watch_symbols(&mut registry, &["A", "B"]).unwrap();
        let id = ClOrdId::from_bytes(b"x").unwrap();
        let accepted = |symbol, order| EventKind::Accepted {
            account: AccountId(0),
            id,
            symbol: SymbolId(symbol),
            order_id: OrderId(order),
            side: Side::Buy,
            price: Price(1),
            qty: 1,
            tif: Tif::Gtc,
            stop_price: None,
            display_qty: None,
        };
        let event = |kind| Event { seq: 1, command_seq: 1, ts: 0, kind };
        for order in 1..=3 {
            m.replayed_event(&event(accepted(0, order)));
        }
        m.event(&event(accepted(1, 4)));
        // Order 4 takes order 1 out completely; the taker is done too.
        m.event(&event(EventKind::Trade {
            symbol: SymbolId(0),
            price: Price(1),
            qty: 1,
            maker_account: AccountId(0),
            maker_id: id,
            maker_order_id: OrderId(1),
            maker_leaves_qty: 0,
            taker_account: AccountId(0),
            taker_id: id,
            taker_order_id: OrderId(4),
            taker_leaves_qty: 0,
            aggressor: Side::Sell,
        }));
        m.event(&event(EventKind::Canceled {
            account: AccountId(0),
            id,
            symbol: SymbolId(0),
            order_id: OrderId(2),
            reason: engine::CancelReason::User,
            leaves_qty: 1,
        }));
        let mut text = String::new();
        monitor::prometheus::render(&registry.reader().snapshot().unwrap(), &mut text);
        // A: 3 accepted, one traded out, one canceled; B: 1 accepted; the trade (booked on A
        // here) also finished its taker.
        assert!(text.contains("exchange_resting_orders{symbol=\"A\"} 0"), "{text}");
        assert!(text.contains("exchange_resting_orders{symbol=\"B\"} 1"), "{text}");
        assert!(text.contains("exchange_trades_total 1"), "{text}");
    }

    #[test]
    #[cfg_attr(not(feature = "metrics"), ignore = "records nothing with the counters compiled out")]
    fn journal_lag_grows_only_while_no_sync_completes() {
        let dir = std::env::temp_dir().join(format!("gateway-journal-metrics-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let config = journal::JournalConfig {
            segment_size_bytes: journal::SEGMENT_SIZE_MIN,
            sync: journal::SyncPolicy::GroupCommit,
            first_seq: 1,
        };
        let (mut writer, _) = journal::JournalWriter::open(&dir, config).unwrap();
        let mut registry = Registry::anonymous().unwrap();
        let mut m = JournalMetrics::register(&mut registry, "commands", writer.progress()).unwrap();
        let t0 = Instant::now();
        for seq in 1..=64 {
            writer.append(journal::RecordKind::Command, seq, &[1u8; 40]).unwrap();
        }
        m.refresh(t0);
        m.refresh(t0 + Duration::from_millis(30));
        let text = |registry: &Registry| {
            let mut text = String::new();
            monitor::prometheus::render(&registry.reader().snapshot().unwrap(), &mut text);
            text
        };
        let behind = text(&registry);
        assert!(
            behind.contains("exchange_journal_sync_lag_seconds{journal=\"commands\"} 0.03\n"),
            "{behind}"
        );
        assert!(behind.contains("exchange_journal_unsynced_records{journal=\"commands\"} 64"), "{behind}");
        assert!(behind.contains("exchange_journal_position{journal=\"commands\"} 64"), "{behind}");
        assert!(
            behind.contains(
                "exchange_stage_latency_seconds_count{stage=\"journal_append\",journal=\"commands\"} 1"
            ),
            "{behind}"
        );
        writer.sync().unwrap();
        m.refresh(t0 + Duration::from_millis(40));
        let synced = text(&registry);
        assert!(synced.contains("exchange_journal_sync_lag_seconds{journal=\"commands\"} 0\n"), "{synced}");
        // The open's sync and this one.
        assert!(synced.contains("exchange_journal_syncs_total{journal=\"commands\"} 2"), "{synced}");
        assert!(
            synced.contains(
                "exchange_stage_latency_seconds_count{stage=\"journal_sync\",journal=\"commands\"} 2"
            ),
            "{synced}"
        );
        let bytes = 64 * writer.progress().stats().bytes_appended / 64;
        assert!(
            synced.contains(&format!("exchange_journal_bytes_total{{journal=\"commands\"}} {bytes}")),
            "{synced}"
        );
        drop(writer);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
