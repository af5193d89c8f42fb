//! Events derived off the matching thread: with [`super::DurableConfig::derive_events`] the
//! matching thread journals only commands, and this thread follows the command journal's
//! published frames with a [`Tailer`], runs an [`Engine`] of its own (started from the same
//! state as the matching engine) and writes the events it produces to the event journal.
//!
//! Why this is sound: the engine is deterministic, so the same commands from the same state
//! give the same events, byte for byte; replay and recovery already rely on it. The event
//! journal keeps its invariants: it is written in order by one thread (a gapless prefix), and
//! that thread only sees commands once the command journal has published them, so it never
//! holds an event whose command is not journaled. Nothing is acknowledged from this journal:
//! reports come from the matching engine's own events and wait for the command journal's
//! `durable_seq`. Its readers (market data, settlement) trail the matching engine by the
//! deriver's lag.
//!
//! Cost: nothing per command on the matching thread (the commands are journaled anyway; it
//! checks one flag per published batch to wake the deriver), and a second engine's CPU on
//! another core.
//!
//! Waking: the deriver spins, yields, then parks with a bounded timeout
//! ([`DERIVER_PARK`]) after raising its `sleeping` flag; the matching thread reads that flag
//! after publishing a batch and unparks it. A missed wake-up (the flag is read without a fence)
//! costs at most the park timeout.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use engine::codec::EVENT_ENCODED_LEN_MAX;
use engine::{Command, Engine, Event, EventSink};

use super::event_thread::{idle_wait, join_woken, wait_written, FailureSlot};
use super::{JournalError, JournalProgress, JournalWriter, RecordKind, Tailer};

/// Longest the deriver sleeps without being woken (bounds a missed wake-up).
pub const DERIVER_PARK: Duration = Duration::from_micros(200);

/// Most commands the deriver processes before it publishes their events as one frame run.
const DERIVE_BATCH_MAX: usize = 256;

#[derive(Default)]
struct Flags {
    /// The deriver is about to park (or parked).
    sleeping: AtomicBool,
    /// It has its next event segment ready and follows the command journal.
    ready: AtomicBool,
    /// Stop once every command published so far has its events journaled.
    stop: AtomicBool,
    /// Called after each run of event frames the deriver publishes (a reader's doorbell).
    on_published: OnceLock<EventsPublishedHook>,
}

/// What the deriver calls after publishing events: wakes a reader parked on the event journal.
pub(crate) type EventsPublishedHook = Box<dyn Fn() + Send + Sync>;

/// The matching thread's handle on the deriver thread.
pub(crate) struct EventDeriver {
    flags: Arc<Flags>,
    thread: Option<JoinHandle<Result<(), JournalError>>>,
    progress: JournalProgress,
    failure: Arc<FailureSlot>,
}

impl EventDeriver {
    /// Starts the deriver: `engine` is a copy of the matching engine as it stands now (its next
    /// command is `next_command`), `writer` the event journal, which it owns from now on.
    pub(crate) fn start(
        engine: Engine,
        writer: JournalWriter,
        commands_dir: &Path,
        commands: JournalProgress,
        next_command: u64,
        failure: Arc<FailureSlot>,
    ) -> Result<EventDeriver, JournalError> {
        let tailer = Tailer::open(commands_dir, next_command)?;
        let flags = Arc::new(Flags::default());
        let progress = writer.progress();
        let thread = {
            let (flags, failure) = (Arc::clone(&flags), Arc::clone(&failure));
            thread::Builder::new()
                .name("journal-derive".into())
                .spawn(move || run(engine, writer, tailer, &commands, &flags, &failure))
                .map_err(|e| JournalError::io("journal-derive thread", e))?
        };
        Ok(EventDeriver { flags, thread: Some(thread), progress, failure })
    }

    /// Wakes the deriver if it went to sleep: after each published batch of commands.
    #[inline]
    pub(crate) fn wake(&self) {
        if self.flags.sleeping.load(Ordering::Relaxed) {
            self.flags.sleeping.store(false, Ordering::Relaxed);
            if let Some(t) = &self.thread {
                t.thread().unpark();
            }
        }
    }

