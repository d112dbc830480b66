//! Synthetic G1 data: the exact raw layout and byte format of the real dataset, with
//! structure planted for models to find.
//!
//! Articles belong to topics whose words fill their titles and bodies; appeal is
//! log-normal and decays within a day of publication; readers have a persona (an
//! engagement style tied to a pool of topics) and one to three preferred topics that
//! draw 85% of their clicks, with longer, deeper reads on those topics; a subset of
//! readers comes back in the two validation days with the same tastes.
//!
//! Generation is chunked with one seeded RNG per chunk, so the output depends only on
//! the seed and the sizes, never on the number of threads.

mod shape;
mod text;
mod users;
mod vocab;
mod world;

use std::fs::File;
use std::io::BufWriter;
use std::ops::Range;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tracing::info;

pub use shape::{WORLD_KINDS, WorldKind};

use crate::g1::{
    CsvWriter, ITEM_COLUMNS, ITEM_PARTS, RawLayout, TRAINING_COLUMNS, TRAINING_PARTS,
    VALIDATION_COLUMNS, VALIDATION_FILE, item_part_path, training_part_path,
};

/// First training event: 2022-07-01T03:00:00Z (midnight in Brasília).
pub const TRAINING_START_MS: i64 = 1_656_644_400_000;
/// Last training event of the real data: 2022-08-15T02:59:50Z.
pub const TRAINING_END_MS: i64 = 1_660_532_390_000;
/// End of the two validation days.
pub const VALIDATION_END_MS: i64 = TRAINING_END_MS + 2 * newsrec_core::time::DAY_MS;
/// Articles issued from here on are "recent" (a few days before the window opens).
const FRESH_FROM_MS: i64 = TRAINING_START_MS - 5 * newsrec_core::time::DAY_MS;
/// Oldest archive article: 2014-01-01.
const OLDEST_MS: i64 = 1_388_534_400_000;

/// Users per generation chunk (fixed, so output does not depend on thread count).
const USER_CHUNK: usize = 1024;
/// Chunks generated in parallel before their text is written out.
const CHUNKS_PER_BATCH: usize = 32;
/// RNG stream of users.
const USER_STREAM: u64 = 2;

/// The 64-bit SplitMix finaliser: decorrelates seeds that differ in a few bits.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The RNG of one chunk of one stream.
fn stream_rng(seed: u64, stream: u64, chunk_start: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(mix(
        mix(seed) ^ mix(stream.wrapping_mul(0x1000_0000_01b3) ^ chunk_start)
    ))
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct SynthConfig {
    /// Raw output directory (receives the G1 layout).
    pub out: PathBuf,
    /// Training users (one row each).
    pub users: usize,
    /// Articles.
    pub items: usize,
    /// RNG seed: equal seeds and sizes give byte-identical files.
    pub seed: u64,
    /// Kind of world (reader behaviour); `G1` is shaped after the real data.
    pub world: WorldKind,
    /// Also write the layout as a zip here (the shape of the distributed download).
    pub zip: Option<PathBuf>,
    /// Show a progress bar (when stderr is a terminal).
    pub progress: bool,
}

/// What was generated.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SynthSummary {
    /// Training users.
    pub users: u64,
    /// `Logged` training users.
    pub logged_users: u64,
    /// Training interactions.
    pub interactions: u64,
    /// Training interactions of `Logged` users.
    pub logged_interactions: u64,
    /// Users with validation clicks.
    pub validation_users: u64,
    /// Validation interactions.
    pub validation_interactions: u64,
    /// Articles generated.
    pub items: u64,
    /// Articles left out of the item files (clicked pages without metadata).
    pub unlisted_items: u64,
    /// Engagement values replaced by outliers.
    pub outliers: u64,
}

