//! Partitioned writes: cast → derive partition columns → Polars' partitioned sink into a
//! private staging folder → per-file stats → merge with the current version under the commit
//! lock (upsert / append / overwrite / error) → atomic commit.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use polars::prelude::file_provider::{FileProviderArgs, FileProviderReturn, FileProviderType};
use polars::prelude::*;
use rayon::prelude::*;
use serde::Serialize;

use crate::cast::{CastOptions, cast_to_kind};
use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::footer;
use crate::ingested::SourceBatch;
use crate::key_order::KeyOrder;
use crate::manifest::{Field, FileEntry, Manifest, Operation, STAGED_SUFFIX};
use crate::metrics::OpTimer;
use crate::options::{Compression, FileLayout, WriteMode};
use crate::partition;
use crate::partition_values::PartitionValues;
use crate::schema::{ColType, Kind};
use crate::slices::Slicing;
use crate::timestamp;
use crate::txn::{Change, Staging, Written};
use crate::upsert::{self, KeyFile};

/// Called once for every data file a write committed.
pub type FileCallback = Arc<dyn Fn(&FileEntry) + Send + Sync>;

/// Options of one write.
#[derive(Clone, Default)]
pub struct WriteOptions {
    /// What to do with data already in touched partitions; `None`: upsert for keyed kinds, else append.
    pub mode: Option<WriteMode>,
    /// Compression; `None`: the dataset's setting.
    pub compression: Option<Compression>,
    /// File and row-group sizes (`max_rows_per_file` `None`: the dataset's setting).
    pub layout: FileLayout,
    /// Key-value metadata written into every file footer and the manifest.
    pub metadata: BTreeMap<String, String>,
    /// Turn uncastable values into nulls (counted in the report) instead of failing.
    pub lenient: bool,
    /// Values for identity columns the input lacks (`exchange`, `symbol`, `timeframe`).
    pub constants: BTreeMap<String, String>,
    /// Names the input in error messages.
    pub source_name: Option<String>,
    /// Called for every file the write committed.
    pub on_file: Option<FileCallback>,
    /// How large inputs are sliced to stay under a memory budget.
    pub memory_limit: crate::options::MemoryLimit,
    /// The unit of numeric timestamps; `None`: each value's magnitude says (see [`crate::timestamp`]).
    pub timestamp_unit: Option<crate::timestamp::Unit>,
    /// After the commit, compact each partition the write touched that holds more than this
    /// many files below the dataset's `max_rows_per_file`; `None`: the dataset's
    /// `auto_compact` setting (off when unset).
    pub compact_after: Option<usize>,
}

/// Upserts store one row per key: where the input itself repeats a key, its last row wins.
/// Checked on the staged files (key columns only, a batch of partitions per query), or on
/// `small_input` (the cast frame with its partition columns) when given, so the write itself
/// streams and only partitions that hold repeats are read whole and rewritten. Returns whether
/// any partition was rewritten.
#[allow(clippy::too_many_arguments)]
fn dedupe_staged(
    staging: &Staging,
    staged: &[(PathBuf, String)],
    entries: &[FileEntry],
    key: &[String],
    small_input: Option<(&LazyFrame, &[String])>,
    max_rows_per_file: usize,
    pq: &Arc<ParquetWriteOptions>,
    op_id: &str,
) -> Result<bool> {
    let files = KeyFile::staged(staged, entries);
    let repeated = match small_input {
        Some((frame, part_cols)) => upsert::input_folders_with_repeats(frame, part_cols, key)?,
        None => upsert::folders_with_repeats(&files, key)?,
    };
    let key_cols: Vec<Expr> = key.iter().map(|k| col(k.as_str())).collect();
    for rel_dir in &repeated {
        let paths: Vec<PathBuf> = files
            .iter()
            .filter(|f| &f.dir == rel_dir)
            .map(|f| f.path.clone())
            .collect();
        let kept = scan_files(&paths, false)?
            .unique_stable_generic(Some(key_cols.clone()), UniqueKeepStrategy::Last)
            .collect()
            .map_err(Error::polars(format!(
                "upsert: keep the last row per key in {rel_dir}"
            )))?;
        for p in &paths {
            std::fs::remove_file(p).map_err(Error::io(p))?;
        }
        sink_partitioned(
            kept.lazy(),
            staging,
            &[],
            rel_dir,
            &format!("{op_id}-u"),
            max_rows_per_file,
            pq.clone(),
        )?;
    }
    Ok(!repeated.is_empty())
}

/// The staged files of a write with their entries and their nulls per column (files read in
/// parallel).
struct StagedFiles {
    files: Vec<(PathBuf, String)>,
    entries: Vec<FileEntry>,
    nulls: BTreeMap<String, u64>,
    /// Columns some file has no null count for.
    nulls_unknown: BTreeSet<String>,
}

impl StagedFiles {
    fn read(staging: &Staging, kind: &Kind) -> Result<StagedFiles> {
        let files = staging.files()?;
        log::debug!(
            "{} of {} staged files hashed as written",
            staging.written().recorded(),
            files.len()
        );
        let read: Vec<(FileEntry, footer::FooterInfo)> = files
            .par_iter()
            .map(|(path, rel)| staged_entry(staging, path, rel, kind, 0))
            .collect::<Result<_>>()?;
        let mut nulls: BTreeMap<String, u64> = BTreeMap::new();
        let mut nulls_unknown = BTreeSet::new();
        let mut entries = Vec::with_capacity(read.len());
        for (entry, info) in read {
            for (column, n) in info.null_counts {
                *nulls.entry(column).or_default() += n;
            }
            nulls_unknown.extend(info.null_counts_unknown);
            entries.push(entry);
        }
        Ok(StagedFiles {
            files,
            entries,
            nulls,
            nulls_unknown,
        })
    }
}

/// One input of a write: a frame and what names it in errors.
#[derive(Clone)]
pub struct Input {
    /// The rows, in any column naming and dtypes the kind can cast.
    pub frame: LazyFrame,
    /// Names the input in errors (its file path).
    pub source_name: String,
    /// Values for identity columns this input lacks (from its file name); options override them.
    pub constants: BTreeMap<String, String>,
    /// Its row count where known without reading it (Parquet footers). Give it only for a
    /// frame that yields the same rows in the same order every time it runs (a scan of files):
    /// a write under a memory budget then runs it once per slice of rows. Without it, such a
    /// write runs the frame once and gathers its batches into slices.
    pub rows: Option<u64>,
}

/// The first row (1-based, with its input's name) where `pred` holds, with the values of
/// `show` in that row; `None` when no input has one (or the query cannot run).
fn first_row(
    inputs: &[(String, LazyFrame)],
    pred: Expr,
    show: Expr,
) -> Option<(String, u64, AnyValue<'static>)> {
    for (name, frame) in inputs {
        let found = frame
            .clone()
            .with_row_index("__pqdm_row", Some(1))
            .filter(pred.clone())
            .select([
                col("__pqdm_row").cast(DataType::UInt64),
                show.clone().alias("__pqdm_show"),
            ])
            .limit(1)
            .collect();
        let Ok(df) = found else { continue };
        let cell = |c: &str| {
            df.column(c)
                .ok()
                .and_then(|c| c.get(0).ok())
                .map(|v| v.into_static())
        };
        if let (Some(row), Some(value)) = (
            cell("__pqdm_row").and_then(|v| v.extract::<u64>()),
            cell("__pqdm_show"),
        ) {
            return Some((name.clone(), row, value));
        }
    }
    None
}

/// Finds the first empty value of a required column, naming its input and row (strict mode
/// found it in the staged files' statistics, so the happy path costs no extra pass).
fn first_null(inputs: &[(String, LazyFrame)], column: &str) -> Error {
    match first_row(inputs, col(column).is_null(), lit(NULL)) {
        Some((name, row, _)) => Error::MissingValue {
            source_name: name,
            column: column.to_string(),
            row,
        },
        None => Error::Options(format!("required column `{column}` holds empty values")),
    }
}

/// Finds the first stored timestamp outside the range readers hold, naming its input and row.
fn first_out_of_range(inputs: &[(String, LazyFrame)], ts: &str) -> Error {
    match first_row(inputs, timestamp::in_range(col(ts)).not(), col(ts)) {
        Some((name, row, value)) => {
            let value = value.extract::<i64>().unwrap_or(0);
            Error::TimestampRange {
                source_name: name,
                column: ts.to_string(),
                row,
                value,
                iso: timestamp::format_millis(value),
            }
        }
        None => Error::Options(format!(
            "a timestamp in `{ts}` is outside 1970-01-01 .. 2262-04-11"
        )),
    }
}

/// Finds the first value of partition column `column` that would read back as null (see
/// [`partition::reads_as_null`]), naming its input and row.
fn first_null_like(inputs: &[(String, LazyFrame)], column: &str) -> Error {
    let text = col(column).cast(DataType::String);
    let pred = text
        .clone()
        .eq(lit(""))
        .or(text.eq(lit(partition::NULL_VALUE)));
    match first_row(inputs, pred, col(column).cast(DataType::String)) {
        Some((name, row, value)) => Error::PartitionValue {
            at: format!("{name}: row {row}"),
            column: column.to_string(),
            value: partition::value_text(&value).unwrap_or_default(),
        },
        None => Error::PartitionValue {
            at: "the input".to_string(),
            column: column.to_string(),
            value: String::new(),
        },
    }
}

