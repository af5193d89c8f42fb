//! End-to-end tests of venue administration: an admin account's session (and `exchange admin`)
//! against the real server: the kill switch, run-time limits, and who may do what.

mod common;

use common::*;
use engine::Side;
use fix::codec::{self, tag};
use fixclient::{FixClient, Received};
use serde_json::Value;

/// Sends an AdminRequest and returns the AdminResponse (or the reject) to it.
async fn admin(c: &mut FixClient, action: &str, account: Option<&str>, limits: Option<&str>) -> Received {
    c.send(codec::MSG_ADMIN_REQUEST, |e| {
        e.str(tag::ADMIN_REQ_ID, &format!("r-{action}"));
        e.str(tag::ADMIN_ACTION, action);
        if let Some(a) = account {
            e.str(tag::ACCOUNT, a);
        }
        if let Some(l) = limits {
            e.str(tag::ADMIN_LIMITS, l);
        }
    })
    .await
    .unwrap();
    next(c).await
}

fn data(m: &Received) -> Value {
    serde_json::from_str(&m.get(tag::ADMIN_DATA).expect("AdminData")).expect("AdminData is JSON")
}

fn text(m: &Received) -> String {
    m.get(tag::TEXT).unwrap_or_default()
}

#[test]
fn kill_switch_cancels_resting_orders_blocks_new_ones_and_release_restores() {
    let mut v = venue("kill");
    rt().block_on(async {
        let mut alice = v.login("alice").await;
        let mut ops = v.login("admin").await;
        limit(&mut alice, "a1", Side::Buy, 10, "100.00").await;
        check(&next(&mut alice).await, &[(150, "0"), (11, "a1")]);
        limit(&mut alice, "a2", Side::Sell, 5, "105.00").await;
        check(&next(&mut alice).await, &[(150, "0"), (11, "a2")]);

        let m = admin(&mut ops, "kill", Some("alice"), None).await;
        check(&m, &[(35, "U2"), (tag::ADMIN_REQ_ID, "r-kill"), (tag::ADMIN_STATUS, "0")]);
        assert!(text(&m).contains("cancel-all sent for 2 open orders"), "{}", m.text());
        assert_eq!(data(&m)["accounts"][0]["killed"], true);
        // Both resting orders are canceled, unsolicited, naming the cause.
        let mut canceled = Vec::new();
        for _ in 0..2 {
            let m = next(&mut alice).await;
            check(&m, &[(150, "4"), (39, "4"), (151, "0"), (58, "mass_cancel")]);
            canceled.push(m.get(tag::CL_ORD_ID).unwrap());
        }
        canceled.sort();
        assert_eq!(canceled, ["a1", "a2"]);
        // New orders are refused while killed; so is a replace of nothing, cancels pass.
        limit(&mut alice, "a3", Side::Buy, 1, "100.00").await;
        let m = next(&mut alice).await;
        check(&m, &[(150, "8"), (39, "8"), (11, "a3")]);
        assert!(text(&m).starts_with("risk_killed"), "{}", m.text());
        // The bid is gone from the book: bob's sell finds nothing to cross.
        let mut bob = v.login("bob").await;
        bob.send(b"D", |e| {
            fixclient::new_order_fields(e, "b1", "BTC-USD", Side::Sell, 1, Some("90.00"), Some(b'3'), 0)
        })
        .await
        .unwrap();
        check(&next(&mut bob).await, &[(150, "0")]);
        check(&next(&mut bob).await, &[(150, "4"), (14, "0")]);

        let m = admin(&mut ops, "show", Some("alice"), None).await;
        let state = data(&m);
        assert_eq!(state["accounts"][0]["killed"], true);
        assert_eq!(state["accounts"][0]["open_orders"], 0);

        let m = admin(&mut ops, "release", Some("alice"), None).await;
        check(&m, &[(tag::ADMIN_STATUS, "0")]);
        assert_eq!(data(&m)["accounts"][0]["killed"], false);
        limit(&mut alice, "a4", Side::Buy, 1, "100.00").await;
        check(&next(&mut alice).await, &[(150, "0"), (11, "a4")]);
        ops.logout().await.unwrap();
    });

    // The kill switch survives a restart.
    rt().block_on(async {
        let mut ops = v.login("admin").await;
        check(&admin(&mut ops, "kill", Some("carol"), None).await, &[(tag::ADMIN_STATUS, "0")]);
        ops.logout().await.unwrap();
    });
    v.restart();
    rt().block_on(async {
        let mut carol = v.login("carol").await;
        limit(&mut carol, "c1", Side::Buy, 1, "100.00").await;
        let m = next(&mut carol).await;
        assert!(text(&m).starts_with("risk_killed"), "{}", m.text());
        let mut ops = v.login("admin").await;
        check(&admin(&mut ops, "release", Some("carol"), None).await, &[(tag::ADMIN_STATUS, "0")]);
        limit(&mut carol, "c2", Side::Buy, 1, "100.00").await;
        check(&next(&mut carol).await, &[(150, "0"), (11, "c2")]);
    });
}

