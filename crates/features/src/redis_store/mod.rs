//! The Redis implementation. Works on one Redis server or on Redis Cluster (keys carry
//! hash tags, see [`crate::Keys`]); which one is the store's [`Deployment`], and every
//! step that differs between the two matches on it.
//!
//! Whoever applies a partition's batches keeps that partition's state in memory (loaded
//! from Redis the first time, and again whenever someone else wrote the partition), works
//! out each batch's new state in process and writes only what changed, as plain values:
//! Redis does no arithmetic and runs no per-event script. It also keeps the partition's
//! user records, reading only users it has not seen.
//!
//! An apply, and why it lands exactly once, step by step:
//! 1. [`load`]: check that the held copy of the partition is the stored one (its `next`
//!    offset and writer token), read it again when it is not, and read the records of
//!    users not held yet.
//! 2. [`PartitionBatch::pending`]: position the batch against the stored `next` by the
//!    one position rule of [`crate::checkpoint`] (a gap is refused before anything is
//!    written, a duplicate skipped, an overlap cut to the part after `next`).
//! 3. [`writes`]: work out the new state and user records, and the commands that store
//!    them.
//! 4. Commit them: [`single`] (`WATCH`/`MULTI`/`EXEC`) on one server, [`cluster`] (the
//!    forward-only user script, then the guarded partition script) on a cluster.
//!
//! A transaction that finds the partition changed since it read it does nothing; the
//! store reloads what it holds and tries again. An attempt takes the held state out of
//! the writer and puts it back only when it succeeds, so an attempt that fails, panics
//! or is dropped half way leaves nothing half-applied in memory.
//!
//! The consumer always seeks to the offsets Redis holds, never to Kafka-committed ones.
//! Two consumers briefly owning one partition during a rebalance are fenced the same
//! way: whoever writes second finds `next`/`tok` changed, reads again, and finds the
//! batch already applied.
//!
//! The read side used by the API is [`read`]; stored values are encoded by [`codec`];
//! [`connection`] holds the targets and the deployment.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use newsrec_core::{PageId, UserId};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Cmd, Script, Value};
use tracing::{debug, instrument};

use crate::checkpoint::{Offset, Partition};
use crate::config::StoreConfig;
use crate::error::StoreError;
use crate::keys::Keys;
use crate::online::{CounterRow, OnlineNext, OnlineState, Step};
use crate::partition::PartState;
use crate::store::FeatureStore;
use crate::user_record::UserRecord;
use crate::values::{ApplyOutcome, PartitionBatch, PartitionSnapshot, ScoredPage, UserState};
use crate::window::Window;

mod cluster;
mod codec;
mod connection;
mod load;
mod online;
mod read;
mod single;
mod writes;

use cluster::{FORWARD_USERS, GUARDED_WRITES};
use codec::corrupt;
use connection::Deployment;
pub use connection::RedisTarget;

/// The key layout this build reads and writes (`keys`), stored under `P layout`: state
/// of another layout under the same prefix is refused, never half read.
const LAYOUT: i64 = 5;

/// Times one apply re-reads and tries again when another writer moved the partition
/// meanwhile.
const MAX_ATTEMPTS: usize = 10;

/// How long the list of partitions is reused by readers before it is read again.
const PARTITIONS_TTL: Duration = Duration::from_secs(2);

/// A user's record of one partition as this store last read or wrote it (`None`: the
/// user has none).
struct CachedUser {
    rec: Option<UserRecord>,
    /// When this store last set the key's TTL (`None`: never, the record was read).
    ttl_set: Option<Instant>,
}

/// A partition's state as this store last wrote or read it, with the writer token stored
/// beside it then.
struct Held {
    tok: Option<String>,
    state: PartState,
    /// User records of this partition read or written under `tok`: only the
    /// partition's writer writes them, so they stay current while `tok` does.
    users: HashMap<UserId, CachedUser>,
}

