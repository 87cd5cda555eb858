//! Issue 14, values and paths: regression tests for findings 3, 4, 6, 11-17 and the archive
//! inflate limit. Each failed before its fix (see the comment on each test).

use std::path::{Path, PathBuf};
use std::process::Output;

use polars::prelude::*;
use pqdm::cache::{Cache, Status, cached_projection};
use pqdm::{Dataset, ScanOptions, WriteMode, WriteOptions};

use crate::common::*;

const JAN5: i64 = 1_704_412_800_000;

/// Asserts that a command failed cleanly (exit 1, no panic) with `needle` in its error.
fn fails_with(out: &Output, needle: &str) -> String {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(needle), "expected `{needle}` in: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// One candle of `symbol` at `ts` as a frame with its own `symbol` column.
fn candles_with_symbols(symbols: &[Option<&str>]) -> DataFrame {
    let n = symbols.len();
    let ts: Vec<i64> = (0..n as i64).map(|i| JAN5 + i * 60_000).collect();
    df!(
        "open_time" => ts,
        "open" => vec![1.0f64; n], "high" => vec![1.0f64; n], "low" => vec![1.0f64; n],
        "close" => (0..n).map(|i| i as f64).collect::<Vec<_>>(), "volume" => vec![1.0f64; n],
        "symbol" => symbols.to_vec(),
    )
    .unwrap()
}

fn exchange_and_timeframe() -> WriteOptions {
    WriteOptions {
        constants: consts(&[("exchange", "BINANCE"), ("timeframe", "1m")]),
        ..Default::default()
    }
}

/// Finding 3. Before: the null and the empty symbol both went to `symbol=__HIVE_DEFAULT_PARTITION__`
/// under the same staged name, one overwrote the other, and the write reported 1 row of 2.
#[test]
fn empty_and_marker_partition_values_are_refused_and_nulls_stored_as_nulls() {
    let dir = tmp();
    let ds = klines_dataset(&dir.path().join("k"));
    let before = snapshot(dir.path());
    let frame = candles_with_symbols(&[Some("BTCUSDT"), None, Some("")]);
    let err = ds
        .write(frame.lazy(), &exchange_and_timeframe())
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "frame: row 3: partition column `symbol` holds \"\", which every hive reader reads back \
         as null; nothing was written (give the row a value, or leave it null: nulls are stored \
         as nulls)"
    );
    assert_eq!(snapshot(dir.path()), before);

    // A null is stored in the null partition and read back as null, beside the other rows.
    let frame = candles_with_symbols(&[Some("BTCUSDT"), None]);
    let report = ds.write(frame.lazy(), &exchange_and_timeframe()).unwrap();
    assert_eq!(report.rows_written, 2);
    let back = ds
        .scan(&ScanOptions::default().columns(&["symbol", "close"]))
        .unwrap()
        .sort(["close"], Default::default())
        .collect()
        .unwrap();
    let symbols: Vec<Option<&str>> = back
        .column("symbol")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(symbols, vec![Some("BTCUSDT"), None]);

    // The CLI names the file and row of Hive's null marker written out as a value.
    let csv = dir.path().join("marker.csv");
    std::fs::write(
        &csv,
        "open_time,open,high,low,close,volume,symbol\n\
         1704412800000,1,1,1,1,1,ETHUSDT\n\
         1704412860000,1,1,1,1,1,__HIVE_DEFAULT_PARTITION__\n",
    )
    .unwrap();
    let base = dir.path().join("k");
    let before = snapshot(dir.path());
    let out = run(&[
        "ingest",
        csv.to_str().unwrap(),
        "--dataset",
        base.to_str().unwrap(),
        "--exchange",
        "BINANCE",
        "--timeframe",
        "1m",
        "--quiet",
    ]);
    fails_with(
        &out,
        "marker.csv: row 2: partition column `symbol` holds \"__HIVE_DEFAULT_PARTITION__\"",
    );
    assert_eq!(snapshot(dir.path()), before);
}

