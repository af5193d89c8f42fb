//! The simulation loop: recorded commands and the strategy's commands through one engine.
//!
//! Time is the flow's: a recorded command's `ts`. When the strategy acts (in a callback after
//! a command with timestamp `t`), each command it sends reaches the engine at
//! `t + latency + jitter`, where jitter is drawn uniformly from `0..=jitter_ns` by a `SmallRng`
//! seeded with the configured seed. Arrivals keep the order of sending (a session is one
//! ordered stream), so an arrival is never earlier than the previous one. A command arriving at
//! `a` is processed before the first recorded command whose `ts >= a`, stamped with `ts = a`;
//! the recorded commands are processed unchanged (only renumbered), by the same
//! [`engine::Engine`] as every other run.
//!
//! When the recording ends the venue closes: the commands still in flight arrive, in order,
//! and the strategy may send nothing more ([`SendError::Closed`](crate::SendError::Closed)).

use std::collections::VecDeque;

use engine::{
    AccountId, CancelOrder, ClOrdId, Command, CommandHeader, CommandKind, Engine, EngineConfig, Event,
    EventKind, LevelSnapshot, NewOrder, OrdType, PriceUnits, Qty, ReplaceOrder, Side, StpMode, SymbolId,
    SymbolSpec,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::flow::{scan, Flow, FlowInfo};
use crate::plot::equity_svg;
use crate::portfolio::{Drawdown, EquityCurve, FeeSchedule, Portfolio};
use crate::report::{
    format_money, FeesReport, FillRecord, FillsReport, FlowReport, OrdersReport, PnlReport, Report,
};
use crate::strategy::{
    Ctx, Fill, Gateway, Liquidity, OrderRef, OrderUpdate, Outgoing, OwnCommand, OwnOrder, Quote, Session,
    Strategy, TopOfBook, TradePrint,
};
use crate::BacktestError;

/// Default bound on the strategy's orders live or on their way ([`BacktestConfig::live_orders_max`]).
pub const LIVE_ORDERS_MAX_DEFAULT: usize = 64;
/// Default bound on the strategy's commands in flight ([`BacktestConfig::in_flight_max`]).
pub const IN_FLIGHT_MAX_DEFAULT: usize = 256;
/// Default bound on the fills listed one by one in the report.
pub const FILLS_LISTED_MAX_DEFAULT: usize = 1_000;
/// Default bound on the points of the equity curve.
pub const CURVE_POINTS_MAX_DEFAULT: usize = 2_000;
/// Default account name of the strategy.
pub const ACCOUNT_DEFAULT: &str = "backtest";
/// How many `-<n>` suffixes are tried when the default account name is taken.
const ACCOUNT_SUFFIXES_MAX: u32 = 1_000;

/// Everything a backtest is run with, resolved: which symbol, which account, the latency model,
/// fees and bounds.
#[derive(Clone, Debug)]
pub struct BacktestConfig {
    /// Engine bounds and the journal's symbol table.
    pub engine: EngineConfig,
    /// The symbol the strategy trades.
    pub symbol: SymbolId,
    /// The strategy's account id; no recorded command may use it.
    pub account: AccountId,
    /// The strategy's account name (for the report).
    pub account_name: String,
    /// Latency from a strategy decision to the engine, nanoseconds.
    pub latency_ns: u64,
    /// Extra latency, uniform in `0..=jitter_ns` per command, drawn from `seed`.
    pub jitter_ns: u64,
    /// Seed of the jitter.
    pub seed: u64,
    /// Fees.
    pub fees: FeeSchedule,
    /// Bound on the strategy's orders live or on their way; a send past it is refused.
    pub live_orders_max: usize,
    /// Bound on the strategy's commands in flight; a send past it is refused. Also the most of
    /// its commands processed between two recorded commands, so a strategy answering its own
    /// events at zero latency cannot stall the flow (the rest arrive after the next one).
    pub in_flight_max: usize,
    /// Bound on the fills listed in the report (all are counted).
    pub fills_listed_max: usize,
    /// Bound on the equity curve's points.
    pub curve_points_max: usize,
}

impl BacktestConfig {
    /// A configuration with zero latency, default fees and default bounds.
    pub fn new(
        engine: EngineConfig,
        symbol: SymbolId,
        account: AccountId,
        account_name: &str,
    ) -> BacktestConfig {
        BacktestConfig {
            engine,
            symbol,
            account,
            account_name: account_name.to_string(),
            latency_ns: 0,
            jitter_ns: 0,
            seed: 0,
            fees: FeeSchedule::default(),
            live_orders_max: LIVE_ORDERS_MAX_DEFAULT,
            in_flight_max: IN_FLIGHT_MAX_DEFAULT,
            fills_listed_max: FILLS_LISTED_MAX_DEFAULT,
            curve_points_max: CURVE_POINTS_MAX_DEFAULT,
        }
    }
}

/// A command of the strategy on its way.
#[derive(Clone, Copy, Debug)]
struct InFlight {
    arrival_ts: u64,
    command: Outgoing,
}

/// A backtest in progress: feed it the recorded commands in order, then [`Backtest::finish`].
pub struct Backtest<'s, S: Strategy + ?Sized> {
    config: BacktestConfig,
    spec: SymbolSpec,
    session: Session,
    engine: Engine,
    strategy: &'s mut S,
    gateway: Gateway,
    in_flight: VecDeque<InFlight>,
    arrival_last: u64,
    rng: SmallRng,
    portfolio: Portfolio,
    drawdown: Drawdown,
    curve: EquityCurve,
    top: TopOfBook,
    /// Events of the command being processed (reused).
    events: Vec<Event>,
    /// The strategy's command being processed, if the current command is one.
    current: Option<Outgoing>,
    seq: u64,
    now: u64,
    started: bool,
    recorded: u64,
    own_commands: u64,
    orders: OrdersReport,
    fills: FillsReport,
}

