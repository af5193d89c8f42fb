//! The engine's event stream, projected per symbol into a public book (L3, and from it L2 and
//! L1), a trade tape and OHLCV bars. A pure function of the events in sequence order: replaying
//! the same events rebuilds the same state at any sequence, live or in a backtest.
//!
//! Events say what happened to each order; three things they leave for the reader to know are
//! taken from SEMANTICS.md (and proved against the engine's own book by the property test in
//! `tests/projection_vs_engine.rs`):
//! - An incoming order matches while the best opposite price crosses its limit (any price for a
//!   market order); after its last trade it rests if it is a GTC/GTD limit order. So after every
//!   event the projection looks at the opposite side: if it no longer crosses, the order rests
//!   now, which is exactly where the engine rests it, before any stop triggers.
//! - A maker whose displayed slice is used up and that has hidden quantity left shows a new
//!   slice `min(display_qty, leaves)` at the back of its level.
//! - A replace keeps the order's place when the price is unchanged and the total quantity does
//!   not grow; otherwise the order leaves its level and matches again as an incoming order.

use std::collections::VecDeque;

use engine::{Event, EventKind, Tif};
use rustc_hash::FxHashMap;

use crate::book::{BookError, BookOrder, Level, OrderBook};
use crate::tape::{Bar, BarPeriod, Bars, TradeTick};
use crate::{OrderId, Price, Qty, Side, SymbolId};

/// Sizes of the projection's bounded parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProjectionConfig {
    /// Symbols, ids `0..symbols` (the engine's symbol table).
    pub symbols: usize,
    /// Trades kept per symbol on the tape; older ones fall off.
    pub tape_len_max: usize,
    /// Bars kept per symbol and period; older ones fall off.
    pub bars_len_max: usize,
}

/// Largest symbol table a projection accepts (a named bound on its per-symbol vectors).
pub const SYMBOLS_MAX: usize = 1 << 16;

impl Default for ProjectionConfig {
    fn default() -> ProjectionConfig {
        ProjectionConfig { symbols: engine::default_symbols().len(), tape_len_max: 1024, bars_len_max: 1440 }
    }
}

/// A change to one symbol's public book, in the order a subscriber applies it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BookOp {
    /// A new order at the back of its level.
    Add(BookOrder),
    /// A resting order traded `qty` of its displayed quantity at its price; at 0 it leaves.
    Execute {
        /// Maker order.
        order_id: OrderId,
        /// Traded quantity.
        qty: Qty,
    },
    /// A resting order's displayed quantity shrank by `qty`, keeping its place; at 0 it leaves.
    Reduce {
        /// Order.
        order_id: OrderId,
        /// Quantity taken off.
        qty: Qty,
    },
    /// A resting order left the book.
    Delete {
        /// Order.
        order_id: OrderId,
    },
    /// A resting order lost its place: it now rests at the back of `price` showing `qty`.
    Replace(BookOrder),
}

/// Receives the projection's output as events are applied. Every method has an empty default so
/// a consumer implements only what it uses; `()` ignores everything.
pub trait ProjectionSink {
    /// A book change and the levels it touched, as they are after it (qty 0: level gone).
    fn op(&mut self, _symbol: SymbolId, _ts: u64, _op: &BookOp, _levels: &[Level]) {}
    /// A trade printed.
    fn trade(&mut self, _symbol: SymbolId, _trade: &TradeTick) {}
    /// The symbol was halted or resumed.
    fn status(&mut self, _symbol: SymbolId, _ts: u64, _halted: bool) {}
}

impl ProjectionSink for () {}

