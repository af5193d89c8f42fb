//! Price text: the one place that turns decimal text into price units ([`PRICE_SCALE`]
//! decimals) and price units back into text.
//!
//! Every edge uses it: FIX `Price`/`StopPx`/`AvgPx`, the symbol table's tick sizes, command and
//! event files, market data, reject texts, reports. Parsing is exact (a price the engine cannot
//! hold is an error naming why, never a rounded value); printing is written on the stack, because
//! every ExecutionReport carries two or three prices and the matching side must not allocate.
//!
//! The grammar is FIX's `float` without an exponent: an optional leading `-`, one or more
//! digits, then optionally `.` and digits (`100`, `100.`, `100.50`, `-0.5`). Zeros after the
//! eighth decimal are accepted (the value is still exact); any other ninth decimal is not.

use crate::types::{Price, PriceUnits, SymbolSpec, PRICE_SCALE};

/// Bytes of the longest text [`PriceText`] holds: a sign, the 39 digits of `i128::MAX` (whole
/// part and decimals together) and a point fit, and so does `-0.` before [`PRICE_SCALE`] digits.
pub const PRICE_TEXT_BYTES_MAX: usize = 48;

/// Sign, digits and point; and `-0.` with the decimals.
const PRICE_TEXT_BYTES_NEEDED: [usize; 2] = [1 + 39 + 1, 3 + PRICE_SCALE as usize];
const _: () = assert!(PRICE_TEXT_BYTES_NEEDED[0] <= PRICE_TEXT_BYTES_MAX);
const _: () = assert!(PRICE_TEXT_BYTES_NEEDED[1] <= PRICE_TEXT_BYTES_MAX);

/// Why a text is not a price.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PriceTextError {
    /// Nothing to parse.
    #[error("empty: a price needs at least one digit")]
    Empty,
    /// A `+`, a `-` not in front, or a `-` with nothing after it.
    #[error("misplaced sign: only a leading '-' is allowed, no '+'")]
    Sign,
    /// A character other than digits, one `.` and a leading `-` (an exponent, a comma, a space, a
    /// second point, a point with no digit before it).
    #[error("not a decimal number: write digits with at most one '.' (e.g. 100.50)")]
    Malformed,
    /// More decimals than the engine keeps.
    #[error("{decimals} decimals: a price has at most {} (PRICE_SCALE)", PRICE_SCALE)]
    TooManyDecimals {
        /// Significant decimals in the text (trailing zeros not counted).
        decimals: usize,
    },
    /// Too large for the integer of price units.
    #[error("out of range: larger than the largest price the engine holds")]
    Overflow,
}

/// Parses decimal price text into price units (`"100.50"` is `10_050_000_000`), exactly.
pub fn parse_units(text: &str) -> Result<PriceUnits, PriceTextError> {
    i64::try_from(parse_units_wide(text)?).map(PriceUnits).map_err(|_| PriceTextError::Overflow)
}

/// [`parse_units`] into an `i128`, for amounts (notionals, money) larger than a price.
pub fn parse_units_wide(text: &str) -> Result<i128, PriceTextError> {
    if text.is_empty() {
        return Err(PriceTextError::Empty);
    }
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    if body.is_empty() || body.contains(['-', '+']) {
        return Err(PriceTextError::Sign);
    }
    let (whole, fraction) = body.split_once('.').unwrap_or((body, ""));
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) {
        return Err(PriceTextError::Malformed);
    }
    let fraction = fraction.trim_end_matches('0');
    if fraction.len() > PRICE_SCALE as usize {
        return Err(PriceTextError::TooManyDecimals { decimals: fraction.len() });
    }
    let mut units: i128 = 0;
    let scale_pad = PRICE_SCALE as usize - fraction.len();
    for b in whole.bytes().chain(fraction.bytes()).chain(std::iter::repeat_n(b'0', scale_pad)) {
        units = units
            .checked_mul(10)
            .and_then(|u| u.checked_add(i128::from(b - b'0')))
            .ok_or(PriceTextError::Overflow)?;
    }
    Ok(if negative { -units } else { units })
}

/// The average price of fills worth `notional_units` (price units × quantity) over `qty`, in
/// price units, rounded half to even (AvgPx); 0 when `qty` is 0.
pub fn average_units(notional_units: i128, qty: u64) -> i128 {
    if qty == 0 {
        return 0;
    }
    let qty = i128::from(qty);
    let (avg, rest) = (notional_units / qty, notional_units % qty);
    round_half_even(avg, rest.unsigned_abs(), qty.unsigned_abs(), notional_units.signum())
}

