//! Flags several commands share, each overriding one key of the settings tree.

use clap::Args;
use newsrec_features::{RedisTarget, StoreConfig};
use newsrec_ingest::KafkaSettings;

/// Where Kafka is and what topic the clicks are on.
#[derive(Args)]
pub struct KafkaFlags {
    /// Kafka bootstrap servers (`[kafka] brokers`, `NEWSREC_KAFKA_BROKERS`).
    #[arg(long)]
    pub brokers: Option<String>,
    /// Click topic (`[kafka] topic`).
    #[arg(long)]
    pub topic: Option<String>,
    /// librdkafka setting passed through (repeatable), e.g. `security.protocol=ssl`
    /// (`[kafka.options]`).
    #[arg(long = "kafka-option", value_name = "KEY=VALUE")]
    pub kafka_options: Vec<String>,
}

impl KafkaFlags {
    /// Applies the flags given.
    pub fn apply(self, kafka: &mut KafkaSettings) -> anyhow::Result<()> {
        if let Some(b) = self.brokers {
            kafka.brokers = Some(b);
        }
        if let Some(t) = self.topic {
            kafka.topic = t;
        }
        kafka.add_options(&self.kafka_options)?;
        kafka.validate()?;
        Ok(())
    }
}

/// Where the feature store's Redis is and under what key prefix.
#[derive(Args)]
pub struct StoreFlags {
    /// Redis URL (`redis://[user:password@]host:port`, `rediss://` for TLS), or a
    /// comma-separated list of Redis Cluster nodes (`[store] redis`,
    /// `NEWSREC_REDIS_URL`).
    #[arg(long)]
    pub redis: Option<String>,
    /// Treat a single `--redis` URL as a Redis Cluster seed.
    #[arg(long)]
    pub redis_cluster: bool,
    /// Redis key prefix (`[store] prefix`); must be the same for consume and serve.
    #[arg(long)]
    pub prefix: Option<String>,
}

impl StoreFlags {
    /// Applies the flags given.
    pub fn apply(self, store: &mut StoreConfig) -> anyhow::Result<()> {
        if let Some(r) = self.redis {
            store.redis = RedisTarget::parse(&r, false);
        }
        if self.redis_cluster {
            store.redis = store.redis.clone().into_cluster();
        }
        if let Some(p) = self.prefix {
            store.prefix = p;
        }
        store.validate()?;
        Ok(())
    }
}

/// Sets `slot` to the flag's value when the flag was given.
pub fn set<T>(slot: &mut T, flag: Option<T>) {
    if let Some(v) = flag {
        *slot = v;
    }
}
