//! `serve --log-format json`: every line the venue writes to stderr, from start-up to stop, is
//! one JSON object, with the control-plane events (journal recovered, stopping) among them.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn json_logs_are_one_object_per_line_from_start_to_stop() {
    let dir = std::env::temp_dir().join(format!("exchange-serve-logs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut child = Command::new(env!("CARGO_BIN_EXE_exchange"))
        .args([
            "serve",
            "--quic",
            "127.0.0.1:0",
            "--tcp",
            "",
            "--http",
            "127.0.0.1:0",
            "--md",
            "",
            "--log-format",
            "json",
        ])
        .arg("--data")
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut messages = Vec::new();
    // Up to "journal recovered": the venue is up.
    for line in lines.by_ref() {
        let line = line.unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let message = v["fields"]["message"].as_str().unwrap_or_default().to_owned();
        messages.push(message.clone());
        if message == "journal recovered" {
            assert_eq!(v["level"], "INFO", "{line}");
            assert_eq!(v["fields"]["commands_replayed"], 0, "{line}");
            break;
        }
    }
    let stopped = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(stopped.success());
    for line in lines {
        let line = line.unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        messages.push(v["fields"]["message"].as_str().unwrap_or_default().to_owned());
    }
    assert!(child.wait().unwrap().success());
    assert!(messages.iter().any(|m| m == "journal recovered"), "{messages:?}");
    assert!(messages.iter().any(|m| m == "stopping"), "{messages:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}
