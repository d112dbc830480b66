//! The attribution consumer: reads the clicks topic and the served-list topic partition
//! by partition, attributes clicks to the lists that showed them, and keeps the online
//! counters in the store exactly once (the argument is in `newsrec_features::online`).
//!
//! It reads every partition of both topics outside any group, from the offsets the
//! store holds, and writes each partition's step with both offsets in one guarded
//! write. A write refused because the stored offsets moved (a store that lost its data,
//! or a second attribution consumer) makes it load the stored state again and read on
//! from there, so the state stays that of a clean run. Run it in one `consume` process
//! of a group (`[consume] attribution`); a second one is safe, only wasted work.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use newsrec_core::{ClickEvent, ServedRecord};
use newsrec_features::online::{AttrClick, ClickItem, OnlineConfig, OnlineState, ServedItem};
use newsrec_features::{FeatureStore, Offset, Partition};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::consumer::{Attribution, ConsumeError, ConsumerConfig};
use crate::eventlog::{EventLog, LogConsumer, LogMessage};
use crate::stats::{ConsumerStats, RetryTarget};

/// Most messages of one stream held in memory waiting for the other; above it that
/// stream is not polled until the merge has used some.
const BUFFER_MAX: usize = 500_000;

/// What the loop holds for one partition.
#[derive(Default)]
struct Part {
    state: OnlineState,
    clicks: VecDeque<(Offset, ClickItem)>,
    served: VecDeque<(Offset, ServedItem)>,
}

impl Part {
    /// Next offset expected from each stream (what is stored, plus what is buffered).
    fn expects(&self) -> (Offset, Offset) {
        let c = self
            .clicks
            .back()
            .map(|(o, _)| o.next())
            .or(self.state.clicks_next)
            .unwrap_or(Offset(0));
        let s = self
            .served
            .back()
            .map(|(o, _)| o.next())
            .or(self.state.served_next)
            .unwrap_or(Offset(0));
        (c, s)
    }
}

fn decode_click(m: &LogMessage) -> ClickItem {
    match m.payload.as_deref().map(ClickEvent::decode) {
        Some(Ok(e)) => ClickItem::Click(AttrClick {
            user: e.user_id,
            page: e.page,
            ts: e.ts,
            rec_id: e.rec_id,
        }),
        _ => ClickItem::Invalid,
    }
}

fn decode_served(m: &LogMessage) -> ServedItem {
    match m.payload.as_deref().map(ServedRecord::decode) {
        Some(Ok(ServedRecord::List(l))) => ServedItem::List(l),
        Some(Ok(ServedRecord::Tick { tick })) => ServedItem::Tick(tick),
        _ => ServedItem::Invalid,
    }
}

/// Why a run of the inner loop ended.
enum Ended {
    Shutdown,
    /// The stored state moved: load it again.
    Reload,
}

