//! `exchange stat` on a counters file another process (this test) keeps writing.

use std::path::PathBuf;
use std::process::Command;

use monitor::metrics::{ENGINE_CYCLE, ORDERS_IN};
use monitor::Registry;

#[test]
fn stat_prints_every_metric_of_the_file() {
    let dir = std::env::temp_dir().join(format!("exchange-stat-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut registry = Registry::create(&monitor::counters_path(&dir)).unwrap();
    let orders = registry.counter(&ORDERS_IN, "gateway", &[("type", "limit")]).unwrap();
    let cycle = registry.histogram(&ENGINE_CYCLE, "engine", &[]).unwrap();
    orders.add(1234);
    cycle.record_ns(3_000);

    let out = Command::new(env!("CARGO_BIN_EXE_exchange"))
        .args(["stat", "--data"])
        .arg(&dir)
        .args(["--count", "2", "--interval-ms", "10"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let header = format!("pid {} (running)", std::process::id());
    assert_eq!(text.matches(&header).count(), 2, "{text}");
    let orders_line = text.lines().find(|l| l.contains("exchange_orders_in_total{type=\"limit\"}")).unwrap();
    assert_eq!(orders_line.split_whitespace().nth(2), Some("1234"), "{text}");
    assert!(text.contains("p50 3.0µs"), "{text}");

    let missing: PathBuf = dir.join("nowhere");
    let out =
        Command::new(env!("CARGO_BIN_EXE_exchange")).args(["stat", "--data"]).arg(&missing).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("counters.bin"));
    std::fs::remove_dir_all(&dir).unwrap();
}
