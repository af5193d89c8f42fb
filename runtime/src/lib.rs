//! The threads around the matching engine: the SPSC rings that carry commands in and events out,
//! the doorbell and wait strategies that let a thread sleep without missing work, the sequencer
//! that stamps commands, and the runners ([`Runner`] on a pinned thread of its own,
//! [`InlineRunner`] on the caller's) that drive any [`engine::Processor`] with a [`Clock`].
//!
//! This is shell, not core: it reads the clock, spawns and pins threads and waits; the engine it
//! drives stays a pure state machine. Under `--cfg loom` the ring's and the doorbell's atomics
//! are loom's (see `sync.rs`), and `tests/loom_*.rs` model-check them.
#![warn(missing_docs, unreachable_pub)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod doorbell;
mod ring;
mod runner;
mod sequencer;
mod sync;
mod wait;

pub use doorbell::Doorbell;
pub use ring::{spsc_ring, Consumer, Producer, PushError, RING_CAPACITY_MAX};
pub use runner::{
    Clock, EngineStep, InlineRunner, PinState, Runner, RunnerConfig, RunnerError, RunnerHandle, RunnerStats,
    SteppingClock, SystemClock,
};
pub use sequencer::Sequencer;
pub use wait::{
    WaitStep, WaitStrategy, Waiter, BACKOFF_SLEEP_MAX, BACKOFF_SLEEP_MIN, PARK_TIMEOUT, SPIN_ROUNDS,
    YIELD_ROUNDS,
};
