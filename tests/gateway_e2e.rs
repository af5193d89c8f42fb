//! End-to-end tests of the gateway: the real server (engine thread, journal, router, QUIC and
//! TCP transports) on loopback ports chosen by the OS, driven by real FIX clients.

mod common;

use std::time::Duration;

use common::*;
use engine::Side;
use fix::codec::{self, tag};
use fixclient::{new_order_fields, ClientError, FixClient};
use gateway::server::now_ns;

#[test]
fn two_sessions_cross_and_every_report_field_is_right() {
    let v = venue("cross");
    rt().block_on(async {
        let mut alice = v.login("alice").await;
        let mut bob = v.login("bob").await;
        limit(&mut alice, "a1", Side::Buy, 10, "100.50").await;
        let new = next(&mut alice).await;
        check(
            &new,
            &[
                (35, "8"),
                (150, "0"),
                (39, "0"),
                (11, "a1"),
                (55, "BTC-USD"),
                (54, "1"),
                (38, "10"),
                (44, "100.50"),
                (14, "0"),
                (151, "10"),
                (6, "0"),
            ],
        );
        let order_id = new.get(tag::ORDER_ID).unwrap();
        market(&mut bob, "b1", Side::Sell, 4).await;
        let bob_new = next(&mut bob).await;
        check(&bob_new, &[(150, "0"), (39, "0"), (11, "b1"), (54, "2"), (40, "1")]);
        let bob_fill = next(&mut bob).await;
        check(
            &bob_fill,
            &[
                (150, "F"),
                (39, "2"),
                (11, "b1"),
                (14, "4"),
                (151, "0"),
                (6, "100.50"),
                (31, "100.50"),
                (32, "4"),
            ],
        );
        let alice_fill = next(&mut alice).await;
        check(
            &alice_fill,
            &[
                (150, "F"),
                (39, "1"),
                (11, "a1"),
                (37, &order_id),
                (14, "4"),
                (151, "6"),
                (6, "100.50"),
                (31, "100.50"),
                (32, "4"),
                (38, "10"),
            ],
        );
        assert_ne!(alice_fill.get(tag::EXEC_ID), bob_fill.get(tag::EXEC_ID), "ExecIDs are unique");
        // A second fill at another price: AvgPx is the weighted average.
        limit(&mut bob, "b2", Side::Sell, 2, "100.50").await;
        let _ = next(&mut bob).await; // NEW
        let _ = next(&mut bob).await; // FILL
        let second = next(&mut alice).await;
        check(&second, &[(150, "F"), (39, "1"), (14, "6"), (151, "4"), (32, "2")]);
        alice.logout().await.unwrap();
        bob.logout().await.unwrap();
    });
}

#[test]
fn cancel_and_replace_report_orig_ids() {
    let v = venue("cxl");
    rt().block_on(async {
        let mut alice = v.login("alice").await;
        limit(&mut alice, "a1", Side::Buy, 10, "100.50").await;
        check(&next(&mut alice).await, &[(150, "0")]);
        alice
            .send(b"G", |e| {
                e.str(tag::ORIG_CL_ORD_ID, "a1");
                e.str(tag::CL_ORD_ID, "a2");
                e.str(tag::SYMBOL, "BTC-USD");
                e.char(tag::SIDE, b'1');
                e.u64(tag::ORDER_QTY, 8);
                e.char(tag::ORD_TYPE, b'2');
                e.str(tag::PRICE, "100.25");
            })
            .await
            .unwrap();
        check(
            &next(&mut alice).await,
            &[(150, "5"), (39, "0"), (11, "a2"), (41, "a1"), (38, "8"), (44, "100.25"), (151, "8")],
        );
        alice
            .send(b"F", |e| {
                e.str(tag::ORIG_CL_ORD_ID, "a2");
                e.str(tag::CL_ORD_ID, "a3");
                e.str(tag::SYMBOL, "BTC-USD");
                e.char(tag::SIDE, b'1');
            })
            .await
            .unwrap();
        check(&next(&mut alice).await, &[(150, "4"), (39, "4"), (11, "a3"), (41, "a2"), (151, "0")]);
        // Cancel of an order that is gone: OrderCancelReject, unknown order.
        alice
            .send(b"F", |e| {
                e.str(tag::ORIG_CL_ORD_ID, "a2");
                e.str(tag::CL_ORD_ID, "a4");
                e.str(tag::SYMBOL, "BTC-USD");
                e.char(tag::SIDE, b'1');
            })
            .await
            .unwrap();
        check(&next(&mut alice).await, &[(35, "9"), (434, "1"), (102, "1"), (11, "a4"), (41, "a2")]);
    });
}

