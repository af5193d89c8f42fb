//! Settlement inside `serve`: trades through the gateway are booked in the ledger (delivery
//! versus payment, fees, zero-sum), the funds check refuses an order the account cannot pay
//! for until a deposit, and a restart (clean, or SIGKILL while trades flow) books every trade
//! exactly once: the ledger equals one rebuilt from the whole journal.
//!
//! The store is redb unless `SETTLEMENT_PG_URL` is set: then PostgreSQL, one schema per test.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use engine::Side;
use exchange::serve::{ServeConfig, Server};
use exchange::settlement_run::{OpeningBalance, SettlementRun};
use gateway::server::now_ns;
use rand::{Rng, SeedableRng};
use settlement::{Balances, StoreConfig};

const ASSETS: [&str; 4] = ["USD", "BTC", "ETH", "AAPL"];

/// The store of a test: a PostgreSQL schema of its own when `SETTLEMENT_PG_URL` is set.
fn store(name: &str) -> Option<StoreConfig> {
    let url = std::env::var("SETTLEMENT_PG_URL").ok()?;
    let schema = format!("e2e_{name}_{}", std::process::id());
    let _ = settlement::PgStore::drop_schema(&url, &schema);
    Some(StoreConfig::Postgres { url, schema })
}

fn drop_store(store: &Option<StoreConfig>) {
    if let Some(StoreConfig::Postgres { url, schema }) = store {
        let _ = settlement::PgStore::drop_schema(url, schema);
    }
}

fn opening(owner: &str, amounts: &[(&str, &str)]) -> OpeningBalance {
    OpeningBalance {
        owner: owner.into(),
        amounts: amounts.iter().map(|(a, v)| (a.to_string(), v.to_string())).collect(),
    }
}

/// Every (owner, asset) balance of the ledger.
fn snapshot(run: &SettlementRun) -> BTreeMap<(String, String), Balances> {
    let shared = run.ledger();
    let s = shared.lock().unwrap();
    let ledger = s.ledger();
    let mut out = BTreeMap::new();
    let owners: Vec<String> =
        s.account_names().iter().cloned().chain(["venue:fees".into(), "venue:external".into()]).collect();
    for owner in owners {
        for asset in ASSETS {
            let id = ledger.asset_id(asset).unwrap();
            if let Some(idx) = ledger.account(&owner, id) {
                out.insert((owner.clone(), asset.to_string()), ledger.balances(idx).unwrap());
            }
        }
    }
    ledger.verify().expect("every asset sums to zero");
    out
}

fn cursor(run: &SettlementRun) -> u64 {
    run.ledger().lock().unwrap().cursor()
}

