//! The binary order-by-order feed of `serve` on `[network] md`: QUIC (ALPN `itch-md`) with the
//! live messages as unreliable DATAGRAM frames and, on the same connection, one bidirectional
//! stream for subscriptions, snapshots and retransmissions (the protocol is
//! [`marketdata::recovery`]'s).
//!
//! Its own thread (`md-quic`) drives a [`gateway::quic::QuicSocket`] (quinn-proto, no async
//! runtime). It reads the publisher the market-data thread feeds — under the publisher's lock,
//! briefly, to drain each subscriber's queue — and never touches the engine, the router or the
//! gateway: a slow or broken subscriber costs order entry nothing. It blocks in `mio::Poll`
//! between turns; the market-data thread wakes it after publishing
//! ([`PublishedWake`](crate::marketdata_run::PublishedWake), armed each turn while there are
//! subscribers), so a new event does not wait for a poll interval. Each connection is one
//! subscriber of the publisher with its bounded queue; one that falls behind is conflated (a
//! fresh snapshot on its stream) or disconnected with the reason, per `[marketdata] slow_policy`.
//! A datagram the connection has no room for is dropped: the subscriber sees the hole in its
//! sequences and heals it through the stream.
//!
//! Retransmissions come from the publisher's log while it still holds the range, and from the
//! event journal ([`journal::JournalReader`], replayed through a fresh feed core with the same
//! settings, which numbers every message as the live feed did) when older.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use engine::SymbolId;
use engine::SymbolSpec;
use gateway::quic::{QuicSocket, QUIC_WRITE_BUFFER_MAX};
use gateway::tls::{QuicTuning, ServerTls, ALPN_ITCH_MD};
use marketdata::datagram::Packer;
use marketdata::recovery::{check_retransmit, next_frame, Listed, Reply, Request, RequestError, Source};
use marketdata::{
    codec, Body, Channel, DrainError, FeedConfig, MarketData, Message, RetransmitError, SubscriberId,
    Subscription, WsFeed,
};

use crate::marketdata_run::PublishedWake;
use crate::stage_metrics::{BinaryCut, BinaryFeedMetrics};

/// Connections at once on the endpoint (each is also one of the publisher's subscribers, which
/// `[marketdata] subscribers_max` bounds too).
pub const CONNECTIONS_MAX: usize = 256;
/// Requests read from one connection per turn: a flood of them waits its turn.
const REQUESTS_PER_TURN: usize = 64;
/// Unread request bytes a connection may have waiting; past it the peer sends faster than it is
/// served and is cut off (QUIC flow control alone would let it queue a window's worth per turn).
const REQUEST_BYTES_MAX: usize = 1 << 20;
/// Feed messages moved to one connection per turn (then the others get theirs).
const DRAIN_PER_TURN: usize = 8192;
/// How long the thread waits before looking at the publisher again while a subscriber's queue
/// may hold more than its last turn took (it was drained to its bound, or had no datagram room).
const BACKLOG_POLL: Duration = Duration::from_micros(500);
/// The longest wait with subscribers and nothing left to deliver: the market-data thread wakes
/// the poll when it publishes ([`PublishedWake`]), so this only bounds a missed wake-up.
const SUBSCRIBER_POLL_MAX: Duration = Duration::from_millis(10);
/// The wait with no subscriber (only handshakes and timers to serve).
const IDLE_POLL: Duration = Duration::from_millis(50);
/// Journal events a retransmission may replay to regenerate an old range; past it the
/// subscriber is told to take a snapshot (the replay runs on this thread and holds up the
/// other subscribers while it runs).
pub const JOURNAL_REPLAY_EVENTS_MAX: u64 = 5_000_000;

