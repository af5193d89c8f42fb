//! Trade settlement over a real redb store: delivery versus payment into pending balances,
//! settlement on T+N, reports, rejections, and restart safety of the durable cursor.

mod common;

use common::*;
use engine::AccountId;
use engine::Side;
use settlement::{
    AnyStore, Created, PaymentError, RedbStore, Settlement, SettlementError, StoreConfig, TransferError,
};
use time::macros::date;

const USD: u64 = 100; // minor units per dollar
const BTC: u64 = 100_000_000;

fn open(dir: &tempfile::TempDir) -> Settlement<AnyStore> {
    let store = AnyStore::open(&StoreConfig::Redb { path: dir.path().join("ledger.redb") }).unwrap();
    Settlement::open(&config(), store, &accounts(), &symbols()).unwrap()
}

/// alice has 10 000 USD, bob 1 BTC.
fn funded(dir: &tempfile::TempDir) -> Settlement<AnyStore> {
    let mut s = open(dir);
    assert_eq!(s.deposit(1, "alice", "USD", 10_000 * USD, 0).unwrap(), Created::New);
    assert_eq!(s.deposit(2, "bob", "BTC", BTC, 0).unwrap(), Created::New);
    s
}

fn avail(s: &Settlement<AnyStore>, owner: &str, asset: &str) -> i128 {
    s.available(owner, asset).unwrap()
}

#[test]
fn a_trade_books_delivery_versus_payment_and_settles_on_t_plus_1() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = funded(&dir);
    // bob rests a sell; alice takes 10 units (0.1 BTC) at 50 000 USD: 5 000 USD.
    let applied = s.apply(&trade(1, MONDAY_10H_NS, 0, 50_000, 10, 1, 0, Side::Buy)).unwrap();
    assert_eq!((applied.trades, applied.rejected), (1, 0));
    let cash = 5_000 * USD as i128;
    let (maker_fee, taker_fee) = (50, 250); // 1 bps and 5 bps of 500 000 cents
    assert_eq!(avail(&s, "alice", "USD"), 10_000 * USD as i128 - cash - taker_fee);
    assert_eq!(avail(&s, "alice", "BTC"), 0, "bought BTC is unsettled, not spendable");
    assert_eq!(avail(&s, "bob", "BTC"), (BTC - BTC / 10) as i128);
    assert_eq!(avail(&s, "bob", "USD"), 0, "proceeds are unsettled");
    assert_eq!(s.unsettled_legs(), 4);
    // By when they settle (Tuesday), as the metrics see them from Sunday to Wednesday.
    assert_eq!(s.unsettled_legs_by_due(date!(2026 - 12 - 06)), [0, 0, 0, 4], "Sunday: later");
    assert_eq!(s.unsettled_legs_by_due(date!(2026 - 12 - 07)), [0, 0, 4, 0], "Monday: next business day");
    assert_eq!(s.unsettled_legs_by_due(date!(2026 - 12 - 08)), [0, 4, 0, 0], "Tuesday: today");
    assert_eq!(s.unsettled_legs_by_due(date!(2026 - 12 - 09)), [4, 0, 0, 0], "Wednesday: overdue");
    assert_eq!(settlement::UNSETTLED_DUE[0], "overdue");

    // Monday's trade settles Tuesday, not before.
    let early = s.settle(date!(2026 - 12 - 07), MONDAY_10H_NS).unwrap();
    assert_eq!((early.trades, early.legs_posted), (0, 0));
    let report = s.settle(date!(2026 - 12 - 08), MONDAY_10H_NS).unwrap();
    assert_eq!((report.trades, report.legs_posted), (1, 4));
    assert_eq!(avail(&s, "alice", "BTC"), (BTC / 10) as i128);
    assert_eq!(avail(&s, "bob", "USD"), cash - maker_fee, "the seller's fee is netted from proceeds");
    assert_eq!(avail(&s, "venue:fees", "USD"), maker_fee + taker_fee);
    assert_eq!(s.unsettled_legs(), 0);
    s.ledger().verify().unwrap();

    let net = |owner: &str, asset: &str| {
        report.lines.iter().find(|l| l.owner == owner && l.asset == asset).map(|l| l.net.clone()).unwrap()
    };
    assert_eq!(net("alice", "USD"), "-5002.50", "cash and her taker fee");
    assert_eq!(net("alice", "BTC"), "0.10000000");
    assert_eq!(net("bob", "USD"), "4999.50");
    assert_eq!(net("venue:fees", "USD"), "3.00");
    let csv = report.to_csv();
    assert!(csv.starts_with("settle_date,owner,asset,receive,deliver,net\n"), "{csv}");
    assert!(csv.contains("2026-12-08,bob,BTC,0.00000000,0.10000000,-0.10000000\n"), "{csv}");
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["settle_date"], "2026-12-08");
    assert_eq!(json["lines"].as_array().unwrap().len(), report.lines.len());

    // Settling the same date again settles nothing more.
    assert_eq!(s.settle(date!(2026 - 12 - 08), MONDAY_10H_NS).unwrap().legs_posted, 0);
}

