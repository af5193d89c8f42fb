//! Adapters that run a generated workload through peer order-book crates, each on its fastest
//! single-threaded path, so the harness can print side-by-side ratios.
//!
//! Both adapters translate the whole workload into the peer's own command values up front
//! (untimed), exactly as [`harness::EngineVenue`] receives pre-built [`engine::Command`]s.
//!
//! # matchcore 0.4
//! A single-threaded, deterministic `OrderBook` per instrument; `execute(&Command)` returns a
//! `CommandOutcome`.
//! - GTC / IOC limit → `Submit(NewOrder::Limit(..))` with `TimeInForce::Gtc` / `Ioc`.
//! - cancel → `Cancel { order_id, order_kind: Limit }`.
//! - move → `Amend` with a price-only `LimitOrderPatch`: the remaining quantity is kept, the
//!   order loses time priority (the same as our replace with unchanged total quantity).
//! - Cannot express: accounts, client order ids (a replace never renames the order), self-trade
//!   prevention, lots/ticks (prices are bare `u64` ticks). Order ids are the book's own command
//!   sequence numbers, and each book demands a gapless sequence from 0, so the adapter keeps one
//!   book and one sequence per symbol and dispatches by symbol index (our engine does the
//!   symbol lookup itself).
//! - Outcomes are owned values (`Vec`s of trades and triggered orders), allocated per command:
//!   that is the crate's API, not something the adapter adds.
//! - Semantics gap: 0.4.0 matches a crossing limit order with no limit (`submit_crossable_order`
//!   and the crossing branch of amend pass `None` as the limit price), so an order asking for
//!   more than the liquidity inside its limit trades through it (checked: a buy limit 101 for 15
//!   against 10 @ 101 and 10 @ 105 fills 5 @ 105). The generator's `takers_within_limit` keeps
//!   every aggressive order inside the liquidity at its limit, so all venues see one meaning;
//!   the cost is that IOC rests and GTC-rests-after-trading are not in the compared streams.
//!
//! # orderbook-rs 0.15
//! A concurrent book (`&self` methods over lock-free skip maps and `DashMap`s, with a submit
//! gate) per symbol. Default features only: no `journal`, `metrics`, `nats`, `bincode`; no trade
//! listener, order-state tracker, risk, fees or STP are installed.
//! - GTC / IOC limit → `add_limit_order_with_user(Id::Sequential(order), price, qty, side, tif,
//!   user, None)`; an IOC's unfilled rest is reported as `Err(InsufficientLiquidity)`, counted
//!   as an IOC rest. `user` is the order's account, as a venue would pass it: the book keeps a
//!   per-user order index, and lumping every order under the one "no user" id would make that
//!   index one long list (since 0.15.1 that costs little, in our profile ~5% either way).
//! - cancel → `cancel_order(id)`.
//! - move → `update_order(OrderUpdate::UpdatePrice { .. })`, a cancel plus re-add that keeps the
//!   remaining quantity and loses priority. It first finds the order by scanning its price
//!   level (`get_order`), so moves cost grows with orders per level; that is the crate's design.
//! - Cannot express: client order ids separate from order ids (a move keeps the id). STP exists
//!   but is left off: the generator never self-trades, so it would only add checks we skip too.
//! - Its clock is replaced by its own `StubClock` (a counter): our engine reads no clock (time
//!   is a command field), so making orderbook-rs read the wall clock per order would charge it
//!   for something we do not do.
//! - It still does per-trade work we cannot turn off: UUID trade ids, `tracing` call sites
//!   (no subscriber installed, so each is one relaxed load), `Arc`-wrapped order results.

use std::sync::Arc;

use engine::{Side, Tif};
use matchcore as mc;
use orderbook_rs as ob;

use harness::gen::{Op, Workload};
use harness::{CommandTimer, RunCounts, Venue};

