//! The event journal's own thread: the matching thread hands each event over a bounded SPSC ring
//! (a copy of a plain struct, no encoding, no checksum, no system call), and this thread encodes
//! and appends them to the event journal in order.
//!
//! Why the events may lag: they are derivable. The engine is deterministic, so the command
//! journal (still written ahead of matching, on the matching thread) is the whole truth, and
//! [`super::DurableEngine::open`] regenerates every event a crash cut off (from the ring or
//! from the journal tail) before anyone reads the event journal again. Tailers (market data,
//! settlement) see an event once this thread has appended it, a few microseconds after the
//! matching thread produced it; nothing is acknowledged from this journal (acknowledgements
//! wait for the command journal's `durable_seq`).
//!
//! Waking: the thread spins briefly, then yields, then parks with a bounded timeout
//! ([`EVENT_THREAD_PARK`]), raising a `sleeping` flag first. The matching thread reads that flag
//! once per command (a relaxed load of a line that only changes when the thread goes to sleep)
//! and unparks the thread when it is set. The flag check has no store-load fence on the
//! matching thread (it would cost more than the rest of the hand-off), so a wake-up can be
//! missed in a narrow race; the park timeout bounds the delay that causes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use engine::codec::EVENT_ENCODED_LEN_MAX;
use engine::Event;
use runtime::{spsc_ring, Consumer, Producer, PushError};

use super::event_deriver::EventDeriver;
use super::{JournalError, JournalProgress, JournalWriter, RecordKind};

/// Events the ring between the matching thread and the event-journal thread holds. When it is
/// full the matching thread waits (back-pressure): the event journal never drops an event.
pub const EVENT_RING_CAPACITY: usize = 1 << 16;

/// Most events the journal thread appends between two looks at its stop and wake state.
const EVENT_BATCH_MAX: usize = 1024;

/// Longest the journal thread sleeps without being woken (bounds a missed wake-up).
pub const EVENT_THREAD_PARK: Duration = Duration::from_micros(200);

/// How long the matching thread sleeps, after yielding [`IDLE_YIELDS`] times, while the ring
/// stays full.
const FULL_RING_SLEEP: Duration = Duration::from_micros(20);

/// Spins, then yields, before parking: a busy venue keeps the thread awake without syscalls.
const IDLE_SPINS: u32 = 256;
const IDLE_YIELDS: u32 = 64;

/// The first journal failure, shared by the matching thread, the event-journal thread and the
/// host (through [`JournalHealth`]).
#[derive(Debug, Default)]
pub(crate) struct FailureSlot {
    failed: AtomicBool,
    message: Mutex<Option<String>>,
}

impl FailureSlot {
    /// Records `message` unless a failure is recorded already; returns the first one.
    pub(crate) fn record(&self, message: String) -> String {
        let mut slot = self.message.lock().unwrap_or_else(|p| p.into_inner());
        let first = slot.get_or_insert(message).clone();
        self.failed.store(true, Ordering::Release);
        first
    }

