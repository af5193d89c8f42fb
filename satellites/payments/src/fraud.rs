//! Rule-based fraud scores, evaluated before a payment proceeds. Scores are integer
//! thousandths (800 = 0.8); the rules that fire add up, and a total above the configured
//! threshold declines the payment. Each decision is kept with the rules that fired.

use std::collections::{BTreeMap, VecDeque};

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

/// Past payments remembered per account for the failure and velocity rules; older ones drop.
pub const HISTORY_PER_ACCOUNT_MAX: usize = 256;

/// Accounts whose history is remembered; past it the oldest-touched half is forgotten (the
/// rules then see less history, never more).
pub const HISTORY_ACCOUNTS_MAX: usize = 100_000;

/// `[payments.fraud]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FraudConfig {
    /// Decline when the total score is above this (thousandths: 800 = 0.8).
    pub decline_above_milli: u32,
    /// Per asset, the amount (decimal text) above which `large_amount` fires.
    pub large_amount: BTreeMap<String, String>,
    /// Score of `large_amount`.
    pub large_amount_milli: u32,
    /// Failed payments of the account within `failures_window_s` that make
    /// `repeated_failures` fire.
    pub failures_min: u32,
    /// Window of `repeated_failures`, in seconds.
    pub failures_window_s: u64,
    /// Score of `repeated_failures`.
    pub failures_milli: u32,
    /// Payments of the account within `velocity_window_s` that make `velocity` fire.
    pub velocity_max: u32,
    /// Window of `velocity`, in seconds.
    pub velocity_window_s: u64,
    /// Score of `velocity`.
    pub velocity_milli: u32,
}

impl Default for FraudConfig {
    fn default() -> FraudConfig {
        FraudConfig {
            decline_above_milli: 800,
            large_amount: BTreeMap::new(),
            large_amount_milli: 500,
            failures_min: 3,
            failures_window_s: 3_600,
            failures_milli: 400,
            velocity_max: 10,
            velocity_window_s: 60,
            velocity_milli: 400,
        }
    }
}

/// The names of the rules.
pub const RULES: [&str; 3] = ["large_amount", "repeated_failures", "velocity"];

/// One rule that fired.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FiredRule {
    /// `large_amount`, `repeated_failures` or `velocity`.
    pub rule: &'static str,
    /// Its score, thousandths.
    pub score_milli: u32,
}

/// A [`FiredRule`] as stored, its name back as one of [`RULES`].
#[derive(Deserialize)]
struct StoredRule {
    rule: String,
    score_milli: u32,
}

impl<'de> Deserialize<'de> for FiredRule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<FiredRule, D::Error> {
        let r = StoredRule::deserialize(d)?;
        let rule = RULES
            .iter()
            .find(|n| **n == r.rule)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown fraud rule {:?}", r.rule)))?;
        Ok(FiredRule { rule, score_milli: r.score_milli })
    }
}

/// The decision on one payment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FraudDecision {
    /// Sum of the fired rules' scores, thousandths.
    pub score_milli: u32,
    /// The threshold it was compared with.
    pub decline_above_milli: u32,
    /// True when the score is above the threshold.
    pub declined: bool,
    /// The rules that fired.
    pub rules: Vec<FiredRule>,
}

/// The rules and each account's recent history.
#[derive(Debug)]
pub struct Fraud {
    config: FraudConfig,
    /// Per asset index: the large-amount threshold in minor units (None: the rule is off).
    large_minor: Vec<Option<u64>>,
    /// Account → (time, failed) of its recent payments, oldest first.
    history: FxHashMap<String, VecDeque<(u64, bool)>>,
}

impl Fraud {
    /// The rules, with `large_minor[asset]` already parsed from `config.large_amount`.
    pub fn new(config: FraudConfig, large_minor: Vec<Option<u64>>) -> Fraud {
        Fraud { config, large_minor, history: FxHashMap::default() }
    }

