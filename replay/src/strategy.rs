//! The strategy API: what a strategy sees (book tops, trades, its own orders and fills) and how
//! it acts (orders, cancels and replaces through [`Ctx`]).
//!
//! A strategy is a plain state machine driven by the simulator: it never sees the engine, reads
//! no clock (time is [`Ctx::now_ns`], the flow's time) and draws no randomness of its own, so a
//! backtest is a pure function of the journal, the configuration and the seed.

use std::collections::BTreeMap;

use engine::{CancelReason, Price, Qty, RejectReason, Side, SymbolSpec, Tif};

/// One of the strategy's orders: the number in its client id (`bt<n>`).
///
/// Numbers are never reused within a backtest, so a client id is unique among the strategy's
/// live orders (and among all its orders). A replace gives the order a new number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OrderRef(pub u64);

/// Prefix of the strategy's client ids.
pub const CLIENT_ID_PREFIX: &str = "bt";

impl OrderRef {
    /// The client id the engine sees.
    pub fn client_id(self) -> String {
        format!("{CLIENT_ID_PREFIX}{}", self.0)
    }

    /// The reference behind a client id the strategy sent, `None` for any other id.
    pub fn from_client_id(id: &str) -> Option<OrderRef> {
        id.strip_prefix(CLIENT_ID_PREFIX)?.parse().ok().map(OrderRef)
    }
}

/// Best price and visible quantity on one side, other accounts' orders only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quote {
    /// Price in ticks.
    pub price: Price,
    /// Visible quantity at that price, the strategy's own orders left out.
    pub qty: Qty,
}

/// The market as the strategy sees it: the top of the traded symbol's book without its own
/// orders (so quoting never chases itself), and the last trade price (own trades included).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TopOfBook {
    /// Best bid of other accounts.
    pub bid: Option<Quote>,
    /// Best ask of other accounts.
    pub ask: Option<Quote>,
    /// Price of the last trade on the symbol, in ticks.
    pub last_trade: Option<Price>,
}

impl TopOfBook {
    /// Twice the mid price in ticks (bid + ask), exact in integers; `None` unless both sides
    /// are quoted.
    pub fn mid_x2(&self) -> Option<i64> {
        Some(self.bid?.price.0 + self.ask?.price.0)
    }
}

/// What the strategy trades and the recorded flow it runs against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// The traded symbol.
    pub symbol: SymbolSpec,
    /// Timestamp of the first recorded command, in nanoseconds.
    pub first_ts: u64,
    /// Timestamp of the last recorded command, in nanoseconds.
    pub last_ts: u64,
    /// Recorded commands in the flow.
    pub commands: u64,
}

/// The strategy's side of a trade.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liquidity {
    /// The strategy's order was resting (maker fee).
    Maker,
    /// The strategy's order was the aggressor (taker fee).
    Taker,
}

impl Liquidity {
    /// Name used in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            Liquidity::Maker => "maker",
            Liquidity::Taker => "taker",
        }
    }
}

/// One fill of one of the strategy's orders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fill {
    /// The order.
    pub id: OrderRef,
    /// The order's side.
    pub side: Side,
    /// Trade price in ticks.
    pub price: Price,
    /// Filled quantity.
    pub qty: Qty,
    /// The order's open quantity after the fill.
    pub leaves_qty: Qty,
    /// Maker or taker.
    pub liquidity: Liquidity,
    /// Fee charged, in price units (negative: a rebate).
    pub fee_units: i128,
}

/// A trade printed on the traded symbol (anyone's, the strategy's own included).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TradePrint {
    /// Price in ticks.
    pub price: Price,
    /// Quantity.
    pub qty: Qty,
    /// Side of the taker.
    pub aggressor: Side,
    /// The strategy was maker or taker.
    pub own: bool,
}

/// Which of the strategy's commands an engine reject answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnCommand {
    /// A new order (it never went live).
    New,
    /// A cancel (the order, if still live, is unchanged).
    Cancel,
    /// A replace of `orig` (which, if still live, is unchanged).
    Replace {
        /// The order the replace was for.
        orig: OrderRef,
    },
}

