//! `NativeDataset`: one pqdm dataset, the methods of `pqdm.Dataset` in their native form.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use polars::prelude::*;
use pqdm::maintain::compact::CompactOptions;
use pqdm::maintain::vacuum::VacuumOptions;
use pqdm::progress::Progress;
use pqdm::schema::KindRegistry;
use pqdm::{CreateOptions, Dataset, ScanOptions, WriteOptions};
use pyo3::prelude::*;

use crate::arrow::{ArrowStream, import};
use crate::blocking::run;
use crate::errors::{IntoPy, invalid, to_py};
use crate::filters::{Triple, from_triples};

/// A report as the JSON text `--json` prints.
fn json<T: serde::Serialize>(value: &T) -> PyResult<String> {
    serde_json::to_string(value).map_err(|e| invalid(format!("report: {e}")))
}

fn parse<T: std::str::FromStr<Err = pqdm::Error>>(text: Option<&str>) -> PyResult<Option<T>> {
    text.map(str::parse).transpose().py()
}

/// A dataset opened or created (`pqdm.Dataset` wraps it).
#[pyclass(module = "pqdm._pqdm", frozen)]
pub struct NativeDataset {
    ds: Arc<Dataset>,
}

#[pymethods]
impl NativeDataset {
    /// Opens the dataset at `path` (a folder or `s3://bucket/prefix`, with `storage_options`
    /// of its own when given, else the process defaults); a folder without a manifest is
    /// described by listing (read-only) when `any` is true.
    #[staticmethod]
    #[pyo3(signature = (path, any=false, storage_options=None))]
    fn open(
        py: Python<'_>,
        path: PathBuf,
        any: bool,
        storage_options: Option<BTreeMap<String, String>>,
    ) -> PyResult<NativeDataset> {
        let ds = run(py, || {
            let location = location(&path, storage_options)?;
            match any {
                true => Dataset::open_any_at(&location, &BTreeMap::new()),
                false => Dataset::open_at(&location),
            }
        })?
        .py()?;
        Ok(NativeDataset { ds: Arc::new(ds) })
    }

    /// Creates a dataset of `kind` at `path` (`exists_ok`: opens it if it holds that kind).
    #[staticmethod]
    #[pyo3(signature = (path, kind, exists_ok, partition_by=None, compression=None, max_rows_per_file=None, auto_compact=None, checkpoint_interval=None, metadata=None, storage_options=None))]
    #[allow(clippy::too_many_arguments)]
    fn create(
        py: Python<'_>,
        path: PathBuf,
        kind: String,
        exists_ok: bool,
        partition_by: Option<Vec<String>>,
        compression: Option<String>,
        max_rows_per_file: Option<usize>,
        auto_compact: Option<u64>,
        checkpoint_interval: Option<u64>,
        metadata: Option<BTreeMap<String, String>>,
        storage_options: Option<BTreeMap<String, String>>,
    ) -> PyResult<NativeDataset> {
        let kinds = KindRegistry::default();
        let kind = kinds.get(&kind).py()?;
        let opts = CreateOptions {
            partition_by,
            compression: parse(compression.as_deref())?.unwrap_or_default(),
            max_rows_per_file,
            auto_compact,
            checkpoint_interval,
            metadata: metadata.unwrap_or_default(),
            source: None,
            ..Default::default()
        };
        let ds = run(py, || {
            let location = location(&path, storage_options)?;
            match exists_ok {
                true => Dataset::open_or_create_at(&location, kind, &opts),
                false => Dataset::create_at(&location, kind, &opts),
            }
        })?
        .py()?;
        Ok(NativeDataset { ds: Arc::new(ds) })
    }

    /// The base folder or URL.
    #[getter]
    fn path(&self) -> String {
        self.ds.base().display().to_string()
    }

    /// The version this handle sees (after `refresh`, the current one).
    #[getter]
    fn version(&self) -> u64 {
        self.ds.header().version
    }

    /// The kind's name.
    #[getter]
    fn kind(&self) -> String {
        self.ds.header().kind.clone()
    }

    /// Removes this dataset if it holds nothing (version 0, no files; local disks only): for a
    /// call that created it and then failed. Whether it was removed.
    fn discard_if_empty(&self) -> PyResult<bool> {
        self.ds.remove_if_empty().py()
    }

    /// Reloads the current version (other writers' commits).
    fn refresh(&self, py: Python<'_>) -> PyResult<u64> {
        let ds = self.ds.clone();
        Ok(run(py, move || ds.refresh())?.py()?.version)
    }