/// Refuses a `timeframe` given as a constant (`--timeframe`, a file name, the library's
/// constants) that is no timeframe, before anything is read: `0m` would divide by zero in `verify`.
fn check_timeframes(inputs: &[Input], opts: &WriteOptions) -> Result<()> {
    let given = inputs
        .iter()
        .map(|i| &i.constants)
        .chain([&opts.constants])
        .filter_map(|c| c.get("timeframe"));
    for tf in given {
        timestamp::timeframe_cadence(tf).map_err(|why| {
            Error::Options(format!("timeframe {}: {why}", crate::error::clip(tf)))
        })?;
    }
    Ok(())
}

/// After a failed write, finds the first input that cannot be read and names it in the error:
/// first by counting each input's rows (cheap: a file that cannot be opened or split into rows),
/// then by reading each whole (a field that does not parse).
fn blame_input(inputs: &[Input], err: Error) -> Error {
    if inputs.len() < 2 && inputs.first().is_none_or(|i| i.source_name == "frame") {
        return err;
    }
    let count = |frame: &LazyFrame| frame.clone().select([len()]).collect().err();
    let read = |frame: &LazyFrame| match crate::batches::Batches::start(frame.clone(), None) {
        Ok(mut batches) => batches.find_map(|b| b.err()),
        Err(e) => Some(e),
    };
    for probe in [&count as &dyn Fn(&LazyFrame) -> Option<PolarsError>, &read] {
        for input in inputs {
            if let Some(e) = probe(&input.frame) {
                return Error::Input {
                    path: PathBuf::from(&input.source_name),
                    message: crate::error::clip_lines(&e.to_string()),
                };
            }
        }
    }
    err
}

/// One file a write committed.
#[derive(Clone, Debug, Serialize)]
pub struct WrittenFile {
    /// Path relative to the dataset base.
    pub path: String,
    /// Partition values.
    pub partition: BTreeMap<String, Option<String>>,
    /// Rows.
    pub rows: u64,
    /// Bytes.
    pub bytes: u64,
}

/// What a write did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct WriteReport {
    /// The operation id (also in the log lines and the manifest).
    pub op_id: String,
    /// The version the write committed (unchanged if it wrote nothing).
    pub version: u64,
    /// Write mode used.
    pub mode: String,
    /// Rows in the written input (after in-input deduplication for upserts).
    pub rows_written: u64,
    /// Stored rows replaced (upsert: same key; overwrite: whole partitions).
    pub rows_replaced: u64,
    /// Stored files the commit replaced.
    pub files_replaced: u64,
    /// Files the commit added.
    pub files: Vec<WrittenFile>,
    /// Whether the write changed no stored row (an upsert whose rows are all stored already):
    /// no version was committed, unless one was needed to record the sources it read.
    pub unchanged: bool,
    /// Input rows equal to stored rows, not written again (upsert).
    pub rows_unchanged: u64,
    /// Source files read (`ingest`).
    pub sources_read: u64,
    /// Source files skipped: ingested before and unchanged (`ingest`).
    pub sources_skipped: u64,
    /// Source files the commit recorded in the sources index (`ingest`; a source edited while
    /// it was read is not recorded, and is read again next time).
    pub sources_recorded: u64,
    /// The compaction that followed the write (`compact_after` / `auto_compact`), if it
    /// rewrote anything: its own version, files, time and memory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compaction: Option<crate::maintain::compact::CompactReport>,
    /// Per column, values lenient mode turned into nulls.
    pub nulled: BTreeMap<String, u64>,
    /// Blank lines skipped in CSV inputs.
    pub blank_lines_skipped: u64,
    /// Commit attempts the write took (more than 1 when other writers to an object store took
    /// the version it meant to make first; 0 when it committed nothing).
    pub commit_attempts: u32,
    /// Times the write merged its rows with the stored ones: 1, plus one for each retry whose
    /// partitions another writer changed in between (a retry after a commit to other
    /// partitions is rebased onto it without merging again).
    pub merges: u32,
    /// Wall time of the write in milliseconds.
    pub wall_ms: u64,
    /// Peak resident memory of the process, in bytes.
    pub peak_rss_bytes: u64,
}

impl WriteReport {
    /// The report in one line for people: the version and what changed, or `unchanged`, and
    /// what was skipped.
    pub fn summary(&self) -> String {
        let mut text = match self.unchanged {
            true => format!("unchanged (version {}, {})", self.version, self.mode),
            false => format!(
                "version {} ({}): {} rows in {} files, {} stored rows replaced",
                self.version,
                self.mode,
                self.rows_written,
                self.files.len(),
                self.rows_replaced
            ),
        };
        if self.rows_unchanged > 0 {
            text += &format!(", {} rows already stored", self.rows_unchanged);
        }
        if self.sources_skipped > 0 {
            text += &format!(
                ", {} of {} sources skipped (ingested before, unchanged)",
                self.sources_skipped,
                self.sources_skipped.saturating_add(self.sources_read)
            );
        }
        if self.sources_recorded > 0 {
            text += &format!(", {} sources recorded", self.sources_recorded);
        }
        if let Some(c) = &self.compaction {
            text += &format!(
                "; then compacted {} partitions ({} files into {}) as version {} in {} ms",
                c.partitions,
                c.files_before,
                c.files_after,
                c.version.unwrap_or_default(),
                c.wall_ms
            );
        }
        text
    }
}

/// The Parquet writer options for `compression`, `row_group_size` and `metadata`.
pub fn parquet_options(
    compression: Compression,
    row_group_size: usize,
    metadata: &BTreeMap<String, String>,
) -> Arc<ParquetWriteOptions> {
    let kv: Vec<(String, String)> = metadata
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Arc::new(ParquetWriteOptions {
        compression: compression.to_polars(),
        statistics: StatisticsOptions::default(),
        row_group_size: Some(row_group_size),
        data_page_size: None,
        key_value_metadata: if kv.is_empty() {
            None
        } else {
            Some(KeyValueMetadata::from_static(kv))
        },
        arrow_schema: None,
        compat_level: None,
    })
}

/// The hive folder (`k=v/k=v`) of one partition-key row. Refused, naming the column (the
/// caller names the row): a value that would read back as null (see
/// [`partition::reads_as_null`]), so that it never shares the null folder
/// ([`Error::PartitionValue`]), and one whose folder name no file system takes
/// ([`Error::PartitionTooLong`]).
pub(crate) fn hive_dir(keys: &DataFrame) -> Result<String> {
    let mut segments = Vec::with_capacity(keys.width());
    for c in keys.columns() {
        let v = c.get(0).ok().and_then(|v| partition::value_text(&v));
        let column = c.name().to_string();
        if v.as_deref().is_some_and(partition::reads_as_null) {
            return Err(Error::PartitionValue {
                at: "the input".into(),
                column,
                value: String::new(),
            });
        }
        let segment = partition::segment(c.name(), v.as_deref());
        if segment.len() > partition::MAX_SEGMENT_BYTES {
            return Err(Error::PartitionTooLong {
                at: "the input".into(),
                column,
                value: v.unwrap_or_default(),
                bytes: segment.len(),
            });
        }
        segments.push(segment);
    }
    Ok(segments.join("/"))
}

/// Finds the first row holding the partition value a sink refused as too long, naming its
/// input and row.
fn first_too_long(inputs: &[(String, LazyFrame)], refused: Error) -> Error {
    let Error::PartitionTooLong {
        column,
        value,
        bytes,
        at,
    } = refused
    else {
        return refused;
    };
    let pred = col(column.as_str())
        .cast(DataType::String)
        .eq(lit(value.clone()));
    let at = first_row(inputs, pred, lit(NULL))
        .map(|(name, row, _)| format!("{name}: row {row}"))
        .unwrap_or(at);
    Error::PartitionTooLong {
        at,
        column,
        value,
        bytes,
    }
}

/// Where a sink writes the rows of a refused partition value (never committed: not `.staged`).
const REFUSED_DIR: &str = "__pqdm_refused";

/// The name of the `seq`-th file one sink stages (`part-<prefix>-<seq>`). Numbers are
/// zero-padded to a fixed width so that the names of one write sort in the order the files were
/// written (within a partition, input order), and every file of a sink has its own name.
fn staged_name(prefix: &str, seq: u64) -> String {
    format!("part-{prefix}-{seq:010}.parquet{STAGED_SUFFIX}")
}

/// The name prefix of the `index`-th slice of a write staged in slices, padded so that slices
/// sort in input order (`c000002` before `c000010`).
fn slice_prefix(op_id: &str, index: usize) -> String {
    format!("{op_id}-c{index:06}")
}

