//! Load and latency of the binary market-data feed beside order entry, in one process run:
//! `cargo run --release --example md_binary_load -- [ORDERS] [SUBSCRIBER COUNTS...]`
//! (default `2000 0 10 0 10`: each count in turn, back to back, on a fresh venue).
//!
//! For each subscriber count, a venue (`Server::start`, loopback, rate limits off) with that
//! many binary-feed subscribers of BTC-USD, each reading in its own task; then
//! 1. latency: ORDERS orders one at a time, alternately a buy from alice and a crossing sell
//!    from bob; per order the FIX round trip (send → ExecutionReport 150=0) and, when there are
//!    subscribers, the event-to-subscriber delay (send → the first new orders-channel message of
//!    BTC-USD handed on by subscriber 0's resequencer, from a datagram);
//! 2. throughput: ORDERS orders from each client sent without waiting, timed until every
//!    acknowledgement is back: orders/s.
//!
//! Prints one line per run. The machine is what it is: run it twice and compare ratios within
//! one run.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use engine::Side;
use engine::SymbolId;
use exchange::md_binary::BinaryFeedClient;
use exchange::serve::{ServeConfig, Server};
use fixclient::{new_order_fields, FixClient};
use gateway::server::now_ns;

mod common;
use common::{acked, client_config, shut_down, thread_cpu_ns};

async fn order(c: &mut FixClient, id: &str, side: Side, price: &str) {
    c.send(b"D", |e| new_order_fields(e, id, "BTC-USD", side, 1, Some(price), None, now_ns())).await.unwrap();
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0
}

async fn run(orders: usize, subscribers: usize, round: usize) {
    let dir = std::env::temp_dir().join(format!("md-binary-load-{}-{round}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = ServeConfig::default();
    config.network.quic = "127.0.0.1:0".parse().unwrap();
    config.network.tcp = String::new();
    config.network.http = String::new();
    config.network.md = "127.0.0.1:0".into();
    config.rate_limit.enabled = false;
    let cpu_before = thread_cpu_ns();
    let server = Server::start(&config, Some(&dir)).expect("venue starts");
    let md_addr = server.info.md_addr.unwrap();
    // Arrival times of subscriber 0's new orders-channel messages.
    let arrivals: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let mut readers = Vec::new();
    for i in 0..subscribers {
        let mut client =
            BinaryFeedClient::connect(md_addr, &server.info.cert, "localhost", &["BTC-USD".into()])
                .await
                .expect("subscribes");
        let arrivals = (i == 0).then(|| arrivals.clone());
        readers.push(tokio::spawn(async move {
            let mut seen = 0;
            while client.step().await.is_ok() {
                if let Some(arrivals) = &arrivals {
                    let seq = client.resequencer().symbol_seq(SymbolId(0)).unwrap_or(0);
                    if seq > seen {
                        let now = Instant::now();
                        arrivals.lock().unwrap().extend((seen..seq).map(|_| now));
                        seen = seq;
                    }
                }
            }
        }));
    }
    let mut alice = FixClient::connect(&client_config(&server, "alice")).await.unwrap();
    let mut bob = FixClient::connect(&client_config(&server, "bob")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let (mut rtt_ns, mut md_ns) = (Vec::with_capacity(orders), Vec::with_capacity(orders));
    for i in 0..orders {
        let (c, side) = if i % 2 == 0 { (&mut alice, Side::Buy) } else { (&mut bob, Side::Sell) };
        let id = format!("l{i}");
        let before = arrivals.lock().unwrap().len();
        let t0 = Instant::now();
        order(c, &id, side, "100.00").await;
        acked(c, &id).await;
        rtt_ns.push(t0.elapsed().as_nanos() as u64);
        if subscribers > 0 {
            let deadline = Instant::now() + Duration::from_secs(2);
            loop {
                let at = arrivals.lock().unwrap().get(before).copied();
                if let Some(at) = at {
                    md_ns.push(at.saturating_duration_since(t0).as_nanos() as u64);
                    break;
                }
                if Instant::now() > deadline {
                    break;
                }
                tokio::time::sleep(Duration::from_micros(50)).await;
            }
        }
    }
    rtt_ns.sort_unstable();
    md_ns.sort_unstable();

    let t0 = Instant::now();
    for i in 0..orders {
        order(&mut alice, &format!("ta{i}"), Side::Buy, "99.00").await;
        order(&mut bob, &format!("tb{i}"), Side::Sell, "99.00").await;
    }
    acked(&mut alice, &format!("ta{}", orders - 1)).await;
    acked(&mut bob, &format!("tb{}", orders - 1)).await;
    let throughput = (2 * orders) as f64 / t0.elapsed().as_secs_f64();

    println!(
        "subscribers {subscribers:>3}: order round trip p50 {:.1} µs p99 {:.1} µs | event-to-subscriber p50 {:.1} µs p99 {:.1} µs ({} samples) | throughput {:.0} orders/s",
        percentile(&rtt_ns, 0.5),
        percentile(&rtt_ns, 0.99),
        percentile(&md_ns, 0.5),
        percentile(&md_ns, 0.99),
        md_ns.len(),
        throughput
    );
    // Where the CPU went during the run (ms): the venue's threads are new each run; the
    // client side (load generator and subscribers) is the tokio workers.
    let cpu: Vec<String> = thread_cpu_ns()
        .into_iter()
        .map(|(name, ns)| (ns.saturating_sub(cpu_before.get(&name).copied().unwrap_or(0)), name))
        .filter(|(ns, _)| *ns >= 1_000_000)
        .map(|(ns, name)| format!("{name} {}", ns / 1_000_000))
        .collect();
    println!("    cpu ms by thread: {}", cpu.join(", "));
    shut_down(readers, [alice, bob], server, &dir);
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().expect("numbers")).collect();
    let orders = args.first().copied().unwrap_or(2000);
    let counts = if args.len() > 1 { args[1..].to_vec() } else { vec![0, 10, 0, 10] };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    for (round, &subscribers) in counts.iter().enumerate() {
        runtime.block_on(run(orders, subscribers, round));
    }
}
