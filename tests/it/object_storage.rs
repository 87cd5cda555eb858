//! Issue 7: datasets and sources on S3-compatible object storage (a local moto server).
//! The same lifecycle runs on a local folder and on `s3://`, and must answer the same.

use std::path::Path;
use std::process::Output;

use polars::prelude::*;
use serde_json::{Value, json};

use crate::common::*;

/// Runs `pqdm` with the local S3 server's settings in its environment.
fn cli(args: &[&str]) -> Output {
    s3_env(&mut bin())
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run pqdm")
}

fn cli_json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    json_ok(&cli(&all))
}

/// Rows and the sum of `close` of a CSV that `pqdm scan --format csv` printed.
fn csv_rows_and_close(out: &Output) -> (usize, f64) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    rows_and_close(&String::from_utf8_lossy(&out.stdout))
}

/// Rows and the sum of `close` of a CSV text with a header.
fn rows_and_close(text: &str) -> (usize, f64) {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let close = header.iter().position(|c| *c == "close").unwrap();
    let mut rows = 0;
    let mut sum = 0.0;
    for line in lines {
        rows += 1;
        sum += line.split(',').nth(close).unwrap().parse::<f64>().unwrap();
    }
    (rows, (sum * 100.0).round() / 100.0)
}

/// Ingest, a pruned scan, an upsert, compaction, latest, verify, history, time travel, vacuum,
/// materialize, the cache and migrate, on the dataset `base` (a folder or `s3://` prefix) with
/// the sample klines from `sources`, and `corrected` (a corrected copy of one of them) as the
/// upsert. Returns what each step answered, without paths or times.
fn lifecycle(base: &str, sources: &str, corrected: &str, scratch: &Path) -> Value {
    let ingest = cli_json(&[
        "ingest",
        "--dataset",
        base,
        "--max-rows-per-file",
        "500",
        sources,
    ]);
    let pruned = csv_rows_and_close(&cli(&[
        "scan",
        base,
        "--filter",
        "symbol = 'ETHUSDT'",
        "--filter",
        "year = 2025",
        "--format",
        "csv",
    ]));
    let upsert = cli_json(&[
        "ingest",
        "--dataset",
        base,
        "--mode",
        "upsert",
        "--max-rows-per-file",
        "500",
        corrected,
    ]);
    let compact = cli_json(&["compact", base, "--target-rows", "2000"]);
    let latest = cli_json(&["latest", base]);
    let verify = cli(&["verify", base, "--json"]);
    let verify: Value = serde_json::from_slice(&verify.stdout).unwrap();
    let history = cli_json(&["history", base]);
    let v1 = csv_rows_and_close(&cli(&["scan", base, "--version", "1", "--format", "csv"]));
    let vacuum = cli_json(&["vacuum", base, "--retain-versions", "1"]);
    let after_vacuum = cli_json(&["history", base]);
    let all = csv_rows_and_close(&cli(&["scan", base, "--format", "csv"]));

    let copy = format!("{base}-btc");
    let materialized = cli_json(&[
        "materialize",
        base,
        "--to",
        &copy,
        "--filter",
        "symbol = 'BTCUSDT'",
    ]);
    let copy_rows = csv_rows_and_close(&cli(&["scan", &copy, "--format", "csv"]));

    let cache = scratch.join("cache");
    let cache = cache.to_str().unwrap();
    // The same scan twice: a miss, then a hit (as each run reports it) with the same rows.
    let cached = [0, 1].map(|i| {
        let out = scratch.join(format!("cached{i}.csv"));
        let report = cli_json(&[
            "scan",
            base,
            "--columns",
            "close",
            "--cache",
            cache,
            "--format",
            "csv",
            "--output",
            out.to_str().unwrap(),
        ]);
        let rows = rows_and_close(&std::fs::read_to_string(&out).unwrap());
        (report["cache"].clone(), rows)
    });
    let cache_entries = cli_json(&["cache", "ls", "--cache", cache]);

    let flat = scratch.join("flat.parquet");
    let out = cli(&[
        "scan",
        base,
        "--format",
        "parquet",
        "--output",
        flat.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let migrated_base = format!("{base}-migrated");
    let migrated = cli_json(&[
        "migrate",
        "--dataset",
        &migrated_base,
        "--kind",
        "klines",
        flat.to_str().unwrap(),
    ]);

    json!({
        "ingest": [ingest["version"], ingest["rows_written"], ingest["files"].as_array().unwrap().len()],
        "pruned_scan": [pruned.0, pruned.1],
        "upsert": [upsert["version"], upsert["rows_written"], upsert["rows_replaced"], upsert["files_replaced"]],
        "compact": [compact["version"], compact["files_before"], compact["files_after"], compact["rows"]],
        "latest": latest["by_key"],
        "verify": [verify["files_checked"], verify["duplicate_keys"], verify["missing"], verify["orphans"],
                   verify["checksum_mismatches"], verify["stale_stats"], verify["gaps"].as_array().unwrap().len()],
        "history": history["versions"].as_array().unwrap().iter()
            .map(|v| json!([v["version"], v["operation"]["name"], v["rows"], v["files"]])).collect::<Vec<_>>(),
        "version_1": [v1.0, v1.1],
        "vacuum": [vacuum["versions_removed"].clone(), after_vacuum["versions"].as_array().unwrap().len()],
        "all": [all.0, all.1],
        "materialized": [materialized["rows_written"], copy_rows.0, copy_rows.1],
        "cached": [cached[0].0, cached[1].0, cached[0].1.0, cached[0].1 == cached[1].1, cache_entries["entries"].as_array().unwrap().len()],
        "migrated": [migrated["rows_written"], migrated["version"]],
    })
}

#[test]
fn the_same_lifecycle_gives_the_same_answers_on_a_folder_and_on_s3() {
    let dir = tmp();
    let samples = data_dir().join("spot/klines");
    let local_base = dir.path().join("local");
    let corrected = corrected_copy(
        &samples.join("ETHUSDT-1m-2025-01-01.csv"),
        &dir.path().join("corrected"),
    );
    let local = lifecycle(
        local_base.to_str().unwrap(),
        samples.to_str().unwrap(),
        corrected.to_str().unwrap(),
        &dir.path().join("scratch-local"),
    );

    // On S3 the sources are read from the bucket too.
    let bucket = s3_bucket();
    let raw = pqdm::storage::Remote::open(Path::new(&format!("s3://{bucket}/raw"))).unwrap();
    for entry in std::fs::read_dir(&samples).unwrap() {
        let p = entry.unwrap().path();
        raw.upload(&p, p.file_name().unwrap().to_str().unwrap())
            .unwrap();
    }
    let fixed =
        pqdm::storage::Remote::open(Path::new(&format!("s3://{bucket}/corrected"))).unwrap();
    fixed
        .upload(&corrected, "ETHUSDT-1m-2025-01-01.csv")
        .unwrap();
    let s3_base = format!("s3://{bucket}/klines");
    let remote = lifecycle(
        &s3_base,
        &format!("s3://{bucket}/raw"),
        &format!("s3://{bucket}/corrected/ETHUSDT-1m-2025-01-01.csv"),
        &dir.path().join("scratch-s3"),
    );
    assert_eq!(local, remote);

    // And the answers themselves.
    assert_eq!(local["ingest"], json!([1, 5760, 12]));
    assert_eq!(local["pruned_scan"][0], 1440);
    assert_eq!(local["upsert"], json!([2, 1440, 1440, 3]));
    assert_eq!(local["compact"], json!([3, 12, 4, 5760]));
    assert_eq!(local["latest"].as_array().unwrap().len(), 2);
    assert_eq!(
        local["latest"][0]["latest_timestamp"],
        json!(1_735_775_940_000i64)
    );
    // Two gaps: the samples hold two days a year apart.
    assert_eq!(local["verify"], json!([4, 0, [], [], [], [], 2]));
    assert_eq!(local["version_1"][0], 5760);
    // The upsert raised 1,440 closes by 1 each.
    assert_eq!(local["all"][0], 5760);
    let raised = local["all"][1].as_f64().unwrap() - local["version_1"][1].as_f64().unwrap();
    assert!((raised - 1440.0).abs() < 0.01, "{raised}");
    assert_eq!(local["vacuum"], json!([[0, 1, 2], 1]));
    assert_eq!(local["materialized"][0], 2880);
    assert_eq!(local["materialized"][1], 2880);
    assert_eq!(local["cached"], json!(["miss", "hit", 5760, true, 1]));
    assert_eq!(local["migrated"], json!([5760, 1]));

    // What pqdm left on S3 is a plain hive dataset for pyarrow, partition columns included.
    let read = py(
        r#"
import sys, pyarrow.compute as pc, pyarrow.dataset as ds, pyarrow.fs as fs
s3 = fs.S3FileSystem(endpoint_override=sys.argv[1], scheme="http", access_key="testing",
                     secret_key="testing", region="us-east-1")
t = ds.dataset(sys.argv[2], filesystem=s3, format="parquet", partitioning="hive").to_table()
eth = t.filter(pc.equal(t["symbol"], "ETHUSDT"))
print(t.num_rows, sorted(set(t["symbol"].to_pylist())), sorted(set(t["year"].to_pylist())),
      round(sum(t["close"].to_pylist()), 2), eth.num_rows)
"#,
        &[s3_endpoint(), &format!("{bucket}/klines")],
    );
    assert_eq!(
        read.trim(),
        format!(
            "5760 ['BTCUSDT', 'ETHUSDT'] [2024, 2025] {} 2880",
            local["all"][1]
        )
    );
}

/// A klines frame of `days` days, two candles a day, for `symbol`.
fn daily_candles(days: i64) -> DataFrame {
    let day0 = 1_704_067_200_000i64;
    let ts: Vec<i64> = (0..days)
        .flat_map(|d| [day0 + d * 86_400_000, day0 + d * 86_400_000 + 60_000])
        .collect();
    let n = ts.len();
    df!(
        "open_time" => ts,
        "open" => vec![1.0f64; n], "high" => vec![2.0f64; n], "low" => vec![0.5f64; n],
        "close" => vec![1.5f64; n], "volume" => vec![3.0f64; n],
    )
    .unwrap()
}

#[test]
fn a_scan_of_a_thousand_file_dataset_on_s3_lists_nothing() {
    let bucket = s3_bucket();
    let base = format!("s3://{bucket}/wide");
    let ds = klines_dataset_at(&base);
    let report = ds
        .write(daily_candles(1000).lazy(), &kline_opts("BTCUSDT"))
        .unwrap();
    assert_eq!(report.files.len(), 1000);
    // This bucket's requests: objects (`/bucket/key`) and listings (`/bucket?list-type=2...`).
    let mine =
        |r: &String| r.contains(&format!(" /{bucket}/")) || r.contains(&format!(" /{bucket}?"));
    let before = s3_requests().into_iter().filter(mine).count();

    let all = csv_rows_and_close(&cli(&["scan", &base, "--format", "csv"]));
    assert_eq!(all, (2000, 3000.0));
    let before_pruned = s3_requests().into_iter().filter(mine).count();
    let pruned = csv_rows_and_close(&cli(&[
        "scan",
        &base,
        "--filter",
        "timestamp >= 2026-09-01",
        "--format",
        "csv",
    ]));
    // 2024-01-01 + 999 days = 2026-09-26: 26 days from 2026-09-01 on, and only their files read.
    assert_eq!(pruned.0, 52);
    let read: std::collections::BTreeSet<String> = s3_requests()
        .into_iter()
        .filter(mine)
        .skip(before_pruned)
        .filter(|r| r.starts_with("GET ") && r.ends_with(".parquet.kept"))
        .collect();
    assert_eq!(read.len(), 26, "{read:?}");
    assert!(read.iter().all(|r| r.contains("/year=2026/month=9/")));
    let info = cli_json(&["info", &base]);
    assert_eq!(info["file_count"], 1000);
    let latest = cli_json(&["latest", &base]);
    assert_eq!(
        latest["latest_timestamp"],
        1_704_067_200_000i64 + 999 * 86_400_000 + 60_000
    );

    let requests: Vec<String> = s3_requests()
        .into_iter()
        .filter(mine)
        .skip(before)
        .collect();
    let lists: Vec<&String> = requests
        .iter()
        .filter(|r| r.contains("list-type") || r.contains("prefix=") || r.contains("delimiter="))
        .collect();
    assert!(lists.is_empty(), "LIST requests: {lists:?}");
    // The full scan read every file, and asked none its size: the manifest knows them all.
    let files_read: std::collections::BTreeSet<&String> = requests
        .iter()
        .filter(|r| r.starts_with("GET ") && r.ends_with(".parquet.kept"))
        .collect();
    assert_eq!(files_read.len(), 1000);
    let sized: Vec<&String> = requests
        .iter()
        .filter(|r| r.starts_with("HEAD ") && r.contains(".parquet"))
        .collect();
    assert!(
        sized.is_empty(),
        "{} HEADs: {:?}",
        sized.len(),
        &sized[..sized.len().min(3)]
    );
}

/// Options that reach the local S3 server (`endpoint` given), or a port where nothing listens.
fn options_for(endpoint: &str) -> pqdm::storage::StorageOptions {
    pqdm::storage::StorageOptions::new([
        ("endpoint", endpoint),
        ("region", "us-east-1"),
        ("access_key_id", "testing"),
        ("secret_access_key", "testing"),
        ("allow_http", "true"),
    ])
    .unwrap()
}

/// Storage options belong to a location, not to the process: two datasets opened with
/// different options in one program each use their own (the process defaults reach the
/// server, so a dataset whose own options point elsewhere fails, naming itself, while the
/// other writes, upserts and scans). And the library, which drives object storage with tokio,
/// does not panic when called from inside a caller's tokio runtime.
#[test]
fn each_location_keeps_its_own_storage_options_and_works_inside_a_tokio_runtime() {
    use pqdm::location::Location;
    let good = options_for(s3_endpoint());
    let unreachable = options_for("http://127.0.0.1:9");
    let (bucket_a, bucket_b) = (s3_bucket(), s3_bucket());
    let a = Location::parse_with(format!("s3://{bucket_a}/klines"), &good).unwrap();
    let b = Location::parse_with(format!("s3://{bucket_b}/klines"), &unreachable).unwrap();
    let kinds = pqdm::schema::KindRegistry::default();
    let klines = kinds.get("klines").unwrap();
    let created_a = pqdm::Dataset::create_at(&a, klines, &pqdm::CreateOptions::default()).unwrap();
    let err = pqdm::Dataset::create_at(&b, klines, &pqdm::CreateOptions::default())
        .err()
        .expect("a dataset whose options reach no server cannot be created")
        .to_string();
    assert!(err.contains(&format!("s3://{bucket_b}/klines")), "{err}");
    drop(created_a);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let rows = runtime.block_on(async {
        let ds = pqdm::Dataset::open_at(&a).unwrap();
        ds.write(daily_candles(3).lazy(), &kline_opts("BTCUSDT"))
            .unwrap();
        // An upsert reads the stored files of the partitions it touches (with `a`'s options).
        let mut again = daily_candles(4);
        again
            .with_column(Column::new("close".into(), vec![9.0f64; 8]))
            .unwrap();
        let report = ds.write(again.lazy(), &kline_opts("BTCUSDT")).unwrap();
        assert_eq!(report.rows_written, 8);
        ds.read(&pqdm::ScanOptions::default().columns(&["timestamp", "close"]))
            .unwrap()
    });
    assert_eq!(rows.height(), 8);
    assert_eq!(
        rows.column("close").unwrap().f64().unwrap().sum(),
        Some(72.0)
    );
    // The location B names was never written: its bucket holds nothing.
    let raw = pqdm::storage::Remote::open(Path::new(&format!("s3://{bucket_b}"))).unwrap();
    assert!(raw.list("").unwrap().is_empty());
}

/// A new klines dataset at `base` (a folder or `s3://` prefix).
fn klines_dataset_at(base: &str) -> pqdm::Dataset {
    s3_endpoint();
    klines_dataset(Path::new(base))
}

#[test]
fn two_writer_processes_on_one_s3_dataset_both_land() {
    let bucket = s3_bucket();
    let base = format!("s3://{bucket}/klines");
    let dir = tmp();
    // Two processes upsert the same day of BTCUSDT with different closes, two more write
    // ETHUSDT days; the dataset is created by whichever comes first.
    let btc = |close: f64| {
        let folder = dir.path().join(format!("btc-{close}"));
        std::fs::create_dir_all(&folder).unwrap();
        let csv = klines_csv(&folder, "BTCUSDT", 1440, close);
        csv.to_str().unwrap().to_string()
    };
    let samples = data_dir().join("spot/klines");
    let inputs = [
        btc(111.0),
        btc(222.0),
        samples
            .join("ETHUSDT-1m-2024-01-05.zip")
            .to_str()
            .unwrap()
            .to_string(),
        samples
            .join("ETHUSDT-1m-2025-01-01.csv")
            .to_str()
            .unwrap()
            .to_string(),
    ];
    // A race that cannot pass by luck: the first writer to put version 1 is held there until
    // the three others have committed, so it loses version 1 and must go on top of them.
    let first_version = format!("/{bucket}/klines/_delta_log/{:020}.json", 1);
    s3_hold(&first_version);
    let mut children: Vec<_> = inputs
        .iter()
        .map(|input| {
            s3_env(&mut bin())
                .args(["ingest", "--json", "--dataset", &base, input])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    s3_wait_held(&first_version);
    let until = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let held = loop {
        let running: Vec<usize> = (0..children.len())
            .filter(|&i| children[i].try_wait().unwrap().is_none())
            .collect();
        if let [one] = running[..] {
            break one;
        }
        assert!(
            std::time::Instant::now() < until,
            "writers still running: {running:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    s3_release(&first_version);
    let mut versions = vec![];
    let mut retries = 0;
    for (i, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        let report = json_ok(&out);
        let log = stderr(&out);
        retries += log.matches("trying again").count();
        if i == held {
            assert!(
                log.contains("version 1 was committed by another writer first")
                    && log.contains("trying again"),
                "{log}"
            );
            assert_eq!(report["version"], 4, "{report}");
        }
        versions.push((
            report["version"].as_u64().unwrap(),
            report["op_id"].as_str().unwrap().to_string(),
            i,
        ));
    }
    println!("four S3 writers: {retries} lost race(s) retried, 1 of them staged");
    versions.sort();
    // Every commit landed, each as its own version, none lost.
    assert_eq!(
        versions.iter().map(|v| v.0).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    // The later of the two BTCUSDT upserts holds the day: every close is its close.
    let later_btc = versions.iter().rfind(|v| v.2 < 2).unwrap().2;
    let close = [111.0, 222.0][later_btc];
    let btc_rows = cli(&[
        "scan",
        &base,
        "--filter",
        "symbol == BTCUSDT",
        "--columns",
        "close",
        "--format",
        "csv",
    ]);
    assert_eq!(csv_rows_and_close(&btc_rows), (1440, 1440.0 * close));
    let versions: Vec<(u64, String)> = versions.into_iter().map(|(v, op, _)| (v, op)).collect();
    let history = cli_json(&["history", &base]);
    let ops: Vec<(u64, String)> = history["versions"]
        .as_array()
        .unwrap()
        .iter()
        .skip(1)
        .map(|v| {
            (
                v["version"].as_u64().unwrap(),
                v["operation"]["op_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(ops, versions);
    let info = cli_json(&["info", &base]);
    assert_eq!(info["version"], 4);
    assert_eq!(info["total_rows"], 4 * 1440 - 1440);
    let verify = cli(&["verify", &base, "--json"]);
    let verify: Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert_eq!(verify["duplicate_keys"], 0);
    assert_eq!(verify["orphans"], json!([]));
    assert_eq!(verify["missing"], json!([]));
}

#[test]
fn s3_settings_missing_or_unsupported_give_clear_errors_and_change_nothing() {
    let bucket = s3_bucket();
    let base = format!("s3://{bucket}/klines");
    let sample = data_dir().join("spot/klines/ETHUSDT-1m-2025-01-01.csv");
    let sample = sample.to_str().unwrap();

    let no_region = s3_env(&mut bin())
        .env_remove("AWS_REGION")
        .env("HOME", "/nonexistent")
        .args(["info", &base])
        .output()
        .unwrap();
    assert!(!no_region.status.success());
    let err = String::from_utf8_lossy(&no_region.stderr);
    assert!(
        err.contains(&format!("s3://{bucket}/klines: no region")),
        "{err}"
    );

    let no_keys = s3_env(&mut bin())
        .env_remove("AWS_ACCESS_KEY_ID")
        .env("HOME", "/nonexistent")
        .args(["ingest", "--dataset", &base, sample])
        .output()
        .unwrap();
    assert!(!no_keys.status.success());
    assert!(String::from_utf8_lossy(&no_keys.stderr).contains("no credentials"));

    let unknown = cli(&["info", &base, "--storage-option", "colour=blue"]);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown storage option `colour`"));

    // A store without conditional puts: refused, nothing written...
    let refused = cli(&[
        "ingest",
        "--dataset",
        &base,
        sample,
        "--storage-option",
        "conditional_put=disabled",
    ]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("does not do conditional puts"), "{err}");
    assert!(err.contains("single_writer=true"), "{err}");
    let bucket_root = pqdm::storage::Remote::open(Path::new(&format!("s3://{bucket}"))).unwrap();
    assert_eq!(bucket_root.list("").unwrap(), vec![]);

    // A store that silently ignores If-None-Match is found out by a probe, and refused alike.
    let nocond = s3_bucket_named("nocond");
    let ignored = cli(&[
        "ingest",
        "--dataset",
        &format!("s3://{nocond}/klines"),
        sample,
    ]);
    assert!(!ignored.status.success());
    let err = String::from_utf8_lossy(&ignored.stderr);
    assert!(err.contains("the store ignores If-None-Match"), "{err}");
    let nocond_root = pqdm::storage::Remote::open(Path::new(&format!("s3://{nocond}"))).unwrap();
    assert_eq!(nocond_root.list("").unwrap(), vec![]);

    // ... unless the user says there is one writer.
    let single = cli_json(&[
        "ingest",
        "--dataset",
        &base,
        sample,
        "--storage-option",
        "conditional_put=disabled",
        "--storage-option",
        "single_writer=true",
    ]);
    assert_eq!(single["rows_written"], 1440);
    assert_eq!(cli_json(&["info", &base])["total_rows"], 1440);

    // Settings from ~/.aws alone (a named profile), and --storage-option over a wrong variable.
    let home = tmp();
    std::fs::create_dir_all(home.path().join(".aws")).unwrap();
    std::fs::write(
        home.path().join(".aws/credentials"),
        "[default]\naws_access_key_id = wrong\n[desk]\naws_access_key_id = testing\naws_secret_access_key = testing\n",
    )
    .unwrap();
    std::fs::write(
        home.path().join(".aws/config"),
        format!(
            "[profile desk]\nregion = us-east-1\nendpoint_url = {}\n",
            s3_endpoint()
        ),
    )
    .unwrap();
    let from_files = bin()
        .env_clear()
        .env("HOME", home.path())
        .env("AWS_PROFILE", "desk")
        .env("AWS_ALLOW_HTTP", "true")
        .args(["info", &base, "--json"])
        .output()
        .unwrap();
    assert_eq!(json_ok(&from_files)["total_rows"], 1440);
    let overridden = s3_env(&mut bin())
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .args(["latest", &base, "--json", "--storage-option"])
        .arg(format!("endpoint={}", s3_endpoint()))
        .output()
        .unwrap();
    assert_eq!(
        json_ok(&overridden)["latest_timestamp"],
        1_735_775_940_000i64
    );
}

#[test]
fn a_version_committed_elsewhere_is_found_past_a_stale_manifest_on_s3() {
    let bucket = s3_bucket();
    let base = format!("s3://{bucket}/klines");
    let ds = klines_dataset_at(&base);
    ds.write(
        candles(1_704_067_200_000, 10, 100.0).lazy(),
        &kline_opts("BTCUSDT"),
    )
    .unwrap();
    // Another machine commits version 2 (a log entry changing no file: version 1's record
    // under a new number and op id) and dies before rewriting `_manifest.json`.
    let remote = pqdm::storage::Remote::open(Path::new(&base)).unwrap();
    let entry1 = remote
        .get("_delta_log/00000000000000000001.json")
        .unwrap()
        .unwrap();
    let first = entry1.split(|b| *b == b'\n').next().unwrap();
    let mut info: Value = serde_json::from_slice(first).unwrap();
    let pqdm_info = &mut info["commitInfo"]["pqdm"];
    pqdm_info["version"] = json!(2);
    pqdm_info["opId"] = json!("rival");
    pqdm_info.as_object_mut().unwrap().remove("manifestHash");
    pqdm_info["manifest"]["version"] = json!(2);
    pqdm_info["manifest"]["operation"]["op_id"] = json!("rival");
    assert!(
        remote
            .put_new(
                "_delta_log/00000000000000000002.json",
                format!("{info}\n").into_bytes()
            )
            .unwrap()
    );
    assert!(
        !remote
            .put_new("_delta_log/00000000000000000002.json", b"{}".to_vec())
            .unwrap()
    );
    let report = ds
        .write(
            candles(1_704_067_200_000 + 600_000, 10, 200.0).lazy(),
            &kline_opts("BTCUSDT"),
        )
        .unwrap();
    assert_eq!(report.version, 3);
    let again = pqdm::Dataset::open(&base).unwrap();
    assert_eq!(again.header().version, 3);
    assert_eq!(read_sorted(&again).height(), 20);
    let history = cli_json(&["history", &base]);
    assert_eq!(history["versions"][2]["operation"]["op_id"], "rival");
}

#[test]
fn a_hive_dataset_that_pyarrow_wrote_to_s3_is_read_without_a_manifest() {
    let bucket = s3_bucket();
    // pyarrow writes the hive tree; boto3 puts it in the bucket (pyarrow's own multipart
    // uploads are not completed by moto).
    py(
        r#"
import os, sys, tempfile, boto3, pyarrow as pa, pyarrow.dataset as ds
t = pa.table({"symbol": ["A", "A", "B", "B", "B"], "year": [2024, 2025, 2024, 2024, 2025],
              "timestamp": [1, 2, 3, 4, 5], "close": [1.0, 2.0, 3.0, 4.0, 5.0]})
out = tempfile.mkdtemp()
ds.write_dataset(t, out, format="parquet", partitioning=["symbol", "year"],
                 partitioning_flavor="hive")
s3 = boto3.client("s3", endpoint_url=sys.argv[1], aws_access_key_id="testing",
                  aws_secret_access_key="testing", region_name="us-east-1")
for root, _, files in os.walk(out):
    for f in files:
        path = os.path.join(root, f)
        s3.upload_file(path, sys.argv[2], "agg/" + os.path.relpath(path, out))
"#,
        &[s3_endpoint(), &bucket],
    );
    let base = format!("s3://{bucket}/agg");
    let info = cli_json(&["info", &base]);
    assert_eq!(info["has_manifest"], false);
    assert_eq!(info["file_count"], 4);
    assert_eq!(info["total_rows"], 5);
    let expected = "timestamp,close,symbol,year\n3,3.0,B,2024\n4,4.0,B,2024\n5,5.0,B,2025\n";
    let out = cli(&["scan", &base, "--filter", "symbol = 'B'", "--format", "csv"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);

    // Cached by its listing: an object written again (here the same bytes) is a miss, and gc
    // removes the entry it left stale.
    let dir = tmp();
    let cache = dir.path().join("cache");
    let cached = |name: &str| {
        let out = dir.path().join(name);
        let report = cli_json(&[
            "scan",
            &base,
            "--filter",
            "symbol = 'B'",
            "--format",
            "csv",
            "--cache",
            cache.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
        ]);
        assert_eq!(std::fs::read_to_string(&out).unwrap(), expected);
        report["cache"].clone()
    };
    assert_eq!(cached("1.csv"), "miss");
    assert_eq!(cached("2.csv"), "hit");
    let remote = pqdm::storage::Remote::open(Path::new(&base)).unwrap();
    let (rel, _) = remote.list("symbol=B").unwrap().remove(0);
    // S3's Last-Modified has one-second resolution, and the same bytes have the same ETag: put
    // again within the second the object was written, it is the same object to any reader
    // (and answers the same). A second later it is a new write, which must miss.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    remote
        .put(&rel, remote.get(&rel).unwrap().unwrap())
        .unwrap();
    assert_eq!(cached("3.csv"), "miss");
    assert_eq!(cached("4.csv"), "hit");
    let gc = cli_json(&["cache", "gc", "--cache", cache.to_str().unwrap()]);
    assert_eq!(gc["removed"].as_array().unwrap().len(), 1, "{gc}");
    assert_eq!(cached("5.csv"), "hit");

    // Adopted in place: a manifest (with every file's checksum), the same answers.
    let adopted = cli(&["adopt", &base]);
    assert!(
        adopted.status.success(),
        "{}",
        String::from_utf8_lossy(&adopted.stderr)
    );
    let info = cli_json(&["info", &base]);
    assert_eq!(info["has_manifest"], true);
    assert_eq!(info["version"], 1);
    assert_eq!(info["total_rows"], 5);
    let out = cli(&["scan", &base, "--filter", "symbol = 'B'", "--format", "csv"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
    let verify = cli_json(&["verify", &base]);
    assert_eq!(verify["checksum_mismatches"], json!([]));
}

#[test]
fn large_files_go_up_in_parts_and_come_back_whole() {
    let bucket = s3_bucket();
    s3_endpoint();
    let dir = tmp();
    let big = dir.path().join("big.bin");
    // 70 MiB that do not repeat: three parts of 32 MiB, the last one short.
    let bytes: Vec<u8> = (0..70u64 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&big, &bytes).unwrap();
    let remote = pqdm::storage::Remote::open(Path::new(&format!("s3://{bucket}/blobs"))).unwrap();
    remote.upload(&big, "big.bin").unwrap();
    let parts = s3_requests()
        .iter()
        .filter(|r| r.starts_with("PUT ") && r.contains(&format!("/{bucket}/blobs/big.bin?")))
        .filter(|r| r.contains("partNumber="))
        .count();
    assert_eq!(parts, 3);
    assert_eq!(remote.head("big.bin").unwrap(), Some(70 << 20));
    let back = dir.path().join("back.bin");
    remote.download("big.bin", &back).unwrap();
    assert_eq!(
        blake3::hash(&std::fs::read(&back).unwrap()),
        blake3::hash(&bytes)
    );
}

#[test]
fn writers_killed_mid_commit_on_s3_leave_whole_versions_and_are_cleaned_up() {
    let bucket = s3_bucket();
    let base = format!("s3://{bucket}/klines");
    let samples = data_dir().join("spot/klines");
    let eth = samples.join("ETHUSDT-1m-2024-01-05.zip");
    let btc = samples.join("BTCUSDT-1m-2024-01-05.zip");
    let first = cli_json(&["ingest", "--dataset", &base, eth.to_str().unwrap()]);
    assert_eq!(first["rows_written"], 1440);
    let rows = || cli_json(&["info", &base])["total_rows"].as_u64().unwrap();
    let mut killed = 0;
    for delay_ms in (10..=250).step_by(15) {
        let mut child = s3_env(&mut bin())
            .args(["ingest", "-q", "--dataset", &base, btc.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            killed += 1;
        }
        child.wait().unwrap();
        // Whatever the moment, pqdm reads a whole version: without the BTC day, or with it.
        let (scanned, _) = csv_rows_and_close(&cli(&["scan", &base, "--format", "csv"]));
        assert_eq!(scanned as u64, rows());
        assert!(scanned == 1440 || scanned == 2880, "{scanned} rows");
    }
    assert!(killed > 0, "no writer was killed mid-write");

    // And one dead writer planted at the worst moment: its file copied into the tree, its
    // version never made. Plain readers see its rows until the next writer undoes it.
    let plain_rows = || pyarrow_rows(&format!("{bucket}/klines"));
    let remote = pqdm::storage::Remote::open(Path::new(&base)).unwrap();
    let info = cli_json(&["info", &base]);
    let dead_rel = "exchange=BINANCE/symbol=XRPUSDT/timeframe=1m/year=2024/month=1/day=5/part-dead-00000.parquet";
    let eth_rel = pqdm::Dataset::open(&base)
        .unwrap()
        .manifest()
        .unwrap()
        .files[0]
        .path
        .clone();
    remote.copy(&eth_rel, dead_rel).unwrap();
    // A dead writer of this pqdm also made the file's kept copy.
    let dead_kept = format!("_pqdm/files/{dead_rel}.kept");
    remote.copy(&eth_rel, &dead_kept).unwrap();
    let journal = json!({
        "target_version": info["version"].as_u64().unwrap() + 1,
        "op_id": "dead",
        "moved_in": [dead_rel],
        "moved_out": [],
    });
    remote
        .put(
            "_pqdm/journal/dead-00000000000000000099.json",
            serde_json::to_vec(&journal).unwrap(),
        )
        .unwrap();
    // (The kills above may have left such files too.)
    assert!(plain_rows() >= rows() + 1440);

    // The next writer finishes or undoes what the dead ones left (journals count as dead after
    // PQDM_STALE_SECS), vacuum deletes their staged objects: then plain readers agree too.
    // `--force`: a killed writer that got past its commit point recorded the BTC day, which
    // would then be skipped without taking part in a commit; if it did, the rows are stored.
    let recovered = json_ok(
        &s3_env(&mut bin())
            .env("PQDM_STALE_SECS", "0")
            .args([
                "ingest",
                "--json",
                "--force",
                "--dataset",
                &base,
                btc.to_str().unwrap(),
            ])
            .output()
            .unwrap(),
    );
    let stored = ["rows_written", "rows_unchanged"].map(|k| recovered[k].as_u64().unwrap());
    assert!(stored == [1440, 0] || stored == [0, 1440], "{recovered}");
    let vacuum = s3_env(&mut bin())
        .env("PQDM_STALE_SECS", "0")
        .args(["vacuum", &base, "--json"])
        .output()
        .unwrap();
    json_ok(&vacuum);
    assert_eq!(remote.list("_pqdm/journal/").unwrap(), vec![]);
    assert_eq!(remote.list("_pqdm/staging/").unwrap(), vec![]);
    let verify = cli(&["verify", &base, "--json"]);
    let verify: Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert_eq!(verify["orphans"], json!([]));
    assert_eq!(verify["missing"], json!([]));
    assert_eq!(rows(), 2880);
    assert_eq!(plain_rows(), 2880);
    // No kept copy outlives its writer's death: those left are the current version's files
    // and the replaced ones recorded for vacuum, nothing else.
    assert_eq!(remote.head(&dead_kept).unwrap(), None);
    let mut expected: std::collections::BTreeSet<String> = pqdm::Dataset::open(&base)
        .unwrap()
        .manifest()
        .unwrap()
        .files
        .iter()
        .map(|f| f.path.clone())
        .collect();
    for (key, _) in remote.list("_pqdm/removed/").unwrap() {
        let record: Value = serde_json::from_slice(&remote.get(&key).unwrap().unwrap()).unwrap();
        for f in record["files"].as_array().unwrap() {
            expected.insert(f.as_str().unwrap().to_string());
        }
    }
    let kept: std::collections::BTreeSet<String> = remote
        .list("_pqdm/files/")
        .unwrap()
        .into_iter()
        .map(|(k, _)| k["_pqdm/files/".len()..k.len() - ".kept".len()].to_string())
        .collect();
    assert_eq!(kept, expected);
}

/// Rows of the hive dataset under `key` (`bucket/prefix`) on the local S3 server, as pyarrow
/// counts them: every Parquet file there, with no manifest.
fn pyarrow_rows(key: &str) -> u64 {
    py(
        r#"
import sys, pyarrow.dataset as ds, pyarrow.fs as fs
s3 = fs.S3FileSystem(endpoint_override=sys.argv[1], scheme="http", access_key="testing",
                     secret_key="testing", region="us-east-1")
print(ds.dataset(sys.argv[2], filesystem=s3, format="parquet", partitioning="hive").count_rows())
"#,
        &[s3_endpoint(), key],
    )
    .trim()
    .parse::<u64>()
    .unwrap()
}

/// A klines dataset on S3 with one day of ETHUSDT in three files; its `s3://` base.
fn eth_day_in_three_files(bucket: &str) -> String {
    let base = format!("s3://{bucket}/klines");
    let eth = data_dir().join("spot/klines/ETHUSDT-1m-2024-01-05.zip");
    let first = cli_json(&[
        "ingest",
        "--dataset",
        &base,
        "--max-rows-per-file",
        "500",
        eth.to_str().unwrap(),
    ]);
    assert_eq!(first["files"].as_array().unwrap().len(), 3);
    base
}

/// Starts `pqdm compact` on `base` with the next PUT under `held` (`/bucket/key-prefix`) held,
/// and returns once it is: the compaction has loaded version 1 and not yet made version 2.
fn compaction_held_at(base: &str, held: &str) -> std::process::Child {
    s3_hold(held);
    let child = s3_env(&mut bin())
        .args(["compact", base, "--target-rows", "2000", "--json"])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    s3_wait_held(held);
    child
}

#[test]
fn a_compaction_that_loses_the_race_for_its_version_on_s3_goes_on_top_of_the_winner() {
    let bucket = s3_bucket();
    let base = eth_day_in_three_files(&bucket);
    // The compaction stops at its journal; meanwhile a writer commits another partition as
    // version 2, the version the compaction meant to make.
    let journal = format!("/{bucket}/klines/_pqdm/journal/");
    let compact = compaction_held_at(&base, &journal);
    let btc = data_dir().join("spot/klines/BTCUSDT-1m-2024-01-05.zip");
    let write = cli_json(&["ingest", "--dataset", &base, btc.to_str().unwrap()]);
    assert_eq!(write["version"], 2);
    s3_release(&journal);

    let out = compact.wait_with_output().unwrap();
    let report = json_ok(&out);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("version 2 was committed by another writer first")
            && log.contains("trying again"),
        "{log}"
    );
    assert_eq!(report["version"], 3);
    assert_eq!(report["files_before"], 3);
    assert_eq!(report["files_after"], 1);
    assert_eq!(operations(&base), ["create", "write", "write", "compact"]);
    let info = cli_json(&["info", &base]);
    assert_eq!(info["total_rows"], 2880);
    // ETH compacted to one file; BTC in three (the dataset keeps 500 rows per file).
    assert_eq!(info["file_count"], 4);
    // The lost attempt's copies are gone: a reader without the manifest counts the same rows.
    nothing_left_behind(&bucket, 2880);
    let verify: Value = serde_json::from_slice(&cli(&["verify", &base, "--json"]).stdout).unwrap();
    assert_eq!(verify["orphans"], json!([]));
    assert_eq!(verify["missing"], json!([]));
    assert_eq!(verify["duplicate_keys"], 0);
}

/// The operation of each kept version of `base`, oldest first (`create`, `write`, ...).
fn operations(base: &str) -> Vec<String> {
    let history = cli_json(&["history", base]);
    history["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["operation"]["name"].as_str().unwrap().to_string())
        .collect()
}

/// No staged object or journal is left under `s3://bucket/klines`, and pyarrow, reading every
/// Parquet file there without the manifest, counts `rows`.
fn nothing_left_behind(bucket: &str, rows: u64) {
    assert_eq!(pyarrow_rows(&format!("{bucket}/klines")), rows);
    let remote = pqdm::storage::Remote::open(Path::new(&format!("s3://{bucket}/klines"))).unwrap();
    assert_eq!(remote.list("_pqdm/staging/").unwrap(), vec![]);
    assert_eq!(remote.list("_pqdm/journal/").unwrap(), vec![]);
}

#[test]
fn a_compaction_whose_files_another_writer_replaced_on_s3_fails_and_leaves_nothing() {
    let bucket = s3_bucket();
    let base = eth_day_in_three_files(&bucket);
    // The compaction stops uploading its file; meanwhile an upsert replaces the three files
    // it compacted.
    let staging = format!("/{bucket}/klines/_pqdm/staging/");
    let compact = compaction_held_at(&base, &staging);
    let dir = tmp();
    let eth = corrected_copy(
        &data_dir().join("spot/klines/ETHUSDT-1m-2024-01-05.zip"),
        dir.path(),
    );
    let upsert = cli_json(&[
        "ingest",
        "--dataset",
        &base,
        "--mode",
        "upsert",
        eth.to_str().unwrap(),
    ]);
    assert_eq!(upsert["version"], 2);
    assert_eq!(upsert["files_replaced"], 3);
    s3_release(&staging);

    let out = compact.wait_with_output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "was replaced by another writer during compaction; nothing of this change was committed"
        ),
        "{err}"
    );
    let info = cli_json(&["info", &base]);
    assert_eq!(info["version"], 2);
    assert_eq!(info["total_rows"], 1440);
    assert_eq!(info["file_count"], 3);
    nothing_left_behind(&bucket, 1440);
}

#[test]
fn a_scan_writes_its_result_to_an_s3_object() {
    let bucket = s3_bucket();
    let base = eth_day_in_three_files(&bucket);
    let parquet = format!("s3://{bucket}/exports/eth.parquet");
    let csv = format!("s3://{bucket}/exports/eth.csv");
    let out = cli_json(&[
        "scan",
        &base,
        "--columns",
        "timestamp,close",
        "--format",
        "parquet",
        "--output",
        &parquet,
    ]);
    assert_eq!(out["output"], parquet.as_str());
    let out = cli_json(&[
        "scan",
        &base,
        "--filter",
        "close > 2240",
        "--format",
        "csv",
        "--output",
        &csv,
    ]);
    let filtered = out["rows"].as_u64().unwrap();
    assert_eq!(filtered, 567);

    // pyarrow reads the Parquet object; the CSV object holds the filtered rows and a header.
    let read = py(
        r#"
import sys, pyarrow.parquet as pq, pyarrow.fs as fs
s3 = fs.S3FileSystem(endpoint_override=sys.argv[1], scheme="http", access_key="testing",
                     secret_key="testing", region="us-east-1")
t = pq.read_table(sys.argv[2], filesystem=s3)
print(t.num_rows, t.column_names, t.schema.field("timestamp").type)
"#,
        &[s3_endpoint(), &format!("{bucket}/exports/eth.parquet")],
    );
    assert_eq!(read.trim(), "1440 ['timestamp', 'close'] int64");
    let remote = pqdm::storage::Remote::open(Path::new(&format!("s3://{bucket}/exports"))).unwrap();
    let text = String::from_utf8(remote.get("eth.csv").unwrap().unwrap()).unwrap();
    assert_eq!(text.lines().count() as u64, filtered + 1);
    assert!(text.starts_with("timestamp,"), "{}", &text[..80]);

    // A bucket is not an object: a clear error, and nothing written.
    let bad = cli(&[
        "scan",
        &base,
        "--format",
        "csv",
        "--output",
        &format!("s3://{bucket}"),
    ]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains(&format!(
            "--output s3://{bucket}: name an object (s3://bucket/path/file)"
        )),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

/// Every object under `s3://bucket/klines` outside `_pqdm/` and `_delta_log/` (the data files
/// and `_manifest.json`), with its size.
fn data_objects(bucket: &str) -> Vec<(String, u64)> {
    let remote = pqdm::storage::Remote::open(Path::new(&format!("s3://{bucket}/klines"))).unwrap();
    let mut objects: Vec<(String, u64)> = remote
        .list("")
        .unwrap()
        .into_iter()
        .filter(|(key, _)| !key.starts_with("_pqdm/") && !key.starts_with("_delta_log/"))
        .collect();
    objects.sort();
    objects
}

#[test]
fn an_s3_writer_that_loses_every_race_gives_up_after_48_attempts_and_changes_nothing() {
    let bucket = s3_bucket();
    let base = format!("s3://{bucket}/klines");
    let eth = data_dir().join("spot/klines/ETHUSDT-1m-2024-01-05.zip");
    let first = cli_json(&["ingest", "--dataset", &base, eth.to_str().unwrap()]);
    assert_eq!(first["version"], 1);
    let objects = data_objects(&bucket);
    let scan = |base: &str| cli(&["scan", base, "--format", "csv"]).stdout;
    let rows = scan(&base);
    // A rival commits each version this writer tries to make, just before it: every attempt
    // loses, on versions 2 to 49.
    let versions = format!("/{bucket}/klines/_delta_log/");
    s3_rival(&versions, true);
    let btc = data_dir().join("spot/klines/BTCUSDT-1m-2024-01-05.zip");
    let out = cli(&["ingest", "--dataset", &base, btc.to_str().unwrap()]);
    s3_rival(&versions, false);
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(
        log.contains(&format!(
            "error: concurrent commit: {base}: version 49 was committed by another writer first; nothing of this change was committed (gave up after 48 attempts); run the command again"
        )),
        "{log}"
    );
    let retries: Vec<&str> = log.lines().filter(|l| l.contains("trying again")).collect();
    assert_eq!(retries.len(), 47, "{log}");
    assert!(retries[46].ends_with(" ms (attempt 48)"), "{log}");
    let rivals: Vec<String> = s3_requests()
        .into_iter()
        .filter(|r| r.starts_with(&format!("RIVAL {versions}")))
        .collect();
    let expected: Vec<String> = (2..=49)
        .map(|v| format!("RIVAL {versions}{v:020}.json"))
        .collect();
    assert_eq!(rivals, expected);
    // The rivals changed no data: the rows, the data objects and their sizes are as before,
    // nothing staged or journaled is left, and the history shows the rivals' empty commits.
    assert_eq!(scan(&base), rows);
    assert_eq!(data_objects(&bucket), objects);
    nothing_left_behind(&bucket, 1440);
    assert_eq!(
        operations(&base),
        [&["create", "write"][..], &["rival"; 48]].concat()
    );
}

/// Rows and the sum of `close` of `base` as pqdm reads it (the current version, or `version`).
fn s3_rows_and_close(base: &str, version: Option<u64>) -> (usize, f64) {
    let mut args = vec!["scan", base, "--format", "csv"];
    let v = version.map(|v| v.to_string());
    if let Some(v) = &v {
        args.extend(["--version", v]);
    }
    csv_rows_and_close(&cli(&args))
}

/// One ingest of 60 BTCUSDT candles of close `close` into `base`, 20 rows a file.
fn ingest_closes(base: &str, dir: &Path, close: f64) -> Value {
    let folder = dir.join(format!("c{close}"));
    std::fs::create_dir_all(&folder).unwrap();
    let csv = klines_csv(&folder, "BTCUSDT", 60, close);
    cli_json(&[
        "ingest",
        "--dataset",
        base,
        "--max-rows-per-file",
        "20",
        csv.to_str().unwrap(),
    ])
}

/// Finding 7 of issue 14 on object storage: a `LazyFrame` planned on version N, collected after
/// other processes replaced all its files, compacted and vacuumed, still returns version N
/// (pqdm reads the kept copies under `_pqdm/files/`, which vacuum keeps for its retention),
/// while pyarrow reading the tree sees only the current version.
#[test]
fn a_lazy_scan_planned_on_an_s3_version_reads_it_after_upserts_compaction_and_vacuum() {
    let bucket = s3_bucket();
    let base = format!("s3://{bucket}/klines");
    let dir = tmp();
    s3_endpoint();
    ingest_closes(&base, dir.path(), 10.0);
    let ds = pqdm::Dataset::open(&base).unwrap();
    let planned = ds
        .scan(&pqdm::ScanOptions::default().columns(&["close"]))
        .unwrap();
    assert_eq!(ingest_closes(&base, dir.path(), 30.0)["files_replaced"], 3);
    cli_json(&["compact", &base, "--target-rows", "1000"]);
    let vacuum = cli_json(&["vacuum", &base, "--retain-versions", "1"]);
    assert_eq!(
        (&vacuum["files_deleted"], &vacuum["files_retained"]),
        (&json!(0), &json!(6))
    );
    let df = planned.collect().unwrap();
    let close = df.column("close").unwrap().f64().unwrap();
    assert_eq!((df.height(), close.sum().unwrap()), (60, 600.0));
    assert_eq!(pyarrow_rows(&format!("{bucket}/klines")), 60);
    assert_eq!(s3_rows_and_close(&base, None), (60, 1800.0));

    // With no retention the six files go (tree copies went at their commits; kept copies and
    // their records now), and what is left is exactly the current version's.
    let vacuum = cli_json(&[
        "vacuum",
        &base,
        "--retain-versions",
        "1",
        "--retention",
        "0s",
    ]);
    assert_eq!(vacuum["files_deleted"], 6);
    assert!(vacuum["bytes_freed"].as_u64().unwrap() > 0);
    let remote = pqdm::storage::Remote::open(Path::new(&base)).unwrap();
    assert_eq!(remote.list("_pqdm/removed/").unwrap(), vec![]);
    let kept: Vec<String> = remote
        .list("_pqdm/files/")
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let info = cli_json(&["info", &base]);
    assert_eq!(kept.len() as u64, info["file_count"].as_u64().unwrap());
    assert_eq!(s3_rows_and_close(&base, None), (60, 1800.0));
    let verify = cli_json(&["verify", &base]);
    assert_eq!(verify["missing"], json!([]));
    assert_eq!(verify["orphans"], json!([]));

    // A planted or damaged record of removed files: vacuum refuses it naming the record, and
    // deletes nothing (not the object it names outside the dataset, not a kept copy).
    let bucket_root = pqdm::storage::Remote::open(Path::new(&format!("s3://{bucket}"))).unwrap();
    bucket_root
        .put("outside.parquet", b"keep me".to_vec())
        .unwrap();
    let kept_before = remote.list("_pqdm/files/").unwrap();
    for (record, why) in [
        (
            json!({"removed_at_ms": 0, "files": ["../outside.parquet"]}).to_string(),
            "..",
        ),
        ("{not json".to_string(), "is not a record of removed files"),
    ] {
        remote
            .put(
                "_pqdm/removed/00000000000000000099.json",
                record.into_bytes(),
            )
            .unwrap();
        let out = cli(&["vacuum", &base, "--retention", "0s", "--json"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{err}");
        assert!(
            err.contains("00000000000000000099.json") && err.contains(why),
            "{err}"
        );
        assert!(bucket_root.head("outside.parquet").unwrap().is_some());
        assert_eq!(remote.list("_pqdm/files/").unwrap(), kept_before);
    }
    remote
        .delete("_pqdm/removed/00000000000000000099.json")
        .unwrap();
    cli_json(&["vacuum", &base, "--retention", "0s"]);
    assert_eq!(s3_rows_and_close(&base, None), (60, 1800.0));
}

/// A dataset written by an earlier pqdm (no kept copies, replaced files copied to
/// `_pqdm/replaced/`) becomes one that keeps its files with its next commit, rewriting no data
/// file, and every version stays readable: those before the upgrade too.
#[test]
fn an_s3_dataset_of_an_earlier_pqdm_starts_keeping_its_files_with_its_next_commit() {
    let bucket = s3_bucket();
    let base = format!("s3://{bucket}/klines");
    let dir = tmp();
    s3_endpoint();
    ingest_closes(&base, dir.path(), 10.0);
    let remote = pqdm::storage::Remote::open(Path::new(&base)).unwrap();
    // Made as an earlier pqdm made it: version files, no Delta log, no kept copies, no
    // `kept_since`.
    let ds = pqdm::Dataset::open(&base).unwrap();
    for v in ds.versions().unwrap() {
        let m = ds.version_from_log(v).unwrap();
        remote
            .put(
                &format!("_pqdm/versions/{v:020}.json"),
                serde_json::to_vec(&m).unwrap(),
            )
            .unwrap();
    }
    let log: Vec<String> = remote
        .list("_delta_log/")
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    remote.delete_many(log).unwrap();
    let strip = |key: &str| {
        let mut v: Value = serde_json::from_slice(&remote.get(key).unwrap().unwrap()).unwrap();
        v.as_object_mut().unwrap().remove("kept_since");
        remote.put(key, serde_json::to_vec(&v).unwrap()).unwrap();
    };
    for (key, _) in remote.list("_pqdm/versions/").unwrap() {
        strip(&key);
    }
    strip("_manifest.json");
    let kept: Vec<String> = remote
        .list("_pqdm/files/")
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    remote.delete_many(kept).unwrap();
    assert_eq!(s3_rows_and_close(&base, None), (60, 600.0));
    let verify = cli_json(&["verify", &base]);
    assert_eq!(verify["missing"], json!([]));

    // The first commit gives the current files their kept copies before replacing them.
    let tree_files = || -> Vec<(String, u64)> {
        let all = remote.list("").unwrap();
        all.into_iter()
            .filter(|(k, _)| !k.starts_with('_') && k.ends_with(".parquet"))
            .collect()
    };
    let tree_before = tree_files();
    assert_eq!(tree_before.len(), 3);
    assert_eq!(ingest_closes(&base, dir.path(), 20.0)["version"], 2);
    let first_kept = remote.list("_pqdm/files/").unwrap().len();
    assert_eq!(first_kept, 6, "three of version 1, three of version 2");
    for (key, bytes) in &tree_before {
        let copy = remote.head(&format!("_pqdm/files/{key}.kept")).unwrap();
        assert_eq!(copy, Some(*bytes), "{key}");
    }
    assert_eq!(ingest_closes(&base, dir.path(), 30.0)["version"], 3);
    assert_eq!(remote.list("_pqdm/replaced/").unwrap(), vec![]);
    assert_eq!(s3_rows_and_close(&base, Some(1)), (60, 600.0));
    assert_eq!(s3_rows_and_close(&base, Some(2)), (60, 1200.0));
    assert_eq!(s3_rows_and_close(&base, None), (60, 1800.0));
    assert_eq!(pyarrow_rows(&format!("{bucket}/klines")), 60);
    let verify = cli_json(&["verify", &base]);
    assert_eq!(verify["missing"], json!([]));
    assert_eq!(verify["orphans"], json!([]));

    // A current file's kept copy lost: verify names it, --repair copies it back from the tree.
    let (rel, _) = tree_files().remove(0);
    let lost = format!("_pqdm/files/{rel}.kept");
    remote.delete(&lost).unwrap();
    let out = cli(&["verify", &base, "--json"]);
    assert!(!out.status.success());
    let verify: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verify["missing"], json!([rel]), "{verify}");
    let repaired = cli_json(&["verify", &base, "--repair"]);
    assert_eq!(repaired["repairs"]["links_restored"], json!([rel]));
    assert!(remote.head(&lost).unwrap().is_some());
    assert_eq!(s3_rows_and_close(&base, None), (60, 1800.0));
}

/// On S3 `_manifest.json` is a hint: one edited by hand into another valid manifest of the same
/// version is not the copy its log entry records the hash of, so readers and writers take the
/// version from the log.
#[test]
fn an_s3_manifest_hint_edited_by_hand_is_not_read() {
    let bucket = s3_bucket();
    let base = format!("s3://{bucket}/klines");
    let dir = tmp();
    s3_endpoint();
    ingest_closes(&base, dir.path(), 10.0);
    let remote = pqdm::storage::Remote::open(Path::new(&base)).unwrap();
    let mut hint: Value =
        serde_json::from_slice(&remote.get("_manifest.json").unwrap().unwrap()).unwrap();
    drop_first_file(&mut hint);
    remote
        .put("_manifest.json", serde_json::to_vec(&hint).unwrap())
        .unwrap();
    assert_eq!(s3_rows_and_close(&base, None), (60, 600.0));
    assert_eq!(ingest_closes(&base, dir.path(), 20.0)["version"], 2);
    assert_eq!(s3_rows_and_close(&base, None), (60, 1200.0));
    assert_eq!(s3_rows_and_close(&base, Some(1)), (60, 600.0));
    let verify = cli_json(&["verify", &base]);
    assert_eq!(verify["missing"], json!([]));
}

/// Writers of versions 2 and 3 of an S3 dataset whose symbol holds `/`, `%` and spaces die
/// before rewriting the hint: a reader starts from version 1's hint and applies the two log
/// entries (the second an upsert replacing a file), reading exactly what a local dataset given
/// the same writes holds; the log rebuilds the same version, and the next writer goes on.
#[test]
fn s3_readers_apply_log_entries_past_a_stale_hint_whatever_the_partition_values() {
    let bucket = s3_bucket();
    let base = format!("s3://{bucket}/klines");
    let dir = tmp();
    let local = klines_dataset(&dir.path().join("local"));
    let ds = klines_dataset_at(&base);
    let symbol = "A/B %2F C..[x]";
    let writes = [
        (1_704_067_200_000i64, 100.0),
        (1_704_067_200_000 + 600_000, 200.0),
        (1_704_067_200_000 + 300_000, 300.0),
    ];
    let remote = pqdm::storage::Remote::open(Path::new(&base)).unwrap();
    let mut hint_v1 = vec![];
    for (i, (start, price)) in writes.iter().enumerate() {
        for d in [&ds, &local] {
            d.write(candles(*start, 10, *price).lazy(), &kline_opts(symbol))
                .unwrap();
        }
        if i == 0 {
            hint_v1 = remote.get("_manifest.json").unwrap().unwrap();
        }
    }
    remote.put("_manifest.json", hint_v1).unwrap();
    let again = pqdm::Dataset::open(&base).unwrap();
    assert_eq!(again.header().version, 3);
    let got = read_sorted(&again);
    assert_eq!(got.height(), 20);
    assert!(got.equals_missing(&read_sorted(&local)), "{got}");
    assert_eq!(
        again.version_from_log(3).unwrap(),
        *again.manifest().unwrap()
    );
    ds.write(candles(writes[0].0, 1, 1.0).lazy(), &kline_opts(symbol))
        .unwrap();
    assert_eq!(pqdm::Dataset::open(&base).unwrap().header().version, 4);
    let verify = cli_json(&["verify", &base]);
    assert_eq!(verify["missing"], json!([]));
    assert_eq!(verify["delta_log"], Value::Null);
}

/// A scan on S3 takes each file's size from the manifest and hands Polars its keys under
/// pqdm's own scheme: a file replaced behind pqdm's back by one of another schema (and size),
/// or gone, fails the scan (library and command line) naming the file by its `s3://` URL, never by the
/// URL Polars was handed, and the command line says the cause once.
#[test]
fn a_file_of_another_schema_or_gone_fails_the_s3_scan_naming_its_s3_url() {
    let bucket = s3_bucket();
    let base = format!("s3://{bucket}/sized");
    let ds = klines_dataset_at(&base);
    ds.write(daily_candles(3).lazy(), &kline_opts("BTCUSDT"))
        .unwrap();
    let remote = pqdm::storage::Remote::open(Path::new(&base)).unwrap();
    let kept: Vec<String> = remote
        .list("_pqdm/files/")
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| k.ends_with(".parquet.kept"))
        .collect();
    assert_eq!(kept.len(), 3, "{kept:?}");
    // Other bytes: a valid Parquet file of another size.
    let mut other = df!("x" => (0..1000i64).collect::<Vec<_>>()).unwrap();
    let mut bytes = vec![];
    ParquetWriter::new(&mut bytes).finish(&mut other).unwrap();
    for (how, change) in [("replaced", Some(bytes)), ("gone", None)] {
        match change {
            Some(b) => remote.put(&kept[0], b).unwrap(),
            None => remote.delete(&kept[0]).unwrap(),
        }
        let err = pqdm::Dataset::open(&base)
            .unwrap()
            .read(&pqdm::ScanOptions::default())
            .expect_err(how)
            .to_string();
        let day = kept[0]
            .split("/day=")
            .nth(1)
            .and_then(|d| d.split('/').next())
            .unwrap();
        eprintln!("{how}: {err}");
        assert!(err.contains(&format!("day={day}/")), "{how}: {err}");
        assert!(!err.contains("pqdm-s3://"), "{how}: {err}");
        let out = s3_env(&mut bin())
            .args(["scan", &base, "--format", "csv"])
            .output()
            .unwrap();
        let cli_err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{how}: {cli_err}");
        // Polars names a file it could not parse by its URL; the store names one it does not
        // hold by its key.
        let named = match how {
            "gone" => "sized/_pqdm/files/".to_string(),
            _ => format!("s3://{bucket}/sized/_pqdm/files/"),
        };
        assert!(cli_err.contains(&named), "{how}: {cli_err}");
        assert!(cli_err.contains(&format!("day={day}/")), "{how}: {cli_err}");
        assert!(!cli_err.contains("pqdm-s3://"), "{how}: {cli_err}");
        // A replacement of another size fails on its size, before anything is decoded.
        let cause = if how == "gone" {
            "not found"
        } else {
            "the dataset's record states"
        };
        assert_eq!(cli_err.matches(cause).count(), 1, "{how}: {cli_err}");
    }
}

/// Found by a red team: `scan --cache s3://...` made a local folder named `s3:` beside the
/// caller, wrote a temporary object into the bucket, then failed renaming it as a local file,
/// on every run. The cache keeps its files on this machine: an `s3://` cache folder is refused
/// before anything is written, by `scan` and by `cache`.
#[test]
fn a_cache_folder_on_object_storage_is_refused_before_anything_is_written() {
    let bucket = s3_bucket();
    let base = format!("s3://{bucket}/data");
    let ds = klines_dataset_at(&base);
    ds.write(daily_candles(2).lazy(), &kline_opts("BTCUSDT"))
        .unwrap();
    let remote = pqdm::storage::Remote::open(Path::new(&format!("s3://{bucket}"))).unwrap();
    let objects = || remote.list("").unwrap();
    let before = objects();
    let cwd = tmp();
    let cache = format!("s3://{bucket}/cache");
    for args in [
        vec!["scan", base.as_str(), "--cache", &cache, "--format", "csv"],
        vec!["cache", "ls", "--cache", &cache],
        vec!["cache", "gc", "--cache", &cache],
        vec!["cache", "clear", "--cache", &cache],
    ] {
        let out = s3_env(&mut bin())
            .current_dir(cwd.path())
            .args(&args)
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains(&format!(
                "cache folder {cache}: the cache keeps its files on this machine"
            )),
            "{args:?}: {err}"
        );
        assert_eq!(objects(), before, "{args:?} wrote to the bucket");
        assert_eq!(
            std::fs::read_dir(cwd.path()).unwrap().count(),
            0,
            "{args:?} made a local folder"
        );
    }
}

/// A size in the log edited by hand (the scan reads an S3 file by the size its record states,
/// asking the store for none): too small, too large, or nonsense, the scan fails naming the
/// file's partition, or reads the right rows; never other rows, never a panic. `verify`
/// reports the file.
#[test]
fn a_hand_edited_file_size_in_the_log_fails_the_s3_scan_or_reads_right() {
    let bucket = s3_bucket();
    let base = format!("s3://{bucket}/edited");
    let ds = klines_dataset_at(&base);
    ds.write(daily_candles(3).lazy(), &kline_opts("BTCUSDT"))
        .unwrap();
    let remote = pqdm::storage::Remote::open(Path::new(&base)).unwrap();
    let entry_rel = format!("_delta_log/{:020}.json", ds.header().version);
    let entry = String::from_utf8(remote.get(&entry_rel).unwrap().unwrap()).unwrap();
    let first = ds.manifest().unwrap().files[0].clone();
    let day = first
        .path
        .split("/day=")
        .nth(1)
        .and_then(|d| d.split('/').next())
        .unwrap()
        .to_string();
    let stated = format!("\"size\":{}", first.bytes);
    let line = entry
        .lines()
        .position(|l| l.contains(&format!("/{}.kept\"", first.path)))
        .expect("the file's add action");
    let actual = first.bytes;
    for size in [actual - 1, actual + 1, actual + 4096, actual * 3, 8, 1, 0] {
        let edited: Vec<String> = entry
            .lines()
            .enumerate()
            .map(|(i, l)| match i == line {
                true => l.replacen(&stated, &format!("\"size\":{size}"), 1),
                false => l.to_string(),
            })
            .collect();
        let edited = edited.join("\n") + "\n";
        remote.put(&entry_rel, edited.into_bytes()).unwrap();
        // The copy's hash no longer matches the entry: the version is read from the log.
        remote.delete("_manifest.json").unwrap();
        let opened = pqdm::Dataset::open(&base).unwrap();
        assert_eq!(
            opened
                .manifest()
                .unwrap()
                .files
                .iter()
                .find(|f| f.path == first.path)
                .map(|f| f.bytes),
            Some(size),
            "the edited size is the one in force"
        );
        match opened.read(&pqdm::ScanOptions::default()) {
            Ok(df) => {
                assert_eq!(df.height(), 6, "size {size}: {df}");
                let mut ts = i64s(&df, "timestamp");
                ts.sort();
                let day0 = 1_704_067_200_000i64;
                let want: Vec<i64> = (0..3)
                    .flat_map(|d| [day0 + d * 86_400_000, day0 + d * 86_400_000 + 60_000])
                    .collect();
                assert_eq!(ts, want, "size {size}");
                assert!(f64s(&df, "close").iter().all(|c| *c == 1.5), "size {size}");
            }
            Err(e) => {
                let e = e.to_string();
                eprintln!("size {size}: {e}");
                assert!(e.contains(&format!("day={day}/")), "size {size}: {e}");
                assert!(
                    e.contains("the dataset's record states"),
                    "size {size}: {e}"
                );
            }
        }
        let out = s3_env(&mut bin()).args(["verify", &base]).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "size {size}: {}", stderr(&out));
        let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
        assert!(said.contains(&format!("day={day}/")), "size {size}: {said}");
    }
}
