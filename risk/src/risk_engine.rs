//! The risk engine: checks on the gateway side of the inbound ring, state from the engine's
//! events on the outbound ring.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};

use engine::{
    AccountId, ClOrdId, Event, EventKind, NewOrder, OrdType, Price, Qty, ReplaceOrder, Side, SymbolId,
    SymbolSpec,
};

use crate::config::{RiskConfig, RiskError};
use crate::exposure::{Account, AccountExposure, OpenOrder, PendingReplace, SymbolExposure};
use crate::id_key::{IdKey, IdKeyHasher};
use crate::limits::{LimitSet, OrderLimits, RiskLimits};
use crate::reject::{RiskReason, RiskReject};

/// Basis points in one.
const BPS_PER_ONE: i128 = 10_000;

/// What the risk engine knows about an (account, client order id).
#[derive(Clone, Copy, Debug)]
enum IdEntry {
    /// An open order (pending or live) under its current client id.
    Order(OpenOrder),
    /// The new id of a pending replace whose order is still known under `orig`.
    ReplaceAlias { orig: ClOrdId },
    /// A finished id, remembered for the duplicate check; `seq` is its place in the window.
    Done { seq: u64 },
}

/// Pre-trade risk for every account: one instance, owned by one thread (the gateway's router),
/// so no locks.
///
/// # Calling sequence
///
/// - New order: [`check_new`](Self::check_new); on `Ok` push the command to the engine's ring.
///   If it is not pushed after all (ring full, session gone), call
///   [`withdraw_new`](Self::withdraw_new). On `Err`, answer the client from the reject.
/// - Replace: [`check_replace`](Self::check_replace), then likewise, or
///   [`withdraw_replace`](Self::withdraw_replace).
/// - Cancels, mass cancels and halts pass without a check.
/// - Every event the engine emits, in sequence order: [`on_event`](Self::on_event). To rebuild
///   state after a restart, feed the event journal from the start the same way.
/// - Kill switch: [`kill`](Self::kill) blocks new orders and replaces of the account; the
///   caller then sends the engine `CommandKind::CancelAll { account, symbol: SYMBOL_UNKNOWN }`,
///   whose `Canceled` events release the exposure. [`release`](Self::release) unblocks.
///
/// A passing check reserves the order's exposure at once (as pending), so two orders checked
/// back to back cannot both slip under a limit; the engine's `Rejected` releases it, `Accepted`
/// confirms it, and fills, cancels, expiries and replaces move it exactly.
///
/// # Checks, in order (the first failing one refuses)
///
/// `risk_unknown_account`, `risk_killed`, then (for a configured symbol; an unknown symbol
/// passes, for the engine to refuse as `unknown_symbol`) `risk_duplicate_id`,
/// `risk_replace_pending` (replaces), `risk_capacity`, `risk_open_orders` (new orders),
/// `risk_max_qty`, `risk_no_reference` / `risk_price_band`, `risk_notional`, `risk_position`,
/// `risk_credit` (buys). See [`RiskLimits`] for each limit and [`AccountExposure`] for credit.
pub struct RiskEngine {
    symbols: Vec<SymbolSpec>,
    /// Reference price per symbol in price units: the last trade, else the configured one.
    reference: Vec<Option<i64>>,
    accounts: Vec<Account>,
    default_limits: LimitSet,
    /// Open orders, pending replaces' new ids and recently finished ids, by (account, id).
    /// At most `orders_max` orders, one alias per order, `recent_ids_max` finished ids.
    ids: HashMap<IdKey, IdEntry, IdKeyHasher>,
    orders_tracked: usize,
    orders_max: usize,
    /// Finished ids, oldest first, with their window sequence.
    recent: VecDeque<(IdKey, u64)>,
    recent_ids_max: usize,
    recent_seq: u64,
}

impl RiskEngine {
    /// Initial room in the order map (it grows to its working set from there).
    const IDS_INITIAL: usize = 1 << 12;