/// What happened to one of the strategy's orders, other than a fill.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderUpdate {
    /// The engine accepted a new order.
    Accepted {
        /// The order.
        id: OrderRef,
    },
    /// The engine refused a command; `id` is the command's client id (a replace's new id).
    Rejected {
        /// The command's client id.
        id: OrderRef,
        /// What the command was.
        command: OwnCommand,
        /// Why.
        reason: RejectReason,
    },
    /// The order left without trading out (a user cancel, an IOC rest, self-trade prevention).
    Canceled {
        /// The order.
        id: OrderRef,
        /// Why.
        reason: CancelReason,
        /// Open quantity it had.
        leaves_qty: Qty,
    },
    /// A replace took effect: the order is now `id`.
    Replaced {
        /// The id it had.
        orig: OrderRef,
        /// The id it has now.
        id: OrderRef,
        /// Open quantity now (0: the replace ended the order).
        leaves_qty: Qty,
    },
    /// A GTD order expired.
    Expired {
        /// The order.
        id: OrderRef,
    },
}

/// An order to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderSpec {
    /// Side.
    pub side: Side,
    /// Limit price in ticks; `None` for a market order.
    pub price: Option<Price>,
    /// Quantity (a multiple of the symbol's lot, or the engine rejects it `bad_qty`).
    pub qty: Qty,
    /// Time in force (`Gtd` is not offered: the simulator sends no expiry).
    pub tif: Tif,
    /// Rejected `would_take` if it would trade on arrival.
    pub post_only: bool,
}

impl OrderSpec {
    /// A GTC limit order.
    pub fn limit(side: Side, price: Price, qty: Qty) -> OrderSpec {
        OrderSpec { side, price: Some(price), qty, tif: Tif::Gtc, post_only: false }
    }

    /// A market order (IOC).
    pub fn market(side: Side, qty: Qty) -> OrderSpec {
        OrderSpec { side, price: None, qty, tif: Tif::Ioc, post_only: false }
    }

    /// The same order, post-only.
    pub fn post_only(self) -> OrderSpec {
        OrderSpec { post_only: true, ..self }
    }

    /// The same order, immediate-or-cancel.
    pub fn ioc(self) -> OrderSpec {
        OrderSpec { tif: Tif::Ioc, ..self }
    }
}

/// Why the simulated gateway refused to send a command (the engine never saw it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The strategy already has `live_orders_max` orders live or on their way.
    #[error("too many live orders")]
    TooManyOrders,
    /// `in_flight_max` commands are already on their way to the engine.
    #[error("too many commands in flight")]
    InFlightFull,
    /// The recorded flow has ended: nothing new is sent (commands already in flight arrive).
    #[error("the recorded flow has ended")]
    Closed,
    /// The order is not one of the strategy's live orders.
    #[error("unknown order")]
    UnknownOrder,
    /// A cancel or replace of the order is already on its way.
    #[error("a cancel or replace of this order is in flight")]
    ChangePending,
    /// `GTD` needs an expiry the simulator does not send.
    #[error("GTD orders are not supported")]
    Unsupported,
}

/// One of the strategy's orders as the simulator knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OwnOrder {
    /// Its reference (client id).
    pub id: OrderRef,
    /// Side.
    pub side: Side,
    /// Limit price in ticks (`None` for a market order).
    pub price: Option<Price>,
    /// Total quantity, filled part included.
    pub qty: Qty,
    /// Open quantity.
    pub leaves_qty: Qty,
    /// The engine has accepted it (false while the new order is in flight).
    pub acked: bool,
    /// A cancel or replace of it is in flight.
    pub change_pending: bool,
}

/// A command on its way to the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outgoing {
    New(OrderRef, OrderSpec),
    Cancel(OrderRef),
    Replace { orig: OrderRef, id: OrderRef, price: Option<Price>, qty: Qty },
}

/// The strategy's end of the simulated connection: its orders and what it has asked to send.
/// Bounded by `live_orders_max` orders and `in_flight_max` commands.
#[derive(Debug)]
pub(crate) struct Gateway {
    pub(crate) orders: BTreeMap<OrderRef, OwnOrder>,
    /// Commands the strategy sent during the current callback round, in order; the simulator
    /// stamps their arrival times and moves them into its in-flight queue.
    pub(crate) outbox: Vec<Outgoing>,
    /// Commands in flight, counted by the simulator (the outbox adds to them).
    pub(crate) in_flight: usize,
    pub(crate) in_flight_max: usize,
    pub(crate) live_orders_max: usize,
    next_ref: u64,
    pub(crate) closed: bool,
    /// Sends refused by the bounds above (the engine never saw them).
    pub(crate) refused: u64,
}

impl Gateway {
    pub(crate) fn new(live_orders_max: usize, in_flight_max: usize) -> Gateway {
        Gateway {
            orders: BTreeMap::new(),
            outbox: Vec::with_capacity(in_flight_max),
            in_flight: 0,
            in_flight_max,
            live_orders_max,
            next_ref: 1,
            closed: false,
            refused: 0,
        }
    }

