//! Write options shared by the library and the CLI: compression, file and row-group sizes,
//! write modes.

use std::fmt;
use std::str::FromStr;

use polars::prelude::ParquetCompression;
use polars_parquet::write::{BrotliLevel, GzipLevel, ZstdLevel};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Default rows per data file.
pub const DEFAULT_MAX_ROWS_PER_FILE: usize = 5_000_000;
/// Default minimum rows per row group.
pub const DEFAULT_MIN_ROWS_PER_GROUP: usize = 50_000;
/// Row group size when none is given (Polars' streaming sink default).
pub const DEFAULT_ROW_GROUP_SIZE: usize = 122_880;

/// A Parquet compression codec with its level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Compression {
    /// Snappy (the default).
    #[default]
    Snappy,
    /// Zstandard, with an optional level (1-22).
    Zstd(Option<i32>),
    /// LZ4 (raw).
    Lz4,
    /// Gzip, with an optional level (0-9).
    Gzip(Option<u8>),
    /// Brotli, with an optional level (0-11).
    Brotli(Option<u32>),
    /// No compression.
    None,
}

impl FromStr for Compression {
    type Err = Error;

    /// Parses `snappy`, `zstd`, `zstd:LEVEL`, `lz4`, `gzip[:LEVEL]`, `brotli[:LEVEL]`, `none`.
    fn from_str(text: &str) -> Result<Compression> {
        let lower = text.trim().to_ascii_lowercase();
        let (name, level) = match lower.split_once(':') {
            Some((n, l)) => (n, Some(l)),
            None => (lower.as_str(), None),
        };
        let bad_level = |range: &str| {
            Error::Options(format!(
                "compression `{text}`: level must be a number in {range}"
            ))
        };
        let c = match name {
            "snappy" => Compression::Snappy,
            "zstd" => Compression::Zstd(match level {
                Some(l) => Some(
                    l.parse()
                        .ok()
                        .filter(|v| (1..=22).contains(v))
                        .ok_or_else(|| bad_level("1..=22"))?,
                ),
                None => None,
            }),
            "lz4" | "lz4raw" | "lz4_raw" => Compression::Lz4,
            "gzip" | "gz" => Compression::Gzip(match level {
                Some(l) => Some(
                    l.parse()
                        .ok()
                        .filter(|v| *v <= 9)
                        .ok_or_else(|| bad_level("0..=9"))?,
                ),
                None => None,
            }),
            "brotli" => Compression::Brotli(match level {
                Some(l) => Some(
                    l.parse()
                        .ok()
                        .filter(|v| *v <= 11)
                        .ok_or_else(|| bad_level("0..=11"))?,
                ),
                None => None,
            }),
            "none" | "uncompressed" => Compression::None,
            _ => {
                return Err(Error::Options(format!(
                    "unknown compression `{text}` (expected snappy, zstd[:level], lz4, gzip[:level], brotli[:level] or none)"
                )));
            }
        };
        if level.is_some()
            && matches!(
                c,
                Compression::Snappy | Compression::Lz4 | Compression::None
            )
        {
            return Err(Error::Options(format!(
                "compression `{name}` takes no level (got `{text}`)"
            )));
        }
        Ok(c)
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Compression::Snappy => write!(f, "snappy"),
            Compression::Zstd(None) => write!(f, "zstd"),
            Compression::Zstd(Some(l)) => write!(f, "zstd:{l}"),
            Compression::Lz4 => write!(f, "lz4"),
            Compression::Gzip(None) => write!(f, "gzip"),
            Compression::Gzip(Some(l)) => write!(f, "gzip:{l}"),
            Compression::Brotli(None) => write!(f, "brotli"),
            Compression::Brotli(Some(l)) => write!(f, "brotli:{l}"),
            Compression::None => write!(f, "none"),
        }
    }
}

impl Compression {
    /// The Polars codec.
    pub fn to_polars(self) -> ParquetCompression {
        match self {
            Compression::Snappy => ParquetCompression::Snappy,
            Compression::Zstd(l) => {
                ParquetCompression::Zstd(l.and_then(|l| ZstdLevel::try_new(l).ok()))
            }
            Compression::Lz4 => ParquetCompression::Lz4Raw,
            Compression::Gzip(l) => {
                ParquetCompression::Gzip(l.and_then(|l| GzipLevel::try_new(l).ok()))
            }
            Compression::Brotli(l) => {
                ParquetCompression::Brotli(l.and_then(|l| BrotliLevel::try_new(l).ok()))
            }
            Compression::None => ParquetCompression::Uncompressed,
        }
    }
}

/// What a write does with data already in the partitions it touches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WriteMode {
    /// New rows replace stored rows with the same natural key (the default for keyed kinds).
    Upsert,
    /// Rows are added as they are (the default for kinds without a key).
    Append,
    /// Every partition the write touches is replaced by the written rows.
    Overwrite,
    /// Refuse the write if any partition it touches already holds data.
    Error,
}

