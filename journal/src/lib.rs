//! Durability for the matching engine: the write-ahead journal (memory-mapped, preallocated
//! segment files of checksummed, sequenced frames of records), snapshots on disk, and the
//! [`DurableEngine`] that journals every command before the [`engine::Engine`] processes it
//! and every event after, a batch of them per frame (on the matching thread, on a thread of its
//! own, or derived again from the command journal by a follower engine: events are derivable
//! from the commands, and recovery rewrites any a crash cut off before anyone reads the event
//! journal). Shell code (it does I/O, holds a lock file, runs a snapshot thread and
//! optionally an event-journal thread); the matching core in `engine` never calls it.
//!
//! # On disk
//!
//! A journal is a directory of segment files named by the sequence number of their first
//! record, zero padded to 20 digits (`00000000000000000001.journal`), each preallocated to
//! its segment size and pre-faulted when created. A segment starts with a
//! [`SEGMENT_HEADER_LEN`]-byte header, then records back to back, each starting on an 8-byte
//! boundary. A record is a *frame* of one or more entries of one kind (since format version 3): a
//! durable engine writes a runner batch of commands as one frame (up to [`RECORD_LEN_MAX`]
//! bytes, then the next), under one CRC, and each entry keeps its own seq, so readers still hand
//! out one [`Record`] per command or event. Since format version 4 a command entry is in
//! `engine::codec`'s fixed layout (`Command::encode_fixed`: a few word stores on the matching
//! thread), which `Command::decode` tells from the variable layout by its first byte.
//!
//! ```text
//! segment header (64 bytes, little endian)
//!   0  magic          [u8; 8] = SEGMENT_MAGIC
//!   8  format version u32     = SEGMENT_FORMAT_VERSION (4; 2 and 3 are still read, others refused)
//!  12  header length  u32     = 64
//!  16  first seq      u64     (equals the file name)
//!  24  segment size   u64     (the file's length)
//!  32  header crc     u32     CRC32C of bytes 0..32
//!  36  zero           [u8; 28]
//! record = frame (8-byte aligned; RECORD_HEADER_LEN header + entries, zero padded to 8)
//!   0  len            u32     header + entries bytes; written LAST (Release); 0 = no record
//!   4  crc            u32     CRC32C of bytes 8..len (seq, kind, count, reserved, entries)
//!   8  seq            u64     seq of the first entry; gapless across the whole journal
//!  16  kind           u16     RecordKind of every entry, or 0xFFFF for the segment end marker
//!  18  count          u16     entries (≥ 1; 0 for the end marker), seqs seq..seq+count-1
//!  20  reserved       [u8; 4] zero
//!  24  entries        count × (len u16, then len bytes), exactly filling the frame
//! ```
//!
//! The writer keeps room for one more record header at the end of every segment; when a
//! frame does not fit, it writes an *end marker* there (a record of kind `0xFFFF`, no entries,
//! whose seq is the first seq of the next segment), then renames a pre-made spare file into
//! place as the next segment. Readers follow the marker to the next file by name, so they never
//! list the directory after opening.
//!
//! # Why a reader never sees half a record
//!
//! Every byte past the writer's published end is zero, apart from the entries of the frame it
//! is filling (fresh files are zero; recovery zeroes a torn tail). The writer stages entries
//! past the published end ([`JournalWriter::stage_with`]), then writes the frame's header and
//! publishes its length word with a `Release` store ([`JournalWriter::publish_staged`]);
//! readers `Acquire`-load the length word and look at nothing else until it is non-zero, then
//! check the frame's CRC before handing out any entry of it. A process crash therefore leaves
//! either a whole frame or a zero length word (possibly with staged bytes after it, which
//! recovery zeroes): a frame is lost or kept as a whole.
//!
//! # Files that are not segments
//!
//! Decision: a file whose name is not exactly a segment name is **ignored** and listed in
//! [`RecoveryReport::ignored_files`] (the spare `next.journal.tmp` the writer prepares is
//! deleted on open, reported by [`RecoveryReport::removed_spare`]). A file with a segment's
//! name but not a segment's header is a hard [`JournalError::BadHeader`] naming it: guessing
//! whether journal data is garbage is not the journal's job.
//!
//! # Bounds
//!
//! [`RECORD_LEN_MAX`] per record, [`SEGMENT_SIZE_MIN`]..=[`SEGMENT_SIZE_MAX`] per segment,
//! [`JOURNAL_SEGMENTS_MAX`] segment files per directory, [`RETIRED_SEGMENTS_MAX`] rolled
//! segments waiting for a sync.

