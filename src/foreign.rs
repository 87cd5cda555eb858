//! Datasets written by other tools (pyarrow, DuckDB, Spark) and never given a manifest:
//! found by listing, skipping names that start with `.` or `_` (`_SUCCESS`, `_temporary`,
//! `.crc` files) and temporary files, with hive values typed sensibly.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::location::Location;
use crate::manifest::{Field, FileEntry, META_DIR, Manifest, Operation, Settings};
use crate::options::Compression;
use crate::partition;
use crate::partition_values::PartitionValues;
use crate::schema::{ColType, ColumnSpec, Kind};

/// Whether a relative path is data for plain readers: no component hidden, a Parquet suffix.
fn is_data(rel: &Path) -> bool {
    let hidden = rel.components().any(|c| {
        let s = c.as_os_str().to_string_lossy();
        s.starts_with('.') || s.starts_with('_')
    });
    let name = rel
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    !hidden && (name.ends_with(".parquet") || name.ends_with(".pq") || name.ends_with(".parq"))
}

/// Folders (relative, below `base` itself) that are datasets of their own: they hold a
/// `_manifest.json`, a `_pqdm/versions/` history or a `_delta_log/`. Paths under the base's own
/// hidden folders (`_pqdm/...`) do not count.
fn nested_roots(rels: &[String]) -> BTreeSet<String> {
    let mut roots = BTreeSet::new();
    for rel in rels {
        let parts: Vec<&str> = rel.split('/').collect();
        if parts.len() < 2 || parts[0].starts_with(['_', '.']) {
            continue;
        }
        let mark = parts.iter().enumerate().position(|(i, p)| {
            (*p == "_manifest.json" && i + 1 == parts.len())
                || *p == "_delta_log"
                || (*p == META_DIR && parts.get(i + 1) == Some(&"versions"))
        });
        if let Some(i) = mark.filter(|i| *i > 0) {
            roots.insert(parts[..i].join("/"));
        }
    }
    roots
}

/// Whether `rel` lies inside one of `roots`.
fn under_any(rel: &str, roots: &BTreeSet<String>) -> bool {
    roots.iter().any(|r| {
        rel.strip_prefix(r.as_str())
            .is_some_and(|rest| rest.starts_with('/'))
    })
}

/// Whether a (local) folder is a dataset's root.
fn is_dataset_root(dir: &Path) -> bool {
    dir.join(crate::manifest::MANIFEST_FILE).is_file()
        || dir.join(META_DIR).join("versions").is_dir()
        || dir.join("_delta_log").is_dir()
}

/// The data files under `base` (relative paths with `/`), sorted. Files of a dataset nested
/// below `base` (a folder with its own manifest or log) are not `base`'s and are left out.
pub fn list_files(base: &Location) -> Result<Vec<String>> {
    Ok(data_files(base, base.list_files()?))
}

