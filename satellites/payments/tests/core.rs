//! The payments core against a real settlement ledger (redb; PostgreSQL when configured):
//! fees, refunds, the status machine, fraud declines, the breaker, and that a refused
//! request writes nothing.
#![allow(clippy::inconsistent_digit_grouping)] // amounts in cents: 100_00 is 100.00

mod common;

use common::{available, posted_sum, Place, Scripted};
use payments::breaker::{BreakerConfig, BreakerState};
use payments::connector::{PaymentKind, RailError, RailOutcome};
use payments::core::{NewPayment, Payments, PaymentsError, Status};
use payments::fraud::FraudConfig;
use payments::PaymentsConfig;

const T0: u64 = 1_800_000_000_000_000_000;

fn deposit<'a>(account: &'a str, method: &'a str, amount_minor: u64) -> NewPayment<'a> {
    NewPayment { kind: PaymentKind::Deposit, account, asset: "USD", method, amount_minor }
}

fn withdrawal<'a>(account: &'a str, amount_minor: u64) -> NewPayment<'a> {
    NewPayment { kind: PaymentKind::Withdrawal, account, asset: "USD", method: "bank_transfer", amount_minor }
}

#[test]
fn fees_per_method_go_to_the_fee_account() {
    for place in Place::all("fees") {
        let mut s = place.open();
        let mut p = Payments::new(&PaymentsConfig::default(), &mut s, Box::new(Scripted::default())).unwrap();
        let card = p.create(&mut s, &deposit("alice", "card", 100_00), T0).unwrap();
        assert_eq!((card.status, card.fee_minor), (Status::Succeeded, 2_00));
        let h: Vec<Status> = card.history.iter().map(|(s, _)| *s).collect();
        assert_eq!(h, [Status::Pending, Status::Processing, Status::Succeeded]);
        // UPI 0.5% of 10.01 is 5.005 cents: rounded up, never under-charged.
        assert_eq!(p.create(&mut s, &deposit("alice", "upi", 10_01), T0).unwrap().fee_minor, 6);
        assert_eq!(p.create(&mut s, &deposit("alice", "bank_transfer", 50_00), T0).unwrap().fee_minor, 0);
        assert_eq!(p.create(&mut s, &deposit("alice", "wallet", 10_00), T0).unwrap().fee_minor, 10);
        assert_eq!(available(&s, "alice", "USD"), 100_00 - 2_00 + 10_01 - 6 + 50_00 + 10_00 - 10);
        assert_eq!(available(&s, "venue:fees", "USD"), 2_00 + 6 + 10);
        let w = p.create(&mut s, &NewPayment { method: "card", ..withdrawal("alice", 20_00) }, T0).unwrap();
        assert_eq!((w.status, w.fee_minor), (Status::Succeeded, 40));
        assert_eq!(available(&s, "alice", "USD"), 167_85 - 20_00);
        assert_eq!(available(&s, "venue:fees", "USD"), 216 + 40);
        assert_eq!(posted_sum(&s, "USD"), 0);
        s.ledger().verify().unwrap();
    }
}

#[test]
fn refunds_are_partial_repeated_and_never_above_the_original() {
    for place in Place::all("refunds") {
        let mut s = place.open();
        let mut p = Payments::new(&PaymentsConfig::default(), &mut s, Box::new(Scripted::default())).unwrap();
        let d = p.create(&mut s, &deposit("bob", "card", 100_00), T0).unwrap();
        let r = p.refund(&mut s, d.id, 30_00, T0 + 1).unwrap();
        assert_eq!(
            (r.status, r.refunded_minor, r.refunds[0].fee_minor),
            (Status::PartiallyRefunded, 30_00, 60)
        );
        let r = p.refund(&mut s, d.id, 50_00, T0 + 2).unwrap();
        assert_eq!((r.status, r.refunded_minor), (Status::PartiallyRefunded, 80_00));
        let before = s.ledger().transfer_count();
        let e = p.refund(&mut s, d.id, 20_01, T0 + 3).unwrap_err();
        assert!(matches!(e, PaymentsError::OverRefund { left_minor: 20_00, .. }), "{e}");
        assert_eq!(e.field(), Some("amount"));
        assert_eq!(s.ledger().transfer_count(), before, "a refused refund writes nothing");
        let r = p.refund(&mut s, d.id, 20_00, T0 + 4).unwrap();
        assert_eq!((r.status, r.fee_refunded_minor), (Status::Refunded, 2_00));
        // A full refund undoes the deposit, fee included.
        assert_eq!(available(&s, "bob", "USD"), 0);
        assert_eq!(available(&s, "venue:fees", "USD"), 0);
        assert!(matches!(p.refund(&mut s, d.id, 1, T0), Err(PaymentsError::NotRefundable { .. })));
        // Withdrawals are not refundable.
        let d2 = p.create(&mut s, &deposit("bob", "bank_transfer", 10_00), T0).unwrap();
        let w = p.create(&mut s, &withdrawal("bob", 5_00), T0).unwrap();
        assert!(matches!(p.refund(&mut s, w.id, 1, T0), Err(PaymentsError::NotRefundable { .. })));
        // Refunding what was already spent is an overdraft, refused whole.
        assert!(matches!(p.refund(&mut s, d2.id, 6_00, T0), Err(PaymentsError::Overdraft { .. })));
        assert_eq!(posted_sum(&s, "USD"), 0);
    }
}