/// The attribution consumer's run over `cfg.topic` and the served topic of
/// `cfg.attribution` (nothing when that is `None`), until `shutdown`.
pub async fn run(
    log: Arc<dyn EventLog>,
    store: Arc<dyn FeatureStore>,
    cfg: ConsumerConfig,
    stats: Arc<ConsumerStats>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ConsumeError> {
    let Some(Attribution {
        served_topic,
        online,
    }) = cfg.attribution.clone()
    else {
        return Ok(());
    };
    let parts = match partitions(log.as_ref(), &cfg, &served_topic, &stats, &mut shutdown).await? {
        Some(p) => p,
        None => return Ok(()),
    };
    info!(clicks = %cfg.topic, served = %served_topic, partitions = parts.len(), "attributing clicks to served lists");
    let a = Attributor {
        log: log.as_ref(),
        store: store.as_ref(),
        cfg: &cfg,
        served_topic: &served_topic,
        online,
        stats: &stats,
    };
    loop {
        let Some(held) = a.load(&parts, &mut shutdown).await? else {
            return Ok(());
        };
        match a.follow(held, &mut shutdown).await? {
            Ended::Shutdown => return Ok(()),
            Ended::Reload => {
                warn!(
                    "the stored attribution state moved (store lost or a second writer); loading it again"
                );
                stats.record_rebuild();
            }
        }
    }
}

/// Creates both topics when missing and checks they have as many partitions; `None` on
/// shutdown.
async fn partitions(
    log: &dyn EventLog,
    cfg: &ConsumerConfig,
    served_topic: &str,
    stats: &ConsumerStats,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Option<Vec<Partition>>, ConsumeError> {
    let mut counts = Vec::new();
    for t in [cfg.topic.as_str(), served_topic] {
        let ends = crate::consumer::retry(
            "read topic",
            RetryTarget::Kafka,
            cfg,
            stats,
            shutdown,
            || async move {
                log.ensure_topic(t, cfg.partitions).await?;
                log.end_offsets(t).await
            },
        )
        .await?;
        let Some(ends) = ends else { return Ok(None) };
        counts.push(ends.into_iter().map(|(p, _)| p).collect::<Vec<_>>());
    }
    if counts[0].len() != counts[1].len() {
        return Err(ConsumeError::PartitionMismatch {
            clicks_topic: cfg.topic.clone(),
            clicks: counts[0].len(),
            served_topic: served_topic.to_owned(),
            served: counts[1].len(),
        });
    }
    Ok(counts.into_iter().next())
}

struct Attributor<'a> {
    log: &'a dyn EventLog,
    store: &'a dyn FeatureStore,
    cfg: &'a ConsumerConfig,
    served_topic: &'a str,
    online: OnlineConfig,
    stats: &'a ConsumerStats,
}

impl Attributor<'_> {
    /// Every partition's stored state; `None` on shutdown.
    async fn load(
        &self,
        parts: &[Partition],
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Option<BTreeMap<Partition, Part>>, ConsumeError> {
        let mut held = BTreeMap::new();
        for p in parts {
            let st = crate::consumer::retry(
                "load attribution state",
                RetryTarget::Redis,
                self.cfg,
                self.stats,
                shutdown,
                || self.store.load_online(*p),
            )
            .await?;
            let Some(state) = st else { return Ok(None) };
            self.stats.set_online(*p, state.by_tier_variant());
            held.insert(
                *p,
                Part {
                    state,
                    ..Part::default()
                },
            );
        }
        Ok(Some(held))
    }

    /// Reads both topics from the held offsets and applies what the merge decides,
    /// until shutdown or a refused write.
    async fn follow(
        &self,
        mut held: BTreeMap<Partition, Part>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Ended, ConsumeError> {
        let starts = |f: fn(&OnlineState) -> Option<Offset>| -> Vec<(Partition, Option<Offset>)> {
            held.iter().map(|(p, h)| (*p, f(&h.state))).collect()
        };
        let mut clicks = self
            .log
            .assign(&self.cfg.topic, &starts(|s| s.clicks_next))
            .await?;
        let mut served = self
            .log
            .assign(self.served_topic, &starts(|s| s.served_next))
            .await?;
        let wait = self
            .cfg
            .batch_linger
            .max(std::time::Duration::from_millis(50));
        loop {
            if *shutdown.borrow() {
                return Ok(Ended::Shutdown);
            }
            let buffered = |f: fn(&Part) -> usize| held.values().map(f).sum::<usize>();
            let poll_clicks = buffered(|p| p.clicks.len()) < BUFFER_MAX;
            let poll_served = buffered(|p| p.served.len()) < BUFFER_MAX;
            let max = self.cfg.batch_max.max(1);
            let (c, s) = tokio::select! {
                r = async {
                    tokio::join!(
                        poll(clicks.as_mut(), poll_clicks, max, wait),
                        poll(served.as_mut(), poll_served, max, wait)
                    )
                } => r,
                _ = shutdown.wait_for(|s| *s) => return Ok(Ended::Shutdown),
            };
            let (c, s) = (c?, s?);
            if c.is_empty() && s.is_empty() {
                continue;
            }
            buffer(&mut held, c, s);
            for (p, part) in &mut held {
                if !self.step(*p, part, shutdown).await? {
                    return Ok(Ended::Reload);
                }
            }
        }
    }

    /// Applies what the merge of one partition's buffers decides and stores it; `false`
    /// when the store refused (its offsets moved).
    async fn step(
        &self,
        p: Partition,
        part: &mut Part,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<bool, ConsumeError> {
        if part.clicks.is_empty() && part.served.is_empty() {
            return Ok(true);
        }
        let expected = part.state.next();
        let step = part.state.step(
            part.clicks.make_contiguous(),
            part.served.make_contiguous(),
            &self.online,
        );
        if !step.moved() {
            return Ok(true);
        }
        let (state, store) = (&part.state, self.store);
        let written = crate::consumer::retry(
            "commit attribution",
            RetryTarget::Redis,
            self.cfg,
            self.stats,
            shutdown,
            || store.commit_online(p, expected, state, &step),
        )
        .await?;
        match written {
            Some(true) => {
                part.clicks.drain(..step.clicks_used);
                part.served.drain(..step.served_used);
                self.stats.set_online(p, part.state.by_tier_variant());
                Ok(true)
            }
            // Refused, or shutdown before it was known: what is held is not stored.
            Some(false) | None => Ok(false),
        }
    }
}

/// Polls `c` when `go`, else waits as a poll would.
async fn poll(
    c: &mut dyn LogConsumer,
    go: bool,
    max: usize,
    wait: std::time::Duration,
) -> Result<Vec<LogMessage>, ConsumeError> {
    if !go {
        tokio::time::sleep(wait).await;
        return Ok(Vec::new());
    }
    match c.poll(max, wait).await {
        Ok(m) => Ok(m),
        Err(e) if newsrec_core::Retryable::is_retryable(&e) => {
            warn!(error = %e, "attribution poll failed, retrying");
            Ok(Vec::new())
        }
        Err(e) => Err(e.into()),
    }
}

/// Adds polled messages to their partitions' buffers, in offset order, skipping what is
/// already held.
fn buffer(held: &mut BTreeMap<Partition, Part>, clicks: Vec<LogMessage>, served: Vec<LogMessage>) {
    for m in clicks {
        if let Some(part) = held.get_mut(&m.partition)
            && m.offset >= part.expects().0
        {
            part.clicks.push_back((m.offset, decode_click(&m)));
        }
    }
    for m in served {
        if let Some(part) = held.get_mut(&m.partition)
            && m.offset >= part.expects().1
        {
            part.served.push_back((m.offset, decode_served(&m)));
        }
    }
}
