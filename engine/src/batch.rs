//! A batch entry point that looks ahead: while one command is applied, the memory the next ones
//! will touch is already on its way into the cache.
//!
//! In a deep book (100k resting orders and more) a cancel or move is a chain of dependent cache
//! misses: the id index bucket, then the order and its client id, then its queue neighbours and
//! its level, then the tail order of the level it moves to. [`Engine::process`] takes one command
//! at a time, so each miss waits for the one before it. [`Engine::process_batch`] runs the same
//! code on each command in turn but first issues prefetches for the commands behind it, one link
//! of the chain per stage: the index bucket for the command [`INDEX_AHEAD`] places ahead, the
//! order and client id for the one [`ORDER_AHEAD`] ahead (its bucket arrived meanwhile), the
//! neighbours and levels for the one [`LINKS_AHEAD`] ahead.
//!
//! A prefetch is only a hint: it reads state that the commands in between may still change, and
//! a stale or wrong guess costs a wasted load, never a wrong result. The events are exactly those
//! of calling [`Engine::process`] on each command in order (checked against the reference model
//! in `tests/proptest_model.rs`).

use crate::command::{Command, CommandKind};
use crate::engine::Engine;
use crate::event::EventSink;
use crate::id_index::id_hash;
use crate::order::NIL;
use crate::types::{Price, Side};

/// Stage distances in commands. Each stage needs the line the previous stage fetched, and a
/// line from DRAM takes about as long as one or two commands at depth, so stages are two
/// commands apart (measured with `throughput --scenarios ec-1m`, see BENCHMARKS.md).
pub(crate) const LINKS_AHEAD: usize = 2;
/// See [`LINKS_AHEAD`].
pub(crate) const ORDER_AHEAD: usize = 4;
/// See [`LINKS_AHEAD`].
pub(crate) const INDEX_AHEAD: usize = 6;
/// How far ahead the command itself is fetched, for stage 1 to read.
pub(crate) const COMMAND_AHEAD: usize = 12;

/// Order slots in use below which `process_batch` does not look ahead: about 1.5 MB of orders,
/// client ids and index, the size of this machine's L2 caches, so such a book stays cached.
pub(crate) const PREFETCH_ORDERS_MIN: u32 = 8 * 1024;

/// Asks the CPU to bring every cache line of `value` into all cache levels.
#[inline(always)]
pub(crate) fn prefetch<T>(value: &T) {
    let start = (value as *const T).cast::<u8>();
    let size = core::mem::size_of::<T>();
    // A value may straddle lines: its first byte, every 64 bytes on, and its last byte.
    let mut offset = 0;
    while offset < size {
        prefetch_line(start.wrapping_add(offset));
        offset += 64;
    }
    // A value no larger than its alignment (a u64, a 16-byte bucket) never straddles a line,
    // nor does one aligned to lines and made of whole lines (an order).
    let align = core::mem::align_of::<T>();
    let whole_lines = align.is_multiple_of(64) && size.is_multiple_of(64);
    if size > align && !whole_lines {
        prefetch_line(start.wrapping_add(size - 1));
    }
}

#[inline(always)]
fn prefetch_line(at: *const u8) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    // SAFETY: PREFETCHT0 never faults, whatever the address, and has no effect the program can
    // observe; here the address lies within a live reference anyway.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(at.cast::<i8>());
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    let _ = at;
}

/// What stage 1 worked out for one command ahead, kept for the later stages so they need not
/// hash the id or convert the price again.
#[derive(Clone, Copy, Default)]
struct Ahead {
    /// `id_hash` of the order the command names (a cancel's or replace's original id).
    hash: Option<u64>,
    /// Where the command may rest: a new limit order's or a replace's price in ticks.
    price: Option<Price>,
    /// The side a replace's order is guessed to be on (`None`: either), see `replace_side`.
    side: Option<Side>,
}

/// Ring of [`Ahead`] entries, indexed by command position modulo its length (a power of two
/// longer than [`INDEX_AHEAD`], so an entry lives until stage 3 has read it).
const AHEAD_RING: usize = 8;
const _: () = assert!(AHEAD_RING > INDEX_AHEAD && AHEAD_RING.is_power_of_two());
const _: () = assert!(INDEX_AHEAD > ORDER_AHEAD && ORDER_AHEAD > LINKS_AHEAD);

