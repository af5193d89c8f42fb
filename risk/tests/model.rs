//! Property test: random orders, cancels and replaces go through risk and a real engine, with
//! the engine processing the checked commands at random moments (so checks run against pending
//! state). After every step, the risk engine's state is compared with a naive recomputation from
//! the engine's book and the trade tape: positions and costs equal, reservations at least the
//! live orders' (equal once nothing is pending), and the position and credit limits hold.

// Prices are written as dollars_cents (`100_00` is 100.00): the grouping is the point.
#![allow(clippy::inconsistent_digit_grouping)]

mod common;

use std::collections::HashMap;

use common::*;
use engine::{AccountId, CancelOrder, CommandKind, EventKind, PriceUnits, Side, Tif};
use proptest::prelude::*;
use risk::{Notional, RiskConfig, RiskLimits};

#[derive(Clone, Debug)]
enum Op {
    New { account: u32, buy: bool, cents: Option<i64>, ioc: bool, qty: u64 },
    Cancel { account: u32, pick: usize },
    Replace { account: u32, pick: usize, cents: Option<i64>, qty: u64, keep_id: bool },
    Process(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0u32..4, any::<bool>(), prop::option::weighted(0.85, 97_00i64..103_00), prop::bool::weighted(0.2), 1u64..10)
            .prop_map(|(account, buy, cents, ioc, qty)| Op::New { account, buy, cents, ioc, qty }),
        1 => (0u32..4, any::<usize>()).prop_map(|(account, pick)| Op::Cancel { account, pick }),
        2 => (0u32..4, any::<usize>(), prop::option::of(97_00i64..103_00), 1u64..14, any::<bool>())
            .prop_map(|(account, pick, cents, qty, keep_id)| Op::Replace { account, pick, cents, qty, keep_id }),
        3 => (0usize..4).prop_map(Op::Process),
    ]
}

const POSITION_MAX: i128 = 15;
const CREDIT_MAX: u64 = 2_000;

fn config() -> RiskConfig {
    RiskConfig { recent_ids_max: 64, ..RiskConfig::new(engine::default_symbols(), 4) }
}

/// Open quantity (buy, sell), open buy notional and count of the account's resting orders, from
/// the engine's book.
fn naive_open(h: &Harness, account: AccountId) -> (i128, i128, i128, u32) {
    let book = h.engine.book_snapshot(BTC);
    let tick = h.risk.symbols()[BTC.index()].tick_units.get();
    let (mut buy, mut sell, mut notional, mut count) = (0i128, 0i128, 0i128, 0u32);
    for (levels, is_buy) in [(&book.bids, true), (&book.asks, false)] {
        for level in levels {
            for o in level.orders.iter().filter(|o| o.account == account) {
                count += 1;
                if is_buy {
                    buy += i128::from(o.qty);
                    notional += i128::from(o.qty) * i128::from(level.price.0 * tick);
                } else {
                    sell += i128::from(o.qty);
                }
            }
        }
    }
    (buy, sell, notional, count)
}

