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
    let m = Dataset::open(dir.path()).unwrap().manifest().clone();
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
    let m = Dataset::open(dir.path()).unwrap().manifest().clone();
    let mut ranges: Vec<(String, [i64; 2], u64)> = m
        .files
        .iter()
        .map(|f| {
            let day = f.partition["day"].clone().unwrap();
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
    let m = ds.manifest().clone();
    assert_eq!(m.files[0].key_ranges["agg_trade_id"], [1, 3]);
    // The repair's log entry carries the rebuilt statistics too (a new `add` of the same path),
    // so Delta readers prune by them and the log alone rebuilds the version.
    assert_eq!(ds.version_from_log(m.version).unwrap(), *m);
}
