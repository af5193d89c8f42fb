//! A reference model of `engine/SEMANTICS.md`, written from that file alone (not from the
//! engine's source), so that the property test compares two independent readings of the rules.
//!
//! It is deliberately naive: every live order sits in one of two plain `Vec`s (resting orders of
//! every symbol, waiting stops of every symbol) and every question ("best ask?", "does account
//! 3 have id x live?") is a linear scan. Queue priority is a global counter: an order that joins
//! the back of its level takes the next value, so "oldest first at a price" is "smallest
//! counter". Nothing here is meant to be fast; everything is meant to be easy to check against
//! the text, rule by rule (each rule is quoted where it is implemented).

use engine::{
    AccountId, BookSnapshot, CancelOrder, CancelReason, ClOrdId, Command, CommandKind, Event, EventKind,
    LevelSnapshot, NewOrder, OrdType, OrderId, OrderSnapshot, Price, Qty, RejectReason, ReplaceOrder, Side,
    StpMode, SymbolId, SymbolSpec, Tif,
};

/// One live order: resting in a book or waiting as a stop.
#[derive(Clone, Debug)]
struct Order {
    account: AccountId,
    id: ClOrdId,
    symbol: SymbolId,
    order_id: OrderId,
    side: Side,
    ord_type: OrdType,
    /// Effective TIF: a GTC/GTD market order is stored as IOC.
    tif: Tif,
    /// Limit price in ticks; 0 for a market order.
    price: i64,
    /// Stop price in ticks while the order waits as a stop.
    stop: Option<i64>,
    /// Total quantity (filled part included).
    qty: Qty,
    filled: Qty,
    /// Iceberg slice size; `None` shows everything.
    display: Option<Qty>,
    /// Visible quantity while resting.
    visible: Qty,
    expire_ts: Option<u64>,
    post_only: bool,
    stp: StpMode,
    /// Time priority at its price: smaller is older.
    queue: u64,
}

impl Order {
    fn leaves(&self) -> Qty {
        self.qty - self.filled
    }

    /// The visible slice an order shows when it (re)joins a level.
    fn fresh_slice(&self) -> Qty {
        match self.display {
            Some(d) => d.min(self.leaves()),
            None => self.leaves(),
        }
    }
}

/// Does an aggressor on `side` with limit `limit` (None: market) cross a resting `price`?
fn crosses(side: Side, limit: Option<i64>, price: i64) -> bool {
    match (limit, side) {
        (None, _) => true,
        (Some(l), Side::Buy) => price <= l,
        (Some(l), Side::Sell) => price >= l,
    }
}

/// Is `qty` a whole number of lots?
// `u64::is_multiple_of` is Rust 1.87; the workspace's rust-version is 1.85.
#[allow(clippy::manual_is_multiple_of)]
fn in_lots(qty: Qty, lot: Qty) -> bool {
    qty % lot == 0
}

/// The reference model. Same inputs as `engine::Engine`, same events out.
pub struct Model {
    symbols: Vec<SymbolSpec>,
    orders_max: usize,
    levels_per_side_max: usize,
    halted: Vec<bool>,
    last_trade: Vec<Option<i64>>,
    /// Resting orders of every symbol, in no particular order.
    resting: Vec<Order>,
    /// Waiting stops of every symbol, in no particular order.
    stops: Vec<Order>,
    next_order_id: OrderId,
    next_event_seq: u64,
    next_queue: u64,
    /// The command being processed (every event carries its seq and ts).
    cmd_seq: u64,
    cmd_ts: u64,
    events: Vec<Event>,
}

impl Model {
    /// A model with the same configuration as `EngineConfig`.
    pub fn new(symbols: Vec<SymbolSpec>, orders_max: usize, levels_per_side_max: usize) -> Model {
        let n = symbols.len();
        Model {
            symbols,
            orders_max,
            levels_per_side_max,
            halted: vec![false; n],
            last_trade: vec![None; n],
            resting: Vec::new(),
            stops: Vec::new(),
            next_order_id: OrderId(1),
            next_event_seq: 1,
            next_queue: 0,
            cmd_seq: 0,
            cmd_ts: 0,
            events: Vec::new(),
        }
    }

