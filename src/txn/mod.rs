//! The transaction: how a change becomes a version, on any storage.
//!
//! A write plans its change against a snapshot (the current [`Manifest`]), stages its files
//! in a private local folder ([`Staging`]), then commits through [`commit`]: the next manifest
//! is built from the snapshot and the change, and [`LogStore::commit`] makes it visible at
//! one commit point. After the commit point only tidying is left, and it never reports
//! failure (the next writer finishes it). A commit that lost its version to another writer is
//! retried in one place, [`crate::Dataset`]'s `with_commit_retries` ([`commit`]), which
//! rebuilds everything the attempt depends on from the new snapshot.
//!
//! The storage behind it is a [`LogStore`], one implementation per kind, each documenting its
//! atomicity rule: [`local`] (a lock file, a journal, renames and hard links, the version
//! file created without overwrite) and [`object`] (no lock: staged uploads, server-side
//! copies, the version created with a conditional put). Nothing outside those two files and
//! [`crate::storage`] knows whether a dataset is on a disk or in a bucket.
//!
//! On both, every committed data file lives twice: in the hive tree (what pyarrow, DuckDB and
//! Polars globs read: the current version) and at `_pqdm/files/<path>.kept` (what pqdm's
//! scans read, kept until `vacuum`'s retention after a commit takes the file out of the tree,
//! so a scan planned on version N reads version N however long it runs). Locally the two are
//! hard links of one file; on object storage, two server-side copies.

mod commit;
mod delta_log;
pub mod local;
mod log_store;
pub mod object;
mod staged_file;
mod staging;

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::ops::Deref;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use commit::Change;
pub(crate) use delta_log::version_from_log;
pub use log_store::{FileCopies, LogStore};
pub use staged_file::{Written, WrittenLog};
pub use staging::Staging;

use crate::error::{Error, Result};
use crate::location::Location;
use crate::manifest::{FILES_DIR, KEPT_SUFFIX, META_DIR, Manifest, REPLACED_SUFFIX, SOURCES_DIR};

/// What identifies a local dataset's current version without reading it (device, inode,
/// version number and modification time of the newest version file).
pub type Stamp = (u64, u64, u64, i64);

/// The exclusive commit lock; released when dropped (or when the process dies). On object
/// storage there is no lock file: the conditional put of the version decides instead.
pub struct CommitLock {
    file: Option<crate::lock::FileLock>,
}

/// The journal of one commit in flight: what recovery rolls back (the version was not made)
/// or forward (it was, by this journal's operation).
#[derive(Serialize, Deserialize)]
struct Journal {
    target_version: u64,
    /// The writing operation (tells whose the version is).
    #[serde(default)]
    op_id: String,
    moved_in: Vec<String>,
    moved_out: Vec<String>,
    /// Object storage: the moved-in files have kept copies under `_pqdm/files/`, and the
    /// moved-out ones keep theirs (recorded under `_pqdm/removed/`) instead of being copied to
    /// `_pqdm/replaced/`.
    #[serde(default)]
    kept: bool,
}

/// A dataset's storage: a [`LogStore`] (local folder or object store) and the paths and
/// reads that are the same on both.
#[derive(Clone, Debug)]
pub struct Store {
    log: Arc<dyn LogStore>,
}

impl Deref for Store {
    type Target = dyn LogStore;

    fn deref(&self) -> &Self::Target {
        &*self.log
    }
}

/// The relative path of `sub` under `_pqdm/`.
fn meta_rel(sub: &str) -> String {
    format!("{META_DIR}/{sub}")
}

/// The relative path of version `version`'s file in the history.
fn version_rel(version: u64) -> String {
    meta_rel(&format!("versions/{version:020}.json"))
}

/// Where an earlier pqdm kept a file a later commit replaced.
fn replaced_rel(rel: &str) -> String {
    meta_rel(&format!("replaced/{rel}{REPLACED_SUFFIX}"))
}

