//! Commands that write: `ingest`, `migrate`, `adopt`.

use super::*;

pub(super) fn ingest(cli: &Cli, config: &Config, a: &IngestArgs) -> anyhow::Result<()> {
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
        checkpoint_interval: a.checkpoint_interval,
        manifest_max_files: a.manifest_max_files,
        ..settings.create_options(a.partition_by.clone())
    };
    let (ds, created) =
        pqdm::ingest::open_or_create_for(&a.dataset, kind, &kinds, &a.sources, &create)?;
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
    let progress = super::bars::progress(cli.quiet || cli.json);
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

pub(super) fn migrate(cli: &Cli, config: &Config, a: &MigrateArgs) -> anyhow::Result<()> {
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
    let progress = super::bars::progress(cli.quiet || cli.json);
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

pub(super) fn adopt(cli: &Cli, config: &Config, a: &AdoptArgs) -> anyhow::Result<()> {
    let kinds = config.kinds(None)?;
    let kind = a.kind.as_deref().map(|k| kinds.get(k)).transpose()?;
    let ds = pqdm::maintain::adopt::adopt(&a.base, kind, &parse_hive_schema(&a.hive_schema)?)?;
    let m = ds.header();
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
