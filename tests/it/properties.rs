//! Properties (proptest, run by `cargo test`): the filter parser, the manifest loader and schema
//! casting never panic on any input; write-then-scan returns the input multiset for random
//! frames, partitionings and modes.

use std::collections::BTreeMap;

use polars::prelude::*;
use pqdm::cast::{CastOptions, cast_to_kind};
use pqdm::schema::{ColType, KindRegistry};
use pqdm::{CreateOptions, Dataset, Filter, WriteMode, WriteOptions};
use proptest::prelude::*;

use crate::common::*;

const TYPES: &[ColType] = &[
    ColType::I64,
    ColType::I32,
    ColType::I16,
    ColType::I8,
    ColType::F64,
    ColType::Bool,
    ColType::Str,
    ColType::Date,
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn filter_parser_never_panics(text in "\\PC{0,40}") {
        if let Ok(f) = Filter::parse(&text) {
            for t in TYPES {
                let _ = f.typed(*t, false).map(|t| t.to_expr());
                let _ = f.typed(*t, true);
            }
        }
    }

    #[test]
    fn well_formed_filters_parse(
        column in "[a-z_][a-z0-9_]{0,10}",
        op in prop::sample::select(vec!["==", "!=", "<", "<=", ">", ">="]),
        value in "[0-9]{1,6}",
    ) {
        let f = Filter::parse(&format!("{column} {op} {value}")).unwrap();
        prop_assert_eq!(&f.column, &column);
        prop_assert_eq!(f.op.to_string(), op);
        let typed = f.typed(ColType::I64, false).unwrap();
        prop_assert_eq!(typed.values.len(), 1);
    }

    #[test]
    fn manifest_loader_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let dir = tmp();
        std::fs::write(dir.path().join("_manifest.json"), &bytes).unwrap();
        let _ = pqdm::Dataset::open(dir.path());
    }
}

