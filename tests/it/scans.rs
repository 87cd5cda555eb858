//! Scans: the filter language against DuckDB, manifest pruning, batches, foreign datasets, CLI errors.

use polars::prelude::*;
use pqdm::{Dataset, ScanOptions, WriteOptions};

use crate::common::*;

const JAN30: i64 = 1_706_572_800_000; // 2024-01-30T00:00:00Z
const HOUR: i64 = 3_600_000;

/// Three symbols, hourly candles from 2024-01-30 to 2024-02-02 (crossing a month), some nulls.
fn hourly_dataset(dir: &std::path::Path) -> Dataset {
    let ds = klines_dataset(dir);
    for (i, symbol) in ["BTCUSDT", "ETHUSDT", "SOLUSDT"].iter().enumerate() {
        let n = 96;
        let ts: Vec<i64> = (0..n).map(|h| JAN30 + h * HOUR).collect();
        let close: Vec<f64> = (0..n)
            .map(|h| 100.0 * (i + 1) as f64 + h as f64 * 0.5)
            .collect();
        let trades: Vec<Option<i64>> = (0..n)
            .map(|h| {
                if h % 7 == 0 {
                    None
                } else {
                    Some(h * 3 + i as i64)
                }
            })
            .collect();
        let df = df!("timestamp" => ts, "open" => close.clone(), "high" => close.clone(), "low" => close.clone(),
            "close" => close, "volume" => vec![2.0f64; n as usize], "trades" => trades).unwrap();
        let opts = WriteOptions {
            constants: consts(&[
                ("exchange", "BINANCE"),
                ("symbol", symbol),
                ("timeframe", "1h"),
            ]),
            ..Default::default()
        };
        ds.write(df.lazy(), &opts).unwrap();
    }
    ds
}

/// (pqdm filters, the same condition in SQL)
const CASES: &[(&[&str], &str)] = &[
    (&["symbol == ETHUSDT"], "symbol = 'ETHUSDT'"),
    (&["symbol != ETHUSDT"], "symbol <> 'ETHUSDT'"),
    (
        &["symbol in [BTCUSDT, SOLUSDT]"],
        "symbol IN ('BTCUSDT', 'SOLUSDT')",
    ),
    (&["symbol not_in [BTCUSDT]"], "symbol NOT IN ('BTCUSDT')"),
    (&["close > 120"], "close > 120"),
    (&["close >= 120.5"], "close >= 120.5"),
    (&["close < 110"], "close < 110"),
    (&["close <= 110"], "close <= 110"),
    (&["close between [140, 160]"], "close BETWEEN 140 AND 160"),
    (&["trades is_null"], "trades IS NULL"),
    (
        &["trades is_not_null", "symbol == SOLUSDT"],
        "trades IS NOT NULL AND symbol = 'SOLUSDT'",
    ),
    (&["timestamp >= 2024-02-01"], "timestamp >= 1706745600000"),
    (
        &["timestamp < 2024-01-31T12:00:00Z"],
        "timestamp < 1706702400000",
    ),
    (
        &["timestamp between [2024-01-31T22:00, 2024-02-01T02:00]"],
        "timestamp BETWEEN 1706738400000 AND 1706752800000",
    ),
    (&["month == 2"], "month = 2"),
    (&["month == 1", "day >= 31"], "month = 1 AND day >= 31"),
    (&["day in [30, 2]"], "day IN (30, 2)"),
    (
        &[
            "year == 2024",
            "month == 2",
            "day == 1",
            "symbol == BTCUSDT",
            "close > 100",
        ],
        "year = 2024 AND month = 2 AND day = 1 AND symbol = 'BTCUSDT' AND close > 100",
    ),
    (&["symbol == XRPUSDT"], "symbol = 'XRPUSDT'"),
    (&["timestamp > 2030-01-01"], "timestamp > 1893456000000"),
    (
        &[
            "timeframe == 1h",
            "exchange == BINANCE",
            "trades > 100",
            "trades < 200",
            "close != 150",
        ],
        "timeframe = '1h' AND exchange = 'BINANCE' AND trades > 100 AND trades < 200 AND close <> 150",
    ),
    (&["timestamp == 1706745600000"], "timestamp = 1706745600000"),
    (
        &["volume == 2", "day not_in [30, 31]"],
        "volume = 2 AND day NOT IN (30, 31)",
    ),
];

