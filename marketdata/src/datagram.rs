//! The live binary feed's datagrams: codec messages ([`crate::codec`]) packed back to back, as
//! many whole messages as fit the path's datagram size, in channel-sequence order. A datagram
//! carries no header of its own: each message has its epoch and sequences, so a lost datagram is
//! a hole in the sequences and a reordered one is put back in place by the subscriber.

use crate::codec::{self, DecodeError};
use crate::message::Message;

/// Packs messages into datagrams of at most `max_bytes` each.
#[derive(Debug)]
pub struct Packer {
    max_bytes: usize,
    current: Vec<u8>,
}

impl Packer {
    /// A packer for datagrams of at most `max_bytes` (at least one message must fit).
    ///
    /// # Panics
    /// When `max_bytes` is below [`codec::MESSAGE_LEN_MAX`].
    pub fn new(max_bytes: usize) -> Packer {
        assert!(max_bytes >= codec::MESSAGE_LEN_MAX, "a datagram must hold the largest message");
        Packer { max_bytes, current: Vec::with_capacity(max_bytes) }
    }

    /// Adds a message; when it does not fit the datagram being filled, that one is finished
    /// first and handed to `full`.
    pub fn push(&mut self, message: &Message, full: &mut impl FnMut(Vec<u8>)) {
        let len = codec::encoded_len(message);
        if self.current.len() + len > self.max_bytes {
            self.flush(full);
        }
        let at = self.current.len();
        self.current.resize(at + len, 0);
        codec::encode(message, &mut self.current[at..]).expect("sized by encoded_len");
    }

    /// Hands the datagram being filled, if any, to `full`.
    pub fn flush(&mut self, full: &mut impl FnMut(Vec<u8>)) {
        if !self.current.is_empty() {
            let next = Vec::with_capacity(self.max_bytes);
            full(std::mem::replace(&mut self.current, next));
        }
    }
}

/// The messages of one datagram, in order; stops at the first that does not decode.
pub fn unpack(mut datagram: &[u8]) -> impl Iterator<Item = Result<Message, DecodeError>> + '_ {
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || datagram.is_empty() {
            return None;
        }
        match codec::decode(datagram) {
            Ok((m, used)) => {
                datagram = &datagram[used..];
                Some(Ok(m))
            }
            Err(e) => {
                failed = true;
                Some(Err(e))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Body, Channel, Header};
    use engine::{OrderId, SymbolId};

    fn m(seq: u64) -> Message {
        let header = Header {
            epoch: 1,
            channel: Channel::Orders,
            channel_seq: seq,
            symbol_seq: seq,
            symbol: Some(SymbolId(0)),
            ts_ns: seq,
        };
        Message { header, body: Body::Delete { order_id: OrderId(seq) } }
    }

    #[test]
    fn messages_are_packed_whole_within_the_size_and_come_back_in_order() {
        let mut datagrams = Vec::new();
        let mut packer = Packer::new(200);
        for seq in 1..=10 {
            packer.push(&m(seq), &mut |d| datagrams.push(d));
        }
        packer.flush(&mut |d| datagrams.push(d));
        // 48-byte messages: four to a 200-byte datagram.
        assert_eq!(datagrams.iter().map(Vec::len).collect::<Vec<_>>(), [192, 192, 96]);
        let back: Vec<Message> = datagrams.iter().flat_map(|d| unpack(d)).map(Result::unwrap).collect();
        assert_eq!(back, (1..=10).map(m).collect::<Vec<_>>());
        let mut bad = datagrams[0].clone();
        bad[48 + 2] = 0xEE;
        let read: Vec<_> = unpack(&bad).collect();
        assert_eq!(read.len(), 2, "the first message, then the error, then nothing");
        assert_eq!(read[1], Err(DecodeError::UnknownType(0xEE)));
    }
}
