//! Casting any input frame to a dataset kind: column-name aliases, dtype casts, timestamp
//! normalisation, missing optional columns added as nulls, extra columns kept or dropped.
//!
//! Casts that can fail (text to numbers, text to timestamps) are checked in one streaming
//! pass before anything is written: strict mode reports the first bad value with its file,
//! column and row; lenient mode turns bad values into nulls and counts them.

use std::collections::BTreeMap;

use polars::prelude::*;

use crate::error::{Error, Result};
use crate::partition;
use crate::schema::{ColType, ColumnSpec, Kind};
use crate::timestamp;

/// How to cast one input.
#[derive(Clone, Debug, Default)]
pub struct CastOptions {
    /// Names the input in errors (a file path, or `frame`).
    pub source_name: String,
    /// Turn uncastable values into nulls (and count them) instead of failing.
    pub lenient: bool,
    /// Values for columns the input lacks (`exchange`, `symbol`, `timeframe`, ...).
    pub constants: BTreeMap<String, String>,
}

/// A cast frame, and what the cast had to null.
pub struct Cast {
    /// The frame with exactly the kind's columns (plus extras where the kind keeps them).
    pub frame: LazyFrame,
    /// Per column, how many values lenient mode turned into nulls.
    pub nulled: BTreeMap<String, u64>,
}

/// The expression turning input column `input` of dtype `src` into the spec's dtype.
fn convert(input: Expr, src: &DataType, spec: &ColumnSpec) -> Expr {
    if spec.timestamp {
        return timestamp::normalize_expr(input, src);
    }
    match (spec.dtype, src) {
        (ColType::Bool, DataType::String) => {
            let v = input.str().strip_chars(lit(" ")).str().to_lowercase();
            let is = |words: &[&str]| {
                words
                    .iter()
                    .fold(lit(false), |acc, w| acc.or(v.clone().eq(lit(*w))))
            };
            when(is(&["true", "t", "1", "yes", "y"]))
                .then(lit(true))
                .when(is(&["false", "f", "0", "no", "n"]))
                .then(lit(false))
                .otherwise(lit(NULL).cast(DataType::Boolean))
        }
        (ColType::Str, _) => input.cast(DataType::String),
        (target, DataType::String) if target != ColType::Str => {
            input.str().strip_chars(lit(" ")).cast(target.dtype())
        }
        (target, _) => input.cast(target.dtype()),
    }
}

/// Whether converting `src` to `spec` can turn a non-null value into null.
fn fallible(src: &DataType, spec: &ColumnSpec) -> bool {
    match src {
        DataType::String => spec.dtype != ColType::Str || spec.timestamp,
        DataType::Null => false,
        _ => spec.dtype == ColType::Bool && !matches!(src, DataType::Boolean),
    }
}

/// Maps each of the kind's columns to the input column that provides it.
fn match_columns(schema: &Schema, kind: &Kind) -> BTreeMap<String, String> {
    let mut found: BTreeMap<String, String> = BTreeMap::new();
    // Exact names first, then aliases, so `timestamp` beats `open_time` when both exist.
    for name in schema.iter_names() {
        if kind.column(name).is_some() {
            found.insert(name.to_string(), name.to_string());
        }
    }
    for name in schema.iter_names() {
        if let Some(canonical) = kind.canonical_name(name) {
            found.entry(canonical).or_insert_with(|| name.to_string());
        }
    }
    found
}

