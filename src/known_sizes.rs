//! Scans of object storage that ask no object for its size.
//!
//! Polars 0.55's Parquet reader, handed a list of `s3://` files, sends a HEAD for each one to
//! learn its size before it reads the footer: a full scan of 1,000 files makes 1,000 requests
//! more than it reads, although pqdm's manifest records every file's size. So a scan hands
//! Polars the same keys under a scheme of pqdm's own (`pqdm-s3://<store>/<key>`), for which
//! Polars builds its object store through [`Builder`]: pqdm's own client for that location,
//! wrapped so that a size request for a file of the scan is answered from the manifest and
//! everything else (every byte read) goes to the store. A file the wrapper was not told of is
//! asked as before.
//!
//! Every read of such a file checks the object's size, which the store tells with each range
//! it returns, against the record's: an object replaced behind the manifest's back by one of
//! another size, or a size edited in the record, fails the scan naming the file (a read by a
//! wrong size would take a footer from the middle of the file, or a range past its end). An
//! object replaced by one of the same size is read as it is found (`verify` finds it by its
//! checksum).

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex, RwLock};

use futures::stream::BoxStream;
use object_store::path::Path as Key;
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use polars::io::cloud::{CloudOptions, ExtObjectStoreBuilder};
use polars::prelude::{PlRefPath, PolarsResult, polars_err};

/// Bytes of the smallest Parquet file: `PAR1`, the footer's length, `PAR1`.
const SMALLEST_PARQUET: u64 = 12;

/// The scheme under which Polars reaches pqdm's stores.
const SCHEME: &str = "pqdm-s3";

/// One location's client and the sizes of the files scanned there, by key.
struct Sized {
    inner: Arc<dyn ObjectStore>,
    /// `s3://bucket`, which the URLs of this store stand for.
    bucket_url: String,
    sizes: RwLock<HashMap<String, u64>>,
}

/// The stores Polars may ask for, each with the name in its URLs (`s0`, `s1`, ...).
type Stores = Vec<(String, Arc<Sized>)>;

static STORES: LazyLock<Mutex<Stores>> = LazyLock::new(Default::default);

/// Whether the scheme is registered with Polars (once per process; `false` if Polars refused).
static REGISTERED: LazyLock<bool> = LazyLock::new(|| {
    let registered = polars::polars_utils::pl_path::_allow_ext_scheme(SCHEME)
        .and_then(|()| polars::io::cloud::register_object_store_builder(SCHEME, Arc::new(Builder)));
    if let Err(e) = &registered {
        log::warn!("S3 scans ask each file's size: Polars took no store of pqdm's ({e})");
    }
    registered.is_ok()
});

/// The URLs under which Polars reads `files` (`s3://bucket/key`, each with its size in bytes)
/// with `inner`, the client of their bucket, answering size requests from `sizes`; the URLs
/// as they are when the scheme cannot be registered.
pub(crate) fn read_urls(
    inner: &Arc<dyn ObjectStore>,
    bucket_url: &str,
    files: &[PathBuf],
    sizes: &[u64],
) -> Vec<PathBuf> {
    if !*REGISTERED {
        return files.to_vec();
    }
    let prefix = format!("{}/", bucket_url.trim_end_matches('/'));
    let store = {
        let mut stores = STORES.lock().unwrap_or_else(|e| e.into_inner());
        match stores.iter().find(|(_, s)| Arc::ptr_eq(&s.inner, inner)) {
            Some((name, s)) => (name.clone(), s.clone()),
            None => {
                let name = format!("s{}", stores.len());
                let s = Arc::new(Sized {
                    inner: inner.clone(),
                    bucket_url: bucket_url.trim_end_matches('/').to_string(),
                    sizes: Default::default(),
                });
                stores.push((name.clone(), s.clone()));
                (name, s)
            }
        }
    };
    let (name, sized) = store;
    let mut known = sized.sizes.write().unwrap_or_else(|e| e.into_inner());
    files
        .iter()
        .zip(sizes)
        .map(|(file, size)| {
            let text = file.to_string_lossy();
            match text.strip_prefix(&prefix) {
                Some(key) => {
                    known.insert(key.to_string(), *size);
                    PathBuf::from(format!("{SCHEME}://{name}/{key}"))
                }
                None => file.clone(),
            }
        })
        .collect()
}

/// `text` (an error message) with the URLs Polars read by put back as the `s3://` URLs they
/// stand for.
pub(crate) fn real_urls(text: &str) -> String {
    let marker = format!("{SCHEME}://");
    if !text.contains(&marker) {
        return text.to_string();
    }
    let stores = STORES.lock().unwrap_or_else(|e| e.into_inner());
    stores.iter().fold(text.to_string(), |t, (name, s)| {
        t.replace(&format!("{marker}{name}/"), &format!("{}/", s.bucket_url))
    })
}

/// Builds, for Polars, the store a `pqdm-s3://<name>/` URL names.
struct Builder;

