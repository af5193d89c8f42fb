//! Orders keep their owners across reconnects and restarts: persistent FIX sessions
//! (sequence numbers continue, missed reports come again through ResendRequest with
//! PossDupFlag), order state rebuilt from the journal, cancel-on-disconnect after a crash.

mod common;

use std::time::Duration;

use common::*;
use engine::Side;
use fixclient::{new_order_fields, FixClient};
use gateway::server::now_ns;

const QUIET: Duration = Duration::from_millis(400);

/// A resting order fills while its owner is away; on reconnect the owner gets the fill through
/// ResendRequest, with the fields of the original and PossDupFlag/OrigSendingTime.
fn fill_while_away(tcp: bool) {
    let v = venue(if tcp { "away-tcp" } else { "away-quic" });
    rt().block_on(async {
        let mut alice = if tcp { v.login_tcp("alice").await } else { v.login("alice").await };
        limit(&mut alice, "a1", Side::Buy, 5, "100.00").await;
        check(&next(&mut alice).await, &[(150, "0"), (11, "a1")]);
        let state = alice.logout_keeping_state().await.unwrap();
        let mut bob = v.login("bob").await;
        limit(&mut bob, "b1", Side::Sell, 3, "100.00").await;
        let bob_reports = drain(&mut bob, QUIET).await;
        assert!(bob_reports.iter().any(|m| m.get(150).as_deref() == Some("F")), "bob filled");
        let mut alice = v.resume("alice", tcp, state).await;
        let got = drain(&mut alice, QUIET).await;
        let fills: Vec<_> = got.iter().filter(|m| m.get(150).as_deref() == Some("F")).collect();
        assert_eq!(
            fills.len(),
            1,
            "one fill, delivered once: {:?}",
            got.iter().map(|m| m.text()).collect::<Vec<_>>()
        );
        let fill = fills[0];
        check(
            fill,
            &[(35, "8"), (11, "a1"), (39, "1"), (14, "3"), (151, "2"), (31, "100.00"), (32, "3"), (43, "Y")],
        );
        assert!(fill.get(122).is_some(), "OrigSendingTime on a resent report: {}", fill.text());
        // The session goes on with continued numbers: a new order is answered live.
        limit(&mut alice, "a2", Side::Buy, 1, "99.00").await;
        let live = next(&mut alice).await;
        check(&live, &[(150, "0"), (11, "a2")]);
        assert_eq!(live.get(43), None, "a live report is not a possible duplicate");
    });
}

#[test]
fn a_fill_while_away_is_resent_on_reconnect_over_tcp() {
    fill_while_away(true);
}

#[test]
fn a_fill_while_away_is_resent_on_reconnect_over_quic() {
    fill_while_away(false);
}

/// After a clean restart, alice's resting order still belongs to her: its fill, replace and
/// cancel are all reported to her, with the right CumQty and ClOrdID chain.
fn restart_between_order_and_fill(tcp: bool) {
    let mut v = venue(if tcp { "restart-tcp" } else { "restart-quic" });
    let rt = rt();
    let state = rt.block_on(async {
        let mut alice = if tcp { v.login_tcp("alice").await } else { v.login("alice").await };
        limit(&mut alice, "a1", Side::Buy, 10, "100.00").await;
        check(&next(&mut alice).await, &[(150, "0"), (11, "a1")]);
        alice.logout_keeping_state().await.unwrap()
    });
    v.restart();
    rt.block_on(async {
        let mut alice = v.resume("alice", tcp, state).await;
        assert!(drain(&mut alice, QUIET).await.is_empty(), "nothing was missed");
        let mut bob = v.login("bob").await;
        limit(&mut bob, "b1", Side::Sell, 4, "100.00").await;
        let fill = next(&mut alice).await;
        check(&fill, &[(150, "F"), (11, "a1"), (14, "4"), (151, "6"), (39, "1"), (6, "100.00")]);
        alice
            .send(b"G", |e| {
                e.str(11, "a2");
                e.str(41, "a1");
                e.str(55, "BTC-USD");
                e.char(54, b'1');
                e.u64(38, 8);
                e.char(40, b'2');
                e.str(44, "100.00");
                e.time(60, now_ns());
            })
            .await
            .unwrap();
        check(&next(&mut alice).await, &[(150, "5"), (11, "a2"), (41, "a1"), (14, "4"), (151, "4")]);
        alice
            .send(b"F", |e| {
                e.str(11, "a3");
                e.str(41, "a2");
                e.str(55, "BTC-USD");
                e.char(54, b'1');
                e.time(60, now_ns());
            })
            .await
            .unwrap();
        check(&next(&mut alice).await, &[(150, "4"), (11, "a3"), (41, "a2"), (14, "4"), (151, "0")]);
    });
}