    fn check_room(&mut self, new_order: bool) -> Result<(), SendError> {
        let refusal = if self.closed {
            Some(SendError::Closed)
        } else if self.in_flight + self.outbox.len() >= self.in_flight_max {
            Some(SendError::InFlightFull)
        } else if new_order && self.orders.len() >= self.live_orders_max {
            Some(SendError::TooManyOrders)
        } else {
            None
        };
        match refusal {
            Some(e) => {
                self.refused += 1;
                Err(e)
            }
            None => Ok(()),
        }
    }

    fn next_ref(&mut self) -> OrderRef {
        let id = OrderRef(self.next_ref);
        self.next_ref += 1;
        id
    }

    fn send(&mut self, spec: OrderSpec) -> Result<OrderRef, SendError> {
        if spec.tif == Tif::Gtd {
            self.refused += 1;
            return Err(SendError::Unsupported);
        }
        self.check_room(true)?;
        let id = self.next_ref();
        self.orders.insert(
            id,
            OwnOrder {
                id,
                side: spec.side,
                price: spec.price,
                qty: spec.qty,
                leaves_qty: spec.qty,
                acked: false,
                change_pending: false,
            },
        );
        self.outbox.push(Outgoing::New(id, spec));
        Ok(id)
    }

    fn changeable(&mut self, id: OrderRef) -> Result<OwnOrder, SendError> {
        let refusal = match self.orders.get(&id) {
            None => SendError::UnknownOrder,
            Some(o) if o.change_pending => SendError::ChangePending,
            Some(o) => return Ok(*o),
        };
        self.refused += 1;
        Err(refusal)
    }

    fn cancel(&mut self, id: OrderRef) -> Result<(), SendError> {
        self.changeable(id)?;
        self.check_room(false)?;
        self.orders.get_mut(&id).expect("checked").change_pending = true;
        self.outbox.push(Outgoing::Cancel(id));
        Ok(())
    }

    fn replace(&mut self, id: OrderRef, price: Price, leaves_qty: Qty) -> Result<OrderRef, SendError> {
        let order = self.changeable(id)?;
        self.check_room(false)?;
        // The engine takes the new total quantity, filled part included.
        let filled = order.qty - order.leaves_qty;
        let new_id = self.next_ref();
        self.orders.get_mut(&id).expect("checked").change_pending = true;
        self.outbox.push(Outgoing::Replace {
            orig: id,
            id: new_id,
            price: Some(price),
            qty: filled + leaves_qty,
        });
        Ok(new_id)
    }
}

/// The strategy's view and its handle to act, valid during one callback.
#[derive(Debug)]
pub struct Ctx<'a> {
    pub(crate) now_ns: u64,
    pub(crate) top: &'a TopOfBook,
    pub(crate) session: &'a Session,
    pub(crate) position: i64,
    pub(crate) gateway: &'a mut Gateway,
}

impl Ctx<'_> {
    /// The flow's time: the timestamp of the command just processed, in nanoseconds.
    pub fn now_ns(&self) -> u64 {
        self.now_ns
    }

    /// The top of the traded symbol's book, other accounts' orders only.
    pub fn top(&self) -> &TopOfBook {
        self.top
    }

    /// The traded symbol and the flow's time span.
    pub fn session(&self) -> &Session {
        self.session
    }

    /// Inventory: units bought minus units sold so far.
    pub fn position(&self) -> i64 {
        self.position
    }

    /// The strategy's orders that are live or on their way, by reference.
    pub fn orders(&self) -> impl Iterator<Item = &OwnOrder> + '_ {
        self.gateway.orders.values()
    }

    /// One of the strategy's live or in-flight orders.
    pub fn order(&self, id: OrderRef) -> Option<&OwnOrder> {
        self.gateway.orders.get(&id)
    }

    /// Sends a new order; it reaches the engine after the simulated latency.
    pub fn send(&mut self, spec: OrderSpec) -> Result<OrderRef, SendError> {
        self.gateway.send(spec)
    }

    /// Cancels a live order.
    pub fn cancel(&mut self, id: OrderRef) -> Result<(), SendError> {
        self.gateway.cancel(id)
    }

    /// Cancel/replace: moves a live limit order to `price` with `leaves_qty` open (the engine
    /// gets the new total, the part filled so far included). Returns the order's new reference.
    pub fn replace(&mut self, id: OrderRef, price: Price, leaves_qty: Qty) -> Result<OrderRef, SendError> {
        self.gateway.replace(id, price, leaves_qty)
    }
}

