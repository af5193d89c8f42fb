//! The open-loop driver: sends numbered requests on a fixed schedule, reads completions, records
//! latency from each request's *planned* send time, and ramps the rate.
//!
//! # One thread sends and receives
//! The harness is a single thread that interleaves "send every request that is due" with "read
//! every completion that has arrived". On a 2-core machine the engine thread (or the echo
//! thread) needs the other core; a separate sender and receiver would put three busy threads on
//! two cores and the scheduler's time slices (milliseconds) would dominate every percentile.
//! The cost of sharing: while the harness reads a burst of completions a due request waits, and
//! while it sends a burst a completion waits to be read. Both delays are *counted* (latency runs
//! from the planned time to the moment the harness reads the completion), so they can only make
//! the figures worse, never better: the harness's own overhead is part of what is measured.
//!
//! # Timestamps
//! A run's clock is an [`Epoch`] (`Instant`, i.e. `CLOCK_MONOTONIC` through the vDSO, ~20-30 ns
//! per read). A target stamps completions itself, once per batch it reads, with a reading taken
//! after it saw the batch was there and before it takes it, so a completion is never stamped
//! before it existed.

use std::hint::spin_loop;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::series::{latency_histogram, steal_ms_now, Check, Series};
use super::{BenchError, SenderWait};

/// The start of a run: every time in the driver is nanoseconds since it.
#[derive(Clone, Copy, Debug)]
pub struct Epoch(Instant);

impl Epoch {
    /// An epoch starting now.
    pub fn start() -> Epoch {
        Epoch(Instant::now())
    }

    /// Nanoseconds since the epoch.
    #[inline]
    pub fn now_ns(&self) -> u64 {
        self.0.elapsed().as_nanos() as u64
    }

    /// The instant it started.
    pub fn instant(&self) -> Instant {
        self.0
    }
}

/// What the driver drives: a path that numbered requests go down and completions come back up.
///
/// The engine mode implements it over the runner's rings, the UDP baseline over a socket, and a
/// networked mode (FIX over QUIC or TCP) would implement it over its client connection: encode
/// request `i` in `try_send`, decode execution reports in `poll` and map each back to its `i`.
pub trait Target {
    /// Sends request `i` (numbered from 0 in the schedule, warm-up included) now. `Ok(false)`
    /// means no room right now (a full ring or socket buffer): the driver polls and retries, and
    /// the time the request waits still counts in its latency.
    fn try_send(&mut self, i: u64) -> Result<bool, BenchError>;

    /// Reads what has arrived and calls `done(i, seen_ns)` once per request that completed,
    /// `seen_ns` being `epoch.now_ns()` read when the completion was seen (see the module docs).
    fn poll(&mut self, epoch: &Epoch, done: &mut impl FnMut(u64, u64)) -> Result<(), BenchError>;

    /// Called once, after the last request was sent, before the driver drains the completions.
    fn finish_sending(&mut self) -> Result<(), BenchError>;
}

/// When each request of a run is planned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// Requests per second.
    pub rate_per_s: u64,
    /// Requests sent first and not recorded.
    pub warmup: u64,
    /// Requests recorded after the warm-up.
    pub measured: u64,
}

impl Schedule {
    /// All requests of the run.
    pub fn total(&self) -> u64 {
        self.warmup + self.measured
    }

    /// Planned send time of request `i`, in nanoseconds from the run's start.
    #[inline]
    pub fn planned_ns(&self, i: u64) -> u64 {
        (u128::from(i) * 1_000_000_000 / u128::from(self.rate_per_s)) as u64
    }
}