/// Settings of the endpoint.
#[derive(Clone, Debug)]
pub struct MdQuicConfig {
    /// Where to listen.
    pub addr: SocketAddr,
    /// The venue's certificate (the order-entry endpoint's).
    pub tls: ServerTls,
    /// quinn knobs (the order-entry endpoint's).
    pub tuning: QuicTuning,
    /// The event journal's directory, for retransmissions older than the publisher's log.
    pub events_dir: PathBuf,
    /// The feed settings the publisher runs with (a journal replay must number as it does).
    pub feed: FeedConfig,
    /// The symbol table (names to ids).
    pub symbols: Vec<SymbolSpec>,
    /// Testing only: drop every n-th datagram of each connection instead of sending it (0: none).
    pub drop_datagram_every: u64,
}

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum MdQuicError {
    /// TLS set-up.
    #[error("md endpoint TLS: {0}")]
    Tls(#[from] gateway::tls::TlsError),
    /// The socket or the thread.
    #[error("md endpoint {addr}: {source}")]
    Io {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// Counters of the endpoint, since start.
#[derive(Debug, Default)]
pub struct MdQuicStats {
    /// Datagrams sent.
    pub datagrams: AtomicU64,
    /// Datagrams not sent: the loss injection, or no room on the connection.
    pub datagrams_dropped: AtomicU64,
    /// Retransmissions served from the publisher's log.
    pub retransmits_log: AtomicU64,
    /// Retransmissions served from the event journal.
    pub retransmits_journal: AtomicU64,
    /// Requests refused (each with its reason on the stream).
    pub refused: AtomicU64,
    /// Subscribers cut off for falling behind.
    pub disconnected: AtomicU64,
}

/// The running endpoint; stops when dropped.
pub struct MdQuic {
    /// The bound address.
    pub addr: SocketAddr,
    /// Counters.
    pub stats: Arc<MdQuicStats>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for MdQuic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MdQuic").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl Drop for MdQuic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One connection's state.
#[derive(Default)]
struct Conn {
    subscriber: Option<SubscriberId>,
    /// Subscribed, by symbol id.
    symbols: Vec<bool>,
    /// Datagrams this connection was to send (the loss injection counts them).
    datagrams: u64,
    /// Messages drained this turn.
    drained: Vec<Message>,
    /// Cut off; the stream is finishing.
    gone: bool,
}

impl Conn {
    fn wants(&self, m: &Message) -> bool {
        m.header.symbol.is_none_or(|s| self.symbols.get(s.index()).copied().unwrap_or(false))
    }
}

impl MdQuic {
    /// Binds the endpoint and starts its thread on `feed` (the market-data thread's publisher),
    /// which wakes it through `published` when it has published; the thread owns `metrics` and
    /// bumps them.
    pub fn start(
        config: MdQuicConfig,
        feed: Arc<WsFeed>,
        published: Arc<PublishedWake>,
        metrics: BinaryFeedMetrics,
    ) -> Result<MdQuic, MdQuicError> {
        let bind = config.addr;
        let io_err = move |source| MdQuicError::Io { addr: bind, source };
        let server_config =
            gateway::tls::quinn_server_config_alpn(&config.tls, &config.tuning, ALPN_ITCH_MD)?;
        let socket = std::net::UdpSocket::bind(config.addr).map_err(io_err)?;
        let quic: QuicSocket<Conn> =
            QuicSocket::server(socket, server_config, CONNECTIONS_MAX).map_err(io_err)?;
        let addr = quic.local_addr();
        let poll = mio::Poll::new().map_err(io_err)?;
        let waker = mio::Waker::new(poll.registry(), WAKER).map_err(io_err)?;
        if published.set_waker(waker).is_err() {
            return Err(io_err(std::io::Error::other("the publisher already wakes another endpoint")));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(MdQuicStats::default());
        let thread = {
            let (stop, stats) = (stop.clone(), stats.clone());
            std::thread::Builder::new()
                .name("md-quic".into())
                .spawn(move || {
                    let mut run = Run { quic, feed, published, config, stats, scratch: Vec::new(), metrics };
                    if let Err(e) = run.run(poll, &stop) {
                        // The endpoint's socket failed: the feed is gone, order entry is not.
                        tracing::error!("md endpoint stopped: {e}");
                    }
                })
                .map_err(io_err)?
        };
        Ok(MdQuic { addr, stats, stop, thread: Some(thread) })
    }
}

/// The poll token of the market-data thread's wake-up ([`PublishedWake`]).
const WAKER: mio::Token = mio::Token(1);

struct Run {
    quic: QuicSocket<Conn>,
    feed: Arc<WsFeed>,
    published: Arc<PublishedWake>,
    config: MdQuicConfig,
    stats: Arc<MdQuicStats>,
    scratch: Vec<u8>,
    metrics: BinaryFeedMetrics,
}

impl Run {
    fn run(&mut self, mut poll: mio::Poll, stop: &AtomicBool) -> std::io::Result<()> {
        const UDP: mio::Token = mio::Token(0);
        poll.registry().register(self.quic.socket_mut(), UDP, mio::Interest::READABLE)?;
        let mut events = mio::Events::with_capacity(16);
        let mut backlog = false;
        while !stop.load(Ordering::Acquire) {
            let now = Instant::now();
            let wait = if self.quic.is_empty() {
                IDLE_POLL
            } else if backlog {
                BACKLOG_POLL
            } else {
                SUBSCRIBER_POLL_MAX
            };
            let timeout =
                self.quic.next_timeout().map_or(wait, |t| t.saturating_duration_since(now).min(wait));
            if let Err(e) = poll.poll(&mut events, Some(timeout)) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            let now = Instant::now();
            self.quic.receive(now, |_| Conn::default())?;
            self.quic.drive(now);
            self.requests(now);
            backlog = self.deliver(now);
            for gone in self.quic.transmit(now) {
                if let Some(id) = gone.subscriber {
                    self.feed.with_publisher_mut(|p| p.unsubscribe(id));
                }
            }
            self.metrics.connections(self.quic.len());
        }
        self.quic.close_all(b"venue stopping");
        Ok(())
    }

    /// Reads and answers every connection's waiting requests.
    fn requests(&mut self, now: Instant) {
        let Run { quic, feed, config, stats, scratch, metrics, .. } = self;
        for (_, c) in quic.conns_mut() {
            if c.state.gone {
                continue; // closing: nothing more is read or sent
            }
            for _ in 0..REQUESTS_PER_TURN {
                let Some((kind, payload)) = next_frame(&mut c.received) else { break };
                scratch.clear();
                let answer = match kind {
                    0 => Err(RequestError::Malformed("empty frame")),
                    _ => Request::decode(kind, &payload).and_then(|request| {
                        serve(request, &mut c.state, feed, config, stats, metrics, scratch)
                    }),
                };
                if let Err(e) = answer {
                    stats.refused.fetch_add(1, Ordering::Relaxed);
                    metrics.refused(&e);
                    e.reply().encode(scratch);
                }
                c.write(scratch);
            }
            if c.received.len() > REQUEST_BYTES_MAX && !c.state.gone {
                c.received.clear();
                c.close(now, b"requests arrive faster than they are served");
                c.state.gone = true;
                metrics.cut(BinaryCut::RequestFlood);
            }
            if c.backlog() > QUIC_WRITE_BUFFER_MAX && !c.state.gone {
                // It asks for more than it reads: cut it off rather than hold its bytes.
                c.close(now, b"slow consumer: the stream's backlog is full");
                c.state.gone = true;
                metrics.cut(BinaryCut::StreamBacklog);
            }
            if c.peer_gone || c.state.gone {
                if let Some(id) = c.state.subscriber.take() {
                    feed.with_publisher_mut(|p| p.unsubscribe(id));
                }
            }
        }
    }

    /// Moves each subscriber's waiting messages out: snapshot parts on its stream, the rest in
    /// datagrams. True when a queue may hold more than this turn took.
    fn deliver(&mut self, now: Instant) -> bool {
        let Run { quic, feed, published, config, stats, scratch, metrics } = self;
        let mut backlog = false;
        // Armed before the drain takes the publisher's lock: what is published after the drain
        // wakes the poll (see PublishedWake).
        published.arm(quic.conns_mut().any(|(_, c)| c.state.subscriber.is_some()));
        feed.with_publisher_mut(|p| {
            for (_, c) in quic.conns_mut() {
                let Some(id) = c.state.subscriber else { continue };
                c.state.drained.clear();
                if c.datagram_max_bytes().is_none() {
                    continue; // the handshake is not done
                }
                // As many messages as the connection's datagram buffer surely takes now (each is
                // at most MESSAGE_LEN_MAX bytes), bounded per turn; the rest wait in its queue.
                let max = (c.datagram_space_bytes() / codec::MESSAGE_LEN_MAX).min(DRAIN_PER_TURN);
                if max == 0 {
                    backlog = true;
                    continue;
                }
                match p.drain(id, &mut c.state.drained, max) {
                    Ok(n) => backlog |= n == max,
                    Err(DrainError::Disconnected(reason)) => {
                        stats.disconnected.fetch_add(1, Ordering::Relaxed);
                        metrics.cut(BinaryCut::SlowSubscriber);
                        c.state.subscriber = None;
                        c.state.gone = true;
                        scratch.clear();
                        RequestError::Disconnected(reason.to_string()).reply().encode(scratch);
                        c.write(scratch);
                        c.finish(now);
                    }
                    Err(DrainError::UnknownSubscriber) => c.state.subscriber = None,
                }
            }
        });
        for (_, c) in quic.conns_mut() {
            if c.state.drained.is_empty() {
                continue;
            }
            let Some(max_bytes) = c.datagram_max_bytes() else { continue };
            let drained = std::mem::take(&mut c.state.drained);
            let mut packer = Packer::new(max_bytes.max(codec::MESSAGE_LEN_MAX));
            let mut datagrams = Vec::new();
            scratch.clear();
            for m in drained.iter().filter(|m| c.state.wants(m)) {
                if m.body.is_sequenced() || m.body == Body::Heartbeat {
                    packer.push(m, &mut |d| datagrams.push(d));
                } else {
                    // Snapshot parts (first subscription, or a conflation) go reliably.
                    Reply::Message(*m).encode(scratch);
                }
            }
            packer.flush(&mut |d| datagrams.push(d));
            c.write(scratch);
            for d in datagrams {
                c.state.datagrams += 1;
                let every = config.drop_datagram_every;
                if every > 0 && c.state.datagrams % every == 0 {
                    stats.datagrams_dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                match c.send_datagram(d.into()) {
                    Ok(()) => stats.datagrams.fetch_add(1, Ordering::Relaxed),
                    Err(_) => stats.datagrams_dropped.fetch_add(1, Ordering::Relaxed),
                };
            }
            c.state.drained = drained;
            c.state.drained.clear();
        }
        backlog
    }
}

/// Serves one request, writing the reply frames to `out`.
fn serve(
    request: Request,
    conn: &mut Conn,
    feed: &WsFeed,
    config: &MdQuicConfig,
    stats: &MdQuicStats,
    metrics: &BinaryFeedMetrics,
    out: &mut Vec<u8>,
) -> Result<(), RequestError> {
    match request {
        Request::Subscribe(names) => {
            if names.is_empty() || names.len() > marketdata::recovery::SUBSCRIBE_SYMBOLS_MAX {
                return Err(RequestError::SymbolCount { asked: names.len() });
            }
            let mut symbols = vec![false; config.symbols.len()];
            let mut ids = Vec::with_capacity(names.len());
            for name in names {
                let id = config
                    .symbols
                    .iter()
                    .position(|s| s.name == name)
                    .ok_or_else(|| RequestError::UnknownSymbol(name.clone()))?;
                symbols[id] = true;
                ids.push(Listed {
                    symbol: SymbolId(id as u32),
                    tick_units: config.symbols[id].tick_units,
                    name,
                });
            }
            let ts_ns = gateway::server::now_ns();
            let subscription = Subscription { channel: Channel::Orders, symbol: None };
            let id = feed.with_publisher_mut(|p| {
                if let Some(old) = conn.subscriber.take() {
                    p.unsubscribe(old);
                }
                p.subscribe(subscription, ts_ns)
            });
            let id = id.map_err(|e| RequestError::SubscriptionRefused(e.to_string()))?;
            conn.subscriber = Some(id);
            conn.symbols = symbols;
            // The acknowledgement goes before the snapshot the next drain brings.
            Reply::Subscribed(ids).encode(out);
            Ok(())
        }
        Request::Snapshot(symbol) => {
            conn.subscriber.ok_or(RequestError::NoSubscription)?;
            if !conn.symbols.get(symbol.index()).copied().unwrap_or(false) {
                return Err(RequestError::NotSubscribed(symbol));
            }
            let mut messages = Vec::new();
            let ts_ns = gateway::server::now_ns();
            feed.with_publisher(|p| p.market_data().snapshot(Channel::Orders, symbol, ts_ns, &mut messages));
            for m in &messages {
                Reply::Message(*m).encode(out);
            }
            metrics.snapshot();
            Ok(())
        }
        Request::Retransmit { from, count } => {
            conn.subscriber.ok_or(RequestError::NoSubscription)?;
            let last = feed.with_publisher(|p| p.market_data().channel_seq(Channel::Orders));
            check_retransmit(from, count, last)?;
            let mut messages = Vec::new();
            let from_log =
                feed.with_publisher(|p| p.retransmit(Channel::Orders, from, count as usize, &mut messages));
            let source = match from_log {
                Ok(_) => {
                    stats.retransmits_log.fetch_add(1, Ordering::Relaxed);
                    metrics.retransmitted(false);
                    Source::Log
                }
                Err(RetransmitError::TooOld { .. }) => {
                    messages.clear();
                    from_journal(config, from, count, &mut messages)
                        .map_err(|why| RequestError::Unavailable { from, why })?;
                    stats.retransmits_journal.fetch_add(1, Ordering::Relaxed);
                    metrics.retransmitted(true);
                    Source::Journal
                }
                Err(e @ RetransmitError::NotPublished { .. }) => {
                    return Err(RequestError::Unavailable { from, why: e.to_string() })
                }
            };
            let mut sent = 0;
            for m in messages.iter().filter(|m| conn.wants(m)) {
                Reply::Message(*m).encode(out);
                sent += 1;
            }
            Reply::Complete { from, count, sent, source }.encode(out);
            Ok(())
        }
    }
}

/// The orders-channel messages `from..from + count`, regenerated by replaying the event journal
/// from event 1 through a feed core with the publisher's settings.
fn from_journal(config: &MdQuicConfig, from: u64, count: u32, out: &mut Vec<Message>) -> Result<(), String> {
    let end = from + u64::from(count); // exclusive
    let mut reader =
        journal::JournalReader::open_from_start(&config.events_dir).map_err(|e| e.to_string())?;
    let mut md = MarketData::new(config.feed);
    let mut messages = Vec::new();
    let mut events = 0u64;
    while let Some(record) = reader.next_record().map_err(|e| e.to_string())? {
        if record.kind != journal::RecordKind::Event {
            continue;
        }
        events += 1;
        if events > JOURNAL_REPLAY_EVENTS_MAX {
            return Err(format!("more than {JOURNAL_REPLAY_EVENTS_MAX} journal events to replay"));
        }
        let event =
            engine::Event::decode(record.payload).map_err(|e| format!("event {}: {e}", record.seq))?;
        messages.clear();
        md.on_event(&event, &mut messages).map_err(|e| format!("event {}: {e}", record.seq))?;
        for m in &messages {
            let seq = m.header.channel_seq;
            if m.header.channel == Channel::Orders && m.body.is_sequenced() && (from..end).contains(&seq) {
                out.push(*m);
            }
        }
        if md.channel_seq(Channel::Orders) >= end - 1 {
            return Ok(());
        }
    }
    Err("the event journal ends before the range".into())
}
