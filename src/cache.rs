//! The projection cache: a scan's result kept as Parquet under a cache folder (outside the
//! dataset), keyed by a blake3 hash of the dataset's identity, its manifest version, the
//! columns, the normalised filters and the transform's name. A hit reads only the cached file;
//! a new commit changes the version and so the key; entries expire after a TTL; a size cap
//! evicts the least recently used.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::scan::ScanOptions;
use crate::write::{parquet_options, scan_files, sink_file};

/// Default size cap of a cache folder (10 GiB).
pub const DEFAULT_MAX_BYTES: u64 = 10 << 30;

/// A cache folder and its policy.
#[derive(Clone, Debug)]
pub struct Cache {
    dir: PathBuf,
    /// Entries older than this are recomputed (and removed by `gc`).
    pub ttl: Option<Duration>,
    /// Total bytes kept; least recently used entries go first.
    pub max_bytes: u64,
}

/// What the cache knows of one entry (`<key>.json` beside `<key>.parquet`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Entry {
    /// The key (blake3 hex).
    pub key: String,
    /// The dataset's base folder (canonical).
    pub dataset: String,
    /// The manifest version the entry was computed from.
    pub version: u64,
    /// The columns.
    pub columns: Option<Vec<String>>,
    /// The normalised filters.
    pub filters: Vec<String>,
    /// The transform's name.
    pub transform: Option<String>,
    /// Rows in the entry.
    pub rows: u64,
    /// Bytes of the entry's Parquet file.
    pub bytes: u64,
    /// Creation time (ms since the epoch).
    pub created: u64,
    /// Last hit (ms since the epoch).
    pub last_used: u64,
}

/// Whether a lookup was served from the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Served from the cache; the dataset's data files were not read.
    Hit,
    /// Computed from the dataset and stored.
    Miss,
}

/// A named transform applied to the scan before caching (part of the key).
pub struct Transform<'a> {
    /// The name that keys it: change it when the transform changes.
    pub name: &'a str,
    /// The transform.
    pub apply: &'a dyn Fn(LazyFrame) -> LazyFrame,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Cache {
    /// The cache in `dir` (created when first written) with no TTL and the default size cap.
    pub fn new(dir: impl Into<PathBuf>) -> Cache {
        Cache {
            dir: dir.into(),
            ttl: None,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }

    /// The cache folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn data_path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.parquet"))
    }

    fn meta_path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    fn write_entry(&self, e: &Entry) -> Result<()> {
        let path = self.meta_path(&e.key);
        let tmp = self
            .dir
            .join(format!(".{}.json.{}.tmp", e.key, std::process::id()));
        fs::write(
            &tmp,
            serde_json::to_vec_pretty(e).expect("entry serialises"),
        )
        .map_err(Error::io(&tmp))?;
        fs::rename(&tmp, &path).map_err(Error::io(&path))
    }

    fn read_entry(&self, key: &str) -> Option<Entry> {
        let e: Entry = serde_json::from_slice(&fs::read(self.meta_path(key)).ok()?).ok()?;
        self.data_path(key).is_file().then_some(e)
    }

    fn expired(&self, e: &Entry) -> bool {
        self.ttl
            .is_some_and(|ttl| now().saturating_sub(e.created) >= ttl.as_millis() as u64)
    }

    /// Every entry, most recently used first.
    pub fn entries(&self) -> Result<Vec<Entry>> {
        let mut out = vec![];
        let Ok(dir) = fs::read_dir(&self.dir) else {
            return Ok(out);
        };
        for item in dir.flatten() {
            let name = item.file_name().to_string_lossy().into_owned();
            if let Some(key) = name.strip_suffix(".json").filter(|k| !k.starts_with('.'))
                && let Some(e) = self.read_entry(key)
            {
                out.push(e);
            }
        }
        out.sort_by(|a, b| {
            b.last_used
                .cmp(&a.last_used)
                .then(b.created.cmp(&a.created))
        });
        Ok(out)
    }

    fn remove(&self, key: &str) -> Result<()> {
        for p in [self.meta_path(key), self.data_path(key)] {
            match fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&p)(e)),
            }
        }
        Ok(())
    }

    /// Removes every entry; returns how many.
    pub fn clear(&self) -> Result<usize> {
        let entries = self.entries()?;
        for e in &entries {
            self.remove(&e.key)?;
        }
        Ok(entries.len())
    }

    /// Removes expired entries, entries of versions their dataset has moved past, leftovers of
    /// interrupted writes, and the least recently used entries past the size cap. Returns the
    /// removed keys.
    pub fn gc(&self) -> Result<Vec<String>> {
        let mut removed = vec![];
        if let Ok(dir) = fs::read_dir(&self.dir) {
            for item in dir.flatten() {
                if item.file_name().to_string_lossy().ends_with(".tmp") {
                    let _ = fs::remove_file(item.path());
                }
            }
        }
        let mut kept_bytes = 0;
        for e in self.entries()? {
            let current = crate::manifest::Store::new(&e.dataset)
                .ok()
                .and_then(|s| s.load_current().ok().flatten())
                .map(|m| m.version);
            let stale = current.is_some_and(|v| v != e.version);
            if self.expired(&e) || stale || kept_bytes + e.bytes > self.max_bytes {
                self.remove(&e.key)?;
                removed.push(e.key);
            } else {
                kept_bytes += e.bytes;
            }
        }
        Ok(removed)
    }

    /// The key of a scan of `ds` at `version`.
    pub fn key(
        &self,
        ds: &Dataset,
        version: u64,
        scan: &ScanOptions,
        transform: Option<&str>,
    ) -> (String, Vec<String>) {
        let identity = fs::canonicalize(ds.base()).unwrap_or_else(|_| ds.base().to_path_buf());
        let mut filters: Vec<String> = scan
            .filters
            .iter()
            .map(|f| format!("{} {} {:?}", f.column, f.op, f.raw))
            .collect();
        filters.extend(scan.exprs.iter().map(|e| format!("expr {e:?}")));
        filters.sort();
        filters.dedup();
        let mut h = blake3::Hasher::new();
        h.update(identity.to_string_lossy().as_bytes());
        h.update(&version.to_le_bytes());
        h.update(format!("{:?}", scan.columns).as_bytes());
        for f in &filters {
            h.update(f.as_bytes());
            h.update(b"\0");
        }
        h.update(format!("{transform:?}").as_bytes());
        (h.finalize().to_hex().to_string(), filters)
    }
}

