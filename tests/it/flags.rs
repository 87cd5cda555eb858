//! Every flag and setting the CLI and the README offer, run for what it promises: file and
//! row-group layouts, footer metadata, `latest`'s modes, compaction by filter, `adopt`'s kind and
//! hive schema, `materialize --version`, the default table output, and the scan batch settings
//! (flag > environment > `pqdm.toml` in the working folder > width), and the thread settings
//! (`PQDM_THREADS`, `ARROW_NUM_THREADS`, `[scan] threads`) by the size of the pool they make.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use pqdm::Dataset;

use crate::common::*;

const JAN5: i64 = 1_704_412_800_000;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Per data file (sorted by path, relative to `base`): its row groups' sizes, its footer's
/// key-value metadata (pyarrow's own schema entry left out) and its first and last `close`.
const LAYOUT: &str = r#"
import sys, json, glob, os, pyarrow.parquet as pq
base = sys.argv[1]
out = []
for f in sorted(glob.glob(base + "/**/*.parquet", recursive=True)):
    pf = pq.ParquetFile(f)
    m = pf.metadata
    meta = {k.decode(): v.decode() for k, v in (m.metadata or {}).items() if not k.startswith(b"ARROW")}
    close = pf.read(columns=["close"]).column("close").to_pylist()
    out.append([os.path.relpath(f, base), [m.row_group(i).num_rows for i in range(m.num_row_groups)], meta, [close[0], close[-1]]])
print(json.dumps(out))
"#;

/// One data file as pyarrow sees it.
#[derive(Debug, PartialEq, serde::Deserialize)]
struct FileLayout(String, Vec<u64>, BTreeMap<String, String>, [f64; 2]);

fn layout(base: &Path) -> Vec<FileLayout> {
    serde_json::from_str(&py(LAYOUT, &[s(base)])).unwrap()
}

/// Row groups and first/last close of every file, in path order (names sort in write order).
fn groups(base: &Path) -> Vec<(Vec<u64>, [f64; 2])> {
    layout(base).into_iter().map(|f| (f.1, f.3)).collect()
}

/// A klines CSV with a header and `n` one-minute candles from 2024-01-01 whose close is the
/// row's index.
fn counting_csv(dir: &Path, n: u64) -> PathBuf {
    let mut text = String::from("open_time,open,high,low,close,volume\n");
    for i in 0..n {
        text.push_str(&format!("{},1,1,1,{i},1\n", 1_704_067_200_000 + i * 60_000));
    }
    let path = dir.join(format!("counting-{n}.csv"));
    std::fs::write(&path, text).unwrap();
    path
}

/// Ingests `csv` into a new one-partition klines dataset `base` with `extra` flags.
fn ingest_one_partition(csv: &Path, base: &Path, extra: &[&str], env: &[(&str, &str)]) {
    let args = [
        &[
            "ingest",
            s(csv),
            "--dataset",
            s(base),
            "--kind",
            "klines",
            "--exchange",
            "X",
            "--symbol",
            "S",
            "--timeframe",
            "1m",
            "--partition-by",
            "exchange,symbol,timeframe",
            "--json",
        ][..],
        extra,
    ]
    .concat();
    json_ok(&run_env(&args, env));
}