/// Sinks `lf` into `staging` partitioned by `keys`, every file under its own name
/// ([`staged_name`] with `prefix`). A partition value that would read back as null is refused
/// ([`Error::PartitionValue`], [`Error::PartitionTooLong`]: naming the column; the caller names
/// the row).
pub(crate) fn sink_partitioned(
    lf: LazyFrame,
    staging: &Staging,
    keys: &[String],
    fixed_dir: &str,
    prefix: &str,
    max_rows_per_file: usize,
    options: Arc<ParquetWriteOptions>,
) -> Result<()> {
    let prefix = prefix.to_string();
    let fixed = fixed_dir.to_string();
    let refused: Arc<std::sync::Mutex<Option<Error>>> = Default::default();
    let refused_in = refused.clone();
    let refused_files = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (staging_dir, written) = (staging.dir().to_path_buf(), staging.written().clone());
    let provider = move |args: FileProviderArgs| -> PolarsResult<FileProviderReturn> {
        let hive = match hive_dir(&args.partition_keys) {
            Ok(hive) => hive,
            // Refused, but written aside (the write then fails): failing the sink instead
            // would leave Polars finishing other files after it returns.
            Err(e) => {
                *refused_in.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                let n = refused_files.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Ok(FileProviderReturn::Path(format!(
                    "{REFUSED_DIR}/{n}.parquet"
                )));
            }
        };
        let dir = [fixed.as_str(), &hive]
            .into_iter()
            .filter(|d| !d.is_empty())
            .collect::<Vec<_>>()
            .join("/");
        let name = staged_name(
            &prefix,
            // The file's place in its partition's stream, not the order in which Polars asks
            // for names (threads ask out of order): names then sort as the rows were written.
            // Two partition keys never share a folder, as values that read back as null are
            // written aside (above).
            args.index_in_partition as u64,
        );
        // Created here, hashed as Polars writes it: the commit reads back only its footer.
        let rel = Staging::name_for(&dir, &name);
        written
            .create(&staging_dir, &rel)
            .map(FileProviderReturn::Writable)
            .map_err(|e| polars_err!(ComputeError: "{}", Error::io(staging_dir.join(&rel))(e)))
    };
    let base = PlRefPath::try_from_path(staging.dir()).map_err(Error::polars("staging path"))?;
    let dest = SinkDestination::Partitioned {
        base_path: base,
        file_path_provider: Some(FileProviderType::Function(PlanCallback::new(provider))),
        partition_strategy: if keys.is_empty() {
            PartitionStrategy::FileSize
        } else {
            PartitionStrategy::Keyed {
                keys: keys.iter().map(|k| col(k.as_str())).collect(),
                include_keys: false,
                keys_pre_grouped: false,
            }
        },
        max_rows_per_file: max_rows_per_file as IdxSize,
        approximate_bytes_per_file: 0,
    };
    let args = UnifiedSinkArgs {
        mkdir: true,
        maintain_order: true,
        ..Default::default()
    };
    let written = lf
        .sink(dest, FileWriteFormat::Parquet(options), args)
        .map_err(Error::polars("plan the partitioned write"))?
        .collect_with_engine(Engine::Streaming);
    written.map_err(Error::polars("write partitions"))?;
    match refused.lock().unwrap_or_else(|e| e.into_inner()).take() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Sinks `lf` into one file staged for partition folder `dir` (named as
/// [`sink_partitioned`]'s first file would be): row group by row group, never holding the rows
/// of a file, for writes that fit one file.
pub(crate) fn sink_staged_file(
    lf: LazyFrame,
    staging: &Staging,
    dir: &str,
    prefix: &str,
    options: Arc<ParquetWriteOptions>,
) -> Result<()> {
    let name = Staging::name_for(dir, &staged_name(prefix, 0));
    sink_file(lf, &staging.dir().join(name), options)
}

/// Sinks `lf` into one Parquet file (streaming).
pub fn sink_file(lf: LazyFrame, path: &Path, options: Arc<ParquetWriteOptions>) -> Result<()> {
    let target = SinkTarget::Path(PlRefPath::try_from_path(path).map_err(Error::polars("path"))?);
    let args = UnifiedSinkArgs {
        mkdir: true,
        ..Default::default()
    };
    lf.sink(
        SinkDestination::File { target },
        FileWriteFormat::Parquet(options),
        args,
    )
    .map_err(Error::polars("plan the file write"))?
    .collect_with_engine(Engine::Streaming)
    .map_err(Error::polars(format!("write {}", path.display())))?;
    Ok(())
}

/// Builds the manifest entry of a file of a `kind` dataset about to be committed at `rel`
/// (stats from its footer).
///
/// Streams the file (footer read by seeking, checksum hashed in chunks): a file of any size
/// costs no more memory than its footer.
pub fn file_entry(path: &Path, rel: &str, kind: &Kind, version: u64) -> Result<FileEntry> {
    let mut file = std::fs::File::open(path).map_err(Error::io(path))?;
    Ok(entry_of_file(&mut file, path, rel, kind, version, None)?.0)
}

/// The entry of the open file `file` (at `path`) to be committed at `rel`, with its footer:
/// size and checksum from `written` where its writer recorded them, else by streaming the file
/// through blake3.
fn entry_of_file(
    file: &mut std::fs::File,
    path: &Path,
    rel: &str,
    kind: &Kind,
    version: u64,
    written: Option<Written>,
) -> Result<(FileEntry, footer::FooterInfo)> {
    use std::io::Seek;
    let info = footer::footer_of(file, path, Some(&kind.timestamp_column))?;
    let (bytes, checksum) = match written {
        Some(w) => (w.bytes, w.checksum),
        None => {
            file.rewind().map_err(Error::io(path))?;
            let mut hasher = blake3::Hasher::new();
            // blake3's reader loop reads 64 KiB at a time (`io::copy`: 8 KiB, 8 times the calls).
            hasher.update_reader(&mut *file).map_err(Error::io(path))?;
            let bytes = file.stream_position().map_err(Error::io(path))?;
            (bytes, hasher.finalize())
        }
    };
    let checksum = checksum.to_hex().to_string();
    Ok((entry_from(&info, bytes, checksum, rel, kind, version), info))
}

/// Builds the manifest entry of the file whose bytes are `bytes` (`path` names it in errors).
pub fn entry_of(
    bytes: &[u8],
    path: &Path,
    rel: &str,
    kind: &Kind,
    version: u64,
) -> Result<FileEntry> {
    let info = footer::footer_of(
        &mut std::io::Cursor::new(bytes),
        path,
        Some(&kind.timestamp_column),
    )?;
    let checksum = blake3::hash(bytes).to_hex().to_string();
    Ok(entry_from(
        &info,
        bytes.len() as u64,
        checksum,
        rel,
        kind,
        version,
    ))
}

/// The entry of a file staged in `staging` to be committed at `rel`, with its footer. A file
/// whose writer recorded its size and checksum ([`WrittenLog::get`]) is read for its footer
/// only: a write into 36,500 partitions read its 2.5 GB back to hash it, 1 s of its time. Any
/// other is streamed through blake3 ([`file_entry`]).
pub(crate) fn staged_entry(
    staging: &Staging,
    path: &Path,
    rel: &str,
    kind: &Kind,
    version: u64,
) -> Result<(FileEntry, footer::FooterInfo)> {
    let mut file = std::fs::File::open(path).map_err(Error::io(path))?;
    let written = staging.written().get(path, &file);
    entry_of_file(&mut file, path, rel, kind, version, written)
}

/// The manifest entry of the file at `rel` whose footer says `info`.
fn entry_from(
    info: &footer::FooterInfo,
    bytes: u64,
    checksum: String,
    rel: &str,
    kind: &Kind,
    version: u64,
) -> FileEntry {
    FileEntry {
        path: rel.to_string(),
        partition: PartitionValues::new(partition::parse_path(rel)),
        rows: info.rows,
        bytes,
        min_timestamp: info.min,
        max_timestamp: info.max,
        key_ranges: kind
            .range_columns()
            .filter_map(|k| match info.int_ranges.get(k) {
                Some(Some((lo, hi))) => Some((k.clone(), [*lo, *hi])),
                _ => None,
            })
            .collect(),
        checksum,
        added_in: version,
        null_timestamps: (!info.null_counts_unknown.contains(&kind.timestamp_column)).then(|| {
            info.null_counts
                .get(&kind.timestamp_column)
                .copied()
                .unwrap_or(0)
        }),
    }
}

/// Scans data files (no hive columns), with the file path in `__file` if asked.
pub(crate) fn scan_files(paths: &[PathBuf], with_path: bool) -> Result<LazyFrame> {
    scan_data_files(paths, with_path, None)
}

/// Scans data files as the dataset's data columns `schema` (no hive columns), as scans read
/// them: a column a file lacks (it was added later) comes back null.
pub(crate) fn scan_files_as(
    paths: &[PathBuf],
    with_path: bool,
    schema: &[Field],
) -> Result<LazyFrame> {
    let mut file_schema = Schema::default();
    for f in schema {
        file_schema.with_column(f.name.as_str().into(), f.dtype.dtype());
    }
    scan_data_files(paths, with_path, Some(Arc::new(file_schema)))
}

fn scan_data_files(
    paths: &[PathBuf],
    with_path: bool,
    schema: Option<SchemaRef>,
) -> Result<LazyFrame> {
    let list: Vec<PlRefPath> = paths
        .iter()
        .map(|p| PlRefPath::try_from_path(p))
        .collect::<PolarsResult<_>>()
        .map_err(Error::polars("paths"))?;
    LazyFrame::scan_parquet_files(
        list.into(),
        ScanArgsParquet {
            hive_options: HiveOptions {
                enabled: Some(false),
                ..Default::default()
            },
            schema,
            include_file_paths: with_path.then(|| "__file".into()),
            allow_missing_columns: true,
            // Paths are literal: a folder named `x[1]` is no pattern.
            glob: false,
            cloud_options: match paths.first() {
                Some(p) => crate::storage::cloud_options(p)?,
                None => None,
            },
            ..Default::default()
        },
    )
    .map_err(Error::polars("scan data files"))
}

/// The partition values of a folder (`k=v/k=v`) as typed values, so that an adopted
/// `month=01/day=05` and a written `month=1/day=5` are the same partition.
pub(crate) fn typed_folder(dir: &str, columns: &[Field]) -> Vec<(String, Option<String>)> {
    partition::parse_path(&format!("{dir}/f"))
        .into_iter()
        .map(|(name, text)| {
            let typed = columns
                .iter()
                .find(|c| c.name == name)
                .and_then(|c| crate::filter::partition_value(text.as_deref(), c.dtype))
                .map(|v| format!("{v:?}"));
            (name, typed.or(text))
        })
        .collect()
}

/// Stored folders that hold the same typed partition as another stored folder a write's files
/// go into, spelled otherwise (an adopted tree with both `month=1` and `month=01`): each with
/// that folder, so that merges treat them as one partition.
pub(crate) type Aliases<'m> = HashMap<&'m str, &'m str>;

/// `dir`, or the folder it is an alias of.
pub(crate) fn unaliased<'a>(aliases: &Aliases<'a>, dir: &'a str) -> &'a str {
    aliases.get(dir).copied().unwrap_or(dir)
}

/// Moves staged files into the folder `current` already has for the same typed partition
/// values when its text differs (a zero-padded `month=01` written by another tool), so writes
/// replace rows there instead of writing a second folder beside it; of several such folders,
/// into the first (in path order), the others returned as its aliases.
fn into_existing_folders<'m>(
    current: &'m Manifest,
    staged: &[(PathBuf, String)],
    entries: &[FileEntry],
) -> (Vec<(PathBuf, String)>, Vec<FileEntry>, Aliases<'m>) {
    let mut typer = FolderTyper::new(&current.partition_columns);
    let wanted: HashSet<Vec<u32>> = staged
        .iter()
        .map(|(_, rel)| typer.key(partition::dir_of(rel)))
        .collect();
    // The first folder (in path order) of each wanted key. Files are sorted by path, so a
    // folder's files are next to each other, and a folder shares its first segments with the
    // one before (daily folders differ in the last): only the others are typed. At 100,000
    // files, typing every segment of every folder took a tenth of a one-day upsert.
    let mut folders: HashMap<Vec<u32>, &str> = HashMap::new();
    let mut others: Vec<(&str, Vec<u32>)> = Vec::new();
    let mut segments: Vec<(&str, Option<u32>)> = Vec::new();
    let mut key: Vec<u32> = Vec::new();
    let mut last = None;
    for f in &current.files {
        let dir = partition::dir_of(&f.path);
        if last == Some(dir) {
            continue;
        }
        last = Some(dir);
        let mut count = 0;
        for segment in dir.split('/') {
            if segments.get(count).is_none_or(|(s, _)| *s != segment) {
                segments.truncate(count);
                segments.push((segment, typer.segment(segment)));
            }
            count += 1;
        }
        segments.truncate(count);
        key.clear();
        key.extend(segments.iter().filter_map(|(_, id)| *id));
        if wanted.contains(&key) {
            match folders.get(&key) {
                None => {
                    folders.insert(key.clone(), dir);
                }
                Some(first) if *first != dir => others.push((dir, key.clone())),
                Some(_) => {}
            }
        }
    }
    let aliases: Aliases = others
        .into_iter()
        .map(|(dir, key)| (dir, folders[&key]))
        .collect();
    let (files, entries) = staged
        .iter()
        .zip(entries)
        .map(|((path, rel), entry)| {
            let (dir, name) = rel.rsplit_once('/').unwrap_or(("", rel.as_str()));
            match folders.get(&typer.key(dir)) {
                Some(existing) if *existing != dir => {
                    let rel = format!("{existing}/{name}");
                    let entry = FileEntry {
                        path: rel.clone(),
                        partition: PartitionValues::new(partition::parse_path(&rel)),
                        ..entry.clone()
                    };
                    ((path.clone(), rel), entry)
                }
                _ => ((path.clone(), rel.clone()), entry.clone()),
            }
        })
        .unzip();
    (files, entries, aliases)
}

/// Keys partition folders by their typed values ([`typed_folder`]), segment by segment, each
/// distinct segment typed once: 100,000 daily folders of 100 symbols have a few hundred
/// distinct segments.
struct FolderTyper<'a> {
    columns: &'a [Field],
    /// Segment text -> the id of its typed (name, value), `None` for a segment holding no
    /// partition value.
    segments: HashMap<String, Option<u32>>,
    typed: HashMap<(String, Option<String>), u32>,
}

