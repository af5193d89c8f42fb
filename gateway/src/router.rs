//! The router: the host of order management ([`oms::OrderManager`]) and the engine's only
//! client. It owns what the sans-IO core does not: the link to the engine (its rings, or an
//! engine stepped inline on this thread), acknowledgement gating on the journal, the outbox to
//! the gateway thread, the clock, and its own thread when it has one.
//!
//! ```text
//! sessions ──ToRouter (bounded MPSC)──▶ router ──Producer<Command>──▶ engine thread
//! sessions ◀──Delivery (bounded outbox)── router ◀──Consumer<Event>──── engine thread
//! ```
//!
//! Acknowledgement gating: an event reaches order management's reports only once the command
//! journal is durable up to the event's command (`JournalProgress::durable_seq`), so nothing is
//! acknowledged before its sync policy is met. Under group commit the router itself is the
//! journal thread: it syncs once per batch of held events.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

pub use crate::metrics::RouterMetrics;
use crate::metrics::{Queues, MATCH_SAMPLE_EVERY};
use crossbeam_channel::{Receiver, Sender, TryRecvError};
use engine::{AccountId, Command, CommandKind, Event, SymbolId};
use journal::{CommandJournal, JournalProgress};
use oms::admin::{AdminRequest, SavedState};
use oms::{OmsConfig, OmsStats, OrderManager};
use runtime::{
    Clock, Consumer, Doorbell, EngineStep, Producer, PushError, Sequencer, SystemClock, WaitStrategy, Waiter,
};

pub use oms::{Delivery, Request, SessionId};

/// Capacity of the channel from sessions to the router.
pub const INBOUND_CHANNEL_CAPACITY: usize = 65_536;
/// Capacity of the outbox to the gateway thread; past it deliveries wait in order management's
/// bounded queue ([`oms::OUTPUT_MAX`]).
pub const OUTBOX_CAPACITY: usize = 65_536;
/// Most messages handled per loop turn from either side, so neither starves the other.
const BATCH_MAX: usize = 256;
/// Admin state saves waiting for the writer thread.
const ADMIN_SAVES_MAX: usize = 16;

/// What a session asks of the router.
#[derive(Debug)]
pub enum ToRouter {
    /// Where every account's messages go from now on (sent once by the gateway when it starts;
    /// messages made before it are kept until then).
    Outbox(Outbox),
    /// A session logged on as `account`.
    Attach {
        /// The session.
        session: SessionId,
        /// Its account.
        account: AccountId,
        /// Cancel the account's orders when the session ends.
        cancel_on_disconnect: bool,
    },
    /// The session ended.
    Detach {
        /// The session.
        session: SessionId,
        /// It ended with a Logout from the client: cancel-on-disconnect applies only to
        /// connections lost without one.
        graceful: bool,
    },
    /// An AdminRequest from an admin account's session.
    Admin {
        /// The admin's account (where the answer goes).
        account: AccountId,
        /// What it asks.
        request: AdminRequest,
    },
    /// An admin's halt or resume of a symbol (AdminRequest `halt` / `resume`).
    TradingStatus {
        /// The admin's account (where the answer goes).
        account: AccountId,
        /// AdminReqID.
        req_id: String,
        /// The symbol.
        symbol: SymbolId,
        /// Its name, for the answer.
        name: String,
        /// Halt (true) or resume.
        halted: bool,
    },
    /// An order request from a session.
    Request {
        /// The session.
        session: SessionId,
        /// What it asks.
        request: Request,
    },
}

/// Where every account's messages go: the gateway thread, which hands each to the account's
/// connection or, with none, to its detached session for a resend after the next Logon.
#[derive(Clone, Debug)]
pub struct Outbox {
    tx: Sender<Delivery>,
    /// Wakes the gateway's poll loop when the router has a thread of its own; `None` when the
    /// gateway hosts the router and reads the outbox after each turn.
    waker: Option<Arc<mio::Waker>>,
}

impl Outbox {
    /// An outbox read by the thread that runs the router, after each of the router's turns.
    pub fn local(tx: Sender<Delivery>) -> Outbox {
        Outbox { tx, waker: None }
    }

    /// An outbox read by a mio poll loop, woken by `waker`.
    pub fn channel(tx: Sender<Delivery>, waker: Arc<mio::Waker>) -> Outbox {
        Outbox { tx, waker: Some(waker) }
    }

    /// Sends, or hands the message back when the channel is full (as rtrb's `PushError::Full`
    /// does: the caller keeps it, nothing is allocated to carry it).
    #[allow(clippy::result_large_err)]
    fn send(&self, delivery: Delivery) -> Result<(), Delivery> {
        let sent = self.tx.try_send(delivery).map_err(|e| e.into_inner());
        if let Some(waker) = &self.waker {
            let _ = waker.wake();
        }
        sent
    }
}

/// Router counters: order management's.
pub type RouterStats = OmsStats;

/// How the router runs.
pub struct RouterConfig {
    /// Order management: its numbering, gates, admin and start-up cancels.
    pub oms: OmsConfig,
    /// How the thread waits when idle.
    pub wait: WaitStrategy,
    /// The command journal's progress, for acknowledgement gating; `None` with no journal.
    pub durability: Option<Durability>,
    /// The router's own doorbell: the sessions ring it (and the engine thread, with
    /// [`EngineLink::Rings`], whose `RunnerHandle::events_doorbell` it then is), and the router
    /// parks on it under [`WaitStrategy::Park`].
    pub doorbell: Arc<Doorbell>,
    /// Core to pin the router thread to (with [`EngineLink::Inline`] it is the engine's
    /// thread); `None` leaves it to the scheduler.
    pub pin_core: Option<usize>,
    /// Monitoring handles for the router's thread ([`RouterMetrics::register`]); `None` records
    /// into handles nobody reads.
    pub metrics: Option<RouterMetrics>,
}

