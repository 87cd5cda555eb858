//! Parquet footers: row counts, min/max statistics and key-value metadata, without reading data.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::Path;

use polars::prelude::*;
use polars_parquet::parquet::compression::Compression as ParquetCodec;
use polars_parquet::parquet::schema::types::{
    IntegerType, PrimitiveConvertedType, PrimitiveLogicalType, PrimitiveType,
    TimeUnit as ParquetTimeUnit,
};
use polars_parquet::parquet::statistics::Statistics;
use polars_parquet::read::read_metadata;

use crate::error::{Error, Result};

/// What a file's footer says.
#[derive(Clone, Debug, Default)]
pub struct FooterInfo {
    /// Rows in the file.
    pub rows: u64,
    /// Minimum of the requested integer column, from row-group statistics; a date-time column's
    /// in milliseconds, whatever unit the file stores (see [`FooterInfo::stat_is_temporal`]).
    pub min: Option<i64>,
    /// Maximum of the requested integer column, as [`FooterInfo::min`].
    pub max: Option<i64>,
    /// Column names in file order.
    pub columns: Vec<String>,
    /// Key-value metadata.
    pub metadata: BTreeMap<String, String>,
    /// Nulls per column, where the statistics say.
    pub null_counts: BTreeMap<String, u64>,
    /// Columns some row group has no null count for (their `null_counts` may be short).
    pub null_counts_unknown: BTreeSet<String>,
    /// Smallest and largest value of each Int64 column over all row groups; `None` where some
    /// row group has no min/max for it (all nulls, or no statistics written).
    pub int_ranges: BTreeMap<String, Option<(i64, i64)>>,
    /// Whether the requested column is stored as a date or date-time type rather than a
    /// plain integer (pqdm stores Int64 milliseconds).
    pub stat_is_temporal: bool,
    /// The compression of the file's first column chunk (`None`: no column chunks, or a codec
    /// pqdm does not write).
    pub compression: Option<crate::options::Compression>,
    /// Each column's type as Polars reads it, in file order; `Err` names a type this build of
    /// Polars cannot read at all (planning a scan of the file would panic).
    pub dtypes: Vec<(String, std::result::Result<DataType, String>)>,
    /// Columns stored dictionary-encoded with Arrow's dictionary type (pyarrow's categoricals):
    /// Polars reads them as categoricals, not as their values' type.
    pub dictionary_columns: BTreeSet<String>,
}

impl FooterInfo {
    /// The Polars schema of the file, or an error naming the first column Polars cannot read.
    pub fn schema(&self, path: &Path) -> Result<Schema> {
        self.dtypes
            .iter()
            .map(|(name, t)| match t {
                Ok(t) => Ok(Field::new(name.as_str().into(), t.clone())),
                Err(what) => Err(unreadable(path, name, what)),
            })
            .collect::<Result<Vec<Field>>>()
            .map(Schema::from_iter)
    }
}

/// The error for a column whose type pqdm's Polars cannot read.
pub(crate) fn unreadable(path: &Path, column: &str, what: &str) -> Error {
    let hint = match what.starts_with("decimal") {
        true => "; `pqdm ingest` and `pqdm migrate` read DECIMAL columns, converting them",
        false => "",
    };
    Error::Input {
        path: path.to_path_buf(),
        message: format!("column `{column}` is stored as {what}, a type pqdm cannot read{hint}"),
    }
}

/// Whether Polars, as pqdm builds it (no decimal, i128 or extension types; dictionaries are read
/// as their values), reads the Arrow type `t`; for the others `DataType::from_arrow` panics.
pub(crate) fn polars_reads(t: &ArrowDataType) -> bool {
    use ArrowDataType as A;
    match t {
        A::Null
        | A::Boolean
        | A::Int8
        | A::Int16
        | A::Int32
        | A::Int64
        | A::UInt8
        | A::UInt16
        | A::UInt32
        | A::UInt64
        | A::Float16
        | A::Float32
        | A::Float64
        | A::Utf8
        | A::LargeUtf8
        | A::Utf8View
        | A::Binary
        | A::LargeBinary
        | A::BinaryView
        | A::FixedSizeBinary(_)
        | A::Date32
        | A::Date64
        | A::Duration(_)
        | A::Time32(_)
        | A::Time64(_) => true,
        A::Timestamp(_, tz) => TimeZone::opt_try_new(tz.clone()).is_ok(),
        // Polars' Parquet reader decodes dictionary-encoded columns (pyarrow's categoricals)
        // as their values.
        A::Dictionary(_, values, _) => polars_reads(values),
        A::List(f) | A::LargeList(f) | A::Map(f, _) => polars_reads(&f.dtype),
        A::Struct(fields) => fields.iter().all(|f| polars_reads(&f.dtype)),
        _ => false,
    }
}