impl<'a> FolderTyper<'a> {
    fn new(columns: &'a [Field]) -> FolderTyper<'a> {
        FolderTyper {
            columns,
            segments: HashMap::new(),
            typed: HashMap::new(),
        }
    }

    /// The key of folder `dir`: equal for two folders exactly when their typed folders are.
    fn key(&mut self, dir: &str) -> Vec<u32> {
        dir.split('/')
            .filter_map(|segment| self.segment(segment))
            .collect()
    }

    /// The id of one segment's typed (name, value); `None` for a segment holding no partition
    /// value.
    fn segment(&mut self, segment: &str) -> Option<u32> {
        if let Some(id) = self.segments.get(segment) {
            return *id;
        }
        let pair = typed_folder(segment, self.columns).into_iter().next();
        let next = self.typed.len() as u32;
        let id = pair.map(|p| *self.typed.entry(p).or_insert(next));
        self.segments.insert(segment.to_string(), id);
        id
    }
}

/// A committed write: the version, the merge, the entries of the files added and how many
/// merges it took.
type Committed = (u64, Merge, Vec<FileEntry>, u32);

/// The staged files and replaced files one write contributes to a commit.
#[derive(Default)]
struct Merge {
    /// Files the merge staged: the stored rows kept of a replaced file, and the rows of a new
    /// file left out that are not stored yet.
    staged: Vec<(PathBuf, String)>,
    replaced: Vec<String>,
    rows_replaced: u64,
    /// The write's own staged files (final relative paths) left out of the commit: their rows
    /// are stored already (those that are not are in `staged`).
    left_out: BTreeSet<String>,
    /// New rows equal to stored rows that stay: not written again.
    rows_unchanged: u64,
}

/// What a merge's outcome depends on in the snapshot it ran on: the write's files (placed in
/// the snapshot's folders), the stored files in the key groups of their folders (those it
/// compared with or replaces; none for an append) and the schema. A commit that lost its
/// version to another writer reuses its merge where these are the same on the new version
/// (that writer changed only other partitions), as Delta's conflict checker rebases a commit
/// whose read set no other commit changed.
#[derive(PartialEq)]
struct MergeInputs {
    files: Vec<(PathBuf, String)>,
    /// Whole entries: a repair may rebuild a file's statistics (which the merge prunes by)
    /// under the same path.
    stored: Vec<FileEntry>,
    schema: Vec<Field>,
}

impl MergeInputs {
    fn of(current: &Manifest, mode: WriteMode, w: &Staged) -> MergeInputs {
        let stored = if mode == WriteMode::Append {
            vec![]
        } else {
            let scope = upsert::KeyScope::new(&current.kind_spec, &current.partition_columns);
            let groups: BTreeSet<String> = w
                .files
                .iter()
                .map(|(_, rel)| scope.group(partition::dir_of(rel)))
                .collect();
            current
                .files
                .iter()
                .filter(|f| {
                    let dir = unaliased(w.aliases, partition::dir_of(&f.path));
                    groups.contains(&scope.group(dir))
                })
                .cloned()
                .collect()
        };
        MergeInputs {
            files: w.files.to_vec(),
            stored,
            schema: current.schema.clone(),
        }
    }
}

/// Files a commit adds: (staged path, final relative path), and their entries.
type CommitFiles = (Vec<(PathBuf, String)>, Vec<FileEntry>);

impl Merge {
    /// Deletes the files the merge staged (they are committed by no one).
    fn discard(&self) {
        for (path, _) in &self.staged {
            let _ = std::fs::remove_file(path);
        }
    }

    /// The files the commit adds: the write's own staged files `w` but those left out, then
    /// the merge's, with their entries (for version `version`).
    fn files(&self, w: &Staged, kind: &Kind, version: u64) -> Result<CommitFiles> {
        let (mut staged, mut added): (Vec<_>, Vec<_>) = w
            .files
            .iter()
            .zip(w.entries)
            .filter(|((_, rel), _)| !self.left_out.contains(rel))
            .map(|(f, e)| (f.clone(), e.clone()))
            .unzip();
        for (path, rel) in &self.staged {
            added.push(file_entry(path, rel, kind, version)?);
            staged.push((path.clone(), rel.clone()));
        }
        Ok((staged, added))
    }
}

impl Dataset {
    /// Writes `lf` into the dataset and commits a new version.
    ///
    /// The frame is cast to the dataset's kind (aliases, dtypes, timestamps in ms), derived
    /// partition columns are added, and Polars' streaming partitioned sink writes the files.
    ///
    /// ```no_run
    /// use polars::prelude::*;
    /// use pqdm::{Dataset, WriteOptions};
    /// let ds = Dataset::open("data/klines")?;
    /// let lf = df!("open_time" => [1_704_067_200_000i64], "open" => [1.0], "high" => [1.0],
    ///              "low" => [1.0], "close" => [1.0], "volume" => [3.0],
    ///              "symbol" => ["BTCUSDT"], "exchange" => ["BINANCE"], "timeframe" => ["1m"])?.lazy();
    /// let report = ds.write(lf, &WriteOptions::default())?;
    /// println!("version {} with {} new files", report.version, report.files.len());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write(&self, lf: LazyFrame, opts: &WriteOptions) -> Result<WriteReport> {
        let source_name = opts.source_name.clone().unwrap_or_else(|| "frame".into());
        self.write_inputs(
            vec![Input {
                frame: lf,
                source_name,
                constants: BTreeMap::new(),
                rows: None,
            }],
            opts,
        )
    }

