//! Reading a Delta table's state from its log: the newest checkpoint at or below the version
//! asked for, then the JSON entries after it, in order (the protocol's "Action
//! Reconciliation"). This is how pqdm reads a Delta table another engine wrote (Spark,
//! delta-rs): through its log, never by listing its folder, which would also return the files
//! that later versions removed.
//!
//! Tables whose reading needs what pqdm does not do are refused, naming it: deletion vectors,
//! column mapping, reader table features, multi-part or V2 checkpoints, files outside the table.

use polars::prelude::{DataType, TimeUnit, TimeZone};
use std::collections::BTreeMap;

// Polars' hash map (foldhash): every checkpoint row's path is looked up in the entries' changes,
// where SipHash cost 10-15 ms of a 100,000-file snapshot.
use polars::prelude::PlHashMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::Keep;
use super::checkpoint::read_checkpoint_where;
use crate::dtype::ColType;
use crate::error::{Error, Result};
use crate::partition_values::PartitionValues;

/// A data file of the snapshot.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveFile {
    /// Its path relative to the table's root, decoded.
    pub path: String,
    /// Its partition values (`None`: null).
    pub partition: PartitionValues,
    /// Bytes.
    pub size: u64,
    /// Its statistics, as the `add` gives them (a JSON string).
    pub stats: Option<String>,
    /// Its tags, in the log's order (a few: a map per file cost 100,000 tree nodes).
    pub tags: Vec<(String, Option<String>)>,
    /// Its path as the log spells it, where that is not `path` (it holds escapes).
    pub logged_path: Option<String>,
}

impl LiveFile {
    /// The file with path `raw` as the log spells it, decoded.
    fn named(base: &Path, raw: String) -> Result<(String, Option<String>)> {
        let logged = raw.contains('%').then(|| raw.clone());
        let path = decode_owned_path(base, raw)?;
        let logged = logged.filter(|l| *l != path);
        Ok((path, logged))
    }

    /// The path as the log spells it: what its removes name. Like delta-rs, and as the
    /// protocol's reconciliation compares them, paths are matched as written: a remove that
    /// escapes other characters than its add names another file.
    pub fn logged_path(&self) -> &str {
        self.logged_path.as_deref().unwrap_or(&self.path)
    }

    /// The value of tag `name` (`Some(None)`: the tag with a null value).
    pub fn tag(&self, name: &str) -> Option<&Option<String>> {
        self.tags
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// Takes tag `name` out, as [`LiveFile::tag`] reads it.
    pub fn take_tag(&mut self, name: &str) -> Option<Option<String>> {
        let i = self.tags.iter().rposition(|(k, _)| k == name)?;
        Some(self.tags.swap_remove(i).1)
    }

    /// The file an `add` action `a` of entry `version` names (its path decoded).
    pub(crate) fn from_add(base: &Path, version: u64, a: &Value) -> Result<LiveFile> {
        let raw = a["path"]
            .as_str()
            .ok_or_else(|| broken(base, format!("entry {version}: an add without a path")))?;
        let partition = PartitionValues::deserialize(&a["partitionValues"])
            .map_err(|e| broken(base, format!("entry {version}: partitionValues: {e}")))?;
        let (path, logged_path) = LiveFile::named(base, raw.to_string())?;
        Ok(LiveFile {
            path,
            logged_path,
            partition,
            size: a["size"].as_u64().unwrap_or(0),
            stats: a["stats"].as_str().map(String::from),
            tags: tags_of(&a["tags"]),
        })
    }
}

/// An add's tags as [`LiveFile::from_add`] reads them: a map of text or null, else none.
fn tags_of(tags: &Value) -> Vec<(String, Option<String>)> {
    BTreeMap::<String, Option<String>>::deserialize(tags)
        .unwrap_or_default()
        .into_iter()
        .collect()
}

/// One line of a log entry, told apart by its shape before it is applied (the entries after a
/// checkpoint in parallel): most lines are a plain add or remove, read with their fields
/// borrowed from the line (a 100-partition upsert's entry holds 200; an opener reads up to 99
/// entries). Any other shape goes the general way ([`State::apply_general`]), which reads the
/// same actions the same.
enum Line<'a> {
    /// An `add` and nothing else, without a deletion vector, its path checked (one outside
    /// the table refuses the table, whether the add is read further or not).
    Add {
        path: std::borrow::Cow<'a, str>,
        line: &'a str,
    },
    /// A `remove` and nothing else, with a path.
    Remove(std::borrow::Cow<'a, str>),
    /// A `commitInfo` and nothing else.
    CommitInfo(&'a str),
    /// Anything else.
    Other(&'a str),
}

impl<'a> Line<'a> {
    fn of(base: &Path, line: &'a str) -> Result<Line<'a>> {
        if let Ok(AddLine::<AddPath> { add }) = serde_json::from_str(line)
            && add.deletion_vector.is_none()
        {
            decode_path(base, &add.path)?;
            return Ok(Line::Add {
                path: add.path,
                line,
            });
        }
        if let Ok(RemoveLine { remove }) = serde_json::from_str(line) {
            return Ok(Line::Remove(remove.path));
        }
        if serde_json::from_str::<CommitInfoLine>(line).is_ok() {
            return Ok(Line::CommitInfo(line));
        }
        Ok(Line::Other(line))
    }
}

/// A log line holding an `add` and nothing else (see [`State::apply_line`]): read as
/// [`AddAction`], or as [`AddPath`] for its path alone.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddLine<T> {
    add: T,
}

/// The fields of an `add` pqdm reads, borrowed from its line where they hold no escape.
#[derive(Deserialize)]
struct AddAction<'a> {
    #[serde(borrow)]
    path: std::borrow::Cow<'a, str>,
    /// `None` where absent or null, which [`LiveFile::from_add`] reads as `Value::Null`.
    #[serde(rename = "partitionValues", default)]
    partition_values: Option<PartitionValues>,
    #[serde(default)]
    size: Value,
    #[serde(borrow, default)]
    stats: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    tags: Value,
    #[serde(rename = "deletionVector", default)]
    deletion_vector: Option<serde::de::IgnoredAny>,
}

impl AddAction<'_> {
    /// The file, as [`LiveFile::from_add`] reads the same add.
    fn live_file(self, base: &Path, version: u64) -> Result<LiveFile> {
        let partition = match self.partition_values {
            Some(values) => values,
            None => PartitionValues::deserialize(&Value::Null)
                .map_err(|e| broken(base, format!("entry {version}: partitionValues: {e}")))?,
        };
        let (path, logged_path) = LiveFile::named(base, self.path.into_owned())?;
        Ok(LiveFile {
            path,
            logged_path,
            partition,
            size: self.size.as_u64().unwrap_or(0),
            stats: self.stats.map(std::borrow::Cow::into_owned),
            tags: tags_of(&self.tags),
        })
    }
}

/// An add read for its path alone (and whether it has a deletion vector).
#[derive(Deserialize)]
struct AddPath<'a> {
    #[serde(borrow)]
    path: std::borrow::Cow<'a, str>,
    #[serde(rename = "deletionVector", default)]
    deletion_vector: Option<serde::de::IgnoredAny>,
}

