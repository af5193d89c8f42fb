//! What a bench run leaves behind: the table on standard output, a JSON results file, an
//! HdrHistogram interval log, a percentile-distribution (`.hgrm`) file per series, and an SVG
//! percentile plot; plus the progress bar shown while it runs.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::series::{format_rate, format_us, summary_json, Series, PERCENTILES};
use super::{BenchError, MachineUse};

/// Everything one `exchange bench <mode>` run measured.
#[derive(Debug)]
pub struct Report {
    /// The mode: `engine`, `udp-baseline`, `peers` (also the files' stem).
    pub mode: &'static str,
    /// One line saying what was measured and how (shown above the table and in the plot).
    pub title: String,
    /// What a latency figure is, from which moment to which.
    pub latency_is: String,
    /// How the machine was used.
    pub machine: MachineUse,
    /// The flags and workload, for the JSON file.
    pub config: serde_json::Value,
    /// The series, in the order run.
    pub series: Vec<Series>,
    /// Why a ramp stopped (`None` for modes without one).
    pub stop_reason: Option<String>,
    /// Remarks printed under the table and stored in the JSON.
    pub notes: Vec<String>,
    /// When the bench started.
    pub started: SystemTime,
}

impl Report {
    /// Every series' state check passed.
    pub fn check_passed(&self) -> bool {
        self.series.iter().all(|s| s.check.passed)
    }
}

/// The files written for a report.
#[derive(Clone, Debug)]
pub struct Written {
    /// `<mode>.json`.
    pub json: PathBuf,
    /// `<mode>.hlog`: the interval log, one tagged interval per series.
    pub hlog: PathBuf,
    /// `<mode>.svg`: the percentile plot.
    pub svg: PathBuf,
    /// `<mode>-<label>.hgrm`: one percentile distribution per series.
    pub hgrm: Vec<PathBuf>,
}

/// Prints the table (exchange-core's columns, in µs), the machine use and the notes to stdout.
pub fn print_table(report: &Report) {
    println!();
    println!("{}", report.title);
    println!("latency: {}", report.latency_is);
    println!("machine: {}", report.machine.describe());
    println!();
    let label_title = if report.series.iter().any(|s| s.rate_target.is_some()) { "rate/s" } else { "venue" };
    let mut head = format!("{label_title:>13} {:>9}", "achieved");
    for (title, _, _) in PERCENTILES {
        let _ = write!(head, " {title:>8}");
    }
    let _ = write!(head, " {:>9} {:>6} {:>6}  check", "worst", "lost", "steal");
    println!("{head}");
    for s in &report.series {
        println!("{}", table_line(s));
    }
    println!();
    if let Some(reason) = &report.stop_reason {
        println!("ramp ended: {reason}");
    }
    for note in &report.notes {
        println!("note: {note}");
    }
    for s in report.series.iter().filter(|s| !s.check.passed) {
        println!("CHECK FAILED at {}: {}", s.label, s.check.detail);
    }
}

/// One table line.
pub fn table_line(s: &Series) -> String {
    let label = s.rate_target.map_or_else(|| s.label.clone(), format_rate);
    let achieved = s.rate_achieved.map_or_else(|| "-".to_owned(), format_rate_approx);
    let mut line = format!("{label:>13} {achieved:>9}");
    for (_, _, q) in PERCENTILES {
        let _ = write!(line, " {:>8}", format_us(s.latency_ns.value_at_quantile(q)));
    }
    let check = if s.check.passed { "ok" } else { "FAILED" };
    let steal = s.steal_ms.map_or_else(|| "-".to_owned(), |ms| format!("{ms}ms"));
    let _ = write!(line, " {:>9} {:>6} {steal:>6}  {check}", format_us(s.latency_ns.max()), s.lost);
    line
}

fn format_rate_approx(rate: f64) -> String {
    if rate >= 1e6 {
        format!("{:.2}M", rate / 1e6)
    } else if rate >= 1e3 {
        format!("{:.0}k", rate / 1e3)
    } else {
        format!("{rate:.0}")
    }
}

/// Writes the JSON results, the interval log, the `.hgrm` files and the SVG plot into `dir`.
pub fn write_all(report: &Report, dir: &Path) -> Result<Written, BenchError> {
    std::fs::create_dir_all(dir).map_err(|e| BenchError::io(format!("create {}", dir.display()), e))?;
    let stem = report.mode;
    let written = Written {
        json: dir.join(format!("{stem}.json")),
        hlog: dir.join(format!("{stem}.hlog")),
        svg: dir.join(format!("{stem}.svg")),
        hgrm: report.series.iter().map(|s| dir.join(format!("{stem}-{}.hgrm", s.label))).collect(),
    };
    write_file(&written.hlog, &interval_log(report)?)?;
    for (s, path) in report.series.iter().zip(&written.hgrm) {
        write_file(path, percentile_distribution(&s.latency_ns).as_bytes())?;
    }
    write_file(&written.svg, super::svg::percentile_plot(report).as_bytes())?;
    let json = serde_json::to_string_pretty(&results_json(report, &written)).expect("JSON values serialize");
    write_file(&written.json, json.as_bytes())?;
    Ok(written)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), BenchError> {
    std::fs::write(path, bytes).map_err(|e| BenchError::io(format!("write {}", path.display()), e))
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// The JSON results document.
pub fn results_json(report: &Report, written: &Written) -> serde_json::Value {
    let series: Vec<serde_json::Value> = report
        .series
        .iter()
        .zip(&written.hgrm)
        .map(|(s, hgrm)| {
            serde_json::json!({
                "label": s.label,
                "rate_target": s.rate_target,
                "rate_achieved": s.rate_achieved.map(|a| a.round()),
                "requests": s.requests,
                "warmup_requests": s.warmup_requests,
                "lost": s.lost,
                "latency_us": summary_json(&s.latency_ns),
                "send_lag_us": s.send_lag_ns.as_ref().map(summary_json),
                "recorded_at_s": s.start_offset.as_secs_f64(),
                "duration_s": s.duration.as_secs_f64(),
                "check": { "passed": s.check.passed, "detail": s.check.detail },
                "steal_ms": s.steal_ms,
                "hgrm": file_name(hgrm),
                "extra": s.extra,
            })
        })
        .collect();
    serde_json::json!({
        "bench": "latency",
        "mode": report.mode,
        "title": report.title,
        "latency_is": report.latency_is,
        "started_unix_s": unix_seconds(report.started),
        "machine": report.machine.json(),
        "config": report.config,
        "series": series,
        "stop_reason": report.stop_reason,
        "notes": report.notes,
        "check_passed": report.check_passed(),
        "files": {
            "hlog": file_name(&written.hlog),
            "svg": file_name(&written.svg),
            "hgrm": written.hgrm.iter().map(|p| file_name(p)).collect::<Vec<_>>(),
        },
        "units": "latencies in microseconds; the histograms in the .hlog are in nanoseconds",
    })
}

fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs_f64()
}

