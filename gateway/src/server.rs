//! The gateway thread: one mio poll loop serves every FIX connection, over QUIC (quinn-proto,
//! see [`crate::quic`]) and over plain TCP, and, when the router is hosted here, the router and
//! the engine too. A request read from a socket is then checked, matched, journaled and answered
//! on this one thread, without waking another: on a 2-core machine that is what keeps the round
//! trip near the network's own.
//!
//! Both transports drive the same [`Session`] and [`AppSession`]; neither holds any trading
//! state.

use rustc_hash::FxHashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::Receiver;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll as MioPoll, Token, Waker};
use runtime::WaitStrategy;

use crate::app::AppSession;
use crate::app::MdTx;
use crate::auth::{Authenticator, Verdict};
use crate::md::{MarketDataDesk, MdConfig, MdReject, MdRequest, MdSink, RejectReason};
use crate::metrics::GatewayMetrics;
use crate::parking::Parking;
use crate::quic::{ConnectionHandle, QuicSocket, QUIC_WRITE_BUFFER_MAX};
use crate::router::{Delivery, Outbox, Router, RouterTx, SessionId, ToRouter, TurnDue, OUTBOX_CAPACITY};
use crate::tls::{quinn_server_config, QuicTuning, ServerTls, TlsError};
use crate::venue::Venue;
use crate::write_queue::WriteQueue;
use fix::session::Session;

/// Most concurrent connections per transport.
pub const CONNECTIONS_MAX: usize = 1024;
/// Most bytes waiting to be written to one TCP connection before it is closed as a slow
/// consumer.
pub const TCP_WRITE_BUFFER_MAX: usize = 4 << 20;
/// Read buffer per read call.
const READ_CHUNK: usize = 16 * 1024;
/// Longest poll while nothing is due (stop requests are noticed this fast).
const POLL_MAX: Duration = Duration::from_millis(100);
/// Poll interval while the router holds events for the journal's durability (or its engine has
/// a thread of its own, which cannot wake this one).
const POLL_SOON: Duration = Duration::from_micros(50);
/// Longest poll while FIX market-data subscriptions exist: with the router on another thread
/// nothing wakes this one for an event that makes no report, so the journal is looked at this
/// often at least.
const POLL_MARKET_DATA: Duration = Duration::from_millis(5);
/// Journal events the market-data desk applies per loop turn: the bound on the time one turn
/// spends on market data before order entry is served again.
const MD_EVENTS_PER_TURN: usize = 1024;
/// MarketDataRequests waiting for the loop (sessions parse them; a full queue is a 35=Y).
const MD_REQUESTS_MAX: usize = 4096;

/// Wall-clock nanoseconds: sessions stamp SendingTime with it and time heartbeats by it.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Gateway start-up failures.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// TLS set-up failed.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: io::Error,
    },
    /// A thread could not start.
    #[error("cannot start the gateway: {0}")]
    Start(io::Error),
    /// The event journal could not be followed for FIX market data.
    #[error("FIX market data: cannot follow the event journal {path}: {what}")]
    MarketData {
        /// The journal's directory.
        path: std::path::PathBuf,
        /// What failed.
        what: String,
    },
}

/// FIX market data on the order-entry sessions: where the gateway thread reads events from, and
/// the desk's bounds.
#[derive(Clone, Debug)]
pub struct GatewayMarketData {
    /// The event journal's directory; the gateway thread follows it from event 1.
    pub events_dir: std::path::PathBuf,
    /// Subscription and slow-session bounds.
    pub config: MdConfig,
}

/// Where the gateway listens, and how its thread waits.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// QUIC order entry.
    pub quic: SocketAddr,
    /// FIX over plain TCP; `None` to disable.
    pub tcp: Option<SocketAddr>,
    /// The venue's certificate.
    pub tls: ServerTls,
    /// quinn transport knobs.
    pub quic_tuning: QuicTuning,
    /// How the gateway thread waits for sockets: [`WaitStrategy::Park`] and
    /// [`WaitStrategy::Backoff`] block in the poll; [`WaitStrategy::Yield`] and
    /// [`WaitStrategy::BusySpin`] poll without blocking and yield or spin between polls (only
    /// with a core to spare).
    pub wait: WaitStrategy,
    /// Under a blocking wait, how long the thread keeps polling without blocking after its
    /// last work (spin, then block): zero blocks at once.
    pub poll_spin: Duration,
    /// FIX market data (35=V/W/X/Y) on the order-entry sessions; `None` answers every
    /// MarketDataRequest with a 35=Y.
    pub market_data: Option<GatewayMarketData>,
}

