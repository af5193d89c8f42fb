//! The counters file's fixed layout (format version 1), shared by the writer and every reader.
//!
//! All integers are in the machine's byte order (the file never leaves the host that wrote it).
//!
//! ```text
//! offset 0          header, HEADER_BYTES
//!   0  u64 magic "EXCTRS01"      (written last, after everything else in the header)
//!   8  u32 format version
//!  12  u32 pid of the writer
//!  16  u64 start time, ns since the Unix epoch
//!  24  u32 metrics_max           (metadata records the file has room for)
//!  28  u32 metadata record size  (META_RECORD_BYTES)
//!  32  u64 metadata offset
//!  40  u64 values offset
//!  48  u64 values size in bytes
//!  56  u64 metrics count         (atomic; a record is complete before the count covers it)
//! offset META_OFFSET  metrics_max records of META_RECORD_BYTES, written once each, never changed
//!   0  u8  kind (1 counter, 2 gauge, 3 gauge of nanoseconds, 4 histogram)
//!   1  u8  name length     2 u8 labels length     3 u8 owner length     4 u8 help length
//!   8  u32 offset of the metric's values in the values region
//!  16  name   [NAME_BYTES_MAX]
//!  80  labels [LABELS_BYTES_MAX]  already in exposition form: a="x",b="y" (escaped)
//! 144  owner  [OWNER_BYTES_MAX]   the stage whose thread writes the values
//! 160  help   [HELP_BYTES_MAX]
//! offset VALUES_OFFSET  values, VALUES_BYTES bytes of u64 slots
//!   counter: 1 slot; gauge: 1 slot (i64 bits)
//!   histogram: sum_ns, max_ns, then BUCKETS bucket counts (not cumulative); the count is
//!   their total, so a record stores no separate count
//! ```
//!
//! A stage's values are packed together and no cache line holds values of two stages, so two
//! writer threads never contend for a line.

use crate::buckets::BUCKETS;

/// First 8 bytes of a counters file.
pub const MAGIC: u64 = u64::from_ne_bytes(*b"EXCTRS01");
/// Layout version; a reader refuses any other.
pub const FORMAT_VERSION: u32 = 1;
/// The unit of sharing between cores.
pub const CACHE_LINE_BYTES: usize = 64;

/// Header size.
pub const HEADER_BYTES: usize = 128;
/// Metrics a file has room for; registering one more is an error.
pub const METRICS_MAX: usize = 1024;
/// Size of one metadata record.
pub const META_RECORD_BYTES: usize = 256;
/// Longest metric name.
pub const NAME_BYTES_MAX: usize = 64;
/// Longest label text (`a="x",b="y"`).
pub const LABELS_BYTES_MAX: usize = 64;
/// Longest owner (stage) name.
pub const OWNER_BYTES_MAX: usize = 16;
/// Longest help text.
pub const HELP_BYTES_MAX: usize = 96;
/// Size of the values region: room for every metric's slots, cache-line padded per stage.
pub const VALUES_BYTES: usize = 1 << 20;

/// Where the metadata records start.
pub const META_OFFSET: usize = HEADER_BYTES;
/// Where the values start.
pub const VALUES_OFFSET: usize = META_OFFSET + METRICS_MAX * META_RECORD_BYTES;
/// Size of the whole file.
pub const FILE_BYTES: usize = VALUES_OFFSET + VALUES_BYTES;

pub(crate) const H_MAGIC: usize = 0;
pub(crate) const H_VERSION: usize = 8;
pub(crate) const H_PID: usize = 12;
pub(crate) const H_START_NS: usize = 16;
pub(crate) const H_METRICS_MAX: usize = 24;
pub(crate) const H_META_RECORD: usize = 28;
pub(crate) const H_META_OFFSET: usize = 32;
pub(crate) const H_VALUES_OFFSET: usize = 40;
pub(crate) const H_VALUES_BYTES: usize = 48;
pub(crate) const H_METRICS_COUNT: usize = 56;

pub(crate) const M_KIND: usize = 0;
pub(crate) const M_NAME_LEN: usize = 1;
pub(crate) const M_LABELS_LEN: usize = 2;
pub(crate) const M_OWNER_LEN: usize = 3;
pub(crate) const M_HELP_LEN: usize = 4;
pub(crate) const M_VALUE_OFFSET: usize = 8;
pub(crate) const M_NAME: usize = 16;
pub(crate) const M_LABELS: usize = M_NAME + NAME_BYTES_MAX;
pub(crate) const M_OWNER: usize = M_LABELS + LABELS_BYTES_MAX;
pub(crate) const M_HELP: usize = M_OWNER + OWNER_BYTES_MAX;

/// Slots of a histogram: sum, max, then the buckets.
pub(crate) const HISTOGRAM_SLOTS: usize = 2 + BUCKETS;
pub(crate) const HIST_SUM_NS: usize = 0;
pub(crate) const HIST_MAX_NS: usize = 1;
pub(crate) const HIST_BUCKETS: usize = 2;

const _: () = assert!(H_METRICS_COUNT + 8 <= HEADER_BYTES);
const _: () = assert!(M_HELP + HELP_BYTES_MAX == META_RECORD_BYTES);
const _: () = assert!(HELP_BYTES_MAX <= u8::MAX as usize, "lengths are stored in a u8");
const _: () = assert!(VALUES_OFFSET.is_multiple_of(CACHE_LINE_BYTES));
const _: () = assert!(VALUES_BYTES <= u32::MAX as usize);
// docs/monitoring.md states the layout's offsets and size: change them together.
const _: () = assert!(VALUES_OFFSET == 262_272 && FILE_BYTES == 1_310_848);
// Every metric takes at most a histogram's whole cache lines, so the values region can never
// fill before the metadata records do: the only "full" a registration can meet is METRICS_MAX.
const _: () = assert!(METRICS_MAX * HISTOGRAM_SLOTS.div_ceil(8) * CACHE_LINE_BYTES <= VALUES_BYTES);

/// What a metric is, and so how its values are laid out and rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (a `u64`).
    Counter,
    /// Goes up and down (an `i64`).
    Gauge,
    /// A gauge of nanoseconds, rendered in seconds (a name ending in `_seconds`).
    GaugeNs,
    /// Fixed-bucket histogram of nanoseconds, rendered in seconds.
    Histogram,
}

impl Kind {
    pub(crate) const fn code(self) -> u8 {
        match self {
            Kind::Counter => 1,
            Kind::Gauge => 2,
            Kind::GaugeNs => 3,
            Kind::Histogram => 4,
        }
    }

    pub(crate) const fn from_code(code: u8) -> Option<Kind> {
        match code {
            1 => Some(Kind::Counter),
            2 => Some(Kind::Gauge),
            3 => Some(Kind::GaugeNs),
            4 => Some(Kind::Histogram),
            _ => None,
        }
    }

    /// Number of `u64` slots the metric's values take.
    pub(crate) const fn slots(self) -> usize {
        match self {
            Kind::Counter | Kind::Gauge | Kind::GaugeNs => 1,
            Kind::Histogram => HISTOGRAM_SLOTS,
        }
    }
}
