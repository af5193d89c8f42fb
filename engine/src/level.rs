//! Price levels: a FIFO queue of order slots per price, and the per-side ladder of levels.
//!
//! A [`Ladder`] keeps its levels in a sorted array with the best price at the end, so the hot
//! operations (look at the best level, drop an emptied best level, add near the top) touch the
//! tail of the array: O(1) or a short memmove. A level far from the top costs a binary search
//! and a memmove of the levels better than it; books concentrate near the top, which is why this
//! beats a tree here (measured in BENCHMARKS.md).

use crate::order::NIL;
use crate::types::{Price, Side};

/// One price level: a doubly linked FIFO of order slots.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Level {
    pub(crate) price: Price,
    pub(crate) head: u32,
    pub(crate) tail: u32,
    pub(crate) count: u32,
}

/// Fixed-capacity pool of levels.
pub(crate) struct LevelPool {
    levels: Vec<Level>,
    free: Vec<u32>,
    capacity: usize,
}

impl LevelPool {
    pub(crate) fn with_capacity(capacity: usize) -> LevelPool {
        LevelPool { levels: Vec::with_capacity(capacity), free: Vec::with_capacity(capacity), capacity }
    }

    #[inline]
    pub(crate) fn is_full(&self) -> bool {
        self.free.is_empty() && self.levels.len() == self.capacity
    }

    /// A new empty level at `price` (caller checked `!is_full()`).
    #[inline]
    pub(crate) fn alloc(&mut self, price: Price) -> u32 {
        let level = Level { price, head: NIL, tail: NIL, count: 0 };
        if let Some(slot) = self.free.pop() {
            self.levels[slot as usize] = level;
            slot
        } else {
            debug_assert!(self.levels.len() < self.capacity);
            self.levels.push(level);
            (self.levels.len() - 1) as u32
        }
    }

    #[inline]
    pub(crate) fn free(&mut self, slot: u32) {
        debug_assert_eq!(self.levels[slot as usize].count, 0);
        self.free.push(slot);
    }

    /// The level in `slot` if the slot was ever used; for guesses that may be stale.
    #[inline]
    pub(crate) fn try_get(&self, slot: u32) -> Option<&Level> {
        self.levels.get(slot as usize)
    }

    /// Prefetches the level in `slot`, if the slot was ever used.
    #[inline]
    pub(crate) fn prefetch(&self, slot: u32) {
        if let Some(level) = self.levels.get(slot as usize) {
            crate::batch::prefetch(level);
        }
    }

    // Unchecked like the order pool's accessors: every level slot the engine holds (in a
    // ladder, in a resting order's `level`) came from `alloc`, below `levels.len()`, which never
    // shrinks; the debug assertion checks it in the tests.

    #[inline]
    pub(crate) fn get(&self, slot: u32) -> &Level {
        debug_assert!((slot as usize) < self.levels.len(), "level slot {slot} out of range");
        // SAFETY: `slot < levels.len()`, see the comment above.
        unsafe { self.levels.get_unchecked(slot as usize) }
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, slot: u32) -> &mut Level {
        debug_assert!((slot as usize) < self.levels.len(), "level slot {slot} out of range");
        // SAFETY: `slot < levels.len()`, see the comment above.
        unsafe { self.levels.get_unchecked_mut(slot as usize) }
    }
}

/// The levels of one side of one book, best last.
///
/// `keys` is ascending: the price for bids, the negated price for asks, so that "best" is always
/// the last element for both sides. Keys and level slots are parallel arrays so the scans touch
/// only the 8-byte keys.
///
/// Lookup by price goes through `index`, a direct-mapped table keyed by the price's low bits:
/// prices are integer ticks and a book's levels sit in a band of consecutive ticks, so while the
/// band is narrower than the table no two live levels share a bucket and a lookup is one probe.
/// It replaced a linear scan of the top levels plus a binary search (about 10% of a move at 1k
/// resting orders, a third of `execute` at 100k). A bucket counts the live levels that map to
/// it, so a collision (a band wider than the table, or far-apart prices) is detected and falls
/// back to the binary search: always correct, only slower.
pub(crate) struct Ladder {
    side: Side,
    keys: Vec<i64>,
    levels: Vec<u32>,
    /// Power-of-two table, at least twice the number of levels once past its initial size.
    index: Vec<IndexBucket>,
    len_max: usize,
}

