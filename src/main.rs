//! The `pqdm` command line: parses arguments and calls the library, nothing more.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use mimalloc::MiMalloc;
use pqdm::config::{Config, WriteFlags};
use pqdm::output::{Format, write_result};
use pqdm::progress::Progress;
use pqdm::schema::ColType;
use pqdm::{CreateOptions, Dataset, ScanOptions, WriteOptions};

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

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
    #[arg(long)]
    version: Option<u64>,
    /// Return at most N rows.
    #[arg(long)]
    limit: Option<u32>,
    /// table, csv, json (lines) or parquet.
    #[arg(long, default_value = "table")]
    format: String,
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
    #[arg(long)]
    version: Option<u64>,
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

fn parse_meta(items: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    items
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.to_string()))
                .ok_or_else(|| anyhow::anyhow!("--meta {kv:?}: expected KEY=VALUE"))
        })
        .collect()
}

/// Prints a command's JSON report, with the process's wall time and peak memory added.
fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let mut v = serde_json::to_value(value)?;
    if let Some(obj) = v.as_object_mut() {
        obj.entry("wall_ms")
            .or_insert_with(|| (START.elapsed().as_millis() as u64).into());
        obj.entry("peak_rss_bytes")
            .or_insert_with(|| pqdm::metrics::peak_rss_bytes().into());
    }
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

static START: std::sync::LazyLock<std::time::Instant> =
    std::sync::LazyLock::new(std::time::Instant::now);

fn ingest(cli: &Cli, config: &Config, a: &IngestArgs) -> anyhow::Result<()> {
    if a.per_kind {
        let files = pqdm::source::expand(&a.sources)?;
        for (kind, sources) in pqdm::ingest::split_by_kind(&files)? {
            let one = IngestArgs {
                dataset: a.dataset.join(&kind),
                kind: Some(kind),
                sources,
                per_kind: false,
                ..a.clone()
            };
            ingest(cli, config, &one)?;
        }
        return Ok(());
    }
    let kinds = config.kinds(a.kinds.as_deref())?;
    let settings = config.write_settings(&WriteFlags {
        compression: a.compression.clone(),
        mode: a.mode.clone(),
        max_rows_per_file: a.max_rows_per_file,
        min_rows_per_group: a.min_rows_per_group,
        row_group_size: a.row_group_size,
        memory_limit: a.memory_limit.clone(),
    })?;
    let kind = a.kind.as_deref().map(|k| kinds.get(k)).transpose()?;
    let create = CreateOptions {
        metadata: parse_meta(&a.meta)?,
        auto_compact: a.auto_compact,
        ..settings.create_options(a.partition_by.clone())
    };
    let (ds, created) = pqdm::ingest::open_or_create_for(
        &a.dataset, kind, &kinds, &a.sources, &create,
    )
    .map_err(|e| match e {
        pqdm::Error::Options(why) if why.starts_with("a kind is needed") => {
            anyhow::anyhow!("--kind is needed to create {}", a.dataset.display())
        }
        e => e.into(),
    })?;
    let mut constants = BTreeMap::new();
    for (k, v) in [
        ("exchange", &a.exchange),
        ("symbol", &a.symbol),
        ("timeframe", &a.timeframe),
    ] {
        if let Some(v) = v {
            constants.insert(k.to_string(), v.clone());
        }
    }
    let opts = WriteOptions {
        metadata: parse_meta(&a.meta)?,
        lenient: a.lenient,
        constants,
        timestamp_unit: timestamp_unit(&a.timestamp_unit)?,
        compact_after: a.compact,
        ..settings.write_options()
    };
    let progress = Progress::new(cli.quiet || cli.json);
    let report = pqdm::ingest::remove_if_created(
        &a.dataset,
        created,
        pqdm::ingest::ingest_with(
            &ds,
            &a.sources,
            &opts,
            &pqdm::ingest::IngestOptions { force: a.force },
            &progress,
        ),
    )?;
    if cli.json {
        return print_json(&report);
    }
    println!(
        "{}: {}, {} ms",
        a.dataset.display(),
        report.summary(),
        report.wall_ms
    );
    for (col, n) in &report.nulled {
        println!("  lenient: {n} values of `{col}` could not be cast and are null");
    }
    if report.blank_lines_skipped > 0 {
        println!("  skipped {} blank line(s)", report.blank_lines_skipped);
    }
    Ok(())
}

