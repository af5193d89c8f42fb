//! What the market-data and settlement threads of `serve` record into the counters file: each
//! registers its handles before its thread starts, and its thread copies its stage's own
//! numbers (the publisher's [`marketdata::PublisherStats`], the ledger's balances) into them at
//! most every [`REFRESH`], off any order's path.

use std::time::{Duration, Instant};

use marketdata::recovery::RequestError;
use monitor::{metrics, Counter, CountersError, Gauge, Registry};

/// How often a satellite thread copies its numbers into the counters file.
pub const REFRESH: Duration = Duration::from_millis(100);

/// The market-data thread's handles.
#[derive(Debug)]
pub struct MarketDataMetrics {
    messages: Counter,
    gaps: Counter,
    conflations: Counter,
    slow_cuts: Counter,
    subscribers: Gauge,
    last: marketdata::PublisherStats,
    /// Seq of the last event read from the journal, to see a gap in it.
    last_seq: Option<u64>,
    refreshed: Option<Instant>,
}

const MARKETDATA: &str = "marketdata";

impl MarketDataMetrics {
    /// Registers the market-data metrics.
    pub fn register(registry: &mut Registry) -> Result<MarketDataMetrics, CountersError> {
        Ok(MarketDataMetrics {
            messages: registry.counter(&metrics::MD_MESSAGES, MARKETDATA, &[])?,
            gaps: registry.counter(&metrics::MD_GAPS, MARKETDATA, &[])?,
            conflations: registry.counter(&metrics::MD_CONFLATIONS, MARKETDATA, &[])?,
            slow_cuts: registry.counter(&metrics::MD_SLOW_CUTS, MARKETDATA, &[])?,
            subscribers: registry.gauge(&metrics::MD_SUBSCRIBERS, MARKETDATA, &[])?,
            last: marketdata::PublisherStats::default(),
            last_seq: None,
            refreshed: None,
        })
    }

    /// Handles nobody reads (a thread started without monitoring).
    pub fn unobserved() -> Result<MarketDataMetrics, CountersError> {
        MarketDataMetrics::register(&mut Registry::anonymous()?)
    }

    /// An event with sequence number `seq` was read from the event journal: a number other
    /// than the one after the last is a gap in what the feed was given.
    #[inline]
    pub fn event_read(&mut self, seq: u64) {
        if self.last_seq.is_some_and(|last| seq != last + 1) {
            self.gaps.inc();
        }
        self.last_seq = Some(seq);
    }

    /// Copies the publisher's counters, at most every [`REFRESH`] (it takes the feed's lock).
    pub fn refresh(&mut self, feed: &marketdata::WsFeed, now: Instant) {
        if self.refreshed.is_some_and(|t| now.saturating_duration_since(t) < REFRESH) {
            return;
        }
        self.refreshed = Some(now);
        let (stats, subscribers) = feed.with_publisher(|p| (p.stats(), p.subscribers()));
        self.messages.add(stats.messages.saturating_sub(self.last.messages));
        self.conflations.add(stats.conflations.saturating_sub(self.last.conflations));
        self.slow_cuts.add(stats.disconnections.saturating_sub(self.last.disconnections));
        self.subscribers.set(i64::try_from(subscribers).unwrap_or(i64::MAX));
        self.last = stats;
    }
}

/// One counter of `def` per value of `key`, beside the fixed label `fixed`.
fn labelled(
    registry: &mut Registry,
    def: &metrics::CounterDef,
    owner: &str,
    fixed: (&str, &str),
    key: &str,
    values: &[&str],
) -> Result<Vec<Counter>, CountersError> {
    values.iter().map(|v| registry.counter(def, owner, &[fixed, (key, v)])).collect()
}

const MD_QUIC: &str = "md-quic";
const BINARY: &str = "binary";

/// Why the binary feed refused a request, as the `reason` label (one per
/// [`RequestError`] variant, in [`BINARY_REFUSALS`] order).
pub const BINARY_REFUSALS: [&str; 11] = [
    "malformed",
    "unknown_type",
    "unknown_symbol",
    "not_subscribed",
    "no_subscription",
    "symbol_count",
    "range_too_large",
    "in_the_future",
    "unavailable",
    "disconnected",
    "subscription_refused",
];

