//! The gateway's transports: a QUIC endpoint (quinn on a tokio runtime, one bidirectional
//! stream per FIX session) and a plain-TCP acceptor (one mio thread for all connections).
//! Both drive the same [`Session`] and [`AppSession`]; neither holds any trading state.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll as MioPoll, Token, Waker};

use crate::app::AppSession;
use crate::router::{Outbox, RouterTx, SessionId, ToSession, OUTBOX_CAPACITY};
use crate::session::Session;
use crate::tls::{quinn_server_config, QuicTuning, ServerTls, TlsError};
use crate::venue::Venue;

/// Most concurrent connections per transport.
pub const CONNECTIONS_MAX: usize = 1024;
/// Most bytes waiting to be written to one TCP connection before it is closed as a slow
/// consumer.
pub const TCP_WRITE_BUFFER_MAX: usize = 4 << 20;
/// Read buffer per read call.
const READ_CHUNK: usize = 16 * 1024;

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
    /// A thread or runtime could not start.
    #[error("cannot start the gateway: {0}")]
    Start(io::Error),
}

/// Where the gateway listens.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// QUIC order entry.
    pub quic: SocketAddr,
    /// FIX over plain TCP; `None` to disable.
    pub tcp: Option<SocketAddr>,
    /// The venue's certificate.
    pub tls: ServerTls,
    /// Tokio worker threads for QUIC (1 suits a 2-core machine).
    pub quic_threads: usize,
    /// quinn transport knobs.
    pub quic_tuning: QuicTuning,
}

/// A running gateway.
#[derive(Debug)]
pub struct Gateway {
    /// Bound QUIC address.
    pub quic_addr: SocketAddr,
    /// Bound TCP address.
    pub tcp_addr: Option<SocketAddr>,
    runtime: Option<tokio::runtime::Runtime>,
    endpoint: quinn::Endpoint,
    tcp_stop: Arc<AtomicBool>,
    tcp_thread: Option<JoinHandle<()>>,
}