/// What one open-loop run measured.
#[derive(Debug)]
pub struct OpenLoopRun {
    /// The schedule it followed.
    pub schedule: Schedule,
    /// Latency of each recorded request that completed, in nanoseconds from its planned time.
    pub latency_ns: Histogram<u64>,
    /// How late each recorded request was sent after its planned time.
    pub send_lag_ns: Histogram<u64>,
    /// Recorded requests that never completed before the drain deadline.
    pub lost: u64,
    /// Completions reported twice for one request.
    pub duplicates: u64,
    /// Completions for requests never sent.
    pub unexpected: u64,
    /// Recorded requests sent per second, from the first recorded send to the last.
    pub rate_achieved: f64,
    /// When the recorded phase started, from the bench's start.
    pub start_offset: Duration,
    /// How long the recorded phase took, first send to last completion.
    pub duration: Duration,
}

impl OpenLoopRun {
    /// The table line for this run, with the mode's check and figures.
    pub fn into_series(self, check: Check, extra: serde_json::Value) -> Series {
        Series {
            label: self.schedule.rate_per_s.to_string(),
            rate_target: Some(self.schedule.rate_per_s),
            rate_achieved: Some(self.rate_achieved),
            latency_ns: self.latency_ns,
            send_lag_ns: Some(self.send_lag_ns),
            requests: self.schedule.measured,
            warmup_requests: self.schedule.warmup,
            lost: self.lost,
            start_offset: self.start_offset,
            duration: self.duration,
            check,
            extra,
            steal_ms: None,
        }
    }
}

/// Which requests have completed (one bit each, to catch duplicates) and their latencies.
struct Recorder {
    schedule: Schedule,
    latency_ns: Histogram<u64>,
    bits: Vec<u64>,
    count: u64,
    measured_count: u64,
    duplicates: u64,
    unexpected: u64,
    last_seen_ns: u64,
}

impl Recorder {
    #[inline]
    fn done(&mut self, i: u64, seen_ns: u64) {
        if i >= self.schedule.total() {
            self.unexpected += 1;
            return;
        }
        let (word, bit) = ((i / 64) as usize, 1u64 << (i % 64));
        if self.bits[word] & bit != 0 {
            self.duplicates += 1;
            return;
        }
        self.bits[word] |= bit;
        self.count += 1;
        self.last_seen_ns = self.last_seen_ns.max(seen_ns);
        if i >= self.schedule.warmup {
            self.measured_count += 1;
            self.latency_ns.saturating_record(seen_ns.saturating_sub(self.schedule.planned_ns(i)));
        }
    }
}

