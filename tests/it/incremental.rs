//! Incremental ingest (the sources index, `ingest --force`) and upserts that change nothing
//! (no version, no file replaced) or a few rows (only the files holding them replaced).

use std::path::{Path, PathBuf};
use std::process::Output;

use polars::prelude::*;
use pqdm::{Dataset, FileLayout};
use serde_json::Value;

use crate::common::*;

/// 2024-01-01 00:00 UTC in ms.
const JAN1: i64 = 1_704_067_200_000;
const DAY: i64 = 86_400_000;

/// A Binance-named CSV of 60 one-minute candles of `symbol` on 2024-01-(`day`), every close
/// `close` but the minutes in `changed` (close `close + 1000 + minute`).
fn day_csv(dir: &Path, symbol: &str, day: i64, close: f64, changed: &[i64]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let mut text = String::new();
    for m in 0..60 {
        let t = JAN1 + (day - 1) * DAY + m * 60_000;
        let c = match changed.contains(&m) {
            true => close + 1000.0 + m as f64,
            false => close,
        };
        text.push_str(&format!(
            "{t},1.5,2.5,1.0,{c},10.0,{},20.0,5,4.0,8.0,0\n",
            t + 59_999
        ));
    }
    let path = dir.join(format!("{symbol}-1m-2024-01-{day:02}.csv"));
    std::fs::write(&path, text).unwrap();
    path
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `pqdm ingest SOURCES --dataset BASE --exchange BINANCE --kind klines EXTRA`, as run.
fn ingest_out(base: &str, sources: &[&Path], extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut args = vec!["ingest", "--dataset", base, "--kind", "klines"];
    args.extend(sources.iter().map(|p| s(p)));
    args.extend_from_slice(extra);
    let mut cmd = bin();
    if base.starts_with("s3://") {
        s3_env(&mut cmd);
    }
    cmd.args(&args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// The JSON report of a successful ingest.
fn ingest(base: &str, sources: &[&Path], extra: &[&str]) -> Value {
    let mut all = vec!["--json", "--exchange", "BINANCE"];
    all.extend_from_slice(extra);
    json_ok(&ingest_out(base, sources, &all, &[]))
}

/// (version, unchanged, sources read, skipped, recorded, rows written, rows replaced, rows
/// unchanged, files added, files replaced) of a report.
fn counts(r: &Value) -> (u64, bool, u64, u64, u64, u64, u64, u64, usize, u64) {
    let n = |k: &str| r[k].as_u64().unwrap_or_else(|| panic!("{k} in {r}"));
    (
        n("version"),
        r["unchanged"].as_bool().unwrap(),
        n("sources_read"),
        n("sources_skipped"),
        n("sources_recorded"),
        n("rows_written"),
        n("rows_replaced"),
        n("rows_unchanged"),
        r["files"].as_array().unwrap().len(),
        n("files_replaced"),
    )
}

/// (timestamp, close) of every row of a local dataset, by timestamp.
fn closes(base: &Path) -> Vec<(i64, f64)> {
    let df = read_sorted(&Dataset::open(base).unwrap());
    let ts = df.column("timestamp").unwrap().i64().unwrap().clone();
    let close = df.column("close").unwrap().f64().unwrap().clone();
    ts.into_no_null_iter()
        .zip(close.into_no_null_iter())
        .collect()
}

/// The segment names the current version lists, and the segment files present.
fn segments(base: &Path) -> (Vec<String>, Vec<String>) {
    let listed = Dataset::open(base)
        .unwrap()
        .manifest()
        .unwrap()
        .sources
        .clone();
    let mut present: Vec<String> = std::fs::read_dir(base.join("_pqdm/sources"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    present.sort();
    (listed, present)
}

#[test]
fn a_second_ingest_of_a_folder_reads_nothing_and_commits_nothing() {
    let dir = tmp();
    let src = dir.path().join("download");
    for day in 1..=3 {
        day_csv(&src, "BTCUSDT", day, 10.0, &[]);
    }
    let base = dir.path().join("ds");
    let first = ingest(s(&base), &[&src], &[]);
    assert_eq!(counts(&first), (1, false, 3, 0, 3, 180, 0, 0, 3, 0));
    let before = snapshot(&base);
    let again = ingest(s(&base), &[&src], &[]);
    assert_eq!(counts(&again), (1, true, 0, 3, 0, 0, 0, 0, 0, 0));
    assert_eq!(snapshot(&base), before, "nothing under the dataset changed");
    let out = ingest_out(s(&base), &[&src], &["--exchange", "BINANCE"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "unchanged (version 1, upsert), 3 of 3 sources skipped (ingested before, unchanged)"
        ),
        "{text}"
    );
    // --force reads every source: their rows are stored already, so still no version.
    let forced = ingest(s(&base), &[&src], &["--force"]);
    assert_eq!(counts(&forced), (1, true, 3, 0, 0, 0, 0, 180, 0, 0));
    assert_eq!(snapshot(&base), before);
    let history = json_ok(&run(&["history", s(&base), "--json"]));
    assert_eq!(history["versions"].as_array().unwrap().len(), 2);
    assert_eq!(history["versions"][1]["operation"]["sources_recorded"], 3);
}

#[test]
fn a_new_source_is_read_alone_and_a_changed_one_again() {
    let dir = tmp();
    let src = dir.path().join("download");
    for day in 1..=3 {
        day_csv(&src, "BTCUSDT", day, 10.0, &[]);
    }
    let base = dir.path().join("ds");
    ingest(s(&base), &[&src], &[]);
    let files_before = parquet_files(&base);
    day_csv(&src, "BTCUSDT", 4, 10.0, &[]);
    let new = ingest(s(&base), &[&src], &[]);
    assert_eq!(counts(&new), (2, false, 1, 3, 1, 60, 0, 0, 1, 0));
    let files_now = parquet_files(&base);
    assert_eq!(files_now.len(), 4);
    assert!(files_before.iter().all(|f| files_now.contains(f)));
    // Day 2 downloaded again with two corrected candles: its one file is replaced.
    day_csv(&src, "BTCUSDT", 2, 10.0, &[7, 30]);
    let changed = ingest(s(&base), &[&src], &[]);
    assert_eq!(counts(&changed), (3, false, 1, 3, 1, 60, 60, 0, 1, 1));
    let rows = closes(&base);
    assert_eq!(rows.len(), 240);
    let day2 = JAN1 + DAY;
    for (t, c) in rows {
        let want = match t - day2 {
            m if m == 7 * 60_000 => 1017.0,
            m if m == 30 * 60_000 => 1040.0,
            _ => 10.0,
        };
        assert_eq!(c, want, "timestamp {t}");
    }
    // The same file changed back: read again, the new row wins again.
    day_csv(&src, "BTCUSDT", 2, 10.0, &[]);
    let back = ingest(s(&base), &[&src], &[]);
    assert_eq!(counts(&back).0, 4);
    assert!(closes(&base).iter().all(|(_, c)| *c == 10.0));
}

#[test]
fn a_source_touched_moved_or_copied_is_not_read_again_but_one_named_for_another_symbol_is() {
    let dir = tmp();
    let a = day_csv(&dir.path().join("a"), "BTCUSDT", 1, 10.0, &[]);
    let base = dir.path().join("ds");
    ingest(s(&base), &[&a], &[]);
    // Touched: hashed, found unchanged, skipped.
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(&a)
        .unwrap()
        .set_modified(later)
        .unwrap();
    assert_eq!(
        counts(&ingest(s(&base), &[&a], &[])),
        (1, true, 0, 1, 0, 0, 0, 0, 0, 0)
    );
    // Moved and copied to other folders: the same content and name, skipped.
    let moved = dir.path().join("b").join(a.file_name().unwrap());
    std::fs::create_dir_all(moved.parent().unwrap()).unwrap();
    std::fs::rename(&a, &moved).unwrap();
    let copy = dir.path().join("c").join(a.file_name().unwrap());
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    std::fs::copy(&moved, &copy).unwrap();
    assert_eq!(
        counts(&ingest(s(&base), &[&moved], &[])),
        (1, true, 0, 1, 0, 0, 0, 0, 0, 0)
    );
    assert_eq!(
        counts(&ingest(s(&base), &[&copy], &[])),
        (1, true, 0, 1, 0, 0, 0, 0, 0, 0)
    );
    // The same bytes named for ETHUSDT are ETHUSDT's candles: read.
    let eth = dir.path().join("c/ETHUSDT-1m-2024-01-01.csv");
    std::fs::copy(&copy, &eth).unwrap();
    let r = ingest(s(&base), &[&eth], &[]);
    assert_eq!(counts(&r), (2, false, 1, 0, 1, 60, 0, 0, 1, 0));
    assert_eq!(
        r["files"][0]["partition"]["symbol"].as_str(),
        Some("ETHUSDT")
    );
}

#[test]
fn another_exchange_reads_a_source_again_another_mode_does_not() {
    let dir = tmp();
    let a = day_csv(&dir.path().join("a"), "BTCUSDT", 1, 10.0, &[]);
    let base = dir.path().join("ds");
    ingest(s(&base), &[&a], &["--mode", "append"]);
    // Its rows are in the dataset, whichever mode put them there: appending them again would
    // store them twice.
    assert_eq!(
        counts(&ingest(s(&base), &[&a], &["--mode", "upsert"])),
        (1, true, 0, 1, 0, 0, 0, 0, 0, 0)
    );
    assert_eq!(
        counts(&ingest(s(&base), &[&a], &["--mode", "append"])),
        (1, true, 0, 1, 0, 0, 0, 0, 0, 0)
    );
    let um = json_ok(&ingest_out(
        s(&base),
        &[&a],
        &["--json", "--exchange", "BINANCE_UM"],
        &[],
    ));
    assert_eq!(counts(&um), (2, false, 1, 0, 1, 60, 0, 0, 1, 0));
    assert_eq!(closes(&base).len(), 120);
}

#[test]
fn two_sources_with_one_content_are_both_recorded_and_a_third_copy_is_skipped() {
    let dir = tmp();
    let a = day_csv(&dir.path().join("x"), "BTCUSDT", 1, 10.0, &[]);
    let one = dir.path().join("x/one.csv");
    let two = dir.path().join("x/two.csv");
    std::fs::rename(&a, &one).unwrap();
    std::fs::copy(&one, &two).unwrap();
    let base = dir.path().join("ds");
    let flags = ["--symbol", "BTCUSDT", "--timeframe", "1m"];
    let r = ingest(s(&base), &[&one, &two], &flags);
    // One row per key: the second file's rows take the first's keys within the input.
    assert_eq!(counts(&r), (1, false, 2, 0, 2, 60, 0, 0, 1, 0));
    let three = dir.path().join("x/three.csv");
    std::fs::copy(&one, &three).unwrap();
    let r = ingest(s(&base), &[&one, &two, &three], &flags);
    assert_eq!(counts(&r), (1, true, 0, 3, 0, 0, 0, 0, 0, 0));
}

#[test]
fn the_same_source_into_two_datasets_is_recorded_by_each() {
    let dir = tmp();
    let a = day_csv(&dir.path().join("a"), "BTCUSDT", 1, 10.0, &[]);
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    assert_eq!(counts(&ingest(s(&one), &[&a], &[])).2, 1);
    assert_eq!(counts(&ingest(s(&two), &[&a], &[])).2, 1);
    assert_eq!(counts(&ingest(s(&one), &[&a], &[])).3, 1);
    assert_eq!(counts(&ingest(s(&two), &[&a], &[])).3, 1);
    assert_eq!(segments(&one).0.len(), 1);
    assert_eq!(segments(&two).0.len(), 1);
}

#[test]
fn a_write_killed_or_failed_before_its_commit_point_records_no_source() {
    let dir = tmp();
    let src = dir.path().join("download");
    day_csv(&src, "BTCUSDT", 1, 10.0, &[]);
    let base = dir.path().join("ds");
    ingest(s(&base), &[&src], &[]);
    day_csv(&src, "BTCUSDT", 2, 10.0, &[]);
    day_csv(&src, "BTCUSDT", 3, 10.0, &[]);
    for fault in ["commit.moved=kill", "commit.version_written=error"] {
        let out = ingest_out(
            s(&base),
            &[&src],
            &["--json", "--exchange", "BINANCE"],
            &[("PQDM_FAILPOINTS", fault)],
        );
        assert!(!out.status.success(), "{fault}");
        // The failed write's segment is no version's: days 2 and 3 are new still.
        let (listed, present) = segments(&base);
        assert_eq!(listed.len(), 1, "{fault}");
        assert_eq!(present.len(), 2, "{fault}: {present:?}");
    }
    // A bad file fails the ingest and records nothing either.
    let empty = src.join("BTCUSDT-1m-2024-01-04.csv");
    std::fs::write(&empty, "").unwrap();
    let out = ingest_out(s(&base), &[&src], &["--exchange", "BINANCE"], &[]);
    assert!(stderr(&out).contains("BTCUSDT-1m-2024-01-04.csv: empty file"));
    assert_eq!(segments(&base).0.len(), 1);
    std::fs::remove_file(&empty).unwrap();
    // Day 2 alone now: its record differs from the failed writes' (which held day 3 too).
    let two = src.join("BTCUSDT-1m-2024-01-02.csv");
    assert_eq!(
        counts(&ingest(s(&base), &[&two], &[])),
        (2, false, 1, 0, 1, 60, 0, 0, 1, 0)
    );
    let r = ingest(s(&base), &[&src], &[]);
    assert_eq!(counts(&r), (3, false, 1, 2, 1, 60, 0, 0, 1, 0));
    assert_eq!(closes(&base).len(), 180);
    // Vacuum deletes the segment no kept version lists.
    let (listed, present) = segments(&base);
    assert_eq!((listed.len(), present.len()), (3, 4));
    json_ok(&run(&["vacuum", s(&base), "--retention", "0s", "--json"]));
    let (mut listed, present) = segments(&base);
    listed.sort();
    assert_eq!(listed, present);
}

#[test]
fn a_source_edited_while_it_is_ingested_is_read_again_next_time() {
    let dir = tmp();
    let src = dir.path().join("download");
    let a = day_csv(&src, "BTCUSDT", 1, 10.0, &[]);
    let base = dir.path().join("ds");
    let mut cmd = bin();
    cmd.args([
        "ingest",
        "--dataset",
        s(&base),
        "--kind",
        "klines",
        "--exchange",
        "BINANCE",
        "--json",
        s(&a),
    ])
    .env("PQDM_FAILPOINTS", "ingest.planned=sleep:4000")
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    // Hashed and planned, not read yet: rewritten with other closes.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    day_csv(&src, "BTCUSDT", 1, 20.0, &[]);
    let out = child.wait_with_output().unwrap();
    let r = json_ok(&out);
    assert!(stderr(&out).contains("changed while it was ingested"));
    // What was read is stored; the source is not recorded.
    assert_eq!(counts(&r), (1, false, 1, 0, 0, 60, 0, 0, 1, 0));
    assert!(closes(&base).iter().all(|(_, c)| *c == 20.0));
    assert!(segments(&base).0.is_empty());
    // Read again: its rows are stored already, and a version records it.
    let again = ingest(s(&base), &[&a], &[]);
    assert_eq!(counts(&again), (2, true, 1, 0, 1, 0, 0, 60, 0, 0));
    let history = json_ok(&run(&["history", s(&base), "--json"]));
    assert_eq!(history["versions"][2]["operation"]["files_added"], 0);
    assert_eq!(
        counts(&ingest(s(&base), &[&a], &[])),
        (2, true, 0, 1, 0, 0, 0, 0, 0, 0)
    );
}

#[test]
fn many_ingests_fold_the_sources_index_into_few_segments() {
    let dir = tmp();
    let src = dir.path().join("download");
    let base = dir.path().join("ds");
    for day in 1..=18 {
        let f = day_csv(&src, "BTCUSDT", day, 10.0, &[]);
        ingest(s(&base), &[&f], &[]);
        let want = if day <= 16 { day } else { day - 16 };
        assert_eq!(segments(&base).0.len(), want as usize, "after day {day}");
    }
    let r = ingest(s(&base), &[&src], &[]);
    assert_eq!(counts(&r), (18, true, 0, 18, 0, 0, 0, 0, 0, 0));
}

#[test]
fn the_demo_run_twice_commits_nothing_the_second_time() {
    let dir = tmp();
    let out_dir = dir.path().join("demo");
    let demo = || {
        let out = run(&["demo", "--dir", s(&out_dir), "--data", s(&data_dir())]);
        assert!(out.status.success(), "{}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let first = demo();
    assert_eq!(first.matches("unchanged").count(), 0, "{first}");
    let klines = out_dir.join("klines");
    let before = snapshot(&klines);
    let second = demo();
    let ingests: Vec<&str> = second.lines().filter(|l| l.contains("ingest ")).collect();
    assert_eq!(ingests.len(), 4, "{second}");
    assert!(
        ingests
            .iter()
            .all(|l| l.contains("unchanged") && l.contains("sources skipped")),
        "{second}"
    );
    assert!(second.contains("klines     unchanged (version 2, upsert), 4 of 4 sources skipped"));
    assert_eq!(snapshot(&klines), before);
    // Read again by force: every row is stored already, nothing is replaced.
    let forced = json_ok(&run(&[
        "ingest",
        s(&data_dir().join("spot/klines")),
        "--dataset",
        s(&klines),
        "--exchange",
        "BINANCE",
        "--force",
        "--json",
    ]));
    assert_eq!(counts(&forced), (2, true, 4, 0, 0, 0, 0, 5760, 0, 0));
    assert_eq!(snapshot(&klines), before);
}

#[test]
fn an_upsert_of_stored_rows_changes_nothing_and_of_a_few_rows_only_their_file() {
    let dir = tmp();
    let ds = klines_dataset(dir.path());
    let opts = pqdm::WriteOptions {
        layout: FileLayout {
            max_rows_per_file: Some(60),
            ..Default::default()
        },
        ..kline_opts("BTCUSDT")
    };
    let two_hours = candles(JAN1, 120, 100.0);
    ds.write(two_hours.clone().lazy(), &opts).unwrap();
    let files = parquet_files(dir.path());
    assert_eq!(files.len(), 2);
    let before = snapshot(dir.path());
    let same = ds.write(two_hours.clone().lazy(), &opts).unwrap();
    assert!(same.unchanged);
    assert_eq!(
        (
            same.version,
            same.rows_written,
            same.rows_unchanged,
            same.rows_replaced
        ),
        (1, 0, 120, 0)
    );
    assert!(same.files.is_empty());
    assert_eq!(snapshot(dir.path()), before);
    // One candle of the second hour corrected: the second file alone is replaced.
    let mut corrected = two_hours.clone();
    let close: Vec<f64> = (0..120)
        .map(|i| if i == 100 { -1.0 } else { 100.0 + i as f64 })
        .collect();
    corrected
        .with_column(Column::new("close".into(), close))
        .unwrap();
    let r = ds.write(corrected.lazy(), &opts).unwrap();
    assert!(!r.unchanged);
    assert_eq!(
        (
            r.version,
            r.rows_written,
            r.rows_unchanged,
            r.rows_replaced,
            r.files_replaced
        ),
        (2, 60, 60, 60, 1)
    );
    let now = parquet_files(dir.path());
    assert_eq!(now.len(), 2);
    let kept: Vec<&String> = files.iter().filter(|f| now.contains(f)).collect();
    assert_eq!(kept.len(), 1, "{files:?} -> {now:?}");
    let df = read_sorted(&ds);
    let got = df.column("close").unwrap().f64().unwrap();
    assert_eq!(
        (df.height(), got.get(100), got.get(99)),
        (120, Some(-1.0), Some(199.0))
    );
    // Half an hour again plus one new candle: the stored rows stay, the new one is written.
    let mut part = candles(JAN1, 30, 100.0);
    part.vstack_mut(&candles(JAN1 + 200 * 60_000, 1, 5.0))
        .unwrap();
    let r = ds.write(part.lazy(), &opts).unwrap();
    assert_eq!(
        (
            r.version,
            r.rows_written,
            r.rows_unchanged,
            r.rows_replaced,
            r.files_replaced
        ),
        (3, 1, 30, 0, 0)
    );
    assert_eq!(r.files.iter().map(|f| f.rows).collect::<Vec<_>>(), [1]);
    assert_eq!(read_sorted(&ds).height(), 121);
}

#[test]
fn an_s3_dataset_skips_the_sources_it_ingested() {
    let dir = tmp();
    let src = dir.path().join("download");
    for day in 1..=2 {
        day_csv(&src, "BTCUSDT", day, 10.0, &[]);
    }
    let base = format!("s3://{}/klines", s3_bucket());
    assert_eq!(
        counts(&ingest(&base, &[&src], &[])),
        (1, false, 2, 0, 2, 120, 0, 0, 2, 0)
    );
    assert_eq!(
        counts(&ingest(&base, &[&src], &[])),
        (1, true, 0, 2, 0, 0, 0, 0, 0, 0)
    );
    day_csv(&src, "BTCUSDT", 2, 10.0, &[5]);
    assert_eq!(
        counts(&ingest(&base, &[&src], &[])),
        (2, false, 1, 1, 1, 60, 60, 0, 1, 1)
    );
    let rows = s3_timestamp_closes(&base);
    assert_eq!(rows.len(), 120);
    assert_eq!(
        rows.iter().filter(|(_, c)| *c != 10.0).collect::<Vec<_>>(),
        [&(JAN1 + DAY + 5 * 60_000, 1015.0)]
    );
}

/// A first ingest hashes its sources beside the write (no record can match them): killed before
/// its commit point it records nothing, and the ingest after it records hashes that let a copy
/// of a source be skipped.
#[test]
fn a_first_ingest_killed_while_its_sources_are_hashed_beside_it_records_them_next_time() {
    let dir = tmp();
    let src = dir.path().join("download");
    for day in 1..=2 {
        day_csv(&src, "BTCUSDT", day, 10.0, &[]);
    }
    let base = dir.path().join("ds");
    // Version 0, with an empty sources index.
    klines_dataset(&base);
    for fault in ["commit.journaled=kill", "commit.moved=kill"] {
        let out = ingest_out(s(&base), &[&src], &[], &[("PQDM_FAILPOINTS", fault)]);
        assert!(!out.status.success(), "{fault}");
        assert!(
            segments(&base).0.is_empty(),
            "{fault}: no version lists a segment"
        );
    }
    let r = ingest(s(&base), &[&src], &[]);
    assert_eq!(counts(&r), (1, false, 2, 0, 2, 120, 0, 0, 2, 0));
    assert_eq!(closes(&base).len(), 120);
    // Copied elsewhere: the recorded hashes match, nothing is read.
    let copies = dir.path().join("copies");
    std::fs::create_dir_all(&copies).unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, copies.join(p.file_name().unwrap())).unwrap();
    }
    assert_eq!(
        counts(&ingest(s(&base), &[&copies], &[])),
        (1, true, 0, 2, 0, 0, 0, 0, 0, 0)
    );
}
