//! The prequential replay: clicks replayed in event-time order as a portal's front end
//! would send them. Before each click the replay asks the API for that user's
//! recommendations; the click then goes to the clicks topic carrying the answer's
//! `rec_id` when the clicked page was in the answer, and without one otherwise. Each
//! list is thus scored by a click the model has not seen yet ("test, then train"), and
//! the consumer's online counters (lists served, hits, reciprocal rank, position)
//! move as they would in production.
//!
//! Concurrency is bounded: one dispatcher walks the clicks in event-time order (paced
//! like [`crate::replay::publish`]) and hands each to one of `concurrency` workers,
//! chosen by a hash of the user id, through a small bounded channel. A worker asks and
//! publishes its clicks one at a time, so the clicks of one user keep their order (and,
//! keyed by user, land on one partition in order); different users interleave.
//!
//! An API error (a failed connection, a timeout, a non-2xx status, a body that is not a
//! recommendations answer) does not stop the run: the click is published without a
//! `rec_id` and the error counted. A failure to publish does stop it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use newsrec_core::{ClickEvent, PageId, RecId, UserId};
use serde::Deserialize;
use tokio::sync::mpsc;
use tracing::{debug, info, info_span, warn};

use crate::eventlog::{EventLog, LogError};
use crate::replay::{Speed, event_record, progress_bar};

/// Clicks waiting for each worker: enough to keep it busy, few enough that the
/// dispatcher never runs far ahead of the slowest worker in event time.
const WORKER_QUEUE: usize = 16;

/// API errors logged one by one; the rest are counted (and logged at debug level).
const ERRORS_LOGGED: u64 = 5;

/// Settings of one prequential replay.
#[derive(Debug, Clone, PartialEq)]
pub struct PrequentialConfig {
    /// The API's base URL, e.g. `http://127.0.0.1:8000`.
    pub api: String,
    /// Recommendations asked for per click (`k` of `GET /recommendations`).
    pub k: usize,
    /// Clicks in flight at once (users are spread over this many workers).
    pub concurrency: usize,
    /// Pace, by event time.
    pub speed: Speed,
    /// How long one API request may take before it counts as an error.
    pub api_timeout: Duration,
    /// Topic the clicks are published to.
    pub topic: String,
    /// Partitions when the topic has to be created.
    pub partitions: i32,
}

impl PrequentialConfig {
    /// Defaults: K = 10, 8 workers, max speed, 2 s per request, 4 partitions.
    pub fn new(api: impl Into<String>, topic: impl Into<String>) -> Self {
        Self {
            api: api.into(),
            k: 10,
            concurrency: 8,
            speed: Speed::Max,
            api_timeout: Duration::from_secs(2),
            topic: topic.into(),
            partitions: 4,
        }
    }

    /// Checks what the types cannot.
    pub fn validate(&self) -> Result<(), LogError> {
        let api = self.api.trim();
        if !(api.starts_with("http://") || api.starts_with("https://")) {
            return Err(LogError::Config(format!(
                "the API address `{api}` is not an http:// or https:// URL"
            )));
        }
        if !(1..=100).contains(&self.k) {
            return Err(LogError::Config(format!(
                "k = {} is outside 1..=100",
                self.k
            )));
        }
        if self.concurrency == 0 {
            return Err(LogError::Config("concurrency must be positive".into()));
        }
        Ok(())
    }

    fn recommendations_url(&self) -> String {
        format!("{}/recommendations", self.api.trim().trim_end_matches('/'))
    }
}

/// The answers of one tier during a replay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TierTally {
    /// Answers the tier gave.
    pub lists: u64,
    /// Of those, answers that held the page the user then clicked.
    pub hits: u64,
}

impl TierTally {
    /// `hits / lists` (0 without lists).
    pub fn hit_rate(&self) -> f64 {
        if self.lists == 0 {
            0.0
        } else {
            self.hits as f64 / self.lists as f64
        }
    }
}

/// What a prequential replay did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PrequentialSummary {
    /// Clicks published.
    pub clicks: u64,
    /// Of those, clicks that carried a `rec_id` (their page was in the answer).
    pub with_rec_id: u64,
    /// Requests that failed (their clicks were published without `rec_id`).
    pub api_errors: u64,
    /// The first API error, to show with the count.
    pub first_api_error: Option<String>,
    /// Answers and hits by the tier that answered.
    pub tiers: BTreeMap<String, TierTally>,
    /// Time from the first request to the last delivery.
    pub elapsed: Duration,
}

