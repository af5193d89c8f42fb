//! Recovery of the durable engine: snapshots + command tail + event-journal check.

use engine::{
    AccountId, CancelOrder, ClOrdId, Command, CommandHeader, CommandKind, Engine, EngineConfig, Event,
    NewOrder, ReplaceOrder, Side, SymbolId, Tif,
};
use journal::{DurableConfig, DurableEngine, JournalConfig};
use rand::{rngs::SmallRng, Rng, SeedableRng};

fn commands(seed: u64, n: u64) -> Vec<Command> {
    let mut rng = SmallRng::seed_from_u64(seed);
    (1..=n)
        .map(|seq| {
            let account = AccountId(rng.gen_range(0..4));
            let symbol = SymbolId(rng.gen_range(0..2));
            let id = ClOrdId::from_str(&format!("o{}", rng.gen_range(0..80))).unwrap();
            let side = if rng.gen_bool(0.5) { Side::Buy } else { Side::Sell };
            let price = rng.gen_range(95..106) * 1_000_000;
            let mut new = NewOrder::limit(account, symbol, id, side, price, rng.gen_range(1..30));
            if rng.gen_ratio(1, 8) {
                new.tif = Tif::Gtd;
                new.expire_ts = Some(seq * 10 + rng.gen_range(0..300));
            }
            if rng.gen_ratio(1, 10) {
                new.display_qty = Some(1);
            }
            let kind = match rng.gen_range(0..10) {
                0..=5 => CommandKind::New(new),
                6 | 7 => CommandKind::Cancel(CancelOrder { account, symbol, id, request_id: None }),
                _ => CommandKind::Replace(ReplaceOrder {
                    account,
                    symbol,
                    orig_id: id,
                    id: ClOrdId::from_str(&format!("o{}", rng.gen_range(0..80))).unwrap(),
                    price: Some(engine::PriceUnits(price)),
                    qty: rng.gen_range(1..30),
                }),
            };
            Command { header: CommandHeader { seq, ts: seq * 10 }, kind }
        })
        .collect()
}