/// How the gateway reaches the router.
pub enum Routing {
    /// The router runs on a thread of its own ([`crate::router::spawn`]).
    Thread(RouterTx),
    /// The gateway thread runs the router (and whatever engine it is linked to) in its loop.
    Hosted(Box<Router>, RouterTx),
}

impl std::fmt::Debug for Routing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Routing::Thread(_) => "Routing::Thread",
            Routing::Hosted(..) => "Routing::Hosted",
        })
    }
}

/// A running gateway.
#[derive(Debug)]
pub struct Gateway {
    /// Bound QUIC address.
    pub quic_addr: SocketAddr,
    /// Bound TCP address.
    pub tcp_addr: Option<SocketAddr>,
    /// The QUIC socket's kernel receive and send buffers, bytes.
    pub quic_buffer_bytes: (usize, usize),
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    thread: Option<JoinHandle<()>>,
    auth_thread: Option<JoinHandle<()>>,
}

/// Binds the FIX/TCP listener, when one is configured: the listener and the address it got.
fn bind_tcp(addr: Option<SocketAddr>) -> Result<(Option<TcpListener>, Option<SocketAddr>), ServerError> {
    let Some(addr) = addr else { return Ok((None, None)) };
    let listener = std::net::TcpListener::bind(addr).map_err(|source| ServerError::Bind { addr, source })?;
    let bound = listener.local_addr().map_err(ServerError::Start)?;
    listener.set_nonblocking(true).map_err(ServerError::Start)?;
    Ok((Some(TcpListener::from_std(listener)), Some(bound)))
}

/// What [`connect_router`] hands the gateway loop: the hosted router (if any), the router's
/// inbound queue, and the outbox's receiving end.
type RouterLink = (Option<Box<Router>>, RouterTx, Receiver<Delivery>);

/// Gives the router the gateway's outbox (a plain queue when the gateway thread hosts the
/// router, a queue with a waker when the router has its own thread).
fn connect_router(routing: Routing, waker: &Arc<Waker>) -> Result<RouterLink, ServerError> {
    let (router, router_tx) = match routing {
        Routing::Thread(tx) => (None, tx),
        Routing::Hosted(mut router, tx) => {
            // Rung by `Server::turn` after the writes, not by the router's turn.
            router.hold_events_bell();
            (Some(router), tx)
        }
    };
    let (outbox_tx, outbox_rx) = crossbeam_channel::bounded(OUTBOX_CAPACITY);
    let outbox = match router {
        Some(_) => Outbox::local(outbox_tx),
        None => Outbox::channel(outbox_tx, waker.clone()),
    };
    router_tx
        .send(ToRouter::Outbox(outbox))
        .map_err(|_| ServerError::Start(io::Error::other("the router stopped before the gateway started")))?;
    Ok((router, router_tx, outbox_rx))
}

impl Gateway {
    /// Binds both transports and starts the gateway thread, recording into handles nobody reads.
    pub fn start(
        config: &GatewayConfig,
        venue: Arc<Venue>,
        routing: Routing,
        parking: Parking,
    ) -> Result<Gateway, ServerError> {
        let metrics = GatewayMetrics::unobserved().map_err(|e| ServerError::Start(io::Error::other(e)))?;
        Gateway::start_monitored(config, venue, routing, parking, metrics)
    }

