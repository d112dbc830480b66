//! Query-string parsing for the read endpoints: every parameter arrives as text and is
//! parsed here into domain types, so handlers never see a malformed value.

use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use newsrec_core::{PageId, UserId};
use serde::Deserialize;

use crate::config::MAX_K;
use crate::error::AppError;

/// How many items a list endpoint returns when `k` is not given.
pub const DEFAULT_K: usize = 10;

/// Raw `GET /recommendations` parameters.
#[derive(Debug, Default, Deserialize)]
pub struct RecParams {
    /// The user to recommend for.
    pub user_id: Option<String>,
    /// How many items.
    pub k: Option<String>,
    /// Alias of `k` (the name the reference API used).
    pub num_recs: Option<String>,
}

/// A valid recommendation request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecRequest {
    /// The user.
    pub user: UserId,
    /// How many items, in `1..=MAX_K`.
    pub k: usize,
}

/// Raw parameters of the list endpoints (`/popular`, `/articles/{page}/similar`).
#[derive(Debug, Default, Deserialize)]
pub struct ListParams {
    /// How many items.
    pub k: Option<String>,
    /// Popularity window name (`/popular` only).
    pub window: Option<String>,
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
        let user = UserId::parse(&raw)
            .map_err(|e| AppError::bad_request("invalid_user_id", e.to_string()))?;
        let k = match (self.k, self.num_recs) {
            (Some(a), Some(b)) if a.trim() != b.trim() => {
                return Err(AppError::bad_request(
                    "invalid_k",
                    "k and num_recs disagree; give one of them",
                ));
            }
            (Some(a), _) => parse_k(Some(&a))?,
            (None, b) => parse_k(b.as_deref())?,
        };
        Ok(RecRequest { user, k })
    }
}

/// Parses `k` (absent: [`DEFAULT_K`]); it must be an integer in `1..=MAX_K`.
pub fn parse_k(raw: Option<&str>) -> Result<usize, AppError> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_K);
    };
    match raw.trim().parse::<usize>() {
        Ok(k) if (1..=MAX_K).contains(&k) => Ok(k),
        _ => Err(AppError::bad_request(
            "invalid_k",
            format!("k must be an integer in 1..={MAX_K}"),
        )),
    }
}

/// Parses a page id from the path.
pub fn parse_page(raw: &str) -> Result<PageId, AppError> {
    PageId::parse(raw).map_err(|e| AppError::bad_request("invalid_page", e.to_string()))
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
        assert_eq!(rec(Some("u1"), Some("5"), Some("6")), Err("invalid_k"));
    }
}