    /// Processes one command and returns its events.
    pub fn process(&mut self, cmd: &Command) -> Vec<Event> {
        self.cmd_seq = cmd.header.seq;
        self.cmd_ts = cmd.header.ts;
        self.expire(cmd.header.ts);
        match &cmd.kind {
            CommandKind::New(o) => self.new_order(o),
            CommandKind::Cancel(c) => self.cancel(c),
            CommandKind::Replace(r) => self.replace(r),
            CommandKind::CancelAll { account, symbol } => self.cancel_all(*account, *symbol),
            CommandKind::Halt { symbol } => self.set_halted(*symbol, true),
            CommandKind::Resume { symbol } => self.set_halted(*symbol, false),
        }
        std::mem::take(&mut self.events)
    }

    /// The book of one symbol: best price first, queue order within a price.
    pub fn book_snapshot(&self, symbol: SymbolId) -> BookSnapshot {
        BookSnapshot {
            bids: self.side_snapshot(symbol, Side::Buy),
            asks: self.side_snapshot(symbol, Side::Sell),
        }
    }

    /// Every live order (resting and waiting stops) as `(account, symbol, id)`, by order id.
    /// The command generator uses it to aim cancels and replaces at live orders.
    pub fn live_orders(&self) -> Vec<(AccountId, SymbolId, ClOrdId)> {
        let mut live: Vec<&Order> = self.resting.iter().chain(self.stops.iter()).collect();
        live.sort_by_key(|o| o.order_id);
        live.iter().map(|o| (o.account, o.symbol, o.id)).collect()
    }

    fn side_snapshot(&self, symbol: SymbolId, side: Side) -> Vec<LevelSnapshot> {
        let mut orders: Vec<&Order> =
            self.resting.iter().filter(|o| o.symbol == symbol && o.side == side).collect();
        // Best price first (bids high to low, asks low to high), then queue order.
        orders.sort_by_key(|o| (if side == Side::Buy { -o.price } else { o.price }, o.queue));
        let mut levels: Vec<LevelSnapshot> = Vec::new();
        for o in orders {
            let snap = OrderSnapshot {
                account: o.account,
                id: o.id,
                order_id: o.order_id,
                qty: o.leaves(),
                visible_qty: o.visible,
            };
            match levels.last_mut() {
                Some(level) if level.price == Price(o.price) => level.orders.push(snap),
                _ => levels.push(LevelSnapshot { price: Price(o.price), orders: vec![snap] }),
            }
        }
        levels
    }

    // ---- events -------------------------------------------------------------------------

    fn emit(&mut self, kind: EventKind) {
        let event = Event { seq: self.next_event_seq, command_seq: self.cmd_seq, ts: self.cmd_ts, kind };
        self.next_event_seq += 1;
        self.events.push(event);
    }

    fn reject(&mut self, account: AccountId, id: ClOrdId, symbol: SymbolId, reason: RejectReason) {
        self.emit(EventKind::Rejected { account, id, symbol, reason });
    }

    fn emit_canceled(&mut self, o: &Order, reason: CancelReason) {
        self.emit(EventKind::Canceled {
            account: o.account,
            id: o.id,
            symbol: o.symbol,
            order_id: o.order_id,
            reason,
            leaves_qty: o.leaves(),
        });
    }

    // ---- small queries --------------------------------------------------------------------

    fn spec(&self, symbol: SymbolId) -> Option<&SymbolSpec> {
        self.symbols.get(symbol.index())
    }

    fn live_count(&self) -> usize {
        self.resting.len() + self.stops.len()
    }

    fn id_is_live(&self, account: AccountId, id: ClOrdId) -> bool {
        self.resting.iter().chain(self.stops.iter()).any(|o| o.account == account && o.id == id)
    }

    /// Best price on one side of a symbol's book.
    fn best_price(&self, symbol: SymbolId, side: Side) -> Option<i64> {
        let prices = self.resting.iter().filter(|o| o.symbol == symbol && o.side == side).map(|o| o.price);
        match side {
            Side::Buy => prices.max(),
            Side::Sell => prices.min(),
        }
    }