    /// Binds both transports and starts the gateway thread, which records into `metrics`
    /// (registered in the venue's counters file).
    pub fn start_monitored(
        config: &GatewayConfig,
        venue: Arc<Venue>,
        routing: Routing,
        parking: Parking,
        metrics: GatewayMetrics,
    ) -> Result<Gateway, ServerError> {
        let server_config = quinn_server_config(&config.tls, &config.quic_tuning)?;
        let udp = std::net::UdpSocket::bind(config.quic)
            .map_err(|source| ServerError::Bind { addr: config.quic, source })?;
        let quic = QuicSocket::server(udp, server_config, CONNECTIONS_MAX).map_err(ServerError::Start)?;
        let quic_addr = quic.local_addr();
        let quic_buffer_bytes = quic.buffer_bytes();
        let (listener, tcp_addr) = bind_tcp(config.tcp)?;
        let poll = MioPoll::new().map_err(ServerError::Start)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(ServerError::Start)?);
        let (router, router_tx, outbox_rx) = connect_router(routing, &waker)?;
        let (md, md_tx) = match &config.market_data {
            Some(m) => {
                let (tx, rx) = crossbeam_channel::bounded(MD_REQUESTS_MAX);
                (Some(MdFeed::open(m, &venue, rx)?), Some(tx))
            }
            None => (None, None),
        };
        let parked_app = AppSession::new(venue.clone(), router_tx.clone());
        let auth_waker = waker.clone();
        let (auth, verdicts, auth_thread) = Authenticator::start(venue.clone(), move || {
            let _ = auth_waker.wake();
        })
        .map_err(ServerError::Start)?;
        let stop = Arc::new(AtomicBool::new(false));
        let mut gateway = GatewayLoop {
            poll,
            listener,
            quic,
            tcp: FxHashMap::default(),
            by_session: FxHashMap::default(),
            fixes: FixFactory { venue, router_tx, auth, md_tx },
            md,
            outbox_rx,
            parking,
            parked_app,
            verdicts,
            router,
            wait: config.wait,
            poll_spin: config.poll_spin,
            next_token: 0,
            buf: vec![0; READ_CHUNK],
            tx_scratch: Vec::new(),
            metrics,
        };
        gateway.register().map_err(ServerError::Start)?;
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("gateway".into())
                .spawn(move || gateway.run(&stop))
                .map_err(ServerError::Start)?
        };
        Ok(Gateway {
            quic_addr,
            tcp_addr,
            quic_buffer_bytes,
            stop,
            waker,
            thread: Some(thread),
            auth_thread: Some(auth_thread),
        })
    }

    /// Closes every connection and stops the gateway thread (and a hosted router, after it has
    /// taken the sessions' last messages).
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.waker.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        // Ends once the gateway thread has dropped every session (the job queue's senders).
        if let Some(t) = self.auth_thread.take() {
            let _ = t.join();
        }
    }
}

/// One FIX session and what it talks to.
struct Fix {
    session: Session,
    app: AppSession,
    detached: bool,
}

impl Fix {
    /// Reports the end of the session to the router and parks its persistent state, once.
    fn detach(&mut self, parking: &mut Parking, now_ns: u64, metrics: &GatewayMetrics) {
        if !self.detached {
            self.detached = true;
            self.app.detach(&mut self.session, parking, now_ns, metrics);
        }
    }

    /// Persists the session's numbers and new messages, then hands its bytes to `sink`.
    fn drain_tx(&mut self, parking: &mut Parking, sink: impl FnOnce(&[u8])) {
        if let Some(account) = self.app.account() {
            parking.persist(account, self.app.id(), &self.session);
        }
        self.session.drain_tx(sink);
    }
}

/// One TCP connection.
struct TcpConn {
    stream: TcpStream,
    fix: Fix,
    write_buf: WriteQueue,
}

/// Where a session lives.
#[derive(Clone, Copy, Debug)]
enum Place {
    Tcp(Token),
    Quic(ConnectionHandle),
}

/// The FIX half of `session`'s connection, over whichever transport it came.
fn fix_of<'a>(
    by_session: &FxHashMap<SessionId, Place>,
    tcp: &'a mut FxHashMap<Token, TcpConn>,
    quic: &'a mut QuicSocket<Fix>,
    session: SessionId,
) -> Option<&'a mut Fix> {
    match by_session.get(&session)? {
        Place::Tcp(token) => tcp.get_mut(token).map(|c| &mut c.fix),
        Place::Quic(handle) => quic.conn_mut(*handle).map(|c| &mut c.state),
    }
}

