//! Query-string parsing for the read endpoints: every parameter arrives as text and is
//! parsed here into domain types, so handlers never see a malformed value.

use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use newsrec_core::{IdError, PageId, UserId};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::config::MAX_K;
use crate::error::AppError;

/// How many items a list endpoint returns when `k` is not given.
pub const DEFAULT_K: usize = 10;

/// Raw `GET /recommendations` parameters. Every value arrives as text and is checked
/// by [`RecParams::parse`], which answers the errors with their own codes; the `param`
/// attributes publish what it checks (as literals; a test in `openapi` holds them to the
/// constants).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecParams {
    /// The user to recommend for.
    #[param(required = true, value_type = UserId, inline)]
    pub user_id: Option<String>,
    /// How many items (default 10).
    #[param(value_type = Option<u32>, nullable = false, minimum = 1, maximum = 100, default = 10)]
    pub k: Option<String>,
    /// Alias of `k` (the name the reference API used); when both are given, `k` is used.
    #[param(value_type = Option<u32>, nullable = false, minimum = 1, maximum = 100)]
    pub num_recs: Option<String>,
    /// The reader's time, in ms since the epoch: when the front end shows the list (a
    /// replay passes the click's event time). The served list is logged at the later of
    /// this and the API's watermark, never past the API's clock, so a click soon after
    /// it is attributed to it.
    #[param(value_type = Option<i64>, nullable = false, minimum = 0)]
    pub ts: Option<String>,
}

/// A valid recommendation request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecRequest {
    /// The user.
    pub user: UserId,
    /// How many items, in `1..=MAX_K`.
    pub k: usize,
    /// The reader's time (ms since the epoch), when given.
    pub ts: Option<i64>,
}

/// Raw `GET /popular` parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PopularParams {
    /// Popularity window (default: the shortest). The document lists the windows this
    /// instance keeps.
    #[param(value_type = Option<String>, nullable = false)]
    pub window: Option<String>,
    /// How many items (default 10).
    #[param(value_type = Option<u32>, nullable = false, minimum = 1, maximum = 100, default = 10)]
    pub k: Option<String>,
}

/// Raw `GET /articles/{page}/similar` parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SimilarParams {
    /// How many items (default 10).
    #[param(value_type = Option<u32>, nullable = false, minimum = 1, maximum = 100, default = 10)]
    pub k: Option<String>,
    /// The reader's time, in ms since the epoch, as for `/recommendations`.
    #[param(value_type = Option<i64>, nullable = false, minimum = 0)]
    pub ts: Option<String>,
}

/// Unwraps axum's query extraction, turning its rejection into the JSON 400.
pub fn extract<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, AppError> {
    q.map(|Query(t)| t)
        .map_err(|e| AppError::bad_request("invalid_query", e.body_text()))
}

impl RecParams {
    /// Validates the parameters.
    pub fn parse(self) -> Result<RecRequest, AppError> {
        let raw = self
            .user_id
            .ok_or_else(|| AppError::bad_request("missing_user_id", "user_id is required"))?;
        let user = parse_id(&raw, UserId::parse)
            .map_err(|e| AppError::bad_request("invalid_user_id", e))?;
        // `k` wins over its alias rather than refusing the pair: OpenAPI cannot state
        // "at most one of", so a refusal would break requests the document allows.
        // The alias is still checked so a malformed one is not silently ignored.
        let alias = parse_k(self.num_recs.as_deref())?;
        let k = match self.k {
            Some(k) => parse_k(Some(&k))?,
            None => alias,
        };
        let ts = parse_ts(self.ts.as_deref())?;
        Ok(RecRequest { user, k, ts })
    }
}

/// Parses the reader's time: plain digits that fit an `i64` (ms since the epoch).
pub fn parse_ts(raw: Option<&str>) -> Result<Option<i64>, AppError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let digits = !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit());
    match raw.parse::<i64>().ok().filter(|_| digits) {
        Some(ts) => Ok(Some(ts)),
        None => Err(AppError::bad_request(
            "invalid_ts",
            "ts must be a non-negative integer (ms since the epoch)",
        )),
    }
}

/// When a served list happened: the reader's time if given, never past `now` (a
/// front end's clock may run ahead), and never before the API's watermark.
pub fn served_at(reader: Option<i64>, watermark: Option<i64>, now: i64) -> Option<i64> {
    let reader = reader.map(|t| t.min(now));
    match (reader, watermark) {
        (Some(r), Some(w)) => Some(r.max(w)),
        (r, w) => r.or(w),
    }
}

