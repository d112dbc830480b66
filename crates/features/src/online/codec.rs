//! How the attribution state is stored: a partition's `state` hash (both next offsets
//! as one `next` field, the streams' keys, one field per counter key) and its `lists`
//! hash (user → the user's lists, JSON).

use std::collections::{BTreeMap, VecDeque};

use newsrec_core::UserId;

use super::{CounterKey, Counters, HeldList, OnlineNext, OnlineState, Step};
use crate::checkpoint::Offset;
use crate::error::StoreError;

fn corrupt(field: &str, detail: &str) -> StoreError {
    StoreError::Corrupt {
        key: format!("online field `{field}`"),
        detail: detail.to_owned(),
    }
}

/// The `next` field: `clicks/served`, then `/counted` when counting is ahead of the
/// merge (`''` when nothing was read). One state has one spelling, which the guarded
/// write compares.
pub(crate) fn next_field(n: OnlineNext) -> String {
    if n.clicks.is_none() && n.served.is_none() && n.counted.is_none() {
        return String::new();
    }
    let s = |o: Option<Offset>| o.map(|o| o.0.to_string()).unwrap_or_default();
    if n.counted == n.served {
        format!("{}/{}", s(n.clicks), s(n.served))
    } else {
        format!("{}/{}/{}", s(n.clicks), s(n.served), s(n.counted))
    }
}

fn parse_next(v: &str) -> Result<OnlineNext, StoreError> {
    let bad = || corrupt("next", v);
    if v.is_empty() {
        return Ok(OnlineNext::default());
    }
    let o = |x: &str| -> Result<Option<Offset>, StoreError> {
        if x.is_empty() {
            Ok(None)
        } else {
            x.parse().map(|n| Some(Offset(n))).map_err(|_| bad())
        }
    };
    let parts: Vec<&str> = v.split('/').collect();
    let (clicks, served) = match parts.as_slice() {
        [c, s] | [c, s, _] => (o(c)?, o(s)?),
        _ => return Err(bad()),
    };
    let counted = match parts.get(2) {
        Some(n) => o(n)?,
        None => served,
    };
    Ok(OnlineNext {
        clicks,
        served,
        counted,
    })
}

fn keys_field(st: &OnlineState) -> String {
    let k = |v: Option<i64>| v.map_or("-".to_owned(), |v| v.to_string());
    format!(
        "{} {} {}",
        k(st.clicks_key),
        k(st.served_key),
        k(st.merged_key)
    )
}

fn parse_keys(v: &str) -> Result<[Option<i64>; 3], StoreError> {
    let bad = || corrupt("keys", v);
    let mut out = [None; 3];
    let parts: Vec<&str> = v.split(' ').collect();
    if parts.len() != 3 {
        return Err(bad());
    }
    for (slot, p) in out.iter_mut().zip(parts) {
        if p != "-" {
            *slot = Some(p.parse().map_err(|_| bad())?);
        }
    }
    Ok(out)
}

/// A counter field's name: `c` and the key's parts, tab-separated.
fn counter_field(k: &CounterKey) -> String {
    format!("c\t{}\t{}\t{}", k.tier, k.variant, k.model_version)
}

fn counter_value(c: &Counters) -> String {
    let pos: Vec<String> = c.by_position.iter().map(u64::to_string).collect();
    // `{}` of an f64 is its shortest exact form: read back bit for bit.
    format!(
        "{} {} {} {} {}",
        c.served,
        c.hits,
        c.clicks,
        c.rr_sum,
        pos.join(",")
    )
}

/// One stored counter, decoded.
pub type CounterRow = (CounterKey, Counters);