    /// Post-only check: "buy: price >= best ask; sell: price <= best bid".
    fn would_take(&self, symbol: SymbolId, side: Side, price: i64) -> bool {
        match self.best_price(symbol, side.opposite()) {
            Some(best) => crosses(side, Some(price), best),
            None => false,
        }
    }

    fn level_exists(&self, symbol: SymbolId, side: Side, price: i64) -> bool {
        self.resting.iter().any(|o| o.symbol == symbol && o.side == side && o.price == price)
    }

    fn level_count(&self, symbol: SymbolId, side: Side) -> usize {
        let mut prices: Vec<i64> =
            self.resting.iter().filter(|o| o.symbol == symbol && o.side == side).map(|o| o.price).collect();
        prices.sort_unstable();
        prices.dedup();
        prices.len()
    }

    /// "a price with no level yet and that side's ladder is full".
    fn ladder_full_for(&self, symbol: SymbolId, side: Side, price: i64) -> bool {
        !self.level_exists(symbol, side, price) && self.level_count(symbol, side) >= self.levels_per_side_max
    }

    /// Index in `resting` of the order that trades next against an aggressor on `side`.
    fn best_maker(&self, symbol: SymbolId, side: Side) -> Option<usize> {
        let maker_side = side.opposite();
        let best = self.best_price(symbol, maker_side)?;
        (0..self.resting.len())
            .filter(|&i| {
                let o = &self.resting[i];
                o.symbol == symbol && o.side == maker_side && o.price == best
            })
            .min_by_key(|&i| self.resting[i].queue)
    }

    /// The opposite side of a symbol in priority order.
    fn opposite_in_priority(&self, symbol: SymbolId, side: Side) -> Vec<&Order> {
        let maker_side = side.opposite();
        let mut v: Vec<&Order> =
            self.resting.iter().filter(|o| o.symbol == symbol && o.side == maker_side).collect();
        v.sort_by_key(|o| (if maker_side == Side::Buy { -o.price } else { o.price }, o.queue));
        v
    }

    fn take_queue(&mut self) -> u64 {
        self.next_queue += 1;
        self.next_queue
    }

    // ---- before any command: GTD expiry ---------------------------------------------------

    /// "every live order (resting or an untriggered stop) with expire_ts <= ts is removed, in
    /// (expire_ts, order_id) order, each with one Expired { leaves_qty }".
    fn expire(&mut self, ts: u64) {
        let due = |o: &Order| o.expire_ts.is_some_and(|e| e <= ts);
        let mut expired: Vec<Order> =
            self.resting.iter().chain(self.stops.iter()).filter(|o| due(o)).cloned().collect();
        self.resting.retain(|o| !due(o));
        self.stops.retain(|o| !due(o));
        expired.sort_by_key(|o| (o.expire_ts, o.order_id));
        for o in expired {
            self.emit(EventKind::Expired {
                account: o.account,
                id: o.id,
                symbol: o.symbol,
                order_id: o.order_id,
                leaves_qty: o.leaves(),
            });
        }
    }

    // ---- new order ------------------------------------------------------------------------

