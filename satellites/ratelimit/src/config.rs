//! Per-key configuration and the crate's error type.

use serde::{Deserialize, Serialize};

/// Nanoseconds per second: the GCRA works in nanoseconds scaled by the rate (see [`crate::Gcra`]).
pub const NANOS_PER_SEC: u64 = 1_000_000_000;

/// How fast one key may send, and how many refusals in a window count as abuse.
///
/// Every field has a default, so a TOML table may name only what it changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitConfig {
    /// Sustained messages per second (the refill rate), at least 1.
    pub rate_per_sec: u32,
    /// Messages that may arrive back to back after an idle period (the bucket's depth), at
    /// least 1.
    pub burst: u32,
    /// Refused messages tolerated within `abuse_window_ms`; one more is [`crate::Decision::Abuse`].
    pub abuse_rejects_max: u32,
    /// Length of the abuse window in milliseconds, at least 1.
    pub abuse_window_ms: u64,
}

impl Default for LimitConfig {
    /// 100 messages per second with bursts of 50; 500 refusals within 10 s are abuse (a client
    /// that keeps sending at more than 150 messages per second for ten seconds).
    fn default() -> LimitConfig {
        LimitConfig { rate_per_sec: 100, burst: 50, abuse_rejects_max: 500, abuse_window_ms: 10_000 }
    }
}

impl LimitConfig {
    /// Checks the fields' ranges.
    pub fn validate(&self) -> Result<(), RateLimitError> {
        if self.rate_per_sec == 0 {
            return Err(RateLimitError::ZeroRate);
        }
        if self.burst == 0 {
            return Err(RateLimitError::ZeroBurst);
        }
        if self.abuse_window_ms == 0 {
            return Err(RateLimitError::ZeroWindow);
        }
        if self.abuse_window_ms > u64::MAX / 1_000_000 {
            return Err(RateLimitError::WindowTooLong(self.abuse_window_ms));
        }
        Ok(())
    }

    /// Nanoseconds between two messages at the sustained rate, rounded up.
    pub fn emission_interval_ns(&self) -> u64 {
        NANOS_PER_SEC.div_ceil(u64::from(self.rate_per_sec.max(1)))
    }

    /// Nanoseconds an untouched bucket needs to refill from empty to full, rounded up: a key idle
    /// that long has no state worth keeping.
    pub fn refill_ns(&self) -> u64 {
        (u64::from(self.burst) * NANOS_PER_SEC).div_ceil(u64::from(self.rate_per_sec.max(1)))
    }
}

/// Why a limiter could not be configured.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RateLimitError {
    /// A rate of zero would refuse everything forever.
    #[error("rate_per_sec must be at least 1")]
    ZeroRate,
    /// A burst of zero would refuse everything forever.
    #[error("burst must be at least 1")]
    ZeroBurst,
    /// The abuse window must have a length.
    #[error("abuse_window_ms must be at least 1")]
    ZeroWindow,
    /// The abuse window does not fit in `u64` nanoseconds.
    #[error("abuse_window_ms {0} is too long")]
    WindowTooLong(u64),
    /// A keyed limiter needs room for at least one key.
    #[error("keys_max must be at least 1")]
    ZeroKeys,
    /// The per-key override table is full.
    #[error("per-key overrides are full ({0} keys)")]
    OverridesFull(usize),
}
