//! The manifest: `_manifest.json` (the current version), its history under `_pqdm/versions/`,
//! and the commit protocol. This is the only module that reads or writes `_manifest.json`
//! and `_pqdm/`.
//!
//! A commit, under the dataset's lock file:
//! 1. writes a journal (`_pqdm/journal/<tx>.json`) naming the files it moves in and out;
//! 2. moves the staged files (`*.parquet.staged`, invisible to readers) into the hive tree;
//! 3. writes `_pqdm/versions/<N>.json`, then renames a temporary file over `_manifest.json`;
//! 4. moves the replaced files to `_pqdm/replaced/<path>.replaced` (kept for `--version`);
//! 5. deletes the journal.
//!
//! A crash before step 3 ends is rolled back by the next writer (moved-in files removed), a
//! crash after it is rolled forward (replaced files moved out), so readers only ever see
//! whole versions, and plain readers (pyarrow, DuckDB, Polars globs) never see staged files.
//!
//! On object storage (`s3://`) there is no rename and no lock: a commit uploads the new files
//! to keys no other writer uses (the operation id is in every name), then creates
//! `_pqdm/versions/<N>.json` with a conditional put (create if absent). Exactly one writer
//! can create version N; the others get [`Error::Conflict`] and nothing of theirs is visible.
//! `_manifest.json` is then overwritten as a hint: readers start from it and look for
//! version N+1, N+2, ... by name (a GET each), so finding the current version lists nothing.
//! Replaced files are then copied under `_pqdm/replaced/` and deleted from the tree.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
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
/// The suffix of files a commit replaced.
pub const REPLACED_SUFFIX: &str = ".replaced";

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
    /// Object storage: the staged objects this handle has uploaded (kept across commit attempts).
    uploaded: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

/// The exclusive commit lock; released when dropped (or when the process dies). On object
/// storage there is no lock file: the conditional put of the version decides instead.
pub struct CommitLock {
    _file: Option<File>,
}

/// A private staging folder for one write, removed when dropped.
pub struct Staging {
    dir: PathBuf,
    _guard: File,
}