#[test]
fn settlement_skips_weekends_and_holidays() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = funded(&dir);
    s.deposit(3, "bob", "AAPL", 100, 0).unwrap();
    // AAPL is T+2. Wednesday 2026-12-23 → Thursday 24 → (25 holiday, weekend) → Monday 28.
    let wednesday = MONDAY_10H_NS + 16 * 86_400 * 1_000_000_000;
    s.apply(&trade(1, wednesday, 1, 15_000, 10, 1, 0, Side::Buy)).unwrap();
    for d in [date!(2026 - 12 - 24), date!(2026 - 12 - 25), date!(2026 - 12 - 27)] {
        assert_eq!(s.settle(d, wednesday).unwrap().trades, 0, "{d}");
    }
    assert_eq!(s.settle(date!(2026 - 12 - 28), wednesday).unwrap().trades, 1);
    assert_eq!(avail(&s, "alice", "AAPL"), 10);
}

#[test]
fn a_trade_the_seller_cannot_deliver_is_rejected_and_reported_not_booked() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = funded(&dir);
    // carol sells BTC she does not have.
    let applied = s.apply(&trade(1, MONDAY_10H_NS, 0, 50_000, 10, 2, 0, Side::Buy)).unwrap();
    assert_eq!((applied.trades, applied.rejected), (0, 1));
    assert_eq!(s.cursor(), 1, "the follower goes on");
    assert!(s.rejections()[0].reason.starts_with("seller carol cannot deliver"), "{:?}", s.rejections());
    assert_eq!(avail(&s, "alice", "USD"), 10_000 * USD as i128, "nothing of the chain is kept");
    // A symbol without a rule is rejected too, with its reason.
    s.apply(&trade(2, MONDAY_10H_NS, 2, 1, 1, 1, 0, Side::Buy)).unwrap();
    drop(s);
    let s = open(&dir);
    assert_eq!(s.rejections().len(), 2, "rejections are durable");
    assert!(s.rejections()[1].reason.contains("no settlement rule"));
}

#[test]
fn re_feeding_events_at_or_below_the_cursor_books_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let events: Vec<_> = (1..=20)
        .map(|seq| {
            if seq % 4 == 0 {
                status(seq, MONDAY_10H_NS)
            } else {
                trade(seq, MONDAY_10H_NS + seq, 0, 50_000 + seq as i64, 1, 1, 0, Side::Buy)
            }
        })
        .collect();
    let mut s = funded(&dir);
    s.apply_batch(&events[..7]).unwrap();
    assert_eq!(s.cursor(), 7);
    drop(s); // a restart, as after a crash between batches

    let mut s = open(&dir);
    assert_eq!(s.cursor(), 7);
    // The tailer re-feeds from an earlier point: the first 7 are skipped, the rest booked.
    let applied = s.apply_batch(&events).unwrap();
    assert_eq!(applied.skipped, 7);
    assert_eq!(applied.trades + applied.other, 13);
    let again = s.apply_batch(&events).unwrap();
    assert_eq!(again.skipped, 20);

    // The same stream into a fresh ledger in one go gives the same balances.
    let other = tempfile::tempdir().unwrap();
    let mut once = funded(&other);
    once.apply_batch(&events).unwrap();
    for (owner, asset) in
        [("alice", "USD"), ("alice", "BTC"), ("bob", "USD"), ("bob", "BTC"), ("venue:fees", "USD")]
    {
        let idx = |s: &Settlement<AnyStore>| {
            let l = s.ledger();
            l.balances(l.account(owner, l.asset_id(asset).unwrap()).unwrap()).unwrap()
        };
        assert_eq!(idx(&s), idx(&once), "{owner} {asset}");
    }
    assert_eq!(s.unsettled_legs(), once.unsettled_legs());
    assert_eq!(s.ledger().transfer_count(), once.ledger().transfer_count());
    s.ledger().verify().unwrap();
}

