//! Each check at its boundary (exactly at the limit passes, one unit over fails), and the state
//! that follows the engine: partial fills, replaces, cancels, pending-then-rejected, kill switch.

// Prices are written as dollars_cents (`100_00` is 100.00): the grouping is the point.
#![allow(clippy::inconsistent_digit_grouping)]

mod common;

use common::*;
use engine::{AccountId, CommandKind, EventKind, PriceUnits, RejectReason, Side, SymbolId};
use risk::{Notional, RiskConfig, RiskEngine, RiskLimits, RiskReason};

const ALICE: AccountId = AccountId(0);
const BOB: AccountId = AccountId(1);

/// A harness whose account ALICE has `limits` (everyone else none).
fn alice_with(limits: RiskLimits) -> Harness {
    let mut h = Harness::new(RiskLimits::default());
    h.risk.set_limits(ALICE, limits).unwrap();
    h
}

fn reason<T>(r: Result<T, risk::RiskReject>) -> RiskReason {
    r.err().expect("refused").reason
}

#[test]
fn max_qty_at_the_boundary() {
    let mut h = alice_with(RiskLimits { order_qty_max: Some(100), ..RiskLimits::default() });
    assert!(h.new_order(limit(ALICE, "a1", Side::Buy, 100_00, 100)).is_ok());
    let r = h.risk.check_new(&limit(ALICE, "a2", Side::Buy, 100_00, 101)).unwrap_err();
    assert_eq!((r.reason, r.limit, r.value), (RiskReason::MaxQty, 100, 101));
    assert_eq!(r.ord_rej_reason(), 3);
    assert_eq!(r.text(), "risk_max_qty: order qty 101 exceeds order_qty_max 100");
    // Other accounts have the (empty) default limits.
    assert!(h.new_order(limit(BOB, "b1", Side::Buy, 100_00, 1000)).is_ok());
}

#[test]
fn notional_at_the_boundary() {
    let limits = RiskLimits { order_notional_max: Some("1000".parse().unwrap()), ..RiskLimits::default() };
    let mut h = alice_with(limits);
    assert!(h.new_order(limit(ALICE, "a1", Side::Sell, 100_00, 10)).is_ok());
    let r = h.risk.check_new(&limit(ALICE, "a2", Side::Sell, 100_01, 10)).unwrap_err();
    assert_eq!(r.reason, RiskReason::Notional);
    assert_eq!(r.text(), "risk_notional: order notional 1000.1 exceeds order_notional_max 1000");
}

#[test]
fn price_band_at_the_boundary_and_following_the_last_trade() {
    let mut h = alice_with(RiskLimits { price_band_bps: Some(100), ..RiskLimits::default() });
    // No reference yet: limit orders pass.
    assert!(h.check_new(limit(ALICE, "x", Side::Buy, 500_00, 1)).is_ok());
    h.risk.withdraw_new(ALICE, &id("x"));
    h.queue.clear();
    h.risk.set_reference_price(BTC, PriceUnits(100_00 * CENT)).unwrap();
    // 1% around 100.00: buys up to 101.00, sells down to 99.00.
    assert!(h.check_new(limit(ALICE, "b1", Side::Buy, 101_00, 1)).is_ok());
    let r = h.risk.check_new(&limit(ALICE, "b2", Side::Buy, 101_01, 1)).unwrap_err();
    assert_eq!(
        (r.reason, r.limit, r.value),
        (RiskReason::PriceBand, 101_00 * CENT as i128, 101_01 * CENT as i128)
    );
    assert!(r.text().contains("101.01 is above the highest"), "{}", r.text());
    assert!(h.check_new(limit(ALICE, "s1", Side::Sell, 99_00, 1)).is_ok());
    assert_eq!(reason(h.check_new(limit(ALICE, "s2", Side::Sell, 98_99, 1))), RiskReason::PriceBand);
    h.flush();
    // A trade at 120.00 (between two other accounts) moves the band.
    h.new_order(limit(BOB, "m", Side::Sell, 120_00, 1)).unwrap();
    h.new_order(limit(AccountId(2), "t", Side::Buy, 120_00, 1)).unwrap();
    assert_eq!(h.risk.reference_price(BTC), Some(PriceUnits(120_00 * CENT)));
    assert!(h.check_new(limit(ALICE, "b3", Side::Buy, 121_20, 1)).is_ok());
    assert_eq!(reason(h.check_new(limit(ALICE, "b4", Side::Buy, 121_21, 1))), RiskReason::PriceBand);
}

