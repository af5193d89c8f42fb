//! The funds gate: an order may not spend more than its account holds. A buy needs its cash
//! (limit price × quantity) plus the larger of the symbol's fees in the quote asset, a sell
//! its quantity in the base asset. A replace needs what it adds to the order's cost (a higher
//! price or a larger leaves quantity); one that lowers the cost needs nothing.
//!
//! The ledger's follower publishes each account's available amount after every durable commit
//! ([`FundsSource`]); it runs behind the engine by the journal's lag, so the gate keeps its own
//! reservation of every order it passed until the follower's cursor has passed that order's
//! events (from then on the follower's own hold or trade legs count against the account).
//! Sans-IO: one read of a shared snapshot per check, no lock, no allocation on the pass path.

use std::collections::VecDeque;
use std::sync::Arc;

use engine::{AccountId, Event, NewOrder, OrdType, Price, PriceUnits, Qty, ReplaceOrder, Side};

/// Most reservations of orders the follower has not seen yet; past it orders are refused
/// (the follower is that far behind).
pub const RESERVATIONS_MAX: usize = 65_536;

/// Available amounts per (account, asset) as of a cursor, read lock-free.
pub trait FundsSource: Send + Sync + std::fmt::Debug {
    /// What `account` may spend of `asset`, in the asset's minor units; `None` when unknown.
    fn available(&self, account: AccountId, asset: u16) -> Option<i64>;
    /// The last event seq whose effects [`FundsSource::available`] includes.
    fn cursor(&self) -> u64;
}

/// How one symbol's orders spend funds, in integers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FundsRule {
    /// Asset a sell delivers.
    pub base: u16,
    /// Asset a buy pays.
    pub quote: u16,
    /// Base minor units per engine quantity unit.
    pub base_minor_per_qty: u64,
    /// Quote minor units per tick per engine quantity unit.
    pub quote_minor_per_tick_qty: u64,
    /// Fee charged on a buy's cash at most (the larger of maker and taker), bps.
    pub fee_bps: u32,
    /// Price units per tick (commands carry price units, the cost is counted in ticks).
    pub tick_units: PriceUnits,
}

/// The funds gate's configuration.
#[derive(Clone, Debug)]
pub struct FundsConfig {
    /// Where available amounts come from.
    pub source: Arc<dyn FundsSource>,
    /// Asset names and scales (decimals), by asset id, for reject texts.
    pub assets: Vec<(String, u32)>,
    /// Rule by engine symbol id; `None`: the symbol does not settle, nothing is checked.
    pub rules: Vec<Option<FundsRule>>,
}

#[derive(Debug)]
struct Reservation {
    command_seq: u64,
    /// Last event seq of the command seen so far.
    event_seq: Option<u64>,
    cell: usize,
    amount: i64,
}

/// The live order a replace changes, as the order state knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Replaced {
    /// Side.
    pub(crate) side: Side,
    /// Limit price in ticks, as the engine's events carry it (a market order has none and is
    /// not funds-checked).
    pub(crate) price_ticks: i64,
    /// OrderQty, filled part included.
    pub(crate) qty: Qty,
    /// CumQty.
    pub(crate) cum_qty: Qty,
}

/// Why the funds gate refused an order; its text names the asset and the amounts.
#[derive(Debug)]
pub(crate) struct FundsReject {
    pub(crate) text: String,
}

#[derive(Debug)]
pub(crate) struct Funds {
    config: FundsConfig,
    accounts: usize,
    reserved: Vec<i64>,
    reservations: VecDeque<Reservation>,
}

impl Funds {
    pub(crate) fn new(config: FundsConfig, accounts: usize) -> Funds {
        let cells = accounts * config.assets.len();
        Funds { config, accounts, reserved: vec![0; cells], reservations: VecDeque::new() }
    }

    /// Checks a new order (after any market cap: `cap` bounds a market order's price, `None`
    /// when nothing bounds it) and reserves its cost under `command_seq`.
    pub(crate) fn check(
        &mut self,
        order: &NewOrder,
        cap: Option<Price>,
        command_seq: u64,
    ) -> Result<(), FundsReject> {
        self.release_seen();
        let Some(rule) = self.config.rules.get(order.symbol.index()).copied().flatten() else {
            return Ok(());
        };
        if order.account.index() >= self.accounts {
            return Ok(());
        }
        let ticks = match (order.side, order.ord_type, cap) {
            (Side::Buy, OrdType::Market, Some(cap)) => cap.0,
            // A market buy with no band or reference price has no price to bound it;
            // the follower refuses its trade if the buyer cannot pay.
            (Side::Buy, OrdType::Market, None) => return Ok(()),
            _ => order.price.get() / rule.tick_units.get().max(1),
        };
        let (asset, amount) = cost(&rule, order.side, ticks, order.qty);
        self.reserve(order.account, asset, amount, command_seq, "")
    }

