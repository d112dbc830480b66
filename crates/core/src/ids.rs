//! Identifier newtypes. Each is parsed once where data enters (Kafka payload, HTTP
//! query, CSV row) and carried as a type afterwards, never as a bare string.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The string was empty (after trimming nothing is left).
    #[error("{kind} is empty")]
    Empty {
        /// Which identifier was being parsed.
        kind: &'static str,
    },
    /// The string is longer than identifiers may be.
    #[error("{kind} is longer than {max} bytes")]
    TooLong {
        /// Which identifier was being parsed.
        kind: &'static str,
        /// The limit.
        max: usize,
    },
    /// The string holds a character identifiers may not contain.
    #[error("{kind} contains a character outside [A-Za-z0-9._:-]")]
    BadChar {
        /// Which identifier was being parsed.
        kind: &'static str,
    },
}

/// Longest identifier accepted. G1 user ids are 64 hex chars and pages are UUIDs (36);
/// portals with their own schemes get some room, Redis keys stay short.
pub const MAX_ID_LEN: usize = 128;

/// What `validate` accepts, as the regular expression the OpenAPI document publishes
/// (its length bound is `minLength`/`maxLength` beside it).
pub const ID_PATTERN: &str = "^[A-Za-z0-9._:-]+$";

fn validate(kind: &'static str, s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty { kind });
    }
    if s.len() > MAX_ID_LEN {
        return Err(IdError::TooLong {
            kind,
            max: MAX_ID_LEN,
        });
    }
    // Ids end up inside Redis keys and Prometheus-free logs: no whitespace, no braces
    // (hash tags), no separators other than the few common in real id schemes.
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
    {
        return Err(IdError::BadChar { kind });
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Parses and validates an identifier (surrounding whitespace is trimmed).
            pub fn parse(s: &str) -> Result<Self, IdError> {
                let s = s.trim();
                validate($kind, s)?;
                Ok(Self(Arc::from(s)))
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), &self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        // The schema of the id in the OpenAPI document, built from the same constants
        // `validate` checks, so the published constraints are the enforced ones.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .min_length(Some(1))
                    .max_length(Some(MAX_ID_LEN))
                    .pattern(Some(ID_PATTERN))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

id_type!(
    /// A reader of the portal: 64 hex chars in G1, any short token elsewhere.
    UserId,
    "user_id"
);
id_type!(
    /// An article (G1: a UUID, the `page` column of the item files).
    PageId,
    "page"
);
id_type!(
    /// A click event's own id, used to recognise duplicates from producers.
    EventId,
    "event_id"
);
id_type!(
    /// A served list's id: in the answer that served the list, in the served-list log,
    /// and in a click that came from the list, when the front end passes it on.
    RecId,
    "rec_id"
);

impl EventId {
    /// The replayed id of a user's `n`-th interaction (0-based, event-time order): the
    /// same input gives the same ids, so a re-run is recognisable downstream.
    pub fn replayed(user: &UserId, n: u64) -> Self {
        Self::numbered('r', user, n)
    }

    /// The replayed id of a user's `n`-th validation click: like [`EventId::replayed`],
    /// but apart from the ids of the user's training interactions.
    pub fn replayed_validation(user: &UserId, n: u64) -> Self {
        Self::numbered('v', user, n)
    }

    fn numbered(tag: char, user: &UserId, n: u64) -> Self {
        let h = user
            .as_str()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
        // A letter, hex digits and a counter always make a valid id.
        Self::parse(&format!("{tag}{h:016x}-{n}")).unwrap_or_else(|_| unreachable!())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_g1_shapes() {
        assert!(
            UserId::parse("f98d1132f60d4688a6b0a6b8c9c0e3f1f98d1132f60d4688a6b0a6b8c9c0e3f1")
                .is_ok()
        );
        assert!(PageId::parse("c8aab885-433d-4e46-8066-479f40ba7fb2").is_ok());
        assert_eq!(
            PageId::parse("  a-b ").map(|p| p.to_string()),
            Ok("a-b".into())
        );
    }

    #[test]
    fn rejects_bad_ids() {
        assert!(matches!(UserId::parse(""), Err(IdError::Empty { .. })));
        assert!(matches!(UserId::parse("a b"), Err(IdError::BadChar { .. })));
        assert!(matches!(
            UserId::parse("{tag}"),
            Err(IdError::BadChar { .. })
        ));
        assert!(matches!(
            UserId::parse(&"x".repeat(129)),
            Err(IdError::TooLong { .. })
        ));
    }

    #[test]
    fn replayed_ids_are_deterministic_and_valid() {
        let u = UserId::parse(&"f".repeat(128)).unwrap();
        assert_eq!(EventId::replayed(&u, 3), EventId::replayed(&u, 3));
        assert_ne!(EventId::replayed(&u, 3), EventId::replayed(&u, 4));
        assert_ne!(
            EventId::replayed(&u, 3),
            EventId::replayed_validation(&u, 3)
        );
    }

    proptest! {
        #[test]
        fn serde_round_trip(s in "[A-Za-z0-9._:-]{1,128}") {
            let id = UserId::parse(&s).unwrap();
            let json = serde_json::to_string(&id).unwrap();
            let back: UserId = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(id, back);
        }
    }
}
