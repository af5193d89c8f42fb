//! SIGKILL of the real `exchange serve` between orders and their fills: after the restart every
//! acknowledged order is live and reachable by its owner or reported done, cancel-on-disconnect
//! applies to sessions the crash cut, and each owner hears every report exactly once (a
//! duplicate without PossDupFlag fails the test).

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::ServeProcess;
use engine::Side;
use fix::session::SessionState;
use fixclient::{new_order_fields, ClientConfig, ClientTransport, FixClient, Received};
use gateway::server::now_ns;

const WAIT: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(500);

/// A serve process (SIGKILLed when dropped), its addresses and certificate.
struct Serve {
    process: ServeProcess,
    tcp: SocketAddr,
    quic: SocketAddr,
    cert: PathBuf,
}

fn serve(dir: &Path, config: &Path) -> Serve {
    let process = ServeProcess::start(dir, config, Stdio::null());
    let quic = process.printed("fix/quic: ").parse().unwrap();
    let cert = PathBuf::from(process.printed("certificate: ").split(" (").next().unwrap());
    Serve { tcp: process.tcp(), quic, cert, process }
}

/// FIX over TCP or over QUIC (trusting the venue's certificate).
#[derive(Clone, Copy)]
enum Over {
    Tcp,
    Quic,
}

fn client(venue: &Serve, over: Over, account: &str) -> ClientConfig {
    let (addr, transport) = match over {
        Over::Tcp => (venue.tcp, ClientTransport::Tcp),
        Over::Quic => (
            venue.quic,
            ClientTransport::Quic {
                ca: venue.cert.clone(),
                server_name: "localhost".into(),
                client_cert: None,
                tuning: Default::default(),
            },
        ),
    };
    ClientConfig {
        addr,
        transport,
        comp_id: account.into(),
        target_comp_id: "EXCHANGE".into(),
        username: account.into(),
        password: account.into(),
        heartbeat_s: 30,
    }
}

async fn connect(venue: &Serve, over: Over, account: &str, resume: Option<SessionState>) -> FixClient {
    FixClient::connect_resuming(&client(venue, over, account), resume).await.expect("logon")
}

/// A venue configuration: every port chosen by the OS, small journal segments, and `accounts`
/// (name, cancel_on_disconnect).
fn write_config(path: &Path, accounts: &[(&str, bool)]) {
    write_config_with(path, accounts, "", "");
}

