//! The `[settlement]` table of the venue config, and its checked, integer form.
//!
//! ```toml
//! [settlement]
//! fee_owner = "venue:fees"        # who receives maker/taker fees
//! cutoff_utc = "16:00"            # trades at or after it belong to the next business day
//! holidays = ["2026-12-25"]
//! store = { backend = "redb", path = "var/settlement.redb" }
//!
//! [[settlement.assets]]
//! name = "USD"
//! scale = 2
//!
//! [[settlement.symbols]]
//! name = "BTC-USD"
//! base = "BTC"
//! quote = "USD"
//! tick = "1"                      # price of one tick, in quote per whole base
//! qty_unit = "0.01"               # base per engine quantity unit
//! maker_fee_bps = 1
//! taker_fee_bps = 5
//! settle_days = 1                 # T+1
//! ```

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::{Date, Time};

use crate::asset::{Asset, AssetId, ASSET_SCALE_MAX};
use crate::calendar::{Calendar, SETTLE_DAYS_MAX};
use crate::ledger::LedgerLimits;
use crate::store::StoreConfig;

/// Prefix reserved for system owners: a venue account named like one would share its funds.
pub const SYSTEM_OWNER_PREFIX: &str = "venue:";

/// Owner of every asset's external account (deposits come from it, withdrawals go to it).
pub const EXTERNAL_OWNER: &str = "venue:external";

/// Most fee a symbol may charge, in basis points (10%): past it the config is surely wrong.
pub const FEE_BPS_MAX: u32 = 1_000;

/// Most holidays configured.
pub const HOLIDAYS_MAX: usize = 1_000;

/// The `[settlement]` table as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettlementConfig {
    /// Where the ledger lives.
    #[serde(default)]
    pub store: StoreConfig,
    /// In-memory bounds.
    #[serde(default)]
    pub limits: LedgerLimits,
    /// Owner that receives fees.
    #[serde(default = "default_fee_owner")]
    pub fee_owner: String,
    /// UTC time of day (`HH:MM`) from which a trade belongs to the next business day.
    #[serde(default = "default_cutoff")]
    pub cutoff_utc: String,
    /// Dates (`YYYY-MM-DD`) that are not business days.
    #[serde(default)]
    pub holidays: Vec<String>,
    /// Assets, ids in list order.
    pub assets: Vec<Asset>,
    /// How each symbol settles.
    pub symbols: Vec<SymbolConfig>,
}

fn default_fee_owner() -> String {
    "venue:fees".to_string()
}

fn default_cutoff() -> String {
    "16:00".to_string()
}

fn default_qty_unit() -> String {
    "1".to_string()
}

fn default_settle_days() -> u32 {
    1
}

/// How one symbol settles, as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SymbolConfig {
    /// Symbol name as the venue lists it.
    pub name: String,
    /// Asset delivered (seller → buyer).
    pub base: String,
    /// Asset paid (buyer → seller).
    pub quote: String,
    /// Price of one tick, in quote (decimal text, the venue's tick size).
    pub tick: String,
    /// Base per engine quantity unit (decimal text).
    #[serde(default = "default_qty_unit")]
    pub qty_unit: String,
    /// Fee of the resting side, basis points of the cash leg.
    #[serde(default)]
    pub maker_fee_bps: u32,
    /// Fee of the aggressor, basis points of the cash leg.
    #[serde(default)]
    pub taker_fee_bps: u32,
    /// Settlement lag in business days (T+N).
    #[serde(default = "default_settle_days")]
    pub settle_days: u32,
}

/// A symbol's settlement in integers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SymbolRule {
    /// Asset delivered.
    pub base: AssetId,
    /// Asset paid.
    pub quote: AssetId,
    /// Base minor units per engine quantity unit.
    pub base_minor_per_qty: u64,
    /// Quote minor units per tick per engine quantity unit.
    pub quote_minor_per_tick_qty: u64,
    /// Maker fee, bps.
    pub maker_fee_bps: u32,
    /// Taker fee, bps.
    pub taker_fee_bps: u32,
    /// T+N.
    pub settle_days: u32,
}

/// Why the `[settlement]` table is unusable; each names the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// An asset listed twice, with no name, more than 65 535 assets, or too many decimals.
    #[error("settlement.assets: {0}")]
    Asset(String),
    /// A symbol's field is wrong.
    #[error("settlement.symbols[{symbol}].{field}: {reason}")]
    Symbol {
        /// Symbol name.
        symbol: String,
        /// The key.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// `cutoff_utc` is not `HH:MM`.
    #[error("settlement.cutoff_utc: {0:?} is not HH:MM")]
    Cutoff(String),
    /// A holiday is not `YYYY-MM-DD`, or there are too many.
    #[error("settlement.holidays: {0}")]
    Holiday(String),
    /// `fee_owner` is not a system owner name.
    #[error("settlement.fee_owner: {0:?} must start with {SYSTEM_OWNER_PREFIX:?}")]
    FeeOwner(String),
    /// A venue account name collides with the system owners' prefix or is empty.
    #[error("account name {0:?} is empty or starts with {SYSTEM_OWNER_PREFIX:?}, which is reserved")]
    AccountName(String),
}

