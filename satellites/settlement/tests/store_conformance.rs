//! One conformance suite, run against every backend: redb always, PostgreSQL when
//! `SETTLEMENT_PG_URL` is set (`scripts/pg-test.sh` starts a throwaway server and sets it).
//! Each case gets a fresh store (a temp file, or a schema of its own that is dropped after),
//! and "reopen" is a new store over the same file or schema, as after a restart.

use settlement::{
    AccountKind, AnyStore, Asset, Commit, Hold, Ledger, LedgerLimits, PendingState, RecordTable, RecordWrite,
    Rejection, Snapshot, Store, StoreConfig, StoreError, Transfer, TransferKind,
};

/// A place to open the same store again and again.
trait Backend {
    fn open(&self) -> AnyStore;
}

struct Redb {
    dir: tempfile::TempDir,
}

impl Backend for Redb {
    fn open(&self) -> AnyStore {
        AnyStore::open(&StoreConfig::Redb { path: self.dir.path().join("ledger.redb") }).expect("open redb")
    }
}

struct Pg {
    url: String,
    schema: String,
}

impl Backend for Pg {
    fn open(&self) -> AnyStore {
        AnyStore::open(&StoreConfig::Postgres { url: self.url.clone(), schema: self.schema.clone() })
            .expect("open postgres")
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        settlement::PgStore::drop_schema(&self.url, &self.schema).expect("drop test schema");
    }
}

fn redb() -> Redb {
    Redb { dir: tempfile::tempdir().expect("temp dir") }
}

fn pg(case: &str) -> Option<Pg> {
    match std::env::var("SETTLEMENT_PG_URL") {
        Ok(url) if !url.is_empty() => {
            let schema = format!("conformance_{case}_{}", std::process::id());
            // Start clean even if an earlier run was killed before its Drop.
            let _ = settlement::PgStore::drop_schema(&url, &schema);
            Some(Pg { url, schema })
        }
        _ => {
            println!("skipping the PostgreSQL half of {case}: SETTLEMENT_PG_URL is not set (see scripts/pg-test.sh)");
            None
        }
    }
}

fn assets() -> Vec<Asset> {
    vec![Asset { name: "USD".into(), scale: 2 }, Asset { name: "BTC".into(), scale: 8 }]
}

fn restore(store: &mut AnyStore) -> Ledger {
    Ledger::restore(assets(), LedgerLimits::default(), store.load().expect("load")).expect("restore")
}

fn sorted(mut s: Snapshot) -> Snapshot {
    s.accounts.sort_by_key(|a| a.idx);
    s.transfers.sort_by_key(|t| t.transfer.id);
    s.holds.sort_by_key(|h| h.id);
    s.rejections.sort_by_key(|r| r.seq);
    s
}

fn pending(id: u128, debit: settlement::AccountIdx, credit: settlement::AccountIdx, amount: u64) -> Transfer {
    Transfer { kind: TransferKind::Pending { timeout_ns: 0 }, ..Transfer::posted(id, debit, credit, amount) }
}

/// A fresh store is empty with cursor 0.
fn empty(b: &dyn Backend) {
    let mut s = b.open();
    assert_eq!(s.load().unwrap(), Snapshot::default());
    assert_eq!(s.cursor().unwrap(), 0);
}

