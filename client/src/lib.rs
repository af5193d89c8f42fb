//! A FIX 4.4 initiator over QUIC or TCP, for `exchange order`, `exchange client` and the
//! end-to-end tests. It runs the same [`Session`] as the venue.
//!
//! Architecture invariant: this is the only crate of the workspace's libraries that links tokio
//! and quinn's async driver; the venue (`gateway`) drives quinn-proto itself and links neither.

#![warn(missing_docs, unreachable_pub)]
#![deny(unsafe_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use fix::codec::{tag, Encoder, Message};
use fix::session::{InitiatorLogon, Poll, Session, SessionConfig, SessionState};
use gateway::server::now_ns;
use gateway::tls::{quinn_client_config, QuicTuning, TlsError};

/// How to reach the venue.
#[derive(Clone, Debug)]
pub enum ClientTransport {
    /// QUIC with TLS 1.3.
    Quic {
        /// PEM file of the CA (or the venue's self-signed certificate) to trust.
        ca: PathBuf,
        /// Name the certificate must carry (`localhost` for the self-signed one).
        server_name: String,
        /// Client certificate and key, when the venue asks for one.
        client_cert: Option<(PathBuf, PathBuf)>,
        /// quinn transport knobs.
        tuning: QuicTuning,
    },
    /// Plain TCP.
    Tcp,
}

/// Client settings.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The venue's address.
    pub addr: SocketAddr,
    /// QUIC or TCP.
    pub transport: ClientTransport,
    /// Our SenderCompID (the account name unless configured otherwise).
    pub comp_id: String,
    /// The venue's CompID.
    pub target_comp_id: String,
    /// Username (553).
    pub username: String,
    /// Password (554).
    pub password: String,
    /// HeartBtInt, seconds.
    pub heartbeat_s: u64,
}

/// Client failures.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// TLS set-up failed.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The connection failed.
    #[error("connection: {0}")]
    Connect(String),
    /// An I/O error on the stream.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The venue refused the Logon.
    #[error("{0}")]
    LogonRefused(String),
    /// The session ended.
    #[error("session closed: {0}")]
    Closed(String),
    /// Nothing answered at the address within the connect timeout (a QUIC handshake to a
    /// silent address would otherwise wait for the idle timeout, a minute, in silence).
    #[error(
        "no answer from {addr} over {transport} within {timeout_ms} ms: is the venue running there, and is it \
         its {transport} port?"
    )]
    Timeout {
        /// The address tried.
        addr: SocketAddr,
        /// `QUIC` or `TCP`.
        transport: &'static str,
        /// The timeout.
        timeout_ms: u64,
    },
    /// The TLS handshake failed on a certificate: the venue's is not signed by the trusted one,
    /// or the venue wants a client certificate.
    #[error("TLS handshake with {addr} failed ({detail}); the certificate trusted was {}", ca.display())]
    Certificate {
        /// The address tried.
        addr: SocketAddr,
        /// The PEM file trusted.
        ca: PathBuf,
        /// What TLS said.
        detail: String,
    },
}

/// How long [`FixClient::connect`] waits for the transport (QUIC handshake or TCP connect).
pub const CONNECT_TIMEOUT_DEFAULT: Duration = Duration::from_secs(5);

/// Whether a QUIC connection error is a TLS failure (QUIC carries TLS alerts as the
/// `CRYPTO_ERROR` codes 0x100–0x1ff, RFC 9001 §4.8).
fn is_tls_failure(e: &quinn::ConnectionError) -> bool {
    let code = match e {
        quinn::ConnectionError::TransportError(t) => u64::from(t.code),
        quinn::ConnectionError::ConnectionClosed(c) => u64::from(c.error_code),
        _ => return false,
    };
    (0x100..=0x1ff).contains(&code)
}

/// A message received from the venue (owned bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    raw: Vec<u8>,
    fields: Vec<fix::codec::Field>,
}

impl Received {
    /// Parsed view.
    pub fn message(&self) -> Message<'_> {
        Message::from_parts(&self.raw, &self.fields)
    }

    /// MsgType.
    pub fn msg_type(&self) -> String {
        String::from_utf8_lossy(self.message().msg_type()).into_owned()
    }

    /// A field as text.
    pub fn get(&self, t: u32) -> Option<String> {
        self.message().get_str(t).map(str::to_owned)
    }

    /// The raw message with `|` for SOH.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.raw).replace('\x01', "|")
    }
}

enum Io {
    Quic {
        send: quinn::SendStream,
        recv: quinn::RecvStream,
        _conn: quinn::Connection,
        endpoint: quinn::Endpoint,
    },
    Tcp(tokio::net::TcpStream),
}

