//! The consumer's settings, errors and run totals.

use std::time::Duration;

use newsrec_core::Retryable;
use newsrec_features::online::OnlineConfig;
use newsrec_features::{Offset, Partition, StoreError};

use crate::eventlog::LogError;

/// Default of [`ConsumerConfig::batch_max`].
pub const DEFAULT_BATCH_MAX: usize = 50_000;

/// Consumer settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerConfig {
    /// Topic to read.
    pub topic: String,
    /// Consumer group.
    pub group: String,
    /// Where invalid messages go.
    pub dead_letter_topic: String,
    /// Partitions for topics this consumer has to create.
    pub partitions: i32,
    /// Most messages per round. Larger rounds pre-aggregate more (fewer writes per
    /// event) but make each partition's `MULTI` longer, and Redis serves nothing else
    /// while one runs: at about 3 µs per event, 50,000 over 4 partitions block it for
    /// roughly 40 ms at a time when catching up. A live stream fills rounds only up to
    /// what arrives within `batch_linger`. 0 counts as 1.
    pub batch_max: usize,
    /// How long a round keeps collecting after its first message: what a lone click
    /// waits before it is applied on a quiet stream (a catching-up round fills at once).
    pub batch_linger: Duration,
    /// How long one poll waits for a first message.
    pub poll_wait: Duration,
    /// First retry delay; doubles up to `retry_max`.
    pub retry_initial: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// How often the per-partition lag is refreshed.
    pub lag_interval: Duration,
    /// Attribute clicks to served lists alongside (see `crate::attribution`).
    pub attribution: Option<Attribution>,
}

/// What the attribution consumer reads and how it attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribution {
    /// The served-list topic.
    pub served_topic: String,
    /// Window, lists kept per user, positions counted.
    pub online: OnlineConfig,
}

impl ConsumerConfig {
    /// Defaults for `topic` and `group`; dead letters go to `<topic>.dead-letter`.
    pub fn new(topic: impl Into<String>, group: impl Into<String>) -> Self {
        let topic = topic.into();
        Self {
            dead_letter_topic: format!("{topic}.dead-letter"),
            topic,
            group: group.into(),
            partitions: 4,
            batch_max: DEFAULT_BATCH_MAX,
            batch_linger: Duration::from_millis(20),
            poll_wait: Duration::from_millis(500),
            retry_initial: Duration::from_millis(100),
            retry_max: Duration::from_secs(5),
            lag_interval: Duration::from_secs(5),
            attribution: None,
        }
    }
}

/// Why the consumer stopped with an error (retryable failures never stop it).
#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    /// The log failed in a way retrying cannot fix (configuration, authorisation).
    #[error("event log: {0}")]
    Log(#[from] LogError),
    /// The store failed in a way retrying cannot fix.
    #[error("feature store: {0}")]
    Store(#[from] StoreError),
    /// The store lost a partition's state and the log no longer holds the partition's
    /// start, so the state cannot be rebuilt.
    #[error(
        "the store lost the state of partition {partition} and the log holds it only from \
         offset {earliest}: the state cannot be rebuilt exactly (restore the store from a \
         backup, or replay the data into a new topic)"
    )]
    CannotRebuild {
        /// The partition.
        partition: Partition,
        /// The first offset the log still holds.
        earliest: Offset,
    },
    /// The clicks and served-list topics have different partition counts: a user's
    /// clicks and lists would be on partitions of different numbers.
    #[error(
        "topic {clicks_topic} has {clicks} partitions but {served_topic} has {served}: \
         attribution needs both keyed alike (create {served_topic} with {clicks} partitions, \
         or set [consume] attribution = false)"
    )]
    PartitionMismatch {
        /// The clicks topic.
        clicks_topic: String,
        /// Its partitions.
        clicks: usize,
        /// The served-list topic.
        served_topic: String,
        /// Its partitions.
        served: usize,
    },
    /// The metrics exporter could not listen, or failed while serving.
    #[error("consumer metrics exporter: {0}")]
    Exporter(std::io::Error),
}

impl Retryable for ConsumeError {
    fn is_retryable(&self) -> bool {
        match self {
            ConsumeError::Log(e) => e.is_retryable(),
            ConsumeError::Store(e) => e.is_retryable(),
            ConsumeError::CannotRebuild { .. }
            | ConsumeError::PartitionMismatch { .. }
            | ConsumeError::Exporter(_) => false,
        }
    }
}

/// Totals of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConsumeSummary {
    /// Events applied.
    pub applied: u64,
    /// Events skipped as already applied.
    pub duplicates: u64,
    /// Messages dead-lettered.
    pub dead_letters: u64,
    /// Rounds that applied something.
    pub batches: u64,
}
