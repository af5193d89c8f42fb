//! Segment files: naming, the header, listing a directory, and the memory map every other part
//! reads and writes through.
//!
//! All access to mapped bytes goes through [`SegmentMap`], built on `memmap2::MmapRaw`, which
//! never hands out references: this module creates a `&[u8]` only over bytes that no one writes
//! any more (published records, or a segment's bytes while the opening writer is the only
//! user), an `&mut [u8]` only over bytes past the published end that the single writer owns,
//! and otherwise touches length words as atomics.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

use memmap2::{MmapOptions, MmapRaw};

use super::record::{self, Slot, RECORD_ALIGN, RECORD_HEADER_LEN, RECORD_LEN_MAX};
use super::{JournalError, IGNORED_FILES_LISTED_MAX, JOURNAL_SEGMENTS_MAX};

/// First bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"XJOURNL\0";

/// Version of the segment and record layout (and of the `codec` payloads); bumped on change.
/// 3: records are frames of one or more length-prefixed entries under one CRC. 4: the same
/// frames, and command entries in `engine::codec`'s fixed layout (`Command::encode_fixed`;
/// `Command::decode` reads both layouts, so readers need no change). Segments of versions
/// [`SEGMENT_FORMAT_VERSION_OLDEST`] (2: one unprefixed entry per record) and 3 are still read,
/// and a writer opening a journal whose last segment is older continues in a new segment of the
/// current version (no segment mixes two versions). A segment of any other version is refused
/// on open with [`JournalError::FormatVersion`], naming the version found and the ones this
/// build reads.
pub const SEGMENT_FORMAT_VERSION: u32 = 4;

/// Oldest segment format version this build reads.
pub const SEGMENT_FORMAT_VERSION_OLDEST: u32 = 2;

/// Bytes of the segment header; records start right after it.
pub const SEGMENT_HEADER_LEN: usize = 64;

/// Segment sizes are multiples of this (a page on the machines we run on), so pre-faulting
/// touches whole pages and msync ranges need no rounding at the ends.
pub const SEGMENT_SIZE_ALIGN: usize = 4096;

/// Smallest segment: room for the header, one largest record and the end marker, with margin.
pub const SEGMENT_SIZE_MIN: usize = 4 * SEGMENT_SIZE_ALIGN;

/// Largest segment: offsets stay far inside `u32`, and mapping one stays cheap.
pub const SEGMENT_SIZE_MAX: usize = 1 << 30;

/// Default segment size: 64 MiB, several hundred thousand commands per file.
pub const SEGMENT_SIZE_DEFAULT: usize = 64 << 20;

/// Name of the spare segment the writer prepares in the background; renamed into place when
/// the writer rolls, deleted when a writer opens.
pub const SPARE_FILE_NAME: &str = "next.journal.tmp";

const _: () = assert!(SEGMENT_HEADER_LEN.is_multiple_of(RECORD_ALIGN));
const _: () = assert!(SEGMENT_HEADER_LEN + RECORD_LEN_MAX + RECORD_HEADER_LEN <= SEGMENT_SIZE_MIN);
const _: () = assert!(SEGMENT_SIZE_MIN.is_multiple_of(SEGMENT_SIZE_ALIGN));
const _: () = assert!(SEGMENT_SIZE_DEFAULT.is_multiple_of(SEGMENT_SIZE_ALIGN));
const _: () = assert!(SEGMENT_SIZE_MAX <= u32::MAX as usize);

const SUFFIX: &str = ".journal";
const NAME_DIGITS: usize = 20;
const HEADER_CRC_AT: usize = 32;

/// File name of the segment whose first record has `first_seq`.
pub fn segment_file_name(first_seq: u64) -> String {
    format!("{first_seq:0width$}{SUFFIX}", width = NAME_DIGITS)
}