/// A log line holding a `commitInfo` and nothing else: no state but the commit's pqdm record.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommitInfoLine {
    #[serde(rename = "commitInfo")]
    _commit_info: serde::de::IgnoredAny,
}

/// A log line holding a `remove` and nothing else, with a path.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoveLine<'a> {
    #[serde(borrow)]
    remove: RemoveAction<'a>,
}

#[derive(Deserialize)]
struct RemoveAction<'a> {
    #[serde(borrow)]
    path: std::borrow::Cow<'a, str>,
}

/// A version of a Delta table.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// The version read.
    pub version: u64,
    /// The partition columns, in order, with their types (from the schema).
    pub partition_columns: Vec<(String, ColType)>,
    /// The other columns, in the schema's order, as Polars reads them (`None` where the schema
    /// holds a type pqdm does not map: the files' own schemas are read then).
    pub data_columns: Option<Vec<(String, DataType)>>,
    /// The live files, by path (those a partial read wanted, when [`Snapshot::partial`]).
    pub files: Vec<LiveFile>,
    /// Whether `files` holds only the files a [`snapshot_where`] wanted.
    pub partial: bool,
    /// How many files are live in the version (`files.len()` unless partial).
    pub live_files: usize,
    /// pqdm's record of the version (its manifest without the files, see
    /// [`super::record`]), where its entry carries one.
    pub record: Option<Value>,
}

/// The log's files as listed: (entry versions, classic single-file checkpoint versions).
fn log_versions(base: &Path, names: &[String]) -> Result<(Vec<u64>, Vec<u64>)> {
    let mut entries = vec![];
    let mut checkpoints = vec![];
    for name in names {
        if let Some(v) = super::entry_version(name) {
            entries.push(v);
        } else if let Some(v) = super::checkpoint_version(name) {
            checkpoints.push(v);
        } else if name.contains(".checkpoint.") {
            return Err(refused(
                base,
                &format!("its checkpoint {name} is multi-part or V2, which pqdm does not read"),
            ));
        }
    }
    entries.sort_unstable();
    checkpoints.sort_unstable();
    Ok((entries, checkpoints))
}

fn refused(base: &Path, why: &str) -> Error {
    Error::Dataset {
        path: base.to_path_buf(),
        message: format!(
            "is a Delta table pqdm cannot read: {why} (read it with delta-rs, DuckDB's delta_scan or Spark)"
        ),
    }
}

fn broken(base: &Path, why: String) -> Error {
    Error::Dataset {
        path: base.join(super::LOG_DIR),
        message: why,
    }
}

/// Decodes an `add.path` (a URI reference relative to the root); absolute paths and URIs are
/// refused (a table whose files live elsewhere), as are paths that leave the root.
pub(crate) fn decode_path(base: &Path, raw: &str) -> Result<String> {
    decode_owned_path(base, raw.to_string())
}

/// [`decode_path`] of an owned path, kept as it is when it holds no escape (most do).
fn decode_owned_path(base: &Path, raw: String) -> Result<String> {
    if raw.contains("://") || raw.starts_with('/') {
        return Err(refused(
            base,
            &format!(
                "its file {} lies outside the table",
                crate::error::clip(&raw)
            ),
        ));
    }
    if !raw.contains('%') {
        return checked_path(base, raw);
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).and_then(|b| hex(*b)),
                bytes.get(i + 2).and_then(|b| hex(*b)),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let path = String::from_utf8(out).map_err(|_| {
        broken(
            base,
            format!(
                "file path {} is not UTF-8 once decoded",
                crate::error::clip(&raw)
            ),
        )
    })?;
    checked_path(base, path)
}

/// `path` (decoded), where it stays inside the table.
fn checked_path(base: &Path, path: String) -> Result<String> {
    if let Some(why) = crate::relpath::escape(&path) {
        return Err(broken(
            base,
            format!(
                "names {why} ({}); refusing to read it",
                crate::error::clip(&path)
            ),
        ));
    }
    Ok(path)
}

/// The pqdm dtype of a Delta primitive type name; other types are read as text.
fn col_type(name: &str) -> ColType {
    match name {
        "long" => ColType::I64,
        "integer" => ColType::I32,
        "short" => ColType::I16,
        "byte" => ColType::I8,
        "double" | "float" => ColType::F64,
        "boolean" => ColType::Bool,
        "date" => ColType::Date,
        _ => ColType::Str,
    }
}

/// How Polars reads a column of Delta type `t` (a primitive's name; `None` for a nested type,
/// a decimal or anything unknown).
fn polars_type(t: &Value) -> Option<DataType> {
    Some(match t.as_str()? {
        "string" => DataType::String,
        "long" => DataType::Int64,
        "integer" => DataType::Int32,
        "short" => DataType::Int16,
        "byte" => DataType::Int8,
        "double" => DataType::Float64,
        "float" => DataType::Float32,
        "boolean" => DataType::Boolean,
        "binary" => DataType::Binary,
        "date" => DataType::Date,
        "timestamp" => DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC)),
        "timestamp_ntz" => DataType::Datetime(TimeUnit::Microseconds, None),
        _ => return None,
    })
}

/// What the entries after a checkpoint did to a file.
#[derive(Debug, PartialEq)]
enum Change {
    Added(LiveFile),
    /// Added, and not wanted by a partial read that tells by path: only its path was read.
    AddedUnwanted,
    Removed,
}

