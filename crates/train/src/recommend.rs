//! The one recommend path, shared by the API and the offline evaluation: routing,
//! per-tier candidates, mixing with live signals, exclusion of read pages and filling a
//! short tier from the next.

use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};

use newsrec_core::time::{HOUR_MS, decay};
use newsrec_core::{
    PageId, ReadLookup, ReadSet, Tier, UserAggregates, UserId, UserType, route_tier,
};
use serde::{Deserialize, Serialize};

use crate::content::Profile;
use crate::model_set::ModelSet;

mod prepared;
pub(crate) use prepared::Prepared;

/// Why an article was recommended: the mixing component that contributed most to its
/// score. Serialised in kebab-case (`"read-next"`), as API responses show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// Collaborative filtering (the logged tier's ALS factors).
    Cf,
    /// Content similarity to what the reader read.
    Content,
    /// Popular within the reader's behaviour cluster.
    Cluster,
    /// Popular (live window, or the model's popularity prior).
    Popular,
    /// Rising faster than its usual rate.
    Trending,
    /// Often read right after the reader's last page.
    ReadNext,
    /// Freshly published.
    Recent,
}

impl Reason {
    /// The serialised name.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Cf => "cf",
            Reason::Content => "content",
            Reason::Cluster => "cluster",
            Reason::Popular => "popular",
            Reason::Trending => "trending",
            Reason::ReadNext => "read-next",
            Reason::Recent => "recent",
        }
    }
}

/// One recommended article.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommended {
    /// The article.
    pub page: PageId,
    /// Mixed score (comparable within one response only).
    pub score: f64,
    /// The strongest contribution to the score.
    pub reason: Reason,
    /// The tier whose candidates produced it: differs from the response's tier when a
    /// short tier was filled from the next.
    pub tier: Tier,
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendations {
    /// The tier the user was routed to ([`route_tier`]).
    pub tier: Tier,
    /// Up to K articles, best first; exactly K whenever the catalogue has K unread ones.
    pub items: Vec<Recommended>,
}

/// What is known about the requesting user.
#[derive(Debug, Clone, Default)]
pub struct UserContext {
    /// The user, when identified (anonymous requests may have none).
    pub user_id: Option<UserId>,
    /// Type of the user's latest event; `None` when never seen.
    pub user_type: Option<UserType>,
    /// The user's aggregates (live in the API, from training data in evaluation); their
    /// `interactions` decide the tier and their vector places the user in a cluster.
    pub aggregates: UserAggregates,
    /// Pages the user read recently, newest first (their content profile; never
    /// recommended again).
    pub history: Vec<PageId>,
    /// Every page the user read (up to its cap): never recommended again.
    pub read: ReadSet,
    /// The page the user read last (drives "read next").
    pub last_page: Option<PageId>,
}

/// What a reader must not be offered: their read set and recent history.
struct Unread<'a> {
    read: ReadLookup,
    recent: FxHashSet<&'a PageId>,
    /// How many pages that is, at most (how far past K a ranking may have to go).
    len: usize,
}

impl<'a> Unread<'a> {
    fn of(ctx: &'a UserContext) -> Self {
        Unread {
            read: ctx.read.lookup(),
            recent: ctx.history.iter().collect(),
            len: ctx.read.len().max(ctx.history.len()),
        }
    }

    fn is_read(&self, page: &PageId) -> bool {
        self.recent.contains(page) || self.read.contains(page)
    }
}

impl UserContext {
    /// The tier this user is served by: [`route_tier`] on the user type and
    /// `aggregates.interactions`. The API labels its metrics with this same value.
    pub fn tier(&self) -> Tier {
        route_tier(self.user_type, self.aggregates.interactions)
    }
}

/// A ranked list of pages with scores, shared without copying: the API hands the same
/// live lists to every request of one snapshot.
pub type TopList = Arc<[(PageId, f64)]>;

