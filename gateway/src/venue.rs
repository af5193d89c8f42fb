//! What every session of the venue shares: symbols, accounts and their credentials, and the
//! rule that an account has at most one session at a time. Control plane only (logon), never
//! touched per order except for read-only lookups.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use engine::{AccountId, SymbolId, SymbolSpec};
use rust_decimal::Decimal;

use crate::session::{LogonRequest, SessionConfig};

/// One trading account.
#[derive(Clone, Debug)]
pub struct AccountConfig {
    /// Account name (also the default SenderCompID).
    pub name: String,
    /// SenderCompID the account logs on with.
    pub comp_id: String,
    /// Argon2 PHC string of the password (never the password itself).
    pub password_hash: String,
    /// Cancel the account's resting orders when its session ends.
    pub cancel_on_disconnect: bool,
    /// An operator account: its sessions send AdminRequest (U1) and never trade.
    pub admin: bool,
}

/// Hashes `password` with Argon2id and a fresh random salt, as a PHC string.
pub fn hash_password(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).map_err(|e| format!("no randomness for a salt: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Symbols by name and id.
#[derive(Clone, Debug)]
pub struct Symbols {
    specs: Vec<SymbolSpec>,
    by_name: HashMap<String, SymbolId>,
}

impl Symbols {
    /// The symbols, ids in list order (the engine's order).
    pub fn new(specs: Vec<SymbolSpec>) -> Symbols {
        let by_name = specs.iter().enumerate().map(|(i, s)| (s.name.clone(), i as SymbolId)).collect();
        Symbols { specs, by_name }
    }

    /// Id of a symbol name.
    pub fn id(&self, name: &str) -> Option<SymbolId> {
        self.by_name.get(name).copied()
    }

    /// Spec of an id.
    pub fn spec(&self, id: SymbolId) -> Option<&SymbolSpec> {
        self.specs.get(id as usize)
    }

    /// All specs.
    pub fn specs(&self) -> &[SymbolSpec] {
        &self.specs
    }

    /// Price in ticks as decimal text with the symbol's decimals (`100.50`).
    pub fn format_ticks(&self, id: SymbolId, ticks: i64) -> String {
        match self.spec(id) {
            Some(spec) => {
                let mut d = Decimal::from_i128_with_scale(
                    i128::from(ticks) * i128::from(spec.tick_units),
                    engine::PRICE_SCALE,
                );
                d.rescale(spec.price_decimals());
                d.to_string()
            }
            None => ticks.to_string(),
        }
    }

    /// Average of `notional_ticks / qty`, in price text with extra precision (AvgPx).
    pub fn format_avg(&self, id: SymbolId, notional_ticks: i128, qty: u64) -> String {
        let (Some(spec), true) = (self.spec(id), qty > 0) else {
            return "0".to_owned();
        };
        let units =
            Decimal::from_i128_with_scale(notional_ticks * i128::from(spec.tick_units), engine::PRICE_SCALE);
        let mut avg = units / Decimal::from(qty);
        avg = avg.round_dp(engine::PRICE_SCALE).normalize();
        if avg.scale() < spec.price_decimals() {
            avg.rescale(spec.price_decimals());
        }
        avg.to_string()
    }
}

/// Parses decimal price text into price units ([`engine::PRICE_SCALE`] decimals), exactly:
/// `None` when it is not a number or has more decimals than the engine keeps.
pub fn parse_price_units(text: &str) -> Option<i64> {
    let d: Decimal = text.parse().ok()?;
    let scaled = d.checked_mul(Decimal::from(engine::PRICE_UNITS_PER_ONE))?.normalize();
    if !scaled.is_integer() {
        return None;
    }
    i64::try_from(scaled.mantissa() / 10i128.pow(scaled.scale())).ok()
}

/// The accounts, their credentials, and who is logged on.
#[derive(Debug)]
pub struct Accounts {
    list: Vec<AccountConfig>,
    by_comp_id: HashMap<String, AccountId>,
    active: Mutex<HashSet<AccountId>>,
}

impl Accounts {
    /// Accounts with ids in list order.
    pub fn new(list: Vec<AccountConfig>) -> Accounts {
        let by_comp_id = list.iter().enumerate().map(|(i, a)| (a.comp_id.clone(), i as AccountId)).collect();
        Accounts { list, by_comp_id, active: Mutex::new(HashSet::new()) }
    }

    /// An account's configuration.
    pub fn get(&self, id: AccountId) -> Option<&AccountConfig> {
        self.list.get(id as usize)
    }

    /// Id of an account by name.
    pub fn id_by_name(&self, name: &str) -> Option<AccountId> {
        self.list.iter().position(|a| a.name == name).map(|i| i as AccountId)
    }

    /// All accounts.
    pub fn list(&self) -> &[AccountConfig] {
        &self.list
    }

    /// Checks a Logon's credentials and claims the account's single session slot. The error
    /// is the Logout text.
    pub fn authenticate(&self, req: &LogonRequest<'_>) -> Result<AccountId, String> {
        let Some(&id) = self.by_comp_id.get(req.sender_comp_id) else {
            return Err(format!("logon refused: unknown SenderCompID {}", req.sender_comp_id));
        };
        let account = &self.list[id as usize];
        if let Some(user) = req.username {
            if user != account.name {
                return Err(format!("logon refused: Username {user} does not own {}", req.sender_comp_id));
            }
        }
        let password = req.password.ok_or("logon refused: Password (554) missing")?;
        let hash = PasswordHash::new(&account.password_hash)
            .map_err(|_| "logon refused: account has no usable password")?;
        if Argon2::default().verify_password(password.as_bytes(), &hash).is_err() {
            return Err("logon refused: wrong password".to_owned());
        }
        let mut active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        if !active.insert(id) {
            return Err(format!("logon refused: account {} already has an active session", account.name));
        }
        Ok(id)
    }

    /// Frees the account's session slot.
    pub fn release(&self, id: AccountId) {
        self.active.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
    }
}

/// The venue as sessions see it.
#[derive(Debug)]
pub struct Venue {
    /// Symbols.
    pub symbols: Symbols,
    /// Accounts.
    pub accounts: Accounts,
    /// Session parameters (our CompID, message size bound, resend store).
    pub session: SessionConfig,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_parse_exactly_and_print_with_the_symbols_decimals() {
        assert_eq!(parse_price_units("100.50"), Some(10_050_000_000));
        assert_eq!(parse_price_units("0.00000001"), Some(1));
        assert_eq!(parse_price_units("0.000000001"), None);
        assert_eq!(parse_price_units("abc"), None);
        let s = Symbols::new(engine::default_symbols());
        assert_eq!(s.format_ticks(0, 10_050), "100.50");
        assert_eq!(s.format_avg(0, 10_050 * 3 + 10_051, 4), "100.5025");
        assert_eq!(s.format_avg(0, 10_000 * 2, 2), "100.00");
    }

    #[test]
    fn authentication_checks_password_and_single_session() {
        let accounts = Accounts::new(vec![AccountConfig {
            name: "alice".into(),
            comp_id: "alice".into(),
            password_hash: hash_password("secret").unwrap(),
            cancel_on_disconnect: true,
            admin: false,
        }]);
        let req = |pw| LogonRequest {
            sender_comp_id: "alice",
            username: None,
            password: Some(pw),
            heartbeat_s: 30,
        };
        assert_eq!(accounts.authenticate(&req("nope")), Err("logon refused: wrong password".into()));
        assert_eq!(accounts.authenticate(&req("secret")), Ok(0));
        assert!(accounts.authenticate(&req("secret")).unwrap_err().contains("already has an active session"));
        accounts.release(0);
        assert_eq!(accounts.authenticate(&req("secret")), Ok(0));
        let mallory = LogonRequest { sender_comp_id: "mallory", ..req("x") };
        assert!(accounts.authenticate(&mallory).unwrap_err().contains("unknown SenderCompID"));
    }
}
