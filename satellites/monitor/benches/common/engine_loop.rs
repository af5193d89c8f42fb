//! The engine loop both benches time: one function, generic over what it records, so "off" is
//! the very same loop with the recording compiled out (`()`), not a different function that the
//! optimiser may lay out or inline differently.

use engine::{Command, CommandKind, Engine, Event, EventKind, EventSink};
use harness::StatsSink;
use monitor::metrics::{ENGINE_CYCLE, ORDERS_IN, REJECTS, TRADES};
use monitor::{Counter, Histogram, Registry};

/// What a stage records around the engine.
pub trait Recorder {
    /// One command in, by kind.
    fn command(&self, kind: &CommandKind);
    /// One trade out.
    fn trade(&self);
    /// One reject out.
    fn reject(&self);
    /// One loop turn of `ns`.
    fn cycle(&self, ns: u64);
}

/// Counters compiled out.
impl Recorder for () {
    #[inline(always)]
    fn command(&self, _: &CommandKind) {}
    #[inline(always)]
    fn trade(&self) {}
    #[inline(always)]
    fn reject(&self) {}
    #[inline(always)]
    fn cycle(&self, _: u64) {}
}

/// A stage's worth of counters: orders in by kind, trades, rejects, a loop-cycle histogram.
pub struct StageCounters {
    new: Counter,
    cancel: Counter,
    replace: Counter,
    trades: Counter,
    rejects: Counter,
    cycle: Histogram,
}

impl StageCounters {
    pub fn register(registry: &mut Registry) -> StageCounters {
        StageCounters {
            new: registry.counter(&ORDERS_IN, "engine", &[("type", "new")]).unwrap(),
            cancel: registry.counter(&ORDERS_IN, "engine", &[("type", "cancel")]).unwrap(),
            replace: registry.counter(&ORDERS_IN, "engine", &[("type", "replace")]).unwrap(),
            trades: registry.counter(&TRADES, "engine", &[]).unwrap(),
            rejects: registry.counter(&REJECTS, "engine", &[]).unwrap(),
            cycle: registry.histogram(&ENGINE_CYCLE, "engine", &[]).unwrap(),
        }
    }
}

impl Recorder for StageCounters {
    #[inline(always)]
    fn command(&self, kind: &CommandKind) {
        match kind {
            CommandKind::New(_) => self.new.inc(),
            CommandKind::Cancel(_) => self.cancel.inc(),
            CommandKind::Replace(_) => self.replace.inc(),
            _ => {}
        }
    }
    #[inline(always)]
    fn trade(&self) {
        self.trades.inc();
    }
    #[inline(always)]
    fn reject(&self) {
        self.rejects.inc();
    }
    #[inline(always)]
    fn cycle(&self, ns: u64) {
        self.cycle.record_ns(ns);
    }
}

struct Sink<'a, R> {
    stats: StatsSink,
    recorder: &'a R,
}

impl<R: Recorder> EventSink for Sink<'_, R> {
    #[inline]
    fn event(&mut self, event: &Event) {
        self.stats.event(event);
        match event.kind {
            EventKind::Trade { .. } => self.recorder.trade(),
            EventKind::Rejected { .. } => self.recorder.reject(),
            _ => {}
        }
    }
}

/// Runs `stream` through `engine`, recording with `recorder`; returns the sink's counts. The
/// cycle histogram gets a synthetic duration: a real stage's clock read is its own cost, not
/// the counters'.
pub fn run<R: Recorder>(engine: &mut Engine, stream: &[Command], recorder: &R) -> StatsSink {
    let mut sink = Sink { stats: StatsSink::default(), recorder };
    for (i, cmd) in stream.iter().enumerate() {
        recorder.command(&cmd.kind);
        engine.process(cmd, &mut sink);
        recorder.cycle(200 + (i as u64 * 7_919) % 20_000);
    }
    sink.stats
}
