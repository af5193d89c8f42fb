//! The application layer of a venue session, transport-agnostic: FIX D/F/G into router
//! requests (with precise rejects for what is malformed), router answers into ExecutionReport,
//! OrderCancelReject and BusinessMessageReject. QUIC and TCP sessions both drive this.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use engine::{
    AccountId, CancelOrder, ClOrdId, NewOrder, OrdType, OrderId, PriceUnits, ReplaceOrder, Side, StpMode, Tif,
};

use crate::auth::Authenticator;
use crate::md::{MdReject, MdRequest, MdRequestError, RejectReason};
use crate::metrics::{GatewayMetrics, GatewayReject, OrderKind, RequestTimes};
use crate::parking::Parking;
use crate::router::{Request, RouterTx, SessionId, ToRouter};
use crate::venue::{LogonRefused, Venue};
use engine::price_text::{parse_units, PriceTextError};
use fix::codec::{self, tag, Message};
use fix::session::{Poll, Session};
use oms::admin::{accounts_json, AdminAction, AdminRefusal, AdminReply, AdminRequest};
use oms::{ExecReport, Report};

/// Session ids, unique for the process.
static NEXT_SESSION_ID: AtomicU64 = AtomicU64::new(1);

/// Why an application message was refused before reaching the engine.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    /// Session-level Reject (3): SessionRejectReason (373), the tag, the text.
    Session(u32, Option<u32>, String),
    /// ExecutionReport 150=8: OrdRejReason (103) and text.
    Order(u32, String),
    /// BusinessMessageReject (j): BusinessRejectReason (380) and text.
    Business(u32, String),
    /// AdminResponse (U2) refused: AdminReqID and text.
    Admin(String, String),
}

fn missing(t: u32, name: &str) -> Refusal {
    Refusal::Session(1, Some(t), format!("Required tag missing: {name} ({t})"))
}

fn bad_value(t: u32, name: &str, value: &[u8]) -> Refusal {
    Refusal::Session(
        5,
        Some(t),
        format!("Value is incorrect (out of range) for {name} ({t}): {}", String::from_utf8_lossy(value)),
    )
}

fn bad_format(t: u32, name: &str) -> Refusal {
    Refusal::Session(6, Some(t), format!("Incorrect data format for {name} ({t})"))
}

/// [`bad_format`] for a price, saying what is wrong with it (`9 decimals: a price has at most 8`).
fn bad_price(t: u32, name: &str, e: PriceTextError) -> Refusal {
    Refusal::Session(6, Some(t), format!("Incorrect data format for {name} ({t}): {e}"))
}

/// What a refusal echoes of the refused message, copied before its buffer is released.
/// Parsed values never hold SOH (it ends a field), so they are echoed as they came.
#[derive(Debug)]
struct Echo {
    msg_type: Vec<u8>,
    cl_ord_id: Vec<u8>,
    side: Vec<u8>,
    symbol: Vec<u8>,
    qty: u64,
}

impl Echo {
    fn of(msg: &Message<'_>) -> Echo {
        let field = |t| msg.get(t).unwrap_or(b"").to_vec();
        Echo {
            msg_type: msg.msg_type().to_vec(),
            cl_ord_id: field(tag::CL_ORD_ID),
            side: field(tag::SIDE),
            symbol: field(tag::SYMBOL),
            qty: msg.get_u64(tag::ORDER_QTY).ok().flatten().unwrap_or(0),
        }
    }
}

/// One venue session's application side.
#[derive(Debug)]
pub struct AppSession {
    venue: Arc<Venue>,
    router: RouterTx,
    id: SessionId,
    account: Option<AccountId>,
    /// The account is an admin: it sends AdminRequest and never trades.
    admin: bool,
    /// The account is a drop copy: it receives other accounts' reports and never trades.
    drop_copy: bool,
    /// The account reads market data and never trades.
    market_data_only: bool,
    /// Where MarketDataRequests go (the gateway loop's market-data desk); `None`: not served.
    md: Option<MdTx>,
    /// Where Logons are verified off this thread; `None` verifies them here.
    auth: Option<Authenticator>,
    /// When the requests waiting for their first report were read (end-to-end latency).
    times: RequestTimes,
}

impl AppSession {
    /// A session not yet logged on.
    pub fn new(venue: Arc<Venue>, router: RouterTx) -> AppSession {
        AppSession {
            venue,
            router,
            id: NEXT_SESSION_ID.fetch_add(1, Ordering::Relaxed),
            account: None,
            admin: false,
            drop_copy: false,
            market_data_only: false,
            md: None,
            auth: None,
            times: RequestTimes::default(),
        }
    }

    /// Verifies Logons on `auth`'s worker instead of in [`AppSession::drive`]: the session
    /// stays logon-pending until [`AppSession::logon_decided`] is given the verdict.
    pub fn with_authenticator(mut self, auth: Authenticator) -> AppSession {
        self.auth = Some(auth);
        self
    }

