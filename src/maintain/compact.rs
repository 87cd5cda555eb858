//! `compact`: per partition, rewrite the files below a target row count into files near it,
//! sorted by timestamp, streaming; verify every row survived (an order-independent digest of
//! the rows read and of the rows written) before an atomic commit.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use polars::prelude::*;
use serde::Serialize;

use crate::dataset::Dataset;
use crate::digest::RowDigest;
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::manifest::{FileEntry, Manifest, Operation};
use crate::metrics::OpTimer;
use crate::partition;
use crate::progress::Progress;
use crate::scan::ScanOptions;
use crate::txn::{Change, Staging};
use crate::write::{
    parquet_options, scan_files_as, sink_partitioned, sink_staged_file, staged_entry,
};

/// Options of a compaction.
#[derive(Clone, Default)]
pub struct CompactOptions {
    /// Rows per output file; files more than a tenth below it are candidates (files near the
    /// target are left as they are, so compaction settles). Default: the dataset's
    /// `max_rows_per_file`.
    pub target_rows: Option<usize>,
    /// Only partitions matching these filters, which must be on partition columns (a filter
    /// on other columns cannot select whole files and is refused).
    pub filters: Vec<Filter>,
    /// Only these partition folders (relative, `k=v/k=v`), e.g. those a write just touched;
    /// `None`: every partition.
    pub partitions: Option<Vec<String>>,
    /// A partition is compacted once it holds more than this many files below the target;
    /// `None`: more than one.
    pub min_small_files: Option<usize>,
}

/// What a compaction did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CompactReport {
    /// The operation id.
    pub op_id: String,
    /// The committed version, or `None` when there was nothing to compact.
    pub version: Option<u64>,
    /// Partitions rewritten.
    pub partitions: u64,
    /// Files replaced.
    pub files_before: u64,
    /// Files written.
    pub files_after: u64,
    /// Rows moved (verified equal before and after).
    pub rows: u64,
    /// Wall time in milliseconds.
    pub wall_ms: u64,
    /// Peak resident memory of the process, in bytes.
    pub peak_rss_bytes: u64,
}

/// Files with fewer rows than this are compacted towards `target`: a tenth of slack, so files
/// the last compaction wrote (which the sink may cut a little short) are not rewritten again.
fn below_target(target: usize) -> u64 {
    let target = target as u64;
    target - target / 10
}

