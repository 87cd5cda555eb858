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

/// File layout options of a write, validated together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileLayout {
    /// Rows per data file at most.
    pub max_rows_per_file: usize,
    /// Rows per row group at least (the last group of a file may be smaller).
    pub min_rows_per_group: Option<usize>,
    /// Rows per row group.
    pub row_group_size: Option<usize>,
}

impl Default for FileLayout {
    fn default() -> Self {
        FileLayout {
            max_rows_per_file: DEFAULT_MAX_ROWS_PER_FILE,
            min_rows_per_group: None,
            row_group_size: None,
        }
    }
}

impl FileLayout {
    /// Checks the options against each other and returns the row group size to write.
    ///
    /// `min_rows_per_group` must be below `max_rows_per_file` (when not given it defaults to
    /// 50,000, lowered to fit), and `row_group_size` may not be below `min_rows_per_group`.
    pub fn resolve(&self) -> Result<usize> {
        if self.max_rows_per_file == 0 {
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
            Some(m) if m >= self.max_rows_per_file => {
                return Err(Error::Options(format!(
                    "min_rows_per_group ({m}) must be below max_rows_per_file ({})",
                    self.max_rows_per_file
                )));
            }
            Some(m) => m,
            None => DEFAULT_MIN_ROWS_PER_GROUP.min(self.max_rows_per_file),
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
        Ok(size.min(self.max_rows_per_file))
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

/// Parses a byte size: `1048576`, `512MiB`, `2GiB`, `500MB`, `64k`.
pub fn parse_bytes(text: &str) -> Result<u64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: f64 = n.parse().map_err(|_| {
        Error::Options(format!(
            "size `{text}`: expected a number with an optional unit (KiB, MiB, GiB, KB, MB, GB)"
        ))
    })?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "m" | "mib" => 1024.0 * 1024.0,
        "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tib" => 1024f64.powi(4),
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        other => {
            return Err(Error::Options(format!(
                "size `{text}`: unknown unit `{other}`"
            )));
        }
    };
    Ok((n * mult) as u64)
}
