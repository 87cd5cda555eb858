//! Foundation: kinds, casting, timestamp normalisation, lenient mode, the binary.

use polars::prelude::*;
use pqdm::cast::{CastOptions, cast_to_kind};
use pqdm::schema::KindRegistry;

use crate::common::*;

fn cast(
    df: DataFrame,
    kind: &str,
    lenient: bool,
) -> pqdm::Result<(DataFrame, std::collections::BTreeMap<String, u64>)> {
    let kinds = KindRegistry::default();
    let opts = CastOptions {
        source_name: "input.csv".into(),
        lenient,
        constants: consts(&[
            ("exchange", "BINANCE"),
            ("symbol", "BTCUSDT"),
            ("timeframe", "1m"),
        ]),
        ..Default::default()
    };
    let c = cast_to_kind(df.lazy(), kinds.get(kind)?, &opts)?;
    let nulled = c.check()?;
    Ok((c.frame.collect().unwrap(), nulled))
}

fn dtypes(df: &DataFrame) -> Vec<(String, DataType)> {
    df.schema()
        .iter()
        .map(|(n, d)| (n.to_string(), d.clone()))
        .collect()
}

fn expect(pairs: &[(&str, DataType)]) -> Vec<(String, DataType)> {
    pairs
        .iter()
        .map(|(n, d)| (n.to_string(), d.clone()))
        .collect()
}

use DataType::{Boolean as B, Float64 as F, Int8, Int16, Int64 as I, String as S};

#[test]
fn klines_aliases_and_dtypes() {
    let df = df!(
        "Open_Time" => ["1704412800000", "1704412860000"], "open" => [1i32, 2], "HIGH" => ["3", "4"],
        "low" => [0.5f32, 1.5], "close" => [2.0, 3.0], "volume" => [10i64, 11],
        "closeTime" => [1704412859999i64, 1704412919999], "quoteAssetVolume" => [1.0, 2.0],
        "count" => [5.0, 6.0], "taker_buy_base_asset_volume" => [1.0, 1.0], "ignore" => [0, 0],
    )
    .unwrap();
    let (out, _) = cast(df, "klines", false).unwrap();
    assert_eq!(
        dtypes(&out),
        expect(&[
            ("timestamp", I),
            ("open", F),
            ("high", F),
            ("low", F),
            ("close", F),
            ("volume", F),
            ("close_time", I),
            ("quote_volume", F),
            ("trades", I),
            ("taker_buy_volume", F),
            ("taker_buy_quote_volume", F),
            ("exchange", S),
            ("symbol", S),
            ("timeframe", S),
        ])
    );
    assert_eq!(
        out.column("timestamp").unwrap().i64().unwrap().get(1),
        Some(1704412860000)
    );
    assert_eq!(out.column("high").unwrap().f64().unwrap().get(0), Some(3.0));
    assert_eq!(out.column("trades").unwrap().i64().unwrap().get(1), Some(6));
    assert_eq!(
        out.column("taker_buy_quote_volume").unwrap().null_count(),
        2
    );
    assert_eq!(
        out.column("symbol").unwrap().str().unwrap().get(0),
        Some("BTCUSDT")
    );
}

#[test]
fn aggtrades_aliases_and_dtypes() {
    let df = df!(
        "a" => [1i32], "p" => ["2.5"], "qty" => [3i64], "firstTradeId" => [10i32], "lastTradeId" => [12i32],
        "transact_time" => [1735689600000000i64], "isBuyerMaker" => ["True"],
    )
    .unwrap();
    // `a` and `p` are not aliases: the required columns are missing.
    assert!(
        cast(df, "aggtrades", false)
            .unwrap_err()
            .to_string()
            .contains("missing required columns `agg_trade_id`, `price`")
    );
    let df = df!(
        "aggTradeId" => [1i32], "price" => ["2.5"], "qty" => [3i64], "firstTradeId" => [10i32], "lastTradeId" => [12i32],
        "transact_time" => [1735689600000000i64], "isBuyerMaker" => ["True"], "is_best_match" => ["false"],
    )
    .unwrap();
    let (out, _) = cast(df, "aggtrades", false).unwrap();
    assert_eq!(
        dtypes(&out),
        expect(&[
            ("agg_trade_id", I),
            ("price", F),
            ("quantity", F),
            ("first_trade_id", I),
            ("last_trade_id", I),
            ("timestamp", I),
            ("is_buyer_maker", B),
            ("is_best_match", B),
            ("exchange", S),
            ("symbol", S),
        ])
    );
    assert_eq!(
        out.column("timestamp").unwrap().i64().unwrap().get(0),
        Some(1735689600000)
    );
    assert_eq!(
        out.column("is_buyer_maker").unwrap().bool().unwrap().get(0),
        Some(true)
    );
    assert_eq!(
        out.column("is_best_match").unwrap().bool().unwrap().get(0),
        Some(false)
    );
}

