//! `exchange bench engine`: commands through the command ring into the engine thread
//! ([`runtime::Runner`] driving [`engine::Engine`]) and events back through the event ring.
//!
//! # What a latency is
//! From a command's planned send time to the moment the harness reads the command's **last**
//! event from the event ring: the command's whole result (acceptance and every fill), as
//! exchange-core measures to the command's result. Events carry their command's sequence
//! number, and a command's events are contiguous, so the harness knows command `k` is complete
//! when it reads an event of a later command; the time it records is that of the read that
//! brought `k`'s last event, so learning it late costs nothing.
//!
//! # Each rate starts from the same state
//! The stream is generated once. Every rate builds the same engine (setup book applied), runs a
//! prefix of the stream through a fresh runner, then checks the engine the runner hands back
//! against the same prefix processed by a plain in-process [`Engine`]: same event counts, same
//! trades, same live orders and next event number, the same book for every symbol. The
//! in-process engine itself is checked once against the generator's model on the whole stream.

use std::time::{Duration, SystemTime};

use engine::{Command, Engine, Event, EventSink, SymbolId};
use runtime::{Consumer, PinState, Producer, PushError, Runner, RunnerConfig};

use super::driver::{ramp, run_open_loop, Epoch, Schedule, Target};
use super::output::{publish, table_line, Progress, Report};
use super::series::{format_rate, Check, Series};
use super::{
    describe_harness, flag_name, on_harness_thread, progress_visible, BenchError, EngineArgs, MachineUse,
};
use crate::gen::{generate, GenConfig, Workload};
use crate::{EngineVenue, RunCounts, StatsSink, Venue};

/// Default ramp, commands per second.
pub const RATES_DEFAULT: [u64; 9] =
    [100_000, 250_000, 500_000, 1_000_000, 2_000_000, 3_000_000, 5_000_000, 7_500_000, 10_000_000];

/// Default ramp with `--quick`.
pub const RATES_QUICK: [u64; 6] = [100_000, 250_000, 500_000, 1_000_000, 2_000_000, 5_000_000];

/// How long the harness waits for the last events after the last send before it calls the
/// missing ones lost.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The harness's end of the two rings.
pub struct RingTarget<'a> {
    /// `None` once sending is over (dropping it tells the runner to finish).
    commands: Option<Producer<Command>>,
    events: Consumer<Event>,
    stream: &'a [Command],
    /// Sequence number of `stream[0]`.
    seq_base: u64,
    /// The command whose events were read last, and when its latest event was read.
    pending: Option<(u64, u64)>,
    /// Counts of every event read.
    sink: StatsSink,
}

impl<'a> RingTarget<'a> {
    /// Sends `stream[i]` as request `i`; `stream[0]` gets sequence number `seq_base`.
    pub fn new(
        commands: Producer<Command>,
        events: Consumer<Event>,
        stream: &'a [Command],
        seq_base: u64,
    ) -> Self {
        RingTarget {
            commands: Some(commands),
            events,
            stream,
            seq_base,
            pending: None,
            sink: StatsSink::default(),
        }
    }

    /// Reads and counts events until the runner has ended (after a lost command, the driver
    /// may stop reading before the runner has pushed everything, and the runner would wait
    /// forever for room).
    fn drain_to_end(&mut self) {
        self.commands = None;
        loop {
            let RingTarget { events, sink, .. } = self;
            if events.pop_batch(usize::MAX, |e| sink.event(&e)) == 0 {
                if events.is_abandoned() && events.is_empty() {
                    return;
                }
                std::thread::yield_now();
            }
        }
    }
}

impl Target for RingTarget<'_> {
    #[inline]
    fn try_send(&mut self, i: u64) -> Result<bool, BenchError> {
        let Some(commands) = self.commands.as_mut() else {
            return Err(BenchError::Thread("send after the end of the stream".into()));
        };
        match commands.push(self.stream[i as usize]) {
            Ok(()) => Ok(true),
            Err(PushError::Full(_)) => {
                if commands.is_abandoned() {
                    return Err(BenchError::Thread("the engine thread ended early".into()));
                }
                Ok(false)
            }
        }
    }

    #[inline]
    fn poll(&mut self, epoch: &Epoch, done: &mut impl FnMut(u64, u64)) -> Result<(), BenchError> {
        let RingTarget { events, pending, sink, seq_base, commands, .. } = self;
        // Only what is there now: everything taken below was in the ring when `seen_ns` was
        // read, so no event is stamped before it arrived.
        let available = events.len();
        if available == 0 {
            // Abandoned first, then empty: then the last command's events are all in.
            if commands.is_none() && events.is_abandoned() && events.is_empty() {
                if let Some((i, seen_ns)) = pending.take() {
                    done(i, seen_ns);
                }
            }
            return Ok(());
        }
        let seen_ns = epoch.now_ns();
        let seq_base = *seq_base;
        events.pop_batch(available, |event| {
            sink.event(&event);
            let i = event.command_seq.wrapping_sub(seq_base);
            match *pending {
                Some((p, _)) if p == i => *pending = Some((i, seen_ns)),
                Some((p, p_seen_ns)) => {
                    done(p, p_seen_ns);
                    *pending = Some((i, seen_ns));
                }
                None => *pending = Some((i, seen_ns)),
            }
        });
        Ok(())
    }

    fn finish_sending(&mut self) -> Result<(), BenchError> {
        self.commands = None;
        Ok(())
    }
}

