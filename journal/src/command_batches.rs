//! Reading a command journal in batches: replay, recovery and backtests decode a run of records
//! into a caller's buffer (no allocation per record; the buffer's capacity is reused), then feed
//! the engine the whole batch. Decoding and matching each stay in a tight loop of their own,
//! instead of alternating per record.

use std::path::Path;

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
                return Err(DurableError::CommandSeqMismatch { record_seq: seq, command_seq: command.header.seq });
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
