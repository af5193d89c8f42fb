//! A subscriber that takes a snapshot after event k (having already seen some incrementals from
//! before it) and then applies the incrementals k+1..n holds the projection's book at every n:
//! L3 on the orders channel, L2 at every depth on both channels, with every checksum verified.
//! Dropping any one incremental is reported as a gap.

mod common;

use engine::{AccountId, Event, Side, SymbolId};
use marketdata::{
    codec, Body, BookBuilder, BuildError, Channel, ChannelGap, ChannelTracker, DepthWindow, FeedConfig,
    Level, LevelBook, MarketData, Message, Progress, Projection, ProjectionConfig,
};
use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestError};

const CHECKSUM_DEPTH: u16 = 3;

fn feed() -> MarketData {
    MarketData::new(FeedConfig {
        epoch: 7,
        projection: ProjectionConfig { symbols: 2, ..ProjectionConfig::default() },
        checksum_depth: Some(CHECKSUM_DEPTH),
    })
}

fn events(commands: &[engine::Command]) -> Vec<Event> {
    let mut engine = common::engine(false);
    common::run(&mut engine, commands).into_iter().flatten().collect()
}

fn compare(
    builder: &BookBuilder,
    symbol: u32,
    projection: &Projection,
    at: u64,
) -> Result<(), TestCaseError> {
    prop_assert!(builder.is_live(), "builder not live at event {}", at);
    let book = projection.book(SymbolId(symbol)).expect("listed");
    for side in [Side::Buy, Side::Sell] {
        for depth in [1, 2, 3, 5, 8, usize::MAX] {
            let want: Vec<Level> = book.levels(side).take(depth).collect();
            let got: Vec<Level> = builder.levels(side).take(depth).collect();
            prop_assert_eq!(got, want, "symbol {} {:?} depth {} at event {}", symbol, side, depth, at);
        }
        if let Some(built) = builder.order_book() {
            let want: Vec<_> = book.orders(side).collect();
            let got: Vec<_> = built.orders(side).collect();
            prop_assert_eq!(got, want, "L3 symbol {} {:?} at event {}", symbol, side, at);
        }
    }
    prop_assert_eq!(builder.halted(), projection.halted(SymbolId(symbol)));
    Ok(())
}

/// The message after a trip through the binary codec.
fn wire(m: &Message) -> Message {
    let mut buf = [0u8; codec::MESSAGE_LEN_MAX];
    let n = codec::encode(m, &mut buf).expect("fits");
    let (decoded, used) = codec::decode(&buf[..n]).expect("decodes");
    assert_eq!(used, n);
    decoded
}

/// (channel, symbol) of every builder under test.
fn subscriptions() -> Vec<(Channel, u32)> {
    Channel::ALL.iter().flat_map(|&c| (0..common::SYMBOLS).map(move |s| (c, s))).collect()
}

fn rebuild(events: &[Event], k: usize, early: usize) -> Result<(), TestCaseError> {
    let mut md = feed();
    let mut builders: Vec<BookBuilder> =
        subscriptions().into_iter().map(|(c, s)| BookBuilder::new(c, SymbolId(s))).collect();
    let mut before_snapshot: Vec<Message> = Vec::new();
    let take_snapshot = |md: &MarketData, before: &mut Vec<Message>, builders: &mut Vec<BookBuilder>| {
        for b in builders.iter_mut() {
            for m in before.iter() {
                let p = b.apply(m).map_err(|e| TestCaseError::fail(format!("{e} before the snapshot")))?;
                prop_assert!(matches!(p, Progress::Ignored | Progress::Buffered));
            }
        }
        for (b, (channel, symbol)) in builders.iter_mut().zip(subscriptions()) {
            let mut snapshot = Vec::new();
            md.snapshot(channel, SymbolId(symbol), 0, &mut snapshot);
            for m in &snapshot {
                b.apply(m).map_err(|e| TestCaseError::fail(format!("{e} in the snapshot")))?;
            }
            prop_assert!(b.is_live());
        }
        before.clear();
        Ok(())
    };
    if k == 0 {
        take_snapshot(&md, &mut before_snapshot, &mut builders)?;
    }
    for (i, event) in events.iter().enumerate() {
        let n = i + 1;
        let mut out = Vec::new();
        md.on_event(event, &mut out).map_err(|e| TestCaseError::fail(e.to_string()))?;
        if n <= k {
            if n + early > k {
                before_snapshot.extend(out);
            }
            if n == k {
                take_snapshot(&md, &mut before_snapshot, &mut builders)?;
            }
            continue;
        }
        // The subscribers read the binary encoding, as they would off the wire.
        let out: Vec<Message> = out.iter().map(wire).collect();
        for b in builders.iter_mut() {
            for m in &out {
                b.apply(m).map_err(|e| TestCaseError::fail(format!("{e} at event {n}: {m:?}")))?;
            }
        }
        for (b, (_, symbol)) in builders.iter().zip(subscriptions()) {
            compare(b, symbol, md.projection(), n as u64)?;
        }
    }
    for (b, (_, symbol)) in builders.iter().zip(subscriptions()) {
        compare(b, symbol, md.projection(), events.len() as u64)?;
    }
    Ok(())
}

