//! What order management remembers of each order: the live ones (to fill CumQty, AvgPx,
//! OrdStatus and to answer status requests) and, bounded, the recently finished ones.

use std::collections::VecDeque;

use engine::{AccountId, ClOrdId, OrderId, Price, Qty, Side, SymbolId};
use rustc_hash::FxHashMap;

/// Most finished orders remembered for status requests (oldest forgotten first).
pub const DONE_ORDERS_MAX: usize = 100_000;

/// One order as its owner sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderState {
    /// Owner.
    pub account: AccountId,
    /// Its ClOrdID now (the newest of its replace chain).
    pub cl_ord_id: ClOrdId,
    /// Symbol.
    pub symbol: SymbolId,
    /// Side.
    pub side: Side,
    /// OrderQty: total, filled part included.
    pub qty: Qty,
    /// Limit price in ticks; `None` for market orders.
    pub price: Option<Price>,
    /// CumQty.
    pub cum_qty: Qty,
    /// Sum of fill price × qty in ticks (AvgPx = this / CumQty).
    pub notional_ticks: i128,
}

/// A finished order: its last state and OrdStatus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DoneOrder {
    /// Engine order id.
    pub order_id: OrderId,
    /// Its state when it finished.
    pub state: OrderState,
    /// OrdStatus (39) it finished with: 2 filled, 4 canceled, C expired.
    pub ord_status: u8,
}

/// Live orders by engine id and by (account, ClOrdID); finished ones by (account, ClOrdID).
#[derive(Debug, Default)]
pub struct Orders {
    live: FxHashMap<OrderId, OrderState>,
    by_cl_ord_id: FxHashMap<(AccountId, ClOrdId), OrderId>,
    done: FxHashMap<(AccountId, ClOrdId), DoneOrder>,
    done_order: VecDeque<(AccountId, ClOrdId)>,
}

impl Orders {
    /// A new live order.
    pub fn track(&mut self, order_id: OrderId, state: OrderState) {
        self.by_cl_ord_id.insert((state.account, state.cl_ord_id), order_id);
        self.live.insert(order_id, state);
    }

    /// A live order, by engine id.
    pub fn get(&self, order_id: OrderId) -> Option<&OrderState> {
        self.live.get(&order_id)
    }

    /// A live order, by engine id, to update its fills.
    pub fn get_mut(&mut self, order_id: OrderId) -> Option<&mut OrderState> {
        self.live.get_mut(&order_id)
    }

    /// A replace gave the order a new ClOrdID, quantity and price.
    pub fn replace(&mut self, order_id: OrderId, id: ClOrdId, qty: Qty, price: Price) -> Option<OrderState> {
        let state = self.live.get_mut(&order_id)?;
        self.by_cl_ord_id.remove(&(state.account, state.cl_ord_id));
        state.cl_ord_id = id;
        state.qty = qty;
        state.price = Some(price);
        self.by_cl_ord_id.insert((state.account, id), order_id);
        Some(*state)
    }

    /// The order is done: it leaves the live state and is remembered, bounded, with its last
    /// OrdStatus.
    pub fn finish(&mut self, order_id: OrderId, ord_status: u8) -> Option<OrderState> {
        let state = self.live.remove(&order_id)?;
        let key = (state.account, state.cl_ord_id);
        self.by_cl_ord_id.remove(&key);
        if self.done_order.len() >= DONE_ORDERS_MAX {
            if let Some(oldest) = self.done_order.pop_front() {
                self.done.remove(&oldest);
            }
        }
        if self.done.insert(key, DoneOrder { order_id, state, ord_status }).is_none() {
            self.done_order.push_back(key);
        }
        Some(state)
    }

    /// The live order `id` of `account`, with its engine id.
    pub fn live_by_cl_ord_id(&self, account: AccountId, id: ClOrdId) -> Option<(OrderId, &OrderState)> {
        let order_id = *self.by_cl_ord_id.get(&(account, id))?;
        self.live.get(&order_id).map(|s| (order_id, s))
    }

    /// The order `id` of `account`, live (OrdStatus 0 or 1) or recently finished.
    pub fn lookup(&self, account: AccountId, id: ClOrdId) -> Option<DoneOrder> {
        match self.live_by_cl_ord_id(account, id) {
            Some((order_id, state)) => {
                let ord_status = if state.cum_qty > 0 { b'1' } else { b'0' };
                Some(DoneOrder { order_id, state: *state, ord_status })
            }
            None => self.done.get(&(account, id)).copied(),
        }
    }

    /// The live orders of `account` (on one symbol, or all), oldest first.
    pub fn live_of(&self, account: AccountId, symbol: Option<SymbolId>) -> Vec<(OrderId, OrderState)> {
        let mut live: Vec<(OrderId, OrderState)> = self
            .live
            .iter()
            .filter(|(_, s)| s.account == account && symbol.is_none_or(|sym| sym == s.symbol))
            .map(|(id, s)| (*id, *s))
            .collect();
        live.sort_unstable_by_key(|(id, _)| *id);
        live
    }

    /// Live orders.
    pub fn live_len(&self) -> usize {
        self.live.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(account: AccountId, id: &str) -> OrderState {
        OrderState {
            account,
            cl_ord_id: ClOrdId::from_str(id).unwrap(),
            symbol: SymbolId(0),
            side: Side::Buy,
            qty: 10,
            price: Some(Price(100)),
            cum_qty: 0,
            notional_ticks: 0,
        }
    }

    #[test]
    fn replace_moves_the_id_and_finish_remembers_the_last_state() {
        let mut orders = Orders::default();
        orders.track(OrderId(7), state(AccountId(1), "a"));
        let a = ClOrdId::from_str("a").unwrap();
        let b = ClOrdId::from_str("b").unwrap();
        orders.replace(OrderId(7), b, 8, Price(99)).unwrap();
        assert!(orders.live_by_cl_ord_id(AccountId(1), a).is_none());
        assert_eq!(orders.lookup(AccountId(1), b).unwrap().ord_status, b'0');
        assert!(orders.lookup(AccountId(2), b).is_none(), "another account's id is not this order");
        orders.get_mut(OrderId(7)).unwrap().cum_qty = 3;
        assert_eq!(orders.lookup(AccountId(1), b).unwrap().ord_status, b'1');
        orders.finish(OrderId(7), b'4').unwrap();
        let done = orders.lookup(AccountId(1), b).unwrap();
        assert_eq!(
            (done.order_id, done.ord_status, done.state.qty, done.state.cum_qty),
            (OrderId(7), b'4', 8, 3)
        );
        assert_eq!(orders.live_len(), 0);
    }

    #[test]
    fn finished_orders_are_bounded() {
        let mut orders = Orders::default();
        for i in 0..DONE_ORDERS_MAX as u64 + 5 {
            orders.track(OrderId(i), state(AccountId(0), &format!("o{i}")));
            orders.finish(OrderId(i), b'2');
        }
        assert_eq!(orders.done.len(), DONE_ORDERS_MAX);
        assert!(
            orders.lookup(AccountId(0), ClOrdId::from_str("o0").unwrap()).is_none(),
            "the oldest is forgotten"
        );
        assert!(orders.lookup(AccountId(0), ClOrdId::from_str("o5").unwrap()).is_some());
    }
}
