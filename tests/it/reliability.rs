//! Crashes (SIGKILL at random points) and concurrent writers.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use polars::prelude::IntoLazy;

use crate::common::*;

/// Writes a headerless Binance klines CSV of `days` days for `symbol`.
fn kline_csv(dir: &Path, symbol: &str, days: i64) -> std::path::PathBuf {
    let start = 1_704_067_200_000i64;
    let mut text = String::new();
    for i in 0..days * 1440 {
        let t = start + i * 60_000;
        text.push_str(&format!(
            "{t},1.5,2.5,1.0,2.0,10.0,{},20.0,5,4.0,8.0,0\n",
            t + 59_999
        ));
    }
    let path = dir.join(format!("{symbol}-1m-2024-01-01.csv"));
    std::fs::write(&path, text).unwrap();
    path
}

/// A tiny deterministic generator, so a failing run can be replayed from its seed.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

#[test]
fn sigkill_at_random_points_never_breaks_a_version() {
    let seed: u64 = std::env::var("PQDM_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261124);
    let kills: usize = std::env::var("PQDM_CRASH_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(16);
    let mut rng = Lcg(seed);
    let dir = tmp();
    let base = dir.path().join("ds");
    let inputs = dir.path().join("in");
    std::fs::create_dir_all(&inputs).unwrap();
    let mut expected_rows = 0u64;
    let mut killed = 0;
    let mut round = 0;
    while killed < kills {
        round += 1;
        let symbol = format!("S{round:03}USDT");
        let csv = kline_csv(&inputs, &symbol, 20);
        let before = pqdm::Dataset::open(&base)
            .map(|d| d.manifest().version)
            .unwrap_or(0);
        let mut child = bin()
            .args([
                "ingest",
                csv.to_str().unwrap(),
                "--dataset",
                base.to_str().unwrap(),
                "--kind",
                "klines",
                "--quiet",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let wait_ms = rng.next() % 900;
        std::thread::sleep(Duration::from_millis(wait_ms));
        let finished = child.try_wait().unwrap().is_some();
        if !finished {
            child.kill().unwrap();
            killed += 1;
        }
        child.wait().unwrap();
        std::fs::remove_file(&csv).unwrap();
        let Ok(ds) = pqdm::Dataset::open(&base) else {
            // Killed before the dataset was first created: nothing may be visible.
            assert!(parquet_files(&base).is_empty(), "seed {seed} round {round}");
            continue;
        };
        let m = ds.manifest();
        if m.version > before {
            expected_rows += 20 * 1440;
        }
        assert_eq!(
            m.total_rows, expected_rows,
            "seed {seed} round {round} (waited {wait_ms} ms)"
        );
        let rows = ds
            .scan(&Default::default())
            .unwrap()
            .collect()
            .unwrap()
            .height() as u64;
        assert_eq!(rows, expected_rows, "seed {seed} round {round}");
        // Opening recovered any half-done commit: plain globs see exactly the manifest's files.
        let visible = parquet_files(&base);
        let listed: Vec<String> = m.files.iter().map(|f| f.path.clone()).collect();
        assert_eq!(visible, listed, "seed {seed} round {round}");
    }
    let out = py(
        "import sys, pyarrow.dataset as ds, duckdb\nb=sys.argv[1]\nprint(ds.dataset(b, partitioning='hive').count_rows(), duckdb.connect().execute(f\"select count(*) from read_parquet('{b}/**/*.parquet')\").fetchone()[0])",
        &[base.to_str().unwrap()],
    );
    assert_eq!(out, format!("{expected_rows} {expected_rows}\n"));
}

#[test]
fn four_writers_at_once_all_land() {
    let dir = tmp();
    let base = dir.path().join("ds");
    let inputs = dir.path().join("in");
    std::fs::create_dir_all(&inputs).unwrap();
    let mut procs = vec![];
    for s in ["AUSDT", "BUSDT", "CUSDT", "DUSDT"] {
        let csv = kline_csv(&inputs, &format!("X{s}"), 3);
        procs.push(
            bin()
                .args([
                    "ingest",
                    csv.to_str().unwrap(),
                    "--dataset",
                    base.to_str().unwrap(),
                    "--kind",
                    "klines",
                    "--quiet",
                ])
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
    }
    for p in procs {
        let out = p.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let ds = pqdm::Dataset::open(&base).unwrap();
    let m = ds.manifest();
    assert_eq!(m.version, 4);
    assert_eq!(m.total_rows, 4 * 3 * 1440);
    assert_eq!(m.latest_by_key.len(), 4);
    let df = ds.scan(&Default::default()).unwrap().collect().unwrap();
    assert_eq!(df.height(), 4 * 3 * 1440);
    let unique = df
        .lazy()
        .select([polars::prelude::col("symbol").n_unique()])
        .collect()
        .unwrap();
    assert_eq!(
        unique
            .column("symbol")
            .unwrap()
            .get(0)
            .unwrap()
            .extract::<u32>(),
        Some(4)
    );
}
