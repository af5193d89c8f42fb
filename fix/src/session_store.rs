//! The durable state of one persistent FIX session (QuickFIX's `ResetOnLogon=N`): sequence
//! numbers, the sent application messages a ResendRequest is answered from, the last engine
//! event reported to it, and whether a connection was logged on.
//!
//! Two files per session in the sessions directory, named by the counterparty's CompID:
//!
//! ```text
//! NAME.state   two 64-byte slots, written alternately (write_at); the valid slot with the
//!              higher generation wins, so a crash in the middle of a write leaves the other.
//!   0 magic u32 | 4 version u16 | 6 connected u8 | 7 zero u8 | 8 generation u64
//!  16 in_seq_next u64 | 24 out_seq_next u64 | 32 last_event_seq u64 | 40 session_day i64
//!  48 zero [u8; 12] | 60 crc32c of bytes 0..60 u32
//! NAME.log     sent application messages, appended: each record is
//!   0 len u32 (whole record) | 4 crc32c of bytes 8..len u32 | 8 seq u64 | 16 sent_ns u64
//!  24 msg_type_len u8 | 25 msg_type | fields (tag=value<SOH>...)
//! ```
//!
//! Writes go to the page cache (no fsync), which a killed process cannot lose: the same
//! guarantee as the journal's default sync policy. The log is rewritten from the bounded
//! in-memory [`ResendStore`] once it grows past [`LOG_BYTES_MAX`], so retention is that store's
//! bound (the newest [`crate::session::RESEND_STORE_MAX_DEFAULT`] messages and at most
//! [`RESEND_STORE_BYTES_MAX`] bytes); a resend beyond it is gap-filled.
//!
//! A record or slot that fails its checksum is corruption: [`SessionStore::open`] names the file
//! and offset, and the session starts again from sequence number 1 rather than with wrong
//! numbers.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::resend_store::{ResendStore, RESEND_STORE_BYTES_MAX};
use crate::session::SessionState;

const STATE_MAGIC: u32 = 0x5846_5353; // "SSFX"
const STATE_VERSION: u16 = 1;
const SLOT_LEN: usize = 64;
const RECORD_HEADER_LEN: usize = 25;
/// The log is compacted (rewritten from the in-memory store) past this size.
pub const LOG_BYTES_MAX: u64 = 4 * RESEND_STORE_BYTES_MAX as u64;
/// Longest CompID used as a file name.
pub const COMP_ID_LEN_MAX: usize = 64;

/// Why a session store could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SessionStoreError {
    /// A file could not be read or written.
    #[error("session store {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A record or state slot failed its check; the session was reset.
    #[error("session store {path} is corrupt at offset {offset}: {what}; the session starts again from MsgSeqNum 1")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Byte offset of the bad record or slot.
        offset: u64,
        /// What was wrong.
        what: &'static str,
    },
    /// The CompID cannot name a file.
    #[error("CompID {0:?} cannot name a session store file (letters, digits, '-', '_', '.', at most {COMP_ID_LEN_MAX})")]
    BadName(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SessionStoreError + '_ {
    move |source| SessionStoreError::Io { path: path.to_path_buf(), source }
}

/// What the state file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionMeta {
    /// Next MsgSeqNum expected from the counterparty.
    pub in_seq_next: u64,
    /// MsgSeqNum of the next message sent.
    pub out_seq_next: u64,
    /// Highest engine event sequence number whose report this session has been given.
    pub last_event_seq: u64,
    /// The session day the numbers belong to (see `[session] reset_time`).
    pub session_day: i64,
    /// A connection was logged on (cleared by a Logout or a lost connection).
    pub connected: bool,
}

/// One session's files, open.
#[derive(Debug)]
pub struct SessionStore {
    state_path: PathBuf,
    log_path: PathBuf,
    state: File,
    log: File,
    log_len: u64,
    generation: u64,
    meta: SessionMeta,
    /// Out seqs below this are in the log.
    logged_until: u64,
    scratch: Vec<u8>,
}

/// A session store as found at start-up.
#[derive(Debug)]
pub struct Opened {
    /// The store, open for writing.
    pub store: SessionStore,
    /// The session's sequence numbers and sent messages.
    pub state: SessionState,
    /// Corruption found (the session was reset), to report.
    pub corruption: Option<SessionStoreError>,
    /// No files existed: a new session.
    pub created: bool,
}