fn timestamp_unit(text: &Option<String>) -> anyhow::Result<Option<pqdm::timestamp::Unit>> {
    Ok(text
        .as_deref()
        .map(pqdm::timestamp::Unit::parse)
        .transpose()?)
}

fn parse_hive_schema(items: &[String]) -> anyhow::Result<BTreeMap<String, ColType>> {
    items
        .iter()
        .flat_map(|s| s.split(','))
        .filter(|s| !s.trim().is_empty())
        .map(|kv| {
            let (k, v) = kv
                .split_once(['=', ':'])
                .ok_or_else(|| anyhow::anyhow!("--hive-schema {kv:?}: expected NAME=DTYPE"))?;
            Ok((k.trim().to_string(), ColType::parse(v)?))
        })
        .collect()
}

fn scan(cli: &Cli, config: &Config, a: &ScanArgs) -> anyhow::Result<()> {
    let format: Format = a.format.parse()?;
    let ds = Dataset::open_any(&a.base, &parse_hive_schema(&a.hive_schema)?)?;
    let mut opts = ScanOptions {
        columns: a.columns.clone(),
        version: a.version,
        ..Default::default()
    };
    for f in &a.filter {
        opts = opts.filter(f)?;
    }
    let (mut lf, cache_status) = match config.cache_dir(a.cache.as_deref()) {
        Some(dir) => {
            let mut cache = pqdm::cache::Cache::new(&dir);
            cache.ttl = a
                .ttl
                .as_deref()
                .map(pqdm::options::parse_duration)
                .transpose()?;
            let (lf, status) = pqdm::cache::cached_projection(&ds, &opts, &cache, None)?;
            log::info!("cache {status:?}");
            (lf, Some(status))
        }
        None => (ds.scan(&opts)?, None),
    };
    if let Some(n) = a.limit {
        lf = lf.limit(n);
    }
    let batch = ds.batch_choice(&opts, config.scan_batch_size(a.batch_size)?)?;
    let rows = write_result(lf, format, a.output.as_deref(), batch.rows).map_err(|e| match e {
        // Polars names neither the dataset nor the file it could not read: the files whose
        // checksums no longer match are named here, and verify names the rest.
        e @ pqdm::Error::Polars { .. } => {
            let base = a.base.display();
            let context = match ds.damaged_files(&opts).unwrap_or_default() {
                damaged if damaged.is_empty() => format!(
                    "reading {base} failed (`pqdm verify {base}` names damaged or missing files)"
                ),
                damaged => format!(
                    "reading {base} failed: damaged or missing (content no longer matching the \
                     manifest's checksum): {} (`pqdm verify --repair {base}` moves them aside)",
                    damaged.join(", ")
                ),
            };
            anyhow::Error::new(e).context(context)
        }
        e => e.into(),
    })?;
    if cli.json && a.output.is_some() {
        print_json(&serde_json::json!({
            "rows": rows,
            "output": a.output,
            "batch": batch,
            "cache": cache_status,
        }))?;
    }
    Ok(())
}

fn key_text(key: &BTreeMap<String, Option<String>>) -> String {
    key.iter()
        .map(|(k, v)| format!("{k}={}", v.as_deref().unwrap_or("null")))
        .collect::<Vec<_>>()
        .join(" ")
}

