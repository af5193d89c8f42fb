//! Seeded command-stream generator, modelled on exchange-core's published benchmark mix.
//!
//! exchange-core's throughput test drives one symbol holding about 1,000 resting orders with
//! roughly 9% GTC limit orders, 3% IOC orders, 6% cancels and 82% moves (cancel/replace to a new
//! price, same quantity). [`Mix::exchange_core`] reproduces that; [`Mix::sweep_heavy`] and
//! [`Mix::cancel_heavy`] stress the matching walk and the order index instead.
//!
//! The generator keeps an exact price-time model of every book (it is not timed, so it can
//! afford `BTreeMap`s and `VecDeque`s). That is what lets every cancel and move name a live
//! order: a loose model would turn fills it did not foresee into `unknown_order` rejects, and
//! those rejects are far cheaper than the command they replace, flattering whoever is measured.
//! The model also predicts how many trades and how much quantity the stream must produce, so the
//! harness can check each venue really did the work ([`GenStats::trades`]).
//!
//! Self-trade prevention is the one engine rule the peers lack, so the model picks each taker's
//! account among those that own none of the makers it will hit: STP never fires, and the same
//! stream means the same thing to every venue.
//!
//! The output is the engine's own [`Command`]s plus a neutral [`Op`] per command, from which
//! the peer adapters in `exchange-bench` build their native commands.

use std::collections::{BTreeMap, VecDeque};

use engine::{
    AccountId, CancelOrder, ClOrdId, Command, CommandHeader, CommandKind, NewOrder, PriceUnits, Qty,
    ReplaceOrder, Side, SymbolId, SymbolSpec, Tif, PRICE_UNITS_PER_ONE,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Index of an order in the stream: one per new order, kept across moves.
///
/// Peers key their books by it (orderbook-rs ids) or map it to their own ids (matchcore).
pub type OrderRef = u32;

/// Tick of every generated symbol: 0.01 in price units.
pub const TICK_UNITS: i64 = PRICE_UNITS_PER_ONE / 100;

/// Mid price of every generated symbol, in ticks (10,000.00).
///
/// High enough that the widest book we build (`LEVELS_PER_SIDE_CAP` ticks each side) stays
/// positive.
pub const MID_TICKS: i64 = 1_000_000;

/// Most price levels the generator spreads one side of a book over.
///
/// Real books rarely show more than a few thousand populated levels a side; beyond this cap a
/// bigger book queues more orders per level rather than spreading wider.
pub const LEVELS_PER_SIDE_CAP: u32 = 10_000;

/// Resting orders per price level the generator aims for when it sizes the price band.
pub const ORDERS_PER_LEVEL_TARGET: usize = 8;

/// How far, in ticks, one move shifts an order's price at most.
pub const MOVE_TICKS_MAX: i64 = 8;

/// Nanoseconds between two commands' timestamps (the engine only uses `ts` for GTD expiry).
const TS_STEP_NS: u64 = 1_000;

/// How many price levels (or makers) an aggressive order takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sweep {
    /// Takes between `lo` and `hi` resting orders, in priority order.
    Makers {
        /// Fewest.
        lo: u32,
        /// Most.
        hi: u32,
    },
    /// Takes every order on between `lo` and `hi` price levels.
    Levels {
        /// Fewest.
        lo: u32,
        /// Most.
        hi: u32,
    },
}

/// The command mix, in parts per thousand; moves take whatever the others leave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mix {
    /// Name used in reports.
    pub name: &'static str,
    /// GTC limit orders.
    pub gtc_permille: u32,
    /// IOC limit orders, always marketable.
    pub ioc_permille: u32,
    /// Cancels of live orders.
    pub cancel_permille: u32,
    /// Share of GTC orders priced to cross (they trade, then rest the remainder).
    pub gtc_marketable_permille: u32,
    /// How much an IOC takes.
    pub ioc_sweep: Sweep,
}

impl Mix {
    /// exchange-core's mix: 9% GTC, 3% IOC, 6% cancel, 82% move.
    pub fn exchange_core() -> Mix {
        Mix {
            name: "exchange-core",
            gtc_permille: 90,
            ioc_permille: 30,
            cancel_permille: 60,
            gtc_marketable_permille: 100,
            // One maker per IOC keeps the book size level at this mix: 9% in, 6% + 3% out.
            ioc_sweep: Sweep::Makers { lo: 1, hi: 1 },
        }
    }

