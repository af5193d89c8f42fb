//! The PostgreSQL backend. Amounts and ids wider than `i64` are `NUMERIC` columns, passed as
//! text both ways (exact, and readable in `psql`). Each commit is one transaction of a few
//! statements, each carrying all the commit's rows as arrays (`unnest`), so a batch of
//! thousands of postings costs a handful of round trips, not one per row.

use postgres::{Client, NoTls};

use super::{check_records, RecordTable, Store, StoreError};
use crate::ledger::{
    AccountIdx, AccountKind, AccountRecord, Balances, Commit, Hold, PendingState, Rejection, Snapshot,
    StoredTransfer, Transfer, TransferKind,
};

/// A ledger in a PostgreSQL schema.
pub struct PgStore {
    client: Client,
}

const SCHEMA_SQL: &str = "
CREATE TABLE IF NOT EXISTS ledger_accounts (
    idx INTEGER PRIMARY KEY,
    owner TEXT NOT NULL,
    asset TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('user', 'system')),
    debits_pending NUMERIC(39, 0) NOT NULL,
    debits_posted NUMERIC(39, 0) NOT NULL,
    credits_pending NUMERIC(39, 0) NOT NULL,
    credits_posted NUMERIC(39, 0) NOT NULL,
    held NUMERIC(39, 0) NOT NULL,
    UNIQUE (owner, asset)
);
CREATE TABLE IF NOT EXISTS ledger_transfers (
    id NUMERIC(39, 0) PRIMARY KEY,
    debit INTEGER NOT NULL,
    credit INTEGER NOT NULL,
    amount NUMERIC(20, 0) NOT NULL CHECK (amount > 0),
    kind TEXT NOT NULL,
    timeout_ns NUMERIC(20, 0),
    pending_id NUMERIC(39, 0),
    linked BOOLEAN NOT NULL,
    code INTEGER NOT NULL,
    user_data_64 NUMERIC(20, 0) NOT NULL,
    user_data_32 BIGINT NOT NULL,
    ts_ns NUMERIC(20, 0) NOT NULL,
    state TEXT
);
CREATE TABLE IF NOT EXISTS ledger_holds (
    id NUMERIC(39, 0) PRIMARY KEY,
    account INTEGER NOT NULL,
    amount NUMERIC(20, 0) NOT NULL,
    user_data_64 NUMERIC(20, 0) NOT NULL
);
CREATE TABLE IF NOT EXISTS settlement_rejections (
    seq NUMERIC(20, 0) PRIMARY KEY,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS settlement_records (
    tbl TEXT NOT NULL,
    key TEXT NOT NULL,
    value BYTEA NOT NULL,
    PRIMARY KEY (tbl, key)
);
CREATE TABLE IF NOT EXISTS settlement_cursor (
    one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
    seq NUMERIC(20, 0) NOT NULL
);
";

impl PgStore {
    /// Connects and creates the schema and its tables when absent.
    pub fn open(url: &str, schema: &str) -> Result<PgStore, StoreError> {
        let plain = schema.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && schema.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !plain || schema.len() > 63 {
            return Err(StoreError::BadSchema(schema.to_string()));
        }
        let mut client = Client::connect(url, NoTls)?;
        // The name was checked to be a plain identifier above, so it is safe to splice.
        client
            .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}; SET search_path TO {schema};"))?;
        client.batch_execute(SCHEMA_SQL)?;
        Ok(PgStore { client })
    }

    /// Drops the schema and everything in it (tests clean up after themselves with this).
    pub fn drop_schema(url: &str, schema: &str) -> Result<(), StoreError> {
        let mut store = PgStore::open(url, schema)?;
        store.client.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))?;
        Ok(())
    }
}

fn num(text: &str, what: &'static str) -> Result<u128, StoreError> {
    text.parse()
        .map_err(|_| StoreError::Corrupt { what, detail: format!("{text:?} is not an unsigned integer") })
}

fn num64(text: &str, what: &'static str) -> Result<u64, StoreError> {
    u64::try_from(num(text, what)?)
        .map_err(|_| StoreError::Corrupt { what, detail: format!("{text} is past u64") })
}

