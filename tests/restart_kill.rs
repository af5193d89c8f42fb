//! SIGKILL of the real `exchange serve` between orders and their fills: after the restart every
//! acknowledged order is live and reachable by its owner or reported done, cancel-on-disconnect
//! applies to sessions the crash cut, and each owner hears every report exactly once (a
//! duplicate without PossDupFlag fails the test).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use engine::Side;
use gateway::client::{new_order_fields, ClientConfig, ClientTransport, FixClient, Received};
use gateway::server::now_ns;
use gateway::session::SessionState;

const WAIT: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(500);

struct Serve {
    child: Child,
    tcp: SocketAddr,
    stdout: Vec<String>,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &Path, config: &Path) -> Serve {
    let mut child = Command::new(env!("CARGO_BIN_EXE_exchange"))
        .args(["serve", "--config", config.to_str().unwrap(), "--data", dir.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stdout = Vec::new();
    let mut tcp = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(addr) = line.strip_prefix("fix/tcp: ") {
            tcp = Some(addr.parse().unwrap());
        }
        let ready = line.starts_with("ready");
        stdout.push(line);
        if ready {
            break;
        }
    }
    // Keep reading so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Serve { child, tcp: tcp.unwrap_or_else(|| panic!("no fix/tcp line in {stdout:?}")), stdout }
}

fn client(addr: SocketAddr, account: &str) -> ClientConfig {
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

async fn connect(addr: SocketAddr, account: &str, resume: Option<SessionState>) -> FixClient {
    FixClient::connect_resuming(&client(addr, account), resume).await.expect("logon")
}

async fn next(c: &mut FixClient) -> Received {
    c.recv(WAIT).await.expect("session alive").expect("a message in time")
}

async fn drain(c: &mut FixClient) -> Vec<Received> {
    let mut out = Vec::new();
    while let Some(m) = c.recv(QUIET).await.expect("session alive") {
        out.push(m);
    }
    out
}

fn check(m: &Received, fields: &[(u32, &str)]) {
    for &(t, v) in fields {
        assert_eq!(m.get(t).as_deref(), Some(v), "tag {t} in {}", m.text());
    }
}

async fn limit(c: &mut FixClient, id: &str, side: Side, qty: u64, price: &str) {
    c.send(b"D", |e| new_order_fields(e, id, "BTC-USD", side, qty, Some(price), None, now_ns()))
        .await
        .unwrap();
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("exchange-kill-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn sigkill_between_orders_and_fills_loses_no_report_and_cancels_cut_sessions() {
    let dir = scratch("one");
    let config = dir.join("venue.toml");
    std::fs::write(
        &config,
        "[network]\nquic = \"127.0.0.1:0\"\ntcp = \"127.0.0.1:0\"\n\n[journal]\nsegment_mib = 1\n\n\
         [[accounts]]\nname = \"alice\"\npassword = \"alice\"\n\n\
         [[accounts]]\nname = \"bob\"\npassword = \"bob\"\n\n\
         [[accounts]]\nname = \"dave\"\npassword = \"dave\"\ncancel_on_disconnect = false\n",
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let venue = serve(&dir.join("data"), &config);
    let (alice_state, dave_state) = rt.block_on(async {
        // alice (cancel-on-disconnect) stays logged on through the crash.
        let mut alice = connect(venue.tcp, "alice", None).await;
        limit(&mut alice, "a1", Side::Buy, 5, "100.00").await;
        check(&next(&mut alice).await, &[(150, "0"), (11, "a1")]);
        // dave (no cancel-on-disconnect) rests and logs out.
        let mut dave = connect(venue.tcp, "dave", None).await;
        limit(&mut dave, "d1", Side::Buy, 3, "99.00").await;
        check(&next(&mut dave).await, &[(150, "0"), (11, "d1")]);
        let dave_state = dave.logout_keeping_state().await.unwrap();
        // SIGKILL while alice's connection is still open (dropping her client first would end
        // her session before the crash).
        drop(venue);
        (alice.take_state(), dave_state)
    });
    let venue = serve(&dir.join("data"), &config);
    assert!(
        venue.stdout.iter().any(|l| l.starts_with("sessions:") && l.contains("alice") && !l.contains("dave")),
        "alice's orders canceled at start: {:?}",
        venue.stdout
    );
    rt.block_on(async {
        let mut bob = connect(venue.tcp, "bob", None).await;
        limit(&mut bob, "b1", Side::Sell, 5, "99.00").await;
        let bob_got = drain(&mut bob).await;
        let fills: Vec<_> = bob_got.iter().filter(|m| m.get(150).as_deref() == Some("F")).collect();
        assert_eq!(fills.len(), 1, "only dave's order was left to trade with");
        check(fills[0], &[(31, "99.00"), (32, "3")]);

        // Each owner gets what happened while away, exactly once, as possible duplicates.
        let mut alice = connect(venue.tcp, "alice", Some(alice_state)).await;
        let got = drain(&mut alice).await;
        assert_eq!(got.len(), 1, "{:?}", got.iter().map(|m| m.text()).collect::<Vec<_>>());
        check(&got[0], &[(150, "4"), (11, "a1"), (58, "mass_cancel"), (43, "Y")]);
        let mut dave = connect(venue.tcp, "dave", Some(dave_state)).await;
        let got = drain(&mut dave).await;
        assert_eq!(got.len(), 1, "{:?}", got.iter().map(|m| m.text()).collect::<Vec<_>>());
        check(&got[0], &[(150, "F"), (11, "d1"), (39, "2"), (14, "3"), (43, "Y")]);
        // The status of each order answers from the rebuilt state.
        alice
            .send(b"H", |e| {
                e.str(11, "a1");
                e.str(55, "BTC-USD");
                e.char(54, b'1');
            })
            .await
            .unwrap();
        check(&next(&mut alice).await, &[(150, "I"), (39, "4"), (11, "a1")]);
    });
    drop(venue);
    std::fs::remove_dir_all(&dir).unwrap();
}
