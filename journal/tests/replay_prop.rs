//! Property: replaying a journal gives back the original run, event for event and book for book.
//!
//! Random command streams (every order type and TIF, stops, icebergs, post-only, GTD expiry,
//! cancels and replaces aimed at a small pool of ids so they often hit live orders, mass
//! cancels, halts) go through a [`DurableEngine`] writing small segments and two snapshots
//! into a temporary directory, and through a plain [`Engine`]. Then:
//! - the durable run's events equal the plain run's;
//! - the command journal read back decodes to the same commands, and a fresh engine fed from
//!   it produces the same events, which equal the event journal's records;
//! - re-opening the directory (snapshot + command tail + event check) gives the same books and
//!   stops, and resumes at the next command seq.
//!
//!
//! Each case journals its events on the matching thread, on the event-journal thread
//! (`DurableConfig::event_thread`) or derives them again from the command journal with a
//! follower engine (`DurableConfig::derive_events`), drawn per case; the command journal is in
//! format version 4 (fixed-layout command entries) in every case. A fourth mode derives the events
//! too but has the command journal written before the engine gets each command
//! (`DurableEngine::split_command_journal`, as `serve`'s router writes it with `journal.commands
//! = "router"`).
//!
//! A second property plays a crash of the event journal's thread: the event journal (written off
//! the matching thread, so it may trail the engine) is cut at a random event, as a crash with
//! events still in the ring leaves it. Re-opening must regenerate exactly the missing events,
//! leave an event journal equal to the live run's events, and give the same books, whatever
//! snapshots the cut made unusable.
//!
//! A third property writes the journals the way the runner does (format version 3): commands
//! staged in batches of random sizes (up to several frames each) and published at each batch's
//! end ([`DurableEngine::process_staged`], [`DurableEngine::publish_batch`]); after every
//! command it checks that the event journal never holds an event whose command the command
//! journal does not, and at the end that replay and recovery give the live run's events and
//! books. The same batches then go through `Processor::process_batch` (the runner's path,
//! the engine looking ahead), with background snapshots falling inside them.
//!
//! `PROPTEST_CASES=n` changes the case count (default 32: each case writes files).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use engine::{
    AccountId, CancelOrder, ClOrdId, Command, CommandHeader, CommandKind, Engine, EngineConfig, Event,
    NewOrder, OrdType, Qty, ReplaceOrder, Side, StpMode, SymbolId, SymbolSpec, Tif, PRICE_UNITS_PER_ONE,
    SYMBOL_UNKNOWN,
};
use journal::{CommandJournal, DurableConfig, DurableEngine, JournalConfig, JournalReader};
use proptest::prelude::*;
use proptest::test_runner::Config;

const TICK_UNITS: i64 = PRICE_UNITS_PER_ONE / 100;
const SYMBOLS: [SymbolId; 2] = [SymbolId(0), SymbolId(1)];

fn engine_config() -> EngineConfig {
    EngineConfig {
        symbols: vec![SymbolSpec::new("LOT1", TICK_UNITS, 1), SymbolSpec::new("LOT10", TICK_UNITS, 10)],
        orders_max: 4_096,
        levels_per_side_max: 256,
    }
}

fn lot(symbol: SymbolId) -> Qty {
    if symbol == SymbolId(1) {
        10
    } else {
        1
    }
}

fn id(n: u8) -> ClOrdId {
    ClOrdId::from_str(&format!("o{n}")).expect("short id")
}

/// 100.00 + k × 0.05: few prices, so levels collect several orders and orders cross often.
fn px(k: i8) -> i64 {
    100 * PRICE_UNITS_PER_ONE + i64::from(k) * 5 * TICK_UNITS
}

#[derive(Clone, Copy, Debug)]
enum Flavor {
    Gtc,
    Market,
    Ioc,
    Fok,
    Gtd(u16),
    StopMarket(i8),
    StopLimit(i8),
    Iceberg(u8),
    PostOnly,
}

#[derive(Clone, Debug)]
enum Op {
    New {
        account: AccountId,
        symbol: SymbolId,
        id: u8,
        side: Side,
        flavor: Flavor,
        px: i8,
        lots: u8,
        stp: StpMode,
    },
    Cancel {
        account: AccountId,
        symbol: SymbolId,
        id: u8,
    },
    Replace {
        account: AccountId,
        symbol: SymbolId,
        orig: u8,
        id: u8,
        px: Option<i8>,
        lots: u8,
    },
    CancelAll {
        account: AccountId,
        all: bool,
    },
    Halt {
        symbol: SymbolId,
        halted: bool,
    },
}

