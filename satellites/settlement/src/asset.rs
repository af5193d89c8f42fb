//! Assets and their amounts: integer minor units inside, decimal text only at the edge.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Most decimals an asset may have: 10^18 minor units per whole still leaves `u64` room for
/// 18 whole units, and no currency or token we list needs more.
pub const ASSET_SCALE_MAX: u32 = 18;

/// One asset (currency, share, coin): its name and how many decimals its minor unit has.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Asset {
    /// Name, e.g. `USD`, `BTC`, `AAPL`.
    pub name: String,
    /// Decimals of one minor unit: `2` makes `1.25 USD` the integer `125`.
    pub scale: u32,
}

/// Dense asset number: the asset's index in the ledger's asset table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AssetId(pub u16);

/// Why decimal amount text could not become minor units.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// The text is not a decimal number.
    #[error("amount {0:?} is not a decimal number")]
    Malformed(String),
    /// Zero or negative.
    #[error("amount {0} is not positive")]
    NotPositive(String),
    /// More decimals than the asset's minor unit has.
    #[error("amount {text} has more than {scale} decimals")]
    TooManyDecimals {
        /// The text given.
        text: String,
        /// The asset's decimals.
        scale: u32,
    },
    /// Does not fit in `u64` minor units.
    #[error("amount {0} is too large")]
    TooLarge(String),
}

/// Parses a positive decimal amount (`"12.5"`) into minor units of an asset with `scale`
/// decimals, exactly: extra decimals are an error, never rounded away.
pub fn parse_amount(text: &str, scale: u32) -> Result<u64, AmountError> {
    let d: Decimal = text.trim().parse().map_err(|_| AmountError::Malformed(text.to_string()))?;
    if d <= Decimal::ZERO {
        return Err(AmountError::NotPositive(text.to_string()));
    }
    let d = d.normalize();
    if d.scale() > scale {
        return Err(AmountError::TooManyDecimals { text: text.to_string(), scale });
    }
    let minor = d.mantissa().checked_mul(10i128.pow(scale - d.scale()));
    minor.and_then(|m| u64::try_from(m).ok()).ok_or_else(|| AmountError::TooLarge(text.to_string()))
}

/// Formats signed minor units as decimal text with exactly `scale` decimals (`-1.50`).
pub fn format_amount(minor: i128, scale: u32) -> String {
    let one = 10u128.pow(scale);
    let magnitude = minor.unsigned_abs();
    let sign = if minor < 0 { "-" } else { "" };
    if scale == 0 {
        return format!("{sign}{magnitude}");
    }
    format!("{sign}{}.{:0width$}", magnitude / one, magnitude % one, width = scale as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exactly_and_refuses_extra_decimals() {
        assert_eq!(parse_amount("12.5", 2), Ok(1250));
        assert_eq!(parse_amount("12.50", 2), Ok(1250));
        assert_eq!(parse_amount("7", 0), Ok(7));
        assert!(matches!(parse_amount("0.001", 2), Err(AmountError::TooManyDecimals { .. })));
        assert!(matches!(parse_amount("0", 2), Err(AmountError::NotPositive(_))));
        assert!(matches!(parse_amount("-1", 2), Err(AmountError::NotPositive(_))));
        assert!(matches!(parse_amount("1e3x", 2), Err(AmountError::Malformed(_))));
        assert!(matches!(parse_amount("100000000000", 18), Err(AmountError::TooLarge(_))));
    }

    #[test]
    fn formats_with_the_asset_scale() {
        assert_eq!(format_amount(1250, 2), "12.50");
        assert_eq!(format_amount(-5, 2), "-0.05");
        assert_eq!(format_amount(42, 0), "42");
    }
}
