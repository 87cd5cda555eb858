//! [`LogStore`]: what a dataset's storage must do for the transaction, one implementation per
//! kind of storage ([`super::local`], [`super::object`]). Nothing outside those two files (and
//! the storage client, [`crate::storage`]) knows whether a dataset is on a disk or in a bucket.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use polars::prelude::cloud::CloudOptions;

use super::{CommitLock, CommitPoint, Stamp, Store};
use crate::error::Result;
use crate::location::Location;
use crate::manifest::{Manifest, Summary};

/// A version's files as `verify` reads them (see [`LogStore::copies`]).
pub trait FileCopies: Sync {
    /// The bytes pqdm's scans read for `rel` (`None`: missing), and whether the tree's copy,
    /// where it is a separate file, no longer has the recorded `checksum` (what pyarrow or
    /// DuckDB would read is damaged while pqdm's copy is intact).
    fn read(&self, rel: &str, checksum: &str) -> Result<(Option<Vec<u8>>, bool)>;

    /// Whether `rel` has both its copies, in the tree and kept (always, for a dataset that
    /// keeps none).
    fn both_present(&self, rel: &str) -> bool;
}

/// One dataset's storage, as the transaction sees it.
///
/// **The atomicity rule every implementation keeps:** [`LogStore::commit`] makes version N
/// visible to every reader at one instant (its commit point) or not at all, and never makes a
/// version whose number exists already: of two writers committing version N, exactly one wins
/// and the other gets [`crate::Error::Conflict`] with nothing of its change visible. Before the
/// commit point an error means nothing was committed; after it the commit succeeds, and what is
/// left to tidy is finished by the next writer (a warning, never a failure).
/// Every data file a retained version lists stays readable at [`Store::kept_path`] until
/// `vacuum` deletes it, whatever later commits take out of the tree.
///
/// Paths passed in are relative to the dataset's base, with `/` separators (checked by the
/// callers, see [`crate::relpath`]).
pub trait LogStore: Send + Sync + Debug {
    /// The dataset's base: a folder, or `s3://bucket/prefix`.
    fn base(&self) -> &Path;

    /// Where the dataset lives.
    fn location(&self) -> Location;

    /// Polars' options for reading this dataset's files (`None` on a local disk).
    fn cloud_options(&self) -> Option<CloudOptions>;

    /// The local folder writes stage their files in before a commit.
    fn staging_root(&self) -> PathBuf;

    /// The bytes of a file or object under the base (`None` when missing).
    fn read(&self, rel: &str) -> Result<Option<Vec<u8>>>;

    /// Writes a file or object under the base that no commit depends on being atomic with
    /// anything else (segments of the sources index: content-addressed, written before the
    /// version naming them).
    fn write(&self, rel: &str, bytes: Vec<u8>) -> Result<()>;

    /// Creates a file or object under the base that must never be overwritten (a Delta log
    /// entry), atomically: whole or not at all. `Ok(false)` when it exists already.
    fn create_new(&self, rel: &str, bytes: Vec<u8>) -> Result<bool>;

    /// Whether every file of version `m` has a kept copy (see [`Store::kept_path`]) that
    /// outlives the commits taking it out of the tree.
    fn keeps_for(&self, m: &Manifest) -> bool;

    /// Files or objects under `rel_prefix` (a folder, ending in `/`), as (name below the
    /// prefix, bytes, age in seconds).
    fn list_aged(&self, rel_prefix: &str) -> Result<Vec<(String, u64, i64)>>;

    /// Deletes files or objects (missing ones are no error).
    fn delete(&self, rels: Vec<String>) -> Result<()>;

    /// How old something a writer left must be before it is taken for a dead writer's, where
    /// no lock tells (`None`: locks tell).
    fn dead_writer_age(&self) -> Option<i64>;

    /// The bytes of a file of the version being scanned, at `path` (one of
    /// [`LogStore::file_paths`]); `None` when missing.
    fn read_planned(&self, path: &Path, rel: &str) -> Result<Option<Vec<u8>>>;

    /// The bytes of the tree's copy of a data file; `None` when missing.
    fn read_data_opt(&self, rel: &str) -> Result<Option<Vec<u8>>>;

    /// The bytes of a data file's kept copy; `None` when missing.
    fn read_kept_opt(&self, rel: &str) -> Result<Option<Vec<u8>>>;

    /// Whether the tree holds a data file.
    fn data_exists(&self, rel: &str) -> Result<bool>;

    /// Where each file of `manifest` is read from (old versions' files where they are kept).
    /// `now` is the newest version this handle knows; `current` reloads it.
    fn file_paths(
        &self,
        store: &Store,
        manifest: &Manifest,
        now: Arc<Manifest>,
        current: &dyn Fn() -> Arc<Manifest>,
    ) -> Vec<PathBuf>;

