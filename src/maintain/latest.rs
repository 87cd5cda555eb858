//! `latest`: the latest timestamp overall or per key, from the manifest (or, for a dataset
//! without one, from Parquet footer statistics); only files where a filter cuts into the rows
//! are read.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;

use polars::prelude::*;
use serde::Serialize;

use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::filter::{Filter, TypedFilter, Value, column_expr};
use crate::manifest::{FileEntry, Manifest};
use crate::scan::ScanOptions;
use crate::write::{scan_files, scan_files_as};

/// The latest timestamp of one key.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Latest {
    /// The key's values (empty for the overall answer).
    pub key: BTreeMap<String, Option<String>>,
    /// The largest timestamp (ms), `None` if no file has statistics.
    pub latest_timestamp: Option<i64>,
}

/// What `latest` is asked: per which columns, and over which rows.
#[derive(Clone, Debug, Default)]
pub struct LatestQuery {
    /// Per which partition columns (`None`: the dataset's key columns, those not derived from
    /// the timestamp; empty: the overall answer alone).
    pub by: Option<Vec<String>>,
    /// Only rows these filters keep.
    pub filters: Vec<Filter>,
}

/// The answer to a [`LatestQuery`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LatestAnswer {
    /// The latest timestamp overall (ms), `None` for a dataset without rows.
    pub latest_timestamp: Option<i64>,
    /// Per key of `by`.
    pub by_key: Vec<Latest>,
}

/// Answers `query` for the dataset (or folder without a manifest) at `base`. The common
/// questions (no filter; per key columns the summary holds) are answered from
/// `_pqdm/summary.json` alone, in constant time whatever the number of files; the others from
/// the manifest, reading only files a filter cuts into.
pub fn latest_at(base: &std::path::Path, query: &LatestQuery) -> Result<LatestAnswer> {
    if query.filters.is_empty()
        && let Some(overall) = from_summary(base, &[])
    {
        let per_key = match &query.by {
            Some(by) if by.is_empty() => Some(vec![]),
            Some(by) => from_summary(base, by),
            None => crate::txn::Store::new(base)
                .ok()
                .and_then(|s| s.load_summary())
                .map(|s| {
                    s.latest_by_key
                        .into_iter()
                        .map(|e| Latest {
                            key: e.key,
                            latest_timestamp: Some(e.latest_timestamp),
                        })
                        .collect()
                }),
        };
        if let Some(by_key) = per_key {
            return Ok(LatestAnswer {
                latest_timestamp: overall.first().and_then(|l| l.latest_timestamp),
                by_key,
            });
        }
    }
    let ds = Dataset::open_any(base, &BTreeMap::new())?;
    let by: Vec<String> = match &query.by {
        Some(by) => by.clone(),
        None => ds
            .header()
            .key_columns()
            .into_iter()
            .map(String::from)
            .collect(),
    };
    let overall = ds.latest(&[], &query.filters)?;
    let by_key = match by.is_empty() {
        true => vec![],
        false => ds.latest(&by, &query.filters)?,
    };
    Ok(LatestAnswer {
        latest_timestamp: overall.first().and_then(|l| l.latest_timestamp),
        by_key,
    })
}

/// The latest timestamp per value of the partition columns `by` (which must be among the
/// summary's key columns) from `_pqdm/summary.json` alone: constant time whatever the number of
/// files. `None` when the summary cannot answer (no summary, or `by` not among its keys).
pub fn from_summary(base: &std::path::Path, by: &[String]) -> Option<Vec<Latest>> {
    let summary = crate::txn::Store::new(base).ok()?.load_summary()?;
    let keys: Vec<&String> = summary
        .latest_by_key
        .first()
        .map(|e| e.key.keys().collect())
        .unwrap_or_default();
    if !by.iter().all(|b| keys.contains(&b)) || (summary.latest_by_key.is_empty() && !by.is_empty())
    {
        return None;
    }
    let mut out: BTreeMap<Vec<Option<String>>, Option<i64>> = BTreeMap::new();
    for e in &summary.latest_by_key {
        let key: Vec<Option<String>> = by.iter().map(|b| e.key.get(b).cloned().flatten()).collect();
        let v = out.entry(key).or_insert(None);
        *v = (*v).max(Some(e.latest_timestamp));
    }
    if by.is_empty() {
        return Some(vec![Latest {
            key: BTreeMap::new(),
            latest_timestamp: summary.latest_timestamp,
        }]);
    }
    Some(
        out.into_iter()
            .map(|(values, ts)| Latest {
                key: by.iter().cloned().zip(values).collect(),
                latest_timestamp: ts,
            })
            .collect(),
    )
}

