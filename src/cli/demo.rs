//! `pqdm demo`: the main job on the sample data in `data/`: ingest, scan, latest.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use pqdm::dataset::{CreateOptions, Dataset};
use pqdm::error::{Error, Result};
use pqdm::ingest::ingest;
use pqdm::progress::Progress;
use pqdm::scan::ScanOptions;
use pqdm::schema::KindRegistry;
use pqdm::timestamp::format_millis;
use pqdm::write::WriteOptions;

/// One ingest of the demo: a folder of `data/`, the dataset and kind it goes to, and the exchange.
const STEPS: &[(&str, &str, &str, &str)] = &[
    ("spot/klines", "klines", "klines", "BINANCE"),
    ("futures/um/klines", "klines", "klines", "BINANCE_UM"),
    ("spot/aggTrades", "aggtrades", "aggtrades", "BINANCE"),
    ("futures/um/fundingRate", "funding", "futures", "BINANCE_UM"),
];

/// The sample data folder: `./data` if present, else the one beside the sources.
pub(crate) fn default_data_dir() -> PathBuf {
    let local = PathBuf::from("data");
    if local.join("spot").is_dir() {
        local
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("data")
    }
}

fn out_err(e: std::io::Error) -> Error {
    Error::io("stdout")(e)
}

/// Runs the demo: datasets go under `out`, what happens is printed to `w`.
pub(crate) fn run(data: &Path, out: &Path, w: &mut dyn Write, progress: &Progress) -> Result<()> {
    let kinds = KindRegistry::default();
    writeln!(
        w,
        "pqdm demo: sample data {} -> datasets under {}",
        data.display(),
        out.display()
    )
    .map_err(out_err)?;
    for (folder, dataset, kind, exchange) in STEPS {
        let src = data.join(folder);
        if !src.is_dir() {
            writeln!(w, "  skip {folder}: no such folder").map_err(out_err)?;
            continue;
        }
        let ds = Dataset::open_or_create(
            out.join(dataset),
            kinds.get(kind)?,
            &CreateOptions::default(),
        )?;
        let opts = WriteOptions {
            constants: BTreeMap::from([("exchange".to_string(), exchange.to_string())]),
            ..Default::default()
        };
        let r = ingest(&ds, &[src], &opts, progress)?;
        writeln!(
            w,
            "  ingest {folder:<24} -> {dataset:<10} {} ({} ms)",
            r.summary(),
            r.wall_ms
        )
        .map_err(out_err)?;
    }
    let klines = Dataset::open(out.join("klines"))?;
    let m = klines.header();
    writeln!(
        w,
        "\nklines: version {}, {} files, {} rows, {} bytes, partitions {}",
        m.version,
        m.file_count,
        m.total_rows,
        m.total_bytes,
        m.partition_columns
            .iter()
            .map(|f| format!("{}:{}", f.name, f.dtype.name()))
            .collect::<Vec<_>>()
            .join("/")
    )
    .map_err(out_err)?;
    let df = klines
        .scan(
            &ScanOptions::default()
                .filter("symbol == ETHUSDT")?
                .filter("timestamp >= 2025-01-01")?
                .columns(&["symbol", "timestamp", "close", "volume"]),
        )?
        .collect()
        .map_err(Error::polars("demo scan"))?;
    writeln!(w, "\nscan symbol == ETHUSDT, timestamp >= 2025-01-01, columns symbol,timestamp,close,volume: {} rows", df.height())
        .map_err(out_err)?;
    writeln!(w, "{}", df.head(Some(5))).map_err(out_err)?;
    writeln!(
        w,
        "\nlatest timestamp per key (from the manifest, no data read):"
    )
    .map_err(out_err)?;
    for e in &m.latest_by_key {
        let key: Vec<String> = e
            .key
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_deref().unwrap_or("null")))
            .collect();
        writeln!(
            w,
            "  {:<50} {}",
            key.join(" "),
            format_millis(e.latest_timestamp)
        )
        .map_err(out_err)?;
    }
    Ok(())
}