    fn new_order(&mut self, n: &NewOrder) {
        if let Err(reason) = self.check_new(n) {
            self.reject(n.account, n.id, n.symbol, reason);
            return;
        }
        let spec = self.spec(n.symbol).expect("checked");
        let is_market = n.ord_type == OrdType::Market;
        let price = if is_market { 0 } else { spec.units_to_ticks(n.price).expect("checked").0 };
        let stop = n.stop_price.map(|s| spec.units_to_ticks(s).expect("checked").0);
        // "A market order's TIF is IOC unless FOK; a GTC/GTD market order is treated as IOC."
        let tif = if is_market && matches!(n.tif, Tif::Gtc | Tif::Gtd) { Tif::Ioc } else { n.tif };
        let order_id = self.next_order_id;
        self.next_order_id.0 += 1;
        let order = Order {
            account: n.account,
            id: n.id,
            symbol: n.symbol,
            order_id,
            side: n.side,
            ord_type: n.ord_type,
            tif,
            price,
            stop,
            qty: n.qty,
            filled: 0,
            display: n.display_qty,
            visible: 0,
            // Only a GTD order has an expiry; `expire_ts` on others is ignored (SEMANTICS.md is
            // silent; the engine reads it the same way).
            expire_ts: if n.tif == Tif::Gtd { n.expire_ts } else { None },
            post_only: n.post_only,
            stp: n.stp,
            queue: 0,
        };
        self.emit(EventKind::Accepted {
            account: n.account,
            id: n.id,
            symbol: n.symbol,
            order_id,
            side: n.side,
            price: Price(price),
            qty: n.qty,
            tif,
            stop_price: stop.map(Price),
            display_qty: n.display_qty,
        });
        if stop.is_some() {
            // "An order with stop_price waits after Accepted."
            self.stops.push(order);
        } else {
            self.match_aggressor(order);
        }
        // "After every command that can trade (new, replace) finishes, including right after a
        // stop's own acceptance": run the stops.
        self.run_stops(n.symbol);
    }

    /// The checks of SEMANTICS.md "New order", in its order.
    fn check_new(&self, n: &NewOrder) -> Result<(), RejectReason> {
        // 1. unknown_symbol
        let spec = self.spec(n.symbol).ok_or(RejectReason::UnknownSymbol)?;
        // 2. halted
        if self.halted[n.symbol.index()] {
            return Err(RejectReason::Halted);
        }
        // 3. bad_order
        let is_market = n.ord_type == OrdType::Market;
        let ioc_or_fok = matches!(n.tif, Tif::Ioc | Tif::Fok);
        if n.tif == Tif::Gtd && n.expire_ts.is_none() {
            return Err(RejectReason::BadOrder);
        }
        if n.post_only && (is_market || ioc_or_fok || n.stop_price.is_some()) {
            return Err(RejectReason::BadOrder);
        }
        if n.display_qty.is_some() && (is_market || ioc_or_fok) {
            return Err(RejectReason::BadOrder);
        }
        // 4. bad_qty
        if n.qty == 0 || !in_lots(n.qty, spec.lot) {
            return Err(RejectReason::BadQty);
        }
        if let Some(d) = n.display_qty {
            if d == 0 || d > n.qty || !in_lots(d, spec.lot) {
                return Err(RejectReason::BadQty);
            }
        }
        // 5. bad_price_tick (market orders ignore `price`)
        let price = if is_market {
            None
        } else {
            Some(spec.units_to_ticks(n.price).ok_or(RejectReason::BadPriceTick)?.0)
        };
        if let Some(s) = n.stop_price {
            spec.units_to_ticks(s).ok_or(RejectReason::BadPriceTick)?;
        }
        // 6. duplicate_id (any symbol, resting or stop)
        if self.id_is_live(n.account, n.id) {
            return Err(RejectReason::DuplicateId);
        }
        // 7. would_take (post-only is always a plain limit here: check 3 refused the rest)
        if n.post_only && self.would_take(n.symbol, n.side, price.expect("post-only is a limit")) {
            return Err(RejectReason::WouldTake);
        }
        // 8. book_full: the pool, or a new level on a full ladder for an order that could rest.
        if self.live_count() >= self.orders_max {
            return Err(RejectReason::BookFull);
        }
        let could_rest = !is_market && n.stop_price.is_none() && matches!(n.tif, Tif::Gtc | Tif::Gtd);
        if could_rest && self.ladder_full_for(n.symbol, n.side, price.expect("limit")) {
            return Err(RejectReason::BookFull);
        }
        Ok(())
    }

    // ---- matching ---------------------------------------------------------------------------

