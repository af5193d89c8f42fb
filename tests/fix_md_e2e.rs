//! End-to-end tests of FIX market data on the order-entry sessions of `serve`, over QUIC and
//! TCP: orders through the gateway, books rebuilt from 35=W/35=X compared with the engine's book
//! (the command journal replayed through a fresh engine), bad subscriptions refused with 35=Y, a
//! market-data-only account refused when it orders, and a subscriber that never reads conflated
//! while another session keeps trading.

mod common;

use std::time::{Duration, Instant};

use common::*;
use engine::{Side, SymbolId, SymbolSpec};
use fix::codec::{tag, Encoder};
use fixclient::{new_order_fields, FixClient, Received};
use gateway::md::MdBooks;
use gateway::server::now_ns;

/// (is bid, price units, size), best first, bids then offers.
type L2 = Vec<(bool, engine::PriceUnits, u64)>;

/// The engine's book of `symbol`, from the command journal replayed through a fresh engine.
fn engine_l2(v: &Venue, specs: &[SymbolSpec], symbol: u32) -> L2 {
    let engine = replayed_engine(v, specs);
    let spec = &specs[symbol as usize];
    let book = engine.book_snapshot(SymbolId(symbol));
    let mut out = Vec::new();
    for (bid, levels) in [(true, &book.bids), (false, &book.asks)] {
        for level in levels {
            let qty = level.orders.iter().map(|o| o.visible_qty).sum();
            out.push((bid, spec.ticks_to_units(level.price), qty));
        }
    }
    out
}

fn fix_l2(books: &MdBooks, symbol: &str) -> L2 {
    let book = books.book(symbol).unwrap_or_else(|| panic!("no 35=W for {symbol}"));
    let side = |bid| book.side(bid).into_iter().map(move |(p, q)| (bid, p, q));
    side(true).chain(side(false)).collect()
}

/// A MarketDataRequest body: `types` are 269 values, `symbols` the 146 entries.
fn md_request(e: &mut Encoder, req_id: &str, kind: &str, depth: &str, types: &[&str], symbols: &[&str]) {
    e.str(262, req_id);
    e.str(263, kind);
    e.str(264, depth);
    e.str(265, "1");
    e.u64(267, types.len() as u64);
    for t in types {
        e.str(269, t);
    }
    e.u64(146, symbols.len() as u64);
    for s in symbols {
        e.str(tag::SYMBOL, s);
    }
}

async fn subscribe(c: &mut FixClient, req_id: &str, depth: &str, types: &[&str], symbols: &[&str]) {
    c.send(b"V", |e| md_request(e, req_id, "1", depth, types, symbols)).await.unwrap();
}

/// Seeded order flow: `n` limit orders from alice and bob around 100.00 on BTC-USD (resting
/// and crossing), a few on ETH-USD.
async fn flow(alice: &mut FixClient, bob: &mut FixClient, n: u64, seed: u64) {
    let mut x = seed;
    for i in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let price = format!("100.{:02}", 5 + x % 15);
        let qty = 1 + (x >> 8) % 6;
        let (c, side, id) = if x.is_multiple_of(2) {
            (&mut *alice, Side::Buy, format!("a{seed}-{i}"))
        } else {
            (&mut *bob, Side::Sell, format!("b{seed}-{i}"))
        };
        let symbol = if i % 10 == 9 { "ETH-USD" } else { "BTC-USD" };
        c.send(b"D", |e| new_order_fields(e, &id, symbol, side, qty, Some(&price), None, now_ns()))
            .await
            .unwrap();
    }
}

/// Applies every 35=W/35=X that arrives until `quiet` passes without one; returns the 35=W
/// messages and the 35=X entries (a 35=X carries a batch of events: one or many entries).
async fn rebuild(c: &mut FixClient, books: &mut MdBooks, quiet: Duration) -> (u64, u64) {
    let (snapshots, entries, _) = rebuild_keeping(c, books, quiet).await;
    (snapshots, entries)
}

