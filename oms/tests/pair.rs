//! Order management driven directly, with no socket and no thread: requests in one end, a real
//! matching engine at the other (the way quinn-proto's tests pump two endpoints in memory),
//! time stepped by the test.

use engine::{
    AccountId, CancelOrder, ClOrdId, Command, CommandKind, Engine, EngineConfig, Event, NewOrder, PriceUnits,
    ReplaceOrder, Side, SymbolId, PRICE_UNITS_PER_ONE,
};
use oms::admin::AdminConfig;
use oms::{Delivery, OmsConfig, OrderManager, RateLimits, Report, Request};
use proptest::prelude::*;

const CENT: i64 = PRICE_UNITS_PER_ONE / 100;
const BTC: SymbolId = SymbolId(0);
const SECOND_NS: u64 = 1_000_000_000;

fn id(s: &str) -> ClOrdId {
    ClOrdId::from_str(s).unwrap()
}

fn config(rate_limit: Option<RateLimits>) -> OmsConfig {
    OmsConfig {
        seq_first: 1,
        accounts: 3,
        symbols: EngineConfig::default().symbols,
        risk: None,
        rate_limit,
        admin: AdminConfig::default(),
        cancel_at_start: Vec::new(),
        drop_copies: Vec::new(),
        funds: None,
    }
}

/// Order management and an engine, pumped in memory; every command and event is kept, as a
/// journal would keep them.
struct Pair {
    oms: OrderManager,
    engine: Engine,
    now_ns: u64,
    seq: u64,
    commands: Vec<Command>,
    events: Vec<Event>,
}

impl Pair {
    fn new(config: OmsConfig) -> Pair {
        Pair {
            oms: OrderManager::new(config).unwrap(),
            engine: Engine::new(EngineConfig { orders_max: 4096, ..EngineConfig::default() }),
            now_ns: SECOND_NS,
            seq: 0,
            commands: Vec::new(),
            events: Vec::new(),
        }
    }

    fn push(&mut self, kind: CommandKind) {
        self.seq += 1;
        let mut command = Command::new(kind);
        command.header.seq = self.seq;
        command.header.ts = self.now_ns;
        let mut events = Vec::new();
        self.engine.process(&command, &mut events);
        for e in &events {
            self.oms.on_engine_event(e);
            self.oms.on_event(e);
        }
        self.oms.commands_done(self.seq);
        self.commands.push(command);
        self.events.extend(events);
    }

    fn send(&mut self, session: u64, request: Request) -> Vec<Delivery> {
        if let Some(kind) = self.oms.request(session, request, self.now_ns) {
            self.push(kind);
        }
        self.take()
    }

    fn take(&mut self) -> Vec<Delivery> {
        std::iter::from_fn(|| self.oms.pop_delivery()).collect()
    }
}

fn limit(account: u32, cl: &str, side: Side, qty: u64, cents: i64) -> Request {
    Request::New {
        order: NewOrder::limit(AccountId(account), BTC, id(cl), side, cents * CENT, qty),
        ref_seq: 0,
    }
}

fn cancel(account: u32, request: &str, orig: &str) -> Request {
    let cancel =
        CancelOrder { account: AccountId(account), symbol: BTC, id: id(orig), request_id: Some(id(request)) };
    Request::Cancel { cancel, request_id: id(request), side: Side::Buy, ref_seq: 0 }
}

fn exec(d: &Delivery) -> &oms::ExecReport {
    match &d.report {
        Report::Exec(r) => r,
        other => panic!("not an ExecutionReport: {other:?}"),
    }
}

#[test]
fn a_cross_reports_both_sides_with_cum_qty_and_avg_px_and_a_cancel_names_its_request() {
    let mut p = Pair::new(config(None));
    let out = p.send(1, limit(0, "a1", Side::Buy, 10, 10_000));
    assert_eq!((out.len(), exec(&out[0]).exec_type, out[0].account), (1, b'0', AccountId(0)));
    let out = p.send(2, limit(1, "b1", Side::Sell, 4, 9_900));
    let fills: Vec<_> = out.iter().filter(|d| exec(d).exec_type == b'F').collect();
    assert_eq!(fills.len(), 2);
    let maker = fills.iter().find(|d| d.account == AccountId(0)).unwrap();
    let r = exec(maker);
    assert_eq!((r.cum_qty, r.leaves_qty, r.ord_status, r.notional_ticks), (4, 6, b'1', 4 * 10_000));
    assert_eq!(maker.event_seq, r.exec_id / 2, "a report names the event it reports");
    let out = p.send(1, cancel(0, "c1", "a1"));
    let r = exec(&out[0]);
    assert_eq!((r.exec_type, r.cl_ord_id, r.orig_cl_ord_id, r.cum_qty), (b'4', id("c1"), Some(id("a1")), 4));
}