/// Why an event could not be applied: the stream is not the engine's, or a piece is missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProjectionError {
    /// The event's sequence is not the next one.
    #[error("event seq {got}, expected {expected}")]
    OutOfOrder {
        /// The next sequence.
        expected: u64,
        /// What arrived.
        got: u64,
    },
    /// The event names a symbol outside the table.
    #[error("symbol {0} is outside the projection's table")]
    UnknownSymbol(SymbolId),
    /// The event names an order the projection does not hold.
    #[error("event seq {seq} names order {order_id}, which is not live")]
    UnknownOrder {
        /// Event.
        seq: u64,
        /// Order.
        order_id: OrderId,
    },
    /// The public book refused a change (the projection is out of step with the engine).
    #[error("event seq {seq}: {source}")]
    Book {
        /// Event.
        seq: u64,
        /// What the book said.
        source: BookError,
    },
}

/// Where a live order is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    /// Untriggered stop, off the book.
    Stop,
    /// The incoming order now matching (at most one per symbol).
    Matching,
    /// In the book.
    Resting,
}

/// A live order's terms; never its account.
#[derive(Clone, Copy, Debug)]
struct LiveOrder {
    side: Side,
    /// Limit price in ticks; 0 for a market order.
    price: Price,
    /// Total quantity, filled part included.
    qty: Qty,
    leaves: Qty,
    display: Option<Qty>,
    tif: Tif,
    place: Place,
}

impl LiveOrder {
    fn market(&self) -> bool {
        self.price.0 == 0
    }
    fn may_rest(&self) -> bool {
        !self.market() && matches!(self.tif, Tif::Gtc | Tif::Gtd)
    }
    fn slice(&self) -> Qty {
        self.display.map_or(self.leaves, |d| d.min(self.leaves))
    }
}

/// One symbol's projected state.
#[derive(Debug)]
struct SymbolState {
    book: OrderBook,
    live: FxHashMap<OrderId, LiveOrder>,
    /// The incoming order now matching, if any.
    taker: Option<OrderId>,
    /// A replaced order taken off its level, not yet announced: announced as `Replace` when it
    /// rests within the same event, else as `Delete` (with the level it left).
    lifted: Option<(OrderId, Level)>,
    halted: bool,
    tape: VecDeque<TradeTick>,
    bars_1s: Bars,
    bars_1m: Bars,
}

/// The projection of every symbol; see the module docs.
#[derive(Debug)]
pub struct Projection {
    symbols: Vec<SymbolState>,
    tape_len_max: usize,
    last_seq: u64,
    last_ts: u64,
}

impl Projection {
    /// An empty projection (before event seq 1).
    ///
    /// # Panics
    /// When `config.symbols` exceeds [`SYMBOLS_MAX`] or a bound is 0.
    pub fn new(config: ProjectionConfig) -> Projection {
        assert!(config.symbols <= SYMBOLS_MAX, "at most {SYMBOLS_MAX} symbols");
        assert!(config.tape_len_max > 0 && config.bars_len_max > 0, "tape and bar bounds must be positive");
        let symbols = (0..config.symbols)
            .map(|_| SymbolState {
                book: OrderBook::new(),
                live: FxHashMap::default(),
                taker: None,
                lifted: None,
                halted: false,
                tape: VecDeque::with_capacity(config.tape_len_max),
                bars_1s: Bars::new(BarPeriod::OneSecond, config.bars_len_max),
                bars_1m: Bars::new(BarPeriod::OneMinute, config.bars_len_max),
            })
            .collect();
        Projection { symbols, tape_len_max: config.tape_len_max, last_seq: 0, last_ts: 0 }
    }

    /// Symbols in the table.
    pub fn symbols(&self) -> usize {
        self.symbols.len()
    }

    /// Sequence of the last event applied (0 before any).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Time of the last event applied, nanoseconds (0 before any).
    pub fn last_ts(&self) -> u64 {
        self.last_ts
    }

    /// A symbol's public book.
    pub fn book(&self, symbol: SymbolId) -> Option<&OrderBook> {
        self.symbols.get(symbol.index()).map(|s| &s.book)
    }