impl FromStr for WriteMode {
    type Err = Error;

    fn from_str(text: &str) -> Result<WriteMode> {
        Ok(match text.trim().to_ascii_lowercase().as_str() {
            "upsert" => WriteMode::Upsert,
            "append" => WriteMode::Append,
            "overwrite" => WriteMode::Overwrite,
            "error" => WriteMode::Error,
            _ => {
                return Err(Error::Options(format!(
                    "unknown write mode `{text}` (expected upsert, append, overwrite or error)"
                )));
            }
        })
    }
}

impl fmt::Display for WriteMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            WriteMode::Upsert => "upsert",
            WriteMode::Append => "append",
            WriteMode::Overwrite => "overwrite",
            WriteMode::Error => "error",
        };
        f.write_str(s)
    }
}

/// How a write slices a large input to bound its memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MemoryLimit {
    /// When the input's row count is known for free, slices sized to the smaller of 768 MiB and
    /// a quarter of the available memory; else no slicing.
    #[default]
    Auto,
    /// No slicing.
    Off,
    /// Slices sized to stay under this many bytes.
    Bytes(u64),
}

/// File layout options of a write, validated together.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileLayout {
    /// Rows per data file at most; `None`: the dataset's setting.
    pub max_rows_per_file: Option<usize>,
    /// Rows per row group at least (the last group of a file may be smaller).
    pub min_rows_per_group: Option<usize>,
    /// Rows per row group.
    pub row_group_size: Option<usize>,
}

impl FileLayout {
    /// Checks the options against each other, for a dataset whose own setting is
    /// `dataset_max` rows per file, and returns the rows per file and per row group to write.
    ///
    /// `min_rows_per_group` must be below `max_rows_per_file` (when not given it defaults to
    /// 50,000, lowered to fit), and `row_group_size` may not be below `min_rows_per_group`.
    pub fn resolve(&self, dataset_max: usize) -> Result<(usize, usize)> {
        let max_rows_per_file = self.max_rows_per_file.unwrap_or(dataset_max);
        let resolved = FileLayout {
            max_rows_per_file: Some(max_rows_per_file),
            ..*self
        };
        Ok((
            max_rows_per_file,
            resolved.row_group_size(max_rows_per_file)?,
        ))
    }

    fn row_group_size(&self, max_rows_per_file: usize) -> Result<usize> {
        if max_rows_per_file == 0 {
            return Err(Error::Options(
                "max_rows_per_file must be at least 1".into(),
            ));
        }
        let min = match self.min_rows_per_group {
            Some(0) => {
                return Err(Error::Options(
                    "min_rows_per_group must be at least 1".into(),
                ));
            }
            Some(m) if m >= max_rows_per_file => {
                return Err(Error::Options(format!(
                    "min_rows_per_group ({m}) must be below max_rows_per_file ({})",
                    max_rows_per_file
                )));
            }
            Some(m) => m,
            None => DEFAULT_MIN_ROWS_PER_GROUP.min(max_rows_per_file),
        };
        let size = match self.row_group_size {
            Some(0) => return Err(Error::Options("row_group_size must be at least 1".into())),
            Some(r) if self.min_rows_per_group.is_some() && r < min => {
                return Err(Error::Options(format!(
                    "row_group_size ({r}) is below min_rows_per_group ({min})"
                )));
            }
            Some(r) => r,
            None => DEFAULT_ROW_GROUP_SIZE.max(min),
        };
        Ok(size.min(max_rows_per_file))
    }
}

/// Parses a duration: `90` (seconds), `90s`, `15m`, `1h`, `2d`, `1w`.
pub fn parse_duration(text: &str) -> Result<std::time::Duration> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().map_err(|_| {
        Error::Options(format!(
            "duration `{text}`: expected a number with s, m, h, d or w"
        ))
    })?;
    let secs = match unit.trim() {
        "" | "s" => 1,
        "m" | "min" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        other => {
            return Err(Error::Options(format!(
                "duration `{text}`: unknown unit `{other}` (s, m, h, d, w)"
            )));
        }
    };
    n.checked_mul(secs)
        .map(std::time::Duration::from_secs)
        .ok_or_else(|| Error::Options(format!("duration `{text}` is too long")))
}

