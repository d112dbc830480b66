//! The semi-logged tier's behaviour clusters: the shared user feature vector
//! ([`UserAggregates::vector`]) → standard scaling → PCA → KMeans, fitted with linfa.
//!
//! The fitted scaler, projection and centroids are kept as plain numbers so that any
//! user — also one never seen in training — is placed from their live features with a
//! few hundred multiply-adds, and so the artifact does not depend on linfa's types.

use linfa::DatasetBase;
use linfa::traits::{Fit, Predict};
use linfa_clustering::KMeans;
use linfa_reduction::Pca;
use ndarray::{Array2, Axis};
use newsrec_core::{USER_FEATURE_DIM, UserAggregates};
use serde::{Deserialize, Serialize};

use tracing::warn;

use crate::error::TrainError;

/// PCA of the scaled rows. linfa's truncated SVD (LOBPCG) can break down on some
/// inputs: NaN in its iterations ends in a panic inside linfa. Then the even rows, and
/// then the odd rows, are tried (the same users' distribution, another matrix), and
/// only if all three break is it an error.
fn fit_pca(x: &Array2<f64>, components: usize) -> Result<Pca<f64>, String> {
    let attempt = |rows: Array2<f64>| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Pca::params(components)
                .fit(&DatasetBase::from(rows))
                .map_err(|e| e.to_string())
        }))
        .unwrap_or_else(|_| Err("the truncated SVD broke down (NaN)".into()))
    };
    let mut last = match attempt(x.clone()) {
        Ok(p) => return Ok(p),
        Err(e) => e,
    };
    for start in 0..2 {
        warn!(reason = %last, start, "PCA failed; fitting it on every other row");
        let rows: Vec<usize> = (start..x.nrows()).step_by(2).collect();
        let half = x.select(Axis(0), &rows);
        match attempt(half) {
            Ok(p) => return Ok(p),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Clustering hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterParams {
    /// PCA components kept.
    pub components: usize,
    /// KMeans clusters.
    pub clusters: usize,
    /// Users the scaler/PCA/KMeans are fitted on (a deterministic sample beyond this):
    /// more adds time, not accuracy, to 10-dimensional centroids.
    pub max_fit_users: usize,
    /// Scaled features are clipped to ±this many standard deviations, so the heavy tail
    /// of G1 engagement does not claim clusters of its own.
    pub clip: f64,
    /// KMeans restarts.
    pub runs: usize,
}

impl Default for ClusterParams {
    fn default() -> Self {
        Self {
            components: 5,
            clusters: 8,
            max_fit_users: 100_000,
            clip: 4.0,
            runs: 3,
        }
    }
}

/// Fitted scaler, PCA and centroids.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Clusterer {
    /// Feature means (scaler).
    mean: Vec<f64>,
    /// Feature standard deviations (scaler; 1 where a feature is constant).
    std: Vec<f64>,
    /// Clip bound in standard deviations.
    clip: f64,
    /// Mean of the scaled features (PCA centring).
    pca_mean: Vec<f64>,
    /// Principal axes, `components × USER_FEATURE_DIM`, row-major.
    components: Vec<f64>,
    /// Cluster centres in PCA space, `clusters × components`, row-major.
    centroids: Vec<f64>,
    /// Explained variance ratio of each component (reported in the manifest).
    explained: Vec<f64>,
}

impl Clusterer {
    /// Heap bytes of its arrays.
    pub(crate) fn heap_bytes(&self) -> usize {
        use crate::heap::vec_bytes;
        [
            &self.mean,
            &self.std,
            &self.pca_mean,
            &self.components,
            &self.centroids,
            &self.explained,
        ]
        .into_iter()
        .map(vec_bytes)
        .sum()
    }

    /// Fits on one feature vector per user.
    pub fn fit(
        features: &[[f64; USER_FEATURE_DIM]],
        p: &ClusterParams,
    ) -> Result<Self, TrainError> {
        let fit_err = |what: &'static str| move |e: String| TrainError::Fit { what, reason: e };
        if features.len() < p.clusters.max(2) {
            return Err(TrainError::NoData(format!(
                "{} semi-logged users cannot form {} clusters",
                features.len(),
                p.clusters
            )));
        }
        if p.components == 0 || p.components > USER_FEATURE_DIM || p.clusters == 0 {
            return Err(TrainError::Invalid(format!(
                "clustering needs 1..={USER_FEATURE_DIM} components and ≥ 1 cluster"
            )));
        }
        // A fixed stride keeps the sample deterministic and spread over the whole file.
        let stride = features.len().div_ceil(p.max_fit_users.max(1));
        let rows: Vec<&[f64; USER_FEATURE_DIM]> = features.iter().step_by(stride.max(1)).collect();
        let mut x = Array2::<f64>::zeros((rows.len(), USER_FEATURE_DIM));
        for (mut r, v) in x.axis_iter_mut(Axis(0)).zip(&rows) {
            r.iter_mut().zip(v.iter()).for_each(|(a, b)| *a = *b);
        }
        let mean = x
            .mean_axis(Axis(0))
            .ok_or_else(|| TrainError::NoData("no users".into()))?;
        let std = x
            .std_axis(Axis(0), 0.0)
            .mapv(|s| if s > 1e-12 { s } else { 1.0 });
        let mut me = Clusterer {
            mean: mean.to_vec(),
            std: std.to_vec(),
            clip: p.clip,
            ..Default::default()
        };
        for mut r in x.axis_iter_mut(Axis(0)) {
            let scaled = me.scale(
                r.as_slice()
                    .map(<[f64]>::to_vec)
                    .unwrap_or_default()
                    .as_slice(),
            );
            r.iter_mut().zip(scaled).for_each(|(a, b)| *a = b);
        }
        let pca = fit_pca(&x, p.components).map_err(fit_err("PCA"))?;
        me.pca_mean = pca.mean().to_vec();
        me.components = pca.components().iter().copied().collect();
        me.explained = pca.explained_variance_ratio().to_vec();
        let projected: Array2<f64> = pca.predict(&x);
        let kmeans = KMeans::params(p.clusters)
            .n_runs(p.runs.max(1))
            .max_n_iterations(200)
            .tolerance(1e-5)
            .fit(&DatasetBase::from(projected))
            .map_err(|e| fit_err("KMeans")(e.to_string()))?;
        me.centroids = kmeans.centroids().iter().copied().collect();
        Ok(me)
    }

    fn scale(&self, v: &[f64]) -> Vec<f64> {
        v.iter()
            .zip(&self.mean)
            .zip(&self.std)
            .map(|((x, m), s)| ((x - m) / s).clamp(-self.clip, self.clip))
            .collect()
    }

    /// Number of clusters.
    pub fn clusters(&self) -> usize {
        self.centroids.len().checked_div(self.dims()).unwrap_or(0)
    }

    fn dims(&self) -> usize {
        self.components.len() / USER_FEATURE_DIM
    }

    /// Explained variance ratio per component.
    pub fn explained_variance_ratio(&self) -> &[f64] {
        &self.explained
    }

    /// The feature vector in PCA space.
    pub fn project(&self, features: &[f64; USER_FEATURE_DIM]) -> Vec<f64> {
        let scaled = self.scale(features);
        let centred: Vec<f64> = scaled
            .iter()
            .zip(&self.pca_mean)
            .map(|(a, b)| a - b)
            .collect();
        self.components
            .chunks_exact(USER_FEATURE_DIM)
            .map(|axis| axis.iter().zip(&centred).map(|(a, b)| a * b).sum())
            .collect()
    }

    /// The cluster of a feature vector (nearest centroid in PCA space).
    pub fn place(&self, features: &[f64; USER_FEATURE_DIM]) -> usize {
        let z = self.project(features);
        let d = self.dims().max(1);
        self.centroids
            .chunks_exact(d)
            .enumerate()
            .map(|(c, centre)| {
                (
                    c,
                    centre
                        .iter()
                        .zip(&z)
                        .map(|(a, b)| (a - b).powi(2))
                        .sum::<f64>(),
                )
            })
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map_or(0, |(c, _)| c)
    }

    /// The cluster of a user from their aggregates (live or batch: the same definition).
    pub fn place_user(&self, aggregates: &UserAggregates) -> usize {
        self.place(&aggregates.vector())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use newsrec_core::Engagement;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// Two behaviours: skimmers (short visits, few clicks) and deep readers.
    fn user(rng: &mut StdRng, deep: bool) -> UserAggregates {
        let mut a = UserAggregates::default();
        let n = if deep {
            rng.random_range(8..30)
        } else {
            rng.random_range(2..5)
        };
        for t in 0..n {
            let e = if deep {
                Engagement {
                    clicks: rng.random_range(20..60),
                    time_on_page_ms: rng.random_range(200_000..600_000),
                    scroll_pct: 90.0,
                    page_visits: 2,
                }
            } else {
                Engagement {
                    clicks: rng.random_range(0..2),
                    time_on_page_ms: rng.random_range(5_000..15_000),
                    scroll_pct: 10.0,
                    page_visits: 1,
                }
            };
            a.add(&e, 1_660_000_000_000 + t);
        }
        a
    }

    #[test]
    fn artifacts_round_trip_and_place_unseen_users() {
        let mut rng = StdRng::seed_from_u64(3);
        let users: Vec<UserAggregates> = (0..400).map(|i| user(&mut rng, i % 2 == 0)).collect();
        let features: Vec<_> = users.iter().map(UserAggregates::vector).collect();
        let p = ClusterParams {
            clusters: 2,
            components: 3,
            ..Default::default()
        };
        let c = Clusterer::fit(&features, &p).expect("fit");
        assert_eq!(c.clusters(), 2);
        let deep_cluster = c.place_user(&users[0]);
        for (i, u) in users.iter().enumerate() {
            assert_eq!(
                c.place_user(u) == deep_cluster,
                i % 2 == 0,
                "user {i} misplaced"
            );
        }
        let bytes = postcard::to_stdvec(&c).expect("encode");
        let back: Clusterer = postcard::from_bytes(&bytes).expect("decode");
        assert_eq!(back, c);
        // Users never seen in training land with their own kind.
        let (fresh_deep, fresh_skim) = (user(&mut rng, true), user(&mut rng, false));
        assert_eq!(back.place_user(&fresh_deep), deep_cluster);
        assert_ne!(back.place_user(&fresh_skim), deep_cluster);
        let total: f64 = back.explained_variance_ratio().iter().sum();
        assert!((total - 1.0).abs() < 1e-6 || total < 1.0);
    }

    #[test]
    fn too_few_users_is_an_error() {
        let features = vec![[1.0; USER_FEATURE_DIM]];
        assert!(matches!(
            Clusterer::fit(&features, &ClusterParams::default()),
            Err(TrainError::NoData(_))
        ));
    }
}