    /// "Matching an incoming order (the taker / aggressor)". The order is not in any list.
    fn match_aggressor(&mut self, mut taker: Order) {
        let limit = if taker.ord_type == OrdType::Market { None } else { Some(taker.price) };
        if taker.tif == Tif::Fok && self.fok_available(&taker, limit) < taker.leaves() {
            self.emit_canceled(&taker, CancelReason::Fok);
            return;
        }
        while taker.leaves() > 0 {
            let Some(i) = self.best_maker(taker.symbol, taker.side) else {
                break;
            };
            if !crosses(taker.side, limit, self.resting[i].price) {
                break;
            }
            if self.resting[i].account == taker.account {
                match taker.stp {
                    StpMode::CancelNewest => {
                        self.emit_canceled(&taker, CancelReason::SelfTrade);
                        return;
                    }
                    StpMode::CancelOldest => {
                        let maker = self.resting.remove(i);
                        self.emit_canceled(&maker, CancelReason::SelfTrade);
                        continue;
                    }
                    StpMode::CancelBoth => {
                        let maker = self.resting.remove(i);
                        self.emit_canceled(&maker, CancelReason::SelfTrade);
                        self.emit_canceled(&taker, CancelReason::SelfTrade);
                        return;
                    }
                }
            }
            let qty = taker.leaves().min(self.resting[i].visible);
            taker.filled += qty;
            let maker = &mut self.resting[i];
            maker.filled += qty;
            maker.visible -= qty;
            let maker_copy = maker.clone();
            self.last_trade[taker.symbol.index()] = Some(maker_copy.price);
            self.emit(EventKind::Trade {
                symbol: taker.symbol,
                price: Price(maker_copy.price),
                qty,
                maker_account: maker_copy.account,
                maker_id: maker_copy.id,
                maker_order_id: maker_copy.order_id,
                maker_leaves_qty: maker_copy.leaves(),
                taker_account: taker.account,
                taker_id: taker.id,
                taker_order_id: taker.order_id,
                taker_leaves_qty: taker.leaves(),
                aggressor: taker.side,
            });
            if maker_copy.visible == 0 {
                if maker_copy.leaves() > 0 {
                    // Iceberg: a new slice, at the back of its level.
                    let queue = self.take_queue();
                    let maker = &mut self.resting[i];
                    maker.visible = maker.fresh_slice();
                    maker.queue = queue;
                } else {
                    self.resting.remove(i);
                }
            }
        }
        if taker.leaves() == 0 {
            return;
        }
        let rests = taker.ord_type == OrdType::Limit && matches!(taker.tif, Tif::Gtc | Tif::Gtd);
        if rests && self.ladder_full_for(taker.symbol, taker.side, taker.price) {
            // "A triggered stop-limit whose level cannot be created because the ladder is full
            // is Canceled { reason: book_full }". Entry checks make this unreachable for other
            // orders: matching never adds a level to the taker's own side.
            self.emit_canceled(&taker, CancelReason::BookFull);
        } else if rests {
            // "a GTC/GTD limit rest joins the back of its price level, showing
            // min(display_qty, leaves) if iceberg".
            taker.visible = taker.fresh_slice();
            taker.queue = self.take_queue();
            self.resting.push(taker);
        } else {
            // Market and IOC (and a FOK that passed its dry run but was stopped short, which
            // only STP can do, and STP already canceled it above).
            self.emit_canceled(&taker, CancelReason::Ioc);
        }
    }

    /// FOK dry run, level by level in priority order: a level without an own order that stops
    /// matching counts every other account's whole leaves (`cancel_oldest` skips own orders);
    /// on the level where an own order stops matching (`cancel_newest`, `cancel_both`) only the
    /// visible quantity ahead of it counts (an iceberg's next slice goes behind it), and the
    /// count ends there.
    fn fok_available(&self, taker: &Order, limit: Option<i64>) -> Qty {
        let makers: Vec<&Order> = self
            .opposite_in_priority(taker.symbol, taker.side)
            .into_iter()
            .take_while(|m| crosses(taker.side, limit, m.price))
            .collect();
        let mut available = 0;
        let mut i = 0;
        while i < makers.len() {
            let price = makers[i].price;
            let level: Vec<&Order> = makers[i..].iter().take_while(|m| m.price == price).copied().collect();
            i += level.len();
            let stopping_own = match taker.stp {
                StpMode::CancelOldest => None,
                StpMode::CancelNewest | StpMode::CancelBoth => {
                    level.iter().position(|m| m.account == taker.account)
                }
            };
            match stopping_own {
                Some(k) => return available + level[..k].iter().map(|m| m.visible).sum::<Qty>(),
                None => {
                    available +=
                        level.iter().filter(|m| m.account != taker.account).map(|m| m.leaves()).sum::<Qty>()
                }
            }
        }
        available
    }

