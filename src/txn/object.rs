//! [`ObjectLogStore`]: a dataset at `s3://bucket/prefix` on any S3-compatible store.
//!
//! **Atomicity rule:** there is no rename and no lock. A commit uploads its new files once per
//! write to keys no other writer uses (`_pqdm/staging/<op id>/`, hidden, not `.parquet`),
//! then, per attempt, journals its target version, copies them server side into the tree (for
//! plain readers) and to `_pqdm/files/<path>.kept` (for pqdm's readers), and creates
//! `_pqdm/versions/<N>.json` with a conditional put (create if absent): **the commit point**.
//! Exactly one writer can create version N; the others get [`Error::Conflict`], delete their
//! copies, and nothing of theirs is visible. An ambiguous answer to that put (an error after
//! the store may have applied it) is settled by reading version N back.
//!
//! After it, `_manifest.json` is overwritten as a hint: readers start from it and look for
//! version N+1, N+2, ... by name (a GET each), so finding the current version lists nothing
//! unless the hint names a version `vacuum` has deleted. Replaced files are deleted from the
//! tree and recorded, with the time, under `_pqdm/removed/<N>.json`; their kept copies stay
//! until `vacuum`'s retention. A journal older than [`stale_secs`] is a dead writer's: the next
//! writer finishes its commit (its version exists, made by it) or deletes its copies.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use polars::prelude::cloud::CloudOptions;
use serde::{Deserialize, Serialize};

use super::{
    CommitLock, CommitPoint, FileCopies, Journal, LogStore, Staging, Stamp, Store, kept_rel,
    meta_rel, replaced_rel, version_number, version_rel,
};
use crate::error::{Error, Result};
use crate::location::Location;
use crate::manifest::{
    FILES_DIR, KEPT_SUFFIX, MANIFEST_FILE, Manifest, REPLACED_SUFFIX, STAGED_SUFFIX, Summary,
};
use crate::storage::Remote;

/// The folder under `_pqdm/` recording which kept files each version took out of the tree.
const REMOVED_DIR: &str = "removed";

/// A dataset on object storage (see the module's atomicity rule).
#[derive(Debug)]
pub struct ObjectLogStore {
    base: PathBuf,
    remote: Arc<Remote>,
    /// The staged objects this handle has uploaded, with the checksum of what was uploaded
    /// (kept across commit attempts; an attempt whose file differs uploads again).
    uploaded: Mutex<HashMap<String, String>>,
}

/// The age after which a journal or a staged object is taken to be a dead writer's, where no
/// lock tells a live writer from a dead one (an hour; a commit attempt takes seconds).
/// `PQDM_STALE_SECS` overrides it (tests).
pub(crate) fn stale_secs() -> i64 {
    crate::env::env().stale_secs.unwrap_or(3600)
}

/// The files one version took out of the tree (their kept copies stay until `vacuum`), and
/// when.
#[derive(Serialize, Deserialize)]
struct Removed {
    /// When the files left the tree (ms since the epoch, the committer's clock).
    removed_at_ms: i64,
    /// Their relative paths (those `vacuum` has not deleted yet).
    files: Vec<String>,
}

/// The record of the files version `version` took out of the tree.
fn removed_rel(version: u64) -> String {
    meta_rel(&format!("{REMOVED_DIR}/{version:020}.json"))
}

/// The keys a commit attempt places its staged files at (tree and kept copy), to delete when
/// the attempt does not land.
fn placed_keys(staged: &[(PathBuf, String)]) -> impl Iterator<Item = String> + '_ {
    staged
        .iter()
        .flat_map(|(_, rel)| [rel.clone(), kept_rel(rel)])
}

impl ObjectLogStore {
    /// The store of the dataset at `remote`'s prefix.
    pub fn new(remote: Arc<Remote>) -> ObjectLogStore {
        ObjectLogStore {
            base: PathBuf::from(remote.url()),
            remote,
            uploaded: Default::default(),
        }
    }

    fn kept_path(&self, rel: &str) -> PathBuf {
        self.base.join(kept_rel(rel))
    }

    fn parse(&self, rel: &str, bytes: &[u8]) -> Result<Manifest> {
        Manifest::parse(&self.base, &self.base.join(rel), bytes)
    }