#[test]
fn unsettled_legs_survive_a_restart_and_settle_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = funded(&dir);
    s.apply(&trade(1, MONDAY_10H_NS, 0, 50_000, 10, 1, 0, Side::Buy)).unwrap();
    drop(s);
    let mut s = open(&dir);
    assert_eq!(s.unsettled_legs(), 4);
    assert_eq!(s.settle(date!(2026 - 12 - 08), MONDAY_10H_NS).unwrap().legs_posted, 4);
    drop(s);
    let s = open(&dir);
    assert_eq!(s.unsettled_legs(), 0);
    assert_eq!(avail(&s, "alice", "BTC"), (BTC / 10) as i128);
}

#[test]
fn a_gap_in_the_feed_is_an_error_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = funded(&dir);
    let batch = [trade(1, MONDAY_10H_NS, 0, 50_000, 1, 1, 0, Side::Buy), status(3, MONDAY_10H_NS)];
    assert!(matches!(s.apply_batch(&batch), Err(SettlementError::Gap { cursor: 1, got: 3 })));
    assert_eq!(s.cursor(), 0);
    assert_eq!(s.unsettled_legs(), 0);
    assert_eq!(
        s.ledger()
            .balances(s.ledger().account("alice", s.ledger().asset_id("USD").unwrap()).unwrap())
            .unwrap()
            .debits_pending,
        0
    );
}

#[test]
fn deposits_withdrawals_and_holds_move_available() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = funded(&dir);
    assert_eq!(s.deposit(1, "alice", "USD", 10_000 * USD, 5).unwrap(), Created::AlreadyExists, "a retry");
    assert!(matches!(
        s.deposit(1, "alice", "USD", 1, 5),
        Err(PaymentError::Transfer(TransferError::IdReused { field: "amount" }))
    ));
    s.place_hold(9, "alice", "USD", 9_000 * USD).unwrap();
    let refused = s.withdraw(10, "alice", "USD", 1_001 * USD, 6);
    assert!(matches!(refused, Err(PaymentError::Transfer(TransferError::Overdraft { .. }))), "{refused:?}");
    s.release_hold(9, None).unwrap();
    s.withdraw(10, "alice", "USD", 1_001 * USD, 6).unwrap();
    assert_eq!(avail(&s, "alice", "USD"), 8_999 * USD as i128);
    assert!(matches!(s.deposit(11, "mallory", "USD", 1, 0), Err(PaymentError::UnknownAccount { .. })));
    assert!(matches!(s.deposit(11, "alice", "EUR", 1, 0), Err(PaymentError::UnknownAsset(_))));
    assert!(matches!(s.deposit(u128::MAX, "alice", "USD", 1, 0), Err(PaymentError::IdReserved)));
    assert!(matches!(s.deposit(12, "venue:external", "USD", 1, 0), Err(PaymentError::UnknownAccount { .. })));
    let e = s.withdraw(13, "alice", "USD", 0, 0).unwrap_err();
    assert_eq!(e.to_string(), "amount: must be positive");
}

#[test]
fn the_store_can_be_reopened_directly() {
    let dir = tempfile::tempdir().unwrap();
    let s = funded(&dir);
    drop(s.into_store());
    let mut store = RedbStore::open(&dir.path().join("ledger.redb")).unwrap();
    use settlement::Store;
    assert_eq!(store.load().unwrap().transfers.len(), 2);
}

