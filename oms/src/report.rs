//! Reports out of order management, as domain values; the gateway turns them into FIX.

use engine::{AccountId, ClOrdId, OrderId, Price, Qty, RejectReason, Side, SymbolId};

use crate::admin::AdminReply;

/// What goes to a session: domain reports, not FIX bytes (the gateway's `app` encodes them).
#[derive(Clone, Debug)]
pub enum Report {
    /// An ExecutionReport (8).
    Exec(ExecReport),
    /// An OrderCancelReject (9).
    CancelReject(CancelReject),
    /// A BusinessMessageReject (j).
    BusinessReject {
        /// MsgSeqNum of the refused message.
        ref_seq: u64,
        /// Its MsgType.
        ref_msg_type: &'static str,
        /// Its ClOrdID.
        ref_id: ClOrdId,
        /// BusinessRejectReason (380).
        reason: u32,
        /// Text (58).
        text: String,
    },
    /// An AdminResponse (U2).
    Admin(AdminReply),
    /// An OrderMassCancelReport (r).
    MassCancelReport(MassCancelReport),
    /// Log the session out with this text.
    Logout(String),
}

/// Content of an ExecutionReport.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecReport {
    /// Engine order id (37); 0 when the order never got one.
    pub order_id: OrderId,
    /// ClOrdID (11).
    pub cl_ord_id: ClOrdId,
    /// OrigClOrdID (41) on cancel and replace reports.
    pub orig_cl_ord_id: Option<ClOrdId>,
    /// ExecID (17), unique venue-wide: twice the engine event's sequence number, plus one on
    /// the taker's report of a trade (maker and taker reports come from one event).
    pub exec_id: u64,
    /// ExecType (150).
    pub exec_type: u8,
    /// OrdStatus (39).
    pub ord_status: u8,
    /// Symbol.
    pub symbol: SymbolId,
    /// Side.
    pub side: Side,
    /// OrderQty (38).
    pub order_qty: Qty,
    /// Limit price in ticks; `None` for market orders.
    pub price: Option<Price>,
    /// CumQty (14).
    pub cum_qty: Qty,
    /// LeavesQty (151).
    pub leaves_qty: Qty,
    /// Sum of fill price × qty in ticks (AvgPx = this / CumQty).
    pub notional_ticks: i128,
    /// LastPx (31) in ticks and LastQty (32) on fills.
    pub last: Option<(Price, Qty)>,
    /// OrdRejReason (103) on rejects.
    pub ord_rej_reason: Option<u32>,
    /// Text (58).
    pub text: Option<String>,
    /// TransactTime (60), ns.
    pub transact_ns: u64,
    /// On a status report (150=I): the request's id and, for a mass status, the count. Boxed:
    /// status reports are rare, and every report is moved a few times on its way to a session.
    pub status: Option<Box<StatusInfo>>,
}

/// What a status report (ExecType I) echoes of its request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusInfo {
    /// OrdStatusReqID (790) of an OrderStatusRequest.
    pub ord_status_req_id: Option<ClOrdId>,
    /// MassStatusReqID (584), TotNumReports (911) and LastRptRequested (912) of a mass
    /// status answer.
    pub mass: Option<(ClOrdId, u64, bool)>,
}

/// Content of an OrderMassCancelReport.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MassCancelReport {
    /// ClOrdID (11) of the request.
    pub request_id: ClOrdId,
    /// MassCancelRequestType (530) echoed.
    pub request_type: u8,
    /// MassCancelResponse (531): the request type when accepted, `0` when refused.
    pub response: u8,
    /// TotalAffectedOrders (533).
    pub affected: u64,
    /// The symbol of a per-symbol request.
    pub symbol: Option<SymbolId>,
    /// TransactTime (60), ns.
    pub transact_ns: u64,
}

/// Content of an OrderCancelReject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CancelReject {
    /// Engine order id, 0 when unknown.
    pub order_id: OrderId,
    /// ClOrdID of the cancel/replace request.
    pub cl_ord_id: ClOrdId,
    /// OrigClOrdID it named.
    pub orig_cl_ord_id: ClOrdId,
    /// OrdStatus (39) of the order, `8` when unknown.
    pub ord_status: u8,
    /// CxlRejResponseTo (434): `1` cancel, `2` replace.
    pub response_to: u8,
    /// CxlRejReason (102): 0 too late, 1 unknown order, 99 other.
    pub reason: u32,
    /// Text (58).
    pub text: String,
}

/// A report for an account's persistent session, connected or not.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// The account.
    pub account: AccountId,
    /// Sequence number of the engine event it reports, 0 when it reports none (risk and rate
    /// rejects, status answers): the session records the highest, so a restart regenerates
    /// exactly the reports a crash kept from it.
    pub event_seq: u64,
    /// What to send.
    pub report: Report,
}

/// OrdRejReason (103) for an engine reject.
pub fn ord_rej_reason(reason: RejectReason) -> u32 {
    match reason {
        RejectReason::UnknownSymbol => 1,
        RejectReason::Halted => 2,
        RejectReason::UnknownOrder => 5,
        RejectReason::DuplicateId => 6,
        RejectReason::BadQty => 13,
        RejectReason::BookFull => 3,
        RejectReason::BadPriceTick | RejectReason::WouldTake | RejectReason::BadOrder => 99,
    }
}
