//! What happens to an accepted order: matching as the taker, resting, and stop triggering.
//!
//! The rules are the matching semantics pinned down in `engine/SEMANTICS.md`.

use crate::book::{limit_crosses, stop_triggers};
use crate::engine::Engine;
use crate::event::{CancelReason, EventKind, EventSink};
use crate::order::{Order, OrderState, NIL};
use crate::types::{OrdType, Price, Qty, StpMode, SymbolId, Tif};

/// Bound on trigger rounds after one command. Each round removes at least one stop from a list
/// that only shrinks during the command, so the stop count bounds it; this names that bound.
const TRIGGER_ROUNDS_MAX: usize = u32::MAX as usize;

impl Engine {
    /// Matches the `Active` order in `slot` as the taker, then rests or cancels its remainder.
    #[inline]
    pub(crate) fn execute<S: EventSink>(&mut self, slot: u32, sink: &mut S) {
        // Most orders (and nearly every move) are limit orders that may rest and do not reach
        // the opposite best: nothing to match, so straight to the back of their level. This is
        // exactly what `execute_taking` does for them (no FOK dry run, the walk stops at once,
        // nothing filled, the slice cut from the whole leaves), with less to set up.
        let o = self.orders.get(slot);
        let rests = o.ord_type == OrdType::Limit && matches!(o.tif, Tif::Gtc | Tif::Gtd);
        if rests && !self.books[o.symbol.index()].crosses(o.side, o.price) {
            let o = self.orders.get_mut(slot);
            debug_assert!(o.leaves > 0, "executing a done order {o:?}");
            o.visible = if o.display > 0 { o.display.min(o.leaves) } else { o.leaves };
            self.rest(slot, sink);
            return;
        }
        self.execute_taking(slot, sink);
    }

    /// A resting order that loses its place (a replace to another price, or to more quantity):
    /// takes it off its level, gives it `price` and `leaves`, and matches it again. The same as
    /// `unlink_from_level`, setting the fields, then `execute`, fused for a move that joins a
    /// level which exists and does not reach the opposite best (most moves): the order is read
    /// once and its queue fields written once, without the states and links in between that
    /// the next step would overwrite. Anything else takes the general path.
    #[inline(always)]
    pub(crate) fn move_resting<S: EventSink>(&mut self, slot: u32, price: Price, leaves: Qty, sink: &mut S) {
        let o = *self.orders.get(slot);
        debug_assert!(o.state == OrderState::Resting && o.indexed, "moving {o:?}");
        // Leave the old level (as `unlink_from_level`). Whether the order is its level's head
        // or tail is a coin toss per move, so each link is one store through a chosen place,
        // which the compiler makes a conditional move rather than a branch to mispredict.
        let ahead: &mut u32 = if o.prev == NIL {
            &mut self.levels.get_mut(o.level).head
        } else {
            &mut self.orders.get_mut(o.prev).next
        };
        *ahead = o.next;
        let behind: &mut u32 = if o.next == NIL {
            &mut self.levels.get_mut(o.level).tail
        } else {
            &mut self.orders.get_mut(o.next).prev
        };
        *behind = o.prev;
        let old = self.levels.get_mut(o.level);
        old.count -= 1;
        if old.count == 0 {
            self.drop_level(o.symbol, o.side, o.level);
        }
        let visible = if o.display > 0 { o.display.min(leaves) } else { leaves };
        // ...and join the back of an existing level the order does not cross from (as
        // `execute`'s first branch, then `rest`).
        let rests = o.ord_type == OrdType::Limit && matches!(o.tif, Tif::Gtc | Tif::Gtd);
        let book = &self.books[o.symbol.index()];
        let level =
            if rests && !book.crosses(o.side, price) { book.ladder(o.side).find(price) } else { None };
        let Some(level) = level else {
            let m = self.orders.get_mut(slot);
            m.price = price;
            m.leaves = leaves;
            m.visible = visible;
            m.prev = NIL;
            m.next = NIL;
            m.level = NIL;
            m.state = OrderState::Active;
            return self.execute(slot, sink);
        };
        let m = self.orders.get_mut(slot);
        m.price = price;
        m.leaves = leaves;
        m.visible = visible;
        self.append_to_level(slot, level);
    }

