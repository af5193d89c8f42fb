//! The bounds of `exchange serve`'s configuration, checked before anything starts: a bound of 0
//! or beyond its maximum is refused with the field's TOML name and its range, so a typo is an
//! error message (exit status 2) and never a panic or an allocation failure later.
//!
//! Values where 0 has a meaning of its own are not bounds and are not refused at 0:
//! `network.poll_spin_us` (block at once), `journal.snapshot_every` (never), `engine.pin_core`
//! (core 0), `network.quic_tuning.max_ack_delay_us` and `ack_eliciting_threshold` (acknowledge at
//! once), `risk.price_band_bps` (at the reference price), `risk.credit_max`,
//! `settlement.idle_wait_ms` (the shortest sleep) and `settlement.commit_interval_ms` (commit
//! each time round).

use engine::{ORDERS_MAX_LIMIT, SYMBOLS_MAX};

use crate::serve::{ServeConfig, ACCOUNTS_MAX};

/// Longest `network.poll_spin_us`: past a second, spinning first is busy-spinning.
pub const POLL_SPIN_US_MAX: u64 = 1_000_000;

/// Longest `network.quic_tuning.initial_rtt_us` (10 s): an estimate beyond it only delays the
/// first loss recovery.
pub const INITIAL_RTT_US_MAX: u64 = 10_000_000;

/// Longest `network.quic_tuning.max_ack_delay_us`: the ACK frequency extension's limit (2^14 ms).
pub const MAX_ACK_DELAY_US_MAX: u64 = (1 << 14) * 1_000 - 1;

/// Longest `journal.sync_interval_ms` (1 min): a periodic sync rarer than that is page-cache
/// durability with extra steps.
pub const SYNC_INTERVAL_MS_MAX: u64 = 60_000;

/// Longest `settlement.idle_wait_ms` and `settlement.commit_interval_ms` (1 min): the ledger
/// (and the funds check's view of it) would trail the venue by more than that.
pub const SETTLEMENT_WAIT_MS_MAX: u64 = 60_000;

/// Largest `journal.segment_mib`: the journal's segment size bound.
pub const SEGMENT_MIB_MAX: usize = journal::SEGMENT_SIZE_MAX >> 20;

/// Smallest `session.message_bytes_max`: a Logon with its password fits.
pub const MESSAGE_BYTES_MIN: usize = 256;

/// Largest `session.message_bytes_max`: every session reserves a receive buffer this large.
pub const MESSAGE_BYTES_MAX: usize = 1 << 20;

/// Largest `session.resend_store_max` (the store is also bounded by its bytes).
pub const RESEND_STORE_MAX: usize = 1 << 20;

/// Largest `rate_limit.keys_max`: the limiter's table is allocated for it at start-up.
pub const RATE_LIMIT_KEYS_MAX: usize = 1 << 24;

/// A configuration value outside its range.
#[derive(Debug, thiserror::Error)]
pub enum BoundError {
    /// A bound outside `min..=max`.
    #[error("{field} {value}: must be within {min}..={max}")]
    OutOfRange {
        /// The TOML name, e.g. `engine.orders_max`.
        field: String,
        /// The configured value.
        value: u64,
        /// Smallest allowed.
        min: u64,
        /// Largest allowed.
        max: u64,
    },
    /// A risk limit of 0, which would refuse every order.
    #[error("{field} 0: refuses every order; engage the kill switch (`exchange admin`) instead")]
    ZeroLimit {
        /// The TOML name, e.g. `risk.order_qty_max`.
        field: String,
    },
    /// A rate limit's fields are out of range.
    #[error("{field}: {source}")]
    RateLimit {
        /// The TOML table, e.g. `rate_limit.session`.
        field: String,
        /// Which field and why.
        source: ratelimit::RateLimitError,
    },
}

fn within(field: &str, value: u64, min: u64, max: u64) -> Result<(), BoundError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(BoundError::OutOfRange { field: field.to_owned(), value, min, max })
    }
}