fn info(cli: &Cli, a: &BaseArgs) -> anyhow::Result<()> {
    let ds = Dataset::open_any(&a.base, &BTreeMap::new())?;
    let info = ds.info();
    if cli.json {
        return print_json(&info);
    }
    let (m, keys) = (&info.manifest, info.keys);
    let range = |t: Option<i64>| {
        t.map(pqdm::timestamp::format_millis)
            .unwrap_or_else(|| "-".into())
    };
    let fields = |f: &[pqdm::manifest::Field]| {
        f.iter()
            .map(|f| format!("{}:{}", f.name, f.dtype.name()))
            .collect::<Vec<_>>()
    };
    println!(
        "dataset    {}{}",
        a.base.display(),
        if ds.is_foreign() {
            " (no manifest: described by listing)"
        } else {
            ""
        }
    );
    println!(
        "kind       {} (key: {})",
        m.kind,
        if m.key.is_empty() {
            "none".into()
        } else {
            m.key.join(", ")
        }
    );
    println!("version    {} ({})", m.version, m.updated_at);
    println!(
        "files      {}  rows {}  bytes {}",
        m.file_count, m.total_rows, m.total_bytes
    );
    println!("partitions {}", fields(&m.partition_columns).join(" / "));
    println!("schema     {}", fields(&m.schema).join(", "));
    println!(
        "settings   compression {}, max {} rows per file",
        m.settings.compression, m.settings.max_rows_per_file
    );
    println!(
        "time range {} .. {}",
        range(m.earliest_timestamp),
        range(m.latest_timestamp)
    );
    for k in keys {
        println!(
            "  {:<48} {:>6} files {:>12} rows  {} .. {}",
            key_text(&k.key),
            k.files,
            k.rows,
            range(k.min_timestamp),
            range(k.max_timestamp)
        );
    }
    Ok(())
}

fn parse_filters(items: &[String]) -> anyhow::Result<Vec<pqdm::Filter>> {
    Ok(items
        .iter()
        .map(|f| pqdm::Filter::parse(f))
        .collect::<pqdm::Result<_>>()?)
}

fn latest(cli: &Cli, a: &LatestArgs) -> anyhow::Result<()> {
    let query = pqdm::maintain::latest::LatestQuery {
        by: match (&a.by, a.overall) {
            (Some(by), _) => Some(by.clone()),
            (None, true) => Some(vec![]),
            (None, false) => None,
        },
        filters: parse_filters(&a.filter)?,
    };
    let answer = pqdm::maintain::latest::latest_at(&a.base, &query)?;
    print_latest(cli, answer.latest_timestamp, &answer.by_key)
}

fn print_latest(
    cli: &Cli,
    latest: Option<i64>,
    per_key: &[pqdm::maintain::latest::Latest],
) -> anyhow::Result<()> {
    if cli.json {
        return print_json(&serde_json::json!({ "latest_timestamp": latest, "by_key": per_key }));
    }
    let fmt = |t: Option<i64>| {
        t.map(|t| format!("{t} ({})", pqdm::timestamp::format_millis(t)))
            .unwrap_or_else(|| "none".into())
    };
    println!("latest {}", fmt(latest));
    for e in per_key {
        println!("  {}  {}", key_text(&e.key), fmt(e.latest_timestamp));
    }
    Ok(())
}

fn compact(cli: &Cli, a: &CompactArgs) -> anyhow::Result<()> {
    let ds = Dataset::open(&a.base)?;
    let opts = pqdm::maintain::compact::CompactOptions {
        target_rows: a.target_rows,
        filters: parse_filters(&a.filter)?,
        min_small_files: a.min_small_files,
        ..Default::default()
    };
    let r = ds.compact(&opts, &Progress::new(cli.quiet || cli.json))?;
    if cli.json {
        return print_json(&r);
    }
    match r.version {
        None => println!("{}: nothing to compact", a.base.display()),
        Some(v) => println!(
            "{}: version {v}: {} partitions, {} files -> {}, {} rows verified, {} ms",
            a.base.display(),
            r.partitions,
            r.files_before,
            r.files_after,
            r.rows,
            r.wall_ms
        ),
    }
    Ok(())
}

