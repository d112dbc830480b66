//! Writers of the G1 CSV files, byte-compatible with the distributed dataset: pandas'
//! minimal quoting (a field is quoted only when it holds a comma, a quote or a line
//! break; quotes are doubled), Python's float spelling, `", "`-joined lists in training
//! files and numpy printouts in the validation file.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use newsrec_core::UserType;

use super::lists::{push_joined, push_numpy};

/// Appends one CSV field with pandas' minimal quoting.
fn push_field(out: &mut String, field: &str) {
    if field.contains([',', '"', '\n', '\r']) {
        out.push('"');
        for ch in field.chars() {
            if ch == '"' {
                out.push('"');
            }
            out.push(ch);
        }
        out.push('"');
    } else {
        out.push_str(field);
    }
}

/// Python's `repr` of a float for the values G1 holds: shortest round-trip digits, and
/// always a decimal point (`50.0`, not `50`).
struct PyFloat(f64);

impl std::fmt::Display for PyFloat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_finite() && self.0.fract() == 0.0 && self.0.abs() < 1e16 {
            write!(f, "{:.1}", self.0)
        } else {
            write!(f, "{}", self.0)
        }
    }
}

/// `2022-06-18 20:37:45+00:00`, the spelling of `issued` and `modified`.
pub fn format_g1_datetime(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S+00:00").to_string())
        .unwrap_or_default()
}

/// One user's row of a training part.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingRecord<'a> {
    /// 64 lowercase hex characters in G1.
    pub user_id: &'a str,
    /// `Logged` / `Non-Logged`.
    pub user_type: UserType,
    /// Article ids, one per interaction.
    pub pages: Vec<&'a str>,
    /// Event times, epoch ms.
    pub timestamps: Vec<i64>,
    /// Clicks inside the page.
    pub clicks: Vec<u32>,
    /// Time on page, ms.
    pub time_on_page_ms: Vec<u64>,
    /// Scroll percent.
    pub scroll_pct: Vec<f64>,
    /// Visits to the page.
    pub page_visits: Vec<u32>,
}

impl TrainingRecord<'_> {
    /// Appends the CSV line (with its trailing newline).
    pub fn push_csv(&self, out: &mut String) {
        let mut field = String::new();
        out.push_str(self.user_id);
        out.push(',');
        out.push_str(self.user_type.as_str());
        out.push(',');
        let _ = write!(out, "{}", self.pages.len());
        let mut list = |out: &mut String, fill: &dyn Fn(&mut String)| {
            out.push(',');
            field.clear();
            fill(&mut field);
            push_field(out, &field);
        };
        list(out, &|f| push_joined(f, &self.pages));
        list(out, &|f| push_joined(f, &self.timestamps));
        list(out, &|f| push_joined(f, &self.clicks));
        list(out, &|f| push_joined(f, &self.time_on_page_ms));
        list(out, &|f| {
            push_joined(f, self.scroll_pct.iter().map(|&s| PyFloat(s)))
        });
        list(out, &|f| push_joined(f, &self.page_visits));
        list(out, &|f| push_joined(f, &self.timestamps));
        out.push('\n');
    }
}

/// One article's row of an item part.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemRecord<'a> {
    /// Article id (UUID).
    pub page: &'a str,
    /// Article URL.
    pub url: &'a str,
    /// Publication time, epoch ms.
    pub issued: i64,
    /// Last modification time, epoch ms.
    pub modified: i64,
    /// Headline (may start with a line break, as some real ones do).
    pub title: &'a str,
    /// Article text, with line breaks, commas and quotes.
    pub body: &'a str,
    /// Image caption.
    pub caption: &'a str,
}

impl ItemRecord<'_> {
    /// Appends the CSV line (with its trailing newline).
    pub fn push_csv(&self, out: &mut String) {
        push_field(out, self.page);
        out.push(',');
        push_field(out, self.url);
        out.push(',');
        out.push_str(&format_g1_datetime(self.issued));
        out.push(',');
        out.push_str(&format_g1_datetime(self.modified));
        out.push(',');
        push_field(out, self.title);
        out.push(',');
        push_field(out, self.body);
        out.push(',');
        push_field(out, self.caption);
        out.push('\n');
    }
}

