//! The risk engine's id map: (account, client order id) → entry, as a slab of slots with a free
//! list and an [`IdIndex`] over it.
//!
//! A lookup hashes the key once ([`IdKey::id_hash`]) and returns the slot; every later access to
//! the entry (read it, change it, remove it) is by slot, with no second lookup. Each slot keeps
//! its hash bits, so removal never rehashes the id, and the duplicate window can remove a slot
//! from its (slot, tag) alone without reading it.

use engine::IdIndex;

use crate::id_key::IdKey;

/// One key and its entry. A free slot keeps its last contents; the index never points to it.
struct Slot<V> {
    key: IdKey,
    tag: u32,
    value: V,
}

/// A map from [`IdKey`] to `V` addressed by `u32` slots.
///
/// Bound: slots grow with the working set (the slab and the index grow by doubling, then a
/// freed slot is reused before a new one is made), and slot numbers must stay below
/// `u32::MAX`, which [`IdMap::insert`] asserts. The risk engine keeps its entries to
/// `orders_max` orders, about one pending replace's alias per order and `recent_ids_max`
/// finished ids, far below that.
pub(crate) struct IdMap<V> {
    slots: Vec<Slot<V>>,
    /// Free slots, most recently freed last: reused first, while still in cache.
    free: Vec<u32>,
    /// Grows with the working set (see [`IdIndex`]).
    index: IdIndex<true>,
}

impl<V: Copy> IdMap<V> {
    /// Most slots: `slot + 1` must fit an index entry's low 32 bits.
    const SLOTS_MAX: usize = u32::MAX as usize - 1;

    /// A map with room for `capacity` entries before it first grows.
    pub(crate) fn with_capacity(capacity: usize) -> IdMap<V> {
        let capacity = capacity.min(Self::SLOTS_MAX);
        IdMap {
            slots: Vec::with_capacity(capacity),
            free: Vec::new(),
            index: IdIndex::<true>::with_capacity(capacity),
        }
    }

    /// Entries in the map.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// The slot of `key`, given `hash = key.id_hash()`.
    #[inline]
    pub(crate) fn find(&self, key: &IdKey, hash: u64) -> Option<u32> {
        self.index.find(IdIndex::<true>::tag(hash), |slot| self.slots[slot as usize].key == *key)
    }

    /// The entry in `slot` (a slot [`find`](Self::find) or [`insert`](Self::insert) returned,
    /// not removed since).
    #[inline]
    pub(crate) fn get(&self, slot: u32) -> &V {
        &self.slots[slot as usize].value
    }

    /// The entry in `slot`, to change in place.
    #[inline]
    pub(crate) fn get_mut(&mut self, slot: u32) -> &mut V {
        &mut self.slots[slot as usize].value
    }

    /// Adds `key` (the caller checked it is absent) with `hash = key.id_hash()`; returns its slot.
    #[inline]
    pub(crate) fn insert(&mut self, key: IdKey, hash: u64, value: V) -> u32 {
        debug_assert!(self.find(&key, hash).is_none(), "{key:?} is already in the map");
        let tag = IdIndex::<true>::tag(hash);
        let slot = match self.free.pop() {
            Some(slot) => {
                // Field by field, and the new-slot path out of line: built as a whole `Slot` on
                // the stack, the key was copied in 16-byte moves straddling the 8-byte stores
                // just made, a store-forwarding stall on every new order.
                let s = &mut self.slots[slot as usize];
                s.key = key;
                s.tag = tag;
                s.value = value;
                slot
            }
            None => self.push(key, tag, value),
        };
        self.index.insert(tag, slot);
        slot
    }

    /// A new slot (none is free): only while the map grows to its working set.
    #[cold]
    fn push(&mut self, key: IdKey, tag: u32, value: V) -> u32 {
        assert!(self.slots.len() < Self::SLOTS_MAX, "id map bound of {} slots", Self::SLOTS_MAX);
        self.slots.push(Slot { key, tag, value });
        (self.slots.len() - 1) as u32
    }

    /// Removes the entry in `slot`.
    #[inline]
    pub(crate) fn remove(&mut self, slot: u32) {
        let tag = self.slots[slot as usize].tag;
        self.remove_tagged(slot, tag);
    }

