//! [`LocalLogStore`]: a dataset in a local folder.
//!
//! **Atomicity rule:** a commit, under the dataset's lock file (`_pqdm/lock`):
//! 1. writes a journal (`_pqdm/journal/<version>.json`) naming the files it adds and removes;
//! 2. moves the staged files (`*.parquet.staged`, invisible to readers) to `_pqdm/files/` and
//!    links them into the hive tree, and syncs the filesystem;
//! 3. creates `_pqdm/versions/<N>.json` if absent (a hard link of a synced temporary file):
//!    **the commit point**. The newest version file is the current version; no version file is
//!    ever overwritten, whatever a lock or a stale `_manifest.json` says;
//! 4. tidies up: rewrites `_manifest.json` and `_pqdm/summary.json`, unlinks the replaced
//!    files from the tree, deletes the journal. A failure here is a warning, never a failed
//!    commit: the next writer (or reader) finishes it.
//!
//! A crash before step 3 is rolled back by the next writer (the journal's added files removed),
//! a crash after it is rolled forward (only when the version's operation id is the journal's).
//! The tree's file and its kept link `_pqdm/files/<path>.kept` are one inode: a commit that
//! replaces a file unlinks it from the tree, and scans planned before keep reading the link.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use polars::prelude::cloud::CloudOptions;

use super::{
    CommitLock, CommitPoint, FileCopies, Journal, LogStore, Staging, Stamp, Store, version_number,
};
use crate::error::{Error, Result};
use crate::localfs::{
    link_or_copy, mkdirs, move_file, prune_empty_dirs, read_opt, rel_string, remove_file_and_dirs,
    sync_dir, sync_filesystem, sync_written, walk, write_atomic,
};
use crate::location::Location;
use crate::manifest::{
    FILES_DIR, KEPT_SUFFIX, MANIFEST_FILE, META_DIR, Manifest, REPLACED_SUFFIX, Summary,
};

/// A dataset in a local folder (see the module's atomicity rule).
#[derive(Debug)]
pub struct LocalLogStore {
    base: PathBuf,
    /// Seen to keep its files under `_pqdm/files/` (never unset: a dataset that does always will).
    keeps: AtomicBool,
}

impl LocalLogStore {
    /// The store of the dataset in folder `base` (which need not exist yet).
    pub fn new(base: PathBuf) -> LocalLogStore {
        LocalLogStore {
            base,
            keeps: AtomicBool::new(false),
        }
    }

    fn meta(&self, sub: &str) -> PathBuf {
        self.base.join(META_DIR).join(sub)
    }

    fn data_path(&self, rel: &str) -> PathBuf {
        self.base.join(rel)
    }

    fn kept_path(&self, rel: &str) -> PathBuf {
        self.base.join(super::kept_rel(rel))
    }

    fn replaced_path(&self, rel: &str) -> PathBuf {
        self.base.join(super::replaced_rel(rel))
    }

    fn version_path(&self, version: u64) -> PathBuf {
        self.base.join(super::version_rel(version))
    }

    fn load_version(&self, version: u64) -> Result<Manifest> {
        super::load_version(self, version, None)
    }

    /// Where a file of any version is now: kept under `_pqdm/files/`, in the tree, or among
    /// the replaced files of earlier pqdm.
    fn locate(&self, rel: &str) -> PathBuf {
        let kept = self.kept_path(rel);
        if kept.exists() {
            return kept;
        }
        let live = self.data_path(rel);
        if live.exists() {
            return live;
        }
        let legacy = self.replaced_path(rel);
        if legacy.exists() { legacy } else { live }
    }