/// How the router reaches the matching engine.
pub enum EngineLink {
    /// The engine thread ([`runtime::Runner`]), through its two rings.
    Rings {
        /// The command ring ([`runtime::RunnerHandle::commands`]).
        commands: Producer<Command>,
        /// The event ring ([`runtime::RunnerHandle::events`]).
        events: Consumer<Event>,
        /// Rung after every push so a parked engine thread wakes
        /// ([`runtime::RunnerHandle::commands_doorbell`]).
        doorbell: Arc<Doorbell>,
        /// The command journal, when the router writes it
        /// ([`journal::DurableEngine::split_command_journal`]): each command is stamped here
        /// and journaled and published before it is pushed, so the engine thread does no
        /// journal work.
        journal: Option<Box<CommandJournal>>,
    },
    /// The engine run on the router's own thread ([`runtime::InlineRunner`]): each command is
    /// matched as the router submits it, saving the two thread hand-offs of the rings.
    Inline(Box<dyn EngineStep>),
}

impl std::fmt::Debug for EngineLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EngineLink::Rings { .. } => "EngineLink::Rings",
            EngineLink::Inline(_) => "EngineLink::Inline",
        })
    }
}

/// See [`Router::turn_due`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TurnDue {
    /// Session messages are waiting.
    Now,
    /// Within ~50 µs: events are held for the journal, or an engine thread may produce some.
    Soon,
}

/// The command journal in the router's hands ([`EngineLink::Rings`]'s `journal`), with the
/// sequencer that stamps what it journals (the engine thread's, started at the same seq,
/// stamps the same numbers again and keeps the time).
struct RouterJournal {
    journal: CommandJournal,
    sequencer: Sequencer,
    failed: bool,
}

impl RouterJournal {
    /// Stamps and journals `command`, published: true when it may go to the engine. After a
    /// write failure nothing may (the venue is stopping: the host watches the journal's health
    /// and says why); the first is told here too.
    fn append(&mut self, command: &mut Command) -> bool {
        self.sequencer.stamp(command, SystemClock.now_ns());
        match self.journal.append(std::slice::from_ref(command)) {
            Ok(()) => true,
            Err(e) => {
                if !std::mem::replace(&mut self.failed, true) {
                    eprintln!("router: command journal failed, nothing more reaches the engine: {e}");
                }
                false
            }
        }
    }
}

/// The router's side of [`EngineLink`].
enum Link {
    /// `scratch` holds a batch read from `events` (kept, so reading allocates nothing).
    Rings {
        commands: Producer<Command>,
        events: Consumer<Event>,
        doorbell: Arc<Doorbell>,
        scratch: Vec<Event>,
        journal: Option<Box<RouterJournal>>,
    },
    Inline {
        engine: Box<dyn EngineStep>,
        events: Vec<Event>,
        /// Look ahead across a turn's requests ([`Router::set_look_ahead`]).
        look_ahead: bool,
        /// The turn's messages, read before any is handled, so the requests behind the one
        /// being handled are known.
        turn: VecDeque<ToRouter>,
        /// The command each of the turn's messages would become if admitted, in order: what
        /// the engine prefetches for.
        upcoming: Vec<Command>,
    },
}

/// Where sessions send requests: the router's channel, and its doorbell rung after each send.
#[derive(Clone, Debug)]
pub struct RouterTx {
    tx: Sender<ToRouter>,
    doorbell: Arc<Doorbell>,
}

impl RouterTx {
    /// Sends, waiting for room (control messages: attach, detach).
    pub fn send(&self, message: ToRouter) -> Result<(), NotSent> {
        self.tx.send(message).map_err(|_| NotSent)?;
        self.doorbell.ring();
        Ok(())
    }

    /// Sends if there is room (requests: a full channel is a "gateway busy" refusal).
    pub fn try_send(&self, message: ToRouter) -> Result<(), NotSent> {
        self.tx.try_send(message).map_err(|_| NotSent)?;
        self.doorbell.ring();
        Ok(())
    }
    /// For a driver in the same thread (a benchmark): an outbox it reads, and sessions
    /// `1..=accounts` attached to accounts `0..accounts`, none canceling on disconnect.
    pub fn attach_local(&self, accounts: u32) -> Result<Receiver<Delivery>, NotSent> {
        let (out_tx, out_rx) = crossbeam_channel::bounded(OUTBOX_CAPACITY);
        self.send(ToRouter::Outbox(Outbox::local(out_tx)))?;
        for account in 0..accounts {
            let session = u64::from(account) + 1;
            self.send(ToRouter::Attach {
                session,
                account: AccountId(account),
                cancel_on_disconnect: false,
            })?;
        }
        Ok(out_rx)
    }
}

/// The router did not take a message: its channel was full (`try_send`) or it has stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotSent;

/// Acknowledgement gating on the command journal.
#[derive(Clone, Debug)]
pub struct Durability {
    /// Progress of the command journal.
    pub progress: JournalProgress,
    /// Group commit: the router syncs the journal itself before releasing events.
    pub group_commit: bool,
}