    /// Removes the entry in `slot`, whose hash has `tag` ([`IdIndex::tag`]): without reading the
    /// slot (the duplicate window keeps both, and its oldest slot is usually out of cache).
    #[inline]
    pub(crate) fn remove_tagged(&mut self, slot: u32, tag: u32) {
        debug_assert_eq!(self.slots[slot as usize].tag, tag, "slot {slot}");
        // Freed only if it was indexed: a slot removed twice must not be handed out twice.
        if self.index.remove(tag, slot) {
            self.free.push(slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use engine::AccountId;
    use std::collections::HashMap;

    use engine::ClOrdId;
    use proptest::prelude::*;

    use super::*;

    #[derive(Clone, Copy, Debug)]
    enum Op {
        /// Insert the key with this value, or overwrite its value.
        Put(usize, u64),
        /// Remove the key if present.
        Remove(usize),
    }

    fn op(keys: usize) -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0..keys, any::<u64>()).prop_map(|(k, v)| Op::Put(k, v)),
            2 => (0..keys).prop_map(Op::Remove),
        ]
    }

    /// Keys that collide on purpose: the same id under several accounts, the same account with
    /// ids that differ in one byte or only in a trailing zero, ids of every length up to 32.
    fn keys() -> Vec<IdKey> {
        let mut keys = Vec::new();
        for account in 0..3 {
            for n in 0..24u32 {
                let id = format!("{n:0>width$}", width = 1 + (n as usize * 31 / 23));
                keys.push(IdKey::new(AccountId(account), ClOrdId::from_str(&id).unwrap()));
            }
            keys.push(IdKey::new(AccountId(account), ClOrdId::from_bytes(b"0\0").unwrap()));
        }
        keys
    }

    proptest! {
        // Seeded, so a run is reproducible; a failure prints its case rather than writing a
        // regression file into the source tree.
        #![proptest_config(ProptestConfig {
            cases: 256,
            rng_seed: proptest::test_runner::RngSeed::Fixed(0x1d_3a9),
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// The map against a `HashMap` under random puts and removes, every key looked up after
        /// each step; freed slots are reused, and a reused slot never answers for its old key.
        #[test]
        fn agrees_with_a_hash_map(ops in prop::collection::vec(op(75), 0..600)) {
            let keys = keys();
            let mut map: IdMap<u64> = IdMap::with_capacity(1);
            let mut model: HashMap<IdKey, u64> = HashMap::new();
            let mut slots_high = 0;
            for op in ops {
                match op {
                    Op::Put(k, v) => {
                        let (key, hash) = (keys[k], keys[k].id_hash());
                        match map.find(&key, hash) {
                            Some(slot) => *map.get_mut(slot) = v,
                            None => {
                                map.insert(key, hash, v);
                            }
                        }
                        model.insert(key, v);
                    }
                    Op::Remove(k) => {
                        if let Some(slot) = map.find(&keys[k], keys[k].id_hash()) {
                            map.remove(slot);
                        }
                        model.remove(&keys[k]);
                    }
                }
                prop_assert_eq!(map.len(), model.len());
                slots_high = slots_high.max(model.len());
                prop_assert_eq!(map.slots.len(), slots_high, "a free slot is reused before a new one");
                for key in &keys {
                    let got = map.find(key, key.id_hash()).map(|slot| *map.get(slot));
                    prop_assert_eq!(got, model.get(key).copied(), "{:?}", key);
                }
            }
        }
    }

    #[test]
    fn removal_by_tag_and_slot_reuse() {
        let keys = keys();
        let mut map: IdMap<u32> = IdMap::with_capacity(0);
        let slots: Vec<u32> =
            keys.iter().enumerate().map(|(n, k)| map.insert(*k, k.id_hash(), n as u32)).collect();
        assert_eq!(map.len(), keys.len());
        // Remove every other key by (slot, tag), as the duplicate window does.
        for (n, key) in keys.iter().enumerate().step_by(2) {
            map.remove_tagged(slots[n], IdIndex::<true>::tag(key.id_hash()));
        }
        for (n, key) in keys.iter().enumerate() {
            let want = (n % 2 == 1).then_some(n as u32);
            assert_eq!(map.find(key, key.id_hash()).map(|s| *map.get(s)), want, "{key:?}");
        }
        // The last slot freed is the first reused.
        let last_removed = (keys.len() - 1) / 2 * 2;
        let again = map.insert(keys[0], keys[0].id_hash(), 7);
        assert_eq!(again, slots[last_removed]);
        assert_eq!(map.find(&keys[0], keys[0].id_hash()).map(|s| *map.get(s)), Some(7));
        assert_eq!(map.find(&keys[last_removed], keys[last_removed].id_hash()), None);
    }
}
