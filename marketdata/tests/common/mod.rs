//! Random command streams for the property tests: every order type the engine takes, on two
//! symbols, three accounts and a narrow price band so that orders cross, rest, trigger and
//! replace each other often.
#![allow(dead_code)]

use engine::{
    AccountId, CancelOrder, ClOrdId, Command, CommandHeader, CommandKind, Engine, EngineConfig, Event,
    NewOrder, OrdType, ReplaceOrder, Side, StpMode, SymbolId, SymbolSpec, Tif, PRICE_UNITS_PER_ONE,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

pub const SYMBOLS: u32 = 2;
const ACCOUNTS: u32 = 3;
const IDS: u8 = 6;
const CENT: i64 = PRICE_UNITS_PER_ONE / 100;

pub fn engine(tight: bool) -> Engine {
    let symbols = vec![SymbolSpec::new("S0", CENT, 1), SymbolSpec::new("S1", CENT, 1)];
    let config = if tight {
        EngineConfig { symbols, orders_max: 24, levels_per_side_max: 4 }
    } else {
        EngineConfig { symbols, orders_max: 4096, levels_per_side_max: 256 }
    };
    Engine::new(config)
}

fn cl_id(n: u8) -> ClOrdId {
    ClOrdId::from_str(&format!("o{n}")).expect("short id")
}

fn price(ticks: i64) -> i64 {
    ticks * CENT
}

fn new_order() -> impl Strategy<Value = CommandKind> {
    (
        (0..ACCOUNTS, 0..SYMBOLS, 0..IDS, any::<bool>(), 0u8..10, 95i64..106, 1u64..12),
        (0u8..10, 0u8..10, 0u8..10, 0u8..3, 1u64..6, 0u8..6),
    )
        .prop_map(
            |((account, symbol, id, buy, kind, ticks, qty), (tif, extra, display, stp, dq, gtd))| {
                let side = if buy { Side::Buy } else { Side::Sell };
                let mut o =
                    NewOrder::limit(AccountId(account), SymbolId(symbol), cl_id(id), side, price(ticks), qty);
                if kind < 2 {
                    o.ord_type = OrdType::Market;
                    o.price = engine::PriceUnits::ZERO;
                }
                o.tif = match tif {
                    0 | 1 => Tif::Ioc,
                    2 => Tif::Fok,
                    3 | 4 => Tif::Gtd,
                    _ => Tif::Gtc,
                };
                if o.tif == Tif::Gtd {
                    // Relative to the command's own ts, fixed up by `stream`.
                    o.expire_ts = Some(u64::from(gtd));
                }
                let rests = o.ord_type == OrdType::Limit && matches!(o.tif, Tif::Gtc | Tif::Gtd);
                match extra {
                    0 | 1 => o.stop_price = Some(engine::PriceUnits(price(ticks + if buy { 1 } else { -1 }))),
                    // Mostly valid combinations: a rejected order tests little of the book.
                    2 if rests || display == 9 => o.post_only = true,
                    _ => {}
                }
                if display < 3 && (rests || display == 0 && tif == 9) {
                    o.display_qty = Some(dq.min(qty));
                }
                o.stp = match stp {
                    0 => StpMode::CancelNewest,
                    1 => StpMode::CancelOldest,
                    _ => StpMode::CancelBoth,
                };
                CommandKind::New(o)
            },
        )
}

fn command_kind() -> impl Strategy<Value = CommandKind> {
    prop_oneof![
        10 => new_order(),
        5 => (0..ACCOUNTS, 0..SYMBOLS, 0..IDS, 0..IDS, proptest::option::of(95i64..106), 1u64..14).prop_map(
            |(account, symbol, orig, id, ticks, qty)| CommandKind::Replace(ReplaceOrder {
                account: AccountId(account),
                symbol: SymbolId(symbol),
                orig_id: cl_id(orig),
                id: cl_id(id),
                price: ticks.map(|t| engine::PriceUnits(price(t))),
                qty,
            })
        ),
        2 => (0..ACCOUNTS, 0..SYMBOLS, 0..IDS)
            .prop_map(|(account, symbol, id)| CommandKind::Cancel(CancelOrder { account: AccountId(account), symbol: SymbolId(symbol), id: cl_id(id), request_id: None })),
        1 => (0..ACCOUNTS, proptest::option::of(0..SYMBOLS)).prop_map(|(account, symbol)| CommandKind::CancelAll {
            account: AccountId(account),
            symbol: symbol.map(SymbolId),
        }),
        // Mostly resumes: a halted symbol rejects everything, which tests little.
        1 => (0..SYMBOLS, 0u8..4).prop_map(|(symbol, roll)| if roll == 0 {
            CommandKind::Halt { symbol: SymbolId(symbol) }
        } else {
            CommandKind::Resume { symbol: SymbolId(symbol) }
        }),
    ]
}

/// Time between commands: 0.1 s, so that 1 s bars close every ten commands.
pub const TS_STEP_NS: u64 = 100_000_000;

/// A stream of sequenced commands, [`TS_STEP_NS`] apart, GTD expiries a few commands ahead.
pub fn stream(len: usize) -> impl Strategy<Value = Vec<Command>> {
    proptest::collection::vec(command_kind(), 1..len).prop_map(|kinds| {
        kinds
            .into_iter()
            .enumerate()
            .map(|(i, mut kind)| {
                let seq = i as u64 + 1;
                let ts = seq * TS_STEP_NS;
                if let CommandKind::New(o) = &mut kind {
                    if let Some(ahead) = o.expire_ts {
                        o.expire_ts = Some(ts + ahead * TS_STEP_NS);
                    }
                }
                Command { header: CommandHeader { seq, ts }, kind }
            })
            .collect()
    })
}

/// Runs every command through `engine`, returning each command's events.
pub fn run(engine: &mut Engine, commands: &[Command]) -> Vec<Vec<Event>> {
    commands
        .iter()
        .map(|c| {
            let mut out = Vec::new();
            engine.process(c, &mut out);
            out
        })
        .collect()
}

/// A seeded runner (`PROPTEST_CASES` and `MD_SEED` override the defaults) for reproducible runs.
pub fn runner(cases_default: u32, salt: u64) -> (TestRunner, u64) {
    let env =
        |name: &str, default: u64| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let cases = env("PROPTEST_CASES", u64::from(cases_default)) as u32;
    let seed = env("MD_SEED", 20_261_205) ^ salt;
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config { cases, failure_persistence: None, max_shrink_iters: 20_000, ..Config::default() };
    (TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes)), seed)
}
