//! The Kafka log (rdkafka with its bundled librdkafka): works with Apache Kafka and with
//! Kafka-protocol brokers such as Tansu, which does not auto-create topics.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::FutureExt;
use newsrec_features::{Offset, Partition};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset as KafkaOffset, TopicPartitionList};
use tracing::{info, warn};

use super::{Assignment, EventLog, LogConsumer, LogError, LogMessage, Positioner, Record};

/// Timeout of metadata, watermark, admin and seek calls.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the producer waits to fill a batch unless [`KafkaLog::with_linger`] says.
const DEFAULT_LINGER: Duration = Duration::from_millis(5);

/// How to reach the brokers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    /// `host:port[,host:port…]`.
    pub brokers: String,
    /// librdkafka settings passed through to every client (SASL, TLS, tuning), applied
    /// after newsrec's own defaults so they can override them.
    pub options: Vec<(String, String)>,
}

impl KafkaConfig {
    /// Brokers without extra options.
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            options: Vec::new(),
        }
    }

    /// Parses `key=value` options.
    pub fn with_options<S: AsRef<str>>(mut self, opts: &[S]) -> Result<Self, LogError> {
        for o in opts {
            let (k, v) = o
                .as_ref()
                .split_once('=')
                .ok_or_else(|| LogError::Config(format!("`{}` is not key=value", o.as_ref())))?;
            self.options
                .push((k.trim().to_owned(), v.trim().to_owned()));
        }
        Ok(self)
    }

    /// For logs: the brokers and options, the values of secret ones replaced by `***`.
    pub fn redacted(&self) -> String {
        let options: Vec<String> = self
            .options
            .iter()
            .map(|(k, v)| {
                if is_secret(k) {
                    format!("{k}=***")
                } else {
                    format!("{k}={v}")
                }
            })
            .collect();
        if options.is_empty() {
            self.brokers.clone()
        } else {
            format!("{} [{}]", self.brokers, options.join(", "))
        }
    }

    fn client(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers);
        for (k, v) in defaults {
            c.set(*k, *v);
        }
        for (k, v) in &self.options {
            c.set(k, v);
        }
        c
    }
}

/// librdkafka settings whose values are credentials: `sasl.password`,
/// `ssl.key.password`, `ssl.keystore.password`, `sasl.oauthbearer.client.secret`,
/// inline keys (`ssl.key.pem`) and the free-form OAUTHBEARER config.
pub(crate) fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.contains("password")
        || key.contains("secret")
        || key.ends_with(".pem")
        || key == "sasl.oauthbearer.config"
}

/// An [`EventLog`] on Kafka.
pub struct KafkaLog {
    cfg: KafkaConfig,
    /// Created on first use.
    producer: Mutex<Option<FutureProducer>>,
    /// How long the producer waits to fill a batch (`linger.ms`).
    linger: Duration,
    admin: AdminClient<DefaultClientContext>,
    /// A group-less consumer for metadata and watermarks.
    meta: Arc<BaseConsumer>,
}

impl std::fmt::Debug for KafkaLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaLog")
            .field("brokers", &self.cfg.brokers)
            .finish_non_exhaustive()
    }
}

impl KafkaLog {
    /// `(partition, low, high)` watermarks of every partition of `topic`.
    async fn watermarks(&self, topic: &str) -> Result<Vec<(i32, i64, i64)>, LogError> {
        let meta = Arc::clone(&self.meta);
        let t = topic.to_owned();
        tokio::task::spawn_blocking(move || {
            let md = meta.fetch_metadata(Some(&t), CALL_TIMEOUT)?;
            let parts: Vec<i32> = md
                .topics()
                .iter()
                .filter(|x| x.name() == t)
                .flat_map(|x| x.partitions().iter().map(|p| p.id()))
                .collect();
            if parts.is_empty() {
                return Err(LogError::UnknownTopic(t.clone()));
            }
            let mut out = Vec::with_capacity(parts.len());
            for p in parts {
                let (low, high) = meta.fetch_watermarks(&t, p, CALL_TIMEOUT)?;
                out.push((p, low, high));
            }
            out.sort_unstable();
            Ok(out)
        })
        .await
        .map_err(|e| LogError::Timeout(e.to_string()))?
    }

