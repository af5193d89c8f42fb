//! Every configuration bound, at 0 and one past its maximum, is refused by the real binary with
//! exit status 2 and the field's name on stderr: never a panic (101), an abort or a venue that
//! starts anyway. `exchange serve` is walked through its TOML, `match`, `replay` and `backtest`
//! through their `--orders-max`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use engine::{ORDERS_MAX_LIMIT, SYMBOLS_MAX};
use exchange::serve::ACCOUNTS_MAX;
use exchange::serve_bounds::{
    INITIAL_RTT_US_MAX, MAX_ACK_DELAY_US_MAX, MESSAGE_BYTES_MAX, MESSAGE_BYTES_MIN, POLL_SPIN_US_MAX,
    RATE_LIMIT_KEYS_MAX, RESEND_STORE_MAX, SEGMENT_MIB_MAX, SETTLEMENT_WAIT_MS_MAX, SYNC_INTERVAL_MS_MAX,
};

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("exchange-bounds-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `exchange args`; a venue that is still running after a generous while accepted the
/// configuration: it is killed and the run reported as such (no exit status).
fn exchange(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_exchange"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run exchange");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if child.try_wait().unwrap().is_none() {
        let _ = child.kill();
    }
    child.wait_with_output().unwrap()
}

fn assert_refused(out: &Output, case: &str, field: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{case}: {stderr}");
    assert!(stderr.contains(field), "{case}: {field} not named in: {stderr}");
}

/// `(TOML, field)`: each a bound of 0 or one past its maximum.
fn serve_cases() -> Vec<(String, String)> {
    let mut cases = Vec::new();
    let mut case = |toml: String, field: &str| cases.push((toml, field.to_owned()));
    let table = |name: &str, key: &str, value: u64| format!("[{name}]\n{key} = {value}\n");
    for (section, key, min, max) in [
        ("engine", "orders_max", 1, ORDERS_MAX_LIMIT as u64),
        ("network", "poll_spin_us", 0, POLL_SPIN_US_MAX),
        ("network.quic_tuning", "initial_rtt_us", 1, INITIAL_RTT_US_MAX),
        ("network.quic_tuning", "max_ack_delay_us", 0, MAX_ACK_DELAY_US_MAX),
        ("journal", "sync_interval_ms", 1, SYNC_INTERVAL_MS_MAX),
        ("journal", "segment_mib", 1, SEGMENT_MIB_MAX as u64),
        ("settlement", "idle_wait_ms", 0, SETTLEMENT_WAIT_MS_MAX),
        ("settlement", "commit_interval_ms", 0, SETTLEMENT_WAIT_MS_MAX),
        ("session", "message_bytes_max", MESSAGE_BYTES_MIN as u64, MESSAGE_BYTES_MAX as u64),
        ("session", "resend_store_max", 1, RESEND_STORE_MAX as u64),
        ("rate_limit", "keys_max", 1, RATE_LIMIT_KEYS_MAX as u64),
    ] {
        let field = format!("{section}.{key}");
        if min > 0 {
            case(table(section, key, 0), &field);
            case(table(section, key, min - 1), &field);
        }
        case(table(section, key, max + 1), &field);
    }
    for key in ["order_qty_max", "open_orders_max", "position_max"] {
        case(table("risk", key, 0), &format!("risk.{key}"));
    }
    case("[risk]\norder_notional_max = \"0\"\n".into(), "risk.order_notional_max");
    for limiter in ["session", "account"] {
        let name = format!("rate_limit.{limiter}");
        for key in ["rate_per_sec", "burst", "abuse_window_ms"] {
            case(table(&name, key, 0), key);
        }
        case(table(&name, "abuse_window_ms", u64::MAX / 1_000_000 + 1), "abuse_window_ms");
    }
    let account = "[[accounts]]\nname = \"zed\"\npassword = \"zed\"\n";
    case(format!("{account}[accounts.rate_limit]\nburst = 0\n"), "accounts.zed.rate_limit");
    case(format!("{account}[accounts.risk]\norder_qty_max = 0\n"), "accounts.zed.risk.order_qty_max");
    case("symbols = []\n".into(), "symbols");
    let symbols: String =
        (0..=SYMBOLS_MAX).map(|i| format!("[[symbols]]\nname = \"S{i}\"\ntick = \"0.01\"\n")).collect();
    case(symbols, "symbols");
    let accounts: String = (0..=ACCOUNTS_MAX)
        .map(|i| format!("[[accounts]]\nname = \"a{i}\"\npassword_hash = \"x\"\n"))
        .collect();
    case(accounts, "accounts");
    cases
}