/// As [`rebuild`], also returning each 35=X from its 268 on (the part every session of one
/// kind of subscription shares).
async fn rebuild_keeping(c: &mut FixClient, books: &mut MdBooks, quiet: Duration) -> (u64, u64, Vec<String>) {
    let (mut snapshots, mut entries, mut bodies) = (0, 0, Vec::new());
    for m in drain(c, quiet).await {
        let msg_type = m.msg_type();
        assert!(msg_type == "W" || msg_type == "X", "unexpected {}", m.text());
        if msg_type == "W" {
            snapshots += 1;
        } else {
            entries += m.message().group(268).count() as u64;
            let text = m.text();
            let at = text.find("|268=").expect("a 268");
            bodies.push(text[at..text.len() - 7].to_owned());
        }
        books.apply(&m.message()).unwrap_or_else(|e| panic!("{e} at {}", m.text()));
    }
    (snapshots, entries, bodies)
}

/// Reads the `n` 35=W a new subscription starts with into `books`.
async fn snapshots(c: &mut FixClient, books: &mut MdBooks, n: usize) {
    for _ in 0..n {
        let m: Received = next(c).await;
        assert_eq!(m.msg_type(), "W", "{}", m.text());
        books.apply(&m.message()).unwrap_or_else(|e| panic!("{e} at {}", m.text()));
    }
}

fn venue_for(name: &str, configure: impl FnOnce(&mut exchange::serve::ServeConfig)) -> Venue {
    venue_with(name, |c| {
        let mut watcher = c.accounts[0].clone();
        watcher.name = "watcher".into();
        watcher.password = Some("watcher".into());
        watcher.market_data_only = true;
        watcher.cancel_on_disconnect = false;
        c.accounts.push(watcher);
        c.marketdata.fix_subscriptions_max = 4;
        configure(c);
    })
}

#[test]
fn fix_books_equal_the_engines_book_over_tcp_and_quic() {
    let v = venue_for("fixmd-books", |_| {});
    let specs = exchange::serve::symbol_specs(&v.serve_config.symbols).unwrap();
    rt().block_on(async {
        let mut alice = v.login("alice").await;
        let mut bob = v.login_tcp("bob").await;
        // Orders before the subscriptions (their 35=W carry them) and after (35=X).
        flow(&mut alice, &mut bob, 60, 1).await;
        let mut watcher = v.login_tcp("watcher").await; // TCP, market-data-only
        let mut carol = v.login("carol").await; // QUIC, a trader who also watches
        subscribe(&mut watcher, "w-all", "0", &["0", "1", "2"], &["BTC-USD", "ETH-USD"]).await;
        subscribe(&mut carol, "c-top3", "3", &["0", "1"], &["BTC-USD"]).await;
        // Both subscriptions are in place (their 35=W read) before the next orders, so those
        // reach the books only as 35=X.
        let (mut wb, mut cb) = (MdBooks::new(), MdBooks::new());
        snapshots(&mut watcher, &mut wb, 2).await;
        snapshots(&mut carol, &mut cb, 1).await;
        let before = fix_l2(&wb, "BTC-USD");
        flow(&mut alice, &mut bob, 120, 2).await;
        let _ = drain(&mut alice, Duration::from_millis(300)).await;
        let _ = drain(&mut bob, Duration::from_millis(300)).await;
        let (w_snapshots, w_increments) = rebuild(&mut watcher, &mut wb, Duration::from_millis(700)).await;
        let (c_snapshots, _) = rebuild(&mut carol, &mut cb, Duration::from_millis(300)).await;
        assert_eq!((w_snapshots, c_snapshots), (0, 0), "no 35=W after the first, no conflation");
        // A batch's events are netted per level, so how many entries 120 orders make depends on
        // how the gateway batched them; the books below changed only through them.
        assert!(w_increments > 0, "35=X entries: {w_increments}");
        assert_ne!(fix_l2(&wb, "BTC-USD"), before, "the second flow moved the book");
        let btc = engine_l2(&v, &specs, 0);
        assert!(btc.len() >= 4, "a book worth comparing: {btc:?}");
        assert_eq!(fix_l2(&wb, "BTC-USD"), btc);
        assert_eq!(fix_l2(&wb, "ETH-USD"), engine_l2(&v, &specs, 1));
        assert!(wb.book("BTC-USD").unwrap().last_trade.is_some(), "trades arrive as 269=2 entries");
        let top3: L2 = ["bids", "asks"]
            .iter()
            .flat_map(|side| btc.iter().filter(move |l| l.0 == (*side == "bids")).take(3).copied())
            .collect();
        assert_eq!(fix_l2(&cb, "BTC-USD"), top3, "depth 3 keeps the top three levels exactly");

        // The market-data-only account may not trade.
        limit(&mut watcher, "w1", Side::Buy, 1, "100.00").await;
        let refused = next(&mut watcher).await;
        check(&refused, &[(35, "j"), (380, "6"), (372, "D")]);
        assert!(refused.get(58).unwrap().contains("market-data-only account"), "{}", refused.text());
        // And unsubscribing stops the updates.
        watcher.send(b"V", |e| md_request(e, "w-all", "2", "0", &[], &[])).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        flow(&mut alice, &mut bob, 10, 3).await;
        assert!(drain(&mut watcher, Duration::from_millis(400)).await.is_empty());
        for c in [alice, bob, watcher, carol] {
            c.logout().await.unwrap();
        }
    });
}

