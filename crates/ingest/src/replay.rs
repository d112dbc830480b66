//! The replay producer: publishes refined interactions as click events, in event-time
//! order, keyed by user id, as fast as possible or paced at N× real time.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use newsrec_core::refined::{INTERACTIONS_FILE, col};
use newsrec_core::{ClickEvent, EventId, PageId, UserId, UserType};
use polars::prelude::*;
use tracing::{info, info_span, warn};

use crate::eventlog::{EventLog, LogError, Record};

/// How fast to replay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    /// As fast as the broker takes it.
    Max,
    /// This many times real time (by event time).
    Factor(f64),
}

impl std::str::FromStr for Speed {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("max") {
            return Ok(Speed::Max);
        }
        match s.trim_end_matches(['x', 'X']).parse::<f64>() {
            Ok(f) if f.is_finite() && f > 0.0 => Ok(Speed::Factor(f)),
            _ => Err(format!(
                "speed `{s}` is neither `max` nor a positive number"
            )),
        }
    }
}

/// Replay settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayConfig {
    /// The refined data directory (holding `interactions.parquet`).
    pub data_dir: PathBuf,
    /// Topic to publish to.
    pub topic: String,
    /// Pace.
    pub speed: Speed,
    /// Publish only the first N events (in event-time order).
    pub limit: Option<usize>,
    /// Partitions when the topic has to be created.
    pub partitions: i32,
    /// Events per produce call (each call waits for its deliveries).
    pub chunk: usize,
}

impl ReplayConfig {
    /// Defaults: max speed, no limit, 4 partitions.
    pub fn new(data_dir: impl Into<PathBuf>, topic: impl Into<String>) -> Self {
        Self {
            data_dir: data_dir.into(),
            topic: topic.into(),
            speed: Speed::Max,
            limit: None,
            partitions: 4,
            chunk: 20_000,
        }
    }
}

/// Why a replay failed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The interactions file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: PolarsError,
    },
    /// Publishing failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The reading task died.
    #[error("reader task: {0}")]
    Task(String),
}

/// What a replay did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplaySummary {
    /// Events published.
    pub events: u64,
    /// Rows skipped because an id did not parse.
    pub skipped: u64,
    /// Time spent publishing.
    pub elapsed: Duration,
}

