//! Bytes waiting for a transport that takes them a part at a time.
//!
//! A `Vec` drained from the front (`drain(..n)`) moves everything behind the part written on
//! every partial write: with megabytes queued for a slow reader, that was tens of milliseconds
//! of `memmove` per turn of the gateway (measured: 4–100 ms turns at 200k orders/s). Here the
//! front is an offset, and the buffer is compacted only once the consumed prefix is as large
//! as what is left, so each byte moves at most once on average.

/// A FIFO of bytes: appended at the back, consumed from the front.
#[derive(Debug, Default)]
pub struct WriteQueue {
    buf: Vec<u8>,
    /// Bytes of `buf` before this are consumed.
    start: usize,
}

impl WriteQueue {
    /// An empty queue.
    pub fn new() -> WriteQueue {
        WriteQueue::default()
    }

    /// Bytes waiting.
    pub fn len(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends `bytes`.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The bytes waiting, oldest first.
    pub fn front(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Drops the first `n` waiting bytes (those just written).
    pub fn consume(&mut self, n: usize) {
        self.start += n.min(self.len());
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start >= self.buf.len() - self.start {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Against a `VecDeque` model: the same bytes in the same order, whatever the pushes
        /// and partial consumes; and the buffer never holds more than twice what waits plus the
        /// last push.
        #[test]
        fn behaves_as_a_fifo(ops in proptest::collection::vec((0usize..300, 0usize..400), 0..200)) {
            let mut queue = WriteQueue::new();
            let mut model = std::collections::VecDeque::new();
            let mut next = 0u8;
            for (push, take) in ops {
                let bytes: Vec<u8> = (0..push).map(|_| { next = next.wrapping_add(1); next }).collect();
                queue.push(&bytes);
                model.extend(bytes.iter().copied());
                prop_assert!(queue.buf.len() <= 2 * queue.len() + push + 1);
                let take = take.min(queue.len());
                prop_assert_eq!(&queue.front()[..take], &model.iter().copied().take(take).collect::<Vec<_>>()[..]);
                queue.consume(take);
                model.drain(..take);
                prop_assert_eq!(queue.len(), model.len());
            }
            prop_assert_eq!(queue.front(), &model.iter().copied().collect::<Vec<_>>()[..]);
        }
    }
}