impl Dataset {
    /// Compacts small files (see [`CompactOptions`]). Readers see the old or the new version;
    /// a dataset with nothing to compact commits nothing.
    pub fn compact(&self, opts: &CompactOptions, progress: &Progress) -> Result<CompactReport> {
        let timer = OpTimer::start("compact");
        let _held = crate::allocator::HoldFreedMemory::start();
        let m = self.refresh()?;
        let target = opts
            .target_rows
            .unwrap_or(m.settings.max_rows_per_file as usize)
            .max(1);
        let groups = self.compaction_groups(&m, opts, target)?;
        let mut report = CompactReport {
            op_id: timer.op_id.clone(),
            ..Default::default()
        };
        if groups.is_empty() {
            (report.wall_ms, report.peak_rss_bytes) = timer.finish();
            return Ok(report);
        }
        let rewrite = Rewrite {
            ds: self,
            m: &m,
            target,
            pq: parquet_options(
                m.settings.compression()?,
                crate::options::DEFAULT_ROW_GROUP_SIZE.min(target),
                &m.metadata,
            ),
            staging: self.store().staging(&timer.op_id)?,
            op_id: &timer.op_id,
        };
        let bar = progress.bar(groups.len() as u64, "compacting partitions");
        let mut added = vec![];
        let mut replaced = vec![];
        // A partition is read back while the next one is written: the read-back (decoding
        // and digesting the new files) and the write (reading, digesting and encoding) each
        // leave a core partly idle. One read-back at a time, so memory stays that of two
        // partitions' pipelines whatever their count.
        std::thread::scope(|scope| -> Result<()> {
            let mut pending = None;
            let mut settle = |pending: Option<(Written, std::thread::ScopedJoinHandle<_>)>| {
                let Some((written, check)) = pending else {
                    return Ok(());
                };
                let read_back = join_read_back(check)?;
                let rows = self.settle_partition(&rewrite, &written, read_back, &mut added)?;
                replaced.extend(written.files.iter().map(|(f, _)| f.path.clone()));
                report.rows += rows;
                bar.inc(1);
                Ok::<_, Error>(())
            };
            for (dir, files) in &groups {
                // Files whose time ranges overlap cannot make files in time order: sorted at
                // once, not written, read back and written again.
                let sort = ranges_overlap(files).then(|| sort_columns(rewrite.m));
                let written = self.write_partition(&rewrite, dir, files, sort)?;
                settle(pending.take())?;
                let check = scope.spawn(|| rewrite.read_back(dir, files));
                pending = Some((written, check));
            }
            settle(pending.take())
        })?;
        drop(bar);
        let staged = rewrite.staging.files()?;
        report.partitions = groups.len() as u64;
        report.files_before = replaced.len() as u64;
        report.files_after = added.len() as u64;
        let operation = Operation {
            name: "compact".into(),
            mode: None,
            op_id: timer.op_id.clone(),
            rows_added: report.rows,
            rows_removed: report.rows,
            files_added: report.files_after,
            files_removed: report.files_before,
            ..Default::default()
        };
        // Another writer's commit to other partitions while this one ran is fine (on object
        // storage it may take the version this one meant to make: it goes on top of it); one
        // that replaced a file compacted here is not.
        let (next, _) = self.with_commit_retries(&timer.op_id, |lock, current| {
            let live: std::collections::HashSet<&str> =
                current.files.iter().map(|f| f.path.as_str()).collect();
            if let Some(gone) = replaced.iter().find(|r| !live.contains(r.as_str())) {
                return Err(Error::conflict(
                    self.base().display(),
                    crate::error::Conflict::FileReplaced {
                        path: gone.to_string(),
                        during: "compaction".into(),
                    },
                ));
            }
            self.commit_change(
                lock,
                current,
                Change {
                    staged: &staged,
                    added: added.clone(),
                    replaced: &replaced,
                    operation: operation.clone(),
                },
                |_| {},
            )
        })?;
        report.version = Some(next.version);
        (report.wall_ms, report.peak_rss_bytes) = timer.finish();
        Ok(report)
    }

