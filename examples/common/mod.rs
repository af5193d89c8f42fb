//! What the load examples share: a FIX client of the in-process venue, waiting for an
//! acknowledgement, each thread's CPU time, and the end of a round.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use exchange::serve::Server;
use fixclient::{ClientConfig, ClientTransport, FixClient};

/// A FIX/QUIC client of `account` (its password is its name, as on the demo venue).
pub fn client_config(server: &Server, account: &str) -> ClientConfig {
    ClientConfig {
        addr: server.info.quic_addr,
        transport: ClientTransport::Quic {
            ca: server.info.cert.clone(),
            server_name: "localhost".into(),
            client_cert: None,
            tuning: Default::default(),
        },
        comp_id: account.into(),
        target_comp_id: "EXCHANGE".into(),
        username: account.into(),
        password: account.into(),
        heartbeat_s: 30,
    }
}

/// Waits for the acknowledgement (150=0) of order `id`, skipping other reports.
pub async fn acked(c: &mut FixClient, id: &str) {
    loop {
        let m = c.recv(Duration::from_secs(30)).await.unwrap().expect("a report in time");
        if m.get(11).as_deref() == Some(id) && m.get(150).as_deref() == Some("0") {
            return;
        }
    }
}

/// CPU nanoseconds of each thread of this process, summed by thread name. Linux names a
/// thread's CPU-time clock `(~tid << 3) | 6` (CPUCLOCK_SCHED, per thread): the scheduler's own
/// nanosecond count, where /proc's utime + stime are 10 ms ticks.
pub fn thread_cpu_ns() -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return out };
    for task in tasks.flatten() {
        let Some(tid) = task.file_name().to_str().and_then(|t| t.parse::<i32>().ok()) else { continue };
        let Ok(name) = std::fs::read_to_string(task.path().join("comm")) else { continue };
        let clock = ((!tid) << 3) | 6;
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: `ts` is a valid, writable timespec; a thread that has just exited makes the
        // call fail (checked), not write.
        if unsafe { libc::clock_gettime(clock as libc::clockid_t, &mut ts) } != 0 {
            continue;
        }
        *out.entry(name.trim().to_owned()).or_insert(0) +=
            ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
    }
    out
}

/// The end of a round: the subscribers' reader tasks stop, the order clients disconnect, the
/// venue stops and its data directory goes.
pub fn shut_down<T>(
    readers: Vec<tokio::task::JoinHandle<T>>,
    clients: [FixClient; 2],
    server: Server,
    dir: &Path,
) {
    for r in readers {
        r.abort();
    }
    drop(clients);
    server.stop();
    let _ = std::fs::remove_dir_all(dir);
}