    /// Sends this session's parsed MarketDataRequests to `md` (the gateway loop answers them).
    pub fn with_market_data(mut self, md: MdTx) -> AppSession {
        self.md = Some(md);
        self
    }

    /// Applies the worker's verdict on this session's Logon, then runs what arrived meanwhile.
    /// A session that closed while it waited gives the account back.
    pub fn logon_decided(
        &mut self,
        session: &mut Session,
        parking: &mut Parking,
        verdict: Result<AccountId, LogonRefused>,
        now_ns: u64,
        metrics: &GatewayMetrics,
    ) {
        if session.is_closed() {
            if let Ok(account) = verdict {
                self.venue.accounts.release(account);
            }
            return;
        }
        self.decide_logon(session, parking, verdict, now_ns, metrics);
        self.drive(session, parking, now_ns, metrics);
    }

    fn decide_logon(
        &mut self,
        session: &mut Session,
        parking: &mut Parking,
        verdict: Result<AccountId, LogonRefused>,
        now_ns: u64,
        metrics: &GatewayMetrics,
    ) {
        match verdict {
            Ok(account) => {
                let config = self.venue.accounts.get(account);
                let cancel_on_disconnect = config.is_some_and(|a| a.cancel_on_disconnect && !a.admin);
                self.admin = config.is_some_and(|a| a.admin);
                self.drop_copy = config.is_some_and(|a| a.drop_copy);
                self.market_data_only = config.is_some_and(|a| a.market_data_only);
                let attach = ToRouter::Attach { session: self.id, account, cancel_on_disconnect };
                if self.router.send(attach).is_err() {
                    self.venue.accounts.release(account);
                    session.refuse_logon("venue is shutting down", now_ns);
                    metrics.logon_failed();
                } else {
                    metrics.logon();
                    tracing::info!(account = account.0, session = self.id, "logon");
                    self.account = Some(account);
                    // The account's persistent session goes on where its last connection left it.
                    session.accept_logon_resuming(parking.resume(account, self.id, now_ns), now_ns);
                }
            }
            Err(refused) => {
                tracing::info!(session = self.id, reason = %refused, "logon refused");
                metrics.logon_failed();
                session.refuse_logon(&refused.to_string(), now_ns);
            }
        }
    }

    /// This session's id.
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// The account logged on, if any.
    pub fn account(&self) -> Option<AccountId> {
        self.account
    }

    /// Runs the session over what it has buffered: logons are decided, application messages
    /// translated and sent to the router. `outbox` is where this session's reports will go.
    /// `now_ns` is when the bytes were read: the start of each request's end-to-end latency.
    pub fn drive(
        &mut self,
        session: &mut Session,
        parking: &mut Parking,
        now_ns: u64,
        metrics: &GatewayMetrics,
    ) {
        loop {
            // One poll in STAGE_SAMPLE_EVERY times its message's decode and session stages.
            let sampled = metrics.sample();
            match session.poll(now_ns) {
                Poll::Idle => break,
                Poll::Logon(req) => match &self.auth {
                    // Pending: `poll` answers Idle until the verdict comes back.
                    Some(auth) => {
                        if let Err(refused) = auth.submit(self.id, &req) {
                            metrics.logon_failed();
                            session.refuse_logon(&refused.to_string(), now_ns);
                        }
                    }
                    None => {
                        let verdict = self.venue.accounts.authenticate(&req);
                        self.decide_logon(session, parking, verdict, now_ns, metrics);
                    }
                },
                Poll::App(msg) if msg.msg_type() == b"3" => {} // a client's Reject of our message: nothing to undo
                Poll::App(msg) => {
                    let translating = sampled.map(|started| metrics.decoded(started));
                    let account = self.account.expect("application messages come after logon");
                    let seq = msg.get_u64(tag::MSG_SEQ_NUM).ok().flatten().unwrap_or(0);
                    if let Some(refusal) = self.screen_admin(&msg, account) {
                        if let Some(refusal) = refusal {
                            let echo = Echo::of(&msg);
                            self.refuse(session, seq, (refusal, echo), now_ns, metrics);
                        }
                        continue;
                    }
                    if msg.msg_type() == b"V" {
                        // Parsed into owned values first: the answer needs the session again.
                        let parsed = crate::md::parse_request(&msg, &self.venue.symbols)
                            .map_err(|e| (e, Echo::of(&msg)));
                        self.market_data_request(session, parsed, seq, now_ns, metrics);
                        continue;
                    }
                    // The accepted path copies nothing out of the message; a refusal keeps what
                    // its answer echoes before the message's buffer is released.
                    let refused = match self.translate(&msg, account, seq) {
                        Ok(request) => {
                            let sent = self.router.try_send(ToRouter::Request { session: self.id, request });
                            if sent.is_ok() {
                                metrics.order_in(OrderKind::of(&request));
                                self.times.start(request_id(&request), now_ns);
                                if let Some(started) = translating {
                                    metrics.translated(started);
                                }
                            } else {
                                metrics.reject(GatewayReject::GatewayBusy);
                                let (msg_type, ref_id): (&[u8], _) = match request {
                                    Request::New { order, .. } => (b"D", order.id),
                                    Request::Cancel { request_id, .. } => (b"F", request_id),
                                    Request::Replace { replace, .. } => (b"G", replace.id),
                                    Request::MassCancel { request_id, .. } => (b"q", request_id),
                                    Request::Status { cl_ord_id, .. } => (b"H", cl_ord_id),
                                    Request::MassStatus { req_id, .. } => (b"AF", req_id),
                                };
                                let text = "gateway busy, request not accepted";
                                business_reject(session, seq, msg_type, Some(ref_id), 0, text, now_ns);
                            }
                            continue;
                        }
                        Err(refusal) => (refusal, Echo::of(&msg)),
                    };
                    self.refuse(session, seq, refused, now_ns, metrics);
                }
            }
        }
    }