impl Engine {
    /// Applies `commands` in order, writing their events to `sink`: exactly what calling
    /// [`Engine::process`] on each would do, faster on a deep book because the memory of the
    /// next commands is prefetched while the current one runs (see the module docs).
    pub fn process_batch<S: EventSink>(&mut self, commands: &[Command], sink: &mut S) {
        self.process_batch_with(commands, sink, |_, _| true);
    }

    /// [`Engine::process_batch`] with a gate: `admit(command, sink)` runs just before each
    /// command is applied, and when it returns false the batch stops there, that command not
    /// applied. Returns how many commands were applied. A write-ahead journal stages each
    /// command in `admit` (so it is journaled before the engine applies it, and a failed write
    /// stops the batch at that command), and the sink given to `admit` is the one the events go
    /// to, so the gate can consult it (a journaling sink that lost its journal).
    pub fn process_batch_with<S: EventSink>(
        &mut self,
        commands: &[Command],
        sink: &mut S,
        mut admit: impl FnMut(&Command, &mut S) -> bool,
    ) -> usize {
        let mut ring = [Ahead::default(); AHEAD_RING];
        let mut looking_ahead = false;
        for (i, command) in commands.iter().enumerate() {
            // A small book lives in the cache already: the look-ahead would only cost
            // instructions (about a quarter more at 1k resting orders, by callgrind). Slots in
            // use only grow, so once deep, deep for the rest of the batch.
            if !looking_ahead && self.orders.high_water() >= PREFETCH_ORDERS_MIN {
                looking_ahead = true;
                for (k, ahead) in commands.iter().enumerate().skip(i).take(INDEX_AHEAD) {
                    ring[k % AHEAD_RING] = self.prefetch_index(ahead);
                }
            }
            if looking_ahead {
                self.look_ahead(commands, i, &mut ring);
            } else if let Some(ahead) = commands.get(i + COMMAND_AHEAD) {
                // A small book is cached, the command stream is not: its lines arrive from
                // memory (a TLB miss each new page) unless fetched ahead.
                prefetch(ahead);
            }
            if !admit(command, sink) {
                return i;
            }
            self.process(command, sink);
        }
        commands.len()
    }

    /// The look-ahead of [`Engine::process_batch`] for a caller that cannot hand over a batch,
    /// because it learns each command only after the one before it has run: the gateway's
    /// router admits each request against the exposure and order state the previous command's
    /// events left, so it knows the requests behind the current one but not yet which of them
    /// will become commands. Called just before the next command is processed, with the
    /// commands expected to follow it (`upcoming[0]` right after it), it issues the same three
    /// stages at the same distances as `process_batch` does at that point. It only reads and
    /// prefetches: a guess that never comes (a request refused by risk) costs loads, never a
    /// different result. On a book below [`PREFETCH_ORDERS_MIN`] order slots it does nothing.
    pub fn prefetch_upcoming(&self, upcoming: &[Command]) {
        if self.orders.high_water() < PREFETCH_ORDERS_MIN {
            return;
        }
        // `upcoming[k]` is the command k + 1 places behind the next one. Stages 2 and 3 need
        // what stage 1 worked out; without `process_batch`'s ring between calls, it is worked
        // out again (its prefetches then hit lines already on their way: no cost to speak of).
        if let Some(ahead) = upcoming.get(INDEX_AHEAD - 1) {
            self.prefetch_index(ahead);
        }
        if let Some(ahead) = upcoming.get(ORDER_AHEAD - 1) {
            let stage_1 = self.prefetch_index(ahead);
            self.prefetch_order(ahead, &stage_1);
        }
        if let Some(ahead) = upcoming.get(LINKS_AHEAD - 1) {
            let stage_1 = self.prefetch_index(ahead);
            self.prefetch_links(ahead, &stage_1);
        }
    }