#[test]
fn a_clean_restart_keeps_every_order_reachable_by_its_owner_over_tcp() {
    restart_between_order_and_fill(true);
}

#[test]
fn a_clean_restart_keeps_every_order_reachable_by_its_owner_over_quic() {
    restart_between_order_and_fill(false);
}

#[test]
fn reset_seq_num_flag_still_starts_again_and_too_low_is_refused() {
    let v = venue("reset");
    rt().block_on(async {
        let mut alice = v.login_tcp("alice").await;
        limit(&mut alice, "a1", Side::Buy, 1, "1.00").await;
        check(&next(&mut alice).await, &[(150, "0")]);
        let mut state = alice.logout_keeping_state().await.unwrap();
        // A Logon below the number the venue expects, without a reset, is refused with the reason.
        state.out_seq_next = 1;
        let err = FixClient::connect_resuming(&v.config("alice", "alice", true), Some(state))
            .await
            .expect_err("too low");
        assert!(err.to_string().contains("MsgSeqNum too low"), "{err}");
        // ResetSeqNumFlag starts both sides from 1 (the test client's default Logon).
        let mut alice = v.login_tcp("alice").await;
        assert_eq!(alice.session().in_seq_next(), 2, "the venue's Logon reply was its message 1");
        limit(&mut alice, "a2", Side::Buy, 1, "1.00").await;
        check(&next(&mut alice).await, &[(150, "0"), (11, "a2"), (34, "2")]);
        let _ = new_order_fields;
    });
}

#[test]
fn order_status_mass_status_and_mass_cancel_answer_every_request() {
    let v = venue("status");
    rt().block_on(async {
        let mut alice = v.login_tcp("alice").await;
        limit(&mut alice, "a1", Side::Buy, 5, "100.00").await;
        check(&next(&mut alice).await, &[(150, "0")]);
        limit(&mut alice, "a2", Side::Buy, 2, "99.00").await;
        check(&next(&mut alice).await, &[(150, "0")]);
        let mut bob = v.login_tcp("bob").await;
        limit(&mut bob, "b1", Side::Sell, 2, "100.00").await;
        check(&next(&mut alice).await, &[(150, "F"), (11, "a1")]);
        assert_eq!(drain(&mut bob, QUIET).await.len(), 2, "bob: accepted, filled");
        let status = |id: &'static str, req: &'static str| {
            move |e: &mut fix::codec::Encoder| {
                e.str(11, id);
                e.str(790, req);
                e.str(55, "BTC-USD");
                e.char(54, b'1');
            }
        };
        alice.send(b"H", status("a1", "s1")).await.unwrap();
        check(
            &next(&mut alice).await,
            &[(150, "I"), (39, "1"), (11, "a1"), (14, "2"), (151, "3"), (790, "s1")],
        );
        // Another account's order is an unknown order: never leaked.
        bob.send(b"H", status("a1", "s2")).await.unwrap();
        check(&next(&mut bob).await, &[(150, "I"), (39, "8"), (103, "5"), (790, "s2")]);
        alice
            .send(b"AF", |e| {
                e.str(584, "m1");
                e.char(585, b'7');
            })
            .await
            .unwrap();
        let first = next(&mut alice).await;
        let second = next(&mut alice).await;
        check(&first, &[(150, "I"), (584, "m1"), (911, "2"), (912, "N")]);
        check(&second, &[(150, "I"), (584, "m1"), (911, "2"), (912, "Y")]);
        alice
            .send(b"q", |e| {
                e.str(11, "mc1");
                e.char(530, b'7');
                e.time(60, now_ns());
            })
            .await
            .unwrap();
        let got = drain(&mut alice, QUIET).await;
        let cancels = got.iter().filter(|m| m.get(150).as_deref() == Some("4")).count();
        assert_eq!(cancels, 2, "{:?}", got.iter().map(|m| m.text()).collect::<Vec<_>>());
        let report = got.iter().find(|m| m.msg_type() == "r").expect("an OrderMassCancelReport");
        check(report, &[(11, "mc1"), (530, "7"), (531, "7"), (533, "2")]);
        // A finished order still answers its status.
        alice.send(b"H", status("a2", "s3")).await.unwrap();
        check(&next(&mut alice).await, &[(150, "I"), (39, "4"), (11, "a2"), (151, "0")]);
        // A bad MassCancelRequestType is refused with the tag named.
        alice
            .send(b"q", |e| {
                e.str(11, "mc2");
                e.char(530, b'9');
                e.time(60, now_ns());
            })
            .await
            .unwrap();
        check(&next(&mut alice).await, &[(35, "3"), (371, "530")]);
    });
}

