//! Payments against the real `exchange serve` binary: deposits over HTTP turn a funds refusal
//! (risk_funds) into an accepted order over FIX, a withdrawal is refused while open orders hold
//! the funds, idempotent retries answer byte for byte (across a SIGKILL and restart too), the
//! same key with another body is 422 and one in flight 409, another account's key is refused,
//! a webhook receiver on loopback gets every final status signed, and a retry after it answered
//! 500; bad input is refused naming the field, a non-http webhook URL stops serve with exit 2.
//!
//! The store is redb unless `SETTLEMENT_PG_URL` is set: then PostgreSQL, a schema of its own.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{check, tcp_client, ServeProcess, WAIT};
use engine::Side;
use fixclient::{new_order_fields, FixClient};
use gateway::server::now_ns;
use serde_json::{json, Value};
use settlement::StoreConfig;

const SECRET: &str = "whsec_e2e";
/// The card method of the embedded config.
const CARD_FEE: &str = "{ name = \"card\", fee_percent = \"2\" }";

/// A serve process (SIGKILLed when dropped) and its FIX/TCP and HTTP addresses.
struct Serve {
    _process: ServeProcess,
    tcp: SocketAddr,
    http: SocketAddr,
}

fn spawn_serve(data: &Path, config: &Path) -> Serve {
    let process = ServeProcess::start(data, config, Stdio::null());
    let http = process.printed("http: http://").split('/').next().unwrap().parse().unwrap();
    Serve { tcp: process.tcp(), http, _process: process }
}

/// One request; the status and the body as text.
fn call(
    http: SocketAddr,
    method: &str,
    path: &str,
    key: &str,
    idem: Option<&str>,
    body: Option<&Value>,
) -> (u16, String) {
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(30)).build();
    let mut r =
        agent.request(method, &format!("http://{http}{path}")).set("Authorization", &format!("Bearer {key}"));
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

fn json_call(
    http: SocketAddr,
    method: &str,
    path: &str,
    key: &str,
    idem: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let (status, text) = call(http, method, path, key, idem, body);
    (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path}: not JSON: {text}")))
}

fn pay(account: &str, asset: &str, amount: Value, method: &str) -> Value {
    json!({ "account": account, "asset": asset, "amount": amount, "method": method })
}

/// One request the receiver got: its signature header, its body, and the status it answered.
type Hit = (Option<String>, Vec<u8>, u16);

/// A webhook receiver on loopback: answers 500 to the first delivery, 200 after; keeps every
/// request's signature header and body.
struct Receiver {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Hit>>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&got);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let (mut signature, mut length) = (None, 0usize);
                let mut line = String::new();
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    let lower = line.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    if lower.starts_with("x-payments-signature:") {
                        signature = Some(line.split_once(':').unwrap().1.trim().to_string());
                    }
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_err() {
                    continue;
                }
                let mut got = kept.lock().unwrap();
                let status = if got.is_empty() { 500 } else { 200 };
                got.push((signature, body, status));
                drop(got);
                let _ =
                    write!(stream, "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            }
        });
        Receiver { addr, got }
    }

    /// Every delivery answered 200, as (payment id, status), once it holds `n` of them.
    fn delivered(&self, n: usize) -> Vec<(u64, String)> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.got.lock().unwrap();
            let ok: Vec<(u64, String)> = got
                .iter()
                .filter(|(_, _, status)| *status == 200)
                .map(|(signature, body, _)| {
                    let header = signature.as_deref().expect("a signature header");
                    assert!(
                        payments::webhook::verify(SECRET.as_bytes(), header, body).is_some(),
                        "a valid HMAC signature: {header}"
                    );
                    let v: Value = serde_json::from_slice(body).unwrap();
                    let status = v["type"].as_str().unwrap().strip_prefix("payment.").unwrap().to_string();
                    assert_eq!(v["payment"]["status"].as_str(), Some(status.as_str()));
                    (v["payment"]["id"].as_u64().unwrap(), status)
                })
                .collect();
            if ok.len() >= n {
                return ok;
            }
            drop(got);
            assert!(Instant::now() < deadline, "{} of {n} webhooks delivered", ok.len());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The test's directory and config, removed (schema dropped) when dropped.
struct Place {
    dir: PathBuf,
    store: Option<StoreConfig>,
}

