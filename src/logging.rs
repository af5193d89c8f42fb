//! Control-plane logs of `serve` (start-up, recovery, logons and logouts, admin changes, stop)
//! through `tracing`, as text for a terminal or JSON lines for a log shipper, on stderr. Nothing
//! per order logs: the hot path records into the monitoring counters instead.

/// How `serve` writes its log lines (`--log-format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (timestamp, level, target, fields).
    Json,
}

/// Installs the process's subscriber (INFO and above, to stderr); a second call does nothing.
pub fn init(format: LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false);
    // `try_init` fails only when a subscriber is already set (tests may start several venues).
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