/// As [`write_config`], with lines added to `[engine]` and to `[journal]`.
fn write_config_with(path: &Path, accounts: &[(&str, bool)], engine: &str, journal: &str) {
    let mut text = format!(
        "[network]\nquic = \"127.0.0.1:0\"\ntcp = \"127.0.0.1:0\"\nhttp = \"127.0.0.1:0\"\nmd = \"127.0.0.1:0\"\n\n[engine]\n{engine}\n[journal]\nsegment_mib = 1\n{journal}"
    );
    for (name, cod) in accounts {
        text.push_str(&format!(
            "\n[[accounts]]\nname = \"{name}\"\npassword = \"{name}\"\ncancel_on_disconnect = {cod}\n"
        ));
    }
    std::fs::write(path, text).unwrap();
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

fn sigkill_between_orders_and_fills(over: Over, name: &str) {
    let dir = scratch(name);
    let config = dir.join("venue.toml");
    write_config(&config, &[("alice", true), ("bob", true), ("dave", false)]);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let venue = serve(&dir.join("data"), &config);
    let (alice_state, dave_state) = rt.block_on(async {
        // alice (cancel-on-disconnect) stays logged on through the crash.
        let mut alice = connect(&venue, over, "alice", None).await;
        limit(&mut alice, "a1", Side::Buy, 5, "100.00").await;
        check(&next(&mut alice).await, &[(150, "0"), (11, "a1")]);
        // dave (no cancel-on-disconnect) rests and logs out.
        let mut dave = connect(&venue, over, "dave", None).await;
        limit(&mut dave, "d1", Side::Buy, 3, "99.00").await;
        check(&next(&mut dave).await, &[(150, "0"), (11, "d1")]);
        limit(&mut dave, "d2", Side::Buy, 4, "98.00").await;
        check(&next(&mut dave).await, &[(150, "0"), (11, "d2")]);
        let dave_state = dave.logout_keeping_state().await.unwrap();
        // SIGKILL while alice's connection is still open (dropping her client first would end
        // her session before the crash).
        drop(venue);
        (alice.take_state(), dave_state)
    });
    let venue = serve(&dir.join("data"), &config);
    assert!(
        venue
            .process
            .stdout
            .iter()
            .any(|l| l.starts_with("sessions:") && l.contains("alice") && !l.contains("dave")),
        "alice's orders canceled at start: {:?}",
        venue.process.stdout
    );
    rt.block_on(async {
        let mut bob = connect(&venue, over, "bob", None).await;
        limit(&mut bob, "b1", Side::Sell, 5, "99.00").await;
        let bob_got = drain(&mut bob).await;
        let fills: Vec<_> = bob_got.iter().filter(|m| m.get(150).as_deref() == Some("F")).collect();
        assert_eq!(fills.len(), 1, "only dave's order was left to trade with");
        check(fills[0], &[(31, "99.00"), (32, "3")]);

        // Each owner gets what happened while away, exactly once, as possible duplicates.
        let mut alice = connect(&venue, over, "alice", Some(alice_state)).await;
        let got = drain(&mut alice).await;
        assert_eq!(got.len(), 1, "{:?}", got.iter().map(|m| m.text()).collect::<Vec<_>>());
        check(&got[0], &[(150, "4"), (11, "a1"), (58, "mass_cancel"), (43, "Y")]);
        let mut dave = connect(&venue, over, "dave", Some(dave_state)).await;
        let got = drain(&mut dave).await;
        assert_eq!(got.len(), 1, "{:?}", got.iter().map(|m| m.text()).collect::<Vec<_>>());
        check(&got[0], &[(150, "F"), (11, "d1"), (39, "2"), (14, "3"), (43, "Y")]);
        // dave's other order, from before the crash, is his to replace and cancel.
        dave.send(b"G", |e| {
            e.str(11, "d3");
            e.str(41, "d2");
            e.str(55, "BTC-USD");
            e.char(54, b'1');
            e.u64(38, 2);
            e.char(40, b'2');
            e.str(44, "98.00");
            e.time(60, now_ns());
        })
        .await
        .unwrap();
        check(&next(&mut dave).await, &[(150, "5"), (11, "d3"), (41, "d2"), (151, "2")]);
        dave.send(b"F", |e| {
            e.str(11, "d4");
            e.str(41, "d3");
            e.str(55, "BTC-USD");
            e.char(54, b'1');
            e.time(60, now_ns());
        })
        .await
        .unwrap();
        check(&next(&mut dave).await, &[(150, "4"), (11, "d4"), (41, "d3")]);
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

#[test]
fn sigkill_between_orders_and_fills_loses_no_report_and_cancels_cut_sessions_over_tcp() {
    sigkill_between_orders_and_fills(Over::Tcp, "one-tcp");
}

#[test]
fn sigkill_between_orders_and_fills_loses_no_report_and_cancels_cut_sessions_over_quic() {
    sigkill_between_orders_and_fills(Over::Quic, "one-quic");
}

/// What one client saw of its orders.
#[derive(Default)]
struct Book {
    /// Every report's ExecID seen without PossDupFlag (a second one is a duplicate).
    exec_ids: std::collections::HashSet<String>,
    /// ClOrdID → (acknowledged, done) for each order's current id.
    orders: std::collections::HashMap<String, (bool, bool)>,
    duplicates: Vec<String>,
}

impl Book {
    fn take(&mut self, m: &Received) {
        if m.msg_type() != "8" {
            return;
        }
        let exec_type = m.get(150).unwrap_or_default();
        let exec_id = m.get(17).unwrap_or_default();
        if exec_type != "I" && exec_id != "0" && !self.exec_ids.insert(exec_id.clone()) && m.get(43).is_none()
        {
            self.duplicates.push(m.text());
        }
        let id = m.get(11).unwrap_or_default();
        let done = matches!(m.get(39).as_deref(), Some("2" | "4" | "C" | "8"));
        match exec_type.as_str() {
            "0" => {
                self.orders.insert(id, (true, false));
            }
            "5" => {
                if let Some(orig) = m.get(41) {
                    self.orders.remove(&orig);
                }
                self.orders.insert(id, (true, done));
            }
            "4" => {
                // A cancel names the request's id (or the order's, for mass cancels).
                let order = m.get(41).unwrap_or(id);
                self.orders.insert(order, (true, true));
            }
            "F" | "C" | "8" => {
                let entry = self.orders.entry(id).or_insert((exec_type != "8", false));
                entry.1 |= done;
            }
            _ => {}
        }
    }
}

#[test]
fn repeated_sigkills_under_flow_keep_every_acknowledged_order_reachable_and_reports_exactly_once() {
    repeated_sigkills("flow", "", "");
}

/// The same with the command journal written by the router before the engine thread's ring
/// (`journal.commands = "router"`), under group commit (the router syncs what it wrote before
/// it releases a report): the engine thread does no journal work, and nothing acknowledged is
/// lost to a SIGKILL either.
#[test]
fn repeated_sigkills_with_the_router_writing_the_command_journal_lose_nothing_acknowledged() {
    repeated_sigkills(
        "flow-router",
        "thread = \"own\"\n",
        "events = \"derived\"\ncommands = \"router\"\nsync = \"group-commit\"\n",
    );
}

fn repeated_sigkills(name: &str, engine: &str, journal: &str) {
    use rand::{rngs::SmallRng, Rng, SeedableRng};
    let dir = scratch(name);
    let config = dir.join("venue.toml");
    write_config_with(&config, &[("alice", true), ("bob", false), ("carol", false)], engine, journal);
    let accounts = ["alice", "bob", "carol"];
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut rng = SmallRng::seed_from_u64(11);
    let mut books: Vec<Book> = accounts.iter().map(|_| Book::default()).collect();
    let mut states: Vec<Option<SessionState>> = accounts.iter().map(|_| None).collect();
    let mut next_id = 0u64;
    let writer = if journal.contains("router") { "by the router" } else { "by the engine thread" };
    for trial in 0..3 {
        let venue = serve(&dir.join("data"), &config);
        let line = venue.process.printed("journal: ");
        assert!(line.contains(&format!("commands journaled {writer}")), "{line}");
        let sends: Vec<Vec<(u8, u64, u64, bool)>> = accounts
            .iter()
            .map(|_| {
                (0..40)
                    .map(|_| (rng.gen_range(0..10), rng.gen_range(1..6), rng.gen_range(97..104), rng.gen()))
                    .collect()
            })
            .collect();
        let kill_after = Duration::from_millis(rng.gen_range(20..200));
        let (new_states, new_books) = rt.block_on(async {
            let mut clients = Vec::new();
            for (i, account) in accounts.iter().enumerate() {
                let mut c = connect(&venue, Over::Tcp, account, states[i].take()).await;
                // What was missed while away (resends), then the flow.
                for m in drain(&mut c).await {
                    books[i].take(&m);
                }
                clients.push(c);
            }
            let mut books = std::mem::take(&mut books);
            let started = std::time::Instant::now();
            let mut killed = false;
            let mut venue = Some(venue);
            for round in 0..40 {
                if started.elapsed() >= kill_after {
                    drop(venue.take()); // SIGKILL mid-flow, every session still connected
                    killed = true;
                    break;
                }
                for (i, c) in clients.iter_mut().enumerate() {
                    let (op, qty, px, buy) = sends[i][round];
                    let live: Vec<String> = books[i]
                        .orders
                        .iter()
                        .filter(|(_, s)| s.0 && !s.1)
                        .map(|(id, _)| id.clone())
                        .collect();
                    let side = if buy { Side::Buy } else { Side::Sell };
                    let price = format!("{px}.00");
                    let sent = if op < 2 && !live.is_empty() {
                        let orig = live[round % live.len()].clone();
                        next_id += 1;
                        let id = format!("x{next_id}");
                        c.send(b"F", |e| {
                            e.str(11, &id);
                            e.str(41, &orig);
                            e.str(55, "BTC-USD");
                            e.char(54, b'1');
                            e.time(60, now_ns());
                        })
                        .await
                    } else {
                        next_id += 1;
                        let id = format!("o{trial}-{next_id}");
                        c.send(b"D", |e| {
                            new_order_fields(e, &id, "BTC-USD", side, qty, Some(&price), None, now_ns())
                        })
                        .await
                    };
                    if sent.is_err() {
                        break;
                    }
                    while let Ok(Some(m)) = c.recv(Duration::from_millis(2)).await {
                        books[i].take(&m);
                    }
                }
            }
            if !killed {
                drop(venue.take());
            }
            let mut states = Vec::new();
            for (i, mut c) in clients.into_iter().enumerate() {
                // What reached the socket before the kill.
                while let Ok(Some(m)) = c.recv(Duration::from_millis(100)).await {
                    books[i].take(&m);
                }
                states.push(Some(c.take_state()));
            }
            (states, books)
        });
        states = new_states;
        books = new_books;
    }
    // A last start: every owner gets what it missed, then asks the status of each order it
    // has not seen end.
    let venue = serve(&dir.join("data"), &config);
    rt.block_on(async {
        for (i, account) in accounts.iter().enumerate() {
            let mut c = connect(&venue, Over::Tcp, account, states[i].take()).await;
            for m in drain(&mut c).await {
                books[i].take(&m);
            }
            let open: Vec<String> =
                books[i].orders.iter().filter(|(_, s)| s.0 && !s.1).map(|(id, _)| id.clone()).collect();
            for id in &open {
                c.send(b"H", |e| {
                    e.str(11, id);
                    e.str(55, "BTC-USD");
                    e.char(54, b'1');
                })
                .await
                .unwrap();
                let m = match c.recv(WAIT).await.expect("session alive") {
                    Some(m) => m,
                    None => panic!(
                        "{account}: no answer to the status request for {id} (client session {:?}, expecting {}, sending {})",
                        c.session().stats(),
                        c.session().in_seq_next(),
                        c.session().out_seq_next()
                    ),
                };
                let status = m.get(39).unwrap_or_default();
                assert!(
                    matches!(status.as_str(), "0" | "1" | "2" | "4" | "C"),
                    "{account}'s acknowledged order {id} is unknown after the restarts: {}",
                    m.text()
                );
            }
            eprintln!(
                "{account}: {} reports, {} orders, {} open asked",
                books[i].exec_ids.len(),
                books[i].orders.len(),
                open.len()
            );
            assert!(
                books[i].duplicates.is_empty(),
                "{account} got duplicates without 43=Y: {:?}",
                books[i].duplicates
            );
            assert!(!books[i].exec_ids.is_empty(), "{account} got reports");
        }
    });
    drop(venue);
    std::fs::remove_dir_all(&dir).unwrap();
}
