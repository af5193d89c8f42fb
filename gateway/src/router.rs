//! The router thread: the single writer of the engine's command ring and the single reader of
//! its event ring. Sessions (QUIC tasks, the TCP thread) hand it requests over one bounded
//! channel; it sends each engine event back to the session of the account concerned, as the
//! data of an ExecutionReport or OrderCancelReject.
//!
//! ```text
//! sessions ──ToRouter (bounded MPSC)──▶ router ──Producer<Command>──▶ engine thread
//! sessions ◀──ToSession (per session)── router ◀──Consumer<Event>──── engine thread
//! ```
//!
//! The router knows each command's sequence number without being told: it is the ring's only
//! producer and the engine's sequencer numbers commands in ring order from `seq_first`. So a
//! FIFO of in-flight requests, keyed by that number, says which request every event answers.
//!
//! Acknowledgement gating: an event is sent to a session only once the command journal is
//! durable up to the event's command (`JournalProgress::durable_seq`), so nothing is
//! acknowledged before its sync policy is met. Under group commit the router itself is the
//! journal thread: it syncs once per batch of held events.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use engine::journal::JournalProgress;
use engine::{
    AccountId, CancelOrder, CancelReason, ClOrdId, Command, CommandKind, Consumer, Doorbell, EngineStep,
    Event, EventKind, NewOrder, OrderId, Price, Producer, PushError, Qty, RejectReason, ReplaceOrder, Side,
    SymbolId, WaitStrategy, Waiter, SYMBOL_UNKNOWN,
};
use rustc_hash::FxHashMap;

use crate::admin::{AdminConfig, AdminReply, AdminRequest};

/// Identifies one session (one connection's FIX session) for the router's lifetime.
pub type SessionId = u64;

/// Most requests sent to the engine and not yet answered; past it, requests are refused
/// ("gateway busy") rather than queued.
pub const IN_FLIGHT_MAX: usize = 65_536;
/// Capacity of the channel from sessions to the router.
pub const INBOUND_CHANNEL_CAPACITY: usize = 65_536;
/// Capacity of each session's outbox; a session that falls this far behind is closed as a
/// slow consumer rather than let the router wait or drop reports.
pub const OUTBOX_CAPACITY: usize = 65_536;
/// Most messages handled per loop turn from either side, so neither starves the other.
const BATCH_MAX: usize = 256;

/// What a session asks of the router.
#[derive(Debug)]
pub enum ToRouter {
    /// A session logged on as `account`.
    Attach {
        /// The session.
        session: SessionId,
        /// Its account.
        account: AccountId,
        /// Where its reports go.
        outbox: Outbox,
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
    /// An order request from a session.
    Request {
        /// The session.
        session: SessionId,
        /// What it asks.
        request: Request,
    },
}

/// An order request, already translated from FIX and checked for form.
#[derive(Clone, Copy, Debug)]
pub enum Request {
    /// NewOrderSingle (D).
    New {
        /// The order.
        order: NewOrder,
        /// MsgSeqNum of the D, for a BusinessMessageReject.
        ref_seq: u64,
    },
    /// OrderCancelRequest (F).
    Cancel {
        /// The order to cancel (by its ClOrdID, OrigClOrdID in FIX).
        cancel: CancelOrder,
        /// ClOrdID (11) of the cancel request itself.
        request_id: ClOrdId,
        /// Side given in the request.
        side: Side,
        /// MsgSeqNum of the F.
        ref_seq: u64,
    },
    /// OrderCancelReplaceRequest (G).
    Replace {
        /// The replace.
        replace: ReplaceOrder,
        /// Side given in the request.
        side: Side,
        /// MsgSeqNum of the G.
        ref_seq: u64,
    },
}

/// What the router sends a session.
#[derive(Clone, Debug)]
pub enum ToSession {
    /// An ExecutionReport (8).
    Exec(ExecReport),
    /// An OrderCancelReject (9).
    CancelReject(CancelReject),
    /// A BusinessMessageReject (j).
    BusinessReject {
        /// MsgSeqNum of the refused message.
        ref_seq: u64,
        /// Its MsgType.
        ref_msg_type: &'static str,
        /// Its ClOrdID.
        ref_id: ClOrdId,
        /// BusinessRejectReason (380).
        reason: u32,
        /// Text (58).
        text: String,
    },
    /// An AdminResponse (U2).
    Admin(AdminReply),
    /// Log the session out with this text.
    Logout(String),
}

/// Content of an ExecutionReport.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecReport {
    /// Engine order id (37); 0 when the order never got one.
    pub order_id: OrderId,
    /// ClOrdID (11).
    pub cl_ord_id: ClOrdId,
    /// OrigClOrdID (41) on cancel and replace reports.
    pub orig_cl_ord_id: Option<ClOrdId>,
    /// ExecID (17), unique venue-wide: twice the engine event's sequence number, plus one on
    /// the taker's report of a trade (maker and taker reports come from one event).
    pub exec_id: u64,
    /// ExecType (150).
    pub exec_type: u8,
    /// OrdStatus (39).
    pub ord_status: u8,
    /// Symbol.
    pub symbol: SymbolId,
    /// Side.
    pub side: Side,
    /// OrderQty (38).
    pub order_qty: Qty,
    /// Limit price in ticks; `None` for market orders.
    pub price: Option<Price>,
    /// CumQty (14).
    pub cum_qty: Qty,
    /// LeavesQty (151).
    pub leaves_qty: Qty,
    /// Sum of fill price × qty in ticks (AvgPx = this / CumQty).
    pub notional_ticks: i128,
    /// LastPx (31) in ticks and LastQty (32) on fills.
    pub last: Option<(Price, Qty)>,
    /// OrdRejReason (103) on rejects.
    pub ord_rej_reason: Option<u32>,
    /// Text (58).
    pub text: Option<String>,
    /// TransactTime (60), ns.
    pub transact_ns: u64,
}