    /// The three stages for the commands ahead of the one at `i`.
    #[inline(always)]
    fn look_ahead(&self, commands: &[Command], i: usize, ring: &mut [Ahead; AHEAD_RING]) {
        // The commands themselves: stage 1 reads them before the hardware's stream prefetcher
        // has them (a move is about 120 bytes, two lines).
        if let Some(ahead) = commands.get(i + COMMAND_AHEAD) {
            prefetch(ahead);
        }
        if let Some(ahead) = commands.get(i + INDEX_AHEAD) {
            ring[(i + INDEX_AHEAD) % AHEAD_RING] = self.prefetch_index(ahead);
        }
        if let Some(ahead) = commands.get(i + ORDER_AHEAD) {
            self.prefetch_order(ahead, &ring[(i + ORDER_AHEAD) % AHEAD_RING]);
        }
        if let Some(ahead) = commands.get(i + LINKS_AHEAD) {
            self.prefetch_links(ahead, &ring[(i + LINKS_AHEAD) % AHEAD_RING]);
        }
    }

    /// Stage 1: the id index buckets the command will probe (its order's, and a new id's) and
    /// the price-index bucket of the level it may rest at. A replace's side is in an order not
    /// yet read: it is guessed from the best prices (`replace_side`), both sides when unsure.
    /// Fetching both always cost one line per move that no command used (ec-1m 1.03×).
    fn prefetch_index(&self, command: &Command) -> Ahead {
        let mut ahead = Ahead::default();
        match &command.kind {
            CommandKind::New(new) => {
                self.ids.prefetch_home(id_hash(new.account, &new.id));
                let Some(book) = self.books.get(new.symbol.index()) else { return ahead };
                ahead.price = book.units_to_ticks(new.price);
                if let Some(price) = ahead.price {
                    book.ladder(new.side).prefetch_index(price);
                }
            }
            CommandKind::Cancel(cancel) => {
                let hash = id_hash(cancel.account, &cancel.id);
                self.ids.prefetch_home(hash);
                ahead.hash = Some(hash);
            }
            CommandKind::Replace(replace) => {
                let hash = id_hash(replace.account, &replace.orig_id);
                self.ids.prefetch_home(hash);
                ahead.hash = Some(hash);
                if replace.id != replace.orig_id {
                    self.ids.prefetch_home(id_hash(replace.account, &replace.id));
                }
                let Some(book) = self.books.get(replace.symbol.index()) else { return ahead };
                ahead.price = replace.price.and_then(|units| book.units_to_ticks(units));
                if let Some(price) = ahead.price {
                    ahead.side = replace_side(book, price);
                    if ahead.side != Some(Side::Sell) {
                        book.bids.prefetch_index(price);
                    }
                    if ahead.side != Some(Side::Buy) {
                        book.asks.prefetch_index(price);
                    }
                }
            }
            CommandKind::CancelAll { .. } | CommandKind::Halt { .. } | CommandKind::Resume { .. } => {}
        }
        ahead
    }

    /// Stage 2: the order (and client id) a cancel or replace names, through its bucket, and
    /// the level a new order or replace may join, through its price-index bucket.
    fn prefetch_order(&self, command: &Command, ahead: &Ahead) {
        let (symbol, sides): (_, &[Side]) = match &command.kind {
            CommandKind::New(new) => (new.symbol, core::slice::from_ref(&new.side)),
            CommandKind::Cancel(cancel) => (cancel.symbol, &[]),
            CommandKind::Replace(replace) => match &ahead.side {
                Some(side) => (replace.symbol, core::slice::from_ref(side)),
                None => (replace.symbol, &[Side::Buy, Side::Sell]),
            },
            _ => return,
        };
        if let Some(slot) = ahead.hash.and_then(|hash| self.ids.candidate(hash)) {
            self.orders.prefetch(slot);
        }
        let (Some(book), Some(price)) = (self.books.get(symbol.index()), ahead.price) else { return };
        for &side in sides {
            if let Some(level) = book.ladder(side).find(price) {
                self.levels.prefetch(level);
            }
        }
    }