/// Live signals mixed into every tier. The API fills them from the feature store; the
/// evaluation (and the API when the store is unreachable) uses
/// [`ModelSet::offline_signals`].
#[derive(Debug, Clone, Default)]
pub struct LiveSignals {
    /// Popular articles in the serving window, with their counts or scores.
    pub popular: TopList,
    /// Trending articles with their trend scores.
    pub trending: TopList,
    /// Articles read after `last_page`, with co-visitation scores.
    pub read_next: Vec<(PageId, f64)>,
    /// Latest event time seen (epoch ms): "now" for recency; the model's data end when
    /// `None`.
    pub watermark: Option<i64>,
}

/// The name of the hand-set weights among [`MixWeights::hand_variants`].
pub const HAND: &str = "hand";

/// Which weights rank a tier's candidates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ranking {
    /// The weights the model version fitted for the tier at train time
    /// ([`crate::Ranker`]); the hand-set weights where it fitted none.
    #[default]
    Learned,
    /// The hand-set weights of this configuration, in every tier.
    Hand,
}

/// Weights of the mixing components and the bounds of per-request work.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MixWeights {
    /// Whether the model's learned weights or these rank each tier; the bounds below
    /// apply either way.
    pub ranking: Ranking,
    /// ALS preference (logged tier).
    pub cf: f64,
    /// Content similarity to the reader's history (logged and semi-logged tiers).
    pub content: f64,
    /// Popularity × recency within the reader's cluster (semi-logged tier).
    pub cluster: f64,
    /// The model's popularity × recency prior (anonymous tier).
    pub prior: f64,
    /// Live popularity.
    pub popular: f64,
    /// Live trend.
    pub trending: f64,
    /// Co-visitation with the last page read.
    pub read_next: f64,
    /// How much freshness at the watermark matters, in [0, 1]: the mixed score is
    /// multiplied by `1 − recency + recency·freshness` (freshness halves every
    /// `recency_half_life_hours`).
    pub recency: f64,
    /// Half-life of freshness, hours.
    pub recency_half_life_hours: f64,
    /// How much what an anonymous reader opened steers their list, in [0, 1]: the
    /// anonymous tier's score is multiplied by `1 − a + a·similarity`, the similarity
    /// of a candidate to the reader's pages relative to the most similar candidate.
    /// Fresh popularity chooses among the articles like the ones they read.
    pub anonymous_content: f64,
    /// ALS candidates taken from the serving pool.
    pub cf_candidates: usize,
    /// Newest history pages used for folding in and for the content profile.
    pub history_window: usize,
    /// Newest history pages whose content neighbours become candidates.
    pub neighbour_sources: usize,
    /// Candidates taken from each precomputed list (cluster list, prior, live lists).
    pub list_candidates: usize,
}

impl Default for MixWeights {
    fn default() -> Self {
        Self {
            ranking: Ranking::Learned,
            cf: 1.0,
            content: 0.6,
            cluster: 1.0,
            prior: 1.0,
            popular: 0.3,
            trending: 0.15,
            read_next: 0.5,
            recency: 0.9,
            recency_half_life_hours: 24.0,
            anonymous_content: 0.8,
            cf_candidates: 200,
            history_window: 30,
            neighbour_sources: 5,
            list_candidates: 100,
        }
    }
}

impl MixWeights {
    /// Only collaborative filtering in the logged tier (for comparing halves); these
    /// weights in every tier.
    pub fn cf_only(&self) -> Self {
        Self {
            ranking: Ranking::Hand,
            content: 0.0,
            ..self.clone()
        }
    }

    /// Only content similarity in the logged tier (for comparing halves); these
    /// weights in every tier.
    pub fn content_only(&self) -> Self {
        Self {
            ranking: Ranking::Hand,
            cf: 0.0,
            ..self.clone()
        }
    }

    /// These weights in every tier, whatever the model learned.
    pub fn hand(&self) -> Self {
        Self {
            ranking: Ranking::Hand,
            ..self.clone()
        }
    }