/// Content of an OrderCancelReject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CancelReject {
    /// Engine order id, 0 when unknown.
    pub order_id: OrderId,
    /// ClOrdID of the cancel/replace request.
    pub cl_ord_id: ClOrdId,
    /// OrigClOrdID it named.
    pub orig_cl_ord_id: ClOrdId,
    /// OrdStatus (39) of the order, `8` when unknown.
    pub ord_status: u8,
    /// CxlRejResponseTo (434): `1` cancel, `2` replace.
    pub response_to: u8,
    /// CxlRejReason (102): 0 too late, 1 unknown order, 99 other.
    pub reason: u32,
    /// Text (58).
    pub text: String,
}

/// Where a session's messages go.
#[derive(Clone, Debug)]
pub struct Outbox {
    kind: OutboxKind,
    /// Set when the outbox overflowed: the session must close (slow consumer).
    pub overflowed: Arc<AtomicBool>,
}

#[derive(Clone, Debug)]
enum OutboxKind {
    Local(Sender<(SessionId, ToSession)>),
    Channel { tx: Sender<(SessionId, ToSession)>, waker: Arc<mio::Waker> },
}

impl Outbox {
    /// An outbox read by the thread that runs the router, after each of the router's turns.
    pub fn local(tx: Sender<(SessionId, ToSession)>) -> Outbox {
        Outbox { kind: OutboxKind::Local(tx), overflowed: Arc::default() }
    }

    /// An outbox read by a mio poll loop, woken by `waker`.
    pub fn channel(tx: Sender<(SessionId, ToSession)>, waker: Arc<mio::Waker>) -> Outbox {
        Outbox { kind: OutboxKind::Channel { tx, waker }, overflowed: Arc::default() }
    }

    fn send(&self, session: SessionId, message: ToSession) -> bool {
        let sent = match &self.kind {
            OutboxKind::Local(tx) => tx.try_send((session, message)).is_ok(),
            OutboxKind::Channel { tx, waker } => {
                let sent = tx.try_send((session, message)).is_ok();
                let _ = waker.wake();
                sent
            }
        };
        if !sent {
            self.overflowed.store(true, Ordering::Release);
        }
        sent
    }
}

/// Router counters (monitoring).
#[derive(Debug, Default)]
pub struct RouterStats {
    /// Requests pushed to the engine.
    pub requests: AtomicU64,
    /// Events read from the engine.
    pub events: AtomicU64,
    /// Events for accounts with no session (their reports are not delivered).
    pub undeliverable: AtomicU64,
    /// Requests refused because too many were in flight.
    pub busy: AtomicU64,
    /// Requests refused by pre-trade risk.
    pub risk_rejects: AtomicU64,
    /// Requests refused by the rate limit.
    pub rate_limited: AtomicU64,
    /// Sessions logged out for sustained abuse of the rate limit.
    pub abuse_logouts: AtomicU64,
}