impl PrequentialSummary {
    /// Clicks published per second.
    pub fn clicks_per_sec(&self) -> f64 {
        self.clicks as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn add(&mut self, other: PrequentialSummary) {
        self.clicks += other.clicks;
        self.with_rec_id += other.with_rec_id;
        self.api_errors += other.api_errors;
        if self.first_api_error.is_none() {
            self.first_api_error = other.first_api_error;
        }
        for (tier, t) in other.tiers {
            let mine = self.tiers.entry(tier).or_default();
            mine.lists += t.lists;
            mine.hits += t.hits;
        }
    }
}

/// The part of a `GET /recommendations` answer the replay reads.
#[derive(Deserialize)]
struct Answer {
    rec_id: RecId,
    #[serde(default)]
    tier: Option<String>,
    items: Vec<AnswerItem>,
}

#[derive(Deserialize)]
struct AnswerItem {
    page: PageId,
}

/// What the workers share.
struct Shared<'a> {
    log: &'a dyn EventLog,
    cfg: &'a PrequentialConfig,
    url: String,
    http: reqwest::Client,
    progress: &'a ProgressBar,
    errors: AtomicU64,
}

impl Shared<'_> {
    /// Asks the API for the recommendations `e`'s reader sees just before the click, at
    /// the click's event time (so the served list is logged then, not at the API's
    /// watermark, which trails a fast replay by up to a refresh's worth of event time).
    async fn ask(&self, e: &ClickEvent) -> Result<Answer, String> {
        let k = self.cfg.k.to_string();
        let ts = e.ts.max(0).to_string();
        let resp = self
            .http
            .get(&self.url)
            .query(&[
                ("user_id", e.user_id.as_str()),
                ("k", k.as_str()),
                ("ts", ts.as_str()),
            ])
            .send()
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            let body: String = body.chars().take(200).collect();
            return Err(format!("status {status}: {body}"));
        }
        resp.json::<Answer>()
            .await
            .map_err(|e| format!("not a recommendations answer: {e}"))
    }

    /// One click: ask, attach the `rec_id` on a hit, publish.
    async fn click(&self, e: &ClickEvent, tally: &mut PrequentialSummary) -> Result<(), LogError> {
        let mut click = e.clone();
        click.rec_id = None;
        match self.ask(e).await {
            Ok(answer) => {
                let hit = answer.items.iter().any(|i| i.page == e.page);
                let tier = tally
                    .tiers
                    .entry(answer.tier.unwrap_or_else(|| "unknown".into()))
                    .or_default();
                tier.lists += 1;
                if hit {
                    tier.hits += 1;
                    tally.with_rec_id += 1;
                    click.rec_id = Some(answer.rec_id);
                }
            }
            Err(why) => {
                tally.api_errors += 1;
                let n = self.errors.fetch_add(1, Ordering::Relaxed) + 1;
                if n <= ERRORS_LOGGED {
                    warn!(user = %e.user_id, error = %why, "API error; the click goes without rec_id");
                } else {
                    debug!(user = %e.user_id, error = %why, "API error");
                }
                if tally.first_api_error.is_none() {
                    tally.first_api_error = Some(why);
                }
            }
        }
        self.log
            .produce(&self.cfg.topic, vec![event_record(&click)])
            .await?;
        tally.clicks += 1;
        self.progress.inc(1);
        Ok(())
    }

    /// One worker: its users' clicks, one at a time, in the order received.
    async fn worker(
        &self,
        mut rx: mpsc::Receiver<&ClickEvent>,
    ) -> Result<PrequentialSummary, LogError> {
        let mut tally = PrequentialSummary::default();
        while let Some(e) = rx.recv().await {
            self.click(e, &mut tally).await?;
        }
        Ok(tally)
    }
}

/// The worker of a user: a hash of the id (FNV-1a), so a user always gets the same.
fn shard(user: &UserId, workers: usize) -> usize {
    let h = user
        .as_str()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    (h % workers.max(1) as u64) as usize
}

/// Hands the clicks, in order and paced, to the workers; returns when all are handed
/// over or a worker has stopped.
async fn dispatch<'e>(
    events: &'e [ClickEvent],
    speed: Speed,
    txs: Vec<mpsc::Sender<&'e ClickEvent>>,
) {
    let started = Instant::now();
    let t0 = events.first().map_or(0, |e| e.ts);
    for e in events {
        if let Speed::Factor(f) = speed {
            let due = started + Duration::from_secs_f64(((e.ts - t0).max(0) as f64 / 1000.0) / f);
            if due > Instant::now() + Duration::from_millis(5) {
                tokio::time::sleep_until(due.into()).await;
            }
        }
        if txs[shard(&e.user_id, txs.len())].send(e).await.is_err() {
            return;
        }
    }
}

