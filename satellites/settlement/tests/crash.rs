//! Crash safety: a child process feeds a seeded event stream into a redb-backed follower and
//! is SIGKILLed after a seeded number of committed batches (while it writes the next one),
//! three times over; then the stream is fed once more to completion. The ledger must equal
//! one built from the whole stream in a single run: every trade booked exactly once.
//!
//! The child is this test binary run again with `crash_child` and the store in
//! `SETTLEMENT_CRASH_STORE` (`redb:<dir>` or `postgres:<schema>`). The PostgreSQL round runs
//! when `SETTLEMENT_PG_URL` is set (`scripts/pg-test.sh`).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::*;
use engine::{Event, Side};
use rand::{rngs::SmallRng, Rng, SeedableRng};
use settlement::{AccountIdx, AnyStore, Settlement, StoreConfig};

const EVENTS: u64 = 3_000;
const BATCH: usize = 25;
const CHILD_ENV: &str = "SETTLEMENT_CRASH_STORE";

fn events() -> Vec<Event> {
    let mut rng = SmallRng::seed_from_u64(42);
    (1..=EVENTS)
        .map(|seq| {
            if rng.gen_ratio(1, 5) {
                status(seq, MONDAY_10H_NS)
            } else {
                let maker = rng.gen_range(0..3);
                let taker = rng.gen_range(0..3);
                let side = if rng.gen() { Side::Buy } else { Side::Sell };
                trade(
                    seq,
                    MONDAY_10H_NS + seq,
                    rng.gen_range(0..2),
                    rng.gen_range(1..5_000),
                    rng.gen_range(1..20),
                    maker,
                    taker,
                    side,
                )
            }
        })
        .collect()
}

/// The store named by `spec`: `redb:<dir>` or `postgres:<schema>`.
fn store_config(spec: &str) -> StoreConfig {
    match spec.split_once(':') {
        Some(("redb", dir)) => StoreConfig::Redb { path: std::path::Path::new(dir).join("ledger.redb") },
        Some(("postgres", schema)) => StoreConfig::Postgres {
            url: std::env::var("SETTLEMENT_PG_URL").expect("SETTLEMENT_PG_URL"),
            schema: schema.to_string(),
        },
        _ => panic!("bad store spec {spec:?}"),
    }
}

fn open(spec: &str) -> Settlement<AnyStore> {
    let store = AnyStore::open(&store_config(spec)).unwrap();
    let mut s = Settlement::open(&config(), store, &accounts(), &symbols()).unwrap();
    // Funding under fixed ids: after a restart these are answered "already exists".
    for (i, owner) in ["alice", "bob", "carol"].iter().enumerate() {
        let id = 10 * i as u128;
        s.deposit(id + 1, owner, "USD", 5_000_000 * 100, 0).unwrap();
        s.deposit(id + 2, owner, "BTC", 50 * 100_000_000, 0).unwrap();
        s.deposit(id + 3, owner, "AAPL", 5_000, 0).unwrap();
    }
    s
}

/// The child: feed the stream in batches from the stored cursor, saying after each commit.
#[test]
#[ignore = "run as a child process by the crash_restart tests"]
fn crash_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else { return };
    let mut s = open(&spec);
    let events = events();
    let from = s.cursor() as usize;
    for batch in events[from..].chunks(BATCH) {
        s.apply_batch(batch).unwrap();
        println!("committed {}", s.cursor());
    }
    println!("done");
}

#[test]
fn crash_restart_books_every_trade_once_redb() {
    let dir = tempfile::tempdir().unwrap();
    crash_restart(&format!("redb:{}", dir.path().display()));
}

#[test]
fn crash_restart_books_every_trade_once_postgres() {
    let Ok(url) = std::env::var("SETTLEMENT_PG_URL") else {
        println!("skipping the PostgreSQL crash test: SETTLEMENT_PG_URL is not set (see scripts/pg-test.sh)");
        return;
    };
    let schema = format!("crash_{}", std::process::id());
    let _ = settlement::PgStore::drop_schema(&url, &schema);
    crash_restart(&format!("postgres:{schema}"));
    settlement::PgStore::drop_schema(&url, &schema).unwrap();
}

fn crash_restart(spec: &str) {
    let exe = std::env::current_exe().unwrap();
    let mut rng = SmallRng::seed_from_u64(7);
    let mut last = 0;
    for round in 0..3 {
        let kill_after = rng.gen_range(2..20);
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--include-ignored", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, spec)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut committed = 0;
        for line in lines {
            let line = line.unwrap();
            if let Some(c) = line.strip_prefix("committed ") {
                last = c.parse().unwrap();
                committed += 1;
                if committed == kill_after {
                    child.kill().unwrap(); // SIGKILL, mid-way through the next batch
                    break;
                }
            }
        }
        child.wait().unwrap();
        assert!(last > 0, "round {round}: the child committed nothing");
    }
    assert!(last < EVENTS, "the kills landed before the end of the stream");

    let events = events();
    let mut resumed = open(spec);
    assert!(resumed.cursor() >= last, "a committed batch survives SIGKILL");
    resumed.apply_batch(&events).unwrap();
    assert_eq!(resumed.cursor(), EVENTS);

    let fresh_dir = tempfile::tempdir().unwrap();
    let mut once = open(&format!("redb:{}", fresh_dir.path().display()));
    once.apply_batch(&events).unwrap();

    let (a, b) = (resumed.ledger(), once.ledger());
    assert_eq!(a.account_count(), b.account_count());
    for i in 0..a.account_count() {
        assert_eq!(
            a.balances(AccountIdx(i)),
            b.balances(AccountIdx(i)),
            "account {:?}",
            a.account_info(AccountIdx(i))
        );
    }
    assert_eq!(a.transfer_count(), b.transfer_count());
    assert_eq!(resumed.rejections(), once.rejections());
    assert_eq!(resumed.unsettled_legs(), once.unsettled_legs());
    a.verify().unwrap();
    assert!(b.transfer_count() > 1_000, "the stream books many trades: {}", b.transfer_count());
}
