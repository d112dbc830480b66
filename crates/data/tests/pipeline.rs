//! Synthetic data → `data process` end to end on small data: determinism, counts that
//! add up, malformed rows counted by reason, and the refined files' contract.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use newsrec_core::refined::{self, col as c};
use newsrec_core::{Tier, UserType, route_tier};
use newsrec_data::refine::{self, ProcessConfig, ProcessSummary};
use newsrec_data::synth::{self, SynthConfig};
use newsrec_data::{ITEMS_DIR, RawLayout, TRAINING_DIR, VALIDATION_FILE};
use polars::prelude::*;

fn synth(out: &Path, users: usize, items: usize, seed: u64) -> synth::SynthSummary {
    synth::generate(&SynthConfig {
        out: out.to_path_buf(),
        users,
        items,
        seed,
        world: synth::WorldKind::G1,
        zip: None,
        progress: false,
    })
    .expect("synth")
}

fn read_all(dir: &Path) -> Vec<(String, Vec<u8>)> {
    RawLayout::expected_files()
        .into_iter()
        .map(|rel| {
            let bytes = std::fs::read(dir.join(&rel)).expect("file");
            (rel.display().to_string(), bytes)
        })
        .collect()
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b, other) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    let sa = synth(&a, 500, 120, 11);
    let sb = synth(&b, 500, 120, 11);
    synth(&other, 500, 120, 12);
    assert_eq!(sa, sb);
    assert_eq!(read_all(&a), read_all(&b));
    assert_ne!(read_all(&a), read_all(&other));
}

fn append(path: &Path, text: &str) {
    let mut f = OpenOptions::new().append(true).open(path).expect("open");
    f.write_all(text.as_bytes()).expect("append");
}

const GOOD_PAGE: &str = "c8aab885-433d-4e46-8066-479f40ba7fb2";
const USER: &str = "f98d1132f60d4688a6b0a6b8c9c0e3f1f98d1132f60d4688a6b0a6b8c9c0e3f1";

/// Rows with one known defect each, appended to the synthetic files.
fn inject_malformed(raw: &Path) {
    let t = raw.join(TRAINING_DIR).join("treino_parte2.csv");
    let ts = 1_657_146_417_045i64;
    let row = |user: &str, ty: &str, size: &str, pages: &str, times: &str, clicks: &str| {
        format!(
            "{user},{ty},{size},\"{pages}\",\"{times}\",\"{clicks}\",\"20380, 21184\",\"50.3, 18.18\",\"2, 1\",\"{times}\"\n"
        )
    };
    let two_pages = format!("{GOOD_PAGE}, {GOOD_PAGE}");
    let two_ts = format!("{ts}, {}", ts + 1000);
    let mut text = String::new();
    // Row reasons (2 interactions each).
    text += &row("bad id!", "Logged", "2", &two_pages, &two_ts, "1, 2");
    text += &row(USER, "Anonymous", "2", &two_pages, &two_ts, "1, 2");
    text += &row(USER, "Logged", "2", &two_pages, &two_ts, "1, 2, 3");
    text += &row(USER, "Logged", "3", &two_pages, &two_ts, "1, 2");
    text += &row(USER, "Logged", "two", &two_pages, &two_ts, "1, 2");
    // Value reasons (1 interaction each; the other interaction of the row is kept).
    text += &row(
        USER,
        "Logged",
        "2",
        &format!("{GOOD_PAGE}, not a page"),
        &two_ts,
        "1, 2",
    );
    text += &row(
        USER,
        "Logged",
        "2",
        &two_pages,
        &format!("{ts}, 12"),
        "1, 2",
    );
    text += &row(
        USER,
        "Logged",
        "2",
        &two_pages,
        &format!("{ts}, soon"),
        "1, 2",
    );
    text += &row(USER, "Logged", "2", &two_pages, &two_ts, "1, many");
    text += &row(USER, "Logged", "2", &two_pages, &two_ts, "1, -4");
    // A short line: missing fields.
    text += &format!("{USER},Logged,1\n");
    append(&t, &text);

    let items = raw.join(ITEMS_DIR).join("itens-parte3.csv");
    append(
        &items,
        &format!(
            "{GOOD_PAGE},http://g1.globo.com/x,2022-07-01 10:00:00+00:00,2022-07-01 10:00:00+00:00,\"\nTítulo\",\"Corpo, com \"\"aspas\"\"\nem linhas\",Foto\n\
             {GOOD_PAGE},http://g1.globo.com/y,2022-07-01 10:00:00+00:00,2022-07-01 10:00:00+00:00,Repetida,Corpo,Foto\n\
             not a page,http://g1.globo.com/z,2022-07-01 10:00:00+00:00,2022-07-01 10:00:00+00:00,T,B,C\n\
             0f0e0d0c-1111-4222-8333-444455556666,http://g1.globo.com/w,ontem,2022-07-01 10:00:00+00:00,T,B,C\n"
        ),
    );

    let v = raw.join(VALIDATION_FILE);
    append(
        &v,
        &format!(
            "{USER},Logged,\"['{GOOD_PAGE}' ... '{GOOD_PAGE}']\",[1660533217000 ... 1660533321000]\n\
             {USER},Logged,{GOOD_PAGE},1660533217000\n\
             {USER},Logged,\"['{GOOD_PAGE}'\n '{GOOD_PAGE}']\",[1660533217000 16605]\n"
        ),
    );
}