#![warn(missing_docs, unreachable_pub)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod command_batches;
mod command_journal;
mod durability;
mod durable;
mod event_deriver;
mod event_thread;
mod reader;
mod record;
mod recovery;
mod segment;
mod stats;
mod tailer;
mod writer;

use std::io;
use std::path::PathBuf;
use std::time::Duration;

pub use command_batches::{
    CommandBatches, CommandFeed, COMMAND_BATCH_DEFAULT, COMMAND_FEED_BATCH, COMMAND_FEED_DEPTH,
};
pub use command_journal::CommandJournal;
pub use durability::JournalProgress;
pub use durable::{
    DurableConfig, DurableEngine, DurableError, DurableRecovery, EventVerifier, PROGRESS_EVERY_COMMANDS,
};
pub use event_deriver::DERIVER_PARK;
pub use event_thread::{JournalHealth, EVENT_RING_CAPACITY, EVENT_THREAD_PARK};
pub use reader::{JournalReader, RecordBuf};
pub use record::{
    Record, RecordFault, RecordKind, ENTRY_HEADER_LEN, RECORD_ALIGN, RECORD_HEADER_LEN, RECORD_LEN_MAX,
    RECORD_PAYLOAD_LEN_MAX,
};
pub use recovery::{RecoveryReport, TornTail};
pub use segment::{
    segment_file_name, SEGMENT_FORMAT_VERSION, SEGMENT_FORMAT_VERSION_OLDEST, SEGMENT_HEADER_LEN,
    SEGMENT_MAGIC, SEGMENT_SIZE_ALIGN, SEGMENT_SIZE_DEFAULT, SEGMENT_SIZE_MAX, SEGMENT_SIZE_MIN,
    SPARE_FILE_NAME,
};
pub use stats::{JournalStats, JournalStatsSnapshot, APPEND_SAMPLE_EVERY};
pub use tailer::Tailer;
pub use writer::{JournalWriter, ENTRY_PAYLOAD_LEN_MAX};

/// Most segment files one journal directory may hold (4 TiB at the default segment size).
/// Opening a directory with more is an error: archive old segments first.
pub const JOURNAL_SEGMENTS_MAX: usize = 65_536;

/// Most rolled segments that may wait for the sync thread (policies other than `PageCache`).
/// When the sync thread falls this far behind, the writer flushes the oldest one itself:
/// back-pressure instead of an unbounded list.
pub const RETIRED_SEGMENTS_MAX: usize = 16;

/// How many ignored file names a [`RecoveryReport`] lists (it counts all of them).
pub const IGNORED_FILES_LISTED_MAX: usize = 64;

/// Largest sequence number a record may carry (the next one must still be representable).
pub const SEQ_MAX: u64 = u64::MAX - 1;

/// When appended records are forced to stable storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SyncPolicy {
    /// Nothing explicit: a record is in the page cache once appended, so it survives a crash of
    /// the process but not of the machine. `durable_seq` follows `written_seq`.
    #[default]
    PageCache,
    /// A background thread msyncs what was appended every `interval`, then advances
    /// `durable_seq`. The appending thread makes no sync call. The thread uses a synchronous
    /// msync of the written range (`flush_range`), not `flush_async`: on Linux `MS_ASYNC`
    /// starts nothing and waits for nothing, so it could not justify advancing `durable_seq`.
    Periodic {
        /// Time between syncs.
        interval: Duration,
    },
    /// The owner calls [`JournalWriter::sync`] (typically once per batch, on a journal thread,
    /// before acknowledging the batch); each call msyncs what was appended since the last one
    /// and advances `durable_seq`.
    GroupCommit,
}

/// How a journal is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JournalConfig {
    /// Size of new segment files in bytes: a multiple of [`SEGMENT_SIZE_ALIGN`] within
    /// [`SEGMENT_SIZE_MIN`]..=[`SEGMENT_SIZE_MAX`]. Existing segments keep their own size.
    pub segment_size_bytes: usize,
    /// When appended records reach stable storage.
    pub sync: SyncPolicy,
    /// Sequence number of the first record of a new (empty) journal; ignored when the
    /// directory already holds segments.
    pub first_seq: u64,
}

impl Default for JournalConfig {
    fn default() -> JournalConfig {
        JournalConfig { segment_size_bytes: SEGMENT_SIZE_DEFAULT, sync: SyncPolicy::PageCache, first_seq: 1 }
    }
}

