//! [`Location`]: where a dataset (or a folder of sources) lives, parsed once from what the user
//! gave: a local folder, or a prefix on an object store with the client and options that reach
//! it. The operations that differ between the two (listing, file stamps, fetching one file)
//! are methods here, so the modules above never ask which one they have.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use polars::prelude::cloud::CloudOptions;

use crate::error::{Error, Result};
use crate::storage::{Remote, StorageOptions};

/// A local folder or an object-store prefix.
///
/// ```
/// use pqdm::location::Location;
/// let here = Location::parse("data/klines")?;
/// assert_eq!(here.to_string(), "data/klines");
/// assert!(here.cloud_options().is_none());
/// # Ok::<(), pqdm::Error>(())
/// ```
#[derive(Clone)]
pub enum Location {
    /// A folder on this machine.
    Local(PathBuf),
    /// `s3://bucket/prefix` on any S3-compatible store, with its client.
    Object(Arc<Remote>),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Local(p) => write!(f, "{}", p.display()),
            Location::Object(r) => f.write_str(r.url()),
        }
    }
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Location({self})")
    }
}

/// Whether `path` names an object-store location (`s3://` or `s3a://`).
fn is_url(path: &Path) -> bool {
    path.to_str()
        .is_some_and(|s| s.starts_with("s3://") || s.starts_with("s3a://"))
}

impl Location {
    /// Parses `path`: `s3://bucket/prefix` (or `s3a://`) is an object-store prefix opened with
    /// the default storage options ([`StorageOptions::defaults`]), anything else a local folder.
    pub fn parse(path: impl AsRef<Path>) -> Result<Location> {
        Location::parse_with(path, &StorageOptions::defaults())
    }

    /// As [`Location::parse`], an object-store prefix opened with `options` (which a local
    /// folder ignores).
    pub fn parse_with(path: impl AsRef<Path>, options: &StorageOptions) -> Result<Location> {
        let path = path.as_ref();
        if is_url(path) {
            return Ok(Location::Object(Remote::open_with(path, options)?));
        }
        Ok(Location::Local(path.to_path_buf()))
    }

    /// The location as a path: the folder, or the URL (which Polars takes as a path).
    pub fn path(&self) -> PathBuf {
        match self {
            Location::Local(p) => p.clone(),
            Location::Object(r) => PathBuf::from(r.url()),
        }
    }

    /// The local folder, when the location is one.
    pub fn as_local(&self) -> Option<&Path> {
        match self {
            Location::Local(p) => Some(p),
            Location::Object(_) => None,
        }
    }

    /// Polars' options for reading files here (`None` on a local disk).
    pub fn cloud_options(&self) -> Option<CloudOptions> {
        match self {
            Location::Local(_) => None,
            Location::Object(r) => Some(r.cloud().clone()),
        }
    }

    /// Whether the location is known to be missing: a local folder that does not exist (a
    /// prefix always exists, holding no objects or some).
    pub fn is_missing(&self) -> bool {
        match self {
            Location::Local(p) => !p.is_dir(),
            Location::Object(_) => false,
        }
    }

    /// Why there is no dataset here, for an error message.
    pub(crate) fn no_dataset_message(&self) -> String {
        match self {
            Location::Object(_) => "not a pqdm dataset (no _manifest.json under this prefix)".into(),
            Location::Local(p) if p.is_dir() => "not a pqdm dataset (no _manifest.json); `pqdm adopt` gives a dataset written by other tools a manifest".into(),
            Location::Local(_) => "no such folder".into(),
        }
    }

    /// Every file below the location, as (relative path with `/`, bytes, stamp), sorted. The
    /// stamp changes whenever the file is written again, whatever its size: on a disk its
    /// modification time, change time (which no user can set back) and inode; on object
    /// storage its last-modified time and ETag. A missing folder holds nothing.
    pub fn list_stamped(&self) -> Result<Vec<(String, u64, String)>> {
        match self {
            Location::Object(r) => r.list_stamped(""),
            Location::Local(base) => {
                let mut out = vec![];
                let mut failed = None;
                crate::localfs::walk(base, &mut |p| {
                    let Ok(rel) = p.strip_prefix(base) else {
                        return;
                    };
                    match std::fs::metadata(p) {
                        Ok(meta) => out.push((
                            crate::localfs::rel_string(rel),
                            meta.len(),
                            local_stamp(&meta),
                        )),
                        Err(e) => failed = failed.take().or(Some(Error::io(p)(e))),
                    }
                })?;
                if let Some(e) = failed {
                    return Err(e);
                }
                out.sort();
                Ok(out)
            }
        }
    }

