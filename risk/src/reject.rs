//! Why a check refused an order, as the gateway reports it: a stable name, the FIX reason codes
//! and a text naming the limit and the values.

use core::fmt;

use crate::notional::write_fixed;

/// The check that refused an order.
///
/// FIX codes, from the FIX 4.4 enumerations: a refused new order goes out as ExecutionReport
/// 150=8 with OrdRejReason (103) = [`RiskReason::ord_rej_reason`]; a refused replace as
/// OrderCancelReject 35=9 (434=2) with CxlRejReason (102) = [`RiskReason::cxl_rej_reason`]. Both
/// carry [`RiskReject`]'s text in Text (58).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RiskReason {
    /// The account id is not configured. 103=15 (unknown account), 102=99.
    UnknownAccount,
    /// The account's kill switch is engaged. 103=0 (broker/exchange option), 102=2.
    Killed,
    /// The client order id is live, pending, or finished recently. 103=6 (duplicate order),
    /// 102=6 (duplicate ClOrdID).
    DuplicateId,
    /// A replace of this order is already on its way to the engine. 103=99, 102=3 (already
    /// pending cancel or replace).
    ReplacePending,
    /// The venue-wide bound on tracked orders is reached. 103=0 (exchange option), 102=2.
    Capacity,
    /// The account's open-order limit. 103=3 (order exceeds limit), 102=2.
    OpenOrders,
    /// The order quantity limit. 103=3, 102=2.
    MaxQty,
    /// A market order with no reference price to bound it (no trade yet, none configured).
    /// 103=0 (exchange option: market orders are refused until there is a price), 102=2.
    NoReference,
    /// The limit price is outside the band around the reference price. 103=3: FIX 4.4 has no
    /// price-band code (FIX 5.0 added 16), and the band is a limit the order exceeds. 102=2.
    PriceBand,
    /// The order notional limit. 103=3, 102=2.
    Notional,
    /// The per-symbol position limit. 103=3, 102=2.
    Position,
    /// The credit limit. 103=3, 102=2.
    Credit,
}

impl RiskReason {
    /// Every reason, for tables and tests.
    pub const ALL: [RiskReason; 12] = [
        RiskReason::UnknownAccount,
        RiskReason::Killed,
        RiskReason::DuplicateId,
        RiskReason::ReplacePending,
        RiskReason::Capacity,
        RiskReason::OpenOrders,
        RiskReason::MaxQty,
        RiskReason::NoReference,
        RiskReason::PriceBand,
        RiskReason::Notional,
        RiskReason::Position,
        RiskReason::Credit,
    ];

    /// Stable name, used in event files, metrics and as the first word of the text.
    pub fn as_str(self) -> &'static str {
        match self {
            RiskReason::UnknownAccount => "risk_unknown_account",
            RiskReason::Killed => "risk_killed",
            RiskReason::DuplicateId => "risk_duplicate_id",
            RiskReason::ReplacePending => "risk_replace_pending",
            RiskReason::Capacity => "risk_capacity",
            RiskReason::OpenOrders => "risk_open_orders",
            RiskReason::MaxQty => "risk_max_qty",
            RiskReason::NoReference => "risk_no_reference",
            RiskReason::PriceBand => "risk_price_band",
            RiskReason::Notional => "risk_notional",
            RiskReason::Position => "risk_position",
            RiskReason::Credit => "risk_credit",
        }
    }

    /// FIX 4.4 OrdRejReason (tag 103) for a refused new order.
    pub fn ord_rej_reason(self) -> u32 {
        match self {
            RiskReason::UnknownAccount => 15,
            RiskReason::Killed | RiskReason::Capacity | RiskReason::NoReference => 0,
            RiskReason::DuplicateId => 6,
            RiskReason::ReplacePending => 99,
            RiskReason::OpenOrders
            | RiskReason::MaxQty
            | RiskReason::PriceBand
            | RiskReason::Notional
            | RiskReason::Position
            | RiskReason::Credit => 3,
        }
    }

    /// FIX 4.4 CxlRejReason (tag 102) for a refused cancel/replace.
    pub fn cxl_rej_reason(self) -> u32 {
        match self {
            RiskReason::UnknownAccount => 99,
            RiskReason::DuplicateId => 6,
            RiskReason::ReplacePending => 3,
            _ => 2,
        }
    }
}