fn migrate(cli: &Cli, config: &Config, a: &MigrateArgs) -> anyhow::Result<()> {
    let kinds = config.kinds(None)?;
    let settings = config.write_settings(&WriteFlags {
        memory_limit: a.memory_limit.clone(),
        ..Default::default()
    })?;
    let create = settings.create_options(a.partition_by.clone());
    let (ds, created) = pqdm::ingest::open_or_create_for(
        &a.dataset,
        Some(kinds.get(&a.kind)?),
        &kinds,
        &a.sources,
        &create,
    )?;
    let opts = WriteOptions {
        constants: parse_meta(&a.set)?,
        lenient: a.lenient,
        timestamp_unit: timestamp_unit(&a.timestamp_unit)?,
        ..settings.write_options()
    };
    let progress = Progress::new(cli.quiet || cli.json);
    let r = pqdm::ingest::remove_if_created(
        &a.dataset,
        created,
        pqdm::ingest::migrate(&ds, &a.sources, &opts, a.skip_bad, &progress),
    )?;
    if cli.json {
        return print_json(&r);
    }
    println!(
        "{}: version {}: {} rows in {} files",
        a.dataset.display(),
        r.write.version,
        r.write.rows_written,
        r.write.files.len()
    );
    for s in &r.skipped {
        println!("  skipped {}: {}", s.path.display(), s.error);
    }
    Ok(())
}

fn adopt(cli: &Cli, config: &Config, a: &AdoptArgs) -> anyhow::Result<()> {
    let kinds = config.kinds(None)?;
    let kind = a.kind.as_deref().map(|k| kinds.get(k)).transpose()?;
    let ds = pqdm::maintain::adopt::adopt(&a.base, kind, &parse_hive_schema(&a.hive_schema)?)?;
    let m = ds.manifest();
    if cli.json {
        return print_json(
            &serde_json::json!({ "version": m.version, "files": m.file_count, "rows": m.total_rows, "kind": m.kind }),
        );
    }
    println!(
        "{}: adopted as `{}`, version {}: {} files, {} rows",
        a.base.display(),
        m.kind,
        m.version,
        m.file_count,
        m.total_rows
    );
    Ok(())
}

fn verify(cli: &Cli, a: &VerifyArgs) -> anyhow::Result<()> {
    let ds = Dataset::open(&a.base)?;
    let r = ds.verify(a.repair, &Progress::new(cli.quiet || cli.json))?;
    if cli.json {
        print_json(&r)?;
    } else {
        println!(
            "{}: version {}, {} files checked",
            a.base.display(),
            r.version,
            r.files_checked
        );
        let list = |what: &str, items: &[String]| {
            for i in items {
                println!("  {what}: {i}");
            }
        };
        list("missing", &r.missing);
        list("orphan", &r.orphans);
        list("checksum mismatch", &r.checksum_mismatches);
        list("stale stats", &r.stale_stats);
        list(
            "tree copy damaged (the kept copy is intact)",
            &r.tree_copies_damaged,
        );
        if r.manifest_copy_stale {
            println!(
                "  _manifest.json: not the current version's (damaged, edited or out of date)"
            );
        }
        if let Some(e) = &r.data_error {
            println!("  data checks: {e}");
        }
        for what in &r.unexplained {
            println!("  cannot be repaired: {what}");
        }
        if r.duplicate_keys > 0 {
            println!(
                "  duplicate keys: {} (e.g. {})",
                r.duplicate_keys,
                r.duplicate_examples.join(", ")
            );
        }
        for g in &r.gaps {
            let key: Vec<&str> = g.key.values().map(String::as_str).collect();
            println!(
                "  gap {}: {} missing candles {} .. {}",
                key.join("/"),
                g.missing,
                pqdm::timestamp::format_millis(g.from),
                pqdm::timestamp::format_millis(g.to)
            );
        }
        for (c, n) in &r.bad_values {
            let detail = r.bad_value_details.get(c).cloned().unwrap_or_default();
            println!("  bad values in `{c}`: {n} rows ({detail})");
        }
        if let Some(rep) = &r.repairs {
            if rep.manifest_copy_rewritten {
                println!("  repaired: _manifest.json rewritten from the history");
            }
            list(
                "repaired: tree copy replaced by the kept copy",
                &rep.tree_copies_restored,
            );
            println!(
                "  repaired: {} orphans moved to _pqdm/orphans, {} entries rebuilt, {} missing dropped{}",
                rep.orphans_moved.len(),
                rep.stats_rebuilt.len(),
                rep.missing_dropped.len(),
                rep.version
                    .map(|v| format!(" (version {v})"))
                    .unwrap_or_default()
            );
        }
        println!("{} problem(s) remain", r.problems());
    }
    let advice = match r.repairable() {
        n if n > 0 && !a.repair => format!(
            "; `pqdm verify --repair {}` fixes the {n} about files and the manifest copy",
            a.base.display()
        ),
        _ => String::new(),
    };
    anyhow::ensure!(
        r.problems() == 0,
        "verify found {} problem(s) in {}{advice}",
        r.problems(),
        a.base.display()
    );
    Ok(())
}

