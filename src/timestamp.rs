//! Timestamp normalisation: every stored timestamp is Int64 milliseconds since the epoch, UTC.
//!
//! Numbers (integers, floats, numeric text) have their unit read from their magnitude, unless the
//! input declares it ([`Unit`], `--timestamp-unit`). Each unit owns one band of magnitudes, the
//! values from 1990-01-01 ([`PLAUSIBLE_FROM_MS`]) to 2262-04-11 ([`MAX_MS`]) in that unit, and the
//! bands do not overlap, so the unit of a value is never a guess: seconds, milliseconds,
//! microseconds and nanoseconds may mix in one column (Binance spot files switched from ms to µs on
//! 2025-01-01), eight-digit `YYYYMMDD` integers (`20240105`) are dates, and a number in no band
//! (before 1990 in every unit, negative, or between two bands) is not a timestamp: the cast
//! refuses it. Datetime and Date columns and ISO-8601 strings are converted as they are.
//! All of it is Polars expressions; integers of undeclared unit are read in one loop over the
//! values ([`from_integer`]).

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use polars::prelude::*;

use crate::error::{Error, Result};

/// The earliest timestamp pqdm stores: 1970-01-01T00:00:00Z.
pub const MIN_MS: i64 = 0;
/// The latest timestamp pqdm stores: the last nanosecond timestamp (2262-04-11T23:47:16.854Z),
/// so that every reader, pandas and pyarrow's ns types included, can hold every value.
pub const MAX_MS: i64 = i64::MAX / 1_000_000;
/// The earliest timestamp a number of undeclared unit may stand for: 1990-01-01T00:00:00Z.
/// Earlier values of market data are far more likely a wrong unit than a true time.
pub const PLAUSIBLE_FROM_MS: i64 = 631_152_000_000;

/// What a numeric timestamp column is refused for, in cast errors.
pub const EXPECTED: &str = "timestamp (epoch s, ms, µs or ns from 1990-01-01 to 2262-04-11, \
YYYYMMDD, or ISO-8601; a declared timestamp unit allows 1970-1989)";

/// The unit of numeric timestamps, when the input declares it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Seconds since the epoch.
    Seconds,
    /// Milliseconds since the epoch.
    Millis,
    /// Microseconds since the epoch.
    Micros,
    /// Nanoseconds since the epoch.
    Nanos,
}

impl Unit {
    /// Parses `s`, `ms`, `us` (or `µs`), `ns`.
    pub fn parse(text: &str) -> Result<Unit> {
        Ok(match text.trim() {
            "s" => Unit::Seconds,
            "ms" => Unit::Millis,
            "us" | "µs" => Unit::Micros,
            "ns" => Unit::Nanos,
            other => {
                return Err(Error::Options(format!(
                    "unknown timestamp unit `{other}` (expected s, ms, us or ns)"
                )));
            }
        })
    }

    const ALL: [Unit; 4] = [Unit::Seconds, Unit::Millis, Unit::Micros, Unit::Nanos];

    /// Units per millisecond (seconds: 1/1000 as a divisor, see [`Unit::to_ms_int`]).
    fn per_ms(self) -> i64 {
        match self {
            Unit::Seconds | Unit::Millis => 1,
            Unit::Micros => 1_000,
            Unit::Nanos => 1_000_000,
        }
    }

    /// The band of values that stand for [`PLAUSIBLE_FROM_MS`] ..= [`MAX_MS`] in this unit.
    fn band(self) -> (i64, i64) {
        match self {
            Unit::Seconds => (PLAUSIBLE_FROM_MS / 1000, MAX_MS / 1000),
            u => (
                PLAUSIBLE_FROM_MS * u.per_ms(),
                MAX_MS.saturating_mul(u.per_ms()),
            ),
        }
    }

    /// An Int64 expression in this unit as milliseconds (null where that overflows).
    fn to_ms_int(self, v: Expr) -> Expr {
        match self {
            Unit::Seconds => when(
                v.clone()
                    .gt_eq(lit(i64::MIN / 1000))
                    .and(v.clone().lt_eq(lit(i64::MAX / 1000))),
            )
            .then(v * lit(1000i64))
            .otherwise(lit(NULL).cast(DataType::Int64)),
            Unit::Millis => v,
            u => v.floor_div(lit(u.per_ms())),
        }
    }

    /// A Float64 expression in this unit as milliseconds (whole ms: seconds and ms round to
    /// the nearest, µs and ns floor, as the integer path does).
    fn to_ms_float(self, v: Expr) -> Expr {
        match self {
            Unit::Seconds => (v * lit(1000.0)).round(0, RoundMode::HalfToEven),
            Unit::Millis => v.round(0, RoundMode::HalfToEven),
            u => (v / lit(u.per_ms() as f64)).floor(),
        }
    }
}