/// A logged-on FIX session with the venue.
pub struct FixClient {
    session: Session,
    io: Io,
    inbox: VecDeque<Received>,
    buf: Vec<u8>,
    our_comp_id: String,
}

impl std::fmt::Debug for FixClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FixClient").field("session", &self.session).finish_non_exhaustive()
    }
}

impl FixClient {
    /// Connects and logs on; fails with the venue's Logout text when the Logon is refused, and
    /// with [`ClientError::Timeout`] when the transport does not connect within
    /// [`CONNECT_TIMEOUT_DEFAULT`].
    pub async fn connect(config: &ClientConfig) -> Result<FixClient, ClientError> {
        FixClient::connect_within(config, CONNECT_TIMEOUT_DEFAULT).await
    }

    /// [`FixClient::connect`] with a chosen transport connect timeout (the Logon reply has its
    /// own 10 s).
    pub async fn connect_within(config: &ClientConfig, timeout: Duration) -> Result<FixClient, ClientError> {
        FixClient::connect_resuming_within(config, None, timeout).await
    }

    /// Connects and logs on continuing `resume`'s sequence numbers (from
    /// [`FixClient::take_state`] of an earlier connection), without ResetSeqNumFlag: reports the
    /// venue sent while we were away come again through a ResendRequest, with PossDupFlag (43=Y).
    pub async fn connect_resuming(
        config: &ClientConfig,
        resume: Option<SessionState>,
    ) -> Result<FixClient, ClientError> {
        FixClient::connect_resuming_within(config, resume, CONNECT_TIMEOUT_DEFAULT).await
    }

    async fn connect_resuming_within(
        config: &ClientConfig,
        resume: Option<SessionState>,
        timeout: Duration,
    ) -> Result<FixClient, ClientError> {
        let transport = match config.transport {
            ClientTransport::Quic { .. } => "QUIC",
            ClientTransport::Tcp => "TCP",
        };
        let timed_out =
            || ClientError::Timeout { addr: config.addr, transport, timeout_ms: timeout.as_millis() as u64 };
        let io = tokio::time::timeout(timeout, open_transport(config)).await.map_err(|_| timed_out())??;
        FixClient::log_on(config, io, resume).await
    }

    async fn log_on(
        config: &ClientConfig,
        io: Io,
        resume: Option<SessionState>,
    ) -> Result<FixClient, ClientError> {
        let logon = InitiatorLogon {
            target_comp_id: config.target_comp_id.clone(),
            heartbeat_s: config.heartbeat_s,
            username: config.username.clone(),
            password: config.password.clone(),
        };
        let session = Session::initiator_resuming(
            // The venue is trusted to size its messages: an admin `show` of many accounts is large.
            SessionConfig { message_bytes_max: 1 << 20, ..SessionConfig::default() },
            &config.comp_id,
            logon,
            resume,
            now_ns(),
        );
        let mut client = FixClient {
            session,
            io,
            inbox: VecDeque::new(),
            buf: vec![0; 16 * 1024],
            our_comp_id: config.comp_id.clone(),
        };
        client.flush().await?;
        while !client.session.is_active() {
            if client.session.is_closed() {
                let reason = client.session.close_reason().unwrap_or("closed").to_owned();
                return Err(ClientError::LogonRefused(
                    reason.trim_start_matches("counterparty logged out: ").to_owned(),
                ));
            }
            if !client.read_once(Duration::from_secs(10)).await? {
                return Err(ClientError::LogonRefused("no Logon reply within 10 s".into()));
            }
        }
        Ok(client)
    }

    /// Sends an application message.
    pub async fn send(
        &mut self,
        msg_type: &[u8],
        fields: impl FnOnce(&mut Encoder),
    ) -> Result<u64, ClientError> {
        let seq = self.session.out_seq_next();
        self.session.send(msg_type, now_ns(), fields);
        self.flush().await?;
        Ok(seq)
    }

