//! Maintenance: compact, migrate, adopt, latest, verify, vacuum, history.

use polars::prelude::*;
use pqdm::maintain::compact::CompactOptions;
use pqdm::progress::Progress;
use pqdm::{CreateOptions, Dataset, FileLayout, ScanOptions, WriteMode, WriteOptions};

use crate::common::*;

const JAN5: i64 = 1_704_412_800_000;
const DAY: i64 = 86_400_000;

fn by_year(dir: &std::path::Path) -> Dataset {
    let kinds = pqdm::schema::KindRegistry::default();
    let parts = ["exchange", "symbol", "timeframe", "year"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    Dataset::create(
        dir,
        kinds.get("klines").unwrap(),
        &CreateOptions {
            partition_by: Some(parts),
            ..Default::default()
        },
    )
    .unwrap()
}

#[test]
fn compact_500_small_files_keeps_every_row() {
    let dir = tmp();
    let ds = by_year(dir.path());
    let opts = WriteOptions {
        layout: FileLayout {
            max_rows_per_file: Some(20),
            ..Default::default()
        },
        ..kline_opts("BTCUSDT")
    };
    ds.write(candles(JAN5, 10_000, 1.0).lazy(), &opts).unwrap();
    assert_eq!(ds.manifest().unwrap().file_count, 500);
    let before = read_sorted(&ds);

    // A reader in another handle scans in a loop while the compaction runs: its first read
    // is done before the compaction starts, its last after the commit, and every read holds
    // exactly the rows written.
    let base = dir.path().to_path_buf();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let (first_read, first_read_done) = std::sync::mpsc::channel();
    let want = before.clone();
    let reader = std::thread::spawn(move || {
        let reader = Dataset::open(&base).unwrap();
        let mut versions = std::collections::BTreeSet::new();
        loop {
            let last = flag.load(std::sync::atomic::Ordering::SeqCst);
            reader.refresh().unwrap();
            versions.insert(reader.header().version);
            assert_eq!(read_sorted(&reader), want);
            let _ = first_read.send(());
            if last {
                return versions;
            }
        }
    });
    first_read_done.recv().unwrap();
    let r = ds
        .compact(
            &CompactOptions {
                target_rows: Some(3_000),
                ..Default::default()
            },
            &Progress::hidden(),
        )
        .unwrap();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let versions = reader.join().unwrap();
    assert_eq!(versions.first(), Some(&1), "{versions:?}");
    assert_eq!(versions.last().copied(), r.version, "{versions:?}");
    assert_eq!(
        (
            r.version,
            r.partitions,
            r.files_before,
            r.files_after,
            r.rows
        ),
        (Some(2), 1, 500, 4, 10_000)
    );
    let m = ds.manifest().unwrap();
    assert_eq!(m.file_count, 4);
    assert_eq!(
        m.files.iter().map(|f| f.rows).collect::<Vec<_>>(),
        vec![3_000, 3_000, 3_000, 1_000]
    );
    assert_eq!(parquet_files(dir.path()).len(), 4);
    let after = read_sorted(&ds);
    assert!(after.equals_missing(&before));
    // Files are sorted by timestamp.
    let first = Dataset::open(dir.path())
        .unwrap()
        .scan(&ScanOptions::default())
        .unwrap()
        .collect()
        .unwrap();
    let ts = first.column("timestamp").unwrap().i64().unwrap();
    assert!(
        ts.into_no_null_iter()
            .zip(ts.into_no_null_iter().skip(1))
            .all(|(a, b)| a < b)
    );
    // Compacting again does nothing and commits nothing.
    let again = ds
        .compact(
            &CompactOptions {
                target_rows: Some(3_000),
                ..Default::default()
            },
            &Progress::hidden(),
        )
        .unwrap();
    assert_eq!(again.version, None);
    assert_eq!(Dataset::open(dir.path()).unwrap().header().version, 2);
    // The old version is still readable until vacuum.
    assert_eq!(
        ds.scan(&ScanOptions {
            version: Some(1),
            ..Default::default()
        })
        .unwrap()
        .collect()
        .unwrap()
        .height(),
        10_000
    );
}

#[test]
fn migrate_old_flat_output_with_a_corrupt_file() {
    let dir = tmp();
    let old = dir.path().join("old");
    for (i, symbol) in ["BTCUSDT", "ETHUSDT", "SOLUSDT"].iter().enumerate() {
        let folder = old.join(symbol);
        std::fs::create_dir_all(&folder).unwrap();
        // The old tool wrote seconds and a `symbol` column.
        let mut df = df!(
            "timestamp" => (0..100i64).map(|m| JAN5 / 1000 + m * 60).collect::<Vec<_>>(),
            "open" => vec![1.0 + i as f64; 100], "high" => vec![2.0; 100], "low" => vec![0.5; 100],
            "close" => vec![1.5; 100], "volume" => vec![10.0; 100], "symbol" => vec![*symbol; 100], "timeframe" => vec!["1m"; 100],
        )
        .unwrap();
        ParquetWriter::new(std::fs::File::create(folder.join("part-0.parquet")).unwrap())
            .finish(&mut df)
            .unwrap();
    }
    let bad = old.join("XRPUSDT");
    std::fs::create_dir_all(&bad).unwrap();
    let good = std::fs::read(old.join("BTCUSDT/part-0.parquet")).unwrap();
    std::fs::write(bad.join("part-0.parquet"), &good[..good.len() / 2]).unwrap();

    let base = dir.path().join("ds");
    let args = [
        "migrate",
        old.to_str().unwrap(),
        "--dataset",
        base.to_str().unwrap(),
        "--kind",
        "klines",
        "--set",
        "exchange=BINANCE",
        "--quiet",
    ];
    let out = run(&args);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("XRPUSDT/part-0.parquet: not a readable Parquet file"),
        "{err}"
    );
    assert!(
        !base.exists(),
        "a failed migration into a new dataset leaves nothing"
    );

    let out = run(&[&args[..], &["--skip-bad", "--json"]].concat());
    let report = json_ok(&out);
    assert_eq!(report["rows_written"], 300);
    let skipped = report["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1);
    assert!(
        skipped[0]["path"]
            .as_str()
            .unwrap()
            .ends_with("XRPUSDT/part-0.parquet")
    );
    let ds = Dataset::open(&base).unwrap();
    let m = ds.manifest().unwrap();
    assert_eq!(m.latest_timestamp, Some(JAN5 + 99 * 60_000));
    assert_eq!(
        m.latest_by_key
            .iter()
            .map(|e| e.key["exchange"].clone().unwrap())
            .collect::<Vec<_>>(),
        vec!["BINANCE"; 3]
    );
    assert!(
        parquet_files(&base)
            .iter()
            .all(|f| f.contains("year=2024/month=1/day=5/"))
    );
}

#[test]
fn latest_from_the_manifest_over_10000_files_opens_no_data() {
    // Writing 10,000 files takes every core: not beside a memory measurement.
    let _measuring = measuring();
    let dir = tmp();
    let ds = klines_dataset(dir.path());
    let symbols = 10;
    let days = 1_000;
    let mut frames = vec![];
    for s in 0..symbols {
        let ts: Vec<i64> = (0..days).map(|d| JAN5 + d * DAY + s * 60_000).collect();
        let df = df!("timestamp" => ts, "open" => vec![1.0; days as usize], "high" => vec![1.0; days as usize],
            "low" => vec![1.0; days as usize], "close" => vec![1.0; days as usize], "volume" => vec![1.0; days as usize],
            "symbol" => vec![format!("S{s}USDT"); days as usize]).unwrap();
        frames.push(df.lazy());
    }
    let all = concat(frames, Default::default()).unwrap();
    let opts = WriteOptions {
        constants: consts(&[("exchange", "BINANCE"), ("timeframe", "1d")]),
        ..Default::default()
    };
    ds.write(all, &opts).unwrap();
    assert_eq!(ds.manifest().unwrap().file_count, 10_000);
    // Nothing but the manifest is read: make every data file garbage first.
    for p in ds.file_paths(&ds.manifest().unwrap()) {
        std::fs::write(p, b"x").unwrap();
    }
    let out = run(&[
        "latest",
        dir.path().to_str().unwrap(),
        "--by",
        "symbol",
        "--json",
    ]);
    let v = json_ok(&out);
    assert_eq!(
        v["latest_timestamp"],
        JAN5 + (days - 1) * DAY + (symbols - 1) * 60_000
    );
    let by = v["by_key"].as_array().unwrap();
    assert_eq!(by.len(), 10);
    for (s, e) in by.iter().enumerate() {
        assert_eq!(e["key"]["symbol"], format!("S{s}USDT"));
        assert_eq!(
            e["latest_timestamp"],
            JAN5 + (days - 1) * DAY + s as i64 * 60_000
        );
    }
    let latest = ds
        .latest(
            &["symbol".to_string()],
            &[pqdm::Filter::parse("timestamp < 2024-01-07").unwrap()],
        )
        .unwrap();
    assert_eq!(latest[3].latest_timestamp, Some(JAN5 + DAY + 3 * 60_000));
}

#[test]
fn latest_without_a_manifest_reads_footers_only() {
    let dir = tmp();
    let ds = klines_dataset(dir.path());
    ds.write(candles(JAN5, 100, 1.0).lazy(), &kline_opts("BTCUSDT"))
        .unwrap();
    ds.write(candles(JAN5 + DAY, 50, 1.0).lazy(), &kline_opts("ETHUSDT"))
        .unwrap();
    std::fs::remove_file(dir.path().join("_manifest.json")).unwrap();
    std::fs::remove_dir_all(dir.path().join("_pqdm")).unwrap();
    // Its Delta log too (it names the kept copies under `_pqdm/`): a plain hive folder.
    std::fs::remove_dir_all(dir.path().join("_delta_log")).unwrap();
    let foreign = Dataset::open_any(dir.path(), &Default::default()).unwrap();
    let latest = foreign.latest(&["symbol".into()], &[]).unwrap();
    assert_eq!(
        latest
            .iter()
            .map(|l| l.latest_timestamp.unwrap())
            .collect::<Vec<_>>(),
        vec![JAN5 + 99 * 60_000, JAN5 + DAY + 49 * 60_000]
    );
}

#[test]
fn verify_finds_and_repairs() {
    let dir = tmp();
    let ds = klines_dataset(dir.path());
    ds.write(candles(JAN5, 1440, 1.0).lazy(), &kline_opts("BTCUSDT"))
        .unwrap();
    // Day two misses the hour 10:00-10:59.
    let day2 = candles(JAN5 + DAY, 1440, 1.0).lazy().filter(
        col("open_time")
            .lt(lit(JAN5 + DAY + 600 * 60_000))
            .or(col("open_time").gt_eq(lit(JAN5 + DAY + 660 * 60_000))),
    );
    ds.write(day2, &kline_opts("BTCUSDT")).unwrap();
    ds.write(
        candles(JAN5 + 2 * DAY, 1440, 1.0).lazy(),
        &kline_opts("BTCUSDT"),
    )
    .unwrap();
    ds.write(
        candles(JAN5 + 3 * DAY, 1440, 1.0).lazy(),
        &kline_opts("BTCUSDT"),
    )
    .unwrap();
    let clean = ds.verify(false, &Progress::hidden()).unwrap();
    assert_eq!(clean.gaps.len(), 1);
    assert_eq!(
        (clean.gaps[0].from, clean.gaps[0].to, clean.gaps[0].missing),
        (JAN5 + DAY + 600 * 60_000, JAN5 + DAY + 659 * 60_000, 60)
    );
    assert_eq!(clean.problems(), 1);
    // A duplicated key (append on purpose).
    let append = WriteOptions {
        mode: Some(WriteMode::Append),
        ..kline_opts("BTCUSDT")
    };
    ds.write(candles(JAN5 + 3 * DAY + 5 * 60_000, 1, 1.0).lazy(), &append)
        .unwrap();
    let m = ds.manifest().unwrap();
    let paths: Vec<std::path::PathBuf> = m.files.iter().map(|f| dir.path().join(&f.path)).collect();
    // A deleted file, an orphan, a flipped byte.
    let day3 = m
        .files
        .iter()
        .position(|f| f.path.contains("day=7/"))
        .unwrap();
    // Lost for good: both its link in the tree and the one pqdm keeps.
    std::fs::remove_file(&paths[day3]).unwrap();
    std::fs::remove_file(kept_path(ds.base(), &m.files[day3].path)).unwrap();
    let orphan = dir.path().join("exchange=BINANCE/symbol=BTCUSDT/timeframe=1m/year=2024/month=1/day=5/part-crashed-00000.parquet");
    std::fs::copy(&paths[0], &orphan).unwrap();
    let mut bytes = std::fs::read(&paths[1]).unwrap();
    bytes[0] ^= 0xff;
    std::fs::write(&paths[1], bytes).unwrap();

    let r = ds.verify(false, &Progress::hidden()).unwrap();
    assert_eq!(r.missing, vec![m.files[day3].path.clone()]);
    assert_eq!(r.orphans, vec!["exchange=BINANCE/symbol=BTCUSDT/timeframe=1m/year=2024/month=1/day=5/part-crashed-00000.parquet".to_string()]);
    assert_eq!(r.checksum_mismatches, vec![m.files[1].path.clone()]);
    let out = run(&["verify", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("orphan: exchange=BINANCE/symbol=BTCUSDT/timeframe=1m/year=2024/month=1/day=5/part-crashed-00000.parquet"), "{text}");

    let r = ds.verify(true, &Progress::hidden()).unwrap();
    let rep = r.repairs.unwrap();
    assert_eq!(
        rep.orphans_moved,
        [
            "exchange=BINANCE/symbol=BTCUSDT/timeframe=1m/year=2024/month=1/day=5/part-crashed-00000.parquet"
        ]
    );
    assert_eq!(rep.missing_dropped, [m.files[day3].path.clone()]);
    // The damaged file is quarantined, never re-recorded with its damaged checksum.
    assert!(rep.stats_rebuilt.is_empty());
    assert_eq!(rep.quarantined, vec![m.files[1].path.clone()]);
    assert_eq!(rep.rows_lost, m.files[1].rows + m.files[day3].rows);
    assert!(!orphan.exists());
    let after = ds.verify(false, &Progress::hidden()).unwrap();
    assert!(
        after.missing.is_empty()
            && after.orphans.is_empty()
            && after.checksum_mismatches.is_empty()
    );
    assert_eq!(after.duplicate_keys, 1);
    assert_eq!(
        after.duplicate_examples,
        vec![format!(
            "BINANCE/BTCUSDT/1m/{}",
            JAN5 + 3 * DAY + 5 * 60_000
        )]
    );
    assert_eq!(
        after.gaps.len(),
        1,
        "the dropped and the quarantined day are one gap now: {:?}",
        after.gaps
    );
    assert_eq!(after.gaps[0].missing, 2 * 1440);
    assert_eq!(after.data_error, None);
}

#[test]
fn verify_flags_negative_quantities() {
    let dir = tmp();
    let ds = klines_dataset(dir.path());
    let df = candles(JAN5, 10, 1.0).lazy().with_column(
        when(col("open_time").eq(lit(JAN5)))
            .then(lit(-1.0))
            .otherwise(col("volume"))
            .alias("volume"),
    );
    ds.write(df, &kline_opts("BTCUSDT")).unwrap();
    let r = ds.verify(false, &Progress::hidden()).unwrap();
    assert_eq!(r.bad_values.get("volume"), Some(&1));
}

#[test]
fn vacuum_and_history() {
    let dir = tmp();
    let ds = klines_dataset(dir.path());
    for price in [1.0, 2.0, 3.0] {
        ds.write(candles(JAN5, 100, price).lazy(), &kline_opts("BTCUSDT"))
            .unwrap();
    }
    let out = run(&["history", dir.path().to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    // Every line, its commit time aside (checked to be RFC 3339 and in order).
    let mut times = vec![];
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            let mut words: Vec<&str> = line.split_whitespace().collect();
            times.push(chrono::DateTime::parse_from_rfc3339(words.remove(1)).unwrap());
            words.join(" ")
        })
        .collect();
    assert_eq!(
        lines,
        [
            "v0 create - +0 -0 rows, +0 -0 files -> 0 files, 0 rows",
            "v1 write upsert +100 -0 rows, +1 -0 files -> 1 files, 100 rows",
            "v2 write upsert +100 -100 rows, +1 -1 files -> 1 files, 100 rows",
            "v3 write upsert +100 -100 rows, +1 -1 files -> 1 files, 100 rows",
        ],
        "{text}"
    );
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{text}");
    // Kept for older versions: every file ever committed, two of them no longer in the tree.
    let kept = dir.path().join("_pqdm/files");
    let count = |p: &std::path::Path| {
        let mut n = 0;
        pqdm::manifest::walk(p, &mut |_| n += 1).unwrap();
        n
    };
    assert_eq!(count(&kept), 3);
    let mut out_of_tree = 0;
    pqdm::manifest::walk(&kept, &mut |p| {
        let rel = p
            .strip_prefix(&kept)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let rel = rel.strip_suffix(".kept").unwrap();
        out_of_tree += usize::from(!dir.path().join(rel).exists());
    })
    .unwrap();
    assert_eq!(out_of_tree, 2);
    let r = ds
        .vacuum(&pqdm::maintain::vacuum::VacuumOptions {
            retain_versions: 2,
            retention: std::time::Duration::ZERO,
        })
        .unwrap();
    assert_eq!(
        (r.versions_removed.clone(), r.files_deleted),
        (vec![0, 1], 1)
    );
    assert_eq!(
        ds.scan(&ScanOptions {
            version: Some(2),
            ..Default::default()
        })
        .unwrap()
        .collect()
        .unwrap()
        .column("close")
        .unwrap()
        .f64()
        .unwrap()
        .get(0),
        Some(2.0)
    );
    let err = ds
        .scan(&ScanOptions {
            version: Some(1),
            ..Default::default()
        })
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("version 1 is not kept"), "{err}");
    let out = run(&[
        "vacuum",
        dir.path().to_str().unwrap(),
        "--retain-versions",
        "1",
        "--retention",
        "0s",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["files_deleted"], 1);
    assert_eq!(count(&kept), 1);
    assert_eq!(read_sorted(&ds).height(), 100);
}

#[test]
fn adopt_a_pyarrow_dataset_with_zero_padded_months() {
    let dir = tmp();
    let base = dir.path().join("old");
    let script = r#"
import sys, os, pyarrow as pa, pyarrow.parquet as pq
base = sys.argv[1]
for day in (5, 6):
    d = os.path.join(base, "symbol=BTCUSDT", "year=2024", "month=01", f"day={day:02d}")
    os.makedirs(d)
    t = pa.table({"timestamp": [1704412800000 + (day - 5) * 86400000 + i * 60000 for i in range(10)], "close": [float(i) for i in range(10)]})
    pq.write_table(t, os.path.join(d, "part-0.parquet"))
open(os.path.join(base, "_SUCCESS"), "w").close()
"#;
    py(script, &[base.to_str().unwrap()]);
    let out = run(&["adopt", base.to_str().unwrap(), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ds = Dataset::open(&base).unwrap();
    let m = ds.manifest().unwrap();
    assert_eq!((m.version, m.file_count, m.total_rows), (1, 2, 20));
    assert_eq!(m.partition_type("month"), Some(pqdm::schema::ColType::I8));
    assert_eq!(
        m.latest_timestamp,
        Some(1704412800000 + 86400000 + 9 * 60000)
    );
    assert!(m.files.iter().all(|f| f.checksum.len() == 64));
    let df = ds
        .scan(
            &ScanOptions::default()
                .filter("month == 1")
                .unwrap()
                .filter("day == 6")
                .unwrap(),
        )
        .unwrap()
        .collect()
        .unwrap();
    assert_eq!(df.height(), 10);
    assert_eq!(ds.verify(false, &Progress::hidden()).unwrap().problems(), 0);
    let again = run(&["adopt", base.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already has a pqdm manifest"));
}

/// One partition an adopted tree holds under two spellings (`month=1/day=2`, as DuckDB writes
/// it, and `month=01/day=02`, as pyarrow's users did): an upsert replaces its keys in both
/// folders and an overwrite replaces both folders' rows (red team: the rows of the second
/// spelling stayed beside the new ones, repeating their keys).
#[test]
fn a_partition_adopted_under_two_spellings_is_one_partition_to_upserts_and_overwrites() {
    let script = r#"
import sys, os, pyarrow as pa, pyarrow.parquet as pq
base = sys.argv[1]
hour = 3600000
for folder, hours in (("month=1/day=2", (0, 1, 2)), ("month=01/day=02", (3,))):
    d = os.path.join(base, "exchange=binance/symbol=BTC/timeframe=1h/year=2024", folder)
    os.makedirs(d)
    ts = [1704153600000 + h * hour for h in hours]
    one = [1.0] * len(ts)
    pq.write_table(pa.table({"timestamp": ts, "open": one, "high": one, "low": one, "close": one, "volume": one}), os.path.join(d, "part-0.parquet"))
"#;
    let new_rows = |hours: &[i64], price: f64| {
        let ts: Vec<i64> = hours
            .iter()
            .map(|h| 1_704_153_600_000 + h * 3_600_000)
            .collect();
        let n = ts.len();
        df!(
            "timestamp" => ts, "open" => vec![price; n], "high" => vec![price; n],
            "low" => vec![price; n], "close" => vec![price; n], "volume" => vec![price; n],
        )
        .unwrap()
    };
    let opts = |mode| WriteOptions {
        mode: Some(mode),
        constants: consts(&[
            ("exchange", "binance"),
            ("symbol", "BTC"),
            ("timeframe", "1h"),
        ]),
        ..Default::default()
    };
    for (mode, hours, want) in [
        // Every stored key again: four rows, all new.
        (
            pqdm::WriteMode::Upsert,
            &[0, 1, 2, 3][..],
            vec![(0, 9.0), (1, 9.0), (2, 9.0), (3, 9.0)],
        ),
        // Two keys, one in each folder: the others stay.
        (
            pqdm::WriteMode::Upsert,
            &[1, 3][..],
            vec![(0, 1.0), (1, 9.0), (2, 1.0), (3, 9.0)],
        ),
        // The partition replaced whole.
        (pqdm::WriteMode::Overwrite, &[5][..], vec![(5, 9.0)]),
    ] {
        let dir = tmp();
        let base = dir.path().join("adopted");
        py(script, &[base.to_str().unwrap()]);
        let out = run(&["adopt", base.to_str().unwrap(), "--kind", "klines"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ds = Dataset::open(&base).unwrap();
        ds.write(new_rows(hours, 9.0).lazy(), &opts(mode)).unwrap();
        let df = read_sorted(&ds);
        let ts = df.column("timestamp").unwrap().i64().unwrap();
        let close = df.column("close").unwrap().f64().unwrap();
        let got: Vec<(i64, f64)> = ts
            .into_no_null_iter()
            .zip(close.into_no_null_iter())
            .map(|(t, c)| ((t - 1_704_153_600_000) / 3_600_000, c))
            .collect();
        assert_eq!(got, want, "{mode:?} of hours {hours:?}");
        assert_eq!(ds.verify(false, &Progress::hidden()).unwrap().problems(), 0);
    }
}

#[test]
fn latest_from_the_summary_matches_the_manifest() {
    let dir = tmp();
    let ds = klines_dataset(dir.path());
    ds.write(candles(JAN5, 100, 1.0).lazy(), &kline_opts("BTCUSDT"))
        .unwrap();
    ds.write(candles(JAN5 + DAY, 50, 1.0).lazy(), &kline_opts("ETHUSDT"))
        .unwrap();
    let base = dir.path().to_str().unwrap();
    let fast = run(&["latest", base, "--by", "symbol", "--json"]);
    let from_summary: serde_json::Value = serde_json::from_slice(&fast.stdout).unwrap();
    let by_manifest = ds.latest(&["symbol".into()], &[]).unwrap();
    assert_eq!(
        from_summary["by_key"],
        serde_json::to_value(&by_manifest).unwrap()
    );
    assert_eq!(from_summary["latest_timestamp"], JAN5 + DAY + 49 * 60_000);
    let summary = Dataset::open(dir.path()).unwrap().summary().unwrap();
    assert_eq!((summary.version, summary.total_rows), (2, 150));
    // Without the summary the manifest answers the same.
    std::fs::remove_file(dir.path().join("_pqdm/summary.json")).unwrap();
    let slow = run(&["latest", base, "--by", "symbol", "--json"]);
    let from_manifest: serde_json::Value = serde_json::from_slice(&slow.stdout).unwrap();
    assert_eq!(from_manifest["by_key"], from_summary["by_key"]);
    // The next commit writes it again.
    ds.write(
        candles(JAN5 + 2 * DAY, 5, 1.0).lazy(),
        &kline_opts("ETHUSDT"),
    )
    .unwrap();
    assert_eq!(
        Dataset::open(dir.path())
            .unwrap()
            .summary()
            .unwrap()
            .version,
        3
    );
}
