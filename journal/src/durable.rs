//! The durable engine: the matching core plus its write-ahead journal and snapshots.
//!
//! Layout of a data directory:
//! - `commands/`: the command journal, record seq = command seq. The source of truth.
//! - `events/`: the event journal, record seq = event seq, for tailers (market data,
//!   settlement) that must not re-run the engine. Derivable from the commands, so a crash that
//!   loses its tail loses nothing: recovery regenerates it. With
//!   [`DurableConfig::event_thread`] it is written by a thread of its own (`event_thread.rs`)
//!   and may trail the engine by what that thread's ring holds.
//! - `snapshots/`: `{command_seq:020}.snap`, an engine snapshot after that command, with a
//!   CRC32C; written on a background thread through a temporary file and a rename.
//!
//! Order of work per command, on the matching thread: the command is staged in the command
//! journal's open frame (write-ahead: encoded into the mapping before the engine sees it), then
//! processed; each event is staged in the event journal's open frame (or, with an event thread,
//! copied into its ring) and handed to the caller's sink. At the end of the runner's batch
//! ([`engine::Processor::end_batch`], or at once with [`DurableEngine::process`]) the command
//! frame is published, then the event frame: one CRC and one publication per journal per batch
//! instead of one per record. A caller may see an event before its command's frame is published,
//! but may not act on it outside the process before the command is durable per the sync policy
//! of [`DurableEngine::commands_progress`] (the gateway's router holds reports until then, as it
//! always has); the runner publishes before it rings the event doorbell. The event journal holds
//! a gapless prefix of the events and never an event whose command the command journal lacks (an
//! event frame that fills up mid-batch publishes the staged commands first); it is complete
//! whenever a batch has ended, unless an event thread is still catching up.
//!
//! Opening reads only what recovery needs: the sealed segments that hold nothing but records the
//! newest snapshot covers are checked by header (their records are checked by whoever reads
//! them), so restart time follows the journal's tail, not its length.
//!
//! A journal failure (of either journal) stops the engine for good: it processes nothing more,
//! [`DurableEngine::process`] returns [`DurableError::Stopped`], and the host learns it from
//! [`DurableEngine::health`], since a runner thread has no error path.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::command_batches::{CommandBatches, CommandFeed, COMMAND_FEED_BATCH};
use crate::command_journal::CommandJournal;
use crate::event_deriver::EventDeriver;
use crate::event_thread::{EventJournal, FailureSlot, JournalHealth};
use crate::{
    JournalConfig, JournalError, JournalProgress, JournalReader, JournalWriter, RecordKind, RecoveryReport,
    SyncPolicy,
};
use engine::codec::{CodecError, COMMAND_FIXED_LEN_MAX, EVENT_ENCODED_LEN_MAX};
use engine::{Command, Engine, EngineConfig, Event, EventSink, SnapshotError};

const SNAPSHOT_MAGIC: &[u8; 8] = b"EXSNAPF1";
/// Snapshot file header: magic, CRC32C of the body, body length.
const SNAPSHOT_HEADER_LEN: usize = 8 + 4 + 8;

/// How often (in replayed commands) [`DurableEngine::open_with_progress`] reports.
pub const PROGRESS_EVERY_COMMANDS: u64 = 1 << 16;

/// Settings of a durable engine.
#[derive(Clone, Debug)]
pub struct DurableConfig {
    /// Data directory (created if absent).
    pub dir: PathBuf,
    /// Segment size and sync policy, for both journals.
    pub journal: JournalConfig,
    /// Take a snapshot every this many commands; 0 never.
    pub snapshot_every_commands: u64,
    /// Journal events on a thread of their own instead of the matching thread (see
    /// `BENCHMARKS.md`: on a 2-vCPU machine it saves the matching thread little and costs the
    /// process more, so it is off by default; it may pay with a core to spare).
    pub event_thread: bool,
    /// Journal only commands on the matching thread; a thread of their own derives the events
    /// again with an engine of its own, from the published command journal, and writes the
    /// event journal (`event_deriver.rs`; see `BENCHMARKS.md`). Takes precedence over
    /// `event_thread`. Costs a second engine's CPU on another core; readers of the event
    /// journal trail the matching engine by the deriver's lag.
    pub derive_events: bool,
}

impl DurableConfig {
    /// Defaults for `dir`: 64 MiB segments, page-cache durability, a snapshot every million
    /// commands.
    pub fn new(dir: impl Into<PathBuf>) -> DurableConfig {
        DurableConfig {
            dir: dir.into(),
            journal: JournalConfig::default(),
            snapshot_every_commands: 1_000_000,
            event_thread: false,
            derive_events: false,
        }
    }
}