    /// The plan: per partition folder, the small files (more than a tenth below `target`
    /// rows) to rewrite, where the filters select the partition and it holds more than
    /// `min_small_files` of them.
    fn compaction_groups<'m>(
        &self,
        m: &'m Manifest,
        opts: &CompactOptions,
        target: usize,
    ) -> Result<Groups<'m>> {
        if let Some(f) = opts
            .filters
            .iter()
            .find(|f| !m.partition_columns.iter().any(|p| p.name == f.column))
        {
            return Err(Error::Options(format!(
                "compaction filter `{}`: compaction selects whole partitions, so filters must be on partition columns ({}), not `{}`",
                f.text,
                m.partition_columns
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                f.column
            )));
        }
        let small = below_target(target);
        let selected: std::collections::HashSet<PathBuf> = self
            .plan(&ScanOptions {
                filters: opts.filters.clone(),
                ..Default::default()
            })?
            .files
            .into_iter()
            .collect();
        let mut groups: Groups = BTreeMap::new();
        for (f, p) in m.files.iter().zip(self.file_paths(m)) {
            if f.rows < small && selected.contains(&p) {
                groups
                    .entry(partition::dir_of(&f.path).to_string())
                    .or_default()
                    .push((f, p));
            }
        }
        if let Some(only) = &opts.partitions {
            let only: std::collections::BTreeSet<&str> = only.iter().map(String::as_str).collect();
            groups.retain(|dir, _| only.contains(dir.as_str()));
        }
        let more_than = opts.min_small_files.unwrap_or(1).max(1);
        // A rewrite that would leave as many files (three of 300 rows with a target of 400
        // make 400, 400 and 100) only costs.
        groups.retain(|_, files| {
            let rows: u64 = files.iter().map(|(f, _)| f.rows).sum();
            files.len() > more_than && (rows.div_ceil(target as u64) as usize) < files.len()
        });
        Ok(groups)
    }

    /// Writes one partition's small `files` into staged files near the target size in one
    /// streamed pass, the rows digested as they flow from the old files (earliest first, so
    /// files appended day after day are read in time order, or `sorted` by
    /// [`sort_columns`]) into the new ones. Nothing holds the partition but that sort.
    fn write_partition<'g>(
        &self,
        w: &Rewrite,
        dir: &'g str,
        files: &'g [(&'g FileEntry, PathBuf)],
        sorted: Option<Vec<String>>,
    ) -> Result<Written<'g>> {
        let m = w.m;
        let mut in_time_order = files.to_vec();
        in_time_order.sort_by_key(|(f, _)| (f.min_timestamp, f.path.clone()));
        let paths: Vec<PathBuf> = in_time_order.into_iter().map(|(_, p)| p).collect();
        let mut rows = scan_files_as(&paths, false, &m.schema)?;
        let sorted_by_us = sorted.is_some();
        if let Some(by) = sorted {
            rows = rows.sort(by, SortMultipleOptions::default().with_maintain_order(true));
        }
        let columns: Vec<String> = m.schema.iter().map(|f| f.name.clone()).collect();
        let tapped = Arc::new(Mutex::new(RowDigest::default()));
        let rows = RowDigest::tap(rows, &columns, tapped.clone());
        let rows_in: u64 = files.iter().map(|(f, _)| f.rows).sum();
        let started = std::time::Instant::now();
        // A partition that fits one file streams into it; Polars' partitioned sink would
        // hold the file's rows until it is cut.
        match rows_in <= w.target as u64 {
            true => sink_staged_file(rows, &w.staging, dir, w.op_id, w.pq.clone())?,
            false => sink_partitioned(rows, &w.staging, &[], dir, w.op_id, w.target, w.pq.clone())?,
        }
        log::debug!(
            "[{}] compact {dir}: written in {} ms",
            w.op_id,
            started.elapsed().as_millis()
        );
        crate::failpoint::hit("compact.written")?;
        let read = *tapped.lock().unwrap_or_else(|e| e.into_inner());
        Ok(Written {
            dir,
            files,
            rows_in,
            read,
            sorted: sorted_by_us,
        })
    }

    /// Proves a partition's new files hold the rows read from its old ones (the digests and
    /// row counts agree), writing them once more, sorted, if they were not in time order
    /// (files whose rows were out of order, or whose ranges overlap). Adds the new files'
    /// entries to `added`; returns the rows.
    fn settle_partition(
        &self,
        w: &Rewrite,
        written: &Written,
        mut read_back: ReadBack,
        added: &mut Vec<FileEntry>,
    ) -> Result<u64> {
        let dir = written.dir;
        let mut read = written.read;
        // Sorted already: null timestamps, sorted first, read back as out of order.
        if !read_back.sorted && !written.sorted {
            log::debug!(
                "[{}] compact {dir}: rows out of time order; sorting",
                w.op_id
            );
            for (p, _) in &read_back.files {
                std::fs::remove_file(p).map_err(Error::io(p))?;
            }
            let again = self.write_partition(w, dir, written.files, Some(sort_columns(w.m)))?;
            read = again.read;
            read_back = w.read_back(dir, &[])?;
        }
        let after = read_back.digest;
        if read != after || read.rows != written.rows_in {
            return Err(Error::Dataset {
                path: self.base().to_path_buf(),
                message: format!(
                    "compact {dir}: the rewritten files do not hold the same rows ({} read, {} written, digests differ: {}); nothing was committed",
                    read.rows,
                    after.rows,
                    read != after
                ),
            });
        }
        added.extend(read_back.files.into_iter().map(|(_, e)| e));
        Ok(read.rows)
    }
}