/// A scan of `ds` through `cache`: a hit returns a `LazyFrame` over the cached file without
/// reading the dataset's data files; a miss computes the scan (and `transform`), stores it
/// atomically and evicts past the size cap.
pub fn cached_projection(
    ds: &Dataset,
    scan: &ScanOptions,
    cache: &Cache,
    transform: Option<&Transform>,
) -> Result<(LazyFrame, Status)> {
    let m = match scan.version {
        Some(v) => ds.manifest_at(Some(v))?,
        None => ds.refresh()?,
    };
    let (key, filters) = cache.key(ds, m.version, scan, transform.map(|t| t.name));
    let data = cache.data_path(&key);
    if let Some(mut e) = cache.read_entry(&key).filter(|e| !cache.expired(e)) {
        e.last_used = now();
        cache.write_entry(&e)?;
        log::info!("cache hit {key} for {}", ds.base().display());
        return Ok((scan_files(&[data], false)?, Status::Hit));
    }
    fs::create_dir_all(&cache.dir).map_err(Error::io(&cache.dir))?;
    let mut lf = ds.scan(&ScanOptions {
        version: Some(m.version),
        ..scan.clone()
    })?;
    if let Some(t) = transform {
        lf = (t.apply)(lf);
    }
    let tmp = cache
        .dir
        .join(format!(".{key}.parquet.{}.tmp", std::process::id()));
    sink_file(
        lf,
        &tmp,
        parquet_options(
            crate::Compression::Lz4,
            crate::options::DEFAULT_ROW_GROUP_SIZE,
            &Default::default(),
        ),
    )?;
    let rows = crate::footer::read_footer(&tmp, None)?.rows;
    let bytes = fs::metadata(&tmp).map_err(Error::io(&tmp))?.len();
    fs::rename(&tmp, &data).map_err(Error::io(&data))?;
    let t = now();
    cache.write_entry(&Entry {
        key: key.clone(),
        dataset: fs::canonicalize(ds.base())
            .unwrap_or_else(|_| ds.base().to_path_buf())
            .display()
            .to_string(),
        version: m.version,
        columns: scan.columns.clone(),
        filters,
        transform: transform.map(|t| t.name.to_string()),
        rows,
        bytes,
        created: t,
        last_used: t,
    })?;
    // Evict past the cap, never the entry just written.
    let mut total = 0;
    for e in cache.entries()? {
        total += e.bytes;
        if total > cache.max_bytes && e.key != key {
            cache.remove(&e.key)?;
            total -= e.bytes;
        }
    }
    log::info!(
        "cache miss {key} for {}: {rows} rows stored",
        ds.base().display()
    );
    Ok((scan_files(&[data], false)?, Status::Miss))
}
