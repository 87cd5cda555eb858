//! What is not one dataset's: storage options, kinds, casting a frame to a kind, the
//! projection cache folder, the scan batch size setting.

use std::collections::BTreeMap;
use std::path::PathBuf;

use polars::prelude::*;
use pqdm::cast::{CastOptions, cast_to_kind};
use pqdm::schema::KindRegistry;
use pyo3::prelude::*;

use crate::arrow::{ArrowStream, import};
use crate::blocking::run;
use crate::dataset::seconds;
use crate::errors::{IntoPy, invalid};

/// Sets the object-storage options (endpoint, region, keys, ...) for every `s3://` location
/// opened afterwards, over the `AWS_*` variables.
#[pyfunction]
pub fn set_storage_options(options: BTreeMap<String, String>) -> PyResult<()> {
    pqdm::storage::set_options(options).py()
}

/// The names of the built-in kinds.
#[pyfunction]
pub fn kinds() -> Vec<String> {
    KindRegistry::default().names()
}

/// A kind's columns and dtypes, in order.
#[pyfunction]
pub fn kind_columns(kind: &str) -> PyResult<Vec<(String, String)>> {
    let kinds = KindRegistry::default();
    let kind = kinds.get(kind).py()?;
    Ok(kind
        .columns
        .iter()
        .map(|c| (c.name.clone(), c.dtype.name().to_string()))
        .collect())
}

/// `data` cast to `kind` as a write would cast it (aliases, timestamps to milliseconds,
/// dtypes), failing on a value that does not fit unless `lenient`.
#[pyfunction]
#[pyo3(signature = (data, kind, constants=None, lenient=false))]
pub fn enforce_schema(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    kind: &str,
    constants: Option<BTreeMap<String, String>>,
    lenient: bool,
) -> PyResult<ArrowStream> {
    let frame = import(data)?;
    let kinds = KindRegistry::default();
    let kind = kinds.get(kind).py()?.clone();
    let opts = CastOptions {
        source_name: "frame".into(),
        lenient,
        constants: constants.unwrap_or_default(),
        timestamp_unit: None,
    };
    let cast = run(py, move || -> pqdm::Result<DataFrame> {
        let cast = cast_to_kind(frame.lazy(), &kind, &opts)?;
        cast.check()?;
        cast.frame
            .collect()
            .map_err(pqdm::Error::polars("cast the frame"))
    })?
    .py()?;
    Ok(ArrowStream::new(cast))
}

fn cache(
    dir: PathBuf,
    ttl_seconds: Option<f64>,
    max_bytes: Option<u64>,
) -> PyResult<pqdm::cache::Cache> {
    let mut cache = pqdm::cache::Cache::new(dir);
    cache.ttl = seconds(ttl_seconds)?;
    if let Some(b) = max_bytes {
        cache.max_bytes = b;
    }
    Ok(cache)
}

/// `pqdm cache ls --json`'s entries, as JSON.
#[pyfunction]
pub fn cache_entries(dir: PathBuf) -> PyResult<String> {
    let entries = cache(dir, None, None)?.entries().py()?;
    serde_json::to_string(&entries).map_err(|e| invalid(e.to_string()))
}

/// `pqdm cache clear`: the number of entries removed.
#[pyfunction]
pub fn cache_clear(dir: PathBuf) -> PyResult<usize> {
    cache(dir, None, None)?.clear().py()
}

/// `pqdm cache gc`: the keys of the entries removed.
#[pyfunction]
#[pyo3(signature = (dir, ttl_seconds=None, max_bytes=None))]
pub fn cache_gc(
    dir: PathBuf,
    ttl_seconds: Option<f64>,
    max_bytes: Option<u64>,
) -> PyResult<Vec<String>> {
    cache(dir, ttl_seconds, max_bytes)?.gc().py()
}

/// Rows per scan batch from `PQDM_SCAN_BATCH_SIZE`, `ARES_SCAN_BATCH_SIZE` or `pqdm.toml` (halved
/// by `PQDM_BLANK_MODE=1`), as the command line resolves it; `None` when nothing sets one.
#[pyfunction]
pub fn scan_batch_size() -> PyResult<Option<usize>> {
    let config = pqdm::config::Config::load(None).py()?;
    Ok(config.scan_batch_size(None).py()?.map(|(n, _)| n))
}

/// One plain Parquet file at `path` (no dataset, no manifest), written to a temporary name
/// beside it and renamed, so a reader never sees half a file; its rows.
#[pyfunction]
#[pyo3(signature = (data, path, compression=None, row_group_size=None, metadata=None))]
pub fn write_parquet_file(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    path: PathBuf,
    compression: Option<String>,
    row_group_size: Option<usize>,
    metadata: Option<BTreeMap<String, String>>,
) -> PyResult<usize> {
    let frame = import(data)?;
    let compression: pqdm::Compression = compression
        .as_deref()
        .map(str::parse)
        .transpose()
        .py()?
        .unwrap_or_default();
    let options = pqdm::write::parquet_options(
        compression,
        row_group_size.unwrap_or(pqdm::options::DEFAULT_ROW_GROUP_SIZE),
        &metadata.unwrap_or_default(),
    );
    let rows = frame.height();
    run(py, move || -> pqdm::Result<()> {
        let name = path
            .file_name()
            .ok_or_else(|| pqdm::Error::Options(format!("{}: not a file path", path.display())))?;
        let tmp = path.with_file_name(format!(
            ".{}.tmp-{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        let written = pqdm::write::sink_file(frame.lazy(), &tmp, options)
            .and_then(|()| std::fs::rename(&tmp, &path).map_err(pqdm::Error::io(&path)));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written
    })?
    .py()?;
    Ok(rows)
}

/// `pqdm adopt --json`: a manifest for a hive dataset written by other tools, in place.
#[pyfunction]
#[pyo3(signature = (path, kind=None))]
pub fn adopt(py: Python<'_>, path: PathBuf, kind: Option<String>) -> PyResult<String> {
    let kinds = KindRegistry::default();
    let kind = kind
        .as_deref()
        .map(|k| kinds.get(k))
        .transpose()
        .py()?
        .cloned();
    let ds = run(py, move || {
        pqdm::maintain::adopt::adopt(&path, kind.as_ref(), &BTreeMap::new())
    })?
    .py()?;
    let m = ds.header();
    Ok(serde_json::json!({ "version": m.version, "files": m.file_count, "rows": m.total_rows, "kind": m.kind }).to_string())
}
