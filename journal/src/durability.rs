//! What is written and what is durable: the two sequence numbers other threads read, and the
//! msync logic shared by [`super::JournalWriter::sync`] and the periodic sync thread.
//!
//! The writer shares segments with the syncer as `Arc<SegmentMap>`: the current one, and the
//! rolled ("retired") ones not yet flushed. The mutex guarding that list is taken by the writer
//! only when it rolls to a new segment (not per append) and by the syncer for a moment per
//! segment; an msync never runs under it.

use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::segment::SegmentMap;
use super::stats::{JournalStats, JournalStatsSnapshot};
use super::{JournalError, RETIRED_SEGMENTS_MAX};

/// The segments a sync has to cover.
#[derive(Debug)]
struct SyncTargets {
    current: Arc<SegmentMap>,
    /// Rolled segments not yet flushed, oldest first; at most [`RETIRED_SEGMENTS_MAX`].
    retired: Vec<Arc<SegmentMap>>,
    /// A segment file was created or renamed since the last sync: the directory needs an fsync.
    dir_dirty: bool,
}

/// State shared by the writer, the sync thread and [`JournalProgress`] handles.
#[derive(Debug)]
pub(crate) struct Shared {
    dir: PathBuf,
    /// Highest seq appended (in the mapping); `first_seq - 1` before any.
    written_seq: AtomicU64,
    /// Highest seq durable under the sync policy.
    durable_seq: AtomicU64,
    targets: Mutex<SyncTargets>,
    /// Serialises whole syncs, so two syncers cannot each think the other flushed a segment.
    sync_lock: Mutex<()>,
    /// First failure of the periodic sync thread.
    background_error: Mutex<Option<String>>,
    /// Bytes, syncs and sampled times, for monitoring.
    pub(crate) stats: JournalStats,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves plain data behind (a list of segments, a
    // flag): still consistent, so poisoning is ignored.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    pub(crate) fn new(dir: PathBuf, current: Arc<SegmentMap>, last_seq: u64) -> Shared {
        Shared {
            dir,
            written_seq: AtomicU64::new(last_seq),
            durable_seq: AtomicU64::new(last_seq),
            targets: Mutex::new(SyncTargets {
                current,
                retired: Vec::with_capacity(RETIRED_SEGMENTS_MAX),
                dir_dirty: true,
            }),
            sync_lock: Mutex::new(()),
            background_error: Mutex::new(None),
            stats: JournalStats::default(),
        }
    }

    /// Records an append: `seq` is in the mapping, published.
    #[inline]
    pub(crate) fn set_written(&self, seq: u64) {
        self.written_seq.store(seq, Ordering::Release);
    }

    /// Under `PageCache` a record is as durable as the policy promises once it is written.
    #[inline]
    pub(crate) fn set_durable(&self, seq: u64) {
        self.durable_seq.store(seq, Ordering::Release);
    }

    pub(crate) fn written_seq(&self) -> u64 {
        self.written_seq.load(Ordering::Acquire)
    }

    pub(crate) fn durable_seq(&self) -> u64 {
        self.durable_seq.load(Ordering::Acquire)
    }

    /// The writer rolled: `next` is current now; `old`, when given, waits for a sync (not
    /// under `PageCache`, where nobody syncs). When [`RETIRED_SEGMENTS_MAX`] segments wait already,
    /// the oldest is flushed here, on the writer's thread: back-pressure.
    pub(crate) fn rolled(
        &self,
        old: Option<Arc<SegmentMap>>,
        next: Arc<SegmentMap>,
    ) -> Result<(), JournalError> {
        if old.is_some() && lock(&self.targets).retired.len() == RETIRED_SEGMENTS_MAX {
            // The syncer is behind. Flush its oldest segment here, holding the sync lock so
            // that no sync can declare records durable while this flush is still running.
            let _whole_sync = lock(&self.sync_lock);
            let oldest = lock(&self.targets).retired.first().cloned();
            if let Some(seg) = oldest {
                flush_written(&seg)?;
                let mut t = lock(&self.targets);
                if t.retired.first().is_some_and(|first| Arc::ptr_eq(first, &seg)) {
                    t.retired.remove(0);
                }
            }
        }
        let mut t = lock(&self.targets);
        t.current = next;
        t.dir_dirty = true;
        if let Some(old) = old {
            // Only the writer pushes, and it just made room: the bound holds.
            debug_assert!(t.retired.len() < RETIRED_SEGMENTS_MAX);
            t.retired.push(old);
        }
        Ok(())
    }