/// Parses a byte size: `1048576`, `512MiB`, `2GiB`, `500MB`, `64k`, `1.5GiB`; whole numbers are
/// exact, and a size past `u64::MAX` bytes is an error.
pub fn parse_bytes(text: &str) -> Result<u64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let number: f64 = n.parse().map_err(|_| {
        Error::Options(format!(
            "size `{text}`: expected a number with an optional unit (KiB, MiB, GiB, KB, MB, GB)"
        ))
    })?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        other => {
            return Err(Error::Options(format!(
                "size `{text}`: unknown unit `{other}`"
            )));
        }
    };
    let too_large = || Error::Options(format!("size `{text}` is too large (at most 16 EiB)"));
    if let Ok(whole) = n.parse::<u64>() {
        return whole.checked_mul(mult).ok_or_else(too_large);
    }
    let bytes = number * mult as f64;
    // 2^64 is exactly representable; `as` would silently clamp anything at or past it.
    if bytes >= 18_446_744_073_709_551_616.0 {
        return Err(too_large());
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(text: &str) -> u64 {
        parse_duration(text).unwrap().as_secs()
    }

    fn err(result: Result<impl std::fmt::Debug>) -> String {
        result.unwrap_err().to_string()
    }

    #[test]
    fn durations_read_every_unit_and_refuse_the_rest() {
        for (text, want) in [
            ("90", 90),
            ("90s", 90),
            ("0s", 0),
            ("15m", 900),
            ("15min", 900),
            (" 1 h ", 3_600),
            ("2d", 172_800),
            ("1w", 604_800),
            ("18446744073709551615", u64::MAX),
        ] {
            assert_eq!(secs(text), want, "{text:?}");
        }
        for (text, want) in [
            ("", "duration ``: expected a number with s, m, h, d or w"),
            ("h", "duration `h`: expected a number"),
            ("-1s", "duration `-1s`: expected a number"),
            (
                "18446744073709551616",
                "duration `18446744073709551616`: expected a number",
            ),
            (
                "1.5h",
                "duration `1.5h`: unknown unit `.5h` (s, m, h, d, w)",
            ),
            ("1y", "unknown unit `y`"),
            ("1H", "unknown unit `H`"),
            (
                "18446744073709551615w",
                "duration `18446744073709551615w` is too long",
            ),
            ("30500000000000000d", "is too long"),
        ] {
            let e = err(parse_duration(text));
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn sizes_read_binary_and_decimal_units_and_refuse_the_rest() {
        for (text, want) in [
            ("0", 0),
            ("1048576", 1_048_576),
            ("1b", 1),
            ("64k", 65_536),
            ("64KiB", 65_536),
            ("512MiB", 536_870_912),
            ("512m", 536_870_912),
            (" 1.5 GiB ", 1_610_612_736),
            ("10gib", 10_737_418_240),
            ("1TiB", 1 << 40),
            ("500MB", 500_000_000),
            ("2kb", 2_000),
            ("1GB", 1_000_000_000),
            ("1tb", 1_000_000_000_000),
            ("0.5", 0),
            ("18446744073709551615", u64::MAX),
            ("17179869183GiB", 17_179_869_183 << 30),
        ] {
            assert_eq!(parse_bytes(text).unwrap(), want, "{text:?}");
        }
        for (text, want) in [
            ("", "size ``: expected a number with an optional unit"),
            ("MiB", "size `MiB`: expected a number"),
            ("-1", "size `-1`: expected a number"),
            ("1.2.3", "size `1.2.3`: expected a number"),
            ("1e3", "size `1e3`: unknown unit `e3`"),
            ("1 parsecs", "unknown unit `parsecs`"),
            (
                "17179869184GiB",
                "size `17179869184GiB` is too large (at most 16 EiB)",
            ),
            ("18446744073709551616", "is too large"),
            ("16777216.5TiB", "is too large"),
        ] {
            let e = err(parse_bytes(text));
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn file_layouts_resolve_to_one_row_group_size() {
        let layout = |max, min, size| FileLayout {
            max_rows_per_file: Some(max),
            min_rows_per_group: min,
            row_group_size: size,
        };
        for (l, want) in [
            // The dataset's own setting (7 here) when the write gives none.
            (FileLayout::default(), 7),
            (layout(1_000, None, None), 1_000),
            (layout(5_000_000, Some(200_000), None), 200_000),
            (layout(5_000_000, Some(10), None), DEFAULT_ROW_GROUP_SIZE),
            (layout(5_000_000, None, Some(10)), 10),
            (layout(100, Some(10), Some(10)), 10),
            (layout(100, None, Some(1_000)), 100),
            (
                layout(usize::MAX, Some(usize::MAX - 1), None),
                usize::MAX - 1,
            ),
        ] {
            assert_eq!(l.resolve(7).unwrap().1, want, "{l:?}");
        }
        assert_eq!(
            FileLayout::default().resolve(5_000_000).unwrap(),
            (5_000_000, DEFAULT_ROW_GROUP_SIZE)
        );
        for (l, want) in [
            (
                layout(0, None, None),
                "max_rows_per_file must be at least 1",
            ),
            (
                layout(10, Some(0), None),
                "min_rows_per_group must be at least 1",
            ),
            (
                layout(10, Some(10), None),
                "min_rows_per_group (10) must be below max_rows_per_file (10)",
            ),
            (
                layout(10, None, Some(0)),
                "row_group_size must be at least 1",
            ),
            (
                layout(100, Some(50), Some(49)),
                "row_group_size (49) is below min_rows_per_group (50)",
            ),
        ] {
            assert!(
                err(l.resolve(7)).contains(want),
                "{l:?}: {}",
                err(l.resolve(7))
            );
        }
    }
}
