//! The two list encodings of G1 fields.
//!
//! Training files join a list's values with `", "` inside one CSV field. The validation
//! file holds numpy printouts instead (`str(np.array(...))`): values separated by
//! whitespace inside brackets, strings in single quotes, wrapped at 75 characters with
//! a one-space continuation indent, so a list of two page ids already spans two lines.

use std::fmt::{Display, Write};

/// What an id (user or page) may look like: the rule of [`newsrec_core::UserId::parse`]
/// (1 to 128 characters of `[A-Za-z0-9._:-]`) as a regex, so polars can check millions
/// of ids without leaving its kernels. A test keeps the two in agreement.
pub const ID_PATTERN: &str = r"^[A-Za-z0-9._:-]{1,128}$";

/// numpy's default `linewidth`.
const NUMPY_LINE_WIDTH: usize = 75;

/// Appends `values` joined by `", "` (no quoting: the CSV writer quotes the field).
pub fn push_joined<T: Display>(out: &mut String, values: impl IntoIterator<Item = T>) {
    for (i, v) in values.into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        // Writing into a String cannot fail.
        let _ = write!(out, "{v}");
    }
}

/// Appends the numpy printout of `values`: `quoted` renders strings as `'value'`
/// (string arrays), otherwise numbers are right-aligned to a common width as numpy
/// does for integer arrays.
pub fn push_numpy<T: Display>(out: &mut String, values: &[T], quoted: bool) {
    let words: Vec<String> = values
        .iter()
        .map(|v| {
            if quoted {
                format!("'{v}'")
            } else {
                v.to_string()
            }
        })
        .collect();
    let width = if quoted {
        0
    } else {
        words.iter().map(String::len).max().unwrap_or(0)
    };
    let mut line = String::from("[");
    for (i, w) in words.iter().enumerate() {
        let last = i + 1 == words.len();
        let mut word = format!("{w:>width$}");
        if !last {
            word.push(' ');
        }
        // numpy keeps room for the closing bracket on the last line.
        let limit = if last {
            NUMPY_LINE_WIDTH - 1
        } else {
            NUMPY_LINE_WIDTH
        };
        if line.len() + word.len() > limit && line.len() > 1 {
            out.push_str(line.trim_end());
            out.push('\n');
            line = String::from(" ");
        }
        line.push_str(&word);
    }
    out.push_str(&line);
    out.push(']');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joined_lists_use_comma_space() {
        let mut s = String::new();
        push_joined(&mut s, [76, 38, 41]);
        assert_eq!(s, "76, 38, 41");
        let mut s = String::new();
        push_joined(&mut s, [50.3, 18.18]);
        assert_eq!(s, "50.3, 18.18");
    }

    #[test]
    fn numpy_strings_wrap_like_numpy() {
        let pages = [
            "c8aab885-433d-4e46-8066-479f40ba7fb2",
            "68d2039c-c9aa-456c-ac33-9b2e8677fba7",
        ];
        let mut s = String::new();
        push_numpy(&mut s, &pages, true);
        assert_eq!(
            s,
            "['c8aab885-433d-4e46-8066-479f40ba7fb2'\n '68d2039c-c9aa-456c-ac33-9b2e8677fba7']"
        );
    }

    #[test]
    fn numpy_integers_fill_lines_to_75() {
        let ts: Vec<i64> = (0..7).map(|i| 1_660_533_217_000 + i).collect();
        let mut s = String::new();
        push_numpy(&mut s, &ts, false);
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0],
            "[1660533217000 1660533217001 1660533217002 1660533217003 1660533217004"
        );
        assert_eq!(lines[1], " 1660533217005 1660533217006]");
        assert!(lines.iter().all(|l| l.len() <= NUMPY_LINE_WIDTH));
    }

    #[test]
    fn numpy_integers_are_right_aligned() {
        let mut s = String::new();
        push_numpy(&mut s, &[1, 100], false);
        assert_eq!(s, "[  1 100]");
        let mut s = String::new();
        push_numpy::<i64>(&mut s, &[], false);
        assert_eq!(s, "[]");
    }
}
