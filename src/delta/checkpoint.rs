//! Delta checkpoints in Parquet (placeholder types until the writer lands).

/// `protocol` row.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckpointProtocol {
    pub min_reader_version: i32,
    pub min_writer_version: i32,
}
/// `metaData` row.
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
    pub partition_values: Vec<(String, Option<String>)>,
    pub size: i64,
    pub modification_time: i64,
    pub data_change: bool,
    pub stats: Option<String>,
}
/// `remove` row.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckpointRemove {
    pub path: String,
    pub deletion_timestamp: Option<i64>,
    pub data_change: bool,
    pub extended_file_metadata: Option<bool>,
    pub partition_values: Vec<(String, Option<String>)>,
    pub size: Option<i64>,
}
/// `txn` row.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckpointTxn {
    pub app_id: String,
    pub version: i64,
    pub last_updated: Option<i64>,
}
/// A checkpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    pub protocol: CheckpointProtocol,
    pub metadata: CheckpointMetadata,
    pub adds: Vec<CheckpointAdd>,
    pub removes: Vec<CheckpointRemove>,
    pub txns: Vec<CheckpointTxn>,
}
/// TEMP
pub fn write_checkpoint(_c: &Checkpoint) -> Result<Vec<u8>, String> {
    Err("checkpoints are not written yet".into())
}
/// TEMP
pub fn last_checkpoint_json(version: i64, actions: usize) -> String {
    format!("{{\"version\":{version},\"size\":{actions}}}")
}
