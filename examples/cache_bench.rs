//! The projection cache's payoff: time a miss (scan + store) against a hit on a dataset of
//! N aggTrades rows (default 10,000,000).
//!
//! ```sh
//! cargo run --release --example cache_bench -- [ROWS] [WORK_DIR]
//! ```

use std::time::Instant;

use mimalloc::MiMalloc;
use polars::prelude::*;
use pqdm::cache::{Cache, cached_projection};
use pqdm::schema::KindRegistry;
use pqdm::{CreateOptions, Dataset, ScanOptions, WriteOptions};

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let rows: i64 = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(10_000_000);
    let work = std::path::PathBuf::from(args.next().unwrap_or_else(|| "target/cache-bench".into()));
    let _ = std::fs::remove_dir_all(&work);
    let symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT"];
    let start = 1_704_067_200_000i64; // 2024-01-01
    let step = 30 * 86_400_000 / (rows / symbols.len() as i64).max(1); // 30 days per symbol
    let ds = Dataset::create(
        work.join("ds"),
        KindRegistry::default().get("aggtrades")?,
        &CreateOptions::default(),
    )?;
    let t = Instant::now();
    let n = rows as usize;
    let df = df!(
        "agg_trade_id" => (0..rows).collect::<Vec<_>>(),
        "price" => (0..rows).map(|i| 100.0 + (i % 1000) as f64 * 0.01).collect::<Vec<_>>(),
        "quantity" => (0..rows).map(|i| 0.001 * (1 + i % 97) as f64).collect::<Vec<_>>(),
        "first_trade_id" => (0..rows).collect::<Vec<_>>(),
        "last_trade_id" => (0..rows).collect::<Vec<_>>(),
        "timestamp" => (0..rows).map(|i| start + (i / symbols.len() as i64) * step).collect::<Vec<_>>(),
        "is_buyer_maker" => (0..rows).map(|i| i % 2 == 0).collect::<Vec<_>>(),
        "symbol" => (0..n).map(|i| symbols[i % symbols.len()]).collect::<Vec<_>>(),
    )?;
    let opts = WriteOptions {
        mode: Some(pqdm::WriteMode::Append),
        constants: [("exchange".to_string(), "BINANCE".to_string())].into(),
        ..Default::default()
    };
    ds.write(df.lazy(), &opts)?;
    println!(
        "dataset: {rows} rows, {} files, written in {:.2?}",
        ds.manifest().unwrap().file_count,
        t.elapsed()
    );
    let cache = Cache::new(work.join("cache"));
    let query = ScanOptions::default()
        .filter("symbol in [BTCUSDT, ETHUSDT]")?
        .filter("timestamp >= 2024-01-08")?
        .columns(&["timestamp", "price", "quantity"]);
    let vwap = |lf: LazyFrame| -> PolarsResult<DataFrame> {
        lf.select([
            ((col("price") * col("quantity")).sum() / col("quantity").sum()).alias("vwap"),
            len(),
        ])
        .collect()
    };
    let t = Instant::now();
    let (lf, status) = cached_projection(&ds, &query, &cache, None)?;
    let miss_df = vwap(lf)?;
    let miss = t.elapsed();
    let mut hits = vec![];
    for _ in 0..5 {
        let t = Instant::now();
        let (lf, s) = cached_projection(&ds, &query, &cache, None)?;
        assert_eq!(s, pqdm::cache::Status::Hit);
        assert!(vwap(lf)?.equals(&miss_df));
        hits.push(t.elapsed());
    }
    hits.sort();
    let hit = hits[hits.len() / 2];
    let t = Instant::now();
    vwap(ds.scan(&query)?)?;
    let direct = t.elapsed();
    println!(
        "first call ({status:?}: scan + store): {miss:.2?}; hit (median of 5): {hit:.2?}; plain scan: {direct:.2?}"
    );
    println!(
        "hit/miss time ratio: {:.3}; hit/plain-scan ratio: {:.3}",
        hit.as_secs_f64() / miss.as_secs_f64(),
        hit.as_secs_f64() / direct.as_secs_f64()
    );
    println!("{miss_df}");
    Ok(())
}
