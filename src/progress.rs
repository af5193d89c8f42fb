//! Progress of long runs (`match`, `replay`, the recovery of `serve`) on a terminal: a bar drawn on standard error by
//! indicatif, and nothing at all when standard error is not a terminal (a pipe, a file, a test)
//! or the run is `--quiet`, so logs and captured output never hold redraw sequences.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// Units of work between two updates of the bar: updates cost an atomic and a clock read, and
/// the bar redraws at most a few times a second anyway.
pub(crate) const PROGRESS_STEP: u64 = 4096;

/// A progress bar, or nothing.
pub(crate) struct Progress(Option<ProgressBar>);

impl Progress {
    fn enabled(wanted: bool) -> bool {
        wanted && std::io::stderr().is_terminal()
    }

    /// Progress through `total_bytes` of input.
    pub(crate) fn bytes(total_bytes: u64, wanted: bool) -> Progress {
        if !Progress::enabled(wanted) {
            return Progress(None);
        }
        let bar = ProgressBar::new(total_bytes);
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Progress(Some(bar))
    }

    /// A count of `what` with no known total.
    pub(crate) fn count(what: &'static str, wanted: bool) -> Progress {
        if !Progress::enabled(wanted) {
            return Progress(None);
        }
        let bar = ProgressBar::new_spinner();
        let template = format!("{{spinner}} {{pos}} {what} ({{per_sec}}) {{elapsed}}");
        bar.set_style(
            ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        Progress(Some(bar))
    }

    /// Progress through `total` of `what`, the total set later with [`Progress::set_total`].
    pub(crate) fn of(what: &'static str, wanted: bool) -> Progress {
        if !Progress::enabled(wanted) {
            return Progress(None);
        }
        let bar = ProgressBar::new(0);
        let template = format!("{{bar:40}} {{pos}}/{{len}} {what} ({{per_sec}}) eta {{eta}}");
        bar.set_style(
            ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Progress(Some(bar))
    }

    /// Sets the total.
    pub(crate) fn set_total(&self, total: u64) {
        if let Some(bar) = &self.0 {
            bar.set_length(total);
        }
    }

    /// Sets the position (bytes or count).
    pub(crate) fn set(&self, position: u64) {
        if let Some(bar) = &self.0 {
            bar.set_position(position);
        }
    }

    /// Sets the message after the figures.
    pub(crate) fn message(&self, text: String) {
        if let Some(bar) = &self.0 {
            bar.set_message(text);
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
        }
    }
}