impl Drop for Place {
    fn drop(&mut self) {
        if let Some(StoreConfig::Postgres { url, schema }) = &self.store {
            let _ = settlement::PgStore::drop_schema(url, schema);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn place(name: &str) -> Place {
    let dir = std::env::temp_dir().join(format!("exchange-pay-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = std::env::var("SETTLEMENT_PG_URL").ok().map(|url| {
        let schema = format!("pay_e2e_{name}_{}", std::process::id());
        let _ = settlement::PgStore::drop_schema(&url, &schema);
        StoreConfig::Postgres { url, schema }
    });
    Place { dir, store }
}

/// The embedded defaults on free ports, with dave's opening balance removed, webhooks to
/// `hooks`, fast retries, and the rails sleeping `sleep_ms` per call.
fn config_toml(place: &Place, hooks: SocketAddr, sleep_ms: u64) -> String {
    let mut toml = exchange::serve::DEFAULT_CONFIG_TOML
        .replace("127.0.0.1:9878", "127.0.0.1:0")
        .replace("127.0.0.1:9877", "127.0.0.1:0")
        .replace("127.0.0.1:9880", "127.0.0.1:0")
        .replace("127.0.0.1:9879", "127.0.0.1:0")
        .replace(
            "[[settlement.opening]]\nowner = \"dave\"\namounts = { USD = \"1000000000\", BTC = \"1000000\", ETH = \"1000000\", AAPL = \"1000000\" }\n",
            "",
        )
        .replace("webhooks = []", &format!("webhooks = [{{ url = \"http://{hooks}/hooks\", secret = \"{SECRET}\" }}]"))
        .replace("backoff_ms = 500", "backoff_ms = 20")
        .replace("sleep_ms = 0 ", &format!("sleep_ms = {sleep_ms} "));
    assert!(!toml.contains("owner = \"dave\""), "dave starts with nothing");
    if let Some(StoreConfig::Postgres { url, schema }) = &place.store {
        toml = toml.replace(
            "[settlement]\nenabled = true\n",
            &format!("[settlement]\nenabled = true\nstore = {{ backend = \"postgres\", url = {url:?}, schema = {schema:?} }}\n"),
        );
    }
    toml
}

/// dave's USD row of the ledger (read with the operator key).
fn dave_usd(http: SocketAddr) -> Value {
    let (status, body) =
        json_call(http, "GET", "/v1/balances?owner=dave&asset=USD", "demo-operator", None, None);
    assert_eq!(status, 200, "{body}");
    body["rows"][0].clone()
}

#[test]
fn payments_through_serve_fund_orders_replay_after_a_restart_and_sign_webhooks() {
    let place = place("flow");
    let receiver = Receiver::start();
    let config = place.dir.join("serve.toml");
    std::fs::write(&config, config_toml(&place, receiver.addr, 0)).unwrap();
    let data = place.dir.join("data");
    let serve = spawn_serve(&data, &config);
    let http = serve.http;
    let rt = common::rt();

    // dave holds nothing: his buy is refused before the book.
    let mut dave = rt.block_on(FixClient::connect(&tcp_client(serve.tcp, "dave"))).expect("logon");
    let buy = |dave: &mut FixClient, id: &str| {
        rt.block_on(async {
            dave.send(b"D", |e| {
                new_order_fields(e, id, "BTC-USD", Side::Buy, 1, Some("100.00"), None, now_ns())
            })
            .await
            .unwrap();
            dave.recv(WAIT).await.expect("session alive").expect("a report in time")
        })
    };
    let m = buy(&mut dave, "b1");
    check(&m, &[(35, "8"), (150, "8")]);
    assert!(m.get(58).unwrap().starts_with("risk_funds: USD needed 100.05"), "{}", m.text());

    // A deposit over HTTP (bank transfer: no fee) covers the order and its larger fee.
    let d1 = pay("dave", "USD", json!("100.05"), "bank_transfer");
    let (status, first) = call(http, "POST", "/v1/deposits", "demo-dave", Some("d1"), Some(&d1));
    assert_eq!(status, 201, "{first}");
    let p1: Value = serde_json::from_str(&first).unwrap();
    assert_eq!((p1["status"].as_str(), p1["fee"].as_str()), (Some("succeeded"), Some("0.00")));
    assert_eq!(call(http, "POST", "/v1/deposits", "demo-dave", Some("d1"), Some(&d1)), (201, first.clone()));
    let (status, e) = json_call(
        http,
        "POST",
        "/v1/deposits",
        "demo-dave",
        Some("d1"),
        Some(&pay("dave", "USD", json!("100.06"), "bank_transfer")),
    );
    assert_eq!((status, e["field"].as_str()), (422, Some("Idempotency-Key")));
    let m = buy(&mut dave, "b2");
    check(&m, &[(35, "8"), (150, "0")]);

    // The resting order holds the funds: once the ledger books it, a withdrawal is refused.
    let deadline = Instant::now() + Duration::from_secs(20);
    while dave_usd(http)["held"] != "100.05" {
        assert!(Instant::now() < deadline, "the hold is booked: {}", dave_usd(http));
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(dave_usd(http)["available"], "0.00");
    let (status, e) = json_call(
        http,
        "POST",
        "/v1/withdrawals",
        "demo-dave",
        Some("w1"),
        Some(&pay("dave", "USD", json!("1.00"), "bank_transfer")),
    );
    assert_eq!((status, e["field"].as_str()), (422, Some("amount")), "{e}");
    assert!(e["error"].as_str().unwrap().contains("available"), "{e}");

    // Another account's key: refused for writes and for the ledger's reads.
    let (status, e) = json_call(
        http,
        "POST",
        "/v1/deposits",
        "demo-carol",
        Some("x1"),
        Some(&pay("dave", "USD", json!("1.00"), "card")),
    );
    assert_eq!((status, e["field"].as_str()), (403, Some("account")));
    for path in ["/v1/balances?owner=dave", "/v1/entries?owner=dave", "/v1/positions?owner=dave"] {
        let (status, e) = json_call(http, "GET", path, "demo-carol", None, None);
        assert_eq!((status, e["field"].as_str()), (403, Some("owner")), "{path}: {e}");
    }
    let (status, e) = json_call(http, "GET", &format!("/v1/payments/{}", p1["id"]), "demo-carol", None, None);
    assert_eq!((status, e["field"].as_str()), (403, Some("id")));
    let (status, own) = json_call(http, "GET", "/v1/balances", "demo-dave", None, None);
    assert_eq!(status, 200);
    assert!(own["rows"].as_array().unwrap().iter().all(|r| r["owner"] == "dave"), "{own}");
    let (status, e) = json_call(http, "GET", "/v1/balances", "not-a-key", None, None);
    assert_eq!((status, e["field"].as_str()), (401, Some("Authorization")));

    // Bad input, each refused naming the field, nothing written.
    let payments_before = json_call(http, "GET", "/v1/payments", "demo-operator", None, None).1["payments"]
        .as_array()
        .unwrap()
        .len();
    let cases = [
        (pay("carol", "USD", json!("-1.00"), "card"), 400, "amount"),
        (pay("carol", "USD", json!("0"), "card"), 400, "amount"),
        (pay("carol", "USD", json!("12,50"), "card"), 400, "amount"),
        (pay("carol", "USD", json!("1.001"), "card"), 400, "amount"),
        (pay("carol", "USD", json!(5), "card"), 400, "amount"),
        (pay("carol", "USD", json!("1.00"), "cheque"), 422, "method"),
        (pay("carol", "EUR", json!("1.00"), "card"), 422, "asset"),
    ];
    for (i, (body, want, field)) in cases.iter().enumerate() {
        let (status, e) =
            json_call(http, "POST", "/v1/deposits", "demo-carol", Some(&format!("bad{i}")), Some(body));
        assert_eq!((status, e["field"].as_str()), (*want, Some(*field)), "case {i}: {e}");
    }
    let payments_after = json_call(http, "GET", "/v1/payments", "demo-operator", None, None).1["payments"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(payments_after, payments_before, "refused requests record no payment");

    // A card deposit and two refunds: partially refunded, then refunded.
    let (status, c1) = json_call(
        http,
        "POST",
        "/v1/deposits",
        "demo-carol",
        Some("c1"),
        Some(&pay("carol", "USD", json!("10.00"), "card")),
    );
    assert_eq!((status, c1["fee"].as_str()), (201, Some("0.20")));
    let refunds = format!("/v1/payments/{}/refunds", c1["id"]);
    let (status, r1) =
        json_call(http, "POST", &refunds, "demo-carol", Some("r1"), Some(&json!({ "amount": "4.00" })));
    assert_eq!((status, r1["status"].as_str()), (201, Some("partially_refunded")));
    let (status, r2) =
        json_call(http, "POST", &refunds, "demo-carol", Some("r2"), Some(&json!({ "amount": "6.00" })));
    assert_eq!((status, r2["status"].as_str()), (201, Some("refunded")));
    let (status, e) =
        json_call(http, "POST", &refunds, "demo-carol", Some("r3"), Some(&json!({ "amount": "0.01" })));
    assert_eq!((status, e["field"].as_str()), (422, Some("id")));

    // Every final status reached the receiver signed; the first, answered 500, came again.
    let (d1_id, c1_id) = (p1["id"].as_u64().unwrap(), c1["id"].as_u64().unwrap());
    let mut delivered = receiver.delivered(4);
    delivered.sort();
    let want = [
        (d1_id, "succeeded".to_string()),
        (c1_id, "succeeded".to_string()),
        (c1_id, "partially_refunded".to_string()),
        (c1_id, "refunded".to_string()),
    ];
    let mut want = want.to_vec();
    want.sort();
    assert_eq!(delivered, want);
    let got = receiver.got.lock().unwrap().clone();
    assert_eq!(got[0].2, 500);
    assert!(
        got[1..].iter().any(|(_, body, status)| *status == 200 && *body == got[0].1),
        "retried after the 500"
    );
    // The worker stores an answer after the receiver has counted the hit: wait for the store.
    let mut deliveries = Value::Null;
    until("the worker stores the first delivery's answer", || {
        deliveries = json_call(http, "GET", "/v1/webhooks/deliveries", "demo-operator", None, None).1;
        deliveries["deliveries"][0]["state"] != "pending"
    });
    let first_delivery = &deliveries["deliveries"][0];
    assert_eq!(
        (first_delivery["state"].as_str(), first_delivery["attempts"].as_u64()),
        (Some("delivered"), Some(2)),
        "{deliveries}"
    );

    // SIGKILL, and a restart whose rails take a second per call.
    drop(dave);
    drop(serve);
    std::fs::write(&config, config_toml(&place, receiver.addr, 1_000)).unwrap();
    let serve = spawn_serve(&data, &config);
    let http = serve.http;
    // The stored answer, byte for byte; the same key with another body still 422.
    assert_eq!(call(http, "POST", "/v1/deposits", "demo-dave", Some("d1"), Some(&d1)), (201, first));
    let (status, e) = json_call(
        http,
        "POST",
        "/v1/deposits",
        "demo-dave",
        Some("d1"),
        Some(&pay("dave", "USD", json!("1.00"), "card")),
    );
    assert_eq!((status, e["field"].as_str()), (422, Some("Idempotency-Key")));
    assert_eq!(
        json_call(http, "GET", &format!("/v1/payments/{c1_id}"), "demo-carol", None, None).1["status"],
        "refunded"
    );
    assert_eq!(dave_usd(http)["posted"], "100.05", "the deposit is booked once");

    // A request still at the rails (a second per call now): its duplicate is 409, and the
    // retry after it gets the answer. Two requests race; whichever comes second is the 409.
    let slow_body = pay("carol", "USD", json!("3.00"), "upi");
    let mut seen = false;
    for attempt in 0..5 {
        let key = format!("slow{attempt}");
        let first = std::thread::spawn({
            let (body, key) = (slow_body.clone(), key.clone());
            move || call(http, "POST", "/v1/deposits", "demo-carol", Some(&key), Some(&body))
        });
        std::thread::sleep(Duration::from_millis(100));
        let second = call(http, "POST", "/v1/deposits", "demo-carol", Some(&key), Some(&slow_body));
        let first = first.join().unwrap();
        let (answer, conflict) = match (first.0, second.0) {
            (201, 409) => (first, second),
            (409, 201) => (second, first),
            // No overlap (a replay of a finished one): try again with a new key.
            _ => continue,
        };
        let e: Value = serde_json::from_str(&conflict.1).unwrap();
        assert_eq!(e["field"].as_str(), Some("Idempotency-Key"), "{e}");
        assert_eq!(call(http, "POST", "/v1/deposits", "demo-carol", Some(&key), Some(&slow_body)), answer);
        seen = true;
        break;
    }
    assert!(seen, "a duplicate of a request in flight is answered 409");
    drop(serve);
}

/// `[payments]` mistakes stop serve before it serves, naming the key.
#[test]
fn a_bad_payments_config_stops_serve_with_exit_2_naming_the_field() {
    let place = place("badcfg");
    for (from, to, field) in [
        ("url = \"http://127.0.0.1:9/hooks\"", "url = \"ftp://hooks.example.com\"", "payments.webhooks.url"),
        ("url = \"http://127.0.0.1:9/hooks\"", "url = \"hooks.example.com/x\"", "payments.webhooks.url"),
        (
            "idempotency_retention_s = 86400",
            "idempotency_retention_s = 60",
            "payments.idempotency_retention_s",
        ),
        // Fees are percent as decimal text: a number, a %, negative, above 100, a third decimal
        // and the old basis-point key are each refused naming the field.
        (CARD_FEE, "{ name = \"card\", fee_percent = 2 }", "fee_percent"),
        (CARD_FEE, "{ name = \"card\", fee_percent = \"2%\" }", "payments.methods: card.fee_percent"),
        (CARD_FEE, "{ name = \"card\", fee_percent = \"-1\" }", "card.fee_percent: \"-1\" is negative"),
        (
            CARD_FEE,
            "{ name = \"card\", fee_percent = \"100.5\" }",
            "card.fee_percent: \"100.5\" is above 100",
        ),
        (
            CARD_FEE,
            "{ name = \"card\", fee_percent = \"0.125\" }",
            "card.fee_percent: \"0.125\" has more than two decimals",
        ),
        (CARD_FEE, "{ name = \"card\", fee_bps = 200 }", "card.fee_bps: fees are set in percent"),
    ] {
        let toml = config_toml(&place, "127.0.0.1:9".parse().unwrap(), 0);
        assert!(toml.contains(from), "{from}");
        let path = place.dir.join("bad.toml");
        std::fs::write(&path, toml.replacen(from, to, 1)).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_exchange"))
            .args([
                "serve",
                "--config",
                path.to_str().unwrap(),
                "--data",
                place.dir.join("data").to_str().unwrap(),
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{to}: {stderr}");
        assert!(stderr.contains(field), "{to}: {stderr}");
    }
}

/// Minor units of a decimal text with `scale` decimals.
fn minor(text: &str, scale: u32) -> i128 {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let frac = format!("{frac:0<width$}", width = scale as usize);
    whole.parse::<i128>().unwrap() * 10i128.pow(scale) + frac.parse::<i128>().unwrap_or(0)
}

/// A deposit sent before a kill: its key, body, and the answer if one came back.
type Sent = (String, Value, Option<(u16, String)>);

/// SIGKILL at seeded moments while trades (FIX) and deposits (HTTP) flow, twice; after a
/// restart every deposit request retried with its key yields exactly one payment (the stored
/// answer where one was given, byte for byte), carol's balance is the sum of her succeeded
/// deposits, and every journaled trade is booked once.
#[test]
fn sigkill_while_payments_and_trades_flow_books_each_once() {
    use rand::{Rng, SeedableRng};
    let seed: u64 =
        std::env::var("PAYMENTS_E2E_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(20_261_205);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let place = place("kill");
    let receiver = Receiver::start();
    let config = place.dir.join("serve.toml");
    // The carol deposits go by bank transfer (no fee), each with the rails taking 2 ms.
    std::fs::write(&config, config_toml(&place, receiver.addr, 2)).unwrap();
    let data = place.dir.join("data");
    let rt = common::rt();
    let sent: Arc<Mutex<Vec<Sent>>> = Arc::new(Mutex::new(Vec::new()));
    for round in 0..2 {
        let serve = spawn_serve(&data, &config);
        let http = serve.http;
        let answered_before_kill: usize = rng.gen_range(3..30);
        let orders: usize = rng.gen_range(10..40);
        let depositor = std::thread::spawn({
            let sent = Arc::clone(&sent);
            let amounts: Vec<u32> = (0..200).map(|_| rng.gen_range(1..10_000)).collect();
            move || {
                for (i, cents) in amounts.into_iter().enumerate() {
                    let key = format!("k{round}-{i}");
                    let body = pay(
                        "carol",
                        "USD",
                        json!(format!("{}.{:02}", cents / 100, cents % 100)),
                        "bank_transfer",
                    );
                    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(10)).build();
                    let result = agent
                        .post(&format!("http://{http}/v1/deposits"))
                        .set("Authorization", "Bearer demo-carol")
                        .set("Idempotency-Key", &key)
                        .send_string(&body.to_string());
                    match result {
                        Ok(r) => {
                            let answer = (r.status(), r.into_string().unwrap());
                            sent.lock().unwrap().push((key, body, Some(answer)));
                        }
                        Err(_) => {
                            // Killed while it was in flight: its fate is for the retry to tell.
                            sent.lock().unwrap().push((key, body, None));
                            return;
                        }
                    }
                }
            }
        });
        rt.block_on(common::cross_bob_and_alice(serve.tcp, &round.to_string(), orders, 1));
        let answered_from = sent.lock().unwrap().len();
        let deadline = Instant::now() + Duration::from_secs(30);
        while sent.lock().unwrap().len() < answered_from + answered_before_kill {
            assert!(Instant::now() < deadline, "deposits flow");
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(serve); // SIGKILL, deposits and trades in flight
        depositor.join().unwrap();
    }

    let serve = spawn_serve(&data, &config);
    let http = serve.http;
    let sent = sent.lock().unwrap().clone();
    let mut ids = std::collections::BTreeSet::new();
    let mut succeeded_minor = 0i128;
    for (key, body, answer) in &sent {
        let again = call(http, "POST", "/v1/deposits", "demo-carol", Some(key), Some(body));
        assert_eq!(again.0, 201, "{key}: {}", again.1);
        if let Some(answer) = answer {
            assert_eq!(&again, answer, "{key}: the stored answer, byte for byte (seed {seed})");
        }
        let p: Value = serde_json::from_str(&again.1).unwrap();
        assert!(ids.insert(p["id"].as_u64().unwrap()), "{key}: a payment of its own");
        match p["status"].as_str().unwrap() {
            "succeeded" => succeeded_minor += minor(p["amount"].as_str().unwrap(), 2),
            "failed" => assert!(answer.is_none(), "{key}: only a request cut by the kill fails: {p}"),
            other => panic!("{key}: {other}"),
        }
    }
    let cut = sent.iter().filter(|s| s.2.is_none()).count();
    println!("{} deposits sent, {cut} cut by a kill, {} payments (seed {seed})", sent.len(), ids.len());
    // carol's payments are exactly those: no payment without its key, none twice.
    let (_, listed) =
        json_call(http, "GET", "/v1/payments?account=carol&limit=1000", "demo-operator", None, None);
    let listed: std::collections::BTreeSet<u64> =
        listed["payments"].as_array().unwrap().iter().map(|p| p["id"].as_u64().unwrap()).collect();
    assert_eq!(listed, ids, "seed {seed}");
    let (_, carol) =
        json_call(http, "GET", "/v1/balances?owner=carol&asset=USD", "demo-operator", None, None);
    let posted = minor(carol["rows"][0]["posted"].as_str().unwrap(), 2);
    assert_eq!(
        posted,
        1_000_000_000 * 100 + succeeded_minor,
        "each succeeded deposit booked once (seed {seed})"
    );
    // Every journaled trade is booked once: alice's unsettled BTC is one per trade.
    let trades = common::count_trades(&data);
    assert!(trades > 0, "trades flowed before the kills");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, alice) =
            json_call(http, "GET", "/v1/balances?owner=alice&asset=BTC", "demo-operator", None, None);
        let credits = minor(alice["rows"][0]["pending_credits"].as_str().unwrap(), 8);
        if credits == i128::from(trades) * 100_000_000 {
            break;
        }
        assert!(credits < i128::from(trades) * 100_000_000, "a trade booked twice (seed {seed})");
        assert!(Instant::now() < deadline, "{credits} of {trades} trades booked (seed {seed})");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(serve);
}

/// One webhook request: its delivery id and attempt headers, whether its signature verified,
/// its event, and the status answered.
#[derive(Clone, Debug)]
struct Hook {
    delivery: Option<u64>,
    attempt: Option<u32>,
    signed: bool,
    event: Value,
    status: u16,
}

/// A webhook receiver on loopback that answers 500 ("down") until told it is up, then 200.
struct Flaky {
    addr: SocketAddr,
    up: Arc<std::sync::atomic::AtomicBool>,
    got: Arc<Mutex<Vec<Hook>>>,
}

impl Flaky {
    fn start() -> Flaky {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let got = Arc::new(Mutex::new(Vec::new()));
        std::thread::spawn({
            let (up, got) = (Arc::clone(&up), Arc::clone(&got));
            move || {
                for stream in listener.incoming() {
                    let Ok(mut stream) = stream else { continue };
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut headers = std::collections::HashMap::new();
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                            break;
                        }
                        if let Some((k, v)) = line.split_once(':') {
                            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                        }
                    }
                    let length = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err() {
                        continue;
                    }
                    let status = if up.load(std::sync::atomic::Ordering::SeqCst) { 200 } else { 500 };
                    got.lock().unwrap().push(Hook {
                        delivery: headers.get("x-payments-delivery").and_then(|v| v.parse().ok()),
                        attempt: headers.get("x-payments-attempt").and_then(|v| v.parse().ok()),
                        signed: headers.get("x-payments-signature").is_some_and(|h| {
                            payments::webhook::verify(SECRET.as_bytes(), h, &body).is_some()
                        }),
                        event: serde_json::from_slice(&body).unwrap_or(Value::Null),
                        status,
                    });
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                }
            }
        });
        Flaky { addr, up, got }
    }

    fn hits(&self) -> Vec<Hook> {
        self.got.lock().unwrap().clone()
    }
}

/// Waits until `f` holds, up to 30 s.
fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Webhook deliveries and payments cut off at the rails survive a SIGKILL: a deposit succeeds
/// while the receiver answers 500 (its delivery stored with one attempt, the next due seconds
/// later), a second deposit is at the slow rails; SIGKILL; the receiver comes up; after the
/// restart the second deposit is resolved by asking the rails (succeeded, credited once), and
/// the receiver gets both events signed, with the delivery ids of before the kill.
#[test]
fn webhooks_and_payments_at_the_rails_resume_after_a_sigkill() {
    let place = place("resume");
    let hooks = Flaky::start();
    let config = place.dir.join("serve.toml");
    // The rails take 1.8 s per call (the timeout is 2 s); retries wait 8 s, then 16 s: the kill
    // below must come before the first retry even on a loaded machine.
    let toml =
        |sleep_ms| config_toml(&place, hooks.addr, sleep_ms).replace("backoff_ms = 20", "backoff_ms = 8000");
    std::fs::write(&config, toml(1_800)).unwrap();
    let data = place.dir.join("data");
    let serve = spawn_serve(&data, &config);
    let http = serve.http;
    let (status, d1) = json_call(
        http,
        "POST",
        "/v1/deposits",
        "demo-dave",
        Some("r1"),
        Some(&pay("dave", "USD", json!("7.00"), "bank_transfer")),
    );
    assert_eq!((status, d1["status"].as_str()), (201, Some("succeeded")), "{d1}");
    let d1_id = d1["id"].as_u64().unwrap();
    // The first attempt met a 500, and that is stored (the API shows the worker's record after
    // it stored it).
    let mut first_delivery = 0;
    until("the first attempt is answered 500 and recorded", || {
        let (_, list) = json_call(http, "GET", "/v1/webhooks/deliveries", "demo-operator", None, None);
        let d = &list["deliveries"][0];
        first_delivery = d["id"].as_u64().unwrap_or(0);
        d["attempts"] == 1 && d["http_status"] == 500 && d["state"] == "pending"
    });
    let slow = pay("dave", "USD", json!("5.00"), "bank_transfer");
    let cut = std::thread::spawn(move || {
        let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(10)).build();
        agent
            .post(&format!("http://{http}/v1/deposits"))
            .set("Authorization", "Bearer demo-dave")
            .set("Idempotency-Key", "r2")
            .send_string(&pay("dave", "USD", json!("5.00"), "bank_transfer").to_string())
            .map(|r| r.status())
            .map_err(|e| e.to_string())
    });
    // Kill once it is at the rails (the call takes 1.8 s).
    until("the second deposit is at the rails", || {
        let (_, list) = json_call(http, "GET", "/v1/payments?account=dave", "demo-operator", None, None);
        list["payments"].as_array().is_some_and(|p| p.len() == 2 && p[1]["status"] == "processing")
    });
    assert_eq!(dave_usd(http)["posted"], "7.00");
    drop(serve); // SIGKILL: one delivery pending, one payment at the rails
    assert!(cut.join().unwrap().is_err(), "the request was cut by the kill");
    assert!(hooks.hits().iter().all(|h| h.status == 500), "nothing delivered before the kill");

    hooks.up.store(true, std::sync::atomic::Ordering::SeqCst);
    std::fs::write(&config, toml(0)).unwrap();
    let restarted_ns = now_ns();
    let serve = spawn_serve(&data, &config);
    let http = serve.http;
    // Asked at start, the rails said approved: succeeded (after the restart) and booked once.
    let (_, list) = json_call(http, "GET", "/v1/payments?account=dave", "demo-operator", None, None);
    let p2 = list["payments"].as_array().unwrap().last().unwrap().clone();
    let d2_id = p2["id"].as_u64().unwrap();
    assert_eq!((d2_id, p2["status"].as_str()), (d1_id + 1, Some("succeeded")), "{p2}");
    let history: Vec<(&str, u64)> = p2["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["status"].as_str().unwrap(), h["ts_ns"].as_u64().unwrap()))
        .collect();
    assert_eq!(history.iter().map(|h| h.0).collect::<Vec<_>>(), ["pending", "processing", "succeeded"]);
    assert!(history[2].1 >= restarted_ns, "finished by the restart: {p2}");
    assert!(p2["rail_reference"].as_str().unwrap().starts_with(&format!("sim-{d2_id}-")), "{p2}");
    assert_eq!(dave_usd(http)["posted"], "12.00");
    // Its idempotency key answers with it.
    let (status, again) = json_call(http, "POST", "/v1/deposits", "demo-dave", Some("r2"), Some(&slow));
    assert_eq!(
        (status, again["id"].as_u64(), again["status"].as_str()),
        (201, Some(d2_id), Some("succeeded"))
    );

    // Both events reach the receiver, signed; the first under its id of before the kill, at
    // its second attempt.
    until("both webhooks delivered", || hooks.hits().iter().filter(|h| h.status == 200).count() >= 2);
    let delivered: Vec<Hook> = hooks.hits().into_iter().filter(|h| h.status == 200).collect();
    assert!(delivered.iter().all(|h| h.signed), "{delivered:?}");
    let of = |id: u64| delivered.iter().find(|h| h.event["payment"]["id"] == id).cloned().unwrap();
    let (h1, h2) = (of(d1_id), of(d2_id));
    assert_eq!((h1.delivery, h1.attempt), (Some(first_delivery), Some(2)), "{h1:?}");
    assert_eq!(h1.event["type"], "payment.succeeded");
    assert_eq!(h2.event["payment"]["status"], "succeeded");
    assert!(h2.delivery.unwrap() > first_delivery);
    let refused: Vec<Option<u64>> =
        hooks.hits().iter().filter(|h| h.status == 500).map(|h| h.delivery).collect();
    assert_eq!(refused, [Some(first_delivery)], "one refused attempt, the first");
    // The receiver counts a hit before it answers, and the worker stores the answer after it:
    // wait for the store.
    let mut list = Value::Null;
    until("the worker stores both deliveries as delivered", || {
        list = json_call(http, "GET", "/v1/webhooks/deliveries", "demo-operator", None, None).1;
        list["deliveries"].as_array().is_some_and(|rows| rows.iter().all(|d| d["state"] == "delivered"))
    });
    let rows = list["deliveries"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{list}");
    assert!(rows.iter().all(|d| d["http_status"] == 200), "{list}");
    assert_eq!(rows[0]["attempts"], 2);
    // Nothing more comes: delivered ones are not sent again.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(hooks.hits().iter().filter(|h| h.status == 200).count(), 2);
    drop(serve);
}
