//! The events file (JSON Lines) and the book file (JSON), `docs/formats.md`.
//!
//! Field sets and order are the contract: the fields docs/formats.md shows, in that order, and no
//! others, so two runs compare byte for byte and other tools can rely on the shape.

use std::collections::BTreeMap;
use std::io::{self, Write};

use engine::price_text::PriceText;
use engine::{BookSnapshot, Engine, Event, EventKind, Price, SymbolId, SymbolSpec};
use serde::Serialize;

use crate::names::Names;

/// Formats a price in ticks of `spec` as a decimal string with the tick's decimals ("100.50").
pub fn format_price(spec: &SymbolSpec, price: Price) -> String {
    PriceText::ticks(spec, price).to_string()
}

#[derive(Serialize)]
struct Accepted<'a> {
    seq: u64,
    #[serde(rename = "type")]
    kind: &'static str,
    account: &'a str,
    id: &'a str,
    symbol: &'a str,
    order_id: u64,
}

#[derive(Serialize)]
struct Trade<'a> {
    seq: u64,
    #[serde(rename = "type")]
    kind: &'static str,
    symbol: &'a str,
    price: String,
    qty: u64,
    maker_account: &'a str,
    maker_id: &'a str,
    taker_account: &'a str,
    taker_id: &'a str,
    aggressor: &'static str,
}

#[derive(Serialize)]
struct Canceled<'a> {
    seq: u64,
    #[serde(rename = "type")]
    kind: &'static str,
    account: &'a str,
    id: &'a str,
    reason: &'static str,
    leaves_qty: u64,
}

#[derive(Serialize)]
struct Rejected<'a> {
    seq: u64,
    #[serde(rename = "type")]
    kind: &'static str,
    account: &'a str,
    id: &'a str,
    reason: &'static str,
}

#[derive(Serialize)]
struct Replaced<'a> {
    seq: u64,
    #[serde(rename = "type")]
    kind: &'static str,
    account: &'a str,
    orig_id: &'a str,
    id: &'a str,
}

#[derive(Serialize)]
struct Expired<'a> {
    seq: u64,
    #[serde(rename = "type")]
    kind: &'static str,
    account: &'a str,
    id: &'a str,
    leaves_qty: u64,
}

#[derive(Serialize)]
struct Triggered<'a> {
    seq: u64,
    #[serde(rename = "type")]
    kind: &'static str,
    account: &'a str,
    id: &'a str,
}

#[derive(Serialize)]
struct Status<'a> {
    seq: u64,
    #[serde(rename = "type")]
    kind: &'static str,
    symbol: &'a str,
}

/// Writes one event as one JSON line (with the newline).
pub fn write_event<W: Write>(out: &mut W, event: &Event, names: &Names) -> io::Result<()> {
    let seq = event.seq;
    let symbol_name = |id: SymbolId| names.symbol(id).map(|s| s.name.as_str()).unwrap_or("?");
    let acct = |id| names.account_name(id);
    match event.kind {
        EventKind::Accepted { account, id, symbol, order_id, .. } => serde_json::to_writer(
            &mut *out,
            &Accepted {
                seq,
                kind: "accepted",
                account: acct(account),
                id: id.as_str(),
                symbol: symbol_name(symbol),
                order_id: order_id.0,
            },
        ),
        EventKind::Trade {
            symbol,
            price,
            qty,
            maker_account,
            maker_id,
            taker_account,
            taker_id,
            aggressor,
            ..
        } => {
            let spec = names.symbol(symbol).expect("trades happen on listed symbols");
            serde_json::to_writer(
                &mut *out,
                &Trade {
                    seq,
                    kind: "trade",
                    symbol: &spec.name,
                    price: format_price(spec, price),
                    qty,
                    maker_account: acct(maker_account),
                    maker_id: maker_id.as_str(),
                    taker_account: acct(taker_account),
                    taker_id: taker_id.as_str(),
                    aggressor: aggressor.as_str(),
                },
            )
        }
        EventKind::Canceled { account, id, reason, leaves_qty, .. } => serde_json::to_writer(
            &mut *out,
            &Canceled {
                seq,
                kind: "canceled",
                account: acct(account),
                id: id.as_str(),
                reason: reason.as_str(),
                leaves_qty,
            },
        ),
        EventKind::Rejected { account, id, reason, .. } => serde_json::to_writer(
            &mut *out,
            &Rejected {
                seq,
                kind: "rejected",
                account: acct(account),
                id: id.as_str(),
                reason: reason.as_str(),
            },
        ),
        EventKind::Replaced { account, orig_id, id, .. } => serde_json::to_writer(
            &mut *out,
            &Replaced {
                seq,
                kind: "replaced",
                account: acct(account),
                orig_id: orig_id.as_str(),
                id: id.as_str(),
            },
        ),
        EventKind::Expired { account, id, leaves_qty, .. } => serde_json::to_writer(
            &mut *out,
            &Expired { seq, kind: "expired", account: acct(account), id: id.as_str(), leaves_qty },
        ),
        EventKind::Triggered { account, id, .. } => serde_json::to_writer(
            &mut *out,
            &Triggered { seq, kind: "triggered", account: acct(account), id: id.as_str() },
        ),
        EventKind::TradingStatus { symbol, halted } => serde_json::to_writer(
            &mut *out,
            &Status { seq, kind: if halted { "halted" } else { "resumed" }, symbol: symbol_name(symbol) },
        ),
    }
    .map_err(io::Error::other)?;
    out.write_all(b"\n")
}

