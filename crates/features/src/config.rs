//! What the feature store keeps and for how long. Both implementations read the same
//! config, so the same events give the same state in either.

use newsrec_core::time::HOUR_MS;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::redis_store::RedisTarget;
use crate::window::Window;

/// Feature store settings (the `[store]` table): where its Redis is, and what it keeps.
/// Durations are event time unless the name says otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// The Redis server (`redis://[user:password@]host:port[/db]`, `rediss://` for
    /// TLS), or a list of Redis Cluster seed nodes. The in-memory store ignores it.
    pub redis: RedisTarget,
    /// Prepended to every Redis key, so several stores (tests, tenants) share a server.
    /// May not contain `{` or `}`: those would change the keys' hash slots.
    pub prefix: String,
    /// Popularity windows, in hours. Each must be a multiple of the bucket size.
    pub window_hours: Vec<u32>,
    /// Width of the count buckets windows are built from, minutes; must divide 60.
    /// Smaller buckets slide more smoothly and cost more keys.
    pub bucket_minutes: u32,
    /// Half-life of the trending score, minutes.
    pub trending_half_life_minutes: u32,
    /// Trending entries kept per partition (the least trending are dropped first).
    pub trending_max: usize,
    /// Pages kept in a user's recent history.
    pub history_len: usize,
    /// Distinct pages kept in a user's read set (4 bytes each), which the API never
    /// recommends to them again; past it the oldest reads go first.
    pub read_set_max: usize,
    /// Two consecutive reads of a user belong to one session when they are at most this
    /// far apart (and carry the same `session_id`, or both none).
    pub session_gap_minutes: u32,
    /// "Read next" candidates kept per page and partition.
    pub covisit_max_next: usize,
    /// A page's "read next" list is dropped when no pair involving it was seen for this
    /// long.
    pub covisit_ttl_hours: u32,
    /// Entries each partition publishes in its window and trending top lists. Readers
    /// merge these lists, so `popular` and `trending` rank at most this many pages per
    /// partition (a page outside a partition's list counts nothing from it).
    pub top_list_len: usize,
    /// Pages whose first-seen time is kept (the oldest are dropped first).
    pub max_items: usize,
    /// Wall-clock lifetime of an idle user's state, days (0 keeps it forever). A
    /// retention decision, so it follows the wall clock, unlike everything else.
    pub user_ttl_days: u32,
    /// User records whoever writes a partition keeps in memory for it, so a batch reads
    /// only users it has not seen (past this many, they are all read again as needed;
    /// 0 reads every batch's users). Process memory, not Redis; only the consumer uses
    /// it. Held records assume Redis does not evict keys (`maxmemory-policy
    /// noeviction`, as in `compose/`): an evicted user key would be written back whole.
    pub user_cache: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            redis: RedisTarget::default(),
            prefix: "newsrec:".into(),
            window_hours: vec![1, 6, 24],
            bucket_minutes: 5,
            trending_half_life_minutes: 120,
            trending_max: 20_000,
            history_len: 20,
            read_set_max: newsrec_core::DEFAULT_READ_SET_MAX,
            session_gap_minutes: 30,
            covisit_max_next: 50,
            covisit_ttl_hours: 72,
            top_list_len: 1_000,
            max_items: 1_000_000,
            user_ttl_days: 90,
            user_cache: 200_000,
        }
    }
}

impl StoreConfig {
    /// The default config with another key prefix.
    pub fn with_prefix(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
            ..Self::default()
        }
    }

    /// Checks the settings; the store constructors call it.
    pub fn validate(&self) -> Result<(), StoreError> {
        let bad = |m: String| Err(StoreError::Config(m));
        if self.prefix.contains(['{', '}']) {
            return bad(format!("prefix `{}` may not contain braces", self.prefix));
        }
        if self.bucket_minutes == 0 || 60 % self.bucket_minutes != 0 {
            return bad(format!(
                "bucket_minutes = {} must divide 60",
                self.bucket_minutes
            ));
        }
        if self.window_hours.is_empty() || self.window_hours.contains(&0) {
            return bad("window_hours must be a non-empty list of positive hours".into());
        }
        if self.trending_half_life_minutes == 0 || self.session_gap_minutes == 0 {
            return bad("half-life and session gap must be positive".into());
        }
        if self.history_len == 0
            || self.covisit_max_next == 0
            || self.trending_max == 0
            || self.read_set_max == 0
        {
            return bad(
                "history_len, read_set_max, covisit_max_next and trending_max must be positive"
                    .into(),
            );
        }
        if self.max_items == 0 || self.covisit_ttl_hours == 0 || self.top_list_len == 0 {
            return bad("max_items, covisit_ttl_hours and top_list_len must be positive".into());
        }
        Ok(())
    }

    /// The windows, shortest first, without duplicates.
    pub fn windows(&self) -> Vec<Window> {
        let mut h = self.window_hours.clone();
        h.sort_unstable();
        h.dedup();
        h.into_iter().map(Window::hours).collect()
    }

    /// Bucket width, ms.
    pub fn bucket_ms(&self) -> i64 {
        i64::from(self.bucket_minutes) * 60_000
    }

    /// Trending half-life, ms.
    pub fn half_life_ms(&self) -> i64 {
        i64::from(self.trending_half_life_minutes) * 60_000
    }

    /// Session gap, ms.
    pub fn session_gap_ms(&self) -> i64 {
        i64::from(self.session_gap_minutes) * 60_000
    }

    /// Co-visitation lifetime, ms.
    pub fn covisit_ttl_ms(&self) -> i64 {
        i64::from(self.covisit_ttl_hours) * HOUR_MS
    }

    /// Wall-clock user TTL, ms (0: none).
    pub fn user_ttl_ms(&self) -> i64 {
        i64::from(self.user_ttl_days) * 24 * HOUR_MS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates() {
        assert!(StoreConfig::default().validate().is_ok());
        assert!(StoreConfig::with_prefix("a{b").validate().is_err());
        let c = StoreConfig {
            bucket_minutes: 7,
            ..StoreConfig::default()
        };
        assert!(c.validate().is_err());
        let c = StoreConfig {
            window_hours: vec![24, 1, 6, 1],
            ..StoreConfig::default()
        };
        assert_eq!(
            c.windows(),
            vec![Window::hours(1), Window::hours(6), Window::hours(24)]
        );
    }
}