#[test]
fn market_orders_are_valued_at_the_band_edge_and_need_a_reference() {
    let limits = RiskLimits {
        price_band_bps: Some(100),
        order_notional_max: Some(Notional::from_whole(1010)),
        ..RiskLimits::default()
    };
    let mut h = alice_with(limits);
    let r = h.risk.check_new(&market(ALICE, "m1", Side::Buy, 1)).unwrap_err();
    assert_eq!(r.reason, RiskReason::NoReference);
    assert_eq!(r.ord_rej_reason(), 0);
    // Without any price-based limit a market order needs no reference.
    assert!(h.risk.check_new(&market(BOB, "m1", Side::Buy, 1)).is_ok());
    h.risk.set_reference_price(BTC, PriceUnits(100_00 * CENT)).unwrap();
    // Valued at 101.00: 10 is exactly 1010.
    assert!(h.risk.check_new(&market(ALICE, "m2", Side::Buy, 10)).is_ok());
    assert_eq!(reason(h.risk.check_new(&market(ALICE, "m3", Side::Buy, 11))), RiskReason::Notional);
    // A market sell is valued at the reference: 10 × 100.00.
    assert!(h.risk.check_new(&market(ALICE, "m4", Side::Sell, 10)).is_ok());
}

#[test]
fn open_orders_at_the_boundary_with_pending_orders_counted() {
    let mut h = alice_with(RiskLimits { open_orders_max: Some(2), ..RiskLimits::default() });
    assert!(h.check_new(limit(ALICE, "a1", Side::Buy, 100_00, 1)).is_ok());
    assert!(h.check_new(limit(ALICE, "a2", Side::Buy, 100_00, 1)).is_ok());
    // Both still pending (not processed): the third is refused all the same.
    let r = h.risk.check_new(&limit(ALICE, "a3", Side::Buy, 100_00, 1)).unwrap_err();
    assert_eq!((r.reason, r.limit, r.value), (RiskReason::OpenOrders, 2, 3));
    h.flush();
    h.cancel(ALICE, "a1");
    assert!(h.new_order(limit(ALICE, "a3", Side::Buy, 100_00, 1)).is_ok());
    assert_eq!(h.risk.account_exposure(ALICE).unwrap().open_orders, 2);
}

#[test]
fn credit_at_the_boundary_through_fills_and_sales() {
    let limits = RiskLimits { credit_max: Some(Notional::from_whole(1000)), ..RiskLimits::default() };
    let mut h = alice_with(limits);
    assert!(h.new_order(limit(ALICE, "a1", Side::Buy, 100_00, 6)).is_ok());
    assert!(h.new_order(limit(ALICE, "a2", Side::Buy, 100_00, 4)).is_ok());
    let r = h.risk.check_new(&limit(ALICE, "a3", Side::Buy, 1, 1)).unwrap_err();
    assert_eq!(
        (r.reason, r.limit, r.value),
        (RiskReason::Credit, 1000_00 * CENT as i128, 1000_01 * CENT as i128)
    );
    assert_eq!(r.ord_rej_reason(), 3);
    // Sells use no credit.
    assert!(h.new_order(limit(ALICE, "s1", Side::Sell, 200_00, 3)).is_ok());
    // Bob sells 6 into alice's bids: open notional becomes position cost, credit stays used.
    h.new_order(limit(BOB, "b1", Side::Sell, 100_00, 6)).unwrap();
    let e = h.risk.account_exposure(ALICE).unwrap();
    assert_eq!(
        (e.open_buy_notional, e.position_cost, e.credit_used),
        (400_00 * CENT as i128, 600_00 * CENT as i128, 1000_00 * CENT as i128)
    );
    assert_eq!(reason(h.check_new(limit(ALICE, "a4", Side::Buy, 1, 1))), RiskReason::Credit);
    // Bob buys alice's 3 at 200.00: proceeds 600.00 pay back the cost of the 6.
    h.new_order(limit(BOB, "b2", Side::Buy, 200_00, 3)).unwrap();
    let e = h.risk.account_exposure(ALICE).unwrap();
    assert_eq!(e.position_cost, 0);
    assert_eq!(h.risk.symbol_exposure(ALICE, BTC).unwrap().position, 3);
    assert!(h.new_order(limit(ALICE, "a5", Side::Buy, 100_00, 6)).is_ok());
    assert_eq!(reason(h.check_new(limit(ALICE, "a6", Side::Buy, 1, 1))), RiskReason::Credit);
}

