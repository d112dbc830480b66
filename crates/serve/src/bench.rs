//! `newsrec bench serve`: the API under load on loopback, with Redis live.
//!
//! Set-up: the newest training interactions are applied to a fresh feature store (random
//! key prefix) through the consumer's write path, so live windows, trending, "read
//! next" and per-user state look like a running system's. The request mix then covers
//! every kind of user: `Logged` users the model knows, `Non-Logged` users with enough
//! live history for the semi-logged tier, users seen once (anonymous) and ids never
//! seen. The API runs on its own runtime threads in this process; the load generator on
//! another. Keys are deleted afterwards.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use newsrec_core::{ClickEvent, EventId, UserType};
use newsrec_features::{FeatureStore, PartitionBatch, RedisStore, RedisTarget, StoreConfig};
use newsrec_train::MixWeights;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::app::Application;
use crate::config::ServeConfig;
use crate::loadgen::{self, LoadPlan, LoadReport};
use crate::served_log::{ServedLog, ServedLogCounts, ServedSink};
use crate::sink::Sinks;

/// Why the benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Reading the training data failed.
    #[error("reading training data: {0}")]
    Data(String),
    /// The feature store failed.
    #[error("feature store: {0}")]
    Store(#[from] newsrec_features::StoreError),
    /// The API failed to start.
    #[error("starting the API: {0}")]
    Serve(#[from] crate::error::ServeError),
    /// The load generator failed.
    #[error(transparent)]
    Load(#[from] loadgen::LoadError),
    /// A runtime could not be built.
    #[error("runtime: {0}")]
    Runtime(#[from] std::io::Error),
    /// Not enough data for the user mix.
    #[error("{0}")]
    Insufficient(String),
}

/// What to run.
#[derive(Clone)]
pub struct BenchOptions {
    /// Model registry with a `current` version.
    pub models_dir: PathBuf,
    /// Refined data the model was trained on.
    pub data_dir: PathBuf,
    /// Redis to use (a random key prefix is used and deleted afterwards).
    pub redis: RedisTarget,
    /// Fixed request rates to measure.
    pub rates: Vec<f64>,
    /// Duration of each fixed-rate run.
    pub rate_seconds: f64,
    /// Duration of the peak run.
    pub peak_seconds: f64,
    /// Connections of the fixed-rate runs.
    pub connections: usize,
    /// Connections of the peak runs: one closed-loop run per count (a closed loop
    /// measures latency, not capacity, until it has enough requests in flight).
    pub peak_connections: Vec<usize>,
    /// Newest training interactions applied to the store as live events.
    pub live_events: usize,
    /// Items per request.
    pub k: usize,
    /// Worker threads of the API's runtime.
    pub server_threads: usize,
    /// Most requests of any one run.
    pub max_requests: u64,
    /// Where the API under load logs its served lists (`None`: no served-list log), to
    /// measure what the log costs.
    pub served: Option<Arc<dyn ServedSink>>,
    /// The mixing the API under load ranks with (`[serve.mix]`).
    pub mix: MixWeights,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            models_dir: PathBuf::from("models"),
            data_dir: PathBuf::from("data/refined"),
            redis: RedisTarget::default(),
            rates: vec![500.0, 2_000.0, 5_000.0],
            rate_seconds: 10.0,
            peak_seconds: 10.0,
            connections: 64,
            peak_connections: vec![32, 64, 128],
            live_events: 200_000,
            k: 10,
            server_threads: 2,
            max_requests: 1_000_000,
            served: None,
            mix: MixWeights::default(),
        }
    }
}

/// The request mix used.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserMix {
    /// `Logged` users with live history.
    pub logged: usize,
    /// `Non-Logged` users with at least two live interactions.
    pub semi_logged: usize,
    /// Users seen once.
    pub seen_once: usize,
    /// Ids never seen.
    pub new: usize,
}