const LISTENER: Token = Token(usize::MAX);
const WAKER: Token = Token(usize::MAX - 1);
const UDP: Token = Token(usize::MAX - 2);

/// Makes new sessions' state.
struct FixFactory {
    venue: Arc<Venue>,
    router_tx: RouterTx,
    auth: Authenticator,
    md_tx: Option<MdTx>,
}

impl FixFactory {
    fn make(&self, now_ns: u64) -> Fix {
        let mut app =
            AppSession::new(self.venue.clone(), self.router_tx.clone()).with_authenticator(self.auth.clone());
        if let Some(md) = &self.md_tx {
            app = app.with_market_data(md.clone());
        }
        Fix { session: Session::acceptor(self.venue.session.clone(), now_ns), app, detached: false }
    }
}

/// The FIX market-data desk and what feeds it: the event journal, and the sessions' requests.
struct MdFeed {
    desk: MarketDataDesk,
    tailer: journal::Tailer,
    requests: Receiver<(SessionId, MdRequest)>,
    /// Why the desk stopped (an unreadable event): it then refuses requests with this text.
    failure: Option<String>,
}

impl MdFeed {
    /// Opens the journal and applies every event in it before the gateway serves anyone, so the
    /// first snapshot is of the book as it is.
    fn open(
        m: &GatewayMarketData,
        venue: &Venue,
        requests: Receiver<(SessionId, MdRequest)>,
    ) -> Result<MdFeed, ServerError> {
        let err = |what: String| ServerError::MarketData { path: m.events_dir.clone(), what };
        let tailer = journal::Tailer::open(&m.events_dir, 1).map_err(|e| err(e.to_string()))?;
        let desk = MarketDataDesk::new(venue.symbols.clone(), m.config);
        let mut feed = MdFeed { desk, tailer, requests, failure: None };
        while feed.apply_events(usize::MAX, &mut NoSessions) {}
        match feed.failure.take() {
            Some(what) => Err(err(what)),
            None => Ok(feed),
        }
    }

    /// Applies up to `max` journaled events; true when it applied any.
    fn apply_events(&mut self, max: usize, sink: &mut impl MdSink) -> bool {
        if self.failure.is_some() {
            return false;
        }
        let mut applied = 0;
        while applied < max {
            let record = match self.tailer.poll() {
                Ok(Some(record)) => record,
                Ok(None) => break,
                Err(e) => {
                    self.fail(format!("event journal: {e}"));
                    break;
                }
            };
            if record.kind != journal::RecordKind::Event {
                continue;
            }
            let seq = record.seq;
            let applied_ok = engine::Event::decode(record.payload)
                .map_err(|e| e.to_string())
                .and_then(|event| self.desk.apply(&event, sink).map_err(|e| e.to_string()));
            if let Err(e) = applied_ok {
                self.fail(format!("event {seq}: {e}"));
                break;
            }
            applied += 1;
        }
        // One batch: each subscription's 35=X carry what these events changed.
        self.desk.flush(sink);
        applied > 0
    }

    /// Stops publishing past an event the desk could not apply: a book it cannot prove would lie.
    fn fail(&mut self, what: String) {
        eprintln!("gateway: FIX market data stopped: {what}");
        self.failure = Some(what);
    }
}

/// The sink of the start-up catch-up: no session exists yet.
struct NoSessions;

impl MdSink for NoSessions {
    fn backlog(&mut self, _: SessionId) -> Option<usize> {
        None
    }

    fn send(&mut self, _: SessionId, _: &[u8], _: &mut dyn FnMut(&mut fix::codec::Encoder)) {}
}

/// The gateway loop's sessions as the market-data desk sees them.
struct SessionsSink<'a> {
    tcp: &'a mut FxHashMap<Token, TcpConn>,
    quic: &'a mut QuicSocket<Fix>,
    by_session: &'a FxHashMap<SessionId, Place>,
    now_ns: u64,
}

impl SessionsSink<'_> {
    fn fix(&mut self, session: SessionId) -> Option<(&mut Fix, usize)> {
        let (fix, backlog) = match self.by_session.get(&session)? {
            Place::Tcp(token) => {
                let conn = self.tcp.get_mut(token)?;
                let backlog = conn.write_buf.len();
                (&mut conn.fix, backlog)
            }
            Place::Quic(handle) => {
                let conn = self.quic.conn_mut(*handle)?;
                let backlog = conn.backlog();
                (&mut conn.state, backlog)
            }
        };
        fix.session.is_active().then_some((fix, backlog))
    }
}