    /// Flushes everything appended so far and advances `durable_seq` to what was written when
    /// the sync started; returns that seq.
    pub(crate) fn sync(&self) -> Result<u64, JournalError> {
        let _whole_sync = lock(&self.sync_lock);
        // A sync is a system call already: two clock reads around it cost nothing extra.
        let started = Instant::now();
        // Order matters. Every record ≤ `seq` was published before `written_seq` said so, in
        // the then-current segment or an earlier one. Taking `current` after loading `seq`
        // means those earlier segments are already in `retired` (the writer pushes a segment
        // there in the same critical section that replaces `current`), and the segment that
        // was current then is either `current` below or retired too: flushing `current` and
        // draining `retired` covers them all.
        let seq = self.written_seq.load(Ordering::Acquire);
        let (current, dir_dirty) = {
            let mut t = lock(&self.targets);
            (Arc::clone(&t.current), std::mem::take(&mut t.dir_dirty))
        };
        let result = self.flush_all(&current, dir_dirty);
        if result.is_err() && dir_dirty {
            lock(&self.targets).dir_dirty = true;
        }
        result?;
        self.durable_seq.fetch_max(seq, Ordering::AcqRel);
        self.stats.synced(u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX));
        Ok(seq)
    }

    fn flush_all(&self, current: &SegmentMap, dir_dirty: bool) -> Result<(), JournalError> {
        // Bounded: the list never exceeds RETIRED_SEGMENTS_MAX, and a writer rolling meanwhile
        // adds at most that many more before it must flush one itself.
        for _ in 0..2 * RETIRED_SEGMENTS_MAX {
            let oldest = lock(&self.targets).retired.first().cloned();
            let Some(seg) = oldest else { break };
            flush_written(&seg)?;
            let mut t = lock(&self.targets);
            if t.retired.first().is_some_and(|first| Arc::ptr_eq(first, &seg)) {
                t.retired.remove(0);
            }
        }
        flush_written(current)?;
        if dir_dirty {
            // A new segment's name must survive a power loss too, or recovery would find a
            // journal ending in an end marker and re-create the segment empty.
            let dir = File::open(&self.dir).map_err(|e| JournalError::io(&self.dir, e))?;
            dir.sync_all().map_err(|e| JournalError::io(&self.dir, e))?;
        }
        Ok(())
    }

    fn record_background_error(&self, error: JournalError) {
        let mut slot = lock(&self.background_error);
        if slot.is_none() {
            *slot = Some(error.to_string());
        }
    }

    pub(crate) fn background_error(&self) -> Option<JournalError> {
        lock(&self.background_error).clone().map(JournalError::BackgroundSync)
    }
}

/// Flushes what the writer published in `seg` and the syncer has not flushed yet.
fn flush_written(seg: &SegmentMap) -> Result<(), JournalError> {
    let from = seg.synced_end.load(Ordering::Relaxed);
    let to = seg.written_end.load(Ordering::Acquire);
    if to > from {
        seg.flush_range(from..to)?;
        seg.synced_end.fetch_max(to, Ordering::Relaxed);
    }
    Ok(())
}

/// A cheap, cloneable view of a journal's progress for other threads (e.g. the one that sends
/// acknowledgements once `durable_seq` covers an order).
#[derive(Clone, Debug)]
pub struct JournalProgress(pub(crate) Arc<Shared>);

impl JournalProgress {
    /// Highest seq appended to the journal (visible to readers of the mapping).
    pub fn written_seq(&self) -> u64 {
        self.0.written_seq()
    }

    /// Highest seq that is durable under the journal's sync policy.
    pub fn durable_seq(&self) -> u64 {
        self.0.durable_seq()
    }

    /// The same as [`super::JournalWriter::sync`], from any thread: msyncs what was appended
    /// so far and advances `durable_seq`; returns it. For a journal thread that acknowledges
    /// batches while another thread appends.
    pub fn sync(&self) -> Result<u64, JournalError> {
        self.0.sync()
    }

    /// The journal's counters now: bytes appended, syncs and their time, sampled appends.
    pub fn stats(&self) -> JournalStatsSnapshot {
        self.0.stats.snapshot()
    }
}

/// The `Periodic` policy's thread: syncs every interval until told to stop, then once more.
#[derive(Debug)]
pub(crate) struct PeriodicSyncer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl PeriodicSyncer {
    pub(crate) fn start(shared: Arc<Shared>, interval: Duration) -> Result<Self, JournalError> {
        let stop = Arc::new(AtomicBool::new(false));
        let stop_flag = Arc::clone(&stop);
        let thread = thread::Builder::new()
            .name("journal-sync".into())
            .spawn(move || loop {
                // park_timeout may return early (spuriously or when stopped): a sync too many
                // is harmless.
                thread::park_timeout(interval);
                let stopping = stop_flag.load(Ordering::Acquire);
                if let Err(e) = shared.sync() {
                    shared.record_background_error(e);
                }
                if stopping {
                    break;
                }
            })
            .map_err(|e| JournalError::io("journal-sync thread", e))?;
        Ok(PeriodicSyncer { stop, thread: Some(thread) })
    }

    /// Stops the thread after one last sync.
    pub(crate) fn stop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.stop.store(true, Ordering::Release);
            thread.thread().unpark();
            // The thread only syncs; if it panicked there is nothing left to clean up.
            let _ = thread.join();
        }
    }
}

impl Drop for PeriodicSyncer {
    fn drop(&mut self) {
        self.stop();
    }
}
