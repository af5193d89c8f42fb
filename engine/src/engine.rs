//! The engine: owns every book, the order pool and the id map; turns commands into events.
//!
//! This file holds the state and the command front door (validation, cancel, replace, mass
//! cancel, halts, expiry); `matching.rs` holds what happens to an order once it is accepted.

use core::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::book::Book;
use crate::command::{CancelOrder, Command, CommandKind, NewOrder, ReplaceOrder};
use crate::event::{CancelReason, Event, EventKind, EventSink, RejectReason};
use crate::id_index::{id_hash, OrderIds, Probe};
use crate::level::LevelPool;
use crate::order::{Order, OrderPool, OrderState, NIL};
use crate::types::{
    default_symbols, AccountId, ClOrdId, OrdType, OrderId, Price, Qty, Side, SymbolId, SymbolSpec, Tif,
};

/// Bounds and symbols. Every pool is sized from here at construction; nothing grows past it.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Listed symbols; a symbol's id is its index here.
    pub symbols: Vec<SymbolSpec>,
    /// Live orders (resting, stops, and the incoming one) across all symbols.
    pub orders_max: usize,
    /// Price levels per side per symbol.
    pub levels_per_side_max: usize,
}

impl Default for EngineConfig {
    fn default() -> EngineConfig {
        EngineConfig { symbols: default_symbols(), orders_max: 1 << 20, levels_per_side_max: 1 << 14 }
    }
}

/// Most live orders an engine takes ([`EngineConfig::orders_max`]). Every pool is reserved for
/// the bound at construction (about 225 bytes of address space per order, touched only as the
/// book grows), so the bound is what one allocation of the order pool may ask of the OS.
pub const ORDERS_MAX_LIMIT: usize = 1 << 24;

/// Most price levels per side per symbol ([`EngineConfig::levels_per_side_max`]): a level holds at
/// least one order, so more levels than [`ORDERS_MAX_LIMIT`] could never be used.
pub const LEVELS_PER_SIDE_MAX_LIMIT: usize = ORDERS_MAX_LIMIT;

/// Most symbols (order books) of one engine.
pub const SYMBOLS_MAX: usize = 1 << 16;

/// A bound of an [`EngineConfig`] outside its range; each names the field and its range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `orders_max` is 0 or beyond [`ORDERS_MAX_LIMIT`].
    #[error("orders_max {0}: must be within 1..={ORDERS_MAX_LIMIT}")]
    OrdersMax(usize),
    /// `levels_per_side_max` is 0 or beyond [`LEVELS_PER_SIDE_MAX_LIMIT`].
    #[error("levels_per_side_max {0}: must be within 1..={LEVELS_PER_SIDE_MAX_LIMIT}")]
    LevelsPerSideMax(usize),
    /// No symbol, or more than [`SYMBOLS_MAX`].
    #[error("symbols: {0} listed, must be within 1..={SYMBOLS_MAX}")]
    Symbols(usize),
}

impl EngineConfig {
    /// Checks every bound; [`Engine::new`] panics on a configuration this refuses, so call it
    /// wherever a configuration comes from a user.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=ORDERS_MAX_LIMIT).contains(&self.orders_max) {
            return Err(ConfigError::OrdersMax(self.orders_max));
        }
        if !(1..=LEVELS_PER_SIDE_MAX_LIMIT).contains(&self.levels_per_side_max) {
            return Err(ConfigError::LevelsPerSideMax(self.levels_per_side_max));
        }
        if !(1..=SYMBOLS_MAX).contains(&self.symbols.len()) {
            return Err(ConfigError::Symbols(self.symbols.len()));
        }
        Ok(())
    }
}