/// Runs `schedule` against `target`, open loop. `bench_epoch` is the whole bench's start (for
/// the log's timestamps); `drain_timeout` bounds the wait for the last completions after the
/// last send.
pub fn run_open_loop<T: Target>(
    target: &mut T,
    schedule: Schedule,
    bench_epoch: &Epoch,
    wait: SenderWait,
    drain_timeout: Duration,
) -> Result<OpenLoopRun, BenchError> {
    let total = schedule.total();
    let warmup = schedule.warmup;
    let mut send_lag_ns = latency_histogram();
    let mut rec = Recorder {
        schedule,
        latency_ns: latency_histogram(),
        bits: vec![0; total.div_ceil(64) as usize],
        count: 0,
        measured_count: 0,
        duplicates: 0,
        unexpected: 0,
        last_seen_ns: 0,
    };
    let epoch = Epoch::start();
    let mut next: u64 = 0;
    let (mut first_measured_send_ns, mut last_send_ns) = (0u64, 0u64);
    while next < total {
        let now_ns = epoch.now_ns();
        while next < total {
            let planned_ns = schedule.planned_ns(next);
            if planned_ns > now_ns || !target.try_send(next)? {
                break;
            }
            if next >= warmup {
                send_lag_ns.saturating_record(now_ns - planned_ns);
                if next == warmup {
                    first_measured_send_ns = now_ns;
                }
            }
            last_send_ns = now_ns;
            next += 1;
        }
        target.poll(&epoch, &mut |i, seen_ns| rec.done(i, seen_ns))?;
        match wait {
            SenderWait::Spin => spin_loop(),
            SenderWait::Yield => std::thread::yield_now(),
        }
    }
    target.finish_sending()?;
    let deadline_ns = epoch.now_ns() + drain_timeout.as_nanos() as u64;
    loop {
        target.poll(&epoch, &mut |i, seen_ns| rec.done(i, seen_ns))?;
        if rec.count + rec.unexpected >= total || epoch.now_ns() > deadline_ns {
            break;
        }
        match wait {
            SenderWait::Spin => spin_loop(),
            SenderWait::Yield => std::thread::yield_now(),
        }
    }
    // A last look: a target may report its final completion only once sending has finished.
    target.poll(&epoch, &mut |i, seen_ns| rec.done(i, seen_ns))?;

    let measured_send_span_ns = last_send_ns.saturating_sub(first_measured_send_ns);
    let rate_achieved = if schedule.measured <= 1 || measured_send_span_ns == 0 {
        schedule.rate_per_s as f64
    } else {
        (schedule.measured - 1) as f64 * 1e9 / measured_send_span_ns as f64
    };
    let epoch_offset = epoch.instant().saturating_duration_since(bench_epoch.instant());
    Ok(OpenLoopRun {
        schedule,
        latency_ns: rec.latency_ns,
        send_lag_ns,
        lost: schedule.measured - rec.measured_count,
        duplicates: rec.duplicates,
        unexpected: rec.unexpected,
        rate_achieved,
        start_offset: epoch_offset + Duration::from_nanos(first_measured_send_ns),
        duration: Duration::from_nanos(
            rec.last_seen_ns.max(last_send_ns).saturating_sub(first_measured_send_ns),
        ),
    })
}

/// The rates to try and how long each runs.
#[derive(Clone, Debug)]
pub struct RampPlan {
    /// Rates in requests per second, tried in order.
    pub rates: Vec<u64>,
    /// Warm-up per rate.
    pub warmup_ms: u64,
    /// Recorded phase per rate.
    pub measure_ms: u64,
    /// Most requests in one run: at high rates the phases shrink to fit.
    pub requests_max: u64,
    /// Stop after the first rate whose p50 passes this.
    pub p50_limit_ns: u64,
    /// Stop when the recorded requests went out slower than this share of the planned rate.
    pub keep_up_ratio: f64,
    /// Idle time before each rate.
    pub pause: Duration,
}

impl RampPlan {
    /// Requests the biggest run needs (what a target must be able to send).
    pub fn requests_needed(&self) -> u64 {
        self.rates.iter().map(|&r| self.schedule(r).total()).max().unwrap_or(0)
    }

    /// The schedule at `rate`: warm-up and recorded phase in the plan's proportions, capped at
    /// `requests_max` in all (and at least one recorded request).
    pub fn schedule(&self, rate: u64) -> Schedule {
        let phase_ms = self.warmup_ms + self.measure_ms;
        let wanted = u128::from(rate) * u128::from(phase_ms) / 1_000;
        let total = (wanted.min(u128::from(self.requests_max)) as u64).max(2);
        let measured = (u128::from(total) * u128::from(self.measure_ms) / u128::from(phase_ms.max(1))) as u64;
        let measured = measured.clamp(1, total);
        Schedule { rate_per_s: rate, warmup: total - measured, measured }
    }

    /// Why the ramp should stop after `series`, if it should.
    pub fn stop_reason(&self, series: &Series) -> Option<String> {
        let rate = series.rate_target.unwrap_or(0);
        let p50 = series.latency_ns.value_at_quantile(0.5);
        if !series.check.passed {
            Some(format!("the state check failed at {rate}/s"))
        } else if series.lost > 0 {
            Some(format!("{} requests never completed at {rate}/s", series.lost))
        } else if p50 > self.p50_limit_ns {
            Some(format!(
                "p50 {:.1} µs passed the limit of {:.1} µs at {rate}/s",
                p50 as f64 / 1e3,
                self.p50_limit_ns as f64 / 1e3
            ))
        } else if series.rate_achieved.is_some_and(|a| a < self.keep_up_ratio * rate as f64) {
            Some(format!(
                "requests went out at {:.0}/s, under {:.0}% of the planned {rate}/s (saturated)",
                series.rate_achieved.unwrap_or(0.0),
                self.keep_up_ratio * 100.0
            ))
        } else {
            None
        }
    }
}

