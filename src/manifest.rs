//! The manifest: the history of versions under `_pqdm/versions/`, `_manifest.json` (a copy of
//! the current version for other readers), and the commit protocol. This is the only module
//! that reads or writes `_manifest.json` and `_pqdm/`.
//!
//! On a local disk every committed data file lives at `_pqdm/files/<path>.kept` and, while a
//! version lists it, also at `<path>` in the hive tree (two hard links of one file, no copy).
//! pqdm's scans read the first, which outlives the commits that replace the file (until
//! `vacuum`'s retention), so a scan planned on version N reads version N however long it takes;
//! plain readers (pyarrow, DuckDB, Polars globs) read the tree, which holds the current version.
//!
//! A commit, under the dataset's lock file:
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
//!
//! On object storage (`s3://`) there is no rename and no lock: a commit uploads the new files
//! to keys no other writer uses (the operation id is in every name), then creates
//! `_pqdm/versions/<N>.json` with a conditional put (create if absent). Exactly one writer
//! can create version N; the others get [`Error::Conflict`] and nothing of theirs is visible.
//! An ambiguous answer to that put (an error after the store may have applied it) is settled
//! by reading version N back. `_manifest.json` is then overwritten as a hint: readers start
//! from it and look for version N+1, N+2, ... by name (a GET each), so finding the current
//! version lists nothing unless the hint names a version `vacuum` has deleted.
//! Every committed file is copied both into the tree (for plain readers) and to
//! `_pqdm/files/<path>.kept` (pqdm's scans read this copy, which outlives the commits that take
//! the file out of the tree, as on a local disk). Replaced files are then deleted from the
//! tree and recorded, with the time, under `_pqdm/removed/<N>.json` for `vacuum`.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::schema::{ColType, Kind};
use crate::storage::{self, Remote};

/// The manifest format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The current snapshot's file name.
pub const MANIFEST_FILE: &str = "_manifest.json";
/// The folder holding history, staging, replaced files and locks.
pub const META_DIR: &str = "_pqdm";
/// The suffix of files staged for a commit (not `.parquet`, so no glob reads them).
pub const STAGED_SUFFIX: &str = ".staged";
/// The suffix of files a commit replaced (object storage, and local datasets of earlier pqdm).
pub const REPLACED_SUFFIX: &str = ".replaced";
/// The largest version number a manifest may hold (`i64::MAX`, beyond any real history), so
/// that the next version's number is always in range.
pub const MAX_VERSION: u64 = i64::MAX as u64;
/// The folder under `_pqdm/` holding every committed data file of a local dataset.
pub const FILES_DIR: &str = "files";
/// The folder under `_pqdm/` recording, on object storage, which kept files each version took
/// out of the tree.
const REMOVED_DIR: &str = "removed";
/// The suffix of the files kept there (not `.parquet`, so no glob of the folder reads them).
pub const KEPT_SUFFIX: &str = ".kept";
/// The folder under `_pqdm/` holding the segments of the sources index (see [`crate::ingested`]).
pub const SOURCES_DIR: &str = "sources";

/// Whether `name` can be a segment of the sources index: `<64 hex digits>.json`, the blake3
/// of its content (so no name from a manifest can point anywhere else).
pub fn is_segment_name(name: &str) -> bool {
    name.strip_suffix(".json").is_some_and(|hex| {
        hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// One data file of a version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Path relative to the dataset base, with `/` separators.
    pub path: String,
    /// Partition values (unescaped; `None` is the null partition).
    pub partition: BTreeMap<String, Option<String>>,
    /// Rows in the file.
    pub rows: u64,
    /// Size in bytes.
    pub bytes: u64,
    /// Smallest timestamp (ms), from the file's statistics.
    pub min_timestamp: Option<i64>,
    /// Largest timestamp (ms), from the file's statistics.
    pub max_timestamp: Option<i64>,
    /// Smallest and largest value of each integer key column other than the timestamp (the
    /// kind's [`range_columns`](crate::schema::Kind::range_columns)), from the file's
    /// statistics; a column absent here is unknown. Upserts read a stored file only where these
    /// ranges meet the new rows'.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub key_ranges: BTreeMap<String, [i64; 2]>,
    /// blake3 of the file's bytes, hex.
    pub checksum: String,
    /// The version that added the file.
    #[serde(default)]
    pub added_in: u64,
}

/// A named column with its pqdm dtype.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Field {
    /// Column name.
    pub name: String,
    /// Column dtype.
    pub dtype: ColType,
}

/// The latest timestamp of one partition key (e.g. one exchange/symbol/timeframe).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatestEntry {
    /// The key's values.
    pub key: BTreeMap<String, Option<String>>,
    /// The largest timestamp (ms) under that key.
    pub latest_timestamp: i64,
}

/// Files, rows, bytes and time range of one partition key.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KeySummary {
    /// The key's values.
    pub key: BTreeMap<String, Option<String>>,
    /// Data files.
    pub files: u64,
    /// Rows.
    pub rows: u64,
    /// Bytes.
    pub bytes: u64,
    /// Smallest timestamp (ms).
    pub min_timestamp: Option<i64>,
    /// Largest timestamp (ms).
    pub max_timestamp: Option<i64>,
}

fn min_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

/// Write settings recorded with the dataset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Compression name (`snappy`, `zstd:3`, ...).
    pub compression: String,
    /// Rows per file at most.
    pub max_rows_per_file: u64,
    /// After each write, compact a partition it touched once it holds more than this many
    /// files below `max_rows_per_file` (`None`: only when asked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_compact: Option<u64>,
}

impl Settings {
    /// The dataset's compression. `unknown`, which `adopt` recorded before it read the files'
    /// codec, is the default (such datasets stay writable).
    pub fn compression(&self) -> Result<crate::options::Compression> {
        match self.compression.as_str() {
            "unknown" => Ok(crate::options::Compression::default()),
            text => text.parse(),
        }
    }
}

/// What the commit that made a version did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    /// `create`, `write`, `compact`, ...
    pub name: String,
    /// Write mode, where it applies.
    #[serde(default)]
    pub mode: Option<String>,
    /// The operation id that also tags the log lines.
    #[serde(default)]
    pub op_id: String,
    /// Rows the version added.
    pub rows_added: u64,
    /// Rows the version removed (replaced by upsert or overwrite, or rewritten).
    pub rows_removed: u64,
    /// Files the version added.
    pub files_added: u64,
    /// Files the version removed.
    pub files_removed: u64,
    /// Source files whose ingest the version recorded in the sources index.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub sources_recorded: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The few fields `latest` needs, kept in `_pqdm/summary.json` beside the manifest so that
/// answering them costs the same at 100 files as at 100,000.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The version summarised.
    pub version: u64,
    /// Rows in the version.
    pub total_rows: u64,
    /// Files in the version.
    pub file_count: u64,
    /// The largest timestamp (ms).
    pub latest_timestamp: Option<i64>,
    /// Latest timestamp per partition key.
    pub latest_by_key: Vec<LatestEntry>,
}

/// One version of a dataset: `_manifest.json` holds the current one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Manifest format version (readers refuse newer formats).
    pub format_version: u32,
    /// Increments on every commit; 0 is the empty dataset.
    pub version: u64,
    /// When this version was committed (UTC, ISO-8601).
    pub updated_at: String,
    /// The dataset's base folder when the version was written.
    pub base_dir: String,
    /// The dataset kind's name.
    pub kind: String,
    /// The name of the timestamp column.
    pub timestamp_column: String,
    /// Number of data files.
    pub file_count: u64,
    /// Rows in all data files.
    pub total_rows: u64,
    /// Bytes in all data files.
    pub total_bytes: u64,
    /// The largest timestamp (ms) in the dataset.
    pub latest_timestamp: Option<i64>,
    /// The smallest timestamp (ms) in the dataset.
    pub earliest_timestamp: Option<i64>,
    /// Latest timestamp per partition key (the non-time partition columns).
    pub latest_by_key: Vec<LatestEntry>,
    /// Columns stored in the data files.
    pub schema: Vec<Field>,
    /// Partition columns, in path order, with the dtypes every reader uses.
    pub partition_columns: Vec<Field>,
    /// The natural key (empty: append-only).
    pub key: Vec<String>,
    /// Write settings.
    pub settings: Settings,
    /// User metadata (also in every data file's footer).
    pub metadata: BTreeMap<String, String>,
    /// The full kind definition, so kinds declared in TOML travel with the dataset.
    pub kind_spec: Kind,
    /// What made this version.
    pub operation: Operation,
    /// Where a materialised dataset came from.
    #[serde(default)]
    pub source: Option<serde_json::Value>,
    /// Object storage: the version from which every file of this and each later version has a
    /// copy at `_pqdm/files/<path>.kept` that outlives the commits taking it out of the tree
    /// (`None`: written by an earlier pqdm, its files are read from the tree and
    /// `_pqdm/replaced/`). Local datasets keep their files there too, as hard links.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept_since: Option<u64>,
    /// The sources index: the segments under `_pqdm/sources/` listing the source files
    /// ingested up to this version, oldest first (see [`crate::ingested`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    /// The data files.
    pub files: Vec<FileEntry>,
}

