//! `exchange admin`: show and change an account's risk limits, engage and release its kill
//! switch, halt and resume a symbol, over the venue's FIX endpoint with an admin account (AdminRequest U1, see
//! `gateway::admin`).

use std::time::Duration;

use clap::{Args, Subcommand};
use fix::codec::{self, tag};
use fixclient::{describe, fresh_cl_ord_id};
use serde_json::{Map, Value};

use crate::fix_client::{ClientCliError, ConnectArgs};

/// `exchange admin`.
#[derive(Args, Clone, Debug)]
pub struct AdminArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Print the venue's answer as JSON (AdminData) instead of a table (before or after the
    /// action: `admin show alice --json`).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    action: AdminCmd,
}

/// What to do.
#[derive(Subcommand, Clone, Debug)]
pub enum AdminCmd {
    /// Limits, kill switch and exposure of one account (default: every trading account).
    Show {
        /// Account name.
        account: Option<String>,
    },
    /// Change some limits of an account: NAME=VALUE ..., VALUE `none` removes a limit
    /// (e.g. `order_qty_max=500 credit_max=250000.50 price_band_bps=none`).
    Set {
        /// Account name.
        account: String,
        /// Limits to change.
        #[arg(required = true, value_name = "NAME=VALUE")]
        limits: Vec<String>,
    },
    /// Return an account to its configured limits.
    Reset {
        /// Account name.
        account: String,
    },
    /// Engage the kill switch: cancel all the account's orders and refuse new ones.
    Kill {
        /// Account name.
        account: String,
    },
    /// Release the kill switch.
    Release {
        /// Account name.
        account: String,
    },
    /// Halt a symbol: new orders and replaces are refused `halted`, cancels pass; every
    /// market-data feed publishes the halt (FIX: SecurityStatus 35=f, 326=2).
    Halt {
        /// Symbol name.
        symbol: String,
    },
    /// Resume a halted symbol (FIX: 35=f, 326=17).
    Resume {
        /// Symbol name.
        symbol: String,
    },
}

