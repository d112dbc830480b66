//! The Redis implementation. Works on one Redis server or on Redis Cluster (keys carry
//! hash tags, see [`crate::Keys`]).
//!
//! Whoever applies a partition's batches keeps that partition's state in memory (loaded
//! from Redis the first time, and again whenever someone else wrote the partition), works
//! out each batch's new state in process and writes only what changed, as plain values:
//! Redis does no arithmetic and runs no per-event script. It also keeps the partition's
//! user records, reading only users it has not seen. On one server the changed user
//! records, the partition's writes and its new offset and writer token go in one
//! `MULTI` under `WATCH` of the partition's meta hash; on a cluster users go first, by a
//! script per slot that only moves a record forward, then the partition's writes by a
//! script that checks the offset and token. The crate doc says why that is exactly once.
//!
//! A transaction that finds the partition changed since it read it does nothing; the
//! store reloads what it holds and tries again. An attempt takes the held state out of
//! the writer and puts it back only when it succeeds, so an attempt that fails, panics
//! or is dropped half way leaves nothing half-applied in memory.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use newsrec_core::{PageId, UserId};
use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{AsyncConnectionConfig, Cmd, Pipeline, RedisFuture, Script, Value};
use tracing::{debug, instrument};

use crate::aggregate::BatchDelta;
use crate::config::StoreConfig;
use crate::error::StoreError;
use crate::keys::{Keys, slot};
use crate::model::{
    ApplyOutcome, PartitionBatch, PartitionSnapshot, Pending, ScoredPage, UserState, merge_tops,
};
use crate::partition::{Changes, PartState, PartitionApply, top_n};
use crate::store::FeatureStore;
use crate::user_record::{Caps, UserApply, UserRecord, merged};
use crate::window::{Window, decay_weight};

const GUARDED_WRITES: &str = include_str!("lua/guarded_writes.lua");
const FORWARD_USERS: &str = include_str!("lua/forward_users.lua");

/// Fields (or members, or keys) per write command: scripts may unpack at most a few
/// thousand values at once.
const PER_CMD: usize = 1_000;

/// The key layout this build reads and writes (`keys`), stored under `P layout`: state
/// of another layout under the same prefix is refused, never half read.
const LAYOUT: i64 = 5;

/// Users per forward-only write script (one slot, cluster).
const USERS_PER_SCRIPT: usize = 500;

/// Times one apply re-reads and tries again when another writer moved the partition
/// meanwhile.
const MAX_ATTEMPTS: usize = 10;

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

/// For logs: the URLs with any password replaced by `***`.
impl std::fmt::Display for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RedisTarget::Single(url) => f.write_str(&mask_password(url)),
            RedisTarget::Cluster(urls) => {
                let masked: Vec<String> = urls.iter().map(|u| mask_password(u)).collect();
                write!(f, "cluster {}", masked.join(","))
            }
        }
    }
}

/// `scheme://user:secret@host` → `scheme://user:***@host`. A userinfo without a colon
/// is masked whole: Redis reads `redis://secret@host` as a password-only login on some
/// clients, so it may be one.
fn mask_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    // The userinfo ends at the last `@` before the path.
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    let (userinfo, host) = (&rest[..at], &rest[at..]);
    let masked = match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None => "***".to_owned(),
    };
    format!("{scheme}://{masked}{host}")
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

/// Clients for the few blocking calls (see `next_offsets_blocking`).
enum SyncClient {
    Single(Box<redis::Client>),
    Cluster(Box<ClusterClient>),
}

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

/// A user record to write.
struct UserWrite {
    key: String,
    value: String,
    offset: i64,
    /// Whether the key's TTL is (re)set with it.
    set_ttl: bool,
}

/// What this store holds for one partition it writes. Locked for a whole apply, so one
/// partition's batches are applied one at a time.
#[derive(Default)]
struct Writer {
    held: Option<Held>,
    /// The highest next offset this writer saw stored for the partition. Kept when
    /// `held` is dropped: a store found below it lost its state
    /// ([`StoreError::StoreLost`]), whatever happened to the connection meanwhile.
    seen: Option<i64>,
    /// A connection of its own on a single server (`WATCH` is per connection).
    conn: Option<MultiplexedConnection>,
}

/// The feature store on Redis.
pub struct RedisStore {
    cfg: StoreConfig,
    sync_client: SyncClient,
    windows: Vec<Window>,
    keys: Keys,
    conn: Conn,
    cluster: bool,
    guarded_script: Script,
    forward_script: Script,
    partitions_cache: Mutex<Option<(Instant, Vec<i32>)>>,
    writers: Mutex<HashMap<i32, Arc<tokio::sync::Mutex<Writer>>>>,
    /// Writer tokens: this store's random id and a sequence number.
    token_id: u64,
    token_seq: AtomicU64,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.keys.prefix())
            .field("cluster", &self.cluster)
            .finish_non_exhaustive()
    }
}