/// One bucket of [`Ladder::index`].
#[derive(Clone, Copy, Debug)]
struct IndexBucket {
    /// Price of the level in `level` (meaningless when `level == NIL`).
    price: Price,
    /// The level slot held here, or `NIL`.
    level: u32,
    /// Live levels whose price maps to this bucket (the held one included). More than the held
    /// one means a lookup that misses here must search the sorted keys.
    count: u32,
}

impl IndexBucket {
    const EMPTY: IndexBucket = IndexBucket { price: Price(0), level: NIL, count: 0 };
}

/// How many levels from the top a position search scans linearly before it falls back to binary
/// search: most levels are created and removed within a few ticks of the best price.
const LINEAR_SCAN_LEVELS: usize = 8;

impl Ladder {
    /// Initial reservation; the ladder grows (amortised, during warm-up) up to `len_max`.
    const INITIAL_LEVELS: usize = 64;

    pub(crate) fn new(side: Side, len_max: usize) -> Ladder {
        let initial = len_max.min(Self::INITIAL_LEVELS);
        Ladder {
            side,
            keys: Vec::with_capacity(initial),
            levels: Vec::with_capacity(initial),
            index: vec![IndexBucket::EMPTY; Self::index_len_for(initial)],
            len_max,
        }
    }

    /// Index size for `levels` live levels: the power of two at least twice as large, so a
    /// contiguous band of levels never collides. Bounded by `2 * len_max` rounded up.
    fn index_len_for(levels: usize) -> usize {
        levels.max(1).saturating_mul(2).next_power_of_two()
    }

    #[inline]
    fn key(&self, price: Price) -> i64 {
        match self.side {
            Side::Buy => price.0,
            Side::Sell => -price.0,
        }
    }

    #[inline]
    fn price_of_key(&self, key: i64) -> Price {
        match self.side {
            Side::Buy => Price(key),
            Side::Sell => Price(-key),
        }
    }

    #[inline]
    fn bucket(&self, price: Price) -> usize {
        // Two's complement low bits: any i64 maps into the table.
        (price.0 as u64 as usize) & (self.index.len() - 1)
    }

    /// True when another level cannot be added.
    #[inline]
    pub(crate) fn is_full(&self) -> bool {
        self.keys.len() >= self.len_max
    }

    /// The best level: its price and slot.
    #[inline]
    pub(crate) fn best(&self) -> Option<(Price, u32)> {
        let last = self.keys.len().checked_sub(1)?;
        Some((self.price_of_key(self.keys[last]), self.levels[last]))
    }

    /// True when the best level is at `price` or better than it for this side (at or above it
    /// for bids, at or below for asks); false when the side is empty. Compared as keys, so the
    /// side costs no branch: a branch on a moved order's side mispredicts half the time.
    #[inline]
    pub(crate) fn best_reaches(&self, price: Price) -> bool {
        self.keys.last().is_some_and(|&best| best >= self.key(price))
    }

    /// The level at `i` positions from the best (0 = best).
    #[inline]
    pub(crate) fn nth_from_best(&self, i: usize) -> Option<(Price, u32)> {
        let idx = self.keys.len().checked_sub(1 + i)?;
        Some((self.price_of_key(self.keys[idx]), self.levels[idx]))
    }

    /// Position of `price` in `keys`: `Ok(index)` if present, `Err(insert_index)` otherwise.
    #[inline]
    fn search(&self, price: Price) -> Result<usize, usize> {
        let key = self.key(price);
        let len = self.keys.len();
        // Scan down from the best: keys are ascending, so walk while the key is below ours.
        let scan_end = len.saturating_sub(LINEAR_SCAN_LEVELS);
        let mut i = len;
        while i > scan_end {
            let k = self.keys[i - 1];
            if k == key {
                return Ok(i - 1);
            }
            if k < key {
                return Err(i);
            }
            i -= 1;
        }
        self.keys[..scan_end].binary_search(&key)
    }