/// The checked configuration.
#[derive(Clone, Debug)]
pub struct Rules {
    /// Assets.
    pub assets: Vec<Asset>,
    /// Rules by symbol name.
    pub symbols: Vec<(String, SymbolRule)>,
    /// Business days.
    pub calendar: Calendar,
    /// Fee owner.
    pub fee_owner: String,
}

impl SettlementConfig {
    /// Checks everything and converts decimals to integers (exactly, or it is an error).
    pub fn rules(&self) -> Result<Rules, ConfigError> {
        if self.assets.len() > usize::from(u16::MAX) {
            return Err(ConfigError::Asset("more than 65535 assets".into()));
        }
        for (i, a) in self.assets.iter().enumerate() {
            if a.name.is_empty() {
                return Err(ConfigError::Asset(format!("asset {i} has no name")));
            }
            if a.scale > ASSET_SCALE_MAX {
                return Err(ConfigError::Asset(format!(
                    "{} has scale {} > {ASSET_SCALE_MAX}",
                    a.name, a.scale
                )));
            }
            if self.assets[..i].iter().any(|b| b.name == a.name) {
                return Err(ConfigError::Asset(format!("{} is listed twice", a.name)));
            }
        }
        if !self.fee_owner.starts_with(SYSTEM_OWNER_PREFIX) || self.fee_owner == EXTERNAL_OWNER {
            return Err(ConfigError::FeeOwner(self.fee_owner.clone()));
        }
        let cutoff =
            parse_cutoff(&self.cutoff_utc).ok_or_else(|| ConfigError::Cutoff(self.cutoff_utc.clone()))?;
        if self.holidays.len() > HOLIDAYS_MAX {
            return Err(ConfigError::Holiday(format!("more than {HOLIDAYS_MAX}")));
        }
        let mut holidays = Vec::with_capacity(self.holidays.len());
        for h in &self.holidays {
            let format = time::macros::format_description!("[year]-[month]-[day]");
            holidays.push(
                Date::parse(h, format)
                    .map_err(|_| ConfigError::Holiday(format!("{h:?} is not YYYY-MM-DD")))?,
            );
        }
        let mut symbols = Vec::with_capacity(self.symbols.len());
        for s in &self.symbols {
            symbols.push((s.name.clone(), self.symbol_rule(s)?));
        }
        Ok(Rules {
            assets: self.assets.clone(),
            symbols,
            calendar: Calendar::new(holidays, cutoff),
            fee_owner: self.fee_owner.clone(),
        })
    }

    fn symbol_rule(&self, s: &SymbolConfig) -> Result<SymbolRule, ConfigError> {
        let err = |field, reason: String| ConfigError::Symbol { symbol: s.name.clone(), field, reason };
        let asset = |field, name: &str| {
            self.assets
                .iter()
                .position(|a| a.name == name)
                .map(|i| (AssetId(i as u16), self.assets[i].scale))
                .ok_or_else(|| err(field, format!("asset {name:?} is not in settlement.assets")))
        };
        let (base, base_scale) = asset("base", &s.base)?;
        let (quote, quote_scale) = asset("quote", &s.quote)?;
        if base == quote {
            return Err(err("quote", "must differ from base".into()));
        }
        let decimal = |field, text: &str| -> Result<Decimal, ConfigError> {
            let d: Decimal = text.parse().map_err(|_| err(field, format!("{text:?} is not a decimal")))?;
            if d <= Decimal::ZERO {
                return Err(err(field, format!("{text} is not positive")));
            }
            Ok(d)
        };
        let tick = decimal("tick", &s.tick)?;
        let qty_unit = decimal("qty_unit", &s.qty_unit)?;
        let minor = |field, value: Option<Decimal>, what: &str| -> Result<u64, ConfigError> {
            let v = value.ok_or_else(|| err(field, format!("{what} overflows")))?.normalize();
            if !v.is_integer() {
                return Err(err(field, format!("{what} is {v} minor units, not a whole number")));
            }
            u64::try_from(v.mantissa()).map_err(|_| err(field, format!("{what} overflows")))
        };
        let pow = |scale: u32| Decimal::from(10u64.pow(scale));
        let base_minor_per_qty =
            minor("qty_unit", qty_unit.checked_mul(pow(base_scale)), "one quantity unit")?;
        let quote_minor_per_tick_qty = minor(
            "tick",
            tick.checked_mul(qty_unit).and_then(|x| x.checked_mul(pow(quote_scale))),
            "one tick of one quantity unit",
        )?;
        for (field, bps) in [("maker_fee_bps", s.maker_fee_bps), ("taker_fee_bps", s.taker_fee_bps)] {
            if bps > FEE_BPS_MAX {
                return Err(err(field, format!("{bps} is above {FEE_BPS_MAX}")));
            }
        }
        if s.settle_days > SETTLE_DAYS_MAX {
            return Err(err("settle_days", format!("{} is above {SETTLE_DAYS_MAX}", s.settle_days)));
        }
        Ok(SymbolRule {
            base,
            quote,
            base_minor_per_qty,
            quote_minor_per_tick_qty,
            maker_fee_bps: s.maker_fee_bps,
            taker_fee_bps: s.taker_fee_bps,
            settle_days: s.settle_days,
        })
    }
}

