//! `GET /articles/{page}/similar`: content neighbours from the model merged with live
//! co-visitation ("read next") from the store.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use newsrec_core::{PageId, RecId};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::AppError;
use crate::error::ErrorBody;
use crate::query::{SimilarParams, extract, parse_k, parse_page, parse_ts, served_at};
use crate::routes::recommend::title_url;
use crate::served_log::{CONTROL, ServedList, new_rec_id};
use crate::state::AppState;

/// One similar article.
#[derive(Serialize, ToSchema)]
pub struct SimilarItem {
    /// The article.
    pub page: String,
    /// Mixed score.
    pub score: f64,
    /// Headline, when known.
    pub title: Option<String>,
    /// Address, when known.
    pub url: Option<String>,
    /// `content` or `read-next`: the stronger contribution.
    #[schema(value_type = String, pattern = "^(content|read-next)$")]
    pub reason: &'static str,
}

/// The response body.
#[derive(Serialize, ToSchema)]
pub struct SimilarBody {
    /// This list's id, as for recommendations: a click on one of its items may carry it.
    #[schema(value_type = String)]
    pub rec_id: RecId,
    /// The article asked about.
    pub page: String,
    /// Whether live co-visitation was unavailable (the model's offline co-visitation was
    /// used instead).
    pub degraded: bool,
    /// Best first.
    pub items: Vec<SimilarItem>,
}

/// `GET /articles/{page}/similar?k=10`.
#[utoipa::path(
    get,
    path = "/articles/{page}/similar",
    summary = "Articles similar to one (content and co-visitation)",
    params(
        ("page" = inline(PageId), Path, description = "The article"),
        SimilarParams,
    ),
    responses(
        (status = 200, description = "Best first", body = SimilarBody),
        (status = 400, description = "Malformed page or k out of range (`code`: `invalid_page`, `invalid_k`, `invalid_ts`, `invalid_query`)", body = ErrorBody),
        (status = 404, description = "The page is neither in the catalogue nor in live co-visitation (`code`: `unknown_page`)", body = ErrorBody),
        (status = 503, description = "No model loaded yet", body = ErrorBody),
    ),
)]
#[tracing::instrument(name = "similar", skip_all)]
pub async fn similar(
    State(state): State<Arc<AppState>>,
    Path(raw): Path<String>,
    query: Result<Query<SimilarParams>, QueryRejection>,
) -> Result<Json<SimilarBody>, AppError> {
    let page = parse_page(&raw)?;
    let params = extract(query)?;
    let k = parse_k(params.k.as_deref())?;
    let reader_ts = parse_ts(params.ts.as_deref())?;
    let model = state
        .models
        .get()
        .ok_or_else(|| AppError::Unavailable("no model loaded yet".into()))?;
    let content: Vec<(PageId, f64)> = model
        .similar(&page, k)
        .into_iter()
        .map(|r| (r.page, r.score))
        .collect();
    let mut degraded = false;
    let snap = state.snapshot.get();
    let covisit: Vec<(PageId, f64)> = if snap.taken_at.is_some() && snap.watermark.is_none() {
        // The store is reachable and nothing was applied to it yet: no co-visitation.
        Vec::new()
    } else {
        match state.gate.call(|s| s.read_next(&page, k)).await {
            Ok(list) => list.into_iter().map(|s| (s.page, s.score)).collect(),
            Err(_) => {
                degraded = true;
                model.offline_signals(Some(&page)).read_next
            }
        }
    };
    if model.item(&page).is_none() && covisit.is_empty() {
        return Err(AppError::not_found(
            "unknown_page",
            format!("page {page} is neither in the catalogue nor in live co-visitation"),
        ));
    }
    if degraded {
        state.metrics.degraded_response();
    }
    let merged = merge(&page, &content, &covisit, k);
    let rec_id = new_rec_id();
    if let Some(log) = &state.served {
        let now = newsrec_core::time::now_ms();
        log.record(ServedList {
            rec_id: rec_id.clone(),
            user_id: None,
            page: Some(page.clone()),
            event_ts: served_at(reader_ts, snap.watermark, now),
            wall_ts: now,
            tier: None,
            variant: CONTROL.into(),
            model_version: model.version().to_owned(),
            pages: merged.iter().map(|(p, _, _)| p.clone()).collect(),
        });
    }
    let items = merged
        .into_iter()
        .map(|(p, score, reason)| {
            let (title, url) = title_url(&model, &p);
            SimilarItem {
                page: p.to_string(),
                score,
                title: title.map(str::to_string),
                url: url.map(str::to_string),
                reason,
            }
        })
        .collect();
    Ok(Json(SimilarBody {
        rec_id,
        page: page.to_string(),
        degraded,
        items,
    }))
}

/// Sum of the two lists' scores, each scaled to [0, 1] by its best score, so the best
/// of either list competes on equal terms and an article in both ranks first; the page
/// itself is left out.
fn merge(
    page: &PageId,
    content: &[(PageId, f64)],
    covisit: &[(PageId, f64)],
    k: usize,
) -> Vec<(PageId, f64, &'static str)> {
    let mut acc: HashMap<&PageId, (f64, f64)> =
        HashMap::with_capacity(content.len() + covisit.len());
    let max = |l: &[(PageId, f64)]| l.iter().map(|x| x.1).fold(0.0, f64::max);
    let (mc, mv) = (max(content), max(covisit));
    for (p, s) in content.iter().filter(|(p, _)| p != page) {
        if mc > 0.0 {
            acc.entry(p).or_default().0 = s / mc;
        }
    }
    for (p, s) in covisit.iter().filter(|(p, _)| p != page) {
        if mv > 0.0 {
            acc.entry(p).or_default().1 = s / mv;
        }
    }
    let mut out: Vec<(PageId, f64, &'static str)> = acc
        .into_iter()
        .map(|(p, (c, v))| {
            let reason = if v > c { "read-next" } else { "content" };
            (p.clone(), c + v, reason)
        })
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out.truncate(k);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PageId {
        PageId::parse(s).expect("page")
    }

    #[test]
    fn merges_both_lists_without_the_page_itself() {
        let content = vec![(p("a"), 0.9), (p("b"), 0.45), (p("x"), 1.0)];
        let covisit = vec![(p("c"), 10.0), (p("b"), 10.0)];
        let out = merge(&p("x"), &content, &covisit, 10);
        let pages: Vec<&str> = out.iter().map(|x| x.0.as_str()).collect();
        assert_eq!(pages, ["b", "c", "a"]);
        assert_eq!(out[0].2, "read-next");
        assert_eq!(out[2].2, "content");
        assert_eq!(merge(&p("x"), &content, &covisit, 1).len(), 1);
        assert_eq!(merge(&p("x"), &[], &[], 5).len(), 0);
    }
}