#[test]
fn ten_subscribers_rebuild_the_engines_book_from_bodies_encoded_once() {
    let v = venue_for("fixmd-ten", |c| {
        for i in 0..10 {
            let mut md = c.accounts[0].clone();
            md.name = format!("md{i}");
            md.password = Some(format!("md{i}"));
            md.market_data_only = true;
            c.accounts.push(md);
        }
    });
    let specs = exchange::serve::symbol_specs(&v.serve_config.symbols).unwrap();
    rt().block_on(async {
        let mut alice = v.login("alice").await;
        let mut bob = v.login_tcp("bob").await;
        flow(&mut alice, &mut bob, 40, 7).await;
        let _ = drain(&mut alice, Duration::from_millis(300)).await;
        let _ = drain(&mut bob, Duration::from_millis(300)).await;
        // Eight full-depth subscribers over QUIC (one kind), two at depth 3 over TCP (another).
        let mut subscribers = Vec::new();
        for i in 0..10 {
            let name = format!("md{i}");
            let mut c = if i < 8 { v.login(&name).await } else { v.login_tcp(&name).await };
            let depth = if i < 8 { "0" } else { "3" };
            subscribe(&mut c, &format!("r{i}"), depth, &["0", "1", "2"], &["BTC-USD", "ETH-USD"]).await;
            subscribers.push(c);
        }
        // Every subscription is in place (its two 35=W read) before the next orders, so every
        // session of a kind gets the same 35=X from the first one on.
        let mut books = Vec::new();
        for c in subscribers.iter_mut() {
            let mut b = MdBooks::new();
            snapshots(c, &mut b, 2).await;
            books.push(b);
        }
        // Orders sent without waiting: the gateway takes many events a turn, so 35=X carry
        // batches.
        flow(&mut alice, &mut bob, 400, 8).await;
        let _ = drain(&mut alice, Duration::from_millis(300)).await;
        let _ = drain(&mut bob, Duration::from_millis(300)).await;
        let btc = engine_l2(&v, &specs, 0);
        let eth = engine_l2(&v, &specs, 1);
        assert!(btc.len() >= 4, "a book worth comparing: {btc:?}");
        let top3 = |book: &L2| -> L2 {
            [true, false]
                .iter()
                .flat_map(|&bid| book.iter().filter(move |l| l.0 == bid).take(3).copied())
                .collect()
        };
        let mut bodies = Vec::new();
        for (i, (c, books)) in subscribers.iter_mut().zip(&mut books).enumerate() {
            let (snapshots, entries, kept) = rebuild_keeping(c, books, Duration::from_millis(700)).await;
            assert_eq!(snapshots, 0, "md{i}: no 35=W after the first two, no conflation");
            assert!(entries > 0, "md{i}: 35=X entries: {entries}");
            if i < 8 {
                assert_eq!(fix_l2(books, "BTC-USD"), btc, "md{i}");
                assert_eq!(fix_l2(books, "ETH-USD"), eth, "md{i}");
            } else {
                assert_eq!(fix_l2(books, "BTC-USD"), top3(&btc), "md{i}");
                assert_eq!(fix_l2(books, "ETH-USD"), top3(&eth), "md{i}");
            }
            bodies.push(kept);
        }
        // Every session of a kind got the same 35=X from 268 on: the same entries and RptSeqs.
        assert!(bodies[1..8].iter().all(|b| *b == bodies[0]), "full-depth bodies differ");
        assert_eq!(bodies[8], bodies[9], "depth-3 bodies differ");
        assert_ne!(bodies[0], bodies[8]);
        for c in subscribers.into_iter().chain([alice, bob]) {
            c.logout().await.unwrap();
        }
    });
}