/// The first seq a segment file name stands for, if it is exactly a segment name.
pub(crate) fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SUFFIX)?;
    if digits.len() != NAME_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// What a directory holds: segments by first seq, and everything else.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    /// Segment files sorted by first seq.
    pub(crate) segments: Vec<(u64, PathBuf)>,
    /// Files that are not segments (at most [`IGNORED_FILES_LISTED_MAX`] listed).
    pub(crate) ignored: Vec<PathBuf>,
    /// How many files are not segments.
    pub(crate) ignored_count: usize,
    /// The writer's spare, if one was left behind.
    pub(crate) spare: Option<PathBuf>,
}

impl Listing {
    /// Lists `dir`. Bounded by [`JOURNAL_SEGMENTS_MAX`] segments.
    pub(crate) fn read(dir: &Path) -> Result<Listing, JournalError> {
        let mut listing = Listing::default();
        let entries = fs::read_dir(dir).map_err(|e| JournalError::io(dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| JournalError::io(dir, e))?;
            let path = entry.path();
            let name = entry.file_name();
            let seq = name.to_str().and_then(parse_segment_file_name);
            match seq {
                Some(seq) => {
                    if listing.segments.len() == JOURNAL_SEGMENTS_MAX {
                        return Err(JournalError::TooManySegments { dir: dir.to_path_buf() });
                    }
                    listing.segments.push((seq, path));
                }
                None if name == SPARE_FILE_NAME => listing.spare = Some(path),
                None => {
                    listing.ignored_count += 1;
                    if listing.ignored.len() < IGNORED_FILES_LISTED_MAX {
                        listing.ignored.push(path);
                    }
                }
            }
        }
        listing.segments.sort_unstable_by_key(|(seq, _)| *seq);
        listing.ignored.sort_unstable();
        Ok(listing)
    }

    /// The segment to start reading `seq` from: the last one whose first seq is ≤ `seq`.
    pub(crate) fn segment_for(&self, seq: u64) -> Option<&(u64, PathBuf)> {
        let after = self.segments.partition_point(|(first, _)| *first <= seq);
        after.checked_sub(1).map(|i| &self.segments[i])
    }

    /// The first segment that starts after `seq`, if any.
    pub(crate) fn segment_after(&self, seq: u64) -> Option<&(u64, PathBuf)> {
        let after = self.segments.partition_point(|(first, _)| *first <= seq);
        self.segments.get(after)
    }
}

/// The decoded segment header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    pub(crate) first_seq: u64,
    pub(crate) segment_size: usize,
    /// Format version (new segments are always [`SEGMENT_FORMAT_VERSION`]).
    pub(crate) version: u32,
}

impl SegmentHeader {
    fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut h = [0u8; SEGMENT_HEADER_LEN];
        h[0..8].copy_from_slice(&SEGMENT_MAGIC);
        h[8..12].copy_from_slice(&self.version.to_le_bytes());
        h[12..16].copy_from_slice(&(SEGMENT_HEADER_LEN as u32).to_le_bytes());
        h[16..24].copy_from_slice(&self.first_seq.to_le_bytes());
        h[24..32].copy_from_slice(&(self.segment_size as u64).to_le_bytes());
        let crc = crc32c::crc32c(&h[..HEADER_CRC_AT]);
        h[HEADER_CRC_AT..HEADER_CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
        h
    }

    /// The format version of a header whose magic and checksum hold (so the version field is
    /// what a writer put there, not damage).
    fn version_of(h: &[u8; SEGMENT_HEADER_LEN]) -> Option<u32> {
        let stored = u32::from_le_bytes(h[HEADER_CRC_AT..HEADER_CRC_AT + 4].try_into().expect("4"));
        (h[0..8] == SEGMENT_MAGIC && stored == crc32c::crc32c(&h[..HEADER_CRC_AT]))
            .then(|| u32::from_le_bytes(h[8..12].try_into().expect("4")))
    }

