//! Buying power for the pre-trade check: each venue account's available amount per asset,
//! published by the follower after every durable commit and read lock-free by the risk
//! thread (one atomic load per check; no lock, no allocation, no store access).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use engine::AccountId;

use crate::asset::AssetId;

/// Available minor units per (venue account, asset), as of the last commit.
///
/// Values are what the ledger holds durably: a commit is published only after the store
/// wrote it, so a check never spends funds that a crash could take back. The follower is
/// behind the engine by the journal's lag; the risk check must add its own reservations for
/// orders it passed that the follower has not seen yet.
#[derive(Debug)]
pub struct BuyingPower {
    assets: Vec<String>,
    cells: Box<[AtomicI64]>,
    /// Last event seq the published values include.
    cursor: AtomicU64,
}

impl BuyingPower {
    pub(crate) fn new(accounts: usize, assets: Vec<String>) -> BuyingPower {
        let cells = (0..accounts * assets.len()).map(|_| AtomicI64::new(0)).collect();
        BuyingPower { assets, cells, cursor: AtomicU64::new(0) }
    }

    /// Id of an asset by name (resolve once, at configuration time).
    pub fn asset_id(&self, name: &str) -> Option<AssetId> {
        self.assets.iter().position(|a| a == name).map(|i| AssetId(i as u16))
    }

    /// What `account` may spend of `asset` (posted − pending debits − holds), in the asset's
    /// minor units; `None` for an account or asset the ledger does not know. Saturates at
    /// `i64::MAX`, which no check needs to tell apart from more.
    #[inline]
    pub fn available(&self, account: AccountId, asset: AssetId) -> Option<i64> {
        let cell = account.index().checked_mul(self.assets.len())? + asset.0 as usize;
        if asset.0 as usize >= self.assets.len() {
            return None;
        }
        self.cells.get(cell).map(|c| c.load(Ordering::Acquire))
    }

    /// The last event seq whose effects the values include: a pre-trade check keeps its own
    /// reservation of an order until the follower's cursor passes the order's events.
    #[inline]
    pub fn cursor(&self) -> u64 {
        self.cursor.load(Ordering::Acquire)
    }

    /// Asset names, ids in order.
    pub fn assets(&self) -> &[String] {
        &self.assets
    }

    pub(crate) fn publish_cursor(&self, seq: u64) {
        self.cursor.store(seq, Ordering::Release);
    }

    pub(crate) fn publish(&self, cell: usize, available: i128) {
        let clamped = available.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
        self.cells[cell].store(clamped, Ordering::Release);
    }
}
