//! The engine against an independent reference model of `engine/SEMANTICS.md` (`tests/model/`).
//!
//! Two parts:
//! - `model_vs_engine*`: seeded property tests. Random command streams (every order type, TIF,
//!   stops, icebergs, STP modes, cancels and replaces aimed mostly at live orders, duplicate and
//!   unknown ids, bad quantities and prices, halts, mass cancels, GTD expiry) go through both;
//!   every event (every field, in order) and the final book of every symbol must be equal. A
//!   failure prints the shrunk command stream as Rust lines that paste into a scenario below.
//!   `PROPTEST_CASES=n` changes the case count, `MODEL_SEED=n` the seed.
//! - Scenarios: one hand-written test per rule of SEMANTICS.md, asserting the exact events of
//!   both the engine and the model. They are the rules' executable documentation.

mod model;

use engine::{
    AccountId, BookSnapshot, CancelOrder, CancelReason, ClOrdId, Command, CommandHeader, CommandKind, Engine,
    EngineConfig, Event, EventKind, NewOrder, OrdType, OrderId, Price, Qty, RejectReason, ReplaceOrder, Side,
    StpMode, SymbolId, SymbolSpec, Tif, PRICE_UNITS_PER_ONE, SYMBOL_UNKNOWN,
};
use model::Model;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use CommandKind::{CancelAll, Halt, New, Resume};
use Side::{Buy, Sell};

// ---- the test venue -----------------------------------------------------------------------

/// Tick 0.01, lot 1.
const S0: SymbolId = SymbolId(0);
/// Tick 0.01, lot 10.
const S1: SymbolId = SymbolId(1);
const A: AccountId = AccountId(1);
const B: AccountId = AccountId(2);
const C: AccountId = AccountId(3);
const TICK_UNITS: i64 = PRICE_UNITS_PER_ONE / 100;

fn symbols() -> Vec<SymbolSpec> {
    vec![SymbolSpec::new("LOT1", TICK_UNITS, 1), SymbolSpec::new("LOT10", TICK_UNITS, 10)]
}

fn lot(symbol: SymbolId) -> Qty {
    if symbol == S1 {
        10
    } else {
        1
    }
}

/// Pool sizes of a run. `ROOMY` never fills; `TIGHT` makes `book_full` happen.
#[derive(Clone, Copy, Debug)]
struct Pools {
    orders_max: usize,
    levels_per_side_max: usize,
}

const ROOMY: Pools = Pools { orders_max: 10_000, levels_per_side_max: 1_000 };
const TIGHT: Pools = Pools { orders_max: 12, levels_per_side_max: 3 };

fn engine_and_model(pools: Pools) -> (Engine, Model) {
    let engine = Engine::new(EngineConfig {
        symbols: symbols(),
        orders_max: pools.orders_max,
        levels_per_side_max: pools.levels_per_side_max,
    });
    let model = Model::new(symbols(), pools.orders_max, pools.levels_per_side_max);
    (engine, model)
}

// ---- a small command language (also what a failing case prints) ---------------------------

fn id(s: &str) -> ClOrdId {
    ClOrdId::from_str(s).expect("test ids are short")
}

/// "100.05" -> price units. Accepts any decimal (off-tick, zero, negative) on purpose.
fn px(s: &str) -> i64 {
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    assert!(frac.len() <= 8, "at most 8 decimals: {s}");
    let frac_units: i64 = format!("{frac:0<8}").parse().expect("digits");
    let units = int.parse::<i64>().expect("digits") * PRICE_UNITS_PER_ONE + frac_units;
    if neg {
        -units
    } else {
        units
    }
}

/// Price units -> "100.05" (the inverse of `px`).
fn fmt_units(units: i64) -> String {
    let sign = if units < 0 { "-" } else { "" };
    let abs = units.unsigned_abs();
    let one = PRICE_UNITS_PER_ONE as u64;
    let mut frac = format!("{:08}", abs % one);
    while frac.len() > 2 && frac.ends_with('0') {
        frac.pop();
    }
    format!("{sign}{}.{frac}", abs / one)
}

/// A GTC limit order; chain the `OrderExt` methods for the rest.
fn order(account: AccountId, symbol: SymbolId, cl_id: &str, side: Side, price: &str, qty: Qty) -> NewOrder {
    NewOrder::limit(account, symbol, id(cl_id), side, px(price), qty)
}

trait OrderExt {
    fn market(self) -> Self;
    fn tif(self, tif: Tif) -> Self;
    fn stop(self, price: &str) -> Self;
    fn display(self, qty: Qty) -> Self;
    fn expire(self, ts: u64) -> Self;
    fn post_only(self) -> Self;
    fn stp(self, stp: StpMode) -> Self;
}

impl OrderExt for NewOrder {
    fn market(self) -> Self {
        NewOrder { ord_type: OrdType::Market, ..self }
    }
    fn tif(self, tif: Tif) -> Self {
        NewOrder { tif, ..self }
    }
    fn stop(self, price: &str) -> Self {
        NewOrder { stop_price: Some(engine::PriceUnits(px(price))), ..self }
    }
    fn display(self, qty: Qty) -> Self {
        NewOrder { display_qty: Some(qty), ..self }
    }
    fn expire(self, ts: u64) -> Self {
        NewOrder { expire_ts: Some(ts), ..self }
    }
    fn post_only(self) -> Self {
        NewOrder { post_only: true, ..self }
    }
    fn stp(self, stp: StpMode) -> Self {
        NewOrder { stp, ..self }
    }
}

fn cancel(account: AccountId, symbol: SymbolId, cl_id: &str) -> CommandKind {
    CommandKind::Cancel(CancelOrder { account, symbol, id: id(cl_id), request_id: None })
}

fn replace(
    account: AccountId,
    symbol: SymbolId,
    orig: &str,
    new: &str,
    price: Option<&str>,
    qty: Qty,
) -> CommandKind {
    CommandKind::Replace(ReplaceOrder {
        account,
        symbol,
        orig_id: id(orig),
        id: id(new),
        price: price.map(|p| px(p).into()),
        qty,
    })
}

fn sym_name(symbol: SymbolId) -> String {
    match symbol {
        S0 => "S0".into(),
        S1 => "S1".into(),
        SYMBOL_UNKNOWN => "SYMBOL_UNKNOWN".into(),
        other => other.to_string(),
    }
}

/// One command as a line of the language above.
fn fmt_kind(kind: &CommandKind) -> String {
    match kind {
        New(o) => {
            let mut s = format!(
                "New(order({}, {}, {:?}, {:?}, {:?}, {})",
                o.account,
                sym_name(o.symbol),
                o.id.as_str(),
                o.side,
                fmt_units(o.price.get()),
                o.qty
            );
            if o.ord_type == OrdType::Market {
                s += ".market()";
            }
            if o.tif != Tif::Gtc {
                s += &format!(".tif(Tif::{:?})", o.tif);
            }
            if let Some(p) = o.stop_price {
                s += &format!(".stop({:?})", fmt_units(p.get()));
            }
            if let Some(d) = o.display_qty {
                s += &format!(".display({d})");
            }
            if let Some(e) = o.expire_ts {
                s += &format!(".expire({e})");
            }
            if o.post_only {
                s += ".post_only()";
            }
            if o.stp != StpMode::CancelNewest {
                s += &format!(".stp(StpMode::{:?})", o.stp);
            }
            s + ")"
        }
        CommandKind::Cancel(c) => {
            format!("cancel({}, {}, {:?})", c.account, sym_name(c.symbol), c.id.as_str())
        }
        CommandKind::Replace(r) => format!(
            "replace({}, {}, {:?}, {:?}, {:?}, {})",
            r.account,
            sym_name(r.symbol),
            r.orig_id.as_str(),
            r.id.as_str(),
            r.price.map(|p| fmt_units(p.get())),
            r.qty
        ),
        CancelAll { account, symbol } => {
            format!("CancelAll {{ account: {account}, symbol: {} }}", symbol.map_or("all".into(), sym_name))
        }
        Halt { symbol } => format!("Halt {{ symbol: {} }}", sym_name(*symbol)),
        Resume { symbol } => format!("Resume {{ symbol: {} }}", sym_name(*symbol)),
    }
}

fn fmt_stream(cmds: &[Command]) -> String {
    cmds.iter()
        .map(|c| format!("    /* #{} */ ({}, {}),\n", c.header.seq, c.header.ts, fmt_kind(&c.kind)))
        .collect()
}

/// A book as text, one order per `[...]`: `account id #order_id qty/visible`.
fn book_text(snapshot: &BookSnapshot) -> String {
    let side = |levels: &[engine::LevelSnapshot]| -> String {
        levels
            .iter()
            .map(|l| {
                let orders: Vec<String> = l
                    .orders
                    .iter()
                    .map(|o| format!("[{} {} #{} {}/{}]", o.account, o.id, o.order_id, o.qty, o.visible_qty))
                    .collect();
                format!("{}.{:02} {}", l.price.0 / 100, l.price.0 % 100, orders.join(" "))
            })
            .collect::<Vec<_>>()
            .join(" | ")
    };
    format!("bids: {}\nasks: {}", side(&snapshot.bids), side(&snapshot.asks))
}

// ---- comparing the engine with the model --------------------------------------------------

