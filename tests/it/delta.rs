//! Every pqdm dataset is a Delta Lake table: delta-rs (Python `deltalake`), Polars' `scan_delta`
//! and DuckDB's delta extension read the same rows and partition values as pqdm's own scan, at
//! the current version and at older ones, after upserts, compaction and vacuum; a writer killed
//! between its commit and its log entry leaves the log a version behind, never broken; a dataset
//! of an earlier pqdm, or one adopted, becomes a Delta table from a checkpoint.

use std::path::{Path, PathBuf};
use std::process::Command;

use polars::prelude::*;
use pqdm::maintain::vacuum::VacuumOptions;
use pqdm::{Dataset, ScanOptions, WriteMode, WriteOptions};
use serde_json::Value;

use crate::common::*;

/// What `tests/delta_readers.py` printed: the version read, the column names and the rows
/// (sorted here, so readers that order rows differently compare equal).
#[derive(Debug, PartialEq)]
struct Read {
    columns: Vec<String>,
    rows: Vec<Vec<Value>>,
}

/// A total order on JSON values: null, then booleans, numbers, strings.
fn cmp_values(a: &Value, b: &Value) -> std::cmp::Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Number(_) => 2,
            _ => 3,
        }
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .unwrap()
            .partial_cmp(&y.as_f64().unwrap())
            .unwrap(),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
    }
}

fn sorted(columns: Vec<String>, mut rows: Vec<Vec<Value>>) -> Read {
    rows.sort_by(|a, b| {
        a.iter()
            .zip(b)
            .map(|(x, y)| cmp_values(x, y))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    Read { columns, rows }
}

/// The python of the small virtualenv holding DuckDB 1.5.5 and its delta extension (its wheel
/// loads into no other DuckDB), made by tests/pyenv.py beside the main one.
fn duckdb_python() -> PathBuf {
    static PYTHON: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pyenv-duckdb-delta");
            let out = Command::new("python3")
                .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pyenv.py"))
                .arg("--duckdb-delta")
                .arg(&venv)
                .stderr(std::process::Stdio::inherit())
                .output()
                .expect("python3 tests/pyenv.py --duckdb-delta");
            assert!(
                out.status.success(),
                "tests/pyenv.py could not make {venv:?}"
            );
            PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
        })
        .clone()
}

/// Reads the Delta table at `table` with `reader` (`deltalake`, `polars`, `duckdb`) at
/// `version` (`None`: the newest); the reader's error when it fails.
fn delta_read(
    reader: &str,
    table: &str,
    version: Option<u64>,
    storage: Option<&Value>,
) -> Result<Read, String> {
    let python = match reader {
        "duckdb" => duckdb_python(),
        _ => python(),
    };
    let mut cmd = Command::new(python);
    cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/delta_readers.py"))
        .args([reader, table]);
    if let Some(v) = version {
        cmd.args(["--version", &v.to_string()]);
    }
    if let Some(s) = storage {
        cmd.args(["--storage-options", &s.to_string()]);
    }
    let out = cmd.output().expect("run tests/delta_readers.py");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let doc: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    let columns: Vec<String> = serde_json::from_value(doc["columns"].clone()).unwrap();
    let rows: Vec<Vec<Value>> = serde_json::from_value(doc["rows"].clone()).unwrap();
    Ok(sorted(columns, rows))
}

/// pqdm's own scan of `ds` at `version`, in the same form.
fn pqdm_read(ds: &Dataset, version: u64) -> Read {
    let mut df = ds
        .read(&ScanOptions {
            version: Some(version),
            ..Default::default()
        })
        .unwrap();
    // One chunk per column: a scan of many files gives one per file, and reading row by row
    // through thousands of chunks is quadratic.
    df.rechunk_mut();
    let mut columns: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|c| c.to_string())
        .collect();
    columns.sort();
    let cols: Vec<&Column> = columns.iter().map(|c| df.column(c).unwrap()).collect();
    let rows = (0..df.height())
        .map(|i| {
            cols.iter()
                .map(|c| match c.get(i).unwrap() {
                    AnyValue::Null => Value::Null,
                    AnyValue::Boolean(b) => b.into(),
                    AnyValue::String(s) => s.into(),
                    AnyValue::StringOwned(s) => s.as_str().into(),
                    AnyValue::Float64(f) => f.into(),
                    AnyValue::Float32(f) => (f as f64).into(),
                    v => v.extract::<i64>().expect("an integer").into(),
                })
                .collect()
        })
        .collect();
    sorted(columns, rows)
}

/// Asserts that every Delta reader reads version `version` of the local dataset `ds` as pqdm
/// does.
fn assert_readers_agree(ds: &Dataset, version: u64) {
    let want = pqdm_read(ds, version);
    assert!(!want.rows.is_empty());
    let table = ds.base().display().to_string();
    for reader in ["deltalake", "polars", "duckdb"] {
        let got = delta_read(reader, &table, Some(version), None)
            .unwrap_or_else(|e| panic!("{reader} at version {version}: {e}"));
        assert_eq!(got.columns, want.columns, "{reader} at version {version}");
        assert_eq!(
            got.rows.len(),
            want.rows.len(),
            "{reader} at version {version}"
        );
        assert_eq!(got, want, "{reader} at version {version}");
    }
}