fn flavor() -> impl Strategy<Value = Flavor> {
    prop_oneof![
        30 => Just(Flavor::Gtc),
        8 => Just(Flavor::Market),
        8 => Just(Flavor::Ioc),
        6 => Just(Flavor::Fok),
        12 => (1u16..3_000).prop_map(Flavor::Gtd),
        5 => (-6i8..=6).prop_map(Flavor::StopMarket),
        5 => (-6i8..=6).prop_map(Flavor::StopLimit),
        8 => (1u8..=3).prop_map(Flavor::Iceberg),
        8 => Just(Flavor::PostOnly),
    ]
}

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Buy), Just(Side::Sell)]
}

fn stp() -> impl Strategy<Value = StpMode> {
    prop_oneof![6 => Just(StpMode::CancelNewest), 2 => Just(StpMode::CancelOldest), 2 => Just(StpMode::CancelBoth)]
}

fn op() -> impl Strategy<Value = Op> {
    let account = (0u32..3).prop_map(AccountId);
    let symbol = prop_oneof![48 => Just(SymbolId(0)), 48 => Just(SymbolId(1)), 4 => Just(SYMBOL_UNKNOWN)];
    prop_oneof![
        60 => (account.clone(), symbol.clone(), 0u8..24, side(), flavor(), -6i8..=6, 0u8..=8, stp()).prop_map(
            |(account, symbol, id, side, flavor, px, lots, stp)| Op::New { account, symbol, id, side, flavor, px, lots, stp }
        ),
        18 => (account.clone(), symbol.clone(), 0u8..24).prop_map(|(account, symbol, id)| Op::Cancel { account, symbol, id }),
        16 => (account.clone(), symbol, 0u8..24, 0u8..24, proptest::option::of(-6i8..=6), 0u8..=8).prop_map(
            |(account, symbol, orig, id, px, lots)| Op::Replace { account, symbol, orig, id, px, lots }
        ),
        3 => (account, any::<bool>()).prop_map(|(account, all)| Op::CancelAll { account, all }),
        3 => (0u32..2, any::<bool>()).prop_map(|(symbol, halted)| Op::Halt { symbol: SymbolId(symbol), halted }),
    ]
}

/// Time steps between commands; the long ones make GTD orders expire.
fn dt() -> impl Strategy<Value = u64> {
    prop_oneof![7 => 0u64..=5, 2 => 10u64..=300, 1 => 1_000u64..=4_000]
}

fn commands(ops: &[(u64, Op)]) -> Vec<Command> {
    let mut ts = 0;
    ops.iter()
        .enumerate()
        .map(|(i, (dt, op))| {
            ts += dt;
            let kind = match *op {
                Op::New { account, symbol, id: n, side, flavor, px: k, lots, stp } => {
                    let qty = Qty::from(lots) * lot(SymbolId(symbol.0 % 2));
                    let mut new = NewOrder::limit(account, symbol, id(n), side, px(k), qty);
                    new.stp = stp;
                    match flavor {
                        Flavor::Gtc => {}
                        Flavor::Market => new = NewOrder { ord_type: OrdType::Market, tif: Tif::Ioc, ..new },
                        Flavor::Ioc => new.tif = Tif::Ioc,
                        Flavor::Fok => new.tif = Tif::Fok,
                        Flavor::Gtd(after) => {
                            new.tif = Tif::Gtd;
                            new.expire_ts = Some(ts + u64::from(after));
                        }
                        Flavor::StopMarket(s) => {
                            new = NewOrder { ord_type: OrdType::Market, tif: Tif::Ioc, ..new };
                            new.stop_price = Some(engine::PriceUnits(px(s)));
                        }
                        Flavor::StopLimit(s) => new.stop_price = Some(engine::PriceUnits(px(s))),
                        Flavor::Iceberg(d) => {
                            new.display_qty = Some(Qty::from(d) * lot(SymbolId(symbol.0 % 2)))
                        }
                        Flavor::PostOnly => new.post_only = true,
                    }
                    CommandKind::New(new)
                }
                Op::Cancel { account, symbol, id: n } => {
                    CommandKind::Cancel(CancelOrder { account, symbol, id: id(n), request_id: None })
                }
                Op::Replace { account, symbol, orig, id: n, px: k, lots } => {
                    CommandKind::Replace(ReplaceOrder {
                        account,
                        symbol,
                        orig_id: id(orig),
                        id: id(n),
                        price: k.map(|k| engine::PriceUnits(px(k))),
                        qty: Qty::from(lots) * lot(SymbolId(symbol.0 % 2)),
                    })
                }
                Op::CancelAll { account, all } => {
                    CommandKind::CancelAll { account, symbol: if all { None } else { Some(SymbolId(0)) } }
                }
                Op::Halt { symbol, halted: true } => CommandKind::Halt { symbol },
                Op::Halt { symbol, halted: false } => CommandKind::Resume { symbol },
            };
            Command { header: CommandHeader { seq: i as u64 + 1, ts }, kind }
        })
        .collect()
}

