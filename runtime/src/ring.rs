//! A bounded, lock-free, single-producer single-consumer ring buffer.
//!
//! This is how other threads talk to the engine thread (design invariant 2: one writer per piece
//! of state, bounded rings between threads, no mutex on the hot path). The shape follows rtrb:
//!
//! - Positions are free-running `usize` counters; a slot is `position & index_mask`, so the
//!   capacity is a power of two and no modulo or branch is needed to wrap. Both counters wrap at
//!   `usize::MAX`, a multiple of the capacity, so the mapping stays consistent across the wrap.
//! - `head` (written only by the consumer) and `tail` (written only by the producer) live on
//!   separate cache lines, so the two sides never write the same line.
//! - Each side keeps a private copy of the other side's counter and reloads it only when that
//!   copy says the ring is full (producer) or empty (consumer). A stale copy only ever
//!   underestimates the space or the values available, so it is safe, and in the steady state
//!   each side touches the other's cache line once per wrap instead of once per value.
//! - Publishing is a `Release` store of the own counter; reading the other side's counter is an
//!   `Acquire` load. That pair orders a slot's write before its read (tail) and its read before
//!   its next overwrite (head).
//!
//! Under `--cfg loom` the atomics and the slot cells are loom's (see `crate::sync`), and
//! `tests/loom_ring.rs` model-checks push, pop, batch pop, wraparound and abandonment.

use core::{fmt, mem::MaybeUninit};

use crossbeam_utils::CachePadded;

use crate::sync::{Arc, AtomicBool, AtomicUsize, Ordering, UnsafeCell};

/// Largest capacity a ring may be created with. Every queue has a stated bound (design
/// invariant 6); 2^24 slots of a ~128-byte command is already 2 GiB, far past any sane ring.
pub const RING_CAPACITY_MAX: usize = 1 << 24;

const _: () = assert!(RING_CAPACITY_MAX.is_power_of_two());
// Free-running counters must be able to tell "full" (capacity) from "empty" (0) after wrapping.
const _: () = assert!(RING_CAPACITY_MAX <= usize::MAX / 2);

/// Why a value was not pushed. The value is handed back so the caller can retry or reject it.
#[derive(Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PushError<T> {
    /// The ring holds `capacity` values; the consumer has to catch up first.
    #[error("ring buffer is full")]
    Full(T),
}

impl<T> PushError<T> {
    /// The value that was not pushed.
    pub fn into_inner(self) -> T {
        match self {
            PushError::Full(value) => value,
        }
    }
}

// Written by hand so that `PushError<T>` is `Debug` (and so an `Error`) for every `T`: the value
// is the caller's business, the error only says the ring was full.
impl<T> fmt::Debug for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushError::Full(_) => f.write_str("Full(..)"),
        }
    }
}

/// Creates a ring with room for at least `capacity_min` values (rounded up to a power of two,
/// and at least 1) and returns its two ends.
///
/// # Panics
///
/// If `capacity_min` is larger than [`RING_CAPACITY_MAX`]: ring sizes come from configuration,
/// which the caller validates first (see `RunnerConfig::validate`).
pub fn spsc_ring<T: Send>(capacity_min: usize) -> (Producer<T>, Consumer<T>) {
    assert!(
        capacity_min <= RING_CAPACITY_MAX,
        "ring capacity {capacity_min} is larger than RING_CAPACITY_MAX ({RING_CAPACITY_MAX})"
    );
    let capacity = capacity_min.max(1).next_power_of_two();
    let slots: Box<[Slot<T>]> = (0..capacity).map(|_| UnsafeCell::new(MaybeUninit::uninit())).collect();
    let shared = Arc::new(Shared {
        head: CachePadded::new(AtomicUsize::new(0)),
        tail: CachePadded::new(AtomicUsize::new(0)),
        abandoned: AtomicBool::new(false),
        slots,
        index_mask: capacity - 1,
    });
    let producer = Producer { shared: Arc::clone(&shared), tail: 0, head_cached: 0 };
    let consumer = Consumer { shared, head: 0, tail_cached: 0 };
    (producer, consumer)
}

