//! `exchange gen`: a seeded, reproducible command file that `match` runs without a bad line,
//! with the trades the generator predicts, over several accounts and symbols, and against
//! which the backtest's market maker actually trades.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn exchange(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_exchange")).args(args).output().expect("run exchange")
}

/// A scratch directory, removed when the test ends.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("exchange-gen-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).to_str().unwrap().to_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn gen(out: &str, seed: &str) -> String {
    let o = exchange(&[
        "gen",
        "--out",
        out,
        "--seed",
        seed,
        "--commands",
        "4000",
        "--resting",
        "150",
        "--minutes",
        "2",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stderr).unwrap()
}

/// The number before `word` in `text` ("… 812 trades").
fn count_before(text: &str, word: &str) -> u64 {
    let words: Vec<&str> = text.split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| w.trim_end_matches([',', ')']) == word)
        .unwrap_or_else(|| panic!("{word} in {text}"));
    words[at - 1].trim_start_matches('(').parse().unwrap()
}

#[test]
fn same_seed_same_file_and_match_makes_the_predicted_trades() {
    let dir = Scratch::new("match");
    let said = gen(&dir.path("a.jsonl"), "7");
    gen(&dir.path("b.jsonl"), "7");
    gen(&dir.path("c.jsonl"), "8");
    let a = std::fs::read(dir.path("a.jsonl")).unwrap();
    assert_eq!(a, std::fs::read(dir.path("b.jsonl")).unwrap());
    assert_ne!(a, std::fs::read(dir.path("c.jsonl")).unwrap());

    let lines: Vec<Value> =
        String::from_utf8(a).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let set = |field: &str| {
        lines.iter().filter_map(|l| l[field].as_str().map(str::to_owned)).collect::<BTreeSet<_>>()
    };
    assert_eq!(set("symbol"), ["AAPL", "BTC-USD", "ETH-USD"].map(String::from).into());
    assert_eq!(set("account").len(), 20);
    assert_eq!(set("op"), ["cancel", "new", "replace"].map(String::from).into());
    let ts: Vec<u64> = lines.iter().map(|l| l["ts"].as_u64().unwrap()).collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]));
    assert!(ts.last().unwrap() - ts[0] > 60_000_000_000, "spans minutes");

    let out = exchange(&[
        "match",
        "--strict",
        "--commands",
        &dir.path("a.jsonl"),
        "--events",
        &dir.path("ev.jsonl"),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let trades = count_before(&stderr, "trades");
    assert!(trades > 100, "{stderr}");
    assert_eq!(trades, count_before(&said, "trades"), "gen: {said} match: {stderr}");
    assert_eq!(count_before(&stderr, "rejects"), 0, "every cancel and replace names a live order: {stderr}");
}

#[test]
fn the_backtest_market_maker_trades_against_the_generated_flow() {
    let dir = Scratch::new("backtest");
    gen(&dir.path("flow.jsonl"), "3");
    let out = exchange(&[
        "match",
        "--commands",
        &dir.path("flow.jsonl"),
        "--journal",
        &dir.path("j"),
        "--events",
        &dir.path("ev.jsonl"),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = exchange(&[
        "backtest",
        "--journal",
        &dir.path("j"),
        "--strategy",
        "market-maker",
        "--report",
        &dir.path("mm.json"),
        "--plot",
        &dir.path("mm.svg"),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(Path::new(&dir.path("mm.json"))).unwrap()).unwrap();
    let fills = report["fills"]["count"].as_u64().unwrap();
    assert!(fills > 10, "the market maker trades: {fills} fills");
}
