//! The venue's CPU time per order with and without market-data subscribers, in one run:
//! `cargo run --release --example md_cpu_per_order -- [ORDERS] [ROUNDS]` (default 5000 3).
//!
//! Wall-clock throughput on a shared 2-vCPU machine says more about the neighbours than about
//! the venue (the load generator, the subscribers and the venue share the cores). CPU time does
//! not depend on who else runs: each round runs, back to back, a fresh venue (`Server::start`,
//! loopback, rate limits off) with 0 subscribers, with 10 FIX market-data sessions (35=V, full
//! book, bids, offers and trades of BTC-USD, over QUIC) and with 10 binary-feed subscribers of
//! BTC-USD (and, to tell the sessions' own cost from their market data's, with 10 FIX sessions
//! logged on that subscribe to nothing); alice and bob then send ORDERS orders each without waiting (prices that rest and
//! cross), and once every acknowledgement is back and the subscribers have caught up, the
//! example reads each venue thread's CPU clock (`clock_gettime` on the thread's CPU-time clock,
//! nanoseconds) and prints CPU-µs per order: the whole venue, its `gateway` thread (FIX sessions
//! and the FIX market-data desk), `router`, `marketdata`, `md-quic`, and the client side (tokio
//! workers: the two order sessions and the subscribers, not the venue). Also the load average
//! and the steal over the run, from /proc.

use std::time::{Duration, Instant};

use engine::Side;
use exchange::md_binary::BinaryFeedClient;
use exchange::serve::{ServeConfig, Server};
use fixclient::{new_order_fields, FixClient};
use gateway::server::now_ns;

mod common;
use common::{acked, client_config, shut_down, thread_cpu_ns};

/// The kinds of subscribers a run has.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Subscribers {
    None,
    /// FIX sessions logged on that subscribe to nothing: what connected sessions cost alone.
    FixIdle(usize),
    Fix(usize),
    Binary(usize),
}

fn steal() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let cpu: Vec<u64> =
        stat.lines().next().unwrap_or("").split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    (cpu.get(7).copied().unwrap_or(0), cpu.iter().sum())
}

fn load1() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split(' ').next().unwrap_or("?").to_owned()
}

