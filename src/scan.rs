//! Scans: the manifest's files → one Polars `scan_parquet` with hive columns typed by the
//! manifest → a `LazyFrame` the caller keeps chaining.

use polars::prelude::*;

use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::manifest::Manifest;

/// What to read.
#[derive(Clone, Debug, Default)]
pub struct ScanOptions {
    /// Columns to return (all when `None`), in this order.
    pub columns: Option<Vec<String>>,
    /// The version to read (the current one when `None`).
    pub version: Option<u64>,
}

/// The full output schema of a manifest: data columns, then partition columns.
pub fn output_schema(m: &Manifest) -> Schema {
    let mut schema = Schema::default();
    for f in m.schema.iter() {
        schema.with_column(f.name.as_str().into(), f.dtype.dtype());
    }
    for f in m.partition_columns.iter() {
        schema.with_column(f.name.as_str().into(), f.dtype.dtype());
    }
    schema
}

impl Dataset {
    /// A lazy scan of the dataset: projection and predicates on the returned frame are pushed
    /// down into the Parquet reader; partition columns come typed as the manifest records.
    ///
    /// ```no_run
    /// use polars::prelude::*;
    /// let ds = pqdm::Dataset::open("target/demo/klines")?;
    /// let df = ds.scan(&pqdm::ScanOptions::default())?
    ///     .filter(col("symbol").eq(lit("ETHUSDT")))
    ///     .select([col("timestamp"), col("close")])
    ///     .collect()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn scan(&self, opts: &ScanOptions) -> Result<LazyFrame> {
        let m = self.manifest_at(opts.version)?;
        let schema = output_schema(&m);
        if let Some(cols) = &opts.columns {
            for c in cols {
                if !schema.contains(c) {
                    return Err(Error::Schema(format!(
                        "unknown column `{c}` (columns: {})",
                        schema
                            .iter_names()
                            .map(|n| n.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
            }
        }
        let lf = if m.files.is_empty() {
            DataFrame::empty_with_schema(&schema).lazy()
        } else {
            let paths: Vec<PlRefPath> = self
                .file_paths(&m)
                .iter()
                .map(|p| PlRefPath::try_from_path(p))
                .collect::<PolarsResult<_>>()
                .map_err(Error::polars("paths"))?;
            let mut hive = Schema::default();
            for f in &m.partition_columns {
                hive.with_column(f.name.as_str().into(), f.dtype.dtype());
            }
            let mut file_schema = Schema::default();
            for f in &m.schema {
                file_schema.with_column(f.name.as_str().into(), f.dtype.dtype());
            }
            let args = ScanArgsParquet {
                hive_options: HiveOptions {
                    enabled: Some(!hive.is_empty()),
                    hive_start_idx: 0,
                    schema: (!hive.is_empty()).then(|| Arc::new(hive)),
                    try_parse_dates: true,
                },
                schema: Some(Arc::new(file_schema)),
                allow_missing_columns: true,
                glob: false,
                ..Default::default()
            };
            LazyFrame::scan_parquet_files(paths.into(), args)
                .map_err(Error::polars(format!("scan {}", self.base().display())))?
        };
        let order: Vec<Expr> = match &opts.columns {
            Some(cols) => cols.iter().map(|c| col(c.as_str())).collect(),
            None => schema.iter_names().map(|n| col(n.clone())).collect(),
        };
        Ok(lf.select(order))
    }
}
