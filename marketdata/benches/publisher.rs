//! Messages per second one publisher core sustains from a generated engine event stream: the
//! feed alone (projection + sequencing + checksums into a counting sink), and fanned out to 1,
//! 10 and 100 subscriber queues that are drained every 64 events. Throughput counts feed
//! messages (with checksums); with the fan-out each is delivered to about half the subscribers.
//! `feed_core_no_checksum` counts the same elements, so it reads as the same stream's rate.
//!
//! `cargo bench -p marketdata --bench publisher -- --warm-up-time 1 --measurement-time 3`

mod common;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use marketdata::{
    Channel, FeedConfig, MarketData, Message, Publisher, PublisherConfig, Sink, SlowPolicy, Subscription,
};

const COMMANDS: u64 = 100_000;

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
    let events = common::event_stream(COMMANDS);
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