/// Everything measured.
#[derive(Debug, Clone)]
pub struct BenchReport {
    /// Live events applied in set-up.
    pub live_events: usize,
    /// Distinct users of each kind in the request paths.
    pub mix: UserMix,
    /// The served model version.
    pub model_version: String,
    /// One report per fixed rate, then one per peak run.
    pub runs: Vec<LoadReport>,
    /// What the served-list log published and dropped over every run, once it settled
    /// after the load (`None` without the log).
    pub served_log: Option<ServedLogCounts>,
}

/// Runs the whole benchmark (blocking; builds its own runtimes).
pub fn run(opts: &BenchOptions) -> Result<BenchReport, BenchError> {
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(opts.server_threads.max(1))
        .thread_name("api")
        .enable_all()
        .build()?;
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("load")
        .enable_all()
        .build()?;
    let prefix = format!("bench-serve-{}:", rand::rng().random::<u32>());
    let store_cfg = StoreConfig {
        redis: opts.redis.clone(),
        ..StoreConfig::with_prefix(prefix.clone())
    };
    let store = client_rt.block_on(RedisStore::connect(&opts.redis, store_cfg.clone()))?;
    let result = run_with_store(opts, &server_rt, &client_rt, &store, store_cfg);
    let cleanup = client_rt.block_on(store.delete_all());
    if let Err(e) = cleanup {
        tracing::warn!(error = %e, %prefix, "deleting benchmark keys");
    }
    result
}

fn run_with_store(
    opts: &BenchOptions,
    server_rt: &tokio::runtime::Runtime,
    client_rt: &tokio::runtime::Runtime,
    store: &RedisStore,
    store_cfg: StoreConfig,
) -> Result<BenchReport, BenchError> {
    let t = Instant::now();
    let data = newsrec_train::read_training(&opts.data_dir, 0)
        .map_err(|e| BenchError::Data(e.to_string()))?;
    let (events, live) = live_events(&data, opts.live_events);
    let applied = events.len();
    client_rt.block_on(async {
        for (chunk_no, chunk) in events.chunks(2_000).enumerate() {
            let start = (chunk_no * 2_000) as i64;
            let batch = PartitionBatch::consecutive(0, start, chunk.iter().cloned());
            store.apply(&batch).await?;
        }
        Ok::<_, BenchError>(())
    })?;
    tracing::info!(
        events = applied,
        ms = t.elapsed().as_millis() as u64,
        "live state applied"
    );
    let (paths, mix) = request_paths(&data, &live, opts.k)?;

    let config = ServeConfig {
        addr: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        store: store_cfg,
        models_dir: opts.models_dir.clone(),
        mix: opts.mix.clone(),
        ..ServeConfig::default()
    };
    let app = server_rt.block_on(Application::build(
        config,
        Sinks {
            events: None,
            served: opts.served.clone(),
        },
    ))?;
    let addr = app.local_addr();
    let state = Arc::clone(app.state());
    let model_version = app
        .state()
        .models
        .get()
        .map(|m| m.version().to_string())
        .ok_or_else(|| {
            BenchError::Insufficient("no current model in the models directory".into())
        })?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = server_rt.spawn(app.run_until_stopped(async {
        let _ = stop_rx.await;
    }));
    let result = client_rt.block_on(load_runs(opts, addr, Arc::new(paths)));
    let served_log = state.served.as_ref().map(settled_counts);
    let _ = stop_tx.send(());
    let _ = server_rt.block_on(server);
    Ok(BenchReport {
        live_events: applied,
        mix,
        model_version,
        runs: result?,
        served_log,
    })
}

/// The served-list log's counts once they stop moving (at most 10 s after the load):
/// the lists still queued when the load ends are published or dropped by then.
fn settled_counts(log: &ServedLog) -> ServedLogCounts {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = log.counts();
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let now = log.counts();
        if now == last || Instant::now() >= deadline {
            return now;
        }
        last = now;
    }
}

