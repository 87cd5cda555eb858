//! The key comparisons of an upsert, over every touched partition at once.
//!
//! An upsert asks two questions of its partitions: does the input repeat a key inside one
//! partition ([`folders_with_repeats`]), and which stored rows do the new keys replace
//! ([`replaced_rows`])? Both are answered by a few multi-file scans, each over a batch of
//! partitions holding about [`BATCH_ROWS`] rows: only key columns are read, every row is
//! tagged with its partition (`__dir`) and file (`__fid`) from the files' row counts, and keys
//! are compared within their partition without one query (or one scan) per partition. Memory
//! is bounded by the batch, time by the key columns read.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;

use polars::prelude::*;

use crate::error::{Error, Result};
use crate::write::{hive_dir, scan_files};

/// Rows of keys compared in one query (bounds the memory of the comparison).
pub(crate) const BATCH_ROWS: u64 = 2_000_000;

/// One file taking part in a comparison: where it is, its partition folder, its rows.
#[derive(Clone, Debug)]
pub(crate) struct KeyFile {
    /// The path Polars scans.
    pub path: PathBuf,
    /// The partition folder (relative, `k=v/k=v`).
    pub dir: String,
    /// Rows in the file (from its footer or the manifest).
    pub rows: u64,
}

impl KeyFile {
    /// The file at `path` holding `rows` rows of the dataset file `rel` (its folder is `rel`'s).
    pub fn new(path: PathBuf, rel: &str, rows: u64) -> KeyFile {
        KeyFile {
            path,
            dir: crate::partition::dir_of(rel).to_string(),
            rows,
        }
    }

    /// Staged files (path, final relative path) with their entries.
    pub fn staged(
        staged: &[(PathBuf, String)],
        entries: &[crate::manifest::FileEntry],
    ) -> Vec<KeyFile> {
        staged
            .iter()
            .zip(entries)
            .map(|((path, rel), e)| KeyFile::new(path.clone(), rel, e.rows))
            .collect()
    }
}

/// Consecutive runs of items whose weights add up to about `limit`: a run closes once it
/// reaches the limit, so an item heavier than the limit is a run of its own.
pub(crate) fn batches(weights: &[u64], limit: u64) -> Vec<Range<usize>> {
    let mut out = vec![];
    let mut start = 0;
    let mut sum = 0u64;
    for (i, w) in weights.iter().enumerate() {
        sum = sum.saturating_add(*w);
        if sum >= limit {
            out.push(start..i + 1);
            start = i + 1;
            sum = 0;
        }
    }
    if start < weights.len() {
        out.push(start..weights.len());
    }
    out
}

/// The key as one expression (a struct for composite keys).
fn key_expr(key: &[String]) -> Expr {
    match key {
        [one] => col(one.as_str()),
        many => as_struct(many.iter().map(|k| col(k.as_str())).collect()),
    }
}

/// The `key` columns of `files`, read in file order and tagged with `__dir` (the index of each
/// row's folder in `dirs`) and `__fid` (its file's index in `files`). The tags come from the
/// files' row counts (a scan returns files in order), so no row carries its path.
fn read_tagged(
    files: &[&KeyFile],
    dirs: &BTreeMap<&str, u32>,
    key: &[String],
) -> Result<DataFrame> {
    let paths: Vec<PathBuf> = files.iter().map(|f| f.path.clone()).collect();
    let mut frame = scan_files(&paths, false)?
        .select(key.iter().map(|k| col(k.as_str())).collect::<Vec<_>>())
        .collect()
        .map_err(Error::polars("upsert: read the keys"))?;
    let expected: u64 = files.iter().map(|f| f.rows).sum();
    if frame.height() as u64 != expected {
        return Err(Error::Dataset {
            path: paths.first().cloned().unwrap_or_default(),
            message: format!(
                "these {} files hold {} rows, their records say {expected}: run `pqdm verify`",
                files.len(),
                frame.height()
            ),
        });
    }
    let repeat = |value: &dyn Fn(usize, &KeyFile) -> u32| -> Vec<u32> {
        files
            .iter()
            .enumerate()
            .flat_map(|(i, f)| std::iter::repeat_n(value(i, f), f.rows as usize))
            .collect()
    };
    let tags = [
        Column::new("__dir".into(), repeat(&|_, f| dirs[f.dir.as_str()])),
        Column::new("__fid".into(), repeat(&|i, _| i as u32)),
    ];
    for tag in tags {
        frame
            .with_column(tag)
            .map_err(Error::polars("upsert: tag the keys"))?;
    }
    Ok(frame)
}

