//! Liveness and readiness.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

/// The liveness answer.
#[derive(Serialize, ToSchema)]
pub struct Live {
    /// Always `live`.
    status: &'static str,
}

/// The readiness answer.
#[derive(Serialize, ToSchema)]
pub struct Ready {
    /// `ready` or `not_ready`.
    status: &'static str,
    /// `ok`, or why the feature store did not answer.
    store: String,
    /// The served model version, if one is loaded.
    model: Option<String>,
    /// Where `POST /events` publishes, if anywhere.
    event_log: Option<String>,
}

/// `GET /health/live`: the process answers.
#[utoipa::path(
    get,
    path = "/health/live",
    summary = "Liveness",
    responses((status = 200, description = "The process answers", body = Live)),
)]
pub async fn live() -> Json<Live> {
    Json(Live { status: "live" })
}

/// `GET /health/ready`: the feature store answers a ping now and a model is loaded.
#[utoipa::path(
    get,
    path = "/health/ready",
    summary = "Readiness: feature store reachable and a model loaded",
    responses(
        (status = 200, description = "Ready", body = Ready),
        (status = 503, description = "Not ready", body = Ready),
    ),
)]
pub async fn ready(State(state): State<Arc<AppState>>) -> (StatusCode, Json<Ready>) {
    let store = match state.gate.probe(|s| s.ping()).await {
        Ok(()) => Ok(()),
        Err(e) => Err(e.to_string()),
    };
    let model = state.models.get().map(|m| m.version().to_string());
    let ready = store.is_ok() && model.is_some();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Ready {
            status: if ready { "ready" } else { "not_ready" },
            store: store.err().unwrap_or_else(|| "ok".to_string()),
            model,
            event_log: state.sink.as_ref().map(|s| s.describe()),
        }),
    )
}
