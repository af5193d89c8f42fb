//! End-to-end tests of market data in `serve`: orders through the FIX gateway, the market-data
//! thread following the event journal, the WebSocket feed on the shared HTTP port read by a
//! JSON-only client. The books the client rebuilds are compared with the engine's own book,
//! rebuilt by replaying the command journal through a fresh engine.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use engine::{Side, SymbolId, SymbolSpec, PRICE_SCALE};
use futures_util::SinkExt;
use marketdata::Channel;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message as Frame;

/// A JSON-only rebuild of level2 and level3 (shares no code with the server), checking gapless
/// `symbol_seq` and every checksum.
#[derive(Default)]
struct Books {
    /// (side, price) -> (qty, count).
    l2: BTreeMap<(String, String), (u64, u64)>,
    l2_seq: Option<u64>,
    /// (side, price) -> order ids in priority; order id -> displayed qty.
    l3_levels: BTreeMap<(String, String), Vec<u64>>,
    l3_qty: BTreeMap<u64, u64>,
    l3_seq: Option<u64>,
    checksums: u64,
    snapshots: u64,
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}")).to_owned()
}

impl Books {
    fn on(&mut self, m: &Value) {
        let channel = s(&m["channel"]);
        let seq = u(&m["symbol_seq"]);
        let slot = if channel == "level2" { &mut self.l2_seq } else { &mut self.l3_seq };
        if m["type"] == "snapshot" {
            // A snapshot replaces the channel's book (the first one, or one after a conflation).
            *slot = Some(seq);
            self.snapshots += 1;
            if channel == "level2" {
                self.l2.clear();
            } else {
                self.l3_levels.clear();
                self.l3_qty.clear();
            }
            for (key, side) in [("bids", "buy"), ("asks", "sell")] {
                for e in m[key].as_array().unwrap() {
                    let at = (side.to_owned(), s(&e["price"]));
                    if channel == "level2" {
                        self.l2.insert(at, (u(&e["qty"]), u(&e["count"])));
                    } else {
                        let id = u(&e["order_id"]);
                        self.l3_levels.entry(at).or_default().push(id);
                        self.l3_qty.insert(id, u(&e["qty"]));
                    }
                }
            }
            return;
        }
        let last = slot.expect("an update after the snapshot");
        assert_eq!(seq, last + 1, "{channel}: gapless symbol_seq: {m}");
        *slot = Some(seq);
        match m["type"].as_str().unwrap() {
            "l2update" => {
                let at = (s(&m["side"]), s(&m["price"]));
                match u(&m["qty"]) {
                    0 => assert!(self.l2.remove(&at).is_some(), "removed level existed: {m}"),
                    qty => {
                        self.l2.insert(at, (qty, u(&m["count"])));
                    }
                }
            }
            "l3update" => {
                let id = u(&m["order_id"]);
                match m["op"].as_str().unwrap() {
                    "add" | "replace" => {
                        self.remove(id);
                        self.l3_levels.entry((s(&m["side"]), s(&m["price"]))).or_default().push(id);
                        self.l3_qty.insert(id, u(&m["qty"]));
                    }
                    "execute" | "reduce" => {
                        let qty = self.l3_qty.get_mut(&id).expect("known order");
                        *qty -= u(&m["qty"]);
                        if *qty == 0 {
                            self.remove(id);
                        }
                    }
                    "delete" => assert!(self.remove(id), "deleted order existed: {m}"),
                    op => panic!("unknown op {op}"),
                }
            }
            "checksum" => {
                let depth = u(&m["depth"]) as usize;
                assert_eq!(self.crc32(&channel, depth), u(&m["crc32"]) as u32, "{channel} checksum at {seq}");
                self.checksums += 1;
            }
            _ => {}
        }
    }

    fn remove(&mut self, id: u64) -> bool {
        let Some(at) = self.l3_levels.iter().find(|(_, ids)| ids.contains(&id)).map(|(k, _)| k.clone())
        else {
            return false;
        };
        let ids = self.l3_levels.get_mut(&at).unwrap();
        ids.retain(|&o| o != id);
        if ids.is_empty() {
            self.l3_levels.remove(&at);
        }
        self.l3_qty.remove(&id);
        true
    }

