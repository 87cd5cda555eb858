//! Input fidelity (issue 19): every real-world file is read exactly, or refused with a reason.
//! One regression test per finding, a seeded differential test against pyarrow and DuckDB, a
//! Binance public-data tree ingested in one command, and properties of the header sniffer and
//! the file-name parser.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Output;

use polars::prelude::*;
use pqdm::Dataset;
use pqdm::source::{NameHints, sniff};
use proptest::prelude::*;

use crate::common::{data_dir, parquet_files, py, run, snapshot, stderr, tmp};

/// `pqdm ingest` with `args` after the sources.
fn ingest(sources: &[&Path], base: &Path, args: &[&str]) -> Output {
    let mut all: Vec<String> = vec!["ingest".into()];
    all.extend(sources.iter().map(|s| s.display().to_string()));
    all.extend([
        "--dataset".into(),
        base.display().to_string(),
        "--quiet".into(),
    ]);
    all.extend(args.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    run(&refs)
}

/// Asserts the command succeeded; its JSON report when it printed one.
fn ok(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", stderr(out));
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

/// Asserts the command was refused (exit 1, not a panic) with every one of `parts` in its error.
fn refused(out: &Output, parts: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for p in parts {
        assert!(err.contains(p), "expected `{p}` in: {err}");
    }
}

/// Every stored row, sorted by the dataset's key.
fn stored(base: &Path) -> DataFrame {
    let ds = Dataset::open(base).unwrap();
    crate::common::read_sorted(&ds)
}

fn i64s(df: &DataFrame, c: &str) -> Vec<Option<i64>> {
    df.column(c).unwrap().i64().unwrap().iter().collect()
}

fn f64s(df: &DataFrame, c: &str) -> Vec<f64> {
    df.column(c)
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .map(|v| v.unwrap())
        .collect()
}

fn strs(df: &DataFrame, c: &str) -> Vec<String> {
    df.column(c)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|v| v.unwrap_or_default().to_string())
        .collect()
}

fn bools(df: &DataFrame, c: &str) -> Vec<Option<bool>> {
    df.column(c).unwrap().bool().unwrap().iter().collect()
}

fn write(path: &Path, text: impl AsRef<[u8]>) -> PathBuf {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    path.to_path_buf()
}

/// Binance's headerless 1m kline lines: `n` candles from `start` ms, closes from `price`.
fn kline_lines(start: i64, n: i64, price: f64) -> Vec<String> {
    (0..n)
        .map(|i| {
            let t = start + i * 60_000;
            let p = price + i as f64;
            format!("{t},{p},{p},{p},{p},1.5,{},3.5,7,0.5,1.5,0", t + 59_999)
        })
        .collect()
}

/// A zip archive at `path` holding `name` with `text`.
fn zip_file(path: &Path, name: &str, text: &str) -> PathBuf {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut z = ::zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    z.start_file(name, ::zip::write::SimpleFileOptions::default())
        .unwrap();
    z.write_all(text.as_bytes()).unwrap();
    z.finish().unwrap();
    path.to_path_buf()
}

const JAN5: i64 = 1_704_412_800_000;
const KLINE_HEADER: &str = "open_time,open,high,low,close,volume,close_time,quote_volume,count";
const SERIES: &[&str] = &[
    "--kind",
    "klines",
    "--exchange",
    "BINANCE",
    "--symbol",
    "BTCUSDT",
    "--timeframe",
    "1m",
];

// Finding 1: dictionary-encoded Parquet columns are decoded before the cast.
#[test]
fn dictionary_parquet_columns_are_decoded_to_their_values() {
    let dir = tmp();
    let file = dir.path().join("dict.parquet");
    py(
        r#"
import sys, pyarrow as pa, pyarrow.parquet as pq
ids = pa.array([1, 2, 3])
pq.write_table(pa.table({
    "agg_trade_id": ids,
    "price": pa.array(["42000.5", "42001.25", "42000.5"]).dictionary_encode(),
    "quantity": pa.array([0.5, 0.25, 0.5]).dictionary_encode(),
    "first_trade_id": ids, "last_trade_id": ids,
    "transact_time": pa.array(["2024-01-05T00:00:00Z", "2024-01-05T00:01:00Z", "2024-01-05T00:01:00Z"]).dictionary_encode(),
    "is_buyer_maker": pa.array(["true", "false", "true"]).dictionary_encode(),
}), sys.argv[1])
"#,
        &[file.to_str().unwrap()],
    );
    let base = dir.path().join("ds");
    ok(&ingest(
        &[&file],
        &base,
        &[
            "--kind",
            "aggtrades",
            "--exchange",
            "BINANCE",
            "--symbol",
            "BTCUSDT",
        ],
    ));
    let df = stored(&base);
    assert_eq!(
        i64s(&df, "timestamp"),
        [Some(JAN5), Some(JAN5 + 60_000), Some(JAN5 + 60_000)]
    );
    assert_eq!(f64s(&df, "price"), [42000.5, 42001.25, 42000.5]);
    assert_eq!(f64s(&df, "quantity"), [0.5, 0.25, 0.5]);
    assert_eq!(
        bools(&df, "is_buyer_maker"),
        [Some(true), Some(false), Some(true)]
    );
}

// Finding 2: spot, USDⓈ-M and mark-price files of one name are kept apart by exchange value;
// where the folders cannot tell them apart, nothing overwrites anything silently.
#[test]
fn spot_and_futures_files_of_one_name_are_kept_apart() {
    let dir = tmp();
    let base = dir.path().join("klines");
    let spot = data_dir().join("spot/klines/BTCUSDT-1m-2024-01-05.zip");
    let um = data_dir().join("futures/um/klines/BTCUSDT-1m-2024-01-05.csv");
    ok(&ingest(&[&spot, &um], &base, &["--kind", "klines"]));
    let mark = dir
        .path()
        .join("futures/um/daily/markPriceKlines/BTCUSDT/1m/BTCUSDT-1m-2024-01-05.csv");
    std::fs::create_dir_all(mark.parent().unwrap()).unwrap();
    std::fs::copy(&um, &mark).unwrap();
    ok(&ingest(&[&mark], &base, &[]));
    // Each exchange holds its own file's candles, read here from the raw text: open time and
    // close of every line (the mark-price file is a copy of the USDⓈ-M one).
    let raw = |text: String| -> Vec<(i64, f64)> {
        text.lines()
            .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (f[0].parse().unwrap(), f[4].parse().unwrap())
            })
            .collect()
    };
    let mut archive = ::zip::ZipArchive::new(std::fs::File::open(&spot).unwrap()).unwrap();
    let mut spot_text = String::new();
    std::io::Read::read_to_string(&mut archive.by_index(0).unwrap(), &mut spot_text).unwrap();
    let um_rows = raw(std::fs::read_to_string(&um).unwrap());
    let df = stored(&base);
    let by_exchange = |exchange: &str| -> Vec<(i64, f64)> {
        let part = df
            .clone()
            .lazy()
            .filter(col("exchange").eq(lit(exchange)))
            .collect()
            .unwrap();
        i64s(&part, "timestamp")
            .into_iter()
            .map(Option::unwrap)
            .zip(f64s(&part, "close"))
            .collect()
    };
    assert_eq!(
        strs(
            &df.unique_stable(Some(&["exchange".into()]), UniqueKeepStrategy::First, None)
                .unwrap(),
            "exchange"
        ),
        ["BINANCE", "BINANCE_UM", "BINANCE_UM_MARKPRICE"]
    );
    assert_eq!(um_rows.len(), 1440);
    assert_eq!(by_exchange("BINANCE"), raw(spot_text));
    assert_eq!(by_exchange("BINANCE_UM"), um_rows);
    assert_eq!(by_exchange("BINANCE_UM_MARKPRICE"), um_rows);
    // One exchange for both markets: refused, naming both files, and nothing is written.
    let before = snapshot(dir.path());
    refused(
        &ingest(&[&spot, &um], &base, &["--exchange", "BINANCE"]),
        &[
            "BTCUSDT-1m-2024-01-05.zip",
            "BTCUSDT-1m-2024-01-05.csv",
            "would be stored as the same rows (exchange BINANCE, symbol BTCUSDT, timeframe 1m)",
            "separate writes with different exchange values",
        ],
    );
    // The same name in two folders that are not Binance's: pqdm cannot tell, so it refuses.
    let a = dir.path().join("a/BTCUSDT-1m-2024-01-05.csv");
    let b = dir.path().join("b/BTCUSDT-1m-2024-01-05.csv");
    write(&a, kline_lines(JAN5, 2, 1.0).join("\n"));
    write(&b, kline_lines(JAN5, 2, 2.0).join("\n"));
    let before_ab = snapshot(dir.path());
    refused(
        &ingest(&[&a, &b], &base, &[]),
        &["unknown market", "would be stored as the same rows"],
    );
    assert_eq!(snapshot(dir.path()), before_ab);
    std::fs::remove_dir_all(dir.path().join("a")).unwrap();
    std::fs::remove_dir_all(dir.path().join("b")).unwrap();
    assert_eq!(snapshot(dir.path()), before);
}