/// Why the durable engine could not open or go on.
#[derive(Debug, thiserror::Error)]
pub enum DurableError {
    /// A journal failed (I/O, corruption, sequence).
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// A journaled record does not decode.
    #[error("journal record {seq} in {journal}: {source}")]
    Codec {
        /// `commands` or `events`.
        journal: &'static str,
        /// Record sequence number.
        seq: u64,
        /// The decode error.
        source: CodecError,
    },
    /// Replaying the commands produced an event different from the journaled one.
    #[error("replay diverged at event {seq}: journaled {journaled:?}, replayed {replayed:?}")]
    Diverged {
        /// Event sequence number.
        seq: u64,
        /// What the event journal holds.
        journaled: Box<Event>,
        /// What the engine produced again.
        replayed: Box<Event>,
    },
    /// The event journal holds events past what the command journal produces.
    #[error("event journal runs ahead of the command journal: it has events up to {events_last}, replay produced up to {replayed_last}")]
    EventsAhead {
        /// Last journaled event.
        events_last: u64,
        /// Last event the commands produce.
        replayed_last: u64,
    },
    /// A snapshot file is unreadable (other snapshots may still be used).
    #[error("snapshot {path}: {source}")]
    Snapshot {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: SnapshotError,
    },
    /// Another process (or another `DurableEngine` in this one) has the directory open.
    #[error("{dir} is in use by another writer (lock file {dir}/LOCK is held); stop it first")]
    Locked {
        /// The data directory.
        dir: PathBuf,
    },
    /// Filesystem work outside the journals failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// An earlier journal failure stopped the engine; it processes nothing more.
    #[error("engine stopped after a journal failure: {0}")]
    Stopped(String),
    /// A command record's seq differs from the seq inside the command it holds.
    #[error("command journal record {record_seq} holds command seq {command_seq}")]
    CommandSeqMismatch {
        /// The record's seq.
        record_seq: u64,
        /// The decoded command's seq.
        command_seq: u64,
    },
    /// [`DurableEngine::split_command_journal`] was refused.
    #[error("{0}")]
    Split(&'static str),
    /// A command arrived with a sequence number other than the next one.
    #[error("command seq {found} out of order, expected {expected}")]
    SeqOutOfOrder {
        /// Expected seq.
        expected: u64,
        /// Seq given.
        found: u64,
    },
}

/// What recovery found and did.
#[derive(Debug)]
pub struct DurableRecovery {
    /// The command journal's own report (torn tail, ignored files, ...).
    pub commands: RecoveryReport,
    /// The event journal's report.
    pub events: RecoveryReport,
    /// Command seq of the snapshot restored from, if any.
    pub snapshot_seq: Option<u64>,
    /// Snapshots skipped as unreadable, newest first, with the reason.
    pub snapshots_skipped: Vec<String>,
    /// Commands replayed after the snapshot.
    pub commands_replayed: u64,
    /// Events checked against the event journal during replay.
    pub events_verified: u64,
    /// Events the event journal had lost (crash between a command and its events), rewritten.
    pub events_regenerated: u64,
}

/// The engine with its journals. Single-threaded, owned by the engine thread.
pub struct DurableEngine {
    engine: Engine,
    engine_config: EngineConfig,
    /// The command journal's writer; `None` once [`DurableEngine::split_command_journal`] has
    /// handed it to the thread that feeds the engine (commands then arrive already journaled).
    commands: Option<JournalWriter>,
    /// Its progress, kept for the host whichever thread writes it.
    commands_progress: JournalProgress,
    /// The seq the next command must carry.
    commands_next: u64,
    /// The event journal, on its own thread.
    events: EventJournal,
    dir: PathBuf,
    snapshot_every_commands: u64,
    commands_since_snapshot: u64,
    /// Events are journaled by a thread of their own (commands are then published one by one).
    event_thread: bool,
    /// Events are derived again from the command journal by a thread of their own: the matching
    /// thread journals commands only.
    derive_events: bool,
    snapshot_in_flight: Arc<AtomicBool>,
    /// Held for the engine's life: the directory's single-writer lock.
    _lock: fs::File,
    /// The first journal failure (shared with the event-journal thread and the host). After it
    /// the engine processes nothing more: a command it cannot journal must not be acknowledged,
    /// and nothing after it may be either.
    failure: Arc<FailureSlot>,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> DurableError + '_ {
    move |source| DurableError::Io { path: path.to_path_buf(), source }
}

impl DurableEngine {
    /// Opens the data directory: repairs torn journal tails, restores the newest readable
    /// snapshot, replays the commands after it, checks every replayed event against the event
    /// journal and rewrites the events a crash cut off.
    pub fn open(
        engine_config: EngineConfig,
        config: DurableConfig,
    ) -> Result<(DurableEngine, DurableRecovery), DurableError> {
        DurableEngine::open_with_progress(engine_config, config, &mut |_, _| {})
    }

