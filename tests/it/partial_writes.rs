//! Writes on a snapshot of the partitions they touch: a local dataset's `_manifest.json` holds
//! the header and summary without the file list (the Delta log holds it), and a write reads
//! from the log only the files its rows can meet. What it must keep: the rows, the summary
//! (updated from the change, or recomputed where the change cannot tell), and every reader's
//! view of every file it did not touch.

use polars::prelude::*;
use pqdm::options::WriteMode;
use pqdm::{Dataset, WriteOptions};
use serde_json::Value;

use crate::common::*;

const DAY: i64 = 86_400_000;
const T0: i64 = 1_704_067_200_000; // 2024-01-01

fn write(ds: &Dataset, symbol: &str, start: i64, n: usize, price: f64, mode: WriteMode) {
    ds.write(
        candles(start, n, price).lazy(),
        &WriteOptions {
            mode: Some(mode),
            ..kline_opts(symbol)
        },
    )
    .unwrap();
}

/// Three symbols x four days, 10 candles a day: 12 partitions of one file each, in a dataset
/// whose `_manifest.json` lists no file (by default, one of more than 10,000 files).
fn twelve_partitions(base: &std::path::Path) -> Dataset {
    let ds = Dataset::create(
        base,
        pqdm::schema::KindRegistry::default().get("klines").unwrap(),
        &pqdm::CreateOptions {
            manifest_max_files: Some(0),
            ..Default::default()
        },
    )
    .unwrap();
    for (i, symbol) in ["BTCUSDT", "ETHUSDT", "SOLUSDT"].iter().enumerate() {
        write(
            &ds,
            symbol,
            T0,
            10,
            100.0 * (i + 1) as f64,
            WriteMode::Upsert,
        );
        for d in 1..4 {
            write(
                &ds,
                symbol,
                T0 + d * DAY,
                10,
                100.0 * (i + 1) as f64,
                WriteMode::Append,
            );
        }
    }
    ds
}

/// The summary of `m` recomputed from its files equals the one it carries.
fn assert_summary_is_its_files(ds: &Dataset) {
    let m = ds.manifest().unwrap();
    assert!(!m.is_partial());
    let mut again = (*m).clone();
    again.refresh_summary();
    assert_eq!(again, *m, "the summary of version {}", m.version);
    // A fresh handle reads the same version, and `latest`'s summary is its.
    let fresh = Dataset::open(ds.base()).unwrap();
    assert_eq!(*fresh.manifest().unwrap(), *m);
    let summary = fresh.summary().unwrap();
    assert_eq!(summary.latest_by_key, m.latest_by_key);
    assert_eq!(
        (summary.file_count, summary.total_rows),
        (m.file_count, m.total_rows)
    );
}

#[test]
fn a_write_reads_only_the_files_of_the_partitions_it_touches() {
    let dir = tmp();
    let base = dir.path().join("k");
    let ds = twelve_partitions(&base);
    assert_eq!(ds.manifest().unwrap().file_count, 12);
    // `_manifest.json` keeps the seed's fields and the summary, and names where the files are.
    let copy: Value =
        serde_json::from_slice(&std::fs::read(base.join("_manifest.json")).unwrap()).unwrap();
    assert!(copy.get("files").is_none(), "{copy}");
    assert_eq!(copy["files_in"], "_delta_log");
    assert_eq!(copy["file_count"], 12);
    assert_eq!(copy["total_rows"], 120);
    assert_eq!(copy["timestamp_column"], "timestamp");
    assert_eq!(copy["latest_timestamp"], T0 + 3 * DAY + 9 * 60_000);
    assert_eq!(copy["base_dir"], base.display().to_string());
    assert!(
        copy["updated_at"].as_str().unwrap().ends_with('Z'),
        "{copy}"
    );

    // An upsert of one symbol's first day: the log is read for that partition's file alone
    // (the new rows go in a file of their own, the stored rows they do not replace in another).
    let csv = klines_csv(dir.path(), "BTCUSDT", 5, 7.0);
    let base_s = base.to_str().unwrap();
    let csv_s = csv.to_str().unwrap();
    let ingest = |extra: &[&str]| {
        let mut args = vec![
            "ingest",
            csv_s,
            "--dataset",
            base_s,
            "--exchange",
            "BINANCE",
        ];
        args.extend_from_slice(extra);
        run_env(&args, &[("RUST_LOG", "pqdm=debug")])
    };
    let out = ingest(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("version 12: 1 of 12 files read"),
        "{}",
        stderr(&out)
    );
    let ds = Dataset::open(&base).unwrap();
    let df = read_sorted(&ds);
    assert_eq!(df.height(), 120);
    let btc_day1 = df
        .clone()
        .lazy()
        .filter(
            col("symbol")
                .eq(lit("BTCUSDT"))
                .and(col("timestamp").lt(lit(T0 + DAY))),
        )
        .collect()
        .unwrap();
    let mut want = vec![7.0; 5];
    want.extend((5..10).map(|i| 100.0 + i as f64));
    assert_eq!(floats(&btc_day1, "close"), want);
    assert_summary_is_its_files(&ds);

    // An append reads no stored file; an overwrite of the same day reads its one file.
    let out = ingest(&["--mode", "append", "--force"]);
    assert!(
        stderr(&out).contains("version 13: 0 of 13 files read"),
        "{}",
        stderr(&out)
    );
    let out = ingest(&["--mode", "overwrite", "--force"]);
    assert!(
        stderr(&out).contains("version 14: 3 of 14 files read"),
        "{}",
        stderr(&out)
    );
    let ds = Dataset::open(&base).unwrap();
    assert_eq!(read_sorted(&ds).height(), 115);
    assert_summary_is_its_files(&ds);
    // Files, log and copies agree (the candles missing between the 10 a day are gaps).
    let report: Value = serde_json::from_slice(&run(&["verify", base_s, "--json"]).stdout).unwrap();
    for clean in ["missing", "orphans", "checksum_mismatches", "stale_stats"] {
        assert_eq!(report[clean], serde_json::json!([]), "{clean}: {report}");
    }
    assert_eq!(report["delta_log"], Value::Null, "{report}");
    assert_eq!(report["manifest_copy_stale"], false, "{report}");
    assert_eq!(report["duplicate_keys"], 0, "{report}");
}