impl Gateway {
    /// Binds both transports and starts serving sessions.
    pub fn start(
        config: &GatewayConfig,
        venue: Arc<Venue>,
        router: RouterTx,
    ) -> Result<Gateway, ServerError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.quic_threads.max(1))
            .thread_name("quic")
            .enable_all()
            .build()
            .map_err(ServerError::Start)?;
        let server_config = quinn_server_config(&config.tls, &config.quic_tuning)?;
        let endpoint = {
            let _guard = runtime.enter();
            quinn::Endpoint::server(server_config, config.quic)
                .map_err(|source| ServerError::Bind { addr: config.quic, source })?
        };
        let quic_addr = endpoint.local_addr().map_err(ServerError::Start)?;
        runtime.spawn(accept_quic(endpoint.clone(), venue.clone(), router.clone()));

        let tcp_stop = Arc::new(AtomicBool::new(false));
        let (tcp_addr, tcp_thread) = match config.tcp {
            None => (None, None),
            Some(addr) => {
                let listener =
                    std::net::TcpListener::bind(addr).map_err(|source| ServerError::Bind { addr, source })?;
                let bound = listener.local_addr().map_err(ServerError::Start)?;
                listener.set_nonblocking(true).map_err(ServerError::Start)?;
                let stop = tcp_stop.clone();
                let thread = std::thread::Builder::new()
                    .name("fix-tcp".into())
                    .spawn(move || {
                        if let Err(e) = run_tcp(TcpListener::from_std(listener), venue, router, &stop) {
                            eprintln!("fix-tcp: stopped: {e}");
                        }
                    })
                    .map_err(ServerError::Start)?;
                (Some(bound), Some(thread))
            }
        };
        Ok(Gateway { quic_addr, tcp_addr, runtime: Some(runtime), endpoint, tcp_stop, tcp_thread })
    }

    /// Closes every connection and stops both transports.
    pub fn stop(mut self) {
        self.endpoint.close(0u32.into(), b"venue shutting down");
        self.tcp_stop.store(true, Ordering::Release);
        if let Some(t) = self.tcp_thread.take() {
            let _ = t.join();
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

async fn accept_quic(endpoint: quinn::Endpoint, venue: Arc<Venue>, router: RouterTx) {
    let live = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    while let Some(incoming) = endpoint.accept().await {
        if live.load(Ordering::Relaxed) >= CONNECTIONS_MAX {
            incoming.refuse();
            continue;
        }
        let (venue, router, live) = (venue.clone(), router.clone(), live.clone());
        tokio::spawn(async move {
            live.fetch_add(1, Ordering::Relaxed);
            if let Ok(connection) = incoming.await {
                // One FIX session per bidirectional stream; normally exactly one.
                while let Ok((send, recv)) = connection.accept_bi().await {
                    tokio::spawn(quic_session(venue.clone(), router.clone(), send, recv));
                }
            }
            live.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

async fn quic_session(
    venue: Arc<Venue>,
    router: RouterTx,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<ToSession>(OUTBOX_CAPACITY);
    let outbox = Outbox::tokio(tx);
    let mut session = Session::acceptor(venue.session.clone(), now_ns());
    let mut app = AppSession::new(venue, router);
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let wait =
            Duration::from_nanos(session.deadline().saturating_sub(now_ns())).min(Duration::from_secs(3600));
        tokio::select! {
            read = recv.read(&mut buf) => match read {
                Ok(Some(n)) => {
                    session.feed(&buf[..n]);
                    if session.is_active() {
                        app.drive(&mut session, &outbox, now_ns());
                    } else {
                        // Logon verifies an Argon2 hash: keep the other sessions on this
                        // worker running meanwhile.
                        tokio::task::block_in_place(|| app.drive(&mut session, &outbox, now_ns()));
                    }
                }
                Ok(None) | Err(_) => break,
            },
            Some(message) = rx.recv() => {
                let now = now_ns();
                app.deliver(&mut session, message, now);
                while let Ok(message) = rx.try_recv() {
                    app.deliver(&mut session, message, now);
                }
            }
            () = tokio::time::sleep(wait) => session.on_timer(now_ns()),
        }
        if outbox.overflowed.load(Ordering::Acquire) {
            session.logout("slow consumer: reports not read fast enough", now_ns());
        }
        let tx = session.take_tx();
        if !tx.is_empty() && send.write_all(&tx).await.is_err() {
            break;
        }
        if session.is_closed() {
            break;
        }
    }
    app.detach(session.logout_received());
    let _ = send.finish();
    // Let the last bytes (a Logout) reach the peer before the stream goes away.
    let _ = tokio::time::timeout(Duration::from_secs(2), send.stopped()).await;
}

/// One TCP connection.
struct TcpConn {
    stream: TcpStream,
    session: Session,
    app: AppSession,
    outbox: Outbox,
    write_buf: Vec<u8>,
}

const LISTENER: Token = Token(usize::MAX);
const WAKER: Token = Token(usize::MAX - 1);

fn run_tcp(
    mut listener: TcpListener,
    venue: Arc<Venue>,
    router: RouterTx,
    stop: &AtomicBool,
) -> io::Result<()> {
    let mut poll = MioPoll::new()?;
    poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let (tx, rx) = crossbeam_channel::bounded::<(SessionId, ToSession)>(OUTBOX_CAPACITY);
    let mut conns: HashMap<Token, TcpConn> = HashMap::new();
    let mut by_session: HashMap<SessionId, Token> = HashMap::new();
    let mut next_token = 0usize;
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; READ_CHUNK];
    while !stop.load(Ordering::Acquire) {
        let now = now_ns();
        let deadline = conns.values().map(|c| c.session.deadline()).min().unwrap_or(u64::MAX);
        let timeout = Duration::from_nanos(deadline.saturating_sub(now)).min(Duration::from_millis(100));
        poll.poll(&mut events, Some(timeout))?;
        let now = now_ns();
        for event in &events {
            match event.token() {
                LISTENER => loop {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            if conns.len() >= CONNECTIONS_MAX {
                                continue; // dropped: closes the socket
                            }
                            let _ = stream.set_nodelay(true);
                            let token = Token(next_token);
                            next_token = (next_token + 1) % (usize::MAX - 2);
                            poll.registry().register(
                                &mut stream,
                                token,
                                Interest::READABLE | Interest::WRITABLE,
                            )?;
                            let app = AppSession::new(venue.clone(), router.clone());
                            by_session.insert(app.id(), token);
                            let conn = TcpConn {
                                stream,
                                session: Session::acceptor(venue.session.clone(), now),
                                app,
                                outbox: Outbox::channel(tx.clone(), waker.clone()),
                                write_buf: Vec::new(),
                            };
                            conns.insert(token, conn);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            eprintln!("fix-tcp: accept failed: {e}");
                            break;
                        }
                    }
                },
                WAKER => {}
                token => {
                    let Some(conn) = conns.get_mut(&token) else { continue };
                    if event.is_readable() {
                        read_tcp(conn, &mut buf, now);
                    }
                }
            }
        }
        while let Ok((session, message)) = rx.try_recv() {
            if let Some(conn) = by_session.get(&session).and_then(|t| conns.get_mut(t)) {
                conn.app.deliver(&mut conn.session, message, now);
            }
        }
        let mut closed = Vec::new();
        for (token, conn) in conns.iter_mut() {
            if now >= conn.session.deadline() {
                conn.session.on_timer(now);
            }
            if conn.outbox.overflowed.load(Ordering::Acquire) || conn.write_buf.len() > TCP_WRITE_BUFFER_MAX {
                conn.session.logout("slow consumer: reports not read fast enough", now);
            }
            let tx = conn.session.take_tx();
            conn.write_buf.extend_from_slice(&tx);
            let write_failed = flush_tcp(conn).is_err();
            let done = conn.session.is_closed() && conn.write_buf.is_empty();
            if write_failed || done || conn.write_buf.len() > 2 * TCP_WRITE_BUFFER_MAX {
                closed.push(*token);
            }
        }
        for token in closed {
            if let Some(mut conn) = conns.remove(&token) {
                by_session.remove(&conn.app.id());
                conn.app.detach(conn.session.logout_received());
                let _ = poll.registry().deregister(&mut conn.stream);
            }
        }
    }
    for (_, mut conn) in conns {
        conn.app.detach(false);
    }
    Ok(())
}

fn read_tcp(conn: &mut TcpConn, buf: &mut [u8], now: u64) {
    loop {
        match conn.stream.read(buf) {
            Ok(0) => {
                conn.session.connection_lost();
                return;
            }
            Ok(n) => {
                conn.session.feed(&buf[..n]);
                conn.app.drive(&mut conn.session, &conn.outbox, now);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => {
                conn.session.connection_lost();
                return;
            }
        }
    }
}

fn flush_tcp(conn: &mut TcpConn) -> io::Result<()> {
    while !conn.write_buf.is_empty() {
        match conn.stream.write(&conn.write_buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                conn.write_buf.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
