//! The crate's one error type.

use std::path::PathBuf;

use engine::codec::CodecError;

/// Why a backtest could not run.
#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    /// The recorded flow could not be read (the command journal is unreadable or corrupt).
    #[error("{0}")]
    Flow(Box<dyn std::error::Error + Send + Sync>),
    /// The journal directory does not exist.
    #[error("journal directory {0} does not exist")]
    NoJournal(PathBuf),
    /// A command record does not decode.
    #[error("command journal record {seq}: {source}")]
    Decode {
        /// Record seq.
        seq: u64,
        /// What the decoder said.
        source: CodecError,
    },
    /// The recorded flow holds no commands: there is nothing to run against.
    #[error("the recorded flow {0} holds no commands")]
    EmptyFlow(String),
    /// No strategy has this name.
    #[error("unknown strategy {name:?}; known strategies: {known}")]
    UnknownStrategy {
        /// The name asked for.
        name: String,
        /// The built-in names, comma-separated.
        known: String,
    },
    /// The symbol is not in the journal's symbol table.
    #[error("unknown symbol {name:?}; the journal lists: {known}")]
    UnknownSymbol {
        /// The name asked for.
        name: String,
        /// The listed names, comma-separated.
        known: String,
    },
    /// The journal lists no symbols.
    #[error("the journal lists no symbols")]
    NoSymbols,
    /// The strategy's account name is a recorded account's.
    #[error("account {0:?} trades in the recorded flow; choose another name for the strategy")]
    AccountTaken(String),
    /// No account id is left for the strategy.
    #[error("no account id is free for the strategy")]
    NoAccountId,
    /// A bound of the engine's configuration is out of range.
    #[error("engine configuration: {0}")]
    Config(#[from] engine::ConfigError),
}
