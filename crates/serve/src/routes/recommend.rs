//! `GET /recommendations`: the hot path.
//!
//! Per request: one store round trip for the user's live state (plus one for "read
//! next" when the user's session is still open), the popularity lists from the
//! in-process snapshot, then the shared recommend path of the model
//! ([`ModelSet::recommend`]), which routes, mixes, excludes read pages and fills short
//! tiers. Serialisation borrows from the model; nothing scales with the catalogue.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use newsrec_core::{PageId, RecId, Tier, UserAggregates, UserId, UserType};
use newsrec_features::UserState;
use newsrec_train::{LiveSignals, ModelSet, UserContext};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{AppError, ErrorBody};
use crate::query::{RecParams, extract, served_at};
use crate::served_log::{ServedList, new_rec_id};
use crate::snapshot::Snapshot;
use crate::state::AppState;

/// One recommended article.
#[derive(Serialize, ToSchema)]
#[schema(as = RecommendedItem)]
pub struct Item<'a> {
    /// The article.
    page: &'a str,
    /// Mixed score, higher first.
    score: f64,
    /// Headline, when known.
    title: Option<&'a str>,
    /// Address, when known.
    url: Option<&'a str>,
    /// Where the item came from: `cf`, `content`, `cluster`, `popular`, `trending`,
    /// `recent`, `read-next`, …
    reason: &'static str,
}

/// The response body.
#[derive(Serialize, ToSchema)]
#[schema(as = Recommendations)]
pub struct Body<'a> {
    /// This list's id: pass it on in the `rec_id` of a click on one of its items, so
    /// the click is attributed to this list.
    #[schema(value_type = String)]
    rec_id: &'a RecId,
    /// The user asked about.
    user_id: &'a str,
    /// The tier that served the user, decided from their live features.
    tier: Tier,
    /// The model version that answered.
    model_version: &'a str,
    /// The user's experiment variants (`experiment=variant`, several joined by `,`), or
    /// `control` when no experiment runs.
    variant: &'a str,
    /// Whether the feature store was unreachable (the answer then comes from the model
    /// and a recent popularity snapshot).
    degraded: bool,
    /// Best first; already-read pages are excluded and a short tier is filled from the
    /// next.
    items: Vec<Item<'a>>,
}

/// Metadata of an article as the response shows it: `None` rather than empty strings
/// for articles clicked but missing from the item files.
pub(crate) fn title_url<'m>(
    model: &'m ModelSet,
    page: &PageId,
) -> (Option<&'m str>, Option<&'m str>) {
    let non_empty = |s: &'m str| (!s.is_empty()).then_some(s);
    model.item(page).map_or((None, None), |it| {
        (non_empty(&it.title), non_empty(&it.url))
    })
}

