//! Reading a journal from a given seq: every record's frame, CRC and seq are checked, and every
//! error names the segment file and offset.
//!
//! The reader stops at the first zero length word of the last segment: it does not look past
//! it for a torn tail (the writer's open repairs and reports that). A corrupt record anywhere,
//! even at the very end, is an error here: a reader repairs nothing.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::record::{
    entry_len, Entry, Record, RecordKind, Slot, ENTRY_HEADER_LEN, KIND_SEGMENT_END, RECORD_HEADER_LEN,
};
use super::segment::{segment_file_name, Listing, SegmentMap, SEGMENT_HEADER_LEN};
use super::JournalError;

/// What the cursor found next.
#[derive(Clone, Debug)]
pub(crate) enum Step {
    /// A record (one entry of a frame); the cursor has moved past it.
    Record(Entry),
    /// Nothing written at the cursor yet (zero length word, or the end of a truncated file).
    Empty,
    /// The segment ended with its end marker but the next segment file does not exist (yet).
    /// The cursor stays on the marker.
    NextMissing,
}

/// A position in a journal, following end markers from segment to segment by file name.
#[derive(Debug)]
pub(crate) struct Cursor {
    dir: PathBuf,
    seg: SegmentMap,
    offset: usize,
    next_seq: u64,
    /// Segment offset of the next entry of the frame being walked.
    entry_at: usize,
    /// Entries of that frame not handed out yet (0: the next step reads a frame).
    entries_left: u16,
    /// Their kind.
    entries_kind: u16,
    /// Each segment will be read through to its end (a reader, not a tailer waiting at the
    /// live end): ask the kernel for read-ahead and every page mapped at once.
    read_ahead: bool,
}

impl Cursor {
    /// At the first record of the segment file `path`, whose name says `first_seq`.
    pub(crate) fn open(
        dir: &Path,
        path: &Path,
        first_seq: u64,
        read_ahead: bool,
    ) -> Result<Cursor, JournalError> {
        let seg = SegmentMap::open_read(path, first_seq)?;
        if read_ahead {
            seg.advise_sequential_read();
        }
        Ok(Cursor {
            dir: dir.to_path_buf(),
            seg,
            offset: SEGMENT_HEADER_LEN,
            next_seq: first_seq,
            entry_at: 0,
            entries_left: 0,
            entries_kind: 0,
            read_ahead,
        })
    }

    /// Seq of the next record.
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The segment file the cursor is in.
    pub(crate) fn segment(&self) -> &SegmentMap {
        &self.seg
    }

    /// Byte offset of the cursor in its segment file (of the next frame).
    pub(crate) fn offset(&self) -> usize {
        self.offset
    }

    /// The next entry of the frame being walked. The frame was validated, so its entries tile
    /// its payload and each length read here stays inside it.
    fn next_entry(&mut self) -> Entry {
        // SAFETY: a length prefix inside a validated, published frame of this segment: in
        // bounds, and no one writes it again.
        let len = entry_len(unsafe { self.seg.bytes(self.entry_at..self.entry_at + ENTRY_HEADER_LEN) }, 0);
        let start = self.entry_at + ENTRY_HEADER_LEN;
        self.entry_at = start + len;
        self.entries_left -= 1;
        let seq = self.next_seq;
        self.next_seq += 1;
        Entry { kind: self.entries_kind, seq, payload: start..start + len }
    }

