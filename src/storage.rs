//! Object storage: datasets and sources at `s3://bucket/prefix` (any S3-compatible store).
//!
//! One [`Remote`] per location, configured from (later wins) `~/.aws/credentials` and
//! `~/.aws/config` (profile `AWS_PROFILE`, else `default`), the `AWS_*` environment variables,
//! and `--storage-option key=value` ([`set_options`]). The same settings are handed to Polars'
//! own cloud reads ([`cloud_options`]), so a scan and a manifest read talk to the same store.
//! All listing, manifest reads and writes, uploads and deletes go through the `object_store`
//! crate; pqdm writes no HTTP of its own.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock};

use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart};
use polars::prelude::cloud::CloudOptions;

use crate::error::{Error, Result};

/// Options that are pqdm's own, not the store client's.
const SINGLE_WRITER: &str = "single_writer";
/// Files up to this size are uploaded with one PUT; larger ones in parts of this size.
const PART_BYTES: usize = 32 << 20;
/// Requests one batch operation (uploads, copies) keeps in flight: object stores answer in tens of
/// milliseconds, so throughput comes from concurrency, not from this machine's cores.
pub const IN_FLIGHT: usize = 16;

/// Whether `path` names an object-store location (`s3://` or `s3a://`) rather than a local path.
pub fn is_remote(path: &Path) -> bool {
    path.to_str()
        .is_some_and(|s| s.starts_with("s3://") || s.starts_with("s3a://"))
}

/// Polars settings for scans of object storage, applied by the binary (before Polars starts) when
/// an argument names a remote location and the variable is not already set.
///
/// Polars opens as many files at once as it has pipelines (the core count): right for a local
/// disk, too few for a store that answers each request in tens of milliseconds. With these, a
/// scan of 1,000 objects on a store 20 ms away takes 3.7 s instead of 9.0 s (`scripts/bench_s3.py`).
/// Library users set them in their own environment the same way.
pub const REMOTE_POLARS_ENV: [(&str, &str); 2] = [
    ("POLARS_MAX_CONCURRENT_SCANS", "16"),
    ("POLARS_NUM_READERS_PRE_INIT", "32"),
];

/// Whether any of `args` (command-line arguments) names a remote location.
///
/// ```
/// assert!(pqdm::storage::mentions_remote(["scan", "--dataset=s3://desk/klines"]));
/// assert!(!pqdm::storage::mentions_remote(["scan", "data/klines"]));
/// ```
pub fn mentions_remote<I, S>(args: I) -> bool
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    args.into_iter().any(|a| {
        a.as_ref()
            .to_str()
            .is_some_and(|s| s.contains("s3://") || s.contains("s3a://"))
    })
}

/// Settings for object-store locations: the S3 client's keys (`endpoint`, `region`,
/// `access_key_id`, `secret_access_key`, `session_token`, `allow_http`, `skip_signature`,
/// `conditional_put`, or any key of `object_store`'s `AmazonS3ConfigKey`) and pqdm's own
/// `single_writer`. They override `~/.aws` and the `AWS_*` variables for the locations opened
/// with them, so one program can reach two buckets with two credentials.
///
/// ```
/// use pqdm::storage::StorageOptions;
/// let opts = StorageOptions::new([("region", "eu-west-1"), ("allow_http", "true")])?;
/// assert!(StorageOptions::new([("regoin", "eu-west-1")]).is_err());
/// # Ok::<(), pqdm::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StorageOptions {
    entries: BTreeMap<String, String>,
}

impl StorageOptions {
    /// Options from `key = value` pairs; an unknown key is an error naming it.
    pub fn new<K, V>(entries: impl IntoIterator<Item = (K, V)>) -> Result<StorageOptions>
    where
        K: Into<String>,
        V: Into<String>,
    {
        let entries: BTreeMap<String, String> = entries
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        for key in entries.keys() {
            if key != SINGLE_WRITER && parse_key(key).is_none() {
                return Err(Error::Options(format!(
                    "unknown storage option `{key}` (known: endpoint, region, access_key_id, \
                     secret_access_key, session_token, allow_http, skip_signature, conditional_put, \
                     {SINGLE_WRITER}, and the other keys of object_store's AmazonS3ConfigKey)"
                )));
            }
        }
        Ok(StorageOptions { entries })
    }

