//! What a thread does while the ring it polls has nothing for it (or no room).
//!
//! A consumer polling an empty ring, or a producer facing a full one, must decide how hard to
//! wait. Busy-spinning gives the lowest wake-up latency but burns a whole core; on a machine with
//! as many busy threads as cores (a 2-core box running engine + gateway) it starves the very
//! thread it waits for. So the default backs off: spin briefly (the next value is often a few
//! hundred nanoseconds away), then yield the core, then sleep with a bounded, doubling sleep.
//!
//! [`Waiter`] is a small state machine: [`Waiter::next_step`] is pure (tested without timing),
//! [`Waiter::wait`] performs the step, and [`Waiter::reset`] goes back to spinning on progress.

use core::time::Duration;

use crate::doorbell::Doorbell;
use crate::sync::{sleep, spin_loop, yield_now};

/// How an idle thread waits for its ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WaitStrategy {
    /// Spin forever. Lowest latency; only for a core reserved to this thread (isolated and
    /// pinned), never on a machine whose cores are shared.
    BusySpin,
    /// Spin a little, then `yield_now` forever. Low latency while other threads are idle; still
    /// shows 100% CPU.
    Yield,
    /// Spin a little, yield a little, then sleep, doubling up to [`BACKOFF_SLEEP_MAX`]. Idle costs
    /// almost nothing; the first value after a long idle waits at most about one sleep.
    #[default]
    Backoff,
    /// Spin a little, yield a little, then park until a producer rings the thread's
    /// [`Doorbell`] (or [`PARK_TIMEOUT`] passes). Wakes within a futex call of new work and costs
    /// nothing while idle, but every producer of the thread's inputs must ring its doorbell;
    /// where a thread has none, this is [`WaitStrategy::Backoff`].
    Park,
}

/// Rounds of spinning before yielding; round `n` spins `2^n` times (1 + 2 + ... + 64 hints in
/// all, a few microseconds).
pub const SPIN_ROUNDS: u32 = 7;

/// Rounds of `yield_now` after spinning before [`WaitStrategy::Backoff`] starts sleeping.
pub const YIELD_ROUNDS: u32 = 8;

/// First sleep of [`WaitStrategy::Backoff`]; each further idle round doubles it.
pub const BACKOFF_SLEEP_MIN: Duration = Duration::from_micros(1);

/// Longest sleep of [`WaitStrategy::Backoff`]: the bound on how late an idle thread notices new
/// work. Linux adds its default 50 µs timer slack to every sleep, so the real bound is ~100 µs.
pub const BACKOFF_SLEEP_MAX: Duration = Duration::from_micros(50);

const _: () = assert!(BACKOFF_SLEEP_MIN.as_nanos() <= BACKOFF_SLEEP_MAX.as_nanos());

/// Longest park of [`WaitStrategy::Park`]: a safety net only (producers ring), so a thread also
/// notices what nobody rings for (a stop flag, journal progress) this often.
pub const PARK_TIMEOUT: Duration = Duration::from_millis(1);

/// What one idle round does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitStep {
    /// Run this many spin-loop hints.
    Spin(u32),
    /// Give the core away for one scheduler turn.
    Yield,
    /// Sleep this long.
    Sleep(Duration),
}

/// Waits according to a [`WaitStrategy`], backing off the longer nothing happens.
#[derive(Clone, Debug)]
pub struct Waiter {
    strategy: WaitStrategy,
    /// Idle rounds since the last [`Waiter::reset`], saturating.
    idle_rounds: u32,
}

impl Waiter {
    /// A waiter that starts with the shortest wait.
    pub fn new(strategy: WaitStrategy) -> Waiter {
        Waiter { strategy, idle_rounds: 0 }
    }

    /// The strategy it follows.
    pub fn strategy(&self) -> WaitStrategy {
        self.strategy
    }

    /// Call on progress (a value popped or pushed): the next wait starts short again.
    #[inline]
    pub fn reset(&mut self) {
        self.idle_rounds = 0;
    }

    /// Waits one idle round; the caller re-checks its ring afterwards.
    #[inline]
    pub fn wait(&mut self) {
        perform(self.next_step());
    }

    /// Waits one idle round like [`wait`](Self::wait), except that under
    /// [`WaitStrategy::Park`] the sleeping rounds park on `doorbell` (with `ready` as the last
    /// look at the inputs before parking) instead of sleeping.
    #[inline]
    pub fn wait_on(&mut self, doorbell: Option<&Doorbell>, ready: impl Fn() -> bool) {
        match (self.next_step(), self.strategy, doorbell) {
            (WaitStep::Sleep(_), WaitStrategy::Park, Some(bell)) => bell.sleep(ready, PARK_TIMEOUT),
            (step, ..) => perform(step),
        }
    }

