//! The engine thread: pops commands from the inbound ring, stamps them, matches them, and pushes
//! the events to the outbound ring.
//!
//! ```text
//!  gateway ──Producer<Command>──▶ [command ring] ──▶ runner thread (pinned) ──▶ [event ring] ──Consumer<Event>──▶ fan-out
//!                                                   sequence → process_batch
//! ```
//!
//! The runner is shell, not core: it owns the thread, the core pinning, the clock and the waiting,
//! so that the [`Processor`] it drives (the [`Engine`](engine::Engine)) stays a pure state
//! machine. It is generic over the processor and the clock (static dispatch, no `dyn` per
//! command), and tests drive it with a fake processor and a stepping clock.
//!
//! Per command it does no allocation, no logging and no system call; per batch it reads the
//! clock once and publishes its counters once.
//!
//! Shutdown: drop [`RunnerHandle::commands`]; the runner drains the command ring, then ends,
//! dropping its event producer and returning the processor from its `JoinHandle`. Keep reading
//! [`RunnerHandle::events`] until [`Consumer::is_abandoned`] and empty, *then* join: the runner
//! waits for room in the event ring, so joining without draining can wait forever.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use engine::{Command, Event, EventSink, Processor};

use crate::doorbell::Doorbell;
use crate::ring::{spsc_ring, Consumer, Producer, PushError, RING_CAPACITY_MAX};
use crate::sequencer::Sequencer;
use crate::wait::{WaitStrategy, Waiter};

/// Where the runner gets time for the sequencer. Only the runner reads it, never the engine.
pub trait Clock: Send {
    /// Nanoseconds on this clock's scale.
    fn now_ns(&mut self) -> u64;
}

/// Wall-clock time (`CLOCK_REALTIME`), in nanoseconds since the Unix epoch: journal timestamps
/// and GTD `expire_ts` are wall-clock times. The sequencer keeps the stamped times from going
/// backwards when the wall clock is stepped back.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[inline]
    fn now_ns(&mut self) -> u64 {
        // A clock before 1970 is broken; 0 then lets the sequencer hold the last good time.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since_epoch| u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX))
    }
}

/// A clock that starts at `next_ns` and advances `step_ns` per reading: deterministic time for
/// tests and simulations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SteppingClock {
    /// What the next reading returns.
    pub next_ns: u64,
    /// How much each reading advances the clock.
    pub step_ns: u64,
}

impl Clock for SteppingClock {
    fn now_ns(&mut self) -> u64 {
        let now_ns = self.next_ns;
        self.next_ns = self.next_ns.saturating_add(self.step_ns);
        now_ns
    }
}

/// How the runner thread runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunnerConfig {
    /// How the thread waits when no command is there, and when the event ring is full.
    pub wait: WaitStrategy,
    /// Core to pin the thread to (an id from the process's allowed cores); `None` leaves it to
    /// the scheduler.
    pub pin_core: Option<usize>,
    /// Most commands taken per batch: the ring's head and the counters are published once per
    /// batch, and a bound keeps event delivery flowing while commands pour in.
    pub batch_max: usize,
    /// Capacity of the command ring (rounded up to a power of two).
    pub command_ring_capacity: usize,
    /// Capacity of the event ring (rounded up to a power of two). One command can make many
    /// events (a sweep of the book), so this one is larger.
    pub event_ring_capacity: usize,
    /// Sequence number of the first command: 1 for a fresh journal, last journaled + 1 when
    /// resuming.
    pub seq_first: u64,
    /// Name of the thread (shows in `top -H`, debuggers and panics).
    pub thread_name: String,
}

impl Default for RunnerConfig {
    fn default() -> RunnerConfig {
        RunnerConfig {
            wait: WaitStrategy::default(),
            pin_core: None,
            batch_max: 64,
            command_ring_capacity: 4096,
            event_ring_capacity: 16384,
            seq_first: 1,
            thread_name: "engine".to_owned(),
        }
    }
}

impl RunnerConfig {
    /// Checks the numbers and that `pin_core` names a core this process may run on.
    pub fn validate(&self) -> Result<(), RunnerError> {
        if self.batch_max == 0 {
            return Err(RunnerError::BatchMaxZero);
        }
        for (ring, capacity) in [("command", self.command_ring_capacity), ("event", self.event_ring_capacity)]
        {
            if capacity == 0 || capacity > RING_CAPACITY_MAX {
                return Err(RunnerError::RingCapacity { ring, capacity });
            }
        }
        if self.seq_first == 0 {
            return Err(RunnerError::SeqFirstZero);
        }
        if let Some(core) = self.pin_core {
            // The ids of the cores in this process's affinity mask (not simply 0..n: a
            // container or taskset may allow only some).
            let cores_allowed: Vec<usize> = core_affinity::get_core_ids()
                .ok_or(RunnerError::CoreListUnavailable)?
                .into_iter()
                .map(|core_id| core_id.id)
                .collect();
            if !cores_allowed.contains(&core) {
                return Err(RunnerError::CoreNotFound { core, cores_allowed });
            }
        }
        Ok(())
    }
}

