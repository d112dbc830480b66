//! The ranker's time holdout: the last hours of the training data become a validation
//! set of their own, shaped like the real one, so the mixing can be fitted on data the
//! models it mixes have not seen.
//!
//! Validation readers are readers of the training period who come back afterwards, in
//! sessions of their own. The holdout keeps that shape: its readers clicked before the
//! cut, and only the clicks of sessions that begin after the cut are their labels (a
//! click within [`HoldoutSettings::session_gap_minutes`] of the reader's previous one
//! continues a session that began before the cut, which the live read-next signal
//! serves, not the batch ranking).

use std::collections::HashMap;

use newsrec_core::time::HOUR_MS;
use newsrec_core::{UserAggregates, route_tier};
use serde::{Deserialize, Serialize};

use crate::dataset::{Interactions, TrainingData, UserRecord, ValidationRow};
use crate::error::TrainError;

/// Where the holdout is cut and how big it may grow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HoldoutSettings {
    /// The last this many hours of training are held out.
    pub hours: f64,
    /// A click this close after the reader's previous click continues their session
    /// (minutes); labels start with the reader's first session after the cut.
    pub session_gap_minutes: f64,
    /// Holdout readers kept per tier at most (a deterministic sample): bounds the
    /// fitting work at any data size.
    pub max_readers: usize,
}

impl Default for HoldoutSettings {
    fn default() -> Self {
        Self {
            hours: 24.0,
            session_gap_minutes: 30.0,
            max_readers: 4_000,
        }
    }
}

