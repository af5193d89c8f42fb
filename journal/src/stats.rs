//! Plain counters of a journal's work, for monitoring: bytes appended, syncs and their time, and
//! a sampled append time. The journal knows nothing of how they are published; the thread that
//! hosts the journal's user (the router in `serve`) copies a [`JournalStatsSnapshot`] into its
//! counters once per loop turn.
//!
//! Each value has one writer: the writer thread for the append values, whichever thread syncs
//! for the sync values (syncs are serialised by the sync lock), so an update is a relaxed load
//! and store, and a reader on another thread can see a value a moment old but never a torn one.

use std::sync::atomic::{AtomicU64, Ordering};

/// One append in this many is timed (two monotonic clock reads, a vDSO call each, no system
/// call): enough samples for a histogram under flow, and an append costs the clock
/// 2/`APPEND_SAMPLE_EVERY` reads on average. A power of two, so the test is a mask.
pub const APPEND_SAMPLE_EVERY: u64 = 64;
const _: () = assert!(APPEND_SAMPLE_EVERY.is_power_of_two());

/// A journal's counters, shared between its writer, its syncers and readers on other threads.
#[derive(Debug, Default)]
pub struct JournalStats {
    /// Bytes appended to segments: every record's aligned size, end markers included.
    bytes_appended: AtomicU64,
    /// Appends timed, and their total time in nanoseconds.
    append_samples: AtomicU64,
    append_sampled_ns: AtomicU64,
    /// Syncs completed (msync of the segments and, after a roll, fsync of the directory), and
    /// their total time in nanoseconds.
    syncs: AtomicU64,
    sync_ns: AtomicU64,
}

/// A copy of [`JournalStats`] at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JournalStatsSnapshot {
    /// Bytes appended to segments (records' aligned sizes and end markers).
    pub bytes_appended: u64,
    /// Appends timed (one in [`APPEND_SAMPLE_EVERY`]).
    pub append_samples: u64,
    /// Total time of the timed appends, in nanoseconds.
    pub append_sampled_ns: u64,
    /// Syncs completed.
    pub syncs: u64,
    /// Total time of those syncs, in nanoseconds.
    pub sync_ns: u64,
}

/// Adds to a value this thread alone writes: a load and a store, no locked instruction.
#[inline(always)]
fn bump(value: &AtomicU64, n: u64) {
    value.store(value.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

impl JournalStats {
    /// The writer appended `bytes` (called by the writer thread only).
    #[inline(always)]
    pub(crate) fn appended(&self, bytes: usize) {
        bump(&self.bytes_appended, bytes as u64);
    }

    /// The writer timed one append (the writer thread only).
    pub(crate) fn append_timed(&self, ns: u64) {
        bump(&self.append_samples, 1);
        bump(&self.append_sampled_ns, ns);
    }

    /// A sync completed in `ns` (called under the sync lock, so by one thread at a time).
    pub(crate) fn synced(&self, ns: u64) {
        bump(&self.syncs, 1);
        bump(&self.sync_ns, ns);
    }

    /// The values now.
    pub fn snapshot(&self) -> JournalStatsSnapshot {
        JournalStatsSnapshot {
            bytes_appended: self.bytes_appended.load(Ordering::Relaxed),
            append_samples: self.append_samples.load(Ordering::Relaxed),
            append_sampled_ns: self.append_sampled_ns.load(Ordering::Relaxed),
            syncs: self.syncs.load(Ordering::Relaxed),
            sync_ns: self.sync_ns.load(Ordering::Relaxed),
        }
    }
}
