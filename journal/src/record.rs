//! Record framing: the header layout, its checksum and the validation of one record.
//!
//! Since format version 3 every record is a *frame* of one or more entries of one kind: the
//! header's seq is the first entry's, its entry count says how many follow (seq, seq + 1, ...),
//! and the payload is the entries back to back, each a little-endian `u16` length and that many
//! bytes. One CRC covers the whole frame, so a writer that stages a batch of commands pays one
//! checksum and one publication for the batch instead of one per command.

use std::ops::Range;

/// Bytes of a record header: length, CRC, seq, kind, entry count, reserved.
pub const RECORD_HEADER_LEN: usize = 24;

/// Bytes before each entry of a frame: its length, a little-endian `u16`.
pub const ENTRY_HEADER_LEN: usize = 2;

/// Every record starts on a multiple of this, so its length word is a naturally aligned
/// `AtomicU32` and its seq an aligned `u64`.
pub const RECORD_ALIGN: usize = 8;

/// Largest record, header included. A page: commands and events encode to well under 256 bytes
/// (`codec`), and a bound this small keeps the torn-tail scan and a reader's buffer small.
/// Snapshots are not journal records; a snapshot-marker record only names one.
pub const RECORD_LEN_MAX: usize = 4096;

/// Largest payload of one record.
pub const RECORD_PAYLOAD_LEN_MAX: usize = RECORD_LEN_MAX - RECORD_HEADER_LEN;

const _: () = assert!(RECORD_HEADER_LEN.is_multiple_of(RECORD_ALIGN));
const _: () = assert!(RECORD_LEN_MAX.is_multiple_of(RECORD_ALIGN));
const _: () = assert!(RECORD_LEN_MAX <= u32::MAX as usize);

/// Offset of the CRC field in the header.
const CRC_AT: usize = 4;
/// Offset of the seq field; the CRC covers everything from here to the end of the payload.
pub(crate) const CRC_FROM: usize = 8;
/// Offset of the kind field.
const KIND_AT: usize = 16;
/// Offset of the entry count (`u16`; 0 only for the end marker).
const COUNT_AT: usize = 18;
/// Offset of the reserved (zero) bytes.
const RESERVED_AT: usize = 20;

/// Kind of the end marker the writer puts after the last record of a full segment. Never
/// returned to readers: it only says "continue in the segment named by my seq".
pub(crate) const KIND_SEGMENT_END: u16 = 0xFFFF;

/// What a record holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum RecordKind {
    /// An encoded [`engine::Command`].
    Command = 1,
    /// An encoded [`engine::Event`].
    Event = 2,
    /// A snapshot was taken: the payload names it (where it is, up to which seq it covers).
    SnapshotMarker = 3,
}

impl RecordKind {
    /// The kind's number on disk.
    #[inline]
    pub fn as_u16(self) -> u16 {
        self as u16
    }

    /// The kind with that number, if any.
    #[inline]
    pub fn from_u16(v: u16) -> Option<RecordKind> {
        match v {
            1 => Some(RecordKind::Command),
            2 => Some(RecordKind::Event),
            3 => Some(RecordKind::SnapshotMarker),
            _ => None,
        }
    }
}

/// One record as read back, borrowing its payload from the segment's mapping (no copy).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// What it holds.
    pub kind: RecordKind,
    /// Its sequence number.
    pub seq: u64,
    /// Its payload bytes (checked against the CRC).
    pub payload: &'a [u8],
}

/// Why the bytes at a record position are not a valid record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordFault {
    /// The length word is below the header size or above [`RECORD_LEN_MAX`].
    #[error("length word {0} outside {min}..={max}", min = RECORD_HEADER_LEN, max = RECORD_LEN_MAX)]
    BadLength(u32),
    /// The record would run past the end of the segment (or of a truncated file).
    #[error("record of {0} bytes runs past the end of the segment")]
    PastEnd(u32),
    /// The stored CRC does not match the bytes.
    #[error("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Crc {
        /// CRC in the header.
        stored: u32,
        /// CRC of the bytes.
        computed: u32,
    },
    /// The checksum holds but the kind is not one this build knows.
    #[error("unknown record kind {0}")]
    UnknownKind(u16),
    /// The checksum holds but reserved header bytes are not zero.
    #[error("reserved header bytes are not zero")]
    Reserved,
    /// The checksum holds but the entries do not fill the payload as the entry count says
    /// (a record needs at least one entry; the end marker none).
    #[error("entry count {count} does not match the payload's entries")]
    BadEntries {
        /// The header's entry count.
        count: u16,
    },
    /// The length word is zero (nothing written here) yet a valid record follows at the
    /// given offset: a hole in the middle of the data, not a torn tail.
    #[error("zero length word, yet a valid record follows at offset {0}")]
    Hole(u64),
}

