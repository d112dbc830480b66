//! Where the G1 files sit inside the zip (and inside a raw data directory), and their
//! headers.

use std::path::{Path, PathBuf};

/// Directory of the training parts, relative to the raw root.
pub const TRAINING_DIR: &str = "files/treino";
/// Directory of the item parts, relative to the raw root.
pub const ITEMS_DIR: &str = "itens/itens";
/// The validation file, relative to the raw root.
pub const VALIDATION_FILE: &str = "validacao.csv";
/// Number of training parts in the distributed zip.
pub const TRAINING_PARTS: usize = 6;
/// Number of item parts in the distributed zip.
pub const ITEM_PARTS: usize = 3;

/// Header of every training part, in order.
pub const TRAINING_COLUMNS: [&str; 10] = [
    "userId",
    "userType",
    "historySize",
    "history",
    "timestampHistory",
    "numberOfClicksHistory",
    "timeOnPageHistory",
    "scrollPercentageHistory",
    "pageVisitsCountHistory",
    "timestampHistory_new",
];

/// Header of every item part, in order.
pub const ITEM_COLUMNS: [&str; 7] = [
    "page", "url", "issued", "modified", "title", "body", "caption",
];

/// Header of the validation file, in order.
pub const VALIDATION_COLUMNS: [&str; 4] = ["userId", "userType", "history", "timestampHistory"];

/// Path of training part `n` (1-based), relative to the raw root.
pub fn training_part_path(n: usize) -> PathBuf {
    Path::new(TRAINING_DIR).join(format!("treino_parte{n}.csv"))
}

/// Path of item part `n` (1-based), relative to the raw root.
pub fn item_part_path(n: usize) -> PathBuf {
    Path::new(ITEMS_DIR).join(format!("itens-parte{n}.csv"))
}

/// Why a directory does not hold the G1 layout.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// Files of the layout are absent.
    #[error("{} does not hold the G1 layout; missing: {}", root.display(), missing.join(", "))]
    Missing {
        /// The raw directory.
        root: PathBuf,
        /// What is missing, as [`RawLayout::select`] names it.
        missing: Vec<String>,
    },
    /// A directory of the layout could not be listed.
    #[error("cannot list {path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// The files of one raw G1 directory (or of a zip), in part order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawLayout {
    /// Training parts in part order (`treino_parte1.csv`, `treino_parte2.csv`, …).
    pub training: Vec<PathBuf>,
    /// Item parts in part order.
    pub items: Vec<PathBuf>,
    /// `validacao.csv`.
    pub validation: PathBuf,
}

impl RawLayout {
    /// Picks the G1 files out of `names`, paths relative to the raw root with `/`
    /// separators (a directory's files, or a zip's entries): every training part and
    /// every item part (at least one of each) and `validacao.csv`. Other names are
    /// ignored. On failure, returns what is missing.
    ///
    /// This one rule serves both `data download` (checking a zip) and `data process`
    /// (reading a directory), so a download is refused exactly when processing it would
    /// fail. Parts are discovered rather than counted so a re-split dataset or a small
    /// synthetic one is read completely.
    pub fn select<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, Vec<String>> {
        let (mut training, mut items, mut validation) = (Vec::new(), Vec::new(), None);
        for name in names {
            if name == VALIDATION_FILE {
                validation = Some(PathBuf::from(name));
            } else if let Some(n) = part_number(name, TRAINING_DIR, "treino_parte") {
                training.push((n, PathBuf::from(name)));
            } else if let Some(n) = part_number(name, ITEMS_DIR, "itens-parte") {
                items.push((n, PathBuf::from(name)));
            }
        }
        let mut missing = Vec::new();
        if training.is_empty() {
            missing.push(format!("{TRAINING_DIR}/treino_parte<N>.csv (one or more)"));
        }
        if items.is_empty() {
            missing.push(format!("{ITEMS_DIR}/itens-parte<N>.csv (one or more)"));
        }
        match validation {
            Some(validation) if missing.is_empty() => {
                training.sort();
                items.sort();
                Ok(Self {
                    training: training.into_iter().map(|(_, p)| p).collect(),
                    items: items.into_iter().map(|(_, p)| p).collect(),
                    validation,
                })
            }
            Some(_) => Err(missing),
            None => {
                missing.push(VALIDATION_FILE.to_string());
                Err(missing)
            }
        }
    }

