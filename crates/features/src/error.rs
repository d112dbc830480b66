//! The feature store's error type.

use newsrec_core::Retryable;

use crate::checkpoint::{Offset, Partition};

/// Why a feature store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store's settings are unusable.
    #[error("feature store config: {0}")]
    Config(String),
    /// Redis failed or could not be reached.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Stored data does not have the expected shape (written by something else, or a
    /// different version).
    #[error("corrupt stored value at `{key}`: {detail}")]
    Corrupt {
        /// The key that held it.
        key: String,
        /// What was wrong.
        detail: String,
    },
    /// A batch starts after the partition's stored offset: events between them were never
    /// applied. The consumer must seek back to `stored`.
    #[error("partition {partition}: batch starts at offset {start} but the store is at {stored}")]
    OffsetGap {
        /// The partition.
        partition: Partition,
        /// Where the store is (next offset to apply).
        stored: Offset,
        /// Where the batch starts.
        start: Offset,
    },
    /// The store no longer holds what this writer saw committed for the partition: its
    /// layout marker or the partition's offset is gone, or the offset went back (a
    /// Redis restarted without its data, a failover to an empty or lagging replica, a
    /// `FLUSHALL`). Nothing was written; the partition has to be rebuilt from the start
    /// of the log ([`crate::FeatureStore::reset_partition`]).
    #[error(
        "partition {partition}: the store lost its state (this writer saw offset {seen:?} committed, the store holds {stored:?}{marker})",
        marker = if *marker_missing { ", layout marker missing" } else { "" }
    )]
    StoreLost {
        /// The partition.
        partition: Partition,
        /// The highest next offset this writer saw stored.
        seen: Option<Offset>,
        /// The next offset the store holds now.
        stored: Option<Offset>,
        /// Whether the layout marker is gone too.
        marker_missing: bool,
    },
    /// A batch is not well formed (offsets out of order or outside its range).
    #[error("invalid batch: {0}")]
    InvalidBatch(String),
}

impl Retryable for StoreError {
    fn is_retryable(&self) -> bool {
        match self {
            StoreError::Redis(e) => {
                e.is_io_error()
                    || e.is_timeout()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
                    || e.is_cluster_error()
                    || matches!(
                        e.kind(),
                        redis::ErrorKind::Server(
                            redis::ServerErrorKind::BusyLoading
                                | redis::ServerErrorKind::TryAgain
                                | redis::ServerErrorKind::ClusterDown
                                | redis::ServerErrorKind::MasterDown
                                | redis::ServerErrorKind::ReadOnly
                                | redis::ServerErrorKind::NoScript
                        )
                    )
            }
            StoreError::Config(_)
            | StoreError::Corrupt { .. }
            | StoreError::OffsetGap { .. }
            | StoreError::StoreLost { .. }
            | StoreError::InvalidBatch(_) => false,
        }
    }
}