impl ReplaySummary {
    /// Publishing rate.
    pub fn events_per_sec(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// The replay's event id for a user's `n`-th interaction (0-based, event-time order):
/// the same input gives the same ids, so a re-run is recognisable downstream.
pub fn replay_event_id(user: &UserId, n: u64) -> EventId {
    let h = user
        .as_str()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    // Hex digits and a counter always make a valid id.
    EventId::parse(&format!("r{h:016x}-{n}")).unwrap_or_else(|_| unreachable!())
}

fn read_err(path: &Path) -> impl Fn(PolarsError) -> ReplayError + '_ {
    move |source| ReplayError::Read {
        path: path.to_owned(),
        source,
    }
}

/// Reads `interactions.parquet` into click events, sorted by event time (stable, so the
/// file's order breaks ties), with replay event ids. Returns the events and the number
/// of rows skipped.
pub fn load_events(
    data_dir: &Path,
    limit: Option<usize>,
) -> Result<(Vec<ClickEvent>, u64), ReplayError> {
    let path = data_dir.join(INTERACTIONS_FILE);
    let err = read_err(&path);
    let file = std::fs::File::open(&path).map_err(|e| err(PolarsError::from(e)))?;
    let cols = [
        col::USER_ID,
        col::USER_TYPE,
        col::PAGE,
        col::TS,
        col::CLICKS,
        col::TIME_ON_PAGE_MS,
        col::SCROLL_PCT,
        col::PAGE_VISITS,
    ];
    let mut df = ParquetReader::new(file)
        .with_columns(Some(cols.iter().map(|c| c.to_string()).collect()))
        .finish()
        .map_err(&err)?;
    if let Some(n) = limit {
        // The file is sorted by ts; sort anyway so a limit always takes the earliest.
        df = df
            .sort(
                [col::TS],
                SortMultipleOptions::default().with_maintain_order(true),
            )
            .map_err(&err)?
            .head(Some(n));
    }
    let int = |name: &str| -> Result<Column, ReplayError> {
        df.column(name)
            .and_then(|c| c.cast(&DataType::Int64))
            .map_err(&err)
    };
    let users = df
        .column(col::USER_ID)
        .and_then(|c| c.str().cloned())
        .map_err(&err)?;
    let types = df
        .column(col::USER_TYPE)
        .and_then(|c| c.str().cloned())
        .map_err(&err)?;
    let pages = df
        .column(col::PAGE)
        .and_then(|c| c.str().cloned())
        .map_err(&err)?;
    let (ts, clicks, top, visits) = (
        int(col::TS)?,
        int(col::CLICKS)?,
        int(col::TIME_ON_PAGE_MS)?,
        int(col::PAGE_VISITS)?,
    );
    let scroll = df
        .column(col::SCROLL_PCT)
        .and_then(|c| c.cast(&DataType::Float64))
        .map_err(&err)?;
    let (ts, clicks, top, visits, scroll) = (
        ts.i64().map_err(&err)?,
        clicks.i64().map_err(&err)?,
        top.i64().map_err(&err)?,
        visits.i64().map_err(&err)?,
        scroll.f64().map_err(&err)?,
    );

    let mut rows: Vec<(i64, usize)> = ts
        .iter()
        .enumerate()
        .filter_map(|(i, t)| t.map(|t| (t, i)))
        .collect();
    rows.sort_by_key(|r| *r);
    let mut seen: HashMap<UserId, u64> = HashMap::new();
    let mut events = Vec::with_capacity(rows.len());
    let mut skipped = 0u64;
    for (t, i) in rows {
        let (Some(u), Some(ty), Some(p)) = (users.get(i), types.get(i), pages.get(i)) else {
            skipped += 1;
            continue;
        };
        let (Ok(user), Some(user_type), Ok(page)) =
            (UserId::parse(u), UserType::parse(ty), PageId::parse(p))
        else {
            skipped += 1;
            continue;
        };
        let n = seen.entry(user.clone()).or_default();
        let event_id = replay_event_id(&user, *n);
        *n += 1;
        events.push(ClickEvent {
            event_id,
            user_id: user,
            user_type,
            page,
            ts: t,
            session_id: None,
            clicks: clicks
                .get(i)
                .map(|v| v.clamp(0, i64::from(u32::MAX)) as u32),
            time_on_page_ms: top.get(i).map(|v| v.max(0) as u64),
            scroll_pct: scroll.get(i).filter(|s| s.is_finite() && *s >= 0.0),
            page_visits: visits
                .get(i)
                .map(|v| v.clamp(0, i64::from(u32::MAX)) as u32),
        });
    }
    if skipped > 0 {
        warn!(skipped, "rows with unparseable ids skipped");
    }
    Ok((events, skipped))
}

/// Click events with G1-like skew, for benchmarks and tests that need many events
/// without a data directory: `n` events over `users` users and `pages` pages, in event-time
/// order from `start_ts`, on average `mean_gap_ms` apart. Reader activity and page
/// popularity are heavy-tailed, new pages keep appearing, a fifth of users are `Logged`.
pub fn synthetic_events(
    n: usize,
    users: usize,
    pages: usize,
    start_ts: i64,
    mean_gap_ms: i64,
    seed: u64,
) -> Vec<ClickEvent> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (users, pages) = (users.max(1), pages.max(1));
    let mut per_user: HashMap<usize, u64> = HashMap::new();
    let mut ts = start_ts;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        ts += rng.random_range(0..=2 * mean_gap_ms.max(0));
        // u³ piles the mass on low indexes: a few very active readers and hit pages.
        let u = ((rng.random::<f64>().powi(3)) * users as f64) as usize % users;
        // Pages drift: the hot set moves forward as the stream goes on.
        let fresh = (i * pages / n.max(1)) as f64;
        let p =
            (fresh - rng.random::<f64>().powi(3) * pages as f64 * 0.2).max(0.0) as usize % pages;
        let user = UserId::parse(&format!("u{u:06}")).unwrap_or_else(|_| unreachable!());
        let k = per_user.entry(u).or_default();
        let event_id = replay_event_id(&user, *k);
        *k += 1;
        out.push(ClickEvent {
            event_id,
            user_type: if u.is_multiple_of(5) {
                UserType::Logged
            } else {
                UserType::NonLogged
            },
            user_id: user,
            page: PageId::parse(&format!("p{p:06}")).unwrap_or_else(|_| unreachable!()),
            ts,
            session_id: None,
            clicks: Some(rng.random_range(0..40)),
            time_on_page_ms: Some(rng.random_range(5_000..600_000)),
            scroll_pct: Some(rng.random_range(0.0..100.0)),
            page_visits: Some(rng.random_range(1..3)),
        });
    }
    out
}

