//! Waiting for the store to hold what was published.

use std::time::{Duration, Instant};

use newsrec_features::{FeatureStore, Offset, Partition, StoreError};

/// The store did not reach the offsets waited for in time.
#[derive(Debug, thiserror::Error)]
pub enum CatchUpError {
    /// The deadline passed; the offsets the store held last.
    #[error("the store did not reach {want:?} in time (holds {got:?})")]
    Timeout {
        /// `(partition, end offset)` waited for.
        want: Vec<(Partition, Offset)>,
        /// Next offsets the store held at the deadline.
        got: Vec<Option<Offset>>,
    },
    /// Reading the offsets failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Waits until the store holds every `(partition, end offset)` of `ends` (partitions
/// with end 0 hold nothing to wait for), polling the offsets every 20 ms, for at most
/// `timeout`: how a replay, a benchmark or a test knows the consumer has caught up.
pub async fn caught_up(
    store: &dyn FeatureStore,
    ends: &[(Partition, Offset)],
    timeout: Duration,
) -> Result<(), CatchUpError> {
    let parts: Vec<Partition> = ends.iter().map(|e| e.0).collect();
    let deadline = Instant::now() + timeout;
    loop {
        let got = store.next_offsets(&parts).await?;
        if ends
            .iter()
            .zip(&got)
            .all(|((_, end), g)| *end == Offset(0) || g.is_some_and(|g| g >= *end))
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(CatchUpError::Timeout {
                want: ends.to_vec(),
                got,
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