    /// Writes several inputs (each cast on its own, with its own constants) as one commit:
    /// all of them land, or none does.
    pub fn write_inputs(&self, inputs: Vec<Input>, opts: &WriteOptions) -> Result<WriteReport> {
        let mut report = self.write_recording(inputs, opts, &mut SourceBatch::default())?;
        self.compact_touched(&mut report, opts);
        Ok(report)
    }

    /// After a committed write: compacts the partitions it touched that hold more small files
    /// than `opts.compact_after` (or the dataset's `auto_compact`) allows, as Delta's
    /// auto-optimize does, recording what it did in the report. The write has committed, so a
    /// failed compaction is a warning (the next one tries again), never a failed write.
    pub(crate) fn compact_touched(&self, report: &mut WriteReport, opts: &WriteOptions) {
        let threshold = opts.compact_after.or_else(|| {
            self.header()
                .settings
                .auto_compact
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
        });
        let Some(threshold) = threshold else { return };
        if report.unchanged || report.files.is_empty() {
            return;
        }
        let touched: std::collections::BTreeSet<String> = report
            .files
            .iter()
            .map(|f| partition::dir_of(&f.path).to_string())
            .collect();
        let compact = crate::maintain::compact::CompactOptions {
            partitions: Some(touched.into_iter().collect()),
            min_small_files: Some(threshold),
            ..Default::default()
        };
        match self.compact(&compact, &crate::progress::Progress::hidden()) {
            Ok(r) if r.version.is_some() => report.compaction = Some(r),
            Ok(_) => {}
            Err(e) => log::warn!(
                "[{}] version {} is committed; compacting the partitions it touched failed ({e}); the next write or `compact` tries again",
                report.op_id,
                report.version
            ),
        }
    }

    /// [`Dataset::write_inputs`], adding `sources` to the sources index with the commit
    /// (records of sources edited while they were read are dropped first). A write whose rows
    /// change nothing still commits a version when `sources` holds records of sources it read.
    pub(crate) fn write_recording(
        &self,
        inputs: Vec<Input>,
        opts: &WriteOptions,
        sources: &mut SourceBatch,
    ) -> Result<WriteReport> {
        if self.is_foreign() {
            return Err(Error::Dataset {
                path: self.base().to_path_buf(),
                message:
                    "has no manifest (written by another tool); `pqdm adopt` it before writing"
                        .into(),
            });
        }
        check_timeframes(&inputs, opts)?;
        let timer = OpTimer::start("write");
        let manifest = self.header();
        let plan = WritePlan::new(&manifest, opts)?;
        let cast = CastInputs::new(&manifest, &inputs, opts)?;
        log::debug!("[{}] inputs cast at {} ms", timer.op_id, timer.wall_ms());
        let staging = self.store().staging(&timer.op_id)?;
        let kind = &manifest.kind_spec;
        // An upsert's rows are watched for keys in order as they stream: a proof that no key
        // repeats spares reading the staged files back to look.
        let witness = (plan.mode == WriteMode::Upsert && cast.has_columns(&kind.key))
            .then(|| KeyOrder::new(&kind.key));
        // The sink frees and takes back its morsels many times a second: each handed back to
        // the OS at once came back zeroed page by page (2.4M page faults in the README's
        // 36,500-partition ingest, 1.6M while held; peak 556 MiB against 592 MiB).
        let held = crate::allocator::HoldFreedMemory::start();
        let slices = stage_inputs(
            &staging,
            &cast,
            &inputs,
            opts,
            &plan,
            &timer.op_id,
            witness.as_ref(),
        )?;
        drop(held);
        log::debug!("[{}] staged in {} ms", timer.op_id, timer.wall_ms());
        let mut staged = StagedFiles::read(&staging, kind)?;
        let nulled = check_staged(&staged, &cast, kind, opts)?;
        log::debug!("[{}] file stats at {} ms", timer.op_id, timer.wall_ms());
        let staged_rows: u64 = staged.entries.iter().map(|e| e.rows).sum();
        if witness.is_some_and(|w| w.proves_unique(staged_rows)) {
            log::debug!(
                "[{}] no key repeats: the input's rows came in key order",
                timer.op_id
            );
        } else if plan.mode == WriteMode::Upsert {
            let small = (slices == 1).then_some(&cast);
            settle_repeated_keys(
                &mut staged,
                &staging,
                &manifest,
                small,
                &inputs,
                &plan,
                &timer,
            )?;
        }
        let rows_written: u64 = staged.entries.iter().map(|e| e.rows).sum();
        let mut report = WriteReport {
            op_id: timer.op_id.clone(),
            mode: plan.mode.to_string(),
            rows_written,
            nulled,
            ..Default::default()
        };
        sources.finish_hashes()?;
        sources.confirm();
        if rows_written == 0 && !sources.needs_commit() {
            report.version = manifest.version;
            report.unchanged = true;
            (report.wall_ms, report.peak_rss_bytes) = timer.finish();
            return Ok(report);
        }
        let no_aliases = Aliases::new();
        let base = Staged {
            staging: &staging,
            files: &[],
            entries: &[],
            aliases: &no_aliases,
            part_cols: &cast.part_cols,
            schema: &cast.data_schema,
            pq: &plan.pq,
            op_id: &timer.op_id,
        };
        let ((version, merge, entries, merges), attempts) =
            self.commit_write(&staged, base, &plan, rows_written, sources, &timer)?;
        report.version = version;
        report.commit_attempts = attempts;
        report.merges = merges;
        report.rows_replaced = merge.rows_replaced;
        report.files_replaced = merge.replaced.len() as u64;
        report.rows_unchanged = merge.rows_unchanged;
        report.rows_written = rows_written.saturating_sub(merge.rows_unchanged);
        report.unchanged = entries.is_empty() && merge.replaced.is_empty();
        if version > manifest.version {
            report.sources_recorded = sources.len() as u64;
        }
        report.files = entries
            .iter()
            .map(|e| WrittenFile {
                path: e.path.clone(),
                partition: e.partition.to_map(),
                rows: e.rows,
                bytes: e.bytes,
            })
            .collect();
        if let Some(cb) = &opts.on_file {
            for e in &entries {
                cb(e);
            }
        }
        (report.wall_ms, report.peak_rss_bytes) = timer.finish();
        Ok(report)
    }

    /// Merges the staged files into the current version and commits them. On object storage
    /// another writer may take the next version first (there is no lock): the commit is then
    /// tried again on the version it made, rebased without merging again where that writer
    /// changed nothing the merge read (see [`MergeInputs`]), merged again where it did. Returns
    /// the version, the merge, the entries of the files added and how many merges it took.
    fn commit_write(
        &self,
        staged: &StagedFiles,
        base: Staged,
        plan: &WritePlan,
        rows_written: u64,
        sources: &SourceBatch,
        timer: &OpTimer,
    ) -> Result<(Committed, u32)> {
        let mode = plan.mode;
        // The last attempt's merge, with what it read, while a retry may still reuse it.
        let mut kept: Option<(MergeInputs, Merge)> = None;
        let mut merges = 0;
        // The snapshot holds only the stored files the merge can read or replace.
        let header = self.header();
        let scope = upsert::KeyScope::new(&header.kind_spec, &header.partition_columns);
        let touched = crate::touched::Touched::new(
            self.base(),
            &header.partition_columns,
            &scope,
            staged.files.iter().map(|(_, rel)| rel.as_str()),
            mode == WriteMode::Append,
        );
        let keep = |logged: &str, _: &PartitionValues| touched.keeps(logged);
        let keep = crate::delta::Keep::by_path(&keep);
        let outcome = self.with_commit_retries_where(&timer.op_id, Some(&keep), |lock, current| {
            let version = current.version + 1;
            let (files, entries, aliases) =
                into_existing_folders(current, &staged.files, &staged.entries);
            let w = Staged {
                files: &files,
                entries: &entries,
                aliases: &aliases,
                ..base
            };
            // What the merge read is compared only on a retry (the first attempt, and every
            // commit under a lock, never pays the pass over the stored files).
            let merge = match kept.take() {
                Some((read, merge)) if read == MergeInputs::of(current, mode, &w) => {
                    log::debug!(
                        "[{}] rebased onto version {} without merging again (no file it read changed)",
                        timer.op_id,
                        current.version
                    );
                    merge
                }
                stale => {
                    if let Some((_, merge)) = stale {
                        merge.discard();
                    }
                    merges += 1;
                    let merge = self.merge(current, mode, &w)?;
                    log::debug!("[{}] merged at {} ms", timer.op_id, timer.wall_ms());
                    merge
                }
            };
            let committed = (|| {
                let (staged_all, added) = merge.files(&w, &current.kind_spec, version)?;
                if staged_all.is_empty() && merge.replaced.is_empty() && !sources.needs_commit() {
                    return Ok((current.version, vec![]));
                }
                let segments = sources.write_segments(self.store(), current, version)?;
                let operation = Operation {
                    name: "write".into(),
                    mode: Some(mode.to_string()),
                    op_id: timer.op_id.clone(),
                    rows_added: rows_written.saturating_sub(merge.rows_unchanged),
                    rows_removed: merge.rows_replaced,
                    files_added: added.len() as u64,
                    files_removed: merge.replaced.len() as u64,
                    sources_recorded: sources.len() as u64,
                };
                let change = Change {
                    staged: &staged_all,
                    added: added.clone(),
                    replaced: &merge.replaced,
                    operation,
                };
                let next = self.commit_change(lock, current, change, |next| {
                    next.metadata = plan.metadata.clone();
                    for f in base.schema {
                        if !next.schema.iter().any(|s| s.name == f.name) {
                            next.schema.push(f.clone());
                        }
                    }
                    if let Some(segments) = segments {
                        next.sources = segments;
                    }
                })?;
                let added = added
                    .into_iter()
                    .map(|e| FileEntry {
                        added_in: next.version,
                        ..e
                    })
                    .collect();
                Ok((next.version, added))
            })();
            match committed {
                Ok((v, added)) => {
                    if v != version {
                        // Nothing to commit: the merge's own files are no one's.
                        merge.discard();
                    }
                    Ok((v, merge, added))
                }
                Err(e @ Error::Conflict { .. }) => {
                    // Kept for the next attempt, which reuses it if nothing it read changed.
                    kept = Some((MergeInputs::of(current, mode, &w), merge));
                    Err(e)
                }
                Err(e) => {
                    merge.discard();
                    Err(e)
                }
            }
        });
        if let Some((_, merge)) = kept {
            merge.discard();
        }
        outcome
            .map(|((version, merge, added), attempts)| ((version, merge, added, merges), attempts))
    }