    /// The options locations get when none are given: those of [`set_options`] (none until
    /// it is called).
    pub fn defaults() -> StorageOptions {
        defaults().lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

fn defaults() -> &'static Mutex<StorageOptions> {
    static OPTIONS: OnceLock<Mutex<StorageOptions>> = OnceLock::new();
    OPTIONS.get_or_init(Default::default)
}

/// Sets the storage options that locations opened without options of their own get (the
/// command line's `--storage-option`); see [`StorageOptions`]. Unknown keys are an error.
pub fn set_options(options: BTreeMap<String, String>) -> Result<()> {
    *defaults().lock().unwrap_or_else(|e| e.into_inner()) = StorageOptions::new(options)?;
    Ok(())
}

fn parse_key(key: &str) -> Option<AmazonS3ConfigKey> {
    let lower = key.to_ascii_lowercase();
    AmazonS3ConfigKey::from_str(&lower)
        .or_else(|_| AmazonS3ConfigKey::from_str(&format!("aws_{lower}")))
        .ok()
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("pqdm-io")
            .enable_all()
            .build()
            .expect("the I/O runtime starts")
    })
}

/// Runs `f` on pqdm's I/O runtime and waits for it. Called from inside another tokio runtime
/// (a library user's async code), where blocking that runtime's thread on ours would panic, it
/// waits on a thread of its own instead.
fn block<F>(f: F) -> F::Output
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    if tokio::runtime::Handle::try_current().is_err() {
        return runtime().block_on(f);
    }
    std::thread::scope(|s| {
        s.spawn(|| runtime().block_on(f))
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// The locations opened so far, by URL and options: each client (and its connection pool) is
/// made once per process.
type Opened = BTreeMap<(String, StorageOptions), Arc<Remote>>;

fn remotes() -> &'static Mutex<Opened> {
    static REMOTES: OnceLock<Mutex<Opened>> = OnceLock::new();
    REMOTES.get_or_init(Default::default)
}

/// Polars' cloud options for reading `path` (a file or folder): `None` for a local path. The
/// location opened last whose URL holds `path` answers, with the options it was opened with
/// (a dataset's files are read with the dataset's options); a path under no open location
/// opens its folder with the default options.
pub fn cloud_options(path: &Path) -> Result<Option<CloudOptions>> {
    if !is_remote(path) {
        return Ok(None);
    }
    match opened_remote(path).map(|r| r.cloud.clone()) {
        Some(cloud) => Ok(Some(cloud)),
        None => match object(path) {
            Ok((remote, _)) => Ok(Some(remote.cloud.clone())),
            Err(_) => Ok(Some(Remote::open(path)?.cloud.clone())),
        },
    }
}

/// The location opened last whose URL holds `path` (a file or folder; `s3a://` read as
/// `s3://`), if any is open.
fn opened_remote(path: &Path) -> Option<Arc<Remote>> {
    let text = path.to_string_lossy().replacen("s3a://", "s3://", 1);
    remotes()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .filter(|r| text == r.url || text.starts_with(&format!("{}/", r.url)))
        .max_by_key(|r| (r.url.len(), r.opened))
        .cloned()
}

/// The URLs Polars should read `files` (a dataset's, each with the size its manifest records)
/// by: on object storage, under which no size needs asking (see [`crate::known_sizes`]);
/// local paths as they are.
pub(crate) fn scan_urls(files: &[PathBuf], sizes: &[u64]) -> Vec<PathBuf> {
    let Some(first) = files.first().filter(|f| is_remote(f)) else {
        return files.to_vec();
    };
    match opened_remote(first) {
        Some(r) => {
            let bucket = r.url.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
            crate::known_sizes::read_urls(&r.store, &bucket, files, sizes)
        }
        None => files.to_vec(),
    }
}

/// The object `url` names (`s3://bucket/path/file`): the location of its folder, and its name
/// there. A bucket alone, or a URL ending in `/`, names no object.
pub fn object(url: &Path) -> Result<(Arc<Remote>, String)> {
    let text = url.to_string_lossy();
    let scheme = text.find("://").map_or(0, |i| i + 3);
    match text[scheme..].rsplit_once('/') {
        Some((folder, name)) if !folder.is_empty() && !name.is_empty() => {
            let remote = Remote::open(Path::new(&format!("{}{folder}", &text[..scheme])))?;
            Ok((remote, name.to_string()))
        }
        _ => Err(Error::Options(format!(
            "{text}: name an object (s3://bucket/path/file), not a bucket or folder"
        ))),
    }
}

/// One object-store location (a bucket and a prefix) and the client that reaches it.
pub struct Remote {
    store: Arc<dyn ObjectStore>,
    url: String,
    prefix: String,
    cloud: CloudOptions,
    single_writer: bool,
    /// When it was opened (a counter): of two openings of one URL, the later one's options
    /// read the files under it.
    opened: u64,
    /// Whether the store honours conditional puts, found out on the first one.
    conditional_puts_work: OnceLock<std::result::Result<(), String>>,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url)
    }
}