    /// A risk engine with no orders, no positions and no reference prices. The duplicate window
    /// is allocated here for its bound. The order map starts small and grows (amortised) with
    /// the working set, up to its bound: pre-sized for the bound it was a sparse table of tens of
    /// megabytes in which every new order touched a cold cache line (measured: ~2× slower).
    pub fn new(config: RiskConfig) -> Result<RiskEngine, RiskError> {
        let default_limits = LimitSet::resolve(config.default_limits, &config.symbols)?;
        let capacity = config.orders_max.saturating_add(config.recent_ids_max).min(Self::IDS_INITIAL);
        Ok(RiskEngine {
            reference: vec![None; config.symbols.len()],
            symbols: config.symbols,
            accounts: (0..config.accounts_max).map(|_| Account::default()).collect(),
            default_limits,
            ids: HashMap::with_capacity_and_hasher(capacity, IdKeyHasher::default()),
            orders_tracked: 0,
            orders_max: config.orders_max,
            recent: VecDeque::with_capacity(config.recent_ids_max),
            recent_ids_max: config.recent_ids_max,
            recent_seq: 0,
        })
    }

    // ---- checks -------------------------------------------------------------------------

    /// Checks a new order and, if it passes, reserves its exposure as pending.
    ///
    /// A limit order is valued at its limit price. A market order (also a stop-market) is
    /// valued at the symbol's reference price, a market buy with a band at the band's upper
    /// edge `reference × (1 + bps/10000)` (the most it is meant to pay). A market order with no
    /// reference price is refused `risk_no_reference` when the account has a band, notional or
    /// credit limit (there is nothing to value it at); with none of those it passes, valued at
    /// 0. Stop orders are checked at entry like any order (the band applies to a stop-limit's
    /// limit price), not when they trigger.
    pub fn check_new(&mut self, order: &NewOrder) -> Result<(), RiskReject> {
        let accounts_len = self.accounts.len();
        let Some(account) = self.accounts.get_mut(order.account as usize) else {
            return Err(RiskReject::new(
                RiskReason::UnknownAccount,
                accounts_len as i128,
                i128::from(order.account),
            ));
        };
        if account.killed {
            return Err(RiskReject::bare(RiskReason::Killed));
        }
        let symbols_len = self.symbols.len();
        if order.symbol as usize >= symbols_len {
            return Ok(());
        }
        let limits = order_limits(&self.default_limits, account, order.symbol);
        let Entry::Vacant(slot) = self.ids.entry(IdKey::new(order.account, order.id)) else {
            return Err(RiskReject::bare(RiskReason::DuplicateId));
        };
        if self.orders_tracked >= self.orders_max {
            return Err(RiskReject::new(
                RiskReason::Capacity,
                self.orders_max as i128,
                self.orders_tracked as i128,
            ));
        }
        let open_orders = i128::from(account.open_orders) + 1;
        if open_orders > i128::from(limits.open_orders_max) {
            return Err(RiskReject::new(RiskReason::OpenOrders, limits.open_orders_max.into(), open_orders));
        }
        if order.qty > limits.order_qty_max {
            return Err(RiskReject::new(RiskReason::MaxQty, limits.order_qty_max.into(), order.qty.into()));
        }
        let market = order.ord_type == OrdType::Market;
        let reference = self.reference[order.symbol as usize];
        let price = if market {
            match reference {
                Some(reference) => market_price(reference, order.side, limits.price_band_bps),
                None if limits.needs_price => return Err(RiskReject::bare(RiskReason::NoReference)),
                None => 0,
            }
        } else {
            if let (Some(bps), Some(reference)) = (limits.price_band_bps, reference) {
                check_band(order.side, order.price, reference, bps)?;
            }
            order.price
        };
        let open = OpenOrder {
            symbol: order.symbol,
            side: order.side,
            market,
            accepted: false,
            price,
            leaves: order.qty,
            filled: 0,
            pending: None,
        };
        let reserved = open.reserved();
        if reserved.notional > limits.order_notional_max {
            return Err(RiskReject::new(RiskReason::Notional, limits.order_notional_max, reserved.notional));
        }
        check_position(order.side, &account.symbol(order.symbol), reserved.qty, &limits)?;
        if order.side == Side::Buy {
            check_credit(account, reserved.notional, &limits)?;
        }
        account.reserve(&open, 1, symbols_len);
        account.open_orders += 1;
        self.orders_tracked += 1;
        slot.insert(IdEntry::Order(open));
        Ok(())
    }

