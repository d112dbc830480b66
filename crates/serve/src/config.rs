//! The typed configuration of `newsrec serve`: the `[serve]` table of the settings tree,
//! plus the `[store]` table and the models directory the binary fills in from theirs
//! (they are shared with other commands, so they are not repeated under `[serve]`). The
//! binary applies its flags last; [`crate::Application::build`] calls
//! [`ServeConfig::validate`].

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use newsrec_core::ConfigError;
use newsrec_features::{StoreConfig, Window};
use newsrec_train::MixWeights;

use crate::experiments::Experiment;
use serde::{Deserialize, Serialize};

/// Largest `k` a client may ask for.
pub const MAX_K: usize = 100;

/// Everything the API needs to start.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeConfig {
    /// Address to listen on; port 0 picks a free port (tests, benches).
    pub addr: SocketAddr,
    /// The feature store: where its Redis is and its layout (key prefix, windows,
    /// session gap), which must match the consumer's. The `[store]` table.
    #[serde(skip)]
    pub store: StoreConfig,
    /// Model registry directory (versioned model directories and `current`); `models`
    /// of the `[paths]` table.
    #[serde(skip)]
    pub models_dir: PathBuf,
    /// The popularity window (hours) mixed into recommendations; one of the store's.
    pub live_window_hours: u32,
    /// Bearer token guarding `/admin/*`; without one the admin endpoints refuse everyone.
    pub admin_token: Option<AdminToken>,
    /// How often the registry is checked for a new `current` model.
    pub reload_interval_ms: u64,
    /// How often the in-process popularity snapshot is refreshed from the store.
    pub snapshot_interval_ms: u64,
    /// Longest a request waits for the feature store before serving degraded.
    pub store_timeout_ms: u64,
    /// After a store failure, how long requests skip the store (and serve degraded)
    /// before trying it again; the snapshot refresher probes it in the meantime.
    pub store_backoff_ms: u64,
    /// Longest any request may take before it is answered with 503.
    pub request_timeout_ms: u64,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Users whose last served tier is remembered to count tier transitions.
    pub tier_memory: usize,
    /// Served lists waiting for the served-list log at most; past it they are dropped
    /// and counted, so a slow log never slows the API.
    pub served_log_capacity: usize,
    /// Weights of the mixing components (shared with the offline evaluation).
    pub mix: MixWeights,
    /// A/B experiments (`[[serve.experiments]]`): live traffic split between variants
    /// of the mixing weights or model version.
    pub experiments: Vec<Experiment>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            store: StoreConfig::default(),
            models_dir: newsrec_core::Paths::default().models,
            live_window_hours: 6,
            admin_token: None,
            reload_interval_ms: 1_000,
            snapshot_interval_ms: 1_000,
            store_timeout_ms: 100,
            store_backoff_ms: 500,
            request_timeout_ms: 5_000,
            max_body_bytes: newsrec_core::MAX_EVENT_BYTES,
            tier_memory: 200_000,
            served_log_capacity: 10_000,
            mix: MixWeights::default(),
            experiments: Vec::new(),
        }
    }
}