/// One slot: uninitialized unless its position is in `[head, tail)`.
type Slot<T> = UnsafeCell<MaybeUninit<T>>;

/// The state both ends point to.
struct Shared<T> {
    /// Position of the next value the consumer reads. Only the consumer stores it.
    head: CachePadded<AtomicUsize>,
    /// Position of the next slot the producer writes. Only the producer stores it.
    tail: CachePadded<AtomicUsize>,
    /// Set by whichever end is dropped first, so the other end can stop waiting for it.
    abandoned: AtomicBool,
    /// `capacity` slots; the slots at positions `[head, tail)` hold values.
    slots: Box<[Slot<T>]>,
    /// `capacity - 1`, with `capacity` a power of two.
    index_mask: usize,
}

impl<T> Shared<T> {
    #[inline(always)]
    fn capacity(&self) -> usize {
        self.index_mask + 1
    }

    /// The slot a free-running position maps to.
    #[inline(always)]
    fn slot(&self, position: usize) -> &Slot<T> {
        let index = position & self.index_mask;
        debug_assert!(index < self.slots.len());
        // SAFETY: `index_mask == slots.len() - 1` with a power-of-two length, so `index < len`.
        unsafe { self.slots.get_unchecked(index) }
    }
}

// SAFETY: the head/tail protocol gives each slot to exactly one end at a time (the producer owns
// `[tail, head + capacity)`, the consumer `[head, tail)`), and values are only moved between
// threads, never shared by reference, so `T: Send` is all that is needed to share `Shared<T>`.
unsafe impl<T: Send> Sync for Shared<T> {}
// SAFETY: as above; `Shared<T>` owns `T` values, which may be dropped on either thread.
unsafe impl<T: Send> Send for Shared<T> {}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        if !core::mem::needs_drop::<T>() {
            return;
        }
        // Both ends are gone (this is the last `Arc`), and the `Arc`'s release/acquire on its
        // count orders their last stores before these loads.
        let mut position = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Relaxed);
        while position != tail {
            self.slot(position).with_mut(|slot| {
                // SAFETY: `position` is in `[head, tail)`, so the slot holds a value that was
                // pushed and never popped; nobody else can reach it any more.
                unsafe { (*slot).assume_init_drop() }
            });
            position = position.wrapping_add(1);
        }
    }
}

/// The writing end of a ring. `Send`, not `Clone`: exactly one thread pushes.
pub struct Producer<T> {
    shared: Arc<Shared<T>>,
    /// The producer's own tail. It is the only writer, so it never needs to load it back.
    tail: usize,
    /// The consumer's head as last loaded; never ahead of the real one.
    head_cached: usize,
}

impl<T> Producer<T> {
    /// Appends `value`, or hands it back in [`PushError::Full`] when the ring is full.
    #[inline]
    pub fn push(&mut self, value: T) -> Result<(), PushError<T>> {
        let capacity = self.shared.capacity();
        if self.tail.wrapping_sub(self.head_cached) == capacity {
            // Looks full from the cached head: only now pay for the consumer's cache line.
            self.head_cached = self.shared.head.load(Ordering::Acquire);
            if self.tail.wrapping_sub(self.head_cached) == capacity {
                return Err(PushError::Full(value));
            }
        }
        self.shared.slot(self.tail).with_mut(|slot| {
            // SAFETY: `tail - head < capacity`, so the slot at `tail` is outside `[head, tail)`:
            // it holds no value and the consumer will not read it before `tail` is published;
            // the Acquire load of `head` ordered the consumer's last read of it before this write.
            unsafe { (*slot).write(value) };
        });
        self.tail = self.tail.wrapping_add(1);
        self.shared.tail.store(self.tail, Ordering::Release);
        Ok(())
    }

