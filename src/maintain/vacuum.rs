//! `vacuum`: delete old versions past the retention, and the replaced data files that no kept
//! version references.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::metrics::OpTimer;

/// Versions `vacuum` keeps by default (the newest ones, the current included).
pub const DEFAULT_RETAIN_VERSIONS: usize = 10;

/// What a vacuum did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct VacuumReport {
    /// The operation id.
    pub op_id: String,
    /// Versions whose history was deleted.
    pub versions_removed: Vec<u64>,
    /// Replaced data files deleted.
    pub files_deleted: u64,
    /// Bytes freed.
    pub bytes_freed: u64,
    /// Wall time in milliseconds.
    pub wall_ms: u64,
    /// Peak resident memory of the process, in bytes.
    pub peak_rss_bytes: u64,
}

impl Dataset {
    /// Keeps the newest `retain_versions` versions (at least the current one) and deletes the
    /// rest, with every replaced data file none of the kept versions references.
    pub fn vacuum(&self, retain_versions: usize) -> Result<VacuumReport> {
        if retain_versions == 0 {
            return Err(Error::Options(
                "--retain-versions must be at least 1 (the current version)".into(),
            ));
        }
        let timer = OpTimer::start("vacuum");
        let lock = self.store().lock()?;
        let current = self.current()?;
        let versions = self.store().versions()?;
        let keep: BTreeSet<u64> = versions
            .iter()
            .rev()
            .take(retain_versions)
            .copied()
            .chain([current.version])
            .collect();
        let mut referenced: BTreeSet<String> =
            current.files.iter().map(|f| f.path.clone()).collect();
        for v in &keep {
            if *v != current.version {
                referenced.extend(
                    self.store()
                        .load_version(*v)?
                        .files
                        .into_iter()
                        .map(|f| f.path),
                );
            }
        }
        let mut report = VacuumReport {
            op_id: timer.op_id.clone(),
            ..Default::default()
        };
        let unreferenced: Vec<(String, u64)> = self
            .store()
            .replaced_files()?
            .into_iter()
            .filter(|(rel, _)| !referenced.contains(rel))
            .collect();
        let rels: Vec<String> = unreferenced.iter().map(|(rel, _)| rel.clone()).collect();
        self.store().delete_replaced(&lock, &rels)?;
        report.files_deleted = rels.len() as u64;
        report.bytes_freed = unreferenced.iter().map(|(_, bytes)| bytes).sum();
        report.bytes_freed += self.store().remove_stale_staging(&lock)?;
        report.versions_removed = versions.into_iter().filter(|v| !keep.contains(v)).collect();
        self.store()
            .delete_versions(&lock, &report.versions_removed)?;
        (report.wall_ms, report.peak_rss_bytes) = timer.finish();
        Ok(report)
    }
}
