//! Engine throughput with the counters on versus compiled out, alternated round by round in one process
//! so that drift on a shared machine (other builds, frequency changes) hits both alike; prints
//! the minimum and median per command of each and the median ratio.
//!
//! `cargo bench -p monitor --bench onoff` (a few seconds).

use std::hint::black_box;
use std::time::Instant;

use harness::gen::{generate, GenConfig, Mix};
use harness::{EngineVenue, Venue};
use monitor::Registry;

#[path = "common/engine_loop.rs"]
mod engine_loop;
use engine_loop::{run, StageCounters};

/// Rounds of each variant; each round runs the whole stream once on a fresh book.
const ROUNDS: usize = 300;

fn summary(mut ns: Vec<f64>) -> (f64, f64) {
    ns.sort_by(f64::total_cmp);
    (ns[0], ns[ns.len() / 2])
}

fn main() {
    // Criterion-style arguments (`--bench`, filters) are ignored.
    let mut config = GenConfig::new(Mix::exchange_core(), 1, 1_000, 10_000, 42);
    config.hold_book_size = true;
    let workload = generate(&config);
    let venue = EngineVenue::new(&workload);
    let mut registry = Registry::anonymous().unwrap();
    let m = StageCounters::register(&mut registry);
    // Both variants do the same matching work.
    let (plain, counted) =
        (run(&mut venue.build().0, &workload.stream, &()), run(&mut venue.build().0, &workload.stream, &m));
    assert_eq!(
        (plain.events, plain.trades, plain.rejects),
        (counted.events, counted.trades, counted.rejects)
    );
    let commands = workload.stream.len() as f64;
    let (mut off, mut on) = (Vec::with_capacity(ROUNDS), Vec::with_capacity(ROUNDS));
    for round in 0..2 * ROUNDS + 20 {
        let mut engine = venue.build().0;
        // Alternate which goes first in a pair; the first 20 runs warm up and are dropped.
        let counted = (round % 2 == 0) == (round / 2 % 2 == 0);
        let start = Instant::now();
        if counted {
            black_box(run(&mut engine, &workload.stream, &m).events);
        } else {
            black_box(run(&mut engine, &workload.stream, &()).events);
        }
        let per_command = start.elapsed().as_nanos() as f64 / commands;
        if round >= 20 {
            if counted {
                on.push(per_command)
            } else {
                off.push(per_command)
            }
        }
        drop(engine);
    }
    let (off_min, off_med) = summary(off);
    let (on_min, on_med) = summary(on);
    println!(
        "engine, exchange-core mix, {} commands on a 1k book, {ROUNDS} alternated rounds each",
        workload.stream.len()
    );
    println!("counters compiled out: min {off_min:.1} ns/command, median {off_med:.1}");
    println!("counters on:           min {on_min:.1} ns/command, median {on_med:.1}");
    println!(
        "on/off: min {:+.1}%, median {:+.1}%",
        (on_min / off_min - 1.0) * 100.0,
        (on_med / off_med - 1.0) * 100.0
    );
}
