//! Opening a journal for writing: verify every segment, repair a torn tail, find where to go on.
//!
//! Rules, in the order they are checked:
//! - Segments are taken in first-seq order; each must start at the seq after the previous one's
//!   last record (the seq of its end marker), else [`JournalError::MissingSegment`].
//! - Every record must have a valid frame and CRC and the next seq; a valid record with the
//!   wrong seq is [`JournalError::SeqBreak`] wherever it is.
//! - A segment other than the last must end with an end marker: an invalid record or a zero
//!   length word before it is [`JournalError::Corrupt`] / [`JournalError::Unterminated`].
//! - In the last segment, the first invalid record or zero length word ends the data. If
//!   non-zero bytes follow it and none of them is a valid record, they are a torn tail: zeroed
//!   and reported ([`TornTail`]). If a valid record follows, the damage is in the middle of the
//!   data: [`JournalError::Corrupt`], never a silent skip.
//!
//! One exception, asked for by the caller: a sealed segment whose records all lie before
//! `scan_from_seq` (records a snapshot covers, which recovery will never read) has its header
//! checked and its record count taken from the next segment's name, without reading its records.
//! Their frames and CRCs are still checked by every reader that reads them.

use std::path::{Path, PathBuf};

use super::record::{Slot, KIND_SEGMENT_END, RECORD_HEADER_LEN, RECORD_LEN_MAX};
use super::segment::{Listing, SegmentMap, SEGMENT_HEADER_LEN};
use super::{JournalError, RecordFault, RECORD_ALIGN, SEQ_MAX};

/// What opening a journal for writing found and repaired.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segment files verified.
    pub segments: usize,
    /// Records found (end markers not counted).
    pub records: u64,
    /// Seq of the journal's first record (of the first segment present).
    pub first_seq: u64,
    /// Seq of the last record, `None` when the journal holds none. Appending goes on at the
    /// next one.
    pub last_seq: Option<u64>,
    /// The torn tail that was zeroed, if there was one.
    pub torn_tail: Option<TornTail>,
    /// The last segment file was shorter than its header says (truncated); this was its length
    /// before recovery extended it back with zeros.
    pub truncated_file_len: Option<u64>,
    /// A segment file recovery created: the first one of an empty journal, or the next one
    /// when the last segment ended with its end marker (a roll interrupted by a crash).
    pub created_segment: Option<PathBuf>,
    /// Files in the directory that are not segments and were left alone (at most
    /// [`super::IGNORED_FILES_LISTED_MAX`] listed).
    pub ignored_files: Vec<PathBuf>,
    /// How many files were ignored.
    pub ignored_count: usize,
    /// A spare segment left by an earlier writer was deleted.
    pub removed_spare: bool,
    /// Sealed segments not read at open because every record in them lies before the seq the
    /// caller asked to scan from ([`super::JournalWriter::open_scanning_from`]): their headers
    /// were checked, their records are checked by whoever reads them.
    pub segments_not_scanned: usize,
}

impl RecoveryReport {
    /// The seq the next append must carry.
    pub fn next_seq(&self) -> u64 {
        self.last_seq.map_or(self.first_seq, |last| last + 1)
    }
}

/// A torn tail found and zeroed in the last segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// Segment file.
    pub segment: PathBuf,
    /// Offset of the first byte that was not part of a valid record.
    pub offset: u64,
    /// Bytes zeroed (up to the last non-zero byte of the segment).
    pub bytes_zeroed: u64,
    /// What was wrong at `offset`: `None` when the length word was simply zero (a record
    /// written up to, but not including, its publication).
    pub fault: Option<RecordFault>,
}

/// Where the records of a segment end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ScanEnd {
    /// A valid end marker at this offset: the journal continues in the next segment.
    Marker,
    /// A zero length word (or the end of the mapping) at this offset.
    Open(usize),
    /// Bytes at this offset that are not a valid record.
    Invalid(usize, RecordFault),
}

/// Walks a segment's frames from its first, checking each against `*next_seq` and advancing
/// it by the frame's entry count (`*records` counts entries). Bounded: each step moves at least [`RECORD_HEADER_LEN`] bytes through the mapping.
pub(crate) fn scan(seg: &SegmentMap, next_seq: &mut u64, records: &mut u64) -> Result<ScanEnd, JournalError> {
    let mut offset = SEGMENT_HEADER_LEN;
    loop {
        if offset + RECORD_HEADER_LEN > seg.len() {
            return Ok(ScanEnd::Open(offset));
        }
        match seg.slot(offset) {
            Slot::Empty => return Ok(ScanEnd::Open(offset)),
            Slot::Invalid(fault) => return Ok(ScanEnd::Invalid(offset, fault)),
            Slot::Record(f) => {
                let is_marker = f.kind == KIND_SEGMENT_END;
                let count = u64::from(f.count);
                if f.seq != *next_seq || (!is_marker && f.seq.saturating_add(count - 1) > SEQ_MAX) {
                    return Err(JournalError::SeqBreak {
                        segment: seg.path().to_path_buf(),
                        offset: offset as u64,
                        expected: *next_seq,
                        found: f.seq,
                    });
                }
                if is_marker {
                    return Ok(ScanEnd::Marker);
                }
                *next_seq += count;
                *records += count;
                offset += f.stride;
            }
        }
    }
}

