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
    file_entry, parquet_options, scan_files_as, sink_partitioned, sink_staged_file,
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
        for (dir, files) in &groups {
            let (rows, new_files) = self.rewrite_partition(&rewrite, dir, files)?;
            added.extend(new_files);
            replaced.extend(files.iter().map(|(f, _)| f.path.clone()));
            report.rows += rows;
            bar.inc(1);
        }
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
        let selected = self
            .plan(&ScanOptions {
                filters: opts.filters.clone(),
                ..Default::default()
            })?
            .files;
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
        groups.retain(|_, files| files.len() > more_than);
        Ok(groups)
    }

    /// Rewrites one partition's small `files` into staged files near the target size, and
    /// proves it kept every row. One streamed pass: the rows are digested as they flow from the
    /// old files (earliest first, so files appended day after day are read in time order) into
    /// the new ones. The new files are digested again when read back, which also tells if
    /// they are in time order; only if not (files whose rows were out of order, or whose
    /// ranges overlap) are they written once more, sorted. Nothing holds the partition but
    /// that sort. Returns the rows and the new files' entries.
    fn rewrite_partition(
        &self,
        w: &Rewrite,
        dir: &str,
        files: &[(&FileEntry, PathBuf)],
    ) -> Result<(u64, Vec<FileEntry>)> {
        let m = w.m;
        let ts = &m.timestamp_column;
        let mut in_time_order = files.to_vec();
        in_time_order.sort_by_key(|(f, _)| (f.min_timestamp, f.path.clone()));
        let paths: Vec<PathBuf> = in_time_order.into_iter().map(|(_, p)| p).collect();
        let read = || scan_files_as(&paths, false, &m.schema);
        let columns: Vec<String> = m.schema.iter().map(|f| f.name.clone()).collect();
        let tapped = Arc::new(Mutex::new(RowDigest::default()));
        let rows_in: u64 = files.iter().map(|(f, _)| f.rows).sum();
        type Written = (RowDigest, bool, Vec<(PathBuf, String)>);
        let sink = |rows: LazyFrame| -> Result<Written> {
            let started = std::time::Instant::now();
            // A partition that fits one file streams into it; Polars' partitioned sink would
            // hold the file's rows until it is cut.
            match rows_in <= w.target as u64 {
                true => sink_staged_file(rows, &w.staging, dir, w.op_id, w.pq.clone())?,
                false => {
                    sink_partitioned(rows, &w.staging, &[], dir, w.op_id, w.target, w.pq.clone())?
                }
            }
            let written = started.elapsed().as_millis();
            crate::failpoint::hit("compact.written")?;
            let new_files: Vec<(PathBuf, String)> = w
                .staging
                .files()?
                .into_iter()
                .filter(|(_, rel)| partition::dir_of(rel) == dir)
                .collect();
            let new_paths: Vec<PathBuf> = new_files.iter().map(|(p, _)| p.clone()).collect();
            let (after, sorted) = RowDigest::of_ordered(
                scan_files_as(&new_paths, false, &m.schema)?,
                &format!("compact {dir}: read back"),
                ts,
            )?;
            log::debug!(
                "[{}] compact {dir}: written in {written} ms, read back in {} ms",
                w.op_id,
                started.elapsed().as_millis() - written
            );
            Ok((after, sorted, new_files))
        };
        let (mut after, sorted, mut new_files) =
            sink(RowDigest::tap(read()?, &columns, tapped.clone()))?;
        if !sorted {
            log::debug!(
                "[{}] compact {dir}: rows out of time order; sorting",
                w.op_id
            );
            for (p, _) in &new_files {
                std::fs::remove_file(p).map_err(Error::io(p))?;
            }
            (after, _, new_files) = sink(read()?.sort(
                sort_columns(m),
                SortMultipleOptions::default().with_maintain_order(true),
            ))?;
        }
        let before = *tapped.lock().unwrap_or_else(|e| e.into_inner());
        if before != after || before.rows != rows_in {
            return Err(Error::Dataset {
                path: self.base().to_path_buf(),
                message: format!(
                    "compact {dir}: the rewritten files do not hold the same rows ({} read, {} written, digests differ: {}); nothing was committed",
                    before.rows,
                    after.rows,
                    before != after
                ),
            });
        }
        let entries = new_files
            .iter()
            .map(|(p, rel)| file_entry(p, rel, &m.kind_spec, 0))
            .collect::<Result<_>>()?;
        Ok((before.rows, entries))
    }
}

/// Per partition folder, the files a compaction rewrites (entry, path read).
type Groups<'m> = BTreeMap<String, Vec<(&'m FileEntry, PathBuf)>>;

/// What every partition's rewrite shares.
struct Rewrite<'a> {
    m: &'a Manifest,
    /// Rows per new file.
    target: usize,
    pq: Arc<ParquetWriteOptions>,
    staging: Staging,
    op_id: &'a str,
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
    use super::below_target;

    #[test]
    fn files_within_a_tenth_of_the_target_are_left_alone() {
        assert_eq!(below_target(30_001), 27_001);
        assert_eq!(below_target(1), 1);
        assert_eq!(below_target(1_000_000), 900_000);
    }
}