    /// Decides, under the commit lock, what the staged files replace in `current`.
    fn merge(&self, current: &Manifest, mode: WriteMode, w: &Staged) -> Result<Merge> {
        let mut merge = Merge::default();
        if mode == WriteMode::Append {
            return Ok(merge);
        }
        let touched: BTreeSet<&str> = w
            .files
            .iter()
            .map(|(_, rel)| partition::dir_of(rel))
            .collect();
        let mut existing: BTreeMap<&str, Vec<&FileEntry>> = BTreeMap::new();
        for f in &current.files {
            let dir = unaliased(w.aliases, partition::dir_of(&f.path));
            if touched.contains(dir) {
                existing.entry(dir).or_default().push(f);
            }
        }
        match mode {
            WriteMode::Append => {}
            WriteMode::Error => {
                if let Some(dir) = existing.keys().next() {
                    return Err(Error::PartitionExists {
                        partition: dir.to_string(),
                    });
                }
            }
            WriteMode::Overwrite => {
                for files in existing.values() {
                    for f in files {
                        merge.replaced.push(f.path.clone());
                        merge.rows_replaced += f.rows;
                    }
                }
            }
            WriteMode::Upsert => self.merge_upsert(current, w, &mut merge)?,
        }
        Ok(merge)
    }

    /// The upsert's merge: a stored file holding a key of a new row is replaced only when some
    /// such row changes (its other rows are staged again beside the new ones); a stored file
    /// whose rows all equal the new ones stays, and those new rows are left out of the commit.
    fn merge_upsert(&self, current: &Manifest, w: &Staged, merge: &mut Merge) -> Result<()> {
        let key: Vec<String> = current
            .kind_spec
            .key
            .iter()
            .filter(|k| !w.part_cols.contains(k))
            .cloned()
            .collect();
        // Stored files are read only where they can hold a new key: in the new rows' groups of
        // folders, with recorded ranges meeting theirs.
        let scope = upsert::KeyScope::new(&current.kind_spec, &current.partition_columns);
        let (new, old_files, stored) = upsert::candidates(
            &scope,
            &current.kind_spec,
            w.files,
            w.entries,
            &current.files,
            w.aliases,
            |rel| self.store().data_path(rel),
        );
        let mut schema = current.schema.clone();
        for f in w.schema {
            if !schema.iter().any(|s| s.name == f.name) {
                schema.push(f.clone());
            }
        }
        let moved = |e| self.conflict_if_moved(current, e);
        let cmp = upsert::compare_rows(&stored, &new, &key, &schema).map_err(moved)?;
        let paths_in = |side: &[upsert::KeyFile], dir: &str, pick: &dyn Fn(usize) -> bool| {
            side.iter()
                .enumerate()
                .filter(|(i, f)| f.dir == dir && pick(*i))
                .map(|(_, f)| f.path.clone())
                .collect::<Vec<PathBuf>>()
        };
        let changed = cmp.stored.iter().filter(|(_, h)| h.changed > 0);
        for (counter, (i, hits)) in changed.enumerate() {
            let old = old_files[*i];
            merge.replaced.push(old.path.clone());
            merge.rows_replaced += hits.rows;
            if hits.rows < old.rows {
                let new_paths = paths_in(&new, &stored[*i].dir, &|_| true);
                let name = format!("part-{}-r{counter:05}.parquet", w.op_id);
                let rest = w
                    .stage_without_keys(&stored[*i].path, &new_paths, &key, &old.path, &name)
                    .map_err(moved)?;
                merge.staged.push(rest);
            }
        }
        let stays = |i: usize| cmp.stored.get(&i).is_some_and(|h| h.changed == 0);
        for (counter, (j, rows)) in cmp.unchanged.iter().enumerate() {
            let (path, rel) = &w.files[*j];
            merge.rows_unchanged += rows;
            merge.left_out.insert(rel.clone());
            if *rows < w.entries[*j].rows {
                let stored_paths = paths_in(&stored, &new[*j].dir, &stays);
                let name = format!("part-{}-k{counter:05}.parquet", w.op_id);
                let rest = w
                    .stage_without_keys(path, &stored_paths, &key, rel, &name)
                    .map_err(moved)?;
                merge.staged.push(rest);
            }
        }
        Ok(())
    }
}

/// What a write decides before it reads its inputs: its mode, file layout and Parquet
/// options (the dataset's settings where the options leave them).
struct WritePlan {
    mode: WriteMode,
    max_rows_per_file: usize,
    /// The dataset's metadata with the write's own on top (into every file's footer).
    metadata: BTreeMap<String, String>,
    pq: Arc<ParquetWriteOptions>,
}

impl WritePlan {
    fn new(manifest: &Manifest, opts: &WriteOptions) -> Result<WritePlan> {
        let kind = &manifest.kind_spec;
        let mode = opts.mode.unwrap_or(if kind.key.is_empty() {
            WriteMode::Append
        } else {
            WriteMode::Upsert
        });
        if mode == WriteMode::Upsert && kind.key.is_empty() {
            return Err(Error::Options(format!(
                "mode `upsert` needs a natural key, and kind `{}` has none (use append or overwrite)",
                kind.name
            )));
        }
        let (max_rows_per_file, row_group_size) = opts
            .layout
            .resolve(manifest.settings.max_rows_per_file as usize)?;
        let compression = match opts.compression {
            Some(c) => c,
            None => manifest.settings.compression()?,
        };
        let mut metadata = manifest.metadata.clone();
        metadata.extend(opts.metadata.clone());
        let pq = parquet_options(compression, row_group_size, &metadata);
        Ok(WritePlan {
            mode,
            max_rows_per_file,
            metadata,
            pq,
        })
    }
}

/// A write's inputs cast to the dataset's kind: one frame with the partition columns derived
/// and typed, and what names each input in errors.
struct CastInputs {
    frame: LazyFrame,
    /// Each input's cast frame by its name (to find the row an error is about).
    per_input: Vec<(String, LazyFrame)>,
    casts: Vec<crate::cast::Cast>,
    part_cols: Vec<String>,
    /// The columns the files store (all but the partition columns).
    data_schema: Vec<Field>,
}

impl CastInputs {
    /// Whether the cast frame holds every one of `columns` (and there is one).
    fn has_columns(&self, columns: &[String]) -> bool {
        !columns.is_empty()
            && columns.iter().all(|c| {
                self.part_cols.contains(c) || self.data_schema.iter().any(|f| &f.name == c)
            })
    }