    fn load_version(&self, version: u64) -> Result<Manifest> {
        super::load_version(self, version, None)
    }

    fn write_summary(&self, m: &Manifest) -> Result<()> {
        let bytes = serde_json::to_vec(&m.summary()).expect("summary serialises");
        self.remote.put(&meta_rel("summary.json"), bytes)
    }

    /// The kept files that commits took out of the tree, from the records under
    /// `_pqdm/removed/`, as (relative path, bytes, seconds since they left the tree).
    fn removed_files(&self) -> Result<Vec<(String, u64, i64)>> {
        let records = self.removed_records()?;
        if records.is_empty() {
            return Ok(vec![]);
        }
        let sizes = self.kept_copies()?.unwrap_or_default();
        let now = chrono::Utc::now().timestamp_millis();
        let mut out = vec![];
        for (_, record) in records {
            let age = now.saturating_sub(record.removed_at_ms) / 1000;
            for rel in record.files {
                let bytes = sizes.get(&rel).copied().unwrap_or(0);
                out.push((rel, bytes, age));
            }
        }
        Ok(out)
    }

    /// Every record under `_pqdm/removed/` (key, record); an unreadable one is an error naming
    /// it (its files would otherwise be kept, or deleted, unseen).
    fn removed_records(&self) -> Result<Vec<(String, Removed)>> {
        let r = &self.remote;
        let root = meta_rel(&format!("{REMOVED_DIR}/"));
        let mut out = vec![];
        for (key, _) in r.list(&root)? {
            let Some(bytes) = r.get(&key)? else { continue };
            let record: Removed = serde_json::from_slice(&bytes).map_err(|e| Error::Dataset {
                path: self.base.join(&key),
                message: format!("is not a record of removed files ({e}); nothing was deleted"),
            })?;
            for rel in &record.files {
                crate::relpath::check(rel, &self.base.join(&key))?;
            }
            out.push((key, record));
        }
        Ok(out)
    }

    /// The first commit of this pqdm on a dataset of an earlier one: gives every file of the
    /// current version (those `next` keeps and those it replaces) its kept copy (server side,
    /// once), before the commit point. A file the tree lost is left to `verify`, which
    /// reports it missing.
    fn keep_all(
        &self,
        next: &Manifest,
        staged: &[(PathBuf, String)],
        replaced: &[String],
    ) -> Result<()> {
        let r = &self.remote;
        let staged: HashSet<&str> = staged.iter().map(|(_, rel)| rel.as_str()).collect();
        let copies: Vec<(String, String)> = next
            .files
            .iter()
            .map(|f| f.path.as_str())
            .filter(|rel| !staged.contains(rel))
            .chain(replaced.iter().map(String::as_str))
            .map(|rel| (rel.to_string(), kept_rel(rel)))
            .collect();
        if r.copy_many(&copies).is_err() {
            for (from, to) in &copies {
                if r.head(from)?.is_some() {
                    r.copy(from, to)?;
                } else {
                    log::warn!("{}/{from} is missing; `verify` reports it", r.url());
                }
            }
        }
        Ok(())
    }

    /// After version `journal.target_version` is in: takes the files it replaced out of the
    /// tree. Their kept copies stay, recorded under `_pqdm/removed/` with the time they left,
    /// for `vacuum`; a journal of an earlier pqdm copies them to `_pqdm/replaced/` instead.
    fn finish(&self, journal: &Journal) -> Result<()> {
        let r = &self.remote;
        if journal.kept {
            if !journal.moved_out.is_empty() {
                let record = Removed {
                    removed_at_ms: chrono::Utc::now().timestamp_millis(),
                    files: journal.moved_out.clone(),
                };
                r.put(
                    &removed_rel(journal.target_version),
                    serde_json::to_vec(&record).expect("record serialises"),
                )?;
            }
            return r.delete_many(journal.moved_out.iter().cloned());
        }
        let copies: Vec<(String, String)> = journal
            .moved_out
            .iter()
            .map(|rel| (rel.clone(), replaced_rel(rel)))
            .collect();
        if r.copy_many(&copies).is_err() {
            // Some were moved already (by this writer before it died, or by recovery): move
            // the rest one by one.
            for (from, to) in &copies {
                if r.head(from)?.is_some() {
                    r.copy(from, to)?;
                }
            }
        }
        r.delete_many(journal.moved_out.iter().cloned())
    }