#[test]
fn filters_agree_with_duckdb() {
    let dir = tmp();
    let ds = hourly_dataset(dir.path());
    let sqls: Vec<String> = CASES.iter().map(|(_, sql)| sql.to_string()).collect();
    let script = r#"
import sys, json, duckdb
base = sys.argv[1]
con = duckdb.connect()
for where in json.loads(sys.argv[2]):
    rows = con.execute(f"SELECT symbol, timestamp FROM read_parquet('{base}/**/*.parquet', hive_partitioning=true) WHERE {where} ORDER BY symbol, timestamp").fetchall()
    print(len(rows), ",".join(f"{s}@{t}" for s, t in rows))
"#;
    let duck = py(
        script,
        &[
            dir.path().to_str().unwrap(),
            &serde_json::to_string(&sqls).unwrap(),
        ],
    );
    let mut nonempty = 0;
    for ((filters, sql), want) in CASES.iter().zip(duck.lines()) {
        let mut opts = ScanOptions::default().columns(&["symbol", "timestamp"]);
        for f in *filters {
            opts = opts.filter(f).unwrap();
        }
        let df = ds
            .scan(&opts)
            .unwrap()
            .sort(["symbol", "timestamp"], Default::default())
            .collect()
            .unwrap();
        let keys: Vec<String> = df
            .column("symbol")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .map(|s| s.unwrap_or_default())
            .zip(
                df.column("timestamp")
                    .unwrap()
                    .i64()
                    .unwrap()
                    .into_no_null_iter(),
            )
            .map(|(s, t)| format!("{s}@{t}"))
            .collect();
        assert_eq!(
            format!("{} {}", keys.len(), keys.join(",")),
            want,
            "filters {filters:?} vs SQL {sql}"
        );
        nonempty += usize::from(!keys.is_empty());
    }
    assert!(nonempty >= 19, "most cases select something");
    // Tuples and Polars expressions too.
    let by_tuple = ScanOptions {
        filters: vec![pqdm::Filter::from_tuple("symbol", "==", "ETHUSDT").unwrap()],
        ..Default::default()
    };
    assert_eq!(ds.scan(&by_tuple).unwrap().collect().unwrap().height(), 96);
    let by_expr = ScanOptions {
        exprs: vec![col("close").gt(lit(200.0))],
        ..Default::default()
    };
    assert_eq!(
        ds.scan(&by_expr).unwrap().collect().unwrap().height(),
        96 + 96 - 1
    );
}

#[test]
fn timestamp_ranges_open_only_overlapping_files() {
    let dir = tmp();
    let ds = klines_dataset(dir.path());
    let day = 24 * HOUR;
    ds.write(
        candles(JAN30 - 20 * day, 30 * 1440, 1.0).lazy(),
        &kline_opts("BTCUSDT"),
    )
    .unwrap();
    let m = ds.manifest().unwrap();
    assert_eq!(m.file_count, 30);
    let opts = ScanOptions::default()
        .filter("timestamp >= 2024-01-20T12:00")
        .unwrap()
        .filter("timestamp < 2024-01-23")
        .unwrap();
    let plan = ds.plan(&opts).unwrap();
    assert_eq!((plan.files.len(), plan.total_files), (3, 30));
    // Prove the other 27 are never opened: make them unreadable garbage.
    for (f, p) in m.files.iter().zip(ds.file_paths(&m)) {
        if !plan.files.contains(&p) {
            std::fs::write(&p, b"not parquet").unwrap();
            let _ = f;
        }
    }
    let df = ds.scan(&opts).unwrap().collect().unwrap();
    assert_eq!(df.height(), (2 * 1440 + 720) as usize);
    // A partition filter prunes folders the same way.
    let plan = ds
        .plan(&ScanOptions::default().filter("day == 21").unwrap())
        .unwrap();
    assert_eq!(plan.files.len(), 1);
    // Without the filter the garbage is read, and fails.
    assert!(ds.scan(&ScanOptions::default()).unwrap().collect().is_err());
}

#[test]
fn batches_of_exact_size() {
    let dir = tmp();
    let ds = Dataset::create(
        dir.path(),
        pqdm::schema::KindRegistry::default().get("split").unwrap(),
        &Default::default(),
    )
    .unwrap();
    let n = 1_000_003i64;
    let df = df!("timestamp" => (0..n).map(|i| 1_704_067_200_000 + i * 100).collect::<Vec<_>>(), "label" => (0..n).collect::<Vec<_>>()).unwrap();
    let opts = WriteOptions {
        constants: consts(&[("exchange", "X"), ("symbol", "Y")]),
        ..Default::default()
    };
    ds.write(df.lazy(), &opts).unwrap();
    let mut sizes = vec![];
    let mut sum = 0i64;
    for b in ds
        .batches(&ScanOptions::default().columns(&["label"]), 100_000)
        .unwrap()
    {
        let b = b.unwrap();
        sizes.push(b.height());
        sum += b.column("label").unwrap().i64().unwrap().sum().unwrap();
    }
    assert_eq!(sizes.len(), 11);
    assert!(sizes[..10].iter().all(|s| *s == 100_000), "{sizes:?}");
    assert_eq!(sizes[10], 3);
    assert_eq!(sum, (n - 1) * n / 2);
}

