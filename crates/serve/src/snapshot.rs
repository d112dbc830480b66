//! The in-process popularity snapshot: every window's top list, the trending list and
//! the watermark, refreshed from the store about once a second.
//!
//! Requests read live popularity from here rather than from Redis (the lists change
//! slowly next to the request rate, so one read per second serves every request), and
//! when Redis is down the last snapshot is what degraded responses are mixed with.
//! The refresh also feeds the top-N gauges Grafana shows.

use std::sync::{Arc, RwLock};
use std::time::Instant;

use newsrec_features::{FeatureStore, ScoredPage, StoreError, Window};
use newsrec_train::TopList;

use crate::metrics::{ServeMetrics, TOP_N_GAUGE};
use crate::store_gate::{StoreGate, Unavailable};

/// The live lists at one moment.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// When it was read from the store; `None` for the empty snapshot before the first
    /// successful refresh.
    pub taken_at: Option<Instant>,
    /// Latest event time the consumer applied.
    pub watermark: Option<i64>,
    /// Top pages per window (clicks in the window), shortest window first.
    pub windows: Vec<(Window, TopList)>,
    /// Trending pages (decayed read score).
    pub trending: TopList,
}

impl Snapshot {
    /// The top list of one window.
    pub fn window(&self, w: Window) -> Option<&TopList> {
        self.windows.iter().find(|(x, _)| *x == w).map(|(_, l)| l)
    }
}

/// The current snapshot, swapped whole on each refresh.
pub struct SnapshotCache {
    /// Readers clone the `Arc` and release the lock at once.
    current: RwLock<Arc<Snapshot>>,
    /// Entries kept per list: enough for `k` up to the API's maximum and for the mixing
    /// candidates.
    depth: usize,
}

impl SnapshotCache {
    /// An empty cache keeping `depth` entries per list.
    pub fn new(depth: usize) -> Self {
        Self {
            current: RwLock::new(Arc::new(Snapshot::default())),
            depth,
        }
    }

    /// The latest snapshot.
    pub fn get(&self) -> Arc<Snapshot> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set(&self, s: Snapshot) {
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(s);
    }

    /// Reads every list from the store (even while requests back off: this is the probe
    /// that notices Redis is back) and publishes the new snapshot and gauges.
    pub async fn refresh(
        &self,
        gate: &StoreGate,
        windows: &[Window],
        metrics: &ServeMetrics,
    ) -> Result<(), Unavailable> {
        let depth = self.depth;
        let snap = gate.probe(|store| read_all(store, windows, depth)).await?;
        for (w, list) in &snap.windows {
            let top: Vec<(&str, f64)> = list
                .iter()
                .take(TOP_N_GAUGE)
                .map(|(p, s)| (p.as_str(), *s))
                .collect();
            metrics.set_popular(&w.label(), &top);
        }
        let top: Vec<(&str, f64)> = snap
            .trending
            .iter()
            .take(TOP_N_GAUGE)
            .map(|(p, s)| (p.as_str(), *s))
            .collect();
        metrics.set_trending(&top);
        self.set(snap);
        Ok(())
    }
}

async fn read_all(
    store: &dyn FeatureStore,
    windows: &[Window],
    depth: usize,
) -> Result<Snapshot, StoreError> {
    let lists = futures::future::try_join_all(windows.iter().map(|w| store.popular(*w, depth)));
    let (lists, trending, watermark) =
        futures::try_join!(lists, store.trending(depth), store.watermark())?;
    let pairs = |v: Vec<ScoredPage>| v.into_iter().map(|s| (s.page, s.score)).collect();
    Ok(Snapshot {
        taken_at: Some(Instant::now()),
        watermark,
        windows: windows
            .iter()
            .copied()
            .zip(lists.into_iter().map(pairs))
            .collect(),
        trending: pairs(trending),
    })
}
