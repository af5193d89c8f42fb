//! Cost of one keyed check on the hot path: 10,000 live keys, each message of a random key.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ratelimit::{KeyedLimiter, LimitConfig};

const KEYS: u64 = 10_000;

fn keyed_check(c: &mut Criterion) {
    // A generous rate so the mix is mostly allowed, as on a healthy gateway.
    let config = LimitConfig { rate_per_sec: 1_000_000, burst: 1_000, ..LimitConfig::default() };
    let mut limiter = KeyedLimiter::new(config, KEYS as usize).unwrap();
    // The key stream is built before timing: a xorshift over the keys.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let keys: Vec<u64> = (0..1 << 16)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % KEYS
        })
        .collect();
    for key in 0..KEYS {
        limiter.check(&key, 0);
    }
    let mut group = c.benchmark_group("ratelimit");
    group.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    let mut now = 1_000u64;
    group.bench_function("keyed_check_10k_keys", |b| {
        b.iter(|| {
            i = (i + 1) & (keys.len() - 1);
            now += 50;
            black_box(limiter.check(&keys[i], now))
        })
    });
    let mut single = ratelimit::Limiter::new(config).unwrap();
    group.bench_function("single_check", |b| {
        b.iter(|| {
            now += 50;
            black_box(single.check(black_box(now)))
        })
    });
    group.finish();
}

criterion_group!(benches, keyed_check);
criterion_main!(benches);
