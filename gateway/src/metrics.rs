//! What the gateway and the router record into the monitoring counters file
//! ([`monitor::Registry`]): each set of handles is registered at start-up, before the threads
//! start, and moved to the one thread that writes it (the gateway loop, the router), so
//! recording is a plain load and store: no lock, allocation or system call per message.
//!
//! Without a registry (tests, benches) the handles live in an anonymous mapping nobody reads.

use std::sync::atomic::Ordering;
use std::time::Instant;

use engine::{Event, EventKind, OrdType, RejectReason};
use monitor::{metrics, Counter, CountersError, Gauge, Histogram, Registry};
use oms::{OmsStats, Request};

/// The owner name of the gateway thread's metrics in the counters file.
const GATEWAY: &str = "gateway";
/// The owner name of the router thread's metrics.
const ROUTER: &str = "router";

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
        })
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
/// [`OmsStats`] copied once per busy turn, and the journal's progress.
#[derive(Debug)]
pub struct RouterMetrics {
    trades: Counter,
    engine_rejects: [Counter; ENGINE_REJECTS.len()],
    /// risk, rate_limited, busy, then the plain counters, with the values last copied.
    copied: [(Counter, u64); 7],
    inbound: Gauge,
    live_orders: Gauge,
    journal_position: Gauge,
    journal_unsynced: Gauge,
    cycle: Histogram,
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
        Ok(RouterMetrics {
            trades: registry.counter(&metrics::TRADES, ROUTER, &[])?,
            engine_rejects: engine_rejects.try_into().expect("one per reason"),
            copied,
            inbound: registry.gauge(&metrics::RING_OCCUPANCY, ROUTER, &[("ring", "router_inbound")])?,
            live_orders: registry.gauge(&metrics::LIVE_ORDERS, ROUTER, &[])?,
            journal_position: registry.gauge(
                &metrics::JOURNAL_POSITION,
                ROUTER,
                &[("journal", "commands")],
            )?,
            journal_unsynced: registry.gauge(
                &metrics::JOURNAL_UNSYNCED,
                ROUTER,
                &[("journal", "commands")],
            )?,
            cycle: registry.histogram(&metrics::ENGINE_CYCLE, ROUTER, &[])?,
        })
    }

    /// Handles in an anonymous mapping: for a router started without monitoring.
    pub fn unobserved() -> Result<RouterMetrics, CountersError> {
        RouterMetrics::register(&mut Registry::anonymous()?)
    }

    /// An engine event on its way to order management.
    pub fn event(&self, event: &Event) {
        match event.kind {
            EventKind::Trade { .. } => self.trades.inc(),
            EventKind::Rejected { reason, .. } => {
                if let Some(i) = ENGINE_REJECTS.iter().position(|r| *r == reason) {
                    self.engine_rejects[i].inc();
                }
            }
            _ => {}
        }
    }

    /// After a busy turn that started at `started`: its duration, order management's counters,
    /// the queues and the journal's progress (`written`, `durable` sequence numbers).
    pub fn turn_done(
        &mut self,
        started: Instant,
        stats: &OmsStats,
        inbound_len: usize,
        live_orders: usize,
        journal: Option<(u64, u64)>,
    ) {
        self.cycle.record_ns(u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX));
        let now = [
            stats.risk_rejects.load(Ordering::Relaxed),
            stats.rate_limited.load(Ordering::Relaxed),
            stats.busy.load(Ordering::Relaxed),
            stats.rate_limited.load(Ordering::Relaxed),
            stats.requests.load(Ordering::Relaxed),
            stats.to_detached.load(Ordering::Relaxed),
            stats.unknown_order_events.load(Ordering::Relaxed),
        ];
        for ((counter, last), value) in self.copied.iter_mut().zip(now) {
            if value > *last {
                counter.add(value - *last);
                *last = value;
            }
        }
        self.inbound.set(i64::try_from(inbound_len).unwrap_or(i64::MAX));
        self.live_orders.set(i64::try_from(live_orders).unwrap_or(i64::MAX));
        if let Some((written, durable)) = journal {
            self.journal_position.set(i64::try_from(written).unwrap_or(i64::MAX));
            self.journal_unsynced.set(i64::try_from(written.saturating_sub(durable)).unwrap_or(i64::MAX));
        }
    }
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
    fn router_counters_copy_only_what_changed() {
        let mut registry = Registry::anonymous().unwrap();
        let mut m = RouterMetrics::register(&mut registry).unwrap();
        let stats = OmsStats::default();
        stats.risk_rejects.store(3, Ordering::Relaxed);
        m.turn_done(Instant::now(), &stats, 2, 5, Some((10, 7)));
        m.turn_done(Instant::now(), &stats, 0, 5, Some((10, 10)));
        stats.risk_rejects.store(4, Ordering::Relaxed);
        m.turn_done(Instant::now(), &stats, 0, 5, None);
        let snapshot = registry.reader().snapshot().unwrap();
        let mut text = String::new();
        monitor::prometheus::render(&snapshot, &mut text);
        assert!(text.contains("exchange_rejects_total{reason=\"risk\"} 4"), "{text}");
        assert!(text.contains("exchange_journal_unsynced_records{journal=\"commands\"} 0"), "{text}");
        assert!(text.contains("exchange_engine_cycle_seconds_count 3"), "{text}");
    }
}
