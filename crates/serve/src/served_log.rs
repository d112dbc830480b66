//! The served-list log: every list the API answers with gets a [`RecId`], and is
//! published off the request path, so clicks can later be attributed to the list that
//! showed the page.
//!
//! Handlers hand a [`ServedList`] to [`ServedLog::record`], which never waits: the list
//! goes into a bounded buffer, or is counted as dropped when the buffer is full
//! (`newsrec_served_log_dropped_total`). One background task drains the buffer in
//! batches into a [`ServedSink`] (the binary's Kafka producer, or the demo's
//! in-process log); a batch the sink does not take in time is dropped and counted too.
//! The task runs on a thread and runtime of its own, so encoding and producing never
//! take a turn of the threads that answer requests. A slow or absent broker therefore
//! costs the API nothing but the lists it could not log.

use std::sync::Arc;
use std::time::Duration;

use newsrec_core::RecId;
pub use newsrec_core::{CONTROL, ServedList};
use prometheus::{IntCounter, Registry};
use rand::Rng;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::sink::PublishFuture;

/// Most lists one publish call carries.
const BATCH_MAX: usize = 1_000;

/// What the served-list log has done: `newsrec_served_log_published_total` and
/// `newsrec_served_log_dropped_total`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServedLogCounts {
    /// Lists published.
    pub published: u64,
    /// Lists dropped (buffer full, or a batch the sink did not take in time).
    pub dropped: u64,
}

/// How long one batch may take to publish before it is dropped.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(3);

/// A new random list id: 32 hex digits (128 random bits).
pub fn new_rec_id() -> RecId {
    let bits: u128 = rand::rng().random();
    // 32 hex digits always satisfy the id rules.
    RecId::parse(&format!("{bits:032x}")).unwrap_or_else(|_| unreachable!())
}

/// Where served lists go, in batches; resolves once the log has taken them.
pub trait ServedSink: Send + Sync + 'static {
    /// Publishes a batch of lists.
    fn publish(&self, lists: Vec<ServedList>) -> PublishFuture<'_>;

    /// Publishes a watermark mark to every partition of the log (see
    /// [`newsrec_core::ServedRecord::Tick`]); a sink without partitions takes none.
    fn tick(&self, watermark: i64) -> PublishFuture<'_> {
        let _ = watermark;
        Box::pin(async { Ok(()) })
    }

    /// Where the lists go, for the start-up line (secrets masked).
    fn describe(&self) -> String;
}

/// What waits in the buffer.
enum Entry {
    List(ServedList),
    /// A watermark mark, published after the lists queued before it.
    Tick(i64),
}

/// The counters of the log.
#[derive(Clone)]
struct Counters {
    published: IntCounter,
    dropped: IntCounter,
}

/// The handle handlers record lists with; see the module docs.
pub struct ServedLog {
    tx: mpsc::Sender<Entry>,
    counters: Counters,
    describe: String,
}

impl ServedLog {
    /// Starts the log's drain task into `sink`, with room for `capacity` lists waiting,
    /// and registers its counters in `registry`.
    pub fn start(
        sink: Arc<dyn ServedSink>,
        capacity: usize,
        registry: &Registry,
    ) -> Result<(Self, JoinHandle<()>), crate::ServeError> {
        let counters = Counters {
            published: IntCounter::new(
                "newsrec_served_log_published_total",
                "Served lists published to the served-list log",
            )?,
            dropped: IntCounter::new(
                "newsrec_served_log_dropped_total",
                "Served lists not logged: the buffer was full or the log did not take them in time",
            )?,
        };
        registry.register(Box::new(counters.published.clone()))?;
        registry.register(Box::new(counters.dropped.clone()))?;
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let describe = sink.describe();
        let task = spawn_drain(rx, sink, counters.clone())?;
        Ok((
            Self {
                tx,
                counters,
                describe,
            },
            task,
        ))
    }

    /// Queues `list` for the log, or counts it as dropped; never waits.
    pub fn record(&self, list: ServedList) {
        if self.tx.try_send(Entry::List(list)).is_err() {
            self.counters.dropped.inc();
        }
    }

    /// Queues a watermark mark (the snapshot refresher sends one about once a second);
    /// a full buffer skips it, as the next one says more.
    pub fn tick(&self, watermark: i64) {
        let _ = self.tx.try_send(Entry::Tick(watermark));
    }

    /// Lists published and dropped so far.
    pub fn counts(&self) -> ServedLogCounts {
        ServedLogCounts {
            published: self.counters.published.get(),
            dropped: self.counters.dropped.get(),
        }
    }

    /// Where the lists go, for the start-up line.
    pub fn describe(&self) -> &str {
        &self.describe
    }
}

/// Runs [`drain`] on a thread of its own with a single-threaded runtime; the handle
/// resolves when it has published what was queued once every sender is gone.
fn spawn_drain(
    rx: mpsc::Receiver<Entry>,
    sink: Arc<dyn ServedSink>,
    c: Counters,
) -> Result<JoinHandle<()>, std::io::Error> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("served-log".into())
        .spawn(move || {
            rt.block_on(drain(rx, sink, c));
            let _ = done_tx.send(());
        })?;
    Ok(tokio::spawn(async move {
        let _ = done_rx.await;
    }))
}

