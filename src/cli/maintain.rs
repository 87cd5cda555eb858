//! Maintenance commands: `compact`, `verify`, `coverage`, `vacuum`.

use super::*;

pub(super) fn compact(cli: &Cli, a: &CompactArgs) -> anyhow::Result<()> {
    let ds = Dataset::open(&a.base)?;
    let opts = pqdm::maintain::compact::CompactOptions {
        target_rows: a.target_rows,
        filters: parse_filters(&a.filter)?,
        min_small_files: a.min_small_files,
        ..Default::default()
    };
    let r = ds.compact(&opts, &super::bars::progress(cli.quiet || cli.json))?;
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

pub(super) fn verify(cli: &Cli, a: &VerifyArgs) -> anyhow::Result<()> {
    let ds = Dataset::open(&a.base)?;
    let r = ds.verify(a.repair, &super::bars::progress(cli.quiet || cli.json))?;
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
        if let Some(why) = &r.delta_log {
            println!("  Delta log: {why}");
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
            if rep.delta_log_written {
                println!("  repaired: a Delta checkpoint of the current version written");
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

pub(super) fn coverage(cli: &Cli, a: &CoverageArgs) -> anyhow::Result<()> {
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
    let c = ds.coverage(&opts, &super::bars::progress(cli.quiet || cli.json))?;
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

pub(super) fn vacuum(cli: &Cli, a: &VacuumArgs) -> anyhow::Result<()> {
    let ds = Dataset::open(&a.base)?;
    let r = ds.vacuum(&pqdm::maintain::vacuum::VacuumOptions {
        retain_versions: a.retain_versions,
        retention: pqdm::options::parse_duration(&a.retention)?,
    })?;
    if cli.json {
        return print_json(&r);
    }
    println!(
        "{}: {} versions removed, {} files deleted, {} bytes freed, {} Delta log files removed",
        a.base.display(),
        r.versions_removed.len(),
        r.files_deleted,
        r.bytes_freed,
        r.log_files_removed
    );
    Ok(())
}