/// The 35=Y answering the last request: (281, 58).
async fn refusal(c: &mut FixClient) -> (Option<String>, String) {
    let m: Received = next(c).await;
    assert_eq!(m.msg_type(), "Y", "{}", m.text());
    (m.get(281), m.get(58).unwrap_or_default())
}

#[test]
fn bad_subscriptions_are_refused_with_35_y_naming_the_reason() {
    let v = venue_for("fixmd-bad", |_| {});
    rt().block_on(async {
        for tcp in [false, true] {
            let mut c = if tcp { v.login_tcp("alice").await } else { v.login("alice").await };
            let book = ["0", "1"];
            subscribe(&mut c, "u", "0", &book, &["NO-SUCH"]).await;
            let (code, text) = refusal(&mut c).await;
            assert_eq!(code.as_deref(), Some("0"));
            assert!(text.contains("unknown symbol \"NO-SUCH\""), "{text}");
            subscribe(&mut c, "d", "-3", &book, &["BTC-USD"]).await;
            let (code, text) = refusal(&mut c).await;
            assert_eq!(code.as_deref(), Some("5"));
            assert!(text.contains("MarketDepth (264) -3"), "{text}");
            subscribe(&mut c, "t", "0", &["9"], &["BTC-USD"]).await;
            let (code, text) = refusal(&mut c).await;
            assert_eq!(code.as_deref(), Some("8"));
            assert!(text.contains("MDEntryType (269) 9"), "{text}");
            c.send(b"V", |e| md_request(e, "nobody", "2", "0", &[], &[])).await.unwrap();
            let (code, text) = refusal(&mut c).await;
            assert_eq!(code, None, "FIX 4.4 has no code for it");
            assert!(text.contains("unknown MDReqID \"nobody\""), "{text}");
            // Four symbol subscriptions at most: three, then two more is one too many.
            subscribe(&mut c, "s1", "1", &book, &["BTC-USD", "ETH-USD", "AAPL"]).await;
            for _ in 0..3 {
                assert_eq!(next(&mut c).await.msg_type(), "W");
            }
            subscribe(&mut c, "s1", "1", &book, &["AAPL"]).await;
            let (code, text) = refusal(&mut c).await;
            assert_eq!(code.as_deref(), Some("1"));
            assert!(text.contains("duplicate MDReqID \"s1\""), "{text}");
            subscribe(&mut c, "s2", "1", &book, &["AAPL", "BTC-USD"]).await;
            let (code, text) = refusal(&mut c).await;
            assert_eq!(code.as_deref(), Some("2"));
            assert!(text.contains("too many subscriptions: this session holds 3 of at most 4"), "{text}");
            // A snapshot-only request is answered and holds nothing.
            c.send(b"V", |e| md_request(e, "snap", "0", "1", &book, &["AAPL"])).await.unwrap();
            let w = next(&mut c).await;
            check(&w, &[(35, "W"), (262, "snap"), (55, "AAPL"), (268, "0")]);
            // The session keeps serving: a missing MDReqID is a session-level Reject.
            c.send(b"V", |e| e.str(263, "1")).await.unwrap();
            let r = next(&mut c).await;
            check(&r, &[(35, "3"), (373, "1"), (371, "262")]);
            c.logout().await.unwrap();
        }
    });
}

