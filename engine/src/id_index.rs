//! The (account, client order id) → slot index: the engine's orders by id, and (exported) the
//! risk engine's id map, one table for both.
//!
//! An open-addressing table of 8-byte entries (slot and 32 bits of the id's hash), linear
//! probing, at most half full (the engine's, at most an eighth). It replaced a `hashbrown::HashTable<u32>`, which needs a control
//! byte group and a bucket (two cache lines) per probe, leaves tombstones when a move re-keys an
//! order (82% of the commands do) and then rehashes in place to clear them. Here a probe reads
//! one line, the stored hash bits let a probe skip other ids without touching their orders, and
//! removal shifts the following entries back (no tombstones, so no rehash, ever). Equality is
//! is the caller's (the engine compares the order's own id in the pool), and each order keeps
//! its hash so removal never rehashes the id.
//!
//! Two sizes, told apart at compile time: the engine's index ([`IdIndex<false>`]) is sized once
//! for the order pool's bound and never grows, so its insert has no growth check; the risk
//! engine's ([`IdIndex<true>`]) starts small and doubles with its working set (sized for its
//! bounds up front it was a sparse table in which every new order touched a cold cache line).
//! The risk crate had a copy of this table; it uses this one now.

use crate::order::OrderPool;
use crate::types::{AccountId, ClOrdId};

/// Hash of an (account, client id) pair: two folded 64×64→128 multiplies over the zero-padded
/// id words, branch-free whatever the id length (ids are at most 32 bytes). Well mixed in every
/// bit; the risk engine keys its own index with it too.
#[inline(always)]
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

/// Index of slots by the hash of their key. Equality is the caller's: [`IdIndex::find`] asks it
/// about each slot whose stored hash bits match.
///
/// An entry is `(tag << 32) | (slot + 1)`, 0 when empty (so the table starts as zeroed pages the
/// OS maps lazily). `tag` is the hash's high 32 bits and also picks the home bucket
/// (`tag & mask`), so growing and removing never need the keys. `GROWS`: whether the table
/// doubles when it would be more than half full (see the module docs).
pub struct IdIndex<const GROWS: bool> {
    entries: Vec<u64>,
    mask: usize,
    /// Slots indexed; kept only when `GROWS` (the fixed index has no use for it).
    len: usize,
}

impl<const GROWS: bool> IdIndex<GROWS> {
    /// Most buckets: the home bucket comes from the 32-bit tag. Slots are below `u32::MAX`
    /// (`slot + 1` must fit the entry's low half), so even a full-size table keeps an empty
    /// bucket and every probe loop ends.
    const BUCKETS_MAX: usize = 1 << 32;
    /// Fewest buckets (one cache line of entries).
    const BUCKETS_MIN: usize = 8;

    /// Buckets per slot of capacity: the table is at most `1 / LOAD_INVERSE_MIN` full.
    ///
    /// The growing index doubles at 1/2. The engine's fixed index is sized for the pool's
    /// bound once, so a book near its bound kept it near 1/2 full too, where linear probing's
    /// clusters run long: lookups, duplicate checks, inserts and backward shifts walk further,
    /// and the branch ending each walk mispredicts about as often as the next bucket is taken.
    /// At most 1/8 full, a walk almost always ends at its first bucket; measured with the
    /// exchange-core mix (82% moves, each one lookup, one duplicate check, one removal and one
    /// insert), 1/8 beat 1/4 and 1/2 at 1k, 100k and 1M resting orders (BENCHMARKS.md). It
    /// costs 64 bytes of (lazily touched) table per order of the bound instead of 16.
    const LOAD_INVERSE_MIN: usize = if GROWS { 2 } else { 8 };

    /// An index with room for `capacity` slots (before it first grows, when it grows):
    /// [`Self::LOAD_INVERSE_MIN`] × `capacity` buckets rounded up to a power of two (so a probe
    /// rarely leaves its cache line). A fixed index must not be given more than `capacity` slots.
    pub fn with_capacity(capacity: usize) -> IdIndex<GROWS> {
        let buckets = capacity
            .saturating_mul(Self::LOAD_INVERSE_MIN)
            .checked_next_power_of_two()
            .unwrap_or(Self::BUCKETS_MAX)
            .clamp(Self::BUCKETS_MIN, Self::BUCKETS_MAX);
        debug_assert!(GROWS || capacity < buckets);
        let entries = vec![0; buckets];
        // Probed at random: huge pages spare a TLB miss per probe in a deep book.
        crate::huge_pages::advise(&entries);
        IdIndex { entries, mask: buckets - 1, len: 0 }
    }

