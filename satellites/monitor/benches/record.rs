//! What recording costs: one counter increment, one histogram record, and the real matching
//! engine on exchange-core's mix with a stage's worth of counters on versus off, in one run.
//!
//! `cargo bench -p monitor --bench record -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use harness::gen::{generate, GenConfig, Mix};
use harness::{EngineVenue, Venue};
use monitor::metrics::{ENGINE_CYCLE, ORDERS_IN};
use monitor::Registry;

#[path = "common/engine_loop.rs"]
mod engine_loop;
use engine_loop::{run, StageCounters};

/// Records per iteration of the micro-benches: one record costs about a nanosecond, too close
/// to criterion's own per-iteration cost to time alone.
const BATCH: u64 = 1_000;

fn micro(c: &mut Criterion) {
    let mut registry = Registry::anonymous().unwrap();
    let counter = registry.counter(&ORDERS_IN, "bench", &[]).unwrap();
    let histogram = registry.histogram(&ENGINE_CYCLE, "bench", &[]).unwrap();
    // Spread over many buckets, as real latencies are: 0.1 µs .. 5 ms.
    let values: Vec<u64> = (0..BATCH).map(|i| 100 + (i * i * 4_999) % 5_000_000).collect();
    // What a shared counter would cost instead: a locked read-modify-write.
    let shared = AtomicU64::new(0);

    let mut g = c.benchmark_group("record");
    g.throughput(Throughput::Elements(BATCH));
    g.bench_function("counter_inc", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                counter.inc();
            }
        })
    });
    g.bench_function("atomic_fetch_add_for_comparison", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                shared.fetch_add(1, Ordering::Relaxed);
            }
        })
    });
    g.bench_function("histogram_record_ns", |b| {
        b.iter(|| {
            for &ns in &values {
                histogram.record_ns(black_box(ns));
            }
        })
    });
    g.finish();
    black_box((counter.get(), histogram.count(), shared.load(Ordering::Relaxed)));
}

fn engine_loop(c: &mut Criterion) {
    let mut config = GenConfig::new(Mix::exchange_core(), 1, 1_000, 10_000, 42);
    config.hold_book_size = true;
    let workload = generate(&config);
    let venue = EngineVenue::new(&workload);

    let mut registry = Registry::anonymous().unwrap();
    let counters = StageCounters::register(&mut registry);
    // Both loops must do the same matching work.
    let (plain, counted) = (
        run(&mut venue.build().0, &workload.stream, &()),
        run(&mut venue.build().0, &workload.stream, &counters),
    );
    assert_eq!(
        (plain.events, plain.trades, plain.rejects),
        (counted.events, counted.trades, counted.rejects)
    );

    let mut g = c.benchmark_group("engine_exchange_core_1k_book");
    g.throughput(Throughput::Elements(workload.stream.len() as u64));
    g.bench_function("counters_compiled_out", |b| {
        b.iter_batched(
            || venue.build().0,
            |mut engine| {
                black_box(run(&mut engine, &workload.stream, &()).events);
                engine
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("counters_on", |b| {
        b.iter_batched(
            || venue.build().0,
            |mut engine| {
                black_box(run(&mut engine, &workload.stream, &counters).events);
                engine
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// What one scrape costs the serving thread: snapshot and render of a venue-sized registry
/// (every catalogued counter with 4 label values, every gauge, 8 stage histograms per histogram
/// family). Runs off the stages' threads; here to size the scraper's own cost.
fn scrape(c: &mut Criterion) {
    use monitor::metrics::{COUNTERS, GAUGES, HISTOGRAMS};
    let mut registry = Registry::anonymous().unwrap();
    let mut handles = (Vec::new(), Vec::new(), Vec::new());
    for def in COUNTERS {
        for label in ["a", "b", "c", "d"] {
            handles.0.push(registry.counter(def, "gateway", &[("kind", label)]).unwrap());
        }
    }
    for def in GAUGES {
        handles.1.push(registry.gauge(def, "engine", &[]).unwrap());
    }
    for def in HISTOGRAMS {
        for stage in ["decode", "session", "risk", "ratelimit", "match", "append", "sync", "report"] {
            let h = registry.histogram(def, stage, &[("stage", stage)]).unwrap();
            for i in 0..1_000u64 {
                h.record_ns(1_000 + i * 997 % 200_000);
            }
            handles.2.push(h);
        }
    }
    let reader = registry.reader();
    let mut text = String::new();
    monitor::prometheus::render(&reader.snapshot().unwrap(), &mut text);
    let mut g = c.benchmark_group("scrape");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("snapshot_and_render", |b| {
        b.iter(|| {
            let mut out = String::with_capacity(text.len());
            monitor::prometheus::render(&reader.snapshot().unwrap(), &mut out);
            black_box(out)
        })
    });
    g.finish();
    black_box(handles);
}

criterion_group!(benches, micro, engine_loop, scrape);
criterion_main!(benches);
