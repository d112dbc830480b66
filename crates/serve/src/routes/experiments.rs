//! `GET /experiments`: each configured experiment's variants compared on the online
//! counters (HR@K with its 95% Wilson interval, CTR, MRR; lift and p-value against
//! control).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{AppError, ErrorBody};
use crate::experiments::stats::{ExperimentReport, reports};
use crate::state::AppState;

/// The answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExperimentsBody {
    /// Every configured experiment, in configured order.
    experiments: Vec<ExperimentReport>,
}

/// `GET /experiments`.
#[utoipa::path(
    get,
    path = "/experiments",
    summary = "A/B experiments: each variant's online quality against control",
    responses(
        (status = 200, description = "Per experiment and variant: lists served, hits, HR@K with its 95% Wilson interval, CTR, MRR, and against control the lift and a two-sided two-proportion z-test p-value", body = ExperimentsBody),
        (status = 503, description = "The feature store is unavailable", body = ErrorBody),
    ),
)]
pub async fn experiments(
    State(state): State<Arc<AppState>>,
) -> Result<Json<ExperimentsBody>, AppError> {
    let list = state.experiments.list();
    let rows = if list.is_empty() {
        Vec::new()
    } else {
        state.gate.call(|store| store.online_counters()).await?
    };
    Ok(Json(ExperimentsBody {
        experiments: reports(list, &rows),
    }))
}
