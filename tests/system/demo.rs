//! `newsrec demo`, the README's first command: from nothing to an answering API in one
//! process. The test runs the built binary on a random loopback port, waits for the
//! API, and asks it for recommendations.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde_json::Value;
use tokio::process::Command;

use crate::support::{BIN, free_port, tail};

/// Generous for a debug build on two cores; the release binary is ready far sooner.
const READY_WITHIN: Duration = Duration::from_secs(600);

async fn get_json(http: &reqwest::Client, url: &str) -> anyhow::Result<Value> {
    let resp = http.get(url).send().await?;
    let status = resp.status();
    let body = resp.text().await?;
    ensure!(status.is_success(), "GET {url}: {status}: {body}");
    serde_json::from_str(&body).with_context(|| format!("GET {url}: not JSON: {body}"))
}

/// Checks one recommendations answer: exactly `k` distinct pages, each with a score.
fn check_recommendations(v: &Value, k: usize) -> anyhow::Result<()> {
    let items = v["items"].as_array().context("no items array")?;
    ensure!(
        items.len() == k,
        "asked for {k} items, got {}: {v}",
        items.len()
    );
    let mut pages: Vec<&str> = items.iter().filter_map(|i| i["page"].as_str()).collect();
    ensure!(pages.len() == k, "items without a page: {v}");
    pages.sort_unstable();
    pages.dedup();
    ensure!(pages.len() == k, "duplicate pages: {v}");
    ensure!(
        items.iter().all(|i| i["score"].is_number()),
        "items without a score: {v}"
    );
    ensure!(
        ["anonymous", "semi_logged", "logged"].contains(&v["tier"].as_str().unwrap_or("")),
        "unknown tier: {v}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_serves_recommendations() -> anyhow::Result<()> {
    let _machine = crate::support::whole_stack().await;
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let log = dir.path().join("demo.log");
    let out = File::create(&log)?;
    let mut demo = Command::new(BIN)
        .args(["demo", "--addr", &format!("127.0.0.1:{port}")])
        .arg("--dir")
        .arg(dir.path().join("demo"))
        // A tenth of the default world: the same path through every stage, in a test's
        // time budget on a debug build.
        .args(["--users", "2000", "--items", "600"])
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .kill_on_drop(true)
        .spawn()?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;

    let started = Instant::now();
    loop {
        if let Some(status) = demo.try_wait()? {
            bail!("demo exited with {status} before serving:\n{}", tail(&log));
        }
        // The API answers during the demo's prequential replay already; the demo is
        // ready when it prints its tour.
        if let Ok(resp) = http.get(format!("{base}/health/ready")).send().await
            && resp.status().is_success()
            && std::fs::read_to_string(&log)?.contains("newsrec demo ready in")
        {
            break;
        }
        ensure!(
            started.elapsed() < READY_WITHIN,
            "demo not ready within {READY_WITHIN:?}:\n{}",
            tail(&log)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!("demo ready in {:.1} s", started.elapsed().as_secs_f64());
    let printed = std::fs::read_to_string(&log)?;
    ensure!(
        printed.contains(&base),
        "the demo does not print the URLs to try:\n{}",
        tail(&log)
    );
    // Validation clicks went through its API (prequentially) before it opened.
    ensure!(
        printed.contains(" carried a rec_id, "),
        "no clean prequential replay in the demo's output:\n{}",
        tail(&log)
    );

    // Its online quality: every tier's served lists were read, and personalised lists
    // more often than the popularity lists anonymous readers get.
    let online = get_json(&http, &format!("{base}/evaluation/online")).await?;
    let hit_rate = |tier: &str| -> anyhow::Result<(u64, f64)> {
        let g = online["groups"]
            .as_array()
            .and_then(|gs| gs.iter().find(|g| g["tier"] == tier))
            .with_context(|| format!("no {tier} group in {online}"))?;
        let hits = g["hits"].as_u64().unwrap_or_default();
        Ok((hits, g["hit_rate"].as_f64().unwrap_or_default()))
    };
    let tiers = ["logged", "semi_logged", "anonymous"].map(hit_rate);
    eprintln!("online (hits, HR) logged, semi-logged, anonymous: {tiers:?}");
    let [logged, semi, anonymous] = tiers;
    let (logged, semi, anonymous) = (logged?, semi?, anonymous?);
    ensure!(
        logged.0 > 0 && semi.0 > 0 && anonymous.0 > 0,
        "a tier without online hits: {online}"
    );
    ensure!(
        logged.1 > anonymous.1,
        "logged HR {} not above anonymous {}",
        logged.1,
        anonymous.1
    );

    // A reader the demo has never seen: live popularity must still fill all K slots.
    let k = 7;
    let v = get_json(
        &http,
        &format!("{base}/recommendations?user_id=demo-visitor-1&k={k}"),
    )
    .await?;
    check_recommendations(&v, k)?;

    // Every recommendations URL the demo suggests answers with a full list too.
    let suggested: Vec<String> = printed
        .split_whitespace()
        .filter(|w| w.starts_with(&base) && w.contains("/recommendations?"))
        .map(|w| w.trim_end_matches(['.', ',', ')', '"', '\'']).to_string())
        .collect();
    eprintln!("{} suggested recommendation URLs", suggested.len());
    for url in &suggested {
        let v = get_json(&http, url).await?;
        let asked = url
            .split(['?', '&'])
            .find_map(|kv| {
                kv.strip_prefix("k=")
                    .or_else(|| kv.strip_prefix("num_recs="))
            })
            .and_then(|k| k.parse().ok())
            .unwrap_or(newsrec_serve::DEFAULT_K);
        check_recommendations(&v, asked).with_context(|| url.clone())?;
    }

    // The live signals behind it: popularity from the replayed clicks.
    let popular = get_json(&http, &format!("{base}/popular?k=5")).await?;
    ensure!(
        popular["items"].as_array().is_some_and(|i| !i.is_empty()),
        "no live popularity after the replay: {popular}"
    );
    // No validation reader is offered a page they read: every replayed click counts,
    // heavy readers' included.
    let refined = dir.path().join("demo").join("refined");
    let (events, _) = newsrec_data::events::load_events(&refined, None)?;
    let mut read: HashMap<String, HashSet<String>> = HashMap::new();
    for e in &events {
        read.entry(e.user_id.as_str().to_owned())
            .or_default()
            .insert(e.page.as_str().to_owned());
    }
    let validation: BTreeSet<String> = newsrec_train::read_validation(&refined)?
        .into_iter()
        .map(|r| r.user.as_str().to_owned())
        .collect();
    let (mut offered, mut heavy) = (0, 0);
    for user in &validation {
        let v = get_json(
            &http,
            &format!("{base}/recommendations?user_id={user}&k=10"),
        )
        .await?;
        let Some(pages) = read.get(user) else {
            continue;
        };
        heavy += usize::from(pages.len() > 20);
        for item in v["items"].as_array().context("no items")? {
            let page = item["page"].as_str().unwrap_or_default();
            ensure!(
                !pages.contains(page),
                "{user} ({} reads) was offered {page}, which they read",
                pages.len()
            );
            offered += 1;
        }
    }
    eprintln!(
        "{} validation readers ({heavy} with more than 20 reads), {offered} pages offered, none read",
        validation.len()
    );
    ensure!(heavy > 0, "no heavy reader among the validation readers");

    demo.start_kill()?;
    let _ = demo.wait().await;
    Ok(())
}
