//! The settings tables of streaming ingest: `[kafka]` (brokers, topic, client options,
//! shared by replay, consume and the API's `POST /events`), `[consume]` and `[replay]`.
//! Each default is defined here once; the binary layers a file, `NEWSREC_*` variables
//! and flags over them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use newsrec_features::online::OnlineConfig;

use crate::consumer::{Attribution, ConsumerConfig, DEFAULT_BATCH_MAX};
use crate::eventlog::{KafkaConfig, LogError};
use crate::prequential::PrequentialConfig;
use crate::replay::{ReplayConfig, Speed};

/// Value shown for a masked secret.
const MASK: &str = "***";

/// The `[kafka]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaSettings {
    /// Bootstrap servers, `host:port[,host:port…]`. Absent: no Kafka (the API's
    /// `POST /events` is off; `demo` uses its in-process log; `replay` and `consume`
    /// refuse to start).
    pub brokers: Option<String>,
    /// The click topic. Dead letters go to `<topic>.dead-letter` unless
    /// `[consume] dead_letter_topic` says otherwise.
    pub topic: String,
    /// The served-list log's topic; `<topic>.served` when absent.
    pub served_topic: Option<String>,
    /// Partitions of the topics newsrec creates when they are missing.
    pub partitions: i32,
    /// librdkafka settings passed through to every client (SASL, TLS, tuning), e.g.
    /// `"security.protocol" = "ssl"`; applied after newsrec's own defaults.
    pub options: BTreeMap<String, String>,
}

impl Default for KafkaSettings {
    fn default() -> Self {
        Self {
            brokers: None,
            topic: "clicks".into(),
            served_topic: None,
            partitions: 4,
            options: BTreeMap::new(),
        }
    }
}

impl KafkaSettings {
    /// Adds `key=value` options (the `--kafka-option` flags), over the table's.
    pub fn add_options<S: AsRef<str>>(&mut self, opts: &[S]) -> Result<(), LogError> {
        for (k, v) in KafkaConfig::new("").with_options(opts)?.options {
            self.options.insert(k, v);
        }
        Ok(())
    }

    /// The topic served lists are logged to.
    pub fn served_topic(&self) -> String {
        self.served_topic
            .clone()
            .unwrap_or_else(|| format!("{}.served", self.topic))
    }

    /// The client config, or `None` when no brokers are set.
    pub fn client(&self) -> Option<KafkaConfig> {
        let brokers = self.brokers.as_deref().map(str::trim)?;
        if brokers.is_empty() {
            return None;
        }
        Some(KafkaConfig {
            brokers: brokers.to_owned(),
            options: self
                .options
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        })
    }

    /// The client config of a command that cannot run without Kafka.
    pub fn required(&self) -> Result<KafkaConfig, LogError> {
        self.client().ok_or_else(|| {
            LogError::Config(
                "no Kafka brokers are set: pass --brokers, or set NEWSREC_KAFKA_BROKERS or \
                 `brokers` in the [kafka] table"
                    .into(),
            )
        })
    }

    /// A copy fit to print: the values of secret options replaced by `***`.
    pub fn masked(&self) -> Self {
        let mut out = self.clone();
        for (k, v) in &mut out.options {
            if crate::eventlog::is_secret(k) {
                *v = MASK.into();
            }
        }
        out
    }

    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), LogError> {
        if self.topic.trim().is_empty() {
            return Err(LogError::Config("kafka.topic is empty".into()));
        }
        if self.partitions < 1 {
            return Err(LogError::Config("kafka.partitions must be positive".into()));
        }
        Ok(())
    }
}

/// The `[consume]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsumeSettings {
    /// Consumer group.
    pub group: String,
    /// Where invalid messages go; `<kafka.topic>.dead-letter` when absent.
    pub dead_letter_topic: Option<String>,
    /// Most messages per round (see [`ConsumerConfig::batch_max`]).
    pub batch_max: usize,
    /// Serve the consumer's Prometheus metrics (`/metrics`) on this address.
    pub metrics_addr: Option<SocketAddr>,
    /// Refined data directory whose `items.parquet` gives publication times.
    pub items: Option<PathBuf>,
    /// Attribute clicks to the served-list topic's lists and keep the online counters
    /// (run it in one process of a group).
    pub attribution: bool,
    /// How long after a list was served a click may be attributed to it (event time).
    pub attribution_minutes: u32,
    /// Most recent lists kept per user for attribution.
    pub attribution_lists: usize,
    /// Positions counted one by one (`newsrec_online_clicks_total{position}`); the rest
    /// are `other`.
    pub attribution_positions: usize,
}

impl Default for ConsumeSettings {
    fn default() -> Self {
        Self {
            group: "newsrec-consumer".into(),
            dead_letter_topic: None,
            batch_max: DEFAULT_BATCH_MAX,
            metrics_addr: None,
            items: None,
            attribution: true,
            attribution_minutes: 30,
            attribution_lists: 20,
            attribution_positions: 20,
        }
    }
}