/// Why generation failed.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// Sizes that cannot produce a data set.
    #[error("invalid synth config: {0}")]
    Config(String),
    /// Writing a file failed (disk full, permissions).
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Writing the zip failed.
    #[error("cannot write zip {path}: {source}")]
    Zip {
        /// The zip file.
        path: PathBuf,
        /// The underlying error.
        source: zip::result::ZipError,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SynthError + '_ {
    move |source| SynthError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn progress_bar(show: bool, len: u64, what: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) =
        ProgressStyle::with_template("{msg:>10} [{bar:30}] {pos}/{len} ({elapsed}, eta {eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar
}

/// Writes a synthetic G1 data set into `config.out` (and the zip, if asked).
#[tracing::instrument(skip_all, fields(users = config.users, items = config.items, seed = config.seed, world = %config.world))]
pub fn generate(config: &SynthConfig) -> Result<SynthSummary, SynthError> {
    if config.users == 0 || config.items == 0 {
        return Err(SynthError::Config(
            "--users and --items must be at least 1".into(),
        ));
    }
    let world = world::World::generate(config.items, config.seed, config.world.shape());
    let mut summary = SynthSummary {
        items: world.items.len() as u64,
        unlisted_items: world.items.iter().filter(|i| !i.listed).count() as u64,
        ..SynthSummary::default()
    };
    write_items(config, &world)?;
    info!(items = summary.items, "articles written");
    write_users(config, &world, &mut summary)?;
    info!(
        users = summary.users,
        interactions = summary.interactions,
        validation = summary.validation_interactions,
        "users written"
    );
    if let Some(zip) = &config.zip {
        write_zip(&config.out, zip)?;
        info!(zip = %zip.display(), "zip written");
    }
    Ok(summary)
}

fn write_items(config: &SynthConfig, world: &world::World) -> Result<(), SynthError> {
    let n = world.items.len();
    let bar = progress_bar(config.progress, n as u64, "articles");
    for part in 0..ITEM_PARTS {
        let range = part * n / ITEM_PARTS..(part + 1) * n / ITEM_PARTS;
        let path = config.out.join(item_part_path(part + 1));
        let mut w = CsvWriter::create(&path, &ITEM_COLUMNS).map_err(io_err(&path))?;
        for batch in chunk_ranges(range, world::ITEM_CHUNK).chunks(CHUNKS_PER_BATCH) {
            let texts: Vec<String> = batch
                .par_iter()
                .map(|r| text::items_csv(world, config.seed, r.clone()))
                .collect();
            for t in &texts {
                w.write_rows(t).map_err(io_err(&path))?;
            }
            bar.inc(batch.iter().map(|r| r.len() as u64).sum());
        }
        w.finish().map_err(io_err(&path))?;
    }
    bar.finish_and_clear();
    Ok(())
}

fn write_users(
    config: &SynthConfig,
    world: &world::World,
    summary: &mut SynthSummary,
) -> Result<(), SynthError> {
    let n = config.users;
    let bar = progress_bar(config.progress, n as u64, "users");
    let dists = users::Dists::new();
    let mut validation = Vec::new();
    for part in 0..TRAINING_PARTS {
        let range = part * n / TRAINING_PARTS..(part + 1) * n / TRAINING_PARTS;
        let path = config.out.join(training_part_path(part + 1));
        let mut w = CsvWriter::create(&path, &TRAINING_COLUMNS).map_err(io_err(&path))?;
        for batch in chunk_ranges(range, USER_CHUNK).chunks(CHUNKS_PER_BATCH) {
            let outs: Vec<users::UsersOut> = batch
                .par_iter()
                .map(|r| {
                    let mut rng = stream_rng(config.seed, USER_STREAM, r.start as u64);
                    users::generate(world, &dists, &mut rng, r.len())
                })
                .collect();
            for o in outs {
                w.write_rows(&o.training).map_err(io_err(&path))?;
                summary.users += o.users;
                summary.logged_users += o.logged_users;
                summary.interactions += o.interactions;
                summary.logged_interactions += o.logged_interactions;
                summary.validation_users += o.validation_users;
                summary.validation_interactions += o.validation_interactions;
                summary.outliers += o.outliers;
                validation.push(o.validation);
            }
            bar.inc(batch.iter().map(|r| r.len() as u64).sum());
        }
        w.finish().map_err(io_err(&path))?;
    }
    let path = config.out.join(VALIDATION_FILE);
    let mut w = CsvWriter::create(&path, &VALIDATION_COLUMNS).map_err(io_err(&path))?;
    for v in &validation {
        w.write_rows(v).map_err(io_err(&path))?;
    }
    w.finish().map_err(io_err(&path))?;
    bar.finish_and_clear();
    Ok(())
}

fn chunk_ranges(range: Range<usize>, size: usize) -> Vec<Range<usize>> {
    range
        .clone()
        .step_by(size)
        .map(|s| s..(s + size).min(range.end))
        .collect()
}

/// Zips the layout under `raw` into `zip_path` (written to a temporary name first).
pub fn write_zip(raw: &Path, zip_path: &Path) -> Result<(), SynthError> {
    let zerr = |source| SynthError::Zip {
        path: zip_path.to_path_buf(),
        source,
    };
    let dir = zip_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let tmp = tempfile::Builder::new()
        .prefix(".g1-zip-")
        .tempfile_in(dir)
        .map_err(io_err(dir))?;
    let mut zip = zip::ZipWriter::new(BufWriter::new(tmp.reopen().map_err(io_err(dir))?));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true);
    for rel in RawLayout::expected_files() {
        let path = raw.join(&rel);
        let name = rel.to_string_lossy().replace('\\', "/");
        zip.start_file(name, options).map_err(zerr)?;
        let mut f = File::open(&path).map_err(io_err(&path))?;
        std::io::copy(&mut f, &mut zip).map_err(io_err(zip_path))?;
    }
    let inner = zip.finish().map_err(zerr)?;
    inner
        .into_inner()
        .map_err(|e| SynthError::Io {
            path: zip_path.to_path_buf(),
            source: e.into_error(),
        })?
        .sync_all()
        .map_err(io_err(zip_path))?;
    tmp.persist(zip_path).map_err(|e| SynthError::Io {
        path: zip_path.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use polars::prelude::*;

    use super::*;
    use crate::g1::{
        TRAINING_COLUMNS, VALIDATION_COLUMNS, explode_training, explode_validation,
        scan_csv_strings, training_rows, validation_rows,
    };

    /// `(user, page, ts)` of every interaction in `df`.
    fn triples(df: &DataFrame) -> Vec<(String, String, i64)> {
        let u = df.column("user_id").expect("user").str().expect("str");
        let p = df.column("page").expect("page").str().expect("str");
        let t = df.column("ts").expect("ts").i64().expect("i64");
        u.iter()
            .zip(p.iter())
            .zip(t.iter())
            .filter_map(|((u, p), t)| Some((u?.to_string(), p?.to_string(), t?)))
            .collect()
    }

    /// The planted structure must be learnable: knowing which topics a reader opened
    /// in training must predict the validation clicks much better than popularity.
    #[test]
    fn preferences_beat_popularity_on_validation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = SynthConfig {
            out: dir.path().to_path_buf(),
            users: 3000,
            items: 1500,
            seed: 21,
            world: WorldKind::G1,
            zip: None,
            progress: false,
        };
        generate(&config).expect("generate");
        let world = world::World::generate(config.items, config.seed, config.world.shape());
        let topic: HashMap<&str, u16> = world
            .items
            .iter()
            .map(|i| (i.page.as_str(), i.topic))
            .collect();
        let layout = RawLayout::discover(dir.path()).expect("layout");
        let train = explode_training(training_rows(
            scan_csv_strings(&layout.training, &TRAINING_COLUMNS).expect("scan"),
        ))
        .collect()
        .expect("training");
        let val = explode_validation(validation_rows(
            scan_csv_strings(
                std::slice::from_ref(&layout.validation),
                &VALIDATION_COLUMNS,
            )
            .expect("scan"),
        ))
        .collect()
        .expect("validation");
        let train = triples(&train);
        let val = triples(&val);

        // Popularity over the last two training days (what a recency-aware baseline uses).
        let recent = TRAINING_END_MS - 2 * newsrec_core::time::DAY_MS;
        let mut pop: HashMap<&str, f64> = HashMap::new();
        let mut read: HashMap<&str, HashSet<&str>> = HashMap::new();
        let mut tastes: HashMap<&str, HashMap<u16, f64>> = HashMap::new();
        for (u, p, t) in &train {
            if *t >= recent {
                *pop.entry(p.as_str()).or_default() += 1.0;
            }
            read.entry(u.as_str()).or_default().insert(p.as_str());
            if let Some(k) = topic.get(p.as_str()) {
                *tastes.entry(u.as_str()).or_default().entry(*k).or_default() += 1.0;
            }
        }
        let mut wanted: HashMap<&str, HashSet<&str>> = HashMap::new();
        for (u, p, _) in &val {
            wanted.entry(u.as_str()).or_default().insert(p.as_str());
        }
        let top10 = |score: &dyn Fn(&str, f64) -> f64, user: &str| -> Vec<&str> {
            let seen = read.get(user);
            let mut ranked: Vec<(&str, f64)> = pop
                .iter()
                .filter(|(p, _)| seen.is_none_or(|s| !s.contains(*p)))
                .map(|(p, n)| (*p, score(p, *n)))
                .collect();
            ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
            ranked.into_iter().take(10).map(|(p, _)| p).collect()
        };
        let (mut hits_pop, mut hits_pref, mut total) = (0usize, 0usize, 0usize);
        for (user, want) in &wanted {
            let Some(taste) = tastes.get(user) else {
                continue;
            };
            let n: f64 = taste.values().sum();
            let by_pop = top10(&|_, n| n, user);
            let by_pref = top10(
                &|p, c| {
                    let share = topic
                        .get(p)
                        .and_then(|k| taste.get(k))
                        .copied()
                        .unwrap_or(0.0);
                    c * (0.05 + share / n)
                },
                user,
            );
            hits_pop += by_pop.iter().filter(|p| want.contains(*p)).count();
            hits_pref += by_pref.iter().filter(|p| want.contains(*p)).count();
            total += want.len();
        }
        assert!(total > 500, "too few validation clicks: {total}");
        assert!(
            hits_pref as f64 >= 1.5 * hits_pop as f64,
            "preferences {hits_pref} vs popularity {hits_pop} hits of {total}"
        );
    }
}
