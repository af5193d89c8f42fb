//! End-to-end tests of the binary order-by-order feed (`[network] md`): orders through the FIX
//! gateway, the market-data thread following the event journal, QUIC datagrams (with
//! deterministic loss injected by the venue) and the recovery stream. The books the subscriber
//! rebuilds are compared with the engine's own book, rebuilt by replaying the command journal
//! through a fresh engine.

mod common;

use std::time::{Duration, Instant};

use common::*;
use engine::{Side, SymbolId, SymbolSpec};
use exchange::md_binary::{BinaryFeedClient, FeedNote};
use marketdata::recovery::{Reply, Request, Source, RETRANSMIT_COUNT_MAX};
use marketdata::{Channel, Level};

/// Level3: (side, price ticks, [(order id, displayed qty)] in priority), best first, bids first.
type L3 = Vec<(Side, i64, Vec<(u64, u64)>)>;

/// The engine's book of symbol 0 from the command journal replayed through a fresh engine:
/// level3, and level2 as (side, price ticks, qty, count).
fn engine_book(v: &Venue, symbols: &[SymbolSpec]) -> (L3, Vec<Level>) {
    let engine = replayed_engine(v, symbols);
    let book = engine.book_snapshot(SymbolId(0));
    let (mut l3, mut l2) = (Vec::new(), Vec::new());
    for (side, levels) in [(Side::Buy, &book.bids), (Side::Sell, &book.asks)] {
        for level in levels {
            let orders: Vec<(u64, u64)> =
                level.orders.iter().map(|o| (o.order_id.0, o.visible_qty)).collect();
            let qty = orders.iter().map(|o| o.1).sum();
            l2.push(Level { side, price: level.price, qty, count: orders.len() as u32 });
            l3.push((side, level.price.0, orders));
        }
    }
    (l3, l2)
}

/// The subscriber's book of symbol 0 in the same shapes.
fn client_book(client: &BinaryFeedClient) -> (L3, Vec<Level>) {
    let book = client.book(SymbolId(0)).expect("subscribed to symbol 0");
    let orders = book.order_book().expect("the orders channel");
    let mut l3: L3 = Vec::new();
    for side in [Side::Buy, Side::Sell] {
        for o in orders.orders(side) {
            match l3.last_mut() {
                Some((s, p, ids)) if *s == side && *p == o.price.0 => ids.push((o.order_id.0, o.qty)),
                _ => l3.push((side, o.price.0, vec![(o.order_id.0, o.qty)])),
            }
        }
    }
    let l2 = [Side::Buy, Side::Sell].into_iter().flat_map(|side| book.levels(side)).collect();
    (l3, l2)
}

fn events_last(v: &Venue) -> u64 {
    let mut reader = journal::JournalReader::open_from_start(v.dir.join("journal/events")).unwrap();
    let mut last = 0;
    while let Some(r) = reader.next_record().unwrap() {
        last = r.seq;
    }
    last
}

/// Waits until the market-data thread has published every journaled event; returns the orders
/// channel's symbol seq of symbol 0.
fn settled(v: &Venue) -> u64 {
    let md = v.server().marketdata.as_ref().expect("market data runs");
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(md.failure().is_none(), "{:?}", md.failure());
        let last = events_last(v);
        if last == md.applied_seq() {
            std::thread::sleep(Duration::from_millis(50));
            if events_last(v) == last && md.applied_seq() == last {
                break;
            }
        }
        assert!(Instant::now() < deadline, "market data did not catch up");
        std::thread::sleep(Duration::from_millis(20));
    }
    md.feed().with_publisher(|p| p.market_data().symbol_seq(Channel::Orders, SymbolId(0)))
}

async fn flow(alice: &mut fixclient::FixClient, bob: &mut fixclient::FixClient, round: u64) {
    for i in 0..12u64 {
        let off = (i * 7 + round * 3) % 9;
        limit(alice, &format!("a{round}-{i}"), Side::Buy, 1 + i % 4, &format!("100.{:02}", 10 + off)).await;
        limit(bob, &format!("b{round}-{i}"), Side::Sell, 2 + i % 3, &format!("100.{:02}", 14 + off)).await;
        if i % 5 == 4 {
            market(bob, &format!("m{round}-{i}"), Side::Sell, 3).await;
        }
    }
}

/// Reads `c`'s messages until one reports on the order `id`.
async fn acked(c: &mut fixclient::FixClient, id: &str) {
    while next(c).await.get(11).as_deref() != Some(id) {}
}

