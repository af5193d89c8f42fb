//! Journal benchmarks: raw append rate, engine throughput with journaling on vs off (same
//! stream, same run), replay speed, and restart time of a large journal with snapshots.
//!
//! Everything is written under `--dir` (default: a directory in the system temp dir), which is
//! removed at the end. Figures go to standard output as a table and one JSON line each.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Parser;
use engine::codec::COMMAND_ENCODED_LEN_MAX;
use engine::{Command, CountingSink, Engine, EngineConfig};
use harness::gen::{generate, GenConfig, Mix};
use journal::{DurableConfig, DurableEngine, JournalConfig, JournalReader, JournalWriter, RecordKind};

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
    /// Timed runs of the on/off comparison (median shown).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Where to write journals.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Short run (200k commands, 1M-command restart test).
    #[arg(long)]
    quick: bool,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn fresh(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
}

fn report(name: &str, value: f64, unit: &str, note: &str) {
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
    let dir = root.join("append");
    fresh(&dir);
    let (mut writer, _) = JournalWriter::open(&dir, JournalConfig::default()).unwrap();
    let mut bytes = 0usize;
    let started = Instant::now();
    for (i, command) in all.iter().enumerate() {
        writer
            .append_with(RecordKind::Command, i as u64 + 1, COMMAND_ENCODED_LEN_MAX, |buf| {
                let n = command.encode(buf);
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
        "payload only (headers add 24 B/record)",
    );

    // 2. Engine alone vs engine + both journals, same stream, alternating runs.
    let (mut off, mut on) = (Vec::new(), Vec::new());
    for run in 0..=args.runs {
        let mut engine = Engine::new(engine_config.clone());
        let mut sink = CountingSink::default();
        for c in &workload.setup {
            engine.process(c, &mut sink);
        }
        let started = Instant::now();
        for c in &workload.stream {
            engine.process(c, &mut sink);
        }
        let off_rate = workload.stream.len() as f64 / started.elapsed().as_secs_f64();

        let dir = root.join("durable");
        fresh(&dir);
        let config = DurableConfig { snapshot_every_commands: 0, ..DurableConfig::new(&dir) };
        let (mut durable, _) = DurableEngine::open(engine_config.clone(), config).unwrap();
        let mut sink = CountingSink::default();
        for c in &workload.setup {
            durable.process(c, &mut sink).unwrap();
        }
        // The helpers making each journal's next segment file (tens of MiB of page zeroing)
        // start at open; a venue opens once, so they are kept out of the timed loop.
        durable.wait_background().unwrap();
        let started = Instant::now();
        for c in &workload.stream {
            durable.process(c, &mut sink).unwrap();
        }
        // The event journal is written by its own thread: the run ends when it has every event.
        durable.flush_events().unwrap();
        let on_rate = workload.stream.len() as f64 / started.elapsed().as_secs_f64();
        if run > 0 {
            off.push(off_rate);
            on.push(on_rate);
        }
    }
    let (off, on) = (median(off), median(on));
    report("engine, journal off", off / 1e6, "Mcmd/s", "exchange-core mix, 1k resting");
    report("engine, journal on", on / 1e6, "Mcmd/s", "commands + events journaled, page cache");
    report("journaling throughput loss", (1.0 - on / off) * 100.0, "%", "target <= 10%");

    // 3. Replay speed: read + decode the command journal and run the engine.
    let dir = root.join("durable");
    let started = Instant::now();
    let mut engine = Engine::new(engine_config.clone());
    let mut sink = CountingSink::default();
    let mut reader = JournalReader::open_from_start(dir.join("commands")).unwrap();
    let mut replayed = 0u64;
    while let Some(record) = reader.next_record().unwrap() {
        engine.process(&Command::decode(record.payload).unwrap(), &mut sink);
        replayed += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    report("replay commands/s", replayed as f64 / secs / 1e6, "Mcmd/s", "read + CRC + decode + match");
    report("replay events/s", sink.events as f64 / secs / 1e6, "Mevents/s", "events produced by replay");

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
