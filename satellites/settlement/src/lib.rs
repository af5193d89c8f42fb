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

pub use asset::{format_amount, parse_amount, AmountError, Asset, AssetId};
pub use buying_power::BuyingPower;
pub use calendar::Calendar;
pub use config::{ConfigError, SettlementConfig, SymbolConfig};
pub use follower::{
    Applied, PaymentError, ReportLine, Settlement, SettlementError, SettlementReport, TradeRejection,
};
pub use ledger::{
    codes, AccountError, AccountIdx, AccountKind, AccountRecord, Balances, Commit, Created, Hold, HoldError,
    HoldId, Ledger, LedgerLimits, PendingState, Rejection, RestoreError, Snapshot, StoredTransfer, Transfer,
    TransferError, TransferId, TransferKind,
};
pub use store::{AnyStore, PgStore, RedbStore, Store, StoreConfig, StoreError};
