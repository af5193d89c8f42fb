//! Exact division by a constant without a divide instruction.
//!
//! Every new order and replace checks that its price is a whole number of ticks and its
//! quantity a whole number of lots, then divides. A 64-bit `div` takes tens of cycles, a few
//! percent of a whole command at 1k resting orders. The tick and lot of a symbol never change,
//! so each book keeps an [`ExactDivisor`] for them: a shift and a multiply answer both "does it
//! divide?" and "what is the quotient?" (Granlund and Montgomery's test for exact division, also
//! in Hacker's Delight §10-16/10-17).

/// A divisor `d = 2^shift * odd`, ready to test and divide exactly.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ExactDivisor {
    /// Trailing zero bits of the divisor.
    shift: u32,
    /// The inverse of the odd part modulo 2^64.
    inverse: u64,
    /// `u64::MAX / odd`: the largest quotient an exact division by the odd part gives.
    quotient_max: u64,
}

impl ExactDivisor {
    /// Prepares division by `divisor` (positive).
    pub(crate) fn new(divisor: u64) -> ExactDivisor {
        assert!(divisor > 0, "division by zero");
        let shift = divisor.trailing_zeros();
        let odd = divisor >> shift;
        // Newton's iteration doubles the correct low bits each step: odd * odd ≡ 1 (mod 8) gives
        // 3 bits, five steps give 96 ≥ 64.
        let mut inverse = odd;
        for _ in 0..5 {
            inverse = inverse.wrapping_mul(2u64.wrapping_sub(odd.wrapping_mul(inverse)));
        }
        debug_assert_eq!(odd.wrapping_mul(inverse), 1);
        ExactDivisor { shift, inverse, quotient_max: u64::MAX / odd }
    }

    /// `Some(x / d)` when `d` divides `x`, else `None`.
    #[inline]
    pub(crate) fn divide(&self, x: u64) -> Option<u64> {
        // Shifting by 64 cannot happen: shift < 64 for any nonzero u64 divisor.
        let low_bits = x & ((1u64 << self.shift) - 1);
        // For odd m, multiplying by m's inverse maps the multiples of m onto 0..=u64::MAX / m
        // (their quotients) and every other value above that range.
        let q = (x >> self.shift).wrapping_mul(self.inverse);
        (low_bits == 0 && q <= self.quotient_max).then_some(q)
    }
}

#[cfg(test)]
mod tests {
    use super::ExactDivisor;

    #[test]
    fn agrees_with_div_and_rem() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut divisors =
            vec![1, 2, 3, 5, 7, 10, 64, 100, 1_000_000, 12_500_000, 1 << 63, u64::MAX, u64::MAX - 1];
        divisors.extend((0..200).map(|_| next() >> (next() % 64)).filter(|&d| d > 0));
        for d in divisors {
            let div = ExactDivisor::new(d);
            let mut values = vec![0, 1, d - 1, d, d.wrapping_add(1), u64::MAX, u64::MAX - u64::MAX % d];
            for _ in 0..2_000 {
                let r = next();
                values.push(r);
                // Multiples too, or they would almost never be drawn.
                values.push((r % (u64::MAX / d).max(1)).wrapping_mul(d));
            }
            for v in values {
                let want = (v % d == 0).then(|| v / d);
                assert_eq!(div.divide(v), want, "{v} / {d}");
            }
        }
    }
}
