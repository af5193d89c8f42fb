//! The (account, client order id) → order slot index.
//!
//! A table of bare `u32` slots (4 bytes an entry, so a million live orders fit in ~5 MiB with
//! its control bytes) rather than a map of 37-byte keys: equality is checked against the
//! order's own id in the pool, and each order keeps its hash so removal compares slot numbers
//! only and never rehashes the id. A move with a new client id (the common replace) costs two
//! id hashes instead of four keyed map operations.

use hashbrown::HashTable;

use crate::order::OrderPool;
use crate::types::{AccountId, ClOrdId};

/// Hash of an (account, client id) pair: two folded 64×64→128 multiplies over the zero-padded
/// id words, branch-free whatever the id length (ids are at most 32 bytes).
#[inline]
pub(crate) fn id_hash(account: AccountId, id: &ClOrdId) -> u64 {
    const K0: u64 = 0x243f_6a88_85a3_08d3;
    const K1: u64 = 0x1319_8a2e_0370_7344;
    const K2: u64 = 0xa409_3822_299f_31d0;
    const K3: u64 = 0x082e_fa98_ec4e_6c89;
    #[inline]
    fn fold(a: u64, b: u64) -> u64 {
        let p = u128::from(a) * u128::from(b);
        (p as u64) ^ ((p >> 64) as u64)
    }
    let [w0, w1, w2, w3] = id.words();
    let tag = u64::from(account) | ((id.as_bytes().len() as u64) << 32);
    let h = fold(w0 ^ K0, w1 ^ K1) ^ fold(w2 ^ K2 ^ tag, w3 ^ K3);
    fold(h ^ K1, K2 ^ tag)
}

/// Index of live resting and stop orders by (account, client id).
pub(crate) struct IdIndex {
    table: HashTable<u32>,
}

impl IdIndex {
    /// An index reserved for `capacity` orders, so inserts up to that never reallocate.
    pub(crate) fn with_capacity(capacity: usize) -> IdIndex {
        IdIndex { table: HashTable::with_capacity(capacity) }
    }

    /// The slot of the live order with this id, given `hash = id_hash(account, id)`.
    #[inline]
    pub(crate) fn find(&self, hash: u64, account: AccountId, id: &ClOrdId, orders: &OrderPool) -> Option<u32> {
        self.table
            .find(hash, |&slot| orders.get(slot).account == account && orders.cl_ord_id_ref(slot) == id)
            .copied()
    }

    /// Adds `slot`, whose order stores `hash` (the caller checked the id is not present).
    #[inline]
    pub(crate) fn insert(&mut self, hash: u64, slot: u32, orders: &OrderPool) {
        self.table.insert_unique(hash, slot, |&s| orders.get(s).id_hash);
    }

    /// Removes `slot`, stored under `hash`.
    #[inline]
    pub(crate) fn remove(&mut self, hash: u64, slot: u32) {
        match self.table.find_entry(hash, |&s| s == slot) {
            Ok(entry) => {
                entry.remove();
            }
            Err(_) => debug_assert!(false, "slot {slot} was not indexed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_separates_accounts_lengths_and_bytes() {
        let id = |s: &str| ClOrdId::from_str(s).unwrap();
        let mut seen = std::collections::HashSet::new();
        for account in 0..50u32 {
            for n in 0..200 {
                assert!(seen.insert(id_hash(account, &id(&format!("o{n}")))));
            }
        }
        // A trailing zero byte is part of the id, not padding.
        assert_ne!(id_hash(1, &id("a")), id_hash(1, &ClOrdId::from_bytes(b"a\0").unwrap()));
    }
}
