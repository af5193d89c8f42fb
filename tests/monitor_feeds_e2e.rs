//! Monitoring of the market-data feeds and payments end to end: the real `serve` with orders
//! flowing, a FIX market-data subscription open, a binary-feed subscriber asking for a
//! retransmission and a snapshot, and a payment retried with the same Idempotency-Key. One
//! scrape must show each of those counted by the thread that owns it, and pass
//! `promtool check metrics` with no findings.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use engine::Side;
use exchange::md_binary::BinaryFeedClient;
use fix::codec::{tag, Encoder};
use marketdata::recovery::{Reply, Request, Source};

fn get(addr: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect to the HTTP endpoint");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("a response");
    let (head, body) = response.split_once("\r\n\r\n").expect("headers end");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_owned()
}

fn value(scrape: &str, series: &str) -> Option<f64> {
    scrape.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

fn md_request(e: &mut Encoder, req_id: &str, symbol: &str) {
    e.str(262, req_id);
    e.str(263, "1");
    e.str(264, "0");
    e.str(265, "1");
    e.u64(267, 2);
    e.str(269, "0");
    e.str(269, "1");
    e.u64(146, 1);
    e.str(tag::SYMBOL, symbol);
}

/// POST a deposit for dave with the operator-free demo key: (status, body).
fn deposit(http: SocketAddr, key: &str, amount: &str) -> (u16, String) {
    let body =
        serde_json::json!({ "account": "dave", "asset": "USD", "amount": amount, "method": "bank_transfer" });
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(30)).build();
    let result = agent
        .post(&format!("http://{http}/v1/deposits"))
        .set("Authorization", "Bearer demo-dave")
        .set("Idempotency-Key", key)
        .set("Content-Type", "application/json")
        .send_string(&body.to_string());
    match result {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap()),
        Err(e) => panic!("POST /v1/deposits: {e}"),
    }
}

/// The next reply on the binary feed's stream that is not a message.
async fn next_non_message(client: &mut BinaryFeedClient) -> Reply {
    loop {
        let r = tokio::time::timeout(WAIT, client.next_reply()).await.expect("a reply in time").unwrap();
        if !matches!(r, Reply::Message(_)) {
            return r;
        }
    }
}