/// Publication times from `items.parquet` (pages without one are left out), for the
/// feature store's item recency.
pub fn load_issued(data_dir: &Path) -> Result<Vec<(PageId, i64)>, ReplayError> {
    let path = data_dir.join(newsrec_core::refined::ITEMS_FILE);
    let err = read_err(&path);
    let file = std::fs::File::open(&path).map_err(|e| err(PolarsError::from(e)))?;
    let df = ParquetReader::new(file)
        .with_columns(Some(vec![col::PAGE.to_string(), col::ISSUED.to_string()]))
        .finish()
        .map_err(&err)?;
    let pages = df
        .column(col::PAGE)
        .and_then(|c| c.str().cloned())
        .map_err(&err)?;
    let issued = df
        .column(col::ISSUED)
        .and_then(|c| c.cast(&DataType::Int64))
        .map_err(&err)?;
    let issued = issued.i64().map_err(&err)?;
    Ok(pages
        .iter()
        .zip(issued.iter())
        .filter_map(|(p, t)| Some((PageId::parse(p?).ok()?, t?)))
        .collect())
}

/// The record of one event: JSON value, keyed by user id.
pub fn event_record(e: &ClickEvent) -> Record {
    Record::new(e.user_id.as_str().as_bytes().to_vec(), e.encode())
}

/// Publishes `events` (already in event-time order) to `topic`.
pub async fn publish(
    log: &dyn EventLog,
    topic: &str,
    events: &[ClickEvent],
    speed: Speed,
    chunk: usize,
    progress: &ProgressBar,
) -> Result<Duration, LogError> {
    let started = Instant::now();
    let t0 = events.first().map_or(0, |e| e.ts);
    let mut pending: Vec<Record> = Vec::with_capacity(chunk);
    for e in events {
        if let Speed::Factor(f) = speed {
            let due = started + Duration::from_secs_f64(((e.ts - t0).max(0) as f64 / 1000.0) / f);
            let now = Instant::now();
            if due > now + Duration::from_millis(5) {
                flush(log, topic, &mut pending, progress).await?;
                tokio::time::sleep_until(due.into()).await;
            }
        }
        pending.push(event_record(e));
        if pending.len() >= chunk {
            flush(log, topic, &mut pending, progress).await?;
        }
    }
    flush(log, topic, &mut pending, progress).await?;
    Ok(started.elapsed())
}

async fn flush(
    log: &dyn EventLog,
    topic: &str,
    pending: &mut Vec<Record>,
    progress: &ProgressBar,
) -> Result<(), LogError> {
    if pending.is_empty() {
        return Ok(());
    }
    let n = pending.len() as u64;
    log.produce(topic, std::mem::take(pending)).await?;
    progress.inc(n);
    Ok(())
}

/// A progress bar with events/s on a terminal, hidden otherwise.
pub fn progress_bar(total: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "{elapsed_precise} [{bar:40}] {human_pos}/{human_len} events, {per_sec}, eta {eta}",
    ) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb
}

/// `newsrec replay`: loads the interactions, creates the topic when missing, publishes.
pub async fn replay(log: &dyn EventLog, cfg: &ReplayConfig) -> Result<ReplaySummary, ReplayError> {
    let span = info_span!("replay", topic = %cfg.topic);
    let _guard = span.enter();
    let dir = cfg.data_dir.clone();
    let limit = cfg.limit;
    let (events, skipped) = tokio::task::spawn_blocking(move || load_events(&dir, limit))
        .await
        .map_err(|e| ReplayError::Task(e.to_string()))??;
    info!(events = events.len(), "loaded interactions");
    log.ensure_topic(&cfg.topic, cfg.partitions).await?;
    let pb = progress_bar(events.len() as u64);
    let elapsed = publish(log, &cfg.topic, &events, cfg.speed, cfg.chunk.max(1), &pb).await?;
    pb.finish();
    let summary = ReplaySummary {
        events: events.len() as u64,
        skipped,
        elapsed,
    };
    info!(
        events = summary.events,
        per_sec = summary.events_per_sec() as u64,
        "replay done"
    );
    Ok(summary)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn speeds_parse() {
        assert_eq!("max".parse::<Speed>(), Ok(Speed::Max));
        assert_eq!("1000".parse::<Speed>(), Ok(Speed::Factor(1000.0)));
        assert_eq!("60x".parse::<Speed>(), Ok(Speed::Factor(60.0)));
        assert!("0".parse::<Speed>().is_err());
        assert!("fast".parse::<Speed>().is_err());
    }

    #[test]
    fn event_ids_are_deterministic_and_valid() {
        let u = UserId::parse(&"f".repeat(128)).unwrap();
        assert_eq!(replay_event_id(&u, 3), replay_event_id(&u, 3));
        assert_ne!(replay_event_id(&u, 3), replay_event_id(&u, 4));
    }
}
