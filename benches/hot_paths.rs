//! Criterion benchmarks of pqdm's hot pieces: filter parsing and pruning, schema casting (plan),
//! manifest load and commit, cache key.
//!
//! ```sh
//! cargo bench --bench hot_paths
//! ```

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use polars::prelude::*;
use pqdm::cache::Cache;
use pqdm::cast::{CastOptions, cast_to_kind};
use pqdm::schema::KindRegistry;
use pqdm::{CreateOptions, Dataset, Filter, ScanOptions, WriteOptions};

/// A klines dataset of `days` daily files for 10 symbols (one candle per day: the manifest is
/// what is measured).
fn dataset(dir: &std::path::Path, days: i64) -> Dataset {
    let ds = Dataset::create(
        dir,
        KindRegistry::default().get("klines").unwrap(),
        &CreateOptions::default(),
    )
    .unwrap();
    let n = (days * 10) as usize;
    let ts: Vec<i64> = (0..n as i64)
        .map(|i| 1_704_067_200_000 + (i / 10) * 86_400_000)
        .collect();
    let sym: Vec<String> = (0..n).map(|i| format!("S{}USDT", i % 10)).collect();
    let df =
        df!("timestamp" => ts, "symbol" => sym, "open" => vec![1.0; n], "high" => vec![1.0; n],
        "low" => vec![1.0; n], "close" => vec![1.0; n], "volume" => vec![1.0; n])
        .unwrap();
    let opts = WriteOptions {
        constants: [("exchange", "BINANCE"), ("timeframe", "1d")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    };
    ds.write(df.lazy(), &opts).unwrap();
    ds
}

fn benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let ds = dataset(dir.path(), 300);
    let texts = [
        "symbol in [S1USDT, S2USDT]",
        "timestamp >= 2024-03-01",
        "timestamp < 2024-03-08T00:00:00Z",
        "close between [0.5, 2]",
    ];
    c.bench_function("filter_parse_4", |b| {
        b.iter(|| {
            texts
                .iter()
                .map(|t| Filter::parse(black_box(t)).unwrap())
                .collect::<Vec<_>>()
        })
    });
    let opts = texts
        .iter()
        .fold(ScanOptions::default(), |o, t| o.filter(t).unwrap());
    c.bench_function("plan_prune_3000_files", |b| {
        b.iter(|| ds.plan(black_box(&opts)).unwrap().files.len())
    });
    let kinds = KindRegistry::default();
    let frame = df!("open_time" => [1i64], "Open" => ["1"], "high" => [1.0], "low" => [1.0], "close" => [1.0], "volume" => [1.0]).unwrap();
    let cast_opts = CastOptions {
        source_name: "bench".into(),
        lenient: false,
        constants: [("exchange".to_string(), "X".to_string())].into(),
        ..Default::default()
    };
    c.bench_function("cast_plan_klines", |b| {
        b.iter(|| {
            cast_to_kind(
                frame.clone().lazy(),
                kinds.get("klines").unwrap(),
                &cast_opts,
            )
            .is_err()
        })
    });
    c.bench_function("manifest_load_3000_files", |b| {
        b.iter(|| ds.refresh().unwrap().files.len())
    });
    let cache = Cache::new(dir.path().join("cache"));
    let manifest = ds.manifest().unwrap();
    c.bench_function("cache_key", |b| {
        b.iter(|| cache.key(&ds, &manifest, black_box(&opts), Some("t")).0)
    });
    let small = tempfile::tempdir().unwrap();
    let one = dataset(small.path(), 1);
    let mut day = 0i64;
    c.bench_function("commit_one_file", |b| {
        b.iter(|| {
            day += 1;
            let df = df!("timestamp" => [1_704_067_200_000i64 + day * 86_400_000], "symbol" => ["S0USDT"], "open" => [1.0],
                "high" => [1.0], "low" => [1.0], "close" => [1.0], "volume" => [1.0]).unwrap();
            let opts = WriteOptions { constants: [("exchange".to_string(), "BINANCE".to_string()), ("timeframe".to_string(), "1d".to_string())].into(), ..Default::default() };
            one.write(df.lazy(), &opts).unwrap().version
        })
    });
}

criterion_group! {
    name = hot;
    config = Criterion::default().sample_size(20);
    targets = benches
}
criterion_main!(hot);