    /// Answers a refused application message.
    fn refuse(
        &self,
        session: &mut Session,
        seq: u64,
        (refusal, echo): (Refusal, Echo),
        now_ns: u64,
        metrics: &GatewayMetrics,
    ) {
        metrics.reject(match refusal {
            Refusal::Session(..) => GatewayReject::Session,
            Refusal::Business(..) | Refusal::Admin(..) => GatewayReject::Business,
            Refusal::Order(..) => GatewayReject::InvalidOrder,
        });
        match refusal {
            Refusal::Session(reason, t, text) => {
                session.reject(seq, &echo.msg_type, reason, t, &text, now_ns)
            }
            Refusal::Business(reason, text) => {
                let ref_id = ClOrdId::from_bytes(&echo.cl_ord_id).ok();
                business_reject(session, seq, &echo.msg_type, ref_id, reason, &text, now_ns);
            }
            Refusal::Admin(req_id, text) => {
                let reply =
                    AdminReply { req_id, outcome: Err(AdminRefusal::BadRequest(text)), accounts: Vec::new() };
                self.admin_response(session, &reply, now_ns);
            }
            Refusal::Order(reason, text) => session.send(b"8", now_ns, |e| {
                e.str(tag::ORDER_ID, "NONE");
                e.bytes(tag::CL_ORD_ID, &echo.cl_ord_id);
                e.str(tag::EXEC_ID, &format!("R{}-{seq}", self.id));
                e.char(tag::EXEC_TYPE, b'8');
                e.char(tag::ORD_STATUS, b'8');
                e.bytes(tag::SYMBOL, &echo.symbol);
                if !echo.side.is_empty() {
                    e.bytes(tag::SIDE, &echo.side);
                }
                e.u64(tag::ORDER_QTY, echo.qty);
                e.u64(tag::CUM_QTY, 0);
                e.u64(tag::LEAVES_QTY, 0);
                e.u64(tag::AVG_PX, 0);
                e.u64(tag::ORD_REJ_REASON, u64::from(reason));
                e.str(tag::TEXT, &text);
                e.time(tag::TRANSACT_TIME, now_ns);
            }),
        }
    }

    /// Encodes a router answer into the session.
    pub fn deliver(&mut self, session: &mut Session, message: Report, now_ns: u64, metrics: &GatewayMetrics) {
        let answers = match &message {
            Report::Exec(r) => Some(&r.cl_ord_id),
            Report::CancelReject(r) => Some(&r.cl_ord_id),
            Report::BusinessReject { ref_id, .. } => Some(ref_id),
            _ => None,
        };
        if let Some(read_ns) = answers.and_then(|id| self.times.take(id)) {
            // The report is encoded just below: a vDSO clock read, no system call.
            metrics.order_latency(read_ns, crate::server::now_ns());
        }
        match message {
            Report::Exec(report) => self.exec_report(session, &report, now_ns),
            Report::CancelReject(r) => session.send(b"9", now_ns, |e| {
                match r.order_id {
                    OrderId(0) => e.str(tag::ORDER_ID, "NONE"),
                    id => e.u64(tag::ORDER_ID, id.0),
                }
                e.bytes(tag::CL_ORD_ID, r.cl_ord_id.as_bytes());
                e.bytes(tag::ORIG_CL_ORD_ID, r.orig_cl_ord_id.as_bytes());
                e.char(tag::ORD_STATUS, r.ord_status);
                e.char(tag::CXL_REJ_RESPONSE_TO, r.response_to);
                e.u64(tag::CXL_REJ_REASON, u64::from(r.reason));
                e.str(tag::TEXT, &r.text);
            }),
            Report::BusinessReject { ref_seq, ref_msg_type, ref_id, reason, text } => {
                business_reject(
                    session,
                    ref_seq,
                    ref_msg_type.as_bytes(),
                    Some(ref_id),
                    reason,
                    &text,
                    now_ns,
                );
            }
            Report::Admin(reply) => self.admin_response(session, &reply, now_ns),
            Report::MassCancelReport(r) => {
                let symbols = &self.venue.symbols;
                session.send(b"r", now_ns, |e| {
                    e.bytes(tag::CL_ORD_ID, r.request_id.as_bytes());
                    e.str(tag::ORDER_ID, "NONE");
                    e.char(tag::MASS_CANCEL_REQUEST_TYPE, r.request_type);
                    e.char(tag::MASS_CANCEL_RESPONSE, r.response);
                    e.u64(tag::TOTAL_AFFECTED_ORDERS, r.affected);
                    if let Some(symbol) = r.symbol.and_then(|s| symbols.spec(s)) {
                        e.str(tag::SYMBOL, &symbol.name);
                    }
                    e.time(tag::TRANSACT_TIME, r.transact_ns);
                })
            }
            Report::Logout(text) => session.logout(&text, now_ns),
        }
    }

