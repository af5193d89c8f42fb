//! End-to-end tests of `exchange match`: the real binary on real files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn exchange(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_exchange")).args(args).output().expect("run exchange")
}

/// A scratch directory, removed when the test ends (passing or not).
struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch_dir(name: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!("exchange-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

#[test]
fn demo_file_produces_the_recorded_events_and_book() {
    let dir = scratch_dir("demo");
    let events = dir.join("events.jsonl");
    let book = dir.join("book.json");
    let out = exchange(&[
        "match",
        "--commands",
        repo("examples/demo.jsonl").to_str().unwrap(),
        "--events",
        events.to_str().unwrap(),
        "--book",
        book.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(&events).unwrap(),
        std::fs::read_to_string(repo("examples/demo.events.jsonl")).unwrap()
    );
    assert_eq!(
        std::fs::read_to_string(&book).unwrap(),
        std::fs::read_to_string(repo("examples/demo.book.json")).unwrap()
    );
}

#[test]
fn design_example_events_match_the_contract_lines() {
    let dir = scratch_dir("design");
    let commands = dir.join("c.jsonl");
    std::fs::write(
        &commands,
        concat!(
            r#"{"op":"new","account":"alice","symbol":"BTC-USD","id":"a1","side":"buy","type":"limit","tif":"gtc","price":"100.50","qty":10}"#, "\n",
            r#"{"op":"new","account":"bob","symbol":"BTC-USD","id":"b1","side":"sell","type":"market","qty":4}"#, "\n",
            r#"{"op":"replace","account":"alice","symbol":"BTC-USD","orig_id":"a1","id":"a2","price":"100.25","qty":8}"#, "\n",
            r#"{"op":"cancel","account":"alice","symbol":"BTC-USD","id":"a2"}"#, "\n",
            r#"{"op":"cancel","account":"carol","symbol":"BTC-USD","id":"c9"}"#, "\n",
        ),
    )
    .unwrap();
    let out = exchange(&["match", "--commands", commands.to_str().unwrap()]);
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        vec![
            r#"{"seq":1,"type":"accepted","account":"alice","id":"a1","symbol":"BTC-USD","order_id":1}"#,
            r#"{"seq":2,"type":"accepted","account":"bob","id":"b1","symbol":"BTC-USD","order_id":2}"#,
            r#"{"seq":3,"type":"trade","symbol":"BTC-USD","price":"100.50","qty":4,"maker_account":"alice","maker_id":"a1","taker_account":"bob","taker_id":"b1","aggressor":"sell"}"#,
            r#"{"seq":4,"type":"replaced","account":"alice","orig_id":"a1","id":"a2"}"#,
            r#"{"seq":5,"type":"canceled","account":"alice","id":"a2","reason":"user","leaves_qty":4}"#,
            r#"{"seq":6,"type":"rejected","account":"carol","id":"c9","reason":"unknown_order"}"#,
        ]
    );
}

const WITH_BAD_LINES: &str = concat!(
    r#"{"op":"new","account":"alice","symbol":"AAPL","id":"a1","side":"buy","price":"10.00","qty":5}"#,
    "\n",
    "{this is not json\n",
    r#"{"op":"teleport","account":"alice","symbol":"AAPL"}"#,
    "\n",
    r#"{"op":"new","account":"alice","symbol":"AAPL","id":"a2","side":"buy","qty":5}"#,
    "\n",
    "\n",
    r#"{"op":"new","account":"bob","symbol":"AAPL","id":"b1","side":"sell","price":"10.00","qty":5}"#,
    "\n",
);

#[test]
fn bad_lines_are_reported_with_their_number_and_skipped() {
    let dir = scratch_dir("bad");
    let commands = dir.join("c.jsonl");
    std::fs::write(&commands, WITH_BAD_LINES).unwrap();
    let out = exchange(&["match", "--commands", commands.to_str().unwrap()]);
    assert!(out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("c.jsonl:2: skipped: malformed JSON"), "{stderr}");
    assert!(stderr.contains("c.jsonl:3: skipped: unknown op \"teleport\""), "{stderr}");
    assert!(stderr.contains("c.jsonl:4: skipped: missing field \"price\""), "{stderr}");
    assert!(stderr.contains("3 lines skipped"), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().filter(|l| l.contains("\"type\":\"trade\"")).count(), 1);
}

#[test]
fn strict_mode_aborts_at_the_first_bad_line() {
    let dir = scratch_dir("strict");
    let commands = dir.join("c.jsonl");
    std::fs::write(&commands, WITH_BAD_LINES).unwrap();
    let out = exchange(&["match", "--strict", "--commands", commands.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("c.jsonl:2: malformed JSON"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

const MISSPELLED: &str = r#"{"op":"new","account":"a","symbol":"AAPL","id":"m1","side":"sell","price":"10.00","qty":5}
{"op":"new","account":"b","symbol":"AAPL","id":"p1","side":"buy","price":"10.00","qty":5,"post_onyl":true}
{"op":"new","account":"b","symbol":"AAPL","id":"p2","side":"buy","price":"9.00","qty":5,"tfi":"ioc"}
"#;

#[test]
fn unknown_fields_are_warned_about_with_line_and_field() {
    let dir = scratch_dir("unknown-warn");
    let commands = dir.join("c.jsonl");
    std::fs::write(&commands, MISSPELLED).unwrap();
    let out = exchange(&["match", "--commands", commands.to_str().unwrap()]);
    assert!(out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains(r#"c.jsonl:2: warning: unknown field "post_onyl" (did you mean "post_only"?)"#),
        "{stderr}"
    );
    assert!(stderr.contains(r#"c.jsonl:3: warning: unknown field "tfi" (did you mean "tif"?)"#), "{stderr}");
    assert!(stderr.contains("2 lines name fields"), "{stderr}");
    // Without --strict the lines still run as written (the misspelled post-only order takes).
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().filter(|l| l.contains("\"type\":\"trade\"")).count(), 1, "{stdout}");
}

#[test]
fn strict_mode_refuses_unknown_fields() {
    let dir = scratch_dir("unknown-strict");
    let commands = dir.join("c.jsonl");
    std::fs::write(&commands, MISSPELLED).unwrap();
    let out = exchange(&["match", "--strict", "--commands", commands.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains(r#"c.jsonl:2: unknown field "post_onyl""#), "{stderr}");
    assert!(out.stdout.is_empty() || !String::from_utf8_lossy(&out.stdout).contains("trade"));
}

#[test]
fn missing_command_file_is_a_clear_error() {
    let out = exchange(&["match", "--commands", "/nonexistent/commands.jsonl"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("/nonexistent/commands.jsonl"), "{stderr}");
}

#[test]
fn engine_rejects_carry_their_reasons() {
    let dir = scratch_dir("rejects");
    let commands = dir.join("c.jsonl");
    std::fs::write(
        &commands,
        concat!(
            r#"{"op":"new","account":"a","symbol":"NOPE","id":"x1","side":"buy","price":"1.00","qty":1}"#, "\n",
            r#"{"op":"new","account":"a","symbol":"AAPL","id":"x2","side":"buy","price":"1.005","qty":1}"#, "\n",
            r#"{"op":"new","account":"a","symbol":"AAPL","id":"x3","side":"buy","price":"1.00","qty":0}"#, "\n",
            r#"{"op":"new","account":"a","symbol":"AAPL","id":"x4","side":"sell","price":"1.00","qty":1}"#, "\n",
            r#"{"op":"new","account":"a","symbol":"AAPL","id":"x4","side":"sell","price":"1.00","qty":1}"#, "\n",
            r#"{"op":"new","account":"b","symbol":"AAPL","id":"x5","side":"buy","price":"1.00","qty":1,"post_only":true}"#, "\n",
            r#"{"op":"halt","symbol":"AAPL"}"#, "\n",
            r#"{"op":"new","account":"b","symbol":"AAPL","id":"x6","side":"buy","price":"0.50","qty":1}"#, "\n",
            r#"{"op":"cancel","account":"b","symbol":"AAPL","id":"x4"}"#, "\n",
        ),
    )
    .unwrap();
    let out = exchange(&["match", "--commands", commands.to_str().unwrap()]);
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let reasons: Vec<String> = stdout
        .lines()
        .filter(|l| l.contains("\"rejected\""))
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["reason"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(
        reasons,
        [
            "unknown_symbol",
            "bad_price_tick",
            "bad_qty",
            "duplicate_id",
            "would_take",
            "halted",
            "unknown_order"
        ]
    );
}