/// Reads one profile's `key = value` lines from an INI file of `~/.aws`.
fn aws_profile_file(file: &Path, section: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Ok(text) = std::fs::read_to_string(file) else {
        return out;
    };
    let mut inside = false;
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.trim() == section;
        } else if inside && let Some((k, v)) = line.split_once('=') {
            out.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    out
}

/// The client settings, from `~/.aws`, the environment and `options` (later wins).
fn settings(options: &StorageOptions) -> (Vec<(AmazonS3ConfigKey, String)>, bool) {
    let mut cfg: Vec<(AmazonS3ConfigKey, String)> = vec![];
    let profile = std::env::var("AWS_PROFILE")
        .or_else(|_| std::env::var("AWS_DEFAULT_PROFILE"))
        .unwrap_or_else(|_| "default".into());
    if let Some(home) = std::env::var_os("HOME").map(PathBuf::from) {
        let dir = std::env::var_os("AWS_CONFIG_FILE")
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(".aws/config"));
        let section = if profile == "default" {
            "default".to_string()
        } else {
            format!("profile {profile}")
        };
        let creds = std::env::var_os("AWS_SHARED_CREDENTIALS_FILE")
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(".aws/credentials"));
        for (k, v) in aws_profile_file(&dir, &section)
            .into_iter()
            .chain(aws_profile_file(&creds, &profile))
        {
            if let Some(key) = parse_key(&k) {
                cfg.push((key, v));
            }
        }
    }
    for (k, v) in std::env::vars() {
        if k.starts_with("AWS_")
            && let Ok(key) = AmazonS3ConfigKey::from_str(&k.to_ascii_lowercase())
        {
            cfg.push((key, v));
        }
    }
    let mut single_writer = false;
    for (k, v) in &options.entries {
        if k == SINGLE_WRITER {
            single_writer = v == "true" || v == "1";
        } else if let Some(key) = parse_key(k) {
            cfg.push((key, v.clone()));
        }
    }
    (cfg, single_writer)
}

fn has(cfg: &[(AmazonS3ConfigKey, String)], keys: &[AmazonS3ConfigKey]) -> bool {
    cfg.iter().any(|(k, v)| keys.contains(k) && !v.is_empty())
}

impl Remote {
    /// The location at `url` (`s3://bucket/prefix`) with the default options
    /// ([`StorageOptions::defaults`]), opened once per process and shared.
    pub fn open(url: &Path) -> Result<Arc<Remote>> {
        Remote::open_with(url, &StorageOptions::defaults())
    }

