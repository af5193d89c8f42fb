//! The (account, client order id) key of the risk engine's order map, and its hash.
//!
//! Client ids are short ASCII strings that differ in a few trailing digits (`ord-00001234`).
//! Hashed byte-wise with Fx they clustered badly in the map (the profile showed lookups
//! dominating a check), so the key is hashed with the engine's own [`engine::id_hash`] (two
//! folded 64×64→128 multiplies over the zero-padded id words), once per event or check: the id
//! map takes the hash with the key. (`Hash` is derived only for tests' `std` maps.)

use engine::{id_hash, AccountId, ClOrdId};

/// An (account, client order id) pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct IdKey {
    pub(crate) account: AccountId,
    pub(crate) id: ClOrdId,
}

impl IdKey {
    #[inline]
    pub(crate) fn new(account: AccountId, id: ClOrdId) -> IdKey {
        IdKey { account, id }
    }

    /// The key's hash for the id map ([`crate::id_map::IdMap`]), well mixed in every bit.
    #[inline]
    pub(crate) fn id_hash(&self) -> u64 {
        id_hash(self.account, &self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_separates_accounts_lengths_and_bytes() {
        let id = |s: &str| ClOrdId::from_str(s).unwrap();
        let mut seen = std::collections::HashSet::new();
        for account in 0..50u32 {
            for n in 0..200 {
                assert!(seen.insert(id_hash(AccountId(account), &id(&format!("ord-{n:08}")))));
            }
        }
        assert_ne!(
            id_hash(AccountId(1), &id("a")),
            id_hash(AccountId(1), &ClOrdId::from_bytes(b"a\0").unwrap())
        );
    }
}