#[test]
fn files_and_row_groups_are_as_the_layout_options_promise() {
    let dir = tmp();
    let small = counting_csv(dir.path(), 1_440);
    let big = counting_csv(dir.path(), 130_001);
    let at = |name: &str| dir.path().join(name);

    ingest_one_partition(
        &small,
        &at("groups"),
        &["--max-rows-per-file", "1000", "--row-group-size", "300"],
        &[],
    );
    assert_eq!(
        groups(&at("groups")),
        [
            (vec![300, 300, 300, 100], [0.0, 999.0]),
            (vec![300, 140], [1000.0, 1439.0])
        ]
    );
    // The same from the `[write]` table of pqdm.toml in the working folder.
    let cwd = at("cwd");
    std::fs::create_dir(&cwd).unwrap();
    std::fs::write(
        cwd.join("pqdm.toml"),
        "[write]\nmax_rows_per_file = 1000\nrow_group_size = 300\n",
    )
    .unwrap();
    let configured = at("configured");
    json_ok(
        &bin()
            .current_dir(&cwd)
            .args([
                "ingest",
                s(&small),
                "--dataset",
                s(&configured),
                "--kind",
                "klines",
            ])
            .args([
                "--exchange",
                "X",
                "--symbol",
                "S",
                "--timeframe",
                "1m",
                "--json",
            ])
            .output()
            .unwrap(),
    );
    assert_eq!(
        groups(&configured),
        [
            (vec![300, 300, 300, 100], [0.0, 999.0]),
            (vec![300, 140], [1000.0, 1439.0])
        ]
    );
    // Polars' default row group is 122,880 rows; at least 130,000 makes one of them.
    ingest_one_partition(&big, &at("default"), &[], &[]);
    assert_eq!(
        groups(&at("default")),
        [(vec![122_880, 7_121], [0.0, 130_000.0])]
    );
    ingest_one_partition(&big, &at("min"), &["--min-rows-per-group", "130000"], &[]);
    assert_eq!(groups(&at("min")), [(vec![130_000, 1], [0.0, 130_000.0])]);
    // A 1 MiB budget (PQDM_MEMORY_LIMIT) writes slices of the smallest size, 10,000 rows, each
    // its own file, in input order.
    ingest_one_partition(&big, &at("sliced"), &[], &[("PQDM_MEMORY_LIMIT", "1MiB")]);
    let want: Vec<(Vec<u64>, [f64; 2])> = (0..14)
        .map(|i| {
            let first = i as f64 * 10_000.0;
            let rows = if i < 13 { 10_000 } else { 1 };
            (vec![rows], [first, first + rows as f64 - 1.0])
        })
        .collect();
    assert_eq!(groups(&at("sliced")), want);
    // Compaction to a target: files of exactly that many rows, sorted, the rest in the last.
    let v = json_ok(&run(&[
        "compact",
        s(&at("sliced")),
        "--target-rows",
        "50000",
        "--json",
    ]));
    assert_eq!(
        [
            &v["files_before"],
            &v["files_after"],
            &v["rows"],
            &v["partitions"]
        ],
        [14, 3, 130_001, 1]
    );
    assert_eq!(
        groups(&at("sliced")),
        [
            (vec![50_000], [0.0, 49_999.0]),
            (vec![50_000], [50_000.0, 99_999.0]),
            (vec![30_001], [100_000.0, 130_000.0])
        ]
    );
    // Options that contradict each other are refused before anything is written.
    for (flags, message) in [
        (
            &["--row-group-size", "0"][..],
            "row_group_size must be at least 1",
        ),
        (
            &["--max-rows-per-file", "100", "--min-rows-per-group", "100"],
            "min_rows_per_group (100) must be below max_rows_per_file (100)",
        ),
        (
            &["--min-rows-per-group", "500", "--row-group-size", "400"],
            "row_group_size (400) is below min_rows_per_group (500)",
        ),
    ] {
        let base = at("refused");
        let out = run(&[
            &[
                "ingest",
                s(&small),
                "--dataset",
                s(&base),
                "--kind",
                "klines",
                "--exchange",
                "X",
            ][..],
            flags,
        ]
        .concat());
        assert_eq!(out.status.code(), Some(1), "{flags:?}");
        assert!(
            stderr(&out).contains(message),
            "{flags:?}: {}",
            stderr(&out)
        );
        assert!(!base.exists(), "{flags:?}");
    }
}

