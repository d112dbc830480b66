//! The consumer loop: reads click events from the log and applies them to the feature
//! store exactly once (the argument is in the `newsrec-features` crate doc).
//!
//! Each round polls up to `batch_max` messages, splits them by partition, sets invalid
//! ones aside in the dead-letter topic, and applies each partition's batch atomically
//! with its offsets. Offsets are never committed to the broker: on start and on every
//! rebalance the log positions partitions at the offsets the store holds.
//!
//! Rounds overlap by one step: while a round's batches are applied, the next round is
//! polled and decoded. What it keeps is decided only after the applied round has
//! settled (offsets the store holds, partitions sought), so the overlap changes
//! nothing applied.
//!
//! `config`: [`ConsumerConfig`], [`ConsumeError`] and [`ConsumeSummary`]; `catch_up`:
//! [`caught_up`], how a caller waits for the store to hold a log's end; `service`:
//! [`run_service`], the loop with its metrics exporter and shutdown, as `newsrec
//! consume` runs it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use newsrec_core::{ClickEvent, RejectReason, Retryable};
use newsrec_features::{
    ApplyOutcome, BatchEvent, FeatureStore, Offset, Partition, PartitionBatch, StoreError,
};
use tokio::sync::watch;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::eventlog::{Assignment, EventLog, LogConsumer, LogMessage, Positioner, Record};
use crate::stats::{ConsumerStats, RetryTarget};

mod catch_up;
mod config;
mod service;

pub use catch_up::{CatchUpError, caught_up};
pub use config::{Attribution, ConsumeError, ConsumeSummary, ConsumerConfig, DEFAULT_BATCH_MAX};
pub use service::run_service;

/// Builds the positioner that starts partitions at the store's offsets.
pub fn store_positioner(store: Arc<dyn FeatureStore>) -> Positioner {
    Arc::new(move |parts: &[Partition]| {
        store
            .next_offsets_blocking(parts)
            .map_err(|e| e.to_string())
    })
}

/// Retries `op` while it fails with a retryable error, with exponential backoff.
/// `Ok(None)`: shutdown was requested while waiting.
pub(crate) async fn retry<T, E, F, Fut>(
    what: &str,
    target: RetryTarget,
    cfg: &ConsumerConfig,
    stats: &ConsumerStats,
    shutdown: &mut watch::Receiver<bool>,
    mut op: F,
) -> Result<Option<T>, E>
where
    E: Retryable + std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut delay = cfg.retry_initial;
    loop {
        match op().await {
            Ok(v) => return Ok(Some(v)),
            Err(e) if e.is_retryable() => {
                stats.record_retry(target);
                warn!(what, error = %e, retry_in = ?delay, "transient failure, retrying");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.wait_for(|s| *s) => return Ok(None),
                }
                delay = (delay * 2).min(cfg.retry_max);
            }
            Err(e) => return Err(e),
        }
    }
}

fn dead_letter(topic: &str, m: &LogMessage, reason: &newsrec_core::RejectReason) -> Record {
    Record {
        key: m.key.clone(),
        partition: None,
        payload: m.payload.clone().unwrap_or_default(),
        headers: vec![
            ("reason".into(), reason.code().as_bytes().to_vec()),
            ("detail".into(), reason.to_string().into_bytes()),
            ("source.topic".into(), topic.as_bytes().to_vec()),
            (
                "source.partition".into(),
                m.partition.to_string().into_bytes(),
            ),
            ("source.offset".into(), m.offset.to_string().into_bytes()),
        ],
    }
}

/// One polled message, decoded.
struct Decoded {
    offset: Offset,
    /// The event, or why the message is invalid (with the message, for the dead-letter
    /// topic).
    event: Result<ClickEvent, (RejectReason, LogMessage)>,
}

/// A polled round, decoded, per partition in offset order: everything about it that
/// does not depend on how the previous round settles.
type Round = BTreeMap<Partition, Vec<Decoded>>;

fn decode_round(msgs: Vec<LogMessage>) -> Round {
    let mut round = Round::new();
    for m in msgs {
        let decoded = match &m.payload {
            Some(p) => ClickEvent::decode(p),
            None => Err(RejectReason::NotJson("empty message".into())),
        };
        round.entry(m.partition).or_default().push(Decoded {
            offset: m.offset,
            event: decoded.map_err(|reason| (reason, m)),
        });
    }
    round
}

