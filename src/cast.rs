//! Casting any input frame to a dataset kind: column-name aliases, dtype casts, timestamp
//! normalisation, missing optional columns added as nulls, extra columns kept or dropped.
//!
//! Casts that can fail (text to numbers, text to timestamps) turn a bad value into null. They
//! are checked in one streaming pass, [`Cast::check`]: strict mode reports the first bad value
//! with its file, column and row; lenient mode turns bad values into nulls and counts them.
//! A write runs that pass only when the files it wrote hold nulls in a checked column (a bad
//! value leaves a null there), so clean inputs are read once.

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
    /// The unit of numeric timestamps; `None`: read from each value's magnitude (see
    /// [`crate::timestamp`]), refusing numbers that are no plausible timestamp.
    pub timestamp_unit: Option<timestamp::Unit>,
}

/// A cast frame, with the conversions that can turn a value into null, not yet checked.
pub struct Cast {
    /// The frame with exactly the kind's columns (plus extras where the kind keeps them).
    pub frame: LazyFrame,
    input: LazyFrame,
    checks: Vec<Check>,
    opts: CastOptions,
}

impl Cast {
    /// The kind columns a failed conversion would leave a null in.
    pub fn checked_columns(&self) -> impl Iterator<Item = &str> {
        self.checks.iter().map(|c| c.target.as_str())
    }

    /// Reads the input once through the fallible conversions: strict mode fails on the first
    /// value a conversion nulls (naming input, column, row and value); lenient mode returns
    /// how many values each input column lost.
    pub fn check(&self) -> Result<BTreeMap<String, u64>> {
        check_casts(&self.input, &self.checks, &self.opts)
    }
}

/// A conversion that can turn a value into null.
struct Check {
    /// The input column.
    name: String,
    /// The kind column it becomes.
    target: String,
    /// Its values (dictionaries decoded).
    orig: Expr,
    /// The converted values.
    cast: Expr,
    /// What a value must be, for the error.
    expected: String,
}

/// Dictionary-encoded (categorical) input columns, decoded to their values: a cast must never
/// see the dictionary's indices.
fn decoded(input: Expr, src: &DataType) -> (Expr, DataType) {
    match src {
        DataType::Categorical(..) | DataType::Enum(..) => {
            (input.cast(DataType::String), DataType::String)
        }
        other => (input, other.clone()),
    }
}

/// Floats to an integer dtype: whole values within Int64 only, anything else null (for the
/// check to refuse), never truncated.
fn float_to_int(v: Expr, target: DataType) -> Expr {
    let whole = v
        .clone()
        .eq(v.clone().floor())
        .and(v.clone().abs().lt(lit(9.2e18)));
    when(whole)
        .then(v.cast(DataType::Int64).cast(target.clone()))
        .otherwise(lit(NULL).cast(target))
}

/// Numbers to booleans: 1 is true, 0 is false, anything else null (for the check to refuse).
fn number_to_bool(v: Expr) -> Expr {
    when(v.clone().eq(lit(1)))
        .then(lit(true))
        .when(v.eq(lit(0)))
        .then(lit(false))
        .otherwise(lit(NULL).cast(DataType::Boolean))
}

