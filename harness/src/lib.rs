//! The latency harness behind `exchange bench` ([`latency`]), the seeded command generator it
//! and the other benchmarks feed from ([`gen`]), and the [`Venue`] interface an order book is
//! timed through. No peer order book is linked here: the comparisons with other crates live in
//! `exchange-bench`, which depends on this crate, never the reverse.
//!
//! Every venue is driven the same way: [`Venue::build`] makes fresh books and runs the setup
//! phase (untimed), then [`Venue::run`] runs the measured stream, which the caller times. Commands
//! are translated into each venue's native form before any of that, so translation is never
//! timed either.
#![warn(missing_docs, unreachable_pub)]

pub mod gen;
pub mod latency;

use engine::{CancelReason, Engine, EngineConfig, Event, EventKind, EventSink, RejectReason};

use crate::gen::Workload;

/// What a venue reported while running commands, to check it did the work the generator
/// predicted ([`gen::GenStats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunCounts {
    /// Trades (maker fills), when the venue reports them.
    pub trades: Option<u64>,
    /// Quantity traded, when the venue reports it.
    pub traded_qty: Option<u64>,
    /// IOC orders whose rest was canceled, when the venue reports it.
    pub ioc_rests: Option<u64>,
    /// Commands refused (any reason).
    pub rejects: u64,
    /// Of those, refused because the order was unknown (a generator miss).
    pub unknown_order: u64,
}

impl RunCounts {
    /// Compares what a venue reported (setup, stream, resting count after the stream) with
    /// what the generator's model predicts; `Err` lists every difference.
    ///
    /// A venue that passes did the same work as the model: same fills, same quantity, same
    /// IOC rests, no rejects (in particular no `unknown_order` misses), same book size.
    pub fn check(
        workload: &Workload,
        setup: RunCounts,
        run: RunCounts,
        resting: Option<usize>,
    ) -> Result<(), ModelMismatch> {
        let s = &workload.stats;
        let mut problems = Vec::new();
        if setup.rejects > 0 {
            problems.push(Difference::SetupRejects(setup.rejects));
        }
        if run.rejects > 0 {
            problems.push(Difference::Rejects { rejects: run.rejects, unknown_order: run.unknown_order });
        }
        let mut compare = |what: &'static str, got: Option<u64>, want: u64| {
            if let Some(got) = got {
                if got != want {
                    problems.push(Difference::Count { what, got, want });
                }
            }
        };
        compare("trades", run.trades, s.trades);
        compare("traded_qty", run.traded_qty, s.traded_qty);
        compare("ioc_rests", run.ioc_rests, s.ioc_with_rest);
        compare("resting", resting.map(|r| r as u64), s.resting_end as u64);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ModelMismatch(problems))
        }
    }
}

/// A venue did not do what the generator's model predicts: every difference found, in the order
/// checked (`setup rejects 2; trades 10 != 12`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelMismatch(pub Vec<Difference>);

impl std::fmt::Display for ModelMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ModelMismatch {}

/// One way a venue's counts differ from the model's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Difference {
    /// Setup orders (which only rest) were refused: the venue's bounds or symbols differ.
    #[error("setup rejects {0}")]
    SetupRejects(u64),
    /// Stream commands were refused; `unknown_order` of them named an order the venue did not
    /// have (the venue and the generator disagree on which orders are live).
    #[error("rejects {rejects} (unknown_order {unknown_order})")]
    Rejects {
        /// All refusals.
        rejects: u64,
        /// Of those, unknown orders.
        unknown_order: u64,
    },
    /// A count (`trades`, `traded_qty`, `ioc_rests`, `resting`) differs.
    #[error("{what} {got} != {want}")]
    Count {
        /// Which count.
        what: &'static str,
        /// The venue's.
        got: u64,
        /// The model's.
        want: u64,
    },
}

/// One implementation of a limit order book, driven by a pre-translated workload.
pub trait Venue {
    /// The venue's state: its book or books.
    type Book;

    /// Short name for reports.
    fn name(&self) -> &'static str;

    /// Fresh books with the setup phase applied, and what the setup reported.
    fn build(&self) -> (Self::Book, RunCounts);

