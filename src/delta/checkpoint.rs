//! Delta Lake classic checkpoints (`<version:020>.checkpoint.parquet`, one file, V1 spec),
//! written and read with the low-level API of the `parquet` crate (no Arrow).
//!
//! The Parquet schema is the protocol's "Checkpoint Schema" in the column order Spark
//! (parquet-mr) writes it: one optional top-level struct per action (`txn`, `add`, `remove`,
//! `metaData`, `protocol`) and one row per action, with exactly one of them non-null.
//! `partitionValues`, `configuration`, `format.options` and `tags` are standard 3-level
//! `MAP<string,string>` (key required, value optional); `partitionColumns` is a standard
//! 3-level `LIST<string>`; strings are `BYTE_ARRAY` annotated `STRING` (converted type UTF8).
//! `stats_parsed` / `partitionValues_parsed` are not written (both are optional in the protocol
//! while `delta.checkpoint.writeStatsAsStruct` is unset).
//!
//! Writing: every leaf column is produced by one generic routine ([`Columns::leaf`]) from a
//! per-row [`Cell`]; it derives the definition / repetition levels from the column descriptor.
//!
//! Reading is column by column ([`super::checkpoint_read`]), so files written by Spark
//! (parquet-mr) or delta-rs (other column order, `required` maps, extra `stats_parsed`,
//! `deletionVector`, `cdc`, ... columns) read too. Only tables of reader
//! version 1-2 and writer version < 7 (no table features) are accepted, on both sides: a
//! checkpoint of such a table cannot carry actions or fields that this model would drop.

use std::sync::Arc;

use parquet::basic::Compression;
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DataType, Int32Type, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::{SerializedFileWriter, SerializedRowGroupWriter};
use parquet::schema::parser::parse_message_type;

use crate::partition_values::PartitionValues;

/// `protocol` row.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckpointProtocol {
    pub min_reader_version: i32,
    pub min_writer_version: i32,
    /// The writer features (writer version 7 only; `None` below it).
    pub writer_features: Option<Vec<String>>,
}

/// `metaData` row (`format` is always `{provider: "parquet", options: {}}`).
#[derive(Clone, Debug, PartialEq)]
pub struct CheckpointMetadata {
    pub id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub schema_string: String,
    pub partition_columns: Vec<String>,
    pub configuration: Vec<(String, String)>,
    pub created_time: Option<i64>,
}

/// `add` row.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckpointAdd {
    pub path: String,
    pub partition_values: PartitionValues,
    pub size: i64,
    pub modification_time: i64,
    pub data_change: bool,
    /// The file's tags (written null when empty).
    pub tags: Vec<(String, Option<String>)>,
    pub stats: Option<String>,
}

/// `remove` row (a tombstone for VACUUM).
#[derive(Clone, Debug, PartialEq)]
pub struct CheckpointRemove {
    pub path: String,
    pub deletion_timestamp: Option<i64>,
    pub data_change: bool,
    pub extended_file_metadata: Option<bool>,
    pub partition_values: PartitionValues,
    pub size: Option<i64>,
}

/// `txn` row.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckpointTxn {
    pub app_id: String,
    pub version: i64,
    pub last_updated: Option<i64>,
}

/// A checkpoint: the rows of the file, in the order written (protocol, metaData, txns, adds,
/// removes).
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    pub protocol: CheckpointProtocol,
    pub metadata: CheckpointMetadata,
    pub adds: Vec<CheckpointAdd>,
    pub removes: Vec<CheckpointRemove>,
    pub txns: Vec<CheckpointTxn>,
}

impl Checkpoint {
    /// The number of actions (= rows) the checkpoint file holds: the `size` of `_last_checkpoint`.
    pub fn num_actions(&self) -> usize {
        2 + self.txns.len() + self.adds.len() + self.removes.len()
    }
}

/// The `_delta_log/_last_checkpoint` JSON: {"version":V,"size":N} where size = number of actions (rows) in the checkpoint.
pub fn last_checkpoint_json(version: i64, actions: usize) -> String {
    format!("{{\"version\":{version},\"size\":{actions}}}")
}

/// The checkpoint's Parquet schema (Spark's column order; see the module docs).
const CHECKPOINT_SCHEMA: &str = "
message spark_schema {
  optional group txn {
    optional binary appId (STRING);
    optional int64 version;
    optional int64 lastUpdated;
  }
  optional group add {
    optional binary path (STRING);
    optional group partitionValues (MAP) {
      repeated group key_value {
        required binary key (STRING);
        optional binary value (STRING);
      }
    }
    optional int64 size;
    optional int64 modificationTime;
    optional boolean dataChange;
    optional group tags (MAP) {
      repeated group key_value {
        required binary key (STRING);
        optional binary value (STRING);
      }
    }
    optional binary stats (STRING);
  }
  optional group remove {
    optional binary path (STRING);
    optional int64 deletionTimestamp;
    optional boolean dataChange;
    optional boolean extendedFileMetadata;
    optional group partitionValues (MAP) {
      repeated group key_value {
        required binary key (STRING);
        optional binary value (STRING);
      }
    }
    optional int64 size;
  }
  optional group metaData {
    optional binary id (STRING);
    optional binary name (STRING);
    optional binary description (STRING);
    optional group format {
      optional binary provider (STRING);
      optional group options (MAP) {
        repeated group key_value {
          required binary key (STRING);
          optional binary value (STRING);
        }
      }
    }
    optional binary schemaString (STRING);
    optional group partitionColumns (LIST) {
      repeated group list {
        optional binary element (STRING);
      }
    }
    optional group configuration (MAP) {
      repeated group key_value {
        required binary key (STRING);
        optional binary value (STRING);
      }
    }
    optional int64 createdTime;
  }
  optional group protocol {
    optional int32 minReaderVersion;
    optional int32 minWriterVersion;
    optional group writerFeatures (LIST) {
      repeated group list {
        optional binary element (STRING);
      }
    }
  }
}
";

