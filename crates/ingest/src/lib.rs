//! Streaming ingest: the event log, the replay producer, and the exactly-once consumer
//! with its Prometheus exporter.
//!
//! # Layout
//! - `eventlog`: the [`EventLog`] abstraction (produce, consume with partitions and
//!   offsets, seek) with [`KafkaLog`] and the in-process [`MemoryLog`].
//! - `replay`: [`replay::replay`], click events → a topic, in event-time order, paced or
//!   at full speed; [`replay::synthetic_events`] for benchmarks and tests.
//! - `prequential`: [`prequential::prequential`], clicks replayed as a portal would send
//!   them: the API asked first, the click carrying the answer's `rec_id` when its page
//!   was in it, with bounded concurrency and per-user order.
//! - `consumer`: [`consumer::run`], click events → feature store, exactly once, with
//!   dead letters, retries and graceful shutdown.
//! - `attribution`: [`attribution::run`], clicks and served lists → online counters,
//!   exactly once.
//! - `stats`: [`ConsumerStats`], the consumer's counters and gauges, read out as a
//!   [`ConsumerSnapshot`].
//! - `metrics`: the consumer's Prometheus exporter ([`serve_consumer_metrics`]).
//! - `settings`: the `[kafka]`, `[consume]` and `[replay]` tables of the settings tree
//!   ([`KafkaSettings`], [`ConsumeSettings`], [`ReplaySettings`]).

pub mod attribution;
pub mod consumer;
mod eventlog;
mod metrics;
pub mod prequential;
pub mod replay;
mod settings;
mod stats;

pub use eventlog::{
    Assignment, EventLog, KafkaConfig, KafkaLog, LogConsumer, LogError, LogMessage, MemoryLog,
    Positioner, Record,
};
pub use metrics::{
    SnapshotSource, consumer_families, consumer_metrics_router, render_consumer,
    serve_consumer_metrics,
};
pub use settings::{ConsumeSettings, KafkaSettings, ReplaySettings};
pub use stats::{
    BATCH_DURATION_BUCKETS, ConsumerSnapshot, ConsumerStats, HistogramSnapshot, REJECT_CODES,
    RetryTarget,
};