impl Manifest {
    /// A version-0 manifest of `kind` with these columns and settings, and no files.
    pub fn empty(
        base: &Path,
        kind: &Kind,
        schema: Vec<Field>,
        partition_columns: Vec<Field>,
        settings: Settings,
    ) -> Manifest {
        Manifest {
            format_version: FORMAT_VERSION,
            version: 0,
            updated_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            base_dir: base.display().to_string(),
            kind: kind.name.clone(),
            timestamp_column: kind.timestamp_column.clone(),
            file_count: 0,
            total_rows: 0,
            total_bytes: 0,
            latest_timestamp: None,
            earliest_timestamp: None,
            latest_by_key: vec![],
            schema,
            partition_columns,
            key: kind.key.clone(),
            settings,
            metadata: BTreeMap::new(),
            kind_spec: kind.clone(),
            operation: Operation {
                name: "create".into(),
                ..Default::default()
            },
            source: None,
            kept_since: None,
            sources: vec![],
            files: vec![],
        }
    }

    /// Recomputes the summary fields (counts, totals, latest timestamps) from `files`.
    pub fn refresh_summary(&mut self) {
        self.file_count = self.files.len() as u64;
        self.total_rows = self.files.iter().map(|f| f.rows).sum();
        self.total_bytes = self.files.iter().map(|f| f.bytes).sum();
        self.latest_timestamp = self.files.iter().filter_map(|f| f.max_timestamp).max();
        self.earliest_timestamp = self.files.iter().filter_map(|f| f.min_timestamp).min();
        self.latest_by_key = self
            .key_summaries()
            .into_iter()
            .filter_map(|k| {
                k.max_timestamp.map(|ts| LatestEntry {
                    key: k.key,
                    latest_timestamp: ts,
                })
            })
            .collect();
    }

    /// Per partition key (the partition columns that are not derived from the timestamp, e.g.
    /// exchange/symbol/timeframe): files, rows, bytes and time range.
    pub fn key_summaries(&self) -> Vec<KeySummary> {
        let key_cols: Vec<&str> = self
            .partition_columns
            .iter()
            .map(|f| f.name.as_str())
            .filter(|n| !crate::partition::is_derived(n))
            .collect();
        let mut out: BTreeMap<Vec<Option<String>>, KeySummary> = BTreeMap::new();
        for f in &self.files {
            let values: Vec<Option<String>> = key_cols
                .iter()
                .map(|k| f.partition.get(*k).cloned().flatten())
                .collect();
            let e = out.entry(values.clone()).or_insert_with(|| KeySummary {
                key: key_cols.iter().map(|k| k.to_string()).zip(values).collect(),
                ..Default::default()
            });
            e.files += 1;
            e.rows += f.rows;
            e.bytes += f.bytes;
            e.min_timestamp = min_opt(e.min_timestamp, f.min_timestamp);
            e.max_timestamp = e.max_timestamp.max(f.max_timestamp);
        }
        out.into_values().collect()
    }

    /// The dtype of partition column `name`.
    pub fn partition_type(&self, name: &str) -> Option<ColType> {
        self.partition_columns
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.dtype)
    }
}

/// The on-disk store of one dataset: paths, loading, locking and committing.
#[derive(Clone, Debug)]
pub struct Store {
    base: PathBuf,
    remote: Option<std::sync::Arc<Remote>>,
    /// Object storage: the staged objects this handle has uploaded, with the checksum of what
    /// was uploaded (kept across commit attempts; an attempt whose file differs uploads again).
    uploaded: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, String>>>,
    /// Seen to keep its files under `_pqdm/files/` (never unset: a dataset that does always will).
    keeps: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// The exclusive commit lock; released when dropped (or when the process dies). On object
/// storage there is no lock file: the conditional put of the version decides instead.
pub struct CommitLock {
    file: Option<crate::lock::FileLock>,
}

/// A private staging folder for one write, removed when dropped.
pub struct Staging {
    dir: PathBuf,
    _guard: File,
}

/// Stands for `/` in the name of a file staged flat ([`Staging::name_for`]): never part of an
/// escaped hive segment or a part name (`%` only ever starts a `%XX` escape there).
const FLAT_SEPARATOR: &str = "%%";

/// The longest name a file is staged flat under (file names end at 255 bytes).
const FLAT_NAME_MAX: usize = 240;

impl Staging {
    /// The staging folder (hive layout below it, files end in `.parquet.staged`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path, relative to [`Staging::dir`], to stage the file `name` of partition folder
    /// `rel_dir` under: flat (`k=v%%k=v%%name`) where the name fits, so that a write into
    /// many partitions creates (and removes) no folder per partition; in the folder otherwise.
    /// [`Staging::files`] reads both back as `rel_dir/name`.
    pub fn name_for(rel_dir: &str, name: &str) -> String {
        if rel_dir.is_empty() {
            return name.to_string();
        }
        let flat = format!(
            "{}{FLAT_SEPARATOR}{name}",
            rel_dir.replace('/', FLAT_SEPARATOR)
        );
        if flat.len() <= FLAT_NAME_MAX {
            flat
        } else {
            format!("{rel_dir}/{name}")
        }
    }

    /// Every staged file, as (absolute path, final relative path).
    pub fn files(&self) -> Result<Vec<(PathBuf, String)>> {
        let mut out = vec![];
        walk(&self.dir, &mut |p| {
            let name = p.to_string_lossy();
            if let Some(stripped) = name.strip_suffix(STAGED_SUFFIX)
                && let Ok(rel) = Path::new(stripped).strip_prefix(&self.dir)
            {
                out.push((
                    p.to_path_buf(),
                    rel_string(rel).replace(FLAT_SEPARATOR, "/"),
                ));
            }
        })?;
        out.sort_by(|a, b| a.1.cmp(&b.1));
        Ok(out)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
        let _ = fs::remove_file(self.dir.with_extension("lock"));
    }
}

fn rel_string(rel: &Path) -> String {
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// Calls `f` on every file below `dir` (depth first, no symlinks followed).
pub fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(Error::io(dir))?;
        let path = entry.path();
        let ft = entry.file_type().map_err(Error::io(&path))?;
        if ft.is_dir() {
            walk(&path, f)?;
        } else if ft.is_file() {
            f(&path);
        }
    }
    Ok(())
}

/// On object storage, where there is no lock to tell a live writer from a dead one: the age
/// after which a journal or a staged object is taken to be a dead writer's (an hour; a commit
/// attempt takes seconds). `PQDM_STALE_SECS` overrides it (tests).
static STALE_SECS_CELL: std::sync::OnceLock<i64> = std::sync::OnceLock::new();

fn stale_secs() -> i64 {
    *STALE_SECS_CELL.get_or_init(|| {
        std::env::var("PQDM_STALE_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(3600)
    })
}

/// The version a history file name (`<20 digits>.json`) holds.
fn version_number(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".json")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// Object storage: the files one version took out of the tree (their kept copies stay until
/// `vacuum`), and when.
#[derive(Serialize, Deserialize)]
struct Removed {
    /// When the files left the tree (ms since the epoch, the committer's clock).
    removed_at_ms: i64,
    /// Their relative paths (those `vacuum` has not deleted yet).
    files: Vec<String>,
}

/// The journal of one commit in flight.
#[derive(Serialize, Deserialize)]
struct Journal {
    target_version: u64,
    /// The writing operation (object storage: tells whose the version is).
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

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_file_name(format!(
        "_{}.{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    {
        let mut f = File::create(&tmp).map_err(Error::io(&tmp))?;
        f.write_all(bytes).map_err(Error::io(&tmp))?;
        f.sync_all().map_err(Error::io(&tmp))?;
    }
    fs::rename(&tmp, path).map_err(Error::io(path))
}

/// Syncs a folder, so the names created or removed in it survive a power loss.
fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io(dir))
}