    /// Many multi-level sweeps, refilled by GTC orders: stresses the matching walk and level
    /// removal.
    pub fn sweep_heavy() -> Mix {
        Mix {
            name: "sweep-heavy",
            gtc_permille: 500,
            ioc_permille: 60,
            cancel_permille: 0,
            gtc_marketable_permille: 50,
            ioc_sweep: Sweep::Levels { lo: 2, hi: 4 },
        }
    }

    /// Orders that mostly come and go without trading: stresses the order index and level
    /// insert/remove.
    pub fn cancel_heavy() -> Mix {
        Mix {
            name: "cancel-heavy",
            gtc_permille: 350,
            ioc_permille: 20,
            cancel_permille: 330,
            gtc_marketable_permille: 20,
            ioc_sweep: Sweep::Makers { lo: 1, hi: 2 },
        }
    }

    /// Looks a mix up by the name printed in reports.
    pub fn by_name(name: &str) -> Option<Mix> {
        [Mix::exchange_core(), Mix::sweep_heavy(), Mix::cancel_heavy()].into_iter().find(|m| m.name == name)
    }
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct GenConfig {
    /// RNG seed: the same config gives the same stream, byte for byte.
    pub seed: u64,
    /// Number of symbols; new orders pick one uniformly.
    pub symbols: u32,
    /// Resting orders over all symbols, built by the setup phase and held (within ±5%) by the
    /// stream.
    pub resting_orders: usize,
    /// Commands in the measured stream.
    pub commands: usize,
    /// The mix.
    pub mix: Mix,
    /// Number of accounts orders are spread over.
    pub accounts: u32,
    /// Price levels a side spreads over; `None` sizes it from [`ORDERS_PER_LEVEL_TARGET`].
    pub levels_per_side: Option<u32>,
    /// Aggressive orders never ask for more than the liquidity inside their limit, so none has
    /// a rest (no IOC rest to cancel, no GTC rest after trading).
    ///
    /// matchcore 0.4.0 matches a crossing limit order with no limit at all (its
    /// `submit_crossable_order` passes `None` as the limit price), so an order with a rest
    /// sweeps past its limit there, and the stream stops meaning the same thing to every venue.
    /// The peer comparison turns this on; engine-only runs can turn it off to exercise rests.
    pub takers_within_limit: bool,
    /// Hold the book within ±5% of `resting_orders` by substituting kinds (on by default);
    /// off, the stream follows the mix alone (single-operation benches).
    pub hold_book_size: bool,
}

impl GenConfig {
    /// A config with 1,000 accounts, an automatic price band, and takers within their limit.
    pub fn new(mix: Mix, symbols: u32, resting_orders: usize, commands: usize, seed: u64) -> Self {
        GenConfig {
            seed,
            symbols,
            resting_orders,
            commands,
            mix,
            accounts: 1_000,
            levels_per_side: None,
            takers_within_limit: true,
            hold_book_size: true,
        }
    }

    /// The price band, in levels per side, this config uses.
    pub fn band_levels(&self) -> u32 {
        self.levels_per_side.unwrap_or_else(|| {
            let per_symbol = self.resting_orders / self.symbols.max(1) as usize;
            let levels = per_symbol / (2 * ORDERS_PER_LEVEL_TARGET);
            (levels as u32).clamp(16, LEVELS_PER_SIDE_CAP)
        })
    }
}

/// A command, described without any venue's encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// A limit order (GTC or IOC).
    Limit {
        /// Symbol index.
        symbol: SymbolId,
        /// The order.
        order: OrderRef,
        /// Owner (never the owner of a maker it hits).
        account: AccountId,
        /// Side.
        side: Side,
        /// Limit price in ticks.
        price_ticks: i64,
        /// Quantity.
        qty: Qty,
        /// `Gtc` or `Ioc`.
        tif: Tif,
    },
    /// Cancel a live order.
    Cancel {
        /// Symbol index.
        symbol: SymbolId,
        /// The order.
        order: OrderRef,
    },
    /// Move a live order to a new price, same total quantity; never crosses.
    Move {
        /// Symbol index.
        symbol: SymbolId,
        /// The order.
        order: OrderRef,
        /// New price in ticks, always different from the old one.
        price_ticks: i64,
        /// Total quantity (unchanged; filled part included).
        qty: Qty,
    },
}

