//! The `[payments]` table of the venue config.
//!
//! ```toml
//! [payments]
//! enabled = true
//! call_timeout_ms = 2000
//! methods = [
//!   { name = "card", fee_percent = "2" }, { name = "bank_transfer", fee_percent = "0" },
//!   { name = "upi", fee_percent = "0.5" }, { name = "wallet", fee_percent = "1" },
//! ]
//! fraud = { decline_above_milli = 800, large_amount = { USD = "10000" } }
//! breaker = { failures_max = 5, open_ms = 10000, probes_max = 1 }
//! webhooks = [{ url = "https://example.com/hooks", secret = "whsec_..." }]
//! api_keys = [{ id = "alice-1", account = "alice", salt = "9f1c...", sha256 = "..." }]
//! ```

use std::str::FromStr;

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::breaker::BreakerConfig;
use crate::connector::SimulatorConfig;
use crate::fraud::FraudConfig;

/// Most fee a method may charge, in basis points (100%: a fee that takes all of a payment is
/// refused per request, `amount: ... do not cover the fee`).
pub const FEE_BPS_MAX: u32 = 10_000;
/// Least time an idempotency key is kept (Stripe's 24 h).
pub const IDEMPOTENCY_RETENTION_MIN_S: u64 = 86_400;
/// Most methods, webhook endpoints and API keys each.
pub const CONFIG_LIST_MAX: usize = 1_024;

/// One payment method.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MethodConfig {
    /// Name in requests.
    pub name: String,
    /// Fee in percent of the gross amount, to the venue's fee account: an exact decimal string
    /// (`"2"`, `"0.5"`, `"0.01"`), 0 to 100, at most two decimals (one basis point). Text, not
    /// a TOML number, so that no float stands between the config and the integer arithmetic.
    #[serde(default)]
    pub fee_percent: String,
    /// Read only to refuse it with a message: fees were once set in basis points.
    #[serde(default, skip_serializing)]
    pub fee_bps: Option<u32>,
}

impl MethodConfig {
    /// A method charging `fee_percent` (decimal text).
    pub fn new(name: &str, fee_percent: &str) -> MethodConfig {
        MethodConfig { name: name.to_string(), fee_percent: fee_percent.to_string(), fee_bps: None }
    }

    /// The fee in basis points (the integer the arithmetic uses), or why the text is refused.
    pub fn fee_bps(&self) -> Result<u32, ConfigError> {
        let bad = |detail: String| {
            ConfigError::Method(format!("{}.fee_percent: {:?} {detail}", self.name, self.fee_percent))
        };
        if self.fee_bps.is_some() {
            return Err(ConfigError::Method(format!(
                "{}.fee_bps: fees are set in percent, e.g. fee_percent = \"2\" for 2%",
                self.name
            )));
        }
        let text = self.fee_percent.trim();
        if text.is_empty() {
            return Err(ConfigError::Method(format!(
                "{}.fee_percent: required, a decimal string such as \"2\" for 2%",
                self.name
            )));
        }
        if text.ends_with('%') {
            return Err(bad("has a %: write the number alone, e.g. \"2\" for 2%".into()));
        }
        // Plain decimal digits only (no exponent, no sign): what a person writes for a percent.
        if !text.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b'-') {
            return Err(bad("is not a decimal number such as \"2\" or \"0.5\"".into()));
        }
        let percent = Decimal::from_str(text).map_err(|e| bad(format!("is not a decimal number: {e}")))?;
        if percent.is_sign_negative() && !percent.is_zero() {
            return Err(bad("is negative".into()));
        }
        if percent > Decimal::ONE_HUNDRED {
            return Err(bad("is above 100".into()));
        }
        let bps = percent * Decimal::ONE_HUNDRED;
        if !bps.fract().is_zero() {
            return Err(bad("has more than two decimals (the unit is 0.01%, one basis point)".into()));
        }
        let bps = bps.to_u32().ok_or_else(|| bad("is out of range".into()))?;
        debug_assert!(bps <= FEE_BPS_MAX);
        Ok(bps)
    }
}

/// One webhook endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookEndpoint {
    /// `http://` or `https://` URL.
    pub url: String,
    /// HMAC-SHA256 key of this endpoint's signatures.
    pub secret: String,
}

/// How webhooks are delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// Attempts per delivery, the first included.
    pub attempts_max: u32,
    /// Backoff before retry n is `backoff_ms << (n - 1)`.
    pub backoff_ms: u64,
    /// Per-attempt timeout.
    pub timeout_ms: u64,
    /// Deliveries waiting for the worker; past it a new one is refused (recorded as dropped).
    pub queue_max: usize,
    /// Delivery records kept for `GET /v1/webhooks/deliveries`.
    pub kept_max: usize,
}