/// A record length rounded up to [`RECORD_ALIGN`].
#[inline]
pub(crate) const fn aligned(len: usize) -> usize {
    (len + RECORD_ALIGN - 1) & !(RECORD_ALIGN - 1)
}

/// Writes the header fields after the length word (CRC, seq, kind, reserved) of a record whose
/// payload is already in place. `after_len_word` is the record from byte 4 (just past the length
/// word, which only atomic accesses may touch) to its end. One CRC pass over the contiguous
/// seq..payload bytes; the same bytes as [`header_tail`] would give.
#[inline]
pub(crate) fn frame_in_place(after_len_word: &mut [u8], kind: u16, seq: u64, count: u16) {
    const AT: usize = 4;
    after_len_word[CRC_FROM - AT..KIND_AT - AT].copy_from_slice(&seq.to_le_bytes());
    after_len_word[KIND_AT - AT..COUNT_AT - AT].copy_from_slice(&kind.to_le_bytes());
    after_len_word[COUNT_AT - AT..RESERVED_AT - AT].copy_from_slice(&count.to_le_bytes());
    after_len_word[RESERVED_AT - AT..RECORD_HEADER_LEN - AT].fill(0);
    let crc = crc32c::crc32c(&after_len_word[CRC_FROM - AT..]);
    after_len_word[CRC_AT - AT..CRC_FROM - AT].copy_from_slice(&crc.to_le_bytes());
}

/// The header bytes after the length word (CRC, seq, kind, reserved), CRC included.
#[cfg(test)]
#[inline]
pub(crate) fn header_tail(kind: u16, seq: u64, count: u16, payload: &[u8]) -> [u8; RECORD_HEADER_LEN - 4] {
    let mut h = [0u8; RECORD_HEADER_LEN];
    h[CRC_FROM..KIND_AT].copy_from_slice(&seq.to_le_bytes());
    h[KIND_AT..COUNT_AT].copy_from_slice(&kind.to_le_bytes());
    h[COUNT_AT..RESERVED_AT].copy_from_slice(&count.to_le_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&h[CRC_FROM..]), payload);
    h[CRC_AT..CRC_FROM].copy_from_slice(&crc.to_le_bytes());
    let mut tail = [0u8; RECORD_HEADER_LEN - 4];
    tail.copy_from_slice(&h[4..]);
    tail
}

/// A record that passed validation: where it is and what it says. Plain data, so a reader can
/// decide what to do before borrowing the payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Framed {
    /// Raw kind (a [`RecordKind`] or [`KIND_SEGMENT_END`]).
    pub(crate) kind: u16,
    /// Sequence number of the first entry.
    pub(crate) seq: u64,
    /// Entries in the frame (0 for the end marker).
    pub(crate) count: u16,
    /// Payload bytes (the entries) within the segment.
    pub(crate) payload: Range<usize>,
    /// Bytes from this record's start to the next record's.
    pub(crate) stride: usize,
    /// The entries carry length prefixes (format version 3); `false` for a version 2 record,
    /// whose whole payload is its one entry.
    pub(crate) prefixed: bool,
}

/// One entry of a validated frame: what a reader hands out as a [`Record`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Raw kind (a [`RecordKind`]).
    pub(crate) kind: u16,
    /// Its sequence number.
    pub(crate) seq: u64,
    /// Its bytes within the segment.
    pub(crate) payload: Range<usize>,
}

/// Reads the length prefix of the entry at `at` of a frame payload.
#[inline]
pub(crate) fn entry_len(payload: &[u8], at: usize) -> usize {
    u16::from_le_bytes([payload[at], payload[at + 1]]) as usize
}