    /// The newest version number named in folder `dir` by `number` (`None`: none, or no folder).
    fn newest_in(dir: &Path, number: fn(&str) -> Option<u64>) -> Result<Option<u64>> {
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(dir)(e)),
        };
        let mut newest: Option<u64> = None;
        for entry in entries {
            let entry = entry.map_err(Error::io(dir))?;
            newest = newest.max(number(&entry.file_name().to_string_lossy()));
        }
        Ok(newest)
    }

    /// The current version and its commit point: the newest entry of `_delta_log/` or, for a
    /// version an earlier pqdm committed, of `_pqdm/versions/` (where both hold the newest
    /// version, its version file). Log entries count only in a pqdm dataset (`_pqdm/` exists):
    /// another engine's table is no pqdm version.
    fn newest_commit(&self) -> Result<Option<(u64, PathBuf)>> {
        let file = Self::newest_in(&self.meta("versions"), version_number)?;
        let entry = match self.base.join(META_DIR).is_dir() {
            true => Self::newest_in(
                &self.base.join(crate::delta::LOG_DIR),
                crate::delta::entry_version,
            )?,
            false => None,
        };
        Ok(match (file, entry) {
            (Some(f), e) if e.is_none_or(|e| f >= e) => Some((f, self.version_path(f))),
            (_, Some(e)) => Some((e, self.base.join(crate::delta::entry_rel(e)))),
            _ => None,
        })
    }

    fn write_summary(&self, m: &Manifest) -> Result<()> {
        let bytes = serde_json::to_vec(&m.summary()).expect("summary serialises");
        write_atomic(&self.meta("summary.json"), &bytes)
    }

    /// Reads a journal left by a writer that died, checking every path it names (a damaged or
    /// planted journal is an error naming it, and nothing is touched). `None` for a file that
    /// is not a journal (a temporary file of a journal being written): removed.
    fn read_journal(&self, path: &Path) -> Result<Option<Journal>> {
        let bytes = fs::read(path).map_err(Error::io(path))?;
        let journal: Journal = match serde_json::from_slice(&bytes) {
            Ok(j) => j,
            Err(e) => {
                if path.extension().is_some_and(|e| e == "tmp") {
                    let _ = fs::remove_file(path);
                    return Ok(None);
                }
                return Err(Error::Dataset {
                    path: path.to_path_buf(),
                    message: format!(
                        "is not a readable journal ({e}); nothing was rolled back or forward. Move it away once no writer runs"
                    ),
                });
            }
        };
        for rel in journal.moved_in.iter().chain(&journal.moved_out) {
            crate::relpath::check_no_escape(&self.base, rel, path)?;
        }
        Ok(Some(journal))
    }

    /// Whether version `version` exists and was made by operation `op_id`.
    fn made_by(&self, version: u64, op_id: &str) -> bool {
        super::made_by(self, version, op_id).unwrap_or(false)
    }

    /// Rolls back or forward what crashed writers left (journals, staging folders), and
    /// rewrites `_manifest.json` and the summary where they are not the current version's.
    fn recover(&self, _lock: &CommitLock) -> Result<()> {
        let journal_dir = self.meta("journal");
        let mut journals = vec![];
        walk(&journal_dir, &mut |p| journals.push(p.to_path_buf()))?;
        journals.sort();
        let mut checked = vec![];
        for path in journals {
            if let Some(journal) = self.read_journal(&path)? {
                checked.push((path, journal));
            }
        }
        // The current manifest is parsed only when a journal needs it (or a copy is stale):
        // every commit takes the lock, and recovery must not cost a manifest parse each time.
        let current = match checked.is_empty() {
            true => None,
            // A log that cannot give the current version (damaged by hand): a journal whose
            // version was not made is still rolled back (its files, named by its operation,
            // are in no version), and `verify` reports the log.
            false => self.load_current().unwrap_or_else(|e| {
                log::warn!("recovery: the current version cannot be read ({e})");
                None
            }),
        };
        if !checked.is_empty() {
            let live: HashSet<&str> = current
                .iter()
                .flat_map(|m| m.files.iter().map(|f| f.path.as_str()))
                .collect();
            for (path, journal) in &checked {
                if self.made_by(journal.target_version, &journal.op_id) {
                    log::warn!(
                        "recovery: finishing commit of version {}",
                        journal.target_version
                    );
                    self.unlink_replaced(&journal.moved_out)?;
                } else {
                    log::warn!(
                        "recovery: rolling back uncommitted version {}",
                        journal.target_version
                    );
                    for rel in journal
                        .moved_in
                        .iter()
                        .filter(|r| !live.contains(r.as_str()))
                    {
                        remove_file_and_dirs(&self.data_path(rel), &self.base)?;
                        remove_file_and_dirs(&self.kept_path(rel), &self.meta(FILES_DIR))?;
                    }
                }
                crate::failpoint::hit("recover.journal")?;
                fs::remove_file(path).map_err(Error::io(path))?;
            }
        }
        if let Err(e) = self.refresh_copies(current.as_ref()) {
            // Copies for other readers: `verify` reports them, and the next commit rewrites them.
            log::warn!("recovery: _manifest.json and the summary are not rewritten ({e})");
        }
        // Temporary commit points of writers that died before their commit point.
        for dir in [self.meta("versions"), self.base.join(crate::delta::LOG_DIR)] {
            for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
                if crate::localfs::is_temporary(&entry.file_name().to_string_lossy()) {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
        // A log folder left empty by a first commit that died before its entry: gone, so the
        // base looks like no Delta table (only an empty folder is removed).
        let _ = fs::remove_dir(self.base.join(crate::delta::LOG_DIR));
        Staging::remove_dead(&self.staging_root());
        Ok(())
    }

    /// Rewrites `_manifest.json` and `_pqdm/summary.json` when they are not the current
    /// version's (a crash or failure after a commit point, a hand edit, a restored backup).
    /// Compared by size and age, so a clean dataset costs a listing and a few `stat`s; the
    /// version is parsed only when something is rewritten (`known` spares that when it is it).
    fn refresh_copies(&self, known: Option<&Manifest>) -> Result<()> {
        let Some((newest, point)) = self.newest_commit()? else {
            return Ok(());
        };
        let copy = self.base.join(MANIFEST_FILE);
        // A version file is the manifest itself (same size); a log entry is not.
        let same_size = point.starts_with(self.meta("versions"));
        let copy_stale = match (fs::metadata(&point), fs::metadata(&copy)) {
            (Ok(v), Ok(c)) => {
                (same_size && v.len() != c.len()) || c.modified().ok() < v.modified().ok()
            }
            (Ok(_), Err(_)) => true,
            (Err(_), _) => false,
        };
        // A copy the entry records the hash of is the version's, whatever its age.
        let copy_stale = copy_stale
            && !(point.starts_with(self.base.join(crate::delta::LOG_DIR))
                && read_opt(&point)?
                    .zip(read_opt(&copy)?)
                    .is_some_and(|(entry, bytes)| super::copy_is_recorded(&entry, &bytes)));
        let summary_stale = fs::read(self.meta("summary.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<Summary>(&b).ok())
            .is_none_or(|s| s.version != newest);
        if !(copy_stale || summary_stale) {
            return Ok(());
        }
        match known {
            Some(m) if m.version == newest => self.write_copies(m),
            _ => match self.load_current()? {
                Some(m) => self.write_copies(&m),
                None => Ok(()),
            },
        }
    }

    /// Writes `_manifest.json` and the summary of `m`: the copy is `m` whole where an earlier
    /// pqdm's version file is the commit point (the copy is that file), else
    /// [`Manifest::copy_json`].
    fn write_copies(&self, m: &Manifest) -> Result<()> {
        let bytes = match self.version_path(m.version).is_file() {
            true => m.to_json(),
            false => m.copy_json(),
        };
        write_atomic(&self.base.join(MANIFEST_FILE), &bytes)?;
        self.write_summary(m)
    }

    /// Gives the tree's file `rel` its kept link, if it has none (a file adopted in place, or
    /// committed by an earlier pqdm).
    fn keep(&self, rel: &str) -> Result<()> {
        let kept = self.kept_path(rel);
        if kept.exists() {
            return Ok(());
        }
        link_or_copy(&self.data_path(rel), &kept)
    }

    /// A commit up to and including its commit point (see the module's rule).
    fn commit_to_point(
        &self,
        next: &Manifest,
        point: (&str, &[u8]),
        staged: &[(PathBuf, String)],
        journal_dir: &Path,
    ) -> Result<()> {
        let started = std::time::Instant::now();
        sync_dir(journal_dir)?;
        crate::failpoint::hit("commit.journaled")?;
        let upgrade = !self.meta(FILES_DIR).is_dir();
        // Two links per file, in parallel after the first: a write into many partitions is
        // mostly folder creation, which the filesystem does concurrently.
        let place = |(from, rel): &(PathBuf, String)| {
            let kept = self.kept_path(rel);
            move_file(from, &kept)?;
            link_or_copy(&kept, &self.data_path(rel))
        };
        if let Some((first, rest)) = staged.split_first() {
            place(first)?;
            crate::failpoint::hit("commit.moved_first")?;
            use rayon::prelude::*;
            rest.par_iter().try_for_each(place)?;
        }
        let staged_rels: HashSet<&str> = staged.iter().map(|(_, rel)| rel.as_str()).collect();
        // Both names of every file placed or kept by this commit.
        let mut written: Vec<PathBuf> = vec![];
        for f in &next.files {
            if staged_rels.contains(f.path.as_str()) {
                continue;
            }
            if f.added_in == next.version {
                self.keep(&f.path)?;
                written.push(self.kept_path(&f.path));
            } else if upgrade && let Err(e) = self.keep(&f.path) {
                // A file the dataset lost before this pqdm; `verify` reports it as missing.
                log::warn!("{e}");
            }
        }
        mkdirs(&self.meta(FILES_DIR))?;
        log::debug!(
            "version {}: {} files linked in {} ms",
            next.version,
            staged.len(),
            started.elapsed().as_millis()
        );
        // The new files (contents and names) must be durable before the version that lists
        // them. An upgrade links every file of the dataset: one `syncfs`.
        for (_, rel) in staged {
            written.push(self.kept_path(rel));
            written.push(self.data_path(rel));
        }
        match upgrade {
            true => sync_filesystem(&self.base)?,
            false => sync_written(&self.base, &written)?,
        }
        log::debug!(
            "version {}: synced at {} ms",
            next.version,
            started.elapsed().as_millis()
        );
        crate::failpoint::hit("commit.moved")?;
        self.create_point(next.version, point)
    }

    /// Creates the commit point of version `number` (`point`: its relative path and bytes),
    /// failing with [`Error::Conflict`] if it exists (see [`create_new_file`]).
    fn create_point(&self, number: u64, (rel, bytes): (&str, &[u8])) -> Result<()> {
        let path = self.base.join(rel);
        if let Some(parent) = path.parent() {
            mkdirs(parent)?;
        }
        if !create_new_file(&path, bytes, || {
            crate::failpoint::hit("commit.version_written")
        })? {
            return Err(Error::conflict(
                self.base.display(),
                crate::error::Conflict::VersionTaken { version: number },
            ));
        }
        Ok(())
    }

    /// After the commit point of `next`: the copies for other readers, the replaced files out
    /// of the tree, the journal deleted.
    fn finish(
        &self,
        next: &Manifest,
        bytes: &[u8],
        replaced: &[String],
        journal: &Path,
    ) -> Result<()> {
        crate::failpoint::hit("commit.tidy")?;
        write_atomic(&self.base.join(MANIFEST_FILE), bytes)?;
        self.write_summary(next)?;
        self.unlink_replaced(replaced)?;
        fs::remove_file(journal).map_err(Error::io(journal))
    }

    /// Takes replaced files out of the tree; each stays under `_pqdm/files/` for older versions.
    /// In parallel: a file whose only other name went (a dataset copied without its hard
    /// links) frees its blocks, which the filesystem does for several files at once (1,005
    /// files of 640 KB: 340 ms one by one).
    fn unlink_replaced(&self, replaced: &[String]) -> Result<()> {
        use rayon::prelude::*;
        replaced.par_iter().try_for_each(|rel| {
            let live = self.data_path(rel);
            if !live.exists() {
                return Ok(());
            }
            self.keep(rel)?;
            // The last file out of a folder removes it, whichever thread that is.
            remove_file_and_dirs(&live, &self.base)
        })
    }
}

/// Creates `path` with `bytes` unless it exists (then `Ok(false)`): a synced temporary file
/// beside it, hard-linked to its name (atomic, never overwrites), then the folder synced.
/// `before_link` runs between the two (a failpoint).
fn create_new_file(
    path: &Path,
    bytes: &[u8],
    before_link: impl FnOnce() -> Result<()>,
) -> Result<bool> {
    let dir = path.parent().expect("a file under the base");
    mkdirs(dir)?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(
        "_{name}.{}.{}.tmp",
        std::process::id(),
        crate::metrics::new_op_id()
    ));
    {
        let mut f = File::create(&tmp).map_err(Error::io(&tmp))?;
        f.write_all(bytes).map_err(Error::io(&tmp))?;
        f.sync_all().map_err(Error::io(&tmp))?;
    }
    if let Err(e) = before_link() {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(Error::io(path)(e)),
    }
    // Created: a failed sync of the folder is reported, not a failure.
    if let Err(e) = sync_dir(dir) {
        log::warn!("{} is created, but {e}", path.display());
    }
    Ok(true)
}

/// A local version's files: read through their kept links, which a commit running meanwhile
/// does not take away; the tree's link is checked beside it.
struct LocalCopies<'a> {
    store: &'a LocalLogStore,
    keeps: bool,
}

impl FileCopies for LocalCopies<'_> {
    fn read(&self, rel: &str, checksum: &str) -> Result<(Option<Vec<u8>>, bool)> {
        let tree = self.store.data_path(rel);
        if !self.keeps {
            return Ok((read_opt(&tree)?, false));
        }
        let kept = self.store.kept_path(rel);
        let damaged = separate_copy_differs(&kept, &tree, checksum)?;
        let bytes = match fs::read(&kept).or_else(|_| fs::read(&tree)) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io(&tree)(e)),
        };
        Ok((bytes, damaged))
    }

    fn both_present(&self, rel: &str) -> bool {
        !self.keeps || (self.store.data_path(rel).exists() && self.store.kept_path(rel).exists())
    }
}