/// The last `count` training interactions as click events, and per user (index) their
/// type and how many of those events they have.
fn live_events(
    data: &newsrec_train::TrainingData,
    count: usize,
) -> (Vec<ClickEvent>, HashMap<u32, (UserType, u32)>) {
    let n = data.interactions.len();
    let from = n.saturating_sub(count);
    let mut events = Vec::with_capacity(n - from);
    let mut live: HashMap<u32, (UserType, u32)> = HashMap::new();
    for i in from..n {
        let u = data.interactions.user[i];
        let (Some(user), Some(item)) = (
            data.users.get(u as usize),
            data.items.get(data.interactions.item[i] as usize),
        ) else {
            continue;
        };
        let Ok(event_id) = EventId::parse(&format!("bench-{i}")) else {
            continue;
        };
        let e = live.entry(u).or_insert((user.user_type, 0));
        e.1 += 1;
        events.push(ClickEvent {
            event_id,
            user_id: user.id.clone(),
            user_type: user.user_type,
            page: item.page.clone(),
            ts: data.interactions.ts[i],
            session_id: None,
            clicks: None,
            time_on_page_ms: None,
            scroll_pct: None,
            page_visits: None,
            rec_id: None,
        });
    }
    (events, live)
}

/// 20,000 request paths in a fixed, shuffled mix: 30 % logged, 30 % semi-logged, 20 %
/// seen once, 20 % new users.
fn request_paths(
    data: &newsrec_train::TrainingData,
    live: &HashMap<u32, (UserType, u32)>,
    k: usize,
) -> Result<(Vec<String>, UserMix), BenchError> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut logged = Vec::new();
    let mut semi = Vec::new();
    let mut once = Vec::new();
    for (&u, &(ty, count)) in live {
        let id = data.users[u as usize].id.to_string();
        match (ty, count) {
            (UserType::Logged, _) => logged.push(id),
            (UserType::NonLogged, c) if c >= 2 => semi.push(id),
            _ => once.push(id),
        }
    }
    for v in [&mut logged, &mut semi, &mut once] {
        v.sort();
        v.shuffle(&mut rng);
        v.truncate(5_000);
    }
    if logged.is_empty() || semi.is_empty() || once.is_empty() {
        return Err(BenchError::Insufficient(format!(
            "need logged, semi-logged and seen-once users among the live events (got {} / {} / {})",
            logged.len(),
            semi.len(),
            once.len()
        )));
    }
    let new: Vec<String> = (0..5_000).map(|i| format!("bench-new-user-{i}")).collect();
    let mut paths = Vec::with_capacity(20_000);
    for i in 0..20_000usize {
        let (pool, j) = match i % 10 {
            0..=2 => (&logged, i),
            3..=5 => (&semi, i),
            6 | 7 => (&once, i),
            _ => (&new, i),
        };
        paths.push(format!(
            "/recommendations?user_id={}&k={k}",
            pool[j % pool.len()]
        ));
    }
    paths.shuffle(&mut rng);
    let mix = UserMix {
        logged: logged.len(),
        semi_logged: semi.len(),
        seen_once: once.len(),
        new: new.len(),
    };
    Ok((paths, mix))
}

/// A warm-up, then the fixed-rate runs, then the peak runs, against the API at `addr`.
async fn load_runs(
    opts: &BenchOptions,
    addr: std::net::SocketAddr,
    paths: Arc<Vec<String>>,
) -> Result<Vec<LoadReport>, BenchError> {
    let plan = |rate: Option<f64>, secs: f64, connections: usize| LoadPlan {
        addr,
        paths: paths.clone(),
        connections,
        rate,
        duration: Duration::from_secs_f64(secs),
        max_requests: opts.max_requests,
    };
    // Warm-up: connections, allocator, the model's pages.
    loadgen::run(&plan(Some(1_000.0), 2.0, opts.connections)).await?;
    let fixed = opts
        .rates
        .iter()
        .map(|&rate| (Some(rate), opts.rate_seconds, opts.connections));
    let peaks = opts
        .peak_connections
        .iter()
        .map(|&c| (None, opts.peak_seconds, c));
    let mut runs = Vec::new();
    for (rate, secs, connections) in fixed.chain(peaks) {
        let r = loadgen::run(&plan(rate, secs, connections)).await?;
        tracing::info!(
            rate = rate.map_or("peak".to_string(), |r| r.to_string()),
            connections,
            throughput = r.throughput,
            p99_us = r.p99_us,
            "load run"
        );
        runs.push(r);
    }
    Ok(runs)
}