    /// Finishes or undoes the commits of writers that died mid-commit: a journal older than
    /// [`stale_secs`] belongs to a dead writer. Its version made (by it): the replaced files
    /// move out; else its copies are deleted.
    fn recover(&self) -> Result<()> {
        let r = &self.remote;
        let journals = r.list_aged(&meta_rel("journal/"))?;
        if journals.iter().all(|(_, _, age)| *age < stale_secs()) {
            return Ok(());
        }
        let current = self.load_current()?;
        for (key, _, age) in journals {
            if age < stale_secs() {
                continue;
            }
            let Some(journal) = r
                .get(&key)?
                .and_then(|b| serde_json::from_slice::<Journal>(&b).ok())
            else {
                r.delete(&key)?;
                continue;
            };
            let source = self.base.join(&key);
            for rel in journal.moved_in.iter().chain(&journal.moved_out) {
                crate::relpath::check(rel, &source)?;
            }
            let made = super::made_by(self, journal.target_version, &journal.op_id)?;
            if made {
                log::warn!(
                    "recovery: finishing commit of version {}",
                    journal.target_version
                );
                self.finish(&journal)?;
            } else {
                log::warn!(
                    "recovery: removing what a dead writer copied for version {}",
                    journal.target_version
                );
                let live: BTreeSet<&str> = current
                    .iter()
                    .flat_map(|m| m.files.iter().map(|f| f.path.as_str()))
                    .collect();
                let dead: Vec<(PathBuf, String)> = journal
                    .moved_in
                    .iter()
                    .filter(|rel| !live.contains(rel.as_str()))
                    .map(|rel| (PathBuf::new(), rel.clone()))
                    .collect();
                r.delete_many(placed_keys(&dead))?;
            }
            r.delete(&key)?;
        }
        Ok(())
    }

    /// Uploads what this write has not uploaded yet (or uploaded with other bytes) to its
    /// staging keys; `staging_key` names them.
    fn upload_staged(
        &self,
        next: &Manifest,
        staged: &[(PathBuf, String)],
        staging_key: &dyn Fn(&str) -> String,
    ) -> Result<()> {
        let checksums: HashMap<&str, &str> = next
            .files
            .iter()
            .map(|f| (f.path.as_str(), f.checksum.as_str()))
            .collect();
        let checksum = |rel: &str| checksums.get(rel).copied().unwrap_or_default().to_string();
        let pending: Vec<(PathBuf, String, String)> = {
            let uploaded = self.uploaded.lock().unwrap_or_else(|e| e.into_inner());
            staged
                .iter()
                .map(|(from, rel)| (from.clone(), staging_key(rel), checksum(rel)))
                .filter(|(_, key, sum)| sum.is_empty() || uploaded.get(key) != Some(sum))
                .collect()
        };
        let files: Vec<(PathBuf, String)> = pending
            .iter()
            .map(|(from, key, _)| (from.clone(), key.clone()))
            .collect();
        self.remote.upload_many(&files)?;
        self.uploaded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(pending.into_iter().map(|(_, key, sum)| (key, sum)));
        Ok(())
    }

    /// Creates the commit point `version_key` with a conditional put; `Ok(true)` when this
    /// writer made it. An ambiguous answer is settled by reading it back: the operation id it
    /// holds says whose it is.
    fn put_point(&self, version_key: &str, op: &str, bytes: Vec<u8>) -> Result<Result<bool>> {
        let r = &self.remote;
        Ok(match r.put_new(version_key, bytes) {
            Ok(true) => Ok(true),
            // The store may have applied the put and lost its answer (an error, or a retry of
            // it that found the version made): version N's content decides whose it is.
            answer => match r.get(version_key) {
                Ok(Some(b)) => Ok(super::point_op_id(version_key, &b).as_deref() == Some(op)),
                Ok(None) => answer,
                Err(again) => {
                    // Whether version N is ours is unknown: leave the journal and the copies
                    // to recovery, which decides by version N's content.
                    return Err(Error::Storage {
                        location: format!("{}/{version_key}", r.url()),
                        message: format!(
                            "the commit's outcome is unknown ({}; reading it back: {again}); the next writer settles it",
                            match answer {
                                Ok(_) => "the version exists".to_string(),
                                Err(e) => e.to_string(),
                            }
                        ),
                    });
                }
            },
        })
    }
}

