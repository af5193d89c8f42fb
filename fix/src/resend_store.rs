//! The bounded store of sent application messages that a ResendRequest is answered from.
//!
//! Every report a session sends goes through here, so storing one must not allocate: the
//! messages' bytes live in one byte log that is appended to and, once the evicted prefix is as
//! large as what is still live, compacted (amortised, no allocation once the log has grown to
//! its bound), and the entries are a ring of fixed-size records. Entries are in sequence order,
//! so a resend finds its first message by binary search instead of a scan per sequence number.

use std::collections::VecDeque;

/// Most bytes (MsgType and fields after the standard header) one session keeps for resend,
/// whatever its message bound: ~14,000 ExecutionReports of ~150 bytes, more than the default
/// 10,000-message bound, so the count usually decides. The log holds at most twice this, so
/// the stores of the gateway's `CONNECTIONS_MAX` sessions per transport have a known
/// ceiling even if every message were large.
pub const RESEND_STORE_BYTES_MAX: usize = 2 << 20;

/// One stored message: where its bytes are in the log.
#[derive(Clone, Copy, Debug)]
struct Entry {
    seq: u64,
    sent_ns: u64,
    /// Offset of the MsgType in the log, counted from the log's first byte ever (so compaction
    /// moves no entry).
    start: u64,
    msg_type_len: u8,
    fields_len: u32,
}

impl Entry {
    fn len(&self) -> usize {
        usize::from(self.msg_type_len) + self.fields_len as usize
    }
}

/// A message read back from the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stored<'a> {
    /// Its MsgSeqNum.
    pub seq: u64,
    /// Its MsgType.
    pub msg_type: &'a [u8],
    /// Its fields after the standard header, each `tag=value<SOH>`.
    pub fields: &'a [u8],
    /// When it was first sent (OrigSendingTime of the resend).
    pub sent_ns: u64,
}

/// Sent application messages, oldest evicted first past either bound.
#[derive(Debug, Default)]
pub struct ResendStore {
    entries: VecDeque<Entry>,
    log: Vec<u8>,
    /// Log offset (since the first byte ever) of `log[0]`.
    base: u64,
    /// Bytes of the entries still held.
    live_bytes: usize,
    /// Highest seq evicted past a bound (0: none): a resend from at or below it asks for
    /// messages the store no longer has.
    evicted_until: u64,
    messages_max: usize,
    bytes_max: usize,
}

impl ResendStore {
    /// A store of at most `messages_max` messages and `bytes_max` bytes (`messages_max == 0`
    /// keeps nothing: every resend is a gap fill).
    pub fn new(messages_max: usize, bytes_max: usize) -> ResendStore {
        ResendStore { messages_max, bytes_max, ..ResendStore::default() }
    }

