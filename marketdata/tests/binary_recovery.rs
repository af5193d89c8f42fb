//! The binary feed's recovery, end to end without sockets: random event streams, a subscriber
//! that joins with a snapshot at event k, the live messages k+1..n packed into datagrams
//! (through the codec) of which a seeded share is lost, reordered within a window, or
//! duplicated; the subscriber's [`Resequencer`] asks for retransmissions and snapshots, which a
//! model server answers from every message it has published. At n (after a heartbeat reveals
//! any lost tail) the subscriber's L3 and L2 equal the projection's, for every symbol.

mod common;

use engine::{Event, Side};
use marketdata::datagram::{unpack, Packer};
use marketdata::recovery::{Request, Resequencer};
use marketdata::{BookBuilder, Channel, FeedConfig, MarketData, Message, ProjectionConfig, SymbolId};
use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestError};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const DATAGRAM_BYTES: usize = 200;

struct Subscriber {
    reseq: Resequencer,
    books: Vec<BookBuilder>,
}

impl Subscriber {
    fn on(&mut self, m: &Message) -> Result<(), TestCaseError> {
        let books = &mut self.books;
        let mut failed = None;
        self.reseq.on_message(m, &mut |m: &Message| {
            if let Some(s) = m.header.symbol {
                if let Err(e) = books[s.index()].apply(m) {
                    failed = Some(format!("{e} at {m:?}"));
                }
            }
        });
        failed.map_or(Ok(()), |e| Err(TestCaseError::fail(e)))
    }
}

/// The model server: answers every request from what it published.
fn serve(sub: &mut Subscriber, md: &MarketData, published: &[Message]) -> Result<(), TestCaseError> {
    for _ in 0..1000 {
        let Some(request) = sub.reseq.poll_request() else { return Ok(()) };
        match request {
            Request::Retransmit { from, count } => {
                let end = from + u64::from(count);
                let last = md.channel_seq(Channel::Orders);
                prop_assert!(from >= 1 && end - 1 <= last, "asked {from}+{count} past {last}");
                for m in published.iter().filter(|m| (from..end).contains(&m.header.channel_seq)) {
                    sub.on(m)?;
                }
                sub.reseq.on_complete(from, count);
            }
            Request::Snapshot(symbol) => {
                let mut parts = Vec::new();
                md.snapshot(Channel::Orders, symbol, 0, &mut parts);
                for m in &parts {
                    sub.on(m)?;
                }
            }
            Request::Subscribe(_) => unreachable!("the resequencer never subscribes"),
        }
    }
    Err(TestCaseError::fail("requests never stopped"))
}

/// Returns (holes seen, holes healed by retransmission).
fn recover(events: &[Event], k: usize, loss_pct: u32, seed: u64) -> Result<(u64, u64), TestCaseError> {
    let symbols = common::SYMBOLS;
    let mut md = MarketData::new(FeedConfig {
        epoch: 3,
        projection: ProjectionConfig { symbols: symbols as usize, ..ProjectionConfig::default() },
        checksum_depth: Some(3),
    });
    let ids: Vec<SymbolId> = (0..symbols).map(SymbolId).collect();
    let mut sub = Subscriber {
        reseq: Resequencer::new(&ids),
        books: ids.iter().map(|&s| BookBuilder::new(Channel::Orders, s)).collect(),
    };
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut published: Vec<Message> = Vec::new();
    let mut in_flight: Vec<Vec<u8>> = Vec::new();
    let mut packer = Packer::new(DATAGRAM_BYTES);
    let snapshot = |md: &MarketData, sub: &mut Subscriber| -> Result<(), TestCaseError> {
        for &s in &ids {
            let mut parts = Vec::new();
            md.snapshot(Channel::Orders, s, 0, &mut parts);
            for m in &parts {
                sub.on(m)?;
            }
        }
        Ok(())
    };
    if k == 0 {
        snapshot(&md, &mut sub)?;
    }
    for (i, event) in events.iter().enumerate() {
        let mut out = Vec::new();
        md.on_event(event, &mut out).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let out: Vec<Message> = out.into_iter().filter(|m| m.header.channel == Channel::Orders).collect();
        published.extend(&out);
        if i + 1 == k {
            snapshot(&md, &mut sub)?;
        }
        if i < k {
            continue;
        }
        let mut datagrams = Vec::new();
        for m in &out {
            packer.push(m, &mut |d| datagrams.push(d));
        }
        packer.flush(&mut |d| datagrams.push(d));
        for d in datagrams {
            if rng.gen_range(0..100) < loss_pct {
                continue; // lost
            }
            if rng.gen_range(0..10) == 0 {
                in_flight.push(d.clone()); // duplicated
            }
            in_flight.push(d);
        }
        // Up to three datagrams wait a little: they arrive out of order.
        while in_flight.len() > rng.gen_range(0..4) {
            let d = in_flight.remove(rng.gen_range(0..in_flight.len()));
            for m in unpack(&d) {
                sub.on(&m.map_err(|e| TestCaseError::fail(e.to_string()))?)?;
            }
        }
        serve(&mut sub, &md, &published)?;
    }
    for d in in_flight.drain(..) {
        for m in unpack(&d) {
            sub.on(&m.map_err(|e| TestCaseError::fail(e.to_string()))?)?;
        }
    }
    // The heartbeat reveals a lost tail.
    let mut beat = Vec::new();
    md.heartbeat(Channel::Orders, 0, &mut beat);
    sub.on(&beat[0])?;
    serve(&mut sub, &md, &published)?;
    for &s in &ids {
        let b = &sub.books[s.index()];
        prop_assert!(b.is_live(), "symbol {s} not live");
        prop_assert_eq!(b.symbol_seq(), Some(md.symbol_seq(Channel::Orders, s)));
        let book = md.projection().book(s).unwrap();
        for side in [Side::Buy, Side::Sell] {
            let want: Vec<_> = book.orders(side).collect();
            let got: Vec<_> = b.order_book().unwrap().orders(side).collect();
            prop_assert_eq!(got, want, "L3 symbol {} {:?}", s, side);
            let want: Vec<_> = book.levels(side).collect();
            let got: Vec<_> = b.levels(side).collect();
            prop_assert_eq!(got, want, "L2 symbol {} {:?}", s, side);
        }
    }
    Ok((sub.reseq.gaps, sub.reseq.healed))
}

#[test]
fn lost_reordered_and_duplicated_datagrams_are_healed_to_the_projection() {
    let (mut runner, seed) = common::runner(96, 0xb1d);
    let tally = std::cell::Cell::new((0u64, 0u64));
    let strategy = (common::stream(150), 0u32..=100, 0u32..40, any::<u64>());
    let result = runner.run(&strategy, |(commands, k_pct, loss_pct, rng_seed)| {
        let mut engine = common::engine(false);
        let events: Vec<Event> = common::run(&mut engine, &commands).into_iter().flatten().collect();
        let k = events.len() * k_pct as usize / 100;
        let (gaps, healed) = recover(&events, k, loss_pct, rng_seed)?;
        let (g, h) = tally.get();
        tally.set((g + gaps, h + healed));
        Ok(())
    });
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, input)) => panic!("seed {seed}: {reason}\nshrunk input: {input:#?}"),
        Err(e) => panic!("seed {seed}: {e}"),
    }
    let (gaps, healed) = tally.get();
    assert!(gaps > 0 && healed > 0, "the loss never made a hole to heal: {gaps} gaps, {healed} healed");
}