/// Position and net cost of each account from the trade tape.
fn naive_positions(h: &Harness) -> HashMap<AccountId, (i128, i128)> {
    let tick = h.risk.symbols()[BTC.index()].tick_units.get();
    let mut out: HashMap<AccountId, (i128, i128)> = HashMap::new();
    for e in &h.events {
        if let EventKind::Trade { price, qty, maker_account, taker_account, aggressor, .. } = e.kind {
            let notional = i128::from(qty) * i128::from(price.0 * tick);
            for (account, side) in [(maker_account, aggressor.opposite()), (taker_account, aggressor)] {
                let p = out.entry(account).or_default();
                let sign = if side == Side::Buy { 1 } else { -1 };
                p.0 += sign * i128::from(qty);
                p.1 += sign * notional;
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn exposure_matches_a_naive_recomputation(ops in prop::collection::vec(op(), 1..120)) {
        let mut h = Harness::with_config(config());
        h.risk.set_reference_price(BTC, PriceUnits(100_00 * CENT)).unwrap();
        h.risk.set_limits(AccountId(1), RiskLimits { position_max: Some(POSITION_MAX as u64), ..RiskLimits::default() }).unwrap();
        h.risk.set_limits(AccountId(2), RiskLimits {
            credit_max: Some(Notional::from_whole(CREDIT_MAX)),
            price_band_bps: Some(200),
            ..RiskLimits::default()
        }).unwrap();
        h.risk.set_limits(AccountId(3), RiskLimits { open_orders_max: Some(3), order_qty_max: Some(8), ..RiskLimits::default() }).unwrap();
        let mut ids: Vec<Vec<String>> = vec![Vec::new(); 4];
        let mut next = 0u32;
        for op in ops {
            match op {
                Op::New { account, buy, mut cents, ioc, qty } => {
                    // Account 2 never sends market orders: a market order may fill beyond the
                    // price it was valued at, and account 2 checks the credit bound below.
                    if account == 2 && cents.is_none() {
                        cents = Some(100_00);
                    }
                    next += 1;
                    let name = format!("o{next}");
                    let side = if buy { Side::Buy } else { Side::Sell };
                    let mut order = match cents {
                        Some(c) => limit(AccountId(account), &name, side, c, qty),
                        None => market(AccountId(account), &name, side, qty),
                    };
                    if ioc && cents.is_some() {
                        order.tif = Tif::Ioc;
                    }
                    if h.check_new(order).is_ok() {
                        ids[account as usize].push(name);
                    }
                }
                Op::Cancel { account, pick } => {
                    if let Some(name) = pick_id(&ids[account as usize], pick) {
                        h.send_unchecked(CommandKind::Cancel(CancelOrder { account: AccountId(account), symbol: BTC, id: id(&name), request_id: None }));
                    }
                }
                Op::Replace { account, pick, cents, qty, keep_id } => {
                    if let Some(orig) = pick_id(&ids[account as usize], pick) {
                        let new = if keep_id { orig.clone() } else { next += 1; format!("o{next}") };
                        if h.check_replace(replace(AccountId(account), &orig, &new, cents, qty)).is_ok() && !keep_id {
                            ids[account as usize].push(new);
                        }
                    }
                }
                Op::Process(n) => h.process(n),
            }
            check(&h)?;
        }
        h.flush();
        check(&h)?;
        prop_assert_eq!(h.risk.orders_tracked(), (0..4).map(|a| naive_open(&h, AccountId(a)).3 as usize).sum::<usize>());
    }
}

fn pick_id(ids: &[String], pick: usize) -> Option<String> {
    (!ids.is_empty()).then(|| ids[pick % ids.len()].clone())
}

fn check(h: &Harness) -> Result<(), TestCaseError> {
    let positions = naive_positions(h);
    let settled = h.queue.is_empty();
    for account in 0..4 {
        let e = h.risk.symbol_exposure(AccountId(account), BTC).unwrap();
        let a = h.risk.account_exposure(AccountId(account)).unwrap();
        let (position, net_cost) = positions.get(&AccountId(account)).copied().unwrap_or_default();
        prop_assert_eq!((e.position, e.net_cost), (position, net_cost), "account {}", account);
        prop_assert_eq!(a.position_cost, net_cost.max(0));
        let (buy, sell, notional, count) = naive_open(h, AccountId(account));
        if settled {
            prop_assert_eq!(
                (e.open_buy_qty, e.open_sell_qty, a.open_buy_notional, a.open_orders),
                (buy, sell, notional, count),
                "account {}",
                account
            );
        } else {
            prop_assert!(e.open_buy_qty >= buy && e.open_sell_qty >= sell, "account {}", account);
            prop_assert!(a.open_buy_notional >= notional && a.open_orders >= count, "account {}", account);
        }
        if account == 1 {
            // Checked against the naive state: the limit holds in the engine, not only in risk.
            prop_assert!(position + buy <= POSITION_MAX && sell - position <= POSITION_MAX);
        }
        if account == 2 {
            let cap = i128::from(CREDIT_MAX) * i128::from(engine::PRICE_UNITS_PER_ONE);
            prop_assert!(
                notional + net_cost.max(0) <= cap,
                "credit {} > {}",
                notional + net_cost.max(0),
                cap
            );
        }
    }
    Ok(())
}