/// Everything a commit carries comes back after a reopen, and the ledger rebuilt from it has
/// the same balances (restore checks counters against the transfers).
fn round_trip(b: &dyn Backend) {
    let mut l = Ledger::new(assets(), LedgerLimits::default());
    let bank = l.open_account("bank:USD", "USD", AccountKind::System).unwrap();
    let alice = l.open_account("alice", "USD", AccountKind::User).unwrap();
    let bob = l.open_account("bob", "USD", AccountKind::User).unwrap();
    let big = u128::MAX - 7;
    let deposit = Transfer {
        code: 1,
        user_data_64: u64::MAX,
        user_data_32: u32::MAX,
        ..Transfer::posted(big, bank, alice, u64::MAX / 2)
    };
    l.create_transfers(&[deposit, pending(2, alice, bob, 500)], 10).unwrap();
    l.place_hold(Hold { id: big, account: alice, amount: 250, user_data_64: u64::MAX }).unwrap();
    l.record_rejection(Rejection { seq: 6, reason: "seller short of BTC".into() });
    l.set_cursor(7);
    let c = l.take_commit();
    let mut s = b.open();
    s.commit(&c).unwrap();
    drop(s);
    let mut s = b.open();
    let snapshot = sorted(s.load().unwrap());
    assert_eq!(snapshot.cursor, 7);
    assert_eq!(snapshot.rejections, vec![Rejection { seq: 6, reason: "seller short of BTC".into() }]);
    assert_eq!(snapshot.transfers.len(), 2);
    assert_eq!(snapshot.transfers[1].transfer, deposit);
    assert_eq!(snapshot.holds, vec![Hold { id: big, account: alice, amount: 250, user_data_64: u64::MAX }]);
    let back = Ledger::restore(assets(), LedgerLimits::default(), snapshot).unwrap();
    for idx in [bank, alice, bob] {
        assert_eq!(back.balances(idx), l.balances(idx));
    }
    assert_eq!(back.account("alice", back.asset_id("USD").unwrap()), Some(alice));
}

/// Pending transfers keep their state across commits and inside one commit.
fn pending_states(b: &dyn Backend) {
    let mut l = Ledger::new(assets(), LedgerLimits::default());
    let bank = l.open_account("bank", "USD", AccountKind::System).unwrap();
    let a = l.open_account("a", "USD", AccountKind::User).unwrap();
    let p1 = pending(1, bank, a, 100);
    let p2 = pending(2, bank, a, 200);
    let p3 = Transfer { kind: TransferKind::Pending { timeout_ns: 50 }, ..Transfer::posted(3, bank, a, 300) };
    l.create_transfers(&[p1, p2, p3, Transfer::post_of(10, &p1)], 0).unwrap();
    let mut s = b.open();
    s.commit(&l.take_commit()).unwrap();
    l.create_transfers(&[Transfer::void_of(11, &p2)], 1).unwrap();
    assert_eq!(l.expire_pending(60), 1);
    s.commit(&l.take_commit()).unwrap();
    drop(s);
    let mut s = b.open();
    let back = restore(&mut s);
    assert_eq!(back.transfer(1).unwrap().state, Some(PendingState::Posted));
    assert_eq!(back.transfer(2).unwrap().state, Some(PendingState::Voided));
    assert_eq!(back.transfer(3).unwrap().state, Some(PendingState::Expired));
    assert_eq!(back.balances(a).unwrap().posted(), 100);
    assert_eq!(back.balances(a).unwrap().pending(), 0);
}

/// Holds: placed, partly released, released — the store follows.
fn holds(b: &dyn Backend) {
    let mut l = Ledger::new(assets(), LedgerLimits::default());
    let bank = l.open_account("bank", "BTC", AccountKind::System).unwrap();
    let a = l.open_account("a", "BTC", AccountKind::User).unwrap();
    l.create_transfers(&[Transfer::posted(1, bank, a, 1_000)], 0).unwrap();
    l.place_hold(Hold { id: 5, account: a, amount: 600, user_data_64: 0 }).unwrap();
    l.place_hold(Hold { id: 6, account: a, amount: 100, user_data_64: 0 }).unwrap();
    let mut s = b.open();
    s.commit(&l.take_commit()).unwrap();
    l.release_hold(5, Some(200)).unwrap();
    l.release_hold(6, None).unwrap();
    s.commit(&l.take_commit()).unwrap();
    drop(s);
    let back = restore(&mut b.open());
    assert_eq!(back.hold(5), Some(Hold { id: 5, account: a, amount: 400, user_data_64: 0 }));
    assert_eq!(back.hold(6), None);
    assert_eq!(back.balances(a).unwrap().available(), 600);
}

