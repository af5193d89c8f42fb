//! What every session of the venue shares: symbols, accounts and their credentials, and the
//! rule that an account has at most one session at a time. Control plane only (logon), never
//! touched per order except for read-only lookups.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use engine::price_text::{self, PriceText};
use engine::{AccountId, SymbolId, SymbolSpec};

use fix::session::{LogonRequest, SessionConfig};

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
    /// A drop-copy account: its session receives copies of other accounts' ExecutionReports and
    /// never trades.
    pub drop_copy: bool,
    /// A market-data-only account: its session may subscribe to market data (35=V) and is
    /// refused every order (BusinessMessageReject 380=6).
    pub market_data_only: bool,
}

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum PasswordHashError {
    /// The system gave no randomness for the salt.
    #[error("no randomness for a password salt: {0}")]
    Randomness(getrandom::Error),
    /// Argon2 refused the input or the salt.
    #[error("password hashing failed: {0}")]
    Argon2(argon2::password_hash::Error),
}

/// Why a Logon was refused; the text is the Logout's 58.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LogonRefused {
    /// No account logs on with this SenderCompID.
    #[error("logon refused: unknown SenderCompID {0}")]
    UnknownCompId(String),
    /// Username (553) names another account.
    #[error("logon refused: Username {username} does not own {comp_id}")]
    UsernameMismatch {
        /// The Username sent.
        username: String,
        /// The SenderCompID sent.
        comp_id: String,
    },
    /// No Password (554).
    #[error("logon refused: Password (554) missing")]
    PasswordMissing,
    /// The account's stored hash does not parse (journaled, no longer configured).
    #[error("logon refused: account has no usable password")]
    NoUsablePassword,
    /// The password does not match.
    #[error("logon refused: wrong password")]
    WrongPassword,
    /// The account already has a session (one per account).
    #[error("logon refused: account {0} already has an active session")]
    AlreadyActive(String),
    /// The password-check worker's bounded queue is full.
    #[error("logon refused: too many logons in progress, retry")]
    Busy,
    /// The venue is stopping.
    #[error("logon refused: venue is shutting down")]
    ShuttingDown,
}

/// Hashes `password` with Argon2id and a fresh random salt, as a PHC string.
pub fn hash_password(password: &str) -> Result<String, PasswordHashError> {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).map_err(PasswordHashError::Randomness)?;
    let salt = SaltString::encode_b64(&salt).map_err(PasswordHashError::Argon2)?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(PasswordHashError::Argon2)
}

/// Symbols by name and id.
#[derive(Clone, Debug)]
pub struct Symbols {
    specs: Vec<SymbolSpec>,
    /// Looked up per order: a fast hash, not SipHash.
    by_name: rustc_hash::FxHashMap<String, SymbolId>,
}

impl Symbols {
    /// The symbols, ids in list order (the engine's order).
    pub fn new(specs: Vec<SymbolSpec>) -> Symbols {
        let by_name = specs.iter().enumerate().map(|(i, s)| (s.name.clone(), SymbolId(i as u32))).collect();
        Symbols { specs, by_name }
    }

    /// Id of a symbol name.
    pub fn id(&self, name: &str) -> Option<SymbolId> {
        self.by_name.get(name).copied()
    }

    /// Spec of an id.
    pub fn spec(&self, id: SymbolId) -> Option<&SymbolSpec> {
        self.specs.get(id.index())
    }

    /// All specs.
    pub fn specs(&self) -> &[SymbolSpec] {
        &self.specs
    }

    /// Price in ticks as decimal text with the symbol's decimals (`100.50`); the bare number of
    /// ticks for an unknown symbol.
    pub fn format_ticks(&self, id: SymbolId, ticks: i64) -> PriceText {
        match self.spec(id) {
            Some(spec) => PriceText::ticks(spec, engine::Price(ticks)),
            None => PriceText::fixed(i128::from(ticks) * i128::from(engine::PRICE_UNITS_PER_ONE), 0),
        }
    }

