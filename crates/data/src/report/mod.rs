//! The data report written by `newsrec data process`: `report.md` with the run's
//! counts and PNG histograms beside it (the exploratory analysis, kept reproducible).

mod plot;

use std::fmt::Write as _;
use std::path::Path;

use newsrec_core::refined::{self, col as c};
use newsrec_core::time::rfc3339;
use polars::prelude::*;

use crate::refine::{Dropped, ProcessError, ProcessSummary};

/// Counts in power-of-two bins of `1 + x`: bin `k` holds `2^k − 1 ≤ x < 2^(k+1) − 1`,
/// so `0`, `1–2`, `3–6`, `7–14`, … (heavy tails stay readable).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    /// Count per bin.
    pub counts: Vec<u64>,
}

impl Histogram {
    /// Bins `values` (negative values count as 0).
    pub fn log2(values: impl IntoIterator<Item = f64>) -> Self {
        let mut counts: Vec<u64> = Vec::new();
        for v in values {
            let k = (1.0 + v.max(0.0)).log2().floor() as usize;
            if counts.len() <= k {
                counts.resize(k + 1, 0);
            }
            counts[k] += 1;
        }
        Self { counts }
    }

    /// `[lo, hi)` of bin `k`.
    pub fn bounds(k: usize) -> (f64, f64) {
        let p = 2f64.powi(k as i32);
        (p - 1.0, 2.0 * p - 1.0)
    }

    /// Counts as floats (for drawing), padded to `len` bins.
    fn padded(&self, len: usize) -> Vec<f64> {
        let mut v: Vec<f64> = self.counts.iter().map(|&c| c as f64).collect();
        v.resize(len.max(v.len()), 0.0);
        v
    }

    /// Total count.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// Histograms of the four engagement columns (time on page in seconds).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EngagementHists {
    /// Clicks inside the page.
    pub clicks: Histogram,
    /// Time on page, seconds.
    pub time_s: Histogram,
    /// Scroll percent.
    pub scroll: Histogram,
    /// Page visits.
    pub visits: Histogram,
}

impl EngagementHists {
    /// Histograms of the engagement columns of `df` (interactions columns).
    pub fn of(df: &DataFrame) -> PolarsResult<Self> {
        let ints = |name: &str, scale: f64| -> PolarsResult<Histogram> {
            Ok(Histogram::log2(
                df.column(name)?
                    .i64()?
                    .iter()
                    .flatten()
                    .map(|v| v as f64 / scale),
            ))
        };
        Ok(Self {
            clicks: ints(c::CLICKS, 1.0)?,
            time_s: ints(c::TIME_ON_PAGE_MS, 1000.0)?,
            scroll: Histogram::log2(df.column(c::SCROLL_PCT)?.f64()?.iter().flatten()),
            visits: ints(c::PAGE_VISITS, 1.0)?,
        })
    }
}

/// Distributions gathered while processing, for the figures.
#[derive(Debug, Clone, Default)]
pub struct ReportData {
    /// Interactions per well-formed training row.
    pub history_sizes: Histogram,
    /// Engagement before cleaning.
    pub before: EngagementHists,
    /// Engagement after cleaning.
    pub after: EngagementHists,
    /// `(day start ms, refined interactions)`.
    pub clicks_per_day: Vec<(i64, u64)>,
    /// Clicks per clicked page.
    pub popularity: Histogram,
    /// Lorenz curve of clicks over pages.
    pub lorenz: Vec<(f64, f64)>,
}

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        "–".into()
    } else {
        format!("{:.1}%", 100.0 * part as f64 / whole as f64)
    }
}

fn bins_table(md: &mut String, h: &[(&str, &Histogram)], unit: &str) {
    let len = h.iter().map(|(_, h)| h.counts.len()).max().unwrap_or(0);
    let _ = write!(md, "\n| {unit} |");
    for (name, _) in h {
        let _ = write!(md, " {name} |");
    }
    md.push_str("\n|---|");
    for _ in h {
        md.push_str("---:|");
    }
    md.push('\n');
    for k in 0..len {
        let (lo, hi) = Histogram::bounds(k);
        let _ = write!(md, "| {lo}–{} |", hi - 1.0);
        for (_, h) in h {
            let _ = write!(md, " {} |", h.counts.get(k).copied().unwrap_or(0));
        }
        md.push('\n');
    }
}

fn dropped_table(md: &mut String, title: &str, m: &std::collections::BTreeMap<String, Dropped>) {
    let _ = writeln!(md, "\n**{title}**\n");
    if m.is_empty() {
        md.push_str("none\n");
        return;
    }
    md.push_str("| reason | rows | interactions |\n|---|---:|---:|\n");
    for (r, d) in m {
        let _ = writeln!(md, "| `{r}` | {} | {} |", d.rows, d.interactions);
    }
}