impl ExtObjectStoreBuilder for Builder {
    fn build(
        &self,
        url: &PlRefPath,
        _options: Option<&CloudOptions>,
    ) -> PolarsResult<Arc<dyn ObjectStore + Send + Sync>> {
        let text = url.as_str();
        let name = text
            .strip_prefix(&format!("{SCHEME}://"))
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_default();
        let stores = STORES.lock().unwrap_or_else(|e| e.into_inner());
        let sized = stores
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s.clone())
            .ok_or_else(|| polars_err!(ComputeError: "{text}: no such pqdm store"))?;
        Ok(Arc::new(SizedStore(sized)))
    }

    fn stable_cache_key(&self, url: &PlRefPath, _: Option<&CloudOptions>) -> Option<Vec<u8>> {
        let text = url.as_str();
        let rest = text.strip_prefix(&format!("{SCHEME}://"))?;
        Some(rest.split('/').next()?.as_bytes().to_vec())
    }
}

/// pqdm's client of one location, answering size requests from the manifest.
struct SizedStore(Arc<Sized>);

impl SizedStore {
    /// The error of a read of `location`, whose record states `stated` bytes, from an object
    /// of `actual` bytes.
    fn size_differs(&self, location: &Key, stated: u64, actual: u64) -> object_store::Error {
        object_store::Error::Generic {
            store: "pqdm",
            source: format!(
                "{}/{location} holds {actual} bytes, not the {stated} the dataset's record states: the object was replaced or the record edited (`pqdm verify` names such files)",
                self.0.bucket_url
            )
            .into(),
        }
    }
}

impl fmt::Display for SizedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (sizes from the manifest)", self.0.inner)
    }
}

impl fmt::Debug for SizedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[async_trait::async_trait]
impl ObjectStore for SizedStore {
    async fn put_opts(
        &self,
        location: &Key,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.0.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Key,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.0.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Key,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let plain = options.range.is_none()
            && options.if_match.is_none()
            && options.if_none_match.is_none()
            && options.if_modified_since.is_none()
            && options.if_unmodified_since.is_none()
            && options.version.is_none();
        let stated = self
            .0
            .sizes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(location.as_ref())
            .copied();
        let Some(stated) = stated else {
            return self.0.inner.get_opts(location, options).await;
        };
        // No Parquet file is smaller than its two magic numbers and footer length: a record
        // stating less is asked of the store, which tells the size it has.
        if options.head && plain && stated >= SMALLEST_PARQUET {
            return Ok(GetResult {
                payload: GetResultPayload::Stream(Box::pin(futures::stream::empty())),
                meta: ObjectMeta {
                    location: location.clone(),
                    last_modified: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
                    size: stated,
                    e_tag: None,
                    version: None,
                },
                range: 0..stated,
                attributes: Default::default(),
            });
        }
        // A read by a size the object does not have fails whatever it reads (a footer from
        // the middle of the file, a range past its end): said as what it is, naming the file.
        match self.0.inner.get_opts(location, options).await {
            Ok(got) if got.meta.size != stated => {
                Err(self.size_differs(location, stated, got.meta.size))
            }
            Ok(got) => Ok(got),
            Err(e @ object_store::Error::NotFound { .. }) => Err(e),
            Err(e) => match self.0.inner.head(location).await {
                Ok(meta) if meta.size != stated => {
                    Err(self.size_differs(location, stated, meta.size))
                }
                _ => Err(e),
            },
        }
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Key>>,
    ) -> BoxStream<'static, object_store::Result<Key>> {
        self.0.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Key>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.0.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Key>) -> object_store::Result<ListResult> {
        self.0.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Key,
        to: &Key,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.0.inner.copy_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use object_store::ObjectStoreExt;
    use object_store::memory::InMemory;

    use super::*;

    #[test]
    fn sizes_of_scanned_files_come_from_the_manifest_and_the_rest_from_the_store() {
        let inner: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let files = [
            PathBuf::from("s3://bkt/ds/symbol=BTC%2FUSDT/part-0.parquet"),
            PathBuf::from("s3://other/ds/part-1.parquet"),
        ];
        let urls = read_urls(&inner, "s3://bkt", &files, &[1234, 99]);
        let name = urls[0]
            .to_str()
            .unwrap()
            .strip_prefix("pqdm-s3://")
            .and_then(|rest| rest.split('/').next())
            .unwrap()
            .to_string();
        assert_eq!(
            urls,
            [
                PathBuf::from(format!(
                    "pqdm-s3://{name}/ds/symbol=BTC%2FUSDT/part-0.parquet"
                )),
                // Not in this store's bucket: read as it is.
                files[1].clone(),
            ]
        );
        // The same client again: the same store name.
        assert_eq!(
            read_urls(&inner, "s3://bkt", &files[..1], &[1234]),
            urls[..1]
        );
        let message = format!("cannot read '{}': oops", urls[0].display());
        assert_eq!(
            real_urls(&message),
            format!("cannot read '{}': oops", files[0].display())
        );

        let store = Builder
            .build(&PlRefPath::new(urls[0].to_str().unwrap()), None)
            .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let known = Key::from_url_path("ds/symbol=BTC%2FUSDT/part-0.parquet").unwrap();
            let known = Key::parse(known.as_ref().replace("BTC/USDT", "BTC%2FUSDT")).unwrap();
            assert_eq!(store.head(&known).await.unwrap().size, 1234);
            // Reads, and sizes of files no scan named, go to the store (which has neither).
            assert!(store.get(&known).await.is_err());
            let unknown = Key::parse("ds/part-9.parquet").unwrap();
            assert!(matches!(
                store.head(&unknown).await,
                Err(object_store::Error::NotFound { .. })
            ));
        });
    }
}
