//! The names a dataset's files and folders take on disk: pqdm's metadata folder and the files
//! in it, the suffixes that keep its own files out of every glob, and the longest folder name
//! a partition may have. A leaf module, so that paths are checked and built by one rule.

/// The current snapshot's file name.
pub const MANIFEST_FILE: &str = "_manifest.json";
/// The folder holding history, staging, replaced files and locks.
pub const META_DIR: &str = "_pqdm";
/// The suffix of files staged for a commit (not `.parquet`, so no glob reads them).
pub const STAGED_SUFFIX: &str = ".staged";
/// The suffix of files a commit replaced (object storage, and local datasets of earlier pqdm).
pub const REPLACED_SUFFIX: &str = ".replaced";
/// The folder under `_pqdm/` holding every committed data file (`<path>.kept`).
pub const FILES_DIR: &str = "files";
/// The suffix of the files kept there (not `.parquet`, so no glob of the folder reads them).
pub const KEPT_SUFFIX: &str = ".kept";
/// The folder under `_pqdm/` holding the segments of the sources index (see [`crate::ingested`]).
pub const SOURCES_DIR: &str = "sources";
/// The longest folder name common file systems (ext4, XFS, APFS, NTFS) and S3 tools accept.
pub const MAX_SEGMENT_BYTES: usize = 255;
