//! The Delta Lake log actions pqdm writes, as serde types written from the protocol
//! (`PROTOCOL.md` of delta-io/delta: "Actions"): one JSON object per line of
//! `_delta_log/<version:020>.json`, each holding exactly one action.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The reader version pqdm's tables need: plain Parquet files, no reader feature.
pub const MIN_READER_VERSION: i32 = 1;
/// The writer version of pqdm's tables: 7, table features, for one writer feature of its own,
/// [`PQDM_WRITER_FEATURE`], which other engines do not know and so refuse to write, vacuum or
/// optimize the table (delta-rs: "Unsupported table features required"), while every reader
/// still reads it (no reader feature; reader version 1). Another engine's commit would part
/// the log from pqdm's versions, and its VACUUM would delete the hive tree (the log names the
/// kept copies).
pub const MIN_WRITER_VERSION: i32 = 7;

/// The writer feature that keeps other engines' writers away (see [`MIN_WRITER_VERSION`]).
pub const PQDM_WRITER_FEATURE: &str = "pqdmManaged";

/// One line of a log entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    /// What made the version (free-form; not part of the table's state).
    CommitInfo(serde_json::Value),
    /// The reader and writer versions a client needs.
    Protocol(Protocol),
    /// The table's schema, partitioning and configuration.
    MetaData(MetaData),
    /// A data file the version adds.
    Add(Add),
    /// A data file the version removes.
    Remove(Remove),
}

/// `protocol`: the versions a client must support.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Protocol {
    /// The reader version needed.
    pub min_reader_version: i32,
    /// The writer version needed.
    pub min_writer_version: i32,
    /// The writer features a writer must support (writer version 7).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub writer_features: Option<Vec<String>>,
}

impl Default for Protocol {
    fn default() -> Self {
        Protocol {
            min_reader_version: MIN_READER_VERSION,
            min_writer_version: MIN_WRITER_VERSION,
            writer_features: Some(vec![PQDM_WRITER_FEATURE.into()]),
        }
    }
}

/// `metaData.format`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Format {
    /// Always `parquet`.
    pub provider: String,
    /// No options.
    pub options: BTreeMap<String, String>,
}

/// `metaData`: the table's schema, partitioning and configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetaData {
    /// The table's id (a UUID), the same for every version.
    pub id: String,
    /// The dataset kind's name.
    pub name: Option<String>,
    /// Says that pqdm manages the table.
    pub description: Option<String>,
    /// The file format.
    pub format: Format,
    /// The schema as Delta's JSON (see [`super::schema_string`]).
    pub schema_string: String,
    /// The partition columns, in folder order.
    pub partition_columns: Vec<String>,
    /// pqdm's settings (`pqdm.*`) for other engines to see.
    pub configuration: BTreeMap<String, String>,
    /// When the table was created (ms since the epoch).
    pub created_time: Option<i64>,
}

/// `add`: a data file of the table from this version on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Add {
    /// The file's path relative to the table's root, URI-encoded ([`super::encode_path`]).
    pub path: String,
    /// The file's partition values, serialised as the protocol says (`None`: null).
    pub partition_values: crate::manifest::PartitionValues,
    /// Bytes.
    pub size: i64,
    /// When the file was committed (ms since the epoch).
    pub modification_time: i64,
    /// `false` when the version only rearranges rows (compaction).
    pub data_change: bool,
    /// Tags: pqdm's own record of the file ([`super::record::file_tags`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, Option<String>>,
    /// The file's statistics as a JSON string ([`super::Stats`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<String>,
}

/// `remove`: a data file the table no longer holds from this version on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Remove {
    /// The path its `add` had.
    pub path: String,
    /// When it was removed (ms since the epoch).
    pub deletion_timestamp: Option<i64>,
    /// `false` when the version only rearranges rows (compaction).
    pub data_change: bool,
    /// Partition values and size are given.
    pub extended_file_metadata: bool,
    /// The file's partition values.
    pub partition_values: crate::manifest::PartitionValues,
    /// Bytes.
    pub size: i64,
}

/// An `add`'s statistics: rows, and min/max/null counts of the columns pqdm knows them for (the
/// timestamp and the integer key columns, from the files' footers).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Rows in the file.
    pub num_records: u64,
    /// Smallest value per column.
    #[serde(default)]
    pub min_values: BTreeMap<String, i64>,
    /// Largest value per column.
    #[serde(default)]
    pub max_values: BTreeMap<String, i64>,
    /// Nulls per column (only where known; absent when none is).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub null_count: BTreeMap<String, u64>,
}
