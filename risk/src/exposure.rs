//! What an account has at stake: its open orders' reserved exposure and its filled positions.
//!
//! Every open order reserves, on its side, `leaves` quantity and (buys only) `leaves × price`
//! notional. While a replace is pending, the order reserves the larger of its current and its
//! replaced quantity and notional, so exposure is never understated whichever way the engine
//! decides. The account keeps the sums; each change subtracts an order's old reservation and adds
//! its new one, so the sums stay exact under any interleaving of fills, cancels and replaces.

use engine::{PriceUnits, Qty, Side, SymbolId};

use crate::limits::LimitSet;

/// A replace that passed the checks and awaits the engine's `Replaced` or `Rejected`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PendingReplace {
    /// New limit price.
    pub(crate) price: PriceUnits,
    /// New total quantity, filled part included.
    pub(crate) qty: Qty,
}

/// One open order as the risk engine sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OpenOrder {
    pub(crate) symbol: SymbolId,
    pub(crate) side: Side,
    /// A market order (or stop-market): its price is the risk engine's estimate, not a limit.
    pub(crate) market: bool,
    /// The engine accepted it (else it is pending: checked and sent, no answer yet).
    pub(crate) accepted: bool,
    /// The limit price, or for a market order the price it was checked at.
    pub(crate) price: PriceUnits,
    /// Open quantity, hidden part included.
    pub(crate) leaves: Qty,
    /// Filled quantity.
    pub(crate) filled: Qty,
    pub(crate) pending: Option<PendingReplace>,
}

/// A reservation: open quantity on the order's side and open notional (counted for buys).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Reserved {
    pub(crate) qty: i128,
    pub(crate) notional: i128,
}

impl OpenOrder {
    /// What the order reserves now (see the module docs). A non-positive price reserves no
    /// notional: such an order is refused by the engine (`bad_price_tick`) and must not lower the
    /// sums meanwhile.
    #[inline]
    pub(crate) fn reserved(&self) -> Reserved {
        let notional = |leaves: Qty, price: PriceUnits| i128::from(leaves) * price.wide().max(0);
        let mut r = Reserved { qty: i128::from(self.leaves), notional: notional(self.leaves, self.price) };
        if let Some(p) = self.pending {
            let leaves = p.qty.saturating_sub(self.filled);
            r.qty = r.qty.max(i128::from(leaves));
            r.notional = r.notional.max(notional(leaves, p.price));
        }
        r
    }
}

/// An account's exposure on one symbol.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SymbolExposure {
    /// Net filled position: bought minus sold.
    pub position: i128,
    /// Quantity reserved by open buy orders.
    pub open_buy_qty: i128,
    /// Quantity reserved by open sell orders.
    pub open_sell_qty: i128,
    /// Net cash paid on this symbol, in price units × quantity: the notional of every buy fill
    /// minus that of every sell fill. Positive for a long bought at cost or a realised loss.
    pub net_cost: i128,
}

/// An account's exposure over all symbols.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AccountExposure {
    /// Open orders, pending and live.
    pub open_orders: u32,
    /// Notional reserved by open buy orders (price units × quantity).
    pub open_buy_notional: i128,
    /// Sum over symbols of `max(0, net_cost)`: what the account has paid for its positions and
    /// lost, each symbol floored at zero so the proceeds of one symbol's sales never fund buying
    /// another.
    pub position_cost: i128,
    /// `open_buy_notional + position_cost`, the amount the credit limit bounds. Sells use no
    /// credit (short exposure is bounded by the position limit).
    pub credit_used: i128,
}

/// State of one account.
#[derive(Default)]
pub(crate) struct Account {
    /// Own limits, or `None` for the default ones.
    pub(crate) limits: Option<Box<LimitSet>>,
    pub(crate) killed: bool,
    pub(crate) open_orders: u32,
    pub(crate) open_buy_notional: i128,
    pub(crate) position_cost: i128,
    /// Per symbol id; empty until the account's first order or fill (sized then, once).
    pub(crate) symbols: Vec<SymbolExposure>,
}

impl Account {
    /// The account's exposure on `symbol`, sizing the table on first use.
    #[inline]
    pub(crate) fn symbol_mut(&mut self, symbol: SymbolId, symbols_len: usize) -> &mut SymbolExposure {
        if self.symbols.is_empty() {
            self.symbols = vec![SymbolExposure::default(); symbols_len];
        }
        &mut self.symbols[symbol.index()]
    }

    pub(crate) fn symbol(&self, symbol: SymbolId) -> SymbolExposure {
        self.symbols.get(symbol.index()).copied().unwrap_or_default()
    }

    /// Adds (`sign` 1) or removes (`sign` -1) an order's reservation.
    #[inline]
    pub(crate) fn reserve(&mut self, order: &OpenOrder, sign: i128, symbols_len: usize) {
        let r = order.reserved();
        let exposure = self.symbol_mut(order.symbol, symbols_len);
        match order.side {
            Side::Buy => {
                exposure.open_buy_qty += sign * r.qty;
                self.open_buy_notional += sign * r.notional;
            }
            Side::Sell => exposure.open_sell_qty += sign * r.qty,
        }
    }

    /// Books a fill of `qty` at `price` units.
    #[inline]
    pub(crate) fn fill(
        &mut self,
        symbol: SymbolId,
        side: Side,
        qty: Qty,
        price: PriceUnits,
        symbols_len: usize,
    ) {
        let exposure = self.symbol_mut(symbol, symbols_len);
        let cost_before = exposure.net_cost.max(0);
        let (qty, notional) = (i128::from(qty), i128::from(qty) * price.wide());
        match side {
            Side::Buy => {
                exposure.position += qty;
                exposure.net_cost += notional;
            }
            Side::Sell => {
                exposure.position -= qty;
                exposure.net_cost -= notional;
            }
        }
        let cost_after = exposure.net_cost.max(0);
        self.position_cost += cost_after - cost_before;
    }

    pub(crate) fn exposure(&self) -> AccountExposure {
        AccountExposure {
            open_orders: self.open_orders,
            open_buy_notional: self.open_buy_notional,
            position_cost: self.position_cost,
            credit_used: self.open_buy_notional + self.position_cost,
        }
    }
}
