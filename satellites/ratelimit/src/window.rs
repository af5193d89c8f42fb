//! A sliding window counter of refused messages, in a fixed number of buckets.

use crate::config::LimitConfig;

/// Buckets per window. The count covers the current bucket and the `WINDOW_BUCKETS - 1` before
/// it, so it sees at least the last `(WINDOW_BUCKETS - 1) / WINDOW_BUCKETS` of the window and at
/// most the whole window: 8 buckets bound the error at 1/8 of the window for 40 bytes per key,
/// where an exact log would need one timestamp per tolerated refusal.
pub const WINDOW_BUCKETS: usize = 8;

const _: () = assert!(WINDOW_BUCKETS.is_power_of_two());

/// Refusals per bucket over the last [`WINDOW_BUCKETS`] buckets of `window / WINDOW_BUCKETS` ns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RejectWindow {
    /// Index (`now_ns / bucket_ns`) of the newest bucket.
    head: u64,
    /// Length of a bucket in nanoseconds, at least 1.
    bucket_ns: u64,
    /// Refusals per bucket; bucket `i` lives at `i % WINDOW_BUCKETS`.
    counts: [u32; WINDOW_BUCKETS],
}

impl RejectWindow {
    /// An empty window for `config` (validated by the caller).
    pub fn new(config: &LimitConfig) -> RejectWindow {
        let window_ns = config.abuse_window_ms.saturating_mul(1_000_000);
        RejectWindow {
            head: 0,
            bucket_ns: (window_ns / WINDOW_BUCKETS as u64).max(1),
            counts: [0; WINDOW_BUCKETS],
        }
    }

    /// Moves the window so its newest bucket holds `now_ns`, dropping buckets that fell out. A
    /// `now_ns` before the newest bucket counts in the newest bucket (time never runs back).
    #[inline]
    fn advance(&mut self, now_ns: u64) {
        let bucket = now_ns / self.bucket_ns;
        if bucket <= self.head {
            return;
        }
        let gap = bucket - self.head;
        if gap >= WINDOW_BUCKETS as u64 {
            self.counts = [0; WINDOW_BUCKETS];
        } else {
            for i in 1..=gap {
                self.counts[((self.head + i) % WINDOW_BUCKETS as u64) as usize] = 0;
            }
        }
        self.head = bucket;
    }

    /// Counts one refusal at `now_ns` and returns the refusals now in the window.
    #[inline]
    pub fn record(&mut self, now_ns: u64) -> u32 {
        self.advance(now_ns);
        let slot = &mut self.counts[(self.head % WINDOW_BUCKETS as u64) as usize];
        *slot = slot.saturating_add(1);
        self.counts.iter().fold(0u32, |sum, &c| sum.saturating_add(c))
    }

    /// Refusals in the window at `now_ns`, without counting one.
    pub fn count(&self, now_ns: u64) -> u32 {
        let mut copy = *self;
        copy.advance(now_ns);
        copy.counts.iter().fold(0u32, |sum, &c| sum.saturating_add(c))
    }

    /// True when no refusal is left in the window at `now_ns`.
    #[inline]
    pub fn is_empty(&self, now_ns: u64) -> bool {
        let bucket = now_ns / self.bucket_ns;
        bucket >= self.head.saturating_add(WINDOW_BUCKETS as u64) || self.counts == [0; WINDOW_BUCKETS]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_slide_out_bucket_by_bucket() {
        // 80 ms window: 10 ms buckets.
        let config = LimitConfig { abuse_window_ms: 80, ..LimitConfig::default() };
        let mut w = RejectWindow::new(&config);
        let ms = 1_000_000;
        assert_eq!(w.record(0), 1);
        assert_eq!(w.record(5 * ms), 2);
        assert_eq!(w.record(75 * ms), 3);
        assert!(!w.is_empty(79 * ms));
        // At 80 ms the first bucket (0..10 ms) has left.
        assert_eq!(w.count(80 * ms), 1);
        assert_eq!(w.record(80 * ms), 2);
        assert_eq!(w.count(159 * ms), 1);
        assert_eq!(w.count(160 * ms), 0);
        assert!(w.is_empty(160 * ms));
        // A far jump clears everything at once.
        assert_eq!(w.record(10_000 * ms), 1);
    }
}
