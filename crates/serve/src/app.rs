//! The application: builds the state, binds its own listener (so tests and benches run
//! exactly the production code on a random port), starts the background tasks and
//! serves until a shutdown signal, finishing in-flight requests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use newsrec_core::ConfigError;
use newsrec_features::{FeatureStore, RedisStore, RedisTarget};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tower_http::catch_panic::CatchPanicLayer;

use crate::config::{MAX_K, ServeConfig};
use crate::error::{AppError, ServeError};
use crate::experiments::{Experiments, pinned_versions};
use crate::hot_reload::{Models, ReloadOutcome};
use crate::metrics::{self, ServeMetrics};
use crate::openapi;
use crate::routes;
use crate::served_log::ServedLog;
use crate::sink::Sinks;
use crate::snapshot::SnapshotCache;
use crate::state::AppState;
use crate::store_gate::StoreGate;
use crate::tiers::TierMemory;

/// How long start-up waits for Redis before serving degraded and connecting in the
/// background.
const CONNECT_WAIT: Duration = Duration::from_secs(3);

/// A built, bound, not yet serving API.
pub struct Application {
    /// The bound listener.
    listener: TcpListener,
    /// Its address (port 0 resolved).
    addr: SocketAddr,
    /// The shared state (tests inspect it).
    state: Arc<AppState>,
    /// Store connector, snapshot refresher and model watcher; stopped with the server.
    tasks: Tasks,
}

/// Background tasks, aborted when dropped (with the server, or with an application
/// that was built but never run).
struct Tasks(Vec<JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

impl Application {
    /// Validates the config, connects to the store (in the background if Redis does not
    /// answer yet), loads the current model if there is one, binds the listener and
    /// starts the background tasks.
    pub async fn build(config: ServeConfig, sinks: Sinks) -> Result<Self, ServeError> {
        Self::build_inner(config, None, sinks).await
    }

    /// Like [`Application::build`] with a store the caller already holds (the demo's
    /// in-process store, or a Redis store shared with an in-process consumer);
    /// `store.redis` of the config is then not used.
    pub async fn build_with_store(
        config: ServeConfig,
        store: Arc<dyn FeatureStore>,
        sinks: Sinks,
    ) -> Result<Self, ServeError> {
        Self::build_inner(config, Some(store), sinks).await
    }

    async fn build_inner(
        config: ServeConfig,
        store: Option<Arc<dyn FeatureStore>>,
        sinks: Sinks,
    ) -> Result<Self, ServeError> {
        config.validate()?;
        let store_shown = match &store {
            Some(_) => "provided by the caller".to_owned(),
            None => config.store.redis.to_string(),
        };
        let metrics = Arc::new(ServeMetrics::new()?);
        let mut models =
            Models::open(&config.models_dir).map_err(|e| ServeError::Model(e.to_string()))?;
        let experiments = Experiments::new(&config.experiments)?;
        models
            .pin(&pinned_versions(&config.experiments))
            .await
            .map_err(|e| ServeError::Model(e.to_string()))?;
        metrics.set_model_memory(&models.memory());
        let windows = config.store.windows();
        let openapi = serde_json::to_vec(&crate::openapi::document(&windows))
            .map_err(|e| ServeError::Config(ConfigError::new(format!("OpenAPI document: {e}"))))?;
        let mut tasks = Vec::new();
        let served = match sinks.served {
            Some(sink) => {
                let (log, task) =
                    ServedLog::start(sink, config.served_log_capacity, metrics.registry())?;
                tasks.push(task);
                Some(log)
            }
            None => None,
        };
        let state = Arc::new(AppState {
            metrics: metrics.clone(),
            models,
            experiments,
            gate: StoreGate::new(config.store_timeout(), config.store_backoff()),
            snapshot: SnapshotCache::new(config.mix.list_candidates.max(MAX_K)),
            tiers: TierMemory::new(config.tier_memory),
            sink: sinks.events,
            served,
            windows,
            openapi: openapi.into(),
            config,
        });
        if let Some(store) = store {
            state.gate.install(store);
        } else {
            let target = state.config.store.redis.clone();
            match tokio::time::timeout(CONNECT_WAIT, connect(&target, &state)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "feature store not reachable; serving degraded until it is");
                    tasks.push(tokio::spawn(connect_until_done(target, state.clone())));
                }
                Err(_) => {
                    tracing::warn!(
                        "feature store did not answer in time; serving degraded until it does"
                    );
                    tasks.push(tokio::spawn(connect_until_done(target, state.clone())));
                }
            }
        }
        match state.models.reload(false, &state.metrics).await {
            Ok(ReloadOutcome::NoModel) => {
                tracing::warn!(dir = %state.config.models_dir.display(), "no current model yet; waiting for one");
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %e, "initial model load failed; waiting for a new one")
            }
        }
        if state.gate.store().is_some()
            && let Err(e) = state
                .snapshot
                .refresh(&state.gate, &state.windows, &state.metrics)
                .await
        {
            tracing::warn!(error = %e, "initial popularity snapshot failed");
        }
        tasks.push(tokio::spawn(refresh_snapshot(state.clone())));
        tasks.push(tokio::spawn(watch_models(state.clone())));
        let listener = TcpListener::bind(&state.config.addr).await?;
        let addr = listener.local_addr()?;
        // One line of what an operator checks first; the rest is in the config file.
        let c = &state.config;
        tracing::info!(
            %addr,
            store = %store_shown,
            prefix = %c.store.prefix,
            live_window = %c.live_window(),
            models = %c.models_dir.display(),
            events = %state.sink.as_ref().map_or_else(|| "disabled".to_owned(), |s| s.settings()),
            served_log = state.served.as_ref().map_or("disabled", ServedLog::describe),
            admin = if c.admin_token.is_some() { "token set" } else { "disabled" },
            "newsrec API bound"
        );
        Ok(Self {
            listener,
            addr,
            state,
            tasks: Tasks(tasks),
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The shared state.
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets in-flight requests
    /// finish and stops the background tasks.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let Self {
            listener,
            state,
            tasks,
            ..
        } = self;
        let served = axum::serve(listener, router(state))
            .with_graceful_shutdown(shutdown)
            .await;
        drop(tasks);
        tracing::info!("newsrec API stopped");
        served.map_err(ServeError::Io)
    }
}

