//! Every Redis key the store uses, in one place.
//!
//! Keys start with the configured prefix and carry a hash tag so that everything one
//! atomic step touches lives in one Redis Cluster slot:
//!
//! | key | type | tag | what |
//! |---|---|---|---|
//! | `P u:{<user>}` | hash | user | user features, see below |
//! | `P p:{p<n>}:meta` | hash | partition | `next` offset, `wm` watermark, `t0` trending epoch, `events` |
//! | `P p:{p<n>}:w:<label>` | zset | partition | page → count in window `<label>` (`1h`, …) |
//! | `P p:{p<n>}:b:<bucket>` | hash | partition | page → count in one time bucket |
//! | `P p:{p<n>}:bidx` | zset | partition | live bucket indexes |
//! | `P p:{p<n>}:tr` | zset | partition | page → trending score relative to `t0` |
//! | `P p:{p<n>}:cv:<page>` | zset | partition | next page → "read next" count |
//! | `P p:{p<n>}:cvidx` | zset | partition | page → latest pair time (expiry) |
//! | `P p:{p<n>}:sess` | hash | partition | user → `"<ts> <page> <session>"`, last read of open sessions |
//! | `P p:{p<n>}:sessidx` | zset | partition | user → last read time (expiry) |
//! | `P {items}:issued` | zset | items | page → publication time |
//! | `P {items}:seen` | zset | items | page → first read time |
//! | `P parts` | set | — | partitions with state |
//!
//! User hash fields: `n` interactions; `c`, `t`, `s`, `v`, `e` the
//! [`newsrec_core::UserAggregates`] sums (clicks, minutes, scroll, visits, engagement);
//! `f`, `l` first and last event time; `ty` `L`/`N`; `lp` last page; `ls` last session
//! id; `h` recent pages newest first, space separated; `o<n>` the last offset applied from
//! partition `n` (what makes user updates idempotent).

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

    /// A user's hash.
    pub fn user(&self, user: &str) -> String {
        format!("{}u:{{{user}}}", self.prefix)
    }

    /// The common start of one partition's keys (ends with `:`).
    pub fn partition_base(&self, partition: i32) -> String {
        format!("{}p:{{p{partition}}}:", self.prefix)
    }

    /// A partition's meta hash.
    pub fn meta(&self, partition: i32) -> String {
        format!("{}meta", self.partition_base(partition))
    }

    /// A partition's count zset for window `label`.
    pub fn window(&self, partition: i32, label: &str) -> String {
        format!("{}w:{label}", self.partition_base(partition))
    }

    /// A partition's trending zset.
    pub fn trending(&self, partition: i32) -> String {
        format!("{}tr", self.partition_base(partition))
    }

    /// A partition's "read next" zset for `page`.
    pub fn covisit(&self, partition: i32, page: &str) -> String {
        format!("{}cv:{page}", self.partition_base(partition))
    }

    /// The "read next" expiry index of a partition.
    pub fn covisit_index(&self, partition: i32) -> String {
        format!("{}cvidx", self.partition_base(partition))
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

    /// The user-hash field holding the last offset applied from `partition`.
    pub fn user_offset_field(partition: i32) -> String {
        format!("o{partition}")
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
        let s = slot(&k.meta(3));
        for key in [
            k.window(3, "1h"),
            k.trending(3),
            k.covisit(3, "abc"),
            k.covisit_index(3),
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