/// One user's row of `validacao.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidationRecord<'a> {
    /// User id (also present in training).
    pub user_id: &'a str,
    /// `Logged` / `Non-Logged`.
    pub user_type: UserType,
    /// Article ids.
    pub pages: Vec<&'a str>,
    /// Event times, epoch ms.
    pub timestamps: Vec<i64>,
}

impl ValidationRecord<'_> {
    /// Appends the CSV line (with its trailing newline).
    pub fn push_csv(&self, out: &mut String) {
        out.push_str(self.user_id);
        out.push(',');
        out.push_str(self.user_type.as_str());
        out.push(',');
        let mut field = String::new();
        push_numpy(&mut field, &self.pages, true);
        push_field(out, &field);
        out.push(',');
        field.clear();
        push_numpy(&mut field, &self.timestamps, false);
        push_field(out, &field);
        out.push('\n');
    }
}

/// A buffered CSV file: the header is written on creation, rows arrive as prepared
/// text (generators format whole chunks in parallel and hand them over in order).
pub struct CsvWriter {
    out: BufWriter<File>,
    path: PathBuf,
}

impl CsvWriter {
    /// Creates (truncates) `path` and writes the header line.
    pub fn create(path: &Path, header: &[&str]) -> std::io::Result<Self> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
        out.write_all(header.join(",").as_bytes())?;
        out.write_all(b"\n")?;
        Ok(Self {
            out,
            path: path.to_path_buf(),
        })
    }

    /// Appends prepared CSV lines.
    pub fn write_rows(&mut self, rows: &str) -> std::io::Result<()> {
        self.out.write_all(rows.as_bytes())
    }

    /// Flushes and syncs the file, returning its path.
    pub fn finish(self) -> std::io::Result<PathBuf> {
        let file = self.out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_only_when_needed() {
        let mut s = String::new();
        push_field(&mut s, "plain");
        push_field(&mut s, "a, b");
        push_field(&mut s, "diz \"sim\"\nfim");
        assert_eq!(s, "plain\"a, b\"\"diz \"\"sim\"\"\nfim\"");
    }

    #[test]
    fn training_row_matches_g1_bytes() {
        let r = TrainingRecord {
            user_id: "f98d1132f60d4688",
            user_type: UserType::Logged,
            pages: vec!["c8aab885-433d", "68d2039c-c9aa"],
            timestamps: vec![1657146417045, 1657146605778],
            clicks: vec![76, 38],
            time_on_page_ms: vec![20380, 21184],
            scroll_pct: vec![50.3, 18.0],
            page_visits: vec![2, 1],
        };
        let mut s = String::new();
        r.push_csv(&mut s);
        assert_eq!(
            s,
            "f98d1132f60d4688,Logged,2,\"c8aab885-433d, 68d2039c-c9aa\",\"1657146417045, 1657146605778\",\"76, 38\",\"20380, 21184\",\"50.3, 18.0\",\"2, 1\",\"1657146417045, 1657146605778\"\n"
        );
    }

    #[test]
    fn single_interaction_lists_are_unquoted() {
        let r = TrainingRecord {
            user_id: "u",
            user_type: UserType::NonLogged,
            pages: vec!["p"],
            timestamps: vec![1657146417045],
            clicks: vec![1],
            time_on_page_ms: vec![60000],
            scroll_pct: vec![12.5],
            page_visits: vec![1],
        };
        let mut s = String::new();
        r.push_csv(&mut s);
        assert_eq!(
            s,
            "u,Non-Logged,1,p,1657146417045,1,60000,12.5,1,1657146417045\n"
        );
    }

    #[test]
    fn g1_datetimes() {
        assert_eq!(
            format_g1_datetime(1_655_584_665_000),
            "2022-06-18 20:37:45+00:00"
        );
    }

    #[test]
    fn validation_row_is_a_numpy_printout() {
        let r = ValidationRecord {
            user_id: "u",
            user_type: UserType::Logged,
            pages: vec!["a", "b"],
            timestamps: vec![1660533217000, 1660533321000],
        };
        let mut s = String::new();
        r.push_csv(&mut s);
        assert_eq!(s, "u,Logged,['a' 'b'],[1660533217000 1660533321000]\n");
    }
}