/// Why the runner could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// `batch_max` is 0, so the runner could never take a command.
    #[error("batch_max must be at least 1")]
    BatchMaxZero,
    /// A ring capacity is 0 or above the bound.
    #[error("{ring} ring capacity {capacity} is not in 1..={RING_CAPACITY_MAX}")]
    RingCapacity {
        /// Which ring: `command` or `event`.
        ring: &'static str,
        /// The capacity asked for.
        capacity: usize,
    },
    /// `seq_first` is 0; command sequence numbers start at 1.
    #[error("seq_first must be at least 1")]
    SeqFirstZero,
    /// `pin_core` names a core that does not exist or that this process may not use.
    #[error("cannot pin the engine to core {core}: this process may run on cores {cores_allowed:?}")]
    CoreNotFound {
        /// The core asked for.
        core: usize,
        /// The cores this process may run on.
        cores_allowed: Vec<usize>,
    },
    /// The platform cannot list cores, so `pin_core` cannot be honored.
    #[error("cannot pin the engine thread: this platform does not list its cores")]
    CoreListUnavailable,
    /// The OS refused to start the thread.
    #[error("cannot start the engine thread: {0}")]
    Spawn(#[source] std::io::Error),
}

/// Whether the runner thread is pinned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinState {
    /// `pin_core` was `None`.
    NotRequested,
    /// The thread has not tried yet.
    Pending,
    /// The thread runs only on the requested core.
    Pinned,
    /// The core exists but the OS refused the affinity; the thread runs unpinned.
    Failed,
}

impl PinState {
    fn from_u8(value: u8) -> PinState {
        match value {
            0 => PinState::NotRequested,
            1 => PinState::Pending,
            2 => PinState::Pinned,
            _ => PinState::Failed,
        }
    }
}

/// Counters the runner publishes for monitoring. The runner thread is their only writer and
/// stores them once per batch, so reading them never slows the engine down by more than one
/// cache-line transfer per batch.
#[derive(Debug)]
pub struct RunnerStats {
    commands_processed: AtomicU64,
    events_published: AtomicU64,
    events_discarded: AtomicU64,
    pin_state: AtomicU8,
}

impl RunnerStats {
    fn new(pin_state: PinState) -> RunnerStats {
        RunnerStats {
            commands_processed: AtomicU64::new(0),
            events_published: AtomicU64::new(0),
            events_discarded: AtomicU64::new(0),
            pin_state: AtomicU8::new(pin_state as u8),
        }
    }

    // Relaxed everywhere: these are monitoring snapshots that no other data depends on; after
    // `join` they are exact, because joining orders every store of the thread before it.

    /// Commands taken from the command ring and processed so far.
    pub fn commands_processed(&self) -> u64 {
        self.commands_processed.load(Ordering::Relaxed)
    }

    /// Events pushed to the event ring so far.
    pub fn events_published(&self) -> u64 {
        self.events_published.load(Ordering::Relaxed)
    }

    /// Events thrown away because the event consumer was dropped (nobody could read them).
    pub fn events_discarded(&self) -> u64 {
        self.events_discarded.load(Ordering::Relaxed)
    }

    /// Whether the runner thread is pinned.
    pub fn pin_state(&self) -> PinState {
        PinState::from_u8(self.pin_state.load(Ordering::Relaxed))
    }
}

/// The other threads' side of a running runner. The fields are separate so they can be moved
/// to different threads (order entry pushes commands, market data reads events).
#[derive(Debug)]
pub struct RunnerHandle {
    /// Push commands here; drop it to stop the runner once the ring is drained.
    pub commands: Producer<Command>,
    /// Events come out here, in engine order.
    pub events: Consumer<Event>,
    /// The runner's counters.
    pub stats: Arc<RunnerStats>,
    /// Ring it after pushing commands: it wakes the engine thread when it parks
    /// ([`WaitStrategy::Park`]).
    pub commands_doorbell: Arc<Doorbell>,
    /// Under [`WaitStrategy::Park`] the engine thread rings it after each batch of events: the
    /// events' consumer registers on it (and may let its other producers ring it too) to park.
    pub events_doorbell: Arc<Doorbell>,
}

