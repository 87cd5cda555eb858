//! Workload (4) of the peer benchmark: VWAP per symbol per day over a whole aggTrades dataset,
//! through the library (scan → LazyFrame → group_by), written as Parquet.
//!
//! ```sh
//! cargo run --release --example vwap -- BASE OUT.parquet
//! ```

use mimalloc::MiMalloc;
use polars::prelude::*;
use pqdm::{Dataset, ScanOptions};

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [base, out] = args.as_slice() else {
        return Err("usage: vwap BASE OUT.parquet".into());
    };
    let ds = Dataset::open(base)?;
    let lf = ds
        .scan(&ScanOptions::default().columns(&["symbol", "timestamp", "price", "quantity"]))?
        .group_by([
            col("symbol"),
            (col("timestamp") / lit(86_400_000i64)).alias("day"),
        ])
        .agg([
            ((col("price") * col("quantity")).sum() / col("quantity").sum()).alias("vwap"),
            col("quantity").sum().alias("volume"),
        ]);
    let parquet = pqdm::write::parquet_options(
        pqdm::Compression::Snappy,
        pqdm::options::DEFAULT_ROW_GROUP_SIZE,
        &Default::default(),
    );
    pqdm::write::sink_file(lf, std::path::Path::new(out), parquet)?;
    Ok(())
}