/// Finding 4. Before: slices were staged as `c0`, `c1`, ... `c11`, read back in text order
/// (`c10` before `c2`), so the repeat in slice 9 won over the later ones in slices 10 and 11.
#[test]
fn the_last_occurrence_of_a_key_wins_across_twelve_slices() {
    let dir = tmp();
    let ds = klines_dataset(&dir.path().join("k"));
    // 120,000 rows over 1,000 keys of one day: slices hold 10,000 rows at the least, so 12.
    let n = 120_000i64;
    let ts: Vec<i64> = (0..n).map(|i| JAN5 + (i % 1000) * 60_000).collect();
    let close: Vec<f64> = (0..n).map(|i| i as f64).collect();
    let frame = df!(
        "open_time" => ts, "open" => close.clone(), "high" => close.clone(),
        "low" => close.clone(), "close" => close, "volume" => vec![1.0f64; n as usize],
    )
    .unwrap();
    let opts = WriteOptions {
        memory_limit: pqdm::MemoryLimit::Bytes(1 << 20),
        ..kline_opts("BTCUSDT")
    };
    let report = ds.write(frame.lazy(), &opts).unwrap();
    assert_eq!(report.rows_written, 1000);
    let back = read_sorted(&ds);
    let got: Vec<f64> = back
        .column("close")
        .unwrap()
        .f64()
        .unwrap()
        .into_no_null_iter()
        .collect();
    let want: Vec<f64> = (0..1000).map(|j| (119_000 + j) as f64).collect();
    assert_eq!(got, want);
}

/// A frame that yields `rows` in another order each time it runs (as a group-by, a join or a
/// caller's own source may): run `k` starts at row `k * 7,919`. `runs` counts the runs.
fn shifting_frame(rows: &DataFrame, runs: &Arc<std::sync::atomic::AtomicUsize>) -> LazyFrame {
    let runs = runs.clone();
    rows.clone().lazy().map(
        move |df| {
            let run = runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let n = df.height();
            let shift = run * 7_919 % n.max(1);
            df.slice(shift as i64, n - shift)
                .vstack(&df.slice(0, shift))
        },
        AllowedOptimizations::default(),
        None,
        Some("shifting"),
    )
}

/// Before: a write under a memory budget ran its input once to count the rows and once per
/// slice of rows, so a frame whose order changed between runs staged some candles in two
/// slices and others in none (an append stored duplicates, an upsert lost candles). Now a
/// frame without a row count runs once and its batches are gathered into slices.
#[test]
fn a_frame_whose_order_changes_each_run_is_staged_once_under_a_memory_budget() {
    let dir = tmp();
    let n = 30_000i64;
    let ts: Vec<i64> = (0..n).map(|i| JAN5 + i * 60_000).collect();
    let close: Vec<f64> = (0..n).map(|i| i as f64).collect();
    let rows = df!(
        "open_time" => ts, "open" => close.clone(), "high" => close.clone(),
        "low" => close.clone(), "close" => close, "volume" => vec![1.0f64; n as usize],
    )
    .unwrap();
    for mode in [WriteMode::Append, WriteMode::Upsert] {
        let ds = klines_dataset(&dir.path().join(mode.to_string()));
        let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let frame = shifting_frame(&rows, &runs);
        // 1 MiB: slices of 10,000 rows, three of them.
        let opts = WriteOptions {
            mode: Some(mode),
            memory_limit: pqdm::MemoryLimit::Bytes(1 << 20),
            ..kline_opts("BTCUSDT")
        };
        let report = ds.write(frame, &opts).unwrap();
        assert_eq!(report.rows_written, n as u64, "{mode}");
        let back = read_sorted(&ds);
        assert_eq!(back.height(), n as usize, "{mode}");
        let got: Vec<f64> = back
            .column("close")
            .unwrap()
            .f64()
            .unwrap()
            .into_no_null_iter()
            .collect();
        let want: Vec<f64> = (0..n).map(|i| i as f64).collect();
        assert!(
            got == want,
            "{mode}: the stored closes are not each candle once"
        );
        if mode == WriteMode::Append {
            // Nothing else needed the rows again: no repeats to look for, no nulls to explain.
            assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 1);
        }
    }
}

