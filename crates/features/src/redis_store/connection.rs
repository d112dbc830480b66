//! Connections: where the store's Redis is ([`RedisTarget`]) and the one [`Deployment`]
//! value that tells a single server from a cluster. Everything that differs between the
//! two (pipelines, key scans, the blocking client, how a batch is committed) matches on
//! it.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{Cmd, Pipeline, RedisFuture, Value};

use super::RedisStore;
use super::codec::from_value;
use crate::checkpoint::{Offset, Partition};
use crate::error::StoreError;

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

impl Default for RedisTarget {
    /// The local server on the default port.
    fn default() -> Self {
        RedisTarget::Single("redis://127.0.0.1:6379".into())
    }
}

/// In settings, a string is one server (a comma-separated string is a cluster's seed
/// nodes) and a list is always a cluster, even of one seed.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
enum TargetRepr {
    One(String),
    Many(Vec<String>),
}

impl serde::Serialize for RedisTarget {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            RedisTarget::Single(url) => TargetRepr::One(url.clone()),
            RedisTarget::Cluster(urls) => TargetRepr::Many(urls.clone()),
        }
        .serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for RedisTarget {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let target = match TargetRepr::deserialize(d)? {
            TargetRepr::One(urls) => RedisTarget::parse(&urls, false),
            TargetRepr::Many(urls) => RedisTarget::Cluster(urls),
        };
        if target.urls().is_empty() || target.urls().iter().any(|u| u.trim().is_empty()) {
            return Err(serde::de::Error::custom("a Redis URL is empty"));
        }
        Ok(target)
    }
}

impl RedisTarget {
    /// The URL or seed URLs, as given.
    pub fn urls(&self) -> &[String] {
        match self {
            RedisTarget::Single(url) => std::slice::from_ref(url),
            RedisTarget::Cluster(urls) => urls,
        }
    }

    /// The same nodes as a cluster (`--redis-cluster` on a single seed URL).
    pub fn into_cluster(self) -> Self {
        match self {
            RedisTarget::Single(url) => RedisTarget::Cluster(vec![url]),
            cluster => cluster,
        }
    }

    /// The URLs with any password replaced by `***`, for printing settings.
    pub fn masked(&self) -> Self {
        match self {
            RedisTarget::Single(url) => RedisTarget::Single(mask_password(url)),
            RedisTarget::Cluster(urls) => {
                RedisTarget::Cluster(urls.iter().map(|u| mask_password(u)).collect())
            }
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

/// The Redis deployment the store talks to, with its shared connection (both kinds
/// reconnect on their own) and the client that opens further connections: a writer's
/// own connection on a single server (`WATCH` is per connection), blocking connections
/// for [`next_offsets_blocking`](crate::FeatureStore::next_offsets_blocking). Clones
/// are cheap handles on the same connection.
#[derive(Clone)]
pub(super) enum Deployment {
    /// One server (or a proxy): one `MULTI` per batch under `WATCH`.
    Single {
        /// The shared connection.
        conn: ConnectionManager,
        /// Opens the writers' and the blocking connections.
        client: Arc<redis::Client>,
    },
    /// Redis Cluster: a command or script per slot, the guard scripts of `cluster`.
    Cluster {
        /// The shared connection, routing each command to its slot's node.
        conn: ClusterConnection,
        /// Opens the blocking connections.
        client: Arc<ClusterClient>,
    },
}

impl Deployment {
    /// Connects to `target`.
    pub(super) async fn connect(target: &RedisTarget) -> Result<Self, StoreError> {
        Ok(match target {
            RedisTarget::Single(url) => {
                let client = redis::Client::open(url.as_str())?;
                let mgr_cfg = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(Duration::from_secs(2)))
                    .set_response_timeout(Some(Duration::from_secs(10)))
                    .set_number_of_retries(2);
                let conn = client.get_connection_manager_with_config(mgr_cfg).await?;
                Deployment::Single {
                    conn,
                    client: Arc::new(client),
                }
            }
            RedisTarget::Cluster(nodes) => {
                let client = ClusterClient::builder(nodes.iter().map(String::as_str))
                    .connection_timeout(Duration::from_secs(2))
                    .response_timeout(Duration::from_secs(10))
                    .build()?;
                let conn = client.get_async_connection().await?;
                Deployment::Cluster {
                    conn,
                    client: Arc::new(client),
                }
            }
        })
    }

    /// What the store's `Debug` shows.
    pub(super) fn name(&self) -> &'static str {
        match self {
            Deployment::Single { .. } => "single",
            Deployment::Cluster { .. } => "cluster",
        }
    }
}

impl ConnectionLike for Deployment {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Deployment::Single { conn, .. } => conn.req_packed_command(cmd),
            Deployment::Cluster { conn, .. } => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Deployment::Single { conn, .. } => conn.req_packed_commands(pipeline, offset, count),
            Deployment::Cluster { conn, .. } => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Deployment::Single { conn, .. } => conn.get_db(),
            Deployment::Cluster { conn, .. } => conn.get_db(),
        }
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

impl RedisStore {
    /// Every key matching `pattern`, by `SCAN` (a key may come twice); on a cluster,
    /// of every primary (a `SCAN` walks one node's keys).
    pub(super) async fn scan(&self, pattern: &str) -> Result<Vec<String>, StoreError> {
        let mut keys = Vec::new();
        match &self.deployment {
            Deployment::Single { conn: c, .. } => {
                scan_node(pattern, &mut keys, |cmd| {
                    let mut c = c.clone();
                    async move { c.send_packed_command(&cmd).await }
                })
                .await?;
            }
            Deployment::Cluster { conn: c, .. } => {
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

    /// Runs independent commands: one pipeline on a single server; on a cluster, where a
    /// pipeline must stay on one slot, each command on its own, concurrently.
    pub(super) async fn query_all<T: redis::FromRedisValue + Send>(
        &self,
        cmds: Vec<Cmd>,
    ) -> Result<Vec<T>, StoreError> {
        if cmds.is_empty() {
            return Ok(Vec::new());
        }
        match &self.deployment {
            Deployment::Single { .. } => {
                let mut pipe = redis::pipe();
                for c in cmds {
                    pipe.add_command(c);
                }
                let mut conn = self.conn();
                Ok(pipe.query_async(&mut conn).await?)
            }
            Deployment::Cluster { .. } => {
                futures::future::try_join_all(cmds.into_iter().map(|c| {
                    let mut conn = self.conn();
                    async move { Ok::<T, StoreError>(c.query_async(&mut conn).await?) }
                }))
                .await
            }
        }
    }

    /// The stored next offsets of `partitions`, on a blocking connection of its own.
    pub(super) fn next_offsets_sync(
        &self,
        partitions: &[Partition],
    ) -> Result<Vec<Option<Offset>>, StoreError> {
        if partitions.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for p in partitions {
            pipe.add_command(self.next_cmd(*p));
        }
        let timeout = Duration::from_secs(5);
        Ok(match &self.deployment {
            Deployment::Single { client, .. } => {
                let mut conn = client.get_connection_with_timeout(timeout)?;
                conn.set_read_timeout(Some(timeout))?;
                pipe.query(&mut conn)?
            }
            Deployment::Cluster { client, .. } => {
                // One command at a time: a cluster pipeline must stay on one slot.
                let mut conn = client.get_connection()?;
                partitions
                    .iter()
                    .map(|p| self.next_cmd(*p).query(&mut conn))
                    .collect::<Result<_, _>>()?
            }
        })
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