fn parse_counter(field: &str, value: &str) -> Result<Option<CounterRow>, StoreError> {
    let Some(rest) = field.strip_prefix("c\t") else {
        return Ok(None);
    };
    let bad = || corrupt(field, value);
    let mut parts = rest.splitn(3, '\t');
    let (Some(tier), Some(variant), Some(model)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let v: Vec<&str> = value.split(' ').collect();
    if v.len() != 5 {
        return Err(bad());
    }
    let int = |s: &str| s.parse::<u64>().map_err(|_| bad());
    let by_position = if v[4].is_empty() {
        Vec::new()
    } else {
        v[4].split(',').map(int).collect::<Result<_, _>>()?
    };
    Ok(Some((
        CounterKey {
            tier: tier.to_owned(),
            variant: variant.to_owned(),
            model_version: model.to_owned(),
        },
        Counters {
            served: int(v[0])?,
            hits: int(v[1])?,
            clicks: int(v[2])?,
            rr_sum: v[3].parse().map_err(|_| bad())?,
            by_position,
        },
    )))
}

/// The counters stored in a partition's `state` hash.
pub(crate) fn decode_counters(
    state: &BTreeMap<String, String>,
) -> Result<Vec<CounterRow>, StoreError> {
    let mut out = Vec::new();
    for (f, v) in state {
        if let Some(row) = parse_counter(f, v)? {
            out.push(row);
        }
    }
    Ok(out)
}

/// A partition's state from its two hashes.
pub(crate) fn decode(
    state: &BTreeMap<String, String>,
    lists: &BTreeMap<String, String>,
) -> Result<OnlineState, StoreError> {
    let mut st = OnlineState::default();
    if let Some(n) = state.get("next") {
        let next = parse_next(n)?;
        (st.clicks_next, st.served_next, st.counted_next) =
            (next.clicks, next.served, next.counted);
    }
    if let Some(k) = state.get("keys") {
        [st.clicks_key, st.served_key, st.merged_key] = parse_keys(k)?;
    }
    st.counters = decode_counters(state)?.into_iter().collect();
    for (u, v) in lists {
        let user = UserId::parse(u).map_err(|e| corrupt(u, &e.to_string()))?;
        let held: VecDeque<HeldList> =
            serde_json::from_str(v).map_err(|e| corrupt(u, &e.to_string()))?;
        st.users.insert(user, held);
    }
    Ok(st)
}

/// What one step writes: the state hash's fields, and the users' lists set or removed.
#[derive(Debug, Default)]
pub struct OnlineWrite {
    /// Fields of the `state` hash to set.
    pub state_fields: Vec<(String, String)>,
    /// Users' lists to set in the `lists` hash.
    pub lists_set: Vec<(String, String)>,
    /// Users whose lists went.
    pub lists_removed: Vec<String>,
}

impl OnlineWrite {
    /// The writes that take the stored state to `st` after `step`.
    pub fn of(st: &OnlineState, step: &Step) -> Result<Self, StoreError> {
        let mut w = OnlineWrite {
            state_fields: vec![
                ("next".into(), next_field(st.next())),
                ("keys".into(), keys_field(st)),
            ],
            ..OnlineWrite::default()
        };
        for k in &step.counters_changed {
            if let Some(c) = st.counters.get(k) {
                w.state_fields.push((counter_field(k), counter_value(c)));
            }
        }
        for u in &step.users_changed {
            match st.users.get(u) {
                Some(lists) => {
                    let json = serde_json::to_string(lists)
                        .map_err(|e| StoreError::InvalidBatch(format!("online lists: {e}")))?;
                    w.lists_set.push((u.as_str().to_owned(), json));
                }
                None => w.lists_removed.push(u.as_str().to_owned()),
            }
        }
        Ok(w)
    }

    /// The whole state as `state` and `lists` fields (what a fresh store holds after
    /// every step that led to `st`), for the in-process store's dump.
    pub fn whole(st: &OnlineState) -> Result<Self, StoreError> {
        let step = Step {
            users_changed: st.users.keys().cloned().collect(),
            counters_changed: st.counters.keys().cloned().collect(),
            ..Step::default()
        };
        Self::of(st, &step)
    }
}