    /// Checks a cancel/replace against the order's current state and, if it passes, reserves
    /// the larger of the order's current and replaced exposure until the engine answers.
    ///
    /// Only what the replace increases is checked: `risk_max_qty` and `risk_notional` when the
    /// order's total quantity or notional grows, the band when the price changes, position and
    /// credit by the growth of the reservation. So a replace that only reduces risk always
    /// passes (unless the account is killed), even when limits were lowered since the order was
    /// entered. An order the risk engine does not know (or on another symbol) passes unchecked
    /// for the engine to refuse as `unknown_order`. One replace per order may be pending: a
    /// second one, under the order's current id or chained onto the pending replace's new id,
    /// is refused `risk_replace_pending` until the engine has answered the first.
    pub fn check_replace(&mut self, replace: &ReplaceOrder) -> Result<(), RiskReject> {
        let accounts_len = self.accounts.len();
        let Some(account) = self.accounts.get_mut(replace.account as usize) else {
            return Err(RiskReject::new(
                RiskReason::UnknownAccount,
                accounts_len as i128,
                i128::from(replace.account),
            ));
        };
        if account.killed {
            return Err(RiskReject::bare(RiskReason::Killed));
        }
        let symbols_len = self.symbols.len();
        if replace.symbol as usize >= symbols_len {
            return Ok(());
        }
        if replace.id != replace.orig_id && self.ids.contains_key(&IdKey::new(replace.account, replace.id)) {
            return Err(RiskReject::bare(RiskReason::DuplicateId));
        }
        let limits = order_limits(&self.default_limits, account, replace.symbol);
        let order = match self.ids.get_mut(&IdKey::new(replace.account, replace.orig_id)) {
            Some(IdEntry::Order(order)) if order.symbol == replace.symbol => order,
            // `orig_id` is the new id of a replace still pending: the engine would apply this one
            // on top of it, so it must wait for the first one's answer.
            Some(IdEntry::ReplaceAlias { .. }) => return Err(RiskReject::bare(RiskReason::ReplacePending)),
            _ => return Ok(()),
        };
        if order.pending.is_some() {
            return Err(RiskReject::bare(RiskReason::ReplacePending));
        }
        let total_old = order.filled.saturating_add(order.leaves);
        if replace.qty > total_old && replace.qty > limits.order_qty_max {
            return Err(RiskReject::new(RiskReason::MaxQty, limits.order_qty_max.into(), replace.qty.into()));
        }
        let price = match replace.price {
            Some(price) if !order.market => price,
            _ => order.price,
        };
        if price != order.price {
            let reference = self.reference[replace.symbol as usize];
            if let (Some(bps), Some(reference)) = (limits.price_band_bps, reference) {
                check_band(order.side, price, reference, bps)?;
            }
        }
        let notional = |qty: Qty, price: i64| i128::from(qty) * i128::from(price.max(0));
        let (notional_old, notional_new) = (notional(total_old, order.price), notional(replace.qty, price));
        if notional_new > notional_old && notional_new > limits.order_notional_max {
            return Err(RiskReject::new(RiskReason::Notional, limits.order_notional_max, notional_new));
        }
        let replaced = OpenOrder { pending: Some(PendingReplace { price, qty: replace.qty }), ..*order };
        let (before, after) = (order.reserved(), replaced.reserved());
        let (qty_more, notional_more) = (after.qty - before.qty, after.notional - before.notional);
        if qty_more > 0 {
            check_position(order.side, &account.symbol(order.symbol), qty_more, &limits)?;
        }
        if order.side == Side::Buy && notional_more > 0 {
            check_credit(account, notional_more, &limits)?;
        }
        account.reserve(order, -1, symbols_len);
        *order = replaced;
        account.reserve(order, 1, symbols_len);
        if replace.id != replace.orig_id {
            self.ids.insert(
                IdKey::new(replace.account, replace.id),
                IdEntry::ReplaceAlias { orig: replace.orig_id },
            );
        }
        Ok(())
    }

