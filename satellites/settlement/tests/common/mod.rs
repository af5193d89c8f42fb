//! Shared by the integration tests: a venue config and engine events.
#![allow(dead_code)]

use engine::{ClOrdId, Event, EventKind, Price, Side};
use settlement::{Asset, SettlementConfig, SymbolConfig};

/// alice, bob, carol by engine account id.
pub fn accounts() -> Vec<String> {
    ["alice", "bob", "carol"].iter().map(|s| s.to_string()).collect()
}

/// BTC-USD (0), AAPL (1) and ETH-USD (2, no settlement rule) by engine symbol id.
pub fn symbols() -> Vec<String> {
    ["BTC-USD", "AAPL", "ETH-USD"].iter().map(|s| s.to_string()).collect()
}

/// USD (cents), BTC (satoshi), AAPL (shares); BTC-USD: 1 USD tick, 0.01 BTC per quantity unit,
/// maker 1 bps, taker 5 bps, T+1; AAPL: 0.01 tick, 1 share, taker 10 bps, T+2.
pub fn config() -> SettlementConfig {
    let symbol = |name: &str, base: &str, tick: &str, qty_unit: &str, maker, taker, days| SymbolConfig {
        name: name.into(),
        base: base.into(),
        quote: "USD".into(),
        tick: tick.into(),
        qty_unit: qty_unit.into(),
        maker_fee_bps: maker,
        taker_fee_bps: taker,
        settle_days: days,
    };
    SettlementConfig {
        store: Default::default(),
        limits: Default::default(),
        fee_owner: "venue:fees".into(),
        cutoff_utc: "16:00".into(),
        holidays: vec!["2026-12-25".into()],
        assets: vec![
            Asset { name: "USD".into(), scale: 2 },
            Asset { name: "BTC".into(), scale: 8 },
            Asset { name: "AAPL".into(), scale: 0 },
        ],
        symbols: vec![
            symbol("BTC-USD", "BTC", "1", "0.01", 1, 5, 1),
            symbol("AAPL", "AAPL", "0.01", "1", 0, 10, 2),
        ],
    }
}

/// Monday 2026-12-07 10:00 UTC, in ns.
pub const MONDAY_10H_NS: u64 = 1_796_637_600_000_000_000;

/// A trade event.
#[allow(clippy::too_many_arguments)]
pub fn trade(
    seq: u64,
    ts: u64,
    symbol: u32,
    price_ticks: i64,
    qty: u64,
    maker: u32,
    taker: u32,
    aggressor: Side,
) -> Event {
    let id = ClOrdId::from_bytes(b"x").expect("id");
    Event {
        seq,
        command_seq: seq,
        ts,
        kind: EventKind::Trade {
            symbol,
            price: Price(price_ticks),
            qty,
            maker_account: maker,
            maker_id: id,
            maker_order_id: 1,
            maker_leaves_qty: 0,
            taker_account: taker,
            taker_id: id,
            taker_order_id: 2,
            taker_leaves_qty: 0,
            aggressor,
        },
    }
}

/// A non-trade event.
pub fn status(seq: u64, ts: u64) -> Event {
    Event { seq, command_seq: seq, ts, kind: EventKind::TradingStatus { symbol: 0, halted: false } }
}