/// The table state being rebuilt.
#[derive(Default)]
struct State {
    reader_version: Option<i64>,
    reader_features: Vec<String>,
    schema_string: Option<String>,
    partition_columns: Vec<String>,
    configuration: BTreeMap<String, String>,
    /// The checkpoint's files, sorted by their paths as logged, one per path.
    checkpoint_files: Vec<LiveFile>,
    /// The files the entries after it added or removed, by their paths as logged.
    changed: PlHashMap<String, Change>,
    /// The newest pqdm record applied, with its entry's version.
    record: Option<(u64, Value)>,
    /// The checkpoint's adds a partial read skipped.
    skipped_adds: usize,
    /// Whether entries applied a `protocol` and a `metaData` (see [`State::absorb`]).
    saw_protocol: bool,
    saw_metadata: bool,
}

impl State {
    fn check_protocol(&self, base: &Path) -> Result<()> {
        match self.reader_version {
            None => Err(broken(base, "holds no protocol action".into())),
            Some(1) => Ok(()),
            Some(2) | Some(3) => {
                let mapping = self
                    .configuration
                    .get("delta.columnMapping.mode")
                    .map(String::as_str);
                if matches!(mapping, Some("name") | Some("id")) {
                    return Err(refused(base, "it uses column mapping"));
                }
                if !self.reader_features.is_empty() {
                    return Err(refused(
                        base,
                        &format!(
                            "it needs the reader features {}",
                            self.reader_features.join(", ")
                        ),
                    ));
                }
                Ok(())
            }
            Some(v) => Err(refused(base, &format!("it needs reader version {v}"))),
        }
    }

    /// [`State::apply_line`] of one JSON action line.
    #[cfg(test)]
    fn apply(
        &mut self,
        base: &Path,
        version: u64,
        line: &str,
        keep: Option<&Keep<'_>>,
        wants_record: bool,
    ) -> Result<()> {
        let line = Line::of(base, line)?;
        self.apply_line(base, version, line, keep, wants_record)
    }

    /// Applies one action line of version `version` (told apart by [`Line::of`]), for a read
    /// wanting the files `keep` wants (all when `None`) and, with `wants_record`, the
    /// version's pqdm record.
    ///
    /// Lines are applied newest first (the entries from the version read down, each entry's
    /// lines from its last): what a file's newest action says is what the version holds, so
    /// an older add or remove of a file already seen is read no further than its path, and
    /// an older protocol or metaData is not read.
    fn apply_line(
        &mut self,
        base: &Path,
        version: u64,
        line: Line<'_>,
        keep: Option<&Keep<'_>>,
        wants_record: bool,
    ) -> Result<()> {
        // An add a partial read does not want by its path is read no further than its path
        // (as the checkpoint's are), and a commit's own record only for the version read.
        match line {
            Line::Add { path, line } => {
                if self.changed.contains_key(&*path) {
                    return Ok(());
                }
                if let Some(keep) = keep.filter(|k| !k.reads_values())
                    && !keep.wants(&path, &PartitionValues::default())
                {
                    self.changed
                        .insert(path.into_owned(), Change::AddedUnwanted);
                    return Ok(());
                }
                if let Ok(AddLine::<AddAction> { add }) = serde_json::from_str(line)
                    && add.deletion_vector.is_none()
                {
                    let file = add.live_file(base, version)?;
                    self.changed
                        .entry(file.logged_path().to_string())
                        .or_insert(Change::Added(file));
                    return Ok(());
                }
                self.apply_general(base, version, line, wants_record)
            }
            Line::Remove(path) => {
                self.changed
                    .entry(path.into_owned())
                    .or_insert(Change::Removed);
                Ok(())
            }
            Line::CommitInfo(_) if !wants_record => Ok(()),
            Line::CommitInfo(line) | Line::Other(line) => {
                self.apply_general(base, version, line, wants_record)
            }
        }
    }