impl Default for DeliveryConfig {
    fn default() -> DeliveryConfig {
        DeliveryConfig {
            attempts_max: 6,
            backoff_ms: 500,
            timeout_ms: 5_000,
            queue_max: 4_096,
            kept_max: 10_000,
        }
    }
}

/// An API key, stored hashed: `sha256 = hex(SHA-256(salt bytes ‖ key bytes))`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// Name shown in logs and idempotency scopes.
    pub id: String,
    /// The account it may act for; absent: an operator key, which sees all.
    #[serde(default)]
    pub account: Option<String>,
    /// Salt, hex.
    pub salt: String,
    /// Hash, hex.
    pub sha256: String,
}

/// `[payments]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentsConfig {
    /// Serve the payments API (with the ledger; `[settlement] enabled = false` turns both off).
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// Methods and their fees.
    #[serde(default = "default_methods")]
    pub methods: Vec<MethodConfig>,
    /// Owner that receives payment fees (the settlement's fee owner).
    #[serde(default = "default_fee_owner")]
    pub fee_owner: String,
    /// Fraud rules.
    #[serde(default)]
    pub fraud: FraudConfig,
    /// Breaker in front of the rails.
    #[serde(default)]
    pub breaker: BreakerConfig,
    /// Breaker in front of webhook deliveries.
    #[serde(default)]
    pub webhook_breaker: BreakerConfig,
    /// Per-call timeout of the rails.
    #[serde(default = "default_call_timeout_ms")]
    pub call_timeout_ms: u64,
    /// The simulated rails.
    #[serde(default)]
    pub simulator: SimulatorConfig,
    /// Where final statuses are posted.
    #[serde(default)]
    pub webhooks: Vec<WebhookEndpoint>,
    /// How they are delivered.
    #[serde(default)]
    pub delivery: DeliveryConfig,
    /// API keys.
    #[serde(default)]
    pub api_keys: Vec<ApiKeyConfig>,
    /// How long an idempotency key is kept, at least 24 h.
    #[serde(default = "default_retention_s")]
    pub idempotency_retention_s: u64,
    /// Idempotency keys kept at once; past it new keys are refused (503) until old ones expire.
    #[serde(default = "default_idempotency_max")]
    pub idempotency_keys_max: usize,
    /// Payment records kept in memory; past it new payments are refused (503).
    #[serde(default = "default_payments_max")]
    pub payments_max: usize,
}

fn default_enabled() -> bool {
    true
}
fn default_methods() -> Vec<MethodConfig> {
    [("card", "2"), ("bank_transfer", "0"), ("upi", "0.5"), ("wallet", "1")]
        .iter()
        .map(|(n, p)| MethodConfig::new(n, p))
        .collect()
}
fn default_fee_owner() -> String {
    "venue:fees".into()
}
fn default_call_timeout_ms() -> u64 {
    2_000
}
fn default_retention_s() -> u64 {
    IDEMPOTENCY_RETENTION_MIN_S
}
fn default_idempotency_max() -> usize {
    1_000_000
}
fn default_payments_max() -> usize {
    1_000_000
}

impl Default for PaymentsConfig {
    fn default() -> PaymentsConfig {
        PaymentsConfig {
            enabled: default_enabled(),
            methods: default_methods(),
            fee_owner: default_fee_owner(),
            fraud: FraudConfig::default(),
            breaker: BreakerConfig::default(),
            webhook_breaker: BreakerConfig::default(),
            call_timeout_ms: default_call_timeout_ms(),
            simulator: SimulatorConfig::default(),
            webhooks: Vec::new(),
            delivery: DeliveryConfig::default(),
            api_keys: Vec::new(),
            idempotency_retention_s: default_retention_s(),
            idempotency_keys_max: default_idempotency_max(),
            payments_max: default_payments_max(),
        }
    }
}

/// A config value that cannot be used; each names its key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Bad method.
    #[error("payments.methods: {0}")]
    Method(String),
    /// A webhook URL that is not http(s).
    #[error("payments.webhooks.url: {0:?} is not an http:// or https:// URL")]
    WebhookUrl(String),
    /// An empty webhook secret.
    #[error("payments.webhooks.secret: must not be empty")]
    WebhookSecret,
    /// Bad API key entry.
    #[error("payments.api_keys: {0}")]
    ApiKey(String),
    /// Retention below 24 h.
    #[error("payments.idempotency_retention_s: {0} is below {IDEMPOTENCY_RETENTION_MIN_S}")]
    Retention(u64),
    /// Bad fraud threshold amount.
    #[error("payments.fraud.large_amount.{asset}: {detail}")]
    LargeAmount {
        /// The asset key.
        asset: String,
        /// What is wrong.
        detail: String,
    },
    /// The fee owner has no account in the ledger.
    #[error("payments.fee_owner: {0:?} has no account in the ledger")]
    FeeOwner(String),
    /// A list longer than [`CONFIG_LIST_MAX`] or a zero bound.
    #[error("payments.{0}: out of range")]
    Bound(&'static str),
}

