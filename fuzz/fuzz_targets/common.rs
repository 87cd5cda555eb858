//! A small real dataset (made once per fuzzing process) that the dataset targets copy and
//! plant fuzzed metadata into.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use polars::prelude::*;
use pqdm::schema::KindRegistry;
use pqdm::{CreateOptions, Dataset, WriteOptions};

/// Version files are named by 20 digits.
pub const VERSION_1: &str = "_pqdm/versions/00000000000000000001.json";

pub struct Template {
    /// The dataset folder: version 0 (create) and 1 (one write into two partitions).
    pub dir: PathBuf,
    _keep: tempfile::TempDir,
}

/// A RAM-backed folder for the many small datasets made while fuzzing, where there is one.
pub fn scratch() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

pub fn template() -> &'static Template {
    static T: OnceLock<Template> = OnceLock::new();
    T.get_or_init(|| {
        let keep = tempfile::Builder::new()
            .prefix("pqdm-fuzz-template")
            .tempdir_in(scratch())
            .unwrap();
        let dir = keep.path().join("ds");
        let kinds = KindRegistry::default();
        let ds = Dataset::create(
            &dir,
            kinds.get("klines").unwrap(),
            &CreateOptions::default(),
        )
        .unwrap();
        let candles = df!(
            "open_time" => [1_704_067_200_000i64, 1_704_067_260_000, 1_704_153_600_000],
            "open" => [42_000.0, 42_010.0, 1.0], "high" => [42_020.0, 42_030.0, 1.0],
            "low" => [41_990.0, 42_000.0, 1.0], "close" => [42_010.0, 42_020.0, 1.0],
            "volume" => [12.5, 9.0, 1.0],
            "symbol" => ["BTCUSDT", "ETH/USDT", "BTCUSDT"],
        )
        .unwrap();
        let opts = WriteOptions {
            constants: [("exchange", "BINANCE"), ("timeframe", "1m")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        };
        ds.write(candles.lazy(), &opts).unwrap();
        drop(ds);
        if let Some(seeds) = std::env::var_os("PQDM_FUZZ_SEEDS") {
            // Seeds for the corpus: the real version file and summary.
            let seeds = PathBuf::from(seeds);
            fs::create_dir_all(&seeds).unwrap();
            fs::copy(dir.join(VERSION_1), seeds.join("version1.json")).unwrap();
            fs::copy(dir.join("_pqdm/summary.json"), seeds.join("summary.json")).unwrap();
        }
        Template { dir, _keep: keep }
    })
}

/// Copies the template's files (not its lock or staging) into a fresh folder.
pub fn copy_template() -> (tempfile::TempDir, PathBuf) {
    let t = template();
    let tmp = tempfile::Builder::new()
        .prefix("pqdm-fuzz")
        .tempdir_in(scratch())
        .unwrap();
    let dir = tmp.path().join("ds");
    copy_dir(&t.dir, &dir);
    (tmp, dir)
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "lock" || name == "staging" {
            continue;
        }
        let ft = entry.file_type().unwrap();
        if ft.is_dir() {
            copy_dir(&entry.path(), &to.join(&name));
        } else if ft.is_file() {
            fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}