    /// Levels of one side, best first, as (price, qty) from level2 or from level3's orders.
    fn levels(&self, channel: &str, side: &str) -> Vec<(Decimal, u64)> {
        let mut out: Vec<(Decimal, u64)> = if channel == "level2" {
            self.l2
                .iter()
                .filter(|((sd, _), _)| sd == side)
                .map(|((_, p), (q, _))| (p.parse().unwrap(), *q))
                .collect()
        } else {
            self.l3_levels
                .iter()
                .filter(|((sd, _), _)| sd == side)
                .map(|((_, p), ids)| (p.parse().unwrap(), ids.iter().map(|id| self.l3_qty[id]).sum()))
                .collect()
        };
        out.sort_by_key(|(p, _)| *p);
        if side == "buy" {
            out.reverse();
        }
        out
    }

    fn crc32(&self, channel: &str, depth: usize) -> u32 {
        // The checksum text uses price ticks; every price here has the tick 0.01.
        let ticks = |p: Decimal| (p * Decimal::from(100)).trunc().to_string();
        let mut text = String::from("A");
        for (p, q) in self.levels(channel, "sell").into_iter().take(depth) {
            text += &format!("{}:{q};", ticks(p));
        }
        text += "B";
        for (p, q) in self.levels(channel, "buy").into_iter().take(depth) {
            text += &format!("{}:{q};", ticks(p));
        }
        crc32fast::hash(text.as_bytes())
    }

    /// Level3 as (side, price, [(order id, qty)]) in priority order, best level first.
    fn l3(&self) -> L3 {
        let mut out = Vec::new();
        for side in ["buy", "sell"] {
            let mut levels: Vec<_> = self
                .l3_levels
                .iter()
                .filter(|((sd, _), _)| sd == side)
                .map(|((sd, p), ids)| {
                    (
                        sd.clone(),
                        p.parse::<Decimal>().unwrap(),
                        ids.iter().map(|id| (*id, self.l3_qty[id])).collect(),
                    )
                })
                .collect::<L3>();
            levels.sort_by_key(|l| l.1);
            if side == "buy" {
                levels.reverse();
            }
            out.extend(levels);
        }
        out
    }

    /// Level2 as (side, price, qty, count), best level first.
    fn l2(&self) -> L2 {
        let mut out = Vec::new();
        for side in ["buy", "sell"] {
            let mut levels: Vec<_> = self
                .l2
                .iter()
                .filter(|((sd, _), _)| sd == side)
                .map(|((sd, p), (q, c))| (sd.clone(), p.parse::<Decimal>().unwrap(), *q, *c))
                .collect::<Vec<_>>();
            levels.sort_by_key(|l| l.1);
            if side == "buy" {
                levels.reverse();
            }
            out.extend(levels);
        }
        out
    }
}

/// Level3: (side, price, [(order id, displayed qty)] in priority), best level first, bids then asks.
type L3 = Vec<(String, Decimal, Vec<(u64, u64)>)>;
/// Level2: (side, price, qty, order count), best level first, bids then asks.
type L2 = Vec<(String, Decimal, u64, u64)>;

/// The engine's book of symbol 0, from the command journal replayed through a fresh engine:
/// level3 and level2 in the shapes [`Books`] gives.
fn engine_book(v: &Venue, symbols: &[SymbolSpec]) -> (L3, L2) {
    let engine = replayed_engine(v, symbols);
    let spec = &symbols[0];
    let price = |p| {
        Decimal::new(spec.ticks_to_units(p).get(), PRICE_SCALE).round_dp(spec.price_decimals()).normalize()
    };
    let book = engine.book_snapshot(SymbolId(0));
    let (mut l3, mut l2) = (Vec::new(), Vec::new());
    for (side, levels) in [("buy", &book.bids), ("sell", &book.asks)] {
        for level in levels {
            let orders: Vec<(u64, u64)> =
                level.orders.iter().map(|o| (o.order_id.0, o.visible_qty)).collect();
            let qty = orders.iter().map(|o| o.1).sum();
            l2.push((side.to_owned(), price(level.price), qty, orders.len() as u64));
            l3.push((side.to_owned(), price(level.price), orders));
        }
    }
    (l3, l2)
}

