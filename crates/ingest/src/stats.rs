//! Consumer counters and gauges, kept in atomics so the consumer loop never waits on an
//! exporter, and read out at one moment as a [`ConsumerSnapshot`], which the exporter
//! (`metrics`) renders as the `newsrec_consumer_*` Prometheus families.

use newsrec_features::Partition;
use newsrec_features::online::Counters;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Online counters per (tier, variant).
pub type ByTierVariant = BTreeMap<(String, String), Counters>;

/// A histogram read out: cumulative counts per upper bound, as Prometheus exposes them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistogramSnapshot {
    /// `(upper bound in seconds, observations <= bound)`, ascending; `+Inf` is `count`.
    pub buckets: Vec<(f64, u64)>,
    /// Sum of observations, seconds.
    pub sum: f64,
    /// Number of observations.
    pub count: u64,
}

/// Every consumer counter and gauge, read at one moment (consistent enough for metrics).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConsumerSnapshot {
    /// `newsrec_consumer_events_total{outcome="applied"}`: events applied to the store.
    pub events_applied: u64,
    /// `newsrec_consumer_events_total{outcome="duplicate"}`: events the store already
    /// held (replays).
    pub events_duplicate: u64,
    /// `newsrec_consumer_events_total{outcome="dead_letter"}`: messages set aside.
    pub events_dead_letter: u64,
    /// `newsrec_consumer_dead_letters_total{reason}`, every reason code listed.
    pub dead_letters: Vec<(&'static str, u64)>,
    /// `newsrec_consumer_batches_total`.
    pub batches: u64,
    /// `newsrec_consumer_batch_duration_seconds`.
    pub batch_duration: HistogramSnapshot,
    /// `newsrec_consumer_lag_messages{partition}`: messages behind the log end.
    pub lag: Vec<(Partition, i64)>,
    /// Latest event time applied, epoch ms: `newsrec_consumer_watermark_seconds` is this
    /// / 1000 and `newsrec_consumer_event_time_lag_seconds` the wall clock minus it.
    pub watermark_ms: Option<i64>,
    /// `newsrec_consumer_retries_total{target}` (`redis`, `kafka`).
    pub retries: Vec<(&'static str, u64)>,
    /// `newsrec_consumer_rebuilds_total`: partitions rebuilt from the start of the log
    /// after the store lost their state.
    pub rebuilds: u64,
    /// Online counters per (tier, variant), summed over the partitions attributed here.
    pub online: Vec<((String, String), Counters)>,
}

/// The reject reason codes, in a fixed order (`RejectReason::code` values).
pub const REJECT_CODES: [&str; 8] = [
    "oversized",
    "not_json",
    "missing_field",
    "wrong_type",
    "bad_id",
    "unknown_user_type",
    "absurd_timestamp",
    "bad_value",
];

/// Upper bounds (seconds) of the batch duration histogram buckets.
pub const BATCH_DURATION_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Where a retried operation went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryTarget {
    /// The feature store.
    Redis,
    /// The broker.
    Kafka,
}

impl RetryTarget {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            RetryTarget::Redis => "redis",
            RetryTarget::Kafka => "kafka",
        }
    }
}

/// Live counters of one consumer process.
#[derive(Debug)]
pub struct ConsumerStats {
    applied: AtomicU64,
    duplicate: AtomicU64,
    dead_letter: AtomicU64,
    dead_by_reason: [AtomicU64; REJECT_CODES.len()],
    batches: AtomicU64,
    /// Per bucket (not cumulative); the last slot counts durations above every bound.
    duration_buckets: [AtomicU64; BATCH_DURATION_BUCKETS.len() + 1],
    duration_sum_us: AtomicU64,
    retries_redis: AtomicU64,
    retries_kafka: AtomicU64,
    rebuilds: AtomicU64,
    /// Latest event time applied, epoch ms (`i64::MIN`: none yet).
    watermark_ms: AtomicI64,
    lag: Mutex<BTreeMap<Partition, i64>>,
    online: Mutex<BTreeMap<Partition, ByTierVariant>>,
}

impl Default for ConsumerStats {
    fn default() -> Self {
        Self {
            applied: AtomicU64::new(0),
            duplicate: AtomicU64::new(0),
            dead_letter: AtomicU64::new(0),
            dead_by_reason: Default::default(),
            batches: AtomicU64::new(0),
            duration_buckets: Default::default(),
            duration_sum_us: AtomicU64::new(0),
            retries_redis: AtomicU64::new(0),
            retries_kafka: AtomicU64::new(0),
            rebuilds: AtomicU64::new(0),
            watermark_ms: AtomicI64::new(i64::MIN),
            lag: Mutex::new(BTreeMap::new()),
            online: Mutex::new(BTreeMap::new()),
        }
    }
}

impl ConsumerStats {
    /// All zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts applied and duplicate events.
    pub fn record_events(&self, applied: u64, duplicate: u64) {
        self.applied.fetch_add(applied, Ordering::Relaxed);
        self.duplicate.fetch_add(duplicate, Ordering::Relaxed);
    }

