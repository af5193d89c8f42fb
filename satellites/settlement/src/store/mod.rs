//! Where commits go: the [`Store`] trait, its two backends and the choice between them.
//!
//! # Why redb by default
//!
//! The embedded default is [redb](https://docs.rs/redb) with its default `Durability::Immediate`:
//! when `commit` returns, the transaction is on disk (redb fsyncs a copy-on-write B-tree and
//! flips a commit slot; there is no log to replay and no checkpoint to tune). SQLite in WAL mode
//! gives the same guarantee only with `synchronous=FULL` (its WAL default, `NORMAL`, may lose
//! the last commits on power loss), brings a C library and SQL text into a process that only
//! needs key → value tables, and its checkpoints stall writers at moments it chooses. redb is
//! pure Rust, one file, and `serve` runs with it on a fresh machine with nothing installed.
//!
//! PostgreSQL is the production backend (`backend = "postgres"`): operators already back it
//! up, replicate it and query it; the schema is created on open.
//!
//! Both write a [`Commit`] (postings, pending states, holds, account after-images, rejections
//! AND the follower cursor) in one transaction, so a crash leaves either all of a commit or
//! none of it: a restarted follower resumes after the cursor and books nothing twice.

mod codec;
mod pg;
mod redb_store;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::ledger::{Commit, Snapshot};

pub use pg::PgStore;
pub use redb_store::RedbStore;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// redb failed.
    #[error("redb: {0}")]
    Redb(#[from] redb::Error),
    /// PostgreSQL failed.
    #[error("postgres: {0}")]
    Postgres(#[from] postgres::Error),
    /// Stored data this version cannot read.
    #[error("stored {what} is corrupt: {detail}")]
    Corrupt {
        /// What was being read.
        what: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// A commit carried a transfer id that is already stored: the ledger and the store
    /// disagree, and the whole commit is refused.
    #[error("transfer {0} is already stored")]
    DuplicateTransfer(u128),
    /// A commit changed the state of a transfer that is not stored.
    #[error("transfer {0} is not stored")]
    MissingTransfer(u128),
    /// A record key that is empty, too long or holds a NUL.
    #[error("record key {0:?} is empty, longer than {RECORD_KEY_LEN_MAX} bytes or holds a NUL")]
    BadRecordKey(String),
    /// An earlier commit was refused: the ledger in memory holds changes the store does not,
    /// so nothing more is written (a later commit would carry balances that include them)
    /// until a restart reloads the ledger from the store.
    #[error("an earlier commit was refused ({0}); nothing more is written until a restart")]
    RefusedEarlier(String),
    /// A PostgreSQL schema name that is not a plain identifier.
    #[error("schema {0:?} is not a lower-case identifier")]
    BadSchema(String),
}

/// Durable home of a ledger.
pub trait Store {
    /// Everything stored, to rebuild the ledger with [`Ledger::restore`](crate::Ledger::restore).
    fn load(&mut self) -> Result<Snapshot, StoreError>;

    /// Writes one commit in one transaction: all of it or (on error) none of it.
    fn commit(&mut self, commit: &Commit) -> Result<(), StoreError>;

    /// The stored follower cursor (0 before the first).
    fn cursor(&mut self) -> Result<u64, StoreError>;

    /// Every record of `table`, in key order.
    fn records(&mut self, table: RecordTable) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
}

/// A table of records kept beside the ledger, written in the ledger's transactions (see
/// [`Commit::records`]): a payment's record commits with its postings, so a crash keeps both
/// or neither.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordTable {
    /// Payment records by zero-padded id.
    Payments,
    /// Idempotency keys of the payments API.
    Idempotency,
    /// Webhook deliveries of the payments API by zero-padded delivery id: each written with the
    /// final status it announces, then after every attempt.
    WebhookDeliveries,
}

impl RecordTable {
    /// Every table (each backend creates them all on open).
    pub const ALL: [RecordTable; 3] =
        [RecordTable::Payments, RecordTable::Idempotency, RecordTable::WebhookDeliveries];

    /// Name in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordTable::Payments => "payment_records",
            RecordTable::Idempotency => "idempotency_keys",
            RecordTable::WebhookDeliveries => "webhook_deliveries",
        }
    }
}

/// Longest record key (PostgreSQL's and redb's limits are far above; a bound keeps a bad
/// caller from writing megabyte keys).
pub const RECORD_KEY_LEN_MAX: usize = 512;

/// One record written (`Some`) or deleted (`None`) by a commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordWrite {
    /// Table.
    pub table: RecordTable,
    /// Key: text without NUL, at most [`RECORD_KEY_LEN_MAX`] bytes.
    pub key: String,
    /// New value; `None` deletes the key.
    pub value: Option<Vec<u8>>,
}

impl RecordWrite {
    /// Checks the key (before anything of the commit is written).
    fn check(&self) -> Result<(), StoreError> {
        if self.key.is_empty() || self.key.len() > RECORD_KEY_LEN_MAX || self.key.contains('\0') {
            return Err(StoreError::BadRecordKey(self.key.chars().take(64).collect()));
        }
        Ok(())
    }
}

/// Checks every record key of a commit.
fn check_records(commit: &Commit) -> Result<(), StoreError> {
    commit.records.iter().try_for_each(RecordWrite::check)
}

/// Which backend, from the `[settlement.store]` table of the venue config.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "backend", rename_all = "snake_case", deny_unknown_fields)]
pub enum StoreConfig {
    /// Embedded redb file.
    Redb {
        /// Database file, e.g. `var/settlement.redb`.
        path: PathBuf,
    },
    /// PostgreSQL server.
    Postgres {
        /// Connection string, e.g. `host=127.0.0.1 port=5432 user=exchange dbname=exchange`.
        url: String,
        /// Schema the tables live in (created on open).
        #[serde(default = "default_schema")]
        schema: String,
    },
}

fn default_schema() -> String {
    "settlement".to_string()
}

impl Default for StoreConfig {
    fn default() -> StoreConfig {
        StoreConfig::Redb { path: PathBuf::from("var/settlement.redb") }
    }
}

/// The configured backend.
pub enum AnyStore {
    /// redb.
    Redb(RedbStore),
    /// PostgreSQL.
    Postgres(Box<PgStore>),
}

impl AnyStore {
    /// Opens (creating when absent) the configured store.
    pub fn open(config: &StoreConfig) -> Result<AnyStore, StoreError> {
        Ok(match config {
            StoreConfig::Redb { path } => AnyStore::Redb(RedbStore::open(path)?),
            StoreConfig::Postgres { url, schema } => {
                AnyStore::Postgres(Box::new(PgStore::open(url, schema)?))
            }
        })
    }
}

impl Store for AnyStore {
    fn load(&mut self) -> Result<Snapshot, StoreError> {
        match self {
            AnyStore::Redb(s) => s.load(),
            AnyStore::Postgres(s) => s.load(),
        }
    }

    fn commit(&mut self, commit: &Commit) -> Result<(), StoreError> {
        match self {
            AnyStore::Redb(s) => s.commit(commit),
            AnyStore::Postgres(s) => s.commit(commit),
        }
    }

    fn cursor(&mut self) -> Result<u64, StoreError> {
        match self {
            AnyStore::Redb(s) => s.cursor(),
            AnyStore::Postgres(s) => s.cursor(),
        }
    }

    fn records(&mut self, table: RecordTable) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        match self {
            AnyStore::Redb(s) => s.records(table),
            AnyStore::Postgres(s) => s.records(table),
        }
    }
}
