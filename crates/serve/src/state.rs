//! What every handler shares.

use std::sync::Arc;

use bytes::Bytes;
use newsrec_features::Window;

use crate::config::ServeConfig;
use crate::experiments::Experiments;
use crate::hot_reload::Models;
use crate::metrics::ServeMetrics;
use crate::served_log::ServedLog;
use crate::sink::EventSink;
use crate::snapshot::SnapshotCache;
use crate::store_gate::StoreGate;
use crate::tiers::TierMemory;

/// The application state behind every handler (one `Arc`, cloned per request).
pub struct AppState {
    /// The validated configuration.
    pub config: ServeConfig,
    /// Every exported metric.
    pub metrics: Arc<ServeMetrics>,
    /// The served model and its registry.
    pub models: Models,
    /// The running A/B experiments, compiled from the config.
    pub experiments: Experiments,
    /// The feature store, behind a deadline and back-off.
    pub gate: StoreGate,
    /// Live popularity, refreshed about once a second; the degraded-mode fallback.
    pub snapshot: SnapshotCache,
    /// Last served tier per recent user, for transition counting.
    pub tiers: TierMemory,
    /// Where `POST /events` publishes; `None` when no broker is configured.
    pub sink: Option<Arc<dyn EventSink>>,
    /// Where served lists are logged; `None` when no log is configured.
    pub served: Option<ServedLog>,
    /// The store's popularity windows, shortest first.
    pub windows: Vec<Window>,
    /// The OpenAPI document, serialised once at start-up.
    pub openapi: Bytes,
}
