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
    /// A file or directory of the layout is absent.
    #[error(
        "{0} is missing (expected the G1 layout: {TRAINING_DIR}/treino_parte*.csv, {ITEMS_DIR}/itens-parte*.csv, {VALIDATION_FILE})"
    )]
    Missing(PathBuf),
    /// A directory of the layout could not be listed.
    #[error("cannot list {path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// The files of one raw G1 directory, as found on disk.
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
    /// Finds every part under `root`. Parts are discovered rather than assumed so a
    /// directory with more or fewer parts (a re-split dataset, a small synthetic one)
    /// is read completely.
    pub fn discover(root: &Path) -> Result<Self, LayoutError> {
        let training = parts(&root.join(TRAINING_DIR), "treino_parte")?;
        let items = parts(&root.join(ITEMS_DIR), "itens-parte")?;
        let validation = root.join(VALIDATION_FILE);
        if !validation.is_file() {
            return Err(LayoutError::Missing(validation));
        }
        Ok(Self {
            training,
            items,
            validation,
        })
    }

    /// The relative paths of the distributed zip's files: what a complete download holds.
    pub fn expected_files() -> Vec<PathBuf> {
        (1..=TRAINING_PARTS)
            .map(training_part_path)
            .chain((1..=ITEM_PARTS).map(item_part_path))
            .chain(std::iter::once(PathBuf::from(VALIDATION_FILE)))
            .collect()
    }
}

/// `prefix<N>.csv` files of `dir`, sorted by `N`.
fn parts(dir: &Path, prefix: &str) -> Result<Vec<PathBuf>, LayoutError> {
    let entries = std::fs::read_dir(dir).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            LayoutError::Missing(dir.to_path_buf())
        } else {
            LayoutError::Io {
                path: dir.to_path_buf(),
                source,
            }
        }
    })?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| LayoutError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let number = name
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(".csv"))
            .and_then(|n| n.parse::<u32>().ok());
        if let Some(n) = number {
            found.push((n, entry.path()));
        }
    }
    if found.is_empty() {
        return Err(LayoutError::Missing(dir.join(format!("{prefix}1.csv"))));
    }
    found.sort();
    Ok(found.into_iter().map(|(_, p)| p).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovers_parts_in_numeric_order() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        for rel in RawLayout::expected_files() {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().ok_or("no parent")?)?;
            std::fs::write(p, "x\n")?;
        }
        std::fs::write(
            dir.path().join(TRAINING_DIR).join("treino_parte10.csv"),
            "x\n",
        )?;
        let layout = RawLayout::discover(dir.path())?;
        assert_eq!(layout.training.len(), 7);
        assert!(layout.training[6].ends_with("treino_parte10.csv"));
        assert!(layout.training[1].ends_with("treino_parte2.csv"));
        assert_eq!(layout.items.len(), 3);
        Ok(())
    }

    #[test]
    fn missing_validation_is_reported() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        for rel in RawLayout::expected_files().into_iter().take(9) {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().ok_or("no parent")?)?;
            std::fs::write(p, "x\n")?;
        }
        let err = RawLayout::discover(dir.path()).err().ok_or("discovered")?;
        assert!(matches!(err, LayoutError::Missing(p) if p.ends_with(VALIDATION_FILE)));
        Ok(())
    }
}
