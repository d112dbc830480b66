//! `validacao.csv` → `validation.parquet`.

use std::collections::BTreeMap;
use std::path::Path;

use newsrec_core::refined::col as c;
use polars::prelude::*;

use super::{Dropped, ParsedRows, ProcessError, Stage, parse_rows, reason_counts};
use crate::g1::{REASON, RowReason, VALIDATION_COLUMNS, explode_validation, validation_rows};

const S: &str = "validation";

/// What the validation stage produced.
pub(super) struct ValidationOutcome {
    /// `validation.parquet`, sorted by `ts`.
    pub validation: DataFrame,
    /// Rows (users) read.
    pub rows: u64,
    /// Interactions the rows hold.
    pub interactions_in: u64,
    /// Set aside, by reason.
    pub malformed: BTreeMap<RowReason, Dropped>,
    /// Validation users absent from the refined training users.
    pub unknown_users: u64,
    /// Validation interactions at or before the last training event.
    pub before_training_end: u64,
}

pub(super) fn run(
    path: &Path,
    users: &DataFrame,
    training_end: Option<i64>,
) -> Result<ValidationOutcome, ProcessError> {
    let ParsedRows {
        rows,
        n_rows,
        interactions_in,
        mut malformed,
    } = parse_rows(
        &[path.to_path_buf()],
        &VALIDATION_COLUMNS,
        validation_rows,
        "parse validation",
    )?;
    let exploded = explode_validation(rows.lazy()).collect().stage(S)?;
    for (reason, d) in reason_counts(exploded.clone().lazy(), None, S)? {
        malformed.insert(
            reason,
            Dropped {
                rows: 0,
                interactions: d.rows,
            },
        );
    }
    let validation = exploded
        .lazy()
        .filter(col(REASON).is_null())
        .select([col(c::USER_ID), col(c::USER_TYPE), col(c::PAGE), col(c::TS)])
        .sort_by_exprs(
            [col(c::TS), col(c::USER_ID), col(c::PAGE)],
            SortMultipleOptions::default(),
        )
        .collect()
        .stage(S)?;
    let known = users
        .select([c::USER_ID])
        .stage(S)?
        .lazy()
        .with_column(lit(true).alias("known"));
    let unknown_users = validation
        .clone()
        .lazy()
        .select([col(c::USER_ID)])
        .unique(None, UniqueKeepStrategy::Any)
        .join(
            known,
            [col(c::USER_ID)],
            [col(c::USER_ID)],
            JoinArgs::new(JoinType::Left),
        )
        .filter(col("known").is_null())
        .collect()
        .stage(S)?
        .height() as u64;
    let before_training_end = match training_end {
        Some(end) => validation
            .column(c::TS)
            .stage(S)?
            .i64()
            .stage(S)?
            .iter()
            .filter(|t| t.is_some_and(|t| t <= end))
            .count() as u64,
        None => 0,
    };
    Ok(ValidationOutcome {
        validation,
        rows: n_rows,
        interactions_in,
        malformed,
        unknown_users,
        before_training_end,
    })
}