fn temp_dir() -> PathBuf {
    static CASE: AtomicU64 = AtomicU64::new(0);
    let n = CASE.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("replay-prop-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn durable_config(dir: &Path, mode: Mode) -> DurableConfig {
    DurableConfig {
        dir: dir.to_path_buf(),
        // Small segments so that streams roll over several of them.
        journal: JournalConfig { segment_size_bytes: 64 * 1024, ..JournalConfig::default() },
        // Background snapshots too, so they meet the explicit ones below (this found a race
        // on the shared temporary file, now fixed in `snapshot_now`).
        snapshot_every_commands: 17,
        event_thread: mode == Mode::Thread,
        derive_events: matches!(mode, Mode::Derived | Mode::BeforeRing),
    }
}

/// Opens `dir` for writing in `mode`: with [`Mode::BeforeRing`], the command journal handed
/// over, to be written by [`ahead`] before the engine sees each command.
fn open_writing(dir: &Path, mode: Mode) -> Result<(DurableEngine, Option<CommandJournal>), String> {
    let (mut durable, _) =
        DurableEngine::open(engine_config(), durable_config(dir, mode)).map_err(|e| e.to_string())?;
    let journal = match mode {
        Mode::BeforeRing => Some(durable.split_command_journal().map_err(|e| e.to_string())?),
        _ => None,
    };
    Ok((durable, journal))
}

/// Journals `cmds` before the engine gets them, when the command journal was handed over.
fn ahead(journal: &mut Option<CommandJournal>, cmds: &[Command]) -> Result<(), String> {
    journal.as_mut().map_or(Ok(()), |journal| journal.append(cmds).map_err(|e| e.to_string()))
}

/// Where a case's durable engine journals its events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// On the matching thread.
    Inline,
    /// On the event-journal thread (`DurableConfig::event_thread`).
    Thread,
    /// Derived from the command journal by a follower engine (`DurableConfig::derive_events`).
    Derived,
    /// Derived, and the command journal written before the engine gets each command
    /// (`DurableEngine::split_command_journal`), as the router writes it in `serve`.
    BeforeRing,
}

fn mode() -> impl Strategy<Value = Mode> {
    prop_oneof![Just(Mode::Inline), Just(Mode::Thread), Just(Mode::Derived), Just(Mode::BeforeRing)]
}

/// Every state a replay must reproduce: each symbol's book and untriggered stops.
fn state(engine: &Engine) -> Vec<String> {
    SYMBOLS
        .iter()
        .map(|&s| format!("{:?}\n{:?}", engine.book_snapshot(s), engine.stops_snapshot(s)))
        .collect()
}

fn check(cmds: &[Command], mode: Mode) -> Result<(), TestCaseError> {
    check_batched(cmds, mode, &[])
}

/// [`check`], the durable run staging `batches[i % len]` commands per published batch (none:
/// every command published on its own).
/// How a batched case hands its commands to the durable engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Drive {
    /// `process_staged` per command, `publish_batch` at each batch's end.
    Staged,
    /// `Processor::process_batch` per batch (the engine's look-ahead), `end_batch` after it: the
    /// runner's path.
    ProcessBatch,
}

fn check_batched(cmds: &[Command], mode: Mode, batches: &[usize]) -> Result<(), TestCaseError> {
    check_driven(cmds, mode, batches, Drive::Staged)
}