    /// Moves to the next record (the next entry of a frame), crossing into the next segment at
    /// an end marker.
    pub(crate) fn step(&mut self) -> Result<Step, JournalError> {
        if self.entries_left > 0 {
            return Ok(Step::Record(self.next_entry()));
        }
        // Bounded: each pass either returns or opens the next segment, which starts with a
        // record (a writer never seals an empty segment) or ends the loop at its first slot;
        // a chain of empty segments is at most JOURNAL_SEGMENTS_MAX long.
        loop {
            if self.offset + RECORD_HEADER_LEN > self.seg.len() {
                return Ok(Step::Empty);
            }
            let frame = match self.seg.slot(self.offset) {
                Slot::Empty => return Ok(Step::Empty),
                Slot::Invalid(fault) => {
                    return Err(JournalError::Corrupt {
                        segment: self.seg.path().to_path_buf(),
                        offset: self.offset as u64,
                        fault,
                    })
                }
                Slot::Record(frame) => frame,
            };
            if frame.seq != self.next_seq {
                return Err(JournalError::SeqBreak {
                    segment: self.seg.path().to_path_buf(),
                    offset: self.offset as u64,
                    expected: self.next_seq,
                    found: frame.seq,
                });
            }
            if frame.kind != KIND_SEGMENT_END {
                self.offset += frame.stride;
                if !frame.prefixed {
                    // A version 2 record: its payload is its one entry.
                    let seq = self.next_seq;
                    self.next_seq += 1;
                    return Ok(Step::Record(Entry { kind: frame.kind, seq, payload: frame.payload }));
                }
                // `validate` passed it, so it holds at least one entry.
                self.entry_at = frame.payload.start;
                self.entries_left = frame.count;
                self.entries_kind = frame.kind;
                return Ok(Step::Record(self.next_entry()));
            }
            let path = self.dir.join(segment_file_name(self.next_seq));
            match SegmentMap::open_read(&path, self.next_seq) {
                Ok(next) => {
                    if self.read_ahead {
                        next.advise_sequential_read();
                    }
                    self.seg = next;
                    self.offset = SEGMENT_HEADER_LEN;
                }
                Err(JournalError::Io { source, .. }) if source.kind() == ErrorKind::NotFound => {
                    return Ok(Step::NextMissing)
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Like [`Cursor::step`], but passes over records before `from_seq` (a reader or tailer
    /// opened mid-segment). Bounded by the records between the segment start and `from_seq`.
    pub(crate) fn step_from(&mut self, from_seq: u64) -> Result<Step, JournalError> {
        loop {
            match self.step()? {
                Step::Record(frame) if frame.seq < from_seq => continue,
                step => return Ok(step),
            }
        }
    }

    /// The record `frame` (returned by [`Cursor::step`] for the current segment).
    pub(crate) fn record(&self, frame: &Entry) -> Record<'_> {
        Record {
            // `validate` only passes known kinds, and `step` never returns the end marker.
            kind: RecordKind::from_u16(frame.kind).unwrap_or(RecordKind::Command),
            seq: frame.seq,
            // SAFETY: `frame` is an entry of a frame validated in this segment: its range is
            // inside the mapping and belongs to a published record, which no one writes again.
            payload: unsafe { self.seg.bytes(frame.payload.clone()) },
        }
    }
}

/// Reads the records of a journal directory in seq order, from a given seq.
///
/// [`JournalReader::next_record`] lends each record's payload straight from the mapping (no
/// copy, no allocation); the [`Iterator`] impl copies each into a [`RecordBuf`].
#[derive(Debug)]
pub struct JournalReader {
    /// The directory as listed at open: to tell the end of the journal from a hole.
    listing: Listing,
    /// `None` for an empty journal.
    cursor: Option<Cursor>,
    from_seq: u64,
    /// An error was returned; the iterator ends.
    failed: bool,
}

/// An owned copy of a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordBuf {
    /// What it holds.
    pub kind: RecordKind,
    /// Its sequence number.
    pub seq: u64,
    /// Its payload.
    pub payload: Vec<u8>,
}

impl JournalReader {
    /// Opens the journal in `dir` to read from `from_seq` on. A `from_seq` before the first
    /// record still present is [`JournalError::SeqBeforeStart`]; one past the last record
    /// reads nothing.
    pub fn open(dir: impl AsRef<Path>, from_seq: u64) -> Result<JournalReader, JournalError> {
        let dir = dir.as_ref();
        let listing = Listing::read(dir)?;
        let cursor = match (listing.segment_for(from_seq), listing.segments.first()) {
            (Some((first, path)), _) => Some(Cursor::open(dir, path, *first, true)?),
            (None, Some((first, _))) => {
                return Err(JournalError::SeqBeforeStart { seq: from_seq, first: *first })
            }
            (None, None) => None,
        };
        Ok(JournalReader { listing, cursor, from_seq, failed: false })
    }

    /// Opens the journal in `dir` to read from its first record.
    pub fn open_from_start(dir: impl AsRef<Path>) -> Result<JournalReader, JournalError> {
        let dir = dir.as_ref();
        let first = Listing::read(dir)?.segments.first().map_or(1, |(first, _)| *first);
        JournalReader::open(dir, first)
    }

    /// The next record, `None` at the end of the journal.
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, JournalError> {
        let Some(cursor) = self.cursor.as_mut() else {
            return Ok(None);
        };
        match cursor.step_from(self.from_seq)? {
            Step::Record(frame) => Ok(Some(cursor.record(&frame))),
            Step::Empty => {
                // The end of the data: fine in the last segment, a hole before another.
                match self.listing.segment_after(cursor.segment().first_seq()) {
                    None => Ok(None),
                    Some(_) => Err(JournalError::Unterminated {
                        segment: cursor.segment().path().to_path_buf(),
                        offset: cursor.offset() as u64,
                    }),
                }
            }
            Step::NextMissing => {
                // Sealed, and no next file: the end of the journal (a roll the writer's
                // next open completes) unless a later segment exists.
                match self.listing.segment_after(cursor.next_seq()) {
                    None => Ok(None),
                    Some((_, path)) => Err(JournalError::MissingSegment {
                        expected: cursor.next_seq(),
                        found: Some(path.clone()),
                    }),
                }
            }
        }
    }
}

impl Iterator for JournalReader {
    type Item = Result<RecordBuf, JournalError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.next_record() {
            Ok(Some(r)) => Some(Ok(RecordBuf { kind: r.kind, seq: r.seq, payload: r.payload.to_vec() })),
            Ok(None) => None,
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}
