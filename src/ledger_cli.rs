//! `exchange ledger ...`: the ledger and payments from a terminal.
//!
//! - `balances`, `entries`, `settle` read (and settle) the ledger from its store. The embedded
//!   store (redb) is one process's at a time: run these while the venue is stopped, or ask the
//!   running venue over HTTP (`/v1/balances`, `/v1/entries`).
//! - `deposit`, `withdraw`, `refund`, `payments` ask a running `exchange serve` over its HTTP
//!   API (`[network] http`) with an API key (`--key` or `EXCHANGE_API_KEY`), and print its JSON
//!   answer; a refusal prints the status and the field the venue named.
//! - `key` prints a new API key and its `[[payments.api_keys]]` entry.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::names::Names;
use crate::serve::{ServeConfig, ACCOUNTS_MAX};
use crate::settlement_run::{open_ledger, SettlementRunError};
use engine::AccountId;

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
    /// Deposit into an account through the running venue (POST /v1/deposits).
    Deposit(PaymentArgs),
    /// Withdraw from an account through the running venue (POST /v1/withdrawals).
    Withdraw(PaymentArgs),
    /// Refund part or all of a deposit (POST /v1/payments/{id}/refunds).
    Refund {
        /// The deposit's payment id.
        #[arg(long)]
        payment: u64,
        /// Decimal amount, at most the asset's decimals.
        #[arg(long)]
        amount: String,
        /// The request's idempotency key (a fresh one when absent, printed to retry with).
        #[arg(long)]
        idempotency_key: Option<String>,
        /// The venue and the key.
        #[command(flatten)]
        http: HttpArgs,
    },
    /// Payments through the running venue: one (`--id`) or a page (GET /v1/payments).
    Payments {
        /// One payment.
        #[arg(long)]
        id: Option<u64>,
        /// Only this account's (an account's key sees only its own anyway).
        #[arg(long)]
        account: Option<String>,
        /// Ids above this one.
        #[arg(long)]
        after: Option<u64>,
        /// Most rows.
        #[arg(long)]
        limit: Option<usize>,
        /// The venue and the key.
        #[command(flatten)]
        http: HttpArgs,
    },
    /// Print a new random API key and its `[[payments.api_keys]]` entry (only the hash is kept).
    Key {
        /// Name of the key (unique in the config).
        #[arg(long)]
        id: String,
        /// The account it may act for; absent: an operator key, which sees all.
        #[arg(long)]
        account: Option<String>,
    },
}

/// Where the running venue is and who asks.
#[derive(Args, Debug, Clone)]
pub struct HttpArgs {
    /// The venue's HTTP address (`[network] http` of --config, else 127.0.0.1:9880).
    #[arg(long)]
    pub url: Option<String>,
    /// API key (default: the EXCHANGE_API_KEY environment variable).
    #[arg(long)]
    pub key: Option<String>,
}

/// A deposit or withdrawal.
#[derive(Args, Debug, Clone)]
pub struct PaymentArgs {
    /// Venue account.
    #[arg(long)]
    pub account: String,
    /// Asset name (`USD`, `BTC`, ...).
    #[arg(long)]
    pub asset: String,
    /// Decimal amount, at most the asset's decimals (`100.00`).
    #[arg(long)]
    pub amount: String,
    /// Payment method (`card`, `bank_transfer`, `upi`, `wallet`, as configured).
    #[arg(long)]
    pub method: String,
    /// The request's idempotency key (a fresh one when absent, printed to retry with).
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// The venue and the key.
    #[command(flatten)]
    pub http: HttpArgs,
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
    /// No API key given.
    #[error("an API key is required: --key KEY or the EXCHANGE_API_KEY environment variable")]
    NoKey,
    /// The venue could not be reached.
    #[error("cannot reach the venue at {url}: {detail} (is `exchange serve` running? see [network] http)")]
    Unreachable {
        /// Where.
        url: String,
        /// Why.
        detail: String,
    },
    /// The venue refused the request.
    #[error("refused (HTTP {status}, field {field}): {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The field the venue named.
        field: String,
        /// Its message.
        message: String,
    },
}

/// Runs one ledger subcommand, printing to standard output.
pub fn ledger(args: &LedgerArgs) -> Result<(), LedgerCliError> {
    let config = read_config(args)?;
    let http = |h: &HttpArgs| Http::new(h, &config);
    match &args.command {
        LedgerCommand::Deposit(p) => return http(&p.http)?.payment("/v1/deposits", p),
        LedgerCommand::Withdraw(p) => return http(&p.http)?.payment("/v1/withdrawals", p),
        LedgerCommand::Refund { payment, amount, idempotency_key, http: h } => {
            let body = serde_json::json!({ "amount": amount });
            let path = format!("/v1/payments/{payment}/refunds");
            return http(h)?.post(&path, &body, idempotency_key.as_deref());
        }
        LedgerCommand::Payments { id, account, after, limit, http: h } => {
            let path = match id {
                Some(id) => format!("/v1/payments/{id}"),
                None => {
                    let mut q = Vec::new();
                    q.extend(account.as_ref().map(|a| format!("account={a}")));
                    q.extend(after.map(|a| format!("after={a}")));
                    q.extend(limit.map(|l| format!("limit={l}")));
                    format!("/v1/payments?{}", q.join("&"))
                }
            };
            return http(h)?.get(&path);
        }
        LedgerCommand::Key { id, account } => {
            print!("{}", new_key_entry(id, account.as_deref()));
            return Ok(());
        }
        _ => {}
    }
    read_store(args, &config)
}