fn valid_manifest() -> Vec<u8> {
    static CACHED: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    CACHED
        .get_or_init(|| {
            let dir = tmp();
            let ds = klines_dataset(dir.path());
            ds.write(
                candles(1_704_412_800_000, 10, 1.0).lazy(),
                &kline_opts("BTCUSDT"),
            )
            .unwrap();
            std::fs::read(dir.path().join("_manifest.json")).unwrap()
        })
        .clone()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn mutated_manifests_never_panic(flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6), cut in any::<prop::sample::Index>()) {
        let mut bytes = valid_manifest();
        for (at, b) in flips {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        let keep = cut.index(bytes.len() + 1);
        bytes.truncate(keep.max(bytes.len() / 2));
        let dir = tmp();
        std::fs::write(dir.path().join("_manifest.json"), &bytes).unwrap();
        let _ = pqdm::Dataset::open(dir.path());
        let _ = Dataset::open(dir.path()).map(|d| d.scan(&Default::default()).map(|lf| lf.collect()));
    }

    #[test]
    fn casting_never_panics(
        columns in prop::collection::vec((prop::sample::select(vec!["open_time", "timestamp", "open", "HIGH", "low", "close", "volume", "count", "qty", "symbol", "label", "price", "is_buyer_maker", "x"]), 0usize..5), 0..8),
        kind in prop::sample::select(vec!["klines", "aggtrades", "trades", "futures", "split", "unified"]),
        lenient in any::<bool>(),
    ) {
        let mut cols: Vec<Column> = vec![];
        for (i, (name, t)) in columns.iter().enumerate() {
            if cols.iter().any(|c| c.name() == *name) {
                continue;
            }
            let s = match t {
                0 => Column::new((*name).into(), [1_704_412_800_000i64 + i as i64, -5, 0]),
                1 => Column::new((*name).into(), [1.5f64, f64::NAN, -0.0]),
                2 => Column::new((*name).into(), ["2024-01-05T00:00:00Z", "abc", ""]),
                3 => Column::new((*name).into(), [Some(true), None, Some(false)]),
                _ => Column::new((*name).into(), ["1", "2.5", "True"]),
            };
            cols.push(s);
        }
        let df = DataFrame::new_infer_height(cols).unwrap_or_default();
        let opts = CastOptions { source_name: "prop".into(), lenient, constants: BTreeMap::new(), ..Default::default() };
        let kinds = KindRegistry::default();
        if let Ok(c) = cast_to_kind(df.lazy(), kinds.get(kind).unwrap(), &opts) {
            let _ = c.check();
            let _ = c.frame.collect();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn write_then_scan_returns_the_input(
        batches in prop::collection::vec(prop::collection::vec((0usize..3, 0i64..(3 * 1440), -1000i32..1000), 1..60), 1..4),
        partition in prop::sample::select(vec![
            vec!["symbol"], vec!["symbol", "year", "month", "day"], vec!["day"], vec!["symbol", "hour"], vec![],
        ]),
        upsert in any::<bool>(),
    ) {
        let dir = tmp();
        let kinds = KindRegistry::default();
        let mut parts: Vec<String> = vec!["exchange".into(), "timeframe".into()];
        parts.extend(partition.iter().map(|s| s.to_string()));
        let ds = Dataset::create(dir.path(), kinds.get("klines").unwrap(), &CreateOptions { partition_by: Some(parts), ..Default::default() }).unwrap();
        let symbols = ["AUSDT", "B/USDT", "C USDT"];
        let mode = if upsert { WriteMode::Upsert } else { WriteMode::Append };
        let mut expected: Vec<(String, i64, f64)> = vec![];
        for rows in &batches {
            let sym: Vec<&str> = rows.iter().map(|r| symbols[r.0]).collect();
            let ts: Vec<i64> = rows.iter().map(|r| 1_704_412_800_000 + r.1 * 60_000).collect();
            let close: Vec<f64> = rows.iter().map(|r| r.2 as f64).collect();
            let df = df!("symbol" => sym.clone(), "timestamp" => ts.clone(), "open" => close.clone(), "high" => close.clone(),
                "low" => close.clone(), "close" => close.clone(), "volume" => close.clone()).unwrap();
            let opts = WriteOptions { mode: Some(mode), constants: consts(&[("exchange", "X"), ("timeframe", "1m")]), ..Default::default() };
            ds.write(df.lazy(), &opts).unwrap();
            for ((s, t), c) in sym.iter().zip(ts).zip(close) {
                if upsert {
                    expected.retain(|(es, et, _)| !(es == s && *et == t));
                }
                expected.push((s.to_string(), t, c));
            }
        }
        let got = ds.scan(&pqdm::ScanOptions::default().columns(&["symbol", "timestamp", "close"])).unwrap().collect().unwrap();
        let mut got: Vec<(String, i64, f64)> = got.column("symbol").unwrap().str().unwrap().iter()
            .zip(got.column("timestamp").unwrap().i64().unwrap().iter())
            .zip(got.column("close").unwrap().f64().unwrap().iter())
            .map(|((s, t), c)| (s.unwrap().to_string(), t.unwrap(), c.unwrap()))
            .collect();
        let key = |a: &(String, i64, f64), b: &(String, i64, f64)| a.0.cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.total_cmp(&b.2));
        got.sort_by(key);
        expected.sort_by(key);
        prop_assert_eq!(got, expected);
    }
}

/// Path pieces a hostile journal or manifest might use.
fn hostile_path() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "..",
            ".",
            "",
            "/",
            "a",
            "symbol=..",
            "x%2F..",
            "link",
            "\\",
            "~",
            "[1]",
            "day=5",
        ]),
        1..6,
    )
    .prop_map(|parts| parts.join("/"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Whatever paths a journal names, recovery (run by `Dataset::open`) touches nothing outside
    /// the dataset: a file beside it and one inside a symlinked folder survive.
    #[test]
    fn planted_journals_never_touch_outside(moved_in in prop::collection::vec(hostile_path(), 0..4), moved_out in prop::collection::vec(hostile_path(), 0..4), target in 0u64..4) {
        let dir = tmp();
        let base = dir.path().join("ds");
        let ds = klines_dataset(&base);
        ds.write(candles(1_704_412_800_000, 5, 1.0).lazy(), &kline_opts("BTCUSDT")).unwrap();
        let outside = dir.path().join("a");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("a"), "x").unwrap();
        std::fs::write(dir.path().join("victim"), "x").unwrap();
        std::os::unix::fs::symlink(&outside, base.join("link")).unwrap();
        let journal = serde_json::json!({
            "target_version": target, "op_id": "planted", "moved_in": moved_in, "moved_out": moved_out,
        });
        std::fs::create_dir_all(base.join("_pqdm/journal")).unwrap();
        std::fs::write(base.join("_pqdm/journal/00000000000000000009.json"), journal.to_string()).unwrap();
        let _ = Dataset::open(&base);
        let _ = ds.write(candles(1_704_412_800_000, 5, 2.0).lazy(), &kline_opts("BTCUSDT"));
        prop_assert!(outside.join("a").is_file());
        prop_assert!(dir.path().join("victim").is_file());
    }

}