/// The engine thread's state: one processor, fed by one command ring, feeding one event ring.
pub struct Runner<P, C> {
    processor: P,
    clock: C,
    sequencer: Sequencer,
    commands: Consumer<Command>,
    events: EventRingSink,
    stats: Arc<RunnerStats>,
    wait: WaitStrategy,
    pin_core: Option<usize>,
    batch_max: usize,
    commands_doorbell: Arc<Doorbell>,
    events_doorbell: Arc<Doorbell>,
}

impl<P: Processor + 'static> Runner<P, SystemClock> {
    /// Starts the engine thread on the wall clock. See [`Runner::spawn_with_clock`].
    pub fn spawn(processor: P, config: RunnerConfig) -> Result<(RunnerHandle, JoinHandle<P>), RunnerError> {
        Runner::spawn_with_clock(processor, SystemClock, config)
    }
}

impl<P: Processor + 'static, C: Clock + 'static> Runner<P, C> {
    /// Starts the engine thread: it pins itself if asked, then runs until the command producer
    /// is dropped and every command is processed, and returns the processor (with its final
    /// state) from the `JoinHandle`. Errors are configuration errors (checked before anything
    /// starts) or the OS refusing a thread; a failed pin is not an error but
    /// [`PinState::Failed`].
    pub fn spawn_with_clock(
        processor: P,
        clock: C,
        config: RunnerConfig,
    ) -> Result<(RunnerHandle, JoinHandle<P>), RunnerError> {
        config.validate()?;
        let (command_producer, command_consumer) = spsc_ring(config.command_ring_capacity);
        let (event_producer, event_consumer) = spsc_ring(config.event_ring_capacity);
        let pin_state = if config.pin_core.is_some() { PinState::Pending } else { PinState::NotRequested };
        let stats = Arc::new(RunnerStats::new(pin_state));
        let commands_doorbell = Arc::new(Doorbell::new());
        let events_doorbell = Arc::new(Doorbell::new());
        let runner = Runner {
            processor,
            clock,
            sequencer: Sequencer::new(config.seq_first),
            commands: command_consumer,
            events: EventRingSink {
                events: event_producer,
                waiter: Waiter::new(config.wait),
                published: 0,
                discarded: 0,
            },
            stats: Arc::clone(&stats),
            wait: config.wait,
            pin_core: config.pin_core,
            batch_max: config.batch_max,
            commands_doorbell: Arc::clone(&commands_doorbell),
            events_doorbell: Arc::clone(&events_doorbell),
        };
        let join = std::thread::Builder::new()
            .name(config.thread_name)
            .spawn(move || runner.run())
            .map_err(RunnerError::Spawn)?;
        let handle = RunnerHandle {
            commands: command_producer,
            events: event_consumer,
            stats,
            commands_doorbell,
            events_doorbell,
        };
        Ok((handle, join))
    }
}

impl<P: Processor, C: Clock> Runner<P, C> {
    /// The engine thread's body.
    fn run(mut self) -> P {
        self.pin();
        self.commands_doorbell.register();
        let mut idle = Waiter::new(self.wait);
        let mut commands_processed: u64 = 0;
        let batch_max = self.batch_max;
        // The popped batch, stamped, handed to the processor whole so that it can look ahead
        // (the engine prefetches the memory of the commands behind the current one: on a deep
        // book most of its time is cache misses). Allocated once; a batch never outgrows it, as
        // it never holds more than the ring does (so a huge `batch_max` allocates no more).
        let mut batch: Vec<Command> = Vec::with_capacity(batch_max.min(self.commands.capacity()));
        loop {
            let Runner { processor, clock, sequencer, commands, events, .. } = &mut self;
            // One clock read per batch, and only once there is a command: every command of the
            // batch was already waiting when it was read, and the read (~20 ns) stays off the
            // per-command path.
            let mut batch_now_ns = None;
            batch.clear();
            let count = commands.pop_batch(batch_max, |mut cmd| {
                // A producer that journals before the ring stamps with a sequencer of its own,
                // started at the same seq: stamping again changes nothing (the time is kept).
                debug_assert!(
                    cmd.header.seq == 0 || cmd.header.seq == sequencer.seq_next(),
                    "a pre-stamped command out of the runner's order"
                );
                let now_ns = *batch_now_ns.get_or_insert_with(|| clock.now_ns());
                sequencer.stamp(&mut cmd, now_ns);
                batch.push(cmd);
            });
            debug_assert!(batch.len() == count, "pop_batch hands out at most batch_max commands");
            if count > 0 {
                processor.process_batch(&batch, events);
                // Before the doorbell: a journaling processor publishes the batch here.
                self.processor.end_batch();
                if self.wait == WaitStrategy::Park {
                    self.events_doorbell.ring();
                }
                commands_processed += count as u64;
                self.publish_stats(commands_processed);
                idle.reset();
            } else if self.commands.is_abandoned() && self.commands.is_empty() {
                // Abandoned is checked first: once it is seen, every command pushed before the
                // producer went away is visible, so "empty" then means drained for good.
                break;
            } else {
                let commands = &self.commands;
                idle.wait_on(Some(&self.commands_doorbell), || !commands.is_empty());
            }
        }
        self.publish_stats(commands_processed);
        // Dropping the event producer tells the event consumer the stream has ended.
        let Runner { processor, .. } = self;
        processor
    }