    /// Average of `notional_ticks / qty`, in price text with extra precision (AvgPx): rounded
    /// half to even at the engine's 8 decimals, trailing zeros dropped down to the symbol's
    /// decimals.
    pub fn format_avg(&self, id: SymbolId, notional_ticks: i128, qty: u64) -> PriceText {
        let (Some(spec), true) = (self.spec(id), qty > 0) else {
            return PriceText::fixed(0, 0);
        };
        let units = notional_ticks.saturating_mul(i128::from(spec.tick_units));
        PriceText::trimmed(price_text::average_units(units, qty), spec.price_decimals())
    }
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
        let by_comp_id =
            list.iter().enumerate().map(|(i, a)| (a.comp_id.clone(), AccountId(i as u32))).collect();
        Accounts { list, by_comp_id, active: Mutex::new(HashSet::new()) }
    }

    /// An account's configuration.
    pub fn get(&self, id: AccountId) -> Option<&AccountConfig> {
        self.list.get(id.index())
    }

    /// Id of an account by name.
    pub fn id_by_name(&self, name: &str) -> Option<AccountId> {
        self.list.iter().position(|a| a.name == name).map(|i| AccountId(i as u32))
    }

    /// All accounts.
    pub fn list(&self) -> &[AccountConfig] {
        &self.list
    }

    /// Checks a Logon's credentials and claims the account's single session slot.
    pub fn authenticate(&self, req: &LogonRequest<'_>) -> Result<AccountId, LogonRefused> {
        let Some(&id) = self.by_comp_id.get(req.sender_comp_id) else {
            return Err(LogonRefused::UnknownCompId(req.sender_comp_id.to_owned()));
        };
        let account = &self.list[id.index()];
        if let Some(user) = req.username {
            if user != account.name {
                return Err(LogonRefused::UsernameMismatch {
                    username: user.to_owned(),
                    comp_id: req.sender_comp_id.to_owned(),
                });
            }
        }
        let password = req.password.ok_or(LogonRefused::PasswordMissing)?;
        let hash = PasswordHash::new(&account.password_hash).map_err(|_| LogonRefused::NoUsablePassword)?;
        if Argon2::default().verify_password(password.as_bytes(), &hash).is_err() {
            return Err(LogonRefused::WrongPassword);
        }
        let mut active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        if !active.insert(id) {
            return Err(LogonRefused::AlreadyActive(account.name.clone()));
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
    use rust_decimal::Decimal;

    #[test]
    fn prices_print_with_the_symbols_decimals() {
        let s = Symbols::new(engine::default_symbols());
        assert_eq!(s.format_ticks(SymbolId(0), 10_050).as_str(), "100.50");
        assert_eq!(s.format_avg(SymbolId(0), 10_050 * 3 + 10_051, 4).as_str(), "100.5025");
        assert_eq!(s.format_avg(SymbolId(0), 10_000 * 2, 2).as_str(), "100.00");
    }

    /// The text `rust_decimal` makes of the same prices (the edge's decimal type, and how
    /// these were first written): the stack-written text must be the same.
    fn decimal_ticks(spec: &SymbolSpec, ticks: i64) -> String {
        let mut d = Decimal::from_i128_with_scale(i128::from(ticks) * i128::from(spec.tick_units), 8);
        d.rescale(spec.price_decimals());
        d.to_string()
    }

    fn decimal_avg(spec: &SymbolSpec, notional_ticks: i128, qty: u64) -> String {
        let units = Decimal::from_i128_with_scale(notional_ticks * i128::from(spec.tick_units), 8);
        let mut avg = (units / Decimal::from(qty)).round_dp(8).normalize();
        if avg.scale() < spec.price_decimals() {
            avg.rescale(spec.price_decimals());
        }
        avg.to_string()
    }

    #[test]
    fn price_text_edges() {
        let s = Symbols::new(vec![SymbolSpec::new("W", 100_000_000, 1), SymbolSpec::new("S", 5, 1)]);
        assert_eq!(s.format_ticks(SymbolId(0), 42).as_str(), "42");
        assert_eq!(s.format_ticks(SymbolId(1), 1).as_str(), "0.00000005");
        assert_eq!(s.format_ticks(SymbolId(1), -3).as_str(), "-0.00000015");
        assert_eq!(s.format_ticks(SymbolId(9), 7).as_str(), "7");
        assert_eq!(s.format_avg(SymbolId(0), 0, 3).as_str(), "0");
        assert_eq!(s.format_avg(SymbolId(0), 5, 0).as_str(), "0");
        // 1/3 of a unit: 0.33333333; 2/3: 0.66666667; a midpoint rounds to even.
        assert_eq!(s.format_avg(SymbolId(1), 1, 15).as_str(), "0.00000000");
        assert_eq!(s.format_avg(SymbolId(1), 1, 10).as_str(), "0.00000000");
        assert_eq!(s.format_avg(SymbolId(1), 3, 10).as_str(), "0.00000002");
    }

    proptest::proptest! {
        #[test]
        fn price_text_matches_rust_decimal(
            tick_units in proptest::prop_oneof![
                proptest::strategy::Just(1i64), proptest::strategy::Just(5), proptest::strategy::Just(25),
                proptest::strategy::Just(1_000_000), proptest::strategy::Just(100_000_000), 1i64..10_000_000
            ],
            ticks in -1_000_000_000i64..1_000_000_000,
            fills in proptest::collection::vec((1i64..1_000_000, 1u64..10_000), 1..6),
        ) {
            let spec = SymbolSpec::new("P", tick_units, 1);
            let s = Symbols::new(vec![spec.clone()]);
            let text = s.format_ticks(SymbolId(0), ticks);
            proptest::prop_assert_eq!(text.as_str(), decimal_ticks(&spec, ticks));
            let notional: i128 = fills.iter().map(|&(t, q)| i128::from(t) * i128::from(q)).sum();
            let qty: u64 = fills.iter().map(|f| f.1).sum();
            let avg = s.format_avg(SymbolId(0), notional, qty);
            proptest::prop_assert_eq!(avg.as_str(), decimal_avg(&spec, notional, qty));
        }
    }

    #[test]
    fn authentication_checks_password_and_single_session() {
        let accounts = Accounts::new(vec![AccountConfig {
            name: "alice".into(),
            comp_id: "alice".into(),
            password_hash: hash_password("secret").unwrap(),
            cancel_on_disconnect: true,
            admin: false,
            drop_copy: false,
            market_data_only: false,
        }]);
        let req = |pw| LogonRequest {
            sender_comp_id: "alice",
            username: None,
            password: Some(pw),
            heartbeat_s: 30,
            reset_seq_num: false,
        };
        assert_eq!(accounts.authenticate(&req("nope")), Err(LogonRefused::WrongPassword));
        assert_eq!(LogonRefused::WrongPassword.to_string(), "logon refused: wrong password");
        assert_eq!(accounts.authenticate(&req("secret")), Ok(AccountId(0)));
        assert!(accounts
            .authenticate(&req("secret"))
            .unwrap_err()
            .to_string()
            .contains("already has an active session"));
        accounts.release(AccountId(0));
        assert_eq!(accounts.authenticate(&req("secret")), Ok(AccountId(0)));
        let mallory = LogonRequest { sender_comp_id: "mallory", ..req("x") };
        assert_eq!(accounts.authenticate(&mallory), Err(LogonRefused::UnknownCompId("mallory".into())));
    }
}
