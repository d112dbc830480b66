//! The one settings tree every command reads: each table is owned by the crate whose
//! code it configures, and defines its defaults there once.
//!
//! | table | type | read by |
//! |---|---|---|
//! | `[paths]` | [`Paths`] | every command that reads data or models |
//! | `[kafka]` | [`KafkaSettings`] | `replay`, `consume`, `serve` (`POST /events`), `demo` |
//! | `[store]` | [`StoreConfig`] | `consume`, `serve`, `demo`, `bench` |
//! | `[serve]` | [`ServeConfig`] | `serve` |
//! | `[consume]` | [`ConsumeSettings`] | `consume` |
//! | `[replay]` | [`ReplaySettings`] | `replay` |
//! | `[train]` | [`TrainParams`] | `train`, `pipeline` |
//! | `[evaluate]` | [`EvaluateSettings`] | `evaluate`, `pipeline`, `publish` |
//! | `[publish]` | [`PublishSettings`] | `pipeline`, `publish` |
//!
//! Layers, last wins: the defaults, the file given with `--config`, the [`ALIASES`],
//! `NEWSREC_<TABLE>__<KEY>` variables (`NEWSREC_STORE__PREFIX`,
//! `NEWSREC_TRAIN__ALS__FACTORS`), then the command's flags. `newsrec config show`
//! prints the result with secrets masked.

use std::path::Path;

use newsrec_core::{EnvAlias, Paths, load_settings};
use newsrec_features::StoreConfig;
use newsrec_ingest::{ConsumeSettings, KafkaSettings, ReplaySettings};
use newsrec_serve::{AdminToken, ServeConfig};
use newsrec_train::{EvaluateSettings, PublishSettings, TrainParams};
use serde::{Deserialize, Serialize};

/// Every setting of every command.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Data and model directories.
    pub paths: Paths,
    /// Brokers, click topic and client options.
    pub kafka: KafkaSettings,
    /// The feature store: its Redis and what it keeps.
    pub store: StoreConfig,
    /// The API.
    pub serve: ServeConfig,
    /// The consumer.
    pub consume: ConsumeSettings,
    /// The replay producer.
    pub replay: ReplaySettings,
    /// Training parameters of every tier.
    pub train: TrainParams,
    /// The offline evaluation.
    pub evaluate: EvaluateSettings,
    /// The publish gate.
    pub publish: PublishSettings,
}

/// The tables; a `NEWSREC_*` variable is a setting only when it names one of them.
const TABLES: &[&str] = &[
    "paths", "kafka", "store", "serve", "consume", "replay", "train", "evaluate", "publish",
];

/// Short names for the most used settings.
pub const ALIASES: &[EnvAlias] = &[
    ("NEWSREC_REDIS_URL", "store.redis"),
    ("NEWSREC_KAFKA_BROKERS", "kafka.brokers"),
    ("NEWSREC_ADMIN_TOKEN", "serve.admin_token"),
    ("NEWSREC_DATA_DIR", "paths.data"),
];

