//! The replay producer: publishes click events (read from the refined data by
//! `newsrec_data::events`, or generated), in event-time order, keyed by user id, as fast
//! as possible or paced at N× real time.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use newsrec_core::{ClickEvent, EventId, PageId, UserId, UserType};
use tracing::{info, info_span};

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

impl std::fmt::Display for Speed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Speed::Max => f.write_str("max"),
            Speed::Factor(x) => write!(f, "{x}"),
        }
    }
}

/// In settings, `"max"` or a factor (`1000`, or `"1000x"`).
impl serde::Serialize for Speed {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Speed::Max => s.serialize_str("max"),
            Speed::Factor(x) => s.serialize_f64(*x),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Speed {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Number(f64),
            Text(String),
        }
        let text = match Repr::deserialize(d)? {
            Repr::Number(x) => x.to_string(),
            Repr::Text(s) => s,
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Replay settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayConfig {
    /// Topic to publish to.
    pub topic: String,
    /// Pace.
    pub speed: Speed,
    /// Partitions when the topic has to be created.
    pub partitions: i32,
    /// Events per produce call (each call waits for its deliveries).
    pub chunk: usize,
}

impl ReplayConfig {
    /// Defaults: max speed, 4 partitions.
    pub fn new(topic: impl Into<String>) -> Self {
        Self {
            topic: topic.into(),
            speed: Speed::Max,
            partitions: 4,
            chunk: 20_000,
        }
    }
}

/// What a replay did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplaySummary {
    /// Events published.
    pub events: u64,
    /// Time spent publishing.
    pub elapsed: Duration,
}

impl ReplaySummary {
    /// Publishing rate.
    pub fn events_per_sec(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
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
        let event_id = EventId::replayed(&user, *k);
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
            rec_id: None,
        });
    }
    out
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

/// `newsrec replay`: creates the topic when missing and publishes `events` (in
/// event-time order), with a progress bar.
pub async fn replay(
    log: &dyn EventLog,
    events: &[ClickEvent],
    cfg: &ReplayConfig,
) -> Result<ReplaySummary, LogError> {
    let span = info_span!("replay", topic = %cfg.topic);
    let _guard = span.enter();
    log.ensure_topic(&cfg.topic, cfg.partitions).await?;
    let pb = progress_bar(events.len() as u64);
    let elapsed = publish(log, &cfg.topic, events, cfg.speed, cfg.chunk.max(1), &pb).await?;
    pb.finish();
    let summary = ReplaySummary {
        events: events.len() as u64,
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
}
