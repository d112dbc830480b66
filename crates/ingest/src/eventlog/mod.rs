//! The event log: a partitioned, offset-addressed log of messages (Kafka, or an
//! in-process stand-in for the demo and fast tests). Both implementations pass one
//! conformance suite (`tests/stream_eventlog.rs`).

mod kafka;
mod memory;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use newsrec_core::Retryable;
use newsrec_features::{Offset, Partition};

pub(crate) use kafka::is_secret;
pub use kafka::{KafkaConfig, KafkaLog};
pub use memory::MemoryLog;

/// A message to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Partitioning key (records with one key keep their order in one partition).
    pub key: Option<Vec<u8>>,
    /// The partition to write to, whatever the key (`None`: the key's partition).
    pub partition: Option<Partition>,
    /// The value.
    pub payload: Vec<u8>,
    /// Headers, in order.
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Record {
    /// A keyed record without headers.
    pub fn new(key: impl Into<Vec<u8>>, payload: impl Into<Vec<u8>>) -> Self {
        Self {
            key: Some(key.into()),
            partition: None,
            payload: payload.into(),
            headers: Vec::new(),
        }
    }

    /// An unkeyed record for one given partition.
    pub fn to_partition(partition: Partition, payload: impl Into<Vec<u8>>) -> Self {
        Self {
            key: None,
            partition: Some(partition),
            payload: payload.into(),
            headers: Vec::new(),
        }
    }
}

/// A message read from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogMessage {
    /// Partition it was read from.
    pub partition: Partition,
    /// Its offset there.
    pub offset: Offset,
    /// Key, if any.
    pub key: Option<Vec<u8>>,
    /// Value (`None`: a tombstone).
    pub payload: Option<Vec<u8>>,
    /// Headers, in order.
    pub headers: Vec<(String, Vec<u8>)>,
}

/// Where to start reading newly assigned partitions: the next offset per partition, in
/// the order asked (`None`: from the beginning). Called synchronously when partitions are
/// assigned, before their first fetch; an error means "from the beginning", which is safe
/// when the consumer's sink skips what it already holds.
pub type Positioner =
    Arc<dyn Fn(&[Partition]) -> Result<Vec<Option<Offset>>, String> + Send + Sync>;

/// Why a log operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The Kafka client reported an error.
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// The topic does not exist.
    #[error("unknown topic `{0}`")]
    UnknownTopic(String),
    /// A configuration value is unusable.
    #[error("event log config: {0}")]
    Config(String),
    /// The operation did not finish in time.
    #[error("timed out: {0}")]
    Timeout(String),
}

impl Retryable for LogError {
    fn is_retryable(&self) -> bool {
        use rdkafka::error::{KafkaError, RDKafkaErrorCode as C};
        match self {
            LogError::Kafka(e) => match e {
                KafkaError::ClientCreation(_)
                | KafkaError::ClientConfig(..)
                | KafkaError::Subscription(_)
                | KafkaError::MessageConsumptionFatal(_)
                | KafkaError::Nul(_) => false,
                _ => !matches!(
                    e.rdkafka_error_code(),
                    Some(
                        C::InvalidConfig
                            | C::UnknownTopic
                            | C::UnknownTopicOrPartition
                            | C::TopicAuthorizationFailed
                            | C::GroupAuthorizationFailed
                            | C::SaslAuthenticationFailed
                            | C::Authentication
                            | C::MessageSizeTooLarge
                            | C::InvalidMessage
                            | C::Fatal
                    )
                ),
            },
            LogError::Timeout(_) => true,
            LogError::UnknownTopic(_) | LogError::Config(_) => false,
        }
    }
}

/// A partitioned log.
#[async_trait]
pub trait EventLog: Send + Sync {
    /// Creates `topic` with `partitions` partitions when it does not exist (an existing
    /// topic is left as it is).
    async fn ensure_topic(&self, topic: &str, partitions: i32) -> Result<(), LogError>;

    /// Publishes `records` and waits until every one is stored; returns the
    /// `(partition, offset)` of each, in order. Records with one key keep their order.
    async fn produce(
        &self,
        topic: &str,
        records: Vec<Record>,
    ) -> Result<Vec<(Partition, Offset)>, LogError>;

    /// One past the last offset of every partition of `topic` (the high watermarks).
    async fn end_offsets(&self, topic: &str) -> Result<Vec<(Partition, Offset)>, LogError>;

    /// The first offset `topic` still holds in every partition (the low watermarks:
    /// above 0 once retention deleted the start).
    async fn start_offsets(&self, topic: &str) -> Result<Vec<(Partition, Offset)>, LogError>;

    /// Joins consumer group `group` on `topic`. Newly assigned partitions start where
    /// `positioner` says.
    async fn subscribe(
        &self,
        topic: &str,
        group: &str,
        positioner: Positioner,
    ) -> Result<Box<dyn LogConsumer>, LogError>;

    /// Reads the given partitions of `topic` outside any group, each from its offset
    /// (`None`: the beginning); the assignment never changes.
    async fn assign(
        &self,
        topic: &str,
        starts: &[(Partition, Option<Offset>)],
    ) -> Result<Box<dyn LogConsumer>, LogError>;
}

/// The current assignment of a group member.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Assignment {
    /// Incremented on every rebalance.
    pub generation: u64,
    /// Partitions owned now, sorted.
    pub partitions: Vec<Partition>,
}

/// A consumer group member.
#[async_trait]
pub trait LogConsumer: Send {
    /// Waits up to `wait` for messages and returns at most `max`, in offset order per
    /// partition (possibly none). Rebalances happen inside this call.
    async fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<LogMessage>, LogError>;

    /// What this member owns.
    fn assignment(&self) -> Assignment;

    /// Makes the next message read from `partition` the one at `offset`.
    async fn seek(&mut self, partition: Partition, offset: Offset) -> Result<(), LogError>;
}
