//! Order storage: a pre-sized pool of order slots addressed by `u32`, with a free list.
//!
//! Slots never move, so a slot number is a stable handle for the life of an order; the id map
//! and the level queues store slot numbers, not pointers. An [`Order`] is two cache lines,
//! aligned: the first holds what matching, resting and unlinking read and write (prices,
//! quantities, links, owner, flags), the second what events and the rarer paths read (engine
//! order id, stop price, iceberg slice, expiry) and the client id. A move touches the first
//! line of its order and of each queue neighbour, and the second line of its own order only.

use crate::types::{
    AccountId, ClOrdId, OrdType, OrderId, Price, Qty, Side, StpMode, SymbolId, Tif, CL_ORD_ID_LEN_MAX,
};

/// "No slot": the end of a list.
pub(crate) const NIL: u32 = u32::MAX;

/// Where an order is in its life.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum OrderState {
    /// The slot is free.
    Free,
    /// Being matched as the incoming order of the current command.
    Active,
    /// In a price level queue.
    Resting,
    /// Waiting in its symbol's stop list.
    Stop,
}

/// One order, with its client id: two cache lines (see the module docs).
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
pub(crate) struct Order {
    // ---- first line: matching, resting, unlinking ----
    /// Limit price in ticks; 0 for a market order.
    pub(crate) price: Price,
    /// Open quantity, hidden part included.
    pub(crate) leaves: Qty,
    /// Open quantity shown in the book (the current slice of an iceberg).
    pub(crate) visible: Qty,
    /// Quantity traded so far.
    pub(crate) filled: Qty,
    /// Previous slot in the level queue or stop list.
    pub(crate) prev: u32,
    /// Next slot in the level queue or stop list.
    pub(crate) next: u32,
    /// Level slot while resting.
    pub(crate) level: u32,
    pub(crate) account: AccountId,
    pub(crate) symbol: SymbolId,
    /// The id index's tag of `id_hash(account, client id)` (its high half), kept so removal
    /// from the index never rehashes the id.
    pub(crate) id_tag: u32,
    pub(crate) side: Side,
    pub(crate) ord_type: OrdType,
    pub(crate) tif: Tif,
    pub(crate) stp: StpMode,
    pub(crate) post_only: bool,
    pub(crate) state: OrderState,
    /// True while the order is in the `(account, id)` map. Orders enter the map only when they
    /// rest or wait as a stop (an IOC that never rests costs no map insert and removal), once:
    /// that is also when a GTD order's expiry is queued.
    pub(crate) indexed: bool,
    /// Length of the client id in `id_bytes`.
    id_len: u8,
    // ---- second line: events, stops, icebergs, expiry, the client id ----
    pub(crate) order_id: OrderId,
    /// Stop trigger in ticks; meaningful only while `state == Stop`.
    pub(crate) stop_price: Price,
    /// Iceberg slice size; 0 for a fully visible order.
    pub(crate) display: Qty,
    /// GTD expiry in nanoseconds; 0 when the order does not expire.
    pub(crate) expire_ts: u64,
    /// The client id's bytes, zero past `id_len`.
    id_bytes: [u8; CL_ORD_ID_LEN_MAX],
}

// Exactly two lines, the split where the module docs say: a growing Order is a cost to notice.
const _: () = assert!(core::mem::size_of::<Order>() == 128);
const _: () = assert!(core::mem::offset_of!(Order, order_id) == 64);

impl Order {
    const FREE: Order = Order {
        order_id: OrderId(0),
        price: Price(0),
        stop_price: Price(0),
        leaves: 0,
        visible: 0,
        filled: 0,
        display: 0,
        expire_ts: 0,
        id_tag: 0,
        prev: NIL,
        next: NIL,
        level: NIL,
        account: AccountId(0),
        symbol: SymbolId(0),
        side: Side::Buy,
        ord_type: OrdType::Limit,
        tif: Tif::Gtc,
        stp: StpMode::CancelNewest,
        post_only: false,
        state: OrderState::Free,
        indexed: false,
        id_len: 0,
        id_bytes: [0; CL_ORD_ID_LEN_MAX],
    };

    /// The client id.
    #[inline]
    pub(crate) fn cl_ord_id(&self) -> ClOrdId {
        ClOrdId::from_raw_parts(self.id_len, self.id_bytes)
    }

    /// Replaces the client id.
    #[inline]
    pub(crate) fn set_cl_ord_id(&mut self, id: &ClOrdId) {
        (self.id_len, self.id_bytes) = id.raw_parts();
    }

    /// True when the client id is `id`.
    #[inline]
    pub(crate) fn has_cl_ord_id(&self, id: &ClOrdId) -> bool {
        let (len, bytes) = id.raw_parts();
        self.id_len == len && self.id_bytes == bytes
    }
}

/// Fixed-capacity pool of order slots.
pub(crate) struct OrderPool {
    orders: Vec<Order>,
    free: Vec<u32>,
    capacity: usize,
}

impl OrderPool {
    /// A pool of `capacity` slots. Memory is reserved once; pages are touched as slots are first
    /// used, so a large bound costs nothing until the book grows into it.
    pub(crate) fn with_capacity(capacity: usize) -> OrderPool {
        assert!(capacity < NIL as usize, "order pool bound must fit a u32 slot");
        let pool =
            OrderPool { orders: Vec::with_capacity(capacity), free: Vec::with_capacity(capacity), capacity };
        // Read at random in a deep book: huge pages spare a TLB miss per read.
        crate::huge_pages::advise(&pool.orders);
        pool
    }

    /// True when no slot is left.
    #[inline]
    pub(crate) fn is_full(&self) -> bool {
        self.free.is_empty() && self.orders.len() == self.capacity
    }

