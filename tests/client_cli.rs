//! The client commands (the binary) against the real venue: `exchange client` driven line by
//! line over its standard input, and `exchange order`.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use common::*;

/// A running `exchange client`: lines in, output lines out.
struct Interactive {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
}

impl Interactive {
    fn start(v: &Venue, account: &str) -> Interactive {
        let info = &v.server().info;
        let mut child = Command::new(env!("CARGO_BIN_EXE_exchange"))
            .args(["client", "--account", account, "--password", account])
            .args(["--addr", &info.quic_addr.to_string(), "--ca", info.cert.to_str().unwrap()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Interactive { child, stdin, lines }
    }

    fn say(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// The next output line that starts with `prefix` (earlier lines are skipped).
    fn expect(&self, prefix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => panic!("no line starting {prefix:?} within 10 s"),
                Err(RecvTimeoutError::Disconnected) => panic!("client ended before {prefix:?}"),
            }
        }
    }

    fn quit(mut self) -> Option<i32> {
        self.say("quit");
        self.child.wait().unwrap().code()
    }
}

#[test]
fn interactive_client_places_replaces_cancels_and_reports_status() {
    let v = venue("client");
    let mut alice = Interactive::start(&v, "alice");
    alice.expect("logged on as alice");
    alice.say("help");
    alice.expect("commands:");

    alice.say("buy 10 BTC-USD 100.50");
    let new = alice.expect("NEW");
    assert!(new.contains("BTC-USD buy 10 @ 100.50 id=c1"), "{new}");
    alice.say("replace c1 8 100.25");
    let replaced = alice.expect("REPLACED");
    assert!(replaced.contains("8 @ 100.25 id=c2"), "{replaced}");

    // Another account trades against it through the one-shot command.
    let info = &v.server().info;
    let out = Command::new(env!("CARGO_BIN_EXE_exchange"))
        .args(["order", "--account", "bob", "--password", "bob", "--symbol", "BTC-USD"])
        .args(["--side", "sell", "--qty", "3", "--addr", &info.quic_addr.to_string()])
        .args(["--ca", info.cert.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("TRADE") && l.contains("last=3@100.25")), "{stdout}");

    let fill = alice.expect("TRADE");
    assert!(fill.contains("cum=3 leaves=5"), "{fill}");
    alice.say("status");
    let status = alice.expect("c2");
    assert!(status.contains("trade cum=3 leaves=5"), "{status}");

    alice.say("cancel c2");
    let canceled = alice.expect("CANCELED");
    assert!(canceled.contains("leaves=0"), "{canceled}");
    // Bad input gets a readable answer and the session lives on.
    alice.say("cancel nope");
    alice.expect("no order nope");
    alice.say("buy ten BTC-USD 1");
    alice.expect("quantity must be a whole number");
    alice.say("buy 1 DOGE 1");
    let rejected = alice.expect("REJECTED");
    assert!(rejected.contains("unknown_symbol"), "{rejected}");
    assert_eq!(alice.quit(), Some(0));
}

#[test]
fn order_command_exits_1_on_a_reject_and_2_on_a_wrong_password() {
    let v = venue("order-cli");
    let info = &v.server().info;
    let order = |password: &str, price: &str| {
        Command::new(env!("CARGO_BIN_EXE_exchange"))
            .args(["order", "--account", "carol", "--password", password, "--symbol", "BTC-USD"])
            .args(["--side", "buy", "--qty", "1", "--price", price])
            .args(["--addr", &info.quic_addr.to_string(), "--ca", info.cert.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let out = order("carol", "100.001");
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("REJECTED") && stdout.contains("bad_price_tick"), "{stdout}");
    let out = order("wrong", "100.00");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong password"));
}