/// Casts `lf` to `kind`. Fails on a missing required column, or (strict) on the first value
/// that cannot be cast, naming the source, column, row and value.
pub fn cast_to_kind(lf: LazyFrame, kind: &Kind, opts: &CastOptions) -> Result<Cast> {
    let mut lf = lf;
    let schema = lf.collect_schema().map_err(Error::polars(format!(
        "{}: read the input schema",
        opts.source_name
    )))?;
    let found = match_columns(&schema, kind);
    let mut exprs = Vec::with_capacity(kind.columns.len());
    let mut checks: Vec<(String, Expr, Expr, DataType)> = vec![];
    for spec in &kind.columns {
        let target = spec.dtype.dtype();
        let expr = if let Some(input) = found.get(&spec.name) {
            let src = schema.get(input).cloned().unwrap_or(DataType::Null);
            let mut converted = convert(col(input.as_str()), &src, spec);
            // Lenient mode nulls timestamps outside what readers hold; strict mode leaves them
            // for the write to find in the staged files' statistics (no extra pass).
            let range_check = spec.timestamp && opts.lenient;
            if range_check {
                converted = when(timestamp::in_range(converted.clone()))
                    .then(converted)
                    .otherwise(lit(NULL).cast(DataType::Int64));
            }
            if fallible(&src, spec) || range_check {
                checks.push((
                    input.clone(),
                    col(input.as_str()),
                    converted.clone(),
                    target.clone(),
                ));
            }
            converted
        } else if let Some(value) = opts.constants.get(&spec.name) {
            let spec_src = DataType::String;
            convert(lit(value.clone()), &spec_src, spec)
        } else if let Some(derived) = derived_later(spec, &found, opts)
            .then(|| partition::derive_expr(&spec.name, &kind.timestamp_column))
            .flatten()
        {
            derived
        } else if !spec.required {
            lit(NULL).cast(target.clone())
        } else {
            let hint = match spec.name.as_str() {
                "exchange" | "symbol" | "timeframe" => {
                    format!(" (pass --{} or put it in the file name)", spec.name)
                }
                _ => String::new(),
            };
            return Err(Error::Schema(format!(
                "{}: missing required column `{}` for kind `{}`{hint}; columns found: {}",
                opts.source_name,
                spec.name,
                kind.name,
                schema
                    .iter_names()
                    .map(|n| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        exprs.push(expr.cast(target).alias(spec.name.as_str()));
    }
    if kind.keep_extra {
        let used: Vec<&String> = found.values().collect();
        for name in schema.iter_names() {
            if !used.iter().any(|u| u.as_str() == name.as_str())
                && kind.column(name).is_none()
                && name.as_str() != "ignore"
            {
                exprs.push(col(name.as_str()));
            }
        }
    }
    let nulled = check_casts(&lf, &checks, opts)?;
    // Derived columns (year/month/day of `unified`) read the *normalised* timestamp, so they
    // are computed in a second step over the first step's output.
    let mut first = vec![];
    let mut second = vec![];
    for (i, e) in exprs.into_iter().enumerate() {
        match kind.columns.get(i) {
            Some(spec) if derived_later(spec, &found, opts) => second.push(e),
            _ => first.push(e),
        }
    }
    let frame = lf.select(first);
    let frame = if second.is_empty() {
        frame
    } else {
        frame.with_columns(second)
    };
    Ok(Cast { frame, nulled })
}

/// Whether `spec` is absent from the input and derived from the normalised timestamp.
fn derived_later(spec: &ColumnSpec, found: &BTreeMap<String, String>, opts: &CastOptions) -> bool {
    partition::is_derived(&spec.name)
        && !found.contains_key(&spec.name)
        && !opts.constants.contains_key(&spec.name)
}

/// Counts values a fallible cast would null; strict mode turns the first into an error.
fn check_casts(
    lf: &LazyFrame,
    checks: &[(String, Expr, Expr, DataType)],
    opts: &CastOptions,
) -> Result<BTreeMap<String, u64>> {
    if checks.is_empty() {
        return Ok(BTreeMap::new());
    }
    let bad = |orig: &Expr, cast: &Expr| orig.clone().is_not_null().and(cast.clone().is_null());
    let counts = lf
        .clone()
        .select(
            checks
                .iter()
                .map(|(name, orig, cast, _)| {
                    bad(orig, cast)
                        .cast(DataType::UInt64)
                        .sum()
                        .alias(name.as_str())
                })
                .collect::<Vec<_>>(),
        )
        .collect_with_engine(Engine::Streaming)
        .map_err(Error::polars(format!(
            "{}: read the input",
            opts.source_name
        )))?
        .unwrap_single();
    let mut nulled = BTreeMap::new();
    for (name, orig, cast, dtype) in checks {
        let n = counts
            .column(name)
            .ok()
            .and_then(|c| c.get(0).ok())
            .and_then(|v| v.extract::<u64>())
            .unwrap_or(0);
        if n == 0 {
            continue;
        }
        if !opts.lenient {
            return Err(first_bad_value(lf, name, orig, cast, dtype, opts));
        }
        nulled.insert(name.clone(), n);
    }
    if !nulled.is_empty() {
        log::warn!(
            "{}: lenient cast turned values into nulls: {nulled:?}",
            opts.source_name
        );
    }
    Ok(nulled)
}

/// Finds the first value of `name` that the cast nulls and builds the error naming it.
fn first_bad_value(
    lf: &LazyFrame,
    name: &str,
    orig: &Expr,
    cast: &Expr,
    dtype: &DataType,
    opts: &CastOptions,
) -> Error {
    let found = lf
        .clone()
        .with_row_index("__pqdm_row", Some(1))
        .filter(orig.clone().is_not_null().and(cast.clone().is_null()))
        .select([
            col("__pqdm_row"),
            orig.clone().cast(DataType::String).alias("__pqdm_value"),
        ])
        .limit(1)
        .collect();
    let (row, value) = match found {
        Ok(df) if df.height() > 0 => {
            let row = df
                .column("__pqdm_row")
                .ok()
                .and_then(|c| c.get(0).ok())
                .and_then(|v| v.extract::<u64>());
            let value = df
                .column("__pqdm_value")
                .ok()
                .and_then(|c| c.str().ok().and_then(|s| s.get(0).map(str::to_string)));
            (row.unwrap_or(0), value.unwrap_or_default())
        }
        _ => (0, String::new()),
    };
    let dtype_name = ColType::from_dtype(dtype)
        .map(|t| t.name().to_string())
        .unwrap_or_else(|| dtype.to_string());
    Error::Cast {
        source_name: opts.source_name.clone(),
        column: name.to_string(),
        row,
        value,
        dtype: dtype_name,
    }
}