fn risk_limits(table: &str, limits: &risk::RiskLimits) -> Result<(), BoundError> {
    let zero = |name: &str| BoundError::ZeroLimit { field: format!("{table}.{name}") };
    if limits.order_qty_max == Some(0) {
        return Err(zero("order_qty_max"));
    }
    if limits.order_notional_max == Some(risk::Notional::ZERO) {
        return Err(zero("order_notional_max"));
    }
    if limits.open_orders_max == Some(0) {
        return Err(zero("open_orders_max"));
    }
    if limits.position_max == Some(0) {
        return Err(zero("position_max"));
    }
    Ok(())
}

fn rate_limit(table: &str, limit: &ratelimit::LimitConfig) -> Result<(), BoundError> {
    limit.validate().map_err(|source| BoundError::RateLimit { field: table.to_owned(), source })
}

impl ServeConfig {
    /// Checks every bound (see the module docs for the values that may be 0).
    pub fn validate(&self) -> Result<(), BoundError> {
        let n = |v: usize| v as u64;
        within("engine.orders_max", n(self.engine.orders_max), 1, n(ORDERS_MAX_LIMIT))?;
        within("symbols", n(self.symbols.len()), 1, n(SYMBOLS_MAX))?;
        within("accounts", n(self.accounts.len()), 0, n(ACCOUNTS_MAX))?;
        within("network.poll_spin_us", self.network.poll_spin_us, 0, POLL_SPIN_US_MAX)?;
        let quic = &self.network.quic_tuning;
        within("network.quic_tuning.initial_rtt_us", quic.initial_rtt_us, 1, INITIAL_RTT_US_MAX)?;
        if let Some(delay) = quic.max_ack_delay_us {
            within("network.quic_tuning.max_ack_delay_us", delay, 0, MAX_ACK_DELAY_US_MAX)?;
        }
        within("journal.sync_interval_ms", self.journal.sync_interval_ms, 1, SYNC_INTERVAL_MS_MAX)?;
        within("journal.segment_mib", n(self.journal.segment_mib), 1, n(SEGMENT_MIB_MAX))?;
        let settlement = &self.settlement;
        within("settlement.idle_wait_ms", settlement.idle_wait_ms, 0, SETTLEMENT_WAIT_MS_MAX)?;
        within("settlement.commit_interval_ms", settlement.commit_interval_ms, 0, SETTLEMENT_WAIT_MS_MAX)?;
        let session = &self.session;
        within(
            "session.message_bytes_max",
            n(session.message_bytes_max),
            n(MESSAGE_BYTES_MIN),
            n(MESSAGE_BYTES_MAX),
        )?;
        within("session.resend_store_max", n(session.resend_store_max), 1, n(RESEND_STORE_MAX))?;
        risk_limits("risk", &self.risk)?;
        rate_limit("rate_limit.session", &self.rate_limit.session)?;
        rate_limit("rate_limit.account", &self.rate_limit.account)?;
        within("rate_limit.keys_max", n(self.rate_limit.keys_max), 1, n(RATE_LIMIT_KEYS_MAX))?;
        for a in &self.accounts {
            if let Some(limits) = &a.risk {
                risk_limits(&format!("accounts.{}.risk", a.name), limits)?;
            }
            if let Some(limit) = &a.rate_limit {
                rate_limit(&format!("accounts.{}.rate_limit", a.name), limit)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_defaults_pass() {
        ServeConfig::default().validate().unwrap();
    }

    #[test]
    fn a_refusal_names_the_field_and_its_range() {
        let mut config = ServeConfig::default();
        config.journal.segment_mib = SEGMENT_MIB_MAX + 1;
        let message = config.validate().unwrap_err().to_string();
        assert_eq!(
            message,
            format!("journal.segment_mib {}: must be within 1..={SEGMENT_MIB_MAX}", SEGMENT_MIB_MAX + 1)
        );
    }
}