    /// [`DurableEngine::open`], telling `progress(replayed, to_replay)` how far the replay of the
    /// command tail is (every [`PROGRESS_EVERY_COMMANDS`] commands, and once at the end), so a
    /// long recovery can show it.
    pub fn open_with_progress(
        engine_config: EngineConfig,
        config: DurableConfig,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<(DurableEngine, DurableRecovery), DurableError> {
        let dir = config.dir.clone();
        let lock = lock_dir(&dir)?;
        // Sealed segments holding only records the newest snapshot covers are not read (headers
        // checked; any record recovery does read, from an older snapshot, is checked by its
        // reader): restart time follows the journal's tail, not its length.
        let snapshots = list_snapshots(&dir)?;
        let commands_scan_from = snapshots.last().map_or(0, |(seq, _)| seq + 1);
        let (commands, commands_report) =
            JournalWriter::open_scanning_from(dir.join("commands"), config.journal, commands_scan_from)?;
        let last_command = commands_report.next_seq() - 1;

        let mut choice = SnapshotChoice::new(engine_config.clone(), snapshots, last_command);
        // The newest readable snapshot decides where the event journal is read from.
        let events_scan_from =
            choice.newest_readable.as_ref().map_or(0, |(_, _, engine)| engine.next_event_seq());
        let (mut events, events_report) =
            JournalWriter::open_scanning_from(dir.join("events"), config.journal, events_scan_from)?;
        let events_next = events_report.next_seq();
        let (snapshot_seq, mut engine) = match choice.restorable(events_next) {
            Some((seq, engine)) => (Some(seq), engine),
            None => (None, Engine::new(engine_config.clone())),
        };

        // Replay the command tail, pairing each event with the journaled one.
        let verifier = match engine.next_event_seq() {
            first_event if first_event < events_next => {
                EventVerifier::open(&dir.join("events"), first_event)?
            }
            _ => EventVerifier::none(),
        };
        let mut check =
            ReplayCheck { verifier, writer: &mut events, events_next, regenerated: 0, error: None };
        let from = snapshot_seq.map_or(1, |s| s + 1);
        let commands_replayed = replay_tail(&mut engine, &dir, from, last_command, &mut check, progress)?;
        let (verified, regenerated) = (check.verifier.verified(), check.regenerated);
        if engine.next_event_seq() < events_next {
            return Err(DurableError::EventsAhead {
                events_last: events_next - 1,
                replayed_last: engine.next_event_seq() - 1,
            });
        }
        let failure = Arc::new(FailureSlot::default());
        let events = if config.derive_events {
            // The deriver's engine starts where the matching engine stands now.
            let mut state = Vec::new();
            engine.write_snapshot(&mut state);
            let copy = Engine::from_snapshot(engine_config.clone(), &state)
                .map_err(|source| DurableError::Snapshot { path: dir.clone(), source })?;
            EventJournal::Derived(EventDeriver::start(
                copy,
                events,
                &dir.join("commands"),
                commands.progress(),
                last_command + 1,
                Arc::clone(&failure),
            )?)
        } else {
            EventJournal::start(events, Arc::clone(&failure), config.event_thread)?
        };
        let durable = DurableEngine {
            engine,
            engine_config,
            commands_progress: commands.progress(),
            commands_next: commands.next_seq(),
            commands: Some(commands),
            events,
            dir,
            snapshot_every_commands: config.snapshot_every_commands,
            commands_since_snapshot: commands_replayed,
            event_thread: config.event_thread && !config.derive_events,
            derive_events: config.derive_events,
            snapshot_in_flight: Arc::new(AtomicBool::new(false)),
            _lock: lock,
            failure,
        };
        let recovery = DurableRecovery {
            commands: commands_report,
            events: events_report,
            snapshot_seq,
            snapshots_skipped: choice.skipped,
            commands_replayed,
            events_verified: verified,
            events_regenerated: regenerated,
        };
        Ok((durable, recovery))
    }

    /// Journals `command`, processes it, journals its events and hands them to `sink`, and
    /// publishes both journals' records before returning (a batch of one; the runner's path,
    /// through [`engine::Processor`], publishes once per batch instead). The command's seq must
    /// be [`DurableEngine::next_command_seq`].
    pub fn process<S: EventSink>(&mut self, command: &Command, sink: &mut S) -> Result<(), DurableError> {
        let processed = self.process_staged(command, sink);
        self.publish_batch();
        processed
    }

    /// Stages `command` in the command journal (write-ahead: before the engine sees it),
    /// processes it, and stages its events; nothing is published. Whoever calls this promises
    /// to call [`DurableEngine::publish_batch`] before anything that depends on the command
    /// leaves (acknowledgements wait for the command journal's `durable_seq`, which only a
    /// publication advances). With an event thread the command is published at once: that
    /// thread publishes events on its own schedule, and they must never be in the event journal
    /// before their command is in the command journal.
    pub fn process_staged<S: EventSink>(
        &mut self,
        command: &Command,
        sink: &mut S,
    ) -> Result<(), DurableError> {
        if self.failure.is_failed() {
            return Err(self.stopped());
        }
        let expected = self.commands_next;
        if command.header.seq != expected {
            return Err(DurableError::SeqOutOfOrder { expected, found: command.header.seq });
        }
        // `None`: journaled before it reached this thread ([`DurableEngine::split_command_journal`]).
        if let Some(commands) = self.commands.as_mut() {
            if let Err(e) = stage_command(commands, command) {
                self.failure.record(format!("command journal: {e}"));
                return Err(e.into());
            }
            if self.event_thread {
                commands.publish_staged();
            }
        }
        self.commands_next += 1;
        if self.derive_events {
            self.engine.process(command, sink);
            self.commands_since_snapshot += 1;
            self.snapshot_if_due();
            return Ok(());
        }
        let Some(commands) = self.commands.as_mut() else {
            unreachable!("handed over only with derived events")
        };
        let mut tee = JournalTee { journal: &mut self.events, commands, sink, lost: false };
        self.engine.process(command, &mut tee);
        let lost = tee.lost;
        self.events.wake();
        if lost {
            return Err(self.stopped());
        }
        self.commands_since_snapshot += 1;
        self.snapshot_if_due();
        Ok(())
    }

    /// [`DurableEngine::process_staged`] on each of `commands` in turn, through the engine's
    /// look-ahead ([`Engine::process_batch`]): the same records, events, snapshots and errors
    /// (the first is returned; as one at a time, the commands after it are still offered, and
    /// after a journal failure refused). Each command is staged in the command journal just
    /// before the engine applies it (in the engine's gate), so write-ahead holds command by
    /// command, an event frame that fills up still publishes the staged commands first, and a
    /// journal failure stops the batch at the command it struck. The batch is cut at each
    /// periodic snapshot point, so a snapshot is taken after exactly the command it would be one
    /// at a time (the look-ahead cannot run across it: the snapshot reads the engine).
    pub fn process_batch_staged<S: EventSink>(
        &mut self,
        commands: &[Command],
        sink: &mut S,
    ) -> Result<(), DurableError> {
        let mut rest = commands;
        while !rest.is_empty() {
            let chunk_len = match self.snapshot_every_commands {
                0 => rest.len(),
                every => {
                    // At least 1: a snapshot still due (the last one was in flight) is tried
                    // again after the next command, as one at a time.
                    let to_snapshot = every.saturating_sub(self.commands_since_snapshot).max(1);
                    usize::try_from(to_snapshot).map_or(rest.len(), |n| n.min(rest.len()))
                }
            };
            let applied = self.apply_staging(&rest[..chunk_len], sink);
            // The command that lost its events does not count, as in `process_staged`.
            self.commands_since_snapshot += (applied.count - usize::from(applied.lost)) as u64;
            let (mut first_error, next) = if applied.lost {
                (Some(self.stopped()), applied.count)
            } else {
                if applied.count > 0 {
                    self.snapshot_if_due();
                }
                match applied.refused {
                    Some(e) => (Some(e), applied.count + 1),
                    None => {
                        rest = &rest[chunk_len..];
                        continue;
                    }
                }
            };
            // Stopped or refused: the rest one at a time, which refuses them as it always has
            // (a wrong seq refuses only that command; a journal failure, all that follow).
            for command in &rest[next..] {
                if let Err(e) = self.process_staged(command, sink) {
                    first_error.get_or_insert(e);
                }
            }
            return first_error.map_or(Ok(()), Err);
        }
        Ok(())
    }

    /// Stages and applies `chunk` (no snapshot point inside it), stopping at the first command
    /// the journal refuses or after the one whose events it lost.
    fn apply_staging<S: EventSink>(&mut self, chunk: &[Command], sink: &mut S) -> Applied {
        // Handed over only with derived events (`split_command_journal`).
        if self.derive_events {
            return self.apply_commands_only(chunk, sink);
        }
        let Some(commands) = self.commands.as_mut() else {
            unreachable!("the journal is handed over only with derived events")
        };
        let failure = &*self.failure;
        let event_thread = self.event_thread;
        let mut refused = None;
        let mut tee = JournalTee { journal: &mut self.events, commands, sink, lost: false };
        let count = self.engine.process_batch_with(chunk, &mut tee, |command, tee| {
            // What `process_staged` does around each command: wake the event thread for the
            // previous command's events, stop after a loss, check, stage write-ahead.
            tee.journal.wake();
            if tee.lost {
                return false;
            }
            if failure.is_failed() {
                let message = failure.message().unwrap_or_else(|| "journal failure".into());
                refused = Some(DurableError::Stopped(message));
                return false;
            }
            let expected = tee.commands.next_seq();
            if command.header.seq != expected {
                refused = Some(DurableError::SeqOutOfOrder { expected, found: command.header.seq });
                return false;
            }
            let staged = stage_command(tee.commands, command);
            if let Err(e) = staged {
                failure.record(format!("command journal: {e}"));
                refused = Some(e.into());
                return false;
            }
            if event_thread {
                tee.commands.publish_staged();
            }
            true
        });
        let lost = tee.lost;
        self.commands_next = tee.commands.next_seq();
        self.events.wake();
        Applied { count, lost, refused }
    }

    /// [`DurableEngine::apply_staging`] when the events are derived by another thread: the
    /// gate checks each command's seq and stages it (write-ahead), unless the command journal
    /// was handed to the thread before the ring, which has journaled it already; the events go
    /// straight to `sink`.
    fn apply_commands_only<S: EventSink>(&mut self, chunk: &[Command], sink: &mut S) -> Applied {
        let failure = &*self.failure;
        let mut commands = self.commands.as_mut();
        let next = &mut self.commands_next;
        let mut refused = None;
        let count = self.engine.process_batch_with(chunk, sink, |command, _| {
            if failure.is_failed() {
                let message = failure.message().unwrap_or_else(|| "journal failure".into());
                refused = Some(DurableError::Stopped(message));
                return false;
            }
            if command.header.seq != *next {
                refused = Some(DurableError::SeqOutOfOrder { expected: *next, found: command.header.seq });
                return false;
            }
            if let Some(commands) = commands.as_mut() {
                if let Err(e) = stage_command(commands, command) {
                    failure.record(format!("command journal: {e}"));
                    refused = Some(e.into());
                    return false;
                }
            }
            *next += 1;
            true
        });
        Applied { count, lost: false, refused }
    }

    /// Per command: two compares inline, the snapshot itself out of line.
    #[inline]
    fn snapshot_if_due(&mut self) {
        if self.snapshot_every_commands > 0 && self.commands_since_snapshot >= self.snapshot_every_commands {
            self.snapshot_now_due();
        }
    }

    #[cold]
    #[inline(never)]
    fn snapshot_now_due(&mut self) {
        self.publish_batch();
        self.snapshot_in_background();
    }

    /// Publishes what [`DurableEngine::process_staged`] staged: the command frame first, then the
    /// event frame, so the event journal never holds an event whose command the command journal
    /// lacks. Costs one CRC and a few atomic stores per journal, no system call.
    #[inline]
    pub fn publish_batch(&mut self) {
        if let Some(commands) = self.commands.as_mut() {
            commands.publish_staged();
        }
        self.events.publish();
    }

    fn stopped(&self) -> DurableError {
        DurableError::Stopped(self.failure.message().unwrap_or_else(|| "journal failure".into()))
    }

    /// A handle on the journals' health for the host: once a journal write fails the engine
    /// stops, and the host must stop taking orders and say why.
    pub fn health(&self) -> JournalHealth {
        JournalHealth(Arc::clone(&self.failure))
    }

    /// Waits for the journals' background work started by `open` (the next segment file of each
    /// journal, made by helper threads): a benchmark calls it before a timed loop so that the
    /// helpers' page zeroing does not compete with it. A venue never needs to.
    pub fn wait_background(&mut self) -> Result<(), DurableError> {
        if let Some(commands) = self.commands.as_mut() {
            commands.wait_spare()?;
        }
        self.events.wait_ready();
        match self.failure.message() {
            Some(e) => Err(DurableError::Stopped(e)),
            None => Ok(()),
        }
    }

    /// With derived events ([`DurableConfig::derive_events`]), `hook` is called on the deriver's
    /// thread after each run of event frames it publishes: a reader of the event journal that
    /// parks (market data) rings its doorbell here, since whoever rings it after a batch of
    /// commands (the router) does so before the deriver has written that batch's events. Other
    /// modes write the events before the batch ends, and the hook is not called. Set once.
    pub fn on_events_journaled(&self, hook: impl Fn() + Send + Sync + 'static) {
        if let EventJournal::Derived(deriver) = &self.events {
            deriver.on_published(Box::new(hook));
        }
    }

    /// Highest event seq the event-journal thread has appended so far (it trails the engine).
    pub fn events_written_seq(&self) -> u64 {
        self.events.written_seq()
    }

    /// Waits until every event produced so far is in the event journal (tools and tests that
    /// read the event journal while the engine is open).
    pub fn flush_events(&self) -> Result<(), DurableError> {
        self.events.wait_written(self.engine.next_event_seq() - 1).map_err(DurableError::Stopped)
    }

    /// Stops the event-journal thread after it has appended every event, and syncs both journals
    /// unless the policy is page-cache. Dropping the engine does the same but cannot report.
    pub fn close(mut self) -> Result<(), DurableError> {
        self.publish_batch();
        self.events.stop()?;
        if let Some(e) = self.failure.message() {
            return Err(DurableError::Stopped(e));
        }
        if let Some(commands) = self.commands.as_ref() {
            if commands.config().sync != SyncPolicy::PageCache {
                commands.sync()?;
            }
        }
        Ok(())
    }

    /// Hands the command journal to the thread that feeds this engine (a router or a producer
    /// thread, before the engine thread's command ring): from now on that thread journals and
    /// publishes each command before it passes the command on, and this engine only checks
    /// each command's seq and matches it. Only with derived events
    /// ([`DurableConfig::derive_events`]): the event journal then needs nothing from the
    /// matching thread either, which so does no journal work at all. Anything staged is
    /// published first. Errors: [`DurableError::Split`] when the mode or an earlier split
    /// forbids it.
    pub fn split_command_journal(&mut self) -> Result<CommandJournal, DurableError> {
        if !self.derive_events {
            return Err(DurableError::Split(
                "the command journal can be written before the ring only with derived events",
            ));
        }
        let Some(mut writer) = self.commands.take() else {
            return Err(DurableError::Split("the command journal was already handed over"));
        };
        writer.publish_staged();
        Ok(CommandJournal::new(writer, Arc::clone(&self.failure)))
    }

    /// The seq the next command must carry (the sequencer resumes from here).
    pub fn next_command_seq(&self) -> u64 {
        self.commands_next
    }

    /// The engine, for inspection.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The engine configuration (bounds, symbols).
    pub fn engine_config(&self) -> &EngineConfig {
        &self.engine_config
    }

    /// Durability progress of the command journal: acknowledge a command's events only once
    /// `durable_seq() >= command seq` (always true at once under the page-cache policy).
    pub fn commands_progress(&self) -> JournalProgress {
        self.commands_progress.clone()
    }

    /// Progress and counters of the event journal (for monitoring; acknowledgements wait on
    /// the command journal only).
    pub fn events_progress(&self) -> JournalProgress {
        self.events.progress()
    }

    /// Writes a snapshot now, on the calling thread (for tools and shutdown).
    pub fn snapshot_now(&mut self) -> Result<PathBuf, DurableError> {
        // A snapshot must never cover commands the journal does not show yet.
        self.publish_batch();
        if !self.journal_holds_engine_state() {
            return Err(DurableError::Split(
                "a snapshot now would cover commands the command journal does not show yet",
            ));
        }
        // Claim the single in-flight slot: a background writer of the same seq would share the
        // temporary file name, and one rename would fail.
        while self.snapshot_in_flight.swap(true, Ordering::AcqRel) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let written = self.write_snapshot_here();
        self.snapshot_in_flight.store(false, Ordering::Release);
        written
    }

    /// A snapshot must never cover a command the command journal does not show: with the
    /// journal written before the ring that holds by the writer's contract (it publishes before
    /// it pushes), and is checked here all the same; a snapshot not yet covered is taken later.
    fn journal_holds_engine_state(&self) -> bool {
        self.commands.is_some() || self.commands_progress.written_seq() >= self.commands_next - 1
    }

    fn write_snapshot_here(&mut self) -> Result<PathBuf, DurableError> {
        let mut body = Vec::new();
        self.engine.write_snapshot(&mut body);
        let seq = self.commands_next - 1;
        self.commands_since_snapshot = 0;
        write_snapshot_file(&self.dir, seq, &body)
    }

    /// Serializes on this thread (a copy of the book, fast) and writes the file on another, so
    /// the engine thread does no file I/O for it. At most one snapshot is in flight; a due
    /// snapshot is skipped while the previous one is still being written.
    fn snapshot_in_background(&mut self) {
        if !self.journal_holds_engine_state() || self.snapshot_in_flight.swap(true, Ordering::AcqRel) {
            return;
        }
        self.commands_since_snapshot = 0;
        let mut body = Vec::new();
        self.engine.write_snapshot(&mut body);
        let seq = self.commands_next - 1;
        let dir = self.dir.clone();
        let in_flight = Arc::clone(&self.snapshot_in_flight);
        let spawned = std::thread::Builder::new().name("snapshot-writer".into()).spawn(move || {
            if let Err(e) = write_snapshot_file(&dir, seq, &body) {
                // A failed snapshot costs only restart time; the journal is the truth.
                eprintln!("snapshot at command {seq} failed: {e}");
            }
            in_flight.store(false, Ordering::Release);
        });
        if spawned.is_err() {
            self.snapshot_in_flight.store(false, Ordering::Release);
        }
    }
}

impl engine::Processor for DurableEngine {
    fn process<S: EventSink>(&mut self, cmd: &Command, sink: &mut S) {
        // The runner has no error path. A journal failure stops processing, so nothing after it
        // is acknowledged; the cause is in the shared failure slot, which the host watches
        // through `health()` and reports (and stops taking orders).
        let _ = DurableEngine::process_staged(self, cmd, sink);
    }

