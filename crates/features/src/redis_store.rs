//! The Redis implementation: one atomic script per partition batch on the partition's
//! slot, user updates grouped by slot, reads pipelined. Works on one Redis server or on
//! Redis Cluster (keys carry hash tags, see [`crate::Keys`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use newsrec_core::{PageId, UserAggregates, UserId, UserType};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Script, Value};
use serde::Serialize;
use tracing::{debug, instrument};

use crate::aggregate::{BatchDelta, PartitionDelta, UserDelta};
use crate::config::StoreConfig;
use crate::error::StoreError;
use crate::keys::{Keys, slot};
use crate::model::{
    ApplyOutcome, PartitionBatch, PartitionSnapshot, Pending, ScoredPage, UserState, top_k,
};
use crate::store::FeatureStore;
use crate::window::{TRENDING_MIN_SCORE, Window};

const APPLY_PARTITION: &str = include_str!("lua/apply_partition.lua");
const APPLY_USERS: &str = include_str!("lua/apply_users.lua");

/// Users per update script on a single server (one slot per script on a cluster).
const USERS_PER_SCRIPT: usize = 200;

/// How long the list of partitions is reused by readers before it is read again.
const PARTITIONS_TTL: Duration = Duration::from_secs(2);

/// Where the store's Redis is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisTarget {
    /// One server (or a proxy): `redis://[user:password@]host:port[/db]`, or `rediss://`
    /// for TLS.
    Single(String),
    /// Redis Cluster seed nodes.
    Cluster(Vec<String>),
}

impl RedisTarget {
    /// A single URL, or a comma-separated list of cluster seed nodes. `cluster` forces
    /// cluster mode for a single seed.
    pub fn parse(urls: &str, cluster: bool) -> Self {
        let list: Vec<String> = urls
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if cluster || list.len() > 1 {
            RedisTarget::Cluster(list)
        } else {
            RedisTarget::Single(list.into_iter().next().unwrap_or_default())
        }
    }
}

/// A connection to either kind of deployment; both reconnect on their own.
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// Script parameters, as the partition script reads them.
#[derive(Serialize)]
struct ScriptConfig {
    #[serde(rename = "B")]
    bucket_ms: i64,
    #[serde(rename = "W")]
    windows_ms: Vec<i64>,
    #[serde(rename = "L")]
    labels: Vec<String>,
    hl: i64,
    #[serde(rename = "R")]
    rebase_ms: i64,
    tmin: f64,
    tmax: usize,
    gap: i64,
    cvmax: usize,
    cvttl: i64,
}

/// Clients for the few blocking calls (see `next_offsets_blocking`).
enum SyncClient {
    Single(Box<redis::Client>),
    Cluster(Box<ClusterClient>),
}

/// The feature store on Redis.
pub struct RedisStore {
    cfg: StoreConfig,
    sync_client: SyncClient,
    windows: Vec<Window>,
    keys: Keys,
    conn: Conn,
    cluster: bool,
    script_cfg: String,
    partition_script: Script,
    users_script: Script,
    partitions_cache: Mutex<Option<(Instant, Vec<i32>)>>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.keys.prefix())
            .field("cluster", &self.cluster)
            .finish_non_exhaustive()
    }
}

fn corrupt(key: &str, detail: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        key: key.to_owned(),
        detail: detail.into(),
    }
}

fn page(key: &str, s: &str) -> Result<PageId, StoreError> {
    PageId::parse(s).map_err(|e| corrupt(key, e.to_string()))
}