#[test]
fn position_at_the_boundary_per_side_and_per_symbol() {
    let mut limits = RiskLimits { position_max: Some(10), ..RiskLimits::default() };
    limits.position_max_by_symbol.insert("ETH-USD".into(), 2);
    let mut h = alice_with(limits);
    assert!(h.new_order(limit(ALICE, "b1", Side::Buy, 100_00, 10)).is_ok());
    let r = h.risk.check_new(&limit(ALICE, "b2", Side::Buy, 100_00, 1)).unwrap_err();
    assert_eq!((r.reason, r.limit, r.value), (RiskReason::Position, 10, 11));
    // The sell side is bounded separately: -10 is fine, -11 is not.
    assert!(h.new_order(limit(ALICE, "s1", Side::Sell, 200_00, 10)).is_ok());
    assert_eq!(reason(h.check_new(limit(ALICE, "s2", Side::Sell, 200_00, 1))), RiskReason::Position);
    // Once the 10 are bought, the sell side has 10 more room: position 10, sells 10 + 10 - 10.
    h.new_order(limit(BOB, "x", Side::Sell, 100_00, 10)).unwrap();
    assert_eq!(h.risk.symbol_exposure(ALICE, BTC).unwrap().position, 10);
    assert!(h.new_order(limit(ALICE, "s3", Side::Sell, 200_00, 10)).is_ok());
    assert_eq!(reason(h.check_new(limit(ALICE, "s4", Side::Sell, 200_00, 1))), RiskReason::Position);
    // ETH-USD has its own limit.
    let eth = |name: &str, qty| {
        engine::NewOrder::limit(ALICE, SymbolId(1), id(name), Side::Buy, 100_00 * CENT, qty)
    };
    assert!(h.risk.check_new(&eth("e1", 2)).is_ok());
    assert_eq!(reason(h.risk.check_new(&eth("e2", 1))), RiskReason::Position);
}

#[test]
fn duplicate_ids_live_finished_rejected_and_aged_out() {
    let config = RiskConfig { recent_ids_max: 2, ..RiskConfig::new(engine::default_symbols(), 4) };
    let mut h = Harness::with_config(config);
    h.new_order(limit(ALICE, "a1", Side::Buy, 100_00, 1)).unwrap();
    // Live (the engine would refuse it too) and on another symbol: ids are per account.
    let r = h.risk.check_new(&limit(ALICE, "a1", Side::Buy, 100_00, 1)).unwrap_err();
    assert_eq!((r.reason, r.ord_rej_reason(), r.cxl_rej_reason()), (RiskReason::DuplicateId, 6, 6));
    assert!(h.risk.check_new(&limit(BOB, "a1", Side::Buy, 100_00, 1)).is_ok());
    // Finished: still a duplicate.
    h.cancel(ALICE, "a1");
    assert_eq!(reason(h.check_new(limit(ALICE, "a1", Side::Buy, 100_00, 1))), RiskReason::DuplicateId);
    // Refused by the engine (off-tick price): the id was used.
    h.check_new(engine::NewOrder::limit(ALICE, BTC, id("a2"), Side::Buy, 100_00 * CENT + 1, 1)).unwrap();
    h.flush();
    assert!(matches!(
        h.events.last().unwrap().kind,
        EventKind::Rejected { reason: RejectReason::BadPriceTick, .. }
    ));
    assert_eq!(reason(h.check_new(limit(ALICE, "a2", Side::Buy, 100_00, 1))), RiskReason::DuplicateId);
    // Two more finished ids push "a1" out of the window of 2.
    h.new_order(limit(ALICE, "a3", Side::Buy, 100_00, 1)).unwrap();
    h.cancel(ALICE, "a3");
    assert!(h.new_order(limit(ALICE, "a1", Side::Buy, 100_00, 1)).is_ok());
    // A withdrawn order (never sent) leaves no trace.
    h.risk.check_new(&limit(ALICE, "w", Side::Buy, 100_00, 1)).unwrap();
    h.risk.withdraw_new(ALICE, &id("w"));
    assert!(h.risk.check_new(&limit(ALICE, "w", Side::Buy, 100_00, 1)).is_ok());
}