impl Settings {
    /// The defaults, then `file`, then the environment; checks every table.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        load_settings::<Self>(file, TABLES, ALIASES)?.checked()
    }

    /// Checks what serde cannot, in the tables every command shares.
    fn checked(self) -> anyhow::Result<Self> {
        self.kafka.validate()?;
        self.store.validate()?;
        self.publish.validate()?;
        Ok(self)
    }

    /// The API's config: the `[serve]` table with the store and models directory of
    /// the shared tables.
    pub fn serve_config(&self) -> ServeConfig {
        ServeConfig {
            store: self.store.clone(),
            models_dir: self.paths.models.clone(),
            ..self.serve.clone()
        }
    }

    /// A copy fit to print: passwords in Redis URLs, the admin token and secret Kafka
    /// options replaced by `***`.
    pub fn masked(&self) -> Self {
        let mut s = self.clone();
        s.store.redis = s.store.redis.masked();
        s.kafka = s.kafka.masked();
        if s.serve.admin_token.is_some() {
            s.serve.admin_token = Some(AdminToken::new("***"));
        }
        s
    }

    /// The settings as a TOML file (secrets masked), which `--config` reads back.
    pub fn show(&self) -> anyhow::Result<String> {
        Ok(toml::to_string(&self.masked())?)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::net::SocketAddr;

    use newsrec_features::RedisTarget;

    use super::*;

    /// The defaults and a file, without the environment of the shell running the tests
    /// (the variables are covered by the system test of `config show`).
    fn load(path: &Path) -> anyhow::Result<Settings> {
        newsrec_core::load_file::<Settings>(Some(path))?.checked()
    }

    fn file(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("newsrec.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    /// One file configures every command: `serve` and `consume` read the same
    /// `[store]` table, tables layer over their defaults, and typos are refused.
    #[test]
    fn one_file_configures_every_table() {
        let (_d, path) = file(
            "[paths]\nmodels = \"/srv/models\"\n\
             [kafka]\nbrokers = \"k1:9092\"\ntopic = \"t1\"\n\
             [store]\nredis = [\"redis://a:7000\", \"redis://b:7001\"]\nprefix = \"portal:\"\nhistory_len = 7\n\
             [serve]\naddr = \"0.0.0.0:9000\"\n[serve.mix]\nrecency = 0.7\n\
             [consume]\nmetrics_addr = \"127.0.0.1:9100\"\n\
             [train.als]\nfactors = 16\n",
        );
        let s = load(&path).unwrap();
        assert_eq!(s.store.prefix, "portal:");
        assert_eq!(s.store.history_len, 7);
        assert_eq!(s.store.window_hours, StoreConfig::default().window_hours);
        assert_eq!(
            s.store.redis,
            RedisTarget::Cluster(vec!["redis://a:7000".into(), "redis://b:7001".into()])
        );
        let serve = s.serve_config();
        assert_eq!(serve.store, s.store);
        assert_eq!(serve.models_dir, Path::new("/srv/models"));
        assert_eq!(serve.addr, SocketAddr::from(([0, 0, 0, 0], 9000)));
        assert_eq!(serve.mix.recency, 0.7);
        assert!(serve.validate().is_ok());
        let consumer = s.consume.consumer_config(&s.kafka);
        assert_eq!(consumer.topic, "t1");
        assert_eq!(
            s.consume.metrics_addr,
            Some(SocketAddr::from(([127, 0, 0, 1], 9100)))
        );
        assert_eq!(s.train.als.factors, 16);
        assert_eq!(s.kafka.client().unwrap().brokers, "k1:9092");

        for bad in [
            "[serve]\naddr = \"nowhere\"\n",
            "[store]\nprefx = \"x\"\n",
            "[store]\nprefix = \"a{b\"\n",
            "[kafka]\ntopic = \"\"\n",
            "redis_url = \"redis://h:1\"\n",
            "[store]\nredis = []\n",
        ] {
            let (_d, path) = file(bad);
            assert!(load(&path).is_err(), "accepted {bad:?}");
        }
    }

    /// What `config show` prints reads back as the same settings, with the secrets
    /// masked.
    #[test]
    fn show_masks_secrets_and_reads_back() {
        let mut s = Settings::default();
        s.store.redis = RedisTarget::Single("redis://app:s3cret@h:6379".into());
        s.serve.admin_token = Some(AdminToken::new("admin-s3cret"));
        s.kafka.brokers = Some("k:9092".into());
        s.kafka
            .add_options(&["sasl.password=s3cret", "security.protocol=sasl_ssl"])
            .unwrap();
        let text = s.show().unwrap();
        assert!(!text.contains("s3cret"), "{text}");
        assert!(text.contains("redis://app:***@h:6379"), "{text}");
        assert!(text.contains("sasl_ssl"), "{text}");
        let (_d, path) = file(&text);
        let back = load(&path).unwrap();
        assert_eq!(back.store.prefix, s.store.prefix);
        assert_eq!(back.kafka.options.len(), 2);
        assert_eq!(back.train, s.train);
        assert_eq!(back.serve.mix, s.serve.mix);
    }
}
