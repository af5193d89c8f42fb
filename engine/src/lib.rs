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
mod codec;
mod command;
mod doorbell;
mod durable;
mod engine;
mod event;
mod id_index;
mod level;
mod matching;
mod order;
mod ring;
mod runner;
mod sequencer;
mod snapshot;
mod sync;
mod types;
mod wait;

pub mod journal;

pub use codec::{CodecError, COMMAND_ENCODED_LEN_MAX, EVENT_ENCODED_LEN_MAX};
pub use command::{CancelOrder, Command, CommandHeader, CommandKind, NewOrder, ReplaceOrder};
pub use doorbell::Doorbell;
pub use durable::{DurableConfig, DurableEngine, DurableError, DurableRecovery, EventVerifier};
pub use engine::{
    BookSnapshot, ConfigError, Engine, EngineConfig, LevelSnapshot, OrderSnapshot, LEVELS_PER_SIDE_MAX_LIMIT,
    ORDERS_MAX_LIMIT, SYMBOLS_MAX,
};
pub use event::{CancelReason, CountingSink, Event, EventKind, EventSink, RejectReason};
pub use id_index::id_hash;
pub use ring::{spsc_ring, Consumer, Producer, PushError, RING_CAPACITY_MAX};
pub use runner::{
    Clock, EngineStep, InlineRunner, PinState, Processor, Runner, RunnerConfig, RunnerError, RunnerHandle,
    RunnerStats, SteppingClock, SystemClock,
};
pub use sequencer::Sequencer;
pub use snapshot::SnapshotError;
pub use types::{
    default_symbols, AccountId, ClOrdId, ClOrdIdError, OrdType, OrderId, Price, Qty, Side, StpMode, SymbolId,
    SymbolSpec, Tif, CL_ORD_ID_LEN_MAX, PRICE_SCALE, PRICE_UNITS_PER_ONE, SYMBOL_UNKNOWN,
};
pub use wait::{
    WaitStep, WaitStrategy, Waiter, BACKOFF_SLEEP_MAX, BACKOFF_SLEEP_MIN, PARK_TIMEOUT, SPIN_ROUNDS,
    YIELD_ROUNDS,
};
