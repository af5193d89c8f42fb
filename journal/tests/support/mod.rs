//! What the journal's integration tests share: a seeded command flow, stamping, scratch
//! directories, and checks of a data directory's snapshots and journals.
#![allow(dead_code)] // each test file uses its own part

use std::path::{Path, PathBuf};

use engine::{
    AccountId, CancelOrder, ClOrdId, Command, CommandKind, Engine, EngineConfig, NewOrder, ReplaceOrder,
    Side, SymbolId,
};
use journal::JournalReader;
use rand::{rngs::SmallRng, Rng, SeedableRng};
use runtime::Sequencer;

/// A periodic snapshot every this many commands: never a multiple of the batch sizes used, so
/// snapshot points fall inside batches.
pub const SNAPSHOT_EVERY: u64 = 17;

/// Seeded new orders, cancels and replaces on two symbols, unstamped (seq 0).
pub fn flow(seed: u64, count: usize) -> Vec<Command> {
    let mut rng = SmallRng::seed_from_u64(seed);
    (0..count)
        .map(|_| {
            let account = AccountId(rng.gen_range(0..4));
            let symbol = SymbolId(rng.gen_range(0..2));
            let id = ClOrdId::from_str(&format!("o{}", rng.gen_range(0..60))).unwrap();
            let side = if rng.gen_bool(0.5) { Side::Buy } else { Side::Sell };
            let price = rng.gen_range(95..106) * 1_000_000;
            let new = NewOrder::limit(account, symbol, id, side, price, rng.gen_range(1..30));
            let kind = match rng.gen_range(0..10) {
                0..=5 => CommandKind::New(new),
                6 | 7 => CommandKind::Cancel(CancelOrder { account, symbol, id, request_id: None }),
                _ => CommandKind::Replace(ReplaceOrder {
                    account,
                    symbol,
                    orig_id: id,
                    id: ClOrdId::from_str(&format!("o{}", rng.gen_range(0..60))).unwrap(),
                    price: Some(engine::PriceUnits(price)),
                    qty: rng.gen_range(1..30),
                }),
            };
            Command::new(kind)
        })
        .collect()
}

/// `cmds` stamped as the runner's sequencer stamps them under a clock standing at `now_ns`.
pub fn stamped(cmds: &[Command], now_ns: u64) -> Vec<Command> {
    let mut sequencer = Sequencer::new(1);
    cmds.iter()
        .map(|cmd| {
            let mut cmd = *cmd;
            sequencer.stamp(&mut cmd, now_ns);
            cmd
        })
        .collect()
}

/// A scratch directory for `name` (removed first if a previous run left it).
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("journal-tests-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Command seqs of the snapshot files in `dir`, oldest first.
pub fn snapshot_seqs(dir: &Path) -> Vec<u64> {
    let mut seqs: Vec<u64> = std::fs::read_dir(dir.join("snapshots"))
        .unwrap()
        .filter_map(|entry| {
            let name = entry.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".snap").and_then(|seq| seq.parse().ok())
        })
        .collect();
    seqs.sort_unstable();
    seqs
}

/// Every snapshot in `dir` holds the books after exactly the command it is named after: its
/// body (past the 20-byte file header) is the plain engine's snapshot at that point.
pub fn assert_snapshots_match(dir: &Path, cmds: &[Command]) {
    let seqs = snapshot_seqs(dir);
    assert_eq!(seqs.first(), Some(&SNAPSHOT_EVERY), "the first periodic snapshot is at its point: {seqs:?}");
    let mut plain = Engine::new(EngineConfig::default());
    let mut done = 0;
    for seq in seqs {
        for cmd in &cmds[done..seq as usize] {
            plain.process(cmd, &mut Vec::new());
        }
        done = seq as usize;
        let mut body = Vec::new();
        plain.write_snapshot(&mut body);
        let file = std::fs::read(dir.join("snapshots").join(format!("{seq:020}.snap"))).unwrap();
        assert!(file[20..] == body[..], "snapshot {seq} is not the books after command {seq}");
    }
}

/// Every record of the journal `journal` (`commands` or `events`) in `dir`: (seq, payload).
pub fn records(dir: &Path, journal: &str) -> Vec<(u64, Vec<u8>)> {
    JournalReader::open_from_start(dir.join(journal))
        .unwrap()
        .map(|record| {
            let record = record.unwrap();
            (record.seq, record.payload.to_vec())
        })
        .collect()
}
