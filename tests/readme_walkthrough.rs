//! README.md from top to bottom, as a newcomer runs it on a fresh clone: every `cargo run --release
//! -- …` line of its `sh` blocks (and the `rm`, `mkdir` and `cmp` between them) runs in order, in
//! a fresh working directory holding the repository's `examples/`.
//!
//! What differs from a person at a terminal, and why:
//! - `cargo run --release --` is this build's binary.
//! - `serve` runs in the background with its embedded defaults except the two ports, which the
//!   OS chooses (`--quic`/`--tcp`: other venues may run on this machine); clients get `--addr`. The
//!   certificate is found exactly as the README says (`var/tls/cert.pem`).
//! - Lines showing syntax (`[--flag]`) are not commands and are skipped; `bench` lines are run by
//!   `tests/bench_quick.rs` instead (they take minutes without `--quick`).
//! - The `client` block's `> ` lines are its standard input.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// One thing the README asks to run.
#[derive(Debug)]
enum Step {
    /// `exchange ARGS`, with the `> ` lines after it as standard input (the client).
    Exchange { args: Vec<String>, input: String },
    /// `rm -rf PATH`.
    Remove(String),
    /// `mkdir -p PATH`.
    Mkdir(String),
    /// `cmp A B`.
    Compare(String, String),
}

fn readme_steps() -> Vec<Step> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let mut steps = Vec::new();
    let mut in_sh = false;
    let mut pending = String::new();
    for raw in readme.lines() {
        if raw.starts_with("```") {
            in_sh = raw == "```sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        // A trailing backslash continues the command on the next line.
        let line = raw.split(" #").next().unwrap().trim_end();
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(head);
            continue;
        }
        let line = std::mem::take(&mut pending) + line;
        let line = line.trim();
        if let Some(input) = line.strip_prefix("> ") {
            if let Some(Step::Exchange { input: stdin, .. }) = steps.last_mut() {
                stdin.push_str(input.trim());
                stdin.push('\n');
            }
        } else if let Some(rest) = line.strip_prefix("cargo run --release -- ") {
            let args: Vec<String> = rest.split_whitespace().map(str::to_owned).collect();
            if rest.contains('[') || args[0] == "bench" {
                continue;
            }
            steps.push(Step::Exchange { args, input: String::new() });
        } else if let Some(path) = line.strip_prefix("rm -rf ") {
            steps.push(Step::Remove(path.to_owned()));
        } else if let Some(path) = line.strip_prefix("mkdir -p ") {
            steps.push(Step::Mkdir(path.to_owned()));
        } else if let Some(files) = line.strip_prefix("cmp ") {
            let (a, b) = files.split_once(' ').unwrap();
            steps.push(Step::Compare(a.to_owned(), b.trim().to_owned()));
        }
    }
    steps
}

/// The walk's working directory and the venue it started; both gone when the test ends.
struct Walk {
    dir: PathBuf,
    venue: Option<Child>,
}

impl Drop for Walk {
    fn drop(&mut self) {
        if let Some(mut venue) = self.venue.take() {
            let _ = venue.kill();
            let _ = venue.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts `serve` on OS-chosen ports; returns its QUIC address once it says `ready`.
fn serve(walk: &mut Walk, args: &[String]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_exchange"))
        .args(args)
        .args([
            "--quic",
            "127.0.0.1:0",
            "--tcp",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--md",
            "127.0.0.1:0",
        ])
        .current_dir(&walk.dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    walk.venue = Some(child);
    let mut quic = None;
    for line in stdout.lines() {
        let line = line.unwrap();
        if let Some(addr) = line.strip_prefix("fix/quic: ") {
            quic = Some(addr.to_owned());
        }
        if line.starts_with("ready") {
            break;
        }
    }
    quic.expect("serve prints its QUIC address before ready")
}

#[test]
fn the_readme_runs_top_to_bottom() {
    let dir = std::env::temp_dir().join(format!("exchange-readme-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("examples")).unwrap();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    for entry in std::fs::read_dir(&examples).unwrap() {
        let entry = entry.unwrap();
        // The example programs' shared module (`examples/common/`) is not a README input.
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), dir.join("examples").join(entry.file_name())).unwrap();
        }
    }
    let mut walk = Walk { dir, venue: None };
    let steps = readme_steps();
    assert!(steps.len() > 15, "{steps:?}");
    let mut quic = None;
    let mut transcript = String::new();
    for step in &steps {
        match step {
            Step::Exchange { args, .. }
                if args[0] == "serve" && !args.iter().any(|a| a == "--print-config") =>
            {
                quic = Some(serve(&mut walk, args))
            }
            Step::Exchange { args, input } => {
                let mut cmd = Command::new(env!("CARGO_BIN_EXE_exchange"));
                cmd.arg(&args[0]).current_dir(&walk.dir).env_remove("EXCHANGE_DATA");
                // Right after the subcommand: `admin` takes its action after its flags.
                if matches!(args[0].as_str(), "order" | "client" | "admin") {
                    cmd.args(["--addr", quic.as_deref().expect("serve comes first")]);
                }
                cmd.args(&args[1..]);
                let mut child =
                    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
                child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
                let out = child.wait_with_output().unwrap();
                let text =
                    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
                assert_eq!(out.status.code(), Some(0), "exchange {}\n{text}", args.join(" "));
                transcript += &format!("$ exchange {}\n{text}", args.join(" "));
            }
            Step::Remove(path) => {
                let _ = std::fs::remove_dir_all(walk.dir.join(path));
            }
            Step::Mkdir(path) => std::fs::create_dir_all(walk.dir.join(path)).unwrap(),
            Step::Compare(a, b) => {
                let read = |p: &str| std::fs::read(walk.dir.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
                assert!(read(a) == read(b), "cmp {a} {b}");
            }
        }
    }
    // What the README promises along the way.
    let bob = transcript.split("$ exchange order --account bob").nth(1).expect("bob's order ran");
    assert!(bob.lines().any(|l| l.starts_with("TRADE") && l.contains("last=4@100.50")), "{bob}");
    let client = transcript.split("$ exchange client").nth(1).expect("the client ran");
    for report in ["NEW", "REPLACED", "CANCELED"] {
        assert!(client.lines().any(|l| l.starts_with(report)), "{report} in {client}");
    }
    assert!(
        client.lines().any(|l| l.contains("BTC-USD buy 3 @ 100.25 canceled")),
        "status after wait: {client}"
    );
    assert!(walk.dir.join("var/mm.svg").exists() && walk.dir.join("var/book.json").exists());
    // Everything the walk wrote is under var/ (ignored by git).
    let mut left: Vec<String> = std::fs::read_dir(&walk.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["examples", "var"]);
}