    fn pin(&mut self) {
        let Some(core) = self.pin_core else { return };
        let pinned = core_affinity::set_for_current(core_affinity::CoreId { id: core });
        let state = if pinned { PinState::Pinned } else { PinState::Failed };
        self.stats.pin_state.store(state as u8, Ordering::Relaxed);
    }

    fn publish_stats(&self, commands_processed: u64) {
        let stats = &self.stats;
        stats.commands_processed.store(commands_processed, Ordering::Relaxed);
        stats.events_published.store(self.events.published, Ordering::Relaxed);
        stats.events_discarded.store(self.events.discarded, Ordering::Relaxed);
    }
}

/// The engine without a thread of its own: the caller's thread stamps and processes each command
/// as it submits it, and gets the events back at once. The same [`Sequencer`] and [`Clock`] as
/// the [`Runner`], so the journal and the events are the same as with a thread; what goes away
/// is the two hand-offs (caller → engine thread → caller) each command otherwise costs, which on
/// a machine with fewer cores than busy threads are two scheduler wake-ups. The price is that
/// the caller's thread does the matching: nothing else runs there meanwhile.
pub struct InlineRunner<P, C> {
    processor: P,
    clock: C,
    sequencer: Sequencer,
    stats: Arc<RunnerStats>,
    commands_processed: u64,
    events_published: u64,
}

impl<P: Processor, C: Clock> InlineRunner<P, C> {
    /// An inline engine whose first command gets `seq_first`.
    pub fn new(processor: P, clock: C, seq_first: u64) -> Result<InlineRunner<P, C>, RunnerError> {
        if seq_first == 0 {
            return Err(RunnerError::SeqFirstZero);
        }
        Ok(InlineRunner {
            processor,
            clock,
            sequencer: Sequencer::new(seq_first),
            stats: Arc::new(RunnerStats::new(PinState::NotRequested)),
            commands_processed: 0,
            events_published: 0,
        })
    }

    /// Stamps `command` (sequence number and time) and processes it, a batch of its own; its
    /// events are appended to `events`, in order.
    pub fn submit(&mut self, command: Command, events: &mut Vec<Event>) {
        self.submit_in_batch(command, events);
        self.end_batch();
    }

    /// As [`InlineRunner::submit`], but the command joins the batch that the next
    /// [`InlineRunner::end_batch`] ends (a journaling processor publishes the batch then, so
    /// its commands are not durable before).
    pub fn submit_in_batch(&mut self, mut command: Command, events: &mut Vec<Event>) {
        let before = events.len();
        self.sequencer.stamp(&mut command, self.clock.now_ns());
        self.processor.process(&command, events);
        self.commands_processed += 1;
        self.events_published += (events.len() - before) as u64;
        let stats = &self.stats;
        stats.commands_processed.store(self.commands_processed, Ordering::Relaxed);
        stats.events_published.store(self.events_published, Ordering::Relaxed);
    }

    /// Tells the processor which commands are expected after the next one
    /// ([`Processor::prefetch_upcoming`]): the engine's look-ahead for a caller that submits one
    /// command at a time. Stamps nothing and processes nothing.
    #[inline]
    pub fn prefetch_upcoming(&self, upcoming: &[Command]) {
        self.processor.prefetch_upcoming(upcoming);
    }

    /// Ends the batch of the commands submitted since the last end ([`Processor::end_batch`]).
    pub fn end_batch(&mut self) {
        self.processor.end_batch();
    }

    /// The counters, as the threaded runner publishes them.
    pub fn stats(&self) -> Arc<RunnerStats> {
        Arc::clone(&self.stats)
    }