impl SessionStore {
    /// Opens (or creates) the store of the session with `comp_id` in `dir`. `fresh` is the
    /// state a new or reset session starts with; a corrupt store is reset to it and the
    /// corruption returned in [`Opened::corruption`].
    pub fn open(
        dir: &Path,
        comp_id: &str,
        fresh: SessionMeta,
        messages_max: usize,
    ) -> Result<Opened, SessionStoreError> {
        if comp_id.is_empty()
            || comp_id.len() > COMP_ID_LEN_MAX
            || !comp_id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            || comp_id.starts_with('.')
        {
            return Err(SessionStoreError::BadName(comp_id.to_owned()));
        }
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let state_path = dir.join(format!("{comp_id}.state"));
        let log_path = dir.join(format!("{comp_id}.log"));
        let created = !state_path.exists();
        let open = |p: &Path| {
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(p).map_err(io_err(p))
        };
        let state = open(&state_path)?;
        // Appends always go to the end, whatever was read.
        let log = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&log_path)
            .map_err(io_err(&log_path))?;
        let mut store = SessionStore {
            state_path,
            log_path,
            state,
            log,
            log_len: 0,
            generation: 0,
            meta: fresh,
            logged_until: 1,
            scratch: Vec::new(),
        };
        let mut resend = ResendStore::new(messages_max, RESEND_STORE_BYTES_MAX);
        let corruption = if created {
            None
        } else {
            match store
                .read_state()
                .and_then(|meta| store.read_log(&mut resend, meta.out_seq_next).map(|()| meta))
            {
                Ok(meta) => {
                    store.meta = meta;
                    None
                }
                Err(e @ SessionStoreError::Corrupt { .. }) => {
                    resend = ResendStore::new(messages_max, RESEND_STORE_BYTES_MAX);
                    Some(e)
                }
                Err(e) => return Err(e),
            }
        };
        if created || corruption.is_some() {
            store.meta = fresh;
            store.reset_log()?;
        }
        store.logged_until = store.meta.out_seq_next;
        store.write_state()?;
        let state = SessionState {
            in_seq_next: store.meta.in_seq_next,
            out_seq_next: store.meta.out_seq_next,
            store: resend,
        };
        Ok(Opened { store, state, corruption, created })
    }

    /// What the state file says now.
    pub fn meta(&self) -> SessionMeta {
        self.meta
    }

    /// Starts the session again from MsgSeqNum 1 (a new session day, or ResetSeqNumFlag):
    /// the sent messages are dropped.
    pub fn reset(&mut self, session_day: i64) -> Result<(), SessionStoreError> {
        self.meta.in_seq_next = 1;
        self.meta.out_seq_next = 1;
        self.meta.session_day = session_day;
        self.logged_until = 1;
        self.reset_log()?;
        self.write_state()
    }

    /// Records what changed since the last call: application messages sent (from `state`'s
    /// store) are appended to the log, then the numbers are written. Call before the bytes
    /// the session produced are handed to a transport, so nothing the counterparty saw can be
    /// lost to a crash.
    pub fn persist(
        &mut self,
        (in_seq_next, out_seq_next, store): (u64, u64, &ResendStore),
        last_event_seq: u64,
        connected: bool,
    ) -> Result<(), SessionStoreError> {
        if out_seq_next < self.logged_until {
            // The session was reset since the last call.
            self.reset_log()?;
            self.logged_until = 1;
        }
        let from = self.logged_until;
        let mut appended = false;
        for m in store.range(from, out_seq_next.saturating_sub(1)) {
            encode_record(&mut self.scratch, m.seq, m.sent_ns, m.msg_type, m.fields);
            appended = true;
        }
        if appended {
            self.log.write_all(&self.scratch).map_err(io_err(&self.log_path))?;
            self.log_len += self.scratch.len() as u64;
            self.scratch.clear();
        }
        self.logged_until = out_seq_next;
        if self.log_len > LOG_BYTES_MAX {
            self.compact(store)?;
        }
        let meta = SessionMeta {
            in_seq_next,
            out_seq_next,
            last_event_seq: last_event_seq.max(self.meta.last_event_seq),
            session_day: self.meta.session_day,
            connected,
        };
        if meta != self.meta {
            self.meta = meta;
            self.write_state()?;
        }
        Ok(())
    }

    /// Rewrites the log from the in-memory store (what a resend can still use), through a
    /// temporary file and a rename.
    fn compact(&mut self, store: &ResendStore) -> Result<(), SessionStoreError> {
        let tmp = self.log_path.with_extension("log.tmp");
        let mut bytes = Vec::new();
        for m in store.range(1, u64::MAX) {
            encode_record(&mut bytes, m.seq, m.sent_ns, m.msg_type, m.fields);
        }
        std::fs::write(&tmp, &bytes).map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, &self.log_path).map_err(io_err(&self.log_path))?;
        self.log = OpenOptions::new()
            .append(true)
            .read(true)
            .open(&self.log_path)
            .map_err(io_err(&self.log_path))?;
        self.log_len = bytes.len() as u64;
        Ok(())
    }

    fn reset_log(&mut self) -> Result<(), SessionStoreError> {
        self.log.set_len(0).map_err(io_err(&self.log_path))?;
        self.log = OpenOptions::new()
            .append(true)
            .read(true)
            .open(&self.log_path)
            .map_err(io_err(&self.log_path))?;
        self.log_len = 0;
        Ok(())
    }

    fn write_state(&mut self) -> Result<(), SessionStoreError> {
        self.generation += 1;
        let slot = encode_slot(&self.meta, self.generation);
        let at = (self.generation % 2) * SLOT_LEN as u64;
        self.state.write_all_at(&slot, at).map_err(io_err(&self.state_path))
    }

    fn read_state(&mut self) -> Result<SessionMeta, SessionStoreError> {
        let mut bytes = [0u8; 2 * SLOT_LEN];
        let len = self.state.read_at(&mut bytes, 0).map_err(io_err(&self.state_path))?;
        let mut best: Option<(u64, SessionMeta)> = None;
        for (i, slot) in bytes[..len].chunks_exact(SLOT_LEN).enumerate() {
            if let Some((generation, meta)) = decode_slot(slot) {
                if best.is_none_or(|(g, _)| generation > g) {
                    best = Some((generation, meta));
                }
            } else if slot.iter().any(|&b| b != 0) && i == 0 && len < 2 * SLOT_LEN {
                // A lone first slot that does not check out cannot be a torn second write.
                return Err(self.corrupt_state(0));
            }
        }
        match best {
            Some((generation, meta)) => {
                self.generation = generation;
                Ok(meta)
            }
            None => Err(self.corrupt_state(0)),
        }
    }

    fn corrupt_state(&self, offset: u64) -> SessionStoreError {
        SessionStoreError::Corrupt {
            path: self.state_path.clone(),
            offset,
            what: "no state slot passes its checksum",
        }
    }

    fn read_log(&mut self, resend: &mut ResendStore, out_seq_next: u64) -> Result<(), SessionStoreError> {
        let bytes = std::fs::read(&self.log_path).map_err(io_err(&self.log_path))?;
        let mut at = 0usize;
        let corrupt = |offset: usize, what| SessionStoreError::Corrupt {
            path: self.log_path.clone(),
            offset: offset as u64,
            what,
        };
        let mut last_seq = 0;
        while at < bytes.len() {
            let rest = &bytes[at..];
            if rest.len() < RECORD_HEADER_LEN {
                return Err(corrupt(at, "a record header is cut short"));
            }
            let len = u32::from_le_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
            if len < RECORD_HEADER_LEN || len > rest.len() {
                return Err(corrupt(at, "a record length is out of range"));
            }
            let crc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
            if crc32c::crc32c(&rest[8..len]) != crc {
                return Err(corrupt(at, "a record fails its checksum"));
            }
            let seq = u64::from_le_bytes(rest[8..16].try_into().expect("8 bytes"));
            let sent_ns = u64::from_le_bytes(rest[16..24].try_into().expect("8 bytes"));
            let type_len = usize::from(rest[24]);
            if RECORD_HEADER_LEN + type_len > len || seq <= last_seq {
                return Err(corrupt(at, "a record's fields are inconsistent"));
            }
            if seq >= out_seq_next {
                // Appended, but the process died before the numbers that cover it were written:
                // it was never transmitted (bytes leave only after both). Cut it off.
                self.log.set_len(at as u64).map_err(io_err(&self.log_path))?;
                self.log_len = at as u64;
                return Ok(());
            }
            let msg_type = &rest[RECORD_HEADER_LEN..RECORD_HEADER_LEN + type_len];
            let fields = &rest[RECORD_HEADER_LEN + type_len..len];
            resend.push(seq, msg_type, fields, sent_ns);
            last_seq = seq;
            at += len;
        }
        self.log_len = bytes.len() as u64;
        Ok(())
    }
}