/// Runs `one_rate` for each rate of `plan` until a stop condition holds; returns the series and
/// why the ramp ended. `on_done` is told after each rate (progress, live table lines).
pub fn ramp(
    plan: &RampPlan,
    mut one_rate: impl FnMut(Schedule) -> Result<Series, BenchError>,
    mut on_done: impl FnMut(&Series),
) -> Result<(Vec<Series>, String), BenchError> {
    let mut all = Vec::new();
    for &rate in &plan.rates {
        // Before every rate, the first too: generation and checking precede it.
        std::thread::sleep(plan.pause);
        let steal_before = steal_ms_now();
        let mut series = one_rate(plan.schedule(rate))?;
        if let (Some(before), Some(after)) = (steal_before, steal_ms_now()) {
            series.steal_ms = Some(after.saturating_sub(before));
        }
        on_done(&series);
        let stop = plan.stop_reason(&series);
        all.push(series);
        if let Some(reason) = stop {
            return Ok((all, reason));
        }
    }
    Ok((all, "every rate of the ramp ran".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Completes every request at once, in order, stamping the time it sees it.
    struct Instant0 {
        sent: Vec<u64>,
        pending: Vec<u64>,
    }

    impl Target for Instant0 {
        fn try_send(&mut self, i: u64) -> Result<bool, BenchError> {
            self.sent.push(i);
            self.pending.push(i);
            Ok(true)
        }
        fn poll(&mut self, epoch: &Epoch, done: &mut impl FnMut(u64, u64)) -> Result<(), BenchError> {
            let now = epoch.now_ns();
            for i in self.pending.drain(..) {
                done(i, now);
            }
            Ok(())
        }
        fn finish_sending(&mut self) -> Result<(), BenchError> {
            Ok(())
        }
    }

    #[test]
    fn sends_every_request_in_order_and_records_only_the_measured_ones() {
        let mut target = Instant0 { sent: Vec::new(), pending: Vec::new() };
        let schedule = Schedule { rate_per_s: 1_000_000, warmup: 100, measured: 400 };
        let run =
            run_open_loop(&mut target, schedule, &Epoch::start(), SenderWait::Spin, Duration::from_secs(1))
                .unwrap();
        assert_eq!(target.sent, (0..500).collect::<Vec<_>>());
        assert_eq!(run.latency_ns.len(), 400);
        assert_eq!((run.lost, run.duplicates, run.unexpected), (0, 0, 0));
    }

    #[test]
    fn planned_times_are_exact_multiples_of_the_period() {
        let s = Schedule { rate_per_s: 3, warmup: 0, measured: 10 };
        assert_eq!([s.planned_ns(0), s.planned_ns(1), s.planned_ns(3)], [0, 333_333_333, 1_000_000_000]);
    }

    #[test]
    fn ramp_phases_shrink_to_the_request_cap() {
        let plan = RampPlan {
            rates: vec![1_000, 10_000_000],
            warmup_ms: 200,
            measure_ms: 800,
            requests_max: 1_000_000,
            p50_limit_ns: 1_000_000,
            keep_up_ratio: 0.95,
            pause: Duration::ZERO,
        };
        assert_eq!(plan.schedule(1_000), Schedule { rate_per_s: 1_000, warmup: 200, measured: 800 });
        assert_eq!(plan.schedule(10_000_000).total(), 1_000_000);
        assert_eq!(plan.requests_needed(), 1_000_000);
    }
}