#[test]
fn meta_goes_into_every_footer_and_the_manifest() {
    let dir = tmp();
    let base = dir.path().join("ds");
    let day = |name: &str| data_dir().join("spot/klines").join(name);
    let ingest = |file: &str, meta: &[&str]| {
        let file = day(file);
        let mut args = vec![
            "ingest",
            s(&file),
            "--dataset",
            s(&base),
            "--kind",
            "klines",
        ];
        args.push("--json");
        for m in meta {
            args.extend(["--meta", m]);
        }
        run(&args)
    };
    json_ok(&ingest(
        "ETHUSDT-1m-2024-01-05.zip",
        &["source=vision", " note = a=b "],
    ));
    json_ok(&ingest("ETHUSDT-1m-2025-01-01.csv", &["source=other"]));
    let meta = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let files: Vec<(String, BTreeMap<String, String>)> = layout(&base)
        .into_iter()
        .map(|f| (f.0.split("/year=").nth(1).unwrap().to_string(), f.2))
        .collect();
    // Keys are trimmed, values kept as given; a later write's value wins in its own files and
    // in the manifest, and leaves the files already written alone.
    assert_eq!(files.len(), 2);
    assert!(files[0].0.starts_with("2024/month=1/day=5/"), "{files:?}");
    assert_eq!(files[0].1, meta(&[("note", " a=b "), ("source", "vision")]));
    assert!(files[1].0.starts_with("2025/month=1/day=1/"), "{files:?}");
    assert_eq!(files[1].1, meta(&[("note", " a=b "), ("source", "other")]));
    let m = Dataset::open(&base).unwrap().manifest().unwrap();
    assert_eq!(m.metadata, meta(&[("note", " a=b "), ("source", "other")]));

    let before = snapshot(&base);
    let out = ingest("BTCUSDT-1m-2024-01-05.zip", &["novalue"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "error: --meta \"novalue\": expected KEY=VALUE\n"
    );
    assert_eq!(snapshot(&base), before);
}

/// The sample's spot candles: BTCUSDT and ETHUSDT, 2024-01-05 and 2025-01-01, 1,440 each.
fn spot_klines(dir: &Path) -> PathBuf {
    let base = dir.join("klines");
    json_ok(&run(&[
        "ingest",
        s(&data_dir().join("spot/klines")),
        "--dataset",
        s(&base),
        "--kind",
        "klines",
        "--json",
    ]));
    base
}

fn text_ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn latest_answers_overall_per_key_and_under_filters() {
    let dir = tmp();
    let base = spot_klines(dir.path());
    let b = s(&base);
    let end_2024 = "1704499140000 (2024-01-05T23:59:00.000Z)";
    let end_2025 = "1735775940000 (2025-01-01T23:59:00.000Z)";
    let key = |symbol: &str| format!("exchange=BINANCE symbol={symbol} timeframe=1m");
    assert_eq!(
        text_ok(&["latest", b]),
        format!(
            "latest {end_2025}\n  {}  {end_2025}\n  {}  {end_2025}\n",
            key("BTCUSDT"),
            key("ETHUSDT")
        )
    );
    assert_eq!(
        text_ok(&["latest", b, "--overall"]),
        format!("latest {end_2025}\n")
    );
    assert_eq!(
        json_ok(&run(&["latest", b, "--overall", "--json"]))["by_key"],
        serde_json::json!([])
    );
    assert_eq!(
        text_ok(&["latest", b, "--filter", "symbol == ETHUSDT"]),
        format!("latest {end_2025}\n  {}  {end_2025}\n", key("ETHUSDT"))
    );
    assert_eq!(
        text_ok(&["latest", b, "--filter", "year == 2024", "--by", "symbol"]),
        format!("latest {end_2024}\n  symbol=BTCUSDT  {end_2024}\n  symbol=ETHUSDT  {end_2024}\n")
    );
    assert_eq!(
        text_ok(&[
            "latest",
            b,
            "--overall",
            "--filter",
            "symbol == BTCUSDT",
            "--filter",
            "timestamp < 2025-01-01T12:00"
        ]),
        "latest 1735732740000 (2025-01-01T11:59:00.000Z)\n"
    );
    assert_eq!(
        text_ok(&["latest", b, "--overall", "--filter", "symbol == SOLUSDT"]),
        "latest none\n"
    );
    let out = run(&["latest", b, "--overall", "--by", "symbol"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("'--overall' cannot be used with '--by <BY>'"));
}

#[test]
fn scan_prints_a_table_by_default() {
    let dir = tmp();
    let base = spot_klines(dir.path());
    let table = text_ok(&[
        "scan",
        s(&base),
        "--columns",
        "timestamp,close,symbol",
        "--filter",
        "symbol == ETHUSDT",
        "--filter",
        "timestamp < 2024-01-05T00:02",
    ]);
    assert_eq!(
        table,
        "shape: (2, 3)
┌───────────────┬─────────┬─────────┐
│ timestamp     ┆ close   ┆ symbol  │
│ ---           ┆ ---     ┆ ---     │
│ i64           ┆ f64     ┆ str     │
╞═══════════════╪═════════╪═════════╡
│ 1704412800000 ┆ 2249.62 ┆ ETHUSDT │
│ 1704412860000 ┆ 2249.75 ┆ ETHUSDT │
└───────────────┴─────────┴─────────┘
"
    );
}

#[test]
fn compact_filter_rewrites_only_the_partitions_it_selects() {
    let dir = tmp();
    let ds = klines_dataset(dir.path());
    for symbol in ["BTCUSDT", "ETHUSDT"] {
        for part in 0..3 {
            ds.write(
                candles(JAN5 + part * 600_000, 10, 1.0).lazy(),
                &kline_opts(symbol),
            )
            .unwrap();
        }
    }
    let eth = |files: Vec<String>| -> Vec<String> {
        files
            .into_iter()
            .filter(|f| f.contains("symbol=ETHUSDT"))
            .collect()
    };
    let eth_before = eth(parquet_files(dir.path()));
    assert_eq!(eth_before.len(), 3);
    let eth_bytes: Vec<Vec<u8>> = eth_before
        .iter()
        .map(|f| std::fs::read(dir.path().join(f)).unwrap())
        .collect();
    let rows = read_sorted(&ds);
    let v = json_ok(&run(&[
        "compact",
        s(dir.path()),
        "--filter",
        "symbol == BTCUSDT",
        "--json",
    ]));
    assert_eq!(
        [
            &v["partitions"],
            &v["files_before"],
            &v["files_after"],
            &v["rows"]
        ],
        [1, 3, 1, 30]
    );
    let files = parquet_files(dir.path());
    let btc: Vec<&String> = files
        .iter()
        .filter(|f| f.contains("symbol=BTCUSDT"))
        .collect();
    assert_eq!(btc.len(), 1, "{files:?}");
    assert_eq!(eth(files.clone()), eth_before);
    for (f, bytes) in eth_before.iter().zip(&eth_bytes) {
        assert_eq!(&std::fs::read(dir.path().join(f)).unwrap(), bytes, "{f}");
    }
    let ds = Dataset::open(dir.path()).unwrap();
    assert_eq!(read_sorted(&ds), rows);
    // Nothing left to compact in that partition: no new version.
    let again = json_ok(&run(&[
        "compact",
        s(dir.path()),
        "--filter",
        "symbol in [BTCUSDT]",
        "--json",
    ]));
    assert_eq!(again["version"], serde_json::Value::Null, "{again}");
}

#[test]
fn adopt_records_the_kind_and_the_hive_schema_asked_for() {
    let dir = tmp();
    let written = spot_klines(dir.path());
    // The same files without pqdm's manifest: a hive dataset as another tool leaves it.
    let copy = |name: &str| {
        let to = dir.path().join(name);
        for f in parquet_files(&written) {
            std::fs::create_dir_all(to.join(&f).parent().unwrap()).unwrap();
            std::fs::copy(written.join(&f), to.join(&f)).unwrap();
        }
        to
    };
    let typed = |info: &serde_json::Value| -> Vec<String> {
        info["partition_columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                format!(
                    "{}:{}",
                    f["name"].as_str().unwrap(),
                    f["dtype"].as_str().unwrap()
                )
            })
            .collect()
    };
    let plain = copy("plain");
    json_ok(&run(&["adopt", s(&plain), "--json"]));
    let info = json_ok(&run(&["info", s(&plain), "--json"]));
    // Folders named like the derived columns get their types.
    assert_eq!(
        typed(&info),
        [
            "exchange:str",
            "symbol:str",
            "timeframe:str",
            "year:i16",
            "month:i8",
            "day:i8"
        ]
    );
    assert_eq!(info["key"], serde_json::json!([]));

    let typed_copy = copy("typed");
    let v = json_ok(&run(&[
        "adopt",
        s(&typed_copy),
        "--kind",
        "klines",
        "--hive-schema",
        "year=i32,month:i16",
        "--hive-schema",
        "day=i64",
        "--json",
    ]));
    assert_eq!(
        [&v["kind"], &v["files"], &v["rows"], &v["version"]],
        [
            &serde_json::json!("klines"),
            &4.into(),
            &5_760.into(),
            &1.into()
        ]
    );
    let info = json_ok(&run(&["info", s(&typed_copy), "--json"]));
    assert_eq!(
        typed(&info),
        [
            "exchange:str",
            "symbol:str",
            "timeframe:str",
            "year:i32",
            "month:i16",
            "day:i64"
        ]
    );
    assert_eq!(
        info["key"],
        serde_json::json!(["exchange", "symbol", "timeframe", "timestamp"])
    );
    let df = Dataset::open(&typed_copy)
        .unwrap()
        .scan(&Default::default())
        .unwrap()
        .collect()
        .unwrap();
    let years = df
        .column("year")
        .unwrap()
        .i32()
        .unwrap()
        .unique()
        .unwrap()
        .sort(false);
    assert_eq!(years.into_no_null_iter().collect::<Vec<_>>(), [2024, 2025]);
    assert_eq!(df.height(), 5_760);

    let refused = copy("refused");
    let before = snapshot(&refused);
    let out = run(&["adopt", s(&refused), "--hive-schema", "year"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--hive-schema \"year\": expected NAME=DTYPE"),
        "{}",
        stderr(&out)
    );
    assert_eq!(snapshot(&refused), before);
}

