//! Liveness and readiness.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::state::AppState;

/// `GET /health/live`: the process answers.
pub async fn live() -> Json<Value> {
    Json(json!({"status": "live"}))
}

/// `GET /health/ready`: the feature store answers a ping now and a model is loaded.
pub async fn ready(State(state): State<Arc<AppState>>) -> (StatusCode, Json<Value>) {
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
        Json(json!({
            "status": if ready { "ready" } else { "not_ready" },
            "store": match &store { Ok(()) => "ok".to_string(), Err(e) => e.clone() },
            "model": model,
            "event_log": state.sink.as_ref().map(|s| s.describe()),
        })),
    )
}