/// Writes `report.md` and its figures into `out`.
pub fn write(out: &Path, s: &ProcessSummary, d: &ReportData) -> Result<(), ProcessError> {
    let fig = |name: &str| out.join(name);
    let mut md = String::new();
    md.push_str("# G1 data report\n\nWritten by `newsrec data process`. Figures carry no text: axes and colours are described under each one.\n");
    row_counts(&mut md, s);
    malformed(&mut md, s);
    cleaning(&mut md, s);
    tiers(&mut md, s, &fig("tiers.png"))?;
    history_size(&mut md, d, &fig("history_size.png"))?;
    engagement(&mut md, d, out)?;
    clicks_per_day(&mut md, d, &fig("clicks_per_day.png"))?;
    popularity(
        &mut md,
        s,
        d,
        &fig("popularity_lorenz.png"),
        &fig("popularity.png"),
    )?;
    let path = out.join(refined::REPORT_FILE);
    std::fs::write(&path, md).map_err(|source| ProcessError::Io { path, source })
}

/// The row counts, input to refined, and the refined time range.
fn row_counts(md: &mut String, s: &ProcessSummary) {
    md.push_str("\n## Row counts\n\n| | count |\n|---|---:|\n");
    let rows = [
        ("training files", s.training_files as u64),
        ("training rows (users)", s.training_rows),
        ("interactions in training rows", s.interactions_in),
        ("— set aside as malformed", s.interactions_malformed),
        ("= refined interactions", s.interactions_out),
        (
            "refined interactions with a value capped",
            s.cleaning.capped,
        ),
        ("refined users", s.users_out),
        ("item files", s.item_files as u64),
        ("item rows", s.item_rows),
        ("refined items", s.items_out),
        (
            "items kept with an unparseable date (null)",
            s.items_bad_dates,
        ),
        (
            "clicked pages missing from the item files",
            s.clicked_pages_without_item,
        ),
        ("interactions on those pages", s.interactions_without_item),
        ("validation rows (users)", s.validation_rows),
        ("interactions in validation rows", s.validation_in),
        ("refined validation interactions", s.validation_out),
        (
            "validation users unknown to training",
            s.validation_users_unknown,
        ),
        (
            "validation interactions not after training",
            s.validation_before_training_end,
        ),
    ];
    for (name, n) in rows {
        let _ = writeln!(md, "| {name} | {n} |");
    }
    if let Some((a, b)) = s.time_range {
        let _ = writeln!(
            md,
            "\nRefined interactions span {} … {}.",
            rfc3339(a),
            rfc3339(b)
        );
    }
}

/// What was set aside, by reason.
fn malformed(md: &mut String, s: &ProcessSummary) {
    md.push_str("\n## Malformed rows\n\nSet aside and counted, never fatal. Row reasons drop every interaction of the row; value reasons (`bad_page_id`, `bad_timestamp`, `absurd_timestamp`, `bad_number`, `negative_value`) drop one interaction.\n");
    dropped_table(md, "Training", &s.training_malformed);
    dropped_table(md, "Items", &s.items_malformed);
    dropped_table(md, "Validation", &s.validation_malformed);
}

/// The caps, the data's own p99 beside them and how many values were capped.
fn cleaning(md: &mut String, s: &ProcessSummary) {
    let cl = &s.cleaning;
    let _ = write!(
        md,
        "\n## Cleaning\n\nCaps: {}. A value above its cap is clamped to the cap and the interaction is kept (the page was read): {} of {} refined interactions have at least one capped value ({}).\n\n| column | cap | data p99 | capped |\n|---|---:|---:|---:|\n",
        cl.caps_source,
        cl.capped,
        s.interactions_out,
        pct(cl.capped, s.interactions_out)
    );
    let caps = [
        (c::CLICKS, cl.caps.clicks as f64, cl.data_p99.clicks),
        (
            c::TIME_ON_PAGE_MS,
            cl.caps.time_on_page_ms as f64,
            cl.data_p99.time_on_page_ms,
        ),
        (c::SCROLL_PCT, cl.caps.scroll_pct, cl.data_p99.scroll_pct),
        (
            c::PAGE_VISITS,
            cl.caps.page_visits as f64,
            cl.data_p99.page_visits,
        ),
    ];
    for (name, cap, p99) in caps {
        let _ = writeln!(
            md,
            "| {name} | {cap} | {p99:.2} | {} |",
            cl.above_cap.get(name).copied().unwrap_or(0)
        );
    }
    let _ = writeln!(
        md,
        "\nThe p99 of interactions per training row is {:.1}; heavy readers are kept (they are the logged tier's best signal).",
        cl.history_size_p99
    );
}