    /// Puts `slot` at the back of `level`'s queue: its level and links, its old tail's (or the
    /// level's head) link to it, the level's tail and count.
    #[inline(always)]
    fn append_to_level(&mut self, slot: u32, level: u32) {
        let tail = self.levels.get(level).tail;
        let m = self.orders.get_mut(slot);
        m.level = level;
        m.prev = tail;
        m.next = NIL;
        if tail == NIL {
            self.levels.get_mut(level).head = slot;
        } else {
            self.orders.get_mut(tail).next = slot;
        }
        let l = self.levels.get_mut(level);
        l.tail = slot;
        l.count += 1;
    }

    /// [`Engine::execute`] for an order that may trade: the FOK dry run, the walk, then the
    /// remainder rests or is canceled.
    #[inline(never)]
    fn execute_taking<S: EventSink>(&mut self, slot: u32, sink: &mut S) {
        let o = *self.orders.get(slot);
        if o.tif == Tif::Fok && !self.fok_fillable(slot) {
            self.emit_canceled(sink, slot, CancelReason::Fok);
            self.release(slot);
            return;
        }
        if !self.match_taker(slot, sink) {
            return; // self-trade prevention canceled the taker
        }
        let o = *self.orders.get(slot);
        if o.leaves == 0 {
            self.release(slot);
        } else if o.ord_type == OrdType::Market || matches!(o.tif, Tif::Ioc | Tif::Fok) {
            self.emit_canceled(sink, slot, CancelReason::Ioc);
            self.release(slot);
        } else {
            // The slice shown is cut from what is left after matching as the taker.
            let o = self.orders.get_mut(slot);
            o.visible = if o.display > 0 { o.display.min(o.leaves) } else { o.leaves };
            self.rest(slot, sink);
        }
    }

    /// Dry run for fill-or-kill: would matching fill the whole quantity now? Level by level:
    /// a level where an own order stops matching (`cancel_newest`, `cancel_both`) counts only
    /// the visible quantity ahead of that order, since an iceberg's next slice would join the
    /// queue behind it; any other level counts every other account's whole leaves.
    fn fok_fillable(&self, slot: u32) -> bool {
        let taker = self.orders.get(slot);
        let ladder = self.books[taker.symbol.index()].ladder(taker.side.opposite());
        let stops_at_own = taker.stp != StpMode::CancelOldest;
        let mut available = 0;
        let mut depth = 0;
        while let Some((price, level)) = ladder.nth_from_best(depth) {
            if taker.ord_type == OrdType::Limit && !limit_crosses(taker.side, taker.price, price) {
                break;
            }
            let (mut visible_ahead, mut leaves) = (0, 0);
            let mut maker = self.levels.get(level).head;
            while maker != NIL {
                let m = self.orders.get(maker);
                if m.account != taker.account {
                    visible_ahead += m.visible;
                    leaves += m.leaves;
                } else if stops_at_own {
                    return available + visible_ahead >= taker.leaves;
                }
                maker = m.next;
            }
            available += leaves;
            if available >= taker.leaves {
                return true;
            }
            depth += 1;
        }
        false
    }