/// `quotient` moved one step away from zero (in the direction `sign`) when the remainder
/// `rest / divisor` is past a half, or exactly a half and the quotient is odd.
fn round_half_even(quotient: i128, rest: u128, divisor: u128, sign: i128) -> i128 {
    let twice = rest * 2;
    if twice > divisor || (twice == divisor && quotient % 2 != 0) {
        quotient + sign
    } else {
        quotient
    }
}

/// A price as decimal text, written on the stack.
#[derive(Clone, Copy)]
pub struct PriceText {
    buf: [u8; PRICE_TEXT_BYTES_MAX],
    len: usize,
}

impl PriceText {
    /// `units` with exactly `decimals` decimals (at most [`PRICE_SCALE`]); digits dropped are
    /// rounded half to even (none are for a price on its symbol's tick).
    pub fn fixed(units: i128, decimals: u32) -> PriceText {
        let decimals = decimals.min(PRICE_SCALE);
        let drop = 10i128.pow(PRICE_SCALE - decimals);
        let (q, rest) = (units / drop, units % drop);
        let mantissa = round_half_even(q, rest.unsigned_abs(), drop.unsigned_abs(), units.signum());
        PriceText::mantissa(mantissa, decimals)
    }

    /// `units` with trailing zeros dropped, but never below `decimals_min` decimals
    /// (`trimmed(10_050_000_000, 0)` is `100.5`, `trimmed(10_050_000_000, 2)` is `100.50`).
    pub fn trimmed(units: i128, decimals_min: u32) -> PriceText {
        let (mut mantissa, mut decimals) = (units, PRICE_SCALE);
        while decimals > decimals_min && mantissa % 10 == 0 {
            mantissa /= 10;
            decimals -= 1;
        }
        PriceText::mantissa(mantissa, decimals)
    }

    /// A price in ticks of `spec`, with the decimals of its tick (`100.50` for a tick of 0.01).
    pub fn ticks(spec: &SymbolSpec, price: Price) -> PriceText {
        PriceText::fixed(i128::from(price.0) * spec.tick_units.wide(), spec.price_decimals())
    }

