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

use rayon::prelude::*;

use super::replay::{LiveFile, Snapshot};
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
    serde_json::to_value(m.without_files()).expect("a manifest serialises")
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
        && snapshot.files.iter().all(|f| {
            [CHECKSUM_TAG, ADDED_IN_TAG]
                .iter()
                .all(|t| f.tag(t).is_some())
        })
}

/// Version `snapshot.version` of a pqdm dataset as its log records it (with only the files a
/// partial snapshot holds: then only the number of files is checked against the header); an
/// error names what the log lacks (a version whose entry carries no pqdm record: one another engine wrote, or a
/// checkpoint written without an entry) or where it disagrees with itself.
pub fn manifest(snapshot: Snapshot) -> Result<Manifest, String> {
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
    // Each file's statistics are parsed on its own: in parallel, a tenth of the open.
    let mut files = snapshot
        .files
        .into_par_iter()
        .map(|f| file_entry(f, &ts, version))
        .collect::<Result<Vec<_>, _>>()?;
    files.par_sort_by(|a, b| a.path.cmp(&b.path));
    m.files = files;
    m.files_in = snapshot
        .partial
        .then(|| crate::manifest::FILES_IN_LOG.to_string());
    match snapshot.partial {
        false => check_counts(&m)?,
        // Only the count of files is known of those not read.
        true if snapshot.live_files as u64 != m.file_count => {
            return Err(format!(
                "version {version}: the log lists {} files, its pqdm record {}",
                snapshot.live_files, m.file_count
            ));
        }
        true => {}
    }
    Ok(m)
}

/// Whether `m`'s file list holds the files and rows its header says.
fn check_counts(m: &Manifest) -> Result<(), String> {
    let rows: u64 = m.files.iter().map(|f| f.rows).sum();
    if m.files.len() as u64 != m.file_count || rows != m.total_rows {
        return Err(format!(
            "version {}: the log lists {} files of {rows} rows, its pqdm record {} of {}",
            m.version,
            m.files.len(),
            m.file_count,
            m.total_rows
        ));
    }
    Ok(())
}

/// The manifest entry of the file the log lists as `f` (version `version` is named in errors).
fn file_entry(mut f: LiveFile, ts: &str, version: u64) -> Result<FileEntry, String> {
    let mut tag = |name: &str| f.take_tag(name).flatten();
    let (Some(checksum), Some(added_in)) = (
        tag(CHECKSUM_TAG),
        tag(ADDED_IN_TAG).and_then(|v| v.parse().ok()),
    ) else {
        return Err(format!(
            "version {version}: the add of {} carries no pqdm tags (written by an earlier pqdm or another engine)",
            f.path
        ));
    };
    let stats: StatsRef = f
        .stats
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
        .ok_or_else(|| format!("version {version}: the add of {} has no stats", f.path))?;
    let key_ranges = stats
        .min_values
        .iter()
        .filter(|(col, _)| **col != ts)
        .filter_map(|(col, lo)| Some((col.to_string(), [*lo, *stats.max_values.get(col)?])))
        .collect();
    let path = match dataset_path(&f.path) {
        same if same.len() == f.path.len() => std::mem::take(&mut f.path),
        kept => kept.to_string(),
    };
    Ok(FileEntry {
        path,
        partition: f.partition,
        rows: stats.num_records,
        bytes: f.size,
        min_timestamp: stats.min_values.get(ts).copied(),
        max_timestamp: stats.max_values.get(ts).copied(),
        key_ranges,
        checksum,
        added_in,
        null_timestamps: stats.null_count.get(ts).copied(),
    })
}

/// [`super::Stats`] read without copying its column names (100,000 files hold 100,000 copies
/// of the same few).
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatsRef<'a> {
    num_records: u64,
    #[serde(default, borrow)]
    min_values: BTreeMap<std::borrow::Cow<'a, str>, i64>,
    #[serde(default, borrow)]
    max_values: BTreeMap<std::borrow::Cow<'a, str>, i64>,
    #[serde(default, borrow)]
    null_count: BTreeMap<std::borrow::Cow<'a, str>, u64>,
}