impl JournalConfig {
    /// Checks the bounds of every field.
    pub fn validate(&self) -> Result<(), JournalError> {
        let size = self.segment_size_bytes;
        if !(SEGMENT_SIZE_MIN..=SEGMENT_SIZE_MAX).contains(&size) {
            return Err(JournalError::Config("segment size outside SEGMENT_SIZE_MIN..=MAX"));
        }
        if !size.is_multiple_of(SEGMENT_SIZE_ALIGN) {
            return Err(JournalError::Config("segment size not a multiple of SEGMENT_SIZE_ALIGN"));
        }
        if self.first_seq == 0 || self.first_seq > SEQ_MAX {
            return Err(JournalError::Config("first_seq must be within 1..=SEQ_MAX"));
        }
        if let SyncPolicy::Periodic { interval } = self.sync {
            if interval.is_zero() {
                return Err(JournalError::Config("periodic sync interval must be positive"));
            }
        }
        Ok(())
    }
}

/// Everything that can go wrong opening, writing or reading a journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// A file system call failed.
    #[error("journal I/O on {path}: {source}")]
    Io {
        /// File or directory involved.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// The configuration is out of bounds.
    #[error("journal config: {0}")]
    Config(&'static str),
    /// A file named like a segment does not carry a valid segment header.
    #[error("{path}: not a valid journal segment: {reason}")]
    BadHeader {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A segment written in another on-disk format version than this build reads.
    #[error("{path}: journal format version {found}, this build reads versions {oldest} to {expected}; open it with a build that reads version {found}", oldest = SEGMENT_FORMAT_VERSION_OLDEST)]
    FormatVersion {
        /// The segment file.
        path: PathBuf,
        /// Version in its header.
        found: u32,
        /// [`SEGMENT_FORMAT_VERSION`].
        expected: u32,
    },
    /// A record that is not the torn tail of the journal failed validation.
    #[error("{segment} offset {offset}: corrupt record: {fault}")]
    Corrupt {
        /// Segment file.
        segment: PathBuf,
        /// Byte offset of the record in the file.
        offset: u64,
        /// What failed.
        fault: RecordFault,
    },
    /// A valid record carries the wrong sequence number.
    #[error("{segment} offset {offset}: record seq {found}, expected {expected}")]
    SeqBreak {
        /// Segment file.
        segment: PathBuf,
        /// Byte offset of the record in the file.
        offset: u64,
        /// The seq continuity demands.
        expected: u64,
        /// The seq found.
        found: u64,
    },
    /// The segment that should hold `expected` is not in the directory.
    #[error("missing segment {}: the journal continues at seq {expected}, next file is {}", segment_file_name(*.expected), .found.as_ref().map_or("none".to_string(), |p| p.display().to_string()))]
    MissingSegment {
        /// First seq of the missing segment.
        expected: u64,
        /// The next segment file present, if any.
        found: Option<PathBuf>,
    },
    /// A segment other than the last ends without its end marker.
    #[error("{segment} offset {offset}: segment ends without an end marker but a later segment exists")]
    Unterminated {
        /// Segment file.
        segment: PathBuf,
        /// Offset of the zero length word.
        offset: u64,
    },
    /// The directory holds more than [`JOURNAL_SEGMENTS_MAX`] segment files.
    #[error("{dir}: more than {max} segment files", max = JOURNAL_SEGMENTS_MAX)]
    TooManySegments {
        /// The directory.
        dir: PathBuf,
    },
    /// A reader was asked for a seq before the first record still in the journal.
    #[error("seq {seq} is before the journal's first seq {first}")]
    SeqBeforeStart {
        /// Seq asked for.
        seq: u64,
        /// First seq present.
        first: u64,
    },
    /// `append` was given a seq other than the next one.
    #[error("append seq {found}, expected {expected}")]
    SeqOutOfOrder {
        /// Next seq of the journal.
        expected: u64,
        /// Seq given.
        found: u64,
    },
    /// A payload is longer than [`RECORD_PAYLOAD_LEN_MAX`].
    #[error("record payload of {len} bytes exceeds {max}", max = RECORD_PAYLOAD_LEN_MAX)]
    RecordTooLarge {
        /// Payload length asked for.
        len: usize,
    },
    /// The background sync thread failed; `durable_seq` stopped advancing.
    #[error("background journal sync failed: {0}")]
    BackgroundSync(String),
}

impl JournalError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> JournalError {
        JournalError::Io { path: path.into(), source }
    }
}
