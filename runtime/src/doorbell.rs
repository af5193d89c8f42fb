//! A doorbell: how a producer wakes a consumer thread that parked because its inputs were empty.
//!
//! [`WaitStrategy::Park`](crate::WaitStrategy::Park) spins and yields like the backoff, then,
//! instead of sleeping a fixed time and polling again, parks the thread until a producer rings
//! (or a timeout, the safety net). The wake-up then costs one futex call on the producer's side,
//! made only while the consumer is actually parked, instead of the up to ~100 µs a sleeping
//! poller takes to notice new work.
//!
//! No lost wake-up: the sleeper raises `sleeping`, then (after a SeqCst fence) looks at its
//! inputs once more before parking; a producer publishes its work, then (after a SeqCst fence)
//! reads `sleeping`. Of the two fences one comes first in their single total order, so either
//! the sleeper sees the work or the producer sees the flag and unparks. `unpark` before `park`
//! is kept as a token, so an unpark that lands between the sleeper's last look and its `park`
//! is not lost either. The loom model in `tests/loom_doorbell.rs` checks this.

use core::time::Duration;

use crate::sync::{fence, AtomicBool, Ordering};

/// Wakes one registered thread parked on it. Shared (`Arc`) between the sleeper and every
/// producer of its inputs.
#[derive(Debug, Default)]
pub struct Doorbell {
    /// The sleeper is parked, or about to.
    sleeping: AtomicBool,
    /// The thread rung awake, set once by [`register`](Self::register).
    sleeper: Sleeper,
}

impl Doorbell {
    /// A doorbell with no sleeper yet (ringing it does nothing until one registers).
    pub fn new() -> Doorbell {
        Doorbell::default()
    }

    /// Makes the calling thread the one this doorbell wakes. Call once, from the sleeper,
    /// before it first parks.
    pub fn register(&self) {
        self.sleeper.set_current();
    }

    /// Parks the calling (registered) thread unless `ready()` finds work, for at most
    /// `timeout`. Returns on a ring, the timeout or a spurious wake-up: the caller re-checks its
    /// inputs either way.
    pub fn sleep(&self, ready: impl Fn() -> bool, timeout: Duration) {
        self.sleeping.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        if !ready() {
            crate::sync::park_timeout(timeout);
        }
        self.sleeping.store(false, Ordering::Relaxed);
    }

    /// Wakes the sleeper if it is parked. Call after publishing work to it (a ring push, a
    /// channel send). Costs a fence and a load when nobody sleeps.
    #[inline]
    pub fn ring(&self) {
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::Relaxed) {
            self.sleeper.unpark();
        }
    }
}

#[cfg(not(loom))]
#[derive(Debug, Default)]
struct Sleeper(std::sync::OnceLock<std::thread::Thread>);

#[cfg(not(loom))]
impl Sleeper {
    fn set_current(&self) {
        let _ = self.0.set(std::thread::current());
    }

    fn unpark(&self) {
        if let Some(thread) = self.0.get() {
            thread.unpark();
        }
    }
}

#[cfg(loom)]
#[derive(Debug, Default)]
struct Sleeper(loom::sync::Mutex<Option<loom::thread::Thread>>);

#[cfg(loom)]
impl Sleeper {
    fn set_current(&self) {
        *self.0.lock().unwrap() = Some(loom::thread::current());
    }

    fn unpark(&self) {
        if let Some(thread) = self.0.lock().unwrap().as_ref() {
            thread.unpark();
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::atomic::AtomicU64;
    use std::sync::Arc;
    use std::time::Instant;

    use super::*;

    #[test]
    fn a_ring_wakes_a_parked_thread_long_before_its_timeout() {
        let bell = Arc::new(Doorbell::new());
        let work = Arc::new(AtomicU64::new(0));
        let (b, w) = (bell.clone(), work.clone());
        let sleeper = std::thread::spawn(move || {
            b.register();
            let started = Instant::now();
            while w.load(Ordering::Acquire) == 0 {
                b.sleep(|| w.load(Ordering::Acquire) != 0, Duration::from_secs(30));
            }
            started.elapsed()
        });
        std::thread::sleep(Duration::from_millis(50));
        work.store(1, Ordering::Release);
        bell.ring();
        let waited = sleeper.join().unwrap();
        assert!(waited < Duration::from_secs(10), "woken by the ring, not the 30 s timeout: {waited:?}");
    }

    #[test]
    fn ringing_with_no_sleeper_does_nothing() {
        let bell = Doorbell::new();
        bell.ring();
        bell.register();
        bell.ring(); // registered but awake: no unpark needed, none harmful
        bell.sleep(|| true, Duration::from_secs(30)); // work already there: returns at once
    }
}