fn log_entries(base: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(base.join("_delta_log"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn write(ds: &Dataset, symbol: &str, start: i64, n: usize, price: f64, mode: WriteMode) -> u64 {
    ds.write(
        candles(start, n, price).lazy(),
        &WriteOptions {
            mode: Some(mode),
            ..kline_opts(symbol)
        },
    )
    .unwrap()
    .version
}

const DAY: i64 = 86_400_000;
const T0: i64 = 1_704_067_200_000; // 2024-01-01

#[test]
fn every_delta_reader_reads_each_version_as_pqdm_does() {
    let _measuring = measuring();
    let dir = tmp();
    let ds = klines_dataset(&dir.path().join("k"));
    // v1: two days of BTC; v2: an upsert replacing the second half of day 1 with other prices;
    // v3: ETH appended; v4: a second file on BTC's day 2; v5: compaction of day 2.
    assert_eq!(write(&ds, "BTCUSDT", T0, 2880, 100.0, WriteMode::Upsert), 1);
    assert_eq!(
        write(&ds, "BTCUSDT", T0 + DAY / 2, 720, 5000.0, WriteMode::Upsert),
        2
    );
    assert_eq!(write(&ds, "ETH/USDT %", T0, 60, 7.0, WriteMode::Append), 3);
    assert_eq!(
        write(&ds, "BTCUSDT", T0 + 2 * DAY, 10, 9.0, WriteMode::Append),
        4
    );
    let compacted = ds
        .compact(&Default::default(), &pqdm::progress::Progress::hidden())
        .unwrap();
    assert!(compacted.version.is_some(), "{compacted:?}");
    ds.vacuum(&VacuumOptions::default()).unwrap();
    let now = ds.refresh().unwrap().version;
    assert_eq!(now, 5);
    let entries = log_entries(ds.base());
    assert_eq!(
        entries,
        (0..=now)
            .map(|v| format!("{v:020}.json"))
            .collect::<Vec<_>>()
    );
    for v in 1..=now {
        assert_readers_agree(&ds, v);
        // The log alone rebuilds each version, the symbol holding `/`, `%` and a space too.
        assert_eq!(
            ds.version_from_log(v).unwrap(),
            *ds.manifest_at(Some(v)).unwrap(),
            "version {v}"
        );
    }
    // Other engines read but do not write: delta-rs refuses to append to, optimize or vacuum a
    // pqdm dataset (its writer feature), and the tree and the log are left as they were.
    let tree = parquet_files(ds.base());
    let refusals = py(
        r#"
import sys
from deltalake import DeltaTable, write_deltalake
t = sys.argv[1]
dt = DeltaTable(t)
for name, act in [
    ("append", lambda: write_deltalake(t, dt.to_pyarrow_table(), mode="append")),
    ("vacuum", lambda: dt.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False, full=True)),
    ("optimize", lambda: dt.optimize.compact()),
]:
    try:
        act()
        print(name, "done")
    except Exception as e:
        print(name, "refused", "pqdmManaged" in str(e))
"#,
        &[ds.base().to_str().unwrap()],
    );
    assert_eq!(
        refusals.lines().collect::<Vec<_>>(),
        [
            "append refused True",
            "vacuum refused True",
            "optimize refused True"
        ]
    );
    assert_eq!(parquet_files(ds.base()), tree);
    assert_eq!(log_entries(ds.base()), entries);
    // The newest version without asking for one is the current version.
    let newest = delta_read("deltalake", &ds.base().display().to_string(), None, None).unwrap();
    assert_eq!(newest, pqdm_read(&ds, now));
    // Compaction rearranged rows: its entry says so, and adds and removes the same rows.
    let entry = std::fs::read_to_string(ds.base().join("_delta_log").join(&entries[5])).unwrap();
    let actions: Vec<Value> = entry
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(actions[0]["commitInfo"]["operation"], "OPTIMIZE");
    assert!(
        actions
            .iter()
            .filter_map(|a| a.get("add").or(a.get("remove")))
            .all(|a| a["dataChange"] == false),
        "{entry}"
    );
}

/// Runs `pqdm ingest --json` of `csv` into `base` with `env`; its output.
fn ingest_env(base: &Path, csv: &Path, env: &[(&str, &str)]) -> std::process::Output {
    run_env(
        &[
            "ingest",
            "--json",
            "--dataset",
            base.to_str().unwrap(),
            csv.to_str().unwrap(),
        ],
        env,
    )
}

/// A writer killed right after its commit point (its log entry) and before it rewrote
/// `_manifest.json`: every reader sees the version at once, pqdm's readers rebuild it from the
/// log (the copy is not its), and the next commit rewrites the copy and goes on.
#[test]
fn a_writer_killed_after_its_log_entry_has_committed_for_every_reader() {
    let _measuring = measuring();
    let dir = tmp();
    let base = dir.path().join("k");
    killed_before_its_log_entry(dir.path(), &base);
    let ds = Dataset::open(&base).unwrap();
    assert_eq!(ds.header().version, 2);
    assert_eq!(
        log_entries(&base),
        vec![
            "00000000000000000000.json",
            "00000000000000000001.json",
            "00000000000000000002.json"
        ]
    );
    // The reader finished the dead writer's tidying (its journal): the copy is version 2's.
    let copy: Value =
        serde_json::from_slice(&std::fs::read(base.join("_manifest.json")).unwrap()).unwrap();
    assert_eq!(copy["version"], 2);
    assert!(!base.join("_pqdm/versions").exists());
    // The copy rebuilt from the log is byte for byte the one the entry records the hash of.
    let verify = json_ok(&run(&["verify", base.to_str().unwrap(), "--json"]));
    assert_eq!(verify["manifest_copy_stale"], false, "{verify}");
    assert_eq!(verify["delta_log"], Value::Null, "{verify}");
    let table = base.display().to_string();
    let now = delta_read("deltalake", &table, None, None).unwrap();
    assert_eq!(now, pqdm_read(&ds, 2));
    let c = dir.path().join("c");
    std::fs::create_dir(&c).unwrap();
    let c = klines_csv(&c, "SOLUSDT", 5, 1.0);
    assert!(ingest_env(&base, &c, &[]).status.success());
    assert_eq!(log_entries(&base).len(), 4);
    let copy: Value =
        serde_json::from_slice(&std::fs::read(base.join("_manifest.json")).unwrap()).unwrap();
    assert_eq!(copy["version"], 3);
    let ds = Dataset::open(&base).unwrap();
    for v in 1..=3 {
        assert_readers_agree(&ds, v);
    }
    let verify = json_ok(&run(&["verify", base.to_str().unwrap(), "--json"]));
    assert_eq!(verify["delta_log"], Value::Null);
    assert_eq!(verify["manifest_copy_stale"], false);
}

/// Ingests 60 candles (version 1), then 30 more with a writer killed right after its commit
/// point, its log entry (version 2), before it rewrote `_manifest.json`.
fn killed_before_its_log_entry(dir: &Path, base: &Path) {
    let a = klines_csv(dir, "BTCUSDT", 60, 10.0);
    assert!(ingest_env(base, &a, &[]).status.success());
    let b = dir.join("b");
    std::fs::create_dir(&b).unwrap();
    let b = klines_csv(&b, "ETHUSDT", 30, 20.0);
    let killed = ingest_env(base, &b, &[("PQDM_FAILPOINTS", "commit.tidy=kill")]);
    assert!(!killed.status.success());
}

/// `verify` finishes what a killed writer left (its log entry), as the next writer would;
/// a gap in the log, an edited entry or a `_last_checkpoint` naming a missing checkpoint is
/// reported, and `--repair` writes a checkpoint of the current version, which Delta readers
/// then read it from.
#[test]
fn verify_finishes_the_log_and_repair_checkpoints_over_a_damaged_one() {
    let _measuring = measuring();
    let dir = tmp();
    let base = dir.path().join("k");
    killed_before_its_log_entry(dir.path(), &base);
    let verify = json_ok(&run(&["verify", base.to_str().unwrap(), "--json"]));
    assert_eq!(verify["delta_log"], Value::Null, "{verify}");
    assert_eq!(log_entries(&base).len(), 3);
    assert_readers_agree(&Dataset::open(&base).unwrap(), 2);

    // A gap: entry 1 deleted by hand.
    let entry1 = std::fs::read(base.join("_delta_log/00000000000000000001.json")).unwrap();
    std::fs::remove_file(base.join("_delta_log/00000000000000000001.json")).unwrap();
    let out = run(&["verify", base.to_str().unwrap(), "--json"]);
    assert!(!out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        report["delta_log"]
            .as_str()
            .unwrap()
            .contains("no entry for version 1"),
        "{report}"
    );
    assert!(delta_read("deltalake", base.to_str().unwrap(), None, None).is_err());
    let repaired = json_ok(&run(&[
        "verify",
        base.to_str().unwrap(),
        "--repair",
        "--json",
    ]));
    assert_eq!(repaired["repairs"]["delta_log_written"], true, "{repaired}");
    assert_eq!(
        checkpoints(&base),
        (vec![format!("{:020}.checkpoint.parquet", 2)], Some(2))
    );
    let ds = Dataset::open(&base).unwrap();
    assert_readers_agree(&ds, 2);

    // A `_last_checkpoint` naming a checkpoint that is gone.
    std::fs::remove_file(base.join("_delta_log/00000000000000000002.checkpoint.parquet")).unwrap();
    let out = run(&["verify", base.to_str().unwrap(), "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let why = report["delta_log"].as_str().unwrap();
    assert!(
        why.contains("_last_checkpoint names checkpoint 2, which is missing"),
        "{why}"
    );
    json_ok(&run(&[
        "verify",
        base.to_str().unwrap(),
        "--repair",
        "--json",
    ]));
    assert_readers_agree(&ds, 2);

    // An edited entry: a partition value changed by hand (entry 1 is back, from a copy).
    std::fs::remove_file(base.join("_delta_log/_last_checkpoint")).unwrap();
    std::fs::remove_file(base.join("_delta_log/00000000000000000002.checkpoint.parquet")).unwrap();
    std::fs::write(base.join("_delta_log/00000000000000000001.json"), &entry1).unwrap();
    let e = base.join("_delta_log/00000000000000000002.json");
    let text = std::fs::read_to_string(&e).unwrap();
    assert!(text.contains("\"symbol\":\"ETHUSDT\""), "{text}");
    std::fs::write(
        &e,
        text.replace("\"symbol\":\"ETHUSDT\"", "\"symbol\":\"HACKED\""),
    )
    .unwrap();
    let out = run(&["verify", base.to_str().unwrap(), "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let why = report["delta_log"].as_str().unwrap();
    assert!(why.contains("gives 1 other partition values"), "{why}");
    json_ok(&run(&[
        "verify",
        base.to_str().unwrap(),
        "--repair",
        "--json",
    ]));
    assert_readers_agree(&ds, 2);
}

/// A new klines dataset at `base` that writes a Delta checkpoint every `interval` versions.
fn klines_with_interval(base: &Path, interval: u64) -> Dataset {
    Dataset::create(
        base,
        pqdm::schema::KindRegistry::default().get("klines").unwrap(),
        &pqdm::CreateOptions {
            checkpoint_interval: Some(interval),
            ..Default::default()
        },
    )
    .unwrap()
}

/// The checkpoint files and the version `_last_checkpoint` points at.
fn checkpoints(base: &Path) -> (Vec<String>, Option<u64>) {
    let names = log_entries(base)
        .into_iter()
        .filter(|n| n.ends_with(".checkpoint.parquet"))
        .collect();
    let last = std::fs::read(base.join("_delta_log/_last_checkpoint"))
        .ok()
        .map(|b| {
            serde_json::from_slice::<Value>(&b).unwrap()["version"]
                .as_u64()
                .unwrap()
        });
    (names, last)
}

/// A dataset written before pqdm kept a Delta log (version files, no `_delta_log/`) becomes a
/// Delta table on its next write, from a checkpoint of its current version (then the write's
/// entry), rewriting no data file; Delta readers see it from that version on (the versions
/// before it have no log to read them by).
#[test]
fn a_dataset_without_a_log_becomes_a_delta_table_from_a_checkpoint_on_its_next_write() {
    let _measuring = measuring();
    let dir = tmp();
    let ds = klines_dataset(&dir.path().join("k"));
    write(&ds, "BTCUSDT", T0, 120, 1.0, WriteMode::Upsert);
    write(&ds, "ETHUSDT", T0, 60, 2.0, WriteMode::Upsert);
    write_version_files(ds.base());
    std::fs::remove_dir_all(ds.base().join("_delta_log")).unwrap();
    let data_before = parquet_files(ds.base());
    assert_eq!(
        write(
            &ds,
            "BTCUSDT",
            T0 + 60 * 60_000,
            120,
            3.0,
            WriteMode::Upsert
        ),
        3
    );
    assert_eq!(
        checkpoints(ds.base()),
        (vec![format!("{:020}.checkpoint.parquet", 2)], Some(2))
    );
    assert!(
        ds.base()
            .join("_delta_log/00000000000000000003.json")
            .is_file()
    );
    assert_readers_agree(&ds, 3);
    assert_readers_agree(&ds, 2);
    let table = ds.base().display().to_string();
    let before = delta_read("deltalake", &table, Some(1), None);
    assert!(before.is_err(), "{before:?}");
    // The next write logs on top of the checkpoint.
    assert_eq!(write(&ds, "SOLUSDT", T0, 10, 4.0, WriteMode::Append), 4);
    assert!(
        ds.base()
            .join("_delta_log/00000000000000000004.json")
            .is_file()
    );
    assert_readers_agree(&ds, 4);
    // No data file was rewritten: the upgrade wrote only log files.
    let after = parquet_files(ds.base());
    let eth: Vec<&String> = data_before
        .iter()
        .filter(|f| f.contains("symbol=ETHUSDT"))
        .collect();
    assert!(
        !eth.is_empty() && eth.iter().all(|f| after.contains(f)),
        "{after:?}"
    );
}

/// A checkpoint at every multiple of the dataset's interval, `_last_checkpoint` on the newest:
/// with every entry up to it deleted, readers still open each version from the checkpoint on.
#[test]
fn checkpoints_are_written_every_interval_and_readers_open_the_table_from_them() {
    let _measuring = measuring();
    let dir = tmp();
    let ds = klines_with_interval(&dir.path().join("k"), 2);
    for v in 1..=5u64 {
        let symbol = format!("S{v}");
        write(
            &ds,
            &symbol,
            T0 + v as i64 * DAY,
            30,
            v as f64,
            WriteMode::Upsert,
        );
    }
    assert_eq!(
        checkpoints(ds.base()),
        (
            vec![
                format!("{:020}.checkpoint.parquet", 2),
                format!("{:020}.checkpoint.parquet", 4)
            ],
            Some(4)
        )
    );
    for v in 0..4 {
        std::fs::remove_file(ds.base().join(format!("_delta_log/{v:020}.json"))).unwrap();
    }
    for v in 4..=5 {
        assert_readers_agree(&ds, v);
    }
    let config = std::fs::read_to_string(ds.base().join("_delta_log/00000000000000000000.json"));
    assert!(config.is_err(), "deleted");
}

/// `vacuum` starts the Delta log at the newest checkpoint at or before the oldest version it
/// keeps: the entries and checkpoints before it are deleted (the protocol's metadata cleanup),
/// no checkpoint is added, and `_last_checkpoint` stays on the newest. Delta readers then read
/// every version pqdm keeps, as pqdm does, and none before that checkpoint.
#[test]
fn vacuum_starts_the_log_at_the_checkpoint_before_the_oldest_kept_version() {
    let _measuring = measuring();
    let dir = tmp();
    let ds = klines_with_interval(&dir.path().join("k"), 2);
    for v in 1..=6u64 {
        let symbol = format!("S{v}");
        let price = v as f64;
        write(
            &ds,
            &symbol,
            T0 + v as i64 * DAY,
            30,
            price,
            WriteMode::Upsert,
        );
    }
    let keep_two = VacuumOptions {
        retain_versions: 2,
        ..Default::default()
    };
    let r = ds.vacuum(&keep_two).unwrap();
    assert_eq!(r.versions_removed, [0, 1, 2, 3, 4]);
    // Entries 0 to 3 and the checkpoint of 2: the log starts at the checkpoint of 4.
    assert_eq!(r.log_files_removed, 5);
    let name = |v: u64, suffix: &str| format!("{v:020}.{suffix}");
    assert_eq!(
        log_entries(ds.base()),
        [
            name(4, "checkpoint.parquet"),
            name(4, "json"),
            name(5, "json"),
            name(6, "checkpoint.parquet"),
            name(6, "json"),
            "_last_checkpoint".to_string()
        ]
    );
    assert_eq!(checkpoints(ds.base()).1, Some(6));
    for v in 5..=6 {
        assert_readers_agree(&ds, v);
    }
    let table = ds.base().display().to_string();
    let gone = delta_read("deltalake", &table, Some(3), None);
    assert!(gone.is_err(), "{gone:?}");
    let report = ds
        .verify(false, &pqdm::progress::Progress::hidden())
        .unwrap();
    assert_eq!(report.delta_log, None);
    // Nothing older is left: a second vacuum deletes nothing of the log.
    assert_eq!(ds.vacuum(&keep_two).unwrap().log_files_removed, 0);
    // The next commit logs on top, and its readers agree.
    assert_eq!(write(&ds, "S7", T0, 10, 7.0, WriteMode::Append), 7);
    assert_readers_agree(&ds, 7);
    // A damaged checkpoint is no start: the log is not trimmed behind it.
    let damaged = ds
        .base()
        .join("_delta_log")
        .join(name(6, "checkpoint.parquet"));
    std::fs::write(damaged, b"").unwrap();
    let keep_one = VacuumOptions {
        retain_versions: 1,
        ..Default::default()
    };
    assert_eq!(ds.vacuum(&keep_one).unwrap().log_files_removed, 0);
    assert!(ds.base().join("_delta_log").join(name(5, "json")).is_file());
}

/// A vacuum killed as it trims the log (after it deleted the versions it does not keep, before
/// the log files behind the checkpoint) leaves a log every reader still reads: the current and
/// the kept versions read as pqdm reads them, and the next vacuum trims what is left.
#[test]
fn a_vacuum_killed_while_it_trims_the_log_leaves_it_readable_and_the_next_one_trims_it() {
    let _measuring = measuring();
    let dir = tmp();
    let ds = klines_with_interval(&dir.path().join("k"), 2);
    for v in 1..=6u64 {
        write(&ds, &format!("S{v}"), T0, 30, v as f64, WriteMode::Upsert);
    }
    let base = ds.base().to_str().unwrap().to_string();
    let vacuum = ["vacuum", &base, "--retain-versions", "2", "--json"];
    let killed = bin()
        .args(vacuum)
        .env("PQDM_FAILPOINTS", "vacuum.trim_log=kill")
        .output()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(killed.status.signal(), Some(9), "{}", stderr(&killed));
    assert_eq!(ds.versions().unwrap(), [5, 6]);
    assert_eq!(
        log_entries(ds.base()).len(),
        11,
        "{:?}",
        log_entries(ds.base())
    );
    for v in 5..=6 {
        assert_readers_agree(&ds, v);
    }
    let done = json_ok(&run(&vacuum));
    assert_eq!(done["log_files_removed"], 5, "{done}");
    assert_eq!(checkpoints(ds.base()).1, Some(6));
    for v in 5..=6 {
        assert_readers_agree(&ds, v);
        assert_eq!(
            ds.version_from_log(v).unwrap(),
            *ds.manifest_at(Some(v)).unwrap()
        );
    }
}

/// `adopt` of a hive folder another tool wrote makes a Delta table of it too (Delta's
/// "convert to Delta"): a checkpoint of the adopted version, the files where they are.
#[test]
fn an_adopted_folder_is_a_delta_table() {
    let _measuring = measuring();
    let dir = tmp();
    let written = klines_dataset(&dir.path().join("w"));
    write(&written, "BTCUSDT", T0, 1500, 1.0, WriteMode::Upsert);
    let plain = dir.path().join("plain");
    for f in parquet_files(written.base()) {
        std::fs::create_dir_all(plain.join(&f).parent().unwrap()).unwrap();
        std::fs::copy(written.base().join(&f), plain.join(&f)).unwrap();
    }
    json_ok(&run(&["adopt", plain.to_str().unwrap(), "--json"]));
    assert_eq!(
        checkpoints(&plain),
        (vec![format!("{:020}.checkpoint.parquet", 1)], Some(1))
    );
    let ds = Dataset::open(&plain).unwrap();
    assert_readers_agree(&ds, 1);
    // Its checkpoint alone rebuilds the adopted version (files with no null count recorded).
    assert_eq!(ds.version_from_log(1).unwrap(), *ds.manifest().unwrap());
}

/// Glob readers of the tree: once a checkpoint (a Parquet file) is in `_delta_log/`, DuckDB and
/// Polars globs of `**/*.parquet` would read it as data; the README's glob, `*=*/**/*.parquet`,
/// reads exactly the current version, as pyarrow.dataset does (it skips `_` folders).
#[test]
fn glob_readers_of_hive_folders_skip_the_log_and_read_the_current_version() {
    let _measuring = measuring();
    let dir = tmp();
    let ds = klines_with_interval(&dir.path().join("k"), 1);
    write(&ds, "BTCUSDT", T0, 90, 1.0, WriteMode::Upsert);
    write(&ds, "BTCUSDT", T0 + 30 * 60_000, 90, 2.0, WriteMode::Upsert);
    assert_eq!(checkpoints(ds.base()).1, Some(2));
    let out = py(
        r#"
import sys, duckdb, polars as pl, pyarrow.dataset as pads
base = sys.argv[1]
for name, df in [
    ("duckdb", duckdb.sql(f"SELECT * FROM read_parquet('{base}/*=*/**/*.parquet', hive_partitioning=true)").pl()),
    ("polars", pl.scan_parquet(f"{base}/*=*/**/*.parquet", hive_partitioning=True).collect()),
    ("pyarrow", pl.from_arrow(pads.dataset(base, format="parquet", partitioning="hive").to_table())),
]:
    print(name, df.height, int(df["close"].sum()))
"#,
        &[ds.base().to_str().unwrap()],
    );
    let want: i64 = (0..30).map(|i| 1 + i).sum::<i64>() + (0..90).map(|i| 2 + i).sum::<i64>();
    for reader in ["duckdb", "polars", "pyarrow"] {
        assert!(
            out.lines().any(|l| l == format!("{reader} 120 {want}")),
            "{reader}: {out}"
        );
    }
}

/// A new bucket on the test server and the location of a dataset in it.
fn s3_klines() -> (String, pqdm::location::Location) {
    let url = format!("s3://{}/klines", s3_bucket());
    let opts = pqdm::storage::StorageOptions::new([
        ("endpoint", s3_endpoint()),
        ("region", "us-east-1"),
        ("access_key_id", "testing"),
        ("secret_access_key", "testing"),
        ("allow_http", "true"),
    ])
    .unwrap();
    let location = pqdm::location::Location::parse_with(&url, &opts).unwrap();
    (url, location)
}

/// The test server's options as delta-rs takes them.
fn delta_rs_s3_options() -> Value {
    serde_json::json!({
        "AWS_ENDPOINT_URL": s3_endpoint(),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
    })
}

/// On object storage: the log is written with conditional puts beside the data, and delta-rs
/// reads every version as pqdm does.
#[test]
fn delta_rs_reads_an_s3_dataset_at_every_version() {
    let _measuring = measuring();
    let (url, location) = s3_klines();
    let ds = Dataset::create_at(
        &location,
        pqdm::schema::KindRegistry::default().get("klines").unwrap(),
        &Default::default(),
    )
    .unwrap();
    write(&ds, "BTCUSDT", T0, 120, 1.0, WriteMode::Upsert);
    write(
        &ds,
        "BTCUSDT",
        T0 + 60 * 60_000,
        120,
        2.0,
        WriteMode::Upsert,
    );
    write(&ds, "ETHUSDT", T0, 30, 3.0, WriteMode::Append);
    let storage = delta_rs_s3_options();
    for v in 1..=3 {
        let got = delta_read("deltalake", &url, Some(v), Some(&storage))
            .unwrap_or_else(|e| panic!("version {v}: {e}"));
        assert_eq!(got, pqdm_read(&ds, v), "version {v}");
        // The log alone records the version as pqdm keeps it, on S3 too.
        let rebuilt = ds.version_from_log(v).unwrap();
        assert_eq!(rebuilt, *ds.manifest_at(Some(v)).unwrap(), "version {v}");
    }
}

/// A Delta table another engine wrote (delta-rs here) is read through its log: pqdm's scan
/// returns what delta-rs returns, never the files a later version removed, which a listing of
/// the folder would also find. What pqdm cannot read is refused by name.
#[test]
fn a_delta_table_written_by_delta_rs_reads_as_delta_rs_reads_it() {
    let _measuring = measuring();
    let dir = tmp();
    let table = dir.path().join("t");
    py(
        r#"
import sys, pyarrow as pa
from deltalake import write_deltalake, DeltaTable
t = sys.argv[1]
def frame(ids, parts, xs):
    return pa.table({"id": pa.array(ids, pa.int64()), "part": pa.array(parts, pa.string()),
                     "x": pa.array(xs, pa.float64())})
write_deltalake(t, frame([1, 2, 3], ["a", None, "b c"], [0.5, None, 2.0]), partition_by=["part"])
write_deltalake(t, frame([4, 5], ["100%", "a"], [4.25, -1.0]), mode="append", partition_by=["part"])
DeltaTable(t).delete("id = 1 or id = 4")
"#,
        &[table.to_str().unwrap()],
    );
    let want = delta_read("deltalake", table.to_str().unwrap(), None, None).unwrap();
    assert_eq!(want.rows.len(), 3, "{want:?}");
    let ds = Dataset::open_any(&table, &Default::default()).unwrap();
    let df = ds.read(&ScanOptions::default()).unwrap();
    assert_eq!(df.height(), 3);
    let mut ids = i64s(&df, "id");
    ids.sort();
    assert_eq!(ids, [2, 3, 5]);
    // The same rows, partition values (the null partition, `b c`) included.
    let mut got: Vec<(i64, Option<String>)> = df
        .column("id")
        .unwrap()
        .i64()
        .unwrap()
        .into_no_null_iter()
        .zip(
            df.column("part")
                .unwrap()
                .str()
                .unwrap()
                .iter()
                .map(|s| s.map(String::from)),
        )
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            (2, None),
            (3, Some("b c".to_string())),
            (5, Some("a".to_string()))
        ]
    );
    // Older versions through the log too: version 0 (ids 1-3), version 1 (ids 1-5).
    for (version, want) in [(0u64, vec![1, 2, 3]), (1, vec![1, 2, 3, 4, 5])] {
        let df = ds
            .read(&ScanOptions {
                version: Some(version),
                ..Default::default()
            })
            .unwrap();
        let mut ids = i64s(&df, "id");
        ids.sort();
        assert_eq!(ids, want, "version {version}");
        let out = run(&[
            "scan",
            table.to_str().unwrap(),
            "--version",
            &version.to_string(),
            "--format",
            "csv",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).lines().count(),
            want.len() + 1
        );
    }
    // Reader features pqdm does not have are named.
    let dv = dir.path().join("dv");
    std::fs::create_dir_all(dv.join("_delta_log")).unwrap();
    std::fs::write(
        dv.join("_delta_log/00000000000000000000.json"),
        r#"{"protocol":{"minReaderVersion":3,"minWriterVersion":7,"readerFeatures":["deletionVectors"],"writerFeatures":["deletionVectors"]}}
{"metaData":{"id":"x","format":{"provider":"parquet","options":{}},"schemaString":"{\"type\":\"struct\",\"fields\":[]}","partitionColumns":[],"configuration":{}}}
"#,
    )
    .unwrap();
    let out = run(&["scan", dv.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("reader features deletionVectors"), "{err}");
}

/// The timestamp's null count is in each `add`'s stats: a lenient write that keeps a row without
/// a timestamp records 1, so delta-rs' pyarrow dataset finds the row for `timestamp IS NULL`
/// instead of skipping the file; a strict write records 0.
#[test]
fn the_timestamp_null_count_is_in_the_delta_stats() {
    let _measuring = measuring();
    let dir = tmp();
    let ds = klines_dataset(&dir.path().join("k"));
    let mut lenient_rows = candles(T0, 2, 1.0);
    lenient_rows
        .with_column(Column::new("open_time".into(), [Some(T0), None]))
        .unwrap();
    ds.write(
        lenient_rows.lazy(),
        &WriteOptions {
            lenient: true,
            mode: Some(WriteMode::Append),
            ..kline_opts("BTCUSDT")
        },
    )
    .unwrap();
    write(&ds, "ETHUSDT", T0, 3, 2.0, WriteMode::Upsert);
    let null_counts = |version: u64| -> Vec<u64> {
        let entry =
            std::fs::read_to_string(ds.base().join(format!("_delta_log/{version:020}.json")))
                .unwrap();
        let mut counts: Vec<u64> = entry
            .lines()
            .filter_map(|l| {
                let a: Value = serde_json::from_str(l).unwrap();
                let stats: Value = serde_json::from_str(a["add"]["stats"].as_str()?).unwrap();
                stats["nullCount"]["timestamp"].as_u64()
            })
            .collect();
        counts.sort();
        counts
    };
    assert_eq!(null_counts(1), [0, 1]);
    assert_eq!(null_counts(2), [0]);
    let found = py(
        "import sys, pyarrow.compute as pc\nfrom deltalake import DeltaTable\nd = DeltaTable(sys.argv[1]).to_pyarrow_dataset()\nprint(d.to_table(filter=pc.field('timestamp').is_null()).num_rows, d.count_rows())",
        &[ds.base().to_str().unwrap()],
    );
    assert_eq!(found.trim(), "1 5");
}

/// A Delta table whose schema grew (delta-rs' `schema_mode="merge"` added a column, and a
/// timestamp column) reads with the log's schema, not the first file's: the new column is null
/// in the older files, and the version before the change reads without it.
#[test]
fn a_delta_table_whose_schema_grew_reads_with_the_logs_schema() {
    let _measuring = measuring();
    let dir = tmp();
    let table = dir.path().join("evo");
    py(
        r#"
import sys, datetime, pyarrow as pa
from deltalake import write_deltalake
t = sys.argv[1]
ts = lambda n, s: pa.array([1704067200000 + s + i for i in range(n)], pa.int64())
write_deltalake(t, pa.table({"timestamp": ts(2, 0), "sym": ["A", "A"]}), partition_by=["sym"])
at = pa.array([datetime.datetime(2024, 1, 1, 12, 30, tzinfo=datetime.timezone.utc)] * 2, pa.timestamp("us", tz="UTC"))
write_deltalake(t, pa.table({"timestamp": ts(2, 10), "sym": ["B", "B"], "extra": pa.array([1, 2], pa.int64()), "at": at}),
                partition_by=["sym"], mode="append", schema_mode="merge")
"#,
        &[table.to_str().unwrap()],
    );
    let want = delta_read("deltalake", table.to_str().unwrap(), None, None).unwrap();
    assert_eq!(want.rows.len(), 4, "{want:?}");
    let ds = Dataset::open_any(&table, &Default::default()).unwrap();
    let df = ds
        .read(&ScanOptions::default())
        .unwrap()
        .sort(["timestamp"], Default::default())
        .unwrap();
    let extra: Vec<Option<i64>> = df.column("extra").unwrap().i64().unwrap().iter().collect();
    assert_eq!(extra, [None, None, Some(1), Some(2)]);
    let at = df.column("at").unwrap();
    assert_eq!(
        at.dtype(),
        &DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
    );
    assert_eq!(at.null_count(), 2);
    let before = ds
        .read(&ScanOptions {
            version: Some(0),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(before.height(), 2);
    // The CLI reads it whole too.
    let out = run(&[
        "scan",
        table.to_str().unwrap(),
        "--format",
        "csv",
        "--columns",
        "extra",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "extra\n\n\n1\n2\n",
        "{}",
        stderr(&out)
    );
}

/// Found by a red team: a Delta table whose rows were all deleted (every file removed, a
/// checkpoint with no `add`) was an error ("no data files"), while delta-rs reads it as empty.
/// It reads as an empty frame with the log's columns, at that version; the version before
/// still reads its rows.
#[test]
fn a_delta_table_emptied_by_delta_rs_reads_as_an_empty_frame() {
    let _measuring = measuring();
    let dir = tmp();
    let table = dir.path().join("emptied");
    py(
        r#"
import sys, pyarrow as pa
from deltalake import write_deltalake, DeltaTable
t = sys.argv[1]
write_deltalake(t, pa.table({"timestamp": pa.array([1, 2], pa.int64()), "px": [0.5, 1.5], "sym": ["A", "B"]}), partition_by=["sym"])
DeltaTable(t).delete()
DeltaTable(t).create_checkpoint()
"#,
        &[table.to_str().unwrap()],
    );
    let want = delta_read("deltalake", table.to_str().unwrap(), None, None).unwrap();
    assert_eq!(want.rows.len(), 0, "{want:?}");
    let ds = Dataset::open_any(&table, &Default::default()).unwrap();
    let df = ds.read(&ScanOptions::default()).unwrap();
    assert_eq!(df.height(), 0);
    let names: Vec<&str> = df.get_column_names().iter().map(|n| n.as_str()).collect();
    assert_eq!(names, ["timestamp", "px", "sym"]);
    assert_eq!(df.column("px").unwrap().dtype(), &DataType::Float64);
    let before = ds
        .read(&ScanOptions {
            version: Some(0),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(before.height(), 2);
    let out = run(&["scan", table.to_str().unwrap(), "--format", "csv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "timestamp,px,sym\n");
    let out = run(&["info", table.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("files      0  rows 0"));
}

/// Many writers at once, the way users who outgrow one machine ingest (one worker per
/// symbol): 64 writers on distinct symbols of one S3 dataset all commit, backing off and
/// trying again on the version that beat them; the log holds all 64 versions, in order, with
/// no gap, and delta-rs reads every row. Each merged
/// once: a retry is rebased onto the versions that beat it (they wrote other symbols).
#[test]
fn sixty_four_writers_on_distinct_symbols_of_one_s3_dataset_all_commit() {
    let _measuring = measuring();
    let (url, location) = s3_klines();
    Dataset::create_at(
        &location,
        pqdm::schema::KindRegistry::default().get("klines").unwrap(),
        &Default::default(),
    )
    .unwrap();
    const WRITERS: usize = 64;
    let reports: Vec<(u32, u32)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..WRITERS)
            .map(|i| {
                let location = &location;
                s.spawn(move || {
                    let ds = Dataset::open_at(location).unwrap();
                    let report = ds
                        .write(
                            candles(T0, 60, i as f64).lazy(),
                            &kline_opts(&format!("S{i:02}USDT")),
                        )
                        .unwrap_or_else(|e| panic!("writer {i}: {e}"));
                    (report.commit_attempts, report.merges)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let attempts: Vec<u32> = reports.iter().map(|r| r.0).collect();
    assert_eq!(
        reports.iter().map(|r| r.1).collect::<Vec<_>>(),
        vec![1; WRITERS],
        "merges per writer"
    );
    let mut histogram = std::collections::BTreeMap::new();
    for a in &attempts {
        *histogram.entry(*a).or_insert(0) += 1;
    }
    eprintln!("commit attempts per writer (attempts: writers): {histogram:?}");
    assert!(attempts.iter().all(|a| *a >= 1), "{attempts:?}");
    let ds = Dataset::open_at(&location).unwrap();
    let m = ds.manifest().unwrap();
    assert_eq!(m.version, WRITERS as u64);
    assert_eq!(m.total_rows, (WRITERS * 60) as u64);
    let storage = delta_rs_s3_options();
    let got = delta_read("deltalake", &url, None, Some(&storage)).unwrap();
    assert_eq!(got, pqdm_read(&ds, WRITERS as u64));
}

/// The log alone records every version as the manifest does: each entry carries pqdm's record
/// (the version's header in `commitInfo.pqdm.manifest`, each file's checksum and origin in its
/// `add.tags`), so a version rebuilt from the newest checkpoint at or before it and the entries
/// after equals the manifest pqdm keeps for it, through upserts, an append, an overwrite, new
/// metadata, a compaction and a vacuum that trims the log. `verify` compares the two and names an
/// entry edited by hand.
#[test]
fn every_version_rebuilt_from_the_log_alone_equals_its_manifest() {
    let _measuring = measuring();
    let dir = tmp();
    let ds = klines_with_interval(&dir.path().join("k"), 3);
    write(&ds, "BTCUSDT", T0, 2880, 100.0, WriteMode::Upsert);
    write(&ds, "BTCUSDT", T0 + DAY / 2, 720, 5000.0, WriteMode::Upsert);
    write(&ds, "ETHUSDT", T0, 60, 7.0, WriteMode::Append);
    ds.write(
        candles(T0 + DAY, 30, 9.0).lazy(),
        &WriteOptions {
            mode: Some(WriteMode::Append),
            metadata: [("source".to_string(), "a/b %".to_string())].into(),
            ..kline_opts("BTCUSDT")
        },
    )
    .unwrap();
    write(&ds, "ETHUSDT", T0, 10, 8.0, WriteMode::Overwrite);
    let compacted = ds
        .compact(&Default::default(), &pqdm::progress::Progress::hidden())
        .unwrap();
    assert!(compacted.version.is_some(), "{compacted:?}");
    write(&ds, "SOLUSDT", T0, 5, 1.0, WriteMode::Upsert);
    let check_all = |ds: &Dataset| {
        let versions = ds.versions().unwrap();
        for v in &versions {
            let kept = ds.manifest_at(Some(*v)).unwrap();
            let rebuilt = ds
                .version_from_log(*v)
                .unwrap_or_else(|e| panic!("version {v}: {e}"));
            assert_eq!(rebuilt, *kept, "version {v}");
        }
        versions
    };
    assert_eq!(check_all(&ds), (0..=7).collect::<Vec<u64>>());
    // Versions 6 and 7 kept: the log starts at checkpoint 6, and both still rebuild.
    ds.vacuum(&VacuumOptions {
        retain_versions: 2,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(check_all(&ds), [6, 7]);
    let e = ds.version_from_log(2).unwrap_err().to_string();
    assert!(e.contains("version 2"), "{e}");
    // verify agrees with the log; a checksum edited in the newest entry is named (against
    // `_manifest.json`, which lists the files of a dataset this small).
    let base = ds.base().to_str().unwrap();
    let verify = |base: &str| -> Value {
        serde_json::from_slice(&run(&["verify", base, "--json"]).stdout).unwrap()
    };
    // (The append wrote 30 BTC keys a second time: verify counts those, not the log.)
    let report = verify(base);
    assert_eq!(report["delta_log"], Value::Null, "{report}");
    assert_eq!(report["duplicate_keys"], 30, "{report}");
    zero_logged_checksum(&ds, 7);
    let report = verify(base);
    let problem = report["delta_log"].as_str().unwrap_or_default().to_string();
    assert!(
        problem.contains("pqdm record whose entry for exchange=BINANCE/symbol=SOLUSDT/"),
        "{report}"
    );
}

/// A log begun by an earlier pqdm (entries and manifests without pqdm's record) is accepted by
/// `verify`, and this pqdm's first commit on top of it writes a checkpoint: from that version on
/// the log alone rebuilds every version (the ones before cannot be, and `version_from_log` says
/// why).
#[test]
fn the_first_commit_on_a_log_of_an_earlier_pqdm_checkpoints_it_whole() {
    let _measuring = measuring();
    let dir = tmp();
    let ds = klines_dataset(&dir.path().join("k"));
    write(&ds, "BTCUSDT", T0, 60, 1.0, WriteMode::Upsert);
    write(&ds, "ETHUSDT", T0, 60, 2.0, WriteMode::Upsert);
    strip_to_an_earlier_pqdm(ds.base(), 2);
    let ds = Dataset::open(ds.base()).unwrap();
    assert_eq!(ds.manifest().unwrap().records_since, None);
    let e = ds.version_from_log(2).unwrap_err().to_string();
    assert!(e.contains("carries no pqdm record"), "{e}");
    let report = json_ok(&run(&["verify", ds.base().to_str().unwrap(), "--json"]));
    assert_eq!(report["delta_log"], Value::Null, "{report}");
    write(&ds, "SOLUSDT", T0, 60, 3.0, WriteMode::Upsert);
    // The checkpoint of version 2 (written before version 3's entry) carries its record.
    assert_eq!(ds.manifest().unwrap().records_since, Some(2));
    assert_eq!(checkpoints(ds.base()).1, Some(2));
    assert_eq!(ds.version_from_log(3).unwrap(), *ds.manifest().unwrap());
    assert_eq!(
        ds.version_from_log(2).unwrap(),
        ds.manifest_at(Some(2)).unwrap().as_ref().clone()
    );
    write(&ds, "XRPUSDT", T0, 60, 4.0, WriteMode::Upsert);
    assert_eq!(
        checkpoints(ds.base()).1,
        Some(2),
        "one checkpoint, at the first"
    );
    assert_eq!(ds.version_from_log(4).unwrap(), *ds.manifest().unwrap());
    let report = json_ok(&run(&["verify", ds.base().to_str().unwrap(), "--json"]));
    assert_eq!(report["delta_log"], Value::Null, "{report}");
    assert_readers_agree(&ds, 4);
    assert_readers_agree(&ds, 2);
}

/// Rewrites versions 0 to `newest` of the local dataset at `base` as an earlier pqdm wrote them:
/// log entries without pqdm's header or file tags, manifests without `records_since`.
fn strip_to_an_earlier_pqdm(base: &Path, newest: u64) {
    write_version_files(base);
    let rewrite = |path: &Path, edit: &dyn Fn(&mut Value)| {
        let text: String = std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| {
                let mut a: Value = serde_json::from_str(l).unwrap();
                edit(&mut a);
                format!("{a}\n")
            })
            .collect();
        std::fs::write(path, text).unwrap();
    };
    for v in 0..=newest {
        rewrite(&base.join(format!("_delta_log/{v:020}.json")), &|a| {
            if let Some(p) = a.pointer_mut("/commitInfo/pqdm") {
                p.as_object_mut().unwrap().remove("manifest");
                p.as_object_mut().unwrap().remove("manifestHash");
            }
            if let Some(add) = a.pointer_mut("/add") {
                add.as_object_mut().unwrap().remove("tags");
            }
        });
        rewrite(&base.join(format!("_pqdm/versions/{v:020}.json")), &|m| {
            m.as_object_mut().unwrap().remove("records_since");
        });
    }
    rewrite(&base.join("_manifest.json"), &|m| {
        m.as_object_mut().unwrap().remove("records_since");
    });
}

/// A writer killed while it writes the checkpoint that makes an earlier pqdm's log whole
/// (before its own commit point) commits nothing: the version stays, `verify` accepts the log,
/// and the next writer writes that checkpoint and commits; from it on the log rebuilds every
/// version.
#[test]
fn a_writer_killed_at_the_upgrade_checkpoint_commits_nothing_and_the_next_one_upgrades() {
    let _measuring = measuring();
    let dir = tmp();
    let ds = klines_with_interval(&dir.path().join("k"), 5);
    write(&ds, "BTCUSDT", T0, 60, 1.0, WriteMode::Upsert);
    write(&ds, "ETHUSDT", T0, 60, 2.0, WriteMode::Upsert);
    strip_to_an_earlier_pqdm(ds.base(), 2);
    let csv = klines_csv(dir.path(), "SOLUSDT", 30, 3.0);
    let killed = ingest_env(
        ds.base(),
        &csv,
        &[("PQDM_FAILPOINTS", "delta.checkpoint=kill")],
    );
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(killed.status.signal(), Some(9), "{}", stderr(&killed));
    let ds = Dataset::open(ds.base()).unwrap();
    assert_eq!(ds.header().version, 2);
    assert_eq!(ds.manifest().unwrap().records_since, None);
    assert_eq!(checkpoints(ds.base()).1, None);
    assert_eq!(log_entries(ds.base()).len(), 3);
    let report = json_ok(&run(&["verify", ds.base().to_str().unwrap(), "--json"]));
    assert_eq!(report["delta_log"], Value::Null, "{report}");
    assert!(ingest_env(ds.base(), &csv, &[]).status.success());
    let ds = Dataset::open(ds.base()).unwrap();
    assert_eq!(ds.header().version, 3);
    assert_eq!(ds.manifest().unwrap().records_since, Some(2));
    assert_eq!(checkpoints(ds.base()).1, Some(2));
    assert_eq!(ds.version_from_log(3).unwrap(), *ds.manifest().unwrap());
    write(&ds, "XRPUSDT", T0, 60, 4.0, WriteMode::Upsert);
    write(&ds, "ADAUSDT", T0, 60, 5.0, WriteMode::Upsert);
    assert_eq!(checkpoints(ds.base()).1, Some(5));
    assert_eq!(ds.version_from_log(5).unwrap(), *ds.manifest().unwrap());
    assert_readers_agree(&ds, 5);
    assert_readers_agree(&ds, 3);
}

/// The row groups of the Parquet file at `path`, as pyarrow counts them.
fn row_groups(path: &Path) -> u64 {
    let script = "import sys, pyarrow.parquet as pq\n\
        print(pq.ParquetFile(sys.argv[1]).metadata.num_row_groups)";
    py(script, &[path.to_str().unwrap()])
        .trim()
        .parse()
        .unwrap()
}

/// Each live file of `table` at `version` as delta-rs lists it from the log: its partition
/// values (symbol, year, month, day), rows and smallest and largest timestamp, sorted.
fn delta_rs_files(table: &Path, version: u64) -> Vec<ListedFile> {
    let script = "import sys, json, pyarrow as pa\n\
        from deltalake import DeltaTable\n\
        t = pa.table(DeltaTable(sys.argv[1], version=int(sys.argv[2])).get_add_actions(flatten=True))\n\
        cols = ['partition.symbol', 'partition.year', 'partition.month', 'partition.day',\n\
                'num_records', 'min.timestamp', 'max.timestamp']\n\
        print(json.dumps([list(r.values()) for r in t.select(cols).to_pylist()]))";
    let out = py(script, &[table.to_str().unwrap(), &version.to_string()]);
    let mut files: Vec<ListedFile> = serde_json::from_str(&out).unwrap();
    files.sort();
    files
}

/// A live file as [`delta_rs_files`] lists it.
type ListedFile = (String, i64, i64, i64, u64, Option<i64>, Option<i64>);

/// A checkpoint of more actions than one row group holds (16,384) is written in several row
/// groups. Once the entries before it are gone, delta-rs lists the same files from it as pqdm
/// (partition values, rows, timestamp range), Polars and DuckDB read the same rows, and so does
/// pqdm opening the table through its log. (delta-rs lists rather than reads: reading 17,000
/// files takes it 25 s.)
#[test]
fn a_checkpoint_of_several_row_groups_reads_the_same_in_every_engine() {
    let _measuring = measuring();
    let dir = tmp();
    let ds = klines_with_interval(&dir.path().join("k"), 2);
    let (symbols, days) = (170usize, 100i64);
    let frame = |price: f64, day_from: i64| {
        let mut symbol = Vec::new();
        let mut ts = Vec::new();
        for s in 0..symbols {
            for d in day_from..days {
                symbol.push(format!("S{s:03}"));
                ts.push(T0 + d * DAY + s as i64 * 60_000);
            }
        }
        let n = ts.len();
        df!(
            "open_time" => ts.clone(),
            "open" => vec![price; n], "high" => vec![price; n], "low" => vec![price; n],
            "close" => (0..n).map(|i| price + i as f64).collect::<Vec<_>>(),
            "volume" => vec![1.5f64; n],
            "close_time" => ts.iter().map(|t| t + 59_999).collect::<Vec<_>>(),
            "count" => vec![7i64; n],
            "symbol" => symbol,
        )
        .unwrap()
    };
    let opts = WriteOptions {
        constants: consts(&[("exchange", "BINANCE"), ("timeframe", "1m")]),
        ..Default::default()
    };
    let first = ds.write(frame(1.0, 0).lazy(), &opts).unwrap().version;
    // The last day of every symbol again: 170 files replaced, so the checkpoint at the next
    // (even) version holds 17,000 adds and 170 removes.
    let second = ds
        .write(frame(2.0, days - 1).lazy(), &opts)
        .unwrap()
        .version;
    assert_eq!((first, second), (1, 2));
    assert_eq!(
        checkpoints(ds.base()),
        (
            vec![
                format!("{:020}.checkpoint.parquet", 1),
                format!("{:020}.checkpoint.parquet", 2)
            ],
            Some(2)
        )
    );
    for v in [1, 2] {
        let path = ds
            .base()
            .join(format!("_delta_log/{v:020}.checkpoint.parquet"));
        assert_eq!(row_groups(&path), 2, "{path:?}");
    }
    for v in 0..=2 {
        std::fs::remove_file(ds.base().join(format!("_delta_log/{v:020}.json"))).unwrap();
    }

    let manifest = ds.manifest_at(Some(2)).unwrap();
    let mut files: Vec<ListedFile> = manifest
        .files
        .iter()
        .map(|f| {
            let part = |c: &str| f.partition.value(c).unwrap().to_string();
            let number = |c: &str| part(c).parse::<i64>().unwrap();
            (
                part("symbol"),
                number("year"),
                number("month"),
                number("day"),
                f.rows,
                f.min_timestamp,
                f.max_timestamp,
            )
        })
        .collect();
    files.sort();
    assert_eq!(files.len(), symbols * days as usize);
    let listed = delta_rs_files(ds.base(), 2);
    assert_eq!(listed.len(), files.len());
    assert_eq!(listed, files);

    let want = pqdm_read(&ds, 2);
    assert_eq!(want.rows.len(), symbols * days as usize);
    let table = ds.base().display().to_string();
    for reader in ["polars", "duckdb"] {
        let got = delta_read(reader, &table, Some(2), None).unwrap();
        assert_eq!(got, want, "{reader}");
    }
    std::fs::rename(
        ds.base().join("_manifest.json"),
        dir.path().join("manifest-aside.json"),
    )
    .unwrap();
    let through_log = Dataset::open_any(ds.base(), &Default::default()).unwrap();
    assert!(through_log.is_foreign());
    assert_eq!(pqdm_read(&through_log, 2), want);
}

/// A per-key latest timestamp edited by hand in the log's pqdm record (the version then read
/// from the log, `_manifest.json` gone) is right again after the next commit, even one that
/// touches another key: the summary is recomputed from the files, never carried over.
#[test]
fn a_summary_edited_by_hand_in_the_log_is_right_after_the_next_commit() {
    let dir = tmp();
    let ds = klines_dataset(&dir.path().join("k"));
    write(&ds, "BTCUSDT", T0, 3, 1.0, WriteMode::Upsert);
    write(&ds, "ETHUSDT", T0, 3, 1.0, WriteMode::Upsert);
    let truth = ds.manifest().unwrap().latest_by_key.clone();
    let entry = ds.base().join("_delta_log/00000000000000000002.json");
    let text = std::fs::read_to_string(&entry).unwrap();
    let (first, rest) = text.split_once('\n').unwrap();
    let mut info: Value = serde_json::from_str(first).unwrap();
    let header = &mut info["commitInfo"]["pqdm"]["manifest"];
    for e in header["latest_by_key"].as_array_mut().unwrap() {
        e["latest_timestamp"] = Value::from(0);
    }
    header["latest_timestamp"] = Value::from(0);
    std::fs::write(&entry, format!("{info}\n{rest}")).unwrap();
    std::fs::remove_file(ds.base().join("_manifest.json")).unwrap();
    let ds = Dataset::open(ds.base()).unwrap();
    assert!(
        ds.manifest()
            .unwrap()
            .latest_by_key
            .iter()
            .all(|e| e.latest_timestamp == 0)
    );
    write(&ds, "SOLUSDT", T0, 3, 1.0, WriteMode::Upsert);
    let m = ds.manifest().unwrap();
    assert_eq!(m.latest_by_key.len(), 3);
    assert_eq!(m.latest_by_key[..2], truth[..]);
    assert_eq!(m.latest_timestamp, Some(T0 + 2 * 60_000));
}
