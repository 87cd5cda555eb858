//! Model-based random testing: seeded random sequences of upserts, overwrites, appends,
//! compactions, vacuums, verifies, repairs, materialisations and adoptions, run as real `pqdm`
//! processes (sometimes two writers at once), with failures and kills injected at random steps
//! of commits, recoveries and vacuums (failpoints). After every step the dataset must equal a
//! plain model of the rows it should hold: as pqdm reads it, as a plain reader globbing the tree
//! reads it, and as `verify` sees it; `verify --repair` must find nothing to repair and change
//! no byte; a dataset materialised from it, and one adopted from a plain hive copy of it, must
//! hold the model's rows too.
//!
//! `PQDM_MODEL_SEED` replays a run (each run prints its seed; a fresh one otherwise),
//! `PQDM_MODEL_STEPS` sizes it (30 by default; a soak sets thousands).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Output};

use polars::prelude::*;
use pqdm::{Dataset, ScanOptions};

use crate::common::*;

/// A tiny deterministic generator (SplitMix64), so a run replays from its seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const SYMBOLS: [&str; 3] = ["BTCUSDT", "ETHUSDT", "SOLUSDT"];
const DAY_MS: i64 = 86_400_000;
const START: i64 = 1_704_067_200_000; // 2024-01-01

/// The rows the dataset should hold: (symbol, timestamp) -> close.
type Rows = BTreeMap<(String, i64), f64>;

/// Candles of one symbol on one day (a partition): `n` minutes from `from`, every close `close`.
#[derive(Clone, Debug)]
struct Batch {
    symbol: &'static str,
    day: i64,
    from: i64,
    n: i64,
    close: f64,
}

impl Batch {
    fn random(rng: &mut Rng, symbol: &'static str, close: f64) -> Batch {
        Batch {
            symbol,
            day: rng.below(3) as i64,
            from: rng.below(50) as i64,
            n: 1 + rng.below(40) as i64,
            close,
        }
    }

    fn timestamps(&self) -> impl Iterator<Item = i64> + '_ {
        (self.from..self.from + self.n).map(|m| START + self.day * DAY_MS + m * 60_000)
    }

    /// Writes it as a headerless Binance klines CSV in a folder of its own.
    fn csv(&self, dir: &Path, step: usize) -> PathBuf {
        let folder = dir.join(format!("step{step}-{}", self.symbol));
        std::fs::create_dir_all(&folder).unwrap();
        let mut text = String::new();
        for t in self.timestamps() {
            text.push_str(&format!(
                "{t},1.5,2.5,1.0,{},10.0,{},20.0,5,4.0,8.0,0\n",
                self.close,
                t + 59_999
            ));
        }
        let path = folder.join(format!("{}-1m-2024-01-01.csv", self.symbol));
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Applies it to the model as `mode` does.
    fn apply(&self, rows: &mut Rows, mode: &str) {
        if mode == "overwrite" {
            let (lo, hi) = (START + self.day * DAY_MS, START + (self.day + 1) * DAY_MS);
            rows.retain(|(s, t), _| !(s == self.symbol && *t >= lo && *t < hi));
        }
        for t in self.timestamps() {
            rows.insert((self.symbol.to_string(), t), self.close);
        }
    }
}

/// Where a fault may be injected, and what each does to the step's outcome.
const FAULTS: [&str; 8] = [
    "commit.journaled",
    "commit.moved_first",
    "commit.moved",
    "commit.version_written",
    "commit.tidy",
    "recover.journal",
    "vacuum.delete",
    "vacuum.deleted_files",
];

fn pqdm(args: &[String], faults: Option<&str>) -> std::process::Command {
    let mut cmd = bin();
    cmd.args(args).env("RUST_LOG", "error");
    if let Some(f) = faults {
        cmd.env("PQDM_FAILPOINTS", f);
    }
    cmd
}

