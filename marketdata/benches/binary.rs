//! What the binary feed's thread does per subscriber, without the sockets: publish the event
//! stream, drain each subscriber's queue (orders channel, every symbol, as `md-quic` subscribes),
//! keep its symbols' messages and pack them into 1,200-byte datagrams through the codec, for 1,
//! 10 and 100 subscribers drained every 64 events. Throughput counts the feed's messages (both
//! channels, checksums included, as the publisher bench does); each subscriber takes one symbol
//! of three.
//!
//! `cargo bench -p marketdata --bench binary -- --warm-up-time 1 --measurement-time 3`

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use engine::{
    AccountId, CancelOrder, ClOrdId, Command, CommandHeader, CommandKind, Engine, EngineConfig, Event,
    NewOrder, Side, SymbolId, Tif, PRICE_UNITS_PER_ONE,
};
use marketdata::datagram::Packer;
use marketdata::{Channel, FeedConfig, Message, Publisher, PublisherConfig, SlowPolicy, Subscription};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// A datagram's payload on a 1,280-byte path MTU after QUIC's headers.
const DATAGRAM_BYTES: usize = 1_200;

const COMMANDS: u64 = 100_000;
const CENT: i64 = PRICE_UNITS_PER_ONE / 100;

/// Orders around 100.00 on three symbols: mostly passive limits, cancels, some marketable IOCs
/// and replaces, so the stream has adds, executes, deletes and replaces in a venue-like mix.
fn event_stream() -> Vec<Event> {
    let mut rng = SmallRng::seed_from_u64(17);
    let mut engine = Engine::new(EngineConfig::default());
    let mut events = Vec::new();
    let mut sent: Vec<(AccountId, SymbolId, ClOrdId)> = Vec::new();
    for seq in 1..=COMMANDS {
        let account = AccountId(rng.gen_range(0..16));
        let symbol = SymbolId(rng.gen_range(0..3));
        let side = if rng.gen_bool(0.5) { Side::Buy } else { Side::Sell };
        let roll = rng.gen_range(0..100);
        let kind = if roll < 60 || sent.is_empty() {
            let off = rng.gen_range(1..20);
            let ticks = if side == Side::Buy { 10_000 - off } else { 10_000 + off };
            let id = ClOrdId::from_str(&format!("c{seq}")).expect("short");
            sent.push((account, symbol, id));
            CommandKind::New(NewOrder::limit(account, symbol, id, side, ticks * CENT, rng.gen_range(1..10)))
        } else if roll < 88 {
            let from = sent.len().saturating_sub(2_000);
            let (account, symbol, id) = sent[rng.gen_range(from..sent.len())];
            CommandKind::Cancel(CancelOrder { account, symbol, id, request_id: None })
        } else {
            let ticks = if side == Side::Buy { 10_010 } else { 9_990 };
            let id = ClOrdId::from_str(&format!("t{seq}")).expect("short");
            let mut order = NewOrder::limit(account, symbol, id, side, ticks * CENT, rng.gen_range(1..15));
            order.tif = Tif::Ioc;
            CommandKind::New(order)
        };
        engine.process(&Command { header: CommandHeader { seq, ts: seq * 1_000 }, kind }, &mut events);
    }
    events
}

fn bench(c: &mut Criterion) {
    let events = event_stream();
    let feed = FeedConfig { checksum_depth: Some(10), ..FeedConfig::default() };
    let mut probe = Publisher::new(PublisherConfig { feed, ..PublisherConfig::default() });
    for e in &events {
        probe.on_event(e).expect("engine stream");
    }
    let messages = probe.stats().messages;
    let mut group = c.benchmark_group("binary");
    group.sample_size(10);
    group.throughput(Throughput::Elements(messages));
    for subscribers in [1usize, 10, 100] {
        group.bench_function(format!("fanout_datagrams_{subscribers}"), |b| {
            b.iter_batched(
                || {
                    let mut p = Publisher::new(PublisherConfig {
                        feed,
                        queue_len_max: 1 << 14,
                        subscribers_max: subscribers,
                        slow_policy: SlowPolicy::Conflate,
                    });
                    let subs: Vec<_> = (0..subscribers)
                        .map(|i| {
                            let sub = Subscription { channel: Channel::Orders, symbol: None };
                            (p.subscribe(sub, 0).expect("room"), (i % 3) as u32, Packer::new(DATAGRAM_BYTES))
                        })
                        .collect();
                    (p, subs, Vec::<Message>::with_capacity(1 << 14))
                },
                |(mut p, mut subs, mut drained)| {
                    let (mut datagrams, mut bytes) = (0u64, 0u64);
                    let mut full = |d: Vec<u8>| {
                        datagrams += 1;
                        bytes += d.len() as u64;
                    };
                    for (i, e) in events.iter().enumerate() {
                        p.on_event(e).expect("engine stream");
                        if i % 64 == 63 {
                            for (id, symbol, packer) in subs.iter_mut() {
                                drained.clear();
                                p.drain(*id, &mut drained, usize::MAX).expect("connected");
                                for m in drained
                                    .iter()
                                    .filter(|m| m.header.symbol.is_none_or(|s| s == SymbolId(*symbol)))
                                {
                                    packer.push(m, &mut full);
                                }
                                packer.flush(&mut full);
                            }
                        }
                    }
                    assert_eq!(p.stats().conflations, 0, "queues sized to never conflate here");
                    (datagrams, bytes)
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
