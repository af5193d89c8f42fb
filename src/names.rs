//! Name tables at the edge: account and symbol names ↔ the engine's dense ids.

use std::collections::HashMap;

use engine::{AccountId, SymbolId, SymbolSpec};

/// Account and symbol names. Accounts get ids in first-seen order, up to a stated bound;
/// symbols are fixed by the engine's symbol table.
#[derive(Debug, Clone)]
pub struct Names {
    accounts: HashMap<String, AccountId>,
    account_names: Vec<String>,
    accounts_max: usize,
    symbols: HashMap<String, SymbolId>,
    symbol_specs: Vec<SymbolSpec>,
}

impl Names {
    /// Tables for these symbols and at most `accounts_max` accounts.
    pub fn new(symbols: &[SymbolSpec], accounts_max: usize) -> Names {
        Names {
            accounts: HashMap::new(),
            account_names: Vec::new(),
            accounts_max,
            symbols: symbols.iter().enumerate().map(|(i, s)| (s.name.clone(), SymbolId(i as u32))).collect(),
            symbol_specs: symbols.to_vec(),
        }
    }

    /// The id of an account, adding it if new; `None` when the table is full.
    pub fn account_id(&mut self, name: &str) -> Option<AccountId> {
        if let Some(&id) = self.accounts.get(name) {
            return Some(id);
        }
        if self.account_names.len() >= self.accounts_max {
            return None;
        }
        let id = AccountId(self.account_names.len() as u32);
        self.accounts.insert(name.to_string(), id);
        self.account_names.push(name.to_string());
        Some(id)
    }

    /// The name of a known account id.
    pub fn account_name(&self, id: AccountId) -> &str {
        self.account_names.get(id.index()).map(String::as_str).unwrap_or("?")
    }

    /// The id of an account name already known (never registers it).
    pub fn account_id_of(&self, name: &str) -> Option<AccountId> {
        self.account_names.iter().position(|n| n == name).map(|i| AccountId(i as u32))
    }

    /// Accounts known so far (ids are `0..accounts_len()`).
    pub fn accounts_len(&self) -> usize {
        self.account_names.len()
    }

    /// Bound on distinct accounts.
    pub fn accounts_max(&self) -> usize {
        self.accounts_max
    }

    /// The id of a listed symbol.
    pub fn symbol_id(&self, name: &str) -> Option<SymbolId> {
        self.symbols.get(name).copied()
    }

    /// The spec of a listed symbol id.
    pub fn symbol(&self, id: SymbolId) -> Option<&SymbolSpec> {
        self.symbol_specs.get(id.index())
    }

    /// All listed symbols, by id.
    pub fn symbols(&self) -> &[SymbolSpec] {
        &self.symbol_specs
    }
}
