//! Every Redis key the store uses, in one place.
//!
//! Keys start with the configured prefix and carry a hash tag so that everything one
//! atomic step touches lives in one Redis Cluster slot:
//!
//! | key | type | tag | what |
//! |---|---|---|---|
//! | `P u:{<user>}` | hash | user | partition → the user's record of that partition, JSON (see below); on a cluster also `<partition>:o` → its offset |
//! | `P p:{p<n>}:meta` | hash | partition | `next` offset, `wm` watermark, `t0` trending epoch, `events`, `tok` the last writer's token |
//! | `P p:{p<n>}:b:<bucket>` | hash | partition | page → count in one time bucket |
//! | `P p:{p<n>}:bidx` | zset | partition | live bucket indexes |
//! | `P p:{p<n>}:top:<label>` | string | partition | the window's top list: `page count …`, most read first |
//! | `P p:{p<n>}:trs` | hash | partition | page → trending score relative to `t0` |
//! | `P p:{p<n>}:trtop` | string | partition | the trending top list: `page score …`, relative to `t0` |
//! | `P p:{p<n>}:nx:<page>` | string | partition | "read next" list of `page`: `next count …`, most frequent first |
//! | `P p:{p<n>}:nxt` | hash | partition | page → latest pair time of its "read next" list (expiry) |
//! | `P p:{p<n>}:sess` | hash | partition | user → `"<ts> <page> <session>"`, last read of open sessions |
//! | `P o:{p<n>}:state` | hash | partition | attribution: `next` = `<clicks offset>/<served offset>`, `keys` the streams' event-time keys, `c\t<tier>\t<variant>\t<model>` → `served hits clicks rr_sum by_position` |
//! | `P o:{p<n>}:lists` | hash | partition | user → the user's recent served lists, JSON |
//! | `P {items}:issued` | zset | items | page → publication time |
//! | `P {items}:seen` | zset | items | page → first read time |
//! | `P parts` | set | — | partitions with state |
//! | `P layout` | string | — | the version of this layout (5); a store refuses state of another |
//!
//! A user record is the JSON of `user_record::UserRecord`: `ty` type, `a` the engagement
//! sums in integer units (`user_record::Sums`), `h` recent pages newest first, `r` the
//! read set (FNV-1a hashes of every page read, newest first, see
//! [`newsrec_core::ReadSet`]), `lp` last page, `ls` last session id, and `o` the offset of the last event applied from the record's
//! partition (what makes user updates idempotent). With keyed producers a user has one
//! record; readers merge several. Window counts are not stored per page: they are the sums of
//! the live buckets, which whoever writes the partition keeps in memory; readers use the
//! top lists.

use crate::checkpoint::Partition;

/// Key builder for one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// Keys under `prefix` (validated by [`crate::StoreConfig::validate`]).
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A user's record.
    pub fn user(&self, user: &str) -> String {
        format!("{}u:{{{user}}}", self.prefix)
    }

    /// The common start of one partition's keys (ends with `:`).
    pub fn partition_base(&self, partition: Partition) -> String {
        format!("{}p:{{p{partition}}}:", self.prefix)
    }

    /// A partition's meta hash.
    pub fn meta(&self, partition: Partition) -> String {
        format!("{}meta", self.partition_base(partition))
    }

    /// One count bucket of a partition.
    pub fn bucket(&self, partition: Partition, bucket: i64) -> String {
        format!("{}b:{bucket}", self.partition_base(partition))
    }

    /// A partition's live bucket index.
    pub fn bucket_index(&self, partition: Partition) -> String {
        format!("{}bidx", self.partition_base(partition))
    }

    /// A partition's top list for window `label`.
    pub fn window_top(&self, partition: Partition, label: &str) -> String {
        format!("{}top:{label}", self.partition_base(partition))
    }

    /// A partition's trending scores.
    pub fn trending(&self, partition: Partition) -> String {
        format!("{}trs", self.partition_base(partition))
    }

    /// A partition's trending top list.
    pub fn trending_top(&self, partition: Partition) -> String {
        format!("{}trtop", self.partition_base(partition))
    }

    /// A partition's "read next" list for `page`.
    pub fn covisit(&self, partition: Partition, page: &str) -> String {
        format!("{}nx:{page}", self.partition_base(partition))
    }

    /// The latest pair time of each "read next" list of a partition.
    pub fn covisit_times(&self, partition: Partition) -> String {
        format!("{}nxt", self.partition_base(partition))
    }

    /// A partition's open sessions.
    pub fn sessions(&self, partition: Partition) -> String {
        format!("{}sess", self.partition_base(partition))
    }

    /// A partition's attribution state.
    pub fn online_state(&self, partition: Partition) -> String {
        format!("{}o:{{p{partition}}}:state", self.prefix)
    }

    /// A partition's users' recent served lists.
    pub fn online_lists(&self, partition: Partition) -> String {
        format!("{}o:{{p{partition}}}:lists", self.prefix)
    }

    /// Publication times.
    pub fn issued(&self) -> String {
        format!("{}{{items}}:issued", self.prefix)
    }

    /// First read times.
    pub fn seen(&self) -> String {
        format!("{}{{items}}:seen", self.prefix)
    }

    /// The set of partitions with state.
    pub fn partitions(&self) -> String {
        format!("{}parts", self.prefix)
    }

    /// The key layout version of the state under the prefix.
    pub fn layout(&self) -> String {
        format!("{}layout", self.prefix)
    }
}

/// The hash slot of a key (Redis Cluster: CRC16 of the hash tag, mod 16384).
pub fn slot(key: &str) -> u16 {
    let b = key.as_bytes();
    let tagged = b.iter().position(|&c| c == b'{').and_then(|open| {
        b[open + 1..]
            .iter()
            .position(|&c| c == b'}')
            .filter(|&len| len > 0)
            .map(|len| &b[open + 1..open + 1 + len])
    });
    crc16(tagged.unwrap_or(b)) % 16384
}

/// CRC16/XMODEM, the Redis Cluster key hash.
fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in data {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_keys_share_a_slot_and_users_have_their_own() {
        let k = Keys::new("t:");
        let p = Partition(3);
        let s = slot(&k.meta(p));
        for key in [
            k.window_top(p, "1h"),
            k.bucket(p, 17),
            k.bucket_index(p),
            k.trending(p),
            k.trending_top(p),
            k.covisit(p, "abc"),
            k.covisit_times(p),
            k.sessions(p),
        ] {
            assert_eq!(slot(&key), s, "{key}");
        }
        assert_eq!(slot(&k.issued()), slot(&k.seen()));
        assert_eq!(k.user("u1"), "t:u:{u1}");
        assert_eq!(slot(&k.user("u1")), slot("{u1}"));
    }

    #[test]
    fn crc16_matches_redis() {
        // Values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(slot("foo"), 12182);
        assert_eq!(slot("{user1000}.following"), slot("{user1000}.followers"));
    }
}
