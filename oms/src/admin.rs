//! Venue administration over the order-entry endpoint.
//!
//! An account configured as an admin logs on like any other (same QUIC or TCP endpoint, same
//! password rules) and sends AdminRequest (`U1`, a venue-defined MsgType); the venue answers
//! each with one AdminResponse (`U2`). Admin sessions never trade, and trading sessions cannot
//! send `U1` (both get a BusinessMessageReject 380=6).
//!
//! ```text
//! U1  5100 AdminReqID  5101 AdminAction (show|set|reset|kill|release)  1 Account
//!     5102 AdminLimits (set: a JSON object of limit fields; null unsets one)
//! U2  5100 AdminReqID  5103 AdminStatus (0 done, 1 refused)  58 Text  5104 AdminData (JSON)
//! ```
//!
//! Order management owns the risk engine, so it applies every action (one writer, no locks);
//! after each change it hands the run-time state (own limits, kill switches) to its host, which
//! writes it to a small JSON file off the matching thread ([`write_state`]), so a restart keeps
//! it. A `kill` also sends the engine a `CancelAll` for the account.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use engine::price_text::PriceText;
use engine::AccountId;
use risk::{AccountExposure, RiskEngine, RiskLimits};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What an admin asks.
#[derive(Clone, Debug, PartialEq)]
pub enum AdminAction {
    /// Limits, kill switch and exposure of one account, or of every trading account.
    Show {
        /// The account; `None` for all.
        account: Option<AccountId>,
    },
    /// Changes some of an account's limits (the others stay as they are).
    Set {
        /// The account.
        account: AccountId,
        /// Limit fields to change: a value sets, `null` unsets (no limit).
        patch: Map<String, Value>,
    },
    /// Returns an account to its configured limits.
    Reset {
        /// The account.
        account: AccountId,
    },
    /// Engages the kill switch: cancels all the account's orders and refuses new ones.
    Kill {
        /// The account.
        account: AccountId,
    },
    /// Releases the kill switch.
    Release {
        /// The account.
        account: AccountId,
    },
}

impl AdminAction {
    /// The action's name on the wire (AdminAction, 5101).
    pub fn name(&self) -> &'static str {
        match self {
            AdminAction::Show { .. } => "show",
            AdminAction::Set { .. } => "set",
            AdminAction::Reset { .. } => "reset",
            AdminAction::Kill { .. } => "kill",
            AdminAction::Release { .. } => "release",
        }
    }
}

/// An AdminRequest, translated (account names resolved).
#[derive(Clone, Debug, PartialEq)]
pub struct AdminRequest {
    /// AdminReqID (5100), echoed.
    pub req_id: String,
    /// What to do.
    pub action: AdminAction,
}

/// One account's state in an answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountState {
    /// The account.
    pub account: AccountId,
    /// Kill switch engaged.
    pub killed: bool,
    /// The limits in force.
    pub limits: RiskLimits,
    /// The limits were changed at run time (else they are the configuration's).
    pub changed: bool,
    /// What the account has at stake.
    pub exposure: AccountExposure,
}

/// The answer to an AdminRequest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminReply {
    /// AdminReqID of the request.
    pub req_id: String,
    /// Done with a summary, or refused with the reason.
    pub outcome: Result<String, AdminRefusal>,
    /// The state of the accounts concerned, after the action.
    pub accounts: Vec<AccountState>,
}

/// Why an AdminRequest was refused (AdminStatus 1, the message in Text).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AdminRefusal {
    /// The request itself is malformed (a missing or unknown field, an unknown account name);
    /// refused by the gateway before it reaches order management.
    #[error("{0}")]
    BadRequest(String),
    /// The account id has no risk state: it is not in the configuration.
    #[error("account {0} is not configured")]
    NotConfigured(AccountId),
    /// Admin accounts are not limited or killed.
    #[error("admin accounts do not trade: they have no limits")]
    AdminAccount,
    /// The patched limits do not make a valid AdminLimits object.
    #[error("limits: {0}")]
    BadLimits(String),
    /// The venue runs without pre-trade risk (`risk.enabled = false`): there is nothing to
    /// administer.
    #[error("pre-trade risk is off on this venue")]
    RiskOff,
    /// The risk engine refused the change.
    #[error(transparent)]
    Risk(#[from] risk::RiskError),
}

/// Why the saved admin state file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    /// The file exists but cannot be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The state file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not a saved state (hand-edited, or from another version): fix or remove it.
    #[error("{}: {source} (fix the file, or remove it to start from the configuration)", path.display())]
    Parse {
        /// The state file.
        path: PathBuf,
        /// What JSON said.
        source: serde_json::Error,
    },
}