/// Eight-digit integers that read as dates from 1990-01-01 (`19900101`) to 2262-04-11.
const YYYYMMDD_BAND: (i64, i64) = (19_900_101, 22_620_411);

/// Whether Float64 expression `v` lies in `band` (inclusive).
fn in_band(v: Expr, (lo, hi): (i64, i64)) -> Expr {
    v.clone().gt_eq(lit(lo as f64)).and(v.lt_eq(lit(hi as f64)))
}

/// An Int64 `YYYYMMDD` expression as milliseconds (null where it is not a date), by
/// [`yyyymmdd_ms`], the integers' own reading.
fn from_yyyymmdd(v: Expr) -> Expr {
    v.map(
        |c| {
            let ms: Int64Chunked = c.i64()?.apply(|v| v.and_then(yyyymmdd_ms));
            Ok(ms.into_column())
        },
        |_, f| Ok(Field::new(f.name().clone(), DataType::Int64)),
    )
}

/// The first case whose condition holds, else null (a `when`/`then` chain).
fn first_match(cases: Vec<(Expr, Expr)>) -> Expr {
    cases
        .into_iter()
        .rev()
        .fold(lit(NULL).cast(DataType::Int64), |acc, (cond, value)| {
            when(cond).then(value).otherwise(acc)
        })
}

/// Normalises an integer expression to milliseconds: in the declared unit, else by band.
///
/// The bands are read in one pass over the values ([`int_to_ms`]): as a `when`/`then` chain,
/// Polars computed every branch for every row, the `YYYYMMDD` one by formatting each number as
/// text and parsing it as a date (8% of a 5M-row write's CPU, for inputs that hold no date).
fn from_integer(e: Expr, unit: Option<Unit>) -> Expr {
    let v = e.cast(DataType::Int64);
    if let Some(u) = unit {
        return u.to_ms_int(v);
    }
    v.map(
        |c| {
            let ca = c.i64()?;
            let ms: Int64Chunked = ca.apply(|v| v.and_then(int_to_ms));
            Ok(ms.into_column())
        },
        |_, f| Ok(Field::new(f.name().clone(), DataType::Int64)),
    )
}

/// Milliseconds of an integer of undeclared unit: a `YYYYMMDD` date, else the unit whose band
/// holds it; `None` in no band, or for an eight-digit number that is no date.
fn int_to_ms(v: i64) -> Option<i64> {
    let (lo, hi) = YYYYMMDD_BAND;
    if (lo..=hi).contains(&v) {
        return yyyymmdd_ms(v);
    }
    let unit = Unit::ALL.into_iter().find(|u| {
        let (lo, hi) = u.band();
        (lo..=hi).contains(&v)
    })?;
    Some(match unit {
        Unit::Seconds => v * 1000,
        Unit::Millis => v,
        u => v.div_euclid(u.per_ms()),
    })
}

/// Midnight UTC of the date an eight-digit `YYYYMMDD` number names, in ms; `None` if no date.
fn yyyymmdd_ms(v: i64) -> Option<i64> {
    let date = NaiveDate::from_ymd_opt(
        i32::try_from(v / 10_000).ok()?,
        u32::try_from(v / 100 % 100).ok()?,
        u32::try_from(v % 100).ok()?,
    )?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
}

/// Normalises a float expression (fractions allowed) to milliseconds, like [`from_integer`].
fn from_float(e: Expr, unit: Option<Unit>) -> Expr {
    let v = e.cast(DataType::Float64);
    // Past what Int64 holds the cast would give null anyway; say so explicitly.
    let fits = |ms: Expr| {
        when(ms.clone().abs().lt(lit(9.2e18)))
            .then(ms.cast(DataType::Int64))
            .otherwise(lit(NULL).cast(DataType::Int64))
    };
    if let Some(u) = unit {
        return fits(u.to_ms_float(v));
    }
    let whole = v.clone().eq(v.clone().floor());
    let mut cases = vec![(
        in_band(v.clone(), YYYYMMDD_BAND).and(whole),
        from_yyyymmdd(v.clone().cast(DataType::Int64)),
    )];
    for u in Unit::ALL {
        cases.push((in_band(v.clone(), u.band()), fits(u.to_ms_float(v.clone()))));
    }
    first_match(cases)
}