    /// The hand-set variants the learned ranking is fitted against and compared with,
    /// by name: these weights ([`HAND`]), the logged hybrid's CF-only and content-only
    /// halves.
    pub fn hand_variants(&self) -> [(&'static str, MixWeights); 3] {
        [
            (HAND, self.hand()),
            ("cf-only", self.cf_only()),
            ("content-only", self.content_only()),
        ]
    }

    fn weight(&self, c: usize) -> f64 {
        match c {
            CF => self.cf,
            CONTENT => self.content,
            CLUSTER => self.cluster,
            PRIOR => self.prior,
            POPULAR => self.popular,
            TRENDING => self.trending,
            READ_NEXT => self.read_next,
            _ => self.recency,
        }
    }
}

const CF: usize = 0;
const CONTENT: usize = 1;
const CLUSTER: usize = 2;
const PRIOR: usize = 3;
const POPULAR: usize = 4;
const TRENDING: usize = 5;
const READ_NEXT: usize = 6;
const RECENCY: usize = 7;
const COMPONENTS: usize = 8;

const REASONS: [Reason; COMPONENTS] = [
    Reason::Cf,
    Reason::Content,
    Reason::Cluster,
    Reason::Popular,
    Reason::Popular,
    Reason::Trending,
    Reason::ReadNext,
    Reason::Recent,
];

type Components = [f64; COMPONENTS];

/// The sources that brought a candidate (or, as a gate, the sources a weighting
/// turns on): one bit per component.
type Sources = u16;

/// One candidate: its components and the sources that brought it.
type Entry = (Components, Sources);

/// The sources and components `w` turns on in `tier`, the one rule every candidate
/// builder follows: a list source joins when its weight is positive, content when the
/// tier uses it (`content`, or `anonymous_content` for anonymous readers); the cluster
/// list and the prior always.
fn gates(tier: Tier, w: &MixWeights) -> Sources {
    let on = |b: bool, c: usize| if b { 1 << c } else { 0 };
    let content = match tier {
        Tier::Anonymous => w.anonymous_content > 0.0,
        _ => w.content > 0.0,
    };
    (1 << CLUSTER)
        | (1 << PRIOR)
        | on(w.cf > 0.0, CF)
        | on(content, CONTENT)
        | on(w.popular > 0.0, POPULAR)
        | on(w.trending > 0.0, TRENDING)
        | on(w.read_next > 0.0, READ_NEXT)
}

/// Whether `gates` has component `c` on.
fn is_on(gates: Sources, c: usize) -> bool {
    gates & (1 << c) != 0
}

/// The candidate set of one tier. Articles the model knows are keyed by their index
/// (cheap to hash, metadata borrowed from the model); live articles unknown to the
/// model (published after training) by page, so both mix in one ranking.
struct Candidates<'m> {
    model: &'m ModelSet,
    known: FxHashMap<u32, Entry>,
    unknown: FxHashMap<PageId, Entry>,
}

/// One scored candidate before the cut to the requested length.
struct Scored<'a> {
    page: &'a PageId,
    score: f64,
    reason: Reason,
}

fn by_score(a: &Scored<'_>, b: &Scored<'_>) -> std::cmp::Ordering {
    b.score.total_cmp(&a.score).then_with(|| a.page.cmp(b.page))
}

impl<'m> Candidates<'m> {
    fn new(model: &'m ModelSet) -> Self {
        Self {
            model,
            known: FxHashMap::with_capacity_and_hasher(512, Default::default()),
            unknown: FxHashMap::default(),
        }
    }

    fn add_item(&mut self, idx: u32, c: usize, v: f64) {
        if self.model.item_at(idx).is_some() {
            let e = self.known.entry(idx).or_insert(([0.0; COMPONENTS], 0));
            e.0[c] = e.0[c].max(v);
            e.1 |= 1 << c;
        }
    }

    fn add_list(&mut self, list: &[(u32, f32)], c: usize, n: usize) {
        let max = list
            .iter()
            .take(n)
            .map(|x| f64::from(x.1))
            .fold(0.0, f64::max);
        if max <= 0.0 {
            return;
        }
        for &(i, s) in list.iter().take(n) {
            self.add_item(i, c, f64::from(s) / max);
        }
    }

    fn add_live(&mut self, list: &[(PageId, f64)], c: usize, n: usize) {
        let max = list.iter().take(n).map(|x| x.1).fold(0.0, f64::max);
        if max <= 0.0 {
            return;
        }
        for (page, s) in list.iter().take(n) {
            let e = match self.model.index_of(page) {
                Some(i) => self.known.entry(i).or_insert(([0.0; COMPONENTS], 0)),
                None => self
                    .unknown
                    .entry(page.clone())
                    .or_insert(([0.0; COMPONENTS], 0)),
            };
            e.0[c] = e.0[c].max(s / max);
            e.1 |= 1 << c;
        }
    }