fn normalized(l3: L3, l2: L2) -> (L3, L2) {
    (
        l3.into_iter().map(|(s, p, o)| (s, p.normalize(), o)).collect(),
        l2.into_iter().map(|(s, p, q, c)| (s, p.normalize(), q, c)).collect(),
    )
}

/// The last event seq in the events journal.
fn events_last(v: &Venue) -> u64 {
    let mut reader = journal::JournalReader::open_from_start(v.dir.join("journal/events")).unwrap();
    let mut last = 0;
    while let Some(r) = reader.next_record().unwrap() {
        last = r.seq;
    }
    last
}

/// Waits until the market-data thread has published every journaled event (the order flow has
/// stopped) and returns the feed's symbol sequences of symbol 0 (levels, orders).
fn settled(v: &Venue) -> (u64, u64) {
    let md = v.server().marketdata.as_ref().expect("market data runs");
    let deadline = Instant::now() + WAIT;
    let mut stable_since = Instant::now();
    let mut last = (0, 0);
    loop {
        assert!(md.failure().is_none(), "{:?}", md.failure());
        let now = (events_last(v), md.applied_seq());
        if now != last {
            last = now;
            stable_since = Instant::now();
        } else if now.0 == now.1 && stable_since.elapsed() > Duration::from_millis(300) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "market data did not catch up: journal {}, applied {}",
            now.0,
            now.1
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    md.feed().with_publisher(|p| {
        let m = p.market_data();
        (m.symbol_seq(Channel::Levels, SymbolId(0)), m.symbol_seq(Channel::Orders, SymbolId(0)))
    })
}

/// Orders from two FIX sessions: resting bids and asks at several prices, crosses, a market
/// order; `round` shifts the prices so that rounds overlap.
async fn flow(alice: &mut fixclient::FixClient, bob: &mut fixclient::FixClient, round: u64) {
    for i in 0..12u64 {
        let off = (i * 7 + round * 3) % 9;
        let bid = format!("100.{:02}", 10 + off);
        let ask = format!("100.{:02}", 14 + off);
        limit(alice, &format!("a{round}-{i}"), Side::Buy, 1 + i % 4, &bid).await;
        limit(bob, &format!("b{round}-{i}"), Side::Sell, 2 + i % 3, &ask).await;
        if i % 5 == 4 {
            market(bob, &format!("m{round}-{i}"), Side::Sell, 3).await;
        }
    }
}

/// Once the flow has stopped and the feed has published every event: level2 and level3 as the
/// client rebuilt them from the messages `next` yields.
async fn rebuilt(v: &Venue, next: &mut impl AsyncFnMut() -> Value) -> Books {
    let (levels_seq, orders_seq) = settled(v);
    let mut books = Books::default();
    while books.l2_seq != Some(levels_seq) || books.l3_seq != Some(orders_seq) {
        let m = next().await;
        match m["type"].as_str().unwrap() {
            "subscribed" => {}
            "error" => panic!("feed error: {m}"),
            _ => books.on(&m),
        }
    }
    books
}

#[test]
fn ws_books_equal_the_engines_book_with_orders_through_the_gateway() {
    books_equal_the_engines_book(venue("md-ws-book"));
}

/// The same with the event journal derived off the engine thread (`journal.events =
/// "derived"`): the feed follows what the follower engine wrote, and its books are the engine's.
#[test]
fn ws_books_equal_the_engines_book_with_derived_events() {
    books_equal_the_engines_book(venue_with("md-ws-derived", |c| {
        c.journal.events = exchange::serve::EventsSetting::Derived;
    }));
}

fn books_equal_the_engines_book(v: Venue) {
    let specs = exchange::serve::symbol_specs(&v.serve_config.symbols).unwrap();
    rt().block_on(async {
        let mut alice = v.login("alice").await;
        let mut bob = v.login("bob").await;
        // Orders before the subscription (the snapshot carries them) and after (the updates).
        flow(&mut alice, &mut bob, 0).await;
        let mut ws = ws_connect(&v).await;
        for channel in ["level2", "level3"] {
            ws_send(&mut ws, json!({"type": "subscribe", "channel": channel, "symbol": "BTC-USD"})).await;
        }
        // Both snapshots before more orders: otherwise, on a loaded machine, every order can
        // land before the subscriptions do and only snapshots (no update, no checksum) remain.
        let mut early = Vec::new();
        while early.iter().filter(|m: &&Value| m["type"] == "snapshot").count() < 2 {
            early.push(ws_next(&mut ws).await);
        }
        flow(&mut alice, &mut bob, 1).await;
        flow(&mut alice, &mut bob, 2).await;
        let _ = drain(&mut alice, Duration::from_millis(300)).await;
        let _ = drain(&mut bob, Duration::from_millis(300)).await;
        let mut early = early.into_iter();
        let mut next = async || match early.next() {
            Some(m) => m,
            None => ws_next(&mut ws).await,
        };
        let books = rebuilt(&v, &mut next).await;
        assert!(books.checksums > 10, "checksums verified: {}", books.checksums);
        let (l3, l2) = engine_book(&v, &specs);
        assert!(l3.len() >= 4, "a book worth comparing: {l3:?}");
        assert_eq!(normalized(books.l3(), books.l2()), normalized(l3, l2));
        alice.logout().await.unwrap();
        bob.logout().await.unwrap();
    });
}

#[test]
fn bad_subscriptions_get_a_reject_naming_the_reason() {
    // Enough symbols that five channels each exceed the subscriptions allowed per connection.
    let v = venue_with("md-ws-bad", |c| {
        for i in 0..5 {
            c.symbols.push(exchange::serve::SymbolEntry {
                name: format!("SYM{i}"),
                tick: "0.01".into(),
                lot: 1,
                reference_price: None,
            });
        }
    });
    rt().block_on(async {
        let mut ws = ws_connect(&v).await;
        let mut reason = async |request: &str| {
            ws.send(Frame::Text(request.to_owned().into())).await.unwrap();
            let m = ws_next(&mut ws).await;
            assert_eq!(m["type"], "error", "{m}");
            s(&m["reason"])
        };
        let r = reason(r#"{"type":"subscribe","channel":"level2","symbol":"NO-SUCH"}"#).await;
        assert!(r.contains("unknown symbol NO-SUCH"), "{r}");
        let r = reason(r#"{"type":"subscribe","channel":"level2""#).await;
        assert!(r.contains("malformed request"), "{r}");
        let r = reason(r#"{"type":"subscribe","channel":"level9","symbol":"BTC-USD"}"#).await;
        assert!(r.contains("malformed request"), "{r}");
        let r = reason(r#"{"type":"subscribe","channel":"level2","symbol":"BTC-USD","period":"1s"}"#).await;
        assert!(r.contains("candles channel only"), "{r}");
        let mut subscribed = 0;
        'all: for symbol in v.serve_config.symbols.iter().map(|s| s.name.clone()).collect::<Vec<_>>() {
            for channel in ["level2", "level3", "trades", "ticker", "candles"] {
                let request = json!({"type": "subscribe", "channel": channel, "symbol": symbol});
                ws.send(Frame::Text(request.to_string().into())).await.unwrap();
                // Snapshots and other feed messages may come before the answer.
                let answer = loop {
                    let m = ws_next(&mut ws).await;
                    if m["type"] == "subscribed" || m["type"] == "error" {
                        break m;
                    }
                };
                if answer["type"] == "error" {
                    let r = s(&answer["reason"]);
                    assert!(r.contains("at most 32 subscriptions"), "{r}");
                    assert_eq!(subscribed, marketdata::WS_SUBSCRIPTIONS_MAX);
                    break 'all;
                }
                subscribed += 1;
            }
        }
        assert_eq!(subscribed, marketdata::WS_SUBSCRIPTIONS_MAX, "the bound was reached and refused");
    });
}

/// Reads reports until the one acknowledging `cl_ord_id`.
async fn acked(c: &mut fixclient::FixClient, cl_ord_id: &str) {
    loop {
        let m = next(c).await;
        if m.get(11).as_deref() == Some(cl_ord_id) && m.get(150).as_deref() == Some("0") {
            return;
        }
    }
}

#[test]
fn a_stalled_subscriber_is_conflated_while_another_and_order_entry_go_on() {
    let v = venue_with("md-ws-stall", |c| c.marketdata.queue_len_max = 4096);
    let specs = exchange::serve::symbol_specs(&v.serve_config.symbols).unwrap();
    rt().block_on(async {
        let mut alice = v.login("alice").await;
        let mut bob = v.login("bob").await;
        // The stalled subscriber: a small receive buffer, and it never reads.
        let addr = v.server().info.http_addr.unwrap();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(2048).unwrap();
        let stream = socket.connect(addr).await.unwrap();
        let (mut stalled, _) =
            tokio_tungstenite::client_async(format!("ws://{addr}/ws"), stream).await.unwrap();
        for channel in ["level2", "level3", "trades"] {
            let subscribe = json!({"type": "subscribe", "channel": channel, "symbol": "BTC-USD"});
            stalled.send(Frame::Text(subscribe.to_string().into())).await.unwrap();
        }
        // The healthy subscriber reads everything as it comes, on a task of its own.
        let mut ws = ws_connect(&v).await;
        for channel in ["level2", "level3"] {
            ws_send(&mut ws, json!({"type": "subscribe", "channel": channel, "symbol": "BTC-USD"})).await;
        }
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        // Snapshots the healthy subscriber received: each beyond its two subscriptions' is a
        // conflation of its own.
        let healthy_snapshots = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        // The level3 symbol_seq the healthy subscriber has reached: the flow waits for it, so
        // that it is never a whole queue behind (in a debug build it renders slowly).
        let healthy_seq = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (counted, reached) = (healthy_snapshots.clone(), healthy_seq.clone());
        let reader = tokio::spawn(async move {
            loop {
                let m = ws_next(&mut ws).await;
                if m["type"] == "snapshot" {
                    counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                if m["channel"] == "level3" {
                    if let Some(seq) = m["symbol_seq"].as_u64() {
                        reached.store(seq, std::sync::atomic::Ordering::Relaxed);
                    }
                }
                if tx.send(m).is_err() {
                    break;
                }
            }
        });
        let md = v.server().marketdata.as_ref().unwrap();
        // Conflations that were not the healthy subscriber's: the stalled one's.
        let stalled_conflations = || {
            let all = md.feed().with_publisher(|p| p.stats().conflations);
            let healthy = healthy_snapshots.load(std::sync::atomic::Ordering::Relaxed).saturating_sub(2);
            all.saturating_sub(healthy)
        };
        let mut round = 0;
        while stalled_conflations() == 0 {
            assert!(round < 1000, "no conflation of the stalled subscriber after {round} rounds of orders");
            flow(&mut alice, &mut bob, round).await;
            // Order entry goes on: each round's last orders are acknowledged.
            acked(&mut alice, &format!("a{round}-11")).await;
            acked(&mut bob, &format!("b{round}-11")).await;
            round += 1;
            let deadline = Instant::now() + WAIT;
            let published =
                md.feed().with_publisher(|p| p.market_data().symbol_seq(Channel::Orders, SymbolId(0)));
            while healthy_seq.load(std::sync::atomic::Ordering::Relaxed) < published {
                assert!(Instant::now() < deadline, "the healthy subscriber stopped receiving");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        flow(&mut alice, &mut bob, round).await;
        let _ = drain(&mut alice, Duration::from_millis(300)).await;
        let _ = drain(&mut bob, Duration::from_millis(300)).await;
        let mut next =
            async || tokio::time::timeout(WAIT, rx.recv()).await.expect("in time").expect("reader alive");
        let books = rebuilt(&v, &mut next).await;
        let (l3, l2) = engine_book(&v, &specs);
        assert_eq!(normalized(books.l3(), books.l2()), normalized(l3, l2), "the healthy subscriber kept up");
        // Each conflation of the healthy subscriber gave it one snapshot beyond the two of its
        // subscriptions: the conflations counted beyond those were the stalled one's.
        let conflations = md.feed().with_publisher(|p| p.stats().conflations);
        assert!(
            conflations > books.snapshots - 2,
            "{conflations} conflations, {} snapshots",
            books.snapshots
        );
        eprintln!("the stalled subscriber was conflated after {round} rounds of orders");
        reader.abort();
        drop(stalled);
    });
}

#[test]
fn exchange_md_check_verifies_the_live_feed_and_records_it() {
    let v = venue("md-cli");
    let addr = v.server().info.http_addr.unwrap().to_string();
    let record = v.dir.join("md-record.jsonl");
    let mut md = std::process::Command::new(env!("CARGO_BIN_EXE_exchange"))
        .args(["md", "--symbol", "BTC-USD", "--addr", &addr, "--check", "--count", "400", "--record"])
        .arg(&record)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    rt().block_on(async {
        let mut alice = v.login("alice").await;
        let mut bob = v.login("bob").await;
        // Orders until `md` has seen its 400 messages and stopped.
        let mut round = 0;
        while md.try_wait().unwrap().is_none() {
            assert!(round < 200, "exchange md did not finish");
            flow(&mut alice, &mut bob, round).await;
            acked(&mut alice, &format!("a{round}-11")).await;
            acked(&mut bob, &format!("b{round}-11")).await;
            round += 1;
        }
    });
    let out = md.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("TRADE BTC-USD") && text.contains("BOOK seq"),
        "plain lines when not a terminal: {text}"
    );
    let summary = text.lines().find(|l| l.starts_with("check:")).expect("a summary");
    assert!(summary.ends_with(" 0 problem(s)") && !summary.contains(" 0 checksums"), "{summary}");
    let recorded = std::fs::read_to_string(&record).unwrap();
    assert!(recorded.lines().count() >= 400, "every message recorded");
    assert!(recorded.lines().all(|l| serde_json::from_str::<Value>(l).is_ok()));

    let unknown = std::process::Command::new(env!("CARGO_BIN_EXE_exchange"))
        .args(["md", "--symbol", "BTC-USD", "--addr", &addr, "--feed", "itch"])
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("--feed itch: unknown feed (ws, fix or binary)")
    );
}

#[test]
fn after_a_restart_the_feed_continues_with_the_same_numbers_and_book() {
    let mut v = venue("md-restart");
    let specs = exchange::serve::symbol_specs(&v.serve_config.symbols).unwrap();
    rt().block_on(async {
        let mut alice = v.login("alice").await;
        let mut bob = v.login("bob").await;
        flow(&mut alice, &mut bob, 0).await;
        acked(&mut alice, "a0-11").await;
        acked(&mut bob, "b0-11").await;
        alice.logout().await.unwrap();
        bob.logout().await.unwrap();
    });
    let seqs = |v: &Venue| {
        let md = v.server().marketdata.as_ref().unwrap();
        md.feed().with_publisher(|p| {
            let m = p.market_data();
            (m.epoch(), m.channel_seq(Channel::Orders), m.channel_seq(Channel::Levels))
        })
    };
    let before_symbol = settled(&v);
    let before = seqs(&v);
    v.restart();
    // The new thread replays the journal from event 1: the same epoch and numbers.
    assert_eq!(settled(&v), before_symbol);
    assert_eq!(seqs(&v), before);
    rt().block_on(async {
        let mut ws = ws_connect(&v).await;
        for channel in ["level2", "level3"] {
            ws_send(&mut ws, json!({"type": "subscribe", "channel": channel, "symbol": "BTC-USD"})).await;
        }
        let mut next = async || ws_next(&mut ws).await;
        let books = rebuilt(&v, &mut next).await;
        let (l3, l2) = engine_book(&v, &specs);
        assert!(!l3.is_empty());
        assert_eq!(normalized(books.l3(), books.l2()), normalized(l3, l2));
    });
}