fn binary_refusal(e: &RequestError) -> usize {
    match e {
        RequestError::Malformed(_) => 0,
        RequestError::UnknownType(_) => 1,
        RequestError::UnknownSymbol(_) => 2,
        RequestError::NotSubscribed(_) => 3,
        RequestError::NoSubscription => 4,
        RequestError::SymbolCount { .. } => 5,
        RequestError::RangeTooLarge { .. } => 6,
        RequestError::InTheFuture { .. } => 7,
        RequestError::Unavailable { .. } => 8,
        RequestError::Disconnected(_) => 9,
        RequestError::SubscriptionRefused(_) => 10,
    }
}

/// Why the binary feed cut a connection off, as the `reason` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryCut {
    /// The publisher dropped it for falling behind (`slow_policy = "disconnect"`).
    SlowSubscriber,
    /// Requests arrived faster than they were served.
    RequestFlood,
    /// It asked for more than it read: the stream's backlog filled.
    StreamBacklog,
}

const BINARY_CUTS: [&str; 3] = ["slow_subscriber", "request_flood", "stream_backlog"];

/// The binary feed's handles, owned and bumped by its `md-quic` thread: retransmissions by
/// source, snapshots served on request, refusals by reason, connections open, cut-offs by
/// reason. (Conflations happen in the shared publisher and are counted by
/// [`MarketDataMetrics`].)
#[derive(Debug)]
pub struct BinaryFeedMetrics {
    retransmissions: [Counter; 2],
    snapshots: Counter,
    refusals: [Counter; BINARY_REFUSALS.len()],
    connections: Gauge,
    cuts: [Counter; BINARY_CUTS.len()],
}

impl BinaryFeedMetrics {
    /// Registers the binary feed's metrics.
    pub fn register(registry: &mut Registry) -> Result<BinaryFeedMetrics, CountersError> {
        let feed = ("feed", BINARY);
        let retransmissions =
            labelled(registry, &metrics::MD_RETRANSMISSIONS, MD_QUIC, feed, "source", &["log", "journal"])?;
        let refusals = labelled(registry, &metrics::MD_REFUSALS, MD_QUIC, feed, "reason", &BINARY_REFUSALS)?;
        let cuts = labelled(registry, &metrics::MD_CUTS, MD_QUIC, feed, "reason", &BINARY_CUTS)?;
        Ok(BinaryFeedMetrics {
            retransmissions: retransmissions.try_into().expect("one per source"),
            snapshots: registry.counter(&metrics::MD_SNAPSHOTS, MD_QUIC, &[feed])?,
            refusals: refusals.try_into().expect("one per reason"),
            connections: registry.gauge(&metrics::MD_CONNECTIONS, MD_QUIC, &[feed])?,
            cuts: cuts.try_into().expect("one per reason"),
        })
    }

    /// Handles nobody reads (a feed started without monitoring).
    pub fn unobserved() -> Result<BinaryFeedMetrics, CountersError> {
        BinaryFeedMetrics::register(&mut Registry::anonymous()?)
    }

    /// A retransmission served, from the publisher's log (`journal` false) or the event journal.
    #[inline]
    pub fn retransmitted(&self, journal: bool) {
        self.retransmissions[usize::from(journal)].inc();
    }

    /// A snapshot served on request.
    #[inline]
    pub fn snapshot(&self) {
        self.snapshots.inc();
    }

    /// A request refused with `e` on the stream.
    #[inline]
    pub fn refused(&self, e: &RequestError) {
        self.refusals[binary_refusal(e)].inc();
    }

    /// A connection cut off.
    #[inline]
    pub fn cut(&self, why: BinaryCut) {
        self.cuts[why as usize].inc();
    }

    /// Connections open now.
    #[inline]
    pub fn connections(&self, open: usize) {
        self.connections.set(i64::try_from(open).unwrap_or(i64::MAX));
    }
}

const SETTLEMENT: &str = "settlement";

/// The settlement thread's handles: transfers stored, trade legs waiting for settlement, and
/// per asset the sum of all posted balances, which double entry keeps at 0.
#[derive(Debug)]
pub struct SettlementMetrics {
    postings: Counter,
    pending: Gauge,
    /// Pending legs by due date ([`settlement::UNSETTLED_DUE`]).
    pending_due: [Gauge; settlement::UNSETTLED_DUE.len()],
    /// One gauge per asset, in the ledger's asset order.
    imbalance: Vec<Gauge>,
    last_postings: Option<u64>,
    refreshed: Option<Instant>,
    /// Scratch sums per asset (kept, so a refresh allocates nothing).
    sums: Vec<i128>,
    /// The payments service beside the ledger, when it runs.
    payments: Option<(PaymentsMetrics, PaymentsSource)>,
}