/// A commit the store refuses leaves nothing behind: not its postings, not its cursor.
fn failed_commit_writes_nothing(b: &dyn Backend) {
    let mut l = Ledger::new(assets(), LedgerLimits::default());
    let bank = l.open_account("bank", "USD", AccountKind::System).unwrap();
    let a = l.open_account("a", "USD", AccountKind::User).unwrap();
    l.create_transfers(&[Transfer::posted(1, bank, a, 10)], 0).unwrap();
    l.set_cursor(1);
    let first = l.take_commit();
    let mut s = b.open();
    s.commit(&first).unwrap();
    l.create_transfers(&[Transfer::posted(2, bank, a, 20)], 0).unwrap();
    l.set_cursor(2);
    let mut second = l.take_commit();
    // A stored id again: the ledger and the store disagree, so all of it must be refused.
    second.transfers.push(first.transfers[0]);
    let err = s.commit(&second).unwrap_err();
    assert!(matches!(err, StoreError::DuplicateTransfer(1) | StoreError::Postgres(_)), "{err}");
    drop(s);
    let mut s = b.open();
    assert_eq!(s.cursor().unwrap(), 1);
    let back = restore(&mut s);
    assert!(back.transfer(2).is_none());
    assert_eq!(back.balances(a).unwrap().posted(), 10);
}

/// A state change of a transfer the store never saw is refused, whole.
fn missing_transfer_state_is_refused(b: &dyn Backend) {
    let mut s = b.open();
    let c = Commit { pending_states: vec![(99, PendingState::Posted)], cursor: Some(5), ..Commit::default() };
    assert!(matches!(s.commit(&c), Err(StoreError::MissingTransfer(99))));
    assert_eq!(s.cursor().unwrap(), 0);
}

fn record(table: RecordTable, key: &str, value: Option<&[u8]>) -> RecordWrite {
    RecordWrite { table, key: key.into(), value: value.map(<[u8]>::to_vec) }
}

/// Records (payment records, idempotency keys) come back in key order per table after a
/// reopen; a later write replaces, a delete removes, and within one commit the last wins.
fn records(b: &dyn Backend) {
    let mut s = b.open();
    for t in RecordTable::ALL {
        assert_eq!(s.records(t).unwrap(), vec![]);
    }
    let c = Commit {
        records: vec![
            record(RecordTable::Payments, "00000000000000000002", Some(b"{\"id\":2}")),
            record(RecordTable::Payments, "00000000000000000001", Some(&[0, 255, 1])),
            record(RecordTable::Idempotency, "k", Some(b"first")),
            record(RecordTable::Idempotency, "gone", Some(b"x")),
            record(RecordTable::Idempotency, "gone", None),
        ],
        ..Commit::default()
    };
    s.commit(&c).unwrap();
    drop(s);
    let mut s = b.open();
    assert_eq!(
        s.records(RecordTable::Payments).unwrap(),
        vec![
            ("00000000000000000001".to_string(), vec![0, 255, 1]),
            ("00000000000000000002".to_string(), b"{\"id\":2}".to_vec())
        ]
    );
    assert_eq!(s.records(RecordTable::Idempotency).unwrap(), vec![("k".to_string(), b"first".to_vec())]);
    let c = Commit {
        records: vec![
            record(RecordTable::Idempotency, "k", Some(b"second")),
            record(RecordTable::Payments, "00000000000000000001", None),
        ],
        ..Commit::default()
    };
    s.commit(&c).unwrap();
    assert_eq!(s.records(RecordTable::Idempotency).unwrap(), vec![("k".to_string(), b"second".to_vec())]);
    assert_eq!(s.records(RecordTable::Payments).unwrap().len(), 1);
    // A bad key refuses the whole commit, postings and cursor included.
    let c = Commit {
        records: vec![record(RecordTable::Payments, "a\0b", Some(b"x"))],
        cursor: Some(9),
        ..Commit::default()
    };
    assert!(matches!(s.commit(&c), Err(StoreError::BadRecordKey(_))));
    assert_eq!(s.cursor().unwrap(), 0);
}

/// Records ride in the ledger's transaction: a commit refused for its postings keeps none.
fn records_commit_with_postings(b: &dyn Backend) {
    let mut l = Ledger::new(assets(), LedgerLimits::default());
    let bank = l.open_account("bank", "USD", AccountKind::System).unwrap();
    let a = l.open_account("a", "USD", AccountKind::User).unwrap();
    l.create_transfers(&[Transfer::posted(1, bank, a, 10)], 0).unwrap();
    let mut first = l.take_commit();
    first.records = vec![record(RecordTable::Payments, "1", Some(b"one"))];
    let mut s = b.open();
    s.commit(&first).unwrap();
    l.create_transfers(&[Transfer::posted(2, bank, a, 20)], 0).unwrap();
    let mut second = l.take_commit();
    second.transfers.push(first.transfers[0]);
    second.records = vec![record(RecordTable::Payments, "2", Some(b"two"))];
    assert!(s.commit(&second).is_err());
    drop(s);
    let mut s = b.open();
    assert_eq!(s.records(RecordTable::Payments).unwrap(), vec![("1".to_string(), b"one".to_vec())]);
}