impl Dataset {
    /// The latest timestamp per value of the partition columns `by` (overall when empty), over
    /// the rows that `filters` keep. Partition filters select files; a file whose newest row a
    /// timestamp filter keeps answers from the manifest; files where a filter cuts into the
    /// rows (or filters on a data column) are read, their timestamp and filtered columns only.
    pub fn latest(&self, by: &[String], filters: &[Filter]) -> Result<Vec<Latest>> {
        let m = self.manifest()?;
        for b in by {
            if !m.partition_columns.iter().any(|p| &p.name == b) {
                return Err(Error::Options(format!(
                    "latest by `{b}`: only partition columns can be answered from the manifest ({})",
                    m.partition_columns
                        .iter()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        let plan = self.plan(&ScanOptions {
            filters: filters.to_vec(),
            ..Default::default()
        })?;
        let row_filters: Vec<&TypedFilter> = plan
            .filters
            .iter()
            .filter(|f| !m.partition_columns.iter().any(|p| p.name == f.column))
            .collect();
        let keep: HashSet<_> = plan.files.iter().collect();
        let files: Vec<(&FileEntry, PathBuf)> = m
            .files
            .iter()
            .zip(self.file_paths(&m))
            .filter(|(_, p)| keep.contains(p))
            .collect();
        let from_manifest = |f: &FileEntry| {
            row_filters.iter().all(|t| {
                t.column == m.timestamp_column
                    && f.max_timestamp
                        .is_some_and(|max| t.partition_may_match(Some(&Value::Int(max))))
            })
        };
        let to_read: Vec<PathBuf> = files
            .iter()
            .filter(|(f, _)| !from_manifest(f))
            .map(|(_, p)| p.clone())
            .collect();
        let read = self.latest_in_files(&m, &to_read, &row_filters)?;
        let mut out: BTreeMap<Vec<Option<String>>, Option<i64>> = BTreeMap::new();
        for (f, p) in &files {
            let key: Vec<Option<String>> = by
                .iter()
                .map(|b| f.partition.value(b).map(String::from))
                .collect();
            let latest = match from_manifest(f) {
                true => f.max_timestamp,
                false => read.get(&p.to_string_lossy().into_owned()).copied(),
            };
            let e = out.entry(key).or_insert(None);
            *e = (*e).max(latest);
        }
        if by.is_empty() && out.is_empty() {
            out.insert(vec![], None);
        }
        Ok(out
            .into_iter()
            .map(|(values, ts)| Latest {
                key: by.iter().cloned().zip(values).collect(),
                latest_timestamp: ts,
            })
            .collect())
    }

    /// The newest timestamp per file among the rows of `paths` that `filters` keep.
    fn latest_in_files(
        &self,
        m: &Manifest,
        paths: &[PathBuf],
        filters: &[&TypedFilter],
    ) -> Result<HashMap<String, i64>> {
        let ts = m.timestamp_column.as_str();
        if paths.is_empty() || ts.is_empty() {
            return Ok(HashMap::new());
        }
        let keep = filters
            .iter()
            .map(|f| f.to_expr())
            .reduce(|a, b| a.and(b))
            .unwrap_or(lit(true));
        // Files of other tools keep their own dtypes (a date-time timestamp is read as
        // milliseconds); pqdm's are read as the manifest's schema.
        let lf = match self.is_foreign() {
            true => scan_files(paths, true)?,
            false => scan_files_as(paths, true, &m.schema)?,
        };
        let df = lf
            .filter(keep)
            .group_by([col("__file")])
            .agg([column_expr(ts, self.is_datetime(ts))
                .max()
                .cast(DataType::Int64)
                .alias(ts)])
            .collect()
            .map_err(Error::polars(format!(
                "latest: read {}",
                self.base().display()
            )))?;
        let files = df.column("__file").and_then(|c| c.str().cloned());
        let latest = df.column(ts).and_then(|c| c.i64().cloned());
        let (files, latest) = files
            .and_then(|f| latest.map(|l| (f, l)))
            .map_err(Error::polars("latest"))?;
        Ok(files
            .iter()
            .zip(latest.iter())
            .filter_map(|(f, t)| Some((f?.to_string(), t?)))
            .collect())
    }
}
