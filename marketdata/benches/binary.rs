//! What the binary feed's thread does per subscriber, without the sockets: publish the event
//! stream, drain each subscriber's queue (orders channel, every symbol, as `md-quic` subscribes),
//! keep its symbols' messages and pack them into 1,200-byte datagrams through the codec, for 1,
//! 10 and 100 subscribers drained every 64 events. Throughput counts the feed's messages (both
//! channels, checksums included, as the publisher bench does); each subscriber takes one symbol
//! of three.
//!
//! `cargo bench -p marketdata --bench binary -- --warm-up-time 1 --measurement-time 3`

mod common;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use engine::SymbolId;
use marketdata::datagram::Packer;
use marketdata::{Channel, FeedConfig, Message, Publisher, PublisherConfig, SlowPolicy, Subscription};

/// A datagram's payload on a 1,280-byte path MTU after QUIC's headers.
const DATAGRAM_BYTES: usize = 1_200;

const COMMANDS: u64 = 100_000;

fn bench(c: &mut Criterion) {
    let events = common::event_stream(COMMANDS);
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
