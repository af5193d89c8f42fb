//! Payment requests per second over HTTP on loopback: deposits with fresh idempotency keys
//! (each one a fraud check, a simulated rails call and a durable ledger commit), then retries
//! of stored keys (answered from the idempotency table), from `CLIENTS` threads.
//!
//! `cargo run --release -p payments --example http_bench -- [requests] [clients]`
//! (redb in a temp dir; PostgreSQL when `SETTLEMENT_PG_URL` is set).
//!
//! With `PAYMENTS_BENCH_WEBHOOK=1` every final status is also delivered to a webhook receiver
//! on loopback that answers 200 (a delivery record committed with the status, one more commit
//! per attempt by the worker), to measure what durable deliveries cost.
//!
//! With `PAYMENTS_BENCH_URL=http://127.0.0.1:9880` it drives a running `exchange serve` instead
//! (key `PAYMENTS_BENCH_KEY`, default `demo-operator`; client `c` pays into the demo account
//! `alice`, `bob`, `carol` or `dave`, `c mod 4`); keys carry the process id, so runs do not
//! collide.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use payments::api::{hash_key, system_clock};
use payments::config::ApiKeyConfig;
use payments::connector::{SimulatedConnector, SimulatorConfig};
use payments::{PaymentsConfig, Service};
use settlement::{AnyStore, Asset, Settlement, SettlementConfig, StoreConfig};

fn main() {
    let args: Vec<u64> = std::env::args().skip(1).map(|a| a.parse().expect("a number")).collect();
    let requests = args.first().copied().unwrap_or(4_000);
    let clients = args.get(1).copied().unwrap_or(4);
    if let Ok(url) = std::env::var("PAYMENTS_BENCH_URL") {
        let key = std::env::var("PAYMENTS_BENCH_KEY").unwrap_or_else(|_| "demo-operator".into());
        let demo = ["alice", "bob", "carol", "dave"];
        let accounts: Vec<String> = (0..clients).map(|c| demo[c as usize % demo.len()].to_string()).collect();
        drive(&format!("{}/v1/deposits", url.trim_end_matches('/')), &key, &accounts, requests, "serve");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, backend) = match std::env::var("SETTLEMENT_PG_URL") {
        Ok(url) => {
            let schema = format!("payments_bench_{}", std::process::id());
            (StoreConfig::Postgres { url, schema }, "postgres")
        }
        Err(_) => (StoreConfig::Redb { path: dir.path().join("ledger.redb") }, "redb"),
    };
    let config = SettlementConfig {
        store: Default::default(),
        limits: Default::default(),
        fee_owner: "venue:fees".into(),
        cutoff_utc: "16:00".into(),
        holidays: vec![],
        assets: vec![Asset { name: "USD".into(), scale: 2 }],
        symbols: vec![],
    };
    let accounts: Vec<String> = (0..clients).map(|c| format!("acct{c}")).collect();
    let settlement =
        Settlement::open(&config, AnyStore::open(&store).expect("store"), &accounts, &[]).expect("open");
    let shared = Arc::new(Mutex::new(settlement));
    let salt = "00112233445566778899aabbccddeeff";
    let pc = PaymentsConfig {
        api_keys: vec![ApiKeyConfig {
            id: "op".into(),
            account: None,
            salt: salt.into(),
            sha256: hash_key(&payments::webhook::unhex(salt).expect("hex"), "op-key"),
        }],
        webhooks: match std::env::var("PAYMENTS_BENCH_WEBHOOK").as_deref() {
            Ok("1") => vec![payments::config::WebhookEndpoint {
                url: format!("http://{}/hooks", webhook_receiver()),
                secret: "whsec_bench".into(),
            }],
            _ => Vec::new(),
        },
        ..PaymentsConfig::default()
    };
    let webhooks = !pc.webhooks.is_empty();
    let connector = Box::new(SimulatedConnector::new(SimulatorConfig::default()));
    let service = Service::start(&pc, Arc::clone(&shared), connector, system_clock()).expect("service");
    let app = payments::router(service);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            tx.send(l.local_addr().expect("addr")).expect("send");
            axum::serve(l, app).await.expect("serve");
        });
    });
    let base = format!("http://{}/v1/deposits", rx.recv().expect("addr"));
    let label = if webhooks { format!("{backend}+webhook") } else { backend.to_string() };
    drive(&base, "op-key", &accounts, requests, &label);
    if let StoreConfig::Postgres { url, schema } = store {
        drop(shared);
        let _ = settlement::PgStore::drop_schema(&url, &schema);
    }
}

/// New deposits, then the same keys again, from one thread per account; prints requests/s.
fn drive(base: &str, key: &str, accounts: &[String], requests: u64, backend: &str) {
    let clients = accounts.len() as u64;
    let run = std::process::id();
    for phase in ["new", "retry"] {
        let start = Instant::now();
        let threads: Vec<_> = (0..clients)
            .map(|c| {
                let (base, key, account) = (base.to_string(), key.to_string(), accounts[c as usize].clone());
                std::thread::spawn(move || {
                    let agent = ureq::AgentBuilder::new().build();
                    let body = format!(
                        r#"{{"account":"{account}","asset":"USD","amount":"10.00","method":"card"}}"#
                    );
                    for i in 0..requests / clients {
                        let r = agent
                            .post(&base)
                            .set("Authorization", &format!("Bearer {key}"))
                            .set("Idempotency-Key", &format!("{run}-{c}-{i}"))
                            .send_string(&body)
                            .expect("201");
                        assert_eq!(r.status(), 201);
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().expect("client"));
        let secs = start.elapsed().as_secs_f64();
        let n = requests / clients * clients;
        println!(
            "{backend} {phase:>5}: {n} requests, {clients} clients, {secs:.2} s, {:.0} requests/s",
            n as f64 / secs
        );
    }
}

/// A webhook receiver on loopback answering 200 to every POST (one connection per request).
fn webhook_receiver() -> std::net::SocketAddr {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let (mut line, mut length) = (String::new(), 0usize);
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    addr
}