/// matchcore: one `OrderBook` per symbol.
pub struct MatchcoreVenue {
    symbols: Vec<String>,
    setup: Vec<(u32, mc::Command)>,
    stream: Vec<(u32, mc::Command)>,
}

impl MatchcoreVenue {
    /// Translates `workload` into matchcore commands.
    pub fn new(workload: &Workload) -> Self {
        let mut seq = vec![0u64; workload.symbols.len()];
        let mut ids = vec![mc::OrderId(0); workload.order_refs];
        let mut translate = |cmds: &[engine::Command], ops: &[Op]| -> Vec<(u32, mc::Command)> {
            cmds.iter()
                .zip(ops)
                .map(|(cmd, op)| {
                    let symbol = op_symbol(op);
                    let s = &mut seq[symbol as usize];
                    let meta = mc::CommandMeta {
                        sequence_number: mc::SequenceNumber(*s),
                        timestamp: mc::Timestamp(cmd.header.ts),
                    };
                    let kind = match *op {
                        Op::Limit { order, side, price_ticks, qty, tif, .. } => {
                            // matchcore names an order by the sequence number that submitted it.
                            ids[order as usize] = mc::OrderId(*s);
                            mc::CommandKind::Submit(mc::SubmitCmd {
                                order: mc::NewOrder::Limit(mc::LimitOrder::new(
                                    mc::Price(price_ticks as u64),
                                    mc::QuantityPolicy::Standard { quantity: mc::Quantity(qty) },
                                    mc::OrderFlags::new(mc_side(side), false, mc_tif(tif)),
                                )),
                            })
                        }
                        Op::Cancel { order, .. } => mc::CommandKind::Cancel(mc::CancelCmd {
                            order_id: ids[order as usize],
                            order_kind: mc::OrderKind::Limit,
                        }),
                        Op::Move { order, price_ticks, .. } => mc::CommandKind::Amend(mc::AmendCmd {
                            order_id: ids[order as usize],
                            patch: mc::AmendPatch::Limit(
                                mc::LimitOrderPatch::new().with_price(mc::Price(price_ticks as u64)),
                            ),
                        }),
                    };
                    *s += 1;
                    (symbol, mc::Command { meta, kind })
                })
                .collect()
        };
        let setup = translate(&workload.setup, &workload.setup_ops);
        let stream = translate(&workload.stream, &workload.stream_ops);
        MatchcoreVenue { symbols: workload.symbols.iter().map(|s| s.name.clone()).collect(), setup, stream }
    }

    fn execute(books: &mut [mc::OrderBook], cmds: &[(u32, mc::Command)]) -> RunCounts {
        let mut tally = McTally::default();
        for (symbol, cmd) in cmds {
            tally.apply(books[*symbol as usize].execute(cmd));
        }
        tally.finish()
    }
}

/// What matchcore's outcomes added up to so far.
#[derive(Default)]
struct McTally {
    trades: u64,
    traded_qty: u64,
    ioc_rests: u64,
    counts: RunCounts,
}

impl McTally {
    /// Counts one command's outcome (and drops it: freeing its `Vec`s is part of the API's cost).
    #[inline(always)]
    fn apply(&mut self, outcome: mc::CommandOutcome) {
        match outcome {
            mc::CommandOutcome::Applied(
                mc::CommandReport::Submit(effects) | mc::CommandReport::Amend(effects),
            ) => {
                let target = effects.target_order();
                if let Some(m) = target.match_result() {
                    self.trades += m.trades().len() as u64;
                    self.traded_qty += m.executed_quantity().0;
                }
                if let Some(mc::CancelReason::InsufficientLiquidity { .. }) = target.cancel_reason() {
                    self.ioc_rests += 1;
                }
            }
            mc::CommandOutcome::Applied(mc::CommandReport::Cancel) => {}
            mc::CommandOutcome::Rejected(failure) => {
                self.counts.rejects += 1;
                if failure == mc::CommandFailure::OrderNotFound {
                    self.counts.unknown_order += 1;
                }
            }
        }
    }

