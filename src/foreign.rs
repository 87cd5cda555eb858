//! Datasets written by other tools (pyarrow, DuckDB, Spark) and never given a manifest:
//! found by listing, skipping names that start with `.` or `_` (`_SUCCESS`, `_temporary`,
//! `.crc` files) and temporary files, with hive values typed sensibly.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::footer;
use crate::manifest::{Field, FileEntry, Manifest, Operation, Settings};
use crate::partition;
use crate::schema::{ColType, ColumnSpec, Kind};

/// Whether a relative path is data for plain readers: no component hidden, a Parquet suffix.
fn is_data(rel: &Path) -> bool {
    let hidden = rel.components().any(|c| {
        let s = c.as_os_str().to_string_lossy();
        s.starts_with('.') || s.starts_with('_')
    });
    let name = rel
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    !hidden && (name.ends_with(".parquet") || name.ends_with(".pq") || name.ends_with(".parq"))
}

/// The data files under `base` (relative paths with `/`), sorted.
pub fn list_files(base: &Path) -> Result<Vec<String>> {
    if crate::storage::is_remote(base) {
        let remote = crate::storage::Remote::open(base)?;
        return Ok(remote
            .list("")?
            .into_iter()
            .map(|(rel, _)| rel)
            .filter(|rel| is_data(Path::new(rel)))
            .collect());
    }
    let mut out = vec![];
    crate::manifest::walk(base, &mut |p| {
        if let Ok(rel) = p.strip_prefix(base)
            && is_data(rel)
        {
            out.push(
                rel.components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/"),
            );
        }
    })?;
    out.sort();
    Ok(out)
}

/// Types a hive column from its values: integers (without leading zeros, so `0001` stays text)
/// become i64, everything else a string.
fn infer_type<'a>(values: impl Iterator<Item = &'a str>) -> ColType {
    let mut any = false;
    for v in values {
        any = true;
        let digits = v.strip_prefix('-').unwrap_or(v);
        let leading_zero = digits.len() > 1 && digits.starts_with('0');
        if leading_zero || v.parse::<i64>().is_err() {
            return ColType::Str;
        }
    }
    if any { ColType::I64 } else { ColType::Str }
}

/// A manifest (version 0, never written) describing a dataset found by listing.
/// `hive_types` overrides the inferred partition column dtypes.
pub fn describe(base: &Path, hive_types: &BTreeMap<String, ColType>) -> Result<Manifest> {
    let remote = match crate::storage::is_remote(base) {
        true => Some(crate::storage::Remote::open(base)?),
        false => None,
    };
    if remote.is_none() && !base.is_dir() {
        return Err(Error::Dataset {
            path: base.to_path_buf(),
            message: "no such folder".into(),
        });
    }
    let files = list_files(base)?;
    let first = files.first().ok_or_else(|| Error::Dataset {
        path: base.to_path_buf(),
        message: "no manifest and no Parquet files".into(),
    })?;
    let parts: Vec<Vec<(String, Option<String>)>> =
        files.iter().map(|f| partition::parse_path(f)).collect();
    let mut names: Vec<String> = vec![];
    for p in &parts {
        for (k, _) in p {
            if !names.contains(k) {
                names.push(k.clone());
            }
        }
    }
    let partition_columns: Vec<Field> = names
        .iter()
        .map(|n| {
            let values = || {
                parts.iter().flat_map(|p| {
                    p.iter()
                        .filter(|(k, _)| k == n)
                        .filter_map(|(_, v)| v.as_deref())
                })
            };
            // Zero-padded time folders (`month=01`, the old converter's layout) are still numbers.
            let derived = partition::derived_type(n)
                .filter(|t| *t != ColType::Date && values().all(|v| v.parse::<i64>().is_ok()));
            let dtype = hive_types
                .get(n)
                .copied()
                .or(derived)
                .unwrap_or_else(|| infer_type(values()));
            Field {
                name: n.clone(),
                dtype,
            }
        })
        .collect();
    let schema_pl = footer::file_schema(&base.join(first))?;
    let schema: Vec<Field> = schema_pl
        .iter()
        .filter(|(n, _)| !names.iter().any(|p| p == n.as_str()))
        .filter_map(|(n, dt)| {
            ColType::from_dtype(dt).map(|t| Field {
                name: n.to_string(),
                dtype: t,
            })
        })
        .collect();
    let ts = ["timestamp", "open_time", "time"]
        .iter()
        .find(|c| {
            schema
                .iter()
                .any(|f| &f.name == *c && f.dtype == ColType::I64)
        })
        .map(|s| s.to_string());
    let entries: Vec<FileEntry> = files
        .par_iter()
        .zip(parts.par_iter())
        .map(|(rel, p)| {
            let path: PathBuf = base.join(rel);
            let (info, bytes) = match &remote {
                Some(r) => {
                    let (tail, size) = r.parquet_tail(rel)?;
                    let mut tail = std::io::Cursor::new(tail);
                    (footer::footer_of(&mut tail, &path, ts.as_deref())?, size)
                }
                None => (
                    footer::read_footer(&path, ts.as_deref())?,
                    std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
                ),
            };
            Ok(FileEntry {
                path: rel.clone(),
                partition: p.iter().cloned().collect(),
                rows: info.rows,
                bytes,
                min_timestamp: info.min,
                max_timestamp: info.max,
                checksum: String::new(),
                added_in: 0,
            })
        })
        .collect::<Result<_>>()?;
    let kind = Kind {
        name: "foreign".into(),
        columns: schema
            .iter()
            .chain(&partition_columns)
            .map(|f| ColumnSpec {
                name: f.name.clone(),
                dtype: f.dtype,
                required: false,
                timestamp: Some(&f.name) == ts.as_ref(),
            })
            .collect(),
        key: vec![],
        timestamp_column: ts.clone().unwrap_or_default(),
        partition_by: names.clone(),
        keep_extra: true,
        positional: vec![],
    };
    let mut m = Manifest::empty(
        base,
        &kind,
        schema,
        partition_columns,
        Settings {
            compression: "unknown".into(),
            max_rows_per_file: crate::options::DEFAULT_MAX_ROWS_PER_FILE as u64,
        },
    );
    m.updated_at = String::new();
    m.key = vec![];
    m.operation = Operation {
        name: "listing".into(),
        ..Default::default()
    };
    m.files = entries;
    m.refresh_summary();
    Ok(m)
}
