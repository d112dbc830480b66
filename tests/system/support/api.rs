//! Shared set-up of the API tests: one small trained model per test run, the API
//! spawned on a random port (the production `Application`, not a copy), a random
//! feature-store prefix per test, and Redis servers the tests own (to kill and restart).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use newsrec_core::{ClickEvent, EventId, PageId, UserId, UserType};
use newsrec_features::{FeatureStore, PartitionBatch, RedisStore, RedisTarget, StoreConfig};
use newsrec_serve::{Application, EventSink, ServeConfig, Sinks};
use newsrec_train::ModelSet;

use super::{free_port, random_prefix, redis_url};

/// A trained model in a temporary registry, shared by a test binary.
pub struct ModelFixture {
    _dir: tempfile::TempDir,
    /// The models directory (`current` set).
    pub models: PathBuf,
    /// The refined data it was trained on (with its validation clicks).
    pub data: PathBuf,
    /// The served version.
    pub version: String,
    /// Articles of the catalogue, most read first.
    pub pages: Vec<PageId>,
    /// Last event time of the training data (the model's "now").
    pub end_ts: i64,
}

/// Builds (once per process) synthetic raw data → refined data → a trained model.
pub fn model() -> &'static ModelFixture {
    static FIXTURE: OnceLock<ModelFixture> = OnceLock::new();
    FIXTURE.get_or_init(|| build_world(1_500, 400, 11).expect("building the test model"))
}

/// Synthetic raw data of `users` readers and `items` articles → refined data → a
/// trained model, in a temporary directory.
pub fn build_world(users: usize, items: usize, seed: u64) -> Result<ModelFixture> {
    let dir = tempfile::tempdir()?;
    let raw = dir.path().join("raw");
    let data = dir.path().join("refined");
    let models = dir.path().join("models");
    newsrec_data::synth::generate(&newsrec_data::synth::SynthConfig {
        out: raw.clone(),
        users,
        items,
        seed,
        world: newsrec_data::synth::WorldKind::G1,
        zip: None,
        progress: false,
    })?;
    newsrec_data::refine::process(&newsrec_data::refine::ProcessConfig::new(&raw, &data))?;
    let manifest = newsrec_train::train(&data, &models, &newsrec_train::TrainParams::default())?;
    let model = ModelSet::load(&models.join(&manifest.version))?;
    let pages: Vec<PageId> = model.popular_all().cloned().collect();
    if pages.len() < 50 {
        bail!("test model has only {} popular pages", pages.len());
    }
    Ok(ModelFixture {
        models,
        data,
        version: manifest.version.clone(),
        pages,
        end_ts: model.end_ts(),
        _dir: dir,
    })
}

/// Copies the fixture's models directory (so a test can add versions or break files).
pub fn copy_models(to: &Path) -> Result<()> {
    copy_dir(&model().models, to)
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        let ft = entry.file_type()?;
        if ft.is_symlink() {
            let link = std::fs::read_link(entry.path())?;
            std::os::unix::fs::symlink(link, target)?;
        } else if ft.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// An API instance on a random port, stopped when dropped.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// A client with a short timeout.
    pub http: reqwest::Client,
    /// The store prefix it reads.
    pub prefix: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
}

impl TestApp {
    /// GET `path`, returning status and JSON body.
    pub async fn get(&self, path: &str) -> Result<(u16, serde_json::Value)> {
        let resp = self.http.get(format!("{}{path}", self.base)).send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        let json =
            serde_json::from_str(&text).with_context(|| format!("{path}: not JSON: {text}"))?;
        Ok((status, json))
    }

    /// GET `path` as text.
    pub async fn get_text(&self, path: &str) -> Result<(u16, String)> {
        let resp = self.http.get(format!("{}{path}", self.base)).send().await?;
        Ok((resp.status().as_u16(), resp.text().await?))
    }