    /// Writes the frame `data` (anything with `__arrow_c_stream__`); the report as JSON.
    #[pyo3(signature = (data, mode=None, compression=None, max_rows_per_file=None, min_rows_per_group=None, row_group_size=None, metadata=None, constants=None, lenient=false, timestamp_unit=None, compact_after=None))]
    #[allow(clippy::too_many_arguments)]
    fn write(
        &self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        mode: Option<String>,
        compression: Option<String>,
        max_rows_per_file: Option<usize>,
        min_rows_per_group: Option<usize>,
        row_group_size: Option<usize>,
        metadata: Option<BTreeMap<String, String>>,
        constants: Option<BTreeMap<String, String>>,
        lenient: bool,
        timestamp_unit: Option<String>,
        compact_after: Option<usize>,
    ) -> PyResult<String> {
        let frame = import(data)?;
        let opts = WriteOptions {
            mode: parse(mode.as_deref())?,
            compression: parse(compression.as_deref())?,
            layout: pqdm::FileLayout {
                max_rows_per_file,
                min_rows_per_group,
                row_group_size,
            },
            metadata: metadata.unwrap_or_default(),
            lenient,
            constants: constants.unwrap_or_default(),
            timestamp_unit: timestamp_unit
                .as_deref()
                .map(pqdm::timestamp::Unit::parse)
                .transpose()
                .py()?,
            compact_after,
            ..Default::default()
        };
        let ds = self.ds.clone();
        let report = run(py, move || ds.write(frame.lazy(), &opts))?.py()?;
        json(&report)
    }

    /// Reads `columns` of the rows matching `filters` at `version`, as a stream.
    #[pyo3(signature = (columns=None, filters=vec![], version=None, limit=None))]
    fn scan(
        &self,
        py: Python<'_>,
        columns: Option<Vec<String>>,
        filters: Vec<Triple>,
        version: Option<u64>,
        limit: Option<u32>,
    ) -> PyResult<ArrowStream> {
        let opts = scan_options(columns, filters, version)?;
        let ds = self.ds.clone();
        // Without a limit, `Dataset::read` plans again should a commit move a file mid-read.
        let frame = run(py, move || -> pqdm::Result<DataFrame> {
            match limit {
                None => ds.read(&opts),
                Some(n) => ds
                    .scan(&opts)?
                    .limit(n)
                    .collect()
                    .map_err(pqdm::Error::polars(format!("scan {}", ds.base().display()))),
            }
        })?
        .py()?;
        Ok(ArrowStream::new(frame))
    }

    /// The same through a projection cache folder: the stream and `hit` or `miss`.
    #[pyo3(signature = (cache_dir, ttl_seconds=None, columns=None, filters=vec![], version=None))]
    fn cached_scan(
        &self,
        py: Python<'_>,
        cache_dir: PathBuf,
        ttl_seconds: Option<f64>,
        columns: Option<Vec<String>>,
        filters: Vec<Triple>,
        version: Option<u64>,
    ) -> PyResult<(ArrowStream, String)> {
        let opts = scan_options(columns, filters, version)?;
        let mut cache = pqdm::cache::Cache::new(&cache_dir);
        cache.ttl = seconds(ttl_seconds)?;
        let ds = self.ds.clone();
        let (frame, status) = run(py, move || -> pqdm::Result<_> {
            let (lf, status) = pqdm::cache::cached_projection(&ds, &opts, &cache, None)?;
            let frame = lf
                .collect()
                .map_err(pqdm::Error::polars("read the cached projection"))?;
            Ok((frame, status))
        })?
        .py()?;
        let status = match status {
            pqdm::cache::Status::Hit => "hit",
            pqdm::cache::Status::Miss => "miss",
        };
        Ok((ArrowStream::new(frame), status.to_string()))
    }

    /// Batches of at most `batch_size` rows, produced as they are read.
    #[pyo3(signature = (batch_size, columns=None, filters=vec![], version=None))]
    fn batches(
        &self,
        py: Python<'_>,
        batch_size: usize,
        columns: Option<Vec<String>>,
        filters: Vec<Triple>,
        version: Option<u64>,
    ) -> PyResult<Batches> {
        let opts = scan_options(columns, filters, version)?;
        let ds = self.ds.clone();
        let batches = run(py, move || ds.batches(&opts, batch_size))?.py()?;
        Ok(Batches {
            inner: Arc::new(Mutex::new(Some(batches))),
        })
    }

    /// The version that was current at `at_ms` (ms since the epoch, UTC).
    fn version_as_of(&self, py: Python<'_>, at_ms: i64) -> PyResult<u64> {
        let ds = self.ds.clone();
        run(py, move || ds.version_as_of(at_ms))?.py()
    }

    /// The latest timestamp per value of `by` (overall when empty), as JSON.
    #[pyo3(signature = (by=vec![], filters=vec![]))]
    fn latest(&self, py: Python<'_>, by: Vec<String>, filters: Vec<Triple>) -> PyResult<String> {
        let filters = from_triples(filters)?;
        let ds = self.ds.clone();
        json(&run(py, move || ds.latest(&by, &filters))?.py()?)
    }

    /// `pqdm info --json`.
    fn info(&self, py: Python<'_>) -> PyResult<String> {
        let ds = self.ds.clone();
        json(&run(py, move || ds.info())?.py()?)
    }

    /// `pqdm history --json`'s versions.
    fn history(&self, py: Python<'_>) -> PyResult<String> {
        let ds = self.ds.clone();
        json(&run(py, move || ds.history())?.py()?)
    }