fn read_config(args: &LedgerArgs) -> Result<ServeConfig, LedgerCliError> {
    Ok(match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| LedgerCliError::Config(format!("{}: {e}", path.display())))?;
            ServeConfig::from_toml(&text, &path.display().to_string())
                .map_err(|e| LedgerCliError::Config(e.to_string()))?
        }
        None => ServeConfig::default(),
    })
}

/// The store subcommands: balances, entries, settle.
fn read_store(args: &LedgerArgs, config: &ServeConfig) -> Result<(), LedgerCliError> {
    let data = args.data.clone().unwrap_or_else(|| config.data_dir.clone());
    let journal_dir = data.join("journal");
    let symbols = crate::journal_meta::read_meta(&journal_dir)
        .map_err(|e| LedgerCliError::Config(format!("{}: {e}", journal_dir.display())))?;
    let mut names = Names::new(&symbols, ACCOUNTS_MAX);
    crate::journal_meta::read_accounts(&journal_dir, &mut names)
        .map_err(|e| LedgerCliError::Config(format!("{}: {e}", journal_dir.display())))?;
    let accounts: Vec<String> =
        (0..names.accounts_len() as u32).map(|id| names.account_name(AccountId(id)).to_owned()).collect();
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
        _ => unreachable!("the HTTP subcommands returned above"),
    }
    Ok(())
}

/// Per-request timeout of the HTTP subcommands (a deposit waits for the rails' answer).
const HTTP_TIMEOUT_S: u64 = 30;

/// A client of the running venue's HTTP API.
struct Http {
    base: String,
    key: String,
    agent: ureq::Agent,
}

impl Http {
    fn new(args: &HttpArgs, config: &ServeConfig) -> Result<Http, LedgerCliError> {
        let key = match &args.key {
            Some(k) => k.clone(),
            None => std::env::var("EXCHANGE_API_KEY").map_err(|_| LedgerCliError::NoKey)?,
        };
        if key.is_empty() {
            return Err(LedgerCliError::NoKey);
        }
        let addr = args.url.clone().unwrap_or_else(|| config.network.http.clone());
        if addr.trim().is_empty() {
            return Err(LedgerCliError::Config(
                "the venue's HTTP endpoint is off ([network] http = \"\"); pass --url".into(),
            ));
        }
        let base = if addr.starts_with("http://") || addr.starts_with("https://") {
            addr.trim_end_matches('/').to_string()
        } else {
            format!("http://{addr}")
        };
        let agent = ureq::AgentBuilder::new().timeout(std::time::Duration::from_secs(HTTP_TIMEOUT_S)).build();
        Ok(Http { base, key, agent })
    }

    fn payment(&self, path: &str, p: &PaymentArgs) -> Result<(), LedgerCliError> {
        let body = serde_json::json!({
            "account": p.account, "asset": p.asset, "amount": p.amount, "method": p.method,
        });
        self.post(path, &body, p.idempotency_key.as_deref())
    }

    fn post(&self, path: &str, body: &serde_json::Value, key: Option<&str>) -> Result<(), LedgerCliError> {
        let idem = match key {
            Some(k) => k.to_string(),
            None => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos());
                let k = format!("cli-{now}-{}", std::process::id());
                eprintln!("ledger: Idempotency-Key {k} (retry with --idempotency-key {k})");
                k
            }
        };
        let request = self
            .agent
            .post(&format!("{}{path}", self.base))
            .set("Authorization", &format!("Bearer {}", self.key))
            .set("Idempotency-Key", &idem)
            .set("Content-Type", "application/json");
        self.answer(request.send_string(&body.to_string()))
    }

    fn get(&self, path: &str) -> Result<(), LedgerCliError> {
        let request = self
            .agent
            .get(&format!("{}{path}", self.base))
            .set("Authorization", &format!("Bearer {}", self.key));
        self.answer(request.call())
    }

    /// Prints a success's JSON; turns a refusal into the error naming its field.
    fn answer(&self, result: Result<ureq::Response, ureq::Error>) -> Result<(), LedgerCliError> {
        match result {
            Ok(r) => {
                let text = r.into_string().map_err(|e| self.unreachable(e.to_string()))?;
                match serde_json::from_str::<serde_json::Value>(&text) {
                    Ok(v) => println!("{}", serde_json::to_string_pretty(&v).unwrap_or(text)),
                    Err(_) => println!("{text}"),
                }
                Ok(())
            }
            Err(ureq::Error::Status(status, r)) => {
                let text = r.into_string().unwrap_or_default();
                let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                Err(LedgerCliError::Refused {
                    status,
                    field: v["field"].as_str().unwrap_or("?").to_string(),
                    message: v["error"].as_str().map_or(text.clone(), str::to_string),
                })
            }
            Err(e) => Err(self.unreachable(e.to_string())),
        }
    }

    fn unreachable(&self, detail: String) -> LedgerCliError {
        LedgerCliError::Unreachable { url: self.base.clone(), detail }
    }
}

/// A new random key and the config entry holding its salted hash.
fn new_key_entry(id: &str, account: Option<&str>) -> String {
    let mut bytes = [0u8; 40];
    if let Err(e) =
        std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
    {
        // Without an entropy source there is no safe key to print.
        panic!("/dev/urandom: {e}");
    }
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let (salt, secret) = bytes.split_at(16);
    let key = format!("exk_{}", hex(secret));
    let sha256 = payments::api::hash_key(salt, &key);
    let account_line = account.map_or(String::new(), |a| format!("account = {a:?}\n"));
    let whom = account.map_or("an operator key: sees every account".to_string(), |a| format!("acts for {a}"));
    format!(
        "# API key {id:?} ({whom}); give it to its holder, only its hash stays below:\n#   {key}\n\
         [[payments.api_keys]]\nid = {id:?}\n{account_line}salt = \"{}\"\nsha256 = \"{sha256}\"\n",
        hex(salt)
    )
}