    /// Keeps trading and administration apart: an admin's AdminRequest goes to the router
    /// (`Some(None)`), an admin's order or a trader's AdminRequest is refused (`Some(Some(_))`),
    /// and anything else is for [`translate`](Self::translate) (`None`).
    fn screen_admin(&self, msg: &Message<'_>, account: AccountId) -> Option<Option<Refusal>> {
        let msg_type = msg.msg_type();
        let admin_request = msg_type == codec::MSG_ADMIN_REQUEST;
        if !admin_request {
            let trading = matches!(msg_type, b"D" | b"F" | b"G" | b"q");
            return match (self.admin, self.drop_copy) {
                (true, _) if trading => {
                    Some(Some(Refusal::Business(6, "admin sessions do not trade".into())))
                }
                (_, true) if trading => {
                    Some(Some(Refusal::Business(6, "drop-copy sessions do not trade".into())))
                }
                _ if trading && self.market_data_only => Some(Some(Refusal::Business(
                    6,
                    "market-data-only account: it may subscribe to market data (35=V) but not trade".into(),
                ))),
                _ => None,
            };
        }
        if !self.admin {
            return Some(Some(Refusal::Business(6, "AdminRequest (U1) needs an admin account".into())));
        }
        if let Some(status) = self.trading_status_request(msg, account) {
            return Some(match status.map(|m| self.router.try_send(m)) {
                Ok(Ok(())) => None,
                Ok(Err(_)) => Some(Refusal::Business(0, "gateway busy, request not accepted".into())),
                Err(refusal) => Some(refusal),
            });
        }
        match self.admin_request(msg) {
            Ok(request) => {
                if self.router.try_send(ToRouter::Admin { account, request }).is_err() {
                    return Some(Some(Refusal::Business(0, "gateway busy, request not accepted".into())));
                }
                Some(None)
            }
            Err(refusal) => Some(Some(refusal)),
        }
    }

    /// A MarketDataRequest (35=V): parsed here, answered by the gateway loop's desk; a request
    /// that cannot be taken gets its 35=Y (or a session Reject for a missing field) at once.
    fn market_data_request(
        &self,
        session: &mut Session,
        parsed: Result<MdRequest, (MdRequestError, Echo)>,
        seq: u64,
        now_ns: u64,
        metrics: &GatewayMetrics,
    ) {
        let refusal = match parsed {
            Ok(request) => {
                let Some(md) = &self.md else {
                    let text = "market data is not served on this gateway".to_owned();
                    let reject = MdReject {
                        req_id: request.req_id,
                        reason: Some(RejectReason::InsufficientBandwidth),
                        text,
                    };
                    metrics.md_rejected(reject.reason);
                    return md_reject(session, &reject, now_ns);
                };
                match md.try_send((self.id, request)) {
                    Ok(()) => return,
                    Err(e) => {
                        let (_, request) = e.into_inner();
                        MdReject {
                            req_id: request.req_id,
                            reason: Some(RejectReason::InsufficientBandwidth),
                            text: "gateway busy, market data request not accepted".into(),
                        }
                    }
                }
            }
            Err((MdRequestError::Missing(t, name), echo)) => {
                return self.refuse(session, seq, (missing(t, name), echo), now_ns, metrics);
            }
            Err((MdRequestError::Reject(reject), _)) => reject,
        };
        metrics.reject(GatewayReject::Business);
        metrics.md_rejected(refusal.reason);
        md_reject(session, &refusal, now_ns);
    }

