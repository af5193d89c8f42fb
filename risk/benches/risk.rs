//! Cost of the risk engine per order with 1,000 accounts holding 100 open orders each and every
//! limit set, so every check runs: `check_new`, then the engine's `Accepted`, then the `Canceled`
//! of that account's oldest order (which keeps the state steady at 100 open orders per account).

// Prices are written as dollars_cents (`100_00` is 100.00): the grouping is the point.
#![allow(clippy::inconsistent_digit_grouping)]

use std::collections::VecDeque;
// `std::hint::black_box`, not criterion's: criterion 0.5's is a volatile read of the whole value,
// which for the 48-byte `Result<(), RiskReject>` compiled to 48 byte loads and stores per
// iteration (a quarter of the profile of `check_new+withdraw`), measuring the harness.
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use engine::{
    default_symbols, AccountId, CancelReason, ClOrdId, Event, EventKind, NewOrder, OrderId, Price,
    PriceUnits, Side, SymbolId,
};
use risk::{Notional, RiskConfig, RiskEngine, RiskLimits};

const OPEN_PER_ACCOUNT: usize = 100;
/// Distinct ids cycled through: far more than the live orders plus the duplicate window, so a
/// reused id is long forgotten; odd, so that with 10 or 1,000 accounts an id comes back to the
/// same account only after `ID_POOL × accounts` orders.
const ID_POOL: usize = (1 << 20) + 1;
const CENT: i64 = 1_000_000;

struct Bench {
    accounts: u32,
    risk: RiskEngine,
    ids: Vec<ClOrdId>,
    live: Vec<VecDeque<ClOrdId>>,
    next: usize,
    order_id: OrderId,
}

fn event(kind: EventKind) -> Event {
    Event { seq: 0, command_seq: 0, ts: 0, kind }
}

impl Bench {
    fn new(accounts: u32) -> Bench {
        let limits = RiskLimits {
            order_qty_max: Some(1_000),
            order_notional_max: Some(Notional::from_whole(1_000_000)),
            price_band_bps: Some(500),
            open_orders_max: Some(2 * OPEN_PER_ACCOUNT as u32),
            credit_max: Some(Notional::from_whole(1_000_000_000)),
            position_max: Some(1_000_000),
            ..RiskLimits::default()
        };
        let config = RiskConfig {
            orders_max: accounts as usize * OPEN_PER_ACCOUNT * 2,
            default_limits: limits,
            ..RiskConfig::new(default_symbols(), accounts)
        };
        let mut risk = RiskEngine::new(config).unwrap();
        risk.set_reference_price(SymbolId(0), PriceUnits(100_00 * CENT)).unwrap();
        let ids = (0..ID_POOL).map(|n| ClOrdId::from_str(&format!("ord-{n:08}")).unwrap()).collect();
        let live = (0..accounts).map(|_| VecDeque::with_capacity(OPEN_PER_ACCOUNT + 1)).collect();
        let mut bench = Bench { accounts, risk, ids, live, next: 0, order_id: OrderId(0) };
        for _ in 0..OPEN_PER_ACCOUNT {
            for _ in 0..accounts {
                bench.enter();
            }
        }
        bench
    }

    /// Checks and accepts one order for the next account in turn; returns its account.
    #[inline]
    fn enter(&mut self) -> u32 {
        let n = self.next;
        self.next += 1;
        let account = (n % self.accounts as usize) as u32;
        let id = self.ids[n % ID_POOL];
        let side = if n & 1 == 0 { Side::Buy } else { Side::Sell };
        let price = (100_00 + (n % 7) as i64 - 3) * CENT;
        let order = NewOrder::limit(AccountId(account), SymbolId(0), id, side, price, 10);
        self.risk.check_new(black_box(&order)).expect("within limits");
        self.order_id.0 += 1;
        let accepted = EventKind::Accepted {
            account: AccountId(account),
            id,
            symbol: SymbolId(0),
            order_id: self.order_id,
            side,
            price: Price(price / CENT),
            qty: 10,
            tif: engine::Tif::Gtc,
            stop_price: None,
            display_qty: None,
        };
        self.risk.on_event(&event(accepted));
        self.live[account as usize].push_back(id);
        account
    }

    /// The engine cancels the account's oldest order.
    #[inline]
    fn cancel_oldest(&mut self, account: u32) {
        let id = self.live[account as usize].pop_front().expect("an open order");
        let canceled = EventKind::Canceled {
            account: AccountId(account),
            id,
            symbol: SymbolId(0),
            order_id: OrderId(0),
            reason: CancelReason::User,
            leaves_qty: 10,
        };
        self.risk.on_event(&event(canceled));
    }
}

fn risk_per_order(c: &mut Criterion) {
    let mut group = c.benchmark_group("risk");
    group.throughput(Throughput::Elements(1));
    // 1,000 accounts is the target configuration (~20 MB of order map: mostly cache misses);
    // 10 accounts keeps everything in cache and shows the cost of the checks themselves.
    for accounts in [1_000u32, 10] {
        let mut bench = Bench::new(accounts);
        let open = accounts as usize * OPEN_PER_ACCOUNT;
        assert_eq!(bench.risk.orders_tracked(), open);
        group.bench_function(format!("check_new+accepted+canceled/{accounts}x100"), |b| {
            b.iter(|| {
                let account = bench.enter();
                bench.cancel_oldest(account);
            })
        });
        group.bench_function(format!("check_new+withdraw/{accounts}x100"), |b| {
            // Past `10 × ID_POOL` iterations an id comes back to an account that still holds it
            // live: one check in ~10^4 is then a (cheaper) duplicate reject.
            b.iter(|| {
                let n = bench.next;
                bench.next += 1;
                let account = (n % accounts as usize) as u32;
                let id = bench.ids[n % ID_POOL];
                let order =
                    NewOrder::limit(AccountId(account), SymbolId(0), id, Side::Buy, 100_00 * CENT, 10);
                let result = bench.risk.check_new(black_box(&order));
                bench.risk.withdraw_new(AccountId(account), &id);
                black_box(result)
            })
        });
        assert_eq!(bench.risk.orders_tracked(), open);
    }
    group.finish();
}

criterion_group!(benches, risk_per_order);
criterion_main!(benches);