    /// Prefetches the price-index bucket a [`Ladder::find`] of `price` reads first.
    #[inline]
    pub(crate) fn prefetch_index(&self, price: Price) {
        crate::batch::prefetch(&self.index[self.bucket(price)]);
    }

    /// The level slot at `price`, if the level exists.
    #[inline]
    pub(crate) fn find(&self, price: Price) -> Option<u32> {
        let b = self.index[self.bucket(price)];
        if b.level != NIL && b.price == price {
            return Some(b.level);
        }
        let held = u32::from(b.level != NIL);
        if b.count <= held {
            // Every level mapping here is the held one (or none): the price has no level.
            return None;
        }
        self.find_colliding(price)
    }

    /// `find` for a bucket shared by several levels: the sorted keys decide.
    #[cold]
    #[inline(never)]
    fn find_colliding(&self, price: Price) -> Option<u32> {
        self.search(price).ok().map(|i| self.levels[i])
    }

    /// Inserts a level (caller checked the price is absent and the ladder is not full).
    #[inline]
    pub(crate) fn insert(&mut self, price: Price, level: u32) {
        debug_assert!(!self.is_full());
        match self.search(price) {
            Ok(_) => unreachable!("level at {price:?} already exists"),
            Err(i) => {
                let key = self.key(price);
                self.keys.insert(i, key);
                self.levels.insert(i, level);
            }
        }
        if self.keys.len() * 2 > self.index.len() {
            self.grow_index();
        } else {
            self.index_add(price, level);
        }
    }

    fn index_add(&mut self, price: Price, level: u32) {
        let b = self.bucket(price);
        let bucket = &mut self.index[b];
        bucket.count += 1;
        if bucket.level == NIL {
            bucket.level = level;
            bucket.price = price;
        }
    }

    /// Doubles the index (amortised, while the ladder grows towards `len_max` in warm-up) and
    /// re-adds every level.
    #[cold]
    #[inline(never)]
    fn grow_index(&mut self) {
        let len = Self::index_len_for(self.keys.len());
        self.index.clear();
        self.index.resize(len, IndexBucket::EMPTY);
        for i in 0..self.keys.len() {
            self.index_add(self.price_of_key(self.keys[i]), self.levels[i]);
        }
    }

    /// Removes the level at `price` (it must exist).
    #[inline]
    pub(crate) fn remove(&mut self, price: Price) {
        let i = self.search(price).expect("removing a level that is not in the ladder");
        self.keys.remove(i);
        self.levels.remove(i);
        let b = self.bucket(price);
        let bucket = &mut self.index[b];
        debug_assert!(bucket.count > 0);
        bucket.count -= 1;
        if bucket.level != NIL && bucket.price == price {
            // Another level mapping here (if any) stays reachable through the sorted keys.
            bucket.level = NIL;
        }
    }

    /// Level slots, best first.
    pub(crate) fn iter_best_first(&self) -> impl Iterator<Item = (Price, u32)> + '_ {
        self.keys.iter().zip(self.levels.iter()).rev().map(|(&k, &l)| (self.price_of_key(k), l))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ladder_keeps_best_last_for_both_sides() {
        let mut bids = Ladder::new(Side::Buy, 100);
        let mut asks = Ladder::new(Side::Sell, 100);
        for (i, p) in [100, 98, 102, 99, 101].into_iter().enumerate() {
            bids.insert(Price(p), i as u32);
            asks.insert(Price(p), i as u32);
        }
        assert_eq!(bids.best(), Some((Price(102), 2)));
        assert_eq!(asks.best(), Some((Price(98), 1)));
        let bid_prices: Vec<i64> = bids.iter_best_first().map(|(p, _)| p.0).collect();
        assert_eq!(bid_prices, vec![102, 101, 100, 99, 98]);
        let ask_prices: Vec<i64> = asks.iter_best_first().map(|(p, _)| p.0).collect();
        assert_eq!(ask_prices, vec![98, 99, 100, 101, 102]);
        assert_eq!(bids.find(Price(99)), Some(3));
        assert_eq!(bids.find(Price(97)), None);
        bids.remove(Price(102));
        assert_eq!(bids.best(), Some((Price(101), 4)));
    }

