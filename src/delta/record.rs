//! pqdm's own record of each version, carried by the Delta log so that the log alone holds
//! every version a pqdm manifest does: the version's header (everything but the file list:
//! kind, schema, settings, operation, summary, sources index) in the entry's
//! `commitInfo.pqdm.manifest`, and each file's checksum and the version that added it in its
//! `add.tags` (`pqdm.checksum`, `pqdm.addedIn`); rows, bytes, time range, key ranges and null
//! timestamps are the `add`'s size and statistics. A checkpoint carries the header of its
//! version in its `metaData.configuration` ([`CHECKPOINT_KEY`]; checkpoints hold no
//! `commitInfo`), so that one written over a damaged or missing entry (`verify --repair`, an
//! upgrade) is whole on its own. [`manifest`] rebuilds a version's manifest from a [`Snapshot`]
//! of the log (a checkpoint and the entries after it).

use std::collections::BTreeMap;

use super::replay::Snapshot;
use crate::layout::{FILES_DIR, KEPT_SUFFIX, META_DIR};
use crate::manifest::{FileEntry, Manifest};

/// The `metaData.configuration` key under which a checkpoint carries its version's header.
pub const CHECKPOINT_KEY: &str = "pqdm.manifest";

/// The tag holding a file's blake3 checksum.
pub const CHECKSUM_TAG: &str = "pqdm.checksum";
/// The tag holding the version that added a file.
pub const ADDED_IN_TAG: &str = "pqdm.addedIn";

/// Version `m` without its file list, as `commitInfo.pqdm.manifest` carries it.
pub fn header(m: &Manifest) -> serde_json::Value {
    let head = Manifest {
        format_version: m.format_version,
        version: m.version,
        updated_at: m.updated_at.clone(),
        base_dir: m.base_dir.clone(),
        kind: m.kind.clone(),
        timestamp_column: m.timestamp_column.clone(),
        file_count: m.file_count,
        total_rows: m.total_rows,
        total_bytes: m.total_bytes,
        latest_timestamp: m.latest_timestamp,
        earliest_timestamp: m.earliest_timestamp,
        latest_by_key: m.latest_by_key.clone(),
        schema: m.schema.clone(),
        partition_columns: m.partition_columns.clone(),
        key: m.key.clone(),
        settings: m.settings.clone(),
        metadata: m.metadata.clone(),
        kind_spec: m.kind_spec.clone(),
        operation: m.operation.clone(),
        source: m.source.clone(),
        kept_since: m.kept_since,
        table_id: m.table_id.clone(),
        records_since: m.records_since,
        sources: m.sources.clone(),
        files: Vec::new(),
    };
    serde_json::to_value(&head).expect("a manifest serialises")
}

/// The tags of file `f`'s `add`: what its statistics do not say.
pub fn file_tags(f: &FileEntry) -> BTreeMap<String, Option<String>> {
    BTreeMap::from([
        (CHECKSUM_TAG.to_string(), Some(f.checksum.clone())),
        (ADDED_IN_TAG.to_string(), Some(f.added_in.to_string())),
    ])
}

/// The dataset path of a file the log names by `path` (decoded): its kept copy
/// (`_pqdm/files/<path>.kept`) or the tree's file.
pub fn dataset_path(path: &str) -> &str {
    path.strip_prefix(META_DIR)
        .and_then(|p| p.strip_prefix('/'))
        .and_then(|p| p.strip_prefix(FILES_DIR))
        .and_then(|p| p.strip_prefix('/'))
        .and_then(|p| p.strip_suffix(KEPT_SUFFIX))
        .unwrap_or(path)
}

/// Whether the log's `snapshot` holds pqdm's whole record of its version: the header, and the
/// tags of every file (an earlier pqdm's entries carry neither, until the next checkpoint).
pub fn complete(snapshot: &Snapshot) -> bool {
    snapshot.record.is_some()
        && snapshot
            .files
            .iter()
            .all(|f| f.tags.contains_key(CHECKSUM_TAG) && f.tags.contains_key(ADDED_IN_TAG))
}

/// Version `snapshot.version` of a pqdm dataset as its log records it; an error names what the
/// log lacks (a version whose entry carries no pqdm record: one another engine wrote, or a
/// checkpoint written without an entry) or where it disagrees with itself.
pub fn manifest(snapshot: &Snapshot) -> Result<Manifest, String> {
    let version = snapshot.version;
    let header = snapshot
        .record
        .as_ref()
        .ok_or_else(|| format!("version {version} of the log carries no pqdm record"))?;
    let mut m: Manifest = serde_json::from_value(header.clone())
        .map_err(|e| format!("version {version}: its pqdm record does not read ({e})"))?;
    if m.version != version {
        return Err(format!(
            "entry {version} holds the pqdm record of version {}",
            m.version
        ));
    }
    let ts = m.timestamp_column.clone();
    let mut files = Vec::with_capacity(snapshot.files.len());
    for f in &snapshot.files {
        let tag = |name: &str| f.tags.get(name).cloned().flatten();
        let (Some(checksum), Some(added_in)) = (
            tag(CHECKSUM_TAG),
            tag(ADDED_IN_TAG).and_then(|v| v.parse().ok()),
        ) else {
            return Err(format!(
                "version {version}: the add of {} carries no pqdm tags (written by an earlier pqdm or another engine)",
                f.path
            ));
        };
        let stats: super::Stats = f
            .stats
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok())
            .ok_or_else(|| format!("version {version}: the add of {} has no stats", f.path))?;
        let key_ranges = stats
            .min_values
            .iter()
            .filter(|(col, _)| **col != ts)
            .filter_map(|(col, lo)| Some((col.clone(), [*lo, *stats.max_values.get(col)?])))
            .collect();
        files.push(FileEntry {
            path: dataset_path(&f.path).to_string(),
            partition: f.partition.clone(),
            rows: stats.num_records,
            bytes: f.size,
            min_timestamp: stats.min_values.get(&ts).copied(),
            max_timestamp: stats.max_values.get(&ts).copied(),
            key_ranges,
            checksum,
            added_in,
            null_timestamps: stats.null_count.get(&ts).copied(),
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let rows: u64 = files.iter().map(|f| f.rows).sum();
    if files.len() as u64 != m.file_count || rows != m.total_rows {
        return Err(format!(
            "version {version}: the log lists {} files of {rows} rows, its pqdm record {} of {}",
            files.len(),
            m.file_count,
            m.total_rows
        ));
    }
    m.files = files;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_copies_map_back_to_their_dataset_paths() {
        assert_eq!(
            dataset_path("_pqdm/files/symbol=A/f.parquet.kept"),
            "symbol=A/f.parquet"
        );
        assert_eq!(dataset_path("symbol=A/f.parquet"), "symbol=A/f.parquet");
        assert_eq!(
            dataset_path("_pqdm/files/f.parquet"),
            "_pqdm/files/f.parquet"
        );
    }
}
