//! One measured run ([`Series`]): its latency histogram, what it achieved, and its state check.

use std::time::Duration;

use hdrhistogram::Histogram;

/// Highest latency a histogram records, in nanoseconds (60 s); longer ones saturate there.
pub const LATENCY_NS_MAX: u64 = 60_000_000_000;

/// Significant decimal digits the histograms keep (values within 0.1%).
pub const HISTOGRAM_SIGFIG: u8 = 3;

/// An empty latency histogram: 1 ns to [`LATENCY_NS_MAX`], [`HISTOGRAM_SIGFIG`] digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_NS_MAX, HISTOGRAM_SIGFIG).expect("constant bounds are valid")
}

/// The percentiles of the table, as (column title, JSON key, quantile).
pub const PERCENTILES: [(&str, &str, f64); 6] = [
    ("p50", "p50", 0.50),
    ("p90", "p90", 0.90),
    ("p95", "p95", 0.95),
    ("p99", "p99", 0.99),
    ("p99.9", "p99_9", 0.999),
    ("p99.99", "p99_99", 0.9999),
];

/// Whether a run left the state it should have, and what was compared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// All comparisons held.
    pub passed: bool,
    /// What was compared, or every difference found.
    pub detail: String,
}

impl Check {
    /// A passed check.
    pub fn ok(detail: impl Into<String>) -> Check {
        Check { passed: true, detail: detail.into() }
    }

    /// A check that lists `problems`, passed when there are none.
    pub fn from_problems(problems: Vec<String>, what_was_compared: &str) -> Check {
        if problems.is_empty() {
            Check::ok(what_was_compared)
        } else {
            Check { passed: false, detail: problems.join("; ") }
        }
    }
}

/// One line of results: one rate of a ramp, or one venue of the peers mode.
#[derive(Clone, Debug)]
pub struct Series {
    /// Label in the table, the plot's legend and the log's tag (no spaces or commas).
    pub label: String,
    /// Planned requests per second (open loop); `None` for closed-loop series.
    pub rate_target: Option<u64>,
    /// Recorded requests actually sent per second.
    pub rate_achieved: Option<f64>,
    /// Latencies of the recorded requests, in nanoseconds.
    pub latency_ns: Histogram<u64>,
    /// How late each recorded request left after its planned time, in nanoseconds (open loop).
    pub send_lag_ns: Option<Histogram<u64>>,
    /// Recorded requests sent (or commands timed).
    pub requests: u64,
    /// Warm-up requests before them, not recorded.
    pub warmup_requests: u64,
    /// Recorded requests that never completed (counted nowhere in the histogram).
    pub lost: u64,
    /// When the recorded phase started, from the start of the whole bench.
    pub start_offset: Duration,
    /// How long the recorded phase took.
    pub duration: Duration,
    /// The state check.
    pub check: Check,
    /// Mode-specific figures for the JSON file (events, trades, timer overhead, ...).
    pub extra: serde_json::Value,
    /// CPU time the hypervisor took from this machine's vCPUs while the series ran, summed over
    /// the vCPUs, in milliseconds (`steal` of `/proc/stat`); `None` where the OS does not say.
    /// On a shared VM a stolen slice stalls every thread on that vCPU: a tail made of it is the
    /// host's, and this says how much of it there was.
    pub steal_ms: Option<u64>,
}

/// Steal time of all vCPUs so far, in milliseconds (`/proc/stat`, USER_HZ = 100 ticks a
/// second on Linux), or `None` off Linux.
pub fn steal_ms_now() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu = stat.lines().find(|l| l.starts_with("cpu "))?;
    // cpu user nice system idle iowait irq softirq steal ...
    let ticks: u64 = cpu.split_whitespace().nth(8)?.parse().ok()?;
    Some(ticks * 10)
}

/// A latency in nanoseconds as microseconds for the table: three significant digits or so.
pub fn format_us(ns: u64) -> String {
    let us = ns as f64 / 1_000.0;
    if us < 10.0 {
        format!("{us:.2}")
    } else if us < 100.0 {
        format!("{us:.1}")
    } else {
        format!("{us:.0}")
    }
}

/// A rate for humans: `250k`, `1M`, `2.5M`.
pub fn format_rate(rate: u64) -> String {
    if rate >= 1_000_000 && rate.is_multiple_of(100_000) {
        let m = rate as f64 / 1e6;
        if rate.is_multiple_of(1_000_000) {
            format!("{m:.0}M")
        } else {
            format!("{m:.1}M")
        }
    } else if rate >= 1_000 && rate.is_multiple_of(1_000) {
        format!("{}k", rate / 1_000)
    } else {
        rate.to_string()
    }
}

/// Percentiles, mean and max of a histogram in microseconds, for the JSON file.
pub fn summary_json(h: &Histogram<u64>) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for (_, key, q) in PERCENTILES {
        map.insert(key.to_owned(), us_json(h.value_at_quantile(q)));
    }
    map.insert("max".to_owned(), us_json(h.max()));
    map.insert("min".to_owned(), us_json(h.min()));
    map.insert("mean".to_owned(), serde_json::json!((h.mean() / 1_000.0 * 1_000.0).round() / 1_000.0));
    map.insert("count".to_owned(), serde_json::json!(h.len()));
    serde_json::Value::Object(map)
}

fn us_json(ns: u64) -> serde_json::Value {
    serde_json::json!(ns as f64 / 1_000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_like_people_write_them() {
        assert_eq!(format_rate(100_000), "100k");
        assert_eq!(format_rate(1_000_000), "1M");
        assert_eq!(format_rate(2_500_000), "2.5M");
        assert_eq!(format_rate(1_234), "1234");
    }

    #[test]
    fn microseconds_keep_about_three_digits() {
        assert_eq!(format_us(412), "0.41");
        assert_eq!(format_us(31_000), "31.0");
        assert_eq!(format_us(1_234_567), "1235");
    }
}
