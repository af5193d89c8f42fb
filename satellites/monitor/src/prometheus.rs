//! The Prometheus text exposition format (version 0.0.4), rendered from a [`Snapshot`] on the
//! thread serving the scrape, never on a stage's.
//!
//! Metrics sharing a name form one family: one `# HELP` and `# TYPE`, then a sample per label
//! set. Histograms are classic ones in seconds: cumulative `_bucket{le=...}`, `_sum`, `_count`;
//! their max goes out as a gauge family of its own (`X_max_seconds` for `X_seconds`). Times are
//! printed exactly, from integer nanoseconds, never through a float.

use std::fmt::Write;

use crate::buckets::{bound_ns, FINITE_BUCKETS};
use crate::layout::Kind;
use crate::reader::{MetricSnapshot, Snapshot, Value};

/// The `Content-Type` of the rendered text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The name of the gauge family carrying a histogram's largest observation.
pub fn max_name(histogram: &str) -> String {
    match histogram.strip_suffix("_seconds") {
        Some(base) => format!("{base}_max_seconds"),
        None => format!("{histogram}_max"),
    }
}

/// Appends every metric of `snapshot` to `out`.
pub fn render(snapshot: &Snapshot, out: &mut String) {
    // Families in the order their first member was registered; a bounded number of metrics
    // (METRICS_MAX), so the quadratic grouping stays small.
    let mut families: Vec<(&str, Vec<&MetricSnapshot>)> = Vec::new();
    for metric in &snapshot.metrics {
        match families.iter_mut().find(|(name, _)| *name == metric.name) {
            Some((_, members)) => members.push(metric),
            None => families.push((&metric.name, vec![metric])),
        }
    }
    for (name, members) in &families {
        let first = members[0];
        let kind = match first.kind {
            Kind::Counter => "counter",
            Kind::Gauge | Kind::GaugeNs => "gauge",
            Kind::Histogram => "histogram",
        };
        write_header(out, name, &first.help, kind);
        for m in members {
            match &m.value {
                Value::Counter(v) => sample(out, name, "", &m.labels, "", |o| write!(o, "{v}")),
                Value::Gauge(v) if m.kind == Kind::GaugeNs => {
                    sample(out, name, "", &m.labels, "", |o| write_seconds(o, *v))
                }
                Value::Gauge(v) => sample(out, name, "", &m.labels, "", |o| write!(o, "{v}")),
                Value::Histogram(h) => {
                    let mut cumulative = 0u64;
                    for (i, n) in h.buckets.iter().enumerate() {
                        cumulative += n;
                        let le =
                            if i < FINITE_BUCKETS { seconds_text(bound_ns(i) as i64) } else { "+Inf".into() };
                        let le = format!("le=\"{le}\"");
                        sample(out, name, "_bucket", &m.labels, &le, |o| write!(o, "{cumulative}"));
                    }
                    sample(out, name, "_sum", &m.labels, "", |o| write_seconds(o, h.sum_ns as i64));
                    // The count is the buckets' total, so `+Inf` == `_count` in every read.
                    sample(out, name, "_count", &m.labels, "", |o| write!(o, "{cumulative}"));
                }
            }
        }
        if first.kind == Kind::Histogram {
            let max = max_name(name);
            write_header(out, &max, &format!("Largest observation of {name}."), "gauge");
            for m in members {
                if let Value::Histogram(h) = &m.value {
                    sample(out, &max, "", &m.labels, "", |o| write_seconds(o, h.max_ns as i64));
                }
            }
        }
    }
}

/// `# HELP` (escaped) and `# TYPE` lines.
pub fn write_header(out: &mut String, name: &str, help: &str, kind: &str) {
    out.push_str("# HELP ");
    out.push_str(name);
    out.push(' ');
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push_str("\n# TYPE ");
    out.push_str(name);
    out.push(' ');
    out.push_str(kind);
    out.push('\n');
}

/// One sample line: `name{labels,extra} value`. `labels` is already escaped.
pub fn sample(
    out: &mut String,
    name: &str,
    suffix: &str,
    labels: &str,
    extra: &str,
    value: impl FnOnce(&mut String) -> std::fmt::Result,
) {
    out.push_str(name);
    out.push_str(suffix);
    if !labels.is_empty() || !extra.is_empty() {
        out.push('{');
        out.push_str(labels);
        if !labels.is_empty() && !extra.is_empty() {
            out.push(',');
        }
        out.push_str(extra);
        out.push('}');
    }
    out.push(' ');
    // Writing into a String cannot fail.
    let _ = value(out);
    out.push('\n');
}

/// Nanoseconds as exact decimal seconds: 1_250 → `0.00000125`, 3_000_000_000 → `3`.
pub fn seconds_text(ns: i64) -> String {
    let mut s = String::new();
    let _ = write_seconds(&mut s, ns);
    s
}

