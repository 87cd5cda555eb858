//! What pqdm writes, pyarrow.dataset, DuckDB and Polars (Python) read back row for row.

use std::path::Path;

use polars::prelude::*;
use pqdm::output::{Format, write_result};

use crate::common::*;

const CHECK: &str = r#"
import sys, pyarrow as pa, pyarrow.parquet as pq, pyarrow.dataset as pads, duckdb, polars as pl
base, reference, keys = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
ref = pl.read_parquet(reference)
cols = ref.columns
def canon(df):
    df = df.select(cols)
    # Readers type hive columns their own way (int32, BIGINT, ...): compare values as text.
    df = df.with_columns([pl.col(c).cast(pl.String) for c in cols if ref.schema[c] in (pl.Int8, pl.Int16, pl.String)])
    return df.sort(keys)
want = canon(ref)
readers = {
    "pyarrow": lambda: pl.from_arrow(pads.dataset(base, format="parquet", partitioning="hive").to_table()),
    "duckdb": lambda: duckdb.sql(f"SELECT * FROM read_parquet('{base}/**/*.parquet', hive_partitioning=true)").pl(),
    "polars": lambda: pl.scan_parquet(f"{base}/**/*.parquet", hive_partitioning=True).collect(),
}
for name, read in readers.items():
    got = canon(read())
    assert got.height == want.height, (name, got.height, want.height)
    assert got.equals(want), (name, got.head(3), want.head(3))
    print(name, got.height)
"#;

fn check_readers(base: &Path, ds: &pqdm::Dataset, keys: &str) -> String {
    let reference = base.parent().unwrap().join("reference.parquet");
    write_result(
        ds.scan(&Default::default()).unwrap(),
        Format::Parquet,
        Some(&reference),
        65_536,
    )
    .unwrap();
    py(
        CHECK,
        &[base.to_str().unwrap(), reference.to_str().unwrap(), keys],
    )
}

#[test]
fn peers_read_what_pqdm_wrote() {
    let dir = tmp();
    let base = dir.path().join("klines");
    let out = run(&[
        "ingest",
        data_dir().join("spot/klines").to_str().unwrap(),
        "--dataset",
        base.to_str().unwrap(),
        "--kind",
        "klines",
        "--quiet",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ds = pqdm::Dataset::open(&base).unwrap();
    assert_eq!(ds.manifest().total_rows, 4 * 1440);
    // An upsert replaces files: the replaced ones must be invisible to every peer.
    let out = run(&[
        "ingest",
        data_dir()
            .join("spot/klines/ETHUSDT-1m-2025-01-01.csv")
            .to_str()
            .unwrap(),
        "--dataset",
        base.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(out.status.success());
    let ds = pqdm::Dataset::open(&base).unwrap();
    assert_eq!(ds.manifest().version, 2);
    let seen = check_readers(&base, &ds, "symbol,timestamp");
    assert_eq!(seen, "pyarrow 5760\nduckdb 5760\npolars 5760\n");
    // The µs rows of 2025 were stored as ms.
    let df = ds
        .scan(&Default::default())
        .unwrap()
        .filter(col("year").eq(lit(2025i16)))
        .select([col("timestamp").min()])
        .collect()
        .unwrap();
    assert_eq!(
        df.column("timestamp").unwrap().i64().unwrap().get(0),
        Some(1_735_689_600_000)
    );

    let agg = dir.path().join("agg");
    let out = run(&[
        "ingest",
        data_dir().join("spot/aggTrades").to_str().unwrap(),
        "--dataset",
        agg.to_str().unwrap(),
        "--quiet",
        "--compression",
        "zstd",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ds = pqdm::Dataset::open(&agg).unwrap();
    let rows = ds.manifest().total_rows;
    let seen = check_readers(&agg, &ds, "agg_trade_id");
    assert_eq!(
        seen,
        format!("pyarrow {rows}\nduckdb {rows}\npolars {rows}\n")
    );
}
