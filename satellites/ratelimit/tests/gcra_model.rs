//! The GCRA against an independent reference: a token bucket kept in exact rational arithmetic,
//! and the keyed map against an unbounded map of limiters that never evicts.

use std::collections::HashMap;

use proptest::prelude::*;
use ratelimit::{Decision, Gcra, KeyedLimiter, LimitConfig, Limiter, NANOS_PER_SEC};

/// A token bucket holding `tokens / 1e9` tokens (so a refill of `rate / 1e9` tokens per ns is the
/// integer `rate` per ns): a different formulation of the same contract, not a copy of the GCRA.
#[derive(Clone)]
struct TokenBucket {
    tokens_e9: u128,
    capacity_e9: u128,
    rate: u128,
    last_ns: u64,
}

impl TokenBucket {
    fn new(rate_per_sec: u32, burst: u32) -> TokenBucket {
        let capacity_e9 = u128::from(burst) * u128::from(NANOS_PER_SEC);
        TokenBucket { tokens_e9: capacity_e9, capacity_e9, rate: u128::from(rate_per_sec), last_ns: 0 }
    }

    /// `Ok` if a token was taken at `now_ns` (monotonic), else the exact ns until one is there.
    fn take(&mut self, now_ns: u64) -> Result<(), u64> {
        let refill = u128::from(now_ns - self.last_ns) * self.rate;
        self.tokens_e9 = (self.tokens_e9 + refill).min(self.capacity_e9);
        self.last_ns = now_ns;
        let one = u128::from(NANOS_PER_SEC);
        if self.tokens_e9 >= one {
            self.tokens_e9 -= one;
            Ok(())
        } else {
            Err(((one - self.tokens_e9).div_ceil(self.rate)) as u64)
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn gcra_equals_an_exact_token_bucket(
        rate in 1u32..5_000,
        burst in 1u32..20,
        start in 0u64..4_000_000_000_000_000_000,
        // Gaps as multiples of 1/8 emission interval plus jitter, so arrivals land on, just
        // before and just after token boundaries.
        gaps in prop::collection::vec((0u64..24, 0u64..3, 0u64..2), 1..300),
    ) {
        let config = LimitConfig { rate_per_sec: rate, burst, ..LimitConfig::default() };
        let mut gcra = Gcra::new(&config);
        let mut bucket = TokenBucket::new(rate, burst);
        let interval = NANOS_PER_SEC / u64::from(rate);
        let mut now = start;
        // The bucket starts full at `start`, as a fresh GCRA is at any time.
        bucket.last_ns = start;
        for (eighths, jitter, minus) in gaps {
            now += eighths * interval / 8 + jitter;
            now = now.saturating_sub(minus).max(bucket.last_ns);
            let got = gcra.check(now);
            prop_assert_eq!(got, bucket.take(now), "at {}", now);
            if let Err(retry) = got {
                // The retry time is exact: one ns earlier is still refused, then it conforms.
                let mut probe = gcra;
                if retry > 1 {
                    prop_assert!(probe.check(now + retry - 1).is_err());
                }
                prop_assert_eq!(probe.check(now + retry), Ok(()));
            }
        }
    }

    #[test]
    fn keyed_limiter_equals_unbounded_limiters_while_room_allows(
        keys_max in 1usize..6,
        steps in prop::collection::vec((0u8..8, 0u64..1_500_000), 1..400),
    ) {
        // 1000/s burst 2: refills in 2 ms; refusals leave the abuse window after 4 ms.
        let config = LimitConfig { rate_per_sec: 1000, burst: 2, abuse_rejects_max: 4, abuse_window_ms: 4 };
        let mut keyed = KeyedLimiter::new(config, keys_max).unwrap();
        let mut model: HashMap<u8, Limiter> = HashMap::new();
        let mut now = 0u64;
        for (key, dt) in steps {
            now += dt;
            // A key the model holds non-idle is one the keyed map must hold; an idle one is the
            // same as a fresh one. The new key gets room iff fewer than keys_max others are
            // active.
            let active_others =
                model.iter().filter(|(k, l)| **k != key && !l.is_idle(now)).count();
            let key_active = model.get(&key).is_some_and(|l| !l.is_idle(now));
            let expected = if !key_active && active_others >= keys_max {
                Decision::Limited { retry_after_ns: config.emission_interval_ns() }
            } else {
                model.entry(key).or_insert_with(|| Limiter::new(config).unwrap()).check(now)
            };
            prop_assert_eq!(keyed.check(&key, now), expected, "key {} at {}", key, now);
            prop_assert!(keyed.len() <= keys_max);
        }
    }
}