/// A short name of an Arrow type, as pyarrow prints it (`decimal128(5, 2)`, `list<int64>`,
/// `timestamp[us, tz=+05:30]`), for errors about types pqdm cannot read.
pub(crate) fn arrow_type_name(t: &ArrowDataType) -> String {
    use ArrowDataType as A;
    let unit = |u: &polars_arrow::datatypes::TimeUnit| match u {
        polars_arrow::datatypes::TimeUnit::Second => "s",
        polars_arrow::datatypes::TimeUnit::Millisecond => "ms",
        polars_arrow::datatypes::TimeUnit::Microsecond => "us",
        polars_arrow::datatypes::TimeUnit::Nanosecond => "ns",
    };
    match t {
        A::Decimal(p, s) | A::Decimal32(p, s) | A::Decimal64(p, s) => {
            format!("decimal128({p}, {s})")
        }
        A::Decimal256(p, s) => format!("decimal256({p}, {s})"),
        A::List(f) | A::LargeList(f) => format!("list<{}>", arrow_type_name(&f.dtype)),
        A::FixedSizeList(f, n) => format!("fixed_size_list<{}>[{n}]", arrow_type_name(&f.dtype)),
        A::Map(f, _) => format!("map<{}>", arrow_type_name(&f.dtype)),
        A::Struct(fields) => format!(
            "struct<{}>",
            fields
                .iter()
                .map(|f| format!("{}: {}", f.name, arrow_type_name(&f.dtype)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        A::Dictionary(_, values, _) => format!("dictionary<{}>", arrow_type_name(values)),
        A::Timestamp(u, Some(tz)) if TimeZone::opt_try_new(Some(tz.clone())).is_err() => format!(
            "timestamp[{}, tz={tz}] (a time zone Polars does not know; it takes whole-hour offsets and IANA names)",
            unit(u)
        ),
        A::Timestamp(u, Some(tz)) => format!("timestamp[{}, tz={tz}]", unit(u)),
        A::Timestamp(u, None) => format!("timestamp[{}]", unit(u)),
        A::Extension(ext) => format!("extension<{}>", ext.name),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// Each column of an Arrow schema with its Polars type, or the Arrow type Polars cannot read.
pub(crate) fn polars_types(
    schema: &ArrowSchema,
) -> Vec<(String, std::result::Result<DataType, String>)> {
    schema
        .iter_values()
        .map(|f| {
            let t = match (&f.dtype, polars_reads(&f.dtype)) {
                (ArrowDataType::Dictionary(_, values, _), true) => {
                    Ok(DataType::from_arrow_dtype(values))
                }
                (_, true) => Ok(DataType::from_arrow_field(f)),
                (_, false) => Err(arrow_type_name(&f.dtype)),
            };
            (f.name.to_string(), t)
        })
        .collect()
}

/// pqdm's name for a Parquet codec it can also write.
fn codec(c: ParquetCodec) -> Option<crate::options::Compression> {
    use crate::options::Compression as C;
    Some(match c {
        ParquetCodec::Uncompressed => C::None,
        ParquetCodec::Snappy => C::Snappy,
        ParquetCodec::Gzip => C::Gzip(None),
        ParquetCodec::Brotli => C::Brotli(None),
        ParquetCodec::Lz4 | ParquetCodec::Lz4Raw => C::Lz4,
        ParquetCodec::Zstd => C::Zstd(None),
        ParquetCodec::Lzo => return None,
    })
}

/// Whether a column's Parquet type is a date or time of day rather than a plain integer.
fn is_temporal(t: &PrimitiveType) -> bool {
    matches!(
        t.logical_type,
        Some(
            PrimitiveLogicalType::Date
                | PrimitiveLogicalType::Timestamp { .. }
                | PrimitiveLogicalType::Time { .. }
        )
    ) || matches!(
        t.converted_type,
        Some(
            PrimitiveConvertedType::Date
                | PrimitiveConvertedType::TimestampMillis
                | PrimitiveConvertedType::TimestampMicros
        )
    )
}

/// Whether a column is a plain signed 64-bit integer (its statistics order as `i64`).
fn is_signed_int64(t: &PrimitiveType) -> bool {
    use polars_parquet::parquet::schema::types::PhysicalType;
    t.physical_type == PhysicalType::Int64
        && matches!(
            t.logical_type,
            None | Some(PrimitiveLogicalType::Integer(IntegerType::Int64))
        )
        && t.converted_type
            .is_none_or(|c| c == PrimitiveConvertedType::Int64)
}

/// How many of a date-time column's stored units make a millisecond (`None`: not a date-time
/// stored as Int64).
fn units_per_ms(t: &PrimitiveType) -> Option<i64> {
    match (&t.logical_type, &t.converted_type) {
        (Some(PrimitiveLogicalType::Timestamp { unit, .. }), _) => Some(match unit {
            ParquetTimeUnit::Milliseconds => 1,
            ParquetTimeUnit::Microseconds => 1_000,
            ParquetTimeUnit::Nanoseconds => 1_000_000,
        }),
        (_, Some(PrimitiveConvertedType::TimestampMillis)) => Some(1),
        (_, Some(PrimitiveConvertedType::TimestampMicros)) => Some(1_000),
        _ => None,
    }
}

fn null_count(stats: &Statistics) -> Option<i64> {
    match stats {
        Statistics::Binary(s) => s.null_count,
        Statistics::Boolean(s) => s.null_count,
        Statistics::FixedLen(s) => s.null_count,
        Statistics::Int32(s) => s.null_count,
        Statistics::Int64(s) => s.null_count,
        Statistics::Int96(s) => s.null_count,
        Statistics::Float(s) => s.null_count,
        Statistics::Double(s) => s.null_count,
    }
}

/// Reads a Parquet file's footer; `stat_column` (an integer column) gets its min/max.
pub fn read_footer(path: &Path, stat_column: Option<&str>) -> Result<FooterInfo> {
    let mut file = File::open(path).map_err(Error::io(path))?;
    footer_of(&mut file, path, stat_column)
}

/// Reads the footer of the Parquet file `reader` holds (`path` names it in errors).
pub fn footer_of<R: std::io::Read + std::io::Seek>(
    reader: &mut R,
    path: &Path,
    stat_column: Option<&str>,
) -> Result<FooterInfo> {
    let meta = read_metadata(reader).map_err(|e| Error::Input {
        path: path.to_path_buf(),
        message: format!("not a readable Parquet file: {e}"),
    })?;
    let columns: Vec<String> = meta
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().to_string())
        .collect();
    let footer_buf = meta.footer_buf.clone();
    let (dtypes, dictionary_columns) = match polars_parquet::read::infer_schema(&meta) {
        Ok(schema) => (
            polars_types(&schema),
            schema
                .iter_values()
                .filter(|f| matches!(f.dtype, ArrowDataType::Dictionary(..)))
                .map(|f| f.name.to_string())
                .collect(),
        ),
        Err(e) => {
            return Err(Error::Input {
                path: path.to_path_buf(),
                message: format!("unreadable Parquet schema: {e}"),
            });
        }
    };
    let mut info = FooterInfo {
        rows: meta.num_rows as u64,
        columns,
        dtypes,
        dictionary_columns,
        ..Default::default()
    };
    if let Some(kv) = meta.key_value_metadata() {
        for item in kv {
            info.metadata.insert(
                item.key.to_string(),
                item.value
                    .as_ref()
                    .map(|v| v.to_string())
                    .unwrap_or_default(),
            );
        }
    }
    for rg in meta.row_groups.iter() {
        for cc in rg.parquet_columns() {
            if info.compression.is_none() {
                info.compression = codec(cc.compression());
            }
            let path = cc.descriptor().path_in_schema.as_slice();
            if path.len() == 1 && Some(path[0].as_str()) == stat_column {
                info.stat_is_temporal |= is_temporal(&cc.descriptor().descriptor.primitive_type);
            }
            let stats = match cc.statistics(&footer_buf) {
                Some(Ok(stats)) => Some(stats),
                _ => None,
            };
            match (path, stats.as_ref().and_then(null_count)) {
                ([col], Some(n)) => {
                    *info.null_counts.entry(col.to_string()).or_default() += n.max(0) as u64;
                }
                ([col], None) => {
                    info.null_counts_unknown.insert(col.to_string());
                }
                _ => {}
            }
            let [name] = path else {
                continue;
            };
            let int64 = is_signed_int64(&cc.descriptor().descriptor.primitive_type);
            let range = match &stats {
                Some(Statistics::Int64(s)) => s.min_value.zip(s.max_value),
                _ => None,
            };
            if int64 {
                let known = info.int_ranges.entry(name.to_string()).or_insert(range);
                *known = known
                    .zip(range)
                    .map(|((lo, hi), (l, h))| (lo.min(l), hi.max(h)));
            }
            let Some(Statistics::Int64(s)) = stats else {
                continue;
            };
            if Some(name.as_str()) != stat_column {
                continue;
            }
            // Truncated as Polars converts date-times between units, so the bounds hold every
            // value a reader converts to milliseconds.
            let per_ms = units_per_ms(&cc.descriptor().descriptor.primitive_type).unwrap_or(1);
            if let Some(v) = s.min_value.map(|v| v / per_ms) {
                info.min = Some(info.min.map_or(v, |m| m.min(v)));
            }
            if let Some(v) = s.max_value.map(|v| v / per_ms) {
                info.max = Some(info.max.map_or(v, |m| m.max(v)));
            }
        }
    }
    Ok(info)
}

/// A lazy scan of one Parquet file, without hive columns from its path.
pub fn scan_one(path: &Path) -> Result<LazyFrame> {
    LazyFrame::scan_parquet(
        PlRefPath::try_from_path(path).map_err(Error::polars("path"))?,
        ScanArgsParquet {
            hive_options: HiveOptions {
                enabled: Some(false),
                ..Default::default()
            },
            cloud_options: crate::storage::cloud_options(path)?,
            // Paths are literal: a file named `two[1].parquet` is no pattern.
            glob: false,
            ..Default::default()
        },
    )
    .map_err(Error::polars(format!("{}: open Parquet", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str, dtype: ArrowDataType) -> ArrowField {
        ArrowField::new(name.into(), dtype, true)
    }

    #[test]
    fn types_polars_cannot_read_are_named_as_pyarrow_names_them() {
        use ArrowDataType as A;
        let dec = A::Decimal(5, 2);
        let us = polars_arrow::datatypes::TimeUnit::Microsecond;
        let cases = [
            (dec.clone(), "decimal128(5, 2)"),
            (
                A::LargeList(Box::new(field("item", dec.clone()))),
                "list<decimal128(5, 2)>",
            ),
            (
                A::Struct(vec![field("a", dec.clone()), field("b", A::Int64)]),
                "struct<a: decimal128(5, 2), b: int64>",
            ),
            (
                A::Timestamp(us, Some("+05:30".into())),
                "timestamp[us, tz=+05:30] (a time zone Polars does not know",
            ),
        ];
        for (t, name) in cases {
            assert!(!polars_reads(&t), "{name}");
            assert!(
                arrow_type_name(&t).starts_with(name),
                "{}",
                arrow_type_name(&t)
            );
        }
        for t in [
            A::Int64,
            A::Utf8View,
            A::Timestamp(us, Some("+05:00".into())),
            A::Timestamp(us, Some("America/New_York".into())),
            A::Dictionary(
                polars_arrow::datatypes::IntegerType::Int32,
                Box::new(A::Utf8),
                false,
            ),
            A::Struct(vec![field("a", A::Float64)]),
        ] {
            assert!(polars_reads(&t), "{t:?}");
        }
        let schema: ArrowSchema = [field("x", A::Int32), field("d", dec)]
            .into_iter()
            .collect();
        let types = polars_types(&schema);
        assert_eq!(types[0], ("x".to_string(), Ok(DataType::Int32)));
        assert_eq!(
            types[1],
            ("d".to_string(), Err("decimal128(5, 2)".to_string()))
        );
    }
}