    /// "collect every waiting stop of that symbol whose condition holds against the last trade
    /// price ... in acceptance (order id) order; all of them leave the stop list at once; then
    /// for each in that order emit Triggered and match it ... Then collect again".
    fn run_stops(&mut self, symbol: SymbolId) {
        loop {
            let Some(last) = self.last_trade.get(symbol.index()).copied().flatten() else {
                return;
            };
            let holds = |o: &Order| {
                o.symbol == symbol
                    && match (o.side, o.stop) {
                        (Side::Buy, Some(stop)) => last >= stop,
                        (Side::Sell, Some(stop)) => last <= stop,
                        (_, None) => unreachable!("a waiting stop has a stop price"),
                    }
            };
            let mut triggered: Vec<Order> = self.stops.iter().filter(|o| holds(o)).cloned().collect();
            if triggered.is_empty() {
                return;
            }
            self.stops.retain(|o| !holds(o));
            triggered.sort_by_key(|o| o.order_id);
            for mut o in triggered {
                self.emit(EventKind::Triggered {
                    account: o.account,
                    id: o.id,
                    symbol: o.symbol,
                    order_id: o.order_id,
                });
                o.stop = None;
                self.match_aggressor(o);
            }
        }
    }

    // ---- cancel -----------------------------------------------------------------------------

    fn cancel(&mut self, c: &CancelOrder) {
        if self.spec(c.symbol).is_none() {
            self.reject(c.account, c.id, c.symbol, RejectReason::UnknownSymbol);
            return;
        }
        let is_it = |o: &Order| o.account == c.account && o.symbol == c.symbol && o.id == c.id;
        let order = if let Some(i) = self.resting.iter().position(is_it) {
            self.resting.remove(i)
        } else if let Some(i) = self.stops.iter().position(is_it) {
            self.stops.remove(i)
        } else {
            self.reject(c.account, c.id, c.symbol, RejectReason::UnknownOrder);
            return;
        };
        self.emit_canceled(&order, CancelReason::User);
    }

    // ---- replace ----------------------------------------------------------------------------

    fn replace(&mut self, r: &ReplaceOrder) {
        if let Err(reason) = self.check_replace(r) {
            self.reject(r.account, r.id, r.symbol, reason);
            return;
        }
        let is_it = |o: &Order| o.account == r.account && o.symbol == r.symbol && o.id == r.orig_id;
        let new_price = |o: &Order, spec: &SymbolSpec| match (o.ord_type, r.price) {
            (OrdType::Limit, Some(units)) => spec.units_to_ticks(units).expect("checked").0,
            // "A market order's price cannot change"; no price keeps the order's price.
            _ => o.price,
        };
        let spec = self.spec(r.symbol).expect("checked").clone();

        // "An untriggered stop can be replaced: price and qty change, it keeps its place among
        // the stops."
        if let Some(i) = self.stops.iter().position(is_it) {
            let stop = &mut self.stops[i];
            stop.price = new_price(stop, &spec);
            stop.qty = r.qty;
            stop.id = r.id;
            let stop = stop.clone();
            self.emit_replaced(&stop, r.orig_id);
            self.run_stops(r.symbol);
            return;
        }

        let i = self.resting.iter().position(is_it).expect("checked");
        let price = new_price(&self.resting[i], &spec);
        let old = self.resting[i].clone();
        if r.qty <= old.filled {
            // "Replaced { leaves_qty: 0 } and the order leaves the book (it is done)."
            let mut done = self.resting.remove(i);
            done.id = r.id;
            done.price = price;
            done.qty = r.qty;
            done.filled = r.qty;
            self.emit_replaced(&done, r.orig_id);
        } else if price == old.price && r.qty <= old.qty {
            // Priority kept; an iceberg's visible slice is capped at the new leaves.
            let o = &mut self.resting[i];
            o.id = r.id;
            o.qty = r.qty;
            o.visible = o.visible.min(o.leaves());
            let o = o.clone();
            self.emit_replaced(&o, r.orig_id);
        } else {
            // Leaves its level, matches again as the aggressor, rest to the back of the new level.
            let mut o = self.resting.remove(i);
            o.id = r.id;
            o.qty = r.qty;
            o.price = price;
            self.emit_replaced(&o, r.orig_id);
            self.match_aggressor(o);
            self.run_stops(r.symbol);
        }
    }