    /// An AdminRequest (U1) `halt` or `resume` of the symbol in Symbol (55), for the router;
    /// `None` for the other actions (the account ones, [`admin_request`](Self::admin_request)).
    fn trading_status_request(
        &self,
        msg: &Message<'_>,
        account: AccountId,
    ) -> Option<Result<ToRouter, Refusal>> {
        let halted = match msg.get(tag::ADMIN_ACTION) {
            Some(b"halt") => true,
            Some(b"resume") => false,
            _ => return None,
        };
        let Some(req_id) = msg.get_str(tag::ADMIN_REQ_ID) else {
            return Some(Err(missing(tag::ADMIN_REQ_ID, "AdminReqID")));
        };
        let Some(name) = msg.get_str(tag::SYMBOL) else { return Some(Err(missing(tag::SYMBOL, "Symbol"))) };
        let Some(symbol) = self.venue.symbols.id(name) else {
            return Some(Err(Refusal::Admin(req_id.to_owned(), format!("unknown symbol {name}"))));
        };
        let req_id = req_id.to_owned();
        Some(Ok(ToRouter::TradingStatus { account, req_id, symbol, name: name.to_owned(), halted }))
    }

    /// Translates an AdminRequest (U1), resolving account names.
    fn admin_request(&self, msg: &Message<'_>) -> Result<AdminRequest, Refusal> {
        let req_id = msg
            .get_str(tag::ADMIN_REQ_ID)
            .ok_or_else(|| missing(tag::ADMIN_REQ_ID, "AdminReqID"))?
            .to_owned();
        let action =
            msg.get_str(tag::ADMIN_ACTION).ok_or_else(|| missing(tag::ADMIN_ACTION, "AdminAction"))?;
        let refuse = |text: String| Refusal::Admin(req_id.clone(), text);
        let target = match msg.get_str(tag::ACCOUNT) {
            None => None,
            Some(name) => Some(
                self.venue
                    .accounts
                    .id_by_name(name)
                    .ok_or_else(|| refuse(format!("unknown account {name}")))?,
            ),
        };
        let target_needed = || target.ok_or_else(|| missing(tag::ACCOUNT, "Account"));
        let action = match action {
            "show" => AdminAction::Show { account: target },
            "set" => {
                let text = msg
                    .get_str(tag::ADMIN_LIMITS)
                    .ok_or_else(|| missing(tag::ADMIN_LIMITS, "AdminLimits"))?;
                let patch = serde_json::from_str(text)
                    .map_err(|e| refuse(format!("AdminLimits (5102) is not a JSON object: {e}")))?;
                AdminAction::Set { account: target_needed()?, patch }
            }
            "reset" => AdminAction::Reset { account: target_needed()? },
            "kill" => AdminAction::Kill { account: target_needed()? },
            "release" => AdminAction::Release { account: target_needed()? },
            other => return Err(bad_value(tag::ADMIN_ACTION, "AdminAction", other.as_bytes())),
        };
        Ok(AdminRequest { req_id, action })
    }

    fn admin_response(&self, session: &mut Session, reply: &AdminReply, now_ns: u64) {
        let accounts = &self.venue.accounts;
        let data = accounts_json(&reply.accounts, |a| {
            accounts.get(a).map_or_else(|| a.to_string(), |c| c.name.clone())
        });
        session.send(codec::MSG_ADMIN_RESPONSE, now_ns, |e| {
            e.str(tag::ADMIN_REQ_ID, &reply.req_id);
            let (status, text) = match &reply.outcome {
                Ok(text) => (0, std::borrow::Cow::Borrowed(text.as_str())),
                Err(refusal) => (1, std::borrow::Cow::Owned(refusal.to_string())),
            };
            e.u64(tag::ADMIN_STATUS, status);
            e.str(tag::TEXT, &text);
            e.str(tag::ADMIN_DATA, &data);
        });
    }

    /// Tells the router the session ended, parks the account's persistent session for its next
    /// connection, and frees the account's session slot. A Logout from the client is graceful
    /// (no cancel-on-disconnect).
    pub fn detach(
        &mut self,
        session: &mut Session,
        parking: &mut Parking,
        now_ns: u64,
        metrics: &GatewayMetrics,
    ) {
        if let Some(account) = self.account.take() {
            metrics.session_ended();
            tracing::info!(
                account = account.0,
                session = self.id,
                graceful = session.logout_received(),
                "logout"
            );
            let graceful = session.logout_received();
            let _ = self.router.send(ToRouter::Detach { session: self.id, graceful });
            parking.park(account, self.id, session, now_ns);
            self.venue.accounts.release(account);
        }
    }