    fn finish(self) -> RunCounts {
        RunCounts {
            trades: Some(self.trades),
            traded_qty: Some(self.traded_qty),
            ioc_rests: Some(self.ioc_rests),
            ..self.counts
        }
    }
}

impl Venue for MatchcoreVenue {
    type Book = Vec<mc::OrderBook>;

    fn name(&self) -> &'static str {
        "matchcore"
    }

    fn build(&self) -> (Self::Book, RunCounts) {
        let mut books: Vec<mc::OrderBook> = self.symbols.iter().map(|s| mc::OrderBook::new(s)).collect();
        let counts = Self::execute(&mut books, &self.setup);
        (books, counts)
    }

    fn run(&self, books: &mut Self::Book) -> RunCounts {
        Self::execute(books, &self.stream)
    }

    fn run_each<T: CommandTimer>(&self, books: &mut Self::Book, timer: &mut T) -> RunCounts {
        let mut tally = McTally::default();
        for (symbol, cmd) in &self.stream {
            timer.time(|| tally.apply(books[*symbol as usize].execute(cmd)));
        }
        tally.finish()
    }

    fn resting(&self, books: &Self::Book) -> Option<usize> {
        Some(books.iter().map(|b| b.limit().orders().len()).sum())
    }
}

fn mc_side(side: Side) -> mc::Side {
    match side {
        Side::Buy => mc::Side::Buy,
        Side::Sell => mc::Side::Sell,
    }
}

fn mc_tif(tif: Tif) -> mc::TimeInForce {
    match tif {
        Tif::Ioc => mc::TimeInForce::Ioc,
        Tif::Fok => mc::TimeInForce::Fok,
        // The generator sends only GTC and IOC; GTD would need an expiry, never generated.
        Tif::Gtc | Tif::Gtd => mc::TimeInForce::Gtc,
    }
}

/// One orderbook-rs call, with every argument prepared.
#[derive(Clone, Copy, Debug)]
enum ObOp {
    Add {
        symbol: u32,
        id: ob::Id,
        price: u128,
        qty: u64,
        side: ob::Side,
        tif: ob::TimeInForce,
        user: pricelevel::Hash32,
    },
    Cancel {
        symbol: u32,
        id: ob::Id,
    },
    Move {
        symbol: u32,
        id: ob::Id,
        price: pricelevel::Price,
    },
}

/// orderbook-rs: one `OrderBook<()>` per symbol.
pub struct OrderbookRsVenue {
    symbols: Vec<String>,
    setup: Vec<ObOp>,
    stream: Vec<ObOp>,
}

impl OrderbookRsVenue {
    /// Translates `workload` into orderbook-rs calls.
    pub fn new(workload: &Workload) -> Self {
        let translate = |ops: &[Op]| -> Vec<ObOp> {
            ops.iter()
                .map(|op| match *op {
                    Op::Limit { symbol, order, account, side, price_ticks, qty, tif } => ObOp::Add {
                        symbol: symbol.0,
                        id: ob_id(order),
                        price: price_ticks as u128,
                        qty,
                        side: match side {
                            Side::Buy => ob::Side::Buy,
                            Side::Sell => ob::Side::Sell,
                        },
                        tif: match tif {
                            Tif::Ioc => ob::TimeInForce::Ioc,
                            Tif::Fok => ob::TimeInForce::Fok,
                            Tif::Gtc | Tif::Gtd => ob::TimeInForce::Gtc,
                        },
                        user: ob_user(account),
                    },
                    Op::Cancel { symbol, order } => ObOp::Cancel { symbol: symbol.0, id: ob_id(order) },
                    Op::Move { symbol, order, price_ticks, .. } => ObOp::Move {
                        symbol: symbol.0,
                        id: ob_id(order),
                        price: pricelevel::Price::new(price_ticks as u128),
                    },
                })
                .collect()
        };
        OrderbookRsVenue {
            symbols: workload.symbols.iter().map(|s| s.name.clone()).collect(),
            setup: translate(&workload.setup_ops),
            stream: translate(&workload.stream_ops),
        }
    }

