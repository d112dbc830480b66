//! The served-list log, through the `newsrec serve` binary: every answered list carries
//! a `rec_id` and reaches `<topic>.served` on the real broker with its pages in order;
//! with the broker gone, the API keeps answering every request and counts the lists it
//! could not log.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use newsrec_features::Partition;
use newsrec_ingest::{EventLog, KafkaConfig, KafkaLog, LogMessage, Positioner};

use crate::support::api::{model, pages_of, series_value};
use crate::support::{BIN, brokers, free_port, random_prefix, random_suffix, redis_url};

/// A `newsrec serve` child, killed when dropped.
pub(crate) struct Serve {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub(crate) base: String,
    pub(crate) http: reqwest::Client,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    /// Serves the fixture model on a random port and prefix, logging served lists to
    /// `<topic>.served` of `brokers`.
    pub(crate) async fn start(brokers: &str, topic: &str, env: &[(&str, &str)]) -> Result<Self> {
        let prefix = random_prefix("served");
        Self::start_on(&model().models, brokers, topic, &prefix, env).await
    }

    /// Serves the models of `models`, reading the feature store under `prefix`.
    pub(crate) async fn start_on(
        models: &std::path::Path,
        brokers: &str,
        topic: &str,
        prefix: &str,
        env: &[(&str, &str)],
    ) -> Result<Self> {
        let port = free_port()?;
        let child = Command::new(BIN)
            .args(["serve", "--models"])
            .arg(models)
            .args(["--redis", &redis_url(), "--prefix", prefix])
            .args(["--brokers", brokers, "--topic", topic])
            .args(["--addr", &format!("127.0.0.1:{port}")])
            .envs(env.iter().copied())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting newsrec serve")?;
        let serve = Serve {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let up = serve
                .http
                .get(format!("{}/health/live", serve.base))
                .send()
                .await;
            if up.is_ok_and(|r| r.status().is_success()) {
                return Ok(serve);
            }
            ensure!(Instant::now() < deadline, "serve did not come up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn json(&self, path: &str) -> Result<serde_json::Value> {
        let r = self.http.get(format!("{}{path}", self.base)).send().await?;
        ensure!(r.status().is_success(), "{path}: {}", r.status());
        Ok(r.json().await?)
    }

    async fn metric(&self, series: &str) -> Result<f64> {
        let text = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await?
            .text()
            .await?;
        Ok(series_value(&text, series).unwrap_or(0.0))
    }
}

/// Reads `topic` from the start until `n` messages came (or a minute passed).
pub(crate) async fn read_all(log: &KafkaLog, topic: &str, n: usize) -> Result<Vec<LogMessage>> {
    let from_start: Positioner = Arc::new(|parts: &[Partition]| Ok(vec![None; parts.len()]));
    let mut c = log
        .subscribe(topic, &format!("g-{}", random_suffix()), from_start)
        .await?;
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while got.len() < n && Instant::now() < deadline {
        // The API's watermark marks are not lists.
        got.extend(
            c.poll(n, Duration::from_millis(200))
                .await?
                .into_iter()
                .filter(|m| {
                    !matches!(
                        m.payload.as_deref().map(newsrec_core::ServedRecord::decode),
                        Some(Ok(newsrec_core::ServedRecord::Tick { .. }))
                    )
                }),
        );
    }
    Ok(got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_is_logged_with_its_rec_id() -> Result<()> {
    let topic = format!("clicks-{}", random_suffix());
    let serve = Serve::start(&brokers(), &topic, &[]).await?;
    let mut answers: HashMap<String, (Option<String>, Vec<String>)> = HashMap::new();
    for i in 0..20 {
        let user = format!("reader-{i}");
        let body = serve
            .json(&format!("/recommendations?user_id={user}&k=5"))
            .await?;
        let rec_id = body["rec_id"].as_str().context("rec_id")?.to_owned();
        answers.insert(rec_id, (Some(user), pages_of(&body)));
    }
    let page = model().pages[0].to_string();
    let body = serve.json(&format!("/articles/{page}/similar?k=5")).await?;
    let rec_id = body["rec_id"].as_str().context("rec_id")?.to_owned();
    answers.insert(rec_id, (None, pages_of(&body)));
    ensure!(answers.len() == 21, "rec_ids are distinct");

    let log = KafkaLog::new(KafkaConfig::new(brokers()))?;
    let got = read_all(&log, &format!("{topic}.served"), 21).await?;
    ensure!(got.len() == 21, "{} served lists on the topic", got.len());
    for m in &got {
        let v: serde_json::Value = serde_json::from_slice(m.payload.as_deref().unwrap_or(&[]))?;
        let rec_id = v["rec_id"].as_str().context("rec_id")?;
        let (user, pages) = answers.get(rec_id).context("a logged list was answered")?;
        let logged: Vec<String> = v["pages"]
            .as_array()
            .context("pages")?
            .iter()
            .filter_map(|p| p.as_str().map(str::to_owned))
            .collect();
        ensure!(&logged == pages, "{rec_id}: {logged:?} != {pages:?}");
        ensure!(v["variant"] == "control" && v["model_version"] == model().version.as_str());
        ensure!(v["wall_ts"].as_i64().is_some_and(|t| t > 0));
        match user {
            Some(u) => {
                ensure!(v["user_id"] == u.as_str(), "{v}");
                ensure!(m.key.as_deref() == Some(u.as_bytes()), "keyed by user");
                ensure!(v["tier"].is_string());
            }
            None => ensure!(v["page"] == page.as_str() && v.get("user_id").is_none()),
        }
    }
    let published = serve.metric("newsrec_served_log_published_total").await?;
    ensure!(published == 21.0, "published {published}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_broker_costs_answers_nothing() -> Result<()> {
    // Nothing listens on this port: every publish waits, then fails.
    let dead = format!("127.0.0.1:{}", free_port()?);
    let serve = Serve::start(
        &dead,
        "clicks",
        &[("NEWSREC_SERVE__SERVED_LOG_CAPACITY", "4")],
    )
    .await?;
    for i in 0..200 {
        let body = serve
            .json(&format!("/recommendations?user_id=r{i}&k=5"))
            .await?;
        ensure!(body["rec_id"].is_string() && pages_of(&body).len() == 5);
    }
    // At most the buffer and the batch in flight wait; the rest were dropped at once.
    let dropped = serve.metric("newsrec_served_log_dropped_total").await?;
    ensure!(dropped >= 190.0, "dropped {dropped}");
    ensure!(serve.metric("newsrec_served_log_published_total").await? == 0.0);
    Ok(())
}