/// What the router needs to administer risk.
#[derive(Clone, Debug, Default)]
pub struct AdminConfig {
    /// Admin accounts (they are not shown, limited or killed).
    pub admins: Vec<bool>,
    /// Each account's configured limits (`None`: the default limits), for `reset`.
    pub configured: Vec<Option<RiskLimits>>,
    /// Accounts whose limits were changed at run time (restored from the state file).
    pub changed: Vec<bool>,
    /// Account names, by id (the state file names accounts).
    pub names: Vec<String>,
    /// Where run-time changes are saved; `None` keeps them in memory only.
    pub state_path: Option<PathBuf>,
}

impl AdminConfig {
    fn is_admin(&self, account: AccountId) -> bool {
        self.admins.get(account.index()).copied().unwrap_or(false)
    }

    fn changed(&self, account: AccountId) -> bool {
        self.changed.get(account.index()).copied().unwrap_or(false)
    }

    fn set_changed(&mut self, account: AccountId, changed: bool) {
        let i = account.index();
        if self.changed.len() <= i {
            self.changed.resize(i + 1, false);
        }
        self.changed[i] = changed;
    }

    /// Applies one request to `risk`. Returns the answer and, for a `kill`, the account whose
    /// orders the caller must cancel (`CommandKind::CancelAll`).
    pub fn apply(&mut self, risk: &mut RiskEngine, request: AdminRequest) -> (AdminReply, Option<AccountId>) {
        let AdminRequest { req_id, action } = request;
        let target = match &action {
            AdminAction::Show { account } => *account,
            AdminAction::Set { account, .. }
            | AdminAction::Reset { account }
            | AdminAction::Kill { account }
            | AdminAction::Release { account } => Some(*account),
        };
        let refuse = |refusal: AdminRefusal| AdminReply {
            req_id: req_id.clone(),
            outcome: Err(refusal),
            accounts: vec![],
        };
        if let Some(account) = target {
            if risk.limits(account).is_none() {
                return (refuse(AdminRefusal::NotConfigured(account)), None);
            }
            if self.is_admin(account) {
                return (refuse(AdminRefusal::AdminAccount), None);
            }
        }
        let mut cancel = None;
        let summary = match action {
            AdminAction::Show { .. } => Ok("ok".to_owned()),
            AdminAction::Set { account, patch } => self.set(risk, account, patch),
            AdminAction::Reset { account } => {
                let configured = self.configured.get(account.index()).cloned().flatten();
                let done = match configured {
                    Some(limits) => risk.set_limits(account, limits),
                    None => risk.reset_limits(account),
                };
                done.map_err(AdminRefusal::from).map(|()| {
                    self.set_changed(account, false);
                    "limits reset to the configuration".to_owned()
                })
            }
            AdminAction::Kill { account } => risk.kill(account).map_err(AdminRefusal::from).map(|()| {
                cancel = Some(account);
                let open = risk.account_exposure(account).map_or(0, |e| e.open_orders);
                format!(
                    "kill switch engaged: new orders and replaces refused; cancel-all sent for {open} open orders"
                )
            }),
            AdminAction::Release { account } => risk
                .release(account)
                .map_err(AdminRefusal::from)
                .map(|()| "kill switch released: orders accepted again".to_owned()),
        };
        let summary = match summary {
            Ok(text) => text,
            Err(text) => return (refuse(text), None),
        };
        let accounts = match target {
            Some(account) => vec![self.state(risk, account)],
            None => (0..self.names.len().max(self.admins.len()) as u32)
                .map(AccountId)
                .filter(|&a| !self.is_admin(a) && risk.limits(a).is_some())
                .map(|a| self.state(risk, a))
                .collect(),
        };
        (AdminReply { req_id, outcome: Ok(summary), accounts }, cancel)
    }

    fn set(
        &mut self,
        risk: &mut RiskEngine,
        account: AccountId,
        patch: Map<String, Value>,
    ) -> Result<String, AdminRefusal> {
        let current = risk.limits(account).cloned().unwrap_or_default();
        let bad = |e: serde_json::Error| AdminRefusal::BadLimits(e.to_string());
        let Value::Object(mut fields) = serde_json::to_value(&current).map_err(bad)? else {
            unreachable!("RiskLimits serializes as a JSON object");
        };
        let mut names = Vec::with_capacity(patch.len());
        for (name, value) in patch {
            names.push(name.clone());
            if value.is_null() {
                fields.remove(&name);
            } else {
                fields.insert(name, value);
            }
        }
        let limits: RiskLimits = serde_json::from_value(Value::Object(fields)).map_err(bad)?;
        risk.set_limits(account, limits)?;
        self.set_changed(account, true);
        Ok(format!("limits changed: {}", names.join(", ")))
    }

    fn state(&self, risk: &RiskEngine, account: AccountId) -> AccountState {
        AccountState {
            account,
            killed: risk.is_killed(account),
            limits: risk.limits(account).cloned().unwrap_or_default(),
            changed: self.changed(account),
            exposure: risk.account_exposure(account).unwrap_or_default(),
        }
    }

