//! The manifest: what one version of a dataset holds (its files with their statistics, its
//! schema, partitioning, settings and summary), as written to `_pqdm/versions/<N>.json` and
//! copied to `_manifest.json` for other readers, and the checks every loaded version passes.
//! How a version is committed is [`crate::txn`]'s.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::schema::{ColType, Kind};

pub use crate::localfs::walk;

/// The manifest format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The largest version number a manifest may hold (`i64::MAX`, beyond any real history), so
/// that the next version's number is always in range.
pub const MAX_VERSION: u64 = i64::MAX as u64;
pub use crate::layout::{
    FILES_DIR, KEPT_SUFFIX, MANIFEST_FILE, META_DIR, REPLACED_SUFFIX, SOURCES_DIR, STAGED_SUFFIX,
};

/// Whether `name` can be a segment of the sources index: `<64 hex digits>.json`, the blake3
/// of its content (so no name from a manifest can point anywhere else).
pub fn is_segment_name(name: &str) -> bool {
    name.strip_suffix(".json").is_some_and(|hex| {
        hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

pub use crate::partition_values::PartitionValues;

/// One data file of a version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Path relative to the dataset base, with `/` separators.
    pub path: String,
    /// Partition values (unescaped; `None` is the null partition).
    pub partition: PartitionValues,
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
    /// Rows whose timestamp is null (a lenient write keeps them), from the file's statistics;
    /// `None`: unknown (entries of an earlier pqdm, files without the statistic).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub null_timestamps: Option<u64>,
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

/// The latest timestamp of each key of `keys` that has one.
pub(crate) fn latest_of(keys: &[KeySummary]) -> Vec<LatestEntry> {
    keys.iter()
        .filter_map(|k| {
            k.max_timestamp.map(|ts| LatestEntry {
                key: k.key.clone(),
                latest_timestamp: ts,
            })
        })
        .collect()
}

impl KeySummary {
    /// The summary of no file of the key whose columns `columns` hold `values`.
    pub(crate) fn empty(columns: &[&str], values: &[Option<&str>]) -> KeySummary {
        KeySummary {
            key: columns
                .iter()
                .zip(values)
                .map(|(k, v)| (k.to_string(), v.map(String::from)))
                .collect(),
            ..Default::default()
        }
    }
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
    /// A Delta checkpoint is written at every version divisible by this (`None`:
    /// [`crate::delta::DEFAULT_CHECKPOINT_INTERVAL`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_interval: Option<u64>,
    /// `_manifest.json` lists the files of a version of at most this many (`None`:
    /// [`MANIFEST_MAX_FILES`]); of a larger one, only its header and summary: the file list is
    /// the Delta log's, and a write reads from it only the partitions it touches (see
    /// [`Manifest::copy_json`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_max_files: Option<u64>,
}

/// The most files `_manifest.json` lists by default: 10,000 (about 4 MB, written in a few tens of
/// ms). Up to it the copy is a second record of the version's files, which `verify --repair`
/// rebuilds a damaged log from; beyond it, writing the copy would cost a commit more than its
/// change does (43 MB at 100,000 files).
pub const MANIFEST_MAX_FILES: u64 = 10_000;

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
    /// Files, rows, bytes and time range per partition key ([`Manifest::key_summaries`]), so
    /// that `info` answers without the file list; empty in a version without files, and in
    /// versions of an earlier pqdm (see [`Manifest::keys_known`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<KeySummary>,
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
    /// The id of the Delta table the dataset also is (see [`crate::delta`]); set when the
    /// dataset is created, or by the first commit of this pqdm to a dataset of an earlier one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_id: Option<String>,
    /// The first version whose Delta log entry carries pqdm's record of it (see
    /// [`crate::delta::record`]), with a checkpoint there when the log began before it (a
    /// dataset of an earlier pqdm): from it on, every version rebuilds from the log alone.
    /// `None`: written by an earlier pqdm (its next commit sets it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records_since: Option<u64>,
    /// The sources index: the segments under `_pqdm/sources/` listing the source files
    /// ingested up to this version, oldest first (see [`crate::ingested`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    /// Set (to [`FILES_IN_LOG`]) where `files` is not the version's whole list, which the
    /// Delta log holds: in `_manifest.json` once the log records every version (the copy
    /// holds no file list, see [`Manifest::copy_json`]), and in a write's snapshot of the
    /// partitions it touches ([`crate::txn::Store::load_current_where`]). `None`: `files` is
    /// every file of the version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_in: Option<String>,
    /// The data files (see [`Manifest::files_in`]; absent from a copy without them).
    #[serde(default)]
    pub files: Vec<FileEntry>,
}

/// Where a manifest's whole file list is when it does not hold it ([`Manifest::files_in`]).
pub const FILES_IN_LOG: &str = "_delta_log";

/// How a manifest without files ends when serialised (`files` is the last field).
const EMPTY_FILES: &[u8] = b",\"files\":[]}";
/// Whether the manifest JSON `bytes` has a `files` field (read only for a manifest without
/// files, which is small).
fn lists_files(bytes: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Fields {
        #[serde(default)]
        files: Option<serde::de::IgnoredAny>,
    }
    serde_json::from_slice::<Fields>(bytes).is_ok_and(|f| f.files.is_some())
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
            keys: vec![],
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
            table_id: Some(crate::delta::new_table_id()),
            records_since: Some(0),
            sources: vec![],
            files_in: None,
            files: vec![],
        }
    }

    /// Whether `files` is only some of the version's files (see [`Manifest::files_in`]): its
    /// header and summary are the version's, its file list is not.
    pub fn is_partial(&self) -> bool {
        self.files_in.is_some()
    }

    /// Recomputes the summary fields (counts, totals, latest timestamps) from `files`.
    pub fn refresh_summary(&mut self) {
        self.file_count = self.files.len() as u64;
        self.total_rows = self.files.iter().map(|f| f.rows).sum();
        self.total_bytes = self.files.iter().map(|f| f.bytes).sum();
        self.latest_timestamp = self.files.iter().filter_map(|f| f.max_timestamp).max();
        self.earliest_timestamp = self.files.iter().filter_map(|f| f.min_timestamp).min();
        self.keys = self.key_summaries();
        self.latest_by_key = latest_of(&self.keys);
    }

    /// Whether [`Manifest::keys`] holds the version's per-key summaries (a version of an
    /// earlier pqdm has none).
    pub fn keys_known(&self) -> bool {
        !self.keys.is_empty() || self.file_count == 0
    }

    /// Takes the summary fields (counts, totals, latest timestamps) of `from`.
    pub(crate) fn set_summary(&mut self, from: Manifest) {
        self.file_count = from.file_count;
        self.total_rows = from.total_rows;
        self.total_bytes = from.total_bytes;
        self.latest_timestamp = from.latest_timestamp;
        self.earliest_timestamp = from.earliest_timestamp;
        self.latest_by_key = from.latest_by_key;
        self.keys = from.keys;
    }

    /// The partition key's columns: the partition columns not derived from the timestamp (e.g.
    /// exchange/symbol/timeframe), in order.
    pub fn key_columns(&self) -> Vec<&str> {
        self.partition_columns
            .iter()
            .map(|f| f.name.as_str())
            .filter(|n| !crate::partition::is_derived(n))
            .collect()
    }

    /// Per partition key (see [`Manifest::key_columns`]): files, rows, bytes and time range.
    pub fn key_summaries(&self) -> Vec<KeySummary> {
        let key_cols = self.key_columns();
        // Keys borrowed from the files' values, nothing allocated per file, and a run of files
        // of one key (files are listed by path, key folders first) looked up once: at 100,000
        // files a copy and a lookup of each file's key took a tenth of a one-day upsert's commit.
        let mut out: BTreeMap<Vec<Option<&str>>, KeySummary> = BTreeMap::new();
        let mut values: Vec<Option<&str>> = Vec::with_capacity(key_cols.len());
        let mut run: Option<(Vec<Option<&str>>, KeySummary)> = None;
        for f in &self.files {
            values.clear();
            values.extend(key_cols.iter().map(|k| f.partition.value(k)));
            if run.as_ref().is_none_or(|(key, _)| *key != values) {
                if let Some((key, summary)) = run.take() {
                    out.insert(key, summary);
                }
                let summary = out
                    .remove(&values)
                    .unwrap_or_else(|| KeySummary::empty(&key_cols, &values));
                run = Some((values.clone(), summary));
            }
            let (_, e) = run.as_mut().expect("set above");
            e.files += 1;
            e.rows += f.rows;
            e.bytes += f.bytes;
            e.min_timestamp = min_opt(e.min_timestamp, f.min_timestamp);
            e.max_timestamp = e.max_timestamp.max(f.max_timestamp);
        }
        if let Some((key, summary)) = run {
            out.insert(key, summary);
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

    /// Parses the version file `path` of the dataset at `base`, refusing a newer format, a
    /// version number past [`MAX_VERSION`], totals that overflow, a path outside the dataset
    /// and a file listed twice (each names the file and what is wrong).
    pub fn parse(base: &Path, path: &Path, bytes: &[u8]) -> Result<Manifest> {
        // Straight into the struct (through a `serde_json::Value` first, a 40 MB manifest of
        // 100,000 files took twice as long); the format version is read on its own only to
        // explain a failure, or checked after success.
        let newer = |format: u64| Error::Dataset {
            path: base.to_path_buf(),
            message: format!(
                "{} has format version {format}, newer than this pqdm reads ({FORMAT_VERSION}); upgrade pqdm",
                path.display()
            ),
        };
        let parallel = (bytes.len() >= PARALLEL_PARSE_FROM)
            .then(|| parse_in_parallel(bytes))
            .flatten();
        let manifest: Manifest = match parallel.map_or_else(|| serde_json::from_slice(bytes), Ok) {
            Ok(m) => m,
            Err(e) if e.is_syntax() || e.is_eof() || e.is_io() => {
                return Err(Error::Dataset {
                    path: base.to_path_buf(),
                    message: format!("{} is not valid JSON ({e})", path.display()),
                });
            }
            Err(e) => {
                #[derive(Deserialize)]
                struct Head {
                    #[serde(default)]
                    format_version: Option<serde_json::Value>,
                }
                // Only an object has a format version (`[99]` would read as one).
                let object = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
                let format = object
                    .then(|| serde_json::from_slice::<Head>(bytes).ok())
                    .flatten()
                    .and_then(|h| h.format_version?.as_u64())
                    .unwrap_or(0);
                if format > FORMAT_VERSION as u64 {
                    return Err(newer(format));
                }
                return Err(Error::Dataset {
                    path: base.to_path_buf(),
                    message: format!("{} does not hold a pqdm manifest: {e}", path.display()),
                });
            }
        };
        if manifest.format_version > FORMAT_VERSION {
            return Err(newer(manifest.format_version as u64));
        }
        match manifest.files_in.as_deref() {
            // A manifest that lists its files must have the field (even empty).
            None if manifest.files.is_empty() && !lists_files(bytes) => {
                return Err(Error::Dataset {
                    path: base.to_path_buf(),
                    message: format!(
                        "{} does not hold a pqdm manifest: missing field `files`",
                        path.display()
                    ),
                });
            }
            None => {}
            Some(FILES_IN_LOG) if manifest.files.is_empty() => {}
            Some(other) => {
                return Err(Error::Dataset {
                    path: base.to_path_buf(),
                    message: format!(
                        "{} says its files are in {:?} and lists {} itself (edited by hand?)",
                        path.display(),
                        crate::error::clip(other),
                        manifest.files.len()
                    ),
                });
            }
        }
        // Far past any real history: refused, so that `version + 1` never overflows.
        if manifest.version > MAX_VERSION {
            return Err(Error::Dataset {
                path: base.to_path_buf(),
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
                        path: base.to_path_buf(),
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
                    path: base.to_path_buf(),
                    message: format!(
                        "{} lists a file outside the dataset ({why}): {}",
                        path.display(),
                        crate::error::clip(&f.path)
                    ),
                });
            }
            if !seen.insert(f.path.as_str()) {
                return Err(Error::Dataset {
                    path: base.to_path_buf(),
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

    /// This version without its file list (the same fields, `files` empty).
    pub fn without_files(&self) -> Manifest {
        Manifest {
            format_version: self.format_version,
            version: self.version,
            updated_at: self.updated_at.clone(),
            base_dir: self.base_dir.clone(),
            kind: self.kind.clone(),
            timestamp_column: self.timestamp_column.clone(),
            file_count: self.file_count,
            total_rows: self.total_rows,
            total_bytes: self.total_bytes,
            latest_timestamp: self.latest_timestamp,
            earliest_timestamp: self.earliest_timestamp,
            latest_by_key: self.latest_by_key.clone(),
            keys: self.keys.clone(),
            schema: self.schema.clone(),
            partition_columns: self.partition_columns.clone(),
            key: self.key.clone(),
            settings: self.settings.clone(),
            metadata: self.metadata.clone(),
            kind_spec: self.kind_spec.clone(),
            operation: self.operation.clone(),
            source: self.source.clone(),
            kept_since: self.kept_since,
            table_id: self.table_id.clone(),
            records_since: self.records_since,
            sources: self.sources.clone(),
            files_in: None,
            files: Vec::new(),
        }
    }

    /// The bytes of `_manifest.json` for this version: the whole manifest
    /// ([`Manifest::to_json`]) while it lists at most [`Settings::manifest_max_files`] files, or
    /// the log does not record every version (an earlier pqdm's history); else the header and
    /// summary alone, marked `"files_in":"_delta_log"` (at 100,000 files the whole list is 43
    /// MB, which every commit rewrote).
    pub fn copy_json(&self) -> Vec<u8> {
        let listed = self
            .settings
            .manifest_max_files
            .unwrap_or(MANIFEST_MAX_FILES);
        if self.records_since.is_none() || (!self.is_partial() && self.file_count <= listed) {
            return self.to_json();
        }
        let head = Manifest {
            files_in: Some(FILES_IN_LOG.to_string()),
            ..self.without_files()
        };
        let mut bytes = serde_json::to_vec(&head).expect("a manifest serialises");
        // Without a `files` field at all: an earlier pqdm, which requires one, then fails to
        // parse the copy and reads the version from the log (with `"files":[]` it would take
        // the dataset for empty).
        assert!(
            bytes.ends_with(EMPTY_FILES),
            "files is the manifest's last field"
        );
        bytes.truncate(bytes.len() - EMPTY_FILES.len());
        bytes.push(b'}');
        bytes
    }

    /// The manifest as JSON: the bytes `serde_json::to_vec` gives, with the file entries
    /// serialised in parallel (at 100,000 files, serialising took a fifth of a one-day upsert).
    pub fn to_json(&self) -> Vec<u8> {
        use rayon::prelude::*;
        let mut head = serde_json::to_vec(&self.without_files()).expect("a manifest serialises");
        // `files` is the struct's last field: the header ends with `"files":[]}`.
        assert!(head.ends_with(b"[]}"), "files is the manifest's last field");
        let tail = head.split_off(head.len() - 2);
        let chunks: Vec<Vec<u8>> = self
            .files
            .par_chunks(2048)
            .map(|files| {
                let mut out = Vec::with_capacity(files.len() * 420);
                for (i, f) in files.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    serde_json::to_writer(&mut out, f).expect("a file entry serialises");
                }
                out
            })
            .collect();
        head.reserve(chunks.iter().map(|c| c.len() + 1).sum::<usize>() + tail.len());
        for (i, chunk) in chunks.iter().enumerate() {
            if i > 0 {
                head.push(b',');
            }
            head.extend_from_slice(chunk);
        }
        head.extend_from_slice(&tail);
        head
    }

    /// The few fields `latest` needs (see [`Summary`]).
    pub fn summary(&self) -> Summary {
        Summary {
            version: self.version,
            total_rows: self.total_rows,
            file_count: self.file_count,
            latest_timestamp: self.latest_timestamp,
            latest_by_key: self.latest_by_key.clone(),
        }
    }
}

/// Manifests from this size up have their file entries parsed in parallel (see
/// [`parse_in_parallel`]).
const PARALLEL_PARSE_FROM: usize = 1 << 20;

/// What starts the file list in the manifests pqdm writes ([`Manifest::to_json`]: `files` is the
/// last field, entries without spaces, each starting with its path).
const FILES_KEY: &[u8] = b"\"files\":[";
/// The bytes between two file entries, from the first one's closing brace.
const NEXT_ENTRY: &[u8] = b"},{\"path\":\"";

/// The manifest in `bytes`, its file entries parsed on every core, when `bytes` has the shape
/// [`Manifest::to_json`] writes; `None` otherwise (edited by hand, another layout), and the
/// caller parses it whole. At 100,000 files, parsing took a third of a one-day upsert.
///
/// The list is cut before each `},{"path":"`, which cannot occur inside a JSON string (its
/// quotes would be escaped); a cut inside an entry (an unknown field holding such an object)
/// leaves a piece that is not one JSON object, and then the whole parse falls back. So when
/// every piece parses, the entries are exactly the array's.
fn parse_in_parallel(bytes: &[u8]) -> Option<Manifest> {
    use rayon::prelude::*;
    let start = find(bytes, FILES_KEY, 0)? + FILES_KEY.len();
    let end = bytes.len()
        - bytes
            .iter()
            .rev()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
    let list = bytes.get(start..end.checked_sub(2)?)?;
    if !bytes[..end].ends_with(b"]}") {
        return None;
    }
    let mut head = Vec::with_capacity(start + 2);
    head.extend_from_slice(&bytes[..start]);
    head.extend_from_slice(b"]}");
    let mut manifest: Manifest = serde_json::from_slice(&head).ok()?;
    if list.is_empty() {
        return Some(manifest);
    }
    // Chunks for the cores, each starting at an entry: the first cut at or after an even split.
    let pieces = rayon::current_num_threads() * 4;
    let mut cuts: Vec<usize> = (1..pieces)
        .filter_map(|k| find(list, NEXT_ENTRY, k * list.len() / pieces).map(|i| i + 1))
        .collect();
    cuts.dedup();
    let bounds: Vec<(usize, usize)> = std::iter::once(0)
        .chain(cuts.iter().map(|c| c + 1))
        .zip(cuts.iter().copied().chain(std::iter::once(list.len())))
        .collect();
    let chunks: Vec<Vec<FileEntry>> = bounds
        .into_par_iter()
        .map(|(from, to)| {
            let chunk = &list[from..to];
            let mut out = Vec::new();
            let mut at = 0;
            while let Some(i) = find(chunk, NEXT_ENTRY, at) {
                out.push(serde_json::from_slice(&chunk[at..=i]).ok()?);
                at = i + 2;
            }
            out.push(serde_json::from_slice(&chunk[at..]).ok()?);
            Some(out)
        })
        .collect::<Option<_>>()?;
    manifest.files = chunks.into_iter().flatten().collect();
    Some(manifest)
}

/// The first position at or after `from` where `needle` starts in `hay`.
fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let first = *needle.first()?;
    let mut at = from;
    while let Some(i) = hay.get(at..)?.iter().position(|b| *b == first) {
        let i = at + i;
        if hay[i..].starts_with(needle) {
            return Some(i);
        }
        at = i + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An empty klines manifest at `/t`.
    fn empty() -> Manifest {
        let settings = Settings {
            compression: "snappy".into(),
            max_rows_per_file: 10,
            auto_compact: None,
            checkpoint_interval: None,
            manifest_max_files: None,
        };
        let kind = crate::schema::builtin_kinds().remove(0);
        Manifest::empty(Path::new("/t"), &kind, vec![], vec![], settings)
    }

    #[test]
    fn a_large_manifest_parses_in_parallel_exactly_as_whole() {
        let mut m = empty();
        // Partition columns named like the manifest's own keys, values holding quotes, braces and
        // the very bytes the list is cut at, an empty list of key ranges and a full one.
        m.files = (0..3000)
            .map(|i| {
                let mut f = entry(
                    &format!("path=x{i}/files=[/f{i}.parquet"),
                    i,
                    Some((i as i64, 7)),
                );
                f.partition = PartitionValues::new([
                    ("path", Some(format!("x{i}"))),
                    ("files", Some("[".to_string())),
                    ("odd", Some(r#"},{"path":"y"#.to_string())),
                ]);
                if i % 7 == 0 {
                    f.key_ranges.insert("id".into(), [i64::MIN, i64::MAX]);
                }
                f
            })
            .collect();
        m.metadata
            .insert("files".into(), r#""files":[{"path":"z"}]"#.into());
        let bytes = m.to_json();
        let whole: Manifest = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(whole, m);
        assert_eq!(parse_in_parallel(&bytes), Some(m.clone()));
        // A file list of none, and of one.
        let mut few = m.clone();
        few.files.truncate(1);
        assert_eq!(parse_in_parallel(&few.to_json()), Some(few.clone()));
        few.files.clear();
        assert_eq!(parse_in_parallel(&few.to_json()), Some(few));
    }

    /// Once the log records every version, `_manifest.json` is the header and summary alone:
    /// it names where the files are and has no `files` field (an earlier pqdm, which requires
    /// one, then reads the log instead of taking the dataset for empty); a copy that says so
    /// and lists files, and one with neither, are refused.
    #[test]
    fn a_copy_without_files_names_where_they_are() {
        let mut m = empty();
        m.files = (0..3)
            .map(|i| entry(&format!("s=a/f{i}.parquet"), 1, None))
            .collect();
        m.refresh_summary();
        m.records_since = None;
        assert_eq!(
            m.copy_json(),
            m.to_json(),
            "an earlier pqdm's history: whole"
        );
        m.records_since = Some(0);
        assert_eq!(
            m.copy_json(),
            m.to_json(),
            "up to the limit of files listed: whole"
        );
        m.settings.manifest_max_files = Some(2);
        let bytes = m.copy_json();
        let text = String::from_utf8(bytes.clone()).unwrap();
        let fields: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert!(fields.get("files").is_none(), "{text}");
        assert_eq!(fields["keys"][0]["files"], 3, "{text}");
        assert!(text.ends_with(r#","files_in":"_delta_log"}"#), "{text}");
        let copy = Manifest::parse(Path::new("/t"), Path::new("c"), &bytes).unwrap();
        assert!(copy.is_partial());
        assert!(copy.files.is_empty());
        assert_eq!(copy.file_count, 3);
        assert_eq!(
            Manifest {
                files_in: None,
                files: m.files.clone(),
                ..copy
            },
            m
        );
        // The struct an earlier pqdm parses (no `files_in`, `files` required) refuses it.
        #[derive(Deserialize)]
        #[allow(dead_code)]
        struct Earlier {
            files: Vec<FileEntry>,
        }
        assert!(serde_json::from_slice::<Earlier>(&bytes).is_err());
        let listed = text.replace(
            r#""files_in":"_delta_log"}"#,
            r#""files_in":"_delta_log","files":[]}"#,
        );
        assert!(Manifest::parse(Path::new("/t"), Path::new("c"), listed.as_bytes()).is_ok());
        let whole = String::from_utf8(m.to_json()).unwrap();
        for bad in [
            whole.replace(r#""files":["#, r#""files_in":"_delta_log","files":["#),
            whole.replace(r#""files":["#, r#""files_in":"elsewhere","files":["#),
            text.replace(r#","files_in":"_delta_log""#, ""),
        ] {
            let e = Manifest::parse(Path::new("/t"), Path::new("c"), bad.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(e.contains("c "), "{e}");
        }
    }

    #[test]
    fn other_layouts_are_left_to_the_whole_parse() {
        let mut m = empty();
        m.files = (0..50)
            .map(|i| entry(&format!("s=a/f{i}.parquet"), 1, None))
            .collect();
        let pretty = serde_json::to_vec_pretty(&m).unwrap();
        assert_eq!(parse_in_parallel(&pretty), None);
        let text = String::from_utf8(m.to_json()).unwrap();
        // An entry with an unknown field holding the cut's bytes: the cut lands inside it.
        let odd = text.replacen(
            r#"{"path":"s=a/f1.parquet""#,
            r#"{"path":"s=a/f1.parquet","x":[{},{"path":"q"}]"#,
            1,
        );
        assert_eq!(parse_in_parallel(odd.as_bytes()), None);
        let whole: Manifest = serde_json::from_str(&odd).unwrap();
        assert_eq!(whole, m, "unknown fields are ignored either way");
        // Files not last, files twice, a damaged entry: never a different answer.
        for broken in [
            text.replacen(r#"{"format_version""#, r#"{"files":[],"format_version""#, 1),
            text.replacen(r#""rows":1"#, r#""rows":"1""#, 1),
            format!("{}  \n", text.trim_end()),
        ] {
            let fast = parse_in_parallel(broken.as_bytes());
            let slow = serde_json::from_str::<Manifest>(&broken).ok();
            assert!(fast.is_none() || fast == slow, "{broken:.80}");
        }
    }

    /// Seen in review while fuzzing, confirmed with the `manifest` fuzz target: a version whose
    /// files' rows add up beyond `u64` (edited by hand) made `key_summaries` (`pqdm info`) and
    /// the next commit's summary panic on overflow; it is refused when loaded, like a file
    /// listed twice.
    #[test]
    fn a_version_whose_rows_or_bytes_overflow_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let kind = crate::schema::builtin_kinds().remove(0);
        let settings = Settings {
            compression: "snappy".into(),
            max_rows_per_file: 1,
            auto_compact: None,
            checkpoint_interval: None,
            manifest_max_files: None,
        };
        let file = |path: &str, rows: u64, bytes: u64| FileEntry {
            path: path.into(),
            partition: Default::default(),
            rows,
            bytes,
            min_timestamp: None,
            max_timestamp: None,
            key_ranges: BTreeMap::new(),
            checksum: String::new(),
            added_in: 1,
            null_timestamps: None,
        };
        let parse = |files: Vec<FileEntry>| {
            let mut m = Manifest::empty(dir.path(), &kind, vec![], vec![], settings.clone());
            m.files = files;
            Manifest::parse(
                dir.path(),
                Path::new("v.json"),
                &serde_json::to_vec(&m).unwrap(),
            )
        };
        // A version number whose successor would overflow is refused the same way.
        let mut m = Manifest::empty(dir.path(), &kind, vec![], vec![], settings.clone());
        m.version = u64::MAX;
        let err = Manifest::parse(
            dir.path(),
            Path::new("v.json"),
            &serde_json::to_vec(&m).unwrap(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("holds version 18446744073709551615"), "{err}");
        m.version = MAX_VERSION;
        assert!(
            Manifest::parse(
                dir.path(),
                Path::new("v.json"),
                &serde_json::to_vec(&m).unwrap()
            )
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

    /// The parallel serialisation gives serde_json's bytes exactly, across chunk boundaries,
    /// for no files, and for paths and values that need escaping.
    #[test]
    fn to_json_is_serde_jsons_bytes() {
        let kinds = crate::schema::KindRegistry::default();
        let settings = Settings {
            compression: "snappy".into(),
            max_rows_per_file: 10,
            auto_compact: None,
            checkpoint_interval: None,
            manifest_max_files: None,
        };
        let mut m = Manifest::empty(
            Path::new("/x\"y"),
            kinds.get("klines").unwrap(),
            vec![],
            vec![],
            settings,
        );
        for n in [0, 1, 2, 2047, 2048, 2049, 5000] {
            m.files = (0..n)
                .map(|i| {
                    let mut e = entry(
                        &format!("symbol=A%22\"\n\u{e9}/day={i}/f.parquet"),
                        i,
                        Some((i64::MIN, i as i64)),
                    );
                    e.key_ranges.insert("id".into(), [-1, i as i64]);
                    e
                })
                .collect();
            m.refresh_summary();
            let bytes = m.to_json();
            assert_eq!(bytes, serde_json::to_vec(&m).unwrap(), "{n} files");
            assert_eq!(
                Manifest::parse(Path::new("/x"), Path::new("m.json"), &bytes).unwrap(),
                m
            );
        }
    }

    fn entry(path: &str, rows: u64, range: Option<(i64, i64)>) -> FileEntry {
        FileEntry {
            path: path.into(),
            partition: PartitionValues::new(crate::partition::parse_path(path)),
            rows,
            bytes: rows * 10,
            min_timestamp: range.map(|r| r.0),
            max_timestamp: range.map(|r| r.1),
            key_ranges: BTreeMap::new(),
            checksum: String::new(),
            added_in: 1,
            null_timestamps: None,
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
                checkpoint_interval: None,
                manifest_max_files: None,
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
