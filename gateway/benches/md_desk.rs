//! What FIX market data costs the gateway thread per engine event: the desk applying a
//! generated event stream with no subscriber (the price every venue pays: the projection), and
//! with 1 and 10 full-depth sessions subscribed to every symbol (each 35=X framed into a reused
//! encoder, as a session's encoder does), sending after every event (`batch_1`: an idle
//! venue's turn holds one event) and after every 64 (a busy one's turn holds many: one 35=X per
//! batch, symbol and subscription, the bodies encoded once for all sessions). Throughput
//! counts engine events.
//!
//! `cargo bench -p gateway --bench md_desk -- --warm-up-time 1 --measurement-time 3`

#[path = "../../marketdata/benches/common/mod.rs"]
mod common;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use engine::SymbolId;
use fix::codec::Encoder;
use gateway::md::{EntryTypes, MarketDataDesk, MdConfig, MdRequest, MdSink, SubscriptionType};
use gateway::router::SessionId;
use gateway::venue::Symbols;

const COMMANDS: u64 = 50_000;

/// Encodes every message as a session would, into one reused encoder.
struct Encode {
    encoder: Encoder,
    bytes: u64,
}

impl MdSink for Encode {
    fn backlog(&mut self, _: SessionId) -> Option<usize> {
        Some(0)
    }

    fn send(&mut self, _: SessionId, msg_type: &[u8], fields: &mut dyn FnMut(&mut Encoder)) {
        self.encoder.begin(msg_type, "EXCHANGE", "client", 1, 0);
        fields(&mut self.encoder);
        self.bytes += self.encoder.finish().len() as u64;
    }
}

fn desk(sessions: u64) -> MarketDataDesk {
    let symbols = Symbols::new(engine::default_symbols());
    let mut desk = MarketDataDesk::new(symbols, MdConfig::default());
    let mut sink = Encode { encoder: Encoder::new(), bytes: 0 };
    for session in 1..=sessions {
        let request = MdRequest {
            req_id: format!("r{session}"),
            kind: SubscriptionType::Subscribe,
            depth: None,
            full_refresh_updates: false,
            types: EntryTypes { bid: true, offer: true, trade: true },
            symbols: vec![SymbolId(0), SymbolId(1), SymbolId(2)],
        };
        desk.request(session, request, &mut sink);
    }
    desk
}

fn bench(c: &mut Criterion) {
    let events = common::event_stream(COMMANDS);
    let mut group = c.benchmark_group("md_desk");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.sample_size(10);
    for (sessions, batch) in [(0u64, 1usize), (1, 1), (10, 1), (1, 64), (10, 64)] {
        group.bench_function(format!("events_{sessions}_sessions_batch_{batch}"), |b| {
            b.iter_batched(
                || (desk(sessions), Encode { encoder: Encoder::new(), bytes: 0 }),
                |(mut desk, mut sink)| {
                    for chunk in events.chunks(batch) {
                        for e in chunk {
                            desk.apply(e, &mut sink).expect("engine stream");
                        }
                        desk.flush(&mut sink);
                    }
                    sink.bytes
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
