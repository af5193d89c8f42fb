//! End-to-end tests of `exchange backtest` on journals written by `exchange match --journal`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

fn exchange(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_exchange")).args(args).output().expect("run exchange")
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("exchange-backtest-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn cents(c: i64) -> String {
    format!("{}.{:02}", c / 100, c % 100)
}

/// A seeded flow with liquidity on both sides: four makers quote around a random-walking mid
/// and cancel some of their orders, two takers send market orders; 1 µs to 2 ms apart.
fn write_flow(path: &Path, seed: u64, commands: usize) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut text = String::new();
    let mut mid: i64 = 10_000;
    let mut ts: u64 = 1_000_000_000;
    let mut live: Vec<(String, String)> = Vec::new();
    for i in 0..commands {
        ts += rng.gen_range(1..2_000u64) * 1_000;
        mid = (mid + rng.gen_range(-2..=2)).max(100);
        match rng.gen_range(0..10) {
            0..=4 => {
                let account = format!("m{}", rng.gen_range(0..4));
                let id = format!("{account}-{i}");
                let buy = rng.gen_bool(0.5);
                let away = rng.gen_range(1..=8);
                let price = if buy { mid - away } else { mid + away };
                let side = if buy { "buy" } else { "sell" };
                let qty = rng.gen_range(1..=20);
                writeln!(
                    text,
                    r#"{{"op":"new","account":"{account}","symbol":"BTC-USD","id":"{id}","side":"{side}","price":"{}","qty":{qty},"ts":{ts}}}"#,
                    cents(price)
                )
                .unwrap();
                live.push((account, id));
            }
            5 | 6 if !live.is_empty() => {
                let (account, id) = live.swap_remove(rng.gen_range(0..live.len()));
                writeln!(
                    text,
                    r#"{{"op":"cancel","account":"{account}","symbol":"BTC-USD","id":"{id}","ts":{ts}}}"#
                )
                .unwrap();
            }
            _ => {
                let account = format!("t{}", rng.gen_range(0..2));
                let side = if rng.gen_bool(0.5) { "buy" } else { "sell" };
                let qty = rng.gen_range(1..=10);
                writeln!(
                    text,
                    r#"{{"op":"new","account":"{account}","symbol":"BTC-USD","id":"{account}-{i}","side":"{side}","type":"market","qty":{qty},"ts":{ts}}}"#
                )
                .unwrap();
            }
        }
    }
    std::fs::write(path, text).unwrap();
}

