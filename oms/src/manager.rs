//! The order manager: requests in, engine commands out; engine events in, reports out.
//!
//! Sans-IO in the shape of `quinn-proto`: it reads no clock (time is a parameter), owns no
//! thread and touches no socket or file. Its host (the gateway's router) pushes the commands it
//! returns to the engine, in the order returned, feeds back the engine's events, and moves the
//! reports it queues to the sessions.
//!
//! ```text
//! host: let kind = oms.request(session, request, now_ns)?;  push(kind)      // numbered here
//!       for event in engine events { oms.on_engine_event(&e) }             // exposure, now
//!       once the event's command is durable { oms.on_event(&e) }          // reports
//!       oms.commands_done(seq)                                             // mass cancel acks
//!       while let Some(d) = oms.pop_delivery() { send d to its account's session }
//! ```
//!
//! The manager numbers the commands it issues itself: the engine's sequencer numbers commands in
//! the order they are pushed, from `seq_first`, so a FIFO of in-flight requests keyed by that
//! number says which request each event answers.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use engine::{
    AccountId, CancelReason, ClOrdId, Command, CommandKind, Event, EventKind, NewOrder, OrdType, OrderId,
    Price, Qty, RejectReason, Side, SymbolId, SymbolSpec,
};

use crate::admin::{AdminConfig, AdminRefusal, AdminReply, AdminRequest, SavedState};
use crate::gates::{Gates, RateLimits};
use crate::orders::{OrderState, Orders};
use crate::report::{
    ord_rej_reason, CancelReject, Delivery, ExecReport, MassCancelReport, Report, StatusInfo,
};
use crate::request::{Request, SessionId};
use crate::OmsError;

/// Most requests sent to the engine and not yet answered; past it, requests are refused
/// ("gateway busy") rather than queued.
pub const IN_FLIGHT_MAX: usize = 65_536;
/// Most reports waiting for the host to take them; past it, new requests are refused as busy.
pub const OUTPUT_MAX: usize = 1 << 20;

/// Counters (monitoring); shared with whoever reads them.
#[derive(Debug, Default)]
pub struct OmsStats {
    /// Requests sent to the engine.
    pub requests: AtomicU64,
    /// Events taken from the engine.
    pub events: AtomicU64,
    /// Reports for accounts with no connection (kept in their session for a resend).
    pub to_detached: AtomicU64,
    /// Events about an order the manager does not know: never expected (order state is rebuilt
    /// from the journal at start-up); counted, and a debug build stops.
    pub unknown_order_events: AtomicU64,
    /// Requests refused because too many were in flight or waiting.
    pub busy: AtomicU64,
    /// Requests refused by pre-trade risk.
    pub risk_rejects: AtomicU64,
    /// Requests refused by the rate limit.
    pub rate_limited: AtomicU64,
    /// Sessions logged out for sustained abuse of the rate limit.
    pub abuse_logouts: AtomicU64,
    /// Accounts whose kill switch is engaged now (a gauge; set at start and after each admin
    /// request).
    pub accounts_killed: AtomicU64,
    /// Requests whose gates were timed (one in [`crate::GATE_SAMPLE_EVERY`]), and the
    /// total nanoseconds their rate-limit and risk checks took.
    pub gates_timed: AtomicU64,
    /// See [`OmsStats::gates_timed`].
    pub ratelimit_ns: AtomicU64,
    /// See [`OmsStats::gates_timed`].
    pub risk_ns: AtomicU64,
}

/// How order management starts.
pub struct OmsConfig {
    /// Sequence number the engine gives the first command the manager issues.
    pub seq_first: u64,
    /// Number of accounts (ids `0..accounts`).
    pub accounts: usize,
    /// The listed symbols (prices of reports, market-order caps).
    pub symbols: Vec<SymbolSpec>,
    /// Pre-trade risk; `None` checks nothing.
    pub risk: Option<risk::RiskEngine>,
    /// Message rate limits per session and per account; `None` limits nothing.
    pub rate_limit: Option<RateLimits>,
    /// Run-time administration of risk (needs `risk`).
    pub admin: AdminConfig,
    /// Accounts whose orders are canceled at [`OrderManager::start`]: cancel-on-disconnect
    /// accounts whose session was logged on when the process last stopped without a Logout.
    pub cancel_at_start: Vec<AccountId>,
    /// Drop copies: `(watched, receiver)` pairs; the receiver's session gets a copy of every
    /// ExecutionReport of the watched account's orders.
    pub drop_copies: Vec<(AccountId, AccountId)>,
    /// The funds gate (available cash and assets from the ledger); `None` checks nothing.
    pub funds: Option<crate::funds::FundsConfig>,
}

