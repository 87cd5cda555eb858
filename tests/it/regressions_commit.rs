//! Regressions of the commit path (reliability round two): hostile journals and manifests,
//! the commit point and what follows it, the lock, readers that outlive commits, and every
//! step of a commit failing or dying in turn (failpoints).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Output;

use polars::prelude::*;
use pqdm::{Dataset, ScanOptions};

use crate::common::*;

fn ingest(base: &Path, csv: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut args = vec![
        "ingest",
        "--dataset",
        base.to_str().unwrap(),
        "--json",
        csv.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run_env(&args, env)
}

/// Ingests `minutes` candles of `symbol` (every close `close`) into `base`; the JSON report.
fn ingest_candles(
    base: &Path,
    dir: &Path,
    symbol: &str,
    minutes: i64,
    close: f64,
) -> serde_json::Value {
    json_ok(&ingest(
        base,
        &klines_csv(dir, symbol, minutes, close),
        &[],
        &[],
    ))
}

/// Rows and the sum of `close` as pqdm reads the current version.
fn content(base: &Path) -> (usize, f64) {
    let ds = Dataset::open(base).unwrap();
    let df = ds
        .read(&ScanOptions::default().columns(&["close"]))
        .unwrap();
    (
        df.height(),
        df.column("close")
            .unwrap()
            .f64()
            .unwrap()
            .sum()
            .unwrap_or(0.0),
    )
}

/// Rows and close sum a plain reader sees: every `*.parquet` of the tree, hidden folders skipped.
fn glob_content(base: &Path) -> (usize, f64) {
    let files: Vec<PathBuf> = parquet_files(base)
        .into_iter()
        .filter(|f| !f.starts_with('_'))
        .map(|f| base.join(f))
        .collect();
    if files.is_empty() {
        return (0, 0.0);
    }
    let paths: Vec<PlRefPath> = files
        .iter()
        .map(|p| PlRefPath::try_from_path(p).unwrap())
        .collect();
    let df = LazyFrame::scan_parquet_files(paths.into(), Default::default())
        .unwrap()
        .select([col("close")])
        .collect()
        .unwrap();
    (
        df.height(),
        df.column("close")
            .unwrap()
            .f64()
            .unwrap()
            .sum()
            .unwrap_or(0.0),
    )
}

/// The newest log entry: the current version's commit point.
fn newest_entry(base: &Path) -> PathBuf {
    std::fs::read_dir(base.join("_delta_log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .max()
        .unwrap()
}

/// The current version file, as an earlier pqdm wrote it (see [`write_version_files`]).
fn newest_version_file(base: &Path) -> PathBuf {
    write_version_files(base);
    let mut files = vec![];
    pqdm::manifest::walk(&base.join("_pqdm/versions"), &mut |p| {
        files.push(p.to_path_buf())
    })
    .unwrap();
    files.sort();
    files.pop().unwrap()
}

#[test]
fn a_manifest_listing_a_file_twice_is_refused_naming_it() {
    let dir = tmp();
    let base = dir.path().join("ds");
    let csv = klines_csv(dir.path(), "BTCUSDT", 60, 10.0);
    json_ok(&ingest(&base, &csv, &[], &[]));
    let newest = newest_version_file(&base);
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&newest).unwrap()).unwrap();
    let first = m["files"][0].clone();
    m["files"].as_array_mut().unwrap().push(first.clone());
    std::fs::write(&newest, serde_json::to_vec(&m).unwrap()).unwrap();
    let out = run(&["scan", base.to_str().unwrap(), "--format", "csv"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("twice") && err.contains(first["path"].as_str().unwrap()),
        "{err}"
    );
}

/// A journal planted with `moved_in` naming `rel`; returns the journal's path.
fn plant_journal(base: &Path, rel: &str) -> PathBuf {
    let dir = base.join("_pqdm/journal");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("00000000000000000099.json");
    let journal = serde_json::json!({
        "target_version": 99, "op_id": "planted", "moved_in": [rel], "moved_out": [rel],
    });
    std::fs::write(&path, serde_json::to_vec(&journal).unwrap()).unwrap();
    path
}

#[test]
fn a_planted_journal_cannot_make_any_command_touch_a_file_outside_the_dataset() {
    let dir = tmp();
    let base = dir.path().join("ds");
    let csv = klines_csv(dir.path(), "BTCUSDT", 60, 10.0);
    json_ok(&ingest(&base, &csv, &[], &[]));
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "keep me").unwrap();
    let outside = dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("victim.txt"), "keep me too").unwrap();
    std::os::unix::fs::symlink(&outside, base.join("link")).unwrap();
    for rel in [
        "../victim.txt".to_string(),
        victim.display().to_string(),
        "symbol=BTCUSDT/../../victim.txt".into(),
        "link/victim.txt".into(),
    ] {
        let journal = plant_journal(&base, &rel);
        let before = snapshot(&base);
        // A read-only command recovers in passing: it must neither touch nor fail.
        let info = run(&["info", base.to_str().unwrap(), "--json"]);
        assert!(info.status.success(), "{rel}");
        // A writer must refuse, naming the journal (`--force`: the source is ingested already,
        // and would be skipped without taking the lock).
        let out = ingest(&base, &csv, &["--force"], &[]);
        assert!(!out.status.success(), "{rel}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("00000000000000000099.json"), "{rel}: {err}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
        assert_eq!(
            std::fs::read_to_string(outside.join("victim.txt")).unwrap(),
            "keep me too"
        );
        assert_eq!(snapshot(&base), before, "{rel}: the dataset changed");
        std::fs::remove_file(journal).unwrap();
    }
}

#[test]
fn a_journal_is_never_rolled_forward_onto_another_commits_version() {
    let dir = tmp();
    let base = dir.path().join("ds");
    let csv = klines_csv(dir.path(), "BTCUSDT", 60, 10.0);
    json_ok(&ingest(&base, &csv, &[], &[]));
    let m = Dataset::open(&base).unwrap().manifest().unwrap();
    let live = m.files[0].path.clone();
    // A journal for version 1 written by an operation that is not version 1's: rolling it
    // forward would take the live file out of the tree.
    let dir_j = base.join("_pqdm/journal");
    std::fs::create_dir_all(&dir_j).unwrap();
    let journal = serde_json::json!({
        "target_version": 1, "op_id": "someone-else", "moved_in": [], "moved_out": [live],
    });
    std::fs::write(
        dir_j.join("00000000000000000001.json"),
        serde_json::to_vec(&journal).unwrap(),
    )
    .unwrap();
    assert_eq!(content(&base), (60, 600.0));
    assert!(base.join(&live).is_file());
    assert_eq!(glob_content(&base), (60, 600.0));
}

/// `vacuum`'s record of the oldest version it kept (`_pqdm/vacuumed.json`), edited by hand to a
/// version that does not exist or to garbage, hides no version: `history` lists the versions
/// the log holds, the current one reads whole, and writers go on.
#[test]
fn a_vacuum_record_edited_by_hand_hides_no_version() {
    let dir = tmp();
    let base = dir.path().join("ds");
    ingest_candles(&base, dir.path(), "BTCUSDT", 60, 10.0);
    ingest_candles(&base, dir.path(), "ETHUSDT", 30, 20.0);
    let b = base.to_str().unwrap();
    let vacuum = json_ok(&run(&["vacuum", b, "--retain-versions", "2", "--json"]));
    assert_eq!(vacuum["versions_removed"], serde_json::json!([0]));
    let history = |b: &str| -> Vec<u64> {
        json_ok(&run(&["history", b, "--json"]))["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["version"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(history(b), vec![1, 2]);
    let record = base.join("_pqdm/vacuumed.json");
    for edited in [
        format!("{{\"oldest_version\": {}}}", u64::MAX),
        "{\"oldest_version\": 3}".to_string(),
        "{".to_string(),
    ] {
        std::fs::write(&record, &edited).unwrap();
        assert_eq!(history(b), vec![0, 1, 2], "{edited}");
        assert_eq!(content(&base), (90, 1200.0), "{edited}");
    }
    ingest_candles(&base, dir.path(), "SOLUSDT", 10, 1.0);
    assert_eq!(content(&base), (100, 1210.0));
    assert_eq!(history(b), vec![0, 1, 2, 3]);
}

/// `_manifest.json` edited by hand into another valid manifest of the same version (a file
/// dropped, the totals fixed to match): its hash is not the one the log entry records, so
/// pqdm reads the version from the log (no row goes missing, writers build on the real
/// version); `verify` names the copy and `--repair` rewrites it.
#[test]
fn a_manifest_copy_edited_into_another_valid_version_is_not_read() {
    let dir = tmp();
    let base = dir.path().join("ds");
    ingest_candles(&base, dir.path(), "BTCUSDT", 60, 10.0);
    ingest_candles(&base, dir.path(), "ETHUSDT", 30, 20.0);
    let copy_path = base.join("_manifest.json");
    let copy = std::fs::read(&copy_path).unwrap();
    let mut edited: serde_json::Value = serde_json::from_slice(&copy).unwrap();
    drop_first_file(&mut edited);
    std::fs::write(&copy_path, serde_json::to_vec(&edited).unwrap()).unwrap();
    assert_eq!(content(&base), (90, 1200.0));
    let verify = run(&["verify", base.to_str().unwrap(), "--json"]);
    assert!(!verify.status.success());
    let report: serde_json::Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert_eq!(report["manifest_copy_stale"], true, "{report}");
    assert_eq!(report["missing"], serde_json::json!([]), "{report}");
    assert_eq!(report["orphans"], serde_json::json!([]), "{report}");
    // A writer builds on the version the log holds, and its commit rewrites the copy.
    ingest_candles(&base, dir.path(), "SOLUSDT", 10, 1.0);
    assert_eq!(content(&base), (100, 1210.0));
    let report = json_ok(&run(&["verify", base.to_str().unwrap(), "--json"]));
    assert_eq!(report["manifest_copy_stale"], false, "{report}");
}

#[test]
fn an_edited_or_truncated_manifest_copy_leaves_the_history_intact_and_repair_rewrites_it() {
    let dir = tmp();
    let base = dir.path().join("ds");
    ingest_candles(&base, dir.path(), "BTCUSDT", 60, 10.0);
    ingest_candles(&base, dir.path(), "ETHUSDT", 30, 20.0);
    // The commit record (the newest log entry) and the copy it records the hash of.
    let newest = newest_entry(&base);
    let history = std::fs::read(&newest).unwrap();
    let copy = std::fs::read(base.join("_manifest.json")).unwrap();
    // Truncated in place (the same inode), as an editor or a full disk would leave it.
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(base.join("_manifest.json"))
        .unwrap()
        .write_all(b"{\"format_version\": 1, \"vers")
        .unwrap();
    assert_eq!(std::fs::read(&newest).unwrap(), history);
    assert_eq!(content(&base), (90, 1200.0));
    let verify = run(&["verify", base.to_str().unwrap(), "--json"]);
    assert!(!verify.status.success());
    let report: serde_json::Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert_eq!(report["manifest_copy_stale"], true);
    let repair = run(&["verify", base.to_str().unwrap(), "--repair", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&repair.stdout).unwrap();
    assert_eq!(report["repairs"]["manifest_copy_rewritten"], true);
    assert_eq!(std::fs::read(base.join("_manifest.json")).unwrap(), copy);
    assert_eq!(std::fs::read(&newest).unwrap(), history);
    assert_eq!(content(&base), (90, 1200.0));
}

#[test]
fn a_restored_old_manifest_copy_does_not_hide_newer_versions_from_repair_or_writers() {
    let dir = tmp();
    let base = dir.path().join("ds");
    ingest_candles(&base, dir.path(), "BTCUSDT", 60, 10.0);
    let backup = std::fs::read(base.join("_manifest.json")).unwrap();
    ingest_candles(&base, dir.path(), "ETHUSDT", 30, 20.0);
    let v2 = std::fs::read(newest_entry(&base)).unwrap();
    std::fs::write(base.join("_manifest.json"), &backup).unwrap();
    let repair = run(&["verify", base.to_str().unwrap(), "--repair", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&repair.stdout).unwrap();
    assert_eq!(report["version"], 2);
    assert_eq!(report["missing"], serde_json::json!([]));
    assert_eq!(report["orphans"], serde_json::json!([]));
    assert_eq!(content(&base), (90, 1200.0));
    // No log entry was overwritten.
    assert_eq!(
        std::fs::read(base.join("_delta_log/00000000000000000002.json")).unwrap(),
        v2
    );
    // A writer after the restore goes on from version 2.
    let third = ingest_candles(&base, dir.path(), "SOLUSDT", 10, 1.0);
    assert_eq!(third["version"], 3);
    assert_eq!(content(&base), (100, 1210.0));
}

#[test]
fn a_failure_after_the_commit_point_is_a_warning_not_a_failed_write() {
    let dir = tmp();
    let base = dir.path().join("ds");
    ingest_candles(&base, dir.path(), "BTCUSDT", 60, 10.0);
    // Two inputs, so a failed grouped write would be re-run file by file.
    let more = dir.path().join("more");
    std::fs::create_dir(&more).unwrap();
    klines_csv(&more, "ETHUSDT", 30, 20.0);
    klines_csv(&more, "SOLUSDT", 30, 1.0);
    let out = ingest(
        &base,
        &more,
        &["--mode", "append"],
        &[("PQDM_FAILPOINTS", "commit.tidy=error")],
    );
    let report = json_ok(&out);
    assert_eq!(report["version"], 2);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("version 2") && log.contains("is committed"),
        "{log}"
    );
    // Committed once: no retry or diagnosis after the commit point.
    assert_eq!(content(&base), (120, 600.0 + 600.0 + 30.0));
    let history = json_ok(&run(&["history", base.to_str().unwrap(), "--json"]));
    assert_eq!(history["versions"].as_array().unwrap().len(), 3);
    // The next writer finishes the tidy-up: the journal is gone, the copy is current.
    ingest_candles(&base, dir.path(), "ADAUSDT", 10, 2.0);
    assert!(
        std::fs::read_dir(base.join("_pqdm/journal"))
            .map(|mut d| d.next().is_none())
            .unwrap_or(true)
    );
    let verify = json_ok(&run(&["verify", base.to_str().unwrap(), "--json"]));
    assert_eq!(verify["manifest_copy_stale"], false);
    assert_eq!(content(&base), (130, 1250.0));
}

#[test]
fn a_writer_behind_a_hung_lock_holder_gives_up_naming_it() {
    let dir = tmp();
    let base = dir.path().join("ds");
    let csv = klines_csv(dir.path(), "BTCUSDT", 60, 10.0);
    json_ok(&ingest(&base, &csv, &[], &[]));
    let held = pqdm::lock::FileLock::acquire(&base.join("_pqdm/lock"), "hung-test").unwrap();
    let before = snapshot(&base);
    // `--force`: the source is ingested already, and would be skipped without taking the lock.
    let out = ingest(&base, &csv, &["--lock-timeout", "0.3", "--force"], &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("pid {}", std::process::id())) && err.contains("hung-test"),
        "{err}"
    );
    let out = ingest(&base, &csv, &["--force"], &[("PQDM_LOCK_TIMEOUT", "0.2")]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("gave up after"));
    assert_eq!(snapshot(&base), before);
    let bad = ingest(&base, &csv, &["--lock-timeout", "soon"], &[]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--lock-timeout `soon`"));
    drop(held);
    json_ok(&ingest(&base, &csv, &[], &[]));
}

#[test]
fn a_lazy_scan_planned_on_a_version_reads_it_after_upserts_compaction_and_vacuum() {
    let dir = tmp();
    let base = dir.path().join("ds");
    json_ok(&ingest(
        &base,
        &klines_csv(dir.path(), "BTCUSDT", 60, 10.0),
        &["--max-rows-per-file", "20"],
        &[],
    ));
    let ds = Dataset::open(&base).unwrap();
    let planned = ds
        .scan(&ScanOptions::default().columns(&["close"]))
        .unwrap();
    // Another process replaces every row, compacts, and vacuums with the default retention.
    json_ok(&ingest(
        &base,
        &klines_csv(dir.path(), "BTCUSDT", 60, 30.0),
        &["--max-rows-per-file", "20"],
        &[],
    ));
    json_ok(&run(&[
        "compact",
        base.to_str().unwrap(),
        "--target-rows",
        "1000",
        "--json",
    ]));
    let vacuum = json_ok(&run(&[
        "vacuum",
        base.to_str().unwrap(),
        "--retain-versions",
        "1",
        "--json",
    ]));
    assert_eq!(vacuum["files_deleted"], 0);
    assert_eq!(vacuum["files_retained"], 6);
    let df = planned.collect().unwrap();
    let close = df.column("close").unwrap().f64().unwrap();
    assert_eq!((df.height(), close.sum().unwrap()), (60, 600.0));
    // Plain readers see the current version only.
    assert_eq!(glob_content(&base), (60, 1800.0));
    // With no retention, vacuum frees them, and the old plan can no longer run.
    let vacuum = json_ok(&run(&[
        "vacuum",
        base.to_str().unwrap(),
        "--retain-versions",
        "1",
        "--retention",
        "0s",
        "--json",
    ]));
    assert_eq!(vacuum["files_deleted"], 6);
    assert_eq!(content(&base), (60, 1800.0));
}

/// Every step of a local upsert's commit fails or dies in turn; after each, the dataset holds
/// exactly the version before (failures before the commit point) or after it (the tidy-up),
/// plain readers agree, nothing is left behind, and the same upsert run again lands once.
#[test]
fn every_step_of_a_commit_failing_or_dying_leaves_a_whole_version() {
    let steps = [
        ("commit.journaled", false),
        ("commit.moved_first", false),
        ("commit.moved", false),
        ("commit.version_written", false),
        ("commit.tidy", true),
    ];
    let mut cases = 0;
    for (step, committed) in steps {
        for action in ["error", "kill"] {
            let dir = tmp();
            let base = dir.path().join("ds");
            json_ok(&ingest(
                &base,
                &klines_csv(dir.path(), "BTCUSDT", 60, 10.0),
                &["--max-rows-per-file", "20"],
                &[],
            ));
            let update = klines_csv(dir.path(), "BTCUSDT", 90, 30.0);
            let failed = ingest(
                &base,
                &update,
                &[],
                &[("PQDM_FAILPOINTS", &format!("{step}={action}"))],
            );
            let landed = committed && action == "error";
            assert_eq!(failed.status.success(), landed, "{step}={action}");
            if action == "kill" {
                assert_eq!(
                    std::os::unix::process::ExitStatusExt::signal(&failed.status),
                    Some(9),
                    "{step}: the failpoint was not reached"
                );
            }
            let expect = if committed { (90, 2700.0) } else { (60, 600.0) };
            assert_eq!(content(&base), expect, "{step}={action}");
            assert_eq!(
                glob_content(&base),
                expect,
                "{step}={action}: plain readers"
            );
            let verify = json_ok(&run(&["verify", base.to_str().unwrap(), "--json"]));
            assert_eq!(verify["orphans"], serde_json::json!([]), "{step}={action}");
            assert_eq!(verify["missing"], serde_json::json!([]), "{step}={action}");
            assert_eq!(verify["manifest_copy_stale"], false, "{step}={action}");
            let versions = json_ok(&run(&["history", base.to_str().unwrap(), "--json"]));
            assert_eq!(
                versions["versions"].as_array().unwrap().len(),
                if committed { 3 } else { 2 },
                "{step}={action}"
            );
            let again = json_ok(&ingest(&base, &update, &[], &[]));
            assert_eq!(content(&base), (90, 2700.0), "{step}={action}: retried");
            assert_eq!(glob_content(&base), (90, 2700.0), "{step}={action}");
            assert!(again["version"].as_u64().unwrap() >= 2);
            let leftovers: Vec<String> = ["journal", "staging"]
                .iter()
                .flat_map(|d| {
                    let mut v = vec![];
                    pqdm::manifest::walk(&base.join("_pqdm").join(d), &mut |p| {
                        v.push(p.display().to_string())
                    })
                    .unwrap();
                    v
                })
                .filter(|p| !p.ends_with(".lock"))
                .collect();
            assert_eq!(leftovers, Vec::<String>::new(), "{step}={action}");
            cases += 1;
        }
    }
    assert_eq!(cases, 10);
}

/// Runs `pqdm` against the local S3 server.
fn s3_cli(args: &[&str]) -> Output {
    s3_env(&mut bin())
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

/// One candle of ETHUSDT on 2024-01-05 at `minute`, close `close`, in a folder of its own.
fn one_candle(dir: &Path, minute: i64, close: f64) -> PathBuf {
    let folder = dir.join(format!("m{minute}-{close}"));
    std::fs::create_dir_all(&folder).unwrap();
    let t = 1_704_412_800_000i64 + minute * 60_000;
    let path = folder.join("ETHUSDT-1m-2024-01-05.csv");
    std::fs::write(
        &path,
        format!(
            "{t},1.5,2.5,1.0,{close},10.0,{},20.0,5,4.0,8.0,0\n",
            t + 59_999
        ),
    )
    .unwrap();
    path
}

/// Rows, and the closes of minutes 0 and 1, of an S3 dataset as pqdm reads it.
fn s3_minutes(base: &str) -> (usize, Vec<Option<f64>>) {
    let rows = s3_timestamp_closes(base);
    let at = |m: i64| {
        rows.iter()
            .find(|(t, _)| *t == 1_704_412_800_000 + m * 60_000)
            .map(|(_, c)| *c)
    };
    (rows.len(), vec![at(0), at(1)])
}

#[test]
fn an_s3_upsert_that_loses_its_version_rebuilds_its_rewrite_on_the_winner() {
    let bucket = s3_bucket();
    let base = format!("s3://{bucket}/klines");
    let eth = data_dir().join("spot/klines/ETHUSDT-1m-2024-01-05.zip");
    let first = json_ok(&s3_cli(&[
        "ingest",
        "--dataset",
        &base,
        "--json",
        eth.to_str().unwrap(),
    ]));
    assert_eq!(first["files"].as_array().unwrap().len(), 1);
    let dir = tmp();
    // Upsert A changes minute 0; it has uploaded its rewrite of the day's file and is held at
    // its journal when upsert B, changing minute 1 of the same file, commits version 2.
    let journal = format!("/{bucket}/klines/_pqdm/journal/");
    s3_hold(&journal);
    let a = s3_env(&mut bin())
        .args(["ingest", "--dataset", &base, "--json"])
        .arg(one_candle(dir.path(), 0, 111.0))
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    s3_wait_held(&journal);
    let b = json_ok(&s3_cli(&[
        "ingest",
        "--dataset",
        &base,
        "--json",
        one_candle(dir.path(), 1, 222.0).to_str().unwrap(),
    ]));
    assert_eq!(b["version"], 2);
    s3_release(&journal);
    let out = a.wait_with_output().unwrap();
    let report = json_ok(&out);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("trying again"),
        "the race did not happen: {log}"
    );
    assert_eq!(report["version"], 3);
    // As if B then A had run one after the other.
    assert_eq!(s3_minutes(&base), (1440, vec![Some(111.0), Some(222.0)]));
    let verify: serde_json::Value =
        serde_json::from_slice(&s3_cli(&["verify", &base, "--json"]).stdout).unwrap();
    assert_eq!(verify["checksum_mismatches"], serde_json::json!([]));
    assert_eq!(verify["duplicate_keys"], 0);
}

#[test]
fn s3_version_discovery_never_goes_back_past_what_vacuum_deleted() {
    let bucket = s3_bucket();
    let base = format!("s3://{bucket}/klines");
    let dir = tmp();
    let mut v1 = vec![];
    for (minute, close) in [(0, 1.0), (1, 2.0), (2, 3.0)] {
        if minute == 1 {
            let remote = pqdm::storage::Remote::open(Path::new(&base)).unwrap();
            v1 = remote.get("_manifest.json").unwrap().unwrap();
        }
        json_ok(&s3_cli(&[
            "ingest",
            "--dataset",
            &base,
            "--json",
            one_candle(dir.path(), minute, close).to_str().unwrap(),
        ]));
    }
    let remote = pqdm::storage::Remote::open(Path::new(&format!("s3://{bucket}/klines"))).unwrap();
    // Writers of versions 2 and 3 died before rewriting the hint.
    remote.put("_manifest.json", v1.clone()).unwrap();
    let vacuum = json_ok(&s3_cli(&[
        "vacuum",
        &base,
        "--retain-versions",
        "1",
        "--json",
    ]));
    assert_eq!(vacuum["versions_removed"], serde_json::json!([0, 1, 2]));
    let info = json_ok(&s3_cli(&["info", &base, "--json"]));
    assert_eq!(info["version"], 3);
    assert_eq!(info["total_rows"], 3);
    // A slow writer rewrites the hint to an old version after the vacuum.
    remote.put("_manifest.json", v1).unwrap();
    let info = json_ok(&s3_cli(&["info", &base, "--json"]));
    assert_eq!(info["version"], 3);
    let next = json_ok(&s3_cli(&[
        "ingest",
        "--dataset",
        &base,
        "--json",
        one_candle(dir.path(), 3, 4.0).to_str().unwrap(),
    ]));
    assert_eq!(next["version"], 4);
    assert_eq!(
        json_ok(&s3_cli(&["info", &base, "--json"]))["total_rows"],
        4
    );
}

#[test]
fn an_s3_commit_whose_answer_is_lost_is_settled_by_reading_the_version_back() {
    let bucket = s3_bucket();
    let base = format!("s3://{bucket}/klines");
    let dir = tmp();
    json_ok(&s3_cli(&[
        "ingest",
        "--dataset",
        &base,
        "--json",
        one_candle(dir.path(), 0, 1.0).to_str().unwrap(),
    ]));
    // The store applies version 2's put and answers 500.
    s3_lose_answer(&format!("/{bucket}/klines/_delta_log/"));
    let out = s3_cli(&[
        "ingest",
        "--dataset",
        &base,
        "--mode",
        "append",
        "--json",
        one_candle(dir.path(), 1, 2.0).to_str().unwrap(),
    ]);
    let report = json_ok(&out);
    assert_eq!(report["version"], 2);
    let history = json_ok(&s3_cli(&["history", &base, "--json"]));
    assert_eq!(history["versions"].as_array().unwrap().len(), 3);
    assert_eq!(s3_minutes(&base), (2, vec![Some(1.0), Some(2.0)]));
    let verify: serde_json::Value =
        serde_json::from_slice(&s3_cli(&["verify", &base, "--json"]).stdout).unwrap();
    assert_eq!(verify["missing"], serde_json::json!([]));
}

#[test]
fn an_s3_writer_stalled_past_the_stale_age_does_not_commit_what_recovery_undid() {
    let bucket = s3_bucket();
    let base = format!("s3://{bucket}/klines");
    let dir = tmp();
    json_ok(&s3_cli(&[
        "ingest",
        "--dataset",
        &base,
        "--json",
        one_candle(dir.path(), 0, 1.0).to_str().unwrap(),
    ]));
    // The writer stalls while copying its file into the tree, after its journal is written.
    let tree = format!("/{bucket}/klines/exchange=");
    s3_hold(&tree);
    let writer = s3_env(&mut bin())
        .args(["ingest", "--dataset", &base, "--json"])
        .arg(one_candle(dir.path(), 1, 2.0))
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    s3_wait_held(&tree);
    // Another process, for which that writer looks dead, undoes its commit in passing (and
    // commits nothing itself, so no version race would stop the stalled writer).
    let repair = s3_env(&mut bin())
        .args(["verify", &base, "--repair", "--json"])
        .env("PQDM_STALE_SECS", "0")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&repair.stderr).contains("removing what a dead writer copied"),
        "{}",
        String::from_utf8_lossy(&repair.stderr)
    );
    s3_release(&tree);
    let out = writer.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("took it for dead"), "{err}");
    assert_eq!(s3_minutes(&base).0, 1);
    let info = json_ok(&s3_cli(&["info", &base, "--json"]));
    assert_eq!(info["version"], 1);
    let verify: serde_json::Value =
        serde_json::from_slice(&s3_cli(&["verify", &base, "--json"]).stdout).unwrap();
    assert_eq!(verify["orphans"], serde_json::json!([]));
}

#[test]
fn a_failed_first_write_removes_its_empty_dataset_but_never_another_writers_staging() {
    let dir = tmp();
    let base = dir.path().join("ds");
    let bad = dir.path().join("BTCUSDT-1m-2024-01-01.csv");
    std::fs::write(
        &bad,
        "1704067200000,1.5,2.5,1.0,not-a-price,10.0,1704067259999,20.0,5,4.0,8.0,0\n",
    )
    .unwrap();
    let out = ingest(&base, &bad, &[], &[]);
    assert!(!out.status.success());
    assert!(
        !base.exists(),
        "the failed first write left {}",
        base.display()
    );

    // An empty dataset goes with its folder (another writer staging into it keeps it: the
    // unit test `an_empty_dataset_another_writer_stages_into_stays` in txn/local.rs).
    let ds = klines_dataset(&base);
    assert!(ds.remove_if_empty().unwrap());
    assert!(!base.exists());
}

#[test]
fn a_version_file_copied_under_another_number_is_refused_naming_it() {
    let dir = tmp();
    let base = dir.path().join("ds");
    ingest_candles(&base, dir.path(), "BTCUSDT", 60, 10.0);
    let versions = base.join("_delta_log");
    std::fs::copy(
        versions.join("00000000000000000001.json"),
        versions.join("00000000000000000005.json"),
    )
    .unwrap();
    let before = snapshot(&base);
    let out = ingest(&base, &klines_csv(dir.path(), "ETHUSDT", 10, 1.0), &[], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("_delta_log: has no entry for version 2, so version 5 cannot be read"),
        "{err}"
    );
    assert_eq!(snapshot(&base), before);
}

/// Found with the journal fuzz target: a journal naming pqdm's own metadata among the files to
/// move (the current version file, `_manifest.json`) made recovery delete the version file, and
/// the dataset silently fell back to the version before. Such a journal is an error naming it,
/// and nothing is touched.
#[test]
fn a_journal_naming_pqdm_metadata_touches_nothing() {
    let dir = tmp();
    let base = dir.path().join("ds");
    let ds = klines_dataset(&base);
    ds.write(
        candles(1_704_412_800_000, 5, 1.0).lazy(),
        &kline_opts("BTCUSDT"),
    )
    .unwrap();
    let version = base.join("_delta_log/00000000000000000001.json");
    assert!(version.is_file());
    for (target, moved_in, moved_out) in [
        (2, vec![], vec!["_delta_log/00000000000000000001.json"]),
        (1, vec!["_delta_log/00000000000000000001.json"], vec![]),
        (2, vec!["_manifest.json"], vec!["_manifest.json"]),
    ] {
        let journal = serde_json::json!({
            "target_version": target, "op_id": "planted", "moved_in": moved_in, "moved_out": moved_out,
        });
        std::fs::create_dir_all(base.join("_pqdm/journal")).unwrap();
        let planted = base.join("_pqdm/journal/00000000000000000009.json");
        std::fs::write(&planted, journal.to_string()).unwrap();
        let before = snapshot(&base);
        let err = ds
            .write(
                candles(1_704_412_800_000, 5, 2.0).lazy(),
                &kline_opts("BTCUSDT"),
            )
            .unwrap_err()
            .to_string();
        assert!(err.contains("00000000000000000009.json"), "{err}");
        assert_eq!(snapshot(&base), before, "{journal}");
        std::fs::remove_file(&planted).unwrap();
        let again = Dataset::open(&base).unwrap();
        assert_eq!(again.header().version, 1);
        assert_eq!(again.manifest().unwrap().total_rows, 5);
    }
}

/// The first commit of a new dataset (its empty version 0) dying or failing at each of its
/// steps leaves no dataset (or, past its commit point, the version), and the next write makes
/// the dataset as if nothing happened: the `_delta_log/` folder a dead first commit began is
/// pqdm's, not another engine's table (writes were refused as into one forever; found by the
/// SIGKILL test).
#[test]
fn every_step_of_a_first_commit_failing_or_dying_leaves_a_dataset_the_next_write_makes() {
    let steps = [
        "commit.journaled",
        "commit.moved_first",
        "commit.moved",
        "commit.version_written",
        "commit.tidy",
    ];
    for step in steps {
        for action in ["error", "kill"] {
            let ctx = format!("{step}={action}");
            let dir = tmp();
            let base = dir.path().join("ds");
            let b = base.to_str().unwrap();
            let first = klines_csv(dir.path(), "BTCUSDT", 60, 10.0);
            let failed = ingest(
                &base,
                &first,
                &["--max-rows-per-file", "20"],
                &[("PQDM_FAILPOINTS", &ctx)],
            );
            // What the first write left: `None`, no dataset; else the rows of its version. A
            // write into a new base commits the empty version 0, then its rows as version 1: a
            // kill past version 0's commit point (or in version 1, the first to move files)
            // leaves version 0; a failure leaves no dataset, past a commit point every version.
            let left = match (step, action) {
                ("commit.tidy", "error") => Some((60, 600.0)),
                ("commit.tidy" | "commit.moved_first", "kill") => Some((0, 0.0)),
                _ => None,
            };
            assert_eq!(
                failed.status.success(),
                action == "error" && left.is_some(),
                "{ctx}: {}",
                stderr(&failed)
            );
            if action == "kill" {
                assert_eq!(
                    std::os::unix::process::ExitStatusExt::signal(&failed.status),
                    Some(9),
                    "{ctx}: the failpoint was not reached"
                );
            }
            // Readers see the version or no dataset, never an error about a Delta table.
            let info = run(&["info", b, "--json"]);
            match left {
                Some((rows, sum)) => {
                    assert_eq!(json_ok(&info)["total_rows"], rows, "{ctx}");
                    assert_eq!(content(&base), (rows as usize, sum), "{ctx}");
                }
                None => {
                    assert!(!info.status.success(), "{ctx}");
                    let said = stderr(&info);
                    assert!(
                        !said.contains("Delta") && !said.contains("log entry"),
                        "{ctx}: {said}"
                    );
                    assert!(parquet_files(&base).is_empty(), "{ctx}");
                }
            }
            let (rows, sum) = left.unwrap_or((0, 0.0));
            json_ok(&ingest(
                &base,
                &klines_csv(dir.path(), "ETHUSDT", 30, 3.0),
                &[],
                &[],
            ));
            let expect = (rows as usize + 30, sum + 90.0);
            assert_eq!(content(&base), expect, "{ctx}: the next write");
            assert_eq!(glob_content(&base), expect, "{ctx}: plain readers");
            let verify = run(&["verify", b, "--json"]);
            assert!(verify.status.success(), "{ctx}: {}", stderr(&verify));
            let temporaries: Vec<String> = std::fs::read_dir(base.join("_delta_log"))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".tmp"))
                .collect();
            assert_eq!(temporaries, Vec::<String>::new(), "{ctx}: in the log");
        }
    }
}