/// The HdrHistogram interval log (Java `HistogramLogWriter` format, compressed V2 histograms, as
/// `HistogramLogProcessor` and HistogramLogAnalyzer read it): one interval per series, tagged
/// with its label, values in nanoseconds.
pub fn interval_log(report: &Report) -> Result<Vec<u8>, BenchError> {
    let mut buf = Vec::new();
    let mut serializer = V2DeflateSerializer::new();
    let mut builder = IntervalLogWriterBuilder::new();
    builder
        .add_comment("[Histogram log format version 1.3]")
        .add_comment(&report.title)
        .add_comment(&format!("latency: {}; values in nanoseconds", report.latency_is))
        .add_comment(&format!("machine: {}", report.machine.describe()))
        .add_comment(
            "one interval per series; its tag is the series label (a rate in requests/s, or a venue)",
        )
        .with_start_time(report.started)
        .with_base_time(report.started)
        .with_max_value_divisor(1e6);
    let mut log = builder
        .begin_log_with(&mut buf, &mut serializer)
        .map_err(|e| BenchError::io("start the interval log", e))?;
    for s in &report.series {
        let tag = Tag::new(&s.label);
        log.write_histogram(&s.latency_ns, s.start_offset, s.duration, tag)
            .map_err(|e| BenchError::io("write the interval log", std::io::Error::other(format!("{e:?}"))))?;
    }
    drop(log);
    Ok(buf)
}

/// A histogram as Java's `outputPercentileDistribution` prints it (values in microseconds): the
/// `.hgrm` text that HdrHistogram's online plotter and most tools read.
pub fn percentile_distribution(h: &Histogram<u64>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total: u64 = 0;
    for v in h.iter_quantiles(5) {
        total += v.count_since_last_iteration();
        let value_us = h.highest_equivalent(v.value_iterated_to()) as f64 / 1_000.0;
        let q = v.quantile_iterated_to();
        if q < 1.0 {
            let _ = writeln!(out, "{value_us:>12.3} {q:>14.12} {total:>10} {:>14.2}", 1.0 / (1.0 - q));
        } else {
            let _ = writeln!(out, "{value_us:>12.3} {q:>14.12} {total:>10}");
        }
    }
    let _ = writeln!(
        out,
        "#[Mean    = {:>12.3}, StdDeviation   = {:>12.3}]",
        h.mean() / 1_000.0,
        h.stdev() / 1_000.0
    );
    let _ =
        writeln!(out, "#[Max     = {:>12.3}, Total count    = {:>12}]", h.max() as f64 / 1_000.0, h.len());
    let _ = writeln!(out, "#[Buckets = {:>12}, SubBuckets     = {:>12}]", h.buckets(), h.distinct_values());
    out
}

/// The bar shown while a bench runs, on standard error, only when standard output is a
/// terminal. It is redrawn only *between* measured phases, never during one: a redraw is a
/// write(2) on the harness thread, and would show up in the latencies it is measuring.
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar of `steps` steps (rates or venues).
    pub fn new(steps: u64, visible: bool) -> Progress {
        let target = if visible { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
        let bar = ProgressBar::with_draw_target(Some(steps), target);
        bar.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
                .expect("constant template")
                .progress_chars("=> "),
        );
        Progress { bar }
    }

    /// Says what runs next (drawn now, before the phase starts).
    pub fn phase(&self, message: String) {
        self.bar.set_message(message);
        self.bar.tick();
    }

    /// One step done; prints `line` above the bar (or to stderr when the bar is hidden).
    pub fn step_done(&self, line: &str) {
        if self.bar.is_hidden() {
            eprintln!("{line}");
        } else {
            self.bar.println(line);
        }
        self.bar.inc(1);
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// Prints the table, writes every file into `out`, says where they went, and tells whether
/// every state check passed: the end of every mode's run.
pub fn publish(report: &Report, out: &std::path::Path) -> Result<bool, BenchError> {
    print_table(report);
    let written = write_all(report, out)?;
    println!(
        "results: {} (plot {}, log {})",
        written.json.display(),
        written.svg.display(),
        written.hlog.display()
    );
    Ok(report.check_passed())
}