#[test]
fn trades_futures_split_unified_dtypes() {
    let trades = df!(
        "id" => [1i32], "price" => [1i64], "qty" => ["2"], "quote_qty" => [2i64], "time" => [1735689600i64],
        "is_buyer_maker" => [1i64],
    )
    .unwrap();
    let (out, _) = cast(trades, "trades", false).unwrap();
    assert_eq!(
        dtypes(&out),
        expect(&[
            ("trade_id", I),
            ("price", F),
            ("quantity", F),
            ("quote_quantity", F),
            ("timestamp", I),
            ("is_buyer_maker", B),
            ("is_best_match", B),
            ("exchange", S),
            ("symbol", S),
        ])
    );
    assert_eq!(
        out.column("timestamp").unwrap().i64().unwrap().get(0),
        Some(1735689600000)
    );

    let futures = df!("calc_time" => [1704067200000i64], "fundingRate" => ["0.0001"], "funding_interval_hours" => [8i32]).unwrap();
    let (out, _) = cast(futures, "futures", false).unwrap();
    assert_eq!(
        dtypes(&out),
        expect(&[
            ("timestamp", I),
            ("funding_rate", F),
            ("funding_interval_hours", I),
            ("mark_price", F),
            ("exchange", S),
            ("symbol", S)
        ])
    );
    let futures =
        df!("calc_time" => [1704067200000i64], "last_funding_rate" => [0.0002f32]).unwrap();
    let (out, _) = cast(futures, "futures", false).unwrap();
    assert!(
        (out.column("funding_rate")
            .unwrap()
            .f64()
            .unwrap()
            .get(0)
            .unwrap()
            - 0.0002)
            .abs()
            < 1e-9
    );

    let split =
        df!("timestamp" => [1704067200i64], "label" => [1.0], "feature_x" => [0.25]).unwrap();
    let (out, _) = cast(split, "split", false).unwrap();
    assert_eq!(
        dtypes(&out),
        expect(&[
            ("timestamp", I),
            ("label", I),
            ("exchange", S),
            ("symbol", S),
            ("feature_x", F)
        ])
    );

    let unified = df!(
        "timestamp" => [1704412800000i64], "open" => [1.0], "high" => [1.0], "low" => [1.0], "close" => [1.0],
        "volume" => [1.0], "trade_count" => [3i32],
    )
    .unwrap();
    let (out, _) = cast(unified, "unified", false).unwrap();
    let names: Vec<String> = dtypes(&out).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names.len(), 24);
    assert_eq!(out.column("year").unwrap().dtype(), &Int16);
    assert_eq!(out.column("month").unwrap().dtype(), &Int8);
    assert_eq!(out.column("day").unwrap().dtype(), &Int8);
    assert_eq!(
        out.column("year").unwrap().i16().unwrap().get(0),
        Some(2024)
    );
    assert_eq!(out.column("day").unwrap().i8().unwrap().get(0), Some(5));
    assert_eq!(out.column("trade_count").unwrap().dtype(), &I);
}

#[test]
fn timestamps_normalise_every_unit_and_form() {
    let want = 1_735_689_600_000i64;
    let ints = df!("timestamp" => [1_735_689_600i64, 1_735_689_600_000, 1_735_689_600_000_000, 1_735_689_600_000_000_000], "label" => [0i64; 4]).unwrap();
    let (out, _) = cast(ints, "split", false).unwrap();
    assert_eq!(
        out.column("timestamp")
            .unwrap()
            .i64()
            .unwrap()
            .into_no_null_iter()
            .collect::<Vec<_>>(),
        vec![want; 4]
    );

    let dt = df!("timestamp" => [want * 1000], "label" => [0i64]).unwrap();
    let dt = dt
        .lazy()
        .with_column(col("timestamp").cast(DataType::Datetime(TimeUnit::Microseconds, None)))
        .collect()
        .unwrap();
    let (out, _) = cast(dt, "split", false).unwrap();
    assert_eq!(
        out.column("timestamp").unwrap().i64().unwrap().get(0),
        Some(want)
    );

    let text = df!("timestamp" => ["2025-01-01T00:00:00Z", "2025-01-01 00:00:00", "2025-01-01", "2025-01-01T01:00:00+01:00", "2025-01-01T00:00:00.000Z"], "label" => [0i64; 5]).unwrap();
    let (out, _) = cast(text, "split", false).unwrap();
    assert_eq!(
        out.column("timestamp")
            .unwrap()
            .i64()
            .unwrap()
            .into_no_null_iter()
            .collect::<Vec<_>>(),
        vec![want; 5]
    );

    // Binance switched from ms to µs on 2025-01-01: one column may hold both.
    let mixed = df!("timestamp" => [1_735_689_540_000i64, 1_735_689_600_000_000, 1_735_689_660_000_000], "label" => [0i64; 3]).unwrap();
    let (out, _) = cast(mixed, "split", false).unwrap();
    assert_eq!(
        out.column("timestamp")
            .unwrap()
            .i64()
            .unwrap()
            .into_no_null_iter()
            .collect::<Vec<_>>(),
        vec![1_735_689_540_000, 1_735_689_600_000, 1_735_689_660_000]
    );
}