    /// The whole batch through the engine's look-ahead, journaled as one at a time (see
    /// [`DurableEngine::process_batch_staged`]); errors go where `process`'s go.
    fn process_batch<S: EventSink>(&mut self, cmds: &[Command], sink: &mut S) {
        let _ = DurableEngine::process_batch_staged(self, cmds, sink);
    }

    /// Only prefetches; the journal has nothing to do until a command is processed.
    #[inline]
    fn prefetch_upcoming(&self, upcoming: &[Command]) {
        self.engine.prefetch_upcoming(upcoming);
    }

    /// The runner's batch ends before it lets the batch's events be acted on (it rings the
    /// event doorbell after this), and acknowledgements wait for `durable_seq` anyway.
    #[inline]
    fn end_batch(&mut self) {
        self.publish_batch();
    }
}

/// Stages `command` in the command journal's open frame in the fixed layout (format version 4),
/// written straight into the mapping.
#[inline]
pub(crate) fn stage_command(
    commands: &mut JournalWriter,
    command: &Command,
) -> Result<(), crate::JournalError> {
    // `encode_fixed` leaves its zeroed buffer zero past the command: no second zeroing.
    commands.stage_with_zeroed_tail(RecordKind::Command, command.header.seq, COMMAND_FIXED_LEN_MAX, |buf| {
        command.encode_fixed(buf)
    })
}

/// How far [`DurableEngine::apply_staging`] got.
struct Applied {
    /// Commands the engine applied.
    count: usize,
    /// The event journal failed during the last of them.
    lost: bool,
    /// Why the command after them was not applied, unless `lost` or the chunk was done.
    refused: Option<DurableError>,
}

/// Stages each event in the event journal (or hands it to the event-journal thread), then
/// forwards it. Once the event journal has failed nothing more is forwarded: the venue is
/// stopping.
struct JournalTee<'a, S> {
    journal: &'a mut EventJournal,
    /// The command journal: published before an event frame that fills up is, so the event
    /// journal never runs ahead of it.
    commands: &'a mut JournalWriter,
    sink: &'a mut S,
    lost: bool,
}

impl<S: EventSink> EventSink for JournalTee<'_, S> {
    #[inline]
    fn event(&mut self, event: &Event) {
        if self.lost {
            return;
        }
        if !self.journal.has_room() {
            // The event frame is full and will be published: its commands go first.
            self.commands.publish_staged();
            self.journal.publish();
        }
        if self.journal.push(event) {
            self.sink.event(event);
        } else {
            self.lost = true;
        }
    }
}