    /// Messages held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Nothing held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Drops every message (a session reset), keeping the bounds and the buffers.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.log.clear();
        self.base = 0;
        self.live_bytes = 0;
        self.evicted_until = 0;
    }

    /// Highest seq evicted past a bound, 0 when none was.
    pub fn evicted_until(&self) -> u64 {
        self.evicted_until
    }

    /// The most messages kept.
    pub fn messages_max(&self) -> usize {
        self.messages_max
    }

    /// Keeps message `seq` (greater than every seq kept so far). A message larger than the
    /// byte bound, or a MsgType over 255 bytes, is not kept (a resend gap-fills it).
    pub fn push(&mut self, seq: u64, msg_type: &[u8], fields: &[u8], sent_ns: u64) {
        debug_assert!(self.entries.back().is_none_or(|e| e.seq < seq), "seqs must increase");
        let len = msg_type.len() + fields.len();
        let Ok(msg_type_len) = u8::try_from(msg_type.len()) else { return };
        if self.messages_max == 0 || len > self.bytes_max || u32::try_from(fields.len()).is_err() {
            return;
        }
        while self.entries.len() >= self.messages_max || self.live_bytes + len > self.bytes_max {
            let Some(oldest) = self.entries.pop_front() else { break };
            self.live_bytes -= oldest.len();
            self.evicted_until = oldest.seq;
        }
        self.compact();
        let start = self.base + self.log.len() as u64;
        self.log.extend_from_slice(msg_type);
        self.log.extend_from_slice(fields);
        self.live_bytes += len;
        self.entries.push_back(Entry { seq, sent_ns, start, msg_type_len, fields_len: fields.len() as u32 });
    }

    /// Drops the evicted prefix of the log once it is at least as large as the live part, so
    /// the log stays under twice the byte bound and each byte is moved at most once on average.
    fn compact(&mut self) {
        let live_start = self.entries.front().map_or(self.base + self.log.len() as u64, |e| e.start);
        let dead = (live_start - self.base) as usize;
        if dead > 0 && dead >= self.log.len() - dead {
            self.log.drain(..dead);
            self.base = live_start;
        }
    }

    /// The stored messages with `first <= seq <= last`, in order.
    pub fn range(&self, first: u64, last: u64) -> impl Iterator<Item = Stored<'_>> + '_ {
        let from = self.entries.partition_point(|e| e.seq < first);
        self.entries.range(from..).take_while(move |e| e.seq <= last).map(move |e| {
            let at = (e.start - self.base) as usize;
            let type_end = at + usize::from(e.msg_type_len);
            Stored {
                seq: e.seq,
                msg_type: &self.log[at..type_end],
                fields: &self.log[type_end..type_end + e.fields_len as usize],
                sent_ns: e.sent_ns,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn seqs(store: &ResendStore, first: u64, last: u64) -> Vec<u64> {
        store.range(first, last).map(|m| m.seq).collect()
    }

    #[test]
    fn keeps_the_newest_messages_within_the_count() {
        let mut store = ResendStore::new(3, 1 << 20);
        for seq in [2, 3, 5, 8, 9] {
            store.push(seq, b"8", format!("11=c{seq}\x01").as_bytes(), seq * 10);
        }
        assert_eq!(seqs(&store, 1, u64::MAX), [5, 8, 9]);
        assert_eq!(seqs(&store, 6, 8), [8]);
        assert_eq!(seqs(&store, 10, 20), Vec::<u64>::new());
        let m = store.range(9, 9).next().unwrap();
        assert_eq!((m.msg_type, m.fields, m.sent_ns), (&b"8"[..], &b"11=c9\x01"[..], 90));
    }

    #[test]
    fn the_byte_bound_evicts_too_and_an_oversized_message_is_not_kept() {
        let mut store = ResendStore::new(100, 20);
        store.push(1, b"8", b"58=aaaaaaa\x01", 0); // 12 bytes
        store.push(2, b"8", b"58=bbbbbbb\x01", 0); // 24 > 20: the first goes
        assert_eq!(seqs(&store, 1, 10), [2]);
        store.push(3, b"8", &[b'x'; 21], 0);
        assert_eq!(seqs(&store, 1, 10), [2]);
        let mut none = ResendStore::new(0, 20);
        none.push(1, b"8", b"1=a\x01", 0);
        assert!(none.is_empty());
    }

    proptest! {
        /// Against a model that keeps copies: the same messages, byte for byte, for any
        /// sequence of sizes and bounds; and the log never passes twice the byte bound.
        #[test]
        fn agrees_with_a_model(
            messages_max in 0usize..20,
            bytes_max in 1usize..400,
            sizes in proptest::collection::vec((1usize..3, 0usize..120, 1u64..4), 0..300),
            query in (0u64..700, 0u64..700),
        ) {
            let mut store = ResendStore::new(messages_max, bytes_max);
            let mut model: VecDeque<(u64, Vec<u8>, Vec<u8>, u64)> = VecDeque::new();
            let mut seq = 0;
            for (i, &(type_len, fields_len, step)) in sizes.iter().enumerate() {
                seq += step;
                let msg_type = vec![b'A' + (i % 26) as u8; type_len];
                let fields: Vec<u8> = (0..fields_len).map(|j| (i + j) as u8).collect();
                store.push(seq, &msg_type, &fields, i as u64);
                let len = type_len + fields_len;
                if messages_max > 0 && len <= bytes_max {
                    model.push_back((seq, msg_type, fields, i as u64));
                    while model.len() > messages_max
                        || model.iter().map(|m| m.1.len() + m.2.len()).sum::<usize>() > bytes_max
                    {
                        model.pop_front();
                    }
                }
                prop_assert!(store.log.len() <= 2 * bytes_max + len);
            }
            let (first, last) = query;
            let ours: Vec<_> = store
                .range(first, last)
                .map(|m| (m.seq, m.msg_type.to_vec(), m.fields.to_vec(), m.sent_ns))
                .collect();
            let theirs: Vec<_> = model.into_iter().filter(|m| m.0 >= first && m.0 <= last).collect();
            prop_assert_eq!(ours, theirs);
        }
    }
}
