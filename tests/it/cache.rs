//! The projection cache and materialised projections.

use std::sync::Arc;
use std::time::Duration;

use polars::prelude::*;
use pqdm::cache::{Cache, ManualClock, Status, Transform, cached_projection};
use pqdm::{Dataset, ScanOptions};

use crate::common::*;

const JAN5: i64 = 1_704_412_800_000;
const DAY: i64 = 86_400_000;

fn two_symbols(dir: &std::path::Path) -> Dataset {
    let ds = klines_dataset(dir);
    ds.write(candles(JAN5, 2000, 1.0).lazy(), &kline_opts("BTCUSDT"))
        .unwrap();
    ds.write(candles(JAN5, 2000, 5.0).lazy(), &kline_opts("ETHUSDT"))
        .unwrap();
    ds
}

fn opts(filters: &[&str], cols: &[&str]) -> ScanOptions {
    let mut o = ScanOptions::default().columns(cols);
    for f in filters {
        o = o.filter(f).unwrap();
    }
    o
}

#[test]
fn hits_misses_and_staleness() {
    let dir = tmp();
    let cache_dir = tmp();
    let ds = two_symbols(dir.path());
    let cache = Cache::new(cache_dir.path());
    let q = opts(
        &["symbol == ETHUSDT", "timestamp >= 2024-01-06"],
        &["timestamp", "close"],
    );
    let (lf, status) = cached_projection(&ds, &q, &cache, None).unwrap();
    assert_eq!(status, Status::Miss);
    let first = lf.collect().unwrap();
    assert_eq!(first.height(), 2000 - 1440);
    // A hit reads no data file: make them all garbage.
    let m = ds.manifest().unwrap();
    let saved: Vec<(std::path::PathBuf, Vec<u8>)> = ds
        .file_paths(&m)
        .into_iter()
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    for (p, _) in &saved {
        std::fs::write(p, b"garbage").unwrap();
    }
    let (lf, status) = cached_projection(&ds, &q, &cache, None).unwrap();
    assert_eq!(status, Status::Hit);
    assert!(lf.collect().unwrap().equals(&first));
    // The same filters in another order hit too.
    let reordered = opts(
        &["timestamp >= 2024-01-06", "symbol == ETHUSDT"],
        &["timestamp", "close"],
    );
    assert_eq!(
        cached_projection(&ds, &reordered, &cache, None).unwrap().1,
        Status::Hit
    );
    for (p, b) in &saved {
        std::fs::write(p, b).unwrap();
    }
    // Other columns, filters or transform: misses.
    assert_eq!(
        cached_projection(
            &ds,
            &opts(
                &["symbol == ETHUSDT", "timestamp >= 2024-01-06"],
                &["timestamp"]
            ),
            &cache,
            None
        )
        .unwrap()
        .1,
        Status::Miss
    );
    assert_eq!(
        cached_projection(
            &ds,
            &opts(
                &["symbol == BTCUSDT", "timestamp >= 2024-01-06"],
                &["timestamp", "close"]
            ),
            &cache,
            None
        )
        .unwrap()
        .1,
        Status::Miss
    );
    let double = |lf: LazyFrame| lf.with_column(col("close") * lit(2.0));
    let t = Transform {
        name: "double-close",
        apply: &double,
    };
    let (lf, status) = cached_projection(&ds, &q, &cache, Some(&t)).unwrap();
    assert_eq!(status, Status::Miss);
    assert_eq!(
        lf.collect()
            .unwrap()
            .column("close")
            .unwrap()
            .f64()
            .unwrap()
            .get(0),
        Some(2.0 * (5.0 + 1440.0))
    );
    assert_eq!(
        cached_projection(&ds, &q, &cache, Some(&t)).unwrap().1,
        Status::Hit
    );
    // A new commit makes the old entry a miss, and the new rows show.
    ds.write(
        candles(JAN5 + 2000 * 60_000, 100, 9.0).lazy(),
        &kline_opts("ETHUSDT"),
    )
    .unwrap();
    let (lf, status) = cached_projection(&ds, &q, &cache, None).unwrap();
    assert_eq!(status, Status::Miss);
    assert_eq!(lf.collect().unwrap().height(), 2000 - 1440 + 100);
    assert_eq!(cache.entries().unwrap().len(), 5);
    // gc drops the entries of versions the dataset moved past.
    let removed = cache.gc().unwrap();
    assert_eq!(removed.len(), 4);
    assert_eq!(cache.entries().unwrap().len(), 1);
}