impl fmt::Display for RiskReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused order: the reason and the two numbers its text names. `Copy` and allocation-free;
/// the text is built only when asked for ([`RiskReject::text`] or `Display`).
///
/// What `limit` and `value` hold, by reason (notionals and prices in price units, so 8
/// decimals; quantities in units):
/// - `OpenOrders`: the limit, and the open orders the account would have.
/// - `MaxQty`: the limit, and the order's quantity.
/// - `PriceBand`: the band's edge price on the order's side, and the order's price.
/// - `Notional`: the limit, and the order's notional.
/// - `Position`: the limit, and the absolute position if every open order on the side filled.
/// - `Credit`: the limit, and the credit in use had the order been accepted.
/// - `Capacity`: the venue-wide bound, and the orders tracked.
/// - `UnknownAccount`: the number of accounts, and the account id.
/// - otherwise both 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RiskReject {
    /// The check that refused.
    pub reason: RiskReason,
    /// The limit that was breached.
    pub limit: i128,
    /// The value the order would have reached.
    pub value: i128,
}

impl RiskReject {
    pub(crate) fn new(reason: RiskReason, limit: i128, value: i128) -> RiskReject {
        RiskReject { reason, limit, value }
    }

    pub(crate) fn bare(reason: RiskReason) -> RiskReject {
        RiskReject { reason, limit: 0, value: 0 }
    }

    /// Stable name (`risk_*`).
    pub fn name(&self) -> &'static str {
        self.reason.as_str()
    }

    /// FIX OrdRejReason (103) for an ExecutionReport 150=8.
    pub fn ord_rej_reason(&self) -> u32 {
        self.reason.ord_rej_reason()
    }

    /// FIX CxlRejReason (102) for an OrderCancelReject 35=9.
    pub fn cxl_rej_reason(&self) -> u32 {
        self.reason.cxl_rej_reason()
    }

    /// Text for FIX tag 58, naming the limit and the values. Allocates: call it on the reject
    /// path only.
    pub fn text(&self) -> String {
        self.to_string()
    }
}

/// Writes a number of price units as a decimal.
struct Fixed(i128);

impl fmt::Display for Fixed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_fixed(f, self.0)
    }
}

impl fmt::Display for RiskReject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, limit, value) = (self.name(), self.limit, self.value);
        match self.reason {
            RiskReason::UnknownAccount => write!(f, "{name}: account {value} is not configured"),
            RiskReason::Killed => write!(f, "{name}: the account is blocked by the kill switch"),
            RiskReason::DuplicateId => write!(f, "{name}: the client order id is live or was used recently"),
            RiskReason::ReplacePending => {
                write!(f, "{name}: a replace of this order is already pending")
            }
            RiskReason::Capacity => {
                write!(f, "{name}: {value} open orders reach the venue's bound orders_max {limit}")
            }
            RiskReason::OpenOrders => {
                write!(f, "{name}: {value} open orders would exceed open_orders_max {limit}")
            }
            RiskReason::MaxQty => write!(f, "{name}: order qty {value} exceeds order_qty_max {limit}"),
            RiskReason::NoReference => {
                write!(f, "{name}: no reference price to bound a market order (no trade yet)")
            }
            RiskReason::PriceBand => {
                let edge = if value > limit { "above the highest" } else { "below the lowest" };
                write!(f, "{name}: price {} is {edge} price_band_bps allows, {}", Fixed(value), Fixed(limit))
            }
            RiskReason::Notional => write!(
                f,
                "{name}: order notional {} exceeds order_notional_max {}",
                Fixed(value),
                Fixed(limit)
            ),
            RiskReason::Position => write!(
                f,
                "{name}: position {value} if all open orders on the side filled exceeds position_max {limit}"
            ),
            RiskReason::Credit => {
                write!(f, "{name}: credit used {} would exceed credit_max {}", Fixed(value), Fixed(limit))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable_and_prefixed() {
        let mut seen = std::collections::HashSet::new();
        for reason in RiskReason::ALL {
            assert!(reason.as_str().starts_with("risk_"));
            assert!(seen.insert(reason.as_str()));
            assert!(RiskReject::bare(reason).text().starts_with(reason.as_str()));
        }
    }

    #[test]
    fn texts_name_the_limit_and_values() {
        let r = RiskReject::new(RiskReason::Notional, 100_000_000_000, 100_550_000_000);
        assert_eq!(r.text(), "risk_notional: order notional 1005.5 exceeds order_notional_max 1000");
        let r = RiskReject::new(RiskReason::PriceBand, 11_000_000_000, 11_000_000_001);
        assert_eq!(
            r.text(),
            "risk_price_band: price 110.00000001 is above the highest price_band_bps allows, 110"
        );
        assert_eq!(r.ord_rej_reason(), 3);
        assert_eq!(RiskReject::bare(RiskReason::DuplicateId).ord_rej_reason(), 6);
        assert_eq!(RiskReject::bare(RiskReason::ReplacePending).cxl_rej_reason(), 3);
    }
}
