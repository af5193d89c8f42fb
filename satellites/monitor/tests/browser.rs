//! The dashboard in a real browser: headless Chromium loads `/` from a server whose counters a
//! writer thread keeps changing, and the page must have drawn its charts from several scrapes
//! and seen the order count move between two of them. Saves a screenshot to
//! `target/monitor-dashboard.png`. Skipped (and says so) when Chromium is not installed
//! (`apt-get install chromium`).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use monitor::browser::{browse, chromium, data_attribute, Profile};
use monitor::health::{Health, Probe};
use monitor::http::{router, MonitorState};
use monitor::metrics::{ORDERS_IN, ORDER_LATENCY, REJECTS, SESSIONS, TRADES};
use monitor::Registry;

fn serve(state: MonitorState) -> SocketAddr {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        runtime.block_on(async { axum::serve(listener, router(state)).await.unwrap() })
    });
    addr
}

#[test]
fn dashboard_draws_live_changing_numbers_in_chromium() {
    let Some(chrome) = chromium() else {
        eprintln!("skipped: chromium not installed (apt-get install chromium)");
        return;
    };
    let mut registry = Registry::anonymous().unwrap();
    let orders = registry.counter(&ORDERS_IN, "gateway", &[("type", "limit")]).unwrap();
    let trades = registry.counter(&TRADES, "engine", &[]).unwrap();
    let rejects = registry.counter(&REJECTS, "gateway", &[("reason", "price_band")]).unwrap();
    let latency = registry.histogram(&ORDER_LATENCY, "gateway", &[]).unwrap();
    let sessions = registry.gauge(&SESSIONS, "gateway", &[]).unwrap();
    let health = Health::new();
    health.register(Probe::Ready, "journal_recovered", true).unwrap();
    let addr = serve(MonitorState { counters: registry.reader(), health });

    let stop = Arc::new(AtomicBool::new(false));
    let writer_stop = Arc::clone(&stop);
    let writer = std::thread::spawn(move || {
        let mut i = 0u64;
        sessions.set(2);
        while !writer_stop.load(Ordering::Relaxed) {
            i += 1;
            orders.add(3);
            if i.is_multiple_of(3) {
                trades.inc();
            }
            if i.is_multiple_of(10) {
                rejects.inc();
            }
            latency.record_ns(5_000 + (i * 7_919) % 60_000);
            std::thread::sleep(Duration::from_micros(200));
        }
    });

    let profile = Profile::new("monitor");
    let url = format!("http://{addr}/");
    let dump = browse(&chrome, &profile, &["--dump-dom".to_owned()], &url);
    let dom = String::from_utf8_lossy(&dump.stdout).into_owned();
    let screenshot = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/monitor-dashboard.png");
    let shot = browse(
        &chrome,
        &profile,
        &[format!("--screenshot={}", screenshot.display()), "--window-size=1280,1000".to_owned()],
        &url,
    );
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();

    assert!(dump.status.success(), "chromium --dump-dom failed:\n{}", String::from_utf8_lossy(&dump.stderr));
    let polls: u32 = data_attribute(&dom, "polls").and_then(|p| p.parse().ok()).unwrap_or(0);
    assert!(polls >= 3, "the page drew {polls} scrapes:\n{dom}");
    let rate: f64 = data_attribute(&dom, "orders-rate").and_then(|r| r.parse().ok()).unwrap_or(0.0);
    assert!(rate > 0.0, "the order count did not move between scrapes:\n{dom}");
    // Five charts, each a uPlot canvas.
    assert!(dom.matches("<canvas").count() >= 5, "charts missing:\n{dom}");
    assert!(dom.contains("readyz/journal_recovered"), "health checks missing:\n{dom}");
    assert!(
        shot.status.success() && screenshot.is_file(),
        "no screenshot:\n{}",
        String::from_utf8_lossy(&shot.stderr)
    );
    eprintln!("screenshot: {}", screenshot.display());
}
