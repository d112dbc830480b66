//! Implicit-feedback matrix factorisation: alternating least squares with confidence
//! weights (Hu, Koren & Volinsky 2008), solved per row with a few conjugate-gradient
//! steps warm-started from the previous iterate (Takács et al. 2011), in parallel.
//!
//! The strength `r` of a (user, item) pair becomes confidence `1 + alpha·r` on the
//! preference `1`; unobserved pairs have confidence 1 on preference 0. The user-side
//! Gramian trick (`YᵀY` once per sweep) keeps each row's cost proportional to its own
//! interactions, not to the catalogue.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// ALS hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AlsParams {
    /// Latent dimensions.
    pub factors: usize,
    /// L2 regularisation λ.
    pub regularization: f32,
    /// Confidence slope: `c = 1 + alpha·r`.
    pub alpha: f32,
    /// Alternating sweeps (users then items).
    pub iterations: usize,
    /// Conjugate-gradient steps per row and sweep.
    pub cg_steps: usize,
    /// Seed of the initial factors, so a retrain on the same data gives the same model.
    pub seed: u64,
}

impl Default for AlsParams {
    fn default() -> Self {
        Self {
            factors: 48,
            regularization: 0.05,
            alpha: 10.0,
            iterations: 12,
            cg_steps: 3,
            seed: 42,
        }
    }
}

/// A sparse matrix in compressed-row form.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Csr {
    /// Row starts into `indices`/`values`, one more than there are rows.
    pub indptr: Vec<usize>,
    /// Column of each entry, ascending within a row.
    pub indices: Vec<u32>,
    /// Value of each entry.
    pub values: Vec<f32>,
}

impl Csr {
    /// Builds a `rows × _` matrix from (row, column, value) triplets; duplicates add up.
    pub fn from_triplets(rows: usize, mut triplets: Vec<(u32, u32, f32)>) -> Self {
        triplets.par_sort_unstable_by_key(|&(r, c, _)| (r, c));
        let mut m = Csr {
            indptr: Vec::with_capacity(rows + 1),
            indices: Vec::with_capacity(triplets.len()),
            values: Vec::with_capacity(triplets.len()),
        };
        m.indptr.push(0);
        let mut row = 0usize;
        let mut last: Option<(u32, u32)> = None;
        for (r, c, v) in triplets {
            if r as usize >= rows {
                continue;
            }
            while row < r as usize {
                m.indptr.push(m.indices.len());
                row += 1;
            }
            if last == Some((r, c)) {
                if let Some(x) = m.values.last_mut() {
                    *x += v;
                }
            } else {
                m.indices.push(c);
                m.values.push(v);
                last = Some((r, c));
            }
        }
        while row < rows {
            m.indptr.push(m.indices.len());
            row += 1;
        }
        m
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.indptr.len().saturating_sub(1)
    }

    /// Number of stored entries.
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// Columns and values of row `r`.
    pub fn row(&self, r: usize) -> (&[u32], &[f32]) {
        let (a, b) = (self.indptr[r], self.indptr[r + 1]);
        (&self.indices[a..b], &self.values[a..b])
    }

    /// The transpose, with `cols` rows.
    pub fn transpose(&self, cols: usize) -> Csr {
        let mut counts = vec![0usize; cols + 1];
        for &c in &self.indices {
            counts[c as usize + 1] += 1;
        }
        for i in 0..cols {
            counts[i + 1] += counts[i];
        }
        let mut next = counts.clone();
        let mut indices = vec![0u32; self.nnz()];
        let mut values = vec![0f32; self.nnz()];
        for r in 0..self.rows() {
            let (cs, vs) = self.row(r);
            for (&c, &v) in cs.iter().zip(vs) {
                let at = next[c as usize];
                indices[at] = r as u32;
                values[at] = v;
                next[c as usize] += 1;
            }
        }
        Csr {
            indptr: counts,
            indices,
            values,
        }
    }
}

