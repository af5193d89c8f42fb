//! What the end-to-end tests share: a real venue (engine thread, journal, router, QUIC and TCP
//! transports) on loopback ports chosen by the OS, in its own data directory, and FIX clients.
#![allow(dead_code)] // each test file uses its own part

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use engine::Side;
use exchange::serve::{ServeConfig, Server};
use fixclient::{new_order_fields, ClientConfig, ClientTransport, FixClient, Received};
use futures_util::{SinkExt, StreamExt};
use gateway::server::now_ns;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message as Frame;

pub const WAIT: Duration = Duration::from_secs(5);

/// A real `exchange serve --config CONFIG --data DIR` process, SIGKILLed when dropped, and the
/// lines it printed up to `ready` (the rest of its stdout is drained so it never blocks).
pub struct ServeProcess {
    pub child: Child,
    pub stdout: Vec<String>,
}

impl ServeProcess {
    /// Starts it and waits for `ready`; `stderr` is the child's (piped when a test reads it).
    pub fn start(data: &Path, config: &Path, stderr: Stdio) -> ServeProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_exchange"))
            .args(["serve", "--config", config.to_str().unwrap(), "--data", data.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut stdout = Vec::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            let ready = line.starts_with("ready");
            stdout.push(line);
            if ready {
                break;
            }
        }
        std::thread::spawn(move || for _ in lines {});
        ServeProcess { child, stdout }
    }

    /// The rest of the first line printed before `ready` that starts with `prefix`.
    pub fn printed(&self, prefix: &str) -> &str {
        self.stdout
            .iter()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line before ready in {:?}", self.stdout))
    }

