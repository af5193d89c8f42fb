//! Whole batches through the journaling engine: [`engine::Processor::process_batch`] (the
//! engine's look-ahead, the runner's path) must journal, emit and snapshot exactly what one
//! command at a time does, also when a periodic snapshot falls inside a batch.

mod support;

use std::path::Path;

use engine::{Command, Engine, EngineConfig, Event, Processor, SymbolId};
use journal::{DurableConfig, DurableEngine, JournalConfig};
use runtime::{PushError, Runner, RunnerConfig, RunnerHandle, SteppingClock, WaitStrategy};
use support::{assert_snapshots_match, flow, records, stamped, temp_dir, SNAPSHOT_EVERY};

fn open(dir: &Path, event_thread: bool) -> DurableEngine {
    open_snapshotting(dir, event_thread, SNAPSHOT_EVERY)
}

fn open_snapshotting(dir: &Path, event_thread: bool, snapshot_every_commands: u64) -> DurableEngine {
    let config = DurableConfig {
        dir: dir.to_path_buf(),
        journal: JournalConfig { segment_size_bytes: 64 * 1024, ..JournalConfig::default() },
        snapshot_every_commands,
        event_thread,
        derive_events: false,
    };
    DurableEngine::open(EngineConfig::default(), config).unwrap().0
}

/// Writes a last snapshot (which first waits for a background one still in flight) and closes.
fn finish(mut durable: DurableEngine) {
    durable.snapshot_now().unwrap();
    durable.close().unwrap();
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
        assert_eq!(records(&batched_dir, "commands"), records(&single_dir, "commands"));
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
    assert_eq!(records(&runner_dir, "commands"), records(&single_dir, "commands"));
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

#[test]
fn a_wrong_seq_inside_a_batch_is_refused_as_one_at_a_time_refuses_it() {
    let cmds = stamped(&flow(3, 40), 1_000);
    // 1..=20, then 22 (refused: 21 expected), then 21 (taken), then 23..=40 (all refused:
    // 22 expected), in one batch.
    let mut batch: Vec<Command> = cmds[..20].to_vec();
    batch.extend([cmds[21], cmds[20]]);
    batch.extend_from_slice(&cmds[22..]);
    let mut results = Vec::new();
    for batched in [true, false] {
        let dir = temp_dir(&format!("seq-{batched}"));
        let mut durable = open(&dir, false);
        let mut events = Vec::new();
        let first_error = if batched {
            durable.process_batch_staged(&batch, &mut events).err()
        } else {
            let errors: Vec<_> =
                batch.iter().filter_map(|cmd| durable.process_staged(cmd, &mut events).err()).collect();
            errors.into_iter().next()
        };
        durable.publish_batch();
        let first_error = first_error.map(|e| e.to_string());
        results.push((events, durable.next_command_seq(), first_error, durable.health().is_failed()));
        finish(durable);
        std::fs::remove_dir_all(dir).unwrap();
    }
    assert_eq!(results[0], results[1]);
    let (_, next_seq, first_error, failed) = &results[0];
    assert_eq!((*next_seq, *failed), (22, false));
    assert_eq!(first_error.as_deref(), Some("command seq 22 out of order, expected 21"));
}

#[test]
fn a_journal_failure_inside_a_batch_stops_it_there() {
    for event_thread in [false, true] {
        let dir = temp_dir(&format!("fail-{event_thread}"));
        let cmds = stamped(&flow(5, 20_000), 1_000);
        // No periodic snapshots: a snapshot writer would race the removal below.
        let mut durable = open_snapshotting(&dir, event_thread, 0);
        let health = durable.health();
        let mut sink = Vec::new();
        durable.process_batch(&cmds[..100], &mut sink);
        durable.end_batch();
        // The data directory disappears under the venue: the next segment cannot be put in place.
        // The spare segments are made first, so no helper creates a file while it goes.
        durable.wait_background().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let mut at = 100;
        for batch in cmds[100..].chunks(64) {
            durable.process_batch(batch, &mut sink);
            durable.end_batch();
            at += batch.len();
            if health.is_failed() {
                break;
            }
        }
        assert!(health.is_failed(), "a journal without its directory must fail at the next segment");
        let message = health.failure().unwrap();
        assert!(message.contains("journal") && message.contains("No such file"), "{message}");
        // What reached the sink is the start of the plain run, and only events of commands the
        // command journal took (write-ahead held up to the failure).
        let mut plain = Engine::new(EngineConfig::default());
        let mut want = Vec::new();
        for cmd in &cmds {
            plain.process(cmd, &mut want);
        }
        assert_eq!(sink[..], want[..sink.len()]);
        let journaled_next = durable.next_command_seq();
        assert!(sink.iter().all(|event| event.command_seq < journaled_next));
        // Nothing more is processed or forwarded, and the caller that can see errors is told why.
        let n = sink.len();
        match durable.process_batch_staged(&cmds[at..at + 10], &mut sink) {
            Err(journal::DurableError::Stopped(why)) => assert_eq!(why, message),
            other => panic!("expected Stopped, got {other:?}"),
        }
        assert_eq!((sink.len(), durable.next_command_seq()), (n, journaled_next));
        assert!(durable.close().is_err());
    }
}