fn count(m: &std::collections::BTreeMap<String, refine::Dropped>, reason: &str) -> (u64, u64) {
    m.get(reason).map_or((0, 0), |d| (d.rows, d.interactions))
}

fn read_parquet(path: &Path) -> DataFrame {
    let f = std::fs::File::open(path).expect("parquet");
    ParquetReader::new(f).finish().expect("read parquet")
}

#[test]
fn synth_then_process_adds_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let raw = dir.path().join("raw");
    let out = dir.path().join("refined");
    let made = synth(&raw, 1500, 400, 5);
    inject_malformed(&raw);
    let s: ProcessSummary = refine::process(&ProcessConfig::new(&raw, &out)).expect("process");

    // Every interaction is accounted for.
    assert_eq!(s.training_files, 6);
    assert_eq!(s.item_files, 3);
    assert_eq!(s.training_rows, made.users + 11);
    assert_eq!(
        s.interactions_in,
        s.interactions_out + s.interactions_malformed
    );
    let malformed: u64 = s.training_malformed.values().map(|d| d.interactions).sum();
    assert_eq!(s.interactions_malformed, malformed);
    // Planted outliers (and the natural tail of heavy clickers) are capped, not dropped.
    assert!(made.outliers > 0 && s.cleaning.capped > 0);
    assert_eq!(s.interactions_in, made.interactions + 2 * 10);

    let tm = &s.training_malformed;
    assert_eq!(count(tm, "bad_user_id"), (1, 2));
    assert_eq!(count(tm, "unknown_user_type"), (1, 2));
    assert_eq!(count(tm, "list_length_mismatch"), (1, 2));
    assert_eq!(count(tm, "history_size_mismatch"), (1, 2));
    assert_eq!(count(tm, "bad_history_size"), (1, 2));
    assert_eq!(count(tm, "missing_field"), (1, 0));
    assert_eq!(count(tm, "bad_page_id"), (0, 1));
    assert_eq!(count(tm, "absurd_timestamp"), (0, 1));
    assert_eq!(count(tm, "bad_timestamp"), (0, 1));
    assert_eq!(count(tm, "bad_number"), (0, 1));
    assert_eq!(count(tm, "negative_value"), (0, 1));

    assert_eq!(s.item_rows, made.items - made.unlisted_items + 4);
    assert_eq!(count(&s.items_malformed, "duplicate_page"), (1, 0));
    assert_eq!(count(&s.items_malformed, "bad_page_id"), (1, 0));
    assert_eq!(s.items_bad_dates, 1);
    assert_eq!(s.items_out, s.item_rows - 2);
    assert!(s.clicked_pages_without_item <= made.unlisted_items);

    assert_eq!(s.validation_rows, made.validation_users + 3);
    assert_eq!(count(&s.validation_malformed, "truncated_list"), (1, 3));
    assert_eq!(count(&s.validation_malformed, "bad_list"), (1, 1));
    assert_eq!(count(&s.validation_malformed, "absurd_timestamp"), (0, 1));
    assert_eq!(s.validation_out, made.validation_interactions + 1);
    assert_eq!(s.validation_before_training_end, 0);

    // The refined files follow the contract.
    let inter = read_parquet(&out.join(refined::INTERACTIONS_FILE));
    assert_eq!(inter.height() as u64, s.interactions_out);
    let names: Vec<&str> = inter
        .get_column_names()
        .iter()
        .map(|n| n.as_str())
        .collect();
    assert_eq!(
        names,
        [
            c::USER_ID,
            c::USER_TYPE,
            c::PAGE,
            c::TS,
            c::CLICKS,
            c::TIME_ON_PAGE_MS,
            c::SCROLL_PCT,
            c::PAGE_VISITS,
            c::ENGAGEMENT
        ]
    );
    let ts: Vec<i64> = inter
        .column(c::TS)
        .expect("ts")
        .i64()
        .expect("i64")
        .into_no_null_iter()
        .collect();
    assert!(
        ts.windows(2).all(|w| w[0] <= w[1]),
        "interactions sorted by ts"
    );
    let scroll_max = inter
        .column(c::SCROLL_PCT)
        .expect("scroll")
        .f64()
        .expect("f64")
        .max()
        .unwrap_or(0.0);
    assert!(scroll_max <= 100.0);
    let caps = newsrec_core::EngagementCaps::default();
    for (name, cap) in [
        (c::CLICKS, i64::from(caps.clicks)),
        (c::TIME_ON_PAGE_MS, caps.time_on_page_ms as i64),
        (c::PAGE_VISITS, i64::from(caps.page_visits)),
    ] {
        let max = inter
            .column(name)
            .expect(name)
            .i64()
            .expect("i64")
            .max()
            .unwrap_or(0);
        assert!(max <= cap, "{name}: {max} above the cap {cap}");
    }

    let users = read_parquet(&out.join(refined::USERS_FILE));
    assert_eq!(users.height() as u64, s.users_out);
    let n: i64 = users
        .column(c::INTERACTIONS)
        .expect("n")
        .i64()
        .expect("i64")
        .sum()
        .unwrap_or(0);
    assert_eq!(n as u64, s.interactions_out);
    let types = users
        .column(c::USER_TYPE)
        .expect("type")
        .str()
        .expect("str")
        .clone();
    let tiers = users
        .column(c::TIER)
        .expect("tier")
        .str()
        .expect("str")
        .clone();
    let counts = users
        .column(c::INTERACTIONS)
        .expect("n")
        .i64()
        .expect("i64")
        .clone();
    for i in 0..users.height() {
        let ty = types.get(i).and_then(UserType::parse);
        assert!(ty.is_some());
        let want = route_tier(ty, counts.get(i).unwrap_or(0) as u64);
        assert_eq!(tiers.get(i).and_then(Tier::parse), Some(want));
    }
    let shares: u64 = s.tiers.values().map(|t| t.users).sum();
    assert_eq!(shares, s.users_out);

    let items = read_parquet(&out.join(refined::ITEMS_FILE));
    assert_eq!(items.height() as u64, s.items_out);
    let titles = items
        .column(c::TITLE)
        .expect("title")
        .str()
        .expect("str")
        .clone();
    assert!(
        titles.iter().flatten().all(|t| !t.starts_with('\n')),
        "titles are trimmed"
    );
    let bodies = items
        .column(c::BODY)
        .expect("body")
        .str()
        .expect("str")
        .clone();
    assert!(
        bodies
            .iter()
            .flatten()
            .any(|b| b.contains("Corpo, com \"aspas\"\nem linhas"))
    );

    let val = read_parquet(&out.join(refined::VALIDATION_FILE));
    let names: Vec<&str> = val.get_column_names().iter().map(|n| n.as_str()).collect();
    assert_eq!(names, [c::USER_ID, c::USER_TYPE, c::PAGE, c::TS]);
    assert_eq!(val.height() as u64, s.validation_out);

    // Summary and report.
    let json: ProcessSummary =
        serde_json::from_slice(&std::fs::read(out.join(refined::SUMMARY_FILE)).expect("summary"))
            .expect("summary json");
    assert_eq!(json.interactions_out, s.interactions_out);
    let report = std::fs::read_to_string(out.join(refined::REPORT_FILE)).expect("report");
    for needle in [
        "## Row counts",
        "`bad_user_id`",
        "## Cleaning",
        "## Tiers",
        "Gini",
    ] {
        assert!(report.contains(needle), "report lacks {needle}");
    }
    for png in [
        "tiers.png",
        "history_size.png",
        "engagement_clicks.png",
        "engagement_time_on_page.png",
        "engagement_scroll.png",
        "engagement_page_visits.png",
        "clicks_per_day.png",
        "popularity.png",
        "popularity_lorenz.png",
    ] {
        let bytes = std::fs::read(out.join(png)).expect(png);
        assert!(bytes.starts_with(b"\x89PNG"), "{png} is not a PNG");
        assert!(report.contains(png), "report does not show {png}");
    }
}

#[test]
fn generated_statistics_resemble_g1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let raw = dir.path().join("raw");
    let made = synth(&raw, 6000, 1500, 9);
    let logged_share = made.logged_users as f64 / made.users as f64;
    assert!(
        (0.18..0.24).contains(&logged_share),
        "logged share {logged_share}"
    );
    let mean = made.interactions as f64 / made.users as f64;
    assert!((9.0..20.0).contains(&mean), "mean history {mean}");
    let logged_interactions = made.logged_interactions as f64 / made.interactions as f64;
    assert!(
        (0.35..0.55).contains(&logged_interactions),
        "logged interactions {logged_interactions}"
    );
    assert!(made.validation_users > 0 && made.validation_users < made.users);
    assert!(made.unlisted_items > 0 || made.items < 500);
}
