//! The event stream the market-data benches feed (marketdata's `publisher` and `binary`, and
//! gateway's `md_desk`, which includes this file by path so all three measure the same mix).

use engine::{
    AccountId, CancelOrder, ClOrdId, Command, CommandHeader, CommandKind, Engine, EngineConfig, Event,
    NewOrder, Side, SymbolId, Tif, PRICE_UNITS_PER_ONE,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const CENT: i64 = PRICE_UNITS_PER_ONE / 100;

/// The events of `commands` seeded orders around 100.00 on three symbols: 60% passive limits,
/// 28% cancels of recent orders, 12% marketable IOCs, so the stream has adds, executes and
/// deletes in a venue-like mix.
pub fn event_stream(commands: u64) -> Vec<Event> {
    let mut rng = SmallRng::seed_from_u64(17);
    let mut engine = Engine::new(EngineConfig::default());
    let mut events = Vec::new();
    let mut sent: Vec<(AccountId, SymbolId, ClOrdId)> = Vec::new();
    for seq in 1..=commands {
        let account = AccountId(rng.gen_range(0..16));
        let symbol = SymbolId(rng.gen_range(0..3));
        let side = if rng.gen_bool(0.5) { Side::Buy } else { Side::Sell };
        let roll = rng.gen_range(0..100);
        let kind = if roll < 60 || sent.is_empty() {
            let off = rng.gen_range(1..20);
            let ticks = if side == Side::Buy { 10_000 - off } else { 10_000 + off };
            let id = ClOrdId::from_str(&format!("c{seq}")).expect("short");
            sent.push((account, symbol, id));
            CommandKind::New(NewOrder::limit(account, symbol, id, side, ticks * CENT, rng.gen_range(1..10)))
        } else if roll < 88 {
            let from = sent.len().saturating_sub(2_000);
            let (account, symbol, id) = sent[rng.gen_range(from..sent.len())];
            CommandKind::Cancel(CancelOrder { account, symbol, id, request_id: None })
        } else {
            let ticks = if side == Side::Buy { 10_010 } else { 9_990 };
            let id = ClOrdId::from_str(&format!("t{seq}")).expect("short");
            let mut order = NewOrder::limit(account, symbol, id, side, ticks * CENT, rng.gen_range(1..15));
            order.tif = Tif::Ioc;
            CommandKind::New(order)
        };
        engine.process(&Command { header: CommandHeader { seq, ts: seq * 1_000 }, kind }, &mut events);
    }
    events
}
