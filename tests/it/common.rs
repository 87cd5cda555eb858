//! Shared test helpers: temporary folders, the real binary, sample frames, the Python peers.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use polars::prelude::*;
use pqdm::schema::KindRegistry;
use pqdm::{CreateOptions, Dataset, WriteOptions};

/// The built `pqdm` binary.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pqdm"))
}

/// Runs the binary with `args`, returning its output.
pub fn run(args: &[&str]) -> Output {
    bin()
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run pqdm")
}

/// The JSON a successful command printed (panics with its stderr if it failed).
pub fn json_ok(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Every file under `dir` with its bytes, sorted: to prove a failed command changed nothing.
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = vec![];
    pqdm::manifest::walk(dir, &mut |p| {
        files.push((p.to_path_buf(), std::fs::read(p).unwrap()))
    })
    .unwrap();
    files.sort();
    files
}

/// The repository's sample data folder.
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data")
}

/// A fresh temporary folder under the target folder.
pub fn tmp() -> tempfile::TempDir {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(root).unwrap();
    tempfile::tempdir_in(root).unwrap()
}

/// Constants for exchange/symbol/timeframe.
pub fn consts(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `n` one-minute candles from `start_ms`, Binance-named columns.
pub fn candles(start_ms: i64, n: usize, price: f64) -> DataFrame {
    let ts: Vec<i64> = (0..n as i64).map(|i| start_ms + i * 60_000).collect();
    let close: Vec<f64> = (0..n).map(|i| price + i as f64).collect();
    df!(
        "open_time" => ts.clone(),
        "open" => close.clone(), "high" => close.clone(), "low" => close.clone(), "close" => close.clone(),
        "volume" => vec![1.5f64; n],
        "close_time" => ts.iter().map(|t| t + 59_999).collect::<Vec<_>>(),
        "count" => vec![7i64; n],
    )
    .unwrap()
}

/// A new klines dataset under `dir`.
pub fn klines_dataset(dir: &Path) -> Dataset {
    Dataset::create(
        dir,
        KindRegistry::default().get("klines").unwrap(),
        &CreateOptions::default(),
    )
    .unwrap()
}

/// Write options for one symbol of 1m BINANCE candles.
pub fn kline_opts(symbol: &str) -> WriteOptions {
    WriteOptions {
        constants: consts(&[
            ("exchange", "BINANCE"),
            ("symbol", symbol),
            ("timeframe", "1m"),
        ]),
        ..Default::default()
    }
}

/// All rows of a dataset, sorted by its key (or all columns).
pub fn read_sorted(ds: &Dataset) -> DataFrame {
    let m = ds.manifest();
    let by: Vec<String> = if m.key.is_empty() {
        vec![m.timestamp_column.clone()]
    } else {
        m.key.clone()
    };
    ds.scan(&Default::default())
        .unwrap()
        .sort(by, Default::default())
        .collect()
        .unwrap()
}

/// Data files (`*.parquet`) under `dir`, relative, sorted, as plain readers would glob them.
pub fn parquet_files(dir: &Path) -> Vec<String> {
    let mut out = vec![];
    pqdm::manifest::walk(dir, &mut |p| {
        if p.extension().is_some_and(|e| e == "parquet") {
            out.push(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
        }
    })
    .unwrap();
    out.sort();
    out
}

static PY_LOCK: Mutex<()> = Mutex::new(());

/// A Python with pyarrow, DuckDB and Polars, in a virtualenv under the target folder
/// (created on first use).
pub fn python() -> PathBuf {
    let _guard = PY_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pyenv");
    let py = venv.join("bin/python");
    let ready = venv.join(".ready");
    if !ready.exists() {
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .expect("python3 -m venv");
        assert!(ok.success(), "creating the virtualenv failed");
        let ok = Command::new(&py)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "pyarrow",
                "duckdb",
                "polars",
            ])
            .status()
            .expect("pip install");
        assert!(ok.success(), "pip install pyarrow duckdb polars failed");
        std::fs::write(&ready, "").unwrap();
    }
    py
}

/// Runs a Python script with the peers installed; returns stdout (panics on failure).
pub fn py(script: &str, args: &[&str]) -> String {
    let out = Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "python failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
