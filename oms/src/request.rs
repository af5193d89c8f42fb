//! Requests into order management, already translated from FIX and checked for form.

use engine::{AccountId, CancelOrder, ClOrdId, Command, CommandKind, NewOrder, ReplaceOrder, Side, SymbolId};

/// Identifies one session (one connection's FIX session) for the process's lifetime.
pub type SessionId = u64;

/// An order request, already translated from FIX and checked for form.
#[derive(Clone, Copy, Debug)]
pub enum Request {
    /// NewOrderSingle (D).
    New {
        /// The order.
        order: NewOrder,
        /// MsgSeqNum of the D, for a BusinessMessageReject.
        ref_seq: u64,
    },
    /// OrderCancelRequest (F).
    Cancel {
        /// The order to cancel (by its ClOrdID, OrigClOrdID in FIX).
        cancel: CancelOrder,
        /// ClOrdID (11) of the cancel request itself.
        request_id: ClOrdId,
        /// Side given in the request.
        side: Side,
        /// MsgSeqNum of the F.
        ref_seq: u64,
    },
    /// OrderCancelReplaceRequest (G).
    Replace {
        /// The replace.
        replace: ReplaceOrder,
        /// Side given in the request.
        side: Side,
        /// MsgSeqNum of the G.
        ref_seq: u64,
    },
    /// OrderMassCancelRequest (q): every live order of the account, or of one symbol.
    MassCancel {
        /// The account.
        account: AccountId,
        /// One symbol, or `None` for all.
        symbol: Option<SymbolId>,
        /// ClOrdID (11) of the request.
        request_id: ClOrdId,
        /// MassCancelRequestType (530): `1` one symbol, `7` all orders.
        request_type: u8,
        /// MsgSeqNum of the q.
        ref_seq: u64,
    },
    /// OrderStatusRequest (H), answered from the order state without the engine.
    Status {
        /// The account.
        account: AccountId,
        /// ClOrdID (11) of the order asked about.
        cl_ord_id: ClOrdId,
        /// OrdStatusReqID (790), echoed.
        req_id: Option<ClOrdId>,
        /// Side given.
        side: Side,
        /// Symbol given.
        symbol: SymbolId,
    },
    /// OrderMassStatusRequest (AF): one status report per live order.
    MassStatus {
        /// The account.
        account: AccountId,
        /// MassStatusReqID (584), echoed.
        req_id: ClOrdId,
        /// One symbol (MassStatusReqType 1), or `None` for all orders (7).
        symbol: Option<SymbolId>,
    },
}

impl Request {
    /// The account the request acts for.
    pub fn account(&self) -> AccountId {
        match self {
            Request::New { order, .. } => order.account,
            Request::Cancel { cancel, .. } => cancel.account,
            Request::Replace { replace, .. } => replace.account,
            Request::MassCancel { account, .. }
            | Request::Status { account, .. }
            | Request::MassStatus { account, .. } => *account,
        }
    }

    /// The request a journaled command came from, as far as its reports need it (rebuilding
    /// order state at start-up); `None` for commands no session sends.
    pub fn of_command(command: &Command) -> Option<Request> {
        match command.kind {
            CommandKind::New(order) => Some(Request::New { order, ref_seq: 0 }),
            CommandKind::Cancel(cancel) => {
                let request_id = cancel.request_id.unwrap_or(cancel.id);
                Some(Request::Cancel { cancel, request_id, side: Side::Buy, ref_seq: 0 })
            }
            CommandKind::Replace(replace) => Some(Request::Replace { replace, side: Side::Buy, ref_seq: 0 }),
            CommandKind::CancelAll { .. } | CommandKind::Halt { .. } | CommandKind::Resume { .. } => None,
        }
    }

    /// MsgSeqNum, MsgType and id a BusinessMessageReject of this request names.
    pub(crate) fn reference(&self) -> (u64, &'static str, ClOrdId) {
        match self {
            Request::New { order, ref_seq } => (*ref_seq, "D", order.id),
            Request::Cancel { request_id, ref_seq, .. } => (*ref_seq, "F", *request_id),
            Request::Replace { replace, ref_seq, .. } => (*ref_seq, "G", replace.id),
            Request::MassCancel { request_id, ref_seq, .. } => (*ref_seq, "q", *request_id),
            Request::Status { cl_ord_id, .. } => (0, "H", *cl_ord_id),
            Request::MassStatus { req_id, .. } => (0, "AF", *req_id),
        }
    }
}
