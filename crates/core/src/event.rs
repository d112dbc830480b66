//! The click event: the JSON value of a message on the `clicks` topic (key = user id).

use serde::{Deserialize, Serialize};

use crate::engagement::Engagement;
use crate::ids::{EventId, IdError, PageId, RecId, UserId};
use crate::tier::UserType;
use crate::time;

/// Largest payload accepted; anything bigger is set aside as oversized.
pub const MAX_EVENT_BYTES: usize = 16 * 1024;

/// One page view, at event time `ts`.
///
/// The schema attributes restate, as literals (the derive takes no constants), the
/// bounds [`ClickEvent::decode`] enforces; a test holds them to the constants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClickEvent {
    /// Producer-assigned id; replays derive it from (user, position in history).
    pub event_id: EventId,
    /// Who clicked.
    pub user_id: UserId,
    /// Whether the user was signed in.
    pub user_type: UserType,
    /// The article.
    pub page: PageId,
    /// Event time, epoch milliseconds, from 2000-01-01 up to (not including) 2100-01-01.
    #[schema(
        minimum = 946_684_800_000_i64,
        exclusive_maximum = 4_102_444_800_000_i64
    )]
    pub ts: i64,
    /// Reading session, when the producer knows it (co-visitation falls back to gaps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 128)]
    pub session_id: Option<String>,
    /// Clicks inside the page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = Int64, minimum = 0, maximum = 4_294_967_295_u32)]
    pub clicks: Option<u32>,
    /// Time on page, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 18_446_744_073_709_551_615_u64)]
    pub time_on_page_ms: Option<u64>,
    /// Scroll percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0)]
    pub scroll_pct: Option<f64>,
    /// Visits to the page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = Int64, minimum = 0, maximum = 4_294_967_295_u32)]
    pub page_visits: Option<u32>,
    /// The served list the click came from (`rec_id` of the recommendations answer),
    /// when the front end knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rec_id: Option<RecId>,
}

/// Why a payload is not a valid click event. The consumer sends it to the dead-letter
/// topic with [`code`](RejectReason::code) and the message text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RejectReason {
    /// Larger than [`MAX_EVENT_BYTES`].
    #[error("payload of {0} bytes exceeds {MAX_EVENT_BYTES}")]
    Oversized(usize),
    /// Not parseable JSON (or not an object).
    #[error("not a JSON object: {0}")]
    NotJson(String),
    /// A required field is absent or null.
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    /// A field has the wrong JSON type or an out-of-range number.
    #[error("wrong type: {0}")]
    WrongType(String),
    /// An id field does not parse.
    #[error("invalid id: {0}")]
    BadId(#[from] IdError),
    /// `user_type` is neither `Logged` nor `Non-Logged`.
    #[error("unknown user_type `{0}`")]
    UnknownUserType(String),
    /// `ts` is outside [`time::MIN_PLAUSIBLE_MS`, `time::MAX_PLAUSIBLE_MS`].
    #[error("absurd timestamp {0}")]
    AbsurdTimestamp(i64),
    /// An engagement value is impossible (negative or not finite).
    #[error("invalid value for `{0}`")]
    BadValue(&'static str),
}

impl RejectReason {
    /// A short, bounded label for metrics and dead-letter headers.
    pub fn code(&self) -> &'static str {
        match self {
            RejectReason::Oversized(_) => "oversized",
            RejectReason::NotJson(_) => "not_json",
            RejectReason::MissingField(_) => "missing_field",
            RejectReason::WrongType(_) => "wrong_type",
            RejectReason::BadId(_) => "bad_id",
            RejectReason::UnknownUserType(_) => "unknown_user_type",
            RejectReason::AbsurdTimestamp(_) => "absurd_timestamp",
            RejectReason::BadValue(_) => "bad_value",
        }
    }
}

/// A payload that was set aside, with where it came from; what the dead-letter topic
/// records beside the original bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RejectedEvent {
    /// [`RejectReason::code`].
    pub reason: String,
    /// [`RejectReason`]'s message.
    pub detail: String,
    /// Source topic.
    pub topic: String,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
}

/// The wire shape before validation: every field optional so a missing field is told
/// apart from a mistyped one.
#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(borrow)]
    event_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    user_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    user_type: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    page: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, deserialize_with = "integral")]
    ts: Option<i64>,
    session_id: Option<String>,
    #[serde(default, deserialize_with = "integral")]
    clicks: Option<u32>,
    #[serde(default, deserialize_with = "integral")]
    time_on_page_ms: Option<u64>,
    scroll_pct: Option<f64>,
    #[serde(default, deserialize_with = "integral")]
    page_visits: Option<u32>,
    #[serde(borrow)]
    rec_id: Option<std::borrow::Cow<'a, str>>,
}