    /// The G1 files under `root`, by [`RawLayout::select`] over the files it holds.
    pub fn discover(root: &Path) -> Result<Self, LayoutError> {
        let mut names = Vec::new();
        for dir in [TRAINING_DIR, ITEMS_DIR] {
            names.extend(files_in(root, dir)?);
        }
        if root.join(VALIDATION_FILE).is_file() {
            names.push(VALIDATION_FILE.to_string());
        }
        let rel = Self::select(names.iter().map(String::as_str)).map_err(|missing| {
            LayoutError::Missing {
                root: root.to_path_buf(),
                missing,
            }
        })?;
        Ok(Self {
            training: rel.training.iter().map(|p| root.join(p)).collect(),
            items: rel.items.iter().map(|p| root.join(p)).collect(),
            validation: root.join(rel.validation),
        })
    }

    /// Every file, training parts first, then item parts, then validation.
    pub fn files(&self) -> impl Iterator<Item = &PathBuf> {
        self.training
            .iter()
            .chain(&self.items)
            .chain(std::iter::once(&self.validation))
    }

    /// The relative paths of the distributed zip's files (what `data synth` writes).
    pub fn expected_files() -> Vec<PathBuf> {
        (1..=TRAINING_PARTS)
            .map(training_part_path)
            .chain((1..=ITEM_PARTS).map(item_part_path))
            .chain(std::iter::once(PathBuf::from(VALIDATION_FILE)))
            .collect()
    }
}

/// `N` of `<dir>/<prefix><N>.csv`.
fn part_number(name: &str, dir: &str, prefix: &str) -> Option<u32> {
    name.strip_prefix(dir)?
        .strip_prefix('/')?
        .strip_prefix(prefix)?
        .strip_suffix(".csv")?
        .parse()
        .ok()
}

/// The files directly in `root/dir`, as `dir/<name>` (none if `dir` does not exist).
fn files_in(root: &Path, dir: &str) -> Result<Vec<String>, LayoutError> {
    let path = root.join(dir);
    let io = |source| LayoutError::Io {
        path: path.clone(),
        source,
    };
    let entries = match std::fs::read_dir(&path) {
        Ok(entries) => entries,
        // An absent directory is reported as its missing parts by `select`.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io)?;
        if !entry.path().is_file() {
            continue;
        }
        if let Some(name) = entry.file_name().to_str() {
            names.push(format!("{dir}/{name}"));
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(root: &Path, rels: &[PathBuf]) -> Result<(), Box<dyn std::error::Error>> {
        for rel in rels {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().ok_or("no parent")?)?;
            std::fs::write(p, "x\n")?;
        }
        Ok(())
    }

    #[test]
    fn discovers_parts_in_numeric_order() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        touch(dir.path(), &RawLayout::expected_files())?;
        touch(
            dir.path(),
            &[Path::new(TRAINING_DIR).join("treino_parte10.csv")],
        )?;
        let layout = RawLayout::discover(dir.path())?;
        assert_eq!(layout.training.len(), 7);
        assert!(layout.training[6].ends_with("treino_parte10.csv"));
        assert!(layout.training[1].ends_with("treino_parte2.csv"));
        assert_eq!(layout.items.len(), 3);
        assert_eq!(layout.files().count(), 11);
        Ok(())
    }

    #[test]
    fn two_training_parts_are_a_layout() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let rels: Vec<PathBuf> = RawLayout::expected_files()
            .into_iter()
            .filter(|p| {
                !p.starts_with(TRAINING_DIR) || (1..=2).any(|n| *p == training_part_path(n))
            })
            .collect();
        touch(dir.path(), &rels)?;
        let layout = RawLayout::discover(dir.path())?;
        assert_eq!(layout.training.len(), 2);
        Ok(())
    }

    #[test]
    fn missing_files_are_named() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        touch(dir.path(), &RawLayout::expected_files()[..9])?;
        let err = RawLayout::discover(dir.path()).err().ok_or("discovered")?;
        assert!(err.to_string().contains("missing: validacao.csv"), "{err}");
        assert!(
            matches!(&err, LayoutError::Missing { missing, .. } if missing == &[VALIDATION_FILE])
        );

        let empty = tempfile::tempdir()?;
        match RawLayout::discover(empty.path()) {
            Err(LayoutError::Missing { missing, .. }) => {
                assert_eq!(missing.len(), 3);
                assert!(missing[0].starts_with("files/treino/treino_parte"));
                assert!(missing[1].starts_with("itens/itens/itens-parte"));
            }
            other => return Err(format!("expected missing files, got {other:?}").into()),
        }
        Ok(())
    }

    #[test]
    fn select_ignores_other_names() {
        let names = [
            "files/treino/treino_parte2.csv",
            "files/treino/treino_parte1.csv",
            "files/treino/notes.txt",
            "files/treino_parte3.csv",
            "itens/itens/itens-parte1.csv",
            "validacao.csv",
            "readme.md",
        ];
        let layout = RawLayout::select(names);
        assert_eq!(
            layout.map(|l| l.training),
            Ok(vec![training_part_path(1), training_part_path(2)])
        );
    }
}
