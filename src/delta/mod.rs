//! Every pqdm dataset is also a Delta Lake table: this module turns pqdm's versions into Delta
//! log entries (`_delta_log/<version:020>.json`) and checkpoints, so that Spark, Trino, DuckDB,
//! Polars and delta-rs read consistent snapshots of it. Pure functions of manifests; where the
//! entries are written, and when, is [`crate::txn`]'s (`txn/delta_log.rs`).
//!
//! The mapping, version for version (pqdm's version N is Delta's version N):
//! - version 0 (and any version whose schema, partitioning or settings changed) carries
//!   `protocol` (reader 1; writer 7 with one writer feature of pqdm's own, so that other
//!   engines read the table but refuse to write to it) and `metaData`: the schema
//!   (data columns, then partition columns, typed as pqdm records them, so `year = 2024` is a
//!   number), `partitionColumns`, and the kind, key and settings as `pqdm.*` configuration;
//! - each file a version adds is an `add` whose path is where the file stays readable for as
//!   long as a retained version lists it (`_pqdm/files/<path>.kept`), with its partition values
//!   and statistics (rows; min, max and null count of the timestamp and integer key columns);
//! - each file a version takes out is a `remove` of that path (`dataChange: false` for a
//!   compaction, which rewrites rows without changing them).

pub mod actions;
pub mod checkpoint;
mod checkpoint_read;
pub mod record;
pub mod replay;

use std::collections::BTreeMap;

pub use actions::{Action, Add, MetaData, Protocol, Remove, Stats};
pub use checkpoint_read::Keep;

use crate::dtype::ColType;
use crate::manifest::{FileEntry, Manifest};

/// The folder of the log, under the dataset's base.
pub const LOG_DIR: &str = "_delta_log";

/// A checkpoint is written at every version divisible by this (Delta's own default).
pub const DEFAULT_CHECKPOINT_INTERVAL: u64 = 100;

/// How many versions apart `m`'s dataset writes its checkpoints.
pub fn checkpoint_interval(m: &Manifest) -> u64 {
    m.settings
        .checkpoint_interval
        .unwrap_or(DEFAULT_CHECKPOINT_INTERVAL)
        .max(1)
}

/// A commit of at least this many actions (files added and removed) is followed by a
/// checkpoint whatever its version number: opening the table then never replays it (the
/// 100,000-file first ingest's entry is 59 MB of JSON, 1 s to read; its checkpoint 1.6 MB).
pub const LARGE_COMMIT_ACTIONS: u64 = 5_000;

/// Whether version `m` gets a checkpoint when committed: its number is a multiple of the
/// dataset's interval, or its commit was large ([`LARGE_COMMIT_ACTIONS`]).
pub fn wants_checkpoint(m: &Manifest) -> bool {
    let actions = m
        .operation
        .files_added
        .saturating_add(m.operation.files_removed);
    m.version > 0
        && (m.version.is_multiple_of(checkpoint_interval(m)) || actions >= LARGE_COMMIT_ACTIONS)
}

/// The relative path of version `version`'s log entry.
pub fn entry_rel(version: u64) -> String {
    format!("{LOG_DIR}/{version:020}.json")
}

/// The relative path of the checkpoint of version `version`.
pub fn checkpoint_rel(version: u64) -> String {
    format!("{LOG_DIR}/{version:020}.checkpoint.parquet")
}

/// The relative path of the pointer to the newest checkpoint.
pub fn last_checkpoint_rel() -> String {
    format!("{LOG_DIR}/_last_checkpoint")
}

/// The version a log entry's file name (`<20 digits>.json`) holds.
pub fn entry_version(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".json")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// The version a checkpoint's file name (`<20 digits>.checkpoint.parquet`) holds.
pub fn checkpoint_version(name: &str) -> Option<u64> {
    entry_version(&format!(
        "{}.json",
        name.strip_suffix(".checkpoint.parquet")?
    ))
}

