//! The served-list log's records: what the API answered (a [`ServedList`]) and the
//! watermark marks it sends between lists ([`ServedRecord::Tick`]), as JSON on the
//! served topic.
//!
//! A tick says "lists served from now on carry an event time of at least this": the
//! consumer that attributes clicks to lists orders the two streams by event time, and a
//! tick lets it move past clicks on a partition no list is being served to.

use serde::{Deserialize, Serialize};

use crate::ids::{PageId, RecId, UserId};
use crate::tier::Tier;

/// Variant every list is served under when no experiment claims the reader.
pub const CONTROL: &str = "control";

/// One answered list, as the log records it (keyed by the user, or by the article for
/// similar-article lists).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServedList {
    /// The list's id, as in the answer.
    pub rec_id: RecId,
    /// Who it was served to (`None` for similar-article lists, which have no reader).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    /// The article a similar-article list is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<PageId>,
    /// The API's watermark when it answered (the latest event time it had seen), epoch
    /// ms; `None` before any event was applied. Attribution windows are in event time.
    pub event_ts: Option<i64>,
    /// Wall-clock time of the answer, epoch ms.
    pub wall_ts: i64,
    /// The tier that served the user (`None` for similar-article lists).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<Tier>,
    /// The experiment variant (`control`).
    pub variant: String,
    /// The model version that answered.
    pub model_version: String,
    /// The list, best first.
    pub pages: Vec<PageId>,
}

impl ServedList {
    /// The record key: the user, else the article.
    pub fn key(&self) -> &str {
        match (&self.user_id, &self.page) {
            (Some(u), _) => u.as_str(),
            (None, Some(p)) => p.as_str(),
            (None, None) => "",
        }
    }
}

/// A record of the served topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ServedRecord {
    /// A watermark mark: no list served after it carries an earlier event time.
    Tick {
        /// The API's watermark, epoch ms.
        tick: i64,
    },
    /// An answered list.
    List(Box<ServedList>),
}

impl ServedRecord {
    /// Decodes one record of the served topic.
    pub fn decode(payload: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(payload)
    }

    /// The record's JSON.
    pub fn encode(&self) -> Vec<u8> {
        // Every field is a plain string, number or list: serialising cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_ticks_round_trip() {
        let list = ServedRecord::List(Box::new(ServedList {
            rec_id: RecId::parse("r1").unwrap(),
            user_id: Some(UserId::parse("u1").unwrap()),
            page: None,
            event_ts: Some(5),
            wall_ts: 7,
            tier: Some(Tier::Logged),
            variant: CONTROL.into(),
            model_version: "v1".into(),
            pages: vec![PageId::parse("a").unwrap()],
        }));
        let tick = ServedRecord::Tick { tick: 9 };
        for r in [list, tick] {
            assert_eq!(ServedRecord::decode(&r.encode()).unwrap(), r);
        }
        assert_eq!(
            String::from_utf8(ServedRecord::Tick { tick: 9 }.encode()).unwrap(),
            r#"{"tick":9}"#
        );
        assert!(ServedRecord::decode(b"{\"rec_id\":1}").is_err());
    }
}