/// Text to booleans: true/t/1/yes/y and false/f/0/no/n, any case; anything else null.
fn text_to_bool(input: Expr) -> Expr {
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

fn is_integer(dtype: ColType) -> bool {
    matches!(
        dtype,
        ColType::I64 | ColType::I32 | ColType::I16 | ColType::I8
    )
}

/// The expression turning input column `input` of dtype `src` into the spec's dtype.
fn convert(input: Expr, src: &DataType, spec: &ColumnSpec, opts: &CastOptions) -> Expr {
    let (input, src) = decoded(input, src);
    let converted = convert_decoded(input, &src, spec, opts);
    if spec.name == "symbol" {
        // `btcusdt` and `BTCUSDT` are one market: symbols are stored in upper case.
        upper_case(converted)
    } else {
        converted
    }
}

/// `text` in upper case. Market data's symbols almost always are already: a column whose
/// values have no lower-case letter (checked on the bytes, no copy) is passed on as it is, where
/// Polars' `to_uppercase` rebuilt every value char by char (9% of a 5M-row write's CPU).
fn upper_case(text: Expr) -> Expr {
    text.map(
        |c| {
            let ca = c.str()?;
            let upper = ca
                .downcast_iter()
                .flat_map(|arr| arr.values_iter())
                .all(|v| v.is_ascii() && !v.bytes().any(|b| b.is_ascii_lowercase()));
            Ok(if upper {
                c
            } else {
                ca.to_uppercase().into_column()
            })
        },
        |_, field| Ok(field.clone()),
    )
}

fn convert_decoded(input: Expr, src: &DataType, spec: &ColumnSpec, opts: &CastOptions) -> Expr {
    if spec.timestamp {
        return timestamp::normalize_expr(input, src, opts.timestamp_unit);
    }
    let target = spec.dtype.dtype();
    match (spec.dtype, src) {
        (ColType::Str, _) => input.cast(DataType::String),
        (ColType::Bool, DataType::Boolean) => input,
        (ColType::Bool, DataType::String) => text_to_bool(input),
        (ColType::Bool, _) => number_to_bool(input),
        (t, DataType::String) if is_integer(t) => {
            let text = input.str().strip_chars(lit(" "));
            coalesce(&[
                text.clone().cast(DataType::Int64).cast(target.clone()),
                float_to_int(text.cast(DataType::Float64), target),
            ])
        }
        (t, DataType::Float32 | DataType::Float64) if is_integer(t) => float_to_int(input, target),
        (_, DataType::String) => input.str().strip_chars(lit(" ")).cast(target),
        _ => input.cast(target),
    }
}

/// Whether converting `src` to `spec` can turn a non-null value into null (a value that is no
/// timestamp, no number, a fraction or an overflow in an integer column, a boolean other than
/// 0 or 1, ...).
fn fallible(src: &DataType, spec: &ColumnSpec) -> bool {
    let numeric_to_f64 = spec.dtype == ColType::F64 && src.is_primitive_numeric();
    match src {
        DataType::Null => false,
        _ if spec.dtype == ColType::Str && !spec.timestamp => false,
        DataType::Datetime(..) | DataType::Date if spec.timestamp => false,
        _ if spec.timestamp => true,
        _ => !numeric_to_f64 && *src != spec.dtype.dtype(),
    }
}

/// What a value of `spec` must be, for errors.
fn expected(spec: &ColumnSpec) -> String {
    if spec.timestamp {
        timestamp::EXPECTED.to_string()
    } else {
        spec.dtype.name().to_string()
    }
}

/// The error for required columns that neither the input, the options nor the file name give,
/// all of them at once.
fn missing_columns(missing: &[&str], schema: &Schema, kind: &Kind, opts: &CastOptions) -> Error {
    let list = missing
        .iter()
        .map(|m| format!("`{m}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let flags: Vec<String> = missing
        .iter()
        .filter(|m| matches!(**m, "exchange" | "symbol" | "timeframe"))
        .map(|m| format!("--{m}"))
        .collect();
    let hint = if flags.is_empty() {
        String::new()
    } else {
        format!(
            " (pass {}, or keep Binance's file names and folders, e.g. \
             spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01-05.zip)",
            flags.join(" ")
        )
    };
    let s = if missing.len() == 1 { "" } else { "s" };
    Error::Schema(format!(
        "{}: missing required column{s} {list} for kind `{}`{hint}; columns found: {}",
        opts.source_name,
        kind.name,
        schema
            .iter_names()
            .map(|n| n.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ))
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
    let mut checks: Vec<Check> = vec![];
    let mut missing: Vec<&str> = vec![];
    for spec in &kind.columns {
        let target = spec.dtype.dtype();
        let expr = if let Some(input) = found.get(&spec.name) {
            let src = schema.get(input).cloned().unwrap_or(DataType::Null);
            let no_value_of = |t: &DataType| {
                t.is_nested()
                    || (spec.dtype != ColType::Str
                        && matches!(t, DataType::Binary | DataType::Duration(_) | DataType::Time))
            };
            if no_value_of(&src) {
                // No value of a list or struct is one number or text, and a duration, time of
                // day or bytes is no price or count (a duration in seconds cast to f64 read as
                // milliseconds): refused before the write, naming where, as a bad value is.
                return Err(Error::Input {
                    path: opts.source_name.clone().into(),
                    message: format!(
                        "column `{input}` holds {src} values, and `{}` of kind `{}` is {}: {}",
                        spec.name,
                        kind.name,
                        spec.dtype.name(),
                        match src.is_nested() {
                            true => "flatten it first",
                            false => "store it as a number or text first",
                        }
                    ),
                });
            }
            let mut converted = convert(col(input.as_str()), &src, spec, opts);
            // Lenient mode nulls timestamps outside what readers hold; strict mode leaves them
            // for the write to find in the staged files' statistics (no extra pass).
            let range_check = spec.timestamp && opts.lenient;
            if range_check {
                converted = when(timestamp::in_range(converted.clone()))
                    .then(converted)
                    .otherwise(lit(NULL).cast(DataType::Int64));
            }
            if fallible(&src, spec) || range_check {
                checks.push(Check {
                    name: input.clone(),
                    target: spec.name.clone(),
                    orig: decoded(col(input.as_str()), &src).0,
                    cast: converted.clone(),
                    expected: expected(spec),
                });
            }
            converted
        } else if let Some(value) = opts.constants.get(&spec.name) {
            convert(lit(value.clone()), &DataType::String, spec, opts)
        } else if let Some(derived) = derived_later(spec, &found, opts)
            .then(|| partition::derive_expr(&spec.name, &kind.timestamp_column))
            .flatten()
        {
            derived
        } else if !spec.required {
            lit(NULL).cast(target.clone())
        } else {
            missing.push(spec.name.as_str());
            continue;
        };
        exprs.push(expr.cast(target).alias(spec.name.as_str()));
    }
    if !missing.is_empty() {
        return Err(missing_columns(&missing, &schema, kind, opts));
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
    let frame = lf.clone().select(first);
    let frame = if second.is_empty() {
        frame
    } else {
        frame.with_columns(second)
    };
    Ok(Cast {
        frame,
        input: lf,
        checks,
        opts: opts.clone(),
    })
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
    checks: &[Check],
    opts: &CastOptions,
) -> Result<BTreeMap<String, u64>> {
    if checks.is_empty() {
        return Ok(BTreeMap::new());
    }
    let bad = |c: &Check| c.orig.clone().is_not_null().and(c.cast.clone().is_null());
    let counts = lf
        .clone()
        .select(
            checks
                .iter()
                .map(|c| bad(c).cast(DataType::UInt64).sum().alias(c.name.as_str()))
                .collect::<Vec<_>>(),
        )
        .collect_with_engine(Engine::Streaming)
        .map_err(Error::polars(format!(
            "{}: read the input",
            opts.source_name
        )))?
        .unwrap_single();
    let mut nulled = BTreeMap::new();
    for check in checks {
        let name = &check.name;
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
            return Err(first_bad_value(lf, check, opts));
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
fn first_bad_value(lf: &LazyFrame, check: &Check, opts: &CastOptions) -> Error {
    let Check {
        name, orig, cast, ..
    } = check;
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
    Error::Cast {
        source_name: opts.source_name.clone(),
        column: name.to_string(),
        row,
        value,
        dtype: check.expected.clone(),
    }
}