#[test]
fn uncastable_value_is_named_or_nulled() {
    let df = df!("timestamp" => [1_735_689_600_000i64, 1_735_689_660_000, 1_735_689_720_000], "open" => ["1.0", "2.0", "abc"],
        "high" => [1.0; 3], "low" => [1.0; 3], "close" => [1.0; 3], "volume" => [1.0; 3]).unwrap();
    let err = cast(df.clone(), "klines", false).unwrap_err();
    // The library names the value; what to do about it is a hint each front end phrases (the
    // command line appends "use --lenient ...", see errors.rs).
    assert_eq!(
        err.to_string(),
        "input.csv: column `open`, row 3: cannot cast value \"abc\" to f64"
    );
    assert_eq!(err.hint(), Some(pqdm::error::Hint::LenientNulls));
    let (out, nulled) = cast(df, "klines", true).unwrap();
    assert_eq!(nulled.get("open"), Some(&1));
    assert_eq!(out.column("open").unwrap().null_count(), 1);
    assert_eq!(out.column("open").unwrap().f64().unwrap().get(1), Some(2.0));
}

#[test]
fn kinds_from_toml_and_unknown_kind() {
    let mut kinds = KindRegistry::default();
    kinds
        .add_toml(
            r#"
[[kind]]
name = "book"
key = ["symbol", "timestamp"]
partition_by = ["symbol", "year"]
columns = [
  { name = "timestamp", dtype = "i64", timestamp = true },
  { name = "symbol", dtype = "str" },
  { name = "bid", dtype = "f64" },
  { name = "ask", dtype = "f64", required = false },
]
"#,
            "test.toml",
        )
        .unwrap();
    let k = kinds.get("book").unwrap();
    assert_eq!(k.key, vec!["symbol", "timestamp"]);
    let err = kinds.get("candles").unwrap_err().to_string();
    assert_eq!(
        err,
        "unknown kind `candles` (known kinds: aggtrades, book, futures, klines, split, trades, unified)"
    );
}

#[test]
fn binary_help_and_demo() {
    // The commands `--help` lists are exactly the commands there are, each with a line of
    // help; what each flag does is tested by its behaviour (tests/it/flags.rs and others).
    let out = run(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    let listed: Vec<&str> = help
        .split("Commands:\n")
        .nth(1)
        .unwrap()
        .split("\n\n")
        .next()
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    let commands = [
        "ingest",
        "scan",
        "info",
        "latest",
        "history",
        "demo",
        "compact",
        "migrate",
        "adopt",
        "materialize",
        "verify",
        "vacuum",
        "coverage",
        "cache",
        "help",
    ];
    assert_eq!(listed, commands, "{help}");
    for cmd in &commands[..commands.len() - 1] {
        let out = run(&[cmd, "--help"]);
        assert_eq!(out.status.code(), Some(0), "{cmd} --help");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            text.contains(&format!("\n\nUsage: pqdm {cmd} ")),
            "{cmd}: {text}"
        );
    }
    let out = run(&["scan", "/nonexistent/dataset"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/nonexistent/dataset: no such folder"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let dir = tmp();
    let demo = dir.path().join("demo");
    let out = run(&[
        "demo",
        "--dir",
        demo.to_str().unwrap(),
        "--data",
        data_dir().to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("1440 rows"), "{stdout}");
    let klines = pqdm::Dataset::open(demo.join("klines")).unwrap();
    // 4 spot days of 1440 candles and one futures day.
    assert_eq!(klines.manifest().unwrap().total_rows, 5 * 1440);
    assert_eq!(
        klines.manifest().unwrap().latest_timestamp,
        Some(1_735_689_600_000 + 1439 * 60_000)
    );
    // Running it again upserts the same rows: nothing doubles.
    let out = run(&[
        "demo",
        "--dir",
        demo.to_str().unwrap(),
        "--data",
        data_dir().to_str().unwrap(),
    ]);
    assert!(out.status.success());
    assert_eq!(
        pqdm::Dataset::open(demo.join("klines"))
            .unwrap()
            .manifest()
            .unwrap()
            .total_rows,
        5 * 1440
    );
}
