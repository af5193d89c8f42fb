//! `exchange bench udp-baseline`: datagrams on loopback to an echo thread and back, open loop,
//! through the same driver as the engine mode: the floor under any networked mode (the gateway's
//! `e2e`) on this machine, since those pay at least these two kernel crossings each way.
//!
//! Why open loop for a ping-pong: the networked modes will be measured open loop (orders arrive
//! when clients send them, not when the venue is ready), so the floor is measured the same way;
//! at low rates it *is* the ping-pong round trip, and at high rates it shows where the kernel path
//! itself starts queueing. A datagram the echo side drops (its socket buffer overflowed) is
//! reported as lost and ends the ramp; it is not in the histogram, so look at the `lost` column.
//!
//! The echo thread blocks in `recv_from` (how a server waits), so every datagram after an idle
//! gap pays a thread wake-up; with `--echo-wait busy-spin` it polls a non-blocking socket
//! instead, the floor under a venue that busy-spins. The harness polls its non-blocking socket.

use std::net::{SocketAddr, UdpSocket};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use super::driver::{ramp, run_open_loop, Epoch, Schedule, Target};
use super::output::{publish, table_line, Progress, Report};
use super::series::{format_rate, Check, Series};
use super::{
    describe_harness, flag_name, on_harness_thread, progress_visible, BenchError, EchoWait, MachineUse,
    SenderWait, UdpArgs,
};

/// Default ramp, datagrams per second.
pub const RATES_DEFAULT: [u64; 8] = [10_000, 25_000, 50_000, 100_000, 150_000, 200_000, 300_000, 500_000];

/// Default ramp with `--quick`.
pub const RATES_QUICK: [u64; 4] = [10_000, 50_000, 100_000, 200_000];

/// The datagram that tells the echo thread to stop.
const STOP: [u8; 8] = *b"STOP!!!!";

/// Smallest payload: the request number at both ends.
const PAYLOAD_BYTES_MIN: usize = 16;

/// Largest payload that fits one loopback datagram comfortably.
const PAYLOAD_BYTES_MAX: usize = 60_000;

/// How long the echo thread waits for a datagram before it gives up (a harness that died).
const ECHO_IDLE_MAX: Duration = Duration::from_secs(10);

/// The harness's socket, connected to the echo thread.
pub struct UdpTarget {
    socket: UdpSocket,
    payload: Vec<u8>,
    received: Vec<u8>,
    /// Datagrams back with the wrong size or mismatched request numbers.
    corrupt: u64,
}

impl UdpTarget {
    /// A non-blocking socket connected to `echo`, sending `payload_bytes`-byte datagrams.
    pub fn connect(echo: SocketAddr, payload_bytes: usize) -> Result<UdpTarget, BenchError> {
        let socket =
            UdpSocket::bind("127.0.0.1:0").map_err(|e| BenchError::io("bind the harness socket", e))?;
        socket.connect(echo).map_err(|e| BenchError::io("connect to the echo socket", e))?;
        socket
            .set_nonblocking(true)
            .map_err(|e| BenchError::io("make the harness socket non-blocking", e))?;
        let payload = (0..payload_bytes).map(|b| b as u8).collect();
        Ok(UdpTarget { socket, payload, received: vec![0; payload_bytes + 1], corrupt: 0 })
    }
}