/// Flushes the filesystem holding `path` (file contents and folder entries), so everything a
/// commit wrote survives a power loss before its version does.
fn sync_filesystem(path: &Path) -> Result<()> {
    use std::os::fd::AsRawFd;
    let dir = File::open(path).map_err(Error::io(path))?;
    // SAFETY: `dir` is an open descriptor for the duration of the call.
    if unsafe { libc::syncfs(dir.as_raw_fd()) } != 0 {
        return Err(Error::io(path)(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Links `from` at `to` (creating `to`'s folder), or copies it where the filesystem has no
/// hard links.
fn link_or_copy(from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        mkdirs(parent)?;
    }
    match fs::hard_link(from, to) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::io(from)(e)),
        Err(_) => fs::copy(from, to).map(|_| ()).map_err(Error::io(to)),
    }
}

fn mkdirs(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(Error::io(dir))
}

/// Moves `from` to `to`, creating `to`'s folder.
fn move_file(from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        mkdirs(parent)?;
    }
    fs::rename(from, to).map_err(Error::io(from))
}

/// Removes empty folders from `dir` up to (not including) `stop`.
fn prune_empty_dirs(mut dir: &Path, stop: &Path) {
    while dir != stop && dir.starts_with(stop) {
        if fs::remove_dir(dir).is_err() {
            break;
        }
        match dir.parent() {
            Some(p) => dir = p,
            None => break,
        }
    }
}

impl Store {
    /// The store of the dataset at `base`: a local folder, or `s3://bucket/prefix`.
    pub fn new(base: impl Into<PathBuf>) -> Result<Store> {
        let base: PathBuf = base.into();
        if storage::is_remote(&base) {
            let remote = Remote::open(&base)?;
            return Ok(Store {
                base: PathBuf::from(remote.url()),
                remote: Some(remote),
                uploaded: Default::default(),
                keeps: Default::default(),
            });
        }
        Ok(Store {
            base,
            remote: None,
            uploaded: Default::default(),
            keeps: Default::default(),
        })
    }

    /// The object-store location, when the dataset is not on a local disk.
    pub fn remote(&self) -> Option<&Remote> {
        self.remote.as_deref()
    }

    /// Polars' options for reading this dataset's files (`None` on a local disk).
    pub fn cloud_options(&self) -> Option<polars::prelude::cloud::CloudOptions> {
        self.remote.as_ref().map(|r| r.cloud().clone())
    }

    fn meta_rel(sub: &str) -> String {
        format!("{META_DIR}/{sub}")
    }

    fn version_rel(version: u64) -> String {
        Self::meta_rel(&format!("versions/{version:020}.json"))
    }

    fn replaced_rel(rel: &str) -> String {
        Self::meta_rel(&format!("replaced/{rel}{REPLACED_SUFFIX}"))
    }

    /// Object storage: the key of a data file's kept copy (see [`Store::kept_path`]).
    fn kept_rel(rel: &str) -> String {
        Self::meta_rel(&format!("{FILES_DIR}/{rel}{KEPT_SUFFIX}"))
    }

    /// Object storage: the record of the files version `version` took out of the tree.
    fn removed_rel(version: u64) -> String {
        Self::meta_rel(&format!("{REMOVED_DIR}/{version:020}.json"))
    }

    /// The bytes of a data file (relative path) of the current version.
    pub fn read_data(&self, rel: &str) -> Result<Vec<u8>> {
        match &self.remote {
            Some(r) => r.get(rel)?.ok_or_else(|| Error::Storage {
                location: format!("{}/{rel}", r.url()),
                message: "no such object".into(),
            }),
            None => {
                let path = self.data_path(rel);
                fs::read(&path).map_err(Error::io(&path))
            }
        }
    }

    /// The bytes of a data file (relative path) of the current version; `None` when missing.
    pub fn read_data_opt(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        match &self.remote {
            Some(r) => r.get(rel),
            None => {
                let path = self.data_path(rel);
                match fs::read(&path) {
                    Ok(b) => Ok(Some(b)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(Error::io(&path)(e)),
                }
            }
        }
    }

    /// Object storage: the bytes of a data file's kept copy; `None` when missing.
    pub fn read_kept_opt(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        match &self.remote {
            Some(r) => r.get(&Self::kept_rel(rel)),
            None => self.read_data_opt(rel),
        }
    }

    /// Whether a data file (relative path) of the current version is present.
    pub fn data_exists(&self, rel: &str) -> Result<bool> {
        match &self.remote {
            Some(r) => Ok(r.head(rel)?.is_some()),
            None => Ok(self.data_path(rel).exists()),
        }
    }

    /// The dataset's base folder.
    pub fn base(&self) -> &Path {
        &self.base
    }

    fn meta(&self, sub: &str) -> PathBuf {
        self.base.join(META_DIR).join(sub)
    }

    fn version_path(&self, version: u64) -> PathBuf {
        self.meta("versions").join(format!("{version:020}.json"))
    }

    /// Where a file that a later commit replaced is kept until `vacuum`.
    pub fn replaced_path(&self, rel: &str) -> PathBuf {
        self.meta("replaced")
            .join(format!("{rel}{REPLACED_SUFFIX}"))
    }

    /// The absolute path of a data file of the current version.
    pub fn data_path(&self, rel: &str) -> PathBuf {
        self.base.join(rel)
    }

    /// Where a file of any version is now on a local disk: kept under `_pqdm/files/`, in the
    /// tree, or among the replaced files of earlier pqdm (object storage answers from the
    /// manifests instead, see `Dataset::file_paths`).
    pub fn locate(&self, rel: &str) -> PathBuf {
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

    /// Whether a manifest exists at the base.
    pub fn exists(&self) -> bool {
        self.try_exists().unwrap_or(false)
    }

    /// Whether a manifest exists at the base; on object storage, an unreachable store or a
    /// missing bucket is an error rather than "no".
    pub fn try_exists(&self) -> Result<bool> {
        match &self.remote {
            // Version 0 alone counts: its creator may not have written the manifest yet.
            Some(r) => {
                Ok(r.head(MANIFEST_FILE)?.is_some() || r.head(&Self::version_rel(0))?.is_some())
            }
            None => Ok(
                self.base.join(MANIFEST_FILE).is_file() || self.newest_version_file()?.is_some()
            ),
        }
    }

    fn parse(&self, path: &Path, bytes: &[u8]) -> Result<Manifest> {
        let head: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| Error::Dataset {
                path: self.base.clone(),
                message: format!("{} is not valid JSON ({e})", path.display()),
            })?;
        let format = head
            .get("format_version")
            .and_then(|v| v.as_u64())
            .unwrap_or(0);
        if format > FORMAT_VERSION as u64 {
            return Err(Error::Dataset {
                path: self.base.clone(),
                message: format!(
                    "{} has format version {format}, newer than this pqdm reads ({FORMAT_VERSION}); upgrade pqdm",
                    path.display()
                ),
            });
        }
        let manifest: Manifest = serde_json::from_value(head).map_err(|e| Error::Dataset {
            path: self.base.clone(),
            message: format!("{} does not hold a pqdm manifest: {e}", path.display()),
        })?;
        // Far past any real history: refused, so that `version + 1` never overflows.
        if manifest.version > MAX_VERSION {
            return Err(Error::Dataset {
                path: self.base.clone(),
                message: format!(
                    "{} holds version {}, past the largest pqdm makes ({MAX_VERSION}; edited by hand?)",
                    path.display(),
                    manifest.version
                ),
            });
        }
        let mut seen = std::collections::HashSet::with_capacity(manifest.files.len());
        // Refused here, every sum over the files (totals, per-key summaries, upserts) is in range.
        let (mut rows, mut bytes) = (0u64, 0u64);
        for f in &manifest.files {
            match (rows.checked_add(f.rows), bytes.checked_add(f.bytes)) {
                (Some(r), Some(b)) => (rows, bytes) = (r, b),
                _ => {
                    return Err(Error::Dataset {
                        path: self.base.clone(),
                        message: format!(
                            "{} lists files whose rows or bytes add up to more than {} (edited by hand?)",
                            path.display(),
                            u64::MAX
                        ),
                    });
                }
            }
            if let Some(why) = crate::relpath::problem(&f.path) {
                return Err(Error::Dataset {
                    path: self.base.clone(),
                    message: format!(
                        "{} lists a file outside the dataset ({why}): {}",
                        path.display(),
                        crate::error::clip(&f.path)
                    ),
                });
            }
            if !seen.insert(f.path.as_str()) {
                return Err(Error::Dataset {
                    path: self.base.clone(),
                    message: format!(
                        "{} lists the file {} twice (edited by hand?); its rows would be read twice",
                        path.display(),
                        f.path
                    ),
                });
            }
        }
        Ok(manifest)
    }

    /// What identifies the current version (device, inode, version number and modification
    /// time of the newest version file): version files are created once and never rewritten,
    /// so an unchanged stamp means an unchanged current version. On object storage there is
    /// none (every call reads the manifest again).
    pub fn stamp(&self) -> Option<(u64, u64, u64, i64)> {
        use std::os::unix::fs::MetadataExt;
        if self.remote.is_some() {
            return None;
        }
        let (version, path) = self.newest_version_file().ok()??;
        let m = fs::metadata(path).ok()?;
        Some((
            m.dev(),
            m.ino(),
            version,
            m.mtime_nsec() + m.mtime() * 1_000_000_000,
        ))
    }

    /// The newest version file of a local dataset (the current version), by listing
    /// `_pqdm/versions/`.
    fn newest_version_file(&self) -> Result<Option<(u64, PathBuf)>> {
        let dir = self.meta("versions");
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&dir)(e)),
        };
        let mut newest: Option<u64> = None;
        for entry in entries {
            let entry = entry.map_err(Error::io(&dir))?;
            if let Some(v) = version_number(&entry.file_name().to_string_lossy()) {
                newest = newest.max(Some(v));
            }
        }
        Ok(newest.map(|v| (v, self.version_path(v))))
    }

    /// Loads the current manifest; `None` when the folder has none. On a local disk the current
    /// version is the newest file of the history (`_manifest.json`, a copy for other readers,
    /// is only read for a dataset without history).
    pub fn load_current(&self) -> Result<Option<Manifest>> {
        if let Some(r) = &self.remote {
            return self.load_current_remote(r);
        }
        if let Some((version, _)) = self.newest_version_file()? {
            return self.load_version(version).map(Some);
        }
        let path = self.base.join(MANIFEST_FILE);
        match fs::read(&path) {
            Ok(bytes) => self.parse(&path, &bytes).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(&path)(e)),
        }
    }

    /// `_manifest.json` is a hint on object storage: the newest version is the first number
    /// from there on with no `_pqdm/versions/<N>.json` (found by GETs, never by listing).
    /// A hint can name a version `vacuum` has since deleted (a writer died before rewriting it,
    /// or a slow one rewrote it late): then the history is listed, so the current version is
    /// never taken to be an older one and no version number is made twice.
    fn load_current_remote(&self, r: &Remote) -> Result<Option<Manifest>> {
        let (mut current, from_hint) = match r.get(MANIFEST_FILE)? {
            Some(bytes) => (self.parse(&self.base.join(MANIFEST_FILE), &bytes)?, true),
            None => match r.get(&Self::version_rel(0))? {
                Some(bytes) => (
                    self.parse(&self.base.join(Self::version_rel(0)), &bytes)?,
                    false,
                ),
                None => return Ok(None),
            },
        };
        let hinted = current.version;
        while let Some(bytes) = r.get(&Self::version_rel(current.version + 1))? {
            let rel = Self::version_rel(current.version + 1);
            current = self.parse(&self.base.join(rel), &bytes)?;
        }
        if from_hint
            && current.version == hinted
            && r.head(&Self::version_rel(hinted))?.is_none()
            && let Some(newest) = self.versions()?.last().copied()
            && newest > hinted
        {
            log::warn!(
                "{}: _manifest.json names version {hinted}, which is no longer kept; the history's newest is {newest}",
                r.url()
            );
            current = self.load_version(newest)?;
        }
        Ok(Some(current))
    }

    fn write_summary(&self, m: &Manifest) -> Result<()> {
        let summary = Summary {
            version: m.version,
            total_rows: m.total_rows,
            file_count: m.file_count,
            latest_timestamp: m.latest_timestamp,
            latest_by_key: m.latest_by_key.clone(),
        };
        let bytes = serde_json::to_vec(&summary).expect("summary serialises");
        match &self.remote {
            Some(r) => r.put(&Self::meta_rel("summary.json"), bytes),
            None => write_atomic(&self.meta("summary.json"), &bytes),
        }
    }

    /// The current version's summary, without reading the (large) manifest: a commit writes it
    /// right after switching the manifest, and recovery rewrites it after a crash in between.
    /// `None` when there is none (datasets from before it existed): read the manifest then.
    pub fn load_summary(&self) -> Option<Summary> {
        if let Some(r) = &self.remote {
            let summary: Summary =
                serde_json::from_slice(&r.get(&Self::meta_rel("summary.json")).ok()??).ok()?;
            // A writer may have committed a newer version and not yet rewritten the summary.
            let newer = r
                .head(&Self::version_rel(summary.version.checked_add(1)?))
                .ok()?;
            return newer.is_none().then_some(summary);
        }
        self.try_recover();
        let summary: Summary =
            serde_json::from_slice(&fs::read(self.meta("summary.json")).ok()?).ok()?;
        // Its rewrite after the newest commit may have failed: then the manifest answers.
        let (newest, _) = self.newest_version_file().ok()??;
        (summary.version == newest).then_some(summary)
    }

    /// Loads version `version` from the history.
    pub fn load_version(&self, version: u64) -> Result<Manifest> {
        let path = self.version_path(version);
        let read = match &self.remote {
            Some(r) => r
                .get(&Self::version_rel(version))?
                .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound)),
            None => fs::read(&path),
        };
        match read {
            Ok(bytes) => {
                let m = self.parse(&path, &bytes)?;
                if m.version != version {
                    // A copy or rename by hand: writers would number the next version after the
                    // wrong one and could never commit.
                    return Err(Error::Dataset {
                        path: self.base.clone(),
                        message: format!(
                            "{} holds version {}, not {version} (copied or renamed by hand?)",
                            path.display(),
                            m.version
                        ),
                    });
                }
                Ok(m)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::Dataset {
                path: self.base.clone(),
                message: format!("version {version} is not kept (see `pqdm history`)"),
            }),
            Err(e) => Err(Error::io(&path)(e)),
        }
    }

    /// The version numbers kept in the history, oldest first.
    pub fn versions(&self) -> Result<Vec<u64>> {
        let mut out = vec![];
        match &self.remote {
            Some(r) => out.extend(
                r.list(&Self::meta_rel("versions"))?
                    .iter()
                    .filter_map(|(rel, _)| version_number(rel.rsplit('/').next()?)),
            ),
            None => walk(&self.meta("versions"), &mut |p| {
                out.extend(
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .and_then(version_number),
                );
            })?,
        }
        out.sort_unstable();
        Ok(out)
    }

    /// Takes the commit lock (waiting for other writers, at most [`crate::lock::timeout`]),
    /// then finishes any commit a crashed writer left half done.
    pub fn lock(&self) -> Result<CommitLock> {
        if let Some(r) = &self.remote {
            let lock = CommitLock { file: None };
            self.remove_dead_staging();
            self.recover_remote(r)?;
            return Ok(lock);
        }
        let dir = self.base.join(META_DIR);
        mkdirs(&dir)?;
        let file = crate::lock::FileLock::acquire(&dir.join("lock"), "commit")?;
        let lock = CommitLock { file: Some(file) };
        self.recover(&lock)?;
        Ok(lock)
    }

    /// Finishes a commit a crashed writer left half done, if no writer holds the lock now.
    /// Cheap when there is nothing to do (one folder listing); errors are left to writers.
    pub fn try_recover(&self) {
        if self.remote.is_some() {
            return;
        }
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

    /// Creates a private staging folder for one write.
    pub fn staging(&self, tx: &str) -> Result<Staging> {
        let root = self.staging_root();
        mkdirs(&root)?;
        // The guard appears under its name already locked (locked under a temporary name,
        // then renamed), so a free guard always belongs to a writer that is gone.
        let guard_path = root.join(format!("{tx}.lock"));
        let locking = root.join(format!("{tx}.locking"));
        let guard = File::create(&locking).map_err(Error::io(&locking))?;
        guard.lock().map_err(Error::io(&locking))?;
        fs::rename(&locking, &guard_path).map_err(Error::io(&guard_path))?;
        let dir = root.join(tx);
        mkdirs(&dir)?;
        Ok(Staging { dir, _guard: guard })
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

    /// Whether version `version` exists and was made by operation `op_id` (a journal is only
    /// ever rolled forward onto the version it was written for).
    fn made_by(&self, version: u64, op_id: &str) -> bool {
        self.load_version(version)
            .is_ok_and(|m| op_id.is_empty() || m.operation.op_id == op_id)
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
            false => self.load_current()?,
        };
        if !checked.is_empty() {
            let live: std::collections::HashSet<&str> = current
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
                        self.remove_file_and_dirs(&self.data_path(rel), &self.base)?;
                        self.remove_file_and_dirs(&self.kept_path(rel), &self.meta(FILES_DIR))?;
                    }
                }
                crate::failpoint::hit("recover.journal")?;
                fs::remove_file(path).map_err(Error::io(path))?;
            }
        }
        self.refresh_copies(current.as_ref())?;
        // Temporary version files of writers that died before their commit point.
        let versions = self.meta("versions");
        if let Ok(entries) = fs::read_dir(&versions) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().ends_with(".tmp") {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
        self.remove_dead_staging();
        Ok(())
    }

    /// Whether `_manifest.json` holds exactly the current version `m` (always on object
    /// storage, where it is only a hint).
    pub fn manifest_copy_current(&self, m: &Manifest) -> bool {
        if self.remote.is_some() {
            return true;
        }
        match (
            fs::read(self.base.join(MANIFEST_FILE)),
            fs::read(self.version_path(m.version)),
        ) {
            (Ok(copy), Ok(version)) => copy == version,
            (_, Err(_)) => true,
            (Err(_), Ok(_)) => false,
        }
    }

    /// The version number `_manifest.json` names, where it is readable JSON with one (local
    /// datasets; on object storage it is only a hint and `None`).
    pub fn manifest_copy_version(&self) -> Option<u64> {
        if self.remote.is_some() {
            return None;
        }
        let bytes = fs::read(self.base.join(MANIFEST_FILE)).ok()?;
        serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()?
            .get("version")?
            .as_u64()
    }

    /// Rewrites `_manifest.json` and the summary from the current version `m`.
    pub fn rewrite_copies(&self, _lock: &CommitLock, m: &Manifest) -> Result<()> {
        if self.remote.is_some() {
            return Ok(());
        }
        self.write_copies(m)
    }

    /// Removes `path` (if present) and the folders it leaves empty, up to `stop`.
    fn remove_file_and_dirs(&self, path: &Path, stop: &Path) -> Result<()> {
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(path)(e)),
        }
        if let Some(parent) = path.parent() {
            prune_empty_dirs(parent, stop);
        }
        Ok(())
    }

    /// Rewrites `_manifest.json` and `_pqdm/summary.json` when they are not the current
    /// version's (a crash or failure after a commit point, a hand edit, a restored backup).
    /// Compared by size and age, so a clean dataset costs a listing and a few `stat`s; the
    /// version is parsed only when something is rewritten (`known` spares that when it is it).
    fn refresh_copies(&self, known: Option<&Manifest>) -> Result<()> {
        let Some((newest, version)) = self.newest_version_file()? else {
            return Ok(());
        };
        let copy = self.base.join(MANIFEST_FILE);
        let copy_stale = match (fs::metadata(&version), fs::metadata(&copy)) {
            (Ok(v), Ok(c)) => v.len() != c.len() || c.modified().ok() < v.modified().ok(),
            (Ok(_), Err(_)) => true,
            (Err(_), _) => false,
        };
        let summary_stale = fs::read(self.meta("summary.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<Summary>(&b).ok())
            .is_none_or(|s| s.version != newest);
        if !(copy_stale || summary_stale) {
            return Ok(());
        }
        match known {
            Some(m) if m.version == newest => self.write_copies(m),
            _ => self.write_copies(&self.load_version(newest)?),
        }
    }

    /// Writes `_manifest.json` (the bytes of `m`'s version file) and the summary of `m`.
    fn write_copies(&self, m: &Manifest) -> Result<()> {
        let version = self.version_path(m.version);
        let bytes = fs::read(&version).map_err(Error::io(&version))?;
        write_atomic(&self.base.join(MANIFEST_FILE), &bytes)?;
        self.write_summary(m)
    }

    /// Where writes stage their files: `_pqdm/staging/`, or a local scratch folder for a
    /// dataset on object storage.
    fn staging_root(&self) -> PathBuf {
        match &self.remote {
            Some(r) => storage::local_scratch(r.url()).join("staging"),
            None => self.meta("staging"),
        }
    }

    /// Removes staging folders whose writer died (its guard lock is free).
    fn remove_dead_staging(&self) {
        let staging = self.staging_root();
        let Ok(entries) = fs::read_dir(&staging) else {
            return;
        };
        let held = |guard: &Path| File::open(guard).is_ok_and(|f| f.try_lock().is_err());
        // Each write has a folder and a guard `<tx>.lock` it holds locked from before the folder
        // exists until after it is gone; a killed writer can leave either alone.
        let mut names = std::collections::BTreeSet::new();
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".locking") {
                // A writer holds this name for the microseconds between creating its guard and
                // locking it: only an old one is a dead writer's.
                let old = fs::metadata(&path)
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t.elapsed().is_ok_and(|age| age.as_secs() >= 10));
                if old && !held(&path) {
                    let _ = fs::remove_file(&path);
                }
                continue;
            }
            names.insert(
                name.strip_suffix(".lock")
                    .map(str::to_string)
                    .unwrap_or(name),
            );
        }
        for name in names {
            let guard = staging.join(format!("{name}.lock"));
            if !held(&guard) {
                let _ = fs::remove_dir_all(staging.join(&name));
                let _ = fs::remove_file(&guard);
            }
        }
    }

    /// Removes a dataset that holds nothing (version 0, no data files): its manifest, its
    /// metadata folder and the base folder if that is then empty, all under the lock (whose
    /// file goes last; writers waiting on it open it again). Used when the write that created
    /// it failed. On object storage, where no lock keeps another writer from committing
    /// version 1 meanwhile, the empty dataset stays.
    pub fn remove_if_empty(&self) -> Result<bool> {
        if self.remote.is_some() {
            return Ok(false);
        }
        let lock = self.lock()?;
        let Some(m) = self.load_current()? else {
            return Ok(false);
        };
        if m.version != 0
            || !m.files.is_empty()
            || self.newest_version_file()?.is_some_and(|(v, _)| v != 0)
            || !crate::foreign::list_files(&self.base)?.is_empty()
        {
            return Ok(false);
        }
        let staging = self.staging_root();
        if fs::read_dir(&staging).is_ok_and(|mut d| d.next().is_some()) {
            // Another writer is staging its first write here: leave the dataset to it.
            return Ok(false);
        }
        for path in [
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
        drop(lock);
        let _ = fs::remove_dir(&self.base);
        Ok(true)
    }

    /// The bytes of the sources-index segment `name` (a [`is_segment_name`], else an error
    /// naming it); `None` when it is missing.
    pub fn read_segment(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let rel = Self::segment_rel(name)?;
        match &self.remote {
            Some(r) => r.get(&rel),
            None => match fs::read(self.base.join(&rel)) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(Error::io(self.base.join(&rel))(e)),
            },
        }
    }

    /// Writes the sources-index segment `name` (before the commit whose version lists it; a
    /// segment no version lists is `vacuum`'s).
    pub fn write_segment(&self, name: &str, bytes: Vec<u8>) -> Result<()> {
        let rel = Self::segment_rel(name)?;
        match &self.remote {
            Some(r) => r.put(&rel, bytes),
            None => {
                mkdirs(&self.meta(SOURCES_DIR))?;
                write_atomic(&self.base.join(&rel), &bytes)
            }
        }
    }

    /// Deletes the sources-index segments no version in `listed` names that are older than
    /// `retention_secs` (on object storage, where no lock keeps a writer's segment from a
    /// vacuum until its commit, also older than the age a writer is taken for dead); returns
    /// their bytes.
    pub fn delete_unlisted_segments(
        &self,
        _lock: &CommitLock,
        listed: &std::collections::BTreeSet<String>,
        retention_secs: i64,
    ) -> Result<u64> {
        let root = Self::meta_rel(&format!("{SOURCES_DIR}/"));
        let (found, min_age): (Vec<(String, u64, i64)>, i64) = match &self.remote {
            Some(r) => (
                r.list_aged(&root)?
                    .into_iter()
                    .filter_map(|(rel, bytes, age)| {
                        Some((rel.strip_prefix(&root)?.to_string(), bytes, age))
                    })
                    .collect(),
                retention_secs.max(stale_secs()),
            ),
            None => {
                use std::os::unix::fs::MetadataExt;
                let now = chrono::Utc::now().timestamp();
                let mut out = vec![];
                walk(&self.meta(SOURCES_DIR), &mut |p| {
                    if let (Some(name), Ok(m)) = (p.file_name(), fs::symlink_metadata(p)) {
                        let name = name.to_string_lossy().into_owned();
                        out.push((name, m.len(), now - m.mtime()));
                    }
                })?;
                (out, retention_secs)
            }
        };
        let gone: Vec<(String, u64)> = found
            .into_iter()
            .filter(|(name, _, age)| {
                is_segment_name(name) && !listed.contains(name) && *age >= min_age
            })
            .map(|(name, bytes, _)| (Self::meta_rel(&format!("{SOURCES_DIR}/{name}")), bytes))
            .collect();
        let freed = gone.iter().map(|(_, bytes)| bytes).sum();
        match &self.remote {
            Some(r) => r.delete_many(gone.into_iter().map(|(rel, _)| rel))?,
            None => {
                for (rel, _) in gone {
                    let path = self.base.join(&rel);
                    if let Err(e) = fs::remove_file(&path)
                        && e.kind() != std::io::ErrorKind::NotFound
                    {
                        return Err(Error::io(&path)(e));
                    }
                }
            }
        }
        Ok(freed)
    }

    fn segment_rel(name: &str) -> Result<String> {
        if !is_segment_name(name) {
            return Err(Error::Dataset {
                path: std::path::PathBuf::from(crate::error::clip(name)),
                message:
                    "is no segment of the sources index (`<64 hex digits>.json`; edited by hand?)"
                        .into(),
            });
        }
        Ok(Self::meta_rel(&format!("{SOURCES_DIR}/{name}")))
    }

    /// The files kept for older versions only (no longer in the tree): (relative path, bytes,
    /// seconds since they left the tree). On a local disk, `_pqdm/files/` entries the tree no
    /// longer holds (their age is their status-change time, which unlinking the tree's link
    /// sets) and `_pqdm/replaced/` of earlier pqdm; on object storage, `_pqdm/replaced/`.
    pub fn replaced_files(&self) -> Result<Vec<(String, u64, i64)>> {
        if let Some(r) = &self.remote {
            let root = Self::meta_rel("replaced/");
            let mut out: Vec<(String, u64, i64)> = r
                .list_aged(&root)?
                .into_iter()
                .filter_map(|(rel, bytes, age)| {
                    let rel = rel.strip_prefix(&root)?.strip_suffix(REPLACED_SUFFIX)?;
                    Some((rel.to_string(), bytes, age))
                })
                .collect();
            out.extend(self.removed_remote(r)?);
            out.sort();
            return Ok(out);
        }
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

    /// Object storage: the kept files that commits took out of the tree, from the records under
    /// `_pqdm/removed/`, as (relative path, bytes, seconds since they left the tree).
    fn removed_remote(&self, r: &Remote) -> Result<Vec<(String, u64, i64)>> {
        let records = self.removed_records(r)?;
        if records.is_empty() {
            return Ok(vec![]);
        }
        let sizes = self.kept_remote_files()?;
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

    /// Object storage: every record under `_pqdm/removed/` (key, record); an unreadable one is
    /// an error naming it (its files would otherwise be kept, or deleted, unseen).
    fn removed_records(&self, r: &Remote) -> Result<Vec<(String, Removed)>> {
        let root = Self::meta_rel(&format!("{REMOVED_DIR}/"));
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

    /// Deletes kept replaced files (relative paths) for good (in bulk on object storage).
    pub fn delete_replaced(&self, _lock: &CommitLock, rels: &[String]) -> Result<()> {
        if let Some(r) = &self.remote {
            let gone: std::collections::HashSet<&str> = rels.iter().map(String::as_str).collect();
            r.delete_many(
                rels.iter()
                    .flat_map(|rel| [Self::replaced_rel(rel), Self::kept_rel(rel)]),
            )?;
            // Each record keeps the files not deleted yet; an emptied one goes.
            for (key, mut record) in self.removed_records(r)? {
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
            return Ok(());
        }
        for rel in rels {
            if self.data_path(rel).exists() {
                continue;
            }
            self.remove_file_and_dirs(&self.kept_path(rel), &self.meta(FILES_DIR))?;
            self.remove_file_and_dirs(&self.replaced_path(rel), &self.meta("replaced"))?;
        }
        Ok(())
    }

    /// Deletes the history files of `versions` (never the current one; in bulk on object
    /// storage, after pointing `_manifest.json` at the current version so that no reader's
    /// search for the current version starts from a deleted one).
    pub fn delete_versions(
        &self,
        _lock: &CommitLock,
        current: &Manifest,
        versions: &[u64],
    ) -> Result<()> {
        let versions: Vec<u64> = versions
            .iter()
            .copied()
            .filter(|v| *v < current.version)
            .collect();
        if let Some(r) = &self.remote {
            r.put(
                MANIFEST_FILE,
                serde_json::to_vec(current).expect("manifest serialises"),
            )?;
            return r.delete_many(versions.iter().map(|v| Self::version_rel(*v)));
        }
        for v in versions {
            let path = self.version_path(v);
            fs::remove_file(&path).map_err(Error::io(&path))?;
        }
        Ok(())
    }

    /// Moves a data file that no version lists (an orphan) out of the tree, to `_pqdm/orphans/`.
    pub fn quarantine(&self, _lock: &CommitLock, rel: &str) -> Result<PathBuf> {
        if let Some(r) = &self.remote {
            let to = Self::meta_rel(&format!("orphans/{rel}.orphan"));
            r.copy(rel, &to)?;
            r.delete(rel)?;
            return Ok(self.base.join(to));
        }
        let to = self.meta("orphans").join(format!("{rel}.orphan"));
        let from = self.data_path(rel);
        move_file(&from, &to)?;
        if let Some(parent) = from.parent() {
            prune_empty_dirs(parent, &self.base);
        }
        Ok(to)
    }

    /// Where a committed data file (relative path) is kept on a local disk while any retained
    /// version may need it: `_pqdm/files/<path>.kept`, a hard link of the tree's file.
    pub fn kept_path(&self, rel: &str) -> PathBuf {
        self.meta(FILES_DIR).join(format!("{rel}{KEPT_SUFFIX}"))
    }

    /// Object storage: the data files that have a kept copy, with its bytes (one listing of
    /// `_pqdm/files/`); empty on a local disk.
    pub fn kept_remote_files(&self) -> Result<BTreeMap<String, u64>> {
        let Some(r) = &self.remote else {
            return Ok(Default::default());
        };
        let root = Self::meta_rel(&format!("{FILES_DIR}/"));
        Ok(r.list(&root)?
            .into_iter()
            .filter_map(|(key, bytes)| {
                let rel = key.strip_prefix(&root)?.strip_suffix(KEPT_SUFFIX)?;
                Some((rel.to_string(), bytes))
            })
            .collect())
    }

    /// Whether this local dataset keeps its files under `_pqdm/files/` (every dataset does from
    /// its first commit by this pqdm on).
    pub fn keeps_files(&self) -> bool {
        use std::sync::atomic::Ordering;
        if self.keeps.load(Ordering::Relaxed) {
            return true;
        }
        let keeps = self.remote.is_none() && self.meta(FILES_DIR).is_dir();
        self.keeps.store(keeps, Ordering::Relaxed);
        keeps
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

    /// Gives a committed file back whichever of its two copies (tree, kept) it lost, from the
    /// other (a hard link locally, a server-side copy on object storage); `false` when both
    /// are gone or the dataset keeps no copies.
    pub fn restore_links(&self, _lock: &CommitLock, rel: &str) -> Result<bool> {
        if let Some(r) = &self.remote {
            let kept = Self::kept_rel(rel);
            return match (r.head(rel)?.is_some(), r.head(&kept)?.is_some()) {
                (true, true) => Ok(true),
                (true, false) => r.copy(rel, &kept).map(|_| true),
                (false, true) => r.copy(&kept, rel).map(|_| true),
                (false, false) => Ok(false),
            };
        }
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

    /// Commits `next` (whose `version` must be the current version + 1): moves `staged`
    /// files (absolute staged path, final relative path) into the dataset, creates the version
    /// (the commit point), and takes the `replaced` files (relative paths) out of the tree.
    /// An error means nothing was committed; once the version exists, the commit succeeds
    /// (what is left to tidy is logged as a warning and finished by the next writer).
    ///
    /// On object storage `next.kept_since` is set here when the dataset did not keep its
    /// files yet (an earlier pqdm's): this commit gives every current file its kept copy.
    pub fn commit(
        &self,
        _lock: &CommitLock,
        next: &mut Manifest,
        staged: &[(PathBuf, String)],
        replaced: &[String],
    ) -> Result<()> {
        if let Some(r) = &self.remote {
            return self.commit_remote(r, next, staged, replaced);
        }
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
        let bytes = serde_json::to_vec(next).expect("manifest serialises");
        log::debug!("version {}: journaled", next.version);
        if let Err(e) = self.commit_local(next, &bytes, staged, &journal_dir) {
            // Nothing is committed: undo what the journal names now, as recovery would.
            if let Err(undo) = self.recover(_lock) {
                log::warn!(
                    "undoing the failed commit of version {} failed ({undo}); the next writer undoes it",
                    next.version
                );
            }
            return Err(e);
        }
        // The commit point has passed: nothing below may fail the commit.
        log::debug!("version {}: committed", next.version);
        if let Err(e) = self.finish_local(next, &bytes, replaced, &journal_path) {
            log::warn!(
                "version {} of {} is committed; tidying up after it failed ({e}); the next writer finishes it",
                next.version,
                self.base.display()
            );
        }
        Ok(())
    }

    /// A local commit up to and including its commit point (see [`Store::commit`]).
    fn commit_local(
        &self,
        next: &Manifest,
        bytes: &[u8],
        staged: &[(PathBuf, String)],
        journal_dir: &Path,
    ) -> Result<()> {
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
        let staged_rels: std::collections::HashSet<&str> =
            staged.iter().map(|(_, rel)| rel.as_str()).collect();
        for f in &next.files {
            if staged_rels.contains(f.path.as_str()) {
                continue;
            }
            if f.added_in == next.version {
                self.keep(&f.path)?;
            } else if upgrade && let Err(e) = self.keep(&f.path) {
                // A file the dataset lost before this pqdm; `verify` reports it as missing.
                log::warn!("{e}");
            }
        }
        mkdirs(&self.meta(FILES_DIR))?;
        log::debug!("version {}: {} files linked", next.version, staged.len());
        // The new files (contents and names) must be durable before the version that lists
        // them: one `syncfs` of the dataset's filesystem instead of a sync per folder (a write
        // into 10,000 partitions touches 20,000 folders).
        sync_filesystem(&self.base)?;
        log::debug!("version {}: synced", next.version);
        crate::failpoint::hit("commit.moved")?;
        self.create_version(next.version, bytes)
    }

    /// Creates `_pqdm/versions/<N>.json`, failing with [`Error::Conflict`] if it exists: a
    /// synced temporary file hard-linked to its name (atomic, never overwrites), then the
    /// folder synced. This is a local commit's commit point.
    fn create_version(&self, number: u64, bytes: &[u8]) -> Result<()> {
        let dir = self.meta("versions");
        mkdirs(&dir)?;
        let version = self.version_path(number);
        let tmp = dir.join(format!(
            "_{:020}.{}.{}.tmp",
            number,
            std::process::id(),
            crate::metrics::new_op_id()
        ));
        {
            let mut f = File::create(&tmp).map_err(Error::io(&tmp))?;
            f.write_all(bytes).map_err(Error::io(&tmp))?;
            f.sync_all().map_err(Error::io(&tmp))?;
        }
        crate::failpoint::hit("commit.version_written")?;
        let linked = fs::hard_link(&tmp, &version);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::Conflict(format!(
                    "{}: version {} exists already (made by another writer); nothing of this change was committed",
                    self.base.display(),
                    number
                )));
            }
            Err(e) => return Err(Error::io(&version)(e)),
        }
        // Committed: a failed sync of the folder is reported, not a failed commit.
        if let Err(e) = sync_dir(&dir) {
            log::warn!("version {} is committed, but {e}", number);
        }
        Ok(())
    }

    /// After the commit point of `next`: the copies for other readers, the replaced files out
    /// of the tree, the journal deleted.
    fn finish_local(
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
    fn unlink_replaced(&self, replaced: &[String]) -> Result<()> {
        for rel in replaced {
            let live = self.data_path(rel);
            if !live.exists() {
                continue;
            }
            self.keep(rel)?;
            self.remove_file_and_dirs(&live, &self.base)?;
        }
        Ok(())
    }

    /// The object-storage commit. Files go up once per write to `_pqdm/staging/<op>/` (hidden,
    /// not `.parquet`); each attempt then journals its target version, copies them to their keys
    /// in the tree (server side) and creates the version with a conditional put. A lost race
    /// deletes the copies and keeps the staged objects for the next attempt (an attempt whose
    /// file under the same name has other bytes uploads it again).
    fn commit_remote(
        &self,
        r: &Remote,
        next: &mut Manifest,
        staged: &[(PathBuf, String)],
        replaced: &[String],
    ) -> Result<()> {
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
        let staging_key = |rel: &str| Self::meta_rel(&format!("staging/{op}/{rel}{STAGED_SUFFIX}"));
        let checksums: std::collections::HashMap<&str, &str> = next
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
        r.upload_many(&files)?;
        self.uploaded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(pending.into_iter().map(|(_, key, sum)| (key, sum)));
        let journal_key = Self::meta_rel(&format!("journal/{op}-{:020}.json", next.version));
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
            self.keep_remote(r, next, staged, replaced)?;
        }
        // Each new file twice: in the tree for plain readers, kept for pqdm's readers.
        let copies: Vec<(String, String)> = staged
            .iter()
            .flat_map(|(_, rel)| {
                [
                    (staging_key(rel), rel.clone()),
                    (staging_key(rel), Self::kept_rel(rel)),
                ]
            })
            .collect();
        r.copy_many(&copies)?;
        crate::failpoint::hit("commit.moved")?;
        // Fence: a writer stalled past the stale age may have had its journal and copies
        // removed by another writer's recovery; it must not then commit a version naming them.
        if r.head(&journal_key)?.is_none() {
            r.delete_many(Self::placed_keys(staged))?;
            return Err(Error::Storage {
                location: format!("{}/{journal_key}", r.url()),
                message: "this commit stalled so long that another writer took it for dead and undid it; nothing was committed, write again".into(),
            });
        }
        let bytes = serde_json::to_vec(next).expect("manifest serialises");
        let version_key = Self::version_rel(next.version);
        let made = match r.put_new(&version_key, bytes.clone()) {
            Ok(true) => Ok(true),
            // The store may have applied the put and lost its answer (an error, or a retry of
            // it that found the version made): version N's content decides whose it is.
            answer => match r.get(&version_key) {
                Ok(Some(b)) => Ok(serde_json::from_slice::<serde_json::Value>(&b)
                    .is_ok_and(|v| v["operation"]["op_id"] == op.as_str())),
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
        };
        if !matches!(made, Ok(true)) {
            // Another writer made this version first (or the store refused): the copies are
            // no one's. The staged objects stay for another attempt, unless this was an error.
            let mut gone: Vec<String> = Self::placed_keys(staged).collect();
            if made.is_err() {
                gone.extend(staged.iter().map(|(_, rel)| staging_key(rel)));
            }
            gone.push(journal_key);
            r.delete_many(gone)?;
            made?;
            return Err(Error::Conflict(format!(
                "{}: version {} was committed by another writer first; nothing of this change was committed",
                r.url(),
                next.version
            )));
        }
        // The commit point has passed: nothing below may fail the commit.
        let tidy = || -> Result<()> {
            crate::failpoint::hit("commit.tidy")?;
            r.put(MANIFEST_FILE, bytes)?;
            self.write_summary(next)?;
            self.finish_remote(r, &journal)?;
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

    /// Object storage: deletes the staged objects this handle uploaded for operation `op_id`'s
    /// commit attempts that did not land (a merge redone, a writer giving up); nothing to do on
    /// a local disk.
    pub(crate) fn discard_uploads(&self, op_id: &str) -> Result<()> {
        let Some(r) = self.remote() else {
            return Ok(());
        };
        let prefix = Self::meta_rel(&format!("staging/{op_id}/"));
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
        r.delete_many(keys)
    }

    /// The keys a commit attempt places its staged files at (tree and kept copy), to delete
    /// when the attempt does not land.
    fn placed_keys(staged: &[(PathBuf, String)]) -> impl Iterator<Item = String> + '_ {
        staged
            .iter()
            .flat_map(|(_, rel)| [rel.clone(), Self::kept_rel(rel)])
    }

    /// Object storage, the first commit of this pqdm on a dataset of an earlier one: gives
    /// every file of the current version (those `next` keeps and those it replaces) its kept
    /// copy (server side, once), before the commit point. A file the tree lost is left to
    /// `verify`, which reports it missing.
    fn keep_remote(
        &self,
        r: &Remote,
        next: &Manifest,
        staged: &[(PathBuf, String)],
        replaced: &[String],
    ) -> Result<()> {
        let staged: std::collections::HashSet<&str> =
            staged.iter().map(|(_, rel)| rel.as_str()).collect();
        let copies: Vec<(String, String)> = next
            .files
            .iter()
            .map(|f| f.path.as_str())
            .filter(|rel| !staged.contains(rel))
            .chain(replaced.iter().map(String::as_str))
            .map(|rel| (rel.to_string(), Self::kept_rel(rel)))
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
    fn finish_remote(&self, r: &Remote, journal: &Journal) -> Result<()> {
        if journal.kept {
            if !journal.moved_out.is_empty() {
                let record = Removed {
                    removed_at_ms: chrono::Utc::now().timestamp_millis(),
                    files: journal.moved_out.clone(),
                };
                r.put(
                    &Self::removed_rel(journal.target_version),
                    serde_json::to_vec(&record).expect("record serialises"),
                )?;
            }
            return r.delete_many(journal.moved_out.iter().cloned());
        }
        let copies: Vec<(String, String)> = journal
            .moved_out
            .iter()
            .map(|rel| (rel.clone(), Self::replaced_rel(rel)))
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

    /// Finishes or undoes the commits of writers that died mid-commit on object storage: a
    /// journal older than [`stale_secs`] belongs to a dead writer (an attempt takes seconds).
    /// Its version made (by it): the replaced files move out; else its copies are deleted.
    fn recover_remote(&self, r: &Remote) -> Result<()> {
        let journals = r.list_aged(&Self::meta_rel("journal/"))?;
        if journals.iter().all(|(_, _, age)| *age < stale_secs()) {
            return Ok(());
        }
        let current = self.load_current_remote(r)?;
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
            let made = r
                .get(&Self::version_rel(journal.target_version))?
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .is_some_and(|v| v["operation"]["op_id"] == journal.op_id.as_str());
            if made {
                log::warn!(
                    "recovery: finishing commit of version {}",
                    journal.target_version
                );
                self.finish_remote(r, &journal)?;
            } else {
                log::warn!(
                    "recovery: removing what a dead writer copied for version {}",
                    journal.target_version
                );
                let live: std::collections::BTreeSet<&str> = current
                    .iter()
                    .flat_map(|m| m.files.iter().map(|f| f.path.as_str()))
                    .collect();
                let dead: Vec<(PathBuf, String)> = journal
                    .moved_in
                    .iter()
                    .filter(|rel| !live.contains(rel.as_str()))
                    .map(|rel| (PathBuf::new(), rel.clone()))
                    .collect();
                r.delete_many(Self::placed_keys(&dead))?;
            }
            r.delete(&key)?;
        }
        Ok(())
    }

    /// Deletes what dead writers staged on object storage (staged objects older than
    /// [`stale_secs`]); returns the bytes freed. Nothing to do on a local disk, where staging
    /// folders are removed by the next writer.
    pub fn remove_stale_staging(&self, _lock: &CommitLock) -> Result<u64> {
        let Some(r) = &self.remote else {
            return Ok(0);
        };
        let stale: Vec<(String, u64, i64)> = r
            .list_aged(&Self::meta_rel("staging/"))?
            .into_iter()
            .filter(|(_, _, age)| *age >= stale_secs())
            .collect();
        let freed = stale.iter().map(|(_, size, _)| size).sum();
        r.delete_many(stale.into_iter().map(|(key, _, _)| key))?;
        Ok(freed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seen in review while fuzzing, confirmed with the `manifest` fuzz target: a version whose
    /// files' rows add up beyond `u64` (edited by hand) made `key_summaries` (`pqdm info`) and
    /// the next commit's summary panic on overflow; it is refused when loaded, like a file
    /// listed twice.
    #[test]
    fn a_version_whose_rows_or_bytes_overflow_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path()).unwrap();
        let kind = crate::schema::builtin_kinds().remove(0);
        let settings = Settings {
            compression: "snappy".into(),
            max_rows_per_file: 1,
            auto_compact: None,
        };
        let file = |path: &str, rows: u64, bytes: u64| FileEntry {
            path: path.into(),
            partition: BTreeMap::new(),
            rows,
            bytes,
            min_timestamp: None,
            max_timestamp: None,
            key_ranges: BTreeMap::new(),
            checksum: String::new(),
            added_in: 1,
        };
        let parse = |files: Vec<FileEntry>| {
            let mut m = Manifest::empty(dir.path(), &kind, vec![], vec![], settings.clone());
            m.files = files;
            store.parse(Path::new("v.json"), &serde_json::to_vec(&m).unwrap())
        };
        // A version number whose successor would overflow is refused the same way.
        let mut m = Manifest::empty(dir.path(), &kind, vec![], vec![], settings.clone());
        m.version = u64::MAX;
        let err = store
            .parse(Path::new("v.json"), &serde_json::to_vec(&m).unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("holds version 18446744073709551615"), "{err}");
        m.version = MAX_VERSION;
        assert!(
            store
                .parse(Path::new("v.json"), &serde_json::to_vec(&m).unwrap())
                .is_ok()
        );
        assert!(parse(vec![file("a", u64::MAX, 1), file("b", 0, 1)]).is_ok());
        for files in [
            vec![file("a", u64::MAX, 1), file("b", 1, 1)],
            vec![file("a", 1, u64::MAX), file("b", 1, 1)],
        ] {
            let err = parse(files).unwrap_err().to_string();
            assert!(
                err.contains("v.json lists files whose rows or bytes add up to more than"),
                "{err}"
            );
        }
    }

    #[test]
    fn staged_names_are_flat_where_they_fit_and_read_back_as_their_folder() {
        let name = "part-x-0000000000.parquet.staged";
        assert_eq!(Staging::name_for("", name), name);
        assert_eq!(
            Staging::name_for("a=1/b=%25%25", name),
            format!("a=1%%b=%25%25%%{name}")
        );
        // An escaped value never holds the separator: `%` only starts `%XX`.
        let value = crate::partition::escape("%%/..%");
        assert!(!value.contains(FLAT_SEPARATOR), "{value}");
        let long = ["a", "b", "c"]
            .map(|k| format!("{k}={}", "X".repeat(100)))
            .join("/");
        assert_eq!(Staging::name_for(&long, name), format!("{long}/{name}"));

        let dir = tempfile::tempdir().unwrap();
        let staging = Staging {
            dir: dir.path().to_path_buf(),
            _guard: File::create(dir.path().join("guard")).unwrap(),
        };
        for rel in [
            Staging::name_for("a=1/b=2", name),
            Staging::name_for(&long, name),
            Staging::name_for("", name),
        ] {
            let path = dir.path().join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            File::create(path).unwrap();
        }
        let rels: Vec<String> = staging
            .files()
            .unwrap()
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        let plain = name.strip_suffix(STAGED_SUFFIX).unwrap();
        assert_eq!(
            rels,
            vec![
                format!("a=1/b=2/{plain}"),
                format!("{long}/{plain}"),
                plain.to_string(),
            ]
        );
    }

    fn entry(path: &str, rows: u64, range: Option<(i64, i64)>) -> FileEntry {
        FileEntry {
            path: path.into(),
            partition: crate::partition::parse_path(path).into_iter().collect(),
            rows,
            bytes: rows * 10,
            min_timestamp: range.map(|r| r.0),
            max_timestamp: range.map(|r| r.1),
            key_ranges: BTreeMap::new(),
            checksum: String::new(),
            added_in: 1,
        }
    }

    #[test]
    fn the_summary_counts_every_key_and_skips_derived_columns() {
        let kinds = crate::schema::KindRegistry::default();
        let field = |name: &str, dtype| Field {
            name: name.into(),
            dtype,
        };
        let mut m = Manifest::empty(
            Path::new("/x"),
            kinds.get("klines").unwrap(),
            vec![],
            vec![field("symbol", ColType::Str), field("day", ColType::I8)],
            Settings {
                compression: "snappy".into(),
                max_rows_per_file: 10,
                auto_compact: None,
            },
        );
        let totals = |m: &Manifest| {
            (
                m.file_count,
                m.total_rows,
                m.total_bytes,
                m.latest_timestamp,
                m.earliest_timestamp,
            )
        };
        m.refresh_summary();
        assert_eq!(totals(&m), (0, 0, 0, None, None));
        assert_eq!(m.key_summaries(), []);
        m.files = vec![
            entry("symbol=B/day=5/a.parquet", 3, Some((i64::MIN, 10))),
            entry("symbol=A/day=5/b.parquet", 2, Some((20, 30))),
            entry("symbol=B/day=6/c.parquet", 4, Some((40, i64::MAX))),
            entry("symbol=__HIVE_DEFAULT_PARTITION__/day=6/d.parquet", 1, None),
            entry("symbol=A/day=7/e.parquet", 0, None),
        ];
        m.refresh_summary();
        assert_eq!(totals(&m), (5, 10, 100, Some(i64::MAX), Some(i64::MIN)));
        let key = |v: Option<&str>| BTreeMap::from([("symbol".to_string(), v.map(String::from))]);
        let summary = |v, files, rows, min, max| KeySummary {
            key: key(v),
            files,
            rows,
            bytes: rows * 10,
            min_timestamp: min,
            max_timestamp: max,
        };
        // Null sorts first; a key whose files hold no timestamps has no range and no latest.
        assert_eq!(
            m.key_summaries(),
            [
                summary(None, 1, 1, None, None),
                summary(Some("A"), 2, 2, Some(20), Some(30)),
                summary(Some("B"), 2, 7, Some(i64::MIN), Some(i64::MAX)),
            ]
        );
        assert_eq!(
            m.latest_by_key,
            [
                LatestEntry {
                    key: key(Some("A")),
                    latest_timestamp: 30
                },
                LatestEntry {
                    key: key(Some("B")),
                    latest_timestamp: i64::MAX
                },
            ]
        );
    }
}