    fn exec_report(&self, session: &mut Session, r: &ExecReport, now_ns: u64) {
        let symbols = &self.venue.symbols;
        let symbol = symbols.spec(r.symbol).map_or("?", |s| s.name.as_str());
        session.send(b"8", now_ns, |e| {
            match r.order_id {
                OrderId(0) => e.str(tag::ORDER_ID, "NONE"),
                id => e.u64(tag::ORDER_ID, id.0),
            }
            e.bytes(tag::CL_ORD_ID, r.cl_ord_id.as_bytes());
            if let Some(orig) = &r.orig_cl_ord_id {
                e.bytes(tag::ORIG_CL_ORD_ID, orig.as_bytes());
            }
            if let Some(status) = &r.status {
                if let Some(id) = &status.ord_status_req_id {
                    e.bytes(tag::ORD_STATUS_REQ_ID, id.as_bytes());
                }
                if let Some((id, total, last)) = &status.mass {
                    e.bytes(tag::MASS_STATUS_REQ_ID, id.as_bytes());
                    e.u64(tag::TOT_NUM_REPORTS, *total);
                    e.char(tag::LAST_RPT_REQUESTED, if *last { b'Y' } else { b'N' });
                }
            }
            match r.exec_id {
                // A status report describes; it executes nothing (ExecID 0, as FIX allows).
                0 => e.str(tag::EXEC_ID, "0"),
                id => e.u64(tag::EXEC_ID, id),
            }
            e.char(tag::EXEC_TYPE, r.exec_type);
            e.char(tag::ORD_STATUS, r.ord_status);
            e.str(tag::SYMBOL, symbol);
            e.char(tag::SIDE, side_code(r.side));
            e.u64(tag::ORDER_QTY, r.order_qty);
            match r.price {
                Some(p) => {
                    e.char(tag::ORD_TYPE, b'2');
                    e.bytes(tag::PRICE, symbols.format_ticks(r.symbol, p.0).as_str().as_bytes());
                }
                None => e.char(tag::ORD_TYPE, b'1'),
            }
            if let Some((px, qty)) = r.last {
                e.bytes(tag::LAST_PX, symbols.format_ticks(r.symbol, px.0).as_str().as_bytes());
                e.u64(tag::LAST_QTY, qty);
            }
            e.u64(tag::LEAVES_QTY, r.leaves_qty);
            e.u64(tag::CUM_QTY, r.cum_qty);
            e.bytes(
                tag::AVG_PX,
                symbols.format_avg(r.symbol, r.notional_ticks, r.cum_qty).as_str().as_bytes(),
            );
            if let Some(reason) = r.ord_rej_reason {
                e.u64(tag::ORD_REJ_REASON, u64::from(reason));
            }
            if let Some(text) = &r.text {
                e.str(tag::TEXT, text);
            }
            e.time(tag::TRANSACT_TIME, r.transact_ns);
        });
    }

    /// The request an order-entry message asks for, or why it is refused: one step per
    /// message type.
    fn translate(&self, msg: &Message<'_>, account: AccountId, seq: u64) -> Result<Request, Refusal> {
        match msg.msg_type() {
            b"D" => self.new_order(msg, account, seq).map(|order| Request::New { order, ref_seq: seq }),
            b"F" => self.cancel_request(msg, account, seq),
            b"G" => self.replace_request(msg, account, seq),
            b"q" => self.mass_cancel_request(msg, account, seq),
            b"H" => self.status_request(msg, account),
            b"AF" => self.mass_status_request(msg, account),
            b"8" | b"9" => Err(Refusal::Business(
                3,
                "ExecutionReport and OrderCancelReject are sent by the venue, not to it".into(),
            )),
            other => Err(Refusal::Business(
                3,
                format!(
                    "Unsupported Message Type {} on the order-entry session",
                    String::from_utf8_lossy(other)
                ),
            )),
        }
    }

    /// OrderCancelRequest (F).
    fn cancel_request(&self, msg: &Message<'_>, account: AccountId, seq: u64) -> Result<Request, Refusal> {
        let request_id = cl_ord_id(msg, tag::CL_ORD_ID, "ClOrdID")?;
        let orig = cl_ord_id(msg, tag::ORIG_CL_ORD_ID, "OrigClOrdID")?;
        let side = side(msg)?;
        let symbol = self.symbol(msg)?;
        Ok(Request::Cancel {
            cancel: CancelOrder {
                account,
                symbol,
                id: orig,
                request_id: (request_id != orig).then_some(request_id),
            },
            request_id,
            side,
            ref_seq: seq,
        })
    }

    /// OrderCancelReplaceRequest (G).
    fn replace_request(&self, msg: &Message<'_>, account: AccountId, seq: u64) -> Result<Request, Refusal> {
        let id = cl_ord_id(msg, tag::CL_ORD_ID, "ClOrdID")?;
        let orig_id = cl_ord_id(msg, tag::ORIG_CL_ORD_ID, "OrigClOrdID")?;
        let side = side(msg)?;
        let symbol = self.symbol(msg)?;
        let qty = qty(msg)?;
        let price = match msg.get_str(tag::PRICE) {
            Some(text) => Some(parse_units(text).map_err(|e| bad_price(tag::PRICE, "Price", e))?),
            None => None,
        };
        if let Some(p) = price {
            self.check_tick(symbol, p, tag::PRICE)?;
        }
        let replace = ReplaceOrder { account, symbol, orig_id, id, price, qty };
        Ok(Request::Replace { replace, side, ref_seq: seq })
    }