#[test]
fn limits_change_at_run_time_and_reset_to_the_configuration() {
    let v = venue_with("limits", |c| {
        let alice = c.accounts.iter_mut().find(|a| a.name == "alice").unwrap();
        alice.risk = Some(toml::from_str("order_qty_max = 50").unwrap());
    });
    rt().block_on(async {
        let mut alice = v.login("alice").await;
        let mut ops = v.login("admin").await;
        let m = admin(&mut ops, "show", None, None).await;
        let names: Vec<_> =
            data(&m)["accounts"].as_array().unwrap().iter().map(|a| a["account"].clone()).collect();
        assert_eq!(names, ["alice", "bob", "carol", "dave"], "admins are not listed");
        assert_eq!(data(&m)["accounts"][0]["limits"]["order_qty_max"], 50);

        let m =
            admin(&mut ops, "set", Some("alice"), Some(r#"{"order_qty_max":5,"open_orders_max":1}"#)).await;
        check(&m, &[(tag::ADMIN_STATUS, "0")]);
        assert_eq!(data(&m)["accounts"][0]["limits_from"], "admin");
        limit(&mut alice, "a1", Side::Buy, 6, "100.00").await; // one over the new max
        let m = next(&mut alice).await;
        check(&m, &[(150, "8"), (103, "3")]);
        assert!(text(&m).starts_with("risk_max_qty"), "{}", m.text());
        limit(&mut alice, "a2", Side::Buy, 5, "100.00").await; // exactly the max
        check(&next(&mut alice).await, &[(150, "0")]);
        limit(&mut alice, "a3", Side::Buy, 5, "100.00").await;
        assert!(text(&next(&mut alice).await).starts_with("risk_open_orders"));

        // A bad change is refused and changes nothing.
        let m = admin(&mut ops, "set", Some("alice"), Some(r#"{"order_qty":5}"#)).await;
        check(&m, &[(tag::ADMIN_STATUS, "1")]);
        assert!(text(&m).contains("unknown field `order_qty`"), "{}", m.text());
        let m = admin(&mut ops, "set", Some("alice"), Some("not json")).await;
        check(&m, &[(tag::ADMIN_STATUS, "1")]);
        let m = admin(&mut ops, "kill", Some("mallory"), None).await;
        check(&m, &[(tag::ADMIN_STATUS, "1"), (58, "unknown account mallory")]);
        let m = admin(&mut ops, "explode", Some("alice"), None).await;
        check(&m, &[(35, "3"), (371, "5101"), (373, "5")]);
        let m = admin(&mut ops, "kill", None, None).await;
        check(&m, &[(35, "3"), (371, "1"), (373, "1")]);

        let m = admin(&mut ops, "reset", Some("alice"), None).await;
        check(&m, &[(tag::ADMIN_STATUS, "0")]);
        let account = &data(&m)["accounts"][0];
        assert_eq!(account["limits"]["order_qty_max"], 50);
        assert_eq!(account["limits"].get("open_orders_max"), None);
        assert_eq!(account["limits_from"], "config");
        limit(&mut alice, "a4", Side::Buy, 50, "100.00").await;
        check(&next(&mut alice).await, &[(150, "0"), (11, "a4")]);
        ops.logout().await.unwrap();
    });
}

#[test]
fn admins_do_not_trade_and_traders_do_not_administer() {
    let v = venue("roles");
    rt().block_on(async {
        let mut ops = v.login("admin").await;
        limit(&mut ops, "x1", Side::Buy, 1, "100.00").await;
        check(&next(&mut ops).await, &[(35, "j"), (372, "D"), (380, "6")]);
        let mut bob = v.login("bob").await;
        let m = admin(&mut bob, "kill", Some("alice"), None).await;
        check(&m, &[(35, "j"), (372, "U1"), (380, "6")]);
        // Both sessions live on.
        check(&admin(&mut ops, "show", Some("bob"), None).await, &[(tag::ADMIN_STATUS, "0")]);
        limit(&mut bob, "b1", Side::Buy, 1, "100.00").await;
        check(&next(&mut bob).await, &[(150, "0")]);
    });
}

/// `exchange admin` (the binary) against the running venue.
#[test]
fn admin_command_kills_shows_and_releases() {
    let v = venue("cli");
    let info = &v.server().info;
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_exchange"))
            .args(["admin", "--account", "admin", "--password", "admin"])
            .args(["--addr", &info.quic_addr.to_string(), "--ca", info.cert.to_str().unwrap()])
            .args(args)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.code(), stdout + &String::from_utf8_lossy(&out.stderr))
    };
    let (code, out) = run(&["kill", "dave"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("kill: kill switch engaged"), "{out}");
    let (code, out) = run(&["set", "bob", "order_qty_max=7", "credit_max=1000.5"]);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = run(&["show"]);
    assert_eq!(code, Some(0), "{out}");
    let line = |name: &str| out.lines().find(|l| l.starts_with(name)).unwrap_or_default().to_owned();
    assert!(line("dave ").contains(" yes "), "{out}");
    assert!(line("bob ").contains("credit_max=1000.5 order_qty_max=7 (admin)"), "{out}");
    assert!(line("alice ").ends_with("none (config)"), "{out}");
    let (code, out) = run(&["--json", "show", "dave"]);
    assert_eq!(code, Some(0), "{out}");
    let json: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(json["accounts"][0]["killed"], true);
    // --json also after the action, where people type it.
    let (code, out) = run(&["show", "dave", "--json"]);
    assert_eq!(code, Some(0), "{out}");
    let json: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(json["accounts"][0]["killed"], true);
    let (code, out) = run(&["set", "bob", "order_qty_max=lots"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.starts_with("refused: limits: invalid type"), "{out}");
    let (code, out) = run(&["release", "dave"]);
    assert_eq!(code, Some(0), "{out}");
}
