//! The recorded flow: commands in seq order, from wherever the caller keeps them (the `exchange`
//! binary reads a data directory's command journal; tests hold them in memory). This crate reads
//! no file itself.

use engine::{AccountId, Command, CommandKind, SymbolId};

use crate::BacktestError;

/// What one pass over a recorded flow learns before the backtest runs.
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
                if let Some(n) = self.new_orders_by_symbol.get_mut(new.symbol.index()) {
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
                best = Some((n, SymbolId(id as u32)));
            }
        }
        best.map(|(_, id)| id)
    }
}

/// A recorded command flow, read in seq order as many times as a backtest asks (twice: once to
/// learn its span, symbol and accounts, once to run it).
pub trait Flow {
    /// Calls `f` with every command in seq order; returns how many. A source that cannot be
    /// read returns [`BacktestError::Flow`] (or [`BacktestError::Decode`] for a bad record).
    fn for_each_command<F: FnMut(&Command)>(&mut self, f: F) -> Result<u64, BacktestError>;

    /// The flow's name in messages (a journal's path).
    fn name(&self) -> String;
}

/// Commands held in memory.
impl Flow for &[Command] {
    fn for_each_command<F: FnMut(&Command)>(&mut self, mut f: F) -> Result<u64, BacktestError> {
        self.iter().for_each(&mut f);
        Ok(self.len() as u64)
    }

    fn name(&self) -> String {
        "in memory".into()
    }
}

/// One pass over `flow`, for a venue of `symbols_len` listed symbols.
pub fn scan<F: Flow>(flow: &mut F, symbols_len: usize) -> Result<FlowInfo, BacktestError> {
    let mut info = FlowInfo { new_orders_by_symbol: vec![0; symbols_len], ..FlowInfo::default() };
    flow.for_each_command(|command| info.observe(command))?;
    Ok(info)
}
