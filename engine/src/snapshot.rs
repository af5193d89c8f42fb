//! Engine snapshots: the whole matching state as bytes, and back.
//!
//! A snapshot holds what events depend on: counters, per-symbol last trade and halt flag, and
//! every live order with all its fields, resting orders level by level in queue priority and
//! stops in acceptance order. Slot numbers are not kept: nothing observable depends on them
//! (mass cancels sort by order id, expiries by (expire_ts, order id)), so a restored engine
//! emits the same events as the original from the same commands.
//!
//! Layout (little endian): magic, version, counters, symbol count, then per symbol its spec,
//! state and three order lists (bids, asks, stops), each order list prefixed by its length and
//! each resting order carrying its level price. A CRC is the journal's business, not this one's.

use crate::engine::Engine;
use crate::order::{Order, OrderState, NIL};
use crate::types::{AccountId, ClOrdId, OrdType, OrderId, Price, Side, StpMode, SymbolId, Tif};
use crate::EngineConfig;

const MAGIC: &[u8; 8] = b"EXSNAP01";

/// Why a snapshot could not be restored.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SnapshotError {
    /// The bytes end before the snapshot does.
    #[error("snapshot truncated at byte {0}")]
    Truncated(usize),
    /// Not a snapshot, or a version this build does not read.
    #[error("not an engine snapshot (bad magic or version)")]
    BadMagic,
    /// The snapshot's symbols differ from the configured ones.
    #[error("snapshot symbol {index} is {found:?}, configuration has {expected:?}")]
    SymbolMismatch {
        /// Symbol index.
        index: usize,
        /// Name (and tick/lot) in the snapshot.
        found: String,
        /// Name (and tick/lot) in the configuration.
        expected: String,
    },
    /// A field holds a value no engine writes.
    #[error("snapshot field {0} is invalid")]
    Invalid(&'static str),
    /// The snapshot holds more orders or levels than the configured bounds.
    #[error("snapshot does not fit the configured bounds ({0})")]
    TooBig(&'static str),
}

struct Writer<'a>(&'a mut Vec<u8>);