    /// A new order passed [`check_new`](Self::check_new) but was not sent to the engine:
    /// releases its reservation and forgets its id (the client may send it again).
    pub fn withdraw_new(&mut self, account: AccountId, id: &ClOrdId) {
        let key = IdKey::new(account, *id);
        if matches!(self.ids.get(&key), Some(IdEntry::Order(o)) if !o.accepted) {
            self.close(key, false);
        }
    }

    /// A replace passed [`check_replace`](Self::check_replace) but was not sent to the engine:
    /// the order goes back to its reservation before the replace.
    pub fn withdraw_replace(&mut self, account: AccountId, orig_id: &ClOrdId, id: &ClOrdId) {
        let alias = IdKey::new(account, *id);
        if id != orig_id && matches!(self.ids.get(&alias), Some(IdEntry::ReplaceAlias { .. })) {
            self.ids.remove(&alias);
        }
        self.clear_pending(IdKey::new(account, *orig_id));
    }

    // ---- events -------------------------------------------------------------------------

    /// Follows one engine event. Feed every event, in sequence order. Events about orders the
    /// risk engine never checked are followed too (an `Accepted` starts tracking the order), so
    /// replaying the event journal after a restart rebuilds the state.
    pub fn on_event(&mut self, event: &Event) {
        match event.kind {
            EventKind::Accepted { account, id, symbol, side, price, qty, .. } => {
                self.on_accepted(account, id, symbol, side, price, qty);
            }
            EventKind::Trade {
                symbol,
                price,
                qty,
                maker_account,
                maker_id,
                maker_leaves_qty,
                taker_account,
                taker_id,
                taker_leaves_qty,
                aggressor,
                ..
            } => {
                let Some(spec) = self.symbols.get(symbol as usize) else { return };
                let price = spec.ticks_to_units(price);
                self.reference[symbol as usize] = Some(price);
                let (maker, taker) =
                    (IdKey::new(maker_account, maker_id), IdKey::new(taker_account, taker_id));
                self.on_fill(maker, symbol, aggressor.opposite(), qty, price, maker_leaves_qty);
                self.on_fill(taker, symbol, aggressor, qty, price, taker_leaves_qty);
            }
            EventKind::Canceled { account, id, .. } | EventKind::Expired { account, id, .. } => {
                self.close(IdKey::new(account, id), true);
            }
            EventKind::Rejected { account, id, .. } => self.on_rejected(IdKey::new(account, id)),
            EventKind::Replaced { account, orig_id, id, symbol, price, leaves_qty, .. } => {
                self.on_replaced(account, orig_id, id, symbol, price, leaves_qty);
            }
            EventKind::Triggered { .. } | EventKind::TradingStatus { .. } => {}
        }
    }

    fn on_accepted(
        &mut self,
        account: AccountId,
        id: ClOrdId,
        symbol: SymbolId,
        side: Side,
        price: Price,
        qty: Qty,
    ) {
        let symbols_len = self.symbols.len();
        let Some(acct) = self.accounts.get_mut(account as usize) else { return };
        match self.ids.entry(IdKey::new(account, id)) {
            Entry::Occupied(entry) => {
                if let IdEntry::Order(order) = entry.into_mut() {
                    order.accepted = true;
                }
            }
            Entry::Vacant(slot) => {
                // Not checked here (entered before a restart, or around the gateway): track it
                // so the account's exposure stays exact. Beyond the bound it goes untracked.
                let Some(spec) = self.symbols.get(symbol as usize) else { return };
                if self.orders_tracked >= self.orders_max {
                    return;
                }
                // The engine reports a market order's price as 0.
                let market = price == Price(0);
                let price = if market {
                    self.reference[symbol as usize].unwrap_or(0)
                } else {
                    spec.ticks_to_units(price)
                };
                let open = OpenOrder {
                    symbol,
                    side,
                    market,
                    accepted: true,
                    price,
                    leaves: qty,
                    filled: 0,
                    pending: None,
                };
                acct.reserve(&open, 1, symbols_len);
                acct.open_orders += 1;
                self.orders_tracked += 1;
                slot.insert(IdEntry::Order(open));
            }
        }
    }