/// Whether the tree's file `tree` is a separate copy of the kept file `kept` (another inode:
/// a copy broke their hard link) whose bytes no longer have the recorded `checksum`.
fn separate_copy_differs(kept: &Path, tree: &Path, checksum: &str) -> Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let (Ok(k), Ok(t)) = (fs::metadata(kept), fs::metadata(tree)) else {
        return Ok(false);
    };
    if (k.dev(), k.ino()) == (t.dev(), t.ino()) {
        return Ok(false);
    }
    let bytes = fs::read(tree).map_err(Error::io(tree))?;
    Ok(blake3::hash(&bytes).to_hex().as_str() != checksum)
}

impl LogStore for LocalLogStore {
    fn base(&self) -> &Path {
        &self.base
    }

    fn location(&self) -> Location {
        Location::Local(self.base.clone())
    }

    fn cloud_options(&self) -> Option<CloudOptions> {
        None
    }

    fn staging_root(&self) -> PathBuf {
        self.meta("staging")
    }

    fn read(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        read_opt(&self.base.join(rel))
    }

    fn write(&self, rel: &str, bytes: Vec<u8>) -> Result<()> {
        let path = self.base.join(rel);
        if let Some(parent) = path.parent() {
            mkdirs(parent)?;
        }
        write_atomic(&path, &bytes)
    }

