//! The journal against damage: bit flips, torn and truncated tails, holes, missing segments,
//! foreign files; and a tailer following a writer across segment rolls.
//!
//! Every test builds its journal in its own temporary directory with 64 KiB segments, so a few
//! thousand records span several segment files. No test depends on timing: the one with two
//! threads waits for data with a generous bounded deadline.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use engine::codec::{COMMAND_ENCODED_LEN_MAX, EVENT_ENCODED_LEN_MAX};
use engine::{
    AccountId, ClOrdId, Command, CommandHeader, CommandKind, Event, EventKind, NewOrder, OrderId, Price,
    Side, SymbolId,
};
use journal::{
    segment_file_name, JournalConfig, JournalError, JournalReader, JournalWriter, RecordFault, RecordKind,
    SyncPolicy, Tailer, ENTRY_HEADER_LEN, RECORD_HEADER_LEN, SEGMENT_FORMAT_VERSION, SEGMENT_HEADER_LEN,
};

const SEGMENT_BYTES: usize = 64 * 1024;

/// A directory removed when the test ends (kept when it fails, for a look).
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("engine-journal-corruption-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

fn config() -> JournalConfig {
    JournalConfig { segment_size_bytes: SEGMENT_BYTES, sync: SyncPolicy::PageCache, first_seq: 1 }
}

/// A fixed-size payload that names its seq, so every record has the same length (and the tests
/// can compute offsets) and a misplaced record is visible.
fn payload(seq: u64) -> [u8; 40] {
    let mut p = [0u8; 40];
    for (i, chunk) in p.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&(seq * 10 + i as u64).to_le_bytes());
    }
    p
}

/// Writes records 1..=count with [`payload`] and closes the writer.
fn write_journal(dir: &Path, count: u64) {
    let (mut w, _) = JournalWriter::open(dir, config()).unwrap();
    for seq in 1..=count {
        w.append(RecordKind::Event, seq, &payload(seq)).unwrap();
    }
    w.close().unwrap();
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "journal"))
        .collect();
    files.sort();
    files
}

/// Record offsets of a segment file, found by an independent walk of the length words (the
/// tests' own reading of the layout, to pair with the journal's).
fn record_offsets(file: &Path) -> Vec<usize> {
    let bytes = fs::read(file).unwrap();
    let mut offsets = Vec::new();
    let mut at = SEGMENT_HEADER_LEN;
    while at + 4 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        if len == 0 {
            break;
        }
        let kind = u16::from_le_bytes(bytes[at + 16..at + 18].try_into().unwrap());
        if kind != 0xFFFF {
            offsets.push(at);
        }
        at += (len + 7) & !7;
    }
    offsets
}

fn patch(file: &Path, at: usize, f: impl FnOnce(&mut [u8])) {
    let mut bytes = fs::read(file).unwrap();
    f(&mut bytes[at..]);
    fs::write(file, bytes).unwrap();
}

fn read_all(dir: &Path) -> Result<Vec<u64>, JournalError> {
    let mut seqs = Vec::new();
    let mut r = JournalReader::open_from_start(dir)?;
    while let Some(rec) = r.next_record()? {
        assert_eq!(rec.payload, payload(rec.seq), "payload of seq {}", rec.seq);
        seqs.push(rec.seq);
    }
    Ok(seqs)
}

fn command(seq: u64) -> Command {
    let id = ClOrdId::from_str(&format!("ord-{seq}")).unwrap();
    let mut order =
        NewOrder::limit(AccountId(seq as u32 % 7), SymbolId(1), id, Side::Buy, 100 + seq as i64, 10);
    if seq.is_multiple_of(3) {
        order.display_qty = Some(2);
    }
    Command { header: CommandHeader { seq, ts: seq * 1000 }, kind: CommandKind::New(order) }
}

fn event(seq: u64) -> Event {
    let maker_id = ClOrdId::from_str("maker-with-a-rather-long-id-0001").unwrap();
    let taker_id = ClOrdId::from_str(&format!("t{seq}")).unwrap();
    Event {
        seq,
        command_seq: seq / 2,
        ts: seq * 1000,
        kind: EventKind::Trade {
            symbol: SymbolId(2),
            price: Price(seq as i64),
            qty: 5,
            maker_account: AccountId(1),
            maker_id,
            maker_order_id: OrderId(seq),
            maker_leaves_qty: 0,
            taker_account: AccountId(2),
            taker_id,
            taker_order_id: OrderId(seq + 1),
            taker_leaves_qty: 3,
            aggressor: Side::Sell,
        },
    }
}