    /// The processor, with its final state.
    pub fn into_processor(self) -> P {
        self.processor
    }
}

/// An engine its caller drives, behind a trait object so the caller need not be generic over
/// the processor and the clock ([`InlineRunner`] is the implementation).
pub trait EngineStep: Send {
    /// Stamps and processes one command, appending its events to `events`; the command joins
    /// the batch the next [`EngineStep::end_batch`] ends.
    fn step(&mut self, command: Command, events: &mut Vec<Event>);

    /// Ends the batch: a journaling processor publishes it (its commands become durable under
    /// the sync policy only then).
    fn end_batch(&mut self);

    /// The commands the caller expects to step after the next one, in order (see
    /// [`InlineRunner::prefetch_upcoming`]); a hint that changes no command's events. Does
    /// nothing unless implemented.
    fn prefetch_upcoming(&self, upcoming: &[Command]) {
        let _ = upcoming;
    }
}

impl<P: Processor, C: Clock> EngineStep for InlineRunner<P, C> {
    #[inline]
    fn step(&mut self, command: Command, events: &mut Vec<Event>) {
        self.submit_in_batch(command, events);
    }

    #[inline]
    fn end_batch(&mut self) {
        InlineRunner::end_batch(self);
    }

    #[inline]
    fn prefetch_upcoming(&self, upcoming: &[Command]) {
        InlineRunner::prefetch_upcoming(self, upcoming);
    }
}

/// Pushes the processor's events to the event ring, waiting while it is full: back-pressure
/// slows the engine down, it never loses an event. The one exception is a dropped consumer:
/// nobody can read those events any more, so they are counted and discarded rather than
/// blocking the engine forever (the journal, not this ring, is the record).
struct EventRingSink {
    events: Producer<Event>,
    waiter: Waiter,
    /// Events pushed so far.
    published: u64,
    /// Events discarded because the consumer was dropped.
    discarded: u64,
}

