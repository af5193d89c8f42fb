//! The alert rules and the metric catalogue agree: every `exchange_*` name the rules query is one
//! the venue emits, and a scrape of the whole catalogue passes `promtool check metrics`; the
//! rules themselves pass `promtool check rules` and their unit tests (when promtool is here).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use monitor::health::{Health, Probe};
use monitor::metrics::{self, COUNTERS, GAUGES, HISTOGRAMS};
use monitor::Registry;

fn rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("prometheus")
}

fn promtool() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join("promtool")).find(|p| p.is_file())
}

/// Every `exchange_[a-z0-9_]*` word in the text.
fn exchange_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("exchange_") {
        let word: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        rest = &rest[at + word.len()..];
        names.push(word);
    }
    names
}

#[test]
fn every_name_the_rules_query_is_emitted() {
    let text = std::fs::read_to_string(rules_dir().join("alerts.yml")).unwrap();
    let rules: String =
        text.lines().filter(|l| !l.trim_start().starts_with('#')).map(|l| format!("{l}\n")).collect();
    let exposed = metrics::exposed_names();
    let used = exchange_names(&rules);
    assert!(used.len() >= 8, "the rules query the catalogue: {used:?}");
    for name in used {
        assert!(exposed.contains(&name), "alerts.yml uses {name}, which metrics.rs does not define");
    }
}

#[test]
fn promtool_checks_and_tests_the_rules() {
    let Some(promtool) = promtool() else {
        eprintln!("skipped: promtool not installed (scripts/promtool-check.sh installs it)");
        return;
    };
    for args in [["check", "rules", "alerts.yml"], ["test", "rules", "alerts_test.yml"]] {
        let out = Command::new(&promtool).args(args).current_dir(rules_dir()).output().unwrap();
        assert!(
            out.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn a_scrape_of_the_whole_catalogue_passes_promtool() {
    let mut r = Registry::anonymous().unwrap();
    let mut counters = Vec::new();
    for def in COUNTERS {
        counters.push(r.counter(def, "gateway", &[]).unwrap());
    }
    let mut gauges = Vec::new();
    for def in GAUGES {
        gauges.push(r.gauge(def, "engine", &[]).unwrap());
    }
    let mut histograms = Vec::new();
    for def in HISTOGRAMS {
        histograms.push(r.histogram(def, "engine", &[]).unwrap());
    }
    for (i, c) in counters.iter().enumerate() {
        c.add(i as u64);
    }
    for h in &histograms {
        h.record_ns(12_345);
    }
    let health = Health::new();
    health.register(Probe::Ready, "journal_recovered", true).unwrap();
    let mut text = String::new();
    monitor::prometheus::render(&r.reader().snapshot().unwrap(), &mut text);
    health.render(&mut text);
    let families = text.lines().filter(|l| l.starts_with("# TYPE")).count();
    // One family per definition, one max gauge per histogram, and the health checks.
    assert_eq!(families, COUNTERS.len() + GAUGES.len() + 2 * HISTOGRAMS.len() + 1);

    let Some(promtool) = promtool() else {
        eprintln!("skipped promtool: not installed");
        return;
    };
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "promtool check metrics:\n{said}");
}