/// The matching engine for a set of symbols. Single-threaded; see the crate docs.
pub struct Engine {
    pub(crate) books: Vec<Book>,
    pub(crate) orders: OrderPool,
    pub(crate) levels: LevelPool,
    /// (account, client id) → slot of a resting or stop order.
    pub(crate) ids: OrderIds,
    /// GTD expiries: (expire_ts, order_id, slot). Entries of orders that left early stay until
    /// popped or compacted; an entry is live only while the slot still holds that order id.
    expiries: BinaryHeap<Reverse<(u64, OrderId, u32)>>,
    expiries_max: usize,
    /// Scratch list of slots (triggered stops, mass cancels); reserved once.
    pub(crate) scratch: Vec<u32>,
    pub(crate) next_order_id: OrderId,
    pub(crate) next_event_seq: u64,
    /// Sequence number and timestamp of the command being processed.
    pub(crate) command_seq: u64,
    pub(crate) command_ts: u64,
}

impl Engine {
    /// An engine with empty books.
    ///
    /// # Panics
    /// When [`EngineConfig::validate`] refuses `config`.
    pub fn new(config: EngineConfig) -> Engine {
        if let Err(e) = config.validate() {
            panic!("engine configuration: {e}");
        }
        let levels_max = config
            .orders_max
            .min(config.symbols.len().saturating_mul(2).saturating_mul(config.levels_per_side_max));
        let ids = OrderIds::with_capacity(config.orders_max);
        Engine {
            books: config
                .symbols
                .into_iter()
                .map(|spec| Book::new(spec, config.levels_per_side_max))
                .collect(),
            orders: OrderPool::with_capacity(config.orders_max),
            levels: LevelPool::with_capacity(levels_max.max(1)),
            ids,
            expiries: BinaryHeap::with_capacity(config.orders_max),
            expiries_max: config.orders_max,
            scratch: Vec::with_capacity(config.orders_max),
            next_order_id: OrderId(1),
            next_event_seq: 1,
            command_seq: 0,
            command_ts: 0,
        }
    }

