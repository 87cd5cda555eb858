//! Partitioned writes, write modes, file layout, metadata and the manifest.

use polars::prelude::*;
use pqdm::{Compression, Dataset, FileLayout, WriteMode, WriteOptions};

use crate::common::*;

const DAY: i64 = 86_400_000;
const JAN5: i64 = 1_704_412_800_000; // 2024-01-05T00:00:00Z

#[test]
fn layout_names_manifest_and_latest() {
    let dir = tmp();
    let ds = klines_dataset(dir.path());
    let mut opts = kline_opts("BTCUSDT");
    opts.metadata = consts(&[("source", "unit-test")]);
    let r = ds.write(candles(JAN5, 1440, 100.0).lazy(), &opts).unwrap();
    assert_eq!((r.version, r.rows_written, r.files.len()), (1, 1440, 1));
    let files = parquet_files(dir.path());
    assert_eq!(files.len(), 1);
    assert!(
        files[0].starts_with(
            "exchange=BINANCE/symbol=BTCUSDT/timeframe=1m/year=2024/month=1/day=5/part-"
        ),
        "{}",
        files[0]
    );
    // A second symbol and a second day: names never collide.
    ds.write(
        candles(JAN5 + DAY, 10, 200.0).lazy(),
        &kline_opts("ETHUSDT"),
    )
    .unwrap();
    let m = ds.manifest().unwrap();
    assert_eq!((m.version, m.file_count, m.total_rows), (2, 2, 1450));
    assert_eq!(m.latest_timestamp, Some(JAN5 + DAY + 9 * 60_000));
    let latest: Vec<(Option<String>, i64)> = m
        .latest_by_key
        .iter()
        .map(|e| (e.key["symbol"].clone(), e.latest_timestamp))
        .collect();
    assert_eq!(
        latest,
        vec![
            (Some("BTCUSDT".into()), JAN5 + 1439 * 60_000),
            (Some("ETHUSDT".into()), JAN5 + DAY + 9 * 60_000)
        ]
    );
    let f = &m.files[0];
    assert_eq!(
        (f.rows, f.min_timestamp, f.max_timestamp),
        (1440, Some(JAN5), Some(JAN5 + 1439 * 60_000))
    );
    assert_eq!(
        f.checksum,
        blake3::hash(&std::fs::read(dir.path().join(&f.path)).unwrap())
            .to_hex()
            .to_string()
    );
    let mut file = std::fs::File::open(dir.path().join(&f.path)).unwrap();
    let footer = polars_parquet::read::read_metadata(&mut file).unwrap();
    let source = footer
        .key_value_metadata()
        .iter()
        .flatten()
        .find(|kv| kv.key == "source")
        .and_then(|kv| kv.value.clone());
    assert_eq!(source.as_deref(), Some("unit-test"));
    assert_eq!(
        m.metadata.get("source").map(String::as_str),
        Some("unit-test")
    );
    // Partition columns come back with the recorded dtypes.
    let df = read_sorted(&ds);
    assert_eq!(df.column("month").unwrap().dtype(), &DataType::Int8);
    assert_eq!(df.column("year").unwrap().dtype(), &DataType::Int16);
    assert_eq!(df.column("symbol").unwrap().dtype(), &DataType::String);
    assert_eq!(df.height(), 1450);
    // History keeps every version.
    assert_eq!(ds.versions().unwrap(), vec![0, 1, 2]);
}