/// Users and interactions per tier and per user type, with their figure.
fn tiers(md: &mut String, s: &ProcessSummary, png: &Path) -> Result<(), ProcessError> {
    md.push_str("\n## Tiers\n\nEach refined user is routed with `newsrec_core::route_tier` from their type and refined interaction count.\n\n| tier | users | share | interactions | share |\n|---|---:|---:|---:|---:|\n");
    let mut users_series = Vec::new();
    let mut inter_series = Vec::new();
    for (tier, t) in &s.tiers {
        let _ = writeln!(
            md,
            "| {tier} | {} | {} | {} | {} |",
            t.users,
            pct(t.users, s.users_out),
            t.interactions,
            pct(t.interactions, s.interactions_out)
        );
        users_series.push(100.0 * t.users as f64 / s.users_out.max(1) as f64);
        inter_series.push(100.0 * t.interactions as f64 / s.interactions_out.max(1) as f64);
    }
    md.push_str(
        "\n| user type | users | share | interactions | share |\n|---|---:|---:|---:|---:|\n",
    );
    for (ty, t) in &s.user_types {
        let _ = writeln!(
            md,
            "| {ty} | {} | {} | {} | {} |",
            t.users,
            pct(t.users, s.users_out),
            t.interactions,
            pct(t.interactions, s.interactions_out)
        );
    }
    plot::bars(
        png,
        &[(&users_series, plot::BLUE), (&inter_series, plot::ORANGE)],
        false,
    )?;
    let names: Vec<&str> = s.tiers.keys().map(String::as_str).collect();
    let _ = writeln!(
        md,
        "\n![tier shares](tiers.png)\n\n*Tier shares (percent, linear). Groups left to right: {}; blue = users, orange = interactions.*",
        names.join(", ")
    );
    Ok(())
}

/// Interactions per training row.
fn history_size(md: &mut String, d: &ReportData, png: &Path) -> Result<(), ProcessError> {
    md.push_str("\n## History size\n\n![history size](history_size.png)\n\n*Interactions per training row (well-formed rows). x: power-of-two bins of 1 + size (table below); y: log10(1 + rows).*\n");
    plot::bars(png, &[(&d.history_sizes.padded(0), plot::BLUE)], true)?;
    bins_table(md, &[("rows", &d.history_sizes)], "interactions");
    Ok(())
}

/// Each engagement column before and after cleaning, one figure per column in `out`.
fn engagement(md: &mut String, d: &ReportData, out: &Path) -> Result<(), ProcessError> {
    md.push_str("\n## Engagement before and after cleaning\n\nEach figure: x = power-of-two bins of 1 + value (tables give the bounds); y = log10(1 + interactions); blue = well-formed before cleaning, orange = refined (capped).\n");
    let cols: [(&str, &str, &Histogram, &Histogram); 4] = [
        ("clicks", "clicks", &d.before.clicks, &d.after.clicks),
        ("time on page", "seconds", &d.before.time_s, &d.after.time_s),
        ("scroll", "percent", &d.before.scroll, &d.after.scroll),
        ("page visits", "visits", &d.before.visits, &d.after.visits),
    ];
    for (title, unit, before, after) in cols {
        let file = format!("engagement_{}.png", title.replace(' ', "_"));
        let len = before.counts.len().max(after.counts.len());
        plot::bars(
            &out.join(&file),
            &[
                (&before.padded(len), plot::BLUE),
                (&after.padded(len), plot::ORANGE),
            ],
            true,
        )?;
        let _ = writeln!(md, "\n### {title}\n\n![{title}]({file})");
        bins_table(md, &[("before", before), ("after", after)], unit);
    }
    Ok(())
}

/// Refined interactions per UTC day.
fn clicks_per_day(md: &mut String, d: &ReportData, png: &Path) -> Result<(), ProcessError> {
    md.push_str("\n## Clicks per day\n\n![clicks per day](clicks_per_day.png)\n\n*Refined interactions per UTC day (linear), first day on the left.*\n\n| day | interactions |\n|---|---:|\n");
    let per_day: Vec<f64> = d.clicks_per_day.iter().map(|&(_, n)| n as f64).collect();
    plot::bars(png, &[(&per_day, plot::BLUE)], false)?;
    for (day, n) in &d.clicks_per_day {
        let _ = writeln!(md, "| {} | {n} |", &rfc3339(*day)[..10]);
    }
    Ok(())
}

/// Concentration of clicks on pages: Gini, Lorenz curve, clicks per page.
fn popularity(
    md: &mut String,
    s: &ProcessSummary,
    d: &ReportData,
    lorenz: &Path,
    png: &Path,
) -> Result<(), ProcessError> {
    let _ = write!(
        md,
        "\n## Item popularity\n\nGini coefficient of clicks over the {} clicked pages: **{:.3}** (real G1 news: about 0.94).\n\n![Lorenz curve](popularity_lorenz.png) ![clicks per page](popularity.png)\n\n*Left: Lorenz curve, x = share of pages from least to most read, y = share of clicks; grey = perfect equality. Right: pages per power-of-two bin of 1 + clicks, y = log10(1 + pages).*\n",
        d.popularity.total(),
        s.popularity_gini
    );
    plot::lorenz(lorenz, &d.lorenz)?;
    plot::bars(png, &[(&d.popularity.padded(0), plot::BLUE)], true)?;
    bins_table(md, &[("pages", &d.popularity)], "clicks");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log2_bins() {
        let h = Histogram::log2([0.0, 1.0, 2.0, 3.0, 6.0, 7.0, -5.0]);
        assert_eq!(h.counts, vec![2, 2, 2, 1]);
        assert_eq!(Histogram::bounds(0), (0.0, 1.0));
        assert_eq!(Histogram::bounds(2), (3.0, 7.0));
        assert_eq!(h.total(), 7);
    }
}