    fn new(manifest: &Manifest, inputs: &[Input], opts: &WriteOptions) -> Result<CastInputs> {
        let kind = &manifest.kind_spec;
        let mut frames = Vec::with_capacity(inputs.len());
        let mut casts = Vec::with_capacity(inputs.len());
        for input in inputs {
            let mut constants = input.constants.clone();
            constants.extend(opts.constants.clone());
            let cast = cast_to_kind(
                input.frame.clone(),
                kind,
                &CastOptions {
                    source_name: input.source_name.clone(),
                    lenient: opts.lenient,
                    constants,
                    timestamp_unit: opts.timestamp_unit,
                },
            )?;
            frames.push(cast.frame.clone());
            casts.push(cast);
        }
        let sources: Vec<&str> = inputs.iter().map(|i| i.source_name.as_str()).collect();
        let extras = extra_dtypes(manifest, &mut frames, &sources)?;
        let mut frames: Vec<LazyFrame> = frames
            .into_iter()
            .map(|f| typed_extras(f, &extras))
            .collect::<Result<_>>()?;
        let per_input: Vec<(String, LazyFrame)> = inputs
            .iter()
            .map(|i| i.source_name.clone())
            .zip(frames.iter().cloned())
            .collect();
        let mut frame = match frames.len() {
            0 => return Err(Error::Options("nothing to write: no inputs".into())),
            1 => frames.pop().unwrap_or_default(),
            _ => concat(
                frames,
                UnionArgs {
                    parallel: true,
                    rechunk: false,
                    ..Default::default()
                },
            )
            .map_err(Error::polars("combine inputs (do they share columns?)"))?,
        };
        let part_cols: Vec<String> = manifest
            .partition_columns
            .iter()
            .map(|f| f.name.clone())
            .collect();
        let present = frame
            .collect_schema()
            .map_err(Error::polars("cast schema"))?;
        let derived: Vec<Expr> = part_cols
            .iter()
            .filter(|p| !present.contains(p))
            .filter_map(|p| partition::derive_expr(p, &kind.timestamp_column))
            .collect();
        if !derived.is_empty() {
            frame = frame.with_columns(derived);
        }
        let typed: Vec<Expr> = manifest
            .partition_columns
            .iter()
            .map(|f| col(f.name.as_str()).cast(f.dtype.dtype()))
            .collect();
        frame = frame.with_columns(typed);
        let data_schema = frame
            .collect_schema()
            .map_err(Error::polars("write schema"))?
            .iter()
            .filter(|(n, _)| !part_cols.iter().any(|p| p == n.as_str()))
            .map(|(n, dt)| Field {
                name: n.to_string(),
                dtype: ColType::from_dtype(dt).unwrap_or(ColType::Str),
            })
            .collect();
        Ok(CastInputs {
            frame,
            per_input,
            casts,
            part_cols,
            data_schema,
        })
    }
}

/// The dtype of each extra column (one kept beside the kind's columns) of a write's inputs
/// (`frames`, cast to the kind, named by `sources`): the dataset's recorded one, else the widest
/// of the inputs' (an input whose column holds only nulls does not decide). An input of another
/// dtype is refused where casting could lose values, as is a column of a dtype pqdm cannot
/// record (a list, a struct): files that disagree on a column's dtype, or store one the manifest
/// cannot name, make the version unreadable.
fn extra_dtypes(
    manifest: &Manifest,
    frames: &mut [LazyFrame],
    sources: &[&str],
) -> Result<BTreeMap<String, ColType>> {
    let kind = &manifest.kind_spec;
    let mut types: BTreeMap<String, ColType> = BTreeMap::new();
    if !kind.keep_extra {
        return Ok(types);
    }
    for (frame, source) in frames.iter_mut().zip(sources) {
        let schema = frame
            .collect_schema()
            .map_err(Error::polars("cast schema"))?;
        for (name, dtype) in schema.iter() {
            if kind.column(name).is_some() || *dtype == DataType::Null {
                continue;
            }
            // A dictionary (categorical) column holds text.
            let incoming = match dtype {
                DataType::Categorical(..) | DataType::Enum(..) => Some(ColType::Str),
                other => ColType::from_dtype(other),
            };
            let Some(incoming) = incoming else {
                return Err(Error::Schema(format!(
                    "{source}: column `{name}` is {dtype}, which pqdm cannot keep beside the kind's columns (it stores i8 to i64, f64, bool, str and date)"
                )));
            };
            let recorded = manifest.schema.iter().find(|f| f.name == name.as_str());
            let (want, whose) = match (recorded, types.get(name.as_str())) {
                (Some(f), _) => (f.dtype, "the dataset"),
                // Inputs of one write take the widest of their dtypes.
                (None, Some(t)) if widens_to(*t, incoming) => {
                    types.insert(name.to_string(), incoming);
                    continue;
                }
                (None, Some(t)) => (*t, "another input of this write"),
                (None, None) => {
                    types.insert(name.to_string(), incoming);
                    continue;
                }
            };
            if incoming != want && !widens_to(incoming, want) {
                return Err(Error::Schema(format!(
                    "{source}: column `{name}` is {} here but {} in {whose}, where it is kept beside the kind's columns; cast it to {} before writing",
                    incoming.name(),
                    want.name(),
                    want.name()
                )));
            }
            types.insert(name.to_string(), want);
        }
    }
    Ok(types)
}

/// `frame` with its extra columns in the dtypes `types` gives them (see [`extra_dtypes`]):
/// date-times as ms since the epoch, like the kind's timestamps; values that do not fit fail
/// the write instead of becoming nulls.
fn typed_extras(frame: LazyFrame, types: &BTreeMap<String, ColType>) -> Result<LazyFrame> {
    if types.is_empty() {
        return Ok(frame);
    }
    let mut frame = frame;
    let schema = frame
        .collect_schema()
        .map_err(Error::polars("cast schema"))?;
    let casts: Vec<Expr> = types
        .iter()
        .filter_map(|(name, t)| {
            let dtype = schema.get(name.as_str())?;
            let c = col(name.as_str());
            let c = match dtype {
                DataType::Datetime(..) => c.dt().timestamp(TimeUnit::Milliseconds),
                _ => c,
            };
            Some(c.strict_cast(t.dtype()).alias(name.as_str()))
        })
        .collect();
    Ok(frame.with_columns(casts))
}

/// Whether every value of `from` is a value of `to`, exactly.
fn widens_to(from: ColType, to: ColType) -> bool {
    use ColType::*;
    let rank = |t: ColType| match t {
        I8 => Some(0),
        I16 => Some(1),
        I32 => Some(2),
        I64 => Some(3),
        _ => None,
    };
    match (rank(from), to) {
        (Some(r), F64) => r <= 2,
        (Some(r), _) => rank(to).is_some_and(|t| r <= t),
        (None, _) => false,
    }
}

/// Stages the cast inputs as partitioned files in `staging`: large inputs in slices sized to
/// the memory budget (the one given, or by default, when the row count is known for free, the
/// smaller of 768 MiB and a quarter of the available memory; see [`Slicing`]). Returns the
/// number of slices.
fn stage_inputs(
    staging: &Staging,
    cast: &CastInputs,
    inputs: &[Input],
    opts: &WriteOptions,
    plan: &WritePlan,
    op_id: &str,
    witness: Option<&KeyOrder>,
) -> Result<usize> {
    let known_rows: Option<u64> = inputs.iter().map(|i| i.rows).sum();
    let slicing = Slicing::plan(opts.memory_limit, &cast.data_schema, known_rows);
    slicing
        .stage(&cast.frame, |part, index| {
            let op = match index {
                Some(i) => slice_prefix(op_id, i),
                None => op_id.to_string(),
            };
            let part = match witness {
                Some(w) => w.tap(part),
                None => part,
            };
            sink_partitioned(
                part,
                staging,
                &cast.part_cols,
                "",
                &op,
                plan.max_rows_per_file,
                plan.pq.clone(),
            )
        })
        .map_err(|e| match e {
            Error::PartitionValue { column, .. } => first_null_like(&cast.per_input, &column),
            e @ Error::PartitionTooLong { .. } => first_too_long(&cast.per_input, e),
            e => blame_input(inputs, e),
        })
}

/// Checks the staged files against the kind: timestamps in range, required columns without
/// nulls. A conversion that failed left a null: an input is read again (to name the value and
/// count what lenient casting nulled) only when the staged files hold nulls in one of its
/// checked columns, or cannot say. Returns the values nulled per column.
fn check_staged(
    staged: &StagedFiles,
    cast: &CastInputs,
    kind: &Kind,
    opts: &WriteOptions,
) -> Result<BTreeMap<String, u64>> {
    let part_cols = &cast.part_cols;
    let mut nulled: BTreeMap<String, u64> = BTreeMap::new();
    for c in &cast.casts {
        let may_have_failed = c.checked_columns().any(|c| {
            part_cols.iter().any(|p| p == c)
                || staged.nulls_unknown.contains(c)
                || staged.nulls.get(c).is_some_and(|n| *n > 0)
        });
        if may_have_failed {
            for (k, n) in c.check()? {
                *nulled.entry(k).or_default() += n;
            }
        }
    }
    let outside = |e: &FileEntry| {
        e.min_timestamp.is_some_and(|t| t < timestamp::MIN_MS)
            || e.max_timestamp.is_some_and(|t| t > timestamp::MAX_MS)
    };
    if staged.entries.iter().any(outside) {
        return Err(first_out_of_range(&cast.per_input, &kind.timestamp_column));
    }
    let required = kind
        .columns
        .iter()
        .filter(|c| c.required && !part_cols.contains(&c.name) && !opts.lenient);
    for c in required {
        if staged.nulls.get(&c.name).is_some_and(|n| *n > 0) {
            return Err(first_null(&cast.per_input, &c.name));
        }
        // Files without null counts: only a null found in the input is an error.
        if staged.nulls_unknown.contains(&c.name)
            && let err @ Error::MissingValue { .. } = first_null(&cast.per_input, &c.name)
        {
            return Err(err);
        }
    }
    Ok(nulled)
}