/// During recovery: events already journaled are compared; the rest are appended.
struct ReplayCheck<'a> {
    verifier: EventVerifier,
    writer: &'a mut JournalWriter,
    events_next: u64,
    regenerated: u64,
    error: Option<DurableError>,
}

impl EventSink for ReplayCheck<'_> {
    fn event(&mut self, event: &Event) {
        if self.error.is_some() {
            return;
        }
        let result = if event.seq < self.events_next {
            match self.verifier.check(event) {
                Ok(true) => Ok(()),
                Ok(false) => Err(DurableError::EventsAhead {
                    events_last: self.events_next - 1,
                    replayed_last: event.seq,
                }),
                Err(e) => Err(e),
            }
        } else {
            self.writer
                .append_with(RecordKind::Event, event.seq, EVENT_ENCODED_LEN_MAX, |buf| event.encode(buf))
                .map(|()| self.regenerated += 1)
                .map_err(DurableError::from)
        };
        if let Err(e) = result {
            self.error = Some(e);
        }
    }
}

/// Creates the data directory and takes its single-writer lock. One writer per directory: a
/// second would interleave records and corrupt both journals. The OS releases the lock when the
/// process dies, so a crash never leaves it stuck.
fn lock_dir(dir: &Path) -> Result<fs::File, DurableError> {
    fs::create_dir_all(dir.join("snapshots")).map_err(io_err(dir))?;
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("LOCK"))
        .map_err(io_err(dir))?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(fs::TryLockError::WouldBlock) => Err(DurableError::Locked { dir: dir.to_path_buf() }),
        Err(fs::TryLockError::Error(e)) => Err(io_err(dir)(e)),
    }
}

