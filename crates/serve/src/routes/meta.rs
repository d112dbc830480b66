//! Operational endpoints: Prometheus metrics, the OpenAPI document and docs page, and
//! the JSON answers for unknown routes and methods.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use serde_json::Value;

use crate::error::AppError;
use crate::metrics::UNMATCHED_ROUTE;
use crate::openapi;
use crate::state::AppState;

/// `GET /metrics`.
pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.render(),
    )
        .into_response()
}

/// `GET /openapi.json`.
pub async fn openapi_json(State(state): State<Arc<AppState>>) -> Json<Value> {
    Json(state.openapi.clone())
}

/// `GET /docs`.
pub async fn docs() -> Response {
    ([(CACHE_CONTROL, "no-cache")], Html(openapi::DOCS_HTML)).into_response()
}

/// Any route no handler matched: a JSON 404, counted under the `unmatched` route.
pub async fn not_found(State(state): State<Arc<AppState>>, method: Method, uri: Uri) -> AppError {
    state.metrics.count_request(
        UNMATCHED_ROUTE,
        method.as_str(),
        StatusCode::NOT_FOUND.as_str(),
    );
    AppError::not_found("unknown_route", format!("no route for {}", uri.path()))
}

/// A known route asked with a method it does not serve.
pub async fn method_not_allowed() -> AppError {
    AppError::MethodNotAllowed
}
