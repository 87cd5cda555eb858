//! Regressions of issue 22 ("Maintenance you can trust"): repair, adopt, compact, latest,
//! materialize, migrate and settings, each as the issue found it.

use std::os::unix::fs::FileExt;
use std::path::Path;

use polars::prelude::*;
use pqdm::maintain::compact::CompactOptions;
use pqdm::progress::Progress;
use pqdm::schema::KindRegistry;
use pqdm::{Compression, CreateOptions, Dataset, WriteMode, WriteOptions};

use crate::common::*;

const JAN5: i64 = 1_704_412_800_000;
const DAY: i64 = 86_400_000;
const MINUTE: i64 = 60_000;

/// `n` one-minute candles from `start_ms` with the kind's own column names (as another tool
/// would have written them).
fn kline_rows(start_ms: i64, n: usize, price: f64) -> DataFrame {
    let ts: Vec<i64> = (0..n as i64).map(|i| start_ms + i * MINUTE).collect();
    let close: Vec<f64> = (0..n).map(|i| price + i as f64).collect();
    df!(
        "timestamp" => ts.clone(),
        "open" => close.clone(), "high" => close.clone(), "low" => close.clone(), "close" => close,
        "volume" => vec![1.5f64; n],
        "close_time" => ts.iter().map(|t| t + 59_999).collect::<Vec<_>>(),
        "quote_volume" => vec![2.0f64; n],
        "trades" => vec![7i64; n],
        "taker_buy_volume" => vec![0.5f64; n],
        "taker_buy_quote_volume" => vec![1.0f64; n],
    )
    .unwrap()
}

/// Writes `df` as one Parquet file at `path` (folders created), as another tool would.
fn write_parquet(path: &Path, mut df: DataFrame, compression: ParquetCompression) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    ParquetWriter::new(std::fs::File::create(path).unwrap())
        .with_compression(compression)
        .finish(&mut df)
        .unwrap();
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A klines dataset with 10 BTCUSDT and 10 ETHUSDT candles on 2024-01-05.
fn two_symbols(dir: &Path, compression: Compression) -> Dataset {
    let ds = Dataset::create(
        dir,
        KindRegistry::default().get("klines").unwrap(),
        &CreateOptions {
            compression,
            ..Default::default()
        },
    )
    .unwrap();
    for symbol in ["BTCUSDT", "ETHUSDT"] {
        ds.write(candles(JAN5, 10, 1.0).lazy(), &kline_opts(symbol))
            .unwrap();
    }
    ds
}

// 2. An upsert into folders adopted with zero-padded months and days replaces their rows.
#[test]
fn upsert_into_adopted_zero_padded_folders_replaces_rows() {
    let dir = tmp();
    let base = dir.path().join("old");
    let folder =
        base.join("exchange=BINANCE/symbol=BTCUSDT/timeframe=1m/year=2024/month=01/day=05");
    write_parquet(
        &folder.join("part-0.parquet"),
        kline_rows(JAN5, 10, 1.0),
        ParquetCompression::Snappy,
    );
    json_ok(&run(&["adopt", s(&base), "--kind", "klines", "--json"]));
    let ds = Dataset::open(&base).unwrap();
    let opts = WriteOptions {
        compression: Some(Compression::Snappy),
        ..kline_opts("BTCUSDT")
    };
    let r = ds.write(candles(JAN5, 10, 100.0).lazy(), &opts).unwrap();
    assert_eq!(r.rows_replaced, 10);
    let files = parquet_files(&base);
    assert!(
        files.iter().all(|f| f.starts_with(
            "exchange=BINANCE/symbol=BTCUSDT/timeframe=1m/year=2024/month=01/day=05/"
        )),
        "{files:?}"
    );
    let df = read_sorted(&ds);
    assert_eq!(df.height(), 10);
    assert_eq!(
        df.column("close").unwrap().f64().unwrap().get(0),
        Some(100.0)
    );
    let v = ds.verify(false, &Progress::hidden()).unwrap();
    assert_eq!((v.duplicate_keys, v.problems()), (0, 0));
}