    /// The step the next idle round takes, and counts the round. Pure: no waiting happens.
    pub fn next_step(&mut self) -> WaitStep {
        let round = self.idle_rounds;
        self.idle_rounds = self.idle_rounds.saturating_add(1);
        match self.strategy {
            WaitStrategy::BusySpin => WaitStep::Spin(1),
            _ if round < SPIN_ROUNDS => WaitStep::Spin(1 << round),
            WaitStrategy::Yield => WaitStep::Yield,
            WaitStrategy::Backoff | WaitStrategy::Park if round < SPIN_ROUNDS + YIELD_ROUNDS => {
                WaitStep::Yield
            }
            WaitStrategy::Backoff | WaitStrategy::Park => {
                let doublings = round - SPIN_ROUNDS - YIELD_ROUNDS;
                // Past 2^16 the cap is long reached; the clamp keeps the shift in range.
                let sleep = BACKOFF_SLEEP_MIN.saturating_mul(1 << doublings.min(16));
                WaitStep::Sleep(sleep.min(BACKOFF_SLEEP_MAX))
            }
        }
    }
}

#[inline]
fn perform(step: WaitStep) {
    match step {
        WaitStep::Spin(count) => {
            for _ in 0..count {
                spin_loop();
            }
        }
        WaitStep::Yield => yield_now(),
        WaitStep::Sleep(duration) => sleep(duration),
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn steps(strategy: WaitStrategy, count: usize) -> Vec<WaitStep> {
        let mut waiter = Waiter::new(strategy);
        (0..count).map(|_| waiter.next_step()).collect()
    }

    #[test]
    fn default_is_backoff_because_shared_cores_must_not_be_starved() {
        assert_eq!(WaitStrategy::default(), WaitStrategy::Backoff);
    }

    #[test]
    fn park_takes_the_backoff_steps_and_parks_where_backoff_sleeps() {
        assert_eq!(steps(WaitStrategy::Park, 64), steps(WaitStrategy::Backoff, 64));
        // With no doorbell a parking waiter sleeps like the backoff: the call returns.
        let mut waiter = Waiter::new(WaitStrategy::Park);
        for _ in 0..64 {
            waiter.wait_on(None, || false);
        }
    }

    #[test]
    fn busy_spin_never_gives_the_core_away() {
        assert!(steps(WaitStrategy::BusySpin, 10_000).iter().all(|step| *step == WaitStep::Spin(1)));
    }

    #[test]
    fn yield_spins_with_doubling_counts_then_yields_forever() {
        let steps = steps(WaitStrategy::Yield, 1_000);
        let spins: Vec<_> = (0..SPIN_ROUNDS).map(|round| WaitStep::Spin(1 << round)).collect();
        assert_eq!(steps[..SPIN_ROUNDS as usize], spins[..]);
        assert!(steps[SPIN_ROUNDS as usize..].iter().all(|step| *step == WaitStep::Yield));
    }

    #[test]
    fn backoff_spins_yields_then_sleeps_doubling_up_to_the_cap() {
        let steps = steps(WaitStrategy::Backoff, 100_000);
        let first_sleep = (SPIN_ROUNDS + YIELD_ROUNDS) as usize;
        assert!(matches!(steps[0], WaitStep::Spin(1)));
        assert!(steps[SPIN_ROUNDS as usize..first_sleep].iter().all(|step| *step == WaitStep::Yield));
        assert_eq!(steps[first_sleep], WaitStep::Sleep(BACKOFF_SLEEP_MIN));
        assert_eq!(steps[first_sleep + 1], WaitStep::Sleep(BACKOFF_SLEEP_MIN * 2));
        let sleeps: Vec<Duration> = steps[first_sleep..]
            .iter()
            .map(|step| match step {
                WaitStep::Sleep(duration) => *duration,
                other => panic!("expected a sleep, got {other:?}"),
            })
            .collect();
        assert!(sleeps.windows(2).all(|pair| pair[0] <= pair[1]), "sleeps never shrink");
        assert_eq!(*sleeps.last().unwrap(), BACKOFF_SLEEP_MAX);
    }

    #[test]
    fn backoff_saturates_instead_of_overflowing() {
        let mut waiter = Waiter { strategy: WaitStrategy::Backoff, idle_rounds: u32::MAX - 1 };
        assert_eq!(waiter.next_step(), WaitStep::Sleep(BACKOFF_SLEEP_MAX));
        assert_eq!(waiter.next_step(), WaitStep::Sleep(BACKOFF_SLEEP_MAX));
    }

    #[test]
    fn reset_starts_over_with_the_shortest_wait() {
        let mut waiter = Waiter::new(WaitStrategy::Backoff);
        for _ in 0..100 {
            waiter.next_step();
        }
        waiter.reset();
        assert_eq!(waiter.next_step(), WaitStep::Spin(1));
    }

    #[test]
    fn wait_performs_each_kind_of_step() {
        // Runs through spins, yields and a few (short) sleeps; asserts nothing about timing.
        let mut waiter = Waiter::new(WaitStrategy::Backoff);
        for _ in 0..(SPIN_ROUNDS + YIELD_ROUNDS + 3) {
            waiter.wait();
        }
    }
}