#[test]
fn every_request_is_answered_unknown_orders_included() {
    let mut p = Pair::new(config(None));
    p.send(1, limit(0, "a1", Side::Buy, 1, 100));
    // Another account's order is an unknown order, to a cancel and to a status request.
    let out = p.send(2, cancel(1, "x1", "a1"));
    match &out[0].report {
        Report::CancelReject(r) => assert_eq!((r.reason, r.ord_status, r.cl_ord_id), (1, b'8', id("x1"))),
        other => panic!("{other:?}"),
    }
    let status = Request::Status {
        account: AccountId(1),
        cl_ord_id: id("a1"),
        req_id: None,
        side: Side::Buy,
        symbol: BTC,
    };
    let r = exec(&p.send(2, status)[0]).clone();
    assert_eq!((r.exec_type, r.ord_status, r.ord_rej_reason), (b'I', b'8', Some(5)));
    let status = Request::Status {
        account: AccountId(0),
        cl_ord_id: id("a1"),
        req_id: None,
        side: Side::Buy,
        symbol: BTC,
    };
    assert_eq!(exec(&p.send(1, status)[0]).ord_status, b'0');
    let replace = ReplaceOrder {
        account: AccountId(0),
        symbol: BTC,
        orig_id: id("zz"),
        id: id("a2"),
        price: None,
        qty: 1,
    };
    let out = p.send(1, Request::Replace { replace, side: Side::Buy, ref_seq: 0 });
    assert!(matches!(&out[0].report, Report::CancelReject(r) if r.response_to == b'2' && r.reason == 1));
    assert_eq!(p.oms.stats().unknown_order_events.load(std::sync::atomic::Ordering::Relaxed), 0);
}

#[test]
fn a_mass_cancel_is_answered_after_its_cancels_with_the_count() {
    let mut p = Pair::new(config(None));
    p.send(1, limit(0, "a1", Side::Buy, 1, 100));
    p.send(1, limit(0, "a2", Side::Buy, 1, 101));
    let mass = Request::MassCancel {
        account: AccountId(0),
        symbol: None,
        request_id: id("m1"),
        request_type: b'7',
        ref_seq: 0,
    };
    let out = p.send(1, mass);
    assert_eq!(out.len(), 3);
    assert!(out[..2].iter().all(|d| exec(d).exec_type == b'4'));
    assert!(
        matches!(&out[2].report, Report::MassCancelReport(r) if r.affected == 2 && r.request_id == id("m1"))
    );
    // With nothing left, the answer still comes, counting none.
    let mass = Request::MassCancel {
        account: AccountId(0),
        symbol: None,
        request_id: id("m2"),
        request_type: b'7',
        ref_seq: 0,
    };
    assert!(
        matches!(&p.send(1, mass)[..], [d] if matches!(&d.report, Report::MassCancelReport(r) if r.affected == 0))
    );
}

#[test]
fn the_rate_limit_follows_the_time_it_is_given() {
    let limit_config =
        ratelimit::LimitConfig { rate_per_sec: 1, burst: 1, abuse_rejects_max: 100, abuse_window_ms: 1000 };
    let limits =
        RateLimits { session: limit_config, account: limit_config, account_overrides: vec![], keys_max: 16 };
    let mut p = Pair::new(config(Some(limits)));
    assert_eq!(exec(&p.send(1, limit(0, "a1", Side::Buy, 1, 100))[0]).exec_type, b'0');
    let out = p.send(1, limit(0, "a2", Side::Buy, 1, 100));
    assert!(
        matches!(&out[0].report, Report::BusinessReject { text, .. } if text.starts_with("rate limited"))
    );
    p.now_ns += SECOND_NS;
    assert_eq!(exec(&p.send(1, limit(0, "a3", Side::Buy, 1, 100))[0]).exec_type, b'0');
}

#[test]
fn a_drop_copy_account_gets_a_copy_of_every_execution_report_of_the_accounts_it_watches() {
    let mut p = Pair::new(OmsConfig { drop_copies: vec![(AccountId(0), AccountId(2))], ..config(None) });
    p.send(1, limit(0, "a1", Side::Buy, 5, 100));
    let out = p.send(2, limit(1, "b1", Side::Sell, 5, 100));
    let to = |account| out.iter().filter(|d| d.account == account).count();
    assert_eq!(
        (to(AccountId(0)), to(AccountId(1)), to(AccountId(2))),
        (1, 2, 1),
        "alice's fill is copied to carol, bob's reports are not"
    );
    let copy = out.iter().find(|d| d.account == AccountId(2)).unwrap();
    let original = out.iter().find(|d| d.account == AccountId(0)).unwrap();
    assert_eq!(format!("{:?}", copy.report), format!("{:?}", original.report));
    // Status answers are not copied (they report no event).
    let status = Request::Status {
        account: AccountId(0),
        cl_ord_id: id("a1"),
        req_id: None,
        side: Side::Buy,
        symbol: BTC,
    };
    assert!(p.send(1, status).iter().all(|d| d.account == AccountId(0)));
}