    /// Whether a dataset exists at the base; an unreachable store is an error, not "no".
    fn try_exists(&self) -> Result<bool>;

    /// What identifies the current version without reading it, where the storage can tell
    /// (`None`: read the manifest again).
    fn stamp(&self) -> Option<Stamp>;

    /// The bytes of `_manifest.json` for version `m`: [`Manifest::copy_json`] (no file list
    /// once the log records every version; the local default, where the log is a few file
    /// reads).
    fn manifest_copy(&self, m: &Manifest) -> Vec<u8> {
        m.copy_json()
    }

    /// The current version (every file); `None` when there is no dataset.
    fn load_current(&self) -> Result<Option<Manifest>>;

    /// The current version, without its file list where reading that costs (a manifest
    /// [`Manifest::is_partial`], whose header and summary are the version's); `None` when
    /// there is no dataset.
    fn load_head(&self) -> Result<Option<Manifest>> {
        self.load_current()
    }

    /// The current version's summary (see [`Summary`]); `None` when it is missing or not
    /// the current version's.
    fn load_summary(&self) -> Option<Summary>;

    /// The versions that have a version file (`_pqdm/versions/<N>.json`, written by earlier
    /// pqdm), oldest first.
    fn version_files(&self) -> Result<Vec<u64>>;

    /// Takes the commit lock (where there is one), then finishes or undoes what writers that
    /// died mid-commit left.
    fn lock(&self) -> Result<CommitLock>;

    /// Finishes a commit a crashed writer left half done, if that is cheap and nobody holds
    /// the lock (readers call it); errors are left to writers.
    fn try_recover(&self);

    /// Commits `next` (the current version + 1): places the `staged` files (staged path,
    /// final relative path), makes the version visible by creating `point` (the commit
    /// point), then rewrites `_manifest.json` and takes the `replaced` files out of the tree.
    /// See the trait's atomicity rule.
    fn commit(
        &self,
        lock: &CommitLock,
        next: &mut Manifest,
        staged: &[(PathBuf, String)],
        replaced: &[String],
        point: &CommitPoint,
    ) -> Result<()>;

    /// Deletes what this handle uploaded for operation `op_id`'s attempts that did not land.
    fn discard_uploads(&self, op_id: &str) -> Result<()>;

    /// Removes a dataset that holds nothing (version 0, no data files), where that can be
    /// done safely; whether it was removed.
    fn remove_if_empty(&self) -> Result<bool>;

    /// Whether `_manifest.json` holds exactly the current version `m`.
    fn manifest_copy_current(&self, m: &Manifest) -> bool;

    /// The version `_manifest.json` names, where it is more than a hint.
    fn manifest_copy_version(&self) -> Option<u64>;

    /// Rewrites `_manifest.json` and the summary from the current version `m`.
    fn rewrite_copies(&self, lock: &CommitLock, m: &Manifest) -> Result<()>;

    /// The files kept for older versions only (no longer in the tree): (relative path,
    /// bytes, seconds since they left the tree).
    fn replaced_files(&self) -> Result<Vec<(String, u64, i64)>>;

    /// Deletes kept replaced files for good.
    fn delete_replaced(&self, lock: &CommitLock, rels: &[String]) -> Result<()>;

    /// Deletes the history files of `versions` (never `current`'s).
    fn delete_versions(
        &self,
        lock: &CommitLock,
        current: &Manifest,
        versions: &[u64],
    ) -> Result<()>;

    /// Moves a data file no version lists out of the tree, to `_pqdm/orphans/`; where it went.
    fn quarantine(&self, lock: &CommitLock, rel: &str) -> Result<PathBuf>;

    /// The kept copies with their bytes, where checking them takes a listing (`None` where
    /// they are links of the tree's files, checked file by file).
    fn kept_copies(&self) -> Result<Option<BTreeMap<String, u64>>>;

    /// How `verify` reads the files of version `m` and checks their two copies, prepared once
    /// (`tree`: the data files the tree holds, as listed).
    fn copies<'a>(&'a self, m: &Manifest, tree: &'a [String]) -> Result<Box<dyn FileCopies + 'a>>;

    /// Whether the tree's files and their kept copies are links of one file (checked by inode).
    fn keeps_files(&self) -> bool;

    /// Gives a committed file back whichever of its two copies (tree, kept) it lost, from the
    /// other; `false` when both are gone or the dataset keeps no copies.
    fn restore_links(&self, lock: &CommitLock, rel: &str) -> Result<bool>;

    /// Deletes what dead writers staged; the bytes freed.
    fn remove_stale_staging(&self, lock: &CommitLock) -> Result<u64>;
}
