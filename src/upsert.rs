//! The key comparisons of an upsert, over every touched partition at once.
//!
//! An upsert asks two questions of its partitions: does the input repeat a key inside one
//! partition ([`folders_with_repeats`]), and which stored rows do the new rows change
//! ([`compare_rows`])? Both are answered by a few multi-file scans, each over a batch of
//! partitions holding about [`BATCH_ROWS`] rows (the comparison, which reads whole rows, a
//! quarter of that): every row is tagged with its partition (`__dir`) and file (`__fid`) from
//! the files' row counts, and rows are compared within their partition without one query (or
//! one scan) per partition. Memory is bounded by the batch, time by the columns read.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::PathBuf;

use polars::prelude::*;

use crate::error::{Error, Result};
use crate::manifest::{Field, FileEntry};
use crate::partition;
use crate::schema::Kind;
use crate::write::{hive_dir, scan_files, scan_files_as, typed_folder};

/// Rows of keys compared in one query (bounds the memory of the comparison).
pub(crate) const BATCH_ROWS: u64 = 2_000_000;

/// Rows compared whole in one query by [`compare_rows`] (whole rows are several times wider
/// than their keys).
const COMPARE_ROWS: u64 = BATCH_ROWS / 4;

/// One file taking part in a comparison: where it is, its partition folder, its rows.
#[derive(Clone, Debug)]
pub(crate) struct KeyFile {
    /// The path Polars scans.
    pub path: PathBuf,
    /// The folders its keys are compared within (relative, `k=v/k=v`): its partition folder,
    /// or the group of folders that can hold its keys (see [`KeyScope`]).
    pub dir: String,
    /// Its partition folder itself.
    pub folder: String,
    /// Rows in the file (from its footer or the manifest).
    pub rows: u64,
}