/// A request sent to the engine and not yet fully answered.
#[derive(Debug)]
struct InFlight {
    seq: u64,
    request: Option<Request>,
}

/// An OrderMassCancelReport waiting for its CancelAll to be processed and durable.
#[derive(Debug)]
struct MassCancelPending {
    command_seq: u64,
    account: AccountId,
    report: MassCancelReport,
}

#[derive(Debug)]
struct Attached {
    session: SessionId,
    cancel_on_disconnect: bool,
}

/// The order manager. See the module documentation for how a host drives it.
#[derive(Debug)]
pub struct OrderManager {
    next_seq: u64,
    in_flight: VecDeque<InFlight>,
    orders: Orders,
    symbols: Vec<SymbolSpec>,
    sessions: Vec<Option<Attached>>,
    mass_cancels: VecDeque<MassCancelPending>,
    /// Per account, while rebuilding: reports of events up to this seq were delivered before.
    reported: Vec<u64>,
    gates: Gates,
    admin: AdminConfig,
    cancel_at_start: Vec<AccountId>,
    /// Per watched account, the drop-copy accounts that receive its ExecutionReports.
    drop_copies: Vec<Vec<AccountId>>,
    out: VecDeque<Delivery>,
    to_save: Option<(PathBuf, SavedState)>,
    stats: Arc<OmsStats>,
}

impl OrderManager {
    /// A manager with no order yet (see [`OrderManager::rebuild`] after a restart).
    pub fn new(config: OmsConfig) -> Result<OrderManager, OmsError> {
        let gates = Gates::new(config.risk, config.rate_limit, config.funds, config.accounts)?;
        Ok(OrderManager {
            next_seq: config.seq_first,
            in_flight: VecDeque::new(),
            orders: Orders::default(),
            symbols: config.symbols,
            sessions: (0..config.accounts).map(|_| None).collect(),
            mass_cancels: VecDeque::new(),
            reported: Vec::new(),
            gates,
            admin: config.admin,
            cancel_at_start: config.cancel_at_start,
            drop_copies: {
                let mut copies = vec![Vec::new(); config.accounts];
                for (watched, receiver) in config.drop_copies {
                    if let Some(list) = copies.get_mut(watched.index()) {
                        list.push(receiver);
                    }
                }
                copies
            },
            out: VecDeque::new(),
            to_save: None,
            stats: Arc::default(),
        })
    }

    /// Counters.
    pub fn stats(&self) -> Arc<OmsStats> {
        self.stats.clone()
    }

    /// The sequence number the next issued command gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The live and recently finished orders.
    pub fn orders(&self) -> &Orders {
        &self.orders
    }

    /// Records `kind` as in flight under the next sequence number and hands it out to push.
    fn issue(&mut self, kind: CommandKind, request: Option<Request>) -> CommandKind {
        self.in_flight.push_back(InFlight { seq: self.next_seq, request });
        self.next_seq += 1;
        kind
    }

    /// The commands to push before anything else: cancels of the accounts whose kill switch was
    /// engaged before a restart (a crash between the kill and its CancelAll being journaled would
    /// leave orders) and of [`OmsConfig::cancel_at_start`].
    pub fn start(&mut self) -> Vec<CommandKind> {
        let mut cancel = self.gates.killed_accounts(self.sessions.len());
        self.stats.accounts_killed.store(cancel.len() as u64, Ordering::Relaxed);
        cancel.extend(std::mem::take(&mut self.cancel_at_start));
        cancel.sort_unstable();
        cancel.dedup();
        cancel
            .into_iter()
            .map(|account| self.issue(CommandKind::CancelAll { account, symbol: None }, None))
            .collect()
    }

    /// A session logged on as `account`.
    pub fn attach(&mut self, session: SessionId, account: AccountId, cancel_on_disconnect: bool) {
        if let Some(slot) = self.sessions.get_mut(account.index()) {
            *slot = Some(Attached { session, cancel_on_disconnect });
        }
    }