impl RedisStore {
    /// Connects (and checks the connection with a `PING`).
    pub async fn connect(target: &RedisTarget, cfg: StoreConfig) -> Result<Self, StoreError> {
        cfg.validate()?;
        let (conn, sync_client) = match target {
            RedisTarget::Single(url) => {
                let client = redis::Client::open(url.as_str())?;
                let mgr_cfg = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(Duration::from_secs(2)))
                    .set_response_timeout(Some(Duration::from_secs(10)))
                    .set_number_of_retries(2);
                let mgr = client.get_connection_manager_with_config(mgr_cfg).await?;
                (Conn::Single(mgr), SyncClient::Single(Box::new(client)))
            }
            RedisTarget::Cluster(nodes) => {
                let client = ClusterClient::builder(nodes.iter().map(String::as_str))
                    .connection_timeout(Duration::from_secs(2))
                    .response_timeout(Duration::from_secs(10))
                    .build()?;
                let conn = client.get_async_connection().await?;
                (Conn::Cluster(conn), SyncClient::Cluster(Box::new(client)))
            }
        };
        let windows = cfg.windows();
        let script_cfg = serde_json::to_string(&ScriptConfig {
            bucket_ms: cfg.bucket_ms(),
            windows_ms: windows.iter().map(|w| w.duration_ms()).collect(),
            labels: windows.iter().map(|w| w.label()).collect(),
            hl: cfg.half_life_ms(),
            rebase_ms: crate::window::REBASE_HALF_LIVES * cfg.half_life_ms(),
            tmin: TRENDING_MIN_SCORE,
            tmax: cfg.trending_max,
            gap: cfg.session_gap_ms(),
            cvmax: cfg.covisit_max_next,
            cvttl: cfg.covisit_ttl_ms(),
        })
        .map_err(|e| StoreError::Config(e.to_string()))?;
        let store = Self {
            keys: Keys::new(&cfg.prefix),
            windows,
            cfg,
            conn,
            cluster: matches!(sync_client, SyncClient::Cluster(_)),
            sync_client,
            script_cfg,
            partition_script: Script::new(APPLY_PARTITION),
            users_script: Script::new(APPLY_USERS),
            partitions_cache: Mutex::new(None),
        };
        store.ping().await?;
        store.load_scripts().await?;
        Ok(store)
    }

    /// The key layout in use.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The server's `used_memory` (bytes), from `INFO memory`; on a cluster, of the node
    /// that answers.
    pub async fn used_memory(&self) -> Result<u64, StoreError> {
        let mut conn = self.conn.clone();
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
        let mut conn = self.conn.clone();
        let pattern = format!("{}*", self.keys.prefix());
        let mut deleted = 0u64;
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await?;
            for key in batch {
                // One key per DEL: keys of many slots may not share a command on a cluster.
                let n: u64 = redis::cmd("UNLINK")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await?;
                deleted += n;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        *self.cache() = None;
        Ok(deleted)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Option<(Instant, Vec<i32>)>> {
        self.partitions_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    async fn load_scripts(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        for s in [&self.partition_script, &self.users_script] {
            s.prepare_invoke().load_async(&mut conn).await?;
        }
        Ok(())
    }

    /// Runs `op`, reloading the scripts once if the server lost them (restart, failover,
    /// `SCRIPT FLUSH`). Every operation retried this way is idempotent.
    async fn with_scripts<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>>,
    {
        match op().await {
            Err(StoreError::Redis(e))
                if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) =>
            {
                debug!("scripts missing on the server, loading them again");
                self.load_scripts().await?;
                op().await
            }
            other => other,
        }
    }

    fn user_args(&self, inv: &mut Cmd, d: &UserDelta) {
        let a = &d.agg;
        let hist: Vec<&str> = d.history.iter().map(PageId::as_str).collect();
        inv.arg(d.min_offset)
            .arg(d.max_offset)
            .arg(a.interactions)
            .arg(a.clicks.to_string())
            .arg(a.time_min.to_string())
            .arg(a.scroll.to_string())
            .arg(a.visits.to_string())
            .arg(a.engagement.to_string())
            .arg(a.first_ts)
            .arg(a.last_ts)
            .arg(match d.user_type {
                UserType::Logged => "L",
                UserType::NonLogged => "N",
            })
            .arg(d.last_page.as_str())
            .arg(d.last_session.as_str())
            .arg(hist.join(" "));
    }

    /// `EVALSHA apply_users` over groups of deltas that share a slot.
    fn users_cmds(&self, partition: i32, groups: &[Vec<&UserDelta>]) -> Vec<Cmd> {
        let field = Keys::user_offset_field(partition);
        let ttl = self.cfg.user_ttl_ms();
        groups
            .iter()
            .map(|group| {
                let mut c = redis::cmd("EVALSHA");
                c.arg(self.users_script.get_hash()).arg(group.len());
                for d in group {
                    c.arg(self.keys.user(d.user.as_str()));
                }
                c.arg(&field).arg(self.cfg.history_len).arg(ttl);
                for d in group {
                    self.user_args(&mut c, d);
                }
                c
            })
            .collect()
    }

    fn group_users<'a>(&self, users: &'a [UserDelta]) -> Vec<Vec<&'a UserDelta>> {
        if !self.cluster {
            return users
                .chunks(USERS_PER_SCRIPT)
                .map(|c| c.iter().collect())
                .collect();
        }
        let mut by_slot: BTreeMap<u16, Vec<&UserDelta>> = BTreeMap::new();
        for u in users {
            by_slot
                .entry(slot(&self.keys.user(u.user.as_str())))
                .or_default()
                .push(u);
        }
        by_slot.into_values().collect()
    }

    /// Step 1 of an apply: user deltas (and idempotent first-seen times), one round trip;
    /// users whose delta is partly in already are re-sent one event at a time.
    async fn apply_users(
        &self,
        batch: &PartitionBatch,
        delta: &BatchDelta,
    ) -> Result<(), StoreError> {
        let groups = self.group_users(&delta.users);
        let mut pipe = redis::pipe();
        for c in self.users_cmds(batch.partition, &groups) {
            pipe.add_command(c);
        }
        if !delta.first_seen.is_empty() {
            let seen = self.keys.seen();
            let mut z = redis::cmd("ZADD");
            z.arg(&seen).arg("LT");
            for (p, ts) in &delta.first_seen {
                z.arg(*ts).arg(p.as_str());
            }
            pipe.add_command(z).ignore();
            let keep = self.cfg.max_items as i64;
            pipe.cmd("ZREMRANGEBYRANK")
                .arg(&seen)
                .arg(0)
                .arg(-(keep + 1))
                .ignore();
        }
        pipe.cmd("SADD")
            .arg(self.keys.partitions())
            .arg(batch.partition)
            .ignore();
        let mut conn = self.conn.clone();
        let statuses: Vec<Vec<i64>> = pipe.query_async(&mut conn).await?;
        let partial: Vec<&UserDelta> = groups
            .iter()
            .zip(&statuses)
            .flat_map(|(g, s)| g.iter().zip(s))
            .filter(|(_, s)| **s == 2)
            .map(|(d, _)| *d)
            .collect();
        if partial.is_empty() {
            return Ok(());
        }
        debug!(
            users = partial.len(),
            "replayed users partly applied: per event"
        );
        let mut pipe = redis::pipe();
        for d in partial {
            let singles = BatchDelta::per_event(batch, &d.user, &self.cfg);
            // All on one key: the script applies them in offset order.
            let refs: Vec<&UserDelta> = singles.iter().collect();
            for c in self.users_cmds(batch.partition, &[refs]) {
                pipe.add_command(c).ignore();
            }
        }
        pipe.exec_async(&mut conn).await?;
        Ok(())
    }

    async fn apply_partition(
        &self,
        partition: i32,
        d: &PartitionDelta,
    ) -> Result<(String, i64), StoreError> {
        let json = serde_json::to_string(d).map_err(|e| StoreError::InvalidBatch(e.to_string()))?;
        let mut conn = self.conn.clone();
        let (status, offset): (String, i64) = redis::cmd("EVALSHA")
            .arg(self.partition_script.get_hash())
            .arg(1)
            .arg(self.keys.meta(partition))
            .arg(self.keys.partition_base(partition))
            .arg(&self.script_cfg)
            .arg(json)
            .query_async(&mut conn)
            .await?;
        Ok((status, offset))
    }

    async fn apply_once(&self, batch: &PartitionBatch) -> Result<ApplyOutcome, StoreError> {
        let total = batch.events.len();
        // Users are only touched for a batch that continues the partition (see the crate
        // doc): never for a gap, and only for the part not applied yet. The partition
        // script checks again, atomically, in case another member moved it meanwhile;
        // offsets only grow, so that check can find a duplicate or an overlap, never a gap.
        let mut conn = self.conn.clone();
        let stored: Option<i64> = redis::cmd("HGET")
            .arg(self.keys.meta(batch.partition))
            .arg("next")
            .query_async(&mut conn)
            .await?;
        let batch = match batch.pending(stored)? {
            Pending::Done(outcome) => return Ok(outcome),
            Pending::Apply(b) => b,
        };
        let batch = batch.as_ref();
        let delta = BatchDelta::build(batch, &self.cfg);
        self.apply_users(batch, &delta).await?;
        let (status, stored) = self
            .apply_partition(batch.partition, &delta.partition)
            .await?;
        let (applied, next) = match status.as_str() {
            "ok" => (batch.events.len(), batch.end),
            "dup" => (0, stored),
            "partial" => {
                let tail = batch.tail_from(stored);
                let d = BatchDelta::build(&tail, &self.cfg);
                let (status, now) = self.apply_partition(batch.partition, &d.partition).await?;
                match status.as_str() {
                    "ok" => (tail.events.len(), batch.end),
                    "dup" => (0, now),
                    _ => {
                        return Err(StoreError::InvalidBatch(format!(
                            "partition {} moved to {now} while applying",
                            batch.partition
                        )));
                    }
                }
            }
            "gap" => {
                return Err(StoreError::OffsetGap {
                    partition: batch.partition,
                    stored,
                    start: batch.start,
                });
            }
            other => return Err(corrupt(&self.keys.meta(batch.partition), other)),
        };
        Ok(ApplyOutcome {
            applied,
            duplicates: total - applied,
            next_offset: next,
        })
    }

    async fn cached_partitions(&self) -> Result<Vec<i32>, StoreError> {
        if let Some((at, parts)) = self.cache().as_ref()
            && at.elapsed() < PARTITIONS_TTL
        {
            return Ok(parts.clone());
        }
        let parts = self.partitions().await?;
        *self.cache() = Some((Instant::now(), parts.clone()));
        Ok(parts)
    }

    /// Top lists merged over partitions: each partition's top `fetch`, then the exact
    /// total of every candidate. `factor` scales each partition's scores.
    async fn merged_top(
        &self,
        keys: &[(String, f64)],
        k: usize,
    ) -> Result<Vec<ScoredPage>, StoreError> {
        if keys.is_empty() || k == 0 {
            return Ok(Vec::new());
        }
        let fetch = (2 * k).max(k + 20);
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        for (key, _) in keys {
            pipe.cmd("ZREVRANGE")
                .arg(key)
                .arg(0)
                .arg(fetch - 1)
                .arg("WITHSCORES");
        }
        let tops: Vec<Vec<(String, f64)>> = pipe.query_async(&mut conn).await?;
        let mut sum: HashMap<String, f64> = HashMap::new();
        if keys.len() == 1 {
            for (m, s) in tops.into_iter().flatten() {
                sum.insert(m, s * keys[0].1);
            }
        } else {
            let candidates: Vec<String> = {
                let mut c: Vec<String> = tops.into_iter().flatten().map(|(m, _)| m).collect();
                c.sort_unstable();
                c.dedup();
                c
            };
            if candidates.is_empty() {
                return Ok(Vec::new());
            }
            let mut pipe = redis::pipe();
            for (key, _) in keys {
                pipe.cmd("ZMSCORE").arg(key).arg(&candidates);
            }
            let scores: Vec<Vec<Option<f64>>> = pipe.query_async(&mut conn).await?;
            for ((_, factor), col) in keys.iter().zip(scores) {
                for (m, s) in candidates.iter().zip(col) {
                    if let Some(s) = s {
                        *sum.entry(m.clone()).or_default() += s * factor;
                    }
                }
            }
        }
        let list = sum
            .into_iter()
            .filter(|(_, s)| *s > 0.0)
            .map(|(m, score)| {
                Ok(ScoredPage {
                    page: page(&keys[0].0, &m)?,
                    score,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(top_k(list, k))
    }

    async fn metas(&self, parts: &[i32]) -> Result<Vec<(Option<i64>, Option<i64>)>, StoreError> {
        // Redis rejects an empty pipeline: a store nothing was applied to has no partitions.
        if parts.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for p in parts {
            pipe.cmd("HMGET")
                .arg(self.keys.meta(*p))
                .arg("wm")
                .arg("t0");
        }
        let mut conn = self.conn.clone();
        Ok(pipe.query_async(&mut conn).await?)
    }
}

fn parse_f64(key: &str, h: &HashMap<String, String>, f: &str) -> Result<f64, StoreError> {
    h.get(f)
        .ok_or_else(|| corrupt(key, format!("missing field {f}")))?
        .parse()
        .map_err(|_| corrupt(key, format!("field {f} is not a number")))
}

fn parse_i64(key: &str, h: &HashMap<String, String>, f: &str) -> Result<i64, StoreError> {
    h.get(f)
        .ok_or_else(|| corrupt(key, format!("missing field {f}")))?
        .parse()
        .map_err(|_| corrupt(key, format!("field {f} is not an integer")))
}

#[async_trait]
impl FeatureStore for RedisStore {
    fn config(&self) -> &StoreConfig {
        &self.cfg
    }

    #[instrument(level = "debug", skip(self))]
    async fn user(&self, user: &UserId) -> Result<Option<UserState>, StoreError> {
        let key = self.keys.user(user.as_str());
        let mut conn = self.conn.clone();
        let h: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(&key)
            .query_async(&mut conn)
            .await?;
        if h.is_empty() {
            return Ok(None);
        }
        let agg = UserAggregates {
            interactions: parse_i64(&key, &h, "n")?.max(0) as u64,
            clicks: parse_f64(&key, &h, "c")?,
            time_min: parse_f64(&key, &h, "t")?,
            scroll: parse_f64(&key, &h, "s")?,
            visits: parse_f64(&key, &h, "v")?,
            engagement: parse_f64(&key, &h, "e")?,
            first_ts: parse_i64(&key, &h, "f")?,
            last_ts: parse_i64(&key, &h, "l")?,
        };
        let user_type = match h.get("ty").map(String::as_str) {
            Some("L") => UserType::Logged,
            Some("N") => UserType::NonLogged,
            _ => return Err(corrupt(&key, "bad user type")),
        };
        let history = h
            .get("h")
            .map(|s| {
                s.split(' ')
                    .filter(|p| !p.is_empty())
                    .map(|p| page(&key, p))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();
        let last_page = page(&key, h.get("lp").map(String::as_str).unwrap_or(""))?;
        let last_session = h.get("ls").filter(|s| !s.is_empty()).cloned();
        Ok(Some(UserState::new(
            user.clone(),
            user_type,
            agg,
            history,
            last_page,
            last_session,
        )))
    }

    #[instrument(level = "debug", skip(self))]
    async fn popular(&self, window: Window, k: usize) -> Result<Vec<ScoredPage>, StoreError> {
        if !self.windows.contains(&window) {
            return Ok(Vec::new());
        }
        let label = window.label();
        let keys: Vec<(String, f64)> = self
            .cached_partitions()
            .await?
            .into_iter()
            .map(|p| (self.keys.window(p, &label), 1.0))
            .collect();
        self.merged_top(&keys, k).await
    }

    #[instrument(level = "debug", skip(self))]
    async fn trending(&self, k: usize) -> Result<Vec<ScoredPage>, StoreError> {
        let parts = self.cached_partitions().await?;
        let metas = self.metas(&parts).await?;
        let Some(wm) = metas.iter().filter_map(|m| m.0).max() else {
            return Ok(Vec::new());
        };
        let hl = self.cfg.half_life_ms() as f64;
        let keys: Vec<(String, f64)> = parts
            .iter()
            .zip(&metas)
            .filter_map(|(p, (_, t0))| {
                t0.map(|t0| (self.keys.trending(*p), 2f64.powf((t0 - wm) as f64 / hl)))
            })
            .collect();
        self.merged_top(&keys, k).await
    }

    #[instrument(level = "debug", skip(self))]
    async fn read_next(&self, page: &PageId, k: usize) -> Result<Vec<ScoredPage>, StoreError> {
        let keys: Vec<(String, f64)> = self
            .cached_partitions()
            .await?
            .into_iter()
            .map(|p| (self.keys.covisit(p, page.as_str()), 1.0))
            .collect();
        self.merged_top(&keys, k).await
    }

    #[instrument(level = "debug", skip(self, pages), fields(pages = pages.len()))]
    async fn recency(&self, pages: &[PageId]) -> Result<Vec<Option<i64>>, StoreError> {
        if pages.is_empty() {
            return Ok(Vec::new());
        }
        let names: Vec<&str> = pages.iter().map(PageId::as_str).collect();
        let mut pipe = redis::pipe();
        pipe.cmd("ZMSCORE").arg(self.keys.issued()).arg(&names);
        pipe.cmd("ZMSCORE").arg(self.keys.seen()).arg(&names);
        let mut conn = self.conn.clone();
        let (issued, seen): (Vec<Option<f64>>, Vec<Option<f64>>) =
            pipe.query_async(&mut conn).await?;
        Ok(issued
            .into_iter()
            .zip(seen)
            .map(|(i, s)| i.or(s).map(|t| t as i64))
            .collect())
    }

    async fn watermark(&self) -> Result<Option<i64>, StoreError> {
        let parts = self.cached_partitions().await?;
        Ok(self
            .metas(&parts)
            .await?
            .into_iter()
            .filter_map(|m| m.0)
            .max())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }

    #[instrument(level = "debug", skip(self, batch), fields(partition = batch.partition, start = batch.start, end = batch.end, events = batch.events.len()))]
    async fn apply(&self, batch: &PartitionBatch) -> Result<ApplyOutcome, StoreError> {
        batch.validate()?;
        self.with_scripts(|| self.apply_once(batch)).await
    }

    async fn next_offsets(&self, partitions: &[i32]) -> Result<Vec<Option<i64>>, StoreError> {
        if partitions.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for p in partitions {
            pipe.cmd("HGET").arg(self.keys.meta(*p)).arg("next");
        }
        let mut conn = self.conn.clone();
        Ok(pipe.query_async(&mut conn).await?)
    }

    fn next_offsets_blocking(&self, partitions: &[i32]) -> Result<Vec<Option<i64>>, StoreError> {
        if partitions.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for p in partitions {
            pipe.cmd("HGET").arg(self.keys.meta(*p)).arg("next");
        }
        let timeout = Duration::from_secs(5);
        Ok(match &self.sync_client {
            SyncClient::Single(c) => {
                let mut conn = c.get_connection_with_timeout(timeout)?;
                conn.set_read_timeout(Some(timeout))?;
                pipe.query(&mut conn)?
            }
            SyncClient::Cluster(c) => pipe.query(&mut c.get_connection()?)?,
        })
    }

    async fn set_issued(&self, items: &[(PageId, i64)]) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
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

    async fn partitions(&self) -> Result<Vec<i32>, StoreError> {
        let mut conn = self.conn.clone();
        let mut parts: Vec<i32> = redis::cmd("SMEMBERS")
            .arg(self.keys.partitions())
            .query_async(&mut conn)
            .await?;
        parts.sort_unstable();
        Ok(parts)
    }

    async fn snapshot(&self, partition: i32) -> Result<PartitionSnapshot, StoreError> {
        let mut conn = self.conn.clone();
        let meta_key = self.keys.meta(partition);
        let meta: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(&meta_key)
            .query_async(&mut conn)
            .await?;
        let get = |f: &str| -> Result<Option<i64>, StoreError> {
            meta.get(f)
                .map(|v| {
                    v.parse()
                        .map_err(|_| corrupt(&meta_key, format!("field {f}")))
                })
                .transpose()
        };
        let (next, wm, t0, events) = (get("next")?, get("wm")?, get("t0")?, get("events")?);

        let mut pipe = redis::pipe();
        for w in &self.windows {
            pipe.cmd("ZRANGE")
                .arg(self.keys.window(partition, &w.label()))
                .arg(0)
                .arg(-1)
                .arg("WITHSCORES");
        }
        let lists: Vec<Vec<(String, f64)>> = pipe.query_async(&mut conn).await?;
        let mut pipe = redis::pipe();
        pipe.cmd("ZRANGE")
            .arg(self.keys.trending(partition))
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES");
        pipe.cmd("ZRANGE")
            .arg(self.keys.covisit_index(partition))
            .arg(0)
            .arg(-1);
        let (tr, cv_pages): (Vec<(String, f64)>, Vec<String>) = pipe.query_async(&mut conn).await?;
        let mut windows = BTreeMap::new();
        for (w, v) in self.windows.iter().zip(lists) {
            let key = self.keys.window(partition, &w.label());
            let m = v
                .into_iter()
                .map(|(p, c)| Ok((page(&key, &p)?, c as u64)))
                .collect::<Result<BTreeMap<_, _>, StoreError>>()?;
            windows.insert(*w, m);
        }
        let trending = match (wm, t0) {
            (Some(wm), Some(t0)) => {
                let f = 2f64.powf((t0 - wm) as f64 / self.cfg.half_life_ms() as f64);
                let key = self.keys.trending(partition);
                tr.into_iter()
                    .map(|(p, v)| Ok((page(&key, &p)?, v * f)))
                    .collect::<Result<BTreeMap<_, _>, StoreError>>()?
            }
            _ => BTreeMap::new(),
        };
        let mut covisit = BTreeMap::new();
        if !cv_pages.is_empty() {
            let mut pipe = redis::pipe();
            for p in &cv_pages {
                pipe.cmd("ZRANGE")
                    .arg(self.keys.covisit(partition, p))
                    .arg(0)
                    .arg(-1)
                    .arg("WITHSCORES");
            }
            let lists: Vec<Vec<(String, f64)>> = pipe.query_async(&mut conn).await?;
            for (a, next) in cv_pages.iter().zip(lists) {
                let key = self.keys.covisit(partition, a);
                let m = next
                    .into_iter()
                    .map(|(b, c)| Ok((page(&key, &b)?, c as u64)))
                    .collect::<Result<BTreeMap<_, _>, StoreError>>()?;
                if !m.is_empty() {
                    covisit.insert(page(&key, a)?, m);
                }
            }
        }
        Ok(PartitionSnapshot {
            partition,
            next_offset: next,
            watermark: wm,
            events: events.unwrap_or(0).max(0) as u64,
            windows,
            trending,
            covisit,
        })
    }
}
