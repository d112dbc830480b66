//! Where `POST /events` sends accepted click events. The API does not link a Kafka
//! client itself (that belongs to the ingestion side); the binary hands it an
//! [`EventSink`] backed by the ingestion crate's producer.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use newsrec_core::{ClickEvent, Retryable};

use crate::served_log::ServedSink;

/// What the API publishes to, both optional: accepted click events (`POST /events`)
/// and the served-list log.
#[derive(Clone, Default)]
pub struct Sinks {
    /// Where `POST /events` publishes; the endpoint is off without one.
    pub events: Option<Arc<dyn EventSink>>,
    /// Where served lists are logged; nothing is logged without one.
    pub served: Option<Arc<dyn ServedSink>>,
}

/// Why an event could not be published.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SinkError {
    /// The broker did not take the event in time or is unreachable.
    #[error("event log unavailable: {0}")]
    Unavailable(String),
    /// The broker refused the event for a reason retrying will not fix.
    #[error("event refused: {0}")]
    Refused(String),
}

impl Retryable for SinkError {
    fn is_retryable(&self) -> bool {
        matches!(self, SinkError::Unavailable(_))
    }
}

/// What [`EventSink::publish`] returns.
pub type PublishFuture<'a> = Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send + 'a>>;

/// A durable destination for click events, keyed by user id (so one user's events stay
/// in order on one partition).
pub trait EventSink: Send + Sync + 'static {
    /// Publishes one validated event; resolves once the log has acknowledged it.
    fn publish(&self, event: ClickEvent) -> PublishFuture<'_>;

    /// The topic events go to, named in the `POST /events` answer.
    fn topic(&self) -> &str;

    /// Where events go, for `/health/ready` (e.g. `kafka:clicks`).
    fn describe(&self) -> String;

    /// Where and how events go, for the start-up line: may name brokers and options,
    /// with secrets masked (not for `/health/ready`, which anyone may read).
    fn settings(&self) -> String {
        self.describe()
    }
}