fn write_seconds(out: &mut String, ns: i64) -> std::fmt::Result {
    let sign = if ns < 0 { "-" } else { "" };
    let abs = ns.unsigned_abs();
    let (whole, frac) = (abs / 1_000_000_000, abs % 1_000_000_000);
    if frac == 0 {
        return write!(out, "{sign}{whole}");
    }
    let digits = format!("{frac:09}");
    write!(out, "{sign}{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{CounterDef, GaugeDef, HistogramDef};
    use crate::Registry;

    #[test]
    fn seconds_are_exact() {
        assert_eq!(seconds_text(0), "0");
        assert_eq!(seconds_text(1_000), "0.000001");
        assert_eq!(seconds_text(1_250), "0.00000125");
        assert_eq!(seconds_text(3_000_000_000), "3");
        assert_eq!(seconds_text(134_217_728_000_000), "134217.728");
        assert_eq!(seconds_text(-1_500_000_000), "-1.5");
        assert_eq!(seconds_text(i64::MIN), "-9223372036.854775808");
    }

    #[test]
    fn max_names() {
        assert_eq!(max_name("exchange_order_latency_seconds"), "exchange_order_latency_max_seconds");
        assert_eq!(max_name("odd"), "odd_max");
    }

    /// A small venue-like registry rendered, for this test and the promtool test.
    pub(crate) fn sample_text() -> String {
        let mut r = Registry::anonymous().unwrap();
        let orders = CounterDef { name: "t_orders_in_total", help: "Orders \\ in\nby type." };
        let limit = r.counter(&orders, "gateway", &[("type", "limit")]).unwrap();
        let market = r.counter(&orders, "gateway", &[("type", "mar\"k\\et\n")]).unwrap();
        let depth = r
            .gauge(&GaugeDef { name: "t_depth", help: "Depth.", nanoseconds: false }, "engine", &[])
            .unwrap();
        let lag = r
            .gauge(&GaugeDef { name: "t_lag_seconds", help: "Lag.", nanoseconds: true }, "journal", &[])
            .unwrap();
        let def = HistogramDef { name: "t_stage_seconds", help: "Stage time." };
        let decode = r.histogram(&def, "gateway", &[("stage", "decode")]).unwrap();
        let matching = r.histogram(&def, "engine", &[("stage", "match")]).unwrap();
        limit.add(3);
        market.inc();
        depth.set(-2);
        lag.set(1_500_000);
        for ns in [900, 1_100, 1_100, 2_000_000, 200_000_000_000] {
            decode.record_ns(ns);
        }
        matching.record_ns(40_000);
        let mut out = String::new();
        render(&r.reader().snapshot().unwrap(), &mut out);
        out
    }

    #[test]
    fn renders_families_samples_and_escapes() {
        let text = sample_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "# HELP t_orders_in_total Orders \\\\ in\\nby type.");
        assert_eq!(lines[1], "# TYPE t_orders_in_total counter");
        assert_eq!(lines[2], "t_orders_in_total{type=\"limit\"} 3");
        assert_eq!(lines[3], "t_orders_in_total{type=\"mar\\\"k\\\\et\\n\"} 1");
        assert!(text.contains("\nt_depth -2\n"));
        assert!(text.contains("\n# TYPE t_lag_seconds gauge\nt_lag_seconds 0.0015\n"));
        assert_eq!(text.matches("# TYPE t_stage_seconds histogram").count(), 1);
        assert!(text.contains("t_stage_seconds_bucket{stage=\"decode\",le=\"0.000001\"} 1\n"));
        assert!(text.contains("t_stage_seconds_bucket{stage=\"decode\",le=\"0.00000125\"} 3\n"));
        assert!(text.contains("t_stage_seconds_bucket{stage=\"decode\",le=\"134.217728\"} 4\n"));
        assert!(text.contains("t_stage_seconds_bucket{stage=\"decode\",le=\"+Inf\"} 5\n"));
        assert!(text.contains("t_stage_seconds_sum{stage=\"decode\"} 200.0020031\n"));
        assert!(text.contains("t_stage_seconds_count{stage=\"decode\"} 5\n"));
        assert!(text.contains("t_stage_seconds_count{stage=\"match\"} 1\n"));
        assert!(
            text.contains("# TYPE t_stage_max_seconds gauge\nt_stage_max_seconds{stage=\"decode\"} 200\n")
        );
    }

    #[test]
    fn promtool_accepts_the_text() {
        let Some(promtool) = crate::testing::promtool() else {
            eprintln!("skipped: promtool not installed (apt-get install prometheus)");
            return;
        };
        let text = sample_text();
        let mut child = std::process::Command::new(promtool)
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        let said =
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "promtool check metrics failed:\n{said}\n---\n{text}");
        // Lint findings (naming, units) are printed even on success; there should be none.
        assert!(said.trim().is_empty(), "promtool lint findings:\n{said}");
    }
}