/// An integer field, also when written with a zero fraction (`5.0`): JSON Schema's
/// `integer`, which the published document promises, admits those.
fn integral<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i64> + TryFrom<u64>,
{
    use serde::de::Error;
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    let out_of_range = || D::Error::custom(format!("invalid value: {n} is out of range"));
    if let Some(u) = n.as_u64() {
        return T::try_from(u).map(Some).map_err(|_| out_of_range());
    }
    if let Some(i) = n.as_i64() {
        return T::try_from(i).map(Some).map_err(|_| out_of_range());
    }
    match n.as_f64() {
        // Below 2^63 in magnitude, so the cast is exact for a whole number.
        Some(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => {
            T::try_from(f as i64).map(Some).map_err(|_| out_of_range())
        }
        _ => Err(D::Error::custom(format!(
            "invalid type: {n}, expected an integer"
        ))),
    }
}

impl ClickEvent {
    /// Decodes and validates a payload.
    pub fn decode(bytes: &[u8]) -> Result<Self, RejectReason> {
        if bytes.len() > MAX_EVENT_BYTES {
            return Err(RejectReason::Oversized(bytes.len()));
        }
        let wire: Wire<'_> = serde_json::from_slice(bytes).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => RejectReason::WrongType(e.to_string()),
            _ => RejectReason::NotJson(e.to_string()),
        })?;
        let event_id = EventId::parse(
            &wire
                .event_id
                .ok_or(RejectReason::MissingField("event_id"))?,
        )?;
        let user_id = UserId::parse(&wire.user_id.ok_or(RejectReason::MissingField("user_id"))?)?;
        let user_type_raw = wire
            .user_type
            .ok_or(RejectReason::MissingField("user_type"))?;
        let user_type = UserType::parse(&user_type_raw).ok_or_else(|| {
            RejectReason::UnknownUserType(user_type_raw.chars().take(64).collect())
        })?;
        let page = PageId::parse(&wire.page.ok_or(RejectReason::MissingField("page"))?)?;
        let ts = wire.ts.ok_or(RejectReason::MissingField("ts"))?;
        if !time::is_plausible(ts) {
            return Err(RejectReason::AbsurdTimestamp(ts));
        }
        if let Some(s) = wire.scroll_pct
            && (!s.is_finite() || s < 0.0)
        {
            return Err(RejectReason::BadValue("scroll_pct"));
        }
        let session_id = match wire.session_id {
            // Characters, not bytes: JSON Schema's `maxLength` counts characters, so the
            // published bound is the enforced one (128 characters are at most 512 bytes).
            Some(s) if s.chars().count() > crate::ids::MAX_ID_LEN => {
                return Err(RejectReason::BadValue("session_id"));
            }
            other => other,
        };
        let rec_id = wire.rec_id.as_deref().map(RecId::parse).transpose()?;
        Ok(ClickEvent {
            event_id,
            user_id,
            user_type,
            page,
            ts,
            session_id,
            clicks: wire.clicks,
            time_on_page_ms: wire.time_on_page_ms,
            scroll_pct: wire.scroll_pct,
            page_visits: wire.page_visits,
            rec_id,
        })
    }

    /// Encodes as the JSON payload.
    pub fn encode(&self) -> Vec<u8> {
        // Serialising a struct of strings and numbers into a Vec cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The engagement signals, with neutral defaults for missing ones.
    pub fn engagement(&self) -> Engagement {
        let d = Engagement::default();
        Engagement {
            clicks: self.clicks.unwrap_or(d.clicks),
            time_on_page_ms: self.time_on_page_ms.unwrap_or(d.time_on_page_ms),
            scroll_pct: self.scroll_pct.unwrap_or(d.scroll_pct),
            page_visits: self.page_visits.unwrap_or(d.page_visits),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> ClickEvent {
        ClickEvent {
            event_id: EventId::parse("e1").unwrap(),
            user_id: UserId::parse("u1").unwrap(),
            user_type: UserType::NonLogged,
            page: PageId::parse("c8aab885-433d-4e46-8066-479f40ba7fb2").unwrap(),
            ts: 1_657_146_417_045,
            session_id: None,
            clicks: Some(3),
            time_on_page_ms: Some(20_380),
            scroll_pct: Some(50.3),
            page_visits: None,
            rec_id: None,
        }
    }

    #[test]
    fn round_trip() {
        let e = sample();
        assert_eq!(ClickEvent::decode(&e.encode()), Ok(e.clone()));
        let from_list = ClickEvent {
            rec_id: Some(RecId::parse("r-0123abcd").unwrap()),
            ..e
        };
        assert_eq!(ClickEvent::decode(&from_list.encode()), Ok(from_list));
    }

    /// `rec_id` is optional, and an id like the others when given.
    #[test]
    fn rec_id_is_an_optional_id() {
        let json = |rec: &str| {
            format!(
                r#"{{"event_id":"e","user_id":"u","user_type":"Logged","page":"p","ts":1657146417045{rec}}}"#
            )
        };
        let e = ClickEvent::decode(json("").as_bytes()).unwrap();
        assert_eq!(e.rec_id, None);
        let e = ClickEvent::decode(json(r#","rec_id":"abc123""#).as_bytes()).unwrap();
        assert_eq!(e.rec_id.as_ref().map(RecId::as_str), Some("abc123"));
        for bad in [
            r#","rec_id":"no spaces""#,
            r#","rec_id":"""#,
            r#","rec_id":7"#,
        ] {
            let err = ClickEvent::decode(json(bad).as_bytes()).unwrap_err().code();
            assert!(err == "bad_id" || err == "wrong_type", "{bad}: {err}");
        }
    }

    #[test]
    fn integers_may_carry_a_zero_fraction() {
        let e = ClickEvent::decode(
            br#"{"event_id":"e","user_id":"u","user_type":"Logged","page":"p","ts":1657146417045.0,"clicks":2.0}"#,
        )
        .unwrap();
        assert_eq!((e.ts, e.clicks), (1_657_146_417_045, Some(2)));
        let code = |s: &str| ClickEvent::decode(s.as_bytes()).unwrap_err().code();
        for bad in [
            r#""ts":1657146417045.5"#,
            r#""ts":1657146417045,"clicks":-1"#,
            r#""ts":1657146417045,"clicks":5000000000"#,
        ] {
            let json = format!(
                r#"{{"event_id":"e","user_id":"u","user_type":"Logged","page":"p",{bad}}}"#
            );
            assert_eq!(code(&json), "wrong_type", "{json}");
        }
    }

    #[test]
    fn rejects_with_reasons() {
        let code = |s: &str| ClickEvent::decode(s.as_bytes()).unwrap_err().code();
        assert_eq!(code("not json"), "not_json");
        assert_eq!(code("[1,2]"), "wrong_type");
        assert_eq!(
            code(r#"{"user_id":"u","user_type":"Logged","page":"p","ts":1657146417045}"#),
            "missing_field"
        );
        assert_eq!(
            code(r#"{"event_id":"e","user_id":"u","user_type":"Logged","page":"p","ts":"x"}"#),
            "wrong_type"
        );
        assert_eq!(
            code(
                r#"{"event_id":"e","user_id":"u","user_type":"Guest","page":"p","ts":1657146417045}"#
            ),
            "unknown_user_type"
        );
        assert_eq!(
            code(r#"{"event_id":"e","user_id":"u","user_type":"Logged","page":"p","ts":5}"#),
            "absurd_timestamp"
        );
        assert_eq!(
            code(
                r#"{"event_id":"e","user_id":"a b","user_type":"Logged","page":"p","ts":1657146417045}"#
            ),
            "bad_id"
        );
        assert_eq!(
            code(
                r#"{"event_id":"e","user_id":"u","user_type":"Logged","page":"p","ts":1657146417045,"scroll_pct":-1}"#
            ),
            "bad_value"
        );
        assert_eq!(
            code(
                r#"{"event_id":"e","user_id":"u","user_type":"Logged","page":"p","ts":1657146417045,"clicks":-1}"#
            ),
            "wrong_type"
        );
        let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(MAX_EVENT_BYTES));
        assert_eq!(code(&big), "oversized");
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = ClickEvent::decode(&bytes);
        }

        #[test]
        fn encode_decode_round_trip(
            user in "[a-f0-9]{64}",
            ts in time::MIN_PLAUSIBLE_MS..time::MAX_PLAUSIBLE_MS,
            clicks in proptest::option::of(any::<u32>()),
            t in proptest::option::of(any::<u64>()),
            scroll in proptest::option::of(0.0f64..1e6),
            logged in any::<bool>(),
        ) {
            let e = ClickEvent {
                event_id: EventId::parse(&format!("{user}:1")).unwrap(),
                user_id: UserId::parse(&user).unwrap(),
                user_type: if logged { UserType::Logged } else { UserType::NonLogged },
                page: PageId::parse("68d2039c-6e2b-4a07-a3c2-4b3e1b4f0e2a").unwrap(),
                ts,
                session_id: Some("s1".into()),
                clicks,
                time_on_page_ms: t,
                scroll_pct: scroll,
                page_visits: Some(1),
                rec_id: None,
            };
            prop_assert_eq!(ClickEvent::decode(&e.encode()), Ok(e));
        }
    }
}