/// Fitted factors, row-major (`rows × factors`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Factors {
    /// Latent dimensions.
    pub dim: usize,
    /// Row-major values.
    pub data: Vec<f32>,
}

impl Factors {
    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.data.len().checked_div(self.dim).unwrap_or(0)
    }

    /// `FᵀF + λI` in f64 (`dim × dim`, row-major): the shared part of every row's
    /// normal equations, computed once per sweep and kept for folding in new users.
    pub fn gramian(&self, lambda: f64) -> Vec<f64> {
        let f = self.dim;
        let partial = self
            .data
            .par_chunks(f.max(1) * 1024)
            .map(|block| {
                let mut g = vec![0f64; f * f];
                for row in block.chunks_exact(f) {
                    for a in 0..f {
                        let ra = f64::from(row[a]);
                        if ra == 0.0 {
                            continue;
                        }
                        for b in a..f {
                            g[a * f + b] += ra * f64::from(row[b]);
                        }
                    }
                }
                g
            })
            .reduce(
                || vec![0f64; f * f],
                |mut a, b| {
                    a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
                    a
                },
            );
        let mut g = partial;
        for a in 0..f {
            for b in 0..a {
                g[a * f + b] = g[b * f + a];
            }
            g[a * f + a] += lambda;
        }
        g
    }
}

/// The two factor matrices of a fitted model.
#[derive(Debug, Clone, PartialEq)]
pub struct AlsModel {
    /// One row per matrix row (user).
    pub users: Factors,
    /// One row per matrix column (item).
    pub items: Factors,
}

/// Dot product over the common length. Eight independent partial sums: a single
/// running sum is one long chain of dependent additions the compiler may not reorder,
/// while eight chains fill a SIMD register (serving scores thousands of rows per
/// request with this).
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// One sweep: re-solves every row of `x` against fixed `y` for the rows of `m`.
fn sweep(m: &Csr, x: &mut Factors, y: &Factors, p: &AlsParams) {
    let f = x.dim;
    let yty64 = y.gramian(f64::from(p.regularization));
    let yty: Vec<f32> = yty64.iter().map(|&v| v as f32).collect();
    let alpha = p.alpha;
    x.data.par_chunks_mut(f).enumerate().for_each_init(
        || (vec![0f32; f], vec![0f32; f], vec![0f32; f]),
        |(r, pv, ap), (u, xu)| {
            let (cols, vals) = m.row(u);
            if cols.is_empty() {
                xu.fill(0.0);
                return;
            }
            // r = b − A·x with b = Σ c·y and A = YᵀY + λI + Σ (c−1)·y·yᵀ.
            for a in 0..f {
                r[a] = -dot(&yty[a * f..(a + 1) * f], xu);
            }
            for (&i, &v) in cols.iter().zip(vals) {
                let yi = y.row(i as usize);
                let c = 1.0 + alpha * v;
                let coef = c - (c - 1.0) * dot(yi, xu);
                r.iter_mut().zip(yi).for_each(|(ra, yv)| *ra += coef * yv);
            }
            pv.copy_from_slice(r);
            let mut rs_old = dot(r, r);
            for _ in 0..p.cg_steps {
                if rs_old < 1e-20 {
                    break;
                }
                for a in 0..f {
                    ap[a] = dot(&yty[a * f..(a + 1) * f], pv);
                }
                for (&i, &v) in cols.iter().zip(vals) {
                    let yi = y.row(i as usize);
                    let coef = alpha * v * dot(yi, pv);
                    ap.iter_mut().zip(yi).for_each(|(x, yv)| *x += coef * yv);
                }
                let step = rs_old / dot(pv, ap);
                if !step.is_finite() {
                    break;
                }
                xu.iter_mut()
                    .zip(pv.iter())
                    .for_each(|(x, pv)| *x += step * pv);
                r.iter_mut()
                    .zip(ap.iter())
                    .for_each(|(r, a)| *r -= step * a);
                let rs_new = dot(r, r);
                let beta = rs_new / rs_old;
                pv.iter_mut()
                    .zip(r.iter())
                    .for_each(|(pv, r)| *pv = r + beta * *pv);
                rs_old = rs_new;
            }
        },
    );
}