    /// Listed symbols, indexed by [`SymbolId`].
    pub fn symbols(&self) -> impl ExactSizeIterator<Item = &SymbolSpec> + '_ {
        self.books.iter().map(|b| &b.spec)
    }

    /// The spec of one symbol.
    pub fn symbol(&self, symbol: SymbolId) -> Option<&SymbolSpec> {
        self.books.get(symbol.index()).map(|b| &b.spec)
    }

    /// The id of a symbol by name (a linear scan: for edges, not the hot path).
    pub fn symbol_id(&self, name: &str) -> Option<SymbolId> {
        self.books.iter().position(|b| b.spec.name == name).map(|i| SymbolId(i as u32))
    }

    /// Live orders (resting and stops).
    pub fn orders_live(&self) -> usize {
        self.orders.live()
    }

    /// Sequence number the next event will carry.
    pub fn next_event_seq(&self) -> u64 {
        self.next_event_seq
    }

    /// Price of the last trade of a symbol.
    pub fn last_trade(&self, symbol: SymbolId) -> Option<Price> {
        self.books.get(symbol.index())?.last_trade
    }

    /// Applies one command, writing its events to `sink` in order.
    pub fn process<S: EventSink>(&mut self, command: &Command, sink: &mut S) {
        self.command_seq = command.header.seq;
        self.command_ts = command.header.ts;
        self.expire_due(sink);
        // By reference: a command is up to ~120 bytes, not worth a copy per command.
        match &command.kind {
            CommandKind::New(new) => self.new_order(new, sink),
            CommandKind::Cancel(cancel) => self.cancel_order(cancel, sink),
            CommandKind::Replace(replace) => self.replace_order(replace, sink),
            &CommandKind::CancelAll { account, symbol } => self.cancel_all(account, symbol, sink),
            &CommandKind::Halt { symbol } => self.set_halted(symbol, true, sink),
            &CommandKind::Resume { symbol } => self.set_halted(symbol, false, sink),
        }
    }

    // ---- events -------------------------------------------------------------------------

    #[inline]
    pub(crate) fn emit<S: EventSink>(&mut self, sink: &mut S, kind: EventKind) {
        let event =
            Event { seq: self.next_event_seq, command_seq: self.command_seq, ts: self.command_ts, kind };
        self.next_event_seq += 1;
        sink.event(&event);
    }

    #[inline]
    fn reject<S: EventSink>(
        &mut self,
        sink: &mut S,
        account: AccountId,
        id: ClOrdId,
        symbol: SymbolId,
        reason: RejectReason,
    ) {
        self.emit(sink, EventKind::Rejected { account, id, symbol, reason });
    }

    /// Emits `Canceled` for an order that is leaving (the caller unlinks and releases it).
    #[inline]
    pub(crate) fn emit_canceled<S: EventSink>(&mut self, sink: &mut S, slot: u32, reason: CancelReason) {
        let o = *self.orders.get(slot);
        let id = self.orders.cl_ord_id(slot);
        self.emit(
            sink,
            EventKind::Canceled {
                account: o.account,
                id,
                symbol: o.symbol,
                order_id: o.order_id,
                reason,
                leaves_qty: o.leaves,
            },
        );
    }

    // ---- new order ----------------------------------------------------------------------

    fn new_order<S: EventSink>(&mut self, new: &NewOrder, sink: &mut S) {
        match self.check_new(new) {
            Ok(prices) => self.accept_new(new, prices, sink),
            Err(reason) => self.reject(sink, new.account, new.id, new.symbol, reason),
        }
    }

    /// Every reason to refuse `new`, in the order SEMANTICS.md gives them; on success the limit
    /// and stop prices in ticks (0 for none) and the id's hash. Changes nothing.
    #[inline(always)]
    fn check_new(&self, new: &NewOrder) -> Result<NewPrices, RejectReason> {
        let (account, id, symbol) = (new.account, new.id, new.symbol);
        let book = self.books.get(symbol.index()).ok_or(RejectReason::UnknownSymbol)?;
        if book.halted {
            return Err(RejectReason::Halted);
        }
        let market = new.ord_type == OrdType::Market;
        let immediate = matches!(new.tif, Tif::Ioc | Tif::Fok);
        let bad_order = (new.tif == Tif::Gtd && new.expire_ts.is_none())
            || (new.post_only && (market || immediate || new.stop_price.is_some()))
            || (new.display_qty.is_some() && (market || immediate));
        if bad_order {
            return Err(RejectReason::BadOrder);
        }
        let bad_display = new.display_qty.is_some_and(|d| d == 0 || d > new.qty || !book.whole_lots(d));
        if new.qty == 0 || !book.whole_lots(new.qty) || bad_display {
            return Err(RejectReason::BadQty);
        }
        let price = if market { Some(Price(0)) } else { book.units_to_ticks(new.price) };
        let stop_price = match new.stop_price {
            None => Some(Price(0)),
            Some(units) => book.units_to_ticks(units),
        };
        let (Some(price), Some(stop_price)) = (price, stop_price) else {
            return Err(RejectReason::BadPriceTick);
        };
        let hash = id_hash(account, &id);
        if self.ids.find_order(hash, account, &id, &self.orders).is_some() {
            return Err(RejectReason::DuplicateId);
        }
        if new.post_only && book.crosses(new.side, price) {
            return Err(RejectReason::WouldTake);
        }
        let may_rest = !market && matches!(new.tif, Tif::Gtc | Tif::Gtd);
        let ladder = book.ladder(new.side);
        let needs_level = may_rest && new.stop_price.is_none() && ladder.find(price).is_none();
        if self.orders.is_full() || (needs_level && (ladder.is_full() || self.levels.is_full())) {
            return Err(RejectReason::BookFull);
        }
        Ok(NewPrices { price, stop_price, hash })
    }

    /// Carries out an accepted new order: allocates it, reports `Accepted`, then files a stop
    /// or matches the order, and triggers any stops its trades reached.
    #[inline(always)]
    fn accept_new<S: EventSink>(&mut self, new: &NewOrder, prices: NewPrices, sink: &mut S) {
        let (account, id, symbol) = (new.account, new.id, new.symbol);
        let NewPrices { price, stop_price, hash } = prices;
        let market = new.ord_type == OrdType::Market;
        let order_id = self.next_order_id;
        self.next_order_id.0 += 1;
        // A market order with a GTC/GTD tif still never rests; record it as IOC so every later
        // step needs to look at one field only.
        let tif = if market && new.tif != Tif::Fok { Tif::Ioc } else { new.tif };
        let mut order = Order::new(order_id, account, symbol, new.side, new.ord_type, tif, price, new.qty);
        order.stp = new.stp;
        order.id_tag = OrderIds::tag(hash);
        order.post_only = new.post_only;
        order.stop_price = stop_price;
        if let Some(display) = new.display_qty {
            order.display = display;
            order.visible = display;
        }
        // Keyed on the order's own TIF: a GTD stop-market is stored as IOC (it never rests once
        // triggered) but still expires while it waits.
        if new.tif == Tif::Gtd {
            order.expire_ts = new.expire_ts.unwrap_or(0);
        }
        let slot = self.orders.alloc(order, id);
        self.emit(
            sink,
            EventKind::Accepted {
                account,
                id,
                symbol,
                order_id,
                side: new.side,
                price,
                qty: new.qty,
                tif,
                stop_price: new.stop_price.map(|_| stop_price),
                display_qty: new.display_qty,
            },
        );
        if new.stop_price.is_some() {
            self.push_stop(slot);
            self.trigger_stops(symbol, sink);
        } else {
            self.execute(slot, sink);
            if self.books[symbol.index()].stops_head != NIL {
                self.trigger_stops(symbol, sink);
            }
        }
    }

    /// Puts a freshly accepted stop at the end of its symbol's stop list.
    pub(crate) fn push_stop(&mut self, slot: u32) {
        let symbol = self.orders.get(slot).symbol.index();
        let tail = self.books[symbol].stops_tail;
        {
            let o = self.orders.get_mut(slot);
            o.state = OrderState::Stop;
            o.prev = tail;
            o.next = NIL;
        }
        if tail == NIL {
            self.books[symbol].stops_head = slot;
        } else {
            self.orders.get_mut(tail).next = slot;
        }
        self.books[symbol].stops_tail = slot;
        self.index(slot);
    }

    /// Adds a live order to the `(account, id)` map, once in its life (when it first rests or
    /// waits as a stop; a moved order stays in it), and queues a GTD order's expiry then.
    #[inline]
    pub(crate) fn index(&mut self, slot: u32) {
        let o = self.orders.get_mut(slot);
        if !o.indexed {
            o.indexed = true;
            let (tag, expires) = (o.id_tag, o.expire_ts != 0);
            self.ids.insert(tag, slot);
            if expires {
                self.push_expiry(slot);
            }
        }
    }

    /// Queues the expiry of a GTD order being indexed, for the few orders that expire.
    #[inline(never)]
    fn push_expiry(&mut self, slot: u32) {
        let o = *self.orders.get(slot);
        if self.expiries.len() >= self.expiries_max {
            // Every live order has at most one entry and live orders ≤ expiries_max, so dropping
            // the entries of orders that left always makes room.
            let orders = &self.orders;
            self.expiries.retain(|Reverse((_, order_id, slot))| {
                let o = orders.get(*slot);
                o.state != OrderState::Free && o.order_id == *order_id
            });
        }
        self.expiries.push(Reverse((o.expire_ts, o.order_id, slot)));
    }

    /// Releases an order that has left the book: drops it from the id map and frees its slot.
    #[inline]
    pub(crate) fn release(&mut self, slot: u32) {
        let o = self.orders.get(slot);
        if o.indexed {
            self.ids.remove(o.id_tag, slot);
        }
        self.orders.free(slot);
    }

    /// Takes a resting or stop order out of its queue or list (does not free it).
    pub(crate) fn unlink(&mut self, slot: u32) {
        let o = *self.orders.get(slot);
        match o.state {
            OrderState::Resting => self.unlink_from_level(slot),
            OrderState::Stop => {
                let book = &mut self.books[o.symbol.index()];
                if o.prev == NIL {
                    book.stops_head = o.next;
                } else {
                    self.orders.get_mut(o.prev).next = o.next;
                }
                if o.next == NIL {
                    book.stops_tail = o.prev;
                } else {
                    self.orders.get_mut(o.next).prev = o.prev;
                }
                let o = self.orders.get_mut(slot);
                o.prev = NIL;
                o.next = NIL;
                o.state = OrderState::Active;
            }
            OrderState::Active | OrderState::Free => {}
        }
    }

    /// Removes a resting order from its level, dropping the level when it empties.
    pub(crate) fn unlink_from_level(&mut self, slot: u32) {
        let o = *self.orders.get(slot);
        debug_assert_eq!(o.state, OrderState::Resting);
        if o.prev == NIL {
            self.levels.get_mut(o.level).head = o.next;
        } else {
            self.orders.get_mut(o.prev).next = o.next;
        }
        if o.next == NIL {
            self.levels.get_mut(o.level).tail = o.prev;
        } else {
            self.orders.get_mut(o.next).prev = o.prev;
        }
        let level = self.levels.get_mut(o.level);
        level.count -= 1;
        if level.count == 0 {
            self.drop_level(o.symbol, o.side, o.level);
        }
        let o = self.orders.get_mut(slot);
        o.prev = NIL;
        o.next = NIL;
        o.level = NIL;
        o.state = OrderState::Active;
    }

    /// Takes an emptied level out of its ladder and frees it.
    #[inline(never)]
    pub(crate) fn drop_level(&mut self, symbol: SymbolId, side: Side, level: u32) {
        let price = self.levels.get(level).price;
        debug_assert_eq!(self.levels.get(level).count, 0);
        self.books[symbol.index()].ladder_mut(side).remove(price);
        self.levels.free(level);
    }

    /// Finds a live order of `account` by client id on `symbol`.
    #[inline]
    fn lookup(&self, account: AccountId, id: &ClOrdId, symbol: SymbolId) -> Option<u32> {
        self.lookup_bucket(account, id, symbol).map(|(slot, _)| slot)
    }

    /// [`Engine::lookup`], with the id index bucket that holds the order.
    #[inline]
    fn lookup_bucket(&self, account: AccountId, id: &ClOrdId, symbol: SymbolId) -> Option<(u32, usize)> {
        match self.ids.probe_order(id_hash(account, id), account, id, &self.orders) {
            Probe::Found { bucket, slot } => {
                (self.orders.get(slot).symbol == symbol).then_some((slot, bucket))
            }
            Probe::Vacant { .. } => None,
        }
    }

    // ---- cancel -------------------------------------------------------------------------

    fn cancel_order<S: EventSink>(&mut self, cancel: &CancelOrder, sink: &mut S) {
        let (account, id, symbol) = (cancel.account, cancel.id, cancel.symbol);
        if self.books.get(symbol.index()).is_none() {
            return self.reject(sink, account, id, symbol, RejectReason::UnknownSymbol);
        }
        let Some(slot) = self.lookup(account, &id, symbol) else {
            return self.reject(sink, account, id, symbol, RejectReason::UnknownOrder);
        };
        self.unlink(slot);
        self.emit_canceled(sink, slot, CancelReason::User);
        self.release(slot);
    }

    fn cancel_all<S: EventSink>(&mut self, account: AccountId, symbol: Option<SymbolId>, sink: &mut S) {
        self.scratch.clear();
        for slot in 0..self.orders.high_water() {
            let o = self.orders.get(slot);
            let live = matches!(o.state, OrderState::Resting | OrderState::Stop);
            if live && o.account == account && symbol.is_none_or(|s| o.symbol == s) {
                self.scratch.push(slot);
            }
        }
        let orders = &self.orders;
        self.scratch.sort_unstable_by_key(|&slot| {
            let o = orders.get(slot);
            (o.symbol, o.order_id)
        });
        for i in 0..self.scratch.len() {
            let slot = self.scratch[i];
            self.unlink(slot);
            self.emit_canceled(sink, slot, CancelReason::MassCancel);
            self.release(slot);
        }
        self.scratch.clear();
    }

    // ---- replace ------------------------------------------------------------------------

    fn replace_order<S: EventSink>(&mut self, replace: &ReplaceOrder, sink: &mut S) {
        match self.check_replace(replace) {
            Ok(plan) => self.apply_replace(replace, plan, sink),
            Err(reason) => self.reject(sink, replace.account, replace.id, replace.symbol, reason),
        }
    }

    /// Every reason to refuse `replace`, in the order SEMANTICS.md gives them; on success, what
    /// [`Engine::apply_replace`] needs. Changes nothing.
    #[inline(always)]
    fn check_replace(&self, replace: &ReplaceOrder) -> Result<ReplacePlan, RejectReason> {
        let (account, id, symbol) = (replace.account, replace.id, replace.symbol);
        let book = self.books.get(symbol.index()).ok_or(RejectReason::UnknownSymbol)?;
        if book.halted {
            return Err(RejectReason::Halted);
        }
        let (slot, old_bucket) =
            self.lookup_bucket(account, &replace.orig_id, symbol).ok_or(RejectReason::UnknownOrder)?;
        if replace.qty == 0 || !book.whole_lots(replace.qty) {
            return Err(RejectReason::BadQty);
        }
        let o = self.orders.get(slot);
        let price = match replace.price {
            Some(units) if o.ord_type == OrdType::Limit => {
                book.units_to_ticks(units).ok_or(RejectReason::BadPriceTick)?
            }
            _ => o.price,
        };
        let new_id = id != replace.orig_id;
        let (new_tag, new_bucket) = if new_id {
            let new_hash = id_hash(account, &id);
            match self.ids.probe_order(new_hash, account, &id, &self.orders) {
                Probe::Found { .. } => return Err(RejectReason::DuplicateId),
                Probe::Vacant { bucket } => (OrderIds::tag(new_hash), bucket),
            }
        } else {
            (o.id_tag, old_bucket)
        };
        let resting = o.state == OrderState::Resting;
        if o.post_only && resting && book.crosses(o.side, price) {
            return Err(RejectReason::WouldTake);
        }
        let total_qty = o.filled + o.leaves;
        let keeps_place = price == o.price && replace.qty <= total_qty;
        let moves = resting && replace.qty > o.filled && !keeps_place;
        if moves {
            let ladder = book.ladder(o.side);
            let frees_a_level = self.levels.get(o.level).count == 1;
            let full = (ladder.is_full() || self.levels.is_full()) && !frees_a_level;
            if full && ladder.find(price).is_none() {
                return Err(RejectReason::BookFull);
            }
        }
        let (order_id, old_tag, filled) = (o.order_id, o.id_tag, o.filled);
        Ok(ReplacePlan {
            slot,
            order_id,
            old_tag,
            old_bucket,
            filled,
            price,
            new_tag,
            new_bucket,
            new_id,
            moves,
        })
    }

    /// Carries out an accepted replace: re-keys the id, reports `Replaced`, then ends the order
    /// (new quantity already filled), changes it in place (priority kept), or takes it off its
    /// level and matches it again at its new price.
    #[inline(always)]
    fn apply_replace<S: EventSink>(&mut self, replace: &ReplaceOrder, plan: ReplacePlan, sink: &mut S) {
        let (account, id, symbol) = (replace.account, replace.id, replace.symbol);
        let ReplacePlan {
            slot,
            order_id,
            old_tag,
            old_bucket,
            filled,
            price,
            new_tag,
            new_bucket,
            new_id,
            moves,
        } = plan;
        if new_id {
            // Into the vacancy the duplicate check found, then out of the bucket the lookup
            // found: neither probes again. In this order, since the insert moves no entry
            // while the removal's backward shift may.
            self.ids.insert_vacant(new_bucket, new_tag, slot);
            self.ids.remove_found(old_bucket, old_tag, slot);
            let o = self.orders.get_mut(slot);
            o.set_cl_ord_id(&id);
            o.id_tag = new_tag;
        }
        let done = replace.qty <= filled;
        let leaves = if done { 0 } else { replace.qty - filled };
        self.emit(
            sink,
            EventKind::Replaced {
                account,
                orig_id: replace.orig_id,
                id,
                symbol,
                order_id,
                price,
                qty: replace.qty,
                leaves_qty: leaves,
            },
        );
        if done {
            self.unlink(slot);
            self.release(slot);
            return;
        }
        if !moves {
            // Priority kept (or an untriggered stop, which keeps its place among the stops).
            let o = self.orders.get_mut(slot);
            o.price = price;
            o.leaves = leaves;
            // A resting iceberg keeps its current slice, capped; a stop shows nothing yet, so it
            // gets the full slice it will show when it rests.
            let slice = if o.state == OrderState::Stop { o.display } else { o.visible };
            o.visible = if o.display > 0 { slice.min(leaves) } else { leaves };
            return;
        }
        self.move_resting(slot, price, leaves, sink);
        if self.books[symbol.index()].stops_head != NIL {
            self.trigger_stops(symbol, sink);
        }
    }

    // ---- halts and expiry ---------------------------------------------------------------

    fn set_halted<S: EventSink>(&mut self, symbol: SymbolId, halted: bool, sink: &mut S) {
        if let Some(book) = self.books.get_mut(symbol.index()) {
            book.halted = halted;
            self.emit(sink, EventKind::TradingStatus { symbol, halted });
        }
    }

    /// Removes every GTD order whose expiry is at or before the current command's timestamp.
    fn expire_due<S: EventSink>(&mut self, sink: &mut S) {
        while let Some(&Reverse((expire_ts, order_id, slot))) = self.expiries.peek() {
            if expire_ts > self.command_ts {
                break;
            }
            self.expiries.pop();
            let o = self.orders.get(slot);
            if o.state == OrderState::Free || o.order_id != order_id {
                continue; // the order left before it expired
            }
            let o = *o;
            self.unlink(slot);
            let id = self.orders.cl_ord_id(slot);
            self.emit(
                sink,
                EventKind::Expired {
                    account: o.account,
                    id,
                    symbol: o.symbol,
                    order_id: o.order_id,
                    leaves_qty: o.leaves,
                },
            );
            self.release(slot);
        }
    }

    // ---- inspection ---------------------------------------------------------------------

    /// A copy of one symbol's book, best price first, orders in queue priority. Allocates: for
    /// tools, tests and snapshots, not for the matching path. Untriggered stops are not included.
    pub fn book_snapshot(&self, symbol: SymbolId) -> BookSnapshot {
        let Some(book) = self.books.get(symbol.index()) else {
            return BookSnapshot::default();
        };
        let side = |side: Side| -> Vec<LevelSnapshot> {
            book.ladder(side)
                .iter_best_first()
                .map(|(price, level)| {
                    let mut orders = Vec::with_capacity(self.levels.get(level).count as usize);
                    let mut slot = self.levels.get(level).head;
                    while slot != NIL {
                        let o = self.orders.get(slot);
                        orders.push(OrderSnapshot {
                            account: o.account,
                            id: self.orders.cl_ord_id(slot),
                            order_id: o.order_id,
                            qty: o.leaves,
                            visible_qty: o.visible,
                        });
                        slot = o.next;
                    }
                    LevelSnapshot { price, orders }
                })
                .collect()
        };
        BookSnapshot { bids: side(Side::Buy), asks: side(Side::Sell) }
    }

    /// Untriggered stops of a symbol in acceptance order: (account, id, side, stop price, qty).
    pub fn stops_snapshot(&self, symbol: SymbolId) -> Vec<(AccountId, ClOrdId, Side, Price, Qty)> {
        let mut out = Vec::new();
        let Some(book) = self.books.get(symbol.index()) else { return out };
        let mut slot = book.stops_head;
        while slot != NIL {
            let o = self.orders.get(slot);
            out.push((o.account, self.orders.cl_ord_id(slot), o.side, o.stop_price, o.leaves));
            slot = o.next;
        }
        out
    }
}

