//! Partition columns: the ones derived from the timestamp, and hive path segments (`k=v`).
//!
//! Values are written as plain text (`month=1/day=5`, as pyarrow, Polars and DuckDB write them)
//! and percent-escaped, so any symbol (`BTC/USDT`, `a=b`, `..`) stays one path segment.

use polars::prelude::*;
use polars_arrow::array::PrimitiveArray;
use polars_arrow::bitmap::Bitmap;

use crate::dtype::ColType;

/// The value Hive-style writers use for a null partition value.
pub const NULL_VALUE: &str = "__HIVE_DEFAULT_PARTITION__";

/// Partition columns pqdm derives from the timestamp column when they are asked for and absent.
pub const DERIVED: &[&str] = &["year", "month", "day", "date", "hour"];

pub use crate::layout::MAX_SEGMENT_BYTES;

/// Whether `name` is a partition column derived from the timestamp.
pub fn is_derived(name: &str) -> bool {
    DERIVED.contains(&name)
}

/// The dtype of a derived partition column (`year` i16, `month`/`day`/`hour` i8, `date` date).
pub fn derived_type(name: &str) -> Option<ColType> {
    Some(match name {
        "year" => ColType::I16,
        "month" | "day" | "hour" => ColType::I8,
        "date" => ColType::Date,
        _ => return None,
    })
}

/// The expression deriving partition column `name` from the millisecond timestamp column `ts`.
///
/// Integer arithmetic on the calendar ([`civil_from_days`]) in one pass over the values, where
/// Polars' `dt().year()`, `month()` and `day()` each built a chrono date-time per row (11% of a
/// 5M-row write's CPU). The values are the same: the unit test compares them with chrono.
pub fn derive_expr(name: &str, ts: &str) -> Option<Expr> {
    let dtype = derived_type(name)?.dtype();
    let part = match name {
        "year" => Part::Year,
        "month" => Part::Month,
        "day" => Part::Day,
        "hour" => Part::Hour,
        _ => Part::Date,
    };
    let out = dtype.clone();
    let derive = move |c: Column| -> PolarsResult<Column> {
        let ms = c
            .cast(&DataType::Datetime(TimeUnit::Milliseconds, None))?
            .cast(&DataType::Int64)?;
        let ms = ms.i64()?;
        let values =
            Int64Chunked::from_chunk_iter_like(ms, ms.downcast_iter().map(|a| part.of_array(a)));
        let values = values.into_column();
        if out == DataType::Date {
            values.cast(&DataType::Int32)?.cast(&DataType::Date)
        } else {
            values.cast(&out)
        }
    };
    Some(
        col(ts)
            .map(derive, move |_, f| {
                Ok(Field::new(f.name().clone(), dtype.clone()))
            })
            .alias(name),
    )
}

/// A part of the calendar a partition column is derived from.
#[derive(Clone, Copy)]
enum Part {
    Year,
    Month,
    Day,
    Hour,
    Date,
}

impl Part {
    /// This part of every millisecond timestamp of `ms`, nulls kept; null too where the year
    /// does not fit the `i16` year column (chrono, which Polars' `dt()` used, has no date
    /// there either). Consecutive timestamps of one day, market data's usual order, convert
    /// the day once.
    fn of_array(self, ms: &PrimitiveArray<i64>) -> PrimitiveArray<i64> {
        let mut cached = (i64::MIN, (0, 0, 0));
        let mut all_fit = true;
        let values: Vec<i64> = ms
            .values()
            .iter()
            .map(|&t| {
                let days = day_of(t);
                if days != cached.0 {
                    cached = (days, civil_from_days(days));
                    all_fit &= i16::try_from(cached.1.0).is_ok();
                }
                let (year, month, day) = cached.1;
                match self {
                    Part::Year => year,
                    Part::Month => month,
                    Part::Day => day,
                    Part::Hour => t.rem_euclid(DAY_MS) / 3_600_000,
                    Part::Date => days,
                }
            })
            .collect();
        let validity = if all_fit {
            ms.validity().cloned()
        } else {
            let fits = ms
                .values()
                .iter()
                .map(|&t| i16::try_from(civil_from_days(day_of(t)).0).is_ok());
            let fits: Bitmap = fits.collect();
            Some(match ms.validity() {
                Some(valid) => valid & &fits,
                None => fits,
            })
        };
        PrimitiveArray::new(ArrowDataType::Int64, values.into(), validity)
    }
}

