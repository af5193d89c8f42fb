//! Every metric the venue emits, defined once: stages register these definitions, and the alert
//! rules (`prometheus/alerts.yml`) query exactly these names (a test checks that every name the
//! rules use is defined here).
//!
//! Labels are given at registration; the ones each metric expects are in its help's brackets.

/// A counter's name and help.
#[derive(Clone, Copy, Debug)]
pub struct CounterDef {
    /// Prometheus name, ending in `_total`.
    pub name: &'static str,
    /// One line for `# HELP`.
    pub help: &'static str,
}

/// A gauge's name and help.
#[derive(Clone, Copy, Debug)]
pub struct GaugeDef {
    /// Prometheus name.
    pub name: &'static str,
    /// One line for `# HELP`.
    pub help: &'static str,
    /// The value is set in nanoseconds and rendered in seconds (the name ends in `_seconds`).
    pub nanoseconds: bool,
}

/// A histogram's name and help; values are recorded in nanoseconds and rendered in seconds.
#[derive(Clone, Copy, Debug)]
pub struct HistogramDef {
    /// Prometheus name, ending in `_seconds`.
    pub name: &'static str,
    /// One line for `# HELP`.
    pub help: &'static str,
}

const fn counter(name: &'static str, help: &'static str) -> CounterDef {
    CounterDef { name, help }
}

const fn gauge(name: &'static str, help: &'static str) -> GaugeDef {
    GaugeDef { name, help, nanoseconds: false }
}

const fn histogram(name: &'static str, help: &'static str) -> HistogramDef {
    HistogramDef { name, help }
}

/// Orders received, after decoding [type=limit|market|stop|cancel|replace].
pub const ORDERS_IN: CounterDef = counter("exchange_orders_in_total", "Orders received [type].");
/// Rejects sent [reason].
pub const REJECTS: CounterDef = counter("exchange_rejects_total", "Rejects sent [reason].");
/// Trades executed.
pub const TRADES: CounterDef = counter("exchange_trades_total", "Trades executed.");
/// Logons accepted.
pub const LOGONS: CounterDef = counter("exchange_logons_total", "Logons accepted.");
/// Logons refused.
pub const LOGONS_FAILED: CounterDef = counter("exchange_logons_failed_total", "Logons refused [reason].");
/// Messages refused by the rate limiter.
pub const RATELIMIT_REFUSALS: CounterDef =
    counter("exchange_ratelimit_refusals_total", "Messages refused by the rate limiter [scope].");
/// Bytes appended to the journals.
pub const JOURNAL_BYTES: CounterDef = counter("exchange_journal_bytes_total", "Bytes appended [journal].");
/// Journal syncs (msync/fdatasync) done.
pub const JOURNAL_SYNCS: CounterDef =
    counter("exchange_journal_syncs_total", "Journal syncs done [journal].");
/// Market-data messages sent.
pub const MD_MESSAGES: CounterDef =
    counter("exchange_marketdata_messages_total", "Market-data messages sent.");
/// Sequence gaps seen by market-data consumers.
pub const MD_GAPS: CounterDef =
    counter("exchange_marketdata_gaps_total", "Market-data sequence gaps detected.");
/// Market-data retransmissions served [source=log|journal].
pub const MD_RETRANSMISSIONS: CounterDef =
    counter("exchange_marketdata_retransmissions_total", "Market-data retransmissions served [source].");
/// Snapshots served: the binary feed's on request, the FIX desk's 35=W (fragments one each).
pub const MD_SNAPSHOTS: CounterDef =
    counter("exchange_marketdata_snapshots_total", "Market-data snapshots sent [feed].");
/// Incremental refreshes sent (the FIX desk's 35=X).
pub const MD_INCREMENTALS: CounterDef =
    counter("exchange_marketdata_incrementals_total", "Market-data incremental refreshes sent [feed].");
/// Market-data requests refused, each with its reason on the wire.
pub const MD_REFUSALS: CounterDef =
    counter("exchange_marketdata_refusals_total", "Market-data requests refused [feed, reason].");
/// Connections a feed cut off itself (beyond the publisher's slow-subscriber cuts).
pub const MD_CUTS: CounterDef =
    counter("exchange_marketdata_cuts_total", "Market-data connections cut off by the feed [feed, reason].");
/// FIX subscriptions conflated for a slow session (each later refreshed by a 35=W).
pub const MD_STALE_SUBSCRIPTIONS: CounterDef = counter(
    "exchange_marketdata_stale_subscriptions_total",
    "Subscriptions conflated for a slow session, refreshed by a snapshot later [feed].",
);
/// Trading status messages sent to subscribers (the FIX desk's 35=f on a halt or resume).
pub const MD_STATUS_MESSAGES: CounterDef = counter(
    "exchange_marketdata_status_messages_total",
    "Halt and resume messages sent to subscribers [feed].",
);
/// Times a slow subscriber's queue was replaced by a snapshot.
pub const MD_CONFLATIONS: CounterDef =
    counter("exchange_marketdata_conflations_total", "Slow subscribers' queues replaced by a snapshot.");