/// Is `url` an http(s) URL with a host?
pub fn check_webhook_url(url: &str) -> Result<(), ConfigError> {
    let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') && !r.contains(char::is_whitespace) => Ok(()),
        _ => Err(ConfigError::WebhookUrl(url.to_string())),
    }
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.len().is_multiple_of(2) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl PaymentsConfig {
    /// Checks what the types cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.methods.is_empty() || self.methods.len() > CONFIG_LIST_MAX {
            return Err(ConfigError::Bound("methods"));
        }
        for (i, m) in self.methods.iter().enumerate() {
            if m.name.is_empty() || self.methods[..i].iter().any(|o| o.name == m.name) {
                return Err(ConfigError::Method(format!("{:?} is empty or repeated", m.name)));
            }
            m.fee_bps()?;
        }
        if self.webhooks.len() > CONFIG_LIST_MAX || self.api_keys.len() > CONFIG_LIST_MAX {
            return Err(ConfigError::Bound("webhooks"));
        }
        for w in &self.webhooks {
            check_webhook_url(&w.url)?;
            if w.secret.is_empty() {
                return Err(ConfigError::WebhookSecret);
            }
        }
        for (i, k) in self.api_keys.iter().enumerate() {
            if k.id.is_empty() || self.api_keys[..i].iter().any(|o| o.id == k.id) {
                return Err(ConfigError::ApiKey(format!("id {:?} is empty or repeated", k.id)));
            }
            if !is_hex(&k.salt) || !is_hex(&k.sha256) || k.sha256.len() != 64 {
                return Err(ConfigError::ApiKey(format!(
                    "{}: salt and sha256 must be hex (sha256: 64 digits)",
                    k.id
                )));
            }
        }
        if self.idempotency_retention_s < IDEMPOTENCY_RETENTION_MIN_S {
            return Err(ConfigError::Retention(self.idempotency_retention_s));
        }
        if self.idempotency_keys_max == 0 || self.payments_max == 0 || self.delivery.queue_max == 0 {
            return Err(ConfigError::Bound("idempotency_keys_max, payments_max, delivery.queue_max"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls_must_be_http_or_https() {
        assert!(check_webhook_url("http://127.0.0.1:9/x").is_ok());
        assert!(check_webhook_url("https://hooks.example.com").is_ok());
        for bad in ["ftp://x", "file:///etc/passwd", "http://", "javascript:alert(1)", "hooks.example.com"] {
            let e = check_webhook_url(bad).unwrap_err();
            assert!(e.to_string().starts_with("payments.webhooks.url"), "{e}");
        }
    }

    #[test]
    fn fees_are_percent_text_to_exact_basis_points() {
        for (text, bps) in
            [("2", 200), ("2.0", 200), ("0.5", 50), ("0.01", 1), ("0", 0), ("100", 10_000), ("1.50", 150)]
        {
            assert_eq!(MethodConfig::new("card", text).fee_bps(), Ok(bps), "{text}");
        }
        for (text, why) in [
            ("2%", "has a %"),
            ("-1", "is negative"),
            ("100.01", "above 100"),
            ("0.005", "more than two decimals"),
            ("1e2", "not a decimal number"),
            ("", "required"),
            ("two", "not a decimal number"),
            ("1.2.3", "not a decimal number"),
        ] {
            let e = MethodConfig::new("card", text).fee_bps().unwrap_err().to_string();
            assert!(e.starts_with("payments.methods: card.fee_percent:"), "{text}: {e}");
            assert!(e.contains(why), "{text}: {e}");
            let c = PaymentsConfig {
                methods: vec![MethodConfig::new("card", text)],
                ..PaymentsConfig::default()
            };
            assert_eq!(c.validate().map_err(|e| e.to_string()), Err(e), "validate refuses {text}");
        }
        let old = MethodConfig { fee_bps: Some(200), ..MethodConfig::new("card", "2") };
        assert!(old.fee_bps().unwrap_err().to_string().contains("card.fee_bps: fees are set in percent"));
    }

    #[test]
    fn defaults_validate_and_retention_below_a_day_is_refused() {
        assert_eq!(PaymentsConfig::default().validate(), Ok(()));
        let c = PaymentsConfig { idempotency_retention_s: 3_600, ..PaymentsConfig::default() };
        assert_eq!(c.validate(), Err(ConfigError::Retention(3_600)));
    }
}
