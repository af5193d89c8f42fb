//! Live against replay: what a WebSocket subscriber saw of the `trades`, `candles` and `level2`
//! channels while orders went through the gateway equals what the `marketdata` crate rebuilds
//! afterwards from the event journal alone (the replay path: `journal::JournalReader` over
//! `DATA/journal/events`, each record decoded and fed to a fresh `marketdata::MarketData`).
//! Compared: every trade (time, price, size, aggressor, both order ids), every 1 s OHLCV bar,
//! and every level2 message at the same symbol sequence (a halt and a resume among them), hence
//! the book at each of them.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use engine::{Side, SymbolId, SymbolSpec, PRICE_SCALE};
use marketdata::{BarPeriod, Body, Channel, FeedConfig, MarketData, ProjectionConfig};
use rust_decimal::Decimal;
use serde_json::{json, Value};

/// A level2 message reduced to what both sides can say: (symbol_seq, what).
type Seqd = BTreeMap<u64, String>;
/// A trade: (ts_ns, price, qty, aggressor, maker, taker).
type Trade = (u64, Decimal, u64, String, u64, u64);
/// A bar by its start: (open, high, low, close, volume, trades).
type Bars = BTreeMap<u64, (Decimal, Decimal, Decimal, Decimal, u64, u64)>;

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn dec(v: &Value) -> Decimal {
    v.as_str().unwrap_or_else(|| panic!("not a price: {v}")).parse::<Decimal>().unwrap().normalize()
}

fn side(s: Side) -> String {
    match s {
        Side::Buy => "buy".into(),
        Side::Sell => "sell".into(),
    }
}

/// What the replay rebuilt for symbol 0.
struct Replayed {
    /// Every levels-channel message of symbol 0 by symbol_seq, as the live text would say it.
    levels: Seqd,
    /// Every trade, with the symbol_seq of its message.
    trades: Vec<(u64, Trade)>,
    /// The projection's 1 s bars.
    bars: Bars,
    /// Final level2: (is bid, price) -> (qty, count).
    book: BTreeMap<(bool, Decimal), (u64, u64)>,
}

/// Rebuilds symbol 0's market data from the event journal through a fresh `MarketData` with the
/// feed settings `serve` uses.
fn replay(v: &Venue, spec: &SymbolSpec, symbols: usize) -> Replayed {
    let price = |p: engine::Price| Decimal::new(spec.ticks_to_units(p).get(), PRICE_SCALE).normalize();
    let depth = v.serve_config.marketdata.checksum_depth;
    let mut md = MarketData::new(FeedConfig {
        projection: ProjectionConfig { symbols, ..ProjectionConfig::default() },
        checksum_depth: (depth > 0).then_some(depth),
        ..FeedConfig::default()
    });
    let mut reader = journal::JournalReader::open_from_start(v.dir.join("journal/events")).unwrap();
    let mut out = Vec::new();
    let mut r =
        Replayed { levels: Seqd::new(), trades: Vec::new(), bars: Bars::new(), book: BTreeMap::new() };
    while let Some(record) = reader.next_record().unwrap() {
        let event = engine::Event::decode(record.payload).expect("a journaled event decodes");
        out.clear();
        md.on_event(&event, &mut out).expect("the journal projects");
        for m in
            out.iter().filter(|m| m.header.channel == Channel::Levels && m.header.symbol == Some(SymbolId(0)))
        {
            let seq = m.header.symbol_seq;
            let text = match m.body {
                Body::Level(l) => format!("level {} {} {} {}", side(l.side), price(l.price), l.qty, l.count),
                Body::Trade { price: p, qty, aggressor, maker_order_id, taker_order_id } => {
                    let trade =
                        (m.header.ts_ns, price(p), qty, side(aggressor), maker_order_id.0, taker_order_id.0);
                    r.trades.push((seq, trade.clone()));
                    format!("trade {trade:?}")
                }
                Body::Checksum { depth, crc32 } => format!("checksum {depth} {crc32}"),
                Body::TradingStatus { halted } => format!("status {halted}"),
                _ => continue,
            };
            r.levels.insert(seq, text);
        }
    }
    let projection = md.projection();
    // The tape the projection keeps is the trades its messages carried (a pair check).
    let tape: Vec<_> = projection.tape(SymbolId(0)).map(|t| (t.seq, price(t.price), t.qty)).collect();
    assert_eq!(tape.len(), r.trades.len(), "the tape holds every trade of this short run");
    for bar in projection.bars(SymbolId(0), BarPeriod::OneSecond) {
        r.bars.insert(
            bar.start_ts,
            (price(bar.open), price(bar.high), price(bar.low), price(bar.close), bar.volume, bar.trades),
        );
    }
    let book = projection.book(SymbolId(0)).unwrap();
    for s in [marketdata::Side::Buy, marketdata::Side::Sell] {
        for level in book.levels(s) {
            r.book.insert((s == Side::Buy, price(level.price)), (level.qty, u64::from(level.count)));
        }
    }
    r
}

