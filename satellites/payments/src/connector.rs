//! The external payment rails behind a trait, and a seeded simulator of them.
//!
//! The core calls [`Connector::execute`] once per payment with a per-call timeout; a
//! connector must answer within it or report [`RailError::Timeout`]. Timeouts and
//! unavailability count against the circuit breaker; a decline is a business answer and does
//! not.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// Deposit or withdrawal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentKind {
    /// Money in.
    Deposit,
    /// Money out.
    Withdrawal,
}

/// One call to the rails.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RailCall<'a> {
    /// Payment id.
    pub payment_id: u64,
    /// Direction.
    pub kind: PaymentKind,
    /// Method name (`card`, `upi`, ...).
    pub method: &'a str,
    /// Asset name.
    pub asset: &'a str,
    /// Gross amount, minor units.
    pub amount_minor: u64,
}

/// The rails' answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RailOutcome {
    /// Money moved; the rails' reference.
    Approved(String),
    /// Refused by the rails (insufficient funds at the bank, card declined...).
    Declined(String),
}

/// The rails did not answer usefully.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RailError {
    /// No answer within the per-call timeout.
    #[error("rails: no answer within {timeout_ms} ms")]
    Timeout {
        /// The timeout.
        timeout_ms: u64,
    },
    /// The rails are down.
    #[error("rails: unavailable: {0}")]
    Unavailable(String),
}

/// The rails.
pub trait Connector: Send {
    /// Moves the money of `call`, answering within `timeout_ms`.
    fn execute(&mut self, call: &RailCall<'_>, timeout_ms: u64) -> Result<RailOutcome, RailError>;
}

/// `[payments.simulator]`: the simulated rails' odds, in thousandths.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimulatorConfig {
    /// Seed: the same seed and calls give the same outcomes.
    pub seed: u64,
    /// Odds of a decline.
    pub decline_milli: u32,
    /// Odds of the rails being unavailable.
    pub unavailable_milli: u32,
    /// Simulated latency is uniform in `0..=latency_max_ms`; above the call's timeout it
    /// becomes a timeout.
    pub latency_max_ms: u64,
    /// Every call really takes this long (sleeps; up to the call's timeout, past it the call
    /// times out): a slow rail, for load and concurrency tests. 0: instant.
    pub sleep_ms: u64,
}

impl Default for SimulatorConfig {
    fn default() -> SimulatorConfig {
        SimulatorConfig { seed: 1, decline_milli: 0, unavailable_milli: 0, latency_max_ms: 0, sleep_ms: 0 }
    }
}

/// Simulated rails: seeded, deterministic, and instant (latency is drawn, compared with the
/// timeout, never slept) unless `sleep_ms` asks for a slow rail.
#[derive(Debug)]
pub struct SimulatedConnector {
    config: SimulatorConfig,
    rng: SmallRng,
}

impl SimulatedConnector {
    /// Rails with these odds.
    pub fn new(config: SimulatorConfig) -> SimulatedConnector {
        SimulatedConnector { config, rng: SmallRng::seed_from_u64(config.seed) }
    }
}

impl Connector for SimulatedConnector {
    fn execute(&mut self, call: &RailCall<'_>, timeout_ms: u64) -> Result<RailOutcome, RailError> {
        if self.config.sleep_ms > 0 {
            std::thread::sleep(std::time::Duration::from_millis(self.config.sleep_ms.min(timeout_ms)));
            if self.config.sleep_ms > timeout_ms {
                return Err(RailError::Timeout { timeout_ms });
            }
        }
        let latency_ms = self.rng.gen_range(0..=self.config.latency_max_ms);
        let roll = self.rng.gen_range(0..1_000u32);
        if latency_ms > timeout_ms {
            return Err(RailError::Timeout { timeout_ms });
        }
        if roll < self.config.unavailable_milli {
            return Err(RailError::Unavailable("simulated outage".into()));
        }
        if roll < self.config.unavailable_milli + self.config.decline_milli {
            return Ok(RailOutcome::Declined("simulated decline".into()));
        }
        Ok(RailOutcome::Approved(format!("sim-{}-{}", call.payment_id, self.rng.gen::<u32>())))
    }
}