/// One partition's part of a round, ready to apply.
struct Prepared {
    /// The batch (shared with the task that applies it).
    batch: Arc<PartitionBatch>,
    /// Reason codes of the messages set aside (counted once the batch is applied).
    codes: Vec<&'static str>,
    /// Latest event time in the batch.
    max_ts: Option<i64>,
}

/// Seeks `partition` if this member still owns it. The next round is polled while a
/// batch is applied, so a rebalance can take the partition away before its batch
/// settles; its new owner positions it from the offsets in the store.
async fn seek_owned(
    consumer: &mut dyn LogConsumer,
    partition: Partition,
    offset: Offset,
) -> Result<(), ConsumeError> {
    if consumer.assignment().partitions.contains(&partition) {
        consumer.seek(partition, offset).await?;
    }
    Ok(())
}

/// How one partition's apply settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settled {
    /// Applied; the log reads on from where the batch ended.
    Moved,
    /// The log was sought elsewhere: what was polled after the batch is stale.
    Sought,
    /// Shutdown interrupted the apply.
    Shutdown,
}

/// What preparing one partition's messages gave.
enum Prep {
    /// A batch to apply.
    Batch(Prepared),
    /// The store held every message already.
    Nothing,
    /// Shutdown interrupted it.
    Shutdown,
}

/// The consumer: state shared by the rounds of one run.
struct Loop<'a> {
    log: &'a dyn EventLog,
    store: &'a Arc<dyn FeatureStore>,
    cfg: &'a ConsumerConfig,
    stats: &'a ConsumerStats,
    shutdown: watch::Receiver<bool>,
    /// Next offset per owned partition, as known from the store; cleared on rebalance.
    expected: HashMap<Partition, Offset>,
    generation: u64,
}

