//! Layered configuration: a command's defaults, then an optional TOML file, then
//! `NEWSREC_*` environment variables (nested keys use a double underscore:
//! `NEWSREC_STORE__PREFIX` sets `prefix` of the `[store]` table). Command-line flags are
//! applied by the caller on top.
//!
//! [`load_settings`] reads one tree of tables: only variables naming one of its tables
//! are read (so `NEWSREC_SERVICES_DIR` and the like, meant for scripts, are not taken
//! for settings), plus a short list of aliases for the most used ones.

use std::path::{Path, PathBuf};

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

/// The prefix of every settings variable.
const ENV_PREFIX: &str = "NEWSREC_";

/// A variable read as another settings key: `("NEWSREC_REDIS_URL", "store.redis")`.
pub type EnvAlias = (&'static str, &'static str);

/// Loads a tree of tables: `T`'s `Default`, then `file` (if given, it must exist), then
/// the aliased variables, then `NEWSREC_<TABLE>__<KEY>` for each of `tables` (these win
/// over an alias of the same key). Other `NEWSREC_*` variables are not read.
pub fn load_settings<T>(
    file: Option<&Path>,
    tables: &'static [&'static str],
    aliases: &'static [EnvAlias],
) -> Result<T, ConfigError>
where
    T: Default + Serialize + DeserializeOwned,
{
    let aliased = Env::raw().filter_map(|key| {
        aliases
            .iter()
            .find(|(var, _)| key.as_str().eq_ignore_ascii_case(var))
            .map(|(_, to)| (*to).into())
    });
    let tabled = Env::prefixed(ENV_PREFIX).split("__").filter(|key| {
        let table = key.as_str().split('.').next().unwrap_or_default();
        tables.iter().any(|t| t.eq_ignore_ascii_case(table))
    });
    defaults_and_file::<T>(file)?
        .merge(aliased)
        .merge(tabled)
        .extract()
        .map_err(|e| ConfigError(e.to_string()))
}

/// Loads `T` from its `Default` and `file` alone, the environment left out (for
/// tests, which must not depend on the variables of the shell running them).
pub fn load_file<T>(file: Option<&Path>) -> Result<T, ConfigError>
where
    T: Default + Serialize + DeserializeOwned,
{
    defaults_and_file::<T>(file)?
        .extract()
        .map_err(|e| ConfigError(e.to_string()))
}

fn defaults_and_file<T: Default + Serialize>(file: Option<&Path>) -> Result<Figment, ConfigError> {
    let fig = Figment::from(Serialized::defaults(T::default()));
    let Some(path) = file else {
        return Ok(fig);
    };
    if !path.is_file() {
        return Err(ConfigError(format!(
            "config file {} not found",
            path.display()
        )));
    }
    Ok(fig.merge(Toml::file(path)))
}

/// Where the data and models live, for every command that reads or writes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Paths {
    /// Raw G1 data (download or `data synth` output).
    pub raw: PathBuf,
    /// Refined data (`data process` output).
    pub data: PathBuf,
    /// Model registry: versioned model directories and `current`.
    pub models: PathBuf,
}

impl Default for Paths {
    fn default() -> Self {
        Self {
            raw: PathBuf::from("data/raw"),
            data: PathBuf::from("data/refined"),
            models: PathBuf::from("models"),
        }
    }
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
        let cfg: Demo = load_file(Some(&path)).unwrap();
        assert_eq!(cfg.alpha, 7);
        assert!(load_file::<Demo>(Some(&dir.path().join("nope.toml"))).is_err());
        std::fs::write(&path, "alpha = \"x\"\n").unwrap();
        assert!(load_file::<Demo>(Some(&path)).is_err());
    }
}
