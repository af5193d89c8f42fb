//! Whole batches through the journaling engine: [`engine::Processor::process_batch`] (the
//! engine's look-ahead, the runner's path) must journal, emit and snapshot exactly what one
//! command at a time does, also when a periodic snapshot falls inside a batch.

use std::path::{Path, PathBuf};

use engine::{
    AccountId, CancelOrder, ClOrdId, Command, CommandKind, Engine, EngineConfig, Event, NewOrder, Processor,
    ReplaceOrder, Side, SymbolId,
};
use journal::{DurableConfig, DurableEngine, JournalConfig, JournalReader};
use rand::{rngs::SmallRng, Rng, SeedableRng};
use runtime::{PushError, Runner, RunnerConfig, RunnerHandle, Sequencer, SteppingClock, WaitStrategy};

/// A periodic snapshot every this many commands: never a multiple of the batch sizes used, so
/// snapshot points fall inside batches.
const SNAPSHOT_EVERY: u64 = 17;

/// Seeded new orders, cancels and replaces on two symbols, unstamped (seq 0).
fn flow(seed: u64, count: usize) -> Vec<Command> {
    let mut rng = SmallRng::seed_from_u64(seed);
    (0..count)
        .map(|_| {
            let account = AccountId(rng.gen_range(0..4));
            let symbol = SymbolId(rng.gen_range(0..2));
            let id = ClOrdId::from_str(&format!("o{}", rng.gen_range(0..60))).unwrap();
            let side = if rng.gen_bool(0.5) { Side::Buy } else { Side::Sell };
            let price = rng.gen_range(95..106) * 1_000_000;
            let new = NewOrder::limit(account, symbol, id, side, price, rng.gen_range(1..30));
            let kind = match rng.gen_range(0..10) {
                0..=5 => CommandKind::New(new),
                6 | 7 => CommandKind::Cancel(CancelOrder { account, symbol, id, request_id: None }),
                _ => CommandKind::Replace(ReplaceOrder {
                    account,
                    symbol,
                    orig_id: id,
                    id: ClOrdId::from_str(&format!("o{}", rng.gen_range(0..60))).unwrap(),
                    price: Some(engine::PriceUnits(price)),
                    qty: rng.gen_range(1..30),
                }),
            };
            Command::new(kind)
        })
        .collect()
}

/// `cmds` stamped as the runner's sequencer stamps them under a clock standing at `now_ns`.
fn stamped(cmds: &[Command], now_ns: u64) -> Vec<Command> {
    let mut sequencer = Sequencer::new(1);
    cmds.iter()
        .map(|cmd| {
            let mut cmd = *cmd;
            sequencer.stamp(&mut cmd, now_ns);
            cmd
        })
        .collect()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("runner-batches-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn open(dir: &Path, event_thread: bool) -> DurableEngine {
    let config = DurableConfig {
        dir: dir.to_path_buf(),
        journal: JournalConfig { segment_size_bytes: 64 * 1024, ..JournalConfig::default() },
        snapshot_every_commands: SNAPSHOT_EVERY,
        event_thread,
    };
    DurableEngine::open(EngineConfig::default(), config).unwrap().0
}

/// Writes a last snapshot (which first waits for a background one still in flight) and closes.
fn finish(mut durable: DurableEngine) {
    durable.snapshot_now().unwrap();
    durable.close().unwrap();
}

/// Command seqs of the snapshot files in `dir`, oldest first.
fn snapshot_seqs(dir: &Path) -> Vec<u64> {
    let mut seqs: Vec<u64> = std::fs::read_dir(dir.join("snapshots"))
        .unwrap()
        .filter_map(|entry| {
            let name = entry.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".snap").and_then(|seq| seq.parse().ok())
        })
        .collect();
    seqs.sort_unstable();
    seqs
}

/// Every snapshot in `dir` holds the books after exactly the command it is named after: its
/// body (past the 20-byte file header) is the plain engine's snapshot at that point.
fn assert_snapshots_match(dir: &Path, cmds: &[Command]) {
    let seqs = snapshot_seqs(dir);
    assert_eq!(seqs.first(), Some(&SNAPSHOT_EVERY), "the first periodic snapshot is at its point: {seqs:?}");
    let mut plain = Engine::new(EngineConfig::default());
    let mut done = 0;
    for seq in seqs {
        for cmd in &cmds[done..seq as usize] {
            plain.process(cmd, &mut Vec::new());
        }
        done = seq as usize;
        let mut body = Vec::new();
        plain.write_snapshot(&mut body);
        let file = std::fs::read(dir.join("snapshots").join(format!("{seq:020}.snap"))).unwrap();
        assert!(file[20..] == body[..], "snapshot {seq} is not the books after command {seq}");
    }
}

