//! `vacuum`: delete old versions past the retention, and the replaced data files that no kept
//! version references and that left the current version longer ago than the retention period
//! (a scan planned on an older version reads its files for at least that long); the Delta log
//! then starts at the newest checkpoint at or before the oldest kept version.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::metrics::OpTimer;

/// Versions `vacuum` keeps by default (the newest ones, the current included).
pub const DEFAULT_RETAIN_VERSIONS: usize = 10;

/// How long a replaced file is kept after it left the current version, by default: scans that
/// began before it was replaced can still read it for that long (as Delta's deleted-file
/// retention).
pub const DEFAULT_RETENTION: std::time::Duration = std::time::Duration::from_secs(3600);

/// What `vacuum` keeps.
#[derive(Clone, Debug)]
pub struct VacuumOptions {
    /// The newest versions to keep (the current one included); at least 1.
    pub retain_versions: usize,
    /// Replaced files younger than this (since they left the current version) are kept.
    pub retention: std::time::Duration,
}

impl Default for VacuumOptions {
    fn default() -> Self {
        VacuumOptions {
            retain_versions: DEFAULT_RETAIN_VERSIONS,
            retention: DEFAULT_RETENTION,
        }
    }
}

/// What a vacuum did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct VacuumReport {
    /// The operation id.
    pub op_id: String,
    /// Versions whose history was deleted.
    pub versions_removed: Vec<u64>,
    /// Replaced data files deleted.
    pub files_deleted: u64,
    /// Replaced files no kept version needs, kept because they were replaced within the
    /// retention period.
    pub files_retained: u64,
    /// Bytes freed.
    pub bytes_freed: u64,
    /// Delta log entries and checkpoints deleted: those before the newest checkpoint at or
    /// before the oldest kept version.
    pub log_files_removed: u64,
    /// Wall time in milliseconds.
    pub wall_ms: u64,
    /// Peak resident memory of the process, in bytes.
    pub peak_rss_bytes: u64,
}

impl Dataset {
    /// Keeps the newest `retain_versions` versions (at least the current one) and deletes the
    /// rest, with every replaced data file none of the kept versions references and that was
    /// replaced longer than `retention` ago.
    pub fn vacuum(&self, opts: &VacuumOptions) -> Result<VacuumReport> {
        let retain_versions = opts.retain_versions;
        if retain_versions == 0 {
            return Err(Error::Options(
                "retain_versions must be at least 1 (the current version)".into(),
            ));
        }
        let timer = OpTimer::start("vacuum");
        let lock = self.store().lock()?;
        let current = self.current()?;
        // The Delta log first: the entries a dead writer left unwritten are made from the
        // versions about to be deleted.
        self.store().publish_delta_after_commit(None, &current);
        let versions = self.store().versions(&current)?;
        let keep: BTreeSet<u64> = versions
            .iter()
            .rev()
            .take(retain_versions)
            .copied()
            .chain([current.version])
            .collect();
        let mut referenced: BTreeSet<String> =
            current.files.iter().map(|f| f.path.clone()).collect();
        // The sources-index segments the kept versions list (see `crate::ingested`).
        let mut segments: BTreeSet<String> = current.sources.iter().cloned().collect();
        for v in &keep {
            if *v != current.version {
                let m = self.store().load_version(*v)?;
                referenced.extend(m.files.into_iter().map(|f| f.path));
                segments.extend(m.sources);
            }
        }
        let mut report = VacuumReport {
            op_id: timer.op_id.clone(),
            ..Default::default()
        };
        // From here on the versions before the oldest kept are gone, for pqdm and its
        // history, before any of their files is.
        let oldest = keep.first().copied().unwrap_or(current.version);
        self.store().set_oldest_kept(&lock, oldest)?;
        let retention = i64::try_from(opts.retention.as_secs()).unwrap_or(i64::MAX);
        let (unreferenced, young): (Vec<_>, Vec<_>) = self
            .store()
            .replaced_files()?
            .into_iter()
            .filter(|(rel, _, _)| !referenced.contains(rel))
            .partition(|(_, _, age)| *age >= retention);
        let rels: Vec<String> = unreferenced.iter().map(|(rel, _, _)| rel.clone()).collect();
        crate::failpoint::hit("vacuum.delete")?;
        self.store().delete_replaced(&lock, &rels)?;
        crate::failpoint::hit("vacuum.deleted_files")?;
        report.files_deleted = rels.len() as u64;
        report.files_retained = young.len() as u64;
        report.bytes_freed = unreferenced.iter().map(|(_, bytes, _)| bytes).sum();
        report.bytes_freed += self.store().remove_stale_staging(&lock)?;
        report.bytes_freed += self
            .store()
            .delete_unlisted_segments(&lock, &segments, retention)?;
        report.versions_removed = versions.into_iter().filter(|v| !keep.contains(v)).collect();
        self.store()
            .delete_versions(&lock, &current, &report.versions_removed)?;
        report.log_files_removed = self.store().trim_delta_log(oldest, &current)?;
        (report.wall_ms, report.peak_rss_bytes) = timer.finish();
        Ok(report)
    }
}