    /// `pqdm compact --json`.
    #[pyo3(signature = (target_rows=None, filters=vec![], min_small_files=None))]
    fn compact(
        &self,
        py: Python<'_>,
        target_rows: Option<usize>,
        filters: Vec<Triple>,
        min_small_files: Option<usize>,
    ) -> PyResult<String> {
        let opts = CompactOptions {
            target_rows,
            filters: from_triples(filters)?,
            min_small_files,
            ..Default::default()
        };
        let ds = self.ds.clone();
        json(&run(py, move || ds.compact(&opts, &Progress::hidden()))?.py()?)
    }

    /// `pqdm verify --json` (`repair`: `--repair`).
    fn verify(&self, py: Python<'_>, repair: bool) -> PyResult<String> {
        let ds = self.ds.clone();
        json(&run(py, move || ds.verify(repair, &Progress::hidden()))?.py()?)
    }

    /// `pqdm vacuum --json`.
    fn vacuum(
        &self,
        py: Python<'_>,
        retain_versions: usize,
        retention_seconds: f64,
    ) -> PyResult<String> {
        let opts = VacuumOptions {
            retain_versions,
            retention: seconds(Some(retention_seconds))?.unwrap_or_default(),
        };
        let ds = self.ds.clone();
        json(&run(py, move || ds.vacuum(&opts))?.py()?)
    }

    /// `pqdm materialize --json`: the scan written as a new dataset at `to`.
    #[pyo3(signature = (to, columns=None, filters=vec![], version=None, partition_by=None))]
    fn materialize(
        &self,
        py: Python<'_>,
        to: PathBuf,
        columns: Option<Vec<String>>,
        filters: Vec<Triple>,
        version: Option<u64>,
        partition_by: Option<Vec<String>>,
    ) -> PyResult<String> {
        let opts = scan_options(columns, filters, version)?;
        let ds = self.ds.clone();
        let (_, report) = run(py, move || ds.materialize(&opts, &to, partition_by))?.py()?;
        json(&report)
    }

    /// `pqdm migrate --json`: flat Parquet or CSV files written into this dataset.
    #[pyo3(signature = (sources, constants=None, skip_bad=false))]
    fn migrate(
        &self,
        py: Python<'_>,
        sources: Vec<PathBuf>,
        constants: Option<BTreeMap<String, String>>,
        skip_bad: bool,
    ) -> PyResult<String> {
        let opts = WriteOptions {
            constants: constants.unwrap_or_default(),
            ..Default::default()
        };
        let ds = self.ds.clone();
        let report = run(py, move || {
            pqdm::ingest::migrate(&ds, &sources, &opts, skip_bad, &Progress::hidden())
        })?
        .py()?;
        json(&report)
    }
}

/// The next batches of a scan, read with the GIL released.
#[pyclass(module = "pqdm._pqdm", frozen)]
pub struct Batches {
    inner: Arc<Mutex<Option<pqdm::batches::Batches>>>,
}

#[pymethods]
impl Batches {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// The next batch as a stream; `None` (StopIteration) at the end.
    fn __next__(&self, py: Python<'_>) -> PyResult<Option<ArrowStream>> {
        let inner = self.inner.clone();
        let next = run(py, move || {
            let mut guard = inner.lock().unwrap_or_else(|e| e.into_inner());
            let next = guard.as_mut().and_then(Iterator::next);
            if next.is_none() {
                *guard = None;
            }
            Ok(next)
        })?
        .py()?;
        match next {
            None => Ok(None),
            Some(Ok(frame)) => Ok(Some(ArrowStream::new(frame))),
            Some(Err(e)) => Err(to_py(pqdm::Error::Polars {
                context: "read the next batch".into(),
                source: e,
            })),
        }
    }
}

fn scan_options(
    columns: Option<Vec<String>>,
    filters: Vec<Triple>,
    version: Option<u64>,
) -> PyResult<ScanOptions> {
    Ok(ScanOptions {
        columns,
        filters: from_triples(filters)?,
        version,
        ..Default::default()
    })
}

/// `seconds` as a duration: a negative or non-finite number is an `InvalidInputError`.
pub fn seconds(seconds: Option<f64>) -> PyResult<Option<std::time::Duration>> {
    seconds
        .map(|s| {
            std::time::Duration::try_from_secs_f64(s)
                .map_err(|_| invalid(format!("invalid option: {s} is no number of seconds")))
        })
        .transpose()
}

/// `path` as a location: with `options` of its own when given (so two datasets in one process
/// can reach two stores with two credentials), else the process defaults.
fn location(
    path: &std::path::Path,
    options: Option<BTreeMap<String, String>>,
) -> pqdm::Result<pqdm::location::Location> {
    match options {
        Some(options) => pqdm::location::Location::parse_with(
            path,
            &pqdm::storage::StorageOptions::new(options)?,
        ),
        None => pqdm::location::Location::parse(path),
    }
}