/// Only a log folder a dead first commit of pqdm left (beside `_pqdm/`, nothing but pqdm's
/// temporaries) is taken for pqdm's: an empty `_delta_log/` without `_pqdm/` (another engine
/// creating its table), a file named `_delta_log`, or a log holding an entry, even beside a
/// `_pqdm/` folder, is another engine's table, and a write into it is refused with nothing
/// changed.
#[test]
fn a_delta_log_pqdm_did_not_leave_is_never_written_into() {
    let dir = tmp();
    let csv = klines_csv(dir.path(), "BTCUSDT", 10, 1.0);
    let entry = "00000000000000000000.json";
    let entry_text = r#"{"protocol":{"minReaderVersion":1,"minWriterVersion":2}}
{"metaData":{"id":"x","format":{"provider":"parquet","options":{}},"schemaString":"{\"type\":\"struct\",\"fields\":[]}","partitionColumns":[],"configuration":{}}}
"#;
    type Make<'a> = &'a dyn Fn(&Path);
    let cases: [(&str, Make); 4] = [
        ("an empty log folder", &|b| {
            std::fs::create_dir_all(b.join("_delta_log")).unwrap()
        }),
        ("a file named _delta_log", &|b| {
            std::fs::write(b.join("_delta_log"), "x").unwrap()
        }),
        ("an entry beside _pqdm/", &|b| {
            std::fs::create_dir_all(b.join("_delta_log")).unwrap();
            std::fs::create_dir_all(b.join("_pqdm")).unwrap();
            std::fs::write(b.join("_delta_log").join(entry), entry_text).unwrap();
        }),
        ("an entry and a temporary beside _pqdm/", &|b| {
            std::fs::create_dir_all(b.join("_delta_log")).unwrap();
            std::fs::create_dir_all(b.join("_pqdm")).unwrap();
            std::fs::write(b.join("_delta_log").join(entry), entry_text).unwrap();
            std::fs::write(b.join("_delta_log/_00000000000000000001.json.1.x.tmp"), "").unwrap();
        }),
    ];
    for (name, make) in cases {
        let base = dir.path().join(name.replace(' ', "-"));
        std::fs::create_dir_all(&base).unwrap();
        make(&base);
        let before = snapshot(&base);
        let out = ingest(&base, &csv, &[], &[]);
        assert!(!out.status.success(), "{name}: the write went in");
        // Named as another engine's table, or (beside `_pqdm/`) as a log entry pqdm did not write.
        let said = stderr(&out);
        assert!(
            said.contains("another engine wrote") || said.contains("carries no pqdm record"),
            "{name}: {said}"
        );
        assert_eq!(snapshot(&base), before, "{name}: the folder changed");
    }
}
