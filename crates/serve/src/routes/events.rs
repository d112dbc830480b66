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
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{AppError, ErrorBody};
use crate::sink::SinkError;
use crate::state::AppState;

/// The answer to an accepted event.
#[derive(Serialize, ToSchema)]
pub struct Accepted {
    /// Always `true`.
    accepted: bool,
    /// The event's id.
    event_id: String,
    /// The topic it was published to.
    topic: String,
}

/// Publishes one event; answers 202 once the log acknowledged it.
#[utoipa::path(
    post,
    path = "/events",
    summary = "Publish a click event to the clicks topic",
    description = "Validated with the rules the consumer applies. Ids are trimmed of surrounding whitespace before they are checked. Fields not in the schema are ignored.",
    request_body(content = ClickEvent, content_type = "application/json"),
    responses(
        (status = 202, description = "Accepted and acknowledged by the log", body = Accepted),
        (status = 400, description = "Invalid event; `code` says why: `not_json`, `wrong_type`, `missing_field`, `bad_id`, `unknown_user_type`, `absurd_timestamp`, `bad_value`, `oversized`, `invalid_body`", body = ErrorBody),
        (status = 413, description = "Body larger than the configured limit", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 503, description = "No event log configured, or it did not acknowledge in time", body = ErrorBody),
    ),
)]
#[tracing::instrument(name = "events", skip_all)]
pub async fn publish(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Accepted>), AppError> {
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
        Json(Accepted {
            accepted: true,
            event_id,
            topic: sink.topic().to_owned(),
        }),
    ))
}
