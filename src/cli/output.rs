//! Writing a scan's result: a table for terminals, CSV, JSON lines or Parquet for pipes and files.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::str::FromStr;

use polars::prelude::*;

use pqdm::error::{Error, Result};
use pqdm::write::{parquet_options, sink_file};

/// Output format of `pqdm scan`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// A human table.
    Table,
    /// CSV with a header row.
    Csv,
    /// One JSON object per line.
    Json,
    /// A Parquet file (needs an output path).
    Parquet,
}

impl FromStr for Format {
    type Err = Error;
    fn from_str(s: &str) -> Result<Format> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "table" => Format::Table,
            "csv" => Format::Csv,
            "json" | "jsonl" | "ndjson" => Format::Json,
            "parquet" => Format::Parquet,
            _ => {
                return Err(Error::Options(format!(
                    "unknown format `{s}` (expected table, csv, json or parquet)"
                )));
            }
        })
    }
}

fn json_value(v: AnyValue) -> serde_json::Value {
    use serde_json::Value;
    match v {
        AnyValue::Null => Value::Null,
        AnyValue::Boolean(b) => Value::Bool(b),
        AnyValue::String(s) => Value::String(s.to_string()),
        AnyValue::StringOwned(s) => Value::String(s.to_string()),
        AnyValue::Int8(x) => x.into(),
        AnyValue::Int16(x) => x.into(),
        AnyValue::Int32(x) => x.into(),
        AnyValue::Int64(x) => x.into(),
        AnyValue::UInt8(x) => x.into(),
        AnyValue::UInt16(x) => x.into(),
        AnyValue::UInt32(x) => x.into(),
        AnyValue::UInt64(x) => x.into(),
        AnyValue::Float32(x) => serde_json::Number::from_f64(x as f64)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        AnyValue::Float64(x) => serde_json::Number::from_f64(x)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        AnyValue::Float16(x) => serde_json::Number::from_f64(f64::from(f32::from(x)))
            .map(Value::Number)
            .unwrap_or(Value::Null),
        // A list column of a folder from another tool: a JSON array; a struct: an object.
        AnyValue::List(values) => Value::Array(values.iter().map(json_value).collect()),
        AnyValue::StructOwned(payload) => Value::Object(
            payload
                .1
                .iter()
                .zip(payload.0)
                .map(|(f, v)| (f.name().to_string(), json_value(v)))
                .collect(),
        ),
        AnyValue::Struct(_, _, fields) => Value::Object(
            fields
                .iter()
                .zip(v._iter_struct_av())
                .map(|(f, v)| (f.name().to_string(), json_value(v)))
                .collect(),
        ),
        // A categorical (pyarrow's dictionary strings) is its text, not its quoted display.
        other => Value::String(match other.get_str() {
            Some(text) => text.to_string(),
            None => other.to_string(),
        }),
    }
}

/// Writes `df` as JSON lines.
pub(crate) fn write_json_lines(df: &DataFrame, out: &mut dyn Write) -> Result<()> {
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    let cols = df.columns();
    for i in 0..df.height() {
        let mut obj = serde_json::Map::with_capacity(names.len());
        for (name, c) in names.iter().zip(cols) {
            let v = c.get(i).map_err(Error::polars("read value"))?;
            obj.insert(name.clone(), json_value(v));
        }
        serde_json::to_writer(&mut *out, &serde_json::Value::Object(obj))
            .map_err(|e| Error::Options(e.to_string()))?;
        out.write_all(b"\n").map_err(Error::io("stdout"))?;
    }
    Ok(())
}

fn write_csv(df: &mut DataFrame, header: bool, out: &mut dyn Write) -> Result<()> {
    CsvWriter::new(out)
        .include_header(header)
        .finish(df)
        .map_err(Error::polars("write CSV"))
}

/// Writes `lf` in `format` to `output` (stdout when `None`; a file, or an object when it is an
/// `s3://` location), streaming CSV and JSON lines in batches of `batch_size` rows and Parquet
/// straight from the streaming engine. Returns rows written (`None` for Parquet, which is not
/// counted).
pub(crate) fn write_result(
    lf: LazyFrame,
    format: Format,
    output: Option<&Path>,
    batch_size: usize,
) -> Result<Option<usize>> {
    if format == Format::Csv {
        // Refused before anything is read or written (Polars' writer fails mid-stream).
        let mut lf = lf.clone();
        let schema = lf
            .collect_schema()
            .map_err(Error::polars("plan the scan"))?;
        let unwritable =
            |t: &DataType| t.is_nested() || matches!(t, DataType::Binary | DataType::Duration(_));
        if let Some((name, dtype)) = schema.iter().find(|(_, t)| unwritable(t)) {
            return Err(Error::Options(format!(
                "--format csv cannot hold column `{name}` ({dtype}): use --format json or \
                 parquet, or leave it out with --columns"
            )));
        }
    }
    let Some(target) = output else {
        return write_local(lf, format, None, batch_size);
    };
    pqdm::storage::write_file(target, |local| {
        write_local(lf, format, Some(local), batch_size)
    })
    .map_err(|e| match e {
        Error::Options(why) => Error::Options(format!("--output {why}")),
        e => e,
    })
}

/// [`write_result`] to stdout or a local file.
fn write_local(
    lf: LazyFrame,
    format: Format,
    output: Option<&Path>,
    batch_size: usize,
) -> Result<Option<usize>> {
    if format == Format::Parquet {
        let path =
            output.ok_or_else(|| Error::Options("--format parquet needs --output FILE".into()))?;
        let opts = parquet_options(
            pqdm::Compression::Snappy,
            pqdm::options::DEFAULT_ROW_GROUP_SIZE,
            &Default::default(),
        );
        sink_file(lf, path, opts)?;
        return Ok(None);
    }
    let mut sink: Box<dyn Write> = match output {
        Some(p) => Box::new(BufWriter::new(File::create(p).map_err(Error::io(p))?)),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    let mut rows = 0;
    if format == Format::Table {
        let df = lf.collect().map_err(Error::polars("scan"))?;
        rows = df.height();
        writeln!(sink, "{df}").map_err(Error::io("stdout"))?;
    } else {
        // An empty result still gets its CSV header (readers such as pandas need it).
        let mut header = match format {
            Format::Csv => Some(lf.clone().collect_schema().map_err(Error::polars("scan"))?),
            _ => None,
        };
        let size = std::num::NonZeroUsize::new(batch_size.max(1));
        let batches =
            pqdm::batches::Batches::start(lf, size).map_err(Error::polars("start the scan"))?;
        for batch in batches {
            let mut df = batch.map_err(Error::polars("scan"))?;
            rows += df.height();
            match format {
                Format::Csv => write_csv(&mut df, header.take().is_some(), &mut sink)?,
                _ => write_json_lines(&df, &mut sink)?,
            }
        }
        if let Some(schema) = header {
            write_csv(&mut DataFrame::empty_with_schema(&schema), true, &mut sink)?;
        }
    }
    sink.flush().map_err(Error::io("stdout"))?;
    Ok(Some(rows))
}
