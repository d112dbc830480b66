//! A Prometheus target serving the online counters ([`super::ops::ONLINE_METRICS`]) with
//! every tier, the `control` variant and every position, growing on each scrape, so the
//! Online quality dashboard's queries can be checked against a live Prometheus before
//! (and besides) `newsrec consume` exporting them from attributed clicks. The values are
//! consistent: hits ≤ served, clicks by position sum to more than hits, reciprocal ranks
//! sum to at most hits.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

use super::ops::ONLINE_METRICS;

/// Scrapes answered at most (a 1 s scrape interval makes this hours).
const MAX_SCRAPES: u64 = 20_000;

/// K of the positions exported (`1`..`K`, then `other`).
const K: u64 = 10;

/// The fixture's HTTP server on a loopback port, stopped when dropped.
pub struct OnlineFixture {
    /// Where it listens (`/metrics`, or any path).
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for OnlineFixture {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl OnlineFixture {
    /// Starts serving on a free loopback port.
    pub async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            for scrape in 1..=MAX_SCRAPES {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let mut head = [0u8; 4096];
                let _ = tokio::time::timeout(Duration::from_secs(1), sock.read(&mut head)).await;
                let body = exposition(scrape);
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
                let _ = sock.shutdown().await;
            }
        });
        Ok(Self { addr, task })
    }
}

/// The exposition at the `n`-th scrape: per tier, `n × rate` lists served.
pub fn exposition(n: u64) -> String {
    let tiers = [("anonymous", 30u64), ("semi_logged", 20), ("logged", 10)];
    let [served, hits, clicks, rr] = ONLINE_METRICS;
    let mut out = String::new();
    let mut family = |name: &str, help: &str, rows: &mut dyn FnMut(&mut String)| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        rows(&mut out);
    };
    family(served, "Lists served.", &mut |o| {
        for (t, rate) in tiers {
            let _ = writeln!(
                o,
                "{served}{{tier=\"{t}\",variant=\"control\"}} {}",
                n * rate
            );
        }
    });
    family(hits, "Lists with an attributed click.", &mut |o| {
        for (t, rate) in tiers {
            let _ = writeln!(
                o,
                "{hits}{{tier=\"{t}\",variant=\"control\"}} {}",
                n * rate / 4
            );
        }
    });
    family(clicks, "Attributed clicks by position.", &mut |o| {
        for (t, rate) in tiers {
            for p in (1..=K).map(|p| p.to_string()).chain(["other".to_string()]) {
                let weight = p.parse::<u64>().map_or(1, |p| K + 1 - p);
                let v = n * rate * weight / 40;
                let _ = writeln!(
                    o,
                    "{clicks}{{tier=\"{t}\",variant=\"control\",position=\"{p}\"}} {v}"
                );
            }
        }
    });
    family(rr, "Sum of reciprocal ranks of first hits.", &mut |o| {
        for (t, rate) in tiers {
            let v = (n * rate) as f64 / 4.0 * 0.6;
            let _ = writeln!(o, "{rr}{{tier=\"{t}\",variant=\"control\"}} {v}");
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_online_series_is_exported_and_grows() {
        let (one, two) = (exposition(1), exposition(2));
        for m in ONLINE_METRICS {
            assert!(one.contains(&format!("# TYPE {m} counter")), "{m}");
        }
        assert!(one.contains("position=\"other\""));
        assert!(
            one.contains("newsrec_online_served_total{tier=\"logged\",variant=\"control\"} 10")
        );
        assert!(
            two.contains("newsrec_online_served_total{tier=\"logged\",variant=\"control\"} 20")
        );
    }
}
