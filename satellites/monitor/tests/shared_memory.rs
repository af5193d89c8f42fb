//! The counters file read from outside the writer: by another process, and by another thread
//! while the writer records.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use monitor::metrics::{CounterDef, GaugeDef, HistogramDef};
use monitor::{CountersReader, Registry, Value};

const ORDERS: CounterDef = CounterDef { name: "t_orders_in_total", help: "Orders." };
const DEPTH: GaugeDef = GaugeDef { name: "t_depth", help: "Depth.", nanoseconds: false };
const WAIT: HistogramDef = HistogramDef { name: "t_wait_seconds", help: "Waits." };
/// Bound on every wait for the other process: a broken child fails the test, never hangs it.
const WAIT_FOR_CHILD: Duration = Duration::from_secs(60);
const CHILD_ENV: &str = "MONITOR_TEST_CHILD_DIR";

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("monitor-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn wait_for(path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(start.elapsed() < WAIT_FOR_CHILD, "timed out waiting for {}", path.display());
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The writer, when this test binary is started again by `another_process_reads_the_values`.
#[test]
fn child_writer() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else { return };
    let dir = PathBuf::from(dir);
    let mut registry = Registry::create(&monitor::counters_path(&dir)).unwrap();
    let orders = registry.counter(&ORDERS, "gateway", &[("type", "limit")]).unwrap();
    let depth = registry.gauge(&DEPTH, "engine", &[]).unwrap();
    let wait = registry.histogram(&WAIT, "engine", &[]).unwrap();
    orders.add(41);
    orders.inc();
    depth.set(-7);
    for ns in [500, 3_000, 3_000, 1_000_000] {
        wait.record_ns(ns);
    }
    std::fs::write(dir.join("ready"), b"").unwrap();
    wait_for(&dir.join("done"));
}

#[test]
fn another_process_reads_the_values() {
    let dir = TempDir::new("xproc");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_writer", "--test-threads=1"])
        .env(CHILD_ENV, &dir.0)
        .spawn()
        .unwrap();
    wait_for(&dir.0.join("ready"));
    let reader = CountersReader::open(&monitor::counters_path(&dir.0)).unwrap();
    let snapshot = reader.snapshot().unwrap();
    std::fs::write(dir.0.join("done"), b"").unwrap();
    assert!(child.wait().unwrap().success());

    assert_eq!(snapshot.pid, child.id());
    let names: Vec<(&str, &str, &str)> =
        snapshot.metrics.iter().map(|m| (m.name.as_str(), m.labels.as_str(), m.owner.as_str())).collect();
    assert_eq!(
        names,
        [
            ("t_orders_in_total", "type=\"limit\"", "gateway"),
            ("t_depth", "", "engine"),
            ("t_wait_seconds", "", "engine")
        ]
    );
    assert_eq!(snapshot.metrics[0].value, Value::Counter(42));
    assert_eq!(snapshot.metrics[1].value, Value::Gauge(-7));
    let Value::Histogram(h) = &snapshot.metrics[2].value else { panic!("not a histogram") };
    assert_eq!((h.total(), h.sum_ns, h.max_ns), (4, 1_006_500, 1_000_000));
    assert_eq!(h.buckets[0], 1);
    assert_eq!(h.buckets[monitor::buckets::bucket_index(3_000)], 2);
    // Once the writer is gone the file stays readable: `stat` shows the last values.
    assert_eq!(reader.snapshot().unwrap().metrics[0].value, Value::Counter(42));
}

#[test]
fn a_reader_thread_sees_consistent_progress_while_the_writer_records() {
    const RECORDS: u64 = 200_000;
    let dir = TempDir::new("xthread");
    let path = monitor::counters_path(&dir.0);
    let mut registry = Registry::create(&path).unwrap();
    let orders = registry.counter(&ORDERS, "gateway", &[]).unwrap();
    let wait = registry.histogram(&WAIT, "gateway", &[]).unwrap();
    let writer = std::thread::spawn(move || {
        for i in 0..RECORDS {
            orders.inc();
            wait.record_ns(i % 5_000_000);
        }
    });
    let reader = CountersReader::open(&path).unwrap();
    let (mut last_orders, mut last_total) = (0, 0);
    while !writer.is_finished() {
        let snapshot = reader.snapshot().unwrap();
        let Value::Counter(orders) = snapshot.metrics[0].value else { panic!() };
        let Value::Histogram(h) = &snapshot.metrics[1].value else { panic!() };
        // Values only grow from one snapshot to the next.
        assert!(orders >= last_orders && h.total() >= last_total);
        (last_orders, last_total) = (orders, h.total());
    }
    writer.join().unwrap();
    let snapshot = reader.snapshot().unwrap();
    assert_eq!(snapshot.metrics[0].value, Value::Counter(RECORDS));
    let Value::Histogram(h) = &snapshot.metrics[1].value else { panic!() };
    assert_eq!(h.total(), RECORDS);
}
