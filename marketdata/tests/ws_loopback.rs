//! The WebSocket feed over loopback, read by a client that shares no code with the server (JSON
//! only): level2 and level3 books rebuilt from snapshot + updates equal the projection, their
//! sequences are gapless, trades, ticker and candles arrive, and bad requests get a reason.
#![cfg(feature = "ws")]

use std::collections::BTreeMap;
use std::time::Duration;

use engine::{
    default_symbols, AccountId, ClOrdId, Command, CommandHeader, CommandKind, Engine, EngineConfig, Event,
    NewOrder, ReplaceOrder, Side, SymbolId, PRICE_UNITS_PER_ONE,
};
use futures_util::{SinkExt, StreamExt};
use marketdata::{ws_router, Channel, Publisher, PublisherConfig, WsFeed};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message as Frame;

const CENT: i64 = PRICE_UNITS_PER_ONE / 100;

/// Events of a deterministic flow on BTC-USD: resting orders, icebergs, crosses, replaces.
fn flow(engine: &mut Engine, from: u64, to: u64) -> Vec<Event> {
    let mut out = Vec::new();
    for seq in from..to {
        let id = ClOrdId::from_str(&format!("o{seq}")).unwrap();
        let side = if seq % 2 == 0 { Side::Buy } else { Side::Sell };
        let ticks = if side == Side::Buy { 10_000 - (seq % 5) as i64 } else { 9_998 + (seq % 6) as i64 };
        let kind = if seq % 7 == 0 && seq > 2 {
            CommandKind::Replace(ReplaceOrder {
                account: AccountId((seq - 2) as u32 % 3),
                symbol: SymbolId(0),
                orig_id: ClOrdId::from_str(&format!("o{}", seq - 2)).unwrap(),
                id,
                price: Some(engine::PriceUnits((ticks - 1) * CENT)),
                qty: 9,
            })
        } else {
            let mut o =
                NewOrder::limit(AccountId(seq as u32 % 3), SymbolId(0), id, side, ticks * CENT, 1 + seq % 6);
            if seq % 5 == 0 {
                o.qty = 12;
                o.display_qty = Some(4);
            }
            CommandKind::New(o)
        };
        engine.process(&Command { header: CommandHeader { seq, ts: seq * 300_000_000 }, kind }, &mut out);
    }
    out
}

fn price_text(ticks: i64) -> String {
    format!("{}.{:02}", ticks / 100, ticks % 100)
}

#[derive(Default)]
struct Client {
    l2: BTreeMap<(String, String), (u64, u64)>,
    l2_seq: Option<u64>,
    /// (side, price) -> order ids in priority; order id -> qty.
    l3_levels: BTreeMap<(String, String), Vec<u64>>,
    l3_qty: BTreeMap<u64, u64>,
    l3_seq: Option<u64>,
    trades: usize,
    tickers: Vec<Value>,
    candles: usize,
    errors: Vec<String>,
    subscribed: usize,
}

impl Client {
    fn l3_remove(&mut self, order_id: u64) {
        self.l3_qty.remove(&order_id);
        for ids in self.l3_levels.values_mut() {
            ids.retain(|&id| id != order_id);
        }
        self.l3_levels.retain(|_, ids| !ids.is_empty());
    }

