//! The read side: maps a counters file read-only (from any process) and copies it out.
//!
//! A snapshot is not atomic across metrics: each value is read once, while the writers go on.
//! What a torn read can show, and why it is harmless:
//! - two counters read a moment apart (orders in and rejects from slightly different instants):
//!   rates over a scrape interval are unaffected;
//! - a histogram read while it is recorded into: its slots are read one after another, so the
//!   observations recorded during the read (a microsecond or so) may be in the sum and max but
//!   not the buckets, or in one bucket but not another; its count is the buckets' total, so
//!   `+Inf` and `_count` always agree, and the next snapshot includes everything;
//! - a metric registered after the count was read is simply absent until the next snapshot.
//!
//! Each 8-byte value is itself never torn: it is one aligned atomic load.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;

use memmap2::Mmap;

use crate::buckets::BUCKETS;
use crate::layout::*;
use crate::region::Region;
use crate::CountersError;

/// A read-only view of a counters file.
#[derive(Clone)]
pub struct CountersReader {
    region: Arc<Region>,
    path: PathBuf,
}

impl std::fmt::Debug for CountersReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CountersReader")
            .field("path", &self.path)
            .field("writable", &self.region.is_writable())
            .finish()
    }
}

/// Everything a counters file held at one moment (give or take: see the module docs).
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// The writer's process id.
    pub pid: u32,
    /// When the writer created the file, ns since the Unix epoch.
    pub start_time_unix_ns: u64,
    /// Every metric, in registration order.
    pub metrics: Vec<MetricSnapshot>,
}

/// One metric's metadata and value.
#[derive(Clone, Debug)]
pub struct MetricSnapshot {
    /// Prometheus name.
    pub name: String,
    /// Help line.
    pub help: String,
    /// Labels in exposition form (`a="x",b="y"`), possibly empty.
    pub labels: String,
    /// The stage that writes it.
    pub owner: String,
    /// Counter, gauge or histogram.
    pub kind: Kind,
    /// Where its values are in the values region.
    pub value_offset: usize,
    /// The value read.
    pub value: Value,
}

/// A metric's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A counter.
    Counter(u64),
    /// A gauge (nanoseconds for [`Kind::GaugeNs`]).
    Gauge(i64),
    /// A histogram.
    Histogram(Box<HistogramSnapshot>),
}

/// A histogram's slots as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistogramSnapshot {
    /// Sum of observations, ns.
    pub sum_ns: u64,
    /// Largest observation, ns.
    pub max_ns: u64,
    /// Observations per bucket, not cumulative; the last is the overflow bucket.
    pub buckets: [u64; BUCKETS],
}

impl HistogramSnapshot {
    /// Observations recorded: the buckets' total.
    pub fn total(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// Upper bound of the bucket holding the `q`-quantile (0..=1), capped at the max seen;
    /// 0 when empty.
    pub fn quantile_ns(&self, q: f64) -> u64 {
        let total = self.total();
        if total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let bound =
                    if i < crate::buckets::FINITE_BUCKETS { crate::buckets::bound_ns(i) } else { u64::MAX };
                return bound.min(self.max_ns.max(1));
            }
        }
        self.max_ns
    }
}

impl CountersReader {
    /// Maps the counters file at `path` read-only and checks its header.
    pub fn open(path: &Path) -> Result<CountersReader, CountersError> {
        let io = |source| CountersError::Io { path: path.to_path_buf(), source };
        let mut file = File::open(path).map_err(io)?;
        // Magic and version first, by a plain read: a file of another version may have another
        // size, and should be reported as such.
        let mut start = [0u8; H_VERSION + 4];
        if file.read_exact(&mut start).is_err() {
            return Err(CountersError::Corrupt { path: path.to_path_buf(), what: "file size" });
        }
        if start[H_MAGIC..H_MAGIC + 8] != MAGIC.to_ne_bytes() {
            return Err(CountersError::Corrupt { path: path.to_path_buf(), what: "magic" });
        }
        let version = u32::from_ne_bytes([
            start[H_VERSION],
            start[H_VERSION + 1],
            start[H_VERSION + 2],
            start[H_VERSION + 3],
        ]);
        if version != FORMAT_VERSION {
            return Err(CountersError::Version { path: path.to_path_buf(), found: version });
        }
        let len = file.metadata().map_err(io)?.len();
        if len != FILE_BYTES as u64 {
            return Err(CountersError::Corrupt { path: path.to_path_buf(), what: "file size" });
        }
        // SAFETY: mapped read-only; the writer only ever changes the file through atomics and
        // append-only records, and never truncates it (a new writer replaces it by rename).
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        let reader = CountersReader { region: Arc::new(Region::read_only(map)), path: path.to_path_buf() };
        reader.check_header(path)?;
        Ok(reader)
    }

    pub(crate) fn over(region: Arc<Region>, path: PathBuf) -> CountersReader {
        CountersReader { region, path }
    }

    fn check_header(&self, path: &Path) -> Result<(), CountersError> {
        let corrupt = |what| CountersError::Corrupt { path: path.to_path_buf(), what };
        if self.region.load(H_MAGIC) != MAGIC {
            return Err(corrupt("magic"));
        }
        fence(Ordering::Acquire);
        let version = self.u32_at(H_VERSION);
        if version != FORMAT_VERSION {
            return Err(CountersError::Version { path: path.to_path_buf(), found: version });
        }
        let expected = [
            (self.u32_at(H_METRICS_MAX) as u64, METRICS_MAX as u64, "metrics_max"),
            (self.u32_at(H_META_RECORD) as u64, META_RECORD_BYTES as u64, "record size"),
            (self.region.load(H_META_OFFSET), META_OFFSET as u64, "metadata offset"),
            (self.region.load(H_VALUES_OFFSET), VALUES_OFFSET as u64, "values offset"),
            (self.region.load(H_VALUES_BYTES), VALUES_BYTES as u64, "values size"),
        ];
        for (found, want, what) in expected {
            if found != want {
                return Err(corrupt(what));
            }
        }
        Ok(())
    }

