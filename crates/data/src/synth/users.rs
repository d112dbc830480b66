//! Generated readers: type, persona (an engagement style tied to a pool of topics), a
//! few preferred topics, a heavy-tailed amount of activity in sessions, and the clicks
//! of the validation days that follow the same preferences.

use std::collections::HashSet;

use newsrec_core::UserType;
use newsrec_core::time::DAY_MS;
use rand::Rng;
use rand::distr::Distribution;
use rand::distr::weighted::WeightedIndex;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Exp, LogNormal, Normal, Poisson};

use super::vocab::TOPICS;
use super::world::{DIURNAL, World, diurnal_time};
use super::{TRAINING_END_MS, TRAINING_START_MS, VALIDATION_END_MS};
use crate::g1::{TrainingRecord, ValidationRecord};

/// Longest history (the real maximum is 7,004).
const MAX_HISTORY: f64 = 7_004.0;
/// Probability, per interaction and column, of an implausible value.
const OUTLIER_RATE: f64 = 0.0025;

/// How a persona engages with what it reads.
struct Style {
    /// Pool of topics the persona's readers prefer (indexes into [`TOPICS`]).
    topics: &'static [u16],
    /// Multiplier of clicks inside the page.
    clicks: f64,
    /// Multiplier of time on page.
    time: f64,
    /// Mean scroll percent.
    scroll: f64,
    /// Mean extra visits per interaction.
    visits: f64,
}

/// Personas: engagement behaviour and taste go together, so behaviour features alone
/// already say something about what a reader opens.
const PERSONAS: [Style; 5] = [
    Style {
        topics: &[2, 19, 20, 21, 23],
        clicks: 0.7,
        time: 0.45,
        scroll: 28.0,
        visits: 0.05,
    },
    Style {
        topics: &[0, 1, 15, 12, 13],
        clicks: 1.0,
        time: 2.4,
        scroll: 82.0,
        visits: 0.08,
    },
    Style {
        topics: &[6, 7, 8, 16, 23],
        clicks: 4.0,
        time: 1.0,
        scroll: 50.0,
        visits: 0.10,
    },
    Style {
        topics: &[4, 9, 10, 14, 21],
        clicks: 1.0,
        time: 1.3,
        scroll: 55.0,
        visits: 0.7,
    },
    Style {
        topics: &[3, 5, 11, 17, 18, 22],
        clicks: 1.0,
        time: 1.0,
        scroll: 60.0,
        visits: 0.12,
    },
];
const PERSONA_WEIGHTS: [f64; 5] = [0.24, 0.2, 0.2, 0.16, 0.2];

/// What one chunk of users produced.
#[derive(Default)]
pub(super) struct UsersOut {
    /// Training CSV lines.
    pub training: String,
    /// Validation CSV lines.
    pub validation: String,
    /// Users generated.
    pub users: u64,
    /// `Logged` users generated.
    pub logged_users: u64,
    /// Training interactions.
    pub interactions: u64,
    /// Training interactions of `Logged` users.
    pub logged_interactions: u64,
    /// Users with validation clicks.
    pub validation_users: u64,
    /// Validation interactions.
    pub validation_interactions: u64,
    /// Engagement values replaced by outliers (all columns).
    pub outliers: u64,
}

/// Distributions shared by every user of a chunk (constant parameters).
pub(super) struct Dists {
    persona: WeightedIndex<f64>,
    hours: WeightedIndex<f64>,
    size_logged: LogNormal<f64>,
    size_anon: LogNormal<f64>,
    lifetime: Exp<f64>,
    gap: Exp<f64>,
    noise: Normal<f64>,
    jitter: LogNormal<f64>,
}

impl Dists {
    pub fn new() -> Self {
        // All parameters are constants, valid by construction.
        Self {
            persona: WeightedIndex::new(PERSONA_WEIGHTS).expect("positive weights"),
            hours: WeightedIndex::new(DIURNAL).expect("positive weights"),
            // Heavy tails: overall median 2, mean about 14; Logged readers about three
            // times as active, so they make 45% of interactions while 21% of users.
            size_logged: LogNormal::new(4.4f64.ln(), 1.95).expect("valid sigma"),
            size_anon: LogNormal::new(1.45f64.ln(), 1.92).expect("valid sigma"),
            lifetime: Exp::new(1.0 / (9.0 * DAY_MS as f64)).expect("positive rate"),
            gap: Exp::new(1.0 / 20_000.0).expect("positive rate"),
            noise: Normal::new(0.0, 1.0).expect("valid sigma"),
            jitter: LogNormal::new(0.0, 0.2).expect("valid sigma"),
        }
    }
}

/// One reader's latent traits.
struct Reader {
    user_type: UserType,
    persona: usize,
    /// Preferred topics with their weights.
    prefs: Vec<(usize, f64)>,
    /// Per-reader multipliers of clicks, time, visits.
    jitter: [f64; 3],
}