/// The relative path of a data file's kept copy.
fn kept_rel(rel: &str) -> String {
    meta_rel(&format!("{FILES_DIR}/{rel}{KEPT_SUFFIX}"))
}

/// The version a history file name (`<20 digits>.json`) holds.
fn version_number(name: &str) -> Option<u64> {
    // Named as log entries are.
    crate::delta::entry_version(name)
}

impl Store {
    /// The store of the dataset at `base`: a local folder, or `s3://bucket/prefix`.
    pub fn new(base: impl AsRef<std::path::Path>) -> Result<Store> {
        Ok(Store::at(&Location::parse(base)?))
    }

    /// The store of the dataset at `location`.
    pub fn at(location: &Location) -> Store {
        let log: Arc<dyn LogStore> = match location {
            Location::Object(remote) => Arc::new(object::ObjectLogStore::new(remote.clone())),
            Location::Local(base) => Arc::new(local::LocalLogStore::new(base.clone())),
        };
        Store { log }
    }

    /// The path of a data file in the tree (the current version's copy).
    pub fn data_path(&self, rel: &str) -> PathBuf {
        self.base().join(rel)
    }

    /// Where an earlier pqdm kept a file that a later commit replaced, until `vacuum`.
    pub fn replaced_path(&self, rel: &str) -> PathBuf {
        self.base().join(replaced_rel(rel))
    }

    /// Whether a dataset exists at the base (an unreachable store counts as no).
    pub fn exists(&self) -> bool {
        self.try_exists().unwrap_or(false)
    }

    /// The bytes of a data file of the current version (in the tree).
    pub fn read_data(&self, rel: &str) -> Result<Vec<u8>> {
        self.read_data_opt(rel)?.ok_or_else(|| Error::Storage {
            location: self.data_path(rel).display().to_string(),
            message: "no such file".into(),
        })
    }

    /// Loads version `version` from the history (its version file where an earlier pqdm wrote
    /// one, else the Delta log).
    pub fn load_version(&self, version: u64) -> Result<Manifest> {
        load_version(&*self.log, version, None)
    }

    /// [`Store::load_version`] with, where the version is read from the Delta log, only the
    /// files `keep` wants (a version file, written by an earlier pqdm, is read whole): check
    /// [`Manifest::file_count`] for the version's count.
    pub fn load_version_where(
        &self,
        version: u64,
        keep: &crate::delta::Keep<'_>,
    ) -> Result<Manifest> {
        load_version(&*self.log, version, Some(keep))
    }

    /// The current version with, where the log records it and `_manifest.json` is its copy
    /// (local datasets), only the files `keep` wants ([`Manifest::is_partial`]: the header and
    /// summary are the copy's, checked by the hash its log entry records; the files the
    /// log's); else the whole version. `None`: no dataset. What a write reads: at 100,000
    /// files, a one-day upsert's 100 partitions instead of every file.
    pub fn load_current_where(&self, keep: &crate::delta::Keep<'_>) -> Result<Option<Manifest>> {
        let head = match self.load_head()? {
            Some(head) if head.is_partial() => head,
            whole => return Ok(whole),
        };
        let read = self.load_version_where(head.version, keep)?;
        // Every file kept (a first write, a write touching every partition): the version whole.
        let whole = read.files.len() as u64 == head.file_count;
        Ok(Some(Manifest {
            files_in: if whole { None } else { read.files_in },
            files: read.files,
            ..head
        }))
    }

    /// The header of version `version` (its manifest without the file list): from its log
    /// entry's pqdm record (the entry's first line), else [`Store::load_version_where`] wanting
    /// no file; vacuum's kept versions only, as [`Store::load_version`].
    pub fn load_header(&self, version: u64) -> Result<Manifest> {
        if version >= oldest_kept(&*self.log)
            && let Ok(Some(entry)) = self.log.read(&crate::delta::entry_rel(version))
            && let Some(header) = crate::delta::record::entry_header(&entry)
            && header.version == version
        {
            return Ok(header);
        }
        self.load_version_where(version, &crate::delta::Keep::by_path(&|_, _| false))
    }