/// Finding 6. Before: `cache clear` and `cache gc` removed `<dir>/<key>.json` and `.parquet` for
/// whatever key an entry file named, here two files outside the cache folder.
#[test]
fn a_crafted_cache_entry_cannot_delete_outside_the_cache_folder() {
    let dir = tmp();
    let cache = dir.path().join("cache");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    for f in ["victim.json", "victim.parquet"] {
        std::fs::write(outside.join(f), "keep me").unwrap();
    }
    let name = blake3::hash(b"crafted").to_hex().to_string();
    let entry = serde_json::json!({
        "key": "../outside/victim", "dataset": "/nowhere", "version": 1, "columns": null,
        "filters": [], "transform": null, "rows": 1, "bytes": 1, "created": 0, "last_used": 0,
    });
    std::fs::write(cache.join(format!("{name}.json")), entry.to_string()).unwrap();
    std::fs::write(cache.join(format!("{name}.parquet")), "x").unwrap();
    let before = snapshot(dir.path());
    for action in ["clear", "gc", "ls"] {
        let out = run(&["cache", action, "--cache", cache.to_str().unwrap()]);
        fails_with(
            &out,
            &format!(
                "{name}.json: cache entry names the key \"../outside/victim\", not its own file name"
            ),
        );
        assert_eq!(snapshot(dir.path()), before, "{action} touched something");
    }
}

/// Finding 11. Before: object keys went through `object_store`'s `Path::from`, which escaped
/// pqdm's escapes again (`symbol=BTC%252FUSDT`), while Polars read the literal key: every scan
/// of such a dataset failed.
#[test]
fn partition_values_round_trip_on_s3_as_on_a_folder() {
    s3_endpoint();
    let bucket = s3_bucket();
    let dir = tmp();
    // Upper case: pqdm stores symbols upper-cased (input fidelity).
    let symbols = ["BTC/USDT", "A%B", "X~Y", "[1]", "SP ACE", "É*?"];
    let mut answers = vec![];
    for base in [
        format!("s3://{bucket}/klines"),
        dir.path().join("klines").display().to_string(),
    ] {
        let ds = klines_dataset(Path::new(&base));
        for (i, s) in symbols.iter().enumerate() {
            ds.write(candles(JAN5, 2, i as f64 * 10.0).lazy(), &kline_opts(s))
                .unwrap();
        }
        let df = ds
            .scan(&ScanOptions::default().columns(&["symbol", "close"]))
            .unwrap()
            .sort(["close", "symbol"], Default::default())
            .collect()
            .unwrap();
        let got: Vec<String> = df
            .column("symbol")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .map(|s| s.unwrap().to_string())
            .collect();
        answers.push(got);
    }
    let want: Vec<String> = symbols
        .iter()
        .flat_map(|s| [s.to_string(), s.to_string()])
        .collect();
    assert_eq!(answers[0], want, "S3");
    assert_eq!(answers[1], want, "folder");
    // Escaped once, as on a disk.
    let remote = pqdm::storage::Remote::open(Path::new(&format!("s3://{bucket}/klines"))).unwrap();
    let keys: Vec<String> = remote
        .list("")
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let mut folders: Vec<&str> = keys
        .iter()
        .filter_map(|k| k.strip_prefix("exchange=BINANCE/")?.split('/').next())
        .collect();
    folders.dedup();
    assert_eq!(
        folders,
        [
            "symbol=%5B1%5D",
            "symbol=%C3%89%2A%3F",
            "symbol=A%25B",
            "symbol=BTC%2FUSDT",
            "symbol=SP%20ACE",
            "symbol=X~Y"
        ]
    );
    // pyarrow reads the same values from the bucket.
    let read = py(
        r#"
import sys, json, pyarrow.dataset as ds, pyarrow.fs as fs
s3 = fs.S3FileSystem(endpoint_override=sys.argv[1], scheme="http", access_key="testing",
                     secret_key="testing", region="us-east-1")
t = ds.dataset(sys.argv[2], filesystem=s3, format="parquet", partitioning="hive").to_table()
print(json.dumps(sorted(set(t["symbol"].to_pylist())), ensure_ascii=False, separators=(",", ":")))
"#,
        &[s3_endpoint(), &format!("{bucket}/klines")],
    );
    let mut sorted: Vec<&str> = symbols.to_vec();
    sorted.sort();
    assert_eq!(read.trim(), serde_json::to_string(&sorted).unwrap());
}

