//! The command journal written before the engine's command ring, by the thread that feeds it.
//!
//! [`DurableEngine::split_command_journal`](crate::DurableEngine::split_command_journal) hands
//! the writer to the thread that stamps the commands (the router, or a benchmark's producer).
//! That thread appends each batch and publishes it *before* it pushes the batch into the
//! engine thread's ring, so every command the engine can see is already in the journal's
//! mapping and published: the matching thread does no journal work (the events are derived by
//! the deriver thread from these published frames), recovery reads the same journal, and a
//! snapshot the engine takes never covers a command the journal lacks. Acknowledgements still
//! wait on the journal's `durable_seq` ([`CommandJournal::progress`]), as always.
//!
//! A write failure is recorded in the engine's failure slot (the host sees it through
//! [`crate::DurableEngine::health`]) and every later append is refused: a command that is not
//! journaled must not reach the engine, and nothing after it may either.

use std::sync::Arc;

use engine::Command;

use crate::durable::stage_command;
use crate::event_thread::FailureSlot;
use crate::{DurableError, JournalProgress, JournalWriter, SyncPolicy};

/// The command journal's writer, held by the thread before the engine's ring.
pub struct CommandJournal {
    writer: JournalWriter,
    failure: Arc<FailureSlot>,
}

impl std::fmt::Debug for CommandJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandJournal").field("next_seq", &self.writer.next_seq()).finish_non_exhaustive()
    }
}

impl CommandJournal {
    pub(crate) fn new(writer: JournalWriter, failure: Arc<FailureSlot>) -> CommandJournal {
        CommandJournal { writer, failure }
    }

    /// Journals `commands` (stamped, the first carrying [`CommandJournal::next_seq`], the rest
    /// following without a gap) and publishes them: once this returns `Ok` they may be pushed
    /// to the engine. On an error none of them may be: a wrong seq refuses the batch and
    /// journals nothing of it; a write failure stops the journal for good (the engine stops
    /// too, and [`crate::DurableEngine::health`] says why).
    pub fn append(&mut self, commands: &[Command]) -> Result<(), DurableError> {
        if self.failure.is_failed() {
            return Err(DurableError::Stopped(
                self.failure.message().unwrap_or_else(|| "journal failure".into()),
            ));
        }
        let first = self.writer.next_seq();
        for (i, command) in commands.iter().enumerate() {
            let expected = first + i as u64;
            if command.header.seq != expected {
                return Err(DurableError::SeqOutOfOrder { expected, found: command.header.seq });
            }
        }
        for command in commands {
            if let Err(e) = stage_command(&mut self.writer, command) {
                self.failure.record(format!("command journal: {e}"));
                return Err(e.into());
            }
        }
        self.writer.publish_staged();
        Ok(())
    }

    /// The seq the next appended command must carry.
    pub fn next_seq(&self) -> u64 {
        self.writer.next_seq()
    }

    /// The journal's progress (acknowledgements wait for its `durable_seq`).
    pub fn progress(&self) -> JournalProgress {
        self.writer.progress()
    }

    /// Waits for the next segment file the writer prepares in the background (a benchmark
    /// calls it before a timed loop).
    pub fn wait_background(&mut self) -> Result<(), DurableError> {
        Ok(self.writer.wait_spare()?)
    }

    /// Syncs the journal unless the policy is page-cache. Dropping it does the same but cannot
    /// report.
    pub fn close(self) -> Result<(), DurableError> {
        if self.writer.config().sync != SyncPolicy::PageCache {
            self.writer.sync()?;
        }
        Ok(())
    }
}
