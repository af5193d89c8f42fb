//! The command journal written before the engine's ring
//! ([`DurableEngine::split_command_journal`]): the thread feeding the engine journals and
//! publishes each batch before it pushes it, the matching thread does no journal work, and the
//! directory holds the same command journal, event journal and snapshots as a run that
//! journals on the matching thread.

mod support;

use std::path::Path;

use engine::{Command, Engine, EngineConfig, Event, Processor, SymbolId};
use journal::{CommandJournal, DurableConfig, DurableEngine, DurableError, JournalConfig};
use rand::{rngs::SmallRng, Rng, SeedableRng};
use runtime::{PushError, Runner, RunnerConfig, RunnerHandle, Sequencer, SteppingClock, WaitStrategy};
use support::{assert_snapshots_match, flow, records, temp_dir, SNAPSHOT_EVERY};

fn open(dir: &Path, derive_events: bool) -> DurableEngine {
    let config = DurableConfig {
        dir: dir.to_path_buf(),
        journal: JournalConfig { segment_size_bytes: 64 * 1024, ..JournalConfig::default() },
        snapshot_every_commands: SNAPSHOT_EVERY,
        event_thread: false,
        derive_events,
    };
    DurableEngine::open(EngineConfig::default(), config).unwrap().0
}

/// The reference: one command at a time, both journals written on the matching thread.
fn journaled_on_the_matching_thread(dir: &Path, cmds: &[Command]) -> Vec<Event> {
    let mut durable = open(dir, false);
    let mut events = Vec::new();
    for cmd in cmds {
        durable.process(cmd, &mut events).unwrap();
    }
    durable.snapshot_now().unwrap();
    durable.close().unwrap();
    events
}