#[test]
fn cancel_on_disconnect_applies_to_lost_connections_only() {
    let mut p = Pair::new(config(None));
    p.oms.attach(7, AccountId(0), true);
    assert!(p.oms.detach(7, true).is_none(), "a Logout keeps the orders");
    p.oms.attach(8, AccountId(0), true);
    assert!(matches!(p.oms.detach(8, false), Some(CommandKind::CancelAll { account: AccountId(0), .. })));
    p.oms.attach(9, AccountId(1), false);
    assert!(p.oms.detach(9, false).is_none(), "an account without cancel-on-disconnect keeps them");
}

/// A random flow of orders, cancels and replaces from three accounts.
fn flow() -> impl Strategy<Value = Vec<(u8, u32, u8, u64, i64, bool)>> {
    proptest::collection::vec((0u8..10, 0u32..3, 0u8..12, 1u64..8, 95i64..106, any::<bool>()), 1..120)
}

fn run(p: &mut Pair, steps: &[(u8, u32, u8, u64, i64, bool)]) -> Vec<Delivery> {
    let mut out = Vec::new();
    for (i, &(op, account, n, qty, px, buy)) in steps.iter().enumerate() {
        let side = if buy { Side::Buy } else { Side::Sell };
        let name = format!("o{n}");
        let request = match op {
            0..=5 => limit(account, &format!("{name}-{i}"), side, qty, px * 100),
            6 | 7 => {
                let live = p.oms.orders().live_of(AccountId(account), None);
                let Some((_, s)) = live.get(n as usize % live.len().max(1)) else { continue };
                cancel(account, &format!("c{i}"), s.cl_ord_id.as_str())
            }
            _ => {
                let live = p.oms.orders().live_of(AccountId(account), None);
                let Some((_, s)) = live.get(n as usize % live.len().max(1)) else { continue };
                let replace = ReplaceOrder {
                    account: AccountId(account),
                    symbol: BTC,
                    orig_id: s.cl_ord_id,
                    id: id(&format!("r{i}")),
                    price: Some(PriceUnits(px * 100 * CENT)),
                    qty,
                };
                Request::Replace { replace, side, ref_seq: 0 }
            }
        };
        out.extend(p.send(u64::from(account), request));
    }
    out
}

proptest! {
    /// Rebuilding from the journal gives the same order state as the live run, and makes again
    /// exactly the reports of the events after what each account was given, identical to the
    /// live ones.
    #[test]
    fn a_rebuild_from_the_journal_equals_the_live_run(steps in flow(), cut in 0u64..400) {
        let mut live = Pair::new(config(None));
        let delivered = run(&mut live, &steps);
        let mut rebuilt = OrderManager::new(config(None)).unwrap();
        let reported = vec![cut; 3];
        rebuilt.rebuild(live.commands.clone(), live.events.clone(), reported);
        for account in 0..3 {
            prop_assert_eq!(rebuilt.orders().live_of(AccountId(account), None), live.oms.orders().live_of(AccountId(account), None));
        }
        let again: Vec<Delivery> = std::iter::from_fn(|| rebuilt.pop_delivery()).collect();
        let expected: Vec<&Delivery> = delivered.iter().filter(|d| d.event_seq > cut).collect();
        prop_assert_eq!(again.len(), expected.len());
        for (a, b) in again.iter().zip(expected) {
            prop_assert_eq!((a.account, a.event_seq), (b.account, b.event_seq));
            prop_assert_eq!(format!("{:?}", a.report), format!("{:?}", b.report));
        }
    }
}

/// Available amounts that never move (the follower is not running), so every passed order
/// keeps its reservation in the gate.
#[derive(Debug)]
struct Fixed {
    usd_minor: i64,
}

impl oms::funds::FundsSource for Fixed {
    fn available(&self, _account: AccountId, asset: u16) -> Option<i64> {
        Some(if asset == 0 { self.usd_minor } else { 0 })
    }
    fn cursor(&self) -> u64 {
        0
    }
}

fn replace(account: u32, orig: &str, new: &str, cents: Option<i64>, qty: u64) -> Request {
    let replace = ReplaceOrder {
        account: AccountId(account),
        symbol: BTC,
        orig_id: id(orig),
        id: id(new),
        price: cents.map(|c| PriceUnits(c * CENT)),
        qty,
    };
    Request::Replace { replace, side: Side::Buy, ref_seq: 0 }
}

