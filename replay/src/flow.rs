//! The recorded flow: the command journal of a data directory, read in seq order.

use std::path::Path;

use engine::journal::JournalReader;
use engine::{AccountId, Command, CommandKind, SymbolId};

use crate::BacktestError;

/// What one pass over a command journal learns before the backtest runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlowInfo {
    /// Commands in the journal.
    pub commands: u64,
    /// Timestamp of the first command, in nanoseconds.
    pub first_ts: u64,
    /// Timestamp of the last command, in nanoseconds.
    pub last_ts: u64,
    /// New orders per listed symbol, indexed by symbol id (unlisted symbols are not counted).
    pub new_orders_by_symbol: Vec<u64>,
    /// Largest account id any command names.
    pub account_id_max: Option<AccountId>,
}

impl FlowInfo {
    /// Folds one command in.
    pub fn observe(&mut self, command: &Command) {
        if self.commands == 0 {
            self.first_ts = command.header.ts;
        }
        self.commands += 1;
        self.last_ts = command.header.ts;
        let account = match command.kind {
            CommandKind::New(new) => {
                if let Some(n) = self.new_orders_by_symbol.get_mut(new.symbol as usize) {
                    *n += 1;
                }
                Some(new.account)
            }
            CommandKind::Cancel(c) => Some(c.account),
            CommandKind::Replace(r) => Some(r.account),
            CommandKind::CancelAll { account, .. } => Some(account),
            CommandKind::Halt { .. } | CommandKind::Resume { .. } => None,
        };
        if account.is_some() {
            self.account_id_max = self.account_id_max.max(account);
        }
    }

    /// The listed symbol with the most new orders (the lowest id on a tie).
    pub fn busiest_symbol(&self) -> Option<SymbolId> {
        let mut best: Option<(u64, SymbolId)> = None;
        for (id, &n) in self.new_orders_by_symbol.iter().enumerate() {
            if best.is_none_or(|(most, _)| n > most) {
                best = Some((n, id as SymbolId));
            }
        }
        best.map(|(_, id)| id)
    }
}

/// Calls `f` with every command of the command journal in `dir`, in seq order (each record's
/// CRC and the seq continuity checked by the reader). Returns the number of commands.
pub fn for_each_command(dir: &Path, mut f: impl FnMut(&Command)) -> Result<u64, BacktestError> {
    let mut reader = JournalReader::open_from_start(dir)?;
    let mut n = 0;
    while let Some(record) = reader.next_record()? {
        let command = Command::decode(record.payload)
            .map_err(|source| BacktestError::Decode { seq: record.seq, source })?;
        f(&command);
        n += 1;
    }
    Ok(n)
}

/// One pass over the command journal in `dir`, for a venue of `symbols_len` listed symbols.
pub fn scan_journal(dir: &Path, symbols_len: usize) -> Result<FlowInfo, BacktestError> {
    let mut info = FlowInfo { new_orders_by_symbol: vec![0; symbols_len], ..FlowInfo::default() };
    for_each_command(dir, |command| info.observe(command))?;
    Ok(info)
}