    /// Stage 3: what unlinking the named order touches (its neighbours and level) and, for a
    /// move or a new order, the tail order of the level it will join (resting appends there).
    fn prefetch_links(&self, command: &Command, ahead: &Ahead) {
        let (symbol, side) = match &command.kind {
            CommandKind::New(new) => (new.symbol, Some(new.side)),
            CommandKind::Cancel(cancel) => (cancel.symbol, None),
            CommandKind::Replace(replace) => (replace.symbol, None),
            _ => return,
        };
        let mut side = side;
        let named = ahead.hash.and_then(|hash| self.ids.candidate(hash));
        if let Some(o) = named.and_then(|slot| self.orders.try_get(slot)) {
            // Unlinking writes one field of each neighbour: fetch that field's line only.
            if o.prev != NIL {
                self.orders.prefetch_field(o.prev, |n| &n.next);
            }
            if o.next != NIL {
                self.orders.prefetch_field(o.next, |n| &n.prev);
            }
            self.levels.prefetch(o.level);
            side = side.or(Some(o.side));
        }
        let (Some(book), Some(price), Some(side)) = (self.books.get(symbol.index()), ahead.price, side)
        else {
            return;
        };
        let tail = book.ladder(side).find(price).and_then(|level| self.levels.try_get(level)).map(|l| l.tail);
        if let Some(tail) = tail.filter(|&t| t != NIL) {
            // Resting behind it writes its `next` only.
            self.orders.prefetch_field(tail, |n| &n.next);
        }
    }
}