fn config(dir: &std::path::Path, snapshot_every: u64) -> DurableConfig {
    DurableConfig {
        dir: dir.to_path_buf(),
        journal: JournalConfig { segment_size_bytes: 64 * 1024, ..JournalConfig::default() },
        snapshot_every_commands: snapshot_every,
        event_thread: false,
        derive_events: false,
    }
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("durable-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn reference(cmds: &[Command]) -> (Engine, Vec<Event>) {
    let mut engine = Engine::new(EngineConfig::default());
    let mut events = Vec::new();
    for c in cmds {
        engine.process(c, &mut events);
    }
    (engine, events)
}

fn assert_same_books(a: &Engine, b: &Engine) {
    for s in 0..3 {
        assert_eq!(a.book_snapshot(SymbolId(s)), b.book_snapshot(SymbolId(s)), "symbol {s}");
    }
}

#[test]
fn reopen_restores_from_snapshot_and_replays_the_tail() {
    let dir = temp_dir("reopen");
    let cmds = commands(1, 3_000);
    let mut seen = Vec::new();
    {
        let (mut durable, recovery) =
            DurableEngine::open(EngineConfig::default(), config(&dir, 700)).unwrap();
        assert_eq!(recovery.commands_replayed, 0);
        for c in &cmds {
            durable.process(c, &mut seen).unwrap();
        }
        durable.snapshot_now().unwrap(); // also waits for nothing: the in-flight one may race
    } // dropped without any shutdown step, as a crash would
    let (reference_engine, reference_events) = reference(&cmds);
    assert_eq!(seen, reference_events, "journaling changes nothing the engine emits");

    let (mut durable, recovery) = DurableEngine::open(EngineConfig::default(), config(&dir, 700)).unwrap();
    assert_eq!(recovery.snapshot_seq, Some(3_000));
    assert_eq!(recovery.commands_replayed, 0);
    assert_same_books(durable.engine(), &reference_engine);
    assert_eq!(durable.next_command_seq(), 3_001);

    // Carry on after the restart exactly as an uninterrupted engine would.
    let more = commands(2, 500)
        .into_iter()
        .map(|mut c| {
            c.header.seq += 3_000;
            c.header.ts += 30_000;
            c
        })
        .collect::<Vec<_>>();
    let mut after = Vec::new();
    for c in &more {
        durable.process(c, &mut after).unwrap();
    }
    let all: Vec<Command> = cmds.iter().chain(more.iter()).copied().collect();
    let (reference_engine, reference_events) = reference(&all);
    assert_eq!(after, reference_events[seen.len()..]);
    assert_same_books(durable.engine(), &reference_engine);
    drop(durable);

    // Delete every snapshot: recovery replays the whole command journal and verifies every
    // journaled event against what replay produces.
    for entry in std::fs::read_dir(dir.join("snapshots")).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    let mut reported = Vec::new();
    let (durable, recovery) =
        DurableEngine::open_with_progress(EngineConfig::default(), config(&dir, 0), &mut |done, total| {
            reported.push((done, total))
        })
        .unwrap();
    assert_eq!(reported.last(), Some(&(3_500, 3_500)), "the replay's progress ends at its total");
    assert_eq!(recovery.snapshot_seq, None);
    assert_eq!(recovery.commands_replayed, 3_500);
    assert_eq!(recovery.events_verified as usize, reference_events.len());
    assert_same_books(durable.engine(), &reference_engine);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn lost_event_tail_is_regenerated_and_a_bad_snapshot_is_skipped() {
    let dir = temp_dir("regen");
    let cmds = commands(3, 2_000);
    {
        let (mut durable, _) = DurableEngine::open(EngineConfig::default(), config(&dir, 0)).unwrap();
        let mut sink = Vec::new();
        for c in &cmds[..1_000] {
            durable.process(c, &mut sink).unwrap();
        }
        durable.snapshot_now().unwrap();
        for c in &cmds[1_000..] {
            durable.process(c, &mut sink).unwrap();
        }
        durable.snapshot_now().unwrap();
    }
    // The newest snapshot is damaged: recovery must fall back to the older one.
    let newest = dir.join("snapshots").join(format!("{:020}.snap", 2_000));
    let mut bytes = std::fs::read(&newest).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&newest, bytes).unwrap();
    // The event journal loses everything (as if its files were never flushed): regenerated.
    std::fs::remove_dir_all(dir.join("events")).unwrap();
    std::fs::remove_file(dir.join("snapshots").join(format!("{:020}.snap", 1_000))).unwrap();

    let (durable, recovery) = DurableEngine::open(EngineConfig::default(), config(&dir, 0)).unwrap();
    assert_eq!(recovery.snapshot_seq, None);
    assert_eq!(recovery.snapshots_skipped.len(), 1, "{:?}", recovery.snapshots_skipped);
    assert!(recovery.snapshots_skipped[0].contains("checksum"), "{:?}", recovery.snapshots_skipped);
    let (reference_engine, reference_events) = reference(&cmds);
    assert_eq!(recovery.events_regenerated as usize, reference_events.len());
    assert_same_books(durable.engine(), &reference_engine);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn out_of_order_command_is_refused_without_side_effects() {
    let dir = temp_dir("order");
    let (mut durable, _) = DurableEngine::open(EngineConfig::default(), config(&dir, 0)).unwrap();
    let mut cmds = commands(4, 2);
    cmds[1].header.seq = 7;
    let mut sink = Vec::new();
    durable.process(&cmds[0], &mut sink).unwrap();
    let n = sink.len();
    assert!(matches!(
        durable.process(&cmds[1], &mut sink),
        Err(journal::DurableError::SeqOutOfOrder { expected: 2, found: 7 })
    ));
    assert_eq!(sink.len(), n);
    assert_eq!(durable.next_command_seq(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_second_writer_on_the_same_directory_is_refused_until_the_first_is_gone() {
    let dir = temp_dir("lock");
    let (first, _) = DurableEngine::open(EngineConfig::default(), config(&dir, 0)).unwrap();
    match DurableEngine::open(EngineConfig::default(), config(&dir, 0)) {
        Err(e @ journal::DurableError::Locked { .. }) => {
            assert!(e.to_string().contains("in use by another writer"))
        }
        Err(e) => panic!("expected Locked, got {e}"),
        Ok(_) => panic!("two writers opened the same directory"),
    }
    drop(first);
    DurableEngine::open(EngineConfig::default(), config(&dir, 0)).expect("the lock is released on drop");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_snapshot_past_the_end_of_the_event_journal_is_skipped_and_its_events_regenerated() {
    // The event journal is written off the matching thread, so a crash can leave it behind a
    // snapshot. Recovery must not start from such a snapshot: it could not write the events
    // between the journal's end and the snapshot again.
    let dir = temp_dir("behind");
    let cmds = commands(5, 1_500);
    let keep_events;
    {
        let (mut durable, _) = DurableEngine::open(EngineConfig::default(), config(&dir, 0)).unwrap();
        let mut sink = Vec::new();
        for c in &cmds[..500] {
            durable.process(c, &mut sink).unwrap();
        }
        keep_events = sink.len() as u64;
        for c in &cmds[500..1_000] {
            durable.process(c, &mut sink).unwrap();
        }
        durable.snapshot_now().unwrap();
        for c in &cmds[1_000..] {
            durable.process(c, &mut sink).unwrap();
        }
        durable.close().unwrap();
    }
    // As a crash leaves it: the event journal holds only the first 500 commands' events. Rewrite
    // it that way (a fresh journal of those events) rather than editing segment bytes.
    let (_, reference_events) = reference(&cmds);
    std::fs::remove_dir_all(dir.join("events")).unwrap();
    {
        let (mut w, _) = journal::JournalWriter::open(
            dir.join("events"),
            JournalConfig { segment_size_bytes: 64 * 1024, ..JournalConfig::default() },
        )
        .unwrap();
        for e in &reference_events[..keep_events as usize] {
            w.append_with(journal::RecordKind::Event, e.seq, engine::codec::EVENT_ENCODED_LEN_MAX, |buf| {
                e.encode(buf)
            })
            .unwrap();
        }
    }

    let (durable, recovery) = DurableEngine::open(EngineConfig::default(), config(&dir, 0)).unwrap();
    assert_eq!(recovery.snapshot_seq, None, "the snapshot at 1000 is past the event journal's end");
    assert_eq!(recovery.snapshots_skipped.len(), 1, "{:?}", recovery.snapshots_skipped);
    assert!(
        recovery.snapshots_skipped[0].contains(&format!("event journal ends at event {keep_events}")),
        "{:?}",
        recovery.snapshots_skipped
    );
    assert_eq!(recovery.events_verified, keep_events);
    assert_eq!(recovery.events_regenerated as usize, reference_events.len() - keep_events as usize);
    let (reference_engine, _) = reference(&cmds);
    assert_same_books(durable.engine(), &reference_engine);
    durable.close().unwrap();
    let events: Vec<Event> = journal::JournalReader::open_from_start(dir.join("events"))
        .unwrap()
        .map(|r| Event::decode(&r.unwrap().payload).unwrap())
        .collect();
    assert_eq!(events, reference_events, "the event journal is whole again");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_journal_write_failure_stops_the_engine_and_the_host_sees_why() {
    for (event_thread, derive_events) in [(false, false), (true, false), (false, true)] {
        journal_write_failure_stops_the_engine(event_thread, derive_events);
    }
}

fn journal_write_failure_stops_the_engine(event_thread: bool, derive_events: bool) {
    let dir = temp_dir(&format!("fail-{event_thread}-{derive_events}"));
    let cmds = commands(6, 20_000);
    let (mut durable, _) = DurableEngine::open(
        EngineConfig::default(),
        DurableConfig { event_thread, derive_events, ..config(&dir, 0) },
    )
    .unwrap();
    let health = durable.health();
    let mut sink = Vec::new();
    for c in &cmds[..100] {
        durable.process(c, &mut sink).unwrap();
    }
    assert_eq!(health.failure(), None);
    // The data directory disappears under the venue: the next segment cannot be put in place.
    // The spare segments are made first, so no helper creates a file while it goes.
    durable.wait_background().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let mut failed_at = None;
    for (i, c) in cmds[100..].iter().enumerate() {
        // The runner's path: no error return, the failure goes to the shared health.
        engine::Processor::process(&mut durable, c, &mut sink);
        if health.is_failed() {
            failed_at = Some(100 + i);
            break;
        }
    }
    let failed_at = failed_at.expect("a journal without its directory must fail at the next segment");
    let message = health.failure().unwrap();
    assert!(message.contains("journal") && message.contains("No such file"), "{message}");
    // Nothing more is processed or forwarded, and the caller that can see errors is told why.
    let n = sink.len();
    match durable.process(&cmds[failed_at + 1], &mut sink) {
        Err(journal::DurableError::Stopped(why)) => assert_eq!(why, message),
        other => panic!("expected Stopped, got {other:?}"),
    }
    assert_eq!(sink.len(), n);
    assert!(matches!(durable.close(), Err(journal::DurableError::Stopped(_))));
}

#[test]
fn restart_reads_only_the_segments_past_the_snapshot() {
    let dir = temp_dir("covered");
    let cmds = commands(7, 3_000);
    {
        let (mut durable, _) = DurableEngine::open(EngineConfig::default(), config(&dir, 0)).unwrap();
        let mut sink = Vec::new();
        for (i, c) in cmds.iter().enumerate() {
            durable.process(c, &mut sink).unwrap();
            if i + 1 == 2_500 {
                durable.snapshot_now().unwrap();
            }
        }
        durable.close().unwrap();
    }
    let (durable, recovery) = DurableEngine::open(EngineConfig::default(), config(&dir, 0)).unwrap();
    assert_eq!(recovery.snapshot_seq, Some(2_500));
    assert!(recovery.commands.segments_not_scanned > 0, "{:?}", recovery.commands);
    assert!(recovery.events.segments_not_scanned > 0, "{:?}", recovery.events);
    assert!(recovery.commands.segments_not_scanned < recovery.commands.segments);
    assert_eq!(recovery.commands.last_seq, Some(3_000));
    let (reference_engine, reference_events) = reference(&cmds);
    assert_eq!(recovery.events.last_seq, Some(reference_events.len() as u64));
    assert_same_books(durable.engine(), &reference_engine);
    drop(durable);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A batch whose last command sweeps many levels: its events fill several event frames while
/// the batch's commands are still staged. Each full event frame must publish the staged
/// commands first, or a crash right then would leave events whose commands were never
/// journaled (and recovery would refuse the directory).
#[test]
fn a_sweep_that_fills_event_frames_mid_batch_publishes_its_commands_first() {
    let dir = temp_dir("sweep");
    let symbol = SymbolId(0);
    let mut cmds: Vec<Command> = (1..=120u64)
        .map(|seq| {
            let id = ClOrdId::from_str(&format!("s{seq}")).unwrap();
            let sell =
                NewOrder::limit(AccountId(1), symbol, id, Side::Sell, (100 + seq as i64) * 1_000_000, 1);
            Command { header: CommandHeader { seq, ts: seq }, kind: CommandKind::New(sell) }
        })
        .collect();
    let sweep = NewOrder::limit(
        AccountId(2),
        symbol,
        ClOrdId::from_str("sweep").unwrap(),
        Side::Buy,
        1_000 * 1_000_000,
        120,
    );
    cmds.push(Command { header: CommandHeader { seq: 121, ts: 121 }, kind: CommandKind::New(sweep) });
    let (_, want) = reference(&cmds);
    let (mut durable, _) = DurableEngine::open(EngineConfig::default(), config(&dir, 0)).unwrap();
    let mut got = Vec::new();
    // The resting orders in batches of one; the sweep in a batch with a few before it.
    for c in &cmds[..115] {
        durable.process(c, &mut got).unwrap();
    }
    let published_before = durable.commands_progress().written_seq();
    assert_eq!(published_before, 115);
    // What the sink has seen when each event arrives, against what the journals show.
    struct Watch<'a> {
        events: &'a mut Vec<Event>,
        progress: (journal::JournalProgress, journal::JournalProgress),
        checked: usize,
    }
    impl engine::EventSink for Watch<'_> {
        fn event(&mut self, event: &Event) {
            let (commands, events) = (&self.progress.0, &self.progress.1);
            // Every journaled event belongs to a journaled command: events of command 121
            // are in the event journal only once command 121 is in the command journal.
            if events.written_seq() > 0 && events.written_seq() >= event.seq.saturating_sub(1) {
                let last_journaled = &self.events[events.written_seq() as usize - 1];
                assert!(
                    last_journaled.command_seq <= commands.written_seq(),
                    "event {} (command {}) journaled before its command (command journal at {})",
                    last_journaled.seq,
                    last_journaled.command_seq,
                    commands.written_seq()
                );
                self.checked += 1;
            }
            self.events.push(*event);
        }
    }
    let events_before = got.len() as u64;
    let progress = (durable.commands_progress(), durable.events_progress());
    let mut watch = Watch { events: &mut got, progress, checked: 0 };
    for c in &cmds[115..] {
        durable.process_staged(c, &mut watch).unwrap();
    }
    let checked = watch.checked;
    let events_written = durable.events_progress().written_seq();
    assert!(events_written > events_before, "event frames filled and were published mid-batch");
    assert_eq!(durable.commands_progress().written_seq(), 121, "published with the full event frames");
    assert!(checked > 0);
    durable.publish_batch();
    assert_eq!(got, want);
    drop(durable);
    let (durable, recovery) = DurableEngine::open(EngineConfig::default(), config(&dir, 0)).unwrap();
    assert_eq!((recovery.events_regenerated, durable.engine().next_event_seq()), (0, want.len() as u64 + 1));
    // Closed first: its helper threads may still be making spare segments in the directory.
    drop(durable);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A journal directory as format version 2 wrote it: one segment per journal, one record per
/// payload (no entry prefix, bytes 18..24 of the header zero).
fn write_v2_segment(dir: &std::path::Path, kind: u16, payloads: &[Vec<u8>]) {
    write_old_segment(dir, 2, kind, payloads)
}

/// A journal directory as format version `version` (2 or 3) wrote it: one segment per journal,
/// one entry per record (version 3: a frame of one length-prefixed entry).
fn write_old_segment(dir: &std::path::Path, version: u32, kind: u16, payloads: &[Vec<u8>]) {
    const SIZE: usize = 1 << 20;
    std::fs::create_dir_all(dir).unwrap();
    let mut f = vec![0u8; SIZE];
    f[0..8].copy_from_slice(b"XJOURNL\0");
    f[8..12].copy_from_slice(&version.to_le_bytes());
    f[12..16].copy_from_slice(&64u32.to_le_bytes());
    f[16..24].copy_from_slice(&1u64.to_le_bytes());
    f[24..32].copy_from_slice(&(SIZE as u64).to_le_bytes());
    let crc = crc32c::crc32c(&f[..32]);
    f[32..36].copy_from_slice(&crc.to_le_bytes());
    let mut at = 64;
    for (i, payload) in payloads.iter().enumerate() {
        let prefix = if version == 2 { 0 } else { 2 };
        let len = 24 + prefix + payload.len();
        f[at..at + 4].copy_from_slice(&(len as u32).to_le_bytes());
        f[at + 8..at + 16].copy_from_slice(&(i as u64 + 1).to_le_bytes());
        f[at + 16..at + 18].copy_from_slice(&kind.to_le_bytes());
        if version != 2 {
            f[at + 18..at + 20].copy_from_slice(&1u16.to_le_bytes());
            f[at + 24..at + 26].copy_from_slice(&(payload.len() as u16).to_le_bytes());
        }
        f[at + 24 + prefix..at + len].copy_from_slice(payload);
        let crc = crc32c::crc32c(&f[at + 8..at + len]);
        f[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
        at += len.div_ceil(8) * 8;
    }
    std::fs::write(dir.join(journal::segment_file_name(1)), &f).unwrap();
}

/// A data directory written by the version 2 build opens (every event checked against its old
/// event journal), takes new commands into version 3 segments, and reopens to the same books.
#[test]
fn a_data_directory_of_format_version_2_recovers_and_goes_on() {
    let dir = temp_dir("v2-dir");
    let cmds = commands(11, 1_200);
    let (old_part, new_part) = cmds.split_at(800);
    let (_, old_events) = reference(old_part);
    let encode_all = |n: usize, enc: &dyn Fn(usize, &mut [u8]) -> usize| {
        (0..n)
            .map(|i| {
                let mut buf = [0u8; 256];
                let len = enc(i, &mut buf);
                buf[..len].to_vec()
            })
            .collect::<Vec<_>>()
    };
    let command_payloads = encode_all(old_part.len(), &|i, buf| old_part[i].encode(buf));
    let event_payloads = encode_all(old_events.len(), &|i, buf| old_events[i].encode(buf));
    write_v2_segment(&dir.join("commands"), 1, &command_payloads);
    write_v2_segment(&dir.join("events"), 2, &event_payloads);

    let (want_engine, want) = reference(&cmds);
    {
        let (mut durable, recovery) = DurableEngine::open(EngineConfig::default(), config(&dir, 0)).unwrap();
        assert_eq!((recovery.commands_replayed, recovery.events_verified), (800, old_events.len() as u64));
        let mut got = Vec::new();
        for c in new_part {
            durable.process(c, &mut got).unwrap();
        }
        assert_eq!(got, want[old_events.len()..]);
        durable.close().unwrap();
    }
    let (durable, recovery) = DurableEngine::open(EngineConfig::default(), config(&dir, 0)).unwrap();
    assert_eq!(recovery.events_verified, want.len() as u64);
    assert_same_books(durable.engine(), &want_engine);
    // Closed first: its helper threads may still be making spare segments in the directory.
    drop(durable);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A data directory written by the version 3 build (commands in `engine::codec`'s variable
/// layout) opens with every event checked, takes new commands into version 4 segments (fixed
/// layout), and reopens to the same books; so does one whose events are then derived.
#[test]
fn a_data_directory_of_format_version_3_recovers_and_goes_on_in_version_4() {
    for derive_events in [false, true] {
        let dir = temp_dir(&format!("v3-dir-{derive_events}"));
        let cmds = commands(12, 1_200);
        let (old_part, new_part) = cmds.split_at(700);
        let (_, old_events) = reference(old_part);
        let encode = |enc: &dyn Fn(&mut [u8]) -> usize| {
            let mut buf = [0u8; 256];
            let len = enc(&mut buf);
            buf[..len].to_vec()
        };
        let command_payloads: Vec<_> = old_part.iter().map(|c| encode(&|b| c.encode(b))).collect();
        let event_payloads: Vec<_> = old_events.iter().map(|e| encode(&|b| e.encode(b))).collect();
        write_old_segment(&dir.join("commands"), 3, 1, &command_payloads);
        write_old_segment(&dir.join("events"), 3, 2, &event_payloads);

        let (want_engine, want) = reference(&cmds);
        let config = DurableConfig { derive_events, ..config(&dir, 0) };
        {
            let (mut durable, recovery) =
                DurableEngine::open(EngineConfig::default(), config.clone()).unwrap();
            assert_eq!(
                (recovery.commands_replayed, recovery.events_verified),
                (700, old_events.len() as u64)
            );
            let mut got = Vec::new();
            for c in new_part {
                durable.process(c, &mut got).unwrap();
            }
            assert_eq!(got, want[old_events.len()..]);
            durable.close().unwrap();
        }
        // The old segment is sealed and kept; the new commands are in a version 4 segment, in
        // the fixed layout (tag byte with the high bit set).
        let version_of = |path: std::path::PathBuf| {
            u32::from_le_bytes(std::fs::read(path).unwrap()[8..12].try_into().unwrap())
        };
        let commands = dir.join("commands");
        assert_eq!(version_of(commands.join(journal::segment_file_name(1))), 3);
        assert_eq!(
            version_of(commands.join(journal::segment_file_name(701))),
            journal::SEGMENT_FORMAT_VERSION
        );
        let mut reader = journal::JournalReader::open(&commands, 701).unwrap();
        let record = reader.next_record().unwrap().unwrap();
        assert_eq!(record.payload[0] & 0x80, 0x80, "a new command is in the fixed layout");
        assert_eq!(Command::decode(record.payload).unwrap(), new_part[0]);
        let (durable, recovery) = DurableEngine::open(EngineConfig::default(), config).unwrap();
        assert_eq!(recovery.events_verified, want.len() as u64);
        assert_same_books(durable.engine(), &want_engine);
        drop(durable);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// With events derived off the matching thread, the event journal ends up holding exactly the
/// live run's events, and a command journal damaged inside a fixed-layout entry is refused on
/// open naming the segment file and the frame's offset.
#[test]
fn derived_events_equal_the_live_run_and_a_damaged_command_frame_is_named() {
    let dir = temp_dir("derived");
    let cmds = commands(13, 4_000);
    let (want_engine, want) = reference(&cmds);
    let config = DurableConfig { derive_events: true, ..config(&dir, 1_000) };
    {
        let (mut durable, _) = DurableEngine::open(EngineConfig::default(), config.clone()).unwrap();
        // The deriver tells a reader (market data's doorbell) after writing events.
        let rung = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        durable.on_events_journaled({
            let rung = rung.clone();
            move || {
                rung.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        });
        let mut got = Vec::new();
        for chunk in cmds.chunks(37) {
            engine::Processor::process_batch(&mut durable, chunk, &mut got);
            engine::Processor::end_batch(&mut durable);
        }
        assert_eq!(got, want, "the matching engine's own events are the live run's");
        durable.flush_events().unwrap();
        assert_eq!(durable.events_written_seq(), want.len() as u64);
        assert!(rung.load(std::sync::atomic::Ordering::Relaxed) > 0, "the hook was never called");
        durable.close().unwrap();
    }
    let mut journaled = Vec::new();
    for record in journal::JournalReader::open_from_start(dir.join("events")).unwrap() {
        journaled.push(Event::decode(&record.unwrap().payload).unwrap());
    }
    assert_eq!(journaled, want, "the derived event journal is the live run's events");
    let (durable, recovery) = DurableEngine::open(EngineConfig::default(), config.clone()).unwrap();
    assert_same_books(durable.engine(), &want_engine);
    assert_eq!(recovery.events_regenerated, 0);
    drop(durable);

    // Flip one byte inside the first command entry of the last segment's first frame.
    let mut segments: Vec<_> = std::fs::read_dir(dir.join("commands"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "journal"))
        .collect();
    segments.sort();
    let first = segments[0].clone();
    let mut bytes = std::fs::read(&first).unwrap();
    let at = journal::SEGMENT_HEADER_LEN;
    bytes[at + journal::RECORD_HEADER_LEN + journal::ENTRY_HEADER_LEN + 30] ^= 0x40;
    std::fs::write(&first, &bytes).unwrap();
    // Restart reads only past the newest snapshot: remove the snapshots so the damage is read.
    std::fs::remove_dir_all(dir.join("snapshots")).unwrap();
    let err = DurableEngine::open(EngineConfig::default(), config).err().expect("damage refused");
    let text = err.to_string();
    assert!(text.contains(&first.display().to_string()) && text.contains(&format!("offset {at}")), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}