#[test]
fn upsert_append_error_overwrite() {
    let dir = tmp();
    let ds = klines_dataset(dir.path());
    let day1 = candles(JAN5, 1440, 100.0);
    ds.write(day1.clone().lazy(), &kline_opts("BTCUSDT"))
        .unwrap();
    ds.write(
        candles(JAN5 + DAY, 60, 100.0).lazy(),
        &kline_opts("BTCUSDT"),
    )
    .unwrap();
    // Upsert the same day with new prices: one copy per key, the new row wins.
    let newer = candles(JAN5, 1440, 500.0);
    let r = ds.write(newer.lazy(), &kline_opts("BTCUSDT")).unwrap();
    assert_eq!(
        (r.rows_written, r.rows_replaced, r.files_replaced),
        (1440, 1440, 1)
    );
    let df = read_sorted(&ds);
    assert_eq!(df.height(), 1500);
    assert_eq!(
        df.column("close").unwrap().f64().unwrap().get(0),
        Some(500.0)
    );
    // Partial overlap: 10 rows of the second day again, plus 5 new ones.
    let r = ds
        .write(
            candles(JAN5 + DAY + 50 * 60_000, 15, 7.0).lazy(),
            &kline_opts("BTCUSDT"),
        )
        .unwrap();
    assert_eq!(r.rows_replaced, 10);
    assert_eq!(read_sorted(&ds).height(), 1505);

    // error: refuses, changes nothing.
    let before = ds.header().version;
    let opts = WriteOptions {
        mode: Some(WriteMode::Error),
        ..kline_opts("BTCUSDT")
    };
    let err = ds
        .write(candles(JAN5, 5, 1.0).lazy(), &opts)
        .unwrap_err()
        .to_string();
    assert!(err.contains("mode `error`: partition exchange=BINANCE/symbol=BTCUSDT/timeframe=1m/year=2024/month=1/day=5 already holds data"), "{err}");
    assert_eq!(Dataset::open(dir.path()).unwrap().header().version, before);
    assert_eq!(read_sorted(&ds).height(), 1505);
    // error mode into an untouched partition works.
    ds.write(candles(JAN5 + 5 * DAY, 5, 1.0).lazy(), &opts)
        .unwrap();

    // append: duplicates on purpose.
    let opts = WriteOptions {
        mode: Some(WriteMode::Append),
        ..kline_opts("BTCUSDT")
    };
    ds.write(candles(JAN5 + 5 * DAY, 5, 1.0).lazy(), &opts)
        .unwrap();
    assert_eq!(read_sorted(&ds).height(), 1515);

    // overwrite: the touched partition holds only the new rows; the others stay.
    let opts = WriteOptions {
        mode: Some(WriteMode::Overwrite),
        ..kline_opts("BTCUSDT")
    };
    ds.write(candles(JAN5, 3, 9.0).lazy(), &opts).unwrap();
    let df = read_sorted(&ds);
    let day5 = df
        .clone()
        .lazy()
        .filter(col("day").eq(lit(5i8)))
        .collect()
        .unwrap();
    assert_eq!(day5.height(), 3);
    assert_eq!(df.height(), 3 + 65 + 10);
    // Replaced files left the tree but are kept for old versions.
    assert_eq!(
        parquet_files(dir.path()).len(),
        ds.manifest().unwrap().file_count as usize
    );
    let v1 = ds
        .scan(&pqdm::ScanOptions {
            version: Some(1),
            ..Default::default()
        })
        .unwrap()
        .collect()
        .unwrap();
    assert_eq!(v1.height(), 1440);
    assert_eq!(
        v1.column("close").unwrap().f64().unwrap().get(0),
        Some(100.0)
    );
}

#[test]
fn upsert_keeps_the_last_of_repeated_keys_in_one_input() {
    let dir = tmp();
    let ds = klines_dataset(dir.path());
    let first = candles(JAN5, 5, 1.0);
    let again = candles(JAN5 + 2 * 60_000, 2, 50.0);
    let input = concat([first.lazy(), again.lazy()], Default::default()).unwrap();
    let r = ds.write(input, &kline_opts("BTCUSDT")).unwrap();
    assert_eq!(r.rows_written, 5);
    let df = read_sorted(&ds);
    let close: Vec<f64> = df
        .column("close")
        .unwrap()
        .f64()
        .unwrap()
        .into_no_null_iter()
        .collect();
    assert_eq!(close, vec![1.0, 2.0, 50.0, 51.0, 5.0]);
    // Append keeps them all.
    let dir = tmp();
    let ds = klines_dataset(dir.path());
    let input = concat(
        [candles(JAN5, 5, 1.0).lazy(), candles(JAN5, 5, 1.0).lazy()],
        Default::default(),
    )
    .unwrap();
    let opts = WriteOptions {
        mode: Some(WriteMode::Append),
        ..kline_opts("BTCUSDT")
    };
    assert_eq!(ds.write(input, &opts).unwrap().rows_written, 10);
}

