//! What the system tests share: where the real services are, names and ports no other
//! test uses, the `newsrec` binary under test, and log tails for failure messages.
//! `api`: a trained model and the API spawned in process; `ops`: compose, Prometheus
//! and Grafana files and the metric-name contract.

pub mod api;
pub mod ops;

use std::net::TcpListener;
use std::path::Path;

use rand::Rng;

/// Held by the tests that run a whole stack (the binary's pipeline, consumers, serve,
/// Prometheus): one at a time, so their deadlines never depend on another stack sharing
/// the machine's cores. The lighter tests run beside them.
static WHOLE_STACK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Waits for the machine to be free of other whole-stack tests; hold the guard for the
/// whole test.
pub async fn whole_stack() -> tokio::sync::MutexGuard<'static, ()> {
    WHOLE_STACK.lock().await
}

/// The `newsrec` binary built for this test run.
pub const BIN: &str = env!("CARGO_BIN_EXE_newsrec");

/// The shared Redis of the test run.
pub fn redis_url() -> String {
    std::env::var("NEWSREC_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// The shared Kafka-protocol broker of the test run.
pub fn brokers() -> String {
    std::env::var("NEWSREC_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// A key prefix no other test uses.
pub fn random_prefix(tag: &str) -> String {
    format!("t-{tag}-{:08x}:", rand::rng().random::<u32>())
}

/// Ten random lowercase letters, for topic, group and user names no other test uses.
pub fn random_suffix() -> String {
    let mut rng = rand::rng();
    (0..10)
        .map(|_| char::from(b'a' + rng.random_range(0..26u8)))
        .collect()
}

/// A free loopback port (bound and released; a race with another process is possible
/// but harmless in practice).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The last 40 lines of a log file, for failure messages.
pub fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