    /// The bits of `hash` the index keeps: its high half.
    #[inline]
    pub fn tag(hash: u64) -> u32 {
        (hash >> 32) as u32
    }

    #[inline]
    fn home(&self, tag: u32) -> usize {
        tag as usize & self.mask
    }

    #[inline]
    fn entry(tag: u32, slot: u32) -> u64 {
        debug_assert!(slot < u32::MAX, "slot {slot} does not fit an entry");
        (u64::from(tag) << 32) | u64::from(slot + 1)
    }

    /// The first slot stored under `tag` for which `is_key` holds.
    #[inline]
    pub fn find(&self, tag: u32, is_key: impl FnMut(u32) -> bool) -> Option<u32> {
        match self.probe(tag, is_key) {
            Probe::Found { slot, .. } => Some(slot),
            Probe::Vacant { .. } => None,
        }
    }

    /// [`IdIndex::find`], telling where the probe ended: the bucket of the slot found, or the
    /// empty bucket an insert under `tag` would take. Both stay valid until the index changes.
    #[inline]
    pub(crate) fn probe(&self, tag: u32, mut is_key: impl FnMut(u32) -> bool) -> Probe {
        let mut i = self.home(tag);
        // Bound: at most every bucket once; at most half of them are full.
        loop {
            let e = self.entries[i];
            if e == 0 {
                return Probe::Vacant { bucket: i };
            }
            if (e >> 32) as u32 == tag {
                let slot = (e as u32).wrapping_sub(1);
                if is_key(slot) {
                    return Probe::Found { bucket: i, slot };
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
            if e >> 32 == u64::from(tag) {
                return Some((e as u32).wrapping_sub(1));
            }
            i = (i + 1) & self.mask;
        }
        None
    }

    /// Adds `slot` under `tag` (the caller checked its key is not indexed); a growing index
    /// first doubles if it would be more than half full.
    #[inline]
    pub fn insert(&mut self, tag: u32, slot: u32) {
        if GROWS {
            if (self.len + 1) * 2 > self.entries.len() && self.entries.len() < Self::BUCKETS_MAX {
                self.grow();
            }
            self.len += 1;
        }
        self.place(Self::entry(tag, slot));
    }

    /// Puts an entry in the first empty bucket from its home.
    #[inline]
    fn place(&mut self, entry: u64) {
        let mut i = self.home((entry >> 32) as u32);
        while self.entries[i] != 0 {
            i = (i + 1) & self.mask;
        }
        self.entries[i] = entry;
    }

    /// Doubles the table, re-placing every entry from its tag alone.
    #[cold]
    fn grow(&mut self) {
        let buckets = self.entries.len() * 2;
        let old = std::mem::replace(&mut self.entries, vec![0; buckets]);
        self.mask = buckets - 1;
        for e in old.into_iter().filter(|&e| e != 0) {
            self.place(e);
        }
    }

    /// Removes `slot`, stored under `tag`; false (and a failed debug assertion) if it was not
    /// indexed.
    #[inline]
    pub fn remove(&mut self, tag: u32, slot: u32) -> bool {
        let want = Self::entry(tag, slot);
        let mut i = self.home(tag);
        loop {
            let e = self.entries[i];
            if e == want {
                break;
            }
            if e == 0 {
                debug_assert!(false, "slot {slot} was not indexed");
                return false;
            }
            i = (i + 1) & self.mask;
        }
        self.remove_at(i);
        true
    }

    /// Removes the entry of `slot` under `tag` from `bucket`, where a [`IdIndex::probe`] found
    /// it with no change to the index since: [`IdIndex::remove`] without probing again.
    #[inline]
    pub(crate) fn remove_found(&mut self, bucket: usize, tag: u32, slot: u32) {
        debug_assert_eq!(
            self.entries[bucket],
            Self::entry(tag, slot),
            "bucket {bucket} does not hold slot {slot}"
        );
        self.remove_at(bucket);
    }

    /// Empties bucket `i` (which holds an entry) and closes the gap.
    #[inline]
    fn remove_at(&mut self, i: usize) {
        if GROWS {
            self.len -= 1;
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
            let home = self.home((e >> 32) as u32);
            if (j.wrapping_sub(home) & self.mask) >= (j.wrapping_sub(hole) & self.mask) {
                self.entries[hole] = e;
                hole = j;
            }
        }
        self.entries[hole] = 0;
    }
}

/// Where an [`IdIndex::probe`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Probe {
    /// The key is indexed: its slot, and the bucket that holds it.
    Found { bucket: usize, slot: u32 },
    /// The key is not indexed; `bucket` is the empty bucket that ended the probe, where an
    /// insert under the same tag would go.
    Vacant { bucket: usize },
}

impl IdIndex<false> {
    /// Adds `slot` under `tag` in `bucket`, the vacancy a [`IdIndex::probe`] for `tag` returned
    /// with no change to the index since: [`IdIndex::insert`] without probing again. Only the
    /// fixed-size index: a growing one may move every entry on insert.
    #[inline]
    pub(crate) fn insert_vacant(&mut self, bucket: usize, tag: u32, slot: u32) {
        debug_assert_eq!(self.entries[bucket], 0, "bucket {bucket} is taken");
        debug_assert!(
            {
                let mut i = self.home(tag);
                while self.entries[i] != 0 {
                    i = (i + 1) & self.mask;
                }
                i == bucket
            },
            "bucket {bucket} is not where a probe for tag {tag} ends"
        );
        self.entries[bucket] = Self::entry(tag, slot);
    }
}

/// The engine's index of live resting and stop orders: its slots are order-pool slots.
pub(crate) type OrderIds = IdIndex<false>;

impl OrderIds {
    /// [`OrderIds::find_order`], telling where the probe ended (see [`IdIndex::probe`]).
    #[inline]
    pub(crate) fn probe_order(
        &self,
        hash: u64,
        account: AccountId,
        id: &ClOrdId,
        orders: &OrderPool,
    ) -> Probe {
        self.probe(Self::tag(hash), |slot| {
            let o = orders.get(slot);
            o.account == account && o.has_cl_ord_id(id)
        })
    }