/// Before: CSV inputs of one shape were read by one scan put where the first of them stood, so
/// `a.csv b.parquet c.csv` (the same 100 candles, closes 1, 2 and 3) kept b's closes in an
/// upsert. Inputs keep the order given: the last file's row wins, whatever lies between.
#[test]
fn the_last_input_given_wins_an_upsert_across_csv_and_parquet() {
    let dir = tmp();
    let n = 100i64;
    let rows = |close: f64| {
        df!(
            "open_time" => (0..n).map(|i| JAN5 + i * 60_000).collect::<Vec<_>>(),
            "open" => vec![close; n as usize], "high" => vec![close; n as usize],
            "low" => vec![close; n as usize], "close" => vec![close; n as usize],
            "volume" => vec![1.0f64; n as usize],
        )
        .unwrap()
    };
    let write_csv = |name: &str, close: f64| {
        let path = dir.path().join(name);
        CsvWriter::new(std::fs::File::create(&path).unwrap())
            .finish(&mut rows(close))
            .unwrap();
        path
    };
    let write_parquet = |name: &str, close: f64| {
        let path = dir.path().join(name);
        ParquetWriter::new(std::fs::File::create(&path).unwrap())
            .finish(&mut rows(close))
            .unwrap();
        path
    };
    let a = write_csv("a.csv", 1.0);
    let b = write_parquet("b.parquet", 2.0);
    let c = write_csv("c.csv", 3.0);
    let d = write_parquet("d.parquet", 4.0);
    for (order, want) in [
        ([&a, &b, &c], 3.0),
        ([&c, &d, &a], 1.0),
        ([&a, &c, &d], 4.0),
    ] {
        let base = dir.path().join(format!("ds{want}"));
        let mut args = vec![
            "ingest".to_string(),
            "--dataset".into(),
            base.to_str().unwrap().into(),
            "--kind".into(),
            "klines".into(),
            "--exchange".into(),
            "BINANCE".into(),
            "--symbol".into(),
            "BTCUSDT".into(),
            "--timeframe".into(),
            "1m".into(),
            "--quiet".into(),
        ];
        args.extend(order.iter().map(|p| p.to_str().unwrap().to_string()));
        let out = bin().args(&args).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let df = read_sorted(&Dataset::open(&base).unwrap());
        let closes: Vec<f64> = df
            .column("close")
            .unwrap()
            .f64()
            .unwrap()
            .into_no_null_iter()
            .collect();
        assert_eq!(closes, vec![want; n as usize], "{order:?}");
    }
}