/// Subscribers cut off for being slow.
pub const MD_SLOW_CUTS: CounterDef =
    counter("exchange_marketdata_slow_subscriber_cuts_total", "Subscribers cut off for falling behind.");
/// Ledger postings written.
pub const LEDGER_POSTINGS: CounterDef = counter("exchange_ledger_postings_total", "Ledger postings written.");
/// Requests answered from the idempotency store instead of executed again [service].
pub const IDEMPOTENT_REPLAYS: CounterDef =
    counter("exchange_idempotent_replays_total", "Requests answered from the idempotency store [service].");
/// Requests refused for their Idempotency-Key: 409 still in flight, 422 another body.
pub const IDEMPOTENCY_REFUSALS: CounterDef = counter(
    "exchange_idempotency_refusals_total",
    "Requests refused for their Idempotency-Key (409 in flight, 422 other body) [service, code].",
);
/// Payments that reached a final status (a refund counts again under its new status).
pub const PAYMENTS: CounterDef =
    counter("exchange_payments_total", "Payments reaching a final status [kind, status].");
/// Webhook deliveries finished.
pub const WEBHOOK_DELIVERIES: CounterDef = counter(
    "exchange_webhook_deliveries_total",
    "Webhook deliveries finished [outcome=delivered|failed|dropped].",
);
/// Requests order management sent to the engine.
pub const ROUTER_REQUESTS: CounterDef =
    counter("exchange_router_requests_total", "Requests order management sent to the engine.");
/// Reports kept for accounts with no connection (sent on their next Logon).
pub const REPORTS_TO_DETACHED: CounterDef =
    counter("exchange_reports_to_detached_total", "Reports kept for accounts with no connection.");
/// Engine events about an order order management does not know: never expected.
pub const UNKNOWN_ORDER_EVENTS: CounterDef =
    counter("exchange_unknown_order_events_total", "Engine events about an unknown order (a bug).");

/// Entries waiting in a ring [ring].
pub const RING_OCCUPANCY: GaugeDef = gauge("exchange_ring_occupancy", "Entries waiting in a ring [ring].");
/// Resting orders [symbol].
pub const RESTING_ORDERS: GaugeDef = gauge("exchange_resting_orders", "Resting orders [symbol].");
/// Last command sequence number journaled.
pub const JOURNAL_POSITION: GaugeDef =
    gauge("exchange_journal_position", "Last sequence number appended [journal].");
/// Records appended to a journal and not yet durable under its sync policy.
pub const JOURNAL_UNSYNCED: GaugeDef = gauge(
    "exchange_journal_unsynced_records",
    "Records appended and not yet durable (written minus durable sequence) [journal].",
);
/// Orders live in order management (resting, or on their way to the book).
pub const LIVE_ORDERS: GaugeDef = gauge("exchange_live_orders", "Orders live in order management.");
/// How long the journal has had unsynced records without a sync completing (0 while synced).
pub const JOURNAL_SYNC_LAG: GaugeDef = GaugeDef {
    name: "exchange_journal_sync_lag_seconds",
    help: "Time with unsynced records and no sync completing [journal].",
    nanoseconds: true,
};
/// The longest engine loop turn over the last one to two seconds.
pub const ENGINE_CYCLE_MAX: GaugeDef = GaugeDef {
    name: "exchange_engine_cycle_recent_max_seconds",
    help: "Longest engine loop turn in the current and the previous second.",
    nanoseconds: true,
};
/// FIX sessions logged on.
pub const SESSIONS: GaugeDef = gauge("exchange_sessions", "FIX sessions logged on [transport].");
/// Binary-feed connections open.
pub const MD_CONNECTIONS: GaugeDef =
    gauge("exchange_marketdata_connections", "Market-data connections open [feed].");
/// FIX market-data symbol subscriptions held (one per MDReqID and symbol).
pub const MD_SUBSCRIPTIONS: GaugeDef =
    gauge("exchange_marketdata_subscriptions", "Market-data symbol subscriptions held [feed].");
/// A circuit breaker's state: 0 closed, 1 half-open, 2 open.
pub const BREAKER_STATE: GaugeDef =
    gauge("exchange_breaker_state", "Circuit breaker state: 0 closed, 1 half-open, 2 open [breaker].");
