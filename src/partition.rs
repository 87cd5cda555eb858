//! Partition columns: the ones derived from the timestamp, and hive path segments (`k=v`).
//!
//! Values are written as plain text (`month=1/day=5`, as pyarrow, Polars and DuckDB write them)
//! and percent-escaped, so any symbol (`BTC/USDT`, `a=b`, `..`) stays one path segment.

use polars::prelude::*;

use crate::schema::ColType;

/// The value Hive-style writers use for a null partition value.
pub const NULL_VALUE: &str = "__HIVE_DEFAULT_PARTITION__";

/// Partition columns pqdm derives from the timestamp column when they are asked for and absent.
pub const DERIVED: &[&str] = &["year", "month", "day", "date", "hour"];

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
pub fn derive_expr(name: &str, ts: &str) -> Option<Expr> {
    let t = col(ts).cast(DataType::Datetime(TimeUnit::Milliseconds, None));
    let e = match name {
        "year" => t.dt().year(),
        "month" => t.dt().month(),
        "day" => t.dt().day(),
        "hour" => t.dt().hour(),
        "date" => t.dt().date(),
        _ => return None,
    };
    Some(e.cast(derived_type(name)?.dtype()).alias(name))
}

fn keep(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'+' | b',' | b'@')
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
}