    /// The run-time state to save after a change (changed limits, engaged kill switches), and
    /// where; `None` when changes are kept in memory only.
    pub fn saved_state(&self, risk: &RiskEngine) -> Option<(PathBuf, SavedState)> {
        let path = self.state_path.clone()?;
        let mut state = SavedState::default();
        for (id, name) in self.names.iter().enumerate() {
            let account = AccountId(id as u32);
            let killed = risk.is_killed(account);
            let limits = self.changed(account).then(|| risk.limits(account).cloned()).flatten();
            if killed || limits.is_some() {
                state.accounts.insert(name.clone(), SavedAccount { killed, limits });
            }
        }
        Some((path, state))
    }
}

/// Writes a saved state atomically (a temporary file, synced, then renamed): the host calls it
/// off the matching thread.
pub fn write_state(path: &Path, state: &SavedState) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(state).map_err(std::io::Error::other)?;
    let tmp = path.with_extension("json.tmp");
    {
        let mut file = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut file, text.as_bytes())?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// The run-time admin state as saved: by account name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedState {
    /// Accounts with a change.
    pub accounts: BTreeMap<String, SavedAccount>,
}

/// One account's saved changes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedAccount {
    /// Kill switch engaged.
    #[serde(default)]
    pub killed: bool,
    /// Limits set at run time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<RiskLimits>,
}

/// Reads a saved state; a missing file is an empty state.
pub fn load_state(path: &Path) -> Result<SavedState, StateFileError> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            serde_json::from_str(&text).map_err(|source| StateFileError::Parse { path: path.into(), source })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(SavedState::default()),
        Err(source) => Err(StateFileError::Read { path: path.into(), source }),
    }
}

/// Amount in price units × quantity as decimal text (`1005.5`).
fn amount(units: i128) -> String {
    PriceText::trimmed(units, 0).to_string()
}

