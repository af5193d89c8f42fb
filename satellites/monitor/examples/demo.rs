//! A synthetic venue for looking at the monitoring pieces before the real stages are wired in:
//! a thread records made-up order flow into a counters file, and the monitoring routes (with
//! the dashboard at `/`) are served on loopback.
//!
//! ```sh
//! cargo run -p monitor --example demo -- 127.0.0.1:9880 /tmp/demo-data
//! # then: http://127.0.0.1:9880/   and   cargo run -- stat --data /tmp/demo-data
//! ```

use std::path::PathBuf;
use std::time::Duration;

use monitor::health::{Health, Probe};
use monitor::http::{router, MonitorState};
use monitor::metrics::*;
use monitor::Registry;

fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:9880".to_owned());
    let data = PathBuf::from(args.next().unwrap_or_else(|| "var-demo".to_owned()));
    let mut registry = Registry::create(&monitor::counters_path(&data)).expect("create the counters file");
    let health = Health::new();
    let recovered = health.register(Probe::Ready, "journal_recovered", false).expect("register");
    health.register(Probe::Ready, "gateway_listening", true).expect("register");
    let state = MonitorState { counters: registry.reader(), health };
    let flow = SyntheticFlow::register(&mut registry);
    std::thread::spawn(move || flow.run());
    recovered.set(true);

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
        println!("dashboard http://{addr}/  metrics http://{addr}/metrics  counters {}", data.display());
        axum::serve(listener, router(state)).await.expect("serve");
    });
}

/// Made-up flow: a few thousand orders a second with bursts, rejects, trades and latencies.
struct SyntheticFlow {
    orders: Vec<monitor::Counter>,
    rejects: Vec<monitor::Counter>,
    trades: monitor::Counter,
    latency: monitor::Histogram,
    sessions: monitor::Gauge,
    lag: monitor::Gauge,
}

impl SyntheticFlow {
    fn register(r: &mut Registry) -> SyntheticFlow {
        let orders = ["limit", "market", "cancel"]
            .iter()
            .map(|t| r.counter(&ORDERS_IN, "gateway", &[("type", t)]).expect("register"))
            .collect();
        let rejects = ["price_band", "rate_limited", "unknown_order"]
            .iter()
            .map(|t| r.counter(&REJECTS, "gateway", &[("reason", t)]).expect("register"))
            .collect();
        SyntheticFlow {
            orders,
            rejects,
            trades: r.counter(&TRADES, "engine", &[]).expect("register"),
            latency: r.histogram(&ORDER_LATENCY, "gateway", &[]).expect("register"),
            sessions: r.gauge(&SESSIONS, "gateway", &[]).expect("register"),
            lag: r.gauge(&JOURNAL_SYNC_LAG, "journal", &[("journal", "commands")]).expect("register"),
        }
    }

    fn run(self) {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for tick in 0u64.. {
            let wave = (tick / 500) % 4; // the rate changes every ~5 s
            for _ in 0..(10 + wave * 10) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                self.orders[(x % 3) as usize].inc();
                if x.is_multiple_of(5) {
                    self.trades.inc();
                }
                if x.is_multiple_of(37) {
                    self.rejects[(x / 37 % 3) as usize].inc();
                }
                self.latency.record_ns(8_000 + (x >> 40) % (20_000 * (wave + 1)));
            }
            self.sessions.set(3 + wave as i64);
            self.lag.set(((x >> 20) % 2_000_000) as i64);
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
