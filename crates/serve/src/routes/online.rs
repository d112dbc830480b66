//! `GET /evaluation/online`: online quality from the click stream, per tier and
//! variant: the counters the attribution consumer keeps in the store, and the rates
//! they give.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use newsrec_features::online::Counters;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{AppError, ErrorBody};
use crate::state::AppState;

/// Figures of one model version, or of all of them.
#[derive(Debug, Serialize, ToSchema, PartialEq)]
pub struct OnlineFigures {
    /// Lists served.
    pub served: u64,
    /// Lists with at least one attributed click.
    pub hits: u64,
    /// Clicks attributed to a list.
    pub clicks: u64,
    /// `hits / served`: HR@K of the served lists.
    pub hit_rate: f64,
    /// `clicks / served`.
    pub ctr: f64,
    /// Mean over served lists of 1 / rank of the first attributed click (0 without one).
    pub mrr: f64,
    /// Attributed clicks by position, 1 first; the last entry counts every position past
    /// the counted ones.
    pub by_position: Vec<u64>,
}

impl From<&Counters> for OnlineFigures {
    fn from(c: &Counters) -> Self {
        let per = |x: f64| {
            if c.served == 0 {
                0.0
            } else {
                x / c.served as f64
            }
        };
        Self {
            served: c.served,
            hits: c.hits,
            clicks: c.clicks,
            hit_rate: per(c.hits as f64),
            ctr: per(c.clicks as f64),
            mrr: per(c.rr_sum),
            by_position: c.by_position.clone(),
        }
    }
}

/// One tier and variant.
#[derive(Debug, Serialize, ToSchema)]
pub struct OnlineGroup {
    /// The tier.
    pub tier: String,
    /// The experiment variant.
    pub variant: String,
    /// Over every model version.
    #[serde(flatten)]
    pub figures: OnlineFigures,
    /// Per model version that served it.
    pub model_versions: BTreeMap<String, OnlineFigures>,
}

/// The answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Online {
    /// Per tier and variant, sorted.
    pub groups: Vec<OnlineGroup>,
}

/// `GET /evaluation/online`.
#[utoipa::path(
    get,
    path = "/evaluation/online",
    summary = "Online quality per tier and variant (clicks attributed to served lists)",
    responses(
        (status = 200, description = "Counters and rates per tier and variant", body = Online),
        (status = 503, description = "The feature store is unavailable", body = ErrorBody),
    ),
)]
pub async fn online(State(state): State<Arc<AppState>>) -> Result<Json<Online>, AppError> {
    let rows = state.gate.call(|store| store.online_counters()).await?;
    let mut groups: BTreeMap<(String, String), (Counters, BTreeMap<String, OnlineFigures>)> =
        BTreeMap::new();
    for (k, c) in &rows {
        let g = groups
            .entry((k.tier.clone(), k.variant.clone()))
            .or_default();
        g.0.add(c);
        g.1.insert(k.model_version.clone(), c.into());
    }
    Ok(Json(Online {
        groups: groups
            .into_iter()
            .map(|((tier, variant), (sum, model_versions))| OnlineGroup {
                tier,
                variant,
                figures: (&sum).into(),
                model_versions,
            })
            .collect(),
    }))
}
