//! The `pqdm` command line: arguments (here), settings resolved flag > environment > config
//! file > default (`pqdm::config`), one library call per command (the child modules), and
//! rendering (`render`). No dataset logic lives here.

mod bars;
mod demo;
mod maintain;
mod output;
mod parse;
mod read;
mod render;
mod write;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use output::{Format, write_result};
use pqdm::config::{Config, WriteFlags};
use pqdm::schema::ColType;
use pqdm::{CreateOptions, Dataset, ScanOptions, WriteOptions};

use maintain::*;
use parse::*;
use read::*;
use render::*;
use write::*;

/// pqdm: hive-partitioned Parquet datasets of market data.
#[derive(Parser)]
#[command(name = "pqdm", version, about, long_about = None)]
struct Cli {
    /// Config file (default: pqdm.toml in the working folder, if present).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// No progress bars.
    #[arg(long, short, global = true)]
    quiet: bool,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    json: bool,
    /// Object-storage setting for s3:// datasets and sources, over AWS_* variables and ~/.aws
    /// (repeatable): endpoint=URL, region=R, access_key_id=K, secret_access_key=S,
    /// session_token=T, allow_http=true, skip_signature=true, single_writer=true.
    #[arg(long = "storage-option", value_name = "KEY=VALUE", global = true)]
    storage_options: Vec<String>,
    /// Seconds a writer waits for a dataset's commit lock before giving up with an error
    /// naming its holder (default: PQDM_LOCK_TIMEOUT, else 300).
    #[arg(long, value_name = "SECONDS", global = true)]
    lock_timeout: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Ingest CSV, CSV-in-zip, .csv.gz and Parquet files (or folders of them) into a dataset.
    Ingest(IngestArgs),
    /// Read a dataset: projection, filters, version, limit; a table, CSV, JSON lines or Parquet.
    Scan(ScanArgs),
    /// Summarise a dataset: kind, schema, partitions, version, files, rows, time range per key.
    Info(BaseArgs),
    /// The latest timestamp, overall or per key, from the manifest (no data read).
    Latest(LatestArgs),
    /// One line per kept version.
    History(BaseArgs),
    /// Run the main job on the sample data in data/ (ingest, scan, latest).
    Demo(DemoArgs),
    /// Rewrite small files of each partition into files near a target size (atomic, verified).
    Compact(CompactArgs),
    /// Turn flat Parquet/CSV files (e.g. the old tool's part-0.parquet) into a partitioned dataset.
    Migrate(MigrateArgs),
    /// Give a hive dataset written by other tools (pyarrow, DuckDB, Spark) a manifest, in place.
    Adopt(AdoptArgs),
    /// Write a scan out as a new partitioned dataset that records its source.
    Materialize(MaterializeArgs),
    /// Check files against the manifest, duplicate keys, candle gaps and bad values.
    Verify(VerifyArgs),
    /// Delete old versions and the replaced files no kept version references.
    Vacuum(VacuumArgs),
    /// Which days each series holds and where candles are missing: a heat map, or an SVG/PNG.
    Coverage(CoverageArgs),
    /// Manage a projection cache folder: ls, clear, gc.
    Cache(CacheArgs),
}