#[test]
fn many_records_across_segments_read_back_equal() {
    let dir = TempDir::new("roundtrip");
    let count = 3_000u64;
    let (mut w, report) = JournalWriter::open(dir.path(), config()).unwrap();
    assert_eq!(report.next_seq(), 1);
    for seq in 1..=count {
        // Commands and events alternate; commands are encoded straight into the mapping.
        if seq % 2 == 1 {
            let cmd = command(seq);
            w.append_with(RecordKind::Command, seq, COMMAND_ENCODED_LEN_MAX, |buf| cmd.encode(buf)).unwrap();
        } else {
            let mut buf = [0u8; EVENT_ENCODED_LEN_MAX];
            let len = event(seq).encode(&mut buf);
            w.append(RecordKind::Event, seq, &buf[..len]).unwrap();
        }
    }
    assert_eq!(w.written_seq(), count);
    w.close().unwrap();
    let files = segments(dir.path());
    assert!(files.len() >= 3, "expected several segments, got {}", files.len());
    assert_eq!(files[0].file_name().unwrap().to_str().unwrap(), segment_file_name(1));

    let mut reader = JournalReader::open(dir.path(), 1).unwrap();
    let mut seq = 0;
    while let Some(rec) = reader.next_record().unwrap() {
        seq += 1;
        assert_eq!(rec.seq, seq);
        if seq % 2 == 1 {
            assert_eq!(rec.kind, RecordKind::Command);
            assert_eq!(Command::decode(rec.payload).unwrap(), command(seq));
        } else {
            assert_eq!(rec.kind, RecordKind::Event);
            assert_eq!(Event::decode(rec.payload).unwrap(), event(seq));
        }
    }
    assert_eq!(seq, count);

    // Reopening for writing finds everything intact and resumes numbering.
    let (mut w, report) = JournalWriter::open(dir.path(), config()).unwrap();
    assert_eq!((report.segments, report.records), (files.len(), count));
    assert_eq!((report.last_seq, report.torn_tail), (Some(count), None));
    w.append(RecordKind::Event, count + 1, b"after reopen").unwrap();
}

#[test]
fn reader_seeks_to_the_segment_holding_the_start_seq() {
    let dir = TempDir::new("seek");
    write_journal(dir.path(), 4_000);
    let files = segments(dir.path());
    assert!(files.len() >= 3);
    // The third segment's first seq, and one past it.
    let third: u64 = files[2].file_stem().unwrap().to_str().unwrap().parse().unwrap();
    for from in [third, third + 1, 4_000] {
        let seqs: Vec<u64> = JournalReader::open(dir.path(), from).unwrap().map(|r| r.unwrap().seq).collect();
        assert_eq!(seqs, (from..=4_000).collect::<Vec<_>>());
    }
    assert!(JournalReader::open(dir.path(), 4_001).unwrap().next_record().unwrap().is_none());
}

