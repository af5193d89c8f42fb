//! Trades booked per second: a generated, seeded stream of engine trade events fed to the
//! follower in batches (one store transaction per batch: postings + cursor), then one
//! settlement run that posts every pending leg.
//!
//! ```text
//! cargo bench -p settlement --bench booking -- --trades 200000 --batch 1000
//! scripts/pg-test.sh cargo bench -p settlement --bench booking -- --backend postgres --trades 50000
//! ```
//! A short run by design (well under a minute); prints one line per phase.

use std::time::Instant;

use engine::{AccountId, ClOrdId, Event, EventKind, OrderId, Price, Side, SymbolId};
use rand::{rngs::SmallRng, Rng, SeedableRng};
use settlement::{AnyStore, Asset, Settlement, SettlementConfig, StoreConfig, SymbolConfig};

/// Venue accounts trading in the stream.
const ACCOUNTS: usize = 64;

struct Args {
    trades: u64,
    batch: usize,
    backend: String,
}

fn args() -> Args {
    let mut a = Args { trades: 200_000, batch: 1_000, backend: "redb".into() };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--trades" => a.trades = it.next().and_then(|v| v.parse().ok()).expect("--trades N"),
            "--batch" => a.batch = it.next().and_then(|v| v.parse().ok()).expect("--batch N"),
            "--backend" => a.backend = it.next().expect("--backend redb|postgres"),
            // `cargo bench` passes --bench to every bench binary.
            _ => {}
        }
    }
    a
}

fn config() -> SettlementConfig {
    SettlementConfig {
        store: StoreConfig::default(),
        limits: Default::default(),
        fee_owner: "venue:fees".into(),
        cutoff_utc: "16:00".into(),
        holidays: vec![],
        assets: vec![Asset { name: "USD".into(), scale: 2 }, Asset { name: "BTC".into(), scale: 8 }],
        symbols: vec![SymbolConfig {
            name: "BTC-USD".into(),
            base: "BTC".into(),
            quote: "USD".into(),
            tick: "1".into(),
            qty_unit: "0.01".into(),
            maker_fee_bps: 1,
            taker_fee_bps: 5,
            settle_days: 1,
        }],
    }
}

fn main() {
    let args = args();
    let dir = tempfile::tempdir().expect("temp dir");
    let store_config = match args.backend.as_str() {
        "redb" => StoreConfig::Redb { path: dir.path().join("bench.redb") },
        "postgres" => {
            let url =
                std::env::var("SETTLEMENT_PG_URL").expect("SETTLEMENT_PG_URL (run under scripts/pg-test.sh)");
            let schema = format!("bench_{}", std::process::id());
            StoreConfig::Postgres { url, schema }
        }
        other => panic!("--backend {other}: redb or postgres"),
    };
    let store = AnyStore::open(&store_config).expect("open store");
    let names: Vec<String> = (0..ACCOUNTS).map(|i| format!("acct{i}")).collect();
    let mut s = Settlement::open(&config(), store, &names, &["BTC-USD".to_string()]).expect("open");
    let mut id = 0u128;
    for name in &names {
        id += 1;
        s.deposit(id, name, "USD", 1_000_000_000_000, 0).expect("fund USD");
        id += 1;
        s.deposit(id, name, "BTC", 100_000_000_000_000, 0).expect("fund BTC");
    }

    let mut rng = SmallRng::seed_from_u64(7);
    let cl = ClOrdId::from_bytes(b"bench").expect("id");
    // Monday 2026-12-07 10:00 UTC.
    let ts = 1_796_637_600_000_000_000u64;
    let events: Vec<Event> = (1..=args.trades)
        .map(|seq| {
            let maker = rng.gen_range(0..ACCOUNTS as u32);
            let taker = (maker + rng.gen_range(1..ACCOUNTS as u32)) % ACCOUNTS as u32;
            Event {
                seq,
                command_seq: seq,
                ts: ts + seq,
                kind: EventKind::Trade {
                    symbol: SymbolId(0),
                    price: Price(rng.gen_range(40_000..60_000)),
                    qty: rng.gen_range(1..100),
                    maker_account: AccountId(maker),
                    maker_id: cl,
                    maker_order_id: OrderId(seq),
                    maker_leaves_qty: 0,
                    taker_account: AccountId(taker),
                    taker_id: cl,
                    taker_order_id: OrderId(seq),
                    taker_leaves_qty: 0,
                    aggressor: if rng.gen() { Side::Buy } else { Side::Sell },
                },
            }
        })
        .collect();

    let start = Instant::now();
    let mut booked = 0;
    for batch in events.chunks(args.batch.max(1)) {
        let applied = s.apply_batch(batch).expect("apply");
        assert_eq!(applied.rejected, 0, "{:?}", s.rejections().front());
        booked += applied.trades;
    }
    let book_s = start.elapsed().as_secs_f64();
    let legs = s.unsettled_legs();
    println!(
        "backend={} trades={booked} batch={} commits={} legs={legs} seconds={book_s:.3} trades_per_s={:.0} legs_per_s={:.0}",
        args.backend,
        args.batch,
        events.len().div_ceil(args.batch.max(1)),
        booked as f64 / book_s,
        legs as f64 / book_s
    );

    let start = Instant::now();
    let report = s.settle(time::macros::date!(2026 - 12 - 08), ts + 86_400_000_000_000).expect("settle");
    let settle_s = start.elapsed().as_secs_f64();
    println!(
        "settlement run: trades={} legs_posted={} lines={} seconds={settle_s:.3} legs_per_s={:.0}",
        report.trades,
        report.legs_posted,
        report.lines.len(),
        report.legs_posted as f64 / settle_s
    );
    s.ledger().verify().expect("zero-sum after the run");
    drop(s);
    if let StoreConfig::Postgres { url, schema } = store_config {
        settlement::PgStore::drop_schema(&url, &schema).expect("drop bench schema");
    }
}