/// True when `payload` is exactly `count` length-prefixed entries.
fn entries_fill(payload: &[u8], count: u16) -> bool {
    let mut at = 0;
    for _ in 0..count {
        if at + ENTRY_HEADER_LEN > payload.len() {
            return false;
        }
        at += ENTRY_HEADER_LEN + entry_len(payload, at);
    }
    at == payload.len()
}

/// What lies at a record position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    /// The length word is zero: nothing (published) here.
    Empty,
    /// A valid record.
    Record(Framed),
    /// Bytes that are not a valid record.
    Invalid(RecordFault),
}

/// Validates the record whose length word `len` was loaded from `offset` of a segment of
/// `segment_len` bytes; `bytes(range)` yields segment bytes once `len` says they are written.
#[inline]
pub(crate) fn validate<'a>(
    len: u32,
    offset: usize,
    segment_len: usize,
    legacy: bool,
    bytes: impl FnOnce(Range<usize>) -> &'a [u8],
) -> Slot {
    if len == 0 {
        return Slot::Empty;
    }
    let len_usize = len as usize;
    if !(RECORD_HEADER_LEN..=RECORD_LEN_MAX).contains(&len_usize) {
        return Slot::Invalid(RecordFault::BadLength(len));
    }
    // `offset` is below the segment length and `len_usize` ≤ RECORD_LEN_MAX: no overflow.
    if offset + aligned(len_usize) > segment_len {
        return Slot::Invalid(RecordFault::PastEnd(len));
    }
    let record = bytes(offset..offset + len_usize);
    let stored = u32::from_le_bytes(record[CRC_AT..CRC_FROM].try_into().expect("4 bytes"));
    let computed = crc32c::crc32c(&record[CRC_FROM..]);
    if stored != computed {
        return Slot::Invalid(RecordFault::Crc { stored, computed });
    }
    let seq = u64::from_le_bytes(record[CRC_FROM..KIND_AT].try_into().expect("8 bytes"));
    let kind = u16::from_le_bytes(record[KIND_AT..COUNT_AT].try_into().expect("2 bytes"));
    if kind != KIND_SEGMENT_END && RecordKind::from_u16(kind).is_none() {
        return Slot::Invalid(RecordFault::UnknownKind(kind));
    }
    if legacy {
        // Format version 2: bytes 18..24 reserved, one entry per record (none in a marker).
        if record[COUNT_AT..RECORD_HEADER_LEN].iter().any(|&b| b != 0) {
            return Slot::Invalid(RecordFault::Reserved);
        }
        return Slot::Record(Framed {
            kind,
            seq,
            count: u16::from(kind != KIND_SEGMENT_END),
            payload: offset + RECORD_HEADER_LEN..offset + len_usize,
            stride: aligned(len_usize),
            prefixed: false,
        });
    }
    if record[RESERVED_AT..RECORD_HEADER_LEN].iter().any(|&b| b != 0) {
        return Slot::Invalid(RecordFault::Reserved);
    }
    let count = u16::from_le_bytes(record[COUNT_AT..RESERVED_AT].try_into().expect("2 bytes"));
    // Pair check of the writer's framing: the entries must tile the payload exactly, so a
    // reader walking them never leaves the frame.
    let entries_ok = if kind == KIND_SEGMENT_END {
        count == 0 && len_usize == RECORD_HEADER_LEN
    } else {
        count > 0 && entries_fill(&record[RECORD_HEADER_LEN..], count)
    };
    if !entries_ok {
        return Slot::Invalid(RecordFault::BadEntries { count });
    }
    Slot::Record(Framed {
        kind,
        seq,
        count,
        payload: offset + RECORD_HEADER_LEN..offset + len_usize,
        stride: aligned(len_usize),
        prefixed: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The payload of a frame holding `entries`.
    fn entries(entries: &[&[u8]]) -> Vec<u8> {
        let mut payload = Vec::new();
        for e in entries {
            payload.extend_from_slice(&(e.len() as u16).to_le_bytes());
            payload.extend_from_slice(e);
        }
        payload
    }

    fn frame_of(kind: u16, seq: u64, count: u16, payload: &[u8]) -> Vec<u8> {
        let len = RECORD_HEADER_LEN + payload.len();
        let mut buf = vec![0u8; aligned(len) + 8];
        buf[..4].copy_from_slice(&(len as u32).to_le_bytes());
        buf[4..RECORD_HEADER_LEN].copy_from_slice(&header_tail(kind, seq, count, payload));
        buf[RECORD_HEADER_LEN..len].copy_from_slice(payload);
        buf
    }

    fn frame(kind: u16, seq: u64, list: &[&[u8]]) -> Vec<u8> {
        frame_of(kind, seq, list.len() as u16, &entries(list))
    }

    fn check(buf: &[u8]) -> Slot {
        let len = u32::from_le_bytes(buf[..4].try_into().unwrap());
        validate(len, 0, buf.len(), false, |r| &buf[r])
    }

    #[test]
    fn a_framed_record_validates_and_any_flipped_bit_does_not() {
        let buf = frame(RecordKind::Event.as_u16(), 42, &[b"hello journal", b"", b"three"]);
        let Slot::Record(f) = check(&buf) else { panic!("valid record refused") };
        let len = RECORD_HEADER_LEN + 3 * ENTRY_HEADER_LEN + 18;
        assert_eq!((f.kind, f.seq, f.count, f.stride), (2, 42, 3, aligned(len)));
        assert_eq!(&buf[f.payload.start + 2..f.payload.start + 15], b"hello journal");
        for bit in 0..len * 8 {
            let mut bad = buf.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(!matches!(check(&bad), Slot::Record(_)), "flipping bit {bit} went unnoticed");
        }
    }

    #[test]
    fn framing_in_place_writes_the_same_header() {
        for payload in [&b""[..], b"x", b"hello journal, a longer payload than one u64"] {
            let len = RECORD_HEADER_LEN + payload.len();
            let mut rec = vec![0u8; len];
            rec[RECORD_HEADER_LEN..].copy_from_slice(payload);
            frame_in_place(&mut rec[4..], 2, 0x0102_0304_0506, 7);
            assert_eq!(rec[4..RECORD_HEADER_LEN], header_tail(2, 0x0102_0304_0506, 7, payload));
        }
    }

    #[test]
    fn empty_payload_and_end_marker_are_records() {
        let buf = frame(KIND_SEGMENT_END, 7, &[]);
        assert!(matches!(check(&buf), Slot::Record(Framed { kind: KIND_SEGMENT_END, seq: 7, count: 0, .. })));
        let buf = frame(1, 7, &[b""]);
        assert!(matches!(check(&buf), Slot::Record(Framed { kind: 1, seq: 7, count: 1, .. })));
    }

    #[test]
    fn entries_must_tile_the_payload() {
        let payload = entries(&[b"abc", b"de"]);
        for count in [0u16, 1, 3] {
            let buf = frame_of(1, 1, count, &payload);
            assert_eq!(check(&buf), Slot::Invalid(RecordFault::BadEntries { count }), "count {count}");
        }
        // An entry length running past the payload.
        let mut bad = payload.clone();
        bad[0] = 200;
        assert_eq!(check(&frame_of(1, 1, 2, &bad)), Slot::Invalid(RecordFault::BadEntries { count: 2 }));
        // An end marker with entries.
        let buf = frame(KIND_SEGMENT_END, 1, &[b"x"]);
        assert_eq!(check(&buf), Slot::Invalid(RecordFault::BadEntries { count: 1 }));
        assert!(matches!(check(&frame_of(1, 1, 2, &payload)), Slot::Record(_)));
    }

    #[test]
    fn lengths_are_bounded() {
        let mut buf = frame(1, 1, &[b"x"]);
        buf[..4].copy_from_slice(&3u32.to_le_bytes());
        assert_eq!(check(&buf), Slot::Invalid(RecordFault::BadLength(3)));
        buf[..4].copy_from_slice(&(RECORD_LEN_MAX as u32 + 1).to_le_bytes());
        assert!(matches!(check(&buf), Slot::Invalid(RecordFault::BadLength(_))));
        buf[..4].copy_from_slice(&200u32.to_le_bytes());
        assert_eq!(check(&buf), Slot::Invalid(RecordFault::PastEnd(200)));
        buf[..4].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(check(&buf), Slot::Empty);
    }

    #[test]
    fn unknown_kind_with_a_good_crc_is_named() {
        let buf = frame(9, 1, &[b"x"]);
        assert_eq!(check(&buf), Slot::Invalid(RecordFault::UnknownKind(9)));
    }
}