fn run_property<F>(
    cases: u32,
    salt: u64,
    strategy: impl Strategy<Value = F>,
    test: impl Fn(F) -> Result<(), TestCaseError>,
) where
    F: std::fmt::Debug,
{
    let (mut runner, seed) = common::runner(cases, salt);
    match runner.run(&strategy, test) {
        Ok(()) => {}
        Err(TestError::Fail(reason, input)) => panic!("seed {seed}: {reason}\nshrunk input: {input:#?}"),
        Err(e) => panic!("seed {seed}: {e}"),
    }
}

#[test]
fn snapshot_at_k_plus_incrementals_equals_projection_at_n() {
    run_property(128, 0x5a17, (common::stream(150), 0u32..=100, 0usize..4), |(commands, k_pct, early)| {
        let events = events(&commands);
        let k = events.len() * k_pct as usize / 100;
        rebuild(&events, k, early)
    });
}

#[test]
fn any_lost_incremental_is_a_gap() {
    run_property(96, 0x9a9, (common::stream(120), any::<prop::sample::Index>()), |(commands, which)| {
        let events = events(&commands);
        let mut md = feed();
        let mut all = Vec::new();
        for event in &events {
            md.on_event(event, &mut all).map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
        // Lose one sequenced message that has a later one on its channel and symbol.
        let later = |i: usize| {
            let h = all[i].header;
            all[i + 1..].iter().any(|m| m.header.channel == h.channel && m.header.symbol == h.symbol)
        };
        let candidates: Vec<usize> = (0..all.len()).filter(|&i| later(i)).collect();
        if candidates.is_empty() {
            return Ok(());
        }
        let lost = candidates[which.index(candidates.len())];
        let h = all[lost].header;
        let mut builder = BookBuilder::new(h.channel, h.symbol.expect("sequenced messages name a symbol"));
        let mut snapshot = Vec::new();
        feed().snapshot(h.channel, h.symbol.unwrap(), 0, &mut snapshot);
        for m in &snapshot {
            builder.apply(m).map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
        let mut gap = None;
        for (i, m) in all.iter().enumerate() {
            if i == lost {
                continue;
            }
            match builder.apply(m) {
                Ok(_) => {}
                Err(BuildError::Gap { expected, got }) => {
                    gap = Some((expected, got));
                    break;
                }
                Err(e) => return Err(TestCaseError::fail(format!("{e} instead of a gap"))),
            }
        }
        prop_assert_eq!(gap, Some((h.symbol_seq, h.symbol_seq + 1)));
        prop_assert!(!builder.is_live());
        Ok(())
    });
}

#[test]
fn a_wrong_book_fails_its_checksum_and_a_new_epoch_drops_the_book() {
    let mut md = feed();
    let mut msgs = Vec::new();
    let events = {
        let mut engine = common::engine(false);
        let cent = engine::PRICE_UNITS_PER_ONE / 100;
        let order = |id: &str, side, ticks: i64, qty| {
            engine::CommandKind::New(engine::NewOrder::limit(
                AccountId(1),
                SymbolId(0),
                engine::ClOrdId::from_str(id).unwrap(),
                side,
                ticks * cent,
                qty,
            ))
        };
        let commands: Vec<engine::Command> = [order("a", Side::Buy, 100, 5), order("b", Side::Sell, 101, 2)]
            .into_iter()
            .enumerate()
            .map(|(i, kind)| engine::Command {
                header: engine::CommandHeader { seq: i as u64 + 1, ts: i as u64 + 1 },
                kind,
            })
            .collect();
        common::run(&mut engine, &commands).into_iter().flatten().collect::<Vec<_>>()
    };
    let mut builder = BookBuilder::new(Channel::Levels, SymbolId(0));
    let mut snapshot = Vec::new();
    md.snapshot(Channel::Levels, SymbolId(0), 0, &mut snapshot);
    for m in &snapshot {
        builder.apply(m).unwrap();
    }
    md.on_event(&events[0], &mut msgs).unwrap();
    // Tamper with the level update: the checksum that follows must catch it.
    for m in &mut msgs {
        if let Body::Level(level) = &mut m.body {
            level.qty += 1;
        }
    }
    let results: Vec<_> = msgs.iter().map(|m| builder.apply(m)).collect();
    assert!(
        results.iter().any(|r| matches!(r, Err(BuildError::ChecksumMismatch { depth: CHECKSUM_DEPTH, .. }))),
        "{results:?}"
    );
    assert!(!builder.is_live());

    let mut builder = BookBuilder::new(Channel::Levels, SymbolId(0));
    for m in &snapshot {
        builder.apply(m).unwrap();
    }
    let mut next = Vec::new();
    md.on_event(&events[1], &mut next).unwrap();
    let mut other_epoch = *next.iter().find(|m| m.header.channel == Channel::Levels).unwrap();
    other_epoch.header.epoch += 1;
    assert_eq!(builder.apply(&other_epoch), Err(BuildError::EpochChanged { was: 7, now: 8 }));
    assert!(!builder.is_live());
}

#[test]
fn a_whole_channel_subscriber_sees_every_lost_message_even_the_last() {
    let mut md = feed();
    let commands: Vec<engine::Command> = {
        let cent = engine::PRICE_UNITS_PER_ONE / 100;
        (1..=6u64)
            .map(|seq| {
                let side = if seq % 2 == 0 { Side::Buy } else { Side::Sell };
                let id = engine::ClOrdId::from_str(&format!("c{seq}")).unwrap();
                let order = engine::NewOrder::limit(
                    AccountId(seq as u32 % 2),
                    SymbolId((seq % 2) as u32),
                    id,
                    side,
                    100 * cent,
                    1,
                );
                engine::Command {
                    header: engine::CommandHeader { seq, ts: seq },
                    kind: engine::CommandKind::New(order),
                }
            })
            .collect()
    };
    let mut all = Vec::new();
    for e in events(&commands) {
        md.on_event(&e, &mut all).unwrap();
    }
    let orders: Vec<Message> = all.into_iter().filter(|m| m.header.channel == Channel::Orders).collect();
    assert!(orders.len() > 4);

    let mut tracker = ChannelTracker::new();
    for m in &orders {
        tracker.check(m).unwrap();
    }
    // The last message is lost: only the heartbeat can tell.
    let mut tracker = ChannelTracker::new();
    for m in &orders[..orders.len() - 1] {
        tracker.check(m).unwrap();
    }
    let mut heartbeat = Vec::new();
    md.heartbeat(Channel::Orders, 99, &mut heartbeat);
    let last = orders.last().unwrap().header.channel_seq;
    assert_eq!(tracker.check(&heartbeat[0]), Err(ChannelGap::Lost { expected: last, next: last }));
    // One in the middle is lost.
    let mut tracker = ChannelTracker::new();
    let results: Vec<_> =
        orders.iter().enumerate().filter(|(i, _)| *i != 2).map(|(_, m)| tracker.check(m)).collect();
    let lost = orders[2].header.channel_seq;
    assert_eq!(results[2], Err(ChannelGap::Lost { expected: lost, next: lost + 1 }));
}

#[test]
fn a_truncated_snapshot_is_refused_and_a_superseded_one_is_dropped_unused() {
    let commands: Vec<engine::Command> = (1..=6u64)
        .map(|seq| {
            let cent = engine::PRICE_UNITS_PER_ONE / 100;
            let id = engine::ClOrdId::from_str(&format!("r{seq}")).unwrap();
            let order = engine::NewOrder::limit(
                AccountId(1),
                SymbolId(0),
                id,
                Side::Buy,
                (90 + seq as i64) * cent,
                2,
            );
            engine::Command {
                header: engine::CommandHeader { seq, ts: seq },
                kind: engine::CommandKind::New(order),
            }
        })
        .collect();
    let mut md = feed();
    for e in events(&commands) {
        md.on_event(&e, &mut Vec::new()).unwrap();
    }
    let mut snapshot = Vec::new();
    md.snapshot(Channel::Orders, SymbolId(0), 0, &mut snapshot);
    assert_eq!(snapshot.len(), 6 + 2);

    let mut b = BookBuilder::new(Channel::Orders, SymbolId(0));
    let mut truncated = snapshot.clone();
    truncated.remove(3);
    let results: Vec<_> = truncated.iter().map(|m| b.apply(m)).collect();
    assert_eq!(results.last(), Some(&Err(BuildError::SnapshotTruncated { announced: 6, received: 5 })));
    assert!(!b.is_live());

    // Half a snapshot, then a whole one: the whole one alone makes the book.
    let mut b = BookBuilder::new(Channel::Orders, SymbolId(0));
    for m in snapshot[..4].iter().chain(&snapshot) {
        b.apply(m).unwrap();
    }
    assert!(b.is_live());
    let want: Vec<_> = md.projection().book(SymbolId(0)).unwrap().orders(Side::Buy).collect();
    assert_eq!(b.order_book().unwrap().orders(Side::Buy).collect::<Vec<_>>(), want);
}

#[test]
fn a_depth_window_copy_equals_the_top_n_after_every_event() {
    run_property(96, 0xd3b7, common::stream(150), |commands| {
        let events = events(&commands);
        let mut md = feed();
        let depths = [1usize, 2, 3, 5];
        let mut windows: Vec<(DepthWindow, LevelBook)> =
            depths.iter().map(|&d| (DepthWindow::new(d), LevelBook::new())).collect();
        let mut changes = Vec::new();
        for event in &events {
            md.on_event(event, &mut Vec::new()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let book = md.projection().book(SymbolId(0)).expect("listed");
            for (window, copy) in &mut windows {
                changes.clear();
                window.update(book, &mut changes);
                changes.iter().for_each(|l| copy.set(*l));
                for side in [Side::Buy, Side::Sell] {
                    let want: Vec<Level> = book.levels(side).take(window.depth()).collect();
                    prop_assert_eq!(copy.levels(side).collect::<Vec<_>>(), want.clone());
                    prop_assert_eq!(window.levels(side), &want[..]);
                }
            }
        }
        Ok(())
    });
}