/// What this store holds for one partition it writes. Locked for a whole apply, so one
/// partition's batches are applied one at a time.
#[derive(Default)]
struct Writer {
    held: Option<Held>,
    /// The highest next offset this writer saw stored for the partition. Kept when
    /// `held` is dropped: a store found below it lost its state
    /// ([`StoreError::StoreLost`]), whatever happened to the connection meanwhile.
    seen: Option<Offset>,
    /// A connection of its own on a single server (`WATCH` is per connection).
    conn: Option<MultiplexedConnection>,
}

/// The feature store on Redis.
pub struct RedisStore {
    cfg: StoreConfig,
    /// One server or a cluster, and the shared connection.
    deployment: Deployment,
    windows: Vec<Window>,
    keys: Keys,
    guarded_script: Script,
    forward_script: Script,
    online_read_script: Script,
    partitions_cache: Mutex<Option<(Instant, Vec<Partition>)>>,
    writers: Mutex<HashMap<Partition, Arc<tokio::sync::Mutex<Writer>>>>,
    /// Writer tokens: this store's random id and a sequence number.
    token_id: u64,
    token_seq: AtomicU64,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.keys.prefix())
            .field("deployment", &self.deployment.name())
            .finish_non_exhaustive()
    }
}

/// How an attempt ended.
enum Attempt {
    Done(ApplyOutcome),
    /// The partition moved (or this store held no state yet): read again.
    Again,
}