fn journal_of_flow(dir: &Path) -> PathBuf {
    let flow = dir.join("flow.jsonl");
    write_flow(&flow, 42, 3_000);
    let journal = dir.join("journal");
    let out = exchange(&[
        "match",
        "--commands",
        flow.to_str().unwrap(),
        "--journal",
        journal.to_str().unwrap(),
        "--segment-mib",
        "1",
        "--events",
        dir.join("events.jsonl").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    journal
}

/// Runs a backtest writing into `dir/<tag>.json|svg`; returns the report (parsed), its bytes,
/// and the plot's text.
fn backtest(journal: &Path, dir: &Path, tag: &str, extra: &[&str]) -> (serde_json::Value, Vec<u8>, String) {
    let report = dir.join(format!("{tag}.json"));
    let plot = dir.join(format!("{tag}.svg"));
    let mut args = vec![
        "backtest",
        "--journal",
        journal.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "--plot",
        plot.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = exchange(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains(report.to_str().unwrap()) && stderr.contains(plot.to_str().unwrap()), "{stderr}");
    let bytes = std::fs::read(&report).unwrap();
    let json = serde_json::from_slice(&bytes).expect("the report is JSON");
    (json, bytes, std::fs::read_to_string(&plot).unwrap())
}

fn assert_report_shape(r: &serde_json::Value, strategy: &str) {
    assert_eq!(r["strategy"], strategy);
    assert_eq!(r["symbol"], "BTC-USD");
    assert_eq!(r["account"], "backtest");
    assert_eq!(r["flow"]["recorded_commands"], 3_000);
    for field in ["new", "cancels", "replaces", "rejects", "refused", "open_at_end"] {
        assert!(r["orders"][field].is_u64(), "orders.{field}: {r}");
    }
    for field in ["count", "maker", "taker", "bought_qty", "sold_qty"] {
        assert!(r["fills"][field].is_u64(), "fills.{field}: {r}");
    }
    for field in ["realised", "unrealised", "fees", "total"] {
        let text = r["pnl"][field].as_str().unwrap_or_else(|| panic!("pnl.{field}: {r}"));
        assert!(text.parse::<rust_decimal::Decimal>().is_ok(), "pnl.{field} = {text}");
    }
    assert!(r["inventory"].is_i64());
    assert!(r["max_drawdown"].as_str().unwrap().parse::<rust_decimal::Decimal>().is_ok());
    let fills = r["fills"]["count"].as_u64().unwrap();
    let bought = r["fills"]["bought_qty"].as_i64().unwrap();
    let sold = r["fills"]["sold_qty"].as_i64().unwrap();
    assert_eq!(r["inventory"].as_i64().unwrap(), bought - sold);
    assert_eq!(r["fills"]["listed"].as_array().unwrap().len() as u64, fills.min(1_000));
}

#[test]
fn both_strategies_trade_and_the_same_seed_gives_the_same_bytes() {
    let dir = temp_dir("strategies");
    let journal = journal_of_flow(&dir);
    let timing = ["--latency-us", "50", "--jitter-us", "200", "--seed", "7"];
    for strategy in ["market-maker", "twap"] {
        let mut extra = vec!["--strategy", strategy];
        extra.extend_from_slice(&timing);
        let (report, bytes, svg) = backtest(&journal, &dir, &format!("{strategy}-a"), &extra);
        assert_report_shape(&report, strategy);
        assert!(report["fills"]["count"].as_u64().unwrap() > 0, "{strategy} never filled: {report}");
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "{svg}");
        assert!(svg.contains("<path d=\"M"));

        let (_, again, svg_again) = backtest(&journal, &dir, &format!("{strategy}-b"), &extra);
        assert!(bytes == again, "{strategy}: same seed, different report");
        assert_eq!(svg, svg_again, "{strategy}: same seed, different plot");
    }
    // The TWAP buys its default target (100 lots) in 10 slices on this deep flow.
    let (twap, _, _) = backtest(&journal, &dir, "twap-c", &["--strategy", "twap"]);
    assert_eq!(twap["inventory"], 100, "{twap}");
    assert_eq!(twap["strategy_stats"]["filled_qty"], 100);
    // The market maker quotes, requotes by replace and is hit as maker.
    let (mm, _, _) = backtest(&journal, &dir, "mm-c", &["--strategy", "market-maker", "--latency-us", "100"]);
    assert!(mm["orders"]["replaces"].as_u64().unwrap() > 0, "{mm}");
    assert!(mm["fills"]["maker"].as_u64().unwrap() > 0, "{mm}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn outputs_default_to_the_working_directory_and_are_announced() {
    let dir = temp_dir("defaults");
    let journal = journal_of_flow(&dir);
    let out = Command::new(env!("CARGO_BIN_EXE_exchange"))
        .args(["backtest", "--journal", journal.to_str().unwrap(), "--strategy", "twap"])
        .current_dir(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("report backtest-twap.json") && stderr.contains("equity plot backtest-twap.svg"));
    assert!(dir.join("backtest-twap.json").is_file() && dir.join("backtest-twap.svg").is_file());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_demo_journal_runs() {
    let dir = temp_dir("demo");
    let journal = dir.join("journal");
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo.jsonl");
    let out =
        exchange(&["match", "--commands", demo.to_str().unwrap(), "--journal", journal.to_str().unwrap()]);
    assert!(out.status.success());
    for strategy in ["market-maker", "twap"] {
        let (report, _, _) = backtest(&journal, &dir, strategy, &["--strategy", strategy]);
        assert_eq!(report["flow"]["recorded_commands"], 13);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_input_is_a_clear_error_with_status_2() {
    let out = exchange(&["backtest", "--journal", "/nonexistent/journal", "--strategy", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unknown strategy \"nope\"") && stderr.contains("market-maker, twap"),
        "{stderr}"
    );

    let out = exchange(&["backtest", "--journal", "/nonexistent/journal", "--strategy", "twap"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/journal") && stderr.contains("does not exist"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let dir = temp_dir("bad");
    let journal = journal_of_flow(&dir);
    let j = journal.to_str().unwrap();
    let out = exchange(&["backtest", "--journal", j, "--strategy", "twap", "--account", "m1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"m1\" trades in the recorded flow"));
    let out = exchange(&["backtest", "--journal", j, "--strategy", "twap", "--symbol", "DOGE-USD"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown symbol \"DOGE-USD\""));
    let _ = std::fs::remove_dir_all(&dir);
}
