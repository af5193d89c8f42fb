//! `exchange match`: a command file through the engine in-process, no network.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;

use engine::{Command, CommandHeader, Engine, EngineConfig, Event, EventKind, EventSink};
use journal::{DurableConfig, DurableEngine};

use crate::command_file::parse_line;
use crate::event_file::{write_books, write_event};
use crate::names::Names;

/// Options of `exchange match`.
#[derive(Debug, Clone)]
pub struct MatchOptions {
    /// Command file (JSON Lines).
    pub commands: PathBuf,
    /// Events output; standard output when absent.
    pub events: Option<PathBuf>,
    /// Final book output.
    pub book: Option<PathBuf>,
    /// Abort at the first bad line instead of skipping it.
    pub strict: bool,
    /// Engine bounds and symbols.
    pub engine: EngineConfig,
    /// Bound on distinct account names.
    pub accounts_max: usize,
    /// Journal everything into this (new or empty) directory, for `replay`.
    pub journal: Option<DurableConfig>,
    /// Show progress on standard error when it is a terminal.
    pub progress: bool,
}

/// What a run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MatchSummary {
    /// Lines turned into commands.
    pub commands: u64,
    /// Lines skipped as bad.
    pub lines_skipped: u64,
    /// Events written.
    pub events: u64,
    /// Trades among them.
    pub trades: u64,
    /// Rejects among them.
    pub rejects: u64,
    /// Lines run although they name a field the format does not have (warned about).
    pub lines_with_unknown_fields: u64,
}

/// Lines warned about for unknown fields before the rest are only counted: a generated file
/// with one misspelling on every line would otherwise bury the output.
const UNKNOWN_FIELD_WARNINGS_MAX: u64 = 10;

/// Why `match` stopped.
#[derive(Debug, thiserror::Error)]
pub enum MatchError {
    /// A bound of the engine's configuration (`--orders-max`) is out of range.
    #[error("{0}")]
    Config(#[from] engine::ConfigError),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: io::Error,
    },
    /// The journal could not be opened or written.
    #[error("journal {path}: {message}")]
    Journal {
        /// The journal directory.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A bad line under `--strict`.
    #[error("{path}:{line}: {message}")]
    BadLine {
        /// The command file.
        path: String,
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        message: String,
    },
}

/// Stamps commands like the live sequencer, but with time from the file: `seq` is gapless from
/// 1; `ts` is the line's `ts`, or the previous command's when absent, and never goes backwards
/// (so GTD expiry is deterministic and a file replays identically).
#[derive(Debug, Default)]
pub struct FileSequencer {
    seq: u64,
    ts: u64,
}

impl FileSequencer {
    /// The header for the next command.
    pub fn next(&mut self, ts: Option<u64>) -> CommandHeader {
        self.seq += 1;
        self.ts = self.ts.max(ts.unwrap_or(0));
        CommandHeader { seq: self.seq, ts: self.ts }
    }
}

struct JsonSink<'a, W: Write> {
    out: W,
    names: &'a Names,
    summary: &'a mut MatchSummary,
    error: Option<io::Error>,
}

impl<W: Write> EventSink for JsonSink<'_, W> {
    fn event(&mut self, event: &Event) {
        self.summary.events += 1;
        match event.kind {
            EventKind::Trade { .. } => self.summary.trades += 1,
            EventKind::Rejected { .. } => self.summary.rejects += 1,
            _ => {}
        }
        if self.error.is_none() {
            if let Err(e) = write_event(&mut self.out, event, self.names) {
                self.error = Some(e);
            }
        }
    }
}