    fn decode(h: &[u8; SEGMENT_HEADER_LEN]) -> Result<SegmentHeader, &'static str> {
        if h[0..8] != SEGMENT_MAGIC {
            return Err("bad magic");
        }
        let stored = u32::from_le_bytes(h[HEADER_CRC_AT..HEADER_CRC_AT + 4].try_into().expect("4"));
        if stored != crc32c::crc32c(&h[..HEADER_CRC_AT]) {
            return Err("header checksum mismatch");
        }
        let version = u32::from_le_bytes(h[8..12].try_into().expect("4"));
        if !(SEGMENT_FORMAT_VERSION_OLDEST..=SEGMENT_FORMAT_VERSION).contains(&version) {
            return Err("unsupported format version");
        }
        if u32::from_le_bytes(h[12..16].try_into().expect("4")) as usize != SEGMENT_HEADER_LEN {
            return Err("unexpected header length");
        }
        if h[HEADER_CRC_AT + 4..].iter().any(|&b| b != 0) {
            return Err("reserved header bytes are not zero");
        }
        let first_seq = u64::from_le_bytes(h[16..24].try_into().expect("8"));
        let size = u64::from_le_bytes(h[24..32].try_into().expect("8"));
        let size_ok = (SEGMENT_SIZE_MIN as u64..=SEGMENT_SIZE_MAX as u64).contains(&size)
            && size.is_multiple_of(SEGMENT_SIZE_ALIGN as u64);
        if !size_ok {
            return Err("segment size out of bounds");
        }
        Ok(SegmentHeader { first_seq, segment_size: size as usize, version })
    }
}

/// One mapped segment file.
#[derive(Debug)]
pub(crate) struct SegmentMap {
    map: MmapRaw,
    /// Bytes of the segment that are mapped and readable: the header's segment size, or less
    /// when a reader maps a truncated file (rounded down to [`RECORD_ALIGN`]).
    len: usize,
    path: PathBuf,
    header: SegmentHeader,
    /// Mapped read-write (the writer's) rather than read-only (a reader's).
    writable: bool,
    /// End of the bytes the writer has published (header included); read by the syncer.
    pub(crate) written_end: AtomicUsize,
    /// End of the bytes msync has covered; written by the syncer only.
    pub(crate) synced_end: AtomicUsize,
}

impl SegmentMap {
    /// Maps an existing segment read-only and checks its header against the file name's seq.
    pub(crate) fn open_read(path: &Path, name_seq: u64) -> Result<SegmentMap, JournalError> {
        let file = File::open(path).map_err(|e| JournalError::io(path, e))?;
        let header = read_header_from_file(&file, path, name_seq)?;
        Self::map_existing(file, path, header, false)
    }

    /// Maps an existing segment read-write (the writer's last segment). A file shorter than
    /// its header says (truncated) is extended back with zeros first; the returned flag says
    /// so, with the length it had.
    pub(crate) fn open_write(path: &Path, name_seq: u64) -> Result<(SegmentMap, Option<u64>), JournalError> {
        let file =
            OpenOptions::new().read(true).write(true).open(path).map_err(|e| JournalError::io(path, e))?;
        let header = read_header_from_file(&file, path, name_seq)?;
        let file_len = file.metadata().map_err(|e| JournalError::io(path, e))?.len();
        let mut extended = None;
        if file_len < header.segment_size as u64 {
            file.set_len(header.segment_size as u64).map_err(|e| JournalError::io(path, e))?;
            extended = Some(file_len);
        }
        Ok((Self::map_existing(file, path, header, true)?, extended))
    }