impl EventSink for EventRingSink {
    #[inline]
    fn event(&mut self, event: &Event) {
        let mut pending = *event;
        loop {
            match self.events.push(pending) {
                Ok(()) => {
                    self.published += 1;
                    self.waiter.reset();
                    return;
                }
                Err(PushError::Full(back)) => {
                    if self.events.is_abandoned() {
                        self.discarded += 1;
                        return;
                    }
                    pending = back;
                    self.waiter.wait();
                }
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use engine::{
        AccountId, ClOrdId, CommandHeader, CommandKind, Engine, EngineConfig, EventKind, NewOrder, Side,
        SymbolId,
    };

    /// Emits `events_per_command` events per command, each echoing the command's header, and
    /// keeps every header it saw.
    #[derive(Default)]
    struct EchoProcessor {
        events_per_command: u64,
        headers_seen: Vec<CommandHeader>,
        event_seq_last: u64,
        /// Commands seen when each batch ended.
        batch_ends: Vec<usize>,
    }

    impl Processor for EchoProcessor {
        fn end_batch(&mut self) {
            self.batch_ends.push(self.headers_seen.len());
        }

        fn process<S: EventSink>(&mut self, cmd: &Command, sink: &mut S) {
            self.headers_seen.push(cmd.header);
            for _ in 0..self.events_per_command {
                self.event_seq_last += 1;
                sink.event(&Event {
                    seq: self.event_seq_last,
                    command_seq: cmd.header.seq,
                    ts: cmd.header.ts,
                    kind: EventKind::TradingStatus { symbol: SymbolId(0), halted: false },
                });
            }
        }
    }

    fn echo(events_per_command: u64) -> EchoProcessor {
        EchoProcessor { events_per_command, ..EchoProcessor::default() }
    }

    fn halt() -> Command {
        Command::new(CommandKind::Halt { symbol: SymbolId(0) })
    }

    /// Pushes `count` commands while draining events (so a full event ring cannot deadlock the
    /// test), then drops the producer, drains to the end and joins. Returns the events and the
    /// processor.
    fn run_to_end<P: Processor>(
        handle: RunnerHandle,
        join: JoinHandle<P>,
        count: u64,
    ) -> (Vec<Event>, P, Arc<RunnerStats>) {
        let RunnerHandle { mut commands, mut events, stats, .. } = handle;
        let mut received = Vec::new();
        for _ in 0..count {
            let mut cmd = halt();
            while let Err(PushError::Full(back)) = commands.push(cmd) {
                cmd = back;
                events.pop_batch(usize::MAX, |event| received.push(event));
                std::thread::yield_now();
            }
        }
        drop(commands);
        loop {
            if events.pop_batch(usize::MAX, |event| received.push(event)) == 0 {
                if events.is_abandoned() && events.is_empty() {
                    break;
                }
                std::thread::yield_now();
            }
        }
        (received, join.join().expect("runner thread panicked"), stats)
    }

    /// A journaling processor publishes at `end_batch`: every command must be followed by one,
    /// within `batch_max` commands, on the thread and inline.
    #[test]
    fn every_batch_ends_with_end_batch_within_batch_max() {
        let (handle, join) = Runner::spawn(echo(1), small_config()).unwrap();
        let (_, processor, _) = run_to_end(handle, join, 500);
        let ends = &processor.batch_ends;
        assert_eq!(ends.last(), Some(&500), "the last command is followed by a batch end");
        let mut before = 0;
        for &end in ends {
            assert!(end > before && end - before <= 8, "batch of {} commands", end - before);
            before = end;
        }
        let mut inline = InlineRunner::new(echo(1), SystemClock, 1).unwrap();
        let mut events = Vec::new();
        for _ in 0..3 {
            inline.submit(halt(), &mut events);
        }
        assert_eq!(inline.into_processor().batch_ends, vec![1, 2, 3]);
    }

    /// An inline engine's caller (the router) makes the commands of one turn one batch: a
    /// step leaves its command in the open batch, `end_batch` closes it.
    #[test]
    fn inline_steps_join_the_batch_their_caller_ends() {
        let mut inline = InlineRunner::new(echo(2), SystemClock, 1).unwrap();
        let mut events = Vec::new();
        for _ in 0..3 {
            EngineStep::step(&mut inline, halt(), &mut events);
        }
        assert_eq!(events.len(), 6, "events come back at once, before the batch ends");
        EngineStep::end_batch(&mut inline);
        EngineStep::step(&mut inline, halt(), &mut events);
        EngineStep::end_batch(&mut inline);
        let processor = inline.into_processor();
        assert_eq!(processor.batch_ends, vec![3, 4]);
        assert_eq!(processor.headers_seen.iter().map(|h| h.seq).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
    }

    fn small_config() -> RunnerConfig {
        RunnerConfig {
            wait: WaitStrategy::Yield,
            batch_max: 8,
            command_ring_capacity: 16,
            event_ring_capacity: 16,
            ..RunnerConfig::default()
        }
    }

    #[test]
    fn a_parked_engine_is_woken_by_its_doorbell_and_rings_the_consumer() {
        let config = RunnerConfig { wait: WaitStrategy::Park, ..small_config() };
        let (handle, join) = Runner::spawn(echo(1), config).unwrap();
        let RunnerHandle { mut commands, mut events, commands_doorbell, events_doorbell, .. } = handle;
        events_doorbell.register();
        // Let the engine go idle and park, then send one command at a time and park the test
        // thread with a 5 s timeout: an engine that did not ring after its events would make
        // this take 200 × 5 s. (A lost ring of the engine's own doorbell costs only its 1 ms
        // park timeout; the loom model checks that one.)
        std::thread::sleep(std::time::Duration::from_millis(20));
        let started = std::time::Instant::now();
        for _ in 0..200 {
            commands.push(halt()).unwrap();
            commands_doorbell.ring();
            while events.pop().is_none() {
                events_doorbell.sleep(|| !events.is_empty(), std::time::Duration::from_secs(5));
            }
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
        drop(commands);
        join.join().unwrap();
    }

    #[test]
    fn commands_get_gapless_seqs_and_clock_times_in_order() {
        let config = RunnerConfig { seq_first: 10, ..small_config() };
        let clock = SteppingClock { next_ns: 1_000, step_ns: 7 };
        let (handle, join) = Runner::spawn_with_clock(echo(1), clock, config).unwrap();
        let (events, processor, _) = run_to_end(handle, join, 1_000);

        let seqs: Vec<u64> = processor.headers_seen.iter().map(|header| header.seq).collect();
        assert_eq!(seqs, (10..1_010).collect::<Vec<_>>());
        let times: Vec<u64> = processor.headers_seen.iter().map(|header| header.ts).collect();
        assert!(times.iter().all(|ts| *ts >= 1_000 && (ts - 1_000) % 7 == 0), "clock readings");
        assert!(times.windows(2).all(|pair| pair[0] <= pair[1]), "time never goes back");
        let event_command_seqs: Vec<u64> = events.iter().map(|event| event.command_seq).collect();
        assert_eq!(event_command_seqs, seqs, "events in command order");
    }

    #[test]
    fn a_full_event_ring_slows_the_engine_but_loses_nothing() {
        // Five events per command into a 2-slot ring: the runner waits on almost every event.
        let config = RunnerConfig { event_ring_capacity: 2, ..small_config() };
        let (handle, join) = Runner::spawn(echo(5), config).unwrap();
        let (events, processor, stats) = run_to_end(handle, join, 500);

        let seqs: Vec<u64> = events.iter().map(|event| event.seq).collect();
        assert_eq!(seqs, (1..=2_500).collect::<Vec<_>>());
        assert_eq!(processor.headers_seen.len(), 500);
        assert_eq!((stats.events_published(), stats.events_discarded()), (2_500, 0));
    }

    #[test]
    fn stops_only_after_draining_commands_pushed_before_the_producer_dropped() {
        let (handle, join) = Runner::spawn(echo(0), small_config()).unwrap();
        let RunnerHandle { mut commands, events, stats, .. } = handle;
        for _ in 0..commands.capacity() {
            commands.push(halt()).unwrap();
        }
        drop(commands);
        let processor = join.join().unwrap();
        assert_eq!(processor.headers_seen.len(), 16);
        assert_eq!(stats.commands_processed(), 16);
        assert!(events.is_abandoned() && events.is_empty());
    }

    #[test]
    fn counters_match_after_join() {
        let (handle, join) = Runner::spawn(echo(3), small_config()).unwrap();
        let (events, _, stats) = run_to_end(handle, join, 300);
        assert_eq!(stats.commands_processed(), 300);
        assert_eq!(stats.events_published(), 900);
        assert_eq!(events.len(), 900);
        assert_eq!(stats.pin_state(), PinState::NotRequested);
    }

    #[test]
    fn a_dropped_event_consumer_does_not_block_the_engine() {
        let config = RunnerConfig { event_ring_capacity: 4, ..small_config() };
        let (handle, join) = Runner::spawn(echo(2), config).unwrap();
        let RunnerHandle { mut commands, events, stats, .. } = handle;
        drop(events);
        for _ in 0..100 {
            let mut cmd = halt();
            while let Err(PushError::Full(back)) = commands.push(cmd) {
                cmd = back;
                std::thread::yield_now();
            }
        }
        drop(commands);
        let processor = join.join().unwrap();
        assert_eq!(processor.headers_seen.len(), 100);
        assert_eq!(stats.events_published() + stats.events_discarded(), 200);
        assert_eq!(stats.events_published(), 4, "only what fit before the ring filled");
    }

    #[test]
    fn a_batch_max_beyond_the_ring_takes_what_the_ring_holds() {
        // The batch buffer is sized by the ring, not by `batch_max`: this must not try to
        // allocate usize::MAX commands.
        let config = RunnerConfig { batch_max: usize::MAX, ..small_config() };
        let (handle, join) = Runner::spawn(echo(2), config).unwrap();
        let (events, processor, stats) = run_to_end(handle, join, 300);
        assert_eq!(processor.headers_seen.len(), 300);
        assert_eq!((stats.commands_processed(), events.len()), (300, 600));
    }

    #[test]
    fn bad_configs_are_errors_not_panics() {
        let bad = [
            RunnerConfig { batch_max: 0, ..RunnerConfig::default() },
            RunnerConfig { command_ring_capacity: 0, ..RunnerConfig::default() },
            RunnerConfig { event_ring_capacity: RING_CAPACITY_MAX + 1, ..RunnerConfig::default() },
            RunnerConfig { seq_first: 0, ..RunnerConfig::default() },
            RunnerConfig { pin_core: Some(usize::MAX), ..RunnerConfig::default() },
        ];
        for config in bad {
            let error = Runner::spawn(echo(1), config.clone()).map(|_| ()).unwrap_err();
            assert!(!error.to_string().is_empty(), "{config:?}");
        }
        let error =
            RunnerConfig { pin_core: Some(usize::MAX), ..RunnerConfig::default() }.validate().unwrap_err();
        assert!(matches!(error, RunnerError::CoreNotFound { core: usize::MAX, .. }), "{error}");
    }

    #[test]
    fn pins_to_an_allowed_core() {
        let Some(core) = core_affinity::get_core_ids().and_then(|ids| ids.first().copied()) else {
            return; // A platform without core listing cannot pin; validate() reports that.
        };
        let config = RunnerConfig { pin_core: Some(core.id), ..small_config() };
        let (handle, join) = Runner::spawn(echo(1), config).unwrap();
        let (_, _, stats) = run_to_end(handle, join, 10);
        assert_eq!(stats.pin_state(), PinState::Pinned);
    }

    /// A deterministic mix of limit orders around one price, both sides, some crossing.
    fn order_flow(count: u64) -> Vec<Command> {
        let cent = engine::PRICE_UNITS_PER_ONE / 100;
        (0..count)
            .map(|i| {
                let side = if i % 2 == 0 { Side::Buy } else { Side::Sell };
                let price = (10_000 + (i * 7 % 11) as i64 - 5) * cent;
                let id = ClOrdId::from_str(&format!("o{i}")).unwrap();
                let account = (i % 4) as u32;
                let order = NewOrder::limit(AccountId(account), SymbolId(0), id, side, price, 1 + i % 5);
                Command::new(CommandKind::New(order))
            })
            .collect()
    }

    fn small_engine() -> Engine {
        Engine::new(EngineConfig { orders_max: 4096, levels_per_side_max: 256, ..EngineConfig::default() })
    }

    #[test]
    fn the_engine_behind_the_runner_emits_what_it_emits_when_called_directly() {
        let flow = order_flow(2_000);
        // A clock that stands still: then the stamps do not depend on how commands batch.
        let clock = SteppingClock { next_ns: 1_700_000_000_000_000_000, step_ns: 0 };

        let mut direct = small_engine();
        let mut sequencer = Sequencer::new(1);
        let mut direct_events = Vec::new();
        for cmd in &flow {
            let mut cmd = *cmd;
            sequencer.stamp(&mut cmd, clock.next_ns);
            direct.process(&cmd, &mut direct_events);
        }

        let (handle, join) = Runner::spawn_with_clock(small_engine(), clock, small_config()).unwrap();
        let RunnerHandle { mut commands, mut events, stats, .. } = handle;
        let mut runner_events = Vec::new();
        for cmd in &flow {
            let mut cmd = *cmd;
            while let Err(PushError::Full(back)) = commands.push(cmd) {
                cmd = back;
                events.pop_batch(usize::MAX, |event| runner_events.push(event));
                std::thread::yield_now();
            }
        }
        drop(commands);
        while !(events.is_abandoned() && events.is_empty()) {
            events.pop_batch(usize::MAX, |event| runner_events.push(event));
            std::thread::yield_now();
        }
        events.pop_batch(usize::MAX, |event| runner_events.push(event));
        let engine = join.join().unwrap();

        assert!(runner_events.iter().any(|event| matches!(event.kind, EventKind::Trade { .. })));
        assert_eq!(runner_events, direct_events);
        assert_eq!(engine.orders_live(), direct.orders_live());
        assert_eq!(engine.next_event_seq(), direct.next_event_seq());
        assert_eq!(stats.commands_processed(), 2_000);
        assert_eq!(stats.events_published(), direct_events.len() as u64);
    }

    #[test]
    fn the_inline_runner_emits_what_the_engine_thread_emits() {
        let flow = order_flow(2_000);
        let clock = SteppingClock { next_ns: 1_700_000_000_000_000_000, step_ns: 0 };
        let mut direct = small_engine();
        let mut sequencer = Sequencer::new(7);
        let mut direct_events = Vec::new();
        for cmd in &flow {
            let mut cmd = *cmd;
            sequencer.stamp(&mut cmd, clock.next_ns);
            direct.process(&cmd, &mut direct_events);
        }

        let mut inline = InlineRunner::new(small_engine(), clock, 7).unwrap();
        let stats = inline.stats();
        let mut inline_events = Vec::new();
        for cmd in &flow {
            let step: &mut dyn EngineStep = &mut inline;
            step.step(*cmd, &mut inline_events);
        }
        assert_eq!(inline_events, direct_events);
        assert!(inline_events.iter().any(|event| matches!(event.kind, EventKind::Trade { .. })));
        assert_eq!(stats.commands_processed(), 2_000);
        assert_eq!(stats.events_published(), direct_events.len() as u64);
        assert_eq!(inline.into_processor().orders_live(), direct.orders_live());
        assert!(matches!(InlineRunner::new(small_engine(), clock, 0), Err(RunnerError::SeqFirstZero)));
    }

    #[test]
    fn system_clock_reads_nanoseconds_since_the_epoch() {
        // 2020-01-01 in ns: a sanity bound, not a timing assertion.
        assert!(SystemClock.now_ns() > 1_577_836_800_000_000_000);
    }

    #[test]
    fn stepping_clock_steps() {
        let mut clock = SteppingClock { next_ns: 5, step_ns: 10 };
        assert_eq!([clock.now_ns(), clock.now_ns(), clock.now_ns()], [5, 15, 25]);
    }
}
