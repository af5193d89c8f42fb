//! The projection, fed the engine's events, equals the engine's own book after every command:
//! L3 order by order (id, side, price, displayed qty, queue priority), L2 at several depths as the
//! aggregation of it, and L1.

mod common;

use engine::{BookSnapshot, Command, Engine, Side};
use marketdata::{Bbo, BookOrder, Level, Projection, ProjectionConfig};
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
        let snapshot = engine.book_snapshot(symbol);
        let book = projection.book(symbol).expect("listed");
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

fn property(tight: bool, cases: u32, salt: u64) {
    let (mut runner, seed) = common::runner(cases, salt);
    let result = runner.run(&common::stream(200), |commands| {
        let mut engine = common::engine(tight);
        let mut projection = Projection::new(ProjectionConfig { symbols: 2, ..ProjectionConfig::default() });
        for command in &commands {
            let mut events = Vec::new();
            engine.process(command, &mut events);
            for event in &events {
                projection
                    .apply(event, &mut ())
                    .map_err(|e| TestCaseError::fail(format!("{e} at {command:?}")))?;
                // Resting happens at the event where matching ends, so the public book is never
                // crossed, not even between the events of one command.
                for symbol in 0..common::SYMBOLS {
                    let bbo = projection.book(symbol).expect("listed").bbo();
                    if let (Some((bid, _)), Some((ask, _))) = (bbo.bid, bbo.ask) {
                        proptest::prop_assert!(bid < ask, "crossed after {:?}", event);
                    }
                }
            }
            check(&engine, &projection, command)?;
        }
        Ok(())
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
