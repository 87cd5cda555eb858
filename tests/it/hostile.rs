//! The hostile-input corpus (tests/corpus, made by scripts/make_hostile_corpus.py): every bad
//! input gets a clear error and a non-zero exit, and leaves the dataset exactly as it was.

use std::path::{Path, PathBuf};

use pqdm::progress::Progress;
use pqdm::{Dataset, ScanOptions};

use crate::common::*;

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(name)
}

/// A klines dataset with one day in it, inside its own folder (so writes outside it would show).
fn seeded() -> (tempfile::TempDir, PathBuf) {
    let dir = tmp();
    let base = dir.path().join("ds");
    let out = run(&[
        "ingest",
        data_dir()
            .join("spot/klines/BTCUSDT-1m-2024-01-05.zip")
            .to_str()
            .unwrap(),
        "--dataset",
        base.to_str().unwrap(),
        "--kind",
        "klines",
        "--quiet",
    ]);
    assert!(out.status.success());
    (dir, base)
}

#[test]
fn bad_inputs_fail_clearly_and_change_nothing() {
    let cases: &[(&str, &str)] = &[
        (
            "truncated.parquet",
            "truncated.parquet: not a readable Parquet file",
        ),
        (
            "wrong_schema.parquet",
            "wrong_schema.parquet: missing required columns `timestamp`, `open`, `high`, `low`, `close`, `volume`",
        ),
        (
            "BTCUSDT-1m-2024-01-05-ragged.csv",
            "BTCUSDT-1m-2024-01-05-ragged.csv",
        ),
        (
            "wrong_kind.csv",
            "wrong_kind.csv: missing required columns `open`, `high`",
        ),
        ("empty.csv", "empty.csv: empty file"),
        (
            "BTCUSDT-1m-2024-01-05-two.zip",
            "the archive holds 2 CSV files; expected one",
        ),
        (
            "BTCUSDT-1m-2024-01-05-none.zip",
            "the archive holds no CSV file",
        ),
        (
            "BTCUSDT-1m-2024-01-05-bomb.zip",
            "refused as a possible zip bomb",
        ),
        (
            "BTCUSDT-1m-1969-12-31.csv",
            "column `timestamp`, row 1: cannot cast value \"-86400000\" to timestamp (epoch s, ms, µs or ns from 1990-01-01 to 2262-04-11",
        ),
        (
            "BTCUSDT-1m-2264-01-01.csv",
            "column `timestamp`, row 1: cannot cast value \"9300000000000\" to timestamp",
        ),
    ];
    let (dir, base) = seeded();
    let before = snapshot(dir.path());
    for (file, message) in cases {
        let out = bin()
            .args([
                "ingest",
                corpus(file).to_str().unwrap(),
                "--dataset",
                base.to_str().unwrap(),
                "--quiet",
            ])
            .env("PQDM_MAX_UNZIP_BYTES", "1000000")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{file}: {err}");
        assert!(
            err.contains(message),
            "{file}: expected `{message}` in: {err}"
        );
        assert_eq!(snapshot(dir.path()), before, "{file} changed something");
    }
    // Lenient mode nulls the out-of-range timestamp instead, and says how many.
    let out = run(&[
        "ingest",
        corpus("BTCUSDT-1m-2264-01-01.csv").to_str().unwrap(),
        "--dataset",
        base.to_str().unwrap(),
        "--lenient",
        "--mode",
        "append",
        "--json",
    ]);
    let v = json_ok(&out);
    assert_eq!(v["nulled"]["timestamp"], 1, "{v}");
}

