//! Content fingerprints of inputs: what the pipeline compares to decide whether a step
//! must run again, and what a manifest records about its training data.

use std::fs;
use std::io::Read;
use std::path::Path;

use crate::error::TrainError;

/// A 128-bit streaming hash (two independent 64-bit multiply-xorshift lanes over 8-byte
/// words). Not cryptographic: it detects changed inputs, it does not resist forgery,
/// and it runs at memory speed over gigabytes of raw data.
#[derive(Debug, Clone)]
pub struct Fingerprint {
    a: u64,
    b: u64,
    len: u64,
    tail: Vec<u8>,
}

impl Default for Fingerprint {
    fn default() -> Self {
        Self {
            a: 0x9e37_79b9_7f4a_7c15,
            b: 0xc2b2_ae3d_27d4_eb4f,
            len: 0,
            tail: Vec::with_capacity(8),
        }
    }
}

fn mix(h: u64, w: u64, k: u64) -> u64 {
    let x = (h ^ w).wrapping_mul(k);
    x ^ (x >> 29)
}

impl Fingerprint {
    /// A fresh hash.
    pub fn new() -> Self {
        Self::default()
    }

    fn word(&mut self, w: u64) {
        self.a = mix(self.a, w, 0xff51_afd7_ed55_8ccd);
        self.b = mix(self.b.rotate_left(17), w, 0xc4ce_b9fe_1a85_ec53);
    }

    /// Feeds bytes.
    pub fn update(&mut self, mut bytes: &[u8]) {
        self.len += bytes.len() as u64;
        if !self.tail.is_empty() {
            let need = 8 - self.tail.len();
            let take = need.min(bytes.len());
            self.tail.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.tail.len() == 8 {
                let w = u64::from_le_bytes(self.tail[..8].try_into().unwrap_or([0; 8]));
                self.word(w);
                self.tail.clear();
            }
        }
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.word(u64::from_le_bytes(c.try_into().unwrap_or([0; 8])));
        }
        self.tail.extend_from_slice(chunks.remainder());
    }

    /// Feeds a string followed by a separator (so `"ab","c"` ≠ `"a","bc"`).
    pub fn update_str(&mut self, s: &str) {
        self.update(s.as_bytes());
        self.update(&[0xff]);
    }

    /// The hash as 32 hex digits.
    pub fn finish(mut self) -> String {
        let mut last = [0u8; 8];
        last[..self.tail.len()].copy_from_slice(&self.tail);
        let len = self.len;
        self.word(u64::from_le_bytes(last));
        self.word(len);
        let (a, b) = (
            mix(self.a, self.b, 0xff51_afd7_ed55_8ccd),
            mix(self.b, self.a, 0xc4ce_b9fe_1a85_ec53),
        );
        format!("{a:016x}{b:016x}")
    }

    /// Feeds a file's or a directory's content (directories: every file below, in name
    /// order, with its relative path). A missing path hashes as "missing".
    pub fn update_path(&mut self, path: &Path) -> Result<(), TrainError> {
        self.update_path_rel(path, Path::new(""))
    }

    fn update_path_rel(&mut self, path: &Path, rel: &Path) -> Result<(), TrainError> {
        let meta = match fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.update_str("missing");
                return Ok(());
            }
            Err(e) => return Err(TrainError::io(path, e)),
        };
        if meta.is_dir() {
            let mut entries: Vec<_> = fs::read_dir(path)
                .map_err(|e| TrainError::io(path, e))?
                .filter_map(Result::ok)
                .map(|e| e.file_name())
                .filter(|n| !n.to_string_lossy().starts_with('.'))
                .collect();
            entries.sort();
            for name in entries {
                self.update_path_rel(&path.join(&name), &rel.join(&name))?;
            }
            return Ok(());
        }
        self.update_str(&rel.to_string_lossy());
        let mut f = fs::File::open(path).map_err(|e| TrainError::io(path, e))?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf).map_err(|e| TrainError::io(path, e))?;
            if n == 0 {
                break;
            }
            self.update(&buf[..n]);
        }
        self.update_str("eof");
        Ok(())
    }
}

/// The fingerprint of several files or directories together.
pub fn fingerprint_paths(paths: &[impl AsRef<Path>]) -> Result<String, TrainError> {
    let mut h = Fingerprint::new();
    for p in paths {
        h.update_str(
            &p.as_ref()
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
        h.update_path(p.as_ref())?;
    }
    Ok(h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_content_same_fingerprint_any_split() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 31 % 251) as u8).collect();
        let mut a = Fingerprint::new();
        a.update(&data);
        let mut b = Fingerprint::new();
        for chunk in data.chunks(7) {
            b.update(chunk);
        }
        assert_eq!(a.clone().finish(), b.finish());
        let mut c = Fingerprint::new();
        let mut changed = data.clone();
        changed[500] ^= 1;
        c.update(&changed);
        assert_ne!(a.finish(), c.finish());
    }

    #[test]
    fn directories_hash_their_files_and_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("a.csv"), "1,2\n").expect("write");
        let first = fingerprint_paths(&[dir.path()]).expect("hash");
        assert_eq!(first, fingerprint_paths(&[dir.path()]).expect("hash"));
        fs::write(dir.path().join("a.csv"), "1,3\n").expect("write");
        let second = fingerprint_paths(&[dir.path()]).expect("hash");
        assert_ne!(first, second);
        fs::rename(dir.path().join("a.csv"), dir.path().join("b.csv")).expect("rename");
        assert_ne!(second, fingerprint_paths(&[dir.path()]).expect("hash"));
        assert_ne!(
            fingerprint_paths(&[dir.path().join("nope")]).expect("hash"),
            fingerprint_paths(&[dir.path()]).expect("hash")
        );
    }
}