/// What the generator produced and what the stream must do when run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GenStats {
    /// Passive GTC orders in the stream.
    pub gtc_passive: u64,
    /// Crossing GTC orders in the stream.
    pub gtc_marketable: u64,
    /// IOC orders in the stream.
    pub ioc: u64,
    /// IOC orders whose rest is canceled (they meet less than their quantity).
    pub ioc_with_rest: u64,
    /// Cancels in the stream.
    pub cancels: u64,
    /// Moves in the stream.
    pub moves: u64,
    /// Draws the ±5% book-size feedback turned into another kind.
    pub feedback_substitutions: u64,
    /// Trades (maker fills) the stream must produce.
    pub trades: u64,
    /// Quantity the stream must trade.
    pub traded_qty: u64,
    /// Resting orders after the setup phase.
    pub resting_after_setup: usize,
    /// Resting orders after the stream.
    pub resting_end: usize,
    /// Most resting orders at any time.
    pub resting_peak: usize,
    /// Most price levels on one side of one book at any time.
    pub levels_per_side_peak: usize,
    /// Lowest price ever sent, in ticks.
    pub price_ticks_min: i64,
    /// Highest price ever sent, in ticks.
    pub price_ticks_max: i64,
}

/// A generated workload: a setup phase that builds the resting book and the measured stream.
#[derive(Clone, Debug)]
pub struct Workload {
    /// The config that made it.
    pub config: GenConfig,
    /// Symbols, index = [`SymbolId`]; tick [`TICK_UNITS`], lot 1.
    pub symbols: Vec<SymbolSpec>,
    /// Passive GTC orders that build the book (run untimed).
    pub setup: Vec<Command>,
    /// The measured stream; sequence numbers continue from `setup`.
    pub stream: Vec<Command>,
    /// `setup`, neutrally.
    pub setup_ops: Vec<Op>,
    /// `stream`, neutrally.
    pub stream_ops: Vec<Op>,
    /// Number of [`OrderRef`]s handed out.
    pub order_refs: usize,
    /// Counts and expectations.
    pub stats: GenStats,
}

impl Workload {
    /// Order-pool size an engine needs for this workload (peak resting plus headroom for the
    /// incoming order and for whatever per-command slack the pool keeps).
    pub fn orders_max(&self) -> usize {
        self.stats.resting_peak + 1_024
    }

    /// Price levels per side an engine needs for this workload, with headroom.
    pub fn levels_per_side_max(&self) -> usize {
        self.stats.levels_per_side_peak + 64
    }
}