    /// Checks a replace of the live order `old` and reserves what it adds to the order's cost
    /// (new leaves at the new price, less the old leaves at the old price) under
    /// `command_seq`; a replace that costs no more passes without a reservation.
    pub(crate) fn check_replace(
        &mut self,
        replace: &ReplaceOrder,
        old: Replaced,
        command_seq: u64,
    ) -> Result<(), FundsReject> {
        self.release_seen();
        let Some(rule) = self.config.rules.get(replace.symbol.index()).copied().flatten() else {
            return Ok(());
        };
        if replace.account.index() >= self.accounts {
            return Ok(());
        }
        let tick = rule.tick_units.get().max(1);
        let old_leaves = old.qty.saturating_sub(old.cum_qty);
        // The engine refuses a quantity below the filled part; nothing is held for it here.
        let new_leaves = replace.qty.saturating_sub(old.cum_qty);
        let (asset, before) = cost(&rule, old.side, old.price_ticks, old_leaves);
        // The replace's price is in price units, like a new order's.
        let new_ticks = replace.price.map_or(old.price_ticks, |p| p.get() / tick);
        let (_, after) = cost(&rule, old.side, new_ticks, new_leaves);
        if after <= before {
            return Ok(());
        }
        self.reserve(replace.account, asset, after - before, command_seq, " more for the replace")
    }

    /// Reserves `amount` of `asset` for `account` under `command_seq`, or refuses when it is
    /// above what is available less what is already reserved.
    fn reserve(
        &mut self,
        account: AccountId,
        asset: u16,
        amount: i128,
        command_seq: u64,
        what: &str,
    ) -> Result<(), FundsReject> {
        let cell = account.index() * self.config.assets.len() + asset as usize;
        let available = i128::from(self.config.source.available(account, asset).unwrap_or(0));
        let reserved = i128::from(self.reserved[cell]);
        if amount > available - reserved || amount > i128::from(i64::MAX) {
            let (name, scale) = &self.config.assets[asset as usize];
            let text = format!(
                "{name} needed {}{what}, available {} ({} reserved by orders not yet booked)",
                decimal(amount, *scale),
                decimal(available - reserved, *scale),
                decimal(reserved, *scale),
            );
            return Err(FundsReject { text });
        }
        if self.reservations.len() >= RESERVATIONS_MAX {
            let text = format!("{RESERVATIONS_MAX} orders wait for the ledger to book them; retry");
            return Err(FundsReject { text });
        }
        let amount = amount as i64;
        self.reserved[cell] += amount;
        self.reservations.push_back(Reservation { command_seq, event_seq: None, cell, amount });
        Ok(())
    }

    /// An engine event: the reservation of its command now waits for the follower to pass it.
    pub(crate) fn on_event(&mut self, event: &Event) {
        let i = self.reservations.partition_point(|r| r.command_seq < event.command_seq);
        if let Some(r) = self.reservations.get_mut(i).filter(|r| r.command_seq == event.command_seq) {
            r.event_seq = Some(r.event_seq.map_or(event.seq, |s| s.max(event.seq)));
        }
        self.release_seen();
    }

    /// Drops reservations whose events the follower has booked (they count in its amounts).
    fn release_seen(&mut self) {
        let cursor = self.config.source.cursor();
        while let Some(r) = self.reservations.front() {
            if r.event_seq.is_none_or(|s| s > cursor) {
                break;
            }
            self.reserved[r.cell] -= r.amount;
            self.reservations.pop_front();
        }
    }
}

/// What `qty` at `ticks` costs on `side`: a buy its cash and the larger fee in the quote
/// asset, a sell its quantity in the base asset.
fn cost(rule: &FundsRule, side: Side, ticks: i64, qty: Qty) -> (u16, i128) {
    match side {
        Side::Sell => (rule.base, i128::from(qty) * i128::from(rule.base_minor_per_qty)),
        Side::Buy => {
            let cash = i128::from(ticks.max(0)) * i128::from(qty) * i128::from(rule.quote_minor_per_tick_qty);
            let fee = (cash * i128::from(rule.fee_bps) + 9_999) / 10_000;
            (rule.quote, cash + fee)
        }
    }
}

