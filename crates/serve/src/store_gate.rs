//! The API's access to the feature store: every call has a deadline, and after a
//! failure requests skip the store for a short back-off (serving degraded) instead of
//! each waiting for a dead Redis. The snapshot refresher keeps probing it, so the API
//! recovers within about a second of Redis returning.
//!
//! The store may also be absent at start-up (Redis down when the API starts): it is
//! connected in the background and installed once it answers.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use newsrec_core::Retryable;
use newsrec_features::{FeatureStore, StoreError};

/// Why the store could not be used for this request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    /// No connection has been established yet.
    #[error("feature store not connected yet")]
    NotConnected,
    /// A recent call failed; calls are skipped until the back-off ends.
    #[error("feature store backing off after a failure")]
    BackingOff,
    /// The call did not finish within the deadline.
    #[error("feature store call timed out")]
    Timeout,
    /// The call failed.
    #[error("feature store call failed: {0}")]
    Failed(String),
}

/// The feature store behind a deadline and a back-off.
pub struct StoreGate {
    /// Set once when a connection is first established; the connection reconnects by
    /// itself afterwards.
    store: OnceLock<Arc<dyn FeatureStore>>,
    /// Deadline of each call.
    timeout: Duration,
    /// How long calls are skipped after a failure.
    backoff: Duration,
    /// Reference point of `down_until_us`.
    epoch: Instant,
    /// Calls are skipped until this many µs after `epoch` (0: healthy).
    down_until_us: AtomicU64,
}

impl StoreGate {
    /// A gate with no store yet.
    pub fn new(timeout: Duration, backoff: Duration) -> Self {
        Self {
            store: OnceLock::new(),
            timeout,
            backoff,
            epoch: Instant::now(),
            down_until_us: AtomicU64::new(0),
        }
    }

    /// Installs the store (first caller wins; later calls are ignored).
    pub fn install(&self, store: Arc<dyn FeatureStore>) {
        let _ = self.store.set(store);
    }

    /// The store, whether or not it is healthy (for settings such as windows).
    pub fn store(&self) -> Option<&Arc<dyn FeatureStore>> {
        self.store.get()
    }

    fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    /// Whether requests currently skip the store.
    pub fn backing_off(&self) -> bool {
        self.now_us() < self.down_until_us.load(Ordering::Relaxed)
    }

    fn mark_down(&self) {
        let until = self.now_us() + self.backoff.as_micros() as u64;
        self.down_until_us.store(until, Ordering::Relaxed);
    }

    fn mark_up(&self) {
        if self.down_until_us.load(Ordering::Relaxed) != 0 {
            self.down_until_us.store(0, Ordering::Relaxed);
        }
    }

    /// Runs one call on the request path: skipped while backing off, bounded by the
    /// deadline; a timeout or a retryable failure starts the back-off.
    pub async fn call<'a, T, F, Fut>(&'a self, f: F) -> Result<T, Unavailable>
    where
        F: FnOnce(&'a dyn FeatureStore) -> Fut,
        Fut: Future<Output = Result<T, StoreError>> + 'a,
    {
        if self.backing_off() {
            return Err(Unavailable::BackingOff);
        }
        self.probe(f).await
    }

    /// Runs one call even while backing off (the refresher and readiness use it to
    /// find out that the store is back); success ends the back-off.
    pub async fn probe<'a, T, F, Fut>(&'a self, f: F) -> Result<T, Unavailable>
    where
        F: FnOnce(&'a dyn FeatureStore) -> Fut,
        Fut: Future<Output = Result<T, StoreError>> + 'a,
    {
        let store = self.store.get().ok_or(Unavailable::NotConnected)?;
        match tokio::time::timeout(self.timeout, f(store.as_ref())).await {
            Ok(Ok(v)) => {
                self.mark_up();
                Ok(v)
            }
            Ok(Err(e)) => {
                // A bad value under one key is that request's problem; only failures of
                // the store itself send everyone to the degraded path.
                if e.is_retryable() {
                    self.mark_down();
                }
                Err(Unavailable::Failed(e.to_string()))
            }
            Err(_) => {
                self.mark_down();
                Err(Unavailable::Timeout)
            }
        }
    }
}
