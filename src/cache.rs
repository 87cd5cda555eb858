//! The projection cache: a scan's result kept as Parquet under a cache folder (outside the
//! dataset), keyed by a blake3 hash of the dataset's identity, its manifest version and the
//! manifest's own hash (so a dataset deleted and made again, or rolled back to an older copy,
//! never meets the entries of its namesake), the columns, the normalised filters and the
//! transform's name. A dataset without a manifest (a folder written by other tools) is keyed
//! by its listing instead: every data file's path, size and modification stamp
//! ([`crate::foreign::fingerprint`]), with the partition dtypes its scan used. A hit reads only
//! the cached file; a new commit (or any file added, removed or rewritten in a folder without a
//! manifest) changes the key; entries expire after a TTL; a size cap evicts the least recently
//! used. Time comes from the cache's [`Clock`] (the system's, unless a test sets another).
//!
//! Entries are trusted no further than their folder: an entry is only ever touched under the
//! name its key gives (64 hex digits), and an entry file whose recorded key is not its own name
//! is an error naming the file, before anything is removed.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::scan::ScanOptions;
use crate::write::{parquet_options, scan_files, sink_file};

/// Default size cap of a cache folder (10 GiB).
pub const DEFAULT_MAX_BYTES: u64 = 10 << 30;

/// Where the cache reads the time, in milliseconds since the epoch: its TTL and its
/// least-recently-used order follow it.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now, in milliseconds since the epoch.
    fn now_ms(&self) -> u64;
}

/// The system clock (the default).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }
}

