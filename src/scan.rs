//! Scans: filters typed by the manifest → pruning of folders and files by the manifest (no file
//! opened) → one Polars `scan_parquet` over the chosen files, hive columns typed by the
//! manifest → a `LazyFrame` the caller keeps chaining, or batches of a chosen size.

pub use crate::memory::{BatchChoice, DEFAULT_BATCH_BYTES};
use std::num::NonZeroUsize;
use std::path::PathBuf;

use polars::prelude::*;

use crate::batches::Batches;
use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::filter::{Filter, TypedFilter, partition_value};
use crate::manifest::{FileEntry, Manifest};
use crate::schema::ColType;

/// What to read.
#[derive(Clone, Default)]
pub struct ScanOptions {
    /// Columns to return (all when `None`), in this order.
    pub columns: Option<Vec<String>>,
    /// Filters (text grammar or tuples), ANDed; they also prune folders and files.
    pub filters: Vec<Filter>,
    /// Further Polars predicates, ANDed and pushed down into the reader; their comparisons of
    /// partition or timestamp columns with literals (`col("timestamp").gt_eq(lit(..))`,
    /// `is_in`, `is_between`, `is_null`, joined by `and`) prune folders and files by the
    /// manifest as `filters` do.
    pub exprs: Vec<Expr>,
    /// The version to read (the current one when `None`).
    pub version: Option<u64>,
    /// Or the version that was current at this instant (ms since the epoch, UTC): the newest
    /// kept version committed at or before it, as Delta's time travel by timestamp. Not with
    /// `version`.
    pub as_of: Option<i64>,
}

impl ScanOptions {
    /// Adds a filter in the text grammar (`symbol == ETHUSDT`).
    pub fn filter(mut self, text: &str) -> Result<ScanOptions> {
        self.filters.push(Filter::parse(text)?);
        Ok(self)
    }

    /// Adds a typed filter ([`Filter::eq`], [`Filter::is_in`], ...).
    pub fn with(mut self, filter: Filter) -> ScanOptions {
        self.filters.push(filter);
        self
    }

    /// Adds a Polars predicate (see [`ScanOptions::exprs`]: it prunes as a filter does).
    pub fn filter_expr(mut self, predicate: Expr) -> ScanOptions {
        self.exprs.push(predicate);
        self
    }

    /// Selects these columns.
    pub fn columns(mut self, cols: &[&str]) -> ScanOptions {
        self.columns = Some(cols.iter().map(|c| c.to_string()).collect());
        self
    }
}

fn is_not_found(e: &PolarsError) -> bool {
    let text = e.to_string();
    text.contains("No such file") || text.contains("not found")
}

/// The output schema of a manifest: data columns, then partition columns.
pub fn output_schema(m: &Manifest) -> Schema {
    let mut schema = Schema::default();
    for f in m.schema.iter().chain(&m.partition_columns) {
        schema.with_column(f.name.as_str().into(), f.dtype.dtype());
    }
    schema
}

/// What a scan will read: the version, the files left after pruning, the typed filters.
pub struct ScanPlan {
    /// The manifest of the version read. For a version other than the current one, read with
    /// filters on partition columns, it lists only the files of partitions those filters may
    /// match (the version's other files are never read from its log); `total_files` counts
    /// them all.
    pub manifest: Arc<Manifest>,
    /// Files that may hold matching rows (absolute paths).
    pub files: Vec<PathBuf>,
    /// Their sizes in bytes, as the manifest records them (in the same order).
    pub sizes: Vec<u64>,
    /// Files in the version before pruning.
    pub total_files: usize,
    /// The filters, typed by the manifest.
    pub filters: Vec<TypedFilter>,
    /// The filters some row of the planned files may fail, which the scan applies to the rows;
    /// the others every row passes (its partition's value does, or its file's whole time range
    /// does), and filtering by them would only cost time.
    pub row_filters: Vec<TypedFilter>,
}

fn column_type(m: &Manifest, name: &str) -> Option<ColType> {
    m.schema
        .iter()
        .chain(&m.partition_columns)
        .find(|f| f.name == name)
        .map(|f| f.dtype)
}

fn unknown_column(m: &Manifest, what: &str, name: &str) -> Error {
    let cols: Vec<&str> = m
        .schema
        .iter()
        .chain(&m.partition_columns)
        .map(|f| f.name.as_str())
        .collect();
    Error::Schema(format!(
        "{what}: unknown column `{name}` (columns: {})",
        cols.join(", ")
    ))
}