/// A partition's rows written to staged files, not yet read back.
struct Written<'g> {
    dir: &'g str,
    /// The small files it replaces.
    files: &'g [(&'g FileEntry, PathBuf)],
    /// Their rows, as their entries count them.
    rows_in: u64,
    /// The digest of the rows read from them.
    read: RowDigest,
    /// Whether they were written sorted (a partition whose files' ranges overlap).
    sorted: bool,
}

/// What reading a partition's new files back found.
struct ReadBack {
    /// The new files and their entries.
    files: Vec<(PathBuf, FileEntry)>,
    /// The digest of their rows.
    digest: RowDigest,
    /// Whether their rows are in time order, file after file.
    sorted: bool,
}

/// The read-back a thread did, its panic turned into an error.
fn join_read_back(handle: std::thread::ScopedJoinHandle<'_, Result<ReadBack>>) -> Result<ReadBack> {
    handle.join().unwrap_or_else(|_| {
        Err(Error::Options(
            "compaction: the read-back of a partition panicked; nothing was committed".into(),
        ))
    })
}

/// Per partition folder, the files a compaction rewrites (entry, path read).
type Groups<'m> = BTreeMap<String, Vec<(&'m FileEntry, PathBuf)>>;

/// What every partition's rewrite shares.
struct Rewrite<'a> {
    ds: &'a Dataset,
    m: &'a Manifest,
    /// Rows per new file.
    target: usize,
    pq: Arc<ParquetWriteOptions>,
    staging: Staging,
    op_id: &'a str,
}

impl Rewrite<'_> {
    /// Reads back the files staged for partition folder `dir`: their entries (stats and
    /// checksums from the files), the digest of their rows and whether they are in time order.
    /// First checks that the `sources` they were written from still hold the bytes their
    /// checksums name: a file damaged since it was written decodes without a word as often as
    /// not, and its rewrite would carry the damage on under a new, matching checksum.
    fn read_back(&self, dir: &str, sources: &[(&FileEntry, PathBuf)]) -> Result<ReadBack> {
        let m = self.m;
        let started = std::time::Instant::now();
        self.check_sources(dir, sources)?;
        let files = self
            .staging
            .files()?
            .into_iter()
            .filter(|(_, rel)| partition::dir_of(rel) == dir)
            .map(|(p, rel)| Ok((staged_entry(&self.staging, &p, &rel, &m.kind_spec, 0)?.0, p)))
            .collect::<Result<Vec<_>>>()?;
        let counted: Vec<(PathBuf, u64)> = files.iter().map(|(e, p)| (p.clone(), e.rows)).collect();
        let (digest, sorted) = RowDigest::of_files_ordered(
            &counted,
            self.rows_per_read(),
            |p| scan_files_as(&[p.to_path_buf()], false, &m.schema),
            &format!("compact {dir}: read back"),
            m.schema
                .iter()
                .any(|f| f.name == m.timestamp_column)
                .then_some(m.timestamp_column.as_str()),
        )?;
        log::debug!(
            "[{}] compact {dir}: read back in {} ms",
            self.op_id,
            started.elapsed().as_millis()
        );
        Ok(ReadBack {
            files: files.into_iter().map(|(e, p)| (p, e)).collect(),
            digest,
            sorted,
        })
    }

    /// Fails naming the first of `sources` (a partition's files being compacted) whose bytes no
    /// longer have the checksum the manifest records.
    fn check_sources(&self, dir: &str, sources: &[(&FileEntry, PathBuf)]) -> Result<()> {
        let checked: Vec<(&FileEntry, PathBuf)> = sources
            .iter()
            .filter(|(f, _)| !f.checksum.is_empty())
            .map(|(f, p)| (*f, p.clone()))
            .collect();
        let damaged = self.ds.damaged_among(&checked)?;
        match damaged.into_iter().next() {
            None => Ok(()),
            Some(rel) => Err(Error::Dataset {
                path: self.ds.base().to_path_buf(),
                message: format!(
                    "compact {dir}: {rel} no longer holds the bytes its checksum names (damaged since it was written); nothing was committed (`pqdm verify --repair` moves damaged files aside)"
                ),
            }),
        }
    }

    /// Rows read back at a time: whole row groups, about 250,000 rows (two of Polars' default
    /// row groups), which reads back as fast as one streamed query.
    fn rows_per_read(&self) -> u64 {
        let group = self
            .pq
            .row_group_size
            .unwrap_or(crate::options::DEFAULT_ROW_GROUP_SIZE)
            .max(1) as u64;
        group * (250_000 / group).max(1)
    }
}

