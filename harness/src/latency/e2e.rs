//! `exchange bench e2e`: FIX order → acknowledgement round trips through a running venue
//! (`exchange serve`: gateway, router, journal, engine), over QUIC or TCP, open loop, through the
//! same driver as the other modes.
//!
//! Requests alternate: even `i` is a NewOrderSingle (a buy resting far below any sell, so it never
//! trades), odd `i` cancels the order of `i - 1`; so the book stays small at every rate. A request
//! completes when the harness reads the ExecutionReport (or reject) that answers it: latency runs
//! from the request's planned send time to that moment.
//!
//! Without `--addr`, the mode starts `exchange serve` itself (the binary running this, or
//! `--exchange-bin`) on loopback ports chosen by the OS, with a fresh data directory and the
//! embedded demo venue, and stops it at the end.
//!
//! The harness thread drives the connection itself, as the UDP baseline does: a non-blocking
//! socket and the sans-IO session, with quinn-proto between them for QUIC.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use clap::{Args, ValueEnum};
use fix::codec::{tag, Encoder};
use fix::session::{InitiatorLogon, Poll, Session, SessionConfig};
use gateway::quic::{ConnectionHandle, QuicSocket};
use gateway::tls::QuicTuning;
use gateway::write_queue::WriteQueue;

use super::driver::{ramp, run_open_loop, Epoch, Schedule, Target};
use super::output::{publish, table_line, Progress, Report};
use super::peer::{PeerAcceptor, PeerArg};
use super::series::{format_rate, steal_ms_now, Check, Series};
use super::udp_baseline::{echo_series, Echo};
use super::{
    describe_harness, flag_name, on_harness_thread, progress_visible, BenchError, EchoWait, MachineUse,
    OutputArgs, RampArgs,
};

/// Default ramp, requests per second.
pub const RATES_DEFAULT: [u64; 7] = [5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000];
/// Default ramp with `--quick`.
pub const RATES_QUICK: [u64; 3] = [5_000, 20_000, 50_000];
/// The venue the harness starts: OS-chosen loopback ports, the engine's and router's wait
/// strategy from `--venue-wait`, where they run from `--venue-engine-thread`, and no rate limit
/// (the harness measures the venue's capacity, not its flood protection; risk checks stay on).
fn venue_config(wait: &str, thread: &str, spin_us: u64, quic_tuning: &str, journal: (&str, &str)) -> String {
    let (events, commands) = journal;
    let journal = format!("[journal]\nevents = \"{events}\"\ncommands = \"{commands}\"\n");
    format!(
        "[network]\nquic = \"127.0.0.1:0\"\ntcp = \"127.0.0.1:0\"\nhttp = \"127.0.0.1:0\"\nmd = \"127.0.0.1:0\"\npoll_spin_us = {spin_us}\n[network.quic_tuning]\n{quic_tuning}[engine]\nwait = \"{wait}\"\nrouter_wait = \"{wait}\"\nthread = \"{thread}\"\n{journal}[rate_limit]\nenabled = false\n"
    )
}

/// `--quic NAME=VALUE` flags as the lines of a TOML table, and the tuning they make.
fn quic_tuning(pairs: &[String]) -> Result<(String, QuicTuning), BenchError> {
    let mut table = String::new();
    for pair in pairs {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| BenchError::Config(format!("--quic {pair:?}: expected NAME=VALUE")))?;
        table.push_str(&format!("{} = {}\n", name.trim(), value.trim()));
    }
    let tuning = toml::from_str(&table).map_err(|e| BenchError::Config(format!("--quic: {e}")))?;
    Ok((table, tuning))
}

/// Transport of the FIX session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TransportArg {
    /// FIX over QUIC (TLS 1.3).
    Quic,
    /// FIX over plain TCP.
    Tcp,
}