    /// Applies a line of any shape, read as a JSON tree.
    fn apply_general(
        &mut self,
        base: &Path,
        version: u64,
        line: &str,
        wants_record: bool,
    ) -> Result<()> {
        let mut action: Value = serde_json::from_str(line).map_err(|e| {
            broken(
                base,
                format!("entry {version} holds a line that is not JSON ({e})"),
            )
        })?;
        if let Some(record) = pqdm_record(&mut action) {
            // Of several (a hand edit), the entry's last, as read in order.
            if wants_record && self.record.is_none() {
                self.record = Some((version, record));
            }
        } else if let Some(p) = action.get("protocol") {
            if self.saw_protocol {
                return Ok(());
            }
            self.saw_protocol = true;
            self.reader_version = p["minReaderVersion"].as_i64();
            self.reader_features = p["readerFeatures"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|f| f.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
        } else if let Some(m) = action.get("metaData") {
            let partition_columns = serde_json::from_value(m["partitionColumns"].clone())
                .map_err(|e| broken(base, format!("entry {version}: partitionColumns: {e}")))?;
            if self.saw_metadata {
                return Ok(());
            }
            self.saw_metadata = true;
            self.schema_string = m["schemaString"].as_str().map(String::from);
            self.partition_columns = partition_columns;
            self.configuration = m["configuration"]
                .as_object()
                .map(|c| {
                    c.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                        .collect()
                })
                .unwrap_or_default();
        } else if let Some(a) = action.get("add") {
            if a.get("deletionVector").is_some_and(|d| !d.is_null()) {
                return Err(refused(base, "it uses deletion vectors"));
            }
            let file = LiveFile::from_add(base, version, a)?;
            self.changed
                .entry(file.logged_path().to_string())
                .or_insert(Change::Added(file));
        } else if let Some(raw) = action.get("remove").and_then(|r| r["path"].as_str()) {
            self.changed
                .entry(raw.to_string())
                .or_insert(Change::Removed);
        }
        Ok(())
    }

    fn from_checkpoint(
        base: &Path,
        bytes: &[u8],
        version: u64,
        keep: Option<&Keep<'_>>,
    ) -> Result<State> {
        let (cp, skipped_adds) = read_checkpoint_where(bytes, keep)
            .map_err(|e| broken(base, format!("checkpoint {version}: {e}")))?;
        let mut configuration: BTreeMap<String, String> =
            cp.metadata.configuration.into_iter().collect();
        let record = configuration
            .remove(super::record::CHECKPOINT_KEY)
            .and_then(|text| serde_json::from_str(&text).ok())
            .map(|record| (version, record));
        let mut s = State {
            reader_version: Some(cp.protocol.min_reader_version as i64),
            schema_string: Some(cp.metadata.schema_string),
            partition_columns: cp.metadata.partition_columns,
            configuration,
            record,
            skipped_adds,
            ..Default::default()
        };
        s.checkpoint_files = cp
            .adds
            .into_iter()
            .map(|a| {
                let (path, logged_path) = LiveFile::named(base, a.path)?;
                Ok(LiveFile {
                    path,
                    logged_path,
                    partition: a.partition_values,
                    size: a.size.max(0) as u64,
                    stats: a.stats,
                    tags: a.tags,
                })
            })
            .collect::<Result<_>>()?;
        sorted_by_path(&mut s.checkpoint_files);
        Ok(s)
    }

    /// The state of the entries after the checkpoint (`tail`, applied on their own) applied
    /// to this one, the checkpoint's.
    fn absorb(&mut self, tail: State) {
        if tail.saw_protocol {
            self.reader_version = tail.reader_version;
            self.reader_features = tail.reader_features;
        }
        if tail.saw_metadata {
            self.schema_string = tail.schema_string;
            self.partition_columns = tail.partition_columns;
            self.configuration = tail.configuration;
        }
        if tail.record.is_some() {
            self.record = tail.record;
        }
        self.changed = tail.changed;
    }

    /// The live files `keep` wants (all when `None`), sorted by their paths as logged (see
    /// [`LiveFile::logged_path`]), and how many files are live in all. (A partial read has
    /// every checkpoint file an entry changes among its checkpoint files: see [`snapshot_where`].)
    fn files(&mut self, keep: Option<&Keep<'_>>) -> (Vec<LiveFile>, usize) {
        let mut files = std::mem::take(&mut self.checkpoint_files);
        let added = self
            .changed
            .values()
            .filter(|c| **c != Change::Removed)
            .count();
        if !self.changed.is_empty() {
            files.retain(|f| !self.changed.contains_key(f.logged_path()));
        }
        let live = files.len() + self.skipped_adds + added;
        if !self.changed.is_empty() {
            files.extend(
                self.changed
                    .drain()
                    .filter_map(|(_, c)| match c {
                        Change::Added(f) => Some(f),
                        Change::AddedUnwanted | Change::Removed => None,
                    })
                    .filter(|f| keep.is_none_or(|k| k.wants(f.logged_path(), &f.partition))),
            );
            sorted_by_path(&mut files);
        }
        (files, live)
    }

    fn snapshot(mut self, base: &Path, version: u64, keep: Option<&Keep<'_>>) -> Result<Snapshot> {
        self.check_protocol(base)?;
        let schema: Value = self
            .schema_string
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok())
            .ok_or_else(|| broken(base, "holds no readable schema (metaData)".into()))?;
        let types: BTreeMap<&str, &str> = schema["fields"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| Some((f["name"].as_str()?, f["type"].as_str().unwrap_or("struct"))))
            .collect();
        let data_columns = schema["fields"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|f| {
                f["name"]
                    .as_str()
                    .is_some_and(|n| !self.partition_columns.iter().any(|p| p == n))
            })
            .map(|f| Some((f["name"].as_str()?.to_string(), polars_type(&f["type"])?)))
            .collect();
        let (files, live_files) = self.files(keep);
        Ok(Snapshot {
            version,
            data_columns,
            partition_columns: self
                .partition_columns
                .iter()
                .map(|c| {
                    (
                        c.clone(),
                        col_type(types.get(c.as_str()).copied().unwrap_or("")),
                    )
                })
                .collect(),
            files,
            live_files,
            partial: keep.is_some(),
            record: self
                .record
                .and_then(|(v, record)| (v == version).then_some(record)),
        })
    }
}

/// Sorts `files` by their paths as logged, keeping the last of files of one path (a checkpoint
/// another engine wrote may repeat one).
fn sorted_by_path(files: &mut Vec<LiveFile>) {
    crate::sorted::sort_keep_last(files, |f| f.logged_path());
}

/// Takes pqdm's record out of a `commitInfo` action (`None` for any other action, or a commit
/// another engine made).
fn pqdm_record(action: &mut Value) -> Option<Value> {
    action
        .get_mut("commitInfo")?
        .get_mut("pqdm")?
        .get_mut("manifest")
        .map(Value::take)
}

/// The state of the Delta table at `base` at `version` (`None`: the newest), from the files of
/// its log: `names` (as listed under `_delta_log/`) read with `read` (relative to the base).
#[cfg(test)]
pub fn snapshot(
    base: &Path,
    names: &[String],
    read: &dyn Fn(&str) -> Result<Option<Vec<u8>>>,
    version: Option<u64>,
) -> Result<Snapshot> {
    snapshot_where(base, names, read, version, None)
}

