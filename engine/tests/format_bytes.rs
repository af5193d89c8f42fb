//! The journal and snapshot bytes of a fixed session, pinned.
//!
//! The account, symbol and order ids were plain integers before they became newtypes; the codec
//! writes their inner integers, so a journal or snapshot written before that change must read
//! the same after it. The hex below was produced by the code as it stood before the newtypes
//! (commit da066ef); any change to the bytes of a command, an event or a snapshot fails here.
//!
//! The ids are chosen so each byte of a field is distinct (`0x0102_0304`), which shows the
//! width, the order and the endianness of every id field, not only that the value round-trips.

use engine::codec::{COMMAND_ENCODED_LEN_MAX, EVENT_ENCODED_LEN_MAX};
use engine::{
    AccountId, CancelOrder, ClOrdId, Command, CommandHeader, CommandKind, Engine, EngineConfig, Event,
    NewOrder, PriceUnits, ReplaceOrder, Side, SymbolId, Tif, PRICE_UNITS_PER_ONE,
};

const CENT: i64 = PRICE_UNITS_PER_ONE / 100;

fn id(s: &str) -> ClOrdId {
    ClOrdId::from_str(s).unwrap()
}

/// Two accounts whose ids have four distinct bytes each, on the second symbol.
fn session() -> Vec<CommandKind> {
    let maker = AccountId::from(0x0102_0304u32);
    let taker = AccountId::from(0x0A0B_0C0Du32);
    let eth = SymbolId::from(1u32);
    let mut iceberg = NewOrder::limit(maker, eth, id("m1"), Side::Sell, 101 * CENT, 10);
    iceberg.display_qty = Some(4);
    let mut gtd = NewOrder::limit(maker, eth, id("m2"), Side::Buy, 99 * CENT, 5);
    gtd.tif = Tif::Gtd;
    gtd.expire_ts = Some(1_000_000);
    let mut stop = NewOrder::market(taker, eth, id("s1"), Side::Buy, 2);
    stop.stop_price = Some(PriceUnits(101 * CENT));
    vec![
        CommandKind::New(iceberg),
        CommandKind::New(gtd),
        CommandKind::New(NewOrder::limit(maker, eth, id("m3"), Side::Sell, 102 * CENT, 7)),
        CommandKind::New(stop),
        CommandKind::New(NewOrder::limit(taker, eth, id("t1"), Side::Buy, 101 * CENT, 3)),
        CommandKind::Replace(ReplaceOrder {
            account: maker,
            symbol: eth,
            orig_id: id("m3"),
            id: id("m4"),
            price: Some(PriceUnits(103 * CENT)),
            qty: 6,
        }),
        CommandKind::Cancel(CancelOrder {
            account: taker,
            symbol: SymbolId::from(0u32),
            id: id("zz"),
            request_id: None,
        }),
        CommandKind::Halt { symbol: eth },
        CommandKind::Resume { symbol: eth },
        CommandKind::CancelAll { account: taker, symbol: Some(eth) },
        CommandKind::CancelAll { account: taker, symbol: None },
        CommandKind::New(NewOrder::limit(taker, SymbolId::from(2u32), id("t2"), Side::Buy, 5 * CENT, 1)),
    ]
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs the session; returns the hex of each command, of each event and of the final snapshot.
fn run() -> (Vec<String>, Vec<String>, String) {
    let mut engine = Engine::new(EngineConfig::default());
    let (mut commands, mut events) = (Vec::new(), Vec::new());
    for (i, kind) in session().into_iter().enumerate() {
        let seq = i as u64 + 1;
        let command = Command { header: CommandHeader { seq, ts: seq * 10 }, kind };
        let mut buf = [0u8; COMMAND_ENCODED_LEN_MAX];
        let len = command.encode(&mut buf);
        commands.push(hex(&buf[..len]));
        let mut sink: Vec<Event> = Vec::new();
        engine.process(&command, &mut sink);
        for ev in &sink {
            let mut buf = [0u8; EVENT_ENCODED_LEN_MAX];
            let len = ev.encode(&mut buf);
            events.push(hex(&buf[..len]));
        }
    }
    let mut snapshot = Vec::new();
    engine.write_snapshot(&mut snapshot);
    (commands, events, hex(&snapshot))
}

/// Every command of the session, encoded.
const COMMANDS: [&str; 12] = [
    "0101000000000000000a000000000000000403020101000000026d31010100000240230506000000000a000000000000000400000000000000",
    "01020000000000000014000000000000000403020101000000026d320001030004c09ee60500000000050000000000000040420f0000000000",
    "0103000000000000001e000000000000000403020101000000026d33010100000080651406000000000700000000000000",
    "01040000000000000028000000000000000d0c0b0a010000000273310000010001000000000000000002000000000000004023050600000000",
    "01050000000000000032000000000000000d0c0b0a01000000027431000100000040230506000000000300000000000000",
    "0306000000000000003c000000000000000403020101000000026d33026d34010600000000000000c0a7230600000000",
    "02070000000000000046000000000000000d0c0b0a00000000027a7a",
    "050800000000000000500000000000000001000000",
    "0609000000000000005a0000000000000001000000",
    "040a0000000000000064000000000000000d0c0b0a01000000",
    "040b000000000000006e000000000000000d0c0b0affffffff",
    "010c0000000000000078000000000000000d0c0b0a020000000274320001000000404b4c00000000000100000000000000",
];

/// Every event the session produced, encoded.
const EVENTS: [&str; 14] = [
    "01010000000000000001000000000000000a0000000000000004030201026d310100000001000000000000000165000000000000000a0000000000000000020400000000000000",
    "0102000000000000000200000000000000140000000000000004030201026d3201000000020000000000000000630000000000000005000000000000000300",
    "01030000000000000003000000000000001e0000000000000004030201026d3301000000030000000000000001660000000000000007000000000000000000",
    "010400000000000000040000000000000028000000000000000d0c0b0a027331010000000400000000000000000000000000000000020000000000000001016500000000000000",
    "010500000000000000050000000000000032000000000000000d0c0b0a02743101000000050000000000000000650000000000000003000000000000000000",
    "02060000000000000005000000000000003200000000000000010000006500000000000000030000000000000004030201026d31010000000000000007000000000000000d0c0b0a0274310500000000000000000000000000000000",
    "070700000000000000050000000000000032000000000000000d0c0b0a027331010000000400000000000000",
    "02080000000000000005000000000000003200000000000000010000006500000000000000010000000000000004030201026d31010000000000000006000000000000000d0c0b0a0273310400000000000000010000000000000000",
    "02090000000000000005000000000000003200000000000000010000006500000000000000010000000000000004030201026d31010000000000000005000000000000000d0c0b0a0273310400000000000000000000000000000000",
    "050a0000000000000006000000000000003c0000000000000004030201026d33026d34010000000300000000000000670000000000000006000000000000000600000000000000",
    "040b00000000000000070000000000000046000000000000000d0c0b0a027a7a0000000004",
    "080c00000000000000080000000000000050000000000000000100000001",
    "080d0000000000000009000000000000005a000000000000000100000000",
    "010e000000000000000c0000000000000078000000000000000d0c0b0a02743202000000060000000000000000050000000000000001000000000000000000",
];

/// The snapshot after the session: two resting orders of one account, one of the other.
const SNAPSHOT: &str = concat!(
    "4558534e4150303107000000000000000f000000000000000c0000000000000078000000000000000300000007000000",
    "4254432d55534440420f0000000000010000000000000000000000000000000000000000000000000000000000000000",
    "00070000004554482d55534440420f000000000001000000000000000165000000000000000001000000000000000200",
    "000000000000040302010001030000630000000000000000000000000000000500000000000000050000000000000000",
    "00000000000000000000000000000040420f0000000000020000006d3202000000000000000100000000000000040302",
    "010101000000650000000000000000000000000000000500000000000000030000000000000005000000000000000400",
    "0000000000000000000000000000020000006d3103000000000000000403020101010000006700000000000000000000",
    "000000000006000000000000000600000000000000000000000000000000000000000000000000000000000000020000",
    "006d340000000000000000040000004141504c40420f0000000000010000000000000000000100000000000000060000",
    "00000000000d0c0b0a000100000005000000000000000000000000000000010000000000000001000000000000000000",
    "0000000000000000000000000000000000000000000002000000743200000000000000000000000000000000",
);

#[test]
fn commands_events_and_snapshot_keep_their_pre_newtype_bytes() {
    let (commands, events, snapshot) = run();
    assert_eq!(commands, COMMANDS);
    assert_eq!(events, EVENTS);
    assert_eq!(snapshot, SNAPSHOT);
}

#[test]
fn the_pinned_bytes_decode_to_the_session_and_restore_the_engine() {
    let from_hex = |s: &str| -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    };
    for (i, kind) in session().into_iter().enumerate() {
        let decoded = Command::decode(&from_hex(COMMANDS[i])).unwrap();
        assert_eq!(decoded.kind, kind, "command {i}");
    }
    // A taker id read back as the newtype, from the bytes the old code wrote.
    match Event::decode(&from_hex(EVENTS[5])).unwrap().kind {
        engine::EventKind::Trade { maker_account, taker_account, symbol, maker_order_id, .. } => {
            assert_eq!(maker_account, AccountId::from(0x0102_0304u32));
            assert_eq!(taker_account, AccountId::from(0x0A0B_0C0Du32));
            assert_eq!(symbol, SymbolId::from(1u32));
            assert_eq!(maker_order_id, engine::OrderId::from(1u64));
        }
        other => panic!("event 5 is a trade, got {other:?}"),
    }
    let restored = Engine::from_snapshot(EngineConfig::default(), &from_hex(SNAPSHOT)).unwrap();
    let mut again = Vec::new();
    restored.write_snapshot(&mut again);
    assert_eq!(hex(&again), SNAPSHOT);
}

/// `PRINT_FIXTURE=1 cargo test -p engine --test format_bytes -- --nocapture` prints the bytes
/// (how the constants above were made).
#[test]
fn print_for_fixture() {
    if std::env::var_os("PRINT_FIXTURE").is_some() {
        let (c, e, s) = run();
        println!("COMMANDS {c:#?}\nEVENTS {e:#?}\nSNAPSHOT {s:?}");
    }
}