/// The `name=value` folders in `base` (the dataset's own path) that Polars' hive parsing
/// takes as partitions of every file below it: by its rule, a path component with exactly one
/// `=`, no `*` in the value, and a value that percent-decodes to UTF-8.
fn base_hive_keys(base: &std::path::Path) -> Vec<String> {
    base.components()
        .filter_map(|c| match c {
            std::path::Component::Normal(seg) => seg.to_str(),
            _ => None,
        })
        .filter_map(|seg| {
            let mut parts = seg.split('=');
            let (name, value) = (parts.next()?, parts.next()?);
            let decodes =
                std::str::from_utf8(crate::partition::unescape_bytes(value).as_slice()).is_ok();
            (parts.next().is_none() && !value.contains('*') && decodes).then(|| name.to_string())
        })
        .collect()
}

/// The dtype of partition column `column` and `file`'s folder text for it (`None`: the null
/// partition); `None` when `column` is no partition column.
fn partition_of<'a>(
    m: &Manifest,
    file: &'a FileEntry,
    column: &str,
) -> Option<(ColType, Option<&'a str>)> {
    let p = m.partition_columns.iter().find(|p| p.name == column)?;
    Some((p.dtype, file.partition.value(column)))
}

/// Whether every row of `file` passes `f`, judged from the manifest alone: its partition's
/// value does, or its non-null timestamps all lie in the filter's range.
///
/// Only where the manifest's partition text is what Polars reads from the folder name: not for
/// the null partition (an empty folder value `k=` is null to pqdm, `""` to Polars), nor for
/// floats (NaN and -0.0 compare otherwise in Polars); callers keep datasets of other tools out
/// (a Delta log's partition values may differ from its folder names).
fn holds_for_every_row(m: &Manifest, file: &FileEntry, f: &TypedFilter) -> bool {
    if f.datetime {
        return false;
    }
    if let Some((dtype, text)) = partition_of(m, file, &f.column) {
        return match text {
            Some(text) if !text.is_empty() && dtype != ColType::F64 => {
                f.partition_may_match(partition_value(Some(text), dtype).as_ref())
            }
            _ => false,
        };
    }
    if f.column == m.timestamp_column
        && file.null_timestamps == Some(0)
        && let (Some(lo), Some(hi)) = (file.min_timestamp, file.max_timestamp)
    {
        return f.range_always_matches(lo, hi);
    }
    false
}

/// Whether `file` may hold rows matching every filter, judged from the manifest alone.
fn may_match(m: &Manifest, file: &FileEntry, filters: &[TypedFilter]) -> bool {
    filters.iter().all(|f| {
        if let Some((dtype, text)) = partition_of(m, file, &f.column) {
            return f.partition_may_match(partition_value(text, dtype).as_ref());
        }
        if f.column == m.timestamp_column
            && let (Some(lo), Some(hi)) = (file.min_timestamp, file.max_timestamp)
        {
            return f.range_may_match(lo, hi);
        }
        true
    })
}

impl Dataset {
    /// The version `opts` reads (`None`: the current one): its `version`, or the version that
    /// was current at its `as_of` ([`Dataset::version_as_of`]).
    pub(crate) fn version_to_read(&self, opts: &ScanOptions) -> Result<Option<u64>> {
        match (opts.version, opts.as_of) {
            (Some(_), Some(_)) => Err(Error::Options(
                "name the version to read by its number or by an instant (as of), not both".into(),
            )),
            (version, None) => Ok(version),
            (None, Some(at)) => self.version_as_of(at).map(Some),
        }
    }

