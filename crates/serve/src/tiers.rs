//! Remembers the tier each recently seen user was last served in, so the API can count
//! tier transitions (`newsrec_tier_transitions_total`) without a write to Redis on the
//! hot path.
//!
//! Memory is bounded: each shard keeps two generations of at most `capacity / SHARDS /
//! 2` users; when the young generation is full it becomes the old one and the previous
//! old one is dropped. Users active within roughly the last `capacity` distinct users
//! are remembered, which is what transition counting needs (a user moves up while
//! clicking, i.e. while active).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;

use newsrec_core::{Tier, UserId};

const SHARDS: usize = 16;

/// A bounded user → last tier map.
pub struct TierMemory {
    /// Sharded so concurrent requests rarely contend on one lock.
    shards: Vec<Mutex<Shard>>,
    /// Picks the shard; seeded per process so shard load does not depend on id shapes.
    hasher: RandomState,
    /// Entries per generation per shard.
    per_generation: usize,
}

#[derive(Default)]
struct Shard {
    young: HashMap<UserId, Tier>,
    old: HashMap<UserId, Tier>,
}

impl TierMemory {
    /// A memory of about `capacity` users.
    pub fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: RandomState::new(),
            per_generation: (capacity / SHARDS / 2).max(1),
        }
    }

    /// Records that `user` is now served in `tier`; returns the previous tier when it
    /// was remembered and differs.
    pub fn observe(&self, user: &UserId, tier: Tier) -> Option<Tier> {
        let idx = (self.hasher.hash_one(user) as usize) % self.shards.len();
        let mut shard = self.shards[idx]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let previous = match shard.young.get_mut(user) {
            Some(t) => Some(std::mem::replace(t, tier)),
            None => {
                let previous = shard.old.remove(user);
                if shard.young.len() >= self.per_generation {
                    shard.old = std::mem::take(&mut shard.young);
                }
                shard.young.insert(user.clone(), tier);
                previous
            }
        };
        previous.filter(|p| *p != tier)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> UserId {
        UserId::parse(s).expect("id")
    }

    #[test]
    fn reports_changes_only() {
        let m = TierMemory::new(1000);
        assert_eq!(m.observe(&u("a"), Tier::Anonymous), None);
        assert_eq!(m.observe(&u("a"), Tier::Anonymous), None);
        assert_eq!(m.observe(&u("a"), Tier::SemiLogged), Some(Tier::Anonymous));
        assert_eq!(m.observe(&u("a"), Tier::SemiLogged), None);
    }

    #[test]
    fn stays_bounded_and_keeps_recent_users() {
        let m = TierMemory::new(64);
        for i in 0..10_000 {
            m.observe(&u(&format!("u{i}")), Tier::Anonymous);
        }
        let total: usize = m
            .shards
            .iter()
            .map(|s| {
                let s = s.lock().expect("lock");
                s.young.len() + s.old.len()
            })
            .sum();
        assert!(total <= 64 + SHARDS, "{total}");
        assert_eq!(m.observe(&u("u9999"), Tier::Logged), Some(Tier::Anonymous));
    }
}
