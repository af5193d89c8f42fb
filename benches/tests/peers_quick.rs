//! `latency peers --quick` end to end: the real binary writes its files, every venue passes its
//! state check, and the rows come in order. Timings are never asserted (see STYLE.md).

use std::process::Command;

#[test]
fn peers_mode_writes_parseable_results_for_every_venue() {
    let dir = std::env::temp_dir().join(format!("exchange-bench-test-peers-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = Command::new(env!("CARGO_BIN_EXE_latency"))
        .args(["peers", "--quick", "--commands", "5000", "--out", dir.to_str().unwrap()])
        .output()
        .expect("run latency");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("p99.99") && stdout.contains("machine:"), "{stdout}");

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("peers.json")).unwrap()).unwrap();
    assert_eq!(json["mode"], "peers");
    assert_eq!(json["check_passed"], true, "{json:#}");
    let series = json["series"].as_array().unwrap();
    let labels: Vec<&str> = series.iter().map(|s| s["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["timer", "engine", "matchcore", "orderbook-rs"]);
    for s in series {
        assert_eq!(s["check"]["passed"], true, "{s:#}");
        assert!(s["latency_us"]["p50"].is_number(), "{s:#}");
        let hgrm = std::fs::read_to_string(dir.join(s["hgrm"].as_str().unwrap())).unwrap();
        assert!(hgrm.contains("Percentile"), "{hgrm}");
    }
    for file in ["peers.hlog", "peers.svg"] {
        assert!(dir.join(file).is_file(), "{file}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
