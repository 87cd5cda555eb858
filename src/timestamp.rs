//! Timestamp normalisation: every stored timestamp is Int64 milliseconds since the epoch, UTC.
//!
//! Integers and floats are normalised per value by magnitude (below 1e11 seconds, below 1e14
//! milliseconds, below 1e17 microseconds, otherwise nanoseconds), so one column may mix units
//! (Binance spot files switched from ms to µs on 2025-01-01). Datetime and Date columns and
//! ISO-8601 strings are converted too. All of it is Polars expressions, no row loops.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use polars::prelude::*;

/// Below this magnitude a value is in seconds.
const SECONDS_BELOW: f64 = 1e11;
/// Below this magnitude a value is in milliseconds.
const MILLIS_BELOW: f64 = 1e14;
/// Below this magnitude a value is in microseconds (above, nanoseconds).
const MICROS_BELOW: f64 = 1e17;

/// The earliest timestamp pqdm stores: 1970-01-01T00:00:00Z.
pub const MIN_MS: i64 = 0;
/// The latest timestamp pqdm stores: the last nanosecond timestamp (2262-04-11T23:47:16.854Z),
/// so that every reader, pandas and pyarrow's ns types included, can hold every value.
pub const MAX_MS: i64 = i64::MAX / 1_000_000;

/// Whether a millisecond expression lies in [`MIN_MS`, `MAX_MS`].
pub fn in_range(ms: Expr) -> Expr {
    ms.clone().gt_eq(lit(MIN_MS)).and(ms.lt_eq(lit(MAX_MS)))
}

/// Normalises an integer expression (any unit) to milliseconds.
///
/// The magnitude is taken in floating point: the integer `abs` of `i64::MIN` wraps to itself,
/// which would read it as seconds and then scale it by 1000 to 0 (1970-01-01). As a float it is
/// nanoseconds, far before 1970, and refused like every other out-of-range value. Only values
/// below 1e11 are scaled up, so the multiplication cannot overflow for the rows it is kept for.
fn from_integer(e: Expr) -> Expr {
    let v = e.cast(DataType::Int64);
    let a = v.clone().cast(DataType::Float64).abs();
    when(a.clone().lt(lit(SECONDS_BELOW)))
        .then(v.clone() * lit(1000i64))
        .when(a.clone().lt(lit(MILLIS_BELOW)))
        .then(v.clone())
        .when(a.lt(lit(MICROS_BELOW)))
        .then(v.clone().floor_div(lit(1000i64)))
        .otherwise(v.floor_div(lit(1_000_000i64)))
}

/// Normalises a float expression (any unit, fractions allowed) to milliseconds.
fn from_float(e: Expr) -> Expr {
    let v = e.cast(DataType::Float64);
    let a = v.clone().abs();
    when(a.clone().lt(lit(SECONDS_BELOW)))
        .then((v.clone() * lit(1000.0)).round(0, RoundMode::HalfToEven))
        .when(a.clone().lt(lit(MILLIS_BELOW)))
        .then(v.clone().round(0, RoundMode::HalfToEven))
        .when(a.lt(lit(MICROS_BELOW)))
        .then((v.clone() / lit(1000.0)).floor())
        .otherwise((v / lit(1_000_000.0)).floor())
        .cast(DataType::Int64)
}

fn strptime(format: &str) -> StrptimeOptions {
    StrptimeOptions {
        format: Some(format.into()),
        strict: false,
        exact: true,
        cache: true,
    }
}

/// Parses ISO-8601 strings (`2025-01-01`, `2025-01-01 00:00`, `2025-01-01T00:00:00.123Z`,
/// `...+02:00`) and numeric strings to milliseconds; anything else becomes null.
fn from_string(e: Expr) -> Expr {
    let s = e.str().strip_chars(lit(" "));
    // Unify the separators and the `Z` suffix so that a few formats cover ISO-8601.
    let iso = s
        .clone()
        .str()
        .replace(lit(" "), lit("T"), true)
        .str()
        .replace(lit(r"[zZ]$"), lit("+00:00"), false);
    let with_offset = iso
        .clone()
        .str()
        .to_datetime(
            Some(TimeUnit::Milliseconds),
            None,
            strptime("%Y-%m-%dT%H:%M:%S%.f%:z"),
            lit("raise"),
        )
        .dt()
        .timestamp(TimeUnit::Milliseconds);
    let naive = |fmt: &str| {
        iso.clone()
            .str()
            .to_datetime(
                Some(TimeUnit::Milliseconds),
                None,
                strptime(fmt),
                lit("raise"),
            )
            .dt()
            .timestamp(TimeUnit::Milliseconds)
    };
    let date_only = s
        .clone()
        .str()
        .to_date(strptime("%Y-%m-%d"))
        .cast(DataType::Datetime(TimeUnit::Milliseconds, None))
        .dt()
        .timestamp(TimeUnit::Milliseconds);
    let integer = from_integer(s.clone().cast(DataType::Int64));
    let float = from_float(s.cast(DataType::Float64));
    coalesce(&[
        integer,
        float,
        with_offset,
        naive("%Y-%m-%dT%H:%M:%S%.f"),
        naive("%Y-%m-%dT%H:%M"),
        date_only,
    ])
}