/// Fits user and item factors to `m` (users × `n_items`, values = interaction strength).
/// `progress` is called after every sweep with the number of sweeps done.
pub fn fit(m: &Csr, n_items: usize, p: &AlsParams, progress: &(dyn Fn(usize) + Sync)) -> AlsModel {
    let f = p.factors.max(1);
    let mut rng = StdRng::seed_from_u64(p.seed);
    let scale = 0.01 / (f as f32).sqrt();
    let mut init = |rows: usize| Factors {
        dim: f,
        data: (0..rows * f)
            .map(|_| rng.random_range(-1.0f32..1.0) * scale)
            .collect(),
    };
    let mut users = init(m.rows());
    let mut items = init(n_items);
    let mt = m.transpose(n_items);
    for it in 0..p.iterations {
        sweep(m, &mut users, &items, p);
        sweep(&mt, &mut items, &users, p);
        progress(it + 1);
    }
    AlsModel { users, items }
}

/// Solves `A·x = b` for symmetric positive-definite `A` (`n × n`, row-major) by
/// Cholesky; `None` if `A` is not positive definite.
fn cholesky_solve(mut a: Vec<f64>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    for j in 0..n {
        let mut d = a[j * n + j];
        for k in 0..j {
            d -= a[j * n + k] * a[j * n + k];
        }
        if d <= 0.0 || !d.is_finite() {
            return None;
        }
        let d = d.sqrt();
        a[j * n + j] = d;
        for i in j + 1..n {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = s / d;
        }
    }
    for i in 0..n {
        let mut s = b[i];
        for k in 0..i {
            s -= a[i * n + k] * b[k];
        }
        b[i] = s / a[i * n + i];
    }
    for i in (0..n).rev() {
        let mut s = b[i];
        for k in i + 1..n {
            s -= a[k * n + i] * b[k];
        }
        b[i] = s / a[i * n + i];
    }
    Some(b)
}

