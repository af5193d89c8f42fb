//! One key's limiter: the GCRA decides, the reject window watches for abuse.

use crate::config::{LimitConfig, RateLimitError};
use crate::gcra::Gcra;
use crate::window::RejectWindow;

/// What to do with one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Within the rate: pass it on.
    Allow,
    /// Over the rate: refuse it now (FIX 35=j "rate limited"), never queue it. One message sent
    /// `retry_after_ns` later would conform.
    Limited {
        /// Nanoseconds until the next message would conform, at least 1.
        retry_after_ns: u64,
    },
    /// Over the rate, and the refusals in the abuse window passed `abuse_rejects_max`: refuse it
    /// and log the session out.
    Abuse,
}

/// A GCRA limiter plus a sliding window over its refusals, for one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limiter {
    gcra: Gcra,
    rejects: RejectWindow,
    config: LimitConfig,
}

impl Limiter {
    /// A limiter with a full bucket and no refusals.
    pub fn new(config: LimitConfig) -> Result<Limiter, RateLimitError> {
        config.validate()?;
        Ok(Limiter::new_unchecked(config))
    }

    pub(crate) fn new_unchecked(config: LimitConfig) -> Limiter {
        Limiter { gcra: Gcra::new(&config), rejects: RejectWindow::new(&config), config }
    }

    /// Decides one message arriving at `now_ns` (any monotonic nanosecond clock the caller
    /// reads; the limiter reads none).
    #[inline]
    pub fn check(&mut self, now_ns: u64) -> Decision {
        match self.gcra.check(now_ns) {
            Ok(()) => Decision::Allow,
            Err(retry_after_ns) => {
                if self.rejects.record(now_ns) > self.config.abuse_rejects_max {
                    Decision::Abuse
                } else {
                    Decision::Limited { retry_after_ns }
                }
            }
        }
    }

    /// True when the state at `now_ns` is exactly a fresh limiter's (bucket full, no refusal in
    /// the window), so dropping it changes no future decision.
    #[inline]
    pub fn is_idle(&self, now_ns: u64) -> bool {
        self.gcra.is_full(now_ns) && self.rejects.is_empty(now_ns)
    }

    /// Refusals currently in the abuse window.
    pub fn rejects_in_window(&self, now_ns: u64) -> u32 {
        self.rejects.count(now_ns)
    }

    /// The configuration.
    pub fn config(&self) -> &LimitConfig {
        &self.config
    }

    /// Applies a new configuration (validated by the caller), keeping the bucket's level and the
    /// refusals counted so far when the window length is unchanged.
    pub(crate) fn reconfigure(&mut self, config: LimitConfig) {
        self.gcra.reconfigure(&config);
        if config.abuse_window_ms != self.config.abuse_window_ms {
            self.rejects = RejectWindow::new(&config);
        }
        self.config = config;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abuse_after_the_threshold_of_refusals_in_the_window() {
        let config = LimitConfig { rate_per_sec: 1, burst: 1, abuse_rejects_max: 3, abuse_window_ms: 8_000 };
        let mut l = Limiter::new(config).unwrap();
        let s = 1_000_000_000;
        assert_eq!(l.check(0), Decision::Allow);
        // Three refusals are tolerated...
        for i in 1..=3 {
            assert_eq!(l.check(i * 100), Decision::Limited { retry_after_ns: s - i * 100 });
        }
        // ...the fourth within the window is abuse.
        assert_eq!(l.check(400), Decision::Abuse);
        assert_eq!(l.rejects_in_window(400), 4);
        // Allowed messages do not count; refusals age out of the window.
        assert_eq!(l.check(s), Decision::Allow);
        assert!(!l.is_idle(2 * s));
        assert_eq!(l.rejects_in_window(8 * s), 0);
        assert!(l.is_idle(8 * s));
        assert_eq!(l.check(8 * s), Decision::Allow);
        assert!(matches!(l.check(8 * s), Decision::Limited { .. }));
    }

    #[test]
    fn zero_tolerance_makes_the_first_refusal_abuse() {
        let config = LimitConfig { rate_per_sec: 1, burst: 1, abuse_rejects_max: 0, abuse_window_ms: 1 };
        let mut l = Limiter::new(config).unwrap();
        assert_eq!(l.check(0), Decision::Allow);
        assert_eq!(l.check(0), Decision::Abuse);
    }

    #[test]
    fn bad_configs_are_refused() {
        let ok = LimitConfig::default();
        assert_eq!(Limiter::new(LimitConfig { rate_per_sec: 0, ..ok }), Err(RateLimitError::ZeroRate));
        assert_eq!(Limiter::new(LimitConfig { burst: 0, ..ok }), Err(RateLimitError::ZeroBurst));
        assert_eq!(Limiter::new(LimitConfig { abuse_window_ms: 0, ..ok }), Err(RateLimitError::ZeroWindow));
    }
}
