//! Payments: deposits, withdrawals and refunds over the settlement ledger.
//!
//! - [`core`]: the sans-IO core: fees per method (percent in the config, basis points inside), the status machine
//!   (pending → processing → succeeded / failed; refunds → partially_refunded / refunded),
//!   fraud rules before the rails call, postings through [`settlement::Settlement`].
//! - [`fraud`]: rule scores in thousandths that add up; decline above a threshold.
//! - [`breaker`]: closed → open → half-open, with time passed in.
//! - [`connector`]: the rails behind a trait (a call, and a status query by reference), and a
//!   seeded simulator whose answers depend on the seed and the payment alone.
//! - [`webhook`]: HMAC-SHA256-signed deliveries of final statuses by a worker thread, stored in
//!   the ledger's store with the status they announce and resumed after a restart.
//! - [`api`]: the idempotent HTTP JSON API (axum) and its OpenAPI document; concurrent
//!   requests' steps made durable by shared commits (group commit) before they answer.
#![warn(missing_docs, unreachable_pub)]

pub mod api;
pub mod breaker;
pub mod config;
pub mod connector;
pub mod core;
pub mod fraud;
pub mod webhook;

pub use api::{router, PaymentsStats, Service};
pub use config::PaymentsConfig;
pub use connector::{Connector, PaymentKind, SimulatedConnector};
pub use core::{Payment, Payments, PaymentsError, Status};