    fn map_existing(
        file: File,
        path: &Path,
        header: SegmentHeader,
        writable: bool,
    ) -> Result<SegmentMap, JournalError> {
        let file_len = file.metadata().map_err(|e| JournalError::io(path, e))?.len();
        if file_len > header.segment_size as u64 {
            return Err(JournalError::BadHeader {
                path: path.to_path_buf(),
                reason: "file is longer than its header's segment size",
            });
        }
        // `file_len` ≤ segment_size ≤ SEGMENT_SIZE_MAX, so it fits a usize.
        let len = (file_len as usize) & !(RECORD_ALIGN - 1);
        let mut options = MmapOptions::new();
        options.len(len);
        let map = if writable { options.map_raw(&file) } else { options.map_raw_read_only(&file) }
            .map_err(|e| JournalError::io(path, e))?;
        Ok(SegmentMap {
            map,
            len,
            path: path.to_path_buf(),
            header,
            writable,
            written_end: AtomicUsize::new(SEGMENT_HEADER_LEN),
            synced_end: AtomicUsize::new(SEGMENT_HEADER_LEN),
        })
    }

    /// Tells the kernel this mapping is about to be read front to back: read ahead
    /// aggressively (`MADV_SEQUENTIAL`) and map every page now (`MADV_POPULATE_READ`, one
    /// system call instead of a fault per 64 KiB). Advice only: a kernel that does not know it
    /// refuses it and reading works as before, so errors are ignored.
    pub(crate) fn advise_sequential_read(&self) {
        let _ = self.map.advise(memmap2::Advice::Sequential);
        #[cfg(target_os = "linux")]
        let _ = self.map.advise(memmap2::Advice::PopulateRead);
    }

    /// The file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Seq of the segment's first record.
    pub(crate) fn first_seq(&self) -> u64 {
        self.header.first_seq
    }

    /// A segment of format version 2: one unprefixed entry per record.
    #[inline]
    pub(crate) fn is_legacy(&self) -> bool {
        self.header.version == 2
    }

    /// A segment of a format version older than [`SEGMENT_FORMAT_VERSION`]: read, never
    /// appended to.
    #[inline]
    pub(crate) fn is_older_version(&self) -> bool {
        self.header.version < SEGMENT_FORMAT_VERSION
    }

    /// Readable bytes (the segment size unless a reader mapped a truncated file).
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The length word of the record at `offset`, as an atomic.
    ///
    /// # Panics
    /// When `offset` is not a record position inside the mapping (a bug of the caller).
    #[inline]
    pub(crate) fn len_word(&self, offset: usize) -> &AtomicU32 {
        assert!(
            offset.is_multiple_of(RECORD_ALIGN) && offset + RECORD_HEADER_LEN <= self.len,
            "record offset {offset} outside a {}-byte segment",
            self.len
        );
        // SAFETY: alignment: the mapping starts on a page boundary and `offset` is a multiple
        // of RECORD_ALIGN (8), so the address is 4-byte aligned as AtomicU32 requires.
        // Bounds: offset + 4 ≤ offset + RECORD_HEADER_LEN ≤ self.len, the mapped length.
        // Lifetime: the reference borrows `self`, which owns the MmapRaw, so the mapping
        // outlives it. Validity: every bit pattern is a valid u32, and the length word is only
        // ever accessed atomically by this crate's readers and writer (zeroing in recovery
        // happens before any reference to it is handed out). On a read-only mapping only
        // `load` is used, which Rust permits on read-only memory for lock-free atomics.
        unsafe { &*self.map.as_ptr().add(offset).cast::<AtomicU32>() }
    }

    /// Reads the record at `offset`: loads its length word with `Acquire`, and only if it is
    /// non-zero looks at (and checksums) the record's other bytes.
    #[inline]
    pub(crate) fn slot(&self, offset: usize) -> Slot {
        let len = self.len_word(offset).load(Ordering::Acquire);
        record::validate(len, offset, self.len, self.is_legacy(), |range| {
            // SAFETY: `validate` asks only for a range inside the mapping
            // (offset + len ≤ self.len, checked before the call). The length word was loaded
            // non-zero with Acquire, and a writer stores it with Release only after every byte
            // of the record is written and never writes those bytes again, so the range is
            // immutable for as long as `self` lives.
            unsafe { self.bytes(range) }
        })
    }

