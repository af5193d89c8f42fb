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
    let v = venue("monitor");
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

        let (status, scrape) = get(http, "/metrics");
        assert_eq!(status, 200);
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

        match Command::new("promtool").args(["check", "metrics"]).stdin(Stdio::piped()).output_with(&scrape) {
            Some((ok, text)) => assert!(ok, "promtool check metrics:\n{text}\n{scrape}"),
            None => println!("skipped: promtool check metrics (promtool not installed)"),
        }

        for probe in ["/livez", "/readyz"] {
            assert_eq!(get(http, probe).0, 200, "{probe}");
        }
        let (status, verbose) = get(http, "/readyz?verbose");
        assert_eq!(status, 200);
        for check in ["journal_recovered", "gateway_listening"] {
            assert!(verbose.contains(check), "{check} listed:\n{verbose}");
        }

        alice.logout().await.unwrap();
        bob.logout().await.unwrap();
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