    /// OrderMassCancelRequest (q): one symbol (type 1) or all (type 7).
    fn mass_cancel_request(
        &self,
        msg: &Message<'_>,
        account: AccountId,
        seq: u64,
    ) -> Result<Request, Refusal> {
        let request_id = cl_ord_id(msg, tag::CL_ORD_ID, "ClOrdID")?;
        let request_type = match msg.get(tag::MASS_CANCEL_REQUEST_TYPE) {
            Some(b"1") => b'1',
            Some(b"7") => b'7',
            Some(other) => {
                return Err(bad_value(tag::MASS_CANCEL_REQUEST_TYPE, "MassCancelRequestType (1 or 7)", other))
            }
            None => return Err(missing(tag::MASS_CANCEL_REQUEST_TYPE, "MassCancelRequestType")),
        };
        let symbol = if request_type == b'1' { Some(self.symbol(msg)?) } else { None };
        Ok(Request::MassCancel { account, symbol, request_id, request_type, ref_seq: seq })
    }

    /// OrderStatusRequest (H).
    fn status_request(&self, msg: &Message<'_>, account: AccountId) -> Result<Request, Refusal> {
        let cl_ord_id = cl_ord_id(msg, tag::CL_ORD_ID, "ClOrdID")?;
        let req_id = match msg.get(tag::ORD_STATUS_REQ_ID) {
            Some(_) => Some(self::cl_ord_id(msg, tag::ORD_STATUS_REQ_ID, "OrdStatusReqID")?),
            None => None,
        };
        let side = side(msg)?;
        let name = msg.get_str(tag::SYMBOL).ok_or_else(|| missing(tag::SYMBOL, "Symbol"))?;
        // An unknown symbol names no order: the answer is "unknown order", not a reject.
        let symbol = self.venue.symbols.id(name).unwrap_or(engine::SYMBOL_UNKNOWN);
        Ok(Request::Status { account, cl_ord_id, req_id, side, symbol })
    }

    /// OrderMassStatusRequest (AF): one symbol (type 1) or all (type 7).
    fn mass_status_request(&self, msg: &Message<'_>, account: AccountId) -> Result<Request, Refusal> {
        let req_id = cl_ord_id(msg, tag::MASS_STATUS_REQ_ID, "MassStatusReqID")?;
        let symbol = match msg.get(tag::MASS_STATUS_REQ_TYPE) {
            Some(b"1") => Some(self.symbol(msg)?),
            Some(b"7") => None,
            Some(other) => {
                return Err(bad_value(tag::MASS_STATUS_REQ_TYPE, "MassStatusReqType (1 or 7)", other))
            }
            None => return Err(missing(tag::MASS_STATUS_REQ_TYPE, "MassStatusReqType")),
        };
        Ok(Request::MassStatus { account, req_id, symbol })
    }

    fn symbol(&self, msg: &Message<'_>) -> Result<engine::SymbolId, Refusal> {
        let name = msg.get_str(tag::SYMBOL).ok_or_else(|| missing(tag::SYMBOL, "Symbol"))?;
        self.venue
            .symbols
            .id(name)
            .ok_or_else(|| Refusal::Order(1, format!("unknown_symbol: {name} is not listed")))
    }

    /// A precise reject for an off-tick price (the engine would refuse it too, less precisely).
    fn check_tick(&self, symbol: engine::SymbolId, units: PriceUnits, t: u32) -> Result<(), Refusal> {
        let Some(spec) = self.venue.symbols.spec(symbol) else { return Ok(()) };
        if spec.units_to_ticks(units).is_none() {
            let tick = self.venue.symbols.format_ticks(symbol, 1);
            let what = if t == tag::PRICE { "price" } else { "stop price" };
            let text =
                format!("bad_price_tick: {what} is not a positive multiple of {}'s tick {tick}", spec.name);
            return Err(Refusal::Order(99, text));
        }
        Ok(())
    }