    /// Shared view of mapped bytes.
    ///
    /// # Safety
    /// `range` must lie within `self.len()`, and no one may write those bytes while the
    /// returned slice lives: they are a published record, or the caller is the journal's only
    /// user (a writer during recovery).
    #[inline]
    pub(crate) unsafe fn bytes(&self, range: std::ops::Range<usize>) -> &[u8] {
        debug_assert!(range.start <= range.end && range.end <= self.len);
        // SAFETY: in bounds of the live mapping, immutable while borrowed (caller's contract);
        // u8 has no invalid bit patterns and alignment 1.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(range.start), range.len()) }
    }

    /// Exclusive view of mapped bytes, for the writer.
    ///
    /// # Safety
    /// The mapping must be writable, `range` must lie within `self.len()` and past every
    /// published record, and the caller must be the only one creating references to these
    /// bytes while the slice lives (the journal's single writer; readers look only at
    /// published records, through their own mappings, and at length words atomically — and
    /// the range must not contain a length word of a record someone may poll, unless the slice
    /// leaves it zero).
    #[inline]
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn bytes_mut(&self, range: std::ops::Range<usize>) -> &mut [u8] {
        debug_assert!(self.writable && range.start <= range.end && range.end <= self.len);
        // SAFETY: in bounds of the live, writable mapping; exclusive by the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.map.as_mut_ptr().add(range.start), range.len()) }
    }

    /// Flushes `range` of the file to stable storage (msync `MS_SYNC`).
    pub(crate) fn flush_range(&self, range: std::ops::Range<usize>) -> Result<(), JournalError> {
        if range.is_empty() {
            return Ok(());
        }
        self.map.flush_range(range.start, range.len()).map_err(|e| JournalError::io(&self.path, e))
    }

    /// Touches every page from `from` on with a write, so that appends never take a page fault
    /// (not even the minor one that makes a shared page writable). The bytes stay as they are.
    ///
    /// # Panics
    /// On a read-only mapping (writing to it would fault).
    pub(crate) fn prefault_from(&self, from: usize) {
        assert!(self.writable, "prefault of a read-only segment mapping");
        let first_page = from.div_ceil(SEGMENT_SIZE_ALIGN) * SEGMENT_SIZE_ALIGN;
        let mut page = first_page;
        while page + 8 <= self.len {
            // SAFETY: `page` is a multiple of 4096 inside the mapping (page + 8 ≤ len), so
            // the address is aligned for AtomicU64 and in bounds; the mapping outlives this
            // reference. A compare-exchange of 0 with 0 (a locked write on x86, an atomic
            // store elsewhere) write-faults the page and leaves its bytes unchanged; it is
            // atomic, so it cannot race a reader's atomic load of a length word there.
            let word = unsafe { &*self.map.as_ptr().add(page).cast::<AtomicU64>() };
            let _ = word.compare_exchange(0, 0, Ordering::Relaxed, Ordering::Relaxed);
            page += SEGMENT_SIZE_ALIGN;
        }
    }
}

fn read_header_from_file(file: &File, path: &Path, name_seq: u64) -> Result<SegmentHeader, JournalError> {
    use std::io::Read;
    let bad = |reason| JournalError::BadHeader { path: path.to_path_buf(), reason };
    let mut h = [0u8; SEGMENT_HEADER_LEN];
    let mut reader = file;
    match reader.read_exact(&mut h) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(bad("file is shorter than a segment header"))
        }
        Err(e) => return Err(JournalError::io(path, e)),
    }
    let readable = SEGMENT_FORMAT_VERSION_OLDEST..=SEGMENT_FORMAT_VERSION;
    if let Some(found) = SegmentHeader::version_of(&h).filter(|v| !readable.contains(v)) {
        return Err(JournalError::FormatVersion {
            path: path.to_path_buf(),
            found,
            expected: SEGMENT_FORMAT_VERSION,
        });
    }
    let header = SegmentHeader::decode(&h).map_err(bad)?;
    if header.first_seq != name_seq {
        return Err(bad("header's first seq differs from the file name"));
    }
    Ok(header)
}

