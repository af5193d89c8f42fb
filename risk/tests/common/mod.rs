//! A harness that runs orders through a `RiskEngine` and a real `engine::Engine`, feeding every
//! engine event back to the risk engine, as the gateway's router does.

#![allow(dead_code)]
#![allow(clippy::inconsistent_digit_grouping)] // prices as dollars_cents: `100_00` is 100.00

use engine::{
    default_symbols, AccountId, ClOrdId, Command, CommandKind, Engine, EngineConfig, Event, NewOrder,
    PriceUnits, Qty, ReplaceOrder, Side, SymbolId,
};
use risk::{RiskConfig, RiskEngine, RiskLimits, RiskReject};

/// One cent in price units (the default symbols tick at 0.01).
pub const CENT: i64 = 1_000_000;
pub const BTC: SymbolId = SymbolId(0);

pub fn id(s: &str) -> ClOrdId {
    ClOrdId::from_str(s).unwrap()
}

pub fn limit(account: AccountId, name: &str, side: Side, cents: i64, qty: Qty) -> NewOrder {
    NewOrder::limit(account, BTC, id(name), side, cents * CENT, qty)
}

pub fn market(account: AccountId, name: &str, side: Side, qty: Qty) -> NewOrder {
    NewOrder::market(account, BTC, id(name), side, qty)
}

pub fn replace(account: AccountId, orig: &str, new: &str, cents: Option<i64>, qty: Qty) -> ReplaceOrder {
    ReplaceOrder {
        account,
        symbol: BTC,
        orig_id: id(orig),
        id: id(new),
        price: cents.map(|c| PriceUnits(c * CENT)),
        qty,
    }
}

pub struct Harness {
    pub risk: RiskEngine,
    pub engine: Engine,
    /// Commands that passed risk and wait to be processed (the inbound ring).
    pub queue: Vec<Command>,
    pub events: Vec<Event>,
    seq: u64,
}

impl Harness {
    pub fn new(limits: RiskLimits) -> Harness {
        Harness::with_config(RiskConfig { default_limits: limits, ..RiskConfig::new(default_symbols(), 4) })
    }

    pub fn with_config(config: RiskConfig) -> Harness {
        let engine = Engine::new(EngineConfig { orders_max: 4096, ..EngineConfig::default() });
        Harness {
            risk: RiskEngine::new(config).unwrap(),
            engine,
            queue: Vec::new(),
            events: Vec::new(),
            seq: 0,
        }
    }

    /// Checks a new order; on a pass queues it for the engine without processing it.
    pub fn check_new(&mut self, order: NewOrder) -> Result<(), RiskReject> {
        self.risk.check_new(&order)?;
        self.queue.push(Command::new(CommandKind::New(order)));
        Ok(())
    }

    pub fn check_replace(&mut self, order: ReplaceOrder) -> Result<(), RiskReject> {
        self.risk.check_replace(&order)?;
        self.queue.push(Command::new(CommandKind::Replace(order)));
        Ok(())
    }

    /// Queues a command that risk does not check (cancel, cancel-all).
    pub fn send_unchecked(&mut self, kind: CommandKind) {
        self.queue.push(Command::new(kind));
    }

    /// Processes `n` queued commands and feeds their events to the risk engine.
    pub fn process(&mut self, n: usize) {
        let n = n.min(self.queue.len());
        for mut command in self.queue.drain(..n).collect::<Vec<_>>() {
            self.seq += 1;
            command.header.seq = self.seq;
            command.header.ts = self.seq;
            let mut events = Vec::new();
            self.engine.process(&command, &mut events);
            for event in &events {
                self.risk.on_event(event);
            }
            self.events.extend(events);
        }
    }

    pub fn flush(&mut self) {
        self.process(usize::MAX);
    }

    /// Checks and processes at once.
    pub fn new_order(&mut self, order: NewOrder) -> Result<(), RiskReject> {
        self.check_new(order)?;
        self.flush();
        Ok(())
    }

    pub fn replace(&mut self, order: ReplaceOrder) -> Result<(), RiskReject> {
        self.check_replace(order)?;
        self.flush();
        Ok(())
    }

    pub fn cancel(&mut self, account: AccountId, name: &str) {
        self.send_unchecked(CommandKind::Cancel(engine::CancelOrder {
            account,
            symbol: BTC,
            id: id(name),
            request_id: None,
        }));
        self.flush();
    }
}