#[test]
fn feeds_and_payments_show_in_one_scrape() {
    let v = venue_with("monitor-feeds", |_| {});
    let info = &v.server().info;
    let http = info.http_addr.expect("an HTTP endpoint");
    rt().block_on(async {
        let mut alice = v.login("alice").await;
        let mut bob = v.login("bob").await;
        let mut carol = v.login("carol").await;
        // FIX market data: one subscription held, and one request refused (unknown symbol).
        carol.send(b"V", |e| md_request(e, "c1", "BTC-USD")).await.unwrap();
        carol.send(b"V", |e| md_request(e, "c2", "NOPE")).await.unwrap();
        // The binary feed: a subscriber of BTC-USD.
        let symbols = vec!["BTC-USD".to_owned()];
        let mut feed =
            BinaryFeedClient::connect(info.md_addr.expect("md endpoint"), &info.cert, "localhost", &symbols)
                .await
                .expect("subscribes");

        for i in 0..5 {
            limit(&mut alice, &format!("a{i}"), Side::Buy, 1, "100.50").await;
            let _ = next(&mut alice).await; // New
            market(&mut bob, &format!("b{i}"), Side::Sell, 1).await;
            let _ = next(&mut bob).await; // New
            let _ = next(&mut bob).await; // Fill
            let _ = next(&mut alice).await; // Fill
        }
        for i in 0..3 {
            limit(&mut alice, &format!("r{i}"), Side::Buy, 1, "90.00").await;
            let _ = next(&mut alice).await; // New
        }

        // Wait for the feed to have published, then a retransmission of its first messages
        // (the publisher's log holds them), a snapshot, and a request for the future (refused).
        let deadline = Instant::now() + WAIT;
        while v.server().marketdata.as_ref().unwrap().applied_seq() < 20 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        feed.request(&Request::Retransmit { from: 1, count: 3 }).await.unwrap();
        let complete = next_non_message(&mut feed).await;
        assert!(
            matches!(complete, Reply::Complete { from: 1, count: 3, source: Source::Log, .. }),
            "{complete:?}"
        );
        feed.request(&Request::Snapshot(engine::SymbolId(0))).await.unwrap();
        feed.request(&Request::Retransmit { from: 0, count: 1 }).await.unwrap();
        let refused = next_non_message(&mut feed).await;
        assert!(matches!(refused, Reply::Error { .. }), "{refused:?}");

        // A payment, its retry (answered from the stored result), and the key reused with
        // another body (422).
        let (first, second, other) = tokio::task::spawn_blocking(move || {
            (deposit(http, "m1", "10.00"), deposit(http, "m1", "10.00"), deposit(http, "m1", "11.00"))
        })
        .await
        .unwrap();
        assert_eq!(first.0, 201, "{}", first.1);
        assert_eq!(second, first, "the retry gets the stored answer");
        assert_eq!(other.0, 422, "{}", other.1);

        // The satellites copy every 100 ms; the gateway after a busy turn of its desk.
        let deadline = Instant::now() + WAIT;
        let scrape = loop {
            let scrape = get(http, "/metrics");
            let ready = [
                "exchange_idempotent_replays_total{service=\"payments\"}",
                "exchange_marketdata_incrementals_total{feed=\"fix\"}",
                "exchange_marketdata_snapshots_total{feed=\"binary\"}",
            ]
            .iter()
            .all(|s| value(&scrape, s).unwrap_or(0.0) > 0.0)
                && value(&scrape, "exchange_settlement_pending").unwrap_or(0.0) >= 20.0;
            if ready || Instant::now() > deadline {
                break scrape;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let is = |series: &str, expected: f64| {
            assert_eq!(value(&scrape, series), Some(expected), "{series}\n{scrape}");
        };
        let at_least = |series: &str, min: f64| {
            let got = value(&scrape, series).unwrap_or_else(|| panic!("{series} missing:\n{scrape}"));
            assert!(got >= min, "{series} = {got}, expected ≥ {min}\n{scrape}");
        };
        // Binary feed.
        is("exchange_marketdata_retransmissions_total{feed=\"binary\",source=\"log\"}", 1.0);
        is("exchange_marketdata_retransmissions_total{feed=\"binary\",source=\"journal\"}", 0.0);
        is("exchange_marketdata_snapshots_total{feed=\"binary\"}", 1.0);
        is("exchange_marketdata_refusals_total{feed=\"binary\",reason=\"in_the_future\"}", 1.0);
        is("exchange_marketdata_refusals_total{feed=\"binary\",reason=\"unknown_symbol\"}", 0.0);
        is("exchange_marketdata_connections{feed=\"binary\"}", 1.0);
        is("exchange_marketdata_cuts_total{feed=\"binary\",reason=\"request_flood\"}", 0.0);
        // FIX desk.
        is("exchange_marketdata_subscriptions{feed=\"fix\"}", 1.0);
        at_least("exchange_marketdata_snapshots_total{feed=\"fix\"}", 1.0);
        at_least("exchange_marketdata_incrementals_total{feed=\"fix\"}", 5.0);
        is("exchange_marketdata_refusals_total{feed=\"fix\",reason=\"unknown_symbol\"}", 1.0);
        is("exchange_marketdata_stale_subscriptions_total{feed=\"fix\"}", 0.0);
        // Payments.
        is("exchange_idempotent_replays_total{service=\"payments\"}", 1.0);
        is("exchange_idempotency_refusals_total{service=\"payments\",code=\"422\"}", 1.0);
        is("exchange_idempotency_refusals_total{service=\"payments\",code=\"409\"}", 0.0);
        is("exchange_payments_total{status=\"succeeded\"}", 1.0);
        is("exchange_payments_total{status=\"failed\"}", 0.0);
        is("exchange_breaker_state{breaker=\"payments_rails\"}", 0.0);
        is("exchange_breaker_state{breaker=\"webhooks\"}", 0.0);
        assert!(
            value(&scrape, "exchange_webhook_deliveries_total{outcome=\"delivered\"}").is_some(),
            "{scrape}"
        );

        match Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        {
            Ok(mut child) => {
                child.stdin.take().unwrap().write_all(scrape.as_bytes()).unwrap();
                let out = child.wait_with_output().unwrap();
                let text = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                assert!(
                    out.status.success() && text.trim().is_empty(),
                    "promtool check metrics:\n{text}\n{scrape}"
                );
            }
            Err(_) => println!("skipped: promtool check metrics (promtool not installed)"),
        }
        for c in [alice, bob, carol] {
            c.logout().await.unwrap();
        }
    });
}
