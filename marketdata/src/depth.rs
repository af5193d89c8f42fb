//! A depth-limited view (the top N levels of each side) kept in step by diffs, for feeds whose
//! subscribers ask for N levels (FIX 264, a WebSocket depth): when a level inside the window
//! leaves, the level that moves up into it is sent too, so a depth-N book never goes stale or
//! short the way a truncated snapshot plus full-depth updates does.

use crate::book::{Level, OrderBook};
use crate::Side;

/// The last top-N sent, per side; see the module docs.
#[derive(Clone, Debug)]
pub struct DepthWindow {
    depth: usize,
    /// Best first: bids, asks.
    sent: [Vec<Level>; 2],
    scratch: Vec<Level>,
}

impl DepthWindow {
    /// A window of `depth` levels per side, as yet empty (nothing sent).
    ///
    /// # Panics
    /// When `depth` is 0.
    pub fn new(depth: usize) -> DepthWindow {
        assert!(depth > 0, "a depth window needs at least one level");
        DepthWindow {
            depth,
            sent: [Vec::with_capacity(depth), Vec::with_capacity(depth)],
            scratch: Vec::new(),
        }
    }

    /// Levels per side.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// The window as last updated, best first.
    pub fn levels(&self, side: Side) -> &[Level] {
        &self.sent[side_index(side)]
    }

    /// Brings the window to `book`'s top N, writing what changed to `out`: a level with its new
    /// quantity and count, or with qty 0 when it left the window (gone, or pushed below N).
    /// Applying `out` to a depth-N copy keeps it equal to the book's top N.
    pub fn update(&mut self, book: &OrderBook, out: &mut Vec<Level>) {
        for side in [Side::Buy, Side::Sell] {
            self.scratch.clear();
            self.scratch.extend(book.levels(side).take(self.depth));
            let sent = &mut self.sent[side_index(side)];
            // Both lists are best first: one merge pass finds what left, came or changed.
            let better = |a: &Level, b: &Level| match side {
                Side::Buy => a.price > b.price,
                Side::Sell => a.price < b.price,
            };
            let (mut i, mut j) = (0, 0);
            loop {
                match (sent.get(i), self.scratch.get(j)) {
                    (Some(old), Some(new)) if old.price == new.price => {
                        if old != new {
                            out.push(*new);
                        }
                        i += 1;
                        j += 1;
                    }
                    (Some(old), Some(new)) if better(old, new) => {
                        out.push(Level { qty: 0, count: 0, ..*old });
                        i += 1;
                    }
                    (_, Some(new)) => {
                        out.push(*new);
                        j += 1;
                    }
                    (Some(old), None) => {
                        out.push(Level { qty: 0, count: 0, ..*old });
                        i += 1;
                    }
                    (None, None) => break,
                }
            }
            std::mem::swap(sent, &mut self.scratch);
        }
    }
}

fn side_index(side: Side) -> usize {
    match side {
        Side::Buy => 0,
        Side::Sell => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::book::{BookOrder, LevelBook};
    use crate::Price;
    use engine::OrderId;

    #[test]
    fn a_level_leaving_the_window_brings_the_next_one_in() {
        let mut book = OrderBook::new();
        for (id, price) in [(1, 100), (2, 99), (3, 98)] {
            book.add(BookOrder { order_id: OrderId(id), side: Side::Buy, price: Price(price), qty: 5 })
                .unwrap();
        }
        let mut window = DepthWindow::new(2);
        let mut out = Vec::new();
        window.update(&book, &mut out);
        assert_eq!(out.iter().map(|l| l.price.0).collect::<Vec<_>>(), vec![100, 99]);
        out.clear();
        book.remove(OrderId(1)).unwrap();
        window.update(&book, &mut out);
        let level = |price, qty, count| Level { side: Side::Buy, price: Price(price), qty, count };
        assert_eq!(out, vec![level(100, 0, 0), level(98, 5, 1)]);
        out.clear();
        window.update(&book, &mut out);
        assert!(out.is_empty(), "nothing changed, nothing sent");
        // Applied to a copy, the diffs give exactly the top two.
        let mut copy = LevelBook::new();
        let mut fresh = DepthWindow::new(2);
        let mut all = Vec::new();
        fresh.update(&book, &mut all);
        all.iter().for_each(|l| copy.set(*l));
        assert_eq!(
            copy.levels(Side::Buy).collect::<Vec<_>>(),
            book.levels(Side::Buy).take(2).collect::<Vec<_>>()
        );
    }
}