impl RedisStore {
    /// Connects (and checks the connection with a `PING`).
    pub async fn connect(target: &RedisTarget, cfg: StoreConfig) -> Result<Self, StoreError> {
        cfg.validate()?;
        let deployment = Deployment::connect(target).await?;
        let token_id = {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or_default(),
            );
            h.finish()
        };
        let store = Self {
            keys: Keys::new(&cfg.prefix),
            windows: cfg.windows(),
            cfg,
            deployment,
            guarded_script: Script::new(GUARDED_WRITES),
            forward_script: Script::new(FORWARD_USERS),
            online_read_script: Script::new(online::READ_BOTH),
            partitions_cache: Mutex::new(None),
            writers: Mutex::new(HashMap::new()),
            token_id,
            token_seq: AtomicU64::new(0),
        };
        store.ping().await?;
        if let Deployment::Cluster { .. } = store.deployment {
            store.load_scripts().await?;
        }
        store.check_layout().await?;
        Ok(store)
    }

    /// Claims a fresh prefix for this layout, or checks the layout of the state under it.
    async fn check_layout(&self) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let key = self.keys.layout();
        let stored: Option<i64> = redis::cmd("GET").arg(&key).query_async(&mut conn).await?;
        let parts: i64 = redis::cmd("SCARD")
            .arg(self.keys.partitions())
            .query_async(&mut conn)
            .await?;
        let prefix = self.keys.prefix();
        match stored {
            Some(LAYOUT) => Ok(()),
            None if parts == 0 => {
                let _: Value = redis::cmd("SET")
                    .arg(&key)
                    .arg(LAYOUT)
                    .arg("NX")
                    .query_async(&mut conn)
                    .await?;
                Ok(())
            }
            other => Err(StoreError::Config(format!(
                "the state under prefix `{prefix}` has key layout {}, this build uses layout \
                 {LAYOUT}: use another prefix and replay the topic, or delete the old state",
                other.map_or("3 or earlier".to_owned(), |v| v.to_string())
            ))),
        }
    }

    /// The key layout in use.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The server's `used_memory` (bytes), from `INFO memory`; on a cluster, of the node
    /// that answers.
    pub async fn used_memory(&self) -> Result<u64, StoreError> {
        let mut conn = self.conn();
        let info: String = redis::cmd("INFO")
            .arg("memory")
            .query_async(&mut conn)
            .await?;
        info.lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| corrupt("INFO memory", "no used_memory line"))
    }

    /// Deletes every key under the store's prefix (tests and benchmarks clean up with it).
    pub async fn delete_all(&self) -> Result<u64, StoreError> {
        let deleted = self
            .delete_matching(&format!("{}*", self.keys.prefix()))
            .await?;
        *self.cache() = None;
        self.lock_writers().clear();
        Ok(deleted)
    }

    /// Deletes every key matching `pattern`; how many there were.
    async fn delete_matching(&self, pattern: &str) -> Result<u64, StoreError> {
        let mut deleted = 0u64;
        for chunk in self.scan(pattern).await?.chunks(1000) {
            // One key per command (keys of many slots may not share one on a cluster),
            // a chunk's at once.
            let counts: Vec<u64> = self
                .query_all(
                    chunk
                        .iter()
                        .map(|key| redis::cmd("UNLINK").arg(key).to_owned())
                        .collect(),
                )
                .await?;
            deleted += counts.iter().sum::<u64>();
        }
        Ok(deleted)
    }

    /// The readers' cached list of partitions.
    fn cache(&self) -> std::sync::MutexGuard<'_, Option<(Instant, Vec<Partition>)>> {
        self.partitions_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The writers of the partitions this store writes.
    fn lock_writers(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<Partition, Arc<tokio::sync::Mutex<Writer>>>> {
        self.writers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The writer of `partition` (new when this store has none).
    fn writer(&self, partition: Partition) -> Arc<tokio::sync::Mutex<Writer>> {
        self.lock_writers().entry(partition).or_default().clone()
    }

    /// `HGET meta next` of one partition.
    fn next_cmd(&self, partition: Partition) -> Cmd {
        redis::cmd("HGET")
            .arg(self.keys.meta(partition))
            .arg("next")
            .to_owned()
    }

    /// A handle on the shared connection (a cheap clone).
    fn conn(&self) -> Deployment {
        self.deployment.clone()
    }

    /// A new writer token: this store's id and the next sequence number.
    fn next_token(&self) -> String {
        format!(
            "{:016x}-{}",
            self.token_id,
            self.token_seq.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// Applies a batch, reading again and retrying while other writers move the
    /// partition.
    async fn apply_batch(&self, batch: &PartitionBatch) -> Result<ApplyOutcome, StoreError> {
        let writer = self.writer(batch.partition);
        let mut w = writer.lock().await;
        let w = &mut *w;
        for _ in 0..MAX_ATTEMPTS {
            // Taken out for the attempt, put back when it succeeds (or when the batch was
            // refused as a gap before anything was read).
            let mut held = w.held.take();
            let r = match &self.deployment {
                Deployment::Single { client, .. } => {
                    let conn = match &mut w.conn {
                        Some(c) => c,
                        None => {
                            let cfg = AsyncConnectionConfig::new()
                                .set_connection_timeout(Some(Duration::from_secs(2)))
                                .set_response_timeout(Some(Duration::from_secs(10)));
                            w.conn.insert(
                                client
                                    .get_multiplexed_async_connection_with_config(&cfg)
                                    .await?,
                            )
                        }
                    };
                    self.attempt_single(conn, &mut held, w.seen, batch).await
                }
                Deployment::Cluster { .. } => self.attempt_cluster(&mut held, w.seen, batch).await,
            };
            match &r {
                Ok(_) | Err(StoreError::OffsetGap { .. }) => w.held = held,
                // Unknown whether the transaction landed: forget the state, and the
                // connection (it may be broken or still watching).
                Err(_) => w.conn = None,
            }
            let attempt = r?;
            if let Attempt::Done(outcome) = attempt {
                w.seen = w.seen.max(Some(outcome.next_offset));
                return Ok(outcome);
            }
        }
        Err(StoreError::InvalidBatch(format!(
            "partition {} kept changing while applying",
            batch.partition
        )))
    }
}

#[async_trait]
impl FeatureStore for RedisStore {
    fn config(&self) -> &StoreConfig {
        &self.cfg
    }

    #[instrument(level = "debug", skip(self))]
    async fn user(&self, user: &UserId) -> Result<Option<UserState>, StoreError> {
        self.user_state(user).await
    }

    #[instrument(level = "debug", skip(self))]
    async fn popular(&self, window: Window, k: usize) -> Result<Vec<ScoredPage>, StoreError> {
        self.popular_pages(window, k).await
    }

    #[instrument(level = "debug", skip(self))]
    async fn trending(&self, k: usize) -> Result<Vec<ScoredPage>, StoreError> {
        self.trending_pages(k).await
    }

    #[instrument(level = "debug", skip(self))]
    async fn read_next(&self, page: &PageId, k: usize) -> Result<Vec<ScoredPage>, StoreError> {
        self.read_next_pages(page, k).await
    }

    #[instrument(level = "debug", skip(self, pages), fields(pages = pages.len()))]
    async fn recency(&self, pages: &[PageId]) -> Result<Vec<Option<i64>>, StoreError> {
        self.page_recency(pages).await
    }

    async fn watermark(&self) -> Result<Option<i64>, StoreError> {
        self.max_watermark().await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }

    #[instrument(level = "debug", skip(self, batch), fields(partition = %batch.partition, start = %batch.start, end = %batch.end, events = batch.events.len()))]
    async fn apply(&self, batch: &PartitionBatch) -> Result<ApplyOutcome, StoreError> {
        batch.validate()?;
        match self.apply_batch(batch).await {
            Err(StoreError::Redis(e))
                if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) =>
            {
                debug!("scripts missing on the server, loading them again");
                self.load_scripts().await?;
                self.apply_batch(batch).await
            }
            other => other,
        }
    }

    async fn next_offsets(
        &self,
        partitions: &[Partition],
    ) -> Result<Vec<Option<Offset>>, StoreError> {
        if partitions.is_empty() {
            return Ok(Vec::new());
        }
        self.query_all(partitions.iter().map(|p| self.next_cmd(*p)).collect())
            .await
    }

    fn next_offsets_blocking(
        &self,
        partitions: &[Partition],
    ) -> Result<Vec<Option<Offset>>, StoreError> {
        self.next_offsets_sync(partitions)
    }

    async fn set_issued(&self, items: &[(PageId, i64)]) -> Result<(), StoreError> {
        let mut conn = self.conn();
        for chunk in items.chunks(5_000) {
            let mut z = redis::cmd("ZADD");
            z.arg(self.keys.issued());
            for (p, ts) in chunk {
                z.arg(*ts).arg(p.as_str());
            }
            let _: i64 = z.query_async(&mut conn).await?;
        }
        Ok(())
    }

    async fn partitions(&self) -> Result<Vec<Partition>, StoreError> {
        self.stored_partitions().await
    }

    fn release_others(&self, owned: &[Partition]) {
        self.lock_writers().retain(|p, _| owned.contains(p));
    }

    async fn dump(&self) -> Result<BTreeMap<String, String>, StoreError> {
        self.dump_keys().await
    }

    async fn load_online(&self, partition: Partition) -> Result<OnlineState, StoreError> {
        self.online_load(partition).await
    }

    async fn commit_online(
        &self,
        partition: Partition,
        expected: OnlineNext,
        state: &OnlineState,
        step: &Step,
    ) -> Result<bool, StoreError> {
        self.online_commit(partition, expected, state, step).await
    }

    async fn online_counters(&self) -> Result<Vec<CounterRow>, StoreError> {
        self.online_sum().await
    }

    async fn reset_partition(&self, partition: Partition) -> Result<(), StoreError> {
        let writer = self.writer(partition);
        let mut w = writer.lock().await;
        (w.held, w.seen) = (None, None);
        self.delete_matching(&format!("{}*", self.keys.partition_base(partition)))
            .await?;
        let mut conn = self.conn();
        let _: Value = redis::cmd("SET")
            .arg(self.keys.layout())
            .arg(LAYOUT)
            .arg("NX")
            .query_async(&mut conn)
            .await?;
        *self.cache() = None;
        Ok(())
    }

    async fn snapshot(&self, partition: Partition) -> Result<PartitionSnapshot, StoreError> {
        let mut conn = self.conn();
        let held = self.load_partition(&mut conn, partition).await?;
        Ok(held.state.snapshot(partition, &self.cfg, &self.windows))
    }
}
