//! What pqdm writes, pyarrow.dataset, DuckDB and Polars (Python) read back row for row, against
//! a reference built from the raw inputs with Python's own `csv` and `zipfile` (never from pqdm):
//! the documented normalisations (timestamps by magnitude band to milliseconds, symbol and
//! timeframe from the Binance name, date partitions in UTC) written out in plain Python, and a
//! key written twice keeping the later commit's row.

use std::path::{Path, PathBuf};

use crate::common::*;

const CHECK: &str = r#"
import csv, datetime, io, json, sys, zipfile
import duckdb, polars as pl, pyarrow.dataset as pads

base, kind = sys.argv[1], sys.argv[2]
inputs = sys.argv[3:]  # in commit order

# Each unit owns the values from 1990-01-01 to 2262-04-11 in it (README, "Normalised").
FROM_S, TO_MS = 631152000, 9223372036854
def ms(text):
    v = int(text)
    for per_ms, lo, hi in ((1 / 1000, FROM_S, TO_MS // 1000), (1, FROM_S * 1000, TO_MS),
                           (1000, FROM_S * 10**6, TO_MS * 1000), (10**6, FROM_S * 10**9, 2**63 - 1)):
        if lo <= v <= hi:
            return v * 1000 if per_ms < 1 else v // per_ms
    raise ValueError(text)

def lines(path):
    if path.endswith(".zip"):
        with zipfile.ZipFile(path) as z:
            (name,) = z.namelist()
            return list(csv.reader(io.TextIOWrapper(z.open(name), encoding="utf-8")))
    with open(path, newline="") as f:
        return list(csv.reader(f))

def day(t):
    d = datetime.datetime.fromtimestamp(t / 1000, datetime.timezone.utc)
    return {"year": str(d.year), "month": str(d.month), "day": str(d.day)}

F, I, B = float, int, {"True": True, "False": False, "true": True, "false": False}.__getitem__
if kind == "klines":
    fields = [("timestamp", ms), ("open", F), ("high", F), ("low", F), ("close", F), ("volume", F),
              ("close_time", ms), ("quote_volume", F), ("trades", I), ("taker_buy_volume", F),
              ("taker_buy_quote_volume", F), ("ignore", None)]
    key = ("exchange", "symbol", "timeframe", "timestamp")
else:
    fields = [("agg_trade_id", I), ("price", F), ("quantity", F), ("first_trade_id", I),
              ("last_trade_id", I), ("timestamp", ms), ("is_buyer_maker", B), ("is_best_match", B)]
    key = ("exchange", "symbol", "agg_trade_id")
rows = {}
for path in inputs:
    name = path.rsplit("/", 1)[-1].split(".")[0].split("-")
    for line in lines(path):
        row = {c: parse(v) for (c, parse), v in zip(fields, line, strict=True) if parse}
        row.update(exchange="BINANCE", symbol=name[0].upper(), **day(row["timestamp"]))
        if kind == "klines":
            row["timeframe"] = name[1]
        rows[tuple(row[k] for k in key)] = row  # a later commit's row replaces the earlier one
want = pl.DataFrame(list(rows.values()), infer_schema_length=None)
cols = want.columns
text = [c for c in cols if want.schema[c] == pl.String]

def canon(df):
    # Readers type hive columns their own way (int32, BIGINT, dictionary, ...): compare them as text.
    df = df.select(cols).with_columns([pl.col(c).cast(pl.String) for c in text])
    return df.sort(list(key))
want = canon(want)
readers = {
    "pyarrow": lambda: pl.from_arrow(pads.dataset(base, format="parquet", partitioning="hive").to_table()),
    "duckdb": lambda: duckdb.sql(f"SELECT * FROM read_parquet('{base}/**/*.parquet', hive_partitioning=true)").pl(),
    "polars": lambda: pl.scan_parquet(f"{base}/**/*.parquet", hive_partitioning=True).collect(),
    "pqdm": lambda: pl.read_csv(io.StringIO(sys.stdin.read()), infer_schema_length=None),
}
for name, read in readers.items():
    got = canon(read())
    assert got.height == want.height, (name, got.height, want.height)
    assert got.equals(want), (name, got.head(3), want.head(3))
    print(name, got.height, json.dumps(got.row(0, named=True)))
"#;

/// Ingests `inputs` into `base` one command each, in order, with `flags`.
fn ingest_each(base: &Path, inputs: &[PathBuf], flags: &[&str]) {
    for input in inputs {
        let args = [
            &[
                "ingest",
                input.to_str().unwrap(),
                "--dataset",
                base.to_str().unwrap(),
            ][..],
            flags,
            &["--json"],
        ]
        .concat();
        json_ok(&run(&args));
    }
}

/// Checks every peer (and pqdm's own CSV scan) against the reference built from `inputs`;
/// what the script printed: per reader its row count and first row.
fn check_readers(base: &Path, kind: &str, inputs: &[PathBuf]) -> Vec<String> {
    use std::io::Write;
    let scan = run(&["scan", base.to_str().unwrap(), "--format", "csv"]);
    assert!(scan.status.success(), "{}", stderr(&scan));
    let mut child = std::process::Command::new(python())
        .arg("-c")
        .arg(CHECK)
        .arg(base)
        .arg(kind)
        .args(inputs)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&scan.stdout).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn peers_read_what_pqdm_wrote() {
    let dir = tmp();
    let spot = data_dir().join("spot/klines");
    // The 2025 ETH day again, later, with other closes for its first ten minutes: an upsert
    // that replaces files, whose rows must win in every reader, and the replaced file must be
    // invisible to all of them.
    let raw = std::fs::read_to_string(spot.join("ETHUSDT-1m-2025-01-01.csv")).unwrap();
    let changed: String = raw
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let mut fields: Vec<String> = line.split(',').map(String::from).collect();
            if i < 10 {
                fields[4] = format!("{}.5", 4000 + i);
            }
            fields.join(",") + "\n"
        })
        .collect();
    let later = dir.path().join("later/ETHUSDT-1m-2025-01-01.csv");
    std::fs::create_dir_all(later.parent().unwrap()).unwrap();
    std::fs::write(&later, changed).unwrap();
    let mut inputs: Vec<PathBuf> = [
        "BTCUSDT-1m-2024-01-05.zip",
        "BTCUSDT-1m-2025-01-01.zip",
        "ETHUSDT-1m-2024-01-05.zip",
        "ETHUSDT-1m-2025-01-01.csv",
    ]
    .iter()
    .map(|n| spot.join(n))
    .collect();
    inputs.push(later);
    let base = dir.path().join("klines");
    ingest_each(&base, &inputs, &["--kind", "klines"]);
    assert_eq!(pqdm::Dataset::open(&base).unwrap().header().version, 5);
    let seen = check_readers(&base, "klines", &inputs);
    // The first row (BINANCE BTCUSDT 2024-01-05 00:00) as every reader returned it; the 2025
    // rows were stored from microseconds as milliseconds.
    let first = r#"5760 {"timestamp": 1704412800000, "open": 44000.0, "high": 44138.44, "low": 43985.35, "close": 44123.32, "volume": 16.79026, "close_time": 1704412859999, "quote_volume": 740841.9819, "trades": 503, "taker_buy_volume": 10.64581, "taker_buy_quote_volume": 469728.4604, "exchange": "BINANCE", "symbol": "BTCUSDT", "year": "2024", "month": "1", "day": "5", "timeframe": "1m"}"#;
    let readers = ["pyarrow", "duckdb", "polars", "pqdm"];
    assert_eq!(
        seen,
        readers.map(|r| format!("{r} {first}")),
        "every reader, the reference's rows"
    );

    let agg = dir.path().join("agg");
    let trades = vec![data_dir().join("spot/aggTrades/BTCUSDT-aggTrades-2024-01-05.zip")];
    ingest_each(&agg, &trades, &["--compression", "zstd"]);
    let seen = check_readers(&agg, "aggtrades", &trades);
    let first = r#"5718 {"agg_trade_id": 3000000000, "price": 43992.62, "quantity": 0.00449, "first_trade_id": 3400000000, "last_trade_id": 3400000002, "timestamp": 1704412826641, "is_buyer_maker": true, "is_best_match": true, "exchange": "BINANCE", "symbol": "BTCUSDT", "year": "2024", "month": "1", "day": "5"}"#;
    assert_eq!(seen, readers.map(|r| format!("{r} {first}")));
}
