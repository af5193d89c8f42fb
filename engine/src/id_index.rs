//! The (account, client order id) → order slot index.
//!
//! An open-addressing table of 8-byte entries (slot and 32 bits of the id's hash), linear
//! probing, at most half full. It replaced a `hashbrown::HashTable<u32>`, which needs a control
//! byte group and a bucket (two cache lines) per probe, leaves tombstones when a move re-keys an
//! order (82% of the commands do) and then rehashes in place to clear them. Here a probe reads
//! one line, the stored hash bits let a probe skip other ids without touching their orders, and
//! removal shifts the following entries back (no tombstones, so no rehash, ever). Equality is
//! checked against the order's own id in the pool, and each order keeps its hash so removal
//! never rehashes the id.

use crate::order::OrderPool;
use crate::types::{AccountId, ClOrdId};

/// Hash of an (account, client id) pair: two folded 64×64→128 multiplies over the zero-padded
/// id words, branch-free whatever the id length (ids are at most 32 bytes). Well mixed in every
/// bit; the risk engine keys its own index with it too.
#[inline]
pub fn id_hash(account: AccountId, id: &ClOrdId) -> u64 {
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
    let tag = u64::from(account.0) | ((id.as_bytes().len() as u64) << 32);
    let h = fold(w0 ^ K0, w1 ^ K1) ^ fold(w2 ^ K2 ^ tag, w3 ^ K3);
    fold(h ^ K1, K2 ^ tag)
}

/// Index of live resting and stop orders by (account, client id).
///
/// An entry is `(tag << 32) | (slot + 1)`, 0 when empty (so the table starts as zeroed pages the
/// OS maps lazily). `tag` is the hash's high 32 bits and also picks the home bucket
/// (`tag & mask`), which is why a removal can shift entries without reading their orders.
pub(crate) struct IdIndex {
    entries: Vec<u64>,
    mask: usize,
}

impl IdIndex {
    /// Most buckets: the home bucket comes from the 32-bit tag. With up to `u32::MAX - 1` orders
    /// (the pool's bound) at least one bucket stays empty, so every probe loop ends.
    const BUCKETS_MAX: usize = 1 << 32;

    /// An index for `capacity` orders: `2 * capacity` buckets rounded up to a power of two (load
    /// at most 1/2, so a probe rarely leaves its cache line), allocated once, never grown.
    pub(crate) fn with_capacity(capacity: usize) -> IdIndex {
        let buckets = capacity.max(1).saturating_mul(2).next_power_of_two().min(Self::BUCKETS_MAX);
        debug_assert!(capacity < buckets);
        let entries = vec![0; buckets];
        // Probed at random: huge pages spare a TLB miss per probe in a deep book.
        crate::huge_pages::advise(&entries);
        IdIndex { entries, mask: buckets - 1 }
    }

    #[inline]
    fn tag(hash: u64) -> u64 {
        hash >> 32
    }

    #[inline]
    fn home(&self, tag: u64) -> usize {
        tag as usize & self.mask
    }