#[test]
fn partial_fills_move_exposure_exactly() {
    let mut h = Harness::new(RiskLimits::default());
    h.new_order(limit(ALICE, "a1", Side::Buy, 100_00, 10)).unwrap();
    h.new_order(limit(BOB, "b1", Side::Sell, 99_00, 4)).unwrap();
    let a = h.risk.symbol_exposure(ALICE, BTC).unwrap();
    assert_eq!((a.position, a.open_buy_qty, a.net_cost), (4, 6, 400_00 * CENT as i128));
    assert_eq!(h.risk.account_exposure(ALICE).unwrap().open_buy_notional, 600_00 * CENT as i128);
    let b = h.risk.symbol_exposure(BOB, BTC).unwrap();
    assert_eq!((b.position, b.open_sell_qty, b.net_cost), (-4, 0, -(400_00 * CENT as i128)));
    assert_eq!(h.risk.account_exposure(BOB).unwrap().open_orders, 0);
    // The rest fills: the order is done.
    h.new_order(limit(BOB, "b2", Side::Sell, 100_00, 6)).unwrap();
    let e = h.risk.account_exposure(ALICE).unwrap();
    assert_eq!((e.open_orders, e.open_buy_notional, e.position_cost), (0, 0, 1000_00 * CENT as i128));
    assert_eq!(h.risk.orders_tracked(), 0);
}

#[test]
fn replaces_up_down_and_in_price() {
    let limits = RiskLimits {
        credit_max: Some(Notional::from_whole(1000)),
        price_band_bps: Some(1000),
        ..RiskLimits::default()
    };
    let mut h = alice_with(limits);
    h.risk.set_reference_price(BTC, PriceUnits(100_00 * CENT)).unwrap();
    h.new_order(limit(ALICE, "a1", Side::Buy, 100_00, 5)).unwrap();
    // Size up to exactly the credit limit, then one cent over.
    assert_eq!(reason(h.check_replace(replace(ALICE, "a1", "a2", None, 11))), RiskReason::Credit);
    assert!(h.replace(replace(ALICE, "a1", "a2", None, 10)).is_ok());
    assert_eq!(h.risk.account_exposure(ALICE).unwrap().open_buy_notional, 1000_00 * CENT as i128);
    // Price up is refused, price down passes and frees credit.
    assert_eq!(reason(h.check_replace(replace(ALICE, "a2", "a3", Some(100_01), 10))), RiskReason::Credit);
    assert_eq!(reason(h.check_replace(replace(ALICE, "a2", "a3", Some(110_01), 10))), RiskReason::PriceBand);
    assert!(h.replace(replace(ALICE, "a2", "a3", Some(90_00), 10)).is_ok());
    assert_eq!(h.risk.account_exposure(ALICE).unwrap().open_buy_notional, 900_00 * CENT as i128);
    // The old ids are finished: duplicates now.
    assert_eq!(reason(h.check_new(limit(ALICE, "a1", Side::Buy, 90_00, 1))), RiskReason::DuplicateId);
    // Limits lowered below the order: a size-down still passes (it reduces risk).
    h.risk
        .set_limits(ALICE, RiskLimits { credit_max: Some(Notional::from_whole(10)), ..RiskLimits::default() })
        .unwrap();
    assert!(h.replace(replace(ALICE, "a3", "a3", None, 4)).is_ok());
    assert_eq!(h.risk.account_exposure(ALICE).unwrap().open_buy_notional, 360_00 * CENT as i128);
    // Partially filled, then replaced to no more than the filled quantity: the order ends.
    h.risk.set_limits(ALICE, RiskLimits::default()).unwrap();
    h.new_order(limit(BOB, "b1", Side::Sell, 90_00, 3)).unwrap();
    assert!(h.replace(replace(ALICE, "a3", "a4", None, 3)).is_ok());
    let e = h.risk.account_exposure(ALICE).unwrap();
    assert_eq!((e.open_orders, e.open_buy_notional), (0, 0));
    assert_eq!(h.risk.symbol_exposure(ALICE, BTC).unwrap().position, 3);
}

