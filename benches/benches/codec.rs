//! Criterion micro-benches of the FIX 4.4 codec on the messages the venue handles most: framing
//! and parsing a NewOrderSingle (what every order costs on the way in) and encoding an
//! ExecutionReport with the fields the gateway writes (what every answer costs on the way out).
//! The bytes are built once, outside the measurement; each iteration handles one message.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fix::codec::{frame, tag, Encoder, Fields, Message};

/// A NewOrderSingle as a client sends it: standard header, 10 body fields.
fn new_order_single() -> Vec<u8> {
    let mut e = Encoder::new();
    e.begin(b"D", "alice", "EXCHANGE", 123_456, 1_796_000_000_123_000_000);
    e.str(tag::CL_ORD_ID, "n1796000000_123456");
    e.str(tag::SYMBOL, "BTC-USD");
    e.char(tag::SIDE, b'1');
    e.u64(tag::ORDER_QTY, 10);
    e.char(tag::ORD_TYPE, b'2');
    e.str(tag::PRICE, "100.50");
    e.char(tag::TIME_IN_FORCE, b'1');
    e.time(tag::TRANSACT_TIME, 1_796_000_000_123_000_000);
    e.finish().to_vec()
}

/// The fields `app::exec_report` writes for an order's acknowledgement.
fn encode_execution_report(e: &mut Encoder, seq: u64, now_ns: u64) -> usize {
    e.begin(b"8", "EXCHANGE", "alice", seq, now_ns);
    e.u64(tag::ORDER_ID, 987_654);
    e.bytes(tag::CL_ORD_ID, b"n1796000000_123456");
    e.u64(tag::EXEC_ID, 1_234_567);
    e.char(tag::EXEC_TYPE, b'0');
    e.char(tag::ORD_STATUS, b'0');
    e.str(tag::SYMBOL, "BTC-USD");
    e.char(tag::SIDE, b'1');
    e.u64(tag::ORDER_QTY, 10);
    e.char(tag::ORD_TYPE, b'2');
    e.bytes(tag::PRICE, b"100.50");
    e.u64(tag::LEAVES_QTY, 10);
    e.u64(tag::CUM_QTY, 0);
    e.bytes(tag::AVG_PX, b"0.00");
    e.time(tag::TRANSACT_TIME, now_ns);
    e.finish().len()
}

fn codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("fix");
    group.throughput(Throughput::Elements(1));

    let order = new_order_single();
    let mut fields = Fields::default();
    group.bench_function("frame+parse NewOrderSingle", |b| {
        b.iter(|| {
            let len = frame(black_box(&order), 4096).unwrap().unwrap();
            let msg = Message::parse(&order[..len], &mut fields).unwrap();
            black_box(msg.get(tag::PRICE));
        })
    });

    let mut e = Encoder::new();
    let mut seq = 1u64;
    group.bench_function("encode ExecutionReport", |b| {
        b.iter(|| {
            seq += 1;
            // A new millisecond every 1,000 reports, as at 1M reports/s.
            black_box(encode_execution_report(&mut e, seq, 1_796_000_000_000_000_000 + seq * 1_000))
        })
    });
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