fn check_driven(cmds: &[Command], mode: Mode, batches: &[usize], drive: Drive) -> Result<(), TestCaseError> {
    let mut plain = Engine::new(engine_config());
    let mut want = Vec::new();
    for c in cmds {
        plain.process(c, &mut want);
    }

    let dir = temp_dir();
    let result = check_in(&dir, cmds, &plain, &want, mode, batches, drive);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn check_in(
    dir: &Path,
    cmds: &[Command],
    plain: &Engine,
    want: &[Event],
    mode: Mode,
    batches: &[usize],
    drive: Drive,
) -> Result<(), TestCaseError> {
    let fail = |what: &str| TestCaseError::fail(format!("{what} ({} commands)", cmds.len()));
    if drive == Drive::ProcessBatch {
        write_through_process_batch(dir, cmds, want, mode, batches)?;
    } else {
        let (mut durable, mut journal) = open_writing(dir, mode).map_err(|e| fail(&e))?;
        let mut got = Vec::new();
        // events_after[k]: events produced by commands 1..=k.
        let mut events_after = vec![0u64];
        let (mut batch_at, mut in_batch) = (0, 0);
        for (i, c) in cmds.iter().enumerate() {
            ahead(&mut journal, std::slice::from_ref(c)).map_err(|e| fail(&e))?;
            if batches.is_empty() {
                durable.process(c, &mut got).map_err(|e| fail(&e.to_string()))?;
            } else {
                durable.process_staged(c, &mut got).map_err(|e| fail(&e.to_string()))?;
                in_batch += 1;
                if in_batch == batches[batch_at % batches.len()] {
                    durable.publish_batch();
                    (batch_at, in_batch) = (batch_at + 1, 0);
                }
            }
            events_after.push(got.len() as u64);
            // Pair check of the publication order: whatever the event journal shows, the
            // command journal shows those events' commands.
            let commands_written = durable.commands_progress().written_seq();
            let events_written = durable.events_progress().written_seq();
            prop_assert!(
                events_written <= events_after[commands_written as usize],
                "event journal at {} ahead of the command journal at {} (its events end at {})",
                events_written,
                commands_written,
                events_after[commands_written as usize]
            );
            // Snapshots on this thread at fixed points, so recovery surely starts from one and
            // replays a tail.
            if i + 1 == cmds.len() / 3 || i + 1 == cmds.len() * 2 / 3 {
                durable.snapshot_now().map_err(|e| fail(&e.to_string()))?;
            }
        }
        if !batches.is_empty() {
            prop_assert!(durable.commands_progress().written_seq() <= cmds.len() as u64);
            durable.publish_batch();
        }
        prop_assert_eq!(durable.commands_progress().written_seq(), cmds.len() as u64, "all published");
        prop_assert_eq!(&got, want, "durable run differs from the plain run");
        durable.close().map_err(|e| fail(&e.to_string()))?;
        drop(journal);
    }

    // Read the journals back by hand: commands decode to the originals, a fresh engine fed from
    // them reproduces the events, and those equal the event journal's records.
    let mut replayed_cmds = Vec::new();
    for record in JournalReader::open_from_start(dir.join("commands")).map_err(|e| fail(&e.to_string()))? {
        let record = record.map_err(|e| fail(&e.to_string()))?;
        replayed_cmds.push(Command::decode(&record.payload).map_err(|e| fail(&e.to_string()))?);
    }
    prop_assert_eq!(&replayed_cmds[..], cmds, "command journal differs from the commands sent");
    let mut fresh = Engine::new(engine_config());
    let mut replayed = Vec::new();
    for c in &replayed_cmds {
        fresh.process(c, &mut replayed);
    }
    prop_assert_eq!(&replayed, want, "replayed events differ");
    prop_assert_eq!(state(&fresh), state(plain), "replayed books differ");
    let mut journaled = Vec::new();
    for record in JournalReader::open_from_start(dir.join("events")).map_err(|e| fail(&e.to_string()))? {
        let record = record.map_err(|e| fail(&e.to_string()))?;
        prop_assert_eq!(record.seq, journaled.len() as u64 + 1);
        journaled.push(Event::decode(&record.payload).map_err(|e| fail(&e.to_string()))?);
    }
    prop_assert_eq!(&journaled, want, "event journal differs");

    // Recovery: newest snapshot plus the command tail, every event checked on the way.
    let (durable, recovery) =
        DurableEngine::open(engine_config(), durable_config(dir, mode)).map_err(|e| fail(&e.to_string()))?;
    prop_assert_eq!(state(durable.engine()), state(plain), "recovered books differ");
    prop_assert_eq!(durable.next_command_seq(), cmds.len() as u64 + 1);
    prop_assert_eq!(durable.engine().next_event_seq(), want.len() as u64 + 1);
    prop_assert_eq!(recovery.events_regenerated, 0);
    if cmds.len() >= 3 {
        prop_assert!(recovery.snapshot_seq.is_some(), "recovery did not use a snapshot");
    }
    Ok(())
}

/// Writes `cmds` into `dir` the runner's way: whole batches through
/// [`engine::Processor::process_batch`] (the engine looks ahead; background snapshots fall
/// inside batches), `end_batch` after each, `snapshot_now` between batches at the same points as
/// the other drives. At each batch's end, before its publication (when only the frames that
/// filled up mid-batch are out), the event journal holds no event whose command the command
/// journal lacks.
fn write_through_process_batch(
    dir: &Path,
    cmds: &[Command],
    want: &[Event],
    mode: Mode,
    batches: &[usize],
) -> Result<(), TestCaseError> {
    use engine::Processor;
    let fail = |what: &str| TestCaseError::fail(format!("{what} ({} commands)", cmds.len()));
    // events_after[k]: events produced by commands 1..=k (from the plain run).
    let mut events_after = vec![0u64; cmds.len() + 1];
    for event in want {
        events_after[event.command_seq as usize] += 1;
    }
    for k in 1..events_after.len() {
        events_after[k] += events_after[k - 1];
    }
    let snapshot_points = [cmds.len() / 3, cmds.len() * 2 / 3];
    let (mut durable, mut journal) = open_writing(dir, mode).map_err(|e| fail(&e))?;
    let mut got = Vec::new();
    let (mut at, mut batch_at) = (0, 0);
    while at < cmds.len() {
        let size = batches.get(batch_at % batches.len().max(1)).copied().unwrap_or(1);
        batch_at += 1;
        let mut end = (at + size).min(cmds.len());
        if let Some(&point) = snapshot_points.iter().find(|&&point| point > at && point < end) {
            end = point;
        }
        ahead(&mut journal, &cmds[at..end]).map_err(|e| fail(&e))?;
        durable.process_batch(&cmds[at..end], &mut got);
        prop_assert!(!durable.health().is_failed(), "journal failed");
        let commands_written = durable.commands_progress().written_seq();
        let events_written = durable.events_progress().written_seq();
        prop_assert!(
            events_written <= events_after[commands_written as usize],
            "event journal at {} ahead of the command journal at {} (its events end at {})",
            events_written,
            commands_written,
            events_after[commands_written as usize]
        );
        durable.end_batch();
        at = end;
        if snapshot_points.contains(&at) {
            durable.snapshot_now().map_err(|e| fail(&e.to_string()))?;
        }
    }
    prop_assert_eq!(durable.commands_progress().written_seq(), cmds.len() as u64, "all published");
    prop_assert_eq!(&got[..], want, "process_batch run differs from the plain run");
    durable.close().map_err(|e| fail(&e.to_string()))?;
    drop(journal);
    Ok(())
}

/// Cuts the event journal in `dir` after at most `keep` events, as a crash leaves it: the bytes
/// from the frame holding event `keep + 1` to the end of its segment become zero, later segments
/// go (a crash loses whole frames). Returns how many events are left.
fn cut_event_journal(dir: &Path, keep: u64) -> u64 {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "journal"))
        .collect();
    segments.sort();
    let mut seen = 0u64;
    let mut cut_in = None;
    for (i, path) in segments.iter().enumerate() {
        let bytes = std::fs::read(path).unwrap();
        let mut at = journal::SEGMENT_HEADER_LEN;
        while at + journal::RECORD_HEADER_LEN <= bytes.len() {
            let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
            if len == 0 {
                break;
            }
            let kind = u16::from_le_bytes(bytes[at + 16..at + 18].try_into().unwrap());
            if kind == 0xFFFF {
                break; // end marker: the journal goes on in the next segment
            }
            let entries = u64::from(u16::from_le_bytes(bytes[at + 18..at + 20].try_into().unwrap()));
            if seen + entries > keep {
                cut_in = Some((i, at));
                break;
            }
            seen += entries;
            at += len.div_ceil(journal::RECORD_ALIGN) * journal::RECORD_ALIGN;
        }
        if cut_in.is_some() {
            break;
        }
    }
    let Some((i, at)) = cut_in else { return seen };
    let mut bytes = std::fs::read(&segments[i]).unwrap();
    bytes[at..].fill(0);
    std::fs::write(&segments[i], &bytes).unwrap();
    for later in &segments[i + 1..] {
        std::fs::remove_file(later).unwrap();
    }
    seen
}

