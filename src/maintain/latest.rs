//! `latest`: the latest timestamp overall or per key, from the manifest (or, for a dataset
//! without one, from Parquet footer statistics), never from column data.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::scan::ScanOptions;

/// The latest timestamp of one key.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Latest {
    /// The key's values (empty for the overall answer).
    pub key: BTreeMap<String, Option<String>>,
    /// The largest timestamp (ms), `None` if no file has statistics.
    pub latest_timestamp: Option<i64>,
}

/// The latest timestamp per value of the partition columns `by` (which must be among the
/// summary's key columns) from `_pqdm/summary.json` alone: constant time whatever the number of
/// files. `None` when the summary cannot answer (no summary, or `by` not among its keys).
pub fn from_summary(base: &std::path::Path, by: &[String]) -> Option<Vec<Latest>> {
    let summary = crate::manifest::Store::new(base).ok()?.load_summary()?;
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
    /// the files that `filters` (on partition columns or the timestamp) keep.
    pub fn latest(&self, by: &[String], filters: &[Filter]) -> Result<Vec<Latest>> {
        let m = self.manifest();
        for b in by {
            if !m.partition_columns.iter().any(|p| &p.name == b) {
                return Err(Error::Options(format!(
                    "latest --by `{b}`: only partition columns can be answered from the manifest ({})",
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
        let keep: std::collections::HashSet<_> = plan.files.iter().collect();
        let mut out: BTreeMap<Vec<Option<String>>, Option<i64>> = BTreeMap::new();
        for (f, p) in m.files.iter().zip(self.file_paths(&m)) {
            if !keep.contains(&p) {
                continue;
            }
            let key: Vec<Option<String>> = by
                .iter()
                .map(|b| f.partition.get(b).cloned().flatten())
                .collect();
            let e = out.entry(key).or_insert(None);
            *e = (*e).max(f.max_timestamp);
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
}