fn encode_record(out: &mut Vec<u8>, seq: u64, sent_ns: u64, msg_type: &[u8], fields: &[u8]) {
    let start = out.len();
    let len = RECORD_HEADER_LEN + msg_type.len() + fields.len();
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&sent_ns.to_le_bytes());
    out.push(msg_type.len() as u8);
    out.extend_from_slice(msg_type);
    out.extend_from_slice(fields);
    let crc = crc32c::crc32c(&out[start + 8..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

fn encode_slot(meta: &SessionMeta, generation: u64) -> [u8; SLOT_LEN] {
    let mut s = [0u8; SLOT_LEN];
    s[0..4].copy_from_slice(&STATE_MAGIC.to_le_bytes());
    s[4..6].copy_from_slice(&STATE_VERSION.to_le_bytes());
    s[6] = u8::from(meta.connected);
    s[8..16].copy_from_slice(&generation.to_le_bytes());
    s[16..24].copy_from_slice(&meta.in_seq_next.to_le_bytes());
    s[24..32].copy_from_slice(&meta.out_seq_next.to_le_bytes());
    s[32..40].copy_from_slice(&meta.last_event_seq.to_le_bytes());
    s[40..48].copy_from_slice(&meta.session_day.to_le_bytes());
    let crc = crc32c::crc32c(&s[..60]);
    s[60..64].copy_from_slice(&crc.to_le_bytes());
    s
}

fn decode_slot(s: &[u8]) -> Option<(u64, SessionMeta)> {
    let u64_at = |i: usize| u64::from_le_bytes(s[i..i + 8].try_into().expect("8 bytes"));
    let magic = u32::from_le_bytes(s[0..4].try_into().expect("4 bytes"));
    let version = u16::from_le_bytes(s[4..6].try_into().expect("2 bytes"));
    let crc = u32::from_le_bytes(s[60..64].try_into().expect("4 bytes"));
    if magic != STATE_MAGIC || version != STATE_VERSION || crc32c::crc32c(&s[..60]) != crc {
        return None;
    }
    let meta = SessionMeta {
        in_seq_next: u64_at(16),
        out_seq_next: u64_at(24),
        last_event_seq: u64_at(32),
        session_day: i64::from_le_bytes(s[40..48].try_into().expect("8 bytes")),
        connected: s[6] != 0,
    };
    (meta.in_seq_next >= 1 && meta.out_seq_next >= 1).then_some((u64_at(8), meta))
}

/// The session day `now_ns` falls in when days start `reset_offset_s` seconds after midnight
/// UTC.
pub fn session_day(now_ns: u64, reset_offset_s: u32) -> i64 {
    let s = (now_ns / 1_000_000_000) as i64 - i64::from(reset_offset_s);
    s.div_euclid(86_400)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("exchange-sstore-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn fresh() -> SessionMeta {
        SessionMeta { in_seq_next: 1, out_seq_next: 1, last_event_seq: 7, session_day: 3, connected: false }
    }

    fn sent(state: &mut SessionState, n: u64) {
        for _ in 0..n {
            let seq = state.out_seq_next;
            state.store.push(seq, b"8", format!("11=c{seq}\x01").as_bytes(), seq * 10);
            state.out_seq_next += 1;
        }
    }

    #[test]
    fn numbers_and_messages_survive_a_reopen() {
        let d = dir("reopen");
        let mut o = SessionStore::open(&d, "alice", fresh(), 100).unwrap();
        assert!(o.created && o.corruption.is_none());
        assert_eq!(o.store.meta().last_event_seq, 7);
        sent(&mut o.state, 3);
        o.state.out_seq_next += 1; // an admin message: numbered, not kept
        o.state.in_seq_next = 9;
        o.store.persist((o.state.in_seq_next, o.state.out_seq_next, &o.state.store), 40, true).unwrap();
        sent(&mut o.state, 1);
        o.store.persist((o.state.in_seq_next, o.state.out_seq_next, &o.state.store), 41, true).unwrap();
        drop(o);
        let o = SessionStore::open(&d, "alice", fresh(), 100).unwrap();
        assert!(!o.created && o.corruption.is_none());
        let m = o.store.meta();
        assert_eq!((m.in_seq_next, m.out_seq_next, m.last_event_seq, m.connected), (9, 6, 41, true));
        let seqs: Vec<u64> = o.state.store.range(1, 100).map(|m| m.seq).collect();
        assert_eq!(seqs, [1, 2, 3, 5]);
        let m5 = o.state.store.range(5, 5).next().unwrap();
        assert_eq!((m5.fields, m5.sent_ns), (&b"11=c5\x01"[..], 50));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_corrupt_log_is_named_and_the_session_reset() {
        let d = dir("corrupt");
        let mut o = SessionStore::open(&d, "bob", fresh(), 100).unwrap();
        sent(&mut o.state, 3);
        o.store.persist((o.state.in_seq_next, o.state.out_seq_next, &o.state.store), 9, false).unwrap();
        drop(o);
        let log = d.join("bob.log");
        let mut bytes = std::fs::read(&log).unwrap();
        let second = u32::from_le_bytes(bytes[0..4].try_into().unwrap()) as usize;
        bytes[second + 30] ^= 0xFF;
        std::fs::write(&log, bytes).unwrap();
        let o = SessionStore::open(&d, "bob", fresh(), 100).unwrap();
        let e = o.corruption.expect("corruption reported").to_string();
        assert!(e.contains("bob.log") && e.contains(&format!("offset {second}")), "{e}");
        assert_eq!((o.state.in_seq_next, o.state.out_seq_next), (1, 1));
        assert!(o.state.store.is_empty());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn messages_logged_past_the_written_numbers_were_never_sent_and_are_cut() {
        let d = dir("ahead");
        let mut o = SessionStore::open(&d, "dave", fresh(), 100).unwrap();
        sent(&mut o.state, 2);
        o.store.persist((o.state.in_seq_next, o.state.out_seq_next, &o.state.store), 0, true).unwrap();
        let len_before = std::fs::metadata(d.join("dave.log")).unwrap().len();
        // A crash between the log append and the state write of the next message.
        let mut extra = Vec::new();
        encode_record(&mut extra, 3, 30, b"8", b"11=c3\x01");
        let mut log = OpenOptions::new().append(true).open(d.join("dave.log")).unwrap();
        log.write_all(&extra).unwrap();
        drop((log, o));
        let o = SessionStore::open(&d, "dave", fresh(), 100).unwrap();
        assert!(o.corruption.is_none());
        assert_eq!(o.state.out_seq_next, 3);
        assert_eq!(o.state.store.range(1, 10).map(|m| m.seq).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(std::fs::metadata(d.join("dave.log")).unwrap().len(), len_before);
        // Appends after a reopen go after what is there.
        let mut o = o;
        sent(&mut o.state, 1);
        o.store.persist((o.state.in_seq_next, o.state.out_seq_next, &o.state.store), 0, true).unwrap();
        drop(o);
        let o = SessionStore::open(&d, "dave", fresh(), 100).unwrap();
        assert_eq!(o.state.store.range(1, 10).map(|m| m.seq).collect::<Vec<_>>(), [1, 2, 3]);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_torn_state_write_falls_back_to_the_other_slot() {
        let d = dir("torn");
        let mut o = SessionStore::open(&d, "carol", fresh(), 100).unwrap();
        o.state.in_seq_next = 4;
        o.store.persist((o.state.in_seq_next, o.state.out_seq_next, &o.state.store), 0, true).unwrap();
        o.state.in_seq_next = 5;
        o.store.persist((o.state.in_seq_next, o.state.out_seq_next, &o.state.store), 0, true).unwrap();
        let newest = (o.store.generation % 2) as usize * SLOT_LEN;
        drop(o);
        let path = d.join("carol.state");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[newest + 20] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        let o = SessionStore::open(&d, "carol", fresh(), 100).unwrap();
        assert!(o.corruption.is_none());
        assert_eq!(o.state.in_seq_next, 4);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn bad_names_and_days() {
        let d = dir("names");
        for bad in ["", "../x", "a/b", ".hidden", &"x".repeat(65)] {
            assert!(matches!(SessionStore::open(&d, bad, fresh(), 10), Err(SessionStoreError::BadName(_))));
        }
        assert_eq!(session_day(86_400_000_000_000, 0), 1);
        assert_eq!(session_day(86_400_000_000_000, 3600), 0);
        let _ = std::fs::remove_dir_all(&d);
    }
}