/// Why `exchange admin` failed (a refusal by the venue is not an error: exit 1, not 2).
#[derive(Debug, thiserror::Error)]
pub enum AdminCliError {
    /// A limit not written `NAME=VALUE`.
    #[error("{0:?}: expected NAME=VALUE")]
    NotNameValue(String),
    /// A whole number too large for a limit.
    #[error("{name}: {source}")]
    Number {
        /// The limit.
        name: String,
        /// Why.
        source: std::num::ParseIntError,
    },
    /// A `{...}` value that is not JSON.
    #[error("{name}: {source}")]
    Json {
        /// The limit.
        name: String,
        /// Why.
        source: serde_json::Error,
    },
    /// Connecting, logging on or the session failed.
    #[error(transparent)]
    Connect(#[from] ClientCliError),
    /// The session failed after logon.
    #[error(transparent)]
    Session(Box<fixclient::ClientError>),
    /// The async runtime could not start.
    #[error("starting the I/O runtime: {0}")]
    Runtime(#[from] std::io::Error),
    /// No AdminResponse came back.
    #[error("no answer from the venue within 10 s")]
    NoAnswer,
    /// The venue rejected the message itself (session or business reject): not an admin
    /// session, or a malformed request.
    #[error("{0}")]
    Rejected(String),
    /// The AdminData (5104) of the answer is not JSON: the venue and this client disagree.
    #[error("AdminData is not JSON: {0}")]
    AdminData(#[source] serde_json::Error),
}

impl From<fixclient::ClientError> for AdminCliError {
    fn from(e: fixclient::ClientError) -> AdminCliError {
        AdminCliError::Session(Box::new(e))
    }
}

/// `NAME=VALUE` pairs into the AdminLimits object: whole numbers are numbers, `none` (or
/// `null`) unsets, `{...}` is JSON (`position_max_by_symbol={"BTC-USD":5}`), anything else a
/// string (decimal notionals such as `250000.50`, which are never floats).
pub fn limits_patch(pairs: &[String]) -> Result<Map<String, Value>, AdminCliError> {
    let mut patch = Map::new();
    for pair in pairs {
        let Some((name, value)) = pair.split_once('=') else {
            return Err(AdminCliError::NotNameValue(pair.clone()));
        };
        let value = match value {
            "none" | "null" => Value::Null,
            v if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
                let number =
                    v.parse::<u64>().map_err(|source| AdminCliError::Number { name: name.into(), source })?;
                Value::Number(number.into())
            }
            v if v.starts_with('{') => {
                serde_json::from_str(v).map_err(|source| AdminCliError::Json { name: name.into(), source })?
            }
            v => Value::String(v.to_owned()),
        };
        patch.insert(name.to_owned(), value);
    }
    Ok(patch)
}

/// Runs `exchange admin`: true when the venue did it, false when it refused.
pub fn admin(args: &AdminArgs) -> Result<bool, AdminCliError> {
    let mut symbol = None;
    let (action, account, limits) = match &args.action {
        AdminCmd::Show { account } => ("show", account.as_deref(), None),
        AdminCmd::Halt { symbol: s } | AdminCmd::Resume { symbol: s } => {
            symbol = Some(s.as_str());
            (if matches!(args.action, AdminCmd::Halt { .. }) { "halt" } else { "resume" }, None, None)
        }
        AdminCmd::Set { account, limits } => {
            let patch = Value::Object(limits_patch(limits)?).to_string();
            ("set", Some(account.as_str()), Some(patch))
        }
        AdminCmd::Reset { account } => ("reset", Some(account.as_str()), None),
        AdminCmd::Kill { account } => ("kill", Some(account.as_str()), None),
        AdminCmd::Release { account } => ("release", Some(account.as_str()), None),
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let mut client = args.connect.connect().await?;
        let req_id = fresh_cl_ord_id("adm");
        client
            .send(codec::MSG_ADMIN_REQUEST, |e| {
                e.str(tag::ADMIN_REQ_ID, &req_id);
                e.str(tag::ADMIN_ACTION, action);
                if let Some(a) = account {
                    e.str(tag::ACCOUNT, a);
                }
                if let Some(l) = &limits {
                    e.str(tag::ADMIN_LIMITS, l);
                }
                if let Some(s) = symbol {
                    e.str(tag::SYMBOL, s);
                }
            })
            .await?;
        let outcome = loop {
            let Some(m) = client.recv(Duration::from_secs(10)).await? else {
                break Err(AdminCliError::NoAnswer);
            };
            match m.msg_type().as_bytes() {
                codec::MSG_ADMIN_RESPONSE if m.get(tag::ADMIN_REQ_ID).as_deref() == Some(req_id.as_str()) => {
                    break Ok(m);
                }
                b"3" | b"j" => break Err(AdminCliError::Rejected(describe(&m))),
                _ => {}
            }
        };
        client.logout().await?;
        let m = outcome?;
        let done = m.get(tag::ADMIN_STATUS).as_deref() == Some("0");
        let text = m.get(tag::TEXT).unwrap_or_default();
        let data = m.get(tag::ADMIN_DATA).unwrap_or_default();
        if !done {
            println!("refused: {text}");
            return Ok(false);
        }
        if args.json {
            println!("{data}");
        } else {
            println!("{action}: {text}");
            // A halt or resume concerns a symbol: no account table.
            if symbol.is_none() {
                print!("{}", render(&data)?);
            }
        }
        Ok(true)
    })
}

/// AdminData as a table: one line per account.
pub fn render(data: &str) -> Result<String, AdminCliError> {
    let value: Value = serde_json::from_str(data).map_err(AdminCliError::AdminData)?;
    let mut out = format!(
        "{:<12} {:<7} {:>11} {:>18} {:>18}  limits ({})\n",
        "account", "killed", "open_orders", "open_buy_notional", "credit_used", "from"
    );
    for a in value["accounts"].as_array().into_iter().flatten() {
        let limits = match a["limits"].as_object() {
            Some(l) if !l.is_empty() => l
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => format!("{k}={s}"),
                    v => format!("{k}={v}"),
                })
                .collect::<Vec<_>>()
                .join(" "),
            _ => "none".to_owned(),
        };
        let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
        out.push_str(&format!(
            "{:<12} {:<7} {:>11} {:>18} {:>18}  {limits} ({})\n",
            text(&a["account"]),
            if a["killed"].as_bool() == Some(true) { "yes" } else { "no" },
            a["open_orders"],
            text(&a["open_buy_notional"]),
            text(&a["credit_used"]),
            text(&a["limits_from"]),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_become_a_limits_object() {
        let pairs: Vec<String> = [
            "order_qty_max=500",
            "credit_max=250000.50",
            "price_band_bps=none",
            r#"position_max_by_symbol={"BTC-USD":5}"#,
        ]
        .map(String::from)
        .to_vec();
        let patch = Value::Object(limits_patch(&pairs).unwrap());
        assert_eq!(
            patch,
            serde_json::json!({"order_qty_max": 500, "credit_max": "250000.50", "price_band_bps": null, "position_max_by_symbol": {"BTC-USD": 5}})
        );
        assert!(matches!(limits_patch(&["order_qty_max".into()]), Err(AdminCliError::NotNameValue(_))));
        let err = limits_patch(&["order_qty_max=99999999999999999999".into()]).unwrap_err();
        assert!(matches!(err, AdminCliError::Number { .. }), "{err}");
        let err = limits_patch(&["position_max_by_symbol={oops".into()]).unwrap_err();
        assert!(err.to_string().starts_with("position_max_by_symbol: "), "{err}");
        assert!(matches!(render("not json"), Err(AdminCliError::AdminData(_))));
    }

    #[test]
    fn table_has_a_line_per_account() {
        let data = r#"{"accounts":[{"account":"alice","killed":true,"limits":{"order_qty_max":5},"limits_from":"admin","open_orders":0,"open_buy_notional":"0","position_cost":"0","credit_used":"12.5"}]}"#;
        let table = render(data).unwrap();
        let line = table.lines().nth(1).unwrap();
        assert!(line.starts_with("alice        yes"), "{line}");
        assert!(line.ends_with("order_qty_max=5 (admin)"), "{line}");
        assert!(line.contains("12.5"));
    }
}
