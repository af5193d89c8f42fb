//! The writer side: a registry that lays metrics out in the counters file at start-up, and the
//! handles stages record through.
//!
//! Each value has one writer, the thread that owns its handle. Handles are `Send` (move one to
//! its stage's thread) but neither `Sync` nor `Clone`, so two threads can never record into the
//! same value; that is what lets an increment be a plain load and store instead of a locked
//! read-modify-write.

use std::cell::Cell;
use std::fs::{self, OpenOptions};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use memmap2::MmapMut;

use crate::buckets::bucket_index;
use crate::layout::*;
use crate::metrics::{CounterDef, GaugeDef, HistogramDef};
use crate::reader::CountersReader;
use crate::region::Region;
use crate::CountersError;

/// Labels longer than this many pairs are refused (the text must fit [`LABELS_BYTES_MAX`]).
pub const LABEL_PAIRS_MAX: usize = 4;

/// Lays metrics out in a counters file; used at start-up, never on the hot path.
pub struct Registry {
    region: Arc<Region>,
    path: Option<PathBuf>,
    /// (name, labels, kind, help) of every metric so far, to refuse duplicates and mixed kinds.
    entries: Vec<(String, String, Kind, String)>,
    /// Per owner: the cache line its small values are being packed into and the bytes used.
    open_lines: Vec<(String, usize, usize)>,
    /// Bytes of the values region handed out, always a whole number of cache lines.
    values_used: usize,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("path", &self.path)
            .field("metrics", &self.entries.len())
            .field("values_used", &self.values_used)
            .finish()
    }
}