/// An upsert's staged files hold one row per key: repeated keys within a partition folder
/// keep their last row (the files are restaged; a `small` input, staged in one slice, is
/// asked directly, no file read back). Where a key's rows can lie in several folders (an
/// aggTrades id on two days), one input holding it in two is refused: which folder would keep
/// it is not the input's to say by order (Delta's MERGE refuses such a source too).
fn settle_repeated_keys(
    staged: &mut StagedFiles,
    staging: &Staging,
    manifest: &Manifest,
    small: Option<&CastInputs>,
    inputs: &[Input],
    plan: &WritePlan,
    timer: &OpTimer,
) -> Result<()> {
    let kind = &manifest.kind_spec;
    let key: Vec<String> = kind
        .key
        .iter()
        .filter(|k| !manifest.partition_columns.iter().any(|p| &p.name == *k))
        .cloned()
        .collect();
    let rows: u64 = staged.entries.iter().map(|e| e.rows).sum();
    let small = small
        .filter(|_| rows <= upsert::BATCH_ROWS)
        .map(|c| (&c.frame, c.part_cols.as_slice()));
    if dedupe_staged(
        staging,
        &staged.files,
        &staged.entries,
        &key,
        small,
        plan.max_rows_per_file,
        &plan.pq,
        &timer.op_id,
    )? {
        let again = StagedFiles::read(staging, kind)?;
        (staged.files, staged.entries) = (again.files, again.entries);
    }
    let scope = upsert::KeyScope::new(kind, &manifest.partition_columns);
    if let Some(group) =
        upsert::groups_with_repeats(&scope, kind, &staged.files, &staged.entries, &key)?
            .into_iter()
            .next()
    {
        return Err(Error::Input {
            path: inputs
                .first()
                .map(|i| PathBuf::from(&i.source_name))
                .unwrap_or_default(),
            message: format!(
                "the input holds a key of {} ({group}) in two partitions; an upsert stores one row per key, so each key must fall in one partition",
                key.join(", ")
            ),
        });
    }
    log::debug!(
        "[{}] repeated keys checked at {} ms",
        timer.op_id,
        timer.wall_ms()
    );
    Ok(())
}

/// A write's staged files and what its merge needs to know of them.
#[derive(Clone, Copy)]
struct Staged<'a> {
    staging: &'a Staging,
    /// Staged files (absolute path, final relative path).
    files: &'a [(PathBuf, String)],
    /// Their entries, in the same order.
    entries: &'a [FileEntry],
    part_cols: &'a [String],
    /// The data columns the write adds to the dataset's schema (or holds already).
    schema: &'a [Field],
    pq: &'a Arc<ParquetWriteOptions>,
    op_id: &'a str,
    /// Stored folders of the partitions the files go into, spelled otherwise (see
    /// [`into_existing_folders`]).
    aliases: &'a Aliases<'a>,
}

impl Staged<'_> {
    /// Stages the rows of `file` whose `key` no file of `others` holds as the file `name` in
    /// the folder of dataset path `beside`; returns (staged path, final relative path).
    fn stage_without_keys(
        &self,
        file: &Path,
        others: &[PathBuf],
        key: &[String],
        beside: &str,
        name: &str,
    ) -> Result<(PathBuf, String)> {
        let dir = partition::dir_of(beside);
        let rel = match dir {
            "" => name.to_string(),
            dir => format!("{dir}/{name}"),
        };
        let dest = self
            .staging
            .dir()
            .join(Staging::name_for(dir, &format!("{name}{STAGED_SUFFIX}")));
        let key_cols: Vec<Expr> = key.iter().map(|k| col(k.as_str())).collect();
        let other_keys = scan_files(others, false)?.select(key_cols.clone());
        let rest = scan_files(std::slice::from_ref(&file.to_path_buf()), false)?.join(
            other_keys,
            key_cols.clone(),
            key_cols,
            JoinArgs::new(JoinType::Anti),
        );
        sink_file(rest, &dest, self.pq.clone())?;
        Ok((dest, rel))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_names_sort_in_the_order_they_were_made() {
        let names: Vec<String> = [(2, 9), (2, 10), (10, 0), (10, 11), (11, 3)]
            .iter()
            .map(|(slice, seq)| staged_name(&slice_prefix("op", *slice), *seq))
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(sorted, names);
        assert_eq!(names[0], "part-op-c000002-0000000009.parquet.staged");
    }

    fn field(name: &str, dtype: ColType) -> Field {
        Field {
            name: name.into(),
            dtype,
        }
    }

    #[test]
    fn zero_padded_folders_are_the_same_typed_partition() {
        let cols = [field("symbol", ColType::Str), field("month", ColType::I8)];
        assert_eq!(
            typed_folder("symbol=0001/month=01", &cols),
            typed_folder("symbol=0001/month=1", &cols)
        );
        assert_ne!(
            typed_folder("symbol=0001/month=1", &cols),
            typed_folder("symbol=1/month=1", &cols)
        );
    }

    /// Staged files go into the first folder (in path order) of the same typed partition, over
    /// folders that share their first segments with the one before and folders that do not, in
    /// mixed spellings; a folder no stored one types like stays as it is.
    #[test]
    fn staged_files_go_into_the_existing_folder_of_their_typed_partition() {
        let cols = vec![
            field("symbol", ColType::Str),
            field("month", ColType::I8),
            field("day", ColType::I8),
        ];
        let kind = crate::schema::KindRegistry::default()
            .get("klines")
            .unwrap()
            .clone();
        let mut m = Manifest::empty(
            Path::new("/d"),
            &kind,
            vec![],
            cols,
            crate::manifest::Settings {
                compression: "snappy".into(),
                max_rows_per_file: 1,
                auto_compact: None,
                checkpoint_interval: None,
                manifest_max_files: None,
            },
        );
        // Sorted by path, as a manifest lists them.
        let stored = [
            "symbol=A/month=01/day=01/a.parquet",
            "symbol=A/month=01/day=01/b.parquet",
            "symbol=A/month=01/day=2/c.parquet",
            "symbol=A/month=02/day=03/e.parquet",
            "symbol=A/month=1/day=3/d.parquet",
            "symbol=B/month=01/day=01/g.parquet",
            "symbol=B/month=1/day=1/f.parquet",
            "symbol=C/month=12/day=31/h.parquet",
        ];
        m.files = stored
            .iter()
            .map(|p| FileEntry {
                path: p.to_string(),
                partition: PartitionValues::new(partition::parse_path(p)),
                rows: 1,
                bytes: 1,
                min_timestamp: None,
                max_timestamp: None,
                key_ranges: BTreeMap::new(),
                checksum: String::new(),
                added_in: 0,
                null_timestamps: None,
            })
            .collect();
        let staged_dirs = [
            ("symbol=A/month=1/day=1", "symbol=A/month=01/day=01"),
            ("symbol=A/month=1/day=02", "symbol=A/month=01/day=2"),
            ("symbol=A/month=01/day=3", "symbol=A/month=1/day=3"),
            ("symbol=A/month=2/day=3", "symbol=A/month=02/day=03"),
            ("symbol=B/month=1/day=1", "symbol=B/month=01/day=01"),
            ("symbol=C/month=12/day=031", "symbol=C/month=12/day=31"),
            ("symbol=C/month=12/day=30", "symbol=C/month=12/day=30"),
            ("symbol=a/month=1/day=1", "symbol=a/month=1/day=1"),
        ];
        let staged: Vec<(PathBuf, String)> = staged_dirs
            .iter()
            .map(|(dir, _)| (PathBuf::from("/s/x"), format!("{dir}/new.parquet")))
            .collect();
        let entries: Vec<FileEntry> = staged
            .iter()
            .map(|(_, rel)| FileEntry {
                path: rel.clone(),
                partition: PartitionValues::new(partition::parse_path(rel)),
                ..m.files[0].clone()
            })
            .collect();
        let (files, moved, aliases) = into_existing_folders(&m, &staged, &entries);
        // B's day 1 is stored under two spellings: the second is the first one's alias.
        assert_eq!(
            aliases,
            Aliases::from([("symbol=B/month=1/day=1", "symbol=B/month=01/day=01")])
        );
        for (((_, rel), entry), (_, want)) in files.iter().zip(&moved).zip(staged_dirs) {
            assert_eq!(rel, &format!("{want}/new.parquet"));
            assert_eq!(&entry.path, rel);
            assert_eq!(
                entry.partition,
                PartitionValues::new(partition::parse_path(rel))
            );
        }
    }

    #[test]
    fn folder_names_longer_than_a_file_system_takes_are_refused() {
        let keys = |symbol: &str| df!("exchange" => ["X/Y"], "symbol" => [symbol]).unwrap();
        // `symbol=` and 248 bytes: the longest name there is.
        let longest = "A".repeat(248);
        assert_eq!(
            hive_dir(&keys(&longest)).unwrap(),
            format!("exchange=X%2FY/symbol={longest}")
        );
        for (value, bytes) in [("A".repeat(249), 256), ("/".repeat(100), 307)] {
            match hive_dir(&keys(&value)) {
                Err(Error::PartitionTooLong {
                    column,
                    value: v,
                    bytes: b,
                    ..
                }) => assert_eq!((column.as_str(), v, b), ("symbol", value, bytes)),
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            hive_dir(&keys("")),
            Err(Error::PartitionValue { column, .. }) if column == "symbol"
        ));
    }
}