#[test]
fn a_journal_written_before_the_ring_leaves_the_directory_a_matching_thread_journal_does() {
    let now_ns = 1_700_000_000_000_000_000;
    let commands = flow(21, 3_000);
    let (split_dir, reference_dir) = (temp_dir("split"), temp_dir("reference"));

    let mut durable = open(&split_dir, true);
    let mut journal: CommandJournal = durable.split_command_journal().unwrap();
    assert_eq!(journal.next_seq(), 1);
    let config = RunnerConfig {
        wait: WaitStrategy::Yield,
        batch_max: 64,
        command_ring_capacity: 256,
        ..RunnerConfig::default()
    };
    // The producer's sequencer stamps; the runner's, starting at the same seq, stamps the same
    // numbers again and keeps the time.
    let clock = SteppingClock { next_ns: now_ns + 1, step_ns: 0 };
    let (handle, join) = Runner::spawn_with_clock(durable, clock, config).unwrap();
    let RunnerHandle { commands: mut to_engine, mut events, stats, .. } = handle;
    let mut sequencer = Sequencer::new(1);
    let mut from_runner = Vec::new();
    let mut stamped_all = Vec::new();
    let mut rng = SmallRng::seed_from_u64(5);
    let mut rest = &commands[..];
    while !rest.is_empty() {
        // Batches of 1 to 40: snapshot points fall inside and between them.
        let n = rng.gen_range(1..=40).min(rest.len());
        let mut batch: Vec<Command> = rest[..n].to_vec();
        rest = &rest[n..];
        for cmd in &mut batch {
            sequencer.stamp(cmd, now_ns);
        }
        journal.append(&batch).unwrap();
        // Published before it is pushed: everything the engine sees is in the journal.
        assert_eq!(journal.progress().written_seq(), batch.last().unwrap().header.seq);
        for mut cmd in batch.iter().copied() {
            while let Err(PushError::Full(back)) = to_engine.push(cmd) {
                cmd = back;
                events.pop_batch(usize::MAX, |event| from_runner.push(event));
                std::thread::yield_now();
            }
        }
        stamped_all.extend(batch);
    }
    drop(to_engine);
    while !(events.is_abandoned() && events.is_empty()) {
        events.pop_batch(usize::MAX, |event| from_runner.push(event));
        std::thread::yield_now();
    }
    events.pop_batch(usize::MAX, |event| from_runner.push(event));
    let mut durable = join.join().unwrap();
    assert!(!durable.health().is_failed());
    assert_eq!(stats.commands_processed(), 3_000);
    assert_eq!(durable.next_command_seq(), 3_001);
    durable.flush_events().unwrap();
    durable.snapshot_now().unwrap();
    durable.close().unwrap();
    journal.close().unwrap();

    let reference = journaled_on_the_matching_thread(&reference_dir, &stamped_all);
    assert!(reference.iter().any(|event| matches!(event.kind, engine::EventKind::Trade { .. })));
    assert_eq!(from_runner, reference);
    assert_eq!(records(&split_dir, "commands"), records(&reference_dir, "commands"));
    assert_eq!(records(&split_dir, "events"), records(&reference_dir, "events"));
    // Every snapshot holds the books after exactly the command it is named after (a point is
    // skipped while the snapshot before it is still being written, so the two runs may differ
    // in which points they hold).
    assert_snapshots_match(&split_dir, &stamped_all);

    // Reopened the ordinary way, the directory recovers the same books.
    let reopened = open(&split_dir, false);
    let mut plain = Engine::new(EngineConfig::default());
    for cmd in &stamped_all {
        plain.process(cmd, &mut Vec::new());
    }
    for symbol in 0..2 {
        assert_eq!(reopened.engine().book_snapshot(SymbolId(symbol)), plain.book_snapshot(SymbolId(symbol)));
    }
    drop(reopened);
    for dir in [split_dir, reference_dir] {
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[test]
fn the_split_is_refused_without_derived_events_and_a_second_time() {
    let dir = temp_dir("refused");
    let mut durable = open(&dir, false);
    let refused = durable.split_command_journal().unwrap_err();
    assert!(refused.to_string().contains("only with derived events"), "{refused}");
    drop(durable);
    let mut durable = open(&dir, true);
    let _journal = durable.split_command_journal().unwrap();
    let again = durable.split_command_journal().unwrap_err();
    assert!(again.to_string().contains("already handed over"), "{again}");
    drop((durable, _journal));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_gap_is_refused_on_both_sides_and_nothing_of_a_refused_batch_is_journaled() {
    let dir = temp_dir("gap");
    let mut durable = open(&dir, true);
    let mut journal = durable.split_command_journal().unwrap();
    let mut cmds = flow(3, 10);
    let mut sequencer = Sequencer::new(1);
    for cmd in &mut cmds {
        sequencer.stamp(cmd, 1_000);
    }
    journal.append(&cmds[..4]).unwrap();
    // 5, 6 then 8: the whole batch is refused, nothing of it journaled.
    let gap = [cmds[4], cmds[5], cmds[7]];
    match journal.append(&gap) {
        Err(DurableError::SeqOutOfOrder { expected: 7, found: 8 }) => {}
        other => panic!("expected a gap at 7, got {other:?}"),
    }
    assert_eq!((journal.next_seq(), journal.progress().written_seq()), (5, 4));
    // The engine refuses a command that is not the next one, and takes the next one.
    let mut events = Vec::new();
    durable.process_batch(&cmds[..4], &mut events);
    match durable.process_staged(&cmds[5], &mut events) {
        Err(DurableError::SeqOutOfOrder { expected: 5, found: 6 }) => {}
        other => panic!("expected seq 5, got {other:?}"),
    }
    // A snapshot of commands the journal does not show is refused, not written.
    journal.append(&cmds[4..6]).unwrap();
    durable.process_staged(&cmds[4], &mut events).unwrap();
    assert!(durable.snapshot_now().is_ok(), "seq 5 is journaled");
    drop((durable, journal));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_write_failure_before_the_ring_stops_the_journal_and_the_engine() {
    let dir = temp_dir("failure");
    let config = DurableConfig {
        dir: dir.clone(),
        journal: JournalConfig { segment_size_bytes: 64 * 1024, ..JournalConfig::default() },
        snapshot_every_commands: 0,
        event_thread: false,
        derive_events: true,
    };
    let mut durable = DurableEngine::open(EngineConfig::default(), config).unwrap().0;
    let health = durable.health();
    let mut journal = durable.split_command_journal().unwrap();
    journal.wait_background().unwrap();
    durable.wait_background().unwrap();
    let mut cmds = flow(9, 20_000);
    let mut sequencer = Sequencer::new(1);
    for cmd in &mut cmds {
        sequencer.stamp(cmd, 1_000);
    }
    journal.append(&cmds[..10]).unwrap();
    let mut events = Vec::new();
    durable.process_batch(&cmds[..10], &mut events);
    // The directory disappears: the next segment cannot be put in place.
    std::fs::remove_dir_all(&dir).unwrap();
    // The command journal fails at its next segment, or the deriver at the event journal's:
    // either failure stops both sides.
    let mut at = 10;
    while !health.is_failed() {
        match journal.append(&cmds[at..at + 64]) {
            Ok(()) => {
                durable.process_batch(&cmds[at..at + 64], &mut events);
                at += 64;
            }
            Err(e) => {
                assert!(e.to_string().contains("No such file"), "{e}");
                break;
            }
        }
    }
    let message = health.failure().unwrap();
    assert!(message.contains("journal") && message.contains("No such file"), "{message}");
    // Every later append is refused, and the engine takes nothing more.
    match journal.append(&cmds[at..at + 1]) {
        Err(DurableError::Stopped(why)) => assert_eq!(why, message),
        other => panic!("expected Stopped, got {other:?}"),
    }
    match durable.process_staged(&cmds[at], &mut events) {
        Err(DurableError::Stopped(why)) => assert_eq!(why, message),
        other => panic!("expected Stopped, got {other:?}"),
    }
}