#[test]
fn the_handle_that_wrote_reads_every_file_of_the_version_it_made() {
    let dir = tmp();
    let ds = twelve_partitions(&dir.path().join("k"));
    let again = Dataset::open(ds.base()).unwrap();
    write(&again, "ETHUSDT", T0 + DAY, 3, 5.0, WriteMode::Upsert);
    let m = again.manifest().unwrap();
    assert_eq!((m.version, m.file_count, m.files.len()), (13, 13, 13));
    assert_eq!(read_sorted(&again).height(), 120);
    assert_eq!(
        read_sorted(&again),
        read_sorted(&Dataset::open(ds.base()).unwrap())
    );
}

/// Overwrites that shorten the newest (or oldest) day of a series lower its latest (raise its
/// earliest) timestamp: the change alone cannot tell the new one, and every file is read. Every
/// write mode, on random symbols and days, keeps the summary its files give.
#[test]
fn every_write_keeps_the_summary_its_files_give() {
    let dir = tmp();
    let ds = twelve_partitions(&dir.path().join("k"));
    // SOL's newest day cut to its first 2 candles, then its oldest day to its last one.
    write(&ds, "SOLUSDT", T0 + 3 * DAY, 2, 1.0, WriteMode::Overwrite);
    assert_summary_is_its_files(&ds);
    let sol = |ds: &Dataset| {
        ds.manifest()
            .unwrap()
            .latest_by_key
            .iter()
            .find(|e| e.key["symbol"].as_deref() == Some("SOLUSDT"))
            .unwrap()
            .latest_timestamp
    };
    assert_eq!(sol(&ds), T0 + 3 * DAY + 60_000);
    write(
        &ds,
        "BTCUSDT",
        T0 + 9 * 60_000,
        1,
        1.0,
        WriteMode::Overwrite,
    );
    assert_eq!(ds.manifest().unwrap().earliest_timestamp, Some(T0));
    write(
        &ds,
        "ETHUSDT",
        T0 + 9 * 60_000,
        1,
        1.0,
        WriteMode::Overwrite,
    );
    write(
        &ds,
        "SOLUSDT",
        T0 + 9 * 60_000,
        1,
        1.0,
        WriteMode::Overwrite,
    );
    assert_eq!(
        ds.manifest().unwrap().earliest_timestamp,
        Some(T0 + 9 * 60_000)
    );
    assert_summary_is_its_files(&ds);
    let mut seed = seed_from_env("PQDM_PARTIAL_SEED") | 1;
    eprintln!("PQDM_PARTIAL_SEED={seed}");
    let mut random = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let modes = [WriteMode::Upsert, WriteMode::Append, WriteMode::Overwrite];
    for _ in 0..30 {
        let symbol = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"][random(4) as usize];
        let start = T0 + random(6) as i64 * DAY + random(12) as i64 * 60_000;
        let mode = modes[random(3) as usize];
        write(
            &ds,
            symbol,
            start,
            1 + random(15) as usize,
            random(1000) as f64,
            mode,
        );
        assert_summary_is_its_files(&ds);
    }
}

