//! Sans-IO order management between the FIX sessions and the matching engine: requests in,
//! engine commands out; engine events in, reports out (domain values, not FIX bytes); the
//! order state every report is built from (CumQty, AvgPx, the ClOrdID chain), rebuilt from the
//! journals after a restart; the pre-trade gates (rate limits, risk) and the administration of
//! risk. It reads no clock and does no I/O: its host passes time in, pushes the commands it
//! returns to the engine and carries its reports to the sessions (the gateway's router does,
//! on whatever thread runs it).
//!
//! **Invariant:** every engine event about an order yields its owner's report exactly once,
//! live or after a restart; every request is answered (a report, or the command whose events
//! answer it); every queue has a named bound ([`IN_FLIGHT_MAX`], [`OUTPUT_MAX`],
//! [`DONE_ORDERS_MAX`]).
#![warn(missing_docs, unreachable_pub)]

pub mod admin;
pub mod funds;
mod gates;
mod manager;
mod orders;
mod report;
mod request;

pub use gates::{RateLimits, GATE_SAMPLE_EVERY};
pub use manager::{OmsConfig, OmsStats, OrderManager, IN_FLIGHT_MAX, OUTPUT_MAX};
pub use orders::{DoneOrder, OrderState, Orders, DONE_ORDERS_MAX};
pub use report::{ord_rej_reason, CancelReject, Delivery, ExecReport, MassCancelReport, Report, StatusInfo};
pub use request::{Request, SessionId};

/// Why order management could not start.
#[derive(Debug, thiserror::Error)]
pub enum OmsError {
    /// A rate limit is configured with values it cannot run with.
    #[error("rate limit: {0}")]
    RateLimit(#[from] ratelimit::RateLimitError),
}
