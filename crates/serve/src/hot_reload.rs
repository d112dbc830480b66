//! The served model and its hot reload.
//!
//! The loaded [`ModelSet`] sits behind an `Arc` swapped under a short write lock:
//! requests clone the `Arc` and keep using the model they started with, so a reload
//! never drops or fails a request. Loading (file reads, deserialisation, index
//! building) runs on the blocking pool, off the request threads. The watcher polls the
//! registry's `current` pointer (one `readlink`) and loads a new version within one
//! interval; a version that failed to load is retried only after [`RETRY_FAILED`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use newsrec_train::{EVALUATIONS_FILE, EvaluationRecord, EvaluationReport, ModelSet, Registry};

use crate::metrics::ServeMetrics;

/// How long a version that failed to load is left alone by the watcher.
pub const RETRY_FAILED: Duration = Duration::from_secs(30);

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// A version was loaded and is now served.
    Loaded {
        /// The version served before, if any.
        previous: Option<String>,
        /// The version served now.
        version: String,
    },
    /// `current` still names the served version.
    Unchanged(String),
    /// The registry has no `current` version yet.
    NoModel,
    /// `current` names a version that failed to load recently; not retried yet.
    Skipped(String),
}

/// Why a reload failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("loading model {version}: {detail}")]
pub struct ReloadError {
    /// The version that failed (or `current` when it could not be read).
    pub version: String,
    /// What went wrong.
    pub detail: String,
}

/// The served model, the registry it comes from, and the offline metrics of it.
pub struct Models {
    /// The models directory.
    registry: Registry,
    /// The served model; `None` until a version is loaded.
    current: RwLock<Option<Arc<ModelSet>>>,
    /// Versions experiment variants pin, loaded once at start and kept across reloads.
    pinned: BTreeMap<String, Arc<ModelSet>>,
    /// Serialises loads: the watcher and `/admin/reload` never load twice at once.
    loading: tokio::sync::Mutex<()>,
    /// The last version that failed to load, and when.
    failed: Mutex<Option<(String, Instant)>>,
    /// Modification time of the evaluation history when the gauges were last set.
    evaluations_seen: Mutex<Option<(String, SystemTime)>>,
}

