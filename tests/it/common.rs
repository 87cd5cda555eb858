//! Shared test helpers: temporary folders, the real binary, sample frames, the Python peers.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use polars::prelude::*;
use pqdm::schema::KindRegistry;
use pqdm::{CreateOptions, Dataset, WriteOptions};

/// The only variables a `pqdm` run by a test inherits from the test's environment; the rest
/// (`PQDM_*`, `AWS_*`, `POLARS_*`, `RUST_LOG`, ...) is cleared, so that the settings of whoever
/// runs the tests change no test. A test passes the variables it means explicitly.
const INHERITED_ENV: &[&str] = &["PATH", "TMPDIR", "RUST_BACKTRACE", "LLVM_PROFILE_FILE"];

/// The write budget of every `pqdm` a test runs (`PQDM_MEMORY_LIMIT`): pqdm's default depends
/// on the machine's free memory, a test's must not. 768 MiB is that default on a roomy machine.
pub const MEMORY_LIMIT: &str = "768MiB";

/// An empty folder of this test process: the working folder and `HOME` of every `pqdm` it runs,
/// so that a `pqdm.toml` in the folder the tests were started from, or the runner's `~/.aws`,
/// is never read. Folders of test processes that have ended are removed here.
pub fn workdir() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
        std::fs::create_dir_all(root).unwrap();
        for entry in std::fs::read_dir(root).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("workdir-")
                && !Path::new("/proc").join(pid).exists()
            {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let dir = root.join(format!("workdir-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

/// The built `pqdm` binary, hermetic: a cleared environment but for [`INHERITED_ENV`], a fixed
/// memory budget, `RUST_LOG=warn`, and [`workdir`] as its working folder and home.
pub fn bin() -> Command {
    hermetic(env!("CARGO_BIN_EXE_pqdm"))
}

/// `program` (a shell running `pqdm` in a script, say) in the environment [`bin`] gives `pqdm`.
pub fn hermetic(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear();
    for key in INHERITED_ENV {
        if let Some(value) = std::env::var_os(key) {
            cmd.env(key, value);
        }
    }
    cmd.current_dir(workdir())
        .env("HOME", workdir())
        .env("RUST_LOG", "warn")
        .env("PQDM_MEMORY_LIMIT", MEMORY_LIMIT);
    cmd
}

/// Runs the binary with `args`, returning its output.
pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run pqdm")
}

/// Runs the binary with `args` and the variables `env` set; its output.
pub fn run_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = bin();
    cmd.args(args);
    for (key, value) in env {
        cmd.env(key, value);
    }
    cmd.output().expect("run pqdm")
}

/// A seed for a randomised test: the variable `var` when set, else a fresh one (the caller
/// prints it, so that a failure can be replayed).
pub fn seed_from_env(var: &str) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
}