impl MdSink for SessionsSink<'_> {
    fn backlog(&mut self, session: SessionId) -> Option<usize> {
        self.fix(session).map(|(_, backlog)| backlog)
    }

    fn send(
        &mut self,
        session: SessionId,
        msg_type: &[u8],
        fields: &mut dyn FnMut(&mut fix::codec::Encoder),
    ) {
        let now_ns = self.now_ns;
        if let Some((fix, _)) = self.fix(session) {
            if msg_type == b"Y" {
                fix.session.send(msg_type, now_ns, fields);
            } else {
                fix.session.send_unstored(msg_type, now_ns, fields);
            }
        }
    }
}

struct GatewayLoop {
    poll: MioPoll,
    listener: Option<TcpListener>,
    quic: QuicSocket<Fix>,
    tcp: FxHashMap<Token, TcpConn>,
    by_session: FxHashMap<SessionId, Place>,
    fixes: FixFactory,
    /// FIX market data, when served.
    md: Option<MdFeed>,
    outbox_rx: Receiver<Delivery>,
    /// Every account's persistent session, and the application side that encodes reports for
    /// those with no connection.
    parking: Parking,
    parked_app: AppSession,
    verdicts: Receiver<Verdict>,
    router: Option<Box<Router>>,
    wait: WaitStrategy,
    /// [`GatewayConfig::poll_spin`].
    poll_spin: Duration,
    next_token: usize,
    buf: Vec<u8>,
    /// A session's bytes on their way into its QUIC stream (kept, so sending allocates nothing).
    tx_scratch: Vec<u8>,
    metrics: GatewayMetrics,
}

impl GatewayLoop {
    fn register(&mut self) -> io::Result<()> {
        if let Some(listener) = self.listener.as_mut() {
            self.poll.registry().register(listener, LISTENER, Interest::READABLE)?;
        }
        self.poll.registry().register(self.quic.socket_mut(), UDP, Interest::READABLE)
    }

    fn new_fix(&self, now_ns: u64) -> Fix {
        self.fixes.make(now_ns)
    }

