//! `newsrec data download` against a local HTTP server: a good zip, a connection cut
//! mid-body, a truncated zip, an HTML page, a zip without the G1 layout, a 404 and a
//! stalled server. Every failure must leave the target directory untouched.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use newsrec_core::Retryable;
use newsrec_data::RawLayout;
use newsrec_data::download::{self, DownloadConfig, DownloadError, DownloadOutcome};
use newsrec_data::synth::{self, SynthConfig};

struct Fixture {
    /// The synthetic raw directory the zip was made from.
    raw: PathBuf,
    /// The zip bytes.
    zip: Arc<Vec<u8>>,
    /// A valid zip that does not hold the G1 layout.
    other_zip: Arc<Vec<u8>>,
    _dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let raw = dir.path().join("raw");
        let zip_path = dir.path().join("g1.zip");
        synth::generate(&SynthConfig {
            out: raw.clone(),
            users: 40,
            items: 30,
            seed: 3,
            world: synth::WorldKind::G1,
            zip: Some(zip_path.clone()),
            progress: false,
        })
        .expect("synth");
        let zip = std::fs::read(&zip_path).expect("zip");
        let other = dir.path().join("other.zip");
        let mut w = zip::ZipWriter::new(std::fs::File::create(&other).expect("create"));
        w.start_file("readme.txt", zip::write::SimpleFileOptions::default())
            .expect("entry");
        w.write_all(b"not the G1 data").expect("write");
        w.finish().expect("finish");
        let other_zip = std::fs::read(&other).expect("zip");
        Fixture {
            raw,
            zip: Arc::new(zip),
            other_zip: Arc::new(other_zip),
            _dir: dir,
        }
    })
}

/// A small HTTP/1.1 server on 127.0.0.1:0, one thread per connection.
fn server() -> String {
    static ADDR: OnceLock<String> = OnceLock::new();
    ADDR.get_or_init(|| {
        let f = fixture();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (zip, other) = (f.zip.clone(), f.other_zip.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (zip, other) = (zip.clone(), other.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, &zip, &other);
                });
            }
        });
        format!("http://{addr}")
    })
    .clone()
}

fn serve(mut stream: TcpStream, zip: &[u8], other: &[u8]) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
    }
    let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
    let head = |len: usize, ty: &str| {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {ty}\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
        )
    };
    match path.as_str() {
        "/good.zip" => {
            stream.write_all(head(zip.len(), "application/zip").as_bytes())?;
            stream.write_all(zip)?;
        }
        "/other.zip" => {
            stream.write_all(head(other.len(), "application/zip").as_bytes())?;
            stream.write_all(other)?;
        }
        "/cut.zip" => {
            // Announces the whole zip, sends half, hangs up.
            stream.write_all(head(zip.len(), "application/zip").as_bytes())?;
            stream.write_all(&zip[..zip.len() / 2])?;
        }
        "/short.zip" => {
            // Well-framed HTTP, but the zip itself is cut short.
            let half = &zip[..zip.len() / 2];
            stream.write_all(head(half.len(), "application/zip").as_bytes())?;
            stream.write_all(half)?;
        }
        "/drive.html" => {
            let page = b"<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head></html>";
            stream.write_all(head(page.len(), "text/html").as_bytes())?;
            stream.write_all(page)?;
        }
        "/slow.zip" => {
            stream.write_all(head(zip.len(), "application/zip").as_bytes())?;
            stream.write_all(&zip[..1024.min(zip.len())])?;
            stream.flush()?;
            std::thread::sleep(Duration::from_secs(5));
        }
        _ => {
            stream.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found",
            )?;
        }
    }
    stream.flush()
}

fn config(path: &str, out: &Path) -> DownloadConfig {
    DownloadConfig {
        connect_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_millis(500),
        ..DownloadConfig::new(format!("{}{path}", server()), out)
    }
}

/// Everything under `dir`, relative, sorted (to prove a failure changed nothing).
fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            out.push(p.strip_prefix(dir).unwrap_or(&p).display().to_string());
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