#[derive(Args, Clone)]
struct IngestArgs {
    /// Input files or folders.
    #[arg(required = true)]
    sources: Vec<PathBuf>,
    /// The dataset's base folder (created if it does not exist).
    #[arg(long)]
    dataset: PathBuf,
    /// Dataset kind (klines, aggtrades, trades, futures, split, unified, or one from --kinds);
    /// needed when creating; default from Binance file names.
    #[arg(long)]
    kind: Option<String>,
    /// Binance folder trees holding several kinds: --dataset is a parent folder, and each kind
    /// (from the file names) goes to its own dataset under it (klines/, aggtrades/, ...), one
    /// commit per kind.
    #[arg(long, conflicts_with = "kind")]
    per_kind: bool,
    /// A TOML file declaring more kinds.
    #[arg(long)]
    kinds: Option<PathBuf>,
    /// Exchange for inputs without an exchange column.
    #[arg(long)]
    exchange: Option<String>,
    /// Symbol for inputs without a symbol column (default: from Binance file names).
    #[arg(long)]
    symbol: Option<String>,
    /// Timeframe for candle inputs without one (default: from Binance file names).
    #[arg(long)]
    timeframe: Option<String>,
    /// Partition columns when creating (comma-separated; default per kind).
    #[arg(long, value_delimiter = ',')]
    partition_by: Option<Vec<String>>,
    /// snappy (default), zstd[:level], lz4, gzip[:level], brotli[:level], none.
    #[arg(long)]
    compression: Option<String>,
    /// Rows per file at most (default 5,000,000).
    #[arg(long)]
    max_rows_per_file: Option<usize>,
    /// After the write, compact each partition it touched that holds more than N files below
    /// the dataset's max rows per file (default: the dataset's auto-compact setting).
    #[arg(long, value_name = "N")]
    compact: Option<usize>,
    /// When creating: store auto-compact N, so every later write compacts as --compact N does.
    #[arg(long, value_name = "N")]
    auto_compact: Option<u64>,
    /// When creating: write a Delta checkpoint every N versions (default 100).
    #[arg(long, value_name = "N")]
    checkpoint_interval: Option<u64>,
    /// When creating: `_manifest.json` lists the files of a version of at most N files (default
    /// 10,000); beyond, the Delta log alone does, and writes read only the partitions they touch.
    #[arg(long, value_name = "N")]
    manifest_max_files: Option<u64>,
    /// Rows per row group at least (default 50,000; below max-rows-per-file).
    #[arg(long)]
    min_rows_per_group: Option<usize>,
    /// Rows per row group.
    #[arg(long)]
    row_group_size: Option<usize>,
    /// upsert (default for keyed kinds), append, overwrite, error.
    #[arg(long)]
    mode: Option<String>,
    /// Key-value metadata for every file footer and the manifest (repeatable).
    #[arg(long = "meta", value_name = "KEY=VALUE")]
    meta: Vec<String>,
    /// Turn uncastable values into nulls and report how many.
    #[arg(long)]
    lenient: bool,
    /// Memory budget (e.g. 512MiB, env PQDM_MEMORY_LIMIT; default 768MiB or a quarter of the
    /// available memory for Parquet inputs; `none` for no slicing): large inputs are written in slices.
    #[arg(long)]
    memory_limit: Option<String>,
    /// Unit of numeric timestamps: s, ms, us, ns (default: each value's magnitude, from 1990 on).
    #[arg(long)]
    timestamp_unit: Option<String>,
    /// Read every source, also those an earlier ingest committed that are unchanged since
    /// (by default they are skipped).
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
struct ScanArgs {
    /// The dataset's base folder.
    base: PathBuf,
    /// Columns to return (comma-separated).
    #[arg(long, value_delimiter = ',')]
    columns: Option<Vec<String>>,
    /// Filter `COL OP VALUE` (ops: == != < <= > >= in not_in between is_null is_not_null;
    /// lists as [a, b]; ISO dates for the timestamp column), repeatable, ANDed.
    #[arg(long, allow_hyphen_values = true)]
    filter: Vec<String>,
    /// Rows per batch when streaming CSV/JSON (default PQDM_SCAN_BATCH_SIZE or 262,144).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Partition column dtypes of a dataset without a manifest (e.g. symbol=str,year=i32).
    #[arg(long)]
    hive_schema: Vec<String>,
    /// Keep the result in this projection cache folder; an identical scan reads it back
    /// (default PQDM_CACHE_DIR; empty: no cache).
    #[arg(long)]
    cache: Option<PathBuf>,
    /// With --cache: recompute entries older than this (e.g. 30m, 1h, 7d).
    #[arg(long)]
    ttl: Option<String>,
    /// Read this version instead of the current one.
    #[arg(long, conflicts_with = "as_of")]
    version: Option<u64>,
    /// Read the version that was current at this time (`2024-01-05T10:00:00Z`, a date, or ms
    /// since the epoch): the newest kept version committed at or before it.
    #[arg(long)]
    as_of: Option<String>,
    /// Return at most N rows.
    #[arg(long)]
    limit: Option<u32>,
    /// table, csv, json (lines) or parquet [default: table; with --json and no --output, json].
    #[arg(long)]
    format: Option<String>,
    /// Write to this file (or s3:// object) instead of stdout.
    #[arg(long)]
    output: Option<PathBuf>,
}

#[derive(Args)]
struct BaseArgs {
    /// The dataset's base folder.
    base: PathBuf,
}

#[derive(Args)]
struct LatestArgs {
    /// The dataset's base folder.
    base: PathBuf,
    /// Partition columns to group by (comma-separated; default: exchange/symbol/timeframe...).
    #[arg(long, value_delimiter = ',')]
    by: Option<Vec<String>>,
    /// Only the latest over all files, no per-key lines.
    #[arg(long, conflicts_with = "by")]
    overall: bool,
    /// Filters on partition columns or the timestamp (as for scan), repeatable.
    #[arg(long, allow_hyphen_values = true)]
    filter: Vec<String>,
}

#[derive(Args)]
struct CompactArgs {
    /// The dataset's base folder.
    base: PathBuf,
    /// Rows per output file (default: the dataset's max rows per file).
    #[arg(long)]
    target_rows: Option<usize>,
    /// Only partitions matching these filters (partition columns), repeatable.
    #[arg(long, allow_hyphen_values = true)]
    filter: Vec<String>,
    /// Only partitions holding more than N files below the target (default 1).
    #[arg(long, value_name = "N")]
    min_small_files: Option<usize>,
}

#[derive(Args)]
struct MigrateArgs {
    /// Input files or folders (flat Parquet or CSV).
    #[arg(required = true)]
    sources: Vec<PathBuf>,
    /// The dataset's base folder (created if it does not exist).
    #[arg(long)]
    dataset: PathBuf,
    /// Dataset kind.
    #[arg(long)]
    kind: String,
    /// Constant columns to add, e.g. --set exchange=BINANCE (repeatable).
    #[arg(long = "set", value_name = "COLUMN=VALUE")]
    set: Vec<String>,
    /// Report unreadable files and migrate the rest (default: stop with nothing written).
    #[arg(long)]
    skip_bad: bool,
    /// Partition columns when creating (comma-separated; default per kind).
    #[arg(long, value_delimiter = ',')]
    partition_by: Option<Vec<String>>,
    /// Turn uncastable values into nulls and report how many.
    #[arg(long)]
    lenient: bool,
    /// Memory budget (e.g. 512MiB, env PQDM_MEMORY_LIMIT; default 768MiB or a quarter of the
    /// available memory for Parquet inputs; `none` for no slicing): large inputs are written in slices.
    #[arg(long)]
    memory_limit: Option<String>,
    /// Unit of numeric timestamps: s, ms, us, ns (default: each value's magnitude, from 1990 on).
    #[arg(long)]
    timestamp_unit: Option<String>,
}

#[derive(Args)]
struct AdoptArgs {
    /// The dataset's base folder.
    base: PathBuf,
    /// Kind to record (default: the files' own schema, no key).
    #[arg(long)]
    kind: Option<String>,
    /// Partition column dtypes (e.g. symbol=str,year=i32) where inference is not wanted.
    #[arg(long)]
    hive_schema: Vec<String>,
}

#[derive(Args)]
struct VerifyArgs {
    /// The dataset's base folder.
    base: PathBuf,
    /// Move orphans aside and rebuild the manifest's stats from the files.
    #[arg(long)]
    repair: bool,
}

#[derive(Args)]
struct VacuumArgs {
    /// The dataset's base folder.
    base: PathBuf,
    /// Versions to keep, the current one included.
    #[arg(long, default_value_t = pqdm::maintain::vacuum::DEFAULT_RETAIN_VERSIONS)]
    retain_versions: usize,
    /// Keep replaced files this long after they left the current version (`0s`, `30m`, `7d`):
    /// scans that began on an older version read them meanwhile.
    #[arg(long, default_value = "1h")]
    retention: String,
}

#[derive(Args)]
struct CoverageArgs {
    /// The dataset's base folder.
    base: PathBuf,
    /// Filters on partition columns (as for scan), repeatable.
    #[arg(long, allow_hyphen_values = true)]
    filter: Vec<String>,
    /// First day shown (e.g. 2024-01-01; default: the first day with data).
    #[arg(long)]
    from: Option<String>,
    /// Last day shown (default: the last day with data).
    #[arg(long)]
    to: Option<String>,
    /// Also draw the map into this file: .svg (with labels) or .png.
    #[arg(long)]
    output: Option<PathBuf>,
}

#[derive(Args)]
struct DemoArgs {
    /// Where the demo's datasets go.
    #[arg(long, default_value = "target/demo")]
    dir: PathBuf,
    /// The sample data folder.
    #[arg(long)]
    data: Option<PathBuf>,
}

#[derive(Args)]
struct MaterializeArgs {
    /// The source dataset's base folder.
    base: PathBuf,
    /// Where the new dataset goes (must not exist).
    #[arg(long)]
    to: PathBuf,
    /// Columns to keep (comma-separated).
    #[arg(long, value_delimiter = ',')]
    columns: Option<Vec<String>>,
    /// Filters as for scan, repeatable.
    #[arg(long, allow_hyphen_values = true)]
    filter: Vec<String>,
    /// Partition columns of the new dataset (comma-separated).
    #[arg(long, value_delimiter = ',')]
    partition_by: Option<Vec<String>>,
    /// Read this version of the source.
    #[arg(long, conflicts_with = "as_of")]
    version: Option<u64>,
    /// Read the version of the source that was current at this time (as for scan).
    #[arg(long)]
    as_of: Option<String>,
}

#[derive(Args)]
struct CacheArgs {
    /// ls, clear or gc.
    action: CacheAction,
    /// The cache folder (default PQDM_CACHE_DIR).
    #[arg(long)]
    cache: Option<PathBuf>,
    /// With gc: entries older than this go (e.g. 1h, 7d).
    #[arg(long)]
    ttl: Option<String>,
    /// With gc: keep at most this many bytes (e.g. 2GiB; default 10GiB).
    #[arg(long)]
    max_bytes: Option<String>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum CacheAction {
    Ls,
    Clear,
    Gc,
}

static START: std::sync::LazyLock<std::time::Instant> =
    std::sync::LazyLock::new(std::time::Instant::now);

fn run(cli: &Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref())?;
    let mut storage = std::collections::BTreeMap::new();
    for kv in &cli.storage_options {
        let (k, v) = kv.split_once('=').ok_or_else(|| {
            pqdm::Error::Options(format!("--storage-option {kv}: expected KEY=VALUE"))
        })?;
        storage.insert(k.trim().to_string(), v.trim().to_string());
    }
    pqdm::storage::set_options(storage)?;
    if let Some(t) = &cli.lock_timeout {
        let timeout = pqdm::lock::parse_seconds(t).ok_or_else(|| {
            anyhow::anyhow!("--lock-timeout `{t}` is not a number of seconds (e.g. 300 or 0.5)")
        })?;
        pqdm::lock::set_timeout(timeout);
    }
    if let Some(n) = config.threads(None)? {
        // Polars reads this once, when its thread pool starts (after this line).
        // SAFETY: no other thread exists yet.
        unsafe { std::env::set_var("POLARS_MAX_THREADS", n.to_string()) };
    }
    if pqdm::storage::mentions_remote(std::env::args_os()) {
        for (key, value) in pqdm::storage::REMOTE_POLARS_ENV {
            if std::env::var_os(key).is_none() {
                // SAFETY: as above, Polars has not started and no other thread exists yet.
                unsafe { std::env::set_var(key, value) };
            }
        }
    }
    match &cli.command {
        Command::Ingest(a) => ingest(cli, &config, a),
        Command::Scan(a) => scan(cli, &config, a),
        Command::Info(a) => info(cli, a),
        Command::Latest(a) => latest(cli, a),
        Command::History(a) => history(cli, a),
        Command::Demo(a) => {
            let data = a.data.clone().unwrap_or_else(demo::default_data_dir);
            let mut out = std::io::stdout().lock();
            Ok(demo::run(
                &data,
                &a.dir,
                &mut out,
                &bars::progress(cli.quiet),
            )?)
        }
        Command::Compact(a) => compact(cli, a),
        Command::Migrate(a) => migrate(cli, &config, a),
        Command::Adopt(a) => adopt(cli, &config, a),
        Command::Materialize(a) => materialize(cli, a),
        Command::Verify(a) => verify(cli, a),
        Command::Vacuum(a) => vacuum(cli, a),
        Command::Coverage(a) => coverage(cli, a),
        Command::Cache(a) => cache(cli, &config, a),
    }
}

/// Runs the command line; the process exit code.
pub fn main() -> ExitCode {
    // A closed pipe (`pqdm info | head`) ends the process quietly, as for other Unix tools.
    // SAFETY: restoring the default disposition of one signal before any thread starts.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    std::sync::LazyLock::force(&START);
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    pqdm::panics::quiet_for_caught();
    match pqdm::panics::caught(
        "reading the dataset's files (`pqdm verify` names files changed since they were committed)",
        || run(&cli),
    ) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The causes repeat Polars' own messages, which may quote megabytes of an input line;
            // pqdm's own messages quote at most `pqdm::error::QUOTE_CHARS` of a value. A cause
            // that the message already quotes (pqdm's errors show their source, cut where their
            // own lines are cut: the cause's beginning says it) is not repeated.
            let mut message = e.to_string();
            for cause in e.chain().skip(1) {
                let cause = pqdm::error::clip_lines(&cause.to_string());
                let opening: String = cause
                    .lines()
                    .next()
                    .unwrap_or("")
                    .chars()
                    .take(80)
                    .collect();
                if !message.contains(&opening) {
                    message = format!("{message}: {cause}");
                }
            }
            let hint = e
                .chain()
                .find_map(|c| c.downcast_ref::<pqdm::Error>())
                .and_then(pqdm::Error::hint)
                .map(flag_hint)
                .unwrap_or_default();
            eprintln!("error: {message}{hint}");
            ExitCode::FAILURE
        }
    }
}