    /// `/recommendations` for a user.
    pub async fn recommend(&self, user: &str, k: usize) -> Result<serde_json::Value> {
        let (status, body) = self
            .get(&format!("/recommendations?user_id={user}&k={k}"))
            .await?;
        if status != 200 {
            bail!("recommendations for {user}: {status} {body}");
        }
        Ok(body)
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            let _ = h.await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// Starts the API on a random port with the fixture's model and a fresh prefix.
pub async fn spawn_app(
    tag: &str,
    configure: impl FnOnce(&mut ServeConfig),
    sink: Option<std::sync::Arc<dyn EventSink>>,
) -> Result<TestApp> {
    let sinks = Sinks {
        events: sink,
        served: None,
    };
    spawn_app_with(tag, configure, sinks).await
}

/// [`spawn_app`] with both of the API's outputs given.
pub async fn spawn_app_with(
    tag: &str,
    configure: impl FnOnce(&mut ServeConfig),
    sinks: Sinks,
) -> Result<TestApp> {
    let prefix = random_prefix(tag);
    let mut cfg = ServeConfig {
        addr: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        models_dir: model().models.clone(),
        reload_interval_ms: 200,
        snapshot_interval_ms: 200,
        ..ServeConfig::default()
    };
    cfg.store.prefix = prefix.clone();
    cfg.store.redis = RedisTarget::parse(&redis_url(), false);
    configure(&mut cfg);
    let prefix = cfg.store.prefix.clone();
    let app = Application::build(cfg, sinks).await?;
    let base = format!("http://{}", app.local_addr());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        let _ = app
            .run_until_stopped(async {
                let _ = rx.await;
            })
            .await;
    });
    Ok(TestApp {
        base,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?,
        prefix,
        stop: Some(tx),
        handle: Some(handle),
    })
}

/// Writes events into the feature store through the consumer's write path (one
/// partition, consecutive offsets), as the consumer would after reading them.
pub struct Writer {
    /// The store.
    pub store: RedisStore,
    next_offset: i64,
    seq: u64,
}

impl Writer {
    /// A writer on `redis_url` with `prefix`.
    pub async fn connect(redis_url: &str, prefix: &str) -> Result<Self> {
        let store = RedisStore::connect(
            &RedisTarget::parse(redis_url, false),
            StoreConfig::with_prefix(prefix),
        )
        .await?;
        Ok(Self {
            store,
            next_offset: 0,
            seq: 0,
        })
    }

    /// Applies one click of `user` on `page` at event time `ts`.
    pub async fn click(
        &mut self,
        user: &str,
        user_type: UserType,
        page: &PageId,
        ts: i64,
    ) -> Result<()> {
        self.clicks(&[(user, user_type, page.clone(), ts)]).await
    }

    /// Applies several clicks as one batch.
    pub async fn clicks(&mut self, clicks: &[(&str, UserType, PageId, i64)]) -> Result<()> {
        let start = self.next_offset;
        let mut events = Vec::with_capacity(clicks.len());
        for (user, ty, page, ts) in clicks {
            self.seq += 1;
            events.push(ClickEvent {
                event_id: EventId::parse(&format!("test-{}", self.seq))?,
                user_id: UserId::parse(user)?,
                user_type: *ty,
                page: page.clone(),
                ts: *ts,
                session_id: None,
                clicks: Some(3),
                time_on_page_ms: Some(40_000),
                scroll_pct: Some(60.0),
                page_visits: Some(1),
                rec_id: None,
            });
        }
        let batch = PartitionBatch::consecutive(0, start, events);
        self.next_offset = batch.end.0;
        self.store.apply(&batch).await?;
        Ok(())
    }

    /// Deletes every key of the prefix.
    pub async fn cleanup(&self) {
        let _ = self.store.delete_all().await;
    }
}

/// A `redis-server` this test owns, on a fixed random port so it can be restarted
/// where clients expect it.
pub struct OwnedRedis {
    /// Its port.
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl OwnedRedis {
    /// Starts one on a free port.
    pub fn start() -> Result<Self> {
        let mut me = Self {
            port: free_port()?,
            dir: tempfile::tempdir()?,
            child: None,
        };
        me.restart()?;
        Ok(me)
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server again on the same port (after [`OwnedRedis::kill`]).
    pub fn restart(&mut self) -> Result<()> {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting redis-server")?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("redis-server on port {} did not come up", self.port)
    }

    /// Kills the server (as a crash would).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for OwnedRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `check` every 50 ms until it returns `Some` or `within` passes.
pub async fn eventually<T, F, Fut>(within: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The page ids of a response's items.
pub fn pages_of(body: &serde_json::Value) -> Vec<String> {
    body["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| i["page"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The value of one series (`name{labels}`, exactly as rendered) in a Prometheus text
/// exposition; `None` when the series is absent.
pub fn series_value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}
