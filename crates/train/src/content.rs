//! The content model: TF-IDF vectors over title + body + caption and precomputed
//! content neighbours.
//!
//! Vectors are truncated to each article's strongest terms and L2-normalised, so a dot
//! product is a cosine and one article costs a few hundred bytes. Neighbours are
//! computed once at training time through an inverted index restricted to the serving
//! pool (current articles): a request then reads a precomputed list instead of scanning
//! the catalogue.

use std::collections::HashMap;

use rayon::prelude::*;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::text::for_each_token;

/// How the content model is built.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContentParams {
    /// Terms kept per article (the strongest by TF-IDF weight).
    pub max_terms: usize,
    /// Terms in fewer articles than this are dropped (they link nothing).
    pub min_df: u32,
    /// Terms in more than this fraction of articles are dropped (they link everything).
    pub max_df_ratio: f64,
    /// How many times title tokens count: headlines name the topic.
    pub title_weight: u32,
    /// How many times caption tokens count.
    pub caption_weight: u32,
    /// Characters of the body read: the lead carries the topic, and it bounds the work
    /// on very long articles.
    pub body_chars: usize,
    /// Neighbours stored per article.
    pub neighbours: usize,
    /// Longest posting list used when computing neighbours: a term shared by thousands
    /// of articles adds little to any single similarity but costs quadratic work.
    pub posting_cap: usize,
}

impl Default for ContentParams {
    fn default() -> Self {
        Self {
            max_terms: 40,
            min_df: 2,
            max_df_ratio: 0.2,
            title_weight: 3,
            caption_weight: 2,
            body_chars: 2_000,
            neighbours: 30,
            posting_cap: 400,
        }
    }
}

/// The text of one article.
#[derive(Debug, Clone, Copy, Default)]
pub struct ItemText<'a> {
    /// Headline.
    pub title: &'a str,
    /// Article text.
    pub body: &'a str,
    /// Image caption.
    pub caption: &'a str,
}

/// TF-IDF vectors of every article and their content neighbours, as compressed rows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContentModel {
    /// Row starts into `terms`/`weights`, one more than there are articles.
    offsets: Vec<u32>,
    /// Term ids of each row, ascending.
    terms: Vec<u32>,
    /// L2-normalised TF-IDF weights, parallel to `terms`.
    weights: Vec<f32>,
    /// Row starts into `nb_items`/`nb_scores`.
    nb_offsets: Vec<u32>,
    /// Neighbour article indices, most similar first.
    nb_items: Vec<u32>,
    /// Cosine similarity of each neighbour.
    nb_scores: Vec<f32>,
    /// Number of distinct terms kept.
    vocabulary: u32,
}

/// A reader's content profile: the normalised sum of the vectors of articles they read.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    weights: ProfileWeights,
}

/// Term → weight. Scoring a request's candidates looks terms up thousands of times: a
/// dense array indexed by term id while the vocabulary is small enough to allocate one
/// per request, else a map with a multiplicative hash of the id.
#[derive(Debug, Clone)]
enum ProfileWeights {
    Dense(Vec<f32>),
    Sparse(FxHashMap<u32, f32>),
}

impl Default for ProfileWeights {
    fn default() -> Self {
        ProfileWeights::Sparse(FxHashMap::default())
    }
}

/// Largest vocabulary whose profiles are dense arrays (32 KiB each: small enough to
/// allocate and zero per request without a trip to the system allocator's mmap path).
const DENSE_PROFILE_MAX: usize = 1 << 13;

impl ProfileWeights {
    fn get(&self, t: u32) -> f32 {
        match self {
            ProfileWeights::Dense(v) => v.get(t as usize).copied().unwrap_or(0.0),
            ProfileWeights::Sparse(m) => m.get(&t).copied().unwrap_or(0.0),
        }
    }

    /// Scales the weights to unit length (left as they are when all zero).
    fn normalise(&mut self) {
        match self {
            ProfileWeights::Dense(v) => {
                let norm = v.iter().map(|w| w * w).sum::<f32>().sqrt();
                if norm > 0.0 {
                    v.iter_mut().for_each(|w| *w /= norm);
                }
            }
            ProfileWeights::Sparse(m) => {
                let norm = m.values().map(|w| w * w).sum::<f32>().sqrt();
                if norm > 0.0 {
                    m.values_mut().for_each(|w| *w /= norm);
                }
            }
        }
    }
}

impl Profile {
    /// Whether the profile has no terms (nothing read had text).
    pub fn is_empty(&self) -> bool {
        match &self.weights {
            ProfileWeights::Dense(v) => v.iter().all(|w| *w == 0.0),
            ProfileWeights::Sparse(m) => m.is_empty(),
        }
    }
}