impl Models {
    /// Opens the registry (creating the directory if needed); loads nothing yet.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, ReloadError> {
        let dir = dir.into();
        let registry = Registry::open(&dir).map_err(|e| ReloadError {
            version: dir.display().to_string(),
            detail: e.to_string(),
        })?;
        Ok(Self {
            registry,
            current: RwLock::new(None),
            pinned: BTreeMap::new(),
            loading: tokio::sync::Mutex::new(()),
            failed: Mutex::new(None),
            evaluations_seen: Mutex::new(None),
        })
    }

    /// The served model, if one is loaded.
    pub fn get(&self) -> Option<Arc<ModelSet>> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Loads the versions experiment variants pin; one the registry cannot load fails
    /// the start.
    pub async fn pin(&mut self, versions: &BTreeSet<String>) -> Result<(), ReloadError> {
        for version in versions {
            let registry = self.registry.clone();
            let v = version.clone();
            let model = tokio::task::spawn_blocking(move || registry.load(&v))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()))
                .map_err(|detail| ReloadError {
                    version: version.clone(),
                    detail: format!(
                        "an experiment pins it, but it does not load from the registry ({detail})"
                    ),
                })?;
            tracing::info!(%version, bytes = model.memory_bytes(), "pinned model loaded");
            self.pinned.insert(version.clone(), Arc::new(model));
        }
        Ok(())
    }

    /// A pinned version.
    pub fn pinned(&self, version: &str) -> Option<Arc<ModelSet>> {
        self.pinned.get(version).cloned()
    }

    /// `(version, role, heap bytes)` of every loaded model: `current`, then each pinned.
    pub fn memory(&self) -> Vec<(String, &'static str, u64)> {
        let current = self
            .get()
            .map(|m| (m.version().to_owned(), "current", m.memory_bytes()));
        current
            .into_iter()
            .chain(
                self.pinned_memory()
                    .map(|(v, bytes)| (v.to_owned(), "pinned", bytes)),
            )
            .collect()
    }

    /// `(version, heap bytes)` of each pinned model.
    pub fn pinned_memory(&self) -> impl Iterator<Item = (&str, u64)> {
        self.pinned
            .iter()
            .map(|(v, m)| (v.as_str(), m.memory_bytes()))
    }

    /// The registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Loads `current` if it differs from the served version (or always, with `force`).
    #[tracing::instrument(name = "model_reload", skip(self, metrics))]
    pub async fn reload(
        &self,
        force: bool,
        metrics: &ServeMetrics,
    ) -> Result<ReloadOutcome, ReloadError> {
        let _guard = self.loading.lock().await;
        let registry = self.registry.clone();
        let target = tokio::task::spawn_blocking(move || registry.current_version())
            .await
            .map_err(|e| ReloadError {
                version: "current".into(),
                detail: e.to_string(),
            })?
            .map_err(|e| ReloadError {
                version: "current".into(),
                detail: e.to_string(),
            })?;
        let Some(version) = target else {
            return Ok(ReloadOutcome::NoModel);
        };
        let previous = self.get().map(|m| m.version().to_string());
        if !force {
            if previous.as_deref() == Some(version.as_str()) {
                return Ok(ReloadOutcome::Unchanged(version));
            }
            let failed = self
                .failed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            if let Some((v, at)) = failed
                && v == version
                && at.elapsed() < RETRY_FAILED
            {
                return Ok(ReloadOutcome::Skipped(version));
            }
        }
        let registry = self.registry.clone();
        let v = version.clone();
        let started = Instant::now();
        let loaded = tokio::task::spawn_blocking(move || registry.load(&v))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
        match loaded {
            Ok(model) => {
                let model = Arc::new(model);
                *self
                    .current
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(model.clone());
                metrics.set_model_version(model.version());
                metrics.set_model_memory(&self.memory());
                metrics.model_reload("loaded");
                *self
                    .evaluations_seen
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
                self.refresh_offline_metrics(metrics).await;
                tracing::info!(
                    version = %model.version(),
                    previous = previous.as_deref().unwrap_or("none"),
                    items = model.catalogue_len(),
                    ms = started.elapsed().as_millis() as u64,
                    "model loaded"
                );
                Ok(ReloadOutcome::Loaded { previous, version })
            }
            Err(detail) => {
                metrics.model_reload("failed");
                *self
                    .failed
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) =
                    Some((version.clone(), Instant::now()));
                tracing::error!(%version, %detail, "model load failed; keeping the served model");
                Err(ReloadError { version, detail })
            }
        }
    }

    /// The evaluation history, oldest first.
    pub async fn evaluations(&self) -> Result<Vec<EvaluationRecord>, String> {
        let registry = self.registry.clone();
        tokio::task::spawn_blocking(move || registry.evaluations())
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }

    /// Sets the offline-metric gauges from the newest evaluation of the served version
    /// (the history when it has one, else the manifest), re-reading the history only
    /// when it changed.
    pub async fn refresh_offline_metrics(&self, metrics: &ServeMetrics) {
        let Some(model) = self.get() else { return };
        let path = self.registry.root().join(EVALUATIONS_FILE);
        let mtime = tokio::fs::metadata(&path)
            .await
            .and_then(|m| m.modified())
            .ok();
        let key = mtime.map(|t| (model.version().to_string(), t));
        {
            let seen = self
                .evaluations_seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if seen.is_some() && *seen == key {
                return;
            }
        }
        let from_history = match self.evaluations().await {
            Ok(records) => records
                .into_iter()
                .rev()
                .find(|r| r.version == model.version())
                .map(|r| r.report),
            Err(e) => {
                tracing::warn!(error = %e, "reading evaluation history");
                None
            }
        };
        if let Some(report) = from_history.or(model.manifest().metrics) {
            metrics.set_offline(offline_values(&report));
        }
        *self
            .evaluations_seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = key;
    }
}

/// `(tier, metric, value)` for every gauge of one report.
fn offline_values(r: &EvaluationReport) -> Vec<(&'static str, &'static str, f64)> {
    let groups = [
        ("overall", &r.overall),
        ("logged", &r.tiers.logged),
        ("semi_logged", &r.tiers.semi_logged),
        ("anonymous", &r.tiers.anonymous),
    ];
    let mut out = Vec::with_capacity(groups.len() * 6);
    for (tier, m) in groups {
        out.extend([
            (tier, "recall", m.recall),
            (tier, "ndcg", m.ndcg),
            (tier, "hr", m.hr),
            (tier, "mrr", m.mrr),
            (tier, "coverage", m.coverage),
            (tier, "novelty", m.novelty),
        ]);
    }
    out
}