#[test]
fn another_account_cannot_cancel_or_replace_an_order() {
    let v = venue("xacct");
    rt().block_on(async {
        let mut alice = v.login("alice").await;
        let mut bob = v.login("bob").await;
        limit(&mut alice, "a1", Side::Buy, 10, "100.50").await;
        check(&next(&mut alice).await, &[(150, "0")]);
        bob.send(b"F", |e| {
            e.str(tag::ORIG_CL_ORD_ID, "a1");
            e.str(tag::CL_ORD_ID, "evil");
            e.str(tag::SYMBOL, "BTC-USD");
            e.char(tag::SIDE, b'1');
        })
        .await
        .unwrap();
        check(&next(&mut bob).await, &[(35, "9"), (102, "1"), (37, "NONE")]);
        // Alice heard nothing, and her order still trades.
        assert!(alice.recv(Duration::from_millis(200)).await.unwrap().is_none());
        market(&mut bob, "b1", Side::Sell, 1).await;
        let _ = next(&mut bob).await;
        check(&next(&mut bob).await, &[(150, "F")]);
        check(&next(&mut alice).await, &[(150, "F"), (11, "a1")]);
    });
}

#[test]
fn wrong_password_and_second_logon_are_refused_with_the_reason() {
    let v = venue("auth");
    rt().block_on(async {
        match FixClient::connect(&v.config("alice", "nope", false)).await {
            Err(ClientError::LogonRefused(text)) => assert_eq!(text, "logon refused: wrong password"),
            other => panic!("expected a refusal, got {other:?}"),
        }
        let alice = v.login("alice").await;
        match FixClient::connect(&v.config("alice", "alice", true)).await {
            Err(ClientError::LogonRefused(text)) => {
                assert!(text.contains("already has an active session"), "{text}")
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        alice.logout().await.unwrap();
        // The slot is free again.
        v.login("alice").await.logout().await.unwrap();
    });
}

#[test]
fn unknown_symbol_and_off_tick_price_are_rejected_precisely() {
    let v = venue("reject");
    rt().block_on(async {
        let mut bob = v.login_tcp("bob").await;
        bob.send(b"D", |e| new_order_fields(e, "x1", "DOGE-USD", Side::Buy, 1, Some("1.00"), None, now_ns()))
            .await
            .unwrap();
        let m = next(&mut bob).await;
        check(&m, &[(150, "8"), (39, "8"), (103, "1"), (11, "x1")]);
        assert!(m.get(tag::TEXT).unwrap().contains("DOGE-USD is not listed"));
        limit(&mut bob, "x2", Side::Buy, 1, "100.005").await;
        let m = next(&mut bob).await;
        check(&m, &[(150, "8"), (103, "99")]);
        assert!(m.get(tag::TEXT).unwrap().starts_with("bad_price_tick"), "{}", m.text());
        // Missing required tag: session Reject naming the tag; the session lives on.
        bob.send(b"D", |e| {
            e.str(tag::CL_ORD_ID, "x3");
            e.str(tag::SYMBOL, "BTC-USD");
            e.u64(tag::ORDER_QTY, 1);
            e.char(tag::ORD_TYPE, b'1');
        })
        .await
        .unwrap();
        check(&next(&mut bob).await, &[(35, "3"), (373, "1"), (371, "54")]);
        limit(&mut bob, "x4", Side::Buy, 1, "100.00").await;
        check(&next(&mut bob).await, &[(150, "0"), (11, "x4")]);
        // Price text the engine cannot hold: a session Reject on Price (44) saying why.
        for (id, price, why) in [
            ("x5", "100.000000001", "9 decimals"),
            ("x6", "+100", "misplaced sign"),
            ("x7", "1e2", "not a decimal number"),
        ] {
            limit(&mut bob, id, Side::Buy, 1, price).await;
            let m = next(&mut bob).await;
            check(&m, &[(35, "3"), (373, "6"), (371, "44")]);
            assert!(m.get(tag::TEXT).unwrap().contains(why), "{}", m.text());
        }
        limit(&mut bob, "x8", Side::Buy, 1, "100.00").await;
        check(&next(&mut bob).await, &[(150, "0"), (11, "x8")]);
    });
}

#[test]
fn garbled_checksum_is_dropped_and_the_seq_is_not_consumed() {
    let v = venue("garbled");
    rt().block_on(async {
        let mut bob = v.login("bob").await;
        let seq = bob.session().out_seq_next();
        let mut raw = bob.build_raw(b"D", seq, |e| {
            new_order_fields(e, "g1", "BTC-USD", Side::Buy, 1, Some("1.00"), None, now_ns())
        });
        let n = raw.len();
        raw[n - 3] = if raw[n - 3] == b'9' { b'0' } else { raw[n - 3] + 1 }; // wrong CheckSum digit
        bob.send_raw(&raw).await.unwrap();
        // The same seq, now well-formed, is accepted.
        limit(&mut bob, "g2", Side::Buy, 1, "1.00").await;
        check(&next(&mut bob).await, &[(150, "0"), (11, "g2")]);
        assert!(bob.recv(Duration::from_millis(200)).await.unwrap().is_none(), "g1 never reached the engine");
    });
}

#[test]
fn bad_body_length_and_oversized_messages_end_only_that_session() {
    let v = venue("framing");
    rt().block_on(async {
        let mut alice = v.login("alice").await;
        let mut bob = v.login_tcp("bob").await;
        let seq = bob.session().out_seq_next();
        let raw = bob.build_raw(b"D", seq, |e| {
            new_order_fields(e, "z1", "BTC-USD", Side::Buy, 1, Some("1.00"), None, now_ns())
        });
        let text = String::from_utf8(raw).unwrap();
        let len: usize = text.split('\x01').nth(1).unwrap()[2..].parse().unwrap();
        let wrong = text.replacen(&format!("\x019={len}\x01"), &format!("\x019={}\x01", len - 3), 1);
        bob.send_raw(wrong.as_bytes()).await.unwrap();
        match bob.recv(WAIT).await {
            Err(ClientError::Closed(reason)) => assert!(reason.contains("BodyLength"), "{reason}"),
            other => panic!("expected a Logout naming BodyLength, got {other:?}"),
        }
        let mut carol = v.login("carol").await;
        let big = format!("8=FIX.4.4\x019=6000\x0135=D\x01{}", "1=x\x01".repeat(1500));
        carol.send_raw(big.as_bytes()).await.unwrap();
        match carol.recv(WAIT).await {
            Err(ClientError::Closed(reason)) => {
                assert!(reason.contains("exceeds the 4096-byte limit"), "{reason}")
            }
            other => panic!("expected a Logout naming the size, got {other:?}"),
        }
        // Alice's session is untouched.
        limit(&mut alice, "a1", Side::Buy, 1, "1.00").await;
        check(&next(&mut alice).await, &[(150, "0")]);
    });
}

#[test]
fn sequence_gap_is_resent_and_too_low_logs_out() {
    let v = venue("seq");
    rt().block_on(async {
        let mut alice = v.login("alice").await;
        limit(&mut alice, "s1", Side::Buy, 1, "1.00").await;
        check(&next(&mut alice).await, &[(150, "0")]);
        // A message from the future: the venue asks for a resend from the gap; the client
        // session answers (gap fill), and the session carries on.
        let ahead = alice.session().out_seq_next() + 5;
        let raw = alice.build_raw(b"0", ahead, |_| {});
        alice.send_raw(&raw).await.unwrap();
        assert!(alice.recv(Duration::from_millis(300)).await.unwrap().is_none());
        assert_eq!(alice.session().stats().resends_served, 1, "the venue sent a ResendRequest");
        limit(&mut alice, "s2", Side::Buy, 1, "1.00").await;
        check(&next(&mut alice).await, &[(150, "0"), (11, "s2")]);
        // A message from the past without PossDupFlag: Logout with the reason.
        let raw = alice.build_raw(b"0", 2, |_| {});
        alice.send_raw(&raw).await.unwrap();
        match alice.recv(WAIT).await {
            Err(ClientError::Closed(reason)) => assert!(reason.contains("MsgSeqNum too low"), "{reason}"),
            other => panic!("expected a Logout, got {other:?}"),
        }
    });
}

#[test]
fn cancel_on_disconnect_applies_to_lost_connections_not_to_logouts() {
    let v = venue("cod");
    rt().block_on(async {
        let mut alice = v.login("alice").await;
        limit(&mut alice, "a1", Side::Buy, 5, "100.00").await;
        check(&next(&mut alice).await, &[(150, "0")]);
        alice.close().await; // connection dropped, no Logout
        let mut carol = v.login("carol").await;
        limit(&mut carol, "c1", Side::Buy, 5, "99.00").await;
        check(&next(&mut carol).await, &[(150, "0")]);
        carol.logout().await.unwrap(); // graceful: her order stays
        let mut dave = v.login("dave").await; // dave: cancel_on_disconnect = false
        limit(&mut dave, "d1", Side::Buy, 5, "98.00").await;
        check(&next(&mut dave).await, &[(150, "0")]);
        dave.close().await;
        let mut bob = v.login("bob").await;
        // Sweep every bid: alice's (canceled) must not trade; carol's and dave's do.
        bob.send(b"D", |e| {
            new_order_fields(e, "b1", "BTC-USD", Side::Sell, 15, Some("90.00"), Some(b'3'), now_ns())
        })
        .await
        .unwrap();
        let mut prices = Vec::new();
        loop {
            let m = next(&mut bob).await;
            match m.get(tag::EXEC_TYPE).as_deref() {
                Some("F") => prices.push(m.get(tag::LAST_PX).unwrap()),
                Some("4") => break,
                _ => {}
            }
        }
        assert_eq!(prices, ["99.00", "98.00"]);
    });
}

#[test]
fn unsupported_message_type_gets_a_business_reject() {
    let v = venue("bizrej");
    rt().block_on(async {
        let mut bob = v.login("bob").await;
        // News (35=B) is FIX 4.4 but not something the venue takes from a client.
        bob.send(b"B", |e| {
            e.str(148, "hello");
            e.u64(33, 1);
            e.str(58, "text");
        })
        .await
        .unwrap();
        check(&next(&mut bob).await, &[(35, "j"), (372, "B"), (380, "3")]);
        // A MarketDataRequest is served now (tests/fix_md_e2e.rs): one without its required
        // fields is a session Reject naming the first missing tag.
        bob.send(b"V", |e| e.str(262, "md1")).await.unwrap();
        check(&next(&mut bob).await, &[(35, "3"), (373, "1"), (371, "263")]);
        let _ = codec::SOH;
    });
}

fn limit_config(rate_per_sec: u32, burst: u32, abuse_rejects_max: u32) -> ratelimit::LimitConfig {
    ratelimit::LimitConfig { rate_per_sec, burst, abuse_rejects_max, abuse_window_ms: 10_000 }
}

#[test]
fn a_flooding_session_is_rate_limited_while_another_still_trades() {
    let v = venue_with("flood", |c| c.rate_limit.session = limit_config(20, 5, 1_000));
    rt().block_on(async {
        let mut bob = v.login("bob").await;
        let mut alice = v.login("alice").await;
        for i in 0..30 {
            limit(&mut bob, &format!("f{i}"), Side::Sell, 1, "200.00").await;
        }
        let (mut acked, mut limited) = (0, 0);
        for _ in 0..30 {
            let m = next(&mut bob).await;
            match m.msg_type().as_str() {
                "8" => acked += 1,
                "j" => {
                    assert!(m.get(tag::TEXT).unwrap().starts_with("rate limited"), "{}", m.text());
                    check(&m, &[(372, "D")]);
                    limited += 1;
                }
                other => panic!("unexpected {other}: {}", m.text()),
            }
        }
        assert!(limited >= 20 && acked >= 5, "acked {acked}, limited {limited}");
        // Alice's session has its own budget: her order rests and fills.
        limit(&mut alice, "a1", Side::Sell, 1, "150.00").await;
        check(&next(&mut alice).await, &[(150, "0")]);
        let mut carol = v.login("carol").await;
        market(&mut carol, "c1", Side::Buy, 1).await;
        check(&next(&mut carol).await, &[(150, "0")]);
        check(&next(&mut carol).await, &[(150, "F"), (31, "150.00")]);
        check(&next(&mut alice).await, &[(150, "F"), (11, "a1")]);
    });
}

#[test]
fn sustained_abuse_of_the_rate_limit_logs_the_session_out() {
    let v = venue_with("abuse", |c| c.rate_limit.session = limit_config(10, 2, 5));
    rt().block_on(async {
        let mut bob = v.login("bob").await;
        for i in 0..20 {
            limit(&mut bob, &format!("f{i}"), Side::Sell, 1, "200.00").await;
        }
        loop {
            match bob.recv(WAIT).await {
                Ok(Some(_)) => continue,
                Err(ClientError::Closed(reason)) => {
                    assert!(reason.contains("rate limit abuse"), "{reason}");
                    break;
                }
                other => panic!("expected a Logout, got {other:?}"),
            }
        }
        // The venue still serves others.
        v.login("alice").await.logout().await.unwrap();
    });
}

#[test]
fn a_breached_credit_limit_is_rejected_with_its_code_and_text() {
    let v = venue_with("credit", |c| {
        let alice = c.accounts.iter_mut().find(|a| a.name == "alice").unwrap();
        alice.risk = Some(toml::from_str("credit_max = \"1000\"\norder_qty_max = 50").unwrap());
    });
    rt().block_on(async {
        let mut alice = v.login("alice").await;
        limit(&mut alice, "a1", Side::Buy, 10, "100.00").await; // exactly the limit
        check(&next(&mut alice).await, &[(150, "0")]);
        limit(&mut alice, "a2", Side::Buy, 1, "1.00").await; // one unit over
        let m = next(&mut alice).await;
        check(&m, &[(150, "8"), (39, "8"), (103, "3"), (11, "a2")]);
        assert!(m.get(tag::TEXT).unwrap().starts_with("risk_credit"), "{}", m.text());
        limit(&mut alice, "a3", Side::Sell, 51, "300.00").await;
        let m = next(&mut alice).await;
        check(&m, &[(150, "8"), (103, "3")]);
        assert!(m.get(tag::TEXT).unwrap().starts_with("risk_max_qty"), "{}", m.text());
        // Canceling the open buy frees the credit.
        alice
            .send(b"F", |e| {
                e.str(tag::ORIG_CL_ORD_ID, "a1");
                e.str(tag::CL_ORD_ID, "a4");
                e.str(tag::SYMBOL, "BTC-USD");
                e.char(tag::SIDE, b'1');
            })
            .await
            .unwrap();
        check(&next(&mut alice).await, &[(150, "4")]);
        limit(&mut alice, "a5", Side::Buy, 1, "1.00").await;
        check(&next(&mut alice).await, &[(150, "0"), (11, "a5")]);
    });
}

#[test]
fn serve_refuses_a_bad_configuration_with_a_reason() {
    let dir = std::env::temp_dir().join(format!("exchange-gw-{}-badconfig", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (text, reason) in [
        ("[network]\nquik = \"127.0.0.1:0\"\n", "unknown field `quik`"),
        (
            "[engine]\nwait = \"nap\"\n",
            "unknown variant `nap`, expected one of `park`, `backoff`, `yield`, `busy-spin`",
        ),
        (
            "[engine]\nthread = \"elsewhere\"\n",
            "unknown variant `elsewhere`, expected one of `gateway`, `router`, `own`",
        ),
        ("[[symbols]]\nname = \"X\"\ntick = \"-1\"\n", "tick \"-1\" is not a positive price"),
        (
            "[journal]\nsync = \"sometimes\"\n",
            "unknown variant `sometimes`, expected one of `page-cache`, `periodic`, `group-commit`",
        ),
        ("[network]\npoll_spin_us = 5000000\n", "network.poll_spin_us 5000000: must be within 0..=1000000"),
        ("[network]\npoll_spin_us = -1\n", "poll_spin_us"),
    ] {
        let config = dir.join("bad.toml");
        std::fs::write(&config, text).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_exchange"))
            .args([
                "serve",
                "--config",
                config.to_str().unwrap(),
                "--data",
                dir.join("data").to_str().unwrap(),
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text}: {stderr}");
        assert!(stderr.contains(reason), "{text}: {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unknown_and_misplaced_tags_are_rejected_and_the_session_lives_on() {
    let v = venue("dictionary");
    rt().block_on(async {
        let mut bob = v.login_tcp("bob").await;
        bob.send(b"D", |e| {
            new_order_fields(e, "b1", "BTC-USD", Side::Buy, 1, Some("100.00"), None, now_ns());
            e.str(9999, "x");
        })
        .await
        .unwrap();
        let m = next(&mut bob).await;
        check(&m, &[(35, "3"), (371, "9999"), (372, "D"), (373, "0")]);
        bob.send(b"D", |e| {
            new_order_fields(e, "b2", "BTC-USD", Side::Buy, 1, Some("100.00"), None, now_ns());
            e.u64(tag::HEART_BT_INT, 30);
        })
        .await
        .unwrap();
        check(&next(&mut bob).await, &[(35, "3"), (371, "108"), (373, "2")]);
        // The rejected messages used their sequence numbers: the next order is in sequence.
        limit(&mut bob, "b3", Side::Buy, 1, "100.00").await;
        check(&next(&mut bob).await, &[(35, "8"), (150, "0"), (11, "b3")]);
    });
}

#[test]
fn a_market_order_never_fills_outside_its_price_band() {
    let v = venue_with("band", |c| {
        c.symbols[0].reference_price = Some("100.00".into());
        let alice = c.accounts.iter_mut().find(|a| a.name == "alice").unwrap();
        alice.risk = Some(toml::from_str("price_band_bps = 100").unwrap()); // 1%: buys up to 101.00
    });
    rt().block_on(async {
        let mut bob = v.login("bob").await;
        for (id, price) in [("b1", "100.50"), ("b2", "101.00"), ("b3", "101.01")] {
            limit(&mut bob, id, Side::Sell, 1, price).await;
            check(&next(&mut bob).await, &[(150, "0")]);
        }
        let mut alice = v.login("alice").await;
        market(&mut alice, "a1", Side::Buy, 3).await;
        check(&next(&mut alice).await, &[(150, "0"), (40, "1")]);
        check(&next(&mut alice).await, &[(150, "F"), (31, "100.50"), (14, "1")]);
        check(&next(&mut alice).await, &[(150, "F"), (31, "101.00"), (14, "2")]);
        // The rest would have paid 101.01, past the band's edge: canceled instead.
        let m = next(&mut alice).await;
        check(&m, &[(150, "4"), (39, "4"), (14, "2"), (151, "0"), (40, "1")]);
        assert_eq!(m.get(tag::PRICE), None, "still reported as a market order: {}", m.text());
    });
}

/// Logons are verified on a worker thread while the session waits: a NewOrderSingle written in
/// the same packet as the Logon must wait in the session's buffer and be answered after it.
#[test]
fn an_order_written_right_behind_the_logon_is_answered_after_it() {
    use fix::session::{InitiatorLogon, Poll, Session, SessionConfig};
    use std::io::{Read, Write};

    let v = venue("pipelined-logon");
    let addr = v.server().info.tcp_addr.unwrap();
    let logon = InitiatorLogon {
        target_comp_id: "EXCHANGE".into(),
        heartbeat_s: 30,
        username: "alice".into(),
        password: "alice".into(),
    };
    let mut session = Session::initiator(SessionConfig::default(), "alice", logon, now_ns());
    let mut bytes = session.take_tx();
    let mut e = codec::Encoder::new();
    e.begin(b"D", "alice", "EXCHANGE", 2, now_ns());
    new_order_fields(&mut e, "p1", "BTC-USD", Side::Buy, 3, Some("100.00"), None, now_ns());
    bytes.extend_from_slice(e.finish());
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    stream.write_all(&bytes).unwrap();

    let mut seen = Vec::new();
    let mut buf = vec![0; 64 * 1024];
    while !seen.iter().any(|t: &String| t.starts_with("8 ")) {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "the venue closed the connection; seen {seen:?}");
        session.feed(&buf[..n]);
        loop {
            match session.poll(now_ns()) {
                Poll::Idle => break,
                Poll::Logon(_) => seen.push("logon".to_owned()),
                Poll::App(m) => seen.push(format!(
                    "{} {} {}",
                    String::from_utf8_lossy(m.msg_type()),
                    m.get_str(tag::CL_ORD_ID).unwrap_or(""),
                    m.get_str(tag::EXEC_TYPE).unwrap_or("")
                )),
            }
        }
    }
    assert!(session.is_active(), "{seen:?}");
    assert_eq!(seen.last().map(String::as_str), Some("8 p1 0"), "{seen:?}");
}