impl ObjectLogStore {
    /// The version after `current`, where its commit point exists: its log entry applied to
    /// `current`, or an earlier pqdm's version file (also where the entry, one an earlier pqdm
    /// wrote after its version file, carries no record).
    fn next_version(&self, current: &Manifest) -> Result<Option<Manifest>> {
        let r = &self.remote;
        let v = current.version + 1;
        let entry = crate::delta::entry_rel(v);
        let applied = r
            .get(&entry)?
            .map(|bytes| crate::delta::record::advance(&self.base, current, &bytes));
        if let Some(Ok(next)) = applied {
            return Ok(Some(next));
        }
        match r.get(&version_rel(v))? {
            Some(bytes) => self.parse(&version_rel(v), &bytes).map(Some),
            None => match applied {
                Some(Err(message)) => Err(Error::Dataset {
                    path: self.base.join(entry),
                    message,
                }),
                _ => Ok(None),
            },
        }
    }

    /// The version `_manifest.json` (`bytes`) holds: itself where the log entry of its
    /// version records its hash (or records none, an earlier pqdm's), else (a copy edited by
    /// hand) that version rebuilt from the log; and whether that entry exists.
    fn hinted(&self, bytes: &[u8]) -> Result<(Manifest, bool)> {
        let m = self.parse(MANIFEST_FILE, bytes)?;
        let Some(entry) = self.remote.get(&crate::delta::entry_rel(m.version))? else {
            return Ok((m, false));
        };
        match crate::delta::record::recorded_manifest_hash(&entry) {
            // A copy without its file list: the version's files are the log's.
            _ if m.is_partial() => Ok((super::version_from_log(self, m.version)?, true)),
            Some(_) if !super::copy_is_recorded(&entry, bytes) => {
                log::warn!(
                    "{}: _manifest.json is not the copy of version {} its log entry records; reading that version from the log",
                    self.remote.url(),
                    m.version
                );
                Ok((super::version_from_log(self, m.version)?, true))
            }
            _ => Ok((m, true)),
        }
    }

    /// Whether log entry 0 exists and pqdm made it (another engine's table is no pqdm dataset).
    fn pqdm_made_entry_0(&self) -> Result<bool> {
        Ok(self
            .remote
            .get(&crate::delta::entry_rel(0))?
            .is_some_and(|b| crate::delta::record::op_id(&b).is_some()))
    }

    /// The newest version with a commit point, by listing the history and the log.
    fn newest_listed(&self) -> Result<u64> {
        let files = self.version_files()?.last().copied();
        let entries = super::delta_log::log_names(self)?
            .iter()
            .filter_map(|n| crate::delta::entry_version(n))
            .max();
        files.max(entries).ok_or_else(|| Error::Dataset {
            path: self.base.clone(),
            message: "has no version left in its history or its log".into(),
        })
    }
}

/// A version's objects: the kept copies where the version has them (one listing), else the
/// tree's.
struct ObjectCopies<'a> {
    store: &'a ObjectLogStore,
    /// The kept copies listed (`None`: a version of an earlier pqdm, read from the tree).
    kept: Option<BTreeMap<String, u64>>,
    tree: BTreeSet<&'a str>,
}

impl FileCopies for ObjectCopies<'_> {
    fn read(&self, rel: &str, _checksum: &str) -> Result<(Option<Vec<u8>>, bool)> {
        let bytes = match &self.kept {
            Some(kept) if kept.contains_key(rel) => self.store.read_kept_opt(rel)?,
            _ => self.store.read_data_opt(rel)?,
        };
        Ok((bytes, false))
    }

    fn both_present(&self, rel: &str) -> bool {
        match &self.kept {
            Some(kept) => self.tree.contains(rel) && kept.contains_key(rel),
            None => true,
        }
    }
}

impl LogStore for ObjectLogStore {
    fn base(&self) -> &Path {
        &self.base
    }

