//! The embedded backend: one redb file, `Durability::Immediate` (redb's default) on every
//! commit.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::codec::{self, TRANSFER_BYTES};
use super::{check_records, RecordTable, Store, StoreError};
use crate::ledger::{Commit, Rejection, Snapshot};

const ACCOUNTS: TableDefinition<u32, &[u8]> = TableDefinition::new("accounts");
const TRANSFERS: TableDefinition<u128, &[u8]> = TableDefinition::new("transfers");
const HOLDS: TableDefinition<u128, &[u8]> = TableDefinition::new("holds");
const REJECTIONS: TableDefinition<u64, &str> = TableDefinition::new("rejections");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

fn record_table(table: RecordTable) -> TableDefinition<'static, &'static str, &'static [u8]> {
    TableDefinition::new(table.as_str())
}

const META_CURSOR: &str = "cursor";
const META_LAYOUT: &str = "layout_version";

/// A ledger in a redb file.
pub struct RedbStore {
    db: Database,
}

impl RedbStore {
    /// Opens the file, creating it (and its tables) when absent.
    pub fn open(path: &Path) -> Result<RedbStore, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(redb::Error::from)?;
        }
        let db = Database::create(path).map_err(redb::Error::from)?;
        let tx = db.begin_write().map_err(redb::Error::from)?;
        {
            tx.open_table(ACCOUNTS).map_err(redb::Error::from)?;
            tx.open_table(TRANSFERS).map_err(redb::Error::from)?;
            tx.open_table(HOLDS).map_err(redb::Error::from)?;
            tx.open_table(REJECTIONS).map_err(redb::Error::from)?;
            for table in RecordTable::ALL {
                tx.open_table(record_table(table)).map_err(redb::Error::from)?;
            }
            let mut meta = tx.open_table(META).map_err(redb::Error::from)?;
            let layout = meta.get(META_LAYOUT).map_err(redb::Error::from)?.map(|v| v.value());
            match layout {
                None => {
                    meta.insert(META_LAYOUT, codec::LAYOUT_VERSION).map_err(redb::Error::from)?;
                }
                Some(v) if v == codec::LAYOUT_VERSION => {}
                Some(v) => {
                    return Err(StoreError::Corrupt {
                        what: "layout version",
                        detail: format!("file has {v}, this build reads {}", codec::LAYOUT_VERSION),
                    })
                }
            }
        }
        tx.commit().map_err(redb::Error::from)?;
        Ok(RedbStore { db })
    }

    fn write(&mut self, commit: &Commit) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        {
            let mut transfers = tx.open_table(TRANSFERS)?;
            let mut buf = [0u8; TRANSFER_BYTES];
            for t in &commit.transfers {
                codec::encode_transfer(t, &mut buf);
                if transfers.insert(t.transfer.id, buf.as_slice())?.is_some() {
                    // Dropping `tx` without commit aborts it: nothing of this commit is kept.
                    return Err(StoreError::DuplicateTransfer(t.transfer.id));
                }
            }
            for &(id, state) in &commit.pending_states {
                let mut bytes: [u8; TRANSFER_BYTES] = {
                    let Some(old) = transfers.get(id)? else { return Err(StoreError::MissingTransfer(id)) };
                    old.value().try_into().map_err(|_| StoreError::Corrupt {
                        what: "transfer",
                        detail: format!("{id} has {} bytes", old.value().len()),
                    })?
                };
                codec::set_state(&mut bytes, state);
                transfers.insert(id, bytes.as_slice())?;
            }
            let mut accounts = tx.open_table(ACCOUNTS)?;
            for a in &commit.accounts {
                accounts.insert(a.idx.0, codec::encode_account(a).as_slice())?;
            }
            let mut holds = tx.open_table(HOLDS)?;
            for h in &commit.holds_placed {
                holds.insert(h.id, codec::encode_hold(h).as_slice())?;
            }
            for id in &commit.holds_released {
                holds.remove(id)?;
            }
            let mut rejections = tx.open_table(REJECTIONS)?;
            for r in &commit.rejections {
                rejections.insert(r.seq, r.reason.as_str())?;
            }
            if let Some(seq) = commit.cursor {
                tx.open_table(META)?.insert(META_CURSOR, seq)?;
            }
            for r in &commit.records {
                let mut table = tx.open_table(record_table(r.table))?;
                match &r.value {
                    Some(v) => table.insert(r.key.as_str(), v.as_slice())?,
                    None => table.remove(r.key.as_str())?,
                };
            }
        }
        tx.commit()?;
        Ok(())
    }
}

impl From<redb::TransactionError> for StoreError {
    fn from(e: redb::TransactionError) -> StoreError {
        StoreError::Redb(e.into())
    }
}

impl From<redb::TableError> for StoreError {
    fn from(e: redb::TableError) -> StoreError {
        StoreError::Redb(e.into())
    }
}

impl From<redb::StorageError> for StoreError {
    fn from(e: redb::StorageError) -> StoreError {
        StoreError::Redb(e.into())
    }
}

impl From<redb::CommitError> for StoreError {
    fn from(e: redb::CommitError) -> StoreError {
        StoreError::Redb(e.into())
    }
}

impl Store for RedbStore {
    fn load(&mut self) -> Result<Snapshot, StoreError> {
        let tx = self.db.begin_read()?;
        let mut snapshot = Snapshot::default();
        for row in tx.open_table(ACCOUNTS)?.iter()? {
            let (k, v) = row?;
            snapshot.accounts.push(codec::decode_account(k.value(), v.value())?);
        }
        for row in tx.open_table(TRANSFERS)?.iter()? {
            let (k, v) = row?;
            snapshot.transfers.push(codec::decode_transfer(k.value(), v.value())?);
        }
        for row in tx.open_table(HOLDS)?.iter()? {
            let (k, v) = row?;
            snapshot.holds.push(codec::decode_hold(k.value(), v.value())?);
        }
        for row in tx.open_table(REJECTIONS)?.iter()? {
            let (k, v) = row?;
            snapshot.rejections.push(Rejection { seq: k.value(), reason: v.value().to_string() });
        }
        snapshot.cursor = tx.open_table(META)?.get(META_CURSOR)?.map_or(0, |v| v.value());
        Ok(snapshot)
    }

    fn commit(&mut self, commit: &Commit) -> Result<(), StoreError> {
        if commit.is_empty() {
            return Ok(());
        }
        check_records(commit)?;
        self.write(commit)
    }

    fn records(&mut self, table: RecordTable) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let tx = self.db.begin_read()?;
        let mut out = Vec::new();
        for row in tx.open_table(record_table(table))?.iter()? {
            let (k, v) = row?;
            out.push((k.value().to_string(), v.value().to_vec()));
        }
        Ok(out)
    }

    fn cursor(&mut self) -> Result<u64, StoreError> {
        let tx = self.db.begin_read()?;
        Ok(tx.open_table(META)?.get(META_CURSOR)?.map_or(0, |v| v.value()))
    }
}