/// Finding 12. Before: Polars read `env=prod` of the dataset's own path as a partition column
/// the manifest's hive schema does not name, and every scan failed.
#[test]
fn a_dataset_below_a_folder_named_like_a_partition_is_scanned() {
    let dir = tmp();
    let base = dir.path().join("env=prod").join("klines");
    let ds = klines_dataset(&base);
    ds.write(candles(JAN5, 3, 10.0).lazy(), &kline_opts("BTCUSDT"))
        .unwrap();
    let df = read_sorted(&ds);
    assert_eq!(df.height(), 3);
    assert!(df.column("env").is_err(), "{:?}", df.get_column_names());
    assert_eq!(
        df.column("symbol").unwrap().str().unwrap().get(0),
        Some("BTCUSDT")
    );
    let out = run(&[
        "scan",
        base.to_str().unwrap(),
        "--columns",
        "symbol,close",
        "--format",
        "csv",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "symbol,close\nBTCUSDT,10.0\nBTCUSDT,11.0\nBTCUSDT,12.0\n"
    );
    // A folder named like one of the dataset's own columns cannot be told apart: a clear error.
    let clash = dir.path().join("symbol=x").join("klines");
    let ds = klines_dataset(&clash);
    ds.write(candles(JAN5, 3, 10.0).lazy(), &kline_opts("BTCUSDT"))
        .unwrap();
    let err = ds.scan(&ScanOptions::default()).err().unwrap().to_string();
    assert!(
        err.contains("named like a partition of its column `symbol`"),
        "{err}"
    );
}

/// Finding 13. Before: the staged files' and inputs' paths went to Polars as glob patterns, and
/// `x[1]` matched nothing ("expanded paths were empty").
#[test]
fn paths_with_glob_characters_are_literal() {
    let dir = tmp();
    let base = dir.path().join("x[1]").join("d*s?");
    let input = dir.path().join("two[1]*?.csv");
    std::fs::copy(
        data_dir().join("spot/klines/ETHUSDT-1m-2025-01-01.csv"),
        &input,
    )
    .unwrap();
    // The second time by force (else skipped as ingested before): the same rows, stored.
    for (round, force) in [(0, "--quiet"), (1, "--force")] {
        let out = run(&[
            "ingest",
            input.to_str().unwrap(),
            "--dataset",
            base.to_str().unwrap(),
            "--kind",
            "klines",
            "--symbol",
            "ETHUSDT",
            "--timeframe",
            "1m",
            "--exchange",
            "BINANCE",
            "--max-rows-per-file",
            "500",
            "--json",
            force,
        ]);
        let v = json_ok(&out);
        let stored = ["rows_written", "rows_unchanged"].map(|k| v[k].as_u64().unwrap());
        assert_eq!(stored, [[1440, 0], [0, 1440]][round], "{v}");
    }
    let out = run(&["compact", base.to_str().unwrap(), "--json"]);
    json_ok(&out);
    let ds = Dataset::open(&base).unwrap();
    assert_eq!(ds.manifest().unwrap().total_rows, 1440);
    assert_eq!(read_sorted(&ds).height(), 1440);
}

/// Finding 14. Before: the key was the canonical path and the version number, so a dataset
/// made again at the same path, or rolled back, answered from its namesake's entry.
#[test]
fn a_recreated_or_rolled_back_dataset_never_hits_an_old_cache_entry() {
    let dir = tmp();
    let cache_dir = tmp();
    let cache = Cache::new(cache_dir.path());
    let base = dir.path().join("k");
    let q = ScanOptions::default().columns(&["close"]);
    let closes = |lf: LazyFrame| -> Vec<f64> {
        floats(
            &lf.sort(["close"], Default::default()).collect().unwrap(),
            "close",
        )
    };

    let ds = klines_dataset(&base);
    ds.write(candles(JAN5, 2, 1.0).lazy(), &kline_opts("BTCUSDT"))
        .unwrap();
    let (lf, status) = cached_projection(&ds, &q, &cache, None).unwrap();
    assert_eq!((status, closes(lf)), (Status::Miss, vec![1.0, 2.0]));

    // Deleted and made again: version 1 again, other rows.
    std::fs::remove_dir_all(&base).unwrap();
    let ds = klines_dataset(&base);
    ds.write(candles(JAN5, 2, 7.0).lazy(), &kline_opts("BTCUSDT"))
        .unwrap();
    let (lf, status) = cached_projection(&ds, &q, &cache, None).unwrap();
    assert_eq!((status, closes(lf)), (Status::Miss, vec![7.0, 8.0]));

    // Rolled back to a copy of version 1, then version 2 made again differently.
    let saved = dir.path().join("saved");
    copy_dir(&base, &saved);
    ds.write(candles(JAN5, 2, 20.0).lazy(), &kline_opts("ETHUSDT"))
        .unwrap();
    let (lf, status) = cached_projection(&ds, &q, &cache, None).unwrap();
    assert_eq!(
        (status, closes(lf)),
        (Status::Miss, vec![7.0, 8.0, 20.0, 21.0])
    );
    std::fs::remove_dir_all(&base).unwrap();
    copy_dir(&saved, &base);
    let ds = Dataset::open(&base).unwrap();
    ds.write(candles(JAN5, 2, 30.0).lazy(), &kline_opts("ETHUSDT"))
        .unwrap();
    assert_eq!(ds.header().version, 2);
    let (lf, status) = cached_projection(&ds, &q, &cache, None).unwrap();
    assert_eq!(
        (status, closes(lf)),
        (Status::Miss, vec![7.0, 8.0, 30.0, 31.0])
    );
    // And the current entry still hits.
    let (lf, status) = cached_projection(&ds, &q, &cache, None).unwrap();
    assert_eq!(
        (status, closes(lf)),
        (Status::Hit, vec![7.0, 8.0, 30.0, 31.0])
    );
}

fn copy_dir(from: &Path, to: &Path) {
    let mut files: Vec<PathBuf> = vec![];
    pqdm::manifest::walk(from, &mut |p| files.push(p.to_path_buf())).unwrap();
    for f in files {
        let dest = to.join(f.strip_prefix(from).unwrap());
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&f, &dest).unwrap();
    }
}