impl KeyFile {
    /// The file at `path` holding `rows` rows of the dataset file `rel` (its folder is `rel`'s).
    pub fn new(path: PathBuf, rel: &str, rows: u64) -> KeyFile {
        let dir = crate::partition::dir_of(rel).to_string();
        KeyFile {
            path,
            folder: dir.clone(),
            dir,
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

/// Which partition folders can hold a key. A partition column that is a key column, or is
/// derived from the timestamp while the timestamp is a key column, is fixed by the key; any
/// other is free (the day of an aggTrades row, whose key is its id, not its time), so a key is
/// looked for in every folder that agrees with it on the fixed columns: its group.
pub(crate) struct KeyScope<'a> {
    columns: &'a [Field],
    free: BTreeSet<&'a str>,
}

impl<'a> KeyScope<'a> {
    /// The scope of a `kind` dataset partitioned by `columns`.
    pub fn new(kind: &Kind, columns: &'a [Field]) -> KeyScope<'a> {
        let ts_in_key = kind.key.contains(&kind.timestamp_column);
        let free = columns
            .iter()
            .map(|c| c.name.as_str())
            .filter(|c| {
                !(kind.key.iter().any(|k| k == c) || (ts_in_key && partition::is_derived(c)))
            })
            .collect();
        KeyScope { columns, free }
    }

    /// Whether partition column `name` is free (does not fix a key).
    pub fn is_free(&self, name: &str) -> bool {
        self.free.contains(name)
    }

    /// Whether one key's rows can lie in several folders.
    pub fn spans_folders(&self) -> bool {
        !self.free.is_empty()
    }

    /// The group of the folder `dir`: the folder itself when no column is free, else its fixed
    /// columns (as typed values, so `month=01` and `month=1` agree).
    pub fn group(&self, dir: &str) -> String {
        if self.free.is_empty() {
            return dir.to_string();
        }
        typed_folder(dir, self.columns)
            .into_iter()
            .filter(|(name, _)| !self.free.contains(name.as_str()))
            .map(|(name, value)| format!("{name}={}", value.unwrap_or_default()))
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// What the new rows of one group can hold, from their files' statistics: the time range
/// (when the timestamp is a key column) and the range of each other integer key column
/// (`None`: unknown, some file records none).
#[derive(Clone, Debug, PartialEq)]
struct Bounds {
    time: Option<(i64, i64)>,
    keys: BTreeMap<String, Option<(i64, i64)>>,
}

impl Bounds {
    fn of(e: &FileEntry, kind: &Kind) -> Bounds {
        let time = kind.key.contains(&kind.timestamp_column).then(|| {
            e.min_timestamp
                .zip(e.max_timestamp)
                .unwrap_or((i64::MIN, i64::MAX))
        });
        let keys = kind
            .range_columns()
            .map(|c| (c.clone(), e.key_ranges.get(c).map(|[lo, hi]| (*lo, *hi))))
            .collect();
        Bounds { time, keys }
    }

    fn widen(&mut self, other: Bounds) {
        let union = |a: (i64, i64), b: (i64, i64)| (a.0.min(b.0), a.1.max(b.1));
        self.time = self.time.zip(other.time).map(|(a, b)| union(a, b));
        for (c, r) in other.keys {
            if let Some(mine) = self.keys.get_mut(&c) {
                *mine = mine.zip(r).map(|(a, b)| union(a, b));
            }
        }
    }

    /// Whether the stored file `f` can hold one of these keys (unknown ranges: yes).
    fn meets(&self, f: &FileEntry) -> bool {
        let stored = Bounds {
            time: f.min_timestamp.zip(f.max_timestamp),
            keys: f
                .key_ranges
                .iter()
                .map(|(c, [lo, hi])| (c.clone(), Some((*lo, *hi))))
                .collect(),
        };
        self.overlaps(&stored)
    }

    /// Whether rows within these bounds and rows within `other` can share a key (a range
    /// either side does not know: yes).
    fn overlaps(&self, other: &Bounds) -> bool {
        let known = |a: Option<(i64, i64)>, b: Option<(i64, i64)>| match (a, b) {
            (Some((lo, hi)), Some((min, max))) => min <= hi && max >= lo,
            _ => true,
        };
        known(self.time, other.time)
            && self
                .keys
                .iter()
                .all(|(c, r)| known(*r, other.keys.get(c).copied().flatten()))
    }
}

/// The files an upsert compares: the new ones, each in its `scope` group, and the stored files
/// that can hold one of their keys (in a group the new rows touch, with recorded ranges meeting
/// theirs; a stored folder in `aliases` is in the group of the folder it is an alias of), with
/// the entries of the latter. `path_of` turns a dataset path into one to scan.
pub(crate) fn candidates<'a>(
    scope: &KeyScope,
    kind: &Kind,
    staged: &[(PathBuf, String)],
    entries: &[FileEntry],
    stored: &'a [FileEntry],
    aliases: &crate::write::Aliases<'a>,
    path_of: impl Fn(&str) -> PathBuf,
) -> (Vec<KeyFile>, Vec<&'a FileEntry>, Vec<KeyFile>) {
    let mut groups: BTreeMap<String, Bounds> = BTreeMap::new();
    let mut new = Vec::with_capacity(staged.len());
    for ((path, rel), e) in staged.iter().zip(entries) {
        let group = scope.group(partition::dir_of(rel));
        let bounds = Bounds::of(e, kind);
        match groups.get_mut(&group) {
            Some(b) => b.widen(bounds),
            None => {
                groups.insert(group.clone(), bounds);
            }
        }
        new.push(KeyFile {
            dir: group,
            ..KeyFile::new(path.clone(), rel, e.rows)
        });
    }
    let mut old = vec![];
    let mut old_files = vec![];
    for f in stored {
        let dir = crate::write::unaliased(aliases, partition::dir_of(&f.path));
        // A folder is its own group unless a column is free: looked up without a copy of its
        // name (100,000 stored files, 100 touched).
        let group = match scope.spans_folders() {
            true => std::borrow::Cow::Owned(scope.group(dir)),
            false => std::borrow::Cow::Borrowed(dir),
        };
        if groups.get(group.as_ref()).is_some_and(|b| b.meets(f)) {
            old_files.push(KeyFile {
                dir: group.into_owned(),
                ..KeyFile::new(path_of(&f.path), &f.path, f.rows)
            });
            old.push(f);
        }
    }
    (new, old, old_files)
}

/// Where one key's rows can lie in several folders: the groups of `staged` (spanning more than
/// one folder) in which a key occurs more than once. Run after repeats inside each folder are
/// resolved, so any repeat found here is across folders.
pub(crate) fn groups_with_repeats(
    scope: &KeyScope,
    kind: &Kind,
    staged: &[(PathBuf, String)],
    entries: &[FileEntry],
    key: &[String],
) -> Result<Vec<String>> {
    if !scope.spans_folders() {
        return Ok(vec![]);
    }
    // Per group, per folder: its files and the bounds of their keys.
    let mut groups: BTreeMap<String, BTreeMap<&str, (Vec<KeyFile>, Bounds)>> = BTreeMap::new();
    for ((path, rel), e) in staged.iter().zip(entries) {
        let dir = partition::dir_of(rel);
        let group = scope.group(dir);
        let bounds = Bounds::of(e, kind);
        let (files, known) = groups
            .entry(group.clone())
            .or_default()
            .entry(dir)
            .or_insert_with(|| (vec![], bounds.clone()));
        known.widen(bounds);
        files.push(KeyFile {
            dir: group,
            ..KeyFile::new(path.clone(), rel, e.rows)
        });
    }
    // Folders whose key bounds are disjoint share no key: only folders meeting another one
    // are read (aggTrades ids grow with time, so days never meet).
    let mut suspects = vec![];
    for folders in groups.into_values() {
        let folders: Vec<(Vec<KeyFile>, Bounds)> = folders.into_values().collect();
        for (i, (files, bounds)) in folders.iter().enumerate() {
            let meets_another = folders
                .iter()
                .enumerate()
                .any(|(j, (_, other))| i != j && bounds.overlaps(other));
            if meets_another {
                suspects.extend(files.iter().cloned());
            }
        }
    }
    folders_with_repeats(&suspects, key)
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

/// What [`read_tagged`] reads of each file, besides its tags.
struct Reading<'a> {
    /// The columns read.
    columns: &'a [String],
    /// The dataset's data columns when whole rows are read (a column a file lacks, added to the
    /// dataset later, reads as null, as scans read it).
    schema: Option<&'a [Field]>,
    /// Partition folder -> id, to tag each row with its own folder (`__folder`) too.
    folders: Option<&'a BTreeMap<&'a str, u32>>,
}

impl<'a> Reading<'a> {
    /// The key columns alone.
    fn keys(key: &'a [String]) -> Reading<'a> {
        Reading {
            columns: key,
            schema: None,
            folders: None,
        }
    }
}

/// The columns `what` names of `files`, read in file order and tagged with `__dir` (the index
/// of each row's folder group in `dirs`) and `__fid` (its file's index in `files`). The tags
/// come from the files' row counts (a scan returns files in order), so no row carries its path.
fn read_tagged(
    files: &[&KeyFile],
    dirs: &BTreeMap<&str, u32>,
    what: &Reading,
) -> Result<DataFrame> {
    let paths: Vec<PathBuf> = files.iter().map(|f| f.path.clone()).collect();
    let scan = match what.schema {
        Some(schema) => scan_files_as(&paths, false, schema)?,
        None => scan_files(&paths, false)?,
    };
    let mut frame = scan
        .select(
            what.columns
                .iter()
                .map(|k| col(k.as_str()))
                .collect::<Vec<_>>(),
        )
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
    let mut tags = vec![
        Column::new("__dir".into(), repeat(&|_, f| dirs[f.dir.as_str()])),
        Column::new("__fid".into(), repeat(&|i, _| i as u32)),
    ];
    if let Some(folders) = what.folders {
        tags.push(Column::new(
            "__folder".into(),
            repeat(&|_, f| folders[f.folder.as_str()]),
        ));
    }
    for tag in tags {
        frame
            .with_column(tag)
            .map_err(Error::polars("upsert: tag the keys"))?;
    }
    Ok(frame)
}

/// The files of folders holding more than one row, in batches of whole folders of about
/// `limit` rows (a folder split over two queries could hide a repeat).
fn folder_batches(files: &[KeyFile], limit: u64) -> Vec<Vec<&KeyFile>> {
    let mut folders: BTreeMap<&str, Vec<&KeyFile>> = BTreeMap::new();
    for f in files {
        folders.entry(f.dir.as_str()).or_default().push(f);
    }
    let folders: Vec<Vec<&KeyFile>> = folders
        .into_values()
        .filter(|files| files.iter().map(|f| f.rows).sum::<u64>() > 1)
        .collect();
    let weights: Vec<u64> = folders
        .iter()
        .map(|files| files.iter().map(|f| f.rows).sum())
        .collect();
    batches(&weights, limit)
        .into_iter()
        .map(|range| folders[range].iter().flatten().copied().collect())
        .collect()
}

/// The folders among `staged` in which some key of `key` occurs more than once.
pub(crate) fn folders_with_repeats(staged: &[KeyFile], key: &[String]) -> Result<Vec<String>> {
    if staged.is_empty() || key.is_empty() {
        return Ok(vec![]);
    }
    // A folder of one row repeats nothing: not read (a write of one row per partition reads
    // no file back).
    let mut repeated = vec![];
    for files in folder_batches(staged, BATCH_ROWS) {
        let dirs = folder_ids(files.iter().copied());
        let counts = read_tagged(&files, &dirs, &Reading::keys(key))?
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

/// What the new rows of an upsert do to one stored file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Hits {
    /// Its rows whose key a new row holds.
    pub rows: u64,
    /// How many of those the new row changes (another value in some column, or another
    /// partition folder); 0: the file already holds the new rows and stays.
    pub changed: u64,
}

/// What [`compare_rows`] found.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Comparison {
    /// Per file of `stored` (by index) holding a key of a new row: its hits.
    pub stored: BTreeMap<usize, Hits>,
    /// Per file of `new` (by index): its rows equal to a row of a stored file that stays
    /// (none of whose rows change), which the upsert leaves out.
    pub unchanged: BTreeMap<usize, u64>,
}

/// Compares the new rows of an upsert with the stored rows holding their keys, whole rows of
/// the dataset's data columns `schema` (nulls equal), within each folder group both sides
/// touch; a batch of groups per query.
pub(crate) fn compare_rows(
    stored: &[KeyFile],
    new: &[KeyFile],
    key: &[String],
    schema: &[Field],
) -> Result<Comparison> {
    // Per folder group both sides touch: the stored files and the new files (indices).
    #[derive(Default)]
    struct Group {
        stored: Vec<usize>,
        new: Vec<usize>,
    }
    let mut by_dir: BTreeMap<&str, Group> = BTreeMap::new();
    for (i, f) in new.iter().enumerate() {
        by_dir.entry(f.dir.as_str()).or_default().new.push(i);
    }
    for (i, f) in stored.iter().enumerate() {
        if let Some(group) = by_dir.get_mut(f.dir.as_str()) {
            group.stored.push(i);
        }
    }
    let groups: Vec<Group> = by_dir
        .into_values()
        .filter(|g| !g.stored.is_empty())
        .collect();
    let weight =
        |files: &[usize], side: &[KeyFile]| -> u64 { files.iter().map(|i| side[*i].rows).sum() };
    let weights: Vec<u64> = groups
        .iter()
        .map(|g| weight(&g.stored, stored) + weight(&g.new, new))
        .collect::<Vec<u64>>();
    let mut out = Comparison::default();
    for range in batches(&weights, COMPARE_ROWS) {
        let batch = &groups[range];
        let old_index: Vec<usize> = batch.iter().flat_map(|g| g.stored.clone()).collect();
        let new_index: Vec<usize> = batch.iter().flat_map(|g| g.new.clone()).collect();
        let (hits, unchanged) = compare_batch(
            &old_index.iter().map(|i| &stored[*i]).collect::<Vec<_>>(),
            &new_index.iter().map(|i| &new[*i]).collect::<Vec<_>>(),
            key,
            schema,
        )?;
        for (fid, h) in hits {
            out.stored.insert(old_index[fid], h);
        }
        for (fid, n) in unchanged {
            out.unchanged.insert(new_index[fid], n);
        }
    }
    Ok(out)
}

/// [`compare_rows`] over one batch of whole folder groups: hits per stored file and rows of
/// new files equal to rows of stored files that stay, by index into `old` and `new`.
type BatchResult = (Vec<(usize, Hits)>, Vec<(usize, u64)>);

fn compare_batch(
    old: &[&KeyFile],
    new: &[&KeyFile],
    key: &[String],
    schema: &[Field],
) -> Result<BatchResult> {
    let dirs = folder_ids(new.iter().copied());
    let folders = ids(old.iter().chain(new).map(|f| f.folder.as_str()));
    let columns: Vec<String> = schema.iter().map(|f| f.name.clone()).collect();
    let values: Vec<&String> = columns.iter().filter(|c| !key.contains(c)).collect();
    let reading = Reading {
        columns: &columns,
        schema: Some(schema),
        folders: Some(&folders),
    };
    let on: Vec<Expr> = std::iter::once(col("__dir"))
        .chain(key.iter().map(|k| col(k.as_str())))
        .collect();
    let renamed = |c: &str| format!("{c}__new");
    let new_rows = read_tagged(new, &dirs, &reading)?.lazy().select(
        on.iter()
            .cloned()
            .chain(
                values
                    .iter()
                    .map(|c| col(c.as_str()).alias(renamed(c).as_str())),
            )
            .chain(["__fid", "__folder"].map(|c| col(c).alias(renamed(c).as_str())))
            .collect::<Vec<_>>(),
    );
    let changed = values
        .iter()
        .map(|c| col(c.as_str()).neq_missing(col(renamed(c).as_str())))
        .fold(
            col("__folder").neq(col(renamed("__folder").as_str())),
            Expr::or,
        );
    let joined = read_tagged(old, &dirs, &reading)?
        .lazy()
        .join(new_rows, on.clone(), on, JoinArgs::new(JoinType::Inner))
        .select([
            col("__fid"),
            col(renamed("__fid").as_str()).alias("__nfid"),
            changed.cast(DataType::UInt32).alias("__changed"),
        ])
        .collect()
        .map_err(Error::polars(
            "upsert: compare the new rows with the stored ones",
        ))?;
    let per_file = joined
        .clone()
        .lazy()
        .group_by([col("__fid")])
        .agg([len().alias("__n"), col("__changed").sum().alias("__c")])
        .collect()
        .map_err(Error::polars("upsert: count the changed rows"))?;
    let staying = per_file
        .clone()
        .lazy()
        .filter(col("__c").cast(DataType::UInt64).eq(lit(0u64)))
        .select([col("__fid")]);
    let unchanged = joined
        .lazy()
        .join(
            staying,
            [col("__fid")],
            [col("__fid")],
            JoinArgs::new(JoinType::Semi),
        )
        .group_by([col("__nfid")])
        .agg([len().alias("__n")])
        .collect()
        .map_err(Error::polars("upsert: count the unchanged rows"))?;
    let counts = |frame: &DataFrame, name: &str| -> Result<Vec<Option<u64>>> {
        let c = frame
            .column(name)
            .and_then(|c| c.cast(&DataType::UInt64))
            .map_err(Error::polars("upsert"))?;
        Ok(c.u64().map_err(Error::polars("upsert"))?.iter().collect())
    };
    let hits = u32_column(&per_file, "__fid")?
        .into_iter()
        .zip(counts(&per_file, "__n")?)
        .zip(counts(&per_file, "__c")?)
        .filter_map(|((fid, rows), changed)| {
            Some((
                fid? as usize,
                Hits {
                    rows: rows?,
                    changed: changed?,
                },
            ))
        })
        .collect();
    let same = u32_column(&unchanged, "__nfid")?
        .into_iter()
        .zip(counts(&unchanged, "__n")?)
        .filter_map(|(fid, n)| Some((fid? as usize, n?)))
        .collect();
    Ok((hits, same))
}

/// Folder group -> its index, in sorted order.
fn folder_ids<'a>(files: impl Iterator<Item = &'a KeyFile>) -> BTreeMap<&'a str, u32> {
    ids(files.map(|f| f.dir.as_str()))
}

/// Name -> its index, in sorted order.
fn ids<'a>(names: impl Iterator<Item = &'a str>) -> BTreeMap<&'a str, u32> {
    let mut dirs: BTreeMap<&str, u32> = names.map(|n| (n, 0)).collect();
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

    fn kind(name: &str) -> Kind {
        crate::schema::KindRegistry::default()
            .get(name)
            .unwrap()
            .clone()
    }

    fn fields(kind: &Kind) -> Vec<Field> {
        kind.partition_by
            .iter()
            .map(|name| Field {
                name: name.clone(),
                dtype: partition::derived_type(name).unwrap_or(crate::schema::ColType::Str),
            })
            .collect()
    }

    fn entry(time: Option<(i64, i64)>, id: Option<[i64; 2]>) -> FileEntry {
        FileEntry {
            path: "a/b.parquet".into(),
            partition: Default::default(),
            rows: 1,
            bytes: 1,
            min_timestamp: time.map(|t| t.0),
            max_timestamp: time.map(|t| t.1),
            key_ranges: id
                .map(|r| ("agg_trade_id".to_string(), r))
                .into_iter()
                .collect(),
            checksum: String::new(),
            added_in: 0,
            null_timestamps: None,
        }
    }

    #[test]
    fn a_key_with_its_timestamp_stays_in_its_folder() {
        let klines = kind("klines");
        let columns = fields(&klines);
        let scope = KeyScope::new(&klines, &columns);
        assert!(!scope.spans_folders());
        let dir = "exchange=B/symbol=X/timeframe=1m/year=2024/month=01/day=5";
        assert_eq!(scope.group(dir), dir);
    }

    #[test]
    fn a_key_without_its_timestamp_is_looked_for_in_every_day() {
        let agg = kind("aggtrades");
        let columns = fields(&agg);
        let scope = KeyScope::new(&agg, &columns);
        assert!(scope.spans_folders());
        let a = scope.group("exchange=B/symbol=X%2FY/year=2024/month=01/day=05");
        let b = scope.group("exchange=B/symbol=X%2FY/year=2025/month=7/day=31");
        let other = scope.group("exchange=B/symbol=Z/year=2024/month=1/day=5");
        assert_eq!(a, b);
        assert_ne!(a, other);
        assert!(a.contains("X/Y"), "{a}");
    }

    #[test]
    fn bounds_meet_only_overlapping_known_ranges() {
        let agg = kind("aggtrades");
        let mut new = Bounds::of(&entry(Some((0, 10)), Some([100, 200])), &agg);
        assert_eq!(new.time, None, "aggTrades' key has no timestamp");
        assert!(new.meets(&entry(Some((50, 60)), Some([200, 300]))));
        assert!(!new.meets(&entry(Some((0, 10)), Some([201, 300]))));
        assert!(!new.meets(&entry(None, Some([i64::MIN, 99]))));
        assert!(new.meets(&entry(None, None)), "unknown range: read");
        new.widen(Bounds::of(&entry(None, Some([300, 400])), &agg));
        assert!(new.meets(&entry(None, Some([250, 260]))));
        new.widen(Bounds::of(&entry(None, None), &agg));
        assert!(new.meets(&entry(None, Some([i64::MAX, i64::MAX]))));

        let klines = kind("klines");
        let new = Bounds::of(&entry(Some((100, 200)), None), &klines);
        assert!(new.meets(&entry(Some((200, 300)), None)));
        assert!(!new.meets(&entry(Some((201, 300)), None)));
        assert!(new.meets(&entry(None, None)));
    }

    #[test]
    fn folder_batches_never_split_a_folder() {
        let file = |dir: &str, rows: u64| {
            KeyFile::new(
                PathBuf::from(format!("{dir}-{rows}")),
                &format!("{dir}/f"),
                rows,
            )
        };
        // By file, a batch would close inside `b` (18 + 3 >= 20).
        let files = [
            file("a", 18),
            file("b", 3),
            file("b", 3),
            file("c", 1),
            file("d", 25),
        ];
        let names = |batch: &Vec<&KeyFile>| -> Vec<String> {
            batch.iter().map(|f| f.path.display().to_string()).collect()
        };
        let out: Vec<Vec<String>> = folder_batches(&files, 20).iter().map(names).collect();
        assert_eq!(out, [vec!["a-18", "b-3", "b-3"], vec!["d-25"]]);
    }
}