/// Publishes what arrives, in batches of what is waiting, until every sender is gone.
async fn drain(mut rx: mpsc::Receiver<Entry>, sink: Arc<dyn ServedSink>, c: Counters) {
    let mut warned = false;
    while let Some(first) = rx.recv().await {
        let mut batch = Vec::new();
        let mut tick = None;
        let mut next = Some(first);
        while let Some(entry) = next.take() {
            match entry {
                Entry::List(l) => batch.push(l),
                Entry::Tick(wm) => {
                    tick = Some(wm);
                    break;
                }
            }
            if batch.len() < BATCH_MAX {
                next = rx.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            let n = batch.len() as u64;
            let outcome = tokio::time::timeout(PUBLISH_TIMEOUT, sink.publish(batch)).await;
            settle(outcome, n, &c, &mut warned);
        }
        if let Some(wm) = tick
            && let Ok(Err(e)) = tokio::time::timeout(PUBLISH_TIMEOUT, sink.tick(wm)).await
        {
            tracing::debug!(error = %e, "served-list log: watermark mark not published");
        }
    }
}

/// Counts a published batch of `n` lists, or the lists dropped; warns once per outage.
fn settle(
    outcome: Result<Result<(), crate::sink::SinkError>, tokio::time::error::Elapsed>,
    n: u64,
    c: &Counters,
    warned: &mut bool,
) {
    match outcome {
        Ok(Ok(())) => {
            c.published.inc_by(n);
            if *warned {
                tracing::info!("served-list log publishing again");
                *warned = false;
            }
        }
        outcome => {
            c.dropped.inc_by(n);
            if !*warned {
                let why = match outcome {
                    Ok(Err(e)) => e.to_string(),
                    _ => format!("no acknowledgement within {PUBLISH_TIMEOUT:?}"),
                };
                tracing::warn!(error = %why, lists = n, "served lists dropped; the API keeps answering");
                *warned = true;
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Mutex;

    use newsrec_core::{PageId, Tier, UserId};

    use super::*;
    use crate::sink::SinkError;

    fn list(user: &str) -> ServedList {
        ServedList {
            rec_id: new_rec_id(),
            user_id: Some(UserId::parse(user).unwrap()),
            page: None,
            event_ts: Some(1_660_000_000_000),
            wall_ts: 1_700_000_000_000,
            tier: Some(Tier::Logged),
            variant: CONTROL.into(),
            model_version: "v1".into(),
            pages: vec![PageId::parse("a").unwrap(), PageId::parse("b").unwrap()],
        }
    }

    /// Takes everything, or refuses everything.
    struct Collect {
        got: Mutex<Vec<ServedList>>,
        refuse: bool,
    }

    impl ServedSink for Collect {
        fn publish(&self, lists: Vec<ServedList>) -> PublishFuture<'_> {
            Box::pin(async move {
                if self.refuse {
                    return Err(SinkError::Unavailable("down".into()));
                }
                self.got.lock().unwrap().extend(lists);
                Ok(())
            })
        }

        fn describe(&self) -> String {
            "test".into()
        }
    }

    #[test]
    fn ids_are_distinct_and_valid() {
        let a = new_rec_id();
        assert_eq!(a.as_str().len(), 32);
        assert_ne!(a, new_rec_id());
        let json = serde_json::to_value(list("u1")).unwrap();
        assert_eq!(json["tier"], "logged");
        assert_eq!(json["pages"], serde_json::json!(["a", "b"]));
        assert!(json.get("page").is_none());
    }

    #[tokio::test]
    async fn lists_reach_the_sink_and_failures_are_counted() {
        let sink = Arc::new(Collect {
            got: Mutex::new(Vec::new()),
            refuse: false,
        });
        let registry = Registry::new();
        let (log, task) = ServedLog::start(sink.clone(), 100, &registry).unwrap();
        let sent: Vec<ServedList> = (0..50).map(|i| list(&format!("u{i}"))).collect();
        for l in &sent {
            log.record(l.clone());
        }
        let published = log.counters.published.clone();
        drop(log);
        task.await.unwrap();
        assert_eq!(*sink.got.lock().unwrap(), sent);
        assert_eq!(published.get(), 50);

        let down = Arc::new(Collect {
            got: Mutex::new(Vec::new()),
            refuse: true,
        });
        let (log, task) = ServedLog::start(down, 4, &Registry::new()).unwrap();
        for i in 0..40 {
            log.record(list(&format!("u{i}")));
        }
        let c = log.counters.clone();
        drop(log);
        task.await.unwrap();
        // Every list is either refused by the sink or dropped from the full buffer.
        assert_eq!(c.dropped.get(), 40);
        assert_eq!(c.published.get(), 0);
    }
}
