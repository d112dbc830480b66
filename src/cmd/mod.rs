//! One module per subcommand area, and what several of them share: the flags that
//! override shared settings (`flags`), the one shutdown signal and the one sink
//! `POST /events` publishes through.

pub mod bench;
pub mod config;
pub mod data;
pub mod demo;
pub mod experiments;
mod flags;
pub mod model;
pub mod serve;
pub mod stream;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use newsrec_core::{ClickEvent, Retryable, ServedRecord};
use newsrec_ingest::EventLog;
use newsrec_ingest::Record;
use newsrec_serve::{EventSink, PublishFuture, ServedList, ServedSink, SinkError};

/// Resolves on SIGTERM or Ctrl-C. The handlers are installed when this is called, not
/// when the future is first polled, so a signal that arrives while the command is still
/// starting is already a request to stop (not the default action, which kills the
/// process). Call it inside the runtime. A failure to listen for one signal is logged
/// and the other still works.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (interrupt, terminate) = {
        use tokio::signal::unix::{SignalKind, signal};
        let listen = |kind: SignalKind, name: &str| {
            signal(kind)
                .map_err(|e| tracing::error!(error = %e, "listening for {name}"))
                .ok()
        };
        (
            listen(SignalKind::interrupt(), "SIGINT"),
            listen(SignalKind::terminate(), "SIGTERM"),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(interrupt) => {},
                () = wait(terminate) => {},
            }
        }
        #[cfg(not(unix))]
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "listening for Ctrl-C");
            std::future::pending::<()>().await;
        }
        tracing::info!("shutdown signal received");
    }
}

/// How long `POST /events` waits for the log's acknowledgement.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(3);

/// Publishes accepted events to an event log (Kafka, or the demo's in-process log),
/// keyed by user id, as the replay does.
pub struct LogSink {
    log: Arc<dyn EventLog>,
    topic: String,
    /// `kafka` or `event log`, for `/health/ready`.
    kind: &'static str,
    /// How it connects, secrets masked, for the start-up line (may be empty).
    settings: String,
}

impl LogSink {
    /// A sink to `topic` of `log`; `settings` describes the connection (masked).
    pub fn new(
        log: Arc<dyn EventLog>,
        topic: impl Into<String>,
        kind: &'static str,
        settings: String,
    ) -> Self {
        Self {
            log,
            topic: topic.into(),
            kind,
            settings,
        }
    }
}

impl EventSink for LogSink {
    fn topic(&self) -> &str {
        &self.topic
    }

    fn publish(&self, event: ClickEvent) -> PublishFuture<'_> {
        Box::pin(async move {
            let record = newsrec_ingest::replay::event_record(&event);
            let produce = self.log.produce(&self.topic, vec![record]);
            match tokio::time::timeout(PUBLISH_TIMEOUT, produce).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) if e.is_retryable() => Err(SinkError::Unavailable(e.to_string())),
                Ok(Err(e)) => Err(SinkError::Refused(e.to_string())),
                Err(_) => Err(SinkError::Unavailable(format!(
                    "no acknowledgement within {PUBLISH_TIMEOUT:?}"
                ))),
            }
        })
    }

    fn describe(&self) -> String {
        format!("{}:{}", self.kind, self.topic)
    }

    fn settings(&self) -> String {
        if self.settings.is_empty() {
            self.describe()
        } else {
            format!("{} {}", self.describe(), self.settings)
        }
    }
}

/// Logs served lists to a topic of an event log, keyed by user (or article), creating
/// the topic on first use when it is missing.
pub struct ServedLogSink {
    log: Arc<dyn EventLog>,
    topic: String,
    partitions: i32,
    created: AtomicBool,
    /// The topic's partitions the marks go to, and when they were looked up.
    seen: std::sync::Mutex<Option<(std::time::Instant, Vec<newsrec_features::Partition>)>>,
}

/// How long the served-list log's producer waits to fill a batch. The lists are many
/// (one per answer) and only wait for clicks, so larger, fewer produce requests are the
/// better trade: they cost the API's process and the broker less per list.
const SERVED_LINGER: Duration = Duration::from_millis(100);

/// How long the served topic's partitions are taken as known before the marks look
/// them up again (partitions added to the topic get marks after at most this).
const PARTITIONS_TTL: Duration = Duration::from_secs(60);

impl ServedLogSink {
    /// A sink to `topic` of `log`, created with `partitions` partitions if missing.
    pub fn new(log: Arc<dyn EventLog>, topic: String, partitions: i32) -> Self {
        Self {
            log,
            topic,
            partitions,
            created: AtomicBool::new(false),
            seen: std::sync::Mutex::new(None),
        }
    }

    /// A sink to `topic` on Kafka, through a producer of its own that batches for
    /// [`SERVED_LINGER`] (the events of `POST /events` keep their short linger).
    pub fn kafka(
        cfg: newsrec_ingest::KafkaConfig,
        topic: String,
        partitions: i32,
    ) -> Result<Self, newsrec_ingest::LogError> {
        let log = newsrec_ingest::KafkaLog::new(cfg)?.with_linger(SERVED_LINGER);
        Ok(Self::new(Arc::new(log), topic, partitions))
    }
}

fn unavailable(e: newsrec_ingest::LogError) -> SinkError {
    SinkError::Unavailable(e.to_string())
}

impl ServedLogSink {
    /// Creates the topic on first use.
    async fn ensure(&self) -> Result<(), SinkError> {
        if !self.created.load(Ordering::Relaxed) {
            self.log
                .ensure_topic(&self.topic, self.partitions)
                .await
                .map_err(unavailable)?;
            self.created.store(true, Ordering::Relaxed);
        }
        Ok(())
    }
}

impl ServedLogSink {
    /// The topic's partitions: looked up at most once per [`PARTITIONS_TTL`].
    async fn partitions(&self) -> Result<Vec<newsrec_features::Partition>, SinkError> {
        let cached = |s: &Self| {
            s.seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .as_ref()
                .filter(|(at, _)| at.elapsed() < PARTITIONS_TTL)
                .map(|(_, p)| p.clone())
        };
        if let Some(p) = cached(self) {
            return Ok(p);
        }
        let found: Vec<_> = self
            .log
            .end_offsets(&self.topic)
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        if !found.is_empty() {
            *self
                .seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) =
                Some((std::time::Instant::now(), found.clone()));
        }
        Ok(found)
    }
}

impl ServedSink for ServedLogSink {
    fn publish(&self, lists: Vec<ServedList>) -> PublishFuture<'_> {
        Box::pin(async move {
            self.ensure().await?;
            let records = lists
                .iter()
                .map(|l| Record::new(l.key(), serde_json::to_vec(l).unwrap_or_default()))
                .collect();
            self.log
                .produce(&self.topic, records)
                .await
                .map_err(unavailable)?;
            Ok(())
        })
    }

    fn tick(&self, watermark: i64) -> PublishFuture<'_> {
        Box::pin(async move {
            self.ensure().await?;
            let payload = ServedRecord::Tick { tick: watermark }.encode();
            let records = self
                .partitions()
                .await?
                .into_iter()
                .map(|p| Record::to_partition(p, payload.clone()))
                .collect();
            self.log
                .produce(&self.topic, records)
                .await
                .map_err(unavailable)?;
            Ok(())
        })
    }

    fn describe(&self) -> String {
        format!("topic {}", self.topic)
    }
}