    /// Creates the clients (connections are made lazily by librdkafka; the producer on
    /// first use, so consumers that never dead-letter never register a producer id).
    pub fn new(cfg: KafkaConfig) -> Result<Self, LogError> {
        let admin = cfg.client(&[]).create()?;
        let meta = Arc::new(cfg.client(&[]).create()?);
        Ok(Self {
            cfg,
            producer: Mutex::new(None),
            linger: DEFAULT_LINGER,
            admin,
            meta,
        })
    }

    /// The same log with a producer that waits up to `linger` to fill its batches
    /// (default 5 ms): for a high-volume topic whose records may wait, fewer and larger
    /// produce requests cost the producer and the broker less per record. A `linger.ms`
    /// in the options still wins.
    pub fn with_linger(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self
    }

    fn producer(&self) -> Result<FutureProducer, LogError> {
        let mut slot = self.producer.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = slot.as_ref() {
            return Ok(p.clone());
        }
        let linger = self.linger.as_millis().to_string();
        let p: FutureProducer = self
            .cfg
            .client(&[
                // Retries inside librdkafka cannot duplicate or reorder a key's events.
                ("enable.idempotence", "true"),
                ("acks", "all"),
                ("linger.ms", &linger),
                ("batch.num.messages", "10000"),
                ("queue.buffering.max.messages", "500000"),
                ("message.timeout.ms", "60000"),
                // The Java client's partitioner: keys land where other producers put them.
                ("partitioner", "murmur2_random"),
            ])
            .create()?;
        *slot = Some(p.clone());
        Ok(p)
    }

    /// The configured brokers.
    pub fn config(&self) -> &KafkaConfig {
        &self.cfg
    }

    /// Reads `count` messages of `topic` from the beginning with a plain consumer (no
    /// decoding, no sink) and returns how long it took from the first message (group
    /// join excluded): the broker's own consume rate.
    pub async fn drain(
        &self,
        topic: &str,
        group: &str,
        count: usize,
        timeout: Duration,
    ) -> Result<Duration, LogError> {
        let c: StreamConsumer = self.cfg.client(&consumer_defaults(group)).create()?;
        c.subscribe(&[topic])?;
        let deadline = std::time::Instant::now() + timeout;
        let mut first = None;
        let mut n = 0usize;
        while n < count {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match tokio::time::timeout(left, c.recv()).await {
                Ok(Ok(_)) => {
                    first.get_or_insert_with(std::time::Instant::now);
                    n += 1;
                }
                Ok(Err(e)) => warn!(error = %e, "drain: consumer error"),
                Err(_) => {
                    return Err(LogError::Timeout(format!(
                        "drained {n} of {count} messages"
                    )));
                }
            }
        }
        Ok(first.map_or(Duration::ZERO, |t| t.elapsed()))
    }
}

fn consumer_defaults(group: &str) -> Vec<(&str, &str)> {
    vec![
        ("group.id", group),
        // Offsets live in the feature store, written with the state they cover.
        ("enable.auto.commit", "false"),
        ("enable.auto.offset.store", "false"),
        ("auto.offset.reset", "earliest"),
        ("enable.partition.eof", "false"),
        ("session.timeout.ms", "10000"),
        ("heartbeat.interval.ms", "1000"),
        // How long the broker may hold a fetch when it has nothing new. A broker that
        // does not answer early when data arrives (Tansu) holds every fetch this long on
        // a quiet stream, so it bounds how late a lone click is seen (librdkafka's
        // default is 500 ms). A busy stream's fetches return full at once either way.
        ("fetch.wait.max.ms", "20"),
    ]
}

