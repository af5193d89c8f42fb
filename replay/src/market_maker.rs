//! A quoting market maker: one post-only bid and one post-only ask around the mid of the other
//! accounts' book, skewed against its inventory, moved by cancel/replace.

use engine::{Price, Qty, Side};

use crate::strategy::{Ctx, Fill, OrderSpec, OrderUpdate, OwnOrder, Strategy};

/// Settings of [`MarketMaker`]. Quantities are in lots of the traded symbol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarketMakerConfig {
    /// Size of each quote, in lots (default 5).
    pub quote_lots: u64,
    /// Distance of each quote from the mid, in ticks (default 1; 0 quotes the mid's
    /// neighbouring ticks).
    pub half_spread_ticks: i64,
    /// Both quotes move this many ticks against every `quote_lots` of inventory (default 1):
    /// a long position lowers them (sell sooner, buy later). Rounded toward zero.
    pub skew_ticks: i64,
    /// Inventory bound, in lots (default 25): no bid at or above `+inventory_max_lots`, no ask
    /// at or below `-inventory_max_lots` (a quote that could cross it is withdrawn).
    pub inventory_max_lots: u64,
}

impl Default for MarketMakerConfig {
    fn default() -> MarketMakerConfig {
        MarketMakerConfig { quote_lots: 5, half_spread_ticks: 1, skew_ticks: 1, inventory_max_lots: 25 }
    }
}

/// The market maker. Keeps at most one order per side (two live orders).
///
/// After every book change, fill and order update it works out where its quotes belong: the
/// mid of the best bid and ask of other accounts (or the last trade when a side is empty),
/// `half_spread_ticks` either side, shifted by the inventory skew but never through the
/// opposite best price. A missing quote is sent
/// post-only; a quote at the wrong price or size is replaced; a quote the inventory bound
/// forbids is canceled. An order with a change in flight is left alone until it lands.
#[derive(Clone, Debug)]
pub struct MarketMaker {
    config: MarketMakerConfig,
    requotes: i64,
}

impl MarketMaker {
    /// A market maker with these settings.
    pub fn new(config: MarketMakerConfig) -> MarketMaker {
        MarketMaker { config, requotes: 0 }
    }

    /// Where the bid and the ask belong now, each `None` when that side should not quote.
    pub fn targets(&self, ctx: &Ctx<'_>) -> (Option<Price>, Option<Price>) {
        let top = ctx.top();
        let Some(mid_x2) = top.mid_x2().or_else(|| top.last_trade.map(|p| 2 * p.0)) else {
            return (None, None);
        };
        let lot = ctx.session().symbol.lot as i64;
        let quote_qty = self.config.quote_lots.max(1) as i64 * lot;
        let skew = ctx.position() * self.config.skew_ticks / quote_qty;
        let half = self.config.half_spread_ticks.max(0);
        let mut bid = mid_x2.div_euclid(2) - half - skew;
        let mut ask = (mid_x2 + 1).div_euclid(2) + half - skew;
        // A skewed quote stops one tick short of the opposite best: post-only, it would
        // otherwise only be rejected `would_take`.
        if let Some(best_ask) = top.ask {
            bid = bid.min(best_ask.price.0 - 1);
        }
        if let Some(best_bid) = top.bid {
            ask = ask.max(best_bid.price.0 + 1);
        }
        if ask <= bid {
            ask = bid + 1;
        }
        let inventory_max = self.config.inventory_max_lots as i64 * lot;
        let bid_ok = bid > 0 && ctx.position() + quote_qty <= inventory_max;
        let ask_ok = ask > 0 && ctx.position() - quote_qty >= -inventory_max;
        (bid_ok.then_some(Price(bid)), ask_ok.then_some(Price(ask)))
    }

    fn requote(&mut self, ctx: &mut Ctx<'_>) {
        let (bid, ask) = self.targets(ctx);
        self.quote(Side::Buy, bid, ctx);
        self.quote(Side::Sell, ask, ctx);
    }

    fn quote(&mut self, side: Side, target: Option<Price>, ctx: &mut Ctx<'_>) {
        let quote_qty: Qty = self.config.quote_lots.max(1) * ctx.session().symbol.lot;
        // Bounded by live_orders_max; normally one.
        let mine: Vec<OwnOrder> = ctx.orders().filter(|o| o.side == side).copied().collect();
        let (keep, extra) = match mine.split_first() {
            Some((first, rest)) => (Some(*first), rest),
            None => (None, &[][..]),
        };
        for o in extra {
            if o.acked && !o.change_pending {
                let _ = ctx.cancel(o.id);
            }
        }
        match (keep, target) {
            (None, Some(price)) => {
                // A refused send (bounds, flow over) is counted by the simulator; the next
                // callback tries again.
                let _ = ctx.send(OrderSpec::limit(side, price, quote_qty).post_only());
            }
            (None, None) => {}
            (Some(o), _) if !o.acked || o.change_pending => {}
            (Some(o), None) => {
                let _ = ctx.cancel(o.id);
            }
            (Some(o), Some(price)) => {
                if o.price != Some(price) || o.leaves_qty != quote_qty {
                    self.requotes += 1;
                    let _ = ctx.replace(o.id, price, quote_qty);
                }
            }
        }
    }
}

impl Strategy for MarketMaker {
    fn name(&self) -> &str {
        "market-maker"
    }

    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        self.requote(ctx);
    }

    fn on_order(&mut self, _update: &OrderUpdate, ctx: &mut Ctx<'_>) {
        self.requote(ctx);
    }

    fn on_fill(&mut self, _fill: &Fill, ctx: &mut Ctx<'_>) {
        self.requote(ctx);
    }

    fn on_book(&mut self, ctx: &mut Ctx<'_>) {
        self.requote(ctx);
    }

    fn stats(&self) -> Vec<(&'static str, i64)> {
        vec![
            ("quote_lots", self.config.quote_lots as i64),
            ("half_spread_ticks", self.config.half_spread_ticks),
            ("skew_ticks", self.config.skew_ticks),
            ("inventory_max_lots", self.config.inventory_max_lots as i64),
            ("requotes", self.requotes),
        ]
    }
}