    /// Every file below the location (relative paths with `/`), sorted.
    pub fn list_files(&self) -> Result<Vec<String>> {
        match self {
            Location::Object(r) => Ok(r.list("")?.into_iter().map(|(rel, _)| rel).collect()),
            Location::Local(base) => {
                let mut out = vec![];
                crate::localfs::walk(base, &mut |p| {
                    if let Ok(rel) = p.strip_prefix(base) {
                        out.push(crate::localfs::rel_string(rel));
                    }
                })?;
                out.sort();
                Ok(out)
            }
        }
    }
}

impl Location {
    /// The footer of the Parquet file `rel` below the location (`stat_column`, an integer
    /// column, gets its min/max) and the file's size: on object storage two ranged GETs at
    /// most, whatever the file's size.
    pub fn read_footer(
        &self,
        rel: &str,
        stat_column: Option<&str>,
    ) -> Result<(crate::footer::FooterInfo, u64)> {
        match self {
            Location::Local(base) => {
                let path = base.join(rel);
                let size = std::fs::metadata(&path).map_err(Error::io(&path))?.len();
                Ok((crate::footer::read_footer(&path, stat_column)?, size))
            }
            Location::Object(r) => {
                let (tail, size) = r.parquet_tail(rel)?;
                let path = PathBuf::from(format!("{}/{rel}", r.url()));
                let mut tail = std::io::Cursor::new(tail);
                Ok((
                    crate::footer::footer_of(&mut tail, &path, stat_column)?,
                    size,
                ))
            }
        }
    }
}

/// What changes when a local file is written again: its modification time and, where the
/// platform tells, its change time (which no user can set back) and inode.
fn local_stamp(meta: &std::fs::Metadata) -> String {
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        format!(
            "{modified} {}.{} {}",
            meta.ctime(),
            meta.ctime_nsec(),
            meta.ino()
        )
    }
    #[cfg(not(unix))]
    {
        modified.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_folder_lists_its_files_with_stamps_that_change_on_rewrite() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a=1")).unwrap();
        std::fs::write(dir.path().join("a=1/f.parquet"), b"12").unwrap();
        std::fs::write(dir.path().join("g.parquet"), b"1").unwrap();
        let loc = Location::parse(dir.path()).unwrap();
        assert_eq!(
            loc.list_files().unwrap(),
            vec!["a=1/f.parquet", "g.parquet"]
        );
        let before = loc.list_stamped().unwrap();
        assert_eq!(
            before
                .iter()
                .map(|(r, b, _)| (r.as_str(), *b))
                .collect::<Vec<_>>(),
            vec![("a=1/f.parquet", 2), ("g.parquet", 1)]
        );
        // Rewritten with the same size: the stamp (inode, change time) still moves.
        std::fs::remove_file(dir.path().join("g.parquet")).unwrap();
        std::fs::write(dir.path().join("g.parquet"), b"2").unwrap();
        let after = loc.list_stamped().unwrap();
        assert_eq!(after[0], before[0]);
        assert_ne!(after[1].2, before[1].2);
        assert!(!loc.is_missing());
        assert!(
            Location::parse(dir.path().join("none"))
                .unwrap()
                .is_missing()
        );
        assert_eq!(
            Location::parse(dir.path().join("none"))
                .unwrap()
                .list_files()
                .unwrap(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn an_object_store_url_needs_a_bucket_and_valid_options() {
        let none =
            StorageOptions::new([("region", "us-east-1"), ("skip_signature", "true")]).unwrap();
        let loc = Location::parse_with("s3://bucket/some/prefix/", &none).unwrap();
        assert_eq!(loc.to_string(), "s3://bucket/some/prefix");
        assert!(loc.as_local().is_none());
        assert!(loc.cloud_options().is_some());
        assert!(!loc.is_missing());
        let err = Location::parse_with("s3:///prefix", &none).unwrap_err();
        assert!(err.to_string().contains("no bucket named"), "{err}");
    }
}