impl Store for PgStore {
    fn load(&mut self) -> Result<Snapshot, StoreError> {
        let mut snapshot = Snapshot::default();
        let rows = self.client.query(
            "SELECT idx, owner, asset, kind, debits_pending::text, debits_posted::text, credits_pending::text,
                    credits_posted::text, held::text FROM ledger_accounts ORDER BY idx",
            &[],
        )?;
        for row in rows {
            let kind: String = row.get(3);
            let idx: i32 = row.get(0);
            snapshot.accounts.push(AccountRecord {
                idx: AccountIdx(idx as u32),
                owner: row.get(1),
                asset: row.get(2),
                kind: AccountKind::parse(&kind).ok_or_else(|| StoreError::Corrupt {
                    what: "account",
                    detail: format!("kind {kind:?}"),
                })?,
                balances: Balances {
                    debits_pending: num(row.get(4), "account")?,
                    debits_posted: num(row.get(5), "account")?,
                    credits_pending: num(row.get(6), "account")?,
                    credits_posted: num(row.get(7), "account")?,
                    held: num(row.get(8), "account")?,
                },
            });
        }
        let rows = self.client.query(
            "SELECT id::text, debit, credit, amount::text, kind, timeout_ns::text, pending_id::text, linked, code,
                    user_data_64::text, user_data_32, ts_ns::text, state FROM ledger_transfers",
            &[],
        )?;
        for row in rows {
            let id = num(row.get(0), "transfer")?;
            let kind: String = row.get(4);
            let timeout: Option<String> = row.get(5);
            let pending: Option<String> = row.get(6);
            let pending_id = || -> Result<u128, StoreError> {
                num(pending.as_deref().unwrap_or(""), "transfer pending_id")
            };
            let kind = match kind.as_str() {
                "posted" => TransferKind::Posted,
                "pending" => TransferKind::Pending {
                    timeout_ns: num64(timeout.as_deref().unwrap_or("0"), "transfer timeout")?,
                },
                "post_pending" => TransferKind::PostPending { pending_id: pending_id()? },
                "void_pending" => TransferKind::VoidPending { pending_id: pending_id()? },
                other => {
                    return Err(StoreError::Corrupt { what: "transfer", detail: format!("kind {other:?}") })
                }
            };
            let state: Option<String> = row.get(12);
            let state = match state {
                None => None,
                Some(s) => Some(PendingState::parse(&s).ok_or_else(|| StoreError::Corrupt {
                    what: "transfer",
                    detail: format!("state {s:?}"),
                })?),
            };
            let debit: i32 = row.get(1);
            let credit: i32 = row.get(2);
            let code: i32 = row.get(8);
            let user_data_32: i64 = row.get(10);
            snapshot.transfers.push(StoredTransfer {
                transfer: Transfer {
                    id,
                    debit: AccountIdx(debit as u32),
                    credit: AccountIdx(credit as u32),
                    amount: num64(row.get(3), "transfer amount")?,
                    kind,
                    linked: row.get(7),
                    code: code as u16,
                    user_data_64: num64(row.get(9), "transfer user_data_64")?,
                    user_data_32: user_data_32 as u32,
                },
                ts_ns: num64(row.get(11), "transfer ts_ns")?,
                state,
            });
        }
        for row in self
            .client
            .query("SELECT id::text, account, amount::text, user_data_64::text FROM ledger_holds", &[])?
        {
            let account: i32 = row.get(1);
            snapshot.holds.push(Hold {
                id: num(row.get(0), "hold")?,
                account: AccountIdx(account as u32),
                amount: num64(row.get(2), "hold amount")?,
                user_data_64: num64(row.get(3), "hold user_data_64")?,
            });
        }
        for row in
            self.client.query("SELECT seq::text, reason FROM settlement_rejections ORDER BY seq", &[])?
        {
            snapshot.rejections.push(Rejection { seq: num64(row.get(0), "rejection")?, reason: row.get(1) });
        }
        snapshot.cursor = self.cursor()?;
        Ok(snapshot)
    }

