//! The risk engine: checks on the gateway side of the inbound ring, state from the engine's
//! events on the outbound ring.

use engine::{
    AccountId, ClOrdId, Event, EventKind, IdIndex, NewOrder, OrdType, Price, PriceUnits, Qty, ReplaceOrder,
    Side, SymbolId, SymbolSpec,
};

use crate::config::{RiskConfig, RiskError};
use crate::exposure::{Account, AccountExposure, OpenOrder, PendingReplace, SymbolExposure};
use crate::id_key::IdKey;
use crate::id_map::IdMap;
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
/// - New order: [`check_new`](Self::check_new); on `Ok` push the command to the engine's ring,
///   a plain market order for which [`market_cap`](Self::market_cap) gives a price as an IOC
///   limit order at that price. If it is not pushed after all (ring full, session gone), call
///   [`withdraw_new`](Self::withdraw_new). On `Err`, answer the client from the reject.
/// - Replace: [`check_replace`](Self::check_replace), then likewise, or
///   [`withdraw_replace`](Self::withdraw_replace).
/// - Cancels, mass cancels and halts pass without a check.
/// - Every event the engine emits, in sequence order: [`on_event`](Self::on_event). To rebuild
///   state after a restart, feed the event journal from the start the same way.
/// - Kill switch: [`kill`](Self::kill) blocks new orders and replaces of the account; the
///   caller then sends the engine `CommandKind::CancelAll { account, symbol: None }`,
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
    reference: Vec<Option<PriceUnits>>,
    accounts: Vec<Account>,
    default_limits: LimitSet,
    /// Open orders, pending replaces' new ids and recently finished ids, by (account, id).
    /// At most `orders_max` orders, one alias per pending replace, `recent_ids_max` finished ids.
    ids: IdMap<IdEntry>,
    orders_tracked: usize,
    orders_max: usize,
    /// The duplicate window, a ring of `recent_ids_max` places: finished id number `seq`
    /// (counted from 1) sits at `(seq - 1) % recent_ids_max` as the `(tag << 32) | (slot + 1)`
    /// of its `Done` entry, or 0 once that entry was finished again or reused (the place still
    /// counts, and ages out in turn). Keeping the slot and its hash bits lets the oldest id be
    /// forgotten without reading its slot; clearing a place when its entry changes is what
    /// makes that safe.
    recent: Box<[u64]>,
    /// Place of the oldest finished id in `recent`.
    recent_head: usize,
    /// Finished ids in the window (cleared places included), at most `recent_ids_max`.
    recent_len: usize,
    recent_ids_max: usize,
    /// Finished ids so far: the `seq` of the newest.
    recent_seq: u64,
}

impl RiskEngine {
    /// Initial room in the order map (it grows to its working set from there).
    const IDS_INITIAL: usize = 1 << 12;

