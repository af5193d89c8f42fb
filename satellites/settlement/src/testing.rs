//! Test support for this crate's users: a store that fails on demand.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::ledger::{Commit, Snapshot};
use crate::store::{AnyStore, RecordTable, Store, StoreError};

/// A store that refuses every commit while `refuse` is set (as a full disk or a lost database
/// connection would), and otherwise passes everything to `inner`.
pub struct Refusing {
    /// The real store.
    pub inner: AnyStore,
    /// While set, commits fail with "disk full (simulated)".
    pub refuse: Arc<AtomicBool>,
}

impl Store for Refusing {
    fn load(&mut self) -> Result<Snapshot, StoreError> {
        self.inner.load()
    }
    fn commit(&mut self, commit: &Commit) -> Result<(), StoreError> {
        if self.refuse.load(Ordering::SeqCst) {
            return Err(StoreError::Corrupt { what: "commit", detail: "disk full (simulated)".into() });
        }
        self.inner.commit(commit)
    }
    fn cursor(&mut self) -> Result<u64, StoreError> {
        self.inner.cursor()
    }
    fn records(&mut self, table: RecordTable) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.inner.records(table)
    }
}
