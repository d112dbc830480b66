//! `POST /events`: validates a click event with the same rules the consumer applies and
//! publishes it to the clicks topic, for clients without a Kafka library.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use newsrec_core::ClickEvent;
use serde_json::{Value, json};

use crate::error::AppError;
use crate::sink::SinkError;
use crate::state::AppState;

/// Publishes one event; answers 202 once the log acknowledged it.
#[tracing::instrument(name = "events", skip_all)]
pub async fn publish(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    if let Some(ct) = headers.get(CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or_default();
        let essence = ct.split(';').next().unwrap_or_default().trim();
        if !essence.eq_ignore_ascii_case("application/json") {
            return Err(AppError::UnsupportedMediaType);
        }
    }
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::PayloadTooLarge {
                limit: state.config.max_body_bytes,
            }
        } else {
            AppError::bad_request("invalid_body", e.body_text())
        }
    })?;
    let event = ClickEvent::decode(&body).map_err(AppError::InvalidEvent)?;
    let Some(sink) = &state.sink else {
        return Err(AppError::Unavailable(
            "this instance has no event log configured (start it with --brokers)".into(),
        ));
    };
    let event_id = event.event_id.to_string();
    sink.publish(event).await.map_err(|e| match e {
        SinkError::Unavailable(_) => AppError::Unavailable(e.to_string()),
        SinkError::Refused(_) => AppError::Internal(e.to_string()),
    })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"accepted": true, "event_id": event_id, "topic": state.config.topic})),
    ))
}