/// Reads the payments service's counters ([`crate::payments_run::PaymentsRun::stats_source`]).
#[derive(Clone)]
pub struct PaymentsSource(pub std::sync::Arc<dyn Fn() -> payments::PaymentsStats + Send + Sync>);

impl std::fmt::Debug for PaymentsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PaymentsSource")
    }
}

impl SettlementMetrics {
    /// Registers the settlement metrics for a ledger of `assets` (names, in the ledger's order).
    pub fn register(registry: &mut Registry, assets: &[&str]) -> Result<SettlementMetrics, CountersError> {
        let mut imbalance = Vec::with_capacity(assets.len());
        for asset in assets {
            imbalance.push(registry.gauge(&metrics::LEDGER_IMBALANCE, SETTLEMENT, &[("currency", asset)])?);
        }
        let mut pending_due = Vec::with_capacity(settlement::UNSETTLED_DUE.len());
        for due in settlement::UNSETTLED_DUE {
            pending_due.push(registry.gauge(
                &metrics::SETTLEMENT_PENDING_DUE,
                SETTLEMENT,
                &[("due", due)],
            )?);
        }
        Ok(SettlementMetrics {
            pending_due: pending_due.try_into().expect("one per bucket"),
            postings: registry.counter(&metrics::LEDGER_POSTINGS, SETTLEMENT, &[])?,
            pending: registry.gauge(&metrics::SETTLEMENT_PENDING, SETTLEMENT, &[])?,
            sums: vec![0; assets.len()],
            imbalance,
            last_postings: None,
            refreshed: None,
            payments: None,
        })
    }

    /// Refreshes the payments metrics too, reading `stats` (with the ledger's lock not held).
    pub fn with_payments(&mut self, metrics: PaymentsMetrics, stats: PaymentsSource) {
        self.payments = Some((metrics, stats));
    }

    /// Copies the payments service's numbers, when it runs: call it without the ledger's lock
    /// (a payment holds its own lock while it takes the ledger's).
    pub fn refresh_payments(&mut self) {
        if let Some((metrics, stats)) = &mut self.payments {
            metrics.refresh(&(stats.0)());
        }
    }

    /// True when [`REFRESH`] has passed since the last refresh (so the caller takes the
    /// ledger's lock only then).
    pub fn due(&self, now: Instant) -> bool {
        self.refreshed.is_none_or(|t| now.saturating_duration_since(t) >= REFRESH)
    }

    /// Copies the ledger's numbers at `now`: a walk over its accounts, on the settlement
    /// thread, with the ledger's lock held (the HTTP API waits that long).
    pub fn refresh<S: settlement::Store>(&mut self, ledger: &settlement::Settlement<S>, now: Instant) {
        self.refreshed = Some(now);
        let book = ledger.ledger();
        // Transfers stored since start: the first refresh counts those recovered too.
        let stored = book.transfer_count() as u64;
        self.postings.add(stored.saturating_sub(self.last_postings.unwrap_or(0)));
        self.last_postings = Some(stored.max(self.last_postings.unwrap_or(0)));
        self.pending.set(i64::try_from(ledger.unsettled_legs()).unwrap_or(i64::MAX));
        let today = time::OffsetDateTime::now_utc().date();
        for (gauge, legs) in self.pending_due.iter().zip(ledger.unsettled_legs_by_due(today)) {
            gauge.set(i64::try_from(legs).unwrap_or(i64::MAX));
        }
        self.sums.iter_mut().for_each(|s| *s = 0);
        for i in 0..book.account_count() {
            let idx = settlement::AccountIdx(i);
            if let (Some((_, asset, _)), Some(balances)) = (book.account_info(idx), book.balances(idx)) {
                if let Some(sum) = self.sums.get_mut(asset.0 as usize) {
                    *sum += balances.posted();
                }
            }
        }
        for (gauge, sum) in self.imbalance.iter().zip(&self.sums) {
            gauge.set(i64::try_from(*sum).unwrap_or(if *sum < 0 { i64::MIN } else { i64::MAX }));
        }
    }
}

const PAYMENTS: &str = "payments";

/// The final statuses `exchange_payments_total` is registered for (indices into
/// [`payments::Status::ALL`]).
const PAYMENT_FINALS: [payments::Status; 4] = [
    payments::Status::Succeeded,
    payments::Status::Failed,
    payments::Status::PartiallyRefunded,
    payments::Status::Refunded,
];

/// A breaker's state as the gauge shows it: 0 closed, 1 half-open, 2 open.
pub fn breaker_level(state: payments::breaker::BreakerState) -> i64 {
    match state {
        payments::breaker::BreakerState::Closed => 0,
        payments::breaker::BreakerState::HalfOpen => 1,
        payments::breaker::BreakerState::Open => 2,
    }
}