/// `exchange bench e2e` flags.
#[derive(Args, Debug, Clone)]
pub struct E2eArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub output: OutputArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub ramp: RampArgs,
    /// Transport.
    #[arg(long, value_enum, default_value_t = TransportArg::Quic)]
    pub transport: TransportArg,
    /// A running venue (QUIC or TCP port per --transport); without it, one is started.
    #[arg(long)]
    pub addr: Option<SocketAddr>,
    /// Certificate to trust (QUIC, with --addr).
    #[arg(long, default_value = "var/tls/cert.pem")]
    pub ca: PathBuf,
    /// The `exchange` binary to start (default: this one).
    #[arg(long)]
    pub exchange_bin: Option<PathBuf>,
    /// Wait strategy of the started venue's engine and router threads: park (the default:
    /// parks when idle, woken by whoever sends it work), backoff (sleeps and polls), yield or
    /// busy-spin.
    #[arg(long, default_value = "park")]
    pub venue_wait: String,
    /// Where the started venue runs its engine and router (`engine.thread`): gateway (the
    /// default: everything on the gateway thread), router (both on a router thread) or own
    /// (engine and router on a thread each, linked by the rings).
    #[arg(long, default_value = "gateway")]
    pub venue_engine_thread: String,
    /// The started venue's `network.poll_spin_us`: its gateway thread keeps polling this many
    /// µs after its last work before it blocks (default 0: blocks at once).
    #[arg(long, default_value_t = 0)]
    pub venue_spin_us: u64,
    /// Where the started venue writes its event journal (`journal.events`): inline (the
    /// default), thread or derived.
    #[arg(long, default_value = "inline", value_parser = ["inline", "thread", "derived"])]
    pub venue_journal_events: String,
    /// Who writes the started venue's command journal (`journal.commands`): engine (the
    /// default: the engine thread) or router (the router, before the engine thread's ring;
    /// needs `--venue-engine-thread own` and `--venue-journal-events derived`).
    #[arg(long, default_value = "engine", value_parser = ["engine", "router"])]
    pub venue_journal_commands: String,
    /// Accounts (password = name) to trade as, one FIX session each, all driven by the harness
    /// thread: `--account alice,bob,carol,dave` spreads the requests over four sessions (a new
    /// order and its cancel go down the same one).
    #[arg(long, default_value = "alice", value_delimiter = ',')]
    pub account: Vec<String>,
    /// A quinn knob for both ends (`gateway::tls::QuicTuning`), repeatable:
    /// `--quic initial_rtt_us=333000 --quic ack_eliciting_threshold=10`.
    #[arg(long = "quic", value_name = "NAME=VALUE")]
    pub quic_tuning: Vec<String>,
    /// After each rate, the same schedule as 200-byte UDP datagrams to an echo thread that
    /// waits as the venue does (a busy-spinning echo for `--venue-wait busy-spin` or `yield`,
    /// a blocking one otherwise): each series then carries the UDP round trip's p50 and the
    /// ratio of the venue's p50 to it, measured seconds apart on the same machine. A venue the
    /// harness started is stopped (SIGSTOP) while the echo runs.
    #[arg(long)]
    pub udp_baseline: bool,
    /// After each rate (and its UDP baseline), the same schedule and client against a peer FIX
    /// engine started by the harness on loopback (TCP only): each series then carries the
    /// peer's p50/p99, its own check and the ratio of the venue's p50 to the peer's. The venue
    /// is stopped (SIGSTOP) while the peer runs, and the peer while the venue runs.
    #[arg(long, value_enum)]
    pub peer: Option<PeerArg>,
    /// The peer's binary; its settings are `BIN.cfg` (benches/peers/quickfix/build.sh writes both).
    #[arg(long, default_value = "target/quickfix-acceptor")]
    pub peer_bin: PathBuf,
}

/// The venue process the harness started, stopped (`SIGSTOP`) while this lives and resumed
/// (`SIGCONT`) when it drops: a busy-spinning venue would take a core from the UDP baseline
/// (a p50 of milliseconds on two cores). A venue given by `--addr` is not ours to stop.
struct Paused(Option<u32>);

impl Paused {
    fn new(pid: Option<u32>) -> Paused {
        if let Some(pid) = pid {
            signal(pid, libc::SIGSTOP);
        }
        Paused(pid)
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            signal(pid, libc::SIGCONT);
        }
    }
}

fn signal(pid: u32, signal: libc::c_int) {
    // SAFETY: kill(2) takes two integers and touches none of our memory; `pid` is our own
    // child, not yet reaped (`Venue` holds its `Child` until the run ends), so it names no
    // other process.
    let _ = unsafe { libc::kill(pid as libc::pid_t, signal) };
}

/// The UDP echo that waits as the venue's gateway thread does.
fn echo_like_venue(venue_wait: &str) -> EchoWait {
    match venue_wait {
        "busy-spin" | "yield" => EchoWait::BusySpin,
        _ => EchoWait::Block,
    }
}

/// A venue started for the run.
struct Venue {
    child: Child,
    quic: SocketAddr,
    tcp: SocketAddr,
    cert: PathBuf,
    dir: PathBuf,
}