/// The folders among `staged` in which some key of `key` occurs more than once.
pub(crate) fn folders_with_repeats(staged: &[KeyFile], key: &[String]) -> Result<Vec<String>> {
    if staged.is_empty() || key.is_empty() {
        return Ok(vec![]);
    }
    // A folder of one row repeats nothing: not read (a write of one row per partition reads
    // no file back).
    let mut rows: BTreeMap<&str, u64> = BTreeMap::new();
    for f in staged {
        *rows.entry(f.dir.as_str()).or_default() += f.rows;
    }
    let mut order: Vec<&KeyFile> = staged.iter().filter(|f| rows[f.dir.as_str()] > 1).collect();
    order.sort_by(|a, b| a.dir.cmp(&b.dir));
    let weights: Vec<u64> = order.iter().map(|f| f.rows).collect();
    let mut repeated = vec![];
    for range in batches(&weights, BATCH_ROWS) {
        let files = &order[range];
        let dirs = folder_ids(files.iter().copied());
        let counts = read_tagged(files, &dirs, key)?
            .lazy()
            .group_by([col("__dir")])
            .agg([
                len().alias("__rows"),
                key_expr(key).n_unique().alias("__keys"),
            ])
            .filter(col("__rows").gt(col("__keys")))
            .collect()
            .map_err(Error::polars("upsert: look for repeated keys in the input"))?;
        let by_id: Vec<&str> = dirs.keys().copied().collect();
        for id in u32_column(&counts, "__dir")?.into_iter().flatten() {
            repeated.push(by_id[id as usize].to_string());
        }
    }
    Ok(repeated)
}

/// [`folders_with_repeats`] asked of the input itself (`frame`, cast, with its partition
/// columns `part_cols`) rather than of the files staged from it: one query, no file read back,
/// which is what a small input spread over many partitions needs (its rows are few, its files
/// many). Callers keep it to inputs of at most [`BATCH_ROWS`] rows.
pub(crate) fn input_folders_with_repeats(
    frame: &LazyFrame,
    part_cols: &[String],
    key: &[String],
) -> Result<Vec<String>> {
    if key.is_empty() {
        return Ok(vec![]);
    }
    let all: Vec<Expr> = part_cols
        .iter()
        .chain(key)
        .map(|c| col(c.as_str()))
        .collect();
    let parts: Vec<Expr> = part_cols.iter().map(|c| col(c.as_str())).collect();
    let repeated = frame
        .clone()
        .select(all.clone())
        .group_by(all)
        .agg([len().alias("__n")])
        .filter(col("__n").gt(lit(1)))
        .select(parts.clone())
        .unique(None, UniqueKeepStrategy::Any)
        .collect()
        .map_err(Error::polars("upsert: look for repeated keys in the input"))?;
    (0..repeated.height())
        .map(|i| hive_dir(&repeated.slice(i as i64, 1)))
        .collect()
}

