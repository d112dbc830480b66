//! The model endpoints: the served manifest, the evaluation history and the
//! token-guarded reload.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use newsrec_train::{EvaluationRecord, Manifest};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{AppError, ErrorBody};
use crate::hot_reload::ReloadOutcome;
use crate::state::AppState;

/// The evaluation history.
#[derive(Serialize, ToSchema)]
pub struct Evaluations {
    /// The served model version, if one is loaded.
    served_version: Option<String>,
    /// Every recorded evaluation, oldest first (the offline evaluation's records).
    #[schema(value_type = Vec<Object>)]
    evaluations: Vec<EvaluationRecord>,
}

/// What a reload did.
#[derive(Serialize, ToSchema)]
pub struct Reloaded {
    /// `loaded` or `unchanged`.
    #[schema(value_type = String, pattern = "^(loaded|unchanged)$")]
    outcome: &'static str,
    /// The version served now.
    version: String,
    /// The version served before, when a new one was loaded.
    previous: Option<String>,
}

/// The served manifest, and the memory of every loaded model.
#[derive(Serialize)]
pub struct Current {
    #[serde(flatten)]
    manifest: Manifest,
    /// Heap bytes of the served model.
    memory_bytes: u64,
    /// The versions experiments pin, loaded beside it.
    pinned: Vec<Pinned>,
}

/// A version an experiment pins.
#[derive(Serialize)]
pub struct Pinned {
    version: String,
    memory_bytes: u64,
}

/// `GET /models/current`: the manifest of the served version.
#[utoipa::path(
    get,
    path = "/models/current",
    summary = "Manifest of the model being served",
    responses(
        (status = 200, description = "The manifest (version, training data, parameters, offline metrics), the model's heap bytes (`memory_bytes`) and the versions experiments pin (`pinned`: version and memory_bytes each)", body = Object),
        (status = 503, description = "No model loaded yet", body = ErrorBody),
    ),
)]
pub async fn current(State(state): State<Arc<AppState>>) -> Result<Json<Current>, AppError> {
    let model = state
        .models
        .get()
        .ok_or_else(|| AppError::Unavailable("no model loaded yet".into()))?;
    let pinned = state
        .models
        .pinned_memory()
        .map(|(version, memory_bytes)| Pinned {
            version: version.to_owned(),
            memory_bytes,
        })
        .collect();
    Ok(Json(Current {
        manifest: model.manifest().clone(),
        memory_bytes: model.memory_bytes(),
        pinned,
    }))
}

/// `GET /evaluation/metrics`: every recorded evaluation, oldest first.
#[utoipa::path(
    get,
    path = "/evaluation/metrics",
    summary = "Offline evaluation history",
    responses((status = 200, description = "Evaluation history", body = Evaluations)),
)]
pub async fn evaluations(
    State(state): State<Arc<AppState>>,
) -> Result<Json<Evaluations>, AppError> {
    let history = state
        .models
        .evaluations()
        .await
        .map_err(AppError::Internal)?;
    let served = state.models.get().map(|m| m.version().to_string());
    Ok(Json(Evaluations {
        served_version: served,
        evaluations: history,
    }))
}

/// `POST /admin/reload` (bearer token): loads `current` from disk now.
#[utoipa::path(
    post,
    path = "/admin/reload",
    summary = "Reload the current model now",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Reloaded, or already current", body = Reloaded),
        (status = 401, description = "Missing or wrong bearer token (or none configured)", body = ErrorBody),
        (status = 503, description = "Loading failed, or the registry has no current version", body = ErrorBody),
    ),
)]
#[tracing::instrument(name = "admin_reload", skip_all)]
pub async fn reload(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Reloaded>, AppError> {
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
        ReloadOutcome::Loaded { previous, version } => Reloaded {
            outcome: "loaded",
            version,
            previous,
        },
        ReloadOutcome::Unchanged(v) | ReloadOutcome::Skipped(v) => Reloaded {
            outcome: "unchanged",
            version: v,
            previous: None,
        },
        ReloadOutcome::NoModel => {
            return Err(AppError::Unavailable(
                "the model registry has no current version".into(),
            ));
        }
    }))
}
