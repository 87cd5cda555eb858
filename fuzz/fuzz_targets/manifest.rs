//! The manifest loader: fuzzed bytes as the newest version file (and as the summary) of a real
//! dataset, then `Dataset::open` and everything that answers from the manifest alone (pruning
//! plans, `latest`, key summaries, the summary counts a commit recomputes). Errors are fine;
//! a panic is a bug.
#![no_main]

mod common;

use std::fs;

use libfuzzer_sys::fuzz_target;
use pqdm::filter::Filter;
use pqdm::{Dataset, ScanOptions};

fuzz_target!(|data: &[u8]| {
    let (_tmp, dir) = common::copy_template();
    let newest = dir.join("_pqdm/versions/00000000000000000002.json");
    fs::write(&newest, data).unwrap();
    fs::write(dir.join("_pqdm/summary.json"), data).unwrap();

    let _ = pqdm::maintain::latest::from_summary(&dir, &[]);
    let _ = pqdm::maintain::latest::from_summary(&dir, &["symbol".to_string()]);
    let Ok(ds) = Dataset::open(&dir) else {
        return;
    };
    let m = ds.manifest();
    assert_eq!(m.version, 2);
    let _ = m.key_summaries();
    let mut again = (*m).clone();
    again.refresh_summary();
    let _ = pqdm::scan::output_schema(&m);
    let _ = ds.file_paths(&m);
    let _ = pqdm::cache::manifest_hash(&m);
    let _ = ds.store().versions();
    let _ = ds.store().load_summary();
    let _ = ds.plan(&ScanOptions::default());
    let mut filters = vec![];
    for p in &m.partition_columns {
        filters.push(format!("{} is_not_null", p.name));
        filters.push(format!("{} != BTCUSDT", p.name));
    }
    for f in &m.schema {
        filters.push(format!("{} >= 2024-01-01", f.name));
        filters.push(format!("{} between [1704067200000, 1704153600000]", f.name));
    }
    for text in &filters {
        if let Ok(f) = Filter::parse(text) {
            let _ = ds.plan(&ScanOptions {
                filters: vec![f],
                ..Default::default()
            });
        }
    }
    let _ = ds.latest(&[], &[]);
    let by: Vec<String> = m
        .partition_columns
        .iter()
        .map(|p| p.name.clone())
        .filter(|n| !pqdm::partition::is_derived(n))
        .collect();
    let _ = ds.latest(&by, &[]);
    let _ = ds.manifest_at(Some(1));
});