    fn add_signals(&mut self, live: &LiveSignals, w: &MixWeights, g: Sources) {
        let n = w.list_candidates;
        for (list, c) in [
            (&*live.popular, POPULAR),
            (&*live.trending, TRENDING),
            (&live.read_next[..], READ_NEXT),
        ] {
            if is_on(g, c) {
                self.add_live(list, c, n);
            }
        }
    }

    /// Fills the recency component and ranks: Σ weight·component, each component
    /// rescaled to [0, 1] over the candidates so weights compare like with like. Only
    /// the best `want` are ordered and returned.
    fn rank(mut self, now: i64, w: &MixWeights, tier: Tier, want: usize) -> Vec<Recommended> {
        let half_life = (w.recency_half_life_hours * HOUR_MS as f64) as i64;
        let model = self.model;
        for (&i, (comp, _)) in self.known.iter_mut() {
            comp[RECENCY] = model
                .published_at(i)
                .map_or(0.0, |p| decay(now - p, half_life));
        }
        // Only live lists bring articles the model does not know: they were published
        // after training, so they are fresh.
        for (comp, _) in self.unknown.values_mut() {
            comp[RECENCY] = 1.0;
        }
        let mut max = [0f64; COMPONENTS];
        for (comp, _) in self.known.values().chain(self.unknown.values()) {
            for (m, v) in max.iter_mut().zip(comp) {
                *m = m.max(*v);
            }
        }
        // News relevance decays within hours: freshness multiplies the evidence instead
        // of competing with it, so a strong but stale match cannot outrank fresh ones.
        let fresh_w = w.recency.clamp(0.0, 1.0);
        // An anonymous reader's pages say what they like but are too few to compete
        // with popularity as evidence of their own: similarity multiplies instead.
        let like_w = if tier == Tier::Anonymous && max[CONTENT] > 0.0 {
            w.anonymous_content.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let score = |comp: &Components| -> (f64, Reason) {
            let mut score = 0.0;
            let mut best = (RECENCY, 0.0);
            for (k, (&m, &v)) in max.iter().zip(comp).take(RECENCY).enumerate() {
                let part = if m > 0.0 && !(k == CONTENT && like_w > 0.0) {
                    w.weight(k) * v.max(0.0) / m
                } else {
                    0.0
                };
                score += part;
                if part > best.1 {
                    best = (k, part);
                }
            }
            let like = if like_w > 0.0 {
                1.0 - like_w + like_w * comp[CONTENT].max(0.0) / max[CONTENT]
            } else {
                1.0
            };
            (
                (score + 1e-3) * (1.0 - fresh_w + fresh_w * comp[RECENCY]) * like,
                REASONS[best.0],
            )
        };
        let scored = |page, comp| {
            let (score, reason) = score(comp);
            Scored {
                page,
                score,
                reason,
            }
        };
        let known = self
            .known
            .iter()
            .filter_map(|(&i, (comp, _))| model.item_at(i).map(|it| scored(&it.page, comp)));
        let mut out: Vec<Scored<'_>> = known
            .chain(self.unknown.iter().map(|(p, (comp, _))| scored(p, comp)))
            .collect();
        if want == 0 {
            return Vec::new();
        }
        if out.len() > want {
            out.select_nth_unstable_by(want - 1, by_score);
            out.truncate(want);
        }
        out.sort_unstable_by(by_score);
        out.into_iter()
            .map(|s| Recommended {
                page: s.page.clone(),
                score: s.score,
                reason: s.reason,
                tier,
            })
            .collect()
    }
}

impl ModelSet {
    /// Recommends up to `k` unread articles: routes with [`route_tier`], ranks the
    /// tier's candidates mixed with live popularity, trend, read-next and recency, and
    /// fills a short list from the next tier (logged → semi-logged → anonymous), then
    /// from the whole catalogue, so `k` articles come back whenever that many are unread.
    pub fn recommend(
        &self,
        ctx: &UserContext,
        live: &LiveSignals,
        k: usize,
        w: &MixWeights,
    ) -> Recommendations {
        let tier = ctx.tier();
        let now = live.watermark.unwrap_or(self.end_ts());
        let read = Unread::of(ctx);
        let mut chosen: Vec<Recommended> = Vec::with_capacity(k);
        let mut taken: FxHashSet<PageId> =
            FxHashSet::with_capacity_and_hasher(k * 2, Default::default());
        let mut current = Some(tier);
        while let Some(t) = current {
            if chosen.len() >= k {
                break;
            }
            // Enough to fill K even if every read page and every page already taken
            // from a previous tier ranks first.
            let ranked = self.ranked_tier(t, ctx, live, w, now, k + read.len);
            for r in ranked {
                if chosen.len() >= k {
                    break;
                }
                if !read.is_read(&r.page) && taken.insert(r.page.clone()) {
                    chosen.push(r);
                }
            }
            current = t.fallback();
        }
        if chosen.len() < k {
            self.fill_from_catalogue(&read, &mut taken, &mut chosen, k);
        }
        Recommendations {
            tier,
            items: chosen,
        }
    }

