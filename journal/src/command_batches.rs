//! Reading a command journal in batches: replay, recovery and backtests decode a run of records
//! into a caller's buffer (no allocation per record; the buffer's capacity is reused), then feed
//! the engine the whole batch. Decoding and matching each stay in a tight loop of their own,
//! instead of alternating per record.

use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use engine::Command;

use super::durable::DurableError;
use super::{JournalError, JournalReader};

/// Commands decoded per batch by default: a few pages of records, a few tens of KiB of
/// `Command`s, small enough to stay in cache while the engine processes them.
pub const COMMAND_BATCH_DEFAULT: usize = 256;

/// A command journal read in batches of decoded commands.
#[derive(Debug)]
pub struct CommandBatches {
    reader: JournalReader,
    /// Seq of the next record to decode.
    next_seq: Option<u64>,
}

impl CommandBatches {
    /// Reads the command journal in `dir` from command `from_seq` on.
    pub fn open(dir: impl AsRef<Path>, from_seq: u64) -> Result<CommandBatches, JournalError> {
        Ok(CommandBatches { reader: JournalReader::open(dir, from_seq)?, next_seq: None })
    }

    /// Reads the command journal in `dir` from its first record.
    pub fn open_from_start(dir: impl AsRef<Path>) -> Result<CommandBatches, JournalError> {
        Ok(CommandBatches { reader: JournalReader::open_from_start(dir)?, next_seq: None })
    }

    /// Clears `batch` and decodes up to `count_max` commands into it, in seq order; returns how
    /// many (0 at the end of the journal). A record that does not decode is
    /// [`DurableError::Codec`] naming its seq; the commands before it are in `batch`.
    pub fn next_batch(&mut self, batch: &mut Vec<Command>, count_max: usize) -> Result<usize, DurableError> {
        batch.clear();
        while batch.len() < count_max {
            let Some(record) = self.reader.next_record()? else { break };
            let seq = record.seq;
            let command = Command::decode(record.payload).map_err(|source| DurableError::Codec {
                journal: "commands",
                seq,
                source,
            })?;
            // Pair check of write and read: the record's seq is the command's own.
            if command.header.seq != seq {
                return Err(DurableError::CommandSeqMismatch {
                    record_seq: seq,
                    command_seq: command.header.seq,
                });
            }
            batch.push(command);
            self.next_seq = Some(seq + 1);
        }
        Ok(batch.len())
    }

    /// Seq of the record after the last one decoded (`None` before the first batch).
    pub fn next_seq(&self) -> Option<u64> {
        self.next_seq
    }
}

/// Commands per batch a [`CommandFeed`] hands over by default. Larger than
/// [`COMMAND_BATCH_DEFAULT`]: when the feed thread is the slower one, the matching thread waits
/// (a futex sleep and wake) once per batch, and that wait, not the matching, was a fifth of its
/// CPU time at 256 (BENCHMARKS.md, "Replay read ahead in larger batches").
pub const COMMAND_FEED_BATCH: usize = 4096;

/// Batches a [`CommandFeed`] keeps in flight: one being processed, the rest read ahead.
pub const COMMAND_FEED_DEPTH: usize = 4;

/// A command journal read ahead on a thread of its own: while the caller's engine processes one
/// batch, the feed thread validates (CRC, seq) and decodes the next ones, so a replay takes as
/// long as the slower of reading and matching rather than both. Batches are recycled (no
/// allocation once [`COMMAND_FEED_DEPTH`] buffers exist); a decode or journal error ends the
/// feed and is returned in order, after the batches before it.
#[derive(Debug)]
pub struct CommandFeed {
    full: Receiver<Result<Vec<Command>, DurableError>>,
    empty: SyncSender<Vec<Command>>,
    current: Vec<Command>,
    thread: Option<JoinHandle<()>>,
    ended: bool,
}