/// The exact least-squares user vector for interactions `read` = (item row, strength)
/// against fixed item factors: how a user unknown to the model is placed from their live
/// history without retraining. `gramian` is [`Factors::gramian`] with the model's λ.
pub fn fold_in(
    items: &Factors,
    gramian: &[f64],
    alpha: f32,
    read: &[(u32, f32)],
) -> Option<Vec<f32>> {
    let f = items.dim;
    if read.is_empty() || gramian.len() != f * f {
        return None;
    }
    let mut a = gramian.to_vec();
    let mut b = vec![0f64; f];
    for &(i, v) in read {
        if i as usize >= items.rows() {
            continue;
        }
        let y = items.row(i as usize);
        let c = 1.0 + f64::from(alpha) * f64::from(v);
        for p in 0..f {
            let yp = f64::from(y[p]);
            b[p] += c * yp;
            for q in 0..f {
                a[p * f + q] += (c - 1.0) * yp * f64::from(y[q]);
            }
        }
    }
    cholesky_solve(a, b).map(|x| x.into_iter().map(|v| v as f32).collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn dot_matches_the_plain_sum_at_every_length() {
        for n in 0..40usize {
            let a: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 3.0).collect();
            let b: Vec<f32> = (0..n).map(|i| 1.0 / (i as f32 + 1.0)).collect();
            let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!(
                (super::dot(&a, &b) - plain).abs() <= 1e-4 * plain.abs().max(1.0),
                "{n}"
            );
        }
    }

    use super::*;

    /// Users in `groups` blocks each read only their block's items (a rank-`groups`
    /// structure), with a few items per user held out.
    type Planted = (Vec<(u32, u32, f32)>, Vec<(u32, u32)>);

    fn planted(users: usize, items: usize, groups: usize, seed: u64) -> Planted {
        let mut rng = StdRng::seed_from_u64(seed);
        let (mut train, mut held) = (Vec::new(), Vec::new());
        for u in 0..users {
            let g = u % groups;
            let block: Vec<u32> = (0..items as u32)
                .filter(|i| *i as usize % groups == g)
                .collect();
            for &i in &block {
                if rng.random_bool(0.35) {
                    if rng.random_bool(0.15) {
                        held.push((u as u32, i));
                    } else {
                        train.push((u as u32, i, 1.0));
                    }
                }
            }
        }
        (train, held)
    }

    #[test]
    fn recovers_planted_low_rank_structure() {
        let (users, items, groups) = (240, 120, 4);
        let (train, held) = planted(users, items, groups, 7);
        let m = Csr::from_triplets(users, train.clone());
        let p = AlsParams {
            factors: 8,
            iterations: 8,
            ..Default::default()
        };
        let model = fit(&m, items, &p, &|_| {});
        // Every held-out (user, item) pair of the user's own block must outrank the
        // items of other blocks for that user.
        let mut correct = 0usize;
        let mut total = 0usize;
        for &(u, i) in &held {
            let xu = model.users.row(u as usize);
            let s = dot(xu, model.items.row(i as usize));
            for j in 0..items {
                if j % groups != u as usize % groups {
                    total += 1;
                    if s > dot(xu, model.items.row(j)) {
                        correct += 1;
                    }
                }
            }
        }
        let auc = correct as f64 / total as f64;
        assert!(auc > 0.97, "held-out AUC {auc}");
    }

    #[test]
    fn fold_in_matches_the_trained_user_vector() {
        let (users, items, groups) = (120, 60, 3);
        let (train, _) = planted(users, items, groups, 11);
        let m = Csr::from_triplets(users, train);
        let p = AlsParams {
            factors: 6,
            iterations: 10,
            cg_steps: 6,
            ..Default::default()
        };
        let model = fit(&m, items, &p, &|_| {});
        let g = model.items.gramian(f64::from(p.regularization));
        let (cols, vals) = m.row(5);
        let read: Vec<(u32, f32)> = cols.iter().copied().zip(vals.iter().copied()).collect();
        let x = fold_in(&model.items, &g, p.alpha, &read).expect("solvable");
        let trained = model.users.row(5);
        let diff: f32 = x
            .iter()
            .zip(trained)
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f32>()
            .sqrt();
        let norm: f32 = trained.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!(
            diff < 0.05 * norm,
            "fold-in {diff} away from a vector of norm {norm}"
        );
        assert!(fold_in(&model.items, &g, p.alpha, &[]).is_none());
    }

    #[test]
    fn csr_adds_duplicates_and_transposes() {
        let m = Csr::from_triplets(3, vec![(2, 1, 1.0), (0, 0, 2.0), (2, 1, 0.5), (0, 2, 1.0)]);
        assert_eq!(m.indptr, vec![0, 2, 2, 3]);
        assert_eq!(m.row(2), (&[1u32][..], &[1.5f32][..]));
        let t = m.transpose(3);
        assert_eq!(t.row(1), (&[2u32][..], &[1.5f32][..]));
        assert_eq!(t.row(2), (&[0u32][..], &[1.0f32][..]));
        assert_eq!(t.transpose(3), m);
    }

    #[test]
    fn cholesky_solves_spd_systems() {
        let a = vec![4.0, 2.0, 2.0, 3.0];
        let x = cholesky_solve(a, vec![2.0, 1.0]).expect("spd");
        assert!((x[0] - 0.5).abs() < 1e-12 && x[1].abs() < 1e-12);
        assert!(cholesky_solve(vec![0.0, 1.0, 1.0, 0.0], vec![1.0, 1.0]).is_none());
    }
}