/// Picking the snapshot recovery starts from, newest first, in two steps: the newest readable
/// one (found before the event journal is opened: it says where to read that journal from),
/// then the newest whose first event the event journal reaches.
struct SnapshotChoice {
    engine_config: EngineConfig,
    /// Snapshots not tried yet, newest first, all within the command journal.
    candidates: std::vec::IntoIter<(u64, PathBuf)>,
    /// The newest snapshot that loaded: seq, file, engine.
    newest_readable: Option<(u64, PathBuf, Engine)>,
    /// Snapshots passed over, with the reason.
    skipped: Vec<String>,
}

impl SnapshotChoice {
    /// Sorts out the snapshots newer than the command journal's `last_command` and loads the
    /// newest readable one.
    fn new(engine_config: EngineConfig, snapshots: Vec<(u64, PathBuf)>, last_command: u64) -> Self {
        let mut skipped = Vec::new();
        let mut usable = Vec::new();
        for (seq, path) in snapshots.into_iter().rev() {
            if seq > last_command {
                skipped.push(format!("{}: newer than the command journal", path.display()));
            } else {
                usable.push((seq, path));
            }
        }
        let mut choice =
            SnapshotChoice { engine_config, candidates: usable.into_iter(), newest_readable: None, skipped };
        while let Some((seq, path)) = choice.candidates.next() {
            match choice.load(&path) {
                Ok(engine) => {
                    choice.newest_readable = Some((seq, path, engine));
                    break;
                }
                Err(e) => choice.skipped.push(e.to_string()),
            }
        }
        choice
    }