#[test]
fn ttl_and_size_cap() {
    let dir = tmp();
    let cache_dir = tmp();
    let ds = two_symbols(dir.path());
    // The cache's own clock, moved by hand: no sleeping, no ties between two lookups.
    let clock = Arc::new(ManualClock::new(1_000_000));
    let mut cache = Cache::new(cache_dir.path()).with_clock(clock.clone());
    cache.ttl = Some(Duration::from_millis(300));
    let q = opts(&["symbol == BTCUSDT"], &["timestamp", "close"]);
    let status = |cache: &Cache, q: &ScanOptions| cached_projection(&ds, q, cache, None).unwrap().1;
    assert_eq!(status(&cache, &q), Status::Miss);
    clock.advance(Duration::from_millis(299));
    assert_eq!(status(&cache, &q), Status::Hit, "299 ms old, TTL 300 ms");
    clock.advance(Duration::from_millis(1));
    assert_eq!(status(&cache, &q), Status::Miss, "300 ms old: expired");
    assert_eq!(cache.entries().unwrap()[0].created, 1_000_300);
    // gc removes what the TTL expired, and only that.
    clock.advance(Duration::from_millis(299));
    assert_eq!(cache.gc().unwrap().len(), 0);
    clock.advance(Duration::from_millis(1));
    assert_eq!(cache.gc().unwrap().len(), 1);

    let mut cache = Cache::new(cache_dir.path().join("lru")).with_clock(clock.clone());
    let a = opts(&["symbol == BTCUSDT"], &["timestamp", "close"]);
    let b = opts(&["symbol == ETHUSDT"], &["timestamp", "close"]);
    let c = opts(&["symbol == BTCUSDT"], &["timestamp", "open"]);
    assert_eq!(status(&cache, &a), Status::Miss);
    clock.advance(Duration::from_millis(1));
    assert_eq!(status(&cache, &b), Status::Miss);
    clock.advance(Duration::from_millis(1));
    assert_eq!(status(&cache, &a), Status::Hit); // a is now the most recent
    let size = cache
        .entries()
        .unwrap()
        .iter()
        .map(|e| e.bytes)
        .max()
        .unwrap();
    cache.max_bytes = 2 * size + size / 2;
    clock.advance(Duration::from_millis(1));
    assert_eq!(status(&cache, &c), Status::Miss);
    assert_eq!(status(&cache, &a), Status::Hit);
    assert_eq!(
        status(&cache, &b),
        Status::Miss,
        "b was the least recently used"
    );
}

#[test]
fn cli_cache_commands() {
    let dir = tmp();
    let cache_dir = tmp();
    two_symbols(dir.path());
    let base = dir.path().to_str().unwrap();
    let cdir = cache_dir.path().to_str().unwrap();
    let scan = [
        "scan",
        base,
        "--filter",
        "symbol == BTCUSDT",
        "--columns",
        "timestamp",
        "--limit",
        "2",
        "--format",
        "csv",
        "--cache",
        cdir,
    ];
    // Each run says whether the cache served it; the second reads no data file (they are
    // junk by then) and writes the same rows.
    let outputs = tmp();
    let out = |name: &str| {
        let path = outputs.path().join(name);
        let mut args = scan.to_vec();
        args.extend(["--output", path.to_str().unwrap(), "--json"]);
        let report = json_ok(&run(&args));
        (report["cache"].clone(), std::fs::read(&path).unwrap())
    };
    let (status, first) = out("first.csv");
    assert_eq!(status, "miss");
    assert_eq!(first, b"timestamp\n1704412800000\n1704412860000\n");
    let data: Vec<_> = parquet_files(dir.path())
        .iter()
        .map(|p| dir.path().join(p))
        .collect();
    assert!(!data.is_empty());
    let saved: Vec<Vec<u8>> = data.iter().map(|p| std::fs::read(p).unwrap()).collect();
    for p in &data {
        std::fs::write(p, b"junk").unwrap();
    }
    let (status, second) = out("second.csv");
    assert_eq!(status, "hit");
    assert_eq!(second, first);
    for (p, b) in data.iter().zip(&saved) {
        std::fs::write(p, b).unwrap();
    }
    let ls = run(&["cache", "ls", "--cache", cdir, "--json"]);
    let entries: serde_json::Value = serde_json::from_slice(&ls.stdout).unwrap();
    assert_eq!(entries["entries"].as_array().unwrap().len(), 1);
    assert_eq!(entries["entries"][0]["rows"], 2000);
    assert!(entries["peak_rss_bytes"].as_u64().unwrap() > 0);
    let clear = run(&["cache", "clear", "--cache", cdir]);
    assert_eq!(
        String::from_utf8_lossy(&clear.stdout),
        "1 entries removed\n"
    );
}

#[test]
fn materialize_a_projection() {
    let dir = tmp();
    let ds = two_symbols(dir.path());
    let dest = dir.path().join("_views/eth");
    let q = opts(
        &["symbol == ETHUSDT", "timestamp < 2024-01-06T06:00"],
        &["symbol", "timestamp", "close"],
    );
    let (view, report) = ds.materialize(&q, &dest, None).unwrap();
    assert_eq!(report.rows_written, 1440 + 360);
    let m = view.manifest().unwrap();
    assert_eq!(
        m.partition_columns
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>(),
        vec!["symbol", "year", "month", "day"]
    );
    assert_eq!(m.source.as_ref().unwrap()["version"], 2);
    assert_eq!(
        m.source.as_ref().unwrap()["filters"],
        serde_json::json!(["symbol == ETHUSDT", "timestamp < 2024-01-06T06:00"])
    );
    let want = ds
        .scan(&q)
        .unwrap()
        .sort(["timestamp"], Default::default())
        .collect()
        .unwrap();
    let got = view
        .scan(&ScanOptions::default().columns(&["symbol", "timestamp", "close"]))
        .unwrap()
        .sort(["timestamp"], Default::default())
        .collect()
        .unwrap();
    assert!(got.equals(&want));
    // An empty result is an error and creates nothing.
    let empty = dir.path().join("_views/none");
    let err = ds
        .materialize(&opts(&["symbol == XRPUSDT"], &["timestamp"]), &empty, None)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("selects no rows"), "{err}");
    assert!(!empty.exists());
    // Through the CLI.
    let out = run(&[
        "materialize",
        dir.path().to_str().unwrap(),
        "--to",
        dir.path().join("_views/btc").to_str().unwrap(),
        "--filter",
        "symbol == BTCUSDT",
        "--partition-by",
        "year",
        "--json",
    ]);
    let r = json_ok(&out);
    assert_eq!(r["rows_written"], 2000);
    let _ = DAY;
}