    /// The weights the model learned for tier `t`, with the request's bounds on work,
    /// when `w` asks for learned ranking and the model fitted that tier.
    fn tier_weights(&self, t: Tier, w: &MixWeights) -> Option<MixWeights> {
        if w.ranking != Ranking::Learned {
            return None;
        }
        self.ranker().weights(t).map(|l| MixWeights {
            ranking: Ranking::Learned,
            cf_candidates: w.cf_candidates,
            history_window: w.history_window,
            neighbour_sources: w.neighbour_sources,
            list_candidates: w.list_candidates,
            ..l.clone()
        })
    }

    /// Last resort when every tier ran short: the catalogue in its precomputed fallback
    /// order (popularity prior, then newest). Bounded by `k` plus the pages skipped as
    /// read or already taken.
    fn fill_from_catalogue(
        &self,
        read: &Unread<'_>,
        taken: &mut FxHashSet<PageId>,
        chosen: &mut Vec<Recommended>,
        k: usize,
    ) {
        let last = chosen.last().map_or(0.0, |r| r.score);
        for page in self.unread_catalogue(read) {
            if chosen.len() >= k {
                break;
            }
            if taken.insert(page.clone()) {
                chosen.push(Recommended {
                    page: page.clone(),
                    // Below everything ranked, still in descending order.
                    score: last * 0.5 - chosen.len() as f64 * 1e-6,
                    reason: Reason::Recent,
                    tier: Tier::Anonymous,
                });
            }
        }
    }

    /// Tier `t`'s candidates from the sources `g` turns on ([`gates`]).
    fn candidates(
        &self,
        t: Tier,
        ctx: &UserContext,
        live: &LiveSignals,
        w: &MixWeights,
        g: Sources,
    ) -> Candidates<'_> {
        match t {
            Tier::Logged => self.logged_candidates(ctx, live, w, g),
            Tier::SemiLogged => self.semi_logged_candidates(ctx, live, w, g),
            Tier::Anonymous => self.anonymous_candidates(ctx, live, w, g),
        }
    }

    /// Tier `t`'s candidates ranked as `recommend` ranks them: with the weights the
    /// model learned for the tier when `w` asks for them, else with `w`.
    fn ranked_tier(
        &self,
        t: Tier,
        ctx: &UserContext,
        live: &LiveSignals,
        w: &MixWeights,
        now: i64,
        want: usize,
    ) -> Vec<Recommended> {
        let learned = self.tier_weights(t, w);
        let w = learned.as_ref().unwrap_or(w);
        self.candidates(t, ctx, live, w, gates(t, w))
            .rank(now, w, t, want)
    }

