//! Ingestion: G1 download, synthetic data, refine, Kafka replay and consumer.
//!
//! # Layout
//! - `g1`: the raw G1 format: file layout and headers ([`RawLayout`]), CSV writers
//!   with the dataset's quirks, and polars readers that tag malformed rows with a
//!   [`RowReason`].
//! - `synth`: [`synth::generate`], synthetic G1 data with planted structure.
//! - `download`: [`download::download`], fetch and verify the G1 zip, extract it
//!   atomically.
//! - `refine`: [`refine::process`], raw CSVs → refined Parquet (`newsrec_core::refined`)
//!   with cleaning, engagement, tiers and per-user aggregates.
//! - `report`: the data report (`report.md` + PNG histograms) written by `process`.
//! - `eventlog`: the [`EventLog`] abstraction (produce, consume with partitions and
//!   offsets, seek) with [`KafkaLog`] and the in-process [`MemoryLog`].
//! - `replay`: [`replay::replay`], refined interactions → click events on a topic.
//! - `consumer`: [`consumer::run`], click events → feature store, exactly once, with
//!   dead letters, retries and graceful shutdown.
//! - `stats`: [`ConsumerStats`], the consumer's counters and gauges.

pub mod consumer;
pub mod download;
mod eventlog;
mod g1;
pub mod refine;
pub mod replay;
mod report;
mod stats;
pub mod synth;

pub use eventlog::{
    Assignment, EventLog, KafkaConfig, KafkaLog, LogConsumer, LogError, LogMessage, MemoryLog,
    Positioner, Record,
};
pub use g1::{
    ID_PATTERN, ITEM_COLUMNS, ITEMS_DIR, LayoutError, RawLayout, RowReason, TRAINING_COLUMNS,
    TRAINING_DIR, VALIDATION_COLUMNS, VALIDATION_FILE,
};
pub use newsrec_core::{ConsumerSnapshot, HistogramSnapshot};
pub use stats::{BATCH_DURATION_BUCKETS, ConsumerStats, REJECT_CODES, RetryTarget};