/// A copy of one book.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BookSnapshot {
    /// Bid levels, best (highest) first.
    pub bids: Vec<LevelSnapshot>,
    /// Ask levels, best (lowest) first.
    pub asks: Vec<LevelSnapshot>,
}

/// A copy of one price level.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LevelSnapshot {
    /// Price in ticks.
    pub price: Price,
    /// Orders in queue priority.
    pub orders: Vec<OrderSnapshot>,
}

/// A copy of one resting order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderSnapshot {
    /// Owner.
    pub account: AccountId,
    /// Client id.
    pub id: ClOrdId,
    /// Engine id.
    pub order_id: OrderId,
    /// Open quantity, hidden part included.
    pub qty: Qty,
    /// Visible part of `qty`.
    pub visible_qty: Qty,
}

/// A new order that passed every check: its prices in ticks (0 for none) and its id's hash.
#[derive(Clone, Copy)]
struct NewPrices {
    price: Price,
    stop_price: Price,
    hash: u64,
}

/// A replace that passed every check: what [`Engine::apply_replace`] needs of the order as it
/// was (its id, old id tag, filled quantity), its new price, whether the client id changes and
/// the new one's tag, and whether it loses its place (leaves its level and matches again).
#[derive(Clone, Copy)]
struct ReplacePlan {
    slot: u32,
    order_id: OrderId,
    old_tag: u32,
    /// The id index bucket holding the order under its old id.
    old_bucket: usize,
    filled: Qty,
    price: Price,
    new_tag: u32,
    /// The empty id index bucket where the new id goes (when `new_id`).
    new_bucket: usize,
    new_id: bool,
    moves: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_names_each_bound_at_zero_and_past_its_maximum() {
        let ok = EngineConfig::default();
        assert_eq!(ok.validate(), Ok(()));
        let with = |f: fn(&mut EngineConfig)| {
            let mut c = EngineConfig::default();
            f(&mut c);
            c.validate()
        };
        assert_eq!(with(|c| c.orders_max = 0), Err(ConfigError::OrdersMax(0)));
        assert_eq!(
            with(|c| c.orders_max = ORDERS_MAX_LIMIT + 1),
            Err(ConfigError::OrdersMax(ORDERS_MAX_LIMIT + 1))
        );
        assert_eq!(with(|c| c.orders_max = ORDERS_MAX_LIMIT), Ok(()));
        assert_eq!(with(|c| c.levels_per_side_max = 0), Err(ConfigError::LevelsPerSideMax(0)));
        assert_eq!(
            with(|c| c.levels_per_side_max = LEVELS_PER_SIDE_MAX_LIMIT + 1),
            Err(ConfigError::LevelsPerSideMax(LEVELS_PER_SIDE_MAX_LIMIT + 1))
        );
        assert_eq!(with(|c| c.symbols.clear()), Err(ConfigError::Symbols(0)));
        let many = |c: &mut EngineConfig| c.symbols = vec![c.symbols[0].clone(); SYMBOLS_MAX + 1];
        assert_eq!(with(many), Err(ConfigError::Symbols(SYMBOLS_MAX + 1)));
        assert!(ConfigError::OrdersMax(0).to_string().contains("orders_max"));
    }

    #[test]
    #[should_panic(expected = "orders_max 0")]
    fn new_refuses_what_validate_refuses() {
        Engine::new(EngineConfig { orders_max: 0, ..EngineConfig::default() });
    }
}
