//! [`Dataset`]: a hive-partitioned Parquet dataset with a versioned manifest.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::location::Location;
use crate::manifest::{Field, Manifest, Settings};
use crate::options::{Compression, DEFAULT_MAX_ROWS_PER_FILE};
use crate::partition;
use crate::schema::{ColType, Kind};
use crate::txn::Store;

/// Options for creating a dataset.
#[derive(Clone, Debug, Default)]
pub struct CreateOptions {
    /// Partition columns; `None`: the kind's default.
    pub partition_by: Option<Vec<String>>,
    /// Default compression of its files.
    pub compression: Compression,
    /// Default rows per file; `None`: 5,000,000.
    pub max_rows_per_file: Option<usize>,
    /// Compact a partition after each write once it holds more than this many small files
    /// (`None`: only when asked).
    pub auto_compact: Option<u64>,
    /// Write a Delta checkpoint every this many versions (`None`: 100, Delta's default).
    pub checkpoint_interval: Option<u64>,
    /// `_manifest.json` lists the files of a version of at most this many (`None`: 10,000,
    /// [`crate::manifest::MANIFEST_MAX_FILES`]); beyond, the log alone does, and writes read
    /// only the partitions they touch.
    pub manifest_max_files: Option<u64>,
    /// User metadata kept in the manifest and every file footer.
    pub metadata: BTreeMap<String, String>,
    /// Where the dataset's data came from (materialised datasets).
    pub source: Option<serde_json::Value>,
}

/// A pqdm dataset: a base folder (or `s3://bucket/prefix`) with `_manifest.json`, `_pqdm/` and
/// hive-partitioned data.
///
/// ```no_run
/// use pqdm::{Dataset, CreateOptions, schema::KindRegistry};
/// let kinds = KindRegistry::default();
/// let ds = Dataset::open_or_create("target/ds", kinds.get("klines")?, &CreateOptions::default())?;
/// println!("version {}", ds.header().version);
/// # Ok::<(), pqdm::Error>(())
/// ```
pub struct Dataset {
    store: Store,
    manifest: Mutex<Arc<Manifest>>,
    /// The stamp of `_manifest.json` when `manifest` was loaded or committed.
    stamp: Mutex<Option<(u64, u64, u64, i64)>>,
    /// What the listing of a dataset without a manifest found (`None`: it has one).
    foreign: Option<crate::foreign::ListingFacts>,
}

impl Dataset {
    /// Opens the dataset at `base` (which must have a manifest): a folder, or
    /// `s3://bucket/prefix` with the default storage options.
    pub fn open(base: impl AsRef<Path>) -> Result<Dataset> {
        Dataset::open_at(&Location::parse(base)?)
    }

    /// Opens the dataset at `location` (which must have a manifest); see
    /// [`Location::parse_with`] for a location with storage options of its own.
    pub fn open_at(location: &Location) -> Result<Dataset> {
        let store = Store::at(location);
        store.try_recover();
        let stamp = store.stamp();
        // The file list is read when something first needs it (see [`Dataset::manifest`]).
        let manifest = store.load_head()?.ok_or_else(|| Error::Dataset {
            path: location.path(),
            message: location.no_dataset_message(),
        })?;
        Ok(Dataset {
            stamp: Mutex::new(stamp),
            store,
            manifest: Mutex::new(Arc::new(manifest)),
            foreign: None,
        })
    }

    /// Opens the dataset at `base`; a folder without a manifest (written by pyarrow, DuckDB or
    /// Spark) is described by listing its files, read-only. `hive_types` overrides the dtypes
    /// inferred for such a dataset's partition columns.
    pub fn open_any(
        base: impl AsRef<Path>,
        hive_types: &BTreeMap<String, ColType>,
    ) -> Result<Dataset> {
        Dataset::open_any_at(&Location::parse(base)?, hive_types)
    }

    /// [`Dataset::open_any`] at `location`.
    pub fn open_any_at(
        location: &Location,
        hive_types: &BTreeMap<String, ColType>,
    ) -> Result<Dataset> {
        let store = Store::at(location);
        if store.try_exists()? {
            return Dataset::open_at(location);
        }
        let listing = match store.delta_snapshot(None)? {
            // A Delta table another engine wrote: read through its log, never by listing.
            Some(snapshot) => crate::foreign::describe_delta(location, snapshot)?,
            None => crate::foreign::describe(location, hive_types)?,
        };
        Ok(Dataset {
            stamp: Mutex::new(store.stamp()),
            store,
            manifest: Mutex::new(Arc::new(listing.manifest)),
            foreign: Some(listing.facts),
        })
    }