/// How the router runs.
pub struct RouterConfig {
    /// Sequence number the engine gives the first command the router pushes.
    pub seq_first: u64,
    /// How the thread waits when idle.
    pub wait: WaitStrategy,
    /// The command journal's progress, for acknowledgement gating; `None` with no journal.
    pub durability: Option<Durability>,
    /// Number of accounts (ids `0..accounts`).
    pub accounts: usize,
    /// Pre-trade risk; `None` checks nothing.
    pub risk: Option<risk::RiskEngine>,
    /// Message rate limits per session and per account; `None` limits nothing.
    pub rate_limit: Option<RateLimits>,
    /// Run-time administration of risk (needs `risk`).
    pub admin: AdminConfig,
    /// The router's own doorbell: the sessions ring it (and the engine thread, with
    /// [`EngineLink::Rings`], whose [`engine::RunnerHandle::events_doorbell`] it then is), and
    /// the router parks on it under [`WaitStrategy::Park`].
    pub doorbell: Arc<Doorbell>,
    /// Core to pin the router thread to (with [`EngineLink::Inline`] it is the engine's
    /// thread); `None` leaves it to the scheduler.
    pub pin_core: Option<usize>,
}

/// How the router reaches the matching engine.
pub enum EngineLink {
    /// The engine thread ([`engine::Runner`]), through its two rings.
    Rings {
        /// The command ring ([`engine::RunnerHandle::commands`]).
        commands: Producer<Command>,
        /// The event ring ([`engine::RunnerHandle::events`]).
        events: Consumer<Event>,
        /// Rung after every push so a parked engine thread wakes
        /// ([`engine::RunnerHandle::commands_doorbell`]).
        doorbell: Arc<Doorbell>,
    },
    /// The engine run on the router's own thread ([`engine::InlineRunner`]): each command is
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

/// The router's side of [`EngineLink`].
enum Link {
    /// `scratch` holds a batch read from `events` (kept, so reading allocates nothing).
    Rings {
        commands: Producer<Command>,
        events: Consumer<Event>,
        doorbell: Arc<Doorbell>,
        scratch: Vec<Event>,
    },
    Inline {
        engine: Box<dyn EngineStep>,
        events: Vec<Event>,
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
}

/// The router did not take a message: its channel was full (`try_send`) or it has stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotSent;

/// Rate limits, per session and per account.
#[derive(Clone, Debug)]
pub struct RateLimits {
    /// Every session's limit.
    pub session: ratelimit::LimitConfig,
    /// Every account's limit (across its sessions over time).
    pub account: ratelimit::LimitConfig,
    /// Accounts with their own account limit.
    pub account_overrides: Vec<(AccountId, ratelimit::LimitConfig)>,
    /// Most keys tracked (idle ones are evicted).
    pub keys_max: usize,
}

/// What a rate limit is kept for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum LimitKey {
    Session(SessionId),
    Account(AccountId),
}

/// Acknowledgement gating on the command journal.
#[derive(Clone, Debug)]
pub struct Durability {
    /// Progress of the command journal.
    pub progress: JournalProgress,
    /// Group commit: the router syncs the journal itself before releasing events.
    pub group_commit: bool,
}

/// A request sent to the engine and not yet fully answered.
#[derive(Debug)]
struct InFlight {
    seq: u64,
    session: Option<SessionId>,
    request: Option<Request>,
}

/// What the router remembers of a live order, to fill CumQty, AvgPx and OrdStatus.
#[derive(Clone, Copy, Debug)]
struct OrderState {
    account: AccountId,
    cl_ord_id: ClOrdId,
    symbol: SymbolId,
    side: Side,
    qty: Qty,
    price: Option<Price>,
    cum_qty: Qty,
    notional_ticks: i128,
}

#[derive(Debug)]
struct Attached {
    session: SessionId,
    outbox: Outbox,
    cancel_on_disconnect: bool,
}

/// The router's state. It runs on a thread of its own ([`spawn`]) or is hosted by another
/// thread's loop (the gateway's), which calls [`Router::turn`].
pub struct Router {
    engine: Link,
    inbound: Receiver<ToRouter>,
    config: RouterConfig,
    next_seq: u64,
    in_flight: VecDeque<InFlight>,
    orders: FxHashMap<OrderId, OrderState>,
    sessions: Vec<Option<Attached>>,
    held: VecDeque<Event>,
    risk: Option<risk::RiskEngine>,
    limiter: Option<ratelimit::KeyedLimiter<LimitKey>>,
    stats: Arc<RouterStats>,
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
    let (stats, stop) = (router.stats.clone(), router.stop.clone());
    let thread = std::thread::Builder::new().name("router".into()).spawn(move || router.run())?;
    Ok(RouterHandle { inbound, stats, stop, thread: Some(thread) })
}

impl Router {
    /// A router not yet running, and where sessions send it requests. Run it with [`spawn`],
    /// or host it: call [`Router::begin`] once, then [`Router::turn`] whenever its inputs may
    /// have changed and as [`Router::turn_due`] says, then [`Router::end`].
    pub fn new(engine: EngineLink, mut config: RouterConfig) -> std::io::Result<(Router, RouterTx)> {
        let limiter = match config.rate_limit.take() {
            None => None,
            Some(limits) => {
                let invalid =
                    |e: ratelimit::RateLimitError| std::io::Error::other(format!("rate limit: {e}"));
                let mut keyed =
                    ratelimit::KeyedLimiter::new(limits.session, limits.keys_max).map_err(invalid)?;
                // Account keys get the account limit; sessions keep the keyed default.
                for account in 0..config.accounts as AccountId {
                    let account_limit = limits
                        .account_overrides
                        .iter()
                        .find(|(a, _)| *a == account)
                        .map_or(limits.account, |(_, l)| *l);
                    keyed.set_override(LimitKey::Account(account), account_limit).map_err(invalid)?;
                }
                Some(keyed)
            }
        };
        let risk = config.risk.take();
        let (tx, rx) = crossbeam_channel::bounded(INBOUND_CHANNEL_CAPACITY);
        let doorbell_for_sessions = Arc::clone(&config.doorbell);
        let stats = Arc::new(RouterStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let engine = match engine {
            EngineLink::Rings { commands, events, doorbell } => {
                Link::Rings { commands, events, doorbell, scratch: Vec::with_capacity(BATCH_MAX) }
            }
            EngineLink::Inline(engine) => Link::Inline { engine, events: Vec::new() },
        };
        let router = Router {
            engine,
            inbound: rx,
            next_seq: config.seq_first,
            sessions: (0..config.accounts).map(|_| None).collect(),
            config,
            in_flight: VecDeque::new(),
            orders: FxHashMap::default(),
            held: VecDeque::new(),
            risk,
            limiter,
            stats: stats.clone(),
            stop: stop.clone(),
        };
        Ok((router, RouterTx { tx, doorbell: doorbell_for_sessions }))
    }

    /// Counters.
    pub fn stats(&self) -> Arc<RouterStats> {
        self.stats.clone()
    }

    /// When a host should turn the router again even if nothing wakes it: at once while
    /// session messages wait (a turn takes a bounded batch), soon while events wait for the
    /// journal's durability or may come from an engine thread (nothing rings the host for
    /// those), otherwise `None`.
    pub fn turn_due(&self) -> Option<TurnDue> {
        if !self.inbound.is_empty() {
            Some(TurnDue::Now)
        } else if !self.held.is_empty() || matches!(self.engine, Link::Rings { .. }) {
            Some(TurnDue::Soon)
        } else {
            None
        }
    }

    /// One turn: engine events, then a batch of session messages, then held events whose
    /// commands are now durable. True when it did something.
    pub fn turn(&mut self) -> bool {
        let mut busy = self.drain_events();
        for _ in 0..BATCH_MAX {
            match self.inbound.try_recv() {
                Ok(message) => {
                    busy = true;
                    self.handle(message);
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        busy | self.release_held()
    }

    /// Before the first turn, on the thread that will turn it: pins that thread if configured,
    /// and cancels again the orders of accounts whose kill switch was engaged before a restart.
    pub fn begin(&mut self) {
        if let Some(core) = self.config.pin_core {
            if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
                eprintln!("router: could not pin to core {core}; running unpinned");
            }
        }
        // (A crash between the kill and its CancelAll being journaled would leave orders.)
        let killed: Vec<AccountId> = match &self.risk {
            Some(risk) => (0..self.config.accounts as AccountId).filter(|&a| risk.is_killed(a)).collect(),
            None => Vec::new(),
        };
        for account in killed {
            self.push(CommandKind::CancelAll { account, symbol: SYMBOL_UNKNOWN }, None, None);
        }
    }

    fn run(mut self) {
        self.begin();
        self.config.doorbell.register();
        let mut waiter = Waiter::new(self.config.wait);
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
                    Link::Rings { events, .. } => waiter
                        .wait_on(Some(&self.config.doorbell), || !events.is_empty() || !inbound.is_empty()),
                    Link::Inline { .. } => {
                        waiter.wait_on(Some(&self.config.doorbell), || !inbound.is_empty())
                    }
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
        if let Link::Rings { commands, mut events, .. } = self.engine {
            drop(commands);
            while !(events.is_abandoned() && events.is_empty()) {
                if events.pop().is_none() {
                    std::thread::yield_now();
                }
            }
        }
    }

    fn handle(&mut self, message: ToRouter) {
        match message {
            ToRouter::Attach { session, account, outbox, cancel_on_disconnect } => {
                if let Some(slot) = self.sessions.get_mut(account as usize) {
                    *slot = Some(Attached { session, outbox, cancel_on_disconnect });
                }
            }
            ToRouter::Detach { session, graceful } => {
                let found =
                    self.sessions.iter().position(|s| s.as_ref().is_some_and(|a| a.session == session));
                if let Some(account) = found {
                    let attached = self.sessions[account].take().expect("found above");
                    if attached.cancel_on_disconnect && !graceful {
                        let kind =
                            CommandKind::CancelAll { account: account as AccountId, symbol: SYMBOL_UNKNOWN };
                        self.push(kind, None, None);
                    }
                }
            }
            ToRouter::Admin { account, request } => {
                let reply = match self.risk.as_mut() {
                    Some(risk) => {
                        let (reply, cancel) = self.config.admin.apply(risk, request);
                        if let Some(killed) = cancel {
                            let kind = CommandKind::CancelAll { account: killed, symbol: SYMBOL_UNKNOWN };
                            self.push(kind, None, None);
                        }
                        reply
                    }
                    None => AdminReply {
                        req_id: request.req_id,
                        outcome: Err("pre-trade risk is off on this venue".into()),
                        accounts: Vec::new(),
                    },
                };
                self.deliver(account, ToSession::Admin(reply));
            }
            ToRouter::Request { session, request } => {
                if self.in_flight.len() >= IN_FLIGHT_MAX {
                    self.stats.busy.fetch_add(1, Ordering::Relaxed);
                    self.refuse_busy(&request);
                    return;
                }
                if !self.within_rate(session, &request) || !self.passes_risk(&request) {
                    return;
                }
                let kind = match request {
                    Request::New { order, .. } => CommandKind::New(self.capped(order)),
                    Request::Cancel { cancel, .. } => CommandKind::Cancel(cancel),
                    Request::Replace { replace, .. } => CommandKind::Replace(replace),
                };
                self.stats.requests.fetch_add(1, Ordering::Relaxed);
                self.push(kind, Some(session), Some(request));
            }
        }
    }

    fn refuse_busy(&mut self, request: &Request) {
        let text = format!("gateway busy: {IN_FLIGHT_MAX} requests in flight");
        self.business_reject(request, text);
    }

    fn business_reject(&mut self, request: &Request, text: String) {
        let (ref_seq, ref_msg_type, ref_id) = match request {
            Request::New { order, ref_seq } => (*ref_seq, "D", order.id),
            Request::Cancel { request_id, ref_seq, .. } => (*ref_seq, "F", *request_id),
            Request::Replace { replace, ref_seq, .. } => (*ref_seq, "G", replace.id),
        };
        let message = ToSession::BusinessReject { ref_seq, ref_msg_type, ref_id, reason: 0, text };
        self.deliver(request_account(request), message);
    }

    /// The rate limits of the session and of its account: a refused message gets 35=j at once
    /// (never queued); sustained abuse logs the session out.
    fn within_rate(&mut self, session: SessionId, request: &Request) -> bool {
        let Some(limiter) = self.limiter.as_mut() else { return true };
        let account = request_account(request);
        let now_ns = wall_clock_ns();
        let mut decision = limiter.check(&LimitKey::Session(session), now_ns);
        if decision == ratelimit::Decision::Allow {
            decision = limiter.check(&LimitKey::Account(account), now_ns);
        }
        match decision {
            ratelimit::Decision::Allow => true,
            ratelimit::Decision::Limited { retry_after_ns } => {
                self.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
                let text = format!("rate limited: retry after {} us", retry_after_ns.div_ceil(1_000));
                self.business_reject(request, text);
                false
            }
            ratelimit::Decision::Abuse => {
                limiter.remove(&LimitKey::Session(session));
                self.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
                self.stats.abuse_logouts.fetch_add(1, Ordering::Relaxed);
                self.business_reject(request, "rate limited".into());
                let text = "rate limit abuse: too many refused messages".to_owned();
                self.deliver(account, ToSession::Logout(text));
                false
            }
        }
    }

    /// Pre-trade risk: a refused order gets an ExecutionReport 150=8 (a refused replace an
    /// OrderCancelReject) naming the limit in 58, with its 103/102 code.
    fn passes_risk(&mut self, request: &Request) -> bool {
        let Some(risk) = self.risk.as_mut() else { return true };
        let refused = match request {
            Request::New { order, .. } => risk.check_new(order).err(),
            Request::Replace { replace, .. } => risk.check_replace(replace).err(),
            Request::Cancel { .. } => None,
        };
        let Some(reject) = refused else { return true };
        self.stats.risk_rejects.fetch_add(1, Ordering::Relaxed);
        let text = format!("{}: {}", reject.name(), reject.text());
        let message = match request {
            Request::New { order, .. } => ToSession::Exec(ExecReport {
                order_id: 0,
                cl_ord_id: order.id,
                orig_cl_ord_id: None,
                exec_id: 0,
                exec_type: b'8',
                ord_status: b'8',
                symbol: order.symbol,
                side: order.side,
                order_qty: order.qty,
                price: None,
                cum_qty: 0,
                leaves_qty: 0,
                notional_ticks: 0,
                last: None,
                ord_rej_reason: Some(reject.ord_rej_reason()),
                text: Some(text),
                transact_ns: wall_clock_ns(),
            }),
            Request::Replace { replace, .. } => {
                let (account, symbol, orig, id) =
                    (replace.account, replace.symbol, replace.orig_id, replace.id);
                let mut message = self.cancel_reject(account, symbol, orig, id, b'2', RejectReason::BadOrder);
                if let ToSession::CancelReject(r) = &mut message {
                    r.reason = reject.cxl_rej_reason();
                    r.text = text;
                }
                message
            }
            Request::Cancel { .. } => unreachable!("cancels are not risk-checked"),
        };
        self.deliver(request_account(request), message);
        false
    }

    /// A market order of an account with a price band goes to the engine as an IOC limit at
    /// the band's edge, so it cannot fill outside the band. (The order's own reports still
    /// describe a market order: they come from the request, not from the command.)
    fn capped(&self, mut order: NewOrder) -> NewOrder {
        let Some(risk) = self.risk.as_ref() else { return order };
        if let (Some(cap), Some(spec)) = (risk.market_cap(&order), risk.symbols().get(order.symbol as usize))
        {
            order.ord_type = engine::OrdType::Limit;
            order.tif = engine::Tif::Ioc;
            order.price = cap.0.saturating_mul(spec.tick_units);
        }
        order
    }

    /// Sends one command to the engine. Through the rings: while the command ring is full,
    /// keeps reading events so the engine (which may be waiting for room in the event ring) can
    /// make progress. Inline: the engine matches it now, and its events are taken at once.
    fn push(&mut self, kind: CommandKind, session: Option<SessionId>, request: Option<Request>) {
        // Recorded first: an inline engine answers before `push` returns.
        self.in_flight.push_back(InFlight { seq: self.next_seq, session, request });
        self.next_seq += 1;
        let mut command = Command::new(kind);
        if let Link::Inline { engine, events } = &mut self.engine {
            engine.step(command, events);
            let mut events = std::mem::take(events);
            for event in &events {
                self.take_event(event);
            }
            events.clear();
            if let Link::Inline { events: scratch, .. } = &mut self.engine {
                *scratch = events; // keeps its capacity
            }
            return;
        }
        let mut waiter = Waiter::new(self.config.wait);
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

    /// One engine event: risk follows it now; the session sees it once its command is durable.
    fn take_event(&mut self, event: &Event) {
        self.stats.events.fetch_add(1, Ordering::Relaxed);
        // Exposure follows the engine at once (not at acknowledgement), so limits are exact.
        if let Some(risk) = self.risk.as_mut() {
            risk.on_event(event);
        }
        if self.held.is_empty() && self.is_durable(event.command_seq) {
            self.on_event(event);
        } else {
            self.held.push_back(*event);
        }
    }

    fn is_durable(&self, command_seq: u64) -> bool {
        self.config.durability.as_ref().is_none_or(|d| d.progress.durable_seq() >= command_seq)
    }

    /// Releases held events whose commands are durable; syncs first under group commit.
    fn release_held(&mut self) -> bool {
        let Some(last) = self.held.back().map(|e| e.command_seq) else {
            return false;
        };
        if let Some(d) = &self.config.durability {
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
            self.on_event(&event);
            released = true;
        }
        released
    }

    /// The in-flight request `event` answers (requests with no more events are retired).
    fn context(&mut self, command_seq: u64) -> Option<(Option<SessionId>, Option<Request>)> {
        while self.in_flight.front().is_some_and(|f| f.seq < command_seq) {
            self.in_flight.pop_front();
        }
        self.in_flight.front().filter(|f| f.seq == command_seq).map(|f| (f.session, f.request))
    }

    fn on_event(&mut self, event: &Event) {
        let context = self.context(event.command_seq);
        let request = context.and_then(|c| c.1);
        let ts = event.ts;
        match event.kind {
            EventKind::Accepted { account, id, symbol, order_id, side, price, qty, .. } => {
                let price = match request {
                    Some(Request::New { order, .. }) if order.ord_type == engine::OrdType::Market => None,
                    _ => Some(price),
                };
                let state = OrderState {
                    account,
                    cl_ord_id: id,
                    symbol,
                    side,
                    qty,
                    price,
                    cum_qty: 0,
                    notional_ticks: 0,
                };
                self.orders.insert(order_id, state);
                self.report_with(order_id, &state, event.seq * 2, b'0', b'0', qty, None, None, None, ts);
            }
            EventKind::Trade {
                price,
                qty,
                maker_order_id,
                maker_leaves_qty,
                taker_order_id,
                taker_leaves_qty,
                ..
            } => {
                let legs = [(maker_order_id, maker_leaves_qty, 0), (taker_order_id, taker_leaves_qty, 1)];
                for (order_id, leaves, leg) in legs {
                    let Some(state) = self.orders.get_mut(&order_id) else { continue };
                    state.cum_qty += qty;
                    state.notional_ticks += i128::from(price.0) * i128::from(qty);
                    let state = *state;
                    let status = if leaves == 0 { b'2' } else { b'1' };
                    if leaves == 0 {
                        self.orders.remove(&order_id);
                    }
                    let exec_id = event.seq * 2 + leg;
                    self.report_with(
                        order_id,
                        &state,
                        exec_id,
                        b'F',
                        status,
                        leaves,
                        Some((price, qty)),
                        None,
                        None,
                        ts,
                    );
                }
            }
            EventKind::Canceled { order_id, reason, .. } => {
                let Some(mut state) = self.orders.remove(&order_id) else { return };
                let orig = match (reason, request) {
                    (CancelReason::User, Some(Request::Cancel { request_id, .. })) => {
                        let orig = state.cl_ord_id;
                        state.cl_ord_id = request_id;
                        Some(orig)
                    }
                    _ => None,
                };
                let text = (reason != CancelReason::User).then(|| reason.as_str().to_owned());
                self.report_with(order_id, &state, event.seq * 2, b'4', b'4', 0, None, orig, text, ts);
            }
            EventKind::Expired { order_id, .. } => {
                if let Some(state) = self.orders.remove(&order_id) {
                    self.report_with(order_id, &state, event.seq * 2, b'C', b'C', 0, None, None, None, ts);
                }
            }
            EventKind::Triggered { order_id, .. } => {
                if let Some(state) = self.orders.get(&order_id).copied() {
                    let leaves = state.qty - state.cum_qty;
                    self.report_with(
                        order_id,
                        &state,
                        event.seq * 2,
                        b'L',
                        b'0',
                        leaves,
                        None,
                        None,
                        None,
                        ts,
                    );
                }
            }
            EventKind::Replaced { orig_id, id, order_id, price, qty, leaves_qty, .. } => {
                let Some(state) = self.orders.get_mut(&order_id) else { return };
                state.cl_ord_id = id;
                state.qty = qty;
                state.price = Some(price);
                let state = *state;
                let status = match (leaves_qty, state.cum_qty) {
                    (0, _) => b'2',
                    (_, 0) => b'0',
                    _ => b'1',
                };
                if leaves_qty == 0 {
                    self.orders.remove(&order_id);
                }
                self.report_with(
                    order_id,
                    &state,
                    event.seq * 2,
                    b'5',
                    status,
                    leaves_qty,
                    None,
                    Some(orig_id),
                    None,
                    ts,
                );
            }
            EventKind::Rejected { account, id, symbol, reason } => {
                self.on_reject(event, account, id, symbol, reason, request)
            }
            EventKind::TradingStatus { .. } => {}
        }
    }

    fn on_reject(
        &mut self,
        event: &Event,
        account: AccountId,
        id: ClOrdId,
        symbol: SymbolId,
        reason: RejectReason,
        request: Option<Request>,
    ) {
        match request {
            Some(Request::Cancel { cancel, request_id, .. }) => {
                let message =
                    self.cancel_reject(cancel.account, cancel.symbol, cancel.id, request_id, b'1', reason);
                self.deliver(account, message);
            }
            Some(Request::Replace { replace, .. }) => {
                let message = self.cancel_reject(
                    replace.account,
                    replace.symbol,
                    replace.orig_id,
                    replace.id,
                    b'2',
                    reason,
                );
                self.deliver(account, message);
            }
            Some(Request::New { order, .. }) => {
                let report = ExecReport {
                    order_id: 0,
                    cl_ord_id: id,
                    orig_cl_ord_id: None,
                    exec_id: event.seq * 2,
                    exec_type: b'8',
                    ord_status: b'8',
                    symbol,
                    side: order.side,
                    order_qty: order.qty,
                    price: None,
                    cum_qty: 0,
                    leaves_qty: 0,
                    notional_ticks: 0,
                    last: None,
                    ord_rej_reason: Some(ord_rej_reason(reason)),
                    text: Some(reason.as_str().to_owned()),
                    transact_ns: event.ts,
                };
                self.deliver(account, ToSession::Exec(report));
            }
            None => {}
        }
    }

    fn cancel_reject(
        &self,
        account: AccountId,
        symbol: SymbolId,
        orig: ClOrdId,
        request_id: ClOrdId,
        response_to: u8,
        reason: RejectReason,
    ) -> ToSession {
        let live = self
            .orders
            .iter()
            .find(|(_, s)| s.account == account && s.symbol == symbol && s.cl_ord_id == orig)
            .map(|(id, s)| (*id, if s.cum_qty > 0 { b'1' } else { b'0' }));
        let (order_id, ord_status) = live.unwrap_or((0, b'8'));
        ToSession::CancelReject(CancelReject {
            order_id,
            cl_ord_id: request_id,
            orig_cl_ord_id: orig,
            ord_status,
            response_to,
            reason: if reason == RejectReason::UnknownOrder { 1 } else { 99 },
            text: reason.as_str().to_owned(),
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn report_with(
        &mut self,
        order_id: OrderId,
        state: &OrderState,
        exec_id: u64,
        exec_type: u8,
        ord_status: u8,
        leaves_qty: Qty,
        last: Option<(Price, Qty)>,
        orig: Option<ClOrdId>,
        text: Option<String>,
        ts: u64,
    ) {
        let report = ExecReport {
            order_id,
            cl_ord_id: state.cl_ord_id,
            orig_cl_ord_id: orig,
            exec_id,
            exec_type,
            ord_status,
            symbol: state.symbol,
            side: state.side,
            order_qty: state.qty,
            price: state.price,
            cum_qty: state.cum_qty,
            leaves_qty,
            notional_ticks: state.notional_ticks,
            last,
            ord_rej_reason: None,
            text,
            transact_ns: ts,
        };
        self.deliver(state.account, ToSession::Exec(report));
    }

    fn deliver(&mut self, account: AccountId, message: ToSession) {
        match self.sessions.get(account as usize).and_then(Option::as_ref) {
            Some(attached) => {
                attached.outbox.send(attached.session, message);
            }
            None => {
                self.stats.undeliverable.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// OrdRejReason (103) for an engine reject.
pub fn ord_rej_reason(reason: RejectReason) -> u32 {
    match reason {
        RejectReason::UnknownSymbol => 1,
        RejectReason::Halted => 2,
        RejectReason::UnknownOrder => 5,
        RejectReason::DuplicateId => 6,
        RejectReason::BadQty => 13,
        RejectReason::BookFull => 3,
        RejectReason::BadPriceTick | RejectReason::WouldTake | RejectReason::BadOrder => 99,
    }
}

fn request_account(request: &Request) -> AccountId {
    match request {
        Request::New { order, .. } => order.account,
        Request::Cancel { cancel, .. } => cancel.account,
        Request::Replace { replace, .. } => replace.account,
    }
}

/// Wall-clock nanoseconds (rate limits and reject timestamps; the engine never sees it).
fn wall_clock_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}
