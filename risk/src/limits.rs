//! Per-account limits: the serde form an operator writes, and the resolved form the checks read.

use std::collections::BTreeMap;

use engine::{Qty, SymbolId, SymbolSpec};
use serde::{Deserialize, Serialize};

use crate::config::RiskError;
use crate::notional::Notional;

/// One account's pre-trade limits. Every field is optional; an unset field is no limit.
///
/// Units: quantities in the symbol's quantity units, notionals in price units × quantity
/// ([`Notional`], written as decimals), the band in basis points (1/100 of a percent).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RiskLimits {
    /// Largest total quantity of one order (`risk_max_qty`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_qty_max: Option<Qty>,
    /// Largest `qty × price` of one order (`risk_notional`). A market order is priced as
    /// described on [`crate::RiskEngine::check_new`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_notional_max: Option<Notional>,
    /// Limit prices must lie within this many basis points of the symbol's reference price
    /// (`risk_price_band`): a buy at most `reference × (1 + bps/10000)`, a sell at least
    /// `reference × (1 - bps/10000)`. With no reference price yet, limit orders pass. The band
    /// is one-sided per side, as exchange price protection is: it stops orders that would trade
    /// through the market, while a buy far below (a sell far above) can only rest, harmlessly.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price_band_bps: Option<u32>,
    /// Most open orders (pending and live, all symbols) (`risk_open_orders`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_orders_max: Option<u32>,
    /// Most credit in use (`risk_credit`): open buy notional plus position cost, see
    /// [`crate::AccountExposure::credit_used`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credit_max: Option<Notional>,
    /// Largest absolute net position per symbol if every open order on the order's side filled
    /// (`risk_position`); applies to every symbol without an entry in `position_max_by_symbol`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position_max: Option<Qty>,
    /// Per-symbol position limits by symbol name, overriding `position_max`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub position_max_by_symbol: BTreeMap<String, Qty>,
}

/// The limits that apply to one order on one symbol, with "no limit" as the type's maximum so
/// each check is one comparison.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OrderLimits {
    pub(crate) order_qty_max: u64,
    pub(crate) order_notional_max: i128,
    pub(crate) price_band_bps: Option<u32>,
    pub(crate) open_orders_max: u32,
    pub(crate) credit_max: i128,
    pub(crate) position_max: i128,
    /// A band, notional or credit limit is set: a market order then needs a reference price.
    pub(crate) needs_price: bool,
}

/// Limits as written plus their resolution against the symbol table.
#[derive(Clone, Debug)]
pub(crate) struct LimitSet {
    pub(crate) source: RiskLimits,
    base: OrderLimits,
    /// `position_max` per symbol id, `u64::MAX` for none.
    position_max: Box<[u64]>,
}

impl LimitSet {
    /// Resolves symbol names; refuses a name that is not configured.
    pub(crate) fn resolve(source: RiskLimits, symbols: &[SymbolSpec]) -> Result<LimitSet, RiskError> {
        let mut position_max = vec![source.position_max.unwrap_or(u64::MAX); symbols.len()];
        for (name, &max) in &source.position_max_by_symbol {
            let Some(id) = symbols.iter().position(|s| &s.name == name) else {
                return Err(RiskError::UnknownSymbol(name.clone()));
            };
            position_max[id] = max;
        }
        let base = OrderLimits {
            order_qty_max: source.order_qty_max.unwrap_or(u64::MAX),
            order_notional_max: source.order_notional_max.map_or(i128::MAX, Notional::as_i128),
            price_band_bps: source.price_band_bps,
            open_orders_max: source.open_orders_max.unwrap_or(u32::MAX),
            credit_max: source.credit_max.map_or(i128::MAX, Notional::as_i128),
            position_max: i128::MAX,
            needs_price: source.price_band_bps.is_some()
                || source.order_notional_max.is_some()
                || source.credit_max.is_some(),
        };
        Ok(LimitSet { source, base, position_max: position_max.into_boxed_slice() })
    }

    /// The limits for an order on `symbol` (a configured symbol).
    #[inline]
    pub(crate) fn for_symbol(&self, symbol: SymbolId) -> OrderLimits {
        let mut limits = self.base;
        limits.position_max = i128::from(self.position_max[symbol.index()]);
        limits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_with_some_fields_and_decimal_notionals() {
        let limits: RiskLimits = toml::from_str(
            r#"
            order_qty_max = 1000
            order_notional_max = "250000.50"
            credit_max = 1000000
            position_max_by_symbol = { "BTC-USD" = 5 }
            "#,
        )
        .unwrap();
        assert_eq!(limits.order_qty_max, Some(1000));
        assert_eq!(limits.order_notional_max, Some(Notional::from_units(25_000_050_000_000)));
        assert_eq!(limits.credit_max, Some(Notional::from_whole(1_000_000)));
        assert_eq!(limits.price_band_bps, None);
        let back: RiskLimits = toml::from_str(&toml::to_string(&limits).unwrap()).unwrap();
        assert_eq!(back, limits);
        assert!(toml::from_str::<RiskLimits>("order_qty = 5").is_err(), "unknown fields are refused");
        assert!(toml::from_str::<RiskLimits>("credit_max = 1.5").is_err(), "floats are refused");
        assert!(toml::from_str::<RiskLimits>("credit_max = -1").is_err());
    }

    #[test]
    fn symbol_names_resolve_or_are_refused() {
        let symbols = engine::default_symbols();
        let mut limits = RiskLimits { position_max: Some(10), ..RiskLimits::default() };
        limits.position_max_by_symbol.insert("ETH-USD".into(), 3);
        let set = LimitSet::resolve(limits.clone(), &symbols).unwrap();
        assert_eq!(set.for_symbol(SymbolId(0)).position_max, 10);
        assert_eq!(set.for_symbol(SymbolId(1)).position_max, 3);
        limits.position_max_by_symbol.insert("DOGE".into(), 3);
        assert_eq!(LimitSet::resolve(limits, &symbols).unwrap_err(), RiskError::UnknownSymbol("DOGE".into()));
    }
}