/// Writes the admin state file off the matching thread; the outcome of the last write is kept
/// for the next AdminResponse.
#[derive(Debug)]
struct AdminSaver {
    tx: Sender<(PathBuf, SavedState)>,
    last_error: Arc<Mutex<Option<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl AdminSaver {
    fn start() -> std::io::Result<AdminSaver> {
        let (tx, rx) = crossbeam_channel::bounded::<(PathBuf, SavedState)>(ADMIN_SAVES_MAX);
        let last_error: Arc<Mutex<Option<String>>> = Arc::default();
        let errors = last_error.clone();
        let thread = std::thread::Builder::new().name("admin-state".into()).spawn(move || {
            for (path, state) in rx {
                let outcome =
                    oms::admin::write_state(&path, &state).err().map(|e| format!("{}: {e}", path.display()));
                *errors.lock().unwrap_or_else(|p| p.into_inner()) = outcome;
            }
        })?;
        Ok(AdminSaver { tx, last_error, thread: Some(thread) })
    }

    /// Queues a save; with the queue full (a burst of admin requests) it writes here.
    fn save(&self, path: PathBuf, state: SavedState) {
        if let Err(e) = self.tx.try_send((path, state)) {
            let (path, state) = e.into_inner();
            let outcome =
                oms::admin::write_state(&path, &state).err().map(|e| format!("{}: {e}", path.display()));
            *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = outcome;
        }
    }

    /// Why the last save failed, if it did.
    fn last_error(&self) -> Option<String> {
        self.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Drop for AdminSaver {
    fn drop(&mut self) {
        // Closing the channel ends the thread once it has written what is queued.
        let (dead, _) = crossbeam_channel::bounded(0);
        drop(std::mem::replace(&mut self.tx, dead));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The router's state. It runs on a thread of its own ([`spawn`]) or is hosted by another
/// thread's loop (the gateway's), which calls [`Router::turn`].
pub struct Router {
    engine: Link,
    inbound: Receiver<ToRouter>,
    oms: OrderManager,
    wait: WaitStrategy,
    durability: Option<Durability>,
    doorbell: Arc<Doorbell>,
    pin_core: Option<usize>,
    /// Events out of the engine whose commands are not durable yet.
    held: VecDeque<Event>,
    /// Where deliveries go ([`ToRouter::Outbox`]); until then they wait in order management.
    outbox: Option<Outbox>,
    admin_saver: AdminSaver,
    stats: Arc<OmsStats>,
    metrics: RouterMetrics,
    /// Commands pushed to an inline engine (which of them to time).
    pushed: u64,
    /// Rung after a turn that took events from the engine (which has journaled them by then):
    /// a journal tailer parked for new events ([`Router::ring_after_events`]).
    events_bell: Option<Arc<Doorbell>>,
    /// Events taken since the last ring of `events_bell`.
    events_unrung: bool,
    /// The host rings `events_bell` itself, after its writes ([`Router::hold_events_bell`]).
    events_bell_held: bool,
    stop: Arc<AtomicBool>,
}

/// A running router.
#[derive(Debug)]
pub struct RouterHandle {
    /// Where sessions send requests.
    pub inbound: RouterTx,
    /// Counters.
    pub stats: Arc<RouterStats>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RouterHandle {
    /// Stops the router: it drops the command producer (the engine thread then drains and
    /// ends), and reads events until the engine is gone.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts the router thread, linked to the engine by `engine`.
pub fn spawn(engine: EngineLink, config: RouterConfig) -> std::io::Result<RouterHandle> {
    let (router, inbound) = Router::new(engine, config)?;
    spawn_built(router, inbound)
}

/// Starts a router made with [`Router::new`] (and perhaps [`Router::rebuild`]) on a thread of
/// its own.
pub fn spawn_built(router: Router, inbound: RouterTx) -> std::io::Result<RouterHandle> {
    let (stats, stop) = (router.stats.clone(), router.stop.clone());
    let thread = std::thread::Builder::new().name("router".into()).spawn(move || router.run())?;
    Ok(RouterHandle { inbound, stats, stop, thread: Some(thread) })
}

impl Router {
    /// A router not yet running, and where sessions send it requests. Run it with [`spawn`],
    /// or host it: call [`Router::begin`] once, then [`Router::turn`] whenever its inputs may
    /// have changed and as [`Router::turn_due`] says, then [`Router::end`].
    pub fn new(engine: EngineLink, config: RouterConfig) -> std::io::Result<(Router, RouterTx)> {
        let oms = OrderManager::new(config.oms).map_err(std::io::Error::other)?;
        let metrics = match config.metrics {
            Some(m) => m,
            None => RouterMetrics::unobserved().map_err(std::io::Error::other)?,
        };
        let (tx, rx) = crossbeam_channel::bounded(INBOUND_CHANNEL_CAPACITY);
        let engine = match engine {
            EngineLink::Rings { commands, events, doorbell, journal } => Link::Rings {
                commands,
                events,
                doorbell,
                scratch: Vec::with_capacity(BATCH_MAX),
                journal: journal.map(|journal| {
                    let sequencer = Sequencer::new(journal.next_seq());
                    Box::new(RouterJournal { journal: *journal, sequencer, failed: false })
                }),
            },
            EngineLink::Inline(engine) => Link::Inline {
                engine,
                events: Vec::new(),
                look_ahead: true,
                turn: VecDeque::with_capacity(BATCH_MAX),
                upcoming: Vec::with_capacity(BATCH_MAX),
            },
        };
        let router = Router {
            engine,
            inbound: rx,
            stats: oms.stats(),
            oms,
            wait: config.wait,
            durability: config.durability,
            doorbell: config.doorbell.clone(),
            pin_core: config.pin_core,
            held: VecDeque::new(),
            outbox: None,
            admin_saver: AdminSaver::start()?,
            metrics,
            pushed: 0,
            events_bell: None,
            events_bell_held: false,
            events_unrung: false,
            stop: Arc::new(AtomicBool::new(false)),
        };
        Ok((router, RouterTx { tx, doorbell: config.doorbell }))
    }

    /// Rings `bell` after each turn in which the engine produced events, once per turn however
    /// many: a thread following the event journal (market data) parks on it instead of
    /// polling. A turn with no events costs nothing more; one with events, a fence and a load,
    /// plus a futex wake only while that thread is parked.
    pub fn ring_after_events(&mut self, bell: Arc<Doorbell>) {
        self.events_bell = Some(bell);
    }

    /// A turn no longer rings the events bell: the host calls [`Router::ring_events_bell`]
    /// once the turn's reports are written. A thread woken on a 2-core machine takes the core
    /// the reports are still waiting on, so the gateway that hosts the router rings after its
    /// sockets' writes.
    pub fn hold_events_bell(&mut self) {
        self.events_bell_held = true;
    }

    /// Counters.
    pub fn stats(&self) -> Arc<OmsStats> {
        self.stats.clone()
    }

    /// Rebuilds order state from the journals before the first turn (see
    /// [`OrderManager::rebuild`]).
    pub fn rebuild(
        &mut self,
        commands: impl IntoIterator<Item = Command>,
        events: impl IntoIterator<Item = Event>,
        reported: Vec<u64>,
    ) {
        let metrics = &mut self.metrics;
        let events = events.into_iter().inspect(|event| metrics.replayed_event(event));
        self.oms.rebuild(commands, events, reported);
    }

    /// When a host should turn the router again even if nothing wakes it: at once while
    /// session messages wait (a turn takes a bounded batch), soon while events wait for the
    /// journal's durability, deliveries wait for room, or an engine thread may produce events
    /// (nothing rings the host for those), otherwise `None`.
    pub fn turn_due(&self) -> Option<TurnDue> {
        if !self.inbound.is_empty() {
            Some(TurnDue::Now)
        } else if !self.held.is_empty()
            || self.oms.has_deliveries()
            || matches!(self.engine, Link::Rings { .. })
        {
            Some(TurnDue::Soon)
        } else {
            None
        }
    }

    /// One turn: engine events, then a batch of session messages, then held events whose
    /// commands are now durable, then deliveries. True when it did something.
    pub fn turn(&mut self) -> bool {
        let started = Instant::now();
        let busy = self.turn_inner();
        if !self.events_bell_held {
            self.ring_events_bell();
        }
        if busy {
            let engine_rings = match &self.engine {
                Link::Rings { commands, events, .. } => (commands.len(), events.len()),
                Link::Inline { .. } => (0, 0),
            };
            let queues = Queues {
                inbound: self.inbound.len(),
                engine_rings,
                live_orders: self.oms.orders().live_len(),
            };
            self.metrics.turn_done(started, &self.stats, queues);
        } else {
            self.metrics.idle_turn(started);
        }
        busy
    }

    fn turn_inner(&mut self) -> bool {
        let mut busy = self.drain_events();
        if matches!(self.engine, Link::Inline { look_ahead: true, .. }) {
            busy |= self.handle_looking_ahead();
        } else {
            busy |= self.handle_one_by_one();
        }
        if busy {
            self.end_engine_batch();
        }
        busy |= self.release_held();
        busy | self.flush_deliveries()
    }

    /// Up to [`BATCH_MAX`] session messages, each handled as it is read.
    fn handle_one_by_one(&mut self) -> bool {
        let mut busy = false;
        for _ in 0..BATCH_MAX {
            match self.inbound.try_recv() {
                Ok(message) => {
                    busy = true;
                    self.handle(message);
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        busy
    }

    /// With an inline engine: up to [`BATCH_MAX`] session messages read first, then handled in
    /// the same order and the same way as [`Router::handle_one_by_one`] does, except that
    /// before each request the engine is told the commands the requests behind it would
    /// become, and prefetches their memory (the look-ahead `Runner` gets from
    /// `Processor::process_batch`). Why not hand the engine the turn's commands as one batch:
    /// order management admits each request against the risk exposure, funds and order state
    /// the previous command's events left (and, when they are durable at once, reports them
    /// between two requests), so the commands of a turn are only known one at a time. The
    /// guesses are the requests as sent; one that a gate refuses costs a few wasted loads.
    fn handle_looking_ahead(&mut self) -> bool {
        let Link::Inline { turn, upcoming, .. } = &mut self.engine else {
            unreachable!("only an inline engine looks ahead here")
        };
        while turn.len() < BATCH_MAX {
            match self.inbound.try_recv() {
                Ok(message) => turn.push_back(message),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        if turn.is_empty() {
            return false;
        }
        upcoming.clear();
        upcoming.extend(turn.iter().filter_map(command_guess));
        let mut next = 0;
        loop {
            let Link::Inline { engine, turn, upcoming, .. } = &mut self.engine else { unreachable!() };
            let Some(message) = turn.pop_front() else { break };
            if command_guess(&message).is_some() {
                next += 1;
                engine.prefetch_upcoming(&upcoming[next..]);
            }
            self.handle(message);
        }
        true
    }

    /// With an inline engine, whether it looks ahead across a turn's requests (on by
    /// default); off, each message is handled as it is read. The reports, commands and journal
    /// are the same either way (a test runs a flow both ways); the switch is for that test and
    /// for measuring what it gains. Through the rings it does nothing: the engine thread looks
    /// ahead across the batches it pops.
    pub fn set_look_ahead(&mut self, on: bool) {
        if let Link::Inline { look_ahead, .. } = &mut self.engine {
            *look_ahead = on;
        }
    }

    /// Rings the events bell if a turn took events since the last ring (once however many).
    pub fn ring_events_bell(&mut self) {
        if std::mem::take(&mut self.events_unrung) {
            if let Some(bell) = &self.events_bell {
                bell.ring();
            }
        }
    }

    /// Deliveries into the outbox, oldest first, while it has room.
    fn flush_deliveries(&mut self) -> bool {
        let Some(outbox) = &self.outbox else { return false };
        let mut sent = false;
        while let Some(delivery) = self.oms.pop_delivery() {
            if let Err(back) = outbox.send(delivery) {
                self.oms.unpop_delivery(back);
                break;
            }
            sent = true;
        }
        sent
    }

    /// Before the first turn, on the thread that will turn it: pins that thread if configured,
    /// and pushes order management's start-up cancels.
    pub fn begin(&mut self) {
        if let Some(core) = self.pin_core {
            if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
                eprintln!("router: could not pin to core {core}; running unpinned");
            }
        }
        for kind in self.oms.start() {
            self.push(kind);
        }
        self.end_engine_batch();
        self.commands_done();
        self.ring_events_bell();
    }

    fn run(mut self) {
        self.begin();
        self.doorbell.register();
        let mut waiter = Waiter::new(self.wait);
        loop {
            let busy = self.turn();
            if self.stop.load(Ordering::Acquire) {
                break;
            }
            if busy {
                waiter.reset();
            } else if self.held.is_empty() {
                // Nothing rings for journal progress: park only with nothing held for it.
                let inbound = &self.inbound;
                match &self.engine {
                    Link::Rings { events, .. } => {
                        waiter.wait_on(Some(&self.doorbell), || !events.is_empty() || !inbound.is_empty())
                    }
                    Link::Inline { .. } => waiter.wait_on(Some(&self.doorbell), || !inbound.is_empty()),
                }
            } else {
                waiter.wait();
            }
        }
        self.end();
    }

    /// After the last turn: shuts the engine down. The engine thread drains its ring and ends
    /// once the producer is gone; an inline engine (and its journal) closes as it is dropped.
    pub fn end(self) {
        if let Link::Rings { commands, mut events, journal, .. } = self.engine {
            drop(commands);
            while !(events.is_abandoned() && events.is_empty()) {
                if events.pop().is_none() {
                    std::thread::yield_now();
                }
            }
            // A command journal written here is synced here (unless page-cache), as the engine
            // thread's would be when it closes.
            if let Some(Err(e)) = journal.map(|j| j.journal.close()) {
                eprintln!("router: closing the command journal: {e}");
            }
        }
    }

    fn handle(&mut self, message: ToRouter) {
        let now_ns = wall_clock_ns();
        let command = match message {
            ToRouter::Outbox(outbox) => {
                self.outbox = Some(outbox);
                None
            }
            ToRouter::Attach { session, account, cancel_on_disconnect } => {
                self.oms.attach(session, account, cancel_on_disconnect);
                None
            }
            ToRouter::Detach { session, graceful } => self.oms.detach(session, graceful),
            ToRouter::Admin { account, request } => {
                tracing::info!(account = account.0, ?request, "admin request");
                // A failed save is said in the next answer's text: the admin sees it, and which.
                let warning =
                    self.admin_saver.last_error().map(|e| format!("the last admin state save failed: {e}"));
                let kill = self.oms.admin(account, request, warning);
                if let Some((path, state)) = self.oms.take_state_to_save() {
                    self.admin_saver.save(path, state);
                }
                kill
            }
            ToRouter::TradingStatus { account, req_id, symbol, name, halted } => {
                tracing::info!(account = account.0, symbol = %name, halted, "admin halt or resume");
                Some(self.oms.trading_status(account, req_id, symbol, &name, halted))
            }
            ToRouter::Request { session, request } => self.oms.request(session, request, now_ns),
        };
        if let Some(kind) = command {
            self.push(kind);
            self.commands_done();
        }
    }

    /// Sends one command to the engine. Through the rings: while the command ring is full,
    /// keeps reading events so the engine (which may be waiting for room in the event ring) can
    /// make progress. Inline: the engine matches it now, and its events are taken at once.
    fn push(&mut self, kind: CommandKind) {
        let mut command = Command::new(kind);
        if let Link::Inline { engine, events, .. } = &mut self.engine {
            // One command in MATCH_SAMPLE_EVERY has its engine step timed.
            self.pushed = self.pushed.wrapping_add(1);
            let timed =
                (cfg!(feature = "metrics") && self.pushed & (MATCH_SAMPLE_EVERY - 1) == 0).then(Instant::now);
            engine.step(command, events);
            let mut events = std::mem::take(events);
            if let Some(started) = timed {
                self.metrics.match_timed(started);
            }
            for event in &events {
                self.take_event(event);
            }
            events.clear();
            if let Link::Inline { events: scratch, .. } = &mut self.engine {
                *scratch = events; // keeps its capacity
            }
            return;
        }
        if let Link::Rings { journal: Some(journal), .. } = &mut self.engine {
            if !journal.append(&mut command) {
                return;
            }
        }
        let mut waiter = Waiter::new(self.wait);
        loop {
            let Link::Rings { commands, doorbell, .. } = &mut self.engine else {
                unreachable!("inline above")
            };
            match commands.push(command) {
                Ok(()) => {
                    doorbell.ring();
                    break;
                }
                Err(PushError::Full(back)) => {
                    command = back;
                    if !self.drain_events() {
                        waiter.wait();
                    }
                }
            }
        }
    }

    /// An inline engine: the commands pushed this turn are one batch, published to the journal
    /// now (their events wait in `held` until then). The engine thread ends its own batches.
    fn end_engine_batch(&mut self) {
        if let Link::Inline { engine, .. } = &mut self.engine {
            engine.end_batch();
        }
    }

    /// Reads a batch of events from the event ring; true when there were some. (An inline
    /// engine's events are taken as it makes them.)
    fn drain_events(&mut self) -> bool {
        // (Not a stack array of BATCH_MAX events: its page probes and initialisation cost
        // every idle turn more than the events do.)
        let Link::Rings { events, scratch, .. } = &mut self.engine else { return false };
        let mut batch = std::mem::take(scratch);
        events.pop_batch(BATCH_MAX, |event| batch.push(event));
        let busy = !batch.is_empty();
        for event in &batch {
            self.take_event(event);
        }
        batch.clear();
        if let Link::Rings { scratch, .. } = &mut self.engine {
            *scratch = batch; // keeps its capacity
        }
        busy
    }

    /// One engine event: exposure follows it now; its reports once its command is durable.
    fn take_event(&mut self, event: &Event) {
        self.events_unrung = true;
        self.metrics.event(event);
        self.oms.on_engine_event(event);
        if self.held.is_empty() && self.is_durable(event.command_seq) {
            self.oms.on_event(event);
        } else {
            self.held.push_back(*event);
        }
    }

    fn is_durable(&self, command_seq: u64) -> bool {
        self.durability.as_ref().is_none_or(|d| d.progress.durable_seq() >= command_seq)
    }

    /// Tells order management how far commands are processed, durable and reported: an inline
    /// engine has processed every command pushed; through the rings a command is known
    /// processed once a later one has events, so the oldest held event bounds it.
    fn commands_done(&mut self) {
        let processed = match (&self.engine, self.held.front()) {
            (_, Some(first_held)) => first_held.command_seq - 1,
            (Link::Inline { .. }, None) => self.oms.next_seq() - 1,
            (Link::Rings { .. }, None) => return,
        };
        let durable = self.durability.as_ref().map_or(u64::MAX, |d| d.progress.durable_seq());
        self.oms.commands_done(processed.min(durable));
    }

    /// Releases held events whose commands are durable; syncs first under group commit.
    fn release_held(&mut self) -> bool {
        let Some(last) = self.held.back().map(|e| e.command_seq) else {
            return false;
        };
        if let Some(d) = &self.durability {
            if d.group_commit && d.progress.durable_seq() < last {
                if let Err(e) = d.progress.sync() {
                    eprintln!("router: journal sync failed, acknowledgements withheld: {e}");
                    return false;
                }
            }
        }
        let mut released = false;
        while let Some(event) = self.held.front().copied() {
            if !self.is_durable(event.command_seq) {
                break;
            }
            self.held.pop_front();
            self.oms.on_event(&event);
            released = true;
        }
        self.commands_done();
        released
    }
}

/// The command a session message becomes if order management admits it as sent: what the engine
/// may prefetch for. (Admission may still change it, as a market order's price cap does, or
/// refuse it: a guess only.)
fn command_guess(message: &ToRouter) -> Option<Command> {
    let ToRouter::Request { request, .. } = message else { return None };
    let kind = match *request {
        Request::New { order, .. } => CommandKind::New(order),
        Request::Cancel { cancel, .. } => CommandKind::Cancel(cancel),
        Request::Replace { replace, .. } => CommandKind::Replace(replace),
        // A mass cancel walks the account's orders, which no prefetch of a few lines helps;
        // status requests never reach the engine.
        Request::MassCancel { .. } | Request::Status { .. } | Request::MassStatus { .. } => return None,
    };
    Some(Command::new(kind))
}

/// Wall-clock nanoseconds (rate limits and reject timestamps; the engine never sees it).
fn wall_clock_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use engine::{ClOrdId, Engine, EngineConfig, NewOrder, Side, PRICE_UNITS_PER_ONE};
    use oms::admin::AdminConfig;
    use runtime::{InlineRunner, SystemClock};

    use super::*;

    fn inline_router() -> (Router, RouterTx) {
        let engine_config = EngineConfig::default();
        let symbols = engine_config.symbols.clone();
        let engine = InlineRunner::new(Engine::new(engine_config), SystemClock, 1).unwrap();
        let config = RouterConfig {
            oms: OmsConfig {
                seq_first: 1,
                accounts: 1,
                symbols,
                risk: None,
                rate_limit: None,
                admin: AdminConfig::default(),
                cancel_at_start: Vec::new(),
                drop_copies: Vec::new(),
                funds: None,
            },
            wait: WaitStrategy::BusySpin,
            durability: None,
            doorbell: Arc::new(Doorbell::new()),
            pin_core: None,
            metrics: None,
        };
        Router::new(EngineLink::Inline(Box::new(engine)), config).unwrap()
    }

    /// Resting orders of account 0 the scripted flow starts from: past the engine's
    /// look-ahead threshold (8k order slots), so the prefetches really run.
    const SCRIPT_RESTING: u32 = 9_000;
    const SCRIPT_ACCOUNTS: u32 = 5;

    /// How the scripted flow's engine runs.
    #[derive(Clone, Copy, Debug)]
    enum ScriptEngine {
        /// The bare engine, no journal.
        Bare,
        /// `DurableEngine` with an event thread, acknowledgements gated on the command journal
        /// (page cache): each command is published, so durable, as it is staged, and its
        /// reports go out between two requests of a turn.
        Journaled,
    }

    fn mask_wall_clock(text: &str) -> String {
        // Reject and mass-cancel reports carry the router's wall-clock time: masked. (Engine
        // times come from a stepping clock and are compared.)
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find("transact_ns: ") {
            let (head, tail) = rest.split_at(at + "transact_ns: ".len());
            out.push_str(head);
            out.push('_');
            rest = tail.trim_start_matches(|c: char| c.is_ascii_digit());
        }
        out.push_str(rest);
        out
    }

    /// A processor that counts the look-ahead hints it is given, so the test knows the
    /// look-ahead ran (the reports alone could not tell).
    struct CountingHints<P> {
        inner: P,
        hints: Arc<std::sync::atomic::AtomicU64>,
    }

    impl<P: engine::Processor> engine::Processor for CountingHints<P> {
        fn process<S: engine::EventSink>(&mut self, cmd: &Command, sink: &mut S) {
            self.inner.process(cmd, sink);
        }

        fn end_batch(&mut self) {
            self.inner.end_batch();
        }

        fn prefetch_upcoming(&self, upcoming: &[Command]) {
            if !upcoming.is_empty() {
                self.hints.fetch_add(1, Ordering::Relaxed);
            }
            self.inner.prefetch_upcoming(upcoming);
        }
    }

    /// What a scripted run left: every delivery, the journaled commands, the hints given.
    struct ScriptRun {
        deliveries: Vec<String>,
        journal: Vec<String>,
        hints: u64,
    }

    /// A seeded flow through an inline router over a deep book: five sessions (four with risk
    /// limits tight enough to refuse some orders, and positions that fill up as they trade
    /// against the book), new limit and market orders, cancels and replaces of live and unknown
    /// ids, mass cancels, status requests, a cancel-on-disconnect session dropping and coming
    /// back, all in turns of 1 to 300 messages. Returns every delivery in order (wall-clock
    /// times masked), the command journal's records when journaled, and the hints given.
    fn run_script(look_ahead: bool, engine_kind: ScriptEngine) -> ScriptRun {
        let engine_config = EngineConfig { orders_max: 1 << 15, ..EngineConfig::default() };
        let symbols = engine_config.symbols.clone();
        let clock = runtime::SteppingClock { next_ns: 1_700_000_000_000_000_000, step_ns: 1_000 };
        let dir = std::env::temp_dir()
            .join(format!("router-script-{}-{look_ahead}-{engine_kind:?}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let hints = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (engine, durability): (Box<dyn EngineStep>, _) = match engine_kind {
            ScriptEngine::Bare => {
                let counted =
                    CountingHints { inner: Engine::new(engine_config.clone()), hints: hints.clone() };
                (Box::new(InlineRunner::new(counted, clock, 1).unwrap()), None)
            }
            ScriptEngine::Journaled => {
                let config =
                    journal::DurableConfig { event_thread: true, ..journal::DurableConfig::new(&dir) };
                let (durable, _) = journal::DurableEngine::open(engine_config.clone(), config).unwrap();
                let progress = durable.commands_progress();
                let durability = Durability { progress, group_commit: false };
                let counted = CountingHints { inner: durable, hints: hints.clone() };
                (Box::new(InlineRunner::new(counted, clock, 1).unwrap()), Some(durability))
            }
        };
        let mut risk =
            risk::RiskEngine::new(risk::RiskConfig::new(symbols.clone(), SCRIPT_ACCOUNTS)).unwrap();
        for account in 1..SCRIPT_ACCOUNTS {
            let limits = risk::RiskLimits {
                order_qty_max: Some(60),
                open_orders_max: Some(12),
                position_max: Some(150),
                ..risk::RiskLimits::default()
            };
            risk.set_limits(engine::AccountId(account), limits).unwrap();
        }
        let config = RouterConfig {
            oms: OmsConfig {
                seq_first: 1,
                accounts: SCRIPT_ACCOUNTS as usize,
                symbols,
                risk: Some(risk),
                rate_limit: None,
                admin: AdminConfig::default(),
                cancel_at_start: Vec::new(),
                drop_copies: vec![(engine::AccountId(1), engine::AccountId(2))],
                funds: None,
            },
            wait: WaitStrategy::BusySpin,
            durability,
            doorbell: Arc::new(Doorbell::new()),
            pin_core: None,
            metrics: None,
        };
        let (mut router, tx) = Router::new(EngineLink::Inline(engine), config).unwrap();
        router.set_look_ahead(look_ahead);
        let (out_tx, out_rx) = crossbeam_channel::bounded(OUTBOX_CAPACITY);
        tx.send(ToRouter::Outbox(Outbox::local(out_tx))).unwrap();
        let attach = |account: u32| ToRouter::Attach {
            session: u64::from(account) + 100,
            account: engine::AccountId(account),
            cancel_on_disconnect: account == 4,
        };
        for account in 0..SCRIPT_ACCOUNTS {
            tx.send(attach(account)).unwrap();
        }
        router.begin();
        let mut deliveries = Vec::new();
        let turn = |router: &mut Router, deliveries: &mut Vec<String>| {
            while router.turn() {}
            while router.turn_due().is_some() {
                router.turn();
            }
            deliveries.extend(out_rx.try_iter().map(|d| mask_wall_clock(&format!("{d:?}"))));
        };
        let cent = PRICE_UNITS_PER_ONE / 100;
        let id = |n: u64| ClOrdId::from_str(&format!("o{n}")).unwrap();
        let request =
            |request: Request| ToRouter::Request { session: u64::from(request.account().0) + 100, request };
        // The book: account 0's bids 90.00-99.99 and asks 100.01-109.99.
        for n in 0..u64::from(SCRIPT_RESTING) {
            let (side, ticks) =
                if n % 2 == 0 { (Side::Buy, 9_000 + n % 1_000) } else { (Side::Sell, 10_001 + n % 999) };
            let order = NewOrder::limit(
                engine::AccountId(0),
                engine::SymbolId(0),
                id(n),
                side,
                ticks as i64 * cent,
                5,
            );
            tx.send(request(Request::New { order, ref_seq: n })).unwrap();
            if n % 256 == 255 {
                turn(&mut router, &mut deliveries);
            }
        }
        turn(&mut router, &mut deliveries);
        let resting_acks = deliveries.len();
        assert!(resting_acks >= SCRIPT_RESTING as usize, "{resting_acks} deliveries for the book");

        let mut x: u64 = 0x19_2026_1205;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut issued = u64::from(SCRIPT_RESTING);
        let mut sent = 0;
        let mut detached = false;
        let mut mine: Vec<Vec<u64>> = vec![Vec::new(); SCRIPT_ACCOUNTS as usize];
        while sent < 6_000 {
            let chunk = 1 + next() % 300;
            for _ in 0..chunk {
                sent += 1;
                let r = next();
                let account = engine::AccountId(1 + (r % u64::from(SCRIPT_ACCOUNTS - 1)) as u32);
                let side = if (r >> 8) % 2 == 0 { Side::Buy } else { Side::Sell };
                // One of the account's last ids (or, one time in eight, anyone's).
                let own = &mine[account.index()];
                let earlier = match own.len() {
                    n if n > 0 && (r >> 56) % 8 != 0 => id(own[n - 1 - ((r >> 24) as usize % n.min(12))]),
                    _ => id(issued.saturating_sub((r >> 24) % 40)),
                };
                let earlier = || earlier;
                let message = match (r >> 4) % 20 {
                    0..=7 => {
                        // Around the touch, so some cross and trade with the book or each other.
                        let ticks = 10_000 + ((r >> 12) % 41) as i64 - 20;
                        let qty = 1 + (r >> 32) % 70;
                        issued += 1;
                        mine[account.index()].push(issued);
                        let order = NewOrder::limit(
                            account,
                            engine::SymbolId(0),
                            id(issued),
                            side,
                            ticks * cent,
                            qty,
                        );
                        request(Request::New { order, ref_seq: sent })
                    }
                    8 => {
                        issued += 1;
                        let order = NewOrder::market(
                            account,
                            engine::SymbolId(0),
                            id(issued),
                            side,
                            1 + (r >> 32) % 20,
                        );
                        request(Request::New { order, ref_seq: sent })
                    }
                    9..=12 => {
                        let cancel = engine::CancelOrder {
                            account,
                            symbol: engine::SymbolId(0),
                            id: earlier(),
                            request_id: Some(ClOrdId::from_str(&format!("c{sent}")).unwrap()),
                        };
                        let request_id = ClOrdId::from_str(&format!("c{sent}")).unwrap();
                        request(Request::Cancel { cancel, request_id, side, ref_seq: sent })
                    }
                    13..=16 => {
                        let orig_id = earlier();
                        issued += 1;
                        mine[account.index()].push(issued);
                        let replace = engine::ReplaceOrder {
                            account,
                            symbol: engine::SymbolId(0),
                            orig_id,
                            id: id(issued),
                            price: Some(engine::PriceUnits((9_990 + ((r >> 12) % 15) as i64) * cent)),
                            qty: 1 + (r >> 32) % 70,
                        };
                        request(Request::Replace { replace, side, ref_seq: sent })
                    }
                    17 => request(Request::Status {
                        account,
                        cl_ord_id: earlier(),
                        req_id: None,
                        side,
                        symbol: engine::SymbolId(0),
                    }),
                    18 => request(Request::MassCancel {
                        account,
                        symbol: None,
                        request_id: ClOrdId::from_str(&format!("m{sent}")).unwrap(),
                        request_type: b'7',
                        ref_seq: sent,
                    }),
                    _ => {
                        // Account 4's session drops without a Logout (its orders are
                        // canceled) and logs on again.
                        detached = !detached;
                        if detached {
                            ToRouter::Detach { session: 104, graceful: false }
                        } else {
                            attach(4)
                        }
                    }
                };
                tx.send(message).unwrap();
            }
            turn(&mut router, &mut deliveries);
        }
        router.end();
        let journal = match engine_kind {
            ScriptEngine::Bare => Vec::new(),
            ScriptEngine::Journaled => journal::JournalReader::open_from_start(dir.join("commands"))
                .unwrap()
                .map(|record| format!("{:?}", record.unwrap()))
                .collect(),
        };
        let _ = std::fs::remove_dir_all(&dir);
        ScriptRun { deliveries, journal, hints: hints.load(Ordering::Relaxed) }
    }

    /// The look-ahead across a turn's requests changes nothing anyone sees: every delivery
    /// (the same reports to the same accounts, in the same order, risk refusals included) and
    /// every journaled command, with each command's seq and time.
    fn looking_ahead_is_invisible(engine_kind: ScriptEngine) {
        let ScriptRun { deliveries: with, journal: with_journal, hints } = run_script(true, engine_kind);
        assert!(hints > 5_000, "the engine was told what comes next {hints} times");
        let ScriptRun { deliveries: without, journal: without_journal, hints } =
            run_script(false, engine_kind);
        assert_eq!(hints, 0, "one by one, nothing looks ahead");
        let count = |what: &str| without.iter().filter(|d| d.contains(what)).count();
        let (trades, risk_refusals) = (count("exec_type: 70"), count("risk_"));
        let (canceled, replaced) = (count("exec_type: 52"), count("exec_type: 53"));
        let mass = count("MassCancelReport");
        assert!(
            trades > 500 && risk_refusals > 100 && canceled > 500 && replaced > 100 && mass > 50,
            "a varied flow: {trades} trades, {risk_refusals} risk refusals, {canceled} cancels, \
             {replaced} replaces, {mass} mass cancels"
        );
        assert_eq!(with.len(), without.len(), "deliveries");
        if let Some(i) = with.iter().zip(&without).position(|(a, b)| a != b) {
            panic!("delivery {i} differs:\nlooking ahead {}\none by one    {}", with[i], without[i]);
        }
        assert_eq!(with_journal, without_journal, "journaled commands");
    }

    #[test]
    fn looking_ahead_changes_no_report_bare_engine() {
        looking_ahead_is_invisible(ScriptEngine::Bare);
    }

    #[test]
    fn looking_ahead_changes_no_report_or_journal_record_journaled() {
        looking_ahead_is_invisible(ScriptEngine::Journaled);
    }

    /// An inline router with session 1 attached whose events bell (held or not) has a sleeper
    /// parked on it for a minute; the flag says when the sleeper woke.
    fn router_with_a_parked_follower(
        held: bool,
    ) -> (Router, RouterTx, Arc<AtomicBool>, std::thread::JoinHandle<Duration>) {
        let (mut router, tx) = inline_router();
        let bell = Arc::new(Doorbell::new());
        router.ring_after_events(bell.clone());
        if held {
            router.hold_events_bell();
        }
        router.begin();
        tx.send(ToRouter::Attach { session: 1, account: engine::AccountId(0), cancel_on_disconnect: false })
            .unwrap();
        while router.turn() {}
        let woken = Arc::new(AtomicBool::new(false));
        let sleeper = {
            let woken = woken.clone();
            std::thread::spawn(move || {
                bell.register();
                let started = Instant::now();
                bell.sleep(|| false, Duration::from_secs(60));
                woken.store(true, Ordering::Release);
                started.elapsed()
            })
        };
        (router, tx, woken, sleeper)
    }

    #[test]
    fn a_turn_with_events_rings_the_events_bell() {
        // The sleeper returns within the test's patience only if a turn that made events rings
        // it. Orders keep coming until it is awake, so a ring landing before it parked cannot
        // make the test wait out the minute.
        let (mut router, tx, woken, sleeper) = router_with_a_parked_follower(false);
        let price = 100 * PRICE_UNITS_PER_ONE;
        for i in 0..400 {
            if woken.load(Ordering::Acquire) {
                break;
            }
            let order = NewOrder::limit(
                engine::AccountId(0),
                engine::SymbolId(0),
                ClOrdId::from_str(&format!("o{i}")).unwrap(),
                Side::Buy,
                price,
                1,
            );
            tx.send(ToRouter::Request { session: 1, request: Request::New { order, ref_seq: i } }).unwrap();
            while router.turn() {}
            std::thread::sleep(Duration::from_millis(50));
        }
        let waited = sleeper.join().unwrap();
        assert!(waited < Duration::from_secs(30), "woken by the ring, not the 60 s park: {waited:?}");
    }

    #[test]
    fn a_held_events_bell_rings_when_the_host_says() {
        let (mut router, tx, woken, sleeper) = router_with_a_parked_follower(true);
        std::thread::sleep(Duration::from_millis(100));
        let order = NewOrder::limit(
            engine::AccountId(0),
            engine::SymbolId(0),
            ClOrdId::from_str("held").unwrap(),
            Side::Buy,
            100 * PRICE_UNITS_PER_ONE,
            1,
        );
        tx.send(ToRouter::Request { session: 1, request: Request::New { order, ref_seq: 1 } }).unwrap();
        while router.turn() {}
        std::thread::sleep(Duration::from_millis(300));
        assert!(!woken.load(Ordering::Acquire), "a turn rang a held bell");
        router.ring_events_bell();
        let waited = sleeper.join().unwrap();
        assert!(waited < Duration::from_secs(30), "woken by the host's ring, not the 60 s park: {waited:?}");
    }
}