#[test]
fn materialize_reads_the_version_asked_for() {
    let dir = tmp();
    let base = dir.path().join("src");
    let ds = klines_dataset(&base);
    ds.write(candles(JAN5, 5, 1.0).lazy(), &kline_opts("BTCUSDT"))
        .unwrap();
    ds.write(candles(JAN5, 5, 100.0).lazy(), &kline_opts("BTCUSDT"))
        .unwrap();
    assert_eq!(ds.header().version, 2);
    let closes = |to: &Path| floats(&read_sorted(&Dataset::open(to).unwrap()), "close");
    for (version, want) in [
        (Some("1"), [1.0, 2.0, 3.0, 4.0, 5.0]),
        (None, [100.0, 101.0, 102.0, 103.0, 104.0]),
    ] {
        let to = dir.path().join(format!("view-{version:?}"));
        let mut args = vec!["materialize", s(&base), "--to", s(&to), "--json"];
        if let Some(v) = version {
            args.extend(["--version", v]);
        }
        let r = json_ok(&run(&args));
        assert_eq!(r["rows_written"], 5, "{r}");
        assert_eq!(closes(&to), want, "{version:?}");
        let source = Dataset::open(&to)
            .unwrap()
            .manifest()
            .unwrap()
            .source
            .clone()
            .unwrap();
        assert_eq!(
            source["version"],
            version.map_or(2, |v| v.parse().unwrap()),
            "{source}"
        );
    }
    // scan --version reads the same old rows.
    let v1 = text_ok(&[
        "scan",
        s(&base),
        "--version",
        "1",
        "--columns",
        "close",
        "--format",
        "csv",
    ]);
    assert_eq!(v1, "close\n1.0\n2.0\n3.0\n4.0\n5.0\n");
    let to = dir.path().join("view-none");
    let out = run(&["materialize", s(&base), "--to", s(&to), "--version", "3"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!to.exists());
}

/// `--as-of` reads the version that was current at an instant (the newest committed at or before
/// it), in `scan` and `materialize` as in the library; an instant before the oldest kept version,
/// or one given with a version number too, is refused.
#[test]
fn as_of_reads_the_version_current_at_an_instant() {
    let dir = tmp();
    let base = dir.path().join("src");
    let ds = klines_dataset(&base);
    ds.write(candles(JAN5, 5, 1.0).lazy(), &kline_opts("BTCUSDT"))
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let between = chrono::Utc::now();
    std::thread::sleep(std::time::Duration::from_millis(20));
    ds.write(candles(JAN5, 5, 100.0).lazy(), &kline_opts("BTCUSDT"))
        .unwrap();
    let at = between.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let at_ms = between.timestamp_millis().to_string();
    let csv = |extra: &[&str]| {
        let mut args = vec!["scan", s(&base), "--columns", "close", "--format", "csv"];
        args.extend(extra);
        text_ok(&args)
    };
    let old = "close\n1.0\n2.0\n3.0\n4.0\n5.0\n";
    assert_eq!(csv(&["--as-of", &at]), old);
    assert_eq!(csv(&["--as-of", &at_ms]), old);
    assert_eq!(csv(&["--as-of", "2100-01-01"]), csv(&[]));
    assert_ne!(csv(&[]), old);
    let df = ds
        .read(&pqdm::ScanOptions {
            as_of: Some(between.timestamp_millis()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(floats(&df, "close"), [1.0, 2.0, 3.0, 4.0, 5.0]);

    let to = dir.path().join("view");
    let r = json_ok(&run(&[
        "materialize",
        s(&base),
        "--to",
        s(&to),
        "--as-of",
        &at,
        "--json",
    ]));
    assert_eq!(r["rows_written"], 5, "{r}");
    let source = Dataset::open(&to)
        .unwrap()
        .manifest()
        .unwrap()
        .source
        .clone()
        .unwrap();
    assert_eq!(source["version"], 1, "{source}");

    let out = run(&["scan", s(&base), "--as-of", "2020-01-01"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(
            "no kept version was committed at or before 2020-01-01T00:00:00.000Z (the oldest kept, version 0, was committed at "
        ),
        "{}",
        stderr(&out)
    );
    let out = run(&["scan", s(&base), "--as-of", "yesterday"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--as-of \"yesterday\": expected a time"),
        "{}",
        stderr(&out)
    );
    let out = run(&["scan", s(&base), "--as-of", &at, "--version", "1"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let both = ds.read(&pqdm::ScanOptions {
        version: Some(1),
        as_of: Some(between.timestamp_millis()),
        ..Default::default()
    });
    assert!(
        both.is_err_and(|e| e.to_string().contains("not both")),
        "a version and an instant"
    );
}

/// `scan --output --json` for `base` with `args`, `env` and working folder `cwd`: the batch
/// choice it reports, and the CSV it wrote.
fn batch(
    base: &Path,
    cwd: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (serde_json::Value, String) {
    let out_file = cwd.join("out.csv");
    let mut cmd = bin();
    cmd.current_dir(cwd).args([
        "scan",
        s(base),
        "--columns",
        "timestamp,close",
        "--format",
        "csv",
        "--output",
        s(&out_file),
        "--json",
    ]);
    cmd.args(args).envs(env.iter().copied());
    let v = json_ok(&cmd.output().unwrap());
    let csv = std::fs::read_to_string(&out_file).unwrap();
    (v["batch"].clone(), csv)
}

/// Flags, variables and the batch choice a scan with them reports.
type BatchCase<'a> = (&'a [&'a str], Vec<(&'a str, &'a str)>, serde_json::Value);

#[test]
fn scan_batch_settings_resolve_flag_environment_config_then_width() {
    let dir = tmp();
    let base = dir.path().join("ds");
    let ds = klines_dataset(&base);
    ds.write(candles(JAN5, 3, 1.0).lazy(), &kline_opts("BTCUSDT"))
        .unwrap();
    let cwd = dir.path().join("cwd");
    std::fs::create_dir(&cwd).unwrap();
    let want_csv = "timestamp,close\n1704412800000,1.0\n1704412860000,2.0\n1704412920000,3.0\n";
    // Two 8-byte columns: 16 bytes a row.
    let auto = |rows: u64, target: u64| serde_json::json!({"rows": rows, "row_bytes": 16, "target_bytes": target, "source": "auto"});
    let set = |rows: u64, source: &str| serde_json::json!({"rows": rows, "row_bytes": 16, "target_bytes": rows * 16, "source": source});
    let mib = [("PQDM_BATCH_BYTES", "1MiB")];
    let cases: Vec<BatchCase> = vec![
        (&[], mib.to_vec(), auto(65_536, 1 << 20)),
        (
            &[],
            vec![mib[0], ("PQDM_BLANK_MODE", "1")],
            auto(4_096, 1 << 16),
        ),
        (
            &[],
            vec![mib[0], ("PQDM_BLANK_MODE", "yes")],
            auto(65_536, 1 << 20),
        ),
        (
            &[],
            vec![("PQDM_BATCH_BYTES", "1KiB")],
            auto(1_024, 1 << 10),
        ),
        (
            &[],
            vec![mib[0], ("PQDM_SCAN_BATCH_SIZE", "")],
            auto(65_536, 1 << 20),
        ),
        (
            &[],
            vec![("PQDM_SCAN_BATCH_SIZE", "1000")],
            set(1_000, "env"),
        ),
        (&[], vec![("ARES_SCAN_BATCH_SIZE", "900")], set(900, "env")),
        (
            &[],
            vec![
                ("PQDM_SCAN_BATCH_SIZE", "1000"),
                ("ARES_SCAN_BATCH_SIZE", "900"),
            ],
            set(1_000, "env"),
        ),
        (
            &[],
            vec![("ARES_SCAN_BATCH_SIZE", "900"), ("PQDM_BLANK_MODE", "1")],
            set(450, "env"),
        ),
        (
            &["--batch-size", "300"],
            vec![("PQDM_SCAN_BATCH_SIZE", "1000")],
            set(300, "flag"),
        ),
        (
            &["--batch-size", "1"],
            vec![("PQDM_BLANK_MODE", "1")],
            set(1, "flag"),
        ),
    ];
    for (args, env, want) in &cases {
        let (got, csv) = batch(&base, &cwd, args, env);
        assert_eq!(&got, want, "{args:?} {env:?}");
        assert_eq!(csv, want_csv, "{args:?} {env:?}");
    }
    // An empty PQDM_BATCH_BYTES counts as unset, like every other setting: 64 MiB (or less on
    // a machine short of memory).
    let (got, _) = batch(&base, &cwd, &[], &[("PQDM_BATCH_BYTES", "")]);
    let target = got["target_bytes"].as_u64().unwrap();
    assert!((1 << 20..=64 << 20).contains(&target), "{got}");
    assert_eq!(got["rows"].as_u64().unwrap(), target / 16, "{got}");

    // pqdm.toml in the working folder is read; the environment and --config come before it.
    std::fs::write(cwd.join("pqdm.toml"), "[scan]\nbatch_size = 700\n").unwrap();
    let other = dir.path().join("other.toml");
    std::fs::write(&other, "[scan]\nbatch_size = 600\n").unwrap();
    let explicit = ["--config", s(&other)];
    let config_cases: Vec<BatchCase> = vec![
        (&[], vec![], set(700, "config")),
        (&[], vec![("PQDM_BLANK_MODE", "1")], set(350, "config")),
        (&[], vec![("ARES_SCAN_BATCH_SIZE", "900")], set(900, "env")),
        (&explicit, vec![], set(600, "config")),
    ];
    for (args, env, want) in config_cases {
        assert_eq!(batch(&base, &cwd, args, &env).0, want, "{args:?} {env:?}");
    }
    for (env, name) in [
        (("ARES_SCAN_BATCH_SIZE", "0"), "ARES_SCAN_BATCH_SIZE"),
        (("PQDM_SCAN_BATCH_SIZE", "x"), "PQDM_SCAN_BATCH_SIZE"),
        (
            ("PQDM_BATCH_BYTES", "lots"),
            "error: invalid option: environment variable PQDM_BATCH_BYTES: size `lots`: expected a number",
        ),
    ] {
        std::fs::remove_file(cwd.join("pqdm.toml")).ok();
        let out = run_env(&["scan", s(&base), "--format", "csv"], &[env]);
        assert_eq!(out.status.code(), Some(1), "{env:?}");
        assert!(stderr(&out).contains(name), "{env:?}: {}", stderr(&out));
    }
}

#[test]
fn kinds_flag_declares_a_kind_for_ingest() {
    let dir = tmp();
    let kinds = dir.path().join("kinds.toml");
    std::fs::write(&kinds, BARS_KIND).unwrap();
    let csv = dir.path().join("bars.csv");
    std::fs::write(
        &csv,
        "timestamp,symbol,close\n2024-01-05,btcusdt,1.5\n2024-01-05T00:01:00Z,ETHUSDT,2.5\n",
    )
    .unwrap();
    let base = dir.path().join("bars");
    let args = ["ingest", s(&csv), "--dataset", s(&base), "--kind", "bars"];
    let out = run(&args);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("unknown kind `bars`"),
        "{}",
        stderr(&out)
    );
    assert!(!base.exists());
    json_ok(&run(
        &[&args[..], &["--kinds", s(&kinds), "--json"]].concat()
    ));
    let info = json_ok(&run(&["info", s(&base), "--json"]));
    assert_eq!(info["kind"], "bars");
    assert_eq!(info["key"], serde_json::json!(["symbol", "timestamp"]));
    assert_eq!(
        text_ok(&["scan", s(&base), "--format", "csv"]),
        "timestamp,close,symbol\n1704412800000,1.5,BTCUSDT\n1704412860000,2.5,ETHUSDT\n"
    );
}

// A value past a narrow column's width was typed as a null literal: `day != 300` kept no row.
#[test]
fn filter_values_past_a_columns_width_are_refused() {
    let dir = tmp();
    let base = spot_klines(dir.path());
    for filter in [
        "day != 300",
        "day not_in [5, 300]",
        "year < 40000",
        "month > -129",
    ] {
        let out = run(&["scan", s(&base), "--filter", filter, "--format", "csv"]);
        assert_eq!(out.status.code(), Some(1), "{filter}");
        let err = stderr(&out);
        let value = filter
            .rsplit([' ', '['])
            .next()
            .unwrap()
            .trim_end_matches(']');
        assert!(
            err.contains(&format!(
                "value `{value}` does not fit column `{}`",
                filter.split(' ').next().unwrap()
            )),
            "{filter}: {err}"
        );
    }
    let all = text_ok(&["scan", s(&base), "--filter", "day != 6", "--format", "csv"]);
    assert_eq!(all.lines().count(), 1 + 4 * 1440);
}

/// The threads of Polars' pool (`polars-N`) in the running process `pid`.
fn polars_threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|tasks| {
            tasks
                .flatten()
                .filter(|t| {
                    std::fs::read_to_string(t.path().join("comm"))
                        .is_ok_and(|name| name.starts_with("polars-"))
                })
                .count()
        })
        .unwrap_or(0)
}

/// Variables, working folder and the pool size they make.
type ThreadCase<'a> = (&'a [(&'a str, &'a str)], &'a Path, usize);

#[test]
fn thread_settings_size_the_polars_pool() {
    let dir = tmp();
    let base = spot_klines(dir.path());
    let configured = dir.path().join("configured");
    std::fs::create_dir(&configured).unwrap();
    std::fs::write(configured.join("pqdm.toml"), "[scan]\nthreads = 4\n").unwrap();
    let plain = workdir();
    let cases: [ThreadCase; 5] = [
        (&[("PQDM_THREADS", "3")], plain, 3),
        (&[("ARROW_NUM_THREADS", "5")], plain, 5),
        (
            &[("PQDM_THREADS", "3"), ("ARROW_NUM_THREADS", "5")],
            plain,
            3,
        ),
        (&[], &configured, 4),
        (
            &[("PQDM_THREADS", ""), ("ARROW_NUM_THREADS", "2")],
            &configured,
            2,
        ),
    ];
    for (env, cwd, want) in cases {
        let mut child = bin()
            .args(["scan", s(&base), "--format", "csv"])
            .envs(env.iter().copied())
            .current_dir(cwd)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Its ~600 KB of CSV do not fit the pipe nobody reads yet: it waits there, its pool
        // built (all of a pool's threads start together; a moment is left for the last).
        let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while polars_threads(child.id()) == 0 {
            assert!(std::time::Instant::now() < until, "{env:?}: no Polars pool");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
        let threads = polars_threads(child.id());
        let mut csv = String::new();
        std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut csv).unwrap();
        assert!(child.wait().unwrap().success(), "{env:?}");
        assert_eq!(csv.lines().count(), 1 + 4 * 1440, "{env:?}");
        assert_eq!(threads, want, "{env:?} in {cwd:?}");
    }
}

#[test]
fn compact_min_small_files_leaves_partitions_with_that_many_or_fewer() {
    let dir = tmp();
    let ds = klines_dataset(dir.path());
    // BTCUSDT's day in 3 small files, ETHUSDT's in 2.
    for (symbol, parts) in [("BTCUSDT", 3), ("ETHUSDT", 2)] {
        for part in 0..parts {
            ds.write(
                candles(JAN5 + part * 600_000, 10, 1.0).lazy(),
                &kline_opts(symbol),
            )
            .unwrap();
        }
    }
    let rows = read_sorted(&ds);
    let compact = |n: &str| {
        json_ok(&run(&[
            "compact",
            s(dir.path()),
            "--min-small-files",
            n,
            "--json",
        ]))
    };
    assert_eq!(compact("3")["version"], serde_json::Value::Null);
    let v = compact("2");
    assert_eq!(
        [
            &v["partitions"],
            &v["files_before"],
            &v["files_after"],
            &v["rows"]
        ],
        [1, 3, 1, 30]
    );
    let files = parquet_files(dir.path());
    assert_eq!(
        files
            .iter()
            .filter(|f| f.contains("symbol=BTCUSDT"))
            .count(),
        1
    );
    assert_eq!(
        files
            .iter()
            .filter(|f| f.contains("symbol=ETHUSDT"))
            .count(),
        2
    );
    assert_eq!(read_sorted(&Dataset::open(dir.path()).unwrap()), rows);
}

/// A Binance-like CSV of one-minute BTCUSDT candles for minutes `from..to` of 2024-01-01.
fn minutes_csv(dir: &Path, from: i64, to: i64) -> PathBuf {
    let start = 1_704_067_200_000i64;
    let text: String = (from..to)
        .map(|i| {
            let t = start + i * 60_000;
            format!("{t},1.5,2.5,1.0,{i},10.0,{},20.0,5,4.0,8.0,0\n", t + 59_999)
        })
        .collect();
    let folder = dir.join(format!("m{from}"));
    std::fs::create_dir_all(&folder).unwrap();
    let path = folder.join("BTCUSDT-1m-2024-01-01.csv");
    std::fs::write(&path, text).unwrap();
    path
}

/// Issue 17, item 3: automatic compaction. A dataset created with `--auto-compact 2` compacts
/// the day a write touched once it holds three small files (one commit for the write, one for
/// the compaction, both in the report); `--compact N` does it for one run; the rows stay exact.
#[test]
fn writes_compact_the_partitions_they_touched_once_they_hold_too_many_small_files() {
    let dir = tmp();
    let base = dir.path().join("ds");
    let ingest = |from: i64, extra: &[&str]| {
        let csv = minutes_csv(dir.path(), from, from + 10);
        let mut args = vec![
            "ingest",
            csv.to_str().unwrap(),
            "--dataset",
            s(&base),
            "--kind",
            "klines",
            "--json",
        ];
        args.extend_from_slice(extra);
        json_ok(&run(&args))
    };
    let first = ingest(0, &["--auto-compact", "2"]);
    assert!(first.get("compaction").is_none(), "{first}");
    assert!(ingest(10, &[]).get("compaction").is_none());
    let third = ingest(20, &[]);
    assert_eq!(third["version"], 3);
    let c = &third["compaction"];
    assert_eq!(
        [
            &c["version"],
            &c["partitions"],
            &c["files_before"],
            &c["files_after"],
            &c["rows"]
        ],
        [4, 1, 3, 1, 30],
        "{third}"
    );
    assert!(c["wall_ms"].is_u64() && c["peak_rss_bytes"].as_u64().unwrap() > 0);
    let ds = Dataset::open(&base).unwrap();
    assert_eq!(ds.manifest().unwrap().settings.auto_compact, Some(2));
    assert_eq!(ds.manifest().unwrap().files.len(), 1);
    assert_eq!(
        f64s(&read_sorted(&ds), "close"),
        (0..30).map(|i| i as f64).collect::<Vec<_>>()
    );
    // Two more small files: not over the setting's 2, so no compaction...
    assert!(ingest(30, &[]).get("compaction").is_none());
    // ...unless this run asks for more than 1.
    let asked = ingest(40, &["--compact", "1"]);
    assert_eq!(asked["compaction"]["files_before"], 3, "{asked}");
    assert_eq!(
        Dataset::open(&base)
            .unwrap()
            .manifest()
            .unwrap()
            .files
            .len(),
        1
    );
    let text = text_ok(&[
        "ingest",
        minutes_csv(dir.path(), 50, 60).to_str().unwrap(),
        "--dataset",
        s(&base),
        "--compact",
        "1",
    ]);
    assert!(
        text.contains("then compacted 1 partitions (2 files into 1) as version"),
        "{text}"
    );
    // A compaction failing after the write's commit point: the write succeeded and says so,
    // with a warning; the partition keeps its two files, nothing staged is left.
    let csv = minutes_csv(dir.path(), 60, 70);
    let out = bin()
        .args([
            "ingest",
            csv.to_str().unwrap(),
            "--dataset",
            s(&base),
            "--compact",
            "1",
            "--json",
        ])
        .env("PQDM_FAILPOINTS", "compact.written=error")
        .output()
        .unwrap();
    let v = json_ok(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(v.get("compaction").is_none(), "{v}");
    assert!(
        err.contains("compacting the partitions it touched failed"),
        "{err}"
    );
    let ds = Dataset::open(&base).unwrap();
    assert_eq!(ds.header().version, v["version"].as_u64().unwrap());
    assert_eq!(ds.manifest().unwrap().files.len(), 2);
    assert_eq!(f64s(&read_sorted(&ds), "close").len(), 70);
    assert!(staged_nothing(&base), "staging left behind");
}

/// Whether no file is staged under `base`'s staging folder.
fn staged_nothing(base: &Path) -> bool {
    std::fs::read_dir(base.join("_pqdm/staging"))
        .map(|d| {
            d.flatten()
                .all(|e| e.path().extension().is_some_and(|x| x == "lock"))
        })
        .unwrap_or(true)
}

/// `--json` makes `scan` print its rows as JSON lines (what `--format json` prints) when no
/// format is named; a named format wins, and without `--json` the table stays the default.
#[test]
fn json_flag_makes_scan_print_json_lines() {
    let dir = tmp();
    let ds = klines_dataset(dir.path());
    ds.write(
        candles(1_704_412_800_000, 2, 1.5).lazy(),
        &kline_opts("BTCUSDT"),
    )
    .unwrap();
    let base = s(ds.base());
    let scan = |extra: &[&str]| {
        let out = run(&[extra, &["scan", base, "--columns", "timestamp,close"]].concat());
        assert!(out.status.success(), "{}", stderr(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    let lines = "{\"close\":1.5,\"timestamp\":1704412800000}\n{\"close\":2.5,\"timestamp\":1704412860000}\n";
    assert_eq!(scan(&["--json"]), lines);
    let out = run(&[
        "scan",
        base,
        "--columns",
        "timestamp,close",
        "--format",
        "json",
    ]);
    assert_eq!(String::from_utf8(out.stdout).unwrap(), lines);
    let csv = run(&[
        "--json",
        "scan",
        base,
        "--columns",
        "timestamp,close",
        "--format",
        "csv",
    ]);
    assert_eq!(
        String::from_utf8(csv.stdout).unwrap(),
        "timestamp,close\n1704412800000,1.5\n1704412860000,2.5\n"
    );
    assert!(scan(&[]).starts_with("shape: (2, 2)"));
}