fn command_journal(dir: &Path) -> Vec<(u64, Vec<u8>)> {
    JournalReader::open_from_start(dir.join("commands"))
        .unwrap()
        .map(|record| {
            let record = record.unwrap();
            (record.seq, record.payload.to_vec())
        })
        .collect()
}

/// One command at a time through the `Processor` interface, a batch end after each.
fn one_at_a_time(dir: &Path, cmds: &[Command], event_thread: bool) -> Vec<Event> {
    let mut durable = open(dir, event_thread);
    let mut events = Vec::new();
    for cmd in cmds {
        Processor::process(&mut durable, cmd, &mut events);
        durable.end_batch();
    }
    finish(durable);
    events
}

#[test]
fn a_batch_is_journaled_emitted_and_snapshotted_as_one_command_at_a_time() {
    let cmds = stamped(&flow(7, 700), 1_000);
    for event_thread in [false, true] {
        let (batched_dir, single_dir) = (temp_dir(&format!("batched-{event_thread}")), temp_dir("single"));
        let mut durable = open(&batched_dir, event_thread);
        let mut batched = Vec::new();
        // Batches of 50: snapshot points 17, 34, ... fall inside them.
        for batch in cmds.chunks(50) {
            durable.process_batch(batch, &mut batched);
            durable.end_batch();
        }
        finish(durable);
        let single = one_at_a_time(&single_dir, &cmds, event_thread);

        assert!(batched.iter().any(|event| matches!(event.kind, engine::EventKind::Trade { .. })));
        assert_eq!(batched, single, "event_thread {event_thread}");
        assert_eq!(command_journal(&batched_dir), command_journal(&single_dir));
        assert_snapshots_match(&batched_dir, &cmds);
        for dir in [batched_dir, single_dir] {
            std::fs::remove_dir_all(dir).unwrap();
        }
    }
}

#[test]
fn the_runner_with_a_journal_emits_what_one_command_at_a_time_emits() {
    let now_ns = 1_700_000_000_000_000_000;
    let commands = flow(11, 3_000);
    let cmds = stamped(&commands, now_ns);
    let (runner_dir, single_dir) = (temp_dir("runner"), temp_dir("runner-single"));
    let single = one_at_a_time(&single_dir, &cmds, false);

    // A clock that stands still: the stamps do not depend on how the commands batch.
    let clock = SteppingClock { next_ns: now_ns, step_ns: 0 };
    let config = RunnerConfig {
        wait: WaitStrategy::Yield,
        batch_max: 64,
        command_ring_capacity: 256,
        ..RunnerConfig::default()
    };
    let (handle, join) = Runner::spawn_with_clock(open(&runner_dir, false), clock, config).unwrap();
    let RunnerHandle { commands: mut to_engine, mut events, stats, .. } = handle;
    let mut from_runner = Vec::new();
    for cmd in &commands {
        let mut cmd = *cmd;
        while let Err(PushError::Full(back)) = to_engine.push(cmd) {
            cmd = back;
            events.pop_batch(usize::MAX, |event| from_runner.push(event));
            std::thread::yield_now();
        }
    }
    drop(to_engine);
    while !(events.is_abandoned() && events.is_empty()) {
        events.pop_batch(usize::MAX, |event| from_runner.push(event));
        std::thread::yield_now();
    }
    events.pop_batch(usize::MAX, |event| from_runner.push(event));
    let durable = join.join().unwrap();
    assert!(!durable.health().is_failed());
    finish(durable);

    assert_eq!(stats.commands_processed(), 3_000);
    assert_eq!(from_runner, single);
    assert_eq!(command_journal(&runner_dir), command_journal(&single_dir));
    assert_snapshots_match(&runner_dir, &cmds);
    // The directory reopens to the books of the one-at-a-time run.
    let reopened = open(&runner_dir, false);
    let mut plain = Engine::new(EngineConfig::default());
    for cmd in &cmds {
        plain.process(cmd, &mut Vec::new());
    }
    for symbol in 0..2 {
        assert_eq!(reopened.engine().book_snapshot(SymbolId(symbol)), plain.book_snapshot(SymbolId(symbol)));
    }
    drop(reopened);
    for dir in [runner_dir, single_dir] {
        std::fs::remove_dir_all(dir).unwrap();
    }
}
