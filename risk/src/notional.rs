//! Notional amounts: price units times quantity, so [`engine::PRICE_SCALE`] decimals, in
//! integers. `100.50 × 10` is `10_050_000_000 × 10` units, printed `1005.5`.

use core::fmt;
use core::str::FromStr;

use engine::price_text::{self, PriceText};
use engine::PRICE_UNITS_PER_ONE;
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

use crate::config::RiskError;

/// A non-negative notional in price units × quantity ([`engine::PRICE_SCALE`] decimals).
///
/// In configuration it is written as a decimal string (`"250000.50"`) or an integer of whole
/// currency units (`250000`); it is never a float.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Notional(u128);

impl Notional {
    /// Zero.
    pub const ZERO: Notional = Notional(0);

    /// A notional of `units` price units × quantity.
    pub const fn from_units(units: u128) -> Notional {
        Notional(units)
    }

    /// A notional of `whole` currency units.
    pub const fn from_whole(whole: u64) -> Notional {
        Notional(whole as u128 * PRICE_UNITS_PER_ONE as u128)
    }

    /// The amount in price units × quantity.
    pub const fn units(self) -> u128 {
        self.0
    }

    /// The amount as the signed `i128` exposure arithmetic uses, saturating (a limit above
    /// `i128::MAX` units is no limit at all).
    pub(crate) fn as_i128(self) -> i128 {
        i128::try_from(self.0).unwrap_or(i128::MAX)
    }
}

/// Writes `units` (with [`engine::PRICE_SCALE`] decimals) as a decimal, trailing zeros trimmed:
/// `10_050_000_000` is `100.5`. Used for prices and notionals in reject texts.
pub(crate) fn write_fixed(f: &mut fmt::Formatter<'_>, units: i128) -> fmt::Result {
    f.write_str(PriceText::trimmed(units, 0).as_str())
}

impl fmt::Display for Notional {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_fixed(f, self.as_i128())
    }
}

impl FromStr for Notional {
    type Err = RiskError;

    /// Parses `123`, `123.` or `123.45678901` (at most [`engine::PRICE_SCALE`] decimals, no sign, no
    /// exponent) exactly, through `engine::price_text`.
    fn from_str(s: &str) -> Result<Notional, RiskError> {
        let bad = |why: String| RiskError::BadNotional { text: s.to_string(), why };
        let units = price_text::parse_units_wide(s).map_err(|e| bad(e.to_string()))?;
        u128::try_from(units).map(Notional).map_err(|_| bad("a notional cannot be negative".into()))
    }
}

impl Serialize for Notional {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Notional {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Notional, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = Notional;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a decimal string such as \"250000.50\" or a whole number of currency units")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Notional, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Notional, E> {
                Ok(Notional::from_whole(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Notional, E> {
                u64::try_from(v)
                    .map(Notional::from_whole)
                    .map_err(|_| E::custom("a notional cannot be negative"))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_exactly() {
        let n: Notional = "1005.5".parse().unwrap();
        assert_eq!(n.units(), 100_550_000_000);
        assert_eq!(n.to_string(), "1005.5");
        assert_eq!("0.00000001".parse::<Notional>().unwrap().units(), 1);
        assert_eq!("7".parse::<Notional>().unwrap(), Notional::from_whole(7));
        assert_eq!("7.".parse::<Notional>().unwrap(), Notional::from_whole(7));
        assert_eq!(Notional::from_whole(7).to_string(), "7");
        for bad in ["", ".5", "-1", "1.000000001", "1e5", "1,5", " 1", "1.2.3"] {
            assert!(bad.parse::<Notional>().is_err(), "{bad:?}");
        }
    }
}