fn assert_fails_cleanly(path: &str, check: impl Fn(&DownloadError) -> bool) {
    let parent = tempfile::tempdir().expect("tempdir");
    let out = parent.path().join("raw");
    std::fs::create_dir_all(&out).expect("mkdir");
    std::fs::write(out.join("keep.txt"), "earlier content").expect("write");
    let before = listing(parent.path());
    let err = download::download(&config(path, &out)).expect_err("download must fail");
    assert!(check(&err), "{path}: unexpected error {err:?}");
    assert!(!err.to_string().is_empty());
    assert_eq!(
        listing(parent.path()),
        before,
        "{path}: the directory changed"
    );
    assert!(!download::is_complete(&out));
}

#[test]
fn good_zip_installs_the_layout_and_rerun_does_nothing() {
    let f = fixture();
    let parent = tempfile::tempdir().expect("tempdir");
    let out = parent.path().join("data").join("raw");
    let outcome = download::download(&config("/good.zip", &out)).expect("download");
    assert_eq!(
        outcome,
        DownloadOutcome::Installed {
            zip_bytes: f.zip.len() as u64,
            files: 10
        }
    );
    for rel in RawLayout::expected_files() {
        let got = std::fs::read(out.join(&rel)).expect("installed file");
        let want = std::fs::read(f.raw.join(&rel)).expect("source file");
        assert_eq!(got, want, "{}", rel.display());
    }
    assert!(download::is_complete(&out));
    assert!(RawLayout::discover(&out).is_ok());
    // No staging left beside the target.
    let leftovers: Vec<String> = listing(&parent.path().join("data"))
        .into_iter()
        .filter(|p| p.contains(".download-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // A second run must not touch the network: the URL now answers 404.
    let again = download::download(&config("/gone.zip", &out)).expect("rerun");
    assert_eq!(again, DownloadOutcome::AlreadyComplete);
    // A damaged install is not complete any more and is replaced by the next run.
    std::fs::write(out.join("validacao.csv"), "x").expect("damage");
    assert!(!download::is_complete(&out));
    let fixed = download::download(&config("/good.zip", &out)).expect("repair");
    assert!(matches!(fixed, DownloadOutcome::Installed { .. }));
    assert!(download::is_complete(&out));
}

#[test]
fn not_found_fails_cleanly() {
    assert_fails_cleanly("/missing.zip", |e| {
        matches!(e, DownloadError::Status { status: 404, .. }) && !e.is_retryable()
    });
}

#[test]
fn connection_cut_mid_body_fails_cleanly() {
    assert_fails_cleanly("/cut.zip", |e| {
        matches!(
            e,
            DownloadError::Transfer { .. } | DownloadError::Truncated { .. }
        )
    });
}

#[test]
fn truncated_zip_fails_cleanly() {
    assert_fails_cleanly("/short.zip", |e| matches!(e, DownloadError::Corrupt(_)));
}

#[test]
fn html_instead_of_zip_fails_cleanly() {
    assert_fails_cleanly(
        "/drive.html",
        |e| matches!(e, DownloadError::NotZip { start } if start.contains("<!DOCTYPE html>")),
    );
}

#[test]
fn zip_without_the_layout_fails_cleanly() {
    assert_fails_cleanly(
        "/other.zip",
        |e| matches!(e, DownloadError::Layout { missing } if missing.len() == 3),
    );
}

#[test]
fn stalled_server_times_out_cleanly() {
    // The server stalls for 5 s after 1 KiB: only the 500 ms read timeout yields a
    // timeout error (waiting it out would end in a truncated body instead).
    assert_fails_cleanly("/slow.zip", |e| {
        matches!(e, DownloadError::Transfer { source, .. } if source.is_timeout())
            && e.is_retryable()
    });
}

#[test]
fn target_that_did_not_exist_is_not_created_on_failure() {
    let parent = tempfile::tempdir().expect("tempdir");
    let out = parent.path().join("raw");
    assert!(download::download(&config("/short.zip", &out)).is_err());
    assert!(!out.exists());
    assert!(
        listing(parent.path()).is_empty(),
        "{:?}",
        listing(parent.path())
    );
}