impl Registry {
    /// Creates the counters file at `path` (replacing any older one) and maps it.
    ///
    /// The file is built beside its final name and renamed into place, so a reader never maps
    /// a file whose header is half written.
    pub fn create(path: &Path) -> Result<Registry, CountersError> {
        let io = |source| CountersError::Io { path: path.to_path_buf(), source };
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(io)?;
        }
        let tmp = path.with_extension("tmp");
        let file =
            OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&tmp).map_err(io)?;
        file.set_len(FILE_BYTES as u64).map_err(io)?;
        // SAFETY: the file was just created by us at a private name; nothing else maps it until
        // the rename below, and afterwards others only read it.
        let map = unsafe { MmapMut::map_mut(&file) }.map_err(io)?;
        let registry = Registry::over(map, Some(path.to_path_buf()));
        fs::rename(&tmp, path).map_err(io)?;
        Ok(registry)
    }

    /// A registry over anonymous memory: for tests, benches and runs without a data directory.
    pub fn anonymous() -> Result<Registry, CountersError> {
        let map = MmapMut::map_anon(FILE_BYTES)
            .map_err(|source| CountersError::Io { path: PathBuf::from("<anonymous>"), source })?;
        Ok(Registry::over(map, None))
    }

    fn over(map: MmapMut, path: Option<PathBuf>) -> Registry {
        let region = Arc::new(Region::writable(map));
        let start_ns = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        let mut header = [0u8; HEADER_BYTES];
        let mut put = |at: usize, bytes: &[u8]| header[at..at + bytes.len()].copy_from_slice(bytes);
        put(H_VERSION, &FORMAT_VERSION.to_ne_bytes());
        put(H_PID, &std::process::id().to_ne_bytes());
        put(H_START_NS, &start_ns.to_ne_bytes());
        put(H_METRICS_MAX, &(METRICS_MAX as u32).to_ne_bytes());
        put(H_META_RECORD, &(META_RECORD_BYTES as u32).to_ne_bytes());
        put(H_META_OFFSET, &(META_OFFSET as u64).to_ne_bytes());
        put(H_VALUES_OFFSET, &(VALUES_OFFSET as u64).to_ne_bytes());
        put(H_VALUES_BYTES, &(VALUES_BYTES as u64).to_ne_bytes());
        region.write_bytes(0, &header);
        region.slot(H_MAGIC).store(MAGIC, Ordering::Release);
        Registry { region, path, entries: Vec::new(), open_lines: Vec::new(), values_used: 0 }
    }

    /// Where the file is, if it is one.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Metrics registered so far.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True before the first registration.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A reader over the same memory, for serving `/metrics` from the writing process.
    pub fn reader(&self) -> CountersReader {
        CountersReader::over(
            Arc::clone(&self.region),
            self.path.clone().unwrap_or_else(|| PathBuf::from("<anonymous>")),
        )
    }

    /// Registers a counter written by `owner`'s thread.
    pub fn counter(
        &mut self,
        def: &CounterDef,
        owner: &str,
        labels: &[(&str, &str)],
    ) -> Result<Counter, CountersError> {
        let offset = self.register(def.name, def.help, Kind::Counter, owner, labels)?;
        Ok(Counter {
            slot: self.slot_ptr(offset),
            _region: Arc::clone(&self.region),
            _single_writer: PhantomData,
        })
    }

    /// Registers a gauge written by `owner`'s thread.
    pub fn gauge(
        &mut self,
        def: &GaugeDef,
        owner: &str,
        labels: &[(&str, &str)],
    ) -> Result<Gauge, CountersError> {
        let kind = if def.nanoseconds { Kind::GaugeNs } else { Kind::Gauge };
        let offset = self.register(def.name, def.help, kind, owner, labels)?;
        Ok(Gauge {
            slot: self.slot_ptr(offset),
            _region: Arc::clone(&self.region),
            _single_writer: PhantomData,
        })
    }

    /// Registers a histogram of nanoseconds written by `owner`'s thread.
    pub fn histogram(
        &mut self,
        def: &HistogramDef,
        owner: &str,
        labels: &[(&str, &str)],
    ) -> Result<Histogram, CountersError> {
        let offset = self.register(def.name, def.help, Kind::Histogram, owner, labels)?;
        Ok(Histogram {
            slots: self.slot_ptr(offset),
            _region: Arc::clone(&self.region),
            _single_writer: PhantomData,
        })
    }

    fn slot_ptr(&self, values_offset: usize) -> NonNull<AtomicU64> {
        NonNull::from(self.region.slot(VALUES_OFFSET + values_offset))
    }

    /// Checks the metric, finds room for its values and publishes its metadata record;
    /// returns the values' offset in the values region.
    fn register(
        &mut self,
        name: &str,
        help: &str,
        kind: Kind,
        owner: &str,
        labels: &[(&str, &str)],
    ) -> Result<usize, CountersError> {
        check_metric_name(name)?;
        let labels_text = labels_text(name, labels)?;
        let too_long = |what, max| CountersError::TooLong { name: name.to_owned(), what, max };
        if owner.is_empty() || owner.len() > OWNER_BYTES_MAX {
            return Err(too_long("owner", OWNER_BYTES_MAX));
        }
        if help.len() > HELP_BYTES_MAX {
            return Err(too_long("help", HELP_BYTES_MAX));
        }
        for (other_name, other_labels, other_kind, other_help) in &self.entries {
            if other_name == name {
                if *other_labels == labels_text {
                    return Err(CountersError::Duplicate { name: name.to_owned(), labels: labels_text });
                }
                if *other_kind != kind || other_help != help {
                    return Err(CountersError::FamilyMismatch { name: name.to_owned() });
                }
            }
        }
        let index = self.entries.len();
        if index == METRICS_MAX {
            return Err(CountersError::Full { what: "metrics", max: METRICS_MAX });
        }
        let value_offset = self.place(owner, kind.slots() * 8);

        let mut record = [0u8; META_RECORD_BYTES];
        record[M_KIND] = kind.code();
        record[M_NAME_LEN] = name.len() as u8;
        record[M_LABELS_LEN] = labels_text.len() as u8;
        record[M_OWNER_LEN] = owner.len() as u8;
        record[M_HELP_LEN] = help.len() as u8;
        record[M_VALUE_OFFSET..M_VALUE_OFFSET + 4].copy_from_slice(&(value_offset as u32).to_ne_bytes());
        record[M_NAME..M_NAME + name.len()].copy_from_slice(name.as_bytes());
        record[M_LABELS..M_LABELS + labels_text.len()].copy_from_slice(labels_text.as_bytes());
        record[M_OWNER..M_OWNER + owner.len()].copy_from_slice(owner.as_bytes());
        record[M_HELP..M_HELP + help.len()].copy_from_slice(help.as_bytes());
        self.region.write_bytes(META_OFFSET + index * META_RECORD_BYTES, &record);
        // Publishes the record: a reader that sees the new count sees the whole record.
        self.region.slot(H_METRICS_COUNT).store(index as u64 + 1, Ordering::Release);
        self.entries.push((name.to_owned(), labels_text, kind, help.to_owned()));
        Ok(value_offset)
    }

    /// Finds `bytes` of room for `owner`'s values: small values share the owner's current
    /// cache line, anything else starts a fresh line; no line ever holds two owners' values.
    fn place(&mut self, owner: &str, bytes: usize) -> usize {
        if bytes <= CACHE_LINE_BYTES {
            if let Some((_, line, used)) = self.open_lines.iter_mut().find(|(o, _, _)| o == owner) {
                if *used + bytes <= CACHE_LINE_BYTES {
                    let at = *line + *used;
                    *used += bytes;
                    return at;
                }
            }
        }
        let lines = bytes.div_ceil(CACHE_LINE_BYTES);
        let at = self.values_used;
        // Cannot fail: layout.rs proves METRICS_MAX of the largest metric fit.
        assert!(at + lines * CACHE_LINE_BYTES <= VALUES_BYTES, "values region overflow");
        self.values_used += lines * CACHE_LINE_BYTES;
        if bytes < CACHE_LINE_BYTES {
            match self.open_lines.iter_mut().find(|(o, _, _)| o == owner) {
                Some(open) => *open = (owner.to_owned(), at, bytes),
                None => self.open_lines.push((owner.to_owned(), at, bytes)),
            }
        }
        at
    }
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`, as Prometheus requires, and short enough for the record.
fn check_metric_name(name: &str) -> Result<(), CountersError> {
    let ok = !name.is_empty()
        && name.len() <= NAME_BYTES_MAX
        && name
            .bytes()
            .enumerate()
            .all(|(i, b)| b.is_ascii_alphabetic() || b == b'_' || b == b':' || (i > 0 && b.is_ascii_digit()));
    if ok {
        Ok(())
    } else {
        Err(CountersError::BadName { name: name.to_owned() })
    }
}

/// `a="x",b="y"` with values escaped for the exposition format.
fn labels_text(metric: &str, labels: &[(&str, &str)]) -> Result<String, CountersError> {
    if labels.len() > LABEL_PAIRS_MAX {
        return Err(CountersError::TooLong {
            name: metric.to_owned(),
            what: "label pairs",
            max: LABEL_PAIRS_MAX,
        });
    }
    let mut text = String::new();
    for (i, (key, value)) in labels.iter().enumerate() {
        let key_ok = !key.is_empty()
            && !key.starts_with("__")
            && *key != "le"
            && key
                .bytes()
                .enumerate()
                .all(|(i, b)| b.is_ascii_alphabetic() || b == b'_' || (i > 0 && b.is_ascii_digit()));
        if !key_ok || labels[..i].iter().any(|(k, _)| k == key) {
            return Err(CountersError::BadLabel { name: metric.to_owned(), label: (*key).to_owned() });
        }
        if i > 0 {
            text.push(',');
        }
        text.push_str(key);
        text.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' => text.push_str("\\\\"),
                '"' => text.push_str("\\\""),
                '\n' => text.push_str("\\n"),
                c => text.push(c),
            }
        }
        text.push('"');
    }
    if text.len() > LABELS_BYTES_MAX {
        return Err(CountersError::TooLong {
            name: metric.to_owned(),
            what: "labels",
            max: LABELS_BYTES_MAX,
        });
    }
    Ok(text)
}

/// A monotonic count owned by one thread.
pub struct Counter {
    slot: NonNull<AtomicU64>,
    _region: Arc<Region>,
    _single_writer: PhantomData<Cell<()>>,
}

// SAFETY: the slot points into `_region`, which the handle keeps alive wherever it goes; moving
// the handle moves the one right to write the slot with it (it is neither `Sync` nor `Clone`).
unsafe impl Send for Counter {}

impl Counter {
    /// Adds `n`. A load and a store: this thread is the slot's only writer.
    #[inline(always)]
    pub fn add(&self, n: u64) {
        if !cfg!(feature = "record") {
            return;
        }
        // SAFETY: the slot lives as long as `_region`, which `self` holds.
        let slot = unsafe { self.slot.as_ref() };
        slot.store(slot.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }

    /// Adds one.
    #[inline(always)]
    pub fn inc(&self) {
        self.add(1);
    }

    /// The current value, as this writer last stored it.
    pub fn get(&self) -> u64 {
        // SAFETY: as in `add`.
        unsafe { self.slot.as_ref() }.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down, owned by one thread.
pub struct Gauge {
    slot: NonNull<AtomicU64>,
    _region: Arc<Region>,
    _single_writer: PhantomData<Cell<()>>,
}

// SAFETY: as for `Counter`.
unsafe impl Send for Gauge {}

impl Gauge {
    /// Sets the value (nanoseconds, for a gauge defined in nanoseconds).
    #[inline(always)]
    pub fn set(&self, value: i64) {
        if !cfg!(feature = "record") {
            return;
        }
        // SAFETY: the slot lives as long as `_region`, which `self` holds.
        unsafe { self.slot.as_ref() }.store(value as u64, Ordering::Relaxed);
    }

    /// Adds `delta`, which may be negative.
    #[inline(always)]
    pub fn add(&self, delta: i64) {
        if !cfg!(feature = "record") {
            return;
        }
        // SAFETY: as in `set`.
        let slot = unsafe { self.slot.as_ref() };
        slot.store((slot.load(Ordering::Relaxed) as i64).wrapping_add(delta) as u64, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> i64 {
        // SAFETY: as in `set`.
        unsafe { self.slot.as_ref() }.load(Ordering::Relaxed) as i64
    }
}

/// A fixed-bucket histogram of durations in nanoseconds, owned by one thread.
pub struct Histogram {
    /// The first of `HISTOGRAM_SLOTS` consecutive slots.
    slots: NonNull<AtomicU64>,
    _region: Arc<Region>,
    _single_writer: PhantomData<Cell<()>>,
}

// SAFETY: as for `Counter`.
unsafe impl Send for Histogram {}

impl Histogram {
    #[inline(always)]
    fn slot(&self, i: usize) -> &AtomicU64 {
        debug_assert!(i < HISTOGRAM_SLOTS);
        // SAFETY: the registry reserved HISTOGRAM_SLOTS consecutive slots from `slots`, inside
        // `_region`, which `self` keeps alive.
        unsafe { &*self.slots.as_ptr().add(i) }
    }

    #[inline(always)]
    fn bump(&self, i: usize, n: u64) {
        let slot = self.slot(i);
        slot.store(slot.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }

    /// Records one duration of `ns` nanoseconds: its bucket, the sum and the max.
    ///
    /// No count is kept: it is the buckets' total, read off the hot path. Keeping one cost a
    /// third of a record (8.4 → 4.6 ns in the `record` bench), and a separate count could
    /// disagree with the buckets in a torn read, where their total cannot.
    #[inline(always)]
    pub fn record_ns(&self, ns: u64) {
        if !cfg!(feature = "record") {
            return;
        }
        self.bump(HIST_BUCKETS + bucket_index(ns), 1);
        self.bump(HIST_SUM_NS, ns);
        let max = self.slot(HIST_MAX_NS);
        if ns > max.load(Ordering::Relaxed) {
            max.store(ns, Ordering::Relaxed);
        }
    }

    /// Records `n` durations of `ns` nanoseconds each: for a stage that copies a count and a
    /// total from plain counters once per loop turn and records their mean.
    #[inline]
    pub fn record_ns_n(&self, ns: u64, n: u64) {
        if n == 0 || !cfg!(feature = "record") {
            return;
        }
        self.bump(HIST_BUCKETS + bucket_index(ns), n);
        self.bump(HIST_SUM_NS, ns.saturating_mul(n));
        let max = self.slot(HIST_MAX_NS);
        if ns > max.load(Ordering::Relaxed) {
            max.store(ns, Ordering::Relaxed);
        }
    }

    /// Observations recorded so far (sums the buckets: not for the hot path).
    pub fn count(&self) -> u64 {
        (0..crate::buckets::BUCKETS).map(|i| self.slot(HIST_BUCKETS + i).load(Ordering::Relaxed)).sum()
    }
}

impl std::fmt::Debug for Counter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Counter").field(&self.get()).finish()
    }
}

impl std::fmt::Debug for Gauge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Gauge").field(&self.get()).finish()
    }
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram").field("count", &self.count()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{CounterDef, HistogramDef};

    const C: CounterDef = CounterDef { name: "test_things_total", help: "Things." };
    const H: HistogramDef = HistogramDef { name: "test_wait_seconds", help: "Waits." };

    fn value_offsets(registry: &Registry) -> Vec<(String, usize, usize)> {
        let snapshot = registry.reader().snapshot().unwrap();
        snapshot.metrics.iter().map(|m| (m.owner.clone(), m.value_offset, m.kind.slots() * 8)).collect()
    }

    #[test]
    fn stages_never_share_a_cache_line() {
        let mut r = Registry::anonymous().unwrap();
        let stages = ["gateway", "engine", "journal"];
        let mut handles = Vec::new();
        for i in 0..40 {
            let stage = stages[i % 3];
            let n = i.to_string();
            handles.push(r.counter(&C, stage, &[("n", &n)]).unwrap());
            if i % 7 == 0 {
                r.histogram(&H, stage, &[("n", &n)]).unwrap();
            }
        }
        let placed = value_offsets(&r);
        for (i, (owner_a, at_a, len_a)) in placed.iter().enumerate() {
            for (owner_b, at_b, len_b) in &placed[i + 1..] {
                assert!(at_a + len_a <= *at_b || at_b + len_b <= *at_a, "values overlap");
                if owner_a != owner_b {
                    let lines_a = at_a / 64..(at_a + len_a).div_ceil(64);
                    let lines_b = at_b / 64..(at_b + len_b).div_ceil(64);
                    assert!(
                        lines_a.end <= lines_b.start || lines_b.end <= lines_a.start,
                        "{owner_a} and {owner_b} share a line"
                    );
                }
            }
        }
        // Packing: 14 counters per stage fit in 2 lines each, so the 3 stages use 6 lines for
        // counters, plus 14 lines per histogram.
        let histograms = (0..40).filter(|i| i % 7 == 0).count();
        assert_eq!(r.values_used, 6 * 64 + histograms * 14 * 64);
    }

    /// What the snapshot should hold for one registered metric.
    #[derive(Debug)]
    enum Model {
        Counter(u64),
        Gauge(i64),
        Histogram { count: u64, sum_ns: u64, max_ns: u64, buckets: Vec<u64> },
    }

    #[derive(Debug, Clone)]
    enum Op {
        Register { kind: u8, owner: u8, label: u8 },
        Record { metric: usize, value: u64 },
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            (0u8..3, 0u8..4, 0u8..6).prop_map(|(kind, owner, label)| Op::Register { kind, owner, label }),
            (any::<usize>(), 0u64..300_000_000_000).prop_map(|(metric, value)| Op::Record { metric, value }),
        ]
    }

    enum Handle {
        Counter(Counter),
        Gauge(Gauge),
        Histogram(Histogram),
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 256,
            rng_seed: proptest::test_runner::RngSeed::Fixed(0x18),
            ..proptest::prelude::ProptestConfig::default()
        })]
        /// Any sequence of registrations and records reads back exactly as a plain model says,
        /// and duplicates are refused where the model has the metric already.
        #[test]
        fn snapshot_matches_a_reference_model(ops in proptest::collection::vec(op(), 1..120)) {
            use crate::metrics::GaugeDef;
            use crate::Value;
            const G: GaugeDef = GaugeDef { name: "test_level", help: "Level.", nanoseconds: false };
            let mut r = Registry::anonymous().unwrap();
            let mut handles: Vec<Handle> = Vec::new();
            let mut model: Vec<(u8, String, String, Model)> = Vec::new();
            for op in ops {
                match op {
                    Op::Register { kind, owner, label } => {
                        let owner = format!("stage{owner}");
                        let label = label.to_string();
                        let labels = format!("l=\"{label}\"");
                        let exists = model.iter().any(|(k, _, l, _)| *k == kind && *l == labels);
                        let result = match kind {
                            0 => r.counter(&C, &owner, &[("l", &label)]).map(Handle::Counter),
                            1 => r.gauge(&G, &owner, &[("l", &label)]).map(Handle::Gauge),
                            _ => r.histogram(&H, &owner, &[("l", &label)]).map(Handle::Histogram),
                        };
                        match result {
                            Ok(h) => {
                                proptest::prop_assert!(!exists);
                                handles.push(h);
                                let m = match kind {
                                    0 => Model::Counter(0),
                                    1 => Model::Gauge(0),
                                    _ => Model::Histogram { count: 0, sum_ns: 0, max_ns: 0, buckets: vec![0; crate::buckets::BUCKETS] },
                                };
                                model.push((kind, owner, labels, m));
                            }
                            Err(e) => proptest::prop_assert!(exists && matches!(e, CountersError::Duplicate { .. }), "{e}"),
                        }
                    }
                    Op::Record { metric, value } => {
                        if handles.is_empty() {
                            continue;
                        }
                        let i = metric % handles.len();
                        match (&handles[i], &mut model[i].3) {
                            (Handle::Counter(c), Model::Counter(v)) => { c.add(value); *v += value; }
                            (Handle::Gauge(g), Model::Gauge(v)) => { g.add(value as i64 - 1_000); *v += value as i64 - 1_000; }
                            (Handle::Histogram(h), Model::Histogram { count, sum_ns, max_ns, buckets }) => {
                                h.record_ns(value);
                                *count += 1;
                                *sum_ns += value;
                                *max_ns = (*max_ns).max(value);
                                buckets[crate::buckets::bucket_index(value)] += 1;
                            }
                            _ => unreachable!("handles and model are pushed together"),
                        }
                    }
                }
            }
            let snapshot = r.reader().snapshot().unwrap();
            proptest::prop_assert_eq!(snapshot.metrics.len(), model.len());
            for (m, (_, owner, labels, want)) in snapshot.metrics.iter().zip(&model) {
                proptest::prop_assert_eq!(&m.owner, owner);
                proptest::prop_assert_eq!(&m.labels, labels);
                match (&m.value, want) {
                    (Value::Counter(v), Model::Counter(w)) => proptest::prop_assert_eq!(v, w),
                    (Value::Gauge(v), Model::Gauge(w)) => proptest::prop_assert_eq!(v, w),
                    (Value::Histogram(h), Model::Histogram { count, sum_ns, max_ns, buckets }) => {
                        proptest::prop_assert_eq!((h.total(), h.sum_ns, h.max_ns), (*count, *sum_ns, *max_ns));
                        proptest::prop_assert_eq!(&h.buckets[..], &buckets[..]);
                    }
                    (v, w) => proptest::prop_assert!(false, "kind differs: {:?} vs {:?}", v, w),
                }
            }
        }
    }

    #[test]
    fn bad_names_duplicates_and_mixed_families_are_refused() {
        let mut r = Registry::anonymous().unwrap();
        let bad = CounterDef { name: "9lives", help: "" };
        assert!(matches!(r.counter(&bad, "x", &[]), Err(CountersError::BadName { .. })));
        assert!(matches!(r.counter(&C, "x", &[("__x", "1")]), Err(CountersError::BadLabel { .. })));
        assert!(matches!(r.counter(&C, "x", &[("le", "1")]), Err(CountersError::BadLabel { .. })));
        assert!(matches!(r.counter(&C, "x", &[("a", "1"), ("a", "2")]), Err(CountersError::BadLabel { .. })));
        assert!(matches!(r.counter(&C, "", &[]), Err(CountersError::TooLong { .. })));
        let long = "v".repeat(LABELS_BYTES_MAX);
        assert!(matches!(r.counter(&C, "x", &[("a", &long)]), Err(CountersError::TooLong { .. })));
        r.counter(&C, "x", &[("a", "1")]).unwrap();
        assert!(matches!(r.counter(&C, "y", &[("a", "1")]), Err(CountersError::Duplicate { .. })));
        let other_help = CounterDef { name: C.name, help: "Other." };
        assert!(matches!(
            r.counter(&other_help, "x", &[("a", "2")]),
            Err(CountersError::FamilyMismatch { .. })
        ));
        let same_name_histogram = HistogramDef { name: C.name, help: C.help };
        assert!(matches!(
            r.histogram(&same_name_histogram, "x", &[]),
            Err(CountersError::FamilyMismatch { .. })
        ));
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn metrics_beyond_the_bound_are_refused() {
        let mut r = Registry::anonymous().unwrap();
        let mut handles = Vec::new();
        for i in 0..METRICS_MAX {
            handles.push(r.counter(&C, "x", &[("i", &i.to_string())]).unwrap());
        }
        assert!(matches!(
            r.counter(&C, "x", &[("i", "last")]),
            Err(CountersError::Full { what: "metrics", .. })
        ));
    }

    #[test]
    fn every_metric_a_histogram_of_its_own_stage_still_fits() {
        let mut r = Registry::anonymous().unwrap();
        let mut handles = Vec::new();
        for i in 0..METRICS_MAX {
            let n = i.to_string();
            handles.push(r.histogram(&H, &n, &[("i", &n)]).unwrap());
        }
        assert!(matches!(
            r.histogram(&H, "x", &[("i", "last")]),
            Err(CountersError::Full { what: "metrics", .. })
        ));
        handles[METRICS_MAX - 1].record_ns(5);
        let last = r.reader().snapshot().unwrap().metrics.pop().unwrap();
        assert!(matches!(last.value, crate::Value::Histogram(h) if h.total() == 1));
    }
}