/// Webhook deliveries: enqueued in the transaction of the payment status they announce (a
/// commit refused for its postings keeps neither), then rewritten after each attempt; a key
/// shared with another table is another row.
fn webhook_deliveries(b: &dyn Backend) {
    let mut l = Ledger::new(assets(), LedgerLimits::default());
    let bank = l.open_account("bank", "USD", AccountKind::System).unwrap();
    let a = l.open_account("a", "USD", AccountKind::User).unwrap();
    l.create_transfers(&[Transfer::posted(1, bank, a, 10)], 0).unwrap();
    let mut first = l.take_commit();
    let key = "00000000000000000001";
    first.records = vec![
        record(RecordTable::Payments, key, Some(b"succeeded")),
        record(RecordTable::WebhookDeliveries, key, Some(b"pending, 0 attempts")),
    ];
    let mut s = b.open();
    s.commit(&first).unwrap();
    // A refused commit (a transfer stored twice) enqueues nothing.
    l.create_transfers(&[Transfer::posted(2, bank, a, 20)], 0).unwrap();
    let mut second = l.take_commit();
    second.transfers.push(first.transfers[0]);
    second.records = vec![record(RecordTable::WebhookDeliveries, "00000000000000000002", Some(b"x"))];
    assert!(s.commit(&second).is_err());
    // An attempt rewrites its delivery alone.
    let attempt = Commit {
        records: vec![record(RecordTable::WebhookDeliveries, key, Some(b"pending, 1 attempt, 500"))],
        ..Commit::default()
    };
    s.commit(&attempt).unwrap();
    drop(s);
    let mut s = b.open();
    assert_eq!(
        s.records(RecordTable::WebhookDeliveries).unwrap(),
        vec![(key.to_string(), b"pending, 1 attempt, 500".to_vec())]
    );
    assert_eq!(s.records(RecordTable::Payments).unwrap(), vec![(key.to_string(), b"succeeded".to_vec())]);
    assert_eq!(restore(&mut s).transfer(1).map(|t| t.transfer.amount), Some(10));
}

/// A redb file written before the webhook delivery table existed opens, gains the table empty
/// and keeps what it had (PostgreSQL keeps every record table in one relation: nothing to add).
#[test]
fn a_redb_file_without_the_delivery_table_gains_it() {
    use redb::{ReadableDatabase, TableDefinition};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.redb");
    {
        let mut s = AnyStore::open(&StoreConfig::Redb { path: path.clone() }).unwrap();
        let c =
            Commit { records: vec![record(RecordTable::Payments, "1", Some(b"one"))], ..Commit::default() };
        s.commit(&c).unwrap();
    }
    {
        // Take the table away again, as a file of the previous version has none.
        let db = redb::Database::create(&path).unwrap();
        let tx = db.begin_write().unwrap();
        let table: TableDefinition<&str, &[u8]> = TableDefinition::new("webhook_deliveries");
        assert!(tx.delete_table(table).unwrap());
        tx.commit().unwrap();
        let r = db.begin_read().unwrap();
        assert!(r.open_table(table).is_err(), "the file has no delivery table now");
    }
    let mut s = AnyStore::open(&StoreConfig::Redb { path }).unwrap();
    assert_eq!(s.records(RecordTable::WebhookDeliveries).unwrap(), vec![]);
    assert_eq!(s.records(RecordTable::Payments).unwrap(), vec![("1".to_string(), b"one".to_vec())]);
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod redb_backend {
            $(#[test] fn $case() { super::$case(&super::redb()); })*
        }
        mod postgres_backend {
            $(#[test] fn $case() {
                if let Some(b) = super::pg(stringify!($case)) { super::$case(&b); }
            })*
        }
    };
}

conformance!(
    empty,
    round_trip,
    pending_states,
    holds,
    failed_commit_writes_nothing,
    missing_transfer_state_is_refused,
    records,
    records_commit_with_postings,
    webhook_deliveries
);