    /// True while the symbol is halted.
    pub fn halted(&self, symbol: SymbolId) -> bool {
        self.symbols.get(symbol.index()).is_some_and(|s| s.halted)
    }

    /// The symbol's recent trades, oldest first.
    pub fn tape(&self, symbol: SymbolId) -> impl Iterator<Item = &TradeTick> + '_ {
        self.symbols.get(symbol.index()).into_iter().flat_map(|s| s.tape.iter())
    }

    /// The symbol's recent bars of one period, oldest first (the last may still be forming).
    pub fn bars(&self, symbol: SymbolId, period: BarPeriod) -> impl Iterator<Item = &Bar> + '_ {
        self.symbols.get(symbol.index()).into_iter().flat_map(move |s| match period {
            BarPeriod::OneSecond => s.bars_1s.iter(),
            BarPeriod::OneMinute => s.bars_1m.iter(),
        })
    }

    /// Applies the next event, reporting each change to `sink`.
    pub fn apply<S: ProjectionSink>(&mut self, event: &Event, sink: &mut S) -> Result<(), ProjectionError> {
        let expected = self.last_seq + 1;
        if event.seq != expected {
            return Err(ProjectionError::OutOfOrder { expected, got: event.seq });
        }
        let result = self.apply_kind(event, sink);
        // An error leaves the projection unusable in part; the sequence still moves so the
        // caller sees each failure once and can rebuild from a snapshot or from seq 1.
        self.last_seq = event.seq;
        self.last_ts = event.ts;
        result
    }

    fn state(&mut self, symbol: SymbolId) -> Result<&mut SymbolState, ProjectionError> {
        self.symbols.get_mut(symbol.index()).ok_or(ProjectionError::UnknownSymbol(symbol))
    }

    fn apply_kind<S: ProjectionSink>(&mut self, event: &Event, sink: &mut S) -> Result<(), ProjectionError> {
        let (seq, ts) = (event.seq, event.ts);
        let tape_len_max = self.tape_len_max;
        let unknown = |order_id| ProjectionError::UnknownOrder { seq, order_id };
        let book_err = |source| ProjectionError::Book { seq, source };
        match event.kind {
            EventKind::Rejected { .. } => return Ok(()),
            EventKind::TradingStatus { symbol, halted } => {
                self.state(symbol)?.halted = halted;
                sink.status(symbol, ts, halted);
                return Ok(());
            }
            EventKind::Accepted {
                symbol, order_id, side, price, qty, tif, stop_price, display_qty, ..
            } => {
                let s = self.state(symbol)?;
                let place = if stop_price.is_some() { Place::Stop } else { Place::Matching };
                let order = LiveOrder { side, price, qty, leaves: qty, display: display_qty, tif, place };
                s.live.insert(order_id, order);
                if place == Place::Matching {
                    s.taker = Some(order_id);
                }
                s.settle(symbol, ts, sink).map_err(book_err)?;
            }
            EventKind::Triggered { symbol, order_id, .. } => {
                let s = self.state(symbol)?;
                s.live.get_mut(&order_id).ok_or(unknown(order_id))?.place = Place::Matching;
                s.taker = Some(order_id);
                s.settle(symbol, ts, sink).map_err(book_err)?;
            }
            EventKind::Trade {
                symbol,
                price,
                qty,
                maker_order_id,
                maker_leaves_qty,
                taker_order_id,
                taker_leaves_qty,
                aggressor,
                ..
            } => {
                let trade = TradeTick { seq, ts, price, qty, aggressor, maker_order_id, taker_order_id };
                let at = At { symbol, seq, ts };
                let s = self.state(symbol)?;
                s.record_trade(symbol, &trade, tape_len_max, sink);
                s.on_trade(at, &trade, maker_leaves_qty, taker_leaves_qty, sink)?;
            }
            EventKind::Canceled { symbol, order_id, .. } | EventKind::Expired { symbol, order_id, .. } => {
                self.state(symbol)?.on_gone(At { symbol, seq, ts }, order_id, sink)?;
            }
            EventKind::Replaced { symbol, order_id, price, qty, leaves_qty, .. } => {
                let change = Replace { order_id, price, qty, leaves_qty };
                self.state(symbol)?.on_replace(At { symbol, seq, ts }, change, sink)?;
            }
        }
        Ok(())
    }
}