/// A replace that raises an order's cost beyond the account's available funds is refused
/// before the book (a CancelReject naming risk_funds; the engine never sees it); one within
/// them passes and reserves only what it adds.
#[test]
fn a_replace_raising_the_hold_beyond_available_funds_is_refused_before_the_book() {
    let symbols = EngineConfig::default().symbols;
    let tick_units = symbols[BTC.index()].tick_units;
    let rule = oms::funds::FundsRule {
        base: 1,
        quote: 0,
        base_minor_per_qty: 1,
        // One minor unit per cent: a tick of one cent costs 1 per quantity unit.
        quote_minor_per_tick_qty: (tick_units.get() / CENT).max(1) as u64,
        fee_bps: 0,
        tick_units,
    };
    let funds = oms::funds::FundsConfig {
        source: std::sync::Arc::new(Fixed { usd_minor: 1_000 }),
        assets: vec![("USD".into(), 2), ("BTC".into(), 8)],
        rules: vec![Some(rule)],
    };
    let mut p = Pair::new(OmsConfig { funds: Some(funds), ..config(None) });
    // 5 at 1.00: 500 of the 1 000.
    let out = p.send(1, limit(0, "a1", Side::Buy, 5, 100));
    assert_eq!(exec(&out[0]).exec_type, b'0');
    let commands = p.commands.len();
    // To 12: 700 more, with 500 left.
    let out = p.send(1, replace(0, "a1", "a2", None, 12));
    match &out[0].report {
        Report::CancelReject(r) => {
            assert_eq!((r.response_to, r.cl_ord_id, r.orig_cl_ord_id), (b'2', id("a2"), id("a1")));
            assert!(
                r.text.starts_with("risk_funds: USD needed 7.00 more for the replace, available 5.00"),
                "{}",
                r.text
            );
        }
        other => panic!("not a CancelReject: {other:?}"),
    }
    assert_eq!(p.commands.len(), commands, "refused before the book");
    // A lower price costs nothing more (5 at 0.90); then 9 at 1.00 adds 900 − 450 of the 500 left.
    let out = p.send(1, replace(0, "a1", "a3", Some(90), 5));
    assert_eq!(exec(&out[0]).exec_type, b'5');
    let out = p.send(1, replace(0, "a3", "a4", Some(100), 9));
    assert_eq!(exec(&out[0]).exec_type, b'5', "{:?}", out[0].report);
    // Until the ledger books them the gate counts the order's first 500 and the raise's 450.
    let out = p.send(1, limit(0, "b1", Side::Buy, 2, 100));
    assert!(exec(&out[0]).text.as_deref().unwrap_or("").contains("available 0.50"), "{:?}", out[0].report);
}

/// A market buy of an account without a price band is valued at the symbol's reference price,
/// counted in ticks: 5 at a reference of 1.00 needs 5.00 (it was once the reference's price units
/// taken for ticks, a million times too much, and refused).
#[test]
fn a_market_buy_without_a_band_costs_the_reference_price() {
    let symbols = EngineConfig::default().symbols;
    let tick_units = symbols[BTC.index()].tick_units;
    let rule = oms::funds::FundsRule {
        base: 1,
        quote: 0,
        base_minor_per_qty: 1,
        quote_minor_per_tick_qty: 1,
        fee_bps: 0,
        tick_units,
    };
    let funds = oms::funds::FundsConfig {
        source: std::sync::Arc::new(Fixed { usd_minor: 1_000 }),
        assets: vec![("USD".into(), 2), ("BTC".into(), 8)],
        rules: vec![Some(rule)],
    };
    let mut risk = risk::RiskEngine::new(risk::RiskConfig::new(symbols, 3)).unwrap();
    risk.set_reference_price(BTC, PriceUnits(100 * CENT)).unwrap();
    let mut p = Pair::new(OmsConfig { funds: Some(funds), risk: Some(risk), ..config(None) });
    let market = |cl: &str, qty| Request::New {
        order: NewOrder::market(AccountId(0), BTC, id(cl), Side::Buy, qty),
        ref_seq: 0,
    };
    let out = p.send(1, market("m1", 5));
    assert!(!out.is_empty());
    for d in &out {
        assert!(!exec(d).text.as_deref().unwrap_or("").contains("risk_funds"), "{:?}", d.report);
    }
    let out = p.send(1, market("m2", 20));
    let text = exec(&out[0]).text.clone().unwrap_or_default();
    assert!(text.starts_with("risk_funds: USD needed 20.00"), "{text}");
}