    /// Counts one dead-lettered message.
    pub fn record_dead_letter(&self, code: &str) {
        self.dead_letter.fetch_add(1, Ordering::Relaxed);
        if let Some(i) = REJECT_CODES.iter().position(|c| *c == code) {
            self.dead_by_reason[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts one batch and its duration.
    pub fn record_batch(&self, took: Duration) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        let s = took.as_secs_f64();
        let i = BATCH_DURATION_BUCKETS
            .iter()
            .position(|b| s <= *b)
            .unwrap_or(BATCH_DURATION_BUCKETS.len());
        self.duration_buckets[i].fetch_add(1, Ordering::Relaxed);
        self.duration_sum_us.fetch_add(
            took.as_micros().min(u128::from(u64::MAX)) as u64,
            Ordering::Relaxed,
        );
    }

    /// Counts one retry.
    pub fn record_retry(&self, target: RetryTarget) {
        match target {
            RetryTarget::Redis => &self.retries_redis,
            RetryTarget::Kafka => &self.retries_kafka,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one partition rebuilt from the start of the log.
    pub fn record_rebuild(&self) {
        self.rebuilds.fetch_add(1, Ordering::Relaxed);
    }

    /// Raises the watermark to `ts` (never lowers it).
    pub fn observe_event_time(&self, ts: i64) {
        self.watermark_ms.fetch_max(ts, Ordering::Relaxed);
    }

    /// Replaces the per-partition lag (partitions not listed are dropped: no longer ours).
    pub fn set_lag(&self, lag: impl IntoIterator<Item = (Partition, i64)>) {
        let mut l = self.lag.lock().unwrap_or_else(|p| p.into_inner());
        *l = lag.into_iter().collect();
    }

    /// Replaces the online counters of `partition` (its committed attribution state).
    pub fn set_online(
        &self,
        partition: Partition,
        by_tier_variant: BTreeMap<(String, String), Counters>,
    ) {
        let mut o = self.online.lock().unwrap_or_else(|p| p.into_inner());
        o.insert(partition, by_tier_variant);
    }

    fn online_sum(&self) -> Vec<((String, String), Counters)> {
        let o = self.online.lock().unwrap_or_else(|p| p.into_inner());
        let mut sum: BTreeMap<(String, String), Counters> = BTreeMap::new();
        for part in o.values() {
            for (k, c) in part {
                sum.entry(k.clone()).or_default().add(c);
            }
        }
        sum.into_iter().collect()
    }

    /// Reads everything.
    pub fn snapshot(&self) -> ConsumerSnapshot {
        let mut cumulative = 0;
        let mut buckets = Vec::with_capacity(BATCH_DURATION_BUCKETS.len());
        for (b, c) in BATCH_DURATION_BUCKETS.iter().zip(&self.duration_buckets) {
            cumulative += c.load(Ordering::Relaxed);
            buckets.push((*b, cumulative));
        }
        let count = cumulative
            + self.duration_buckets[BATCH_DURATION_BUCKETS.len()].load(Ordering::Relaxed);
        let wm = self.watermark_ms.load(Ordering::Relaxed);
        ConsumerSnapshot {
            events_applied: self.applied.load(Ordering::Relaxed),
            events_duplicate: self.duplicate.load(Ordering::Relaxed),
            events_dead_letter: self.dead_letter.load(Ordering::Relaxed),
            dead_letters: REJECT_CODES
                .iter()
                .zip(&self.dead_by_reason)
                .map(|(c, n)| (*c, n.load(Ordering::Relaxed)))
                .collect(),
            batches: self.batches.load(Ordering::Relaxed),
            batch_duration: HistogramSnapshot {
                buckets,
                sum: self.duration_sum_us.load(Ordering::Relaxed) as f64 / 1e6,
                count,
            },
            lag: self
                .lag
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|(p, l)| (*p, *l))
                .collect(),
            watermark_ms: (wm != i64::MIN).then_some(wm),
            retries: vec![
                ("redis", self.retries_redis.load(Ordering::Relaxed)),
                ("kafka", self.retries_kafka.load(Ordering::Relaxed)),
            ],
            rebuilds: self.rebuilds.load(Ordering::Relaxed),
            online: self.online_sum(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use newsrec_core::{ClickEvent, RejectReason};

    #[test]
    fn reject_codes_cover_every_reason() {
        let samples = [
            RejectReason::Oversized(1),
            RejectReason::NotJson(String::new()),
            RejectReason::MissingField("x"),
            RejectReason::WrongType(String::new()),
            RejectReason::UnknownUserType(String::new()),
            RejectReason::AbsurdTimestamp(0),
            RejectReason::BadValue("x"),
        ];
        for r in samples {
            assert!(REJECT_CODES.contains(&r.code()), "{}", r.code());
        }
        let bad_id = ClickEvent::decode(br#"{"event_id":"a b"}"#).unwrap_err();
        assert!(REJECT_CODES.contains(&bad_id.code()));
    }

    #[test]
    fn histogram_is_cumulative() {
        let s = ConsumerStats::new();
        s.record_batch(Duration::from_micros(300));
        s.record_batch(Duration::from_millis(30));
        s.record_batch(Duration::from_secs(60));
        s.record_dead_letter("not_json");
        s.observe_event_time(5);
        s.observe_event_time(3);
        let snap = s.snapshot();
        assert_eq!(snap.batch_duration.count, 3);
        assert_eq!(snap.batch_duration.buckets[0], (0.0005, 1));
        assert_eq!(snap.batch_duration.buckets.last().map(|b| b.1), Some(2));
        assert_eq!(snap.events_dead_letter, 1);
        assert_eq!(snap.watermark_ms, Some(5));
        assert!(snap.dead_letters.contains(&("not_json", 1)));
    }
}