// 3. A dataset never contains another.
#[test]
fn materialize_or_ingest_inside_or_above_a_dataset_is_refused() {
    let dir = tmp();
    let src = dir.path().join("src");
    two_symbols(&src, Compression::Snappy);
    let before = snapshot(dir.path());
    for to in [src.join("views/btc"), dir.path().to_path_buf()] {
        let out = run(&["materialize", s(&src), "--to", s(&to)]);
        assert_eq!(out.status.code(), Some(1), "{}", s(&to));
        let err = stderr(&out);
        assert!(err.contains("nested") && err.contains(s(&src)), "{err}");
        assert_eq!(snapshot(dir.path()), before);
    }
    let csv = dir.path().join("in.csv");
    std::fs::write(
        &csv,
        "timestamp,open,high,low,close,volume\n1704412800000,1,1,1,1,1\n",
    )
    .unwrap();
    let inner = src.join("exchange=BINANCE/more");
    let out = run(&[
        "ingest",
        s(&csv),
        "--dataset",
        s(&inner),
        "--kind",
        "klines",
        "--exchange",
        "BINANCE",
        "--symbol",
        "BTCUSDT",
        "--timeframe",
        "1m",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("nested"), "{}", stderr(&out));
    assert!(!inner.exists());
}

// 3. Repair never touches a nested dataset's files.
#[test]
fn repair_leaves_a_nested_dataset_alone() {
    let dir = tmp();
    let outer = dir.path().join("outer");
    let ods = klines_dataset(&outer);
    ods.write(candles(JAN5, 10, 1.0).lazy(), &kline_opts("BTCUSDT"))
        .unwrap();
    let made = dir.path().join("inner");
    two_symbols(&made, Compression::Snappy);
    let inner = outer.join("inner");
    std::fs::rename(&made, &inner).unwrap();
    let out = run(&["verify", s(&outer), "--repair", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["orphans"], serde_json::json!([]), "{v}");
    assert_eq!(out.status.code(), Some(0), "{v}");
    let ids = Dataset::open(&inner).unwrap();
    assert_eq!(
        ids.verify(false, &Progress::hidden()).unwrap().problems(),
        0
    );
    assert_eq!(read_sorted(&ids).height(), 20);
}

// 4. Repair quarantines a file whose bytes changed; it never records the damage as correct.
#[test]
fn repair_quarantines_a_corrupted_file() {
    let dir = tmp();
    let ds = two_symbols(dir.path(), Compression::None);
    let m = ds.manifest().unwrap();
    let btc = m
        .files
        .iter()
        .find(|f| f.path.contains("symbol=BTCUSDT"))
        .unwrap()
        .clone();
    let path = dir.path().join(&btc.path);
    let mut bytes = std::fs::read(&path).unwrap();
    let seven = 7.0f64.to_le_bytes();
    let at = bytes.windows(8).position(|w| w == seven).unwrap();
    bytes[at..at + 8].copy_from_slice(&7.5f64.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();

    let out = run(&["verify", s(dir.path()), "--repair", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["checksum_mismatches"],
        serde_json::json!([btc.path]),
        "{v}"
    );
    assert_eq!(v["repairs"]["stats_rebuilt"], serde_json::json!([]), "{v}");
    assert_eq!(
        v["repairs"]["quarantined"],
        serde_json::json!([btc.path]),
        "{v}"
    );
    assert_eq!(v["repairs"]["rows_lost"], 10, "{v}");
    assert!(
        dir.path()
            .join(format!("_pqdm/orphans/{}.orphan", btc.path))
            .exists()
    );
    let ds = Dataset::open(dir.path()).unwrap();
    let df = read_sorted(&ds);
    assert_eq!(df.height(), 10);
    let symbols = df.column("symbol").unwrap().str().unwrap().clone();
    assert!(symbols.iter().all(|s| s == Some("ETHUSDT")));
    let again = run(&["verify", s(dir.path()), "--json"]);
    assert_eq!(
        again.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
}

// 5. `latest` with a timestamp (or data) filter answers from the rows the filter keeps.
#[test]
fn latest_with_a_row_filter_answers_from_matching_rows() {
    let dir = tmp();
    let ds = klines_dataset(dir.path());
    ds.write(candles(JAN5, 1440, 1.0).lazy(), &kline_opts("BTCUSDT"))
        .unwrap();
    for (filter, want) in [
        ("timestamp < 2024-01-05T12:00:00", JAN5 + 719 * MINUTE),
        ("timestamp <= 2024-01-05T12:00:00", JAN5 + 720 * MINUTE),
        ("close < 100", JAN5 + 98 * MINUTE),
        ("timestamp >= 2024-01-05T12:00:00", JAN5 + 1439 * MINUTE),
    ] {
        let out = run(&["latest", s(dir.path()), "--filter", filter, "--json"]);
        let v = json_ok(&out);
        assert_eq!(v["latest_timestamp"], want, "{filter}: {v}");
        assert_eq!(v["by_key"][0]["latest_timestamp"], want, "{filter}: {v}");
    }
    let none = json_ok(&run(&[
        "latest",
        s(dir.path()),
        "--filter",
        "timestamp < 2024-01-01",
        "--json",
    ]));
    assert_eq!(none["latest_timestamp"], serde_json::Value::Null, "{none}");
}

// 7. Adopt refuses timestamps that are not Int64 milliseconds, naming the file.
#[test]
fn adopt_refuses_timestamps_not_in_milliseconds() {
    let dir = tmp();
    let micros = kline_rows(JAN5, 10, 1.0)
        .lazy()
        .with_column(col("timestamp") * lit(1000i64))
        .collect()
        .unwrap();
    let typed = kline_rows(JAN5, 10, 1.0)
        .lazy()
        .with_column(
            (col("timestamp") * lit(1000i64))
                .cast(DataType::Datetime(TimeUnit::Microseconds, None)),
        )
        .collect()
        .unwrap();
    for (name, df, why) in [
        ("micros", micros, "microseconds"),
        ("typed", typed, "datetime"),
    ] {
        let base = dir.path().join(name);
        write_parquet(
            &base.join("symbol=BTCUSDT/part-0.parquet"),
            df,
            ParquetCompression::Snappy,
        );
        let before = snapshot(&base);
        let out = run(&["adopt", s(&base)]);
        assert_eq!(out.status.code(), Some(1), "{name}");
        let err = stderr(&out);
        assert!(
            err.contains("symbol=BTCUSDT/part-0.parquet") && err.to_lowercase().contains(why),
            "{err}"
        );
        assert_eq!(snapshot(&base), before);
    }
}

// 8. An adopted dataset records its files' compression and is fully writable.
#[test]
fn adopted_dataset_is_fully_writable() {
    let dir = tmp();
    let base = dir.path().join("old");
    write_parquet(
        &base
            .join("exchange=BINANCE/symbol=BTCUSDT/timeframe=1m/year=2024/month=1/day=5/a.parquet"),
        kline_rows(JAN5, 10, 1.0),
        ParquetCompression::Zstd(None),
    );
    json_ok(&run(&["adopt", s(&base), "--kind", "klines", "--json"]));
    let info = json_ok(&run(&["info", s(&base), "--json"]));
    assert_eq!(info["settings"]["compression"], "zstd", "{info}");
    let ds = Dataset::open(&base).unwrap();
    let append = WriteOptions {
        mode: Some(WriteMode::Append),
        ..kline_opts("BTCUSDT")
    };
    ds.write(candles(JAN5 + 10 * MINUTE, 10, 1.0).lazy(), &append)
        .unwrap();
    let r = ds
        .compact(&CompactOptions::default(), &Progress::hidden())
        .unwrap();
    assert_eq!((r.files_before, r.files_after, r.rows), (2, 1, 20));
    let view = dir.path().join("view");
    json_ok(&run(&["materialize", s(&base), "--to", s(&view), "--json"]));
    assert_eq!(read_sorted(&Dataset::open(&view).unwrap()).height(), 20);
}

// 10. Compaction reads a partition whose newer files gained a column.
#[test]
fn compact_reads_files_that_gained_a_column() {
    let dir = tmp();
    let ds = Dataset::create(
        dir.path(),
        KindRegistry::default().get("split").unwrap(),
        &CreateOptions::default(),
    )
    .unwrap();
    let opts = WriteOptions {
        constants: consts(&[("exchange", "BINANCE"), ("symbol", "BTCUSDT")]),
        ..Default::default()
    };
    let ts = |from: i64| {
        (from..from + 10)
            .map(|i| JAN5 + i * MINUTE)
            .collect::<Vec<_>>()
    };
    let first = df!("timestamp" => ts(0), "label" => vec![1i64; 10]).unwrap();
    let second =
        df!("timestamp" => ts(10), "label" => vec![2i64; 10], "feature" => vec![0.5f64; 10])
            .unwrap();
    ds.write(first.lazy(), &opts).unwrap();
    // File names start with the second they were written in: this keeps the file without the
    // column first in the partition, the order that made compaction fail.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    ds.write(second.lazy(), &opts).unwrap();
    let m = ds.manifest().unwrap();
    assert!(m.files[0].added_in < m.files[1].added_in, "{:?}", m.files);
    let r = ds
        .compact(&CompactOptions::default(), &Progress::hidden())
        .unwrap();
    assert_eq!((r.files_before, r.files_after, r.rows), (2, 1, 20));
    let df = read_sorted(&ds);
    assert_eq!(df.height(), 20);
    assert_eq!(df.column("feature").unwrap().null_count(), 10);
    assert_eq!(
        df.column("feature").unwrap().f64().unwrap().get(19),
        Some(0.5)
    );
}

// 11. Verify opens what a scan opens: a dataset that cannot be scanned is not "0 problems".
#[test]
fn verify_reports_a_dataset_that_cannot_be_scanned() {
    let dir = tmp();
    let base = dir.path().join("mixed");
    let ts: Vec<i64> = (0..5).map(|i| JAN5 + i * MINUTE).collect();
    write_parquet(
        &base.join("symbol=A/part-0.parquet"),
        df!("timestamp" => ts.clone(), "feature" => vec![1i64; 5]).unwrap(),
        ParquetCompression::Snappy,
    );
    let b = base.join("symbol=B/part-0.parquet");
    let text = df!("timestamp" => ts.clone(), "feature" => vec!["x"; 5]).unwrap();
    write_parquet(&b, text.clone(), ParquetCompression::Snappy);
    // `adopt` itself refuses files whose types differ.
    let out = run(&["adopt", s(&base)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("column `feature` is stored as str"));
    // So the mixed dataset is made by hand: adopted consistent, then one file rewritten in place.
    write_parquet(
        &b,
        df!("timestamp" => ts, "feature" => vec![2i64; 5]).unwrap(),
        ParquetCompression::Snappy,
    );
    json_ok(&run(&["adopt", s(&base), "--json"]));
    write_parquet(&b, text, ParquetCompression::Snappy);
    assert_eq!(run(&["scan", s(&base)]).status.code(), Some(1));
    let out = run(&["verify", s(&base), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["data_error"].is_string(), "{v}");
    assert_eq!(out.status.code(), Some(1), "{v}");
}

// 11. A repair that drops a missing file still runs the data checks before saying "0 problems".
#[test]
fn verify_repair_with_a_missing_file_still_checks_the_data() {
    let dir = tmp();
    let ds = klines_dataset(dir.path());
    ds.write(candles(JAN5, 10, 1.0).lazy(), &kline_opts("BTCUSDT"))
        .unwrap();
    ds.write(candles(JAN5 + DAY, 10, 1.0).lazy(), &kline_opts("BTCUSDT"))
        .unwrap();
    let append = WriteOptions {
        mode: Some(WriteMode::Append),
        ..kline_opts("BTCUSDT")
    };
    ds.write(candles(JAN5, 1, 1.0).lazy(), &append).unwrap();
    let m = ds.manifest().unwrap();
    let day6 = m.files.iter().find(|f| f.path.contains("day=6/")).unwrap();
    // Lost for good: both its link in the tree and the one pqdm keeps.
    std::fs::remove_file(dir.path().join(&day6.path)).unwrap();
    std::fs::remove_file(kept_path(ds.base(), &day6.path)).unwrap();
    let out = run(&["verify", s(dir.path()), "--repair", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["repairs"]["missing_dropped"],
        serde_json::json!([day6.path]),
        "{v}"
    );
    assert_eq!(v["duplicate_keys"], 1, "{v}");
    assert_eq!(v["data_error"], serde_json::Value::Null, "{v}");
    assert_eq!(out.status.code(), Some(1), "{v}");
}

// 13. `adopt --kind` checks the kind's required and key columns.
#[test]
fn adopt_as_a_kind_requires_its_columns() {
    let dir = tmp();
    let base = dir.path().join("old");
    write_parquet(
        &base.join("symbol=BTCUSDT/year=2024/month=1/day=5/part-0.parquet"),
        kline_rows(JAN5, 10, 1.0),
        ParquetCompression::Snappy,
    );
    let before = snapshot(&base);
    let out = run(&["adopt", s(&base), "--kind", "klines"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("`exchange`") && err.contains("`timeframe`") && !err.contains("`symbol`"),
        "{err}"
    );
    assert_eq!(snapshot(&base), before);
}

// 14. A materialize that fails leaves nothing at its destination.
#[test]
fn failed_materialize_leaves_nothing_behind() {
    let dir = tmp();
    let src = dir.path().join("src");
    two_symbols(&src, Compression::Snappy);
    let to = dir.path().join("view");
    for extra in [
        &["--partition-by", "nope"][..],
        &["--columns", "close", "--partition-by", "year"][..],
    ] {
        let out = run(&[&["materialize", s(&src), "--to", s(&to)][..], extra].concat());
        assert_eq!(out.status.code(), Some(1), "{extra:?}");
        assert!(!to.exists(), "{extra:?} left {:?}", snapshot(&to));
    }
    std::fs::create_dir(&to).unwrap();
    let out = run(&[
        "materialize",
        s(&src),
        "--to",
        s(&to),
        "--partition-by",
        "nope",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(std::fs::read_dir(&to).unwrap().count(), 0);
}

// 15. Compaction refuses filters it cannot apply (on data columns).
#[test]
fn compact_refuses_filters_on_data_columns() {
    let dir = tmp();
    let ds = klines_dataset(dir.path());
    for start in [0, 10] {
        ds.write(
            candles(JAN5 + start * MINUTE, 10, 1.0).lazy(),
            &kline_opts("BTCUSDT"),
        )
        .unwrap();
    }
    let before = snapshot(dir.path());
    let out = run(&["compact", s(dir.path()), "--filter", "close > 1e9"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("`close`"), "{}", stderr(&out));
    assert_eq!(snapshot(dir.path()), before);
}

// 9. Thread settings of 0 are a clear error, never a panic.
#[test]
fn zero_threads_is_an_error_not_a_panic() {
    let dir = tmp();
    two_symbols(dir.path(), Compression::Snappy);
    for var in ["PQDM_THREADS", "ARROW_NUM_THREADS"] {
        let out = bin()
            .args(["scan", s(dir.path())])
            .env(var, "0")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{var}: {}", stderr(&out));
        assert!(stderr(&out).contains(var), "{}", stderr(&out));
    }
    let cfg = dir.path().join("_cfg.toml");
    std::fs::write(&cfg, "[scan]\nthreads = 0\n").unwrap();
    let out = run(&["scan", s(dir.path()), "--config", s(&cfg)]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("threads"), "{}", stderr(&out));
}

// 12. `migrate` resolves mode, compression and the kinds file like `ingest` does.
#[test]
fn migrate_resolves_settings_like_ingest() {
    let dir = tmp();
    let input = dir.path().join("in/part-0.parquet");
    write_parquet(&input, candles(JAN5, 10, 1.0), ParquetCompression::Snappy);
    let ds = dir.path().join("ds");
    let migrate = |env: &[(&str, &str)]| {
        let mut cmd = bin();
        cmd.args([
            "migrate",
            s(&input),
            "--dataset",
            s(&ds),
            "--kind",
            "klines",
            "--set",
            "exchange=BINANCE",
            "--set",
            "symbol=BTCUSDT",
            "--set",
            "timeframe=1m",
        ]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let first = migrate(&[("PQDM_COMPRESSION", "zstd")]);
    assert!(first.status.success(), "{}", stderr(&first));
    let info = json_ok(&run(&["info", s(&ds), "--json"]));
    assert_eq!(info["settings"]["compression"], "zstd", "{info}");
    let before = snapshot(&ds);
    let again = migrate(&[("PQDM_MODE", "error")]);
    assert_eq!(again.status.code(), Some(1), "{}", stderr(&again));
    assert_eq!(snapshot(&ds), before);

    // A relative kinds_file is found beside the config file, by migrate and adopt too.
    let cfg = dir.path().join("cfg");
    std::fs::create_dir(&cfg).unwrap();
    std::fs::write(cfg.join("pqdm.toml"), "kinds_file = \"kinds.toml\"\n").unwrap();
    std::fs::write(cfg.join("kinds.toml"), BARS_KIND).unwrap();
    let bars = dir.path().join("bars");
    let out = run(&[
        "migrate",
        s(&input),
        "--dataset",
        s(&bars),
        "--kind",
        "bars",
        "--set",
        "symbol=BTCUSDT",
        "--config",
        s(&cfg.join("pqdm.toml")),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let adopted = dir.path().join("adopted");
    write_parquet(
        &adopted.join("symbol=BTCUSDT/part-0.parquet"),
        kline_rows(JAN5, 10, 1.0)
            .select(["timestamp", "close"])
            .unwrap(),
        ParquetCompression::Snappy,
    );
    let out = run(&[
        "adopt",
        s(&adopted),
        "--kind",
        "bars",
        "--config",
        s(&cfg.join("pqdm.toml")),
        "--json",
    ]);
    assert_eq!(json_ok(&out)["kind"], "bars");
}

// 16. `migrate --skip-bad` also skips files with a missing column or an uncastable value.
#[test]
fn migrate_skip_bad_skips_missing_columns_and_bad_values() {
    let dir = tmp();
    let inputs = dir.path().join("in");
    write_parquet(
        &inputs.join("a-good.parquet"),
        candles(JAN5, 10, 1.0),
        ParquetCompression::Snappy,
    );
    write_parquet(
        &inputs.join("b-nocolumn.parquet"),
        candles(JAN5 + DAY, 10, 1.0).drop("close").unwrap(),
        ParquetCompression::Snappy,
    );
    let bad = candles(JAN5 + 2 * DAY, 10, 1.0)
        .lazy()
        .with_column(lit("abc").alias("open"))
        .collect()
        .unwrap();
    write_parquet(
        &inputs.join("c-badvalue.parquet"),
        bad,
        ParquetCompression::Snappy,
    );
    let ds = dir.path().join("ds");
    let out = run(&[
        "migrate",
        s(&inputs),
        "--dataset",
        s(&ds),
        "--kind",
        "klines",
        "--set",
        "exchange=BINANCE",
        "--set",
        "symbol=BTCUSDT",
        "--set",
        "timeframe=1m",
        "--skip-bad",
        "--json",
    ]);
    let v = json_ok(&out);
    assert_eq!(v["rows_written"], 10, "{v}");
    let skipped: Vec<String> = v["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(skipped.len(), 2, "{v}");
    assert!(
        skipped[0].ends_with("b-nocolumn.parquet") && skipped[1].ends_with("c-badvalue.parquet")
    );
    let error = |i: usize| v["skipped"][i]["error"].as_str().unwrap().to_string();
    assert!(
        error(0).contains("missing required column `close` for kind `klines`"),
        "{v}"
    );
    assert!(
        error(1).contains("column `open`, row 1") && error(1).contains("\"abc\""),
        "{v}"
    );
    // What was written is the good file, row for row.
    let stored = read_sorted(&Dataset::open(&ds).unwrap());
    assert_eq!(
        floats(&stored, "close"),
        (1..=10).map(f64::from).collect::<Vec<_>>()
    );
    assert_eq!(
        stored.column("timestamp").unwrap().i64().unwrap().get(0),
        Some(JAN5)
    );
    assert!(
        v["skipped"][1]["error"].as_str().unwrap().contains("abc"),
        "{v}"
    );
}

// 16. Empty settings are unset; a batch size of 0 is refused.
#[test]
fn empty_settings_are_unset_and_batch_size_zero_is_refused() {
    let dir = tmp();
    two_symbols(dir.path(), Compression::Snappy);
    let out = bin()
        .args(["scan", s(dir.path()), "--format", "csv"])
        .env("PQDM_CACHE_DIR", "")
        .env("PQDM_SCAN_BATCH_SIZE", "")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // The same rows as with the variables unset (20 candles and a header).
    let unset = run(&["scan", s(dir.path()), "--format", "csv"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 21);
    assert_eq!(out.stdout, unset.stdout);
    let out = run(&[
        "scan",
        s(dir.path()),
        "--format",
        "csv",
        "--batch-size",
        "0",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("batch"), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
}

// 16. Files within a tolerance of the target are left alone.
#[test]
fn compact_leaves_files_near_the_target() {
    let dir = tmp();
    let ds = Dataset::create(
        dir.path(),
        KindRegistry::default().get("klines").unwrap(),
        &CreateOptions {
            partition_by: Some(vec!["symbol".into(), "year".into()]),
            ..Default::default()
        },
    )
    .unwrap();
    for start in [0, 30_000] {
        ds.write(
            candles(JAN5 + start * MINUTE, 30_000, 1.0).lazy(),
            &kline_opts("BTCUSDT"),
        )
        .unwrap();
    }
    let out = run(&["compact", s(dir.path()), "--target-rows", "30001", "--json"]);
    let v = json_ok(&out);
    assert_eq!(v["version"], serde_json::Value::Null, "{v}");
}

// 16. An empty CSV result still has its header line.
#[test]
fn empty_csv_scan_writes_the_header() {
    let dir = tmp();
    two_symbols(dir.path(), Compression::Snappy);
    let all = run(&[
        "scan",
        s(dir.path()),
        "--format",
        "csv",
        "--columns",
        "timestamp,close",
    ]);
    assert!(all.status.success());
    let none = run(&[
        "scan",
        s(dir.path()),
        "--format",
        "csv",
        "--columns",
        "timestamp,close",
        "--filter",
        "symbol == NOPE",
    ]);
    assert!(none.status.success(), "{}", stderr(&none));
    assert_eq!(String::from_utf8_lossy(&none.stdout), "timestamp,close\n");
    assert!(String::from_utf8_lossy(&all.stdout).starts_with("timestamp,close\n"));
}

/// Finding 8, for datasets adopted before adopt read the files' codec: their settings say
/// `unknown`, and writes must still work (with the default compression).
#[test]
fn a_dataset_recorded_with_unknown_compression_stays_writable() {
    let dir = tmp();
    let ds = klines_dataset(dir.path());
    ds.write(
        candles(1_704_412_800_000, 10, 1.0).lazy(),
        &kline_opts("BTCUSDT"),
    )
    .unwrap();
    write_version_files(dir.path());
    let mut history = vec![];
    pqdm::manifest::walk(&dir.path().join("_pqdm/versions"), &mut |p| {
        history.push(p.to_path_buf())
    })
    .unwrap();
    history.sort();
    let newest = history.pop().unwrap();
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&newest).unwrap()).unwrap();
    m["settings"]["compression"] = "unknown".into();
    std::fs::write(&newest, serde_json::to_vec(&m).unwrap()).unwrap();
    let ds = Dataset::open(dir.path()).unwrap();
    let report = ds
        .write(
            candles(1_704_412_800_000, 20, 2.0).lazy(),
            &kline_opts("BTCUSDT"),
        )
        .unwrap();
    assert_eq!((report.rows_written, report.rows_replaced), (20, 10));
    let out = run(&["compact", dir.path().to_str().unwrap(), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Finding 16: a verify running while another process upserts reads one version (through the
/// kept links) and reports no spurious missing files or orphans. The verify is held after
/// loading its version (a failpoint) while the upsert commits, and its report is on the older
/// version: the race happened.
#[test]
fn a_verify_racing_an_upsert_reports_nothing_spurious() {
    let dir = tmp();
    let ds = klines_dataset(dir.path());
    ds.write(
        candles(1_704_412_800_000, 100, 1.0).lazy(),
        &kline_opts("BTCUSDT"),
    )
    .unwrap();
    let before = ds.header().version;
    let verify = bin()
        .args(["verify", dir.path().to_str().unwrap(), "--json"])
        .env("PQDM_FAILPOINTS", "verify.loaded=sleep:1500")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let r = ds
        .write(
            candles(1_704_412_800_000, 100, 2.0).lazy(),
            &kline_opts("BTCUSDT"),
        )
        .unwrap();
    assert_eq!(r.files_replaced, 1);
    let out = verify.wait_with_output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["version"], before,
        "the upsert landed before verify loaded"
    );
    assert_eq!(report["missing"], serde_json::json!([]));
    assert_eq!(report["orphans"], serde_json::json!([]));
    assert_eq!(report["checksum_mismatches"], serde_json::json!([]));
}

/// A data file deleted from the tree by hand (its kept link remains): verify reports it, and
/// repair gives it back instead of dropping its rows.
#[test]
fn repair_restores_a_file_deleted_from_the_tree_from_its_kept_link() {
    let dir = tmp();
    let ds = klines_dataset(dir.path());
    ds.write(
        candles(1_704_412_800_000, 100, 1.0).lazy(),
        &kline_opts("BTCUSDT"),
    )
    .unwrap();
    let rel = ds.manifest().unwrap().files[0].path.clone();
    std::fs::remove_file(dir.path().join(&rel)).unwrap();
    let r = ds.verify(false, &Progress::hidden()).unwrap();
    assert_eq!(r.missing, vec![rel.clone()]);
    let r = ds.verify(true, &Progress::hidden()).unwrap();
    let repairs = r.repairs.clone().unwrap();
    assert_eq!(repairs.links_restored, vec![rel.clone()]);
    assert_eq!(repairs.missing_dropped, Vec::<String>::new());
    assert_eq!(repairs.rows_lost, 0);
    assert!(dir.path().join(&rel).is_file());
    assert_eq!(
        read_sorted(&Dataset::open(dir.path()).unwrap()).height(),
        100
    );
    assert_eq!(r.problems(), 0, "{r:?}");
}

// 7. A folder without a manifest whose timestamp is a Parquet date-time (any unit, with or
// without a time zone) is filtered in milliseconds, as pqdm's own timestamps are, and its files
// are pruned and its latest timestamp read in milliseconds too.
#[test]
fn scans_before_adopt_filter_date_time_timestamps_in_every_unit() {
    let dir = tmp();
    let hour = 3_600_000i64;
    for unit in [
        TimeUnit::Milliseconds,
        TimeUnit::Microseconds,
        TimeUnit::Nanoseconds,
    ] {
        for tz in [None, Some(TimeZone::UTC)] {
            let base = dir.path().join(format!("{unit}-{}", tz.is_some()));
            let per_ms = match unit {
                TimeUnit::Milliseconds => 1i64,
                TimeUnit::Microseconds => 1_000,
                TimeUnit::Nanoseconds => 1_000_000,
            };
            // Two files: the morning (closes 0..=2) and the afternoon (closes 3..=5) of Jan 5.
            for (half, hours) in [("am", [0i64, 4, 8]), ("pm", [12, 16, 20])] {
                let ts: Vec<i64> = hours.iter().map(|h| (JAN5 + h * hour) * per_ms).collect();
                let df = df!("timestamp" => ts, "close" => hours.map(|h| (h / 4) as f64))
                    .unwrap()
                    .lazy()
                    .with_column(col("timestamp").cast(DataType::Datetime(unit, tz.clone())))
                    .collect()
                    .unwrap();
                write_parquet(
                    &base.join(format!("symbol=BTCUSDT/{half}.parquet")),
                    df,
                    ParquetCompression::Snappy,
                );
            }
            let closes = |filter: &str| {
                let out = run(&[
                    "scan",
                    s(&base),
                    "--filter",
                    filter,
                    "--columns",
                    "close",
                    "--format",
                    "csv",
                ]);
                assert!(out.status.success(), "{unit} {filter}: {}", stderr(&out));
                String::from_utf8(out.stdout).unwrap().replace('\n', " ")
            };
            let what = format!("{unit} tz {tz:?}");
            for (filter, want) in [
                ("timestamp >= 2024-01-05T12:00:00", "close 3.0 4.0 5.0 "),
                ("timestamp < 2024-01-05T04:00:00", "close 0.0 "),
                ("timestamp <= 2024-01-05T04:00:00", "close 0.0 1.0 "),
                ("timestamp > 2024-01-05T16:00:00Z", "close 5.0 "),
                ("timestamp == 2024-01-05T08:00:00", "close 2.0 "),
                (
                    "timestamp != 2024-01-05T08:00:00",
                    "close 0.0 1.0 3.0 4.0 5.0 ",
                ),
                (
                    "timestamp between [2024-01-05T04:00:00, 2024-01-05T12:00:00]",
                    "close 1.0 2.0 3.0 ",
                ),
                (
                    "timestamp in [2024-01-05T00:00:00, 2024-01-05T20:00:00]",
                    "close 0.0 5.0 ",
                ),
                ("timestamp < 2024-01-05", "close "),
            ] {
                assert_eq!(closes(filter), want, "{what}: {filter}");
            }
            let latest = json_ok(&run(&["latest", s(&base), "--json"]));
            assert_eq!(
                latest["latest_timestamp"],
                JAN5 + 20 * hour,
                "{what}: {latest}"
            );
            let latest = json_ok(&run(&[
                "latest",
                s(&base),
                "--filter",
                "timestamp < 2024-01-05T10:00:00",
                "--json",
            ]));
            assert_eq!(
                latest["latest_timestamp"],
                JAN5 + 8 * hour,
                "{what}: {latest}"
            );
        }
    }
}

// 6. The cache of a folder without a manifest is keyed by its listing, modification stamps
// included: a rewrite of the same size (even with its modification time set back) misses, and
// gc removes the entries such a change left stale; the partition dtypes a scan used key it too.
#[test]
fn cache_of_a_folder_without_manifest_follows_its_files() {
    let dir = tmp();
    let base = dir.path().join("plain");
    let cache = dir.path().join("cache");
    let file = base.join("bucket=7/part-0.parquet");
    let write = |closes: [f64; 3]| {
        let df = df!("timestamp" => [JAN5, JAN5 + MINUTE, JAN5 + 2 * MINUTE], "close" => closes)
            .unwrap();
        write_parquet(&file, df, ParquetCompression::Uncompressed);
        std::fs::metadata(&file).unwrap()
    };
    let scan = |extra: &[&str]| {
        let out = dir.path().join("out.csv");
        let mut args = vec![
            "scan",
            s(&base),
            "--columns",
            "close,bucket",
            "--format",
            "csv",
            "--cache",
            s(&cache),
            "--output",
            s(&out),
            "--json",
        ];
        args.extend(extra);
        let report = json_ok(&run(&args));
        let rows = std::fs::read_to_string(&out).unwrap().replace('\n', " ");
        (report["cache"].as_str().unwrap().to_string(), rows)
    };
    let gc = || json_ok(&run(&["cache", "gc", "--cache", s(&cache), "--json"]))["removed"].clone();
    let before = write([1.0, 2.0, 3.0]);
    let first = (
        "miss".to_string(),
        "close,bucket 1.0,7 2.0,7 3.0,7 ".to_string(),
    );
    assert_eq!(scan(&[]), first);
    assert_eq!(scan(&[]), ("hit".into(), first.1.clone()));
    assert_eq!(gc(), serde_json::json!([]), "nothing changed");
    // The partition dtypes are part of the key.
    assert_eq!(
        scan(&["--hive-schema", "bucket=str"]),
        ("miss".into(), first.1.clone())
    );
    assert_eq!(scan(&["--hive-schema", "bucket=str"]).0, "hit");

    // The same file rewritten, same size, other values: both entries are stale.
    let after = write([4.0, 5.0, 6.0]);
    assert_eq!(after.len(), before.len(), "the rewrite keeps the size");
    assert_eq!(gc().as_array().unwrap().len(), 2);
    let second = "close,bucket 4.0,7 5.0,7 6.0,7 ".to_string();
    assert_eq!(scan(&[]), ("miss".into(), second.clone()));
    assert_eq!(scan(&[]), ("hit".into(), second.clone()));

    // Rewritten again with its modification time set back: still a miss.
    let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();
    write([7.0, 8.0, 9.0]);
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    assert_eq!(std::fs::metadata(&file).unwrap().modified().unwrap(), mtime);
    assert_eq!(
        scan(&[]),
        ("miss".into(), "close,bucket 7.0,7 8.0,7 9.0,7 ".into())
    );

    // A file added: a miss with its rows.
    write_parquet(
        &base.join("bucket=8/part-0.parquet"),
        df!("timestamp" => [JAN5], "close" => [10.0]).unwrap(),
        ParquetCompression::Uncompressed,
    );
    assert_eq!(
        scan(&[]),
        (
            "miss".into(),
            "close,bucket 7.0,7 8.0,7 9.0,7 10.0,8 ".into()
        )
    );
    // The dataset's folder removed: its entries can never hit again.
    std::fs::remove_dir_all(&base).unwrap();
    assert_eq!(gc().as_array().unwrap().len(), 3);
    assert_eq!(
        json_ok(&run(&["cache", "ls", "--cache", s(&cache), "--json"]))["entries"],
        serde_json::json!([])
    );
}

/// Every `.staged` file under `dir`'s staging folder.
fn staged_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    let mut todo = vec![dir.join("_pqdm/staging")];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else if p.to_string_lossy().ends_with(".staged") {
                out.push(p);
            }
        }
    }
    out
}

// Issue 17, item 4: compaction streams, and proves what it wrote holds the rows it read (an
// order-independent digest of both) before it commits. A rewritten file changed between the
// write and the check (one close moved by 0.5, the row count unchanged) is caught: nothing is
// committed and the dataset is byte-for-byte as it was.
#[test]
fn compaction_refuses_files_whose_rows_differ_from_what_it_read() {
    let dir = tmp();
    let ds = klines_by(dir.path(), &["symbol", "year"]);
    // Written out of time order: compaction sorts.
    for start in [200, 0, 100] {
        ds.write(
            candles(JAN5 + start * MINUTE, 100, 1.0).lazy(),
            &kline_opts("BTCUSDT"),
        )
        .unwrap();
    }
    let before = snapshot(dir.path());
    let child = bin()
        .args(["compact", s(dir.path()), "--json"])
        .env("PQDM_FAILPOINTS", "compact.written=sleep:3000")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let staged = loop {
        if let Some(p) = staged_files(dir.path()).pop() {
            break p;
        }
        assert!(started.elapsed().as_secs() < 60, "no file was staged");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut df = ParquetReader::new(std::fs::File::open(&staged).unwrap())
        .finish()
        .unwrap();
    assert_eq!(df.height(), 300);
    let close: Vec<f64> = f64s(&df, "close")
        .into_iter()
        .enumerate()
        .map(|(i, v)| if i == 7 { v + 0.5 } else { v })
        .collect();
    df.with_column(Column::new("close".into(), close)).unwrap();
    ParquetWriter::new(std::fs::File::create(&staged).unwrap())
        .finish(&mut df)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("do not hold the same rows (300 read, 300 written, digests differ: true)"),
        "{err}"
    );
    assert_eq!(snapshot(dir.path()), before);
    // Untouched, the same compaction commits the 300 rows in one file.
    let v = json_ok(&run(&["compact", s(dir.path()), "--json"]));
    assert_eq!(
        (&v["rows"], &v["files_before"], &v["files_after"]),
        (&300.into(), &3.into(), &1.into())
    );
    let stored = only_file(&Dataset::open(dir.path()).unwrap());
    let want: Vec<i64> = (0..300).map(|i| JAN5 + i * MINUTE).collect();
    assert_eq!(i64s(&stored, "timestamp"), want);
}

// Compaction of files whose time ranges interleave (even minutes in one file, odd in the
// other): written once unsorted, found out of order when read back, written again sorted.
#[test]
fn compaction_sorts_files_whose_time_ranges_interleave() {
    let dir = tmp();
    let ds = klines_by(dir.path(), &["symbol"]);
    let all = candles(JAN5, 100, 1.0);
    for parity in [0i64, 1] {
        let half = all
            .clone()
            .lazy()
            .filter(((col("open_time") - lit(JAN5)) / lit(MINUTE) % lit(2i64)).eq(lit(parity)));
        ds.write(half, &kline_opts("BTCUSDT")).unwrap();
    }
    assert_eq!(ds.manifest().unwrap().files.len(), 2);
    let v = json_ok(&run(&["compact", s(dir.path()), "--json"]));
    assert_eq!(
        (&v["rows"], &v["files_after"]),
        (&100.into(), &1.into()),
        "{v}"
    );
    let stored = only_file(&Dataset::open(dir.path()).unwrap());
    let minutes = 0..100;
    assert_eq!(
        i64s(&stored, "timestamp"),
        minutes
            .clone()
            .map(|i| JAN5 + i * MINUTE)
            .collect::<Vec<_>>()
    );
    assert_eq!(
        f64s(&stored, "close"),
        minutes.map(|i| 1.0 + i as f64).collect::<Vec<_>>()
    );
}

/// One compaction, three partitions in its pipeline (each read back while the next is
/// written): files appended day after day (in order: written once), files whose time ranges
/// interleave (sorted at once), and files whose ranges are apart but whose rows are not in
/// time order inside them (found out by the read-back, written again sorted). Every partition
/// ends in one file in time order holding exactly its rows.
#[test]
fn compaction_orders_each_partition_whichever_way_its_files_are_out_of_order() {
    let dir = tmp();
    let ds = klines_by(dir.path(), &["symbol"]);
    let append = |rows: DataFrame, symbol: &str| {
        let opts = WriteOptions {
            mode: Some(WriteMode::Append),
            ..kline_opts(symbol)
        };
        ds.write(rows.lazy(), &opts).unwrap();
    };
    let all = candles(JAN5, 60, 1.0);
    // In order: two days one after the other.
    append(all.slice(0, 30), "AAA");
    append(all.slice(30, 30), "AAA");
    // Interleaved: even minutes, then odd ones.
    for parity in [0i64, 1] {
        let half = all
            .clone()
            .lazy()
            .filter(((col("open_time") - lit(JAN5)) / lit(MINUTE) % lit(2i64)).eq(lit(parity)))
            .collect()
            .unwrap();
        append(half, "BBB");
    }
    // Apart, each backwards.
    append(all.slice(0, 30).reverse(), "CCC");
    append(all.slice(30, 30).reverse(), "CCC");
    let backwards = ds
        .file_paths(&ds.manifest().unwrap())
        .into_iter()
        .find(|p| p.to_string_lossy().contains("symbol=CCC"))
        .unwrap();
    let stored = ParquetReader::new(std::fs::File::open(backwards).unwrap())
        .finish()
        .unwrap();
    assert!(
        i64s(&stored, "timestamp").windows(2).all(|w| w[0] > w[1]),
        "the write kept the rows backwards, so only the read-back can find them out of order"
    );
    let report = ds
        .compact(&CompactOptions::default(), &Progress::hidden())
        .unwrap();
    assert_eq!(
        (
            report.partitions,
            report.files_before,
            report.files_after,
            report.rows
        ),
        (3, 6, 3, 180)
    );
    let ds = Dataset::open(dir.path()).unwrap();
    let files = ds.file_paths(&ds.manifest().unwrap());
    assert_eq!(files.len(), 3, "{files:?}");
    for file in files {
        let stored = ParquetReader::new(std::fs::File::open(&file).unwrap())
            .finish()
            .unwrap();
        let minutes = 0..60;
        assert_eq!(
            i64s(&stored, "timestamp"),
            minutes
                .clone()
                .map(|i| JAN5 + i * MINUTE)
                .collect::<Vec<_>>(),
            "{}",
            file.display()
        );
        assert_eq!(
            f64s(&stored, "close"),
            minutes.map(|i| 1.0 + i as f64).collect::<Vec<_>>(),
            "{}",
            file.display()
        );
    }
}

/// Found by a red team: a file damaged since it was written (one value changed, which Parquet
/// decodes without a word) was compacted, its damage carried into the new file under a new,
/// matching checksum, and `verify` found nothing afterwards. Compaction checks the checksums
/// of the files it replaces and refuses, naming the file; nothing changes.
#[test]
fn compaction_refuses_a_file_damaged_since_it_was_written() {
    let dir = tmp();
    let ds = Dataset::create(
        dir.path(),
        KindRegistry::default().get("klines").unwrap(),
        &CreateOptions {
            partition_by: Some(vec!["symbol".into()]),
            compression: Compression::None,
            ..Default::default()
        },
    )
    .unwrap();
    let append = WriteOptions {
        mode: Some(WriteMode::Append),
        ..kline_opts("BTCUSDT")
    };
    ds.write(candles(JAN5, 30, 1.0).lazy(), &append).unwrap();
    ds.write(candles(JAN5 + 30 * MINUTE, 30, 31.0).lazy(), &append)
        .unwrap();
    let m = ds.manifest().unwrap();
    let second = m
        .files
        .iter()
        .find(|f| f.min_timestamp == Some(JAN5 + 30 * MINUTE))
        .unwrap();
    let path = ds.file_paths(&m)[m.files.iter().position(|f| f == second).unwrap()].clone();
    // The close of the second file's fifth candle, 35.0, becomes 35.5 (one inode: the tree's
    // name and pqdm's kept copy alike, as a failing disk would).
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes
        .windows(8)
        .position(|w| w == 35.0f64.to_le_bytes())
        .expect("the value in the uncompressed file");
    bytes[at..at + 8].copy_from_slice(&35.5f64.to_le_bytes());
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .write_all_at(&bytes, 0)
        .unwrap();
    let before = parquet_files(dir.path());
    let err = ds
        .compact(&CompactOptions::default(), &Progress::hidden())
        .expect_err("a damaged file")
        .to_string();
    assert!(err.contains(&second.path), "{err}");
    assert!(err.contains("checksum"), "{err}");
    let ds = Dataset::open(dir.path()).unwrap();
    assert_eq!(ds.header().version, m.version);
    assert_eq!(parquet_files(dir.path()), before);
    let out = run(&["compact", s(dir.path())]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains(&second.path), "{}", stderr(&out));
}

/// Found by a red team: a dataset without a time column (adopted from another tool) could not
/// be compacted at all: the read-back looked for the order of a column named "". Its rows are
/// digested and kept in the order read, with no order to check.
#[test]
fn a_dataset_without_a_time_column_compacts() {
    let dir = tmp();
    let base = dir.path().join("plain");
    let v = adopt_and_compact(&base, &["g=a"]);
    assert_eq!(
        (&v["files_before"], &v["files_after"], &v["rows"]),
        (&3.into(), &1.into(), &6.into()),
        "{v}"
    );
    let ds = Dataset::open(&base).unwrap();
    let mut xs = i64s(&ds.read(&Default::default()).unwrap(), "x");
    xs.sort();
    assert_eq!(xs, [0, 1, 10, 11, 20, 21]);
}

/// Three files of another tool (`x` i64, `y` text, no time column) in each of `folders` under
/// `base`, adopted, then compacted at a target of 100 rows; the compaction's report.
fn adopt_and_compact(base: &Path, folders: &[&str]) -> serde_json::Value {
    for folder in folders {
        for i in 0..3i64 {
            write_parquet(
                &base.join(format!("{folder}/part-{i}.parquet")),
                df!("x" => [i * 10, i * 10 + 1], "y" => [format!("r{i}"), "s".to_string()])
                    .unwrap(),
                ParquetCompression::Snappy,
            );
        }
    }
    json_ok(&run(&["adopt", s(base), "--json"]));
    json_ok(&run(&[
        "compact",
        s(base),
        "--target-rows",
        "100",
        "--json",
    ]))
}

/// Found by a red team: three files of 300 rows with a target of 400 were rewritten into 400,
/// 400 and 100: as many files, all the work. A partition is rewritten only when that leaves
/// fewer files.
#[test]
fn compaction_leaves_partitions_it_cannot_make_fewer_files_of() {
    let dir = tmp();
    let ds = klines_by(dir.path(), &["symbol"]);
    for day in 0..3 {
        let opts = WriteOptions {
            mode: Some(WriteMode::Append),
            ..kline_opts("BTCUSDT")
        };
        ds.write(candles(JAN5 + day * 300 * MINUTE, 300, 1.0).lazy(), &opts)
            .unwrap();
    }
    let version = ds.header().version;
    let v = json_ok(&run(&[
        "compact",
        s(dir.path()),
        "--target-rows",
        "400",
        "--json",
    ]));
    assert_eq!(v["version"], serde_json::Value::Null, "{v}");
    assert_eq!(Dataset::open(dir.path()).unwrap().header().version, version);
    // A target that makes two files of three does rewrite them.
    let v = json_ok(&run(&[
        "compact",
        s(dir.path()),
        "--target-rows",
        "450",
        "--json",
    ]));
    assert_eq!(
        (&v["files_before"], &v["files_after"]),
        (&3.into(), &2.into()),
        "{v}"
    );
}

/// Found by a red team: an adopted folder whose name holds `%%` (the separator of files staged
/// flat) had its compacted files read back as staged for another folder; its compaction found
/// none and failed, and every other partition's with it. Such a folder is staged in folders.
#[test]
fn a_folder_named_with_the_staging_separator_compacts() {
    let dir = tmp();
    let base = dir.path().join("odd");
    let v = adopt_and_compact(&base, &["g=a%%b", "g=ok"]);
    assert_eq!(
        (
            &v["partitions"],
            &v["files_before"],
            &v["files_after"],
            &v["rows"]
        ),
        (&2.into(), &6.into(), &2.into(), &12.into()),
        "{v}"
    );
    let files = parquet_files(&base);
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files.iter().any(|f| f.starts_with("g=a%%b/")), "{files:?}");
    let ds = Dataset::open(&base).unwrap();
    let mut xs = i64s(&ds.read(&Default::default()).unwrap(), "x");
    xs.sort();
    assert_eq!(xs, [0, 0, 1, 1, 10, 10, 11, 11, 20, 20, 21, 21]);
}