fn decimal(minor: i128, scale: u32) -> String {
    if scale == 0 {
        return minor.to_string();
    }
    let p = 10i128.pow(scale);
    let sign = if minor < 0 { "-" } else { "" };
    let m = minor.unsigned_abs();
    format!("{sign}{}.{:0width$}", m / p as u128, m % p as u128, width = scale as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::{CancelReason, Event, EventKind, StpMode, Tif};
    use engine::{OrderId, SymbolId};
    use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

    #[derive(Debug, Default)]
    struct Table {
        usd: AtomicI64,
        btc: AtomicI64,
        cursor: AtomicU64,
    }

    impl FundsSource for Table {
        fn available(&self, _account: AccountId, asset: u16) -> Option<i64> {
            Some(if asset == 0 { self.usd.load(Ordering::Relaxed) } else { self.btc.load(Ordering::Relaxed) })
        }
        fn cursor(&self) -> u64 {
            self.cursor.load(Ordering::Relaxed)
        }
    }

    fn order(side: Side, price: i64, qty: u64) -> NewOrder {
        NewOrder {
            account: AccountId(0),
            symbol: SymbolId(0),
            id: engine::ClOrdId::from_str("o1").unwrap(),
            side,
            ord_type: OrdType::Limit,
            tif: Tif::Gtc,
            price: PriceUnits(price),
            qty,
            stop_price: None,
            display_qty: None,
            expire_ts: None,
            post_only: false,
            stp: StpMode::default(),
        }
    }

    fn gate(table: Arc<Table>) -> Funds {
        let rule = FundsRule {
            base: 1,
            quote: 0,
            base_minor_per_qty: 100,
            quote_minor_per_tick_qty: 1,
            fee_bps: 10,
            tick_units: PriceUnits(1),
        };
        let config = FundsConfig {
            source: table,
            assets: vec![("USD".into(), 2), ("BTC".into(), 2)],
            rules: vec![Some(rule)],
        };
        Funds::new(config, 1)
    }

    #[test]
    fn buys_need_cash_and_fee_sells_need_the_asset_and_reservations_last_until_booked() {
        let table = Arc::new(Table::default());
        table.usd.store(10_010, Ordering::Relaxed); // 100.10 USD
        table.btc.store(500, Ordering::Relaxed);
        let mut g = gate(table.clone());
        // 100 ticks × 100 qty = 10 000 cents + 10 bps fee (10) = 10 010: exactly enough.
        g.check(&order(Side::Buy, 100, 100), None, 7).unwrap();
        // The reservation stays until the follower passes the order's events.
        let e = g.check(&order(Side::Buy, 1, 1), None, 8).unwrap_err();
        assert!(e.text.starts_with("USD needed 0.02, available 0.00 (100.10 reserved"), "{}", e.text);
        let event = Event {
            seq: 40,
            command_seq: 7,
            ts: 0,
            kind: EventKind::Canceled {
                account: AccountId(0),
                symbol: SymbolId(0),
                order_id: OrderId(1),
                id: engine::ClOrdId::from_str("o1").unwrap(),
                reason: CancelReason::User,
                leaves_qty: 0,
            },
        };
        g.on_event(&event);
        assert_eq!(g.reserved[0], 10_010, "the follower has not reached seq 40");
        table.cursor.store(40, Ordering::Relaxed);
        g.check(&order(Side::Buy, 1, 1), None, 9).unwrap();
        assert_eq!(g.reserved[0], 2, "released at the cursor; the new one reserved");
        // Sells: 6 qty × 100 = 600 > 500.
        let e = g.check(&order(Side::Sell, 100, 6), None, 10).unwrap_err();
        assert!(e.text.starts_with("BTC needed 6.00, available 5.00"), "{}", e.text);
        g.check(&order(Side::Sell, 100, 5), None, 11).unwrap();
        // A market buy uses the cap.
        let mut market = order(Side::Buy, 0, 1);
        market.ord_type = OrdType::Market;
        assert!(g.check(&market, Some(Price(1_000_000)), 12).is_err());
    }

    fn replace(price: Option<i64>, qty: u64) -> ReplaceOrder {
        ReplaceOrder {
            account: AccountId(0),
            symbol: SymbolId(0),
            orig_id: engine::ClOrdId::from_str("o1").unwrap(),
            id: engine::ClOrdId::from_str("o2").unwrap(),
            price: price.map(PriceUnits),
            qty,
        }
    }

    #[test]
    fn replaces_pay_only_what_they_add_and_are_refused_beyond_available() {
        let table = Arc::new(Table::default());
        table.usd.store(1_000, Ordering::Relaxed); // 10.00 USD left after the resting order
        table.btc.store(300, Ordering::Relaxed);
        let mut g = gate(table.clone());
        // A resting buy of 100 at 100 ticks, 40 filled: 60 leaves cost 6 000 + 6 fee.
        let old = Replaced { side: Side::Buy, price_ticks: 100, qty: 100, cum_qty: 40 };
        // Lower price or quantity: nothing more needed, nothing reserved.
        g.check_replace(&replace(Some(90), 100), old, 1).unwrap();
        g.check_replace(&replace(None, 50), old, 2).unwrap();
        assert_eq!(g.reserved[0], 0);
        // 60 leaves at 116: 6 960 + 7 − 6 006 = 961 more: fits in 1 000, and is reserved.
        g.check_replace(&replace(Some(116), 100), old, 3).unwrap();
        assert_eq!(g.reserved[0], 961);
        // Another raise now finds only 0.39 left: refused, naming the extra and what is left.
        let e = g.check_replace(&replace(None, 101), old, 4).unwrap_err();
        assert!(e.text.starts_with("USD needed 1.01 more for the replace, available 0.39"), "{}", e.text);
        assert_eq!(g.reserved[0], 961, "a refused replace reserves nothing");
        // A sell's raise needs the base asset: 40 leaves → 45 is 500 more, 300 available.
        let sell = Replaced { side: Side::Sell, price_ticks: 100, qty: 40, cum_qty: 0 };
        let e = g.check_replace(&replace(Some(1), 45), sell, 5).unwrap_err();
        assert!(e.text.starts_with("BTC needed 5.00 more for the replace, available 3.00"), "{}", e.text);
        g.check_replace(&replace(Some(1), 43), sell, 6).unwrap();
        assert_eq!(g.reserved[1], 300);
    }
}