    /// Trades the taker in `slot` against the opposite side while prices cross. Returns false
    /// when self-trade prevention canceled (and released) the taker.
    fn match_taker<S: EventSink>(&mut self, slot: u32, sink: &mut S) -> bool {
        let taker = *self.orders.get(slot);
        let symbol = taker.symbol.index();
        let maker_side = taker.side.opposite();
        let market = taker.ord_type == OrdType::Market;
        let mut taker_leaves = taker.leaves;
        while taker_leaves > 0 {
            let Some((price, level)) = self.books[symbol].ladder(maker_side).best() else { break };
            if !market && !limit_crosses(taker.side, taker.price, price) {
                break;
            }
            let maker_slot = self.levels.get(level).head;
            let maker = *self.orders.get(maker_slot);
            debug_assert!(maker.visible > 0 && maker.visible <= maker.leaves, "{maker:?}");
            if maker.account == taker.account {
                if self.prevent_self_trade(sink, taker.stp, slot, taker_leaves, maker_slot) {
                    return false;
                }
                continue;
            }
            taker_leaves = self.trade(sink, &taker, slot, taker_leaves, &maker, maker_slot, price);
        }
        let t = self.orders.get_mut(slot);
        t.filled += t.leaves - taker_leaves;
        t.leaves = taker_leaves;
        true
    }

    /// The taker in `slot` (with `taker_leaves` left) met a maker of its own account: cancels
    /// the newest (the taker), the oldest (the maker) or both, as the taker's `stp` says.
    /// Returns true when the taker was canceled and released.
    #[inline(always)]
    fn prevent_self_trade<S: EventSink>(
        &mut self,
        sink: &mut S,
        stp: StpMode,
        slot: u32,
        taker_leaves: u64,
        maker_slot: u32,
    ) -> bool {
        if matches!(stp, StpMode::CancelOldest | StpMode::CancelBoth) {
            self.unlink_from_level(maker_slot);
            self.emit_canceled(sink, maker_slot, CancelReason::SelfTrade);
            self.release(maker_slot);
        }
        if matches!(stp, StpMode::CancelNewest | StpMode::CancelBoth) {
            self.orders.get_mut(slot).leaves = taker_leaves;
            self.emit_canceled(sink, slot, CancelReason::SelfTrade);
            self.release(slot);
            return true;
        }
        false
    }

    /// One trade between the taker in `slot` (with `taker_leaves` left) and the maker at the
    /// head of the best level, at the maker's `price`: updates the maker, reports the `Trade`,
    /// then takes a filled maker off the book or cuts its iceberg's next slice. Returns the
    /// taker's leaves after the trade.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)] // one trade's facts, each used once
    fn trade<S: EventSink>(
        &mut self,
        sink: &mut S,
        taker: &Order,
        slot: u32,
        taker_leaves: u64,
        maker: &Order,
        maker_slot: u32,
        price: Price,
    ) -> u64 {
        let qty = taker_leaves.min(maker.visible);
        let taker_leaves = taker_leaves - qty;
        let maker_leaves = maker.leaves - qty;
        {
            let m = self.orders.get_mut(maker_slot);
            m.leaves = maker_leaves;
            m.visible -= qty;
            m.filled += qty;
        }
        self.books[taker.symbol.index()].last_trade = Some(price);
        let maker_id = self.orders.cl_ord_id(maker_slot);
        let taker_id = self.orders.cl_ord_id(slot);
        self.emit(
            sink,
            EventKind::Trade {
                symbol: taker.symbol,
                price,
                qty,
                maker_account: maker.account,
                maker_id,
                maker_order_id: maker.order_id,
                maker_leaves_qty: maker_leaves,
                taker_account: taker.account,
                taker_id,
                taker_order_id: taker.order_id,
                taker_leaves_qty: taker_leaves,
                aggressor: taker.side,
            },
        );
        if maker.visible == qty {
            if maker_leaves == 0 {
                self.unlink_from_level(maker_slot);
                self.release(maker_slot);
            } else {
                // Iceberg: cut a new slice from the hidden rest; it loses its place.
                let m = self.orders.get_mut(maker_slot);
                m.visible = m.display.min(maker_leaves);
                self.move_to_back(maker_slot);
            }
        }
        taker_leaves
    }

