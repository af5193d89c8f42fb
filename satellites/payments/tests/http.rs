//! The HTTP API on loopback over a real settlement ledger (redb; PostgreSQL when configured),
//! with a webhook receiver on loopback that checks every signature and answers 500 once.
#![allow(clippy::inconsistent_digit_grouping)] // amounts in cents: 100_00 is 100.00

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Place;
use payments::api::{hash_key, system_clock};
use payments::config::{ApiKeyConfig, DeliveryConfig, WebhookEndpoint};
use payments::connector::{Connector, RailCall, RailError, RailOutcome, RailStatus};
use payments::webhook::{verify, SIGNATURE_HEADER};
use payments::{PaymentsConfig, Service};
use serde_json::{json, Value};

const SECRET: &str = "whsec_test";

/// Approves everything; while armed, says it entered and waits to be released (to hold a
/// request in flight).
struct Gate {
    armed: Arc<AtomicBool>,
    entered: SyncSender<()>,
    release: Arc<Mutex<Receiver<()>>>,
}

impl Connector for Gate {
    fn execute(&self, call: &RailCall<'_>, _timeout_ms: u64) -> Result<RailOutcome, RailError> {
        if self.armed.swap(false, Ordering::SeqCst) {
            self.entered.send(()).unwrap();
            self.release.lock().unwrap().recv().unwrap();
        }
        Ok(RailOutcome::Approved(format!("gate-{}", call.payment_id)))
    }

    fn status(&self, call: &RailCall<'_>, _timeout_ms: u64) -> Result<RailStatus, RailError> {
        Ok(RailStatus::Approved(format!("gate-{}", call.payment_id)))
    }
}

/// Receives webhooks: checks each signature, answers 500 to the first request, 200 after.
struct Receiver500 {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<(bool, Value)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver500 {
    fn start() -> Receiver500 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let (got, stop) = (Arc::clone(&got), Arc::clone(&stop));
            move || {
                let mut served = 0;
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let mut conn = conn.unwrap();
                    let mut reader = BufReader::new(conn.try_clone().unwrap());
                    let (mut len, mut sig) = (0usize, String::new());
                    loop {
                        let mut line = String::new();
                        reader.read_line(&mut line).unwrap();
                        let line = line.trim_end();
                        if line.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = line.split_once(':') {
                            if k.eq_ignore_ascii_case("content-length") {
                                len = v.trim().parse().unwrap();
                            } else if k.eq_ignore_ascii_case(SIGNATURE_HEADER) {
                                sig = v.trim().to_string();
                            }
                        }
                    }
                    let mut body = vec![0; len];
                    reader.read_exact(&mut body).unwrap();
                    let valid = verify(SECRET.as_bytes(), &sig, &body).is_some();
                    got.lock().unwrap().push((valid, serde_json::from_slice(&body).unwrap()));
                    served += 1;
                    let status = if served == 1 { "500 Internal Server Error" } else { "200 OK" };
                    let _ =
                        write!(conn, "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                }
            }
        });
        Receiver500 { addr, got, stop, thread: Some(thread) }
    }
}

impl Drop for Receiver500 {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(self.addr);
        let _ = self.thread.take().unwrap().join();
    }
}

fn key(id: &str, account: Option<&str>, secret: &str) -> ApiKeyConfig {
    let salt = format!("{:02x}", id.len()).repeat(8);
    let sha256 = hash_key(&payments::webhook::unhex(&salt).unwrap(), secret);
    ApiKeyConfig { id: id.into(), account: account.map(Into::into), salt, sha256 }
}

struct Client {
    base: String,
    agent: ureq::Agent,
}

impl Client {
    fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        idem: Option<&str>,
        body: Option<Value>,
    ) -> (u16, String) {
        let mut r = self.agent.request(method, &format!("{}{path}", self.base));
        if let Some(k) = key {
            r = r.set("Authorization", &format!("Bearer {k}"));
        }
        if let Some(i) = idem {
            r = r.set("Idempotency-Key", i);
        }
        let result = match body {
            Some(b) => r.set("Content-Type", "application/json").send_string(&b.to_string()),
            None => r.call(),
        };
        match result {
            Ok(resp) => (resp.status(), resp.into_string().unwrap()),
            Err(ureq::Error::Status(code, resp)) => (code, resp.into_string().unwrap()),
            Err(e) => panic!("{method} {path}: {e}"),
        }
    }

    fn json(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        idem: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let (status, text) = self.call(method, path, key, idem, body);
        (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path}: not JSON: {text}")))
    }
}