    fn location(&self) -> Location {
        Location::Object(self.remote.clone())
    }

    fn cloud_options(&self) -> Option<CloudOptions> {
        Some(self.remote.cloud().clone())
    }

    fn staging_root(&self) -> PathBuf {
        crate::storage::local_scratch(self.remote.url()).join("staging")
    }

    fn read(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        self.remote.get(rel)
    }

    fn write(&self, rel: &str, bytes: Vec<u8>) -> Result<()> {
        self.remote.put(rel, bytes)
    }

    fn create_new(&self, rel: &str, bytes: Vec<u8>) -> Result<bool> {
        self.remote.put_new(rel, bytes)
    }

    fn keeps_for(&self, m: &Manifest) -> bool {
        m.kept_since.is_some()
    }

    /// Whole: `_manifest.json` is the hint every reader starts from, and reading the log
    /// instead takes a listing and a request per entry.
    fn manifest_copy(&self, m: &Manifest) -> Vec<u8> {
        m.to_json()
    }

    fn list_aged(&self, rel_prefix: &str) -> Result<Vec<(String, u64, i64)>> {
        Ok(self
            .remote
            .list_aged(rel_prefix)?
            .into_iter()
            .filter_map(|(rel, bytes, age)| {
                Some((rel.strip_prefix(rel_prefix)?.to_string(), bytes, age))
            })
            .collect())
    }

    fn delete(&self, rels: Vec<String>) -> Result<()> {
        self.remote.delete_many(rels)
    }

    fn dead_writer_age(&self) -> Option<i64> {
        Some(stale_secs())
    }

    fn read_planned(&self, _path: &Path, rel: &str) -> Result<Option<Vec<u8>>> {
        self.remote.get(rel)
    }

    fn read_data_opt(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        self.remote.get(rel)
    }

    fn read_kept_opt(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        self.remote.get(&kept_rel(rel))
    }

    fn data_exists(&self, rel: &str) -> Result<bool> {
        Ok(self.remote.head(rel)?.is_some())
    }

    /// From the manifests alone (no HEAD per file): a version that keeps its files reads the
    /// kept copies, which outlive the commits that take them out of the tree. A version of an
    /// earlier pqdm reads a file from its kept copy if it was still in the version before the
    /// dataset began keeping (that commit copied them all), else from the tree while the
    /// current version lists it, else from `_pqdm/replaced/`.
    fn file_paths(
        &self,
        store: &Store,
        manifest: &Manifest,
        now: Arc<Manifest>,
        current: &dyn Fn() -> Arc<Manifest>,
    ) -> Vec<PathBuf> {
        if manifest.kept_since.is_some() {
            return manifest
                .files
                .iter()
                .map(|f| self.kept_path(&f.path))
                .collect();
        }
        let now = match manifest.version == now.version && !now.is_partial() {
            true => now,
            false => current(),
        };
        let live: BTreeSet<&str> = now.files.iter().map(|f| f.path.as_str()).collect();
        let kept_then: BTreeSet<String> = match now.kept_since {
            Some(since) if since > manifest.version => self
                .load_version(since - 1)
                .map(|m| m.files.into_iter().map(|f| f.path).collect())
                .unwrap_or_default(),
            _ => BTreeSet::new(),
        };
        manifest
            .files
            .iter()
            .map(|f| {
                if kept_then.contains(&f.path) {
                    self.kept_path(&f.path)
                } else if live.contains(f.path.as_str()) && now.kept_since.is_none() {
                    store.data_path(&f.path)
                } else if live.contains(f.path.as_str()) {
                    self.kept_path(&f.path)
                } else {
                    store.replaced_path(&f.path)
                }
            })
            .collect()
    }

    /// Version 0 alone counts: its creator may not have written the manifest yet (a log
    /// entry 0 only when pqdm made it: another engine's table is no pqdm dataset).
    fn try_exists(&self) -> Result<bool> {
        let r = &self.remote;
        Ok(r.head(MANIFEST_FILE)?.is_some()
            || r.head(&version_rel(0))?.is_some()
            || self.pqdm_made_entry_0()?)
    }

    fn stamp(&self) -> Option<Stamp> {
        None
    }