/// The `commitInfo` of a log entry (its first line, where pqdm writes it); `None` when the
/// entry does not start with one.
fn commit_info(entry: &[u8]) -> Option<serde_json::Value> {
    let first = entry.split(|b| *b == b'\n').next()?;
    let mut line: serde_json::Value = serde_json::from_slice(first).ok()?;
    Some(line.get_mut("commitInfo")?.take())
}

/// The operation id of the pqdm commit that made the log entry `entry` (`None`: an entry
/// another engine, or no commit, made).
pub fn op_id(entry: &[u8]) -> Option<String> {
    commit_info(entry)?["pqdm"]["opId"]
        .as_str()
        .map(String::from)
}

/// The key under `commitInfo.pqdm` holding the blake3 hash of the version's whole manifest as
/// `_manifest.json` holds it: how a reader tells that copy is the version's, unedited.
pub const MANIFEST_HASH_KEY: &str = "manifestHash";

/// The hash [`MANIFEST_HASH_KEY`] records of a manifest's bytes.
pub fn manifest_hash(manifest: &[u8]) -> String {
    blake3::hash(manifest).to_hex().to_string()
}

/// The [`MANIFEST_HASH_KEY`] the log entry `entry` records, if it records one.
pub fn recorded_manifest_hash(entry: &[u8]) -> Option<String> {
    commit_info(entry)?["pqdm"][MANIFEST_HASH_KEY]
        .as_str()
        .map(String::from)
}

/// Records the hash of `manifest` (the version's `_manifest.json` bytes) in the `commitInfo`
/// of the entry `actions`.
pub fn record_manifest_hash(actions: &mut [super::Action], manifest: &[u8]) {
    if let Some(super::Action::CommitInfo(info)) = actions.first_mut()
        && let Some(pqdm) = info.get_mut("pqdm").and_then(|p| p.as_object_mut())
    {
        pqdm.insert(MANIFEST_HASH_KEY.into(), manifest_hash(manifest).into());
    }
}

/// The header of the version whose log entry is `entry` (its manifest without the file list,
/// see [`header`]), read from the entry's first line alone; `None` when the entry carries no
/// pqdm record.
pub fn entry_header(entry: &[u8]) -> Option<Manifest> {
    let mut info = commit_info(entry)?;
    let header: Manifest =
        serde_json::from_value(info.get_mut("pqdm")?.get_mut("manifest")?.take()).ok()?;
    Some(Manifest {
        files_in: Some(crate::manifest::FILES_IN_LOG.to_string()),
        ..header
    })
}

/// Version `m.version + 1`: `m` with the log entry `entry` of the next version applied (its
/// removes and adds, and the header it carries). An error names what the entry lacks (pqdm's
/// record: an entry of an earlier pqdm or another engine) or where it disagrees with itself.
pub fn advance(base: &std::path::Path, m: &Manifest, entry: &[u8]) -> Result<Manifest, String> {
    let version = m.version + 1;
    if m.is_partial() {
        return Err(format!(
            "entry {version} can only be applied to the whole version before it"
        ));
    }
    let mut next = entry_header(entry)
        .ok_or_else(|| format!("entry {version} of the log carries no pqdm record"))?;
    next.files_in = None;
    if next.version != version {
        return Err(format!(
            "entry {version} holds the pqdm record of version {}",
            next.version
        ));
    }
    let mut files: BTreeMap<String, FileEntry> = m
        .files
        .iter()
        .map(|f| (f.path.clone(), f.clone()))
        .collect();
    let text = std::str::from_utf8(entry).map_err(|_| format!("entry {version} is not UTF-8"))?;
    for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let action: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| format!("entry {version} holds a line that is not JSON ({e})"))?;
        if let Some(a) = action.get("add") {
            let file = LiveFile::from_add(base, version, a).map_err(|e| e.to_string())?;
            let entry = file_entry(file, &next.timestamp_column, version)?;
            files.insert(entry.path.clone(), entry);
        } else if let Some(r) = action.get("remove") {
            let raw = r["path"]
                .as_str()
                .ok_or_else(|| format!("entry {version}: a remove without a path"))?;
            let path = super::replay::decode_path(base, raw).map_err(|e| e.to_string())?;
            files.remove(dataset_path(&path));
        }
    }
    next.files = files.into_values().collect();
    check_counts(&next)?;
    Ok(next)
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
