//! `exchange ledger balances|entries|settle`: the ledger from a terminal, read from its store.
//!
//! The embedded store (redb) is one process's at a time: run these while the venue is stopped,
//! or ask the running venue over HTTP (`/v1/balances`, `/v1/entries`).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::names::Names;
use crate::serve::{ServeConfig, ACCOUNTS_MAX};
use crate::settlement_run::{open_ledger, SettlementRunError};

/// `exchange ledger`.
#[derive(Args, Debug)]
pub struct LedgerArgs {
    /// What to show or do.
    #[command(subcommand)]
    pub command: LedgerCommand,
    /// The venue's TOML configuration (its `[settlement]` table); the embedded default when absent.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Data directory; overrides the configuration's.
    #[arg(long, global = true)]
    pub data: Option<PathBuf>,
}

/// The ledger subcommands.
#[derive(Subcommand, Debug)]
pub enum LedgerCommand {
    /// Every account's balances (posted, pending, held, available), or one owner's.
    Balances {
        /// Only this owner.
        #[arg(long)]
        owner: Option<String>,
    },
    /// The last ledger entries (transfers) in id order: deposits and withdrawals, then trade legs by event seq, then settlement posts.
    Entries {
        /// How many.
        #[arg(long, default_value_t = 20)]
        last: usize,
    },
    /// Settle every trade leg due on or before a date (default today, UTC); prints the
    /// report as CSV. Running it again for the same date settles nothing more.
    Settle {
        /// `YYYY-MM-DD`.
        #[arg(long)]
        date: Option<String>,
    },
}

/// Why `exchange ledger` failed.
#[derive(Debug, thiserror::Error)]
pub enum LedgerCliError {
    /// The configuration could not be read.
    #[error("{0}")]
    Config(String),
    /// The ledger could not be opened.
    #[error("{0} (is the venue running? ask it over HTTP: /v1/balances, /v1/entries)")]
    Open(#[from] SettlementRunError),
    /// Settlement failed.
    #[error("settle: {0}")]
    Settle(#[from] settlement::SettlementError),
}

/// Runs one ledger subcommand, printing to standard output.
pub fn ledger(args: &LedgerArgs) -> Result<(), LedgerCliError> {
    let config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| LedgerCliError::Config(format!("{}: {e}", path.display())))?;
            ServeConfig::from_toml(&text, &path.display().to_string())
                .map_err(|e| LedgerCliError::Config(e.to_string()))?
        }
        None => ServeConfig::default(),
    };
    let data = args.data.clone().unwrap_or_else(|| config.data_dir.clone());
    let journal_dir = data.join("journal");
    let symbols = crate::journal_meta::read_meta(&journal_dir)
        .map_err(|e| LedgerCliError::Config(format!("{}: {e}", journal_dir.display())))?;
    let mut names = Names::new(&symbols, ACCOUNTS_MAX);
    crate::journal_meta::read_accounts(&journal_dir, &mut names)
        .map_err(|e| LedgerCliError::Config(format!("{}: {e}", journal_dir.display())))?;
    let accounts: Vec<String> =
        (0..names.accounts_len() as u32).map(|id| names.account_name(id).to_owned()).collect();
    let mut s = open_ledger(&config.settlement, &data, &accounts, &symbols)?;
    match &args.command {
        LedgerCommand::Balances { owner } => {
            let ledger = s.ledger();
            println!("owner,asset,posted,pending_debits,pending_credits,held,available");
            for i in 0..ledger.account_count() {
                let idx = settlement::AccountIdx(i);
                let (Some((o, asset, _)), Some(b)) = (ledger.account_info(idx), ledger.balances(idx)) else {
                    continue;
                };
                if owner.as_deref().is_some_and(|w| w != o) {
                    continue;
                }
                let a = ledger.asset(asset);
                let f = |v: i128| settlement::format_amount(v, a.scale);
                println!(
                    "{o},{},{},{},{},{},{}",
                    a.name,
                    f(b.posted()),
                    f(b.debits_pending as i128),
                    f(b.credits_pending as i128),
                    f(b.held as i128),
                    f(b.available())
                );
            }
            println!("# cursor (last event booked): {}", s.cursor());
        }
        LedgerCommand::Entries { last } => {
            let ledger = s.ledger();
            let skip = ledger.transfer_count().saturating_sub(*last);
            println!("id,debit,credit,asset,amount,code,state,event_seq");
            for t in ledger.transfers_after(None).skip(skip) {
                let p = &t.transfer;
                let owner = |i| ledger.account_info(i).map_or("?", |(o, _, _)| o);
                let asset = ledger.account_info(p.debit).map(|(_, a, _)| ledger.asset(a));
                let (name, scale) = asset.map_or(("?", 0), |a| (a.name.as_str(), a.scale));
                println!(
                    "{:#x},{},{},{name},{},{},{},{}",
                    p.id,
                    owner(p.debit),
                    owner(p.credit),
                    settlement::format_amount(i128::from(p.amount), scale),
                    p.code,
                    t.state.map_or("posted", |s| s.as_str()),
                    p.user_data_64
                );
            }
        }
        LedgerCommand::Settle { date } => {
            let now = time::OffsetDateTime::now_utc();
            let date = match date {
                Some(d) => {
                    let format = time::macros::format_description!("[year]-[month]-[day]");
                    time::Date::parse(d, format)
                        .map_err(|_| LedgerCliError::Config(format!("--date {d:?} is not YYYY-MM-DD")))?
                }
                None => now.date(),
            };
            let now_ns = u64::try_from(now.unix_timestamp_nanos()).unwrap_or(0);
            let report = s.settle(date, now_ns)?;
            print!("{}", report.to_csv());
            eprintln!(
                "ledger: {} settled {} trades ({} legs)",
                report.settle_date, report.trades, report.legs_posted
            );
        }
    }
    Ok(())
}