impl Venue {
    fn start(
        bin: PathBuf,
        wait: &str,
        thread: &str,
        spin_us: u64,
        quic_tuning: &str,
        journal: (&str, &str),
    ) -> Result<Venue, BenchError> {
        let dir = std::env::temp_dir().join(format!("exchange-bench-e2e-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| BenchError::io("create the venue's directory", e))?;
        let config = dir.join("venue.toml");
        std::fs::write(&config, venue_config(wait, thread, spin_us, quic_tuning, journal))
            .map_err(|e| BenchError::io("write the venue's config", e))?;
        let mut command = Command::new(&bin);
        // SAFETY: the closure runs in the forked child before exec and only calls prctl(2), which
        // is async-signal-safe, allocates nothing and takes no lock.
        unsafe {
            command.pre_exec(|| {
                // The venue dies with the harness: a killed harness (^C, a timeout) would
                // otherwise leave it running, and a busy-spinning one takes a core for good.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = command
            .args(["serve", "--config"])
            .arg(&config)
            .arg("--data")
            .arg(dir.join("data"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| BenchError::io(format!("start {} serve", bin.display()), e))?;
        let stdout = child.stdout.take().expect("piped");
        let (mut quic, mut tcp, mut cert) = (None, None, None);
        for line in BufReader::new(stdout).lines() {
            let line = line.map_err(|e| BenchError::io("read the venue's output", e))?;
            if let Some(a) = line.strip_prefix("fix/quic: ") {
                quic = a.parse().ok();
            } else if let Some(a) = line.strip_prefix("fix/tcp: ") {
                tcp = a.parse().ok();
            } else if let Some(c) = line.strip_prefix("certificate: ") {
                cert = Some(PathBuf::from(c.split(" (").next().unwrap_or(c)));
            } else if line.starts_with("ready") {
                break;
            }
        }
        match (quic, tcp, cert) {
            (Some(quic), Some(tcp), Some(cert)) => Ok(Venue { child, quic, tcp, cert, dir }),
            _ => {
                let _ = child.kill();
                Err(BenchError::Thread("the venue did not print its ports".into()))
            }
        }
    }
}

/// CPU time a process has used so far, in nanoseconds: the sum over its threads of the
/// scheduler's own account (`/proc/<pid>/task/*/schedstat`, first field), exact to the
/// nanosecond, unlike the tick-based `utime`/`stime`. `None` where `/proc` does not say.
fn process_cpu_ns(pid: u32) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = 0u64;
    for task in tasks.flatten() {
        let text = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
        total += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

impl Drop for Venue {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Writes request `i` into `e`: a resting buy (even) or the cancel of the previous one (odd).
/// Client order ids carry the run's number: the venue refuses a reused id (risk remembers
/// recently finished ones), and every rate is a new run.
fn encode_request(e: &mut Encoder, run: u64, i: u64) {
    if i.is_multiple_of(2) {
        e.bytes(tag::CL_ORD_ID, ClOrdId::new(b'n', run, i).as_bytes());
        e.str(tag::SYMBOL, "BTC-USD");
        e.char(tag::SIDE, b'1');
        e.u64(tag::ORDER_QTY, 1);
        e.char(tag::ORD_TYPE, b'2');
        e.str(tag::PRICE, "1.00");
    } else {
        e.bytes(tag::ORIG_CL_ORD_ID, ClOrdId::new(b'n', run, i - 1).as_bytes());
        e.bytes(tag::CL_ORD_ID, ClOrdId::new(b'x', run, i).as_bytes());
        e.str(tag::SYMBOL, "BTC-USD");
        e.char(tag::SIDE, b'1');
    }
}

/// A client order id `<prefix><run>_<i>` written on the stack: the harness's own cost per
/// request is part of every figure, so it formats without allocating.
struct ClOrdId {
    buf: [u8; 48],
    len: usize,
}

impl ClOrdId {
    fn new(prefix: u8, run: u64, i: u64) -> ClOrdId {
        let mut id = ClOrdId { buf: [0; 48], len: 0 };
        id.push(&[prefix]);
        id.push(itoa::Buffer::new().format(run).as_bytes());
        id.push(b"_");
        id.push(itoa::Buffer::new().format(i).as_bytes());
        id
    }

    fn push(&mut self, bytes: &[u8]) {
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

fn msg_type(i: u64) -> &'static [u8] {
    if i.is_multiple_of(2) {
        b"D"
    } else {
        b"F"
    }
}

/// The request a venue message answers, and whether it was a refusal.
fn answered(msg: &fix::codec::Message<'_>) -> Option<(u64, bool)> {
    let id = msg.get(tag::CL_ORD_ID)?;
    let i = fix::codec::parse_u64(id.rsplit(|&b| b == b'_').next()?)?;
    let refused = match msg.msg_type() {
        b"8" => msg.get(tag::EXEC_TYPE) == Some(b"8"),
        _ => true,
    };
    Some((i, refused))
}

/// What the venue answered besides plain acknowledgements: refusals, and messages that answer
/// no request of the run (a reject without a ClOrdID, an unsolicited message), with the first
/// text of each, so a failed check says why.
#[derive(Debug, Default)]
struct Tally {
    refused: u64,
    unmatched: u64,
    first_refusal: Option<String>,
    first_unmatched: Option<String>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.refused += other.refused;
        self.unmatched += other.unmatched;
        self.first_refusal = self.first_refusal.take().or(other.first_refusal);
        self.first_unmatched = self.first_unmatched.take().or(other.first_unmatched);
    }

    /// Counts `msg` and returns the request it answers.
    fn on_message(&mut self, msg: &fix::codec::Message<'_>) -> Option<u64> {
        let describe = || {
            format!(
                "35={} 58={}",
                String::from_utf8_lossy(msg.msg_type()),
                msg.get_str(tag::TEXT).unwrap_or("(none)")
            )
        };
        match answered(msg) {
            Some((i, refused)) => {
                if refused {
                    self.refused += 1;
                    self.first_refusal.get_or_insert_with(describe);
                }
                Some(i)
            }
            None => {
                self.unmatched += 1;
                self.first_unmatched.get_or_insert_with(describe);
                None
            }
        }
    }

    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.refused > 0 {
            let first = self.first_refusal.as_deref().unwrap_or("");
            problems.push(format!("{} requests refused (first: {first})", self.refused));
        }
        if self.unmatched > 0 {
            let first = self.first_unmatched.as_deref().unwrap_or("");
            problems.push(format!("{} venue messages answered no request (first: {first})", self.unmatched));
        }
        problems
    }
}

/// FIX over TCP, driven from the harness thread.
struct TcpTarget {
    stream: TcpStream,
    session: Session,
    pending: WriteQueue,
    buf: Vec<u8>,
    tally: Tally,
    run: u64,
}

impl TcpTarget {
    fn connect(addr: SocketAddr, account: &str, run: u64) -> Result<TcpTarget, BenchError> {
        let stream = TcpStream::connect(addr).map_err(|e| BenchError::io("connect to the venue", e))?;
        stream.set_nodelay(true).map_err(|e| BenchError::io("set TCP_NODELAY", e))?;
        let logon = InitiatorLogon {
            target_comp_id: "EXCHANGE".into(),
            heartbeat_s: 30,
            username: account.into(),
            password: account.into(),
        };
        let now = gateway::server::now_ns();
        let mut t = TcpTarget {
            stream,
            session: Session::initiator(SessionConfig::default(), account, logon, now),
            pending: WriteQueue::new(),
            buf: vec![0; 64 * 1024],
            tally: Tally::default(),
            run,
        };
        let tx = t.session.take_tx();
        t.stream.write_all(&tx).map_err(|e| BenchError::io("send the Logon", e))?;
        t.stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| BenchError::io("timeout", e))?;
        while !t.session.is_active() {
            let n = t.stream.read(&mut t.buf).map_err(|e| BenchError::io("read the Logon reply", e))?;
            if n == 0 || t.session.is_closed() {
                return Err(BenchError::Thread(format!(
                    "logon refused: {}",
                    t.session.close_reason().unwrap_or("connection closed")
                )));
            }
            t.session.feed(&t.buf[..n]);
            while !matches!(t.session.poll(now), Poll::Idle) {}
        }
        t.stream.set_nonblocking(true).map_err(|e| BenchError::io("make the socket non-blocking", e))?;
        Ok(t)
    }

    fn flush(&mut self) -> Result<(), BenchError> {
        let pending = &mut self.pending;
        self.session.drain_tx(|tx| pending.push(tx));
        while !self.pending.is_empty() {
            match self.stream.write(self.pending.front()) {
                Ok(n) => self.pending.consume(n),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(BenchError::io("write to the venue", e)),
            }
        }
        Ok(())
    }
}

impl Target for TcpTarget {
    fn try_send(&mut self, i: u64) -> Result<bool, BenchError> {
        if self.pending.len() > 1 << 20 {
            self.flush()?;
            return Ok(false);
        }
        let run = self.run;
        self.session.send(msg_type(i), gateway::server::now_ns(), |e| encode_request(e, run, i));
        // Written by the `poll` that follows every round of due sends: requests that fell due
        // together share one write (and segment), as a client library batching its writes
        // would; latency still runs from each request's planned time.
        Ok(true)
    }

    fn poll(&mut self, epoch: &Epoch, done: &mut impl FnMut(u64, u64)) -> Result<(), BenchError> {
        self.flush()?;
        loop {
            match self.stream.read(&mut self.buf) {
                Ok(0) => return Err(BenchError::Thread("the venue closed the connection".into())),
                Ok(n) => {
                    let seen_ns = epoch.now_ns();
                    self.session.feed(&self.buf[..n]);
                    loop {
                        match self.session.poll(0) {
                            Poll::Idle => break,
                            Poll::App(msg) => {
                                if let Some(i) = self.tally.on_message(&msg) {
                                    done(i, seen_ns);
                                }
                            }
                            Poll::Logon(_) => {}
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(BenchError::io("read from the venue", e)),
            }
        }
    }

    fn finish_sending(&mut self) -> Result<(), BenchError> {
        self.flush()
    }
}

/// FIX over QUIC, driven from the harness thread: quinn-proto over a non-blocking UDP socket
/// ([`gateway::quic::QuicSocket`]), the sans-IO session on top, as the TCP target does with its
/// socket. No client thread, so no hop between the harness and its connection.
struct QuicTarget {
    quic: QuicSocket<()>,
    handle: ConnectionHandle,
    session: Session,
    tally: Tally,
    run: u64,
}

impl QuicTarget {
    fn connect(
        addr: SocketAddr,
        ca: &Path,
        tuning: &QuicTuning,
        account: &str,
        run: u64,
    ) -> Result<QuicTarget, BenchError> {
        let config = gateway::tls::quinn_client_config(ca, None, tuning)
            .map_err(|e| BenchError::Thread(format!("QUIC client configuration: {e}")))?;
        let bind: SocketAddr = if addr.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().expect("literal");
        let socket = std::net::UdpSocket::bind(bind).map_err(|e| BenchError::io("bind a UDP socket", e))?;
        let (quic, handle) = QuicSocket::client(socket, config, addr, "localhost", ())
            .map_err(|e| BenchError::io("start the QUIC connection", e))?;
        let logon = InitiatorLogon {
            target_comp_id: "EXCHANGE".into(),
            heartbeat_s: 30,
            username: account.into(),
            password: account.into(),
        };
        let session = Session::initiator(SessionConfig::default(), account, logon, gateway::server::now_ns());
        let mut t = QuicTarget { quic, handle, session, tally: Tally::default(), run };
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !t.session.is_active() {
            if t.session.is_closed() {
                return Err(BenchError::Thread(format!(
                    "QUIC logon refused: {}",
                    t.session.close_reason().unwrap_or("connection closed")
                )));
            }
            if std::time::Instant::now() > deadline {
                return Err(BenchError::Thread("QUIC logon: no answer in 20 s".into()));
            }
            t.pump(&mut |_| {})?;
            std::thread::sleep(Duration::from_micros(200));
        }
        Ok(t)
    }

    /// Reads what arrived, hands the stream's bytes to the session and its messages to
    /// `on_message`, and sends what is due.
    /// Logs out (the venue frees the account for the next run) and closes the connection.
    fn close(&mut self) -> Result<(), BenchError> {
        self.session.logout("bench done", gateway::server::now_ns());
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !self.session.is_closed() && std::time::Instant::now() < deadline {
            self.pump(&mut |_| {})?;
            std::thread::sleep(Duration::from_micros(200));
        }
        let now = std::time::Instant::now();
        if let Some(conn) = self.quic.conn_mut(self.handle) {
            conn.close(now, b"bench done");
        }
        self.quic.transmit(now);
        Ok(())
    }

    fn pump(&mut self, on_message: &mut dyn FnMut(&fix::codec::Message<'_>)) -> Result<(), BenchError> {
        let now = std::time::Instant::now();
        self.quic.receive(now, |_| ()).map_err(|e| BenchError::io("read from the venue", e))?;
        self.quic.drive(now);
        let Some(conn) = self.quic.conn_mut(self.handle) else {
            return Err(BenchError::Thread(format!(
                "the QUIC connection is gone (session: {})",
                self.session.close_reason().unwrap_or("still open")
            )));
        };
        if !conn.received.is_empty() {
            self.session.feed(&conn.received);
            conn.received.clear();
            loop {
                match self.session.poll(gateway::server::now_ns()) {
                    Poll::Idle => break,
                    Poll::App(msg) => on_message(&msg),
                    Poll::Logon(_) => {}
                }
            }
        }
        if conn.peer_gone && self.session.is_active() {
            return Err(BenchError::Thread("the venue closed the connection".into()));
        }
        self.session.drain_tx(|tx| conn.write(tx));
        self.quic.transmit(now);
        Ok(())
    }
}

impl QuicTarget {
    /// The client side's view of the connection (quinn-proto's counters), for the results: a
    /// tail made of losses and retransmissions shows here.
    fn stats_json(&mut self) -> serde_json::Value {
        let Some(conn) = self.quic.conn_mut(self.handle) else { return serde_json::Value::Null };
        let s = conn.stats();
        serde_json::json!({
            "udp_tx_datagrams": s.udp_tx.datagrams,
            "udp_rx_datagrams": s.udp_rx.datagrams,
            "lost_packets": s.path.lost_packets,
            "congestion_events": s.path.congestion_events,
            "cwnd": s.path.cwnd,
            "rtt_us": s.path.rtt.as_micros() as u64,
            "stream_frames_tx": s.frame_tx.stream,
            "acks_tx": s.frame_tx.acks,
        })
    }
}

impl Target for QuicTarget {
    fn try_send(&mut self, i: u64) -> Result<bool, BenchError> {
        if self.quic.conn_mut(self.handle).is_some_and(|c| c.backlog() > 1 << 20) {
            // No room: the driver's `poll` that follows moves the connection on and records
            // what arrived (a pump here would drop answers unrecorded).
            return Ok(false);
        }
        let run = self.run;
        self.session.send(msg_type(i), gateway::server::now_ns(), |e| encode_request(e, run, i));
        if let Some(conn) = self.quic.conn_mut(self.handle) {
            self.session.drain_tx(|tx| conn.write(tx));
        }
        // Sent by the `poll` that follows every round of due sends: requests that fell due
        // together share packets, as a client library batching its writes would.
        Ok(true)
    }

    fn poll(&mut self, epoch: &Epoch, done: &mut impl FnMut(u64, u64)) -> Result<(), BenchError> {
        self.quic.transmit(std::time::Instant::now());
        let mut tally = std::mem::take(&mut self.tally);
        let pumped = self.pump(&mut |msg| {
            if let Some(i) = tally.on_message(msg) {
                done(i, epoch.now_ns());
            }
        });
        self.tally = tally;
        pumped
    }

    fn finish_sending(&mut self) -> Result<(), BenchError> {
        Ok(())
    }
}

/// Several sessions as one target: request `i` goes down session `(i / 2) % n`, so a new
/// order (even `i`) and its cancel (`i + 1`) share a session, as they must (an account cancels
/// only its own orders). Every session is polled each round.
struct Sessions<T> {
    sessions: Vec<T>,
}

impl<T: Target> Target for Sessions<T> {
    fn try_send(&mut self, i: u64) -> Result<bool, BenchError> {
        let n = self.sessions.len() as u64;
        self.sessions[((i / 2) % n) as usize].try_send(i)
    }

    fn poll(&mut self, epoch: &Epoch, done: &mut impl FnMut(u64, u64)) -> Result<(), BenchError> {
        for session in &mut self.sessions {
            session.poll(epoch, done)?;
        }
        Ok(())
    }

    fn finish_sending(&mut self) -> Result<(), BenchError> {
        self.sessions.iter_mut().try_for_each(Target::finish_sending)
    }
}

/// Runs `schedule` over `sessions` on the harness thread; gives the sessions back.
fn drive_sessions<T: Target + Send>(
    args: &E2eArgs,
    sessions: Vec<T>,
    schedule: Schedule,
    bench_epoch: &Epoch,
) -> Result<(super::driver::OpenLoopRun, Vec<T>), BenchError> {
    let mut target = Sessions { sessions };
    let sender_wait = args.ramp.sender_wait;
    let (run, target) = on_harness_thread(args.output.harness_core, move || {
        let run = run_open_loop(&mut target, schedule, bench_epoch, sender_wait, Duration::from_secs(2));
        (run, target)
    })?;
    Ok((run?, target.sessions))
}

/// Runs the e2e mode; `Ok(false)` when a check failed.
pub fn run(args: &E2eArgs) -> Result<bool, BenchError> {
    let bench_epoch = Epoch::start();
    let started = SystemTime::now();
    let quick = args.output.quick;
    let (tuning_table, _) = quic_tuning(&args.quic_tuning)?;
    if args.peer.is_some() && args.transport != TransportArg::Tcp {
        return Err(BenchError::Config("--peer drives FIX over TCP: add --transport tcp".into()));
    }
    if args.venue_journal_commands == "router"
        && (args.venue_engine_thread != "own" || args.venue_journal_events != "derived")
    {
        return Err(BenchError::Config(
            "--venue-journal-commands router needs --venue-engine-thread own and --venue-journal-events derived"
                .into(),
        ));
    }
    let peer = match args.peer {
        Some(PeerArg::Quickfix) => Some(PeerAcceptor::start_quickfix(&args.peer_bin)?),
        None => None,
    };
    let venue = match args.addr {
        Some(_) => None,
        None => {
            let bin = match &args.exchange_bin {
                Some(b) => b.clone(),
                None => std::env::current_exe().map_err(|e| BenchError::io("find this binary", e))?,
            };
            Some(Venue::start(
                bin,
                &args.venue_wait,
                &args.venue_engine_thread,
                args.venue_spin_us,
                &tuning_table,
                (&args.venue_journal_events, &args.venue_journal_commands),
            )?)
        }
    };
    let (addr, cert) = match (&venue, args.transport) {
        (Some(v), TransportArg::Quic) => (v.quic, v.cert.clone()),
        (Some(v), TransportArg::Tcp) => (v.tcp, v.cert.clone()),
        (None, _) => (args.addr.expect("checked"), args.ca.clone()),
    };
    let plan = args.ramp.plan(quick, &RATES_QUICK, &RATES_DEFAULT)?;
    let transport = flag_name(args.transport);
    let mut machine = MachineUse::detect();
    let sender_wait = flag_name(args.ramp.sender_wait);
    machine.thread(
        "harness",
        describe_harness(args.output.harness_core, &format!("{sender_wait} (sends and receives)"))?,
    );
    machine.thread(
        "venue",
        if venue.is_some() { format!("exchange serve started by the harness: embedded defaults, engine.thread {}, waits {} (spins {} µs first), unpinned, page-cache journal (events {}, commands written by the {}), no rate limit", args.venue_engine_thread, args.venue_wait, args.venue_spin_us, args.venue_journal_events, args.venue_journal_commands) } else { format!("running at {addr}") },
    );

    let venue_pid = venue.as_ref().map(|v| v.child.id());
    let peer_run = peer.as_ref().map(|p| PeerRun { addr: p.addr, pid: p.pid() });
    if let Some(p) = &peer {
        machine.thread("peer", format!("QuickFIX acceptor ({}) started by the harness at {}: SocketAcceptor, one thread, memory store, no log, no data dictionary", args.peer_bin.display(), p.addr));
    }
    let progress = Progress::new(plan.rates.len() as u64, progress_visible());
    let (series, stop_reason) = ramp(
        &plan,
        |schedule| {
            progress.phase(format!(
                "{}/s: {} warm-up + {} recorded requests",
                format_rate(schedule.rate_per_s),
                schedule.warmup,
                schedule.measured
            ));
            one_rate(args, addr, &cert, schedule, &bench_epoch, venue_pid, peer_run)
        },
        |s| progress.step_done(&table_line(s)),
    )?;
    progress.finish();
    drop(venue);
    drop(peer);

    let mut report = Report {
        mode: "e2e",
        title: format!(
            "exchange bench e2e: FIX 4.4 over {transport}, {} session(s), new/cancel pairs, open loop",
            args.account.len()
        ),
        latency_is: "planned send time → the harness reads the ExecutionReport answering the request".into(),
        machine,
        config: serde_json::json!({
            "transport": transport,
            "quick": quick,
            "rates": plan.rates,
            "p50_limit_us": args.ramp.p50_limit_us,
            "warmup_ms": plan.warmup_ms,
            "measure_ms": plan.measure_ms,
            "requests_max": plan.requests_max,
            "pause_ms": args.ramp.pause_ms,
            "harness_core": args.output.harness_core,
            "accounts": args.account,
            "venue_wait": args.venue_wait,
            "venue_engine_thread": args.venue_engine_thread,
            "venue_spin_us": args.venue_spin_us,
            "venue_journal_events": args.venue_journal_events,
            "venue_journal_commands": args.venue_journal_commands,
            "quic_tuning": args.quic_tuning,
            "udp_baseline": args.udp_baseline,
        }),
        series,
        stop_reason: Some(stop_reason),
        notes: vec![
            "requests alternate NewOrderSingle (resting, never trading) and OrderCancelRequest of it".into(),
            "check: every request answered exactly once, none refused".into(),
        ],
        started,
    };
    if args.udp_baseline {
        let ratios: Vec<String> = report
            .series
            .iter()
            .filter_map(|s| {
                let udp = s.extra.get("udp_baseline")?;
                Some(format!(
                    "{}/s {:.2}x ({:.1} / {:.1} µs)",
                    format_rate(s.rate_target?),
                    s.extra.get("p50_over_udp")?.as_f64()?,
                    s.latency_ns.value_at_quantile(0.5) as f64 / 1e3,
                    udp.get("p50_us")?.as_f64()?
                ))
            })
            .collect();
        report.notes.push(format!(
            "p50 over the UDP round trip at the same rate (echo waits: {}): {}",
            flag_name(echo_like_venue(&args.venue_wait)),
            ratios.join(", ")
        ));
    }
    let mut peer_failed = false;
    if args.peer.is_some() {
        let ratios: Vec<String> = report
            .series
            .iter()
            .filter_map(|s| {
                let peer = s.extra.get("peer")?;
                peer_failed |= !peer.get("passed")?.as_bool()?;
                Some(format!(
                    "{}/s p50 {:.3}x ({:.1} / {:.1} µs), p99 {:.1} / {:.1} µs, peer steal {} ms",
                    format_rate(s.rate_target?),
                    s.extra.get("p50_over_peer")?.as_f64()?,
                    s.latency_ns.value_at_quantile(0.5) as f64 / 1e3,
                    peer.get("p50_us")?.as_f64()?,
                    s.latency_ns.value_at_quantile(0.99) as f64 / 1e3,
                    peer.get("p99_us")?.as_f64()?,
                    peer.get("steal_ms")?.as_u64().map_or("?".into(), |ms| ms.to_string()),
                ))
            })
            .collect();
        report.notes.push(format!(
            "venue over the QuickFIX acceptor, same client and schedule, seconds apart: {}; the venue does risk checks, matching and journaling, the peer only acknowledges",
            ratios.join(", ")
        ));
    }
    let cpu: Vec<String> = report
        .series
        .iter()
        .filter_map(|s| {
            let us = s.extra.get("venue_cpu_us_per_request")?.as_f64()?;
            Some(format!("{}/s {us:.2}", format_rate(s.rate_target?)))
        })
        .collect();
    if !cpu.is_empty() {
        report.notes.push(format!("venue CPU per request (all its threads, µs): {}", cpu.join(", ")));
    }
    let busy: Vec<String> = report
        .series
        .iter()
        .filter_map(|s| {
            let venue = s.extra.get("venue_cores_busy")?.as_f64()?;
            let harness = s.extra.get("harness_cores_busy")?.as_f64()?;
            Some(format!("{}/s {venue:.2} / {harness:.2}", format_rate(s.rate_target?)))
        })
        .collect();
    if !busy.is_empty() {
        report.notes.push(format!("cores kept busy, venue / harness: {}", busy.join(", ")));
    }
    let venue_passed = publish(&report, &args.output.out)?;
    if peer_failed {
        eprintln!("the peer's own check failed at some rate (see each series' \"peer\".\"check\")");
    }
    Ok(venue_passed && !peer_failed)
}

/// The peer acceptor a rate is also run against.
#[derive(Clone, Copy)]
struct PeerRun {
    addr: SocketAddr,
    pid: u32,
}

/// Runs `schedule` against the peer over TCP with the venue paused; its latency series, check
/// and the steal seen meanwhile.
fn peer_rate(
    args: &E2eArgs,
    peer: PeerRun,
    schedule: Schedule,
    bench_epoch: &Epoch,
    venue_pid: Option<u32>,
) -> Result<serde_json::Value, BenchError> {
    let steal_before = steal_ms_now();
    let run_id = gateway::server::now_ns();
    let mut tally = Tally::default();
    let run = {
        let _paused = Paused::new(venue_pid);
        let sessions = args
            .account
            .iter()
            .map(|account| TcpTarget::connect(peer.addr, account, run_id))
            .collect::<Result<Vec<_>, _>>()?;
        let (run, sessions) = drive_sessions(args, sessions, schedule, bench_epoch)?;
        sessions.into_iter().for_each(|s| tally.merge(s.tally));
        run
    };
    let steal_ms = steal_before.zip(steal_ms_now()).map(|(before, after)| after.saturating_sub(before));
    let mut problems = Vec::new();
    if run.lost + run.duplicates + run.unexpected > 0 {
        problems.push(format!(
            "{} unanswered, {} answered twice, {} unexpected",
            run.lost, run.duplicates, run.unexpected
        ));
    }
    problems.extend(tally.problems());
    let total = schedule.total();
    let check = Check::from_problems(problems, &format!("all {total} requests answered once, none refused"));
    Ok(serde_json::json!({
        "name": "quickfix",
        "p50_us": run.latency_ns.value_at_quantile(0.5) as f64 / 1e3,
        "p99_us": run.latency_ns.value_at_quantile(0.99) as f64 / 1e3,
        "steal_ms": steal_ms,
        "passed": check.passed,
        "check": check.detail,
    }))
}

fn one_rate(
    args: &E2eArgs,
    addr: SocketAddr,
    cert: &std::path::Path,
    schedule: Schedule,
    bench_epoch: &Epoch,
    venue_pid: Option<u32>,
    peer: Option<PeerRun>,
) -> Result<Series, BenchError> {
    // The peer is stopped while the venue runs, as the venue is while the peer runs.
    let peer_paused = Paused::new(peer.map(|p| p.pid));
    let venue_cpu_before = venue_pid.and_then(process_cpu_ns);
    let harness_cpu_before = process_cpu_ns(std::process::id());
    let wall = std::time::Instant::now();
    let mut transport_stats = serde_json::Value::Null;
    let run_id = gateway::server::now_ns();
    let mut tally = Tally::default();
    let run = match args.transport {
        TransportArg::Tcp => {
            let sessions = args
                .account
                .iter()
                .map(|account| TcpTarget::connect(addr, account, run_id))
                .collect::<Result<Vec<_>, _>>()?;
            let (run, sessions) = drive_sessions(args, sessions, schedule, bench_epoch)?;
            sessions.into_iter().for_each(|s| tally.merge(s.tally));
            run
        }
        TransportArg::Quic => {
            let tuning = quic_tuning(&args.quic_tuning)?.1;
            let sessions = args
                .account
                .iter()
                .map(|account| QuicTarget::connect(addr, cert, &tuning, account, run_id))
                .collect::<Result<Vec<_>, _>>()?;
            let (run, sessions) = drive_sessions(args, sessions, schedule, bench_epoch)?;
            let mut stats = Vec::new();
            for mut session in sessions {
                stats.push(session.stats_json());
                session.close()?;
                tally.merge(session.tally);
            }
            transport_stats = serde_json::Value::Array(stats);
            run
        }
    };
    // What the venue's threads spent per request of this rate (logon and logout included,
    // which is noise at these counts): the figure that says how far one thread can go.
    // And how much of a core each side kept busy over the run (> 0.9 of each on a two-core
    // machine: any other runnable thread, the kernel's included, delays one of them).
    let wall_ns = wall.elapsed().as_nanos().max(1) as f64;
    let venue_cpu_ns =
        venue_cpu_before.zip(venue_pid.and_then(process_cpu_ns)).map(|(b, a)| a.saturating_sub(b));
    let harness_cpu_ns =
        harness_cpu_before.zip(process_cpu_ns(std::process::id())).map(|(b, a)| a.saturating_sub(b));
    let per_request = |ns: u64| ns as f64 / 1e3 / schedule.total() as f64;
    let venue_cpu_us_per_request = venue_cpu_ns.map(per_request);
    let mut problems = Vec::new();
    if run.lost + run.duplicates + run.unexpected > 0 {
        problems.push(format!(
            "{} unanswered, {} answered twice, {} unexpected",
            run.lost, run.duplicates, run.unexpected
        ));
    }
    problems.extend(tally.problems());
    let total = schedule.total();
    let mut extra = serde_json::json!({
        "requests": total,
        "refused": tally.refused,
        "unmatched": tally.unmatched,
        "venue_cpu_us_per_request": venue_cpu_us_per_request,
        "venue_cores_busy": venue_cpu_ns.map(|ns| ns as f64 / wall_ns),
        "harness_cpu_us_per_request": harness_cpu_ns.map(per_request),
        "harness_cores_busy": harness_cpu_ns.map(|ns| ns as f64 / wall_ns),
        "quic": transport_stats,
    });
    if args.udp_baseline {
        let echo = Echo { core: None, wait: echo_like_venue(&args.venue_wait), payload_bytes: 200 };
        let steal_before = steal_ms_now();
        let udp = {
            let _paused = Paused::new(venue_pid);
            echo_series(&echo, args.output.harness_core, args.ramp.sender_wait, schedule, bench_epoch)?
        };
        let udp_steal_ms =
            steal_before.zip(steal_ms_now()).map(|(before, after)| after.saturating_sub(before));
        // The baseline's own check is reported apart: datagrams the kernel dropped beside the
        // venue say nothing of the venue's answers, so they never fail the venue's row.
        let udp_passed = udp.check.passed && udp.lost == 0;
        if !udp_passed {
            eprintln!(
                "note: the UDP baseline beside {}/s lost datagrams ({}; {} lost): its ratio is a lower bound; the venue's own check is apart",
                schedule.rate_per_s,
                udp.check.detail,
                udp.lost
            );
        }
        let (p50, udp_p50) = (run.latency_ns.value_at_quantile(0.5), udp.latency_ns.value_at_quantile(0.5));
        extra["udp_baseline"] = serde_json::json!({
            "echo_wait": flag_name(echo.wait),
            "p50_us": udp_p50 as f64 / 1e3,
            "p99_us": udp.latency_ns.value_at_quantile(0.99) as f64 / 1e3,
            "lost": udp.lost,
            "steal_ms": udp_steal_ms,
            "passed": udp_passed,
            "check": udp.check.detail,
        });
        extra["p50_over_udp"] = serde_json::json!(p50 as f64 / udp_p50.max(1) as f64);
    }
    drop(peer_paused);
    if let Some(peer) = peer {
        let peer_json = peer_rate(args, peer, schedule, bench_epoch, venue_pid)?;
        let peer_p50_ns = peer_json["p50_us"].as_f64().unwrap_or(0.0) * 1e3;
        extra["p50_over_peer"] =
            serde_json::json!(run.latency_ns.value_at_quantile(0.5) as f64 / peer_p50_ns.max(1.0));
        extra["peer"] = peer_json;
    }
    let check = Check::from_problems(problems, &format!("all {total} requests answered once, none refused"));
    Ok(run.into_series(check, extra))
}