// Finding 3: DECIMAL columns are read (exactly, through their text), and a decimal that does
// not fit its column is refused with column and value; no input panics.
#[test]
fn decimal_parquet_columns_are_read_exactly() {
    let dir = tmp();
    let good = dir.path().join("dec.parquet");
    let bad = dir.path().join("dec-bad.parquet");
    py(
        r#"
import sys, decimal, pyarrow as pa, pyarrow.parquet as pq
D = decimal.Decimal
def table(ids):
    return pa.table({
        "agg_trade_id": pa.array([D(i) for i in ids], pa.decimal128(20, 2)),
        "price": pa.array([D("42000.12345678"), D("0.00000001")], pa.decimal128(18, 8)),
        "quantity": pa.array([D("1.5"), D("0.0000000001")], pa.decimal128(38, 10)),
        "first_trade_id": pa.array([1, 2]), "last_trade_id": pa.array([1, 2]),
        "timestamp": pa.array([1704412800000, 1704412860000]),
        "is_buyer_maker": pa.array([True, False]),
    })
pq.write_table(table(["7", "8"]), sys.argv[1])
pq.write_table(table(["7", "8.5"]), sys.argv[2])
"#,
        &[good.to_str().unwrap(), bad.to_str().unwrap()],
    );
    let base = dir.path().join("ds");
    let flags = ["--kind", "aggtrades", "--exchange", "X", "--symbol", "Y"];
    ok(&ingest(&[&good], &base, &flags));
    let df = stored(&base);
    assert_eq!(i64s(&df, "agg_trade_id"), [Some(7), Some(8)]);
    assert_eq!(f64s(&df, "price"), [42000.12345678, 0.00000001]);
    assert_eq!(f64s(&df, "quantity"), [1.5, 1e-10]);
    let before = snapshot(dir.path());
    refused(
        &ingest(&[&bad], &base, &flags),
        &[
            "dec-bad.parquet",
            "column `agg_trade_id`, row 2",
            "\"8.50\"",
            "i64",
        ],
    );
    assert_eq!(snapshot(dir.path()), before);
}

// Finding 4: a fraction or an overflow in an integer column is refused, or nulled and counted.
#[test]
fn floats_in_integer_columns_are_refused_not_truncated() {
    let dir = tmp();
    let base = dir.path().join("ds");
    let line = |count: &str| format!("{JAN5},1,1,1,1,1,{},1,{count}", JAN5 + 59_999);
    for (name, value) in [("frac.csv", "503.7"), ("huge.csv", "1e30")] {
        let f = write(
            &dir.path().join(name),
            format!("{KLINE_HEADER}\n{}\n", line(value)),
        );
        let before = snapshot(dir.path());
        refused(
            &ingest(&[&f], &base, SERIES),
            &[
                name,
                "column `count`, row 1",
                &format!("\"{value}\""),
                "i64",
            ],
        );
        assert_eq!(snapshot(dir.path()), before);
    }
    // Whole numbers written as floats are the integers they say.
    let f = write(
        &dir.path().join("whole.csv"),
        format!("{KLINE_HEADER}\n{}\n", line("5e2")),
    );
    ok(&ingest(&[&f], &base, SERIES));
    assert_eq!(i64s(&stored(&base), "trades"), [Some(500)]);
    // Lenient: nulled, and counted in the report.
    let f = write(
        &dir.path().join("frac2.csv"),
        format!("{KLINE_HEADER}\n{}\n", line("503.7")),
    );
    let report = ok(&ingest(
        &[&f],
        &base,
        &[SERIES, &["--lenient", "--json"]].concat(),
    ));
    assert_eq!(report["nulled"]["count"], 1);
    assert_eq!(i64s(&stored(&base), "trades"), [None]);
}

// Finding 5: YYYYMMDD dates, and integers that are no plausible epoch time.
#[test]
fn integer_timestamps_are_read_by_band_or_declared_unit() {
    let dir = tmp();
    let base = dir.path().join("ds");
    let flags = ["--kind", "split", "--exchange", "X", "--symbol", "Y"];
    let dates = write(
        &dir.path().join("dates.csv"),
        "date,label\n20240105,1\n20240106,0\n",
    );
    ok(&ingest(&[&dates], &base, &flags));
    assert_eq!(
        i64s(&stored(&base), "timestamp"),
        [Some(JAN5), Some(JAN5 + 86_400_000)]
    );
    // 1970-01-02 in milliseconds used to be read as seconds (1972-09-27): now it is refused...
    let early = write(
        &dir.path().join("early.csv"),
        "timestamp,label\n1704412800000,1\n86400000,0\n",
    );
    let before = snapshot(dir.path());
    refused(
        &ingest(&[&early], &base, &flags),
        &[
            "early.csv",
            "column `timestamp`, row 2",
            "\"86400000\"",
            "from 1990-01-01",
        ],
    );
    assert_eq!(snapshot(dir.path()), before);
    // ... unless the unit is declared.
    let other = dir.path().join("other");
    ok(&ingest(
        &[&early],
        &other,
        &[&flags[..], &["--timestamp-unit", "ms"]].concat(),
    ));
    assert_eq!(
        i64s(&stored(&other), "timestamp"),
        [Some(86_400_000), Some(JAN5)]
    );
}

// Finding 6: blank lines are skipped and counted, strict or lenient; nothing lands in
// `__HIVE_DEFAULT_PARTITION__`.
#[test]
fn blank_lines_are_skipped_and_counted() {
    let dir = tmp();
    let lines = kline_lines(JAN5, 3, 1.0);
    let text = format!("{}\r\n\r\n{}\r\n{}\r\n\r\n", lines[0], lines[1], lines[2]);
    let f = write(&dir.path().join("BTCUSDT-1m-2024-01-05.csv"), text);
    for lenient in [false, true] {
        let base = dir.path().join(format!("ds-{lenient}"));
        let mut args = vec!["--kind", "klines", "--json"];
        if lenient {
            args.push("--lenient");
        }
        let report = ok(&ingest(&[&f], &base, &args));
        assert_eq!(report["blank_lines_skipped"], 2);
        assert_eq!(report["rows_written"], 3);
        assert_eq!(
            i64s(&stored(&base), "timestamp"),
            [Some(JAN5), Some(JAN5 + 60_000), Some(JAN5 + 120_000)]
        );
        assert!(
            parquet_files(&base)
                .iter()
                .all(|p| !p.contains("__HIVE_DEFAULT_PARTITION__"))
        );
    }
}