#[test]
fn compression_is_applied() {
    let dir = tmp();
    let ds = klines_dataset(dir.path());
    let zstd = WriteOptions {
        compression: Some(Compression::Zstd(Some(3))),
        ..kline_opts("BTCUSDT")
    };
    ds.write(candles(JAN5, 100, 1.0).lazy(), &zstd).unwrap();
    ds.write(candles(JAN5 + DAY, 100, 1.0).lazy(), &kline_opts("BTCUSDT"))
        .unwrap();
    let m = ds.manifest().unwrap();
    let codecs = py(
        "import sys, pyarrow.parquet as pq\nfor p in sys.argv[1:]:\n    md = pq.ParquetFile(p).metadata\n    print(sorted({md.row_group(i).column(j).compression for i in range(md.num_row_groups) for j in range(md.num_columns)}))",
        &m.files
            .iter()
            .map(|f| dir.path().join(&f.path).to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert_eq!(codecs, "['ZSTD']\n['SNAPPY']\n");
}

#[test]
fn max_rows_per_file_and_row_group_validation() {
    let dir = tmp();
    let ds = klines_dataset(dir.path());
    let opts = WriteOptions {
        layout: FileLayout {
            max_rows_per_file: Some(1000),
            ..Default::default()
        },
        ..kline_opts("BTCUSDT")
    };
    let r = ds
        .write(
            candles(JAN5, 10_500, 1.0)
                .lazy()
                .filter(col("open_time").lt(lit(JAN5 + DAY))),
            &opts,
        )
        .unwrap();
    assert_eq!(r.rows_written, 1440);
    let dir2 = tmp();
    let ds2 = Dataset::create(
        dir2.path(),
        pqdm::schema::KindRegistry::default().get("klines").unwrap(),
        &pqdm::CreateOptions {
            partition_by: Some(vec![
                "exchange".into(),
                "symbol".into(),
                "timeframe".into(),
                "year".into(),
            ]),
            ..Default::default()
        },
    )
    .unwrap();
    let r = ds2.write(candles(JAN5, 10_500, 1.0).lazy(), &opts).unwrap();
    assert_eq!((r.rows_written, r.files.len()), (10_500, 11));
    assert_eq!(parquet_files(dir2.path()).len(), 11);
    let bad = WriteOptions {
        layout: FileLayout {
            max_rows_per_file: Some(1000),
            min_rows_per_group: Some(1000),
            row_group_size: None,
        },
        ..kline_opts("BTCUSDT")
    };
    let err = ds2
        .write(candles(JAN5, 10, 1.0).lazy(), &bad)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "invalid option: min_rows_per_group (1000) must be below max_rows_per_file (1000)"
    );
    assert_eq!(ds2.header().version, 1);
}

#[test]
fn failed_ingest_leaves_previous_version_byte_for_byte() {
    let dir = tmp();
    let base = dir.path().join("ds");
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let ok = run(&[
        "ingest",
        data_dir()
            .join("spot/klines/BTCUSDT-1m-2024-01-05.zip")
            .to_str()
            .unwrap(),
        "--dataset",
        base.to_str().unwrap(),
        "--kind",
        "klines",
        "--quiet",
    ]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let before = snapshot(&base);
    let line = |t: i64, open: &str| format!("{t},{open},2,0.5,1.5,10,{},15,3,4,5,0\n", t + 59_999);
    std::fs::write(src.join("AUSDT-1m-2024-01-06.csv"), line(JAN5 + DAY, "1")).unwrap();
    std::fs::write(src.join("BUSDT-1m-2024-01-06.csv"), line(JAN5 + DAY, "1")).unwrap();
    std::fs::write(
        src.join("CUSDT-1m-2024-01-06.csv"),
        format!(
            "{}{}",
            line(JAN5 + DAY, "1"),
            line(JAN5 + DAY + 60_000, "x1")
        ),
    )
    .unwrap();
    let out = run(&[
        "ingest",
        src.to_str().unwrap(),
        "--dataset",
        base.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "CUSDT-1m-2024-01-06.csv: column `open`, row 2: cannot cast value \"x1\" to f64"
        ),
        "{err}"
    );
    assert_eq!(snapshot(&base), before);
}

#[test]
fn json_report_and_file_callback() {
    let dir = tmp();
    let base = dir.path().join("ds");
    let out = run(&[
        "ingest",
        data_dir().join("spot/klines").to_str().unwrap(),
        "--dataset",
        base.to_str().unwrap(),
        "--kind",
        "klines",
        "--json",
    ]);
    let report = json_ok(&out);
    assert_eq!(report["version"], 1);
    assert_eq!(report["mode"], "upsert");
    assert_eq!(report["rows_written"], 4 * 1440);
    let files = report["files"].as_array().unwrap();
    assert_eq!(files.len(), 4);
    let m = Dataset::open(&base).unwrap().manifest().unwrap();
    for (f, e) in files.iter().zip(&m.files) {
        assert_eq!(f["path"], e.path.as_str());
        assert_eq!(f["rows"], 1440);
        assert_eq!(f["bytes"], e.bytes);
    }
    // wall_ms and peak_rss_bytes: checked against the kernel's measure in memory.rs.

    let seen = std::sync::Arc::new(std::sync::Mutex::new(vec![]));
    let sink = seen.clone();
    let ds = Dataset::open(&base).unwrap();
    let opts = WriteOptions {
        on_file: Some(std::sync::Arc::new(move |f: &pqdm::manifest::FileEntry| {
            sink.lock().unwrap().push((f.path.clone(), f.rows))
        })),
        ..kline_opts("SOLUSDT")
    };
    ds.write(candles(JAN5, 30, 1.0).lazy(), &opts).unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert!(
        seen[0].0.starts_with("exchange=BINANCE/symbol=SOLUSDT/"),
        "{seen:?}"
    );
    assert_eq!(seen[0].1, 30);
}

#[test]
fn config_precedence_flag_env_file_default() {
    let dir = tmp();
    let cfg = dir.path().join("pqdm.toml");
    std::fs::write(
        &cfg,
        "[scan]\nbatch_size = 1000\nthreads = 3\n[write]\ncompression = \"zstd\"\n",
    )
    .unwrap();
    let c = pqdm::config::Config::load(Some(&cfg)).unwrap();
    // No env set in this process for these names: file wins over default, flag over file.
    assert_eq!(c.scan_batch_size(None).unwrap(), Some((1000, "config")));
    assert_eq!(c.scan_batch_size(Some(7)).unwrap(), Some((7, "flag")));
    assert_eq!(
        c.write_setting(None, "PQDM_TEST_UNSET_VAR", c.write.compression.clone()),
        Some("zstd".into())
    );
    assert_eq!(
        c.write_setting(
            Some("lz4".into()),
            "PQDM_TEST_UNSET_VAR",
            c.write.compression.clone()
        ),
        Some("lz4".into())
    );
    // Nothing set: the scan chooses from the projection's width.
    assert_eq!(
        pqdm::config::Config::default()
            .scan_batch_size(None)
            .unwrap(),
        None
    );
    std::fs::write(&cfg, "[scan]\nbatchsize = 1\n").unwrap();
    let err = pqdm::config::Config::load(Some(&cfg))
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown field `batchsize`"), "{err}");
    // Through the binary: the env beats the file.
    let base = dir.path().join("ds");
    let out = bin()
        .args([
            "--config",
            cfg.to_str().unwrap(),
            "ingest",
            data_dir()
                .join("spot/klines/BTCUSDT-1m-2024-01-05.zip")
                .to_str()
                .unwrap(),
            "--dataset",
            base.to_str().unwrap(),
            "--quiet",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown field `batchsize`"));
    std::fs::write(&cfg, "[write]\ncompression = \"zstd\"\n").unwrap();
    let out = bin()
        .env("PQDM_COMPRESSION", "gzip")
        .args([
            "--config",
            cfg.to_str().unwrap(),
            "ingest",
            data_dir()
                .join("spot/klines/BTCUSDT-1m-2024-01-05.zip")
                .to_str()
                .unwrap(),
            "--dataset",
            base.to_str().unwrap(),
            "--quiet",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        Dataset::open(&base)
            .unwrap()
            .manifest()
            .unwrap()
            .settings
            .compression,
        "gzip"
    );
}

#[test]
fn a_memory_budget_over_several_inputs_counts_their_rows() {
    // Several inputs are one union; counting its rows for the budget's slices once failed in
    // Polars ("casting from UInt32 to UInt128 not supported").
    let dir = tmp();
    let base = dir.path().join("ds");
    let spot = data_dir().join("spot/klines/BTCUSDT-1m-2024-01-05.zip");
    let um = data_dir().join("futures/um/klines/BTCUSDT-1m-2024-01-05.csv");
    let out = run(&[
        "ingest",
        spot.to_str().unwrap(),
        um.to_str().unwrap(),
        "--dataset",
        base.to_str().unwrap(),
        "--kind",
        "klines",
        "--memory-limit",
        "64MiB",
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let info = json_ok(&run(&["info", base.to_str().unwrap(), "--json"]));
    assert_eq!(info["total_rows"], 2880, "{info}");
}

/// An upsert tags stored rows with their file from the row counts the version records: a
/// version edited by hand to say otherwise is refused naming the files, with nothing written
/// (instead of replacing the wrong rows).
#[test]
fn an_upsert_over_row_counts_edited_by_hand_is_refused() {
    let dir = tmp();
    let ds = klines_dataset(dir.path());
    let start = 1_704_067_200_000;
    ds.write(candles(start, 30, 1.0).lazy(), &kline_opts("BTCUSDT"))
        .unwrap();
    ds.write(
        candles(start + 30 * 60_000, 30, 2.0).lazy(),
        &kline_opts("BTCUSDT"),
    )
    .unwrap();
    write_version_files(dir.path());
    let versions = dir.path().join("_pqdm/versions");
    let newest = std::fs::read_dir(&versions)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max()
        .unwrap();
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&newest).unwrap()).unwrap();
    // The file of the first 30 minutes, the one the next upsert replaces rows in.
    let files = m["files"].as_array_mut().unwrap();
    let first = files
        .iter_mut()
        .find(|f| f["min_timestamp"] == serde_json::json!(start))
        .unwrap();
    first["rows"] = serde_json::json!(31);
    let edited = serde_json::to_vec(&m).unwrap();
    std::fs::write(&newest, &edited).unwrap();
    std::fs::write(dir.path().join("_manifest.json"), &edited).unwrap();
    let before = snapshot(dir.path());

    let again = Dataset::open(dir.path()).unwrap();
    let err = again
        .write(
            candles(start + 10 * 60_000, 5, 9.0).lazy(),
            &kline_opts("BTCUSDT"),
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("hold 30 rows, their records say 31"), "{err}");
    assert!(err.contains("pqdm verify"), "{err}");
    assert_eq!(snapshot(dir.path()), before);
}

/// Issue 16, item 4: a write that sets no `max_rows_per_file` follows the dataset's own setting
/// (library writes and `migrate` used to take 5,000,000 from `FileLayout::default()`).
#[test]
fn library_writes_and_migrate_follow_the_datasets_max_rows_per_file() {
    let dir = tmp();
    let ds = Dataset::create(
        dir.path().join("ds"),
        pqdm::schema::KindRegistry::default().get("klines").unwrap(),
        &pqdm::CreateOptions {
            max_rows_per_file: Some(100),
            ..Default::default()
        },
    )
    .unwrap();
    let r = ds
        .write(candles(JAN5, 250, 1.0).lazy(), &kline_opts("BTCUSDT"))
        .unwrap();
    let rows: Vec<u64> = r.files.iter().map(|f| f.rows).collect();
    assert_eq!(rows, [100, 100, 50]);
    // migrate of a flat file into the same dataset (another symbol).
    let flat = dir.path().join("flat.parquet");
    let mut df = candles(JAN5, 250, 2.0);
    ParquetWriter::new(std::fs::File::create(&flat).unwrap())
        .finish(&mut df)
        .unwrap();
    let out = run(&[
        "migrate",
        flat.to_str().unwrap(),
        "--dataset",
        dir.path().join("ds").to_str().unwrap(),
        "--kind",
        "klines",
        "--set",
        "exchange=BINANCE",
        "--set",
        "symbol=ETHUSDT",
        "--set",
        "timeframe=1m",
        "--json",
    ]);
    let v = json_ok(&out);
    let rows: Vec<u64> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rows"].as_u64().unwrap())
        .collect();
    assert_eq!(rows, [100, 100, 50], "{v}");
}

/// A folder of daily CSVs named for their symbol and day is one grouped scan with the names
/// joined in; under a memory budget it was staged in slices by row number, each slice a new
/// run of that scan. The join once reordered rows from run to run, so slices overlapped: an
/// append stored some candles twice and lost others, an upsert lost them (found by a red team:
/// 2 to 5 runs in 20). The join now keeps the files' order, and the scan runs once, its
/// batches gathered into slices. Every run must store each candle once.
#[test]
fn a_memory_budget_over_a_folder_of_daily_csvs_stores_every_candle_once() {
    let dir = tmp();
    let inputs = dir.path().join("in");
    std::fs::create_dir_all(&inputs).unwrap();
    let jan1 = 1_704_067_200_000i64;
    for symbol in ["BTCUSDT", "ETHUSDT"] {
        for day in 0..12i64 {
            let mut text = String::new();
            for m in 0..1440i64 {
                let t = jan1 + day * 86_400_000 + m * 60_000;
                text.push_str(&format!("{t},{m},{m},{m},{m},{m},{}\n", t + 59_999));
            }
            let name = format!("{symbol}-1m-2024-01-{:02}.csv", day + 1);
            std::fs::write(inputs.join(name), text).unwrap();
        }
    }
    let want_rows = 2 * 12 * 1440;
    let want_sum = (2 * 12) as f64 * (0..1440).sum::<i64>() as f64;
    for (round, mode) in ["append", "upsert", "append", "upsert", "append", "upsert"]
        .iter()
        .enumerate()
    {
        let base = dir.path().join(format!("ds{round}"));
        let out = bin()
            .env("RUST_LOG", "pqdm::slices=info")
            .args([
                "ingest",
                inputs.to_str().unwrap(),
                "--dataset",
                base.to_str().unwrap(),
                "--exchange",
                "BINANCE",
                "--kind",
                "klines",
                "--memory-limit",
                "1MiB",
                "--mode",
                mode,
                "--quiet",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stderr(&out).contains("in slices of"), "{}", stderr(&out));
        let df = read_sorted(&Dataset::open(&base).unwrap());
        let keys = df
            .select(["symbol", "timestamp"])
            .unwrap()
            .unique_stable(None, UniqueKeepStrategy::Any, None)
            .unwrap()
            .height();
        let sum: f64 = f64s(&df, "close").iter().sum();
        assert_eq!(
            (df.height(), keys, sum),
            (want_rows, want_rows, want_sum),
            "round {round} ({mode})"
        );
    }
}

/// Staged files are hashed as the sink writes them, never read back for it: every committed
/// file's checksum and size must still be those of its bytes, for files staged flat and in
/// folders (a 200-byte symbol), with escaped values, over several slices of a budgeted write and
/// an upsert's rewrite.
#[test]
fn every_committed_file_has_the_checksum_of_its_bytes() {
    let dir = tmp();
    let base = dir.path().join("k");
    let ds = klines_dataset(&base);
    let long = format!("{}USDT", "L".repeat(200));
    // Escaped in its folder's name: `/`, `%`, `..`, `[`, a space.
    let odd = "A/B %2F..[X]";
    for (symbol, price) in [("BTCUSDT", 10.0), (long.as_str(), 20.0), (odd, 30.0)] {
        // Three days of minutes under a 1 MiB budget: several slices, several files a day.
        let opts = WriteOptions {
            memory_limit: pqdm::MemoryLimit::Bytes(1 << 20),
            ..kline_opts(symbol)
        };
        ds.write(candles(JAN5, 3 * 1440, price).lazy(), &opts)
            .unwrap();
    }
    // Half a day of the second day again: the merge rewrites that day.
    let r = ds
        .write(
            candles(JAN5 + DAY + 720 * 60_000, 60, 99.0).lazy(),
            &kline_opts("BTCUSDT"),
        )
        .unwrap();
    assert_eq!(r.rows_written, 60);
    let m = ds.manifest().unwrap();
    assert!(m.files.len() >= 6, "{} files", m.files.len());
    assert!(m.files.iter().any(|f| f.path.contains(&long)));
    assert!(m.files.iter().any(|f| f.path.contains("symbol=A%2FB")));
    for f in &m.files {
        for name in [
            base.join(&f.path),
            base.join(format!("_pqdm/files/{}.kept", f.path)),
        ] {
            let bytes = std::fs::read(&name).unwrap();
            assert_eq!(f.bytes, bytes.len() as u64, "{}", name.display());
            assert_eq!(
                f.checksum,
                blake3::hash(&bytes).to_hex().to_string(),
                "{}",
                name.display()
            );
        }
    }
    assert_eq!(read_sorted(&ds).height(), 3 * 3 * 1440);
    let out = run(&["verify", base.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}
