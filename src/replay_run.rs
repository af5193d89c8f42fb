//! `exchange replay`: rebuild state from a journal directory, verify it, emit the events.
//!
//! Reads the command journal from the start (every record's CRC and the sequence continuity
//! are checked by the reader), runs the commands through a fresh engine, and compares every
//! event with the event journal where it has one: the same journal always yields the same
//! events, byte for byte, and a difference is an error naming the event.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use engine::{Engine, EngineConfig, Event, EventSink};
use journal::{CommandBatches, CommandFeed, DurableError, EventVerifier, COMMAND_FEED_BATCH};

use crate::event_file::{write_books, write_event};
use crate::journal_meta::{read_accounts, read_meta};
use crate::names::Names;

/// Options of `exchange replay`.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Journal directory (as written by `match --journal` or `serve`).
    pub journal: PathBuf,
    /// Events output (JSON Lines); standard output when absent, nothing with `quiet`.
    pub events: Option<PathBuf>,
    /// Final book output.
    pub book: Option<PathBuf>,
    /// Stop after this command seq.
    pub until_seq: Option<u64>,
    /// Write no events (measure or verify only).
    pub quiet: bool,
    /// Bound on live orders.
    pub orders_max: usize,
}

/// What a replay did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplaySummary {
    /// Commands replayed.
    pub commands: u64,
    /// Events produced.
    pub events: u64,
    /// Events compared equal with the event journal.
    pub events_verified: u64,
}

/// Why a replay failed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// A file could not be read or written.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// A journal is corrupt or unreadable.
    #[error("{0}")]
    Journal(#[from] journal::JournalError),
    /// A record does not decode.
    #[error("{journal} record {seq}: {message}")]
    Decode {
        /// Which journal.
        journal: &'static str,
        /// Record seq.
        seq: u64,
        /// Decoder message.
        message: String,
    },
    /// The replayed events differ from the event journal, or it is unreadable.
    #[error("{0}")]
    Verify(#[from] DurableError),
    /// A bound of the engine's configuration (`--orders-max`) is out of range.
    #[error("{0}")]
    Config(#[from] engine::ConfigError),
    /// The directory given is not a journal directory.
    #[error("{}: {what}", path.display())]
    NotAJournal {
        /// The directory given.
        path: PathBuf,
        /// What was expected there, and the likely right path.
        what: String,
    },
}

/// What a journal directory holds, for the message when `--journal` names something else.
const JOURNAL_LAYOUT: &str = "a journal directory holds meta.json, accounts.txt, commands/ and events/ \
     (written by `exchange match --journal DIR`, or by `exchange serve` in DATA/journal)";

/// Refuses a path that is not a journal directory with what was expected, and the right path
/// when it is a `serve` data directory (whose journal is one level down).
fn check_journal_dir(dir: &Path) -> Result<(), ReplayError> {
    let refuse = |what: String| Err(ReplayError::NotAJournal { path: dir.to_path_buf(), what });
    if !dir.exists() {
        return refuse(format!("no such directory; {JOURNAL_LAYOUT}"));
    }
    if !dir.is_dir() {
        return refuse(format!("not a directory; {JOURNAL_LAYOUT}"));
    }
    if dir.join("meta.json").is_file() {
        return Ok(());
    }
    if dir.join("journal").join("meta.json").is_file() {
        return refuse(format!(
            "this is a serve data directory; its journal is {}",
            dir.join("journal").display()
        ));
    }
    refuse(format!("no meta.json here; {JOURNAL_LAYOUT}"))
}

struct ReplaySink<'a, W: Write> {
    out: Option<W>,
    names: &'a Names,
    verifier: EventVerifier,
    summary: ReplaySummary,
    error: Option<ReplayError>,
}

impl<W: Write> EventSink for ReplaySink<'_, W> {
    fn event(&mut self, event: &Event) {
        if self.error.is_some() {
            return;
        }
        self.summary.events += 1;
        // The event journal may end early (a crash between a command and its events).
        if let Err(e) = self.verifier.check(event) {
            self.error = Some(e.into());
            return;
        }
        if let Some(out) = &mut self.out {
            if let Err(e) = write_event(out, event, self.names) {
                self.error = Some(e.into());
            }
        }
    }
}

/// Replays a journal directory.
pub fn run_replay(opts: &ReplayOptions) -> Result<ReplaySummary, ReplayError> {
    check_journal_dir(&opts.journal)?;
    let symbols = read_meta(&opts.journal)?;
    let mut names = Names::new(&symbols, usize::MAX);
    read_accounts(&opts.journal, &mut names)?;
    let config = EngineConfig { symbols, orders_max: opts.orders_max, ..EngineConfig::default() };
    config.validate()?;
    let mut engine = Engine::new(config);
    let out: Option<Box<dyn Write>> = match (&opts.events, opts.quiet) {
        (_, true) => None,
        (Some(p), false) => Some(Box::new(
            File::create(p).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", p.display())))?,
        )),
        (None, false) => Some(Box::new(io::stdout().lock())),
    };
    let mut sink = ReplaySink {
        out: out.map(BufWriter::new),
        names: &names,
        verifier: EventVerifier::open(&opts.journal.join("events"), 1)?,
        summary: ReplaySummary::default(),
        error: None,
    };
    // The feed thread reads ahead (CRC, seq, decode) while this one matches, batch by batch.
    let batches = CommandBatches::open_from_start(opts.journal.join("commands"))?;
    let mut commands = CommandFeed::start(batches, COMMAND_FEED_BATCH)?;
    let progress = crate::progress::Progress::count("commands", !opts.quiet);
    'replay: loop {
        let batch = commands.next_batch().map_err(|e| match e {
            DurableError::Codec { journal, seq, source } => {
                ReplayError::Decode { journal, seq, message: source.to_string() }
            }
            DurableError::Journal(e) => ReplayError::Journal(e),
            e => ReplayError::Verify(e),
        })?;
        if batch.is_empty() {
            break;
        }
        // The whole batch through the engine's look-ahead (a deep book replays faster); the
        // gate runs before each command: stop at a verification error or past `--until-seq`.
        let mut past_until = false;
        engine.process_batch_with(batch, &mut sink, |command, sink| {
            let seq = command.header.seq;
            if sink.error.is_some() {
                return false;
            }
            if seq.is_multiple_of(crate::progress::PROGRESS_STEP) {
                progress.set(sink.summary.commands);
            }
            if opts.until_seq.is_some_and(|until| seq > until) {
                past_until = true;
                return false;
            }
            sink.summary.commands += 1;
            true
        });
        if let Some(e) = sink.error.take() {
            return Err(e);
        }
        if past_until {
            break 'replay;
        }
    }
    if let Some(out) = &mut sink.out {
        out.flush()?;
    }
    let summary = ReplaySummary { events_verified: sink.verifier.verified(), ..sink.summary.clone() };
    if let Some(book) = &opts.book {
        let mut w = BufWriter::new(
            File::create(book).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", book.display())))?,
        );
        write_books(&mut w, &engine, &names)?;
        w.flush()?;
    }
    Ok(summary)
}
