//! The external payment rails behind a trait, and a seeded simulator of them.
//!
//! The core calls [`Connector::execute`] once per payment with a per-call timeout; a
//! connector must answer within it or report [`RailError::Timeout`]. Timeouts and
//! unavailability count against the circuit breaker; a decline is a business answer and does
//! not. A payment whose answer the venue lost (a stop during the call) is looked up with
//! [`Connector::status`] by its reference ([`RailCall::reference`]) at the next start.

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

impl RailCall<'_> {
    /// The venue's reference of the payment at the rails (`pay-<id>`): sent with the call, and
    /// what the venue asks the rails about when it lost their answer. Payment ids are never
    /// reused by a store, so neither are references.
    pub fn reference(&self) -> String {
        format!("pay-{}", self.payment_id)
    }
}

/// The rails' answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RailOutcome {
    /// Money moved; the rails' reference.
    Approved(String),
    /// Refused by the rails (insufficient funds at the bank, card declined...).
    Declined(String),
}

/// What the rails know of a payment, asked by its reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RailStatus {
    /// They moved the money; their reference.
    Approved(String),
    /// They refused it.
    Declined(String),
    /// They have no payment with that reference: the call never reached them.
    Unknown,
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

/// The rails: shared by the requests in flight, called concurrently (no lock around a call).
pub trait Connector: Send + Sync {
    /// Moves the money of `call`, answering within `timeout_ms`.
    fn execute(&self, call: &RailCall<'_>, timeout_ms: u64) -> Result<RailOutcome, RailError>;

    /// What became of `call` (looked up by [`RailCall::reference`]), answering within
    /// `timeout_ms`: for a payment whose [`Connector::execute`] was cut off.
    fn status(&self, call: &RailCall<'_>, timeout_ms: u64) -> Result<RailStatus, RailError>;
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
///
/// Each payment's draws come from the seed and its id alone (not from the calls before it), so
/// the rails' decision on a payment can be recomputed by [`Connector::status`] in another
/// process, as real rails look a payment up by its reference.
#[derive(Debug)]
pub struct SimulatedConnector {
    config: SimulatorConfig,
}

/// What the simulated rails draw for one payment.
struct Draw {
    latency_ms: u64,
    roll: u32,
    reference: u32,
}

impl SimulatedConnector {
    /// Rails with these odds.
    pub fn new(config: SimulatorConfig) -> SimulatedConnector {
        SimulatedConnector { config }
    }

    fn draw(&self, payment_id: u64) -> Draw {
        // SplitMix64's increment spreads neighbouring ids over the seed space.
        let mut rng =
            SmallRng::seed_from_u64(self.config.seed ^ payment_id.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let latency_ms = rng.gen_range(0..=self.config.latency_max_ms);
        let roll = rng.gen_range(0..1_000u32);
        Draw { latency_ms, roll, reference: rng.gen() }
    }

    /// Every call really takes `sleep_ms` (up to the timeout): false when that is a timeout.
    fn sleep(&self, timeout_ms: u64) -> bool {
        if self.config.sleep_ms > 0 {
            std::thread::sleep(std::time::Duration::from_millis(self.config.sleep_ms.min(timeout_ms)));
        }
        self.config.sleep_ms <= timeout_ms
    }

    /// The rails' decision on a payment that reached them.
    fn decision(&self, call: &RailCall<'_>, d: &Draw) -> RailOutcome {
        if d.roll < self.config.unavailable_milli + self.config.decline_milli {
            RailOutcome::Declined("simulated decline".into())
        } else {
            RailOutcome::Approved(format!("sim-{}-{}", call.payment_id, d.reference))
        }
    }
}

impl Connector for SimulatedConnector {
    fn execute(&self, call: &RailCall<'_>, timeout_ms: u64) -> Result<RailOutcome, RailError> {
        if !self.sleep(timeout_ms) {
            return Err(RailError::Timeout { timeout_ms });
        }
        let d = self.draw(call.payment_id);
        if d.latency_ms > timeout_ms {
            return Err(RailError::Timeout { timeout_ms });
        }
        if d.roll < self.config.unavailable_milli {
            return Err(RailError::Unavailable("simulated outage".into()));
        }
        Ok(self.decision(call, &d))
    }

    /// An outage drawn for the payment means the call never reached the rails (unknown);
    /// otherwise they decided, whether or not their answer came back in time.
    fn status(&self, call: &RailCall<'_>, timeout_ms: u64) -> Result<RailStatus, RailError> {
        if !self.sleep(timeout_ms) {
            return Err(RailError::Timeout { timeout_ms });
        }
        let d = self.draw(call.payment_id);
        if d.roll < self.config.unavailable_milli {
            return Ok(RailStatus::Unknown);
        }
        Ok(match self.decision(call, &d) {
            RailOutcome::Approved(reference) => RailStatus::Approved(reference),
            RailOutcome::Declined(reason) => RailStatus::Declined(reason),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(payment_id: u64) -> RailCall<'static> {
        RailCall { payment_id, kind: PaymentKind::Deposit, method: "card", asset: "USD", amount_minor: 100 }
    }

    /// Another process with the same seed (a restart) tells what the rails did with a payment
    /// from its reference alone, whatever was called before.
    #[test]
    fn the_simulator_answers_status_queries_as_it_answered_the_call() {
        let config = SimulatorConfig {
            seed: 7,
            decline_milli: 300,
            unavailable_milli: 200,
            ..SimulatorConfig::default()
        };
        let first = SimulatedConnector::new(config);
        let outcomes: Vec<_> = (1..=200).map(|id| first.execute(&call(id), 1_000)).collect();
        let restarted = SimulatedConnector::new(config);
        let (mut approved, mut declined, mut unknown) = (0, 0, 0);
        for (id, outcome) in (1..=200u64).zip(&outcomes).collect::<Vec<_>>().into_iter().rev() {
            let status = restarted.status(&call(id), 1_000).unwrap();
            match (outcome, &status) {
                (Ok(RailOutcome::Approved(a)), RailStatus::Approved(b)) if a == b => approved += 1,
                (Ok(RailOutcome::Declined(_)), RailStatus::Declined(_)) => declined += 1,
                (Err(RailError::Unavailable(_)), RailStatus::Unknown) => unknown += 1,
                other => panic!("payment {id}: {other:?}"),
            }
        }
        assert!(approved > 0 && declined > 0 && unknown > 0, "{approved} {declined} {unknown}");
        // Another seed, other draws.
        let other = SimulatedConnector::new(SimulatorConfig { seed: 8, ..config });
        assert!((1..=50).any(|id| other.draw(id).roll != first.draw(id).roll));
    }
}
