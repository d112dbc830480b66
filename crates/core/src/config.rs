//! Layered configuration: a command's defaults, then an optional TOML file, then
//! `NEWSREC_*` environment variables (`NEWSREC_REDIS_URL` sets `redis_url`; nested keys
//! use a double underscore: `NEWSREC_WINDOWS__HOURS`). Command-line flags are applied by
//! the caller on top.

use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A configuration that cannot be used; reported at start-up.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

impl ConfigError {
    /// A config error with a message, for checks done after loading.
    pub fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}

/// Loads `T` from its `Default`, then `file` (if given, it must exist), then the
/// environment.
pub fn load_config<T>(file: Option<&Path>) -> Result<T, ConfigError>
where
    T: Default + Serialize + DeserializeOwned,
{
    let mut fig = Figment::from(Serialized::defaults(T::default()));
    if let Some(path) = file {
        if !path.is_file() {
            return Err(ConfigError(format!(
                "config file {} not found",
                path.display()
            )));
        }
        fig = fig.merge(Toml::file(path));
    }
    fig.merge(Env::prefixed("NEWSREC_").split("__"))
        .extract()
        .map_err(|e| ConfigError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
    struct Demo {
        alpha: u32,
        name: String,
    }

    #[test]
    fn file_overrides_defaults_and_missing_file_fails() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "alpha = 7\n").unwrap();
        let cfg: Demo = load_config(Some(&path)).unwrap();
        assert_eq!(cfg.alpha, 7);
        assert!(load_config::<Demo>(Some(&dir.path().join("nope.toml"))).is_err());
        std::fs::write(&path, "alpha = \"x\"\n").unwrap();
        assert!(load_config::<Demo>(Some(&path)).is_err());
    }
}