/// Lets the client read what arrives for `for_ms`.
async fn pump(client: &mut BinaryFeedClient, for_ms: u64, notes: &mut Vec<FeedNote>) {
    let until = tokio::time::Instant::now() + Duration::from_millis(for_ms);
    while let Ok(r) = tokio::time::timeout_at(until, client.step()).await {
        r.expect("the feed goes on");
        notes.extend(client.take_notes());
    }
}

async fn connect(v: &Venue, symbols: &[&str]) -> BinaryFeedClient {
    let info = &v.server().info;
    let symbols: Vec<String> = symbols.iter().map(|s| s.to_string()).collect();
    BinaryFeedClient::connect(info.md_addr.expect("md endpoint"), &info.cert, "localhost", &symbols)
        .await
        .expect("subscribes")
}

/// Orders through the gateway while a subscriber of two symbols reads the binary feed; once
/// the flow stops, the subscriber's L3 and L2 equal the engine's at the same sequence.
fn books_equal_the_engines(v: &Venue) -> exchange::md_binary::BinaryFeedStats {
    let specs = exchange::serve::symbol_specs(&v.serve_config.symbols).unwrap();
    rt().block_on(async {
        let mut client = connect(v, &["BTC-USD", "ETH-USD"]).await;
        let listed: Vec<(u32, &str)> =
            client.symbols().iter().map(|l| (l.symbol.0, l.name.as_str())).collect();
        assert_eq!(listed, [(0, "BTC-USD"), (1, "ETH-USD")]);
        let mut alice = v.login("alice").await;
        let mut bob = v.login("bob").await;
        let mut notes = Vec::new();
        for round in 0..15 {
            flow(&mut alice, &mut bob, round).await;
            pump(&mut client, 30, &mut notes).await;
        }
        // Every order answered before `settled` takes the journal's last seq as the end.
        acked(&mut alice, "a14-11").await;
        acked(&mut bob, "b14-11").await;
        let orders_seq = tokio::task::block_in_place(|| settled(v));
        let deadline = Instant::now() + 3 * WAIT;
        while client.resequencer().symbol_seq(SymbolId(0)) != Some(orders_seq)
            || client.resequencer().outstanding().is_some()
        {
            assert!(
                Instant::now() < deadline,
                "the subscriber never caught up: at {:?} of {orders_seq}; {:?}; notes {notes:?}",
                client.resequencer().symbol_seq(SymbolId(0)),
                client.stats
            );
            pump(&mut client, 50, &mut notes).await;
        }
        let (l3, l2) = engine_book(v, &specs);
        assert!(!l3.is_empty(), "the flow leaves orders resting");
        assert_eq!(client_book(&client), (l3, l2), "L3 and L2 at symbol seq {orders_seq}");
        assert_eq!(client.stats.problems, 0, "{notes:?}");
        assert!(client.book(SymbolId(0)).unwrap().checksums_verified() > 0);
        client.stats
    })
}

#[test]
fn binary_books_equal_the_engines_book_and_every_dropped_datagram_is_healed() {
    let v = venue_with("md-binary", |c| c.marketdata.drop_datagram_every = 4);
    let s = books_equal_the_engines(&v);
    assert!(s.gaps > 0, "every 4th datagram was dropped, yet no gap was seen: {s:?}");
    assert!(s.recovered > 0 && s.retransmits_log > 0, "{s:?}");
    let md = v.server().md_quic.as_ref().unwrap();
    assert!(md.stats.datagrams_dropped.load(std::sync::atomic::Ordering::Relaxed) > 0);
}

#[test]
fn a_subscriber_overrun_by_a_burst_is_conflated_and_its_book_stays_exact() {
    let v = venue_with("md-binary-conflate", |c| c.marketdata.queue_len_max = 8);
    let s = books_equal_the_engines(&v);
    let conflations =
        v.server().marketdata.as_ref().unwrap().feed().with_publisher(|p| p.stats().conflations);
    assert!(conflations > 0 && s.snapshots > 2, "a log of 8 messages never overrun? {s:?}");
}