fn parse_cutoff(text: &str) -> Option<Time> {
    let (h, m) = text.split_once(':')?;
    Time::from_hms(h.parse().ok()?, m.parse().ok()?, 0).ok()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn config() -> SettlementConfig {
        SettlementConfig {
            store: StoreConfig::default(),
            limits: LedgerLimits::default(),
            fee_owner: default_fee_owner(),
            cutoff_utc: default_cutoff(),
            holidays: vec!["2026-12-25".into()],
            assets: vec![
                Asset { name: "USD".into(), scale: 2 },
                Asset { name: "BTC".into(), scale: 8 },
                Asset { name: "AAPL".into(), scale: 0 },
            ],
            symbols: vec![
                SymbolConfig {
                    name: "BTC-USD".into(),
                    base: "BTC".into(),
                    quote: "USD".into(),
                    tick: "1".into(),
                    qty_unit: "0.01".into(),
                    maker_fee_bps: 1,
                    taker_fee_bps: 5,
                    settle_days: 0,
                },
                SymbolConfig {
                    name: "AAPL".into(),
                    base: "AAPL".into(),
                    quote: "USD".into(),
                    tick: "0.01".into(),
                    qty_unit: "1".into(),
                    maker_fee_bps: 0,
                    taker_fee_bps: 10,
                    settle_days: 1,
                },
            ],
        }
    }

    #[test]
    fn decimals_become_exact_integers() {
        let rules = config().rules().unwrap();
        let btc = rules.symbols[0].1;
        assert_eq!(btc.base_minor_per_qty, 1_000_000, "0.01 BTC is 1 000 000 satoshi");
        assert_eq!(btc.quote_minor_per_tick_qty, 1, "a 1 USD tick on 0.01 BTC is one cent");
        // A 0.01 USD tick on 0.01 BTC is 0.0001 USD: not a whole cent, so refused.
        let mut c = config();
        c.symbols[0].tick = "0.01".into();
        let err = c.rules().unwrap_err();
        assert!(err.to_string().starts_with("settlement.symbols[BTC-USD].tick:"), "{err}");
        assert_eq!(rules.symbols[1].1.quote_minor_per_tick_qty, 1);
    }

    #[test]
    fn bad_keys_are_named() {
        let mut c = config();
        c.cutoff_utc = "25:00".into();
        assert_eq!(c.rules().unwrap_err(), ConfigError::Cutoff("25:00".into()));
        let mut c = config();
        c.holidays = vec!["Christmas".into()];
        assert!(matches!(c.rules(), Err(ConfigError::Holiday(_))));
        let mut c = config();
        c.symbols[1].base = "MSFT".into();
        assert!(matches!(c.rules(), Err(ConfigError::Symbol { field: "base", .. })));
        let mut c = config();
        c.fee_owner = "fees".into();
        assert!(matches!(c.rules(), Err(ConfigError::FeeOwner(_))));
    }
}

#[cfg(test)]
mod toml_tests {
    use super::*;

    /// The example in docs/settlement.md parses and checks.
    #[test]
    fn the_documented_table_parses() {
        let doc = include_str!("../../../docs/settlement.md");
        let start = doc.find("```toml\n[settlement]").expect("a toml example") + "```toml\n".len();
        let text = &doc[start..start + doc[start..].find("```").expect("closed")];
        #[derive(Deserialize)]
        struct Venue {
            settlement: SettlementConfig,
        }
        let venue: Venue = toml::from_str(text).expect("the documented TOML parses");
        let rules = venue.settlement.rules().expect("and checks");
        assert_eq!(rules.symbols[0].1.base_minor_per_qty, 1_000_000);
        assert_eq!(venue.settlement.store, StoreConfig::Redb { path: "var/settlement.redb".into() });
        let unknown = toml::from_str::<Venue>(&text.replace("cutoff_utc", "cutoff"));
        assert!(unknown.is_err(), "unknown keys are refused");
    }
}