    /// Takes a free slot (caller checked `!is_full()`), storing `order` and its client id.
    #[inline]
    pub(crate) fn alloc(&mut self, mut order: Order, id: ClOrdId) -> u32 {
        order.set_cl_ord_id(&id);
        if let Some(slot) = self.free.pop() {
            self.orders[slot as usize] = order;
            slot
        } else {
            debug_assert!(self.orders.len() < self.capacity);
            let slot = self.orders.len() as u32;
            // Within the reserved capacity: no reallocation.
            self.orders.push(order);
            slot
        }
    }

    /// Returns a slot to the free list.
    #[inline]
    pub(crate) fn free(&mut self, slot: u32) {
        let order = self.get_mut(slot);
        debug_assert!(order.state != OrderState::Free, "double free of order slot {slot}");
        // Only the state: it is what every reader of a slot that may be free looks at (the
        // mass-cancel scan, the expiry heap's liveness check), and `alloc` writes the whole
        // order before the slot is used again. Two lines of `Order::FREE` per order leaving
        // were stores nothing read.
        order.state = OrderState::Free;
        self.free.push(slot);
    }

    /// The order in `slot` if the slot was ever used; for guesses that may be stale.
    #[inline]
    pub(crate) fn try_get(&self, slot: u32) -> Option<&Order> {
        self.orders.get(slot as usize)
    }

    /// Prefetches the order in `slot` (both lines: the client id is in the second).
    #[inline]
    pub(crate) fn prefetch(&self, slot: u32) {
        if let Some(order) = self.orders.get(slot as usize) {
            crate::batch::prefetch(order);
        }
    }

    /// Prefetches only the line holding one field of the order in `slot`.
    #[inline]
    pub(crate) fn prefetch_field<F>(&self, slot: u32, field: impl Fn(&Order) -> &F) {
        if let Some(order) = self.orders.get(slot as usize) {
            crate::batch::prefetch(field(order));
        }
    }

    // The accessors below index without a bounds check. Every slot the engine passes them was
    // handed out by `alloc` (below `orders.len()`, which never shrinks) and then kept in the id
    // index, a level's head or tail, an order's links, the stop list, the expiry heap or the
    // scratch list; `NIL` is compared away before any link is followed. The debug
    // assertion checks this on every access in the tests (the model and property tests run the
    // engine with debug assertions on). Measured: the checks and the length reloads they need
    // after each store were about a tenth of the instructions of a move at 1k resting orders.

    #[inline]
    pub(crate) fn get(&self, slot: u32) -> &Order {
        debug_assert!((slot as usize) < self.orders.len(), "order slot {slot} out of range");
        // SAFETY: `slot < orders.len()`, see the comment above.
        unsafe { self.orders.get_unchecked(slot as usize) }
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, slot: u32) -> &mut Order {
        debug_assert!((slot as usize) < self.orders.len(), "order slot {slot} out of range");
        // SAFETY: `slot < orders.len()`, see the comment above.
        unsafe { self.orders.get_unchecked_mut(slot as usize) }
    }

    #[inline]
    pub(crate) fn cl_ord_id(&self, slot: u32) -> ClOrdId {
        self.get(slot).cl_ord_id()
    }

    /// Slots ever used (live or free): the range a full scan must cover.
    #[inline]
    pub(crate) fn high_water(&self) -> u32 {
        self.orders.len() as u32
    }

    /// Live orders.
    pub(crate) fn live(&self) -> usize {
        self.orders.len() - self.free.len()
    }
}

impl Order {
    /// A fresh order in state `Active` with no links.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        order_id: OrderId,
        account: AccountId,
        symbol: SymbolId,
        side: Side,
        ord_type: OrdType,
        tif: Tif,
        price: Price,
        qty: Qty,
    ) -> Order {
        Order {
            order_id,
            account,
            symbol,
            side,
            ord_type,
            tif,
            price,
            leaves: qty,
            visible: qty,
            state: OrderState::Active,
            ..Order::FREE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "order slot 0 out of range")]
    fn unchecked_access_to_a_slot_never_handed_out_fails_in_debug_builds() {
        let pool = OrderPool::with_capacity(4);
        let _ = pool.get(0);
    }

    #[test]
    fn client_id_lives_in_the_second_line_and_round_trips() {
        let mut pool = OrderPool::with_capacity(4);
        let order = Order::new(
            OrderId(1),
            AccountId(7),
            SymbolId(0),
            Side::Buy,
            OrdType::Limit,
            Tif::Gtc,
            Price(5),
            3,
        );
        let short = ClOrdId::from_str("a").unwrap();
        let long = ClOrdId::from_str("0123456789abcdef0123456789ABCDEF").unwrap();
        let slot = pool.alloc(order, long);
        assert_eq!(pool.cl_ord_id(slot), long);
        assert!(pool.get(slot).has_cl_ord_id(&long));
        assert!(!pool.get(slot).has_cl_ord_id(&short));
        pool.get_mut(slot).set_cl_ord_id(&short);
        assert_eq!(pool.cl_ord_id(slot), short);
        assert!(!pool.get(slot).has_cl_ord_id(&long));
        // Same bytes, other length: a different id.
        assert!(!pool.get(slot).has_cl_ord_id(&ClOrdId::from_bytes(b"a\0").unwrap()));
        let line = |field: usize| field / 64;
        assert_eq!(line(core::mem::offset_of!(Order, next)), 0);
        assert_eq!(line(core::mem::offset_of!(Order, account)), 0);
        assert_eq!(line(core::mem::offset_of!(Order, id_bytes)), 1);
        assert_eq!(core::mem::align_of::<Order>(), 64);
    }
}