#[test]
fn a_pending_replace_reserves_the_larger_and_blocks_a_second_one() {
    let limits = RiskLimits { credit_max: Some(Notional::from_whole(1000)), ..RiskLimits::default() };
    let mut h = alice_with(limits);
    h.new_order(limit(ALICE, "a1", Side::Buy, 100_00, 6)).unwrap();
    // Pending size-down: still 600 reserved until the engine confirms.
    h.check_replace(replace(ALICE, "a1", "a2", None, 2)).unwrap();
    assert_eq!(h.risk.account_exposure(ALICE).unwrap().open_buy_notional, 600_00 * CENT as i128);
    let r = h.risk.check_replace(&replace(ALICE, "a1", "a3", None, 1)).unwrap_err();
    assert_eq!((r.reason, r.cxl_rej_reason()), (RiskReason::ReplacePending, 3));
    // Chaining onto the pending replace's new id must wait too (the engine would apply both).
    assert_eq!(reason(h.check_replace(replace(ALICE, "a2", "a3", None, 9))), RiskReason::ReplacePending);
    // The new id of the pending replace is taken.
    assert_eq!(reason(h.check_new(limit(ALICE, "a2", Side::Buy, 1_00, 1))), RiskReason::DuplicateId);
    h.flush();
    assert_eq!(h.risk.account_exposure(ALICE).unwrap().open_buy_notional, 200_00 * CENT as i128);
    // Pending size-up that the engine refuses (unknown order after a cancel slipped in first):
    // released back to the order's state, here nothing.
    h.check_replace(replace(ALICE, "a2", "a5", None, 9)).unwrap();
    assert_eq!(h.risk.account_exposure(ALICE).unwrap().open_buy_notional, 900_00 * CENT as i128);
    h.queue.insert(
        0,
        engine::Command::new(CommandKind::Cancel(engine::CancelOrder {
            account: ALICE,
            symbol: BTC,
            id: id("a2"),
            request_id: None,
        })),
    );
    h.flush();
    assert!(matches!(
        h.events.last().unwrap().kind,
        EventKind::Rejected { reason: RejectReason::UnknownOrder, .. }
    ));
    let e = h.risk.account_exposure(ALICE).unwrap();
    assert_eq!((e.open_orders, e.open_buy_notional), (0, 0));
    assert_eq!(h.risk.orders_tracked(), 0);
    // A withdrawn replace restores the reservation before it.
    h.new_order(limit(ALICE, "c1", Side::Buy, 100_00, 1)).unwrap();
    h.risk.check_replace(&replace(ALICE, "c1", "c2", None, 5)).unwrap();
    h.risk.withdraw_replace(ALICE, &id("c1"), &id("c2"));
    assert_eq!(h.risk.account_exposure(ALICE).unwrap().open_buy_notional, 100_00 * CENT as i128);
    assert!(h.risk.check_replace(&replace(ALICE, "c1", "c2", None, 5)).is_ok());
}

#[test]
fn pending_then_rejected_releases_the_reservation() {
    let limits = RiskLimits { credit_max: Some(Notional::from_whole(1000)), ..RiskLimits::default() };
    let mut h = alice_with(limits);
    // Off-tick: passes risk, reserved, the engine will refuse it.
    h.check_new(engine::NewOrder::limit(ALICE, BTC, id("bad"), Side::Buy, 100_00 * CENT + 5, 9)).unwrap();
    // The reservation keeps a second order out while the first is pending.
    assert_eq!(reason(h.check_new(limit(ALICE, "a1", Side::Buy, 100_00, 2))), RiskReason::Credit);
    h.flush();
    assert_eq!(h.risk.account_exposure(ALICE).unwrap(), risk::AccountExposure::default());
    assert!(h.new_order(limit(ALICE, "a1", Side::Buy, 100_00, 10)).is_ok());
}

#[test]
fn cancels_and_expiries_release_exposure() {
    let mut h = Harness::new(RiskLimits::default());
    h.new_order(limit(ALICE, "a1", Side::Buy, 100_00, 10)).unwrap();
    let mut gtd = limit(ALICE, "a2", Side::Sell, 200_00, 3);
    gtd.tif = engine::Tif::Gtd;
    gtd.expire_ts = Some(1); // expires before the next command
    h.new_order(gtd).unwrap();
    assert_eq!(h.risk.symbol_exposure(ALICE, BTC).unwrap().open_sell_qty, 3);
    h.cancel(ALICE, "a1");
    assert!(h.events.iter().any(|e| matches!(e.kind, EventKind::Expired { .. })));
    let e = h.risk.account_exposure(ALICE).unwrap();
    assert_eq!((e.open_orders, e.open_buy_notional), (0, 0));
    assert_eq!(h.risk.symbol_exposure(ALICE, BTC).unwrap(), risk::SymbolExposure::default());
}