    fn on_fill(&mut self, key: IdKey, symbol: SymbolId, side: Side, qty: Qty, price: i64, leaves: Qty) {
        let symbols_len = self.symbols.len();
        let Some(account) = self.accounts.get_mut(key.account as usize) else { return };
        // The position moves whether or not the order is tracked.
        account.fill(symbol, side, qty, price, symbols_len);
        if leaves == 0 {
            // Filled: `close` releases the reservation the order holds before this fill.
            self.close(key, true);
            return;
        }
        let Some(IdEntry::Order(order)) = self.ids.get_mut(&key) else { return };
        account.reserve(order, -1, symbols_len);
        order.filled = order.filled.saturating_add(qty);
        order.leaves = leaves;
        account.reserve(order, 1, symbols_len);
    }

    /// A `Rejected` names the command's id: a new order's, or a replace's new id. Commands are
    /// answered in the order they were sent, so an order still unaccepted under `id` is the
    /// refused new order, and otherwise it is a replace.
    fn on_rejected(&mut self, key: IdKey) {
        match self.ids.get(&key) {
            Some(IdEntry::Order(order)) if !order.accepted => self.close(key, true),
            Some(IdEntry::Order(_)) => self.clear_pending(key),
            Some(&IdEntry::ReplaceAlias { orig }) => {
                self.finish(key);
                self.clear_pending(IdKey::new(key.account, orig));
            }
            Some(IdEntry::Done { .. }) | None => {}
        }
    }

    fn on_replaced(
        &mut self,
        account: AccountId,
        orig_id: ClOrdId,
        id: ClOrdId,
        symbol: SymbolId,
        price: Price,
        leaves: Qty,
    ) {
        let symbols_len = self.symbols.len();
        let Some(acct) = self.accounts.get_mut(account as usize) else { return };
        let Some(&IdEntry::Order(mut order)) = self.ids.get(&IdKey::new(account, orig_id)) else { return };
        acct.reserve(&order, -1, symbols_len);
        order.pending = None;
        // A market order's price is the risk engine's estimate; the engine reports 0.
        if !order.market {
            if let Some(spec) = self.symbols.get(symbol as usize) {
                order.price = spec.ticks_to_units(price);
            }
        }
        order.leaves = leaves;
        if leaves > 0 {
            acct.reserve(&order, 1, symbols_len);
        } else {
            acct.open_orders -= 1;
            self.orders_tracked -= 1;
        }
        if id != orig_id {
            self.finish(IdKey::new(account, orig_id));
        }
        if leaves > 0 {
            // Replaces the alias the pending replace left under the new id, if any.
            self.ids.insert(IdKey::new(account, id), IdEntry::Order(order));
        } else {
            self.finish(IdKey::new(account, id));
        }
    }

    /// Drops a pending replace of the order under `key`, if any.
    fn clear_pending(&mut self, key: IdKey) {
        let symbols_len = self.symbols.len();
        let Some(account) = self.accounts.get_mut(key.account as usize) else { return };
        if let Some(IdEntry::Order(order)) = self.ids.get_mut(&key) {
            if order.pending.is_some() {
                account.reserve(order, -1, symbols_len);
                order.pending = None;
                account.reserve(order, 1, symbols_len);
            }
        }
    }

    /// Removes the open order under `key` (if it is one), releasing its reservation; `remember`
    /// keeps its id in the duplicate window. One map lookup: the entry turns into `Done` in place.
    fn close(&mut self, key: IdKey, remember: bool) {
        let remember = remember && self.recent_ids_max > 0;
        if remember {
            self.forget_oldest_if_full();
        }
        let symbols_len = self.symbols.len();
        let Entry::Occupied(mut entry) = self.ids.entry(key) else { return };
        let IdEntry::Order(order) = *entry.get() else { return };
        if let Some(account) = self.accounts.get_mut(key.account as usize) {
            account.reserve(&order, -1, symbols_len);
            account.open_orders -= 1;
        }
        self.orders_tracked -= 1;
        if remember {
            self.recent_seq += 1;
            self.recent.push_back((key, self.recent_seq));
            *entry.get_mut() = IdEntry::Done { seq: self.recent_seq };
        } else {
            entry.remove();
        }
    }