    /// Number of values in the ring (a snapshot: the consumer may be popping).
    pub fn len(&self) -> usize {
        self.tail.wrapping_sub(self.shared.head.load(Ordering::Acquire))
    }

    /// True when the ring holds no value (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when a push would fail right now (a snapshot: the consumer may be popping).
    pub fn is_full(&self) -> bool {
        self.len() == self.shared.capacity()
    }

    /// Number of values the ring holds when full.
    pub fn capacity(&self) -> usize {
        self.shared.capacity()
    }

    /// True once the [`Consumer`] has been dropped: nothing pushed from now on will be read.
    pub fn is_abandoned(&self) -> bool {
        self.shared.abandoned.load(Ordering::Acquire)
    }
}

impl<T> Drop for Producer<T> {
    fn drop(&mut self) {
        // Release: a consumer that sees the flag also sees every value pushed before it.
        self.shared.abandoned.store(true, Ordering::Release);
    }
}

impl<T> fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("is_abandoned", &self.is_abandoned())
            .finish()
    }
}

/// The reading end of a ring. `Send`, not `Clone`: exactly one thread pops.
pub struct Consumer<T> {
    shared: Arc<Shared<T>>,
    /// The consumer's own head. It is the only writer, so it never needs to load it back.
    head: usize,
    /// The producer's tail as last loaded; never ahead of the real one.
    tail_cached: usize,
}

impl<T> Consumer<T> {
    /// Takes the oldest value, or `None` when the ring is empty.
    #[inline]
    pub fn pop(&mut self) -> Option<T> {
        if self.head == self.tail_cached {
            // Looks empty from the cached tail: only now pay for the producer's cache line.
            self.tail_cached = self.shared.tail.load(Ordering::Acquire);
            if self.head == self.tail_cached {
                return None;
            }
        }
        let value = self.shared.slot(self.head).with(|slot| {
            // SAFETY: `head < tail`, and the Acquire load of `tail` saw the Release store that
            // published this slot, so it holds an initialized value; the producer will not
            // overwrite it before `head` moves past it, and we move the value out exactly once.
            unsafe { (*slot).assume_init_read() }
        });
        self.head = self.head.wrapping_add(1);
        self.shared.head.store(self.head, Ordering::Release);
        Some(value)
    }

    /// Takes up to `count_max` of the oldest values, oldest first, handing each to `f`, and
    /// returns how many it took.
    ///
    /// `head` is published once for the whole batch, so the producer's cache line sees one
    /// store per batch instead of one per value, and `tail` is loaded at most once. The slots
    /// are handed back to the producer only when the batch ends; if `f` panics, the values
    /// already handed out are released and the rest stay in the ring.
    #[inline]
    pub fn pop_batch(&mut self, count_max: usize, mut f: impl FnMut(T)) -> usize {
        let mut available = self.tail_cached.wrapping_sub(self.head);
        if available < count_max {
            self.tail_cached = self.shared.tail.load(Ordering::Acquire);
            available = self.tail_cached.wrapping_sub(self.head);
        }
        let count = available.min(count_max);
        if count == 0 {
            return 0;
        }
        let batch = PublishHeadOnDrop { consumer: self };
        for _ in 0..count {
            let head = batch.consumer.head;
            let value = batch.consumer.shared.slot(head).with(|slot| {
                // SAFETY: `head < tail_cached <= tail` (count <= available), and the Acquire load
                // of `tail` saw the Release store that published this slot, so it holds an
                // initialized value that the producer will not touch before `head` is published.
                unsafe { (*slot).assume_init_read() }
            });
            // Advance before `f` runs: from here the value belongs to `f`, even if it panics.
            batch.consumer.head = head.wrapping_add(1);
            f(value);
        }
        drop(batch);
        count
    }

    /// Number of values in the ring (a snapshot: the producer may be pushing).
    pub fn len(&self) -> usize {
        self.shared.tail.load(Ordering::Acquire).wrapping_sub(self.head)
    }

    /// True when the ring holds no value (a snapshot: the producer may be pushing).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of values the ring holds when full.
    pub fn capacity(&self) -> usize {
        self.shared.capacity()
    }