    /// The FIX/TCP address it listens on.
    pub fn tcp(&self) -> SocketAddr {
        self.printed("fix/tcp: ").parse().unwrap()
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Venue {
    pub server: Option<Server>,
    pub dir: PathBuf,
    pub serve_config: ServeConfig,
}

impl Drop for Venue {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fresh engine with `v`'s symbols and bounds that has processed `v`'s whole command journal:
/// the book the venue's feeds must agree with.
pub fn replayed_engine(v: &Venue, symbols: &[engine::SymbolSpec]) -> engine::Engine {
    let mut engine = engine::Engine::new(engine::EngineConfig {
        symbols: symbols.to_vec(),
        orders_max: v.serve_config.engine.orders_max,
        ..engine::EngineConfig::default()
    });
    let mut reader = journal::JournalReader::open_from_start(v.dir.join("journal/commands")).unwrap();
    let mut events = Vec::new();
    while let Some(r) = reader.next_record().unwrap() {
        if r.kind == journal::RecordKind::Command {
            engine.process(&engine::Command::decode(r.payload).unwrap(), &mut events);
        }
    }
    engine
}

pub fn venue(name: &str) -> Venue {
    venue_with(name, |_| {})
}

pub fn venue_with(name: &str, configure: impl FnOnce(&mut ServeConfig)) -> Venue {
    let dir = std::env::temp_dir().join(format!("exchange-gw-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = ServeConfig::default();
    config.network.quic = "127.0.0.1:0".parse().unwrap();
    config.network.tcp = "127.0.0.1:0".into();
    config.network.http = "127.0.0.1:0".into();
    config.network.md = "127.0.0.1:0".into();
    config.journal.segment_mib = 1;
    if let Some(dave) = config.accounts.iter_mut().find(|a| a.name == "dave") {
        dave.cancel_on_disconnect = false;
    }
    configure(&mut config);
    let server = Server::start(&config, Some(&dir)).expect("server starts");
    Venue { server: Some(server), dir, serve_config: config }
}

impl Venue {
    pub fn server(&self) -> &Server {
        self.server.as_ref().unwrap()
    }

    /// Stops the venue and starts it again on the same data directory (new ports).
    pub fn restart(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop();
        }
        self.server = Some(Server::start(&self.serve_config, Some(&self.dir)).expect("server restarts"));
    }

    pub fn config(&self, account: &str, password: &str, tcp: bool) -> ClientConfig {
        let info = &self.server().info;
        ClientConfig {
            addr: if tcp { info.tcp_addr.unwrap() } else { info.quic_addr },
            transport: if tcp {
                ClientTransport::Tcp
            } else {
                ClientTransport::Quic {
                    ca: info.cert.clone(),
                    server_name: "localhost".into(),
                    client_cert: None,
                    tuning: Default::default(),
                }
            },
            comp_id: account.into(),
            target_comp_id: "EXCHANGE".into(),
            username: account.into(),
            password: password.into(),
            heartbeat_s: 30,
        }
    }

    pub async fn login(&self, account: &str) -> FixClient {
        FixClient::connect(&self.config(account, account, false)).await.expect("logon")
    }

    pub async fn login_tcp(&self, account: &str) -> FixClient {
        FixClient::connect(&self.config(account, account, true)).await.expect("logon")
    }
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

pub async fn limit(c: &mut FixClient, id: &str, side: Side, qty: u64, price: &str) {
    c.send(b"D", |e| new_order_fields(e, id, "BTC-USD", side, qty, Some(price), None, now_ns()))
        .await
        .unwrap();
}

pub async fn market(c: &mut FixClient, id: &str, side: Side, qty: u64) {
    c.send(b"D", |e| new_order_fields(e, id, "BTC-USD", side, qty, None, None, now_ns())).await.unwrap();
}

pub async fn next(c: &mut FixClient) -> Received {
    c.recv(WAIT).await.expect("session alive").expect("a message in time")
}

/// Asserts `tag=value` for every pair.
pub fn check(m: &Received, fields: &[(u32, &str)]) {
    for &(t, v) in fields {
        assert_eq!(m.get(t).as_deref(), Some(v), "tag {t} in {}", m.text());
    }
}

impl Venue {
    /// Logs on continuing `state`'s sequence numbers (no ResetSeqNumFlag).
    pub async fn resume(&self, account: &str, tcp: bool, state: fix::session::SessionState) -> FixClient {
        FixClient::connect_resuming(&self.config(account, account, tcp), Some(state)).await.expect("logon")
    }
}

/// Every application message that arrives within `quiet` of the previous one.
pub async fn drain(c: &mut FixClient, quiet: Duration) -> Vec<Received> {
    let mut out = Vec::new();
    while let Some(m) = c.recv(quiet).await.expect("session alive") {
        out.push(m);
    }
    out
}

/// A FIX/TCP client of `account` (its password is its name, as on the demo venue).
pub fn tcp_client(addr: SocketAddr, account: &str) -> ClientConfig {
    ClientConfig {
        addr,
        transport: ClientTransport::Tcp,
        comp_id: account.into(),
        target_comp_id: "EXCHANGE".into(),
        username: account.into(),
        password: account.into(),
        heartbeat_s: 30,
    }
}

/// Trades flowing through a `serve` at `tcp`: bob sells and alice buys 1 BTC-USD at 10.00,
/// `pairs` times (ids `ks{tag}-{i}` and `kb{tag}-{i}`, sent without waiting), then waits for
/// `alice_reports` of alice's reports, so some trades are through and the rest in flight when
/// the caller kills the process.
pub async fn cross_bob_and_alice(tcp: SocketAddr, tag: &str, pairs: usize, alice_reports: usize) {
    let mut bob = FixClient::connect(&tcp_client(tcp, "bob")).await.expect("logon");
    let mut alice = FixClient::connect(&tcp_client(tcp, "alice")).await.expect("logon");
    for i in 0..pairs {
        let (s, b) = (format!("ks{tag}-{i}"), format!("kb{tag}-{i}"));
        bob.send(b"D", |e| new_order_fields(e, &s, "BTC-USD", Side::Sell, 1, Some("10.00"), None, now_ns()))
            .await
            .unwrap();
        alice
            .send(b"D", |e| new_order_fields(e, &b, "BTC-USD", Side::Buy, 1, Some("10.00"), None, now_ns()))
            .await
            .unwrap();
    }
    for _ in 0..alice_reports {
        alice.recv(WAIT).await.expect("session alive").expect("a report in time");
    }
}

/// Trades in the event journal under `data`.
pub fn count_trades(data: &Path) -> u64 {
    let mut reader = journal::JournalReader::open_from_start(data.join("journal").join("events")).unwrap();
    let mut n = 0;
    while let Some(r) = reader.next_record().unwrap() {
        if r.kind == journal::RecordKind::Event
            && matches!(engine::Event::decode(r.payload).unwrap().kind, engine::EventKind::Trade { .. })
        {
            n += 1;
        }
    }
    n
}

/// A WebSocket client of the venue's market-data feed (`GET /ws` on the HTTP port).
pub type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn ws_connect(v: &Venue) -> Ws {
    let addr = v.server().info.http_addr.expect("http endpoint");
    tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await.expect("ws connects").0
}

pub async fn ws_send(ws: &mut Ws, value: Value) {
    ws.send(Frame::Text(value.to_string().into())).await.unwrap();
}

pub async fn ws_next(ws: &mut Ws) -> Value {
    loop {
        let frame = tokio::time::timeout(WAIT, ws.next()).await.expect("a ws message in time");
        match frame.expect("ws open").expect("ws frame") {
            Frame::Text(text) => return serde_json::from_str(text.as_str()).expect("json"),
            Frame::Close(_) => panic!("ws closed"),
            _ => {}
        }
    }
}

/// An admin's AdminRequest `halt` / `resume` of `symbol` (None: without Symbol), answered.
pub async fn halt(ops: &mut FixClient, action: &str, symbol: Option<&str>) -> Received {
    ops.send(fix::codec::MSG_ADMIN_REQUEST, |e| {
        e.str(fix::codec::tag::ADMIN_REQ_ID, &format!("r-{action}"));
        e.str(fix::codec::tag::ADMIN_ACTION, action);
        if let Some(s) = symbol {
            e.str(fix::codec::tag::SYMBOL, s);
        }
    })
    .await
    .unwrap();
    next(ops).await
}