    /// Marks `key` finished: it stays a duplicate until `recent_ids_max` later ids push it out.
    fn finish(&mut self, key: IdKey) {
        if self.recent_ids_max == 0 {
            self.ids.remove(&key);
            return;
        }
        self.forget_oldest_if_full();
        self.recent_seq += 1;
        self.recent.push_back((key, self.recent_seq));
        self.ids.insert(key, IdEntry::Done { seq: self.recent_seq });
    }

    /// Makes room in the duplicate window (before a push, so it never grows past its
    /// allocation) by forgetting the oldest finished id.
    fn forget_oldest_if_full(&mut self) {
        if self.recent.len() < self.recent_ids_max {
            return;
        }
        let Some((old, seq)) = self.recent.pop_front() else { return };
        // Only if that entry is still the finished id this window slot recorded.
        if let Entry::Occupied(entry) = self.ids.entry(old) {
            if matches!(entry.get(), &IdEntry::Done { seq: s } if s == seq) {
                entry.remove();
            }
        }
    }

    // ---- control plane ------------------------------------------------------------------

    /// Gives an account its own limits, effective for the next check. Orders already open are
    /// not re-checked.
    pub fn set_limits(&mut self, account: AccountId, limits: RiskLimits) -> Result<(), RiskError> {
        let set = LimitSet::resolve(limits, &self.symbols)?;
        self.account_mut(account)?.limits = Some(Box::new(set));
        Ok(())
    }

    /// Returns an account to the default limits.
    pub fn reset_limits(&mut self, account: AccountId) -> Result<(), RiskError> {
        self.account_mut(account)?.limits = None;
        Ok(())
    }

    /// Changes the default limits (for every account without its own).
    pub fn set_default_limits(&mut self, limits: RiskLimits) -> Result<(), RiskError> {
        self.default_limits = LimitSet::resolve(limits, &self.symbols)?;
        Ok(())
    }

    /// The limits that apply to an account (its own, else the default).
    pub fn limits(&self, account: AccountId) -> Option<&RiskLimits> {
        let account = self.accounts.get(account as usize)?;
        Some(&account.limits.as_deref().unwrap_or(&self.default_limits).source)
    }

    /// Engages the kill switch: the account's new orders and replaces are refused `risk_killed`
    /// until [`release`](Self::release). Cancels still pass. This does not cancel anything by
    /// itself: the caller sends the engine `CommandKind::CancelAll { account, symbol:
    /// SYMBOL_UNKNOWN }` right after, and its events release the exposure.
    pub fn kill(&mut self, account: AccountId) -> Result<(), RiskError> {
        self.account_mut(account)?.killed = true;
        Ok(())
    }

    /// Releases the kill switch.
    pub fn release(&mut self, account: AccountId) -> Result<(), RiskError> {
        self.account_mut(account)?.killed = false;
        Ok(())
    }

    /// True while the account's kill switch is engaged.
    pub fn is_killed(&self, account: AccountId) -> bool {
        self.accounts.get(account as usize).is_some_and(|a| a.killed)
    }

    /// Sets a symbol's reference price in price units (used until, and replaced by, its next
    /// trade).
    pub fn set_reference_price(&mut self, symbol: SymbolId, price: i64) -> Result<(), RiskError> {
        if price <= 0 {
            return Err(RiskError::BadPrice(price));
        }
        let slot = self.reference.get_mut(symbol as usize).ok_or(RiskError::UnknownSymbolId(symbol))?;
        *slot = Some(price);
        Ok(())
    }

    /// A symbol's reference price in price units.
    pub fn reference_price(&self, symbol: SymbolId) -> Option<i64> {
        self.reference.get(symbol as usize).copied().flatten()
    }

    /// An account's exposure over all symbols.
    pub fn account_exposure(&self, account: AccountId) -> Option<AccountExposure> {
        self.accounts.get(account as usize).map(Account::exposure)
    }