    /// The version numbers kept, oldest first: the current one, those with a version file
    /// (written by an earlier pqdm) and those the Delta log rebuilds with pqdm's record (each
    /// checkpoint at or after `current.records_since`, or entry 0, and the unbroken run of
    /// entries after it: a version behind a missing entry is lost), from the oldest `vacuum`
    /// kept on.
    pub fn versions(&self, current: &Manifest) -> Result<Vec<u64>> {
        let mut out: BTreeSet<u64> = self.version_files()?.into_iter().collect();
        if let Some(since) = current.records_since {
            out.insert(current.version);
            let names = delta_log::log_names(&**self)?;
            let entries: BTreeSet<u64> = names
                .iter()
                .filter_map(|n| crate::delta::entry_version(n))
                .collect();
            let starts = names
                .iter()
                .filter_map(|n| crate::delta::checkpoint_version(n))
                .filter(|v| *v >= since)
                .chain((since == 0 && entries.contains(&0)).then_some(0));
            for start in starts {
                out.insert(start);
                out.extend((start + 1..).take_while(|v| entries.contains(v)));
            }
        }
        let oldest = oldest_kept(&**self);
        Ok(out.into_iter().filter(|v| *v >= oldest).collect())
    }

    /// Version `version` without its file list (what `history` shows: its operation, commit
    /// time and totals), read from its log entry's first line where it has one.
    pub fn header_at(&self, version: u64) -> Result<Manifest> {
        if version >= oldest_kept(&**self)
            && !self.data_exists(&version_rel(version))?
            && let Some(bytes) = self.read(&crate::delta::entry_rel(version))?
            && let Some(m) = crate::delta::record::entry_header(&bytes)
            && m.version == version
        {
            return Ok(m);
        }
        self.load_version(version)
    }

    /// Records that `vacuum` keeps versions from `oldest` on (never moving back).
    pub(crate) fn set_oldest_kept(&self, _lock: &CommitLock, oldest: u64) -> Result<()> {
        if oldest <= oldest_kept(&**self) {
            return Ok(());
        }
        let record = Vacuumed {
            oldest_version: oldest,
        };
        self.write(
            &vacuumed_rel(),
            serde_json::to_vec(&record).expect("record serialises"),
        )
    }

    /// Creates a private staging folder for one write.
    pub fn staging(&self, tx: &str) -> Result<Staging> {
        Staging::create(&self.staging_root(), tx)
    }

    /// The bytes of the sources-index segment `name` (a
    /// [`is_segment_name`](crate::manifest::is_segment_name), else an error naming it); `None`
    /// when it is missing.
    pub fn read_segment(&self, name: &str) -> Result<Option<Vec<u8>>> {
        self.read(&segment_rel(name)?)
    }

    /// Writes the sources-index segment `name` (before the commit whose version lists it; a
    /// segment no version lists is `vacuum`'s).
    pub fn write_segment(&self, name: &str, bytes: Vec<u8>) -> Result<()> {
        self.write(&segment_rel(name)?, bytes)
    }

    /// Deletes the sources-index segments no version in `listed` names that are older than
    /// `retention_secs` (where no lock keeps a writer's segment from a vacuum until its
    /// commit, also older than the age a writer is taken for dead); returns their bytes.
    pub fn delete_unlisted_segments(
        &self,
        _lock: &CommitLock,
        listed: &BTreeSet<String>,
        retention_secs: i64,
    ) -> Result<u64> {
        let root = meta_rel(&format!("{SOURCES_DIR}/"));
        let min_age = retention_secs.max(self.dead_writer_age().unwrap_or(i64::MIN));
        let gone: Vec<(String, u64)> = self
            .list_aged(&root)?
            .into_iter()
            .filter(|(name, _, age)| {
                crate::manifest::is_segment_name(name) && !listed.contains(name) && *age >= min_age
            })
            .map(|(name, bytes, _)| (format!("{root}{name}"), bytes))
            .collect();
        let freed = gone.iter().map(|(_, bytes)| bytes).sum();
        self.delete(gone.into_iter().map(|(rel, _)| rel).collect())?;
        Ok(freed)
    }
}

