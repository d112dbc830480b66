//! Operational endpoints: Prometheus metrics, the OpenAPI document, and the JSON
//! answers for unknown routes and methods. (`/docs` is Swagger UI, see `openapi`.)

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::error::AppError;
use crate::metrics::UNMATCHED_ROUTE;
use crate::state::AppState;

/// `GET /metrics`.
#[utoipa::path(
    get,
    path = "/metrics",
    summary = "Prometheus metrics",
    responses((status = 200, description = "Text exposition format", body = String, content_type = "text/plain")),
)]
pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.render(),
    )
        .into_response()
}

/// `GET /openapi.json`.
#[utoipa::path(
    get,
    path = "/openapi.json",
    summary = "This document",
    responses((status = 200, description = "OpenAPI 3.1", body = Object)),
)]
pub async fn openapi_json(State(state): State<Arc<AppState>>) -> Response {
    ([(CONTENT_TYPE, "application/json")], state.openapi.clone()).into_response()
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