    /// The session ended; a connection lost without a Logout (`graceful` false) of a
    /// cancel-on-disconnect account cancels the account's orders (the returned command).
    pub fn detach(&mut self, session: SessionId, graceful: bool) -> Option<CommandKind> {
        let account = self.sessions.iter().position(|s| s.as_ref().is_some_and(|a| a.session == session))?;
        let attached = self.sessions[account].take()?;
        (attached.cancel_on_disconnect && !graceful).then(|| {
            self.issue(CommandKind::CancelAll { account: AccountId(account as u32), symbol: None }, None)
        })
    }

    /// An admin's halt (`halted`) or resume of `symbol` (AdminRequest `halt` / `resume`, named
    /// `symbol_name`): the command to push, numbered like any other, and the AdminResponse,
    /// sent at once; the engine's TradingStatus event that follows is what the feeds publish.
    pub fn trading_status(
        &mut self,
        account: AccountId,
        req_id: String,
        symbol: SymbolId,
        symbol_name: &str,
        halted: bool,
    ) -> CommandKind {
        let verb = if halted { "halt" } else { "resume" };
        let text = format!("{verb} of {symbol_name} sent to the engine");
        self.deliver(account, Report::Admin(AdminReply { req_id, outcome: Ok(text), accounts: Vec::new() }));
        let kind = if halted { CommandKind::Halt { symbol } } else { CommandKind::Resume { symbol } };
        self.issue(kind, None)
    }

    /// An AdminRequest of admin `account`: applied to risk at once, answered with an
    /// AdminResponse (`warning`, from the host, is added to a successful answer's text); a kill
    /// returns the account's CancelAll.
    pub fn admin(
        &mut self,
        account: AccountId,
        request: AdminRequest,
        warning: Option<String>,
    ) -> Option<CommandKind> {
        let (mut reply, cancel) = match self.gates.risk_mut() {
            Some(risk) => {
                let (reply, cancel) = self.admin.apply(risk, request);
                if reply.outcome.is_ok() {
                    self.to_save = self.admin.saved_state(risk);
                }
                // Control plane: counting every account here is fine.
                let killed =
                    (0..self.sessions.len() as u32).map(AccountId).filter(|&a| risk.is_killed(a)).count();
                self.stats.accounts_killed.store(killed as u64, Ordering::Relaxed);
                (reply, cancel)
            }
            None => (
                AdminReply {
                    req_id: request.req_id,
                    outcome: Err(AdminRefusal::RiskOff),
                    accounts: Vec::new(),
                },
                None,
            ),
        };
        if let (Ok(text), Some(warning)) = (&mut reply.outcome, warning) {
            text.push_str(&format!(" (warning: {warning})"));
        }
        self.deliver(account, Report::Admin(reply));
        cancel.map(|killed| self.issue(CommandKind::CancelAll { account: killed, symbol: None }, None))
    }

    /// The run-time admin state to write after a change (the host writes it off the matching
    /// thread, with [`crate::admin::write_state`]).
    pub fn take_state_to_save(&mut self) -> Option<(PathBuf, SavedState)> {
        self.to_save.take()
    }

