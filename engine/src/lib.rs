//! Sans-IO matching engine: order book, price-time matching, commands and events, plus the
//! shell pieces that move commands in and events out (rings, sequencer, pinned runner).
//!
//! The matching core ([`Engine`]) does no I/O, reads no clock and allocates nothing per command
//! once constructed: every pool is pre-sized from [`EngineConfig`], and a full pool is a
//! `book_full` reject. Time enters as [`CommandHeader::ts`], stamped by the sequencer.
#![warn(missing_docs, unreachable_pub)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod book;
mod command;
mod engine;
mod event;
mod level;
mod matching;
mod order;
mod snapshot;
mod types;

pub use command::{CancelOrder, Command, CommandHeader, CommandKind, NewOrder, ReplaceOrder};
pub use engine::{BookSnapshot, Engine, EngineConfig, LevelSnapshot, OrderSnapshot};
pub use snapshot::SnapshotError;
pub use event::{CancelReason, CountingSink, Event, EventKind, EventSink, RejectReason};
pub use types::{
    default_symbols, AccountId, ClOrdId, ClOrdIdError, OrdType, OrderId, Price, Qty, Side,
    StpMode, SymbolId, SymbolSpec, Tif, CL_ORD_ID_LEN_MAX, PRICE_SCALE, PRICE_UNITS_PER_ONE,
    SYMBOL_UNKNOWN,
};