/// The router with every route and layer.
pub fn router(state: Arc<AppState>) -> Router {
    let body_limit = state.config.max_body_bytes;
    Router::new()
        .route("/recommendations", get(routes::recommend::recommendations))
        .route("/popular", get(routes::popular::popular))
        .route("/articles/{page}/similar", get(routes::similar::similar))
        .route("/events", post(routes::events::publish))
        .route(
            "/evaluation/metrics",
            get(routes::model_versions::evaluations),
        )
        .route("/evaluation/online", get(routes::online::online))
        .route("/experiments", get(routes::experiments::experiments))
        .route("/models/current", get(routes::model_versions::current))
        .route("/admin/reload", post(routes::model_versions::reload))
        .route("/metrics", get(routes::meta::metrics))
        .route("/health/live", get(routes::health::live))
        .route("/health/ready", get(routes::health::ready))
        .route(openapi::DOCUMENT_PATH, get(routes::meta::openapi_json))
        .merge(openapi::docs())
        .fallback(routes::meta::not_found)
        .method_not_allowed_fallback(routes::meta::method_not_allowed)
        .route_layer(middleware::from_fn_with_state(state.clone(), deadline))
        .route_layer(middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::track,
        ))
        .layer(CatchPanicLayer::custom(|_panic| {
            AppError::Internal("handler panicked".into()).into_response()
        }))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

/// Answers 503 when a request exceeds the configured time.
async fn deadline(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(state.config.request_timeout(), next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => AppError::Timeout.into_response(),
    }
}

async fn connect(target: &RedisTarget, state: &AppState) -> Result<(), ServeError> {
    let store = RedisStore::connect(target, state.config.store.clone())
        .await
        .map_err(|e| ServeError::Store(e.to_string()))?;
    let store: Arc<dyn FeatureStore> = Arc::new(store);
    state.gate.install(store);
    Ok(())
}

/// Retries the first connection every second until it succeeds.
async fn connect_until_done(target: RedisTarget, state: Arc<AppState>) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        match tokio::time::timeout(CONNECT_WAIT, connect(&target, &state)).await {
            Ok(Ok(())) => {
                tracing::info!("feature store connected");
                return;
            }
            Ok(Err(e)) => tracing::debug!(error = %e, "feature store still unreachable"),
            Err(_) => tracing::debug!("feature store connection timed out"),
        }
    }
}

/// Refreshes the popularity snapshot every interval; logs only changes of health.
async fn refresh_snapshot(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(state.config.snapshot_interval());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut healthy = true;
    loop {
        tick.tick().await;
        if state.gate.store().is_none() {
            continue;
        }
        let refreshed = state
            .snapshot
            .refresh(&state.gate, &state.windows, &state.metrics)
            .await;
        // The served-list log's watermark mark: lists served from now on are at least
        // this late in event time.
        if let (Ok(()), Some(log), Some(wm)) =
            (&refreshed, &state.served, state.snapshot.get().watermark)
        {
            log.tick(wm);
        }
        match refreshed {
            Ok(()) if !healthy => {
                healthy = true;
                tracing::info!("feature store reachable again; live signals restored");
            }
            Ok(()) => {}
            Err(e) if healthy => {
                healthy = false;
                tracing::warn!(error = %e, "feature store unreachable; serving degraded");
            }
            Err(_) => {}
        }
    }
}

/// Polls the registry for a new `current` and keeps the offline gauges fresh.
async fn watch_models(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(state.config.reload_interval());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // A failed load is logged (once per failing version) inside `reload`.
        if state.models.reload(false, &state.metrics).await.is_ok() {
            state.models.refresh_offline_metrics(&state.metrics).await;
        }
        state
            .metrics
            .refresh_pipeline(state.models.registry().root())
            .await;
    }
}
