//! Fetches the G1 zip over HTTP and installs its files into a raw data directory,
//! all or nothing.
//!
//! The zip is streamed to a temporary file next to the target directory, checked (zip
//! signature, central directory, the G1 layout, every entry's CRC while extracting)
//! and extracted into a temporary directory; only then are the files renamed into
//! place and a completion marker written. Any failure leaves the target as it was.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use newsrec_core::Retryable;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::g1::RawLayout;

/// The public copy of the G1 zip (Google Drive). Large Drive files need the
/// `drive.usercontent.google.com` form with `confirm=t`, or Drive answers with an HTML
/// "cannot scan for viruses" page instead of the file.
pub const DEFAULT_URL: &str = "https://drive.usercontent.google.com/download?id=10zmuxXi05ayfiREA9hi-xSrcYJy0iW-r&export=download&confirm=t";

/// Name of the completion marker inside the target directory.
pub const MARKER: &str = ".g1-complete.json";

/// What to download and where.
#[derive(Debug, Clone)]
pub struct DownloadConfig {
    /// Zip URL.
    pub url: String,
    /// Raw data directory to fill with the G1 layout.
    pub out: PathBuf,
    /// Longest wait for the TCP/TLS connection.
    pub connect_timeout: Duration,
    /// Longest wait for the response head and for each read of the body: a stalled
    /// server fails the download instead of hanging it.
    pub read_timeout: Duration,
    /// Show a byte/rate progress bar (when stderr is a terminal).
    pub progress: bool,
}

impl DownloadConfig {
    /// Defaults: 30 s to connect, 60 s per read, no progress bar.
    pub fn new(url: impl Into<String>, out: impl Into<PathBuf>) -> Self {
        Self {
            url: url.into(),
            out: out.into(),
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(60),
            progress: false,
        }
    }
}

/// What [`download`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownloadOutcome {
    /// The directory already held a complete download; nothing was fetched.
    AlreadyComplete,
    /// The zip was fetched and its G1 files installed.
    Installed {
        /// Zip size in bytes.
        zip_bytes: u64,
        /// Files installed.
        files: usize,
    },
}