#[test]
fn a_subscriber_that_never_reads_is_conflated_while_another_session_trades() {
    let v = venue_for("fixmd-slow", |c| c.marketdata.fix_backlog_bytes_max = 16 << 10);
    let specs = exchange::serve::symbol_specs(&v.serve_config.symbols).unwrap();
    rt().block_on(async {
        // A QUIC subscriber that reads nothing: with a 16 KiB stream window, the venue's bytes
        // for it soon wait in the venue's own buffer, past the 16 KiB market-data bound.
        let mut config = v.config("watcher", "watcher", false);
        if let fixclient::ClientTransport::Quic { tuning, .. } = &mut config.transport {
            tuning.stream_receive_window_bytes = Some(16 << 10);
        }
        let mut stalled = FixClient::connect(&config).await.expect("logon");
        for i in 0..4 {
            subscribe(&mut stalled, &format!("s{i}"), "0", &["0", "1", "2"], &["BTC-USD"]).await;
        }
        let started = Instant::now();
        let mut alice = v.login("alice").await;
        let mut bob = v.login_tcp("bob").await;
        // Alice and bob keep trading and get every report while the subscriber is stalled.
        for round in 0..4 {
            flow(&mut alice, &mut bob, 100, 10 + round).await;
            let reports = drain(&mut alice, Duration::from_millis(200)).await.len()
                + drain(&mut bob, Duration::from_millis(200)).await.len();
            assert!(reports > 0, "order entry goes on while the subscriber is stalled");
        }
        assert!(started.elapsed() < Duration::from_secs(25), "well within the stalled session's heartbeat");
        alice.logout().await.unwrap();
        bob.logout().await.unwrap();
        // Now it reads: increments, then (after the conflation) a fresh 35=W per subscription,
        // then increments again; the book it rebuilds is the engine's.
        let mut books: Vec<MdBooks> = (0..4).map(|_| MdBooks::new()).collect();
        let mut snapshots = [0u32; 4];
        let mut messages = 0;
        for m in drain(&mut stalled, Duration::from_millis(1000)).await {
            messages += 1;
            let i: usize = m.get(262).unwrap()[1..].parse().unwrap();
            if m.msg_type() == "W" {
                snapshots[i] += 1;
            }
            books[i].apply(&m.message()).unwrap_or_else(|e| panic!("{e} at {}", m.text()));
        }
        assert!(
            snapshots.iter().all(|&n| n >= 2),
            "each subscription was conflated (a second 35=W): {snapshots:?} over {messages} messages"
        );
        let btc = engine_l2(&v, &specs, 0);
        for b in &books {
            assert_eq!(fix_l2(b, "BTC-USD"), btc);
        }
        stalled.logout().await.unwrap();
    });
}