const DAY_MS: i64 = 86_400_000;

/// The day since 1970-01-01 of millisecond timestamp `t` (floored: before 1970 too).
fn day_of(t: i64) -> i64 {
    t.div_euclid(DAY_MS)
}

/// Year, month (1-12) and day (1-31) of day `days` since 1970-01-01 in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`); exact for every `i64` day a millisecond
/// timestamp can name.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn keep(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'+' | b',' | b'@')
}

/// Why `name` cannot name a partition column, if it cannot: a folder is `name=value`, and a name
/// that needs escaping (a space, `=`, `/`, `%`, ...) reads back as another name in some readers,
/// one starting with `_` or `.` hides its folders from pyarrow and from pqdm's own listing.
pub fn column_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("is empty")
    } else if name.starts_with(['_', '.']) {
        Some("starts with `_` or `.`, which readers take for a hidden folder")
    } else if escape(name) != name {
        Some("needs escaping in a folder name (use letters, digits and `-_.~+,@`)")
    } else {
        None
    }
}

/// Percent-escapes a partition value so it is one safe path segment (`BTC/USDT` → `BTC%2FUSDT`).
/// A value of `.` or `..` is escaped whole, so no segment can climb out of the dataset.
pub fn escape(value: &str) -> String {
    if value == "." || value == ".." {
        return value.bytes().map(|b| format!("%{b:02X}")).collect();
    }
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if keep(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Reverses [`escape`] (and any other percent-encoding); invalid sequences are kept as they are.
pub fn unescape(text: &str) -> String {
    String::from_utf8_lossy(&unescape_bytes(text)).into_owned()
}

/// The bytes a percent-encoded text stands for; invalid sequences are kept as they are.
pub fn unescape_bytes(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            let v = hi * 16 + lo;
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// The text of one partition value as it appears in a path (before escaping); `None` for null.
pub fn value_text(value: &AnyValue) -> Option<String> {
    match value {
        AnyValue::Null => None,
        AnyValue::String(s) => Some(s.to_string()),
        AnyValue::StringOwned(s) => Some(s.to_string()),
        AnyValue::Date(days) => chrono::DateTime::from_timestamp(*days as i64 * 86_400, 0)
            .map(|d| d.format("%Y-%m-%d").to_string()),
        other => Some(other.to_string()),
    }
}

/// Whether a partition value reads back as null from its folder name in every hive reader
/// (pyarrow, Polars, DuckDB, Spark): empty, or Hive's null marker. Writes refuse such values, so
/// that a null, an empty value and the marker never share one folder.
pub fn reads_as_null(value: &str) -> bool {
    value.is_empty() || value == NULL_VALUE
}

/// The path segment `name=value` for one partition value.
pub fn segment(name: &str, value: Option<&str>) -> String {
    match value {
        Some(v) if !v.is_empty() => format!("{}={}", escape(name), escape(v)),
        _ => format!("{}={NULL_VALUE}", escape(name)),
    }
}

/// The partition values in a relative path (`exchange=X/symbol=Y/f.parquet`), unescaped;
/// `None` stands for the null partition.
pub fn parse_path(rel: &str) -> Vec<(String, Option<String>)> {
    let mut parts: Vec<&str> = rel.split('/').collect();
    parts.pop();
    parts
        .into_iter()
        .filter_map(|seg| seg.split_once('='))
        .map(|(k, v)| {
            let value = if v == NULL_VALUE || v.is_empty() {
                None
            } else {
                Some(unescape(v))
            };
            (unescape(k), value)
        })
        .collect()
}

/// The partition folder of a relative file path (everything before the file name).
pub fn dir_of(rel: &str) -> &str {
    rel.rsplit_once('/').map(|(d, _)| d).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_column_names_must_be_folder_safe() {
        for ok in ["symbol", "year", "my_col", "a-b.c", "x1"] {
            assert_eq!(column_name_problem(ok), None, "{ok}");
        }
        for bad in ["", "my col", "a=b", "a/b", "a%b", "_hidden", ".dot", "é"] {
            assert!(column_name_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn only_empty_and_the_marker_read_as_null() {
        assert!(reads_as_null(""));
        assert!(reads_as_null(NULL_VALUE));
        assert!(!reads_as_null(" "));
        assert!(!reads_as_null("__hive_default_partition__"));
        assert_eq!(segment("symbol", None), "symbol=__HIVE_DEFAULT_PARTITION__");
    }

    #[test]
    fn escaped_values_round_trip() {
        for v in [
            "BTC/USDT", "a%b", "x~y", "[1]", "a=b", "..", ".", "ü €", "*?",
        ] {
            let seg = segment("symbol", Some(v));
            assert_eq!(
                parse_path(&format!("{seg}/f.parquet")),
                vec![("symbol".into(), Some(v.into()))]
            );
        }
    }

    #[test]
    fn escaping_is_exact_and_keeps_every_segment_in_its_folder() {
        for (value, want) in [
            ("", ""),
            ("BTCUSDT", "BTCUSDT"),
            ("BTC/USDT", "BTC%2FUSDT"),
            ("100%", "100%25"),
            (".", "%2E"),
            ("..", "%2E%2E"),
            ("...", "..."),
            ("a..b", "a..b"),
            ("[1]", "%5B1%5D"),
            ("a=b", "a%3Db"),
            ("a b", "a%20b"),
            ("\\", "%5C"),
            ("ü", "%C3%BC"),
            ("-_.~+,@", "-_.~+,@"),
            ("\n\0", "%0A%00"),
        ] {
            assert_eq!(escape(value), want, "{value:?}");
            assert_eq!(unescape(want), value, "{want:?}");
        }
        let long = "é".repeat(150);
        assert_eq!(escape(&long), "%C3%A9".repeat(150));
        assert_eq!(unescape(&escape(&long)), long);
        // Invalid or cut sequences are kept as written.
        for text in ["%", "%2", "%zz", "a%", "%%41"] {
            let want = if text == "%%41" { "%A" } else { text };
            assert_eq!(unescape(text), want, "{text:?}");
        }
        assert_eq!(unescape_bytes("%FF%00"), [0xFF, 0x00]);
        assert_eq!(segment("a/b", Some("x")), "a%2Fb=x");
        assert_eq!(
            segment("symbol", Some("")),
            "symbol=__HIVE_DEFAULT_PARTITION__"
        );
        assert_eq!(
            parse_path(
                "exchange=BINANCE/symbol=__HIVE_DEFAULT_PARTITION__/day=/x=%2E%2E/f.parquet"
            ),
            vec![
                ("exchange".to_string(), Some("BINANCE".to_string())),
                ("symbol".into(), None),
                ("day".into(), None),
                ("x".into(), Some("..".into())),
            ]
        );
        assert_eq!(parse_path("f.parquet"), vec![]);
        assert_eq!(parse_path("no_equals/f.parquet"), vec![]);
        assert_eq!(dir_of("a=1/b=2/f.parquet"), "a=1/b=2");
        assert_eq!(dir_of("f.parquet"), "");
    }

    #[test]
    fn derived_columns_are_typed() {
        assert_eq!(
            DERIVED.iter().map(|n| derived_type(n)).collect::<Vec<_>>(),
            [
                Some(ColType::I16),
                Some(ColType::I8),
                Some(ColType::I8),
                Some(ColType::Date),
                Some(ColType::I8)
            ]
        );
        assert_eq!(derived_type("symbol"), None);
        assert!(derive_expr("symbol", "timestamp").is_none());
        let df = df!("t" => [1_704_412_800_000i64 + 3_600_000 * 23, 0])
            .unwrap()
            .lazy()
            .select(["year", "month", "day", "hour", "date"].map(|n| derive_expr(n, "t").unwrap()))
            .collect()
            .unwrap();
        let row = |i: usize| -> Vec<String> {
            df.columns()
                .iter()
                .map(|c| c.get(i).unwrap().to_string())
                .collect()
        };
        assert_eq!(row(0), ["2024", "1", "5", "23", "2024-01-05"]);
        assert_eq!(row(1), ["1970", "1", "1", "0", "1970-01-01"]);
    }

    #[test]
    fn derived_columns_equal_chronos_calendar() {
        use chrono::{DateTime, Datelike, Timelike};
        let mut ts: Vec<i64> = vec![
            0,
            -1,
            1,
            DAY_MS - 1,
            -DAY_MS,
            -DAY_MS - 1,
            951_782_400_000,     // 2000-02-29
            951_868_800_000 - 1, // the last ms of 2000-02-29
            4_107_542_400_000,   // 2100-03-01
            -2_203_891_200_000,  // 1900-02-28
            -62_135_596_800_000, // 0001-01-01
            -62_135_596_800_001,
            253_402_300_799_999, // 9999-12-31 23:59:59.999
            8_210_266_876_799_999,
            -8_334_601_228_800_000,
        ];
        // Every day boundary of four centuries around 2000, and their last milliseconds.
        let start = -146_097 * 2 - 719_468 + 730_485;
        for day in start..start + 146_097 * 4 {
            ts.push(day * DAY_MS + 3_600_000 * (day.rem_euclid(24)));
            ts.push(day * DAY_MS - 1);
        }
        let df = df!("t" => ts.clone())
            .unwrap()
            .lazy()
            .select(["year", "month", "day", "hour", "date"].map(|n| derive_expr(n, "t").unwrap()))
            .collect()
            .unwrap();
        let col_i64 = |n: &str| -> Vec<Option<i64>> {
            let c = df.column(n).unwrap().cast(&DataType::Int64).unwrap();
            c.i64().unwrap().iter().collect()
        };
        let (years, months, days, hours, dates) = (
            col_i64("year"),
            col_i64("month"),
            col_i64("day"),
            col_i64("hour"),
            col_i64("date"),
        );
        for (i, &t) in ts.iter().enumerate() {
            let dt = DateTime::from_timestamp_millis(t).unwrap().naive_utc();
            let year = i64::from(dt.year());
            // A year the i16 column cannot hold makes every part null (the write refuses it).
            let fits = i16::try_from(year).is_ok();
            let want = |v: i64| fits.then_some(v);
            assert_eq!(years[i], want(year), "year of {t}");
            assert_eq!(months[i], want(i64::from(dt.month())), "month of {t}");
            assert_eq!(days[i], want(i64::from(dt.day())), "day of {t}");
            assert_eq!(hours[i], want(i64::from(dt.hour())), "hour of {t}");
            let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
            let epoch_days = dt.date().signed_duration_since(epoch).num_days();
            assert_eq!(dates[i], want(epoch_days), "date of {t}");
            assert_eq!(
                civil_from_days(day_of(t)),
                (year, i64::from(dt.month()), i64::from(dt.day()))
            );
        }
        // Nulls stay null; timestamps past chrono's range are no error.
        let df = df!("t" => [None, Some(i64::MIN), Some(i64::MAX)])
            .unwrap()
            .lazy()
            .select(["year", "month", "date"].map(|n| derive_expr(n, "t").unwrap()))
            .collect()
            .unwrap();
        for name in ["year", "month", "date"] {
            assert_eq!(df.column(name).unwrap().null_count(), 3, "{name}");
        }
    }
}