#[async_trait]
impl EventLog for KafkaLog {
    async fn ensure_topic(&self, topic: &str, partitions: i32) -> Result<(), LogError> {
        let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
        let opts = AdminOptions::new().operation_timeout(Some(CALL_TIMEOUT));
        for r in self.admin.create_topics([&new], &opts).await? {
            match r {
                Ok(_) => info!(topic, partitions, "created topic"),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => return Err(KafkaError::AdminOp(code).into()),
            }
        }
        // Wait until the topic is visible in metadata, so producers and consumers started
        // right after see its partitions.
        let meta = Arc::clone(&self.meta);
        let t = topic.to_owned();
        tokio::task::spawn_blocking(move || {
            let deadline = std::time::Instant::now() + CALL_TIMEOUT;
            loop {
                let ok = meta
                    .fetch_metadata(Some(&t), Duration::from_secs(2))
                    .map(|m| {
                        m.topics().iter().any(|x| {
                            x.name() == t && !x.partitions().is_empty() && x.error().is_none()
                        })
                    })
                    .unwrap_or(false);
                if ok {
                    return Ok(());
                }
                if std::time::Instant::now() > deadline {
                    return Err(LogError::Timeout(format!("topic {t} not in metadata")));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
        .await
        .map_err(|e| LogError::Timeout(e.to_string()))?
    }

    async fn produce(
        &self,
        topic: &str,
        records: Vec<Record>,
    ) -> Result<Vec<(Partition, Offset)>, LogError> {
        let producer = self.producer()?;
        let mut pending = Vec::with_capacity(records.len());
        for r in &records {
            let mut headers = OwnedHeaders::new_with_capacity(r.headers.len());
            for (k, v) in &r.headers {
                headers = headers.insert(Header {
                    key: k,
                    value: Some(v),
                });
            }
            let mut rec = FutureRecord::to(topic).payload(&r.payload).headers(headers);
            if let Some(k) = &r.key {
                rec = rec.key(k);
            }
            if let Some(p) = r.partition {
                rec = rec.partition(p.0);
            }
            loop {
                match producer.send_result(rec) {
                    Ok(f) => {
                        pending.push(f);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        // The local queue is full: let deliveries drain.
                        rec = back;
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    Err((e, _)) => return Err(e.into()),
                }
            }
        }
        let mut out = Vec::with_capacity(pending.len());
        for f in pending {
            match f.await {
                Ok(Ok(d)) => out.push((Partition(d.partition), Offset(d.offset))),
                Ok(Err((e, _))) => return Err(e.into()),
                Err(_) => return Err(LogError::Kafka(KafkaError::Canceled)),
            }
        }
        Ok(out)
    }

    async fn end_offsets(&self, topic: &str) -> Result<Vec<(Partition, Offset)>, LogError> {
        Ok(self
            .watermarks(topic)
            .await?
            .into_iter()
            .map(|(p, _, high)| (Partition(p), Offset(high)))
            .collect())
    }

    async fn start_offsets(&self, topic: &str) -> Result<Vec<(Partition, Offset)>, LogError> {
        Ok(self
            .watermarks(topic)
            .await?
            .into_iter()
            .map(|(p, low, _)| (Partition(p), Offset(low)))
            .collect())
    }

    async fn subscribe(
        &self,
        topic: &str,
        group: &str,
        positioner: Positioner,
    ) -> Result<Box<dyn LogConsumer>, LogError> {
        let ctx = PositionContext {
            topic: topic.to_owned(),
            positioner,
            assignment: Mutex::new(Assignment::default()),
        };
        let consumer: StreamConsumer<PositionContext> = self
            .cfg
            .client(&consumer_defaults(group))
            .create_with_context(ctx)?;
        consumer.subscribe(&[topic])?;
        Ok(Box::new(KafkaConsumer {
            topic: topic.to_owned(),
            consumer,
        }))
    }

    async fn assign(
        &self,
        topic: &str,
        starts: &[(Partition, Option<Offset>)],
    ) -> Result<Box<dyn LogConsumer>, LogError> {
        let ctx = PositionContext {
            topic: topic.to_owned(),
            positioner: Arc::new(|parts: &[Partition]| Ok(vec![None; parts.len()])),
            assignment: Mutex::new(Assignment::default()),
        };
        let consumer: StreamConsumer<PositionContext> = self
            .cfg
            .client(&assigned_defaults())
            .create_with_context(ctx)?;
        let mut tpl = TopicPartitionList::new();
        for (p, start) in starts {
            let off = start.map_or(KafkaOffset::Beginning, |o| KafkaOffset::Offset(o.0));
            tpl.add_partition_offset(topic, p.0, off)?;
        }
        consumer.assign(&tpl)?;
        let mut parts: Vec<Partition> = starts.iter().map(|(p, _)| *p).collect();
        parts.sort_unstable();
        consumer.context().set_assignment(parts);
        Ok(Box::new(KafkaConsumer {
            topic: topic.to_owned(),
            consumer,
        }))
    }
}

/// The consumer settings of a member that reads assigned partitions outside any group.
fn assigned_defaults() -> Vec<(&'static str, &'static str)> {
    let mut d = consumer_defaults("newsrec-assigned");
    d.retain(|(k, _)| !matches!(*k, "session.timeout.ms" | "heartbeat.interval.ms"));
    d
}

/// Positions partitions in the rebalance callback itself, so their first fetch already
/// starts at the offset the feature store holds.
struct PositionContext {
    topic: String,
    positioner: Positioner,
    assignment: Mutex<Assignment>,
}

impl PositionContext {
    fn set_assignment(&self, partitions: Vec<Partition>) {
        let mut a = self.assignment.lock().unwrap_or_else(|p| p.into_inner());
        a.generation += 1;
        a.partitions = partitions;
    }
}

impl ClientContext for PositionContext {}

impl ConsumerContext for PositionContext {
    fn rebalance(
        &self,
        base: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let mut parts: Vec<Partition> = tpl
                    .elements_for_topic(&self.topic)
                    .iter()
                    .map(|e| Partition(e.partition()))
                    .collect();
                parts.sort_unstable();
                let starts = (self.positioner)(&parts).unwrap_or_else(|e| {
                    warn!(error = %e, "cannot read stored offsets; starting from the beginning");
                    vec![None; parts.len()]
                });
                for (p, start) in parts.iter().zip(starts) {
                    let off = start.map_or(KafkaOffset::Beginning, |o| KafkaOffset::Offset(o.0));
                    if let Err(e) = tpl.set_partition_offset(&self.topic, p.0, off) {
                        warn!(partition = %p, error = %e, "cannot set start offset");
                    }
                }
                info!(partitions = ?parts, "partitions assigned");
                if let Err(e) = base.assign(tpl) {
                    warn!(error = %e, "assign failed");
                }
                self.set_assignment(parts);
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                info!("partitions revoked");
                if let Err(e) = base.unassign() {
                    warn!(error = %e, "unassign failed");
                }
                self.set_assignment(Vec::new());
            }
            other => warn!(error = ?other, "rebalance error"),
        }
    }
}

/// A Kafka consumer group member.
struct KafkaConsumer {
    topic: String,
    consumer: StreamConsumer<PositionContext>,
}

fn owned(m: &BorrowedMessage<'_>) -> LogMessage {
    LogMessage {
        partition: Partition(m.partition()),
        offset: Offset(m.offset()),
        key: m.key().map(<[u8]>::to_vec),
        payload: m.payload().map(<[u8]>::to_vec),
        headers: m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| {
                        (
                            h.key.to_owned(),
                            h.value.map(<[u8]>::to_vec).unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

#[async_trait]
impl LogConsumer for KafkaConsumer {
    async fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<LogMessage>, LogError> {
        let mut out = Vec::new();
        match tokio::time::timeout(wait, self.consumer.recv()).await {
            Err(_) => return Ok(out),
            Ok(Err(e)) => return Err(e.into()),
            Ok(Ok(m)) => out.push(owned(&m)),
        }
        while out.len() < max {
            match self.consumer.recv().now_or_never() {
                Some(Ok(m)) => out.push(owned(&m)),
                Some(Err(e)) => {
                    warn!(error = %e, "consumer error after a partial poll");
                    break;
                }
                None => break,
            }
        }
        Ok(out)
    }

    fn assignment(&self) -> Assignment {
        self.consumer
            .context()
            .assignment
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    async fn seek(&mut self, partition: Partition, offset: Offset) -> Result<(), LogError> {
        self.consumer.seek(
            &self.topic,
            partition.0,
            KafkaOffset::Offset(offset.0),
            CALL_TIMEOUT,
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_masks_credentials() {
        let cfg = KafkaConfig::new("b1:9092")
            .with_options(&[
                "security.protocol=SASL_SSL",
                "sasl.username=app",
                "sasl.password=s3cret",
                "ssl.key.password=k3y",
            ])
            .expect("options");
        let shown = cfg.redacted();
        assert_eq!(
            shown,
            "b1:9092 [security.protocol=SASL_SSL, sasl.username=app, sasl.password=***, ssl.key.password=***]"
        );
        assert_eq!(KafkaConfig::new("b1:9092").redacted(), "b1:9092");
    }
}