/// `newsrec replay --prequential`: creates the topic when missing, then replays
/// `events` (in event-time order) against the API, with a progress bar.
pub async fn prequential(
    log: &dyn EventLog,
    events: &[ClickEvent],
    cfg: &PrequentialConfig,
) -> Result<PrequentialSummary, LogError> {
    cfg.validate()?;
    let span = info_span!("prequential", topic = %cfg.topic, api = %cfg.api);
    let _guard = span.enter();
    log.ensure_topic(&cfg.topic, cfg.partitions).await?;
    let http = reqwest::Client::builder()
        .timeout(cfg.api_timeout)
        .pool_max_idle_per_host(cfg.concurrency)
        .build()
        .map_err(|e| LogError::Config(format!("HTTP client: {e}")))?;
    let progress = progress_bar(events.len() as u64);
    let shared = Shared {
        log,
        cfg,
        url: cfg.recommendations_url(),
        http,
        progress: &progress,
        errors: AtomicU64::new(0),
    };
    let started = Instant::now();
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..cfg.concurrency)
        .map(|_| mpsc::channel::<&ClickEvent>(WORKER_QUEUE))
        .unzip();
    let workers = futures::future::try_join_all(rxs.into_iter().map(|rx| shared.worker(rx)));
    let (tallies, ()) = tokio::try_join!(workers, async {
        dispatch(events, cfg.speed, txs).await;
        Ok::<(), LogError>(())
    })?;
    progress.finish();
    let mut summary = PrequentialSummary::default();
    for t in tallies {
        summary.add(t);
    }
    summary.elapsed = started.elapsed();
    info!(
        clicks = summary.clicks,
        with_rec_id = summary.with_rec_id,
        api_errors = summary.api_errors,
        per_sec = summary.clicks_per_sec() as u64,
        "prequential replay done"
    );
    Ok(summary)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_user_always_gets_the_same_worker_and_users_spread() {
        let users: Vec<UserId> = (0..400)
            .map(|i| UserId::parse(&format!("u{i}")).unwrap())
            .collect();
        let mut per = [0usize; 4];
        for u in &users {
            assert_eq!(shard(u, 4), shard(u, 4));
            per[shard(u, 4)] += 1;
        }
        assert!(per.iter().all(|n| *n > 50), "{per:?}");
        assert_eq!(shard(&users[0], 1), 0);
    }

    #[test]
    fn config_is_checked() {
        let ok = PrequentialConfig::new("http://127.0.0.1:8000/", "clicks");
        assert!(ok.validate().is_ok());
        assert_eq!(
            ok.recommendations_url(),
            "http://127.0.0.1:8000/recommendations"
        );
        for bad in [
            PrequentialConfig::new("127.0.0.1:8000", "clicks"),
            PrequentialConfig { k: 0, ..ok.clone() },
            PrequentialConfig {
                k: 101,
                ..ok.clone()
            },
            PrequentialConfig {
                concurrency: 0,
                ..ok.clone()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn answers_parse_and_tallies_add() {
        let a: Answer = serde_json::from_str(
            r#"{"rec_id":"r-1","user_id":"u","tier":"logged","model_version":"v","degraded":false,
                "items":[{"page":"p1","score":1.0,"title":null,"url":null,"reason":"cf"}]}"#,
        )
        .unwrap();
        assert_eq!(a.rec_id.as_str(), "r-1");
        assert_eq!(a.items[0].page.as_str(), "p1");
        let mut s = PrequentialSummary::default();
        let mut t = PrequentialSummary {
            clicks: 3,
            with_rec_id: 1,
            api_errors: 1,
            first_api_error: Some("x".into()),
            ..Default::default()
        };
        t.tiers
            .insert("logged".into(), TierTally { lists: 2, hits: 1 });
        s.add(t.clone());
        s.add(t);
        assert_eq!((s.clicks, s.with_rec_id, s.api_errors), (6, 2, 2));
        assert_eq!(s.tiers["logged"], TierTally { lists: 4, hits: 2 });
        assert_eq!(s.tiers["logged"].hit_rate(), 0.5);
    }
}