/// What the WebSocket subscriber saw.
#[derive(Default)]
struct Live {
    /// level2: the snapshot's symbol_seq and book, then every message after it.
    snapshot_seq: Option<u64>,
    levels: Seqd,
    book: BTreeMap<(bool, Decimal), (u64, u64)>,
    /// trades channel.
    trades: Vec<(u64, Trade)>,
    /// candles channel: the newest state of each bar, and the first bar's start seen.
    bars: Bars,
    candles_last_seq: u64,
}

impl Live {
    fn on(&mut self, m: &Value) {
        let seq = || u(&m["symbol_seq"]);
        let trade = || {
            (
                u(&m["ts_ns"]),
                dec(&m["price"]),
                u(&m["qty"]),
                m["aggressor"].as_str().unwrap().to_owned(),
                u(&m["maker_order_id"]),
                u(&m["taker_order_id"]),
            )
        };
        match (m["channel"].as_str().unwrap_or(""), m["type"].as_str().unwrap()) {
            (_, "subscribed") => {}
            (_, "error") => panic!("feed error: {m}"),
            ("level2", "snapshot") => {
                self.snapshot_seq = Some(seq());
                for (key, bid) in [("bids", true), ("asks", false)] {
                    for e in m[key].as_array().unwrap() {
                        self.book.insert((bid, dec(&e["price"])), (u(&e["qty"]), u(&e["count"])));
                    }
                }
            }
            ("level2", kind) => {
                let text = match kind {
                    "l2update" => {
                        let at = (m["side"] == "buy", dec(&m["price"]));
                        match u(&m["qty"]) {
                            0 => drop(self.book.remove(&at)),
                            qty => drop(self.book.insert(at, (qty, u(&m["count"])))),
                        }
                        format!(
                            "level {} {} {} {}",
                            m["side"].as_str().unwrap(),
                            at.1,
                            u(&m["qty"]),
                            u(&m["count"])
                        )
                    }
                    "trade" => format!("trade {:?}", trade()),
                    "checksum" => format!("checksum {} {}", u(&m["depth"]), u(&m["crc32"])),
                    "status" => format!("status {}", m["halted"].as_bool().unwrap()),
                    other => panic!("unexpected level2 message {other}: {m}"),
                };
                self.levels.insert(seq(), text);
            }
            ("trades", "trade") => self.trades.push((seq(), trade())),
            ("trades", "status") => {}
            ("candles", "candle") => {
                self.candles_last_seq = seq();
                let bar = (
                    dec(&m["open"]),
                    dec(&m["high"]),
                    dec(&m["low"]),
                    dec(&m["close"]),
                    u(&m["volume"]),
                    u(&m["trades"]),
                );
                self.bars.insert(u(&m["start_ts_ns"]), bar);
            }
            other => panic!("unexpected message {other:?}: {m}"),
        }
    }
}

async fn flow(alice: &mut fixclient::FixClient, bob: &mut fixclient::FixClient, round: u64) {
    for i in 0..10u64 {
        let off = (i * 5 + round * 3) % 7;
        limit(alice, &format!("a{round}-{i}"), Side::Buy, 1 + i % 3, &format!("100.{:02}", 10 + off)).await;
        limit(bob, &format!("b{round}-{i}"), Side::Sell, 2 + i % 4, &format!("100.{:02}", 13 + off)).await;
        if i % 3 == 2 {
            market(bob, &format!("m{round}-{i}"), Side::Sell, 2).await;
            market(alice, &format!("n{round}-{i}"), Side::Buy, 1).await;
        }
    }
}