/// Generates a workload. Deterministic in `config`.
pub fn generate(config: &GenConfig) -> Workload {
    assert!(config.symbols > 0, "at least one symbol");
    assert!(config.accounts >= 2, "at least two accounts (takers avoid makers' accounts)");
    let mix = config.mix;
    assert!(
        mix.gtc_permille + mix.ioc_permille + mix.cancel_permille <= 1_000,
        "mix parts exceed 1000 per mille"
    );
    let mut gen = Generator::new(config);
    let symbols = (0..config.symbols).map(|i| SymbolSpec::new(&format!("S{i:04}"), TICK_UNITS, 1)).collect();

    // Setup: passive orders round-robin over symbols and alternating sides, so every book
    // starts two-sided and the same size.
    for i in 0..config.resting_orders {
        let symbol = SymbolId((i % config.symbols as usize) as u32);
        let side = if (i / config.symbols as usize) & 1 == 0 { Side::Buy } else { Side::Sell };
        gen.passive_gtc(symbol, side);
    }
    gen.stats.resting_after_setup = gen.live.len();
    let setup = std::mem::take(&mut gen.commands);
    let setup_ops = std::mem::take(&mut gen.ops);
    gen.commands.reserve(config.commands);
    gen.ops.reserve(config.commands);
    gen.counting = true;

    let low = config.resting_orders - config.resting_orders / 20;
    let high = config.resting_orders + config.resting_orders / 20;
    for _ in 0..config.commands {
        let drawn = drawn_kind(gen.rng.gen_range(0..1_000u32), &mix);
        // Hold the book near its target size: the mix alone drifts (a sweep can take more
        // orders than GTCs bring), and cost depends on book size, so drift would blur the
        // size the scenario claims to measure.
        let live = gen.live.len();
        let hold = config.hold_book_size;
        let kind = match drawn {
            Kind::Gtc if hold && live > high => Kind::Cancel,
            Kind::Cancel | Kind::Ioc if hold && live < low => Kind::Gtc,
            Kind::Cancel | Kind::Move if live == 0 => Kind::Gtc,
            k => k,
        };
        if kind != drawn {
            gen.stats.feedback_substitutions += 1;
        }
        match kind {
            Kind::Gtc => {
                let symbol = gen.rng.gen_range(0..config.symbols);
                let side = gen.random_side();
                let marketable = gen.rng.gen_range(0..1_000u32) < mix.gtc_marketable_permille;
                if !(marketable && gen.aggressive(SymbolId(symbol), side, Tif::Gtc)) {
                    gen.passive_gtc(SymbolId(symbol), side);
                }
            }
            Kind::Ioc => {
                let symbol = gen.rng.gen_range(0..config.symbols);
                let side = gen.random_side();
                if !gen.aggressive(SymbolId(symbol), side, Tif::Ioc)
                    && !gen.aggressive(SymbolId(symbol), side.opposite(), Tif::Ioc)
                {
                    // Both sides of that book are empty: nothing to take.
                    gen.passive_gtc(SymbolId(symbol), side);
                }
            }
            Kind::Cancel => gen.cancel_random(),
            Kind::Move => gen.move_random(),
        }
    }
    gen.stats.resting_end = gen.live.len();
    Workload {
        config: config.clone(),
        symbols,
        setup,
        stream: gen.commands,
        setup_ops,
        stream_ops: gen.ops,
        order_refs: gen.orders.len(),
        stats: gen.stats,
    }
}