/// 64 lowercase hex characters.
fn user_id(rng: &mut ChaCha8Rng) -> String {
    let mut s = String::with_capacity(64);
    for _ in 0..4 {
        s.push_str(&format!("{:016x}", rng.random::<u64>()));
    }
    s
}

fn reader(rng: &mut ChaCha8Rng, d: &Dists, logged_share: f64) -> Reader {
    let user_type = if rng.random_bool(logged_share) {
        UserType::Logged
    } else {
        UserType::NonLogged
    };
    let persona = d.persona.sample(rng);
    let pool = PERSONAS[persona].topics;
    let k = 1 + usize::from(rng.random_bool(0.6)) + usize::from(rng.random_bool(0.3));
    let mut prefs: Vec<(usize, f64)> = Vec::with_capacity(k);
    let weights = [0.6, 0.25, 0.15];
    while prefs.len() < k {
        let topic = if prefs.is_empty() || rng.random_bool(0.8) {
            pool[rng.random_range(0..pool.len())] as usize
        } else {
            rng.random_range(0..TOPICS.len())
        };
        if prefs.iter().all(|(t, _)| *t != topic) {
            prefs.push((topic, weights[prefs.len()]));
        }
    }
    let jitter = [
        d.jitter.sample(rng),
        d.jitter.sample(rng),
        d.jitter.sample(rng),
    ];
    Reader {
        user_type,
        persona,
        prefs,
        jitter,
    }
}

impl Reader {
    fn topic(&self, rng: &mut ChaCha8Rng, world: &World) -> usize {
        if rng.random_bool(world.shape.preference_strength) {
            let total: f64 = self.prefs.iter().map(|(_, w)| w).sum();
            let mut x = rng.random::<f64>() * total;
            for (t, w) in &self.prefs {
                if x < *w {
                    return *t;
                }
                x -= w;
            }
            self.prefs[0].0
        } else {
            world.topic_pick.sample(rng)
        }
    }

    fn prefers(&self, topic: usize) -> bool {
        self.prefs.iter().any(|(t, _)| *t == topic)
    }
}

/// Engagement of one interaction: `(clicks, time_on_page_ms, scroll_pct, visits)`.
fn engagement(
    rng: &mut ChaCha8Rng,
    d: &Dists,
    r: &Reader,
    preferred: bool,
    outliers: &mut u64,
) -> (u32, u64, f64, u32) {
    let s = &PERSONAS[r.persona];
    let boost = if preferred { 1.5 } else { 1.0 };
    let z = |rng: &mut ChaCha8Rng| d.noise.sample(rng);
    let clicks = (s.clicks * r.jitter[0] * boost * (1.9 * z(rng)).exp()).floor() as u32;
    let time = (60_000.0 * s.time * r.jitter[1] * boost * (0.8 * z(rng)).exp()).max(5_000.0) as u64;
    let scroll_mean = s.scroll + if preferred { 12.0 } else { 0.0 };
    let scroll = ((scroll_mean + 22.0 * z(rng)).clamp(0.0, 100.0) * 100.0).round() / 100.0;
    let visits = 1 + Poisson::new(s.visits * r.jitter[2])
        .map(|p| p.sample(rng) as u32)
        .unwrap_or(0);
    let mut out = (clicks, time, scroll, visits);
    // Instrumentation glitches, as in every real G1 column.
    let mut log_uniform = |rng: &mut ChaCha8Rng, lo: f64, hi: f64| {
        *outliers += 1;
        (lo.ln() + rng.random::<f64>() * (hi.ln() - lo.ln())).exp()
    };
    if rng.random_bool(OUTLIER_RATE) {
        out.0 = log_uniform(rng, 251.0, 14_562.0) as u32;
    }
    if rng.random_bool(OUTLIER_RATE) {
        out.1 = log_uniform(rng, 1_800_001.0, 46_000_000.0) as u64;
    }
    if rng.random_bool(OUTLIER_RATE) {
        out.2 = (log_uniform(rng, 100.5, 526_275.0) * 100.0).round() / 100.0;
    }
    if rng.random_bool(OUTLIER_RATE) {
        out.3 = log_uniform(rng, 11.0, 654.0) as u32;
    }
    out
}