    /// Sets what the deriver calls after each run of event frames it publishes (once; a second
    /// hook is ignored).
    pub(crate) fn on_published(&self, hook: EventsPublishedHook) {
        let _ = self.flags.on_published.set(hook);
    }

    /// Waits until the deriver has its next segment file ready, or failed.
    pub(crate) fn wait_ready(&self) {
        while !self.flags.ready.load(Ordering::Acquire) && !self.failure.is_failed() {
            thread::sleep(Duration::from_micros(100));
        }
    }

    /// Progress of the event journal.
    pub(crate) fn progress(&self) -> &JournalProgress {
        &self.progress
    }

    /// Waits until the event journal holds every event up to `last_seq`, or a journal failed.
    /// The caller has published the commands that produce them.
    pub(crate) fn wait_written(&self, last_seq: u64) -> Result<(), String> {
        wait_written(&self.progress, &self.failure, self.thread.as_ref(), last_seq)
    }

    /// Stops the deriver once it has journaled the events of every command published so far;
    /// reports its failure if any.
    pub(crate) fn stop(&mut self) -> Result<(), JournalError> {
        let Some(thread) = self.thread.take() else { return Ok(()) };
        self.flags.stop.store(true, Ordering::Release);
        join_woken(thread, "event deriver thread")
    }
}

impl Drop for EventDeriver {
    fn drop(&mut self) {
        // Best effort: the failure, if any, is in the shared slot already.
        let _ = self.stop();
    }
}

/// Stages each event the deriver's engine produces in the event journal; remembers the first
/// failure (every later event would leave a gap).
struct Stage<'a> {
    writer: &'a mut JournalWriter,
    error: Option<JournalError>,
}

impl EventSink for Stage<'_> {
    #[inline]
    fn event(&mut self, event: &Event) {
        if self.error.is_some() {
            return;
        }
        if let Err(e) = self
            .writer
            .stage_with(RecordKind::Event, event.seq, EVENT_ENCODED_LEN_MAX, |buf| event.encode(buf))
        {
            self.error = Some(e);
        }
    }
}

/// The deriver's body: follow the command journal, derive, journal, until asked to stop and
/// caught up with what the command journal published.
fn run(
    mut engine: Engine,
    mut writer: JournalWriter,
    mut commands: Tailer,
    published: &JournalProgress,
    flags: &Flags,
    failure: &FailureSlot,
) -> Result<(), JournalError> {
    let fail = |what: String| {
        failure.record(format!("event journal (deriver): {what}"));
    };
    if let Err(e) = writer.wait_spare() {
        fail(e.to_string());
        flags.ready.store(true, Ordering::Release);
        return writer.close();
    }
    flags.ready.store(true, Ordering::Release);
    let mut idle_rounds: u32 = 0;
    loop {
        let mut taken = 0;
        while taken < DERIVE_BATCH_MAX {
            let command = match commands.poll() {
                Ok(Some(record)) => match Command::decode(record.payload) {
                    Ok(c) if c.header.seq == record.seq => c,
                    Ok(c) => {
                        fail(format!(
                            "command journal record {} holds command seq {}",
                            record.seq, c.header.seq
                        ));
                        return writer.close();
                    }
                    Err(e) => {
                        fail(format!("command journal record {}: {e}", record.seq));
                        return writer.close();
                    }
                },
                Ok(None) => break,
                Err(e) => {
                    fail(format!("reading the command journal: {e}"));
                    return writer.close();
                }
            };
            let mut stage = Stage { writer: &mut writer, error: None };
            engine.process(&command, &mut stage);
            if let Some(e) = stage.error {
                fail(e.to_string());
                return writer.close();
            }
            taken += 1;
        }
        if taken > 0 {
            writer.publish_staged();
            if let Some(hook) = flags.on_published.get() {
                hook();
            }
            idle_rounds = 0;
            continue;
        }
        if flags.stop.load(Ordering::Acquire) && commands.next_seq() > published.written_seq() {
            break;
        }
        if failure.is_failed() {
            // The matching engine stopped: nothing more will be published.
            break;
        }
        idle_rounds += 1;
        idle_wait(idle_rounds, &flags.sleeping, DERIVER_PARK, || !flags.stop.load(Ordering::Acquire));
    }
    writer.close()
}