impl ConsumeSettings {
    /// The consumer's config: these settings over the topic and partitions of `kafka`.
    pub fn consumer_config(&self, kafka: &KafkaSettings) -> ConsumerConfig {
        let mut cfg = ConsumerConfig::new(&kafka.topic, &self.group);
        if let Some(d) = &self.dead_letter_topic {
            cfg.dead_letter_topic = d.clone();
        }
        cfg.batch_max = self.batch_max;
        cfg.partitions = kafka.partitions;
        cfg.attribution = self.attribution.then(|| Attribution {
            served_topic: kafka.served_topic(),
            online: OnlineConfig {
                window_ms: i64::from(self.attribution_minutes) * 60_000,
                max_lists: self.attribution_lists.max(1),
                positions: self.attribution_positions.max(1),
            },
        });
        cfg
    }
}

/// The `[replay]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReplaySettings {
    /// `max`, or a factor of real time by event time (`1000`).
    pub speed: Speed,
    /// The API a prequential replay asks before each click (`http://host:port`).
    pub api: Option<String>,
    /// Recommendations a prequential replay asks for per click.
    pub k: usize,
    /// Clicks a prequential replay has in flight at once.
    pub concurrency: usize,
    /// How long one API request of a prequential replay may take, in milliseconds.
    pub api_timeout_ms: u64,
}

impl Default for ReplaySettings {
    fn default() -> Self {
        let p = PrequentialConfig::new("", "");
        Self {
            speed: Speed::Max,
            api: None,
            k: p.k,
            concurrency: p.concurrency,
            api_timeout_ms: p.api_timeout.as_millis() as u64,
        }
    }
}

impl ReplaySettings {
    /// The replay's config: this pace, to the topic of `kafka`.
    pub fn replay_config(&self, kafka: &KafkaSettings) -> ReplayConfig {
        ReplayConfig {
            speed: self.speed,
            partitions: kafka.partitions,
            ..ReplayConfig::new(&kafka.topic)
        }
    }

    /// The prequential replay's config: the API, K, concurrency and pace of this
    /// table, to the topic of `kafka`; fails without an API or with bad values.
    pub fn prequential_config(&self, kafka: &KafkaSettings) -> Result<PrequentialConfig, LogError> {
        let api = self.api.as_deref().map(str::trim).unwrap_or_default();
        if api.is_empty() {
            return Err(LogError::Config(
                "a prequential replay needs the API: pass --api, or set `api` in the \
                 [replay] table"
                    .into(),
            ));
        }
        let cfg = PrequentialConfig {
            k: self.k,
            concurrency: self.concurrency,
            speed: self.speed,
            api_timeout: Duration::from_millis(self.api_timeout_ms.max(1)),
            partitions: kafka.partitions,
            ..PrequentialConfig::new(api, &kafka.topic)
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn kafka_options_merge_and_secrets_are_masked() {
        let mut k = KafkaSettings {
            brokers: Some(" b1:9092,b2:9092 ".into()),
            ..KafkaSettings::default()
        };
        k.options
            .insert("security.protocol".into(), "plaintext".into());
        k.add_options(&["security.protocol=sasl_ssl", "sasl.password=hunter22"])
            .unwrap();
        assert!(k.add_options(&["no-equals"]).is_err());
        let c = k.client().unwrap();
        assert_eq!(c.brokers, "b1:9092,b2:9092");
        assert!(
            c.options
                .contains(&("security.protocol".into(), "sasl_ssl".into()))
        );
        let shown = k.masked();
        assert_eq!(shown.options["sasl.password"], "***");
        assert_eq!(shown.options["security.protocol"], "sasl_ssl");
        assert!(KafkaSettings::default().client().is_none());
        assert!(KafkaSettings::default().required().is_err());
    }

    #[test]
    fn consume_and_replay_take_the_topic_from_kafka() {
        let k = KafkaSettings {
            topic: "portal".into(),
            partitions: 8,
            ..KafkaSettings::default()
        };
        let c = ConsumeSettings::default().consumer_config(&k);
        assert_eq!(c.topic, "portal");
        assert_eq!(c.dead_letter_topic, "portal.dead-letter");
        assert_eq!(c.partitions, 8);
        assert_eq!(c.group, "newsrec-consumer");
        let r = ReplaySettings::default().replay_config(&k);
        assert_eq!((r.topic.as_str(), r.partitions), ("portal", 8));
        assert_eq!(k.served_topic(), "portal.served");
        assert!(ReplaySettings::default().prequential_config(&k).is_err());
        let p = ReplaySettings {
            api: Some("http://127.0.0.1:8000".into()),
            ..ReplaySettings::default()
        }
        .prequential_config(&k)
        .unwrap();
        assert_eq!((p.topic.as_str(), p.partitions, p.k), ("portal", 8, 10));
        let bad = ReplaySettings {
            api: Some("http://127.0.0.1:8000".into()),
            concurrency: 0,
            ..ReplaySettings::default()
        };
        assert!(bad.prequential_config(&k).is_err());
    }
}