    fn u32_at(&self, offset: usize) -> u32 {
        let mut bytes = [0u8; 4];
        self.region.read_bytes(offset, &mut bytes);
        u32::from_ne_bytes(bytes)
    }

    /// The writer's process id.
    pub fn pid(&self) -> u32 {
        self.u32_at(H_PID)
    }

    /// Copies every published metric out.
    pub fn snapshot(&self) -> Result<Snapshot, CountersError> {
        let corrupt = |what| CountersError::Corrupt { path: self.path.clone(), what };
        let count = self.region.load(H_METRICS_COUNT);
        // Pairs with the registry's release store of the count: the records below it are whole.
        fence(Ordering::Acquire);
        if count > METRICS_MAX as u64 {
            return Err(corrupt("metrics count"));
        }
        let mut start = [0u8; 8];
        self.region.read_bytes(H_START_NS, &mut start);
        let mut metrics = Vec::with_capacity(count as usize);
        for index in 0..count as usize {
            let mut record = [0u8; META_RECORD_BYTES];
            self.region.read_bytes(META_OFFSET + index * META_RECORD_BYTES, &mut record);
            let kind = Kind::from_code(record[M_KIND]).ok_or(corrupt("metric kind"))?;
            let text = |at: usize, len_at: usize, max: usize, what| {
                let len = record[len_at] as usize;
                if len > max {
                    return Err(corrupt(what));
                }
                String::from_utf8(record[at..at + len].to_vec()).map_err(|_| corrupt(what))
            };
            let name = text(M_NAME, M_NAME_LEN, NAME_BYTES_MAX, "metric name")?;
            let labels = text(M_LABELS, M_LABELS_LEN, LABELS_BYTES_MAX, "metric labels")?;
            let owner = text(M_OWNER, M_OWNER_LEN, OWNER_BYTES_MAX, "metric owner")?;
            let help = text(M_HELP, M_HELP_LEN, HELP_BYTES_MAX, "metric help")?;
            let mut offset_bytes = [0u8; 4];
            offset_bytes.copy_from_slice(&record[M_VALUE_OFFSET..M_VALUE_OFFSET + 4]);
            let value_offset = u32::from_ne_bytes(offset_bytes) as usize;
            if !value_offset.is_multiple_of(8) || value_offset + kind.slots() * 8 > VALUES_BYTES {
                return Err(corrupt("value offset"));
            }
            let value = self.read_value(kind, VALUES_OFFSET + value_offset);
            metrics.push(MetricSnapshot { name, help, labels, owner, kind, value_offset, value });
        }
        Ok(Snapshot { pid: self.pid(), start_time_unix_ns: u64::from_ne_bytes(start), metrics })
    }

    fn read_value(&self, kind: Kind, at: usize) -> Value {
        match kind {
            Kind::Counter => Value::Counter(self.region.load(at)),
            Kind::Gauge | Kind::GaugeNs => Value::Gauge(self.region.load(at) as i64),
            Kind::Histogram => {
                let mut buckets = [0u64; BUCKETS];
                for (i, b) in buckets.iter_mut().enumerate() {
                    *b = self.region.load(at + (HIST_BUCKETS + i) * 8);
                }
                Value::Histogram(Box::new(HistogramSnapshot {
                    sum_ns: self.region.load(at + HIST_SUM_NS * 8),
                    max_ns: self.region.load(at + HIST_MAX_NS * 8),
                    buckets,
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_files_are_refused_with_the_reason() {
        let dir = std::env::temp_dir().join(format!("monitor-reader-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("counters.bin");
        let open = |bytes: &[u8]| {
            std::fs::write(&path, bytes).unwrap();
            CountersReader::open(&path)
        };
        assert!(matches!(open(b"short"), Err(CountersError::Corrupt { what: "file size", .. })));
        assert!(matches!(open(&[7u8; 64]), Err(CountersError::Corrupt { what: "magic", .. })));
        let mut next_version = MAGIC.to_ne_bytes().to_vec();
        next_version.extend_from_slice(&(FORMAT_VERSION + 1).to_ne_bytes());
        next_version.resize(FILE_BYTES + 4096, 0);
        assert!(
            matches!(open(&next_version), Err(CountersError::Version { found, .. }) if found == FORMAT_VERSION + 1)
        );
        let mut same_version_wrong_size = MAGIC.to_ne_bytes().to_vec();
        same_version_wrong_size.extend_from_slice(&FORMAT_VERSION.to_ne_bytes());
        same_version_wrong_size.resize(4096, 0);
        assert!(matches!(
            open(&same_version_wrong_size),
            Err(CountersError::Corrupt { what: "file size", .. })
        ));
        // A whole file whose header disagrees with this build's layout.
        let mut bad_layout = same_version_wrong_size;
        bad_layout.resize(FILE_BYTES, 0);
        assert!(matches!(open(&bad_layout), Err(CountersError::Corrupt { what: "metrics_max", .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