    /// Moves a resting order to the back of its own level.
    fn move_to_back(&mut self, slot: u32) {
        let o = *self.orders.get(slot);
        let level = *self.levels.get(o.level);
        if level.tail == slot {
            return;
        }
        // Unlink (the level keeps at least this order, so it never empties here)...
        if o.prev == NIL {
            self.levels.get_mut(o.level).head = o.next;
        } else {
            self.orders.get_mut(o.prev).next = o.next;
        }
        self.orders.get_mut(o.next).prev = o.prev;
        // ...and append.
        self.orders.get_mut(level.tail).next = slot;
        let m = self.orders.get_mut(slot);
        m.prev = level.tail;
        m.next = NIL;
        self.levels.get_mut(o.level).tail = slot;
    }

    /// Puts the `Active` order in `slot` at the back of its price level.
    pub(crate) fn rest<S: EventSink>(&mut self, slot: u32, sink: &mut S) {
        let o = *self.orders.get(slot);
        debug_assert!(o.visible > 0 && o.visible <= o.leaves, "resting {o:?}");
        let book = &mut self.books[o.symbol.index()];
        let level = match book.ladder(o.side).find(o.price) {
            Some(level) => level,
            None => {
                // Checked at entry for plain orders; a triggered stop-limit can still meet a
                // full ladder, and then its rest is canceled rather than the bound exceeded.
                if book.ladder(o.side).is_full() || self.levels.is_full() {
                    self.emit_canceled(sink, slot, CancelReason::BookFull);
                    self.release(slot);
                    return;
                }
                let level = self.levels.alloc(o.price);
                self.books[o.symbol.index()].ladder_mut(o.side).insert(o.price, level);
                level
            }
        };
        self.orders.get_mut(slot).state = OrderState::Resting;
        self.append_to_level(slot, level);
        self.index(slot);
    }