    /// An account's exposure on one symbol.
    pub fn symbol_exposure(&self, account: AccountId, symbol: SymbolId) -> Option<SymbolExposure> {
        if symbol as usize >= self.symbols.len() {
            return None;
        }
        self.accounts.get(account as usize).map(|a| a.symbol(symbol))
    }

    /// Open orders tracked across all accounts (at most `orders_max`).
    pub fn orders_tracked(&self) -> usize {
        self.orders_tracked
    }

    /// The symbols, by id.
    pub fn symbols(&self) -> &[SymbolSpec] {
        &self.symbols
    }

    fn account_mut(&mut self, account: AccountId) -> Result<&mut Account, RiskError> {
        self.accounts.get_mut(account as usize).ok_or(RiskError::UnknownAccount(account))
    }
}

/// The limits for an order of `account` on `symbol`.
#[inline]
fn order_limits(default: &LimitSet, account: &Account, symbol: SymbolId) -> OrderLimits {
    account.limits.as_deref().unwrap_or(default).for_symbol(symbol)
}

/// The price a market order is valued at (see [`RiskEngine::check_new`]).
#[inline]
fn market_price(reference: i64, side: Side, band_bps: Option<u32>) -> i64 {
    match (side, band_bps) {
        (Side::Buy, Some(bps)) => {
            let edge = div_ceil(i128::from(reference) * (BPS_PER_ONE + i128::from(bps)), BPS_PER_ONE);
            i64::try_from(edge).unwrap_or(i64::MAX)
        }
        _ => reference,
    }
}

/// `a / b` rounded up, for `b > 0` (signed `div_ceil` is not stable yet).
#[inline]
fn div_ceil(a: i128, b: i128) -> i128 {
    let q = a / b;
    if a % b > 0 {
        q + 1
    } else {
        q
    }
}

/// A buy may pay at most `reference × (1 + bps)`, a sell take at least `reference × (1 - bps)`.
/// Compared as `price × 10000` against `reference × (10000 ± bps)`, exact in `i128`. A
/// non-positive price passes, for the engine to refuse as `bad_price_tick`.
#[inline]
fn check_band(side: Side, price: i64, reference: i64, bps: u32) -> Result<(), RiskReject> {
    if price <= 0 {
        return Ok(());
    }
    let (price, reference, bps) = (i128::from(price), i128::from(reference), i128::from(bps));
    match side {
        Side::Buy => {
            let high = reference * (BPS_PER_ONE + bps);
            if price * BPS_PER_ONE > high {
                return Err(RiskReject::new(RiskReason::PriceBand, high / BPS_PER_ONE, price));
            }
        }
        Side::Sell => {
            let low = reference * (BPS_PER_ONE - bps);
            if price * BPS_PER_ONE < low {
                return Err(RiskReject::new(RiskReason::PriceBand, div_ceil(low, BPS_PER_ONE), price));
            }
        }
    }
    Ok(())
}

/// The position on the order's side if every open order there (plus `qty_more`) filled: a buy
/// may take the position up to `+position_max`, a sell down to `-position_max`. An order that
/// moves the position back towards zero cannot breach it, however large the other side is.
#[inline]
fn check_position(
    side: Side,
    exposure: &SymbolExposure,
    qty_more: i128,
    limits: &OrderLimits,
) -> Result<(), RiskReject> {
    let worst = match side {
        Side::Buy => exposure.position + exposure.open_buy_qty + qty_more,
        Side::Sell => exposure.open_sell_qty + qty_more - exposure.position,
    };
    if worst > limits.position_max {
        return Err(RiskReject::new(RiskReason::Position, limits.position_max, worst));
    }
    Ok(())
}

/// Credit used after reserving `notional_more` more on the buy side.
#[inline]
fn check_credit(account: &Account, notional_more: i128, limits: &OrderLimits) -> Result<(), RiskReject> {
    let used = account.open_buy_notional + account.position_cost + notional_more;
    if used > limits.credit_max {
        return Err(RiskReject::new(RiskReason::Credit, limits.credit_max, used));
    }
    Ok(())
}