/// A clock that stands still until advanced: tests order hits and expiries with it instead of
/// sleeping.
///
/// ```
/// use std::{sync::Arc, time::Duration};
/// use pqdm::cache::{Cache, ManualClock};
/// let clock = Arc::new(ManualClock::new(1_000));
/// let cache = Cache::new("target/cache").with_clock(clock.clone());
/// clock.advance(Duration::from_secs(60)); // every entry is now a minute older
/// # let _ = cache;
/// ```
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock reading `ms` (milliseconds since the epoch).
    pub fn new(ms: u64) -> ManualClock {
        ManualClock(AtomicU64::new(ms))
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(t.saturating_add(by))
            });
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A cache folder and its policy.
#[derive(Clone, Debug)]
pub struct Cache {
    dir: PathBuf,
    /// Entries older than this are recomputed (and removed by `gc`).
    pub ttl: Option<Duration>,
    /// Total bytes kept; least recently used entries go first.
    pub max_bytes: u64,
    clock: Arc<dyn Clock>,
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
    /// The blake3 hash of that version's manifest ([`manifest_hash`]); empty in entries of older
    /// pqdm releases, which are therefore never current.
    #[serde(default)]
    pub manifest_hash: String,
    /// For a dataset without a manifest, the [`crate::foreign::fingerprint`] of its files
    /// (`None`: the dataset had a manifest, or the entry is an older release's).
    #[serde(default)]
    pub listing: Option<String>,
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

/// The blake3 hash (hex) of a manifest: it differs between two datasets that reached the same
/// version number separately (their files, names and commit times differ), so the cache cannot
/// take one for the other.
pub fn manifest_hash(m: &Manifest) -> String {
    let bytes = m.to_json();
    blake3::hash(&bytes).to_hex().to_string()
}

/// Whether `name` is a cache key: a blake3 hash in hex, so one plain file name in the folder.
fn is_key(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Cache {
    /// The cache in `dir` (created when first written) with no TTL and the default size cap.
    pub fn new(dir: impl Into<PathBuf>) -> Cache {
        Cache {
            dir: dir.into(),
            ttl: None,
            max_bytes: DEFAULT_MAX_BYTES,
            clock: Arc::new(SystemClock),
        }
    }

    /// The same cache reading the time from `clock` (tests; the default is [`SystemClock`]).
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Cache {
        Cache { clock, ..self }
    }

    fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    /// The cache folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Refuses a cache folder on object storage: the cache is files on this machine, renamed
    /// into place (an `s3://` folder once made a local folder named `s3:` and left a temporary
    /// object in the bucket on every scan).
    fn check_local(&self) -> Result<()> {
        if crate::storage::is_remote(&self.dir) {
            return Err(Error::Options(format!(
                "cache folder {}: the cache keeps its files on this machine; name a local folder",
                self.dir.display()
            )));
        }
        Ok(())
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

    /// The entry stored under `key`; `None` when there is none (or it is unreadable, as after a
    /// crash). An entry that names another key than its own is refused: its key would otherwise
    /// become the path of a later rewrite or removal.
    fn read_entry(&self, key: &str) -> Result<Option<Entry>> {
        let path = self.meta_path(key);
        let Some(e) = fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Entry>(&bytes).ok())
        else {
            return Ok(None);
        };
        if e.key != key {
            return Err(Error::Input {
                path,
                message: format!(
                    "cache entry names the key {}, not its own file name: refusing to touch it \
                     (remove the file by hand if it is not yours)",
                    crate::error::clip(&e.key)
                ),
            });
        }
        Ok(self.data_path(key).is_file().then_some(e))
    }

    fn expired(&self, e: &Entry) -> bool {
        self.ttl
            .is_some_and(|ttl| self.now().saturating_sub(e.created) >= ttl.as_millis() as u64)
    }

    /// Every entry, most recently used first. Only files named `<key>.json`, a key being 64 hex
    /// digits, are entries; one whose content names another key is an error naming the file.
    pub fn entries(&self) -> Result<Vec<Entry>> {
        self.check_local()?;
        let mut out = vec![];
        let Ok(dir) = fs::read_dir(&self.dir) else {
            return Ok(out);
        };
        for item in dir.flatten() {
            let name = item.file_name().to_string_lossy().into_owned();
            if let Some(key) = name.strip_suffix(".json").filter(|k| is_key(k))
                && let Some(e) = self.read_entry(key)?
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

    /// Removes every entry; returns how many. A malformed entry (see [`Cache::entries`]) stops it
    /// before anything is removed.
    pub fn clear(&self) -> Result<usize> {
        let entries = self.entries()?;
        for e in &entries {
            self.remove(&e.key)?;
        }
        Ok(entries.len())
    }

    /// Removes expired entries, entries of versions their dataset has moved past (or, for a
    /// dataset without a manifest, of a listing its files no longer match), leftovers of
    /// interrupted writes, and the least recently used entries past the size cap. Returns the
    /// removed keys.
    pub fn gc(&self) -> Result<Vec<String>> {
        self.check_local()?;
        let mut removed = vec![];
        if let Ok(dir) = fs::read_dir(&self.dir) {
            for item in dir.flatten() {
                if item.file_name().to_string_lossy().ends_with(".tmp") {
                    let _ = fs::remove_file(item.path());
                }
            }
        }
        let mut kept_bytes = 0;
        // Each dataset is looked at once, however many entries it has.
        let mut datasets: std::collections::HashMap<String, Now> = Default::default();
        for e in self.entries()? {
            let stale = datasets
                .entry(e.dataset.clone())
                .or_insert_with(|| Now::of(&e.dataset))
                .outdates(&e);
            if self.expired(&e) || stale || kept_bytes + e.bytes > self.max_bytes {
                self.remove(&e.key)?;
                removed.push(e.key);
            } else {
                kept_bytes += e.bytes;
            }
        }
        Ok(removed)
    }

    /// The key of a scan of `ds` at the version `manifest` describes.
    pub fn key(
        &self,
        ds: &Dataset,
        manifest: &Manifest,
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
        h.update(&manifest.version.to_le_bytes());
        h.update(manifest_hash(manifest).as_bytes());
        h.update(format!("{:?}", ds.listing_fingerprint()).as_bytes());
        h.update(format!("{:?}", scan.columns).as_bytes());
        for f in &filters {
            h.update(f.as_bytes());
            h.update(b"\0");
        }
        h.update(format!("{transform:?}").as_bytes());
        (h.finalize().to_hex().to_string(), filters)
    }
}

/// What a dataset is now, as far as its cache entries go.
enum Now {
    /// It has a manifest, of this [`manifest_hash`].
    Manifest(String),
    /// It has none; its files have this [`crate::foreign::fingerprint`].
    Listing(String),
    /// Its (local) folder is gone.
    Gone,
    /// It cannot be read now (a bucket out of reach, a damaged manifest): entries stay.
    Unknown,
}

impl Now {
    fn of(dataset: &str) -> Now {
        let Ok(location) = crate::location::Location::parse(dataset) else {
            return Now::Unknown;
        };
        match crate::txn::Store::at(&location).load_current() {
            Ok(Some(m)) => Now::Manifest(manifest_hash(&m)),
            Ok(None) if location.is_missing() => Now::Gone,
            Ok(None) => crate::foreign::fingerprint(&location).map_or(Now::Unknown, Now::Listing),
            Err(_) => Now::Unknown,
        }
    }

    /// Whether `e` can never be hit again: its dataset has another manifest than the one it
    /// was computed from, or has none and its files no longer match the entry's listing (or
    /// the entry, of an older release, recorded none), or is gone.
    fn outdates(&self, e: &Entry) -> bool {
        match self {
            Now::Manifest(hash) => *hash != e.manifest_hash,
            Now::Listing(now) => e.listing.as_deref() != Some(now.as_str()),
            Now::Gone => true,
            Now::Unknown => false,
        }
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
    cache.check_local()?;
    let m = match ds.version_to_read(scan)? {
        Some(v) => ds.manifest_at(Some(v))?,
        None => ds.refresh()?,
    };
    let (key, filters) = cache.key(ds, &m, scan, transform.map(|t| t.name));
    let data = cache.data_path(&key);
    if let Some(mut e) = cache.read_entry(&key)?.filter(|e| !cache.expired(e)) {
        e.last_used = cache.now();
        cache.write_entry(&e)?;
        log::info!("cache hit {key} for {}", ds.base().display());
        return Ok((scan_files(&[data], false)?, Status::Hit));
    }
    fs::create_dir_all(&cache.dir).map_err(Error::io(&cache.dir))?;
    let mut lf = ds.scan(&ScanOptions {
        version: Some(m.version),
        as_of: None,
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
    let t = cache.now();
    cache.write_entry(&Entry {
        key: key.clone(),
        dataset: fs::canonicalize(ds.base())
            .unwrap_or_else(|_| ds.base().to_path_buf())
            .display()
            .to_string(),
        version: m.version,
        manifest_hash: manifest_hash(&m),
        listing: ds.listing_fingerprint().map(str::to_string),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hex_hashes_are_keys() {
        assert!(is_key(&blake3::hash(b"x").to_hex()));
        for bad in [
            "",
            "../../x",
            "/etc/passwd",
            &"a".repeat(63),
            &format!("{}/", "a".repeat(63)),
        ] {
            assert!(!is_key(bad), "{bad:?}");
        }
    }
}
