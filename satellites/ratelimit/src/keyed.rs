//! A bounded map of limiters, one per key (a session, an account, or an enum of both).

use core::hash::Hash;

use rustc_hash::FxHashMap;

use crate::config::{LimitConfig, RateLimitError};
use crate::limiter::{Decision, Limiter};

/// Most keys a new key's arrival examines for an idle one to evict when the map is full. Bounds
/// the work of one check; the sweep that every check advances by one key finds the rest.
pub const EVICT_SCAN_MAX: usize = 32;

/// One live key.
#[derive(Clone, Debug)]
struct Slot<K> {
    key: K,
    limiter: Limiter,
}

/// Limiters per key, with a default configuration and per-key overrides, holding at most
/// `keys_max` keys.
///
/// Keys live in a dense array (`slots`) addressed through a hash index. Every
/// [`check`](KeyedLimiter::check) also looks at one key under a sweeping hand and evicts it if
/// idle ([`Limiter::is_idle`]: bucket full, no refusal in the abuse window). Eviction changes no
/// decision, since an idle limiter behaves exactly like a fresh one.
///
/// When a new key arrives at a full map, up to [`EVICT_SCAN_MAX`] keys from the hand are
/// examined and the first idle one is evicted. If none is idle, the new key is refused
/// (`Limited`, retry after one emission interval of its configuration) rather than an active
/// key's state being dropped: dropping an active key would hand it a fresh burst, so a client
/// cycling through keys could buy itself unlimited bursts. Every key a full map holds is then
/// active, so the refusal is the bound doing its job (invariant 6: a full map is a reject).
///
/// The index hashes with `rustc-hash`'s Fx: keys are sessions and accounts the gateway has
/// authenticated, not attacker-chosen strings.
pub struct KeyedLimiter<K> {
    default: LimitConfig,
    overrides: FxHashMap<K, LimitConfig>,
    index: FxHashMap<K, u32>,
    slots: Vec<Slot<K>>,
    keys_max: usize,
    /// Position of the sweep in `slots` (taken modulo the length).
    hand: usize,
}

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    /// A limiter map for up to `keys_max` keys, each configured by `default` unless overridden.
    /// The slots and the index are allocated here, once, for `keys_max` keys.
    pub fn new(default: LimitConfig, keys_max: usize) -> Result<KeyedLimiter<K>, RateLimitError> {
        default.validate()?;
        if keys_max == 0 {
            return Err(RateLimitError::ZeroKeys);
        }
        assert!(keys_max <= u32::MAX as usize, "keys_max {keys_max} does not fit a u32 slot index");
        Ok(KeyedLimiter {
            default,
            overrides: FxHashMap::default(),
            index: FxHashMap::with_capacity_and_hasher(keys_max, Default::default()),
            slots: Vec::with_capacity(keys_max),
            keys_max,
            hand: 0,
        })
    }

    /// Decides one message of `key` arriving at `now_ns`.
    #[inline]
    pub fn check(&mut self, key: &K, now_ns: u64) -> Decision {
        let decision = match self.index.get(key) {
            Some(&slot) => self.slots[slot as usize].limiter.check(now_ns),
            None => self.check_new_key(key, now_ns),
        };
        // The key just checked is never idle now (an allowed message moved its TAT past
        // `now_ns`, a refusal is in its window), so the sweep cannot evict it.
        self.sweep_one(now_ns);
        decision
    }

    #[cold]
    fn check_new_key(&mut self, key: &K, now_ns: u64) -> Decision {
        let config = *self.config_for(key);
        if self.slots.len() >= self.keys_max && !self.evict_one_idle(now_ns) {
            return Decision::Limited { retry_after_ns: config.emission_interval_ns() };
        }
        let mut limiter = Limiter::new_unchecked(config);
        let decision = limiter.check(now_ns);
        self.index.insert(key.clone(), self.slots.len() as u32);
        self.slots.push(Slot { key: key.clone(), limiter });
        decision
    }

    /// Advances the sweep by one key, evicting it if idle.
    #[inline]
    fn sweep_one(&mut self, now_ns: u64) {
        if self.slots.is_empty() {
            return;
        }
        let i = self.hand % self.slots.len();
        if self.slots[i].limiter.is_idle(now_ns) {
            self.evict(i); // the slot moved into `i` is examined next
            self.hand = i;
        } else {
            self.hand = i + 1;
        }
    }

    /// Evicts the first idle key among up to [`EVICT_SCAN_MAX`] from the hand.
    fn evict_one_idle(&mut self, now_ns: u64) -> bool {
        for _ in 0..EVICT_SCAN_MAX.min(self.slots.len()) {
            let i = self.hand % self.slots.len();
            if self.slots[i].limiter.is_idle(now_ns) {
                self.evict(i);
                self.hand = i;
                return true;
            }
            self.hand = i + 1;
        }
        false
    }

    /// Drops slot `i`, moving the last slot into its place.
    fn evict(&mut self, i: usize) {
        let gone = self.slots.swap_remove(i);
        self.index.remove(&gone.key);
        if let Some(moved) = self.slots.get(i) {
            if let Some(slot) = self.index.get_mut(&moved.key) {
                *slot = i as u32;
            }
        }
    }

    /// Forgets a key at once (its session logged out). True if it was held.
    pub fn remove(&mut self, key: &K) -> bool {
        match self.index.get(key) {
            Some(&slot) => {
                self.evict(slot as usize);
                true
            }
            None => false,
        }
    }

    /// Evicts every idle key (a maintenance pass; checks already evict as they go). Returns how
    /// many were evicted.
    pub fn evict_idle(&mut self, now_ns: u64) -> usize {
        let before = self.slots.len();
        let mut i = 0;
        while i < self.slots.len() {
            if self.slots[i].limiter.is_idle(now_ns) {
                self.evict(i);
            } else {
                i += 1;
            }
        }
        before - self.slots.len()
    }

    /// Sets the configuration of one key (e.g. an account's configured rate). A live key takes it
    /// at once, keeping its bucket's level. Overrides are bounded by `keys_max` too.
    pub fn set_override(&mut self, key: K, config: LimitConfig) -> Result<(), RateLimitError> {
        config.validate()?;
        if !self.overrides.contains_key(&key) && self.overrides.len() >= self.keys_max {
            return Err(RateLimitError::OverridesFull(self.keys_max));
        }
        if let Some(&slot) = self.index.get(&key) {
            self.slots[slot as usize].limiter.reconfigure(config);
        }
        self.overrides.insert(key, config);
        Ok(())
    }

    /// Returns a key to the default configuration.
    pub fn remove_override(&mut self, key: &K) -> Option<LimitConfig> {
        let old = self.overrides.remove(key)?;
        if let Some(&slot) = self.index.get(key) {
            self.slots[slot as usize].limiter.reconfigure(self.default);
        }
        Some(old)
    }

    /// Changes the default configuration; live keys without an override take it at once.
    pub fn set_default(&mut self, config: LimitConfig) -> Result<(), RateLimitError> {
        config.validate()?;
        self.default = config;
        for slot in &mut self.slots {
            if !self.overrides.contains_key(&slot.key) {
                slot.limiter.reconfigure(config);
            }
        }
        Ok(())
    }

    /// The configuration `key` has (its override, else the default).
    pub fn config_for(&self, key: &K) -> &LimitConfig {
        self.overrides.get(key).unwrap_or(&self.default)
    }

    /// The limiter of a live key.
    pub fn get(&self, key: &K) -> Option<&Limiter> {
        self.index.get(key).map(|&slot| &self.slots[slot as usize].limiter)
    }

    /// Keys held now.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when no key is held.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The bound on keys held.
    pub fn keys_max(&self) -> usize {
        self.keys_max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn config() -> LimitConfig {
        // 1000/s, burst 2: refills completely in 2 ms; abuse window 8 ms.
        LimitConfig { rate_per_sec: 1000, burst: 2, abuse_rejects_max: 3, abuse_window_ms: 8 }
    }

    #[test]
    fn keys_are_independent_and_overrides_apply() {
        let mut k = KeyedLimiter::new(config(), 8).unwrap();
        assert_eq!(k.check(&"a", 0), Decision::Allow);
        assert_eq!(k.check(&"a", 0), Decision::Allow);
        assert_eq!(k.check(&"a", 0), Decision::Limited { retry_after_ns: MS });
        assert_eq!(k.check(&"b", 0), Decision::Allow);
        k.set_override("c", LimitConfig { burst: 1, ..config() }).unwrap();
        assert_eq!(k.check(&"c", 0), Decision::Allow);
        assert_eq!(k.check(&"c", 0), Decision::Limited { retry_after_ns: MS });
        // An override reaches a live key at once, keeping its level.
        k.set_override("a", LimitConfig { burst: 3, ..config() }).unwrap();
        assert_eq!(k.check(&"a", 0), Decision::Allow);
        assert_eq!(k.remove_override(&"a"), Some(LimitConfig { burst: 3, ..config() }));
        assert_eq!(k.config_for(&"a"), &config());
    }

    #[test]
    fn idle_keys_are_swept_without_changing_decisions() {
        let mut k = KeyedLimiter::new(config(), 8).unwrap();
        for key in 0..8u32 {
            assert_eq!(k.check(&key, 0), Decision::Allow);
        }
        assert_eq!(k.len(), 8);
        // Each key took one of its two tokens at 0: refilled at 1 ms, not a nanosecond before.
        assert_eq!(k.evict_idle(MS - 1), 0);
        // From 1 ms every old key is idle: the new key takes the room of one, and the sweep
        // removes the rest, one per check.
        for _ in 0..16 {
            k.check(&100, MS);
        }
        assert_eq!(k.len(), 1);
        assert!(k.get(&100).is_some());
        assert_eq!(k.evict_idle(10 * MS), 1);
        assert!(k.is_empty());
    }

    #[test]
    fn a_full_map_evicts_idle_keys_first_and_otherwise_refuses_the_new_key() {
        let mut k = KeyedLimiter::new(config(), 2).unwrap();
        assert_eq!(k.check(&1, 0), Decision::Allow);
        assert_eq!(k.check(&2, 0), Decision::Allow);
        // Both active: the third key is refused and nothing is dropped.
        assert_eq!(k.check(&3, MS / 2), Decision::Limited { retry_after_ns: MS });
        assert_eq!(k.len(), 2);
        assert!(k.get(&1).is_some() && k.get(&2).is_some());
        // Key 1 keeps sending (stays active); key 2 goes quiet and is idle from 1 ms.
        assert_eq!(k.check(&1, 2 * MS / 3), Decision::Allow);
        assert_eq!(k.check(&3, MS), Decision::Allow);
        assert!(k.get(&2).is_none());
        assert!(k.get(&1).is_some() && k.get(&3).is_some());
    }

    #[test]
    fn a_key_with_recent_refusals_is_not_idle() {
        let mut k = KeyedLimiter::new(config(), 1).unwrap();
        assert_eq!(k.check(&1, 0), Decision::Allow);
        assert_eq!(k.check(&1, 0), Decision::Allow);
        assert!(matches!(k.check(&1, 0), Decision::Limited { .. }));
        // Bucket full again at 2 ms, but the refusal stays in the 8 ms window: key 1 is kept.
        assert!(matches!(k.check(&2, 3 * MS), Decision::Limited { .. }));
        assert!(k.get(&1).is_some());
        assert_eq!(k.check(&2, 8 * MS), Decision::Allow);
        assert!(k.get(&1).is_none());
    }

    #[test]
    fn abuse_is_per_key_and_remove_forgets() {
        let mut k = KeyedLimiter::new(config(), 4).unwrap();
        let mut last = Decision::Allow;
        for _ in 0..6 {
            last = k.check(&"flood", 0);
        }
        // 2 allowed, 3 tolerated refusals, the 4th refusal is abuse.
        assert_eq!(last, Decision::Abuse);
        assert_eq!(k.check(&"calm", 0), Decision::Allow);
        assert!(k.remove(&"flood"));
        assert!(!k.remove(&"flood"));
        assert_eq!(k.check(&"flood", 0), Decision::Allow);
    }

    #[test]
    fn overrides_are_bounded() {
        let mut k = KeyedLimiter::new(config(), 1).unwrap();
        k.set_override(1, config()).unwrap();
        k.set_override(1, config()).unwrap();
        assert_eq!(k.set_override(2, config()), Err(RateLimitError::OverridesFull(1)));
        assert_eq!(
            k.set_override(1, LimitConfig { rate_per_sec: 0, ..config() }),
            Err(RateLimitError::ZeroRate)
        );
        assert!(matches!(KeyedLimiter::<u8>::new(config(), 0), Err(RateLimitError::ZeroKeys)));
    }
}
