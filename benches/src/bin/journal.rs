//! Journal benchmarks: raw append rate, engine throughput with journaling on vs off (same
//! stream, same run), replay speed, and restart time of a large journal with snapshots.
//!
//! Everything is written under `--dir` (default: a directory in the system temp dir), which is
//! removed at the end. Figures go to standard output as a table and one JSON line each.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Parser;
use engine::codec::COMMAND_FIXED_LEN_MAX;
use engine::Processor;
use engine::{Command, CountingSink, Engine, EngineConfig};
use harness::gen::{generate, GenConfig, Mix};
use journal::{
    CommandBatches, CommandFeed, DurableConfig, DurableEngine, JournalConfig, JournalWriter, RecordKind,
    COMMAND_BATCH_DEFAULT, COMMAND_FEED_BATCH,
};
use runtime::RunnerConfig;

#[derive(Parser)]
#[command(about = "Journal append, journaling overhead, replay speed and restart time")]
struct Args {
    /// Commands in the measured stream (the restart test uses `--restart-commands`).
    #[arg(long, default_value_t = 2_000_000)]
    commands: usize,
    /// Commands in the journal whose restart time is measured.
    #[arg(long, default_value_t = 10_000_000)]
    restart_commands: usize,
    /// Snapshot interval for the restart test.
    #[arg(long, default_value_t = 1_000_000)]
    snapshot_every: u64,
    /// Timed runs of the on/off comparison and of each replay (medians shown).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Where to write journals.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Short run (200k commands, 1M-command restart test).
    #[arg(long)]
    quick: bool,
    /// Commands per published batch in the journal-on runs (the runner's `batch_max` default:
    /// what a busy venue's engine thread takes from its ring at once).
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Feed the journal-on runs each batch through `DurableEngine::process_batch_staged` (the
    /// engine's look-ahead, as the runner does) instead of one `process_staged` per command.
    #[arg(long)]
    through_batch: bool,
    /// Measure only the engine alone and this journal-on mode (`inline`, `single`, `thread`,
    /// `derived` or `before-ring`), nothing else: for profiling one mode (`perf record`).
    #[arg(long, value_parser = ["inline", "single", "thread", "derived", "before-ring"])]
    only: Option<String>,
    /// Commands per batch in the replay figures (default: `COMMAND_BATCH_DEFAULT` decoded on
    /// the matching thread, `COMMAND_FEED_BATCH` handed over by the read-ahead thread).
    #[arg(long)]
    replay_batch: Option<usize>,
}

/// Where the journal-on runs journal events.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Events {
    /// Staged on the matching thread.
    Inline,
    /// Handed to the event-journal thread.
    Thread,
    /// Derived again from the command journal by a follower engine.
    Derived,
}

