//! The consumer's statistics at one moment: what the consumer counts
//! (`newsrec_ingest::ConsumerStats`) and what its Prometheus exporter renders
//! (`newsrec_serve`), one shape shared by both.

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
    pub lag: Vec<(i32, i64)>,
    /// Latest event time applied, epoch ms: `newsrec_consumer_watermark_seconds` is this
    /// / 1000 and `newsrec_consumer_event_time_lag_seconds` the wall clock minus it.
    pub watermark_ms: Option<i64>,
    /// `newsrec_consumer_retries_total{target}` (`redis`, `kafka`).
    pub retries: Vec<(&'static str, u64)>,
    /// `newsrec_consumer_rebuilds_total`: partitions rebuilt from the start of the log
    /// after the store lost their state.
    pub rebuilds: u64,
}