    /// Whether this dataset has no manifest (found by listing; read-only).
    pub fn is_foreign(&self) -> bool {
        self.foreign.is_some()
    }

    /// Whether the files store `column` as a date-time rather than pqdm's Int64 milliseconds
    /// (only in datasets found by listing).
    pub fn is_datetime(&self, column: &str) -> bool {
        self.foreign
            .as_ref()
            .is_some_and(|f| f.datetime_columns.contains(column))
    }

    /// Stored columns of a dataset without a manifest that pqdm has no type for, with their
    /// Polars types (empty for a pqdm dataset, whose columns are all typed).
    pub(crate) fn untyped_columns(&self) -> &[(String, polars::prelude::DataType)] {
        self.foreign
            .as_ref()
            .map(|f| f.untyped_columns.as_slice())
            .unwrap_or_default()
    }

    /// The columns a dataset without a manifest is read as, where its metadata says (a Delta
    /// table's log); `None`: a pqdm dataset, or each file's own.
    pub(crate) fn foreign_file_schema(&self) -> Option<polars::prelude::SchemaRef> {
        self.foreign.as_ref().and_then(|f| f.file_schema.clone())
    }

    /// For a dataset without a manifest, the [`crate::foreign::fingerprint`] of its files when
    /// it was opened.
    pub fn listing_fingerprint(&self) -> Option<&str> {
        self.foreign.as_ref().map(|f| f.fingerprint.as_str())
    }

    /// Creates an empty dataset (version 0) of `kind` at `base`; fails if one exists.
    pub fn create(base: impl AsRef<Path>, kind: &Kind, opts: &CreateOptions) -> Result<Dataset> {
        Dataset::create_at(&Location::parse(base)?, kind, opts)
    }

    /// [`Dataset::create`] at `location`.
    pub fn create_at(location: &Location, kind: &Kind, opts: &CreateOptions) -> Result<Dataset> {
        // Checked before the lock creates anything: bad options leave no folder behind.
        let mut manifest = new_manifest(&location.path(), kind, opts)?;
        // A new dataset keeps its files from its first version on (its entry says so).
        manifest.kept_since = Some(0);
        let store = Store::at(location);
        if !store.try_exists()? {
            crate::foreign::check_not_nested(location)?;
            store.refuse_foreign_delta()?;
        }
        let lock = store.lock()?;
        if store.try_exists()? {
            return Err(Error::Dataset {
                path: location.path(),
                message: "a dataset already exists here".into(),
            });
        }
        store.commit_version(&lock, None, &mut manifest, &[], &[])?;
        Ok(Dataset {
            stamp: Mutex::new(store.stamp()),
            store,
            manifest: Mutex::new(Arc::new(manifest)),
            foreign: None,
        })
    }

    /// Opens the dataset at `base`, creating it as `kind` if it has no manifest yet.
    /// An existing dataset of another kind is an error. Safe when several processes race.
    pub fn open_or_create(
        base: impl AsRef<Path>,
        kind: &Kind,
        opts: &CreateOptions,
    ) -> Result<Dataset> {
        Dataset::open_or_create_at(&Location::parse(base)?, kind, opts)
    }

    /// [`Dataset::open_or_create`] at `location`.
    pub fn open_or_create_at(
        location: &Location,
        kind: &Kind,
        opts: &CreateOptions,
    ) -> Result<Dataset> {
        let store = Store::at(location);
        if !store.try_exists()? {
            match Dataset::create_at(location, kind, opts) {
                Ok(ds) => return Ok(ds),
                Err(Error::Dataset { .. } | Error::Conflict { .. }) if store.exists() => {}
                Err(e) => return Err(e),
            }
        }
        let ds = Dataset::open_at(location)?;
        if ds.header().kind != kind.name {
            return Err(Error::Dataset {
                path: location.path(),
                message: format!("holds kind `{}`, not `{}`", ds.header().kind, kind.name),
            });
        }
        Ok(ds)
    }

    /// Whether a pqdm dataset (a manifest or a history) exists at `base`; an unreachable store
    /// counts as no.
    pub fn exists(base: impl AsRef<Path>) -> bool {
        Store::new(base).is_ok_and(|s| s.exists())
    }

    /// The version numbers kept in the history, oldest first.
    pub fn versions(&self) -> Result<Vec<u64>> {
        self.store.versions(&self.header())
    }

    /// The current version's summary (`_pqdm/summary.json`: what `latest` answers from in
    /// constant time); `None` when it is missing or not the current version's.
    pub fn summary(&self) -> Option<crate::manifest::Summary> {
        self.store.load_summary()
    }