    /// Writes raw bytes, bypassing the session (tests of garbled input).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.write(bytes).await
    }

    /// A message built with this session's CompIDs and a chosen MsgSeqNum, bypassing the
    /// session's numbering (tests of sequence gaps). Returns the bytes.
    pub fn build_raw(&self, msg_type: &[u8], seq: u64, fields: impl FnOnce(&mut Encoder)) -> Vec<u8> {
        let mut e = Encoder::new();
        e.begin(msg_type, &self.our_comp_id, self.session.their_comp_id(), seq, now_ns());
        fields(&mut e);
        e.finish().to_vec()
    }

    /// The next application message (8, 9, j, 3 …), or `None` after `timeout`.
    pub async fn recv(&mut self, timeout: Duration) -> Result<Option<Received>, ClientError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(m) = self.inbox.pop_front() {
                return Ok(Some(m));
            }
            if self.session.is_closed() {
                return Err(ClientError::Closed(self.session.close_reason().unwrap_or("closed").to_owned()));
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() || !self.read_once(left).await? {
                return Ok(None);
            }
        }
    }

    /// Logs out and waits (briefly) for the venue's Logout.
    pub async fn logout(self) -> Result<(), ClientError> {
        self.logout_keeping_state().await.map(drop)
    }

    /// Logs out, and returns the numbers to resume the session with later.
    pub async fn logout_keeping_state(mut self) -> Result<SessionState, ClientError> {
        self.session.logout("", now_ns());
        self.flush().await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        while !self.session.is_closed() {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() || !self.read_once(left).await? {
                break;
            }
        }
        let state = self.session.take_state();
        self.close().await;
        Ok(state)
    }

    /// Drops the connection without a Logout (tests of cancel-on-disconnect).
    pub async fn close(self) {
        match self.io {
            Io::Quic { mut send, _conn: conn, endpoint, .. } => {
                let _ = send.finish();
                conn.close(0u32.into(), b"bye");
                endpoint.wait_idle().await;
            }
            Io::Tcp(mut stream) => {
                let _ = stream.shutdown().await;
            }
        }
    }

    /// The session state (sequence numbers, close reason).
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The sequence numbers and sent messages, to resume the session on a later connection
    /// with [`FixClient::connect_resuming`].
    pub fn take_state(&mut self) -> SessionState {
        self.session.take_state()
    }

    /// Reads once (up to `timeout`), runs the session, and writes what it produced.
    /// False on timeout.
    async fn read_once(&mut self, timeout: Duration) -> Result<bool, ClientError> {
        let wait = timeout.min(Duration::from_nanos(self.session.deadline().saturating_sub(now_ns())));
        let read = match &mut self.io {
            Io::Quic { recv, .. } => match tokio::time::timeout(wait, recv.read(&mut self.buf)).await {
                Err(_) => None,
                Ok(Ok(Some(n))) => Some(n),
                Ok(Ok(None)) => Some(0),
                Ok(Err(e)) => return Err(ClientError::Closed(e.to_string())),
            },
            Io::Tcp(stream) => match tokio::time::timeout(wait, stream.read(&mut self.buf)).await {
                Err(_) => None,
                Ok(r) => Some(r?),
            },
        };
        let now = now_ns();
        match read {
            None => {
                self.session.on_timer(now);
                self.flush().await?;
                return Ok(wait < timeout);
            }
            Some(0) => self.session.connection_lost(),
            Some(n) => self.session.feed(&self.buf[..n]),
        }
        loop {
            match self.session.poll(now) {
                Poll::Idle => break,
                Poll::App(msg) => self
                    .inbox
                    .push_back(Received { raw: msg.bytes().to_vec(), fields: msg.fields().to_vec() }),
                Poll::Logon(_) => unreachable!("an initiator is never asked to decide a Logon"),
            }
        }
        self.flush().await?;
        Ok(true)
    }

    async fn flush(&mut self) -> Result<(), ClientError> {
        let tx = self.session.take_tx();
        if !tx.is_empty() {
            self.write(&tx).await?;
        }
        Ok(())
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        match &mut self.io {
            Io::Quic { send, .. } => {
                send.write_all(bytes).await.map_err(|e| ClientError::Closed(e.to_string()))
            }
            Io::Tcp(stream) => Ok(stream.write_all(bytes).await?),
        }
    }
}

/// Connects the transport: a QUIC connection with its one stream, or a TCP stream.
async fn open_transport(config: &ClientConfig) -> Result<Io, ClientError> {
    match &config.transport {
        ClientTransport::Quic { ca, server_name, client_cert, tuning } => {
            let cert = client_cert.as_ref().map(|(c, k)| (c.as_path(), k.as_path()));
            let client_config = quinn_client_config(ca, cert, tuning)?;
            let bind: SocketAddr =
                if config.addr.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().expect("literal");
            let mut endpoint = quinn::Endpoint::client(bind)?;
            endpoint.set_default_client_config(client_config);
            let failed = |e: quinn::ConnectionError| {
                if is_tls_failure(&e) {
                    ClientError::Certificate { addr: config.addr, ca: ca.clone(), detail: e.to_string() }
                } else {
                    ClientError::Connect(format!("{}: {e}", config.addr))
                }
            };
            let conn = endpoint
                .connect(config.addr, server_name)
                .map_err(|e| ClientError::Connect(format!("{}: {e}", config.addr)))?
                .await
                .map_err(failed)?;
            let (send, recv) = conn.open_bi().await.map_err(failed)?;
            Ok(Io::Quic { send, recv, _conn: conn, endpoint })
        }
        ClientTransport::Tcp => {
            let stream = tokio::net::TcpStream::connect(config.addr)
                .await
                .map_err(|e| ClientError::Connect(format!("{}: {e}", config.addr)))?;
            stream.set_nodelay(true)?;
            Ok(Io::Tcp(stream))
        }
    }
}