/// Where a commit makes its version visible (see [`LogStore::commit`]).
pub enum CommitPoint {
    /// The version's Delta log entry (`_delta_log/<N>.json`, `entry`): the commit record of
    /// every version this pqdm commits once the log holds the version before it. `manifest`
    /// is the version's manifest serialised, whose hash the entry records.
    Entry { entry: Vec<u8>, manifest: Vec<u8> },
    /// The whole manifest at `_pqdm/versions/<N>.json`, as earlier pqdm committed: only for a
    /// commit whose predecessor the log cannot hold yet (a dataset of an earlier pqdm whose
    /// files have no kept copies, `adopt`); the log starts with a checkpoint after it.
    VersionFile,
}

impl CommitPoint {
    /// The relative path of the commit point of version `version`.
    fn rel(&self, version: u64) -> String {
        match self {
            CommitPoint::Entry { .. } => crate::delta::entry_rel(version),
            CommitPoint::VersionFile => version_rel(version),
        }
    }

    /// The bytes of the commit point and of `_manifest.json` (`next` serialised; for a
    /// version file, the same bytes).
    fn bytes(&self, next: &Manifest) -> (Cow<'_, [u8]>, Cow<'_, [u8]>) {
        match self {
            CommitPoint::Entry { entry, manifest } => (Cow::from(entry), Cow::from(manifest)),
            CommitPoint::VersionFile => {
                let bytes = next.to_json();
                (Cow::from(bytes.clone()), Cow::from(bytes))
            }
        }
    }
}

/// The operation id of the commit whose commit point `rel` holds `bytes` (a log entry's
/// `commitInfo.pqdm.opId`, or a version file's `operation.op_id`).
fn point_op_id(rel: &str, bytes: &[u8]) -> Option<String> {
    if rel.starts_with(crate::delta::LOG_DIR) {
        return crate::delta::record::op_id(bytes);
    }
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()?
        .get("operation")?
        .get("op_id")?
        .as_str()
        .map(String::from)
}

/// Whether `copy` (the bytes of `_manifest.json`) is the manifest whose hash the log entry
/// `entry` records: an unedited copy of that version, read instead of rebuilding it from the
/// log. An entry recording no hash (an earlier pqdm's) vouches for no copy.
fn copy_is_recorded(entry: &[u8], copy: &[u8]) -> bool {
    crate::delta::record::recorded_manifest_hash(entry)
        .is_some_and(|h| h == crate::delta::record::manifest_hash(copy))
}

/// Whether version `version` exists and was made by operation `op_id` (any operation when it
/// is empty): its log entry says so, or for a version of an earlier pqdm, its version file. A
/// journal is only ever rolled forward onto the version it was written for.
fn made_by(log: &dyn LogStore, version: u64, op_id: &str) -> Result<bool> {
    for rel in [crate::delta::entry_rel(version), version_rel(version)] {
        if let Some(bytes) = log.read(&rel)? {
            let made = point_op_id(&rel, &bytes);
            if made.is_some() || rel == version_rel(version) {
                return Ok(op_id.is_empty() || made.as_deref() == Some(op_id));
            }
        }
    }
    Ok(false)
}

/// What `vacuum` recorded of the versions it removed: the oldest version kept
/// (`_pqdm/vacuumed.json`). Versions before it are gone, whatever the log could still rebuild
/// of them (their files may be deleted).
#[derive(Serialize, Deserialize)]
struct Vacuumed {
    oldest_version: u64,
}

/// The path of [`Vacuumed`].
fn vacuumed_rel() -> String {
    meta_rel("vacuumed.json")
}

