//! The order path of a venue without its sockets, timed with the monitoring counters on or
//! compiled out: requests into the router's channel, order management and its gates, an inline
//! engine, events back, reports into the outbox — what the gateway thread runs per order in
//! `serve`'s default topology. No journal (its own counters are not what this measures).
//!
//! One binary measures one side; build both and run them back to back, alternated:
//!
//! ```text
//! cargo bench -p gateway --bench router_onoff                        # counters on
//! cargo bench -p gateway --bench router_onoff --no-default-features  # counters compiled out
//! ```
//!
//! Each prints the minimum, 10th percentile and median ns per request over [`ROUNDS`] rounds,
//! every round a fresh router and engine fed the same seeded stream.

use std::hint::black_box;
use std::time::Instant;

use crossbeam_channel::Receiver;
use engine::{
    AccountId, CancelOrder, ClOrdId, Engine, EngineConfig, NewOrder, Side, SymbolId, PRICE_UNITS_PER_ONE,
};
use gateway::metrics::RouterMetrics;
use gateway::router::{Delivery, Request, Router, RouterConfig, RouterTx, ToRouter};
use monitor::Registry;
use oms::admin::AdminConfig;
use oms::OmsConfig;
use runtime::{Doorbell, InlineRunner, SystemClock, WaitStrategy};

/// Requests per round: a round of a few milliseconds fits between the preemptions of a loaded
/// machine, so the low percentiles of many rounds show the undisturbed cost.
const REQUESTS: usize = 4_000;
/// Rounds timed (after [`WARM_UP`] more).
const ROUNDS: usize = 200;
const WARM_UP: usize = 10;
/// Requests queued before the router is turned (a busy gateway turn's worth).
const BURST: usize = 32;
const ACCOUNTS: usize = 2;

/// A seeded stream: limit orders around a mid price from two accounts (so they trade), and a
/// cancel of an earlier order every fourth request.
fn stream() -> Vec<Request> {
    let mut x: u64 = 0x18_2026;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let tick = PRICE_UNITS_PER_ONE / 100;
    let mut out = Vec::with_capacity(REQUESTS);
    for i in 0..REQUESTS {
        let account = (i % ACCOUNTS) as u32;
        let r = next();
        if i % 4 == 3 && i >= 8 {
            let target = i - 4 - (r as usize % 4) * 2; // same account, an earlier order
            out.push(Request::Cancel {
                cancel: CancelOrder {
                    account: AccountId(account),
                    symbol: SymbolId(0),
                    id: ClOrdId::from_str(&format!("o{target}")).unwrap(),
                    request_id: Some(ClOrdId::from_str(&format!("c{i}")).unwrap()),
                },
                request_id: ClOrdId::from_str(&format!("c{i}")).unwrap(),
                side: Side::Buy,
                ref_seq: i as u64,
            });
            continue;
        }
        let side = if r & 1 == 0 { Side::Buy } else { Side::Sell };
        let offset = (r >> 8) as i64 % 10;
        let price = match side {
            Side::Buy => 10_000 * tick - offset * tick + 3 * tick,
            Side::Sell => 10_000 * tick + offset * tick - 3 * tick,
        };
        let id = ClOrdId::from_str(&format!("o{i}")).unwrap();
        out.push(Request::New {
            order: NewOrder::limit(AccountId(account), SymbolId(0), id, side, price, 1 + (r >> 20) % 5),
            ref_seq: i as u64,
        });
    }
    out
}

fn router() -> (Router, RouterTx, Receiver<Delivery>) {
    let engine_config = EngineConfig { orders_max: 2 * REQUESTS, ..EngineConfig::default() };
    let symbols = engine_config.symbols.clone();
    let engine = InlineRunner::new(Engine::new(engine_config), SystemClock, 1).unwrap();
    let mut registry = Registry::anonymous().unwrap();
    let mut metrics = RouterMetrics::register(&mut registry).unwrap();
    let names: Vec<&str> = symbols.iter().map(|s| s.name.as_str()).collect();
    metrics.watch_symbols(&mut registry, &names).unwrap();
    let config = RouterConfig {
        oms: OmsConfig {
            seq_first: 1,
            accounts: ACCOUNTS,
            symbols,
            risk: None,
            rate_limit: None,
            admin: AdminConfig::default(),
            cancel_at_start: Vec::new(),
            drop_copies: Vec::new(),
            funds: None,
        },
        wait: WaitStrategy::BusySpin,
        durability: None,
        doorbell: std::sync::Arc::new(Doorbell::new()),
        pin_core: None,
        metrics: Some(metrics),
    };
    let (mut router, tx) =
        Router::new(gateway::router::EngineLink::Inline(Box::new(engine)), config).unwrap();
    let out_rx = tx.attach_local(ACCOUNTS as u32).unwrap();
    router.begin();
    while router.turn() {}
    (router, tx, out_rx)
}

/// One round: every request of `stream` through a fresh router; the reports it made.
fn round(stream: &[Request]) -> (f64, usize) {
    let (mut router, tx, out) = router();
    let mut reports = 0;
    let started = Instant::now();
    for (i, chunk) in stream.chunks(BURST).enumerate() {
        for request in chunk {
            let session = u64::from(request.account().0) + 1;
            tx.try_send(ToRouter::Request { session, request: *request }).unwrap();
        }
        while router.turn() {}
        reports += out.try_iter().count();
        black_box(i);
    }
    let ns = started.elapsed().as_nanos() as f64 / stream.len() as f64;
    router.end();
    (ns, reports)
}

fn main() {
    // Criterion-style arguments (`--bench`, filters) are ignored.
    let stream = stream();
    let mut per_request = Vec::with_capacity(ROUNDS);
    let mut reports = None;
    for r in 0..WARM_UP + ROUNDS {
        let (ns, n) = round(&stream);
        assert!(reports.is_none_or(|m| m == n), "every round makes the same reports");
        reports = Some(n);
        if r >= WARM_UP {
            per_request.push(ns);
        }
    }
    per_request.sort_by(f64::total_cmp);
    println!(
        "router_onoff counters {:>12}: {} requests x {ROUNDS} rounds, {} reports per round: ns/request min {:.1}, p10 {:.1}, median {:.1}",
        if cfg!(feature = "metrics") { "on" } else { "compiled out" },
        stream.len(),
        reports.unwrap_or(0),
        per_request[0],
        per_request[ROUNDS / 10],
        per_request[ROUNDS / 2],
    );
}
