//! Write → parse round trips of every G1 quirk through the polars readers that
//! `newsrec data process` uses.

use std::path::{Path, PathBuf};

use newsrec_core::UserType;
use polars::prelude::*;
use proptest::prelude::*;

use super::*;
// Both polars and this module have a `CsvWriter`; this one is meant.
use super::CsvWriter;

fn write_file(dir: &Path, name: &str, header: &[&str], body: &str) -> PathBuf {
    let path = dir.join(name);
    let mut w = CsvWriter::create(&path, header).expect("create");
    w.write_rows(body).expect("write");
    w.finish().expect("finish")
}

fn strs(df: &DataFrame, name: &str) -> Vec<Option<String>> {
    df.column(name)
        .expect("column")
        .str()
        .expect("str")
        .iter()
        .map(|s| s.map(str::to_string))
        .collect()
}

fn ints(df: &DataFrame, name: &str) -> Vec<Option<i64>> {
    df.column(name)
        .expect("column")
        .i64()
        .expect("i64")
        .iter()
        .collect()
}

fn parse_training(path: PathBuf) -> (DataFrame, DataFrame) {
    let raw = scan_csv_strings(&[path], &TRAINING_COLUMNS).expect("scan");
    let rows = training_rows(raw).collect().expect("rows");
    let inter = explode_training(rows.clone().lazy())
        .collect()
        .expect("explode");
    (rows, inter)
}

#[derive(Debug, Clone)]
struct Row {
    user: String,
    logged: bool,
    pages: Vec<String>,
    ts: Vec<i64>,
    clicks: Vec<u32>,
    time: Vec<u64>,
    scroll: Vec<f64>,
    visits: Vec<u32>,
}

fn row() -> impl Strategy<Value = Row> {
    (1usize..6).prop_flat_map(|n| {
        (
            "[0-9a-f]{64}",
            any::<bool>(),
            proptest::collection::vec(
                "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
                n,
            ),
            proptest::collection::vec(1_656_644_400_000i64..1_660_532_390_000, n),
            proptest::collection::vec(0u32..20_000, n),
            proptest::collection::vec(0u64..50_000_000, n),
            proptest::collection::vec((0u32..60_000_000).prop_map(|x| f64::from(x) / 100.0), n),
            proptest::collection::vec(1u32..700, n),
        )
            .prop_map(
                |(user, logged, pages, ts, clicks, time, scroll, visits)| Row {
                    user,
                    logged,
                    pages,
                    ts,
                    clicks,
                    time,
                    scroll,
                    visits,
                },
            )
    })
}