#[test]
fn serve_refuses_every_bound_at_zero_and_past_its_maximum() {
    let scratch = Scratch::new("serve");
    let config = scratch.0.join("bounds.toml");
    let data = scratch.0.join("data");
    for (toml, field) in serve_cases() {
        // Ports of its own, so a configuration wrongly accepted cannot collide with another test;
        // after the case, whose top-level keys must come before any table.
        let ports =
            "quic = \"127.0.0.1:0\"\ntcp = \"127.0.0.1:0\"\nhttp = \"127.0.0.1:0\"\nmd = \"127.0.0.1:0\"\n";
        let text = match toml.strip_prefix("[network]\n") {
            Some(rest) => format!("[network]\n{ports}{rest}"),
            None => format!("{toml}\n[network]\n{ports}"),
        };
        std::fs::write(&config, &text).unwrap();
        let out = exchange(&["serve", "--config", path(&config), "--data", path(&data)]);
        let case = if text.len() > 200 { format!("{}…", &text[..200]) } else { text };
        assert_refused(&out, &case, &field);
    }
}

/// Every setting with a fixed set of values, given one outside it, is refused by the TOML parser
/// itself: exit status 2, the key's line quoted and every allowed value named.
#[test]
fn serve_refuses_a_setting_outside_its_values_and_names_them() {
    let scratch = Scratch::new("choices");
    let config = scratch.0.join("choices.toml");
    let data = scratch.0.join("data");
    let waits: &[&str] = &["park", "backoff", "yield", "busy-spin"];
    for (section, key, allowed) in [
        ("engine", "wait", waits),
        ("engine", "router_wait", waits),
        ("engine", "thread", &["gateway", "router", "own"][..]),
        ("journal", "sync", &["page-cache", "periodic", "group-commit"][..]),
        ("journal", "events", &["inline", "thread", "derived"][..]),
        ("journal", "commands", &["engine", "router"][..]),
        ("marketdata", "slow_policy", &["conflate", "disconnect"][..]),
    ] {
        let ports =
            "quic = \"127.0.0.1:0\"\ntcp = \"127.0.0.1:0\"\nhttp = \"127.0.0.1:0\"\nmd = \"127.0.0.1:0\"\n";
        // A near miss (the old spelling of a value, a case slip) and nonsense.
        for bad in ["busy_spin", "Park", "sometimes"] {
            let text = format!("[{section}]\n{key} = \"{bad}\"\n\n[network]\n{ports}");
            std::fs::write(&config, &text).unwrap();
            let out = exchange(&["serve", "--config", path(&config), "--data", path(&data)]);
            let case = format!("{section}.{key} = {bad:?}");
            assert_refused(&out, &case, &format!("{key} = \"{bad}\""));
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains(&format!("unknown variant `{bad}`")), "{case}: {stderr}");
            for value in allowed {
                assert!(stderr.contains(&format!("`{value}`")), "{case}: {value} not named in: {stderr}");
            }
        }
    }
}

/// `journal.commands = "router"` needs the engine on its own thread and derived events; each
/// other combination is refused at start, naming what it needs.
#[test]
fn serve_refuses_a_router_written_command_journal_without_its_ring_and_derived_events() {
    let scratch = Scratch::new("router-journal");
    let config = scratch.0.join("router.toml");
    let data = scratch.0.join("data");
    let ports =
        "quic = \"127.0.0.1:0\"\ntcp = \"127.0.0.1:0\"\nhttp = \"127.0.0.1:0\"\nmd = \"127.0.0.1:0\"\n";
    for (thread, events) in
        [("gateway", "derived"), ("router", "derived"), ("own", "inline"), ("own", "thread")]
    {
        let text = format!(
            "[engine]\nthread = \"{thread}\"\n\n[journal]\nevents = \"{events}\"\ncommands = \"router\"\n\n[network]\n{ports}"
        );
        std::fs::write(&config, &text).unwrap();
        let out = exchange(&["serve", "--config", path(&config), "--data", path(&data)]);
        let case = format!("thread {thread}, events {events}");
        assert_refused(&out, &case, "journal.commands = \"router\" needs engine.thread = \"own\"");
        assert!(String::from_utf8_lossy(&out.stderr).contains("journal.events = \"derived\""), "{case}");
    }
}

#[test]
fn the_offline_commands_refuse_an_orders_max_of_zero_and_past_its_maximum() {
    let scratch = Scratch::new("offline");
    let commands = scratch.0.join("commands.jsonl");
    std::fs::write(&commands, "").unwrap();
    let journal = scratch.0.join("journal");
    let made = exchange(&["match", "--commands", path(&commands), "--journal", path(&journal)]);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));

    for bad in ["0".to_owned(), (ORDERS_MAX_LIMIT + 1).to_string()] {
        let out = exchange(&["match", "--commands", path(&commands), "--orders-max", &bad]);
        assert_refused(&out, &format!("match --orders-max {bad}"), "orders_max");
        let out = exchange(&["replay", "--journal", path(&journal), "--quiet", "--orders-max", &bad]);
        assert_refused(&out, &format!("replay --orders-max {bad}"), "orders_max");
        let report = scratch.0.join("report.json");
        let plot = scratch.0.join("plot.svg");
        let out = exchange(&[
            "backtest",
            "--strategy",
            "market-maker",
            "--journal",
            path(&journal),
            "--report",
            path(&report),
            "--plot",
            path(&plot),
            "--orders-max",
            &bad,
        ]);
        assert_refused(&out, &format!("backtest --orders-max {bad}"), "orders_max");
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}