/// Why a download failed. The target directory is unchanged in every case.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// The server answered with a non-success status.
    #[error("GET {url} answered HTTP {status}")]
    Status {
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// The request or the body transfer failed (connection, timeout, early close).
    #[error("GET {url} failed: {source}")]
    Transfer {
        /// The URL.
        url: String,
        /// The underlying error.
        source: reqwest::Error,
    },
    /// Fewer bytes arrived than the server announced.
    #[error("download truncated: got {got} of {expected} bytes")]
    Truncated {
        /// Bytes received.
        got: u64,
        /// `Content-Length`.
        expected: u64,
    },
    /// The body is not a zip (Drive sends an HTML page when it refuses a download).
    #[error(
        "the download is not a zip file (starts with {start:?}); for Google Drive use the drive.usercontent.google.com/download?id=…&export=download&confirm=t form"
    )]
    NotZip {
        /// The first bytes, as text.
        start: String,
    },
    /// The zip is damaged (truncated, bad central directory, CRC mismatch).
    #[error("the zip is corrupt: {0}")]
    Corrupt(#[from] zip::result::ZipError),
    /// The zip does not hold the G1 layout.
    #[error("the zip does not hold the G1 layout; missing: {}", missing.join(", "))]
    Layout {
        /// Expected files that were not found.
        missing: Vec<String>,
    },
    /// A local file operation failed (disk full, permissions).
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl Retryable for DownloadError {
    fn is_retryable(&self) -> bool {
        match self {
            DownloadError::Status { status, .. } => *status == 429 || *status >= 500,
            DownloadError::Transfer { source, .. } => {
                source.is_timeout() || source.is_connect() || source.is_body()
            }
            DownloadError::Truncated { .. } => true,
            _ => false,
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> DownloadError + '_ {
    move |source| DownloadError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The completion marker: which files a finished download installed.
#[derive(Debug, Serialize, Deserialize)]
struct Marker {
    url: String,
    files: Vec<(String, u64)>,
}

/// Whether `dir` holds a complete download: the marker is present and every file it
/// lists exists with its recorded size.
pub fn is_complete(dir: &Path) -> bool {
    let Ok(text) = std::fs::read(dir.join(MARKER)) else {
        return false;
    };
    let Ok(marker) = serde_json::from_slice::<Marker>(&text) else {
        return false;
    };
    !marker.files.is_empty()
        && marker.files.iter().all(|(rel, size)| {
            std::fs::metadata(dir.join(rel)).is_ok_and(|m| m.is_file() && m.len() == *size)
        })
}

/// Downloads the G1 zip and installs it into `config.out` (see the module docs).
#[tracing::instrument(skip_all, fields(url = %config.url, out = %config.out.display()))]
pub fn download(config: &DownloadConfig) -> Result<DownloadOutcome, DownloadError> {
    if is_complete(&config.out) {
        info!("data already complete; nothing to do");
        return Ok(DownloadOutcome::AlreadyComplete);
    }
    let parent = match config.out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(io_err(&parent))?;
    let name = config
        .out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "g1".into());
    // Staging sits beside the target (same file system, so the final moves are
    // renames) and is removed on every exit path when the guard drops.
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{name}.download-"))
        .tempdir_in(&parent)
        .map_err(io_err(&parent))?;
    let zip_path = staging.path().join("g1.zip");
    let zip_bytes = fetch(config, &zip_path)?;
    let extracted = staging.path().join("extract");
    let files = extract(&zip_path, &extracted)?;
    install(&extracted, &config.out, &files, &config.url)?;
    info!(zip_bytes, files = files.len(), "installed");
    Ok(DownloadOutcome::Installed {
        zip_bytes,
        files: files.len(),
    })
}

/// Streams the body of `config.url` into `dest`; returns the byte count.
fn fetch(config: &DownloadConfig, dest: &Path) -> Result<u64, DownloadError> {
    let transfer = |source| DownloadError::Transfer {
        url: config.url.clone(),
        source,
    };
    let client = reqwest::blocking::Client::builder()
        .connect_timeout(config.connect_timeout)
        .timeout(config.read_timeout)
        .build()
        .map_err(transfer)?;
    let mut resp = client.get(&config.url).send().map_err(transfer)?;
    let status = resp.status();
    if !status.is_success() {
        return Err(DownloadError::Status {
            url: config.url.clone(),
            status: status.as_u16(),
        });
    }
    let expected = resp.content_length();
    let bar = if config.progress {
        let bar = match expected {
            Some(n) => ProgressBar::new(n),
            None => ProgressBar::new_spinner(),
        };
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} [{elapsed}] {bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        ) {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut out = BufWriter::with_capacity(1 << 20, File::create(dest).map_err(io_err(dest))?);
    let mut buf = vec![0u8; 1 << 16];
    let mut got = 0u64;
    loop {
        let n = match resp.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                bar.abandon();
                return Err(read_error(&config.url, e));
            }
        };
        out.write_all(&buf[..n]).map_err(io_err(dest))?;
        got += n as u64;
        bar.set_position(got);
    }
    bar.finish_and_clear();
    let file = out.into_inner().map_err(|e| DownloadError::Io {
        path: dest.to_path_buf(),
        source: e.into_error(),
    })?;
    file.sync_all().map_err(io_err(dest))?;
    if let Some(expected) = expected.filter(|&e| e != got) {
        return Err(DownloadError::Truncated { got, expected });
    }
    Ok(got)
}

/// A body read error: reqwest wraps its own errors (timeouts) in `io::Error`.
fn read_error(url: &str, e: std::io::Error) -> DownloadError {
    let kind = e.kind();
    match e.into_inner() {
        Some(inner) => match inner.downcast::<reqwest::Error>() {
            Ok(source) => DownloadError::Transfer {
                url: url.to_string(),
                source: *source,
            },
            Err(other) => DownloadError::Io {
                path: PathBuf::from(url),
                source: std::io::Error::new(kind, other),
            },
        },
        None => DownloadError::Io {
            path: PathBuf::from(url),
            source: std::io::Error::from(kind),
        },
    }
}

/// Where each G1 file sits inside the archive, by the same [`RawLayout::select`] that
/// `data process` reads a directory with: at the root, or under one common top-level
/// folder (zips made by compressing a folder). Returns `(relative path, entry name)`.
fn locate(names: &[String]) -> Result<Vec<(PathBuf, String)>, DownloadError> {
    let clean: Vec<(&str, &String)> = names
        .iter()
        .map(|n| (n.trim_start_matches("./"), n))
        .filter(|(n, _)| !n.starts_with("__MACOSX/") && !n.ends_with('/'))
        .collect();
    let mut prefixes = vec![String::new()];
    if let Some(first) = clean
        .first()
        .and_then(|(n, _)| n.split_once('/'))
        .map(|(p, _)| p)
        && clean
            .iter()
            .all(|(n, _)| n.starts_with(&format!("{first}/")))
    {
        prefixes.push(format!("{first}/"));
    }
    let mut fewest_missing: Option<Vec<String>> = None;
    for prefix in prefixes {
        let under: HashMap<&str, &String> = clean
            .iter()
            .filter_map(|(n, entry)| Some((n.strip_prefix(prefix.as_str())?, *entry)))
            .collect();
        match RawLayout::select(under.keys().copied()) {
            Ok(layout) => {
                return Ok(layout
                    .files()
                    .filter_map(|rel| {
                        let entry = under.get(rel.to_str()?)?;
                        Some((rel.clone(), (*entry).clone()))
                    })
                    .collect());
            }
            Err(missing) => {
                if fewest_missing
                    .as_ref()
                    .is_none_or(|m| missing.len() < m.len())
                {
                    fewest_missing = Some(missing);
                }
            }
        }
    }
    Err(DownloadError::Layout {
        missing: fewest_missing.unwrap_or_default(),
    })
}

/// Checks the zip and extracts the G1 files into `dest`; returns `(relative path,
/// size)` of each.
fn extract(zip_path: &Path, dest: &Path) -> Result<Vec<(PathBuf, u64)>, DownloadError> {
    let mut file = File::open(zip_path).map_err(io_err(zip_path))?;
    let mut magic = [0u8; 4];
    let n = file.read(&mut magic).map_err(io_err(zip_path))?;
    if n < 4 || magic != *b"PK\x03\x04" {
        let mut start = magic[..n].to_vec();
        let mut more = vec![0u8; 60];
        let m = file.read(&mut more).unwrap_or(0);
        start.extend_from_slice(&more[..m]);
        return Err(DownloadError::NotZip {
            start: String::from_utf8_lossy(&start).into_owned(),
        });
    }
    let mut archive = zip::ZipArchive::new(File::open(zip_path).map_err(io_err(zip_path))?)?;
    let names: Vec<String> = archive.file_names().map(str::to_string).collect();
    let located = locate(&names)?;
    let extra = names.len().saturating_sub(located.len());
    if extra > 0 {
        warn!(
            extra,
            "the zip holds entries outside the G1 layout; they are not installed"
        );
    }
    let mut files = Vec::with_capacity(located.len());
    for (rel, name) in located {
        let target = dest.join(&rel);
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        }
        let mut entry = archive.by_name(&name)?;
        let mut out =
            BufWriter::with_capacity(1 << 20, File::create(&target).map_err(io_err(&target))?);
        // Reading an entry to its end verifies its CRC-32; a mismatch is an error here.
        let size = std::io::copy(&mut entry, &mut out).map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof => {
                DownloadError::Corrupt(zip::result::ZipError::Io(e))
            }
            _ => DownloadError::Io {
                path: target.clone(),
                source: e,
            },
        })?;
        let file = out.into_inner().map_err(|e| DownloadError::Io {
            path: target.clone(),
            source: e.into_error(),
        })?;
        file.sync_all().map_err(io_err(&target))?;
        files.push((rel, size));
    }
    Ok(files)
}