/// AdminData (5104): the accounts as JSON, named by `name_of`.
pub fn accounts_json(accounts: &[AccountState], name_of: impl Fn(AccountId) -> String) -> String {
    let list: Vec<Value> = accounts
        .iter()
        .map(|a| {
            serde_json::json!({
                "account": name_of(a.account),
                "killed": a.killed,
                "limits": a.limits,
                "limits_from": if a.changed { "admin" } else { "config" },
                "open_orders": a.exposure.open_orders,
                "open_buy_notional": amount(a.exposure.open_buy_notional),
                "position_cost": amount(a.exposure.position_cost),
                "credit_used": amount(a.exposure.credit_used),
            })
        })
        .collect();
    serde_json::json!({ "accounts": list }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn risk() -> RiskEngine {
        RiskEngine::new(risk::RiskConfig::new(engine::default_symbols(), 3)).unwrap()
    }

    fn config(dir: Option<&Path>) -> AdminConfig {
        AdminConfig {
            admins: vec![false, false, true],
            configured: vec![
                Some(RiskLimits { order_qty_max: Some(100), ..RiskLimits::default() }),
                None,
                None,
            ],
            changed: vec![],
            names: vec!["alice".into(), "bob".into(), "admin".into()],
            state_path: dir.map(|d| d.join("risk-admin.json")),
        }
    }

    fn request(action: AdminAction) -> AdminRequest {
        AdminRequest { req_id: "r1".into(), action }
    }

    fn patch(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn set_merges_fields_and_reset_returns_to_the_configuration() {
        let mut risk = risk();
        let mut admin = config(None);
        risk.set_limits(AccountId(0), admin.configured[0].clone().unwrap()).unwrap();
        let set = AdminAction::Set {
            account: AccountId(0),
            patch: patch(r#"{"credit_max":"5000.5","price_band_bps":200}"#),
        };
        let (reply, cancel) = admin.apply(&mut risk, request(set));
        assert_eq!(cancel, None);
        assert_eq!(reply.outcome, Ok("limits changed: credit_max, price_band_bps".into()));
        let limits = risk.limits(AccountId(0)).unwrap();
        assert_eq!(limits.order_qty_max, Some(100), "fields not named stay");
        assert_eq!(limits.price_band_bps, Some(200));
        assert_eq!(limits.credit_max, Some(risk::Notional::from_units(500_050_000_000)));
        assert!(reply.accounts[0].changed);

        let unset = AdminAction::Set { account: AccountId(0), patch: patch(r#"{"order_qty_max":null}"#) };
        admin.apply(&mut risk, request(unset));
        assert_eq!(risk.limits(AccountId(0)).unwrap().order_qty_max, None);

        let (reply, _) = admin.apply(&mut risk, request(AdminAction::Reset { account: AccountId(0) }));
        assert!(reply.outcome.is_ok());
        assert_eq!(risk.limits(AccountId(0)).unwrap(), admin.configured[0].as_ref().unwrap());
        assert!(!reply.accounts[0].changed);
    }

    #[test]
    fn bad_limits_are_refused_and_change_nothing() {
        let mut risk = risk();
        let mut admin = config(None);
        for bad in [r#"{"order_qty":5}"#, r#"{"credit_max":1.5}"#, r#"{"order_qty_max":"many"}"#] {
            let set = AdminAction::Set { account: AccountId(1), patch: patch(bad) };
            let (reply, _) = admin.apply(&mut risk, request(set));
            let err = reply.outcome.unwrap_err();
            assert!(matches!(err, AdminRefusal::BadLimits(_)), "{bad}: {err}");
            assert!(err.to_string().starts_with("limits: "), "{bad}: {err}");
        }
        let set = AdminAction::Set {
            account: AccountId(1),
            patch: patch(r#"{"position_max_by_symbol":{"DOGE":1}}"#),
        };
        let err = admin.apply(&mut risk, request(set)).0.outcome.unwrap_err();
        assert!(err.to_string().contains("DOGE"), "{err}");
        assert_eq!(risk.limits(AccountId(1)).unwrap(), &RiskLimits::default());
    }

    #[test]
    fn admin_and_unknown_accounts_are_refused_and_show_lists_traders() {
        let mut risk = risk();
        let mut admin = config(None);
        let (reply, _) = admin.apply(&mut risk, request(AdminAction::Kill { account: AccountId(2) }));
        assert_eq!(reply.outcome, Err(AdminRefusal::AdminAccount));
        let (reply, _) = admin.apply(&mut risk, request(AdminAction::Kill { account: AccountId(7) }));
        assert_eq!(reply.outcome, Err(AdminRefusal::NotConfigured(AccountId(7))));
        assert_eq!(AdminRefusal::NotConfigured(AccountId(7)).to_string(), "account 7 is not configured");
        let (reply, _) = admin.apply(&mut risk, request(AdminAction::Show { account: None }));
        assert_eq!(
            reply.accounts.iter().map(|a| a.account).collect::<Vec<_>>(),
            [AccountId(0), AccountId(1)]
        );
        let json = accounts_json(&reply.accounts, |a| admin.names[a.index()].clone());
        let value: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["accounts"][0]["account"], "alice");
        assert_eq!(value["accounts"][0]["credit_used"], "0");
    }

    #[test]
    fn kill_asks_for_a_cancel_all_and_state_survives_a_restart() {
        let dir = std::env::temp_dir().join(format!("admin-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut risk = risk();
        let mut admin = config(Some(&dir));
        let save = |admin: &AdminConfig, risk: &RiskEngine| {
            let (path, state) = admin.saved_state(risk).unwrap();
            write_state(&path, &state).unwrap();
        };
        let (reply, cancel) = admin.apply(&mut risk, request(AdminAction::Kill { account: AccountId(1) }));
        assert_eq!(cancel, Some(AccountId(1)));
        assert!(reply.outcome.unwrap().starts_with("kill switch engaged"));
        assert!(risk.is_killed(AccountId(1)));
        let set = AdminAction::Set { account: AccountId(0), patch: patch(r#"{"open_orders_max":3}"#) };
        admin.apply(&mut risk, request(set));
        save(&admin, &risk);

        let saved = load_state(admin.state_path.as_ref().unwrap()).unwrap();
        assert!(saved.accounts["bob"].killed);
        assert_eq!(saved.accounts["bob"].limits, None);
        assert_eq!(saved.accounts["alice"].limits.as_ref().unwrap().open_orders_max, Some(3));
        assert!(!saved.accounts["alice"].killed);

        let (_, cancel) = admin.apply(&mut risk, request(AdminAction::Release { account: AccountId(1) }));
        assert_eq!(cancel, None);
        assert!(!risk.is_killed(AccountId(1)));
        save(&admin, &risk);
        let saved = load_state(admin.state_path.as_ref().unwrap()).unwrap();
        assert!(!saved.accounts.contains_key("bob"));
        assert_eq!(load_state(&dir.join("missing.json")).unwrap(), SavedState::default());
        // A damaged file is an error naming the file and what to do, never an empty state.
        let damaged = dir.join("damaged.json");
        std::fs::write(&damaged, r#"{"accounts": {"bob": {"killed": "yes"}}}"#).unwrap();
        let err = load_state(&damaged).unwrap_err();
        assert!(matches!(err, StateFileError::Parse { .. }), "{err}");
        assert!(err.to_string().contains("damaged.json") && err.to_string().contains("remove it"), "{err}");
        // A directory where the file should be cannot be read.
        assert!(matches!(load_state(&dir), Err(StateFileError::Read { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