/// Walks one node's `SCAN` cursor to the end, sending each step with `send`.
async fn scan_node<F, Fut>(pattern: &str, keys: &mut Vec<String>, send: F) -> Result<(), StoreError>
where
    F: Fn(Cmd) -> Fut,
    Fut: std::future::Future<Output = redis::RedisResult<Value>>,
{
    let mut cursor: u64 = 0;
    loop {
        let step = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .to_owned();
        let (next, batch): (u64, Vec<String>) = from_value(send(step).await?)?;
        keys.extend(batch);
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

/// The `(host, port)` of every primary in a `CLUSTER NODES` reply.
fn primaries(nodes: &str) -> Vec<(String, u16)> {
    nodes
        .lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let (_, addr, flags) = (f.next()?, f.next()?, f.next()?);
            if !flags.split(',').any(|x| x == "master") || flags.contains("fail") {
                return None;
            }
            let addr = addr.split('@').next()?;
            let (host, port) = addr.rsplit_once(':')?;
            Some((host.to_owned(), port.parse().ok()?))
        })
        .collect()
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

fn number<T: std::str::FromStr>(key: &str, s: &str) -> Result<T, StoreError> {
    s.parse()
        .map_err(|_| corrupt(key, format!("`{s}` is not a number")))
}

/// A top or "read next" list as stored: `page score page score …`.
fn list_value(list: &[ScoredPage], counts: bool) -> String {
    let mut out = String::with_capacity(list.len() * 24);
    for (i, s) in list.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(s.page.as_str());
        out.push(' ');
        if counts {
            out.push_str(&(s.score as u64).to_string());
        } else {
            out.push_str(&format!("{:?}", s.score));
        }
    }
    out
}

fn parse_list(key: &str, value: &str) -> Result<Vec<ScoredPage>, StoreError> {
    let mut it = value.split_ascii_whitespace();
    let mut out = Vec::new();
    while let Some(p) = it.next() {
        let score = it
            .next()
            .ok_or_else(|| corrupt(key, "a page without a score"))?;
        out.push(ScoredPage {
            page: page(key, p)?,
            score: number(key, score)?,
        });
    }
    Ok(out)
}

fn parse_user(key: &str, value: &str) -> Result<UserRecord, StoreError> {
    serde_json::from_str(value).map_err(|e| corrupt(key, e.to_string()))
}

fn user_value(rec: &UserRecord) -> Result<String, StoreError> {
    serde_json::to_string(rec).map_err(|e| StoreError::InvalidBatch(e.to_string()))
}

/// `cmd <head…> item item …` in commands of at most [`PER_CMD`] items. An item may be a
/// tuple (a field and its value, a score and its member): it is written as its parts.
fn chunked_cmds<T: redis::ToRedisArgs>(
    out: &mut Vec<Cmd>,
    cmd: &str,
    head: &[&str],
    items: impl IntoIterator<Item = T>,
) {
    let mut c: Option<Cmd> = None;
    let mut n = 0;
    for item in items {
        c.get_or_insert_with(|| {
            let mut c = redis::cmd(cmd);
            c.arg(head);
            c
        })
        .arg(item);
        n += 1;
        if n == PER_CMD {
            out.extend(c.take());
            n = 0;
        }
    }
    out.extend(c);
}

fn from_value<T: redis::FromRedisValue>(v: Value) -> Result<T, StoreError> {
    redis::from_redis_value(v).map_err(|e| StoreError::Redis(e.into()))
}