async fn run(orders: usize, subscribers: Subscribers, round: usize) {
    let dir = std::env::temp_dir().join(format!("md-cpu-{}-{round}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = ServeConfig::default();
    config.network.quic = "127.0.0.1:0".parse().unwrap();
    config.network.tcp = String::new();
    config.network.http = String::new();
    config.network.md = "127.0.0.1:0".into();
    config.rate_limit.enabled = false;
    for i in 0..10 {
        let mut watcher = config.accounts[0].clone();
        watcher.name = format!("md{i}");
        watcher.password = Some(format!("md{i}"));
        watcher.market_data_only = true;
        config.accounts.push(watcher);
    }
    let server = Server::start(&config, Some(&dir)).expect("venue starts");
    let mut readers = Vec::new();
    match subscribers {
        Subscribers::None => {}
        Subscribers::FixIdle(n) => {
            for i in 0..n {
                let mut c = FixClient::connect(&client_config(&server, &format!("md{i}"))).await.unwrap();
                readers.push(tokio::spawn(
                    async move { while c.recv(Duration::from_secs(60)).await.is_ok() {} },
                ));
            }
        }
        Subscribers::Fix(n) => {
            for i in 0..n {
                let mut c = FixClient::connect(&client_config(&server, &format!("md{i}"))).await.unwrap();
                c.send(b"V", |e| {
                    e.str(262, "all");
                    e.str(263, "1");
                    e.str(264, "0");
                    e.u64(267, 3);
                    for t in ["0", "1", "2"] {
                        e.str(269, t);
                    }
                    e.u64(146, 1);
                    e.str(55, "BTC-USD");
                })
                .await
                .unwrap();
                readers.push(tokio::spawn(async move {
                    while let Ok(m) = c.recv(Duration::from_secs(60)).await {
                        assert!(m.is_none_or(|m| m.msg_type() != "Y"), "subscription refused");
                    }
                }));
            }
        }
        Subscribers::Binary(n) => {
            let md_addr = server.info.md_addr.unwrap();
            for _ in 0..n {
                let mut client =
                    BinaryFeedClient::connect(md_addr, &server.info.cert, "localhost", &["BTC-USD".into()])
                        .await
                        .expect("subscribes");
                readers.push(tokio::spawn(async move { while client.step().await.is_ok() {} }));
            }
        }
    }
    let mut alice = FixClient::connect(&client_config(&server, "alice")).await.unwrap();
    let mut bob = FixClient::connect(&client_config(&server, "bob")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (cpu0, steal0, load) = (thread_cpu_ns(), steal(), load1());
    let t0 = Instant::now();
    for i in 0..orders {
        // Bids 99.96–100.00 and offers 99.98–100.02: some rest, some cross.
        let bid = format!("{:.2}", 100.00 - (i % 5) as f64 * 0.01);
        let ask = format!("{:.2}", 99.98 + (i % 5) as f64 * 0.01);
        alice
            .send(b"D", |e| {
                new_order_fields(e, &format!("a{i}"), "BTC-USD", Side::Buy, 1, Some(&bid), None, now_ns())
            })
            .await
            .unwrap();
        bob.send(b"D", |e| {
            new_order_fields(e, &format!("b{i}"), "BTC-USD", Side::Sell, 1, Some(&ask), None, now_ns())
        })
        .await
        .unwrap();
    }
    acked(&mut alice, &format!("a{}", orders - 1)).await;
    acked(&mut bob, &format!("b{}", orders - 1)).await;
    let wall = t0.elapsed();
    // The market-data threads and the subscribers finish the last events; idle threads park.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (cpu1, steal1) = (thread_cpu_ns(), steal());

    let n = (2 * orders) as f64;
    let used = |name: &str| -> f64 {
        let ns = cpu1.get(name).copied().unwrap_or(0).saturating_sub(cpu0.get(name).copied().unwrap_or(0));
        ns as f64 / 1_000.0 / n
    };
    // The client side: the tokio workers and the main thread, which drives the orders'
    // future (`block_on`); thread names are cut at 15 bytes.
    let client = |k: &str| k.starts_with("tokio-") || k.starts_with("md_cpu_per_ord");
    let client_side: f64 = cpu1.keys().filter(|k| client(k)).map(|k| used(k)).sum();
    let venue: f64 = cpu1.keys().filter(|k| !client(k)).map(|k| used(k)).sum();
    let others: Vec<String> = cpu1
        .keys()
        .filter(|k| !client(k))
        .filter(|k| !["gateway", "router", "marketdata", "md-quic"].contains(&k.as_str()))
        .filter(|k| used(k) >= 0.05)
        .map(|k| format!("{k} {:.2}", used(k)))
        .collect();
    let steal_pct = 100.0 * (steal1.0 - steal0.0) as f64 / (steal1.1 - steal0.1).max(1) as f64;
    println!(
        "round {round} {:<10} venue {:6.2} µs/order | gateway {:5.2} router {:5.2} marketdata {:5.2} md-quic {:5.2} | others: {} | client side {:6.2} | {:>7.0} orders/s wall | load1 {load} steal {steal_pct:.1}%",
        match subscribers {
            Subscribers::None => "none".to_owned(),
            Subscribers::FixIdle(n) => format!("fix idle x{n}"),
            Subscribers::Fix(n) => format!("fix x{n}"),
            Subscribers::Binary(n) => format!("binary x{n}"),
        },
        venue,
        used("gateway"),
        used("router"),
        used("marketdata"),
        used("md-quic"),
        if others.is_empty() { "-".to_owned() } else { others.join(", ") },
        client_side,
        n / wall.as_secs_f64(),
    );
    shut_down(readers, [alice, bob], server, &dir);
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().expect("numbers")).collect();
    let orders = args.first().copied().unwrap_or(5000);
    let rounds = args.get(1).copied().unwrap_or(3);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    for round in 0..rounds {
        for subscribers in
            [Subscribers::None, Subscribers::FixIdle(10), Subscribers::Fix(10), Subscribers::Binary(10)]
        {
            runtime.block_on(run(orders, subscribers, round));
        }
    }
}