#[test]
fn odd_values_are_kept_and_flagged() {
    let (_dir, base) = seeded();
    let out = run(&[
        "ingest",
        corpus("BTCUSDT-1m-2024-01-06-nan.csv").to_str().unwrap(),
        "--dataset",
        base.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ds = Dataset::open(&base).unwrap();
    let r = ds.verify(false, &Progress::hidden()).unwrap();
    assert_eq!(r.bad_values.get("open"), Some(&3), "{:?}", r.bad_values);

    let dir = tmp();
    let agg = dir.path().join("agg");
    let out = run(&[
        "ingest",
        corpus("BTCUSDT-aggTrades-2024-01-05-negative.csv")
            .to_str()
            .unwrap(),
        "--dataset",
        agg.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ds = Dataset::open(&agg).unwrap();
    assert_eq!(ds.manifest().unwrap().total_rows, 2);
    assert_eq!(
        ds.verify(false, &Progress::hidden())
            .unwrap()
            .bad_values
            .get("quantity"),
        Some(&1)
    );
}

#[test]
fn hostile_symbols_stay_inside_and_round_trip() {
    let dir = tmp();
    let base = dir.path().join("inner").join("ds");
    let out = run(&[
        "ingest",
        corpus("weird_symbols.csv").to_str().unwrap(),
        "--dataset",
        base.to_str().unwrap(),
        "--kind",
        "klines",
        "--exchange",
        "X",
        "--timeframe",
        "1m",
        "--quiet",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Nothing outside the dataset folder: its parent holds only it.
    let siblings: Vec<_> = std::fs::read_dir(dir.path().join("inner"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(siblings, vec![std::ffi::OsString::from("ds")]);
    let ds = Dataset::open(&base).unwrap();
    let mut symbols: Vec<String> = ds
        .scan(&ScanOptions::default().columns(&["symbol"]))
        .unwrap()
        .collect()
        .unwrap()
        .column("symbol")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|s| s.unwrap().to_string())
        .collect();
    symbols.sort();
    let mut want: Vec<String> = [
        "BTC/USDT",
        "A=B",
        "ETH USDT",
        "币安币",
        // Symbols are stored in upper case (issue 19).
        "../X",
        "%2F",
        "..",
        ".",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    want.sort();
    assert_eq!(symbols, want);
    for f in &ds.manifest().unwrap().files {
        assert!(ds.base().join(&f.path).starts_with(&base), "{}", f.path);
        assert_eq!(
            f.path.matches('/').count(),
            6,
            "one folder per partition column: {}",
            f.path
        );
    }
    let df = ds
        .scan(&ScanOptions::default().filter("symbol == ../X").unwrap())
        .unwrap()
        .collect()
        .unwrap();
    assert_eq!(df.height(), 1);
    // pyarrow decodes the escaped folder names to the same symbols.
    let seen = py(
        "import sys, pyarrow.dataset as ds\nt = ds.dataset(sys.argv[1], partitioning='hive').to_table()\nprint(sorted(t.column('symbol').to_pylist()))",
        &[base.to_str().unwrap()],
    );
    let want_py = format!(
        "[{}]\n",
        want.iter()
            .map(|s| format!("'{s}'"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert_eq!(seen, want_py);
}

#[test]
fn hostile_manifests_are_refused() {
    let (dir, base) = seeded();
    // As an earlier pqdm wrote it: the newest file of the history is the current version
    // (`_manifest.json` is its copy).
    write_version_files(&base);
    let mut history = vec![];
    pqdm::manifest::walk(&base.join("_pqdm/versions"), &mut |p| {
        history.push(p.to_path_buf())
    })
    .unwrap();
    history.sort();
    let current = history.pop().unwrap();
    let good = std::fs::read_to_string(&current).unwrap();
    let mut outside: serde_json::Value = serde_json::from_str(&good).unwrap();
    outside["files"][0]["path"] = "../../outside.parquet".into();
    let cases: Vec<(String, &str)> = vec![
        (
            std::fs::read_to_string(corpus("manifest_corrupt.json")).unwrap(),
            "is not valid JSON",
        ),
        (
            std::fs::read_to_string(corpus("manifest_truncated.json")).unwrap(),
            "is not valid JSON",
        ),
        (
            std::fs::read_to_string(corpus("manifest_future.json")).unwrap(),
            "has format version 99, newer than this pqdm reads (1); upgrade pqdm",
        ),
        (
            outside.to_string(),
            "lists a file outside the dataset (a path that leaves its folder): \"../../outside.parquet\"",
        ),
    ];
    for (text, message) in cases {
        std::fs::write(&current, &text).unwrap();
        let before = snapshot(dir.path());
        for args in [
            vec!["info", base.to_str().unwrap()],
            vec!["scan", base.to_str().unwrap()],
            vec![
                "ingest",
                data_dir()
                    .join("spot/klines/ETHUSDT-1m-2024-01-05.zip")
                    .to_str()
                    .unwrap()
                    .to_string()
                    .leak(),
                "--dataset",
                base.to_str().unwrap(),
            ],
        ] {
            let out = run(&args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
            assert!(
                err.contains(message),
                "{args:?}: expected `{message}` in {err}"
            );
        }
        assert_eq!(snapshot(dir.path()), before);
    }
    std::fs::write(&current, good).unwrap();
    assert_eq!(
        Dataset::open(&base).unwrap().manifest().unwrap().total_rows,
        1440
    );
}
