//! One symbol's public book: every resting order in queue priority (L3), with per-level totals
//! (L2) and the best of each side (L1). No account is stored: nothing here can leak one.
//!
//! Orders are nodes of a doubly linked FIFO per price level, keyed by engine order id in an
//! Fx hash map; levels sit in a `BTreeMap` per side. Every operation is O(log levels).

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use crate::{OrderId, Price, Qty, Side};

/// "No order": the end of a level's queue. Engine order ids start at 1.
const NONE: OrderId = OrderId(0);

/// One resting order as the public sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BookOrder {
    /// Engine order id.
    pub order_id: OrderId,
    /// Side.
    pub side: Side,
    /// Price in ticks.
    pub price: Price,
    /// Displayed quantity (an iceberg's current slice).
    pub qty: Qty,
}

/// One aggregated price level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Level {
    /// Side.
    pub side: Side,
    /// Price in ticks.
    pub price: Price,
    /// Displayed quantity at this price; 0 when the level is gone.
    pub qty: Qty,
    /// Orders at this price.
    pub count: u32,
}

/// Best bid and offer with sizes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bbo {
    /// Best bid (price, displayed qty).
    pub bid: Option<(Price, Qty)>,
    /// Best ask (price, displayed qty).
    pub ask: Option<(Price, Qty)>,
}

#[derive(Clone, Copy, Debug)]
struct Node {
    side: Side,
    price: Price,
    qty: Qty,
    prev: OrderId,
    next: OrderId,
}

#[derive(Clone, Copy, Debug)]
struct LevelQueue {
    head: OrderId,
    tail: OrderId,
    qty: Qty,
    count: u32,
}

/// Why a book operation could not be applied (a subscriber's book out of step with the feed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BookError {
    /// An add named an order id already in the book.
    #[error("order {0} is already in the book")]
    DuplicateOrder(OrderId),
    /// An operation named an order id not in the book.
    #[error("order {0} is not in the book")]
    UnknownOrder(OrderId),
    /// An execute or reduce asked for more than the order displays.
    #[error("order {order_id} displays {displayed}, cannot take {qty}")]
    QtyTooLarge {
        /// Order.
        order_id: OrderId,
        /// What it shows.
        displayed: Qty,
        /// What was asked.
        qty: Qty,
    },
    /// An order with quantity 0 was added.
    #[error("order {0} added with quantity 0")]
    ZeroQty(OrderId),
}

/// An L3 book; see the module docs.
#[derive(Clone, Debug, Default)]
pub struct OrderBook {
    orders: FxHashMap<OrderId, Node>,
    bids: BTreeMap<Price, LevelQueue>,
    asks: BTreeMap<Price, LevelQueue>,
}

impl OrderBook {
    /// An empty book.
    pub fn new() -> OrderBook {
        OrderBook::default()
    }

    fn side(&self, side: Side) -> &BTreeMap<Price, LevelQueue> {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }

    fn side_mut(&mut self, side: Side) -> &mut BTreeMap<Price, LevelQueue> {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    /// Resting orders.
    pub fn len(&self) -> usize {
        self.orders.len()
    }

    /// True when nothing rests.
    pub fn is_empty(&self) -> bool {
        self.orders.is_empty()
    }

    /// Removes everything.
    pub fn clear(&mut self) {
        self.orders.clear();
        self.bids.clear();
        self.asks.clear();
    }

    /// One resting order.
    pub fn order(&self, order_id: OrderId) -> Option<BookOrder> {
        self.orders.get(&order_id).map(|n| BookOrder { order_id, side: n.side, price: n.price, qty: n.qty })
    }

    /// Adds an order at the back of its price level.
    pub fn add(&mut self, order: BookOrder) -> Result<Level, BookError> {
        let BookOrder { order_id, side, price, qty } = order;
        if qty == 0 {
            return Err(BookError::ZeroQty(order_id));
        }
        if order_id == NONE || self.orders.contains_key(&order_id) {
            return Err(BookError::DuplicateOrder(order_id));
        }
        let level = self.side_mut(side).entry(price).or_insert(LevelQueue {
            head: NONE,
            tail: NONE,
            qty: 0,
            count: 0,
        });
        let tail = level.tail;
        if tail == NONE {
            level.head = order_id;
        }
        level.tail = order_id;
        level.qty += qty;
        level.count += 1;
        let (qty_level, count) = (level.qty, level.count);
        if tail != NONE {
            self.orders.get_mut(&tail).expect("level tail is in the book").next = order_id;
        }
        self.orders.insert(order_id, Node { side, price, qty, prev: tail, next: NONE });
        Ok(Level { side, price, qty: qty_level, count })
    }

    /// Takes `qty` off an order's displayed quantity, keeping its place; at 0 it leaves the book.
    pub fn reduce(&mut self, order_id: OrderId, qty: Qty) -> Result<Level, BookError> {
        let node = self.orders.get_mut(&order_id).ok_or(BookError::UnknownOrder(order_id))?;
        if qty > node.qty {
            return Err(BookError::QtyTooLarge { order_id, displayed: node.qty, qty });
        }
        if qty == node.qty {
            return self.remove(order_id).map(|(_, level)| level);
        }
        node.qty -= qty;
        let (side, price) = (node.side, node.price);
        let level = self.side_mut(side).get_mut(&price).expect("an order's level exists");
        level.qty -= qty;
        Ok(Level { side, price, qty: level.qty, count: level.count })
    }

    /// Removes an order; returns it and its level after the removal.
    pub fn remove(&mut self, order_id: OrderId) -> Result<(BookOrder, Level), BookError> {
        let node = self.orders.remove(&order_id).ok_or(BookError::UnknownOrder(order_id))?;
        if node.prev != NONE {
            self.orders.get_mut(&node.prev).expect("prev is in the book").next = node.next;
        }
        if node.next != NONE {
            self.orders.get_mut(&node.next).expect("next is in the book").prev = node.prev;
        }
        let ladder = self.side_mut(node.side);
        let level = ladder.get_mut(&node.price).expect("an order's level exists");
        if node.prev == NONE {
            level.head = node.next;
        }
        if node.next == NONE {
            level.tail = node.prev;
        }
        level.qty -= node.qty;
        level.count -= 1;
        let after = Level { side: node.side, price: node.price, qty: level.qty, count: level.count };
        if level.count == 0 {
            ladder.remove(&node.price);
        }
        Ok((BookOrder { order_id, side: node.side, price: node.price, qty: node.qty }, after))
    }

    /// The best price of a side.
    pub fn best_price(&self, side: Side) -> Option<Price> {
        match side {
            Side::Buy => self.bids.keys().next_back().copied(),
            Side::Sell => self.asks.keys().next().copied(),
        }
    }

    /// Best bid and offer with their displayed sizes (L1).
    pub fn bbo(&self) -> Bbo {
        let top = |side| self.levels(side).next().map(|l: Level| (l.price, l.qty));
        Bbo { bid: top(Side::Buy), ask: top(Side::Sell) }
    }

    /// The aggregate of one price level, if any order rests there.
    pub fn level(&self, side: Side, price: Price) -> Option<Level> {
        self.side(side).get(&price).map(|l| Level { side, price, qty: l.qty, count: l.count })
    }

    /// Levels of a side, best first (L2; take as many as the depth wanted).
    pub fn levels(&self, side: Side) -> impl Iterator<Item = Level> + '_ {
        let map = move |(price, l): (&Price, &LevelQueue)| Level {
            side,
            price: *price,
            qty: l.qty,
            count: l.count,
        };
        let (bids, asks) = match side {
            Side::Buy => (Some(self.bids.iter().rev().map(map)), None),
            Side::Sell => (None, Some(self.asks.iter().map(map))),
        };
        bids.into_iter().flatten().chain(asks.into_iter().flatten())
    }

    /// Orders of a side, best level first, each level in queue priority (L3).
    pub fn orders(&self, side: Side) -> impl Iterator<Item = BookOrder> + '_ {
        self.levels(side).flat_map(move |level| {
            let mut next = self.side(side).get(&level.price).map_or(NONE, |l| l.head);
            core::iter::from_fn(move || {
                if next == NONE {
                    return None;
                }
                let order_id = next;
                let n = &self.orders[&order_id];
                next = n.next;
                Some(BookOrder { order_id, side, price: n.price, qty: n.qty })
            })
        })
    }

    /// CRC32 of the top `depth` levels of each side; the exact input is in `docs/marketdata.md`:
    /// `A` then `price_ticks:qty;` for each ask level best first, then `B` and the same for bids.
    pub fn checksum(&self, depth: usize) -> u32 {
        checksum(depth, |side| self.levels(side))
    }
}

/// Longest `price:qty;` text: an i64 with its sign, a u64 and two separators.
const LEVEL_TEXT_LEN_MAX: usize = 20 + 1 + 20 + 1;

/// The text is hashed in chunks of this many bytes: one CRC call per chunk, not per level.
const CHECKSUM_CHUNK_BYTES: usize = 1024;

/// The checksum of `docs/marketdata.md` over the levels `levels(side)` yields, best first.
/// Allocates nothing: the text goes through a stack buffer.
fn checksum<'a, I: Iterator<Item = Level> + 'a>(depth: usize, levels: impl Fn(Side) -> I) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    let mut chunk = [0u8; CHECKSUM_CHUNK_BYTES];
    let mut len = 0;
    let mut ints = itoa::Buffer::new();
    for (marker, side) in [(b'A', Side::Sell), (b'B', Side::Buy)] {
        if len == chunk.len() {
            hasher.update(&chunk);
            len = 0;
        }
        chunk[len] = marker;
        len += 1;
        for level in levels(side).take(depth) {
            if len + LEVEL_TEXT_LEN_MAX > chunk.len() {
                hasher.update(&chunk[..len]);
                len = 0;
            }
            let mut put = |text: &[u8], separator: u8| {
                chunk[len..len + text.len()].copy_from_slice(text);
                len += text.len();
                chunk[len] = separator;
                len += 1;
            };
            put(ints.format(level.price.0).as_bytes(), b':');
            put(ints.format(level.qty).as_bytes(), b';');
        }
    }
    hasher.update(&chunk[..len]);
    hasher.finalize()
}

