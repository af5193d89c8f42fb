//! Random payment and refund streams over the seeded simulated rails: after every step each
//! asset sums to zero, no refund exceeds its payment, and every balance equals a reference
//! model built from the payments' own outcomes.
#![allow(clippy::inconsistent_digit_grouping)] // amounts in cents: 100_00 is 100.00

mod common;

use std::collections::BTreeMap;

use common::{available, posted_sum, Place};
use payments::connector::{PaymentKind, SimulatedConnector, SimulatorConfig};
use payments::core::{NewPayment, Payments, Status};
use payments::PaymentsConfig;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Pay { kind: PaymentKind, account: usize, asset: usize, method: usize, amount: u64 },
    Refund { pick: usize, amount: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (any::<bool>(), 0..3usize, 0..2usize, 0..4usize, 1..50_000u64).prop_map(|(d, account, asset, method, amount)| Op::Pay {
            kind: if d { PaymentKind::Deposit } else { PaymentKind::Withdrawal }, account, asset, method, amount }),
        1 => (any::<usize>(), 1..30_000u64).prop_map(|(pick, amount)| Op::Refund { pick, amount }),
    ]
}

const ACCOUNTS: [&str; 3] = ["alice", "bob", "carol"];
const ASSETS: [&str; 2] = ["USD", "BTC"];
const METHODS: [&str; 4] = ["card", "bank_transfer", "upi", "wallet"];

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn streams_balance_and_match_the_model(seed in any::<u64>(), ops in prop::collection::vec(op(), 1..40)) {
        for place in Place::all("prop") {
            let mut s = place.open();
            let rails = SimulatedConnector::new(SimulatorConfig { seed, decline_milli: 200, unavailable_milli: 50, latency_max_ms: 3_000, sleep_ms: 0 });
            let mut p = Payments::new(&PaymentsConfig::default(), &mut s, Box::new(rails)).unwrap();
            let mut model: BTreeMap<(&str, &str), i128> = BTreeMap::new();
            let mut done: Vec<u64> = Vec::new();
            for (step, op) in ops.iter().enumerate() {
                let now = 1_800_000_000_000_000_000 + step as u64 * 1_000_000_000;
                match *op {
                    Op::Pay { kind, account, asset, method, amount } => {
                        let (owner, asset) = (ACCOUNTS[account], ASSETS[asset]);
                        let req = NewPayment { kind, account: owner, asset, method: METHODS[method], amount_minor: amount };
                        if let Ok(pay) = p.create(&mut s, &req, now) {
                            if pay.status == Status::Succeeded {
                                let net = i128::from(pay.amount_minor - pay.fee_minor);
                                let sign = if kind == PaymentKind::Deposit { 1 } else { -1 };
                                // A deposit credits amount − fee; a withdrawal debits the whole amount.
                                let fee = i128::from(pay.fee_minor);
                                *model.entry((owner, asset)).or_default() += if sign > 0 { net } else { -(net + fee) };
                                *model.entry(("venue:fees", asset)).or_default() += fee;
                                done.push(pay.id);
                            }
                        }
                    }
                    Op::Refund { pick, amount } => {
                        if done.is_empty() { continue; }
                        let id = done[pick % done.len()];
                        let before = p.get(id).unwrap().clone();
                        if let Ok(after) = p.refund(&mut s, id, amount, now) {
                            let r = after.refunds.last().unwrap();
                            let (owner, asset) = (ACCOUNTS.iter().find(|a| **a == after.account).unwrap(), ASSETS.iter().find(|a| **a == after.asset).unwrap());
                            *model.entry((owner, asset)).or_default() -= i128::from(r.amount_minor - r.fee_minor);
                            *model.entry(("venue:fees", asset)).or_default() -= i128::from(r.fee_minor);
                            prop_assert_eq!(after.refunded_minor, before.refunded_minor + amount);
                        } else {
                            prop_assert_eq!(p.get(id).unwrap(), &before, "a refused refund changes nothing");
                        }
                    }
                }
                for pay in p.list(None, 0) {
                    prop_assert!(pay.refunded_minor <= pay.amount_minor);
                    prop_assert!(pay.fee_refunded_minor <= pay.fee_minor);
                }
                for asset in ASSETS {
                    prop_assert_eq!(posted_sum(&s, asset), 0);
                    for owner in ACCOUNTS.iter().chain(&["venue:fees"]) {
                        let want = model.get(&(*owner, asset)).copied().unwrap_or(0);
                        prop_assert_eq!(available(&s, owner, asset), want, "{} {}", owner, asset);
                        prop_assert!(want >= 0, "no overdraft");
                    }
                }
                s.ledger().verify().unwrap();
            }
        }
    }
}