/// Rejects protocols whose checkpoints need `readerFeatures` / `writerFeatures` (or actions this
/// model does not carry: deletion vectors, domain metadata, sidecars, ...).
pub(super) fn check_protocol(p: &CheckpointProtocol) -> Result<(), String> {
    let writer_ok = match p.min_writer_version {
        1..=6 => p.writer_features.is_none(),
        // Writer features only (no reader features): nothing a reader must know of.
        7 => p.writer_features.is_some(),
        _ => false,
    };
    if !(1..=2).contains(&p.min_reader_version) || !writer_ok {
        return Err(format!(
            "Delta protocol minReaderVersion {} / minWriterVersion {} is not supported by this checkpoint code \
             (only reader versions 1-2, and writer versions 1-6, or 7 with writer features only)",
            p.min_reader_version, p.min_writer_version
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

/// One row of the checkpoint: one action.
#[derive(Clone, Copy)]
enum Action<'a> {
    Txn(&'a CheckpointTxn),
    Add(&'a CheckpointAdd),
    Remove(&'a CheckpointRemove),
    MetaData(&'a CheckpointMetadata),
    Protocol(&'a CheckpointProtocol),
}

impl<'a> Action<'a> {
    fn txn(self) -> Option<&'a CheckpointTxn> {
        if let Action::Txn(x) = self {
            Some(x)
        } else {
            None
        }
    }
    fn add(self) -> Option<&'a CheckpointAdd> {
        if let Action::Add(x) = self {
            Some(x)
        } else {
            None
        }
    }
    fn remove(self) -> Option<&'a CheckpointRemove> {
        if let Action::Remove(x) = self {
            Some(x)
        } else {
            None
        }
    }
    fn meta(self) -> Option<&'a CheckpointMetadata> {
        if let Action::MetaData(x) = self {
            Some(x)
        } else {
            None
        }
    }
    fn protocol(self) -> Option<&'a CheckpointProtocol> {
        if let Action::Protocol(x) = self {
            Some(x)
        } else {
            None
        }
    }
}

/// What one row holds in one leaf column.
enum Cell<T> {
    /// Null, with this definition level: the number of the leaf's optional ancestors that are
    /// present (0 = the row is another action; 1 = the action is there, this field is null).
    Null(i16),
    /// A value, every ancestor present (non-repeated leaves).
    Value(T),
    /// The leaf of a present repeated container (map key/value, list element): one item per
    /// entry, `None` for a null item; no items = an empty (not null) container.
    Items(Vec<Option<T>>),
}

impl<T> Cell<T> {
    fn map<U>(self, f: impl Fn(T) -> Option<U>) -> Cell<U> {
        match self {
            Cell::Null(d) => Cell::Null(d),
            Cell::Value(v) => f(v).map_or(Cell::Null(1), Cell::Value),
            Cell::Items(items) => Cell::Items(items.into_iter().map(|i| i.and_then(&f)).collect()),
        }
    }
}

/// `Some(v)` → value; `None` → null field of a present action (definition level 1).
fn opt<T>(v: Option<T>) -> Cell<T> {
    v.map_or(Cell::Null(1), Cell::Value)
}

fn text(s: &str) -> ByteArray {
    ByteArray::from(s)
}

/// A map's entries, as items of the `key_value` group.
fn entries<'a>(
    kv: impl Iterator<Item = (&'a str, Option<&'a str>)>,
) -> Cell<(&'a str, Option<&'a str>)> {
    Cell::Items(kv.map(Some).collect())
}

/// Lifts a cell of one action kind to a cell of any row (null at level 0 on other actions).
fn on<'a, A: ?Sized + 'a, T>(
    pick: fn(Action<'a>) -> Option<&'a A>,
    f: impl Fn(&'a A) -> Cell<T>,
) -> impl Fn(Action<'a>) -> Cell<T> {
    move |row| pick(row).map_or(Cell::Null(0), &f)
}

fn on_txn<'a, T>(f: impl Fn(&'a CheckpointTxn) -> Cell<T>) -> impl Fn(Action<'a>) -> Cell<T> {
    on(Action::txn, f)
}
fn on_add<'a, T>(f: impl Fn(&'a CheckpointAdd) -> Cell<T>) -> impl Fn(Action<'a>) -> Cell<T> {
    on(Action::add, f)
}
fn on_remove<'a, T>(f: impl Fn(&'a CheckpointRemove) -> Cell<T>) -> impl Fn(Action<'a>) -> Cell<T> {
    on(Action::remove, f)
}
fn on_meta<'a, T>(f: impl Fn(&'a CheckpointMetadata) -> Cell<T>) -> impl Fn(Action<'a>) -> Cell<T> {
    on(Action::meta, f)
}
fn on_protocol<'a, T>(
    f: impl Fn(&'a CheckpointProtocol) -> Cell<T>,
) -> impl Fn(Action<'a>) -> Cell<T> {
    on(Action::protocol, f)
}

/// The row group being written, column by column, in schema order.
struct Columns<'w, 'a> {
    rg: SerializedRowGroupWriter<'w, Vec<u8>>,
    rows: Vec<Action<'a>>,
}

