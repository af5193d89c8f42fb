//! Settlement: a double-entry ledger fed by the engine's events.
//!
//! - [`ledger`]: the sans-IO core (TigerBeetle's model): accounts per (owner, asset), integer
//!   minor units, client-minted transfer ids with idempotent retries, two-phase transfers,
//!   linked chains, holds, and the per-asset zero-sum invariant asserted at every commit.
//! - [`follower`]: trade settlement: engine events in seq order → delivery-versus-payment
//!   legs in pending balances → posted on T+N business days, with a durable cursor.
//! - [`buying_power`]: available per venue account and asset, for the pre-trade check.
//! - [`api`]: read endpoints (axum) and their OpenAPI document.
//! - [`store`]: where commits go, in one transaction each: redb by default, PostgreSQL when
//!   configured; both pass one conformance suite.
//!
//! # Why redb by default (and not SQLite in WAL mode)
//!
//! The embedded store must make a commit durable when it returns, so that the cursor stored
//! with the postings never runs ahead of what a crash keeps. redb does that by default
//! (`Durability::Immediate`: fsync of a copy-on-write B-tree, then a flip of the commit slot;
//! no log to replay, no checkpoints). SQLite gives the same only in WAL mode with
//! `synchronous=FULL` (WAL's usual `NORMAL` may drop the last commits on power loss), brings a
//! C library and SQL text to a process that needs five key → value tables, and checkpoints
//! when it chooses. redb is pure Rust and one file: `serve` runs on a fresh machine with no
//! service. PostgreSQL is the production backend, for operators who back up, replicate and
//! query it. See [`store`].
//!
//! Deposits and withdrawals are transfers from and to an asset's external account (a system
//! account that may go negative, because its balance mirrors money outside the ledger).
#![warn(missing_docs, unreachable_pub)]

pub mod api;
pub mod asset;
pub mod buying_power;
pub mod calendar;
pub mod config;
pub mod follower;
pub mod ledger;
pub mod store;
pub mod testing;

pub use asset::{format_amount, parse_amount, AmountError, Asset, AssetId};
pub use buying_power::BuyingPower;
pub use calendar::Calendar;
pub use config::{ConfigError, SettlementConfig, SymbolConfig};
pub use follower::{
    Applied, PaymentError, ReportLine, Settlement, SettlementError, SettlementReport, TradeRejection,
    UNSETTLED_DUE,
};
pub use ledger::{
    codes, AccountError, AccountIdx, AccountKind, AccountRecord, Balances, Commit, Created, Hold, HoldError,
    HoldId, Ledger, LedgerLimits, PendingState, Rejection, RestoreError, Snapshot, StoredTransfer, Transfer,
    TransferError, TransferId, TransferKind,
};
pub use store::{AnyStore, PgStore, RecordTable, RecordWrite, RedbStore, Store, StoreConfig, StoreError};