/// An L2 book: displayed quantity and order count per price level, as a levels feed builds it.
#[derive(Clone, Debug, Default)]
pub struct LevelBook {
    bids: BTreeMap<Price, (Qty, u32)>,
    asks: BTreeMap<Price, (Qty, u32)>,
}

impl LevelBook {
    /// An empty book.
    pub fn new() -> LevelBook {
        LevelBook::default()
    }

    /// Removes everything.
    pub fn clear(&mut self) {
        self.bids.clear();
        self.asks.clear();
    }

    /// Sets a level to its new total; quantity 0 removes it.
    pub fn set(&mut self, level: Level) {
        let side = match level.side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        if level.qty == 0 {
            side.remove(&level.price);
        } else {
            side.insert(level.price, (level.qty, level.count));
        }
    }

    /// Levels of a side, best first.
    pub fn levels(&self, side: Side) -> impl Iterator<Item = Level> + '_ {
        let map = move |(price, (qty, count)): (&Price, &(Qty, u32))| Level {
            side,
            price: *price,
            qty: *qty,
            count: *count,
        };
        let (bids, asks) = match side {
            Side::Buy => (Some(self.bids.iter().rev().map(map)), None),
            Side::Sell => (None, Some(self.asks.iter().map(map))),
        };
        bids.into_iter().flatten().chain(asks.into_iter().flatten())
    }

    /// The same checksum as [`OrderBook::checksum`].
    pub fn checksum(&self, depth: usize) -> u32 {
        checksum(depth, |side| self.levels(side))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(book: &mut OrderBook, order_id: OrderId, side: Side, price: i64, qty: Qty) -> Level {
        book.add(BookOrder { order_id, side, price: Price(price), qty }).unwrap()
    }

    #[test]
    fn queue_priority_levels_and_bbo() {
        let mut b = OrderBook::new();
        add(&mut b, OrderId(1), Side::Buy, 100, 5);
        add(&mut b, OrderId(2), Side::Buy, 101, 3);
        add(&mut b, OrderId(3), Side::Buy, 101, 4);
        add(&mut b, OrderId(4), Side::Sell, 103, 1);
        assert_eq!(b.bbo(), Bbo { bid: Some((Price(101), 7)), ask: Some((Price(103), 1)) });
        let ids: Vec<_> = b.orders(Side::Buy).map(|o| o.order_id).collect();
        assert_eq!(ids, vec![OrderId(2), OrderId(3), OrderId(1)]);
        assert_eq!(
            b.remove(OrderId(2)).unwrap().1,
            Level { side: Side::Buy, price: Price(101), qty: 4, count: 1 }
        );
        assert_eq!(
            b.reduce(OrderId(3), 4).unwrap(),
            Level { side: Side::Buy, price: Price(101), qty: 0, count: 0 }
        );
        assert_eq!(b.best_price(Side::Buy), Some(Price(100)));
        assert_eq!(
            b.add(BookOrder { order_id: OrderId(1), side: Side::Buy, price: Price(1), qty: 1 }),
            Err(BookError::DuplicateOrder(OrderId(1)))
        );
        assert_eq!(
            b.reduce(OrderId(1), 6),
            Err(BookError::QtyTooLarge { order_id: OrderId(1), displayed: 5, qty: 6 })
        );
        assert_eq!(b.remove(OrderId(9)), Err(BookError::UnknownOrder(OrderId(9))));
    }

    #[test]
    fn checksum_input_is_the_documented_text() {
        let mut b = OrderBook::new();
        add(&mut b, OrderId(1), Side::Buy, 100, 5);
        add(&mut b, OrderId(2), Side::Buy, 99, 7);
        add(&mut b, OrderId(3), Side::Sell, 102, 1);
        add(&mut b, OrderId(4), Side::Sell, 101, 2);
        assert_eq!(b.checksum(1), crc32fast::hash(b"A101:2;B100:5;"));
        assert_eq!(b.checksum(10), crc32fast::hash(b"A101:2;102:1;B100:5;99:7;"));
        assert_eq!(OrderBook::new().checksum(10), crc32fast::hash(b"AB"));
    }

    #[test]
    fn checksum_of_a_deep_book_equals_the_text_hashed_at_once() {
        // Deep enough that the text spans several chunks, with a chunk ending at every offset.
        for extra in 0..45 {
            let mut b = OrderBook::new();
            let mut text = String::from("A");
            for i in 0..(60 + extra) {
                add(&mut b, OrderId(2 * i + 1), Side::Sell, 1_000_000 + i as i64, 123_456_789 + i);
                text += &format!("{}:{};", 1_000_000 + i, 123_456_789 + i);
            }
            text += "B";
            for i in 0..(60 + extra) {
                add(&mut b, OrderId(2 * i + 2), Side::Buy, 999_999 - i as i64, 7);
                text += &format!("{}:7;", 999_999 - i);
            }
            assert_eq!(b.checksum(usize::MAX), crc32fast::hash(text.as_bytes()), "extra {extra}");
        }
    }
}