/// Waits until the market-data thread has applied every journaled event.
fn caught_up(v: &Venue) {
    let md = v.server().marketdata.as_ref().expect("market data runs");
    let deadline = Instant::now() + WAIT;
    loop {
        let mut reader = journal::JournalReader::open_from_start(v.dir.join("journal/events")).unwrap();
        let mut last = 0;
        while let Some(r) = reader.next_record().unwrap() {
            last = r.seq;
        }
        if last > 0 && md.applied_seq() == last {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "market data did not catch up: journal {last}, applied {}",
            md.applied_seq()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn live_trades_candles_and_level2_equal_a_replay_of_the_event_journal() {
    let v = venue("md-live-replay");
    let specs = exchange::serve::symbol_specs(&v.serve_config.symbols).unwrap();
    let mut live = Live::default();
    rt().block_on(async {
        let mut alice = v.login("alice").await;
        let mut bob = v.login("bob").await;
        // Orders and trades before the subscriptions too: the level2 snapshot carries them, the
        // candles channel's first message is the bar they made.
        flow(&mut alice, &mut bob, 0).await;
        // The feed quiet before subscribing: the three subscriptions then start at the same
        // sequence, the level2 snapshot's, from which every trade must reach the trades channel.
        let _ = drain(&mut alice, Duration::from_millis(200)).await;
        let _ = drain(&mut bob, Duration::from_millis(200)).await;
        caught_up(&v);
        let mut ws = ws_connect(&v).await;
        ws_send(&mut ws, json!({"type": "subscribe", "channel": "level2", "symbol": "BTC-USD"})).await;
        ws_send(&mut ws, json!({"type": "subscribe", "channel": "trades", "symbol": "BTC-USD"})).await;
        ws_send(
            &mut ws,
            json!({"type": "subscribe", "channel": "candles", "symbol": "BTC-USD", "period": "1s"}),
        )
        .await;
        while live.snapshot_seq.is_none() {
            live.on(&ws_next(&mut ws).await);
        }
        let mut ops = v.login("admin").await;
        for round in 1..4 {
            if round == 2 {
                // A halt and a resume between rounds: status messages are compared too.
                for action in ["halt", "resume"] {
                    let m = halt(&mut ops, action, Some("BTC-USD")).await;
                    assert_eq!(m.get(fix::codec::tag::ADMIN_STATUS).as_deref(), Some("0"), "{}", m.text());
                }
            }
            flow(&mut alice, &mut bob, round).await;
            // Each round in a 1 s bar of its own at least: several bars to compare.
            tokio::time::sleep(Duration::from_millis(1050)).await;
        }
        let _ = drain(&mut alice, Duration::from_millis(200)).await;
        let _ = drain(&mut bob, Duration::from_millis(200)).await;
        caught_up(&v);
        let r = replay(&v, &specs[0], specs.len());
        let (levels_last, trade_last) = (*r.levels.keys().last().unwrap(), r.trades.last().unwrap().0);
        // Everything the replay says was published up to its last sequence: read the three
        // channels until each has reached it (a message late past WAIT fails the test).
        while live.levels.keys().last().copied().unwrap_or(0) < levels_last
            || live.trades.last().map_or(0, |t| t.0) < trade_last
            || live.candles_last_seq < trade_last
        {
            live.on(&ws_next(&mut ws).await);
        }
        for c in [alice, bob, ops] {
            c.logout().await.unwrap();
        }
        let after = live.snapshot_seq.unwrap();
        // level2: the same message at every symbol sequence after the snapshot, so the same
        // book at each; and the same book at the end.
        let replayed: Seqd = r.levels.range(after + 1..).map(|(k, v)| (*k, v.clone())).collect();
        assert!(replayed.len() > 40, "a stream worth comparing: {}", replayed.len());
        assert_eq!(live.levels, replayed, "level2 live vs replay");
        let statuses: Vec<_> = live.levels.values().filter(|m| m.starts_with("status")).collect();
        assert_eq!(statuses, ["status true", "status false"], "the halt and the resume");
        assert_eq!(live.book, r.book, "level2 book at symbol_seq {levels_last}");
        // trades: every trade after the subscription, in order, with the same fields.
        let replayed: Vec<_> = r.trades.iter().filter(|t| t.0 > after).cloned().collect();
        assert!(replayed.len() >= 10, "trades worth comparing: {}", replayed.len());
        assert_eq!(live.trades, replayed, "trades live vs replay");
        // candles: each bar the live channel showed, as it last showed it, is the replay's bar;
        // from its first bar on, none is missing.
        let first = *live.bars.keys().next().expect("candles were published");
        let replayed: Bars = r.bars.range(first..).map(|(k, v)| (*k, *v)).collect();
        assert!(replayed.len() >= 3, "bars of several seconds: {replayed:?}");
        assert_eq!(live.bars, replayed, "1 s candles live vs replay");
    });
}