/// Session start times and sizes for `n` clicks between `from` and `to`.
fn session_times(rng: &mut ChaCha8Rng, d: &Dists, n: usize, from: i64, to: i64) -> Vec<Vec<i64>> {
    let mut sessions = Vec::new();
    let mut left = n;
    let days = ((to - from) / DAY_MS).max(1);
    while left > 0 {
        let size = (1 + (rng.random::<f64>().ln() / 0.55f64.ln()) as usize).min(left);
        left -= size;
        let day_start = from - from.rem_euclid(DAY_MS) + rng.random_range(0..=days) * DAY_MS;
        let mut t = diurnal_time(rng, day_start, &d.hours);
        if t < from || t >= to {
            t = rng.random_range(from..to);
        }
        let mut clicks = Vec::with_capacity(size);
        for _ in 0..size {
            clicks.push(t.min(to - 1));
            t += 5_000 + d.gap.sample(rng) as i64 * 4;
        }
        sessions.push(clicks);
    }
    sessions.sort_by_key(|s| s[0]);
    sessions
}

/// Generates `n` users into CSV text.
pub(super) fn generate(world: &World, d: &Dists, rng: &mut ChaCha8Rng, n: usize) -> UsersOut {
    let mut out = UsersOut::default();
    for _ in 0..n {
        one_user(world, d, rng, &mut out);
    }
    out
}

fn one_user(world: &World, d: &Dists, rng: &mut ChaCha8Rng, out: &mut UsersOut) {
    let id = user_id(rng);
    let r = reader(rng, d, world.shape.logged_share);
    let stay = world.shape.session_stickiness;
    let logged = r.user_type == UserType::Logged;
    let size = if logged { &d.size_logged } else { &d.size_anon };
    let n = size.sample(rng).clamp(1.0, MAX_HISTORY).round() as usize;
    // Cookie identities are short-lived; signed-in readers span the whole window.
    let (from, to) = if logged {
        (TRAINING_START_MS, TRAINING_END_MS)
    } else {
        let span = TRAINING_END_MS - TRAINING_START_MS;
        let life = ((d.lifetime.sample(rng) as i64) + DAY_MS).min(span);
        let start = TRAINING_START_MS + rng.random_range(0..=span - life);
        (start, start + life)
    };
    let mut seen: HashSet<u32> = HashSet::with_capacity(n);
    let mut rec = TrainingRecord {
        user_id: &id,
        user_type: r.user_type,
        pages: Vec::with_capacity(n),
        timestamps: Vec::with_capacity(n),
        clicks: Vec::with_capacity(n),
        time_on_page_ms: Vec::with_capacity(n),
        scroll_pct: Vec::with_capacity(n),
        page_visits: Vec::with_capacity(n),
    };
    for session in session_times(rng, d, n, from, to) {
        let mut topic = r.topic(rng, world);
        for t in session {
            if rng.random_bool(1.0 - stay) {
                topic = r.topic(rng, world);
            }
            let item = pick_unseen(world, rng, topic, t, &mut seen);
            let (c, tm, s, v) = engagement(rng, d, &r, r.prefers(topic), &mut out.outliers);
            rec.pages.push(world.items[item as usize].page.as_str());
            rec.timestamps.push(t);
            rec.clicks.push(c);
            rec.time_on_page_ms.push(tm);
            rec.scroll_pct.push(s);
            rec.page_visits.push(v);
        }
    }
    rec.push_csv(&mut out.training);
    out.users += 1;
    out.interactions += n as u64;
    if logged {
        out.logged_users += 1;
        out.logged_interactions += n as u64;
    }

    // Validation: a subset of the same readers, the two days after training, with the
    // same tastes. Active readers come back more often.
    let p_back = 0.045 + 0.5 * (1.0 - (-(n as f64) / 40.0).exp());
    if !rng.random_bool(p_back.min(0.95)) {
        return;
    }
    let k = 1 + Poisson::new(0.2 + 0.32 * (n as f64).sqrt())
        .map(|p| (p.sample(rng) as usize).min(60))
        .unwrap_or(0);
    let mut v = ValidationRecord {
        user_id: &id,
        user_type: r.user_type,
        pages: Vec::with_capacity(k),
        timestamps: Vec::with_capacity(k),
    };
    for session in session_times(rng, d, k, TRAINING_END_MS + 10_000, VALIDATION_END_MS) {
        let mut topic = r.topic(rng, world);
        for t in session {
            if rng.random_bool(1.0 - stay) {
                topic = r.topic(rng, world);
            }
            let item = pick_unseen(world, rng, topic, t, &mut seen);
            v.pages.push(world.items[item as usize].page.as_str());
            v.timestamps.push(t);
        }
    }
    v.push_csv(&mut out.validation);
    out.validation_users += 1;
    out.validation_interactions += k as u64;
}

/// An article the reader has not opened yet (a few retries; re-reads are rare but real).
fn pick_unseen(
    world: &World,
    rng: &mut ChaCha8Rng,
    topic: usize,
    t: i64,
    seen: &mut HashSet<u32>,
) -> u32 {
    let mut item = world.sample(rng, topic, t);
    for _ in 0..6 {
        if seen.insert(item) {
            return item;
        }
        item = world.sample(rng, topic, t);
    }
    item
}
