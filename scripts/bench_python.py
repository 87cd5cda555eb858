#!/usr/bin/env python3
"""pqdm's Python package against pyarrow.dataset, Polars and DuckDB, all in this one process.

    python scripts/bench_python.py [--rows 20000000] [--rounds 3] [--target DIR]

The workloads of scripts/bench.py, driven from Python: (1) write an aggTrades frame held in a
Polars DataFrame as a hive dataset partitioned by exchange/symbol/year/month/day, (2) a pruned
scan (one symbol of five, 7 of 30 days, three columns) into a pandas DataFrame, (2b) every row of
three columns into Polars (what the hand-over through the Arrow C stream costs), (3) the latest
timestamp per symbol. Each tool runs each workload `--rounds` times (the order alternating);
the table shows the median wall time and the ratio pqdm / peer, and is also written to
target/bench/python.md. Needs polars, pyarrow, pandas, duckdb and numpy (the tests' virtualenv,
`$CARGO_TARGET_DIR/tmp/pyenv`, has them) and pqdm: installed (`pip install ./python`), else the
extension `cargo build --release` left in `--target` (default: $CARGO_TARGET_DIR or target/).
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
START_MS = 1_704_067_200_000  # 2024-01-01
DAY_MS = 86_400_000
PARTS = ["exchange", "symbol", "year", "month", "day"]


def import_pqdm(target):
    """`pqdm` installed, else laid out from the built extension in a temporary folder."""
    try:
        import pqdm  # noqa: F401
        return sys.modules["pqdm"], "installed"
    except ImportError:
        pass
    so = None
    for folder in (os.path.join(target, "release", "deps"), os.path.join(target, "release")):
        if os.path.exists(os.path.join(folder, "lib_pqdm.so")):
            so = os.path.join(folder, "lib_pqdm.so")
            break
    if so is None:
        sys.exit(f"pqdm is not installed and {target}/release has no lib_pqdm.so: "
                 "`pip install ./python` or `cargo build --release`")
    root = tempfile.mkdtemp(prefix="pqdm-bench-pkg-")
    shutil.copytree(os.path.join(ROOT, "python", "pqdm"), os.path.join(root, "pqdm"))
    shutil.copy(so, os.path.join(root, "pqdm", "_pqdm.abi3.so"))
    sys.path.insert(0, root)
    import pqdm
    return pqdm, so


def aggtrades(rows, work):
    """The aggTrades scripts/bench.py makes (deterministic, Binance-shaped), as a Polars frame."""
    import polars as pl

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import bench

    path = os.path.join(work, "flat.parquet")
    bench.gen_aggtrades(path, rows)
    return pl.read_parquet(path)


def with_dates_polars(df):
    import polars as pl

    dt = pl.from_epoch("timestamp", time_unit="ms")
    return df.lazy().with_columns(year=dt.dt.year(), month=dt.dt.month(), day=dt.dt.day())


def write_tools(pqdm, frame):
    import duckdb
    import polars as pl
    import pyarrow.dataset as pads

    def w_pqdm(out):
        pqdm.Dataset.create(out, "aggtrades").write(frame, mode="append")

    def w_polars(out):
        with_dates_polars(frame).sink_parquet(pl.PartitionBy(out, key=PARTS), mkdir=True)

    def w_pyarrow(out):
        table = with_dates_polars(frame).collect().to_arrow()
        pads.write_dataset(table, out, format="parquet", partitioning=PARTS, partitioning_flavor="hive",
                           existing_data_behavior="overwrite_or_ignore")

    def w_duckdb(out):
        trades = frame.to_arrow()  # noqa: F841  (DuckDB reads the Python variable)
        duckdb.connect().execute(
            f"""COPY (SELECT *, year(make_timestamp(timestamp * 1000)) AS year, month(make_timestamp(timestamp * 1000)) AS month,
            day(make_timestamp(timestamp * 1000)) AS day FROM trades) TO '{out}' (FORMAT parquet, PARTITION_BY (exchange, symbol, year, month, day))""")

    return {"pqdm": w_pqdm, "Polars": w_polars, "pyarrow": w_pyarrow, "DuckDB": w_duckdb}


def scan_tools(pqdm, base, lo, hi):
    import duckdb
    import polars as pl
    import pyarrow.dataset as pads

    cols = ["timestamp", "price", "quantity"]

    def s_pqdm():
        return pqdm.Dataset.open(base).scan(
            cols, [("symbol", "==", "ETHUSDT"), ("timestamp", ">=", lo), ("timestamp", "<", hi)], output="pandas")

    def s_polars():
        return (pl.scan_parquet(base + "/**/*.parquet", hive_partitioning=True)
                .filter((pl.col("symbol") == "ETHUSDT") & (pl.col("timestamp") >= lo) & (pl.col("timestamp") < hi))
                .select(cols).collect().to_pandas())

    def s_pyarrow():
        d = pads.dataset(base, format="parquet", partitioning="hive")
        f = (pads.field("symbol") == "ETHUSDT") & (pads.field("timestamp") >= lo) & (pads.field("timestamp") < hi)
        return d.to_table(columns=cols, filter=f).to_pandas()

    def s_duckdb():
        return duckdb.connect().execute(
            f"""SELECT timestamp, price, quantity FROM read_parquet('{base}/**/*.parquet', hive_partitioning=true)
            WHERE symbol = 'ETHUSDT' AND timestamp >= {lo} AND timestamp < {hi}""").df()

    return {"pqdm": s_pqdm, "Polars": s_polars, "pyarrow": s_pyarrow, "DuckDB": s_duckdb}


def full_scan_tools(pqdm, base):
    """Every row of three columns into Polars: no pruning helps, so this shows what handing the
    frame over (the Arrow C stream) costs against Polars' own reader."""
    import polars as pl

    cols = ["timestamp", "price", "quantity"]

    def f_pqdm():
        return pqdm.Dataset.open(base).scan(cols)

    def f_polars():
        return pl.scan_parquet(base + "/**/*.parquet", hive_partitioning=True).select(cols).collect()

    return {"pqdm": f_pqdm, "Polars": f_polars}