impl Writer<'_> {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, v: &[u8]) {
        self.u32(v.len() as u32);
        self.0.extend_from_slice(v);
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], SnapshotError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or(SnapshotError::Truncated(self.pos))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8, SnapshotError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, SnapshotError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn u64(&mut self) -> Result<u64, SnapshotError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    fn i64(&mut self) -> Result<i64, SnapshotError> {
        Ok(i64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    fn bytes(&mut self) -> Result<&'a [u8], SnapshotError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

fn write_order(w: &mut Writer<'_>, o: &Order, id: &ClOrdId) {
    w.u64(o.order_id.0);
    w.u32(o.account.0);
    w.u8(match o.side {
        Side::Buy => 0,
        Side::Sell => 1,
    });
    w.u8(match o.ord_type {
        OrdType::Market => 0,
        OrdType::Limit => 1,
    });
    w.u8(match o.tif {
        Tif::Gtc => 0,
        Tif::Ioc => 1,
        Tif::Fok => 2,
        Tif::Gtd => 3,
    });
    w.u8(match o.stp {
        StpMode::CancelNewest => 0,
        StpMode::CancelOldest => 1,
        StpMode::CancelBoth => 2,
    });
    w.u8(u8::from(o.post_only));
    w.i64(o.price.0);
    w.i64(o.stop_price.0);
    w.u64(o.leaves);
    w.u64(o.visible);
    w.u64(o.filled);
    w.u64(o.display);
    w.u64(o.expire_ts);
    w.bytes(id.as_bytes());
}

fn read_order(r: &mut Reader<'_>, symbol: SymbolId) -> Result<(Order, ClOrdId), SnapshotError> {
    let order_id = OrderId(r.u64()?);
    let account = AccountId(r.u32()?);
    let side = match r.u8()? {
        0 => Side::Buy,
        1 => Side::Sell,
        _ => return Err(SnapshotError::Invalid("side")),
    };
    let ord_type = match r.u8()? {
        0 => OrdType::Market,
        1 => OrdType::Limit,
        _ => return Err(SnapshotError::Invalid("type")),
    };
    let tif = match r.u8()? {
        0 => Tif::Gtc,
        1 => Tif::Ioc,
        2 => Tif::Fok,
        3 => Tif::Gtd,
        _ => return Err(SnapshotError::Invalid("tif")),
    };
    let stp = match r.u8()? {
        0 => StpMode::CancelNewest,
        1 => StpMode::CancelOldest,
        2 => StpMode::CancelBoth,
        _ => return Err(SnapshotError::Invalid("stp")),
    };
    let post_only = match r.u8()? {
        0 => false,
        1 => true,
        _ => return Err(SnapshotError::Invalid("post_only")),
    };
    let price = Price(r.i64()?);
    let mut order = Order::new(order_id, account, symbol, side, ord_type, tif, price, 0);
    order.stp = stp;
    order.post_only = post_only;
    order.stop_price = Price(r.i64()?);
    order.leaves = r.u64()?;
    order.visible = r.u64()?;
    order.filled = r.u64()?;
    order.display = r.u64()?;
    order.expire_ts = r.u64()?;
    if order.leaves == 0 || order.visible == 0 || order.visible > order.leaves {
        return Err(SnapshotError::Invalid("order quantities"));
    }
    let id = ClOrdId::from_bytes(r.bytes()?).map_err(|_| SnapshotError::Invalid("client id"))?;
    Ok((order, id))
}

impl Engine {
    /// Appends a snapshot of the whole matching state to `out`. Runs between commands.
    pub fn write_snapshot(&self, out: &mut Vec<u8>) {
        let mut w = Writer(out);
        w.0.extend_from_slice(MAGIC);
        w.u64(self.next_order_id.0);
        w.u64(self.next_event_seq);
        w.u64(self.command_seq);
        w.u64(self.command_ts);
        w.u32(self.books.len() as u32);
        for book in &self.books {
            w.bytes(book.spec.name.as_bytes());
            w.i64(book.spec.tick_units.get());
            w.u64(book.spec.lot);
            match book.last_trade {
                None => w.u8(0),
                Some(p) => {
                    w.u8(1);
                    w.i64(p.0);
                }
            }
            w.u8(u8::from(book.halted));
            for side in [Side::Buy, Side::Sell] {
                let count: usize =
                    book.ladder(side).iter_best_first().map(|(_, l)| self.levels.get(l).count as usize).sum();
                w.u64(count as u64);
                for (_, level) in book.ladder(side).iter_best_first() {
                    let mut slot = self.levels.get(level).head;
                    while slot != NIL {
                        let o = self.orders.get(slot);
                        write_order(&mut w, o, &self.orders.cl_ord_id(slot));
                        slot = o.next;
                    }
                }
            }
            let mut stops = 0u64;
            let mut slot = book.stops_head;
            while slot != NIL {
                stops += 1;
                slot = self.orders.get(slot).next;
            }
            w.u64(stops);
            let mut slot = book.stops_head;
            while slot != NIL {
                let o = self.orders.get(slot);
                write_order(&mut w, o, &self.orders.cl_ord_id(slot));
                slot = o.next;
            }
        }
    }

    /// Rebuilds an engine from a snapshot made by [`Engine::write_snapshot`], with the given
    /// bounds and symbols (which must be the snapshot's symbols, in the same order).
    pub fn from_snapshot(config: EngineConfig, bytes: &[u8]) -> Result<Engine, SnapshotError> {
        let mut r = Reader { bytes, pos: 0 };
        if r.take(MAGIC.len())? != MAGIC {
            return Err(SnapshotError::BadMagic);
        }
        let mut engine = Engine::new(config);
        engine.next_order_id = OrderId(r.u64()?);
        engine.next_event_seq = r.u64()?;
        engine.command_seq = r.u64()?;
        engine.command_ts = r.u64()?;
        let symbols = r.u32()? as usize;
        if symbols != engine.books.len() {
            return Err(SnapshotError::SymbolMismatch {
                index: symbols.min(engine.books.len()),
                found: format!("{symbols} symbols"),
                expected: format!("{} symbols", engine.books.len()),
            });
        }
        for index in 0..symbols {
            let name = r.bytes()?;
            let tick = r.i64()?;
            let lot = r.u64()?;
            let spec = &engine.books[index].spec;
            if name != spec.name.as_bytes() || tick != spec.tick_units.get() || lot != spec.lot {
                return Err(SnapshotError::SymbolMismatch {
                    index,
                    found: format!("{} tick {tick} lot {lot}", String::from_utf8_lossy(name)),
                    expected: format!("{} tick {} lot {}", spec.name, spec.tick_units, spec.lot),
                });
            }
            engine.books[index].last_trade = match r.u8()? {
                0 => None,
                1 => Some(Price(r.i64()?)),
                _ => return Err(SnapshotError::Invalid("last trade flag")),
            };
            engine.books[index].halted = r.u8()? == 1;
            for side in [Side::Buy, Side::Sell] {
                let count = r.u64()?;
                let mut last_price = None;
                for _ in 0..count {
                    let (order, id) = read_order(&mut r, SymbolId(index as u32))?;
                    if order.side != side || order.ord_type != OrdType::Limit {
                        return Err(SnapshotError::Invalid("resting order side or type"));
                    }
                    // Levels come best first; a price must not go back to a better one.
                    if let Some(prev) = last_price {
                        let worse_or_same = match side {
                            Side::Buy => order.price <= prev,
                            Side::Sell => order.price >= prev,
                        };
                        if !worse_or_same {
                            return Err(SnapshotError::Invalid("level order"));
                        }
                    }
                    last_price = Some(order.price);
                    let slot = engine.restore_slot(order, id)?;
                    let book = &engine.books[index];
                    if book.ladder(side).find(order.price).is_none()
                        && (book.ladder(side).is_full() || engine.levels.is_full())
                    {
                        return Err(SnapshotError::TooBig("price levels"));
                    }
                    let mut sink = NoEvents;
                    engine.rest(slot, &mut sink);
                }
            }
            let stops = r.u64()?;
            for _ in 0..stops {
                let (order, id) = read_order(&mut r, SymbolId(index as u32))?;
                let slot = engine.restore_slot(order, id)?;
                engine.push_stop(slot);
            }
        }
        if r.pos != bytes.len() {
            return Err(SnapshotError::Invalid("trailing bytes"));
        }
        Ok(engine)
    }

    fn restore_slot(&mut self, order: Order, id: ClOrdId) -> Result<u32, SnapshotError> {
        if self.orders.is_full() {
            return Err(SnapshotError::TooBig("orders"));
        }
        let hash = crate::id_index::id_hash(order.account, &id);
        if self.ids.find_order(hash, order.account, &id, &self.orders).is_some() {
            return Err(SnapshotError::Invalid("duplicate client id"));
        }
        let mut order = order;
        order.state = OrderState::Active;
        order.id_tag = crate::id_index::OrderIds::tag(hash);
        Ok(self.orders.alloc(order, id))
    }
}

/// A sink for restore paths that must not emit (resting never emits unless a bound is hit,
/// which `from_snapshot` checks first).
struct NoEvents;

impl crate::EventSink for NoEvents {
    fn event(&mut self, event: &crate::Event) {
        debug_assert!(false, "restoring a snapshot emitted {event:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Command, CommandHeader, CommandKind, Event, NewOrder, PriceUnits};
    use rand::{rngs::SmallRng, Rng, SeedableRng};

    fn random_command(rng: &mut SmallRng, seq: u64) -> Command {
        let side = if rng.gen_bool(0.5) { Side::Buy } else { Side::Sell };
        let account = AccountId(rng.gen_range(0..4));
        let id = ClOrdId::from_str(&format!("o{}", rng.gen_range(0..60))).unwrap();
        let mut new = NewOrder::limit(
            account,
            SymbolId(rng.gen_range(0..2)),
            id,
            side,
            rng.gen_range(95..105) * 1_000_000,
            rng.gen_range(1..20),
        );
        match rng.gen_range(0..10) {
            0 => new.display_qty = Some(new.qty.div_ceil(3)),
            1 => new.stop_price = Some(PriceUnits(rng.gen_range(95..105) * 1_000_000)),
            2 => {
                new.tif = Tif::Gtd;
                new.expire_ts = Some(seq * 10 + rng.gen_range(0..200));
            }
            _ => {}
        }
        let kind = match rng.gen_range(0..10) {
            0..=5 => CommandKind::New(new),
            6..=7 => {
                CommandKind::Cancel(crate::CancelOrder { account, symbol: new.symbol, id, request_id: None })
            }
            _ => CommandKind::Replace(crate::ReplaceOrder {
                account,
                symbol: new.symbol,
                orig_id: id,
                id: ClOrdId::from_str(&format!("o{}", rng.gen_range(0..60))).unwrap(),
                price: Some(PriceUnits(rng.gen_range(95..105) * 1_000_000)),
                qty: rng.gen_range(1..20),
            }),
        };
        Command { header: CommandHeader { seq, ts: seq * 10 }, kind }
    }

    #[test]
    fn restored_engine_behaves_identically() {
        for seed in 0..20 {
            let mut rng = SmallRng::seed_from_u64(seed);
            let mut original = Engine::new(EngineConfig::default());
            let commands: Vec<Command> = (1..=400).map(|s| random_command(&mut rng, s)).collect();
            let mut sink: Vec<Event> = Vec::new();
            for c in &commands[..200] {
                original.process(c, &mut sink);
            }
            let mut bytes = Vec::new();
            original.write_snapshot(&mut bytes);
            let mut restored = Engine::from_snapshot(EngineConfig::default(), &bytes).unwrap();
            let mut again = Vec::new();
            restored.write_snapshot(&mut again);
            assert_eq!(bytes, again, "seed {seed}: snapshot of a restore differs");
            let (mut a, mut b): (Vec<Event>, Vec<Event>) = (Vec::new(), Vec::new());
            for c in &commands[200..] {
                original.process(c, &mut a);
                restored.process(c, &mut b);
            }
            assert_eq!(a, b, "seed {seed}");
            for s in 0..3 {
                assert_eq!(original.book_snapshot(SymbolId(s)), restored.book_snapshot(SymbolId(s)));
            }
        }
    }

    #[test]
    fn bad_snapshots_are_errors_not_panics() {
        let mut engine = Engine::new(EngineConfig::default());
        let mut sink = Vec::new();
        let mut rng = SmallRng::seed_from_u64(7);
        for s in 1..100 {
            engine.process(&random_command(&mut rng, s), &mut sink);
        }
        let mut bytes = Vec::new();
        engine.write_snapshot(&mut bytes);
        assert_eq!(
            Engine::from_snapshot(EngineConfig::default(), b"nope").err(),
            Some(SnapshotError::Truncated(0))
        );
        for cut in [8, 20, bytes.len() / 2, bytes.len() - 1] {
            assert!(Engine::from_snapshot(EngineConfig::default(), &bytes[..cut]).is_err(), "cut {cut}");
        }
        for i in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[i] ^= 0x5a;
            let _ = Engine::from_snapshot(EngineConfig::default(), &flipped); // must not panic
        }
        let other =
            EngineConfig { symbols: vec![crate::SymbolSpec::new("X", 1, 1)], ..EngineConfig::default() };
        assert!(matches!(Engine::from_snapshot(other, &bytes), Err(SnapshotError::SymbolMismatch { .. })));
    }
}