fn user_type(logged: bool) -> UserType {
    if logged {
        UserType::Logged
    } else {
        UserType::NonLogged
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn training_rows_round_trip(rows in proptest::collection::vec(row(), 1..12)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut text = String::new();
        for r in &rows {
            TrainingRecord {
                user_id: &r.user,
                user_type: user_type(r.logged),
                pages: r.pages.iter().map(String::as_str).collect(),
                timestamps: r.ts.clone(),
                clicks: r.clicks.clone(),
                time_on_page_ms: r.time.clone(),
                scroll_pct: r.scroll.clone(),
                page_visits: r.visits.clone(),
            }
            .push_csv(&mut text);
        }
        let path = write_file(dir.path(), "t.csv", &TRAINING_COLUMNS, &text);
        let (parsed_rows, inter) = parse_training(path);
        prop_assert_eq!(parsed_rows.height(), rows.len());
        prop_assert!(parsed_rows.column(REASON).expect("reason").null_count() == rows.len());
        let flat = |f: &dyn Fn(&Row) -> Vec<String>| -> Vec<Option<String>> {
            rows.iter().flat_map(f).map(Some).collect()
        };
        prop_assert_eq!(strs(&inter, "user_id"), flat(&|r| vec![r.user.clone(); r.pages.len()]));
        prop_assert_eq!(strs(&inter, "user_type"), flat(&|r| vec![user_type(r.logged).as_str().to_string(); r.pages.len()]));
        prop_assert_eq!(strs(&inter, "page"), flat(&|r| r.pages.clone()));
        prop_assert_eq!(ints(&inter, "ts"), rows.iter().flat_map(|r| r.ts.iter().map(|&t| Some(t))).collect::<Vec<_>>());
        prop_assert_eq!(ints(&inter, "clicks"), rows.iter().flat_map(|r| r.clicks.iter().map(|&t| Some(i64::from(t)))).collect::<Vec<_>>());
        prop_assert_eq!(ints(&inter, "time_on_page_ms"), rows.iter().flat_map(|r| r.time.iter().map(|&t| Some(t as i64))).collect::<Vec<_>>());
        prop_assert_eq!(ints(&inter, "page_visits"), rows.iter().flat_map(|r| r.visits.iter().map(|&t| Some(i64::from(t)))).collect::<Vec<_>>());
        let scroll: Vec<Option<f64>> = inter.column("scroll_pct").expect("scroll").f64().expect("f64").iter().collect();
        prop_assert_eq!(scroll, rows.iter().flat_map(|r| r.scroll.iter().map(|&s| Some(s))).collect::<Vec<_>>());
        prop_assert_eq!(inter.column(REASON).expect("reason").null_count(), inter.height());
    }

    #[test]
    fn validation_numpy_lists_round_trip(rows in proptest::collection::vec(row(), 1..12)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut text = String::new();
        for r in &rows {
            ValidationRecord {
                user_id: &r.user,
                user_type: user_type(r.logged),
                pages: r.pages.iter().map(String::as_str).collect(),
                timestamps: r.ts.clone(),
            }
            .push_csv(&mut text);
        }
        let path = write_file(dir.path(), "v.csv", &VALIDATION_COLUMNS, &text);
        let raw = scan_csv_strings(&[path], &VALIDATION_COLUMNS).expect("scan");
        let parsed = validation_rows(raw).collect().expect("rows");
        prop_assert_eq!(parsed.column(REASON).expect("reason").null_count(), rows.len());
        let inter = explode_validation(parsed.lazy()).collect().expect("explode");
        prop_assert_eq!(strs(&inter, "page"), rows.iter().flat_map(|r| r.pages.iter().cloned().map(Some)).collect::<Vec<_>>());
        prop_assert_eq!(ints(&inter, "ts"), rows.iter().flat_map(|r| r.ts.iter().map(|&t| Some(t))).collect::<Vec<_>>());
    }

    #[test]
    fn item_text_round_trips(texts in proptest::collection::vec(
        ("\n?[A-Za-zçãéó ,\"]{1,30}", "[A-Za-zçãéó ,\"\n]{1,200}", "[A-Za-z ,\"]{1,30}"), 1..10)
    ) {
        // Non-blank text only: an empty CSV field reads back as null, by design.
        prop_assume!(texts.iter().all(|(a, b, c)| [a, b, c].iter().all(|s| !s.trim().is_empty())));
        let dir = tempfile::tempdir().expect("tempdir");
        let mut text = String::new();
        let pages: Vec<String> = (0..texts.len()).map(|i| format!("page-{i}")).collect();
        for (i, (title, body, caption)) in texts.iter().enumerate() {
            ItemRecord {
                page: &pages[i],
                url: "http://g1.globo.com/am/amazonas/noticia/2022/07/01/x.ghtml",
                issued: 1_655_584_665_000,
                modified: 1_655_584_665_000 + i as i64,
                title,
                body,
                caption,
            }
            .push_csv(&mut text);
        }
        let path = write_file(dir.path(), "i.csv", &ITEM_COLUMNS, &text);
        let df = scan_csv_strings(&[path], &ITEM_COLUMNS).expect("scan").collect().expect("read");
        prop_assert_eq!(strs(&df, "title"), texts.iter().map(|t| Some(t.0.clone())).collect::<Vec<_>>());
        prop_assert_eq!(strs(&df, "body"), texts.iter().map(|t| Some(t.1.clone())).collect::<Vec<_>>());
        prop_assert_eq!(strs(&df, "caption"), texts.iter().map(|t| Some(t.2.clone())).collect::<Vec<_>>());
        let issued: Vec<Option<i64>> = strs(&df, "issued").iter().map(|s| s.as_deref().and_then(parse_g1_datetime)).collect();
        prop_assert!(issued.iter().all(|t| *t == Some(1_655_584_665_000)));
    }

    #[test]
    fn id_pattern_agrees_with_core(s in "[ -~]{0,140}") {
        // Readers strip surrounding whitespace before matching, as `parse` trims.
        prop_assert_eq!(regex_lite(s.trim()), newsrec_core::UserId::parse(&s).is_ok());
    }
}

/// `ID_PATTERN` evaluated by polars on one string.
fn regex_lite(s: &str) -> bool {
    let df = df!("s" => [s]).expect("df");
    df.lazy()
        .select([col("s").str().contains(lit(ID_PATTERN), true)])
        .collect()
        .expect("regex")
        .column("s")
        .expect("col")
        .bool()
        .expect("bool")
        .get(0)
        .unwrap_or(false)
}

#[test]
fn hand_written_quirks_parse() {
    let dir = tempfile::tempdir().expect("tempdir");
    let user = "f98d1132f60d4688a6b0a6b8c9c0e3f1f98d1132f60d4688a6b0a6b8c9c0e3f1";
    let body = format!(
        "{user},Logged,3,\"c8aab885-433d-4e46-8066-479f40ba7fb2, 68d2039c-c9aa-456c-ac33-9b2e8677fba7, 13e423ce-1d69-4c78-bc18-e8c8f7271964\",\"1657146417045, 1657146605778, 1657146698738\",\"76, 38, 41\",\"20380, 21184, 35438\",\"50.3, 18.18, 16.46\",\"2, 1, 1\",\"1657146417045, 1657146605778, 1657146698738\"\n\
         {user},Non-Logged,1,c8aab885-433d-4e46-8066-479f40ba7fb2,1657146417045,1,5000,100.0,1,1657146417045\n"
    );
    let path = write_file(dir.path(), "t.csv", &TRAINING_COLUMNS, &body);
    let (rows, inter) = parse_training(path);
    assert_eq!(rows.height(), 2);
    assert_eq!(inter.height(), 4);
    assert_eq!(
        ints(&inter, "clicks"),
        vec![Some(76), Some(38), Some(41), Some(1)]
    );
    assert_eq!(strs(&inter, "user_type")[3].as_deref(), Some("Non-Logged"));

    let items = "c8aab885-433d-4e46-8066-479f40ba7fb2,http://g1.globo.com/am/amazonas/noticia/2022/07/01/x.ghtml,2022-06-18 20:37:45+00:00,2022-06-18 21:00:00+00:00,\"\nTítulo com quebra\",\"Primeira linha, com vírgula.\n\n\"\"Citação\"\", disse ele.\",Foto: legenda\n";
    let path = write_file(dir.path(), "i.csv", &ITEM_COLUMNS, items);
    let df = scan_csv_strings(&[path], &ITEM_COLUMNS)
        .expect("scan")
        .collect()
        .expect("read");
    assert_eq!(df.height(), 1);
    assert_eq!(
        strs(&df, "title")[0].as_deref(),
        Some("\nTítulo com quebra")
    );
    assert_eq!(
        strs(&df, "body")[0].as_deref(),
        Some("Primeira linha, com vírgula.\n\n\"Citação\", disse ele.")
    );

    let val = format!(
        "{user},Logged,\"['c8aab885-433d-4e46-8066-479f40ba7fb2'\n '68d2039c-c9aa-456c-ac33-9b2e8677fba7']\",[1660533217000 1660533321000]\n"
    );
    let path = write_file(dir.path(), "v.csv", &VALIDATION_COLUMNS, &val);
    let raw = scan_csv_strings(&[path], &VALIDATION_COLUMNS).expect("scan");
    let inter = explode_validation(validation_rows(raw))
        .collect()
        .expect("explode");
    assert_eq!(
        strs(&inter, "page"),
        vec![
            Some("c8aab885-433d-4e46-8066-479f40ba7fb2".to_string()),
            Some("68d2039c-c9aa-456c-ac33-9b2e8677fba7".to_string())
        ]
    );
    assert_eq!(
        ints(&inter, "ts"),
        vec![Some(1660533217000), Some(1660533321000)]
    );
}

#[test]
fn wrong_header_is_an_error_not_a_malformed_row() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_file(dir.path(), "x.csv", &["a", "b"], "1,2\n");
    assert!(matches!(
        scan_csv_strings(&[path], &TRAINING_COLUMNS),
        Err(ReadError::Header { .. })
    ));
}