#[test]
fn a_slow_subscriber_under_disconnect_is_cut_off_with_the_reason_and_order_entry_goes_on() {
    let v = venue_with("md-binary-cut", |c| {
        c.marketdata.queue_len_max = 8;
        c.marketdata.slow_policy = exchange::marketdata_run::SlowPolicySetting::Disconnect;
    });
    rt().block_on(async {
        let mut client = connect(&v, &["BTC-USD"]).await;
        let mut alice = v.login("alice").await;
        let mut bob = v.login("bob").await;
        let mut notes = Vec::new();
        let mut ended = None;
        for round in 0..20 {
            flow(&mut alice, &mut bob, round).await;
            let until = tokio::time::Instant::now() + Duration::from_millis(50);
            while let Ok(r) = tokio::time::timeout_at(until, client.step()).await {
                notes.extend(client.take_notes());
                if let Err(e) = r {
                    ended = Some(e.to_string());
                    break;
                }
            }
            if ended.is_some() {
                break;
            }
        }
        let ended = ended.expect("a log of 8 messages was never overrun");
        let reason = "disconnected: subscriber fell 8 messages behind";
        assert!(notes.contains(&FeedNote::Refused(reason.into())), "{notes:?}; ended with {ended}");
        // Order entry goes on, and a new subscriber is served.
        limit(&mut alice, "after-cut", Side::Buy, 1, "99.00").await;
        loop {
            let m = next(&mut alice).await;
            if m.get(11).as_deref() == Some("after-cut") && m.get(150).as_deref() == Some("0") {
                break;
            }
        }
        let again = connect(&v, &["BTC-USD"]).await;
        assert_eq!(again.symbols().len(), 1);
        let md = v.server().md_quic.as_ref().unwrap();
        assert!(md.stats.disconnected.load(std::sync::atomic::Ordering::Relaxed) >= 1);
    });
}

#[test]
fn bad_requests_get_a_reason_and_the_connection_keeps_serving_old_ranges_come_from_the_journal() {
    // A short log: older ranges must be served from the event journal.
    let v = venue_with("md-binary-bad", |c| c.marketdata.queue_len_max = 64);
    rt().block_on(async {
        let info = &v.server().info;
        let addr = info.md_addr.unwrap();
        let refused = BinaryFeedClient::connect(addr, &info.cert, "localhost", &["DOGE-USD".into()]).await;
        let e = refused.err().expect("an unknown symbol is refused").to_string();
        assert!(e.contains("unknown symbol \"DOGE-USD\""), "{e}");

        let mut client = connect(&v, &["BTC-USD"]).await;
        let mut alice = v.login("alice").await;
        let mut bob = v.login("bob").await;
        for round in 0..4 {
            flow(&mut alice, &mut bob, round).await;
        }
        // `flow` does not wait for reports: wait for each session's last order to be answered,
        // so `settled` cannot see a quiet journal while orders are still on their way.
        acked(&mut alice, "a3-11").await;
        acked(&mut bob, "b3-11").await;
        tokio::task::block_in_place(|| settled(&v));
        let last = v
            .server()
            .marketdata
            .as_ref()
            .unwrap()
            .feed()
            .with_publisher(|p| p.market_data().channel_seq(Channel::Orders));
        assert!(last > 200, "enough messages to overrun a log of 64: {last}");

        // Each bad request is answered with its reason, on the same connection.
        let too_many = RETRANSMIT_COUNT_MAX + 1;
        let cases: Vec<(Vec<u8>, String)> = vec![
            (
                encode(&Request::Retransmit { from: 1, count: too_many }),
                format!("retransmit count {too_many} outside"),
            ),
            (
                encode(&Request::Retransmit { from: last, count: 5 }),
                format!("reaches past the last published seq {last}"),
            ),
            (encode(&Request::Retransmit { from: 0, count: 1 }), "reaches past".into()),
            (encode(&Request::Snapshot(SymbolId(2))), "symbol 2 is not subscribed".into()),
            (
                encode(&Request::Subscribe(vec!["BTC-USD".into(), "NOPE".into()])),
                "unknown symbol \"NOPE\"".into(),
            ),
            (vec![5, 0, b'R', 1, 2, 3, 4], "malformed request: retransmit: truncated".into()),
            (vec![1, 0, b'?'], "unknown request type 0x3f".into()),
            (vec![0, 0], "malformed request: empty frame".into()),
        ];
        for (bytes, want) in cases {
            client.send_raw(&bytes).await.unwrap();
            let reply = next_non_message(&mut client).await;
            match reply {
                Reply::Error { reason, .. } => {
                    assert!(reason.contains(&want), "{reason:?} should say {want:?}")
                }
                other => panic!("{other:?} instead of a refusal saying {want:?}"),
            }
        }

        // Still serving: an old range (the log holds only the last 64) from the journal, a recent
        // one from the log, and a snapshot.
        client.request(&Request::Retransmit { from: 1, count: 40 }).await.unwrap();
        let (old, complete) = retransmitted(&mut client).await;
        assert_eq!(
            complete,
            Reply::Complete { from: 1, count: 40, sent: old.len() as u32, source: Source::Journal }
        );
        assert!(
            !old.is_empty()
                && old.iter().all(|m| m.header.symbol == Some(SymbolId(0)) && (1..=40).contains(&m.header.channel_seq))
        );
        assert_eq!(old[0].header.symbol_seq, 1, "the first message of the symbol, numbered as it was live");
        // A range reaching back past the log comes from the journal; its recent end, asked again,
        // comes from the log: the two must be the same messages (the journal replay numbers
        // every message exactly as the live feed did).
        client.request(&Request::Retransmit { from: last - 99, count: 100 }).await.unwrap();
        let (replayed, complete) = retransmitted(&mut client).await;
        assert!(matches!(complete, Reply::Complete { source: Source::Journal, .. }), "{complete:?}");
        client.request(&Request::Retransmit { from: last - 9, count: 10 }).await.unwrap();
        let (recent, complete) = retransmitted(&mut client).await;
        assert!(matches!(complete, Reply::Complete { source: Source::Log, .. }), "{complete:?}");
        assert!(!recent.is_empty(), "the last 10 orders-channel messages include BTC-USD's");
        let replayed_tail: Vec<_> =
            replayed.into_iter().filter(|m| m.header.channel_seq > last - 10).collect();
        assert_eq!(replayed_tail, recent);
        client.request(&Request::Snapshot(SymbolId(0))).await.unwrap();
        match next_non_message_or_snapshot(&mut client).await {
            Reply::Message(m) => assert!(matches!(m.body, marketdata::Body::SnapshotBegin { .. })),
            other => panic!("{other:?}"),
        }
        let md = v.server().md_quic.as_ref().unwrap();
        assert!(md.stats.refused.load(std::sync::atomic::Ordering::Relaxed) >= 8);
    });
}