#[test]
fn open_orders_hold_funds_and_buying_power_follows_every_commit() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = funded(&dir);
    let bp = s.buying_power();
    let usd = bp.asset_id("USD").unwrap();
    let btc = bp.asset_id("BTC").unwrap();
    let total = 10_000 * USD as i64;
    assert_eq!(bp.available(AccountId(0), usd), Some(total), "the deposit is visible to the risk check");
    // alice bids 10 units at 50 000: each unit may cost 50 000 cents + the 5 bps taker fee.
    let unit = 50_000 + 25;
    let a = s.apply(&accepted(1, 0, 0, 100, Side::Buy, 50_000, 10)).unwrap();
    assert_eq!(a.holds, 1);
    assert_eq!(bp.available(AccountId(0), usd), Some(total - 10 * unit));
    // bob offers 10 units: his BTC is held.
    s.apply(&accepted(2, 1, 0, 200, Side::Sell, 60_000, 10)).unwrap();
    assert_eq!(bp.available(AccountId(1), btc), Some((BTC - BTC / 10) as i64));

    // A withdrawal that would eat into the held funds is refused.
    let w = s.withdraw(50, "alice", "USD", (total - 10 * unit + 1) as u64, 0);
    assert!(matches!(w, Err(PaymentError::Transfer(TransferError::Overdraft { .. }))), "{w:?}");

    // carol's market sell takes 4 from alice's bid: the hold shrinks to the 6 left, the
    // trade's cash and fees are pending debits.
    s.deposit(3, "carol", "BTC", BTC, 0).unwrap();
    s.apply(&fill(3, 50_000, 4, (0, 100, 6), (2, 300, 0), Side::Sell)).unwrap();
    // The cash (carol's taker fee is netted out of it) and alice's own maker fee.
    let paid = 4 * 50_000 + 20;
    assert_eq!(bp.available(AccountId(0), usd), Some(total - 6 * unit - paid));
    assert_eq!(s.ledger().verify(), Ok(()));

    // A replace re-prices the rest; after a restart, the cancel still finds the hold.
    s.apply(&replaced(4, 0, 0, 100, 40_000, 6)).unwrap();
    assert_eq!(bp.available(AccountId(0), usd), Some(total - 6 * (40_000 + 20) - paid));
    drop(s);
    let mut s = open(&dir);
    let bp = s.buying_power();
    assert_eq!(bp.available(AccountId(0), usd), Some(total - 6 * (40_000 + 20) - paid), "published on open");
    s.apply(&canceled(5, 0, 0, 100, 6)).unwrap();
    assert_eq!(bp.available(AccountId(0), usd), Some(total - paid));
    assert_eq!(bp.available(AccountId(9), usd), None, "not a venue account");
}

#[test]
fn a_bid_larger_than_available_places_no_hold() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = funded(&dir);
    let a = s.apply(&accepted(1, 2, 0, 100, Side::Buy, 50_000, 10)).unwrap();
    assert_eq!((a.holds, a.holds_refused), (0, 1));
    assert_eq!(s.cursor(), 1);
}

#[test]
fn a_two_phase_deposit_is_spendable_only_once_posted_and_expires_otherwise() {
    use settlement::{Transfer, TransferKind};
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir);
    let (alice, bank) = (s.user_account("alice", "USD").unwrap(), s.external_account("USD").unwrap());
    let pending = |id, amount| Transfer {
        kind: TransferKind::Pending { timeout_ns: 1_000 },
        ..Transfer::posted(id, bank, alice, amount)
    };
    let r = s.create_transfers(&[pending(1, 500), pending(2, 700)], 10).unwrap();
    assert_eq!(r, vec![Ok(Created::New), Ok(Created::New)]);
    assert_eq!(avail(&s, "alice", "USD"), 0, "a deposit in flight is not spendable");
    s.create_transfers(&[Transfer::post_of(3, &pending(1, 500))], 20).unwrap();
    assert_eq!(avail(&s, "alice", "USD"), 500);
    assert_eq!(s.expire_pending(1_010).unwrap(), 1);
    drop(s);
    let s = open(&dir);
    assert_eq!(s.ledger().transfer(2).unwrap().state, Some(settlement::PendingState::Expired));
    assert_eq!(s.ledger().balances(alice).unwrap().credits_pending, 0);
    assert_eq!(avail(&s, "alice", "USD"), 500);
}

/// After a refused commit the ledger in memory holds postings the store does not; a later
/// commit would write balances that include them. So every later commit is refused too, even
/// once the store would take it, and a restart finds exactly what was committed.
#[test]
fn after_a_refused_commit_nothing_more_is_written_until_a_restart() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let refuse = std::sync::Arc::new(AtomicBool::new(false));
    let store = settlement::testing::Refusing {
        inner: AnyStore::open(&StoreConfig::Redb { path: dir.path().join("ledger.redb") }).unwrap(),
        refuse: std::sync::Arc::clone(&refuse),
    };
    let mut s = Settlement::open(&config(), store, &accounts(), &symbols()).unwrap();
    assert_eq!(s.deposit(1, "alice", "USD", 100 * USD, 0).unwrap(), Created::New);
    refuse.store(true, Ordering::SeqCst);
    let e = s.deposit(2, "alice", "USD", 20 * USD, 0).unwrap_err();
    assert!(e.to_string().contains("disk full (simulated)"), "{e}");
    refuse.store(false, Ordering::SeqCst);
    let e = s.deposit(3, "bob", "USD", 30 * USD, 0).unwrap_err();
    assert!(e.to_string().contains("an earlier commit was refused"), "{e}");
    assert_eq!(s.commit_failures(), 2, "the second refusal counts: its work is lost too");
    drop(s);
    let s = open(&dir);
    assert_eq!((avail(&s, "alice", "USD"), avail(&s, "bob", "USD")), ((100 * USD) as i128, 0));
}