    /// Version `version` of this dataset (`None`: the current one) with only the files of the
    /// partitions `filters` may match, read from the log (a checkpoint's other files are
    /// skipped before their statistics are read: at 100,000 files, a fifth of the time of
    /// reading them all); `None` when that does not apply (no filter on a partition column,
    /// the current version held whole already, another tool's dataset, a version the log
    /// holds no pqdm record of) or fails, and the whole version is read instead.
    fn partitions_of_version(
        &self,
        version: Option<u64>,
        filters: &[crate::filter::Filter],
    ) -> Option<Arc<Manifest>> {
        let current = self.header();
        let v = version.unwrap_or(current.version);
        if (v == current.version && !current.is_partial())
            || self.is_foreign()
            || current.records_since.is_none_or(|since| v < since)
        {
            return None;
        }
        // Typed as the plan types them, by the current version, whose partition columns no
        // commit changes; the files kept are pruned again by the version's own manifest.
        let on_partitions: Vec<(TypedFilter, ColType)> = filters
            .iter()
            .filter_map(|f| {
                let dtype = current.partition_type(&f.column)?;
                Some((self.typed_filter(&current, f).ok()?, dtype))
            })
            .collect();
        if on_partitions.is_empty() {
            return None;
        }
        let keep = |_: &str, values: &crate::manifest::PartitionValues| {
            on_partitions.iter().all(|(f, dtype)| {
                f.partition_may_match(partition_value(values.value(&f.column), *dtype).as_ref())
            })
        };
        match self
            .store()
            .load_version_where(v, &crate::delta::Keep::by_values(&keep))
        {
            Ok(m) => Some(Arc::new(m)),
            Err(e) => {
                log::debug!("version {v} read whole: {e}");
                None
            }
        }
    }

    /// Filter `f` typed by version `m` (a timestamp column's numbers in any unit, ISO dates).
    fn typed_filter(&self, m: &Manifest, f: &Filter) -> Result<TypedFilter> {
        let dtype = column_type(m, &f.column)
            .ok_or_else(|| unknown_column(m, &format!("filter `{}`", f.text), &f.column))?;
        let datetime = self.is_datetime(&f.column);
        let is_ts = m.kind_spec.column(&f.column).is_some_and(|c| c.timestamp)
            || f.column == m.timestamp_column
            || datetime;
        Ok(TypedFilter {
            datetime,
            ..f.typed(dtype, is_ts)?
        })
    }

    /// Types the filters and prunes the version's files by the manifest (no file is opened).
    pub fn plan(&self, opts: &ScanOptions) -> Result<ScanPlan> {
        let version = self.version_to_read(opts)?;
        let (m, partial) = match self.partitions_of_version(version, &opts.filters) {
            Some(m) => (m, true),
            None => (self.manifest_at(version)?, false),
        };
        let typed = opts
            .filters
            .iter()
            .map(|f| self.typed_filter(&m, f))
            .collect::<Result<Vec<_>>>()?;
        if let Some(cols) = &opts.columns {
            for c in cols {
                let untyped = self.untyped_columns().iter().any(|(n, _)| n == c);
                if column_type(&m, c).is_none() && !untyped {
                    return Err(unknown_column(&m, "columns", c));
                }
            }
        }
        // What the Polars predicates imply prunes too; they filter the rows themselves.
        let implied: Vec<TypedFilter> = opts
            .exprs
            .iter()
            .flat_map(crate::expr_prune::implied)
            .filter(|i| !self.is_datetime(&i.column))
            .filter_map(|i| i.typed(column_type(&m, &i.column)?))
            .collect();
        let paths = self.file_paths(&m);
        let (entries, files): (Vec<&FileEntry>, Vec<PathBuf>) = m
            .files
            .iter()
            .zip(paths)
            .filter(|(f, _)| may_match(&m, f, &typed) && may_match(&m, f, &implied))
            .unzip();
        // Files of other tools (a plain folder, a Delta table) read as their names say, which
        // the manifest pqdm made of them need not: their rows are always filtered.
        let foreign = self.is_foreign();
        let row_filters = typed
            .iter()
            .filter(|f| foreign || !entries.iter().all(|e| holds_for_every_row(&m, e, f)))
            .cloned()
            .collect();
        Ok(ScanPlan {
            total_files: match partial {
                true => m.file_count as usize,
                false => m.files.len(),
            },
            sizes: entries.iter().map(|e| e.bytes).collect(),
            files,
            filters: typed,
            row_filters,
            manifest: m,
        })
    }

