//! The `exchange` package: the edges that wire the engine crates into one command-line tool.
//!
//! Text formats (command files, event files, book files) and name tables live here, outside the
//! sans-IO `engine` crate.
#![warn(missing_docs, unreachable_pub)]

pub mod admin_cli;
pub mod backtest_run;
pub mod command_file;
pub mod event_file;
pub mod fix_client;
pub mod gen_run;
pub mod http;
pub mod journal_meta;
pub mod ledger_cli;
pub mod logging;
pub mod marketdata_run;
pub mod match_run;
pub mod md_binary;
pub mod md_cli;
pub mod md_fix;
pub mod md_quic;
pub mod names;
pub mod payments_run;
mod progress;
pub mod replay_run;
pub mod serve;
pub mod serve_bounds;
pub mod settlement_run;
pub mod stage_metrics;
