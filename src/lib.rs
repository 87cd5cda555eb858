//! pqdm: hive-partitioned Parquet datasets of market data, on Polars.
//!
//! A [`Dataset`] is a folder of hive-partitioned Parquet files with a versioned manifest, on a
//! local disk or at `s3://bucket/prefix` on any S3-compatible store ([`storage`]).
//! Writes cast any frame to the dataset's kind and commit atomically; scans return a Polars
//! `LazyFrame` with projection and predicate pushdown.
//!
//! ```
//! use polars::prelude::*;
//! use pqdm::{CreateOptions, Dataset, ScanOptions, WriteOptions, schema::KindRegistry};
//!
//! let kinds = KindRegistry::default();
//! let ds = Dataset::open_or_create("target/example", kinds.get("klines")?, &CreateOptions::default())?;
//! let candles = df!(
//!     "open_time" => [1_704_067_200_000i64, 1_704_067_260_000],
//!     "open" => [42_000.0, 42_010.0], "high" => [42_020.0, 42_030.0],
//!     "low" => [41_990.0, 42_000.0], "close" => [42_010.0, 42_020.0],
//!     "volume" => [12.5, 9.0],
//! )?;
//! let opts = WriteOptions {
//!     constants: [("exchange", "BINANCE"), ("symbol", "BTCUSDT"), ("timeframe", "1m")]
//!         .into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
//!     ..Default::default()
//! };
//! ds.write(candles.lazy(), &opts)?;
//! let closes = ds.scan(&ScanOptions::default())?
//!     .filter(col("symbol").eq(lit("BTCUSDT")))
//!     .select([col("timestamp"), col("close")])
//!     .collect()?;
//! assert_eq!(closes.height(), 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod cache;
pub mod cast;
pub mod config;
pub mod dataset;
pub mod error;
pub mod failpoint;
pub mod filter;
pub mod footer;
pub mod foreign;
pub mod ingest;
pub mod lock;
pub mod maintain;
pub mod manifest;
pub mod materialize;
pub mod memory;
pub mod metrics;
pub mod options;
pub mod partition;
pub mod progress;
pub mod relpath;
pub mod scan;
pub mod schema;
pub mod source;
pub mod storage;
pub mod timestamp;
mod upsert;
pub mod write;

pub use dataset::{CreateOptions, Dataset};
pub use error::{Error, Result};
pub use filter::Filter;
pub use options::{Compression, FileLayout, WriteMode};
pub use scan::ScanOptions;
pub use write::{Input, WriteOptions, WriteReport};

/// The crate version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub mod demo;
pub mod output;