/// Found while checking a red team's find: a headerless file whose line lost its line break
/// (line 3 runs into line 4: one line of 23 fields) stored line 3's candle and dropped line 4's
/// silently, as Polars stops reading each line after the columns a write needs. The line is
/// named, nothing is written, the same inside a folder of daily files; a quoted field holding
/// the separator is one field.
#[test]
fn a_headerless_line_of_more_fields_than_the_first_is_refused_by_number() {
    let dir = tmp();
    let lines = kline_lines(JAN5, 5, 1.0);
    let joined = format!(
        "{}\n{}\n{}{}\n{}\n",
        lines[0], lines[1], lines[2], lines[3], lines[4]
    );
    let day = dir.path().join("in/BTCUSDT-1m-2024-01-05.csv");
    write(&day, &joined);
    let next = kline_lines(JAN5 + 86_400_000, 3, 9.0).join("\n");
    write(&dir.path().join("in/BTCUSDT-1m-2024-01-06.csv"), next);
    let base = dir.path().join("ds");
    let good = write(
        &dir.path().join("good/BTCUSDT-1m-2024-01-05.csv"),
        &lines[0],
    );
    ok(&ingest(&[&good], &base, &["--kind", "klines"]));
    let before = snapshot(&base);
    for source in [day.clone(), dir.path().join("in")] {
        let out = ingest(&[&source], &base, &["--kind", "klines"]);
        refused(
            &out,
            &[
                "BTCUSDT-1m-2024-01-05.csv",
                "line 3 has 23 fields, the first line 12",
            ],
        );
        assert_eq!(snapshot(&base), before, "{}", source.display());
    }
    // A quoted field with a comma in it is one field.
    let quoted: Vec<String> = kline_lines(JAN5, 2, 1.0)
        .iter()
        .map(|l| format!("{},\"0,0\"", l.strip_suffix(",0").unwrap()))
        .collect();
    let f = write(
        &dir.path().join("quoted/BTCUSDT-1m-2024-01-05.csv"),
        quoted.join("\n"),
    );
    let report = ok(&ingest(
        &[&f],
        &dir.path().join("q"),
        &["--kind", "klines", "--json"],
    ));
    assert_eq!(report["rows_written"], 2);
    // A stray quote that no later line closes is named by its line (Polars read the rest of
    // the file as one field and failed quoting it, naming no line); nothing is written.
    let mut stray = kline_lines(JAN5, 4, 1.0);
    stray[2] = stray[2].replacen(',', ",\"", 1);
    let f = write(
        &dir.path().join("stray/BTCUSDT-1m-2024-01-05.csv"),
        stray.join("\n"),
    );
    let out = ingest(&[&f], &base, &["--kind", "klines"]);
    refused(
        &out,
        &[
            "BTCUSDT-1m-2024-01-05.csv",
            "line 3 opens a double quote that no later line closes",
        ],
    );
    assert_eq!(snapshot(&base), before);
    // Two quotes inside unquoted fields, on two lines: Polars read them as one quoted field
    // and stored one row of two, without a word (found by a red team). With or without a
    // header, the line is named and nothing is written.
    let mut inch = kline_lines(JAN5, 3, 1.0);
    for l in inch.iter_mut().skip(1) {
        *l = format!("{}5\"inch", l.strip_suffix('0').unwrap());
    }
    let header = "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore";
    for (name, text) in [
        ("inch", inch.join("\n")),
        ("inch-header", format!("{header}\n{}", inch.join("\n"))),
    ] {
        let f = write(
            &dir.path().join(format!("{name}/BTCUSDT-1m-2024-01-05.csv")),
            text,
        );
        let out = ingest(&[&f], &base, &["--kind", "klines"]);
        let line = if name == "inch" { 2 } else { 3 };
        refused(
            &out,
            &[&format!("line {line} holds a double quote inside a field")],
        );
        assert_eq!(snapshot(&base), before, "{name}");
    }
}

// Finding 7: a byte order mark never makes the first data row a header.
#[test]
fn byte_order_mark_on_headerless_file_is_stripped() {
    let dir = tmp();
    let text = format!("\u{feff}{}\n", kline_lines(JAN5, 2, 1.0).join("\n"));
    let f = write(&dir.path().join("BTCUSDT-1m-2024-01-05.csv"), text);
    let base = dir.path().join("ds");
    ok(&ingest(&[&f], &base, &["--kind", "klines"]));
    let df = stored(&base);
    assert_eq!(i64s(&df, "timestamp"), [Some(JAN5), Some(JAN5 + 60_000)]);
    assert_eq!(f64s(&df, "close"), [1.0, 2.0]);
}

// Finding 8: column dtypes come from the kind, not from the first 10,000 rows; a value past
// them is named with its file, row and column.
#[test]
fn csv_dtypes_do_not_depend_on_the_first_rows() {
    let dir = tmp();
    let rows = |volume_at: usize, volume: &str, count_at: usize, count: &str| {
        let mut out = vec![KLINE_HEADER.to_string()];
        for i in 1..=10_050usize {
            let t = JAN5 + (i as i64 - 1) * 60_000;
            let v = if i == volume_at { volume } else { "1" };
            let c = if i == count_at { count } else { "7" };
            out.push(format!("{t},1,1,1,1,{v},{},1,{c}", t + 59_999));
        }
        out.join("\n") + "\n"
    };
    let late = write(&dir.path().join("late.csv"), rows(10_050, "1.25", 0, "7"));
    let base = dir.path().join("ds");
    ok(&ingest(&[&late], &base, SERIES));
    let sum: f64 = f64s(&stored(&base), "volume").iter().sum();
    assert_eq!(sum, 10_049.0 + 1.25);
    let huge = write(
        &dir.path().join("huge.csv"),
        rows(0, "1", 10_020, "99999999999999999999"),
    );
    let before = snapshot(dir.path());
    refused(
        &ingest(&[&huge], &base, SERIES),
        &[
            "huge.csv",
            "column `count`, row 10020",
            "\"99999999999999999999\"",
        ],
    );
    assert_eq!(snapshot(dir.path()), before);
}

/// A path and what its name and folders say: symbol, timeframe, kind, data type, market, period.
type NameCase<'a> = (
    &'a str,
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    &'a str,
    Option<&'a str>,
    &'a str,
);

// Finding 9: COIN-M, delivery and every other Binance name pattern is recognised; a name that
// is not gets one error listing everything missing.
#[test]
fn binance_names_of_every_market_are_recognised() {
    let hints = |p: &str| NameHints::from_path(Path::new(p));
    let cases: &[NameCase] = &[
        (
            "BTCUSD_PERP-1m-2024-01-05.csv",
            "BTCUSD_PERP",
            Some("1m"),
            Some("klines"),
            "klines",
            None,
            "2024-01-05",
        ),
        (
            "futures/um/monthly/klines/BTCUSDT_240329/1h/BTCUSDT_240329-1h-2024-01.zip",
            "BTCUSDT_240329",
            Some("1h"),
            Some("klines"),
            "klines",
            Some("um"),
            "2024-01",
        ),
        (
            "futures/cm/daily/premiumIndexKlines/BTCUSD_PERP/1m/BTCUSD_PERP-1m-2024-01-05.zip",
            "BTCUSD_PERP",
            Some("1m"),
            Some("klines"),
            "premiumIndexKlines",
            Some("cm"),
            "2024-01-05",
        ),
        (
            "spot/daily/aggTrades/ETHBTC/ETHBTC-aggTrades-2024-01-05.zip",
            "ETHBTC",
            None,
            Some("aggtrades"),
            "aggTrades",
            Some("spot"),
            "2024-01-05",
        ),
        (
            "futures/cm/monthly/trades/ETHUSD_PERP/ETHUSD_PERP-trades-2024-01.zip",
            "ETHUSD_PERP",
            None,
            Some("trades"),
            "trades",
            Some("cm"),
            "2024-01",
        ),
        (
            "futures/um/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2024-01.zip",
            "BTCUSDT",
            None,
            Some("futures"),
            "fundingRate",
            Some("um"),
            "2024-01",
        ),
        (
            "futures/um/daily/bookTicker/BTCUSDT/BTCUSDT-bookTicker-2024-01-05.zip",
            "BTCUSDT",
            None,
            None,
            "bookTicker",
            Some("um"),
            "2024-01-05",
        ),
        (
            "futures/um/daily/metrics/BTCUSDT/BTCUSDT-metrics-2024-01-05.zip",
            "BTCUSDT",
            None,
            None,
            "metrics",
            Some("um"),
            "2024-01-05",
        ),
        (
            "option/daily/BVOLIndex/BTCBVOLUSDT/BTCBVOLUSDT-BVOLIndex-2024-01-05.zip",
            "BTCBVOLUSDT",
            None,
            None,
            "BVOLIndex",
            Some("option"),
            "2024-01-05",
        ),
        (
            "btcusdt-1mo-2024-01.csv",
            "BTCUSDT",
            Some("1mo"),
            Some("klines"),
            "klines",
            None,
            "2024-01",
        ),
    ];
    for (path, symbol, timeframe, kind, data_type, market, period) in cases {
        let h = hints(path);
        assert_eq!(
            h,
            NameHints {
                symbol: Some(symbol.to_string()),
                timeframe: timeframe.map(String::from),
                kind: kind.map(String::from),
                data_type: Some(data_type.to_string()),
                market: market.map(String::from),
                period: Some(period.to_string()),
            },
            "{path}"
        );
    }
    assert_eq!(
        hints("futures/cm/daily/premiumIndexKlines/X/1m/BTCUSD_PERP-1m-2024-01-05.zip").exchange(),
        Some("BINANCE_CM_PREMIUMINDEX".into())
    );
    assert_eq!(hints("candles.csv"), NameHints::default());
    // Ingested without flags.
    let dir = tmp();
    let perp = write(
        &dir.path().join("BTCUSD_PERP-1m-2024-01-05.csv"),
        kline_lines(JAN5, 2, 1.0).join("\n"),
    );
    let delivery = write(
        &dir.path().join("BTCUSDT_240329-1m-2024-01-05.csv"),
        kline_lines(JAN5, 3, 1.0).join("\n"),
    );
    let base = dir.path().join("ds");
    ok(&ingest(&[&perp, &delivery], &base, &["--kind", "klines"]));
    let symbols = strs(&stored(&base), "symbol");
    assert_eq!(
        symbols,
        [
            "BTCUSDT_240329",
            "BTCUSDT_240329",
            "BTCUSDT_240329",
            "BTCUSD_PERP",
            "BTCUSD_PERP"
        ]
    );
    // Not a Binance name: one error names every missing column and its flag.
    let plain = write(
        &dir.path().join("candles.csv"),
        kline_lines(JAN5, 1, 1.0).join("\n"),
    );
    refused(
        &ingest(&[&plain], &base, &[]),
        &[
            "candles.csv",
            "missing required columns `exchange`, `symbol`, `timeframe`",
            "--exchange --symbol --timeframe",
        ],
    );
}