    /// `_manifest.json` is a hint: the newest version is the first number from there on with
    /// no commit point (found by GETs, never by listing): each log entry found is applied to
    /// the version before it (an entry carries the change and pqdm's record), a version file
    /// of an earlier pqdm is read whole. A hint can name a version `vacuum` has since removed
    /// (a writer died before rewriting it, or a slow one rewrote it late): then the history is
    /// listed, so the current version is never taken to be an older one and no version number
    /// is made twice. Without a hint (its creator died before writing it), the log is read.
    fn load_current(&self) -> Result<Option<Manifest>> {
        let r = &self.remote;
        // Whether the hint's version has a commit point (`None`: no hint was read).
        let (mut current, hint_committed) = match r.get(MANIFEST_FILE)? {
            Some(bytes) => match self.hinted(&bytes) {
                Ok((m, true)) => (m, Some(true)),
                Ok((m, false)) => {
                    let file = r.head(&version_rel(m.version))?.is_some();
                    (m, Some(file))
                }
                Err(e) => {
                    log::warn!("{}: {e}; reading the newest version instead", r.url());
                    (self.load_version(self.newest_listed()?)?, None)
                }
            },
            None => match r.get(&version_rel(0))? {
                Some(bytes) => (self.parse(&version_rel(0), &bytes)?, None),
                None if self.pqdm_made_entry_0()? => {
                    let newest = self.newest_listed()?;
                    (self.load_version(newest)?, None)
                }
                None => return Ok(None),
            },
        };
        let hinted = current.version;
        while let Some(next) = self.next_version(&current)? {
            current = next;
        }
        if hint_committed == Some(false) && current.version == hinted {
            let newest = self.newest_listed()?;
            if newest > hinted {
                log::warn!(
                    "{}: _manifest.json names version {hinted}, which is no longer kept; the history's newest is {newest}",
                    r.url()
                );
                current = self.load_version(newest)?;
            }
        }
        Ok(Some(current))
    }

    fn load_summary(&self) -> Option<Summary> {
        let r = &self.remote;
        let summary: Summary =
            serde_json::from_slice(&r.get(&meta_rel("summary.json")).ok()??).ok()?;
        // A writer may have committed a newer version and not yet rewritten the summary.
        let next = summary.version.checked_add(1)?;
        let newer = r.head(&crate::delta::entry_rel(next)).ok()?.is_some()
            || r.head(&version_rel(next)).ok()?.is_some();
        (!newer).then_some(summary)
    }

    fn version_files(&self) -> Result<Vec<u64>> {
        let mut out: Vec<u64> = self
            .remote
            .list(&meta_rel("versions"))?
            .iter()
            .filter_map(|(rel, _)| version_number(rel.rsplit('/').next()?))
            .collect();
        out.sort_unstable();
        Ok(out)
    }

    fn lock(&self) -> Result<CommitLock> {
        Staging::remove_dead(&self.staging_root());
        self.recover()?;
        Ok(CommitLock { file: None })
    }

    /// Nothing cheap to do: recovery waits for the next writer.
    fn try_recover(&self) {}