/// For every file of `stored` holding a key that a file of `new` in the same folder also
/// holds, the number of such rows (by index into `stored`). Only folders both sides touch
/// are read, a batch of folders per query.
pub(crate) fn replaced_rows(
    stored: &[KeyFile],
    new: &[KeyFile],
    key: &[String],
) -> Result<BTreeMap<usize, u64>> {
    // Per folder both sides touch: the stored files (indices) and the new files.
    #[derive(Default)]
    struct Folder<'a> {
        stored: Vec<usize>,
        new: Vec<&'a KeyFile>,
    }
    let mut by_dir: BTreeMap<&str, Folder> = BTreeMap::new();
    for f in new {
        by_dir.entry(f.dir.as_str()).or_default().new.push(f);
    }
    for (i, f) in stored.iter().enumerate() {
        if let Some(folder) = by_dir.get_mut(f.dir.as_str()) {
            folder.stored.push(i);
        }
    }
    let folders: Vec<Folder> = by_dir
        .into_values()
        .filter(|f| !f.stored.is_empty())
        .collect();
    let weights: Vec<u64> = folders
        .iter()
        .map(|f| {
            f.stored.iter().map(|i| stored[*i].rows).sum::<u64>()
                + f.new.iter().map(|n| n.rows).sum::<u64>()
        })
        .collect();
    let mut hits = BTreeMap::new();
    for range in batches(&weights, BATCH_ROWS) {
        let batch = &folders[range];
        let old_index: Vec<usize> = batch
            .iter()
            .flat_map(|f| f.stored.iter().copied())
            .collect();
        let old_files: Vec<&KeyFile> = old_index.iter().map(|i| &stored[*i]).collect();
        let new_files: Vec<&KeyFile> = batch.iter().flat_map(|f| f.new.iter().copied()).collect();
        let dirs = folder_ids(new_files.iter().copied());
        let on: Vec<Expr> = std::iter::once(col("__dir"))
            .chain(key.iter().map(|k| col(k.as_str())))
            .collect();
        let new_keys = read_tagged(&new_files, &dirs, key)?
            .lazy()
            .select(on.clone());
        let counts = read_tagged(&old_files, &dirs, key)?
            .lazy()
            .join(new_keys, on.clone(), on, JoinArgs::new(JoinType::Semi))
            .group_by([col("__fid")])
            .agg([len().alias("__n")])
            .collect()
            .map_err(Error::polars(
                "upsert: find the stored rows the new keys replace",
            ))?;
        let fids = u32_column(&counts, "__fid")?;
        let ns = counts
            .column("__n")
            .and_then(|c| c.cast(&DataType::UInt64))
            .map_err(Error::polars("upsert"))?;
        let ns = ns.u64().map_err(Error::polars("upsert"))?;
        for (fid, n) in fids.into_iter().zip(ns.iter()) {
            if let (Some(fid), Some(n)) = (fid, n) {
                hits.insert(old_index[fid as usize], n);
            }
        }
    }
    Ok(hits)
}

/// Folder -> its index, in sorted order.
fn folder_ids<'a>(files: impl Iterator<Item = &'a KeyFile>) -> BTreeMap<&'a str, u32> {
    let mut dirs: BTreeMap<&str, u32> = files.map(|f| (f.dir.as_str(), 0)).collect();
    for (i, id) in dirs.values_mut().enumerate() {
        *id = i as u32;
    }
    dirs
}

fn u32_column(frame: &DataFrame, name: &str) -> Result<Vec<Option<u32>>> {
    Ok(frame
        .column(name)
        .map_err(Error::polars("upsert"))?
        .u32()
        .map_err(Error::polars("upsert"))?
        .iter()
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_close_at_the_limit_and_keep_heavy_items_alone() {
        assert_eq!(batches(&[], 10), Vec::<Range<usize>>::new());
        assert_eq!(batches(&[3, 3, 3], 10), vec![0..3]);
        assert_eq!(batches(&[4, 6, 1, 20, 2], 10), vec![0..2, 2..4, 4..5]);
        assert_eq!(batches(&[25, 1], 10), vec![0..1, 1..2]);
        assert_eq!(batches(&[0, 0], 10), vec![0..2]);
        assert_eq!(batches(&[u64::MAX, u64::MAX], 10), vec![0..1, 1..2]);
    }
}
