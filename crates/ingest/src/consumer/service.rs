//! The consumer as a service: the loop, the attribution consumer (when configured) and
//! their Prometheus exporter, stopped together by
//! one shutdown signal; what `newsrec consume` runs.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use newsrec_features::FeatureStore;
use tokio::sync::watch;
use tracing::info;

use super::{ConsumeError, ConsumeSummary, ConsumerConfig};
use crate::eventlog::EventLog;
use crate::metrics::{SnapshotSource, serve_consumer_metrics};
use crate::stats::ConsumerStats;

/// Runs the consumer until `shutdown` resolves (the round in progress is finished), with
/// the exporter of its statistics on `metrics_addr` when given. The exporter listens
/// before the first poll, so an address that cannot be bound fails at start.
pub async fn run_service(
    log: Arc<dyn EventLog>,
    store: Arc<dyn FeatureStore>,
    cfg: ConsumerConfig,
    metrics_addr: Option<SocketAddr>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<ConsumeSummary, ConsumeError> {
    let stats = Arc::new(ConsumerStats::new());
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        info!("shutdown requested; finishing the current batch");
        let _ = stop.send(true);
    });
    let exporter = match metrics_addr {
        Some(addr) => Some(start_exporter(addr, &stats, stopped.clone()).await?),
        None => None,
    };
    let attribution = crate::attribution::run(
        Arc::clone(&log),
        Arc::clone(&store),
        cfg.clone(),
        Arc::clone(&stats),
        stopped.clone(),
    );
    let (summary, ()) = tokio::try_join!(super::run(log, store, cfg, stats, stopped), attribution)?;
    if let Some(task) = exporter {
        task.await
            .map_err(|e| ConsumeError::Exporter(std::io::Error::other(e)))?
            .map_err(ConsumeError::Exporter)?;
    }
    Ok(summary)
}

/// Starts the exporter and waits until it listens; it stops when `stopped` turns `true`.
async fn start_exporter(
    addr: SocketAddr,
    stats: &Arc<ConsumerStats>,
    mut stopped: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<std::io::Result<()>>, ConsumeError> {
    let source: SnapshotSource = {
        let stats = Arc::clone(stats);
        Arc::new(move || stats.snapshot())
    };
    let (bound_tx, bound_rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        serve_consumer_metrics(
            addr,
            source,
            move |a| {
                let _ = bound_tx.send(a);
            },
            async move {
                let _ = stopped.wait_for(|s| *s).await;
            },
        )
        .await
    });
    if bound_rx.await.is_err() {
        // The exporter ended before binding: report why, at start-up.
        let why = match task.await {
            Ok(Err(e)) => e,
            Ok(Ok(())) => std::io::Error::other("stopped before listening"),
            Err(e) => std::io::Error::other(e),
        };
        return Err(ConsumeError::Exporter(why));
    }
    Ok(task)
}
