//! The (account, client order id) → slot index of the risk engine's id map.
//!
//! An open-addressing table of 8-byte entries (32 bits of the id's hash and the slot), linear
//! probing, at most half full, backward-shift deletion. The same design as the engine's
//! `id_index` (written again here: the engine keeps its internals private): a probe reads one
//! cache line of entries, the stored hash bits let it skip other ids without touching their
//! slots, and removal shifts the following entries back, so there are no tombstones and never a
//! rehash to clear them. It replaced a `std` `HashMap` whose buckets held the key and the entry
//! (over 100 bytes each): every lookup read a control group and a bucket, and the duplicate
//! window's churn (an insert and a removal per finished order) left tombstones that forced
//! periodic in-place rehashes of the whole table.
//!
//! Unlike the engine's, this index grows (doubling) as the map fills, up to its working set:
//! sized for the configured bounds up front it was a sparse table in which every new order
//! touched a cold cache line.

/// Index of slots by the hash of their key. Equality is the caller's: [`IdIndex::find`] asks it
/// about each slot whose stored hash bits match.
///
/// An entry is `(tag << 32) | (slot + 1)`, 0 when empty. `tag` is the hash's high 32 bits and
/// also picks the home bucket (`tag & mask`), so growing and removing never need the keys.
pub(crate) struct IdIndex {
    entries: Vec<u64>,
    mask: usize,
    len: usize,
}

impl IdIndex {
    /// Most buckets: the home bucket comes from the 32-bit tag. Slots are below `u32::MAX`
    /// (`slot + 1` must fit the entry's low half), so even a full-size table keeps an empty
    /// bucket and every probe loop ends.
    const BUCKETS_MAX: usize = 1 << 32;
    /// Fewest buckets (one cache line of entries).
    const BUCKETS_MIN: usize = 8;

    /// An index with room for `capacity` slots before it first grows: `2 × capacity` buckets
    /// rounded up to a power of two (load at most 1/2, so a probe rarely leaves its line).
    pub(crate) fn with_capacity(capacity: usize) -> IdIndex {
        let buckets = capacity
            .saturating_mul(2)
            .checked_next_power_of_two()
            .unwrap_or(Self::BUCKETS_MAX)
            .clamp(Self::BUCKETS_MIN, Self::BUCKETS_MAX);
        IdIndex { entries: vec![0; buckets], mask: buckets - 1, len: 0 }
    }

    /// The bits of `hash` the index keeps: its high half.
    #[inline]
    pub(crate) fn tag(hash: u64) -> u32 {
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

    /// Slots indexed.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The first slot stored under `tag` for which `is_key` holds.
    #[inline]
    pub(crate) fn find(&self, tag: u32, mut is_key: impl FnMut(u32) -> bool) -> Option<u32> {
        let mut i = self.home(tag);
        // Bound: at most every bucket once; at most half of them are full.
        loop {
            let e = self.entries[i];
            if e == 0 {
                return None;
            }
            if (e >> 32) as u32 == tag {
                let slot = (e as u32).wrapping_sub(1);
                if is_key(slot) {
                    return Some(slot);
                }
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Adds `slot` under `tag` (the caller checked its key is not indexed), growing first if
    /// the table would be more than half full.
    #[inline]
    pub(crate) fn insert(&mut self, tag: u32, slot: u32) {
        if (self.len + 1) * 2 > self.entries.len() && self.entries.len() < Self::BUCKETS_MAX {
            self.grow();
        }
        self.place(Self::entry(tag, slot));
        self.len += 1;
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
    pub(crate) fn remove(&mut self, tag: u32, slot: u32) -> bool {
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
        self.len -= 1;
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
        true
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    /// Runs `ops` (slot numbers: insert the slot if absent, else remove it) on an index and on
    /// a `HashMap`, with every slot's tag from `tag_of`, and checks every slot's lookup after
    /// each step.
    fn agree(index: &mut IdIndex, slots: u32, tag_of: impl Fn(u32) -> u32, ops: &[u32]) {
        let mut model: HashMap<u32, u32> = HashMap::new();
        for &op in ops {
            let slot = op % slots;
            if model.remove(&slot).is_some() {
                assert!(index.remove(tag_of(slot), slot));
            } else {
                index.insert(tag_of(slot), slot);
                model.insert(slot, tag_of(slot));
            }
            assert_eq!(index.len(), model.len());
            assert!(index.len() * 2 <= index.entries.len(), "more than half full");
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
    fn agrees_with_a_map_through_clusters_wraparound_and_growth() {
        // 64 slots, tags forced into a few home buckets near the end of the table so clusters
        // form, wrap around, and removals shift entries back across the end; starting at 8
        // buckets, so the table also grows several times under clustered load.
        let mut index = IdIndex::with_capacity(0);
        assert_eq!(index.entries.len(), IdIndex::BUCKETS_MIN);
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
        let mut index = IdIndex::with_capacity(4);
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
        fn agrees_with_a_map(
            slots in 1u32..96,
            tags in prop::sample::select(vec![1u32, 3, 17, u32::MAX]),
            spread in any::<u32>(),
            ops in prop::collection::vec(any::<u32>(), 0..400),
        ) {
            let mut index = IdIndex::with_capacity(2);
            let tag_of = |n: u32| (n % tags).wrapping_mul(spread | 1).rotate_left(n % 5);
            agree(&mut index, slots, tag_of, &ops);
        }
    }
}