fn pay(account: &str, amount: &str, method: &str) -> Value {
    json!({ "account": account, "asset": "USD", "amount": amount, "method": method })
}

#[test]
fn idempotency_scoping_bad_input_and_signed_webhooks() {
    for place in Place::all("http") {
        run(&place);
    }
}

fn run(place: &Place) {
    let receiver = Receiver500::start();
    let settlement = Arc::new(Mutex::new(place.open()));
    let (entered_tx, entered_rx) = sync_channel(1);
    let (release_tx, release_rx) = sync_channel(1);
    let armed = Arc::new(AtomicBool::new(false));
    let gate =
        Gate { armed: Arc::clone(&armed), entered: entered_tx, release: Arc::new(Mutex::new(release_rx)) };
    let config = PaymentsConfig {
        api_keys: vec![
            key("op", None, "op-key"),
            key("alice-1", Some("alice"), "alice-key"),
            key("bob-1", Some("bob"), "bob-key"),
        ],
        webhooks: vec![WebhookEndpoint {
            url: format!("http://{}/hooks", receiver.addr),
            secret: SECRET.into(),
        }],
        delivery: DeliveryConfig {
            attempts_max: 5,
            backoff_ms: 10,
            timeout_ms: 5_000,
            ..DeliveryConfig::default()
        },
        ..PaymentsConfig::default()
    };
    let service = Service::start(&config, Arc::clone(&settlement), Box::new(gate), system_clock()).unwrap();
    let app = payments::router(Arc::clone(&service));
    let (addr, stop_tx, server) = serve_app(app);
    let c = Client { base: format!("http://{addr}"), agent: ureq::AgentBuilder::new().build() };
    let (alice, bob, op) = (Some("alice-key"), Some("bob-key"), Some("op-key"));

    // A deposit, and its retry answered byte for byte from the stored result.
    let (status, first) =
        c.call("POST", "/v1/deposits", alice, Some("d1"), Some(pay("alice", "100.00", "card")));
    assert_eq!(status, 201, "{first}");
    let d1: Value = serde_json::from_str(&first).unwrap();
    assert_eq!((d1["status"].as_str(), d1["fee"].as_str()), (Some("succeeded"), Some("2.00")));
    let (status, again) =
        c.call("POST", "/v1/deposits", alice, Some("d1"), Some(pay("alice", "100.00", "card")));
    assert_eq!((status, &again), (201, &first));
    // The same key with another body: 422 naming the header.
    let (status, e) = c.json("POST", "/v1/deposits", alice, Some("d1"), Some(pay("alice", "99.00", "card")));
    assert_eq!((status, e["field"].as_str()), (422, Some("Idempotency-Key")));

    // Another account's key is refused, for writes and reads.
    let (status, e) = c.json("POST", "/v1/deposits", alice, Some("x1"), Some(pay("bob", "1.00", "card")));
    assert_eq!((status, e["field"].as_str()), (403, Some("account")));
    let (status, b1) = c.json("POST", "/v1/deposits", op, Some("b1"), Some(pay("bob", "50.00", "upi")));
    assert_eq!(status, 201);
    let bob_id = b1["id"].as_u64().unwrap();
    let (status, e) = c.json("GET", &format!("/v1/payments/{bob_id}"), alice, None, None);
    assert_eq!((status, e["field"].as_str()), (403, Some("id")));
    let (status, e) = c.json(
        "POST",
        &format!("/v1/payments/{bob_id}/refunds"),
        alice,
        Some("r0"),
        Some(json!({ "amount": "1.00" })),
    );
    assert_eq!((status, e["field"].as_str()), (404, Some("id")), "{e}");
    let (status, e) = c.json("GET", "/v1/payments?account=bob", alice, None, None);
    assert_eq!((status, e["field"].as_str()), (403, Some("account")));
    assert_eq!(c.json("GET", &format!("/v1/payments/{bob_id}"), bob, None, None).0, 200);

    // Bad input: 4xx naming the field, and nothing written.
    let transfers = settlement.lock().unwrap().ledger().transfer_count();
    let d1_refunds = format!("/v1/payments/{}/refunds", d1["id"]);
    let cases: Vec<(Option<&str>, &str, Value, u16, &str)> = vec![
        (alice, "/v1/deposits", pay("alice", "-1", "card"), 400, "amount"),
        (alice, "/v1/deposits", pay("alice", "0", "card"), 400, "amount"),
        (alice, "/v1/deposits", pay("alice", "1.001", "card"), 400, "amount"),
        (alice, "/v1/deposits", pay("alice", "ten", "card"), 400, "amount"),
        (
            alice,
            "/v1/deposits",
            json!({ "account": "alice", "asset": "USD", "amount": 5, "method": "card" }),
            400,
            "amount",
        ),
        (alice, "/v1/deposits", pay("alice", "1.00", "cheque"), 422, "method"),
        (op, "/v1/deposits", pay("mallory", "1.00", "card"), 422, "account"),
        (
            alice,
            "/v1/deposits",
            json!({ "account": "alice", "asset": "EUR", "amount": "1", "method": "card" }),
            422,
            "asset",
        ),
        (alice, "/v1/deposits", json!({ "account": "alice", "amount": "1", "method": "card" }), 400, "asset"),
        (alice, "/v1/withdrawals", pay("alice", "98.01", "bank_transfer"), 422, "amount"),
        (alice, &d1_refunds, json!({ "amount": "100.01" }), 422, "amount"),
        (alice, "/v1/payments/abc/refunds", json!({ "amount": "1" }), 400, "id"),
        (None, "/v1/deposits", pay("alice", "1.00", "card"), 401, "Authorization"),
    ];
    for (i, (k, path, body, want, field)) in cases.into_iter().enumerate() {
        let (status, e) = c.json("POST", path, k, Some(&format!("bad{i}")), Some(body));
        assert_eq!((status, e["field"].as_str()), (want, Some(field)), "case {i}: {e}");
    }
    let (status, e) = c.json("POST", "/v1/deposits", alice, None, Some(pay("alice", "1.00", "card")));
    assert_eq!((status, e["field"].as_str()), (400, Some("Idempotency-Key")));
    assert_eq!(settlement.lock().unwrap().ledger().transfer_count(), transfers, "nothing partial is written");

    // A request still in flight: its duplicate gets 409, and the retry after it the result.
    armed.store(true, Ordering::SeqCst);
    let slow = std::thread::spawn({
        let c = Client { base: c.base.clone(), agent: c.agent.clone() };
        move || {
            c.call(
                "POST",
                "/v1/withdrawals",
                Some("alice-key"),
                Some("w1"),
                Some(pay("alice", "10.00", "wallet")),
            )
        }
    });
    entered_rx.recv().unwrap();
    assert!(settlement.try_lock().is_ok(), "the rails call does not hold the ledger");
    let (status, e) =
        c.json("POST", "/v1/withdrawals", alice, Some("w1"), Some(pay("alice", "10.00", "wallet")));
    assert_eq!((status, e["field"].as_str()), (409, Some("Idempotency-Key")));
    release_tx.send(()).unwrap();
    let (status, w1) = slow.join().unwrap();
    assert_eq!(status, 201, "{w1}");
    assert_eq!(
        c.call("POST", "/v1/withdrawals", alice, Some("w1"), Some(pay("alice", "10.00", "wallet"))),
        (201, w1)
    );

    // Refunds: partial, then the rest.
    let refunds = format!("/v1/payments/{}/refunds", d1["id"]);
    let (status, r) = c.json("POST", &refunds, alice, Some("r1"), Some(json!({ "amount": "40.00" })));
    assert_eq!(
        (status, r["status"].as_str(), r["refunded"].as_str()),
        (201, Some("partially_refunded"), Some("40.00"))
    );
    let (status, e) = c.json("POST", &refunds, alice, Some("r2"), Some(json!({ "amount": "60.01" })));
    assert_eq!((status, e["field"].as_str()), (422, Some("amount")));

    // Paging, scoped to the key's account.
    let (_, page) = c.json("GET", "/v1/payments?limit=1", alice, None, None);
    assert_eq!(page["payments"].as_array().unwrap().len(), 1);
    let after = page["next_after"].as_u64().expect("more to come");
    let (_, rest) = c.json("GET", &format!("/v1/payments?after={after}"), alice, None, None);
    assert!(rest["payments"].as_array().unwrap().iter().all(|p| p["account"] == "alice"));
    assert_eq!(rest["payments"].as_array().unwrap().len(), 1);
    let (_, all) = c.json("GET", "/v1/payments", op, None, None);
    assert_eq!(all["payments"].as_array().unwrap().len(), 3);
    let (status, b) = c.json("GET", "/v1/breakers", op, None, None);
    assert_eq!((status, b["rails"]["state"].as_str()), (200, Some("closed")));
    let (_, doc) = c.json("GET", "/openapi/payments.json", op, None, None);
    for path in [
        "/v1/deposits",
        "/v1/withdrawals",
        "/v1/payments/{id}/refunds",
        "/v1/payments",
        "/v1/webhooks/deliveries",
    ] {
        assert!(doc["paths"][path].is_object(), "{path}");
    }

    // Webhooks: four final statuses (d1, b1, w1 succeeded; d1 partially refunded), each
    // signed; the first delivery was answered 500 and retried.
    let deadline = Instant::now() + Duration::from_secs(30);
    let deliveries = loop {
        let (_, d) = c.json("GET", "/v1/webhooks/deliveries", op, None, None);
        let rows = d["deliveries"].as_array().unwrap().clone();
        if rows.len() == 4 && rows.iter().all(|r| r["state"] != "pending") {
            break rows;
        }
        assert!(Instant::now() < deadline, "deliveries still pending: {d}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(deliveries.iter().all(|d| d["state"] == "delivered"), "{deliveries:?}");
    assert_eq!(deliveries[0]["attempts"], 2, "the 500 was retried");
    let got = receiver.got.lock().unwrap().clone();
    assert_eq!(got.len(), 5);
    assert!(got.iter().all(|(valid, _)| *valid), "every signature verifies");
    let types: Vec<&str> = got[1..].iter().map(|(_, v)| v["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        ["payment.succeeded", "payment.succeeded", "payment.succeeded", "payment.partially_refunded"]
    );
    let (_, mine) = c.json("GET", "/v1/webhooks/deliveries", bob, None, None);
    assert_eq!(mine["deliveries"].as_array().unwrap().len(), 1, "a key sees its own account's deliveries");

    stop_tx.send(()).unwrap();
    server.join().unwrap();
}

/// Group commit: deposits from 8 client threads at once (rails taking 5 ms, called without a
/// lock) are made durable by fewer commits than they have steps, each answered only once its
/// commit is written: after the service stops, every answered payment reads back from the store
/// as answered, and the balances are their sum.
#[test]
fn concurrent_payments_share_commits_and_are_durable_when_answered() {
    use payments::connector::{SimulatedConnector, SimulatorConfig};
    const CLIENTS: usize = 8;
    const EACH: usize = 25;
    for place in Place::all("group") {
        let settlement = Arc::new(Mutex::new(place.open()));
        let config =
            PaymentsConfig { api_keys: vec![key("op", None, "op-key")], ..PaymentsConfig::default() };
        let rails = SimulatedConnector::new(SimulatorConfig { sleep_ms: 5, ..SimulatorConfig::default() });
        let service =
            Service::start(&config, Arc::clone(&settlement), Box::new(rails), system_clock()).unwrap();
        let app = payments::router(Arc::clone(&service));
        let (addr, stop_tx, server) = serve_app(app);
        let base = format!("http://{addr}");
        let answers: Vec<Vec<Value>> = (0..CLIENTS)
            .map(|c| {
                let base = base.clone();
                std::thread::spawn(move || {
                    let client = Client { base, agent: ureq::AgentBuilder::new().build() };
                    let account = ["alice", "bob", "carol"][c % 3];
                    (0..EACH)
                        .map(|i| {
                            let amount = format!("{}.00", 1 + c);
                            let idem = format!("g{c}-{i}");
                            let (status, p) = client.json(
                                "POST",
                                "/v1/deposits",
                                Some("op-key"),
                                Some(&idem),
                                Some(pay(account, &amount, "bank_transfer")),
                            );
                            assert_eq!((status, p["status"].as_str()), (201, Some("succeeded")), "{p}");
                            p
                        })
                        .collect()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        let (commits, steps) = service.group_commits();
        let payments = (CLIENTS * EACH) as u64;
        assert_eq!(steps, 2 * payments, "processing and final, each made durable once");
        assert!(commits < steps, "{commits} commits for {steps} steps: some were shared");
        println!("{payments} payments, {steps} steps in {commits} commits");
        stop_tx.send(()).unwrap();
        server.join().unwrap();
        drop(service);
        drop(Arc::try_unwrap(settlement).ok().expect("the service let go of the settlement"));
        // Read back from the store alone.
        let mut s = place.open();
        let core = payments::Payments::new(&config, &mut s, Box::new(common::Scripted::default())).unwrap();
        let mut want = std::collections::HashMap::<&str, i128>::new();
        for (c, list) in answers.iter().enumerate() {
            for p in list {
                let id = p["id"].as_u64().unwrap();
                let stored = core.get(id).expect("an answered payment is stored");
                assert_eq!(stored.status, payments::Status::Succeeded);
                assert_eq!(&payments::api::view(stored), p, "stored as answered");
                *want.entry(["alice", "bob", "carol"][c % 3]).or_default() += (1 + c as i128) * 100;
            }
        }
        for (account, sum) in want {
            assert_eq!(common::available(&s, account, "USD"), sum, "{account}");
        }
        assert_eq!(common::posted_sum(&s, "USD"), 0);
    }
}

/// A refused commit fails the request whose step it carried (500, never a success), and the
/// service then refuses new payment work (503) until a restart, so nothing is written over the
/// lost step: after a restart the store holds exactly what was answered, and payments go on.
#[test]
fn a_refused_commit_fails_its_request_and_stops_payments_until_a_restart() {
    for place in Place::all("refused") {
        let refuse = Arc::new(AtomicBool::new(false));
        let store = settlement::testing::Refusing {
            inner: settlement::AnyStore::open(&place.store()).unwrap(),
            refuse: Arc::clone(&refuse),
        };
        let opened =
            settlement::Settlement::open(&common::config(), store, &common::accounts(), &[]).unwrap();
        let settlement = Arc::new(Mutex::new(opened));
        let config =
            PaymentsConfig { api_keys: vec![key("op", None, "op-key")], ..PaymentsConfig::default() };
        let service = Service::start(
            &config,
            Arc::clone(&settlement),
            Box::new(common::Scripted::default()),
            system_clock(),
        )
        .unwrap();
        let app = payments::router(Arc::clone(&service));
        let (addr, stop_tx, server) = serve_app(app);
        let c = Client { base: format!("http://{addr}"), agent: ureq::AgentBuilder::new().build() };
        let op = Some("op-key");
        let (status, first) =
            c.json("POST", "/v1/deposits", op, Some("a"), Some(pay("alice", "10.00", "bank_transfer")));
        assert_eq!((status, first["id"].as_u64()), (201, Some(1)), "{first}");
        refuse.store(true, Ordering::SeqCst);
        let (status, e) =
            c.json("POST", "/v1/deposits", op, Some("b"), Some(pay("alice", "20.00", "bank_transfer")));
        assert_eq!((status, e["field"].as_str()), (500, Some("server")), "{e}");
        assert!(e["error"].as_str().unwrap().contains("disk full (simulated)"), "{e}");
        refuse.store(false, Ordering::SeqCst);
        let (status, e) =
            c.json("POST", "/v1/deposits", op, Some("c"), Some(pay("alice", "30.00", "bank_transfer")));
        assert_eq!((status, e["field"].as_str()), (503, Some("server")), "{e}");
        assert!(e["error"].as_str().unwrap().contains("restart"), "{e}");
        stop_tx.send(()).unwrap();
        server.join().unwrap();
        drop(service);
        drop(Arc::try_unwrap(settlement).ok().expect("the service let go of the settlement"));
        // Restarted from the store: the answered deposit alone, and ids go on after it.
        let mut s = place.open();
        let mut core =
            payments::Payments::new(&config, &mut s, Box::new(common::Scripted::default())).unwrap();
        assert_eq!(core.list(None, 0).map(|p| p.id).collect::<Vec<_>>(), [1]);
        assert_eq!(common::available(&s, "alice", "USD"), 10_00);
        let next = core
            .create(
                &mut s,
                &payments::core::NewPayment {
                    kind: payments::PaymentKind::Deposit,
                    account: "alice",
                    asset: "USD",
                    method: "bank_transfer",
                    amount_minor: 5_00,
                },
                1,
            )
            .unwrap();
        assert_eq!((next.id, next.status), (2, payments::Status::Succeeded));
        assert_eq!(common::posted_sum(&s, "USD"), 0);
    }
}

/// Serves `app` on a loopback port from a thread of its own: the address, the sender that
/// stops it gracefully, and the thread to join.
fn serve_app(
    app: axum::Router,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>, std::thread::JoinHandle<()>) {
    let (addr_tx, addr_rx) = sync_channel(1);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    stop_rx.await.ok();
                })
                .await
                .unwrap();
        });
    });
    (addr_rx.recv().unwrap(), stop_tx, server)
}