    /// Runs the measured stream once. The caller times this call and nothing else.
    fn run(&self, book: &mut Self::Book) -> RunCounts;

    /// Runs the measured stream once like [`Venue::run`], handing each command's work to
    /// `timer` as one closure, so the latency harness can time commands one at a time.
    fn run_each<T: CommandTimer>(&self, book: &mut Self::Book, timer: &mut T) -> RunCounts;

    /// Resting orders in the book, for the after-run check; `None` when the venue has no
    /// cheap way to count them.
    fn resting(&self, book: &Self::Book) -> Option<usize>;
}

/// Times the work of one command at a time (see [`Venue::run_each`]).
pub trait CommandTimer {
    /// Runs `work` (one command, outcome included) and records how long it took.
    fn time<R>(&mut self, work: impl FnOnce() -> R) -> R;
}

/// Counts what the run must be checked against and drops every event.
///
/// It inspects each event's kind, which is the least any consumer of the event stream does;
/// peers are likewise asked for their outcome's status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatsSink {
    /// Events seen.
    pub events: u64,
    /// Trades seen.
    pub trades: u64,
    /// Quantity traded.
    pub traded_qty: u64,
    /// IOC rests canceled.
    pub ioc_rests: u64,
    /// Rejects seen.
    pub rejects: u64,
    /// Rejects with reason `unknown_order`.
    pub unknown_order: u64,
}

impl EventSink for StatsSink {
    #[inline]
    fn event(&mut self, event: &Event) {
        self.events += 1;
        match event.kind {
            EventKind::Trade { qty, .. } => {
                self.trades += 1;
                self.traded_qty += qty;
            }
            EventKind::Canceled { reason: CancelReason::Ioc, .. } => self.ioc_rests += 1,
            EventKind::Rejected { reason, .. } => {
                self.rejects += 1;
                if reason == RejectReason::UnknownOrder {
                    self.unknown_order += 1;
                }
            }
            _ => {}
        }
    }
}

impl From<StatsSink> for RunCounts {
    fn from(s: StatsSink) -> RunCounts {
        RunCounts {
            trades: Some(s.trades),
            traded_qty: Some(s.traded_qty),
            ioc_rests: Some(s.ioc_rests),
            rejects: s.rejects,
            unknown_order: s.unknown_order,
        }
    }
}

/// Our engine, sized from the workload.
pub struct EngineVenue<'a> {
    workload: &'a Workload,
}

impl<'a> EngineVenue<'a> {
    /// Runs `workload` through [`Engine`].
    pub fn new(workload: &'a Workload) -> Self {
        EngineVenue { workload }
    }

    /// The engine configuration the workload needs.
    pub fn config(&self) -> EngineConfig {
        EngineConfig {
            symbols: self.workload.symbols.clone(),
            orders_max: self.workload.orders_max(),
            levels_per_side_max: self.workload.levels_per_side_max(),
        }
    }
}

impl Venue for EngineVenue<'_> {
    type Book = Engine;

    fn name(&self) -> &'static str {
        "engine"
    }

    fn build(&self) -> (Engine, RunCounts) {
        let mut engine = Engine::new(self.config());
        let mut sink = StatsSink::default();
        engine.process_batch(&self.workload.setup, &mut sink);
        (engine, sink.into())
    }

    fn run(&self, engine: &mut Engine) -> RunCounts {
        let mut sink = StatsSink::default();
        // The whole stream at once: the engine prefetches for the commands ahead.
        engine.process_batch(&self.workload.stream, &mut sink);
        sink.into()
    }

    fn run_each<T: CommandTimer>(&self, engine: &mut Engine, timer: &mut T) -> RunCounts {
        let mut sink = StatsSink::default();
        for cmd in &self.workload.stream {
            timer.time(|| engine.process(cmd, &mut sink));
        }
        sink.into()
    }

    fn resting(&self, _engine: &Engine) -> Option<usize> {
        // The trade, IOC-rest and reject counts already pin the engine's behaviour down; a
        // snapshot of a million orders would cost more than the run.
        None
    }
}