#[test]
fn datasets_written_by_pyarrow_and_duckdb() {
    let dir = tmp();
    let pa = dir.path().join("pa");
    let duck = dir.path().join("duck");
    let script = r#"
import sys, os, pyarrow as pa, pyarrow.dataset as ds, duckdb
pa_base, duck_base = sys.argv[1], sys.argv[2]
t = pa.table({"timestamp": [1704067200000 + i * 60000 for i in range(600)],
              "price": [float(i) for i in range(600)],
              "symbol": ["0001" if i % 3 == 0 else ("BTCUSDT" if i % 3 == 1 else "ETH USDT") for i in range(600)],
              "year": [2024] * 600})
ds.write_dataset(t, pa_base, format="parquet", partitioning=["symbol", "year"], partitioning_flavor="hive")
open(os.path.join(pa_base, "_SUCCESS"), "w").close()
open(os.path.join(pa_base, ".part-0.parquet.crc"), "w").write("crc")
os.makedirs(os.path.join(pa_base, "_tmp"))
open(os.path.join(pa_base, "_tmp", "half.parquet"), "w").write("garbage")
con = duckdb.connect()
con.register("t", t)
con.execute(f"COPY t TO '{duck_base}' (FORMAT parquet, PARTITION_BY (symbol, year))")
"#;
    py(script, &[pa.to_str().unwrap(), duck.to_str().unwrap()]);
    for base in [&pa, &duck] {
        let ds = Dataset::open_any(base, &Default::default()).unwrap();
        assert!(ds.is_foreign());
        let m = ds.manifest().unwrap();
        assert_eq!(m.total_rows, 600, "{}", base.display());
        assert_eq!(m.partition_type("symbol"), Some(pqdm::schema::ColType::Str));
        // Numeric time folders get pqdm's dtypes for them (year i16), as in its own datasets.
        assert_eq!(m.partition_type("year"), Some(pqdm::schema::ColType::I16));
        let df = ds
            .scan(&ScanOptions::default().filter("symbol == 0001").unwrap())
            .unwrap()
            .collect()
            .unwrap();
        assert_eq!(df.height(), 200, "{}", base.display());
        assert_eq!(df.column("symbol").unwrap().dtype(), &DataType::String);
        let df = ds
            .scan(
                &ScanOptions::default()
                    .filter("symbol == 'ETH USDT'")
                    .unwrap()
                    .filter("price >= 590")
                    .unwrap(),
            )
            .unwrap()
            .collect()
            .unwrap();
        assert_eq!(df.height(), 4, "{}", base.display()); // 590, 593, 596, 599
        assert_eq!(df.column("year").unwrap().i16().unwrap().get(0), Some(2024));
        let err = ds
            .write(candles(0, 1, 1.0).lazy(), &kline_opts("X"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("has no manifest"), "{err}");
    }
    // --hive-schema overrides the inferred dtypes.
    let out = run(&[
        "scan",
        pa.to_str().unwrap(),
        "--hive-schema",
        "year=i32",
        "--filter",
        "year == 2024",
        "--columns",
        "year",
        "--limit",
        "1",
        "--format",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "{\"year\":2024}\n");
}

#[test]
fn cli_scan_formats_and_errors() {
    let dir = tmp();
    hourly_dataset(dir.path());
    let base = dir.path().to_str().unwrap();
    let out = run(&[
        "scan",
        base,
        "--filter",
        "symbol == BTCUSDT",
        "--filter",
        "timestamp < 2024-01-30T03:00",
        "--columns",
        "timestamp,close",
        "--format",
        "csv",
        "--batch-size",
        "2",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "timestamp,close\n1706572800000,100.0\n1706576400000,100.5\n1706580000000,101.0\n"
    );
    let pq = dir.path().join("out.parquet");
    let out = run(&[
        "scan",
        base,
        "--filter",
        "day == 2",
        "--format",
        "parquet",
        "--output",
        pq.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    assert_eq!(
        LazyFrame::scan_parquet(PlRefPath::try_from_path(&pq).unwrap(), Default::default())
            .unwrap()
            .collect()
            .unwrap()
            .height(),
        72
    );
    let out = run(&["info", base, "--json"]);
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["total_rows"], 288);
    assert_eq!(info["keys"].as_array().unwrap().len(), 3);
    for (filter, message) in [
        ("nope == 1", "filter `nope == 1`: unknown column `nope`"),
        ("price ~ 3", "filter `price ~ 3`: unknown operator `~`"),
        (
            "timestamp >= yesterdayish",
            "filter `timestamp >= yesterdayish`: value `yesterdayish` does not fit column `timestamp`",
        ),
        (
            "close > abc",
            "value `abc` does not fit column `close` (f64)",
        ),
        ("symbol in BTCUSDT", "`in` takes a list like [a, b]"),
    ] {
        let out = run(&["scan", base, "--filter", filter]);
        assert_eq!(out.status.code(), Some(1), "{filter}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(message), "{filter}: {err}");
    }
}

/// Found by a red team: `scan --output f` that failed halfway (a damaged data file) left f
/// truncated or half-written. The output is written beside f and renamed over it when whole:
/// a failure leaves f as it was (or absent) and no temporary file; a device is written in place.
#[test]
fn a_failed_scan_leaves_its_output_file_as_it_was() {
    let dir = tmp();
    let base = dir.path().join("ds");
    hourly_dataset(&base);
    let out_dir = dir.path().join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let b = base.to_str().unwrap();
    // Whole: every format lands at its name.
    for (format, name) in [
        ("csv", "a.csv"),
        ("jsonl", "a.jsonl"),
        ("parquet", "a.parquet"),
    ] {
        let target = out_dir.join(name);
        std::fs::write(&target, "keep me").unwrap();
        let out = run(&[
            "scan",
            b,
            "--format",
            format,
            "--output",
            target.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{format}: {}", stderr(&out));
        assert_ne!(std::fs::read(&target).unwrap(), b"keep me", "{format}");
    }
    let devnull = run(&["scan", b, "--format", "csv", "--output", "/dev/null"]);
    assert!(devnull.status.success(), "{}", stderr(&devnull));
    assert!(std::path::Path::new("/dev/null").exists());
    // Damaged: the last data file (in path order) loses its footer.
    let files = parquet_files(&base);
    let last = base.join(files.last().unwrap());
    let bytes = std::fs::read(&last).unwrap();
    std::fs::write(&last, &bytes[..bytes.len() / 2]).unwrap();
    for (format, name) in [
        ("csv", "a.csv"),
        ("jsonl", "a.jsonl"),
        ("parquet", "a.parquet"),
    ] {
        for existing in [true, false] {
            let target = out_dir.join(name);
            match existing {
                true => std::fs::write(&target, "keep me").unwrap(),
                false => {
                    let _ = std::fs::remove_file(&target);
                }
            }
            let out = run(&[
                "scan",
                b,
                "--format",
                format,
                "--batch-size",
                "1",
                "--output",
                target.to_str().unwrap(),
            ]);
            assert_eq!(out.status.code(), Some(1), "{format}: {}", stderr(&out));
            match existing {
                true => assert_eq!(std::fs::read(&target).unwrap(), b"keep me", "{format}"),
                false => assert!(!target.exists(), "{format}"),
            }
            let left: Vec<_> = std::fs::read_dir(&out_dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".tmp"))
                .collect();
            assert!(left.is_empty(), "{format}: {left:?}");
        }
    }
}

/// A `scan --output` killed mid-write leaves its temporary `.NAME.PID.tmp` beside the target;
/// the next scan to that target removes the one whose process is gone, and leaves a running
/// writer's alone.
#[test]
fn a_killed_scans_temporary_output_is_removed_by_the_next_scan() {
    let dir = tmp();
    let base = dir.path().join("ds");
    hourly_dataset(&base);
    let target = dir.path().join("out.csv");
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = gone.id();
    gone.wait().unwrap();
    let dead = dir.path().join(format!(".out.csv.{dead_pid}.tmp"));
    let live = dir
        .path()
        .join(format!(".out.csv.{}.tmp", std::process::id()));
    let other = dir.path().join(format!(".other.csv.{dead_pid}.tmp"));
    // Not a pid pqdm wrote (0 and -1 would ask about process groups and every process), or a
    // longer name that shares the prefix: left alone.
    let odd: Vec<_> = ["0", "-1", "x", &format!("{dead_pid}.x")]
        .iter()
        .map(|p| dir.path().join(format!(".out.csv.{p}.tmp")))
        .collect();
    for f in [&dead, &live, &other].into_iter().chain(&odd) {
        std::fs::write(f, "half").unwrap();
    }
    let out = run(&[
        "scan",
        base.to_str().unwrap(),
        "--format",
        "csv",
        "--output",
        target.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        std::fs::read_to_string(&target)
            .unwrap()
            .starts_with("timestamp")
    );
    assert!(!dead.exists());
    assert!(live.exists() && other.exists());
    assert!(odd.iter().all(|f| f.exists()));
}