    /// Triggers every stop of `symbol` whose condition holds, in acceptance order, round after
    /// round until none does (SEMANTICS.md "Stops").
    pub(crate) fn trigger_stops<S: EventSink>(&mut self, symbol: SymbolId, sink: &mut S) {
        for _ in 0..TRIGGER_ROUNDS_MAX {
            let book = &self.books[symbol.index()];
            let Some(last) = book.last_trade else { return };
            self.scratch.clear();
            let mut slot = book.stops_head;
            while slot != NIL {
                let o = self.orders.get(slot);
                if stop_triggers(o.side, o.stop_price, last) {
                    self.scratch.push(slot);
                }
                slot = o.next;
            }
            if self.scratch.is_empty() {
                return;
            }
            // All of this round's stops leave the list before the first one matches.
            for i in 0..self.scratch.len() {
                self.unlink(self.scratch[i]);
            }
            for i in 0..self.scratch.len() {
                let slot = self.scratch[i];
                let o = *self.orders.get(slot);
                let id = self.orders.cl_ord_id(slot);
                self.emit(
                    sink,
                    EventKind::Triggered { account: o.account, id, symbol, order_id: o.order_id },
                );
                self.execute(slot, sink);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{
        AccountId, CancelOrder, ClOrdId, Command, CommandHeader, CommandKind, Engine, EngineConfig, Event,
        EventKind, NewOrder, Price, ReplaceOrder, Side, StpMode, SymbolId, Tif,
    };

    const CENT: i64 = 1_000_000;

    /// (price in ticks, [(client id, qty)]) per level, best first.
    type Levels = Vec<(i64, Vec<(String, u64)>)>;

    struct Harness {
        engine: Engine,
        seq: u64,
    }

    fn id(s: &str) -> ClOrdId {
        ClOrdId::from_str(s).unwrap()
    }

    impl Harness {
        fn new() -> Harness {
            Harness {
                engine: Engine::new(EngineConfig { orders_max: 64, ..EngineConfig::default() }),
                seq: 0,
            }
        }
        fn run(&mut self, kind: CommandKind) -> Vec<Event> {
            self.seq += 1;
            let cmd = Command { header: CommandHeader { seq: self.seq, ts: self.seq * 10 }, kind };
            let mut out = Vec::new();
            self.engine.process(&cmd, &mut out);
            out
        }
        fn limit(&mut self, acct: AccountId, cid: &str, side: Side, cents: i64, qty: u64) -> Vec<Event> {
            self.run(CommandKind::New(NewOrder::limit(acct, SymbolId(0), id(cid), side, cents * CENT, qty)))
        }
        fn book(&self) -> (Levels, Levels) {
            let snap = self.engine.book_snapshot(SymbolId(0));
            let f = |levels: Vec<crate::LevelSnapshot>| {
                levels
                    .into_iter()
                    .map(|l| (l.price.0, l.orders.into_iter().map(|o| (o.id.to_string(), o.qty)).collect()))
                    .collect()
            };
            (f(snap.bids), f(snap.asks))
        }
    }

    fn trades(events: &[Event]) -> Vec<(i64, u64, String, String)> {
        events
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::Trade { price, qty, maker_id, taker_id, .. } => {
                    Some((price.0, qty, maker_id.to_string(), taker_id.to_string()))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn price_time_priority_and_maker_price() {
        let mut h = Harness::new();
        h.limit(AccountId(1), "a1", Side::Sell, 10_100, 5);
        h.limit(AccountId(2), "b1", Side::Sell, 10_050, 5);
        h.limit(AccountId(1), "a2", Side::Sell, 10_050, 5);
        let ev = h.limit(AccountId(3), "c1", Side::Buy, 10_100, 12);
        assert_eq!(
            trades(&ev),
            vec![
                (10_050, 5, "b1".into(), "c1".into()),
                (10_050, 5, "a2".into(), "c1".into()),
                (10_100, 2, "a1".into(), "c1".into()),
            ]
        );
        assert_eq!(h.book(), (vec![], vec![(10_100, vec![("a1".into(), 3)])]));
        assert_eq!(ev.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![4, 5, 6, 7]);
    }

    #[test]
    fn iceberg_reslices_to_the_back() {
        let mut h = Harness::new();
        let mut ice = NewOrder::limit(AccountId(1), SymbolId(0), id("ice"), Side::Sell, 100 * CENT, 10);
        ice.display_qty = Some(3);
        h.run(CommandKind::New(ice));
        h.limit(AccountId(2), "b", Side::Sell, 100, 4);
        let ev = h.limit(AccountId(3), "t", Side::Buy, 100, 5);
        assert_eq!(trades(&ev), vec![(100, 3, "ice".into(), "t".into()), (100, 2, "b".into(), "t".into())]);
        assert_eq!(h.book().1, vec![(100, vec![("b".into(), 2), ("ice".into(), 7)])]);
    }

    #[test]
    fn replace_keeps_priority_only_on_same_price_size_down() {
        let mut h = Harness::new();
        h.limit(AccountId(1), "a", Side::Buy, 100, 10);
        h.limit(AccountId(2), "b", Side::Buy, 100, 10);
        let r = |orig: &str, new: &str, qty| {
            CommandKind::Replace(ReplaceOrder {
                account: AccountId(1),
                symbol: SymbolId(0),
                orig_id: id(orig),
                id: id(new),
                price: None,
                qty,
            })
        };
        h.run(r("a", "a2", 6));
        assert_eq!(h.book().0, vec![(100, vec![("a2".into(), 6), ("b".into(), 10)])]);
        h.run(r("a2", "a3", 8));
        assert_eq!(h.book().0, vec![(100, vec![("b".into(), 10), ("a3".into(), 8)])]);
    }

    #[test]
    fn self_trade_modes() {
        for (stp, want_book_asks, want_events) in [
            (StpMode::CancelNewest, 2, "canceled:t"),
            (StpMode::CancelOldest, 0, "canceled:own trade"),
            (StpMode::CancelBoth, 1, "canceled:own canceled:t"),
        ] {
            let mut h = Harness::new();
            h.limit(AccountId(1), "own", Side::Sell, 100, 5);
            h.limit(AccountId(2), "other", Side::Sell, 101, 5);
            let mut t = NewOrder::limit(AccountId(1), SymbolId(0), id("t"), Side::Buy, 101 * CENT, 5);
            t.stp = stp;
            t.tif = Tif::Ioc;
            let ev = h.run(CommandKind::New(t));
            let kinds: Vec<String> = ev[1..]
                .iter()
                .map(|e| match e.kind {
                    EventKind::Canceled { id, .. } => format!("canceled:{id}"),
                    EventKind::Trade { .. } => "trade".to_string(),
                    _ => format!("{:?}", e.kind),
                })
                .collect();
            assert_eq!(kinds.join(" "), want_events, "{stp:?}");
            assert_eq!(h.book().1.len(), want_book_asks, "{stp:?}");
        }
    }

    #[test]
    fn stops_trigger_in_acceptance_order_and_cascade() {
        let mut h = Harness::new();
        h.limit(AccountId(1), "s1", Side::Sell, 100, 1);
        h.limit(AccountId(1), "s2", Side::Sell, 101, 1);
        h.limit(AccountId(1), "s3", Side::Sell, 102, 1);
        let mut stop_a = NewOrder::market(AccountId(2), SymbolId(0), id("stopA"), Side::Buy, 1);
        stop_a.stop_price = Some(crate::PriceUnits(101 * CENT));
        let mut stop_b = NewOrder::market(AccountId(2), SymbolId(0), id("stopB"), Side::Buy, 1);
        stop_b.stop_price = Some(crate::PriceUnits(100 * CENT));
        h.run(CommandKind::New(stop_a));
        h.run(CommandKind::New(stop_b));
        let ev = h.limit(AccountId(3), "t", Side::Buy, 100, 1);
        // t trades at 100 -> stopB triggers (last 100 >= 100) and buys at 101 -> stopA triggers.
        assert_eq!(
            trades(&ev),
            vec![
                (100, 1, "s1".into(), "t".into()),
                (101, 1, "s2".into(), "stopB".into()),
                (102, 1, "s3".into(), "stopA".into())
            ]
        );
        assert!(h.book().1.is_empty());
    }

    #[test]
    fn fok_changes_nothing_unless_fully_fillable() {
        let mut h = Harness::new();
        h.limit(AccountId(1), "a", Side::Sell, 100, 5);
        let mut f = NewOrder::limit(AccountId(2), SymbolId(0), id("f"), Side::Buy, 100 * CENT, 6);
        f.tif = Tif::Fok;
        let ev = h.run(CommandKind::New(f));
        assert!(matches!(ev.last().unwrap().kind, EventKind::Canceled { leaves_qty: 6, .. }));
        assert_eq!(h.book().1, vec![(100, vec![("a".into(), 5)])]);
        f.qty = 5;
        f.id = id("f2");
        assert_eq!(trades(&h.run(CommandKind::New(f))).len(), 1);
    }

    #[test]
    fn gtd_expires_before_the_next_command_and_cancel_rejects_unknown() {
        let mut h = Harness::new();
        let mut g = NewOrder::limit(AccountId(1), SymbolId(0), id("g"), Side::Buy, 100 * CENT, 5);
        g.tif = Tif::Gtd;
        g.expire_ts = Some(15);
        h.run(CommandKind::New(g)); // ts 10
        let ev = h.run(CommandKind::Cancel(CancelOrder {
            account: AccountId(1),
            symbol: SymbolId(0),
            id: id("g"),
            request_id: None,
        })); // ts 20
        assert!(matches!(ev[0].kind, EventKind::Expired { leaves_qty: 5, .. }));
        assert!(matches!(ev[1].kind, EventKind::Rejected { reason: crate::RejectReason::UnknownOrder, .. }));
        assert_eq!(h.engine.orders_live(), 0);
        let _ = Price(0);
    }
}
