//! A small HTTP/1.1 load generator for loopback benchmarks: keep-alive connections,
//! either open-loop at a fixed rate (latency measured from each request's *scheduled*
//! send time, so a stalled server cannot hide its queueing: no coordinated omission) or
//! closed-loop as fast as the server answers (peak throughput).
//!
//! Bounded in both time and request count, so a misbehaving server cannot make a
//! benchmark run away.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Why a load run failed outright (individual failed requests are counted instead).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// No connection to the target could be opened.
    #[error("connecting to {addr}: {detail}")]
    Connect {
        /// The target.
        addr: SocketAddr,
        /// What failed.
        detail: String,
    },
    /// Nothing to request.
    #[error("the load needs at least one path and one connection")]
    Empty,
}

/// How to load the server.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// Target address.
    pub addr: SocketAddr,
    /// Request paths (with query), used round-robin from a random start per connection.
    pub paths: Arc<Vec<String>>,
    /// Keep-alive connections.
    pub connections: usize,
    /// Requests per second; `None` sends as fast as the server answers.
    pub rate: Option<f64>,
    /// Longest run time.
    pub duration: Duration,
    /// Most requests sent.
    pub max_requests: u64,
}

/// What one run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadReport {
    /// The requested rate (`None`: peak).
    pub target_rate: Option<f64>,
    /// Connections (requests in flight at most).
    pub connections: usize,
    /// Requests answered (any status).
    pub requests: u64,
    /// Answers with a non-2xx status, or transport failures.
    pub errors: u64,
    /// Answers whose body says `"degraded":true`.
    pub degraded: u64,
    /// Wall time of the run, seconds.
    pub seconds: f64,
    /// Answered requests per second.
    pub throughput: f64,
    /// Latency percentiles, microseconds.
    pub p50_us: u64,
    /// 90th percentile, µs.
    pub p90_us: u64,
    /// 99th percentile, µs.
    pub p99_us: u64,
    /// 99.9th percentile, µs.
    pub p999_us: u64,
    /// Slowest, µs.
    pub max_us: u64,
}

#[derive(Default)]
struct Tally {
    latencies: Vec<u32>,
    errors: u64,
    degraded: u64,
}

/// Runs one load and reports throughput and latency.
pub async fn run(plan: &LoadPlan) -> Result<LoadReport, LoadError> {
    if plan.paths.is_empty() || plan.connections == 0 {
        return Err(LoadError::Empty);
    }
    let mut senders = Vec::with_capacity(plan.connections);
    for _ in 0..plan.connections {
        senders.push(open(plan.addr).await?);
    }
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + plan.duration;
    let mut handles = Vec::with_capacity(plan.connections);
    for (c, sender) in senders.into_iter().enumerate() {
        let plan = plan.clone();
        let next = next.clone();
        handles.push(tokio::spawn(async move {
            connection_loop(sender, c, &plan, &next, start, deadline).await
        }));
    }
    let mut all = Tally::default();
    for h in handles {
        if let Ok(t) = h.await {
            all.latencies.extend(t.latencies);
            all.errors += t.errors;
            all.degraded += t.degraded;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    all.latencies.sort_unstable();
    let pct = |q: f64| -> u64 {
        if all.latencies.is_empty() {
            return 0;
        }
        let i = ((all.latencies.len() as f64 * q).ceil() as usize).clamp(1, all.latencies.len());
        u64::from(all.latencies[i - 1])
    };
    let requests = all.latencies.len() as u64;
    Ok(LoadReport {
        target_rate: plan.rate,
        connections: plan.connections,
        requests,
        errors: all.errors,
        degraded: all.degraded,
        seconds,
        throughput: requests as f64 / seconds.max(1e-9),
        p50_us: pct(0.50),
        p90_us: pct(0.90),
        p99_us: pct(0.99),
        p999_us: pct(0.999),
        max_us: all.latencies.last().copied().map_or(0, u64::from),
    })
}

type Sender = http1::SendRequest<Empty<Bytes>>;

async fn open(addr: SocketAddr) -> Result<Sender, LoadError> {
    let err = |e: &dyn std::fmt::Display| LoadError::Connect {
        addr,
        detail: e.to_string(),
    };
    let stream = TcpStream::connect(addr).await.map_err(|e| err(&e))?;
    stream.set_nodelay(true).map_err(|e| err(&e))?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| err(&e))?;
    tokio::spawn(async move {
        // The connection ends when the sender is dropped or the server closes it;
        // either way the loop notices through the sender.
        let _ = conn.await;
    });
    Ok(sender)
}

async fn connection_loop(
    mut sender: Sender,
    conn_index: usize,
    plan: &LoadPlan,
    next: &AtomicU64,
    start: Instant,
    deadline: Instant,
) -> Tally {
    let mut tally = Tally::default();
    let host = plan.addr.to_string();
    let paths = plan.paths.len();
    let mut cursor = conn_index.wrapping_mul(7919) % paths;
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= plan.max_requests {
            break;
        }
        // Open loop: request i is due at start + i / rate, whoever sends it.
        let due = match plan.rate {
            Some(rate) => start + Duration::from_secs_f64(i as f64 / rate),
            None => Instant::now(),
        };
        if due >= deadline || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep_until(due.into()).await;
        let path = &plan.paths[cursor];
        cursor = (cursor + 1) % paths;
        if sender.ready().await.is_err() {
            match open(plan.addr).await {
                Ok(s) => sender = s,
                Err(_) => {
                    tally.errors += 1;
                    continue;
                }
            }
        }
        let req = Request::get(path.as_str())
            .header(hyper::header::HOST, host.as_str())
            .body(Empty::<Bytes>::new());
        let Ok(req) = req else {
            tally.errors += 1;
            continue;
        };
        match sender.send_request(req).await {
            Ok(resp) => {
                let ok = resp.status().is_success();
                match resp.into_body().collect().await {
                    Ok(body) => {
                        let body = body.to_bytes();
                        let micros = due.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                        tally.latencies.push(micros);
                        if !ok {
                            tally.errors += 1;
                        } else if contains(&body, b"\"degraded\":true") {
                            tally.degraded += 1;
                        }
                    }
                    Err(_) => tally.errors += 1,
                }
            }
            Err(_) => tally.errors += 1,
        }
    }
    tally
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn measures_a_real_server_and_respects_bounds() {
        let app =
            axum::Router::new().route("/x", axum::routing::get(|| async { "{\"degraded\":true}" }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let plan = LoadPlan {
            addr,
            paths: Arc::new(vec!["/x".into(), "/missing".into()]),
            connections: 4,
            rate: Some(2_000.0),
            duration: Duration::from_secs(5),
            max_requests: 400,
        };
        let r = run(&plan).await.expect("run");
        assert_eq!(r.requests, 400);
        assert_eq!(r.errors, 200, "every /missing is a 404");
        assert_eq!(r.degraded, 200);
        assert!(r.p50_us <= r.p99_us && r.p99_us <= r.max_us);
        // 400 requests at 2,000/s take at least the 0.2 s schedule.
        assert!(r.seconds >= 0.19, "{}", r.seconds);
        let peak = run(&LoadPlan {
            rate: None,
            duration: Duration::from_millis(300),
            max_requests: u64::MAX,
            ..plan
        })
        .await
        .expect("peak");
        assert!(peak.requests > 0);
        server.abort();
    }
}
