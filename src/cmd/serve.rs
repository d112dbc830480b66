//! `newsrec serve`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use newsrec_ingest::{EventLog, KafkaLog};
use newsrec_serve::{Application, Sinks};

use super::flags::{KafkaFlags, StoreFlags, set};
use super::{LogSink, ServedLogSink, shutdown_signal};
use crate::settings::Settings;

/// `newsrec serve` flags; each overrides its key of the settings (`newsrec config
/// show`). The admin token belongs in the settings file or `NEWSREC_ADMIN_TOKEN`, never
/// on the command line.
#[derive(Args)]
pub struct ServeArgs {
    /// Model registry directory (versioned models and `current`; `[paths] models`).
    #[arg(long)]
    models: Option<PathBuf>,
    /// Refined data directory. The models carry all item metadata the API shows, so it
    /// is only checked to exist (a typo in a deployment script shows up at start).
    #[arg(long)]
    data: Option<PathBuf>,
    #[command(flatten)]
    store: StoreFlags,
    /// Kafka for `POST /events` and the served-list log (both are off without brokers).
    #[command(flatten)]
    kafka: KafkaFlags,
    /// Listen address, e.g. 0.0.0.0:8080 (port 0: any free port; `[serve] addr`).
    #[arg(long)]
    addr: Option<SocketAddr>,
}

/// Runs the API until SIGTERM or Ctrl-C.
pub fn run(a: ServeArgs, mut s: Settings) -> anyhow::Result<()> {
    set(&mut s.paths.models, a.models);
    set(&mut s.serve.addr, a.addr);
    a.store.apply(&mut s.store)?;
    a.kafka.apply(&mut s.kafka)?;
    if let Some(d) = &a.data
        && !d.is_dir()
    {
        anyhow::bail!("data directory {} does not exist", d.display());
    }
    let cfg = s.serve_config();
    cfg.validate()?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        // First, so a stop request during start-up is a graceful one.
        let stop = shutdown_signal();
        let sinks = match s.kafka.client() {
            None => Sinks::default(),
            Some(client) => {
                let served = ServedLogSink::kafka(
                    client.clone(),
                    s.kafka.served_topic(),
                    s.kafka.partitions,
                )
                .context("creating the served-list log's Kafka producer")?;
                let log = KafkaLog::new(client).context("creating the Kafka producer")?;
                let settings = format!("via {}", log.config().redacted());
                let log: Arc<dyn EventLog> = Arc::new(log);
                Sinks {
                    events: Some(Arc::new(LogSink::new(
                        Arc::clone(&log),
                        s.kafka.topic.clone(),
                        "kafka",
                        settings,
                    ))),
                    served: Some(Arc::new(served)),
                }
            }
        };
        let app = Application::build(cfg, sinks).await?;
        // Scripts and tests read the resolved address from this line.
        println!("listening on http://{}", app.local_addr());
        app.run_until_stopped(stop).await?;
        Ok(())
    })
}