    /// Files go up once per write to `_pqdm/staging/<op>/`; each attempt then journals its
    /// target version, copies them to their keys (server side) and creates the version with a
    /// conditional put. A lost race deletes the copies and keeps the staged objects for the
    /// next attempt (an attempt whose file under the same name has other bytes uploads it
    /// again). `next.kept_since` is set here when the dataset did not keep its files yet (an
    /// earlier pqdm's): this commit gives every current file its kept copy.
    fn commit(
        &self,
        _lock: &CommitLock,
        next: &mut Manifest,
        staged: &[(PathBuf, String)],
        replaced: &[String],
        point: &CommitPoint,
    ) -> Result<()> {
        let r = &self.remote;
        let upgrade = next.kept_since.is_none();
        if upgrade {
            next.kept_since = Some(next.version);
        }
        let next = &*next;
        let op = if next.operation.op_id.is_empty() {
            format!("v{}", next.version)
        } else {
            next.operation.op_id.clone()
        };
        let staging_key = |rel: &str| meta_rel(&format!("staging/{op}/{rel}{STAGED_SUFFIX}"));
        self.upload_staged(next, staged, &staging_key)?;
        let journal_key = meta_rel(&format!("journal/{op}-{:020}.json", next.version));
        let journal = Journal {
            target_version: next.version,
            op_id: op.clone(),
            moved_in: staged.iter().map(|(_, rel)| rel.clone()).collect(),
            moved_out: replaced.to_vec(),
            kept: true,
        };
        r.put(
            &journal_key,
            serde_json::to_vec(&journal).expect("journal serialises"),
        )?;
        if upgrade {
            self.keep_all(next, staged, replaced)?;
        }
        // Each new file twice: in the tree for plain readers, kept for pqdm's readers.
        let copies: Vec<(String, String)> = staged
            .iter()
            .flat_map(|(_, rel)| {
                [
                    (staging_key(rel), rel.clone()),
                    (staging_key(rel), kept_rel(rel)),
                ]
            })
            .collect();
        r.copy_many(&copies)?;
        crate::failpoint::hit("commit.moved")?;
        // Fence: a writer stalled past the stale age may have had its journal and copies
        // removed by another writer's recovery; it must not then commit a version naming them.
        if r.head(&journal_key)?.is_none() {
            r.delete_many(placed_keys(staged))?;
            return Err(Error::Storage {
                location: format!("{}/{journal_key}", r.url()),
                message: "this commit stalled so long that another writer took it for dead and undid it; nothing was committed, write again".into(),
            });
        }
        let (point_bytes, bytes) = point.bytes(next);
        let made = self.put_point(&point.rel(next.version), &op, point_bytes.into_owned())?;
        if !matches!(made, Ok(true)) {
            // Another writer made this version first (or the store refused): the copies are
            // no one's. The staged objects stay for another attempt, unless this was an error.
            let mut gone: Vec<String> = placed_keys(staged).collect();
            if made.is_err() {
                gone.extend(staged.iter().map(|(_, rel)| staging_key(rel)));
            }
            gone.push(journal_key);
            r.delete_many(gone)?;
            made?;
            return Err(Error::conflict(
                r.url(),
                crate::error::Conflict::VersionTaken {
                    version: next.version,
                },
            ));
        }
        // The commit point has passed: nothing below may fail the commit.
        let tidy = || -> Result<()> {
            crate::failpoint::hit("commit.tidy")?;
            r.put(MANIFEST_FILE, bytes.into_owned())?;
            self.write_summary(next)?;
            self.finish(&journal)?;
            let done: Vec<String> = staged.iter().map(|(_, rel)| staging_key(rel)).collect();
            {
                let mut uploaded = self.uploaded.lock().unwrap_or_else(|e| e.into_inner());
                for key in &done {
                    uploaded.remove(key);
                }
            }
            r.delete_many(done.into_iter().chain([journal_key]))
        };
        if let Err(e) = tidy() {
            log::warn!(
                "version {} of {} is committed; tidying up after it failed ({e}); a later writer finishes it",
                next.version,
                r.url()
            );
        }
        Ok(())
    }

    fn discard_uploads(&self, op_id: &str) -> Result<()> {
        let prefix = meta_rel(&format!("staging/{op_id}/"));
        let mut uploaded = self.uploaded.lock().unwrap_or_else(|e| e.into_inner());
        let keys: Vec<String> = uploaded
            .keys()
            .filter(|k| k.starts_with(&prefix))
            .cloned()
            .collect();
        for key in &keys {
            uploaded.remove(key);
        }
        drop(uploaded);
        self.remote.delete_many(keys)
    }

    /// Never: no lock keeps another writer from committing version 1 meanwhile, so the empty
    /// dataset stays.
    fn remove_if_empty(&self) -> Result<bool> {
        Ok(false)
    }

    /// Always: `_manifest.json` is only a hint here.
    fn manifest_copy_current(&self, _m: &Manifest) -> bool {
        true
    }

    fn manifest_copy_version(&self) -> Option<u64> {
        None
    }

    fn rewrite_copies(&self, _lock: &CommitLock, _m: &Manifest) -> Result<()> {
        Ok(())
    }

