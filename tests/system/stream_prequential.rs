//! `newsrec replay --prequential` against a real `newsrec serve` (on Redis holding the
//! end of training's clicks, so the answers track live popularity) on the real broker: the
//! validation clicks land on the clicks topic, each user's in event-time order, and a
//! click carries the `rec_id` of the answer served just before it exactly when its page
//! was in that answer (the served-list log, `<topic>.served`, says what each answer
//! held). With the API unreachable every click still goes, without `rec_id`, and the
//! errors are counted.

use std::collections::HashMap;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use newsrec_core::ClickEvent;
use newsrec_ingest::{KafkaConfig, KafkaLog, LogMessage};

use crate::api_served_log::{Serve, read_all};
use crate::support::api::{Writer, model};
use crate::support::{BIN, brokers, free_port, random_prefix, random_suffix, redis_url};

/// Validation clicks replayed.
const CLICKS: usize = 300;

/// Training interactions in the live store the API reads.
const LIVE_CLICKS: usize = 3_000;

/// Runs `newsrec replay --prequential` of the validation clicks in `data` (a refined
/// data directory) and returns its summary line's numbers: `(clicks, with rec_id, API
/// errors)`.
pub(crate) fn replay_prequential(
    data: &std::path::Path,
    topic: &str,
    api: &str,
    limit: usize,
) -> Result<(u64, u64, u64)> {
    let data = data.display().to_string();
    let out = Command::new(BIN)
        .args(["replay", "--prequential", "--data", &data])
        .args(["--brokers", &brokers(), "--topic", topic, "--api", api])
        .args([
            "--limit",
            &limit.to_string(),
            "--k",
            "10",
            "--concurrency",
            "4",
        ])
        .env("RUST_LOG", "warn")
        .output()
        .context("running newsrec replay --prequential")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "replay --prequential failed: {}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // "published N clicks to T in S s (R clicks/s): M carried a rec_id, E API errors"
    let line = stdout.lines().next().unwrap_or_default();
    let number_before = |what: &str| -> Result<u64> {
        let head = line
            .split(what)
            .next()
            .filter(|h| h.len() < line.len())
            .with_context(|| format!("no `{what}` in {line:?}"))?;
        let n = head.split_whitespace().last().unwrap_or_default();
        n.parse()
            .with_context(|| format!("`{n}` before `{what}` in {line:?}"))
    };
    Ok((
        number_before(" clicks to ")?,
        number_before(" carried a rec_id")?,
        number_before(" API errors")?,
    ))
}

/// Messages grouped by key (user), each group in partition-offset order.
fn by_user(mut msgs: Vec<LogMessage>) -> HashMap<Vec<u8>, Vec<LogMessage>> {
    msgs.sort_by_key(|m| (m.partition, m.offset));
    let mut out: HashMap<Vec<u8>, Vec<LogMessage>> = HashMap::new();
    for m in msgs {
        out.entry(m.key.clone().unwrap_or_default())
            .or_default()
            .push(m);
    }
    out
}

fn click_of(m: &LogMessage) -> Result<ClickEvent> {
    ClickEvent::decode(m.payload.as_deref().unwrap_or_default())
        .map_err(|e| anyhow::anyhow!("a click that does not decode: {e:?}"))
}

/// A served list's `rec_id` and pages, and its event time.
/// A served list: its `rec_id` and pages.
type Listed = (String, Vec<String>);

fn served_of(m: &LogMessage) -> Result<(Listed, Option<i64>)> {
    let v: serde_json::Value = serde_json::from_slice(m.payload.as_deref().unwrap_or_default())?;
    let ts = v["event_ts"].as_i64();
    let rec_id = v["rec_id"].as_str().context("rec_id")?.to_owned();
    let pages = v["pages"]
        .as_array()
        .context("pages")?
        .iter()
        .filter_map(|p| p.as_str().map(str::to_owned))
        .collect();
    Ok(((rec_id, pages), ts))
}

/// Each user's clicks: in event-time order, in replay order, and carrying the `rec_id` of
/// the list served just before exactly when the page was in it. Returns the hits.
fn check_user(user: &[u8], clicks: &[LogMessage], served: &[LogMessage]) -> Result<u64> {
    let name = String::from_utf8_lossy(user);
    ensure!(
        clicks.len() == served.len(),
        "{name}: {} clicks but {} lists served",
        clicks.len(),
        served.len()
    );
    let mut hits = 0;
    let mut last_ts = i64::MIN;
    for (i, (c, s)) in clicks.iter().zip(served).enumerate() {
        let click = click_of(c)?;
        ensure!(
            click.user_id.as_str().as_bytes() == user,
            "{name}: keyed by user"
        );
        ensure!(
            click.ts >= last_ts,
            "{name}: click {i} at {} after {last_ts}",
            click.ts
        );
        last_ts = click.ts;
        ensure!(
            click.event_id.as_str().ends_with(&format!("-{i}")),
            "{name}: click {i} is {}",
            click.event_id
        );
        let ((rec_id, pages), ts) = served_of(s)?;
        // Logged at the reader's time (the click's), not at the API's trailing watermark.
        ensure!(
            ts == Some(click.ts),
            "{name}: list {rec_id} logged at {ts:?}, its click at {}",
            click.ts
        );
        let in_list = pages.iter().any(|p| p == click.page.as_str());
        let carried = click.rec_id.as_ref().map(|r| r.as_str().to_owned());
        if in_list {
            ensure!(
                carried.as_deref() == Some(rec_id.as_str()),
                "{name}: click {i} on {} (in list {rec_id}) carries {carried:?}",
                click.page
            );
            hits += 1;
        } else {
            ensure!(
                carried.is_none(),
                "{name}: click {i} on {} (not in {pages:?}) carries {carried:?}",
                click.page
            );
        }
    }
    Ok(hits)
}

