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
            fit.user_index.insert(rec.id.clone(), fit.users.len() as u32);
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
