//! Writing a scan's result: a table for terminals, CSV, JSON lines or Parquet for pipes and files.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::str::FromStr;

use polars::prelude::*;

use crate::error::{Error, Result};
use crate::write::parquet_options;

/// Output format of `pqdm scan`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
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
        other => Value::String(other.to_string()),
    }
}

/// Writes `df` as JSON lines.
pub fn write_json_lines(df: &DataFrame, out: &mut dyn Write) -> Result<()> {
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

/// Collects `lf` and writes it in `format` to `output` (stdout when `None`).
pub fn write_result(lf: LazyFrame, format: Format, output: Option<&Path>) -> Result<usize> {
    if format == Format::Parquet {
        let path =
            output.ok_or_else(|| Error::Options("--format parquet needs --output FILE".into()))?;
        let mut df = lf.collect().map_err(Error::polars("scan"))?;
        let file = File::create(path).map_err(Error::io(path))?;
        let opts = parquet_options(crate::Compression::Snappy, 122_880, &Default::default());
        ParquetWriter::new(file)
            .with_compression(opts.compression)
            .finish(&mut df)
            .map_err(Error::polars(format!("write {}", path.display())))?;
        return Ok(df.height());
    }
    let mut df = lf.collect().map_err(Error::polars("scan"))?;
    let mut sink: Box<dyn Write> = match output {
        Some(p) => Box::new(BufWriter::new(File::create(p).map_err(Error::io(p))?)),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    match format {
        Format::Table => writeln!(sink, "{df}").map_err(Error::io("stdout"))?,
        Format::Csv => CsvWriter::new(&mut sink)
            .include_header(true)
            .finish(&mut df)
            .map_err(Error::polars("write CSV"))?,
        Format::Json => write_json_lines(&df, &mut sink)?,
        Format::Parquet => {}
    }
    sink.flush().map_err(Error::io("stdout"))?;
    Ok(df.height())
}