/// What a command printed on stderr.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The JSON a successful command printed (panics with its stderr if it failed).
pub fn json_ok(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Zeroes, in the Delta log entry of `version`, the checksum of a file that version added:
/// returns the entry's path, its text before the edit, and that file's manifest entry.
pub fn zero_logged_checksum(
    ds: &Dataset,
    version: u64,
) -> (PathBuf, String, pqdm::manifest::FileEntry) {
    let file = ds
        .manifest()
        .unwrap()
        .files
        .iter()
        .find(|f| f.added_in == version)
        .unwrap()
        .clone();
    let entry = ds.base().join(format!("_delta_log/{version:020}.json"));
    let text = std::fs::read_to_string(&entry).unwrap();
    std::fs::write(&entry, text.replace(&file.checksum, &"0".repeat(64))).unwrap();
    (entry, text, file)
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
/// The values of the column `name` of `df` (no nulls), as `f64`.
pub fn f64s(df: &DataFrame, name: &str) -> Vec<f64> {
    df.column(name)
        .unwrap()
        .f64()
        .unwrap()
        .into_no_null_iter()
        .collect()
}

/// The values of the column `name` of `df` (no nulls), as `i64`.
pub fn i64s(df: &DataFrame, name: &str) -> Vec<i64> {
    df.column(name)
        .unwrap()
        .i64()
        .unwrap()
        .into_no_null_iter()
        .collect()
}

/// The rows of the one data file of `ds`'s current version, in the file's order.
pub fn only_file(ds: &Dataset) -> DataFrame {
    let mut files = ds.file_paths(&ds.manifest().unwrap());
    assert_eq!(files.len(), 1, "{files:?}");
    ParquetReader::new(std::fs::File::open(files.pop().unwrap()).unwrap())
        .finish()
        .unwrap()
}

/// A new klines dataset at `base` partitioned by `by`.
pub fn klines_by(base: &Path, by: &[&str]) -> Dataset {
    Dataset::create(
        base,
        pqdm::schema::KindRegistry::default().get("klines").unwrap(),
        &pqdm::CreateOptions {
            partition_by: Some(by.iter().map(|c| c.to_string()).collect()),
            ..Default::default()
        },
    )
    .unwrap()
}

pub fn read_sorted(ds: &Dataset) -> DataFrame {
    let m = ds.manifest().unwrap();
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

/// Data files (`*.parquet`) under `dir`, relative, sorted, as plain readers would glob them
/// (pyarrow.dataset skips folders named `_...` or `.…`, such as `_delta_log/`).
pub fn parquet_files(dir: &Path) -> Vec<String> {
    let mut out = vec![];
    pqdm::manifest::walk(dir, &mut |p| {
        let hidden = p
            .strip_prefix(dir)
            .unwrap()
            .components()
            .any(|c| c.as_os_str().to_string_lossy().starts_with(['_', '.']));
        if !hidden && p.extension().is_some_and(|e| e == "parquet") {
            out.push(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
        }
    })
    .unwrap();
    out.sort();
    out
}

/// The Python of the tests' one virtualenv (pyarrow, DuckDB, Polars, boto3, moto), pinned with
/// hashes in tests/requirements.txt and made by tests/pyenv.py under the target folder, the
/// folder `.ci/run` also uses: installed once, on first use, and again only when the pins change.
pub fn python() -> PathBuf {
    static PYTHON: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pyenv");
            let out = Command::new("python3")
                .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pyenv.py"))
                .arg(&venv)
                .stderr(std::process::Stdio::inherit())
                .output()
                .expect("python3 tests/pyenv.py");
            assert!(
                out.status.success(),
                "tests/pyenv.py could not make {venv:?}"
            );
            PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
        })
        .clone()
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

/// The local S3-compatible server (moto, with a request log: tests/s3_server.py): the one
/// `.ci/run` started (`PQDM_TEST_S3_ENDPOINT`), else one started here on first use, which exits
/// with the test process.
pub fn s3_endpoint() -> &'static str {
    static ENDPOINT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ENDPOINT.get_or_init(|| {
        let endpoint = match std::env::var("PQDM_TEST_S3_ENDPOINT") {
            Ok(e) if !e.is_empty() => e,
            _ => {
                use std::io::BufRead;
                let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/s3_server.py");
                let mut child = Command::new(python())
                    .arg(script)
                    .args(["--port", "0", "--parent", &std::process::id().to_string()])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .expect("start the S3 server");
                let mut line = String::new();
                std::io::BufReader::new(child.stdout.take().unwrap())
                    .read_line(&mut line)
                    .unwrap();
                let port = line
                    .trim()
                    .strip_prefix("PORT ")
                    .expect("the server's port")
                    .to_string();
                // Reaped here if it ever ends; it ends itself when this process does.
                std::thread::spawn(move || child.wait());
                format!("http://127.0.0.1:{port}")
            }
        };
        let options = [
            ("endpoint", endpoint.as_str()),
            ("region", "us-east-1"),
            ("access_key_id", "testing"),
            ("secret_access_key", "testing"),
            ("allow_http", "true"),
        ];
        pqdm::storage::set_options(
            options
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
        .unwrap();
        endpoint
    })
}

/// Sets the variables that point a `pqdm` process at the local S3 server.
pub fn s3_env(cmd: &mut Command) -> &mut Command {
    cmd.env("AWS_ENDPOINT_URL", s3_endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_ALLOW_HTTP", "true")
}

/// One plain HTTP request to the local S3 server; the response body.
fn s3_http(method: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let addr = s3_endpoint().trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "{method} {path}: {response}"
    );
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default()
}

/// A new, empty bucket on the local S3 server; its name.
pub fn s3_bucket() -> String {
    s3_bucket_named("pqdm")
}

/// A new, empty bucket whose name starts with `prefix` (`nocond`: one that ignores conditional
/// puts, see tests/s3_server.py); its name.
pub fn s3_bucket_named(prefix: &str) -> String {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let name = format!("{prefix}-{}-{n}", std::process::id());
    s3_http("PUT", &format!("/{name}"));
    name
}

/// The requests the S3 server has logged (`METHOD path?query`), oldest first.
pub fn s3_requests() -> Vec<String> {
    serde_json::from_str(&s3_http("GET", "/__requests")).unwrap()
}

/// Holds the next PUT to the local S3 server whose path starts with `prefix` (`/bucket/key...`)
/// until [`s3_release`] (see tests/s3_server.py): a way to stage a race between writers.
pub fn s3_hold(prefix: &str) {
    s3_http("POST", &format!("/__hold?prefix={prefix}"));
}

/// Holds the `nth` request of any method (counted from now) to the local S3 server whose path
/// starts with `prefix`, until [`s3_release`]: a way to stop a writer at each request in turn.
pub fn s3_hold_nth(prefix: &str, nth: usize) {
    s3_http("POST", &format!("/__hold?prefix={prefix}&nth={nth}"));
}

/// The (timestamp, close) rows of the S3 dataset `base`, as `pqdm scan` prints them.
pub fn s3_timestamp_closes(base: &str) -> Vec<(i64, f64)> {
    let out = s3_env(&mut bin())
        .args([
            "scan",
            base,
            "--columns",
            "timestamp,close",
            "--format",
            "csv",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .map(|l| {
            let (t, c) = l.split_once(',').unwrap();
            (t.parse().unwrap(), c.parse().unwrap())
        })
        .collect()
}

/// Waits (a minute at most) until the hold on `prefix` has caught a request; its path.
pub fn s3_wait_held(prefix: &str) -> String {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let held = s3_http("GET", &format!("/__held?prefix={prefix}"));
        if !held.is_empty() {
            return held;
        }
        assert!(
            std::time::Instant::now() < until,
            "no PUT under {prefix} within a minute"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Lets the request held under `prefix` go on.
pub fn s3_release(prefix: &str) {
    s3_http("POST", &format!("/__release?prefix={prefix}"));
}

/// Arms a rival on the local S3 server that commits every version under `prefix`
/// (`/bucket/dataset/_delta_log/`) just before a writer's conditional PUT of it, so that
/// the writer loses every race (see tests/s3_server.py); `on: false` disarms it.
pub fn s3_rival(prefix: &str, on: bool) {
    let verb = if on { "__rival" } else { "__rival_off" };
    s3_http("POST", &format!("/{verb}?prefix={prefix}"));
}

/// Makes the local S3 server apply the next PUT under `prefix` and then answer 500, as a store
/// whose answer is lost after it applied a write (see tests/s3_server.py).
pub fn s3_lose_answer(prefix: &str) {
    s3_http("POST", &format!("/__lose_answer?prefix={prefix}"));
}

/// A headerless Binance klines CSV: `minutes` candles of `symbol` from 2024-01-01, every close
/// `close` (a value that tells versions apart).
pub fn klines_csv(dir: &Path, symbol: &str, minutes: i64, close: f64) -> PathBuf {
    let start = 1_704_067_200_000i64;
    let mut text = String::new();
    for i in 0..minutes {
        let t = start + i * 60_000;
        text.push_str(&format!(
            "{t},1.5,2.5,1.0,{close},10.0,{},20.0,5,4.0,8.0,0\n",
            t + 59_999
        ));
    }
    let path = dir.join(format!("{symbol}-1m-2024-01-01.csv"));
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `pqdm` with `args` and measures it from outside: its output, the peak RSS in bytes that
/// `wait4` gives, and the wall time in ms (the oracles for the `peak_rss_bytes` and `wall_ms` a
/// report claims).
///
/// `pqdm` is started by a small Python process that reaps it with `wait4`, not by this test
/// process: Linux carries a starter's peak RSS into the program it `exec`s, so a child of this
/// (large, long-running) test process would be measured at this process's peak.
pub fn run_measured(args: &[&str]) -> (Output, u64, u64) {
    const REAPER: &str = "import os, subprocess, sys, time
start = time.monotonic()
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
wall_ms = int((time.monotonic() - start) * 1000)
with open(sys.argv[1], 'w') as f:
    f.write(f'{usage.ru_maxrss} {wall_ms}')
sys.exit(os.waitstatus_to_exitcode(status))
";
    let dir = tmp();
    let (out, err, measured) = (
        dir.path().join("stdout"),
        dir.path().join("stderr"),
        dir.path().join("measured"),
    );
    let status = hermetic("python3")
        .arg("-c")
        .arg(REAPER)
        .arg(&measured)
        .arg(env!("CARGO_BIN_EXE_pqdm"))
        .args(args)
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .status()
        .expect("run python3");
    let measured = std::fs::read_to_string(&measured).unwrap_or_else(|e| {
        panic!(
            "python3 measured nothing ({e}): {}",
            String::from_utf8_lossy(&std::fs::read(&err).unwrap())
        )
    });
    let (kib, wall_ms) = measured.split_once(' ').unwrap();
    let output = Output {
        status,
        stdout: std::fs::read(&out).unwrap(),
        stderr: std::fs::read(&err).unwrap(),
    };
    (
        output,
        kib.parse::<u64>().unwrap() * 1024,
        wall_ms.parse().unwrap(),
    )
}

/// A kinds file declaring `bars`: timestamp, symbol and close, keyed by symbol and timestamp,
/// partitioned by symbol.
pub const BARS_KIND: &str = r#"
[[kind]]
name = "bars"
key = ["symbol", "timestamp"]
partition_by = ["symbol"]
columns = [
  { name = "timestamp", dtype = "i64", timestamp = true },
  { name = "symbol", dtype = "str" },
  { name = "close", dtype = "f64" },
]
"#;

/// The values of a float column without nulls.
pub fn floats(df: &DataFrame, column: &str) -> Vec<f64> {
    df.column(column)
        .unwrap()
        .f64()
        .unwrap()
        .into_no_null_iter()
        .collect()
}

/// A copy of the Binance klines file `src` (CSV, or a zip holding one) as `dir/<stem>.csv`
/// with every close raised by 1: a corrected download, whose upsert replaces every row
/// (one of the same rows replaces nothing).
pub fn corrected_copy(src: &Path, dir: &Path) -> PathBuf {
    use std::io::Read;
    let mut text = String::new();
    if src.extension().is_some_and(|e| e == "zip") {
        let mut zip = ::zip::ZipArchive::new(std::fs::File::open(src).unwrap()).unwrap();
        zip.by_index(0).unwrap().read_to_string(&mut text).unwrap();
    } else {
        text = std::fs::read_to_string(src).unwrap();
    }
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            let mut fields: Vec<String> = line.split(',').map(String::from).collect();
            let close: f64 = fields[4].parse().unwrap();
            fields[4] = format!("{:.2}", close + 1.0);
            fields.join(",")
        })
        .collect();
    std::fs::create_dir_all(dir).unwrap();
    let stem = src.file_name().unwrap().to_str().unwrap();
    let name = format!(
        "{}.csv",
        stem.trim_end_matches(".zip").trim_end_matches(".csv")
    );
    let path = dir.join(name);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

/// Where pqdm keeps the committed file `rel` of the dataset at `base` for older versions
/// (`_pqdm/files/<rel>.kept`), to damage or remove it in a test.
pub fn kept_path(base: &Path, rel: &str) -> PathBuf {
    base.join(pqdm::layout::META_DIR)
        .join(pqdm::layout::FILES_DIR)
        .join(format!("{rel}{}", pqdm::layout::KEPT_SUFFIX))
}

/// Held by the tests that measure a process's memory and by the tests that take every core (the
/// Delta tests, whose readers are delta-rs and DuckDB and whose 64 writers share one process;
/// the SIGKILL, model and S3 race tests, which run many processes), so that no measurement runs
/// while the machine is saturated: a streaming write's peak memory grows when its process is
/// starved of CPU (584-597 MiB beside them, 357-400 MiB alone).
pub fn measuring() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Edits manifest JSON `m` by hand into another valid manifest of the same version: its first
/// file dropped, the file count and row total fixed to match (a copy without a file list,
/// `_manifest.json` of a local dataset, one file of one row fewer counted).
pub fn drop_first_file(m: &mut serde_json::Value) {
    let rows = match m.get_mut("files") {
        Some(files) => files.as_array_mut().unwrap().remove(0)["rows"]
            .as_u64()
            .unwrap(),
        None => 1,
    };
    m["file_count"] = (m["file_count"].as_u64().unwrap() - 1).into();
    m["total_rows"] = (m["total_rows"].as_u64().unwrap() - rows).into();
}

/// Makes the local dataset at `base` look as an earlier pqdm left it, as far as its history
/// goes: every version the log rebuilds written whole to `_pqdm/versions/<N>.json`, which is
/// then its commit point (what tests that edit a version by hand, or upgrade an earlier
/// pqdm's dataset, start from).
pub fn write_version_files(base: &Path) {
    let ds = Dataset::open(base).unwrap();
    let dir = base.join("_pqdm/versions");
    std::fs::create_dir_all(&dir).unwrap();
    for v in ds.versions().unwrap() {
        let m = ds.version_from_log(v).unwrap();
        std::fs::write(
            dir.join(format!("{v:020}.json")),
            serde_json::to_vec(&m).unwrap(),
        )
        .unwrap();
    }
    // An earlier pqdm's `_manifest.json` listed every file.
    let newest = ds.version_from_log(ds.header().version).unwrap();
    std::fs::write(
        base.join("_manifest.json"),
        serde_json::to_vec(&newest).unwrap(),
    )
    .unwrap();
}
