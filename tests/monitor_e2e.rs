//! Monitoring end to end: the real `serve` under order flow from FIX clients, scraped over HTTP.
//! The counters the gateway and router threads record must move, the health endpoints answer,
//! and the scrape passes `promtool check metrics` when promtool is installed.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};

use common::*;
use engine::Side;
use fixclient::FixClient;

/// GET `path` over a fresh connection: (status, body).
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect to the HTTP endpoint");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("a response");
    let (head, body) = response.split_once("\r\n\r\n").expect("headers end");
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("a status line");
    (status, body.to_owned())
}

/// The value of the series named exactly `series` (name and labels as rendered), if present.
fn value(scrape: &str, series: &str) -> Option<f64> {
    scrape.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

#[test]
fn order_flow_moves_the_counters_and_the_scrape_is_valid() {
    // Group commit: the router syncs the command journal, so syncs and their times show.
    let v = venue_with("monitor", |c| c.journal.sync = exchange::serve::SyncSetting::GroupCommit);
    let http = v.server().info.http_addr.expect("an HTTP endpoint");
    rt().block_on(async {
        let mut alice = v.login("alice").await;
        let mut bob = v.login("bob").await;
        let mut wrong = v.config("carol", "carol", false);
        wrong.password = "not her password".into();
        assert!(FixClient::connect(&wrong).await.is_err(), "a wrong password is refused");
        for i in 0..5 {
            limit(&mut alice, &format!("a{i}"), Side::Buy, 1, "100.50").await;
            let _ = next(&mut alice).await; // New
            market(&mut bob, &format!("b{i}"), Side::Sell, 1).await;
            let _ = next(&mut bob).await; // New
            let _ = next(&mut bob).await; // Fill
            let _ = next(&mut alice).await; // Fill
        }
        // Off the tick: the gateway rejects it itself.
        limit(&mut alice, "bad", Side::Buy, 1, "100.505").await;
        check(&next(&mut alice).await, &[(150, "8")]);
        // A cancel of an order nobody knows: the engine's unknown_order.
        alice
            .send(b"F", |e| {
                e.str(fix::codec::tag::ORIG_CL_ORD_ID, "nothing");
                e.str(fix::codec::tag::CL_ORD_ID, "c1");
                e.str(fix::codec::tag::SYMBOL, "BTC-USD");
                e.char(fix::codec::tag::SIDE, b'1');
                e.time(fix::codec::tag::TRANSACT_TIME, gateway::server::now_ns());
            })
            .await
            .unwrap();
        let _ = next(&mut alice).await;

        // Orders that rest: more than the 1-in-64 sampling of the stage timings, so every
        // sampled stage has observations.
        for i in 0..70 {
            limit(&mut alice, &format!("r{i}"), Side::Buy, 1, "90.00").await;
            let _ = next(&mut alice).await; // New
        }

        // An admin engages carol's kill switch: the gauge counts one account.
        let mut ops = v.login("admin").await;
        ops.send(fix::codec::MSG_ADMIN_REQUEST, |e| {
            e.str(fix::codec::tag::ADMIN_REQ_ID, "k1");
            e.str(fix::codec::tag::ADMIN_ACTION, "kill");
            e.str(fix::codec::tag::ACCOUNT, "carol");
        })
        .await
        .unwrap();
        check(&next(&mut ops).await, &[(35, "U2"), (fix::codec::tag::ADMIN_STATUS, "0")]);

        // The satellites copy their numbers every 100 ms: wait for market data to show.
        let deadline = std::time::Instant::now() + WAIT;
        let scrape = loop {
            let (status, scrape) = get(http, "/metrics");
            assert_eq!(status, 200);
            let published = value(&scrape, "exchange_marketdata_messages_total").unwrap_or(0.0);
            if published > 0.0 || std::time::Instant::now() > deadline {
                break scrape;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        let at_least = |series: &str, min: f64| {
            let got = value(&scrape, series).unwrap_or_else(|| panic!("{series} missing:\n{scrape}"));
            assert!(got >= min, "{series} = {got}, expected ≥ {min}\n{scrape}");
        };
        at_least("exchange_orders_in_total{type=\"limit\"}", 5.0);
        at_least("exchange_orders_in_total{type=\"market\"}", 5.0);
        at_least("exchange_orders_in_total{type=\"cancel\"}", 1.0);
        at_least("exchange_trades_total", 5.0);
        at_least("exchange_logons_total", 2.0);
        at_least("exchange_logons_failed_total{reason=\"refused\"}", 1.0);
        at_least("exchange_sessions", 2.0);
        at_least("exchange_rejects_total{reason=\"invalid_order\"}", 1.0);
        at_least("exchange_router_requests_total", 10.0);
        at_least("exchange_order_latency_seconds_count", 11.0);
        at_least("exchange_engine_cycle_seconds_count", 1.0);
        at_least("exchange_journal_position{journal=\"commands\"}", 10.0);
        assert!(scrape.contains("exchange_journal_unsynced_records{journal=\"commands\"}"), "{scrape}");
        // Journals: bytes, syncs, position, lag, and the sampled append and sync times.
        for journal in ["commands", "events"] {
            at_least(&format!("exchange_journal_bytes_total{{journal=\"{journal}\"}}"), 1_000.0);
            at_least(&format!("exchange_journal_position{{journal=\"{journal}\"}}"), 80.0);
            at_least(&format!("exchange_journal_syncs_total{{journal=\"{journal}\"}}"), 1.0);
            assert!(value(&scrape, &format!("exchange_journal_sync_lag_seconds{{journal=\"{journal}\"}}"))
                .is_some());
            let append = format!(
                "exchange_stage_latency_seconds_count{{stage=\"journal_append\",journal=\"{journal}\"}}"
            );
            at_least(&append, 1.0);
        }
        at_least("exchange_journal_syncs_total{journal=\"commands\"}", 10.0);
        at_least("exchange_stage_latency_seconds_count{stage=\"journal_sync\",journal=\"commands\"}", 10.0);
        // Sampled stages, one in 64 of the ~82 requests at least.
        for stage in ["decode", "session", "ratelimit", "risk", "match"] {
            at_least(&format!("exchange_stage_latency_seconds_count{{stage=\"{stage}\"}}"), 1.0);
        }
        at_least("exchange_engine_cycle_recent_max_seconds", 1e-9);
        // The 70 resting buys; the crossing orders above all filled.
        at_least("exchange_resting_orders{symbol=\"BTC-USD\"}", 70.0);
        assert_eq!(value(&scrape, "exchange_resting_orders{symbol=\"BTC-USD\"}"), Some(70.0), "{scrape}");
        assert_eq!(value(&scrape, "exchange_kill_switch_engaged{scope=\"account\"}"), Some(1.0), "{scrape}");
        // Market data and settlement, from their own threads.
        at_least("exchange_marketdata_messages_total", 10.0);
        assert_eq!(value(&scrape, "exchange_marketdata_gaps_total"), Some(0.0), "{scrape}");
        assert!(value(&scrape, "exchange_marketdata_subscribers").is_some(), "{scrape}");
        assert!(value(&scrape, "exchange_marketdata_slow_subscriber_cuts_total").is_some(), "{scrape}");
        at_least("exchange_ledger_postings_total", 1.0);
        let imbalances: Vec<&str> =
            scrape.lines().filter(|l| l.starts_with("exchange_ledger_imbalance_minor_units{")).collect();
        assert!(!imbalances.is_empty(), "{scrape}");
        for line in imbalances {
            assert!(line.ends_with(" 0"), "double entry sums to 0: {line}");
        }

        match Command::new("promtool").args(["check", "metrics"]).stdin(Stdio::piped()).output_with(&scrape) {
            // Lint findings are printed with a success status: none is allowed either.
            Some((ok, text)) => {
                assert!(ok && text.trim().is_empty(), "promtool check metrics:\n{text}\n{scrape}")
            }
            None => println!("skipped: promtool check metrics (promtool not installed)"),
        }

        assert_eq!(get(http, "/livez").0, 200, "/livez");
        // Ready once the satellites have caught up with the journal (they follow it on threads
        // of their own, so this may take a moment after the flow).
        let started = std::time::Instant::now();
        let (status, verbose) = loop {
            let (status, verbose) = get(http, "/readyz?verbose");
            if status == 200 || started.elapsed() > std::time::Duration::from_secs(10) {
                break (status, verbose);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        assert_eq!(status, 200, "{verbose}");
        assert_eq!(get(http, "/readyz").0, 200, "/readyz");
        for check in
            ["journal_recovered", "gateway_listening", "marketdata_caught_up", "settlement_caught_up"]
        {
            assert!(verbose.contains(&format!("[+]{check} ok")), "{check} passing:\n{verbose}");
        }

        alice.logout().await.unwrap();
        bob.logout().await.unwrap();
        ops.logout().await.unwrap();
    });
}

trait OutputWith {
    /// Runs with `input` on stdin: (success, stdout and stderr), or `None` if it cannot start.
    fn output_with(&mut self, input: &str) -> Option<(bool, String)>;
}

impl OutputWith for Command {
    fn output_with(&mut self, input: &str) -> Option<(bool, String)> {
        let mut child = self.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().ok()?;
        child.stdin.take()?.write_all(input.as_bytes()).ok()?;
        let out = child.wait_with_output().ok()?;
        let text =
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        Some((out.status.success(), text))
    }
}