/// The kind a draw in `0..1000` picks under `mix`.
fn drawn_kind(draw: u32, mix: &Mix) -> Kind {
    if draw < mix.gtc_permille {
        Kind::Gtc
    } else if draw < mix.gtc_permille + mix.ioc_permille {
        Kind::Ioc
    } else if draw < mix.gtc_permille + mix.ioc_permille + mix.cancel_permille {
        Kind::Cancel
    } else {
        Kind::Move
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Gtc,
    Ioc,
    Cancel,
    Move,
}

/// The model's view of one order.
#[derive(Clone, Copy, Debug)]
struct ModelOrder {
    symbol: SymbolId,
    side: Side,
    price_ticks: i64,
    qty_total: Qty,
    leaves: Qty,
    account: AccountId,
    /// Client id number currently naming the order (a move gives it a new one, as FIX does).
    cl_id: u64,
    /// Index in `Generator::live`, or `u32::MAX` when not resting.
    live_idx: u32,
}

/// One side of one modelled book: price → queue of orders, oldest first.
type Ladder = BTreeMap<i64, VecDeque<OrderRef>>;

#[derive(Default)]
struct ModelBook {
    bids: Ladder,
    asks: Ladder,
}

impl ModelBook {
    fn side(&self, side: Side) -> &Ladder {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }

    fn side_mut(&mut self, side: Side) -> &mut Ladder {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    fn best(&self, side: Side) -> Option<i64> {
        match side {
            Side::Buy => self.bids.keys().next_back().copied(),
            Side::Sell => self.asks.keys().next().copied(),
        }
    }

    /// Levels of `side` in priority order (best first).
    fn levels(&self, side: Side) -> Box<dyn Iterator<Item = (&i64, &VecDeque<OrderRef>)> + '_> {
        match side {
            Side::Buy => Box::new(self.bids.iter().rev()),
            Side::Sell => Box::new(self.asks.iter()),
        }
    }
}

struct Generator {
    rng: SmallRng,
    band_levels: i64,
    ioc_sweep: Sweep,
    takers_within_limit: bool,
    accounts: u32,
    books: Vec<ModelBook>,
    orders: Vec<ModelOrder>,
    live: Vec<OrderRef>,
    next_cl_id: u64,
    seq: u64,
    commands: Vec<Command>,
    ops: Vec<Op>,
    /// Off during setup: `stats` counts the measured stream only.
    counting: bool,
    stats: GenStats,
    /// Scratch: accounts of the makers an aggressor will meet.
    maker_accounts: Vec<AccountId>,
}

impl Generator {
    fn new(config: &GenConfig) -> Generator {
        let expected_orders = config.resting_orders + config.commands / 4;
        Generator {
            rng: SmallRng::seed_from_u64(config.seed),
            band_levels: i64::from(config.band_levels()),
            ioc_sweep: config.mix.ioc_sweep,
            takers_within_limit: config.takers_within_limit,
            accounts: config.accounts,
            books: (0..config.symbols).map(|_| ModelBook::default()).collect(),
            orders: Vec::with_capacity(expected_orders),
            live: Vec::with_capacity(config.resting_orders + config.resting_orders / 10),
            next_cl_id: 1,
            seq: 0,
            commands: Vec::with_capacity(config.resting_orders),
            ops: Vec::with_capacity(config.resting_orders),
            counting: false,
            stats: GenStats { price_ticks_min: i64::MAX, price_ticks_max: i64::MIN, ..GenStats::default() },
            maker_accounts: Vec::new(),
        }
    }

    fn random_side(&mut self) -> Side {
        if self.rng.gen::<bool>() {
            Side::Buy
        } else {
            Side::Sell
        }
    }

    fn random_qty(&mut self) -> Qty {
        self.rng.gen_range(1..=100)
    }

    fn cl_ord_id(&mut self) -> (u64, ClOrdId) {
        let n = self.next_cl_id;
        self.next_cl_id += 1;
        (n, cl_ord_id(n))
    }

    fn emit(&mut self, kind: CommandKind, op: Op) {
        self.seq += 1;
        let header = CommandHeader { seq: self.seq, ts: self.seq * TS_STEP_NS };
        self.commands.push(Command { header, kind });
        self.ops.push(op);
        let price = match op {
            Op::Limit { price_ticks, .. } | Op::Move { price_ticks, .. } => price_ticks,
            Op::Cancel { .. } => return,
        };
        self.stats.price_ticks_min = self.stats.price_ticks_min.min(price);
        self.stats.price_ticks_max = self.stats.price_ticks_max.max(price);
    }

    /// A non-crossing GTC order at a uniform price in the band on its own side of the mid,
    /// pulled back behind the opposite best if that has crossed the mid.
    fn passive_gtc(&mut self, symbol: SymbolId, side: Side) {
        let offset = self.rng.gen_range(0..self.band_levels);
        let book = &self.books[symbol.index()];
        let price = match side {
            Side::Buy => {
                let p = MID_TICKS - 1 - offset;
                book.best(Side::Sell).map_or(p, |ask| p.min(ask - 1))
            }
            Side::Sell => {
                let p = MID_TICKS + 1 + offset;
                book.best(Side::Buy).map_or(p, |bid| p.max(bid + 1))
            }
        };
        let qty = self.random_qty();
        let account = self.rng.gen_range(0..self.accounts);
        if self.counting {
            self.stats.gtc_passive += 1;
        }
        self.new_limit(symbol, side, price, qty, AccountId(account), Tif::Gtc);
    }

    /// An order that crosses: an IOC, or a GTC that trades and (unless
    /// `takers_within_limit`) rests the remainder.
    /// Returns false (emitting nothing) when the opposite side is empty.
    fn aggressive(&mut self, symbol: SymbolId, side: Side, tif: Tif) -> bool {
        let book = &self.books[symbol.index()];
        if book.side(side.opposite()).is_empty() {
            return false;
        }
        let sweep = match tif {
            Tif::Ioc => self.ioc_sweep,
            // A crossing GTC takes one or two makers, then rests its remainder.
            _ => Sweep::Makers { lo: 1, hi: 2 },
        };
        // Walk the opposite side in priority order to find the limit price and the quantity
        // that takes exactly the chosen makers or levels.
        let (take, hi) = match sweep {
            Sweep::Makers { lo, hi } | Sweep::Levels { lo, hi } => (lo, hi),
        };
        let take = self.rng.gen_range(take..=hi);
        let book = &self.books[symbol.index()];
        let (mut limit, mut qty_sum, mut last_leaves, mut taken) = (0i64, 0u64, 0u64, 0u32);
        'walk: for (&price, queue) in book.levels(side.opposite()) {
            if let Sweep::Levels { .. } = sweep {
                limit = price;
                for &o in queue {
                    last_leaves = self.orders[o as usize].leaves;
                    qty_sum += last_leaves;
                }
                taken += 1;
                if taken == take {
                    break 'walk;
                }
            } else {
                for &o in queue {
                    limit = price;
                    last_leaves = self.orders[o as usize].leaves;
                    qty_sum += last_leaves;
                    taken += 1;
                    if taken == take {
                        break 'walk;
                    }
                }
            }
        }
        // Past the limit: a GTC always (it rests its remainder), an IOC one time in four (its
        // rest is canceled). Otherwise exactly what it takes, or part of the last order.
        let past_limit = !self.takers_within_limit && (tif == Tif::Gtc || self.rng.gen_range(0..4u32) == 0);
        let qty = if past_limit {
            qty_sum + self.rng.gen_range(1..=50)
        } else if self.rng.gen::<bool>() {
            qty_sum
        } else {
            qty_sum - self.rng.gen_range(0..last_leaves)
        };
        let account = self.taker_account(symbol, side, limit, qty);
        if self.counting {
            match tif {
                Tif::Ioc => self.stats.ioc += 1,
                _ => self.stats.gtc_marketable += 1,
            }
        }
        self.new_limit(symbol, side, limit, qty, account, tif);
        true
    }

    /// An account that owns none of the makers an order would meet (see the module docs).
    fn taker_account(&mut self, symbol: SymbolId, side: Side, limit: i64, qty: Qty) -> AccountId {
        self.maker_accounts.clear();
        let book = &self.books[symbol.index()];
        let mut left = qty;
        'walk: for (&price, queue) in book.levels(side.opposite()) {
            if !crosses(side, limit, price) {
                break;
            }
            for &o in queue {
                let maker = &self.orders[o as usize];
                self.maker_accounts.push(maker.account);
                left = left.saturating_sub(maker.leaves);
                if left == 0 {
                    break 'walk;
                }
            }
        }
        // Rejection sampling terminates fast: a sweep meets a few dozen makers at most,
        // against 1,000 accounts by default. The scan after it is the guarantee.
        for _ in 0..64 {
            let a = AccountId(self.rng.gen_range(0..self.accounts));
            if !self.maker_accounts.contains(&a) {
                return a;
            }
        }
        (0..self.accounts)
            .map(AccountId)
            .find(|a| !self.maker_accounts.contains(a))
            .expect("more makers in one sweep than accounts: raise GenConfig::accounts")
    }

    /// Emits a new limit order and applies it to the model: match, then rest (GTC) or drop
    /// the rest (IOC).
    fn new_limit(
        &mut self,
        symbol: SymbolId,
        side: Side,
        price_ticks: i64,
        qty: Qty,
        account: AccountId,
        tif: Tif,
    ) {
        let order = self.orders.len() as OrderRef;
        let (cl_num, cl) = self.cl_ord_id();
        let price_units = price_ticks * TICK_UNITS;
        let mut new = NewOrder::limit(account, symbol, cl, side, price_units, qty);
        new.tif = tif;
        self.emit(CommandKind::New(new), Op::Limit { symbol, order, account, side, price_ticks, qty, tif });
        self.orders.push(ModelOrder {
            symbol,
            side,
            price_ticks,
            qty_total: qty,
            leaves: qty,
            account,
            cl_id: cl_num,
            live_idx: u32::MAX,
        });
        let leaves = self.match_incoming(symbol, side, price_ticks, qty);
        if leaves == 0 {
            return;
        }
        match tif {
            Tif::Gtc => {
                self.orders[order as usize].leaves = leaves;
                self.rest(order);
            }
            _ => {
                if self.counting {
                    self.stats.ioc_with_rest += 1;
                }
            }
        }
    }

    /// Price-time matching against the model; returns the taker's leaves.
    fn match_incoming(&mut self, symbol: SymbolId, side: Side, limit: i64, qty: Qty) -> Qty {
        let mut left = qty;
        while left > 0 {
            let book = &mut self.books[symbol.index()];
            let Some(price) = book.best(side.opposite()) else {
                break;
            };
            if !crosses(side, limit, price) {
                break;
            }
            let ladder = book.side_mut(side.opposite());
            let queue = ladder.get_mut(&price).expect("best level exists");
            while left > 0 {
                let Some(&maker) = queue.front() else { break };
                let m = &mut self.orders[maker as usize];
                let fill = left.min(m.leaves);
                m.leaves -= fill;
                left -= fill;
                if self.counting {
                    self.stats.trades += 1;
                    self.stats.traded_qty += fill;
                }
                if m.leaves == 0 {
                    queue.pop_front();
                    let idx = m.live_idx;
                    m.live_idx = u32::MAX;
                    unlive(&mut self.live, &mut self.orders, idx);
                }
            }
            if queue.is_empty() {
                ladder.remove(&price);
            }
        }
        left
    }

    /// Puts `order` at the back of its price level and into the live set.
    fn rest(&mut self, order: OrderRef) {
        let o = self.orders[order as usize];
        let ladder = self.books[o.symbol.index()].side_mut(o.side);
        ladder.entry(o.price_ticks).or_default().push_back(order);
        let levels = ladder.len();
        self.orders[order as usize].live_idx = self.live.len() as u32;
        self.live.push(order);
        self.stats.resting_peak = self.stats.resting_peak.max(self.live.len());
        self.stats.levels_per_side_peak = self.stats.levels_per_side_peak.max(levels);
    }

    /// Takes `order` out of its price level and the live set.
    fn unrest(&mut self, order: OrderRef) {
        let o = self.orders[order as usize];
        let ladder = self.books[o.symbol.index()].side_mut(o.side);
        let queue = ladder.get_mut(&o.price_ticks).expect("resting order's level exists");
        let pos = queue.iter().position(|&x| x == order).expect("resting order is queued");
        queue.remove(pos);
        if queue.is_empty() {
            ladder.remove(&o.price_ticks);
        }
        self.orders[order as usize].live_idx = u32::MAX;
        unlive(&mut self.live, &mut self.orders, o.live_idx);
    }

    fn random_live(&mut self) -> OrderRef {
        self.live[self.rng.gen_range(0..self.live.len())]
    }

    fn cancel_random(&mut self) {
        let order = self.random_live();
        let o = self.orders[order as usize];
        self.unrest(order);
        if self.counting {
            self.stats.cancels += 1;
        }
        self.emit(
            CommandKind::Cancel(CancelOrder {
                account: o.account,
                symbol: o.symbol,
                id: cl_ord_id(o.cl_id),
                request_id: None,
            }),
            Op::Cancel { symbol: o.symbol, order },
        );
    }

    /// Moves a random live order by up to [`MOVE_TICKS_MAX`] ticks, staying in the band and
    /// behind the opposite best so the move never trades (exchange-core's moves are passive
    /// re-quotes too; takers are the IOC and marketable GTC orders).
    fn move_random(&mut self) {
        let order = self.random_live();
        let o = self.orders[order as usize];
        let delta = self.rng.gen_range(1..=MOVE_TICKS_MAX);
        let delta = if self.rng.gen::<bool>() { delta } else { -delta };
        let book = &self.books[o.symbol.index()];
        let (lo, hi) = match o.side {
            Side::Buy => {
                let hi = book.best(Side::Sell).map_or(MID_TICKS - 1, |ask| ask - 1);
                (MID_TICKS - self.band_levels, hi)
            }
            Side::Sell => {
                let lo = book.best(Side::Buy).map_or(MID_TICKS + 1, |bid| bid + 1);
                (lo, MID_TICKS + self.band_levels)
            }
        };
        let mut price = (o.price_ticks + delta).clamp(lo.min(hi), hi);
        if price == o.price_ticks {
            // Pinned at an edge: step away from the spread, which can never cross.
            price = match o.side {
                Side::Buy => o.price_ticks - 1,
                Side::Sell => o.price_ticks + 1,
            };
        }
        self.unrest(order);
        let (cl_num, new_id) = self.cl_ord_id();
        {
            let m = &mut self.orders[order as usize];
            m.price_ticks = price;
            m.cl_id = cl_num;
        }
        self.rest(order);
        if self.counting {
            self.stats.moves += 1;
        }
        self.emit(
            CommandKind::Replace(ReplaceOrder {
                account: o.account,
                symbol: o.symbol,
                orig_id: cl_ord_id(o.cl_id),
                id: new_id,
                price: Some(PriceUnits(price * TICK_UNITS)),
                qty: o.qty_total,
            }),
            Op::Move { symbol: o.symbol, order, price_ticks: price, qty: o.qty_total },
        );
    }
}