/// The oldest version `vacuum` kept: 0 when it never ran, and when the record does not read or
/// names a version with no commit point (edited by hand: vacuum keeps its oldest version's
/// entry or version file), so that no edit can hide the current version. Versions it then
/// lists that vacuum removed fail to read for want of their files, never silently.
fn oldest_kept(log: &dyn LogStore) -> u64 {
    let Some(v) = log
        .read(&vacuumed_rel())
        .ok()
        .flatten()
        .and_then(|b| serde_json::from_slice::<Vacuumed>(&b).ok())
        .map(|v| v.oldest_version)
    else {
        return 0;
    };
    let points = [
        crate::delta::entry_rel(v),
        crate::delta::checkpoint_rel(v),
        version_rel(v),
    ];
    if points
        .iter()
        .any(|rel| log.data_exists(rel).unwrap_or(false))
    {
        return v;
    }
    log::warn!(
        "{}: {} names version {v}, which has no commit point; taken as no record",
        log.base().display(),
        vacuumed_rel()
    );
    0
}

/// Loads version `version`: from its version file where an earlier pqdm wrote one, else from
/// the Delta log (the newest checkpoint at or before it and the entries after; with only the
/// files `keep` wants), checking that it is that version and that `vacuum` kept it.
fn load_version(
    log: &dyn LogStore,
    version: u64,
    keep: Option<&crate::delta::Keep<'_>>,
) -> Result<Manifest> {
    let not_kept = || Error::Dataset {
        path: log.base().to_path_buf(),
        message: format!("version {version} is not kept (see `pqdm history`)"),
    };
    if version < oldest_kept(log) {
        return Err(not_kept());
    }
    let rel = version_rel(version);
    let path = log.base().join(&rel);
    let Some(bytes) = log.read(&rel)? else {
        let logged = [
            crate::delta::entry_rel(version),
            crate::delta::checkpoint_rel(version),
        ];
        if !logged
            .iter()
            .any(|rel| log.data_exists(rel).unwrap_or(false))
        {
            return Err(not_kept());
        }
        return delta_log::version_from_log_where(log, version, keep).map_err(|e| match e {
            Error::Dataset { path, message } => Error::Dataset {
                path,
                message: format!(
                    "version {version} cannot be read from the log ({message}; `pqdm history` lists the versions kept)"
                ),
            },
            e => e,
        });
    };
    let m = Manifest::parse(log.base(), &path, &bytes)?;
    if m.version != version {
        // A copy or rename by hand: writers would number the next version after the wrong one
        // and could never commit.
        return Err(Error::Dataset {
            path: log.base().to_path_buf(),
            message: format!(
                "{} holds version {}, not {version} (copied or renamed by hand?)",
                path.display(),
                m.version
            ),
        });
    }
    Ok(m)
}

fn segment_rel(name: &str) -> Result<String> {
    if !crate::manifest::is_segment_name(name) {
        return Err(Error::Dataset {
            path: PathBuf::from(crate::error::clip(name)),
            message: "is no segment of the sources index (`<64 hex digits>.json`; edited by hand?)"
                .into(),
        });
    }
    Ok(meta_rel(&format!("{SOURCES_DIR}/{name}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_numbers_are_read_only_from_twenty_digit_names() {
        assert_eq!(version_number("00000000000000000042.json"), Some(42));
        assert_eq!(version_number("42.json"), None);
        assert_eq!(version_number("0000000000000000004x.json"), None);
        assert_eq!(version_number("00000000000000000042.json.tmp"), None);
        assert_eq!(version_rel(7), "_pqdm/versions/00000000000000000007.json");
        assert_eq!(kept_rel("a=1/f.parquet"), "_pqdm/files/a=1/f.parquet.kept");
    }

    #[test]
    fn a_segment_name_that_is_not_a_content_hash_is_refused() {
        let hex = "a".repeat(64);
        assert_eq!(
            segment_rel(&format!("{hex}.json")).unwrap(),
            format!("_pqdm/sources/{hex}.json")
        );
        for bad in ["../x.json", "A".repeat(64).as_str(), &format!("{hex}.js")] {
            assert!(segment_rel(bad).is_err(), "{bad}");
        }
    }
}