/// Runs the engine mode; `Ok(false)` when a state check failed.
pub fn run(args: &EngineArgs) -> Result<bool, BenchError> {
    let bench_epoch = Epoch::start();
    let started = SystemTime::now();
    let quick = args.output.quick;
    let plan = args.ramp.plan(quick, &RATES_QUICK, &RATES_DEFAULT)?;
    if args.workload.symbols == 0 {
        return Err(BenchError::Config("--symbols must be at least 1".into()));
    }
    let mut machine = MachineUse::detect();
    let sender_wait = flag_name(args.ramp.sender_wait);
    machine.thread(
        "harness",
        describe_harness(args.output.harness_core, &format!("{sender_wait} (sends and receives)"))?,
    );
    let engine_how = |pin: &str| format!("{pin}, {}", args.wait.name());
    machine.thread("engine", engine_how(if args.pin_core.is_some() { "pin requested" } else { "unpinned" }));

    let progress = Progress::new(plan.rates.len() as u64 + 1, progress_visible());
    let mix = args.workload.mix.mix();
    let resting = args.workload.resting_total();
    let commands = plan.requests_needed() as usize;
    progress.phase(format!("generating {commands} commands ({} mix, {resting} resting)", mix.name));
    let workload = generate(&GenConfig::new(mix, args.workload.symbols, resting, commands, args.output.seed));
    let venue = EngineVenue::new(&workload);
    // Engine::new panics on bounds it refuses; a flag (--resting, --symbols) must be a message.
    venue.config().validate().map_err(|e| BenchError::Config(format!("--resting/--symbols: {e}")))?;
    progress.phase("checking the in-process engine against the generator's model".into());
    let model_check = {
        let (mut full, setup_counts) = venue.build();
        let counts = venue.run(&mut full);
        RunCounts::check(&workload, setup_counts, counts, None)
    };
    progress.step_done(&format!(
        "generated {} setup + {} stream commands; in-process engine vs the generator's model: {}",
        workload.setup.len(),
        workload.stream.len(),
        model_check.as_ref().map_or_else(|e| format!("FAILED: {e}"), |()| "ok".to_owned())
    ));

    let seq_base = workload.setup.len() as u64 + 1;
    let mut pin_seen = None;
    let (mut series, stop_reason) = ramp(
        &plan,
        |schedule| {
            progress.phase(format!(
                "{}/s: {} warm-up + {} recorded commands",
                format_rate(schedule.rate_per_s),
                schedule.warmup,
                schedule.measured
            ));
            let (series, pin) = one_rate(args, &workload, &venue, seq_base, schedule, &bench_epoch)?;
            pin_seen = Some(pin);
            Ok(series)
        },
        |s| progress.step_done(&table_line(s)),
    )?;
    progress.finish();
    if let Some(pin) = pin_seen {
        let pin = match (pin, args.pin_core) {
            (PinState::Pinned, Some(core)) => format!("pinned to core {core}"),
            (PinState::Failed, Some(core)) => format!("pin to core {core} refused by the OS, unpinned"),
            _ => "unpinned".to_owned(),
        };
        machine.thread("engine", engine_how(&pin));
    }
    if let Err(problems) = &model_check {
        // The reference itself disagrees with the model: every comparison against it is moot.
        for s in &mut series {
            s.check = Check { passed: false, detail: format!("in-process engine vs model: {problems}") };
        }
    }

    let report = Report {
        mode: "engine",
        title: format!(
            "exchange bench engine: commands through the rings, {} mix, {} symbol(s), {} resting, open loop",
            mix.name, args.workload.symbols, resting
        ),
        latency_is: "planned send time → the harness reads the command's last event from the event ring".into(),
        machine,
        config: serde_json::json!({
            "mix": mix.name,
            "symbols": args.workload.symbols,
            "resting": resting,
            "seed": args.output.seed,
            "quick": quick,
            "rates": plan.rates,
            "p50_limit_us": args.ramp.p50_limit_us,
            "warmup_ms": plan.warmup_ms,
            "measure_ms": plan.measure_ms,
            "requests_max": plan.requests_max,
            "pause_ms": args.ramp.pause_ms,
            "stream_commands": workload.stream.len(),
            "engine_wait": args.wait.name(),
            "engine_pin_core": args.pin_core,
            "harness_core": args.output.harness_core,
            "sender_wait": sender_wait,
            "command_ring": args.command_ring,
            "event_ring": args.event_ring,
            "batch_max": args.batch_max,
        }),
        series,
        stop_reason: Some(stop_reason),
        notes: vec![
            "one harness thread sends due commands and reads events in turn; its own delays count in the latency"
                .into(),
            format!(
                "every rate starts from the same {}-order book and runs a prefix of one seeded stream",
                workload.stats.resting_after_setup
            ),
            "check: the engine returned by the runner equals an in-process engine fed the same prefix \
             (events, trades, rejects, live orders, next event seq, every book)"
                .into(),
        ],
        started,
    };
    publish(&report, &args.output.out)
}

