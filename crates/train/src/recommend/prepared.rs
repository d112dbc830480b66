//! Ranking one reader's request under many weightings without gathering its
//! candidates again: what fitting the ranker needs ([`crate::ranker`]).

use rustc_hash::FxHashSet;

use newsrec_core::{PageId, Tier};

use super::{
    Candidates, Entry, LiveSignals, MixWeights, RECENCY, Sources, Unread, UserContext, gates, is_on,
};
use crate::model_set::ModelSet;

impl<'m> Candidates<'m> {
    /// The candidates gathering with only the `gates` sources would have found, with
    /// the components of the other sources cleared.
    fn restricted(&self, gates: Sources) -> Candidates<'m> {
        let keep = |(comp, from): &Entry| -> Option<Entry> {
            if from & gates == 0 {
                return None;
            }
            let mut c = *comp;
            for (k, v) in c.iter_mut().enumerate().take(RECENCY) {
                if !is_on(gates, k) {
                    *v = 0.0;
                }
            }
            Some((c, from & gates))
        };
        Candidates {
            model: self.model,
            known: self
                .known
                .iter()
                .filter_map(|(&i, e)| keep(e).map(|e| (i, e)))
                .collect(),
            unknown: self
                .unknown
                .iter()
                .filter_map(|(p, e)| keep(e).map(|e| (p.clone(), e)))
                .collect(),
        }
    }
}

/// One reader's request prepared to be ranked under many weightings of their own tier
/// (fitting the ranker): the tier's candidates gathered once with every source on, and
/// what the next tiers and the catalogue add after them. [`Prepared::list`] returns
/// what [`ModelSet::recommend`] would for the same weights, without gathering again.
pub(crate) struct Prepared<'a> {
    tier: Tier,
    now: i64,
    pool: Candidates<'a>,
    read: Unread<'a>,
    /// The next tiers' unread pages in order (ranked as `recommend` ranks them), then
    /// enough of the catalogue to fill any list.
    rest: Vec<PageId>,
}

impl ModelSet {
    /// Prepares `ctx`'s request for lists of `k` ranked under any weights of its tier;
    /// `w` gives the bounds of work and ranks the next tiers.
    pub(crate) fn prepare<'a>(
        &'a self,
        ctx: &'a UserContext,
        live: &LiveSignals,
        k: usize,
        w: &MixWeights,
    ) -> Prepared<'a> {
        let tier = ctx.tier();
        let now = live.watermark.unwrap_or(self.end_ts());
        let read = Unread::of(ctx);
        // Every source on: any weighting's candidates are a subset of these.
        let pool = self.candidates(tier, ctx, live, w, Sources::MAX);
        let mut rest = Vec::new();
        let mut seen = FxHashSet::default();
        let mut current = tier.fallback();
        while let Some(t) = current {
            for r in self.ranked_tier(t, ctx, live, w, now, k + read.len) {
                if !read.is_read(&r.page) && seen.insert(r.page.clone()) {
                    rest.push(r.page);
                }
            }
            current = t.fallback();
        }
        // The tier's own picks can shadow at most `k` of these.
        let unseen: Vec<PageId> = self
            .unread_catalogue(&read)
            .filter(|p| !seen.contains(*p))
            .take(2 * k)
            .cloned()
            .collect();
        rest.extend(unseen);
        Prepared {
            tier,
            now,
            pool,
            read,
            rest,
        }
    }
}

impl Prepared<'_> {
    /// The first `k` pages `recommend` would return with the tier ranked by `w`.
    pub(crate) fn list(&self, w: &MixWeights, k: usize) -> Vec<PageId> {
        let ranked = self.pool.restricted(gates(self.tier, w)).rank(
            self.now,
            w,
            self.tier,
            k + self.read.len,
        );
        let mut out: Vec<PageId> = Vec::with_capacity(k);
        let mut taken = FxHashSet::default();
        for r in ranked {
            if out.len() >= k {
                break;
            }
            if !self.read.is_read(&r.page) && taken.insert(r.page.clone()) {
                out.push(r.page);
            }
        }
        for p in &self.rest {
            if out.len() >= k {
                break;
            }
            if taken.insert(p.clone()) {
                out.push(p.clone());
            }
        }
        out
    }
}
