//! `exchange stat`: every counter of a running (or stopped) venue, printed each second from its
//! counters file, as Aeron's `AeronStat` does. It maps the file read-only and never talks to
//! the venue, so it works while the venue is wedged and costs it nothing.

use std::io::{IsTerminal, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::layout::Kind;
use crate::reader::{CountersReader, Snapshot, Value};
use crate::{counters_path, CountersError};

/// `exchange stat` options.
#[derive(clap::Args, Clone, Debug)]
pub struct StatArgs {
    /// The venue's data directory (the counters file is `DIR/monitor/counters.bin`).
    #[arg(long, default_value = "var")]
    pub data: PathBuf,
    /// Time between two prints, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub interval_ms: u64,
    /// Stop after this many prints (default: until interrupted).
    #[arg(long)]
    pub count: Option<u64>,
}

/// Runs `exchange stat`; exit status 2 when the file cannot be read.
pub fn main(args: &StatArgs) -> ExitCode {
    let stdout = std::io::stdout();
    let clear = stdout.is_terminal();
    match run(args, &mut stdout.lock(), clear) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stat: error: {e}");
            ExitCode::from(2)
        }
    }
}

/// Failures of `exchange stat`.
#[derive(Debug, thiserror::Error)]
pub enum StatError {
    /// The counters file is missing, unreadable or not a counters file.
    #[error(transparent)]
    Counters(#[from] CountersError),
    /// Standard output went away.
    #[error("writing the table: {0}")]
    Output(#[from] std::io::Error),
}

/// The file being read, and what identifies it: a venue restart replaces the file (a new
/// inode), and stat follows it to the new one.
struct Open {
    reader: CountersReader,
    inode: u64,
}

fn open(path: &Path) -> Result<Open, CountersError> {
    let inode = std::fs::metadata(path)
        .map_err(|source| CountersError::Io { path: path.to_path_buf(), source })?
        .ino();
    Ok(Open { reader: CountersReader::open(path)?, inode })
}

/// Prints a table every `interval_ms` until `count` prints (or forever); `clear` redraws the
/// terminal in place instead of scrolling.
pub fn run(args: &StatArgs, out: &mut impl Write, clear: bool) -> Result<(), StatError> {
    let path = counters_path(&args.data);
    let interval = Duration::from_millis(args.interval_ms.max(1));
    let mut current = open(&path)?;
    let mut previous: Option<(Snapshot, Instant)> = None;
    let mut printed = 0u64;
    loop {
        // A new venue process replaced the file: read the new one, and drop rates across it.
        if let Ok(inode) = std::fs::metadata(&path).map(|m| m.ino()) {
            if inode != current.inode {
                current = open(&path)?;
                previous = None;
            }
        }
        let now = Instant::now();
        let snapshot = current.reader.snapshot()?;
        let elapsed = previous.as_ref().map(|(_, at)| now.duration_since(*at));
        let table = table(&snapshot, previous.as_ref().map(|(s, _)| s), elapsed, &path);
        if clear {
            out.write_all(b"\x1b[H\x1b[2J")?;
        }
        out.write_all(table.as_bytes())?;
        out.flush()?;
        printed += 1;
        if args.count.is_some_and(|n| printed >= n) {
            return Ok(());
        }
        previous = Some((snapshot, now));
        std::thread::sleep(interval);
    }
}

/// One screen: a header line, then a line per metric with its value and, given the previous
/// snapshot of the same file, its rate per second; histograms show count, p50, p99 and max.
pub fn table(
    snapshot: &Snapshot,
    previous: Option<&Snapshot>,
    elapsed: Option<Duration>,
    path: &Path,
) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let now_ns = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let up_s = now_ns.saturating_sub(snapshot.start_time_unix_ns) / 1_000_000_000;
    let alive = process_alive(snapshot.pid);
    let _ = writeln!(
        out,
        "{}  pid {} ({})  started {}h{:02}m{:02}s ago  {} metrics",
        path.display(),
        snapshot.pid,
        if alive { "running" } else { "exited" },
        up_s / 3600,
        up_s / 60 % 60,
        up_s % 60,
        snapshot.metrics.len()
    );
    let width =
        snapshot.metrics.iter().map(|m| series_len(m.name.len(), &m.labels)).max().unwrap_or(0).max(6);
    let _ = writeln!(out, "{:<16} {:<width$} {:>20} {:>12}", "OWNER", "METRIC", "VALUE", "PER SEC");
    let seconds = elapsed.map(|e| e.as_secs_f64()).filter(|s| *s > 0.0);
    for (i, m) in snapshot.metrics.iter().enumerate() {
        let series = if m.labels.is_empty() { m.name.clone() } else { format!("{}{{{}}}", m.name, m.labels) };
        // Metrics are only ever appended, so index i is the same metric in the previous copy.
        let before = previous.and_then(|p| p.metrics.get(i)).map(|p| &p.value);
        let rate = |now: u64, then: Option<u64>| match (then, seconds) {
            (Some(then), Some(s)) => format!("{:.0}", now.saturating_sub(then) as f64 / s),
            _ => String::new(),
        };
        let _ = match &m.value {
            Value::Counter(v) => {
                let then = match before {
                    Some(Value::Counter(t)) => Some(*t),
                    _ => None,
                };
                writeln!(out, "{:<16} {series:<width$} {v:>20} {:>12}", m.owner, rate(*v, then))
            }
            Value::Gauge(v) if m.kind == Kind::GaugeNs => {
                writeln!(out, "{:<16} {series:<width$} {:>20}", m.owner, micros(*v))
            }
            Value::Gauge(v) => writeln!(out, "{:<16} {series:<width$} {v:>20}", m.owner),
            Value::Histogram(h) => {
                let then = match before {
                    Some(Value::Histogram(t)) => Some(t.total()),
                    _ => None,
                };
                writeln!(
                    out,
                    "{:<16} {series:<width$} {:>20} {:>12}  p50 {} p99 {} max {}",
                    m.owner,
                    h.total(),
                    rate(h.total(), then),
                    micros(h.quantile_ns(0.5) as i64),
                    micros(h.quantile_ns(0.99) as i64),
                    micros(h.max_ns as i64)
                )
            }
        };
    }
    out
}

/// Whether `pid` is a live process: present in /proc and not a zombie (a killed venue whose
/// parent has not reaped it yet is gone for our purpose).
fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses and may contain spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|s| s != "Z" && s != "X"),
        Err(_) => false,
    }
}