#[test]
fn kill_blocks_new_orders_and_replaces_until_released() {
    let mut h = Harness::new(RiskLimits::default());
    h.new_order(limit(ALICE, "a1", Side::Buy, 100_00, 10)).unwrap();
    h.risk.kill(ALICE).unwrap();
    assert!(h.risk.is_killed(ALICE));
    let r = h.risk.check_new(&limit(ALICE, "a2", Side::Buy, 100_00, 1)).unwrap_err();
    assert_eq!((r.reason, r.ord_rej_reason(), r.cxl_rej_reason()), (RiskReason::Killed, 0, 2));
    assert_eq!(reason(h.check_replace(replace(ALICE, "a1", "a3", None, 1))), RiskReason::Killed);
    assert!(h.check_new(limit(BOB, "b1", Side::Buy, 100_00, 1)).is_ok());
    // The caller's mass cancel releases the exposure.
    h.send_unchecked(CommandKind::CancelAll { account: ALICE, symbol: None });
    h.flush();
    assert_eq!(h.risk.account_exposure(ALICE).unwrap().open_orders, 0);
    h.risk.release(ALICE).unwrap();
    assert!(!h.risk.is_killed(ALICE));
    assert!(h.new_order(limit(ALICE, "a2", Side::Buy, 100_00, 1)).is_ok());
    assert!(h.risk.kill(AccountId(99)).is_err());
}

#[test]
fn unknown_accounts_and_the_venue_bound() {
    let config = RiskConfig { orders_max: 2, ..RiskConfig::new(engine::default_symbols(), 2) };
    let mut h = Harness::with_config(config);
    let r = h.risk.check_new(&limit(AccountId(7), "x", Side::Buy, 100_00, 1)).unwrap_err();
    assert_eq!((r.reason, r.limit, r.value, r.ord_rej_reason()), (RiskReason::UnknownAccount, 2, 7, 15));
    h.new_order(limit(ALICE, "a1", Side::Buy, 100_00, 1)).unwrap();
    h.new_order(limit(BOB, "b1", Side::Buy, 100_00, 1)).unwrap();
    let r = h.risk.check_new(&limit(ALICE, "a2", Side::Buy, 100_00, 1)).unwrap_err();
    assert_eq!((r.reason, r.limit, r.value), (RiskReason::Capacity, 2, 2));
    // An unknown symbol passes, for the engine to refuse with its own reason.
    assert!(h
        .risk
        .check_new(&engine::NewOrder::limit(ALICE, SymbolId(99), id("z"), Side::Buy, CENT, 1))
        .is_ok());
}

#[test]
fn replaying_the_events_rebuilds_the_same_exposure() {
    let mut h = Harness::new(RiskLimits::default());
    h.new_order(limit(ALICE, "a1", Side::Buy, 100_00, 10)).unwrap();
    h.new_order(limit(BOB, "b1", Side::Sell, 100_00, 4)).unwrap();
    h.new_order(limit(BOB, "b2", Side::Sell, 105_00, 7)).unwrap();
    h.replace(replace(ALICE, "a1", "a2", Some(101_00), 12)).unwrap();
    h.new_order(market(AccountId(2), "c1", Side::Buy, 3)).unwrap();
    let mut fresh = RiskEngine::new(RiskConfig::new(engine::default_symbols(), 4)).unwrap();
    for event in &h.events {
        fresh.on_event(event);
    }
    for account in 0..4 {
        assert_eq!(
            fresh.account_exposure(AccountId(account)),
            h.risk.account_exposure(AccountId(account)),
            "account {account}"
        );
        assert_eq!(
            fresh.symbol_exposure(AccountId(account), BTC),
            h.risk.symbol_exposure(AccountId(account), BTC)
        );
    }
    assert_eq!(fresh.reference_price(BTC), Some(PriceUnits(105_00 * CENT)));
}
