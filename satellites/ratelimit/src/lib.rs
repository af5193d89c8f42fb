//! Rate limiting for the gateway: a GCRA limiter per key with exact sub-second refill, a sliding
//! window over its rejections that flags sustained abuse, and a bounded map of them keyed per
//! session or per account.
//!
//! **Invariant:** a decision is a pure function of the key's configuration and the `now_ns`
//! values the caller passed (no clock reads, no floating point), and the keyed map never holds
//! more than `keys_max` keys: evicting an idle key is unobservable, because an idle key's state
//! is exactly a fresh key's.
//!
//! Excess messages are refused at once ([`Decision::Limited`]), never queued: queueing would only
//! move the overload into the gateway's memory. [`Decision::Abuse`] tells the caller to log the
//! session out.
#![warn(missing_docs, unreachable_pub)]
#![forbid(unsafe_code)]

mod config;
mod gcra;
mod keyed;
mod limiter;
mod window;

pub use config::{LimitConfig, RateLimitError, NANOS_PER_SEC};
pub use gcra::Gcra;
pub use keyed::{KeyedLimiter, EVICT_SCAN_MAX};
pub use limiter::{Decision, Limiter};
pub use window::{RejectWindow, WINDOW_BUCKETS};