/// The last [`LIVE_CLICKS`] training interactions, written into the store under a new
/// prefix through the consumer's write path: live popularity as of the end of training
/// (the validation days read new articles, which the model's all-time popularity never
/// holds) and live features that route readers to every tier. Returns the writer and
/// the prefix.
async fn live_store() -> Result<(Writer, String)> {
    let prefix = random_prefix("preq");
    let mut w = Writer::connect(&redis_url(), &prefix).await?;
    let (events, _) = newsrec_data::events::load_events(&model().data, None)?;
    let last = &events[events.len().saturating_sub(LIVE_CLICKS)..];
    for chunk in last.chunks(500) {
        let rows: Vec<_> = chunk
            .iter()
            .map(|e| (e.user_id.as_str(), e.user_type, e.page.clone(), e.ts))
            .collect();
        w.clicks(&rows).await?;
    }
    Ok((w, prefix))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prequential_clicks_carry_the_rec_id_of_the_answer_that_held_them() -> Result<()> {
    let started = Instant::now();
    let topic = format!("preq-{}", random_suffix());
    let (store, prefix) = live_store().await?;
    let serve = Serve::start_on(&model().models, &brokers(), &topic, &prefix, &[]).await?;
    let (clicks, with_rec_id, errors) =
        replay_prequential(&model().data, &topic, &serve.base, CLICKS)?;
    ensure!(
        clicks == CLICKS as u64 && errors == 0,
        "{clicks} clicks, {errors} errors"
    );
    ensure!(with_rec_id > 0, "no click was on a page of its answer");

    let log = KafkaLog::new(KafkaConfig::new(brokers()))?;
    let published = read_all(&log, &topic, CLICKS).await?;
    ensure!(
        published.len() == CLICKS,
        "{} clicks on the topic",
        published.len()
    );
    let served = read_all(&log, &format!("{topic}.served"), CLICKS).await?;
    ensure!(
        served.len() == CLICKS,
        "{} served lists logged",
        served.len()
    );

    // The same clicks the validation data holds, each once.
    let (expected, _) = newsrec_data::events::load_validation_events(&model().data, Some(CLICKS))?;
    let mut want: HashMap<String, (String, i64)> = expected
        .iter()
        .map(|e| (e.event_id.to_string(), (e.page.to_string(), e.ts)))
        .collect();
    for m in &published {
        let c = click_of(m)?;
        let got = (c.page.to_string(), c.ts);
        ensure!(
            want.remove(c.event_id.as_str()) == Some(got),
            "unexpected or repeated click {}",
            c.event_id
        );
    }
    ensure!(want.is_empty(), "{} validation clicks missing", want.len());

    let served = by_user(served);
    let mut hits = 0;
    for (user, clicks) in by_user(published) {
        let lists = served.get(&user).map(Vec::as_slice).unwrap_or_default();
        hits += check_user(&user, &clicks, lists)?;
    }
    ensure!(
        hits == with_rec_id,
        "{hits} hits on the topic, {with_rec_id} reported"
    );
    store.cleanup().await;
    eprintln!(
        "{CLICKS} prequential clicks, {hits} with rec_id, checked in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_api_costs_clicks_only_their_rec_id() -> Result<()> {
    let topic = format!("preq-down-{}", random_suffix());
    // Nothing listens on this port: every request fails at once.
    let api = format!("http://127.0.0.1:{}", free_port()?);
    let (clicks, with_rec_id, errors) = replay_prequential(&model().data, &topic, &api, 40)?;
    ensure!(
        (clicks, with_rec_id, errors) == (40, 0, 40),
        "{clicks} clicks, {with_rec_id} with rec_id, {errors} errors"
    );
    let log = KafkaLog::new(KafkaConfig::new(brokers()))?;
    let published = read_all(&log, &topic, 40).await?;
    ensure!(
        published.len() == 40,
        "{} clicks on the topic",
        published.len()
    );
    for m in &published {
        ensure!(click_of(m)?.rec_id.is_none(), "a click carries a rec_id");
    }
    Ok(())
}
