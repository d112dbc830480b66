//! `GET /popular`: the live top list of one window, from the in-process snapshot
//! (refreshed about once a second), so it costs no store round trip.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use newsrec_features::Window;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::AppError;
use crate::error::ErrorBody;
use crate::query::{PopularParams, extract, parse_k};
use crate::routes::recommend::title_url;
use crate::state::AppState;

/// One entry of the list.
#[derive(Serialize, ToSchema)]
pub struct PopularItem {
    /// The article.
    pub page: String,
    /// Clicks in the window (with `source = model`: the model's popularity score).
    pub clicks: f64,
    /// Headline, when known.
    pub title: Option<String>,
    /// Address, when known.
    pub url: Option<String>,
}

/// The response body.
#[derive(Serialize, ToSchema)]
pub struct PopularBody {
    /// The window.
    pub window: String,
    /// Whether the list comes from a stale snapshot or the model instead of the live
    /// store.
    pub degraded: bool,
    /// `live` (the feature store's window) or `model` (no live clicks in the window:
    /// the model's popularity as of its training data).
    #[schema(value_type = String, pattern = "^(live|model)$")]
    pub source: &'static str,
    /// Event time the list is as of (epoch ms), when known.
    pub watermark: Option<i64>,
    /// Most read first.
    pub items: Vec<PopularItem>,
}

/// `GET /popular?window=1h&k=10`.
#[utoipa::path(
    get,
    path = "/popular",
    summary = "Live most-read articles in a window",
    params(PopularParams),
    responses(
        (status = 200, description = "Most read first", body = PopularBody),
        (status = 400, description = "Unknown window or k out of range (`code`: `unknown_window`, `invalid_k`, `invalid_query`)", body = ErrorBody),
        (status = 503, description = "Neither the feature store nor a model is available", body = ErrorBody),
    ),
)]
#[tracing::instrument(name = "popular", skip_all)]
pub async fn popular(
    State(state): State<Arc<AppState>>,
    query: Result<Query<PopularParams>, QueryRejection>,
) -> Result<Json<PopularBody>, AppError> {
    let params = extract(query)?;
    let k = parse_k(params.k.as_deref())?;
    let window = match params.window.as_deref() {
        None => state.windows.first().copied().unwrap_or(Window::hours(1)),
        // Exactly a label the document lists (`Window::parse` would also take `6`).
        Some(raw) => state
            .windows
            .iter()
            .copied()
            .find(|w| w.label() == raw)
            .ok_or_else(|| {
                let known: Vec<String> = state.windows.iter().map(|w| w.label()).collect();
                AppError::bad_request(
                    "unknown_window",
                    format!("window must be one of {}", known.join(", ")),
                )
            })?,
    };
    let model = state.models.get();
    let snap = state.snapshot.get();
    let mut degraded = state.gate.backing_off() || state.gate.store().is_none();
    let live = snap.window(window).filter(|l| !l.is_empty());
    let source = if live.is_some() { "live" } else { "model" };
    let items: Vec<PopularItem> = match live {
        Some(list) => list
            .iter()
            .take(k)
            .map(|(page, clicks)| {
                let (title, url) = model
                    .as_deref()
                    .map_or((None, None), |m| title_url(m, page));
                PopularItem {
                    page: page.to_string(),
                    clicks: *clicks,
                    title: title.map(str::to_string),
                    url: url.map(str::to_string),
                }
            })
            .collect(),
        // Nothing live (Redis down since start-up, or no clicks in the window yet): the
        // model's popularity as of its training data.
        None => {
            degraded |= snap.taken_at.is_none();
            let Some(m) = model.as_deref() else {
                return Err(AppError::Unavailable(
                    "neither the feature store nor a model is available".into(),
                ));
            };
            m.offline_signals(None)
                .popular
                .iter()
                .take(k)
                .map(|(page, clicks)| {
                    let (title, url) = title_url(m, page);
                    PopularItem {
                        page: page.to_string(),
                        clicks: *clicks,
                        title: title.map(str::to_string),
                        url: url.map(str::to_string),
                    }
                })
                .collect()
        }
    };
    if degraded {
        state.metrics.degraded_response();
    }
    Ok(Json(PopularBody {
        window: window.label(),
        degraded,
        source,
        watermark: snap.watermark,
        items,
    }))
}