fn spawn(args: &[String], faults: Option<&str>) -> Child {
    pqdm(args, faults)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Whether a write that ended with `out` under `fault` committed: it succeeded, or it was
/// killed after its commit point.
fn committed(out: &Output, fault: Option<&str>) -> bool {
    use std::os::unix::process::ExitStatusExt;
    out.status.success()
        || (out.status.signal() == Some(9) && fault.is_some_and(|f| f.starts_with("commit.tidy")))
}

/// The rows pqdm reads, and the rows a plain reader of the tree's `*.parquet` files reads.
fn stored(base: &Path, ctx: &str) -> (Rows, usize, Rows, usize) {
    let frame_rows = |df: DataFrame| -> (Rows, usize) {
        let n = df.height();
        let sym = df.column("symbol").unwrap().str().unwrap().clone();
        let ts = df.column("timestamp").unwrap().i64().unwrap().clone();
        let close = df.column("close").unwrap().f64().unwrap().clone();
        let rows = (0..n)
            .map(|i| {
                (
                    (sym.get(i).unwrap().to_string(), ts.get(i).unwrap()),
                    close.get(i).unwrap(),
                )
            })
            .collect();
        (rows, n)
    };
    let ds = Dataset::open(base).unwrap_or_else(|e| panic!("{ctx}: open: {e}"));
    let (pq, pq_n) = frame_rows(
        ds.read(&ScanOptions::default().columns(&["symbol", "timestamp", "close"]))
            .unwrap_or_else(|e| panic!("{ctx}: scan: {e}")),
    );
    let files: Vec<PlRefPath> = parquet_files(base)
        .into_iter()
        .filter(|f| !f.starts_with('_'))
        .map(|f| PlRefPath::try_from_path(&base.join(f)).unwrap())
        .collect();
    let (glob, glob_n) = if files.is_empty() {
        (Rows::new(), 0)
    } else {
        let args = ScanArgsParquet {
            hive_options: HiveOptions {
                enabled: Some(true),
                ..Default::default()
            },
            ..Default::default()
        };
        frame_rows(
            LazyFrame::scan_parquet_files(files.into(), args)
                .unwrap()
                .select([
                    col("symbol").cast(DataType::String),
                    col("timestamp"),
                    col("close"),
                ])
                .collect()
                .unwrap(),
        )
    };
    (pq, pq_n, glob, glob_n)
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// Asserts that the dataset at `base` holds exactly `model`, read by pqdm and by a plain reader.
fn assert_holds(base: &Path, model: &Rows, ctx: &str) {
    let (pq, pq_n, glob, glob_n) = stored(base, ctx);
    assert_eq!(
        pq_n,
        model.len(),
        "{ctx}: pqdm read a row twice or lost one"
    );
    assert!(pq == *model, "{ctx}: pqdm's rows differ from the model");
    assert_eq!(glob_n, model.len(), "{ctx}: a plain reader's row count");
    assert!(
        glob == *model,
        "{ctx}: a plain reader's rows differ from the model"
    );
}

/// Every file of the dataset but dead writers' staging (which any commit lock tidies away) and
/// the lock file, whose text names its holder: a writer killed holding it leaves its name
/// there, and the next taker (a repair too) clears it.
fn settled(base: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let staging = base.join("_pqdm/staging");
    let lock = base.join("_pqdm/lock");
    snapshot(base)
        .into_iter()
        .filter(|(p, _)| !p.starts_with(&staging) && *p != lock)
        .collect()
}

/// `verify --repair` on the (healthy) dataset: nothing to repair, nothing unexplained, no byte
/// changed; it fails only for the candle gaps the random writes leave, which it reports.
fn repair_changes_nothing(base: &Path, ctx: &str) {
    // A plain verify first finishes what a writer killed after its commit point left (its Delta
    // log entry), as the next writer would; from then on the repair must change no byte.
    pqdm(&strings(&["verify", base.to_str().unwrap()]), None)
        .output()
        .unwrap();
    let before = settled(base);
    let out = pqdm(
        &strings(&["verify", base.to_str().unwrap(), "--repair", "--json"]),
        None,
    )
    .output()
    .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{ctx}: verify --repair: {}", stderr(&out)));
    for list in [
        "missing",
        "orphans",
        "checksum_mismatches",
        "stale_stats",
        "unexplained",
    ] {
        assert_eq!(
            v[list],
            serde_json::json!([]),
            "{ctx}: verify --repair {list}"
        );
    }
    assert_eq!(v["duplicate_keys"], 0, "{ctx}: {v}");
    assert_eq!(v["data_error"], serde_json::Value::Null, "{ctx}: {v}");
    assert_eq!(v["bad_values"], serde_json::json!({}), "{ctx}: {v}");
    let r = &v["repairs"];
    for list in [
        "orphans_moved",
        "stats_rebuilt",
        "missing_dropped",
        "links_restored",
        "quarantined",
    ] {
        assert_eq!(r[list], serde_json::json!([]), "{ctx}: repairs {list}");
    }
    assert_eq!(r["manifest_copy_rewritten"], false, "{ctx}: {r}");
    assert_eq!(
        r["version"],
        serde_json::Value::Null,
        "{ctx}: repair committed"
    );
    let gaps = v["gaps"].as_array().unwrap().len();
    assert_eq!(out.status.success(), gaps == 0, "{ctx}: {}", stderr(&out));
    let after = settled(base);
    if after != before {
        let names = |files: &[(PathBuf, Vec<u8>)]| -> BTreeMap<PathBuf, Vec<u8>> {
            files.iter().cloned().collect()
        };
        let (before, after) = (names(&before), names(&after));
        let changed: Vec<_> = before
            .keys()
            .chain(after.keys())
            .filter(|p| before.get(*p) != after.get(*p))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .map(|p| {
                let state = match (before.get(p), after.get(p)) {
                    (Some(_), None) => "removed",
                    (None, Some(_)) => "added",
                    _ => "rewritten",
                };
                format!("{} ({state})", p.strip_prefix(base).unwrap_or(p).display())
            })
            .collect();
        panic!("{ctx}: verify --repair changed the dataset: {changed:?}");
    }
}

/// Materialises the dataset into a new one at `to` (`fault` injected): when it succeeds, the
/// new dataset holds the model's rows. Returns whether it did.
fn materialize(base: &Path, to: &Path, extra: &[&str], fault: Option<&str>, ctx: &str) -> bool {
    let mut args = strings(&[
        "materialize",
        base.to_str().unwrap(),
        "--to",
        to.to_str().unwrap(),
    ]);
    args.extend(strings(extra));
    let out = pqdm(&args, fault).output().unwrap();
    assert!(
        out.status.success() || fault.is_some(),
        "{ctx}: materialize: {}",
        stderr(&out)
    );
    out.status.success()
}

/// A plain hive copy of the dataset (pqdm's files by symbol, without a manifest or history),
/// adopted as a klines dataset: it must hold the model's rows.
fn adopt_a_plain_copy(base: &Path, plain: &Path, model: &Rows, ctx: &str) {
    assert!(materialize(
        base,
        plain,
        &["--partition-by", "symbol"],
        None,
        ctx
    ));
    std::fs::remove_file(plain.join("_manifest.json")).unwrap();
    std::fs::remove_dir_all(plain.join("_pqdm")).unwrap();
    // The Delta log too: it names the kept copies under `_pqdm/` (and pqdm adopts no Delta table).
    std::fs::remove_dir_all(plain.join("_delta_log")).unwrap();
    let out = pqdm(
        &strings(&["adopt", plain.to_str().unwrap(), "--kind", "klines"]),
        None,
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{ctx}: adopt: {}", stderr(&out));
    assert_holds(plain, model, &format!("{ctx}, adopted copy"));
}

#[test]
fn random_operations_with_faults_always_match_the_model() {
    let _measuring = measuring();
    let seed = seed_from_env("PQDM_MODEL_SEED");
    let steps: usize = std::env::var("PQDM_MODEL_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    eprintln!("model test: PQDM_MODEL_SEED={seed} PQDM_MODEL_STEPS={steps}");
    let mut rng = Rng(seed);
    let dir = tmp();
    let base = dir.path().join("ds");
    let b = base.to_str().unwrap().to_string();
    let mut model = Rows::new();
    let mut tally: BTreeMap<String, u64> = BTreeMap::new();
    let mut count = |what: String| *tally.entry(what).or_default() += 1;
    for step in 0..steps {
        let close = (step + 1) as f64;
        let fault = (rng.below(3) == 0).then(|| {
            let at = *rng.pick(&FAULTS);
            let how = *rng.pick(&["error", "kill"]);
            format!("{at}={how}")
        });
        let ctx = format!("seed {seed}, step {step}");
        match rng.below(13) {
            0..=4 => {
                let mode = *rng.pick(&["upsert", "upsert", "overwrite", "append"]);
                let symbol = *rng.pick(&SYMBOLS);
                let batch = Batch::random(&mut rng, symbol, close);
                let mode = if mode == "append" {
                    // Appends of new keys only, so the model stays a map.
                    if batch
                        .timestamps()
                        .any(|t| model.contains_key(&(batch.symbol.into(), t)))
                    {
                        "upsert"
                    } else {
                        "append"
                    }
                } else {
                    mode
                };
                let args: Vec<String> = [
                    "ingest",
                    "--dataset",
                    &b,
                    "--mode",
                    mode,
                    "--max-rows-per-file",
                    "16",
                    batch.csv(dir.path(), step).to_str().unwrap(),
                ]
                .iter()
                .map(|s| s.to_string())
                .collect();
                // The first write also creates the dataset (version 0, a commit of its own):
                // a commit fault is meant for the write's commit, the second one.
                let fault = match fault {
                    Some(f) if f.starts_with("commit.") && !pqdm::Dataset::exists(&base) => {
                        Some(format!("{f}@2"))
                    }
                    f => f,
                };
                let out = pqdm(&args, fault.as_deref()).output().unwrap();
                if committed(&out, fault.as_deref()) {
                    batch.apply(&mut model, mode);
                    count(format!("{mode} landed"));
                } else {
                    count(format!(
                        "{mode} failed ({})",
                        fault.as_deref().unwrap_or("-")
                    ));
                    assert!(
                        fault.is_some(),
                        "{ctx}: {mode} failed with no fault: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            }
            5 => {
                // Two writers at once, on two symbols.
                let (s1, s2) = (SYMBOLS[step % 3], SYMBOLS[(step + 1) % 3]);
                let b1 = Batch::random(&mut rng, s1, close);
                let b2 = Batch::random(&mut rng, s2, close + 0.5);
                let run = |batch: &Batch| {
                    let args: Vec<String> = [
                        "ingest",
                        "--dataset",
                        &b,
                        "--max-rows-per-file",
                        "16",
                        batch.csv(dir.path(), step).to_str().unwrap(),
                    ]
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
                    spawn(&args, None)
                };
                let (c1, c2) = (run(&b1), run(&b2));
                for (c, batch) in [(c1, &b1), (c2, &b2)] {
                    let out = c.wait_with_output().unwrap();
                    assert!(
                        out.status.success(),
                        "{ctx}: concurrent upsert: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                    batch.apply(&mut model, "upsert");
                }
                count("two writers".into());
            }
            6 | 7 => {
                if !pqdm::Dataset::exists(&base) {
                    continue;
                }
                let args: Vec<String> = ["compact", &b, "--target-rows", "64"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
                let out = pqdm(&args, fault.as_deref()).output().unwrap();
                count(format!(
                    "compact {}",
                    if out.status.success() { "ok" } else { "failed" }
                ));
                assert!(
                    out.status.success() || fault.is_some(),
                    "{ctx}: compact: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            8 => {
                if !pqdm::Dataset::exists(&base) {
                    continue;
                }
                let retention = *rng.pick(&["0s", "1h"]);
                let args: Vec<String> = [
                    "vacuum",
                    &b,
                    "--retain-versions",
                    "2",
                    "--retention",
                    retention,
                ]
                .iter()
                .map(|s| s.to_string())
                .collect();
                let out = pqdm(&args, fault.as_deref()).output().unwrap();
                count(format!(
                    "vacuum {}",
                    if out.status.success() { "ok" } else { "failed" }
                ));
                assert!(
                    out.status.success() || fault.is_some(),
                    "{ctx}: vacuum: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            10..=12 if model.is_empty() => continue,
            10 => {
                repair_changes_nothing(&base, &ctx);
                count("verify --repair".into());
            }
            11 => {
                let to = dir.path().join(format!("materialized{step}"));
                let ok = materialize(&base, &to, &[], fault.as_deref(), &ctx);
                if ok {
                    assert_holds(&to, &model, &format!("{ctx}, materialized"));
                }
                count(format!("materialize {}", if ok { "ok" } else { "failed" }));
                let _ = std::fs::remove_dir_all(&to);
            }
            12 => {
                let plain = dir.path().join(format!("plain{step}"));
                adopt_a_plain_copy(&base, &plain, &model, &ctx);
                count("adopt".into());
                std::fs::remove_dir_all(&plain).unwrap();
            }
            _ => {
                if !pqdm::Dataset::exists(&base) {
                    continue;
                }
                let out = pqdm(&["verify".into(), b.clone(), "--json".into()], None)
                    .output()
                    .unwrap();
                let v: serde_json::Value = serde_json::from_slice(&out.stdout)
                    .unwrap_or_else(|_| panic!("{ctx}: verify printed no report"));
                for list in ["missing", "orphans", "checksum_mismatches", "stale_stats"] {
                    assert_eq!(v[list], serde_json::json!([]), "{ctx}: verify {list}");
                }
                assert_eq!(v["duplicate_keys"], 0, "{ctx}: verify duplicate keys");
                assert_eq!(v["manifest_copy_stale"], false, "{ctx}");
                count("verify".into());
            }
        }
        // A first write that died before creating version 0 leaves no dataset (only what the
        // next writer cleans up).
        if !pqdm::Dataset::exists(&base) {
            assert!(model.is_empty(), "{ctx}: rows committed but no dataset");
            continue;
        }
        assert_holds(&base, &model, &ctx);
    }
    eprintln!("model test (seed {seed}): {tally:?}");
}