#[derive(Serialize)]
struct BookOrder<'a> {
    account: &'a str,
    id: String,
    qty: u64,
}

#[derive(Serialize)]
struct BookLevel<'a> {
    price: String,
    orders: Vec<BookOrder<'a>>,
}

#[derive(Serialize)]
struct BookSides<'a> {
    bids: Vec<BookLevel<'a>>,
    asks: Vec<BookLevel<'a>>,
}

/// Writes every listed symbol's book as one JSON object keyed by symbol name (sorted).
pub fn write_books<W: Write>(out: &mut W, engine: &Engine, names: &Names) -> io::Result<()> {
    let mut books = BTreeMap::new();
    for (i, spec) in engine.symbols().enumerate() {
        let snapshot: BookSnapshot = engine.book_snapshot(SymbolId(i as u32));
        let levels = |levels: Vec<engine::LevelSnapshot>| -> Vec<BookLevel<'_>> {
            levels
                .into_iter()
                .map(|level| BookLevel {
                    price: format_price(spec, level.price),
                    orders: level
                        .orders
                        .into_iter()
                        .map(|o| BookOrder {
                            account: names.account_name(o.account),
                            id: o.id.to_string(),
                            qty: o.qty,
                        })
                        .collect(),
                })
                .collect()
        };
        books.insert(
            spec.name.as_str(),
            BookSides { bids: levels(snapshot.bids), asks: levels(snapshot.asks) },
        );
    }
    serde_json::to_writer(&mut *out, &books).map_err(io::Error::other)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::OrderId;
    use engine::{default_symbols, ClOrdId};

    #[test]
    fn events_match_the_design_shapes() {
        let mut names = Names::new(&default_symbols(), 8);
        let alice = names.account_id("alice").unwrap();
        let bob = names.account_id("bob").unwrap();
        let id = |s| ClOrdId::from_str(s).unwrap();
        let line = |kind| {
            let mut v = Vec::new();
            write_event(&mut v, &Event { seq: 2, command_seq: 1, ts: 0, kind }, &names).unwrap();
            String::from_utf8(v).unwrap()
        };
        assert_eq!(
            line(EventKind::Trade {
                symbol: SymbolId(0),
                price: Price(10_050),
                qty: 4,
                maker_account: alice,
                maker_id: id("a1"),
                maker_order_id: OrderId(1),
                maker_leaves_qty: 6,
                taker_account: bob,
                taker_id: id("b1"),
                taker_order_id: OrderId(2),
                taker_leaves_qty: 0,
                aggressor: engine::Side::Sell,
            }),
            "{\"seq\":2,\"type\":\"trade\",\"symbol\":\"BTC-USD\",\"price\":\"100.50\",\"qty\":4,\"maker_account\":\"alice\",\"maker_id\":\"a1\",\"taker_account\":\"bob\",\"taker_id\":\"b1\",\"aggressor\":\"sell\"}\n"
        );
        assert_eq!(
            line(EventKind::Replaced {
                account: alice,
                orig_id: id("a1"),
                id: id("a2"),
                symbol: SymbolId(0),
                order_id: OrderId(1),
                price: Price(1),
                qty: 1,
                leaves_qty: 1
            }),
            "{\"seq\":2,\"type\":\"replaced\",\"account\":\"alice\",\"orig_id\":\"a1\",\"id\":\"a2\"}\n"
        );
    }

    #[test]
    fn prices_print_with_the_tick_decimals() {
        let spec = SymbolSpec::new("X", 1_000_000, 1);
        assert_eq!(format_price(&spec, Price(10_050)), "100.50");
        assert_eq!(format_price(&spec, Price(7)), "0.07");
        assert_eq!(format_price(&SymbolSpec::new("Y", 50_000_000, 1), Price(3)), "1.5");
    }
}
