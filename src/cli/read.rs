//! Commands that read: `scan`, `info`, `latest`, `history`, `materialize`, `cache`.

use super::*;

pub(super) fn scan(cli: &Cli, config: &Config, a: &ScanArgs) -> anyhow::Result<()> {
    // `--json` asks for machine-readable output: rows as JSON lines, unless a format is named.
    let format: Format = match (&a.format, cli.json && a.output.is_none()) {
        (Some(f), _) => f.parse()?,
        (None, true) => Format::Json,
        (None, false) => Format::Table,
    };
    let ds = Dataset::open_any(&a.base, &parse_hive_schema(&a.hive_schema)?)?;
    let mut opts = ScanOptions {
        columns: a.columns.clone(),
        version: a.version,
        as_of: parse_as_of(a.as_of.as_deref())?,
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
    let written = pqdm::panics::caught("scan", || {
        write_result(lf, format, a.output.as_deref(), batch.rows)
    });
    let rows = written.map_err(|e| match e {
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

pub(super) fn info(cli: &Cli, a: &BaseArgs) -> anyhow::Result<()> {
    let ds = Dataset::open_any(&a.base, &BTreeMap::new())?;
    let info = ds.info()?;
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

pub(super) fn latest(cli: &Cli, a: &LatestArgs) -> anyhow::Result<()> {
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

pub(super) fn print_latest(
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

pub(super) fn history(cli: &Cli, a: &BaseArgs) -> anyhow::Result<()> {
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

pub(super) fn materialize(cli: &Cli, a: &MaterializeArgs) -> anyhow::Result<()> {
    let ds = Dataset::open(&a.base)?;
    let opts = ScanOptions {
        columns: a.columns.clone(),
        filters: parse_filters(&a.filter)?,
        version: a.version,
        as_of: parse_as_of(a.as_of.as_deref())?,
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

pub(super) fn cache(cli: &Cli, config: &Config, a: &CacheArgs) -> anyhow::Result<()> {
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