    /// An order request from `session`: refused at once (busy, rate limit, risk: the refusal is
    /// queued as a report), answered from the order state (status requests), or returned as
    /// the command to push.
    pub fn request(&mut self, session: SessionId, request: Request, now_ns: u64) -> Option<CommandKind> {
        if self.in_flight.len() >= IN_FLIGHT_MAX || self.out.len() >= OUTPUT_MAX {
            self.stats.busy.fetch_add(1, Ordering::Relaxed);
            let text = format!("gateway busy: {} requests in flight", self.in_flight.len());
            self.business_reject(&request, text);
            return None;
        }
        // The live order a replace changes (its side, price and fills), for the funds gate.
        let replaced = match &request {
            Request::Replace { replace, .. } => self
                .orders
                .live_by_cl_ord_id(replace.account, replace.orig_id)
                .filter(|(_, s)| s.symbol == replace.symbol)
                .and_then(|(_, s)| {
                    let price_ticks = s.price?.0;
                    Some(crate::funds::Replaced { side: s.side, price_ticks, qty: s.qty, cum_qty: s.cum_qty })
                }),
            _ => None,
        };
        // One request in GATE_SAMPLE_EVERY has its gates timed for the stage histograms.
        let timed = self.next_seq & (crate::gates::GATE_SAMPLE_EVERY - 1) == 0;
        let admitted = if timed {
            let (admitted, ratelimit_ns, risk_ns) =
                self.gates.admit_timed(session, &request, replaced, now_ns, self.next_seq);
            let bump =
                |v: &AtomicU64, n: u64| v.store(v.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
            bump(&self.stats.gates_timed, 1);
            bump(&self.stats.ratelimit_ns, ratelimit_ns);
            bump(&self.stats.risk_ns, risk_ns);
            admitted
        } else {
            self.gates.admit(session, &request, replaced, now_ns, self.next_seq)
        };
        if let Err(refusal) = admitted {
            self.refuse(&request, refusal, now_ns);
            return None;
        }
        let kind = match request {
            Request::New { order, .. } => CommandKind::New(self.gates.capped(order)),
            Request::Cancel { cancel, .. } => CommandKind::Cancel(cancel),
            Request::Replace { replace, .. } => CommandKind::Replace(replace),
            Request::MassCancel { account, symbol, request_id, request_type, .. } => {
                let report = MassCancelReport {
                    request_id,
                    request_type,
                    response: request_type,
                    affected: 0,
                    symbol,
                    transact_ns: now_ns,
                };
                self.mass_cancels.push_back(MassCancelPending {
                    command_seq: self.next_seq,
                    account,
                    report,
                });
                CommandKind::CancelAll { account, symbol }
            }
            Request::Status { .. } | Request::MassStatus { .. } => {
                self.answer_status(&request, now_ns);
                return None;
            }
        };
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        Some(self.issue(kind, Some(request)))
    }

    /// Reports of a refusal by a gate.
    fn refuse(&mut self, request: &Request, refusal: crate::gates::Refusal, now_ns: u64) {
        use crate::gates::Refusal;
        match refusal {
            Refusal::RateLimited { retry_after_ns } => {
                self.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
                let text = format!("rate limited: retry after {} us", retry_after_ns.div_ceil(1_000));
                self.business_reject(request, text);
            }
            Refusal::Abuse => {
                self.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
                self.stats.abuse_logouts.fetch_add(1, Ordering::Relaxed);
                self.business_reject(request, "rate limited".into());
                let text = "rate limit abuse: too many refused messages".to_owned();
                self.deliver(request.account(), Report::Logout(text));
            }
            Refusal::Risk(reject) => {
                self.stats.risk_rejects.fetch_add(1, Ordering::Relaxed);
                let text = format!("{}: {}", reject.name(), reject.text());
                let report = match request {
                    Request::Replace { replace, .. } => {
                        let (account, symbol, orig, id) =
                            (replace.account, replace.symbol, replace.orig_id, replace.id);
                        let mut r =
                            self.cancel_reject(account, symbol, orig, id, b'2', RejectReason::BadOrder);
                        r.reason = reject.cxl_rej_reason();
                        r.text = text;
                        Report::CancelReject(r)
                    }
                    Request::New { order, .. } => {
                        let mut r = self.order_reject(order, now_ns);
                        r.ord_rej_reason = Some(reject.ord_rej_reason());
                        r.text = Some(text);
                        Report::Exec(r)
                    }
                    _ => unreachable!("only orders and replaces are risk-checked"),
                };
                self.deliver(request.account(), report);
            }
            Refusal::Funds(text) => {
                self.stats.risk_rejects.fetch_add(1, Ordering::Relaxed);
                let report = match request {
                    Request::New { order, .. } => {
                        let mut r = self.order_reject(order, now_ns);
                        // 3: order exceeds limit.
                        r.ord_rej_reason = Some(3);
                        r.text = Some(format!("risk_funds: {text}"));
                        Report::Exec(r)
                    }
                    Request::Replace { replace, .. } => {
                        let (account, symbol, orig, id) =
                            (replace.account, replace.symbol, replace.orig_id, replace.id);
                        let mut r =
                            self.cancel_reject(account, symbol, orig, id, b'2', RejectReason::BadOrder);
                        r.text = format!("risk_funds: {text}");
                        Report::CancelReject(r)
                    }
                    _ => unreachable!("only orders and replaces are funds-checked"),
                };
                self.deliver(request.account(), report);
            }
        }
    }

    fn business_reject(&mut self, request: &Request, text: String) {
        let (ref_seq, ref_msg_type, ref_id) = request.reference();
        let report = Report::BusinessReject { ref_seq, ref_msg_type, ref_id, reason: 0, text };
        self.deliver(request.account(), report);
    }

    /// An engine event, as soon as it is out of the engine: exposure follows the engine at
    /// once (not at acknowledgement), so limits are exact.
    pub fn on_engine_event(&mut self, event: &Event) {
        self.stats.events.fetch_add(1, Ordering::Relaxed);
        if let Some(risk) = self.gates.risk_mut() {
            risk.on_event(event);
        }
        self.gates.on_engine_event(event);
    }

    /// An engine event whose command is durable: its reports.
    pub fn on_event(&mut self, event: &Event) {
        while self.in_flight.front().is_some_and(|f| f.seq < event.command_seq) {
            self.in_flight.pop_front();
        }
        let request = self.in_flight.front().filter(|f| f.seq == event.command_seq).and_then(|f| f.request);
        self.on_event_for(event, request);
    }

    /// Every command up to `seq` has been processed and its events given to
    /// [`OrderManager::on_event`] (and it is durable): mass cancel reports up to it go out.
    pub fn commands_done(&mut self, seq: u64) {
        while self.mass_cancels.front().is_some_and(|p| p.command_seq <= seq) {
            let p = self.mass_cancels.pop_front().expect("front exists");
            self.deliver(p.account, Report::MassCancelReport(p.report));
        }
    }

    /// Rebuilds order state from the journals: every command with the events it caused, in
    /// order, through the same code as live traffic (risk exposure included). Reports of events
    /// at or below `reported[account]` were delivered before the restart and are not made
    /// again; later ones (a crash kept them from their session) are queued now.
    pub fn rebuild(
        &mut self,
        commands: impl IntoIterator<Item = Command>,
        events: impl IntoIterator<Item = Event>,
        reported: Vec<u64>,
    ) {
        self.reported = reported;
        let mut commands = commands.into_iter().peekable();
        let mut request = None;
        for event in events {
            while let Some(command) = commands.next_if(|c| c.header.seq <= event.command_seq) {
                request = (command.header.seq == event.command_seq)
                    .then(|| Request::of_command(&command))
                    .flatten();
            }
            self.on_engine_event(&event);
            self.on_event_for(&event, request);
        }
        self.reported.clear();
    }

    /// The next report to send, oldest first.
    pub fn pop_delivery(&mut self) -> Option<Delivery> {
        self.out.pop_front()
    }

    /// Puts back a report the host could not send yet (it stays first).
    pub fn unpop_delivery(&mut self, delivery: Delivery) {
        self.out.push_front(delivery);
    }

    /// Reports waiting to be taken.
    pub fn has_deliveries(&self) -> bool {
        !self.out.is_empty()
    }

    fn price_of(&self, order: &NewOrder) -> Option<Price> {
        if order.ord_type == OrdType::Market {
            return None;
        }
        self.symbols.get(order.symbol.index()).and_then(|s| s.units_to_ticks(order.price))
    }

    /// An ExecutionReport 150=8 of a refused new order, echoing what it asked.
    fn order_reject(&self, order: &NewOrder, transact_ns: u64) -> ExecReport {
        ExecReport {
            order_id: OrderId(0),
            cl_ord_id: order.id,
            orig_cl_ord_id: None,
            exec_id: 0,
            exec_type: b'8',
            ord_status: b'8',
            symbol: order.symbol,
            side: order.side,
            order_qty: order.qty,
            price: self.price_of(order),
            cum_qty: 0,
            leaves_qty: 0,
            notional_ticks: 0,
            last: None,
            ord_rej_reason: None,
            text: None,
            transact_ns,
            status: None,
        }
    }

    /// The reports of one event, given the request its command came from.
    fn on_event_for(&mut self, event: &Event, request: Option<Request>) {
        let (seq, ts) = (event.seq, event.ts);
        match event.kind {
            EventKind::Accepted { account, id, symbol, order_id, side, price, qty, .. } => {
                let price = match request {
                    Some(Request::New { order, .. }) if order.ord_type == OrdType::Market => None,
                    _ => Some(price),
                };
                let state = OrderState {
                    account,
                    cl_ord_id: id,
                    symbol,
                    side,
                    qty,
                    price,
                    cum_qty: 0,
                    notional_ticks: 0,
                };
                self.orders.track(order_id, state);
                self.report(order_id, &state, Exec::new(seq * 2, b'0', b'0', qty, ts));
            }
            EventKind::Trade {
                price,
                qty,
                maker_order_id,
                maker_leaves_qty,
                taker_order_id,
                taker_leaves_qty,
                ..
            } => {
                self.on_fill(event, price, qty, maker_order_id, maker_leaves_qty, 0);
                self.on_fill(event, price, qty, taker_order_id, taker_leaves_qty, 1);
            }
            EventKind::Canceled { order_id, reason, .. } => {
                self.on_canceled(event, order_id, reason, request)
            }
            EventKind::Expired { order_id, .. } => {
                let Some(state) = self.orders.finish(order_id, b'C') else {
                    return self.unknown_order(order_id);
                };
                self.report(order_id, &state, Exec::new(seq * 2, b'C', b'C', 0, ts));
            }
            EventKind::Triggered { order_id, .. } => {
                let Some(state) = self.orders.get(order_id).copied() else {
                    return self.unknown_order(order_id);
                };
                let leaves = state.qty - state.cum_qty;
                self.report(order_id, &state, Exec::new(seq * 2, b'L', b'0', leaves, ts));
            }
            EventKind::Replaced { orig_id, id, order_id, price, qty, leaves_qty, .. } => {
                self.on_replaced(event, orig_id, id, order_id, price, qty, leaves_qty)
            }
            EventKind::Rejected { account, id, symbol, reason } => {
                self.on_reject(event, account, id, symbol, reason, request)
            }
            EventKind::TradingStatus { .. } => {}
        }
    }

    /// One leg of a trade (`leg` 0: the maker, 1: the taker; the ExecID is `seq * 2 + leg`):
    /// adds the fill to the order's CumQty and notional, reports 150=F, and ends a filled order.
    fn on_fill(&mut self, event: &Event, price: Price, qty: u64, order_id: OrderId, leaves: u64, leg: u64) {
        let Some(state) = self.orders.get_mut(order_id) else {
            return self.unknown_order(order_id);
        };
        state.cum_qty += qty;
        state.notional_ticks += i128::from(price.0) * i128::from(qty);
        let state = *state;
        let status = if leaves == 0 { b'2' } else { b'1' };
        if leaves == 0 {
            self.orders.finish(order_id, b'2');
        }
        let exec = Exec {
            last: Some((price, qty)),
            ..Exec::new(event.seq * 2 + leg, b'F', status, leaves, event.ts)
        };
        self.report(order_id, &state, exec);
    }

    /// A cancel: counted in its mass cancel's report when it is one, reported 150=4 naming the
    /// cancel request's ClOrdID (a user cancel) or the reason (anything else).
    fn on_canceled(
        &mut self,
        event: &Event,
        order_id: OrderId,
        reason: CancelReason,
        request: Option<Request>,
    ) {
        if reason == CancelReason::MassCancel {
            if let Some(p) = self.mass_cancels.iter_mut().find(|p| p.command_seq == event.command_seq) {
                p.report.affected += 1;
            }
        }
        let Some(mut state) = self.orders.finish(order_id, b'4') else {
            return self.unknown_order(order_id);
        };
        let orig = match (reason, request) {
            (CancelReason::User, Some(Request::Cancel { request_id, .. })) => {
                let orig = state.cl_ord_id;
                state.cl_ord_id = request_id;
                Some(orig)
            }
            _ => None,
        };
        let text = (reason != CancelReason::User).then(|| reason.as_str().to_owned());
        let exec = Exec { orig, text, ..Exec::new(event.seq * 2, b'4', b'4', 0, event.ts) };
        self.report(order_id, &state, exec);
    }

    /// A replace: the order's new id, quantity and price, reported 150=5 with its status.
    #[allow(clippy::too_many_arguments)] // the Replaced event's fields, each used once
    fn on_replaced(
        &mut self,
        event: &Event,
        orig_id: ClOrdId,
        id: ClOrdId,
        order_id: OrderId,
        price: Price,
        qty: u64,
        leaves_qty: u64,
    ) {
        let Some(state) = self.orders.replace(order_id, id, qty, price) else {
            return self.unknown_order(order_id);
        };
        let status = match (leaves_qty, state.cum_qty) {
            (0, _) => b'2',
            (_, 0) => b'0',
            _ => b'1',
        };
        if leaves_qty == 0 {
            self.orders.finish(order_id, b'2');
        }
        let exec =
            Exec { orig: Some(orig_id), ..Exec::new(event.seq * 2, b'5', status, leaves_qty, event.ts) };
        self.report(order_id, &state, exec);
    }

    fn on_reject(
        &mut self,
        event: &Event,
        account: AccountId,
        id: ClOrdId,
        symbol: SymbolId,
        reason: RejectReason,
        request: Option<Request>,
    ) {
        let report = match request {
            Some(Request::Cancel { cancel, request_id, .. }) => Report::CancelReject(self.cancel_reject(
                cancel.account,
                cancel.symbol,
                cancel.id,
                request_id,
                b'1',
                reason,
            )),
            Some(Request::Replace { replace, .. }) => Report::CancelReject(self.cancel_reject(
                replace.account,
                replace.symbol,
                replace.orig_id,
                replace.id,
                b'2',
                reason,
            )),
            Some(Request::New { order, .. }) => {
                let mut r = self.order_reject(&order, event.ts);
                r.cl_ord_id = id;
                r.symbol = symbol;
                r.exec_id = event.seq * 2;
                r.ord_rej_reason = Some(ord_rej_reason(reason));
                r.text = Some(reason.as_str().to_owned());
                Report::Exec(r)
            }
            // A CancelAll is never rejected; status requests never reach the engine.
            Some(Request::MassCancel { .. } | Request::Status { .. } | Request::MassStatus { .. }) | None => {
                return
            }
        };
        self.deliver_event(account, event.seq, report);
    }

    fn cancel_reject(
        &self,
        account: AccountId,
        symbol: SymbolId,
        orig: ClOrdId,
        request_id: ClOrdId,
        response_to: u8,
        reason: RejectReason,
    ) -> CancelReject {
        let live = self
            .orders
            .live_by_cl_ord_id(account, orig)
            .filter(|(_, s)| s.symbol == symbol)
            .map(|(id, s)| (id, if s.cum_qty > 0 { b'1' } else { b'0' }));
        let (order_id, ord_status) = live.unwrap_or((OrderId(0), b'8'));
        CancelReject {
            order_id,
            cl_ord_id: request_id,
            orig_cl_ord_id: orig,
            ord_status,
            response_to,
            reason: if reason == RejectReason::UnknownOrder { 1 } else { 99 },
            text: reason.as_str().to_owned(),
        }
    }

    fn report(&mut self, order_id: OrderId, state: &OrderState, exec: Exec) {
        let report = ExecReport {
            order_id,
            cl_ord_id: state.cl_ord_id,
            orig_cl_ord_id: exec.orig,
            exec_id: exec.exec_id,
            exec_type: exec.exec_type,
            ord_status: exec.ord_status,
            symbol: state.symbol,
            side: state.side,
            order_qty: state.qty,
            price: state.price,
            cum_qty: state.cum_qty,
            leaves_qty: exec.leaves_qty,
            notional_ticks: state.notional_ticks,
            last: exec.last,
            ord_rej_reason: None,
            text: exec.text,
            transact_ns: exec.transact_ns,
            status: None,
        };
        self.deliver_event(state.account, exec.exec_id / 2, Report::Exec(report));
    }

    /// A status report (150=I) of the order `cl_ord_id` of `account`: live, recently finished,
    /// or unknown (OrdStatus 8, OrdRejReason 5). Another account's order is unknown.
    fn status_report(
        &self,
        account: AccountId,
        cl_ord_id: ClOrdId,
        side: Side,
        symbol: SymbolId,
        now_ns: u64,
    ) -> ExecReport {
        match self.orders.lookup(account, cl_ord_id) {
            Some(found) => {
                let s = found.state;
                let live = matches!(found.ord_status, b'0' | b'1');
                ExecReport {
                    order_id: found.order_id,
                    cl_ord_id: s.cl_ord_id,
                    orig_cl_ord_id: None,
                    exec_id: 0,
                    exec_type: b'I',
                    ord_status: found.ord_status,
                    symbol: s.symbol,
                    side: s.side,
                    order_qty: s.qty,
                    price: s.price,
                    cum_qty: s.cum_qty,
                    leaves_qty: if live { s.qty - s.cum_qty } else { 0 },
                    notional_ticks: s.notional_ticks,
                    last: None,
                    ord_rej_reason: None,
                    text: None,
                    transact_ns: now_ns,
                    status: None,
                }
            }
            None => ExecReport {
                order_id: OrderId(0),
                cl_ord_id,
                orig_cl_ord_id: None,
                exec_id: 0,
                exec_type: b'I',
                ord_status: b'8',
                symbol,
                side,
                order_qty: 0,
                price: None,
                cum_qty: 0,
                leaves_qty: 0,
                notional_ticks: 0,
                last: None,
                ord_rej_reason: Some(5),
                text: Some("unknown order".into()),
                transact_ns: now_ns,
                status: None,
            },
        }
    }

    /// Answers OrderStatusRequest and OrderMassStatusRequest from the order state.
    fn answer_status(&mut self, request: &Request, now_ns: u64) {
        match *request {
            Request::Status { account, cl_ord_id, req_id, side, symbol } => {
                let mut report = self.status_report(account, cl_ord_id, side, symbol, now_ns);
                report.status = Some(Box::new(StatusInfo { ord_status_req_id: req_id, mass: None }));
                self.deliver(account, Report::Exec(report));
            }
            Request::MassStatus { account, req_id, symbol } => {
                let live = self.orders.live_of(account, symbol);
                let total = live.len() as u64;
                if live.is_empty() {
                    // No live order: one report saying so, with TotNumReports 0.
                    let none = ClOrdId::from_str("NONE").expect("a valid id");
                    let mut report =
                        self.status_report(account, none, Side::Buy, symbol.unwrap_or(SymbolId(0)), now_ns);
                    report.text = Some("no live orders".into());
                    report.ord_rej_reason = None;
                    report.status =
                        Some(Box::new(StatusInfo { ord_status_req_id: None, mass: Some((req_id, 0, true)) }));
                    self.deliver(account, Report::Exec(report));
                }
                for (i, (_, state)) in live.into_iter().enumerate() {
                    let mut report =
                        self.status_report(account, state.cl_ord_id, state.side, state.symbol, now_ns);
                    let last = i as u64 + 1 == total;
                    report.status = Some(Box::new(StatusInfo {
                        ord_status_req_id: None,
                        mass: Some((req_id, total, last)),
                    }));
                    self.deliver(account, Report::Exec(report));
                }
            }
            _ => {}
        }
    }

    /// Queues a report that reports no engine event.
    fn deliver(&mut self, account: AccountId, report: Report) {
        self.deliver_event(account, 0, report);
    }

    /// Queues a report for `account`'s session, connected or not, and a copy of an
    /// ExecutionReport for each of its drop-copy accounts; a report of an event a restart found
    /// already delivered ([`OrderManager::rebuild`]) is not made again.
    fn deliver_event(&mut self, account: AccountId, event_seq: u64, report: Report) {
        if event_seq != 0 && matches!(report, Report::Exec(_)) {
            let receivers = self.drop_copies.get(account.index()).map_or(0, Vec::len);
            for i in 0..receivers {
                let receiver = self.drop_copies[account.index()][i];
                self.push(receiver, event_seq, report.clone());
            }
        }
        self.push(account, event_seq, report);
    }

    fn push(&mut self, account: AccountId, event_seq: u64, report: Report) {
        if event_seq != 0 && self.reported.get(account.index()).is_some_and(|&r| event_seq <= r) {
            return;
        }
        if self.sessions.get(account.index()).is_none_or(Option::is_none) {
            self.stats.to_detached.fetch_add(1, Ordering::Relaxed);
        }
        self.out.push_back(Delivery { account, event_seq, report });
    }

    fn unknown_order(&self, order_id: OrderId) {
        self.stats.unknown_order_events.fetch_add(1, Ordering::Relaxed);
        debug_assert!(false, "an event for order {order_id}, which order management does not know");
    }
}

/// What varies between the ExecutionReports of one order.
struct Exec {
    exec_id: u64,
    exec_type: u8,
    ord_status: u8,
    leaves_qty: Qty,
    last: Option<(Price, Qty)>,
    orig: Option<ClOrdId>,
    text: Option<String>,
    transact_ns: u64,
}

impl Exec {
    fn new(exec_id: u64, exec_type: u8, ord_status: u8, leaves_qty: Qty, transact_ns: u64) -> Exec {
        Exec { exec_id, exec_type, ord_status, leaves_qty, last: None, orig: None, text: None, transact_ns }
    }
}