    fn execute(books: &[ob::OrderBook<()>], ops: &[ObOp]) -> RunCounts {
        let mut tally = ObTally::default();
        for op in ops {
            tally.execute(books, op);
        }
        tally.finish()
    }
}

/// What orderbook-rs's results added up to so far.
#[derive(Default)]
struct ObTally {
    ioc_rests: u64,
    counts: RunCounts,
}

impl ObTally {
    /// Runs one call and counts its result.
    #[inline(always)]
    fn execute(&mut self, books: &[ob::OrderBook<()>], op: &ObOp) {
        let counts = &mut self.counts;
        match *op {
            ObOp::Add { symbol, id, price, qty, side, tif, user } => {
                let book = &books[symbol as usize];
                match book.add_limit_order_with_user(id, price, qty, side, tif, user, None) {
                    Ok(_) => {}
                    Err(ob::OrderBookError::InsufficientLiquidity { .. }) if tif == ob::TimeInForce::Ioc => {
                        self.ioc_rests += 1
                    }
                    Err(_) => counts.rejects += 1,
                }
            }
            ObOp::Cancel { symbol, id } => match books[symbol as usize].cancel_order(id) {
                Ok(Some(_)) => {}
                Ok(None) => {
                    counts.rejects += 1;
                    counts.unknown_order += 1;
                }
                Err(_) => counts.rejects += 1,
            },
            ObOp::Move { symbol, id, price } => {
                let update = pricelevel::OrderUpdate::UpdatePrice { order_id: id, new_price: price };
                match books[symbol as usize].update_order(update) {
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        counts.rejects += 1;
                        counts.unknown_order += 1;
                    }
                    Err(_) => counts.rejects += 1,
                }
            }
        }
    }

    fn finish(self) -> RunCounts {
        RunCounts { ioc_rests: Some(self.ioc_rests), ..self.counts }
    }
}

impl Venue for OrderbookRsVenue {
    type Book = Vec<ob::OrderBook<()>>;

    fn name(&self) -> &'static str {
        "orderbook-rs"
    }

    fn build(&self) -> (Self::Book, RunCounts) {
        let books: Vec<ob::OrderBook<()>> = self
            .symbols
            .iter()
            .map(|s| ob::OrderBook::with_clock(s, Arc::new(ob::StubClock::new())))
            .collect();
        let counts = Self::execute(&books, &self.setup);
        (books, counts)
    }

    fn run(&self, books: &mut Self::Book) -> RunCounts {
        Self::execute(books, &self.stream)
    }

    fn run_each<T: CommandTimer>(&self, books: &mut Self::Book, timer: &mut T) -> RunCounts {
        let mut tally = ObTally::default();
        for op in &self.stream {
            timer.time(|| tally.execute(books, op));
        }
        tally.finish()
    }

    fn resting(&self, books: &Self::Book) -> Option<usize> {
        Some(books.iter().map(|b| b.get_all_orders().len()).sum())
    }
}

/// The orderbook-rs owner of `account`'s orders; never the zero hash, which means "no user".
fn ob_user(account: engine::AccountId) -> pricelevel::Hash32 {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&(u64::from(account.0) + 1).to_le_bytes());
    pricelevel::Hash32::new(bytes)
}

fn ob_id(order: harness::gen::OrderRef) -> ob::Id {
    ob::Id::Sequential(u64::from(order))
}

fn op_symbol(op: &Op) -> u32 {
    match *op {
        Op::Limit { symbol, .. } | Op::Cancel { symbol, .. } | Op::Move { symbol, .. } => symbol.0,
    }
}