    /// `mantissa / 10^decimals`.
    fn mantissa(mantissa: i128, decimals: u32) -> PriceText {
        let mut text = PriceText { buf: [0; PRICE_TEXT_BYTES_MAX], len: 0 };
        let mut digits = [b'0'; 40];
        let mut rest = mantissa.unsigned_abs();
        let mut start = digits.len();
        while rest > 0 || start + decimals as usize >= digits.len() {
            start -= 1;
            digits[start] = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        let point = digits.len() - decimals as usize;
        if mantissa < 0 {
            text.push(b"-");
        }
        text.push(&digits[start..point]);
        if decimals > 0 {
            text.push(b".");
            text.push(&digits[point..]);
        }
        text
    }

    fn push(&mut self, bytes: &[u8]) {
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits, '-' and '.' are ever written.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl std::fmt::Display for PriceText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for PriceText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::PRICE_UNITS_PER_ONE;
    use proptest::prelude::*;

    #[test]
    fn parses_exactly() {
        let ok = |units: i64| Ok(PriceUnits(units));
        assert_eq!(parse_units("100.50"), ok(10_050_000_000));
        assert_eq!(parse_units("100"), ok(100 * PRICE_UNITS_PER_ONE));
        assert_eq!(parse_units("100."), ok(100 * PRICE_UNITS_PER_ONE));
        assert_eq!(parse_units("0.00000001"), ok(1));
        assert_eq!(parse_units("-0.5"), ok(-50_000_000));
        assert_eq!(parse_units("007.1000000000"), ok(710_000_000));
        assert_eq!(parse_units("92233720368.54775807"), ok(i64::MAX));
    }

    #[test]
    fn each_bad_text_has_its_reason() {
        use PriceTextError::*;
        assert_eq!(parse_units(""), Err(Empty));
        for sign in ["+1", "-", "--1", "1-", "1.-5", "+"] {
            assert_eq!(parse_units(sign), Err(Sign), "{sign:?}");
        }
        for bad in ["abc", ".5", "1.2.3", "1e5", "1,5", " 1", "1 ", "0x10", "."] {
            assert_eq!(parse_units(bad), Err(Malformed), "{bad:?}");
        }
        assert_eq!(parse_units("0.000000001"), Err(TooManyDecimals { decimals: 9 }));
        assert_eq!(parse_units("1.1234567890"), Err(TooManyDecimals { decimals: 9 }));
        assert_eq!(parse_units("92233720368.54775808"), Err(Overflow));
        assert_eq!(parse_units_wide(&"9".repeat(40)), Err(Overflow));
        assert_eq!(parse_units_wide("92233720368.54775808"), Ok(i128::from(i64::MAX) + 1));
        // The message names what to fix.
        assert_eq!(
            TooManyDecimals { decimals: 9 }.to_string(),
            "9 decimals: a price has at most 8 (PRICE_SCALE)"
        );
    }

    #[test]
    fn prints_fixed_and_trimmed() {
        assert_eq!(PriceText::fixed(10_050_000_000, 2).as_str(), "100.50");
        assert_eq!(PriceText::fixed(42 * PRICE_UNITS_PER_ONE as i128, 0).as_str(), "42");
        assert_eq!(PriceText::fixed(5, 8).as_str(), "0.00000005");
        assert_eq!(PriceText::fixed(-15, 8).as_str(), "-0.00000015");
        assert_eq!(PriceText::fixed(0, 2).as_str(), "0.00");
        // Half to even on digits dropped.
        assert_eq!(PriceText::fixed(1_500_000, 0).as_str(), "0");
        assert_eq!(PriceText::fixed(1_500_000, 1).as_str(), "0.0");
        assert_eq!(PriceText::fixed(5_000_000, 1).as_str(), "0.0");
        assert_eq!(PriceText::fixed(15_000_000, 1).as_str(), "0.2");
        assert_eq!(PriceText::fixed(-15_000_000, 1).as_str(), "-0.2");
        assert_eq!(PriceText::trimmed(10_050_000_000, 0).as_str(), "100.5");
        assert_eq!(PriceText::trimmed(10_050_000_000, 2).as_str(), "100.50");
        assert_eq!(PriceText::trimmed(0, 0).as_str(), "0");
        assert_eq!(
            PriceText::trimmed(i128::MIN + 1, 0).as_str(),
            "-1701411834604692317316873037158.84105727"
        );
        let spec = SymbolSpec::new("X", 1_000_000, 1);
        assert_eq!(PriceText::ticks(&spec, Price(10_050)).to_string(), "100.50");
    }

    #[test]
    fn averages_round_half_to_even() {
        assert_eq!(average_units(0, 3), 0);
        assert_eq!(average_units(5, 0), 0);
        assert_eq!(average_units(5, 15), 0); // 1/3
        assert_eq!(average_units(10, 15), 1); // 2/3
        assert_eq!(average_units(5, 10), 0); // 0.5 → 0 (even)
        assert_eq!(average_units(15, 10), 2); // 1.5 → 2
        assert_eq!(average_units(-15, 10), -2);
    }

    proptest! {
        /// print ∘ parse is the identity on units, at the full scale and trimmed.
        #[test]
        fn print_then_parse_round_trips(units in any::<i64>()) {
            let wide = i128::from(units);
            prop_assert_eq!(parse_units(PriceText::fixed(wide, PRICE_SCALE).as_str()), Ok(PriceUnits(units)));
            prop_assert_eq!(parse_units(PriceText::trimmed(wide, 0).as_str()), Ok(PriceUnits(units)));
        }

        /// parse ∘ print is the identity on canonical text (no leading zeros, the decimals of
        /// `decimals`).
        #[test]
        fn parse_then_print_round_trips(whole in 0u64..10_000_000_000, fraction in 0u64..100_000_000, decimals in 0u32..=8) {
            let fraction = fraction % 10u64.pow(decimals);
            let text = if decimals == 0 {
                whole.to_string()
            } else {
                format!("{whole}.{fraction:0width$}", width = decimals as usize)
            };
            let units = parse_units(&text).unwrap();
            let printed = PriceText::fixed(units.wide(), decimals);
            prop_assert_eq!(printed.as_str(), text.as_str());
        }

        /// A price on its tick prints with the tick's decimals and parses back to the same ticks.
        #[test]
        fn ticks_round_trip(tick_units in 1i64..1_000_000_000, ticks in -1_000_000_000i64..1_000_000_000) {
            let spec = SymbolSpec::new("P", tick_units, 1);
            let text = PriceText::ticks(&spec, Price(ticks));
            prop_assert_eq!(parse_units(text.as_str()), Ok(PriceUnits(ticks * tick_units)));
        }

        /// Any text that is not digits, an optional point and an optional leading '-' is refused.
        #[test]
        fn junk_is_refused(text in "[0-9.+eE, -]{0,12}") {
            let well_formed = {
                let body = text.strip_prefix('-').unwrap_or(&text);
                let (w, f) = body.split_once('.').unwrap_or((body, ""));
                !w.is_empty()
                    && w.bytes().all(|b| b.is_ascii_digit())
                    && f.bytes().all(|b| b.is_ascii_digit())
                    && f.trim_end_matches('0').len() <= PRICE_SCALE as usize
            };
            prop_assert_eq!(parse_units_wide(&text).is_ok(), well_formed);
        }
    }
}