    /// `_pqdm/replaced/` of earlier pqdm, and the kept copies the records under
    /// `_pqdm/removed/` name.
    fn replaced_files(&self) -> Result<Vec<(String, u64, i64)>> {
        let root = meta_rel("replaced/");
        let mut out: Vec<(String, u64, i64)> = self
            .remote
            .list_aged(&root)?
            .into_iter()
            .filter_map(|(rel, bytes, age)| {
                let rel = rel.strip_prefix(&root)?.strip_suffix(REPLACED_SUFFIX)?;
                Some((rel.to_string(), bytes, age))
            })
            .collect();
        out.extend(self.removed_files()?);
        out.sort();
        Ok(out)
    }

    /// In bulk; each removed-files record keeps the files not deleted yet, an emptied one goes.
    fn delete_replaced(&self, _lock: &CommitLock, rels: &[String]) -> Result<()> {
        let r = &self.remote;
        let gone: HashSet<&str> = rels.iter().map(String::as_str).collect();
        r.delete_many(
            rels.iter()
                .flat_map(|rel| [replaced_rel(rel), kept_rel(rel)]),
        )?;
        for (key, mut record) in self.removed_records()? {
            let before = record.files.len();
            record.files.retain(|rel| !gone.contains(rel.as_str()));
            if record.files.is_empty() {
                r.delete(&key)?;
            } else if record.files.len() != before {
                r.put(
                    &key,
                    serde_json::to_vec(&record).expect("record serialises"),
                )?;
            }
        }
        Ok(())
    }

    /// In bulk, after pointing `_manifest.json` at the current version so that no reader's
    /// search for the current version starts from a deleted one.
    fn delete_versions(
        &self,
        _lock: &CommitLock,
        current: &Manifest,
        versions: &[u64],
    ) -> Result<()> {
        let r = &self.remote;
        r.put(MANIFEST_FILE, self.manifest_copy(current))?;
        r.delete_many(
            versions
                .iter()
                .filter(|v| **v < current.version)
                .map(|v| version_rel(*v)),
        )
    }

    fn quarantine(&self, _lock: &CommitLock, rel: &str) -> Result<PathBuf> {
        let to = meta_rel(&format!("orphans/{rel}.orphan"));
        self.remote.copy(rel, &to)?;
        self.remote.delete(rel)?;
        Ok(self.base.join(to))
    }

    /// One listing of `_pqdm/files/`.
    fn kept_copies(&self) -> Result<Option<BTreeMap<String, u64>>> {
        let root = meta_rel(&format!("{FILES_DIR}/"));
        Ok(Some(
            self.remote
                .list(&root)?
                .into_iter()
                .filter_map(|(key, bytes)| {
                    let rel = key.strip_prefix(&root)?.strip_suffix(KEPT_SUFFIX)?;
                    Some((rel.to_string(), bytes))
                })
                .collect(),
        ))
    }

    fn copies<'a>(&'a self, m: &Manifest, tree: &'a [String]) -> Result<Box<dyn FileCopies + 'a>> {
        let kept = match m.kept_since {
            Some(_) => self.kept_copies()?,
            None => None,
        };
        Ok(Box::new(ObjectCopies {
            store: self,
            kept,
            tree: tree.iter().map(String::as_str).collect(),
        }))
    }

    /// Two copies, not links: checked by [`LogStore::kept_copies`].
    fn keeps_files(&self) -> bool {
        false
    }

    fn restore_links(&self, _lock: &CommitLock, rel: &str) -> Result<bool> {
        let r = &self.remote;
        let kept = kept_rel(rel);
        match (r.head(rel)?.is_some(), r.head(&kept)?.is_some()) {
            (true, true) => Ok(true),
            (true, false) => r.copy(rel, &kept).map(|_| true),
            (false, true) => r.copy(&kept, rel).map(|_| true),
            (false, false) => Ok(false),
        }
    }

    /// Staged objects older than [`stale_secs`].
    fn remove_stale_staging(&self, _lock: &CommitLock) -> Result<u64> {
        let stale: Vec<(String, u64, i64)> = self
            .remote
            .list_aged(&meta_rel("staging/"))?
            .into_iter()
            .filter(|(_, _, age)| *age >= stale_secs())
            .collect();
        let freed = stale.iter().map(|(_, size, _)| size).sum();
        self.remote
            .delete_many(stale.into_iter().map(|(key, _, _)| key))?;
        Ok(freed)
    }
}