/// Finding 15. Before: `abs(i64::MIN)` wrapped, the value was taken for seconds and multiplied
/// by 1000 to 0, and the row was stored at 1970-01-01.
#[test]
fn the_smallest_i64_timestamp_is_refused_not_stored_as_1970() {
    let dir = tmp();
    let base = dir.path().join("k");
    let csv = dir.path().join("BTCUSDT-1m-2024-01-05.csv");
    std::fs::write(
        &csv,
        "1704412800000,1,1,1,1,1,1704412859999,1,1,1,1,0\n\
         -9223372036854775808,1,1,1,1,1,1704412919999,1,1,1,1,0\n",
    )
    .unwrap();
    let ingest = |extra: &[&str]| {
        let mut args = vec![
            "ingest",
            csv.to_str().unwrap(),
            "--dataset",
            base.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    json_ok(&run(&[
        "ingest",
        data_dir()
            .join("spot/klines/ETHUSDT-1m-2025-01-01.csv")
            .to_str()
            .unwrap(),
        "--dataset",
        base.to_str().unwrap(),
        "--json",
    ]));
    let before = snapshot(dir.path());
    fails_with(
        &ingest(&["--quiet"]),
        "BTCUSDT-1m-2024-01-05.csv: column `timestamp`, row 2: cannot cast value \"-9223372036854775808\" to timestamp",
    );
    assert_eq!(snapshot(dir.path()), before);
    // Lenient mode nulls it, like any other out-of-range value.
    let v = json_ok(&ingest(&["--lenient", "--json"]));
    assert_eq!(v["nulled"]["timestamp"], 1, "{v}");
    let ds = Dataset::open(&base).unwrap();
    assert_eq!(
        ds.manifest().unwrap().earliest_timestamp,
        Some(1_704_412_800_000)
    );
}

/// Finding 16. Before: `--timeframe 0m` was stored, and `verify` then divided by zero (a panic);
/// a huge timeframe wrapped and reported 18446744073709551615 missing candles.
#[test]
fn timeframes_are_checked_when_given_and_verify_never_panics() {
    let dir = tmp();
    let base = dir.path().join("k");
    let csv = data_dir().join("spot/klines/ETHUSDT-1m-2025-01-01.csv");
    json_ok(&run(&[
        "ingest",
        csv.to_str().unwrap(),
        "--dataset",
        base.to_str().unwrap(),
        "--json",
    ]));
    let before = snapshot(dir.path());
    for tf in ["0m", "99999999999999999d", "1x", "m"] {
        let out = run(&[
            "ingest",
            csv.to_str().unwrap(),
            "--dataset",
            base.to_str().unwrap(),
            "--timeframe",
            tf,
            "--quiet",
        ]);
        fails_with(&out, &format!("timeframe \"{tf}\": "));
        assert_eq!(snapshot(dir.path()), before, "{tf}");
    }
    // Timeframes that come as data are not constants; verify skips what is no cadence.
    for tf in ["0m", "99999999999999999d"] {
        let with_tf = dir.path().join(format!("tf-{}.csv", tf.len()));
        let text = std::fs::read_to_string(&csv).unwrap();
        let mut rows = String::from("open_time,open,high,low,close,volume,timeframe\n");
        for line in text.lines().step_by(100) {
            let f: Vec<&str> = line.split(',').collect();
            rows.push_str(&format!(
                "{},{},{},{},{},{},{tf}\n",
                f[0], f[1], f[2], f[3], f[4], f[5]
            ));
        }
        std::fs::write(&with_tf, rows).unwrap();
        let other = dir.path().join(format!("k-{}", tf.len()));
        json_ok(&run(&[
            "ingest",
            with_tf.to_str().unwrap(),
            "--dataset",
            other.to_str().unwrap(),
            "--kind",
            "klines",
            "--symbol",
            "ETHUSDT",
            "--exchange",
            "BINANCE",
            "--json",
        ]));
        let v = json_ok(&run(&["verify", other.to_str().unwrap(), "--json"]));
        assert_eq!(v["gaps"], serde_json::json!([]), "{tf}: {v}");
    }
}

/// Finding 17. Before: the first line was read whole (a 20 MB line, copied twice more) and the
/// errors quoted it, or a huge value, in full.
#[test]
fn huge_lines_and_values_are_refused_from_a_bounded_prefix_and_quoted_short() {
    let dir = tmp();
    let base = dir.path().join("k");
    let one_line = dir.path().join("BTCUSDT-1m-2024-01-05.csv");
    std::fs::write(&one_line, "1".repeat(20 << 20)).unwrap();
    let out = run(&[
        "ingest",
        one_line.to_str().unwrap(),
        "--dataset",
        base.to_str().unwrap(),
        "--quiet",
    ]);
    let err = fails_with(
        &out,
        "no line break in the first 1048576 bytes (starts with \"111",
    );
    assert!(err.len() < 1000, "{} bytes of error", err.len());
    assert_eq!(parquet_files(&base), Vec::<String>::new());

    let huge_value = dir.path().join("ETHUSDT-1m-2024-01-05.csv");
    std::fs::write(
        &huge_value,
        format!(
            "open_time,open,high,low,close,volume\n1704412800000,{},1,1,1,1\n",
            "x".repeat(100_000)
        ),
    )
    .unwrap();
    let out = run(&[
        "ingest",
        huge_value.to_str().unwrap(),
        "--dataset",
        base.to_str().unwrap(),
        "--quiet",
    ]);
    let err = fails_with(&out, "column `open`, row 1: cannot cast value \"xxx");
    assert!(err.contains("... (99800 more characters)"), "{err}");
    assert!(err.len() < 1000, "{} bytes of error", err.len());

    // Polars quotes a field it cannot parse, three times over: every line is cut short.
    let huge_field = dir.path().join("SOLUSDT-1m-2024-01-05.csv");
    let mut text = String::from("open_time,open,high,low,close,volume\n");
    text.push_str(&"1704412800000,1,1,1,1,1\n".repeat(10_001));
    text.push_str(&format!("17{},1,1,1,1,1\n", "9".repeat(1 << 20)));
    std::fs::write(&huge_field, text).unwrap();
    let out = run(&[
        "ingest",
        huge_field.to_str().unwrap(),
        "--dataset",
        base.to_str().unwrap(),
        "--quiet",
    ]);
    let err = fails_with(&out, "row 10002: cannot cast value \"1799");
    assert!(err.contains("\"... (1048378 more characters)"), "{err}");
    assert!(err.len() < 5000, "{} bytes of error", err.len());
    assert_eq!(parquet_files(&base), Vec::<String>::new());
}

/// The archive inflate limit. Before: only `PQDM_MAX_UNZIP_BYTES` (default 8 GiB) bounded an
/// inflation, so an archive filled a small disk before it was refused.
#[test]
fn an_archive_that_would_leave_the_disk_too_full_is_refused_before_it_does() {
    let dir = tmp();
    let base = dir.path().join("k");
    let zip = data_dir().join("spot/klines/BTCUSDT-1m-2024-01-05.zip");
    json_ok(&run(&[
        "ingest",
        data_dir()
            .join("spot/klines/ETHUSDT-1m-2025-01-01.csv")
            .to_str()
            .unwrap(),
        "--dataset",
        base.to_str().unwrap(),
        "--json",
    ]));
    let before = snapshot(dir.path());
    // Ask for more free space to be left than any disk has: the inflation stops at once.
    let out = bin()
        .args([
            "ingest",
            zip.to_str().unwrap(),
            "--dataset",
            base.to_str().unwrap(),
            "--quiet",
        ])
        .env("PQDM_UNZIP_RESERVE_BYTES", "1000000000000000000")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    fails_with(
        &out,
        "BTCUSDT-1m-2024-01-05.zip: inflating it would leave less than 1000000000000000000 bytes free",
    );
    assert_eq!(snapshot(dir.path()), before);
    // With the default reserve (at most 1 GiB), it goes in.
    let v = json_ok(&run(&[
        "ingest",
        zip.to_str().unwrap(),
        "--dataset",
        base.to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(v["rows_written"], 1440, "{v}");
}

/// Found by a red team: a CSV whose quote never closes (at row 32,001 of 40,000) failed with
/// "write partitions: could not parse ..." followed by the rest of the file, 2.6 MB of it,
/// naming no file; invalid UTF-8 said only "invalid utf-8 sequence". The file is named, the
/// message is at most a dozen lines, with or without a memory budget, and nothing is written.
#[test]
fn a_csv_that_does_not_parse_is_named_in_a_short_message() {
    let dir = tmp();
    let base = dir.path().join("ds");
    let row = |m: i64| {
        let t = JAN5 + m * 60_000;
        format!("{t},1.0,2.0,0.5,{m}.0,1.0,{},1.0,1,0.5,0.5,0\n", t + 59_999)
    };
    let mut quote = String::new();
    let mut utf = Vec::new();
    for m in 0..40_000 {
        let line = row(m);
        match m {
            32_000 => {
                quote.push_str(&line.replacen(',', ",\"", 1));
                utf.extend_from_slice(&line.as_bytes()[..20]);
                utf.extend_from_slice(&[0xff, 0xfe]);
                utf.extend_from_slice(&line.as_bytes()[20..]);
            }
            _ => {
                quote.push_str(&line);
                utf.extend_from_slice(line.as_bytes());
            }
        }
    }
    std::fs::write(dir.path().join("quote.csv"), quote).unwrap();
    std::fs::write(dir.path().join("utf.csv"), utf).unwrap();
    // A good day first, so the failed writes have a dataset to leave as it was.
    std::fs::write(dir.path().join("good.csv"), row(0)).unwrap();
    let ingest = |file: &str, extra: &[&str]| {
        let mut args = vec![
            "ingest",
            file,
            "--dataset",
            base.to_str().unwrap(),
            "--kind",
            "klines",
            "--exchange",
            "BINANCE",
            "--symbol",
            "BTCUSDT",
            "--timeframe",
            "1m",
            "--quiet",
        ];
        args.extend(extra);
        bin().current_dir(dir.path()).args(&args).output().unwrap()
    };
    assert!(ingest("good.csv", &[]).status.success());
    let before = snapshot(&base);
    for file in ["quote.csv", "utf.csv"] {
        for extra in [&[][..], &["--memory-limit", "1MiB"][..]] {
            let out = ingest(file, extra);
            let err = fails_with(&out, &format!("{file}: "));
            assert!(
                err.lines().count() <= 14 && err.len() < 6_000,
                "{file} {extra:?}: {} lines, {} bytes",
                err.lines().count(),
                err.len()
            );
            assert_eq!(snapshot(&base), before, "{file} {extra:?}");
        }
    }
}