    fn run(mut self, stop: &AtomicBool) {
        if let Some(router) = self.router.as_mut() {
            router.begin();
        }
        let mut events = Events::with_capacity(1024);
        let spin = matches!(self.wait, WaitStrategy::BusySpin | WaitStrategy::Yield);
        let mut last_work = Instant::now();
        while !stop.load(Ordering::Acquire) {
            let spinning = spin || (!self.poll_spin.is_zero() && last_work.elapsed() < self.poll_spin);
            let timeout = if spinning { Duration::ZERO } else { self.timeout() };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    eprintln!("gateway: poll failed, stopping: {e}");
                    break;
                }
            }
            let mut udp_ready = false;
            for event in &events {
                match event.token() {
                    LISTENER => self.accept_tcp(),
                    WAKER => {}
                    UDP => udp_ready = true,
                    token => {
                        if event.is_readable() {
                            if let Some(conn) = self.tcp.get_mut(&token) {
                                read_tcp(conn, &mut self.parking, &mut self.buf, now_ns(), &self.metrics);
                            }
                        }
                    }
                }
            }
            let busy = self.turn(udp_ready);
            if !self.poll_spin.is_zero() && (busy || !events.is_empty()) {
                last_work = Instant::now();
            }
            if spin && !busy && events.is_empty() {
                if self.wait == WaitStrategy::Yield {
                    std::thread::yield_now();
                } else {
                    std::hint::spin_loop();
                }
            }
        }
        self.shut_down();
    }

    /// The poll's timeout: the next session or QUIC timer, soon while the router holds events.
    fn timeout(&mut self) -> Duration {
        let now_ns = now_ns();
        let sessions = self
            .tcp
            .values()
            .map(|c| c.fix.session.deadline())
            .chain(self.quic.conns_mut().map(|(_, c)| c.state.session.deadline()))
            .min()
            .map_or(POLL_MAX, |d| Duration::from_nanos(d.saturating_sub(now_ns)));
        let quic = self.quic.next_timeout().map_or(POLL_MAX, |t| t.saturating_duration_since(Instant::now()));
        let router = match self.router.as_ref().and_then(|r| r.turn_due()) {
            Some(TurnDue::Now) => Duration::ZERO,
            Some(TurnDue::Soon) => POLL_SOON,
            None => POLL_MAX,
        };
        let md = match &self.md {
            Some(md) if md.desk.has_subscriptions() => POLL_MARKET_DATA,
            _ => POLL_MAX,
        };
        sessions.min(quic).min(router).min(md).min(POLL_MAX)
    }

    /// Everything after the poll: QUIC input, the router, deliveries, timers, output.
    fn turn(&mut self, udp_ready: bool) -> bool {
        let now = Instant::now();
        let now_ns = now_ns();
        let mut busy = udp_ready;
        if udp_ready {
            self.accept_quic(now, now_ns);
        }
        self.quic.drive(now);
        busy |= self.feed_quic_sessions(now_ns);
        busy |= self.apply_logon_verdicts(now_ns);
        busy |= self.run_router();
        busy |= self.deliver_reports(now_ns);
        busy |= self.pump_market_data(now_ns);
        for e in self.parking.take_errors() {
            eprintln!("gateway: {e}");
        }
        self.end_session_day(now_ns);
        self.service_tcp(now_ns);
        self.service_quic(now, now_ns);
        // The journal's followers wake once the reports are on their way: on 2 cores a woken
        // follower would otherwise take the core the reports wait on.
        if let Some(router) = self.router.as_mut() {
            router.ring_events_bell();
        }
        busy
    }

    /// Datagrams in: packets of known connections, and new connections with a fresh session.
    fn accept_quic(&mut self, now: Instant, now_ns: u64) {
        let (fixes, by_session) = (&self.fixes, &mut self.by_session);
        let accepted = self.quic.receive(now, |handle| {
            let fix = fixes.make(now_ns);
            by_session.insert(fix.app.id(), Place::Quic(handle));
            fix
        });
        if let Err(e) = accepted {
            eprintln!("gateway: QUIC socket read failed: {e}");
        }
    }

    /// What each QUIC connection received, through its FIX session; a peer gone is a lost
    /// connection to the session.
    fn feed_quic_sessions(&mut self, now_ns: u64) -> bool {
        let mut busy = false;
        for (_, conn) in self.quic.conns_mut() {
            let fix = &mut conn.state;
            if !conn.received.is_empty() {
                fix.session.feed(&conn.received);
                conn.received.clear();
                fix.app.drive(&mut fix.session, &mut self.parking, now_ns, &self.metrics);
                busy = true;
            }
            if conn.peer_gone && !fix.session.is_closed() {
                fix.session.connection_lost();
            }
        }
        busy
    }

    /// The password checks' verdicts, to the sessions whose Logon waited for them.
    fn apply_logon_verdicts(&mut self, now_ns: u64) -> bool {
        let mut busy = false;
        while let Ok((session, verdict)) = self.verdicts.try_recv() {
            busy = true;
            match fix_of(&self.by_session, &mut self.tcp, &mut self.quic, session) {
                Some(fix) => {
                    fix.app.logon_decided(&mut fix.session, &mut self.parking, verdict, now_ns, &self.metrics)
                }
                // The connection went away while its Logon was checked.
                None => {
                    if let Ok(account) = verdict {
                        self.fixes.venue.accounts.release(account);
                    }
                }
            }
        }
        busy
    }

    /// Every request the sessions just queued, and what the engine made of them (a hosted
    /// router only; at most 64 of its turns).
    fn run_router(&mut self) -> bool {
        let Some(router) = self.router.as_mut() else { return false };
        let mut busy = false;
        for _ in 0..64 {
            if !router.turn() {
                break;
            }
            busy = true;
        }
        busy
    }

    /// The router's reports, each to its account's connection, or, with none, to the account's
    /// detached session, which numbers and keeps it for a resend.
    fn deliver_reports(&mut self, now_ns: u64) -> bool {
        let mut busy = false;
        while let Ok(Delivery { account, event_seq, report: message }) = self.outbox_rx.try_recv() {
            busy = true;
            self.parking.note_event(account, event_seq);
            let connected = self.parking.connection(account);
            let fix = connected.and_then(|id| fix_of(&self.by_session, &mut self.tcp, &mut self.quic, id));
            match fix {
                Some(fix) => fix.app.deliver(&mut fix.session, message, now_ns, &self.metrics),
                None => {
                    if let Some(session) = self.parking.detached(account) {
                        self.parked_app.deliver(session, message, now_ns, &self.metrics);
                        self.parking.persist_detached(account);
                    }
                }
            }
        }
        busy
    }

    /// At the configured session reset time, every connected session is logged out (numbers
    /// start again from 1 at the next Logon).
    fn end_session_day(&mut self, now_ns: u64) {
        if self.parking.day_changed(now_ns) {
            let text = "end of the session day: sequence numbers start again from 1 at the next Logon";
            for conn in self.tcp.values_mut() {
                conn.fix.session.logout(text, now_ns);
            }
            for (_, conn) in self.quic.conns_mut() {
                conn.state.session.logout(text, now_ns);
            }
        }
    }

    /// Market data: the events journaled since the last turn (a bounded batch), then the
    /// sessions' MarketDataRequests, then the 35=W owed to slow sessions that caught up.
    fn pump_market_data(&mut self, now_ns: u64) -> bool {
        let Some(md) = self.md.as_mut() else { return false };
        let mut sink =
            SessionsSink { tcp: &mut self.tcp, quic: &mut self.quic, by_session: &self.by_session, now_ns };
        let mut busy = md.apply_events(MD_EVENTS_PER_TURN, &mut sink);
        while let Ok((session, request)) = md.requests.try_recv() {
            busy = true;
            match &md.failure {
                None => md.desk.request(session, request, &mut sink),
                Some(what) => {
                    let text = format!("market data unavailable: {what}");
                    let reject = MdReject {
                        req_id: request.req_id,
                        reason: Some(RejectReason::InsufficientBandwidth),
                        text,
                    };
                    md.desk.reject(session, &reject, &mut sink);
                }
            }
        }
        md.desk.refresh_stale(&mut sink);
        if busy | md.desk.take_ended() {
            self.metrics.md_desk(md.desk.stats(), md.desk.subscriptions_held());
        }
        busy
    }

    fn service_quic(&mut self, now: Instant, now_ns: u64) {
        for (_, conn) in self.quic.conns_mut() {
            let backlog = conn.backlog();
            let fix = &mut conn.state;
            if now_ns >= fix.session.deadline() {
                fix.session.on_timer(now_ns);
            }
            if backlog > QUIC_WRITE_BUFFER_MAX {
                fix.session.logout("slow consumer: reports not read fast enough", now_ns);
            }
            let scratch = &mut self.tx_scratch;
            fix.drain_tx(&mut self.parking, |tx| scratch.extend_from_slice(tx));
            conn.write(scratch);
            scratch.clear();
            if conn.state.session.is_closed() {
                conn.state.detach(&mut self.parking, now_ns, &self.metrics);
                conn.finish(now);
            }
        }
        for mut fix in self.quic.transmit(now) {
            self.by_session.remove(&fix.app.id());
            if let Some(md) = self.md.as_mut() {
                md.desk.end_session(fix.app.id());
            }
            fix.detach(&mut self.parking, now_ns, &self.metrics);
        }
    }

    fn service_tcp(&mut self, now_ns: u64) {
        let mut closed = Vec::new();
        for (token, conn) in self.tcp.iter_mut() {
            let session = &mut conn.fix.session;
            if now_ns >= session.deadline() {
                session.on_timer(now_ns);
            }
            if conn.write_buf.len() > TCP_WRITE_BUFFER_MAX {
                session.logout("slow consumer: reports not read fast enough", now_ns);
            }
            let write_buf = &mut conn.write_buf;
            conn.fix.drain_tx(&mut self.parking, |tx| write_buf.push(tx));
            let write_failed = flush_tcp(conn).is_err();
            let done = conn.fix.session.is_closed() && conn.write_buf.is_empty();
            if write_failed || done || conn.write_buf.len() > 2 * TCP_WRITE_BUFFER_MAX {
                closed.push(*token);
            }
        }
        for token in closed {
            if let Some(mut conn) = self.tcp.remove(&token) {
                self.by_session.remove(&conn.fix.app.id());
                if let Some(md) = self.md.as_mut() {
                    md.desk.end_session(conn.fix.app.id());
                }
                conn.fix.detach(&mut self.parking, now_ns, &self.metrics);
                let _ = self.poll.registry().deregister(&mut conn.stream);
            }
        }
    }

    fn accept_tcp(&mut self) {
        let Some(listener) = self.listener.as_ref() else { return };
        loop {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    if self.tcp.len() >= CONNECTIONS_MAX {
                        continue; // dropped: closes the socket
                    }
                    let _ = stream.set_nodelay(true);
                    let token = Token(self.next_token);
                    self.next_token = (self.next_token + 1) % (usize::MAX - 3);
                    let interest = Interest::READABLE | Interest::WRITABLE;
                    if let Err(e) = self.poll.registry().register(&mut stream, token, interest) {
                        eprintln!("fix-tcp: cannot register a connection: {e}");
                        continue;
                    }
                    let fix = self.new_fix(now_ns());
                    self.by_session.insert(fix.app.id(), Place::Tcp(token));
                    self.tcp.insert(token, TcpConn { stream, fix, write_buf: WriteQueue::new() });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    eprintln!("fix-tcp: accept failed: {e}");
                    break;
                }
            }
        }
    }

    /// Logs every session out and closes its connection, parks the persistent sessions, lets a
    /// hosted router finish, and writes what it still delivers into the sessions' stores. A
    /// shutdown is the venue's own Logout, not a lost connection: cancel-on-disconnect does not
    /// apply (resting orders survive a clean restart; a crash is handled at the next start).
    fn shut_down(mut self) {
        let now = now_ns();
        for (_, mut conn) in self.tcp.drain() {
            conn.fix.session.logout("venue shutting down", now);
            let write_buf = &mut conn.write_buf;
            conn.fix.drain_tx(&mut self.parking, |tx| write_buf.push(tx));
            let _ = flush_tcp(&mut conn);
            conn.fix.session.mark_logout_received();
            conn.fix.detach(&mut self.parking, now, &self.metrics);
        }
        for (_, conn) in self.quic.conns_mut() {
            conn.state.session.logout("venue shutting down", now);
            conn.state.session.mark_logout_received();
            conn.state.detach(&mut self.parking, now, &self.metrics);
        }
        self.quic.close_all(b"venue shutting down");
        if let Some(mut router) = self.router.take() {
            while router.turn() {}
            router.end();
        }
        while let Ok(Delivery { account, event_seq, report: message }) = self.outbox_rx.try_recv() {
            self.parking.note_event(account, event_seq);
            if let Some(session) = self.parking.detached(account) {
                self.parked_app.deliver(session, message, now, &self.metrics);
                self.parking.persist_detached(account);
            }
        }
        for e in self.parking.take_errors() {
            eprintln!("gateway: {e}");
        }
    }
}

fn read_tcp(conn: &mut TcpConn, parking: &mut Parking, buf: &mut [u8], now: u64, metrics: &GatewayMetrics) {
    loop {
        match conn.stream.read(buf) {
            Ok(0) => {
                conn.fix.session.connection_lost();
                return;
            }
            Ok(n) => {
                conn.fix.session.feed(&buf[..n]);
                conn.fix.app.drive(&mut conn.fix.session, parking, now, metrics);
                if n < buf.len() {
                    // A short read took all the socket had: the read that would say WouldBlock
                    // is a system call per wake-up for nothing. Bytes arriving later raise a
                    // new readiness edge (Linux epoll signals every arrival).
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => {
                conn.fix.session.connection_lost();
                return;
            }
        }
    }
}

fn flush_tcp(conn: &mut TcpConn) -> io::Result<()> {
    while !conn.write_buf.is_empty() {
        match conn.stream.write(conn.write_buf.front()) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => conn.write_buf.consume(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
