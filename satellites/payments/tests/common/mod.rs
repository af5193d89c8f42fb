//! Shared by the tests: a settlement over redb (always) or PostgreSQL (when
//! `SETTLEMENT_PG_URL` is set), with alice, bob and carol in USD (cents) and BTC (satoshi).
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use payments::connector::{Connector, RailCall, RailError, RailOutcome, RailStatus};
use settlement::{AnyStore, Asset, Settlement, SettlementConfig, StoreConfig};

/// Where a test's ledger lives; removes it when dropped.
pub enum Place {
    /// A temp dir with the redb file.
    Redb(tempfile::TempDir),
    /// A schema of its own, dropped after.
    Pg {
        /// Server.
        url: String,
        /// Schema.
        schema: String,
    },
}

impl Drop for Place {
    fn drop(&mut self) {
        if let Place::Pg { url, schema } = self {
            settlement::PgStore::drop_schema(url, schema).expect("drop test schema");
        }
    }
}

impl Place {
    /// Every backend available: redb, and PostgreSQL when configured.
    pub fn all(case: &str) -> Vec<Place> {
        let mut v = vec![Place::Redb(tempfile::tempdir().expect("temp dir"))];
        if let Ok(url) = std::env::var("SETTLEMENT_PG_URL") {
            let schema = format!("payments_{case}_{}", std::process::id());
            let _ = settlement::PgStore::drop_schema(&url, &schema);
            v.push(Place::Pg { url, schema });
        }
        v
    }

    /// The store config.
    pub fn store(&self) -> StoreConfig {
        match self {
            Place::Redb(dir) => StoreConfig::Redb { path: dir.path().join("ledger.redb") },
            Place::Pg { url, schema } => StoreConfig::Postgres { url: url.clone(), schema: schema.clone() },
        }
    }

    /// Opens the settlement over it.
    pub fn open(&self) -> Settlement<AnyStore> {
        let store = AnyStore::open(&self.store()).expect("open store");
        Settlement::open(&config(), store, &accounts(), &[]).expect("open settlement")
    }
}

/// The venue accounts.
pub fn accounts() -> Vec<String> {
    ["alice", "bob", "carol"].iter().map(|s| s.to_string()).collect()
}

/// USD and BTC, no symbols (payments need none).
pub fn config() -> SettlementConfig {
    SettlementConfig {
        store: Default::default(),
        limits: Default::default(),
        fee_owner: "venue:fees".into(),
        cutoff_utc: "16:00".into(),
        holidays: vec![],
        assets: vec![Asset { name: "USD".into(), scale: 2 }, Asset { name: "BTC".into(), scale: 8 }],
        symbols: vec![],
    }
}

/// Rails that answer from a script (then approve), counting calls: the tests' way to choose
/// outcomes one by one, where the seeded simulator chooses them at random.
#[derive(Clone, Default)]
pub struct Scripted {
    /// Outcomes still to give, first first.
    pub script: Arc<Mutex<Vec<Result<RailOutcome, RailError>>>>,
    /// Calls made.
    pub calls: Arc<Mutex<u32>>,
}

impl Connector for Scripted {
    fn execute(&self, call: &RailCall<'_>, _timeout_ms: u64) -> Result<RailOutcome, RailError> {
        *self.calls.lock().unwrap() += 1;
        let mut s = self.script.lock().unwrap();
        if s.is_empty() {
            Ok(RailOutcome::Approved(format!("ok-{}", call.payment_id)))
        } else {
            s.remove(0)
        }
    }

    /// Scripted rails keep no books: a cut-off payment is unknown to them (and so failed).
    fn status(&self, _call: &RailCall<'_>, _timeout_ms: u64) -> Result<RailStatus, RailError> {
        Ok(RailStatus::Unknown)
    }
}

/// Available balance of (owner, asset).
pub fn available(s: &Settlement<AnyStore>, owner: &str, asset: &str) -> i128 {
    let l = s.ledger();
    let a = l.asset_id(asset).unwrap();
    l.balances(l.account(owner, a).unwrap()).unwrap().available()
}

/// Sum of posted balances of an asset over all accounts (zero when the ledger balances).
pub fn posted_sum(s: &Settlement<AnyStore>, asset: &str) -> i128 {
    let l = s.ledger();
    let a = l.asset_id(asset).unwrap();
    (0..l.account_count())
        .filter_map(|i| {
            let idx = settlement::AccountIdx(i);
            l.account_info(idx).filter(|(_, asset, _)| *asset == a).and_then(|_| l.balances(idx))
        })
        .map(|b| b.posted() + b.pending())
        .sum()
}