/// Runs a command file through a fresh engine.
pub fn run_match(opts: &MatchOptions) -> Result<MatchSummary, MatchError> {
    opts.engine.validate()?;
    let path = opts.commands.display().to_string();
    let io_err = |path: &str| {
        let path = path.to_string();
        move |source| MatchError::Io { path: path.clone(), source }
    };
    let file = File::open(&opts.commands).map_err(io_err(&path))?;
    let total_bytes = file.metadata().map_or(0, |m| m.len());
    let progress = crate::progress::Progress::bytes(total_bytes, opts.progress);
    let mut bytes_read = 0u64;
    let input = BufReader::new(file);
    let (out, out_path): (Box<dyn Write>, String) = match &opts.events {
        Some(p) => {
            (Box::new(File::create(p).map_err(io_err(&p.display().to_string()))?), p.display().to_string())
        }
        None => (Box::new(io::stdout().lock()), "<stdout>".to_string()),
    };
    let mut names = Names::new(&opts.engine.symbols, opts.accounts_max);
    let mut backend = match &opts.journal {
        None => Backend::Plain(Box::new(Engine::new(opts.engine.clone()))),
        Some(config) => Backend::Journaled(open_new_journal(opts, config)?),
    };
    let mut accounts_journaled = 0;
    let mut summary = MatchSummary::default();
    let mut sequencer = FileSequencer::default();
    let mut out = BufWriter::new(out);
    for (index, line) in input.lines().enumerate() {
        let line_no = index as u64 + 1;
        let line = line.map_err(io_err(&path))?;
        bytes_read += line.len() as u64 + 1;
        if line_no.is_multiple_of(crate::progress::PROGRESS_STEP) {
            progress.set(bytes_read);
            progress.message(format!("{} trades", summary.trades));
        }
        if line.trim().is_empty() {
            continue;
        }
        let parsed = match parse_line(&line, &mut names) {
            Ok(parsed) => parsed,
            Err(e) if opts.strict => {
                return Err(MatchError::BadLine { path, line: line_no, message: e.to_string() })
            }
            Err(e) => {
                eprintln!("{path}:{line_no}: skipped: {e}");
                summary.lines_skipped += 1;
                continue;
            }
        };
        if let Some(e) = parsed.unknown_field_error() {
            if opts.strict {
                return Err(MatchError::BadLine { path, line: line_no, message: e.to_string() });
            }
            summary.lines_with_unknown_fields += 1;
            if summary.lines_with_unknown_fields <= UNKNOWN_FIELD_WARNINGS_MAX {
                eprintln!("{path}:{line_no}: warning: {e}: ignored (--strict refuses it)");
            }
            if summary.lines_with_unknown_fields == UNKNOWN_FIELD_WARNINGS_MAX {
                eprintln!("{path}: further lines with unknown fields are counted, not shown");
            }
        }
        let command = Command { header: sequencer.next(parsed.ts), kind: parsed.kind };
        summary.commands += 1;
        if let Backend::Journaled(durable) = &mut backend {
            let dir = durable_dir(opts);
            let journal_err =
                |message: String| MatchError::Journal { path: dir.display().to_string(), message };
            // A new account's name reaches the directory before its first command.
            if names.accounts_len() > accounts_journaled {
                crate::journal_meta::append_accounts(&dir, &names, accounts_journaled)
                    .map_err(|e| journal_err(e.to_string()))?;
                accounts_journaled = names.accounts_len();
            }
            let mut sink = JsonSink { out: &mut out, names: &names, summary: &mut summary, error: None };
            durable.process(&command, &mut sink).map_err(|e| journal_err(e.to_string()))?;
            if let Some(e) = sink.error {
                return Err(MatchError::Io { path: out_path, source: e });
            }
            // Events count as acknowledged once written out, which is after their journal
            // records: flush per command so a crash never shows an event the journal lacks.
            out.flush().map_err(io_err(&out_path))?;
        } else if let Backend::Plain(engine) = &mut backend {
            let mut sink = JsonSink { out: &mut out, names: &names, summary: &mut summary, error: None };
            engine.process(&command, &mut sink);
            if let Some(e) = sink.error {
                return Err(MatchError::Io { path: out_path, source: e });
            }
        }
    }
    out.flush().map_err(io_err(&out_path))?;
    if let Some(book_path) = &opts.book {
        let p = book_path.display().to_string();
        let mut w = BufWriter::new(File::create(book_path).map_err(io_err(&p))?);
        write_books(&mut w, backend.engine(), &names).map_err(io_err(&p))?;
        w.flush().map_err(io_err(&p))?;
    }
    Ok(summary)
}

enum Backend {
    Plain(Box<Engine>),
    Journaled(Box<DurableEngine>),
}

impl Backend {
    fn engine(&self) -> &Engine {
        match self {
            Backend::Plain(engine) => engine,
            Backend::Journaled(durable) => durable.engine(),
        }
    }
}

fn durable_dir(opts: &MatchOptions) -> PathBuf {
    opts.journal.as_ref().map(|j| j.dir.clone()).unwrap_or_default()
}

/// Opens a journal for a fresh run: the directory must hold no commands yet, since a command
/// file always starts from an empty book.
fn open_new_journal(opts: &MatchOptions, config: &DurableConfig) -> Result<Box<DurableEngine>, MatchError> {
    let dir = config.dir.display().to_string();
    let journal_err = |message: String| MatchError::Journal { path: dir.clone(), message };
    let (durable, _) =
        DurableEngine::open(opts.engine.clone(), config.clone()).map_err(|e| journal_err(e.to_string()))?;
    if durable.next_command_seq() != 1 {
        return Err(journal_err(format!(
            "already holds {} commands; `match --journal` needs a new or empty directory",
            durable.next_command_seq() - 1
        )));
    }
    crate::journal_meta::write_meta(&config.dir, &opts.engine.symbols)
        .map_err(|e| journal_err(e.to_string()))?;
    let _ = std::fs::remove_file(config.dir.join("accounts.txt"));
    Ok(Box::new(durable))
}