/// One rate: a fresh runner on a freshly built engine, the open-loop run, the state check.
fn one_rate(
    args: &EngineArgs,
    workload: &Workload,
    venue: &EngineVenue<'_>,
    seq_base: u64,
    schedule: Schedule,
    bench_epoch: &Epoch,
) -> Result<(Series, PinState), BenchError> {
    let stream = &workload.stream[..schedule.total() as usize];
    let config = RunnerConfig {
        wait: args.wait.strategy(),
        pin_core: args.pin_core,
        batch_max: args.batch_max,
        command_ring_capacity: args.command_ring,
        event_ring_capacity: args.event_ring,
        seq_first: seq_base,
        thread_name: "engine".to_owned(),
    };
    let (handle, join) = Runner::spawn(venue.build().0, config)?;
    let (commands, events, sender_wait) = (handle.commands, handle.events, args.ramp.sender_wait);
    let (run, sink) = on_harness_thread(args.output.harness_core, move || {
        let mut target = RingTarget::new(commands, events, stream, seq_base);
        let run = run_open_loop(&mut target, schedule, bench_epoch, sender_wait, DRAIN_TIMEOUT);
        target.drain_to_end();
        run.map(|run| (run, target.sink))
    })??;
    let engine = join.join().map_err(|_| BenchError::Thread("the engine thread panicked".into()))?;
    let stats = handle.stats;

    // The reference: the same prefix through a plain in-process engine.
    let mut direct: Engine = venue.build().0;
    let mut direct_sink = StatsSink::default();
    for cmd in stream {
        direct.process(cmd, &mut direct_sink);
    }
    let mut problems = Vec::new();
    if run.lost + run.duplicates + run.unexpected > 0 {
        problems.push(format!(
            "completions: {} lost, {} duplicated, {} unexpected",
            run.lost, run.duplicates, run.unexpected
        ));
    }
    if sink != direct_sink {
        problems.push(format!("events read {sink:?} != in-process {direct_sink:?}"));
    }
    if direct_sink.rejects > 0 {
        problems.push(format!("{} rejects (the generator makes none)", direct_sink.rejects));
    }
    if stats.commands_processed() != stream.len() as u64 {
        problems.push(format!(
            "runner processed {} of {} commands",
            stats.commands_processed(),
            stream.len()
        ));
    }
    if (stats.events_published(), stats.events_discarded()) != (direct_sink.events, 0) {
        problems.push(format!(
            "runner published {} and discarded {} events, in-process made {}",
            stats.events_published(),
            stats.events_discarded(),
            direct_sink.events
        ));
    }
    if (engine.orders_live(), engine.next_event_seq()) != (direct.orders_live(), direct.next_event_seq()) {
        problems.push(format!(
            "live orders / next event seq {} / {} != in-process {} / {}",
            engine.orders_live(),
            engine.next_event_seq(),
            direct.orders_live(),
            direct.next_event_seq()
        ));
    }
    let symbols = workload.symbols.len() as u32;
    let books_differing = (0..symbols)
        .filter(|&s| engine.book_snapshot(SymbolId(s)) != direct.book_snapshot(SymbolId(s)))
        .count();
    if books_differing > 0 {
        problems.push(format!("{books_differing} of {symbols} books differ from the in-process engine's"));
    }
    let check = Check::from_problems(
        problems,
        &format!(
            "{} commands, {} events, {} trades, {} live orders, {symbols} book(s): identical to the in-process engine",
            stream.len(),
            direct_sink.events,
            direct_sink.trades,
            direct.orders_live()
        ),
    );
    let extra = serde_json::json!({
        "commands": stream.len(),
        "events": sink.events,
        "trades": sink.trades,
        "events_per_command": sink.events as f64 / stream.len().max(1) as f64,
        "engine_pin": format!("{:?}", stats.pin_state()),
    });
    Ok((run.into_series(check, extra), stats.pin_state()))
}
