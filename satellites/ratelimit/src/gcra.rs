//! The generic cell rate algorithm (virtual scheduling form), in exact integer arithmetic.
//!
//! Time is counted in "scaled nanoseconds", nanoseconds multiplied by the rate per second. In
//! that unit the emission interval (`1e9 / rate` ns) is exactly `1e9` and the burst tolerance is
//! exactly `(burst - 1) * 1e9`, whatever the rate: a rate of 3 per second refills a token every
//! 333,333,333⅓ ns with no rounding anywhere, so the limiter allows exactly `rate` messages per
//! second in the long run and exactly `burst` at once. `u128` holds `u64` nanoseconds times a
//! `u32` rate with room to spare.

use crate::config::{LimitConfig, NANOS_PER_SEC};

/// Emission interval in scaled nanoseconds: one second's worth of scaled time divided by rate
/// messages is `rate * 1e9 / rate`.
const INTERVAL_SCALED: u128 = NANOS_PER_SEC as u128;

/// A GCRA limiter for one key: the theoretical arrival time (TAT) of the next message.
///
/// A message at `t` conforms iff `TAT - t <= tolerance`; it then moves the TAT to
/// `max(TAT, t) + interval`. A fresh limiter (TAT 0) and one whose TAT is in the past behave the
/// same, which is what makes evicting idle keys invisible.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gcra {
    /// Theoretical arrival time in scaled nanoseconds.
    tat_scaled: u128,
    /// Messages per second.
    rate: u32,
    /// `(burst - 1) * interval`, in scaled nanoseconds.
    tolerance_scaled: u128,
}

impl Gcra {
    /// A full bucket for `config` (the caller validated it: `rate_per_sec` and `burst` ≥ 1).
    pub fn new(config: &LimitConfig) -> Gcra {
        debug_assert!(config.validate().is_ok());
        let rate = config.rate_per_sec.max(1);
        let burst = config.burst.max(1);
        Gcra { tat_scaled: 0, rate, tolerance_scaled: u128::from(burst - 1) * INTERVAL_SCALED }
    }

    /// Takes one message at `now_ns`: `Ok(())` if it conforms (and is counted), else
    /// `Err(retry_after_ns)`, the nanoseconds until one would conform (at least 1).
    #[inline]
    pub fn check(&mut self, now_ns: u64) -> Result<(), u64> {
        let t = u128::from(now_ns) * u128::from(self.rate);
        let tat = self.tat_scaled.max(t);
        let ahead = tat - t;
        if ahead <= self.tolerance_scaled {
            self.tat_scaled = tat + INTERVAL_SCALED;
            return Ok(());
        }
        // Conforms once `t' >= tat - tolerance`; round the wait up to whole nanoseconds.
        let wait_scaled = ahead - self.tolerance_scaled;
        let rate = u128::from(self.rate);
        Err(u64::try_from(wait_scaled.div_ceil(rate)).unwrap_or(u64::MAX))
    }

    /// True when the bucket is full at `now_ns`: the state is then exactly a fresh limiter's.
    #[inline]
    pub fn is_full(&self, now_ns: u64) -> bool {
        self.tat_scaled <= u128::from(now_ns) * u128::from(self.rate)
    }

    /// Moves to a new configuration keeping the bucket's level: the TAT is converted to whole
    /// nanoseconds (rounded up, so a change never grants a token) and rescaled to the new rate.
    pub fn reconfigure(&mut self, config: &LimitConfig) {
        let old_rate = u128::from(self.rate);
        let tat_ns = self.tat_scaled.div_ceil(old_rate);
        *self = Gcra::new(config);
        self.tat_scaled = tat_ns * u128::from(self.rate);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(rate_per_sec: u32, burst: u32) -> LimitConfig {
        LimitConfig { rate_per_sec, burst, ..LimitConfig::default() }
    }

    #[test]
    fn exactly_burst_at_once_then_one_per_interval() {
        let mut g = Gcra::new(&config(10, 5));
        let t0 = 7_000_000_000;
        for _ in 0..5 {
            assert_eq!(g.check(t0), Ok(()));
        }
        // Sixth at the same instant: refused until one emission interval (100 ms) has passed.
        assert_eq!(g.check(t0), Err(100_000_000));
        assert_eq!(g.check(t0 + 99_999_999), Err(1));
        assert_eq!(g.check(t0 + 100_000_000), Ok(()));
        assert_eq!(g.check(t0 + 100_000_000), Err(100_000_000));
    }

    #[test]
    fn sub_second_refill_is_exact_for_rates_that_do_not_divide_a_second() {
        // 3 per second: one token every 333,333,333⅓ ns. Burst 1 makes every token observable.
        let mut g = Gcra::new(&config(3, 1));
        assert_eq!(g.check(0), Ok(()));
        assert_eq!(g.check(333_333_333), Err(1));
        assert_eq!(g.check(333_333_334), Ok(()));
        // That arrival was ⅔ ns late, so the next token is due at 666,666,667⅓ ns: the fraction
        // is kept, not rounded away.
        assert_eq!(g.check(666_666_667), Err(1));
        assert_eq!(g.check(666_666_668), Ok(()));
        // Due at 1,000,000,001⅓ ns.
        assert_eq!(g.check(1_000_000_001), Err(1));
        assert_eq!(g.check(1_000_000_002), Ok(()));
        // With a burst of 3 the tolerance absorbs late arrivals and nothing drifts: arrivals every
        // millisecond get the 3 at once, then one exactly on each due time (n - 2) / 3 s, the
        // last before 10 s being n = 31 at 9⅔ s: 32 in all.
        let mut g = Gcra::new(&config(3, 3));
        let allowed = (0..10_000_000_000u64).step_by(1_000_000).filter(|&t| g.check(t).is_ok()).count();
        assert_eq!(allowed, 32);
    }

    #[test]
    fn full_bucket_is_a_fresh_bucket() {
        let c = config(1000, 4);
        let mut g = Gcra::new(&c);
        g.check(1_000).unwrap();
        assert!(!g.is_full(1_000));
        assert!(!g.is_full(1_000 + 999_999));
        assert!(g.is_full(1_000 + 1_000_000));
        assert_eq!(c.refill_ns(), 4_000_000);
    }

    #[test]
    fn reconfigure_keeps_the_level_and_never_grants() {
        let mut g = Gcra::new(&config(10, 1));
        g.check(0).unwrap(); // next token at 100 ms
        g.reconfigure(&config(1000, 1));
        assert_eq!(g.check(99_999_999), Err(1));
        assert_eq!(g.check(100_000_000), Ok(()));
        assert_eq!(g.check(100_000_000), Err(1_000_000));
    }

    #[test]
    fn extreme_times_do_not_overflow() {
        let mut g = Gcra::new(&config(u32::MAX, u32::MAX));
        assert_eq!(g.check(u64::MAX), Ok(()));
        let mut g = Gcra::new(&config(1, 1));
        assert_eq!(g.check(u64::MAX), Ok(()));
        assert!(g.check(u64::MAX).is_err());
        // Time going backwards is only ever more conservative.
        assert!(g.check(0).is_err());
    }
}
