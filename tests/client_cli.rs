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
            .args(["client", "--account", account, "--password", account, "--id-prefix", "c"])
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
    let status = alice.expect("c");
    assert!(
        status.starts_with("c2 ")
            && status.contains("BTC-USD buy 8 @ 100.25 partially filled cum=3 leaves=5"),
        "{status}"
    );

    alice.say("cancel c2");
    let canceled = alice.expect("CANCELED");
    assert!(canceled.contains("leaves=0"), "{canceled}");
    alice.say("status");
    let status = alice.expect("c");
    assert!(status.starts_with("c2 ") && status.contains("canceled cum=3 leaves=0"), "{status}");
    // Bad input gets a readable answer and the session lives on.
    alice.say("cancel nope");
    alice.expect("no order nope");
    alice.say("buy ten BTC-USD 1");
    alice.expect("quantity must be a positive whole number");
    alice.say("buy -5 BTC-USD 1");
    alice.expect("quantity must be a positive whole number");
    alice.say("buy 1 DOGE 1.5");
    let rejected = alice.expect("REJECTED");
    // A limit order refused before the engine still prints as the limit order it was.
    assert!(rejected.contains("unknown_symbol") && rejected.contains("buy 1 @ 1.5"), "{rejected}");
    alice.say("status");
    let status = alice.expect("c");
    assert!(status.starts_with("c2 ") && status.contains("canceled"), "{status}");
    let status = alice.expect("c");
    assert!(status.starts_with("c4 ") && status.contains("DOGE buy 1 @ 1.5 rejected"), "{status}");
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

/// `exchange client` fed a whole script on standard input (a here-document): all output once
/// it exits.
fn scripted(v: &Venue, account: &str, extra: &[&str], script: &str) -> (Option<i32>, String) {
    let info = &v.server().info;
    let mut child = Command::new(env!("CARGO_BIN_EXE_exchange"))
        .args(["client", "--account", account, "--password", account])
        .args(["--addr", &info.quic_addr.to_string(), "--ca", info.cert.to_str().unwrap()])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn a_script_gets_its_answers_and_a_second_run_never_reuses_an_id() {
    let v = venue("client-script");
    // No quit: the input just ends after the order, and the answer must still come.
    let (code, first) = scripted(&v, "dave", &[], "buy 2 BTC-USD 90.00\n");
    assert_eq!(code, Some(0));
    let new = first.lines().find(|l| l.starts_with("NEW")).unwrap_or_else(|| panic!("{first}"));
    let first_id = new.split_whitespace().find_map(|w| w.strip_prefix("id=")).unwrap().to_owned();

    // The same account again, while the first run's order still rests (dave keeps his orders
    // on disconnect): the new run's ids differ, so nothing is refused as a duplicate.
    std::thread::sleep(std::time::Duration::from_millis(5));
    let (code, second) = scripted(&v, "dave", &[], "buy 2 BTC-USD 90.00\nstatus\n");
    assert_eq!(code, Some(0));
    let new = second.lines().find(|l| l.starts_with("NEW")).unwrap_or_else(|| panic!("{second}"));
    let second_id = new.split_whitespace().find_map(|w| w.strip_prefix("id=")).unwrap();
    assert_ne!(first_id, second_id);
    assert!(!second.contains("duplicate"), "{second}");
}

#[test]
fn a_cancel_right_after_a_replace_names_the_replacement_and_wait_gives_a_true_status() {
    let v = venue("client-chain");
    // Sent back to back: the cancel leaves before the replace is answered, so it must name the
    // replace's id (the venue handles them in order), not the id the replace retires.
    let (code, out) = scripted(
        &v,
        "dave",
        &["--id-prefix", "r"],
        "buy 5 BTC-USD 90.00\nreplace 1 3 90.25\ncancel 1\nwait\nstatus\n",
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(out.lines().any(|l| l.starts_with("CANCELED") && l.contains("id=r3")), "{out}");
    assert!(!out.contains("CANCEL-REJECTED"), "{out}");
    let status = out.lines().find(|l| l.starts_with("r2 ")).unwrap_or_else(|| panic!("{out}"));
    assert!(status.contains("BTC-USD buy 3 @ 90.25 canceled cum=0 leaves=0"), "{status}");
}

#[test]
fn every_order_type_goes_out_from_the_client_and_the_order_command() {
    let v = venue("client-types");
    let script = "sell 10 BTC-USD 101.00 show=2 post\n\
                  buy 1 BTC-USD 101.00 post\n\
                  buy 1 BTC-USD market stop=100.005\n\
                  buy 3 BTC-USD 99.00 gtd=+60\n\
                  buy 3 BTC-USD 99.00 show=5\n\
                  status\n";
    let (code, out) = scripted(&v, "dave", &["--id-prefix", "t"], script);
    assert_eq!(code, Some(0), "{out}");
    let line = |id: &str, prefix: &str| {
        out.lines()
            .find(|l| l.starts_with(prefix) && l.contains(&format!("id={id} ")))
            .unwrap_or_else(|| panic!("{prefix} for {id} in {out}"))
            .to_owned()
    };
    line("t1", "NEW"); // a post-only iceberg rests
    assert!(line("t2", "REJECTED").contains("would_take"), "{out}"); // post-only reached the engine
    assert!(line("t3", "REJECTED").contains("stop price"), "{out}"); // the stop price was sent
    line("t4", "NEW"); // GTD with its ExpireTime
    assert!(line("t5", "REJECTED").contains("bad_qty"), "{out}"); // MaxFloor above the quantity

    let info = &v.server().info;
    let order = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_exchange"))
            .args(["order", "--account", "carol", "--password", "carol", "--symbol", "BTC-USD"])
            .args(["--addr", &info.quic_addr.to_string(), "--ca", info.cert.to_str().unwrap()])
            .args(["--wait-ms", "0"])
            .args(extra)
            .output()
            .unwrap()
    };
    let stdout = |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).into_owned();
    let out = order(&["--side", "buy", "--qty", "1", "--price", "101.00", "--post-only"]);
    assert!(out.status.code() == Some(1) && stdout(&out).contains("would_take"), "{}", stdout(&out));
    let out = order(&["--side", "buy", "--qty", "4", "--price", "98.00", "--display-qty", "2"]);
    assert!(out.status.code() == Some(0) && stdout(&out).starts_with("NEW"), "{}", stdout(&out));
    let out = order(&["--side", "buy", "--qty", "1", "--price", "98.00", "--expire-time", "+30"]);
    assert!(out.status.code() == Some(0) && stdout(&out).starts_with("NEW"), "{}", stdout(&out));
    let out = order(&["--side", "sell", "--qty", "1", "--stop-price", "90.00"]);
    assert!(out.status.code() == Some(0) && stdout(&out).starts_with("NEW"), "{}", stdout(&out));
    // A limit order refused before the engine prints as the limit order it was.
    let out = order(&["--side", "buy", "--qty", "1", "--price", "98.001"]);
    assert!(stdout(&out).contains("buy 1 @ 98.001"), "{}", stdout(&out));

    let out = order(&["--side", "buy", "--qty", "-5", "--price", "98.00"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("quantity must be a positive whole number of lots, got \"-5\""), "{stderr}");
}

#[test]
fn client_help_lists_its_commands() {
    let out = Command::new(env!("CARGO_BIN_EXE_exchange")).args(["client", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for command in [
        "buy|sell QTY SYMBOL",
        "stop=PRICE",
        "show=QTY",
        "gtd=+SECS",
        "cancel ID",
        "replace ID",
        "status",
        "quit",
    ] {
        assert!(help.contains(command), "{command} in {help}");
    }
}