/// Waits until the follower has applied `seq` (a deadline against a hang, not a timing claim).
fn wait_cursor(run: &SettlementRun, seq: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while cursor(run) < seq {
        assert!(Instant::now() < deadline, "the follower stays at {} < {seq}", cursor(run));
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The last event seq of the journal.
fn journal_last_seq(dir: &Path) -> u64 {
    let mut reader = journal::JournalReader::open_from_start(dir.join("journal").join("events")).unwrap();
    let mut last = 0;
    while let Some(r) = reader.next_record().unwrap() {
        if r.kind == journal::RecordKind::Event {
            last = engine::Event::decode(r.payload).unwrap().seq;
        }
    }
    last
}

/// A ledger rebuilt from the whole journal in a fresh store.
fn rebuilt(config: &ServeConfig, dir: &Path, accounts: &[String]) -> BTreeMap<(String, String), Balances> {
    let mut section = config.settlement.clone();
    let fresh = std::env::temp_dir().join(format!("exchange-ledger-rebuild-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&fresh);
    section.store = match &section.store {
        Some(StoreConfig::Postgres { url, schema }) => {
            let schema = format!("{schema}_rebuild");
            let _ = settlement::PgStore::drop_schema(url, &schema);
            Some(StoreConfig::Postgres { url: url.clone(), schema })
        }
        _ => Some(StoreConfig::Redb { path: fresh.join("ledger.redb") }),
    };
    let symbols = config
        .symbols
        .iter()
        .map(|s| engine::SymbolSpec::new(&s.name, engine::price_text::parse_units(&s.tick).unwrap(), s.lot))
        .collect::<Vec<_>>();
    let run = SettlementRun::open(&section, dir, accounts, &symbols).unwrap().unwrap();
    let out = snapshot(&run);
    drop(run);
    drop_store(&section.store);
    let _ = std::fs::remove_dir_all(&fresh);
    out
}

fn account_names(config: &ServeConfig) -> Vec<String> {
    config.accounts.iter().map(|a| a.name.clone()).collect()
}

fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer demo-operator\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn trades_through_the_gateway_book_delivery_cash_and_fees() {
    let store = store("book");
    let v = venue_with("ledger-book", |c| {
        c.settlement.store = store.clone();
        c.settlement.opening = vec![opening("alice", &[("USD", "1000")]), opening("bob", &[("BTC", "10")])];
    });
    let rt = rt();
    rt.block_on(async {
        let mut bob = v.login("bob").await;
        let mut alice = v.login("alice").await;
        limit(&mut bob, "s1", Side::Sell, 2, "100.00").await;
        check(&next(&mut bob).await, &[(35, "8"), (150, "0")]);
        limit(&mut alice, "b1", Side::Buy, 2, "100.00").await;
        check(&next(&mut alice).await, &[(35, "8"), (150, "0")]);
        check(&next(&mut alice).await, &[(35, "8"), (150, "F")]);
    });
    let run = v.server().settlement.as_ref().expect("settlement runs by default");
    wait_cursor(run, journal_last_seq(&v.dir));
    let b = snapshot(run);
    let get = |o: &str, a: &str| b[&(o.to_string(), a.to_string())];
    // 2 BTC at 100.00: cash 200.00 USD = 20 000 cents; maker (bob) 1 bp = 2, taker (alice)
    // 5 bp = 10. The seller's fee comes out of its proceeds; the buyer pays both fees.
    assert_eq!(get("alice", "USD").debits_pending, 19_998 + 2 + 10, "alice pays cash and fees");
    assert_eq!(get("bob", "USD").credits_pending, 19_998, "bob receives cash net of his fee");
    assert_eq!(get("alice", "BTC").credits_pending, 200_000_000, "alice receives 2 BTC");
    assert_eq!(get("bob", "BTC").debits_pending, 200_000_000, "bob delivers 2 BTC");
    assert_eq!(get("venue:fees", "USD").credits_pending, 12, "the fee account gets both fees");
    assert_eq!(get("alice", "USD").available(), 100_000 - 20_010);
    // The read API on the shared HTTP endpoint.
    let http = v.server().info.http_addr.unwrap();
    let body = http_get(http, "/v1/balances?owner=alice&asset=USD");
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains("\"available\":\"799.90\""), "{body}");
    assert!(http_get(http, "/openapi.json").contains("/v1/entries"));
    // Settlement posts the legs (T+1, so a date two days on has them all due).
    let later = time::OffsetDateTime::now_utc().date() + time::Duration::days(5);
    let report = run.ledger().lock().unwrap().settle(later, now_ns()).unwrap();
    assert_eq!(report.trades, 1);
    let b = snapshot(run);
    let get = |o: &str, a: &str| b[&(o.to_string(), a.to_string())];
    assert_eq!(get("bob", "USD").posted(), 19_998);
    assert_eq!(get("alice", "BTC").posted(), 200_000_000);
    assert_eq!(get("venue:fees", "USD").posted(), 12);
    assert_eq!(get("alice", "USD").posted(), 100_000 - 20_010);
    drop(v);
    drop_store(&store);
}

#[test]
fn a_deposit_turns_a_funds_refusal_into_an_accepted_order() {
    let store = store("deposit");
    let v = venue_with("ledger-deposit", |c| {
        c.settlement.store = store.clone();
        c.settlement.opening = Vec::new();
    });
    let rt = rt();
    rt.block_on(async {
        let mut carol = v.login("carol").await;
        limit(&mut carol, "b1", Side::Buy, 1, "100.00").await;
        let m = next(&mut carol).await;
        check(&m, &[(35, "8"), (150, "8"), (39, "8"), (103, "3")]);
        let text = m.get(58).unwrap();
        assert!(text.starts_with("risk_funds: USD needed 100.05, available 0.00"), "{text}");
        // Selling BTC carol does not hold is refused too.
        limit(&mut carol, "s1", Side::Sell, 1, "100.00").await;
        let m = next(&mut carol).await;
        check(&m, &[(150, "8")]);
        assert!(m.get(58).unwrap().starts_with("risk_funds: BTC needed 1.00000000"), "{}", m.text());
        // 100.05 USD covers 1 × 100.00 plus the larger fee (5 bp, rounded up to a cent).
        let run = v.server().settlement.as_ref().unwrap();
        // The PostgreSQL client blocks: off the runtime's worker.
        tokio::task::block_in_place(|| {
            run.ledger().lock().unwrap().deposit(7, "carol", "USD", 10_005, now_ns()).unwrap()
        });
        limit(&mut carol, "b2", Side::Buy, 1, "100.00").await;
        check(&next(&mut carol).await, &[(35, "8"), (150, "0")]);
        // The order's reservation (then the follower's hold) leaves nothing for a second one.
        limit(&mut carol, "b3", Side::Buy, 1, "0.01").await;
        let m = next(&mut carol).await;
        check(&m, &[(150, "8")]);
        assert!(m.get(58).unwrap().contains("available 0.00"), "{}", m.text());
    });
    drop(v);
    drop_store(&store);
}

#[test]
fn a_clean_restart_books_every_trade_once() {
    let store = store("clean");
    let mut v = venue_with("ledger-clean", |c| c.settlement.store = store.clone());
    let rt = rt();
    for round in 0..2 {
        rt.block_on(async {
            let mut bob = v.login("bob").await;
            let mut alice = v.login("alice").await;
            for i in 0..5 {
                limit(&mut bob, &format!("s{round}-{i}"), Side::Sell, 1, "50.00").await;
                next(&mut bob).await;
                limit(&mut alice, &format!("b{round}-{i}"), Side::Buy, 1, "50.00").await;
                next(&mut alice).await;
                next(&mut alice).await;
            }
        });
        v.restart();
    }
    let run = v.server().settlement.as_ref().unwrap();
    wait_cursor(run, journal_last_seq(&v.dir));
    let live = snapshot(run);
    let alice_btc = live[&("alice".to_string(), "BTC".to_string())];
    assert_eq!(alice_btc.credits_pending, 10 * 100_000_000, "ten trades, each booked once");
    assert_eq!(live, rebuilt(&v.serve_config, &v.dir, &account_names(&v.serve_config)));
    // With the venue stopped, the terminal reads the same ledger from the store.
    v.server.take().unwrap().stop();
    let ledger = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_exchange"))
            .arg("ledger")
            .args(args)
            .args(["--data", v.dir.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    if store.is_none() {
        let balances = ledger(&["balances", "--owner", "alice"]);
        assert!(balances.contains("alice,BTC,1000000.00000000,0.00000000,10.00000000,"), "{balances}");
        let entries = ledger(&["entries", "--last", "3"]);
        assert_eq!(entries.lines().count(), 4, "a header and three entries: {entries}");
        let later = (time::OffsetDateTime::now_utc().date() + time::Duration::days(5)).to_string();
        let report = ledger(&["settle", "--date", &later]);
        assert!(report.contains("alice,BTC,10.00000000,0.00000000,10.00000000"), "{report}");
        let again = ledger(&["settle", "--date", &later]);
        assert_eq!(again.lines().count(), 1, "settled once: {again}");
    }
    drop(v);
    drop_store(&store);
}

/// `serve` and its FIX/TCP address.
fn spawn_serve(dir: &Path, config: &Path) -> (ServeProcess, SocketAddr) {
    let serve = ServeProcess::start(dir, config, Stdio::null());
    let tcp = serve.tcp();
    (serve, tcp)
}

#[test]
fn sigkill_while_trades_flow_books_every_trade_exactly_once() {
    let seed: u64 = std::env::var("LEDGER_E2E_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(20_261_205);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let store = store("kill");
    let dir = std::env::temp_dir().join(format!("exchange-ledger-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut toml = exchange::serve::DEFAULT_CONFIG_TOML
        .replace("127.0.0.1:9878", "127.0.0.1:0")
        .replace("127.0.0.1:9877", "127.0.0.1:0")
        .replace("127.0.0.1:9880", "127.0.0.1:0")
        .replace("127.0.0.1:9879", "127.0.0.1:0");
    if let Some(StoreConfig::Postgres { url, schema }) = &store {
        toml = toml.replace(
            "[settlement]\nenabled = true\n",
            &format!("[settlement]\nenabled = true\nstore = {{ backend = \"postgres\", url = {url:?}, schema = {schema:?} }}\n"),
        );
    }
    let config_path = dir.join("serve.toml");
    std::fs::write(&config_path, &toml).unwrap();
    let data = dir.join("data");
    let rt = rt();
    for round in 0..2 {
        let (child, tcp) = spawn_serve(&data, &config_path);
        // Kill after a seeded number of orders, with orders still in flight.
        let kill_after: usize = rng.gen_range(10..60);
        let reports_before_kill: usize = rng.gen_range(1..kill_after);
        // Some trades are through; the rest are in flight when the kill lands.
        rt.block_on(common::cross_bob_and_alice(tcp, &round.to_string(), kill_after, reports_before_kill));
        drop(child); // SIGKILL
    }
    // Start in process: the follower catches up from its cursor before the venue opens.
    let config = ServeConfig::from_toml(&toml, "test").unwrap();
    let mut server = Server::start(&config, Some(&data)).unwrap();
    // Stop the venue (its start-up cancels journal events of their own) and keep the follower.
    let run = server.settlement.take().unwrap();
    server.stop();
    wait_cursor(&run, journal_last_seq(&data));
    let live = snapshot(&run);
    let trades = common::count_trades(&data);
    assert!(trades > 0, "trades flowed before the kills");
    let alice_btc = live[&("alice".to_string(), "BTC".to_string())];
    assert_eq!(
        alice_btc.credits_pending,
        u128::from(trades) * 100_000_000,
        "each journaled trade booked once"
    );
    let accounts = account_names(&config);
    assert_eq!(live, rebuilt(&config, &data, &accounts), "seed {seed}");
    drop(run);
    drop_store(&store);
    let _ = std::fs::remove_dir_all(&dir);
}