// Finding 10: `+02` offsets, infinity in verify, booleans other than 0/1, lowercase symbols,
// tab- and semicolon-separated files.
#[test]
fn smaller_findings() {
    let dir = tmp();
    // `+02` is an ISO offset like `+0200` and `+02:00`.
    let offsets = write(
        &dir.path().join("offsets.csv"),
        "timestamp,label\n2024-01-05T02:00:00+02,1\n2024-01-05T02:01:00+0200,1\n2024-01-05T02:02:00+02:00,1\n",
    );
    let base = dir.path().join("split");
    ok(&ingest(
        &[&offsets],
        &base,
        &["--kind", "split", "--exchange", "X", "--symbol", "Y"],
    ));
    assert_eq!(
        i64s(&stored(&base), "timestamp"),
        [Some(JAN5), Some(JAN5 + 60_000), Some(JAN5 + 120_000)]
    );
    // A boolean 2 is refused, from text and from integers.
    let agg = |maker: &str| {
        format!(
            "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker\n1,1,1,1,1,{JAN5},{maker}\n"
        )
    };
    let two = write(&dir.path().join("two.csv"), agg("2"));
    let flags = ["--kind", "aggtrades", "--exchange", "X", "--symbol", "Y"];
    let trades = dir.path().join("agg");
    refused(
        &ingest(&[&two], &trades, &flags),
        &["two.csv", "column `is_buyer_maker`, row 1", "\"2\"", "bool"],
    );
    let ints = dir.path().join("ints.parquet");
    py(
        r#"
import sys, pyarrow as pa, pyarrow.parquet as pq
pq.write_table(pa.table({"agg_trade_id": [1, 2], "price": [1.0, 1.0], "quantity": [1.0, 1.0],
    "first_trade_id": [1, 2], "last_trade_id": [1, 2], "timestamp": [1704412800000, 1704412800001],
    "is_buyer_maker": pa.array([1, 2], pa.int8())}), sys.argv[1])
"#,
        &[ints.to_str().unwrap()],
    );
    refused(
        &ingest(&[&ints], &trades, &flags),
        &["ints.parquet", "column `is_buyer_maker`, row 2", "\"2\""],
    );
    // Lowercase symbols (file name or flag) are one market with the uppercase ones.
    let klines = dir.path().join("klines");
    let lower = write(
        &dir.path().join("btcusdt-1m-2024-01-05.csv"),
        kline_lines(JAN5, 1, 1.0).join("\n"),
    );
    let upper = write(
        &dir.path().join("BTCUSDT-1m-2024-01-05.csv"),
        kline_lines(JAN5 + 60_000, 1, 2.0).join("\n"),
    );
    ok(&ingest(&[&lower], &klines, &["--kind", "klines"]));
    ok(&ingest(&[&upper], &klines, &[]));
    let tsv = write(
        &dir.path().join("tabs.tsv.csv"),
        format!(
            "{}\n{}\n",
            KLINE_HEADER.replace(',', "\t"),
            kline_lines(JAN5 + 120_000, 1, 3.0)[0]
                .split(',')
                .take(9)
                .collect::<Vec<_>>()
                .join("\t")
        ),
    );
    ok(&ingest(
        &[&tsv],
        &klines,
        &[
            "--exchange",
            "BINANCE",
            "--symbol",
            "btcusdt",
            "--timeframe",
            "1m",
        ],
    ));
    let semi = write(
        &dir.path().join("semi.csv"),
        kline_lines(JAN5 + 180_000, 1, 4.0)[0].replace(',', ";"),
    );
    ok(&ingest(&[&semi], &klines, SERIES));
    let df = stored(&klines);
    assert_eq!(strs(&df, "symbol"), ["BTCUSDT"; 4]);
    assert_eq!(f64s(&df, "close"), [1.0, 2.0, 3.0, 4.0]);
    assert_eq!(
        parquet_files(&klines)
            .iter()
            .filter(|p| p.contains("symbol=btcusdt"))
            .count(),
        0
    );
    // verify calls infinity infinite.
    let ds = Dataset::open(&klines).unwrap();
    let inf = crate::common::candles(JAN5 + 86_400_000, 1, f64::INFINITY);
    ds.write(inf.lazy(), &crate::common::kline_opts("BTCUSDT"))
        .unwrap();
    let report = ds
        .verify(false, &pqdm::progress::Progress::hidden())
        .unwrap();
    assert_eq!(
        report.bad_value_details.get("close").map(String::as_str),
        Some("1 infinite")
    );
    let out = run(&["verify", klines.to_str().unwrap(), "--quiet"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("bad values in `close`: 1 rows (1 infinite)"),
        "{text}"
    );
}

/// One differential case as `tests/fidelity/generate.py` describes it.
#[derive(serde::Deserialize)]
struct Case {
    file: PathBuf,
    dims: serde_json::Value,
    rows: Option<Vec<BTreeMap<String, serde_json::Value>>>,
    refuse: Option<Refusal>,
}

#[derive(serde::Deserialize)]
struct Refusal {
    row: u64,
    column: String,
}

/// Ingests one generated case into a fresh dataset through the library.
fn ingest_case(case: &Case, base: &Path) -> pqdm::Result<DataFrame> {
    let kinds = pqdm::schema::KindRegistry::default();
    let ds = Dataset::create(
        base,
        kinds.get("klines").unwrap(),
        &pqdm::CreateOptions::default(),
    )?;
    pqdm::ingest::ingest(
        &ds,
        std::slice::from_ref(&case.file),
        &crate::common::kline_opts("BTCUSDT"),
        &pqdm::progress::Progress::hidden(),
    )?;
    Ok(crate::common::read_sorted(&ds))
}

/// Checks one case: pqdm stores what pyarrow and DuckDB read, or refuses naming file, row and
/// column.
fn check_case(case: &Case, base: &Path) {
    let what = format!("{} {}", case.file.display(), case.dims);
    let result = ingest_case(case, base);
    if let Some(refusal) = &case.refuse {
        let err = result.err().map(|e| e.to_string()).unwrap_or_default();
        let name = case.file.file_name().unwrap().to_string_lossy();
        for part in [
            name.to_string(),
            format!("column `{}`, row {}", refusal.column, refusal.row),
        ] {
            assert!(err.contains(&part), "{what}: expected `{part}` in `{err}`");
        }
        return;
    }
    let df = result.unwrap_or_else(|e| panic!("{what}: {e}"));
    let rows = case.rows.as_ref().unwrap();
    assert_eq!(df.height(), rows.len(), "{what}");
    let want_i = |c: &str| -> Vec<Option<i64>> { rows.iter().map(|r| r[c].as_i64()).collect() };
    assert_eq!(i64s(&df, "timestamp"), want_i("timestamp"), "{what}");
    assert_eq!(i64s(&df, "trades"), want_i("trades"), "{what}");
    for c in ["open", "high", "low", "close", "volume"] {
        let want: Vec<f64> = rows.iter().map(|r| r[c].as_f64().unwrap()).collect();
        assert_eq!(f64s(&df, c), want, "{what}: {c}");
    }
}

/// Seeded inputs across header, BOM, line endings, quoting, blank lines, separators, number
/// formats, timestamp forms and units, dictionary and DECIMAL Parquet columns; pqdm must store
/// what pyarrow and DuckDB read, or refuse naming the file, row and column.
/// `PQDM_DIFF_CASES` (default 40) and `PQDM_DIFF_SEED` (default 19) make a larger run.
#[test]
fn differential_against_pyarrow_and_duckdb() {
    let env = |k: &str, default: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (cases, seed) = (env("PQDM_DIFF_CASES", 40), env("PQDM_DIFF_SEED", 19));
    let dir = tmp();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fidelity/generate.py");
    let out = std::process::Command::new(crate::common::python())
        .arg(&script)
        .arg(dir.path())
        .arg(seed.to_string())
        .arg(cases.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest: Vec<Case> =
        serde_json::from_slice(&std::fs::read(dir.path().join("cases.json")).unwrap()).unwrap();
    assert_eq!(manifest.len() as u64, cases);
    for (i, case) in manifest.iter().enumerate() {
        check_case(case, &dir.path().join(format!("ds-{i}")));
    }
}

/// The Binance public-data layout as downloaded, ingested in one command.
#[test]
fn binance_tree_ingests_in_one_command() {
    let dir = tmp();
    let root = dir.path().join("data");
    let kl = |p: &str, start: i64, n: i64| {
        let name = Path::new(p).file_name().unwrap().to_string_lossy();
        let csv = name.replace(".zip", ".csv");
        zip_file(&root.join(p), &csv, &kline_lines(start, n, 1.0).join("\n"));
    };
    // A daily and a monthly file of one market overlap (the same rows): that is no conflict.
    kl(
        "spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01-05.zip",
        JAN5,
        10,
    );
    kl(
        "spot/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01.zip",
        JAN5,
        20,
    );
    kl(
        "futures/um/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01-05.zip",
        JAN5,
        11,
    );
    kl(
        "futures/um/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01.zip",
        JAN5,
        5,
    );
    kl(
        "futures/um/daily/markPriceKlines/BTCUSDT/1m/BTCUSDT-1m-2024-01-05.zip",
        JAN5,
        12,
    );
    kl(
        "futures/cm/daily/klines/BTCUSD_PERP/1m/BTCUSD_PERP-1m-2024-01-05.zip",
        JAN5,
        13,
    );
    kl(
        "futures/cm/daily/markPriceKlines/BTCUSD_PERP/1m/BTCUSD_PERP-1m-2024-01-05.zip",
        JAN5,
        14,
    );
    let agg = |p: &str, n: i64| {
        let lines: Vec<String> = (0..n)
            .map(|i| format!("{i},1.5,2,{i},{i},{},true,true", JAN5 + i))
            .collect();
        let name = Path::new(p).file_name().unwrap().to_string_lossy();
        zip_file(
            &root.join(p),
            &name.replace(".zip", ".csv"),
            &lines.join("\n"),
        );
    };
    agg(
        "spot/daily/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2024-01-05.zip",
        6,
    );
    agg(
        "futures/um/daily/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2024-01-05.zip",
        7,
    );
    let trades = |p: &str, n: i64, header: bool| {
        let mut lines: Vec<String> = (0..n)
            .map(|i| format!("{i},1.5,2,3,{},false", JAN5 + i))
            .collect();
        if header {
            lines.insert(0, "id,price,qty,quote_qty,time,is_buyer_maker".into());
        }
        let name = Path::new(p).file_name().unwrap().to_string_lossy();
        zip_file(
            &root.join(p),
            &name.replace(".zip", ".csv"),
            &lines.join("\n"),
        );
    };
    trades(
        "spot/daily/trades/BTCUSDT/BTCUSDT-trades-2024-01-05.zip",
        4,
        false,
    );
    trades(
        "futures/cm/daily/trades/BTCUSD_PERP/BTCUSD_PERP-trades-2024-01-05.zip",
        3,
        true,
    );
    let funding = |p: &str, n: i64| {
        let mut lines = vec!["calc_time,funding_interval_hours,last_funding_rate".to_string()];
        lines.extend((0..n).map(|i| format!("{},8,0.0001", JAN5 + i * 28_800_000)));
        let name = Path::new(p).file_name().unwrap().to_string_lossy();
        zip_file(
            &root.join(p),
            &name.replace(".zip", ".csv"),
            &lines.join("\n"),
        );
    };
    funding(
        "futures/um/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2024-01.zip",
        3,
    );
    funding(
        "futures/cm/monthly/fundingRate/BTCUSD_PERP/BTCUSD_PERP-fundingRate-2024-01.zip",
        2,
    );
    let base = dir.path().join("datasets");
    ok(&ingest(&[&root], &base, &["--per-kind"]));
    let counts = |kind: &str| -> Vec<(String, String, u32)> {
        let df = stored(&base.join(kind))
            .lazy()
            .group_by([col("exchange"), col("symbol")])
            .agg([len().alias("n")])
            .sort(["exchange", "symbol"], Default::default())
            .collect()
            .unwrap();
        strs(&df, "exchange")
            .into_iter()
            .zip(strs(&df, "symbol"))
            .zip(df.column("n").unwrap().u32().unwrap().into_no_null_iter())
            .map(|((e, s), n)| (e, s, n))
            .collect()
    };
    let row = |e: &str, s: &str, n: u32| (e.to_string(), s.to_string(), n);
    assert_eq!(
        counts("klines"),
        [
            row("BINANCE", "BTCUSDT", 20),
            row("BINANCE_CM", "BTCUSD_PERP", 13),
            row("BINANCE_CM_MARKPRICE", "BTCUSD_PERP", 14),
            row("BINANCE_UM", "BTCUSDT", 11),
            row("BINANCE_UM_MARKPRICE", "BTCUSDT", 12),
        ]
    );
    assert_eq!(
        counts("aggtrades"),
        [
            row("BINANCE", "BTCUSDT", 6),
            row("BINANCE_UM", "BTCUSDT", 7)
        ]
    );
    assert_eq!(
        counts("trades"),
        [
            row("BINANCE", "BTCUSDT", 4),
            row("BINANCE_CM", "BTCUSD_PERP", 3)
        ]
    );
    assert_eq!(
        counts("futures"),
        [
            row("BINANCE_CM", "BTCUSD_PERP", 2),
            row("BINANCE_UM", "BTCUSDT", 3)
        ]
    );
    // And the candles themselves, not only their counts: each series from JAN5, one a minute,
    // closes counting up from 1.0 as the files were written (the daily and the monthly spot
    // file hold the same first ten).
    let klines = stored(&base.join("klines"));
    for (exchange, symbol, n) in [
        ("BINANCE", "BTCUSDT", 20),
        ("BINANCE_CM", "BTCUSD_PERP", 13),
        ("BINANCE_CM_MARKPRICE", "BTCUSD_PERP", 14),
        ("BINANCE_UM", "BTCUSDT", 11),
        ("BINANCE_UM_MARKPRICE", "BTCUSDT", 12),
    ] {
        let part = klines
            .clone()
            .lazy()
            .filter(
                col("exchange")
                    .eq(lit(exchange))
                    .and(col("symbol").eq(lit(symbol))),
            )
            .collect()
            .unwrap();
        let minutes: Vec<Option<i64>> = (0..n).map(|i| Some(JAN5 + i * 60_000)).collect();
        assert_eq!(i64s(&part, "timestamp"), minutes, "{exchange} {symbol}");
        let closes: Vec<f64> = (0..n).map(|i| 1.0 + i as f64).collect();
        assert_eq!(f64s(&part, "close"), closes, "{exchange} {symbol}");
    }
    // Every candle series is whole: verify finds nothing.
    let out = run(&["verify", base.join("klines").to_str().unwrap(), "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["duplicate_keys"], 0, "{report}");
    assert_eq!(report["gaps"], serde_json::json!([]), "{report}");
    // A kind-less Binance file in the tree is named, with nothing written.
    let ticker = zip_file(
        &root.join("futures/um/daily/bookTicker/BTCUSDT/BTCUSDT-bookTicker-2024-01-05.zip"),
        "BTCUSDT-bookTicker-2024-01-05.csv",
        "1,2,3\n",
    );
    let before = snapshot(dir.path());
    refused(
        &ingest(&[&root], &base, &["--per-kind"]),
        &[
            ticker.file_name().unwrap().to_str().unwrap(),
            "bookTicker: no pqdm kind",
        ],
    );
    assert_eq!(snapshot(dir.path()), before);
}

/// A line of numbers joined by `sep`, maybe quoted, with a BOM and a line ending.
fn numeric_line() -> impl Strategy<Value = (String, u8, usize)> {
    (
        prop::collection::vec(-1e12f64..1e12, 1..14),
        prop::sample::select(vec![b',', b'\t', b';', b'|']),
        any::<bool>(),
        any::<bool>(),
        prop::sample::select(vec!["", "\n", "\r\n"]),
    )
        .prop_map(|(values, sep, quote, bom, eol)| {
            let cells: Vec<String> = values
                .iter()
                .map(|v| {
                    if quote {
                        format!("\"{v}\"")
                    } else {
                        v.to_string()
                    }
                })
                .collect();
            let line = format!(
                "{}{}{eol}",
                if bom { "\u{feff}" } else { "" },
                cells.join(&char::from(sep).to_string())
            );
            (line, sep, values.len())
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The sniffer never panics, and reads any line of numbers as data with its separator and
    /// field count.
    #[test]
    fn sniffer_reads_numeric_lines_as_data((line, sep, fields) in numeric_line(), junk in ".{0,64}") {
        let _ = sniff(&junk);
        let s = sniff(&line);
        prop_assert!(!s.header, "{line:?}");
        if fields > 1 {
            prop_assert_eq!(s.separator, sep, "{:?}", line);
        }
        prop_assert_eq!(s.fields, fields, "{:?}", line);
    }

    /// Lines whose first field is a name are headers.
    #[test]
    fn sniffer_reads_names_as_headers(names in prop::collection::vec("[a-z_][a-z0-9_]{0,12}", 1..12), bom in any::<bool>()) {
        let line = format!("{}{}\r\n", if bom { "\u{feff}" } else { "" }, names.join(","));
        prop_assume!(names[0].parse::<f64>().is_err());
        let s = sniff(&line);
        prop_assert!(s.header);
        prop_assert_eq!(s.fields, names.len());
    }

    /// The name parser never panics, and gives back every part of a Binance path it is handed.
    #[test]
    fn name_parser_reads_back_binance_paths(
        junk in ".{0,80}",
        symbol in "[A-Z0-9]{2,10}(_[A-Z0-9]{1,6})?",
        market in prop::sample::select(vec!["spot", "futures/um", "futures/cm"]),
        data in prop::sample::select(vec!["1m", "4h", "1mo", "aggTrades", "trades", "fundingRate"]),
        variant in prop::sample::select(vec!["klines", "markPriceKlines", "indexPriceKlines"]),
        daily in any::<bool>(),
        day in 1u32..29,
        ext in prop::sample::select(vec![".zip", ".csv", ".csv.gz"]),
    ) {
        let _ = NameHints::from_path(Path::new(&junk));
        let period = if daily { format!("2024-03-{day:02}") } else { "2024-03".to_string() };
        let is_kline = !data.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
        let folder = if is_kline { variant } else { data };
        let path = format!("{market}/{}/{folder}/{symbol}/{symbol}-{data}-{period}{ext}",
            if daily { "daily" } else { "monthly" });
        let h = NameHints::from_path(Path::new(&path));
        prop_assert_eq!(h.symbol.as_deref(), Some(symbol.as_str()));
        prop_assert_eq!(h.period.as_deref(), Some(period.as_str()));
        prop_assert_eq!(h.market.as_deref(), Some(market.trim_start_matches("futures/")));
        prop_assert_eq!(h.data_type.as_deref(), Some(folder));
        prop_assert_eq!(h.timeframe.is_some(), is_kline);
    }
}

/// A kind that keeps extra columns records each one's dtype with the first write that holds
/// it; a later input of another dtype is cast where that loses nothing (i32 into i64) and
/// refused otherwise (3.5 into an i64 column), leaving the dataset as it was: files that
/// disagree on a column's dtype would make the version unreadable.
#[test]
fn extra_columns_keep_the_dtype_the_dataset_recorded() {
    const FEAT: &str = r#"
[[kind]]
name = "feat"
keep_extra = true
partition_by = ["venue"]
columns = [
  { name = "timestamp", dtype = "i64", timestamp = true },
  { name = "venue", dtype = "str", required = false },
  { name = "price", dtype = "f64", required = false },
]
"#;
    let dir = tmp();
    let base = dir.path().join("feat");
    let mut kinds = pqdm::schema::KindRegistry::default();
    kinds.add_toml(FEAT, "feat").unwrap();
    let ds = Dataset::create(
        &base,
        kinds.get("feat").unwrap(),
        &pqdm::CreateOptions::default(),
    )
    .unwrap();
    let append = pqdm::WriteOptions {
        mode: Some(pqdm::WriteMode::Append),
        ..Default::default()
    };
    let frame = |minute: i64, m: Column| {
        let mut df = df!(
            "timestamp" => [1_704_067_200_000i64 + minute * 60_000],
            "venue" => ["a"],
            "price" => [1.0],
        )
        .unwrap();
        df.with_column(m).unwrap();
        df.lazy()
    };
    ds.write(frame(0, Column::new("m".into(), [3i64])), &append)
        .unwrap();
    let before = snapshot(&base);
    let err = ds
        .write(frame(1, Column::new("m".into(), [3.5f64])), &append)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("column `m` is f64 here but i64 in the dataset"),
        "{err}"
    );
    assert_eq!(snapshot(&base), before);
    ds.write(frame(2, Column::new("m".into(), [4i32])), &append)
        .unwrap();
    let df = stored(&base);
    assert_eq!(i64s(&df, "m"), [Some(3), Some(4)]);

    // Dtypes pqdm records under a wider name (f32 as f64, u32 as i64, date-times as ms) are
    // stored as recorded, so the dataset reads after each write; one it cannot record is
    // refused by name.
    let typed = |minute: i64| {
        frame(minute, Column::new("f".into(), [0.5f32])).with_columns([
            lit("x")
                .cast(DataType::from_categories(Categories::global()))
                .alias("c"),
            lit(7u32).cast(DataType::UInt32).alias("u"),
            lit(1_704_067_200_000_000i64)
                .cast(DataType::Datetime(TimeUnit::Microseconds, None))
                .alias("at"),
        ])
    };
    for minute in [3, 4] {
        ds.write(typed(minute), &append).unwrap();
        let df = stored(&base);
        assert_eq!(df.height() as i64, minute);
    }
    let df = stored(&base);
    let f: Vec<Option<f64>> = df.column("f").unwrap().f64().unwrap().iter().collect();
    assert_eq!(f, [None, None, Some(0.5), Some(0.5)]);
    let c: Vec<Option<&str>> = df.column("c").unwrap().str().unwrap().iter().collect();
    assert_eq!(c, [None, None, Some("x"), Some("x")]);
    assert_eq!(i64s(&df, "u")[2..], [Some(7), Some(7)]);
    assert_eq!(
        i64s(&df, "at")[2..],
        [Some(1_704_067_200_000), Some(1_704_067_200_000)]
    );
    let list = frame(5, Column::new("m".into(), [1i64]))
        .with_column(concat_list([col("m")]).unwrap().alias("l"));
    let err = ds.write(list, &append).unwrap_err().to_string();
    assert!(
        err.contains("column `l` is list[i64], which pqdm cannot keep"),
        "{err}"
    );

    // Inputs of one write that differ losslessly (i32 and i64, a null-only one) are one column.
    let input = |minute: i64, n: Column| pqdm::Input {
        frame: frame(minute, n),
        source_name: format!("input {minute}"),
        constants: Default::default(),
        rows: None,
    };
    let inputs = vec![
        input(6, Column::new("n".into(), [1i32])),
        input(7, Column::new("n".into(), [2i64])),
        input(8, Column::full_null("n".into(), 1, &DataType::Null)),
    ];
    ds.write_inputs(inputs, &append).unwrap();
    let df = stored(&base);
    assert_eq!(i64s(&df, "n")[4..], [Some(1), Some(2), None]);
}

/// `adopt` refuses partition folders whose values do not fit their column's type (`year=99999`
/// as i16, `flag=0` as bool, `d=20240105` as a date), naming the file, and leaves the folder as
/// it was; values that fit are adopted and read back typed.
#[test]
fn adopt_refuses_partition_values_that_do_not_fit_their_type() {
    let dir = tmp();
    let put = |rel: &str| {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut df = df!("timestamp" => [1_704_067_200_000i64], "price" => [1.0]).unwrap();
        ParquetWriter::new(std::fs::File::create(&path).unwrap())
            .finish(&mut df)
            .unwrap();
    };
    for rel in [
        "a/year=99999/part-0.parquet",
        "b/flag=0/part-0.parquet",
        "c/d=20240105/part-0.parquet",
        "e/n=%205/part-0.parquet",
        "ok/flag=true/part-0.parquet",
        "ok/flag=false/part-0.parquet",
    ] {
        put(rel);
    }
    let at = |t: &str| dir.path().join(t).display().to_string();
    for (table, hive, column, folder, value, dtype) in [
        ("a", None, "year", "99999", "99999", "i16"),
        ("b", Some("flag=bool"), "flag", "0", "0", "bool"),
        ("c", Some("d=date"), "d", "20240105", "20240105", "date"),
        ("e", Some("n=i64"), "n", "%205", " 5", "i64"),
    ] {
        let before = snapshot(Path::new(&at(table)));
        let mut args = vec!["adopt".to_string(), at(table)];
        if let Some(h) = hive {
            args.extend(["--hive-schema".into(), h.into()]);
        }
        let out = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
        refused(
            &out,
            &[
                &format!("{column}={folder}/part-0.parquet"),
                &format!("value \"{value}\" of partition column `{column}` is no {dtype}"),
            ],
        );
        assert_eq!(snapshot(Path::new(&at(table))), before, "{table}");
    }
    ok(&run(&["adopt", &at("ok"), "--hive-schema", "flag=bool"]));
    let df = Dataset::open(Path::new(&at("ok")))
        .unwrap()
        .read(&pqdm::ScanOptions::default())
        .unwrap();
    let mut flags = bools(&df, "flag");
    flags.sort();
    assert_eq!(flags, [Some(false), Some(true)]);
}

/// A partition column whose name would need escaping in a folder name (`my col`), or that
/// readers take for hidden (`_venue`), is refused where a dataset of that kind would be
/// created, before anything is written.
#[test]
fn partition_columns_with_names_a_folder_cannot_hold_are_refused() {
    let kind = |name: &str| {
        format!(
            r#"
[[kind]]
name = "pc"
partition_by = ["{name}"]
columns = [
  {{ name = "timestamp", dtype = "i64", timestamp = true }},
  {{ name = "{name}", dtype = "str", required = false }},
]
"#
        )
    };
    let dir = tmp();
    for (name, why) in [
        ("my col", "needs escaping in a folder name"),
        ("_venue", "starts with `_` or `.`"),
        ("a=b", "needs escaping in a folder name"),
    ] {
        // The kinds file loads (its other kinds stay usable); creating a dataset is refused.
        let mut kinds = pqdm::schema::KindRegistry::default();
        kinds.add_toml(&kind(name), "pc").unwrap();
        let base = dir.path().join("refused");
        let err = match Dataset::create(&base, kinds.get("pc").unwrap(), &Default::default()) {
            Ok(_) => panic!("created a dataset partitioned by {name:?}"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains(&format!("partition column \"{name}\" {why}")),
            "{err}"
        );
        assert!(!base.exists());
    }
    let kinds = write(&dir.path().join("kinds.toml"), kind("my col"));
    let csv = write(
        &dir.path().join("pc.csv"),
        "timestamp,my col\n2024-01-01T00:00:00Z,a\n",
    );
    let base = dir.path().join("ds");
    let out = ingest(
        &[&csv],
        &base,
        &["--kinds", kinds.to_str().unwrap(), "--kind", "pc"],
    );
    refused(&out, &["partition column \"my col\" needs escaping"]);
    assert!(!base.exists());
}

/// Folders written by pyarrow with column types pqdm cannot read in place: `adopt` refuses each
/// one (exit 1, never a panic), naming the file, the column and its stored type, and leaves the
/// folder as it was; a plain scan reads the folder as stored where Polars can (`u64`, `f32`, a
/// dictionary of strings, a list, binary: with exact values, none dropped) and refuses DECIMAL (which this build of Polars
/// cannot plan a scan of at all: it panicked, exit 101) with the same naming.
#[test]
fn adopt_refuses_column_types_it_cannot_read_in_place() {
    let dir = tmp();
    let root = dir.path().display().to_string();
    py(
        r#"
import decimal, os, sys
import pyarrow as pa, pyarrow.parquet as pq
root = sys.argv[1]
ts = pa.array([1704067200000, 1704067260000], pa.int64())
cols = {
    "dec": pa.array([decimal.Decimal("1.50"), None], pa.decimal128(10, 2)),
    "u64": pa.array([1, 2**63 + 5], pa.uint64()),
    "f32": pa.array([1.5, None], pa.float32()),
    "cat": pa.array(["a", "b"]).dictionary_encode(),
    "bin": pa.array([b"a", b"\x00"]),
    "lst": pa.array([[1], [2, 3]]),
    "st": pa.array([{"a": 1, "b": "x"}, None]),
    "when": pa.array([1, 2], pa.timestamp("us", tz="UTC")),
}
for name, values in cols.items():
    os.makedirs(f"{root}/{name}/g=x", exist_ok=True)
    pq.write_table(pa.table({"timestamp": ts, "v": values}), f"{root}/{name}/g=x/part-0.parquet")
# An all-null column (pandas' empty object column) beside text: adopted, nulls read back.
os.makedirs(f"{root}/nulls/day=1", exist_ok=True)
os.makedirs(f"{root}/nulls/day=2", exist_ok=True)
pq.write_table(pa.table({"timestamp": ts[:1], "note": pa.array(["hi"])}), f"{root}/nulls/day=1/part-0.parquet")
pq.write_table(pa.table({"timestamp": ts[1:], "note": pa.array([None], pa.null())}), f"{root}/nulls/day=2/part-0.parquet")
# Candles with integer prices, adopted as klines (whose prices are f64): refused.
k = f"{root}/intk/exchange=BINANCE/symbol=BTCUSDT/timeframe=1m"
os.makedirs(k, exist_ok=True)
one = pa.array([1, 2], pa.int64())
pq.write_table(pa.table({"timestamp": ts, "open": one, "high": one, "low": one, "close": one,
                         "volume": pa.array([1.0, 2.0])}), f"{k}/part-0.parquet")
# Types that differ between files: the first file's is recorded, the second's refused.
for i, t in enumerate([pa.int64(), pa.int32()]):
    os.makedirs(f"{root}/mixed/g={i}", exist_ok=True)
    pq.write_table(pa.table({"timestamp": ts, "v": pa.array([1, 2], t)}), f"{root}/mixed/g={i}/part-0.parquet")
"#,
        &[&root],
    );
    for (name, file, stored) in [
        ("dec", "g=x/part-0.parquet", "stored as decimal128(10, 2)"),
        ("u64", "g=x/part-0.parquet", "stored as u64"),
        ("f32", "g=x/part-0.parquet", "stored as f32"),
        ("cat", "g=x/part-0.parquet", "a dictionary of str"),
        ("bin", "g=x/part-0.parquet", "stored as binary"),
        ("lst", "g=x/part-0.parquet", "stored as list[i64]"),
        ("st", "g=x/part-0.parquet", "stored as struct[2]"),
        ("when", "g=x/part-0.parquet", "stored as datetime[μs, UTC]"),
        ("mixed", "g=1/part-0.parquet", "stored as i32"),
    ] {
        let base = dir.path().join(name);
        let before = snapshot(&base);
        let out = run(&["adopt", base.to_str().unwrap()]);
        refused(&out, &[&format!("{name}/{file}"), "column `v`", stored]);
        assert!(!stderr(&out).contains("panicked"), "{name}");
        assert_eq!(snapshot(&base), before, "{name}");
    }
    let intk = dir.path().join("intk");
    let before = snapshot(&intk);
    let out = run(&["adopt", intk.to_str().unwrap(), "--kind", "klines"]);
    refused(
        &out,
        &[
            "timeframe=1m/part-0.parquet",
            "column `open` is stored as i64",
            "as f64",
        ],
    );
    assert_eq!(snapshot(&intk), before);
    let nulls = dir.path().join("nulls");
    let out = run(&["adopt", nulls.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&[
        "scan",
        nulls.to_str().unwrap(),
        "--columns",
        "note",
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text, "{\"note\":\"hi\"}\n{\"note\":null}\n");
    let out = run(&["scan", dir.path().join("dec").to_str().unwrap()]);
    refused(
        &out,
        &["dec/g=x/part-0.parquet", "column `v`", "decimal128(10, 2)"],
    );
    assert!(!stderr(&out).contains("panicked"));
    let read = |name: &str| {
        let base = dir.path().join(name);
        let out = run(&[
            "scan",
            base.to_str().unwrap(),
            "--columns",
            "v",
            "--format",
            "json",
        ]);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(read("u64"), "{\"v\":1}\n{\"v\":9223372036854775813}\n");
    assert_eq!(read("f32"), "{\"v\":1.5}\n{\"v\":null}\n");
    assert_eq!(read("cat"), "{\"v\":\"a\"}\n{\"v\":\"b\"}\n");
    // Columns pqdm has no type for come as stored, not dropped (lists as JSON arrays).
    assert_eq!(read("lst"), "{\"v\":[1]}\n{\"v\":[2,3]}\n");
    assert_eq!(read("st"), "{\"v\":{\"a\":1,\"b\":\"x\"}}\n{\"v\":null}\n");
    let out = run(&[
        "scan",
        dir.path().join("bin").to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8(out.stdout)
            .unwrap()
            .matches("\"v\":")
            .count(),
        2
    );
    // CSV cannot hold a list: refused up front, naming the column, not mid-stream.
    let out = run(&[
        "scan",
        dir.path().join("lst").to_str().unwrap(),
        "--format",
        "csv",
    ]);
    refused(&out, &["--format csv cannot hold column `v` (list[i64])"]);
    assert!(out.stdout.is_empty());
    let out = run(&[
        "scan",
        dir.path().join("bin").to_str().unwrap(),
        "--format",
        "csv",
    ]);
    refused(&out, &["--format csv cannot hold column `v` (binary)"]);
    assert!(out.stdout.is_empty());
}

/// A file another tool rewrote in place after `adopt`, now holding a DECIMAL column (Polars, as
/// pqdm builds it, panics planning a scan of one): `scan`, `verify` and `compact` end in an
/// error naming the damage (exit 1, no panic printed), and `verify --repair` moves the file
/// aside, after which the other partition reads back exactly.
#[test]
fn a_file_rewritten_with_a_type_polars_cannot_read_is_an_error_not_a_panic() {
    let dir = tmp();
    let write = r#"
import decimal, os, sys
import pyarrow as pa, pyarrow.parquet as pq
path, kind = sys.argv[1], sys.argv[2]
os.makedirs(os.path.dirname(path), exist_ok=True)
v = {"f64": lambda: pa.array([1.5, 2.5]),
     "decimal": lambda: pa.array([decimal.Decimal("1.5"), decimal.Decimal("2.5")], pa.decimal128(5, 2)),
     "tz": lambda: pa.array([1, 2], pa.timestamp("ms", tz="+05:30"))}[kind]()
pq.write_table(pa.table({"timestamp": pa.array([1704067200000, 1704067260000], pa.int64()), "v": v}), path)
"#;
    // Polars panics on both while it plans: on DECIMAL (no such type in this build) and on a
    // time zone it cannot parse (an unwrap).
    for (kind, named) in [("decimal", "Decimal(5, 2)"), ("tz", "+05:30")] {
        let base = dir.path().join(kind);
        let at = base.to_str().unwrap();
        let a = base.join("sym=A/part-0.parquet");
        let b = base.join("sym=B/part-0.parquet");
        // Two files in B, so that `compact` has work there.
        let b1 = base.join("sym=B/part-1.parquet");
        for path in [&a, &b, &b1] {
            py(write, &[path.to_str().unwrap(), "f64"]);
        }
        let out = run(&["adopt", at]);
        assert!(out.status.success(), "{}", stderr(&out));
        py(write, &[b.to_str().unwrap(), kind]);
        let no_panic = |out: &Output| {
            let err = stderr(out);
            assert_eq!(out.status.code(), Some(1), "{kind}: {err}");
            assert!(!err.contains("panicked"), "{kind}: {err}");
            err
        };
        let err = no_panic(&run(&["scan", at]));
        assert!(
            err.contains("sym=B/part-0.parquet") && err.contains(named),
            "{kind}: {err}"
        );
        let out = run(&["verify", at]);
        no_panic(&out);
        let report = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            report.contains("checksum mismatch: sym=B/part-0.parquet"),
            "{kind}: {report}"
        );
        let err = no_panic(&run(&["compact", at, "--target-rows", "10"]));
        assert!(err.contains(named), "{kind}: {err}");
        let out = run(&["verify", at, "--repair"]);
        assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
        let out = run(&["scan", at, "--columns", "v,sym", "--format", "json"]);
        assert!(out.status.success(), "{kind}: {}", stderr(&out));
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            "{\"sym\":\"A\",\"v\":1.5}\n{\"sym\":\"A\",\"v\":2.5}\n{\"sym\":\"B\",\"v\":1.5}\n{\"sym\":\"B\",\"v\":2.5}\n",
            "{kind}"
        );
    }
}

/// A source whose price column holds lists or structs (no one number each) is refused before
/// anything is written, naming the file and the column, with the dataset as it was; it failed
/// inside the write, naming neither.
#[test]
fn a_nested_source_column_for_a_scalar_kind_column_is_refused_by_name() {
    let dir = tmp();
    let base = dir.path().join("klines");
    let ok = crate::common::klines_csv(dir.path(), "BTCUSDT", 3, 1.0);
    let out = run(&[
        "ingest",
        ok.to_str().unwrap(),
        "--dataset",
        base.to_str().unwrap(),
        "--exchange",
        "BINANCE",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    py(
        r#"
import sys
import pyarrow as pa, pyarrow.parquet as pq
ts = pa.array([1704067200000, 1704067260000], pa.int64())
one = pa.array([1.0, 2.0])
for name, close in [("list", pa.array([[1.0], [2.0, 3.0]])), ("struct", pa.array([{"a": 1.0}, {"a": 2.0}])),
                    ("duration", pa.array([1, 2], pa.duration("s")))]:
    pq.write_table(pa.table({"timestamp": ts, "open": one, "high": one, "low": one, "close": close, "volume": one}),
                   f"{sys.argv[1]}/{name}.parquet")
"#,
        &[dir.path().to_str().unwrap()],
    );
    let before = snapshot(&base);
    // A duration in seconds was cast to 1000.0 and 2000.0 (Polars reads it as milliseconds).
    for (name, held) in [
        ("list", "list[f64]"),
        ("struct", "struct[1]"),
        ("duration", "duration[ms]"),
    ] {
        let src = dir.path().join(format!("{name}.parquet"));
        let out = run(&[
            "ingest",
            src.to_str().unwrap(),
            "--dataset",
            base.to_str().unwrap(),
            "--symbol",
            "BTCUSDT",
            "--exchange",
            "BINANCE",
            "--timeframe",
            "1m",
        ]);
        refused(
            &out,
            &[
                &format!("{name}.parquet"),
                &format!("column `close` holds {held} values"),
            ],
        );
        assert_eq!(snapshot(&base), before, "{name}");
    }
}