/// How a replay is fed.
#[derive(Clone, Copy)]
enum ReplayHow {
    /// Read, CRC and decode on the matching thread.
    OneThread,
    /// Read ahead by a `CommandFeed` thread; `batched`: each batch through `process_batch`.
    ReadAhead { batched: bool },
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// CPU seconds used so far by `clock` (`CLOCK_THREAD_CPUTIME_ID`: this thread;
/// `CLOCK_PROCESS_CPUTIME_ID`: every thread of the process). On a machine shared with other
/// work, wall-clock rates fall with every time slice the loop loses; CPU time does not, so the
/// CPU figures are the ones to compare when the machine is loaded.
fn cpu_s(clock: libc::clockid_t) -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; both clock ids exist on every Linux.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime failed");
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

fn fresh(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
}

fn report(name: &str, value: f64, unit: &str, note: &str) {
    if !value.is_finite() {
        // A figure of a mode `--only` left out.
        return;
    }
    println!("{name:<44} {value:>14.3} {unit:<10} {note}");
    println!(
        "{{\"bench\":\"journal\",\"figure\":\"{name}\",\"value\":{value},\"unit\":\"{unit}\",\"note\":\"{note}\"}}"
    );
}

fn main() {
    let mut args = Args::parse();
    if args.quick {
        args.commands = 200_000;
        args.restart_commands = 1_000_000;
        args.snapshot_every = 100_000;
        args.runs = 3;
    }
    let root = args
        .dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("journal-bench-{}", std::process::id())));
    fresh(&root);

    let workload = generate(&GenConfig::new(Mix::exchange_core(), 1, 1_000, args.commands, 1));
    let engine_config = EngineConfig {
        symbols: workload.symbols.clone(),
        orders_max: workload.orders_max(),
        levels_per_side_max: workload.levels_per_side_max(),
    };
    let all: Vec<Command> = workload.setup.iter().chain(workload.stream.iter()).copied().collect();
    println!("{:<44} {:>14} {:<10} note", "figure", "value", "unit");

    // 1. Raw append: the stream's commands as records, page-cache policy.
    if args.only.is_none() {
        append(&root, &all, args.batch);
    }

    // 2. Engine alone vs engine + both journals, same stream, alternating runs.
    let (mut off, mut on) = (Vec::new(), Vec::new());
    let (mut off_cpu, mut on_cpu, mut on_all_cpu) = (Vec::new(), Vec::new(), Vec::new());
    let (mut thread_on, mut thread_cpu, mut thread_all_cpu) = (Vec::new(), Vec::new(), Vec::new());
    let mut single_cpu = Vec::new();
    let (mut derived, mut derived_cpu, mut derived_all_cpu) = (Vec::new(), Vec::new(), Vec::new());
    let batch = args.batch.max(1);
    let n = workload.stream.len() as f64;
    for run in 0..=args.runs {
        let mut engine = Engine::new(engine_config.clone());
        let mut sink = CountingSink::default();
        for c in &workload.setup {
            engine.process(c, &mut sink);
        }
        let started = Instant::now();
        let cpu0 = cpu_s(libc::CLOCK_THREAD_CPUTIME_ID);
        for c in &workload.stream {
            engine.process(c, &mut sink);
        }
        let off_cpu_rate = n / (cpu_s(libc::CLOCK_THREAD_CPUTIME_ID) - cpu0);
        let off_rate = workload.stream.len() as f64 / started.elapsed().as_secs_f64();

        // Journal on, events on the matching thread (the default), then on their own thread;
        // `batch` commands are staged and then published at once, as the runner does.
        let measure_on = |mode: Events, batch: usize| {
            let name = match (mode, batch) {
                (Events::Thread, _) => "durable-event-thread",
                (Events::Derived, _) => "durable-derived",
                (Events::Inline, 1) => "durable-single",
                (Events::Inline, _) => "durable",
            };
            let dir = root.join(name);
            fresh(&dir);
            let config = DurableConfig {
                snapshot_every_commands: 0,
                event_thread: mode == Events::Thread,
                derive_events: mode == Events::Derived,
                ..DurableConfig::new(&dir)
            };
            let (mut durable, _) = DurableEngine::open(engine_config.clone(), config).unwrap();
            let mut sink = CountingSink::default();
            for c in &workload.setup {
                durable.process(c, &mut sink).unwrap();
            }
            // The helpers making each journal's next segment file (tens of MiB of page zeroing)
            // start at open; a venue opens once, so they are kept out of the timed loop.
            durable.wait_background().unwrap();
            let started = Instant::now();
            let (cpu0, all0) = (cpu_s(libc::CLOCK_THREAD_CPUTIME_ID), cpu_s(libc::CLOCK_PROCESS_CPUTIME_ID));
            for chunk in workload.stream.chunks(batch) {
                if args.through_batch {
                    durable.process_batch_staged(chunk, &mut sink).unwrap();
                } else {
                    for c in chunk {
                        durable.process_staged(c, &mut sink).unwrap();
                    }
                }
                durable.publish_batch();
            }
            let cpu_rate = n / (cpu_s(libc::CLOCK_THREAD_CPUTIME_ID) - cpu0);
            // With an event thread the run ends when it has journaled every event.
            durable.flush_events().unwrap();
            let all_cpu_rate = n / (cpu_s(libc::CLOCK_PROCESS_CPUTIME_ID) - all0);
            let rate = n / started.elapsed().as_secs_f64();
            (rate, cpu_rate, all_cpu_rate)
        };
        let want = |mode: &str| args.only.as_deref().is_none_or(|only| only == mode);
        let skipped = (f64::NAN, f64::NAN, f64::NAN);
        let (on_rate, on_cpu_rate, on_all_cpu_rate) =
            if want("inline") { measure_on(Events::Inline, batch) } else { skipped };
        let (thread_rate, thread_cpu_rate, thread_all_cpu_rate) =
            if want("thread") { measure_on(Events::Thread, batch) } else { skipped };
        let (_, single_cpu_rate, _) = if want("single") { measure_on(Events::Inline, 1) } else { skipped };
        let (derived_rate, derived_cpu_rate, derived_all_cpu_rate) =
            if want("derived") { measure_on(Events::Derived, batch) } else { skipped };
        if run > 0 {
            off.push(off_rate);
            on.push(on_rate);
            off_cpu.push(off_cpu_rate);
            on_cpu.push(on_cpu_rate);
            on_all_cpu.push(on_all_cpu_rate);
            thread_on.push(thread_rate);
            thread_cpu.push(thread_cpu_rate);
            thread_all_cpu.push(thread_all_cpu_rate);
            single_cpu.push(single_cpu_rate);
            derived.push(derived_rate);
            derived_cpu.push(derived_cpu_rate);
            derived_all_cpu.push(derived_all_cpu_rate);
        }
    }
    let (off, on) = (median(off), median(on));
    report("engine, journal off", off / 1e6, "Mcmd/s", "exchange-core mix, 1k resting");
    report("engine, journal on", on / 1e6, "Mcmd/s", "commands + events journaled, page cache");
    report("journaling throughput loss", (1.0 - on / off) * 100.0, "%", "target <= 10%");
    let (off_cpu, on_cpu, on_all_cpu) = (median(off_cpu), median(on_cpu), median(on_all_cpu));
    report("engine, journal off, per CPU second", off_cpu / 1e6, "Mcmd/cpu-s", "matching thread CPU time");
    report("engine, journal on, per CPU second", on_cpu / 1e6, "Mcmd/cpu-s", "matching thread CPU time");
    report("journaling loss, matching thread CPU", (1.0 - on_cpu / off_cpu) * 100.0, "%", "target <= 10%");
    report(
        "journaling loss, matching thread CPU, batch of one",
        (1.0 - median(single_cpu) / off_cpu) * 100.0,
        "%",
        "every command published on its own (an idle venue's batches)",
    );
    report(
        "journaling loss, all threads CPU",
        (1.0 - on_all_cpu / off_cpu) * 100.0,
        "%",
        "process CPU vs engine alone",
    );
    let (thread_on, thread_cpu, thread_all_cpu) =
        (median(thread_on), median(thread_cpu), median(thread_all_cpu));
    report(
        "journaling loss, event thread, wall",
        (1.0 - thread_on / off) * 100.0,
        "%",
        "until every event is journaled",
    );
    report(
        "journaling loss, event thread, matching thread CPU",
        (1.0 - thread_cpu / off_cpu) * 100.0,
        "%",
        "events journaled by their own thread",
    );
    report(
        "journaling loss, event thread, all threads CPU",
        (1.0 - thread_all_cpu / off_cpu) * 100.0,
        "%",
        "process CPU (event-journal thread included) vs engine alone",
    );

    let (derived, derived_cpu, derived_all_cpu) =
        (median(derived), median(derived_cpu), median(derived_all_cpu));
    report(
        "journaling loss, derived events, matching thread CPU",
        (1.0 - derived_cpu / off_cpu) * 100.0,
        "%",
        "commands only on the matching thread; events derived by a follower engine",
    );
    report(
        "journaling loss, derived events, wall",
        (1.0 - derived / off) * 100.0,
        "%",
        "until every event is journaled",
    );
    report(
        "journaling loss, derived events, all threads CPU",
        (1.0 - derived_all_cpu / off_cpu) * 100.0,
        "%",
        "process CPU (the deriver's engine included) vs engine alone",
    );

    if args.only.as_deref().is_none_or(|only| only == "before-ring") {
        before_ring(&args, &workload, &engine_config, &root);
    }

    if args.only.is_some() {
        let _ = std::fs::remove_dir_all(&root);
        return;
    }

    // 3. Replay speed: read + decode the command journal and run the engine, `runs` times
    // each way (medians): one replay of the quick stream takes ~10 ms, which one scheduler
    // decision can move by a fifth.
    let dir = root.join("durable");
    let one_thread_batch = args.replay_batch.unwrap_or(COMMAND_BATCH_DEFAULT);
    let feed_batch = args.replay_batch.unwrap_or(COMMAND_FEED_BATCH);
    // One replay: (commands, events, wall s, this thread's CPU s).
    let replay_once = |how: ReplayHow| {
        let started = Instant::now();
        let cpu0 = cpu_s(libc::CLOCK_THREAD_CPUTIME_ID);
        let mut engine = Engine::new(engine_config.clone());
        let mut sink = CountingSink::default();
        let mut batches = CommandBatches::open_from_start(dir.join("commands")).unwrap();
        let mut replayed = 0u64;
        match how {
            // Decoded in batches on this thread, matched batch by batch.
            ReplayHow::OneThread => {
                let mut batch = Vec::with_capacity(one_thread_batch);
                while batches.next_batch(&mut batch, one_thread_batch).unwrap() > 0 {
                    for command in &batch {
                        engine.process(command, &mut sink);
                    }
                    replayed += batch.len() as u64;
                }
            }
            // Read ahead on a thread of its own (CommandFeed): gains only when a core is free
            // for the feed thread; each batch one `process` per command, or through the
            // engine's look-ahead (`process_batch`), as `exchange replay` and recovery feed it.
            ReplayHow::ReadAhead { batched } => {
                let mut feed = CommandFeed::start(batches, feed_batch).unwrap();
                loop {
                    let batch = feed.next_batch().unwrap();
                    if batch.is_empty() {
                        break;
                    }
                    replayed += batch.len() as u64;
                    if batched {
                        engine.process_batch(batch, &mut sink);
                    } else {
                        for command in batch {
                            engine.process(command, &mut sink);
                        }
                    }
                }
            }
        }
        let secs = started.elapsed().as_secs_f64();
        (replayed as f64, sink.events as f64, secs, cpu_s(libc::CLOCK_THREAD_CPUTIME_ID) - cpu0)
    };
    let replay_runs = |how: ReplayHow| -> Vec<(f64, f64, f64, f64)> {
        (0..args.runs.max(1)).map(|_| replay_once(how)).collect()
    };
    let med = |runs: &[(f64, f64, f64, f64)], f: fn(&(f64, f64, f64, f64)) -> f64| {
        median(runs.iter().map(f).collect())
    };
    let one = replay_runs(ReplayHow::OneThread);
    report("replay commands/s", med(&one, |r| r.0 / r.2 / 1e6), "Mcmd/s", "read + CRC + decode + match");
    report("replay events/s", med(&one, |r| r.1 / r.2 / 1e6), "Mevents/s", "events produced by replay");
    report(
        "replay events per CPU second",
        med(&one, |r| r.1 / r.3 / 1e6),
        "Mevents/cpu-s",
        "replay thread CPU time",
    );
    let ahead = replay_runs(ReplayHow::ReadAhead { batched: false });
    report(
        "replay events/s, read-ahead thread",
        med(&ahead, |r| r.1 / r.2 / 1e6),
        "Mevents/s",
        "CommandFeed",
    );
    report(
        "replay events per CPU second, read-ahead thread",
        med(&ahead, |r| r.1 / r.3 / 1e6),
        "Mevents/cpu-s",
        "matching thread CPU time; the feed thread reads and decodes",
    );
    let batched = replay_runs(ReplayHow::ReadAhead { batched: true });
    report(
        "replay events/s, read-ahead thread, batches",
        med(&batched, |r| r.1 / r.2 / 1e6),
        "Mevents/s",
        "CommandFeed, Engine::process_batch",
    );
    report(
        "replay events per CPU second, read-ahead thread, batches",
        med(&batched, |r| r.1 / r.3 / 1e6),
        "Mevents/cpu-s",
        "matching thread CPU time; target >= 20",
    );

    // 4. Restart time: a large journal with periodic snapshots, then open() again.
    let restart = generate(&GenConfig::new(Mix::exchange_core(), 1, 1_000, args.restart_commands, 2));
    let restart_config = EngineConfig {
        symbols: restart.symbols.clone(),
        orders_max: restart.orders_max(),
        levels_per_side_max: restart.levels_per_side_max(),
    };
    let dir = root.join("restart");
    fresh(&dir);
    let config = DurableConfig { snapshot_every_commands: args.snapshot_every, ..DurableConfig::new(&dir) };
    {
        let (mut durable, _) = DurableEngine::open(restart_config.clone(), config.clone()).unwrap();
        let mut sink = CountingSink::default();
        for c in restart.setup.iter().chain(restart.stream.iter()) {
            durable.process(c, &mut sink).unwrap();
        }
        // Let the last background snapshot finish writing before the "crash".
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let started = Instant::now();
    let (durable, recovery) = DurableEngine::open(restart_config, config).unwrap();
    let secs = started.elapsed().as_secs_f64();
    let total = restart.setup.len() + restart.stream.len();
    report(
        "restart time",
        secs,
        "s",
        &format!(
            "{total} commands journaled; snapshot at {:?}, {} replayed, {} events verified",
            recovery.snapshot_seq, recovery.commands_replayed, recovery.events_verified
        ),
    );
    assert_eq!(durable.next_command_seq() as usize, total + 1);
    drop(durable);
    let _ = std::fs::remove_dir_all(&root);
}

