//! The projection, fed the engine's events, equals the engine's own book after every command:
//! L3 order by order (id, side, price, displayed qty, queue priority), L2 at several depths as the
//! aggregation of it, and L1.

mod common;

use engine::{BookSnapshot, Command, Engine, Side, SymbolId};
use std::collections::BTreeMap;

use engine::{Event, EventKind};
use marketdata::{Bar, BarPeriod, Bbo, BookOrder, Level, Projection, ProjectionConfig, TradeTick};
use proptest::test_runner::{TestCaseError, TestError};

/// The engine's book as the public sees it: (side, price, order id, displayed qty) in priority.
fn engine_l3(snapshot: &BookSnapshot) -> Vec<BookOrder> {
    let mut out = Vec::new();
    for (side, levels) in [(Side::Buy, &snapshot.bids), (Side::Sell, &snapshot.asks)] {
        for level in levels {
            for o in &level.orders {
                out.push(BookOrder { order_id: o.order_id, side, price: level.price, qty: o.visible_qty });
            }
        }
    }
    out
}

fn engine_l2(snapshot: &BookSnapshot, side: Side, depth: usize) -> Vec<Level> {
    let levels = if side == Side::Buy { &snapshot.bids } else { &snapshot.asks };
    levels
        .iter()
        .take(depth)
        .map(|l| Level {
            side,
            price: l.price,
            qty: l.orders.iter().map(|o| o.visible_qty).sum(),
            count: l.orders.len() as u32,
        })
        .collect()
}

fn check(engine: &Engine, projection: &Projection, after: &Command) -> Result<(), TestCaseError> {
    for symbol in 0..common::SYMBOLS {
        let snapshot = engine.book_snapshot(SymbolId(symbol));
        let book = projection.book(SymbolId(symbol)).expect("listed");
        let l3: Vec<BookOrder> = book.orders(Side::Buy).chain(book.orders(Side::Sell)).collect();
        proptest::prop_assert_eq!(&l3, &engine_l3(&snapshot), "L3 of symbol {} after {:?}", symbol, after);
        for side in [Side::Buy, Side::Sell] {
            for depth in [1, 2, 5, usize::MAX] {
                let l2: Vec<Level> = book.levels(side).take(depth).collect();
                proptest::prop_assert_eq!(
                    l2,
                    engine_l2(&snapshot, side, depth),
                    "L2 {:?} depth {}",
                    side,
                    depth
                );
            }
        }
        let top = |side| engine_l2(&snapshot, side, 1).first().map(|l| (l.price, l.qty));
        proptest::prop_assert_eq!(book.bbo(), Bbo { bid: top(Side::Buy), ask: top(Side::Sell) });
    }
    Ok(())
}

const TAPE_LEN_MAX: usize = 16;
const BARS_LEN_MAX: usize = 4;

/// The tape and bars, computed the obvious way from every trade event: they must equal the
/// projection's bounded, incremental ones.
fn check_tape_and_bars(events: &[Event], projection: &Projection) -> Result<(), TestCaseError> {
    for symbol in 0..common::SYMBOLS {
        let trades: Vec<TradeTick> = events
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::Trade {
                    symbol: s, price, qty, aggressor, maker_order_id, taker_order_id, ..
                } if s == SymbolId(symbol) => Some(TradeTick {
                    seq: e.seq,
                    ts: e.ts,
                    price,
                    qty,
                    aggressor,
                    maker_order_id,
                    taker_order_id,
                }),
                _ => None,
            })
            .collect();
        let tape: Vec<TradeTick> = projection.tape(SymbolId(symbol)).copied().collect();
        proptest::prop_assert_eq!(&tape[..], &trades[trades.len().saturating_sub(TAPE_LEN_MAX)..]);
        for period in [BarPeriod::OneSecond, BarPeriod::OneMinute] {
            let mut bars: BTreeMap<u64, Bar> = BTreeMap::new();
            for t in &trades {
                let start_ts = t.ts / period.ns() * period.ns();
                let bar = bars.entry(start_ts).or_insert(Bar {
                    start_ts,
                    open: t.price,
                    high: t.price,
                    low: t.price,
                    close: t.price,
                    volume: 0,
                    trades: 0,
                });
                bar.high = bar.high.max(t.price);
                bar.low = bar.low.min(t.price);
                bar.close = t.price;
                bar.volume += t.qty;
                bar.trades += 1;
            }
            let want: Vec<Bar> = bars.into_values().collect();
            let got: Vec<Bar> = projection.bars(SymbolId(symbol), period).copied().collect();
            proptest::prop_assert_eq!(
                &got[..],
                &want[want.len().saturating_sub(BARS_LEN_MAX)..],
                "{:?}",
                period
            );
        }
    }
    Ok(())
}

fn property(tight: bool, cases: u32, salt: u64) {
    let (mut runner, seed) = common::runner(cases, salt);
    let result = runner.run(&common::stream(200), |commands| {
        let mut engine = common::engine(tight);
        let mut projection = Projection::new(ProjectionConfig {
            symbols: 2,
            tape_len_max: TAPE_LEN_MAX,
            bars_len_max: BARS_LEN_MAX,
        });
        let mut all = Vec::new();
        for command in &commands {
            let mut events = Vec::new();
            engine.process(command, &mut events);
            all.extend_from_slice(&events);
            for event in &events {
                projection
                    .apply(event, &mut ())
                    .map_err(|e| TestCaseError::fail(format!("{e} at {command:?}")))?;
                // Resting happens at the event where matching ends, so the public book is never
                // crossed, not even between the events of one command.
                for symbol in 0..common::SYMBOLS {
                    let bbo = projection.book(SymbolId(symbol)).expect("listed").bbo();
                    if let (Some((bid, _)), Some((ask, _))) = (bbo.bid, bbo.ask) {
                        proptest::prop_assert!(bid < ask, "crossed after {:?}", event);
                    }
                }
            }
            check(&engine, &projection, command)?;
        }
        check_tape_and_bars(&all, &projection)
    });
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, commands)) => {
            panic!("seed {seed}: {reason}\nshrunk stream:\n{commands:#?}")
        }
        Err(e) => panic!("seed {seed}: {e}"),
    }
}

#[test]
fn projection_equals_engine_book_after_every_command() {
    property(false, 256, 0);
}

/// Small pools and ladders: `book_full` rejects, and triggered stop-limits canceled `book_full`.
#[test]
fn projection_equals_engine_book_with_tight_pools() {
    property(true, 128, 0x71647);
}