/// Parses `k` (absent: [`DEFAULT_K`]); it must be an integer in `1..=MAX_K`, written
/// as plain digits (no sign, no spaces: what the document's `integer` means).
pub fn parse_k(raw: Option<&str>) -> Result<usize, AppError> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_K);
    };
    let digits = !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit());
    match raw.parse::<usize>().ok().filter(|_| digits) {
        Some(k) if (1..=MAX_K).contains(&k) => Ok(k),
        _ => Err(AppError::bad_request(
            "invalid_k",
            format!("k must be an integer in 1..={MAX_K}"),
        )),
    }
}

/// Parses a page id from the path.
pub fn parse_page(raw: &str) -> Result<PageId, AppError> {
    parse_id(raw, PageId::parse).map_err(|e| AppError::bad_request("invalid_page", e))
}

/// An id exactly as the document's pattern allows: the id types trim surrounding
/// whitespace (kind to CSV files and producers), which the HTTP API does not promise.
fn parse_id<T>(raw: &str, parse: fn(&str) -> Result<T, IdError>) -> Result<T, String> {
    if raw.trim() != raw {
        return Err("ids may not have surrounding whitespace".into());
    }
    parse(raw).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(
        user: Option<&str>,
        k: Option<&str>,
        n: Option<&str>,
    ) -> Result<RecRequest, &'static str> {
        RecParams {
            user_id: user.map(str::to_string),
            k: k.map(str::to_string),
            num_recs: n.map(str::to_string),
            ts: None,
        }
        .parse()
        .map_err(|e| e.code())
    }

    #[test]
    fn recommendation_params() {
        assert_eq!(rec(Some("u1"), None, None).map(|r| r.k), Ok(DEFAULT_K));
        assert_eq!(rec(Some("u1"), Some("5"), None).map(|r| r.k), Ok(5));
        assert_eq!(rec(Some("u1"), None, Some("7")).map(|r| r.k), Ok(7));
        assert_eq!(rec(Some("u1"), Some("7"), Some("7")).map(|r| r.k), Ok(7));
        assert_eq!(rec(Some("u1"), Some("100"), None).map(|r| r.k), Ok(100));
        assert_eq!(rec(None, Some("5"), None), Err("missing_user_id"));
        assert_eq!(rec(Some(""), None, None), Err("invalid_user_id"));
        assert_eq!(rec(Some("a b"), None, None), Err("invalid_user_id"));
        assert_eq!(rec(Some("u1"), Some("0"), None), Err("invalid_k"));
        assert_eq!(rec(Some("u1"), Some("101"), None), Err("invalid_k"));
        assert_eq!(rec(Some("u1"), Some("-3"), None), Err("invalid_k"));
        assert_eq!(rec(Some("u1"), Some("ten"), None), Err("invalid_k"));
        assert_eq!(rec(Some("u1"), Some("5"), Some("6")).map(|r| r.k), Ok(5));
        assert_eq!(rec(Some("u1"), Some("5"), Some("0")), Err("invalid_k"));
        assert_eq!(rec(Some("u1"), Some("+5"), None), Err("invalid_k"));
        assert_eq!(rec(Some("u1"), Some(" 5"), None), Err("invalid_k"));
        assert_eq!(rec(Some("u1"), Some(""), None), Err("invalid_k"));
        assert_eq!(rec(Some(" u1"), None, None), Err("invalid_user_id"));
    }

    #[test]
    fn reader_time() {
        let ts = |raw: &str| parse_ts(Some(raw)).map_err(|e| e.code());
        assert_eq!(parse_ts(None).map_err(|e| e.code()), Ok(None));
        assert_eq!(ts("1507000000000"), Ok(Some(1_507_000_000_000)));
        assert_eq!(ts("0"), Ok(Some(0)));
        for bad in ["", "-1", "+5", " 5", "1.5", "9223372036854775808", "soon"] {
            assert_eq!(ts(bad), Err("invalid_ts"), "{bad:?}");
        }
        // The reader's time wins over a lagging watermark, is held to the API's clock,
        // and never goes back before the watermark.
        assert_eq!(served_at(Some(50), Some(10), 100), Some(50));
        assert_eq!(served_at(Some(500), Some(10), 100), Some(100));
        assert_eq!(served_at(Some(5), Some(10), 100), Some(10));
        assert_eq!(served_at(Some(5), None, 100), Some(5));
        assert_eq!(served_at(None, Some(10), 100), Some(10));
        assert_eq!(served_at(None, None, 100), None);
    }
}