    /// The slot of the live order with this id, given `hash = id_hash(account, id)`.
    #[inline]
    pub(crate) fn find_order(
        &self,
        hash: u64,
        account: AccountId,
        id: &ClOrdId,
        orders: &OrderPool,
    ) -> Option<u32> {
        self.find(Self::tag(hash), |slot| {
            let o = orders.get(slot);
            o.account == account && o.has_cl_ord_id(id)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{OrderId, SymbolId};

    fn probe_bucket(probe: Probe) -> usize {
        match probe {
            Probe::Found { bucket, .. } | Probe::Vacant { bucket } => bucket,
        }
    }

    #[test]
    fn index_agrees_with_a_map_through_clusters_and_wraparound() {
        use crate::order::Order;
        use crate::types::{OrdType, Price, Side, Tif};
        // 64 orders, hashes forced into a few home buckets near the end of the table so
        // clusters form, wrap around, and removals shift entries back across the end.
        const ORDERS: u32 = 64;
        let mut pool = OrderPool::with_capacity(ORDERS as usize);
        let mut index = OrderIds::with_capacity(ORDERS as usize);
        assert_eq!(index.entries.len(), 512, "at most an eighth full");
        let id = |n: u32| ClOrdId::from_str(&format!("c{n}")).unwrap();
        let hash_of = |n: u32| (u64::from(504 + n % 11) << 32) | u64::from(n);
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
            // Every other step through the probe's buckets (what a replace does), so both ways
            // of inserting and removing meet the same clusters.
            let by_bucket = (x >> 40).is_multiple_of(2);
            let probe = index.probe_order(hash_of(n), AccountId(n % 3), &id(n), &pool);
            if live.contains(&n) {
                assert_eq!(probe, Probe::Found { bucket: probe_bucket(probe), slot: n });
                if by_bucket {
                    index.remove_found(probe_bucket(probe), OrderIds::tag(hash_of(n)), n);
                } else {
                    index.remove(OrderIds::tag(hash_of(n)), n);
                }
                live.remove(&n);
            } else if live.len() < ORDERS as usize {
                assert!(matches!(probe, Probe::Vacant { .. }), "{probe:?}");
                if by_bucket {
                    index.insert_vacant(probe_bucket(probe), OrderIds::tag(hash_of(n)), n);
                } else {
                    index.insert(OrderIds::tag(hash_of(n)), n);
                }
                live.insert(n);
            }
            for m in 0..ORDERS {
                let got = index.find_order(hash_of(m), AccountId(m % 3), &id(m), &pool);
                assert_eq!(got, live.contains(&m).then_some(m), "order {m}");
                // Same hash and id, other account: never found.
                assert_eq!(index.find_order(hash_of(m), AccountId(m % 3 + 1), &id(m), &pool), None);
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

    use proptest::prelude::*;
    use std::collections::HashMap;

    /// Runs `ops` (slot numbers: insert the slot if absent, else remove it) on an index and on
    /// a `HashMap`, with every slot's tag from `tag_of`, and checks every slot's lookup after
    /// each step.
    fn agree(index: &mut IdIndex<true>, slots: u32, tag_of: impl Fn(u32) -> u32, ops: &[u32]) {
        let mut model: HashMap<u32, u32> = HashMap::new();
        for &op in ops {
            let slot = op % slots;
            if model.remove(&slot).is_some() {
                assert!(index.remove(tag_of(slot), slot));
            } else {
                index.insert(tag_of(slot), slot);
                model.insert(slot, tag_of(slot));
            }
            assert_eq!(index.len, model.len());
            assert!(index.len * 2 <= index.entries.len(), "more than half full");
            for s in 0..slots {
                assert_eq!(
                    index.find(tag_of(s), |t| t == s),
                    model.contains_key(&s).then_some(s),
                    "slot {s}"
                );
            }
        }
    }

    #[test]
    fn growing_index_agrees_with_a_map_through_clusters_wraparound_and_growth() {
        // 64 slots, tags forced into a few home buckets near the end of the table so clusters
        // form, wrap around, and removals shift entries back across the end; starting at 8
        // buckets, so the table also grows several times under clustered load.
        let mut index = IdIndex::<true>::with_capacity(0);
        assert_eq!(index.entries.len(), IdIndex::<true>::BUCKETS_MIN);
        let tag_of = |n: u32| 0xffff_fff0 + n % 11;
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let ops: Vec<u32> = (0..20_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u32
            })
            .collect();
        agree(&mut index, 64, tag_of, &ops);
        assert_eq!(index.entries.len(), 128);
        // Equal tags are told apart by the caller's equality only.
        let mut index = IdIndex::<true>::with_capacity(4);
        index.insert(7, 1);
        index.insert(7, 2);
        assert_eq!(index.find(7, |s| s == 2), Some(2));
        assert_eq!(index.find(7, |_| false), None);
        assert!(index.remove(7, 1));
        assert_eq!(index.find(7, |s| s == 2), Some(2));
        assert_eq!(index.find(7, |s| s == 1), None);
    }

    proptest! {
        // Seeded, so a run is reproducible; a failure prints its case rather than writing a
        // regression file into the source tree.
        #![proptest_config(ProptestConfig {
            cases: 256,
            rng_seed: proptest::test_runner::RngSeed::Fixed(0x1d_1de7),
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// Random insert/remove sequences over few or many distinct tags (many collisions or
        /// few), from a small initial table.
        #[test]
        fn growing_index_agrees_with_a_map(
            slots in 1u32..96,
            tags in prop::sample::select(vec![1u32, 3, 17, u32::MAX]),
            spread in any::<u32>(),
            ops in prop::collection::vec(any::<u32>(), 0..400),
        ) {
            let mut index = IdIndex::<true>::with_capacity(2);
            let tag_of = |n: u32| (n % tags).wrapping_mul(spread | 1).rotate_left(n % 5);
            agree(&mut index, slots, tag_of, &ops);
        }
    }
}