/// With the file list only in the log, the log is the one record of a version's files: a
/// checksum edited in an entry names that file as not the one the log records; an entry
/// deleted by hand is rebuilt from the tree (the current version's files, as many and with as
/// many rows as `_manifest.json` says), and `verify --repair` writes a checkpoint of it.
#[test]
fn verify_reads_the_tree_where_the_log_cannot_give_the_version() {
    let dir = tmp();
    let ds = twelve_partitions(&dir.path().join("k"));
    let base = ds.base().to_str().unwrap();
    let before = read_sorted(&ds);
    let verify = |args: &[&str]| -> Value {
        let mut all = vec!["verify", base, "--json"];
        all.extend_from_slice(args);
        let out = run(&all);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(&out)))
    };
    let (entry, text, added) = zero_logged_checksum(&ds, 12);
    let report = verify(&[]);
    assert_eq!(
        report["checksum_mismatches"],
        serde_json::json!([added.path]),
        "{report}"
    );
    // Restored: the entry is newer than `_manifest.json` now, which its hash still names.
    std::fs::write(&entry, &text).unwrap();

    // Entry 6 deleted: versions 6 to 12 cannot be read from the log.
    std::fs::remove_file(ds.base().join("_delta_log/00000000000000000006.json")).unwrap();
    assert!(Dataset::open(ds.base()).unwrap().manifest().is_err());
    let report = verify(&[]);
    let why = report["delta_log"].as_str().unwrap_or_default();
    assert!(why.contains("version 6"), "{report}");
    for clean in ["missing", "orphans", "checksum_mismatches"] {
        assert_eq!(report[clean], serde_json::json!([]), "{clean}: {report}");
    }
    let repaired = verify(&["--repair"]);
    assert_eq!(repaired["repairs"]["delta_log_written"], true, "{repaired}");
    let ds = Dataset::open(ds.base()).unwrap();
    assert_eq!(read_sorted(&ds), before);
    assert_eq!(verify(&[])["delta_log"], Value::Null);
}

