//! Messages per second one publisher core sustains from a generated engine event stream: the
//! feed alone (projection + sequencing + checksums into a counting sink), and fanned out to 1,
//! 10 and 100 subscriber queues that are drained every 64 events. Throughput counts feed
//! messages (with checksums); with the fan-out each is delivered to about half the subscribers.
//! `feed_core_no_checksum` counts the same elements, so it reads as the same stream's rate.
//!
//! `cargo bench -p marketdata --bench publisher -- --warm-up-time 1 --measurement-time 3`

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use engine::{
    AccountId, CancelOrder, ClOrdId, Command, CommandHeader, CommandKind, Engine, EngineConfig, Event,
    NewOrder, Side, SymbolId, Tif, PRICE_UNITS_PER_ONE,
};
use marketdata::{
    Channel, FeedConfig, MarketData, Message, Publisher, PublisherConfig, Sink, SlowPolicy, Subscription,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

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

#[derive(Default)]
struct Count(u64);

impl Sink for Count {
    fn message(&mut self, _: &Message) {
        self.0 += 1;
    }
}

fn feed_config() -> FeedConfig {
    FeedConfig { checksum_depth: Some(10), ..FeedConfig::default() }
}

fn bench(c: &mut Criterion) {
    let events = event_stream();
    let mut count = Count::default();
    let mut md = MarketData::new(feed_config());
    for e in &events {
        md.on_event(e, &mut count).expect("engine stream");
    }
    let messages = count.0;
    eprintln!("{} events -> {} messages per pass", events.len(), messages);

    let mut group = c.benchmark_group("marketdata");
    group.sample_size(10);
    group.throughput(Throughput::Elements(messages));
    group.bench_function("feed_core", |b| {
        b.iter_batched(
            || MarketData::new(feed_config()),
            |mut md| {
                let mut count = Count::default();
                for e in &events {
                    md.on_event(e, &mut count).expect("engine stream");
                }
                count.0
            },
            BatchSize::LargeInput,
        )
    });
    // The same without checksums: what the CRC of the top 10 levels costs per book change.
    group.bench_function("feed_core_no_checksum", |b| {
        b.iter_batched(
            || MarketData::new(FeedConfig { checksum_depth: None, ..feed_config() }),
            |mut md| {
                let mut count = Count::default();
                for e in &events {
                    md.on_event(e, &mut count).expect("engine stream");
                }
                count.0
            },
            BatchSize::LargeInput,
        )
    });
    for subscribers in [1usize, 10, 100] {
        group.bench_function(format!("fanout_{subscribers}"), |b| {
            b.iter_batched(
                || {
                    let mut p = Publisher::new(PublisherConfig {
                        feed: feed_config(),
                        queue_len_max: 1 << 14,
                        subscribers_max: subscribers,
                        slow_policy: SlowPolicy::Conflate,
                    });
                    // Half on the orders channel, half on levels, all symbols: every message is
                    // delivered to about half the subscribers.
                    let ids: Vec<_> = (0..subscribers)
                        .map(|i| {
                            let channel = if i % 2 == 0 { Channel::Orders } else { Channel::Levels };
                            p.subscribe(Subscription { channel, symbol: None }, 0).expect("room")
                        })
                        .collect();
                    (p, ids)
                },
                |(mut p, ids)| {
                    let mut count = Count::default();
                    for (i, e) in events.iter().enumerate() {
                        p.on_event(e).expect("engine stream");
                        if i % 64 == 63 {
                            for &id in &ids {
                                p.drain(id, &mut count, usize::MAX).expect("connected");
                            }
                        }
                    }
                    assert_eq!(p.stats().conflations, 0, "queues sized to never conflate here");
                    count.0
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