/// Runs `cmds` through a fresh engine and compares with the model's events (per command) and
/// the model's final books.
fn compare(pools: Pools, cmds: &[Command], model_events: &[Vec<Event>], model: &Model) -> Result<(), String> {
    let (mut engine, _) = engine_and_model(pools);
    for (k, cmd) in cmds.iter().enumerate() {
        let mut got = Vec::new();
        engine.process(cmd, &mut got);
        if got != model_events[k] {
            let show =
                |events: &[Event]| -> String { events.iter().map(|e| format!("      {e:?}\n")).collect() };
            let first = got
                .iter()
                .zip(&model_events[k])
                .position(|(g, w)| g != w)
                .unwrap_or(got.len().min(model_events[k].len()));
            return Err(format!(
                "engine and model disagree at command #{} (event {} of it)\ncommands ({pools:?}):\n{}\n  command #{}: {}\n    model:\n{}    engine:\n{}",
                cmd.header.seq,
                first,
                fmt_stream(&cmds[..=k]),
                cmd.header.seq,
                fmt_kind(&cmd.kind),
                show(&model_events[k]),
                show(&got),
            ));
        }
    }
    for symbol in [S0, S1] {
        let want = book_text(&model.book_snapshot(symbol));
        let got = book_text(&engine.book_snapshot(symbol));
        if want != got {
            return Err(format!(
                "final book of {} differs\ncommands ({pools:?}):\n{}\n  model:\n{want}\n  engine:\n{got}",
                sym_name(symbol),
                fmt_stream(cmds)
            ));
        }
    }
    compare_batch(pools, cmds, model_events, &engine)
}

/// `Engine::process_batch` over the whole stream must give the events of `process` one command
/// at a time (the model's) and the same final books and stops as `engine`, which ran that way.
fn compare_batch(
    pools: Pools,
    cmds: &[Command],
    model_events: &[Vec<Event>],
    engine: &Engine,
) -> Result<(), String> {
    let (mut batched, _) = engine_and_model(pools);
    let mut got = Vec::new();
    batched.process_batch(cmds, &mut got);
    let want: Vec<Event> = model_events.iter().flatten().copied().collect();
    if got != want {
        let first = got.iter().zip(&want).position(|(g, w)| g != w).unwrap_or(got.len().min(want.len()));
        return Err(format!(
            "process_batch disagrees with the model at event {first}: {:?} vs {:?}\ncommands ({pools:?}):\n{}",
            got.get(first),
            want.get(first),
            fmt_stream(cmds)
        ));
    }
    for symbol in [S0, S1] {
        let same_book = book_text(&batched.book_snapshot(symbol)) == book_text(&engine.book_snapshot(symbol));
        if !same_book || batched.stops_snapshot(symbol) != engine.stops_snapshot(symbol) {
            return Err(format!("process_batch: final book of {} differs", sym_name(symbol)));
        }
    }
    Ok(())
}

// ---- generators ---------------------------------------------------------------------------
//
// A case is a list of abstract `Op`s; `Resolver` turns each into a concrete `Command` while
// running the model, so that a cancel or replace can aim at an order that is live at that point
// (the model knows which are). Shrinking works on the ops; the resolution is deterministic.

/// A limit or stop price.
#[derive(Clone, Copy, Debug)]
enum Px {
    /// 100.00 + k * 0.05: few prices, so levels collect several orders.
    Grid(i8),
    /// Any tick in 95.00..=105.00.
    Wide(u16),
    /// Half a tick off the grid.
    OffTick(i8),
    /// Zero or negative.
    NonPositive(bool),
}