impl Loop<'_> {
    /// Collects one round of messages and decodes them. `None`: shutdown.
    async fn collect_round(
        &self,
        consumer: &mut dyn LogConsumer,
    ) -> Result<Option<Round>, ConsumeError> {
        Ok(self.collect(consumer).await?.map(decode_round))
    }

    /// Collects one round of messages. `None`: shutdown.
    async fn collect(
        &self,
        consumer: &mut dyn LogConsumer,
    ) -> Result<Option<Vec<LogMessage>>, ConsumeError> {
        let (cfg, stats) = (self.cfg, self.stats);
        let batch_max = cfg.batch_max.max(1);
        let mut shutdown = self.shutdown.clone();
        let first = tokio::select! {
            r = consumer.poll(batch_max, cfg.poll_wait) => r,
            _ = shutdown.wait_for(|s| *s) => return Ok(None),
        };
        let mut msgs = match first {
            Ok(m) => m,
            Err(e) if e.is_retryable() => {
                stats.record_retry(RetryTarget::Kafka);
                warn!(error = %e, "poll failed, retrying");
                tokio::time::sleep(cfg.retry_initial).await;
                return Ok(Some(Vec::new()));
            }
            Err(e) => return Err(e.into()),
        };
        if msgs.is_empty() {
            return Ok(Some(msgs));
        }
        let until = Instant::now() + cfg.batch_linger;
        while msgs.len() < batch_max {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match consumer.poll(batch_max - msgs.len(), left).await {
                Ok(more) if more.is_empty() => break,
                Ok(more) => msgs.extend(more),
                Err(e) => {
                    debug!(error = %e, "poll failed while lingering; applying what we have");
                    break;
                }
            }
        }
        Ok(Some(msgs))
    }

    /// Turns one partition's decoded messages into the batch to apply: skips what the
    /// store already holds and delivers invalid messages to the dead-letter topic.
    async fn prepare(
        &mut self,
        partition: Partition,
        msgs: Vec<Decoded>,
    ) -> Result<Prep, ConsumeError> {
        let (cfg, stats, store, log) = (self.cfg, self.stats, self.store, self.log);
        let mut shutdown = self.shutdown.clone();
        let start = match self.expected.get(&partition) {
            Some(o) => *o,
            None => {
                let parts = [partition];
                let stored = retry(
                    "read offsets",
                    RetryTarget::Redis,
                    cfg,
                    stats,
                    &mut shutdown,
                    || store.next_offsets(&parts),
                )
                .await?;
                let Some(stored) = stored else {
                    return Ok(Prep::Shutdown);
                };
                match stored.first().copied().flatten() {
                    Some(o) => o,
                    None => msgs.first().map_or(Offset(0), |m| m.offset),
                }
            }
        };
        let before = msgs.len();
        let msgs: Vec<Decoded> = msgs.into_iter().filter(|m| m.offset >= start).collect();
        stats.record_events(0, (before - msgs.len()) as u64);
        let Some(last) = msgs.last().map(|m| m.offset) else {
            return Ok(Prep::Nothing);
        };

        let mut events = Vec::with_capacity(msgs.len());
        let mut dead = Vec::new();
        let mut codes = Vec::new();
        for m in msgs {
            match m.event {
                Ok(event) => events.push(BatchEvent {
                    offset: m.offset,
                    event,
                }),
                Err((reason, msg)) => {
                    codes.push(reason.code());
                    dead.push(dead_letter(&cfg.topic, &msg, &reason));
                }
            }
        }
        if !dead.is_empty() {
            let dlq = cfg.dead_letter_topic.as_str();
            // Delivered before the offsets move past them: a crash in between re-sends
            // them (at least once), never loses them.
            let sent = retry(
                "dead-letter",
                RetryTarget::Kafka,
                cfg,
                stats,
                &mut shutdown,
                || log.produce(dlq, dead.clone()),
            )
            .await?;
            if sent.is_none() {
                return Ok(Prep::Shutdown);
            }
        }

        let max_ts = events.iter().map(|e| e.event.ts).max();
        Ok(Prep::Batch(Prepared {
            batch: Arc::new(PartitionBatch {
                partition,
                start,
                end: last.next(),
                events,
            }),
            codes,
            max_ts,
        }))
    }

    /// Applies the prepared batches of one round, all partitions at once, each in a task
    /// of its own (each is atomic on its own, as with several consumers in a group).
    /// `None` for a partition: shutdown interrupted its retries.
    async fn apply_all(
        &self,
        prepared: &[Prepared],
    ) -> Vec<Result<Option<ApplyOutcome>, StoreError>> {
        let (cfg, stats, store) = (self.cfg, self.stats, self.store);
        let applies = prepared.iter().map(|p| {
            let mut shutdown = self.shutdown.clone();
            async move {
                retry(
                    "apply",
                    RetryTarget::Redis,
                    cfg,
                    stats,
                    &mut shutdown,
                    || {
                        let (store, batch) = (Arc::clone(store), Arc::clone(&p.batch));
                        // A task of its own, so partitions are worked out on every core.
                        async move {
                            tokio::spawn(async move { store.apply(&batch).await })
                                .await
                                .unwrap_or_else(|e| {
                                    Err(StoreError::InvalidBatch(format!("apply task: {e}")))
                                })
                        }
                    },
                )
                .await
            }
        });
        futures::future::join_all(applies).await
    }

    /// Records the outcome of one partition's apply and moves the partition on. `Ok`
    /// with `Settled::Shutdown` when shutdown interrupted it.
    async fn settle(
        &mut self,
        consumer: &mut dyn LogConsumer,
        prepared: Prepared,
        outcome: Result<Option<ApplyOutcome>, StoreError>,
    ) -> Result<Settled, ConsumeError> {
        let stats = self.stats;
        let Prepared {
            batch,
            codes,
            max_ts,
        } = prepared;
        let (partition, start) = (batch.partition, batch.start);
        match outcome {
            Ok(Some(o)) => {
                stats.record_events(o.applied as u64, o.duplicates as u64);
                for c in codes {
                    stats.record_dead_letter(c);
                }
                if let Some(ts) = max_ts {
                    stats.observe_event_time(ts);
                }
                self.expected.insert(partition, o.next_offset);
                if o.next_offset != batch.end {
                    // The store is ahead (another member applied more): continue from there.
                    seek_owned(consumer, partition, o.next_offset).await?;
                    return Ok(Settled::Sought);
                }
                Ok(Settled::Moved)
            }
            Ok(None) => Ok(Settled::Shutdown),
            Err(StoreError::OffsetGap { stored, .. }) => {
                warn!(
                    %partition,
                    %stored, %start, "store is behind this batch; seeking back"
                );
                seek_owned(consumer, partition, stored).await?;
                self.expected.insert(partition, stored);
                Ok(Settled::Sought)
            }
            Err(e @ StoreError::StoreLost { .. }) => {
                self.rebuild(consumer, partition, &e).await?;
                Ok(Settled::Sought)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// After the store lost `partition`'s state: forgets it (held and stored) and reads
    /// the partition again from the start of the log, so the state is rebuilt as a
    /// clean run would build it. The log must still hold the start.
    async fn rebuild(
        &mut self,
        consumer: &mut dyn LogConsumer,
        partition: Partition,
        lost: &StoreError,
    ) -> Result<(), ConsumeError> {
        let (cfg, stats, store, log) = (self.cfg, self.stats, self.store, self.log);
        tracing::error!(%partition, error = %lost, "rebuilding the partition from the start of the log");
        stats.record_rebuild();
        let mut shutdown = self.shutdown.clone();
        let Some(starts) = retry(
            "read log start",
            RetryTarget::Kafka,
            cfg,
            stats,
            &mut shutdown,
            || log.start_offsets(&cfg.topic),
        )
        .await?
        else {
            return Ok(());
        };
        let earliest = starts
            .iter()
            .find(|(p, _)| *p == partition)
            .map_or(Offset(0), |(_, low)| *low);
        if earliest > Offset(0) {
            return Err(ConsumeError::CannotRebuild {
                partition,
                earliest,
            });
        }
        if retry(
            "reset partition",
            RetryTarget::Redis,
            cfg,
            stats,
            &mut shutdown,
            || store.reset_partition(partition),
        )
        .await?
        .is_none()
        {
            return Ok(());
        }
        seek_owned(consumer, partition, Offset(0)).await?;
        self.expected.insert(partition, Offset(0));
        Ok(())
    }

    /// Rebuilds every owned partition whose stored offset fell below what this
    /// consumer saw committed (a store that lost its data is found this way even for a
    /// partition no event arrives on); returns the partitions rebuilt.
    async fn check_store(
        &mut self,
        consumer: &mut dyn LogConsumer,
    ) -> Result<Vec<Partition>, ConsumeError> {
        let parts: Vec<Partition> = self.expected.keys().copied().collect();
        let stored = match self.store.next_offsets(&parts).await {
            Ok(s) => s,
            Err(e) => {
                debug!(error = %e, "cannot read stored offsets to check the store");
                return Ok(Vec::new());
            }
        };
        let mut rebuilt = Vec::new();
        for (p, got) in parts.into_iter().zip(stored) {
            let seen = self.expected.get(&p).copied().unwrap_or_default();
            if seen > Offset(0) && got.is_none_or(|g| g < seen) {
                let lost = StoreError::StoreLost {
                    partition: p,
                    seen: Some(seen),
                    stored: got,
                    marker_missing: false,
                };
                self.rebuild(consumer, p, &lost).await?;
                rebuilt.push(p);
            }
        }
        Ok(rebuilt)
    }

    /// Follows a rebalance: forgets what it knew of partitions it may have lost.
    fn follow(&mut self, assignment: &Assignment) {
        if assignment.generation != self.generation {
            self.generation = assignment.generation;
            self.expected.clear();
            self.store.release_others(&assignment.partitions);
        }
    }

    /// Prepares and applies a non-empty round of the owned partitions, polling and
    /// decoding the next round meanwhile; returns it, or `Stop` on shutdown or the end
    /// of the log.
    async fn apply_round(
        &mut self,
        consumer: &mut dyn LogConsumer,
        round: Round,
        owned: &[Partition],
    ) -> Result<Flow, ConsumeError> {
        let t = Instant::now();
        let mut prepared = Vec::with_capacity(round.len());
        for (p, ms) in round {
            if !owned.contains(&p) {
                debug!(partition = %p, "dropping messages of a revoked partition");
                continue;
            }
            match self.prepare(p, ms).await? {
                Prep::Batch(batch) => prepared.push(batch),
                Prep::Nothing => {}
                Prep::Shutdown => return Ok(Flow::Stop),
            }
        }
        let this = &*self;
        let applying = async {
            let outcomes = this.apply_all(&prepared).await;
            (outcomes, t.elapsed())
        };
        // The next round is polled and decoded while this one is applied.
        let ((outcomes, took), next) = tokio::join!(applying, this.collect_round(&mut *consumer));
        self.stats.record_batch(took);
        let mut stale = Vec::new();
        let mut finished = true;
        for (p, outcome) in prepared.into_iter().zip(outcomes) {
            let partition = p.batch.partition;
            match self.settle(&mut *consumer, p, outcome).await? {
                Settled::Moved => {}
                // Polled before the seek: the log delivers those messages again.
                Settled::Sought => stale.push(partition),
                Settled::Shutdown => finished = false,
            }
        }
        if !finished {
            return Ok(Flow::Stop);
        }
        Ok(match next? {
            Some(mut r) => {
                for p in stale {
                    r.remove(&p);
                }
                Flow::Next(Some(r))
            }
            None => Flow::Stop,
        })
    }

    async fn refresh_lag(&self) {
        match self.log.end_offsets(&self.cfg.topic).await {
            Ok(ends) => {
                self.stats.set_lag(ends.into_iter().filter_map(|(p, high)| {
                    self.expected.get(&p).map(|o| (p, (high.0 - o.0).max(0)))
                }))
            }
            Err(e) => debug!(error = %e, "cannot read end offsets for lag"),
        }
    }
}

/// What the loop does after a round.
enum Flow {
    /// Go on, with the next round when it was polled meanwhile.
    Next(Option<Round>),
    /// Shutdown, or the end of the log.
    Stop,
}

/// Creates the topics when missing and joins the group, positioned from the store's
/// offsets; `None` on shutdown.
async fn subscribe(
    log: &Arc<dyn EventLog>,
    store: &Arc<dyn FeatureStore>,
    cfg: &ConsumerConfig,
    stats: &ConsumerStats,
    mut sd: watch::Receiver<bool>,
) -> Result<Option<Box<dyn LogConsumer>>, ConsumeError> {
    for t in [&cfg.topic, &cfg.dead_letter_topic] {
        let parts = if *t == cfg.topic { cfg.partitions } else { 1 };
        if retry(
            "create topic",
            RetryTarget::Kafka,
            cfg,
            stats,
            &mut sd,
            || log.ensure_topic(t, parts),
        )
        .await?
        .is_none()
        {
            return Ok(None);
        }
    }
    let positioner = store_positioner(Arc::clone(store));
    Ok(
        retry("subscribe", RetryTarget::Kafka, cfg, stats, &mut sd, || {
            log.subscribe(&cfg.topic, &cfg.group, Arc::clone(&positioner))
        })
        .await?,
    )
}

/// Runs the consumer until `shutdown` turns `true` (the round in progress is finished
/// or, if it is waiting on a retry, abandoned: nothing half-applied is ever visible).
pub async fn run(
    log: Arc<dyn EventLog>,
    store: Arc<dyn FeatureStore>,
    cfg: ConsumerConfig,
    stats: Arc<ConsumerStats>,
    shutdown: watch::Receiver<bool>,
) -> Result<ConsumeSummary, ConsumeError> {
    let span = info_span!("consume", topic = %cfg.topic, group = %cfg.group);
    async move {
        let Some(mut consumer) = subscribe(&log, &store, &cfg, &stats, shutdown.clone()).await?
        else {
            return Ok(ConsumeSummary::default());
        };
        info!("consuming");
        let start = stats.snapshot();
        let mut lp = Loop {
            log: log.as_ref(),
            store: &store,
            cfg: &cfg,
            stats: &stats,
            shutdown,
            expected: HashMap::new(),
            generation: 0,
        };
        let mut last_lag = Instant::now() - cfg.lag_interval;
        // The next round, polled and decoded while the current one was applied.
        let mut ahead: Option<Round> = None;
        loop {
            if *lp.shutdown.borrow() {
                break;
            }
            let round = match ahead.take() {
                Some(r) => r,
                None => match lp.collect_round(consumer.as_mut()).await? {
                    Some(r) => r,
                    None => break,
                },
            };
            let assignment = consumer.assignment();
            lp.follow(&assignment);
            if !round.is_empty() {
                match lp
                    .apply_round(consumer.as_mut(), round, &assignment.partitions)
                    .await?
                {
                    Flow::Next(next) => ahead = next,
                    Flow::Stop => break,
                }
            }
            if last_lag.elapsed() >= cfg.lag_interval {
                for p in lp.check_store(consumer.as_mut()).await? {
                    // Polled before the seek to the start.
                    if let Some(r) = ahead.as_mut() {
                        r.remove(&p);
                    }
                }
                lp.refresh_lag().await;
                last_lag = Instant::now();
            }
        }
        drop(consumer);
        let end = stats.snapshot();
        info!(
            applied = end.events_applied - start.events_applied,
            "consumer stopped"
        );
        Ok(ConsumeSummary {
            applied: end.events_applied - start.events_applied,
            duplicates: end.events_duplicate - start.events_duplicate,
            dead_letters: end.events_dead_letter - start.events_dead_letter,
            batches: end.batches - start.batches,
        })
    }
    .instrument(span)
    .await
}