/// Moves the extracted layout into `out` and writes the marker last.
fn install(
    extracted: &Path,
    out: &Path,
    files: &[(PathBuf, u64)],
    url: &str,
) -> Result<(), DownloadError> {
    std::fs::create_dir_all(out).map_err(io_err(out))?;
    // A stale marker must not vouch for files while they are being replaced.
    let marker = out.join(MARKER);
    if marker.exists() {
        std::fs::remove_file(&marker).map_err(io_err(&marker))?;
    }
    let mut tops: Vec<PathBuf> = files
        .iter()
        .filter_map(|(rel, _)| rel.components().next())
        .map(|c| PathBuf::from(c.as_os_str()))
        .collect();
    tops.sort();
    tops.dedup();
    for top in tops {
        let from = extracted.join(&top);
        let to = out.join(&top);
        // Whatever is there is an earlier incomplete install (no valid marker).
        if to.is_dir() {
            std::fs::remove_dir_all(&to).map_err(io_err(&to))?;
        } else if to.exists() {
            std::fs::remove_file(&to).map_err(io_err(&to))?;
        }
        std::fs::rename(&from, &to).map_err(io_err(&to))?;
    }
    let m = Marker {
        url: url.to_string(),
        files: files
            .iter()
            .map(|(p, s)| (p.to_string_lossy().replace('\\', "/"), *s))
            .collect(),
    };
    let tmp = out.join(format!("{MARKER}.tmp"));
    let json = serde_json::to_vec_pretty(&m).map_err(|e| DownloadError::Io {
        path: tmp.clone(),
        source: e.into(),
    })?;
    std::fs::write(&tmp, json).map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, &marker).map_err(io_err(&marker))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn layout_names(prefix: &str) -> Vec<String> {
        RawLayout::expected_files()
            .iter()
            .map(|p| format!("{prefix}{}", p.to_string_lossy()))
            .collect()
    }

    #[test]
    fn locates_layout_at_root_or_under_one_folder() -> Result<(), DownloadError> {
        assert_eq!(locate(&layout_names(""))?.len(), 10);
        let mut nested = layout_names("g1/");
        nested.push("g1/".into());
        nested.push("__MACOSX/._x".into());
        assert_eq!(locate(&nested)?.len(), 10);
        Ok(())
    }

    /// A zip of `entries` (name, contents) in a temporary directory.
    fn zip_of(entries: &[(String, &str)]) -> Result<tempfile::TempDir, Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let mut w = zip::ZipWriter::new(File::create(dir.path().join("g1.zip"))?);
        for (name, text) in entries {
            w.start_file(name.as_str(), zip::write::SimpleFileOptions::default())?;
            w.write_all(text.as_bytes())?;
        }
        w.finish()?;
        Ok(dir)
    }

    /// The G1 layout with two training parts instead of six.
    fn two_part_entries() -> Vec<(String, &'static str)> {
        RawLayout::expected_files()
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .filter(|n| {
                !n.starts_with("files/treino/treino_parte")
                    || n.ends_with("parte1.csv")
                    || n.ends_with("parte2.csv")
            })
            .map(|n| (n, "x\n"))
            .collect()
    }

    #[test]
    fn zip_with_two_training_parts_is_extracted() -> Result<(), Box<dyn std::error::Error>> {
        let entries = two_part_entries();
        assert_eq!(entries.len(), 6);
        let dir = zip_of(&entries)?;
        let dest = dir.path().join("out");
        let files = extract(&dir.path().join("g1.zip"), &dest)?;
        assert_eq!(files.len(), 6);
        let layout = RawLayout::discover(&dest)?;
        assert_eq!(layout.training.len(), 2);
        Ok(())
    }

    #[test]
    fn zip_without_validation_is_refused_naming_it() -> Result<(), Box<dyn std::error::Error>> {
        let mut entries = two_part_entries();
        entries.retain(|(n, _)| n != "validacao.csv");
        let dir = zip_of(&entries)?;
        match extract(&dir.path().join("g1.zip"), &dir.path().join("out")) {
            Err(e @ DownloadError::Layout { .. }) => {
                assert!(e.to_string().ends_with("missing: validacao.csv"), "{e}");
            }
            other => return Err(format!("expected a layout error, got {other:?}").into()),
        }
        Ok(())
    }

    #[test]
    fn reports_missing_files() {
        let mut n = layout_names("");
        n.retain(|s| !s.ends_with("validacao.csv"));
        match locate(&n) {
            Err(DownloadError::Layout { missing }) => assert_eq!(missing, vec!["validacao.csv"]),
            other => panic!("expected a layout error, got {other:?}"),
        }
        assert!(matches!(
            locate(&names(&["a.txt"])),
            Err(DownloadError::Layout { .. })
        ));
    }
}