fn series_len(name: usize, labels: &str) -> usize {
    if labels.is_empty() {
        name
    } else {
        name + labels.len() + 2
    }
}

/// Nanoseconds as microseconds with one decimal: `12.5µs`.
fn micros(ns: i64) -> String {
    format!("{}.{}µs", ns / 1_000, (ns % 1_000).abs() / 100)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{ENGINE_CYCLE, JOURNAL_SYNC_LAG, ORDERS_IN, SESSIONS};
    use crate::Registry;

    #[test]
    fn prints_values_rates_and_percentiles() {
        let mut r = Registry::anonymous().unwrap();
        let orders = r.counter(&ORDERS_IN, "gateway", &[("type", "limit")]).unwrap();
        let sessions = r.gauge(&SESSIONS, "gateway", &[]).unwrap();
        let lag = r.gauge(&JOURNAL_SYNC_LAG, "journal", &[]).unwrap();
        let cycle = r.histogram(&ENGINE_CYCLE, "engine", &[]).unwrap();
        orders.add(100);
        let first = r.reader().snapshot().unwrap();
        orders.add(500);
        sessions.set(3);
        lag.set(12_500);
        for ns in 1..=100u64 {
            cycle.record_ns(ns * 1_000);
        }
        let second = r.reader().snapshot().unwrap();
        let text =
            table(&second, Some(&first), Some(Duration::from_millis(500)), Path::new("x/counters.bin"));
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with(&format!("x/counters.bin  pid {} (running)", std::process::id())));
        assert!(lines[0].ends_with("4 metrics"));
        let words = |i: usize| lines[i].split_whitespace().collect::<Vec<_>>();
        assert_eq!(words(1), ["OWNER", "METRIC", "VALUE", "PER", "SEC"]);
        assert_eq!(words(2), ["gateway", "exchange_orders_in_total{type=\"limit\"}", "600", "1000"]);
        assert_eq!(words(3), ["gateway", "exchange_sessions", "3"]);
        assert_eq!(words(4), ["journal", "exchange_journal_sync_lag_seconds", "12.5µs"]);
        // p50 of 1..=100 µs is 50 µs, whose bucket ends at 56 µs; p99 is 99 µs in (96, 112].
        assert_eq!(
            words(5),
            [
                "engine",
                "exchange_engine_cycle_seconds",
                "100",
                "200",
                "p50",
                "56.0µs",
                "p99",
                "100.0µs",
                "max",
                "100.0µs"
            ]
        );
    }

    #[test]
    fn a_zombie_or_missing_writer_is_not_running() {
        assert!(process_alive(std::process::id()));
        assert!(!process_alive(u32::MAX));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        // Not reaped yet: the child is a zombie once it exits.
        let started = std::time::Instant::now();
        while process_alive(child.id()) {
            assert!(started.elapsed() < Duration::from_secs(30), "`true` did not exit");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(Path::new(&format!("/proc/{}", child.id())).exists(), "a zombie still has its /proc entry");
        child.wait().unwrap();
    }

    #[test]
    fn stat_runs_on_a_file_and_fails_on_a_missing_one() {
        let dir = std::env::temp_dir().join(format!("monitor-stat-{}", std::process::id()));
        let mut r = Registry::create(&counters_path(&dir)).unwrap();
        let orders = r.counter(&ORDERS_IN, "gateway", &[("type", "market")]).unwrap();
        orders.add(7);
        let args = StatArgs { data: dir.clone(), interval_ms: 1, count: Some(2) };
        let mut out = Vec::new();
        run(&args, &mut out, false).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.matches("exchange_orders_in_total{type=\"market\"}").count(), 2);
        let missing = StatArgs { data: dir.join("nowhere"), interval_ms: 1, count: Some(1) };
        assert!(matches!(
            run(&missing, &mut Vec::new(), false),
            Err(StatError::Counters(CountersError::Io { .. }))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