impl CommandFeed {
    /// Starts reading `batches` on a new thread, `batch_len` commands per batch.
    pub fn start(mut batches: CommandBatches, batch_len: usize) -> Result<CommandFeed, JournalError> {
        let batch_len = batch_len.max(1);
        let (full_tx, full) = sync_channel(COMMAND_FEED_DEPTH);
        let (empty, empty_rx) = sync_channel::<Vec<Command>>(COMMAND_FEED_DEPTH + 1);
        for _ in 0..COMMAND_FEED_DEPTH {
            // Cannot fail: the channel has room for every buffer.
            let _ = empty.try_send(Vec::with_capacity(batch_len));
        }
        let thread = std::thread::Builder::new()
            .name("journal-feed".into())
            .spawn(move || {
                // Ends when the journal ends, on an error, or when the feed is dropped (either
                // channel then reports a disconnected peer).
                while let Ok(mut batch) = empty_rx.recv() {
                    let result = batches.next_batch(&mut batch, batch_len);
                    let last = !matches!(result, Ok(n) if n > 0);
                    if full_tx.send(result.map(|_| batch)).is_err() || last {
                        break;
                    }
                }
            })
            .map_err(|e| JournalError::io("journal-feed thread", e))?;
        Ok(CommandFeed { full, empty, current: Vec::new(), thread: Some(thread), ended: false })
    }

    /// The next batch, in seq order; empty at the end of the journal.
    pub fn next_batch(&mut self) -> Result<&[Command], DurableError> {
        let done = std::mem::take(&mut self.current);
        if done.capacity() > 0 {
            // Back to the feed thread for reuse; if it has ended, the buffer is simply freed.
            let _ = self.empty.try_send(done);
        }
        if self.ended {
            return Ok(&[]);
        }
        match self.full.recv() {
            Ok(Ok(batch)) => {
                self.ended = batch.is_empty();
                self.current = batch;
                Ok(&self.current)
            }
            Ok(Err(e)) => {
                self.ended = true;
                Err(e)
            }
            Err(_) => Err(DurableError::Journal(JournalError::BackgroundSync(
                "journal feed thread ended early".into(),
            ))),
        }
    }
}

impl Drop for CommandFeed {
    fn drop(&mut self) {
        // Unblock the thread whatever it waits on, then wait for it: no thread outlives the feed.
        let (_, dead_rx) = sync_channel(0);
        drop(std::mem::replace(&mut self.full, dead_rx));
        let (dead_tx, _) = sync_channel(0);
        drop(std::mem::replace(&mut self.empty, dead_tx));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{JournalConfig, JournalWriter, RecordKind, SEGMENT_SIZE_MIN};
    use engine::codec::COMMAND_ENCODED_LEN_MAX;
    use engine::SymbolId;
    use engine::{CommandHeader, CommandKind};

    fn write(dir: &Path, n: u64, bad_at: Option<u64>) {
        let config = JournalConfig { segment_size_bytes: SEGMENT_SIZE_MIN, ..JournalConfig::default() };
        let (mut w, _) = JournalWriter::open(dir, config).unwrap();
        for seq in 1..=n {
            let c = Command {
                header: CommandHeader { seq, ts: seq },
                kind: CommandKind::Halt { symbol: SymbolId(0) },
            };
            if bad_at == Some(seq) {
                w.append(RecordKind::Command, seq, &[0xEE]).unwrap();
            } else {
                w.append_with(RecordKind::Command, seq, COMMAND_ENCODED_LEN_MAX, |b| c.encode(b)).unwrap();
            }
        }
    }

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("journal-feed-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn the_feed_yields_every_command_in_order_across_segments() {
        let dir = temp_dir("order");
        write(&dir, 5_000, None);
        let mut feed = CommandFeed::start(CommandBatches::open(&dir, 7).unwrap(), 64).unwrap();
        let mut seqs = Vec::new();
        loop {
            let batch = feed.next_batch().unwrap();
            if batch.is_empty() {
                break;
            }
            assert!(batch.len() <= 64);
            seqs.extend(batch.iter().map(|c| c.header.seq));
        }
        assert_eq!(seqs, (7..=5_000).collect::<Vec<_>>());
        assert!(feed.next_batch().unwrap().is_empty(), "the end stays the end");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_bad_record_ends_the_feed_with_its_seq_after_the_good_batches() {
        let dir = temp_dir("bad");
        write(&dir, 1_000, Some(700));
        let mut feed = CommandFeed::start(CommandBatches::open_from_start(&dir).unwrap(), 100).unwrap();
        let mut good = 0;
        let err = loop {
            match feed.next_batch() {
                Ok(batch) => {
                    assert!(!batch.is_empty(), "the journal cannot end before the bad record");
                    good += batch.len();
                }
                Err(e) => break e,
            }
        };
        assert_eq!(good, 600, "whole batches before the one holding the bad record");
        assert!(matches!(err, DurableError::Codec { journal: "commands", seq: 700, .. }), "{err}");
        // Dropping a feed in the middle of a journal stops its thread.
        drop(CommandFeed::start(CommandBatches::open_from_start(&dir).unwrap(), 1).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
