//! The model endpoints: the served manifest, the evaluation history and the
//! token-guarded reload.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use newsrec_train::Manifest;
use serde_json::{Value, json};

use crate::error::AppError;
use crate::models::ReloadOutcome;
use crate::state::AppState;

/// `GET /models/current`: the manifest of the served version.
pub async fn current(State(state): State<Arc<AppState>>) -> Result<Json<Manifest>, AppError> {
    let model = state
        .models
        .get()
        .ok_or_else(|| AppError::Unavailable("no model loaded yet".into()))?;
    Ok(Json(model.manifest().clone()))
}

/// `GET /evaluation/metrics`: every recorded evaluation, oldest first.
pub async fn evaluations(State(state): State<Arc<AppState>>) -> Result<Json<Value>, AppError> {
    let history = state
        .models
        .evaluations()
        .await
        .map_err(AppError::Internal)?;
    let served = state.models.get().map(|m| m.version().to_string());
    Ok(Json(
        json!({"served_version": served, "evaluations": history}),
    ))
}

/// `POST /admin/reload` (bearer token): loads `current` from disk now.
#[tracing::instrument(name = "admin_reload", skip_all)]
pub async fn reload(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, AppError> {
    let presented = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match (&state.config.admin_token, presented) {
        (Some(token), Some(p)) if token.matches(p) => {}
        _ => return Err(AppError::Unauthorized),
    }
    let outcome = state
        .models
        .reload(true, &state.metrics)
        .await
        .map_err(|e| AppError::Unavailable(e.to_string()))?;
    Ok(Json(match outcome {
        ReloadOutcome::Loaded { previous, version } => {
            json!({"outcome": "loaded", "version": version, "previous": previous})
        }
        ReloadOutcome::Unchanged(v) | ReloadOutcome::Skipped(v) => {
            json!({"outcome": "unchanged", "version": v})
        }
        ReloadOutcome::NoModel => {
            return Err(AppError::Unavailable(
                "the model registry has no current version".into(),
            ));
        }
    }))
}