impl Target for UdpTarget {
    #[inline]
    fn try_send(&mut self, i: u64) -> Result<bool, BenchError> {
        let n = self.payload.len();
        self.payload[..8].copy_from_slice(&i.to_le_bytes());
        self.payload[n - 8..].copy_from_slice(&i.to_le_bytes());
        match self.socket.send(&self.payload) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(BenchError::io("send a datagram", e)),
        }
    }

    #[inline]
    fn poll(&mut self, epoch: &Epoch, done: &mut impl FnMut(u64, u64)) -> Result<(), BenchError> {
        loop {
            match self.socket.recv(&mut self.received) {
                Ok(n) => {
                    // One read per datagram: each one is its own system call anyway.
                    let seen_ns = epoch.now_ns();
                    let n_want = self.payload.len();
                    let head = self.received[..8].try_into().map(u64::from_le_bytes);
                    let tail = self.received[n_want - 8..n_want].try_into().map(u64::from_le_bytes);
                    match (n == n_want, head, tail) {
                        (true, Ok(head), Ok(tail)) if head == tail => done(head, seen_ns),
                        _ => self.corrupt += 1,
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(BenchError::io("receive a datagram", e)),
            }
        }
    }

    fn finish_sending(&mut self) -> Result<(), BenchError> {
        Ok(())
    }
}

/// Why the echo thread stopped before the harness told it to.
#[derive(Debug, thiserror::Error)]
pub enum EchoError {
    /// Busy-spinning, no datagram came for the idle bound: the harness side is gone.
    #[error("echo receive: nothing for {0:?} (the harness stopped sending)")]
    Idle(Duration),
    /// Receiving failed.
    #[error("echo receive: {0}")]
    Receive(#[source] std::io::Error),
    /// Sending the echo back failed.
    #[error("echo send: {0}")]
    Send(#[source] std::io::Error),
}

/// Starts the echo thread on a fresh loopback socket; it returns how many datagrams it echoed.
fn spawn_echo(
    core: Option<usize>,
    wait: EchoWait,
) -> Result<(SocketAddr, JoinHandle<Result<u64, EchoError>>), BenchError> {
    let socket = UdpSocket::bind("127.0.0.1:0").map_err(|e| BenchError::io("bind the echo socket", e))?;
    socket.set_read_timeout(Some(ECHO_IDLE_MAX)).map_err(|e| BenchError::io("set the echo timeout", e))?;
    let spin = wait == EchoWait::BusySpin;
    socket.set_nonblocking(spin).map_err(|e| BenchError::io("set the echo socket's mode", e))?;
    let addr = socket.local_addr().map_err(|e| BenchError::io("echo socket address", e))?;
    let join = std::thread::Builder::new()
        .name("udp-echo".into())
        .spawn(move || {
            if let Some(core) = core {
                core_affinity::set_for_current(core_affinity::CoreId { id: core });
            }
            let mut buf = vec![0u8; PAYLOAD_BYTES_MAX + 1];
            let mut echoed = 0u64;
            let mut idle_since = Instant::now();
            loop {
                let (n, from) = match socket.recv_from(&mut buf) {
                    Ok(got) => got,
                    Err(e) if spin && e.kind() == std::io::ErrorKind::WouldBlock => {
                        if idle_since.elapsed() > ECHO_IDLE_MAX {
                            return Err(EchoError::Idle(ECHO_IDLE_MAX));
                        }
                        std::hint::spin_loop();
                        continue;
                    }
                    Err(e) => return Err(EchoError::Receive(e)),
                };
                if spin {
                    idle_since = Instant::now();
                }
                if buf[..n] == STOP {
                    return Ok(echoed);
                }
                socket.send_to(&buf[..n], from).map_err(EchoError::Send)?;
                echoed += 1;
            }
        })
        .map_err(|e| BenchError::io("start the echo thread", e))?;
    Ok((addr, join))
}

/// Runs the UDP baseline; `Ok(false)` when a check failed.
pub fn run(args: &UdpArgs) -> Result<bool, BenchError> {
    if !(PAYLOAD_BYTES_MIN..=PAYLOAD_BYTES_MAX).contains(&args.payload_bytes) {
        return Err(BenchError::Config(format!(
            "--payload-bytes must be in {PAYLOAD_BYTES_MIN}..={PAYLOAD_BYTES_MAX}"
        )));
    }
    let bench_epoch = Epoch::start();
    let started = SystemTime::now();
    let quick = args.output.quick;
    let plan = args.ramp.plan(quick, &RATES_QUICK, &RATES_DEFAULT)?;
    let mut machine = MachineUse::detect();
    let sender_wait = flag_name(args.ramp.sender_wait);
    machine.thread(
        "harness",
        describe_harness(args.output.harness_core, &format!("{sender_wait} (sends and receives)"))?,
    );
    machine.thread(
        "echo",
        format!(
            "{}, {}",
            args.echo_core.map_or_else(|| "unpinned".to_owned(), |core| format!("pinned to core {core}")),
            match args.echo_wait {
                EchoWait::Block => "blocking recv",
                EchoWait::BusySpin => "busy-spins on a non-blocking recv",
            }
        ),
    );

    let progress = Progress::new(plan.rates.len() as u64, progress_visible());
    let (series, stop_reason) = ramp(
        &plan,
        |schedule| {
            progress.phase(format!(
                "{}/s: {} warm-up + {} recorded datagrams",
                format_rate(schedule.rate_per_s),
                schedule.warmup,
                schedule.measured
            ));
            one_rate(args, schedule, &bench_epoch)
        },
        |s| progress.step_done(&table_line(s)),
    )?;
    progress.finish();

    let report = Report {
        mode: "udp-baseline",
        title: format!(
            "exchange bench udp-baseline: {}-byte datagrams, loopback, echo thread, open loop",
            args.payload_bytes
        ),
        latency_is: "planned send time → the harness receives the echoed datagram".into(),
        machine,
        config: serde_json::json!({
            "payload_bytes": args.payload_bytes,
            "quick": quick,
            "rates": plan.rates,
            "p50_limit_us": args.ramp.p50_limit_us,
            "warmup_ms": plan.warmup_ms,
            "measure_ms": plan.measure_ms,
            "requests_max": plan.requests_max,
            "pause_ms": args.ramp.pause_ms,
            "harness_core": args.output.harness_core,
            "echo_core": args.echo_core,
            "echo_wait": flag_name(args.echo_wait),
            "sender_wait": sender_wait,
        }),
        series,
        stop_reason: Some(stop_reason),
        notes: vec![
            "lost datagrams are not in the histogram; a rate with losses ends the ramp".into(),
            "check: every datagram came back whole, once, and the echo thread echoed every one it got".into(),
        ],
        started,
    };
    publish(&report, &args.output.out)
}

fn one_rate(args: &UdpArgs, schedule: Schedule, bench_epoch: &Epoch) -> Result<Series, BenchError> {
    let echo = Echo { core: args.echo_core, wait: args.echo_wait, payload_bytes: args.payload_bytes };
    echo_series(&echo, args.output.harness_core, args.ramp.sender_wait, schedule, bench_epoch)
}

/// The echo side of a run.
pub(super) struct Echo {
    /// Pin the echo thread here.
    pub core: Option<usize>,
    /// How it waits.
    pub wait: EchoWait,
    /// Datagram size.
    pub payload_bytes: usize,
}

/// One rate against a fresh echo thread, the harness on its own thread: the series and its
/// check. Also what `exchange bench e2e --udp-baseline` runs beside each of its rates.
pub(super) fn echo_series(
    echo: &Echo,
    harness_core: Option<usize>,
    sender_wait: SenderWait,
    schedule: Schedule,
    bench_epoch: &Epoch,
) -> Result<Series, BenchError> {
    let (echo_addr, echo_thread) = spawn_echo(echo.core, echo.wait)?;
    let mut target = UdpTarget::connect(echo_addr, echo.payload_bytes)?;
    let (run, target) = on_harness_thread(harness_core, move || {
        let run = run_open_loop(&mut target, schedule, bench_epoch, sender_wait, Duration::from_millis(500));
        (run, target)
    })?;
    // Stop the echo thread whatever happened (a full socket buffer can refuse the first try).
    for _ in 0..1_000 {
        match target.socket.send(&STOP) {
            Ok(_) => break,
            Err(_) => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    let echoed = echo_thread.join().map_err(|_| BenchError::Thread("the echo thread panicked".into()))?;
    let run = run?;
    let echoed = echoed.map_err(|e| BenchError::Thread(e.to_string()))?;
    let mut problems = Vec::new();
    if target.corrupt + run.duplicates + run.unexpected > 0 {
        problems.push(format!(
            "{} corrupt, {} duplicated, {} unexpected datagrams",
            target.corrupt, run.duplicates, run.unexpected
        ));
    }
    let total = schedule.total();
    if echoed > total {
        problems.push(format!("the echo thread echoed {echoed} datagrams, {total} were sent"));
    }
    let check = Check::from_problems(
        problems,
        &format!("{echoed} of {total} datagrams echoed; every one that came back was intact and came once"),
    );
    let extra = serde_json::json!({
        "datagrams_sent": total,
        "echoed": echoed,
        "payload_bytes": echo.payload_bytes,
    });
    Ok(run.into_series(check, extra))
}
