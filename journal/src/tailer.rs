//! Following a journal while another thread or process writes it.
//!
//! The tailer maps segment files read-only, polls the next record's length word with an
//! `Acquire` load, and at an end marker opens the next segment by name. `poll` never blocks and
//! never sleeps: `None` means "nothing new", and the caller picks how to wait (spin, yield,
//! park, sleep). Polling an empty position costs one atomic load, no system call; only a tailer
//! waiting for the first segment to appear, or for the next segment after an end marker, asks
//! the file system again on each poll.

use std::path::{Path, PathBuf};

use super::reader::{Cursor, Step};
use super::record::Record;
use super::segment::Listing;
use super::JournalError;

/// Follows a live journal from a given seq.
#[derive(Debug)]
pub struct Tailer {
    dir: PathBuf,
    from_seq: u64,
    /// `None` until a segment holding `from_seq` exists.
    cursor: Option<Cursor>,
}

impl Tailer {
    /// A tailer of the journal in `dir` that yields records from `from_seq` on. The directory
    /// may be empty still (the writer has not started): polling waits for it.
    pub fn open(dir: impl AsRef<Path>, from_seq: u64) -> Result<Tailer, JournalError> {
        let mut tailer = Tailer { dir: dir.as_ref().to_path_buf(), from_seq, cursor: None };
        tailer.find_start()?;
        Ok(tailer)
    }

    fn find_start(&mut self) -> Result<(), JournalError> {
        let listing = Listing::read(&self.dir)?;
        match (listing.segment_for(self.from_seq), listing.segments.first()) {
            (Some((first, path)), _) => {
                self.cursor = Some(Cursor::open(&self.dir, path, *first, false)?);
                Ok(())
            }
            (None, Some((first, _))) => {
                Err(JournalError::SeqBeforeStart { seq: self.from_seq, first: *first })
            }
            (None, None) => Ok(()),
        }
    }

    /// The next record if one has been published since the last call, else `None`.
    pub fn poll(&mut self) -> Result<Option<Record<'_>>, JournalError> {
        if self.cursor.is_none() {
            self.find_start()?;
        }
        let Some(cursor) = self.cursor.as_mut() else {
            return Ok(None);
        };
        match cursor.step_from(self.from_seq)? {
            Step::Record(frame) => Ok(Some(cursor.record(&frame))),
            Step::Empty | Step::NextMissing => Ok(None),
        }
    }

    /// Seq of the next record the tailer will return (once it exists).
    pub fn next_seq(&self) -> u64 {
        self.cursor.as_ref().map_or(self.from_seq, |c| c.next_seq().max(self.from_seq))
    }
}