#[test]
fn flipped_bit_in_the_middle_record_is_an_error_naming_segment_and_offset() {
    let dir = TempDir::new("bitflip");
    write_journal(dir.path(), 3_000);
    let files = segments(dir.path());
    let middle_file = &files[files.len() / 2];
    let offsets = record_offsets(middle_file);
    let at = offsets[offsets.len() / 2];
    patch(middle_file, at + RECORD_HEADER_LEN + 5, |b| b[0] ^= 0x10);

    let err = JournalWriter::open(dir.path(), config()).unwrap_err();
    match &err {
        JournalError::Corrupt { segment, offset, fault: RecordFault::Crc { .. } } => {
            assert_eq!((segment, *offset), (middle_file, at as u64));
        }
        other => panic!("expected a CRC error, got {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains(middle_file.to_str().unwrap()) && text.contains(&format!("offset {at}")));

    // The reader returns every record before it, then the same error.
    let mut reader = JournalReader::open_from_start(dir.path()).unwrap();
    let mut last = 0;
    let err = loop {
        match reader.next_record() {
            Ok(Some(rec)) => last = rec.seq,
            Ok(None) => panic!("reader missed the corruption"),
            Err(e) => break e,
        }
    };
    assert!(matches!(err, JournalError::Corrupt { offset, .. } if offset == at as u64));
    let first_of_file: u64 = middle_file.file_stem().unwrap().to_str().unwrap().parse().unwrap();
    assert_eq!(last, first_of_file + offsets.len() as u64 / 2 - 1);
}

#[test]
fn segments_before_the_scan_start_are_not_read_at_open_but_their_readers_still_check() {
    let dir = TempDir::new("scanfrom");
    write_journal(dir.path(), 6_000);
    let files = segments(dir.path());
    assert!(files.len() >= 4, "the test needs several sealed segments");
    let second: u64 = files[1].file_stem().unwrap().to_str().unwrap().parse().unwrap();
    let third: u64 = files[2].file_stem().unwrap().to_str().unwrap().parse().unwrap();
    let offsets = record_offsets(&files[1]);
    let at = offsets[offsets.len() / 2];
    patch(&files[1], at + RECORD_HEADER_LEN + 5, |b| b[0] ^= 0x10);

    // Scanning from the first record of the third segment: the damaged second segment holds
    // only earlier records, so opening does not read it (nor the first).
    let (w, report) = JournalWriter::open_scanning_from(dir.path(), config(), third).unwrap();
    assert_eq!((report.segments_not_scanned, report.records, report.last_seq), (2, 6_000, Some(6_000)));
    assert_eq!(w.next_seq(), 6_001);
    drop(w);
    // One record further back and the second segment is read: the damage is found.
    let err = JournalWriter::open_scanning_from(dir.path(), config(), third - 1).unwrap_err();
    assert!(
        matches!(&err, JournalError::Corrupt { segment, offset, .. } if segment == &files[1] && *offset == at as u64)
    );
    // A reader of those records still checks them, naming the segment and offset.
    let mut reader = JournalReader::open(dir.path(), second).unwrap();
    let err = loop {
        match reader.next_record() {
            Ok(Some(_)) => {}
            Ok(None) => panic!("reader missed the corruption"),
            Err(e) => break e,
        }
    };
    assert!(matches!(err, JournalError::Corrupt { offset, .. } if offset == at as u64));
}

#[test]
fn corruption_in_the_last_segment_followed_by_valid_records_is_not_a_torn_tail() {
    let dir = TempDir::new("lastmiddle");
    write_journal(dir.path(), 1_000);
    let last = segments(dir.path()).pop().unwrap();
    let offsets = record_offsets(&last);
    assert!(offsets.len() > 10);
    let at = offsets[offsets.len() - 5];
    patch(&last, at + 9, |b| b[0] ^= 1); // inside the seq field
    let err = JournalWriter::open(dir.path(), config()).unwrap_err();
    assert!(
        matches!(&err, JournalError::Corrupt { segment, offset, .. } if *segment == last && *offset == at as u64),
        "{err:?}"
    );

    // A zeroed length word with valid records after it is a hole, not a tail.
    let dir = TempDir::new("hole");
    write_journal(dir.path(), 1_000);
    let last = segments(dir.path()).pop().unwrap();
    let offsets = record_offsets(&last);
    let at = offsets[offsets.len() - 5];
    patch(&last, at, |b| b[..4].fill(0));
    let err = JournalWriter::open(dir.path(), config()).unwrap_err();
    assert!(
        matches!(
            &err,
            JournalError::Corrupt { offset, fault: RecordFault::Hole(next), .. }
                if *offset == at as u64 && *next == offsets[offsets.len() - 4] as u64
        ),
        "{err:?}"
    );
    // The file is untouched by the failed open.
    assert_eq!(record_offsets(&last).len(), offsets.len() - 5);
}

#[test]
fn truncated_last_segment_is_recovered_with_a_report() {
    let dir = TempDir::new("truncated");
    write_journal(dir.path(), 1_000);
    let last = segments(dir.path()).pop().unwrap();
    let offsets = record_offsets(&last);
    let first_of_file: u64 = last.file_stem().unwrap().to_str().unwrap().parse().unwrap();
    let torn_at = offsets[offsets.len() - 1];
    // Cut the last record in half, as a crash during a file copy might.
    let cut = torn_at + 30;
    OpenOptions::new().write(true).open(&last).unwrap().set_len(cut as u64).unwrap();

    let (mut w, report) = JournalWriter::open(dir.path(), config()).unwrap();
    let torn = report.torn_tail.clone().expect("a torn tail");
    assert_eq!((torn.segment, torn.offset), (last.clone(), torn_at as u64));
    // Counted up to the last non-zero byte (the payload's high bytes are zero).
    assert!(torn.bytes_zeroed > 8 && torn.bytes_zeroed <= (cut - torn_at) as u64);
    assert!(matches!(torn.fault, Some(RecordFault::Crc { .. })));
    assert_eq!(report.truncated_file_len, Some(cut as u64));
    assert_eq!(report.last_seq, Some(999));
    assert_eq!(first_of_file + offsets.len() as u64 - 1, 1_000);
    assert_eq!(fs::metadata(&last).unwrap().len(), SEGMENT_BYTES as u64, "extended back");
    assert!(fs::read(&last).unwrap()[torn_at..].iter().all(|&b| b == 0), "tail zeroed");

    // Nothing after the tear: numbering resumes at the torn record's seq.
    assert!(matches!(
        w.append(RecordKind::Event, 1_001, &payload(1_001)),
        Err(JournalError::SeqOutOfOrder { expected: 1_000, found: 1_001 })
    ));
    for seq in 1_000..=1_200 {
        w.append(RecordKind::Event, seq, &payload(seq)).unwrap();
    }
    w.close().unwrap();
    assert_eq!(read_all(dir.path()).unwrap(), (1..=1_200).collect::<Vec<_>>());
}

#[test]
fn unpublished_partial_tail_is_zeroed_and_reported() {
    let dir = TempDir::new("partial");
    write_journal(dir.path(), 500);
    let last = segments(dir.path()).pop().unwrap();
    let offsets = record_offsets(&last);
    let torn_at = offsets[offsets.len() - 1];
    // A crash after the payload and header were written but before the length word was
    // published: the length word is zero, the rest of the record is there.
    patch(&last, torn_at, |b| b[..4].fill(0));
    let record_end = torn_at + RECORD_HEADER_LEN + payload(0).len();

    let (w, report) = JournalWriter::open(dir.path(), config()).unwrap();
    let torn = report.torn_tail.clone().expect("a torn tail");
    assert_eq!((torn.offset, torn.fault), (torn_at as u64, None));
    // Counted up to the last non-zero byte (the payload's high bytes are zero).
    assert!(torn.bytes_zeroed > 8 && torn.bytes_zeroed <= (record_end - torn_at) as u64);
    assert_eq!(report.last_seq, Some(499));
    drop(w);
    let bytes = fs::read(&last).unwrap();
    assert!(bytes[torn_at..].iter().all(|&b| b == 0), "tail zeroed");
    assert_eq!(read_all(dir.path()).unwrap(), (1..=499).collect::<Vec<_>>());

    // Reopening again finds a clean journal.
    let (_, report) = JournalWriter::open(dir.path(), config()).unwrap();
    assert_eq!((report.torn_tail, report.last_seq), (None, Some(499)));
}

#[test]
fn garbage_after_the_last_record_is_a_torn_tail() {
    let dir = TempDir::new("garbage-tail");
    write_journal(dir.path(), 300);
    let last = segments(dir.path()).pop().unwrap();
    let end = {
        let offsets = record_offsets(&last);
        offsets[offsets.len() - 1] + ((RECORD_HEADER_LEN + ENTRY_HEADER_LEN + payload(0).len() + 7) & !7)
    };
    // Half-written record: header fields and part of a payload, no length word.
    patch(&last, end + 4, |b| b[..50].fill(0xA5));
    let (_, report) = JournalWriter::open(dir.path(), config()).unwrap();
    let torn = report.torn_tail.expect("a torn tail");
    assert_eq!((torn.offset, torn.bytes_zeroed), (end as u64, 54));
    assert_eq!(report.last_seq, Some(300));
}

#[test]
fn deleted_middle_segment_is_an_error() {
    let dir = TempDir::new("missing");
    write_journal(dir.path(), 3_000);
    let files = segments(dir.path());
    assert!(files.len() >= 3);
    let missing_seq: u64 = files[1].file_stem().unwrap().to_str().unwrap().parse().unwrap();
    fs::remove_file(&files[1]).unwrap();

    let err = JournalWriter::open(dir.path(), config()).unwrap_err();
    match &err {
        JournalError::MissingSegment { expected, found } => {
            assert_eq!(*expected, missing_seq);
            assert_eq!(found.as_ref(), Some(&files[2]));
        }
        other => panic!("expected MissingSegment, got {other:?}"),
    }
    assert!(err.to_string().contains(&segment_file_name(missing_seq)));

    let mut reader = JournalReader::open_from_start(dir.path()).unwrap();
    let err = loop {
        match reader.next_record() {
            Ok(Some(_)) => {}
            Ok(None) => panic!("reader read past a missing segment"),
            Err(e) => break e,
        }
    };
    assert!(matches!(err, JournalError::MissingSegment { expected, .. } if expected == missing_seq));
}

#[test]
fn deleted_first_segments_move_the_start_of_the_journal() {
    let dir = TempDir::new("pruned");
    write_journal(dir.path(), 3_000);
    let files = segments(dir.path());
    fs::remove_file(&files[0]).unwrap();
    let start: u64 = files[1].file_stem().unwrap().to_str().unwrap().parse().unwrap();
    let (_, report) = JournalWriter::open(dir.path(), config()).unwrap();
    assert_eq!((report.first_seq, report.last_seq), (start, Some(3_000)));
    assert!(matches!(
        JournalReader::open(dir.path(), 1),
        Err(JournalError::SeqBeforeStart { seq: 1, first }) if first == start
    ));
    assert_eq!(read_all(dir.path()).unwrap(), (start..=3_000).collect::<Vec<_>>());
}

#[test]
fn foreign_files_are_ignored_and_reported_but_a_bad_segment_is_an_error() {
    let dir = TempDir::new("foreign");
    write_journal(dir.path(), 100);
    fs::write(dir.path().join("notes.txt"), b"not a segment").unwrap();
    fs::write(dir.path().join("1.journal"), b"short name: not a segment either").unwrap();
    let (_, report) = JournalWriter::open(dir.path(), config()).unwrap();
    assert_eq!(report.ignored_count, 2);
    assert!(report.ignored_files.contains(&dir.path().join("notes.txt")));
    assert_eq!(report.last_seq, Some(100));
    assert_eq!(read_all(dir.path()).unwrap().len(), 100);

    // Garbage under a segment's name is refused, naming the file.
    let dir = TempDir::new("bad-segment");
    let bogus = dir.path().join(segment_file_name(1));
    fs::write(&bogus, vec![0x5Au8; 8192]).unwrap();
    match JournalWriter::open(dir.path(), config()) {
        Err(JournalError::BadHeader { path, reason }) => {
            assert_eq!((path, reason), (bogus.clone(), "bad magic"));
        }
        other => panic!("expected BadHeader, got {other:?}"),
    }
    assert!(matches!(JournalReader::open_from_start(dir.path()), Err(JournalError::BadHeader { .. })));
}

#[test]
fn a_sealed_segment_without_successor_is_completed_on_open() {
    let dir = TempDir::new("sealed");
    write_journal(dir.path(), 3_000);
    // Crash between writing the end marker and installing the next segment: the newest file
    // is not there.
    let last = segments(dir.path()).pop().unwrap();
    let lost_from: u64 = last.file_stem().unwrap().to_str().unwrap().parse().unwrap();
    fs::remove_file(&last).unwrap();
    assert_eq!(read_all(dir.path()).unwrap(), (1..lost_from).collect::<Vec<_>>());

    let (mut w, report) = JournalWriter::open(dir.path(), config()).unwrap();
    assert_eq!(report.last_seq, Some(lost_from - 1));
    assert_eq!(report.created_segment, Some(last.clone()));
    w.append(RecordKind::Event, lost_from, &payload(lost_from)).unwrap();
    w.close().unwrap();
    assert_eq!(read_all(dir.path()).unwrap(), (1..=lost_from).collect::<Vec<_>>());
}

#[test]
fn tailer_in_another_thread_sees_every_record_in_order_across_rolls() {
    let dir = TempDir::new("tailer");
    let count = 5_000u64;
    // The tailer starts before the writer has created anything.
    let tail_dir = dir.path().to_path_buf();
    let tailer = std::thread::spawn(move || {
        let mut tailer = Tailer::open(&tail_dir, 1).unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut next = 1u64;
        while next <= count {
            match tailer.poll().unwrap() {
                Some(rec) => {
                    assert_eq!(rec.seq, next, "tailer out of order");
                    assert_eq!(rec.payload, payload(next));
                    next += 1;
                }
                None => {
                    assert!(Instant::now() < deadline, "tailer stuck at seq {next}");
                    std::thread::yield_now();
                }
            }
        }
        next - 1
    });
    let (mut w, _) = JournalWriter::open(dir.path(), config()).unwrap();
    for seq in 1..=count {
        w.append(RecordKind::Event, seq, &payload(seq)).unwrap();
        if seq % 512 == 0 {
            std::thread::yield_now(); // let the tailer catch up mid-segment now and then
        }
    }
    assert_eq!(tailer.join().unwrap(), count);
    assert!(segments(dir.path()).len() >= 4, "the writer rolled while tailed");
    w.close().unwrap();
}

#[test]
fn tailer_from_a_later_seq_skips_what_comes_before() {
    let dir = TempDir::new("tailer-from");
    write_journal(dir.path(), 2_000);
    let mut tailer = Tailer::open(dir.path(), 1_500).unwrap();
    let mut seen = Vec::new();
    while let Some(rec) = tailer.poll().unwrap() {
        seen.push(rec.seq);
    }
    assert_eq!(seen, (1_500..=2_000).collect::<Vec<_>>());
    // Nothing new: None, and again None, without error.
    assert!(tailer.poll().unwrap().is_none());
    let (mut w, _) = JournalWriter::open(dir.path(), config()).unwrap();
    w.append(RecordKind::Event, 2_001, &payload(2_001)).unwrap();
    assert_eq!(tailer.poll().unwrap().map(|r| r.seq), Some(2_001));
}

#[test]
fn tailer_waits_at_an_end_marker_until_the_next_segment_appears() {
    let dir = TempDir::new("tailer-marker");
    write_journal(dir.path(), 3_000);
    // The state between a roll's end marker and its rename: the newest segment is absent.
    let last = segments(dir.path()).pop().unwrap();
    let next: u64 = last.file_stem().unwrap().to_str().unwrap().parse().unwrap();
    fs::remove_file(&last).unwrap();

    let mut tailer = Tailer::open(dir.path(), 1).unwrap();
    let mut seen = 0;
    while let Some(rec) = tailer.poll().unwrap() {
        seen += 1;
        assert_eq!(rec.seq, seen);
    }
    assert_eq!(seen, next - 1);
    assert!(tailer.poll().unwrap().is_none(), "still waiting, no error");

    // The writer's open completes the roll; the tailer crosses into the new file.
    let (mut w, _) = JournalWriter::open(dir.path(), config()).unwrap();
    w.append(RecordKind::Event, next, &payload(next)).unwrap();
    let rec = tailer.poll().unwrap().expect("the record in the new segment");
    assert_eq!((rec.seq, rec.payload), (next, &payload(next)[..]));
}

#[test]
fn group_commit_durable_seq_is_visible_to_other_threads() {
    let dir = TempDir::new("group-commit");
    let cfg = JournalConfig { sync: SyncPolicy::GroupCommit, ..config() };
    let (mut w, _) = JournalWriter::open(dir.path(), cfg).unwrap();
    let progress = w.progress();
    let acker = std::thread::spawn(move || {
        // Acknowledge only what is durable; sync from this thread, as a journal thread would.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let durable = progress.sync().unwrap();
            assert!(durable <= progress.written_seq());
            if durable == 2_000 {
                return durable;
            }
            assert!(Instant::now() < deadline, "durable seq stuck at {durable}");
            std::thread::yield_now();
        }
    });
    for seq in 1..=2_000 {
        w.append(RecordKind::Command, seq, &payload(seq)).unwrap();
    }
    assert_eq!(acker.join().unwrap(), 2_000);
    assert_eq!(w.durable_seq(), 2_000);
    w.close().unwrap();
}

/// Writes records 1..=count staged `per_frame` at a time (frames of several entries, as the
/// durable engine writes a batch), and closes the writer.
fn write_frames(dir: &Path, count: u64, per_frame: u64) {
    let (mut w, _) = JournalWriter::open(dir, config()).unwrap();
    for seq in 1..=count {
        w.stage_with(RecordKind::Event, seq, 40, |buf| {
            buf.copy_from_slice(&payload(seq));
            40
        })
        .unwrap();
        if seq % per_frame == 0 {
            w.publish_staged();
        }
    }
    w.close().unwrap();
}

#[test]
fn staged_entries_are_invisible_until_published_then_read_back_one_by_one() {
    let dir = TempDir::new("staged");
    let (mut w, _) = JournalWriter::open(dir.path(), config()).unwrap();
    let progress = w.progress();
    for seq in 1..=5 {
        w.stage_with(RecordKind::Event, seq, 40, |buf| {
            buf.copy_from_slice(&payload(seq));
            40
        })
        .unwrap();
    }
    assert_eq!((w.next_seq(), w.staged(), progress.written_seq(), progress.durable_seq()), (6, 5, 0, 0));
    let mut tailer = Tailer::open(dir.path(), 1).unwrap();
    assert!(tailer.poll().unwrap().is_none(), "a staged frame is not visible");
    w.publish_staged();
    assert_eq!((w.staged(), progress.written_seq(), progress.durable_seq()), (0, 5, 5));
    for seq in 1..=5 {
        let rec = tailer.poll().unwrap().expect("published");
        assert_eq!((rec.seq, rec.payload), (seq, &payload(seq)[..]));
    }
    assert!(tailer.poll().unwrap().is_none());
    // One frame: one record header for the five entries.
    let last = segments(dir.path()).pop().unwrap();
    assert_eq!(record_offsets(&last).len(), 1);
    w.close().unwrap();
}

#[test]
fn frames_of_many_entries_roll_across_segments_and_reopen() {
    let dir = TempDir::new("frames");
    // 70 entries of 42 bytes do not fit one 4 KiB frame: frames are also published when full.
    write_frames(dir.path(), 5_000, 70);
    assert!(segments(dir.path()).len() > 2);
    assert_eq!(read_all(dir.path()).unwrap(), (1..=5_000).collect::<Vec<_>>());
    let (_, report) = JournalWriter::open(dir.path(), config()).unwrap();
    assert_eq!((report.records, report.last_seq, report.torn_tail), (5_000, Some(5_000), None));
    // A reader or tailer may start in the middle of a frame.
    let mut r = JournalReader::open(dir.path(), 4_321).unwrap();
    assert_eq!(r.next_record().unwrap().unwrap().seq, 4_321);
    let mut t = Tailer::open(dir.path(), 4_999).unwrap();
    assert_eq!(t.poll().unwrap().unwrap().seq, 4_999);
}

#[test]
fn a_frame_cut_in_the_middle_is_a_torn_tail_and_loses_the_whole_frame() {
    let dir = TempDir::new("frame-cut");
    write_frames(dir.path(), 1_000, 25);
    let last = segments(dir.path()).pop().unwrap();
    let offsets = record_offsets(&last);
    let torn_at = offsets[offsets.len() - 1];
    let first_of_file: u64 = last.file_stem().unwrap().to_str().unwrap().parse().unwrap();
    // Cut the last frame (25 entries) in the middle of its tenth entry.
    let cut = torn_at + RECORD_HEADER_LEN + 9 * (ENTRY_HEADER_LEN + 40) + 20;
    OpenOptions::new().write(true).open(&last).unwrap().set_len(cut as u64).unwrap();

    let (w, report) = JournalWriter::open(dir.path(), config()).unwrap();
    let torn = report.torn_tail.clone().expect("a torn tail");
    assert_eq!((torn.segment, torn.offset), (last.clone(), torn_at as u64));
    assert!(matches!(torn.fault, Some(RecordFault::PastEnd(_)) | Some(RecordFault::Crc { .. })));
    // The frame goes as a whole: no entry of a frame is read without its CRC.
    assert_eq!(report.last_seq, Some(975));
    assert!(first_of_file <= 976);
    drop(w);
    assert_eq!(read_all(dir.path()).unwrap(), (1..=975).collect::<Vec<_>>());
}

#[test]
fn a_flipped_byte_inside_a_frame_names_the_segment_and_the_frame_offset() {
    let dir = TempDir::new("frame-flip");
    write_frames(dir.path(), 3_000, 30);
    let files = segments(dir.path());
    let middle_file = &files[files.len() / 2];
    let offsets = record_offsets(middle_file);
    let at = offsets[offsets.len() / 2];
    let frame_seq = u64::from_le_bytes(fs::read(middle_file).unwrap()[at + 8..at + 16].try_into().unwrap());
    // A byte of the seventeenth entry of that frame.
    patch(middle_file, at + RECORD_HEADER_LEN + 16 * (ENTRY_HEADER_LEN + 40) + 7, |b| b[0] ^= 0x01);

    let err = JournalWriter::open(dir.path(), config()).unwrap_err();
    match &err {
        JournalError::Corrupt { segment, offset, fault: RecordFault::Crc { .. } } => {
            assert_eq!((segment, *offset), (middle_file, at as u64));
        }
        other => panic!("expected a CRC error, got {other:?}"),
    }
    assert!(err.to_string().contains(&format!("offset {at}")));
    // The reader hands out every entry of the frames before it, none of the damaged frame.
    let mut reader = JournalReader::open_from_start(dir.path()).unwrap();
    let mut last = 0;
    let err = loop {
        match reader.next_record() {
            Ok(Some(rec)) => last = rec.seq,
            Ok(None) => panic!("reader missed the corruption"),
            Err(e) => break e,
        }
    };
    assert!(matches!(err, JournalError::Corrupt { offset, .. } if offset == at as u64));
    assert_eq!(last, frame_seq - 1);
}

#[test]
fn a_segment_of_another_format_version_is_refused_naming_the_versions() {
    // 1: older than any this build reads; 5: newer than this build (version 4).
    for version in [1u32, SEGMENT_FORMAT_VERSION + 1] {
        let dir = TempDir::new(&format!("version-{version}"));
        write_journal(dir.path(), 10);
        let first = segments(dir.path()).remove(0);
        // Rewrite the header as that version would have it (checksum included), so the only
        // thing wrong is the version.
        patch(&first, 0, |h| {
            h[8..12].copy_from_slice(&version.to_le_bytes());
            let crc = crc32c::crc32c(&h[..32]);
            h[32..36].copy_from_slice(&crc.to_le_bytes());
        });
        for err in [
            JournalWriter::open(dir.path(), config()).unwrap_err(),
            JournalReader::open_from_start(dir.path()).unwrap_err(),
        ] {
            match &err {
                JournalError::FormatVersion { path, found, expected } => {
                    assert_eq!((path, *found, *expected), (&first, version, SEGMENT_FORMAT_VERSION));
                }
                other => panic!("expected a format version error, got {other:?}"),
            }
            let text = err.to_string();
            assert!(
                text.contains(&format!("format version {version}")) && text.contains("versions 2 to 4"),
                "{text}"
            );
        }
    }
}

/// A journal of `count` records as format version 2 wrote it (one unprefixed payload per
/// record, bytes 18..24 of the header zero), byte by byte: one segment, records of
/// [`payload`].
fn write_v2_journal(dir: &Path, count: u64) -> PathBuf {
    let mut f = vec![0u8; SEGMENT_BYTES];
    f[0..8].copy_from_slice(b"XJOURNL\0");
    f[8..12].copy_from_slice(&2u32.to_le_bytes());
    f[12..16].copy_from_slice(&64u32.to_le_bytes());
    f[16..24].copy_from_slice(&1u64.to_le_bytes());
    f[24..32].copy_from_slice(&(SEGMENT_BYTES as u64).to_le_bytes());
    let crc = crc32c::crc32c(&f[..32]);
    f[32..36].copy_from_slice(&crc.to_le_bytes());
    let mut at = SEGMENT_HEADER_LEN;
    for seq in 1..=count {
        let len = RECORD_HEADER_LEN + 40;
        f[at..at + 4].copy_from_slice(&(len as u32).to_le_bytes());
        f[at + 8..at + 16].copy_from_slice(&seq.to_le_bytes());
        f[at + 16..at + 18].copy_from_slice(&RecordKind::Event.as_u16().to_le_bytes());
        f[at + RECORD_HEADER_LEN..at + len].copy_from_slice(&payload(seq));
        let crc = crc32c::crc32c(&f[at + 8..at + len]);
        f[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
        at += len; // 64: already aligned
    }
    let path = dir.join(segment_file_name(1));
    fs::write(&path, &f).unwrap();
    path
}

#[test]
fn a_version_2_journal_is_read_and_continued_in_a_version_3_segment() {
    let dir = TempDir::new("v2");
    let old = write_v2_journal(dir.path(), 100);
    assert_eq!(read_all(dir.path()).unwrap(), (1..=100).collect::<Vec<_>>());
    let mut t = Tailer::open(dir.path(), 57).unwrap();
    assert_eq!(t.poll().unwrap().unwrap().payload, payload(57));

    let (mut w, report) = JournalWriter::open(dir.path(), config()).unwrap();
    assert_eq!((report.last_seq, report.torn_tail.clone()), (Some(100), None));
    for seq in 101..=160 {
        w.stage_with(RecordKind::Event, seq, 40, |buf| {
            buf.copy_from_slice(&payload(seq));
            40
        })
        .unwrap();
        if seq % 7 == 0 {
            w.publish_staged();
        }
    }
    w.close().unwrap();
    // The old segment got an end marker; the new records are in a segment of version 3.
    let files = segments(dir.path());
    assert_eq!(files, vec![old.clone(), dir.path().join(segment_file_name(101))]);
    assert_eq!(fs::read(&files[0]).unwrap()[8..12], 2u32.to_le_bytes());
    assert_eq!(fs::read(&files[1]).unwrap()[8..12], SEGMENT_FORMAT_VERSION.to_le_bytes());
    assert_eq!(read_all(dir.path()).unwrap(), (1..=160).collect::<Vec<_>>());
    let (_, report) = JournalWriter::open(dir.path(), config()).unwrap();
    assert_eq!((report.records, report.last_seq, report.torn_tail), (160, Some(160), None));

    // Damage in a version 2 record is named by segment and offset, as before.
    patch(&old, SEGMENT_HEADER_LEN + 64 * 10 + 30, |b| b[0] ^= 0x08);
    match JournalReader::open_from_start(dir.path()).unwrap().nth(10) {
        Some(Err(JournalError::Corrupt { segment, offset, fault: RecordFault::Crc { .. } })) => {
            assert_eq!((segment, offset), (old, (SEGMENT_HEADER_LEN + 640) as u64));
        }
        other => panic!("expected the damaged record 11, got {other:?}"),
    }
}
