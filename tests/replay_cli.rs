//! End-to-end tests of `exchange replay` on journals written by `exchange match --journal`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn exchange(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_exchange")).args(args).output().expect("run exchange")
}

fn journal_of_demo(name: &str) -> (PathBuf, PathBuf) {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo.jsonl");
    journal_of(name, &demo)
}

/// `exchange match` of the command file `commands` into a fresh journal: (its directory, the journal).
fn journal_of(name: &str, demo: &Path) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("exchange-replay-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let journal = dir.join("journal");
    let out = exchange(&[
        "match",
        "--commands",
        demo.to_str().unwrap(),
        "--journal",
        journal.to_str().unwrap(),
        "--segment-mib",
        "1",
        "--events",
        dir.join("run.jsonl").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (dir, journal)
}

#[test]
fn replay_is_byte_identical_and_stops_at_until_seq() {
    let (dir, journal) = journal_of_demo("same");
    let out = exchange(&["replay", "--journal", journal.to_str().unwrap()]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        std::fs::read_to_string(dir.join("run.jsonl")).unwrap()
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("19 verified"));

    let out = exchange(&["replay", "--journal", journal.to_str().unwrap(), "--until-seq", "2"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}"); // accepted, accepted, trade
    let _ = std::fs::remove_dir_all(&dir);
}

/// Events in the journal that the commands do not produce (another run's, whose first order
/// was for 9 instead of 10) stop the replay at the first one that differs, with a reason.
#[test]
fn events_that_differ_from_the_replayed_ones_stop_the_replay_with_a_reason() {
    let (dir, journal) = journal_of_demo("differ");
    let demo =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo.jsonl")).unwrap();
    let other = dir.join("other.jsonl");
    std::fs::write(&other, demo.replacen("\"qty\":10", "\"qty\":9", 1)).unwrap();
    let (other_dir, other_journal) = journal_of("differ-other", &other);
    std::fs::remove_dir_all(journal.join("events")).unwrap();
    std::fs::rename(other_journal.join("events"), journal.join("events")).unwrap();
    let out = exchange(&["replay", "--journal", journal.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("replay diverged at event 1") && !stderr.contains("panicked"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&other_dir);
}

#[test]
fn a_flipped_bit_is_reported_with_segment_and_offset() {
    let (dir, journal) = journal_of_demo("flip");
    let segment = journal.join("commands").join("00000000000000000001.journal");
    let mut bytes = std::fs::read(&segment).unwrap();
    // The segment header is 64 bytes, a record header 24: byte 100 is inside the first payload.
    bytes[100] ^= 0x01;
    std::fs::write(&segment, bytes).unwrap();
    let out = exchange(&["replay", "--journal", journal.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("00000000000000000001.journal") && stderr.contains("offset 64"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_journal_is_a_clear_error() {
    let out = exchange(&["replay", "--journal", "/nonexistent/journal"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/journal"));
}

#[test]
fn a_directory_that_is_not_a_journal_says_what_was_expected() {
    let (dir, journal) = journal_of_demo("wrong");
    let stderr = |path: &Path| {
        let out = exchange(&["replay", "--journal", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // A data directory (as `serve --data` makes): the journal is one level down.
    let e = stderr(&dir);
    assert!(e.contains(&format!("its journal is {}", journal.display())), "{e}");
    let e = stderr(&journal.join("commands"));
    assert!(e.contains("no meta.json here; a journal directory holds meta.json, accounts.txt"), "{e}");
    let e = stderr(Path::new("/nonexistent/journal"));
    assert!(e.contains("/nonexistent/journal: no such directory; a journal directory holds"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