/// Where and when an event happened, as the projection's steps name it in their errors.
#[derive(Clone, Copy, Debug)]
struct At {
    symbol: SymbolId,
    seq: u64,
    ts: u64,
}

impl At {
    fn unknown(self, order_id: OrderId) -> ProjectionError {
        ProjectionError::UnknownOrder { seq: self.seq, order_id }
    }

    fn book(self, source: BookError) -> ProjectionError {
        ProjectionError::Book { seq: self.seq, source }
    }
}

/// A replace's new terms.
#[derive(Clone, Copy, Debug)]
struct Replace {
    order_id: OrderId,
    price: Price,
    qty: Qty,
    leaves_qty: Qty,
}

impl SymbolState {
    /// A trade on the tape and in the bars, told to the sink.
    fn record_trade<S: ProjectionSink>(
        &mut self,
        symbol: SymbolId,
        trade: &TradeTick,
        tape_len_max: usize,
        sink: &mut S,
    ) {
        if self.tape.len() == tape_len_max {
            self.tape.pop_front();
        }
        self.tape.push_back(*trade);
        self.bars_1s.record(trade.ts, trade.price, trade.qty);
        self.bars_1m.record(trade.ts, trade.price, trade.qty);
        sink.trade(symbol, trade);
    }

    /// A trade's effect on the book: the maker reduced (an iceberg's next slice added at the
    /// back of its level when the shown one is gone), the taker's leaves, then what rests.
    fn on_trade<S: ProjectionSink>(
        &mut self,
        at: At,
        trade: &TradeTick,
        maker_leaves_qty: Qty,
        taker_leaves_qty: Qty,
        sink: &mut S,
    ) -> Result<(), ProjectionError> {
        let (symbol, ts, maker_order_id) = (at.symbol, at.ts, trade.maker_order_id);
        let maker = self.live.get_mut(&maker_order_id).ok_or(at.unknown(maker_order_id))?;
        maker.leaves = maker_leaves_qty;
        let maker = *maker;
        let level = self.book.reduce(maker_order_id, trade.qty).map_err(|e| at.book(e))?;
        sink.op(symbol, ts, &BookOp::Execute { order_id: maker_order_id, qty: trade.qty }, &[level]);
        if self.book.order(maker_order_id).is_none() {
            if maker.leaves == 0 {
                self.live.remove(&maker_order_id);
            } else {
                let order = BookOrder {
                    order_id: maker_order_id,
                    side: maker.side,
                    price: trade.price,
                    qty: maker.slice(),
                };
                let level = self.book.add(order).map_err(|e| at.book(e))?;
                sink.op(symbol, ts, &BookOp::Add(order), &[level]);
            }
        }
        let taker_order_id = trade.taker_order_id;
        let taker = self.live.get_mut(&taker_order_id).ok_or(at.unknown(taker_order_id))?;
        taker.leaves = taker_leaves_qty;
        if taker_leaves_qty == 0 {
            self.live.remove(&taker_order_id);
            self.taker = None;
        }
        self.settle(symbol, ts, sink).map_err(|e| at.book(e))
    }

    /// A cancel or an expiry: the order leaves the book if it rested.
    fn on_gone<S: ProjectionSink>(
        &mut self,
        at: At,
        order_id: OrderId,
        sink: &mut S,
    ) -> Result<(), ProjectionError> {
        let order = self.live.remove(&order_id).ok_or(at.unknown(order_id))?;
        if order.place == Place::Resting {
            let (_, level) = self.book.remove(order_id).map_err(|e| at.book(e))?;
            sink.op(at.symbol, at.ts, &BookOp::Delete { order_id }, &[level]);
        }
        if self.taker == Some(order_id) {
            self.taker = None;
        }
        // Self-trade prevention may cancel a maker while the taker goes on matching.
        self.settle(at.symbol, at.ts, sink).map_err(|e| at.book(e))
    }

