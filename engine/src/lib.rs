//! Sans-IO matching engine: order books, price-time matching, commands in and events out, their
//! binary [`codec`], and snapshots to and from bytes.
//!
//! The matching core ([`Engine`]) does no I/O, reads no clock and allocates nothing per command
//! once constructed: every pool is pre-sized from [`EngineConfig`] (checked by
//! [`EngineConfig::validate`]), and a full pool is a `book_full` reject. Time enters as
//! [`CommandHeader::ts`], stamped by whoever drives the engine. The shell around it lives in
//! other crates: `journal` (the write-ahead journal, snapshots on disk, `DurableEngine`) and
//! `runtime` (rings, wait strategies, the sequencer, pinned and inline runners, which drive any
//! [`Processor`]).
//!
//! ```
//! use engine::{
//!     AccountId, ClOrdId, Command, CommandHeader, CommandKind, Engine, EngineConfig, Event, EventKind, NewOrder, Side,
//! };
//!
//! // BTC-USD, ETH-USD and AAPL, ticks of 0.01, lots of 1.
//! let mut engine = Engine::new(EngineConfig::default());
//! let btc = engine.symbol_id("BTC-USD").unwrap();
//! let cents = |c: i64| c * engine::PRICE_UNITS_PER_ONE / 100;
//! // Ids are newtypes: an account id cannot be passed where a symbol id is expected.
//! let (alice, bob) = (AccountId(1), AccountId(2));
//!
//! let mut events: Vec<Event> = Vec::new();
//! let orders = [
//!     NewOrder::limit(alice, btc, ClOrdId::from_str("a1").unwrap(), Side::Sell, cents(100_00), 5),
//!     NewOrder::limit(bob, btc, ClOrdId::from_str("b1").unwrap(), Side::Buy, cents(100_05), 3),
//! ];
//! for (seq, order) in (1..).zip(orders) {
//!     // The sequencer's job in a venue: a gapless seq and a timestamp per command.
//!     let header = CommandHeader { seq, ts: 1_700_000_000_000_000_000 + seq };
//!     engine.process(&Command { header, kind: CommandKind::New(order) }, &mut events);
//! }
//!
//! let trade = events.iter().find_map(|e| match e.kind {
//!     EventKind::Trade { price, qty, maker_account, .. } => Some((price, qty, maker_account)),
//!     _ => None,
//! });
//! // Bob's buy crosses Alice's resting sell: 3 at her price, 100.00 (10,000 ticks of 0.01).
//! println!("trade: {trade:?}");
//! assert_eq!(trade, Some((engine::Price(100_00), 3, alice)));
//! ```
//!
//! Account, symbol and order ids are distinct types, so mixing them up does not compile:
//!
//! ```compile_fail,E0308
//! let engine = engine::Engine::new(engine::EngineConfig::default());
//! let account = engine::AccountId(0);
//! engine.symbol(account); // expects a SymbolId
//! ```
#![warn(missing_docs, unreachable_pub)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod batch;
mod book;
pub mod codec;
mod command;
mod divisor;
mod engine;
mod event;
mod huge_pages;
mod id_index;
mod level;
mod matching;
mod order;
pub mod price_text;
mod processor;
mod snapshot;
mod types;

pub use command::{CancelOrder, Command, CommandHeader, CommandKind, NewOrder, ReplaceOrder};
pub use engine::{
    BookSnapshot, ConfigError, Engine, EngineConfig, LevelSnapshot, OrderSnapshot, LEVELS_PER_SIDE_MAX_LIMIT,
    ORDERS_MAX_LIMIT, SYMBOLS_MAX,
};
pub use event::{CancelReason, CountingSink, Event, EventKind, EventSink, RejectReason};
pub use id_index::{id_hash, IdIndex};
pub use processor::Processor;
pub use snapshot::SnapshotError;
pub use types::{
    default_symbols, AccountId, ClOrdId, ClOrdIdError, OrdType, OrderId, Price, PriceUnits, Qty, Side,
    StpMode, SymbolId, SymbolSpec, Tif, CL_ORD_ID_LEN_MAX, PRICE_SCALE, PRICE_UNITS_PER_ONE, SYMBOL_UNKNOWN,
};