#[test]
fn exchange_md_feed_fix_check_rebuilds_and_records_the_book() {
    let v = venue_for("fixmd-cli", |_| {});
    let record = v.dir.join("md-fix-record.txt");
    let tcp = v.server().info.tcp_addr.unwrap().to_string();
    let mut md = std::process::Command::new(env!("CARGO_BIN_EXE_exchange"))
        .args(["md", "--feed", "fix", "--symbol", "BTC-USD", "--account", "watcher", "--password", "watcher"])
        .args(["--tcp", "--fix-addr", &tcp, "--check", "--count", "150", "--record"])
        .arg(&record)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    rt().block_on(async {
        let mut alice = v.login("alice").await;
        let mut bob = v.login("bob").await;
        let mut round = 0;
        while md.try_wait().unwrap().is_none() {
            assert!(round < 100, "exchange md did not finish");
            flow(&mut alice, &mut bob, 20, 100 + round).await;
            let _ = drain(&mut alice, Duration::from_millis(50)).await;
            let _ = drain(&mut bob, Duration::from_millis(50)).await;
            round += 1;
        }
    });
    let out = md.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("check: 150 messages, 1 snapshots, 0 problem(s)"), "{text}");
    assert!(text.contains("TRADE BTC-USD") && text.contains("BOOK rptseq"), "{text}");
    let recorded = std::fs::read(&record).unwrap();
    let lines: Vec<&[u8]> = recorded.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
    assert!(lines.len() >= 150, "every message recorded: {}", lines.len());
    assert!(lines.iter().any(|l| l.windows(5).any(|w| w == b"\x0135=W")));
    // Without credentials it says what is missing.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_exchange"))
        .args(["md", "--feed", "fix", "--symbol", "BTC-USD", "--tcp", "--fix-addr", &tcp])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--feed fix needs --account"));
}

#[test]
fn a_zero_fix_market_data_bound_is_refused_at_start_naming_the_field() {
    for field in ["fix_subscriptions_max", "fix_backlog_bytes_max"] {
        let mut config = exchange::serve::ServeConfig::default();
        config.network.quic = "127.0.0.1:0".parse().unwrap();
        config.network.tcp = "127.0.0.1:0".into();
        config.network.http = "".into();
        config.network.md = "".into();
        match field {
            "fix_subscriptions_max" => config.marketdata.fix_subscriptions_max = 0,
            _ => config.marketdata.fix_backlog_bytes_max = 0,
        }
        let dir = std::env::temp_dir().join(format!("exchange-fixmd-zero-{}-{field}", std::process::id()));
        let Err(err) = exchange::serve::Server::start(&config, Some(&dir)) else {
            panic!("{field} = 0 was accepted")
        };
        let _ = std::fs::remove_dir_all(&dir);
        assert!(err.to_string().contains(&format!("marketdata.{field} must be positive")), "{err}");
    }
}

/// The next message other than market data on the book (35=W/X): the one a test waits for.
async fn next_not_book(c: &mut FixClient) -> Received {
    loop {
        let m = next(c).await;
        if m.msg_type() != "W" && m.msg_type() != "X" {
            return m;
        }
    }
}