fn check_cut(cmds: &[Command], cut_permille: u64, mode: Mode) -> Result<(), TestCaseError> {
    let mut plain = Engine::new(engine_config());
    let mut want = Vec::new();
    for c in cmds {
        plain.process(c, &mut want);
    }
    let dir = temp_dir();
    let result = check_cut_in(&dir, cmds, &plain, &want, cut_permille, mode);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn check_cut_in(
    dir: &Path,
    cmds: &[Command],
    plain: &Engine,
    want: &[Event],
    cut_permille: u64,
    mode: Mode,
) -> Result<(), TestCaseError> {
    let fail = |what: &str| TestCaseError::fail(format!("{what} ({} commands)", cmds.len()));
    {
        let (mut durable, mut journal) = open_writing(dir, mode).map_err(|e| fail(&e))?;
        let mut got = Vec::new();
        for (i, c) in cmds.iter().enumerate() {
            ahead(&mut journal, std::slice::from_ref(c)).map_err(|e| fail(&e))?;
            durable.process(c, &mut got).map_err(|e| fail(&e.to_string()))?;
            if i + 1 == cmds.len() / 2 {
                durable.snapshot_now().map_err(|e| fail(&e.to_string()))?;
            }
        }
        prop_assert_eq!(&got, want, "durable run differs from the plain run");
        durable.close().map_err(|e| fail(&e.to_string()))?;
        drop(journal);
    }
    let keep = cut_event_journal(&dir.join("events"), want.len() as u64 * cut_permille / 1000);

    let (durable, recovery) =
        DurableEngine::open(engine_config(), durable_config(dir, mode)).map_err(|e| fail(&e.to_string()))?;
    prop_assert_eq!(state(durable.engine()), state(plain), "recovered books differ");
    prop_assert_eq!(durable.engine().next_event_seq(), want.len() as u64 + 1);
    prop_assert_eq!(recovery.events.next_seq(), keep + 1, "the cut did not take");
    // Every event the cut removed is written again (when recovery starts from a snapshot, only
    // those after it are replayed, but a usable snapshot never starts after the cut).
    prop_assert_eq!(recovery.events_regenerated, want.len() as u64 - keep);
    durable.close().map_err(|e| fail(&e.to_string()))?;
    let mut journaled = Vec::new();
    for record in JournalReader::open_from_start(dir.join("events")).map_err(|e| fail(&e.to_string()))? {
        let record = record.map_err(|e| fail(&e.to_string()))?;
        journaled.push(Event::decode(&record.payload).map_err(|e| fail(&e.to_string()))?);
    }
    prop_assert_eq!(&journaled, want, "repaired event journal differs from the live run");
    Ok(())
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(32)
}

proptest! {
    #![proptest_config(Config { cases: cases(), failure_persistence: None, ..Config::default() })]

    #[test]
    fn replay_of_the_journal_is_the_original_run(
        ops in proptest::collection::vec((dt(), op()), 1..300),
        mode in mode(),
    ) {
        check(&commands(&ops), mode)?;
    }

    #[test]
    fn a_journal_written_in_batches_replays_to_the_live_run(
        ops in proptest::collection::vec((dt(), op()), 1..400),
        batches in proptest::collection::vec(prop_oneof![3 => 1usize..8, 1 => 60usize..200], 1..6),
        mode in mode(),
    ) {
        check_batched(&commands(&ops), mode, &batches)?;
        check_driven(&commands(&ops), mode, &batches, Drive::ProcessBatch)?;
    }

    #[test]
    fn a_cut_event_journal_is_regenerated_to_the_live_run(
        ops in proptest::collection::vec((dt(), op()), 1..300),
        cut_permille in 0u64..=1000,
        mode in mode(),
    ) {
        check_cut(&commands(&ops), cut_permille, mode)?;
    }
}
