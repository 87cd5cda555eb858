//! pqdm: hive-partitioned Parquet datasets of market data, on Polars.
//!
//! A [`Dataset`] is a folder of hive-partitioned Parquet files with a versioned manifest, on a
//! local disk or at `s3://bucket/prefix` on any S3-compatible store ([`storage`]).
//! Writes cast any frame to the dataset's kind and commit atomically; scans return a Polars
//! `LazyFrame` with projection and predicate pushdown.
//!
//! The library example is the README's, which is compiled and run as this crate's doctest.

pub mod allocator;
pub mod batches;
pub mod cache;
pub mod cancel;
pub mod cast;
pub mod config;
pub mod dataset;
pub(crate) mod delta;
mod digest;
pub(crate) mod dtype;
pub(crate) mod env;
pub mod error;
mod expr_prune;
pub(crate) mod failpoint;
pub mod filter;
pub(crate) mod footer;
pub(crate) mod foreign;
pub mod ingest;
pub(crate) mod ingested;
mod key_order;
mod known_sizes;
pub mod layout;
pub(crate) mod localfs;
pub mod location;
pub mod lock;
pub mod maintain;
pub mod manifest;
pub mod materialize;
pub(crate) mod memory;
pub mod metrics;
pub mod options;
pub mod panics;
pub mod partition;
pub mod partition_values;
mod polars_patch;
pub mod progress;
pub(crate) mod relpath;
pub mod report;
pub mod scan;
pub mod schema;
mod slices;
mod sorted;
pub mod source;
pub mod storage;
mod summary_update;
pub mod timestamp;
mod touched;
pub(crate) mod txn;
mod upsert;
pub mod write;

pub use dataset::{CreateOptions, Dataset};
pub use error::{Error, Result};
pub use filter::Filter;
pub use options::{Compression, FileLayout, MemoryLimit, WriteMode};
pub use scan::ScanOptions;
pub use write::{Input, WriteOptions, WriteReport};

/// The README, whose Rust example runs as a doctest: the example a reader copies is the one
/// that is tested.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// The crate version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
