//! Monitoring for the venue: counters, gauges and histograms that each stage's thread records
//! into a memory-mapped counters file at the cost of a load and a store, a reader that another
//! process (`exchange stat`) or the HTTP endpoint uses to copy them out, the Prometheus text
//! rendered from such a copy, health checks for `/livez` and `/readyz`, and alert rules.
//!
//! **Invariant:** recording never locks, allocates, makes a syscall or waits: each value has a
//! single writer (its handle is `Send`, not `Sync` or `Clone`), and everything else — reading,
//! rendering, serving — happens on other threads from a snapshot, so a slow scraper can only
//! see older numbers, never slow a stage.
//!
//! How a stage records:
//! ```
//! use monitor::{metrics, Registry};
//! let mut registry = Registry::anonymous()?; // Registry::create(&monitor::counters_path(data_dir)) in serve
//! let orders = registry.counter(&metrics::ORDERS_IN, "gateway", &[("type", "limit")])?;
//! let decode = registry.histogram(&metrics::STAGE_LATENCY, "gateway", &[("stage", "decode")])?;
//! // ... move the handles to the gateway thread, then per message:
//! orders.inc();
//! decode.record_ns(1_800);
//! let snapshot = registry.reader().snapshot()?;
//! assert_eq!(snapshot.metrics.len(), 2);
//! # Ok::<(), monitor::CountersError>(())
//! ```
#![warn(missing_docs, unreachable_pub)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

use std::path::{Path, PathBuf};

pub mod browser;
pub mod buckets;
pub mod health;
#[cfg(feature = "http")]
pub mod http;
pub mod layout;
pub mod metrics;
pub mod prometheus;
mod reader;
mod region;
mod registry;
pub mod stat;
#[cfg(test)]
mod testing;

pub use layout::Kind;
pub use reader::{CountersReader, HistogramSnapshot, MetricSnapshot, Snapshot, Value};
pub use registry::{Counter, Gauge, Histogram, Registry, LABEL_PAIRS_MAX};

/// Where a venue with data directory `data_dir` keeps its counters file.
pub fn counters_path(data_dir: &Path) -> PathBuf {
    data_dir.join("monitor").join("counters.bin")
}

/// Failures creating, registering into or reading a counters file.
#[derive(Debug, thiserror::Error)]
pub enum CountersError {
    /// The file could not be created, sized, mapped or opened.
    #[error("counters file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file is not a counters file of this layout.
    #[error("counters file {path}: bad {what}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The field that did not check out.
        what: &'static str,
    },
    /// The file has another format version.
    #[error("counters file {path}: format version {found}, this build reads {}", layout::FORMAT_VERSION)]
    Version {
        /// The file.
        path: PathBuf,
        /// The version it has.
        found: u32,
    },
    /// A metric name is not `[a-zA-Z_:][a-zA-Z0-9_:]*` of at most `NAME_BYTES_MAX` bytes.
    #[error("metric name {name:?} is not a valid Prometheus name")]
    BadName {
        /// The name.
        name: String,
    },
    /// A label name is invalid, reserved (`__*`, `le`) or repeated.
    #[error("metric {name}: label {label:?} is invalid, reserved or repeated")]
    BadLabel {
        /// The metric.
        name: String,
        /// The label name.
        label: String,
    },
    /// A text is longer than its field in the file.
    #[error("metric {name}: {what} longer than {max}")]
    TooLong {
        /// The metric.
        name: String,
        /// Which text.
        what: &'static str,
        /// Its bound.
        max: usize,
    },
    /// The same name and labels were registered twice.
    #[error("metric {name}{{{labels}}} registered twice")]
    Duplicate {
        /// The metric.
        name: String,
        /// Its labels.
        labels: String,
    },
    /// A name was registered again with another kind or help.
    #[error("metric {name} registered again with another kind or help")]
    FamilyMismatch {
        /// The metric.
        name: String,
    },
    /// The file has no room left.
    #[error("counters file full: more than {max} {what}")]
    Full {
        /// What ran out.
        what: &'static str,
        /// Its bound.
        max: usize,
    },
}