    #[inline]
    pub(crate) fn is_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    pub(crate) fn message(&self) -> Option<String> {
        if !self.is_failed() {
            return None;
        }
        self.message.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// One round of a follower thread's wait for work, its `rounds`-th since it last had some:
/// spin, then yield, then raise `sleeping` (its producer reads it to know a wake-up is due) and
/// park for at most `park` if `may_park` still holds once the flag is up.
pub(crate) fn idle_wait(rounds: u32, sleeping: &AtomicBool, park: Duration, may_park: impl FnOnce() -> bool) {
    if rounds <= IDLE_SPINS {
        std::hint::spin_loop();
    } else if rounds <= IDLE_SPINS + IDLE_YIELDS {
        thread::yield_now();
    } else {
        sleeping.store(true, Ordering::SeqCst);
        if may_park() {
            thread::park_timeout(park);
        }
        sleeping.store(false, Ordering::Relaxed);
    }
}

/// Wakes the journal thread `name` (told to stop already) and waits for its result; a panic is a
/// journal failure.
pub(crate) fn join_woken(
    thread: JoinHandle<Result<(), JournalError>>,
    name: &str,
) -> Result<(), JournalError> {
    thread.thread().unpark();
    thread.join().unwrap_or_else(|_| Err(JournalError::BackgroundSync(format!("{name} panicked"))))
}

/// Waits until the journal behind `progress` holds everything up to `last_seq`, unparking the
/// thread that writes it each round, or until a journal failed (its message).
pub(crate) fn wait_written(
    progress: &JournalProgress,
    failure: &FailureSlot,
    writer: Option<&JoinHandle<Result<(), JournalError>>>,
    last_seq: u64,
) -> Result<(), String> {
    while progress.written_seq() < last_seq {
        if let Some(e) = failure.message() {
            return Err(e);
        }
        if let Some(t) = writer {
            t.thread().unpark();
        }
        thread::yield_now();
    }
    Ok(())
}

/// A handle the host keeps to learn that the durable engine stopped because a journal write
/// failed (disk full, a segment that cannot be created, an I/O error). From that moment the
/// engine processes nothing: a command it cannot journal must not be acknowledged.
#[derive(Clone, Debug)]
pub struct JournalHealth(pub(crate) Arc<FailureSlot>);

impl JournalHealth {
    /// The first failure, `None` while the journals work.
    pub fn failure(&self) -> Option<String> {
        self.0.message()
    }

    /// True once a journal write failed (one atomic load).
    pub fn is_failed(&self) -> bool {
        self.0.is_failed()
    }
}

#[derive(Debug)]
struct Wake {
    /// The journal thread is about to park (or parked).
    sleeping: AtomicBool,
    /// The thread has its next segment file ready and is taking events.
    ready: AtomicBool,
}

/// Where a durable engine's events are journaled: on the matching thread, staged per batch
/// (`Inline`), or handed to a thread of their own (`Thread`, see the module doc). Measured on a
/// 2-vCPU VM the handoff of a ~160-byte event to another core cost the matching thread about
/// what encoding it in place did, and the process more in all, so `Inline` is the default.
pub(crate) enum EventJournal {
    /// Appended on the matching thread (the writer is `None` once stopped).
    Inline {
        /// The event journal.
        writer: Option<JournalWriter>,
        /// Where a failed append is recorded.
        failure: Arc<FailureSlot>,
        /// The writer's progress and counters (readable after it is stopped).
        progress: JournalProgress,
    },
    /// Handed over a ring to the event-journal thread.
    Thread(EventThread),
    /// Derived again from the command journal by a thread with an engine of its own
    /// (`event_deriver.rs`): the matching thread hands over nothing.
    Derived(EventDeriver),
}

impl EventJournal {
    /// Journals events with `writer`, on a thread of their own when `thread` is set.
    pub(crate) fn start(
        writer: JournalWriter,
        failure: Arc<FailureSlot>,
        thread: bool,
    ) -> Result<EventJournal, JournalError> {
        if thread {
            Ok(EventJournal::Thread(EventThread::start(writer, failure)?))
        } else {
            Ok(EventJournal::Inline { progress: writer.progress(), writer: Some(writer), failure })
        }
    }

    /// Progress and counters of the event journal, wherever it is written.
    pub(crate) fn progress(&self) -> JournalProgress {
        match self {
            EventJournal::Inline { progress, .. } => progress.clone(),
            EventJournal::Thread(thread) => thread.progress.clone(),
            EventJournal::Derived(deriver) => deriver.progress().clone(),
        }
    }

    /// Journals `event` (or hands it over); `false` once the event journal has failed. Inline,
    /// the event is staged: it is published with the batch ([`EventJournal::publish`]), or
    /// earlier when its frame is full (see [`EventJournal::has_room`]).
    #[inline]
    pub(crate) fn push(&mut self, event: &Event) -> bool {
        match self {
            EventJournal::Inline { writer: Some(writer), failure, .. } => {
                match writer
                    .stage_with(RecordKind::Event, event.seq, EVENT_ENCODED_LEN_MAX, |buf| event.encode(buf))
                {
                    Ok(()) => true,
                    Err(e) => {
                        failure.record(format!("event journal: {e}"));
                        false
                    }
                }
            }
            EventJournal::Inline { writer: None, .. } => false,
            EventJournal::Thread(thread) => thread.push(event),
            // Never called: a durable engine deriving its events passes them straight on.
            EventJournal::Derived(_) => true,
        }
    }

    /// True when the next event joins the open frame without publishing it (always true for
    /// the thread, which publishes on its own).
    #[inline]
    pub(crate) fn has_room(&self) -> bool {
        match self {
            EventJournal::Inline { writer: Some(writer), .. } => {
                writer.staged_room(RecordKind::Event, EVENT_ENCODED_LEN_MAX)
            }
            EventJournal::Inline { writer: None, .. }
            | EventJournal::Thread(_)
            | EventJournal::Derived(_) => true,
        }
    }

    /// Publishes the staged events (inline; the thread publishes each batch it takes), or wakes
    /// the deriver for the commands just published.
    #[inline]
    pub(crate) fn publish(&mut self) {
        match self {
            EventJournal::Inline { writer: Some(writer), .. } => writer.publish_staged(),
            EventJournal::Derived(deriver) => deriver.wake(),
            EventJournal::Inline { writer: None, .. } | EventJournal::Thread(_) => {}
        }
    }

    /// Once per command: wakes the event thread if it sleeps.
    #[inline]
    pub(crate) fn wake(&self) {
        if let EventJournal::Thread(thread) = self {
            thread.wake();
        }
    }

    /// Waits for the background work started at open (the next segment file).
    pub(crate) fn wait_ready(&mut self) {
        match self {
            EventJournal::Inline { writer: Some(writer), failure, .. } => {
                if let Err(e) = writer.wait_spare() {
                    failure.record(format!("event journal: {e}"));
                }
            }
            EventJournal::Inline { writer: None, .. } => {}
            EventJournal::Thread(thread) => thread.wait_ready(),
            EventJournal::Derived(deriver) => deriver.wait_ready(),
        }
    }

    /// Highest event seq in the event journal.
    pub(crate) fn written_seq(&self) -> u64 {
        match self {
            EventJournal::Inline { writer: Some(writer), .. } => writer.written_seq(),
            EventJournal::Inline { writer: None, .. } => 0,
            EventJournal::Thread(thread) => thread.written_seq(),
            EventJournal::Derived(deriver) => deriver.progress().written_seq(),
        }
    }

    /// Waits until the event journal holds every event up to `last_seq` (at once when inline).
    pub(crate) fn wait_written(&self, last_seq: u64) -> Result<(), String> {
        match self {
            EventJournal::Inline { failure, .. } => failure.message().map_or(Ok(()), Err),
            EventJournal::Thread(thread) => thread.wait_written(last_seq),
            EventJournal::Derived(deriver) => deriver.wait_written(last_seq),
        }
    }

    /// Closes the event journal (after the thread has appended everything, when threaded).
    pub(crate) fn stop(&mut self) -> Result<(), JournalError> {
        match self {
            EventJournal::Inline { writer, .. } => writer.take().map_or(Ok(()), JournalWriter::close),
            EventJournal::Thread(thread) => thread.stop(),
            EventJournal::Derived(deriver) => deriver.stop(),
        }
    }
}

/// The matching thread's end of the event-journal thread: push events, wake the thread, stop it
/// on drop.
pub(crate) struct EventThread {
    ring: Option<Producer<Event>>,
    wake: Arc<Wake>,
    thread: Option<JoinHandle<Result<(), JournalError>>>,
    progress: JournalProgress,
    failure: Arc<FailureSlot>,
}

impl EventThread {
    /// Starts the thread that owns `writer` from now on.
    pub(crate) fn start(
        writer: JournalWriter,
        failure: Arc<FailureSlot>,
    ) -> Result<EventThread, JournalError> {
        let (producer, consumer) = spsc_ring(EVENT_RING_CAPACITY);
        let wake = Arc::new(Wake { sleeping: AtomicBool::new(false), ready: AtomicBool::new(false) });
        let progress = writer.progress();
        let thread = {
            let (wake, failure) = (Arc::clone(&wake), Arc::clone(&failure));
            thread::Builder::new()
                .name("journal-events".into())
                .spawn(move || run(writer, consumer, &wake, &failure))
                .map_err(|e| JournalError::io("journal-events thread", e))?
        };
        Ok(EventThread { ring: Some(producer), wake, thread: Some(thread), progress, failure })
    }

    /// Hands `event` to the journal thread, waiting while the ring is full. Returns `false`
    /// (and drops the event) once the journal has failed: the thread no longer drains.
    #[inline]
    pub(crate) fn push(&mut self, event: &Event) -> bool {
        let Some(ring) = self.ring.as_mut() else { return false };
        let mut pending = *event;
        let mut full_rounds: u32 = 0;
        loop {
            match ring.push(pending) {
                Ok(()) => return true,
                Err(PushError::Full(back)) => {
                    if self.failure.is_failed() {
                        return false;
                    }
                    pending = back;
                    if let Some(t) = &self.thread {
                        t.thread().unpark();
                    }
                    // The journal thread is a whole ring behind (it lost its core, or the disk
                    // is slow): yield a while, then sleep, rather than burn the CPU it needs.
                    full_rounds += 1;
                    if full_rounds <= IDLE_YIELDS {
                        thread::yield_now();
                    } else {
                        thread::sleep(FULL_RING_SLEEP);
                    }
                }
            }
        }
    }

    /// Wakes the journal thread if it went to sleep. Once per command, after its events.
    #[inline]
    pub(crate) fn wake(&self) {
        if self.wake.sleeping.load(Ordering::Relaxed) {
            self.wake.sleeping.store(false, Ordering::Relaxed);
            if let Some(t) = &self.thread {
                t.thread().unpark();
            }
        }
    }

    /// Waits until the thread has its next segment file ready (see
    /// [`JournalWriter::wait_spare`]), or failed.
    pub(crate) fn wait_ready(&self) {
        while !self.wake.ready.load(Ordering::Acquire) && !self.failure.is_failed() {
            thread::sleep(Duration::from_micros(100));
        }
    }

    /// Highest event seq appended to the event journal.
    pub(crate) fn written_seq(&self) -> u64 {
        self.progress.written_seq()
    }

    /// Waits until every event pushed so far (up to `last_seq`) is in the event journal, or the
    /// journal failed. Bounded by the ring's content; the thread is woken each round.
    pub(crate) fn wait_written(&self, last_seq: u64) -> Result<(), String> {
        wait_written(&self.progress, &self.failure, self.thread.as_ref(), last_seq)
    }

    /// Stops the thread once it has appended everything pushed; reports its failure if any.
    pub(crate) fn stop(&mut self) -> Result<(), JournalError> {
        // Dropping the producer tells the thread no event will follow.
        self.ring.take();
        let Some(thread) = self.thread.take() else { return Ok(()) };
        join_woken(thread, "event journal thread")
    }
}

impl Drop for EventThread {
    fn drop(&mut self) {
        // Best effort: the failure, if any, is in the shared slot already.
        let _ = self.stop();
    }
}

/// The journal thread's body: append what comes, in order, until the producer is gone and the
/// ring is empty. A failed append stops appending (every later event would leave a gap) and is
/// recorded for the matching thread and the host; the ring is still drained so the matching
/// thread never waits on a dead consumer.
fn run(
    mut writer: JournalWriter,
    mut ring: Consumer<Event>,
    wake: &Wake,
    failure: &FailureSlot,
) -> Result<(), JournalError> {
    let mut idle_rounds: u32 = 0;
    let mut failed = false;
    // The spare segment the writer's open started making: collect it here, off the matching
    // thread, so it is not made on the first roll (the ring buffers events meanwhile).
    if let Err(e) = writer.wait_spare() {
        failure.record(format!("event journal: {e}"));
        failed = true;
    }
    wake.ready.store(true, Ordering::Release);
    loop {
        let taken = ring.pop_batch(EVENT_BATCH_MAX, |event| {
            if failed {
                return;
            }
            if let Err(e) = writer
                .stage_with(RecordKind::Event, event.seq, EVENT_ENCODED_LEN_MAX, |buf| event.encode(buf))
            {
                failure.record(format!("event journal: {e}"));
                failed = true;
            }
        });
        // One frame per batch taken (the matching thread publishes each command before handing
        // over its events, so these never run ahead of the command journal).
        writer.publish_staged();
        if taken > 0 {
            idle_rounds = 0;
            continue;
        }
        if ring.is_abandoned() && ring.is_empty() {
            break;
        }
        idle_rounds += 1;
        idle_wait(idle_rounds, &wake.sleeping, EVENT_THREAD_PARK, || ring.is_empty() && !ring.is_abandoned());
    }
    writer.close()
}
