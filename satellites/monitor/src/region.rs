//! The mapped bytes of a counters file, and the only place raw pointers into them are made.

use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::{Mmap, MmapMut};

use crate::layout::FILE_BYTES;

/// Keeps the mapping alive; handles and readers hold it through an `Arc`.
enum Mapping {
    /// The writer's mapping (a file or anonymous memory).
    Writable(#[allow(dead_code)] MmapMut),
    /// A reader's mapping of another process's file.
    ReadOnly(#[allow(dead_code)] Mmap),
}

/// A mapped counters file of exactly [`FILE_BYTES`], 8-byte aligned (mappings are page aligned).
pub(crate) struct Region {
    base: *mut u8,
    writable: bool,
    _mapping: Mapping,
}

// SAFETY: the region is plain shared memory; every access to it that can race goes through
// `AtomicU64`, and the non-atomic metadata bytes are written once before the atomic count that
// publishes them (and never again), so sharing the pointer between threads adds no race.
unsafe impl Send for Region {}
// SAFETY: as for `Send`.
unsafe impl Sync for Region {}

impl Region {
    pub(crate) fn writable(mut map: MmapMut) -> Region {
        assert_eq!(map.len(), FILE_BYTES, "a counters mapping is exactly FILE_BYTES");
        Region { base: map.as_mut_ptr(), writable: true, _mapping: Mapping::Writable(map) }
    }

    pub(crate) fn read_only(map: Mmap) -> Region {
        assert_eq!(map.len(), FILE_BYTES, "a counters mapping is exactly FILE_BYTES");
        Region { base: map.as_ptr().cast_mut(), writable: false, _mapping: Mapping::ReadOnly(map) }
    }

    /// The 8-byte slot at `offset`.
    pub(crate) fn slot(&self, offset: usize) -> &AtomicU64 {
        assert!(offset.is_multiple_of(8) && offset + 8 <= FILE_BYTES, "slot {offset} out of the file");
        // SAFETY: in bounds and 8-byte aligned (checked above, and the base is page aligned);
        // the memory lives as long as `self`; all concurrent access to a slot is atomic.
        unsafe { &*self.base.add(offset).cast::<AtomicU64>() }
    }

    /// Reads a slot. Relaxed, because a read-only mapping may only be read with loads that
    /// need no write access; callers order what follows with an acquire fence.
    pub(crate) fn load(&self, offset: usize) -> u64 {
        self.slot(offset).load(Ordering::Relaxed)
    }

    /// Copies `out.len()` bytes from `offset`. Only for metadata a count published.
    pub(crate) fn read_bytes(&self, offset: usize, out: &mut [u8]) {
        assert!(offset + out.len() <= FILE_BYTES, "bytes out of the file");
        // SAFETY: in bounds (checked); these bytes were written before the release store of
        // the count the caller acquired, and are never written again.
        unsafe { std::ptr::copy_nonoverlapping(self.base.add(offset), out.as_mut_ptr(), out.len()) }
    }

    /// Writes bytes that no reader can look at yet (a record beyond the published count).
    pub(crate) fn write_bytes(&self, offset: usize, bytes: &[u8]) {
        assert!(self.writable, "write to a read-only counters mapping");
        assert!(offset + bytes.len() <= FILE_BYTES, "bytes out of the file");
        // SAFETY: in bounds (checked) of a writable mapping; only the registry writes here,
        // through `&mut`, and no reader reads past the published count.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.base.add(offset), bytes.len()) }
    }

    pub(crate) fn is_writable(&self) -> bool {
        self.writable
    }
}