impl Px {
    fn units(self) -> i64 {
        let center = 100 * PRICE_UNITS_PER_ONE;
        match self {
            Px::Grid(k) => center + i64::from(k) * 5 * TICK_UNITS,
            Px::Wide(n) => 95 * PRICE_UNITS_PER_ONE + i64::from(n) * TICK_UNITS,
            Px::OffTick(k) => center + i64::from(k) * 5 * TICK_UNITS + TICK_UNITS / 2,
            Px::NonPositive(zero) => {
                if zero {
                    0
                } else {
                    -center
                }
            }
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum QtyPick {
    Lots(u8),
    Zero,
    /// Not a multiple of the lot (zero on a lot-1 symbol, which has no such quantity).
    OffLot(u8),
}

impl QtyPick {
    fn qty(self, lot: Qty) -> Qty {
        match self {
            QtyPick::Lots(n) => Qty::from(n) * lot,
            QtyPick::Zero => 0,
            QtyPick::OffLot(n) => Qty::from(n) * lot + lot / 2,
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum DisplayPick {
    Qty(QtyPick),
    /// More than the order's qty.
    Over,
}

/// Which client id a new order (or the new id of a replace) uses.
#[derive(Clone, Copy, Debug)]
enum IdPick {
    Fresh,
    /// An id this account used before (live or not).
    Used(u16),
    /// An id live for this account now (a duplicate).
    Live(u16),
    /// The replace's `orig_id` (replace only).
    Same,
}

/// What a cancel or replace refers to.
#[derive(Clone, Copy, Debug)]
struct Target {
    how: u8,
    pick: u16,
}

#[derive(Clone, Debug)]
struct NewSpec {
    account: AccountId,
    symbol: SymbolId,
    id: IdPick,
    side: Side,
    market: bool,
    tif: Tif,
    price: Px,
    qty: QtyPick,
    stop: Option<Px>,
    display: Option<DisplayPick>,
    /// expire_ts relative to the command's ts (GTD orders, and stray ones with `expire_any`).
    expire: Option<i64>,
    /// Sends `expire` on a non-GTD order too (it is ignored).
    expire_any: bool,
    post_only: bool,
    stp: StpMode,
}

#[derive(Clone, Debug)]
enum Op {
    New(NewSpec),
    Cancel(Target),
    Replace {
        target: Target,
        id: IdPick,
        price: Option<Px>,
        qty: QtyPick,
    },
    CancelAll {
        account: AccountId,
        symbol: Option<SymbolId>,
    },
    /// Halt a symbol, and resume it `len` ops later.
    Halt {
        symbol: SymbolId,
        len: u8,
    },
}

/// Time between two commands; the long gaps make GTD orders expire.
fn dt_strategy() -> impl Strategy<Value = u64> {
    prop_oneof![6 => 1u64..=5, 3 => 10u64..=200, 1 => 1_000u64..=4_000]
}

fn px_strategy() -> impl Strategy<Value = Px> {
    prop_oneof![
        85 => (-8i8..=8).prop_map(Px::Grid),
        8 => (0u16..=1000).prop_map(Px::Wide),
        4 => (-8i8..=8).prop_map(Px::OffTick),
        3 => any::<bool>().prop_map(Px::NonPositive),
    ]
}

fn qty_strategy() -> impl Strategy<Value = QtyPick> {
    prop_oneof![93 => (1u8..=12).prop_map(QtyPick::Lots), 3 => Just(QtyPick::Zero), 4 => (0u8..=5).prop_map(QtyPick::OffLot)]
}

fn display_strategy() -> impl Strategy<Value = DisplayPick> {
    prop_oneof![
        85 => (1u8..=4).prop_map(|n| DisplayPick::Qty(QtyPick::Lots(n))),
        5 => Just(DisplayPick::Qty(QtyPick::Zero)),
        5 => (0u8..=3).prop_map(|n| DisplayPick::Qty(QtyPick::OffLot(n))),
        5 => Just(DisplayPick::Over),
    ]
}

fn account_strategy() -> impl Strategy<Value = AccountId> {
    (1u32..=3).prop_map(AccountId)
}

fn symbol_strategy() -> impl Strategy<Value = SymbolId> {
    prop_oneof![48 => Just(S0), 48 => Just(S1), 4 => Just(SYMBOL_UNKNOWN)]
}

fn side_strategy() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Buy), Just(Sell)]
}

fn tif_strategy() -> impl Strategy<Value = Tif> {
    prop_oneof![45 => Just(Tif::Gtc), 15 => Just(Tif::Ioc), 15 => Just(Tif::Fok), 25 => Just(Tif::Gtd)]
}

fn stp_strategy() -> impl Strategy<Value = StpMode> {
    prop_oneof![4 => Just(StpMode::CancelNewest), 3 => Just(StpMode::CancelOldest), 3 => Just(StpMode::CancelBoth)]
}

fn expire_strategy() -> impl Strategy<Value = Option<i64>> {
    prop_oneof![1 => Just(None), 2 => (-3i64..=0).prop_map(Some), 9 => (1i64..=300).prop_map(Some), 8 => (300i64..=3_000).prop_map(Some)]
}

fn new_id_strategy() -> impl Strategy<Value = IdPick> {
    prop_oneof![85 => Just(IdPick::Fresh), 8 => any::<u16>().prop_map(IdPick::Used), 7 => any::<u16>().prop_map(IdPick::Live)]
}

fn replace_id_strategy() -> impl Strategy<Value = IdPick> {
    prop_oneof![
        30 => Just(IdPick::Same),
        55 => Just(IdPick::Fresh),
        7 => any::<u16>().prop_map(IdPick::Used),
        8 => any::<u16>().prop_map(IdPick::Live),
    ]
}

fn target_strategy() -> impl Strategy<Value = Target> {
    (0u8..100, any::<u16>()).prop_map(|(how, pick)| Target { how, pick })
}

fn new_strategy() -> impl Strategy<Value = NewSpec> {
    (
        (
            account_strategy(),
            symbol_strategy(),
            new_id_strategy(),
            side_strategy(),
            prop::bool::weighted(0.15),
        ),
        (tif_strategy(), px_strategy(), qty_strategy(), prop::option::weighted(0.15, px_strategy())),
        (
            prop::option::weighted(0.2, display_strategy()),
            (expire_strategy(), prop::bool::weighted(0.05)),
            prop::bool::weighted(0.1),
            stp_strategy(),
        ),
    )
        .prop_map(
            |(
                (account, symbol, id, side, market),
                (tif, price, qty, stop),
                (display, (expire, expire_any), post_only, stp),
            )| {
                NewSpec {
                    account,
                    symbol,
                    id,
                    side,
                    market,
                    tif,
                    price,
                    qty,
                    stop,
                    display,
                    expire,
                    expire_any,
                    post_only,
                    stp,
                }
            },
        )
}

fn op_strategy() -> impl Strategy<Value = (u64, Op)> {
    let op = prop_oneof![
        65 => new_strategy().prop_map(Op::New),
        12 => target_strategy().prop_map(Op::Cancel),
        16 => (target_strategy(), replace_id_strategy(), prop::option::weighted(0.6, px_strategy()), qty_strategy())
            .prop_map(|(target, id, price, qty)| Op::Replace { target, id, price, qty }),
        2 => (account_strategy(), prop_oneof![Just(Some(S0)), Just(Some(S1)), Just(None)])
            .prop_map(|(account, symbol)| Op::CancelAll { account, symbol }),
        2 => (prop_oneof![9 => Just(S0), 9 => Just(S1), 1 => Just(SYMBOL_UNKNOWN)], 1u8..=12)
            .prop_map(|(symbol, len)| Op::Halt { symbol, len }),
    ];
    (dt_strategy(), op)
}

fn stream_strategy() -> impl Strategy<Value = Vec<(u64, Op)>> {
    prop::collection::vec(op_strategy(), 1..300)
}

/// Turns ops into commands, running the model as it goes.
struct Resolver {
    model: Model,
    cmds: Vec<Command>,
    events: Vec<Vec<Event>>,
    ts: u64,
    /// Every (account, symbol, id) a new order or replace has named.
    used: Vec<(AccountId, SymbolId, ClOrdId)>,
    fresh: u32,
    /// (op index at which to resume, symbol)
    resumes: Vec<(usize, SymbolId)>,
}

impl Resolver {
    fn new(pools: Pools) -> Resolver {
        Resolver {
            model: Model::new(symbols(), pools.orders_max, pools.levels_per_side_max),
            cmds: Vec::new(),
            events: Vec::new(),
            ts: 1_000_000,
            used: Vec::new(),
            fresh: 0,
            resumes: Vec::new(),
        }
    }

    fn push(&mut self, dt: u64, kind: CommandKind) {
        self.ts += dt;
        let cmd = Command { header: CommandHeader { seq: self.cmds.len() as u64 + 1, ts: self.ts }, kind };
        self.events.push(self.model.process(&cmd));
        self.cmds.push(cmd);
    }

    fn fresh_id(&mut self, account: AccountId) -> ClOrdId {
        self.fresh += 1;
        let letter = ["x", "a", "b", "c"][account.index() % 4];
        id(&format!("{letter}{}", self.fresh))
    }

    fn pick_id(&mut self, account: AccountId, pick: IdPick, orig: Option<ClOrdId>) -> ClOrdId {
        let used: Vec<ClOrdId> = self.used.iter().filter(|u| u.0 == account).map(|u| u.2).collect();
        let live: Vec<ClOrdId> =
            self.model.live_orders().into_iter().filter(|l| l.0 == account).map(|l| l.2).collect();
        match pick {
            IdPick::Same if orig.is_some() => orig.expect("checked"),
            IdPick::Used(k) if !used.is_empty() => used[k as usize % used.len()],
            IdPick::Live(k) if !live.is_empty() => live[k as usize % live.len()],
            _ => self.fresh_id(account),
        }
    }

    /// (account, symbol, id) of a cancel or replace.
    fn target(&self, t: Target) -> (AccountId, SymbolId, ClOrdId) {
        let live = self.model.live_orders();
        let k = t.pick as usize;
        let other_account = |a: AccountId| AccountId(a.0 % 3 + 1);
        match t.how {
            // A live order, by its owner.
            0..70 if !live.is_empty() => live[k % live.len()],
            // A live order of another account: invisible, so unknown_order.
            70..78 if !live.is_empty() => {
                let (a, s, i) = live[k % live.len()];
                (other_account(a), s, i)
            }
            // Any id named before, live or not.
            78..92 if !self.used.is_empty() => self.used[k % self.used.len()],
            // A live order on the wrong symbol.
            95.. if !live.is_empty() => {
                let (a, s, i) = live[k % live.len()];
                (a, if k % 2 == 1 { SymbolId(1 - s.0) } else { SYMBOL_UNKNOWN }, i)
            }
            // An id nobody used.
            _ => (AccountId(t.pick as u32 % 3 + 1), SymbolId(u32::from(t.pick % 2 == 1)), id("zz")),
        }
    }

    fn op(&mut self, index: usize, dt: u64, op: &Op) {
        let due: Vec<SymbolId> = self.resumes.iter().filter(|r| r.0 <= index).map(|r| r.1).collect();
        self.resumes.retain(|r| r.0 > index);
        for symbol in due {
            self.push(1, Resume { symbol });
        }
        match op {
            Op::New(n) => {
                let l = lot(n.symbol);
                let cl_id = self.pick_id(n.account, n.id, None);
                let qty = n.qty.qty(l);
                let order = NewOrder {
                    account: n.account,
                    symbol: n.symbol,
                    id: cl_id,
                    side: n.side,
                    ord_type: if n.market { OrdType::Market } else { OrdType::Limit },
                    tif: n.tif,
                    price: n.price.units().into(),
                    qty,
                    stop_price: n.stop.map(|p| engine::PriceUnits(p.units())),
                    display_qty: n.display.map(|d| match d {
                        DisplayPick::Qty(q) => q.qty(l),
                        DisplayPick::Over => qty + l,
                    }),
                    expire_ts: if n.tif == Tif::Gtd || n.expire_any {
                        n.expire.map(|e| self.ts.saturating_add_signed(e + dt as i64))
                    } else {
                        None
                    },
                    post_only: n.post_only,
                    stp: n.stp,
                };
                self.used.push((n.account, n.symbol, cl_id));
                self.push(dt, New(order));
            }
            Op::Cancel(t) => {
                let (account, symbol, cl_id) = self.target(*t);
                self.push(
                    dt,
                    CommandKind::Cancel(CancelOrder { account, symbol, id: cl_id, request_id: None }),
                );
            }
            Op::Replace { target, id: pick, price, qty } => {
                let (account, symbol, orig_id) = self.target(*target);
                let new_id = self.pick_id(account, *pick, Some(orig_id));
                self.used.push((account, symbol, new_id));
                let qty = qty.qty(lot(symbol));
                let price = price.map(|p| p.units().into());
                self.push(
                    dt,
                    CommandKind::Replace(ReplaceOrder { account, symbol, orig_id, id: new_id, price, qty }),
                );
            }
            Op::CancelAll { account, symbol } => {
                self.push(dt, CancelAll { account: *account, symbol: *symbol })
            }
            Op::Halt { symbol, len } => {
                self.resumes.push((index + *len as usize, *symbol));
                self.push(dt, Halt { symbol: *symbol });
            }
        }
    }
}

fn check_stream(pools: Pools, ops: &[(u64, Op)]) -> Result<(), TestCaseError> {
    let mut r = Resolver::new(pools);
    for (index, (dt, op)) in ops.iter().enumerate() {
        r.op(index, *dt, op);
    }
    compare(pools, &r.cmds, &r.events, &r.model).map_err(TestCaseError::fail)
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn run_property(pools: Pools, cases_default: u32, seed_salt: u64) {
    let cases = env_or("PROPTEST_CASES", cases_default);
    let seed = env_or("MODEL_SEED", 20_261_121_u64) ^ seed_salt;
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    // Shrinking a 300-command stream takes thousands of cheap steps; the default cap stops it
    // long before the stream is readable.
    let config = Config { cases, failure_persistence: None, max_shrink_iters: 50_000, ..Config::default() };
    let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes));
    match runner.run(&stream_strategy(), |ops| check_stream(pools, &ops)) {
        Ok(()) => {}
        // The reason holds the shrunk stream as commands; the ops behind it add nothing.
        Err(TestError::Fail(reason, _)) => panic!("seed {seed}, after shrinking: {reason}"),
        Err(e) => panic!("seed {seed}: {e}"),
    }
}

#[test]
fn model_vs_engine() {
    run_property(ROOMY, 384, 0);
}

/// Small pools so that `book_full` (pool and ladder) happens often.
#[test]
fn model_vs_engine_tight_pools() {
    run_property(TIGHT, 96, 0x7197);
}

// ---- scenarios: one per rule of SEMANTICS.md -----------------------------------------------
//
// Each step is (ts, command, the events it must produce). Prices in events are ticks
// (10_000 = 100.00). Helper events are on S0 unless wrapped in `on(S1, ...)`.

fn accepted(
    account: AccountId,
    cl_id: &str,
    order_id: OrderId,
    side: Side,
    price: i64,
    qty: Qty,
) -> EventKind {
    // The order's terms (tif, stop, display) are filled in from the step's command by
    // `with_terms`, so a scenario states them once, in the command.
    EventKind::Accepted {
        account,
        id: id(cl_id),
        symbol: S0,
        order_id,
        side,
        price: Price(price),
        qty,
        tif: Tif::Gtc,
        stop_price: None,
        display_qty: None,
    }
}

/// An expected `Accepted` carrying the terms of the new order that caused it: the tif the engine
/// works it under (SEMANTICS.md: a market order's is IOC unless FOK), its stop in ticks and its
/// display quantity.
fn with_terms(expected: EventKind, command: &CommandKind, engine: &Engine) -> EventKind {
    let (EventKind::Accepted { account, id, symbol, order_id, side, price, qty, .. }, CommandKind::New(n)) =
        (expected, command)
    else {
        return expected;
    };
    let tick = engine.symbol(n.symbol).map_or(1, |s| s.tick_units.get());
    let tif = if n.ord_type == OrdType::Market && n.tif != Tif::Fok { Tif::Ioc } else { n.tif };
    EventKind::Accepted {
        account,
        id,
        symbol,
        order_id,
        side,
        price,
        qty,
        tif,
        stop_price: n.stop_price.map(|units| Price(units.get() / tick)),
        display_qty: n.display_qty,
    }
}

/// One side of a trade: (account, id, order_id, leaves after the trade).
type Party<'a> = (AccountId, &'a str, OrderId, Qty);

fn trade(price: i64, qty: Qty, maker: Party, taker: Party, aggressor: Side) -> EventKind {
    EventKind::Trade {
        symbol: S0,
        price: Price(price),
        qty,
        maker_account: maker.0,
        maker_id: id(maker.1),
        maker_order_id: maker.2,
        maker_leaves_qty: maker.3,
        taker_account: taker.0,
        taker_id: id(taker.1),
        taker_order_id: taker.2,
        taker_leaves_qty: taker.3,
        aggressor,
    }
}

fn canceled(
    account: AccountId,
    cl_id: &str,
    order_id: OrderId,
    reason: CancelReason,
    leaves_qty: Qty,
) -> EventKind {
    EventKind::Canceled { account, id: id(cl_id), symbol: S0, order_id, reason, leaves_qty }
}

fn rejected(account: AccountId, cl_id: &str, reason: RejectReason) -> EventKind {
    EventKind::Rejected { account, id: id(cl_id), symbol: S0, reason }
}

fn replaced(
    account: AccountId,
    orig: &str,
    new: &str,
    order_id: OrderId,
    price: i64,
    qty: Qty,
    leaves_qty: Qty,
) -> EventKind {
    EventKind::Replaced {
        account,
        orig_id: id(orig),
        id: id(new),
        symbol: S0,
        order_id,
        price: Price(price),
        qty,
        leaves_qty,
    }
}

fn expired(account: AccountId, cl_id: &str, order_id: OrderId, leaves_qty: Qty) -> EventKind {
    EventKind::Expired { account, id: id(cl_id), symbol: S0, order_id, leaves_qty }
}

fn triggered(account: AccountId, cl_id: &str, order_id: OrderId) -> EventKind {
    EventKind::Triggered { account, id: id(cl_id), symbol: S0, order_id }
}

fn status(symbol: SymbolId, halted: bool) -> EventKind {
    EventKind::TradingStatus { symbol, halted }
}

/// The same event on another symbol.
fn on(symbol: SymbolId, mut event: EventKind) -> EventKind {
    match &mut event {
        EventKind::Accepted { symbol: s, .. }
        | EventKind::Trade { symbol: s, .. }
        | EventKind::Canceled { symbol: s, .. }
        | EventKind::Rejected { symbol: s, .. }
        | EventKind::Replaced { symbol: s, .. }
        | EventKind::Expired { symbol: s, .. }
        | EventKind::Triggered { symbol: s, .. }
        | EventKind::TradingStatus { symbol: s, .. } => *s = symbol,
    }
    event
}

/// The engine and the model after a scenario, for book assertions.
struct Ran {
    engine: Engine,
    model: Model,
}

impl Ran {
    /// The book of a symbol as text; asserts the engine and the model agree on it.
    fn book(&self, symbol: SymbolId) -> String {
        let engine = book_text(&self.engine.book_snapshot(symbol));
        let model = book_text(&self.model.book_snapshot(symbol));
        assert_eq!(model, engine, "engine book (right) differs from the model (left)");
        engine
    }
}

fn scenario_with(pools: Pools, steps: Vec<(u64, CommandKind, Vec<EventKind>)>) -> Ran {
    let (mut engine, mut model) = engine_and_model(pools);
    let mut seq = 0;
    let mut cmds = Vec::new();
    for (k, (ts, kind, expected_kinds)) in steps.into_iter().enumerate() {
        let cmd = Command { header: CommandHeader { seq: k as u64 + 1, ts }, kind };
        cmds.push(cmd);
        let expected: Vec<Event> = expected_kinds
            .into_iter()
            .map(|expected| {
                seq += 1;
                Event { seq, command_seq: cmd.header.seq, ts, kind: with_terms(expected, &kind, &engine) }
            })
            .collect();
        let from_model = model.process(&cmd);
        assert_eq!(
            from_model,
            expected,
            "MODEL (left) disagrees with the scenario (right) at #{}: {}\n{}",
            k + 1,
            fmt_kind(&kind),
            fmt_stream(&cmds)
        );
        let mut from_engine = Vec::new();
        engine.process(&cmd, &mut from_engine);
        assert_eq!(
            from_engine,
            expected,
            "ENGINE (left) disagrees with the scenario (right) at #{}: {}\n{}",
            k + 1,
            fmt_kind(&kind),
            fmt_stream(&cmds)
        );
    }
    Ran { engine, model }
}

fn scenario(steps: Vec<(u64, CommandKind, Vec<EventKind>)>) -> Ran {
    scenario_with(ROOMY, steps)
}

#[test]
fn numbering_rejects_consume_no_order_id_and_events_are_numbered_one_by_one() {
    scenario(vec![
        (1, New(order(A, S0, "a1", Buy, "100.00", 0)), vec![rejected(A, "a1", RejectReason::BadQty)]),
        (2, New(order(A, S0, "a1", Buy, "100.00", 5)), vec![accepted(A, "a1", OrderId(1), Buy, 10_000, 5)]),
        (
            3,
            New(order(B, S0, "b1", Sell, "99.00", 2)),
            vec![
                accepted(B, "b1", OrderId(2), Sell, 9_900, 2),
                trade(10_000, 2, (A, "a1", OrderId(1), 3), (B, "b1", OrderId(2), 0), Sell),
            ],
        ),
    ]);
}

#[test]
fn new_order_checks_run_in_the_documented_order() {
    let steps = vec![
        // unknown_symbol first, even for an order that is wrong in every other way.
        (
            1,
            New(order(A, SYMBOL_UNKNOWN, "u", Buy, "0.001", 0).post_only().market()),
            vec![on(SYMBOL_UNKNOWN, rejected(A, "u", RejectReason::UnknownSymbol))],
        ),
        (2, Halt { symbol: S1 }, vec![status(S1, true)]),
        (
            3,
            New(order(A, S1, "h", Buy, "0.001", 0).post_only().market()),
            vec![on(S1, rejected(A, "h", RejectReason::Halted))],
        ),
        (4, Resume { symbol: S1 }, vec![status(S1, false)]),
        // bad_order before bad_qty and bad_price_tick.
        (
            5,
            New(order(A, S0, "o1", Buy, "0.001", 0).post_only().tif(Tif::Ioc)),
            vec![rejected(A, "o1", RejectReason::BadOrder)],
        ),
        (
            6,
            New(order(A, S0, "o2", Buy, "100.00", 1).tif(Tif::Gtd)),
            vec![rejected(A, "o2", RejectReason::BadOrder)],
        ),
        (
            7,
            New(order(A, S0, "o3", Buy, "100.00", 1).post_only().stop("100.00")),
            vec![rejected(A, "o3", RejectReason::BadOrder)],
        ),
        (
            8,
            New(order(A, S0, "o4", Buy, "100.00", 1).post_only().market()),
            vec![rejected(A, "o4", RejectReason::BadOrder)],
        ),
        (
            9,
            New(order(A, S0, "o5", Buy, "100.00", 4).display(2).tif(Tif::Fok)),
            vec![rejected(A, "o5", RejectReason::BadOrder)],
        ),
        (
            10,
            New(order(A, S0, "o6", Buy, "100.00", 4).display(2).market()),
            vec![rejected(A, "o6", RejectReason::BadOrder)],
        ),
        // bad_qty before bad_price_tick.
        (11, New(order(A, S0, "q1", Buy, "0.001", 0)), vec![rejected(A, "q1", RejectReason::BadQty)]),
        (
            12,
            New(order(A, S1, "q2", Buy, "100.00", 15)),
            vec![on(S1, rejected(A, "q2", RejectReason::BadQty))],
        ),
        (
            13,
            New(order(A, S0, "q3", Buy, "100.00", 4).display(0)),
            vec![rejected(A, "q3", RejectReason::BadQty)],
        ),
        (
            14,
            New(order(A, S0, "q4", Buy, "100.00", 4).display(5)),
            vec![rejected(A, "q4", RejectReason::BadQty)],
        ),
        (
            15,
            New(order(A, S1, "q5", Buy, "100.00", 20).display(5)),
            vec![on(S1, rejected(A, "q5", RejectReason::BadQty))],
        ),
        // bad_price_tick: limit price, stop price; a market order's price is ignored.
        (16, New(order(A, S0, "p1", Buy, "100.005", 1)), vec![rejected(A, "p1", RejectReason::BadPriceTick)]),
        (17, New(order(A, S0, "p2", Buy, "0", 1)), vec![rejected(A, "p2", RejectReason::BadPriceTick)]),
        (
            18,
            New(order(A, S0, "p3", Buy, "100.00", 1).stop("-1.00")),
            vec![rejected(A, "p3", RejectReason::BadPriceTick)],
        ),
        (
            19,
            New(order(A, S0, "p4", Buy, "100.00", 1).market().stop("100.001")),
            vec![rejected(A, "p4", RejectReason::BadPriceTick)],
        ),
        (
            20,
            New(order(A, S0, "m1", Sell, "0.001", 1).market()),
            vec![
                accepted(A, "m1", OrderId(1), Sell, 0, 1),
                canceled(A, "m1", OrderId(1), CancelReason::Ioc, 1),
            ],
        ),
        // duplicate_id (any symbol, resting or stop) after bad_price_tick, before would_take.
        (
            21,
            New(order(A, S1, "d", Sell, "100.00", 10)),
            vec![on(S1, accepted(A, "d", OrderId(2), Sell, 10_000, 10))],
        ),
        (
            22,
            New(order(A, S0, "s", Buy, "101.00", 1).stop("101.00")),
            vec![accepted(A, "s", OrderId(3), Buy, 10_100, 1)],
        ),
        (23, New(order(A, S0, "d", Buy, "100.001", 1)), vec![rejected(A, "d", RejectReason::BadPriceTick)]),
        (24, New(order(A, S0, "d", Buy, "100.00", 1)), vec![rejected(A, "d", RejectReason::DuplicateId)]),
        (25, New(order(A, S0, "s", Buy, "100.00", 1)), vec![rejected(A, "s", RejectReason::DuplicateId)]),
        (
            26,
            New(order(B, S1, "b", Buy, "100.00", 10).post_only()),
            vec![on(S1, rejected(B, "b", RejectReason::WouldTake))],
        ),
        (
            27,
            New(order(A, S1, "d", Buy, "100.00", 10).post_only()),
            vec![on(S1, rejected(A, "d", RejectReason::DuplicateId))],
        ),
        // Another account may use the same id.
        (28, New(order(B, S0, "d", Buy, "99.00", 1)), vec![accepted(B, "d", OrderId(4), Buy, 9_900, 1)]),
    ];
    scenario(steps);
}

#[test]
fn gtd_expiry_happens_before_the_command_in_expire_ts_then_order_id_order() {
    let ran = scenario(vec![
        (
            100,
            New(order(A, S0, "g1", Buy, "99.00", 1).tif(Tif::Gtd).expire(400)),
            vec![accepted(A, "g1", OrderId(1), Buy, 9_900, 1)],
        ),
        (
            110,
            New(order(A, S0, "g2", Buy, "99.00", 2).tif(Tif::Gtd).expire(300)),
            vec![accepted(A, "g2", OrderId(2), Buy, 9_900, 2)],
        ),
        // An untriggered stop expires too (no trade yet, so it waits).
        (
            120,
            New(order(B, S0, "g3", Sell, "90.00", 3).stop("90.00").tif(Tif::Gtd).expire(300)),
            vec![accepted(B, "g3", OrderId(3), Sell, 9_000, 3)],
        ),
        (299, New(order(C, S0, "c1", Buy, "98.00", 1)), vec![accepted(C, "c1", OrderId(4), Buy, 9_800, 1)]),
        // Any command, even one that is rejected, first expires what is due at its ts.
        (
            450,
            cancel(C, SYMBOL_UNKNOWN, "c1"),
            vec![
                expired(A, "g2", OrderId(2), 2),
                expired(B, "g3", OrderId(3), 3),
                expired(A, "g1", OrderId(1), 1),
                on(SYMBOL_UNKNOWN, rejected(C, "c1", RejectReason::UnknownSymbol)),
            ],
        ),
        // A GTD order already due at its own ts is accepted and processed (here: it trades),
        // then expires before the next command.
        (
            500,
            New(order(A, S0, "g4", Sell, "98.00", 3).tif(Tif::Gtd).expire(500)),
            vec![
                accepted(A, "g4", OrderId(5), Sell, 9_800, 3),
                trade(9_800, 1, (C, "c1", OrderId(4), 0), (A, "g4", OrderId(5), 2), Sell),
            ],
        ),
        (501, Halt { symbol: S1 }, vec![expired(A, "g4", OrderId(5), 2), status(S1, true)]),
    ]);
    assert_eq!(ran.book(S0), "bids: \nasks: ");
}

/// An untriggered stop-market GTD expires like any other untriggered GTD stop: "every live
/// order (resting or an untriggered stop) with expire_ts <= ts is removed". "A GTC/GTD market
/// order is treated as IOC" is about how it matches once triggered.
#[test]
fn gtd_stop_market_expires_while_untriggered() {
    scenario(vec![
        (
            1,
            New(order(A, S0, "s1", Sell, "0", 1).market().stop("99.00").tif(Tif::Gtd).expire(5)),
            vec![accepted(A, "s1", OrderId(1), Sell, 0, 1)],
        ),
        (
            2,
            New(order(A, S0, "s2", Sell, "99.00", 1).stop("99.00").tif(Tif::Gtd).expire(5)),
            vec![accepted(A, "s2", OrderId(2), Sell, 9_900, 1)],
        ),
        (
            5,
            Halt { symbol: S1 },
            vec![expired(A, "s1", OrderId(1), 1), expired(A, "s2", OrderId(2), 1), status(S1, true)],
        ),
    ]);
}

/// Points SEMANTICS.md is silent on, as the engine and the model read them: `expire_ts` on a
/// non-GTD order is ignored; halting or resuming a symbol that is not listed does nothing.
#[test]
fn expire_ts_outside_gtd_and_halts_of_unlisted_symbols_are_ignored() {
    scenario(vec![
        (
            1,
            New(order(A, S0, "a1", Buy, "99.00", 1).expire(2)),
            vec![accepted(A, "a1", OrderId(1), Buy, 9_900, 1)],
        ),
        (
            2,
            New(order(A, S0, "s1", Buy, "0", 1).market().stop("101.00").expire(2)),
            vec![accepted(A, "s1", OrderId(2), Buy, 0, 1)],
        ),
        (3, Halt { symbol: SYMBOL_UNKNOWN }, vec![]),
        (4, Resume { symbol: SymbolId(7) }, vec![]),
        (5, cancel(A, S0, "s1"), vec![canceled(A, "s1", OrderId(2), CancelReason::User, 1)]),
        (6, cancel(A, S0, "a1"), vec![canceled(A, "a1", OrderId(1), CancelReason::User, 1)]),
    ]);
}

#[test]
fn post_only_is_rejected_when_its_price_crosses_the_best_opposite_price() {
    let ran = scenario(vec![
        (1, New(order(B, S0, "b1", Sell, "100.00", 5)), vec![accepted(B, "b1", OrderId(1), Sell, 10_000, 5)]),
        (
            2,
            New(order(A, S0, "p1", Buy, "100.00", 1).post_only()),
            vec![rejected(A, "p1", RejectReason::WouldTake)],
        ),
        (
            3,
            New(order(A, S0, "p2", Buy, "99.99", 1).post_only()),
            vec![accepted(A, "p2", OrderId(2), Buy, 9_999, 1)],
        ),
        // Own orders count: a sell at the best bid crosses it.
        (
            4,
            New(order(A, S0, "p3", Sell, "99.99", 1).post_only()),
            vec![rejected(A, "p3", RejectReason::WouldTake)],
        ),
        (
            5,
            New(order(A, S0, "p4", Sell, "100.00", 1).post_only().tif(Tif::Gtd).expire(99)),
            vec![accepted(A, "p4", OrderId(3), Sell, 10_000, 1)],
        ),
    ]);
    assert_eq!(ran.book(S0), "bids: 99.99 [1 p2 #2 1/1]\nasks: 100.00 [2 b1 #1 5/5] [1 p4 #3 1/1]");
}

#[test]
fn market_orders_show_price_zero_and_never_rest() {
    scenario(vec![
        (
            1,
            New(order(A, S0, "m1", Buy, "0", 5).market().tif(Tif::Ioc)),
            vec![
                accepted(A, "m1", OrderId(1), Buy, 0, 5),
                canceled(A, "m1", OrderId(1), CancelReason::Ioc, 5),
            ],
        ),
        (2, New(order(B, S0, "b1", Sell, "100.00", 3)), vec![accepted(B, "b1", OrderId(2), Sell, 10_000, 3)]),
        (3, New(order(B, S0, "b2", Sell, "101.00", 1)), vec![accepted(B, "b2", OrderId(3), Sell, 10_100, 1)]),
        // GTC market is treated as IOC.
        (
            4,
            New(order(A, S0, "m2", Buy, "1.00", 5).market()),
            vec![
                accepted(A, "m2", OrderId(4), Buy, 0, 5),
                trade(10_000, 3, (B, "b1", OrderId(2), 0), (A, "m2", OrderId(4), 2), Buy),
                trade(10_100, 1, (B, "b2", OrderId(3), 0), (A, "m2", OrderId(4), 1), Buy),
                canceled(A, "m2", OrderId(4), CancelReason::Ioc, 1),
            ],
        ),
    ]);
}

#[test]
fn fok_fills_completely_or_changes_nothing() {
    let ran = scenario(vec![
        (
            1,
            New(order(B, S0, "b1", Sell, "100.00", 2).display(1)),
            vec![accepted(B, "b1", OrderId(1), Sell, 10_000, 2)],
        ),
        (2, New(order(C, S0, "c1", Sell, "100.01", 2)), vec![accepted(C, "c1", OrderId(2), Sell, 10_001, 2)]),
        // 4 cross at 100.01 (hidden quantity counts); 5 do not.
        (
            3,
            New(order(A, S0, "f1", Buy, "100.01", 5).tif(Tif::Fok)),
            vec![
                accepted(A, "f1", OrderId(3), Buy, 10_001, 5),
                canceled(A, "f1", OrderId(3), CancelReason::Fok, 5),
            ],
        ),
        (
            4,
            New(order(A, S0, "f2", Buy, "100.00", 3).tif(Tif::Fok)),
            vec![
                accepted(A, "f2", OrderId(4), Buy, 10_000, 3),
                canceled(A, "f2", OrderId(4), CancelReason::Fok, 3),
            ],
        ),
        (
            5,
            New(order(A, S0, "f3", Buy, "100.01", 4).tif(Tif::Fok)),
            vec![
                accepted(A, "f3", OrderId(5), Buy, 10_001, 4),
                trade(10_000, 1, (B, "b1", OrderId(1), 1), (A, "f3", OrderId(5), 3), Buy),
                trade(10_000, 1, (B, "b1", OrderId(1), 0), (A, "f3", OrderId(5), 2), Buy),
                trade(10_001, 2, (C, "c1", OrderId(2), 0), (A, "f3", OrderId(5), 0), Buy),
            ],
        ),
    ]);
    assert_eq!(ran.book(S0), "bids: \nasks: ");
}

#[test]
fn fok_dry_run_applies_self_trade_prevention() {
    scenario(vec![
        (1, New(order(A, S0, "a1", Sell, "100.00", 5)), vec![accepted(A, "a1", OrderId(1), Sell, 10_000, 5)]),
        (2, New(order(B, S0, "b1", Sell, "100.00", 5)), vec![accepted(B, "b1", OrderId(2), Sell, 10_000, 5)]),
        // cancel_newest: the count stops at the own order, though b1 behind it has enough.
        (
            3,
            New(order(A, S0, "f1", Buy, "100.00", 5).tif(Tif::Fok)),
            vec![
                accepted(A, "f1", OrderId(3), Buy, 10_000, 5),
                canceled(A, "f1", OrderId(3), CancelReason::Fok, 5),
            ],
        ),
        (
            4,
            New(order(A, S0, "f2", Buy, "100.00", 5).tif(Tif::Fok).stp(StpMode::CancelBoth)),
            vec![
                accepted(A, "f2", OrderId(4), Buy, 10_000, 5),
                canceled(A, "f2", OrderId(4), CancelReason::Fok, 5),
            ],
        ),
        // cancel_oldest: the own order is skipped by the count, then canceled by the walk.
        (
            5,
            New(order(A, S0, "f3", Buy, "100.00", 5).tif(Tif::Fok).stp(StpMode::CancelOldest)),
            vec![
                accepted(A, "f3", OrderId(5), Buy, 10_000, 5),
                canceled(A, "a1", OrderId(1), CancelReason::SelfTrade, 5),
                trade(10_000, 5, (B, "b1", OrderId(2), 0), (A, "f3", OrderId(5), 0), Buy),
            ],
        ),
        // The count stops at the own order, but what is before it is enough.
        (6, New(order(B, S0, "b2", Sell, "100.00", 3)), vec![accepted(B, "b2", OrderId(6), Sell, 10_000, 3)]),
        (7, New(order(A, S0, "a2", Sell, "100.00", 5)), vec![accepted(A, "a2", OrderId(7), Sell, 10_000, 5)]),
        (
            8,
            New(order(A, S0, "f4", Buy, "100.00", 3).tif(Tif::Fok).stp(StpMode::CancelBoth)),
            vec![
                accepted(A, "f4", OrderId(8), Buy, 10_000, 3),
                trade(10_000, 3, (B, "b2", OrderId(6), 0), (A, "f4", OrderId(8), 0), Buy),
            ],
        ),
    ]);
}

#[test]
fn stp_cancel_newest_and_cancel_oldest() {
    let ran = scenario(vec![
        (1, New(order(A, S0, "a1", Sell, "100.00", 5)), vec![accepted(A, "a1", OrderId(1), Sell, 10_000, 5)]),
        (2, New(order(B, S0, "b1", Sell, "100.01", 5)), vec![accepted(B, "b1", OrderId(2), Sell, 10_001, 5)]),
        // cancel_newest (the default): the aggressor goes, nothing rests, matching stops.
        (
            3,
            New(order(A, S0, "a2", Buy, "100.01", 6)),
            vec![
                accepted(A, "a2", OrderId(3), Buy, 10_001, 6),
                canceled(A, "a2", OrderId(3), CancelReason::SelfTrade, 6),
            ],
        ),
        // cancel_oldest: the resting order goes, matching goes on, the rest rests.
        (
            4,
            New(order(A, S0, "a3", Buy, "100.01", 6).stp(StpMode::CancelOldest)),
            vec![
                accepted(A, "a3", OrderId(4), Buy, 10_001, 6),
                canceled(A, "a1", OrderId(1), CancelReason::SelfTrade, 5),
                trade(10_001, 5, (B, "b1", OrderId(2), 0), (A, "a3", OrderId(4), 1), Buy),
            ],
        ),
    ]);
    assert_eq!(ran.book(S0), "bids: 100.01 [1 a3 #4 1/1]\nasks: ");
}

#[test]
fn stp_cancel_both_cancels_the_maker_first_then_the_taker() {
    let ran = scenario(vec![
        (1, New(order(B, S0, "b1", Sell, "100.00", 2)), vec![accepted(B, "b1", OrderId(1), Sell, 10_000, 2)]),
        (
            2,
            New(order(A, S0, "a1", Sell, "100.00", 5).display(1)),
            vec![accepted(A, "a1", OrderId(2), Sell, 10_000, 5)],
        ),
        (3, New(order(B, S0, "b2", Sell, "100.00", 5)), vec![accepted(B, "b2", OrderId(3), Sell, 10_000, 5)]),
        (
            4,
            New(order(A, S0, "a2", Buy, "100.00", 10).stp(StpMode::CancelBoth)),
            vec![
                accepted(A, "a2", OrderId(4), Buy, 10_000, 10),
                trade(10_000, 2, (B, "b1", OrderId(1), 0), (A, "a2", OrderId(4), 8), Buy),
                // The maker's whole leaves, hidden part included.
                canceled(A, "a1", OrderId(2), CancelReason::SelfTrade, 5),
                canceled(A, "a2", OrderId(4), CancelReason::SelfTrade, 8),
            ],
        ),
    ]);
    assert_eq!(ran.book(S0), "bids: \nasks: 100.00 [2 b2 #3 5/5]");
}

#[test]
fn iceberg_reslice_goes_to_the_back_of_its_level() {
    let ran = scenario(vec![
        (
            1,
            New(order(A, S0, "i1", Sell, "100.00", 10).display(3)),
            vec![accepted(A, "i1", OrderId(1), Sell, 10_000, 10)],
        ),
        (2, New(order(B, S0, "b1", Sell, "100.00", 2)), vec![accepted(B, "b1", OrderId(2), Sell, 10_000, 2)]),
        (
            3,
            New(order(C, S0, "c1", Buy, "100.00", 4).tif(Tif::Ioc)),
            vec![
                accepted(C, "c1", OrderId(3), Buy, 10_000, 4),
                // The visible 3 of i1, whose new slice then queues behind b1.
                trade(10_000, 3, (A, "i1", OrderId(1), 7), (C, "c1", OrderId(3), 1), Buy),
                trade(10_000, 1, (B, "b1", OrderId(2), 1), (C, "c1", OrderId(3), 0), Buy),
            ],
        ),
    ]);
    assert_eq!(ran.book(S0), "bids: \nasks: 100.00 [2 b1 #2 1/1] [1 i1 #1 7/3]");
    // An iceberg that rests after trading shows a fresh slice.
    let ran = scenario(vec![
        (1, New(order(B, S0, "b1", Sell, "100.00", 2)), vec![accepted(B, "b1", OrderId(1), Sell, 10_000, 2)]),
        (
            2,
            New(order(A, S0, "i1", Buy, "100.00", 10).display(4)),
            vec![
                accepted(A, "i1", OrderId(2), Buy, 10_000, 10),
                trade(10_000, 2, (B, "b1", OrderId(1), 0), (A, "i1", OrderId(2), 8), Buy),
            ],
        ),
    ]);
    assert_eq!(ran.book(S0), "bids: 100.00 [1 i1 #2 8/4]\nasks: ");
}

#[test]
fn stops_trigger_in_acceptance_order_and_cascade_in_rounds() {
    let ran = scenario(vec![
        (1, New(order(A, S0, "a1", Sell, "100.00", 1)), vec![accepted(A, "a1", OrderId(1), Sell, 10_000, 1)]),
        (2, New(order(A, S0, "a2", Sell, "101.00", 1)), vec![accepted(A, "a2", OrderId(2), Sell, 10_100, 1)]),
        (3, New(order(A, S0, "a3", Sell, "102.00", 1)), vec![accepted(A, "a3", OrderId(3), Sell, 10_200, 1)]),
        (4, New(order(A, S0, "a4", Sell, "103.00", 1)), vec![accepted(A, "a4", OrderId(4), Sell, 10_300, 1)]),
        // No trade yet: there is no last price to test, so every stop waits.
        (
            5,
            New(order(B, S0, "x", Buy, "0", 1).market().stop("100.00")),
            vec![accepted(B, "x", OrderId(5), Buy, 0, 1)],
        ),
        (
            6,
            New(order(B, S0, "z", Buy, "0", 1).market().stop("101.00")),
            vec![accepted(B, "z", OrderId(6), Buy, 0, 1)],
        ),
        (
            7,
            New(order(C, S0, "y", Buy, "0", 1).market().stop("99.00")),
            vec![accepted(C, "y", OrderId(7), Buy, 0, 1)],
        ),
        (
            8,
            New(order(C, S0, "t", Buy, "100.00", 1).tif(Tif::Ioc)),
            vec![
                accepted(C, "t", OrderId(8), Buy, 10_000, 1),
                trade(10_000, 1, (A, "a1", OrderId(1), 0), (C, "t", OrderId(8), 0), Buy),
                // Round 1 (last 100.00): x and y, in acceptance order; y still runs after x
                // moved the price, and z (stop 101.00) is not in this round.
                triggered(B, "x", OrderId(5)),
                trade(10_100, 1, (A, "a2", OrderId(2), 0), (B, "x", OrderId(5), 0), Buy),
                triggered(C, "y", OrderId(7)),
                trade(10_200, 1, (A, "a3", OrderId(3), 0), (C, "y", OrderId(7), 0), Buy),
                // Round 2 (last 102.00): z.
                triggered(B, "z", OrderId(6)),
                trade(10_300, 1, (A, "a4", OrderId(4), 0), (B, "z", OrderId(6), 0), Buy),
            ],
        ),
        // A stop whose condition already holds triggers right after its own acceptance.
        (
            9,
            New(order(B, S0, "w", Buy, "0", 2).market().stop("100.00")),
            vec![
                accepted(B, "w", OrderId(9), Buy, 0, 2),
                triggered(B, "w", OrderId(9)),
                canceled(B, "w", OrderId(9), CancelReason::Ioc, 2),
            ],
        ),
        // A stop-limit rests at its limit after triggering; a sell stop needs last <= stop.
        (
            10,
            New(order(C, S0, "v", Sell, "104.00", 2).stop("103.00")),
            vec![accepted(C, "v", OrderId(10), Sell, 10_400, 2), triggered(C, "v", OrderId(10))],
        ),
        (
            11,
            New(order(C, S0, "u", Sell, "104.00", 2).stop("102.99")),
            vec![accepted(C, "u", OrderId(11), Sell, 10_400, 2)],
        ),
    ]);
    assert_eq!(ran.book(S0), "bids: \nasks: 104.00 [3 v #10 2/2]");
}

#[test]
fn replace_same_price_smaller_qty_keeps_priority_otherwise_priority_is_lost() {
    let ran = scenario(vec![
        (1, New(order(A, S0, "a1", Sell, "100.00", 5)), vec![accepted(A, "a1", OrderId(1), Sell, 10_000, 5)]),
        (2, New(order(B, S0, "b1", Sell, "100.00", 5)), vec![accepted(B, "b1", OrderId(2), Sell, 10_000, 5)]),
        (3, replace(A, S0, "a1", "a1r", None, 3), vec![replaced(A, "a1", "a1r", OrderId(1), 10_000, 3, 3)]),
    ]);
    assert_eq!(ran.book(S0), "bids: \nasks: 100.00 [1 a1r #1 3/3] [2 b1 #2 5/5]");

    let ran = scenario(vec![
        (1, New(order(A, S0, "a1", Sell, "100.00", 5)), vec![accepted(A, "a1", OrderId(1), Sell, 10_000, 5)]),
        (2, New(order(B, S0, "b1", Sell, "100.00", 5)), vec![accepted(B, "b1", OrderId(2), Sell, 10_000, 5)]),
        // Same price given explicitly, same qty, same id: priority kept.
        (
            3,
            replace(A, S0, "a1", "a1", Some("100.00"), 5),
            vec![replaced(A, "a1", "a1", OrderId(1), 10_000, 5, 5)],
        ),
        // A qty increase at the same price: to the back.
        (4, replace(A, S0, "a1", "a2", None, 6), vec![replaced(A, "a1", "a2", OrderId(1), 10_000, 6, 6)]),
    ]);
    assert_eq!(ran.book(S0), "bids: \nasks: 100.00 [2 b1 #2 5/5] [1 a2 #1 6/6]");

    let ran = scenario(vec![
        (1, New(order(A, S0, "a1", Sell, "100.00", 5)), vec![accepted(A, "a1", OrderId(1), Sell, 10_000, 5)]),
        (2, New(order(B, S0, "b1", Sell, "100.01", 5)), vec![accepted(B, "b1", OrderId(2), Sell, 10_001, 5)]),
        (3, New(order(B, S0, "b2", Sell, "100.00", 5)), vec![accepted(B, "b2", OrderId(3), Sell, 10_000, 5)]),
        (4, New(order(C, S0, "c1", Sell, "100.00", 1)), vec![accepted(C, "c1", OrderId(4), Sell, 10_000, 1)]),
        // A price change (even with a smaller qty) goes to the back of the new level; moving
        // away and back loses priority too.
        (
            5,
            replace(A, S0, "a1", "a2", Some("100.01"), 4),
            vec![replaced(A, "a1", "a2", OrderId(1), 10_001, 4, 4)],
        ),
        (
            6,
            replace(B, S0, "b2", "b3", Some("100.02"), 5),
            vec![replaced(B, "b2", "b3", OrderId(3), 10_002, 5, 5)],
        ),
        (
            7,
            replace(B, S0, "b3", "b4", Some("100.00"), 5),
            vec![replaced(B, "b3", "b4", OrderId(3), 10_000, 5, 5)],
        ),
    ]);
    assert_eq!(
        ran.book(S0),
        "bids: \nasks: 100.00 [3 c1 #4 1/1] [2 b4 #3 5/5] | 100.01 [2 b1 #2 5/5] [1 a2 #1 4/4]"
    );
}

#[test]
fn replace_with_qty_at_or_below_filled_ends_the_order() {
    let ran = scenario(vec![
        (
            1,
            New(order(A, S0, "a1", Sell, "100.00", 10)),
            vec![accepted(A, "a1", OrderId(1), Sell, 10_000, 10)],
        ),
        (
            2,
            New(order(C, S0, "c1", Buy, "100.00", 4).tif(Tif::Ioc)),
            vec![
                accepted(C, "c1", OrderId(2), Buy, 10_000, 4),
                trade(10_000, 4, (A, "a1", OrderId(1), 6), (C, "c1", OrderId(2), 0), Buy),
            ],
        ),
        (3, replace(A, S0, "a1", "a2", None, 4), vec![replaced(A, "a1", "a2", OrderId(1), 10_000, 4, 0)]),
        (4, cancel(A, S0, "a2"), vec![rejected(A, "a2", RejectReason::UnknownOrder)]),
        (
            5,
            New(order(A, S0, "a3", Sell, "100.00", 10)),
            vec![accepted(A, "a3", OrderId(3), Sell, 10_000, 10)],
        ),
        (
            6,
            New(order(C, S0, "c2", Buy, "100.00", 4).tif(Tif::Ioc)),
            vec![
                accepted(C, "c2", OrderId(4), Buy, 10_000, 4),
                trade(10_000, 4, (A, "a3", OrderId(3), 6), (C, "c2", OrderId(4), 0), Buy),
            ],
        ),
        // Below the filled qty, with a price change: still just done.
        (
            7,
            replace(A, S0, "a3", "a4", Some("99.00"), 2),
            vec![replaced(A, "a3", "a4", OrderId(3), 9_900, 2, 0)],
        ),
    ]);
    assert_eq!(ran.book(S0), "bids: \nasks: ");
}

#[test]
fn replace_that_crosses_trades_as_the_aggressor_then_runs_stops() {
    let ran = scenario(vec![
        (1, New(order(A, S0, "a1", Buy, "99.00", 5)), vec![accepted(A, "a1", OrderId(1), Buy, 9_900, 5)]),
        (2, New(order(B, S0, "b1", Sell, "100.00", 3)), vec![accepted(B, "b1", OrderId(2), Sell, 10_000, 3)]),
        (3, New(order(B, S0, "b2", Sell, "100.50", 1)), vec![accepted(B, "b2", OrderId(3), Sell, 10_050, 1)]),
        (
            4,
            New(order(C, S0, "s", Buy, "0", 1).market().stop("100.00")),
            vec![accepted(C, "s", OrderId(4), Buy, 0, 1)],
        ),
        (
            5,
            replace(A, S0, "a1", "a1x", Some("100.00"), 5),
            vec![
                replaced(A, "a1", "a1x", OrderId(1), 10_000, 5, 5),
                trade(10_000, 3, (B, "b1", OrderId(2), 0), (A, "a1x", OrderId(1), 2), Buy),
                triggered(C, "s", OrderId(4)),
                trade(10_050, 1, (B, "b2", OrderId(3), 0), (C, "s", OrderId(4), 0), Buy),
            ],
        ),
    ]);
    assert_eq!(ran.book(S0), "bids: 100.00 [1 a1x #1 2/2]\nasks: ");
}

#[test]
fn replace_checks_run_in_order_and_rejects_name_the_new_id() {
    scenario(vec![
        (1, New(order(A, S0, "a1", Buy, "99.00", 5)), vec![accepted(A, "a1", OrderId(1), Buy, 9_900, 5)]),
        (
            2,
            New(order(A, S1, "a2", Buy, "99.00", 10)),
            vec![on(S1, accepted(A, "a2", OrderId(2), Buy, 9_900, 10))],
        ),
        (3, New(order(B, S0, "b1", Buy, "98.00", 1)), vec![accepted(B, "b1", OrderId(3), Buy, 9_800, 1)]),
        (
            4,
            replace(A, SYMBOL_UNKNOWN, "a1", "n1", None, 0),
            vec![on(SYMBOL_UNKNOWN, rejected(A, "n1", RejectReason::UnknownSymbol))],
        ),
        // Other accounts' orders are invisible; so is an order on another symbol.
        (5, replace(A, S0, "b1", "n2", None, 1), vec![rejected(A, "n2", RejectReason::UnknownOrder)]),
        (6, replace(A, S0, "a2", "n3", None, 10), vec![rejected(A, "n3", RejectReason::UnknownOrder)]),
        (
            7,
            replace(A, S0, "zz", "n4", Some("0.001"), 0),
            vec![rejected(A, "n4", RejectReason::UnknownOrder)],
        ),
        (8, replace(A, S0, "a1", "n5", Some("0.001"), 0), vec![rejected(A, "n5", RejectReason::BadQty)]),
        (9, replace(A, S1, "a2", "n6", None, 15), vec![on(S1, rejected(A, "n6", RejectReason::BadQty))]),
        (
            10,
            replace(A, S0, "a1", "a2", Some("99.005"), 5),
            vec![rejected(A, "a2", RejectReason::BadPriceTick)],
        ),
        (11, replace(A, S0, "a1", "n7", Some("0"), 5), vec![rejected(A, "n7", RejectReason::BadPriceTick)]),
        // duplicate_id: live on any symbol of the account; the same id is not a duplicate.
        (12, replace(A, S0, "a1", "a2", None, 5), vec![rejected(A, "a2", RejectReason::DuplicateId)]),
        (13, replace(A, S0, "a1", "a1", None, 4), vec![replaced(A, "a1", "a1", OrderId(1), 9_900, 4, 4)]),
        (14, Halt { symbol: S0 }, vec![status(S0, true)]),
        (15, replace(A, S0, "zz", "n8", None, 0), vec![rejected(A, "n8", RejectReason::Halted)]),
        (16, Resume { symbol: S0 }, vec![status(S0, false)]),
        // would_take: a post-only order's new price.
        (
            17,
            New(order(A, S0, "p", Sell, "101.00", 1).post_only()),
            vec![accepted(A, "p", OrderId(4), Sell, 10_100, 1)],
        ),
        (18, replace(A, S0, "p", "p2", Some("98.00"), 1), vec![rejected(A, "p2", RejectReason::WouldTake)]),
        (
            19,
            replace(A, S0, "p", "p2", Some("99.01"), 2),
            vec![replaced(A, "p", "p2", OrderId(4), 9_901, 2, 2)],
        ),
    ]);
}

#[test]
fn replacing_a_stop_keeps_its_place_among_the_stops() {
    let ran = scenario(vec![
        (1, New(order(B, S0, "m1", Sell, "100.00", 1)), vec![accepted(B, "m1", OrderId(1), Sell, 10_000, 1)]),
        (2, New(order(B, S0, "m2", Sell, "100.00", 1)), vec![accepted(B, "m2", OrderId(2), Sell, 10_000, 1)]),
        (3, New(order(B, S0, "m3", Sell, "100.05", 3)), vec![accepted(B, "m3", OrderId(3), Sell, 10_005, 3)]),
        (
            4,
            New(order(A, S0, "s1", Buy, "100.00", 1).stop("100.00")),
            vec![accepted(A, "s1", OrderId(4), Buy, 10_000, 1)],
        ),
        (
            5,
            New(order(C, S0, "s2", Buy, "0", 1).market().stop("100.00")),
            vec![accepted(C, "s2", OrderId(5), Buy, 0, 1)],
        ),
        (
            6,
            replace(A, S0, "s1", "s1r", Some("100.05"), 2),
            vec![replaced(A, "s1", "s1r", OrderId(4), 10_005, 2, 2)],
        ),
        // A price on a stop-market replace is ignored (even an off-tick one).
        (
            7,
            replace(C, S0, "s2", "s2r", Some("1.005"), 1),
            vec![replaced(C, "s2", "s2r", OrderId(5), 0, 1, 1)],
        ),
        (
            8,
            New(order(C, S0, "t", Buy, "100.00", 1).tif(Tif::Ioc)),
            vec![
                accepted(C, "t", OrderId(6), Buy, 10_000, 1),
                trade(10_000, 1, (B, "m1", OrderId(1), 0), (C, "t", OrderId(6), 0), Buy),
                triggered(A, "s1r", OrderId(4)),
                trade(10_000, 1, (B, "m2", OrderId(2), 0), (A, "s1r", OrderId(4), 1), Buy),
                trade(10_005, 1, (B, "m3", OrderId(3), 2), (A, "s1r", OrderId(4), 0), Buy),
                triggered(C, "s2r", OrderId(5)),
                trade(10_005, 1, (B, "m3", OrderId(3), 1), (C, "s2r", OrderId(5), 0), Buy),
            ],
        ),
    ]);
    assert_eq!(ran.book(S0), "bids: \nasks: 100.05 [2 m3 #3 1/1]");
}

#[test]
fn iceberg_replace_in_place_caps_the_visible_slice() {
    let ran = scenario(vec![
        (
            1,
            New(order(A, S0, "i", Sell, "100.00", 10).display(4)),
            vec![accepted(A, "i", OrderId(1), Sell, 10_000, 10)],
        ),
        (
            2,
            New(order(C, S0, "c", Buy, "100.00", 5).tif(Tif::Ioc)),
            vec![
                accepted(C, "c", OrderId(2), Buy, 10_000, 5),
                trade(10_000, 4, (A, "i", OrderId(1), 6), (C, "c", OrderId(2), 1), Buy),
                trade(10_000, 1, (A, "i", OrderId(1), 5), (C, "c", OrderId(2), 0), Buy),
            ],
        ),
        (3, replace(A, S0, "i", "i2", None, 7), vec![replaced(A, "i", "i2", OrderId(1), 10_000, 7, 2)]),
    ]);
    assert_eq!(ran.book(S0), "bids: \nasks: 100.00 [1 i2 #1 2/2]");
}

#[test]
fn cancels_pass_while_halted_and_see_only_the_accounts_own_orders() {
    scenario(vec![
        (1, New(order(A, S0, "a1", Buy, "99.00", 1)), vec![accepted(A, "a1", OrderId(1), Buy, 9_900, 1)]),
        (
            2,
            New(order(A, S0, "s1", Sell, "98.00", 1).stop("98.00")),
            vec![accepted(A, "s1", OrderId(2), Sell, 9_800, 1)],
        ),
        (3, Halt { symbol: S0 }, vec![status(S0, true)]),
        (4, New(order(A, S0, "a2", Buy, "99.00", 1)), vec![rejected(A, "a2", RejectReason::Halted)]),
        (5, cancel(B, S0, "a1"), vec![rejected(B, "a1", RejectReason::UnknownOrder)]),
        (6, cancel(A, S1, "a1"), vec![on(S1, rejected(A, "a1", RejectReason::UnknownOrder))]),
        (
            7,
            cancel(A, SYMBOL_UNKNOWN, "a1"),
            vec![on(SYMBOL_UNKNOWN, rejected(A, "a1", RejectReason::UnknownSymbol))],
        ),
        (8, cancel(A, S0, "a1"), vec![canceled(A, "a1", OrderId(1), CancelReason::User, 1)]),
        (9, cancel(A, S0, "s1"), vec![canceled(A, "s1", OrderId(2), CancelReason::User, 1)]),
        (10, cancel(A, S0, "a1"), vec![rejected(A, "a1", RejectReason::UnknownOrder)]),
        (11, Resume { symbol: S0 }, vec![status(S0, false)]),
    ]);
}

#[test]
fn cancel_all_goes_by_symbol_then_order_id_and_includes_stops() {
    let ran = scenario(vec![
        (
            1,
            New(order(A, S1, "x1", Buy, "99.00", 10)),
            vec![on(S1, accepted(A, "x1", OrderId(1), Buy, 9_900, 10))],
        ),
        (2, New(order(A, S0, "x2", Buy, "99.00", 1)), vec![accepted(A, "x2", OrderId(2), Buy, 9_900, 1)]),
        (
            3,
            New(order(A, S0, "x3", Buy, "0", 1).market().stop("101.00")),
            vec![accepted(A, "x3", OrderId(3), Buy, 0, 1)],
        ),
        (4, New(order(B, S0, "y", Buy, "98.00", 1)), vec![accepted(B, "y", OrderId(4), Buy, 9_800, 1)]),
        (
            5,
            New(order(A, S1, "x4", Sell, "101.00", 20).display(10)),
            vec![on(S1, accepted(A, "x4", OrderId(5), Sell, 10_100, 20))],
        ),
        (
            6,
            CancelAll { account: A, symbol: None },
            vec![
                canceled(A, "x2", OrderId(2), CancelReason::MassCancel, 1),
                canceled(A, "x3", OrderId(3), CancelReason::MassCancel, 1),
                on(S1, canceled(A, "x1", OrderId(1), CancelReason::MassCancel, 10)),
                on(S1, canceled(A, "x4", OrderId(5), CancelReason::MassCancel, 20)),
            ],
        ),
        (7, CancelAll { account: B, symbol: Some(S1) }, vec![]),
        (8, Halt { symbol: S0 }, vec![status(S0, true)]),
        (
            9,
            CancelAll { account: B, symbol: Some(S0) },
            vec![canceled(B, "y", OrderId(4), CancelReason::MassCancel, 1)],
        ),
    ]);
    assert_eq!(ran.book(S0), "bids: \nasks: ");
    assert_eq!(ran.book(S1), "bids: \nasks: ");
}

#[test]
fn book_full_when_the_pool_or_a_ladder_is_full() {
    let pools = Pools { orders_max: 3, levels_per_side_max: 2 };
    let ran = scenario_with(
        pools,
        vec![
            (1, New(order(A, S0, "a1", Buy, "99.00", 1)), vec![accepted(A, "a1", OrderId(1), Buy, 9_900, 1)]),
            (2, New(order(A, S0, "a2", Buy, "98.00", 1)), vec![accepted(A, "a2", OrderId(2), Buy, 9_800, 1)]),
            // A third bid level could rest: refused before matching.
            (3, New(order(A, S0, "a3", Buy, "97.00", 1)), vec![rejected(A, "a3", RejectReason::BookFull)]),
            // An IOC cannot rest, and an existing level is no new level.
            (
                4,
                New(order(A, S0, "a3", Buy, "97.00", 1).tif(Tif::Ioc)),
                vec![
                    accepted(A, "a3", OrderId(3), Buy, 9_700, 1),
                    canceled(A, "a3", OrderId(3), CancelReason::Ioc, 1),
                ],
            ),
            (5, New(order(A, S0, "a4", Buy, "98.00", 1)), vec![accepted(A, "a4", OrderId(4), Buy, 9_800, 1)]),
            // The asks have their own ladder, but the pool (3 live orders) is full.
            (
                6,
                New(order(B, S0, "b1", Sell, "99.00", 1).tif(Tif::Ioc)),
                vec![rejected(B, "b1", RejectReason::BookFull)],
            ),
            // A replace to a new price on a full ladder, leaving a level that stays...
            (
                7,
                replace(A, S0, "a2", "a5", Some("96.00"), 1),
                vec![rejected(A, "a5", RejectReason::BookFull)],
            ),
            // ...but not when the order is alone at its level: the ladder keeps its size.
            (
                8,
                replace(A, S0, "a1", "a5", Some("96.00"), 1),
                vec![replaced(A, "a1", "a5", OrderId(1), 9_600, 1, 1)],
            ),
            (
                9,
                replace(A, S0, "a5", "a6", Some("98.00"), 1),
                vec![replaced(A, "a5", "a6", OrderId(1), 9_800, 1, 1)],
            ),
        ],
    );
    assert_eq!(ran.book(S0), "bids: 98.00 [1 a2 #2 1/1] [1 a4 #4 1/1] [1 a6 #1 1/1]\nasks: ");
}

#[test]
fn fok_never_partly_fills_when_an_iceberg_would_reslice_behind_an_own_order() {
    // b1 shows 2 of 10; a1 (the taker's own account) queues behind it. Under cancel_newest the
    // taker would trade 2, see b1's next slice go behind a1, then stop at a1: only the 2 visible
    // count, so the FOK for 10 is canceled whole and the book is unchanged.
    scenario(vec![
        (
            1,
            New(order(B, S0, "b1", Sell, "100.00", 10).display(2)),
            vec![accepted(B, "b1", OrderId(1), Sell, 10_000, 10)],
        ),
        (2, New(order(A, S0, "a1", Sell, "100.00", 1)), vec![accepted(A, "a1", OrderId(2), Sell, 10_000, 1)]),
        (
            3,
            New(order(A, S0, "f1", Buy, "100.00", 10).tif(Tif::Fok)),
            vec![
                accepted(A, "f1", OrderId(3), Buy, 10_000, 10),
                canceled(A, "f1", OrderId(3), CancelReason::Fok, 10),
            ],
        ),
    ]);
}