    fn on(&mut self, m: &Value) {
        let seq = |m: &Value| m["symbol_seq"].as_u64().unwrap();
        let s = |v: &Value| v.as_str().unwrap().to_string();
        let kind = m["type"].as_str().unwrap();
        let channel = m["channel"].as_str().unwrap_or("");
        // level2 and level3 carry every message of their sequence: check it is gapless.
        if kind != "snapshot" && kind != "subscribed" && (channel == "level2" || channel == "level3") {
            let last = if channel == "level2" { &mut self.l2_seq } else { &mut self.l3_seq };
            assert_eq!(Some(seq(m) - 1), *last, "{channel} gap at {m}");
            *last = Some(seq(m));
        }
        match kind {
            "subscribed" => self.subscribed += 1,
            "error" => self.errors.push(s(&m["reason"])),
            "snapshot" if channel == "level2" => {
                self.l2.clear();
                for (side, key) in [("buy", "bids"), ("sell", "asks")] {
                    for e in m[key].as_array().unwrap() {
                        let entry = (e["qty"].as_u64().unwrap(), e["count"].as_u64().unwrap());
                        self.l2.insert((side.into(), s(&e["price"])), entry);
                    }
                }
                self.l2_seq = Some(seq(m));
            }
            "snapshot" if channel == "level3" => {
                for (side, key) in [("buy", "bids"), ("sell", "asks")] {
                    for e in m[key].as_array().unwrap() {
                        let id = e["order_id"].as_u64().unwrap();
                        self.l3_levels.entry((side.into(), s(&e["price"]))).or_default().push(id);
                        self.l3_qty.insert(id, e["qty"].as_u64().unwrap());
                    }
                }
                self.l3_seq = Some(seq(m));
            }
            "l2update" => {
                let key = (s(&m["side"]), s(&m["price"]));
                match m["qty"].as_u64().unwrap() {
                    0 => self.l2.remove(&key),
                    qty => self.l2.insert(key, (qty, m["count"].as_u64().unwrap())),
                };
            }
            "l3update" => {
                let id = m["order_id"].as_u64().unwrap();
                match m["op"].as_str().unwrap() {
                    "add" | "replace" => {
                        self.l3_remove(id);
                        self.l3_levels.entry((s(&m["side"]), s(&m["price"]))).or_default().push(id);
                        self.l3_qty.insert(id, m["qty"].as_u64().unwrap());
                    }
                    "execute" | "reduce" => {
                        let left = self.l3_qty[&id] - m["qty"].as_u64().unwrap();
                        if left == 0 {
                            self.l3_remove(id);
                        } else {
                            self.l3_qty.insert(id, left);
                        }
                    }
                    "delete" => self.l3_remove(id),
                    op => panic!("unknown op {op}"),
                }
            }
            "trade" if channel == "trades" => self.trades += 1,
            "ticker" => self.tickers.push(m.clone()),
            "candle" => self.candles += 1,
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_feed_rebuilds_the_book_and_refuses_bad_requests() {
    let mut engine = Engine::new(EngineConfig::default());
    let feed = WsFeed::new(Publisher::new(PublisherConfig::default()), default_symbols());
    for e in flow(&mut engine, 1, 40) {
        feed.on_event(&e).unwrap();
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let feed_server = feed.clone();
    let server = tokio::spawn(async move { axum::serve(listener, ws_router(feed_server)).await });

    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await.unwrap();
    // Every channel on one connection; level2 and level3 have their own sequences.
    for channel in ["level2", "level3", "trades", "ticker", "candles"] {
        let request = json!({"type": "subscribe", "channel": channel, "symbol": "BTC-USD"});
        ws.send(Frame::text(request.to_string())).await.unwrap();
    }
    ws.send(Frame::text(json!({"type": "subscribe", "channel": "level2", "symbol": "NOPE"}).to_string()))
        .await
        .unwrap();
    ws.send(Frame::text("{not json")).await.unwrap();
    ws.send(Frame::text(json!({"type": "subscribe", "channel": "level2", "symbol": "BTC-USD"}).to_string()))
        .await
        .unwrap();

    let mut client = Client::default();
    let mut fed = false;
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("the feed answers (hang guard, not a timing assertion)")
            .expect("open")
            .unwrap();
        let Frame::Text(text) = frame else { continue };
        let m: Value = serde_json::from_str(text.as_str()).unwrap();
        client.on(&m);
        if !fed
            && client.subscribed == 5
            && client.errors.len() == 3
            && client.l2_seq.is_some()
            && client.l3_seq.is_some()
        {
            fed = true;
            for e in flow(&mut engine, 40, 120) {
                feed.on_event(&e).unwrap();
            }
        }
        if fed {
            let (l2, l3) = feed.with_publisher(|p| {
                let md = p.market_data();
                (md.symbol_seq(Channel::Levels, SymbolId(0)), md.symbol_seq(Channel::Orders, SymbolId(0)))
            });
            if client.l2_seq == Some(l2) && client.l3_seq == Some(l3) {
                break;
            }
        }
    }
    // A fence: the server answers a request only after it has delivered everything drained for
    // every subscription, and no event comes after, so the reply ends the ticker and candles too.
    let fence = json!({"type": "unsubscribe", "channel": "candles", "symbol": "BTC-USD"});
    ws.send(Frame::text(fence.to_string())).await.unwrap();
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(30), ws.next()).await.unwrap().unwrap().unwrap();
        let Frame::Text(text) = frame else { continue };
        let m: Value = serde_json::from_str(text.as_str()).unwrap();
        if m["type"] == "unsubscribed" {
            break;
        }
        client.on(&m);
    }

    feed.with_publisher(|p| {
        let book = p.market_data().projection().book(SymbolId(0)).unwrap();
        let mut want_l2 = BTreeMap::new();
        let mut want_l3: BTreeMap<(String, String), Vec<u64>> = BTreeMap::new();
        for side in [Side::Buy, Side::Sell] {
            for l in book.levels(side) {
                want_l2
                    .insert((side.as_str().to_string(), price_text(l.price.0)), (l.qty, u64::from(l.count)));
            }
            for o in book.orders(side) {
                want_l3
                    .entry((side.as_str().to_string(), price_text(o.price.0)))
                    .or_default()
                    .push(o.order_id.0);
                assert_eq!(client.l3_qty.get(&o.order_id.0), Some(&o.qty), "order {}", o.order_id);
            }
        }
        assert_eq!(client.l2, want_l2);
        assert_eq!(client.l3_levels, want_l3);
        assert_eq!(client.l3_qty.len(), book.len());
        let last = client.tickers.last().expect("tickers");
        let bbo = book.bbo();
        assert_eq!(last["bid"], json!(bbo.bid.map(|(p, _)| price_text(p.0))));
        assert_eq!(last["bid_qty"], json!(bbo.bid.map(|(_, q)| q)));
        assert_eq!(last["ask"], json!(bbo.ask.map(|(p, _)| price_text(p.0))));
        assert_eq!(last["ask_qty"], json!(bbo.ask.map(|(_, q)| q)));
    });
    assert!(client.trades > 0 && client.candles > 0, "trades {} candles {}", client.trades, client.candles);
    assert!(client.errors[0].contains("unknown symbol NOPE"), "{:?}", client.errors);
    assert!(client.errors[1].starts_with("malformed request"), "{:?}", client.errors);
    assert!(client.errors[2].contains("already subscribed"), "{:?}", client.errors);

    ws.close(None).await.unwrap();
    // The server drops the connection's subscriptions once it sees the close.
    for _ in 0..1000 {
        if feed.with_publisher(|p| p.subscribers()) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(feed.with_publisher(|p| p.subscribers()), 0);
    server.abort();
}
