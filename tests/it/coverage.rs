//! `pqdm coverage`: the sample data with known gaps made in it, counted exactly; the images'
//! sizes; the terminal map; edge cases (an empty dataset, no symbol partition, odd symbols).

use std::path::Path;

use polars::prelude::*;
use pqdm::maintain::coverage::{Completeness, CoverageOptions};
use pqdm::progress::Progress;
use pqdm::schema::KindRegistry;
use pqdm::{CreateOptions, Dataset, ScanOptions, WriteMode, WriteOptions};

use crate::common::*;

const DAY: i64 = 86_400_000;
const MINUTE: i64 = 60_000;
/// 2024-01-05T00:00Z, the sample's first day.
const JAN5: i64 = 1_704_412_800_000;
/// Days from 2024-01-05 to 2025-01-01, both included.
const SAMPLE_DAYS: i64 = 363;

/// Runs `pqdm demo` into `dir`: klines, aggtrades and funding datasets from the sample.
fn demo(dir: &Path) {
    let out = run(&["demo", "--dir", dir.to_str().unwrap(), "--quiet"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Rewrites BINANCE BTCUSDT's 2024-01-05 without the candles of minutes `cut` (upsert cannot
/// delete: the partition is overwritten with the rows kept).
fn cut_minutes(ds: &Dataset, cut: &[std::ops::Range<i64>]) {
    let day = ds
        .read(
            &ScanOptions::default()
                .filter("exchange == BINANCE")
                .unwrap()
                .filter("symbol == BTCUSDT")
                .unwrap()
                .filter("timestamp < 2024-01-06")
                .unwrap(),
        )
        .unwrap();
    let mut keep = lit(true);
    for r in cut {
        let inside = col("timestamp")
            .gt_eq(lit(JAN5 + r.start * MINUTE))
            .and(col("timestamp").lt(lit(JAN5 + r.end * MINUTE)));
        keep = keep.and(inside.not());
    }
    let kept = day.lazy().filter(keep).collect().unwrap();
    assert_eq!(
        kept.height(),
        1440 - cut.iter().map(|r| r.end - r.start).sum::<i64>() as usize
    );
    let opts = WriteOptions {
        mode: Some(WriteMode::Overwrite),
        ..Default::default()
    };
    ds.write(kept.lazy(), &opts).unwrap();
}

/// Deletes one data file of `base` for good (its tree link and its kept link), then lets
/// `verify --repair` drop it from the manifest.
fn lose_file(base: &Path, rel: &str) {
    std::fs::remove_file(base.join(rel)).unwrap();
    std::fs::remove_file(kept_path(base, rel)).unwrap();
    let out = run(&["verify", "--repair", base.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 missing dropped"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Width and height from a PNG's IHDR chunk (bytes 16..24).
fn png_size(path: &Path) -> (u32, u32) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(&b[12..16], b"IHDR");
    let be = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    (be(16), be(20))
}

/// The `width` and `height` attributes of an SVG's root element.
fn svg_size(path: &Path) -> (u32, u32) {
    let text = std::fs::read_to_string(path).unwrap();
    let root = &text[text.find("<svg").unwrap()..];
    let root = &root[..root.find('>').unwrap()];
    let attr = |name: &str| -> u32 {
        let at = root.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
        root[at..at + root[at..].find('"').unwrap()]
            .parse()
            .unwrap()
    };
    (attr("width"), attr("height"))
}

fn series<'a>(json: &'a serde_json::Value, label: &str) -> &'a serde_json::Value {
    json["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["label"] == label)
        .unwrap_or_else(|| panic!("no series {label} in {json}"))
}

#[test]
fn coverage_of_the_sample_counts_known_gaps_exactly() {
    let dir = tmp();
    demo(dir.path());
    let klines = dir.path().join("klines");
    let ds = Dataset::open(&klines).unwrap();
    // BTCUSDT spot loses 10 candles at 10:00 and 3 at 16:40 of its first day; ETHUSDT spot
    // loses its second day (2025-01-01) whole.
    cut_minutes(&ds, &[600..610, 1000..1003]);
    let eth = ds
        .manifest()
        .unwrap()
        .files
        .iter()
        .find(|f| f.path.contains("symbol=ETHUSDT") && f.path.contains("year=2025"))
        .unwrap()
        .path
        .clone();
    lose_file(&klines, &eth);

    let png = dir.path().join("map.png");
    let base = klines.to_str().unwrap();
    let out = run(&[
        "coverage",
        base,
        "--json",
        "--output",
        png.to_str().unwrap(),
    ]);
    let j = json_ok(&out);
    assert_eq!(stderr(&out), "", "quiet when piped");
    assert_eq!(
        (j["from"].as_str(), j["to"].as_str()),
        (Some("2024-01-05"), Some("2025-01-01"))
    );
    assert_eq!(j["days"], SAMPLE_DAYS);
    assert_eq!(
        j["series_columns"],
        serde_json::json!(["exchange", "symbol", "timeframe"])
    );
    assert_eq!(j["series"].as_array().unwrap().len(), 3);

    // BTCUSDT spot: the first day partial (13 missing), 361 days missing whole, the last full.
    let btc = series(&j, "BINANCE BTCUSDT 1m");
    let between = (SAMPLE_DAYS - 2) as u64 * 1440;
    assert_eq!(btc["cadence_ms"], MINUTE);
    assert_eq!(btc["totals"]["missing"], between + 13);
    assert_eq!(btc["totals"]["present"], 2 * 1440 - 13);
    assert_eq!(btc["totals"]["expected"], SAMPLE_DAYS as u64 * 1440);
    assert_eq!(btc["totals"]["days_full"], 1);
    assert_eq!(btc["totals"]["days_partial"], 1);
    assert_eq!(btc["totals"]["days_missing"], SAMPLE_DAYS - 2);
    let days = btc["days"].as_array().unwrap();
    assert_eq!(days.len() as i64, SAMPLE_DAYS);
    assert_eq!(
        days[0],
        serde_json::json!({"date": "2024-01-05", "rows": 1427, "expected": 1440,
                           "present": 1427, "missing": 13, "status": "partial"})
    );
    assert_eq!(days[1]["status"], "missing");
    assert_eq!(
        (days[1]["missing"].as_u64(), days[1]["rows"].as_u64()),
        (Some(1440), Some(0))
    );
    assert_eq!(days[362]["status"], "full");
    // ETHUSDT spot: one full day, nothing after its (now) last candle is missing.
    let eth = series(&j, "BINANCE ETHUSDT 1m");
    assert_eq!(eth["totals"]["missing"], 0);
    assert_eq!(eth["days"].as_array().unwrap().len(), 1);
    assert_eq!(eth["days"][0]["status"], "full");
    let um = series(&j, "BINANCE_UM BTCUSDT 1m");
    assert_eq!(
        (
            um["totals"]["present"].as_u64(),
            um["totals"]["missing"].as_u64()
        ),
        (Some(1440), Some(0))
    );
    assert_eq!(j["totals"]["missing"], between + 13);
    assert_eq!(j["rows_without_day"], 0);

    // verify counts the same missing candles.
    let v = ds.verify(false, &Progress::hidden()).unwrap();
    let verified: u64 = v.gaps.iter().map(|g| g.missing).sum();
    assert_eq!(verified, between + 13);

    // The PNG: 363 days, one 2-pixel cell each (1000 / 363), no label column, 3 rows.
    let drawn = (20 + 363 * 2, 20 + 30 + 3 * 14 + 24);
    assert_eq!(png_size(&png), drawn);
    assert_eq!(
        (j["image"]["width"].as_u64(), j["image"]["height"].as_u64()),
        (Some(746), Some(116))
    );
    assert_eq!(j["image"]["format"], "png");
    // The SVG: the same plus a label column for "BINANCE_UM BTCUSDT 1m" (21 characters).
    let svg = dir.path().join("map.SVG");
    let out = run(&[
        "coverage",
        base,
        "--quiet",
        "--output",
        svg.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(svg_size(&svg), (drawn.0 + 7 * 21 + 8, drawn.1));
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.contains("BINANCE BTCUSDT 1m") && text.contains("partial (gaps)"));

    // The library answers alike, and the filters and the range choose what is shown.
    let c = ds
        .coverage(
            &CoverageOptions {
                filters: vec![pqdm::Filter::parse("symbol == BTCUSDT").unwrap()],
                from: Some(JAN5 + 3 * DAY + 5),
                to: Some(JAN5 + 4 * DAY),
            },
            &Progress::hidden(),
        )
        .unwrap();
    assert_eq!((c.from.as_deref(), c.days), (Some("2024-01-08"), 2));
    assert_eq!(c.series.len(), 2);
    let btc = &c.series[0];
    assert_eq!(btc.label, "BINANCE BTCUSDT 1m");
    assert!(btc.days.iter().all(|d| d.status == Completeness::Missing));
    assert_eq!(btc.totals.missing, Some(2 * 1440));
    // The UM series ended on 2024-01-05: nothing of it is due on the days shown.
    assert!(c.series[1].days.is_empty());
}

#[test]
fn the_terminal_map_is_plain_when_piped_and_folds_long_ranges() {
    let dir = tmp();
    demo(dir.path());
    let base = dir.path().join("klines");
    let out = run_env(&["coverage", base.to_str().unwrap()], &[("COLUMNS", "100")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains('\x1b'), "no colour when piped: {text}");
    assert!(text.contains("1 cell = 7 days from a Monday"), "{text}");
    let row = text
        .lines()
        .find(|l| l.starts_with("BINANCE BTCUSDT 1m "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(row.chars().count() <= 100, "{row}");
    // The first week holds 2024-01-05 and missing days, then missing weeks, then the last.
    assert!(
        row.contains(" +....") && row.trim_end().ends_with(" 0.5%"),
        "{row}"
    );
    assert!(
        text.contains("# full  + partial (gaps)  . missing"),
        "{text}"
    );
    // Wide enough for a day per cell: the ruler marks month starts.
    let out = run_env(
        &["coverage", base.to_str().unwrap(), "--to", "2024-03-31"],
        &[("COLUMNS", "200")],
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("1 cell = 1 day"), "{text}");
    let ruler = text.lines().nth(2).unwrap();
    assert_eq!(ruler.matches('|').count(), 2, "February and March: {text}");
    let aggtrades = dir.path().join("aggtrades");
    let out = run(&["coverage", aggtrades.to_str().unwrap(), "--json"]);
    let j = json_ok(&out);
    // aggTrades: presence per day, from the manifest alone.
    assert_eq!(j["files_read"], 0);
    assert_eq!(j["series"][0]["label"], "BINANCE BTCUSDT");
    assert_eq!(j["series"][0]["days"][0]["status"], "full");
    assert_eq!(
        j["series"][0]["days"][0]["missing"],
        serde_json::Value::Null
    );
    // Funding (monthly files): the timestamps are read, three rows on each of January's days.
    let out = run(&[
        "coverage",
        dir.path().join("funding").to_str().unwrap(),
        "--json",
    ]);
    let j = json_ok(&out);
    assert_eq!(
        (j["files_read"].as_u64(), j["days"].as_u64()),
        (Some(1), Some(31))
    );
    assert_eq!(j["totals"]["days_full"], 31);
    assert!(
        j["series"][0]["days"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["rows"] == 3)
    );
    // A filter on a data column is refused, naming what can be filtered.
    let out = run(&["coverage", base.to_str().unwrap(), "--filter", "close > 5"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("only partition columns"),
        "{}",
        stderr(&out)
    );
    let out = run(&["coverage", base.to_str().unwrap(), "--output", "x.jpg"]);
    assert!(stderr(&out).contains(".svg or .png"), "{}", stderr(&out));
}

#[test]
fn coverage_of_an_empty_dataset_and_of_odd_series() {
    let dir = tmp();
    let empty = dir.path().join("empty");
    klines_dataset(&empty);
    let png = dir.path().join("empty.png");
    let j = json_ok(&run(&[
        "coverage",
        empty.to_str().unwrap(),
        "--json",
        "--output",
        png.to_str().unwrap(),
    ]));
    assert_eq!(
        (j["series"].as_array().unwrap().len(), j["days"].as_u64()),
        (0, Some(0))
    );
    assert_eq!(j["from"], serde_json::Value::Null);
    assert_eq!(png_size(&png), (320, 20 + 30 + 24));
    let out = run(&["coverage", empty.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("no data to show"));

    // No symbol partition (exchange, symbol and timeframe are data columns): read from the
    // data. A 300-byte symbol (too long for a folder), `/` and `%` are series like others.
    let flat = dir.path().join("flat");
    let ds = Dataset::create(
        &flat,
        KindRegistry::default().get("klines").unwrap(),
        &CreateOptions {
            partition_by: Some(vec!["year".into(), "month".into()]),
            ..Default::default()
        },
    )
    .unwrap();
    let long = "L".repeat(300);
    for symbol in [long.as_str(), "BTC/USDT", "100%"] {
        // Two days, the second without its first hour.
        let mut two = candles(JAN5, 1440, 100.0);
        two.vstack_mut(&candles(JAN5 + DAY + 60 * MINUTE, 1380, 100.0))
            .unwrap();
        ds.write(two.lazy(), &kline_opts(symbol)).unwrap();
    }
    let c = ds
        .coverage(&CoverageOptions::default(), &Progress::hidden())
        .unwrap();
    let labels: Vec<&str> = c.series.iter().map(|s| s.label.as_str()).collect();
    let long_label = format!("BINANCE {} 1m", long);
    assert_eq!(
        labels,
        [
            "BINANCE 100% 1m",
            "BINANCE BTC/USDT 1m",
            long_label.as_str()
        ]
    );
    for s in &c.series {
        assert_eq!(s.totals.missing, Some(60), "{}", s.label);
        assert_eq!(s.days[1].status, Completeness::Partial);
    }
    assert_eq!(c.files_read as usize, ds.manifest().unwrap().files.len());
    // The terminal cuts the long label to fit.
    let out = run_env(&["coverage", flat.to_str().unwrap()], &[("COLUMNS", "90")]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.lines().all(|l| l.chars().count() <= 90), "{text}");
    assert!(
        text.contains("BINANCE BTC/USDT 1m") && text.contains("LLL~"),
        "{text}"
    );
}