    /// Scores a payment of `amount` minor units of asset `asset` by `account` at `now_ns`.
    pub fn evaluate(&self, account: &str, asset: usize, amount: u64, now_ns: u64) -> FraudDecision {
        let c = &self.config;
        let mut rules = Vec::new();
        if self.large_minor.get(asset).copied().flatten().is_some_and(|limit| amount > limit) {
            rules.push(FiredRule { rule: "large_amount", score_milli: c.large_amount_milli });
        }
        if let Some(h) = self.history.get(account) {
            let since = |window_s: u64| now_ns.saturating_sub(window_s.saturating_mul(1_000_000_000));
            let failures_from = since(c.failures_window_s);
            let failures = h.iter().filter(|(ts, failed)| *failed && *ts >= failures_from).count();
            if c.failures_min > 0 && failures >= c.failures_min as usize {
                rules.push(FiredRule { rule: "repeated_failures", score_milli: c.failures_milli });
            }
            let velocity_from = since(c.velocity_window_s);
            let recent = h.iter().filter(|(ts, _)| *ts >= velocity_from).count();
            if c.velocity_max > 0 && recent >= c.velocity_max as usize {
                rules.push(FiredRule { rule: "velocity", score_milli: c.velocity_milli });
            }
        }
        let score_milli = rules.iter().map(|r| r.score_milli).fold(0u32, u32::saturating_add);
        FraudDecision {
            score_milli,
            decline_above_milli: c.decline_above_milli,
            declined: score_milli > c.decline_above_milli,
            rules,
        }
    }

    /// Remembers a payment's final outcome (failed or not) for the account's later payments.
    pub fn record(&mut self, account: &str, now_ns: u64, failed: bool) {
        if self.history.len() >= HISTORY_ACCOUNTS_MAX && !self.history.contains_key(account) {
            let mut by_age: Vec<(u64, String)> =
                self.history.iter().map(|(a, h)| (h.back().map_or(0, |e| e.0), a.clone())).collect();
            by_age.sort_unstable();
            for (_, a) in by_age.into_iter().take(HISTORY_ACCOUNTS_MAX / 2) {
                self.history.remove(&a);
            }
        }
        let h = self.history.entry(account.to_string()).or_default();
        if h.len() == HISTORY_PER_ACCOUNT_MAX {
            h.pop_front();
        }
        h.push_back((now_ns, failed));
    }
}

#[cfg(test)]
#[allow(clippy::inconsistent_digit_grouping)] // amounts in cents: 1_000_00 is 1000.00
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn fraud() -> Fraud {
        let config = FraudConfig { velocity_max: 4, velocity_window_s: 10, ..FraudConfig::default() };
        Fraud::new(config, vec![Some(1_000_00)])
    }

    #[test]
    fn scores_add_and_decline_only_above_the_threshold() {
        let mut f = fraud();
        let d = f.evaluate("alice", 0, 1_000_00, 0);
        assert_eq!((d.score_milli, d.declined), (0, false), "at the threshold amount nothing fires");
        let d = f.evaluate("alice", 0, 1_000_01, 0);
        assert_eq!(d.rules, vec![FiredRule { rule: "large_amount", score_milli: 500 }]);
        assert!(!d.declined, "0.5 alone is not above 0.8");
        for i in 0..3 {
            f.record("alice", i * S, true);
        }
        let d = f.evaluate("alice", 0, 1_000_01, 3 * S);
        assert_eq!(d.score_milli, 900);
        assert!(d.declined);
        assert_eq!(d.rules.iter().map(|r| r.rule).collect::<Vec<_>>(), ["large_amount", "repeated_failures"]);
        // Other accounts are not affected; failures leave the window after an hour.
        assert!(!f.evaluate("bob", 0, 1_000_01, 3 * S).declined);
        assert_eq!(f.evaluate("alice", 0, 5, 3_600 * S + 3 * S).score_milli, 0);
    }

    #[test]
    fn velocity_counts_payments_in_the_window() {
        let mut f = fraud();
        for i in 0..4 {
            f.record("bob", i * S, false);
        }
        let d = f.evaluate("bob", 0, 5, 4 * S);
        assert_eq!(d.rules, vec![FiredRule { rule: "velocity", score_milli: 400 }]);
        assert_eq!(f.evaluate("bob", 0, 5, 11 * S).score_milli, 0, "the first left the window");
        // Velocity and failures together: 0.8 is not above 0.8.
        for i in 0..3 {
            f.record("bob", 5 * S + i, true);
        }
        let d = f.evaluate("bob", 0, 5, 6 * S);
        assert_eq!((d.score_milli, d.declined), (800, false));
    }
}