/// The payments service's handles, refreshed with the settlement thread's (every
/// [`REFRESH`]) from [`payments::PaymentsStats`]: the service counts under the locks its
/// requests take anyway, and this copy takes each of them once, briefly.
#[derive(Debug)]
pub struct PaymentsMetrics {
    replays: Counter,
    refused_in_flight: Counter,
    refused_other_body: Counter,
    finals: [Counter; PAYMENT_FINALS.len()],
    webhooks: [Counter; 3],
    rails_breaker: Gauge,
    webhook_breaker: Gauge,
    last: Option<payments::PaymentsStats>,
}

impl PaymentsMetrics {
    /// Registers the payments metrics.
    pub fn register(registry: &mut Registry) -> Result<PaymentsMetrics, CountersError> {
        let service = ("service", PAYMENTS);
        let refusal = |registry: &mut Registry, code: &str| {
            registry.counter(&metrics::IDEMPOTENCY_REFUSALS, PAYMENTS, &[service, ("code", code)])
        };
        let refused_in_flight = refusal(registry, "409")?;
        let refused_other_body = refusal(registry, "422")?;
        let mut finals = Vec::with_capacity(PAYMENT_FINALS.len());
        for status in PAYMENT_FINALS {
            finals.push(registry.counter(&metrics::PAYMENTS, PAYMENTS, &[("status", status.as_str())])?);
        }
        let mut webhooks = Vec::with_capacity(3);
        for outcome in ["delivered", "failed", "dropped"] {
            webhooks.push(registry.counter(
                &metrics::WEBHOOK_DELIVERIES,
                PAYMENTS,
                &[("outcome", outcome)],
            )?);
        }
        Ok(PaymentsMetrics {
            replays: registry.counter(&metrics::IDEMPOTENT_REPLAYS, PAYMENTS, &[service])?,
            refused_in_flight,
            refused_other_body,
            finals: finals.try_into().expect("one per status"),
            webhooks: webhooks.try_into().expect("one per outcome"),
            rails_breaker: registry.gauge(
                &metrics::BREAKER_STATE,
                PAYMENTS,
                &[("breaker", "payments_rails")],
            )?,
            webhook_breaker: registry.gauge(&metrics::BREAKER_STATE, PAYMENTS, &[("breaker", "webhooks")])?,
            last: None,
        })
    }