    #[test]
    fn best_reaches_agrees_with_limit_crosses_on_both_sides() {
        use crate::book::limit_crosses;
        for side in [Side::Buy, Side::Sell] {
            let mut ladder = Ladder::new(side, 100);
            assert!(!ladder.best_reaches(Price(1)), "an empty side reaches nothing");
            ladder.insert(Price(100), 0);
            ladder.insert(Price(if side == Side::Buy { 90 } else { 110 }), 1);
            // An order of the other side at `p` crosses exactly when this side's best reaches it.
            for p in 80..=120 {
                let want = limit_crosses(side.opposite(), Price(p), Price(100));
                assert_eq!(ladder.best_reaches(Price(p)), want, "{side:?} best 100, price {p}");
            }
        }
    }

    #[test]
    fn ladder_index_handles_colliding_prices() {
        // Prices 128 apart share a bucket of the initial 128-bucket index.
        for side in [Side::Buy, Side::Sell] {
            let mut ladder = Ladder::new(side, 1000);
            let prices = [1000, 1128, 1256, 1001, 872];
            for (i, &p) in prices.iter().enumerate() {
                ladder.insert(Price(p), i as u32);
            }
            for (i, &p) in prices.iter().enumerate() {
                assert_eq!(ladder.find(Price(p)), Some(i as u32), "{side:?} {p}");
            }
            assert_eq!(ladder.find(Price(1384)), None);
            assert_eq!(ladder.find(Price(1002)), None);
            // Remove the held level of a shared bucket: the others must stay reachable.
            ladder.remove(Price(1000));
            assert_eq!(ladder.find(Price(1000)), None);
            assert_eq!(ladder.find(Price(1128)), Some(1));
            assert_eq!(ladder.find(Price(1256)), Some(2));
            assert_eq!(ladder.find(Price(872)), Some(4));
            ladder.remove(Price(1128));
            ladder.remove(Price(872));
            assert_eq!(ladder.find(Price(1256)), Some(2));
            ladder.insert(Price(1000), 7);
            assert_eq!(ladder.find(Price(1000)), Some(7));
            assert_eq!(ladder.find(Price(1256)), Some(2));
        }
    }

    #[test]
    fn ladder_index_grows_and_agrees_with_the_keys() {
        // Random inserts and removes over a band wider than the index at first: every lookup
        // must agree with a plain set, through growth and collisions.
        let mut ladder = Ladder::new(Side::Sell, 4096);
        let mut live = std::collections::BTreeMap::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for step in 0..20_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let p = Price(500 + (x % 3000) as i64);
            match live.get(&p) {
                Some(_) if x & 1 == 0 => {
                    ladder.remove(p);
                    live.remove(&p);
                }
                Some(_) => {}
                None => {
                    ladder.insert(p, step);
                    live.insert(p, step);
                }
            }
            let q = Price(500 + ((x >> 20) % 3000) as i64);
            assert_eq!(ladder.find(q), live.get(&q).copied(), "step {step} price {q:?}");
        }
        let prices: Vec<Price> = ladder.iter_best_first().map(|(p, _)| p).collect();
        assert_eq!(prices, live.keys().copied().collect::<Vec<_>>());
    }

    #[test]
    fn ladder_search_agrees_with_binary_search_past_the_linear_window() {
        let mut bids = Ladder::new(Side::Buy, 1000);
        for p in (0..200).map(|i| i * 3) {
            bids.insert(Price(p), p as u32);
        }
        for p in 0..600 {
            assert_eq!(bids.find(Price(p)), if p % 3 == 0 { Some(p as u32) } else { None }, "{p}");
        }
        assert!(!bids.is_full());
        assert_eq!(bids.iter_best_first().count(), 200);
    }
}
