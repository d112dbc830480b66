//! End to end through the `newsrec` binary with the real broker and Redis: synthetic
//! data → process → train → replay → consume → serve; new readers publish clicks with
//! `POST /events` and move up the tiers within a second of each click.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use newsrec_core::{PageId, UserId};
use newsrec_features::{FeatureStore, RedisStore, RedisTarget, StoreConfig};
use rand::Rng;

use crate::support::api::{pages_of, series_value};
use crate::support::{BIN, brokers, random_prefix, redis_url};

const K: usize = 10;

fn newsrec(args: &[&str]) -> Result<String> {
    let out = Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .with_context(|| format!("running newsrec {args:?}"))?;
    if !out.status.success() {
        bail!(
            "newsrec {args:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A background `newsrec` process, stopped with SIGTERM (then killed) when dropped.
struct Background(Child);

impl Drop for Background {
    fn drop(&mut self) {
        let pid = self.0.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(args: &[&str]) -> Result<Background> {
    let child = Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("spawning newsrec {args:?}"))?;
    Ok(Background(child))
}

/// Starts `newsrec serve` and returns it with its base URL (read from its first line).
fn spawn_serve(args: &[&str]) -> Result<(Background, String)> {
    let mut bg = spawn(args)?;
    let stdout = bg.0.stdout.take().context("serve stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .with_context(|| format!("unexpected first line {line:?}"))?
        .to_string();
    Ok((bg, base))
}

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn recommend(&self, user: &str) -> Result<serde_json::Value> {
        let resp = self
            .http
            .get(format!(
                "{}/recommendations?user_id={user}&k={K}",
                self.base
            ))
            .send()
            .await?;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await?;
        if !status.is_success() {
            bail!("{status}: {body}");
        }
        Ok(body)
    }

    async fn click(
        &self,
        user: &str,
        user_type: &str,
        page: &PageId,
        ts: i64,
        n: u32,
    ) -> Result<()> {
        let event = serde_json::json!({
            "event_id": format!("{user}-{n}"),
            "user_id": user,
            "user_type": user_type,
            "page": page.as_str(),
            "ts": ts,
            "clicks": 4,
            "time_on_page_ms": 45_000,
            "scroll_pct": 70.0,
            "page_visits": 1,
        });
        let resp = self
            .http
            .post(format!("{}/events", self.base))
            .json(&event)
            .send()
            .await?;
        if resp.status().as_u16() != 202 {
            bail!("POST /events: {} {}", resp.status(), resp.text().await?);
        }
        Ok(())
    }
}

/// Asserts the response shape every request must have: K distinct unread items.
fn check(body: &serde_json::Value, read: &HashSet<String>) {
    let pages = pages_of(body);
    assert_eq!(pages.len(), K, "K items: {body}");
    assert_eq!(
        pages.iter().collect::<HashSet<_>>().len(),
        K,
        "distinct: {body}"
    );
    for p in &pages {
        assert!(
            !read.contains(p),
            "already-read page {p} recommended: {body}"
        );
    }
    assert_eq!(body["degraded"], false, "{body}");
}

/// Polls until the user's state holds `interactions` and the API serves `tier`, within
/// one second of the click. Every response on the way has K unread items: the pages of
/// applied clicks are never recommended (the newest click counts as read from the
/// moment the store shows it applied, before the request is made).
async fn within_a_second(
    api: &Api,
    store: &RedisStore,
    user: &str,
    interactions: u64,
    tier: &str,
    read: &HashSet<String>,
    newest: &PageId,
) -> Result<Duration> {
    let started = Instant::now();
    let uid = UserId::parse(user)?;
    let mut before = read.clone();
    before.remove(newest.as_str());
    loop {
        let applied = store
            .user(&uid)
            .await?
            .is_some_and(|u| u.interactions() >= interactions);
        let body = api.recommend(user).await?;
        check(&body, if applied { read } else { &before });
        if applied && body["tier"] == tier {
            return Ok(started.elapsed());
        }
        if started.elapsed() > Duration::from_secs(1) {
            bail!(
                "{user}: after 1 s tier is {} (want {tier}), click applied: {applied}",
                body["tier"]
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clicks_move_new_readers_up_the_tiers_end_to_end() -> Result<()> {
    let _machine = crate::support::whole_stack().await;
    let dir = tempfile::tempdir()?;
    let (raw, refined, models) = (
        dir.path().join("raw"),
        dir.path().join("refined"),
        dir.path().join("models"),
    );
    newsrec(&[
        "data",
        "synth",
        "--out",
        path(&raw),
        "--users",
        "1500",
        "--items",
        "400",
        "--seed",
        "3",
    ])?;
    newsrec(&[
        "data",
        "process",
        "--raw",
        path(&raw),
        "--out",
        path(&refined),
    ])?;
    newsrec(&["train", "--data", path(&refined), "--models", path(&models)])?;

    let tag = rand::rng().random::<u32>();
    let topic = format!("e2e-clicks-{tag:08x}");
    let prefix = random_prefix("e2e");
    let (brokers, redis) = (brokers(), redis_url());
    newsrec(&[
        "replay",
        "--data",
        path(&refined),
        "--brokers",
        &brokers,
        "--topic",
        &topic,
        "--limit",
        "3000",
    ])?;
    let _consumer = spawn(&[
        "consume",
        "--brokers",
        &brokers,
        "--topic",
        &topic,
        "--group",
        &format!("e2e-{tag:08x}"),
        "--redis",
        &redis,
        "--prefix",
        &prefix,
        "--items",
        path(&refined),
    ])?;
    let (_server, base) = spawn_serve(&[
        "serve",
        "--models",
        path(&models),
        "--data",
        path(&refined),
        "--redis",
        &redis,
        "--prefix",
        &prefix,
        "--brokers",
        &brokers,
        "--topic",
        &topic,
        "--addr",
        "127.0.0.1:0",
    ])?;
    let api = Api {
        base,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?,
    };
    let store = RedisStore::connect(
        &RedisTarget::parse(&redis, false),
        StoreConfig::with_prefix(&prefix),
    )
    .await?;

    // The consumer has caught up with the replay: live popularity is there.
    let deadline = Instant::now() + Duration::from_secs(60);
    let watermark = loop {
        // An empty store (nothing applied yet) answers with an error: keep waiting.
        if let Ok(Some(wm)) = store.watermark().await
            && let Ok(r) = api
                .http
                .get(format!("{}/popular?k=20", api.base))
                .send()
                .await
            && let Ok(body) = r.json::<serde_json::Value>().await
            && pages_of(&body).len() >= 10
        {
            break wm;
        }
        if Instant::now() > deadline {
            bail!("consumer did not apply the replay within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (_, popular) = {
        let r = api
            .http
            .get(format!("{}/popular?k=20", api.base))
            .send()
            .await?;
        (r.status(), r.json::<serde_json::Value>().await?)
    };
    let pages: Vec<PageId> = pages_of(&popular)
        .iter()
        .map(|p| PageId::parse(p))
        .collect::<Result<_, _>>()?;

    // A new Non-Logged reader: anonymous, anonymous after one click, semi-logged after two.
    let reader = format!("e2e-reader-{tag:08x}");
    let mut read = HashSet::new();
    let body = api.recommend(&reader).await?;
    assert_eq!(body["tier"], "anonymous");
    check(&body, &read);
    let mut ts = watermark + 1_000;
    for (n, (interactions, tier)) in [(1, "anonymous"), (2, "semi_logged"), (3, "semi_logged")]
        .into_iter()
        .enumerate()
    {
        let page = &pages[n];
        api.click(&reader, "Non-Logged", page, ts, n as u32).await?;
        read.insert(page.to_string());
        let took = within_a_second(&api, &store, &reader, interactions, tier, &read, page).await?;
        eprintln!("{reader}: click {} visible as {tier} after {took:?}", n + 1);
        ts += 30_000;
    }

    // A new Logged reader reaches the logged tier with their first click.
    let member = format!("e2e-member-{tag:08x}");
    let mut read_m = HashSet::new();
    check(&api.recommend(&member).await?, &read_m);
    for (n, page) in pages.iter().skip(3).take(3).enumerate() {
        api.click(&member, "Logged", page, ts, n as u32).await?;
        read_m.insert(page.to_string());
        let took =
            within_a_second(&api, &store, &member, n as u64 + 1, "logged", &read_m, page).await?;
        eprintln!("{member}: click {} visible as logged after {took:?}", n + 1);
        ts += 30_000;
    }

    let metrics = api
        .http
        .get(format!("{}/metrics", api.base))
        .send()
        .await?
        .text()
        .await?;
    // Every transition series exists from start-up; these two must have counted.
    for to in ["semi_logged", "logged"] {
        let series = format!("newsrec_tier_transitions_total{{from=\"anonymous\",to=\"{to}\"}}");
        assert!(
            series_value(&metrics, &series).is_some_and(|v| v >= 1.0),
            "{series} in {metrics}"
        );
    }
    let _ = store.delete_all().await;
    Ok(())
}
