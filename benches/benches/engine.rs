//! Criterion micro-benches of single engine operations on a ~1k-order book, plus the
//! exchange-core mixed stream.
//!
//! Each iteration replays a batch of pre-generated commands of one kind against a freshly built
//! book: building the book (setup) happens in `iter_batched`'s setup closure and the used-up
//! engine is returned so it is dropped outside the measurement. A batch rather than a single
//! command per iteration because one command takes tens of nanoseconds, the same order as the
//! clock reads around it; criterion reports the batch time and, via `Throughput::Elements`, the
//! per-command rate.
//!
//! Every workload is run once and checked against the generator's model before it is measured,
//! so a bench never times a stream of rejects.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use harness::gen::{generate, GenConfig, Mix, Sweep, Workload};
use harness::{EngineVenue, RunCounts, Venue};

/// Resting orders in the book each operation runs against (exchange-core's headline size).
const BOOK_ORDERS: usize = 1_000;

/// Commands per iteration for the single-operation benches.
const BATCH: usize = 1_000;

/// A mix made of one kind of command.
fn only(name: &'static str, gtc: u32, ioc: u32, cancel: u32, sweep: Sweep) -> Mix {
    Mix {
        name,
        gtc_permille: gtc,
        ioc_permille: ioc,
        cancel_permille: cancel,
        gtc_marketable_permille: 0,
        ioc_sweep: sweep,
    }
}

/// A workload of `commands` commands of `mix` after a setup of `resting` orders, checked.
fn workload(mix: Mix, resting: usize, commands: usize, hold_book_size: bool) -> Workload {
    let mut config = GenConfig::new(mix, 1, resting, commands, 42);
    config.hold_book_size = hold_book_size;
    let w = generate(&config);
    let venue = EngineVenue::new(&w);
    let (mut engine, setup) = venue.build();
    let run = venue.run(&mut engine);
    if let Err(problems) = RunCounts::check(&w, setup, run, None) {
        panic!("{}: engine disagrees with the generator's model: {problems}", mix.name);
    }
    w
}

fn bench_stream(c: &mut Criterion, group: &str, name: &str, w: &Workload) {
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(w.stream.len() as u64));
    let venue = EngineVenue::new(w);
    g.bench_function(name, |b| {
        b.iter_batched(
            || venue.build().0,
            |mut engine| {
                black_box(venue.run(&mut engine));
                engine
            },
            // One fresh engine at a time: each holds pre-sized pools, so a batch of them would
            // be memory for nothing.
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn single_operations(c: &mut Criterion) {
    let makers = Sweep::Makers { lo: 1, hi: 1 };

    // Passive GTC orders at uniform prices on their own side: the book grows from 1k to 2k.
    let add = workload(only("add", 1_000, 0, 0, makers), BOOK_ORDERS, BATCH, false);
    bench_stream(c, "add", "passive_gtc_1k_book", &add);

    // Cancels of random live orders: the book shrinks from 2k to 1k.
    let cancel = workload(only("cancel", 0, 0, 1_000, makers), BOOK_ORDERS + BATCH, BATCH, false);
    bench_stream(c, "cancel", "random_live_1k_book", &cancel);

    // Moves (cancel/replace to a new price, same quantity, new client id), never crossing.
    let replace = workload(only("replace", 0, 0, 0, makers), BOOK_ORDERS, BATCH, false);
    bench_stream(c, "replace", "move_1k_book", &replace);

    // IOC orders that each take every order on three price levels (~8 orders a level). Fewer
    // per batch and a deeper book, so the last sweep of a batch still finds full levels.
    let sweep = only("sweep", 0, 1_000, 0, Sweep::Levels { lo: 3, hi: 3 });
    let sweep = workload(sweep, 10 * BOOK_ORDERS, 50, false);
    bench_stream(c, "sweep", "ioc_3_levels_10k_book", &sweep);
}

fn mixed(c: &mut Criterion) {
    let w = workload(Mix::exchange_core(), BOOK_ORDERS, 10_000, true);
    bench_stream(c, "mixed", "exchange_core_1k_book", &w);
}

criterion_group!(benches, single_operations, mixed);
criterion_main!(benches);