/// Whether a millisecond expression lies in [`MIN_MS`, `MAX_MS`].
pub fn in_range(ms: Expr) -> Expr {
    ms.clone().gt_eq(lit(MIN_MS)).and(ms.lt_eq(lit(MAX_MS)))
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
/// `...+02:00`, `...+0200`, `...+02`) and numeric strings (as numbers) to milliseconds; anything
/// else becomes null.
fn from_string(e: Expr, unit: Option<Unit>) -> Expr {
    let s = e.str().strip_chars(lit(" "));
    // Unify the separators and the `Z` suffix so that a few formats cover ISO-8601.
    let iso = s
        .clone()
        .str()
        .replace(lit(" "), lit("T"), true)
        .str()
        .replace(lit(r"[zZ]$"), lit("+00:00"), false)
        .str()
        // An hours-only offset after a time (`10:00:00+02`) gets its minutes.
        .replace(
            lit(r"(T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?[+-]\d{2})$"),
            lit("${1}:00"),
            false,
        );
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
    let integer = from_integer(s.clone().cast(DataType::Int64), unit);
    let float = from_float(s.cast(DataType::Float64), unit);
    coalesce(&[
        integer,
        float,
        with_offset,
        naive("%Y-%m-%dT%H:%M:%S%.f"),
        naive("%Y-%m-%dT%H:%M"),
        date_only,
    ])
}

/// The expression that turns `e` (of dtype `src`) into Int64 milliseconds since the epoch;
/// numbers are in `unit` where it is declared, else in the unit their band says.
/// Values that cannot be read as a timestamp become null.
pub fn normalize_expr(e: Expr, src: &DataType, unit: Option<Unit>) -> Expr {
    match src {
        DataType::Datetime(_, _) => e.dt().timestamp(TimeUnit::Milliseconds),
        DataType::Date => e
            .cast(DataType::Datetime(TimeUnit::Milliseconds, None))
            .dt()
            .timestamp(TimeUnit::Milliseconds),
        DataType::String => from_string(e, unit),
        DataType::Float32 | DataType::Float64 => from_float(e, unit),
        DataType::Null => e.cast(DataType::Int64),
        _ => from_integer(e, unit),
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

/// Below this magnitude a number a user types is in seconds ([`normalize_value`]).
const SECONDS_BELOW: f64 = 1e11;
/// Below this magnitude a number a user types is in milliseconds.
const MILLIS_BELOW: f64 = 1e14;
/// Below this magnitude a number a user types is in microseconds (above, nanoseconds).
const MICROS_BELOW: f64 = 1e17;

/// Normalises one integer timestamp a user typed (a filter value) to milliseconds, by
/// magnitude alone: a filter may name any time, so no value is refused as implausible.
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

    #[test]
    fn typed_filter_values_become_utc_milliseconds() {
        let jan5 = 1_704_412_800_000;
        for text in [
            "2024-01-05",
            "2024-01-05T00:00:00Z",
            "2024-01-05 00:00",
            "2024-01-05T00:00:00.000",
            "2024-01-05T01:00:00+01:00",
            " 1704412800 ",
            "1704412800000",
            "1704412800000000",
            "1704412800000000000",
        ] {
            assert_eq!(parse_timestamp(text), Some(jan5), "{text}");
        }
        assert_eq!(parse_timestamp("2024-13-05"), None);
        assert_eq!(parse_timestamp("yesterday"), None);
        // By magnitude alone, negatives included (floored, so -1 us is -1 ms).
        assert_eq!(normalize_value(-1), -1000);
        assert_eq!(normalize_value(-1_000_000_000_000_001), -1_000_000_000_001);
        assert_eq!(normalize_value(i64::MIN), i64::MIN.div_euclid(1_000_000));
        assert_eq!(format_millis(jan5 + 1), "2024-01-05T00:00:00.001Z");
        assert_eq!(format_millis(i64::MAX), i64::MAX.to_string());
        assert_eq!(Unit::parse(" µs ").unwrap(), Unit::Micros);
        let err = Unit::parse("sec").unwrap_err().to_string();
        assert!(err.contains("unknown timestamp unit `sec`"), "{err}");
    }

    fn normalize(values: Vec<Option<i64>>) -> Vec<Option<i64>> {
        let df = df!("t" => values).unwrap();
        df.lazy()
            .select([normalize_expr(col("t"), &DataType::Int64, None)])
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
        // No unit's band holds them: null here, refused (or nulled with --lenient) by the cast.
        let out = normalize(vec![
            Some(i64::MIN),
            Some(i64::MIN + 1),
            Some(-1),
            Some(i64::MAX),
        ]);
        assert_eq!(out, vec![None, None, None, None]);
    }

    #[test]
    fn integers_of_undeclared_unit_are_read_by_band() {
        let jan5 = 1_704_412_800_000;
        let leap = NaiveDate::from_ymd_opt(2262, 4, 11).unwrap();
        let last_date = leap
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp_millis();
        let cases = [
            (20_240_105, Some(jan5)),
            (20_240_229, Some(jan5 + 55 * 86_400_000)),
            (20_230_229, None),
            (20_241_301, None),
            (20_240_100, None),
            (19_900_101, Some(PLAUSIBLE_FROM_MS)),
            (19_900_100, None),
            (22_620_411, Some(last_date)),
            (22_620_412, None),
            (631_151_999, None),
            (631_152_000, Some(PLAUSIBLE_FROM_MS)),
            (MAX_MS / 1000, Some(MAX_MS / 1000 * 1000)),
            (MAX_MS / 1000 + 1, None),
            (PLAUSIBLE_FROM_MS - 1, None),
            (PLAUSIBLE_FROM_MS, Some(PLAUSIBLE_FROM_MS)),
            (jan5, Some(jan5)),
            (MAX_MS, Some(MAX_MS)),
            (MAX_MS + 1, None),
            (jan5 * 1000 + 999, Some(jan5)),
            (jan5 * 1_000_000 + 999_999, Some(jan5)),
            (MAX_MS * 1_000_000, Some(MAX_MS)),
            (MAX_MS * 1_000_000 + 1, None),
            (0, None),
            (-1, None),
        ];
        let (values, want): (Vec<Option<i64>>, Vec<Option<i64>>) = cases
            .iter()
            .map(|&(v, w)| (Some(v), w))
            .chain([(None, None)])
            .unzip();
        assert_eq!(normalize(values), want);
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

    #[test]
    fn typed_numbers_are_read_by_magnitude() {
        for (v, want) in [
            (0, 0),
            (1, 1_000),
            (-1, -1_000),
            (99_999_999_999, 99_999_999_999_000),
            (100_000_000_000, 100_000_000_000),
            (1_704_412_800_000, 1_704_412_800_000),
            (1_704_412_800_000_000, 1_704_412_800_000),
            (-1_704_412_800_000_001, -1_704_412_800_001),
            (1_704_412_800_000_000_000, 1_704_412_800_000),
            (i64::MAX, 9_223_372_036_854),
            (i64::MIN, -9_223_372_036_855),
        ] {
            assert_eq!(normalize_value(v), want, "{v}");
        }
    }

    #[test]
    fn typed_times_are_read_as_utc_milliseconds() {
        let jan5 = Some(1_704_412_800_000);
        for text in [
            "2024-01-05",
            " 2024-01-05 ",
            "2024-01-05T00:00",
            "2024-01-05 00:00",
            "2024-01-05T00:00:00",
            "2024-01-05T00:00:00Z",
            "2024-01-05T00:00:00.000Z",
            "2024-01-05T02:00:00+02:00",
            "2024-01-04T19:00:00-05:00",
            "1704412800",
            "1704412800000",
        ] {
            assert_eq!(parse_timestamp(text), jan5, "{text:?}");
        }
        assert_eq!(
            parse_timestamp("2024-01-05T10:00:00.5"),
            Some(1_704_448_800_500)
        );
        assert_eq!(parse_timestamp("1970-01-01"), Some(0));
        assert_eq!(parse_timestamp("1969-12-31"), Some(-86_400_000));
        for bad in [
            "",
            "yesterday",
            "2024-13-01",
            "2024-01-05T25:00",
            "05/01/2024",
            "1e12",
            "[2024-01-05]",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad:?}");
        }
        assert_eq!(format_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_millis(1_704_448_800_123), "2024-01-05T10:00:00.123Z");
        assert_eq!(format_millis(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(format_millis(i64::MAX), i64::MAX.to_string());
        assert_eq!(format_millis(i64::MIN), i64::MIN.to_string());
    }

    #[test]
    fn cadences_are_exact_up_to_the_storable_range() {
        for (tf, want) in [
            ("1s", Some(1_000)),
            ("15m", Some(900_000)),
            ("4h", Some(14_400_000)),
            ("1d", Some(86_400_000)),
            ("3d", Some(259_200_000)),
            ("1mo", None),
            ("12mo", None),
        ] {
            assert_eq!(timeframe_cadence(tf), Ok(want), "{tf}");
        }
        // The longest storable cadence is accepted, one more day is not.
        let days = MAX_MS / 86_400_000;
        assert_eq!(
            timeframe_cadence(&format!("{days}d")),
            Ok(Some(days * 86_400_000))
        );
        assert_eq!(
            timeframe_cadence(&format!("{}d", days + 1)),
            Err("a cadence longer than the whole storable time range (1970 .. 2262)".into())
        );
        for bad in [
            "1mon",
            "1 m",
            " 1m",
            "1m ",
            "1ms",
            "1Mo",
            "１m",
            "9223372036854775807s",
        ] {
            assert!(timeframe_cadence(bad).is_err(), "{bad:?} accepted");
        }
    }
}
