//! Loom models of the SPSC ring: every interleaving (up to a preemption bound) of one producer
//! and one consumer thread, with loom checking the atomics' orderings and every slot access for
//! data races, and its `Arc` checking that nothing leaks.
//!
//! Capacity 2 with 3 or 4 values makes each model cross the full, empty and wraparound cases.
//!
//! Run: `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p runtime --test loom_ring --release`
#![cfg(loom)]

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use runtime::{spsc_ring, Consumer, Producer, PushError};

/// Ring capacity in every model: the smallest that still has a wraparound between two values.
const CAPACITY: usize = 2;

/// Runs `body` under loom with a preemption bound: 3 finds the known classes of SPSC bugs
/// (a missing Release/Acquire, a stale cached index, an early "drained") and keeps each model to
/// seconds.
fn model(body: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    builder.check(body);
}

/// Pushes, yielding while the ring is full. Returns false (dropping the value) if the consumer
/// is gone.
fn push_waiting<T>(producer: &mut Producer<T>, mut value: T) -> bool {
    loop {
        match producer.push(value) {
            Ok(()) => return true,
            Err(PushError::Full(back)) => {
                if producer.is_abandoned() {
                    return false;
                }
                value = back;
                thread::yield_now();
            }
        }
    }
}

/// Pops until the producer is gone and the ring is drained, the way the runner stops.
fn drain_until_abandoned(consumer: &mut Consumer<u32>) -> Vec<u32> {
    let mut received = Vec::new();
    loop {
        match consumer.pop() {
            Some(value) => received.push(value),
            None if consumer.is_abandoned() && consumer.is_empty() => return received,
            None => thread::yield_now(),
        }
    }
}

#[test]
fn push_and_pop_keep_order_across_full_empty_and_wraparound() {
    model(|| {
        let (mut producer, mut consumer) = spsc_ring::<u32>(CAPACITY);
        let pusher = thread::spawn(move || {
            for value in 0..3 {
                assert!(push_waiting(&mut producer, value));
            }
        });
        let mut expected = 0;
        while expected < 3 {
            match consumer.pop() {
                Some(value) => {
                    assert_eq!(value, expected);
                    expected += 1;
                }
                None => thread::yield_now(),
            }
        }
        pusher.join().unwrap();
        assert_eq!(consumer.pop(), None);
    });
}

#[test]
fn batch_pop_keeps_order_and_frees_slots_for_the_producer() {
    model(|| {
        let (mut producer, mut consumer) = spsc_ring::<u32>(CAPACITY);
        let pusher = thread::spawn(move || {
            for value in 0..4 {
                assert!(push_waiting(&mut producer, value));
            }
        });
        let mut received = Vec::new();
        while received.len() < 4 {
            // More than the capacity: the batch must stop at what was published.
            if consumer.pop_batch(4, |value| received.push(value)) == 0 {
                thread::yield_now();
            }
        }
        pusher.join().unwrap();
        assert_eq!(received, [0, 1, 2, 3]);
    });
}

#[test]
fn a_consumer_that_sees_the_producer_gone_has_seen_every_value() {
    model(|| {
        let (mut producer, mut consumer) = spsc_ring::<u32>(CAPACITY);
        let pusher = thread::spawn(move || {
            for value in 0..3 {
                assert!(push_waiting(&mut producer, value));
            }
            // `producer` drops here, setting the abandoned flag after the last push.
        });
        assert_eq!(drain_until_abandoned(&mut consumer), [0, 1, 2]);
        pusher.join().unwrap();
    });
}

#[test]
fn batch_drain_after_abandonment_sees_every_value() {
    model(|| {
        let (mut producer, mut consumer) = spsc_ring::<u32>(CAPACITY);
        let pusher = thread::spawn(move || {
            for value in 0..3 {
                assert!(push_waiting(&mut producer, value));
            }
        });
        let mut received = Vec::new();
        loop {
            if consumer.pop_batch(CAPACITY, |value| received.push(value)) == 0 {
                if consumer.is_abandoned() && consumer.is_empty() {
                    break;
                }
                thread::yield_now();
            }
        }
        assert_eq!(received, [0, 1, 2]);
        pusher.join().unwrap();
    });
}

/// Counts its drops, to check that each value is dropped exactly once, on whichever thread.
struct DropCounted {
    drops: Arc<AtomicUsize>,
}

impl Drop for DropCounted {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn a_consumer_dropped_mid_stream_stops_the_producer_and_drops_every_value_once() {
    model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (mut producer, mut consumer) = spsc_ring::<DropCounted>(CAPACITY);
        let pusher_drops = Arc::clone(&drops);
        // Returns how many values it created; it stops once the consumer is gone.
        let pusher = thread::spawn(move || {
            for created in 1..=4 {
                let value = DropCounted { drops: Arc::clone(&pusher_drops) };
                if !push_waiting(&mut producer, value) {
                    return created;
                }
            }
            4
        });
        // Take one value, then leave with values possibly still in the ring: those are dropped
        // with the ring, by whichever end goes last.
        loop {
            if let Some(value) = consumer.pop() {
                drop(value);
                break;
            }
            thread::yield_now();
        }
        drop(consumer);
        let created = pusher.join().unwrap();
        assert_eq!(drops.load(Ordering::Relaxed), created);
    });
}

#[test]
fn abandonment_is_seen_by_the_producer() {
    model(|| {
        let (mut producer, consumer) = spsc_ring::<u32>(CAPACITY);
        let dropper = thread::spawn(move || drop(consumer));
        // Fill, then wait on the full ring until the consumer is seen gone.
        let mut pushed = 0;
        while push_waiting(&mut producer, pushed) {
            pushed += 1;
        }
        assert_eq!(pushed, CAPACITY as u32);
        assert!(producer.is_abandoned());
        dropper.join().unwrap();
    });
}