impl ServeConfig {
    /// Checks what serde cannot: sane durations and limits, a usable store.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, v) in [
            ("reload_interval_ms", self.reload_interval_ms),
            ("snapshot_interval_ms", self.snapshot_interval_ms),
            ("store_timeout_ms", self.store_timeout_ms),
            ("request_timeout_ms", self.request_timeout_ms),
        ] {
            if v == 0 {
                return Err(ConfigError::new(format!("{name} must be positive")));
            }
        }
        if self.max_body_bytes < 256 {
            return Err(ConfigError::new("max_body_bytes must be at least 256"));
        }
        if self.tier_memory == 0 || self.served_log_capacity == 0 {
            return Err(ConfigError::new(
                "tier_memory and served_log_capacity must be positive",
            ));
        }
        self.store
            .validate()
            .map_err(|e| ConfigError::new(e.to_string()))?;
        if !self.store.windows().contains(&self.live_window()) {
            return Err(ConfigError::new(format!(
                "live_window_hours = {} is not one of the store's windows {:?}",
                self.live_window_hours, self.store.window_hours
            )));
        }
        let m = &self.mix;
        let weights = [
            m.cf,
            m.content,
            m.cluster,
            m.prior,
            m.popular,
            m.trending,
            m.read_next,
            m.recency,
            m.recency_half_life_hours,
            m.anonymous_content,
        ];
        if weights.iter().any(|w| !w.is_finite() || *w < 0.0) {
            return Err(ConfigError::new(
                "mix weights must be finite and non-negative",
            ));
        }
        if m.list_candidates < MAX_K {
            return Err(ConfigError::new(format!(
                "mix.list_candidates must be at least {MAX_K}"
            )));
        }
        crate::experiments::validate(&self.experiments)?;
        if let Some(t) = &self.admin_token
            && t.0.len() < 8
        {
            return Err(ConfigError::new(
                "admin_token must be at least 8 characters",
            ));
        }
        Ok(())
    }

    /// The popularity window mixed into recommendations.
    pub fn live_window(&self) -> Window {
        Window::hours(self.live_window_hours)
    }

    /// [`Self::reload_interval_ms`] as a duration.
    pub fn reload_interval(&self) -> Duration {
        Duration::from_millis(self.reload_interval_ms)
    }

    /// [`Self::snapshot_interval_ms`] as a duration.
    pub fn snapshot_interval(&self) -> Duration {
        Duration::from_millis(self.snapshot_interval_ms)
    }

    /// [`Self::store_timeout_ms`] as a duration.
    pub fn store_timeout(&self) -> Duration {
        Duration::from_millis(self.store_timeout_ms)
    }

    /// [`Self::store_backoff_ms`] as a duration.
    pub fn store_backoff(&self) -> Duration {
        Duration::from_millis(self.store_backoff_ms)
    }

    /// [`Self::request_timeout_ms`] as a duration.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

/// The admin bearer token. Its `Debug` and `Display` are masked so the config can be
/// logged whole.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct AdminToken(String);

impl AdminToken {
    /// Wraps a token.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// Compares against a presented token in time independent of where they differ, so
    /// response timing does not leak the token prefix by prefix.
    pub fn matches(&self, presented: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), presented.as_bytes());
        let mut diff = a.len() ^ b.len();
        for (i, x) in a.iter().enumerate() {
            diff |= usize::from(x ^ b.get(i).copied().unwrap_or(0));
        }
        diff == 0
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(***)")
    }
}

impl fmt::Display for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_refused() {
        assert!(ServeConfig::default().validate().is_ok());
        let bad = |f: fn(&mut ServeConfig)| {
            let mut c = ServeConfig::default();
            f(&mut c);
            c.validate().is_err()
        };
        assert!(bad(|c| c.store_timeout_ms = 0));
        assert!(bad(|c| c.mix.popular = -1.0));
        assert!(bad(|c| c.mix.cf = f64::NAN));
        assert!(bad(|c| c.live_window_hours = 5));
        assert!(bad(|c| c.store.prefix = "a{b".into()));
        assert!(bad(|c| c.admin_token = Some(AdminToken::new("short"))));
        assert!(bad(|c| c.max_body_bytes = 10));
    }

    #[test]
    fn token_is_masked_and_compared_exactly() {
        let t = AdminToken::new("s3cret-token");
        let c = ServeConfig {
            admin_token: Some(t.clone()),
            ..ServeConfig::default()
        };
        assert!(!format!("{c:?}").contains("s3cret"));
        assert_eq!(t.to_string(), "***");
        assert!(t.matches("s3cret-token"));
        assert!(!t.matches("s3cret-toke"));
        assert!(!t.matches("s3cret-token!"));
        assert!(!t.matches(""));
    }

    /// The `[serve]` table: typed address, nested `[mix]` over its defaults, and no
    /// place for what other tables own.
    #[test]
    fn the_serve_table_layers_over_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("serve.toml");
        let load = |text: &str| {
            std::fs::write(&path, text).expect("write");
            newsrec_core::load_file::<ServeConfig>(Some(&path))
        };
        let c = load("addr = \"0.0.0.0:9000\"\n[mix]\nrecency = 0.7\n").expect("load");
        assert_eq!(c.addr, SocketAddr::from(([0, 0, 0, 0], 9000)));
        assert_eq!(c.mix.recency, 0.7);
        assert_eq!(c.mix.cf, MixWeights::default().cf);
        assert_eq!(c.store, StoreConfig::default());
        assert!(c.validate().is_ok());
        assert!(load("addr = \"nowhere\"\n").is_err());
        assert!(load("[store]\nprefix = \"t:\"\n").is_err());
        assert!(load("redis_url = \"redis://h:1\"\n").is_err());
    }
}
