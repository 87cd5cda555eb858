//! Memory awareness: peak RSS and wall time in reports, batch sizes from widths, a write budget.

use polars::prelude::*;
use pqdm::{Dataset, ScanOptions};

use crate::common::*;

#[test]
fn json_reports_carry_peak_rss_and_wall_time() {
    let dir = tmp();
    let base = dir.path().join("ds");
    let ingest = run(&[
        "ingest",
        data_dir().join("spot/klines").to_str().unwrap(),
        "--dataset",
        base.to_str().unwrap(),
        "--json",
    ]);
    let b = base.to_str().unwrap();
    let out_file = dir.path().join("o.parquet");
    let commands: Vec<Vec<&str>> = vec![
        vec!["info", b, "--json"],
        vec!["latest", b, "--json"],
        vec!["history", b, "--json"],
        vec!["verify", b, "--json"],
        vec!["compact", b, "--json"],
        vec!["vacuum", b, "--json"],
        vec![
            "scan",
            b,
            "--json",
            "--format",
            "parquet",
            "--output",
            out_file.to_str().unwrap(),
        ],
    ];
    let machine = std::fs::read_to_string("/proc/meminfo").unwrap();
    let total_kb: u64 = machine
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let mut outputs = vec![ingest];
    outputs.extend(commands.iter().map(|c| run(c)));
    for (out, cmd) in outputs
        .iter()
        .zip(std::iter::once(&vec!["ingest"]).chain(commands.iter()))
    {
        // The sample's two days a year apart are candle gaps: verify reports them and exits 1.
        let expected = if cmd[0] == "verify" { Some(1) } else { Some(0) };
        assert_eq!(
            out.status.code(),
            expected,
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let rss = v["peak_rss_bytes"].as_u64().unwrap_or(0);
        assert!(
            rss > 1 << 20 && rss < total_kb * 1024,
            "{cmd:?}: peak_rss_bytes {rss}"
        );
        assert!(v["wall_ms"].as_u64().is_some(), "{cmd:?}: wall_ms");
    }
    let v: serde_json::Value = serde_json::from_slice(&outputs[0].stdout).unwrap();
    assert!(v["wall_ms"].as_u64().unwrap() > 0);
}

#[test]
fn batch_size_follows_the_projection_width() {
    let dir = tmp();
    let ds = klines_dataset(dir.path());
    ds.write(
        candles(1_704_412_800_000, 5_000, 1.0).lazy(),
        &kline_opts("BTCUSDT"),
    )
    .unwrap();
    let narrow = ScanOptions::default().columns(&["timestamp"]);
    let wide = ScanOptions::default();
    let n = ds.batch_choice(&narrow, None).unwrap();
    let w = ds.batch_choice(&wide, None).unwrap();
    assert_eq!(n.source, "auto");
    assert!(
        w.rows < n.rows,
        "wide {} rows per batch, narrow {}",
        w.rows,
        n.rows
    );
    assert_eq!(n.row_bytes, 8);
    for c in [&n, &w] {
        assert!(c.rows as u64 * c.row_bytes <= c.target_bytes, "{c:?}");
        assert!(c.target_bytes <= pqdm::memory::DEFAULT_BATCH_BYTES);
    }
    // A configured size wins, and the batches have it.
    let c = ds.batch_choice(&narrow, Some((1_000, "flag"))).unwrap();
    assert_eq!((c.rows, c.source.as_str()), (1_000, "flag"));
    let sizes: Vec<usize> = ds
        .batches(&narrow, c.rows)
        .unwrap()
        .map(|b| b.unwrap().height())
        .collect();
    assert_eq!(sizes, vec![1_000; 5]);
}

#[test]
fn a_500_partition_write_under_a_memory_limit() {
    let dir = tmp();
    let input = dir.path().join("flat.parquet");
    let n = 3_000_000i64;
    let symbols: Vec<String> = (0..50).map(|i| format!("S{i:02}USDT")).collect();
    let mut df = df!(
        "agg_trade_id" => (0..n).collect::<Vec<_>>(),
        "price" => (0..n).map(|i| (i % 1000) as f64 * 0.1).collect::<Vec<_>>(),
        "quantity" => (0..n).map(|i| (i % 97) as f64 * 0.01).collect::<Vec<_>>(),
        "first_trade_id" => (0..n).collect::<Vec<_>>(),
        "last_trade_id" => (0..n).collect::<Vec<_>>(),
        // Ten days, every symbol every day: 500 partitions.
        "timestamp" => (0..n).map(|i| 1_704_067_200_000 + i * (10 * 86_400_000 / n)).collect::<Vec<_>>(),
        "is_buyer_maker" => (0..n).map(|i| i % 2 == 0).collect::<Vec<_>>(),
        "symbol" => (0..n as usize).map(|i| symbols[i % 50].as_str()).collect::<Vec<_>>(),
    )
    .unwrap();
    ParquetWriter::new(std::fs::File::create(&input).unwrap())
        .finish(&mut df)
        .unwrap();
    drop(df);
    let base = dir.path().join("ds");
    let limit: u64 = 512 << 20;
    let out = run(&[
        "ingest",
        input.to_str().unwrap(),
        "--dataset",
        base.to_str().unwrap(),
        "--kind",
        "aggtrades",
        "--exchange",
        "BINANCE",
        "--memory-limit",
        "512MiB",
        "--json",
    ]);
    let v = json_ok(&out);
    let peak = v["peak_rss_bytes"].as_u64().unwrap();
    eprintln!(
        "500 partitions, {n} rows, --memory-limit 512MiB: peak RSS {} MiB",
        peak >> 20
    );
    // Measured here: 300-400 MiB. The bound allows 64 MiB over for allocator slack.
    assert!(
        peak < limit + (64 << 20),
        "peak RSS {} MiB over the 512 MiB budget",
        peak >> 20
    );
    let ds = Dataset::open(&base).unwrap();
    let m = ds.manifest();
    assert_eq!(m.total_rows, n as u64);
    assert_eq!(m.key_summaries().len(), 50);
    let days: std::collections::BTreeSet<_> = m
        .files
        .iter()
        .map(|f| pqdm::partition::dir_of(&f.path).to_string())
        .collect();
    assert_eq!(days.len(), 500);
    // The process exited cleanly after a large write (no crash at teardown).
    assert_eq!(out.status.code(), Some(0));
}