/// The outcome of recovery: the report, the seq to go on with, and the last segment to append
/// to (with the offset of the first free byte), unless a new segment must be created.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub(crate) report: RecoveryReport,
    pub(crate) next_seq: u64,
    pub(crate) tail: Option<(SegmentMap, usize)>,
}

/// Verifies the journal in `dir` and repairs its torn tail. `first_seq` names the first
/// segment of an empty journal.
pub(crate) fn recover(dir: &Path, first_seq: u64, scan_from_seq: u64) -> Result<Recovered, JournalError> {
    let listing = Listing::read(dir)?;
    let mut report = RecoveryReport {
        ignored_files: listing.ignored.clone(),
        ignored_count: listing.ignored_count,
        first_seq,
        ..RecoveryReport::default()
    };
    if let Some(spare) = &listing.spare {
        std::fs::remove_file(spare).map_err(|e| JournalError::io(spare, e))?;
        report.removed_spare = true;
    }
    let Some((first, _)) = listing.segments.first() else {
        return Ok(Recovered { report, next_seq: first_seq, tail: None });
    };
    report.first_seq = *first;
    let mut next_seq = *first;
    let count = listing.segments.len();
    // The sealed segments (all but the last) are verified on a few threads at once: each starts
    // at the seq its file name says, so they do not depend on each other, and the results are
    // then taken in segment order, so the first problem reported is the same as one thread's.
    let mut sealed = verify_sealed(&listing.segments, scan_from_seq).into_iter();
    for (i, (name_seq, path)) in listing.segments.iter().enumerate() {
        if *name_seq != next_seq {
            return Err(JournalError::MissingSegment { expected: next_seq, found: Some(path.clone()) });
        }
        report.segments += 1;
        let is_last = i + 1 == count;
        if !is_last {
            let Some(verified) = sealed.next() else { unreachable!("one result per sealed segment") };
            let (end, records_in_segment, scanned) = verified?;
            report.segments_not_scanned += usize::from(!scanned);
            next_seq += records_in_segment;
            report.records += records_in_segment;
            match end {
                ScanEnd::Marker => continue,
                ScanEnd::Open(offset) => {
                    return Err(JournalError::Unterminated { segment: path.clone(), offset: offset as u64 })
                }
                ScanEnd::Invalid(offset, fault) => {
                    return Err(JournalError::Corrupt { segment: path.clone(), offset: offset as u64, fault })
                }
            }
        }
        let (seg, truncated) = SegmentMap::open_write(path, *name_seq)?;
        report.truncated_file_len = truncated;
        let end = scan(&seg, &mut next_seq, &mut report.records)?;
        report.last_seq = (next_seq > report.first_seq).then(|| next_seq - 1);
        let (offset, fault) = match end {
            ScanEnd::Marker => return Ok(Recovered { report, next_seq, tail: None }),
            ScanEnd::Open(offset) => (offset, None),
            ScanEnd::Invalid(offset, fault) => (offset, Some(fault)),
        };
        if offset + RECORD_HEADER_LEN > seg.len() {
            // The writer always leaves room for an end marker; no room means foreign data.
            return Err(JournalError::Corrupt {
                segment: path.clone(),
                offset: offset as u64,
                fault: fault.unwrap_or(RecordFault::PastEnd(RECORD_HEADER_LEN as u32)),
            });
        }
        report.torn_tail = repair_tail(&seg, offset, fault, next_seq)?;
        seg.prefault_from(offset);
        return Ok(Recovered { report, next_seq, tail: Some((seg, offset)) });
    }
    unreachable!("the loop returns at the last segment")
}

/// Most threads verifying sealed segments at once.
const VERIFY_THREADS_MAX: usize = 4;

/// What verifying one sealed segment found: how its records end, how many there are, and
/// whether they were read (`false`: only the header, see [`verify_sealed`]).
type SealedResult = Result<(ScanEnd, u64, bool), JournalError>;

