//! The recommendation HTTP API of newsrec (axum).
//!
//! Users are routed per request from their LIVE features in the feature store
//! (anonymous → semi-logged → logged as their clicks arrive); the served model's shared
//! recommend path ([`newsrec_train::ModelSet::recommend`]) mixes the tier's candidates
//! with live popularity, trend, "read next" and recency, excludes read pages and fills a
//! short tier from the next. When Redis is unreachable the API keeps answering from the
//! model and an in-process popularity snapshot, flagged `"degraded": true`, and
//! recovers by itself. New model versions are picked up without a restart.
//!
//! # Layout
//! - `app`: [`Application`] (build, bind, `port()`, serve until a shutdown signal), the
//!   router and its layers, background tasks.
//! - `config`: [`ServeConfig`] and the masked [`AdminToken`].
//! - `error`: [`AppError`] (JSON error responses) and [`ServeError`] (start-up).
//! - `state`: [`AppState`], what handlers share.
//! - `store_gate`: [`StoreGate`], the feature store behind a deadline and back-off.
//! - `snapshot`: [`SnapshotCache`], live popularity read once a second; the degraded
//!   fallback and the source of the top-N gauges.
//! - `hot_reload`: [`Models`], the served model (and the versions experiments pin) and
//!   its hot reload.
//! - `experiments`: A/B experiments, the stable assignment of users to variants, and
//!   ([`experiments::stats`]) the comparison of variants `GET /experiments` reports.
//! - `tiers`: [`TierMemory`], last tier per recent user for transition counting.
//! - `query`: parsing query parameters into domain types.
//! - `routes`: one module per endpoint group.
//! - `sink`: [`EventSink`], where `POST /events` publishes, and [`Sinks`], both of the
//!   API's outputs (provided by the binary: Kafka, or the demo's in-process log).
//! - `served_log`: [`ServedLog`], every answered list with its [`newsrec_core::RecId`],
//!   published off the request path through a bounded buffer into a [`ServedSink`].
//! - `metrics`: [`ServeMetrics`] and the request-tracking middleware.
//! - `openapi`: the OpenAPI document, derived from the handlers' types (utoipa), and
//!   Swagger UI at `/docs` from assets compiled into the binary.
//! - `loadgen`: [`load`], the loopback load generator.
//! - `bench`: [`bench()`], `newsrec bench serve`: live state in Redis, the API and the
//!   load generator in one process.

mod app;
mod bench;
mod config;
mod error;
pub mod experiments;
mod hot_reload;
mod loadgen;
mod metrics;
mod openapi;
mod query;
mod routes;
mod served_log;
mod sink;
mod snapshot;
mod state;
mod store_gate;
mod tiers;

pub use app::{Application, router};
pub use bench::{BenchError, BenchOptions, BenchReport, UserMix, run as bench};
pub use config::{AdminToken, MAX_K, ServeConfig};
pub use error::{AppError, ErrorBody, ErrorDetail, ServeError};
pub use hot_reload::{Models, ReloadError, ReloadOutcome};
pub use loadgen::{LoadError, LoadPlan, LoadReport, run as load};
pub use metrics::{LATENCY_BUCKETS, ServeMetrics};
pub use query::DEFAULT_K;
pub use served_log::{CONTROL, ServedList, ServedLog, ServedLogCounts, ServedSink, new_rec_id};
pub use sink::{EventSink, PublishFuture, SinkError, Sinks};
pub use snapshot::{Snapshot, SnapshotCache};
pub use state::AppState;
pub use store_gate::{StoreGate, Unavailable};
pub use tiers::TierMemory;
