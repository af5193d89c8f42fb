//! The (account, client order id) key of the risk engine's order map, and its hash.
//!
//! Client ids are short ASCII strings that differ in a few trailing digits (`ord-00001234`).
//! Hashed byte-wise with Fx they clustered badly in the map (the profile showed lookups
//! dominating a check), so the key is hashed like the engine's `id_index` does, with two folded
//! 64×64→128 multiplies over the zero-padded id words, once per event or check: the id map
//! takes the hash with the key. (`Hash` is derived only for tests' `std` maps.)

use engine::{AccountId, ClOrdId, CL_ORD_ID_LEN_MAX};

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

const _: () = assert!(CL_ORD_ID_LEN_MAX == 32, "the hash reads an id as four words");

/// Up to 32 bytes as four words, with fixed-size loads only (overlapping where the length is not
/// a multiple of 8; the length is hashed separately, so overlaps cannot merge two ids). Copying
/// the id into a zeroed buffer first cost a store-forwarding stall on every hash.
#[inline]
fn words(b: &[u8]) -> [u64; 4] {
    let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
    let u32_at = |i: usize| u64::from(u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes")));
    let n = b.len();
    match n {
        0 => [0; 4],
        1..=3 => [u64::from(b[0]) | u64::from(b[n / 2]) << 8 | u64::from(b[n - 1]) << 16, 0, 0, 0],
        4..=8 => [u32_at(0) | u32_at(n - 4) << 32, 0, 0, 0],
        9..=16 => [u64_at(0), u64_at(n - 8), 0, 0],
        _ => [u64_at(0), u64_at(8), u64_at(n - 16), u64_at(n - 8)],
    }
}

/// Hash of an (account, id) pair, well mixed in every bit (the id index keeps the high 32 bits,
/// whose low bits also pick the home bucket).
#[inline]
fn id_hash(account: AccountId, id: &ClOrdId) -> u64 {
    const K0: u64 = 0x243f_6a88_85a3_08d3;
    const K1: u64 = 0x1319_8a2e_0370_7344;
    const K2: u64 = 0xa409_3822_299f_31d0;
    const K3: u64 = 0x082e_fa98_ec4e_6c89;
    #[inline]
    fn fold(a: u64, b: u64) -> u64 {
        let p = u128::from(a) * u128::from(b);
        (p as u64) ^ ((p >> 64) as u64)
    }
    let bytes = id.as_bytes();
    let [w0, w1, w2, w3] = words(bytes);
    let tag = u64::from(account) | ((bytes.len() as u64) << 32);
    let h = fold(w0 ^ K0, w1 ^ K1) ^ fold(w2 ^ K2 ^ tag, w3 ^ K3);
    fold(h ^ K1, K2 ^ tag)
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
                assert!(seen.insert(id_hash(account, &id(&format!("ord-{n:08}")))));
            }
        }
        assert_ne!(id_hash(1, &id("a")), id_hash(1, &ClOrdId::from_bytes(b"a\0").unwrap()));
    }
}