/// Stable 64-bit FNV-1a: term hashes must not depend on the process (std's hasher is
/// randomly keyed), and collisions among ~10⁶ terms in 2⁶⁴ are negligible.
fn term_hash(token: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in token.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn truncate_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn term_counts(text: &ItemText<'_>, p: &ContentParams) -> Vec<(u64, f32)> {
    let mut counts: HashMap<u64, f32> = HashMap::new();
    let mut add =
        |s: &str, w: f32| for_each_token(s, |t| *counts.entry(term_hash(t)).or_default() += w);
    add(text.title, p.title_weight as f32);
    add(text.caption, p.caption_weight as f32);
    add(truncate_chars(text.body, p.body_chars), 1.0);
    counts.into_iter().collect()
}

impl ContentModel {
    /// Heap bytes of its arrays.
    pub(crate) fn heap_bytes(&self) -> usize {
        use crate::heap::vec_bytes;
        vec_bytes(&self.offsets)
            + vec_bytes(&self.terms)
            + vec_bytes(&self.weights)
            + vec_bytes(&self.nb_offsets)
            + vec_bytes(&self.nb_items)
            + vec_bytes(&self.nb_scores)
    }

    /// Builds vectors for every article of `texts` (indexed like the catalogue) and
    /// neighbours for every article among `targets` (the serving pool).
    pub fn build(texts: &[ItemText<'_>], targets: &[u32], p: &ContentParams) -> Self {
        let n = texts.len();
        let counts: Vec<Vec<(u64, f32)>> = texts.par_iter().map(|t| term_counts(t, p)).collect();
        let df: HashMap<u64, u32> = counts
            .par_iter()
            .fold(HashMap::new, |mut acc: HashMap<u64, u32>, row| {
                for (h, _) in row {
                    *acc.entry(*h).or_default() += 1;
                }
                acc
            })
            .reduce(HashMap::new, |mut a, b| {
                let (mut big, small) = if a.len() >= b.len() { (a, b) } else { (b, a) };
                for (h, c) in small {
                    *big.entry(h).or_default() += c;
                }
                a = big;
                a
            });
        let max_df = ((n as f64 * p.max_df_ratio).ceil() as u32).max(p.min_df);
        let mut kept: Vec<(u64, u32)> = df
            .into_iter()
            .filter(|&(_, d)| d >= p.min_df && d <= max_df)
            .collect();
        // Sorting by hash gives term ids that do not depend on map iteration order.
        kept.sort_unstable_by_key(|&(h, _)| h);
        let vocab: HashMap<u64, (u32, f32)> = kept
            .iter()
            .enumerate()
            .map(|(id, &(h, d))| {
                let idf = ((1.0 + n as f64) / (1.0 + f64::from(d))).ln() + 1.0;
                (h, (id as u32, idf as f32))
            })
            .collect();
        let rows: Vec<Vec<(u32, f32)>> = counts
            .into_par_iter()
            .map(|row| {
                let mut v: Vec<(u32, f32)> = row
                    .into_iter()
                    .filter_map(|(h, tf)| {
                        vocab.get(&h).map(|&(id, idf)| (id, (1.0 + tf.ln()) * idf))
                    })
                    .collect();
                if v.len() > p.max_terms {
                    v.select_nth_unstable_by(p.max_terms - 1, |a, b| b.1.total_cmp(&a.1));
                    v.truncate(p.max_terms);
                }
                let norm = v.iter().map(|(_, w)| w * w).sum::<f32>().sqrt();
                if norm > 0.0 {
                    v.iter_mut().for_each(|(_, w)| *w /= norm);
                }
                v.sort_unstable_by_key(|&(t, _)| t);
                v
            })
            .collect();
        let mut model = ContentModel {
            vocabulary: kept.len() as u32,
            ..Default::default()
        };
        model.offsets.push(0);
        for row in &rows {
            for &(t, w) in row {
                model.terms.push(t);
                model.weights.push(w);
            }
            model.offsets.push(model.terms.len() as u32);
        }
        model.build_neighbours(targets, p);
        model
    }

    fn build_neighbours(&mut self, targets: &[u32], p: &ContentParams) {
        let n = self.len();
        let mut postings: Vec<Vec<(u32, f32)>> = vec![Vec::new(); self.vocabulary as usize];
        for &j in targets {
            if (j as usize) < n {
                let (terms, weights) = self.vector(j);
                for (&t, &w) in terms.iter().zip(weights) {
                    postings[t as usize].push((j, w));
                }
            }
        }
        postings.par_iter_mut().for_each(|list| {
            if list.len() > p.posting_cap {
                list.select_nth_unstable_by(p.posting_cap - 1, |a, b| b.1.total_cmp(&a.1));
                list.truncate(p.posting_cap);
            }
        });
        let k = p.neighbours;
        let lists: Vec<Vec<(u32, f32)>> = (0..n as u32)
            .into_par_iter()
            .map_init(
                || (vec![0f32; n], Vec::<u32>::new()),
                |(acc, touched), i| {
                    let (terms, weights) = self.vector(i);
                    for (&t, &w) in terms.iter().zip(weights) {
                        for &(j, wj) in &postings[t as usize] {
                            if acc[j as usize] == 0.0 {
                                touched.push(j);
                            }
                            acc[j as usize] += w * wj;
                        }
                    }
                    let mut best: Vec<(u32, f32)> = touched
                        .drain(..)
                        .filter(|&j| j != i)
                        .map(|j| (j, acc[j as usize]))
                        .collect();
                    for &(j, _) in &best {
                        acc[j as usize] = 0.0;
                    }
                    acc[i as usize] = 0.0;
                    if best.len() > k {
                        best.select_nth_unstable_by(k - 1, |a, b| {
                            b.1.total_cmp(&a.1).then(a.0.cmp(&b.0))
                        });
                        best.truncate(k);
                    }
                    best.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                    best
                },
            )
            .collect();
        self.nb_offsets = Vec::with_capacity(n + 1);
        self.nb_offsets.push(0);
        for list in lists {
            for (j, s) in list {
                self.nb_items.push(j);
                self.nb_scores.push(s);
            }
            self.nb_offsets.push(self.nb_items.len() as u32);
        }
    }

    /// Number of articles.
    pub fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// Whether the model has no articles.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of distinct terms kept.
    pub fn vocabulary(&self) -> usize {
        self.vocabulary as usize
    }

    /// The (term ids, weights) of article `i`; empty when out of range or textless.
    pub fn vector(&self, i: u32) -> (&[u32], &[f32]) {
        let i = i as usize;
        if i + 1 >= self.offsets.len() {
            return (&[], &[]);
        }
        let (a, b) = (self.offsets[i] as usize, self.offsets[i + 1] as usize);
        (&self.terms[a..b], &self.weights[a..b])
    }

    /// Cosine similarity of two articles.
    pub fn cosine(&self, a: u32, b: u32) -> f32 {
        let (ta, wa) = self.vector(a);
        let (tb, wb) = self.vector(b);
        let (mut i, mut j, mut s) = (0, 0, 0.0);
        while i < ta.len() && j < tb.len() {
            match ta[i].cmp(&tb[j]) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    s += wa[i] * wb[j];
                    i += 1;
                    j += 1;
                }
            }
        }
        s
    }

    /// The precomputed content neighbours of article `i`, most similar first.
    pub fn neighbours(&self, i: u32) -> impl Iterator<Item = (u32, f32)> + '_ {
        let i = i as usize;
        let (a, b) = if i + 1 < self.nb_offsets.len() {
            (self.nb_offsets[i] as usize, self.nb_offsets[i + 1] as usize)
        } else {
            (0, 0)
        };
        self.nb_items[a..b]
            .iter()
            .copied()
            .zip(self.nb_scores[a..b].iter().copied())
    }

    /// The profile of a reader from (article, weight) pairs.
    pub fn profile(&self, read: impl IntoIterator<Item = (u32, f32)>) -> Profile {
        self.profile_as(read, self.vocabulary() <= DENSE_PROFILE_MAX)
    }

    fn profile_as(&self, read: impl IntoIterator<Item = (u32, f32)>, dense: bool) -> Profile {
        let mut weights = if dense {
            ProfileWeights::Dense(vec![0.0; self.vocabulary()])
        } else {
            ProfileWeights::Sparse(FxHashMap::default())
        };
        for (i, w) in read {
            let (terms, ws) = self.vector(i);
            for (&t, &x) in terms.iter().zip(ws) {
                match &mut weights {
                    ProfileWeights::Dense(v) => {
                        if let Some(slot) = v.get_mut(t as usize) {
                            *slot += w * x;
                        }
                    }
                    ProfileWeights::Sparse(m) => *m.entry(t).or_default() += w * x,
                }
            }
        }
        weights.normalise();
        Profile { weights }
    }

    /// Cosine similarity of a profile and an article.
    pub fn score(&self, profile: &Profile, i: u32) -> f32 {
        let (terms, ws) = self.vector(i);
        terms
            .iter()
            .zip(ws)
            .map(|(&t, w)| profile.weights.get(t) * w)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts() -> Vec<ItemText<'static>> {
        vec![
            ItemText {
                title: "Flamengo vence o Vasco no Maracanã",
                body: "O Flamengo venceu o clássico contra o Vasco no Maracanã lotado.",
                caption: "torcida do Flamengo",
            },
            ItemText {
                title: "Vasco perde clássico para o Flamengo",
                body: "Derrota do Vasco no Maracanã diante do Flamengo.",
                caption: "",
            },
            ItemText {
                title: "Inflação sobe em julho",
                body: "A inflação medida pelo IPCA subiu em julho, segundo o IBGE.",
                caption: "preços no mercado",
            },
            ItemText {
                title: "IPCA: inflação de julho",
                body: "O IBGE divulgou a inflação de julho; o IPCA acelerou.",
                caption: "",
            },
            ItemText {
                title: "Eleição em São Paulo",
                body: "Candidatos ao governo de São Paulo debatem propostas para a eleição.",
                caption: "",
            },
            ItemText {
                title: "",
                body: "",
                caption: "",
            },
        ]
    }

    #[test]
    fn dense_and_sparse_profiles_score_alike() {
        let p = ContentParams {
            min_df: 1,
            max_df_ratio: 1.0,
            ..ContentParams::default()
        };
        let m = ContentModel::build(&texts(), &[0, 1, 2, 3, 4], &p);
        let read = [(0u32, 1.0f32), (2, 0.5)];
        let (dense, sparse) = (m.profile_as(read, true), m.profile_as(read, false));
        assert!(!dense.is_empty() && !sparse.is_empty());
        for i in 0..m.len() as u32 {
            assert!(
                (m.score(&dense, i) - m.score(&sparse, i)).abs() < 1e-6,
                "{i}"
            );
        }
    }

    #[test]
    fn tfidf_vectors_are_unit_length_and_similar_articles_are_neighbours() {
        let p = ContentParams {
            min_df: 1,
            max_df_ratio: 0.5,
            ..Default::default()
        };
        let m = ContentModel::build(&texts(), &[0, 1, 2, 3, 4], &p);
        assert_eq!(m.len(), 6);
        for i in 0..5 {
            let (_, w) = m.vector(i);
            let norm: f32 = w.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-5, "article {i} has norm {norm}");
        }
        assert!(m.vector(5).0.is_empty(), "no text, no vector");
        assert!(m.cosine(0, 1) > 0.3 && m.cosine(2, 3) > 0.3);
        assert!(m.cosine(0, 2) < 0.05 && m.cosine(1, 3) < 0.05);
        assert_eq!(m.neighbours(0).next().map(|(j, _)| j), Some(1));
        assert_eq!(m.neighbours(3).next().map(|(j, _)| j), Some(2));
        assert!(
            m.neighbours(0).all(|(j, _)| j != 0),
            "an article is not its own neighbour"
        );
        let (n0, s0) = m.neighbours(0).next().expect("a neighbour");
        assert!((s0 - m.cosine(0, n0)).abs() < 1e-5);
    }

    #[test]
    fn idf_downweights_common_terms_and_accents_do_not_split_terms() {
        let t = vec![
            ItemText {
                title: "eleição eleição mercado",
                body: "",
                caption: "",
            },
            ItemText {
                title: "ELEICAO mercado",
                body: "",
                caption: "",
            },
            ItemText {
                title: "mercado praia",
                body: "",
                caption: "",
            },
            ItemText {
                title: "mercado praia",
                body: "",
                caption: "",
            },
        ];
        let p = ContentParams {
            min_df: 1,
            max_df_ratio: 1.0,
            ..Default::default()
        };
        let m = ContentModel::build(&t, &[0, 1, 2, 3], &p);
        let (terms, weights) = m.vector(0);
        assert_eq!(terms.len(), 2, "eleição and eleicao are one term");
        // "mercado" is in every article, "eleicao" in two: the rarer term weighs more.
        let common = m
            .vector(2)
            .0
            .iter()
            .copied()
            .collect::<std::collections::HashSet<_>>();
        let (rare_w, common_w): (Vec<f32>, Vec<f32>) =
            terms
                .iter()
                .zip(weights)
                .fold((vec![], vec![]), |(mut r, mut c), (t, w)| {
                    if common.contains(t) {
                        c.push(*w)
                    } else {
                        r.push(*w)
                    }
                    (r, c)
                });
        assert!(rare_w[0] > common_w[0]);
        assert!(m.cosine(0, 1) > 0.99);
    }

    #[test]
    fn profile_scores_follow_reading() {
        let p = ContentParams {
            min_df: 1,
            max_df_ratio: 0.5,
            ..Default::default()
        };
        let m = ContentModel::build(&texts(), &[0, 1, 2, 3, 4], &p);
        let profile = m.profile([(0, 1.0), (1, 0.5)]);
        assert!(!profile.is_empty());
        assert!(m.score(&profile, 1) > m.score(&profile, 3));
        assert!(m.profile([(5, 1.0)]).is_empty());
    }
}
