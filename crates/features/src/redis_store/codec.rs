//! How values are stored: the text of top and "read next" lists, trending scores,
//! open sessions and user records, and the decoding of each (a value that does not
//! decode is [`StoreError::Corrupt`], naming its key).
//!
//! Floats are written in their shortest exact form (`{:?}`) and read back bit for bit,
//! so a state read from Redis is the state that was written.

use newsrec_core::{PageId, UserId};
use redis::Value;

use crate::error::StoreError;
use crate::partition::SessionEnd;
use crate::user_record::UserRecord;
use crate::values::ScoredPage;

/// A stored value that does not decode.
pub(super) fn corrupt(key: &str, detail: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        key: key.to_owned(),
        detail: detail.into(),
    }
}

/// A page id stored under `key`.
pub(super) fn page(key: &str, s: &str) -> Result<PageId, StoreError> {
    PageId::parse(s).map_err(|e| corrupt(key, e.to_string()))
}

/// A number stored under `key`.
pub(super) fn number<T: std::str::FromStr>(key: &str, s: &str) -> Result<T, StoreError> {
    s.parse()
        .map_err(|_| corrupt(key, format!("`{s}` is not a number")))
}

/// A float as stored: its shortest exact form.
pub(super) fn score_value(v: f64) -> String {
    format!("{v:?}")
}

/// A top or "read next" list as stored: `page score page score …`, scores as integers
/// when they are `counts`.
pub(super) fn list_value(list: &[ScoredPage], counts: bool) -> String {
    let mut out = String::with_capacity(list.len() * 24);
    for (i, s) in list.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(s.page.as_str());
        out.push(' ');
        if counts {
            out.push_str(&(s.score as u64).to_string());
        } else {
            out.push_str(&score_value(s.score));
        }
    }
    out
}

/// A list stored by [`list_value`].
pub(super) fn parse_list(key: &str, value: &str) -> Result<Vec<ScoredPage>, StoreError> {
    let mut it = value.split_ascii_whitespace();
    let mut out = Vec::new();
    while let Some(p) = it.next() {
        let score = it
            .next()
            .ok_or_else(|| corrupt(key, "a page without a score"))?;
        out.push(ScoredPage {
            page: page(key, p)?,
            score: number(key, score)?,
        });
    }
    Ok(out)
}

/// An open session as stored in the partition's sessions hash: `ts page session_id`.
pub(super) fn session_value(s: &SessionEnd) -> String {
    format!("{} {} {}", s.ts, s.page, s.session)
}

/// A session stored by [`session_value`] for user `u`.
pub(super) fn parse_session(
    key: &str,
    u: &str,
    v: &str,
) -> Result<(UserId, SessionEnd), StoreError> {
    let mut it = v.splitn(3, ' ');
    let (Some(ts), Some(pg)) = (it.next(), it.next()) else {
        return Err(corrupt(key, format!("session `{v}`")));
    };
    let user = UserId::parse(u).map_err(|e| corrupt(key, e.to_string()))?;
    Ok((
        user,
        SessionEnd {
            ts: number(key, ts)?,
            page: page(key, pg)?,
            session: it.next().unwrap_or("").to_owned(),
        },
    ))
}

/// A user record as stored (JSON, one hash field per partition).
pub(super) fn parse_user(key: &str, value: &str) -> Result<UserRecord, StoreError> {
    serde_json::from_str(value).map_err(|e| corrupt(key, e.to_string()))
}

/// The stored JSON of a user record.
pub(super) fn user_value(rec: &UserRecord) -> Result<String, StoreError> {
    serde_json::to_string(rec).map_err(|e| StoreError::InvalidBatch(e.to_string()))
}

/// A reply as `T`.
pub(super) fn from_value<T: redis::FromRedisValue>(v: Value) -> Result<T, StoreError> {
    redis::from_redis_value(v).map_err(|e| StoreError::Redis(e.into()))
}