    fn create_new(&self, rel: &str, bytes: Vec<u8>) -> Result<bool> {
        create_new_file(&self.base.join(rel), &bytes, || Ok(()))
    }

    fn keeps_for(&self, _m: &Manifest) -> bool {
        self.keeps_files()
    }

    fn list_aged(&self, rel_prefix: &str) -> Result<Vec<(String, u64, i64)>> {
        use std::os::unix::fs::MetadataExt;
        let now = chrono::Utc::now().timestamp();
        let root = self.base.join(rel_prefix);
        let mut out = vec![];
        walk(&root, &mut |p| {
            if let (Ok(rel), Ok(m)) = (p.strip_prefix(&root), fs::symlink_metadata(p)) {
                out.push((rel_string(rel), m.len(), now - m.mtime()));
            }
        })?;
        Ok(out)
    }

    fn delete(&self, rels: Vec<String>) -> Result<()> {
        for rel in rels {
            let path = self.base.join(&rel);
            if let Err(e) = fs::remove_file(&path)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                return Err(Error::io(&path)(e));
            }
        }
        Ok(())
    }

    fn dead_writer_age(&self) -> Option<i64> {
        None
    }

    fn read_planned(&self, path: &Path, _rel: &str) -> Result<Option<Vec<u8>>> {
        read_opt(path)
    }

    fn read_data_opt(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        read_opt(&self.data_path(rel))
    }

    fn read_kept_opt(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        self.read_data_opt(rel)
    }

    fn data_exists(&self, rel: &str) -> Result<bool> {
        Ok(self.data_path(rel).exists())
    }

    fn file_paths(
        &self,
        _store: &Store,
        manifest: &Manifest,
        now: Arc<Manifest>,
        _current: &dyn Fn() -> Arc<Manifest>,
    ) -> Vec<PathBuf> {
        let at = |f: &crate::manifest::FileEntry| match (
            manifest.version == now.version,
            self.keeps_files(),
        ) {
            (true, true) => self.kept_path(&f.path),
            (true, false) => self.data_path(&f.path),
            (false, _) => self.locate(&f.path),
        };
        manifest.files.iter().map(at).collect()
    }

    fn try_exists(&self) -> Result<bool> {
        Ok(self.base.join(MANIFEST_FILE).is_file() || self.newest_commit()?.is_some())
    }

    /// Commit points are created once and never rewritten, so an unchanged stamp of the
    /// newest one means an unchanged current version.
    fn stamp(&self) -> Option<Stamp> {
        use std::os::unix::fs::MetadataExt;
        let (version, path) = self.newest_commit().ok()??;
        let m = fs::metadata(path).ok()?;
        Some((
            m.dev(),
            m.ino(),
            version,
            m.mtime_nsec() + m.mtime() * 1_000_000_000,
        ))
    }

    /// The current version is the newest commit point. `_manifest.json` holds it whole once
    /// its committer has rewritten it (it is read, not the log, when it names that version);
    /// else it is rebuilt from the log (a writer died after its commit point). A dataset with
    /// no commit point at all is read from `_manifest.json` (a copy by hand).
    fn load_current(&self) -> Result<Option<Manifest>> {
        match self.load_head()? {
            Some(m) if m.is_partial() => super::version_from_log(self, m.version).map(Some),
            m => Ok(m),
        }
    }

    /// `_manifest.json` where the newest commit point is the log entry recording it (no
    /// file list once the log records every version), else the newest version read whole.
    fn load_head(&self) -> Result<Option<Manifest>> {
        let path = self.base.join(MANIFEST_FILE);
        if let Some((version, point)) = self.newest_commit()? {
            if point.starts_with(self.meta("versions")) {
                return self.load_version(version).map(Some);
            }
            if let Some(bytes) = read_opt(&path)?
                && let Some(entry) = read_opt(&point)?
                && super::copy_is_recorded(&entry, &bytes)
                && let Ok(m) = Manifest::parse(&self.base, &path, &bytes)
                && m.version == version
            {
                return Ok(Some(m));
            }
            return super::version_from_log(self, version).map(Some);
        }
        match read_opt(&path)? {
            Some(bytes) => Manifest::parse(&self.base, &path, &bytes).map(Some),
            None => Ok(None),
        }
    }

    fn load_summary(&self) -> Option<Summary> {
        self.try_recover();
        let summary: Summary =
            serde_json::from_slice(&fs::read(self.meta("summary.json")).ok()?).ok()?;
        // Its rewrite after the newest commit may have failed: then the manifest answers.
        let (newest, _) = self.newest_commit().ok()??;
        (summary.version == newest).then_some(summary)
    }

    fn version_files(&self) -> Result<Vec<u64>> {
        let mut out = vec![];
        walk(&self.meta("versions"), &mut |p| {
            out.extend(
                p.file_name()
                    .and_then(|n| n.to_str())
                    .and_then(version_number),
            );
        })?;
        out.sort_unstable();
        Ok(out)
    }

    fn lock(&self) -> Result<CommitLock> {
        let dir = self.base.join(META_DIR);
        mkdirs(&dir)?;
        let file = crate::lock::FileLock::acquire(&dir.join("lock"), "commit")?;
        let lock = CommitLock { file: Some(file) };
        self.recover(&lock)?;
        Ok(lock)
    }

    /// Cheap when there is nothing to do (one folder listing).
    fn try_recover(&self) {
        let pending = fs::read_dir(self.meta("journal")).is_ok_and(|mut d| d.next().is_some());
        if !pending {
            return;
        }
        let path = self.base.join(META_DIR).join("lock");
        if !path.is_file() {
            return;
        }
        if let Ok(Some(file)) = crate::lock::FileLock::try_acquire(&path, "recover") {
            let lock = CommitLock { file: Some(file) };
            if let Err(e) = self.recover(&lock) {
                log::warn!("recovery of {} failed: {e}", self.base.display());
            }
        }
    }

    fn commit(
        &self,
        lock: &CommitLock,
        next: &mut Manifest,
        staged: &[(PathBuf, String)],
        replaced: &[String],
        point: &CommitPoint,
    ) -> Result<()> {
        let journal_dir = self.meta("journal");
        mkdirs(&journal_dir)?;
        let journal_path = journal_dir.join(format!("{:020}.json", next.version));
        let journal = Journal {
            target_version: next.version,
            op_id: next.operation.op_id.clone(),
            moved_in: staged.iter().map(|(_, rel)| rel.clone()).collect(),
            moved_out: replaced.to_vec(),
            kept: false,
        };
        write_atomic(
            &journal_path,
            &serde_json::to_vec(&journal).expect("journal serialises"),
        )?;
        let (point_bytes, bytes) = point.bytes(next);
        log::debug!("version {}: journaled", next.version);
        let rel = point.rel(next.version);
        let at = (rel.as_str(), &point_bytes[..]);
        if let Err(e) = self.commit_to_point(next, at, staged, &journal_dir) {
            // Nothing is committed: undo what the journal names now, as recovery would.
            if let Err(undo) = self.recover(lock) {
                log::warn!(
                    "undoing the failed commit of version {} failed ({undo}); the next writer undoes it",
                    next.version
                );
            }
            return Err(e);
        }
        // The commit point has passed: nothing below may fail the commit.
        log::debug!("version {}: committed", next.version);
        if let Err(e) = self.finish(next, &bytes, replaced, &journal_path) {
            log::warn!(
                "version {} of {} is committed; tidying up after it failed ({e}); the next writer finishes it",
                next.version,
                self.base.display()
            );
        }
        Ok(())
    }

    fn discard_uploads(&self, _op_id: &str) -> Result<()> {
        Ok(())
    }

    /// Its manifest, its metadata folder and the base folder if that is then empty, all under
    /// the lock (whose file goes last; writers waiting on it open it again).
    fn remove_if_empty(&self) -> Result<bool> {
        let lock = self.lock()?;
        let Some(m) = self.load_current()? else {
            return Ok(false);
        };
        if m.version != 0
            || !m.files.is_empty()
            || self.newest_commit()?.is_some_and(|(v, _)| v != 0)
            || !crate::foreign::list_files(&self.location())?.is_empty()
        {
            return Ok(false);
        }
        let staging = self.staging_root();
        if fs::read_dir(&staging).is_ok_and(|mut d| d.next().is_some()) {
            // Another writer is staging its first write here: leave the dataset to it.
            return Ok(false);
        }
        for path in [
            self.base.join(crate::delta::entry_rel(0)),
            self.base.join(MANIFEST_FILE),
            self.version_path(0),
            self.meta("summary.json"),
        ] {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&path)(e)),
            }
        }
        for sub in ["versions", "journal", "staging", FILES_DIR] {
            let _ = fs::remove_dir(self.meta(sub));
        }
        if let Some(file) = &lock.file {
            file.remove_file()?;
        }
        let _ = fs::remove_dir(self.base.join(META_DIR));
        let _ = fs::remove_dir(self.base.join(crate::delta::LOG_DIR));
        drop(lock);
        let _ = fs::remove_dir(&self.base);
        Ok(true)
    }

    /// Compared with the version file where an earlier pqdm wrote one, else with `m`
    /// serialised (`m` read from the log, not from the copy).
    fn manifest_copy_current(&self, m: &Manifest) -> bool {
        let copy = fs::read(self.base.join(MANIFEST_FILE));
        let entry = read_opt(&self.base.join(crate::delta::entry_rel(m.version)));
        match (fs::read(self.version_path(m.version)), entry) {
            (Ok(version), _) => copy.is_ok_and(|c| c == version),
            (Err(_), Ok(Some(entry)))
                if crate::delta::record::recorded_manifest_hash(&entry).is_some() =>
            {
                copy.is_ok_and(|c| super::copy_is_recorded(&entry, &c))
            }
            _ => copy.is_ok_and(|c| c == m.copy_json()),
        }
    }

    fn manifest_copy_version(&self) -> Option<u64> {
        let bytes = fs::read(self.base.join(MANIFEST_FILE)).ok()?;
        serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()?
            .get("version")?
            .as_u64()
    }

    fn rewrite_copies(&self, _lock: &CommitLock, m: &Manifest) -> Result<()> {
        self.write_copies(m)
    }

    /// `_pqdm/files/` entries the tree no longer holds (their age is their status-change
    /// time, which unlinking the tree's link sets) and `_pqdm/replaced/` of earlier pqdm.
    fn replaced_files(&self) -> Result<Vec<(String, u64, i64)>> {
        use std::os::unix::fs::MetadataExt;
        let now = chrono::Utc::now().timestamp();
        let mut out = vec![];
        let kept = self.meta(FILES_DIR);
        walk(&kept, &mut |p| {
            if let Ok(rel) = p.strip_prefix(&kept)
                && let Some(rel) = rel_string(rel)
                    .strip_suffix(KEPT_SUFFIX)
                    .map(str::to_string)
                && !self.data_path(&rel).exists()
                && let Ok(m) = fs::symlink_metadata(p)
            {
                out.push((rel, m.len(), now - m.ctime()));
            }
        })?;
        let legacy = self.meta("replaced");
        walk(&legacy, &mut |p| {
            if let Ok(rel) = p.strip_prefix(&legacy)
                && let Some(rel) = rel_string(rel).strip_suffix(REPLACED_SUFFIX)
                && let Ok(m) = fs::symlink_metadata(p)
            {
                out.push((rel.to_string(), m.len(), now - m.ctime()));
            }
        })?;
        out.sort();
        Ok(out)
    }

    fn delete_replaced(&self, _lock: &CommitLock, rels: &[String]) -> Result<()> {
        for rel in rels {
            if self.data_path(rel).exists() {
                continue;
            }
            remove_file_and_dirs(&self.kept_path(rel), &self.meta(FILES_DIR))?;
            remove_file_and_dirs(&self.replaced_path(rel), &self.meta("replaced"))?;
        }
        Ok(())
    }

    fn delete_versions(
        &self,
        _lock: &CommitLock,
        current: &Manifest,
        versions: &[u64],
    ) -> Result<()> {
        for v in versions.iter().copied().filter(|v| *v < current.version) {
            let path = self.version_path(v);
            match fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::io(&path)(e));
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn quarantine(&self, _lock: &CommitLock, rel: &str) -> Result<PathBuf> {
        let to = self.meta("orphans").join(format!("{rel}.orphan"));
        let from = self.data_path(rel);
        move_file(&from, &to)?;
        if let Some(parent) = from.parent() {
            prune_empty_dirs(parent, &self.base);
        }
        Ok(to)
    }

    fn kept_copies(&self) -> Result<Option<BTreeMap<String, u64>>> {
        Ok(None)
    }

    fn copies<'a>(
        &'a self,
        _m: &Manifest,
        _tree: &'a [String],
    ) -> Result<Box<dyn FileCopies + 'a>> {
        Ok(Box::new(LocalCopies {
            store: self,
            keeps: self.keeps_files(),
        }))
    }

    fn keeps_files(&self) -> bool {
        if self.keeps.load(Ordering::Relaxed) {
            return true;
        }
        let keeps = self.meta(FILES_DIR).is_dir();
        self.keeps.store(keeps, Ordering::Relaxed);
        keeps
    }

    fn restore_links(&self, _lock: &CommitLock, rel: &str) -> Result<bool> {
        if !self.keeps_files() {
            return Ok(false);
        }
        let (live, kept) = (self.data_path(rel), self.kept_path(rel));
        match (live.exists(), kept.exists()) {
            (true, true) => Ok(true),
            (true, false) => link_or_copy(&live, &kept).map(|_| true),
            (false, true) => link_or_copy(&kept, &live).map(|_| true),
            (false, false) => Ok(false),
        }
    }

    /// Staging folders of dead writers are removed by the next writer's lock.
    fn remove_stale_staging(&self, _lock: &CommitLock) -> Result<u64> {
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use crate::dataset::{CreateOptions, Dataset};
    use crate::schema::KindRegistry;

    /// A failed first write removes the empty dataset it created, but never while another
    /// writer is staging its own first write into it.
    #[test]
    fn an_empty_dataset_another_writer_stages_into_stays() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("ds");
        let kinds = KindRegistry::default();
        let ds = Dataset::create(
            &base,
            kinds.get("klines").unwrap(),
            &CreateOptions::default(),
        )
        .unwrap();
        let other = ds.store().staging("another-writer").unwrap();
        assert!(!ds.remove_if_empty().unwrap());
        assert!(other.dir().is_dir());
        assert!(Dataset::open(&base).is_ok());
        drop(other);
        assert!(ds.remove_if_empty().unwrap());
        assert!(!base.exists());
    }
}