    /// The location at `url` (`s3://bucket/prefix`) with `options`, opened once per process
    /// (per URL and options) and shared.
    pub fn open_with(url: &Path, options: &StorageOptions) -> Result<Arc<Remote>> {
        let text = url.to_string_lossy();
        let rest = text
            .strip_prefix("s3://")
            .or_else(|| text.strip_prefix("s3a://"))
            .ok_or_else(|| Error::Options(format!("{text} is not an s3:// location")))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let prefix = prefix.trim_matches('/').to_string();
        if bucket.is_empty() {
            return Err(Error::Options(format!("{text}: no bucket named")));
        }
        let url = if prefix.is_empty() {
            format!("s3://{bucket}")
        } else {
            format!("s3://{bucket}/{prefix}")
        };
        let cache_key = (url.clone(), options.clone());
        if let Some(r) = remotes()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&cache_key)
        {
            return Ok(r.clone());
        }
        let (cfg, single_writer) = settings(options);
        let fail = |message: String| Error::Storage {
            location: url.clone(),
            message,
        };
        if !has(
            &cfg,
            &[AmazonS3ConfigKey::Region, AmazonS3ConfigKey::DefaultRegion],
        ) {
            return Err(fail(
                "no region: set AWS_REGION, `region` in ~/.aws/config, or the storage option `region`"
                    .into(),
            ));
        }
        let signed = !cfg
            .iter()
            .any(|(k, v)| *k == AmazonS3ConfigKey::SkipSignature && v == "true");
        if signed
            && !has(
                &cfg,
                &[
                    AmazonS3ConfigKey::AccessKeyId,
                    AmazonS3ConfigKey::WebIdentityTokenFile,
                    AmazonS3ConfigKey::ContainerCredentialsRelativeUri,
                    AmazonS3ConfigKey::ContainerCredentialsFullUri,
                ],
            )
        {
            return Err(fail(
                "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile in \
                 ~/.aws/credentials, the storage options `access_key_id` and `secret_access_key`, \
                 or `skip_signature=true` for a public bucket"
                    .into(),
            ));
        }
        let mut builder = AmazonS3Builder::new().with_bucket_name(bucket);
        for (k, v) in &cfg {
            builder = builder.with_config(*k, v);
        }
        let store = builder.build().map_err(|e| fail(e.to_string()))?;
        let cloud = CloudOptions::default().with_aws(cfg);
        let remote = Arc::new(Remote {
            store: Arc::new(store),
            url: url.clone(),
            prefix,
            cloud,
            single_writer,
            opened: {
                static OPENED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
                OPENED.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            },
            conditional_puts_work: OnceLock::new(),
        });
        remotes()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(cache_key, remote.clone());
        Ok(remote)
    }

    /// The location, `s3://bucket/prefix` (no trailing slash).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Polars' options for reading this location.
    pub fn cloud(&self) -> &CloudOptions {
        &self.cloud
    }

    /// Whether the user declared that this location has one writer at a time
    /// (`--storage-option single_writer=true`), for stores without conditional puts.
    pub fn single_writer(&self) -> bool {
        self.single_writer
    }

    /// The object key of `rel`, taken literally. `Key::from` would percent-encode `%`, `~`, `[`
    /// and more a second time (pqdm's partition folders are escaped already, `BTC%2FUSDT`), while
    /// Polars reads the literal key: both sides must mean the same bytes, as on a disk.
    fn key(&self, rel: &str) -> Result<Key> {
        let full = if self.prefix.is_empty() {
            rel.to_string()
        } else {
            format!("{}/{rel}", self.prefix)
        };
        Key::parse(&full).map_err(|e| Error::Storage {
            location: format!("{}/{rel}", self.url),
            message: format!("not a valid object key: {e}"),
        })
    }

    fn err(&self, rel: &str, e: object_store::Error) -> Error {
        Error::ObjectStore {
            location: format!("{}/{rel}", self.url)
                .trim_end_matches('/')
                .to_string(),
            source: e,
        }
    }

    /// The object's bytes; `None` when there is no such object.
    pub fn get(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        let key = self.key(rel)?;
        block(async {
            match self.store.get(&key).await {
                Ok(r) => r.bytes().await.map(|b| Some(b.to_vec())),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .map_err(|e| self.err(rel, e))
    }

    /// The object's size; `None` when there is no such object.
    pub fn head(&self, rel: &str) -> Result<Option<u64>> {
        match block(self.store.head(&self.key(rel)?)) {
            Ok(m) => Ok(Some(m.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err(rel, e)),
        }
    }

    /// Writes the object (replacing any).
    pub fn put(&self, rel: &str, bytes: Vec<u8>) -> Result<()> {
        block(self.store.put(&self.key(rel)?, PutPayload::from(bytes)))
            .map(|_| ())
            .map_err(|e| self.err(rel, e))
    }

    /// Creates the object only if there is none (a conditional put, `If-None-Match: *`);
    /// `false` when another writer created it first. With `single_writer`, a HEAD then a PUT.
    /// The first call per location checks that the store honours the condition at all.
    pub fn put_new(&self, rel: &str, bytes: Vec<u8>) -> Result<bool> {
        if self.single_writer {
            if self.head(rel)?.is_some() {
                return Ok(false);
            }
            self.put(rel, bytes)?;
            return Ok(true);
        }
        if let Err(why) = self
            .conditional_puts_work
            .get_or_init(|| self.probe_conditional_put())
        {
            return Err(Error::Storage {
                location: format!("{}/{rel}", self.url),
                message: format!(
                    "this store does not do conditional puts ({why}), which pqdm needs so that two \
                     writers cannot both commit the same version; nothing was committed. If only \
                     one process ever writes here, set the storage option {SINGLE_WRITER}=true"
                ),
            });
        }
        self.create(&self.key(rel)?, bytes)
            .map_err(|e| self.err(rel, e))?
            .map_err(|e| Error::Storage {
                location: format!("{}/{rel}", self.url),
                message: e,
            })
    }

    /// One conditional put: `Ok(Ok(created))`, or `Ok(Err(why))` when the store cannot do it.
    fn create(
        &self,
        key: &Key,
        bytes: Vec<u8>,
    ) -> std::result::Result<std::result::Result<bool, String>, object_store::Error> {
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match block(self.store.put_opts(key, PutPayload::from(bytes), opts)) {
            Ok(_) => Ok(Ok(true)),
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => Ok(Ok(false)),
            Err(e @ object_store::Error::NotImplemented { .. }) => Ok(Err(e.to_string())),
            Err(e) => Err(e),
        }
    }

    /// Creates a probe object twice with a conditional put: a store that lets the second one
    /// through ignores `If-None-Match` (some older S3-compatible stores do, silently).
    fn probe_conditional_put(&self) -> std::result::Result<(), String> {
        let rel = format!(
            "_pqdm/probe-{}-{}",
            std::process::id(),
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
        );
        let key = self.key(&rel).map_err(|e| e.to_string())?;
        let twice = (
            self.create(&key, b"1".to_vec()),
            self.create(&key, b"2".to_vec()),
        );
        let _ = self.delete(&rel);
        match twice {
            (Ok(Ok(true)), Ok(Ok(false))) => Ok(()),
            (Ok(Err(why)), _) => Err(why),
            (Ok(Ok(true)), Ok(Ok(true))) => Err(
                "a second create-if-absent of one key succeeded: the store ignores If-None-Match"
                    .into(),
            ),
            (Err(e), _) | (_, Err(e)) => Err(e.to_string()),
            _ => Err("the probe object existed before it was created".into()),
        }
    }

    /// Deletes the object; no error when it is already gone.
    pub fn delete(&self, rel: &str) -> Result<()> {
        match block(self.store.delete(&self.key(rel)?)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err(rel, e)),
        }
    }

    /// Deletes many objects, a thousand per request where the store can (S3 DeleteObjects);
    /// objects already gone are no error.
    pub fn delete_many(&self, rels: impl IntoIterator<Item = String>) -> Result<()> {
        let keys: Vec<object_store::Result<Key>> = rels
            .into_iter()
            .map(|r| self.key(&r).map(Ok))
            .collect::<Result<_>>()?;
        if keys.is_empty() {
            return Ok(());
        }
        let results: Vec<_> = block(
            self.store
                .delete_stream(futures::stream::iter(keys).boxed())
                .collect::<Vec<_>>(),
        );
        for r in results {
            match r {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.err("", e)),
            }
        }
        Ok(())
    }

    /// Copies an object within the location (server side).
    pub fn copy(&self, from: &str, to: &str) -> Result<()> {
        self.copy_many(&[(from.to_string(), to.to_string())])
    }

    /// Every object below `rel_prefix` (a folder, relative to the location), as
    /// (relative path, size), sorted. One LIST request per thousand objects.
    pub fn list(&self, rel_prefix: &str) -> Result<Vec<(String, u64)>> {
        Ok(self
            .list_aged(rel_prefix)?
            .into_iter()
            .map(|(rel, size, _)| (rel, size))
            .collect())
    }

    /// As [`Remote::list`], with each object's age in seconds (since it was last written).
    pub fn list_aged(&self, rel_prefix: &str) -> Result<Vec<(String, u64, i64)>> {
        let now = chrono::Utc::now();
        Ok(self
            .list_meta(rel_prefix)?
            .into_iter()
            .map(|(rel, m)| (rel, m.size, (now - m.last_modified).num_seconds()))
            .collect())
    }

    /// As [`Remote::list`], with a stamp of each object's content (its last-modified time and
    /// ETag): it changes whenever the object is written again, whatever its size.
    pub fn list_stamped(&self, rel_prefix: &str) -> Result<Vec<(String, u64, String)>> {
        Ok(self
            .list_meta(rel_prefix)?
            .into_iter()
            .map(|(rel, m)| {
                let stamp = format!(
                    "{} {}",
                    m.last_modified.timestamp_nanos_opt().unwrap_or_default(),
                    m.e_tag.unwrap_or_default()
                );
                (rel, m.size, stamp)
            })
            .collect())
    }

    /// The objects under `rel_prefix`, by relative key (sorted), with their metadata.
    fn list_meta(&self, rel_prefix: &str) -> Result<Vec<(String, object_store::ObjectMeta)>> {
        let key = self.key(rel_prefix.trim_end_matches('/'))?;
        let strip = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        let prefix = (!key.as_ref().is_empty()).then_some(&key);
        let metas: Vec<_> = block(self.store.list(prefix).try_collect::<Vec<_>>())
            .map_err(|e| self.err(rel_prefix, e))?;
        let mut out: Vec<(String, object_store::ObjectMeta)> = metas
            .into_iter()
            .filter_map(|m| {
                let full = m.location.as_ref().to_string();
                full.strip_prefix(&strip).map(|r| (r.to_string(), m))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Uploads a local file to `rel`: one PUT when it is small, else parts of 32 MiB read one
    /// at a time (at most two in flight), so memory stays flat whatever the file's size.
    pub fn upload(&self, local: &Path, rel: &str) -> Result<()> {
        block(self.upload_async(local, rel))
    }

    /// Uploads many local files (local path, relative key), [`IN_FLIGHT`] at a time.
    pub fn upload_many(&self, files: &[(PathBuf, String)]) -> Result<()> {
        block(
            futures::stream::iter(files)
                .map(|(local, rel)| self.upload_async(local, rel))
                .buffer_unordered(IN_FLIGHT)
                .try_collect::<Vec<()>>(),
        )
        .map(|_| ())
    }

    /// Copies many objects (from, to) within the location, server side, [`IN_FLIGHT`] at a time.
    pub fn copy_many(&self, pairs: &[(String, String)]) -> Result<()> {
        block(
            futures::stream::iter(pairs)
                .map(|(from, to)| async move {
                    let (from_key, to_key) = (self.key(from)?, self.key(to)?);
                    self.store
                        .copy(&from_key, &to_key)
                        .await
                        .map_err(|e| self.err(from, e))
                })
                .buffer_unordered(IN_FLIGHT)
                .try_collect::<Vec<()>>(),
        )
        .map(|_| ())
    }

    async fn upload_async(&self, local: &Path, rel: &str) -> Result<()> {
        use std::io::Read;
        let size = std::fs::metadata(local).map_err(Error::io(local))?.len();
        let key = self.key(rel)?;
        if size <= PART_BYTES as u64 {
            let bytes = std::fs::read(local).map_err(Error::io(local))?;
            return self
                .store
                .put(&key, PutPayload::from(bytes))
                .await
                .map(|_| ())
                .map_err(|e| self.err(rel, e));
        }
        let mut file = std::fs::File::open(local).map_err(Error::io(local))?;
        let upload = self
            .store
            .put_multipart(&key)
            .await
            .map_err(|e| self.err(rel, e))?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        let mut buf = vec![0u8; PART_BYTES];
        loop {
            let n = match file.read(&mut buf) {
                Ok(n) => n,
                Err(e) => {
                    let _ = w.abort().await;
                    return Err(Error::io(local)(e));
                }
            };
            if n == 0 {
                break;
            }
            w.wait_for_capacity(2).await.map_err(|e| self.err(rel, e))?;
            w.write(&buf[..n]);
        }
        w.finish().await.map(|_| ()).map_err(|e| self.err(rel, e))
    }

    /// The end of the object `rel` holding a Parquet file's footer (the footer and the metadata
    /// before it, which is all a footer reader seeks to), and the object's size: two ranged GETs
    /// at most, whatever the file's size.
    pub fn parquet_tail(&self, rel: &str) -> Result<(Vec<u8>, u64)> {
        let key = self.key(rel)?;
        let size = self.head(rel)?.ok_or_else(|| Error::Storage {
            location: format!("{}/{rel}", self.url),
            message: "no such object".into(),
        })?;
        let fetch = |len: u64| {
            let start = size.saturating_sub(len);
            block(self.store.get_range(&key, start..size))
                .map(|b| b.to_vec())
                .map_err(|e| self.err(rel, e))
        };
        let tail = fetch(64 << 10)?;
        let n = tail.len();
        if n >= 8 {
            let meta_len =
                u32::from_le_bytes(tail[n - 8..n - 4].try_into().expect("4 bytes")) as u64;
            if meta_len + 8 > n as u64 && meta_len + 8 <= size {
                return Ok((fetch(meta_len + 8)?, size));
            }
        }
        Ok((tail, size))
    }

    /// Downloads `rel` to a local file.
    pub fn download(&self, rel: &str, local: &Path) -> Result<()> {
        use std::io::Write;
        let key = self.key(rel)?;
        let mut file = std::fs::File::create(local).map_err(Error::io(local))?;
        block(async {
            let mut stream = self.store.get(&key).await?.into_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk?;
                file.write_all(&chunk)
                    .map_err(|e| object_store::Error::Generic {
                        store: "local file",
                        source: Box::new(e),
                    })?;
            }
            Ok(())
        })
        .map_err(|e| self.err(rel, e))
    }
}

/// An S3 error's text without its XML body: the status line, then the body's code and message.
pub(crate) fn short_message(text: &str) -> String {
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let start = text.find(&open)? + open.len();
        let len = text[start..].find(&format!("</{name}>"))?;
        Some(&text[start..start + len])
    };
    match (
        text.find("<?xml").or_else(|| text.find("<Error>")),
        tag("Code"),
    ) {
        (Some(xml), Some(code)) => {
            format!("{}{code}: {}", &text[..xml], tag("Message").unwrap_or(""))
        }
        _ => text.to_string(),
    }
}

/// The sources an object-store URL names (`None` for a local path): the object itself when
/// `supported` takes its name, else the supported objects below it as a prefix (one listing),
/// skipping those under a name `hidden` takes. An URL naming nothing is an error.
pub fn expand_objects(
    url: &Path,
    supported: fn(&Path) -> bool,
    hidden: fn(&str) -> bool,
) -> Result<Option<Vec<PathBuf>>> {
    if !is_remote(url) {
        return Ok(None);
    }
    if supported(url) {
        return Ok(Some(vec![url.to_path_buf()]));
    }
    let remote = Remote::open(url)?;
    let found: Vec<PathBuf> = remote
        .list("")?
        .into_iter()
        .filter(|(rel, _)| !rel.split('/').any(hidden))
        .map(|(rel, _)| PathBuf::from(format!("{}/{rel}", remote.url())))
        .filter(|p| supported(p))
        .collect();
    if found.is_empty() && remote.head("")?.is_none() {
        return Err(Error::Input {
            path: url.to_path_buf(),
            message: "no such object or prefix".into(),
        });
    }
    Ok(Some(found))
}

/// Downloads the object `url` names into `tmp` (under its own name, so name hints still
/// apply); `None` for a local path, which is read where it is.
pub fn fetch_object(url: &Path, tmp: &Path) -> Result<Option<PathBuf>> {
    if !is_remote(url) {
        return Ok(None);
    }
    let (remote, name) = object(url)?;
    let dir = tmp.join(format!(
        "download-{}",
        &blake3::hash(url.as_os_str().as_encoded_bytes()).to_hex()[..12]
    ));
    std::fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
    let local = dir.join(&name);
    remote.download(&name, &local)?;
    Ok(Some(local))
}

/// Removes the file `path` a failed write left, and again if it comes back within 500 ms: when
/// a Parquet sink fails (a damaged input file), Polars returns the error while its file
/// writer's task may still create the file (seen in CI: a failed `scan --output a.parquet`
/// left `.a.parquet.PID.tmp` behind).
fn remove_late_file(path: &Path) {
    let _ = std::fs::remove_file(path);
    for _ in 0..25 {
        std::thread::sleep(std::time::Duration::from_millis(20));
        if std::fs::symlink_metadata(path).is_ok() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Runs `write` on a local file for `target` and leaves the result at `target`, whole or not
/// at all: a local path is written to a temporary file beside it and renamed over it when
/// done, so a failed `write` leaves what was there (a device, a pipe or a symbolic link is
/// written in place); an object is written to a local scratch file first, then uploaded
/// whole (in parts when it is large), so no reader sees half of it and a failed `write`
/// leaves nothing there.
pub fn write_file<T>(target: &Path, write: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
    if !is_remote(target) {
        let in_place = std::fs::symlink_metadata(target).is_ok_and(|m| !m.is_file());
        let Some(name) = target.file_name().filter(|_| !in_place) else {
            return write(target);
        };
        let name = name.to_string_lossy();
        remove_dead_temporaries(target, &name);
        let tmp = target.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
        let written = write(&tmp).and_then(|out| {
            std::fs::rename(&tmp, target)
                .map(|()| out)
                .map_err(Error::io(target))
        });
        if written.is_err() {
            remove_late_file(&tmp);
        }
        return written;
    }
    let (remote, name) = object(target)?;
    let dir = local_scratch(remote.url());
    std::fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
    let local = dir.join(format!("output-{}-{name}", std::process::id()));
    let written = write(&local).and_then(|out| remote.upload(&local, &name).map(|()| out));
    let _ = std::fs::remove_file(&local);
    written
}

/// Removes the temporary files `.NAME.PID.tmp` beside `target` (named `name`) that a process
/// no longer running left (a `scan --output` killed mid-write); a live writer's stay.
fn remove_dead_temporaries(target: &Path, name: &str) {
    let Some(dir) = target.parent().map(|d| match d.as_os_str().is_empty() {
        true => Path::new("."),
        false => d,
    }) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let prefix = format!(".{name}.");
    for entry in entries.flatten() {
        let file = entry.file_name();
        let pid = file
            .to_str()
            .and_then(|f| f.strip_prefix(&prefix))
            .and_then(|rest| rest.strip_suffix(".tmp"))
            .and_then(|pid| pid.parse::<i32>().ok());
        if pid.is_some_and(crate::lock::process_gone) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// A local folder for the work files of a remote location (staging, downloads): under
/// `PQDM_SCRATCH_DIR`, else the system's temporary folder, one per location.
pub fn local_scratch(url: &str) -> PathBuf {
    let root = crate::env::env()
        .scratch_dir
        .clone()
        .unwrap_or_else(std::env::temp_dir);
    let id = blake3::hash(url.as_bytes()).to_hex();
    root.join("pqdm-remote").join(&id[..16])
}