/// The side a replace to `price` most likely moves an order on, before the order is read: a bid
/// at or below the best bid, an ask at or above the best ask (an order priced there on the
/// other side would cross). Inside the spread, or with a side empty, `None`: both. A wrong
/// guess costs a prefetch that misses, never a wrong result.
#[inline]
fn replace_side(book: &crate::book::Book, price: Price) -> Option<Side> {
    let bid = book.bids.best().is_some_and(|(best, _)| price <= best);
    let ask = book.asks.best().is_some_and(|(best, _)| price >= best);
    match (bid, ask) {
        (true, false) => Some(Side::Buy),
        (false, true) => Some(Side::Sell),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::{
        AccountId, CancelOrder, ClOrdId, Command, CommandHeader, CommandKind, Engine, EngineConfig, Event,
        NewOrder, PriceUnits, ReplaceOrder, Side, SymbolId, Tif,
    };

    /// A seeded stream over a book deep enough that `process_batch` looks ahead: new orders on
    /// both sides (some crossing, some IOC), cancels and moves of live and of gone ids, so the
    /// prefetch stages meet stale guesses (orders that left or moved since).
    fn deep_stream(resting: usize, commands: usize) -> Vec<Command> {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let cent = crate::PRICE_UNITS_PER_ONE / 100;
        let id = |n: usize| ClOrdId::from_str(&format!("o{n}")).unwrap();
        let mut out = Vec::with_capacity(resting + commands);
        let mut issued = 0;
        for k in 0..resting + commands {
            let r = next();
            let account = AccountId((r % 7) as u32);
            let pick = |r: u64| ((r >> 8) as usize) % issued.max(1);
            let kind = if k < resting || r % 10 < 3 {
                let side = if (r >> 4) % 2 == 0 { Side::Buy } else { Side::Sell };
                // Bids 90.00-100.49, asks 99.50-109.99: the overlap makes some orders cross.
                let ticks = ((r >> 16) % 1050) as i64;
                let cents = if side == Side::Buy { 9_000 + ticks } else { 9_950 + ticks };
                let mut new =
                    NewOrder::limit(account, SymbolId(0), id(issued), side, cents * cent, 1 + (r >> 40) % 9);
                if k >= resting && (r >> 50) % 5 == 0 {
                    new.tif = Tif::Ioc;
                }
                issued += 1;
                CommandKind::New(new)
            } else if r % 10 < 5 {
                let request_id = None;
                CommandKind::Cancel(CancelOrder { account, symbol: SymbolId(0), id: id(pick(r)), request_id })
            } else {
                let orig_id = id(pick(r));
                let new_id = id(issued);
                issued += 1;
                let price = Some(PriceUnits((9_500 + ((r >> 20) % 500) as i64) * cent));
                let replace = ReplaceOrder {
                    account,
                    symbol: SymbolId(0),
                    orig_id,
                    id: new_id,
                    price,
                    qty: 1 + (r >> 40) % 9,
                };
                CommandKind::Replace(replace)
            };
            out.push(Command { header: CommandHeader { seq: k as u64 + 1, ts: k as u64 + 1 }, kind });
        }
        out
    }

    #[test]
    fn replace_side_guesses_from_the_best_prices() {
        use super::replace_side;
        use crate::types::Price;
        let mut engine = Engine::new(EngineConfig::default());
        fn book(e: &Engine) -> &crate::book::Book {
            &e.books[0]
        }
        // Empty book: no guess.
        assert_eq!(replace_side(book(&engine), Price(100)), None);
        let cent = crate::PRICE_UNITS_PER_ONE / 100;
        let mut out: Vec<Event> = Vec::new();
        for (n, (side, cents)) in [(Side::Buy, 100), (Side::Sell, 110)].into_iter().enumerate() {
            let id = ClOrdId::from_str(&format!("r{n}")).unwrap();
            let new = NewOrder::limit(AccountId(1), SymbolId(0), id, side, cents * cent, 1);
            let header = CommandHeader { seq: n as u64 + 1, ts: n as u64 + 1 };
            engine.process(&Command { header, kind: CommandKind::New(new) }, &mut out);
        }
        let ticks = |cents: i64| engine.books[0].units_to_ticks(PriceUnits(cents * cent)).unwrap();
        let (bid, ask, inside, below, above) = (ticks(100), ticks(110), ticks(105), ticks(90), ticks(120));
        assert_eq!(replace_side(book(&engine), bid), Some(Side::Buy));
        assert_eq!(replace_side(book(&engine), below), Some(Side::Buy));
        assert_eq!(replace_side(book(&engine), ask), Some(Side::Sell));
        assert_eq!(replace_side(book(&engine), above), Some(Side::Sell));
        assert_eq!(replace_side(book(&engine), inside), None);
    }

    #[test]
    fn batch_on_a_deep_book_matches_one_command_at_a_time() {
        let resting = 3 * super::PREFETCH_ORDERS_MIN as usize;
        let cmds = deep_stream(resting, 60_000);
        let config = EngineConfig { orders_max: 2 * resting, ..EngineConfig::default() };
        let (mut single, mut batched) = (Engine::new(config.clone()), Engine::new(config));
        let mut want: Vec<Event> = Vec::new();
        for cmd in &cmds {
            single.process(cmd, &mut want);
        }
        assert!(single.orders_live() > super::PREFETCH_ORDERS_MIN as usize, "the book must be deep");
        let trades = want.iter().filter(|e| matches!(e.kind, crate::EventKind::Trade { .. })).count();
        let replaced = want.iter().filter(|e| matches!(e.kind, crate::EventKind::Replaced { .. })).count();
        assert!(trades > 1_000 && replaced > 1_000, "{trades} trades, {replaced} replaces");
        let mut got: Vec<Event> = Vec::new();
        // In uneven chunks, so look-ahead windows end and restart mid-stream.
        for chunk in cmds.chunks(4_099) {
            batched.process_batch(chunk, &mut got);
        }
        assert_eq!(got.len(), want.len());
        if let Some(i) = got.iter().zip(&want).position(|(g, w)| g != w) {
            panic!("event {i}: batch {:?}, one at a time {:?}", got[i], want[i]);
        }
        assert_eq!(batched.book_snapshot(SymbolId(0)), single.book_snapshot(SymbolId(0)));
    }

    /// The look-ahead of a caller that submits one command at a time: hints about commands
    /// that come, and about some that never do (every fifth guess is dropped), change nothing.
    #[test]
    fn prefetching_upcoming_commands_changes_no_event() {
        let resting = 2 * super::PREFETCH_ORDERS_MIN as usize;
        let cmds = deep_stream(resting, 20_000);
        let config = EngineConfig { orders_max: 2 * resting, ..EngineConfig::default() };
        let (mut single, mut hinted) = (Engine::new(config.clone()), Engine::new(config));
        let mut want: Vec<Event> = Vec::new();
        for cmd in &cmds {
            single.process(cmd, &mut want);
        }
        let mut got: Vec<Event> = Vec::new();
        for (i, cmd) in cmds.iter().enumerate() {
            let upcoming = &cmds[(i + 1).min(cmds.len())..(i + 9).min(cmds.len())];
            if i % 5 == 0 {
                hinted.prefetch_upcoming(upcoming.get(1..).unwrap_or_default());
            } else {
                hinted.prefetch_upcoming(upcoming);
            }
            hinted.process(cmd, &mut got);
        }
        assert!(single.orders_live() > super::PREFETCH_ORDERS_MIN as usize, "the book must be deep");
        assert!(got == want, "events differ");
        assert_eq!(hinted.book_snapshot(SymbolId(0)), single.book_snapshot(SymbolId(0)));
    }
}
