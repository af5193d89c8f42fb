//! The fixed log-spaced buckets every histogram shares.
//!
//! Bounds are kept in quarter microseconds so that each one is an integer: from 1 µs, every power
//! of two is split into [`SUB_BUCKETS`] equal steps (1, 1.25, 1.5, 1.75, 2, 2.5, 3, 3.5, 4, 5 µs,
//! ...), up to 2^27 µs ≈ 134 s. A value above the last bound lands in the overflow bucket,
//! rendered as `le="+Inf"`. The relative width of a bucket is at most 25%, so a quantile read
//! from the buckets is within 25% of the true value.
//!
//! Finding the bucket is a division by a constant, a leading-zero count and two shifts: no loop,
//! no table, so recording costs the same for every value.

/// Steps each power of two is split into.
pub const SUB_BUCKETS: usize = 4;
/// Powers of two covered above the first bound of 1 µs.
pub const OCTAVES: usize = 27;
/// Buckets with a finite upper bound: `le=1µs`, then [`SUB_BUCKETS`] per octave.
pub const FINITE_BUCKETS: usize = 1 + OCTAVES * SUB_BUCKETS;
/// All buckets: the finite ones and the overflow bucket last.
pub const BUCKETS: usize = FINITE_BUCKETS + 1;

/// The unit bounds are counted in.
const QUARTER_US_NS: u64 = 250;
/// `le=1µs` in quarter microseconds.
const FIRST_BOUND_QUARTERS: u64 = 4;

const _: () = assert!(SUB_BUCKETS == 4, "bucket_index takes the sub-bucket from two bits");
const _: () = assert!(bound_ns(FINITE_BUCKETS - 1) == (1u64 << OCTAVES) * 1_000);

/// Index of the bucket a value of `ns` nanoseconds falls in: the first whose bound is ≥ `ns`.
#[inline(always)]
pub const fn bucket_index(ns: u64) -> usize {
    // Rounding up keeps `le` exact: ns ≤ bound·250 exactly when ⌈ns/250⌉ ≤ bound, as every
    // bound is a whole number of quarter microseconds.
    let quarters = ns.div_ceil(QUARTER_US_NS);
    if quarters <= FIRST_BOUND_QUARTERS {
        return 0;
    }
    // Bucket (octave p, step k = 1..=4) covers quarters in (2^p·(3+k), 2^p·(4+k)]; with
    // m = quarters - 1 that is m in [2^p·(3+k), 2^p·(4+k)), so p = log2(m) - 2 and the two bits
    // below m's leading one are k - 1.
    let m = quarters - 1;
    let octave = (63 - m.leading_zeros()) as usize - 2;
    if octave >= OCTAVES {
        return FINITE_BUCKETS;
    }
    let step = ((m >> octave) & 3) as usize;
    1 + octave * SUB_BUCKETS + step
}

/// Upper bound of finite bucket `index`, in nanoseconds.
pub const fn bound_ns(index: usize) -> u64 {
    if index == 0 {
        return FIRST_BOUND_QUARTERS * QUARTER_US_NS;
    }
    let octave = (index - 1) / SUB_BUCKETS;
    let step = ((index - 1) % SUB_BUCKETS) as u64 + 1;
    (1u64 << octave) * (4 + step) * QUARTER_US_NS
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The definition, by search: the first bound at or above the value.
    fn reference_index(ns: u64) -> usize {
        (0..FINITE_BUCKETS).find(|&i| ns <= bound_ns(i)).unwrap_or(FINITE_BUCKETS)
    }

    #[test]
    fn bounds_rise_by_at_most_a_quarter() {
        assert_eq!(bound_ns(0), 1_000);
        assert_eq!(bound_ns(1), 1_250);
        assert_eq!(bound_ns(4), 2_000);
        assert_eq!(bound_ns(5), 2_500);
        for i in 1..FINITE_BUCKETS {
            let (lo, hi) = (bound_ns(i - 1), bound_ns(i));
            assert!(hi > lo);
            assert!((hi - lo) * 4 <= lo, "bucket {i} is wider than 25%: {lo}..{hi}");
        }
    }

    #[test]
    fn edges_land_in_the_bucket_they_bound() {
        assert_eq!(bucket_index(0), 0);
        for i in 0..FINITE_BUCKETS {
            assert_eq!(bucket_index(bound_ns(i)), i, "at bound {i}");
            assert_eq!(bucket_index(bound_ns(i) + 1), i + 1, "just above bound {i}");
        }
        assert_eq!(bucket_index(u64::MAX), FINITE_BUCKETS);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4096, rng_seed: proptest::test_runner::RngSeed::Fixed(18), ..ProptestConfig::default() })]
        #[test]
        fn index_matches_the_search(ns in prop_oneof![0u64..10_000, 0u64..200_000_000_000, any::<u64>()]) {
            prop_assert_eq!(bucket_index(ns), reference_index(ns));
        }
    }
}