    fn commit(&mut self, commit: &Commit) -> Result<(), StoreError> {
        if commit.is_empty() {
            return Ok(());
        }
        check_records(commit)?;
        let mut tx = self.client.transaction()?;
        if !commit.transfers.is_empty() {
            let n = commit.transfers.len();
            let mut id = Vec::with_capacity(n);
            let mut debit = Vec::with_capacity(n);
            let mut credit = Vec::with_capacity(n);
            let mut amount = Vec::with_capacity(n);
            let mut kind = Vec::with_capacity(n);
            let mut timeout = Vec::with_capacity(n);
            let mut pending = Vec::with_capacity(n);
            let mut linked = Vec::with_capacity(n);
            let mut code = Vec::with_capacity(n);
            let mut ud64 = Vec::with_capacity(n);
            let mut ud32 = Vec::with_capacity(n);
            let mut ts = Vec::with_capacity(n);
            let mut state = Vec::with_capacity(n);
            for s in &commit.transfers {
                let t = &s.transfer;
                id.push(t.id.to_string());
                debit.push(t.debit.0 as i32);
                credit.push(t.credit.0 as i32);
                amount.push(t.amount.to_string());
                let (k, to, p) = match t.kind {
                    TransferKind::Posted => ("posted", None, None),
                    TransferKind::Pending { timeout_ns } => ("pending", Some(timeout_ns.to_string()), None),
                    TransferKind::PostPending { pending_id } => {
                        ("post_pending", None, Some(pending_id.to_string()))
                    }
                    TransferKind::VoidPending { pending_id } => {
                        ("void_pending", None, Some(pending_id.to_string()))
                    }
                };
                kind.push(k);
                timeout.push(to);
                pending.push(p);
                linked.push(t.linked);
                code.push(i32::from(t.code));
                ud64.push(t.user_data_64.to_string());
                ud32.push(i64::from(t.user_data_32));
                ts.push(s.ts_ns.to_string());
                state.push(s.state.map(PendingState::as_str));
            }
            // A duplicate id violates the primary key and aborts the whole transaction.
            tx.execute(
                "INSERT INTO ledger_transfers
                 SELECT * FROM unnest($1::text[]::numeric[], $2::int4[], $3::int4[], $4::text[]::numeric[],
                     $5::text[], $6::text[]::numeric[], $7::text[]::numeric[], $8::bool[], $9::int4[],
                     $10::text[]::numeric[], $11::int8[], $12::text[]::numeric[], $13::text[])",
                &[
                    &id, &debit, &credit, &amount, &kind, &timeout, &pending, &linked, &code, &ud64, &ud32,
                    &ts, &state,
                ],
            )?;
        }
        if !commit.pending_states.is_empty() {
            let ids: Vec<String> = commit.pending_states.iter().map(|(id, _)| id.to_string()).collect();
            let states: Vec<&str> = commit.pending_states.iter().map(|(_, s)| s.as_str()).collect();
            // A pending posted in the commit that created it appears twice; the last state
            // wins, so apply them in order, one statement per distinct round.
            let mut seen = rustc_hash::FxHashSet::default();
            let distinct = commit.pending_states.iter().all(|(id, _)| seen.insert(*id));
            if distinct {
                let updated = tx.execute(
                    "UPDATE ledger_transfers t SET state = u.state
                     FROM unnest($1::text[]::numeric[], $2::text[]) AS u(id, state) WHERE t.id = u.id",
                    &[&ids, &states],
                )?;
                if updated as usize != ids.len() {
                    return Err(StoreError::MissingTransfer(missing(&mut tx, &commit.pending_states)?));
                }
            } else {
                for (id, state) in &commit.pending_states {
                    let updated = tx.execute(
                        "UPDATE ledger_transfers SET state = $2 WHERE id = $1::text::numeric",
                        &[&id.to_string(), &state.as_str()],
                    )?;
                    if updated != 1 {
                        return Err(StoreError::MissingTransfer(*id));
                    }
                }
            }
        }
        if !commit.accounts.is_empty() {
            let a = &commit.accounts;
            let idx: Vec<i32> = a.iter().map(|a| a.idx.0 as i32).collect();
            let owner: Vec<&str> = a.iter().map(|a| a.owner.as_str()).collect();
            let asset: Vec<&str> = a.iter().map(|a| a.asset.as_str()).collect();
            let kind: Vec<&str> = a.iter().map(|a| a.kind.as_str()).collect();
            let col =
                |f: fn(&Balances) -> u128| a.iter().map(|a| f(&a.balances).to_string()).collect::<Vec<_>>();
            let (dp, dpo, cp, cpo, held) = (
                col(|b| b.debits_pending),
                col(|b| b.debits_posted),
                col(|b| b.credits_pending),
                col(|b| b.credits_posted),
                col(|b| b.held),
            );
            tx.execute(
                "INSERT INTO ledger_accounts
                 SELECT * FROM unnest($1::int4[], $2::text[], $3::text[], $4::text[], $5::text[]::numeric[],
                     $6::text[]::numeric[], $7::text[]::numeric[], $8::text[]::numeric[], $9::text[]::numeric[])
                 ON CONFLICT (idx) DO UPDATE SET debits_pending = EXCLUDED.debits_pending,
                     debits_posted = EXCLUDED.debits_posted, credits_pending = EXCLUDED.credits_pending,
                     credits_posted = EXCLUDED.credits_posted, held = EXCLUDED.held",
                &[&idx, &owner, &asset, &kind, &dp, &dpo, &cp, &cpo, &held],
            )?;
        }
        for h in &commit.holds_placed {
            tx.execute(
                "INSERT INTO ledger_holds VALUES ($1::text::numeric, $2, $3::text::numeric, $4::text::numeric)
                 ON CONFLICT (id) DO UPDATE SET account = EXCLUDED.account, amount = EXCLUDED.amount,
                     user_data_64 = EXCLUDED.user_data_64",
                &[&h.id.to_string(), &(h.account.0 as i32), &h.amount.to_string(), &h.user_data_64.to_string()],
            )?;
        }
        if !commit.holds_released.is_empty() {
            let ids: Vec<String> = commit.holds_released.iter().map(u128::to_string).collect();
            tx.execute("DELETE FROM ledger_holds WHERE id = ANY($1::text[]::numeric[])", &[&ids])?;
        }
        for r in &commit.rejections {
            tx.execute(
                "INSERT INTO settlement_rejections VALUES ($1::text::numeric, $2)",
                &[&r.seq.to_string(), &r.reason],
            )?;
        }
        if let Some(seq) = commit.cursor {
            tx.execute(
                "INSERT INTO settlement_cursor (one, seq) VALUES (TRUE, $1::text::numeric)
                 ON CONFLICT (one) DO UPDATE SET seq = EXCLUDED.seq",
                &[&seq.to_string()],
            )?;
        }
        // In order: a key written then deleted in one commit ends deleted.
        for r in &commit.records {
            match &r.value {
                Some(v) => tx.execute(
                    "INSERT INTO settlement_records (tbl, key, value) VALUES ($1, $2, $3)
                     ON CONFLICT (tbl, key) DO UPDATE SET value = EXCLUDED.value",
                    &[&r.table.as_str(), &r.key, v],
                )?,
                None => tx.execute(
                    "DELETE FROM settlement_records WHERE tbl = $1 AND key = $2",
                    &[&r.table.as_str(), &r.key],
                )?,
            };
        }
        tx.commit()?;
        Ok(())
    }

    fn records(&mut self, table: RecordTable) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        // COLLATE "C": byte order, as redb orders its keys.
        let rows = self.client.query(
            "SELECT key, value FROM settlement_records WHERE tbl = $1 ORDER BY key COLLATE \"C\"",
            &[&table.as_str()],
        )?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    fn cursor(&mut self) -> Result<u64, StoreError> {
        let row = self.client.query_opt("SELECT seq::text FROM settlement_cursor", &[])?;
        match row {
            Some(row) => num64(row.get(0), "cursor"),
            None => Ok(0),
        }
    }
}

/// The first id of `states` that is not stored (for the error of a short update).
fn missing(tx: &mut postgres::Transaction<'_>, states: &[(u128, PendingState)]) -> Result<u128, StoreError> {
    for (id, _) in states {
        let row =
            tx.query_opt("SELECT 1 FROM ledger_transfers WHERE id = $1::text::numeric", &[&id.to_string()])?;
        if row.is_none() {
            return Ok(*id);
        }
    }
    Ok(states.first().map_or(0, |s| s.0))
}