/// What a finished backtest produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BacktestOutcome {
    /// The report.
    pub report: Report,
    /// The equity curve: (timestamp ns, total PnL in price units), oldest first.
    pub curve: Vec<(u64, i128)>,
    /// Decimals money is printed with (the symbol's price decimals).
    pub money_decimals: u32,
}

impl BacktestOutcome {
    /// The report as JSON.
    pub fn report_json(&self) -> String {
        self.report.to_json()
    }

    /// The equity curve as SVG.
    pub fn equity_svg(&self) -> String {
        let title = format!(
            "{} on {}: total PnL {} (max drawdown {})",
            self.report.strategy, self.report.symbol, self.report.pnl.total, self.report.max_drawdown
        );
        equity_svg(&title, &self.curve, self.money_decimals)
    }
}

impl<'s, S: Strategy + ?Sized> Backtest<'s, S> {
    /// A backtest of `strategy` on a flow spanning `flow`.
    ///
    /// # Panics
    /// If `config.symbol` is not in `config.engine.symbols`.
    pub fn new(config: BacktestConfig, flow: &FlowInfo, strategy: &'s mut S) -> Backtest<'s, S> {
        let spec = config.engine.symbols[config.symbol.index()].clone();
        let session = Session {
            symbol: spec.clone(),
            first_ts: flow.first_ts,
            last_ts: flow.last_ts,
            commands: flow.commands,
        };
        Backtest {
            engine: Engine::new(config.engine.clone()),
            gateway: Gateway::new(config.live_orders_max, config.in_flight_max),
            in_flight: VecDeque::with_capacity(config.in_flight_max),
            arrival_last: 0,
            rng: SmallRng::seed_from_u64(config.seed),
            portfolio: Portfolio::default(),
            drawdown: Drawdown::default(),
            curve: EquityCurve::new(config.curve_points_max),
            top: TopOfBook::default(),
            events: Vec::new(),
            current: None,
            seq: 0,
            now: flow.first_ts,
            started: false,
            recorded: 0,
            own_commands: 0,
            orders: OrdersReport::default(),
            fills: FillsReport { listed_max: config.fills_listed_max, ..FillsReport::default() },
            spec,
            session,
            strategy,
            config,
        }
    }

    /// Processes the next recorded command, after the strategy's commands that arrive by its
    /// timestamp.
    pub fn recorded(&mut self, command: &Command) {
        self.start_once();
        self.deliver(Some(command.header.ts));
        self.recorded += 1;
        self.step(command.kind, command.header.ts);
    }

    /// Ends the flow: delivers what is in flight, and reports.
    pub fn finish(mut self) -> BacktestOutcome {
        self.start_once();
        self.gateway.closed = true;
        self.deliver(None);
        self.sample_equity();
        let mark = self.engine.last_trade(self.config.symbol).map(|p| self.spec.ticks_to_units(p));
        let decimals = self.spec.price_decimals();
        let money = |units: i128| format_money(units, decimals);
        let p = &self.portfolio;
        self.orders.refused = self.gateway.refused;
        self.orders.open_at_end = self.gateway.orders.len() as u64;
        self.fills.bought_qty = p.bought_qty;
        self.fills.sold_qty = p.sold_qty;
        self.fills.notional = money(p.notional);
        let curve = self.curve.points();
        let report = Report {
            strategy: self.strategy.name().to_string(),
            symbol: self.spec.name.clone(),
            account: self.config.account_name.clone(),
            seed: self.config.seed,
            latency_ns: self.config.latency_ns,
            jitter_ns: self.config.jitter_ns,
            fees_bps: FeesReport { maker: self.config.fees.maker_bps, taker: self.config.fees.taker_bps },
            flow: FlowReport {
                recorded_commands: self.recorded,
                own_commands: self.own_commands,
                first_ts: self.session.first_ts,
                last_ts: self.session.last_ts,
            },
            orders: self.orders.clone(),
            fills: self.fills.clone(),
            inventory: p.position,
            pnl: PnlReport {
                mark: mark.map(|m| money(i128::from(m))),
                realised: money(p.realised),
                unrealised: money(p.unrealised(mark)),
                fees: money(p.fees),
                total: money(p.equity(mark)),
            },
            max_drawdown: money(self.drawdown.max()),
            equity_points: curve.len(),
            strategy_stats: self.strategy.stats().into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        };
        BacktestOutcome { report, curve, money_decimals: decimals }
    }

    fn start_once(&mut self) {
        if self.started {
            return;
        }
        self.started = true;
        self.curve.offer(self.now, 0);
        self.notify(|s, ctx| s.on_start(ctx));
        self.flush_outbox();
    }

    /// Runs `f` on the strategy with a fresh context.
    fn notify(&mut self, f: impl FnOnce(&mut S, &mut Ctx<'_>)) {
        let mut ctx = Ctx {
            now_ns: self.now,
            top: &self.top,
            session: &self.session,
            position: self.portfolio.position,
            gateway: &mut self.gateway,
        };
        f(&mut *self.strategy, &mut ctx);
    }

    /// Stamps the arrival of what the strategy sent and queues it.
    fn flush_outbox(&mut self) {
        let (latency, jitter_max) = (self.config.latency_ns, self.config.jitter_ns);
        for command in self.gateway.outbox.drain(..) {
            let jitter = if jitter_max > 0 { self.rng.gen_range(0..=jitter_max) } else { 0 };
            let arrival = self.now.saturating_add(latency).saturating_add(jitter).max(self.arrival_last);
            self.arrival_last = arrival;
            self.in_flight.push_back(InFlight { arrival_ts: arrival, command });
            self.gateway.in_flight += 1;
        }
    }

    /// Processes the strategy's commands that arrive by `until` (all, when `None`), at most
    /// `in_flight_max` of them while the flow goes on.
    fn deliver(&mut self, until: Option<u64>) {
        let mut delivered = 0;
        while let Some(next) = self.in_flight.front().copied() {
            if let Some(until) = until {
                if next.arrival_ts > until || delivered >= self.config.in_flight_max {
                    break;
                }
            }
            self.in_flight.pop_front();
            self.gateway.in_flight -= 1;
            delivered += 1;
            self.own_commands += 1;
            let kind = self.own_command(next.command);
            self.current = Some(next.command);
            self.step(kind, next.arrival_ts);
            self.current = None;
        }
    }

    fn client_id(id: OrderRef) -> ClOrdId {
        // "bt" and at most 20 digits: within CL_ORD_ID_LEN_MAX.
        ClOrdId::from_str(&id.client_id()).expect("a strategy client id fits")
    }

    /// The engine command for one of the strategy's commands (and counts it).
    fn own_command(&mut self, command: Outgoing) -> CommandKind {
        let (account, symbol) = (self.config.account, self.config.symbol);
        match command {
            Outgoing::New(id, spec) => {
                self.orders.new += 1;
                let (ord_type, price) = match spec.price {
                    Some(p) => (OrdType::Limit, self.spec.ticks_to_units(p)),
                    None => (OrdType::Market, PriceUnits::ZERO),
                };
                CommandKind::New(NewOrder {
                    account,
                    symbol,
                    id: Self::client_id(id),
                    side: spec.side,
                    ord_type,
                    tif: spec.tif,
                    price,
                    qty: spec.qty,
                    stop_price: None,
                    display_qty: None,
                    expire_ts: None,
                    post_only: spec.post_only,
                    stp: StpMode::CancelNewest,
                })
            }
            Outgoing::Cancel(id) => {
                self.orders.cancels += 1;
                CommandKind::Cancel(CancelOrder {
                    account,
                    symbol,
                    id: Self::client_id(id),
                    request_id: None,
                })
            }
            Outgoing::Replace { orig, id, price, qty } => {
                self.orders.replaces += 1;
                CommandKind::Replace(ReplaceOrder {
                    account,
                    symbol,
                    orig_id: Self::client_id(orig),
                    id: Self::client_id(id),
                    price: price.map(|p| self.spec.ticks_to_units(p)),
                    qty,
                })
            }
        }
    }

    /// One command through the engine, then the strategy's callbacks.
    fn step(&mut self, kind: CommandKind, ts: u64) {
        self.seq += 1;
        self.now = self.now.max(ts);
        let command = Command { header: CommandHeader { seq: self.seq, ts: self.now }, kind };
        let mut events = std::mem::take(&mut self.events);
        events.clear();
        self.engine.process(&command, &mut events);
        let mut touched = false;
        let mut traded = false;
        for event in &events {
            let (t, tr) = self.on_event(event);
            touched |= t;
            traded |= tr;
        }
        self.events = events;
        if touched {
            let top = top_of_book(&self.engine, self.config.symbol, self.config.account);
            if top != self.top {
                self.top = top;
                self.notify(|s, ctx| s.on_book(ctx));
            }
        }
        self.notify(|s, ctx| s.on_timer(ctx));
        self.flush_outbox();
        if traded {
            self.sample_equity();
        }
    }

    fn sample_equity(&mut self) {
        let mark = self.engine.last_trade(self.config.symbol).map(|p| self.spec.ticks_to_units(p));
        let equity = self.portfolio.equity(mark);
        self.drawdown.observe(equity);
        self.curve.offer(self.now, equity);
    }

    /// Books one event; returns (the symbol's book may have changed, a trade printed on it).
    fn on_event(&mut self, event: &Event) -> (bool, bool) {
        let me = self.config.account;
        let mine = self.config.symbol;
        let ours = move |symbol: SymbolId| symbol == mine;
        let own_ref = |account: AccountId, id: &ClOrdId| {
            if account == me {
                OrderRef::from_client_id(id.as_str())
            } else {
                None
            }
        };
        match event.kind {
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
                if !ours(symbol) {
                    return (false, false);
                }
                let maker = own_ref(maker_account, &maker_id);
                let taker = own_ref(taker_account, &taker_id);
                if let Some(id) = maker {
                    let side = aggressor.opposite();
                    self.own_fill(event, id, side, price, qty, maker_leaves_qty, Liquidity::Maker);
                }
                if let Some(id) = taker {
                    self.own_fill(event, id, aggressor, price, qty, taker_leaves_qty, Liquidity::Taker);
                }
                let print = TradePrint { price, qty, aggressor, own: maker.is_some() || taker.is_some() };
                self.notify(|s, ctx| s.on_trade(&print, ctx));
                (true, true)
            }
            EventKind::Accepted { account, id, symbol, .. } => {
                if let Some(id) = own_ref(account, &id) {
                    self.orders.accepted += 1;
                    if let Some(o) = self.gateway.orders.get_mut(&id) {
                        o.acked = true;
                    }
                    self.notify(|s, ctx| s.on_order(&OrderUpdate::Accepted { id }, ctx));
                }
                (ours(symbol), false)
            }
            EventKind::Canceled { account, id, symbol, reason, leaves_qty, .. } => {
                if let Some(id) = own_ref(account, &id) {
                    *self.orders.canceled_by_reason.entry(reason.as_str().to_string()).or_default() += 1;
                    self.gateway.orders.remove(&id);
                    self.notify(|s, ctx| s.on_order(&OrderUpdate::Canceled { id, reason, leaves_qty }, ctx));
                }
                (ours(symbol), false)
            }
            EventKind::Rejected { account, id, reason, .. } => {
                if let Some(id) = own_ref(account, &id) {
                    self.orders.rejects += 1;
                    *self.orders.rejects_by_reason.entry(reason.as_str().to_string()).or_default() += 1;
                    let command = match self.current {
                        Some(Outgoing::Replace { orig, .. }) => {
                            self.clear_change_pending(orig);
                            OwnCommand::Replace { orig }
                        }
                        Some(Outgoing::Cancel(orig)) => {
                            self.clear_change_pending(orig);
                            OwnCommand::Cancel
                        }
                        Some(Outgoing::New(..)) | None => {
                            self.gateway.orders.remove(&id);
                            OwnCommand::New
                        }
                    };
                    self.notify(|s, ctx| s.on_order(&OrderUpdate::Rejected { id, command, reason }, ctx));
                }
                // A reject changes nothing.
                (false, false)
            }
            EventKind::Replaced { account, orig_id, id, symbol, price, qty, leaves_qty, .. } => {
                if let (Some(orig), Some(id)) = (own_ref(account, &orig_id), own_ref(account, &id)) {
                    if let Some(old) = self.gateway.orders.remove(&orig) {
                        if leaves_qty > 0 {
                            let price = old.price.map(|_| price);
                            let order = OwnOrder {
                                id,
                                price,
                                qty,
                                leaves_qty,
                                acked: true,
                                change_pending: false,
                                ..old
                            };
                            self.gateway.orders.insert(id, order);
                        }
                    }
                    self.notify(|s, ctx| s.on_order(&OrderUpdate::Replaced { orig, id, leaves_qty }, ctx));
                }
                (ours(symbol), false)
            }
            EventKind::Expired { account, id, symbol, .. } => {
                if let Some(id) = own_ref(account, &id) {
                    self.gateway.orders.remove(&id);
                    self.notify(|s, ctx| s.on_order(&OrderUpdate::Expired { id }, ctx));
                }
                (ours(symbol), false)
            }
            EventKind::Triggered { symbol, .. } | EventKind::TradingStatus { symbol, .. } => {
                (ours(symbol), false)
            }
        }
    }

    fn clear_change_pending(&mut self, id: OrderRef) {
        if let Some(o) = self.gateway.orders.get_mut(&id) {
            o.change_pending = false;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn own_fill(
        &mut self,
        event: &Event,
        id: OrderRef,
        side: Side,
        price: engine::Price,
        qty: Qty,
        leaves_qty: Qty,
        liquidity: Liquidity,
    ) {
        let price_units = self.spec.ticks_to_units(price);
        let notional = i128::from(price_units) * i128::from(qty);
        let bps = match liquidity {
            Liquidity::Maker => self.config.fees.maker_bps,
            Liquidity::Taker => self.config.fees.taker_bps,
        };
        let fee_units = FeeSchedule::fee(notional, bps);
        self.portfolio.fill(side, price_units, qty, fee_units);
        if leaves_qty == 0 {
            self.gateway.orders.remove(&id);
        } else if let Some(o) = self.gateway.orders.get_mut(&id) {
            o.leaves_qty = leaves_qty;
        }
        self.fills.count += 1;
        match liquidity {
            Liquidity::Maker => self.fills.maker += 1,
            Liquidity::Taker => self.fills.taker += 1,
        }
        if self.fills.listed.len() < self.fills.listed_max {
            let decimals = self.spec.price_decimals();
            self.fills.listed.push(FillRecord {
                seq: event.seq,
                ts: event.ts,
                id: id.client_id(),
                side: side.as_str(),
                price: format_money(i128::from(price_units), decimals),
                qty,
                liquidity: liquidity.as_str(),
                fee: format_money(fee_units, decimals),
            });
        }
        let fill = Fill { id, side, price, qty, leaves_qty, liquidity, fee_units };
        // The position the strategy sees already includes this fill.
        self.notify(|s, ctx| s.on_fill(&fill, ctx));
    }
}

/// The top of a symbol's book without `account`'s orders. Copies the book
/// ([`Engine::book_snapshot`]); called only after a command that produced an event on it.
fn top_of_book(engine: &Engine, symbol: SymbolId, account: AccountId) -> TopOfBook {
    let book = engine.book_snapshot(symbol);
    let best = |levels: &[LevelSnapshot]| {
        levels.iter().find_map(|level| {
            let qty: Qty = level.orders.iter().filter(|o| o.account != account).map(|o| o.visible_qty).sum();
            (qty > 0).then_some(Quote { price: level.price, qty })
        })
    };
    TopOfBook { bid: best(&book.bids), ask: best(&book.asks), last_trade: engine.last_trade(symbol) }
}

/// How to run a backtest on a journal directory, before the symbol and account are resolved
/// against the journal.
#[derive(Clone, Debug)]
pub struct BacktestOptions {
    /// The journal's symbol table (its `meta.json`), by symbol id.
    pub symbols: Vec<SymbolSpec>,
    /// The recorded account names (its `accounts.txt`), by account id.
    pub accounts: Vec<String>,
    /// Symbol to trade; the one with the most recorded new orders when `None`.
    pub symbol: Option<String>,
    /// The strategy's account name; [`ACCOUNT_DEFAULT`] (or `backtest-<n>` if that is taken)
    /// when `None`.
    pub account: Option<String>,
    /// Bound on live orders of the engine.
    pub orders_max: usize,
    /// Latency, jitter, seed, fees and bounds; its `engine`, `symbol` and `account` fields are
    /// filled in by [`run_flow`].
    pub config: BacktestConfig,
}

impl BacktestOptions {
    /// Options with defaults for a journal with these symbols and accounts.
    pub fn new(symbols: Vec<SymbolSpec>, accounts: Vec<String>) -> BacktestOptions {
        let engine = EngineConfig { symbols: symbols.clone(), ..EngineConfig::default() };
        BacktestOptions {
            orders_max: engine.orders_max,
            config: BacktestConfig::new(engine, SymbolId(0), AccountId(0), ACCOUNT_DEFAULT),
            symbols,
            accounts,
            symbol: None,
            account: None,
        }
    }
}

/// The strategy's account: an id after every recorded one (named in `accounts` or used by a
/// command), and a name no recorded account has.
pub fn pick_account(
    accounts: &[String],
    requested: Option<&str>,
    flow: &FlowInfo,
) -> Result<(AccountId, String), BacktestError> {
    let taken = |name: &str| accounts.iter().any(|a| a == name);
    let name = match requested {
        Some(name) if taken(name) => return Err(BacktestError::AccountTaken(name.to_string())),
        Some(name) => name.to_string(),
        None => std::iter::once(ACCOUNT_DEFAULT.to_string())
            .chain((2..ACCOUNT_SUFFIXES_MAX).map(|n| format!("{ACCOUNT_DEFAULT}-{n}")))
            .find(|name| !taken(name))
            .ok_or_else(|| BacktestError::AccountTaken(ACCOUNT_DEFAULT.to_string()))?,
    };
    let after_names = u32::try_from(accounts.len()).map_err(|_| BacktestError::NoAccountId)?;
    let after_commands = match flow.account_id_max {
        Some(max) => max.0.checked_add(1).ok_or(BacktestError::NoAccountId)?,
        None => 0,
    };
    Ok((AccountId(after_names.max(after_commands)), name))
}

/// The symbol to trade: `requested` by name, or the busiest.
pub fn pick_symbol(
    symbols: &[SymbolSpec],
    requested: Option<&str>,
    flow: &FlowInfo,
) -> Result<SymbolId, BacktestError> {
    match requested {
        Some(name) => {
            symbols.iter().position(|s| s.name == name).map(|i| SymbolId(i as u32)).ok_or_else(|| {
                BacktestError::UnknownSymbol {
                    name: name.to_string(),
                    known: symbols.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", "),
                }
            })
        }
        None => flow.busiest_symbol().ok_or(BacktestError::NoSymbols),
    }
}

/// Backtests `strategy` on the recorded `flow`: one pass to learn the flow's span, the symbol
/// and a free account, a second to run it.
pub fn run_flow<F: Flow, S: Strategy + ?Sized>(
    flow: &mut F,
    options: &BacktestOptions,
    strategy: &mut S,
) -> Result<BacktestOutcome, BacktestError> {
    // The bounds first: a typo should not cost a pass over a large journal.
    let engine = EngineConfig {
        symbols: options.symbols.clone(),
        orders_max: options.orders_max,
        ..options.config.engine.clone()
    };
    engine.validate()?;
    let info = scan(flow, options.symbols.len())?;
    if info.commands == 0 {
        return Err(BacktestError::EmptyFlow(flow.name()));
    }
    let symbol = pick_symbol(&options.symbols, options.symbol.as_deref(), &info)?;
    let (account, account_name) = pick_account(&options.accounts, options.account.as_deref(), &info)?;
    let config = BacktestConfig { engine, symbol, account, account_name, ..options.config.clone() };
    let mut backtest = Backtest::new(config, &info, strategy);
    flow.for_each_command(|command| backtest.recorded(command))?;
    Ok(backtest.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::{OrderSpec, SendError};
    use crate::{MarketMaker, MarketMakerConfig, Twap, TwapConfig};
    use engine::{default_symbols, Price, RejectReason, Tif, PRICE_UNITS_PER_ONE};

    const ALICE: AccountId = AccountId(0);
    const BOB: AccountId = AccountId(1);
    const ME: AccountId = AccountId(7);
    const CENT: i64 = PRICE_UNITS_PER_ONE / 100;

    fn new(account: AccountId, id: &str, side: Side, cents: i64, qty: Qty) -> CommandKind {
        CommandKind::New(NewOrder::limit(
            account,
            SymbolId(0),
            ClOrdId::from_str(id).unwrap(),
            side,
            cents * CENT,
            qty,
        ))
    }

    fn market(account: AccountId, id: &str, side: Side, qty: Qty) -> CommandKind {
        CommandKind::New(NewOrder::market(account, SymbolId(0), ClOrdId::from_str(id).unwrap(), side, qty))
    }

    fn flow(kinds: &[(u64, CommandKind)]) -> (Vec<Command>, FlowInfo) {
        let mut info = FlowInfo { new_orders_by_symbol: vec![0; 3], ..FlowInfo::default() };
        let commands: Vec<Command> = kinds
            .iter()
            .enumerate()
            .map(|(i, &(ts, kind))| Command { header: CommandHeader { seq: i as u64 + 1, ts }, kind })
            .collect();
        commands.iter().for_each(|c| info.observe(c));
        (commands, info)
    }

    fn config(latency_ns: u64) -> BacktestConfig {
        let engine = EngineConfig { symbols: default_symbols(), orders_max: 1_000, levels_per_side_max: 100 };
        BacktestConfig { latency_ns, ..BacktestConfig::new(engine, SymbolId(0), ME, "me") }
    }

    fn run<S: Strategy + ?Sized>(
        config: BacktestConfig,
        kinds: &[(u64, CommandKind)],
        s: &mut S,
    ) -> BacktestOutcome {
        let (commands, info) = flow(kinds);
        let mut bt = Backtest::new(config, &info, s);
        commands.iter().for_each(|c| bt.recorded(c));
        bt.finish()
    }

    #[test]
    fn run_flow_reads_an_in_memory_flow_twice_and_refuses_an_empty_one() {
        let accounts: Vec<String> = ["alice", "bob"].map(String::from).to_vec();
        let options = BacktestOptions::new(default_symbols(), accounts);
        let mut strategy = MarketMaker::new(MarketMakerConfig::default());
        let mut empty: &[Command] = &[];
        let refused = run_flow(&mut empty, &options, &mut strategy).unwrap_err();
        assert!(matches!(refused, BacktestError::EmptyFlow(_)), "{refused}");

        let (commands, _) =
            flow(&[(1, new(ALICE, "a1", Side::Buy, 99, 5)), (2, new(BOB, "b1", Side::Sell, 101, 5))]);
        let outcome = run_flow(&mut commands.as_slice(), &options, &mut strategy).unwrap();
        assert_eq!(outcome.report.flow.recorded_commands, 2);
    }

    /// Sends one order at start; records every update it gets.
    struct OneShot {
        spec: OrderSpec,
        updates: Vec<OrderUpdate>,
        fills: Vec<Fill>,
    }

    impl OneShot {
        fn new(spec: OrderSpec) -> OneShot {
            OneShot { spec, updates: Vec::new(), fills: Vec::new() }
        }
    }

    impl Strategy for OneShot {
        fn name(&self) -> &str {
            "one-shot"
        }
        fn on_start(&mut self, ctx: &mut Ctx<'_>) {
            ctx.send(self.spec).unwrap();
        }
        fn on_order(&mut self, update: &OrderUpdate, _ctx: &mut Ctx<'_>) {
            self.updates.push(*update);
        }
        fn on_fill(&mut self, fill: &Fill, _ctx: &mut Ctx<'_>) {
            self.fills.push(*fill);
        }
    }

    /// Alice offers 5 at 1.00 at ts 0; bob lifts it at ts 100.
    fn race() -> Vec<(u64, CommandKind)> {
        vec![(0, new(ALICE, "a1", Side::Sell, 100, 5)), (100, market(BOB, "b1", Side::Buy, 5))]
    }

    #[test]
    fn an_order_arrives_before_the_first_command_at_or_after_its_arrival_time() {
        let buy = OrderSpec::limit(Side::Buy, Price(100), 5).ioc();
        for (latency, we_fill) in [(50, true), (100, true), (101, false)] {
            let mut s = OneShot::new(buy);
            let out = run(config(latency), &race(), &mut s);
            assert_eq!(s.fills.len() == 1, we_fill, "latency {latency}: {:?}", s.updates);
            assert_eq!(
                out.report.flow,
                FlowReport { recorded_commands: 2, own_commands: 1, first_ts: 0, last_ts: 100 }
            );
            if we_fill {
                assert_eq!(s.fills[0].liquidity, Liquidity::Taker);
                assert_eq!(out.report.inventory, 5);
                // 5 × 1.00 at 5 bps, rounded up to a price unit.
                assert_eq!(out.report.pnl.fees, "0.0025");
            } else {
                // Bob took the offer first; the IOC finds nothing and is canceled, arriving after the end.
                let canceled = OrderUpdate::Canceled {
                    id: OrderRef(1),
                    reason: engine::CancelReason::Ioc,
                    leaves_qty: 5,
                };
                assert_eq!(s.updates, vec![OrderUpdate::Accepted { id: OrderRef(1) }, canceled]);
                assert_eq!(out.report.inventory, 0);
            }
        }
    }

    #[test]
    fn a_rejected_order_is_counted_and_forgotten() {
        // Post-only buy at the offer: would take.
        let mut s = OneShot::new(OrderSpec::limit(Side::Buy, Price(100), 5).post_only());
        let out = run(config(10), &race(), &mut s);
        assert_eq!(
            s.updates,
            vec![OrderUpdate::Rejected {
                id: OrderRef(1),
                command: OwnCommand::New,
                reason: RejectReason::WouldTake
            }]
        );
        assert_eq!(out.report.orders.rejects, 1);
        assert_eq!(out.report.orders.rejects_by_reason.get("would_take"), Some(&1));
        assert_eq!(out.report.orders.open_at_end, 0);
    }

    #[test]
    fn the_market_maker_quotes_around_the_mid_and_earns_the_spread() {
        // Book 0.98 / 1.02 from alice; bob sells then buys at market: both hit the maker's quotes.
        let kinds = vec![
            (0, new(ALICE, "a1", Side::Buy, 98, 50)),
            (0, new(ALICE, "a2", Side::Sell, 102, 50)),
            (1_000, market(BOB, "b1", Side::Sell, 5)),
            (2_000, market(BOB, "b2", Side::Buy, 5)),
            (3_000, market(BOB, "b3", Side::Buy, 5)),
        ];
        let mut mm = MarketMaker::new(MarketMakerConfig {
            quote_lots: 5,
            half_spread_ticks: 1,
            skew_ticks: 1,
            inventory_max_lots: 5,
        });
        let out = run(config(10), &kinds, &mut mm);
        let r = &out.report;
        // Quotes at 0.99 / 1.01 (mid 1.00 ± 1 tick). Bob's sell fills the bid at 0.99; at +5
        // (the bound) the maker quotes no bid and skews its ask down a tick, to 1.00, where
        // bob's first buy flattens it; back at 0.99 / 1.01, the second buy takes the ask.
        assert_eq!((r.fills.count, r.fills.maker, r.fills.taker), (3, 3, 0), "{r:#?}");
        let prices: Vec<&str> = r.fills.listed.iter().map(|f| f.price.as_str()).collect();
        assert_eq!(prices, ["0.99", "1.00", "1.01"]);
        assert_eq!(r.inventory, -5);
        assert_eq!(r.orders.replaces, 2);
        assert_eq!(r.pnl.realised, "0.05");
        assert_eq!(r.pnl.unrealised, "0.00");
        // 1 bp of 0.99 × 5, 1.00 × 5 and 1.01 × 5.
        assert_eq!(r.pnl.fees, "0.0015");
        assert_eq!(r.pnl.total, "0.0485");
        assert_eq!(r.max_drawdown, "0.000505");
    }

    #[test]
    fn twap_executes_the_target_in_slices() {
        let mut kinds = vec![(0, new(ALICE, "a1", Side::Sell, 101, 1_000))];
        kinds.extend((1..=100).map(|i| (i * 10, new(BOB, &format!("b{i}"), Side::Buy, 90, 1))));
        let mut twap =
            Twap::new(TwapConfig { side: Side::Buy, target_lots: 40, slices: 4, slippage_ticks: 2 });
        let out = run(config(5), &kinds, &mut twap);
        let r = &out.report;
        assert_eq!(r.inventory, 40);
        assert_eq!(r.fills.count, 4);
        assert!(r.fills.listed.iter().all(|f| f.qty == 10 && f.price == "1.01" && f.liquidity == "taker"));
        let ts: Vec<u64> = r.fills.listed.iter().map(|f| f.ts).collect();
        assert_eq!(ts, vec![5, 255, 505, 755], "slices due at 0, 250, 500, 750, plus 5 ns latency");
        assert_eq!(r.strategy_stats.get("filled_qty"), Some(&40));
    }

    #[test]
    fn same_seed_same_bytes_and_jitter_moves_arrivals() {
        let mut kinds =
            vec![(0, new(ALICE, "a1", Side::Buy, 98, 500)), (0, new(ALICE, "a2", Side::Sell, 102, 500))];
        for i in 1..=200u64 {
            let side = if i % 3 == 0 { Side::Buy } else { Side::Sell };
            kinds.push((i * 1_000, market(BOB, &format!("b{i}"), side, 1 + i % 4)));
        }
        let run_seed = |seed| {
            let mut mm = MarketMaker::new(MarketMakerConfig::default());
            let out = run(BacktestConfig { jitter_ns: 5_000, seed, ..config(500) }, &kinds, &mut mm);
            (out.report_json(), out.equity_svg())
        };
        let a = run_seed(1);
        assert_eq!(a, run_seed(1));
        assert!(a.0.contains("\"seed\": 1"));
        assert!(a.1.starts_with("<svg") && a.1.ends_with("</svg>\n"));
        let json: serde_json::Value = serde_json::from_str(&a.0).unwrap();
        assert!(json["fills"]["count"].as_u64().unwrap() > 0);
    }

    #[test]
    fn the_strategy_account_never_collides() {
        let info = FlowInfo { account_id_max: Some(AccountId(9)), ..FlowInfo::default() };
        let names = vec!["alice".to_string(), "backtest".to_string(), "backtest-2".to_string()];
        assert_eq!(pick_account(&names, None, &info).unwrap(), (AccountId(10), "backtest-3".to_string()));
        assert!(matches!(pick_account(&names, Some("alice"), &info), Err(BacktestError::AccountTaken(_))));
        let info = FlowInfo::default();
        assert_eq!(pick_account(&names, Some("zed"), &info).unwrap(), (AccountId(3), "zed".to_string()));
        let info = FlowInfo { account_id_max: Some(AccountId::MAX), ..FlowInfo::default() };
        assert!(matches!(pick_account(&names, None, &info), Err(BacktestError::NoAccountId)));
    }

    #[test]
    fn gtd_is_refused_locally() {
        struct Gtd(Option<SendError>);
        impl Strategy for Gtd {
            fn name(&self) -> &str {
                "gtd"
            }
            fn on_start(&mut self, ctx: &mut Ctx<'_>) {
                let spec = OrderSpec { tif: Tif::Gtd, ..OrderSpec::limit(Side::Buy, Price(1), 1) };
                self.0 = ctx.send(spec).err();
            }
        }
        let mut s = Gtd(None);
        let out = run(config(0), &race(), &mut s);
        assert_eq!(s.0, Some(SendError::Unsupported));
        assert_eq!(out.report.orders.refused, 1);
    }
}