/// `GET /recommendations?user_id=U&k=10`.
#[utoipa::path(
    get,
    path = "/recommendations",
    summary = "Recommendations for a user",
    description = "The tier is decided from the user's live features. Already-read pages are excluded; a short tier is filled from the next.",
    params(RecParams),
    responses(
        (status = 200, description = "Best first", body = Body),
        (status = 400, description = "Missing or malformed user_id, k or num_recs out of range (`code`: `missing_user_id`, `invalid_user_id`, `invalid_k`, `invalid_ts`, `invalid_query`)", body = ErrorBody),
        (status = 503, description = "No model loaded yet", body = ErrorBody),
    ),
)]
#[tracing::instrument(name = "recommendations", skip_all)]
pub async fn recommendations(
    State(state): State<Arc<AppState>>,
    query: Result<Query<RecParams>, QueryRejection>,
) -> Result<Response, AppError> {
    let req = extract(query)?.parse()?;
    let assignment = state.experiments.assign(Some(&req.user), &state.config.mix);
    let model = match assignment.model {
        Some(pinned) => state.models.pinned(pinned),
        None => state.models.get(),
    }
    .ok_or_else(|| AppError::Unavailable("no model loaded yet".into()))?;
    let snap = state.snapshot.get();
    let user = req.user.clone();
    let (live_user, mut degraded) = match state.gate.call(|s| s.user(&user)).await {
        Ok(u) => (u, false),
        Err(e) => {
            tracing::debug!(error = %e, "serving without live user features");
            (None, true)
        }
    };
    let read_next = match read_next(&state, &snap, live_user.as_ref()).await {
        Ok(list) => list,
        Err(()) => {
            degraded = true;
            Vec::new()
        }
    };
    let live = if snap.taken_at.is_some() {
        LiveSignals {
            popular: snap
                .window(state.config.live_window())
                .cloned()
                .unwrap_or_default(),
            trending: snap.trending.clone(),
            read_next,
            watermark: snap.watermark,
        }
    } else {
        // No snapshot was ever read (Redis down since start-up): the model's own
        // popularity as of its training data stands in.
        degraded = true;
        model.offline_signals(live_user.as_ref().map(|u| &u.last_page))
    };
    let ctx = context(&model, req.user, live_user);
    let recs = model.recommend(&ctx, &live, req.k, &assignment.mix);
    state.metrics.recommended(recs.tier, degraded);
    if let Some(user) = &ctx.user_id
        && let Some(previous) = state.tiers.observe(user, recs.tier)
    {
        state.metrics.tier_transition(previous, recs.tier);
    }
    let items = recs
        .items
        .iter()
        .map(|r| {
            let (title, url) = title_url(&model, &r.page);
            Item {
                page: r.page.as_str(),
                score: r.score,
                title,
                url,
                reason: r.reason.as_str(),
            }
        })
        .collect();
    let rec_id = new_rec_id();
    let body = Body {
        rec_id: &rec_id,
        user_id: ctx.user_id.as_ref().map_or("", UserId::as_str),
        tier: recs.tier,
        model_version: model.version(),
        variant: &assignment.label,
        degraded,
        items,
    };
    let bytes = serde_json::to_vec(&body).map_err(|e| AppError::Internal(e.to_string()))?;
    if let Some(log) = &state.served {
        let now = newsrec_core::time::now_ms();
        log.record(ServedList {
            rec_id,
            user_id: ctx.user_id,
            page: None,
            event_ts: served_at(req.ts, live.watermark, now),
            wall_ts: now,
            tier: Some(recs.tier),
            variant: assignment.label.into_owned(),
            model_version: model.version().to_owned(),
            pages: recs.items.iter().map(|r| r.page.clone()).collect(),
        });
    }
    Ok(([(CONTENT_TYPE, "application/json")], bytes).into_response())
}

/// "Read next" candidates after the user's last page, when their session is still open
/// at the watermark; `Err` when the store could not be asked.
async fn read_next(
    state: &AppState,
    snap: &Snapshot,
    user: Option<&UserState>,
) -> Result<Vec<(PageId, f64)>, ()> {
    let (Some(user), Some(store)) = (user, state.gate.store()) else {
        return Ok(Vec::new());
    };
    let watermark = snap.watermark.unwrap_or(user.last_ts());
    if !user.session_open(watermark, store.config().session_gap_ms()) {
        return Ok(Vec::new());
    }
    let n = state.config.mix.list_candidates;
    match state.gate.call(|s| s.read_next(&user.last_page, n)).await {
        Ok(list) => Ok(list.into_iter().map(|s| (s.page, s.score)).collect()),
        Err(e) => {
            tracing::debug!(error = %e, "serving without read-next");
            Err(())
        }
    }
}

/// The user as the model sees them. Live state decides the tier; a user the store has
/// never seen (or cannot be asked about) but whose factors the model holds is a `Logged`
/// user from the training data and keeps the logged tier.
fn context(model: &ModelSet, user: UserId, live: Option<UserState>) -> UserContext {
    match live {
        Some(u) => UserContext {
            user_id: Some(user),
            user_type: Some(u.user_type),
            aggregates: u.aggregates,
            history: u.history,
            read: u.read,
            last_page: Some(u.last_page),
        },
        None if model.knows_user(&user) => UserContext {
            user_id: Some(user),
            user_type: Some(UserType::Logged),
            aggregates: UserAggregates {
                interactions: 1,
                ..UserAggregates::default()
            },
            history: Vec::new(),
            read: Default::default(),
            last_page: None,
        },
        None => UserContext {
            user_id: Some(user),
            ..UserContext::default()
        },
    }
}
