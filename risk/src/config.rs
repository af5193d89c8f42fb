//! Construction-time configuration and the crate's error type.

use engine::{AccountId, SymbolId, SymbolSpec};

use crate::limits::RiskLimits;

/// Everything a [`crate::RiskEngine`] is sized and configured from.
#[derive(Clone, Debug)]
pub struct RiskConfig {
    /// The engine's symbols, in the engine's order (a symbol's id is its index): ticks in
    /// events are converted to price units with their `tick_units`.
    pub symbols: Vec<SymbolSpec>,
    /// Accounts are the ids `0..accounts_max`, assigned by the gateway from its account list.
    pub accounts_max: u32,
    /// Most open orders (pending and live) tracked across all accounts; past it new orders are
    /// rejected `risk_capacity`. Bounds the order map together with `recent_ids_max`.
    pub orders_max: usize,
    /// How many finished client order ids (across all accounts) are remembered for the
    /// duplicate check; the oldest is forgotten first. 0 checks only live and pending ids.
    pub recent_ids_max: usize,
    /// Limits of every account without its own ([`crate::RiskEngine::set_limits`]).
    pub default_limits: RiskLimits,
}

impl RiskConfig {
    /// Default bound on tracked open orders.
    pub const ORDERS_MAX_DEFAULT: usize = 1 << 16;
    /// Default size of the duplicate-id window.
    pub const RECENT_IDS_MAX_DEFAULT: usize = 1 << 16;

    /// A configuration for `symbols` and `accounts_max` accounts with the default bounds and no
    /// limits (every limit unset).
    pub fn new(symbols: Vec<SymbolSpec>, accounts_max: u32) -> RiskConfig {
        RiskConfig {
            symbols,
            accounts_max,
            orders_max: Self::ORDERS_MAX_DEFAULT,
            recent_ids_max: Self::RECENT_IDS_MAX_DEFAULT,
            default_limits: RiskLimits::default(),
        }
    }
}

/// Why a configuration or admin call was refused. (An order refused by a check is not an error
/// but a [`crate::RiskReject`].)
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RiskError {
    /// The account id is not below `accounts_max`.
    #[error("account {0} is not configured")]
    UnknownAccount(AccountId),
    /// A symbol id that is not in the configuration.
    #[error("symbol id {0} is not configured")]
    UnknownSymbolId(SymbolId),
    /// A symbol name (in `position_max_by_symbol`) that is not in the configuration.
    #[error("symbol {0:?} is not configured")]
    UnknownSymbol(String),
    /// A reference price must be a positive number of price units.
    #[error("reference price {0} is not positive")]
    BadPrice(engine::PriceUnits),
    /// A notional that is not a non-negative decimal with at most 8 places.
    #[error("{text:?} is not a notional (a non-negative decimal with at most 8 places): {why}")]
    BadNotional {
        /// The text given.
        text: String,
        /// What is wrong with it.
        why: String,
    },
}