/// The state of the Delta table at `base` at `version` (`None`: the newest), from the files of
/// its log: `names` (as listed under `_delta_log/`) read with `read` (relative to the base);
/// with only the live files `keep` wants (all when `None`), a checkpoint's other files skipped
/// before anything but their path and partition values is built.
pub fn snapshot_where(
    base: &Path,
    names: &[String],
    read: &dyn Fn(&str) -> Result<Option<Vec<u8>>>,
    version: Option<u64>,
    keep: Option<&Keep<'_>>,
) -> Result<Snapshot> {
    let (entries, checkpoints) = log_versions(base, names)?;
    let newest = entries.last().copied().max(checkpoints.last().copied());
    let Some(newest) = newest else {
        return Err(broken(base, "holds no log entry".into()));
    };
    let target = version.unwrap_or(newest);
    if target > newest {
        return Err(broken(
            base,
            format!("has no version {target} (the newest is {newest})"),
        ));
    }
    let from = checkpoints.iter().rev().find(|v| **v <= target).copied();
    // The entries after the checkpoint are applied first, on their own: a partial read then
    // takes from the checkpoint every file they change too, and so knows how many files the
    // version holds (which pqdm's record is checked against).
    let mut tail = State::default();
    let started = std::time::Instant::now();
    let first = from.map_or(0, |v| v + 1);
    if let Some(v) = (first..=target).find(|v| entries.binary_search(v).is_err()) {
        return Err(broken(
            base,
            format!("has no entry for version {v}, so version {target} cannot be read"),
        ));
    }
    // Newest first (see [`State::apply_line`]); their lines told apart in parallel.
    let texts: Vec<(u64, String)> = (first..=target)
        .rev()
        .map(|v| {
            let bytes = read(&super::entry_rel(v))?
                .ok_or_else(|| broken(base, format!("lost its entry {v} while read")))?;
            let text = String::from_utf8(bytes)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
            Ok((v, text))
        })
        .collect::<Result<_>>()?;
    use rayon::prelude::*;
    let lines: Vec<Result<Vec<Line>>> = texts
        .par_iter()
        .map(|(_, text)| {
            text.lines()
                .rev()
                .filter(|l| !l.trim().is_empty())
                .map(|l| Line::of(base, l))
                .collect()
        })
        .collect();
    for ((v, _), lines) in texts.iter().zip(lines) {
        for line in lines? {
            tail.apply_line(base, *v, line, keep, *v == target)?;
        }
    }
    log::debug!(
        "log entries {first}..={target} applied in {} ms",
        started.elapsed().as_millis()
    );
    let mut state = match from {
        Some(v) => {
            let rel = super::checkpoint_rel(v);
            let bytes = read(&rel)?
                .ok_or_else(|| broken(base, format!("lost its checkpoint {v} while read")))?;
            let wanted = |path: &str, values: &PartitionValues| {
                tail.changed.contains_key(path) || keep.is_none_or(|k| k.wants(path, values))
            };
            let wanted = keep.map(|k| k.with(&wanted));
            State::from_checkpoint(base, &bytes, v, wanted.as_ref())?
        }
        None => State::default(),
    };
    log::debug!("checkpoint read at {} ms", started.elapsed().as_millis());
    state.absorb(tail);
    state.snapshot(base, target, keep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn std_map(changed: PlHashMap<String, Change>) -> HashMap<String, Change> {
        changed.into_iter().collect()
    }

    fn table(entries: &[(u64, &str)]) -> (Vec<String>, BTreeMap<String, Vec<u8>>) {
        let files: BTreeMap<String, Vec<u8>> = entries
            .iter()
            .map(|(v, text)| (super::super::entry_rel(*v), text.as_bytes().to_vec()))
            .collect();
        let names = entries
            .iter()
            .map(|(v, _)| format!("{v:020}.json"))
            .collect();
        (names, files)
    }

    const V0: &str = r#"{"protocol":{"minReaderVersion":1,"minWriterVersion":2}}
{"metaData":{"id":"x","format":{"provider":"parquet","options":{}},"schemaString":"{\"type\":\"struct\",\"fields\":[{\"name\":\"v\",\"type\":\"long\",\"nullable\":true,\"metadata\":{}},{\"name\":\"year\",\"type\":\"integer\",\"nullable\":true,\"metadata\":{}}]}","partitionColumns":["year"],"configuration":{}}}
{"add":{"path":"year=2024/a%20b.parquet","partitionValues":{"year":"2024"},"size":10,"modificationTime":0,"dataChange":true}}
{"add":{"path":"year=__HIVE_DEFAULT_PARTITION__/c.parquet","partitionValues":{"year":null},"size":5,"modificationTime":0,"dataChange":true}}"#;

    #[test]
    fn adds_and_removes_are_reconciled_version_by_version() {
        let v1 = r#"{"remove":{"path":"year=2024/a%20b.parquet","dataChange":true}}
{"add":{"path":"year=2025/d.parquet","partitionValues":{"year":"2025"},"size":7,"modificationTime":0,"dataChange":true}}"#;
        let (names, files) = table(&[(0, V0), (1, v1)]);
        let read = |rel: &str| Ok(files.get(rel).cloned());
        let base = Path::new("/t");
        let at0 = snapshot(base, &names, &read, Some(0)).unwrap();
        let paths = |s: &Snapshot| s.files.iter().map(|f| f.path.clone()).collect::<Vec<_>>();
        assert_eq!(
            paths(&at0),
            [
                "year=2024/a b.parquet",
                "year=__HIVE_DEFAULT_PARTITION__/c.parquet"
            ]
        );
        assert_eq!(at0.partition_columns, [("year".to_string(), ColType::I32)]);
        let now = snapshot(base, &names, &read, None).unwrap();
        assert_eq!(now.version, 1);
        assert_eq!(
            paths(&now),
            [
                "year=2025/d.parquet",
                "year=__HIVE_DEFAULT_PARTITION__/c.parquet"
            ]
        );
        assert_eq!(now.files[1].partition.get("year"), Some(None));
        assert!(snapshot(base, &names, &read, Some(2)).is_err());
    }

    #[test]
    fn a_remove_names_its_file_as_the_add_spelled_it() {
        // The add wrote `a%20b`. A remove escaping another byte too names another file (as
        // delta-rs reads it: paths are compared as written), one outside the table nothing,
        // and the one spelled as the add removes it.
        let v1 = r#"{"remove":{"path":"year=2024/a%20%62.parquet","dataChange":true}}
{"remove":{"path":"s3://elsewhere/c.parquet","dataChange":true}}"#;
        let v2 = r#"{"remove":{"path":"year=2024/a%20b.parquet","dataChange":true}}"#;
        let (names, files) = table(&[(0, V0), (1, v1), (2, v2)]);
        let read = |rel: &str| Ok(files.get(rel).cloned());
        let paths = |v| {
            let s = snapshot(Path::new("/t"), &names, &read, Some(v)).unwrap();
            s.files.into_iter().map(|f| f.path).collect::<Vec<_>>()
        };
        assert_eq!(
            paths(1),
            [
                "year=2024/a b.parquet",
                "year=__HIVE_DEFAULT_PARTITION__/c.parquet"
            ]
        );
        assert_eq!(paths(2), ["year=__HIVE_DEFAULT_PARTITION__/c.parquet"]);
    }

    #[test]
    fn what_pqdm_cannot_read_is_refused_by_name() {
        let base = Path::new("/t");
        for (extra, why) in [
            (
                r#"{"add":{"path":"x.parquet","partitionValues":{},"size":1,"modificationTime":0,"dataChange":true,"deletionVector":{"storageType":"u"}}}"#,
                "deletion vectors",
            ),
            (
                r#"{"protocol":{"minReaderVersion":3,"minWriterVersion":7,"readerFeatures":["deletionVectors"]}}"#,
                "reader features deletionVectors",
            ),
            (
                r#"{"add":{"path":"s3://elsewhere/x.parquet","partitionValues":{},"size":1,"modificationTime":0,"dataChange":true}}"#,
                "outside the table",
            ),
            (
                r#"{"add":{"path":"..%2F..%2Fetc%2Fpasswd","partitionValues":{},"size":1,"modificationTime":0,"dataChange":true}}"#,
                "leaves its folder",
            ),
            // Without an escape (such a path is kept as written, not decoded): still checked.
            (
                r#"{"add":{"path":"year=1/../../etc/passwd","partitionValues":{},"size":1,"modificationTime":0,"dataChange":true}}"#,
                "leaves its folder",
            ),
        ] {
            let (names, files) = table(&[(0, V0), (1, extra)]);
            let read = |rel: &str| Ok(files.get(rel).cloned());
            let e = snapshot(base, &names, &read, None).unwrap_err().to_string();
            assert!(e.contains(why), "{why}: {e}");
        }
        // The same in a checkpoint, whose paths take that path too.
        let checkpoint = |path: &str| {
            super::super::checkpoint::Checkpoint {
            protocol: super::super::checkpoint::CheckpointProtocol {
                min_reader_version: 1,
                min_writer_version: 2,
                writer_features: None,
            },
            metadata: super::super::checkpoint::CheckpointMetadata {
                id: "x".into(),
                name: None,
                description: None,
                schema_string: r#"{"type":"struct","fields":[{"name":"v","type":"long","nullable":true,"metadata":{}}]}"#.into(),
                partition_columns: vec![],
                configuration: vec![],
                created_time: None,
            },
            adds: vec![super::super::checkpoint::CheckpointAdd {
                path: path.into(),
                partition_values: PartitionValues::default(),
                size: 1,
                modification_time: 0,
                data_change: true,
                tags: vec![],
                stats: None,
            }],
            removes: vec![],
            txns: vec![],
        }
        };
        for (path, outcome) in [
            ("../x.parquet", Err("leaves its folder")),
            ("a/%2E%2E/%2E%2E/x.parquet", Err("leaves its folder")),
            ("a/b%20c.parquet", Ok("a/b c.parquet")),
        ] {
            let bytes = super::super::checkpoint::write_checkpoint(&checkpoint(path)).unwrap();
            let names = vec!["00000000000000000000.checkpoint.parquet".to_string()];
            let read = |_: &str| Ok(Some(bytes.clone()));
            let got = snapshot(base, &names, &read, None);
            match outcome {
                Ok(want) => assert_eq!(got.unwrap().files[0].path, want),
                Err(why) => {
                    let e = got.unwrap_err().to_string();
                    assert!(e.contains(why), "{path}: {e}");
                }
            }
        }
        // A gap in the log.
        let (names, files) = table(&[(0, V0), (2, "")]);
        let read = |rel: &str| Ok(files.get(rel).cloned());
        let e = snapshot(base, &names, &read, None).unwrap_err().to_string();
        assert!(e.contains("no entry for version 1"), "{e}");
    }

    /// Read newest first, the log gives what reading it in order gives: a file's last action
    /// in the last entry touching it decides, within an entry too, and the last protocol and
    /// metaData hold; the record is the version's own.
    #[test]
    fn the_last_action_on_a_file_decides() {
        let add = |p: &str| {
            format!(
                r#"{{"add":{{"path":"{p}","partitionValues":{{"year":"2024"}},"size":1,"modificationTime":0,"dataChange":true}}}}"#
            )
        };
        let remove = |p: &str| format!(r#"{{"remove":{{"path":"{p}","dataChange":true}}}}"#);
        let record = |v: u64| format!(r#"{{"commitInfo":{{"pqdm":{{"manifest":{{"v":{v}}}}}}}}}"#);
        let v1 = [add("a"), add("b"), add("c"), record(1)].join("\n");
        // In one entry: b removed then added again, c added again then removed.
        let v2 = [remove("b"), add("b"), add("c"), remove("c"), record(2)].join("\n");
        let v3 = [
            remove("a"),
            add("d"),
            V0.lines().next().unwrap().to_string(),
        ]
        .join("\n");
        let v3 = format!(
            "{v3}\n{}",
            V0.lines()
                .nth(1)
                .unwrap()
                .replace(r#""partitionColumns":["year"]"#, r#""partitionColumns":[]"#)
        );
        let (names, files) = table(&[(0, V0), (1, &v1), (2, &v2), (3, &v3)]);
        let read = |rel: &str| Ok(files.get(rel).cloned());
        let base = Path::new("/t");
        let paths = |v| {
            let s = snapshot(base, &names, &read, Some(v)).unwrap();
            let paths: Vec<String> = s.files.iter().map(|f| f.path.clone()).collect();
            (paths, s.partition_columns.len(), s.record)
        };
        let (at2, columns, record2) = paths(2);
        assert_eq!(
            at2,
            [
                "a",
                "b",
                "year=2024/a b.parquet",
                "year=__HIVE_DEFAULT_PARTITION__/c.parquet"
            ]
        );
        assert_eq!(columns, 1);
        assert_eq!(record2, Some(serde_json::json!({"v": 2})));
        let (at3, columns, record3) = paths(3);
        assert_eq!(
            at3,
            [
                "b",
                "d",
                "year=2024/a b.parquet",
                "year=__HIVE_DEFAULT_PARTITION__/c.parquet"
            ]
        );
        assert_eq!((columns, record3), (0, None));
    }

    /// Read newest first, what reading in order refused is still refused, and what it read of
    /// a hand-edited entry is still what it reads (red team): an add outside the table that a
    /// later entry removes, or that a partial read does not want; an older metaData of the
    /// wrong shape; of two records in the version's entry, the last.
    #[test]
    fn older_lines_are_checked_as_reading_in_order_checks_them() {
        let base = Path::new("/t");
        let record = |v: u64| format!(r#"{{"commitInfo":{{"pqdm":{{"manifest":{{"v":{v}}}}}}}}}"#);
        let cases = [
            (
                r#"{"add":{"path":"../../etc/passwd","partitionValues":{},"size":1}}"#,
                r#"{"remove":{"path":"../../etc/passwd"}}"#,
                "leaves its folder",
            ),
            (
                r#"{"add":{"path":"s3://elsewhere/x.parquet","partitionValues":{},"size":1}}"#,
                r#"{"remove":{"path":"s3://elsewhere/x.parquet"}}"#,
                "outside the table",
            ),
            (
                r#"{"metaData":{"id":"x","schemaString":"{}","partitionColumns":5,"configuration":{}}}"#,
                V0.lines().nth(1).unwrap(),
                "partitionColumns",
            ),
        ];
        let nothing = |_: &str, _: &PartitionValues| false;
        for (older, newer, why) in cases {
            let v2 = [newer.to_string(), record(2)].join("\n");
            let (names, files) = table(&[(0, V0), (1, older), (2, &v2)]);
            let read = |rel: &str| Ok(files.get(rel).cloned());
            for keep in [None, Some(Keep::by_path(&nothing))] {
                let e = snapshot_where(base, &names, &read, None, keep.as_ref())
                    .unwrap_err()
                    .to_string();
                assert!(e.contains(why), "{older}: {e}");
            }
        }
        // An add outside the table that is live, not wanted by a partial read.
        let outside =
            r#"{"add":{"path":"s3://elsewhere/x.parquet","partitionValues":{},"size":1}}"#;
        let (names, files) = table(&[(0, V0), (1, outside)]);
        let read = |rel: &str| Ok(files.get(rel).cloned());
        let e = snapshot_where(base, &names, &read, None, Some(&Keep::by_path(&nothing)))
            .unwrap_err()
            .to_string();
        assert!(e.contains("outside the table"), "{e}");
        // Two records in one entry: the last holds.
        let v1 = [record(7), record(1)].join("\n");
        let (names, files) = table(&[(0, V0), (1, &v1)]);
        let read = |rel: &str| Ok(files.get(rel).cloned());
        let s = snapshot(base, &names, &read, None).unwrap();
        assert_eq!(s.record, Some(serde_json::json!({"v": 1})));
    }

    /// The usual add and remove lines, read the quick way, give the state the general way
    /// gives for the same action: escapes, nulls, missing and odd fields, duplicates.
    #[test]
    fn plain_adds_and_removes_read_as_any_other_line() {
        let base = Path::new("/t");
        let adds = [
            r#"{"add":{"path":"year=2024/a%20b.parquet","partitionValues":{"year":"2024"},"size":10,"modificationTime":0,"dataChange":true,"stats":"{\"numRecords\":3}","tags":{"k":"v","n":null}}}"#,
            r#"{"add":{"path":"year=__HIVE_DEFAULT_PARTITION__/c.parquet","partitionValues":{"year":null},"size":5}}"#,
            r#"{"add":{"path":"x.parquet","partitionValues":{},"stats":null,"tags":null,"deletionVector":null}}"#,
            r#"{"add":{"path":"x.parquet","partitionValues":{},"size":"7","stats":5,"tags":[1]}}"#,
            r#"{"add":{"path":"x.parquet","partitionValues":{},"size":-1}}"#,
            r#"{"add":{"path":"x\u0020y.parquet","partitionValues":{"a\"b":"c\\d"}}}"#,
            r#"{"add":{"path":"a.parquet","path":"b.parquet","partitionValues":{}}}"#,
            r#"{"add":{"path":"a.parquet","partitionValues":{}},"commitInfo":{}}"#,
        ];
        for line in adds {
            let mut quick = State::default();
            quick.apply(base, 1, line, None, true).unwrap();
            let action: Value = serde_json::from_str(line).unwrap();
            let file = LiveFile::from_add(base, 1, &action["add"]).unwrap();
            let logged = file.logged_path().to_string();
            let general = HashMap::from([(logged.clone(), Change::Added(file))]);
            assert_eq!(std_map(quick.changed), general, "{line}");
            // Not wanted by its path: only its path is kept, under the same name (a line of
            // an odd shape is read whole, and left out of the files later).
            let mut by_path = State::default();
            let nothing = |_: &str, _: &PartitionValues| false;
            by_path
                .apply(base, 1, line, Some(&Keep::by_path(&nothing)), true)
                .unwrap();
            let odd = line.contains(r#""path":"b.parquet""#) || line.contains("commitInfo");
            let expected = match odd {
                true => general,
                false => HashMap::from([(logged, Change::AddedUnwanted)]),
            };
            assert_eq!(std_map(by_path.changed), expected, "{line}");
        }
        for (line, why) in [
            (
                r#"{"add":{"path":"x.parquet","size":1}}"#,
                "partitionValues",
            ),
            (
                r#"{"add":{"path":"x.parquet","partitionValues":null}}"#,
                "partitionValues",
            ),
            (
                r#"{"add":{"path":"x.parquet","partitionValues":{"y":1}}}"#,
                "partitionValues",
            ),
            (
                r#"{"add":{"path":"../x.parquet","partitionValues":{}}}"#,
                "leaves its folder",
            ),
            (
                r#"{"add":{"path":"x.parquet","partitionValues":{},"deletionVector":{}}}"#,
                "deletion vectors",
            ),
        ] {
            let e = State::default()
                .apply(base, 1, line, None, true)
                .unwrap_err()
                .to_string();
            assert!(e.contains(why), "{line}: {e}");
        }
        for (line, removed) in [
            (
                r#"{"remove":{"path":"a%20b.parquet","dataChange":true}}"#,
                Some("a%20b.parquet"),
            ),
            (
                r#"{"remove":{"path":"a\u0020b.parquet"}}"#,
                Some("a b.parquet"),
            ),
            (r#"{"remove":{"path":7}}"#, None),
            (r#"{"remove":{"deletionTimestamp":1}}"#, None),
        ] {
            let mut s = State::default();
            s.apply(base, 1, line, None, true).unwrap();
            let expected: HashMap<String, Change> = removed
                .map(|p| (p.to_string(), Change::Removed))
                .into_iter()
                .collect();
            assert_eq!(std_map(s.changed), expected, "{line}");
        }
        // A commit's record is read for the version read only; any other line always.
        let record = r#"{"commitInfo":{"pqdm":{"manifest":{"version":1}}}}"#;
        for (wants_record, read) in [(true, true), (false, false)] {
            let mut s = State::default();
            s.apply(base, 1, record, None, wants_record).unwrap();
            assert_eq!(s.record.is_some(), read);
        }
        let mixed = r#"{"commitInfo":{},"remove":{"path":"a.parquet"}}"#;
        let mut s = State::default();
        s.apply(base, 1, mixed, None, false).unwrap();
        assert_eq!(
            std_map(s.changed),
            HashMap::from([("a.parquet".to_string(), Change::Removed)])
        );
    }

    /// A partial read keeps exactly the files a whole read holds that `keep` wants: from the
    /// checkpoint (of several row groups) and from the entries after it, whatever order they
    /// removed, re-added and moved files in, the null partition included.
    #[test]
    fn a_partial_read_holds_the_wanted_files_of_a_whole_read() {
        use super::super::checkpoint::{
            Checkpoint, CheckpointAdd, CheckpointMetadata, CheckpointProtocol,
        };
        let year = |y: Option<&str>| {
            PartitionValues::from(BTreeMap::from([("year".to_string(), y.map(String::from))]))
        };
        let folder =
            |y: Option<&str>| format!("year={}", y.unwrap_or("__HIVE_DEFAULT_PARTITION__"));
        let years = [Some("2023"), Some("2024"), None];
        // 20,000 files: two row groups.
        let adds: Vec<CheckpointAdd> = (0..20_000)
            .map(|i| {
                let y = years[i % 3];
                CheckpointAdd {
                    path: format!("{}/f{i:05}%20x.parquet", folder(y)),
                    partition_values: year(y),
                    size: i as i64,
                    modification_time: 0,
                    data_change: true,
                    tags: vec![],
                    stats: Some(format!(r#"{{"numRecords":{i}}}"#)),
                }
            })
            .collect();
        let checkpoint = Checkpoint {
            protocol: CheckpointProtocol {
                min_reader_version: 1,
                min_writer_version: 2,
                writer_features: None,
            },
            metadata: CheckpointMetadata {
                id: "x".into(),
                name: None,
                description: None,
                schema_string: r#"{"type":"struct","fields":[{"name":"v","type":"long","nullable":true,"metadata":{}},{"name":"year","type":"integer","nullable":true,"metadata":{}}]}"#.into(),
                partition_columns: vec!["year".into()],
                configuration: vec![],
                created_time: None,
            },
            adds,
            removes: vec![],
            txns: vec![],
        };
        // After it: a 2024 file removed, one re-added, a 2023 path re-added in 2024 (moved),
        // a new 2024 file removed again, a null-partition file removed.
        let v4 = r#"{"remove":{"path":"year=2024/f00001%20x.parquet","dataChange":true}}
{"remove":{"path":"year=2024/f00004%20x.parquet","dataChange":true}}
{"add":{"path":"year=2024/f00004%20x.parquet","partitionValues":{"year":"2024"},"size":4,"modificationTime":1,"dataChange":true}}
{"add":{"path":"year=2023/f00000%20x.parquet","partitionValues":{"year":"2024"},"size":9,"modificationTime":1,"dataChange":true}}
{"add":{"path":"year=2024/new.parquet","partitionValues":{"year":"2024"},"size":1,"modificationTime":1,"dataChange":true}}
{"remove":{"path":"year=__HIVE_DEFAULT_PARTITION__/f00002%20x.parquet","dataChange":true}}"#;
        let v5 = r#"{"remove":{"path":"year=2024/new.parquet","dataChange":true}}
{"add":{"path":"year=2025/g.parquet","partitionValues":{"year":"2025"},"size":2,"modificationTime":2,"dataChange":true}}"#;
        let bytes = super::super::checkpoint::write_checkpoint(&checkpoint).unwrap();
        let (mut names, mut files) = table(&[(4, v4), (5, v5)]);
        names.push("00000000000000000003.checkpoint.parquet".into());
        files.insert(super::super::checkpoint_rel(3), bytes);
        let read = |rel: &str| Ok(files.get(rel).cloned());
        let base = Path::new("/t");
        let whole = snapshot(base, &names, &read, None).unwrap();
        assert!(!whole.partial);
        assert_eq!(whole.files.len(), 20_000 - 2 + 1);
        for wanted in [
            vec![Some("2024")],
            vec![None],
            vec![Some("2024"), Some("2025")],
            vec![],
        ] {
            let keep = |_: &str, values: &PartitionValues| wanted.contains(&values.value("year"));
            let part =
                snapshot_where(base, &names, &read, None, Some(&Keep::by_values(&keep))).unwrap();
            assert!(part.partial);
            let expected: Vec<&LiveFile> = whole
                .files
                .iter()
                .filter(|f| wanted.contains(&f.partition.value("year")))
                .collect();
            assert_eq!(
                part.files.iter().collect::<Vec<_>>(),
                expected,
                "{wanted:?}"
            );
            assert_eq!(
                (part.version, &part.partition_columns, &part.data_columns),
                (whole.version, &whole.partition_columns, &whole.data_columns)
            );
            assert_eq!(part.live_files, whole.files.len());
            // The same wanted by folder name alone: the checkpoint's partition values are then
            // not decoded for the rows not wanted, and the moved file goes by its folder.
            let folders: Vec<String> = wanted.iter().map(|y| format!("{}/", folder(*y))).collect();
            let in_folder = |path: &str| folders.iter().any(|f| path.starts_with(f.as_str()));
            let keep = |path: &str, _: &PartitionValues| in_folder(path);
            let part =
                snapshot_where(base, &names, &read, None, Some(&Keep::by_path(&keep))).unwrap();
            let expected: Vec<&LiveFile> = whole
                .files
                .iter()
                .filter(|f| in_folder(f.logged_path()))
                .collect();
            assert_eq!(
                part.files.iter().collect::<Vec<_>>(),
                expected,
                "{wanted:?} by folder"
            );
            assert_eq!(part.live_files, whole.files.len());
        }
        let moved = whole
            .files
            .iter()
            .find(|f| f.path == "year=2023/f00000 x.parquet")
            .unwrap();
        assert_eq!(moved.partition.value("year"), Some("2024"));
    }
}