/// The data files among `all` (every file under `base`, relative, sorted): see [`list_files`].
fn data_files(base: &Location, all: Vec<String>) -> Vec<String> {
    let nested = nested_roots(&all);
    if !nested.is_empty() {
        log::warn!(
            "{base}: skipping nested dataset(s) {}",
            nested.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    all.into_iter()
        .filter(|rel| is_data(Path::new(rel)) && !under_any(rel, &nested))
        .collect()
}

/// A hash of the data files under `base` as listed: each one's path, size and a stamp of its
/// content (on a local disk its modification and change times and inode, on object storage its
/// last-modified time and ETag). Any file added, removed, resized or rewritten changes it, even
/// a rewrite of the same size whose modification time was set back.
pub fn fingerprint(base: &Location) -> Result<String> {
    Ok(listed(base)?.1)
}

/// The data files under `base` and their [`fingerprint`], from one listing.
fn listed(base: &Location) -> Result<(Vec<String>, String)> {
    let stamped = base.list_stamped()?;
    let files = data_files(base, stamped.iter().map(|(rel, ..)| rel.clone()).collect());
    let wanted: BTreeSet<&str> = files.iter().map(String::as_str).collect();
    let mut h = blake3::Hasher::new();
    for (rel, bytes, stamp) in &stamped {
        if !wanted.contains(rel.as_str()) {
            continue;
        }
        for part in [rel.as_bytes(), &bytes.to_le_bytes(), stamp.as_bytes()] {
            h.update(&(part.len() as u64).to_le_bytes());
            h.update(part);
        }
    }
    Ok((files, h.finalize().to_hex().to_string()))
}

/// Whether `inner` lies in a hidden folder of the dataset at `outer` (`_views/eth`) other than
/// its own metadata: the outer dataset's listing and maintenance never look there.
fn in_private_folder(inner: &Path, outer: &Path) -> bool {
    let first = inner
        .strip_prefix(outer)
        .ok()
        .and_then(|rel| rel.components().next())
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .unwrap_or_default();
    first.starts_with(['_', '.']) && first != META_DIR && first != "_delta_log"
}

/// Refuses a new dataset at `base` (local) that would lie inside an existing dataset or hold
/// one: a dataset never contains another, else its maintenance would take the other's files
/// for its own (repair would move them to its orphans). A hidden folder of a dataset
/// (`_views/`, not `_pqdm/`) may hold one: nothing of the outer dataset looks there.
pub fn check_not_nested(location: &Location) -> Result<()> {
    let Some(base) = location.as_local() else {
        return Ok(());
    };
    let nested = |message: String| Error::Dataset {
        path: base.to_path_buf(),
        message: format!("datasets cannot be nested: {message}"),
    };
    let abs = std::path::absolute(base).map_err(Error::io(base))?;
    if let Some(outer) = abs.ancestors().skip(1).find(|a| is_dataset_root(a))
        && !in_private_folder(&abs, outer)
    {
        return Err(nested(format!(
            "it would lie inside the dataset at {}",
            outer.display()
        )));
    }
    if let Some(inner) = nested_roots(&location.list_files()?).into_iter().next() {
        return Err(nested(format!(
            "it would hold the dataset at {}",
            base.join(inner).display()
        )));
    }
    Ok(())
}

/// Types a hive column from its values: integers (without leading zeros, so `0001` stays text)
/// become i64, everything else a string.
fn infer_type<'a>(values: impl Iterator<Item = &'a str>) -> ColType {
    let mut any = false;
    for v in values {
        any = true;
        let digits = v.strip_prefix('-').unwrap_or(v);
        let leading_zero = digits.len() > 1 && digits.starts_with('0');
        if leading_zero || v.parse::<i64>().is_err() {
            return ColType::Str;
        }
    }
    if any { ColType::I64 } else { ColType::Str }
}

/// A dataset found by listing.
pub struct Listing {
    /// A manifest (version 0, never written) describing it.
    pub manifest: Manifest,
    /// What the manifest cannot record.
    pub facts: ListingFacts,
}

/// What a listing knows beyond its manifest.
#[derive(Clone, Debug, Default)]
pub struct ListingFacts {
    /// Columns its (first) file stores as date-times: the manifest records them as i64
    /// (milliseconds), and filters convert them so.
    pub datetime_columns: BTreeSet<String>,
    /// The [`fingerprint`] of its files, taken before they were read.
    pub fingerprint: String,
    /// A Delta table read through its log: the version read (its other versions are read the
    /// same way, see [`describe_delta`]).
    pub delta_version: Option<u64>,
    /// The columns its files are read as (a Delta table's, from its log; `None`: each file's
    /// own).
    pub file_schema: Option<polars::prelude::SchemaRef>,
    /// Stored columns pqdm has no type for (binary, lists, structs, durations, f16...), with
    /// their Polars types: a scan returns them as stored (they cannot be filtered on).
    pub untyped_columns: Vec<(String, polars::prelude::DataType)>,
}

/// Describes a dataset found by listing. `hive_types` overrides the inferred partition column
/// dtypes.
pub fn describe(location: &Location, hive_types: &BTreeMap<String, ColType>) -> Result<Listing> {
    let base = &location.path();
    if location.is_missing() {
        return Err(Error::Dataset {
            path: base.to_path_buf(),
            message: "no such folder".into(),
        });
    }
    let (files, fingerprint) = listed(location)?;
    if files.is_empty() {
        return Err(Error::Dataset {
            path: base.to_path_buf(),
            message: "no manifest and no Parquet files".into(),
        });
    }
    let parts: Vec<Vec<(String, Option<String>)>> =
        files.iter().map(|f| partition::parse_path(f)).collect();
    let partition_columns = partition_fields(&parts, hive_types);
    describe_files(location, files, parts, partition_columns, None, fingerprint)
}

/// The partition columns of `parts` (each file's hive values), in the order they first appear,
/// typed by `hive_types` where it names them, else from their values (see [`infer_type`]).
fn partition_fields(
    parts: &[Vec<(String, Option<String>)>],
    hive_types: &BTreeMap<String, ColType>,
) -> Vec<Field> {
    let mut names: Vec<&String> = vec![];
    for (k, _) in parts.iter().flatten() {
        if !names.contains(&k) {
            names.push(k);
        }
    }
    names
        .into_iter()
        .map(|n| {
            let values = || {
                parts.iter().flat_map(|p| {
                    p.iter()
                        .filter(|(k, _)| k == n)
                        .filter_map(|(_, v)| v.as_deref())
                })
            };
            // Zero-padded time folders (`month=01`, the old converter's layout) are still numbers.
            let derived = partition::derived_type(n)
                .filter(|t| *t != ColType::Date && values().all(|v| v.parse::<i64>().is_ok()));
            let dtype = hive_types
                .get(n)
                .copied()
                .or(derived)
                .unwrap_or_else(|| infer_type(values()));
            Field {
                name: n.clone(),
                dtype,
            }
        })
        .collect()
}

/// Describes the Delta table at `location` at version `snapshot.version`, read through its
/// log (see [`crate::delta::replay`]): its live files, partition values and typed partition
/// columns as the log records them.
pub fn describe_delta(
    location: &Location,
    snapshot: crate::delta::replay::Snapshot,
) -> Result<Listing> {
    // With no file, the columns can only come from the log's schema: a table whose schema holds
    // a type pqdm does not map is read by its files' footers.
    if snapshot.files.is_empty() && snapshot.data_columns.is_none() {
        return Err(Error::Dataset {
            path: location.path(),
            message: format!(
                "is a Delta table with no data files at version {}",
                snapshot.version
            ),
        });
    }
    let mut h = blake3::Hasher::new();
    h.update(format!("delta:{}", snapshot.version).as_bytes());
    let mut files = vec![];
    let mut parts = vec![];
    for f in &snapshot.files {
        h.update(format!("\n{}:{}", f.path, f.size).as_bytes());
        files.push(f.path.clone());
        parts.push(
            snapshot
                .partition_columns
                .iter()
                .map(|(c, _)| (c.clone(), f.partition.value(c).map(String::from)))
                .collect(),
        );
    }
    let partition_columns: Vec<Field> = snapshot
        .partition_columns
        .iter()
        .map(|(name, dtype)| Field {
            name: name.clone(),
            dtype: *dtype,
        })
        .collect();
    let fingerprint = h.finalize().to_hex().to_string();
    // The log's schema, not the first file's: after a schema change the files differ.
    let file_schema: Option<polars::prelude::Schema> = snapshot
        .data_columns
        .map(|columns| columns.into_iter().map(|(n, t)| (n.into(), t)).collect());
    let schema = file_schema
        .as_ref()
        .map(|s| FileSchema::of(s, &partition_columns));
    let mut listing = describe_files(
        location,
        files,
        parts,
        partition_columns,
        schema,
        fingerprint,
    )?;
    listing.facts.file_schema = file_schema.map(std::sync::Arc::new);
    listing.manifest.version = snapshot.version;
    listing.manifest.operation.name = "delta log".into();
    listing.facts.delta_version = Some(snapshot.version);
    Ok(listing)
}

/// The columns of a listed dataset, from its first file's footer.
struct FileSchema {
    /// Stored columns pqdm can type (partition columns left out).
    fields: Vec<Field>,
    /// Stored as date-times (see [`ListingFacts::datetime_columns`]).
    datetime_columns: BTreeSet<String>,
    /// Stored columns pqdm has no type for (see [`ListingFacts::untyped_columns`]).
    untyped: Vec<(String, polars::prelude::DataType)>,
    /// The first of `timestamp`, `open_time`, `time` stored as i64, if any.
    timestamp: Option<String>,
}

impl FileSchema {
    /// From the first file's footer.
    fn read(location: &Location, first: &str, partition_columns: &[Field]) -> Result<FileSchema> {
        let (info, _) = location.read_footer(first, None)?;
        let stored = info.schema(&location.path().join(first))?;
        Ok(FileSchema::of(&stored, partition_columns))
    }

    /// From the columns `stored` (partition columns among them are left out).
    fn of(stored: &polars::prelude::Schema, partition_columns: &[Field]) -> FileSchema {
        let is_partition = |n: &str| partition_columns.iter().any(|p| p.name == n);
        let datetime_columns = stored
            .iter()
            .filter(|(n, dt)| {
                matches!(dt, polars::prelude::DataType::Datetime(..)) && !is_partition(n)
            })
            .map(|(n, _)| n.to_string())
            .collect();
        let fields: Vec<Field> = stored
            .iter()
            .filter(|(n, _)| !is_partition(n))
            .filter_map(|(n, dt)| {
                ColType::from_dtype(dt).map(|t| Field {
                    name: n.to_string(),
                    dtype: t,
                })
            })
            .collect();
        let untyped = stored
            .iter()
            .filter(|(n, dt)| !is_partition(n) && ColType::from_dtype(dt).is_none())
            .map(|(n, dt)| (n.to_string(), dt.clone()))
            .collect();
        let timestamp = ["timestamp", "open_time", "time"]
            .iter()
            .find(|c| {
                fields
                    .iter()
                    .any(|f| &f.name == *c && f.dtype == ColType::I64)
            })
            .map(|s| s.to_string());
        FileSchema {
            fields,
            datetime_columns,
            untyped,
            timestamp,
        }
    }

    /// The kind a listing is read as: every column optional, no key, extra columns kept.
    fn kind(&self, partition_columns: &[Field]) -> Kind {
        Kind {
            name: "foreign".into(),
            columns: self
                .fields
                .iter()
                .chain(partition_columns)
                .map(|f| ColumnSpec {
                    name: f.name.clone(),
                    dtype: f.dtype,
                    required: false,
                    timestamp: Some(&f.name) == self.timestamp.as_ref(),
                })
                .collect(),
            key: vec![],
            timestamp_column: self.timestamp.clone().unwrap_or_default(),
            partition_by: partition_columns.iter().map(|f| f.name.clone()).collect(),
            keep_extra: true,
            positional: vec![],
        }
    }
}

/// Each file's entry (rows, bytes and time range from its footer) and the codec of the first
/// file that names one.
fn read_entries(
    location: &Location,
    files: Vec<String>,
    parts: Vec<Vec<(String, Option<String>)>>,
    timestamp: Option<&str>,
) -> Result<(Vec<FileEntry>, Compression)> {
    let described: Vec<(FileEntry, Option<Compression>)> = files
        .into_par_iter()
        .zip(parts.into_par_iter())
        .map(|(rel, p)| {
            let (info, bytes) = location.read_footer(&rel, timestamp)?;
            // A column Polars cannot read in any file is refused here, not by a panic later.
            info.schema(&location.path().join(&rel))?;
            let entry = FileEntry {
                path: rel,
                partition: PartitionValues::new(p),
                rows: info.rows,
                bytes,
                min_timestamp: info.min,
                max_timestamp: info.max,
                key_ranges: BTreeMap::new(),
                checksum: String::new(),
                added_in: 0,
                null_timestamps: None,
            };
            Ok((entry, info.compression))
        })
        .collect::<Result<_>>()?;
    let compression = described.iter().find_map(|(_, c)| *c).unwrap_or_default();
    Ok((described.into_iter().map(|(e, _)| e).collect(), compression))
}

/// A listing of `files` (relative paths, with their partition values `parts`), their schema
/// `schema` (`None`: from the first one's footer), rows and time range from each one's.
fn describe_files(
    location: &Location,
    files: Vec<String>,
    parts: Vec<Vec<(String, Option<String>)>>,
    partition_columns: Vec<Field>,
    schema: Option<FileSchema>,
    fingerprint: String,
) -> Result<Listing> {
    let schema = match schema {
        Some(s) => s,
        None => FileSchema::read(location, &files[0], &partition_columns)?,
    };
    let (entries, compression) = read_entries(location, files, parts, schema.timestamp.as_deref())?;
    let kind = schema.kind(&partition_columns);
    // Writes into the dataset (once adopted) keep the codec its files already use.
    let settings = Settings {
        compression: compression.to_string(),
        max_rows_per_file: crate::options::DEFAULT_MAX_ROWS_PER_FILE as u64,
        auto_compact: None,
        checkpoint_interval: None,
        manifest_max_files: None,
    };
    let mut m = Manifest::empty(
        &location.path(),
        &kind,
        schema.fields,
        partition_columns,
        settings,
    );
    // Nothing that differs from one listing to the next of the same files (the cache keys on it).
    m.updated_at = String::new();
    m.table_id = None;
    m.key = vec![];
    m.operation = Operation {
        name: "listing".into(),
        ..Default::default()
    };
    m.files = entries;
    m.refresh_summary();
    Ok(Listing {
        manifest: m,
        facts: ListingFacts {
            datetime_columns: schema.datetime_columns,
            fingerprint,
            delta_version: None,
            file_schema: None,
            untyped_columns: schema.untyped,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_datasets_are_found_below_the_base_only() {
        let rels: Vec<String> = [
            "_manifest.json",
            "_pqdm/versions/00000000000000000001.json",
            "_views/eth/_manifest.json",
            "symbol=A/part-0.parquet",
            "inner/_manifest.json",
            "inner/symbol=B/part-0.parquet",
            "deep/er/_pqdm/versions/00000000000000000000.json",
            "lake/_delta_log/00000000000000000000.json",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let roots = nested_roots(&rels);
        assert_eq!(
            roots.iter().map(String::as_str).collect::<Vec<_>>(),
            vec!["deep/er", "inner", "lake"]
        );
        assert!(under_any("inner/symbol=B/part-0.parquet", &roots));
        assert!(!under_any("innermost/part-0.parquet", &roots));
    }

    #[test]
    fn hidden_folders_of_a_dataset_are_private() {
        let outer = Path::new("/d");
        assert!(in_private_folder(Path::new("/d/_views/eth"), outer));
        assert!(!in_private_folder(Path::new("/d/_pqdm/x"), outer));
        assert!(!in_private_folder(Path::new("/d/views/eth"), outer));
    }

    #[test]
    fn hive_values_are_integers_only_when_every_one_is_a_plain_integer() {
        let infer = |values: &[&str]| infer_type(values.iter().copied());
        for (values, want) in [
            (&[][..], ColType::Str),
            (&["1", "22", "-3"][..], ColType::I64),
            (&["0", "-0"][..], ColType::I64),
            (
                &["9223372036854775807", "-9223372036854775808"][..],
                ColType::I64,
            ),
            (&["9223372036854775808"][..], ColType::Str),
            (&["1", "0001"][..], ColType::Str),
            (&["-01"][..], ColType::Str),
            (&["1", "x"][..], ColType::Str),
            (&["1.5"][..], ColType::Str),
            (&["-"][..], ColType::Str),
            (&[""][..], ColType::Str),
            (&["2024-01-05"][..], ColType::Str),
        ] {
            assert_eq!(infer(values), want, "{values:?}");
        }
    }
}