/// Writes a NewOrderSingle's fields.
#[allow(clippy::too_many_arguments)]
pub fn new_order_fields(
    e: &mut Encoder,
    cl_ord_id: &str,
    symbol: &str,
    side: engine::Side,
    qty: u64,
    price: Option<&str>,
    tif: Option<u8>,
    now_ns: u64,
) {
    e.str(tag::CL_ORD_ID, cl_ord_id);
    e.str(tag::SYMBOL, symbol);
    e.char(tag::SIDE, gateway::app::side_code(side));
    e.time(tag::TRANSACT_TIME, now_ns);
    e.u64(tag::ORDER_QTY, qty);
    match price {
        Some(p) => {
            e.char(tag::ORD_TYPE, b'2');
            e.str(tag::PRICE, p);
        }
        None => e.char(tag::ORD_TYPE, b'1'),
    }
    if let Some(tif) = tif {
        e.char(tag::TIME_IN_FORCE, tif);
    }
}

/// One line describing an ExecutionReport (or other venue message) for people.
pub fn describe(m: &Received) -> String {
    describe_sent(m, None)
}

/// [`describe`], given the limit price the client sent for this order (if any): a reject does
/// not always echo the price (a refusal before the engine carries no 44), and the order then
/// still prints as the limit order it was rather than as a market order.
pub fn describe_sent(m: &Received, sent_price: Option<&str>) -> String {
    let f = |t| m.get(t).unwrap_or_default();
    let rejected = m.get(tag::EXEC_TYPE).as_deref() == Some("8");
    match m.msg_type().as_str() {
        "8" => {
            let exec = match f(tag::EXEC_TYPE).as_str() {
                "0" => "NEW",
                "F" => "TRADE",
                "4" => "CANCELED",
                "5" => "REPLACED",
                "8" => "REJECTED",
                "C" => "EXPIRED",
                "L" => "TRIGGERED",
                other => return format!("exec {other}: {}", m.text()),
            };
            let side = if f(tag::SIDE) == "1" { "buy" } else { "sell" };
            let mut line = format!(
                "{exec:<9} {} {side} {} {} id={} order={} cum={} leaves={} avg={}",
                f(tag::SYMBOL),
                f(tag::ORDER_QTY),
                match (m.get(tag::PRICE), sent_price) {
                    (Some(p), _) => format!("@ {p}"),
                    (None, Some(p)) if rejected => format!("@ {p}"),
                    (None, _) => "market".to_owned(),
                },
                f(tag::CL_ORD_ID),
                f(tag::ORDER_ID),
                f(tag::CUM_QTY),
                f(tag::LEAVES_QTY),
                f(tag::AVG_PX)
            );
            if let Some(px) = m.get(tag::LAST_PX) {
                line += &format!(" last={}@{px}", f(tag::LAST_QTY));
            }
            if let Some(text) = m.get(tag::TEXT) {
                line += &format!(" reason={text}");
            }
            if let Some(code) = m.get(tag::ORD_REJ_REASON) {
                line += &format!(" (103={code})");
            }
            line
        }
        "9" => format!(
            "CANCEL-REJECTED id={} orig={} reason={} (102={})",
            f(tag::CL_ORD_ID),
            f(tag::ORIG_CL_ORD_ID),
            f(tag::TEXT),
            f(tag::CXL_REJ_REASON)
        ),
        "j" => format!(
            "BUSINESS-REJECT ref={} {} (380={})",
            f(tag::REF_SEQ_NUM),
            f(tag::TEXT),
            f(tag::BUSINESS_REJECT_REASON)
        ),
        "3" => format!(
            "SESSION-REJECT ref={} {} (373={})",
            f(tag::REF_SEQ_NUM),
            f(tag::TEXT),
            f(tag::SESSION_REJECT_REASON)
        ),
        _ => m.text(),
    }
}

/// The value of a ClOrdID made from a prefix and the current time (unique enough for a
/// one-shot client: nanosecond resolution).
pub fn fresh_cl_ord_id(prefix: &str) -> String {
    format!("{prefix}{}", now_ns() % 1_000_000_000_000)
}
