//! Crashes (SIGKILL at random points of ingest, upsert, compact and vacuum) and concurrent
//! writers and readers. `PQDM_CRASH_KILLS` and `PQDM_CRASH_SEED` size and replay the kill test;
//! `PQDM_SOAK_ROUNDS` sizes the concurrency test.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use polars::prelude::*;
use pqdm::{Dataset, ScanOptions};

use crate::common::*;

/// Writes a headerless Binance klines CSV of `days` days for `symbol`, every close `close`.
fn kline_csv(dir: &Path, symbol: &str, days: i64, close: f64) -> PathBuf {
    klines_csv(dir, symbol, days * 1440, close)
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

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Rows and the sum of `close`: what a version holds, cheap to compare.
fn content(ds: &Dataset) -> (u64, f64) {
    let df = ds
        .read(&ScanOptions::default().columns(&["close"]))
        .unwrap();
    (
        df.height() as u64,
        df.column("close")
            .unwrap()
            .f64()
            .unwrap()
            .sum()
            .unwrap_or(0.0),
    )
}

#[test]
fn sigkill_at_random_points_never_breaks_a_version() {
    let _measuring = measuring();
    let seed = env_num(
        "PQDM_CRASH_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    );
    eprintln!("sigkill test: PQDM_CRASH_SEED={seed}");
    let kills_wanted = env_num("PQDM_CRASH_KILLS", 52);
    let mut rng = Lcg(seed);
    let dir = tmp();
    let base = dir.path().join("ds");
    let b = base.to_str().unwrap().to_string();
    let inputs = dir.path().join("in");
    std::fs::create_dir_all(&inputs).unwrap();
    let days = 6;
    let rows_per_symbol = (days * 1440) as u64;
    // What each committed version holds, and the close price each symbol has.
    let mut states: BTreeMap<u64, (u64, f64)> = BTreeMap::from([(0, (0, 0.0))]);
    let mut closes: BTreeMap<String, f64> = BTreeMap::new();
    let (mut kills, mut rounds) = (0, 0u64);
    let mut per_op_kills = BTreeMap::new();
    // Kills that landed inside a commit (a journal was left behind), and kills placed there.
    let (mut in_commit, mut placed) = (0u64, 0u64);
    while kills < kills_wanted && rounds < 20 * kills_wanted {
        rounds += 1;
        let version = Dataset::open(&base)
            .map(|d| d.header().version)
            .unwrap_or(0);
        let (rows, sum) = states[&version];
        let op = if closes.len() < 2 { 0 } else { rng.next() % 4 };
        let mut pending = None;
        let (args, next): (Vec<String>, Option<(u64, f64)>) = match op {
            0 | 1 => {
                // 0: a new symbol; 1: upsert an existing one with new prices.
                let symbol = if op == 0 || closes.is_empty() {
                    format!("S{:03}USDT", closes.len())
                } else {
                    closes
                        .keys()
                        .nth(rng.next() as usize % closes.len())
                        .unwrap()
                        .clone()
                };
                // A value no earlier round used, so a torn mix of files cannot look whole.
                let close = 2.0 + rounds as f64 * 0.5;
                let csv = kline_csv(&inputs, &symbol, days, close);
                let (rows2, sum2) = match closes.get(&symbol) {
                    Some(old) => (rows, sum + rows_per_symbol as f64 * (close - old)),
                    None => (rows + rows_per_symbol, sum + rows_per_symbol as f64 * close),
                };
                pending = Some((symbol, close));
                let args = [
                    "ingest",
                    csv.to_str().unwrap(),
                    "--dataset",
                    &b,
                    "--kind",
                    "klines",
                    "--max-rows-per-file",
                    "500",
                    "--quiet",
                ];
                (
                    args.iter().map(|s| s.to_string()).collect(),
                    Some((rows2, sum2)),
                )
            }
            2 => (
                ["compact", b.as_str(), "--target-rows", "5000", "--quiet"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                Some((rows, sum)),
            ),
            _ => (
                ["vacuum", b.as_str(), "--retain-versions", "2"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                None,
            ),
        };
        // One round in four dies at a chosen step of its commit (a failpoint), the others at a
        // random moment.
        let step = rng.next().is_multiple_of(4).then(|| {
            [
                "commit.journaled",
                "commit.moved_first",
                "commit.moved",
                "commit.version_written",
                "commit.tidy",
            ][rng.next() as usize % 5]
        });
        let mut cmd = bin();
        let stderr_path = dir.path().join("stderr");
        let stderr = std::fs::File::create(&stderr_path).unwrap();
        cmd.args(&args).stdout(Stdio::null()).stderr(stderr);
        if let Some(step) = step {
            cmd.env("PQDM_FAILPOINTS", format!("{step}=kill"));
        }
        let mut child = cmd.spawn().unwrap();
        let wait_ms = if step.is_some() { 0 } else { rng.next() % 350 };
        if step.is_none() {
            std::thread::sleep(Duration::from_millis(wait_ms));
            if child.try_wait().unwrap().is_none() {
                child.kill().unwrap();
                kills += 1;
                *per_op_kills.entry(args[0].clone()).or_insert(0) += 1;
            }
        }
        let status = child.wait().unwrap();
        let killed = std::os::unix::process::ExitStatusExt::signal(&status) == Some(9);
        if let Some(step) = step
            && killed
        {
            kills += 1;
            placed += 1;
            *per_op_kills
                .entry(format!("{} at {step}", args[0]))
                .or_insert(0) += 1;
        }
        // An operation nobody killed succeeds, whatever earlier kills left behind.
        assert!(
            killed || status.success(),
            "seed {seed} round {rounds}: {args:?} failed ({status}) after the kills before it: {}",
            std::fs::read_to_string(&stderr_path).unwrap_or_default()
        );
        if std::fs::read_dir(base.join("_pqdm/journal")).is_ok_and(|mut d| d.next().is_some()) {
            in_commit += 1;
        }
        let ctx = format!(
            "seed {seed} round {rounds} op {} after {wait_ms} ms",
            args[0]
        );
        let Ok(ds) = Dataset::open(&base) else {
            assert!(parquet_files(&base).is_empty(), "{ctx}");
            continue;
        };
        let m = ds.manifest().unwrap();
        assert!(
            m.version >= version,
            "{ctx}: the version went back from {version} to {}",
            m.version
        );
        if let Some(summary) = ds.summary() {
            assert_eq!(summary.version, m.version, "{ctx}: latest's summary");
            assert_eq!(summary.total_rows, m.total_rows, "{ctx}: latest's summary");
        }
        if m.version > version {
            assert_eq!(m.version, version + 1, "{ctx}");
            states.insert(
                m.version,
                next.expect("only committing operations change the version"),
            );
            if let Some((symbol, close)) = pending {
                closes.insert(symbol, close);
            }
        }
        let (want_rows, want_sum) = states[&m.version];
        assert_eq!(m.total_rows, want_rows, "{ctx}");
        let (got_rows, got_sum) = content(&ds);
        assert_eq!(
            (got_rows, got_sum),
            (want_rows, want_sum),
            "{ctx}: the scan must return exactly version {}",
            m.version
        );
        // Plain globs see exactly the manifest's files, and verify finds nothing.
        let listed: Vec<String> = m.files.iter().map(|f| f.path.clone()).collect();
        assert_eq!(parquet_files(&base), listed, "{ctx}");
        let verify = run(&["verify", &b, "--json"]);
        assert_eq!(
            verify.status.code(),
            Some(0),
            "{ctx}: {}",
            String::from_utf8_lossy(&verify.stdout)
        );
    }
    eprintln!(
        "seed {seed}: {kills} kills in {rounds} rounds ({placed} placed by failpoints, {in_commit} inside a commit): {per_op_kills:?}"
    );
    assert!(
        kills >= kills_wanted,
        "only {kills} kills in {rounds} rounds"
    );
    assert!(
        in_commit >= kills_wanted / 8,
        "only {in_commit} of {kills} kills landed inside a commit"
    );
    // Every version still kept reads back whole, and a last write leaves nothing behind.
    let ds = Dataset::open(&base).unwrap();
    for v in ds.versions().unwrap() {
        let old = ds
            .read(&ScanOptions {
                version: Some(v),
                columns: Some(vec!["close".into()]),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(
            old.height() as u64,
            states[&v].0,
            "seed {seed}: version {v}"
        );
    }
    let (rows, _) = states[&Dataset::open(&base).unwrap().header().version];
    // DuckDB globs the partition folders: `**/*.parquet` from the base also reads the Delta
    // log's checkpoint (`_delta_log/N.checkpoint.parquet`, every 100 versions), as it would in
    // any Delta table.
    let out = if rows == 0 {
        // Every round died before a commit (a heavily loaded machine): nothing for peers to read.
        format!("{rows} {rows}\n")
    } else {
        py(
            "import sys, pyarrow.dataset as ds, duckdb\nb=sys.argv[1]\nprint(ds.dataset(b, partitioning='hive').count_rows(), duckdb.connect().execute(f\"select count(*) from read_parquet('{b}/*=*/**/*.parquet')\").fetchone()[0])",
            &[&b],
        )
    };
    assert_eq!(out, format!("{rows} {rows}\n"));
    let csv = kline_csv(&inputs, "LASTUSDT", 1, 1.0);
    json_ok(&run(&[
        "ingest",
        csv.to_str().unwrap(),
        "--dataset",
        &b,
        "--json",
    ]));
    for sub in ["journal", "staging"] {
        let mut left = vec![];
        pqdm::manifest::walk(&base.join("_pqdm").join(sub), &mut |p| {
            left.push(p.to_path_buf())
        })
        .unwrap();
        assert_eq!(
            left,
            Vec::<PathBuf>::new(),
            "seed {seed}: left in _pqdm/{sub}"
        );
    }
}

#[test]
fn writers_and_readers_at_once() {
    let rounds = env_num("PQDM_SOAK_ROUNDS", 3) as i64;
    let dir = tmp();
    let base = dir.path().join("ds");
    let b = base.to_str().unwrap().to_string();
    // Two writers on their own symbols, two upserting the same symbol; each round a new day.
    let writers: Vec<(&str, f64)> = vec![
        ("AUSDT", 1.0),
        ("BUSDT", 2.0),
        ("SAMEUSDT", 3.0),
        ("SAMEUSDT", 4.0),
    ];
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (base, stop) = (base.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut reads = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let Ok(ds) = Dataset::open(&base) else {
                        continue;
                    };
                    let df = ds
                        .read(&ScanOptions::default().columns(&["timestamp"]))
                        .unwrap();
                    // A whole version: exactly the rows its manifest lists.
                    assert_eq!(df.height() as u64, ds.manifest().unwrap().total_rows);
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    let started = Instant::now();
    let procs: Vec<_> = writers
        .iter()
        .enumerate()
        .map(|(w, (symbol, close))| {
            let folder = dir.path().join(format!("in{w}"));
            std::fs::create_dir_all(&folder).unwrap();
            let mut script = String::new();
            for r in 0..rounds {
                let start = 1_704_067_200_000i64 + r * 86_400_000;
                let mut text = String::new();
                for i in 0..1440 {
                    let t = start + i * 60_000;
                    text.push_str(&format!("{t},1,1,1,{close},1,{},1,1,1,1,0\n", t + 59_999));
                }
                let day = format!("2024-01-{:02}", r + 1);
                let file = folder.join(format!("{symbol}-1m-{day}.csv"));
                std::fs::write(&file, text).unwrap();
                script.push_str(&format!(
                    "{} ingest {} --dataset {b} --kind klines --json || exit 1\n",
                    env!("CARGO_BIN_EXE_pqdm"),
                    file.display()
                ));
            }
            hermetic("sh")
                .arg("-c")
                .arg(script)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    // Per writer, the version each of its rounds committed (its reports, in round order).
    let committed: Vec<Vec<u64>> = procs
        .into_iter()
        .map(|p| {
            let out = p.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            serde_json::Deserializer::from_slice(&out.stdout)
                .into_iter::<serde_json::Value>()
                .map(|r| r.unwrap()["version"].as_u64().unwrap())
                .collect()
        })
        .collect();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let reads: usize = readers.into_iter().map(|r| r.join().unwrap()).sum();
    let ds = Dataset::open(&base).unwrap();
    let m = ds.manifest().unwrap();
    assert_eq!(m.version, 4 * rounds as u64, "every commit landed");
    assert_eq!(m.total_rows, 3 * 1440 * rounds as u64, "every key once");
    let r = ds
        .verify(false, &pqdm::progress::Progress::hidden())
        .unwrap();
    assert_eq!(r.duplicate_keys, 0);
    assert_eq!(r.problems(), 0, "{r:?}");
    // Every symbol's day holds one writer's whole day: for SAMEUSDT the writer whose commit of
    // that day came later (the higher version) wins every minute.
    let mut want = vec![];
    for (symbol, writer) in [("AUSDT", 0), ("BUSDT", 1), ("SAMEUSDT", 2)] {
        for (r, (third, fourth)) in committed[2].iter().zip(&committed[3]).enumerate() {
            let close = match writer {
                2 if fourth > third => 4.0,
                w => writers[w].1,
            };
            want.push(format!("{symbol} day {} 1440 x {close}", r + 1));
        }
    }
    let days = ds
        .scan(&ScanOptions::default())
        .unwrap()
        .group_by([col("symbol"), col("day")])
        .agg([
            len().alias("n"),
            col("close").min().alias("lo"),
            col("close").max().alias("hi"),
        ])
        .sort(["symbol", "day"], Default::default())
        .collect()
        .unwrap();
    let got: Vec<String> = (0..days.height())
        .map(|i| {
            let cell = |c: &str| days.column(c).unwrap().get(i).unwrap().to_string();
            assert_eq!(cell("lo"), cell("hi"), "one writer's close per day");
            format!(
                "{} day {} {} x {}",
                cell("symbol").trim_matches('"'),
                cell("day"),
                cell("n"),
                days.column("lo").unwrap().f64().unwrap().get(i).unwrap()
            )
        })
        .collect();
    assert_eq!(got, want, "versions committed per writer: {committed:?}");
    eprintln!(
        "4 writers x {rounds} rounds, {reads} whole-version reads in {:.1?}",
        started.elapsed()
    );
}

#[test]
fn one_day_of_300_opens_no_other_file() {
    let dir = tmp();
    let ds = klines_dataset(dir.path());
    let hour = 3_600_000i64;
    let start = 1_704_067_200_000i64;
    let n = 300 * 24;
    let ts: Vec<i64> = (0..n).map(|i| start + i * hour).collect();
    let df = df!("timestamp" => ts, "open" => vec![1.0; n as usize], "high" => vec![1.0; n as usize],
        "low" => vec![1.0; n as usize], "close" => vec![1.0; n as usize], "volume" => vec![1.0; n as usize]).unwrap();
    let opts = pqdm::WriteOptions {
        constants: consts(&[
            ("exchange", "X"),
            ("symbol", "BTCUSDT"),
            ("timeframe", "1h"),
        ]),
        ..Default::default()
    };
    ds.write(df.lazy(), &opts).unwrap();
    let m = ds.manifest().unwrap();
    assert_eq!(m.file_count, 300);
    let day = ScanOptions::default()
        .filter("timestamp >= 2024-06-01")
        .unwrap()
        .filter("timestamp < 2024-06-02")
        .unwrap();
    let keep = ds.plan(&day).unwrap().files;
    assert_eq!(keep.len(), 1);
    for p in ds.file_paths(&m) {
        if !keep.contains(&p) {
            std::fs::write(&p, b"unreadable").unwrap();
        }
    }
    assert_eq!(ds.scan(&day).unwrap().collect().unwrap().height(), 24);
    let by_folder = ScanOptions::default()
        .filter("month == 6")
        .unwrap()
        .filter("day == 1")
        .unwrap();
    assert_eq!(ds.scan(&by_folder).unwrap().collect().unwrap().height(), 24);
}