fn coverage(cli: &Cli, a: &CoverageArgs) -> anyhow::Result<()> {
    use pqdm::maintain::coverage::{CoverageOptions, image, text};
    let day = |text: &Option<String>, flag: &str| -> anyhow::Result<Option<i64>> {
        text.as_deref()
            .map(|t| {
                pqdm::timestamp::parse_timestamp(t)
                    .ok_or_else(|| anyhow::anyhow!("--{flag} {t:?}: expected a date (2024-01-05)"))
            })
            .transpose()
    };
    let opts = CoverageOptions {
        filters: parse_filters(&a.filter)?,
        from: day(&a.from, "from")?,
        to: day(&a.to, "to")?,
    };
    let ds = Dataset::open(&a.base)?;
    let c = ds.coverage(&opts, &Progress::new(cli.quiet || cli.json))?;
    let drawn = a
        .output
        .as_deref()
        .map(|p| image::write_image(&c, p))
        .transpose()?;
    if cli.json {
        let mut v = serde_json::to_value(&c)?;
        v["image"] = serde_json::to_value(&drawn)?;
        return print_json(&v);
    }
    print!("{}", text::render(&c, &text::TextOptions::for_stdout()));
    if let Some(d) = drawn {
        println!("wrote {} ({}x{})", d.path.display(), d.width, d.height);
    }
    Ok(())
}

fn materialize(cli: &Cli, a: &MaterializeArgs) -> anyhow::Result<()> {
    let ds = Dataset::open(&a.base)?;
    let opts = ScanOptions {
        columns: a.columns.clone(),
        filters: parse_filters(&a.filter)?,
        version: a.version,
        ..Default::default()
    };
    let (_, r) = ds.materialize(&opts, &a.to, a.partition_by.clone())?;
    if cli.json {
        return print_json(&r);
    }
    println!(
        "{}: {} rows in {} files from {}",
        a.to.display(),
        r.rows_written,
        r.files.len(),
        a.base.display()
    );
    Ok(())
}