fn encode(r: &Request) -> Vec<u8> {
    let mut out = Vec::new();
    r.encode(&mut out);
    out
}

/// The next reply that is not a snapshot part or message (the subscription's own snapshot and
/// any conflation come on the stream too).
async fn next_non_message(client: &mut BinaryFeedClient) -> Reply {
    loop {
        let r = tokio::time::timeout(WAIT, client.next_reply()).await.expect("a reply in time").unwrap();
        if !matches!(r, Reply::Message(_)) {
            return r;
        }
    }
}

/// The next reply that is a snapshot begin, or anything but a message.
async fn next_non_message_or_snapshot(client: &mut BinaryFeedClient) -> Reply {
    loop {
        let r = tokio::time::timeout(WAIT, client.next_reply()).await.expect("a reply in time").unwrap();
        match &r {
            Reply::Message(m) if !matches!(m.body, marketdata::Body::SnapshotBegin { .. }) => {}
            _ => return r,
        }
    }
}

/// Sequenced messages until the retransmission's `C`.
async fn retransmitted(client: &mut BinaryFeedClient) -> (Vec<marketdata::Message>, Reply) {
    let mut got = Vec::new();
    loop {
        let r = tokio::time::timeout(WAIT, client.next_reply()).await.expect("a reply in time").unwrap();
        match r {
            Reply::Message(m) if m.body.is_sequenced() => got.push(m),
            Reply::Message(_) => {}
            other => return (got, other),
        }
    }
}

#[test]
fn exchange_md_feed_binary_prints_gaps_and_recoveries_and_checks_the_book() {
    let v = venue_with("md-binary-cli", |c| c.marketdata.drop_datagram_every = 3);
    let info = &v.server().info;
    let record = v.dir.join("md-binary.txt");
    let mut md = std::process::Command::new(env!("CARGO_BIN_EXE_exchange"))
        .args(["md", "--feed", "binary", "--symbol", "BTC-USD", "--check", "--count", "600", "--md-addr"])
        .arg(info.md_addr.unwrap().to_string())
        .arg("--ca")
        .arg(&info.cert)
        .arg("--record")
        .arg(&record)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    rt().block_on(async {
        let mut alice = v.login("alice").await;
        let mut bob = v.login("bob").await;
        let mut round = 0;
        while md.try_wait().unwrap().is_none() {
            assert!(round < 200, "exchange md did not finish");
            flow(&mut alice, &mut bob, round).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
            round += 1;
        }
    });
    let out = md.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for line in [
        "GAP BTC-USD: expected symbol seq",
        "RECOVERED BTC-USD",
        "RETRANSMIT channel seq",
        "BOOK BTC-USD seq",
    ] {
        assert!(text.contains(line), "{line:?} missing from: {text}");
    }
    let summary = text.lines().find(|l| l.starts_with("check:")).expect("a summary");
    assert!(summary.ends_with(" 0 problem(s)") && !summary.contains(" 0 checksums"), "{summary}");
    let recorded = std::fs::read_to_string(&record).unwrap();
    assert!(recorded.lines().any(|l| l.starts_with("D ")) && recorded.lines().any(|l| l.starts_with("S ")));
}