/// A new table id: a random UUID (version 4 layout), from blake3 of the time, the process and
/// a fresh operation id.
pub fn new_table_id() -> String {
    let seed = format!(
        "{}-{}-{}",
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default(),
        std::process::id(),
        crate::metrics::new_op_id()
    );
    let mut b = *blake3::hash(seed.as_bytes()).as_bytes();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b[..16].iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Percent-encodes a relative path as the protocol's `add.path` wants it (a URI reference):
/// every byte but unreserved characters, `/` and `=` (which engines write unencoded in hive
/// folder names) is `%XX`, so a partition folder holding `%`, a space or `é` reads back exactly.
pub fn encode_path(rel: &str) -> String {
    let mut out = String::with_capacity(rel.len());
    for b in rel.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' | b'=' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The Delta type name of a pqdm dtype (`long`, `integer`, `string`, `date`, ...).
pub fn type_name(t: ColType) -> &'static str {
    match t {
        ColType::I64 => "long",
        ColType::I32 => "integer",
        ColType::I16 => "short",
        ColType::I8 => "byte",
        ColType::F64 => "double",
        ColType::Bool => "boolean",
        ColType::Str => "string",
        ColType::Date => "date",
    }
}

/// The table's schema as Delta's JSON: the data columns, then the partition columns. Every
/// column is nullable, as the Parquet files declare them (pqdm refuses nulls in the key itself;
/// a non-nullable Delta column over an optional Parquet column is refused by some readers).
pub fn schema_string(m: &Manifest) -> String {
    let field = |name: &str, t: ColType| serde_json::json!({"name": name, "type": type_name(t), "nullable": true, "metadata": {}});
    let fields: Vec<serde_json::Value> = m
        .schema
        .iter()
        .chain(&m.partition_columns)
        .map(|f| field(&f.name, f.dtype))
        .collect();
    serde_json::json!({"type": "struct", "fields": fields}).to_string()
}

/// `m`'s schema, partitioning and settings as a `metaData` action of table `id`.
pub fn metadata(m: &Manifest, id: &str, created_time: Option<i64>) -> MetaData {
    let mut configuration = BTreeMap::from([
        ("pqdm.kind".to_string(), m.kind.clone()),
        ("pqdm.timestampColumn".into(), m.timestamp_column.clone()),
        ("pqdm.timestampUnit".into(), "ms".into()),
        (
            "pqdm.key".into(),
            serde_json::to_string(&m.key).expect("strings serialise"),
        ),
        ("pqdm.compression".into(), m.settings.compression.clone()),
        (
            "pqdm.maxRowsPerFile".into(),
            m.settings.max_rows_per_file.to_string(),
        ),
    ]);
    configuration.insert(
        "delta.checkpointInterval".into(),
        checkpoint_interval(m).to_string(),
    );
    if let Some(n) = m.settings.auto_compact {
        configuration.insert("pqdm.autoCompact".into(), n.to_string());
    }
    for (k, v) in &m.metadata {
        configuration.insert(format!("pqdm.metadata.{k}"), v.clone());
    }
    MetaData {
        id: id.to_string(),
        name: Some(m.kind.clone()),
        description: Some("a pqdm dataset (https://github.com/pqdm): written by pqdm only".into()),
        format: actions::Format {
            provider: "parquet".into(),
            options: BTreeMap::new(),
        },
        schema_string: schema_string(m),
        partition_columns: m.partition_columns.iter().map(|f| f.name.clone()).collect(),
        configuration,
        created_time,
    }
}

/// A file's statistics: its rows, the min and max of the timestamp and of the integer key
/// columns whose ranges the manifest records, and the timestamp's null count where the manifest
/// records it (a lenient write can hold null timestamps; where the count is unknown none is
/// given, since a missing count read as 0 would make engines skip the file for `IS NULL`).
pub fn stats(m: &Manifest, f: &FileEntry) -> Stats {
    let mut s = Stats {
        num_records: f.rows,
        ..Default::default()
    };
    if let (Some(lo), Some(hi)) = (f.min_timestamp, f.max_timestamp) {
        s.min_values.insert(m.timestamp_column.clone(), lo);
        s.max_values.insert(m.timestamp_column.clone(), hi);
    }
    for (col, [lo, hi]) in &f.key_ranges {
        s.min_values.insert(col.clone(), *lo);
        s.max_values.insert(col.clone(), *hi);
    }
    if let Some(n) = f.null_timestamps {
        s.null_count.insert(m.timestamp_column.clone(), n);
    }
    s
}

/// When version `m` was committed, in ms since the epoch (0 when its time does not parse).
pub fn commit_millis(m: &Manifest) -> i64 {
    chrono::DateTime::parse_from_rfc3339(&m.updated_at)
        .map(|t| t.timestamp_millis())
        .unwrap_or(0)
}

/// The `add` of file `f` of version `m`, read by Delta readers at `path` (relative to the base).
/// `millis` is the version's commit time ([`commit_millis`], parsed once per entry or checkpoint,
/// not once per file).
pub fn add(m: &Manifest, f: &FileEntry, path: &str, data_change: bool, millis: i64) -> Add {
    Add {
        path: encode_path(path),
        partition_values: f.partition.clone(),
        size: f.bytes as i64,
        modification_time: millis,
        data_change,
        tags: record::file_tags(f),
        stats: Some(serde_json::to_string(&stats(m, f)).expect("stats serialise")),
    }
}

/// Whether version `next` only rearranges rows (a compaction): its `add`s and `remove`s then
/// say `dataChange: false`, and streaming readers skip them.
fn rearranges_only(next: &Manifest) -> bool {
    next.operation.name == "compact"
}

/// The Delta operation name of a pqdm operation.
fn operation_name(next: &Manifest) -> String {
    match (next.operation.name.as_str(), next.operation.mode.as_deref()) {
        ("create", _) => "CREATE TABLE".into(),
        ("adopt", _) => "CONVERT".into(),
        ("compact", _) => "OPTIMIZE".into(),
        ("write", Some("upsert")) => "MERGE".into(),
        ("write", _) => "WRITE".into(),
        (other, _) => other.to_ascii_uppercase(),
    }
}

/// The `commitInfo` of version `next`: what Delta's history shows, with pqdm's operation id.
fn commit_info(next: &Manifest) -> serde_json::Value {
    let mut params = serde_json::Map::new();
    if let Some(mode) = &next.operation.mode {
        params.insert("mode".into(), mode.clone().into());
    }
    serde_json::json!({
        "timestamp": commit_millis(next),
        "operation": operation_name(next),
        "operationParameters": params,
        "isBlindAppend": next.operation.mode.as_deref() == Some("append"),
        "engineInfo": format!("pqdm/{}", crate::VERSION),
        "pqdm": {
            "operation": next.operation.name,
            "opId": next.operation.op_id,
            "version": next.version,
            "rowsAdded": next.operation.rows_added,
            "rowsRemoved": next.operation.rows_removed,
            "manifest": record::header(next),
        },
    })
}

/// The actions of the log entry that makes version `next` from `prev` (`None`: `next` is the
/// table's first version in the log). `path` says where Delta readers read a file of `next`.
pub fn entry(
    prev: Option<&Manifest>,
    next: &Manifest,
    table_id: &str,
    path: &dyn Fn(&str) -> String,
) -> Vec<Action> {
    let mut out = vec![Action::CommitInfo(commit_info(next))];
    let changed =
        prev.is_none_or(|p| metadata(p, table_id, None) != metadata(next, table_id, None));
    if prev.is_none() {
        out.push(Action::Protocol(Protocol::default()));
    }
    if changed {
        out.push(Action::MetaData(metadata(
            next,
            table_id,
            Some(commit_millis(next)),
        )));
    }
    let data_change = !rearranges_only(next);
    let when = commit_millis(next);
    let before = by_path(prev.map_or(&[], |p| &p.files));
    let after = by_path(&next.files);
    // Both lists in path order, walked side by side.
    let (mut i, mut j) = (0, 0);
    let mut removes = vec![];
    while i < before.len() || j < after.len() {
        let order = match (before.get(i), after.get(j)) {
            (Some(b), Some(a)) => b.path.cmp(&a.path),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        match order {
            std::cmp::Ordering::Less => {
                let f = before[i];
                removes.push(Action::Remove(Remove {
                    path: encode_path(&path(&f.path)),
                    deletion_timestamp: Some(when),
                    data_change,
                    extended_file_metadata: true,
                    partition_values: f.partition.clone(),
                    size: f.bytes as i64,
                }));
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                let f = after[j];
                out.push(Action::Add(add(next, f, &path(&f.path), data_change, when)));
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                // A path already listed with the same entry is unchanged; with another (a
                // repair that restored its content or rebuilt its statistics), its new `add`
                // replaces the old one.
                let f = after[j];
                if before[i] != f {
                    out.push(Action::Add(add(next, f, &path(&f.path), data_change, when)));
                }
                i += 1;
                j += 1;
            }
        }
    }
    out.extend(removes);
    out
}

/// `files` in path order (a version's list already is: then only checked), one per path (the
/// last, as a map keeps it).
fn by_path(files: &[FileEntry]) -> Vec<&FileEntry> {
    let mut sorted: Vec<&FileEntry> = files.iter().collect();
    crate::sorted::sort_keep_last(&mut sorted, |f| f.path.as_str());
    sorted
}

/// A log entry's bytes: one action per line.
pub fn entry_bytes(actions: &[Action]) -> Vec<u8> {
    let mut out = Vec::new();
    for a in actions {
        serde_json::to_writer(&mut out, a).expect("actions serialise");
        out.push(b'\n');
    }
    out
}

/// The checkpoint of version `m` (its whole state: protocol, metaData and an `add` per file).
pub fn checkpoint(
    m: &Manifest,
    table_id: &str,
    path: &(dyn Fn(&str) -> String + Sync),
) -> checkpoint::Checkpoint {
    use checkpoint::*;
    use rayon::prelude::*;
    let meta = metadata(m, table_id, Some(commit_millis(m)));
    let millis = commit_millis(m);
    Checkpoint {
        protocol: CheckpointProtocol {
            min_reader_version: actions::MIN_READER_VERSION,
            min_writer_version: actions::MIN_WRITER_VERSION,
            writer_features: Some(vec![actions::PQDM_WRITER_FEATURE.into()]),
        },
        metadata: CheckpointMetadata {
            id: meta.id,
            name: meta.name,
            description: meta.description,
            schema_string: meta.schema_string,
            partition_columns: meta.partition_columns,
            configuration: meta
                .configuration
                .into_iter()
                .chain([(
                    record::CHECKPOINT_KEY.to_string(),
                    record::header(m).to_string(),
                )])
                .collect(),
            created_time: meta.created_time,
        },
        adds: m
            .files
            .par_iter()
            .map(|f| {
                let a = add(m, f, &path(&f.path), true, millis);
                CheckpointAdd {
                    path: a.path,
                    partition_values: a.partition_values,
                    size: a.size,
                    modification_time: a.modification_time,
                    data_change: false,
                    tags: a.tags.into_iter().collect(),
                    stats: a.stats,
                }
            })
            .collect(),
        removes: vec![],
        txns: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An empty klines manifest at `/t`.
    fn empty() -> Manifest {
        let kind = crate::schema::builtin_kinds().remove(0);
        let settings = crate::manifest::Settings {
            compression: "snappy".into(),
            max_rows_per_file: 1,
            auto_compact: None,
            checkpoint_interval: None,
            manifest_max_files: None,
        };
        Manifest::empty(std::path::Path::new("/t"), &kind, vec![], vec![], settings)
    }

    #[test]
    fn a_checkpoint_follows_every_interval_and_every_large_commit() {
        let mut m = empty();
        let wants = |m: &Manifest, version: u64, added: u64, removed: u64| {
            let mut m = m.clone();
            m.version = version;
            m.operation.files_added = added;
            m.operation.files_removed = removed;
            wants_checkpoint(&m)
        };
        assert!(!wants(&m, 0, 0, 0));
        assert!(
            !wants(&m, 0, LARGE_COMMIT_ACTIONS, 0),
            "version 0 is the empty table"
        );
        assert!(!wants(&m, 1, 10, 10));
        assert!(wants(&m, 100, 0, 0));
        assert!(wants(&m, 200, 1, 0));
        assert!(!wants(&m, 101, LARGE_COMMIT_ACTIONS - 1, 0));
        assert!(
            wants(&m, 1, LARGE_COMMIT_ACTIONS, 0),
            "the first ingest of many files"
        );
        assert!(wants(
            &m,
            7,
            LARGE_COMMIT_ACTIONS / 2,
            LARGE_COMMIT_ACTIONS / 2
        ));
        assert!(wants(&m, 7, u64::MAX, u64::MAX), "no overflow");
        m.settings.checkpoint_interval = Some(3);
        assert!(wants(&m, 3, 0, 0) && wants(&m, 6, 0, 0) && !wants(&m, 100, 0, 0));
        m.settings.checkpoint_interval = Some(0);
        assert!(wants(&m, 5, 0, 0), "an interval of 0 is read as 1");
    }

    #[test]
    fn an_entry_adds_new_and_changed_files_and_removes_the_rest() {
        let base = empty();
        let file = |path: &str, rows: u64| FileEntry {
            path: path.into(),
            partition: crate::manifest::PartitionValues::new(crate::partition::parse_path(path)),
            rows,
            bytes: 10,
            min_timestamp: Some(1),
            max_timestamp: Some(2),
            key_ranges: BTreeMap::new(),
            checksum: "c".into(),
            added_in: 0,
            null_timestamps: Some(0),
        };
        let mut prev = base.clone();
        // Listed out of order (a manifest edited by hand): the walk sorts a copy.
        prev.files = vec![file("s=c/f", 1), file("s=a/f", 1), file("s=b/f", 1)];
        let mut next = base.clone();
        next.version = 1;
        next.files = vec![file("s=b/f", 1), file("s=c/f", 5), file("s=d/f", 1)];
        let actions = entry(Some(&prev), &next, "id", &|p: &str| p.to_string());
        let named: Vec<String> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Add(a) => Some(format!("add {} {:?}", a.path, a.partition_values)),
                Action::Remove(r) => Some(format!("remove {} {}", r.path, r.size)),
                _ => None,
            })
            .collect();
        assert_eq!(
            named,
            [
                r#"add s=c/f {"s": Some("c")}"#,
                r#"add s=d/f {"s": Some("d")}"#,
                "remove s=a/f 10",
            ]
        );
        // The first version adds every file; an unchanged version adds and removes nothing.
        let first = entry(None, &next, "id", &|p: &str| p.to_string());
        assert_eq!(
            first.iter().filter(|a| matches!(a, Action::Add(_))).count(),
            3
        );
        let same = entry(Some(&next), &next, "id", &|p: &str| p.to_string());
        assert!(
            !same
                .iter()
                .any(|a| matches!(a, Action::Add(_) | Action::Remove(_)))
        );
    }

    #[test]
    fn paths_are_uri_encoded_so_every_partition_value_reads_back() {
        assert_eq!(
            encode_path("symbol=BTC-USDT/date=2024-01-01/part-0.parquet"),
            "symbol=BTC-USDT/date=2024-01-01/part-0.parquet"
        );
        assert_eq!(encode_path("s=a%2Fb c/x"), "s=a%252Fb%20c/x");
        assert_eq!(encode_path("s=é[1]"), "s=%C3%A9%5B1%5D");
    }

    #[test]
    fn entry_and_checkpoint_names_hold_twenty_digit_versions() {
        assert_eq!(entry_rel(7), "_delta_log/00000000000000000007.json");
        assert_eq!(entry_version("00000000000000000007.json"), Some(7));
        assert_eq!(entry_version("7.json"), None);
        assert_eq!(
            checkpoint_version("00000000000000000100.checkpoint.parquet"),
            Some(100)
        );
        assert_eq!(checkpoint_version("00000000000000000100.json"), None);
    }

    #[test]
    fn table_ids_are_uuids_and_differ() {
        let (a, b) = (new_table_id(), new_table_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(a.as_bytes()[14], b'4');
        assert!(a.split('-').map(str::len).eq([8, 4, 4, 4, 12]));
    }
}