/// A writer killed after moving its files in, on a dataset whose log then loses an entry: the
/// next command rolls the journal back (its files are in no version) although the log cannot
/// give the current version, and `verify --repair` rebuilds the version from the tree.
#[test]
fn a_killed_writer_is_rolled_back_where_the_log_is_damaged() {
    let dir = tmp();
    let ds = twelve_partitions(&dir.path().join("k"));
    let base = ds.base().to_str().unwrap();
    let before = read_sorted(&ds);
    let csv = klines_csv(dir.path(), "BTCUSDT", 5, 7.0);
    let killed = run_env(
        &[
            "ingest",
            csv.to_str().unwrap(),
            "--dataset",
            base,
            "--exchange",
            "BINANCE",
        ],
        &[("PQDM_FAILPOINTS", "commit.moved=kill")],
    );
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(killed.status.signal(), Some(9), "{}", stderr(&killed));
    std::fs::remove_file(ds.base().join("_delta_log/00000000000000000006.json")).unwrap();
    let repaired = run(&["verify", base, "--repair", "--json"]);
    let report: Value = serde_json::from_slice(&repaired.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", stderr(&repaired)));
    assert_eq!(report["repairs"]["delta_log_written"], true, "{report}");
    assert_eq!(report["orphans"], serde_json::json!([]), "{report}");
    let ds = Dataset::open(ds.base()).unwrap();
    assert_eq!(ds.header().version, 12);
    assert_eq!(read_sorted(&ds), before);
}

/// A handle that read only the header of version 12 reads that version's files later, or, once
/// `vacuum` no longer keeps it, an error naming it: never another version's files.
#[test]
fn a_header_read_before_a_vacuum_never_gives_another_versions_files() {
    let dir = tmp();
    let ds = twelve_partitions(&dir.path().join("k"));
    let early = Dataset::open(ds.base()).unwrap();
    let later = Dataset::open(ds.base()).unwrap();
    assert_eq!(early.header().version, 12);
    write(&ds, "BTCUSDT", T0, 3, 1.0, WriteMode::Upsert);
    assert_eq!(later.manifest().unwrap().version, 12);
    assert_eq!(later.manifest().unwrap().file_count, 12);
    for i in 0..4 {
        write(&ds, "ETHUSDT", T0 + i * DAY, 2, 2.0, WriteMode::Upsert);
    }
    ds.vacuum(&pqdm::maintain::vacuum::VacuumOptions {
        retain_versions: 2,
        ..Default::default()
    })
    .unwrap();
    let e = early.manifest().unwrap_err().to_string();
    assert!(e.contains("version 12"), "{e}");
}

/// A scan of the current version filtered on partition columns reads from the log only the
/// files of the partitions its filters may match (as it does for older versions), with the
/// rows a whole read gives; a handle holding the whole version already prunes that, and a
/// filter on no partition column reads the whole version.
#[test]
fn a_scan_filtered_on_partitions_reads_only_their_files_of_the_current_version() {
    use pqdm::ScanOptions;
    let dir = tmp();
    let ds = twelve_partitions(&dir.path().join("k"));
    let sorted = |df: DataFrame| {
        df.sort(["symbol", "timestamp"], Default::default())
            .unwrap()
    };
    let whole = Dataset::open(ds.base()).unwrap();
    let all = whole.manifest().unwrap();
    assert!(!all.is_partial() && all.files.len() == 12);
    for (filters, files, rows) in [
        (vec!["symbol == ETHUSDT"], 4, 40),
        (vec!["symbol in [ETHUSDT, SOLUSDT]", "day == 3"], 2, 20),
        (vec!["symbol == XRPUSDT"], 0, 0),
        (vec!["close > 0"], 12, 120),
    ] {
        let mut opts = ScanOptions::default();
        for f in &filters {
            opts = opts.filter(f).unwrap();
        }
        let fresh = Dataset::open(ds.base()).unwrap();
        assert!(fresh.header().is_partial());
        let plan = fresh.plan(&opts).unwrap();
        let on_partitions = !filters.iter().all(|f| f.starts_with("close"));
        assert_eq!(plan.manifest.is_partial(), on_partitions, "{filters:?}");
        assert_eq!(plan.total_files, 12, "{filters:?}");
        assert_eq!(plan.files.len(), files, "{filters:?}");
        if on_partitions {
            assert_eq!(plan.manifest.files.len(), files, "{filters:?}");
        }
        // The rows: as the handle holding the whole version reads them.
        let got = fresh.read(&opts).unwrap();
        let expected = whole.read(&opts).unwrap();
        assert!(!whole.plan(&opts).unwrap().manifest.is_partial());
        assert_eq!(got.height(), rows, "{filters:?}");
        assert!(sorted(got).equals_missing(&sorted(expected)), "{filters:?}");
    }
}

/// Attack on the filtered scan of the current version: a handle that read only its version's
/// header, then another writer replaces that partition and a vacuum runs; the handle's filtered
/// scan still gives its own version's rows (from the files that version kept), for symbols
/// whose folder names need escaping too; once vacuum dropped the version, an error naming it.
#[test]
fn a_filtered_scan_of_a_version_replaced_since_gives_that_versions_rows() {
    use pqdm::ScanOptions;
    let dir = tmp();
    let ds = twelve_partitions(&dir.path().join("k"));
    for symbol in ["A/B %2F..", "X[1] Y"] {
        write(&ds, symbol, T0, 3, 9.0, WriteMode::Upsert);
    }
    let opts = |symbol: &str| {
        ScanOptions::default()
            .filter(&format!("symbol == '{symbol}'"))
            .unwrap()
    };
    let seen = Dataset::open(ds.base()).unwrap();
    assert!(seen.header().is_partial());
    let version = seen.header().version;
    let before: Vec<DataFrame> = ["ETHUSDT", "A/B %2F..", "X[1] Y"]
        .iter()
        .map(|s| ds.read(&opts(s)).unwrap())
        .collect();
    assert_eq!(
        before.iter().map(|d| d.height()).collect::<Vec<_>>(),
        [40, 3, 3]
    );
    // Another writer replaces every one of those partitions, at another price.
    write(&ds, "ETHUSDT", T0, 10, 55.0, WriteMode::Overwrite);
    write(&ds, "A/B %2F..", T0, 3, 56.0, WriteMode::Upsert);
    write(&ds, "X[1] Y", T0, 3, 57.0, WriteMode::Upsert);
    for (symbol, expected) in ["ETHUSDT", "A/B %2F..", "X[1] Y"].iter().zip(&before) {
        let got = seen.read(&opts(symbol)).unwrap();
        assert!(got.equals_missing(expected), "{symbol}: {got}");
        let plan = seen.plan(&opts(symbol)).unwrap();
        assert_eq!(plan.manifest.version, version);
    }
    // The new version reads the new prices.
    let now = Dataset::open(ds.base()).unwrap();
    let close = now.read(&opts("X[1] Y")).unwrap();
    assert_eq!(
        close.column("close").unwrap().f64().unwrap().get(0),
        Some(57.0)
    );
    // Vacuum keeping only the newest version: the handle's version is gone, and said so.
    ds.vacuum(&pqdm::maintain::vacuum::VacuumOptions {
        retain_versions: 1,
        retention: std::time::Duration::ZERO,
    })
    .unwrap();
    let err = seen
        .read(&opts("ETHUSDT"))
        .expect_err("vacuumed")
        .to_string();
    assert!(err.contains(&format!("version {version}")), "{err}");
}