    /// A risk engine with no orders, no positions and no reference prices. The duplicate window
    /// is allocated here for its bound (8 bytes an id). The order map starts small and grows
    /// (amortised) with the working set, up to its bound: pre-sized for the bound it was a
    /// sparse table of tens of megabytes in which every new order touched a cold cache line
    /// (measured: ~2× slower).
    pub fn new(config: RiskConfig) -> Result<RiskEngine, RiskError> {
        let default_limits = LimitSet::resolve(config.default_limits, &config.symbols)?;
        let capacity = config.orders_max.saturating_add(config.recent_ids_max).min(Self::IDS_INITIAL);
        Ok(RiskEngine {
            reference: vec![None; config.symbols.len()],
            symbols: config.symbols,
            accounts: (0..config.accounts_max).map(|_| Account::default()).collect(),
            default_limits,
            ids: IdMap::with_capacity(capacity),
            orders_tracked: 0,
            orders_max: config.orders_max,
            recent: vec![0; config.recent_ids_max].into_boxed_slice(),
            recent_head: 0,
            recent_len: 0,
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
    ///
    /// The band bounds a market order's valuation, not its fills: the engine would sweep the
    /// book at any price. So a plain market order that passes, of an account with a band, goes
    /// to the engine as an IOC limit at [`market_cap`](Self::market_cap), the band's edge in
    /// ticks, and cannot fill outside the band. (The cap is at most the price a market buy is
    /// valued at here, whenever the edge is at least a tick, so the reservation covers every
    /// fill.)
    pub fn check_new(&mut self, order: &NewOrder) -> Result<(), RiskReject> {
        self.check_account(order.account)?;
        let symbols_len = self.symbols.len();
        if order.symbol.index() >= symbols_len {
            return Ok(());
        }
        let account = &mut self.accounts[order.account.index()];
        let limits = order_limits(&self.default_limits, account, order.symbol);
        let key = IdKey::new(order.account, order.id);
        let hash = key.id_hash();
        if self.ids.find(&key, hash).is_some() {
            return Err(RiskReject::bare(RiskReason::DuplicateId));
        }
        check_room(self.orders_tracked, self.orders_max, account, &limits)?;
        if order.qty > limits.order_qty_max {
            return Err(RiskReject::new(RiskReason::MaxQty, limits.order_qty_max.into(), order.qty.into()));
        }
        let market = order.ord_type == OrdType::Market;
        let price = valuation_price(order, self.reference[order.symbol.index()], &limits)?;
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
        check_new_exposure(account, &open, &limits)?;
        account.reserve(&open, 1, symbols_len);
        account.open_orders += 1;
        self.orders_tracked += 1;
        self.ids.insert(key, hash, IdEntry::Order(open));
        Ok(())
    }

    /// The first two checks of every order: `risk_unknown_account`, then `risk_killed`.
    fn check_account(&self, account: AccountId) -> Result<(), RiskReject> {
        let Some(state) = self.accounts.get(account.index()) else {
            return Err(RiskReject::new(
                RiskReason::UnknownAccount,
                self.accounts.len() as i128,
                i128::from(account.0),
            ));
        };
        if state.killed {
            return Err(RiskReject::bare(RiskReason::Killed));
        }
        Ok(())
    }

    /// The limit price, in ticks, at which a plain market order must go to the engine so that
    /// it cannot fill outside its account's price band: the band's edge on the order's side, as
    /// an IOC limit (the gateway's router sends it so, after [`check_new`](Self::check_new)
    /// passed).
    ///
    /// A buy pays at most `reference × (1 + bps/10000)`, rounded down to a tick; a sell takes at
    /// least `reference × (1 - bps/10000)`, rounded up to a tick (so the capped order passes the
    /// band check as a limit order would); either is at least 1 tick (a band of 100% or more
    /// leaves a sell no floor but the smallest price; a reference below one tick leaves a buy
    /// the smallest price). Exact in integers, like the band check.
    ///
    /// `None` (send the order as it is) unless the order is `OrdType::Market` without a stop
    /// price, its account and symbol are configured, the account's limits have a band and the
    /// symbol has a reference price. A stop-market order is not capped: it trades when it
    /// triggers, against the reference price of that moment.
    pub fn market_cap(&self, order: &NewOrder) -> Option<Price> {
        if order.ord_type != OrdType::Market || order.stop_price.is_some() {
            return None;
        }
        let account = self.accounts.get(order.account.index())?;
        let spec = self.symbols.get(order.symbol.index())?;
        let reference = self.reference[order.symbol.index()]?;
        let bps = order_limits(&self.default_limits, account, order.symbol).price_band_bps?;
        Some(band_edge_ticks(order.side, reference, bps, spec.tick_units))
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
        self.check_account(replace.account)?;
        let symbols_len = self.symbols.len();
        if replace.symbol.index() >= symbols_len {
            return Ok(());
        }
        // The new id's key and hash, when it differs from the order's current one.
        let alias = (replace.id != replace.orig_id).then(|| {
            let key = IdKey::new(replace.account, replace.id);
            (key, key.id_hash())
        });
        if let Some((key, hash)) = alias {
            if self.ids.find(&key, hash).is_some() {
                return Err(RiskReject::bare(RiskReason::DuplicateId));
            }
        }
        let account = &mut self.accounts[replace.account.index()];
        let limits = order_limits(&self.default_limits, account, replace.symbol);
        let orig = IdKey::new(replace.account, replace.orig_id);
        let Some(slot) = self.ids.find(&orig, orig.id_hash()) else { return Ok(()) };
        let order = match self.ids.get_mut(slot) {
            IdEntry::Order(order) if order.symbol == replace.symbol => order,
            // `orig_id` is the new id of a replace still pending: the engine would apply this one
            // on top of it, so it must wait for the first one's answer.
            IdEntry::ReplaceAlias { .. } => return Err(RiskReject::bare(RiskReason::ReplacePending)),
            _ => return Ok(()),
        };
        if order.pending.is_some() {
            return Err(RiskReject::bare(RiskReason::ReplacePending));
        }
        let reference = self.reference[replace.symbol.index()];
        let replaced = replaced_order(order, replace, reference, &limits)?;
        check_replace_growth(account, order, &replaced, &limits)?;
        account.reserve(order, -1, symbols_len);
        *order = replaced;
        account.reserve(order, 1, symbols_len);
        if let Some((key, hash)) = alias {
            // Absent: checked above, and nothing was added since.
            self.ids.insert(key, hash, IdEntry::ReplaceAlias { orig: replace.orig_id });
        }
        Ok(())
    }

    /// A new order passed [`check_new`](Self::check_new) but was not sent to the engine:
    /// releases its reservation and forgets its id (the client may send it again).
    pub fn withdraw_new(&mut self, account: AccountId, id: &ClOrdId) {
        let key = IdKey::new(account, *id);
        let hash = key.id_hash();
        let Some(slot) = self.ids.find(&key, hash) else { return };
        if let IdEntry::Order(order) = *self.ids.get(slot) {
            if !order.accepted {
                self.close_order(key.account, hash, slot, &order, false);
            }
        }
    }

    /// A replace passed [`check_replace`](Self::check_replace) but was not sent to the engine:
    /// the order goes back to its reservation before the replace.
    pub fn withdraw_replace(&mut self, account: AccountId, orig_id: &ClOrdId, id: &ClOrdId) {
        if id != orig_id {
            let alias = IdKey::new(account, *id);
            if let Some(slot) = self.ids.find(&alias, alias.id_hash()) {
                if matches!(self.ids.get(slot), IdEntry::ReplaceAlias { .. }) {
                    self.ids.remove(slot);
                }
            }
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
                let Some(spec) = self.symbols.get(symbol.index()) else { return };
                let price = spec.ticks_to_units(price);
                self.reference[symbol.index()] = Some(price);
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
        let Some(acct) = self.accounts.get_mut(account.index()) else { return };
        let key = IdKey::new(account, id);
        let hash = key.id_hash();
        match self.ids.find(&key, hash) {
            Some(slot) => {
                if let IdEntry::Order(order) = self.ids.get_mut(slot) {
                    order.accepted = true;
                }
            }
            None => {
                // Not checked here (entered before a restart, or around the gateway): track it
                // so the account's exposure stays exact. Beyond the bound it goes untracked.
                let Some(spec) = self.symbols.get(symbol.index()) else { return };
                if self.orders_tracked >= self.orders_max {
                    return;
                }
                // The engine reports a market order's price as 0.
                let market = price == Price(0);
                let price = if market {
                    self.reference[symbol.index()].unwrap_or(PriceUnits::ZERO)
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
                self.ids.insert(key, hash, IdEntry::Order(open));
            }
        }
    }

    fn on_fill(
        &mut self,
        key: IdKey,
        symbol: SymbolId,
        side: Side,
        qty: Qty,
        price: PriceUnits,
        leaves: Qty,
    ) {
        let symbols_len = self.symbols.len();
        let Some(account) = self.accounts.get_mut(key.account.index()) else { return };
        // The position moves whether or not the order is tracked.
        account.fill(symbol, side, qty, price, symbols_len);
        if leaves == 0 {
            // Filled: `close` releases the reservation the order holds before this fill.
            self.close(key, true);
            return;
        }
        let Some(slot) = self.ids.find(&key, key.id_hash()) else { return };
        let IdEntry::Order(order) = self.ids.get_mut(slot) else { return };
        account.reserve(order, -1, symbols_len);
        order.filled = order.filled.saturating_add(qty);
        order.leaves = leaves;
        account.reserve(order, 1, symbols_len);
    }

    /// A `Rejected` names the command's id: a new order's, or a replace's new id. Commands are
    /// answered in the order they were sent, so an order still unaccepted under `id` is the
    /// refused new order, and otherwise it is a replace.
    fn on_rejected(&mut self, key: IdKey) {
        let hash = key.id_hash();
        let Some(slot) = self.ids.find(&key, hash) else { return };
        match *self.ids.get(slot) {
            IdEntry::Order(order) if !order.accepted => self.close(key, true),
            IdEntry::Order(_) => self.clear_pending(key),
            IdEntry::ReplaceAlias { orig } => {
                self.finish(key, hash);
                self.clear_pending(IdKey::new(key.account, orig));
            }
            IdEntry::Done { .. } => {}
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
        let Some(acct) = self.accounts.get_mut(account.index()) else { return };
        let orig = IdKey::new(account, orig_id);
        let orig_hash = orig.id_hash();
        let Some(slot) = self.ids.find(&orig, orig_hash) else { return };
        let IdEntry::Order(mut order) = *self.ids.get(slot) else { return };
        acct.reserve(&order, -1, symbols_len);
        order.pending = None;
        // A market order's price is the risk engine's estimate; the engine reports 0.
        if !order.market {
            if let Some(spec) = self.symbols.get(symbol.index()) {
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
            self.finish(orig, orig_hash);
        }
        let key = IdKey::new(account, id);
        let hash = if id == orig_id { orig_hash } else { key.id_hash() };
        if leaves > 0 {
            // Replaces the alias the pending replace left under the new id, if any.
            self.put(key, hash, IdEntry::Order(order));
        } else {
            self.finish(key, hash);
        }
    }

    /// Drops a pending replace of the order under `key`, if any.
    fn clear_pending(&mut self, key: IdKey) {
        let symbols_len = self.symbols.len();
        let Some(account) = self.accounts.get_mut(key.account.index()) else { return };
        let Some(slot) = self.ids.find(&key, key.id_hash()) else { return };
        if let IdEntry::Order(order) = self.ids.get_mut(slot) {
            if order.pending.is_some() {
                account.reserve(order, -1, symbols_len);
                order.pending = None;
                account.reserve(order, 1, symbols_len);
            }
        }
    }

    /// Removes the open order under `key` (if it is one), releasing its reservation; `remember`
    /// keeps its id in the duplicate window.
    fn close(&mut self, key: IdKey, remember: bool) {
        let remember = remember && self.recent_ids_max > 0;
        if remember {
            // Whether or not `key` turns out to be an open order (the window's contents depend
            // on it). This forgets a finished id, never an open order, so doing it before the
            // lookup leaves the slot found below valid.
            self.forget_oldest_if_full();
        }
        let hash = key.id_hash();
        let Some(slot) = self.ids.find(&key, hash) else { return };
        if let IdEntry::Order(order) = *self.ids.get(slot) {
            self.close_order(key.account, hash, slot, &order, remember);
        }
    }

    /// Closes `order`, the open order in `slot` (of `account`, its key hashing to `hash`); with
    /// `remember` (the caller made room in the window) its entry turns into `Done` in place,
    /// else it is removed.
    fn close_order(&mut self, account: AccountId, hash: u64, slot: u32, order: &OpenOrder, remember: bool) {
        let symbols_len = self.symbols.len();
        if let Some(account) = self.accounts.get_mut(account.index()) {
            account.reserve(order, -1, symbols_len);
            account.open_orders -= 1;
        }
        self.orders_tracked -= 1;
        if remember {
            let seq = self.push_recent(slot, IdIndex::<true>::tag(hash));
            *self.ids.get_mut(slot) = IdEntry::Done { seq };
        } else {
            self.ids.remove(slot);
        }
    }

    /// Marks `key` (hashing to `hash`) finished: it stays a duplicate until `recent_ids_max`
    /// later ids push it out.
    fn finish(&mut self, key: IdKey, hash: u64) {
        if self.recent_ids_max == 0 {
            if let Some(slot) = self.ids.find(&key, hash) {
                self.ids.remove(slot);
            }
            return;
        }
        self.forget_oldest_if_full();
        let seq = self.recent_seq + 1;
        let slot = self.put(key, hash, IdEntry::Done { seq });
        let pushed = self.push_recent(slot, IdIndex::<true>::tag(hash));
        debug_assert_eq!(pushed, seq);
    }

    /// Sets the entry of `key` (hashing to `hash`), adding it if absent; returns its slot. A
    /// finished id it overwrites leaves the window (its place is cleared).
    fn put(&mut self, key: IdKey, hash: u64, entry: IdEntry) -> u32 {
        let Some(slot) = self.ids.find(&key, hash) else { return self.ids.insert(key, hash, entry) };
        let old = std::mem::replace(self.ids.get_mut(slot), entry);
        if let IdEntry::Done { seq } = old {
            let place = self.recent_place(seq);
            debug_assert_eq!(self.recent[place], recent_entry(slot, IdIndex::<true>::tag(hash)));
            self.recent[place] = 0;
        }
        slot
    }

    /// The place in `recent` of finished id number `seq` (still in the window).
    fn recent_place(&self, seq: u64) -> usize {
        ((seq - 1) % self.recent_ids_max as u64) as usize
    }

    /// Appends finished id number `recent_seq + 1`, whose `Done` entry is in `slot` with hash
    /// bits `tag`; returns its number. The caller made room ([`Self::forget_oldest_if_full`]).
    #[inline]
    fn push_recent(&mut self, slot: u32, tag: u32) -> u64 {
        debug_assert!(self.recent_len < self.recent_ids_max, "no room in the duplicate window");
        let mut place = self.recent_head + self.recent_len;
        if place >= self.recent_ids_max {
            place -= self.recent_ids_max;
        }
        self.recent[place] = recent_entry(slot, tag);
        self.recent_len += 1;
        self.recent_seq += 1;
        debug_assert_eq!(place, self.recent_place(self.recent_seq));
        self.recent_seq
    }

    /// Makes room in the duplicate window (before a push, so it never grows past its
    /// allocation) by forgetting the oldest finished id.
    #[inline]
    fn forget_oldest_if_full(&mut self) {
        if self.recent_len < self.recent_ids_max || self.recent_len == 0 {
            return;
        }
        let e = std::mem::take(&mut self.recent[self.recent_head]);
        self.recent_head += 1;
        if self.recent_head == self.recent_ids_max {
            self.recent_head = 0;
        }
        self.recent_len -= 1;
        // Only if that entry is still the finished id this place recorded (else it was cleared).
        if e != 0 {
            let (slot, tag) = ((e as u32) - 1, (e >> 32) as u32);
            debug_assert!(matches!(self.ids.get(slot), IdEntry::Done { .. }));
            self.ids.remove_tagged(slot, tag);
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
        let account = self.accounts.get(account.index())?;
        Some(&account.limits.as_deref().unwrap_or(&self.default_limits).source)
    }

    /// Engages the kill switch: the account's new orders and replaces are refused `risk_killed`
    /// until [`release`](Self::release). Cancels still pass. This does not cancel anything by
    /// itself: the caller sends the engine `CommandKind::CancelAll { account, symbol: None }`
    /// right after, and its events release the exposure.
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
        self.accounts.get(account.index()).is_some_and(|a| a.killed)
    }

    /// Sets a symbol's reference price in price units (used until, and replaced by, its next
    /// trade).
    pub fn set_reference_price(&mut self, symbol: SymbolId, price: PriceUnits) -> Result<(), RiskError> {
        if price.get() <= 0 {
            return Err(RiskError::BadPrice(price));
        }
        let slot = self.reference.get_mut(symbol.index()).ok_or(RiskError::UnknownSymbolId(symbol))?;
        *slot = Some(price);
        Ok(())
    }

    /// A symbol's reference price in price units.
    pub fn reference_price(&self, symbol: SymbolId) -> Option<PriceUnits> {
        self.reference.get(symbol.index()).copied().flatten()
    }

    /// An account's exposure over all symbols.
    pub fn account_exposure(&self, account: AccountId) -> Option<AccountExposure> {
        self.accounts.get(account.index()).map(Account::exposure)
    }

    /// An account's exposure on one symbol.
    pub fn symbol_exposure(&self, account: AccountId, symbol: SymbolId) -> Option<SymbolExposure> {
        if symbol.index() >= self.symbols.len() {
            return None;
        }
        self.accounts.get(account.index()).map(|a| a.symbol(symbol))
    }

    /// Open orders tracked across all accounts (at most `orders_max`).
    pub fn orders_tracked(&self) -> usize {
        self.orders_tracked
    }

    /// The venue-wide bound on tracked orders (`RiskConfig::orders_max`).
    pub fn orders_max(&self) -> usize {
        self.orders_max
    }

    /// The symbols, by id.
    pub fn symbols(&self) -> &[SymbolSpec] {
        &self.symbols
    }

    fn account_mut(&mut self, account: AccountId) -> Result<&mut Account, RiskError> {
        self.accounts.get_mut(account.index()).ok_or(RiskError::UnknownAccount(account))
    }
}

/// A place of the duplicate window: the `Done` entry's slot and hash bits, never 0.
#[inline]
fn recent_entry(slot: u32, tag: u32) -> u64 {
    (u64::from(tag) << 32) | u64::from(slot + 1)
}

/// The limits for an order of `account` on `symbol`.
#[inline]
fn order_limits(default: &LimitSet, account: &Account, symbol: SymbolId) -> OrderLimits {
    account.limits.as_deref().unwrap_or(default).for_symbol(symbol)
}

/// `risk_capacity` (orders tracked, all accounts) and `risk_open_orders` (this account) for
/// one more order.
#[inline]
fn check_room(
    orders_tracked: usize,
    orders_max: usize,
    account: &Account,
    limits: &OrderLimits,
) -> Result<(), RiskReject> {
    if orders_tracked >= orders_max {
        return Err(RiskReject::new(RiskReason::Capacity, orders_max as i128, orders_tracked as i128));
    }
    let open_orders = i128::from(account.open_orders) + 1;
    if open_orders > i128::from(limits.open_orders_max) {
        return Err(RiskReject::new(RiskReason::OpenOrders, limits.open_orders_max.into(), open_orders));
    }
    Ok(())
}

/// The price a new order is valued at: a limit order's limit (after the band check), a market
/// order's [`market_price`]; `risk_no_reference` when a market order has nothing to be valued
/// at and its limits need a price.
#[inline]
fn valuation_price(
    order: &NewOrder,
    reference: Option<PriceUnits>,
    limits: &OrderLimits,
) -> Result<PriceUnits, RiskReject> {
    if order.ord_type == OrdType::Market {
        return match reference {
            Some(reference) => Ok(market_price(reference, order.side, limits.price_band_bps)),
            None if limits.needs_price => Err(RiskReject::bare(RiskReason::NoReference)),
            None => Ok(PriceUnits::ZERO),
        };
    }
    if let (Some(bps), Some(reference)) = (limits.price_band_bps, reference) {
        check_band(order.side, order.price, reference, bps)?;
    }
    Ok(order.price)
}

/// `risk_notional`, `risk_position` and (buys) `risk_credit` for a new order's reservation.
#[inline]
fn check_new_exposure(account: &Account, open: &OpenOrder, limits: &OrderLimits) -> Result<(), RiskReject> {
    let reserved = open.reserved();
    if reserved.notional > limits.order_notional_max {
        return Err(RiskReject::new(RiskReason::Notional, limits.order_notional_max, reserved.notional));
    }
    check_position(open.side, &account.symbol(open.symbol), reserved.qty, limits)?;
    if open.side == Side::Buy {
        check_credit(account, reserved.notional, limits)?;
    }
    Ok(())
}

/// The order as it will be while `replace` is pending, after the checks of what the replace
/// itself grows: `risk_max_qty` (total quantity up), the band (price changed), `risk_notional`
/// (notional up). A market order keeps its valuation price.
#[inline]
fn replaced_order(
    order: &OpenOrder,
    replace: &ReplaceOrder,
    reference: Option<PriceUnits>,
    limits: &OrderLimits,
) -> Result<OpenOrder, RiskReject> {
    let total_old = order.filled.saturating_add(order.leaves);
    if replace.qty > total_old && replace.qty > limits.order_qty_max {
        return Err(RiskReject::new(RiskReason::MaxQty, limits.order_qty_max.into(), replace.qty.into()));
    }
    let price = match replace.price {
        Some(price) if !order.market => price,
        _ => order.price,
    };
    if price != order.price {
        if let (Some(bps), Some(reference)) = (limits.price_band_bps, reference) {
            check_band(order.side, price, reference, bps)?;
        }
    }
    let notional = |qty: Qty, price: PriceUnits| i128::from(qty) * price.wide().max(0);
    let (notional_old, notional_new) = (notional(total_old, order.price), notional(replace.qty, price));
    if notional_new > notional_old && notional_new > limits.order_notional_max {
        return Err(RiskReject::new(RiskReason::Notional, limits.order_notional_max, notional_new));
    }
    Ok(OpenOrder { pending: Some(PendingReplace { price, qty: replace.qty }), ..*order })
}

/// `risk_position` and (buys) `risk_credit` by what the reservation grows from `order` to
/// `replaced`; a replace that grows neither passes.
#[inline]
fn check_replace_growth(
    account: &Account,
    order: &OpenOrder,
    replaced: &OpenOrder,
    limits: &OrderLimits,
) -> Result<(), RiskReject> {
    let (before, after) = (order.reserved(), replaced.reserved());
    let (qty_more, notional_more) = (after.qty - before.qty, after.notional - before.notional);
    if qty_more > 0 {
        check_position(order.side, &account.symbol(order.symbol), qty_more, limits)?;
    }
    if order.side == Side::Buy && notional_more > 0 {
        check_credit(account, notional_more, limits)?;
    }
    Ok(())
}

/// The price a market order is valued at (see [`RiskEngine::check_new`]).
#[inline]
fn market_price(reference: PriceUnits, side: Side, band_bps: Option<u32>) -> PriceUnits {
    match (side, band_bps) {
        (Side::Buy, Some(bps)) => {
            let edge = div_ceil(reference.wide() * (BPS_PER_ONE + i128::from(bps)), BPS_PER_ONE);
            PriceUnits(i64::try_from(edge).unwrap_or(i64::MAX))
        }
        _ => reference,
    }
}

/// The band's edge on `side` in ticks of `tick_units`, inward (see [`RiskEngine::market_cap`]):
/// `reference × (10000 ± bps) / (10000 × tick_units)` rounded down for a buy and up for a sell,
/// at least 1, in `i128` (no overflow: at most 2^63 × 2^33).
#[inline]
fn band_edge_ticks(side: Side, reference: PriceUnits, bps: u32, tick_units: PriceUnits) -> Price {
    let (reference, bps) = (reference.wide(), i128::from(bps));
    let per_tick = BPS_PER_ONE * tick_units.wide();
    let ticks = match side {
        // `reference > 0` (a set or traded price), so the quotient is not negative: `/` floors.
        Side::Buy => reference * (BPS_PER_ONE + bps) / per_tick,
        Side::Sell => div_ceil(reference * (BPS_PER_ONE - bps), per_tick),
    };
    Price(i64::try_from(ticks.max(1)).unwrap_or(i64::MAX))
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
fn check_band(side: Side, price: PriceUnits, reference: PriceUnits, bps: u32) -> Result<(), RiskReject> {
    if price.get() <= 0 {
        return Ok(());
    }
    let (price, reference, bps) = (price.wide(), reference.wide(), i128::from(bps));
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

#[cfg(test)]
// Prices are written as dollars_cents (`100_00` is 100.00): the grouping is the point.
#[allow(clippy::inconsistent_digit_grouping)]
mod tests {
    use engine::{ClOrdId, PRICE_UNITS_PER_ONE};

    use super::*;

    const CENT: i64 = PRICE_UNITS_PER_ONE / 100;
    /// Symbol 0 ticks at 0.01, symbol 1 at 0.05.
    const NICKEL: SymbolId = SymbolId(1);

    fn risk(band_bps: Option<u32>) -> RiskEngine {
        let symbols = vec![SymbolSpec::new("A", CENT, 1), SymbolSpec::new("B", 5 * CENT, 1)];
        let limits = RiskLimits { price_band_bps: band_bps, ..RiskLimits::default() };
        RiskEngine::new(RiskConfig { default_limits: limits, ..RiskConfig::new(symbols, 2) }).unwrap()
    }

    fn market(symbol: SymbolId, side: Side) -> NewOrder {
        NewOrder::market(AccountId(0), symbol, ClOrdId::from_str("m").unwrap(), side, 1)
    }

    /// The caps of a buy and a sell on `symbol` with this reference price.
    fn caps(risk: &mut RiskEngine, symbol: SymbolId, reference: i64) -> (Option<Price>, Option<Price>) {
        risk.set_reference_price(symbol, PriceUnits(reference)).unwrap();
        (risk.market_cap(&market(symbol, Side::Buy)), risk.market_cap(&market(symbol, Side::Sell)))
    }

    #[test]
    fn market_cap_is_the_band_edge_in_ticks() {
        let mut risk = risk(Some(100));
        // On a tick: 100.00 ± 1% is 101.00 / 99.00 exactly.
        assert_eq!(caps(&mut risk, SymbolId(0), 100_00 * CENT), (Some(Price(101_00)), Some(Price(99_00))));
        // Between ticks, inward on both sides: 100.01 ± 1% is 101.0101 / 99.0099, so at most
        // 101.01 for a buy and at least 99.01 for a sell.
        assert_eq!(caps(&mut risk, SymbolId(0), 100_01 * CENT), (Some(Price(101_01)), Some(Price(99_01))));
        // A reference off the tick grid: 100.005 ± 1% is 101.00505 / 99.00495.
        assert_eq!(
            caps(&mut risk, SymbolId(0), 100_00 * CENT + CENT / 2),
            (Some(Price(101_00)), Some(Price(99_01)))
        );
        // A tick of 0.05: 100.00 ± 1% lands on ticks (2020, 1980); ± 0.07% does not: 100.07
        // rounds down to 100.05, 99.93 up to 99.95.
        assert_eq!(caps(&mut risk, NICKEL, 100_00 * CENT), (Some(Price(2020)), Some(Price(1980))));
        risk.set_limits(AccountId(0), RiskLimits { price_band_bps: Some(7), ..RiskLimits::default() })
            .unwrap();
        assert_eq!(caps(&mut risk, NICKEL, 100_00 * CENT), (Some(Price(2001)), Some(Price(1999))));
        // A zero band caps at the reference, rounded inward.
        risk.set_limits(AccountId(0), RiskLimits { price_band_bps: Some(0), ..RiskLimits::default() })
            .unwrap();
        assert_eq!(caps(&mut risk, NICKEL, 100_02 * CENT), (Some(Price(2000)), Some(Price(2001))));
    }

    #[test]
    fn market_cap_passes_the_band_and_one_tick_more_does_not() {
        let mut risk = risk(Some(100));
        risk.set_reference_price(SymbolId(0), PriceUnits(100_01 * CENT)).unwrap();
        let tick = CENT;
        for (n, side) in [Side::Buy, Side::Sell].into_iter().enumerate() {
            let cap = risk.market_cap(&market(SymbolId(0), side)).unwrap();
            let outward = if side == Side::Buy { tick } else { -tick };
            let id = |s: &str| ClOrdId::from_str(&format!("{s}{n}")).unwrap();
            let at_cap = NewOrder::limit(AccountId(0), SymbolId(0), id("in"), side, cap.0 * tick, 1);
            assert_eq!(risk.check_new(&at_cap), Ok(()), "{side:?}");
            let beyond =
                NewOrder::limit(AccountId(0), SymbolId(0), id("out"), side, cap.0 * tick + outward, 1);
            assert_eq!(risk.check_new(&beyond).unwrap_err().reason, RiskReason::PriceBand, "{side:?}");
        }
    }

    #[test]
    fn market_cap_is_at_least_one_tick() {
        let mut risk = risk(Some(10_000));
        // A band of 100% (or more) puts the sell edge at (or below) zero.
        assert_eq!(caps(&mut risk, SymbolId(0), 100_00 * CENT), (Some(Price(200_00)), Some(Price(1))));
        risk.set_default_limits(RiskLimits { price_band_bps: Some(25_000), ..RiskLimits::default() })
            .unwrap();
        assert_eq!(caps(&mut risk, SymbolId(0), 100_00 * CENT), (Some(Price(350_00)), Some(Price(1))));
        // A reference below one tick puts the buy edge below one tick.
        risk.set_default_limits(RiskLimits { price_band_bps: Some(0), ..RiskLimits::default() }).unwrap();
        assert_eq!(caps(&mut risk, SymbolId(0), CENT / 2), (Some(Price(1)), Some(Price(1))));
    }

    #[test]
    fn market_cap_is_none_without_band_reference_or_a_plain_market_order() {
        // No band (the default limits), even with a reference price.
        let mut no_band = risk(None);
        assert_eq!(caps(&mut no_band, SymbolId(0), 100_00 * CENT), (None, None));
        // A band but no reference price.
        let mut risk = risk(Some(100));
        assert_eq!(risk.market_cap(&market(SymbolId(0), Side::Buy)), None);
        risk.set_reference_price(SymbolId(0), PriceUnits(100_00 * CENT)).unwrap();
        assert!(risk.market_cap(&market(SymbolId(0), Side::Buy)).is_some());
        // A limit order, a stop-market order, an unknown account or symbol.
        let id = ClOrdId::from_str("x").unwrap();
        assert_eq!(
            risk.market_cap(&NewOrder::limit(AccountId(0), SymbolId(0), id, Side::Buy, 100_00 * CENT, 1)),
            None
        );
        let stop = NewOrder { stop_price: Some(PriceUnits(101_00 * CENT)), ..market(SymbolId(0), Side::Buy) };
        assert_eq!(risk.market_cap(&stop), None);
        assert_eq!(
            risk.market_cap(&NewOrder { account: AccountId(9), ..market(SymbolId(0), Side::Buy) }),
            None
        );
        assert_eq!(risk.market_cap(&market(SymbolId(9), Side::Buy)), None);
        // An account's own limits without a band, while the default has one.
        risk.set_limits(AccountId(1), RiskLimits::default()).unwrap();
        assert_eq!(
            risk.market_cap(&NewOrder { account: AccountId(1), ..market(SymbolId(0), Side::Buy) }),
            None
        );
        assert!(risk.market_cap(&market(SymbolId(0), Side::Sell)).is_some());
    }
}