/// Scans each sealed segment (every segment of `segments` but the last) from the seq its name
/// says; per segment, how its records end and how many there are. In segment order, whatever
/// thread did the work. A segment whose records all lie before `scan_from_seq` (the next
/// segment's name is at most `scan_from_seq`) is not read: its header is checked and its
/// record count is the difference of the two names.
fn verify_sealed(segments: &[(u64, PathBuf)], scan_from_seq: u64) -> Vec<SealedResult> {
    let count = segments.len().saturating_sub(1);
    let verify_one = |i: usize| -> SealedResult {
        let (name_seq, path) = &segments[i];
        let seg = SegmentMap::open_read(path, *name_seq)?;
        let next_name = segments[i + 1].0;
        if next_name <= scan_from_seq && next_name > *name_seq {
            return Ok((ScanEnd::Marker, next_name - name_seq, false));
        }
        seg.advise_sequential_read();
        let (mut next_seq, mut records) = (*name_seq, 0);
        let end = scan(&seg, &mut next_seq, &mut records)?;
        Ok((end, records, true))
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(VERIFY_THREADS_MAX);
    if threads <= 1 || count <= 1 {
        return (0..count).map(verify_one).collect();
    }
    // Segment i goes to thread i % threads: neighbours run side by side.
    let mut results: Vec<Option<SealedResult>> = (0..count).map(|_| None).collect();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let verify_one = &verify_one;
                scope.spawn(move || {
                    (t..count).step_by(threads).map(|i| (i, verify_one(i))).collect::<Vec<_>>()
                })
            })
            .collect();
        for worker in workers {
            let done = worker.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            for (i, result) in done {
                results[i] = Some(result);
            }
        }
    });
    results.into_iter().map(|r| r.unwrap_or_else(|| unreachable!("every segment is verified"))).collect()
}

/// Zeroes the non-zero bytes from `offset` to the end of the last segment, unless a valid
/// record lies among them (then the damage is not a tail: an error).
fn repair_tail(
    seg: &SegmentMap,
    offset: usize,
    fault: Option<RecordFault>,
    next_seq: u64,
) -> Result<Option<TornTail>, JournalError> {
    let dirty_end = {
        // SAFETY: in bounds (offset < len). Recovery runs before the writer exists, and one
        // journal has one writer: nobody writes these bytes while the slice lives.
        let tail = unsafe { seg.bytes(offset..seg.len()) };
        offset + tail.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1)
    };
    if dirty_end == offset {
        return Ok(None);
    }
    if let Some(valid_at) = valid_record_after(seg, offset, dirty_end, next_seq) {
        return Err(JournalError::Corrupt {
            segment: seg.path().to_path_buf(),
            offset: offset as u64,
            fault: fault.unwrap_or(RecordFault::Hole(valid_at as u64)),
        });
    }
    // SAFETY: in bounds; writable mapping (open_write); nothing past `offset` is a published
    // record (the scan stopped there), and recovery is the journal's only user. Readers in
    // other mappings may poll the length word at `offset`; it ends up zero, as they expect.
    unsafe { seg.bytes_mut(offset..dirty_end) }.fill(0);
    Ok(Some(TornTail {
        segment: seg.path().to_path_buf(),
        offset: offset as u64,
        bytes_zeroed: (dirty_end - offset) as u64,
        fault,
    }))
}

/// The offset of a valid record (of a seq the journal could hold next) in `(from, to)`, if any.
///
/// Bounded by `(to - from) / 8` positions; a cheap filter on the header (length in range,
/// known kind, zero reserved bytes, plausible seq) runs before any checksum, so garbage costs
/// almost no CRC work.
fn valid_record_after(seg: &SegmentMap, from: usize, to: usize, next_seq: u64) -> Option<usize> {
    let seq_window_max = next_seq.saturating_add((seg.len() / RECORD_HEADER_LEN) as u64);
    let mut q = from + RECORD_ALIGN;
    while q + RECORD_HEADER_LEN <= to {
        // SAFETY: q + 24 ≤ to ≤ len; recovery is the journal's only user (see repair_tail).
        let h = unsafe { seg.bytes(q..q + RECORD_HEADER_LEN) };
        let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let seq = u64::from_le_bytes(h[8..16].try_into().expect("8 bytes"));
        let kind = u16::from_le_bytes([h[16], h[17]]);
        let plausible = (RECORD_HEADER_LEN..=RECORD_LEN_MAX).contains(&len)
            && (kind == KIND_SEGMENT_END || super::RecordKind::from_u16(kind).is_some())
            && h[if seg.is_legacy() { 18 } else { 20 }..24].iter().all(|&b| b == 0)
            && (next_seq..=seq_window_max).contains(&seq);
        if plausible && matches!(seg.slot(q), Slot::Record(_)) {
            return Some(q);
        }
        q += RECORD_ALIGN;
    }
    None
}
