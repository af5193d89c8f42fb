//! The routes served on loopback and asked by a real HTTP client.

use std::net::SocketAddr;

use monitor::health::{Health, Probe};
use monitor::http::{router, MonitorState};
use monitor::metrics::{ORDERS_IN, STAGE_LATENCY};
use monitor::Registry;

/// Serves the router on a loopback port on a runtime thread; returns the address. The runtime
/// (and the server) goes away when the test process ends.
fn serve(state: MonitorState) -> SocketAddr {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        runtime.block_on(async { axum::serve(listener, router(state)).await.unwrap() })
    });
    addr
}

/// Status and body; ureq reports 4xx/5xx as errors that still carry the response.
fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let response = match ureq::get(&format!("http://{addr}{path}")).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("GET {path}: {e}"),
    };
    let status = response.status();
    let content_type = response.header("content-type").unwrap_or("").to_owned();
    (status, content_type, response.into_string().unwrap())
}

#[test]
fn metrics_livez_and_readyz_over_http() {
    let mut registry = Registry::anonymous().unwrap();
    let orders = registry.counter(&ORDERS_IN, "gateway", &[("type", "limit")]).unwrap();
    let decode = registry.histogram(&STAGE_LATENCY, "gateway", &[("stage", "decode")]).unwrap();
    let health = Health::new();
    let recovered = health.register(Probe::Ready, "journal_recovered", false).unwrap();
    let listening = health.register(Probe::Ready, "gateway_listening", true).unwrap();
    let addr = serve(MonitorState { counters: registry.reader(), health: health.clone() });

    orders.add(5);
    decode.record_ns(2_000);
    let (status, content_type, body) = get(addr, "/metrics");
    assert_eq!(status, 200);
    assert_eq!(content_type, monitor::prometheus::CONTENT_TYPE);
    assert!(body.contains("exchange_orders_in_total{type=\"limit\"} 5\n"), "{body}");
    assert!(body.contains("exchange_stage_latency_seconds_count{stage=\"decode\"} 1\n"), "{body}");
    assert!(
        body.contains("exchange_health_check{check=\"journal_recovered\",probe=\"readyz\"} 0\n"),
        "{body}"
    );
    orders.inc();
    assert!(get(addr, "/metrics").2.contains("exchange_orders_in_total{type=\"limit\"} 6\n"));

    assert_eq!(get(addr, "/livez"), (200, "text/plain; charset=utf-8".into(), "ok\n".into()));
    let (status, _, body) = get(addr, "/readyz");
    assert_eq!(status, 503);
    assert_eq!(body, "[-]journal_recovered failed\n[+]gateway_listening ok\nreadyz check failed\n");

    recovered.set(true);
    assert_eq!(get(addr, "/readyz").0, 200);
    assert_eq!(get(addr, "/readyz").2, "ok\n");
    let (status, _, body) = get(addr, "/readyz?verbose");
    assert_eq!(status, 200);
    assert_eq!(body, "[+]journal_recovered ok\n[+]gateway_listening ok\nreadyz check passed\n");
    listening.set(false);
    assert_eq!(get(addr, "/readyz?verbose=1").0, 503);
    assert_eq!(get(addr, "/livez?verbose").2, "livez check passed\n");
    assert_eq!(get(addr, "/nothing").0, 404);
}

#[test]
fn the_dashboard_and_its_vendored_assets_are_served() {
    let registry = Registry::anonymous().unwrap();
    let addr = serve(MonitorState { counters: registry.reader(), health: Health::new() });
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboard");
    let (status, content_type, page) = get(addr, "/");
    assert_eq!((status, content_type.as_str()), (200, "text/html; charset=utf-8"));
    for (path, file, kind) in [
        ("/dashboard/dashboard.js", "dashboard.js", "text/javascript; charset=utf-8"),
        ("/dashboard/uPlot.iife.min.js", "vendor/uplot/uPlot.iife.min.js", "text/javascript; charset=utf-8"),
        ("/dashboard/uPlot.min.css", "vendor/uplot/uPlot.min.css", "text/css; charset=utf-8"),
    ] {
        assert!(page.contains(&format!("\"{path}\"")), "the page does not load {path}");
        let (status, content_type, body) = get(addr, path);
        assert_eq!((status, content_type.as_str()), (200, kind), "{path}");
        assert_eq!(body, std::fs::read_to_string(dir.join(file)).unwrap(), "{path}");
    }
    // No CDN: everything the page loads comes from this server.
    assert!(!page.contains("http://") && !page.contains("https://"));
}
