//! Crash test: a child `exchange match --journal` is killed with SIGKILL at seeded random
//! moments. After each kill, the journal must hold every event the child acknowledged (wrote
//! out), replay must reproduce them byte for byte, nothing may follow a torn tail, and the
//! recovered state must equal a clean run of the same commands.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use engine::EngineConfig;
use journal::{DurableConfig, DurableEngine};
use rand::{rngs::SmallRng, Rng, SeedableRng};

const COMMANDS: usize = 30_000;
const TRIALS: u64 = 10;

fn exe() -> &'static str {
    env!("CARGO_BIN_EXE_exchange")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("exchange-crash-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn command_file(path: &Path, seed: u64) -> Vec<String> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let accounts = ["alice", "bob", "carol", "dave"];
    let symbols = ["BTC-USD", "ETH-USD"];
    let mut lines = Vec::with_capacity(COMMANDS);
    for i in 0..COMMANDS {
        let account = accounts[rng.gen_range(0..4)];
        let symbol = symbols[rng.gen_range(0..2)];
        let id = format!("o{}", rng.gen_range(0..200));
        let price = format!("{}.{:02}", rng.gen_range(95..105), rng.gen_range(0..100));
        let side = if rng.gen_bool(0.5) { "buy" } else { "sell" };
        let qty = rng.gen_range(1..50);
        let line = match rng.gen_range(0..10) {
            0..=5 => format!(
                r#"{{"op":"new","account":"{account}","symbol":"{symbol}","id":"{id}","side":"{side}","price":"{price}","qty":{qty},"ts":{}}}"#,
                i * 1000
            ),
            6 | 7 => format!(r#"{{"op":"cancel","account":"{account}","symbol":"{symbol}","id":"{id}"}}"#),
            _ => format!(
                r#"{{"op":"replace","account":"{account}","symbol":"{symbol}","orig_id":"{id}","id":"r{}","price":"{price}","qty":{qty}}}"#,
                rng.gen_range(0..200)
            ),
        };
        lines.push(line);
    }
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
    lines
}

/// Complete lines only: a kill can cut the last write short.
fn complete_lines(text: &str) -> Vec<&str> {
    match text.rfind('\n') {
        Some(end) => text[..end].lines().collect(),
        None => Vec::new(),
    }
}

#[test]
fn sigkill_at_random_points_loses_nothing_acknowledged() {
    let dir = scratch("trials");
    let commands = dir.join("commands.jsonl");
    let lines = command_file(&commands, 42);
    let spawn = |journal: &Path, acked: &Path| {
        Command::new(exe())
            .args(["match", "--commands", commands.to_str().unwrap(), "--events", acked.to_str().unwrap()])
            .args(["--journal", journal.to_str().unwrap(), "--segment-mib", "1", "--snapshot-every", "4000"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    // Kill moments are drawn within one uninterrupted run's duration, so that they land mid-run
    // whatever the build profile and the machine (a release build runs it ~10x faster).
    let timed = Instant::now();
    let status = spawn(&dir.join("journal-timed"), &dir.join("acked-timed.jsonl")).wait().unwrap();
    assert!(status.success());
    let run_us = timed.elapsed().as_micros() as u64;
    let mut rng = SmallRng::seed_from_u64(7);
    let mut killed_mid_run = 0;
    for trial in 0..TRIALS {
        let journal = dir.join(format!("journal-{trial}"));
        let acked_path = dir.join(format!("acked-{trial}.jsonl"));
        let mut child = spawn(&journal, &acked_path);
        std::thread::sleep(Duration::from_micros(rng.gen_range(run_us / 20..run_us * 19 / 20)));
        if child.try_wait().unwrap().is_none() {
            killed_mid_run += 1;
        }
        child.kill().ok(); // SIGKILL
        child.wait().unwrap();

        // Replay: checksums, sequence continuity, and every event against the event journal.
        let replayed_path = dir.join(format!("replayed-{trial}.jsonl"));
        let book_path = dir.join(format!("book-{trial}.json"));
        let out = Command::new(exe())
            .args(["replay", "--journal", journal.to_str().unwrap()])
            .args(["--events", replayed_path.to_str().unwrap(), "--book", book_path.to_str().unwrap()])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "trial {trial}: replay failed: {stderr}");
        let replayed_commands: usize = stderr
            .split("replay: ")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("trial {trial}: no command count in {stderr:?}"));

        let acked_text = std::fs::read_to_string(&acked_path).unwrap_or_default();
        let acked = complete_lines(&acked_text);
        let replayed_text = std::fs::read_to_string(&replayed_path).unwrap();
        let replayed: Vec<&str> = replayed_text.lines().collect();
        assert!(
            replayed.len() >= acked.len(),
            "trial {trial}: {} acked, {} replayed",
            acked.len(),
            replayed.len()
        );
        assert_eq!(&replayed[..acked.len()], &acked[..], "trial {trial}: an acknowledged event changed");

        // A clean run of exactly the journaled commands gives the same events and book.
        let prefix = dir.join(format!("prefix-{trial}.jsonl"));
        let mut f = std::fs::File::create(&prefix).unwrap();
        for line in &lines[..replayed_commands] {
            writeln!(f, "{line}").unwrap();
        }
        drop(f);
        let clean_events = dir.join(format!("clean-{trial}.jsonl"));
        let clean_book = dir.join(format!("clean-book-{trial}.json"));
        let status = Command::new(exe())
            .args(["match", "--commands", prefix.to_str().unwrap()])
            .args(["--events", clean_events.to_str().unwrap(), "--book", clean_book.to_str().unwrap()])
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(std::fs::read_to_string(&clean_events).unwrap(), replayed_text, "trial {trial}: events");
        assert_eq!(
            std::fs::read(&clean_book).unwrap(),
            std::fs::read(&book_path).unwrap(),
            "trial {trial}: book"
        );

        // Recovery as a restarting server does it: repair tails, snapshot + tail, resume.
        let (durable, recovery) = DurableEngine::open(
            EngineConfig::default(),
            DurableConfig { dir: journal.clone(), ..DurableConfig::new(&journal) },
        )
        .unwrap_or_else(|e| panic!("trial {trial}: recovery failed: {e}"));
        assert_eq!(durable.next_command_seq() as usize, replayed_commands + 1, "trial {trial}");
        assert!(recovery.events_regenerated as usize <= replayed.len());
        let mut recovered_book = Vec::new();
        let mut names = exchange::names::Names::new(&engine::default_symbols(), 1 << 10);
        exchange::journal_meta::read_accounts(&journal, &mut names).unwrap();
        exchange::event_file::write_books(&mut recovered_book, durable.engine(), &names).unwrap();
        assert_eq!(recovered_book, std::fs::read(&book_path).unwrap(), "trial {trial}: recovered book");
        drop(durable);
        let _ = std::fs::remove_dir_all(&journal);
    }
    // The trials are only meaningful if most kills land mid-run.
    assert!(killed_mid_run * 2 >= TRIALS, "only {killed_mid_run} of {TRIALS} kills landed mid-run");
    let _ = std::fs::remove_dir_all(&dir);
}