impl<'a> Columns<'_, 'a> {
    /// Writes the next leaf column (whose dotted path must be `path`) from one cell per row.
    fn leaf<T: DataType>(
        &mut self,
        path: &str,
        cell: impl Fn(Action<'a>) -> Cell<T::T>,
    ) -> Result<(), String> {
        let err =
            |e: parquet::errors::ParquetError| format!("writing checkpoint column {path}: {e}");
        let mut col = self.rg.next_column().map_err(err)?.ok_or_else(|| {
            format!("writing checkpoint column {path}: no such column left in the schema")
        })?;
        let writer = col.typed::<T>();
        let descr = writer.get_descriptor().clone();
        if descr.path().string() != path {
            return Err(format!(
                "writing checkpoint column {path}: the schema's next column is {}",
                descr.path().string()
            ));
        }
        let (max_def, max_rep) = (descr.max_def_level(), descr.max_rep_level());
        let leaf_optional = descr.self_type().is_optional();
        // Definition level of an empty map / list: its group is there, its repeated child not.
        let empty_def = max_def - 1 - i16::from(leaf_optional);

        let n = self.rows.len();
        let (mut defs, mut reps, mut values) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for &row in &self.rows {
            match cell(row) {
                Cell::Null(d) if d < max_def && (max_rep == 0 || d <= empty_def) => {
                    defs.push(d);
                    reps.push(0);
                }
                Cell::Value(v) if max_rep == 0 => {
                    defs.push(max_def);
                    reps.push(0);
                    values.push(v);
                }
                Cell::Items(items) if max_rep == 1 => {
                    if items.is_empty() {
                        defs.push(empty_def);
                        reps.push(0);
                    }
                    for (i, item) in items.into_iter().enumerate() {
                        reps.push(if i == 0 { 0 } else { 1 });
                        match item {
                            Some(v) => {
                                defs.push(max_def);
                                values.push(v);
                            }
                            None if leaf_optional => defs.push(max_def - 1),
                            None => {
                                return Err(format!(
                                    "writing checkpoint column {path}: null in a required field"
                                ));
                            }
                        }
                    }
                }
                _ => {
                    return Err(format!(
                        "writing checkpoint column {path}: value does not fit the column's nesting"
                    ));
                }
            }
        }
        let reps = (max_rep > 0).then_some(&reps[..]);
        writer
            .write_batch(&values, Some(&defs), reps)
            .map_err(err)?;
        col.close().map_err(err)
    }

    fn string<S: AsRef<str>>(
        &mut self,
        path: &str,
        cell: impl Fn(Action<'a>) -> Cell<S>,
    ) -> Result<(), String> {
        self.leaf::<ByteArrayType>(path, |row| cell(row).map(|s| Some(text(s.as_ref()))))
    }

    fn long(&mut self, path: &str, cell: impl Fn(Action<'a>) -> Cell<i64>) -> Result<(), String> {
        self.leaf::<Int64Type>(path, cell)
    }

    fn int(&mut self, path: &str, cell: impl Fn(Action<'a>) -> Cell<i32>) -> Result<(), String> {
        self.leaf::<Int32Type>(path, cell)
    }

    fn boolean(
        &mut self,
        path: &str,
        cell: impl Fn(Action<'a>) -> Cell<bool>,
    ) -> Result<(), String> {
        self.leaf::<BoolType>(path, cell)
    }

    /// A `MAP<string,string>`: its `key` and `value` leaves.
    fn string_map(
        &mut self,
        path: &str,
        cell: impl Fn(Action<'a>) -> Cell<(&'a str, Option<&'a str>)>,
    ) -> Result<(), String> {
        self.string(&format!("{path}.key_value.key"), |row| {
            cell(row).map(|(k, _)| Some(k))
        })?;
        self.string(&format!("{path}.key_value.value"), |row| {
            cell(row).map(|(_, v)| v)
        })
    }
}

fn configuration_entries(kv: &[(String, String)]) -> Cell<(&str, Option<&str>)> {
    entries(kv.iter().map(|(k, v)| (k.as_str(), Some(v.as_str()))))
}

fn partition_entries(pv: &PartitionValues) -> Cell<(&str, Option<&str>)> {
    entries(pv.iter())
}

/// The entries of a map of strings, a cell.
fn string_entries(pv: &[(String, Option<String>)]) -> Cell<(&str, Option<&str>)> {
    entries(pv.iter().map(|(k, v)| (k.as_str(), v.as_deref())))
}

/// Writes `rows` as a one-row-group Parquet file of `schema`; `columns` writes every leaf
/// column, in schema order.
#[cfg(test)]
fn encode<'a>(
    schema: &str,
    rows: Vec<Action<'a>>,
    columns: impl Fn(&mut Columns<'_, 'a>) -> Result<(), String>,
) -> Result<Vec<u8>, String> {
    encode_groups(schema, vec![rows], Compression::SNAPPY, columns)
}

/// [`encode`] with one row group per item of `groups` (as other writers split large files) and
/// the codec `compression`.
fn encode_groups<'a>(
    schema: &str,
    groups: Vec<Vec<Action<'a>>>,
    compression: Compression,
    columns: impl Fn(&mut Columns<'_, 'a>) -> Result<(), String>,
) -> Result<Vec<u8>, String> {
    let schema = parse_message_type(schema).map_err(|e| format!("checkpoint schema: {e}"))?;
    let props = WriterProperties::builder()
        .set_compression(compression)
        .build();
    let mut file = SerializedFileWriter::new(Vec::new(), Arc::new(schema), Arc::new(props))
        .map_err(|e| format!("creating the checkpoint Parquet writer: {e}"))?;
    for rows in groups {
        let rg = file
            .next_row_group()
            .map_err(|e| format!("starting the checkpoint row group: {e}"))?;
        let mut w = Columns { rg, rows };
        columns(&mut w)?;
        let Columns { mut rg, .. } = w;
        if rg
            .next_column()
            .map_err(|e| format!("checkpoint schema: {e}"))?
            .is_some()
        {
            return Err("writing the checkpoint: a schema column was left unwritten".into());
        }
        rg.close()
            .map_err(|e| format!("closing the checkpoint row group: {e}"))?;
    }
    file.into_inner()
        .map_err(|e| format!("writing the checkpoint footer: {e}"))
}

/// Every leaf column of [`CHECKPOINT_SCHEMA`], in its order.
fn checkpoint_columns(w: &mut Columns<'_, '_>) -> Result<(), String> {
    w.string("txn.appId", on_txn(|t| Cell::Value(&t.app_id)))?;
    w.long("txn.version", on_txn(|t| Cell::Value(t.version)))?;
    w.long("txn.lastUpdated", on_txn(|t| opt(t.last_updated)))?;

    w.string("add.path", on_add(|a| Cell::Value(&a.path)))?;
    w.string_map(
        "add.partitionValues",
        on_add(|a| partition_entries(&a.partition_values)),
    )?;
    w.long("add.size", on_add(|a| Cell::Value(a.size)))?;
    w.long(
        "add.modificationTime",
        on_add(|a| Cell::Value(a.modification_time)),
    )?;
    w.boolean("add.dataChange", on_add(|a| Cell::Value(a.data_change)))?;
    w.string_map(
        "add.tags",
        on_add(|a| match a.tags.is_empty() {
            true => Cell::Null(1),
            false => string_entries(&a.tags),
        }),
    )?;
    w.string("add.stats", on_add(|a| opt(a.stats.as_ref())))?;

    w.string("remove.path", on_remove(|r| Cell::Value(&r.path)))?;
    w.long(
        "remove.deletionTimestamp",
        on_remove(|r| opt(r.deletion_timestamp)),
    )?;
    w.boolean(
        "remove.dataChange",
        on_remove(|r| Cell::Value(r.data_change)),
    )?;
    w.boolean(
        "remove.extendedFileMetadata",
        on_remove(|r| opt(r.extended_file_metadata)),
    )?;
    w.string_map(
        "remove.partitionValues",
        on_remove(|r| partition_entries(&r.partition_values)),
    )?;
    w.long("remove.size", on_remove(|r| opt(r.size)))?;

    w.string("metaData.id", on_meta(|m| Cell::Value(&m.id)))?;
    w.string("metaData.name", on_meta(|m| opt(m.name.as_ref())))?;
    w.string(
        "metaData.description",
        on_meta(|m| opt(m.description.as_ref())),
    )?;
    w.string(
        "metaData.format.provider",
        on_meta(|_| Cell::Value("parquet")),
    )?;
    w.string_map(
        "metaData.format.options",
        on_meta(|_| entries(std::iter::empty())),
    )?;
    w.string(
        "metaData.schemaString",
        on_meta(|m| Cell::Value(&m.schema_string)),
    )?;
    w.string(
        "metaData.partitionColumns.list.element",
        on_meta(|m| Cell::Items(m.partition_columns.iter().map(Some).collect())),
    )?;
    w.string_map(
        "metaData.configuration",
        on_meta(|m| configuration_entries(&m.configuration)),
    )?;
    w.long("metaData.createdTime", on_meta(|m| opt(m.created_time)))?;

    w.int(
        "protocol.minReaderVersion",
        on_protocol(|p| Cell::Value(p.min_reader_version)),
    )?;
    w.int(
        "protocol.minWriterVersion",
        on_protocol(|p| Cell::Value(p.min_writer_version)),
    )?;
    w.string(
        "protocol.writerFeatures.list.element",
        on_protocol(|p| match &p.writer_features {
            None => Cell::Null(1),
            Some(features) => Cell::Items(features.iter().map(Some).collect()),
        }),
    )
}

/// The bytes of the single-file checkpoint `<version:020>.checkpoint.parquet`.
pub fn write_checkpoint(c: &Checkpoint) -> Result<Vec<u8>, String> {
    check_protocol(&c.protocol)?;
    let mut rows = Vec::with_capacity(c.num_actions());
    rows.push(Action::Protocol(&c.protocol));
    rows.push(Action::MetaData(&c.metadata));
    rows.extend(c.txns.iter().map(Action::Txn));
    rows.extend(c.adds.iter().map(Action::Add));
    rows.extend(c.removes.iter().map(Action::Remove));
    let mut groups: Vec<Vec<Action>> = Vec::with_capacity(rows.len().div_ceil(GROUP_ROWS));
    while rows.len() > GROUP_ROWS {
        let rest = rows.split_off(GROUP_ROWS);
        groups.push(std::mem::replace(&mut rows, rest));
    }
    groups.push(rows);
    encode_groups(
        CHECKPOINT_SCHEMA,
        groups,
        Compression::SNAPPY,
        checkpoint_columns,
    )
}

/// Actions per row group of a checkpoint: a large one is read back one row group per core
/// (100,000 files in 7 row groups).
pub const GROUP_ROWS: usize = 16 * 1024;

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

/// Reads a checkpoint file (ours, or one written by delta-rs / Spark: classic single-file checkpoints, reader version 1-2 tables) back into a Checkpoint (actions absent from the file are empty; a file with several protocol/metaData rows is an error).
pub fn read_checkpoint(bytes: &[u8]) -> Result<Checkpoint, String> {
    read_checkpoint_where(bytes, None).map(|(checkpoint, _)| checkpoint)
}

/// [`read_checkpoint`] with only the adds and removes `keep` wants (all when `None`), and the
/// number of adds it did not want.
pub fn read_checkpoint_where(
    bytes: &[u8],
    keep: Option<&super::Keep<'_>>,
) -> Result<(Checkpoint, usize), String> {
    // `SerializedFileReader` reads from a `ChunkReader`; the in-memory one is `bytes::Bytes`,
    // which `parquet` does not re-export. `ByteArray::set_data` takes exactly that type, so it
    // names it here without a dependency on the `bytes` crate.
    super::checkpoint_read::read_from(ByteArray::set_data, bytes, keep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::basic::{ConvertedType, LogicalType, Repetition, Type as PhysicalType};
    use parquet::file::reader::{ChunkReader, FileReader};
    use parquet::file::serialized_reader::SerializedFileReader;
    use parquet::record::Field;
    use parquet::schema::types::TypePtr;

    fn protocol() -> CheckpointProtocol {
        CheckpointProtocol {
            min_reader_version: 1,
            min_writer_version: 2,
            writer_features: None,
        }
    }

    /// Writer version 7 with writer features only (what pqdm writes, so that other engines
    /// refuse to write to its tables) round-trips; readers need no feature.
    #[test]
    fn writer_features_round_trip() {
        let mut c = Checkpoint {
            protocol: CheckpointProtocol {
                min_reader_version: 1,
                min_writer_version: 7,
                writer_features: Some(vec!["pqdmManaged".into()]),
            },
            metadata: metadata(&[]),
            adds: vec![],
            removes: vec![],
            txns: vec![],
        };
        let back = read_checkpoint(&write_checkpoint(&c).unwrap()).unwrap();
        assert_eq!(back, c);
        c.protocol.writer_features = None;
        assert!(write_checkpoint(&c).is_err());
    }

    fn metadata(partition_columns: &[&str]) -> CheckpointMetadata {
        CheckpointMetadata {
            id: "5d650ad7-a5bc-41ef-942d-8cb1911e929f".into(),
            name: Some("trades".into()),
            description: None,
            schema_string: r#"{"type":"struct","fields":[{"name":"px","type":"double","nullable":true,"metadata":{}},{"name":"venue","type":"string","nullable":true,"metadata":{}}]}"#.into(),
            partition_columns: partition_columns.iter().map(|s| s.to_string()).collect(),
            configuration: vec![
                ("delta.appendOnly".into(), "false".into()),
                ("delta.logRetentionDuration".into(), "interval 30 days".into()),
            ],
            created_time: Some(1_700_000_000_000),
        }
    }

    fn add(
        path: &str,
        partition_values: &[(&str, Option<&str>)],
        stats: Option<&str>,
    ) -> CheckpointAdd {
        CheckpointAdd {
            path: path.into(),
            partition_values: PartitionValues::new(partition_values.iter().copied()),
            size: 1234,
            modification_time: 1_700_000_000_123,
            data_change: true,
            tags: vec![],
            stats: stats.map(str::to_string),
        }
    }

    fn full() -> Checkpoint {
        Checkpoint {
            protocol: protocol(),
            metadata: metadata(&["venue"]),
            adds: vec![
                add(
                    "venue=XNAS/part-0.parquet",
                    &[("venue", Some("XNAS"))],
                    Some(r#"{"numRecords":3}"#),
                ),
                // null partition value
                add(
                    "venue=__HIVE_DEFAULT_PARTITION__/part-1.parquet",
                    &[("venue", None)],
                    None,
                ),
                // empty partition map
                add("part-2.parquet", &[], Some(r#"{"numRecords":0}"#)),
                // `/ % = [ space é` in a partition value (and the escaped path)
                add(
                    "venue=a%2Fb%25c%3Dd%5Be%20%C3%A9/part-3.parquet",
                    &[("venue", Some("a/b%c=d[e é")), ("day", Some(""))],
                    None,
                ),
            ],
            removes: vec![
                CheckpointRemove {
                    path: "venue=XNAS/part-old.parquet".into(),
                    deletion_timestamp: Some(1_700_000_000_999),
                    data_change: true,
                    extended_file_metadata: Some(true),
                    partition_values: PartitionValues::new([("venue", Some("XNAS"))]),
                    size: Some(99),
                },
                CheckpointRemove {
                    path: "part-older.parquet".into(),
                    deletion_timestamp: None,
                    data_change: false,
                    extended_file_metadata: None,
                    partition_values: PartitionValues::new([("venue", None::<&str>)]),
                    size: None,
                },
            ],
            txns: vec![
                CheckpointTxn {
                    app_id: "pqdm-ingest".into(),
                    version: 7,
                    last_updated: Some(1_700_000_000_500),
                },
                CheckpointTxn {
                    app_id: "other".into(),
                    version: 0,
                    last_updated: None,
                },
            ],
        }
    }

    fn round_trip(c: &Checkpoint) {
        let bytes = write_checkpoint(c).unwrap();
        assert_eq!(&bytes[..4], b"PAR1");
        let back = read_checkpoint(&bytes).unwrap();
        assert_eq!(&back, c);
    }

    #[test]
    fn round_trip_all_actions_and_awkward_partition_values() {
        round_trip(&full());
    }

    #[test]
    fn round_trip_zero_adds() {
        let mut c = full();
        c.adds.clear();
        round_trip(&c);
        c.removes.clear();
        c.txns.clear();
        c.metadata = metadata(&[]);
        c.metadata.configuration.clear();
        c.metadata.name = None;
        c.metadata.created_time = None;
        round_trip(&c);
        assert_eq!(c.num_actions(), 2);
    }

    #[test]
    fn round_trip_many_adds() {
        // 20,000 adds: more rows in one row group than the reader decodes at a time, so maps,
        // tags and nulls fall on both sides of its batch boundaries.
        let mut c = full();
        c.metadata = metadata(&["date", "venue"]);
        c.adds = (0..20_000)
            .map(|i| {
                let venue = match i % 4 {
                    0 => None,
                    1 => Some("X NAS"),
                    2 => Some("100%"),
                    _ => Some("é/="),
                };
                let date = format!("2024-01-{:02}", i % 28 + 1);
                let mut a = add(
                    &format!("date={date}/part-{i:05}.parquet"),
                    &[("date", Some(&date)), ("venue", venue)],
                    None,
                );
                a.size = i;
                a.stats = (i % 3 == 0).then(|| format!(r#"{{"numRecords":{i}}}"#));
                a.data_change = i % 2 == 0;
                if i % 5 == 0 {
                    a.tags = vec![
                        ("pqdm.addedIn".into(), Some(i.to_string())),
                        ("n".into(), None),
                    ];
                }
                a
            })
            .collect();
        let bytes = write_checkpoint(&c).unwrap();
        // Two row groups (16,384 actions, then the rest), each read in batches of 8,192 rows,
        // side by side: the actions come back whole and in order.
        assert_eq!(read_from_bytes(&bytes).num_row_groups(), 2);
        let back = read_checkpoint(&bytes).unwrap();
        assert_eq!(back.adds.len(), 20_000);
        assert_eq!(back, c);
    }

    /// Every row holds exactly one action, in the order protocol, metaData, txn, add, remove.
    /// Other writers split a large checkpoint into row groups (and the action rows of one kind
    /// across them): each column is read across all of them, in order.
    #[test]
    fn a_checkpoint_of_several_row_groups_reads_whole() {
        let mut c = full();
        c.adds = (0..7)
            .map(|i| {
                let day = i.to_string();
                let mut a = add(
                    &format!("day={i}/f{i}.parquet"),
                    &[("day", Some(day.as_str())), ("venue", None)],
                    (i % 2 == 0).then_some(r#"{"numRecords":1}"#),
                );
                a.tags = if i == 3 {
                    vec![]
                } else {
                    vec![("k".into(), Some(day.clone())), ("n".into(), None)]
                };
                a
            })
            .collect();
        let mut rows = vec![Action::Protocol(&c.protocol), Action::MetaData(&c.metadata)];
        rows.extend(c.txns.iter().map(Action::Txn));
        rows.extend(c.adds.iter().map(Action::Add));
        rows.extend(c.removes.iter().map(Action::Remove));
        let mut groups = Vec::new();
        let mut rest = rows;
        for size in [1, 4, 2] {
            let tail = rest.split_off(size.min(rest.len()));
            groups.push(rest);
            rest = tail;
        }
        groups.push(rest);
        let bytes = encode_groups(
            CHECKPOINT_SCHEMA,
            groups,
            Compression::SNAPPY,
            checkpoint_columns,
        )
        .unwrap();
        assert_eq!(read_from_bytes(&bytes).num_row_groups(), 4);
        assert_eq!(read_checkpoint(&bytes).unwrap(), c);
    }

    /// Checkpoints compressed with gzip (Spark's `spark.sql.parquet.compression.codec=gzip`)
    /// read as snappy ones do (zstd, lz4 and brotli are refused naming the codec: the `parquet`
    /// crate's codecs for them are not built, and its writer cannot make such a file here).
    #[test]
    fn gzip_checkpoints_read() {
        let c = full();
        let rows = || {
            let mut rows = vec![Action::Protocol(&c.protocol), Action::MetaData(&c.metadata)];
            rows.extend(c.txns.iter().map(Action::Txn));
            rows.extend(c.adds.iter().map(Action::Add));
            rows.extend(c.removes.iter().map(Action::Remove));
            rows
        };
        let gzip = Compression::GZIP(Default::default());
        let bytes = encode_groups(CHECKPOINT_SCHEMA, vec![rows()], gzip, checkpoint_columns);
        assert_eq!(read_checkpoint(&bytes.unwrap()).unwrap(), c);
    }

    #[test]
    fn one_action_per_row() {
        let c = full();
        let bytes = write_checkpoint(&c).unwrap();
        let reader = read_from_bytes(&bytes);
        let kinds: Vec<String> = reader
            .get_row_iter(None)
            .unwrap()
            .map(|row| {
                let row = row.unwrap();
                let present: Vec<&String> = row
                    .get_column_iter()
                    .filter(|(_, f)| !matches!(f, Field::Null))
                    .map(|(n, _)| n)
                    .collect();
                assert_eq!(present.len(), 1, "{row:?}");
                present[0].clone()
            })
            .collect();
        let mut expected = vec!["protocol", "metaData"];
        expected.extend(["txn"; 2]);
        expected.extend(["add"; 4]);
        expected.extend(["remove"; 2]);
        assert_eq!(kinds, expected);
        assert_eq!(
            reader.metadata().file_metadata().num_rows() as usize,
            c.num_actions()
        );
        assert_eq!(
            last_checkpoint_json(10, c.num_actions()),
            r#"{"version":10,"size":10}"#
        );
        let v: serde_json::Value = serde_json::from_str(&last_checkpoint_json(3, 7)).unwrap();
        assert_eq!(v, serde_json::json!({"version": 3, "size": 7}));
    }

    fn read_from_bytes(bytes: &[u8]) -> Box<dyn FileReader> {
        fn open<B: ChunkReader + From<Vec<u8>> + 'static>(
            _: fn(&mut ByteArray, B),
            bytes: &[u8],
        ) -> Box<dyn FileReader> {
            Box::new(SerializedFileReader::new(B::from(bytes.to_vec())).unwrap())
        }
        open(ByteArray::set_data, bytes)
    }

    /// The written schema is the protocol's: column paths, physical and logical types, MAP / LIST
    /// layouts; no `*_parsed` columns; Snappy-compressed.
    #[test]
    fn schema_is_the_delta_checkpoint_schema() {
        let bytes = write_checkpoint(&full()).unwrap();
        let reader = read_from_bytes(&bytes);
        let meta = reader.metadata();
        let schema = meta.file_metadata().schema_descr();
        let leaves: Vec<(String, PhysicalType, Option<LogicalType>)> = schema
            .columns()
            .iter()
            .map(|c| {
                (
                    c.path().string(),
                    c.physical_type(),
                    c.logical_type_ref().cloned(),
                )
            })
            .collect();
        let s = |p: &str| {
            (
                p.to_string(),
                PhysicalType::BYTE_ARRAY,
                Some(LogicalType::String),
            )
        };
        let n = |p: &str, t| (p.to_string(), t, None);
        use PhysicalType::{BOOLEAN, INT32, INT64};
        let expected = vec![
            s("txn.appId"),
            n("txn.version", INT64),
            n("txn.lastUpdated", INT64),
            s("add.path"),
            s("add.partitionValues.key_value.key"),
            s("add.partitionValues.key_value.value"),
            n("add.size", INT64),
            n("add.modificationTime", INT64),
            n("add.dataChange", BOOLEAN),
            s("add.tags.key_value.key"),
            s("add.tags.key_value.value"),
            s("add.stats"),
            s("remove.path"),
            n("remove.deletionTimestamp", INT64),
            n("remove.dataChange", BOOLEAN),
            n("remove.extendedFileMetadata", BOOLEAN),
            s("remove.partitionValues.key_value.key"),
            s("remove.partitionValues.key_value.value"),
            n("remove.size", INT64),
            s("metaData.id"),
            s("metaData.name"),
            s("metaData.description"),
            s("metaData.format.provider"),
            s("metaData.format.options.key_value.key"),
            s("metaData.format.options.key_value.value"),
            s("metaData.schemaString"),
            s("metaData.partitionColumns.list.element"),
            s("metaData.configuration.key_value.key"),
            s("metaData.configuration.key_value.value"),
            n("metaData.createdTime", INT64),
            n("protocol.minReaderVersion", INT32),
            n("protocol.minWriterVersion", INT32),
            s("protocol.writerFeatures.list.element"),
        ];
        assert_eq!(leaves, expected);
        for c in schema.columns() {
            if c.physical_type() == PhysicalType::BYTE_ARRAY {
                assert_eq!(c.converted_type(), ConvertedType::UTF8, "{}", c.path());
            }
            // Map keys are the only required leaves.
            let required = c.self_type().get_basic_info().repetition() == Repetition::REQUIRED;
            assert_eq!(required, c.name() == "key", "{}", c.path());
        }
        // The MAP / LIST groups: annotated, with one repeated `key_value` / `list` child.
        let root = schema.root_schema();
        let group = |path: &[&str]| -> TypePtr {
            let mut t = root
                .get_fields()
                .iter()
                .find(|f| f.name() == path[0])
                .unwrap()
                .clone();
            for p in &path[1..] {
                t = t
                    .get_fields()
                    .iter()
                    .find(|f| f.name() == *p)
                    .unwrap()
                    .clone();
            }
            t
        };
        for map in [
            &["add", "partitionValues"][..],
            &["add", "tags"],
            &["remove", "partitionValues"],
            &["metaData", "configuration"],
            &["metaData", "format", "options"],
        ] {
            let t = group(map);
            let info = t.get_basic_info();
            assert_eq!(info.converted_type(), ConvertedType::MAP, "{map:?}");
            assert_eq!(info.logical_type_ref(), Some(&LogicalType::Map), "{map:?}");
            assert_eq!(info.repetition(), Repetition::OPTIONAL, "{map:?}");
            let kv = t.get_fields();
            assert_eq!(kv.len(), 1);
            assert_eq!(kv[0].name(), "key_value");
            assert_eq!(kv[0].get_basic_info().repetition(), Repetition::REPEATED);
            let names: Vec<&str> = kv[0].get_fields().iter().map(|f| f.name()).collect();
            assert_eq!(names, ["key", "value"]);
        }
        let list = group(&["metaData", "partitionColumns"]);
        assert_eq!(list.get_basic_info().converted_type(), ConvertedType::LIST);
        assert_eq!(
            list.get_basic_info().logical_type_ref(),
            Some(&LogicalType::List)
        );
        assert_eq!(list.get_fields()[0].name(), "list");
        assert_eq!(
            list.get_fields()[0].get_basic_info().repetition(),
            Repetition::REPEATED
        );
        assert!(
            schema
                .columns()
                .iter()
                .all(|c| !c.path().string().contains("_parsed"))
        );
        let rg = meta.row_group(0);
        assert!(
            rg.columns()
                .iter()
                .all(|c| c.compression() == Compression::SNAPPY)
        );
    }

    /// Definition / repetition levels of the nested columns, read back column by column.
    #[test]
    fn levels_of_maps_and_lists() {
        use parquet::column::reader::ColumnReader;
        let mut c = full();
        c.adds.truncate(3); // one value, one null value, one empty map
        c.removes.clear();
        c.txns.clear();
        let bytes = write_checkpoint(&c).unwrap();
        let reader = read_from_bytes(&bytes);
        let rg = reader.get_row_group(0).unwrap();
        let levels = |path: &str| -> (Vec<i16>, Vec<i16>) {
            let i = rg
                .metadata()
                .columns()
                .iter()
                .position(|m| m.column_path().string() == path)
                .unwrap();
            let ColumnReader::ByteArrayColumnReader(mut r) = rg.get_column_reader(i).unwrap()
            else {
                panic!()
            };
            let (mut defs, mut reps, mut vals) = (Vec::new(), Vec::new(), Vec::new());
            r.read_records(100, Some(&mut defs), Some(&mut reps), &mut vals)
                .unwrap();
            (defs, reps)
        };
        // rows: protocol, metaData, add(value), add(null value), add(empty map)
        assert_eq!(
            levels("add.partitionValues.key_value.key"),
            (vec![0, 0, 3, 3, 2], vec![0, 0, 0, 0, 0])
        );
        assert_eq!(
            levels("add.partitionValues.key_value.value"),
            (vec![0, 0, 4, 3, 2], vec![0, 0, 0, 0, 0])
        );
        assert_eq!(
            levels("add.tags.key_value.key"),
            (vec![0, 0, 1, 1, 1], vec![0, 0, 0, 0, 0])
        );
        // metaData has two configuration entries: repetition level 1 on the second.
        assert_eq!(
            levels("metaData.configuration.key_value.value"),
            (vec![0, 4, 4, 0, 0, 0], vec![0, 0, 1, 0, 0, 0])
        );
        assert_eq!(
            levels("metaData.format.options.key_value.key"),
            (vec![0, 3, 0, 0, 0], vec![0, 0, 0, 0, 0])
        );
        assert_eq!(
            levels("metaData.partitionColumns.list.element"),
            (vec![0, 4, 0, 0, 0], vec![0, 0, 0, 0, 0])
        );
        assert_eq!(levels("add.stats"), (vec![0, 0, 2, 1, 2], vec![])); // not repeated: no rep levels
    }

    /// A checkpoint laid out like delta-rs / delta-kernel write them: other column order, a
    /// `required` options map, `readerFeatures`/`writerFeatures`, `stats_parsed`,
    /// `partitionValues_parsed`, `deletionVector`, plus a Spark `cdc` column; all read.
    #[test]
    fn reads_foreign_layout() {
        const FOREIGN: &str = "
        message arrow_schema {
          optional group metaData {
            optional binary id (STRING);
            optional binary name (STRING);
            optional binary description (STRING);
            optional binary schemaString (STRING);
            optional int64 createdTime;
            optional group partitionColumns (LIST) { repeated group list { optional binary element (STRING); } }
            optional group configuration (MAP) { repeated group key_value { required binary key (STRING); optional binary value (STRING); } }
            optional group format {
              optional binary provider (STRING);
              required group options (MAP) { repeated group key_value { required binary key (STRING); optional binary value (STRING); } }
            }
          }
          optional group protocol {
            optional int32 minReaderVersion;
            optional int32 minWriterVersion;
            optional group writerFeatures (LIST) { repeated group list { optional binary element (STRING); } }
            optional group readerFeatures (LIST) { repeated group list { optional binary element (STRING); } }
          }
          optional group txn { optional binary appId (STRING); optional int64 version; }
          optional group add {
            optional binary path (STRING);
            optional int64 size;
            optional int64 modificationTime;
            optional boolean dataChange;
            optional binary stats (STRING);
            optional group partitionValues (MAP) { repeated group key_value { required binary key (STRING); optional binary value (STRING); } }
            optional group deletionVector { required binary storageType (STRING); required int32 sizeInBytes; }
            optional group stats_parsed { optional int64 numRecords; optional group minValues { optional int32 id; } }
            optional group partitionValues_parsed { optional int32 date (DATE); }
          }
          optional group remove {
            optional binary path (STRING);
            optional int64 deletionTimestamp;
            optional boolean dataChange;
          }
          optional group cdc { optional binary path (STRING); }
        }";
        let c = Checkpoint {
            protocol: protocol(),
            metadata: metadata(&["date"]),
            adds: vec![
                add(
                    "date=2024-01-01/a.parquet",
                    &[("date", Some("2024-01-01"))],
                    Some("{}"),
                ),
                add("b.parquet", &[("date", None)], None),
            ],
            removes: vec![CheckpointRemove {
                path: "old.parquet".into(),
                deletion_timestamp: Some(5),
                data_change: true,
                extended_file_metadata: None,
                partition_values: PartitionValues::default(),
                size: None,
            }],
            txns: vec![CheckpointTxn {
                app_id: "app".into(),
                version: 3,
                last_updated: None,
            }],
        };
        let mut rows = vec![
            Action::MetaData(&c.metadata),
            Action::Protocol(&c.protocol),
            Action::Txn(&c.txns[0]),
        ];
        rows.extend(c.adds.iter().map(Action::Add));
        rows.extend(c.removes.iter().map(Action::Remove));
        let bytes = encode(FOREIGN, rows, |w| {
            w.string("metaData.id", on_meta(|m| Cell::Value(&m.id)))?;
            w.string("metaData.name", on_meta(|m| opt(m.name.as_ref())))?;
            w.string(
                "metaData.description",
                on_meta(|m| opt(m.description.as_ref())),
            )?;
            w.string(
                "metaData.schemaString",
                on_meta(|m| Cell::Value(&m.schema_string)),
            )?;
            w.long("metaData.createdTime", on_meta(|m| opt(m.created_time)))?;
            w.string(
                "metaData.partitionColumns.list.element",
                on_meta(|m| {
                    Cell::Items(
                        m.partition_columns
                            .iter()
                            .map(|p| Some(p.as_str()))
                            .collect(),
                    )
                }),
            )?;
            w.string_map(
                "metaData.configuration",
                on_meta(|m| {
                    entries(
                        m.configuration
                            .iter()
                            .map(|(k, v)| (k.as_str(), Some(v.as_str()))),
                    )
                }),
            )?;
            w.string(
                "metaData.format.provider",
                on_meta(|_| Cell::Value("parquet")),
            )?;
            w.string_map(
                "metaData.format.options",
                on_meta(|_| entries(std::iter::empty())),
            )?;
            w.int(
                "protocol.minReaderVersion",
                on_protocol(|p| Cell::Value(p.min_reader_version)),
            )?;
            w.int(
                "protocol.minWriterVersion",
                on_protocol(|p| Cell::Value(p.min_writer_version)),
            )?;
            w.string(
                "protocol.writerFeatures.list.element",
                on_protocol(|_| Cell::<&str>::Null(1)),
            )?;
            w.string(
                "protocol.readerFeatures.list.element",
                on_protocol(|_| Cell::<&str>::Null(1)),
            )?;
            w.string("txn.appId", on_txn(|t| Cell::Value(&t.app_id)))?;
            w.long("txn.version", on_txn(|t| Cell::Value(t.version)))?;
            w.string("add.path", on_add(|a| Cell::Value(&a.path)))?;
            w.long("add.size", on_add(|a| Cell::Value(a.size)))?;
            w.long(
                "add.modificationTime",
                on_add(|a| Cell::Value(a.modification_time)),
            )?;
            w.boolean("add.dataChange", on_add(|a| Cell::Value(a.data_change)))?;
            w.string("add.stats", on_add(|a| opt(a.stats.as_ref())))?;
            w.string_map(
                "add.partitionValues",
                on_add(|a| partition_entries(&a.partition_values)),
            )?;
            w.string(
                "add.deletionVector.storageType",
                on_add(|_| Cell::<&str>::Null(1)),
            )?;
            w.int("add.deletionVector.sizeInBytes", on_add(|_| Cell::Null(1)))?;
            w.long("add.stats_parsed.numRecords", on_add(|_| Cell::Value(42)))?;
            w.int("add.stats_parsed.minValues.id", on_add(|_| Cell::Value(1)))?;
            w.int(
                "add.partitionValues_parsed.date",
                on_add(|_| Cell::Value(19723)),
            )?;
            w.string("remove.path", on_remove(|r| Cell::Value(&r.path)))?;
            w.long(
                "remove.deletionTimestamp",
                on_remove(|r| opt(r.deletion_timestamp)),
            )?;
            w.boolean(
                "remove.dataChange",
                on_remove(|r| Cell::Value(r.data_change)),
            )?;
            w.string("cdc.path", |_| Cell::<&str>::Null(0))
        })
        .unwrap();
        assert_eq!(read_checkpoint(&bytes).unwrap(), c);
    }

    /// Found by a red team: pages damaged so that the parquet crate's decoders panic (a
    /// dictionary page cut short; a dictionary-encoded page with no dictionary) made `pqdm info`
    /// exit 101. Both files are the red team's.
    #[test]
    fn a_damaged_page_is_an_error_not_a_panic() {
        for (bytes, says) in [
            (
                &include_bytes!(
                    "../../tests/data/delta/damaged-dictionary-page.checkpoint.parquet"
                )[..],
                "out of range",
            ),
            (
                &include_bytes!(
                    "../../tests/data/delta/missing-dictionary-page.checkpoint.parquet"
                )[..],
                "dict",
            ),
        ] {
            let e = read_checkpoint(bytes).unwrap_err();
            assert!(
                e.contains("the checkpoint's Parquet data is damaged"),
                "{e}"
            );
            assert!(e.contains(says), "{e}");
        }
    }

    /// Found by a red team: a `partitionValues` stored as a list of structs (or a struct) was
    /// read as an empty map, every file then in the null partition; a deletion vector inside a
    /// checkpoint was ignored, while the same `add` in a JSON entry is refused.
    #[test]
    fn fields_of_another_shape_and_deletion_vectors_are_refused() {
        let c = full();
        let rows = || {
            vec![
                Action::Protocol(&c.protocol),
                Action::MetaData(&c.metadata),
                Action::Add(&c.adds[0]),
            ]
        };
        let head = "message m {
          optional group protocol { optional int32 minReaderVersion; optional int32 minWriterVersion; }
          optional group metaData { optional binary id (STRING); optional binary schemaString (STRING); }";
        let common = |w: &mut Columns<'_, '_>| -> Result<(), String> {
            w.int(
                "protocol.minReaderVersion",
                on_protocol(|p| Cell::Value(p.min_reader_version)),
            )?;
            w.int(
                "protocol.minWriterVersion",
                on_protocol(|p| Cell::Value(p.min_writer_version)),
            )?;
            w.string("metaData.id", on_meta(|m| Cell::Value(&m.id)))?;
            w.string(
                "metaData.schemaString",
                on_meta(|m| Cell::Value(&m.schema_string)),
            )?;
            w.string("add.path", on_add(|a| Cell::Value(&a.path)))?;
            w.long("add.size", on_add(|a| Cell::Value(a.size)))?;
            w.long(
                "add.modificationTime",
                on_add(|a| Cell::Value(a.modification_time)),
            )?;
            w.boolean("add.dataChange", on_add(|a| Cell::Value(a.data_change)))
        };
        let add_head = "optional group add { optional binary path (STRING); optional int64 size; \
                        optional int64 modificationTime; optional boolean dataChange;";
        // partitionValues as a list of {k, v} structs.
        let schema = format!(
            "{head} {add_head} optional group partitionValues (LIST) {{ repeated group list {{ \
             optional group element {{ optional binary k (STRING); optional binary v (STRING); }} }} }} }} }}"
        );
        let bytes = encode(&schema, rows(), |w| {
            common(w)?;
            w.string(
                "add.partitionValues.list.element.k",
                on_add(|_| Cell::Items(vec![Some("venue")])),
            )?;
            w.string(
                "add.partitionValues.list.element.v",
                on_add(|_| Cell::Items(vec![Some("XNAS")])),
            )
        })
        .unwrap();
        let e = read_checkpoint(&bytes).unwrap_err();
        assert!(
            e.contains("checkpoint column add.partitionValues is not a map of strings"),
            "{e}"
        );
        // A deletion vector on an add.
        let schema = format!(
            "{head} {add_head} optional group deletionVector {{ optional binary storageType (STRING); \
             optional int32 sizeInBytes; }} }} }}"
        );
        let with_dv = |dv: bool| {
            encode(&schema, rows(), |w| {
                common(w)?;
                w.string(
                    "add.deletionVector.storageType",
                    on_add(move |_| if dv { Cell::Value("u") } else { Cell::Null(1) }),
                )?;
                w.int(
                    "add.deletionVector.sizeInBytes",
                    on_add(move |_| if dv { Cell::Value(3) } else { Cell::Null(1) }),
                )
            })
            .unwrap()
        };
        let e = read_checkpoint(&with_dv(true)).unwrap_err();
        assert!(
            e.contains("has a deletion vector, which pqdm does not read"),
            "{e}"
        );
        assert_eq!(read_checkpoint(&with_dv(false)).unwrap().adds.len(), 1);
        // Refused by a partial read that does not want the file too (red team: skipped with
        // the row, the deletion vector went unseen).
        let nothing = |_: &str, _: &PartitionValues| false;
        for keep in [
            super::super::Keep::by_path(&nothing),
            super::super::Keep::by_values(&nothing),
        ] {
            let e = read_checkpoint_where(&with_dv(true), Some(&keep)).unwrap_err();
            assert!(
                e.contains("has a deletion vector, which pqdm does not read"),
                "{e}"
            );
            let (read, skipped) = read_checkpoint_where(&with_dv(false), Some(&keep)).unwrap();
            assert_eq!((read.adds.len(), skipped), (0, 1));
        }
        // Row groups are read side by side; of several failing ones, the first one's error is
        // returned, every time.
        let mut second = c.adds[0].clone();
        second.path = "second.parquet".into();
        let mut groups = vec![rows()];
        groups.extend((0..6).map(|_| vec![Action::Add(&second)]));
        let bytes = encode_groups(&schema, groups, Compression::SNAPPY, |w| {
            common(w)?;
            w.string(
                "add.deletionVector.storageType",
                on_add(|_| Cell::Value("u")),
            )?;
            w.int("add.deletionVector.sizeInBytes", on_add(|_| Cell::Value(3)))
        })
        .unwrap();
        for _ in 0..20 {
            let e = read_checkpoint(&bytes).unwrap_err();
            assert!(
                e.contains(&format!("the add of {} has", c.adds[0].path)),
                "{e}"
            );
        }
    }

    #[test]
    fn errors_name_what_failed() {
        let c = full();
        // Not Parquet.
        let e = read_checkpoint(b"not a parquet file").unwrap_err();
        assert!(e.contains("Parquet footer"), "{e}");
        // Two protocol actions / none / two metaData.
        let two_protocols = vec![
            Action::Protocol(&c.protocol),
            Action::Protocol(&c.protocol),
            Action::MetaData(&c.metadata),
        ];
        let e =
            read_checkpoint(&encode(CHECKPOINT_SCHEMA, two_protocols, checkpoint_columns).unwrap())
                .unwrap_err();
        assert!(e.contains("more than one protocol"), "{e}");
        let two_meta = vec![
            Action::Protocol(&c.protocol),
            Action::MetaData(&c.metadata),
            Action::MetaData(&c.metadata),
        ];
        let e = read_checkpoint(&encode(CHECKPOINT_SCHEMA, two_meta, checkpoint_columns).unwrap())
            .unwrap_err();
        assert!(e.contains("more than one metaData"), "{e}");
        let no_meta = vec![Action::Protocol(&c.protocol), Action::Add(&c.adds[0])];
        let e = read_checkpoint(&encode(CHECKPOINT_SCHEMA, no_meta, checkpoint_columns).unwrap())
            .unwrap_err();
        assert!(e.contains("no metaData"), "{e}");
        // Table features are refused on both sides.
        let mut v3 = c.clone();
        v3.protocol = CheckpointProtocol {
            min_reader_version: 3,
            min_writer_version: 7,
            writer_features: Some(vec![]),
        };
        let e = write_checkpoint(&v3).unwrap_err();
        assert!(e.contains("minReaderVersion 3"), "{e}");
        let p = CheckpointProtocol {
            min_reader_version: 1,
            min_writer_version: 8,
            writer_features: None,
        };
        let rows = vec![Action::Protocol(&p), Action::MetaData(&c.metadata)];
        let e = read_checkpoint(&encode(CHECKPOINT_SCHEMA, rows, checkpoint_columns).unwrap())
            .unwrap_err();
        assert!(e.contains("minWriterVersion 8"), "{e}");
        // A null required field.
        let bytes = encode(
            CHECKPOINT_SCHEMA,
            vec![
                Action::Protocol(&c.protocol),
                Action::MetaData(&c.metadata),
                Action::Add(&c.adds[0]),
            ],
            |w| checkpoint_columns(w),
        )
        .unwrap();
        assert!(read_checkpoint(&bytes).is_ok());
        let bytes = encode("message m { optional group add { optional binary path (STRING); optional int64 size; } }", vec![Action::Add(&c.adds[0])], |w| {
            w.string("add.path", on_add(|a| Cell::Value(&a.path)))?;
            w.long("add.size", on_add(|_| Cell::Null(1)))
        })
        .unwrap();
        let e = read_checkpoint(&bytes).unwrap_err();
        assert!(e.contains("add.size is null"), "{e}");
        // Writing columns out of schema order is caught.
        let e = encode(CHECKPOINT_SCHEMA, vec![], |w| {
            w.string("add.path", |_| Cell::<&str>::Null(0))
        })
        .unwrap_err();
        assert!(e.contains("the schema's next column is txn.appId"), "{e}");
    }
}