/// The expression that turns `e` (of dtype `src`) into Int64 milliseconds since the epoch.
/// Values that cannot be read as a timestamp become null.
pub fn normalize_expr(e: Expr, src: &DataType) -> Expr {
    match src {
        DataType::Datetime(_, _) => e.dt().timestamp(TimeUnit::Milliseconds),
        DataType::Date => e
            .cast(DataType::Datetime(TimeUnit::Milliseconds, None))
            .dt()
            .timestamp(TimeUnit::Milliseconds),
        DataType::String => from_string(e),
        DataType::Float32 | DataType::Float64 => from_float(e),
        DataType::Null => e.cast(DataType::Int64),
        _ => from_integer(e),
    }
}

/// Parses one timestamp written by a user (`2024-01-05`, `2024-01-05T10:00:00Z`, `2024-01-05 10:00`,
/// or a number in any unit) into milliseconds since the epoch, UTC.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let t = text.trim();
    if let Ok(n) = t.parse::<i64>() {
        return Some(normalize_value(n));
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Some(d.timestamp_millis());
    }
    let iso = t.replacen(' ', "T", 1);
    let iso = iso.strip_suffix(['Z', 'z']).unwrap_or(&iso);
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(d) = NaiveDateTime::parse_from_str(iso, fmt) {
            return Some(d.and_utc().timestamp_millis());
        }
    }
    NaiveDate::parse_from_str(t, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc().timestamp_millis())
}

/// Normalises one integer timestamp of any unit to milliseconds (the rule of [`normalize_expr`]).
pub fn normalize_value(v: i64) -> i64 {
    let a = v.unsigned_abs() as f64;
    if a < SECONDS_BELOW {
        // |v| < 1e11, so this cannot overflow.
        v * 1000
    } else if a < MILLIS_BELOW {
        v
    } else if a < MICROS_BELOW {
        v.div_euclid(1000)
    } else {
        v.div_euclid(1_000_000)
    }
}

/// The cadence of a candle timeframe in milliseconds: `<n><unit>` with `n` at least 1 and the
/// unit `s`, `m`, `h`, `d` or `w` (`1m`, `4h`, `1d`); `Ok(None)` for months (`1mo`, `1M`), which
/// have no fixed length. Anything else, a cadence of 0 or one longer than every storable span
/// included, is an error saying why.
///
/// ```
/// use pqdm::timestamp::timeframe_cadence;
/// assert_eq!(timeframe_cadence("15m"), Ok(Some(900_000)));
/// assert_eq!(timeframe_cadence("1mo"), Ok(None));
/// assert!(timeframe_cadence("0m").is_err());
/// ```
pub fn timeframe_cadence(timeframe: &str) -> std::result::Result<Option<i64>, String> {
    const EXPECTED: &str =
        "expected a count of at least 1 and a unit of s, m, h, d, w or mo (1m, 4h, 1d, 1mo)";
    let split = timeframe
        .find(|c: char| !c.is_ascii_digit())
        .filter(|i| *i > 0)
        .ok_or_else(|| EXPECTED.to_string())?;
    let (n, unit) = timeframe.split_at(split);
    let n: i64 = n
        .parse()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| EXPECTED.to_string())?;
    let unit_ms: i64 = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        "mo" | "M" => return Ok(None),
        _ => return Err(EXPECTED.to_string()),
    };
    n.checked_mul(unit_ms)
        .filter(|ms| *ms <= MAX_MS)
        .map(Some)
        .ok_or_else(|| {
            "a cadence longer than the whole storable time range (1970 .. 2262)".to_string()
        })
}

/// Formats milliseconds since the epoch as ISO-8601 UTC (`2024-01-05T00:00:00.000Z`).
pub fn format_millis(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalize(values: Vec<Option<i64>>) -> Vec<Option<i64>> {
        let df = df!("t" => values).unwrap();
        df.lazy()
            .select([normalize_expr(col("t"), &DataType::Int64)])
            .collect()
            .unwrap()
            .column("t")
            .unwrap()
            .i64()
            .unwrap()
            .iter()
            .collect()
    }

    #[test]
    fn extreme_integers_stay_out_of_range() {
        let out = normalize(vec![
            Some(i64::MIN),
            Some(i64::MIN + 1),
            Some(-1),
            Some(i64::MAX),
        ]);
        assert_eq!(
            out,
            vec![
                Some(-9_223_372_036_855),
                Some(-9_223_372_036_855),
                Some(-1000),
                Some(MAX_MS)
            ]
        );
        for v in out[..3].iter().flatten() {
            assert!(!(MIN_MS..=MAX_MS).contains(v), "{v} would be stored");
        }
        assert_eq!(normalize_value(i64::MIN), -9_223_372_036_855);
        assert_eq!(normalize_value(i64::MAX), 9_223_372_036_854);
    }

    #[test]
    fn timeframes_are_checked() {
        assert_eq!(timeframe_cadence("1m"), Ok(Some(60_000)));
        assert_eq!(timeframe_cadence("1w"), Ok(Some(604_800_000)));
        assert_eq!(timeframe_cadence("1M"), Ok(None));
        for bad in [
            "0m",
            "m",
            "",
            "1",
            "1x",
            "-1m",
            "00h",
            "99999999999999999999m",
            "9999999999999d",
        ] {
            assert!(timeframe_cadence(bad).is_err(), "{bad:?} accepted");
        }
    }
}