/// Market-data subscribers.
pub const MD_SUBSCRIBERS: GaugeDef = gauge("exchange_marketdata_subscribers", "Market-data subscribers.");
/// Trade legs applied to the ledger and waiting for the daily settlement run.
pub const SETTLEMENT_PENDING: GaugeDef =
    gauge("exchange_settlement_pending", "Trade legs waiting for the daily settlement run.");
/// Trade legs waiting for settlement, by when they settle.
pub const SETTLEMENT_PENDING_DUE: GaugeDef = gauge(
    "exchange_settlement_pending_legs",
    "Trade legs waiting for settlement by due date [due=overdue|today|next_business_day|later].",
);
/// Sum of all ledger balances in minor units: anything but 0 is a bug.
pub const LEDGER_IMBALANCE: GaugeDef =
    gauge("exchange_ledger_imbalance_minor_units", "Sum of all ledger balances; must be 0 [currency].");
/// Kill switches engaged now: for `scope="account"`, the accounts whose switch is on.
pub const KILL_SWITCH: GaugeDef =
    gauge("exchange_kill_switch_engaged", "Kill switches engaged; above 0 while any is [scope].");

/// Time spent in one stage [stage=decode|session|risk|ratelimit|match|journal_append|journal_sync].
pub const STAGE_LATENCY: HistogramDef =
    histogram("exchange_stage_latency_seconds", "Time spent in one stage per message [stage].");
/// End to end: order in → report out.
pub const ORDER_LATENCY: HistogramDef =
    histogram("exchange_order_latency_seconds", "Order received to report sent.");
/// One turn of the engine loop (its max is the longest cycle).
pub const ENGINE_CYCLE: HistogramDef =
    histogram("exchange_engine_cycle_seconds", "One turn of the engine loop.");

/// Rendered from the health checks, not the counters file: 1 while a check passes [check, probe].
pub const HEALTH_CHECK: &str = "exchange_health_check";

/// Every counter name, for checks and documentation.
pub const COUNTERS: &[CounterDef] = &[
    ORDERS_IN,
    REJECTS,
    TRADES,
    LOGONS,
    LOGONS_FAILED,
    RATELIMIT_REFUSALS,
    JOURNAL_BYTES,
    JOURNAL_SYNCS,
    MD_MESSAGES,
    MD_GAPS,
    MD_RETRANSMISSIONS,
    MD_SNAPSHOTS,
    MD_INCREMENTALS,
    MD_REFUSALS,
    MD_CUTS,
    MD_STALE_SUBSCRIPTIONS,
    MD_STATUS_MESSAGES,
    MD_CONFLATIONS,
    MD_SLOW_CUTS,
    LEDGER_POSTINGS,
    IDEMPOTENT_REPLAYS,
    IDEMPOTENCY_REFUSALS,
    PAYMENTS,
    WEBHOOK_DELIVERIES,
    ROUTER_REQUESTS,
    REPORTS_TO_DETACHED,
    UNKNOWN_ORDER_EVENTS,
];

/// Every gauge.
pub const GAUGES: &[GaugeDef] = &[
    RING_OCCUPANCY,
    RESTING_ORDERS,
    JOURNAL_POSITION,
    JOURNAL_UNSYNCED,
    LIVE_ORDERS,
    JOURNAL_SYNC_LAG,
    ENGINE_CYCLE_MAX,
    SESSIONS,
    MD_CONNECTIONS,
    MD_SUBSCRIPTIONS,
    BREAKER_STATE,
    MD_SUBSCRIBERS,
    SETTLEMENT_PENDING,
    SETTLEMENT_PENDING_DUE,
    LEDGER_IMBALANCE,
    KILL_SWITCH,
];

/// Every histogram.
pub const HISTOGRAMS: &[HistogramDef] = &[STAGE_LATENCY, ORDER_LATENCY, ENGINE_CYCLE];

/// Every name a scrape can contain: families, and the series names histograms add.
pub fn exposed_names() -> Vec<String> {
    let mut names: Vec<String> = COUNTERS.iter().map(|c| c.name.to_owned()).collect();
    names.extend(GAUGES.iter().map(|g| g.name.to_owned()));
    for h in HISTOGRAMS {
        names.push(h.name.to_owned());
        for suffix in ["_bucket", "_sum", "_count"] {
            names.push(format!("{}{suffix}", h.name));
        }
        names.push(crate::prometheus::max_name(h.name));
    }
    names.push(HEALTH_CHECK.to_owned());
    names
}

#[cfg(test)]
mod tests {
    /// Two definitions, or a definition and the series a histogram adds (`_max_seconds`), with
    /// one name would render two HELP lines for it: promtool refuses such a scrape.
    #[test]
    fn every_exposed_name_is_unique() {
        let mut names = super::exposed_names();
        let all = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), all, "a name is exposed twice");
    }
}
