//! Upserts find a key wherever the dataset can hold it: for kinds whose key has no timestamp
//! (aggTrades' id), in every day of the symbol, reading only files whose recorded key ranges
//! meet the new keys.

use polars::prelude::*;
use pqdm::schema::KindRegistry;
use pqdm::{CreateOptions, Dataset, WriteOptions};

use crate::common::*;

const DAY: i64 = 86_400_000;
const JAN1: i64 = 1_704_067_200_000;

fn aggtrades_dataset(dir: &std::path::Path) -> Dataset {
    Dataset::create(
        dir,
        KindRegistry::default().get("aggtrades").unwrap(),
        &CreateOptions::default(),
    )
    .unwrap()
}

fn opts() -> WriteOptions {
    WriteOptions {
        constants: consts(&[("exchange", "BINANCE"), ("symbol", "BTCUSDT")]),
        ..Default::default()
    }
}

/// Trades with ids `ids`, at `ts` + id seconds, priced `price` + id.
fn trades(ids: &[i64], ts: i64, price: f64) -> LazyFrame {
    df!(
        "agg_trade_id" => ids,
        "price" => ids.iter().map(|i| price + *i as f64).collect::<Vec<_>>(),
        "quantity" => vec![1.0; ids.len()],
        "first_trade_id" => ids,
        "last_trade_id" => ids,
        "timestamp" => ids.iter().map(|i| ts + i * 1000).collect::<Vec<_>>(),
        "is_buyer_maker" => vec![true; ids.len()],
    )
    .unwrap()
    .lazy()
}

/// (id, price, day of month) of every stored row, by id.
fn rows(ds: &Dataset) -> Vec<(i64, f64, i8)> {
    let df = Dataset::open(ds.base())
        .unwrap()
        .scan(&Default::default())
        .unwrap()
        .sort(["agg_trade_id"], Default::default())
        .collect()
        .unwrap();
    let ids = df.column("agg_trade_id").unwrap().i64().unwrap().clone();
    let prices = df.column("price").unwrap().f64().unwrap().clone();
    let days = df
        .column("day")
        .unwrap()
        .cast(&DataType::Int8)
        .unwrap()
        .i8()
        .unwrap()
        .clone();
    (0..df.height())
        .map(|i| {
            (
                ids.get(i).unwrap(),
                prices.get(i).unwrap(),
                days.get(i).unwrap(),
            )
        })
        .collect()
}

/// The current version file, as an earlier pqdm wrote it (see [`write_version_files`]).
fn newest_version(base: &std::path::Path) -> std::path::PathBuf {
    write_version_files(base);
    std::fs::read_dir(base.join("_pqdm/versions"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .max()
        .unwrap()
}

#[test]
fn a_corrected_trade_on_another_day_replaces_the_stored_one() {
    let dir = tmp();
    let ds = aggtrades_dataset(dir.path());
    ds.write(trades(&[1, 2, 3, 4], JAN1, 100.0), &opts())
        .unwrap();
    // Trade 2 corrected: its time moved to the next day (as a re-download can say).
    let report = ds.write(trades(&[2], JAN1 + DAY, 500.0), &opts()).unwrap();
    assert_eq!(report.rows_replaced, 1);
    assert_eq!(
        rows(&ds),
        [(1, 101.0, 1), (2, 502.0, 2), (3, 103.0, 1), (4, 104.0, 1)]
    );
    let out = run(&["verify", ds.base().to_str().unwrap(), "--json"]);
    let v = json_ok(&out);
    assert_eq!(v["duplicate_keys"], 0, "{v}");
}

#[test]
fn stored_files_whose_key_range_misses_the_new_keys_are_not_read() {
    let dir = tmp();
    let ds = aggtrades_dataset(dir.path());
    let ids = |r: std::ops::RangeInclusive<i64>| r.collect::<Vec<_>>();
    ds.write(trades(&ids(1..=100), JAN1, 0.0), &opts()).unwrap();
    ds.write(trades(&ids(101..=200), JAN1 + DAY, 0.0), &opts())
        .unwrap();
    let m = Dataset::open(dir.path())
        .unwrap()
        .manifest()
        .unwrap()
        .clone();
    let ranges: Vec<[i64; 2]> = m
        .files
        .iter()
        .map(|f| f.key_ranges["agg_trade_id"])
        .collect();
    assert_eq!(ranges, [[1, 100], [101, 200]]);
    // Day 1's file holds ids 1..=100: junk in its place proves an upsert of ids 150..=160
    // does not read it.
    let day1 = &m.files[0].path;
    std::fs::write(dir.path().join(day1), b"junk").unwrap();
    let report = ds
        .write(trades(&ids(150..=160), JAN1 + 2 * DAY, 1000.0), &opts())
        .unwrap();
    assert_eq!(report.rows_replaced, 11);
    std::fs::write(dir.path().join(day1), b"not read either").unwrap();
    let m = Dataset::open(dir.path())
        .unwrap()
        .manifest()
        .unwrap()
        .clone();
    let mut ranges: Vec<(String, [i64; 2], u64)> = m
        .files
        .iter()
        .map(|f| {
            let day = f.partition.value("day").unwrap().to_string();
            (day, f.key_ranges["agg_trade_id"], f.rows)
        })
        .collect();
    ranges.sort();
    assert_eq!(
        ranges,
        [
            ("1".to_string(), [1, 100], 100),
            ("2".to_string(), [101, 200], 89),
            ("3".to_string(), [150, 160], 11),
        ]
    );
}

#[test]
fn entries_without_key_ranges_are_read_as_unknown() {
    let dir = tmp();
    let ds = aggtrades_dataset(dir.path());
    ds.write(trades(&[1, 2, 3], JAN1, 100.0), &opts()).unwrap();
    // A dataset of earlier pqdm records no key ranges.
    let newest = newest_version(dir.path());
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&newest).unwrap()).unwrap();
    for f in m["files"].as_array_mut().unwrap() {
        assert!(f.as_object_mut().unwrap().remove("key_ranges").is_some());
    }
    let edited = serde_json::to_vec(&m).unwrap();
    std::fs::write(&newest, &edited).unwrap();
    std::fs::write(dir.path().join("_manifest.json"), &edited).unwrap();

    let ds = Dataset::open(dir.path()).unwrap();
    ds.write(trades(&[3], JAN1 + 5 * DAY, 900.0), &opts())
        .unwrap();
    assert_eq!(rows(&ds), [(1, 101.0, 1), (2, 102.0, 1), (3, 903.0, 6)]);
}

