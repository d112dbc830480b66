//! The served-list log: every list the API answers with gets a [`RecId`], and is
//! published off the request path, so clicks can later be attributed to the list that
//! showed the page.
//!
//! Handlers hand a [`ServedList`] to [`ServedLog::record`], which never waits: the list
//! goes into a bounded buffer, or is counted as dropped when the buffer is full
//! (`newsrec_served_log_dropped_total`). One background task drains the buffer in
//! batches into a [`ServedSink`] (the binary's Kafka producer, or the demo's
//! in-process log); a batch the sink does not take in time is dropped and counted too.
//! A slow or absent broker therefore costs the API nothing but the lists it could not
//! log.

use std::sync::Arc;
use std::time::Duration;

use newsrec_core::{PageId, RecId, Tier, UserId};
use prometheus::{IntCounter, Registry};
use rand::Rng;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::sink::PublishFuture;

/// Variant every list is served under until experiments exist.
pub const CONTROL: &str = "control";

/// Most lists one publish call carries.
const BATCH_MAX: usize = 1_000;

/// How long one batch may take to publish before it is dropped.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(3);

/// A new random list id: 32 hex digits (128 random bits).
pub fn new_rec_id() -> RecId {
    let bits: u128 = rand::rng().random();
    // 32 hex digits always satisfy the id rules.
    RecId::parse(&format!("{bits:032x}")).unwrap_or_else(|_| unreachable!())
}

/// One answered list, as the log records it (JSON on the served topic, keyed by the
/// user, or by the article for `/articles/{page}/similar`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServedList {
    /// The list's id, as in the answer.
    pub rec_id: RecId,
    /// Who it was served to (`None` for similar-article lists, which have no reader).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    /// The article a similar-article list is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<PageId>,
    /// The API's watermark when it answered (the latest event time it had seen), epoch
    /// ms; `None` before any event was applied. Attribution windows are in event time.
    pub event_ts: Option<i64>,
    /// Wall-clock time of the answer, epoch ms.
    pub wall_ts: i64,
    /// The tier that served the user (`None` for similar-article lists).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<Tier>,
    /// The experiment variant (`control`).
    pub variant: &'static str,
    /// The model version that answered.
    pub model_version: String,
    /// The list, best first.
    pub pages: Vec<PageId>,
}

impl ServedList {
    /// The record key: the user, else the article.
    pub fn key(&self) -> &str {
        match (&self.user_id, &self.page) {
            (Some(u), _) => u.as_str(),
            (None, Some(p)) => p.as_str(),
            (None, None) => "",
        }
    }
}

/// Where served lists go, in batches; resolves once the log has taken them.
pub trait ServedSink: Send + Sync + 'static {
    /// Publishes a batch of lists.
    fn publish(&self, lists: Vec<ServedList>) -> PublishFuture<'_>;

    /// Where the lists go, for the start-up line (secrets masked).
    fn describe(&self) -> String;
}

/// The counters of the log.
#[derive(Clone)]
struct Counters {
    published: IntCounter,
    dropped: IntCounter,
}

/// The handle handlers record lists with; see the module docs.
pub struct ServedLog {
    tx: mpsc::Sender<ServedList>,
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
    ) -> Result<(Self, JoinHandle<()>), prometheus::Error> {
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
        let task = tokio::spawn(drain(rx, sink, counters.clone()));
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
        if self.tx.try_send(list).is_err() {
            self.counters.dropped.inc();
        }
    }

    /// Where the lists go, for the start-up line.
    pub fn describe(&self) -> &str {
        &self.describe
    }
}

/// Publishes what arrives, in batches of what is waiting, until every sender is gone.
async fn drain(mut rx: mpsc::Receiver<ServedList>, sink: Arc<dyn ServedSink>, c: Counters) {
    let mut warned = false;
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH_MAX {
            match rx.try_recv() {
                Ok(l) => batch.push(l),
                Err(_) => break,
            }
        }
        let n = batch.len() as u64;
        match tokio::time::timeout(PUBLISH_TIMEOUT, sink.publish(batch)).await {
            Ok(Ok(())) => {
                c.published.inc_by(n);
                if warned {
                    tracing::info!("served-list log publishing again");
                    warned = false;
                }
            }
            outcome => {
                c.dropped.inc_by(n);
                if !warned {
                    let why = match outcome {
                        Ok(Err(e)) => e.to_string(),
                        _ => format!("no acknowledgement within {PUBLISH_TIMEOUT:?}"),
                    };
                    tracing::warn!(error = %why, lists = n, "served lists dropped; the API keeps answering");
                    warned = true;
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Mutex;

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
            variant: CONTROL,
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