#[test]
fn a_bad_session_reset_time_is_refused_with_the_field_named() {
    for bad in ["24:00:00", "9:00:00", "09:60:00", "noon", "09:00"] {
        let mut config = exchange::serve::ServeConfig::default();
        config.session.reset_time = bad.into();
        let dir = std::env::temp_dir().join(format!("exchange-reset-time-{}", std::process::id()));
        let err = exchange::serve::Server::start(&config, Some(&dir)).expect_err(bad).to_string();
        assert!(err.contains("session.reset_time") && err.contains(bad), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn a_drop_copy_session_receives_the_reports_of_the_accounts_it_watches_and_cannot_trade() {
    let v = venue_with("dropcopy", |c| {
        let carol = c.accounts.iter_mut().find(|a| a.name == "carol").unwrap();
        carol.drop_copy = vec!["alice".into()];
    });
    rt().block_on(async {
        let mut carol = v.login_tcp("carol").await;
        let mut alice = v.login_tcp("alice").await;
        let mut bob = v.login_tcp("bob").await;
        limit(&mut alice, "a1", Side::Buy, 2, "100.00").await;
        limit(&mut bob, "b1", Side::Sell, 2, "100.00").await;
        let copies = drain(&mut carol, QUIET).await;
        let kinds: Vec<_> = copies.iter().map(|m| (m.get(11).unwrap(), m.get(150).unwrap())).collect();
        assert_eq!(kinds, [("a1".to_string(), "0".to_string()), ("a1".to_string(), "F".to_string())]);
        assert!(copies.iter().all(|m| m.get(56).as_deref() == Some("carol")), "sent on carol's session");
        limit(&mut carol, "c1", Side::Buy, 1, "1.00").await;
        check(&next(&mut carol).await, &[(35, "j"), (380, "6"), (58, "drop-copy sessions do not trade")]);
        assert_eq!(drain(&mut bob, QUIET).await.len(), 2);
        assert_eq!(drain(&mut alice, QUIET).await.len(), 2);
    });
}

#[test]
fn a_drop_copy_of_an_unknown_account_is_refused_at_start() {
    let mut config = exchange::serve::ServeConfig::default();
    config.accounts[2].drop_copy = vec!["nobody".into()];
    let dir = std::env::temp_dir().join(format!("exchange-dropcopy-bad-{}", std::process::id()));
    let err = exchange::serve::Server::start(&config, Some(&dir)).expect_err("refused").to_string();
    assert!(err.contains("drop_copy") && err.contains("nobody"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