impl HoldoutSettings {
    pub(crate) fn check(&self) -> Result<(), TrainError> {
        if !(self.hours.is_finite() && self.hours > 0.0) {
            return Err(TrainError::Invalid(format!(
                "ranker.holdout.hours must be positive, got {}",
                self.hours
            )));
        }
        if !(self.session_gap_minutes.is_finite() && self.session_gap_minutes >= 0.0) {
            return Err(TrainError::Invalid(format!(
                "ranker.holdout.session_gap_minutes must be ≥ 0, got {}",
                self.session_gap_minutes
            )));
        }
        if self.max_readers == 0 {
            return Err(TrainError::Invalid(
                "ranker.holdout.max_readers must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// The training data before the cut, and the holdout's labels after it.
pub(crate) struct Holdout {
    /// Every interaction at or before the cut, users re-indexed, aggregates rebuilt.
    pub(crate) fit: TrainingData,
    /// Labels: clicks of readers known before the cut, from their first new session on.
    pub(crate) rows: Vec<ValidationRow>,
    /// The cut, epoch ms.
    pub(crate) cut: i64,
}

/// A deterministic order of readers independent of their position in the data.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Splits `data` at `end − hours`. `None` when either side would be empty.
pub(crate) fn split(data: &TrainingData, s: &HoldoutSettings) -> Option<Holdout> {
    let x = &data.interactions;
    let end = x.ts.iter().copied().max()?;
    let cut = end - (s.hours * HOUR_MS as f64) as i64;
    let gap = (s.session_gap_minutes * 60_000.0) as i64;
    // The catalogue is shared, not copied: only the interactions are cut.
    let mut fit = TrainingData {
        items: data.items.clone(),
        pages: data.pages.clone(),
        ..Default::default()
    };
    // New index of each original user, and their last click before the cut.
    let mut index: Vec<Option<u32>> = vec![None; data.users.len()];
    let mut last: Vec<i64> = vec![i64::MIN; data.users.len()];
    let mut fx = Interactions::default();
    for i in (0..x.len()).filter(|&i| x.ts[i] <= cut) {
        let u = x.user[i] as usize;
        let nu = *index[u].get_or_insert_with(|| {
            let rec = &data.users[u];
            fit.user_index
                .insert(rec.id.clone(), fit.users.len() as u32);
            fit.users.push(UserRecord {
                id: rec.id.clone(),
                user_type: rec.user_type,
                aggregates: UserAggregates::default(),
            });
            (fit.users.len() - 1) as u32
        });
        fit.users[nu as usize]
            .aggregates
            .add(&x.engagement[i], x.ts[i]);
        last[u] = x.ts[i];
        fx.user.push(nu);
        fx.item.push(x.item[i]);
        fx.ts.push(x.ts[i]);
        fx.strength.push(x.strength[i]);
        fx.engagement.push(x.engagement[i]);
    }
    fit.interactions = fx;
    let mut labels: HashMap<u32, Vec<usize>> = HashMap::new();
    let mut returned = vec![false; data.users.len()];
    for i in (0..x.len()).filter(|&i| x.ts[i] > cut) {
        let u = x.user[i] as usize;
        if index[u].is_none() {
            continue;
        }
        if !returned[u] && x.ts[i] - last[u] > gap {
            returned[u] = true;
        }
        last[u] = x.ts[i];
        if returned[u] {
            labels.entry(x.user[i]).or_default().push(i);
        }
    }
    // At most `max_readers` per tier (the tier they are in at the cut).
    let mut readers: Vec<u32> = labels.keys().copied().collect();
    readers.sort_by_key(|&u| (mix(u64::from(u)), u));
    let mut per_tier: HashMap<newsrec_core::Tier, usize> = HashMap::new();
    let mut rows = Vec::new();
    for u in readers {
        let Some(nu) = index[u as usize] else {
            continue;
        };
        let rec = &fit.users[nu as usize];
        let tier = route_tier(Some(rec.user_type), rec.aggregates.interactions);
        let n = per_tier.entry(tier).or_default();
        if *n >= s.max_readers {
            continue;
        }
        *n += 1;
        for &i in &labels[&u] {
            rows.push(ValidationRow {
                user: rec.id.clone(),
                user_type: Some(rec.user_type),
                page: data.items[x.item[i] as usize].page.clone(),
                ts: x.ts[i],
            });
        }
    }
    if fit.interactions.is_empty() || rows.is_empty() {
        return None;
    }
    Some(Holdout { fit, rows, cut })
}

#[cfg(test)]
mod tests {
    use newsrec_core::{Engagement, PageId, Tier, UserId, UserType};

    use super::*;
    use crate::dataset::ItemRecord;

    const H: i64 = HOUR_MS;

    /// `clicks` = (user, item, ts), in time order.
    fn data(users: &[UserType], items: usize, clicks: &[(u32, u32, i64)]) -> TrainingData {
        let mut d = TrainingData::default();
        for i in 0..items {
            let page = PageId::parse(&format!("00000000-0000-4000-8000-{i:012x}")).expect("page");
            std::sync::Arc::make_mut(&mut d.pages).insert(page.clone(), i as u32);
            std::sync::Arc::make_mut(&mut d.items).push(ItemRecord::bare(page));
        }
        for (u, &t) in users.iter().enumerate() {
            let id = UserId::parse(&format!("{u:064x}")).expect("user");
            d.user_index.insert(id.clone(), u as u32);
            d.users.push(UserRecord {
                id,
                user_type: t,
                aggregates: UserAggregates::default(),
            });
        }
        for &(u, i, ts) in clicks {
            let e = Engagement::default();
            d.users[u as usize].aggregates.add(&e, ts);
            let x = &mut d.interactions;
            x.user.push(u);
            x.item.push(i);
            x.ts.push(ts);
            x.strength.push(1.0);
            x.engagement.push(e);
        }
        d
    }

    #[test]
    fn labels_start_with_the_first_session_after_the_cut() {
        let logged = UserType::Logged;
        // The data ends at 100 h: the cut is at 76 h.
        let d = data(
            &[logged, logged, logged],
            8,
            &[
                (0, 0, 10 * H),
                (0, 1, 76 * H - 60_000),
                (1, 2, 20 * H),
                // User 0 goes on reading 10 min after the cut: the same session.
                (0, 3, 76 * H + 10 * 60_000),
                // User 2 is new after the cut: not a holdout reader.
                (2, 4, 80 * H),
                (0, 5, 90 * H),
                (1, 6, 95 * H),
                (0, 7, 100 * H),
            ],
        );
        let h = split(&d, &HoldoutSettings::default()).expect("holdout");
        assert_eq!(h.cut, 76 * H);
        assert_eq!(h.fit.interactions.len(), 3);
        assert_eq!(h.fit.users.len(), 2, "only readers before the cut");
        assert!(h.fit.interactions.ts.iter().all(|&t| t <= h.cut));
        assert_eq!(h.fit.users[0].aggregates.interactions, 2);
        let labels: Vec<(usize, i64)> = h
            .rows
            .iter()
            .map(|r| (h.fit.user_index[&r.user] as usize, r.ts))
            .collect();
        let mut sorted = labels.clone();
        sorted.sort();
        assert_eq!(sorted, vec![(0, 90 * H), (0, 100 * H), (1, 95 * H)]);
    }

    #[test]
    fn each_tier_keeps_at_most_max_readers() {
        let users = vec![UserType::NonLogged; 40];
        let mut clicks = Vec::new();
        for u in 0..40u32 {
            // Two clicks before the cut (semi-logged there), one well after it.
            clicks.push((u, 0, H + i64::from(u)));
            clicks.push((u, 1, 2 * H + i64::from(u)));
        }
        for u in 0..40u32 {
            clicks.push((u, 2, 90 * H + i64::from(u)));
        }
        clicks.push((0, 3, 100 * H));
        let d = data(&users, 4, &clicks);
        let s = HoldoutSettings {
            max_readers: 7,
            ..Default::default()
        };
        let h = split(&d, &s).expect("holdout");
        let readers: std::collections::HashSet<_> = h.rows.iter().map(|r| &r.user).collect();
        assert_eq!(readers.len(), 7);
        for r in &h.rows {
            let u = &h.fit.users[h.fit.user_index[&r.user] as usize];
            let tier = route_tier(Some(u.user_type), u.aggregates.interactions);
            assert_eq!(tier, Tier::SemiLogged);
        }
        // The same sample every time.
        let again = split(&d, &s).expect("holdout");
        assert_eq!(again.rows, h.rows);
    }

    #[test]
    fn nonsense_settings_are_refused() {
        for s in [
            HoldoutSettings {
                hours: 0.0,
                ..Default::default()
            },
            HoldoutSettings {
                session_gap_minutes: f64::NAN,
                ..Default::default()
            },
            HoldoutSettings {
                max_readers: 0,
                ..Default::default()
            },
        ] {
            assert!(s.check().is_err(), "{s:?}");
        }
    }
}