    /// Removes this dataset if it holds nothing (version 0, no data files, no other writer
    /// staging into it), with its folder when that is then empty: for a caller whose first
    /// write into a dataset it created failed. Whether it was removed (never on object
    /// storage, where no lock keeps another writer from committing meanwhile).
    pub fn remove_if_empty(&self) -> Result<bool> {
        self.store.remove_if_empty()
    }

    /// Where the dataset lives.
    pub fn location(&self) -> Location {
        self.store.location()
    }

    /// The dataset's base folder.
    pub fn base(&self) -> &Path {
        self.store.base()
    }

    /// The on-disk store (manifest history, commits): the crate's own, so that nothing
    /// outside it commits around the transaction's invariants.
    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// The manifest of the version this handle sees (the latest it committed or loaded).
    /// Its file list is read on first need: from the Delta log (the newest checkpoint and the
    /// entries after it) where `_manifest.json` holds none, which an error then names.
    pub fn manifest(&self) -> Result<Arc<Manifest>> {
        let seen = self.header();
        if !seen.is_partial() {
            return Ok(seen);
        }
        let whole = Arc::new(self.store.load_version(seen.version)?);
        let mut slot = self.manifest.lock().unwrap_or_else(|e| e.into_inner());
        if slot.version == whole.version {
            *slot = Arc::clone(&whole);
        }
        Ok(whole)
    }