fn cache(cli: &Cli, config: &Config, a: &CacheArgs) -> anyhow::Result<()> {
    let dir = config.cache_dir(a.cache.as_deref()).ok_or_else(|| {
        anyhow::anyhow!("no cache folder: pass --cache DIR or set PQDM_CACHE_DIR")
    })?;
    let mut cache = pqdm::cache::Cache::new(&dir);
    cache.ttl = a
        .ttl
        .as_deref()
        .map(pqdm::options::parse_duration)
        .transpose()?;
    if let Some(b) = &a.max_bytes {
        cache.max_bytes = pqdm::options::parse_bytes(b)?;
    }
    match a.action {
        CacheAction::Ls => {
            let entries = cache.entries()?;
            if cli.json {
                return print_json(&serde_json::json!({ "entries": entries }));
            }
            for e in entries {
                println!(
                    "{}  {} v{}  {} rows  {} bytes  columns {:?}  filters {:?}",
                    &e.key[..16],
                    e.dataset,
                    e.version,
                    e.rows,
                    e.bytes,
                    e.columns,
                    e.filters
                );
            }
        }
        CacheAction::Clear => {
            let n = cache.clear()?;
            if cli.json {
                return print_json(&serde_json::json!({ "removed": n }));
            }
            println!("{n} entries removed");
        }
        CacheAction::Gc => {
            let removed = cache.gc()?;
            if cli.json {
                return print_json(&serde_json::json!({ "removed": removed }));
            }
            println!("{} entries removed", removed.len());
        }
    }
    Ok(())
}

fn vacuum(cli: &Cli, a: &VacuumArgs) -> anyhow::Result<()> {
    let ds = Dataset::open(&a.base)?;
    let r = ds.vacuum(&pqdm::maintain::vacuum::VacuumOptions {
        retain_versions: a.retain_versions,
        retention: pqdm::options::parse_duration(&a.retention)?,
    })?;
    if cli.json {
        return print_json(&r);
    }
    println!(
        "{}: {} versions removed, {} files deleted, {} bytes freed",
        a.base.display(),
        r.versions_removed.len(),
        r.files_deleted,
        r.bytes_freed
    );
    Ok(())
}

fn history(cli: &Cli, a: &BaseArgs) -> anyhow::Result<()> {
    let rows = Dataset::open(&a.base)?.history()?;
    if cli.json {
        return print_json(&serde_json::json!({ "versions": rows }));
    }
    for r in rows {
        let r = serde_json::to_value(&r)?;
        let op = &r["operation"];
        println!(
            "v{:<5} {}  {:<8} {:<9} +{} -{} rows, +{} -{} files -> {} files, {} rows",
            r["version"],
            r["updated_at"].as_str().unwrap_or(""),
            op["name"].as_str().unwrap_or(""),
            op["mode"].as_str().unwrap_or("-"),
            op["rows_added"],
            op["rows_removed"],
            op["files_added"],
            op["files_removed"],
            r["files"],
            r["rows"]
        );
    }
    Ok(())
}

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
            let data = a.data.clone().unwrap_or_else(pqdm::demo::default_data_dir);
            let mut out = std::io::stdout().lock();
            Ok(pqdm::demo::run(
                &data,
                &a.dir,
                &mut out,
                &Progress::new(cli.quiet),
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

/// What the user can do about an error, as the flag that does it.
fn flag_hint(hint: pqdm::error::Hint) -> &'static str {
    use pqdm::error::Hint;
    match hint {
        Hint::LenientNulls => " (use --lenient to turn such values into nulls)",
        Hint::LenientKeepsRows => "; use --lenient to keep such rows",
        _ => "",
    }
}

fn main() -> ExitCode {
    // A closed pipe (`pqdm info | head`) ends the process quietly, as for other Unix tools.
    // SAFETY: restoring the default disposition of one signal before any thread starts.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    std::sync::LazyLock::force(&START);
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The causes repeat Polars' own messages, which may quote megabytes of an input line;
            // pqdm's own messages quote at most `pqdm::error::QUOTE_CHARS` of a value. A cause
            // that the message already quotes (pqdm's errors show their source) is not repeated.
            let mut message = e.to_string();
            for cause in e.chain().skip(1) {
                let cause = pqdm::error::clip_lines(&cause.to_string());
                if !message.contains(&cause) {
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
