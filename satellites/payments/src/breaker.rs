//! A circuit breaker (closed → open after N consecutive failures → half-open probes), sans-IO:
//! time enters as `now_ns`, so tests step a clock instead of sleeping.

use serde::{Deserialize, Serialize};

/// Where the breaker stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls pass.
    Closed,
    /// Calls are refused until the cool-down ends.
    Open,
    /// The cool-down ended: a bounded number of probe calls pass; one success closes the
    /// breaker, one failure opens it again.
    HalfOpen,
}

/// Tuning, from `[payments.breaker]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker.
    pub failures_max: u32,
    /// How long it stays open before probing, in milliseconds.
    pub open_ms: u64,
    /// Probe calls let through at once while half-open.
    pub probes_max: u32,
}

impl Default for BreakerConfig {
    fn default() -> BreakerConfig {
        BreakerConfig { failures_max: 5, open_ms: 10_000, probes_max: 1 }
    }
}

/// What the API shows of a breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct BreakerView {
    /// State at the time of the view.
    pub state: BreakerState,
    /// Failures in a row so far.
    pub consecutive_failures: u32,
    /// Times it opened since start.
    pub opened_total: u64,
    /// Calls refused while open.
    pub rejected_total: u64,
}

/// The breaker.
#[derive(Clone, Debug)]
pub struct Breaker {
    config: BreakerConfig,
    state: BreakerState,
    consecutive_failures: u32,
    open_until_ns: u64,
    probes_in_flight: u32,
    opened_total: u64,
    rejected_total: u64,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(config: BreakerConfig) -> Breaker {
        Breaker {
            config,
            state: BreakerState::Closed,
            consecutive_failures: 0,
            open_until_ns: 0,
            probes_in_flight: 0,
            opened_total: 0,
            rejected_total: 0,
        }
    }

    /// May a call start at `now_ns`? A `true` must be followed by [`Breaker::record`].
    pub fn allow(&mut self, now_ns: u64) -> bool {
        if self.state == BreakerState::Open && now_ns >= self.open_until_ns {
            self.state = BreakerState::HalfOpen;
            self.probes_in_flight = 0;
        }
        let allowed = match self.state {
            BreakerState::Closed => true,
            BreakerState::Open => false,
            BreakerState::HalfOpen => {
                let free = self.probes_in_flight < self.config.probes_max.max(1);
                if free {
                    self.probes_in_flight += 1;
                }
                free
            }
        };
        if !allowed {
            self.rejected_total += 1;
        }
        allowed
    }

    /// The outcome of an allowed call.
    pub fn record(&mut self, success: bool, now_ns: u64) {
        if success {
            self.consecutive_failures = 0;
            self.probes_in_flight = 0;
            self.state = BreakerState::Closed;
            return;
        }
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        let trips = self.state == BreakerState::HalfOpen
            || self.consecutive_failures >= self.config.failures_max.max(1);
        if trips && self.state != BreakerState::Open {
            self.state = BreakerState::Open;
            self.opened_total += 1;
            self.open_until_ns = now_ns.saturating_add(self.config.open_ms.saturating_mul(1_000_000));
            self.probes_in_flight = 0;
        }
    }

    /// When an open breaker starts probing (meaningful only while open).
    pub fn open_until_ns(&self) -> u64 {
        self.open_until_ns
    }

    /// State and counters.
    pub fn view(&self) -> BreakerView {
        BreakerView {
            state: self.state,
            consecutive_failures: self.consecutive_failures,
            opened_total: self.opened_total,
            rejected_total: self.rejected_total,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn opens_after_consecutive_failures_then_probes_and_closes() {
        let mut b = Breaker::new(BreakerConfig { failures_max: 3, open_ms: 100, probes_max: 1 });
        let mut now = 0;
        for _ in 0..2 {
            assert!(b.allow(now));
            b.record(false, now);
            now += MS;
        }
        // A success in between resets the count: failures must be consecutive.
        assert!(b.allow(now));
        b.record(true, now);
        for _ in 0..3 {
            assert!(b.allow(now));
            b.record(false, now);
        }
        assert_eq!(b.view().state, BreakerState::Open);
        assert!(!b.allow(now + 99 * MS));
        assert_eq!(b.view().rejected_total, 1);
        // Cool-down over: one probe passes, a second concurrent one does not.
        assert!(b.allow(now + 100 * MS));
        assert_eq!(b.view().state, BreakerState::HalfOpen);
        assert!(!b.allow(now + 100 * MS));
        // The probe fails: open again for another cool-down.
        b.record(false, now + 101 * MS);
        assert_eq!(b.view().state, BreakerState::Open);
        assert_eq!(b.view().opened_total, 2);
        assert!(!b.allow(now + 200 * MS));
        assert!(b.allow(now + 201 * MS));
        b.record(true, now + 202 * MS);
        assert_eq!(b.view().state, BreakerState::Closed);
        assert_eq!(b.view().consecutive_failures, 0);
    }
}