def latest_tools(pqdm, base):
    import duckdb
    import polars as pl
    import pyarrow.dataset as pads

    def l_pqdm():
        return pqdm.Dataset.open(base).latest(by=["symbol"])

    def l_polars():
        return pl.scan_parquet(base + "/**/*.parquet", hive_partitioning=True).group_by("symbol").agg(
            pl.col("timestamp").max()).collect()

    def l_pyarrow():
        t = pads.dataset(base, format="parquet", partitioning="hive").to_table(columns=["symbol", "timestamp"])
        return t.group_by("symbol").aggregate([("timestamp", "max")])

    def l_duckdb():
        return duckdb.connect().execute(
            f"SELECT symbol, max(timestamp) FROM read_parquet('{base}/**/*.parquet', hive_partitioning=true) GROUP BY symbol").fetchall()

    return {"pqdm": l_pqdm, "Polars": l_polars, "pyarrow": l_pyarrow, "DuckDB": l_duckdb}


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t, out


def run_rounds(tools, rounds, prepare=None):
    """Median seconds per tool; `prepare(tool)` gives each call its arguments (untimed)."""
    times = {name: [] for name in tools}
    names = list(tools)
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            args = prepare(name) if prepare else ()
            times[name].append(timed(tools[name], *args)[0])
    return {name: statistics.median(ts) for name, ts in times.items()}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=20_000_000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--target", default=os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target"))
    p.add_argument("--work", default=None, help="scratch folder (default: a temporary one)")
    args = p.parse_args()
    pqdm, origin = import_pqdm(args.target)
    import duckdb
    import pandas
    import polars as pl
    import pyarrow

    work = args.work or tempfile.mkdtemp(prefix="pqdm-bench-")
    os.makedirs(work, exist_ok=True)
    t, frame = timed(aggtrades, args.rows, work)
    print(f"{args.rows:,} aggTrades rows made in {t:.1f} s; pqdm from {origin}", flush=True)

    def fresh(name):
        out = os.path.join(work, "w1-" + name.lower())
        shutil.rmtree(out, ignore_errors=True)
        return (out,)

    results = {}
    results["(1) write the frame, partitioned"] = run_rounds(write_tools(pqdm, frame), args.rounds, fresh)
    base = os.path.join(work, "w1-pqdm")
    if not os.path.exists(os.path.join(base, "_manifest.json")):
        fresh("pqdm")
        write_tools(pqdm, frame)["pqdm"](base)
    del frame
    lo, hi = START_MS + 10 * DAY_MS, START_MS + 17 * DAY_MS
    rows = len(scan_tools(pqdm, base, lo, hi)["pqdm"]())
    for name, fn in scan_tools(pqdm, base, lo, hi).items():
        assert len(fn()) == rows, name  # every tool returns the same rows
    results[f"(2) pruned scan to pandas ({rows:,} rows)"] = run_rounds(scan_tools(pqdm, base, lo, hi), args.rounds)
    results["(2b) full scan of 3 columns to Polars"] = run_rounds(full_scan_tools(pqdm, base), args.rounds)
    results["(3) latest per symbol"] = run_rounds(latest_tools(pqdm, base), args.rounds)

    lines = [
        f"pqdm {pqdm.__version__} (Python, {origin.split('/')[-1] if '/' in origin else origin}), Polars {pl.__version__}, "
        f"pyarrow {pyarrow.__version__}, DuckDB {duckdb.__version__}, pandas {pandas.__version__}; "
        f"{args.rows:,} rows, median of {args.rounds} rounds, {os.cpu_count()} cores",
        "",
        "| workload | tool | seconds | pqdm / tool |",
        "|---|---|---:|---:|",
    ]
    for workload, times in results.items():
        for name, secs in times.items():
            ratio = "" if name == "pqdm" else f"{times['pqdm'] / secs:.2f}x"
            lines.append(f"| {workload} | {name} | {secs:.3f} | {ratio} |")
            workload = ""
    text = "\n".join(lines)
    print(text)
    out = os.path.join(ROOT, "target", "bench")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "python.md"), "w") as f:
        f.write(text + "\n")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