    fn new_order(&self, msg: &Message<'_>, account: AccountId, _seq: u64) -> Result<NewOrder, Refusal> {
        let id = cl_ord_id(msg, tag::CL_ORD_ID, "ClOrdID")?;
        let side = side(msg)?;
        let qty = qty(msg)?;
        let ord_type = msg.get(tag::ORD_TYPE).ok_or_else(|| missing(tag::ORD_TYPE, "OrdType"))?;
        let (market, stop) = match ord_type {
            b"1" => (true, false),
            b"2" => (false, false),
            b"3" => (true, true),
            b"4" => (false, true),
            other => return Err(bad_value(tag::ORD_TYPE, "OrdType", other)),
        };
        let price = if market {
            PriceUnits::ZERO
        } else {
            let text = msg.get_str(tag::PRICE).ok_or_else(|| missing(tag::PRICE, "Price"))?;
            parse_units(text).map_err(|e| bad_price(tag::PRICE, "Price", e))?
        };
        let stop_price = if stop {
            let text = msg.get_str(tag::STOP_PX).ok_or_else(|| missing(tag::STOP_PX, "StopPx"))?;
            Some(parse_units(text).map_err(|e| bad_price(tag::STOP_PX, "StopPx", e))?)
        } else {
            None
        };
        // TimeInForce: Day (0) is kept as GTC: the venue has no trading-day boundary.
        let tif = match msg.get(tag::TIME_IN_FORCE) {
            None if market => Tif::Ioc,
            None | Some(b"0") | Some(b"1") => Tif::Gtc,
            Some(b"3") => Tif::Ioc,
            Some(b"4") => Tif::Fok,
            Some(b"6") => Tif::Gtd,
            Some(other) => return Err(bad_value(tag::TIME_IN_FORCE, "TimeInForce", other)),
        };
        let expire_ts = match msg.get(tag::EXPIRE_TIME) {
            Some(v) => Some(
                codec::parse_utc_timestamp(v).ok_or_else(|| bad_format(tag::EXPIRE_TIME, "ExpireTime"))?,
            ),
            None if tif == Tif::Gtd => return Err(missing(tag::EXPIRE_TIME, "ExpireTime")),
            None => None,
        };
        let display_qty = msg.get_u64(tag::MAX_FLOOR).map_err(|t| bad_format(t, "MaxFloor"))?;
        let post_only = msg.get(tag::EXEC_INST).is_some_and(|v| v.split(|&b| b == b' ').any(|i| i == b"6"));
        let symbol = self.symbol(msg)?;
        if !market {
            self.check_tick(symbol, price, tag::PRICE)?;
        }
        if let Some(stop) = stop_price {
            self.check_tick(symbol, stop, tag::STOP_PX)?;
        }
        // `NewOrder::stop_price` is still a bare number of price units (see its docs).
        Ok(NewOrder {
            account,
            symbol,
            id,
            side,
            ord_type: if market { OrdType::Market } else { OrdType::Limit },
            tif,
            price,
            qty,
            stop_price,
            display_qty,
            expire_ts,
            post_only,
            stp: StpMode::CancelNewest,
        })
    }
}

/// The client's id of a request: what its first report names.
fn request_id(request: &Request) -> ClOrdId {
    match request {
        Request::New { order, .. } => order.id,
        Request::Cancel { request_id, .. } | Request::MassCancel { request_id, .. } => *request_id,
        Request::Replace { replace, .. } => replace.id,
        Request::Status { cl_ord_id, .. } => *cl_ord_id,
        Request::MassStatus { req_id, .. } => *req_id,
    }
}

fn cl_ord_id(msg: &Message<'_>, t: u32, name: &str) -> Result<ClOrdId, Refusal> {
    let value = msg.get(t).ok_or_else(|| missing(t, name))?;
    ClOrdId::from_bytes(value).map_err(|e| Refusal::Session(5, Some(t), format!("{name} ({t}): {e}")))
}

fn side(msg: &Message<'_>) -> Result<Side, Refusal> {
    match msg.get(tag::SIDE) {
        Some(b"1") => Ok(Side::Buy),
        Some(b"2") => Ok(Side::Sell),
        Some(other) => Err(bad_value(tag::SIDE, "Side", other)),
        None => Err(missing(tag::SIDE, "Side")),
    }
}

fn qty(msg: &Message<'_>) -> Result<u64, Refusal> {
    match msg.get_u64(tag::ORDER_QTY) {
        Ok(Some(q)) if q > 0 => Ok(q),
        Ok(Some(_)) => Err(bad_value(tag::ORDER_QTY, "OrderQty", b"0")),
        Ok(None) => Err(missing(tag::ORDER_QTY, "OrderQty")),
        Err(_) => Err(bad_format(tag::ORDER_QTY, "OrderQty (whole lots)")),
    }
}

/// FIX Side code.
pub fn side_code(side: Side) -> u8 {
    match side {
        Side::Buy => b'1',
        Side::Sell => b'2',
    }
}

/// Where sessions send parsed MarketDataRequests: the gateway loop, which answers them.
pub type MdTx = crossbeam_channel::Sender<(SessionId, MdRequest)>;

/// A MarketDataRequestReject (35=Y), kept for resend like any answer to a request.
fn md_reject(session: &mut Session, reject: &MdReject, now_ns: u64) {
    session.send(b"Y", now_ns, |e| reject.encode(e));
}

fn business_reject(
    session: &mut Session,
    ref_seq: u64,
    ref_msg_type: &[u8],
    ref_id: Option<ClOrdId>,
    reason: u32,
    text: &str,
    now_ns: u64,
) {
    session.send(b"j", now_ns, |e| {
        e.u64(tag::REF_SEQ_NUM, ref_seq);
        e.bytes(tag::REF_MSG_TYPE, ref_msg_type);
        if let Some(id) = ref_id {
            e.bytes(tag::BUSINESS_REJECT_REF_ID, id.as_bytes());
        }
        e.u64(tag::BUSINESS_REJECT_REASON, u64::from(reason));
        e.str(tag::TEXT, text);
    });
}