    /// True once the [`Producer`] has been dropped: no value will ever be added.
    ///
    /// Every value pushed before the drop is visible once this returns true, so "abandoned, then
    /// `pop()` returns `None`" means the ring is empty for good: that is how a consumer knows
    /// it has drained everything.
    pub fn is_abandoned(&self) -> bool {
        self.shared.abandoned.load(Ordering::Acquire)
    }
}

impl<T> Drop for Consumer<T> {
    fn drop(&mut self) {
        // Release for symmetry with the producer; the values left are dropped with `Shared`.
        self.shared.abandoned.store(true, Ordering::Release);
    }
}

impl<T> fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("is_abandoned", &self.is_abandoned())
            .finish()
    }
}

/// Publishes the consumer's `head` when a batch ends, also when the batch's callback panics:
/// otherwise the values it already took would still count as in the ring and be dropped twice.
struct PublishHeadOnDrop<'a, T> {
    consumer: &'a mut Consumer<T>,
}

impl<T> Drop for PublishHeadOnDrop<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.consumer.shared.head.store(self.consumer.head, Ordering::Release);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::sync::atomic::AtomicUsize as StdAtomicUsize;
    use std::sync::Arc as StdArc;

    /// Counts its drops into a shared counter, to catch leaks and double drops.
    struct DropCounted {
        id: u64,
        drops: StdArc<StdAtomicUsize>,
    }

    impl Drop for DropCounted {
        fn drop(&mut self) {
            self.drops.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn counted(id: u64, drops: &StdArc<StdAtomicUsize>) -> DropCounted {
        DropCounted { id, drops: StdArc::clone(drops) }
    }

    #[test]
    fn capacity_rounds_up_to_a_power_of_two() {
        for (asked, got) in [(0, 1), (1, 1), (2, 2), (3, 4), (1000, 1024), (1024, 1024)] {
            let (producer, consumer) = spsc_ring::<u64>(asked);
            assert_eq!(producer.capacity(), got, "asked {asked}");
            assert_eq!(consumer.capacity(), got, "asked {asked}");
        }
    }

    #[test]
    #[should_panic(expected = "RING_CAPACITY_MAX")]
    fn capacity_above_the_bound_panics() {
        let _ = spsc_ring::<u8>(RING_CAPACITY_MAX + 1);
    }

    #[test]
    fn push_until_full_hands_the_value_back_then_pops_in_order() {
        let (mut producer, mut consumer) = spsc_ring::<u64>(4);
        assert!(producer.is_empty() && consumer.is_empty());
        for value in 0..4 {
            producer.push(value).unwrap();
        }
        assert!(producer.is_full());
        assert_eq!(producer.push(99), Err(PushError::Full(99)));
        assert_eq!(producer.push(98).unwrap_err().into_inner(), 98);
        assert_eq!((producer.len(), consumer.len()), (4, 4));
        for value in 0..4 {
            assert_eq!(consumer.pop(), Some(value));
        }
        assert_eq!(consumer.pop(), None);
        assert!(producer.is_empty() && consumer.is_empty());
    }

    #[test]
    fn wraps_around_many_times_in_order() {
        let (mut producer, mut consumer) = spsc_ring::<u64>(4);
        let mut next_pushed = 0;
        let mut next_popped = 0;
        // Uneven push/pop counts walk every (head, tail) offset across many wraps.
        for round in 0..1000u64 {
            for _ in 0..(round % 5) {
                if producer.push(next_pushed).is_ok() {
                    next_pushed += 1;
                }
            }
            for _ in 0..(round % 3) {
                if let Some(value) = consumer.pop() {
                    assert_eq!(value, next_popped);
                    next_popped += 1;
                }
            }
            assert_eq!(consumer.len() as u64, next_pushed - next_popped);
        }
        assert!(next_popped > 500);
    }

    #[test]
    fn pop_batch_takes_at_most_count_max_and_frees_the_slots() {
        let (mut producer, mut consumer) = spsc_ring::<u64>(8);
        for value in 0..8 {
            producer.push(value).unwrap();
        }
        let mut seen = Vec::new();
        assert_eq!(consumer.pop_batch(3, |value| seen.push(value)), 3);
        assert_eq!(seen, [0, 1, 2]);
        // The batch published its head: the producer sees the three freed slots.
        assert_eq!(producer.len(), 5);
        for value in 8..11 {
            producer.push(value).unwrap();
        }
        assert_eq!(consumer.pop_batch(100, |value| seen.push(value)), 8);
        assert_eq!(seen, (0..11).collect::<Vec<_>>());
        assert_eq!(consumer.pop_batch(100, |_| unreachable!()), 0);
        assert_eq!(consumer.pop_batch(0, |_| unreachable!()), 0);
    }

    #[test]
    fn abandoned_is_seen_from_both_ends() {
        let (producer, consumer) = spsc_ring::<u64>(2);
        assert!(!producer.is_abandoned() && !consumer.is_abandoned());
        drop(producer);
        assert!(consumer.is_abandoned());

        let (producer, consumer) = spsc_ring::<u64>(2);
        drop(consumer);
        assert!(producer.is_abandoned());
    }

    #[test]
    fn values_pushed_before_the_producer_drops_can_still_be_popped() {
        let (mut producer, mut consumer) = spsc_ring::<u64>(4);
        producer.push(1).unwrap();
        producer.push(2).unwrap();
        drop(producer);
        assert!(consumer.is_abandoned());
        assert_eq!(consumer.pop(), Some(1));
        assert_eq!(consumer.pop(), Some(2));
        assert_eq!(consumer.pop(), None);
    }

    #[test]
    fn values_left_in_the_ring_are_dropped_exactly_once() {
        let drops = StdArc::new(StdAtomicUsize::new(0));
        let (mut producer, mut consumer) = spsc_ring::<DropCounted>(4);
        for id in 0..4 {
            producer.push(counted(id, &drops)).unwrap();
        }
        // The rejected value comes back and is dropped by the caller, not by the ring.
        drop(producer.push(counted(99, &drops)).unwrap_err().into_inner());
        assert_eq!(drops.load(Ordering::Relaxed), 1);
        let popped = consumer.pop().unwrap();
        assert_eq!(popped.id, 0);
        drop(popped);
        assert_eq!(drops.load(Ordering::Relaxed), 2);
        // Wrap once so the live values straddle the end of the buffer.
        producer.push(counted(4, &drops)).unwrap();
        drop(consumer);
        assert_eq!(drops.load(Ordering::Relaxed), 2, "values outlive one dropped end");
        drop(producer);
        assert_eq!(drops.load(Ordering::Relaxed), 2 + 4, "ids 1..=4 dropped with the ring");
    }

    #[test]
    fn a_panicking_batch_callback_neither_leaks_nor_double_drops() {
        let drops = StdArc::new(StdAtomicUsize::new(0));
        let (mut producer, mut consumer) = spsc_ring::<DropCounted>(8);
        for id in 0..6 {
            producer.push(counted(id, &drops)).unwrap();
        }
        let result = catch_unwind(AssertUnwindSafe(|| {
            consumer.pop_batch(6, |value| {
                if value.id == 2 {
                    panic!("callback fails on id 2");
                }
            })
        }));
        assert!(result.is_err());
        // Ids 0, 1 dropped by the callback, id 2 dropped while unwinding.
        assert_eq!(drops.load(Ordering::Relaxed), 3);
        assert_eq!(consumer.len(), 3);
        assert_eq!(consumer.pop().map(|value| value.id), Some(3));
        drop((producer, consumer));
        assert_eq!(drops.load(Ordering::Relaxed), 6);
    }

    #[test]
    fn zero_sized_values_are_counted() {
        let (mut producer, mut consumer) = spsc_ring::<()>(2);
        producer.push(()).unwrap();
        producer.push(()).unwrap();
        assert_eq!(producer.push(()), Err(PushError::Full(())));
        assert_eq!(consumer.pop_batch(10, |()| {}), 2);
        assert_eq!(consumer.pop(), None);
    }

    /// Values moved by the two-thread tests; fewer under Miri, which is ~1000x slower.
    const SEQUENCED_VALUES: u64 = if cfg!(miri) { 2_000 } else { 1_000_000 };

    /// A small ring makes both ends hit full and empty often, which is where the bugs live.
    const TWO_THREAD_RING_CAPACITY: usize = 64;

    #[test]
    fn two_threads_move_a_million_sequenced_values_in_order() {
        let (mut producer, mut consumer) = spsc_ring::<u64>(TWO_THREAD_RING_CAPACITY);
        let pusher = std::thread::spawn(move || {
            for seq in 1..=SEQUENCED_VALUES {
                let mut value = seq;
                while let Err(PushError::Full(back)) = producer.push(value) {
                    value = back;
                    // Yield, not spin: on a 2-core machine a spinning producer starves the consumer.
                    std::thread::yield_now();
                }
            }
        });
        let mut expected = 1;
        while expected <= SEQUENCED_VALUES {
            match consumer.pop() {
                Some(seq) => {
                    assert_eq!(seq, expected, "out of order or lost");
                    expected += 1;
                }
                None => {
                    assert!(!(consumer.is_abandoned() && consumer.is_empty()), "producer gone early");
                    std::thread::yield_now();
                }
            }
        }
        pusher.join().unwrap();
        assert!(consumer.is_abandoned());
        assert_eq!(consumer.pop(), None);
    }

    #[test]
    fn two_threads_batch_pop_a_million_sequenced_values_in_order() {
        let (mut producer, mut consumer) = spsc_ring::<u64>(TWO_THREAD_RING_CAPACITY);
        let pusher = std::thread::spawn(move || {
            for seq in 1..=SEQUENCED_VALUES {
                let mut value = seq;
                while let Err(PushError::Full(back)) = producer.push(value) {
                    value = back;
                    std::thread::yield_now();
                }
            }
        });
        let mut expected = 1;
        loop {
            let count = consumer.pop_batch(16, |seq| {
                assert_eq!(seq, expected, "out of order or lost");
                expected += 1;
            });
            if count == 0 {
                // Abandoned first, then empty: the order that makes "drained" final.
                if consumer.is_abandoned() && consumer.is_empty() {
                    break;
                }
                std::thread::yield_now();
            }
        }
        pusher.join().unwrap();
        assert_eq!(expected, SEQUENCED_VALUES + 1);
    }

    #[test]
    fn two_threads_move_owned_values_without_leaks() {
        let drops = StdArc::new(StdAtomicUsize::new(0));
        let values: u64 = if cfg!(miri) { 200 } else { 20_000 };
        let (mut producer, mut consumer) = spsc_ring::<DropCounted>(8);
        let pusher_drops = StdArc::clone(&drops);
        // Returns how many values it created: once the consumer is gone it stops, dropping
        // the value it holds.
        let pusher = std::thread::spawn(move || {
            for id in 0..values {
                let mut value = counted(id, &pusher_drops);
                while let Err(PushError::Full(back)) = producer.push(value) {
                    if producer.is_abandoned() {
                        return id + 1;
                    }
                    value = back;
                    std::thread::yield_now();
                }
            }
            values
        });
        let mut expected = 0;
        // Stop half-way so the rest is dropped with the ring, on whichever thread drops last.
        while expected < values / 2 {
            match consumer.pop() {
                Some(value) => {
                    assert_eq!(value.id, expected);
                    expected += 1;
                }
                None => std::thread::yield_now(),
            }
        }
        drop(consumer);
        let created = pusher.join().unwrap();
        assert!(created >= values / 2);
        assert_eq!(drops.load(Ordering::Relaxed) as u64, created);
    }
}