    fn load(&self, path: &Path) -> Result<Engine, DurableError> {
        read_snapshot(path).and_then(|bytes| {
            Engine::from_snapshot(self.engine_config.clone(), &bytes)
                .map_err(|source| DurableError::Snapshot { path: path.to_path_buf(), source })
        })
    }

    /// The newest loadable snapshot whose first event the event journal (ending before
    /// `events_next`) reaches, if any.
    fn restorable(&mut self, events_next: u64) -> Option<(u64, Engine)> {
        let mut next = self.newest_readable.take().map(|(seq, path, engine)| (seq, path, Ok(engine)));
        loop {
            let (seq, path, loaded) = match next.take() {
                Some(candidate) => candidate,
                None => {
                    let (seq, path) = self.candidates.next()?;
                    let loaded = self.load(&path);
                    (seq, path, loaded)
                }
            };
            match loaded {
                // The event journal is written off the matching thread, so it may end before a
                // snapshot's first event (a crash with events still in the ring). Replaying from
                // this snapshot could not regenerate those; an older one (or the start) can.
                Ok(engine) if engine.next_event_seq() > events_next => self.skipped.push(format!(
                    "{}: the event journal ends at event {}, before this snapshot's event {}",
                    path.display(),
                    events_next - 1,
                    engine.next_event_seq()
                )),
                Ok(engine) => return Some((seq, engine)),
                Err(e) => self.skipped.push(e.to_string()),
            }
        }
    }
}