    /// The version this handle sees for what is not its file list (version, kind, schema,
    /// partition columns, settings, summary): without reading the files, whose list it holds
    /// only when [`Manifest::is_partial`] is false.
    pub fn header(&self) -> Arc<Manifest> {
        self.manifest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The current manifest, read again only if `_manifest.json` changed since this handle
    /// last loaded or committed it (writers call it under the commit lock).
    pub fn current(&self) -> Result<Arc<Manifest>> {
        if self.unchanged() {
            return self.manifest();
        }
        self.refresh()
    }

    /// The current version's header ([`Dataset::header`]), read again only if another
    /// commit came since this handle last loaded or committed one (its file list is not read).
    pub fn current_header(&self) -> Result<Arc<Manifest>> {
        if self.unchanged() {
            return Ok(self.header());
        }
        match self.store.load_head()? {
            Some(m) => {
                let m = Arc::new(m);
                self.set_manifest(Arc::clone(&m));
                Ok(m)
            }
            None => Ok(self.header()),
        }
    }

    /// The current version with only the files `keep` wants where that is cheaper (see
    /// [`Store::load_current_where`]); the whole version where this handle holds it already.
    /// What a write reads under the commit lock.
    pub(crate) fn current_where(&self, keep: &crate::delta::Keep<'_>) -> Result<Arc<Manifest>> {
        let seen = self.header();
        if !seen.is_partial() && self.unchanged() {
            return Ok(seen);
        }
        let started = std::time::Instant::now();
        let m = self
            .store
            .load_current_where(keep)?
            .ok_or_else(|| Error::Dataset {
                path: self.base().to_path_buf(),
                message: self.location().no_dataset_message(),
            })?;
        log::debug!(
            "version {}: {} of {} files read in {} ms",
            m.version,
            m.files.len(),
            m.file_count,
            started.elapsed().as_millis()
        );
        let m = Arc::new(m);
        self.set_manifest(Arc::clone(&m));
        Ok(m)
    }

    /// Whether the store can tell that no commit came since this handle last loaded or
    /// committed a version (a local dataset's stamp is the one it kept).
    fn unchanged(&self) -> bool {
        let now = self.store.stamp();
        now.is_some() && now == *self.stamp.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn set_manifest(&self, m: Arc<Manifest>) {
        *self.stamp.lock().unwrap_or_else(|e| e.into_inner()) = self.store.stamp();
        *self.manifest.lock().unwrap_or_else(|e| e.into_inner()) = m;
    }

    /// Reloads the current manifest from disk (to see other writers' commits).
    pub fn refresh(&self) -> Result<Arc<Manifest>> {
        let stamp = self.store.stamp();
        if let Some(m) = self.store.load_current()? {
            *self.manifest.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(m);
            *self.stamp.lock().unwrap_or_else(|e| e.into_inner()) = stamp;
        }
        self.manifest()
    }

    /// Version `version` as the Delta log alone records it (the newest checkpoint at or before
    /// it, then the entries after): the same manifest [`Dataset::manifest_at`] gives, rebuilt
    /// from pqdm's record in each entry (see [`crate::delta::record`]). An error names what
    /// the log lacks: no log, a version trimmed away, or an entry without pqdm's record (written
    /// by an earlier pqdm or another engine).
    pub fn version_from_log(&self, version: u64) -> Result<Manifest> {
        self.store.version_from_log(version)
    }

    /// The manifest of `version` (the current one when `None`) for what is not its file list
    /// (schema, partition columns, settings): an older version of a pqdm dataset is read
    /// without its files (which may then be missing from the list), see [`Store::load_header`].
    pub(crate) fn header_at(&self, version: Option<u64>) -> Result<Arc<Manifest>> {
        let current = self.header();
        match version {
            None => Ok(current),
            Some(v) if v == current.version => Ok(current),
            Some(v) if !self.is_foreign() => match self.store.load_header(v) {
                Ok(m) => Ok(Arc::new(m)),
                Err(_) => self.manifest_at(version),
            },
            _ => self.manifest_at(version),
        }
    }

    /// The manifest of `version` (the current one when `None`).
    pub fn manifest_at(&self, version: Option<u64>) -> Result<Arc<Manifest>> {
        match version {
            None => self.manifest(),
            Some(v) if v == self.header().version => self.manifest(),
            // Another engine's Delta table: its other versions come from its log too.
            Some(v)
                if self
                    .foreign
                    .as_ref()
                    .is_some_and(|f| f.delta_version.is_some()) =>
            {
                let snapshot =
                    self.store
                        .delta_snapshot(Some(v))?
                        .ok_or_else(|| Error::Dataset {
                            path: self.base().to_path_buf(),
                            message: "its Delta log is gone".into(),
                        })?;
                crate::foreign::describe_delta(&self.location(), snapshot)
                    .map(|l| Arc::new(l.manifest))
            }
            Some(v) => self.store.load_version(v).map(Arc::new),
        }
    }

    /// Absolute paths of the data files of `manifest` (old versions' files where they are kept).
    /// These are the files' kept copies under `_pqdm/files/`, which outlive commits that
    /// replace them (until `vacuum`'s retention): a scan planned now reads this version however
    /// long it takes to run. A dataset without a manifest is read from its tree.
    pub fn file_paths(&self, manifest: &Manifest) -> Vec<PathBuf> {
        if self.is_foreign() {
            return manifest
                .files
                .iter()
                .map(|f| self.store.data_path(&f.path))
                .collect();
        }
        // The version this handle knows, without its files where it holds none (a store that
        // needs them, for a dataset of an earlier pqdm, reads them through `current`).
        let now = self.header();
        self.store
            .file_paths(&self.store, manifest, now.clone(), &|| {
                self.current().unwrap_or_else(|_| now.clone())
            })
    }
}

/// The version-0 manifest of a new dataset.
fn new_manifest(base: &Path, kind: &Kind, opts: &CreateOptions) -> Result<Manifest> {
    kind.validate()?;
    let partition_by = opts
        .partition_by
        .clone()
        .unwrap_or_else(|| kind.partition_by.clone());
    let mut partition_columns = vec![];
    for name in &partition_by {
        crate::schema::check_partition_name(&kind.name, name)?;
        let dtype = match (kind.column(name), partition::derived_type(name)) {
            (Some(c), _) => c.dtype,
            (None, Some(t)) => t,
            (None, None) => {
                return Err(Error::Options(format!(
                    "partition column `{name}` is not a column of kind `{}` nor one pqdm derives ({})",
                    kind.name,
                    partition::DERIVED.join(", ")
                )));
            }
        };
        if partition_columns.iter().any(|f: &Field| &f.name == name) {
            return Err(Error::Options(format!(
                "partition column `{name}` is named twice"
            )));
        }
        partition_columns.push(Field {
            name: name.clone(),
            dtype,
        });
    }
    let schema = kind
        .columns
        .iter()
        .filter(|c| !partition_by.contains(&c.name))
        .map(|c| Field {
            name: c.name.clone(),
            dtype: c.dtype,
        })
        .collect();
    let settings = Settings {
        compression: opts.compression.to_string(),
        max_rows_per_file: opts.max_rows_per_file.unwrap_or(DEFAULT_MAX_ROWS_PER_FILE) as u64,
        auto_compact: opts.auto_compact,
        checkpoint_interval: match opts.checkpoint_interval {
            Some(0) => {
                return Err(Error::Options(
                    "the checkpoint interval must be at least 1 version".into(),
                ));
            }
            n => n,
        },
        manifest_max_files: opts.manifest_max_files,
    };
    let mut m = Manifest::empty(base, kind, schema, partition_columns, settings);
    m.metadata = opts.metadata.clone();
    m.source = opts.source.clone();
    m.refresh_summary();
    Ok(m)
}