    fn emit_replaced(&mut self, o: &Order, orig_id: ClOrdId) {
        self.emit(EventKind::Replaced {
            account: o.account,
            orig_id,
            id: o.id,
            symbol: o.symbol,
            order_id: o.order_id,
            price: Price(o.price),
            qty: o.qty,
            leaves_qty: o.leaves(),
        });
    }

    /// The checks of SEMANTICS.md "Replace", in its order.
    fn check_replace(&self, r: &ReplaceOrder) -> Result<(), RejectReason> {
        let spec = self.spec(r.symbol).ok_or(RejectReason::UnknownSymbol)?;
        if self.halted[r.symbol.index()] {
            return Err(RejectReason::Halted);
        }
        let order = self
            .resting
            .iter()
            .chain(self.stops.iter())
            .find(|o| o.account == r.account && o.symbol == r.symbol && o.id == r.orig_id)
            .ok_or(RejectReason::UnknownOrder)?;
        if r.qty == 0 || !in_lots(r.qty, spec.lot) {
            return Err(RejectReason::BadQty);
        }
        let mut price = order.price;
        if let (OrdType::Limit, Some(units)) = (order.ord_type, r.price) {
            price = spec.units_to_ticks(units).ok_or(RejectReason::BadPriceTick)?.0;
        }
        if r.id != r.orig_id && self.id_is_live(r.account, r.id) {
            return Err(RejectReason::DuplicateId);
        }
        if order.post_only && self.would_take(r.symbol, order.side, price) {
            return Err(RejectReason::WouldTake);
        }
        // "the order would move to a new level of a full ladder". Read with the engine: a level
        // the move leaves empty does not count (SEMANTICS.md does not say).
        // An order that a replace ends (qty <= filled) moves nowhere.
        let moves = order.stop.is_none() && r.qty > order.filled && price != order.price;
        if moves && !self.level_exists(r.symbol, order.side, price) {
            let alone = !self.resting.iter().any(|o| {
                o.symbol == order.symbol
                    && o.side == order.side
                    && o.price == order.price
                    && o.order_id != order.order_id
            });
            if self.level_count(r.symbol, order.side) - usize::from(alone) >= self.levels_per_side_max {
                return Err(RejectReason::BookFull);
            }
        }
        Ok(())
    }

    // ---- mass cancel, halt ------------------------------------------------------------------

    /// "Every live order of the account (resting and stops) on the symbol, or on all symbols,
    /// is Canceled { reason: mass_cancel }, by symbol id then order id."
    fn cancel_all(&mut self, account: AccountId, symbol: Option<SymbolId>) {
        let hit = |o: &Order| o.account == account && symbol.is_none_or(|s| o.symbol == s);
        let mut gone: Vec<Order> =
            self.resting.iter().chain(self.stops.iter()).filter(|o| hit(o)).cloned().collect();
        self.resting.retain(|o| !hit(o));
        self.stops.retain(|o| !hit(o));
        gone.sort_by_key(|o| (o.symbol, o.order_id));
        for o in gone {
            self.emit_canceled(&o, CancelReason::MassCancel);
        }
    }

    /// "Emit TradingStatus." A symbol that is not listed is ignored: no event (SEMANTICS.md is
    /// silent; the engine reads it the same way).
    fn set_halted(&mut self, symbol: SymbolId, halted: bool) {
        if let Some(h) = self.halted.get_mut(symbol.index()) {
            *h = halted;
            self.emit(EventKind::TradingStatus { symbol, halted });
        }
    }
}