    /// Copies what changed since the last copy.
    pub fn refresh(&mut self, now: &payments::PaymentsStats) {
        let last = self.last.replace(*now);
        let was = |f: fn(&payments::PaymentsStats) -> u64| last.as_ref().map_or(0, f);
        self.replays.add(now.replays.saturating_sub(was(|s| s.replays)));
        self.refused_in_flight.add(now.refused_in_flight.saturating_sub(was(|s| s.refused_in_flight)));
        self.refused_other_body.add(now.refused_other_body.saturating_sub(was(|s| s.refused_other_body)));
        for (counter, status) in self.finals.iter().zip(PAYMENT_FINALS) {
            let i = status.index();
            counter.add(now.finals[i].saturating_sub(last.as_ref().map_or(0, |s| s.finals[i])));
        }
        let outcomes =
            |s: &payments::PaymentsStats| [s.webhooks.delivered, s.webhooks.failed, s.webhooks.dropped];
        let before = last.as_ref().map_or([0; 3], outcomes);
        for ((counter, n), b) in self.webhooks.iter().zip(outcomes(now)).zip(before) {
            counter.add(n.saturating_sub(b));
        }
        self.rails_breaker.set(breaker_level(now.rails_breaker));
        self.webhook_breaker.set(breaker_level(now.webhook_breaker));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jump_in_the_event_sequence_counts_one_gap() {
        let mut registry = Registry::anonymous().unwrap();
        let mut m = MarketDataMetrics::register(&mut registry).unwrap();
        for seq in [1, 2, 3, 7, 8, 8] {
            m.event_read(seq);
        }
        let mut text = String::new();
        monitor::prometheus::render(&registry.reader().snapshot().unwrap(), &mut text);
        // 3 → 7 skips, 8 → 8 repeats: both are not the event after the last.
        assert!(text.contains("exchange_marketdata_gaps_total 2\n"), "{text}");
    }

    fn render(registry: &Registry) -> String {
        let mut text = String::new();
        monitor::prometheus::render(&registry.reader().snapshot().unwrap(), &mut text);
        text
    }

    #[test]
    fn the_binary_feed_counts_by_source_reason_and_cut() {
        let mut registry = Registry::anonymous().unwrap();
        let m = BinaryFeedMetrics::register(&mut registry).unwrap();
        m.retransmitted(false);
        m.retransmitted(false);
        m.retransmitted(true);
        m.snapshot();
        m.refused(&RequestError::NoSubscription);
        m.refused(&RequestError::RangeTooLarge { count: 0 });
        m.refused(&RequestError::RangeTooLarge { count: 9 });
        m.cut(BinaryCut::StreamBacklog);
        m.connections(3);
        let text = render(&registry);
        for line in [
            "exchange_marketdata_retransmissions_total{feed=\"binary\",source=\"log\"} 2\n",
            "exchange_marketdata_retransmissions_total{feed=\"binary\",source=\"journal\"} 1\n",
            "exchange_marketdata_snapshots_total{feed=\"binary\"} 1\n",
            "exchange_marketdata_refusals_total{feed=\"binary\",reason=\"no_subscription\"} 1\n",
            "exchange_marketdata_refusals_total{feed=\"binary\",reason=\"range_too_large\"} 2\n",
            "exchange_marketdata_refusals_total{feed=\"binary\",reason=\"malformed\"} 0\n",
            "exchange_marketdata_cuts_total{feed=\"binary\",reason=\"stream_backlog\"} 1\n",
            "exchange_marketdata_cuts_total{feed=\"binary\",reason=\"slow_subscriber\"} 0\n",
            "exchange_marketdata_connections{feed=\"binary\"} 3\n",
        ] {
            assert!(text.contains(line), "{line}{text}");
        }
        // Every refusal maps to its own label, named as the variant is.
        let codes = [
            RequestError::Malformed("x"),
            RequestError::UnknownType(9),
            RequestError::UnknownSymbol("X".into()),
            RequestError::NotSubscribed(engine::SymbolId(1)),
            RequestError::NoSubscription,
            RequestError::SymbolCount { asked: 0 },
            RequestError::RangeTooLarge { count: 0 },
            RequestError::InTheFuture { from: 1, count: 1, last: 0 },
            RequestError::Unavailable { from: 1, why: String::new() },
            RequestError::Disconnected(String::new()),
            RequestError::SubscriptionRefused(String::new()),
        ];
        let mut seen: Vec<usize> = codes.iter().map(binary_refusal).collect();
        seen.dedup();
        assert_eq!(seen, (0..BINARY_REFUSALS.len()).collect::<Vec<_>>());
    }

    fn stats(
        replays: u64,
        succeeded: u64,
        delivered: u64,
        rails: payments::breaker::BreakerState,
    ) -> payments::PaymentsStats {
        let mut finals = [0; payments::Status::ALL.len()];
        finals[payments::Status::Succeeded.index()] = succeeded;
        payments::PaymentsStats {
            replays,
            refused_in_flight: 0,
            refused_other_body: replays / 2,
            finals,
            rails_breaker: rails,
            webhook_breaker: payments::breaker::BreakerState::HalfOpen,
            webhooks: payments::webhook::DeliveryOutcomes { delivered, failed: 1, dropped: 0 },
        }
    }

    #[test]
    fn payments_copies_add_what_changed_and_show_the_breakers() {
        use payments::breaker::BreakerState;
        let mut registry = Registry::anonymous().unwrap();
        let mut m = PaymentsMetrics::register(&mut registry).unwrap();
        m.refresh(&stats(2, 3, 1, BreakerState::Closed));
        m.refresh(&stats(5, 4, 1, BreakerState::Open));
        let text = render(&registry);
        for line in [
            "exchange_idempotent_replays_total{service=\"payments\"} 5\n",
            "exchange_idempotency_refusals_total{service=\"payments\",code=\"422\"} 2\n",
            "exchange_idempotency_refusals_total{service=\"payments\",code=\"409\"} 0\n",
            "exchange_payments_total{status=\"succeeded\"} 4\n",
            "exchange_payments_total{status=\"refunded\"} 0\n",
            "exchange_webhook_deliveries_total{outcome=\"delivered\"} 1\n",
            "exchange_webhook_deliveries_total{outcome=\"failed\"} 1\n",
            "exchange_breaker_state{breaker=\"payments_rails\"} 2\n",
            "exchange_breaker_state{breaker=\"webhooks\"} 1\n",
        ] {
            assert!(text.contains(line), "{line}{text}");
        }
    }
}
