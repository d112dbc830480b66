//! Per-user aggregates as polars expressions: the same sums as
//! [`UserAggregates::add`](newsrec_core::UserAggregates::add), computed for all users
//! at once (a test checks the two agree on the same rows).

use newsrec_core::EngagementCaps;
use newsrec_core::refined::col as c;
use polars::prelude::*;

use super::{ProcessError, Stage, tiers_of};

fn clamp_int(name: &str, cap: i64) -> Expr {
    let e = col(name).cast(DataType::Int64);
    when(e.clone().gt(lit(cap)))
        .then(lit(cap))
        .when(e.clone().lt(lit(0i64)))
        .then(lit(0i64))
        .otherwise(e)
        .cast(DataType::Float64)
}

/// One row per user of `interactions` (the `interactions.parquet` columns): the
/// `users.parquet` columns except `tier`. Each engagement term is clamped to
/// [`EngagementCaps::default`] before summing, as `UserAggregates::add` does; the
/// user's type is that of their latest interaction.
pub fn user_aggregates(interactions: LazyFrame) -> LazyFrame {
    let caps = EngagementCaps::default();
    let scroll = col(c::SCROLL_PCT);
    let scroll = when(scroll.clone().is_nan().or(scroll.clone().lt(lit(0.0))))
        .then(lit(0.0))
        .when(scroll.clone().gt(lit(caps.scroll_pct)))
        .then(lit(caps.scroll_pct))
        .otherwise(scroll);
    interactions.group_by([col(c::USER_ID)]).agg([
        col(c::USER_TYPE)
            .sort_by([col(c::TS)], SortMultipleOptions::default())
            .last()
            .alias(c::USER_TYPE),
        len().cast(DataType::Int64).alias(c::INTERACTIONS),
        col(c::TS).min().alias(c::FIRST_TS),
        col(c::TS).max().alias(c::LAST_TS),
        clamp_int(c::CLICKS, i64::from(caps.clicks))
            .sum()
            .alias(c::SUM_CLICKS),
        (clamp_int(c::TIME_ON_PAGE_MS, caps.time_on_page_ms as i64) / lit(60_000.0))
            .sum()
            .alias(c::SUM_TIME_MIN),
        (scroll / lit(100.0)).sum().alias(c::SUM_SCROLL),
        clamp_int(c::PAGE_VISITS, i64::from(caps.page_visits))
            .sum()
            .alias(c::SUM_VISITS),
        col(c::ENGAGEMENT).sum().alias(c::SUM_ENGAGEMENT),
    ])
}

/// `users.parquet`: [`user_aggregates`] plus the [`route_tier`](newsrec_core::route_tier)
/// tier, sorted by user id.
pub(super) fn users_with_tiers(interactions: LazyFrame) -> Result<DataFrame, ProcessError> {
    const S: &str = "user aggregates";
    let mut users = user_aggregates(interactions)
        .sort([c::USER_ID], SortMultipleOptions::default())
        .collect()
        .stage(S)?;
    let tiers = tiers_of(
        users.column(c::USER_TYPE).stage(S)?.str().stage(S)?,
        users.column(c::INTERACTIONS).stage(S)?.i64().stage(S)?,
    );
    users.with_column(tiers.into_column()).stage(S)?;
    users
        .select([
            c::USER_ID,
            c::USER_TYPE,
            c::TIER,
            c::INTERACTIONS,
            c::FIRST_TS,
            c::LAST_TS,
            c::SUM_CLICKS,
            c::SUM_TIME_MIN,
            c::SUM_SCROLL,
            c::SUM_VISITS,
            c::SUM_ENGAGEMENT,
        ])
        .stage(S)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use newsrec_core::{Engagement, UserAggregates};
    use proptest::prelude::*;

    use super::*;

    fn rows() -> impl Strategy<Value = Vec<(u8, i64, i64, i64, f64, i64)>> {
        proptest::collection::vec(
            (
                0u8..5,
                1_656_644_400_000i64..1_660_532_390_000,
                0i64..400,
                0i64..3_000_000,
                prop_oneof![0.0f64..150.0, Just(100.0), Just(0.0)],
                1i64..15,
            ),
            1..60,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn polars_aggregates_equal_user_aggregates_add(rows in rows()) {
            let mut expected: HashMap<String, UserAggregates> = HashMap::new();
            let mut engagement = Vec::new();
            for &(u, ts, clicks, time, scroll, visits) in &rows {
                let e = Engagement {
                    clicks: clicks as u32,
                    time_on_page_ms: time as u64,
                    scroll_pct: scroll,
                    page_visits: visits as u32,
                };
                engagement.push(e.score());
                expected.entry(format!("u{u}")).or_default().add(&e, ts);
            }
            let df = df!(
                c::USER_ID => rows.iter().map(|r| format!("u{}", r.0)).collect::<Vec<_>>(),
                c::USER_TYPE => rows.iter().map(|_| "Logged").collect::<Vec<_>>(),
                c::TS => rows.iter().map(|r| r.1).collect::<Vec<_>>(),
                c::CLICKS => rows.iter().map(|r| r.2).collect::<Vec<_>>(),
                c::TIME_ON_PAGE_MS => rows.iter().map(|r| r.3).collect::<Vec<_>>(),
                c::SCROLL_PCT => rows.iter().map(|r| r.4).collect::<Vec<_>>(),
                c::PAGE_VISITS => rows.iter().map(|r| r.5).collect::<Vec<_>>(),
                c::ENGAGEMENT => engagement,
            ).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let users = user_aggregates(df.lazy()).collect().map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(users.height(), expected.len());
            let get_f = |name: &str, i: usize| users.column(name).ok().and_then(|s| s.f64().ok()).and_then(|s| s.get(i)).unwrap_or(f64::NAN);
            let get_i = |name: &str, i: usize| users.column(name).ok().and_then(|s| s.i64().ok()).and_then(|s| s.get(i)).unwrap_or(i64::MIN);
            let ids = users.column(c::USER_ID).map_err(|e| TestCaseError::fail(e.to_string()))?.str().map_err(|e| TestCaseError::fail(e.to_string()))?.clone();
            for i in 0..users.height() {
                let id = ids.get(i).unwrap_or_default();
                let want = expected[id];
                prop_assert_eq!(get_i(c::INTERACTIONS, i) as u64, want.interactions);
                prop_assert_eq!(get_i(c::FIRST_TS, i), want.first_ts);
                prop_assert_eq!(get_i(c::LAST_TS, i), want.last_ts);
                for (name, w) in [
                    (c::SUM_CLICKS, want.clicks),
                    (c::SUM_TIME_MIN, want.time_min),
                    (c::SUM_SCROLL, want.scroll),
                    (c::SUM_VISITS, want.visits),
                    (c::SUM_ENGAGEMENT, want.engagement),
                ] {
                    let got = get_f(name, i);
                    prop_assert!((got - w).abs() <= 1e-9 * (1.0 + w.abs()), "{name}: {got} vs {w}");
                }
            }
        }
    }
}