/// A pre-allocated, pre-faulted segment file under [`SPARE_FILE_NAME`], waiting for its first
/// seq. Made off the appending thread, so a roll costs a header write and a rename.
#[derive(Debug)]
pub(crate) struct Spare {
    map: MmapRaw,
    size: usize,
    tmp_path: PathBuf,
}

impl Spare {
    /// Creates (or re-creates) the spare file in `dir`: sized, mapped, every page touched.
    pub(crate) fn create(dir: &Path, size: usize) -> Result<Spare, JournalError> {
        let tmp_path = dir.join(SPARE_FILE_NAME);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp_path)
            .map_err(|e| JournalError::io(&tmp_path, e))?;
        file.set_len(size as u64).map_err(|e| JournalError::io(&tmp_path, e))?;
        let map = MmapOptions::new().len(size).map_raw(&file).map_err(|e| JournalError::io(&tmp_path, e))?;
        let spare = Spare { map, size, tmp_path };
        spare.prefault();
        Ok(spare)
    }

    fn prefault(&self) {
        let mut page = 0;
        while page < self.size {
            // SAFETY: `page` < size = the mapped length; the file is ours alone (a temporary
            // name no reader opens), so a plain volatile write cannot race anything. Writing
            // zero over zero changes nothing but makes the page present and writable.
            unsafe { self.map.as_mut_ptr().add(page).write_volatile(0) };
            page += SEGMENT_SIZE_ALIGN;
        }
    }

    /// Writes the header for `first_seq` and renames the spare to its segment name. From the
    /// rename on, readers may open it; its header is complete by then.
    pub(crate) fn install(self, dir: &Path, first_seq: u64) -> Result<SegmentMap, JournalError> {
        let header = SegmentHeader { first_seq, segment_size: self.size, version: SEGMENT_FORMAT_VERSION };
        let bytes = header.encode();
        // SAFETY: the header range is inside the mapping (size ≥ SEGMENT_SIZE_MIN > 64) and
        // the file still has its temporary name, so no one else maps it.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.map.as_mut_ptr(), bytes.len()) };
        let path = dir.join(segment_file_name(first_seq));
        fs::rename(&self.tmp_path, &path).map_err(|e| JournalError::io(&path, e))?;
        Ok(SegmentMap {
            map: self.map,
            len: self.size,
            path,
            header,
            writable: true,
            written_end: AtomicUsize::new(SEGMENT_HEADER_LEN),
            // The new header is not synced yet: the syncer covers it with the first records.
            synced_end: AtomicUsize::new(0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_roundtrip_and_only_exact_names_parse() {
        assert_eq!(segment_file_name(1), "00000000000000000001.journal");
        assert_eq!(parse_segment_file_name(&segment_file_name(u64::MAX)), Some(u64::MAX));
        for bad in [
            "1.journal",
            "0000000000000000001x.journal",
            "00000000000000000001.journal.tmp",
            "00000000000000000001.jrnl",
            "99999999999999999999.journal", // overflows u64
            SPARE_FILE_NAME,
        ] {
            assert_eq!(parse_segment_file_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn header_roundtrips_and_rejects_damage() {
        let h =
            SegmentHeader { first_seq: 77, segment_size: SEGMENT_SIZE_MIN, version: SEGMENT_FORMAT_VERSION };
        let bytes = h.encode();
        assert_eq!(SegmentHeader::decode(&bytes), Ok(h));
        for i in 0..SEGMENT_HEADER_LEN {
            let mut bad = bytes;
            bad[i] ^= 0x40;
            assert!(SegmentHeader::decode(&bad).is_err(), "byte {i}");
        }
    }
}
