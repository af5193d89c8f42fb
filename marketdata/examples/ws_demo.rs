//! Serves the WebSocket feed on loopback, fed by a deterministic order flow through a real
//! engine, for clients that share no code with this crate (`tests/interop/ws_client.py`).
//!
//! `cargo run -p marketdata --example ws_demo -- 127.0.0.1:9880 2000`: listens, enters 200
//! commands at once, then one command per millisecond until `commands`, then serves until killed.

use std::time::Duration;

use engine::{
    default_symbols, AccountId, CancelOrder, ClOrdId, Command, CommandHeader, CommandKind, Engine,
    EngineConfig, NewOrder, ReplaceOrder, Side, SymbolId, PRICE_UNITS_PER_ONE,
};
use marketdata::{ws_router, Publisher, PublisherConfig, WsFeed};

const CENT: i64 = PRICE_UNITS_PER_ONE / 100;

/// Command `seq` of the flow on BTC-USD: resting orders, icebergs, crosses, replaces, cancels.
fn command(seq: u64) -> Command {
    let id = |n: u64| ClOrdId::from_str(&format!("o{n}")).expect("short");
    let account = (seq % 3) as u32;
    let side = if seq.is_multiple_of(2) { Side::Buy } else { Side::Sell };
    let off = (seq * 7 % 13) as i64;
    let ticks = if side == Side::Buy { 10_003 - off } else { 9_998 + off };
    let kind = match seq % 11 {
        3 if seq > 6 => CommandKind::Cancel(CancelOrder {
            account: AccountId(account),
            symbol: SymbolId(0),
            id: id(seq - 6),
            request_id: None,
        }),
        7 if seq > 6 => CommandKind::Replace(ReplaceOrder {
            account: AccountId(account),
            symbol: SymbolId(0),
            orig_id: id(seq - 6),
            id: id(seq),
            price: Some(engine::PriceUnits((ticks - 1) * CENT)),
            qty: 9,
        }),
        _ => {
            let mut o =
                NewOrder::limit(AccountId(account), SymbolId(0), id(seq), side, ticks * CENT, 1 + seq % 6);
            if seq.is_multiple_of(5) {
                o.qty = 12;
                o.display_qty = Some(4);
            }
            CommandKind::New(o)
        }
    };
    Command { header: CommandHeader { seq, ts: seq * 1_000_000 }, kind }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:9880".into());
    let commands: u64 = args.next().map_or(2_000, |n| n.parse().expect("commands: a number"));
    let feed = WsFeed::new(Publisher::new(PublisherConfig::default()), default_symbols());
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    println!("ws_demo: listening on ws://{}/ws", listener.local_addr().expect("bound"));
    let fed = feed.clone();
    std::thread::spawn(move || {
        let mut engine = Engine::new(EngineConfig::default());
        let mut events = Vec::new();
        for seq in 1..=commands {
            events.clear();
            engine.process(&command(seq), &mut events);
            for e in &events {
                fed.on_event(e).expect("events in order");
            }
            if seq > 200 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    });
    axum::serve(listener, ws_router(feed)).await.expect("serve");
}