#[test]
fn bad_requests_write_nothing() {
    for place in Place::all("bad") {
        let mut s = place.open();
        let mut p = Payments::new(&PaymentsConfig::default(), &mut s, Box::new(Scripted::default())).unwrap();
        let cases: [(NewPayment<'_>, &str); 5] = [
            (withdrawal("carol", 1), "amount"),
            (deposit("carol", "cheque", 100), "method"),
            (deposit("mallory", "card", 100), "account"),
            (deposit("venue:fees", "card", 100), "account"),
            (deposit("carol", "card", 1), "amount"), // a 2% fee rounded up takes all of 1 cent
        ];
        for (req, field) in cases {
            let e = p.create(&mut s, &req, T0).unwrap_err();
            assert_eq!(e.field(), Some(field), "{e}");
        }
        let e =
            p.create(&mut s, &NewPayment { asset: "EUR", ..deposit("carol", "card", 100) }, T0).unwrap_err();
        assert_eq!(e.field(), Some("asset"));
        assert_eq!(s.ledger().transfer_count(), 0);
        assert_eq!(p.list(None, 0).count(), 0);
        assert!(p.drain_events().is_empty());
    }
}

#[test]
fn a_failed_withdrawal_voids_its_reservation() {
    for place in Place::all("void") {
        let mut s = place.open();
        let rails = Scripted::default();
        let mut p = Payments::new(&PaymentsConfig::default(), &mut s, Box::new(rails.clone())).unwrap();
        p.create(&mut s, &deposit("alice", "bank_transfer", 100_00), T0).unwrap();
        rails.script.lock().unwrap().push(Ok(RailOutcome::Declined("bank says no".into())));
        let w = p.create(&mut s, &NewPayment { method: "card", ..withdrawal("alice", 60_00) }, T0).unwrap();
        assert_eq!(w.status, Status::Failed);
        assert_eq!(w.failure.as_deref(), Some("declined: bank says no"));
        assert_eq!(available(&s, "alice", "USD"), 100_00, "the reservation is voided, fee included");
        assert_eq!(available(&s, "venue:fees", "USD"), 0);
        let events: Vec<Status> = p.drain_events().iter().map(|e| e.payment.status).collect();
        assert_eq!(events, [Status::Succeeded, Status::Failed], "one event per final status");
    }
}

#[test]
fn fraud_declines_above_the_threshold_and_records_the_rules() {
    for place in Place::all("fraud") {
        let mut s = place.open();
        let rails = Scripted::default();
        let config = PaymentsConfig {
            fraud: FraudConfig {
                large_amount: [("USD".to_string(), "1000".to_string())].into(),
                ..FraudConfig::default()
            },
            ..PaymentsConfig::default()
        };
        let mut p = Payments::new(&config, &mut s, Box::new(rails.clone())).unwrap();
        let big = p.create(&mut s, &deposit("alice", "card", 2_000_00), T0).unwrap();
        assert_eq!((big.status, big.fraud.score_milli), (Status::Succeeded, 500), "0.5 alone passes");
        for _ in 0..3 {
            rails.script.lock().unwrap().push(Ok(RailOutcome::Declined("no".into())));
            assert_eq!(
                p.create(&mut s, &deposit("alice", "card", 10_00), T0).unwrap().status,
                Status::Failed
            );
        }
        let calls = *rails.calls.lock().unwrap();
        let before = s.ledger().transfer_count();
        let d = p.create(&mut s, &deposit("alice", "card", 2_000_00), T0 + 1).unwrap();
        assert_eq!(d.status, Status::Failed);
        assert!(d.fraud.declined);
        assert_eq!(d.fraud.score_milli, 900);
        let rules: Vec<&str> = d.fraud.rules.iter().map(|r| r.rule).collect();
        assert_eq!(rules, ["large_amount", "repeated_failures"]);
        assert_eq!(*rails.calls.lock().unwrap(), calls, "a declined payment never reaches the rails");
        assert_eq!(s.ledger().transfer_count(), before);
        assert!(d.history.iter().all(|(st, _)| *st != Status::Processing));
    }
}

#[test]
fn the_breaker_opens_after_consecutive_rail_failures_and_probes_later() {
    for place in Place::all("breaker") {
        let mut s = place.open();
        let rails = Scripted::default();
        let config = PaymentsConfig {
            breaker: BreakerConfig { failures_max: 2, open_ms: 1_000, probes_max: 1 },
            ..PaymentsConfig::default()
        };
        let mut p = Payments::new(&config, &mut s, Box::new(rails.clone())).unwrap();
        rails.script.lock().unwrap().extend([
            Err(RailError::Timeout { timeout_ms: 2_000 }),
            Err(RailError::Unavailable("down".into())),
        ]);
        for _ in 0..2 {
            assert_eq!(p.create(&mut s, &deposit("bob", "upi", 10_00), T0).unwrap().status, Status::Failed);
        }
        assert_eq!(p.breaker().state, BreakerState::Open);
        let d = p.create(&mut s, &deposit("bob", "upi", 10_00), T0 + 999_000_000).unwrap();
        assert_eq!(d.failure.as_deref(), Some("rails: unavailable: circuit breaker open"));
        assert_eq!(*rails.calls.lock().unwrap(), 2, "an open breaker does not call the rails");
        let d = p.create(&mut s, &deposit("bob", "upi", 10_00), T0 + 1_000_000_000).unwrap();
        assert_eq!(d.status, Status::Succeeded, "the half-open probe goes through");
        assert_eq!(p.breaker().state, BreakerState::Closed);
        assert_eq!(available(&s, "bob", "USD"), 10_00 - 5);
    }
}

#[test]
fn ids_continue_after_a_restart() {
    let place = &Place::all("restart")[0];
    let id = {
        let mut s = place.open();
        let mut p = Payments::new(&PaymentsConfig::default(), &mut s, Box::new(Scripted::default())).unwrap();
        p.create(&mut s, &deposit("alice", "card", 10_00), T0).unwrap();
        p.create(&mut s, &deposit("alice", "card", 10_00), T0).unwrap().id
    };
    let mut s = place.open();
    let mut p = Payments::new(&PaymentsConfig::default(), &mut s, Box::new(Scripted::default())).unwrap();
    let next = p.create(&mut s, &deposit("alice", "card", 10_00), T0).unwrap();
    assert_eq!((next.id, next.status), (id + 1, Status::Succeeded));
    assert_eq!(available(&s, "alice", "USD"), 3 * 9_80);
}

/// Payment records live in the ledger's store: after a restart every record reads back as it
/// was, and a payment stopped during its rails call (here: begun, never completed, as when the
/// process is killed) is failed at the next start with a withdrawal's reservation voided.
#[test]
fn records_survive_a_restart_and_interrupted_payments_fail() {
    for place in Place::all("durable") {
        let (d, r, w_id) = {
            let mut s = place.open();
            let mut p =
                Payments::new(&PaymentsConfig::default(), &mut s, Box::new(Scripted::default())).unwrap();
            let d = p.create(&mut s, &deposit("carol", "card", 100_00), T0).unwrap();
            let r = p.refund(&mut s, d.id, 10_00, T0 + 1).unwrap();
            assert_eq!(available(&s, "carol", "USD"), 98_00 - 9_80);
            let no_extra = |_: &payments::Payment| Vec::new();
            let begun = p.begin(&mut s, &withdrawal("carol", 50_00), T0 + 2, &no_extra).unwrap();
            let payments::core::Begun::Rails(f) = begun else { panic!("to the rails") };
            assert_eq!(available(&s, "carol", "USD"), 88_20 - 50_00, "reserved while at the rails");
            assert_eq!(p.get(r.id + 1).map(|w| w.status), Some(Status::Processing));
            drop(f);
            let w_id = r.id + 1;
            (d, r, w_id)
        };
        let mut s = place.open();
        let mut p = Payments::new(&PaymentsConfig::default(), &mut s, Box::new(Scripted::default())).unwrap();
        assert_eq!(p.get(d.id), Some(&r), "the record as the refund left it");
        let w = p.get(w_id).unwrap().clone();
        assert_eq!(w.status, Status::Failed);
        assert!(w.failure.as_deref().unwrap().starts_with("interrupted"), "{:?}", w.failure);
        assert_eq!(available(&s, "carol", "USD"), 88_20, "the reservation is voided");
        let events = p.drain_events();
        assert_eq!(events.len(), 1, "the interrupted payment is announced");
        assert_eq!(events[0].payment.id, w_id);
        // Once: a second start finds nothing to recover.
        drop(p);
        let mut s2 = s;
        let mut p =
            Payments::new(&PaymentsConfig::default(), &mut s2, Box::new(Scripted::default())).unwrap();
        assert!(p.drain_events().is_empty());
        let next = p.create(&mut s2, &deposit("carol", "bank_transfer", 1_00), T0 + 3).unwrap();
        assert_eq!(next.id, w_id + 1);
        assert_eq!(posted_sum(&s2, "USD"), 0);
        s2.ledger().verify().unwrap();
    }
}

/// Begins `req` and leaves it at the rails, as a process killed during the call does.
fn cut_at_the_rails(
    p: &mut Payments,
    s: &mut settlement::Settlement<settlement::AnyStore>,
    req: &NewPayment<'_>,
) -> u64 {
    let no_extra = |_: &payments::Payment| Vec::new();
    match p.begin(s, req, T0, &no_extra).unwrap() {
        payments::core::Begun::Rails(f) => {
            drop(f);
            p.list(None, 0).last().unwrap().id
        }
        payments::core::Begun::Done(d) => panic!("to the rails: {d:?}"),
    }
}

/// A payment cut off at the rails is resolved at the next start by asking the rails (the
/// seeded simulator, which recomputes its decision from the seed and the payment's reference):
/// approved → succeeded and booked (a deposit credited, a withdrawal's reservation posted),
/// declined → failed and voided, never reached them → failed; a query that times out or meets
/// an open breaker fails it as before, saying why.
#[test]
fn payments_cut_off_at_the_rails_are_resolved_by_asking_them() {
    use payments::connector::SimulatorConfig;
    use payments::SimulatedConnector;
    let sim = |decline_milli, unavailable_milli, sleep_ms| {
        Box::new(SimulatedConnector::new(SimulatorConfig {
            seed: 42,
            decline_milli,
            unavailable_milli,
            latency_max_ms: 0,
            sleep_ms,
        }))
    };
    let config = PaymentsConfig { call_timeout_ms: 50, ..PaymentsConfig::default() };
    for place in Place::all("ask") {
        // Approved at the rails: a card deposit and a withdrawal.
        let (dep, wd) = {
            let mut s = place.open();
            let mut p = Payments::new(&config, &mut s, sim(0, 0, 0)).unwrap();
            p.create(&mut s, &deposit("carol", "bank_transfer", 200_00), T0).unwrap();
            let dep = cut_at_the_rails(&mut p, &mut s, &deposit("carol", "card", 100_00));
            let wd = cut_at_the_rails(&mut p, &mut s, &withdrawal("carol", 30_00));
            (dep, wd)
        };
        let before = {
            let s = place.open();
            available(&s, "carol", "USD")
        };
        let mut s = place.open();
        let mut p = Payments::new(&config, &mut s, sim(0, 0, 0)).unwrap();
        let d = p.get(dep).unwrap().clone();
        assert_eq!(d.status, Status::Succeeded, "{d:?}");
        assert!(d.rail_reference.as_deref().unwrap().starts_with(&format!("sim-{dep}-")));
        assert_eq!(p.get(wd).unwrap().status, Status::Succeeded);
        // The deposit is credited net of its 2% fee; the withdrawal's reservation is posted.
        assert_eq!(available(&s, "carol", "USD"), before + 98_00);
        let events = p.drain_events();
        assert_eq!(
            events.iter().map(|e| (e.payment.id, e.payment.status)).collect::<Vec<_>>(),
            [(dep, Status::Succeeded), (wd, Status::Succeeded)]
        );
        drop(p);
        // Declined by the rails, unknown to them, and a query that times out.
        for (rails, want) in [
            (sim(1_000, 0, 0), "declined: simulated decline (asked after a restart)"),
            (sim(0, 1_000, 0), "interrupted: the venue stopped before the call reached the rails"),
            (sim(0, 0, 200), "interrupted: the venue stopped during the rails call, and asking them failed: rails: no answer within 50 ms"),
        ] {
            let w = {
                let mut p = Payments::new(&config, &mut s, sim(0, 0, 0)).unwrap();
                cut_at_the_rails(&mut p, &mut s, &withdrawal("carol", 10_00))
            };
            let held = available(&s, "carol", "USD");
            let p = Payments::new(&config, &mut s, rails).unwrap();
            let got = p.get(w).unwrap();
            assert_eq!((got.status, got.failure.as_deref()), (Status::Failed, Some(want)));
            assert_eq!(available(&s, "carol", "USD"), held + 10_00, "the reservation is voided");
        }
        // An open breaker: no query at all.
        let open = PaymentsConfig {
            breaker: BreakerConfig { failures_max: 1, open_ms: 60_000, probes_max: 1 },
            ..config.clone()
        };
        let (a, b) = {
            let mut p = Payments::new(&open, &mut s, sim(0, 0, 0)).unwrap();
            let a = cut_at_the_rails(&mut p, &mut s, &deposit("carol", "bank_transfer", 1_00));
            let b = cut_at_the_rails(&mut p, &mut s, &deposit("carol", "bank_transfer", 2_00));
            (a, b)
        };
        let p = Payments::new(&open, &mut s, sim(0, 0, 200)).unwrap();
        assert!(p.get(a).unwrap().failure.as_deref().unwrap().ends_with("no answer within 50 ms"));
        assert!(p.get(b).unwrap().failure.as_deref().unwrap().ends_with("circuit breaker open"));
        assert_eq!(p.breaker().state, BreakerState::Open);
        assert_eq!(posted_sum(&s, "USD"), 0);
        s.ledger().verify().unwrap();
    }
}

/// Each final status enqueues one webhook delivery per endpoint in its own transaction: the
/// records are there at the next start (pending, with the event body), ids continue after
/// them, and a payment still at the rails has none.
#[test]
fn final_statuses_store_their_webhook_deliveries_with_them() {
    use payments::config::WebhookEndpoint;
    use payments::webhook::DeliveryState;
    let endpoint = |url: &str| WebhookEndpoint { url: url.into(), secret: "whsec".into() };
    let config = PaymentsConfig {
        webhooks: vec![endpoint("http://127.0.0.1:9/a"), endpoint("http://127.0.0.1:9/b")],
        ..PaymentsConfig::default()
    };
    for place in Place::all("deliveries") {
        let (d, r) = {
            let mut s = place.open();
            let mut p = Payments::new(&config, &mut s, Box::new(Scripted::default())).unwrap();
            let d = p.create(&mut s, &deposit("alice", "card", 10_00), T0).unwrap();
            let r = p.refund(&mut s, d.id, 1_00, T0 + 1).unwrap();
            let events = p.drain_events();
            let ids: Vec<u64> =
                events.iter().flat_map(|e| e.deliveries.iter().map(|x| x.delivery.id)).collect();
            assert_eq!(ids, [1, 2, 3, 4]);
            cut_at_the_rails(&mut p, &mut s, &deposit("alice", "card", 5_00));
            (d, r)
        };
        let mut s = place.open();
        let mut p = Payments::new(&config, &mut s, Box::new(Scripted::default())).unwrap();
        let stored = p.take_stored_deliveries();
        let seen: Vec<(u64, u64, &str, &str, DeliveryState)> = stored
            .iter()
            .map(|x| {
                let d = &x.delivery;
                (d.id, d.payment_id, d.status.as_str(), d.url.as_str(), d.state)
            })
            .collect();
        assert_eq!(
            seen,
            [
                (1, d.id, "succeeded", "http://127.0.0.1:9/a", DeliveryState::Pending),
                (2, d.id, "succeeded", "http://127.0.0.1:9/b", DeliveryState::Pending),
                (3, r.id, "partially_refunded", "http://127.0.0.1:9/a", DeliveryState::Pending),
                (4, r.id, "partially_refunded", "http://127.0.0.1:9/b", DeliveryState::Pending),
            ]
        );
        let body: serde_json::Value = serde_json::from_str(&stored[2].body).unwrap();
        assert_eq!(body["type"], "payment.partially_refunded");
        assert_eq!(body["payment"]["refunded"], "1.00");
        // The payment cut at the rails was resolved at this start (Scripted rails: unknown, so
        // failed), its deliveries numbered after the stored ones.
        let events = p.drain_events();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].payment.status, Status::Failed);
        let ids: Vec<u64> = events[0].deliveries.iter().map(|x| x.delivery.id).collect();
        assert_eq!(ids, [5, 6]);
    }
}