    /// The slot of the live order with this id, given `hash = id_hash(account, id)`.
    #[inline]
    pub(crate) fn find(
        &self,
        hash: u64,
        account: AccountId,
        id: &ClOrdId,
        orders: &OrderPool,
    ) -> Option<u32> {
        let tag = Self::tag(hash);
        let mut i = self.home(tag);
        // Bound: at most every bucket once; an empty bucket always exists (see BUCKETS_MAX).
        loop {
            let e = self.entries[i];
            if e == 0 {
                return None;
            }
            if e >> 32 == tag {
                let slot = (e as u32).wrapping_sub(1);
                if orders.get(slot).account == account && orders.cl_ord_id_ref(slot) == id {
                    return Some(slot);
                }
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Prefetches the bucket a probe for `hash` starts at and the one after it (see `batch.rs`):
    /// a removal's backward shift and an insert's probe read on past the home bucket, into the
    /// next line when it is the last of its line.
    #[inline]
    pub(crate) fn prefetch_home(&self, hash: u64) {
        let home = self.home(Self::tag(hash));
        crate::batch::prefetch(&self.entries[home]);
        crate::batch::prefetch(&self.entries[(home + 1) & self.mask]);
    }

    /// The first slot stored under `hash`'s tag within a short probe, without checking the
    /// id: a guess for prefetching, right unless two ids share the 32-bit tag.
    #[inline]
    pub(crate) fn candidate(&self, hash: u64) -> Option<u32> {
        /// Buckets looked at: at load ≤ 1/2 almost every probe ends within them.
        const PROBE_GUESS_MAX: usize = 4;
        let tag = Self::tag(hash);
        let mut i = self.home(tag);
        for _ in 0..PROBE_GUESS_MAX {
            let e = self.entries[i];
            if e == 0 {
                return None;
            }
            if e >> 32 == tag {
                return Some((e as u32).wrapping_sub(1));
            }
            i = (i + 1) & self.mask;
        }
        None
    }

    /// Adds `slot`, whose order stores `hash` (the caller checked the id is not present).
    #[inline]
    pub(crate) fn insert(&mut self, hash: u64, slot: u32) {
        let tag = Self::tag(hash);
        let mut i = self.home(tag);
        while self.entries[i] != 0 {
            i = (i + 1) & self.mask;
        }
        self.entries[i] = (tag << 32) | u64::from(slot + 1);
    }

    /// Removes `slot`, stored under `hash`.
    #[inline]
    pub(crate) fn remove(&mut self, hash: u64, slot: u32) {
        let want = (Self::tag(hash) << 32) | u64::from(slot + 1);
        let mut i = self.home(Self::tag(hash));
        loop {
            let e = self.entries[i];
            if e == want {
                break;
            }
            if e == 0 {
                debug_assert!(false, "slot {slot} was not indexed");
                return;
            }
            i = (i + 1) & self.mask;
        }
        // Backward-shift deletion: move each following entry of the cluster into the hole
        // unless the hole lies before its home bucket (it would become unreachable).
        let mut hole = i;
        let mut j = i;
        loop {
            j = (j + 1) & self.mask;
            let e = self.entries[j];
            if e == 0 {
                break;
            }
            let home = self.home(e >> 32);
            if (j.wrapping_sub(home) & self.mask) >= (j.wrapping_sub(hole) & self.mask) {
                self.entries[hole] = e;
                hole = j;
            }
        }
        self.entries[hole] = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{OrderId, SymbolId};

    #[test]
    fn index_agrees_with_a_map_through_clusters_and_wraparound() {
        use crate::order::Order;
        use crate::types::{OrdType, Price, Side, Tif};
        // 64 orders in 128 buckets, hashes forced into a few home buckets near the end of the
        // table so clusters form, wrap around, and removals shift entries back across the end.
        const ORDERS: u32 = 64;
        let mut pool = OrderPool::with_capacity(ORDERS as usize);
        let mut index = IdIndex::with_capacity(ORDERS as usize);
        let id = |n: u32| ClOrdId::from_str(&format!("c{n}")).unwrap();
        let hash_of = |n: u32| (u64::from(120 + n % 11) << 32) | u64::from(n);
        for n in 0..ORDERS {
            let order = Order::new(
                OrderId(u64::from(n)),
                AccountId(n % 3),
                SymbolId(0),
                Side::Buy,
                OrdType::Limit,
                Tif::Gtc,
                Price(1),
                1,
            );
            assert_eq!(pool.alloc(order, id(n)), n);
        }
        let mut live = std::collections::HashSet::new();
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let n = (x % u64::from(ORDERS)) as u32;
            if live.contains(&n) {
                index.remove(hash_of(n), n);
                live.remove(&n);
            } else if live.len() < ORDERS as usize {
                index.insert(hash_of(n), n);
                live.insert(n);
            }
            for m in 0..ORDERS {
                let got = index.find(hash_of(m), AccountId(m % 3), &id(m), &pool);
                assert_eq!(got, live.contains(&m).then_some(m), "order {m}");
                // Same hash and id, other account: never found.
                assert_eq!(index.find(hash_of(m), AccountId(m % 3 + 1), &id(m), &pool), None);
            }
        }
    }

    #[test]
    fn hash_separates_accounts_lengths_and_bytes() {
        let id = |s: &str| ClOrdId::from_str(s).unwrap();
        let mut seen = std::collections::HashSet::new();
        for account in 0..50u32 {
            for n in 0..200 {
                assert!(seen.insert(id_hash(AccountId(account), &id(&format!("o{n}")))));
            }
        }
        // A trailing zero byte is part of the id, not padding.
        assert_ne!(
            id_hash(AccountId(1), &id("a")),
            id_hash(AccountId(1), &ClOrdId::from_bytes(b"a\0").unwrap())
        );
    }
}