impl Staging {
    /// The staging folder (hive layout below it, files end in `.parquet.staged`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every staged file, as (absolute path, final relative path).
    pub fn files(&self) -> Result<Vec<(PathBuf, String)>> {
        let mut out = vec![];
        walk(&self.dir, &mut |p| {
            let name = p.to_string_lossy();
            if let Some(stripped) = name.strip_suffix(STAGED_SUFFIX)
                && let Ok(rel) = Path::new(stripped).strip_prefix(&self.dir)
            {
                out.push((p.to_path_buf(), rel_string(rel)));
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

/// The journal of one commit in flight.
#[derive(Serialize, Deserialize)]
struct Journal {
    target_version: u64,
    /// The writing operation (object storage: tells whose the version is).
    #[serde(default)]
    op_id: String,
    moved_in: Vec<String>,
    moved_out: Vec<String>,
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
            });
        }
        Ok(Store {
            base,
            remote: None,
            uploaded: Default::default(),
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

    /// Where a file of any version is now on a local disk: in the tree, or among the replaced
    /// files (object storage answers from the manifests instead, see `Dataset::file_paths`).
    pub fn locate(&self, rel: &str) -> PathBuf {
        let live = self.data_path(rel);
        if live.exists() {
            return live;
        }
        let kept = self.replaced_path(rel);
        if kept.exists() { kept } else { live }
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
            None => Ok(self.base.join(MANIFEST_FILE).is_file()),
        }
    }

    fn parse(&self, path: &Path, bytes: &[u8]) -> Result<Manifest> {
        let head: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| Error::Dataset {
                path: self.base.clone(),
                message: format!(
                    "{} is not valid JSON ({e}); `pqdm verify --repair` can rebuild it",
                    path.display()
                ),
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
        for f in &manifest.files {
            let p = Path::new(&f.path);
            if p.is_absolute()
                || p.components()
                    .any(|c| !matches!(c, std::path::Component::Normal(_)))
            {
                return Err(Error::Dataset {
                    path: self.base.clone(),
                    message: format!(
                        "{} lists a file outside the dataset: {}",
                        path.display(),
                        f.path
                    ),
                });
            }
        }
        Ok(manifest)
    }

    /// What identifies the current manifest file (device, inode, size, modification time): every
    /// commit renames a new file into place, so an unchanged stamp means an unchanged manifest.
    /// On object storage there is none (every call reads the manifest again).
    pub fn stamp(&self) -> Option<(u64, u64, u64, i64)> {
        use std::os::unix::fs::MetadataExt;
        if self.remote.is_some() {
            return None;
        }
        let m = fs::metadata(self.base.join(MANIFEST_FILE)).ok()?;
        Some((
            m.dev(),
            m.ino(),
            m.len(),
            m.mtime_nsec() + m.mtime() * 1_000_000_000,
        ))
    }

    /// Loads the current manifest; `None` when the folder has none.
    pub fn load_current(&self) -> Result<Option<Manifest>> {
        if let Some(r) = &self.remote {
            return self.load_current_remote(r);
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
    fn load_current_remote(&self, r: &Remote) -> Result<Option<Manifest>> {
        let mut current = match r.get(MANIFEST_FILE)? {
            Some(bytes) => self.parse(&self.base.join(MANIFEST_FILE), &bytes)?,
            None => match r.get(&Self::version_rel(0))? {
                Some(bytes) => self.parse(&self.base.join(Self::version_rel(0)), &bytes)?,
                None => return Ok(None),
            },
        };
        while let Some(bytes) = r.get(&Self::version_rel(current.version + 1))? {
            let rel = Self::version_rel(current.version + 1);
            current = self.parse(&self.base.join(rel), &bytes)?;
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
            let newer = r.head(&Self::version_rel(summary.version + 1)).ok()?;
            return newer.is_none().then_some(summary);
        }
        self.try_recover();
        serde_json::from_slice(&fs::read(self.meta("summary.json")).ok()?).ok()
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
            Ok(bytes) => self.parse(&path, &bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::Dataset {
                path: self.base.clone(),
                message: format!("version {version} is not kept (see `pqdm history`)"),
            }),
            Err(e) => Err(Error::io(&path)(e)),
        }
    }

    /// The version numbers kept in the history, oldest first.
    pub fn versions(&self) -> Result<Vec<u64>> {
        let number = |name: &str| {
            name.rsplit('/')
                .next()
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(|n| n.parse::<u64>().ok())
        };
        let mut out = vec![];
        match &self.remote {
            Some(r) => out.extend(
                r.list(&Self::meta_rel("versions"))?
                    .iter()
                    .filter_map(|(rel, _)| number(rel)),
            ),
            None => walk(&self.meta("versions"), &mut |p| {
                out.extend(p.to_str().and_then(number));
            })?,
        }
        out.sort_unstable();
        Ok(out)
    }

    /// Takes the commit lock (waiting for other writers), then finishes any commit a crashed
    /// writer left half done.
    pub fn lock(&self) -> Result<CommitLock> {
        if let Some(r) = &self.remote {
            let lock = CommitLock { _file: None };
            self.remove_dead_staging();
            self.recover_remote(r)?;
            return Ok(lock);
        }
        let dir = self.base.join(META_DIR);
        mkdirs(&dir)?;
        let path = dir.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(Error::io(&path))?;
        file.lock().map_err(Error::io(&path))?;
        let lock = CommitLock { _file: Some(file) };
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
        let Ok(file) = OpenOptions::new().write(true).open(&path) else {
            return;
        };
        if file.try_lock().is_ok() {
            let lock = CommitLock { _file: Some(file) };
            if let Err(e) = self.recover(&lock) {
                log::warn!("recovery of {} failed: {e}", self.base.display());
            }
        }
    }

    /// Creates a private staging folder for one write.
    pub fn staging(&self, tx: &str) -> Result<Staging> {
        let root = self.staging_root();
        mkdirs(&root)?;
        let guard_path = root.join(format!("{tx}.lock"));
        let guard = File::create(&guard_path).map_err(Error::io(&guard_path))?;
        guard.lock().map_err(Error::io(&guard_path))?;
        let dir = root.join(tx);
        mkdirs(&dir)?;
        Ok(Staging { dir, _guard: guard })
    }

    /// Rolls back or forward what crashed writers left (journals, staging folders).
    fn recover(&self, _lock: &CommitLock) -> Result<()> {
        let journal_dir = self.meta("journal");
        let mut journals = vec![];
        walk(&journal_dir, &mut |p| journals.push(p.to_path_buf()))?;
        if !journals.is_empty() {
            let current = self.load_current()?.map(|m| m.version).unwrap_or(0);
            for path in journals {
                let Ok(bytes) = fs::read(&path) else { continue };
                let Ok(journal) = serde_json::from_slice::<Journal>(&bytes) else {
                    let _ = fs::remove_file(&path);
                    continue;
                };
                if current >= journal.target_version {
                    if let Some(m) = self.load_current()? {
                        self.write_summary(&m)?;
                    }
                    log::warn!(
                        "recovery: finishing commit of version {}",
                        journal.target_version
                    );
                    for rel in &journal.moved_out {
                        let live = self.data_path(rel);
                        if live.exists() {
                            move_file(&live, &self.replaced_path(rel))?;
                            if let Some(parent) = live.parent() {
                                prune_empty_dirs(parent, &self.base);
                            }
                        }
                    }
                } else {
                    log::warn!(
                        "recovery: rolling back uncommitted version {}",
                        journal.target_version
                    );
                    for rel in &journal.moved_in {
                        let live = self.data_path(rel);
                        let _ = fs::remove_file(&live);
                        if let Some(parent) = live.parent() {
                            prune_empty_dirs(parent, &self.base);
                        }
                    }
                    let _ = fs::remove_file(self.version_path(journal.target_version));
                }
                fs::remove_file(&path).map_err(Error::io(&path))?;
            }
        }
        self.remove_dead_staging();
        Ok(())
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
        if let Ok(entries) = fs::read_dir(&staging) {
            for entry in entries.flatten() {
                let p = entry.path();
                if p.extension().is_some_and(|e| e == "lock") {
                    continue;
                }
                let guard = p.with_extension("lock");
                let free = match File::open(&guard) {
                    Ok(f) => f.try_lock().is_ok(),
                    Err(_) => true,
                };
                if free {
                    let _ = fs::remove_dir_all(&p);
                    let _ = fs::remove_file(&guard);
                }
            }
        }
    }

    /// Removes a dataset that holds nothing (version 0, no data files): its manifest, `_pqdm/`,
    /// and the base folder if that is then empty. Used when the write that created it failed.
    pub fn remove_if_empty(&self) -> Result<bool> {
        let lock = self.lock()?;
        let Some(m) = self.load_current()? else {
            return Ok(false);
        };
        if m.version != 0
            || !m.files.is_empty()
            || !crate::foreign::list_files(&self.base)?.is_empty()
        {
            return Ok(false);
        }
        if let Some(r) = &self.remote {
            r.delete(MANIFEST_FILE)?;
            r.delete(&Self::version_rel(0))?;
            r.delete(&Self::meta_rel("summary.json"))?;
            return Ok(true);
        }
        let manifest = self.base.join(MANIFEST_FILE);
        fs::remove_file(&manifest).map_err(Error::io(&manifest))?;
        drop(lock);
        let meta = self.base.join(META_DIR);
        fs::remove_dir_all(&meta).map_err(Error::io(&meta))?;
        let _ = fs::remove_dir(&self.base);
        Ok(true)
    }

    /// The files kept under `_pqdm/replaced/` for older versions: (relative path, bytes).
    pub fn replaced_files(&self) -> Result<Vec<(String, u64)>> {
        if let Some(r) = &self.remote {
            let root = Self::meta_rel("replaced/");
            return Ok(r
                .list(&root)?
                .into_iter()
                .filter_map(|(rel, bytes)| {
                    let rel = rel.strip_prefix(&root)?.strip_suffix(REPLACED_SUFFIX)?;
                    Some((rel.to_string(), bytes))
                })
                .collect());
        }
        let root = self.meta("replaced");
        let mut out = vec![];
        walk(&root, &mut |p| {
            if let Ok(rel) = p.strip_prefix(&root)
                && let Some(rel) = rel_string(rel).strip_suffix(REPLACED_SUFFIX)
            {
                let bytes = fs::metadata(p).map(|m| m.len()).unwrap_or(0);
                out.push((rel.to_string(), bytes));
            }
        })?;
        out.sort();
        Ok(out)
    }

    /// Deletes kept replaced files (relative paths) for good (in bulk on object storage).
    pub fn delete_replaced(&self, _lock: &CommitLock, rels: &[String]) -> Result<()> {
        if let Some(r) = &self.remote {
            return r.delete_many(rels.iter().map(|rel| Self::replaced_rel(rel)));
        }
        for rel in rels {
            let path = self.replaced_path(rel);
            fs::remove_file(&path).map_err(Error::io(&path))?;
            if let Some(parent) = path.parent() {
                prune_empty_dirs(parent, &self.meta("replaced"));
            }
        }
        Ok(())
    }

    /// Deletes the history files of `versions` (never the current one; in bulk on object storage).
    pub fn delete_versions(&self, _lock: &CommitLock, versions: &[u64]) -> Result<()> {
        if let Some(r) = &self.remote {
            return r.delete_many(versions.iter().map(|v| Self::version_rel(*v)));
        }
        for v in versions {
            let path = self.version_path(*v);
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

    /// Commits `next` (whose `version` must be the current version + 1): moves `staged`
    /// files (absolute staged path, final relative path) into the tree, switches the manifest,
    /// and moves the `replaced` files (relative paths) out of the tree.
    pub fn commit(
        &self,
        _lock: &CommitLock,
        next: &Manifest,
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
        };
        write_atomic(
            &journal_path,
            &serde_json::to_vec(&journal).expect("journal serialises"),
        )?;
        for (from, rel) in staged {
            move_file(from, &self.data_path(rel))?;
        }
        let bytes = serde_json::to_vec(next).expect("manifest serialises");
        mkdirs(&self.meta("versions"))?;
        let version = self.version_path(next.version);
        write_atomic(&version, &bytes)?;
        // The current manifest is the same bytes: a hard link renamed into place (one write,
        // still an atomic switch); a copy where the filesystem has no hard links.
        let tmp = self.meta(&format!("manifest.{}.tmp", std::process::id()));
        let _ = fs::remove_file(&tmp);
        match fs::hard_link(&version, &tmp) {
            Ok(()) => fs::rename(&tmp, self.base.join(MANIFEST_FILE))
                .map_err(Error::io(self.base.join(MANIFEST_FILE)))?,
            Err(_) => write_atomic(&self.base.join(MANIFEST_FILE), &bytes)?,
        }
        self.write_summary(next)?;
        for rel in replaced {
            let live = self.data_path(rel);
            move_file(&live, &self.replaced_path(rel))?;
            if let Some(parent) = live.parent() {
                prune_empty_dirs(parent, &self.base);
            }
        }
        fs::remove_file(&journal_path).map_err(Error::io(&journal_path))?;
        Ok(())
    }

    /// The object-storage commit. Files go up once per write to `_pqdm/staging/<op>/` (hidden,
    /// not `.parquet`); each attempt then journals its target version, copies them to their keys
    /// in the tree (server side) and creates the version with a conditional put. A lost race
    /// deletes the copies and keeps the staged objects for the next attempt.
    fn commit_remote(
        &self,
        r: &Remote,
        next: &Manifest,
        staged: &[(PathBuf, String)],
        replaced: &[String],
    ) -> Result<()> {
        let op = if next.operation.op_id.is_empty() {
            format!("v{}", next.version)
        } else {
            next.operation.op_id.clone()
        };
        let staging_key = |rel: &str| Self::meta_rel(&format!("staging/{op}/{rel}{STAGED_SUFFIX}"));
        let uploaded = |key: &str| {
            self.uploaded
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(key)
        };
        let pending: Vec<(PathBuf, String)> = staged
            .iter()
            .map(|(from, rel)| (from.clone(), staging_key(rel)))
            .filter(|(_, key)| !uploaded(key))
            .collect();
        r.upload_many(&pending)?;
        self.uploaded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(pending.into_iter().map(|(_, key)| key));
        let journal_key = Self::meta_rel(&format!("journal/{op}-{:020}.json", next.version));
        let journal = Journal {
            target_version: next.version,
            op_id: op.clone(),
            moved_in: staged.iter().map(|(_, rel)| rel.clone()).collect(),
            moved_out: replaced.to_vec(),
        };
        r.put(
            &journal_key,
            serde_json::to_vec(&journal).expect("journal serialises"),
        )?;
        let copies: Vec<(String, String)> = staged
            .iter()
            .map(|(_, rel)| (staging_key(rel), rel.clone()))
            .collect();
        r.copy_many(&copies)?;
        let bytes = serde_json::to_vec(next).expect("manifest serialises");
        let made = r.put_new(&Self::version_rel(next.version), bytes.clone());
        if !matches!(made, Ok(true)) {
            // Another writer made this version first (or the store refused): the copies are
            // no one's. The staged objects stay for another attempt, unless this was an error.
            let mut gone: Vec<String> = staged.iter().map(|(_, rel)| rel.clone()).collect();
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
            .iter()
            .filter(|k| k.starts_with(&prefix))
            .cloned()
            .collect();
        for key in &keys {
            uploaded.remove(key);
        }
        drop(uploaded);
        r.delete_many(keys)
    }

    /// After version `journal.target_version` is in: moves the files it replaced out of the tree.
    fn finish_remote(&self, r: &Remote, journal: &Journal) -> Result<()> {
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
                r.delete_many(
                    journal
                        .moved_in
                        .iter()
                        .filter(|rel| !live.contains(rel.as_str()))
                        .cloned(),
                )?;
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