#[test]
fn one_input_holding_a_trade_on_two_days_is_refused() {
    let dir = tmp();
    let ds = aggtrades_dataset(dir.path());
    ds.write(trades(&[1, 2], JAN1, 100.0), &opts()).unwrap();
    let before = snapshot(dir.path());
    let input = concat(
        [trades(&[7, 8], JAN1, 0.0), trades(&[8], JAN1 + DAY, 0.0)],
        Default::default(),
    )
    .unwrap();
    let err = ds.write(input, &opts()).unwrap_err().to_string();
    assert!(err.contains("holds a key of agg_trade_id"), "{err}");
    assert!(err.contains("exchange="), "{err}");
    assert!(err.contains("symbol="), "{err}");
    assert!(err.contains("BTCUSDT"), "{err}");
    assert_eq!(snapshot(dir.path()), before);
    // The same key twice on one day: the last row wins, as for every kind.
    ds.write(
        concat(
            [trades(&[8], JAN1, 0.0), trades(&[8], JAN1, 50.0)],
            Default::default(),
        )
        .unwrap(),
        &opts(),
    )
    .unwrap();
    assert_eq!(rows(&ds), [(1, 101.0, 1), (2, 102.0, 1), (8, 58.0, 1)]);
}

/// Upserts trust recorded key ranges as scans trust time ranges: a range edited by hand is
/// reported by `verify` as stale and rebuilt by `--repair`.
#[test]
fn a_key_range_edited_by_hand_is_reported_and_repaired() {
    let dir = tmp();
    let ds = aggtrades_dataset(dir.path());
    ds.write(trades(&[1, 2, 3], JAN1, 100.0), &opts()).unwrap();
    let newest = newest_version(dir.path());
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&newest).unwrap()).unwrap();
    let file = m["files"][0]["path"].as_str().unwrap().to_string();
    m["files"][0]["key_ranges"]["agg_trade_id"] = serde_json::json!([1000, 2000]);
    let edited = serde_json::to_vec(&m).unwrap();
    std::fs::write(&newest, &edited).unwrap();
    std::fs::write(dir.path().join("_manifest.json"), &edited).unwrap();
    let b = dir.path().to_str().unwrap();
    let out = run(&["verify", b, "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["stale_stats"], serde_json::json!([file]));
    let repaired = json_ok(&run(&["verify", "--repair", b, "--json"]));
    assert_eq!(
        repaired["repairs"]["stats_rebuilt"],
        serde_json::json!([file])
    );
    let ds = Dataset::open(dir.path()).unwrap();
    let m = ds.manifest().unwrap().clone();
    assert_eq!(m.files[0].key_ranges["agg_trade_id"], [1, 3]);
    // The repair's log entry carries the rebuilt statistics too (a new `add` of the same path),
    // so Delta readers prune by them and the log alone rebuilds the version.
    assert_eq!(ds.version_from_log(m.version).unwrap(), *m);
}

/// One flat Parquet file of candles of `symbols`, 4 a day for `days` days each, in the order
/// `rows` gives (indices into the rows sorted by symbol and time); the close is the row's index.
fn flat_candles(dir: &std::path::Path, symbols: &[&str], days: i64, rows: &[usize]) -> String {
    let mut all = vec![];
    for s in symbols {
        for d in 0..days {
            for m in 0..4 {
                all.push((s.to_string(), JAN1 + d * DAY + m * 60_000));
            }
        }
    }
    let pick = |f: &dyn Fn(&(String, i64), usize) -> f64| -> Vec<f64> {
        rows.iter().map(|&i| f(&all[i], i)).collect()
    };
    let close = pick(&|_, i| i as f64);
    let ts: Vec<i64> = rows.iter().map(|&i| all[i].1).collect();
    let mut df = df!(
        "symbol" => rows.iter().map(|&i| all[i].0.clone()).collect::<Vec<_>>(),
        "open_time" => ts.clone(),
        "open" => close.clone(), "high" => close.clone(), "low" => close.clone(),
        "close" => close,
        "volume" => vec![1.5f64; rows.len()],
        "close_time" => ts.iter().map(|t| t + 59_999).collect::<Vec<_>>(),
    )
    .unwrap();
    let path = dir.join(format!("flat-{}.parquet", rows.len()));
    ParquetWriter::new(std::fs::File::create(&path).unwrap())
        .finish(&mut df)
        .unwrap();
    path.to_str().unwrap().to_string()
}

/// An upsert whose input comes in key order (a flat file sorted by symbol and time) is proven
/// free of repeated keys as it streams, and reads none of its staged files back; any other order,
/// or a repeat, is checked on the staged files as before, and the last row of a key wins.
#[test]
fn an_upsert_in_key_order_needs_no_look_for_repeats_and_any_other_order_still_gets_one() {
    const PROVEN: &str = "no key repeats: the input's rows came in key order";
    let dir = tmp();
    let symbols = ["ADAUSDT", "BTCUSDT", "ETHUSDT"];
    let n = symbols.len() * 50 * 4;
    let ingest = |name: &str, input: &str| {
        let base = dir.path().join(name);
        let out = bin()
            .env("RUST_LOG", "pqdm::write=debug")
            .args([
                "ingest",
                input,
                "--dataset",
                base.to_str().unwrap(),
                "--kind",
                "klines",
                "--exchange",
                "BINANCE",
                "--timeframe",
                "1m",
                "--json",
            ])
            .output()
            .unwrap();
        let report = json_ok(&out);
        let ds = Dataset::open(&base).unwrap();
        let df = read_sorted(&ds);
        (stderr(&out).contains(PROVEN), report, df)
    };
    let sorted: Vec<usize> = (0..n).collect();
    let (proven, report, df) = ingest("sorted", &flat_candles(dir.path(), &symbols, 50, &sorted));
    assert!(proven, "a sorted input over 150 partitions");
    assert_eq!(report["rows_written"], n);
    assert_eq!(report["files"].as_array().unwrap().len(), 150);
    assert_eq!(
        f64s(&df, "close"),
        (0..n).map(|i| i as f64).collect::<Vec<_>>()
    );

    // Row 301 again right after itself (its close then 301 still, a repeat in order), and row
    // 7 again at the end with close 7: the repeats are found, one row per key stays.
    let mut repeated = sorted.clone();
    repeated.insert(302, 301);
    repeated.push(7);
    let (proven, report, df) = ingest(
        "repeated",
        &flat_candles(dir.path(), &symbols, 50, &repeated),
    );
    assert!(!proven, "an input holding a key twice");
    assert_eq!(report["rows_written"], n);
    assert_eq!(
        f64s(&df, "close"),
        (0..n).map(|i| i as f64).collect::<Vec<_>>()
    );

    // Newest first: every key once, but out of order.
    let reversed: Vec<usize> = (0..n).rev().collect();
    let (proven, report, df) = ingest(
        "reversed",
        &flat_candles(dir.path(), &symbols, 50, &reversed),
    );
    assert!(!proven, "an input out of key order");
    assert_eq!(report["rows_written"], n);
    assert_eq!(
        f64s(&df, "close"),
        (0..n).map(|i| i as f64).collect::<Vec<_>>()
    );
}