/// Replays commands `from..=last_command` of the command journal in `dir` into `engine`, its
/// events going to `check`; returns how many were replayed. Reads ahead on the feed thread:
/// validating and decoding the next batch overlaps matching this one.
fn replay_tail(
    engine: &mut Engine,
    dir: &Path,
    from: u64,
    last_command: u64,
    check: &mut ReplayCheck<'_>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<u64, DurableError> {
    if from > last_command {
        return Ok(0);
    }
    let to_replay = last_command - from + 1;
    let mut replayed = 0;
    let mut feed = CommandFeed::start(CommandBatches::open(dir.join("commands"), from)?, COMMAND_FEED_BATCH)?;
    loop {
        let batch = feed.next_batch()?;
        if batch.is_empty() {
            break;
        }
        // The whole batch through the engine's look-ahead; the gate stops it at the command
        // after a failed check.
        let applied = engine.process_batch_with(batch, check, |_, check| check.error.is_none());
        if let Some(e) = check.error.take() {
            return Err(e);
        }
        let before = replayed;
        replayed += applied as u64;
        if replayed / PROGRESS_EVERY_COMMANDS != before / PROGRESS_EVERY_COMMANDS {
            progress(replayed, to_replay);
        }
    }
    progress(replayed, to_replay);
    Ok(replayed)
}

/// Compares replayed events, in order, with the records of an event journal: the pair check
/// of "journal write / journal replay". Used by recovery and by the `replay` tool.
pub struct EventVerifier {
    reader: Option<JournalReader>,
    verified: u64,
}

impl EventVerifier {
    /// A verifier reading the event journal in `dir` from event `from_seq`; one with nothing to
    /// compare when the directory holds no journal.
    pub fn open(dir: &Path, from_seq: u64) -> Result<EventVerifier, DurableError> {
        let reader = if dir.exists() { Some(JournalReader::open(dir, from_seq)?) } else { None };
        Ok(EventVerifier { reader, verified: 0 })
    }

    /// A verifier with nothing to compare.
    pub fn none() -> EventVerifier {
        EventVerifier { reader: None, verified: 0 }
    }

    /// Compares `event` with the next journaled event: `Ok(true)` when equal, `Ok(false)` when
    /// the journal has no more events (it may end early after a crash), an error when they
    /// differ or the record is unreadable.
    pub fn check(&mut self, event: &Event) -> Result<bool, DurableError> {
        let Some(reader) = &mut self.reader else { return Ok(false) };
        let Some(record) = reader.next_record()? else {
            self.reader = None;
            return Ok(false);
        };
        // The journaled bytes against the replayed event's encoding (the codec has one
        // encoding per value): no decode unless they differ.
        let mut mine = [0u8; EVENT_ENCODED_LEN_MAX];
        let len = event.encode(&mut mine);
        if record.payload == &mine[..len] && record.seq == event.seq {
            self.verified += 1;
            return Ok(true);
        }
        let journaled = Event::decode(record.payload).map_err(|source| DurableError::Codec {
            journal: "events",
            seq: record.seq,
            source,
        })?;
        if journaled != *event {
            return Err(DurableError::Diverged {
                seq: event.seq,
                journaled: Box::new(journaled),
                replayed: Box::new(*event),
            });
        }
        self.verified += 1;
        Ok(true)
    }

    /// Events compared equal so far.
    pub fn verified(&self) -> u64 {
        self.verified
    }
}

/// Snapshot files by command seq, oldest first. Other files are ignored.
fn list_snapshots(dir: &Path) -> Result<Vec<(u64, PathBuf)>, DurableError> {
    let snap_dir = dir.join("snapshots");
    let mut out = Vec::new();
    for entry in fs::read_dir(&snap_dir).map_err(io_err(&snap_dir))? {
        let path = entry.map_err(io_err(&snap_dir))?.path();
        let seq = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".snap"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(seq) = seq {
            out.push((seq, path));
        }
    }
    out.sort();
    Ok(out)
}

fn write_snapshot_file(dir: &Path, seq: u64, body: &[u8]) -> Result<PathBuf, DurableError> {
    let snap_dir = dir.join("snapshots");
    let path = snap_dir.join(format!("{seq:020}.snap"));
    let tmp = snap_dir.join(format!("{seq:020}.snap.tmp"));
    let mut bytes = Vec::with_capacity(SNAPSHOT_HEADER_LEN + body.len());
    bytes.extend_from_slice(SNAPSHOT_MAGIC);
    bytes.extend_from_slice(&crc32c::crc32c(body).to_le_bytes());
    bytes.extend_from_slice(&(body.len() as u64).to_le_bytes());
    bytes.extend_from_slice(body);
    {
        use std::io::Write;
        let mut file = fs::File::create(&tmp).map_err(io_err(&tmp))?;
        file.write_all(&bytes).map_err(io_err(&tmp))?;
        file.sync_all().map_err(io_err(&tmp))?;
    }
    fs::rename(&tmp, &path).map_err(io_err(&path))?;
    fs::File::open(&snap_dir).and_then(|d| d.sync_all()).map_err(io_err(&snap_dir))?;
    Ok(path)
}

fn read_snapshot(path: &Path) -> Result<Vec<u8>, DurableError> {
    let bad = |what: &'static str| DurableError::Snapshot {
        path: path.to_path_buf(),
        source: SnapshotError::Invalid(what),
    };
    let bytes = fs::read(path).map_err(io_err(path))?;
    if bytes.len() < SNAPSHOT_HEADER_LEN || &bytes[..8] != SNAPSHOT_MAGIC {
        return Err(bad("file header"));
    }
    let crc = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    let len = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
    let body = &bytes[SNAPSHOT_HEADER_LEN..];
    if body.len() as u64 != len {
        return Err(bad("file length"));
    }
    if crc32c::crc32c(body) != crc {
        return Err(bad("file checksum"));
    }
    Ok(body.to_vec())
}