/// Raw append: the stream's commands as records, one published at a time, then staged and
/// published `batch` at a time.
fn append(root: &Path, all: &[Command], batch: usize) {
    let dir = root.join("append");
    fresh(&dir);
    let (mut writer, _) = JournalWriter::open(&dir, JournalConfig::default()).unwrap();
    let mut bytes = 0usize;
    let started = Instant::now();
    for (i, command) in all.iter().enumerate() {
        writer
            .append_with(RecordKind::Command, i as u64 + 1, COMMAND_FIXED_LEN_MAX, |buf| {
                let n = command.encode_fixed(buf);
                bytes += n;
                n
            })
            .unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    drop(writer);
    report("append records/s", all.len() as f64 / secs, "records/s", "page-cache policy, 64 MiB segments");
    report(
        "append payload bytes/s",
        bytes as f64 / secs / 1e6,
        "MB/s",
        "payload only (headers add 24 B/record, 2 B/entry)",
    );
    // The same records staged and published `--batch` at a time (frames of many entries).
    let dir = root.join("append-staged");
    fresh(&dir);
    let (mut writer, _) = JournalWriter::open(&dir, JournalConfig::default()).unwrap();
    let started = Instant::now();
    for (i, command) in all.iter().enumerate() {
        writer
            .stage_with_zeroed_tail(RecordKind::Command, i as u64 + 1, COMMAND_FIXED_LEN_MAX, |buf| {
                command.encode_fixed(buf)
            })
            .unwrap();
        if (i + 1) % batch.max(1) == 0 {
            writer.publish_staged();
        }
    }
    writer.publish_staged();
    let secs = started.elapsed().as_secs_f64();
    drop(writer);
    report(
        "append records/s, staged in batches",
        all.len() as f64 / secs,
        "records/s",
        &format!("published {} at a time", batch),
    );
}

/// The matching side of the before-ring runs: takes the ring's commands in batches of the
/// runner's size through `process_batch` (as `runtime::Runner` does) until the ring is empty;
/// returns the thread's CPU seconds and the wall seconds it took.
fn drain_ring<P: Processor>(processor: &mut P, ring: &mut runtime::Consumer<Command>) -> (f64, f64) {
    let mut sink = CountingSink::default();
    let mut batch = Vec::with_capacity(RunnerConfig::default().batch_max);
    let (started, cpu0) = (Instant::now(), cpu_s(libc::CLOCK_THREAD_CPUTIME_ID));
    loop {
        batch.clear();
        if ring.pop_batch(batch.capacity(), |cmd| batch.push(cmd)) == 0 {
            break;
        }
        processor.process_batch(&batch, &mut sink);
        processor.end_batch();
    }
    (cpu_s(libc::CLOCK_THREAD_CPUTIME_ID) - cpu0, started.elapsed().as_secs_f64())
}

/// The command journal written before the engine's ring (`split_command_journal`, events
/// derived): a producer thread (as the router in `serve`) journals and publishes each batch of
/// `--batch` commands, then pushes it into the matching thread's command ring; against the
/// same with the bare engine behind the ring and no journal. The matching thread (this one,
/// which built the book) starts once the producer has put the whole stream in the ring, so
/// the two are measured apart, the matching thread with the deriver running beside it.
/// Figures: the matching thread's CPU per command (the target's measure), the producer's, and
/// the process's.
fn before_ring(args: &Args, workload: &harness::gen::Workload, engine_config: &EngineConfig, root: &Path) {
    let n = workload.stream.len();
    if n > runtime::RING_CAPACITY_MAX {
        eprintln!(
            "before-ring figures skipped: {n} commands do not fit one ring (at most {})",
            runtime::RING_CAPACITY_MAX
        );
        return;
    }
    // One ring for every run (drained by each): its pages are mapped once, outside the runs.
    let (mut to_engine, mut ring) = runtime::spsc_ring::<Command>(n);
    let mut run = |journaled: bool| -> (f64, f64, f64, f64) {
        let mut sink = CountingSink::default();
        let dir = root.join("before-ring");
        let (journal, durable, engine) = if journaled {
            fresh(&dir);
            let durable_config =
                DurableConfig { snapshot_every_commands: 0, derive_events: true, ..DurableConfig::new(&dir) };
            let (mut durable, _) = DurableEngine::open(engine_config.clone(), durable_config).unwrap();
            for c in &workload.setup {
                durable.process(c, &mut sink).unwrap();
            }
            durable.wait_background().unwrap();
            let mut journal = durable.split_command_journal().unwrap();
            journal.wait_background().unwrap();
            (Some(journal), Some(durable), None)
        } else {
            let mut engine = Engine::new(engine_config.clone());
            for c in &workload.setup {
                engine.process(c, &mut sink);
            }
            (None, None, Some(engine))
        };
        let all0 = cpu_s(libc::CLOCK_PROCESS_CPUTIME_ID);
        let stream = &workload.stream;
        let batch = args.batch.max(1);
        let to_engine = &mut to_engine;
        let (journal, producer_cpu) = std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    let mut journal = journal;
                    let cpu0 = cpu_s(libc::CLOCK_THREAD_CPUTIME_ID);
                    for chunk in stream.chunks(batch) {
                        if let Some(journal) = journal.as_mut() {
                            journal.append(chunk).unwrap();
                        }
                        for &cmd in chunk {
                            if to_engine.push(cmd).is_err() {
                                unreachable!("the ring holds the whole stream");
                            }
                        }
                    }
                    (journal, cpu_s(libc::CLOCK_THREAD_CPUTIME_ID) - cpu0)
                })
                .join()
                .unwrap()
        });
        let (engine_cpu, wall) = match (durable, engine) {
            (Some(mut durable), _) => {
                let measured = drain_ring(&mut durable, &mut ring);
                // The run ends when the deriver has journaled every event.
                durable.flush_events().unwrap();
                measured
            }
            (_, Some(mut engine)) => drain_ring(&mut engine, &mut ring),
            _ => unreachable!(),
        };
        let all_cpu = cpu_s(libc::CLOCK_PROCESS_CPUTIME_ID) - all0;
        if let Some(journal) = journal {
            journal.close().unwrap();
        }
        let n = n as f64;
        (n / engine_cpu, n / producer_cpu, n / all_cpu, n / wall)
    };
    let (mut off, mut on) = (Vec::new(), Vec::new());
    for round in 0..=args.runs {
        // Which goes first alternates: the journal's writeback after an "on" run lands on
        // whatever runs next.
        let (a, b) = if round % 2 == 0 {
            (run(false), run(true))
        } else {
            let b = run(true);
            (run(false), b)
        };
        if round > 0 {
            off.push(a);
            on.push(b);
        }
    }
    let pick =
        |v: &[(f64, f64, f64, f64)], f: fn(&(f64, f64, f64, f64)) -> f64| median(v.iter().map(f).collect());
    let (engine_off, engine_on) = (pick(&off, |r| r.0), pick(&on, |r| r.0));
    report(
        "engine behind its ring, per CPU second",
        engine_off / 1e6,
        "Mcmd/cpu-s",
        "bare engine, producer pushes",
    );
    report(
        "engine behind its ring, journal before it",
        engine_on / 1e6,
        "Mcmd/cpu-s",
        "producer journals each batch, events derived",
    );
    // The loss of each round (its two runs back to back), median and range: the machine's
    // speed drifts more between rounds than within one.
    let mut losses: Vec<f64> = off.iter().zip(&on).map(|(a, b)| (1.0 - b.0 / a.0) * 100.0).collect();
    losses.sort_by(|a, b| a.total_cmp(b));
    report(
        "journaling loss, journal before the ring, matching thread CPU",
        median(losses.clone()),
        "%",
        &format!(
            "target <= 10%; median of {} rounds' own ratios, range {:.1} to {:.1}",
            losses.len(),
            losses[0],
            losses[losses.len() - 1]
        ),
    );
    let (producer_off, producer_on) = (pick(&off, |r| r.1), pick(&on, |r| r.1));
    report(
        "producer, CPU ns per command, journal before the ring",
        1e9 / producer_on,
        "ns",
        &format!("{:.1} ns without the journal", 1e9 / producer_off),
    );
    report(
        "journaling loss, journal before the ring, all threads CPU",
        (1.0 - pick(&on, |r| r.2) / pick(&off, |r| r.2)) * 100.0,
        "%",
        "process CPU (producer, deriver) vs the same without the journal",
    );
    report(
        "journaling loss, journal before the ring, wall",
        (1.0 - pick(&on, |r| r.3) / pick(&off, |r| r.3)) * 100.0,
        "%",
        "the matching thread's run (the producer's came before it)",
    );
}
