//! Shared by the integration tests: a venue config and engine events.
#![allow(dead_code)]

use engine::{AccountId, ClOrdId, Event, EventKind, OrderId, Price, Side, SymbolId};
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
            symbol: SymbolId(symbol),
            price: Price(price_ticks),
            qty,
            maker_account: AccountId(maker),
            maker_id: id,
            maker_order_id: OrderId(1),
            maker_leaves_qty: 0,
            taker_account: AccountId(taker),
            taker_id: id,
            taker_order_id: OrderId(2),
            taker_leaves_qty: 0,
            aggressor,
        },
    }
}

/// A non-trade event.
pub fn status(seq: u64, ts: u64) -> Event {
    Event { seq, command_seq: seq, ts, kind: EventKind::TradingStatus { symbol: SymbolId(0), halted: false } }
}

/// An order accepted.
pub fn accepted(
    seq: u64,
    account: u32,
    symbol: u32,
    order_id: u64,
    side: Side,
    price_ticks: i64,
    qty: u64,
) -> Event {
    let id = ClOrdId::from_bytes(b"x").expect("id");
    let kind = EventKind::Accepted {
        account: AccountId(account),
        id,
        symbol: SymbolId(symbol),
        order_id: OrderId(order_id),
        side,
        price: Price(price_ticks),
        qty,
        tif: engine::Tif::Gtc,
        stop_price: None,
        display_qty: None,
    };
    Event { seq, command_seq: seq, ts: MONDAY_10H_NS, kind }
}

/// An order canceled by its owner.
pub fn canceled(seq: u64, account: u32, symbol: u32, order_id: u64, leaves_qty: u64) -> Event {
    let id = ClOrdId::from_bytes(b"x").expect("id");
    let reason = engine::CancelReason::User;
    let kind = EventKind::Canceled {
        account: AccountId(account),
        id,
        symbol: SymbolId(symbol),
        order_id: OrderId(order_id),
        reason,
        leaves_qty,
    };
    Event { seq, command_seq: seq, ts: MONDAY_10H_NS, kind }
}

/// An order replaced.
pub fn replaced(
    seq: u64,
    account: u32,
    symbol: u32,
    order_id: u64,
    price_ticks: i64,
    leaves_qty: u64,
) -> Event {
    let id = ClOrdId::from_bytes(b"y").expect("id");
    let kind = EventKind::Replaced {
        account: AccountId(account),
        orig_id: ClOrdId::from_bytes(b"x").expect("id"),
        id,
        symbol: SymbolId(symbol),
        order_id: OrderId(order_id),
        price: Price(price_ticks),
        qty: leaves_qty,
        leaves_qty,
    };
    Event { seq, command_seq: seq, ts: MONDAY_10H_NS, kind }
}

/// A trade against specific orders.
#[allow(clippy::too_many_arguments)]
pub fn fill(
    seq: u64,
    price_ticks: i64,
    qty: u64,
    maker: (u32, u64, u64),
    taker: (u32, u64, u64),
    aggressor: Side,
) -> Event {
    let mut e = trade(seq, MONDAY_10H_NS, 0, price_ticks, qty, maker.0, taker.0, aggressor);
    if let EventKind::Trade { maker_order_id, maker_leaves_qty, taker_order_id, taker_leaves_qty, .. } =
        &mut e.kind
    {
        (*maker_order_id, *maker_leaves_qty) = (OrderId(maker.1), maker.2);
        (*taker_order_id, *taker_leaves_qty) = (OrderId(taker.1), taker.2);
    }
    e
}