    /// The files a scan with `opts` reads whose bytes no longer have the checksum the manifest
    /// recorded, or that are gone (relative paths): what to name when Polars, which names no
    /// file, fails to read one. Reads every planned file, so it is meant for that error path;
    /// a dataset without a manifest has no checksums and names none.
    pub fn damaged_files(&self, opts: &ScanOptions) -> Result<Vec<String>> {
        let plan = self.plan(opts)?;
        if self.is_foreign() {
            return Ok(vec![]);
        }
        let planned: std::collections::BTreeSet<&PathBuf> = plan.files.iter().collect();
        let m = &plan.manifest;
        let candidates: Vec<(&FileEntry, PathBuf)> = m
            .files
            .iter()
            .zip(self.file_paths(m))
            .filter(|(_, p)| planned.contains(p))
            .collect();
        self.damaged_among(&candidates)
    }

    /// Of `files` (entries with the paths they are read at), those whose bytes are missing or
    /// no longer have the checksum their entry records, in parallel. A local file is hashed as
    /// it is read, 64 KiB at a time, never copied whole into memory (compaction's check of
    /// 1,005 files of 640 KB: 0.2 s less of its 3 s).
    pub(crate) fn damaged_among(&self, files: &[(&FileEntry, PathBuf)]) -> Result<Vec<String>> {
        use rayon::prelude::*;
        let damaged: Vec<Option<String>> = files
            .par_iter()
            .map(|(f, path)| {
                let hash = match crate::storage::is_remote(path) {
                    true => self
                        .store()
                        .read_planned(path, &f.path)?
                        .map(|b| blake3::hash(&b)),
                    false => match std::fs::File::open(path) {
                        Ok(file) => {
                            let mut hasher = blake3::Hasher::new();
                            hasher.update_reader(file).map_err(Error::io(path))?;
                            Some(hasher.finalize())
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                        Err(e) => return Err(Error::io(path)(e)),
                    },
                };
                let intact = hash.is_some_and(|h| h.to_hex().as_str() == f.checksum);
                Ok((!intact).then(|| f.path.clone()))
            })
            .collect::<Result<_>>()?;
        Ok(damaged.into_iter().flatten().collect())
    }

    /// A lazy scan of the dataset: filters prune folders and files by the manifest, then
    /// projection and predicates are pushed down into the Parquet reader; partition columns
    /// come typed as the manifest records.
    ///
    /// ```no_run
    /// use polars::prelude::*;
    /// let ds = pqdm::Dataset::open("target/demo/klines")?;
    /// let opts = pqdm::ScanOptions::default()
    ///     .filter("symbol == ETHUSDT")?
    ///     .filter("timestamp >= 2025-01-01")?
    ///     .columns(&["timestamp", "close"]);
    /// let df = ds.scan(&opts)?.filter(col("close").gt(lit(3000.0))).collect()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn scan(&self, opts: &ScanOptions) -> Result<LazyFrame> {
        let plan = self.plan(opts)?;
        let m = &plan.manifest;
        let mut schema = output_schema(m);
        // A listed folder's columns pqdm has no type for come as stored, not dropped.
        for (name, dtype) in self.untyped_columns() {
            schema.with_column(name.as_str().into(), dtype.clone());
        }
        log::debug!(
            "scan {}: {} of {} files after pruning",
            self.base().display(),
            plan.files.len(),
            plan.total_files
        );
        let lf = if plan.files.is_empty() {
            DataFrame::empty_with_schema(&schema).lazy()
        } else {
            let paths: Vec<PlRefPath> = crate::storage::scan_urls(&plan.files, &plan.sizes)
                .iter()
                .map(|p| PlRefPath::try_from_path(p))
                .collect::<PolarsResult<_>>()
                .map_err(Error::polars("paths"))?;
            let mut hive = Schema::default();
            if !m.partition_columns.is_empty() {
                // Polars reads every `k=v` folder of a file's path as a partition; it cannot be
                // told where the dataset starts (`hive_start_idx` is reset for listed files).
                // The base's own ones are read as text and dropped by the final `select`.
                for name in base_hive_keys(self.base()) {
                    if column_type(m, &name).is_some() || hive.contains(&name) {
                        return Err(Error::Dataset {
                            path: self.base().to_path_buf(),
                            message: format!(
                                "a folder of the dataset's own path is named like a partition \
                                 of its column `{name}` (`{name}=...`), and Polars would read that \
                                 folder as the column: rename the folder or move the dataset"
                            ),
                        });
                    }
                    hive.with_column(name.into(), DataType::String);
                }
            }
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
                // Files written by other tools keep their own dtypes (a Delta table's, its
                // log's schema); pqdm's follow the manifest.
                schema: match self.is_foreign() {
                    true => self.foreign_file_schema(),
                    false => Some(Arc::new(file_schema)),
                },
                allow_missing_columns: true,
                glob: false,
                cloud_options: self.store().cloud_options(),
                ..Default::default()
            };
            LazyFrame::scan_parquet_files(paths.into(), args)
                .map_err(Error::polars(format!("scan {}", self.base().display())))?
        };
        let predicate = plan
            .row_filters
            .iter()
            .map(TypedFilter::to_expr)
            .chain(opts.exprs.iter().cloned())
            .reduce(|a, b| a.and(b));
        let lf = match predicate {
            Some(p) => lf.filter(p),
            None => lf,
        };
        let order: Vec<Expr> = match &opts.columns {
            Some(cols) => cols.iter().map(|c| col(c.as_str())).collect(),
            None => schema.iter_names().map(|n| col(n.clone())).collect(),
        };
        Ok(lf.select(order))
    }

    /// Collects a scan of the current version. A concurrent commit (compaction, upsert) may move
    /// a file away between planning and reading; the scan is then planned again on the new
    /// version, so the result is always one whole version.
    pub fn read(&self, opts: &ScanOptions) -> Result<DataFrame> {
        const ATTEMPTS: usize = 5;
        let mut attempt = 1;
        loop {
            match self.scan(opts)?.collect() {
                Ok(df) => return Ok(df),
                Err(e)
                    if attempt < ATTEMPTS
                        && opts.version.is_none()
                        && opts.as_of.is_none()
                        && is_not_found(&e) =>
                {
                    log::info!(
                        "scan of {}: a file moved during the read, reading the new version",
                        self.base().display()
                    );
                    self.refresh()?;
                    attempt += 1;
                }
                Err(e) => return Err(Error::polars(format!("scan {}", self.base().display()))(e)),
            }
        }
    }

    /// Rows per batch for `opts`: `configured` (flag, environment or config file, see
    /// [`crate::config::Config::scan_batch_size`]) or, when none is, about `PQDM_BATCH_BYTES`
    /// (64 MiB) of the projected columns, bounded by the memory available. Logged.
    pub fn batch_choice(
        &self,
        opts: &ScanOptions,
        configured: Option<(usize, &str)>,
    ) -> Result<crate::memory::BatchChoice> {
        let m = self.header_at(self.version_to_read(opts)?)?;
        let fields: Vec<crate::manifest::Field> = m
            .schema
            .iter()
            .chain(&m.partition_columns)
            .cloned()
            .collect();
        let choice = match configured {
            Some((rows, source)) => {
                let row_bytes = crate::memory::row_bytes(&fields, opts.columns.as_deref());
                crate::memory::BatchChoice {
                    rows,
                    row_bytes,
                    target_bytes: rows as u64 * row_bytes,
                    source: source.to_string(),
                }
            }
            None => crate::memory::auto_batch(&fields, opts.columns.as_deref())?,
        };
        log::info!(
            "scan {}: {} rows per batch ({}; ~{} bytes per row, ~{} MiB per batch)",
            self.base().display(),
            choice.rows,
            choice.source,
            choice.row_bytes,
            (choice.rows as u64 * choice.row_bytes) >> 20
        );
        Ok(choice)
    }

    /// The scan as an iterator of `DataFrame`s of exactly `batch_size` rows (the last may be
    /// smaller), produced by the streaming engine with backpressure.
    pub fn batches(&self, opts: &ScanOptions, batch_size: usize) -> Result<Batches> {
        let size = NonZeroUsize::new(batch_size)
            .ok_or_else(|| Error::Options("batch size must be at least 1".into()))?;
        Batches::start(self.scan(opts)?, Some(size)).map_err(Error::polars("start the batch scan"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_folders_named_like_partitions_are_found_as_polars_finds_them() {
        let keys = |p: &str| base_hive_keys(std::path::Path::new(p));
        assert_eq!(keys("/srv/env=prod/x/ds"), vec!["env"]);
        assert_eq!(keys("s3://bucket/team=a/b=/ds"), vec!["team", "b"]);
        assert_eq!(keys("/srv/a=b=c/d=*x/e=%FF/ds"), Vec::<String>::new());
        assert_eq!(keys("data/ds"), Vec::<String>::new());
    }
}