    /// The catalogue's unread articles in fallback order (prior, then newest).
    fn unread_catalogue<'a>(&'a self, read: &'a Unread<'_>) -> impl Iterator<Item = &'a PageId> {
        self.fill_order()
            .iter()
            .filter_map(|&i| self.item_at(i))
            .map(|item| &item.page)
            .filter(|p| !read.is_read(p))
    }

    fn history_indices(&self, ctx: &UserContext, n: usize) -> Vec<u32> {
        ctx.history
            .iter()
            .take(n)
            .filter_map(|p| self.index_of(p))
            .collect()
    }

    fn logged_candidates(
        &self,
        ctx: &UserContext,
        live: &LiveSignals,
        w: &MixWeights,
        g: Sources,
    ) -> Candidates<'_> {
        let mut c = Candidates::new(self);
        let recent = self.history_indices(ctx, w.history_window);
        let user_vec = ctx
            .user_id
            .as_ref()
            .and_then(|u| self.user_factors(u))
            .map(<[f32]>::to_vec)
            .or_else(|| self.fold_in(&recent));
        if let (Some(u), true) = (&user_vec, is_on(g, CF)) {
            for (i, s) in self.cf_top(u, w.cf_candidates) {
                c.add_item(i, CF, f64::from(s));
            }
        }
        let profile = is_on(g, CONTENT)
            .then(|| self.add_content_candidates(&mut c, &recent, w.neighbour_sources))
            .flatten();
        c.add_signals(live, w, g);
        // Every candidate, whatever brought it, is scored on both halves of the hybrid.
        if let (Some(u), true) = (&user_vec, is_on(g, CF)) {
            for (&i, (comp, _)) in c.known.iter_mut() {
                if let Some(s) = self.cf_score(u, i) {
                    comp[CF] = f64::from(s);
                }
            }
        }
        self.score_content(&mut c, profile.as_ref());
        c
    }

    /// The reader's content profile (newest reads weigh most) and the content
    /// neighbours of their `sources` latest reads as candidates; `None` without reads.
    fn add_content_candidates(
        &self,
        c: &mut Candidates<'_>,
        recent: &[u32],
        sources: usize,
    ) -> Option<Profile> {
        if recent.is_empty() {
            return None;
        }
        let weights = recent
            .iter()
            .enumerate()
            .map(|(pos, &i)| (i, 0.85f32.powi(pos as i32)));
        let profile = self.content().profile(weights);
        for &i in recent.iter().take(sources) {
            for (j, s) in self.content().neighbours(i).take(20) {
                c.add_item(j, CONTENT, f64::from(s));
            }
        }
        Some(profile)
    }

    fn score_content(&self, c: &mut Candidates<'_>, profile: Option<&Profile>) {
        let Some(p) = profile else { return };
        for (&i, (comp, _)) in c.known.iter_mut() {
            comp[CONTENT] = f64::from(self.content().score(p, i));
        }
    }

    fn semi_logged_candidates(
        &self,
        ctx: &UserContext,
        live: &LiveSignals,
        w: &MixWeights,
        g: Sources,
    ) -> Candidates<'_> {
        let mut c = Candidates::new(self);
        if let Some(list) = self.cluster_list(&ctx.aggregates) {
            c.add_list(list, CLUSTER, w.list_candidates);
        }
        // A semi-logged reader has a short history: its content refines the cluster's
        // list towards what this reader opened.
        let recent = self.history_indices(ctx, w.history_window);
        let profile = is_on(g, CONTENT)
            .then(|| self.add_content_candidates(&mut c, &recent, w.neighbour_sources))
            .flatten();
        c.add_signals(live, w, g);
        self.score_content(&mut c, profile.as_ref());
        c
    }

    /// Popular and fresh articles (the prior and the live lists); when the reader has
    /// opened something, its content neighbours join them and every candidate is
    /// scored on its similarity to what they opened (see
    /// [`MixWeights::anonymous_content`]).
    fn anonymous_candidates(
        &self,
        ctx: &UserContext,
        live: &LiveSignals,
        w: &MixWeights,
        g: Sources,
    ) -> Candidates<'_> {
        let mut c = Candidates::new(self);
        c.add_list(self.prior(), PRIOR, w.list_candidates);
        c.add_signals(live, w, g);
        if is_on(g, CONTENT) {
            let recent = self.history_indices(ctx, w.history_window);
            let profile = self.add_content_candidates(&mut c, &recent, w.neighbour_sources);
            self.score_content(&mut c, profile.as_ref());
        }
        c
    }
}
