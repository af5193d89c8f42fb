//! The dashboard in a real browser: headless Chromium loads `/` from a server whose counters a
//! writer thread keeps changing, and the page must have drawn its charts from several scrapes
//! and seen the order count move between two of them. Saves a screenshot to
//! `target/monitor-dashboard.png`. Skipped (and says so) when Chromium is not installed
//! (`apt-get install chromium`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use monitor::health::{Health, Probe};
use monitor::http::{router, MonitorState};
use monitor::metrics::{ORDERS_IN, ORDER_LATENCY, REJECTS, SESSIONS, TRADES};
use monitor::Registry;

/// Bound on one browser run: a stuck browser fails the test instead of hanging it.
const BROWSER_RUN_MAX: Duration = Duration::from_secs(90);

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|p| p.is_file())
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn serve(state: MonitorState) -> SocketAddr {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        runtime.block_on(async { axum::serve(listener, router(state)).await.unwrap() })
    });
    addr
}

/// Runs headless Chromium with `extra` flags on `url`, with a fresh profile and a time bound.
fn browse(chrome: &Path, profile: &Path, extra: &[String], url: &str) -> Output {
    let mut child = Command::new(chrome)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        // Polls every second of page time; 6 s of virtual time gives about six scrapes.
        .arg("--virtual-time-budget=6000")
        .args(extra)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > BROWSER_RUN_MAX {
            let _ = child.kill();
            panic!("chromium did not finish within {BROWSER_RUN_MAX:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// The value of `data-NAME="..."` in the dumped DOM.
fn data_attribute<'a>(dom: &'a str, name: &str) -> Option<&'a str> {
    let start = dom.find(&format!("data-{name}=\""))? + name.len() + 7;
    dom[start..].split('"').next()
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

    let profile = TempDir(std::env::temp_dir().join(format!("monitor-chromium-{}", std::process::id())));
    let url = format!("http://{addr}/");
    let dump = browse(&chrome, &profile.0, &["--dump-dom".to_owned()], &url);
    let dom = String::from_utf8_lossy(&dump.stdout).into_owned();
    let screenshot = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/monitor-dashboard.png");
    let shot = browse(
        &chrome,
        &profile.0,
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