/// Whether a `side` order limited at `limit` trades against a resting order at `price`.
fn crosses(side: Side, limit: i64, price: i64) -> bool {
    match side {
        Side::Buy => price <= limit,
        Side::Sell => price >= limit,
    }
}

/// Removes the entry at `idx` from the live set by swap-remove, fixing the moved order's index.
fn unlive(live: &mut Vec<OrderRef>, orders: &mut [ModelOrder], idx: u32) {
    let idx = idx as usize;
    live.swap_remove(idx);
    if let Some(&moved) = live.get(idx) {
        orders[moved as usize].live_idx = idx as u32;
    }
}

/// The client order id for number `n`: its decimal digits, formatted without allocating
/// (setup of a 1M-order book builds a million of them).
pub fn cl_ord_id(n: u64) -> ClOrdId {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut v = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    ClOrdId::from_bytes(&buf[i..]).expect("1..=20 digits fit a ClOrdId")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(mix: Mix, symbols: u32) -> Workload {
        generate(&GenConfig::new(mix, symbols, 1_000, 20_000, 7))
    }

    #[test]
    fn same_seed_same_stream() {
        let a = small(Mix::exchange_core(), 1);
        let b = small(Mix::exchange_core(), 1);
        assert_eq!(a.stream, b.stream);
        assert_eq!(a.stream_ops, b.stream_ops);
    }

    #[test]
    fn sequence_is_gapless_from_one() {
        let w = small(Mix::sweep_heavy(), 3);
        for (i, c) in w.setup.iter().chain(&w.stream).enumerate() {
            assert_eq!(c.header.seq, i as u64 + 1);
        }
    }

    #[test]
    fn mix_is_close_to_exchange_core() {
        let w = small(Mix::exchange_core(), 1);
        let s = &w.stats;
        let n = w.stream.len() as f64;
        let pct = |x: u64| 100.0 * x as f64 / n;
        assert!((pct(s.moves) - 82.0).abs() < 2.0, "{s:?}");
        assert!((pct(s.ioc) - 3.0).abs() < 1.0, "{s:?}");
        assert!((pct(s.gtc_passive + s.gtc_marketable) - 9.0).abs() < 2.0, "{s:?}");
        assert!((pct(s.cancels) - 6.0).abs() < 2.0, "{s:?}");
        assert!(s.trades > 0);
    }

    #[test]
    fn book_size_is_held() {
        for mix in [Mix::exchange_core(), Mix::sweep_heavy(), Mix::cancel_heavy()] {
            let w = small(mix, 10);
            let end = w.stats.resting_end;
            assert!((900..=1_100).contains(&end), "{}: {end}", mix.name);
        }
    }

    #[test]
    fn takers_within_limit_never_rest() {
        let w = small(Mix::sweep_heavy(), 1);
        assert_eq!(w.stats.ioc_with_rest, 0);
        let mut config = GenConfig::new(Mix::sweep_heavy(), 1, 1_000, 20_000, 7);
        config.takers_within_limit = false;
        assert!(generate(&config).stats.ioc_with_rest > 0);
    }

    #[test]
    fn cl_ord_ids_are_decimal() {
        assert_eq!(cl_ord_id(0).as_str(), "0");
        assert_eq!(cl_ord_id(1_234_567).as_str(), "1234567");
        assert_eq!(cl_ord_id(u64::MAX).as_str(), "18446744073709551615");
    }
}