#[test]
fn on_a_terminal_exchange_md_feed_binary_redraws_the_book_in_place_and_shows_a_halt() {
    // `script` gives the command a pseudo-terminal, as a person's shell would.
    if std::process::Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: no `script` (util-linux) to give exchange md a terminal");
        return;
    }
    let v = venue("md-binary-tty");
    let info = &v.server().info;
    let command = format!(
        "{} md --feed binary --symbol BTC-USD --depth 3 --md-addr {} --ca {}",
        env!("CARGO_BIN_EXE_exchange"),
        info.md_addr.unwrap(),
        info.cert.display()
    );
    let mut md = std::process::Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    rt().block_on(async {
        let mut alice = v.login("alice").await;
        let mut bob = v.login("bob").await;
        let mut ops = v.login("admin").await;
        for round in 0..5 {
            flow(&mut alice, &mut bob, round).await;
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        let m = halt(&mut ops, "halt", Some("BTC-USD")).await;
        assert_eq!(m.get(fix::codec::tag::ADMIN_STATUS).as_deref(), Some("0"), "{}", m.text());
        // Frames are drawn at most every 100 ms, on a message: the next heartbeat (1 s) draws
        // the halted one at the latest.
        tokio::time::sleep(Duration::from_millis(2500)).await;
    });
    let _ = md.kill();
    let out = md.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let frames: Vec<&str> = text.split("\x1b[H\x1b[2J").skip(1).collect();
    assert!(frames.len() >= 3, "frames redrawn in place (home, clear): {text:?}");
    // The kill can cut the frame being written: the last one drawn whole (its trades section
    // is its end) is the one to check.
    let last = frames.iter().rev().find(|f| f.contains("trades:")).expect("a frame drawn whole");
    assert!(last.starts_with("BTC-USD (binary)  seq ") && last.contains("HALTED"), "{last:?}");
    assert!(last.contains("bid qty") && last.contains("trades:") && last.contains("BTC-USD "), "{last:?}");
    assert!(!text.contains("BOOK BTC-USD seq") && !text.contains("TRADE "), "no plain lines: {text:?}");
    assert!(frames.iter().any(|f| !f.contains("HALTED")), "HALTED only once halted");
}

#[test]
fn a_bad_md_address_is_refused_naming_the_field() {
    let mut config = exchange::serve::ServeConfig::default();
    config.network.quic = "127.0.0.1:0".parse().unwrap();
    config.network.tcp = String::new();
    config.network.http = String::new();
    config.network.md = "not-an-address".into();
    let dir = std::env::temp_dir().join(format!("exchange-md-bad-addr-{}", std::process::id()));
    let err = exchange::serve::Server::start(&config, Some(&dir)).expect_err("refused").to_string();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(err.contains("network.md \"not-an-address\""), "{err}");
}

#[test]
fn a_subscriber_past_the_bound_is_refused_with_the_reason_and_the_first_goes_on() {
    let v = venue_with("md-binary-bound", |c| c.marketdata.subscribers_max = 1);
    rt().block_on(async {
        let mut first = connect(&v, &["BTC-USD"]).await;
        let info = &v.server().info;
        let second =
            BinaryFeedClient::connect(info.md_addr.unwrap(), &info.cert, "localhost", &["ETH-USD".into()])
                .await;
        let e = second.err().expect("the second subscription is refused").to_string();
        assert!(e.contains("subscription refused: already 1 subscribers"), "{e}");
        first.request(&Request::Snapshot(SymbolId(0))).await.unwrap();
        match next_non_message_or_snapshot(&mut first).await {
            Reply::Message(m) => assert!(matches!(m.body, marketdata::Body::SnapshotBegin { .. })),
            other => panic!("{other:?}"),
        }
    });
}