#[test]
fn an_admin_halt_and_resume_reach_the_symbols_fix_subscribers_as_35_f() {
    let v = venue_for("fixmd-halt", |_| {});
    rt().block_on(async {
        let mut watcher = v.login_tcp("watcher").await;
        subscribe(&mut watcher, "w", "0", &["0", "1", "2"], &["BTC-USD"]).await;
        assert_eq!(next(&mut watcher).await.msg_type(), "W");
        // alice follows ETH-USD only: a BTC-USD halt is not hers to hear.
        let mut alice = v.login("alice").await;
        subscribe(&mut alice, "a", "0", &["0", "1"], &["ETH-USD"]).await;
        assert_eq!(next(&mut alice).await.msg_type(), "W");
        let mut ops = v.login("admin").await;

        // Refusals first, naming the reason; nothing is halted by them.
        let m = halt(&mut ops, "halt", Some("NO-SUCH")).await;
        check(&m, &[(tag::ADMIN_STATUS, "1")]);
        assert!(m.get(tag::TEXT).unwrap().contains("unknown symbol NO-SUCH"), "{}", m.text());
        let m = halt(&mut ops, "halt", None).await;
        check(&m, &[(35, "3"), (373, "1"), (371, "55")]);

        let m = halt(&mut ops, "halt", Some("BTC-USD")).await;
        check(&m, &[(tag::ADMIN_STATUS, "0")]);
        let f = next_not_book(&mut watcher).await;
        check(&f, &[(35, "f"), (55, "BTC-USD"), (326, "2")]);
        assert!(f.get(60).is_some_and(|t| t.len() >= 17), "TransactTime: {}", f.text());
        // The halt is the engine's: a BTC-USD order is refused `halted`.
        limit(&mut alice, "h1", Side::Buy, 1, "100.00").await;
        let er = next_not_book(&mut alice).await;
        check(&er, &[(35, "8"), (39, "8")]);
        assert!(er.get(58).unwrap_or_default().contains("halted"), "{}", er.text());
        // A subscriber joining while halted is told after its 35=W.
        let mut bob = v.login("bob").await;
        subscribe(&mut bob, "b", "5", &["0", "1"], &["BTC-USD"]).await;
        assert_eq!(next(&mut bob).await.msg_type(), "W");
        check(&next(&mut bob).await, &[(35, "f"), (55, "BTC-USD"), (326, "2")]);

        // Resumed with `exchange admin resume` (one session per account: ops logs out first); a
        // refusal there exits 1 with the reason.
        ops.logout().await.unwrap();
        let (addr, ca) = (v.server().info.quic_addr.to_string(), v.server().info.cert.clone());
        let admin_cli = move |args: &'static [&'static str]| {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_exchange"))
                .args(["admin", "--account", "admin", "--password", "admin"])
                .args(["--addr", &addr, "--ca", ca.to_str().unwrap()])
                .args(args)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned() + &stderr)
        };
        let (code, out) = tokio::task::spawn_blocking({
            let admin_cli = admin_cli.clone();
            move || admin_cli(&["resume", "NO-SUCH"])
        })
        .await
        .unwrap();
        assert_eq!((code, out.trim()), (Some(1), "refused: unknown symbol NO-SUCH"));
        let (code, out) =
            tokio::task::spawn_blocking(move || admin_cli(&["resume", "BTC-USD"])).await.unwrap();
        assert_eq!((code, out.trim()), (Some(0), "resume: resume of BTC-USD sent to the engine"));
        check(&next_not_book(&mut watcher).await, &[(35, "f"), (55, "BTC-USD"), (326, "17")]);
        check(&next_not_book(&mut bob).await, &[(35, "f"), (55, "BTC-USD"), (326, "17")]);
        limit(&mut alice, "h2", Side::Buy, 1, "100.00").await;
        check(&next_not_book(&mut alice).await, &[(35, "8"), (39, "0")]);
        // alice, subscribed to ETH-USD only, heard of neither.
        for m in drain(&mut alice, Duration::from_millis(300)).await {
            assert_ne!(m.msg_type(), "f", "{}", m.text());
        }
        for c in [watcher, alice, bob] {
            c.logout().await.unwrap();
        }
    });
}

#[test]
fn a_halt_holds_across_a_restart_and_a_new_subscriber_is_told() {
    let mut v = venue_for("fixmd-halt-restart", |_| {});
    rt().block_on(async {
        let mut ops = v.login("admin").await;
        check(&halt(&mut ops, "halt", Some("BTC-USD")).await, &[(tag::ADMIN_STATUS, "0")]);
        ops.logout().await.unwrap();
    });
    v.restart();
    rt().block_on(async {
        // The halt is in the command journal: the restarted engine refuses orders, and the FIX
        // desk, rebuilt from the event journal, tells a new subscriber after its 35=W.
        let mut alice = v.login("alice").await;
        limit(&mut alice, "r1", Side::Buy, 1, "100.00").await;
        let er = next_not_book(&mut alice).await;
        check(&er, &[(35, "8"), (39, "8")]);
        assert!(er.get(58).unwrap_or_default().contains("halted"), "{}", er.text());
        let mut watcher = v.login_tcp("watcher").await;
        subscribe(&mut watcher, "w", "0", &["0", "1"], &["BTC-USD"]).await;
        assert_eq!(next(&mut watcher).await.msg_type(), "W");
        check(&next(&mut watcher).await, &[(35, "f"), (55, "BTC-USD"), (326, "2")]);
        for c in [alice, watcher] {
            c.logout().await.unwrap();
        }
    });
}
