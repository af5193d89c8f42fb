//! The dashboard of the real `serve` in a real browser: headless Chromium loads `/` while two
//! FIX clients trade through the venue, and the page must have drawn its charts from several
//! scrapes, and a later load must show more orders than the first. Saves a screenshot to
//! `target/serve-dashboard.png`. Skipped (and says so) when Chromium is not installed
//! (`apt-get install chromium`; `.ci/run` installs it).

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use engine::Side;
use fixclient::FixClient;
use monitor::browser::{browse, chromium, data_attribute, Profile};

/// The order count the status line shows ("orders in N").
fn orders_shown(dom: &str) -> Option<u64> {
    let start = dom.find("orders in ")? + "orders in ".len();
    dom[start..].split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

#[test]
fn the_served_dashboard_shows_live_order_flow_in_chromium() {
    let Some(chrome) = chromium() else {
        println!("skipped: chromium not installed (apt-get install chromium)");
        return;
    };
    let v = venue("dashboard");
    let http = v.server().info.http_addr.expect("an HTTP endpoint");
    let (alice_config, bob_config) = (v.config("alice", "alice", false), v.config("bob", "bob", false));
    let stop = Arc::new(AtomicBool::new(false));
    let flow_stop = Arc::clone(&stop);
    let traded = Arc::new(AtomicBool::new(false));
    let flow_traded = Arc::clone(&traded);
    // Order flow until told to stop: alice rests a bid, bob's market sell takes it.
    let flow = std::thread::spawn(move || {
        rt().block_on(async {
            let mut alice = FixClient::connect(&alice_config).await.expect("logon");
            let mut bob = FixClient::connect(&bob_config).await.expect("logon");
            // Two levels that stay (bob's market sells take the better bid each round): the
            // depth panel has something to show.
            limit(&mut alice, "rest-bid", Side::Buy, 5, "99.00").await;
            let _ = next(&mut alice).await;
            limit(&mut bob, "rest-ask", Side::Sell, 7, "105.00").await;
            let _ = next(&mut bob).await;
            let mut i = 0u64;
            while !flow_stop.load(Ordering::Relaxed) {
                i += 1;
                limit(&mut alice, &format!("a{i}"), Side::Buy, 1, "100.50").await;
                let _ = next(&mut alice).await;
                market(&mut bob, &format!("b{i}"), Side::Sell, 1).await;
                let _ = next(&mut bob).await;
                let _ = next(&mut bob).await;
                let _ = next(&mut alice).await;
                flow_traded.store(true, Ordering::Relaxed);
            }
            alice.logout().await.unwrap();
            bob.logout().await.unwrap();
            i
        })
    });

    let started = Instant::now();
    while !traded.load(Ordering::Relaxed) {
        assert!(started.elapsed() < WAIT, "no trade within {WAIT:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    let profile = Profile::new("serve");
    let url = format!("http://{http}/");
    let dump = browse(&chrome, &profile, &["--dump-dom".to_owned()], &url);
    let dom = String::from_utf8_lossy(&dump.stdout).into_owned();
    let screenshot = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/serve-dashboard.png");
    let shot = browse(
        &chrome,
        &profile,
        &[format!("--screenshot={}", screenshot.display()), "--window-size=1280,1000".to_owned()],
        &url,
    );
    let later = browse(&chrome, &profile, &["--dump-dom".to_owned()], &url);
    let later = String::from_utf8_lossy(&later.stdout).into_owned();
    stop.store(true, Ordering::Relaxed);
    let rounds = flow.join().unwrap();
    assert!(rounds > 0, "no order flowed");

    assert!(dump.status.success(), "chromium --dump-dom failed:\n{}", String::from_utf8_lossy(&dump.stderr));
    let polls: u32 = data_attribute(&dom, "polls").and_then(|p| p.parse().ok()).unwrap_or(0);
    assert!(polls >= 3, "the page drew {polls} scrapes:\n{dom}");
    let (first, second) = (orders_shown(&dom), orders_shown(&later));
    assert!(first.is_some_and(|f| f > 0), "no orders shown:\n{dom}");
    assert!(
        second > first,
        "the order count did not move between two loads ({first:?}, {second:?}):\n{later}"
    );
    assert!(dom.matches("<canvas").count() >= 5, "charts missing:\n{dom}");
    assert!(dom.contains("readyz/gateway_listening"), "health checks missing:\n{dom}");
    // The book depth panel, from /ws level2: at least the two levels that stay.
    let levels: u32 = data_attribute(&later, "depth-levels").and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(levels >= 2, "the depth panel shows {levels} levels:\n{later}");
    assert!(later.contains("99.00") && later.contains("105.00"), "resting levels not shown:\n{later}");
    assert!(
        shot.status.success() && screenshot.is_file(),
        "no screenshot:\n{}",
        String::from_utf8_lossy(&shot.stderr)
    );
    println!("screenshot: {}", screenshot.display());
}