/// Whether `files`, read one after another, are known not to be in time order: their time
/// ranges overlap, or one holds null timestamps. (A file with no range known, or rows out of
/// order inside it, is found out when the new files are read back.)
fn ranges_overlap(files: &[(&FileEntry, PathBuf)]) -> bool {
    if files
        .iter()
        .any(|(f, _)| f.null_timestamps.is_some_and(|n| n > 0))
    {
        return true;
    }
    let mut ranges: Vec<(i64, i64)> = files
        .iter()
        .filter_map(|(f, _)| Some((f.min_timestamp?, f.max_timestamp?)))
        .collect();
    ranges.sort_unstable();
    ranges.windows(2).any(|w| w[1].0 < w[0].1)
}

/// The order rewritten files are sorted in when their rows were not in time order: the
/// timestamp, then the key's other stored columns.
fn sort_columns(m: &Manifest) -> Vec<String> {
    let ts = &m.timestamp_column;
    std::iter::once(ts.clone())
        .chain(
            m.key
                .iter()
                .filter(|k| m.schema.iter().any(|f| &f.name == *k) && *k != ts)
                .cloned(),
        )
        .filter(|c| m.schema.iter().any(|f| &f.name == c))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(min: Option<i64>, max: Option<i64>, nulls: Option<u64>) -> FileEntry {
        FileEntry {
            path: "k=a/f.parquet".into(),
            partition: Default::default(),
            rows: 1,
            bytes: 1,
            min_timestamp: min,
            max_timestamp: max,
            key_ranges: Default::default(),
            checksum: String::new(),
            added_in: 0,
            null_timestamps: nulls,
        }
    }

    #[test]
    fn files_are_sorted_at_once_only_when_their_order_is_known_to_break() {
        let overlap = |entries: &[FileEntry]| {
            let files: Vec<(&FileEntry, PathBuf)> =
                entries.iter().map(|e| (e, PathBuf::new())).collect();
            ranges_overlap(&files)
        };
        let day = |d: i64| entry(Some(d * 10), Some(d * 10 + 9), Some(0));
        // Days appended one after another, given in any order: no sort.
        assert!(!overlap(&[day(2), day(0), day(1)]));
        // Touching at one timestamp is still in order.
        assert!(!overlap(&[
            entry(Some(0), Some(5), Some(0)),
            entry(Some(5), Some(9), Some(0))
        ]));
        assert!(overlap(&[
            entry(Some(0), Some(6), Some(0)),
            entry(Some(5), Some(9), Some(0))
        ]));
        // Interleaved quarters of the same rows.
        assert!(overlap(&[day(0), day(0)]));
        // A null timestamp sorts first, whatever the ranges.
        assert!(overlap(&[day(0), entry(Some(10), Some(19), Some(1))]));
        // Unknown: an earlier pqdm's entries, an all-null file's missing range: the read-back
        // decides.
        assert!(!overlap(&[day(0), entry(Some(10), Some(19), None)]));
        assert!(!overlap(&[day(0), entry(None, None, None)]));
        assert!(!overlap(&[]));
    }

    #[test]
    fn files_within_a_tenth_of_the_target_are_left_alone() {
        assert_eq!(below_target(30_001), 27_001);
        assert_eq!(below_target(1), 1);
        assert_eq!(below_target(1_000_000), 900_000);
    }
}