/// A trading strategy driven by recorded flow. Every callback may act through `ctx`.
///
/// Per processed command (recorded or the strategy's own), in this order: one call per event
/// that concerns the strategy ([`Strategy::on_order`], [`Strategy::on_fill`], and
/// [`Strategy::on_trade`] for every trade on the symbol), then [`Strategy::on_book`] if the top
/// of book changed, then [`Strategy::on_timer`].
pub trait Strategy {
    /// The name it is run by (`--strategy`).
    fn name(&self) -> &str;

    /// Once, before the first recorded command.
    fn on_start(&mut self, _ctx: &mut Ctx<'_>) {}

    /// One of its orders was accepted, rejected, canceled, replaced or expired.
    fn on_order(&mut self, _update: &OrderUpdate, _ctx: &mut Ctx<'_>) {}

    /// One of its orders traded.
    fn on_fill(&mut self, _fill: &Fill, _ctx: &mut Ctx<'_>) {}

    /// A trade printed on the symbol (after `on_fill` for its own).
    fn on_trade(&mut self, _trade: &TradePrint, _ctx: &mut Ctx<'_>) {}

    /// The top of book ([`Ctx::top`]) changed.
    fn on_book(&mut self, _ctx: &mut Ctx<'_>) {}

    /// After every command: the flow's clock moved to [`Ctx::now_ns`].
    fn on_timer(&mut self, _ctx: &mut Ctx<'_>) {}

    /// Figures of its own for the report (name, value), in a stable order.
    fn stats(&self) -> Vec<(&'static str, i64)> {
        Vec::new()
    }
}

impl<S: Strategy + ?Sized> Strategy for Box<S> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        (**self).on_start(ctx)
    }
    fn on_order(&mut self, update: &OrderUpdate, ctx: &mut Ctx<'_>) {
        (**self).on_order(update, ctx)
    }
    fn on_fill(&mut self, fill: &Fill, ctx: &mut Ctx<'_>) {
        (**self).on_fill(fill, ctx)
    }
    fn on_trade(&mut self, trade: &TradePrint, ctx: &mut Ctx<'_>) {
        (**self).on_trade(trade, ctx)
    }
    fn on_book(&mut self, ctx: &mut Ctx<'_>) {
        (**self).on_book(ctx)
    }
    fn on_timer(&mut self, ctx: &mut Ctx<'_>) {
        (**self).on_timer(ctx)
    }
    fn stats(&self) -> Vec<(&'static str, i64)> {
        (**self).stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_round_trip_and_foreign_ids_are_not_ours() {
        assert_eq!(OrderRef(42).client_id(), "bt42");
        assert_eq!(OrderRef::from_client_id("bt42"), Some(OrderRef(42)));
        assert_eq!(OrderRef::from_client_id("a1"), None);
        assert_eq!(OrderRef::from_client_id("btx"), None);
    }

    #[test]
    fn the_gateway_states_its_bounds() {
        let mut gw = Gateway::new(2, 3);
        let a = gw.send(OrderSpec::limit(Side::Buy, Price(100), 1)).unwrap();
        gw.send(OrderSpec::limit(Side::Sell, Price(101), 1)).unwrap();
        assert_eq!(gw.send(OrderSpec::limit(Side::Sell, Price(102), 1)), Err(SendError::TooManyOrders));
        gw.cancel(a).unwrap();
        assert_eq!(gw.cancel(a), Err(SendError::ChangePending));
        assert_eq!(gw.cancel(OrderRef(99)), Err(SendError::UnknownOrder));
        gw.outbox.clear();
        gw.in_flight = 3;
        assert_eq!(gw.replace(OrderRef(2), Price(103), 1), Err(SendError::InFlightFull));
        gw.closed = true;
        gw.in_flight = 0;
        assert_eq!(gw.replace(OrderRef(2), Price(103), 1), Err(SendError::Closed));
        assert_eq!(gw.refused, 5);
    }

    #[test]
    fn a_replace_asks_for_the_new_total_quantity() {
        let mut gw = Gateway::new(4, 4);
        let a = gw.send(OrderSpec::limit(Side::Buy, Price(100), 10)).unwrap();
        let o = gw.orders.get_mut(&a).unwrap();
        o.acked = true;
        o.leaves_qty = 4; // 6 filled
        let b = gw.replace(a, Price(99), 5).unwrap();
        assert_eq!(gw.outbox[1], Outgoing::Replace { orig: a, id: b, price: Some(Price(99)), qty: 11 });
    }
}