    /// A replace: gone when nothing is left; in place when only its size went down; else lifted
    /// out of the book and matched again as an incoming order.
    fn on_replace<S: ProjectionSink>(
        &mut self,
        at: At,
        change: Replace,
        sink: &mut S,
    ) -> Result<(), ProjectionError> {
        let Replace { order_id, price, qty, leaves_qty } = change;
        let (symbol, ts) = (at.symbol, at.ts);
        let old = *self.live.get(&order_id).ok_or(at.unknown(order_id))?;
        if leaves_qty == 0 {
            self.live.remove(&order_id);
            if old.place == Place::Resting {
                let (_, level) = self.book.remove(order_id).map_err(|e| at.book(e))?;
                sink.op(symbol, ts, &BookOp::Delete { order_id }, &[level]);
            }
            return Ok(());
        }
        let keeps_place = price == old.price && qty <= old.qty;
        let order = self.live.get_mut(&order_id).expect("looked up above");
        order.price = price;
        order.qty = qty;
        order.leaves = leaves_qty;
        match old.place {
            Place::Resting if keeps_place => {
                let shown = self.book.order(order_id).ok_or(at.unknown(order_id))?.qty;
                let now = if old.display.is_some() { shown.min(leaves_qty) } else { leaves_qty };
                if now < shown {
                    let level = self.book.reduce(order_id, shown - now).map_err(|e| at.book(e))?;
                    sink.op(symbol, ts, &BookOp::Reduce { order_id, qty: shown - now }, &[level]);
                }
            }
            Place::Resting => {
                let (_, level) = self.book.remove(order_id).map_err(|e| at.book(e))?;
                order.place = Place::Matching;
                self.taker = Some(order_id);
                self.lifted = Some((order_id, level));
                self.settle(symbol, ts, sink).map_err(|e| at.book(e))?;
                if let Some((order_id, level)) = self.lifted.take() {
                    sink.op(symbol, ts, &BookOp::Delete { order_id }, &[level]);
                }
            }
            // An untriggered stop keeps its place among the stops.
            Place::Stop | Place::Matching => {}
        }
        Ok(())
    }

    /// Rests the incoming order once nothing opposite crosses it any more (see module docs).
    fn settle<S: ProjectionSink>(
        &mut self,
        symbol: SymbolId,
        ts: u64,
        sink: &mut S,
    ) -> Result<(), BookError> {
        let Some(order_id) = self.taker else { return Ok(()) };
        let Some(order) = self.live.get_mut(&order_id) else {
            self.taker = None;
            return Ok(());
        };
        let crosses = match self.book.best_price(order.side.opposite()) {
            None => false,
            Some(_) if order.market() => true,
            Some(best) => match order.side {
                Side::Buy => best <= order.price,
                Side::Sell => best >= order.price,
            },
        };
        if crosses {
            return Ok(()); // more trades (or a self-trade cancel) follow
        }
        self.taker = None;
        if !order.may_rest() {
            return Ok(()); // its `Canceled { ioc }` follows
        }
        order.place = Place::Resting;
        let rest = BookOrder { order_id, side: order.side, price: order.price, qty: order.slice() };
        let level = self.book.add(rest)?;
        match self.lifted.take() {
            Some((lifted, left)) if lifted == order_id => {
                sink.op(symbol, ts, &BookOp::Replace(rest), &[left, level]);
            }
            other => {
                self.lifted = other;
                sink.op(symbol, ts, &BookOp::Add(rest), &[level]);
            }
        }
        Ok(())
    }
}