/// A server reply that is an error, anywhere in a transaction's results.
fn first_error(v: &Value) -> Option<StoreError> {
    match v {
        Value::ServerError(e) => Some(StoreError::Redis(e.clone().into())),
        Value::Array(items) => items.iter().find_map(first_error),
        _ => None,
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
            conn,
            cluster: matches!(sync_client, SyncClient::Cluster(_)),
            sync_client,
            guarded_script: Script::new(GUARDED_WRITES),
            forward_script: Script::new(FORWARD_USERS),
            partitions_cache: Mutex::new(None),
            writers: Mutex::new(HashMap::new()),
            token_id,
            token_seq: AtomicU64::new(0),
        };
        store.ping().await?;
        if store.cluster {
            store.load_scripts().await?;
        }
        store.check_layout().await?;
        Ok(store)
    }

    /// Claims a fresh prefix for this layout, or checks the layout of the state under it.
    async fn check_layout(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
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

    /// Every key matching `pattern`, by `SCAN` (a key may come twice); on a cluster,
    /// of every primary (a `SCAN` walks one node's keys).
    async fn scan(&self, pattern: &str) -> Result<Vec<String>, StoreError> {
        let mut keys = Vec::new();
        match &self.conn {
            Conn::Single(c) => {
                scan_node(pattern, &mut keys, |cmd| {
                    let mut c = c.clone();
                    async move { c.send_packed_command(&cmd).await }
                })
                .await?;
            }
            Conn::Cluster(c) => {
                let mut conn = c.clone();
                let nodes: String = redis::cmd("CLUSTER")
                    .arg("NODES")
                    .query_async(&mut conn)
                    .await?;
                for (host, port) in primaries(&nodes) {
                    let routing =
                        RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress { host, port });
                    scan_node(pattern, &mut keys, |cmd| {
                        let (mut c, routing) = (c.clone(), routing.clone());
                        async move { c.route_command(cmd, routing).await }
                    })
                    .await?;
                }
            }
        }
        Ok(keys)
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

    /// Every key under the prefix (the prefix cut off) with its value as text: strings
    /// as they are, hashes and sets sorted, sorted sets in rank order with their scores.
    /// Left out: the partition writers' tokens (`tok`), which name who wrote last, not
    /// what. Key lifetimes (the wall-clock user TTL) are not part of it.
    async fn dump_keys(&self) -> Result<BTreeMap<String, String>, StoreError> {
        let prefix = self.keys.prefix();
        let mut keys = self.scan(&format!("{prefix}*")).await?;
        keys.sort();
        keys.dedup();
        let types: Vec<String> = self
            .query_all(
                keys.iter()
                    .map(|k| redis::cmd("TYPE").arg(k).to_owned())
                    .collect(),
            )
            .await?;
        let reads = keys
            .iter()
            .zip(&types)
            .map(|(k, t)| match t.as_str() {
                "hash" => redis::cmd("HGETALL").arg(k).to_owned(),
                "zset" => redis::cmd("ZRANGE")
                    .arg(k)
                    .arg(0)
                    .arg(-1)
                    .arg("WITHSCORES")
                    .to_owned(),
                "set" => redis::cmd("SMEMBERS").arg(k).to_owned(),
                _ => redis::cmd("GET").arg(k).to_owned(),
            })
            .collect();
        let values: Vec<Value> = self.query_all(reads).await?;
        let mut out = BTreeMap::new();
        for ((key, t), v) in keys.iter().zip(&types).zip(values) {
            let text = match t.as_str() {
                "hash" => {
                    let mut h: Vec<(String, String)> = from_value::<HashMap<String, String>>(v)?
                        .into_iter()
                        .filter(|(f, _)| f != "tok")
                        .collect();
                    h.sort();
                    h.iter()
                        .map(|(f, v)| format!("{f}={v}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                }
                "set" => {
                    let mut m: Vec<String> = from_value(v)?;
                    m.sort();
                    m.join(" ")
                }
                "zset" => {
                    let m: Vec<(String, String)> = from_value(v)?;
                    m.iter()
                        .map(|(m, s)| format!("{m}={s}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                }
                _ => from_value::<Option<String>>(v)?.unwrap_or_default(),
            };
            out.insert(key[prefix.len()..].to_owned(), format!("{t}: {text}"));
        }
        Ok(out)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Option<(Instant, Vec<i32>)>> {
        self.partitions_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn lock_writers(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<i32, Arc<tokio::sync::Mutex<Writer>>>> {
        self.writers.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn writer(&self, partition: i32) -> Arc<tokio::sync::Mutex<Writer>> {
        self.lock_writers().entry(partition).or_default().clone()
    }

    async fn load_scripts(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        for s in [&self.guarded_script, &self.forward_script] {
            s.prepare_invoke().load_async(&mut conn).await?;
        }
        Ok(())
    }

    /// Runs independent commands: one pipeline on a single server; on a cluster, where a
    /// pipeline must stay on one slot, each command on its own, concurrently.
    async fn query_all<T: redis::FromRedisValue + Send>(
        &self,
        cmds: Vec<Cmd>,
    ) -> Result<Vec<T>, StoreError> {
        if cmds.is_empty() {
            return Ok(Vec::new());
        }
        if !self.cluster {
            let mut pipe = redis::pipe();
            for c in cmds {
                pipe.add_command(c);
            }
            let mut conn = self.conn.clone();
            return Ok(pipe.query_async(&mut conn).await?);
        }
        futures::future::try_join_all(cmds.into_iter().map(|c| {
            let mut conn = self.conn.clone();
            async move { Ok::<T, StoreError>(c.query_async(&mut conn).await?) }
        }))
        .await
    }

    /// `HGET meta next` of one partition.
    fn next_cmd(&self, partition: i32) -> Cmd {
        redis::cmd("HGET")
            .arg(self.keys.meta(partition))
            .arg("next")
            .to_owned()
    }

    fn next_token(&self) -> String {
        format!(
            "{:016x}-{}",
            self.token_id,
            self.token_seq.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// Reads a partition's whole state. The meta hash is read first and last; a writer in
    /// between (its token changed) means reading again.
    async fn load_partition<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        partition: i32,
    ) -> Result<Held, StoreError> {
        let meta_key = self.keys.meta(partition);
        for _ in 0..MAX_ATTEMPTS {
            let mut pipe = redis::pipe();
            pipe.cmd("HGETALL").arg(&meta_key);
            pipe.cmd("ZRANGE")
                .arg(self.keys.bucket_index(partition))
                .arg(0)
                .arg(-1);
            pipe.cmd("HGETALL").arg(self.keys.trending(partition));
            pipe.cmd("HGETALL").arg(self.keys.sessions(partition));
            pipe.cmd("HGETALL").arg(self.keys.covisit_times(partition));
            #[allow(clippy::type_complexity)]
            let (meta, buckets, trending, sessions, cv_times): (
                HashMap<String, String>,
                Vec<i64>,
                HashMap<String, String>,
                HashMap<String, String>,
                HashMap<String, String>,
            ) = pipe.query_async(conn).await?;
            let get = |f: &str| -> Result<Option<i64>, StoreError> {
                meta.get(f).map(|v| number(&meta_key, v)).transpose()
            };
            let mut st = PartState {
                next: get("next")?,
                wm: get("wm")?,
                t0: get("t0")?,
                events: get("events")?.unwrap_or(0).max(0) as u64,
                ..PartState::default()
            };
            let tok = meta.get("tok").cloned();

            let cv_pages: Vec<&String> = cv_times.keys().collect();
            let mut pipe = redis::pipe();
            for b in &buckets {
                pipe.cmd("HGETALL").arg(self.keys.bucket(partition, *b));
            }
            for p in &cv_pages {
                pipe.cmd("GET").arg(self.keys.covisit(partition, p));
            }
            pipe.cmd("HGET").arg(&meta_key).arg("tok");
            let mut vals: Vec<Value> = pipe.query_async(conn).await?;
            let tok_after: Option<String> = from_value(vals.pop().unwrap_or(Value::Nil))?;
            if tok_after != tok {
                continue;
            }
            let mut vals = vals.into_iter();
            for b in &buckets {
                let key = self.keys.bucket(partition, *b);
                let h: HashMap<String, String> = from_value(vals.next().unwrap_or(Value::Nil))?;
                let counts = st.buckets.entry(*b).or_default();
                for (p, c) in h {
                    counts.insert(page(&key, &p)?, number(&key, &c)?);
                }
            }
            for p in cv_pages {
                let key = self.keys.covisit(partition, p);
                let v: Option<String> = from_value(vals.next().unwrap_or(Value::Nil))?;
                let next = match v {
                    Some(v) => parse_list(&key, &v)?
                        .into_iter()
                        .map(|s| (s.page, s.score as u64))
                        .collect(),
                    None => Default::default(),
                };
                let a = page(&key, p)?;
                st.covisit_last
                    .insert(a.clone(), number(&key, &cv_times[p])?);
                st.covisit.insert(a, next);
            }
            let key = self.keys.trending(partition);
            for (p, v) in trending {
                st.trending.insert(page(&key, &p)?, number(&key, &v)?);
            }
            let key = self.keys.sessions(partition);
            for (u, v) in sessions {
                let mut it = v.splitn(3, ' ');
                let (Some(ts), Some(pg)) = (it.next(), it.next()) else {
                    return Err(corrupt(&key, format!("session `{v}`")));
                };
                let user = UserId::parse(&u).map_err(|e| corrupt(&key, e.to_string()))?;
                st.sessions.insert(
                    user,
                    (
                        number(&key, ts)?,
                        page(&key, pg)?,
                        it.next().unwrap_or("").to_owned(),
                    ),
                );
            }
            st.derive_windows(&self.cfg, &self.windows);
            return Ok(Held {
                tok,
                state: st,
                users: HashMap::new(),
            });
        }
        Err(StoreError::InvalidBatch(format!(
            "partition {partition} kept changing while it was read"
        )))
    }

    /// The writes that store `st` after a step that made `ch`, ending with the meta hash.
    fn partition_writes(
        &self,
        partition: i32,
        st: &PartState,
        ch: &Changes,
        tok: &str,
    ) -> Vec<Cmd> {
        let k = &self.keys;
        let mut out = Vec::new();
        let n = self.cfg.top_list_len;
        if st.events > 0 {
            // Bucket counts.
            let mut by_bucket: BTreeMap<i64, Vec<&PageId>> = BTreeMap::new();
            for (b, p) in &ch.bucket_counts {
                by_bucket.entry(*b).or_default().push(p);
            }
            for (b, pages) in &by_bucket {
                let counts = &st.buckets[b];
                chunked_cmds(
                    &mut out,
                    "HSET",
                    &[&k.bucket(partition, *b)],
                    pages.iter().map(|p| (p.as_str(), counts[*p])),
                );
            }
            chunked_cmds(
                &mut out,
                "ZADD",
                &[&k.bucket_index(partition)],
                by_bucket.keys().map(|b| (*b, *b)),
            );
            chunked_cmds(
                &mut out,
                "UNLINK",
                &[],
                ch.expired_buckets.iter().map(|b| k.bucket(partition, *b)),
            );
            chunked_cmds(
                &mut out,
                "ZREM",
                &[&k.bucket_index(partition)],
                ch.expired_buckets.iter(),
            );
            // Top lists.
            for (i, w) in self.windows.iter().enumerate() {
                let key = k.window_top(partition, &w.label());
                out.push(
                    redis::cmd("SET")
                        .arg(key)
                        .arg(list_value(&st.top_window(i, n), true))
                        .to_owned(),
                );
            }
            // Trending.
            let tr = k.trending(partition);
            if ch.rebased {
                out.push(redis::cmd("UNLINK").arg(&tr).to_owned());
                chunked_cmds(
                    &mut out,
                    "HSET",
                    &[&tr],
                    st.trending
                        .iter()
                        .map(|(p, v)| (p.as_str(), format!("{v:?}"))),
                );
            } else {
                chunked_cmds(
                    &mut out,
                    "HSET",
                    &[&tr],
                    ch.trending_set
                        .iter()
                        .map(|p| (p.as_str(), format!("{:?}", st.trending[p]))),
                );
                chunked_cmds(
                    &mut out,
                    "HDEL",
                    &[&tr],
                    ch.trending_removed.iter().map(PageId::as_str),
                );
            }
            out.push(
                redis::cmd("SET")
                    .arg(k.trending_top(partition))
                    .arg(list_value(&st.top_trending(n), false))
                    .to_owned(),
            );
            // Sessions.
            let sess = k.sessions(partition);
            chunked_cmds(
                &mut out,
                "HSET",
                &[&sess],
                ch.sessions_set.iter().filter_map(|u| {
                    let (ts, p, sid) = st.sessions.get(u)?;
                    Some((u.as_str(), format!("{ts} {p} {sid}")))
                }),
            );
            chunked_cmds(
                &mut out,
                "HDEL",
                &[&sess],
                ch.sessions_removed.iter().map(UserId::as_str),
            );
            // "Read next".
            let times = k.covisit_times(partition);
            for a in &ch.covisit_set {
                if let Some(next) = st.covisit.get(a) {
                    let list = top_n(next.iter().map(|(b, c)| (b, *c as f64)), next.len());
                    out.push(
                        redis::cmd("SET")
                            .arg(k.covisit(partition, a.as_str()))
                            .arg(list_value(&list, true))
                            .to_owned(),
                    );
                }
            }
            chunked_cmds(
                &mut out,
                "HSET",
                &[&times],
                ch.covisit_set
                    .iter()
                    .filter_map(|a| Some((a.as_str(), *st.covisit_last.get(a)?))),
            );
            chunked_cmds(
                &mut out,
                "UNLINK",
                &[],
                ch.covisit_removed
                    .iter()
                    .map(|a| k.covisit(partition, a.as_str())),
            );
            chunked_cmds(
                &mut out,
                "HDEL",
                &[&times],
                ch.covisit_removed.iter().map(PageId::as_str),
            );
        }
        let mut meta = redis::cmd("HSET");
        meta.arg(k.meta(partition))
            .arg("tok")
            .arg(tok)
            .arg("events")
            .arg(st.events);
        if let Some(next) = st.next {
            meta.arg("next").arg(next);
        }
        if let (Some(wm), Some(t0)) = (st.wm, st.t0) {
            meta.arg("wm").arg(wm).arg("t0").arg(t0);
        }
        out.push(meta);
        out
    }

    /// Applies the partition's part of a batch to `held`: the partition's writes (new
    /// offset and token last), the idempotent writes elsewhere, and the outcome.
    fn partition_step(
        &self,
        batch: &PartitionBatch,
        total: usize,
        held: &mut Held,
        delta: &BatchDelta,
        tok: &str,
    ) -> Result<(Vec<Cmd>, Vec<Cmd>, ApplyOutcome), StoreError> {
        let p = batch.partition;
        let (res, ch) = held
            .state
            .apply(&delta.partition, &batch.events, &self.cfg, &self.windows);
        if res != PartitionApply::Applied {
            return Err(StoreError::InvalidBatch(format!(
                "partition {p} moved while applying ({res:?})"
            )));
        }
        let partition = self.partition_writes(p, &held.state, &ch, tok);
        let mut other = Vec::new();
        if !delta.first_seen.is_empty() {
            let seen = self.keys.seen();
            // `ZADD key LT …`: first-seen times only go down.
            chunked_cmds(
                &mut other,
                "ZADD",
                &[&seen, "LT"],
                delta.first_seen.iter().map(|(pg, ts)| (*ts, pg.as_str())),
            );
            other.push(
                redis::cmd("ZREMRANGEBYRANK")
                    .arg(&seen)
                    .arg(0)
                    .arg(-(self.cfg.max_items as i64 + 1))
                    .to_owned(),
            );
        }
        other.push(
            redis::cmd("SADD")
                .arg(self.keys.partitions())
                .arg(p)
                .to_owned(),
        );
        let outcome = ApplyOutcome {
            applied: batch.events.len(),
            duplicates: total - batch.events.len(),
            next_offset: batch.end,
        };
        Ok((partition, other, outcome))
    }

    /// Reads the partition's `next` and `tok`, and its whole state if this store's copy
    /// is not of them. `None`: the copy was (re)loaded, try again.
    async fn check_held<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        held: &mut Option<Held>,
        partition: i32,
        seen: Option<i64>,
        watch: bool,
    ) -> Result<Option<Option<i64>>, StoreError> {
        let meta = self.keys.meta(partition);
        let mut pipe = redis::pipe();
        if watch {
            pipe.cmd("WATCH").arg(&meta).ignore();
        }
        pipe.cmd("HMGET").arg(&meta).arg("next").arg("tok");
        let exists = redis::cmd("EXISTS").arg(self.keys.layout()).to_owned();
        // On a cluster the marker has a slot of its own: not in the pipeline.
        let ((next, tok), marker): ((Option<i64>, Option<String>), bool) = if self.cluster {
            let (head,): ((Option<i64>, Option<String>),) = pipe.query_async(conn).await?;
            (head, exists.query_async(conn).await?)
        } else {
            pipe.add_command(exists);
            pipe.query_async(conn).await?
        };
        // `next` only ever grows, and the marker is claimed at connect: either gone means
        // the data went, and writing now would claim offsets the store does not hold.
        if !marker || seen.is_some_and(|s| next.is_none_or(|n| n < s)) {
            if watch {
                let _ = redis::cmd("UNWATCH").exec_async(conn).await;
            }
            return Err(StoreError::StoreLost {
                partition,
                seen,
                stored: next,
                marker_missing: !marker,
            });
        }
        if held
            .as_ref()
            .is_some_and(|h| h.state.next == next && h.tok == tok)
        {
            return Ok(Some(next));
        }
        if watch {
            redis::cmd("UNWATCH").exec_async(conn).await?;
        }
        *held = Some(self.load_partition(conn, partition).await?);
        Ok(None)
    }

    /// Reads the records of `delta`'s users that `held` does not have (or whose key's
    /// TTL this store set so long ago that Redis may have expired it), in one round trip
    /// on one server, and keeps them.
    async fn hold_missing_users(
        &self,
        held: &mut Held,
        delta: &BatchDelta,
        partition: i32,
    ) -> Result<(), StoreError> {
        let ttl = self.user_ttl();
        let missing: Vec<&UserId> = delta
            .users
            .iter()
            .map(|d| &d.user)
            .filter(|u| {
                held.users.get(*u).is_none_or(|c| {
                    ttl.zip(c.ttl_set)
                        .is_some_and(|(ttl, at)| at.elapsed() >= ttl.mul_f64(0.9))
                })
            })
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let values: Vec<Option<String>> = self
            .query_all(
                missing
                    .iter()
                    .map(|u| {
                        redis::cmd("HGET")
                            .arg(self.keys.user(u.as_str()))
                            .arg(partition)
                            .to_owned()
                    })
                    .collect(),
            )
            .await?;
        for (u, v) in missing.into_iter().zip(values) {
            let rec = v
                .map(|v| {
                    serde_json::from_str(&v)
                        .map_err(|e| corrupt(&self.keys.user(u.as_str()), e.to_string()))
                })
                .transpose()?;
            held.users
                .insert(u.clone(), CachedUser { rec, ttl_set: None });
        }
        Ok(())
    }

    /// The wall-clock user TTL, when there is one.
    fn user_ttl(&self) -> Option<Duration> {
        let ms = self.cfg.user_ttl_ms();
        (ms > 0).then(|| Duration::from_millis(ms as u64))
    }

    /// Applies each user's delta to the record `held` has (by the offset rules: skipped,
    /// whole, or per event). The users that changed, each with its new record (JSON), its
    /// offset, and whether its key's TTL is to be set: on the first write after a read
    /// and then once per tenth of the TTL (an idle user's state lives 90 to 100 % of
    /// it), which spares a command per user and batch.
    fn user_updates(
        &self,
        batch: &PartitionBatch,
        delta: &BatchDelta,
        held: &mut Held,
    ) -> Result<Vec<UserWrite>, StoreError> {
        let caps = Caps::of(&self.cfg);
        let ttl = self.user_ttl();
        let now = Instant::now();
        let mut out = Vec::with_capacity(delta.users.len());
        for d in &delta.users {
            let cached = held.users.entry(d.user.clone()).or_insert(CachedUser {
                rec: None,
                ttl_set: None,
            });
            let rec = &mut cached.rec;
            let changed = match UserRecord::apply(rec, d, caps) {
                UserApply::Applied => true,
                UserApply::Duplicate => false,
                UserApply::Partial => self.apply_per_event(rec, batch, &d.user),
            };
            let Some(r) = rec.as_ref().filter(|_| changed) else {
                if cached.ttl_set.is_none() {
                    // Read, not written: its TTL is unknown, so it is not kept.
                    held.users.remove(&d.user);
                }
                continue;
            };
            let set_ttl = ttl.is_some_and(|ttl| {
                cached
                    .ttl_set
                    .is_none_or(|at| now.duration_since(at) >= ttl / 10)
            });
            if set_ttl || ttl.is_none() {
                cached.ttl_set = Some(now);
            }
            out.push(UserWrite {
                key: self.keys.user(d.user.as_str()),
                value: user_value(r)?,
                offset: r.offset,
                set_ttl,
            });
        }
        Ok(out)
    }

    /// Applies `user`'s events of `batch` one at a time (each checked against the
    /// record's offset); whether any was new.
    fn apply_per_event(
        &self,
        rec: &mut Option<UserRecord>,
        batch: &PartitionBatch,
        user: &UserId,
    ) -> bool {
        let mut changed = false;
        for single in BatchDelta::per_event(batch, user, &self.cfg) {
            changed |= UserRecord::apply(rec, &single, Caps::of(&self.cfg)) == UserApply::Applied;
        }
        changed
    }

    /// Forgets held user records past `user_cache` (they are read again when needed).
    fn trim_users(&self, held: &mut Held) {
        if held.users.len() > self.cfg.user_cache {
            held.users.clear();
        }
    }

    /// One attempt on a single server: `WATCH` the partition's meta, read what this
    /// store does not hold yet, then write the users' records, the partition's changes
    /// and its new offset and token in one `MULTI`, which does nothing if anyone wrote
    /// the partition since the `WATCH`.
    async fn attempt_single(
        &self,
        conn: &mut MultiplexedConnection,
        held: &mut Option<Held>,
        seen: Option<i64>,
        batch: &PartitionBatch,
    ) -> Result<Attempt, StoreError> {
        let p = batch.partition;
        let Some(next) = self.check_held(conn, held, p, seen, true).await? else {
            return Ok(Attempt::Again);
        };
        let pending = match batch.pending(next) {
            Ok(p) => p,
            Err(e) => {
                // A gap: nothing was read or changed, the state stays good.
                let _ = redis::cmd("UNWATCH").exec_async(conn).await;
                return Err(e);
            }
        };
        let (b, Some(h)) = (pending, held.as_mut()) else {
            redis::cmd("UNWATCH").exec_async(conn).await?;
            return Ok(Attempt::Again);
        };
        let b = match b {
            Pending::Done(outcome) => {
                redis::cmd("UNWATCH").exec_async(conn).await?;
                return Ok(Attempt::Done(outcome));
            }
            Pending::Apply(b) => b,
        };
        let delta = BatchDelta::build(b.as_ref(), &self.cfg);
        // Read on the shared connection: a writer that changes them changes the token
        // too, which the `WATCH` above catches.
        self.hold_missing_users(h, &delta, p).await?;
        let new_tok = self.next_token();
        let stepped = self.user_updates(b.as_ref(), &delta, h).and_then(|users| {
            let (partition, other, outcome) =
                self.partition_step(b.as_ref(), batch.events.len(), h, &delta, &new_tok)?;
            Ok((users, partition, other, outcome))
        });
        let (users, partition, other, outcome) = match stepped {
            Ok(x) => x,
            Err(e) => {
                *held = None;
                let _ = redis::cmd("UNWATCH").exec_async(conn).await;
                return Err(e);
            }
        };
        h.tok = Some(new_tok);
        let ttl = self.cfg.user_ttl_ms();
        let mut tx = redis::pipe();
        tx.atomic();
        for u in &users {
            tx.cmd("HSET").arg(&u.key).arg(p).arg(&u.value).ignore();
            if u.set_ttl {
                tx.cmd("PEXPIRE").arg(&u.key).arg(ttl).ignore();
            }
        }
        for c in partition.into_iter().chain(other) {
            tx.add_command(c);
        }
        let reply: Value = tx.query_async(conn).await?;
        if matches!(reply, Value::Nil) {
            debug!(
                partition = p,
                "the partition changed meanwhile; reading again"
            );
            *held = None;
            return Ok(Attempt::Again);
        }
        if let Some(e) = first_error(&reply) {
            *held = None;
            return Err(e);
        }
        self.trim_users(h);
        Ok(Attempt::Done(outcome))
    }

    /// One attempt on a cluster: users by writes that only ever move a record forward
    /// (one script per slot), then the partition's writes guarded by its offset and
    /// token.
    async fn attempt_cluster(
        &self,
        held: &mut Option<Held>,
        seen: Option<i64>,
        batch: &PartitionBatch,
    ) -> Result<Attempt, StoreError> {
        let p = batch.partition;
        let mut conn = self.conn.clone();
        let Some(next) = self.check_held(&mut conn, held, p, seen, false).await? else {
            return Ok(Attempt::Again);
        };
        let b = match batch.pending(next)? {
            Pending::Done(outcome) => return Ok(Attempt::Done(outcome)),
            Pending::Apply(b) => b,
        };
        let Some(h) = held.as_mut() else {
            return Ok(Attempt::Again);
        };
        let delta = BatchDelta::build(b.as_ref(), &self.cfg);
        self.hold_missing_users(h, &delta, p).await?;
        let users = self.user_updates(b.as_ref(), &delta, h)?;
        self.forward_users(p, &users).await?;
        let expect = (h.state.next, h.tok.clone());
        let new_tok = self.next_token();
        let (partition, other, outcome) =
            self.partition_step(b.as_ref(), batch.events.len(), h, &delta, &new_tok)?;
        h.tok = Some(new_tok);
        // Idempotent writes on other slots go first: once the guarded write lands, a
        // crash must not be able to leave them out (a replay finds the batch applied).
        for c in other {
            let _: Value = c.query_async(&mut conn).await?;
        }
        let mut args: Vec<Vec<u8>> = vec![
            expect
                .0
                .map(|n| n.to_string())
                .unwrap_or_default()
                .into_bytes(),
            expect.1.unwrap_or_default().into_bytes(),
        ];
        for c in &partition {
            let parts: Vec<Vec<u8>> = c
                .args_iter()
                .filter_map(|a| match a {
                    redis::Arg::Simple(b) => Some(b.to_vec()),
                    _ => None,
                })
                .collect();
            args.push(parts.len().to_string().into_bytes());
            args.extend(parts);
        }
        let mut inv = self.guarded_script.prepare_invoke();
        inv.key(self.keys.meta(p));
        for a in &args {
            inv.arg(a.as_slice());
        }
        let written: i64 = inv.invoke_async(&mut conn).await?;
        if written == 0 {
            *held = None;
            return Ok(Attempt::Again);
        }
        self.trim_users(h);
        Ok(Attempt::Done(outcome))
    }

    /// Writes user records of `partition` on a cluster, grouped by slot: each only if it
    /// covers more of the partition than the stored one (a record is a function of the
    /// partition's events up to its offset, so the further one is always right). Each
    /// write sets the key's TTL.
    async fn forward_users(&self, partition: i32, users: &[UserWrite]) -> Result<(), StoreError> {
        let mut by_slot: BTreeMap<u16, Vec<&UserWrite>> = BTreeMap::new();
        for u in users {
            by_slot.entry(slot(&u.key)).or_default().push(u);
        }
        let mut cmds = Vec::new();
        for group in by_slot.into_values() {
            for chunk in group.chunks(USERS_PER_SCRIPT) {
                let mut c = redis::cmd("EVALSHA");
                c.arg(self.forward_script.get_hash()).arg(chunk.len());
                for u in chunk {
                    c.arg(&u.key);
                }
                c.arg(self.cfg.user_ttl_ms()).arg(partition);
                for u in chunk {
                    c.arg(u.offset).arg(&u.value);
                }
                cmds.push(c);
            }
        }
        let _: Vec<Value> = self.query_all(cmds).await?;
        Ok(())
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
            let r = match (&self.sync_client, self.cluster) {
                (SyncClient::Single(client), false) => {
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
                _ => self.attempt_cluster(&mut held, w.seen, batch).await,
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

    /// Reads stored lists (`GET` each key) and merges them, each scaled by its factor.
    async fn merged_lists(
        &self,
        keys: &[(String, f64)],
        k: usize,
    ) -> Result<Vec<ScoredPage>, StoreError> {
        if keys.is_empty() || k == 0 {
            return Ok(Vec::new());
        }
        let values: Vec<Option<String>> = self
            .query_all(
                keys.iter()
                    .map(|(k, _)| redis::cmd("GET").arg(k).to_owned())
                    .collect(),
            )
            .await?;
        let mut lists = Vec::with_capacity(keys.len());
        for ((key, factor), v) in keys.iter().zip(values) {
            if let Some(v) = v {
                lists.push((parse_list(key, &v)?, *factor));
            }
        }
        Ok(merge_tops(lists.into_iter(), k))
    }

    async fn metas(&self, parts: &[i32]) -> Result<Vec<(Option<i64>, Option<i64>)>, StoreError> {
        // Redis rejects an empty pipeline: a store nothing was applied to has no partitions.
        if parts.is_empty() {
            return Ok(Vec::new());
        }
        self.query_all(
            parts
                .iter()
                .map(|p| {
                    redis::cmd("HMGET")
                        .arg(self.keys.meta(*p))
                        .arg("wm")
                        .arg("t0")
                        .to_owned()
                })
                .collect(),
        )
        .await
    }
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
        let fields: Vec<(String, String)> = redis::cmd("HGETALL")
            .arg(&key)
            .query_async(&mut conn)
            .await?;
        let mut recs = Vec::with_capacity(fields.len());
        // Fields that are not a partition number (`<partition>:o`) are for writers.
        for (field, v) in fields {
            if let Ok(p) = field.parse::<i32>() {
                recs.push((p, parse_user(&key, &v)?));
            }
        }
        Ok(merged(
            user,
            recs.iter().map(|(p, r)| (*p, r)),
            Caps::of(&self.cfg),
        ))
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
            .map(|p| (self.keys.window_top(p, &label), 1.0))
            .collect();
        self.merged_lists(&keys, k).await
    }

    #[instrument(level = "debug", skip(self))]
    async fn trending(&self, k: usize) -> Result<Vec<ScoredPage>, StoreError> {
        let parts = self.cached_partitions().await?;
        let metas = self.metas(&parts).await?;
        let Some(wm) = metas.iter().filter_map(|m| m.0).max() else {
            return Ok(Vec::new());
        };
        let hl = self.cfg.half_life_ms();
        let keys: Vec<(String, f64)> = parts
            .iter()
            .zip(&metas)
            .filter_map(|(p, (_, t0))| {
                t0.map(|t0| (self.keys.trending_top(*p), decay_weight(t0, wm, hl)))
            })
            .collect();
        self.merged_lists(&keys, k).await
    }

    #[instrument(level = "debug", skip(self))]
    async fn read_next(&self, page: &PageId, k: usize) -> Result<Vec<ScoredPage>, StoreError> {
        let keys: Vec<(String, f64)> = self
            .cached_partitions()
            .await?
            .into_iter()
            .map(|p| (self.keys.covisit(p, page.as_str()), 1.0))
            .collect();
        self.merged_lists(&keys, k).await
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

    async fn next_offsets(&self, partitions: &[i32]) -> Result<Vec<Option<i64>>, StoreError> {
        if partitions.is_empty() {
            return Ok(Vec::new());
        }
        self.query_all(partitions.iter().map(|p| self.next_cmd(*p)).collect())
            .await
    }

    fn next_offsets_blocking(&self, partitions: &[i32]) -> Result<Vec<Option<i64>>, StoreError> {
        if partitions.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for p in partitions {
            pipe.add_command(self.next_cmd(*p));
        }
        let timeout = Duration::from_secs(5);
        Ok(match &self.sync_client {
            SyncClient::Single(c) => {
                let mut conn = c.get_connection_with_timeout(timeout)?;
                conn.set_read_timeout(Some(timeout))?;
                pipe.query(&mut conn)?
            }
            SyncClient::Cluster(c) => {
                // One command at a time: a cluster pipeline must stay on one slot.
                let mut conn = c.get_connection()?;
                partitions
                    .iter()
                    .map(|p| self.next_cmd(*p).query(&mut conn))
                    .collect::<Result<_, _>>()?
            }
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

    fn release_others(&self, owned: &[i32]) {
        self.lock_writers().retain(|p, _| owned.contains(p));
    }

    async fn dump(&self) -> Result<BTreeMap<String, String>, StoreError> {
        self.dump_keys().await
    }

    async fn reset_partition(&self, partition: i32) -> Result<(), StoreError> {
        let writer = self.writer(partition);
        let mut w = writer.lock().await;
        (w.held, w.seen) = (None, None);
        self.delete_matching(&format!("{}*", self.keys.partition_base(partition)))
            .await?;
        let mut conn = self.conn.clone();
        let _: Value = redis::cmd("SET")
            .arg(self.keys.layout())
            .arg(LAYOUT)
            .arg("NX")
            .query_async(&mut conn)
            .await?;
        *self.cache() = None;
        Ok(())
    }

    async fn snapshot(&self, partition: i32) -> Result<PartitionSnapshot, StoreError> {
        let mut conn = self.conn.clone();
        let held = self.load_partition(&mut conn, partition).await?;
        Ok(held.state.snapshot(partition, &self.cfg, &self.windows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_masks_passwords() {
        let show = |u: &str, c: bool| RedisTarget::parse(u, c).to_string();
        assert_eq!(
            show("redis://127.0.0.1:6379", false),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(
            show("rediss://app:s3cret@cache:6380/2", false),
            "rediss://app:***@cache:6380/2"
        );
        assert_eq!(show("redis://:s3cret@h:1", false), "redis://:***@h:1");
        assert_eq!(show("redis://s3cret@h:1", false), "redis://***@h:1");
        assert_eq!(
            show("redis://a:p@h1:1,redis://h2:2", false),
            "cluster redis://a:***@h1:1,redis://h2:2"
        );
    }
}
