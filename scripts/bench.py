#!/usr/bin/env python3
"""pqdm against pyarrow.dataset, DuckDB and Polars (Python) on the same work, in the same run.

    python3 scripts/bench.py [--rows 20000000] [--rounds 3] [--workloads 1,2,3,4,5,6,7] [--pqdm PATH]

Generates deterministic Binance-shaped data (aggTrades and 1m klines, 5 symbols, 30 days), runs
every workload with each tool as a child process, alternating the order each round, and prints
a Markdown table of median whole-process wall time, median peak RSS (from wait4) and the ratio
pqdm / peer. The table is also written to target/bench/results.md. The Python peers live in a
virtualenv the script manages (target/bench-venv).
"""
import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
VENV = os.path.join(ROOT, "target", "bench-venv")
PEERS = ["pyarrow", "duckdb", "polars", "numpy"]
SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT"]
START_MS = 1704067200000  # 2024-01-01
DAY_MS = 86_400_000
PY = sys.executable


def ensure_venv():
    """Re-executes this script inside the managed virtualenv (created on first use)."""
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        return
    py = os.path.join(VENV, "bin", "python")
    if not os.path.exists(os.path.join(VENV, ".ready")):
        subprocess.check_call([sys.executable, "-m", "venv", VENV])
        subprocess.check_call([py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *PEERS])
        open(os.path.join(VENV, ".ready"), "w").close()
    os.execv(py, [py, *sys.argv])


def measure(cmd, env=None):
    """Runs `cmd`; returns (wall seconds, peak RSS bytes) of the child, or raises with its stderr."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{err}")
    return wall, usage.ru_maxrss * 1024


def py_cmd(code, *args):
    return [PY, "-c", code, *map(str, args)]


# ---------------------------------------------------------------- data


def gen_aggtrades(path, rows):
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(7)
    ids = np.arange(rows, dtype=np.int64)
    ts = START_MS + (ids // len(SYMBOLS)) * (30 * DAY_MS // max(1, rows // len(SYMBOLS)))
    table = pa.table({
        "agg_trade_id": ids,
        "price": 100 + rng.random(rows) * 10,
        "quantity": rng.random(rows),
        "first_trade_id": ids,
        "last_trade_id": ids,
        "timestamp": ts,
        "is_buyer_maker": rng.random(rows) < 0.5,
        "is_best_match": np.ones(rows, dtype=bool),
        "symbol": pa.array(np.array(SYMBOLS)[ids % len(SYMBOLS)]),
        "exchange": pa.array(["BINANCE"] * rows).dictionary_encode().cast(pa.string()),
    })
    pq.write_table(table, path, row_group_size=1_000_000)


def gen_kline_csvs(folder, days):
    os.makedirs(folder, exist_ok=True)
    for s, symbol in enumerate(SYMBOLS):
        for d in range(days):
            day = time.strftime("%Y-%m-%d", time.gmtime((START_MS + d * DAY_MS) / 1000))
            lines = []
            for m in range(1440):
                t = START_MS + d * DAY_MS + m * 60_000
                p = 100.0 + s + (m % 60) * 0.01
                lines.append(f"{t},{p:.2f},{p + 0.5:.2f},{p - 0.5:.2f},{p:.2f},12.5,{t + 59999},1250.0,42,6.0,600.0,0\n")
            with open(os.path.join(folder, f"{symbol}-1m-{day}.csv"), "w") as f:
                f.writelines(lines)


def gen_klines_parquet(path, days, first_day=0, price=1.5):
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = days * 1440
    ts = START_MS + first_day * DAY_MS + np.arange(n, dtype=np.int64) * 60_000
    cols = {"timestamp": np.tile(ts, 2), "symbol": ["BTCUSDT"] * n + ["ETHUSDT"] * n}
    for c in ["open", "high", "low", "close", "volume"]:
        cols[c] = np.full(2 * n, float(price))
    pq.write_table(pa.table(cols), path)


# ---------------------------------------------------------------- peer scripts

DERIVE_PA = """
import sys, pyarrow as pa, pyarrow.compute as pc, pyarrow.dataset as ds, pyarrow.parquet as pq
def with_dates(t):
    dt = pc.cast(t["timestamp"], pa.timestamp("ms"))
    return t.append_column("year", pc.year(dt)).append_column("month", pc.month(dt)).append_column("day", pc.day(dt))
"""

WRITE = {
    "pyarrow": DERIVE_PA + """
t = with_dates(pq.read_table(sys.argv[1]))
ds.write_dataset(t, sys.argv[2], format="parquet", partitioning=["exchange", "symbol", "year", "month", "day"],
                 partitioning_flavor="hive", existing_data_behavior="overwrite_or_ignore")
""",
    "duckdb": """
import sys, duckdb
duckdb.connect().execute(f\"\"\"COPY (SELECT *, year(make_timestamp(timestamp * 1000)) AS year, month(make_timestamp(timestamp * 1000)) AS month,
  day(make_timestamp(timestamp * 1000)) AS day FROM read_parquet('{sys.argv[1]}'))
  TO '{sys.argv[2]}' (FORMAT parquet, PARTITION_BY (exchange, symbol, year, month, day))\"\"\")
""",
    "polars": """
import sys, polars as pl
dt = pl.from_epoch("timestamp", time_unit="ms")
lf = pl.scan_parquet(sys.argv[1]).with_columns(year=dt.dt.year(), month=dt.dt.month(), day=dt.dt.day())
lf.sink_parquet(pl.PartitionBy(sys.argv[2], key=["exchange", "symbol", "year", "month", "day"]), mkdir=True)
""",
}

KLINE_COLS = ["timestamp", "open", "high", "low", "close", "volume", "close_time", "quote_volume", "trades",
              "taker_buy_volume", "taker_buy_quote_volume", "ignore"]

CSV = {
    "pyarrow": DERIVE_PA + f"""
import glob, os, pyarrow.csv as pcsv
cols = {KLINE_COLS!r}
tables = []
for f in sorted(glob.glob(sys.argv[1] + "/*.csv")):
    t = pcsv.read_csv(f, read_options=pcsv.ReadOptions(column_names=cols))
    sym, tf = os.path.basename(f).split("-")[:2]
    tables.append(t.append_column("symbol", pa.array([sym] * len(t))).append_column("timeframe", pa.array([tf] * len(t))))
t = with_dates(pa.concat_tables(tables))
ds.write_dataset(t, sys.argv[2], format="parquet", partitioning=["symbol", "timeframe", "year", "month", "day"],
                 partitioning_flavor="hive", existing_data_behavior="overwrite_or_ignore")
""",
    "duckdb": f"""
import sys, duckdb
cols = {{c: "DOUBLE" for c in {KLINE_COLS!r}}}
cols.update(timestamp="BIGINT", close_time="BIGINT", trades="BIGINT")
duckdb.connect().execute(f\"\"\"COPY (SELECT * EXCLUDE (filename), split_part(parse_filename(filename), '-', 1) AS symbol,
  split_part(parse_filename(filename), '-', 2) AS timeframe, year(make_timestamp(timestamp * 1000)) AS year,
  month(make_timestamp(timestamp * 1000)) AS month, day(make_timestamp(timestamp * 1000)) AS day
  FROM read_csv('{{sys.argv[1]}}/*.csv', header=false, columns={{cols}}, filename=true))
  TO '{{sys.argv[2]}}' (FORMAT parquet, PARTITION_BY (symbol, timeframe, year, month, day))\"\"\")
""",
    "polars": f"""
import sys, polars as pl
name = pl.col("path").str.split("/").list.last().str.split("-")
dt = pl.from_epoch("timestamp", time_unit="ms")
lf = (pl.scan_csv(sys.argv[1] + "/*.csv", has_header=False, new_columns={KLINE_COLS!r}, include_file_paths="path")
      .with_columns(symbol=name.list.get(0), timeframe=name.list.get(1), year=dt.dt.year(), month=dt.dt.month(), day=dt.dt.day())
      .drop("path"))
lf.sink_parquet(pl.PartitionBy(sys.argv[2], key=["symbol", "timeframe", "year", "month", "day"]), mkdir=True)
""",
}

PRUNED = {
    "pyarrow": """
import sys, pyarrow.dataset as ds, pyarrow.parquet as pq
d = ds.dataset(sys.argv[1], format="parquet", partitioning="hive")
f = (ds.field("symbol") == "ETHUSDT") & (ds.field("timestamp") >= int(sys.argv[3])) & (ds.field("timestamp") < int(sys.argv[4]))
pq.write_table(d.to_table(columns=["timestamp", "price", "quantity"], filter=f), sys.argv[2])
""",
    "duckdb": """
import sys, duckdb
duckdb.connect().execute(f\"\"\"COPY (SELECT timestamp, price, quantity FROM read_parquet('{sys.argv[1]}/**/*.parquet', hive_partitioning=true)
  WHERE symbol = 'ETHUSDT' AND timestamp >= {sys.argv[3]} AND timestamp < {sys.argv[4]}) TO '{sys.argv[2]}' (FORMAT parquet)\"\"\")
""",
    "polars": """
import sys, polars as pl
(pl.scan_parquet(sys.argv[1] + "/**/*.parquet", hive_partitioning=True)
   .filter((pl.col("symbol") == "ETHUSDT") & (pl.col("timestamp") >= int(sys.argv[3])) & (pl.col("timestamp") < int(sys.argv[4])))
   .select("timestamp", "price", "quantity").sink_parquet(sys.argv[2]))
""",
}

VWAP = {
    "pyarrow": """
import sys, pyarrow as pa, pyarrow.compute as pc, pyarrow.dataset as ds, pyarrow.parquet as pq
t = ds.dataset(sys.argv[1], format="parquet", partitioning="hive").to_table(columns=["symbol", "timestamp", "price", "quantity"])
t = t.append_column("day", pc.divide(t["timestamp"], 86400000)).append_column("pq", pc.multiply(t["price"], t["quantity"]))
g = t.group_by(["symbol", "day"]).aggregate([("pq", "sum"), ("quantity", "sum")])
pq.write_table(g.append_column("vwap", pc.divide(g["pq_sum"], g["quantity_sum"])), sys.argv[2])
""",
    "duckdb": """
import sys, duckdb
duckdb.connect().execute(f\"\"\"COPY (SELECT symbol, timestamp // 86400000 AS day, sum(price * quantity) / sum(quantity) AS vwap, sum(quantity) AS volume
  FROM read_parquet('{sys.argv[1]}/**/*.parquet', hive_partitioning=true) GROUP BY ALL) TO '{sys.argv[2]}' (FORMAT parquet)\"\"\")
""",
    "polars": """
import sys, polars as pl
(pl.scan_parquet(sys.argv[1] + "/**/*.parquet", hive_partitioning=True)
   .group_by("symbol", (pl.col("timestamp") // 86400000).alias("day"))
   .agg(vwap=(pl.col("price") * pl.col("quantity")).sum() / pl.col("quantity").sum(), volume=pl.col("quantity").sum())
   .sink_parquet(sys.argv[2]))
""",
}

LATEST = {
    "pyarrow": """
import sys, pyarrow.dataset as ds
t = ds.dataset(sys.argv[1], format="parquet", partitioning="hive").to_table(columns=["symbol", "timestamp"])
print(t.group_by("symbol").aggregate([("timestamp", "max")]))
""",
    "duckdb": """
import sys, duckdb
print(duckdb.connect().execute(f"SELECT symbol, max(timestamp) FROM read_parquet('{sys.argv[1]}/**/*.parquet', hive_partitioning=true) GROUP BY symbol").fetchall())
""",
    "polars": """
import sys, polars as pl
print(pl.scan_parquet(sys.argv[1] + "/**/*.parquet", hive_partitioning=True).group_by("symbol").agg(pl.col("timestamp").max()).collect())
""",
}

COMPACT = {
    "pyarrow": """
import sys, glob, os, shutil, pyarrow.parquet as pq, pyarrow.dataset as ds
for part in sorted({os.path.dirname(f) for f in glob.glob(sys.argv[1] + "/**/*.parquet", recursive=True)}):
    files = sorted(glob.glob(part + "/*.parquet"))
    t = ds.dataset(files, format="parquet").to_table()
    pq.write_table(t, part + "/compacted.tmp")
    for f in files: os.remove(f)
    os.rename(part + "/compacted.tmp", part + "/compacted.parquet")
""",
    "duckdb": """
import sys, glob, os, duckdb
con = duckdb.connect()
for part in sorted({os.path.dirname(f) for f in glob.glob(sys.argv[1] + "/**/*.parquet", recursive=True)}):
    files = sorted(glob.glob(part + "/*.parquet"))
    con.execute(f"COPY (SELECT * FROM read_parquet({files!r})) TO '{part}/compacted.tmp' (FORMAT parquet)")
    for f in files: os.remove(f)
    os.rename(part + "/compacted.tmp", part + "/compacted.parquet")
""",
    "polars": """
import sys, glob, os, polars as pl
for part in sorted({os.path.dirname(f) for f in glob.glob(sys.argv[1] + "/**/*.parquet", recursive=True)}):
    files = sorted(glob.glob(part + "/*.parquet"))
    pl.scan_parquet(files, hive_partitioning=False).sink_parquet(part + "/compacted.tmp")
    for f in files: os.remove(f)
    os.rename(part + "/compacted.tmp", part + "/compacted.parquet")
""",
}


# ---------------------------------------------------------------- workloads


class Bench:
    def __init__(self, args):
        self.args = args
        self.work = os.path.abspath(args.work)
        self.pqdm = args.pqdm
        self.rows = []  # (workload, tool, wall list, rss list)

    def path(self, *parts):
        return os.path.join(self.work, *parts)

    def fresh(self, *parts):
        p = self.path(*parts)
        shutil.rmtree(p, ignore_errors=True)
        if os.path.exists(p):
            os.remove(p)
        return p

    def set_aside(self, *parts):
        """Moves the folder at `parts` out of the way, to be removed by `remove_set_aside` when
        every workload has run: on ext4, a tool that creates many folders right after a large
        tree was removed searches past every recently freed inode for each new one (an append
        into 36,500 partitions measured 16 s of kernel time after a quiet disk, 47 s right after
        the removal of the same tree), which would time the removal, not the tool."""
        p = self.path(*parts)
        if os.path.exists(p):
            aside = self.path("set-aside")
            os.makedirs(aside, exist_ok=True)
            os.rename(p, os.path.join(aside, f"{len(os.listdir(aside))}"))
        return p

    @staticmethod
    def warm(path):
        """Reads `path` once, so every tool starts with its input in the page cache (a tool
        run after one that held 8 GiB would otherwise read it from the disk, and the others not)."""
        with open(path, "rb") as f:
            while f.read(16 << 20):
                pass

    def remove_set_aside(self):
        self.fresh("set-aside")

    def run(self, name, cmds, before=None):
        """Runs each tool's command `rounds` times, alternating the order; `before(tool)` resets state."""
        results = {tool: ([], []) for tool in cmds}
        tools = list(cmds)
        for r in range(self.args.rounds):
            order = tools if r % 2 == 0 else tools[::-1]
            for tool in order:
                if before:
                    before(tool)
                # Every tool starts with nothing of the last one's left to write back: the first
                # sync of a tool that syncs (pqdm, before its commit point) would otherwise wait
                # for the writes other tools left in the page cache (2 s after a 20M-row write).
                os.sync()
                wall, rss = measure(cmds[tool])
                results[tool][0].append(wall)
                results[tool][1].append(rss)
        for tool in tools:
            self.rows.append((name, tool, *results[tool]))
            if not self.args.quiet:
                rounds = ", ".join(f"{w:.2f}" for w in results[tool][0])
                print(f"  {name:<34} {tool:<14} {statistics.median(results[tool][0]):8.3f} s "
                      f"{statistics.median(results[tool][1]) / 2**20:8.0f} MiB  (rounds: {rounds} s)", flush=True)

    def w1_write(self):
        flat = self.path("flat.parquet")
        out = {t: self.path("w1", t) for t in ["pqdm", "pqdm-upsert", *WRITE]}
        cmds = {"pqdm": [self.pqdm, "ingest", flat, "--dataset", out["pqdm"], "--kind", "aggtrades", "--mode", "append", "--quiet"],
                "pqdm-upsert": [self.pqdm, "ingest", flat, "--dataset", out["pqdm-upsert"], "--kind", "aggtrades", "--quiet"]}
        cmds.update({t: py_cmd(code, flat, out[t]) for t, code in WRITE.items()})
        self.run("(1) flat Parquet -> hive, snappy", cmds, before=lambda t: self.fresh("w1", t))

    def w2_csv(self):
        src = self.path("csv")
        out = {t: self.path("w2", t) for t in ["pqdm", *CSV]}
        cmds = {"pqdm": [self.pqdm, "ingest", src, "--dataset", out["pqdm"], "--kind", "klines", "--mode", "append", "--quiet"]}
        cmds.update({t: py_cmd(code, src, out[t]) for t, code in CSV.items()})
        self.run(f"(2) {len(os.listdir(src))} kline CSVs -> dataset", cmds, before=lambda t: self.fresh("w2", t))

    def dataset(self):
        """pqdm's aggTrades dataset, which every tool reads in (3)-(5)."""
        base = self.path("agg")
        if not os.path.exists(os.path.join(base, "_manifest.json")):
            subprocess.check_call([self.pqdm, "ingest", self.path("flat.parquet"), "--dataset", base, "--kind", "aggtrades", "--quiet"])
        return base

    def w3_pruned(self):
        base, out = self.dataset(), self.path("w3.parquet")
        lo, hi = START_MS + 10 * DAY_MS, START_MS + 17 * DAY_MS
        cmds = {"pqdm": [self.pqdm, "scan", base, "--filter", "symbol == ETHUSDT", "--filter", f"timestamp >= {lo}",
                         "--filter", f"timestamp < {hi}", "--columns", "timestamp,price,quantity", "--format", "parquet", "--output", out]}
        cmds.update({t: py_cmd(code, base, out, lo, hi) for t, code in PRUNED.items()})
        self.run("(3) pruned scan 1 symbol, 7 of 30 days", cmds)

    def w4_vwap(self):
        base, out = self.dataset(), self.path("w4.parquet")
        vwap = self.args.pqdm_vwap or os.path.join(os.path.dirname(self.pqdm), "examples", "vwap")
        cmds = {"pqdm (library)": [vwap, base, out]} if os.path.exists(vwap) else {}
        cmds.update({t: py_cmd(code, base, out) for t, code in VWAP.items()})
        self.run("(4) VWAP per symbol per day", cmds)

    def w5_latest(self):
        one = self.dataset()
        ten = self.path("agg10")
        if not os.path.exists(os.path.join(ten, "_manifest.json")):
            per_file = max(1000, self.args.rows // 1500)
            subprocess.check_call([self.pqdm, "ingest", self.path("flat.parquet"), "--dataset", ten, "--kind", "aggtrades",
                                   "--mode", "append", "--max-rows-per-file", str(per_file), "--quiet"])
        for label, base in [("1x", one), ("10x", ten)]:
            files = sum(1 for _, _, fs in os.walk(base) for f in fs if f.endswith(".parquet"))
            cmds = {"pqdm": [self.pqdm, "latest", base, "--by", "symbol", "--json"]}
            cmds.update({t: py_cmd(code, base) for t, code in LATEST.items()})
            self.run(f"(5) latest per symbol, {label} ({files} files)", cmds)

    def w6_upsert(self):
        # Each round upserts a day of other prices (every row replaced, a commit made): the same
        # file again would be skipped by the sources index, and the same rows would be a no-op.
        day = self.path("day.parquet")
        prices = iter(range(2, 10_000))

        def new_prices(_tool):
            generate("klines", day, 1, 20, next(prices))

        for days in (30, 300):
            base = self.path(f"k{days}")
            if not os.path.exists(os.path.join(base, "_manifest.json")):
                src = self.path(f"k{days}.parquet")
                generate("klines", src, days, 0)
                subprocess.check_call([self.pqdm, "ingest", src, "--dataset", base, "--kind", "klines", "--exchange", "BINANCE",
                                       "--timeframe", "1m", "--quiet"])
            cmd = [self.pqdm, "ingest", day, "--dataset", base, "--exchange", "BINANCE", "--timeframe", "1m", "--quiet",
                   "--force"]
            self.run(f"(6) upsert 1 day into {days} days", {"pqdm": cmd}, before=new_prices)

    def w7_compact(self):
        src = self.path("small")
        if not os.path.exists(os.path.join(src, "_manifest.json")):
            per_file = max(100, self.args.rows // 1000)
            subprocess.check_call([self.pqdm, "ingest", self.path("flat.parquet"), "--dataset", src, "--kind", "aggtrades",
                                   "--mode", "append", "--partition-by", "exchange,symbol", "--max-rows-per-file", str(per_file),
                                   "--quiet"])
        self.compact_copies(src, "w7", "(7) compact {files} small files")

    def w8_compact_quarters(self):
        """Compaction whose partitions must be sorted: the rows appended as four interleaved
        quarters (every fourth row each), so each partition holds four files whose time ranges
        overlap. pqdm writes each partition sorted by time (holding it for the sort); the
        peers' scripts (7) only copy."""
        src = self.path("quarters")
        if not os.path.exists(os.path.join(src, "_manifest.json")):
            for i in range(4):
                quarter = self.path(f"quarter{i}.parquet")
                subprocess.check_call(py_cmd(
                    "import sys, polars as pl; pl.scan_parquet(sys.argv[1]).filter(pl.int_range(pl.len()) % 4 == int(sys.argv[3]))"
                    ".sink_parquet(sys.argv[2])", self.path("flat.parquet"), quarter, str(i)))
                subprocess.check_call([self.pqdm, "ingest", quarter, "--dataset", src, "--kind", "aggtrades",
                                       "--mode", "append", "--quiet"])
                os.remove(quarter)
        self.compact_copies(src, "w8", "(8) compact {files} files, 4 overlapping per partition")

    def compact_copies(self, src, work, label):
        """Every tool compacts its own fresh copy of the dataset `src` (in folder `work`) into one
        file per partition; `label` names the workload ({files}: the data files of `src`)."""
        files = sum(1 for _, _, fs in os.walk(src) for f in fs if f.endswith(".parquet"))
        target = self.path(work)
        cmds = {"pqdm": [self.pqdm, "compact", target, "--target-rows", "100000000", "--quiet"]}
        cmds.update({t: py_cmd(code, target) for t, code in COMPACT.items()})

        def reset(_tool):
            self.fresh(work)
            shutil.copytree(src, target)
            # The copy's dirty pages are the setup's, not the tool's: flushed before the clock
            # starts (pqdm syncs the filesystem before its commit point, the peers never do).
            os.sync()

        self.run(label.format(files=files), cmds, before=reset)

    def table(self):
        ref = {}
        lines = ["| workload | tool | median wall (s) | median peak RSS (MiB) | pqdm/tool wall | pqdm/tool RSS |", "|---|---|---|---|---|---|"]
        for name, tool, walls, rss in self.rows:
            if tool.startswith("pqdm") and name not in ref:
                ref[name] = (statistics.median(walls), statistics.median(rss))
        for name, tool, walls, rss in self.rows:
            w, m = statistics.median(walls), statistics.median(rss)
            pw, pm = ref.get(name, (None, None))
            ratio = (f"{pw / w:.2f}", f"{pm / m:.2f}") if pw and not tool.startswith("pqdm") else ("", "")
            lines.append(f"| {name} | {tool} | {w:.3f} | {m / 2**20:.0f} | {ratio[0]} | {ratio[1]} |")
        return "\n".join(lines)


GENERATORS = {"aggtrades": lambda p, n: gen_aggtrades(p, int(n)), "csv": lambda p, d: gen_kline_csvs(p, int(d)),
              "klines": lambda p, d, first, price=1.5: gen_klines_parquet(p, int(d), int(first), float(price))}


def generate_with(script, what, *args):
    """Generates data by running `script --generate what args` in a child process, so that this
    one stays small: a child forked from a large process inherits its peak RSS, which would
    hide the tools' own."""
    subprocess.check_call([PY, os.path.abspath(script), "--generate", what, *map(str, args)])


def generate(what, *args):
    generate_with(__file__, what, *args)


def default_pqdm():
    """The newest release binary of CARGO_TARGET_DIR (or the CI's ~/.cache/pqdm-target) and target/."""
    dirs = [os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/pqdm-target")), os.path.join(ROOT, "target")]
    built = [p for p in (os.path.join(d, "release", "pqdm") for d in dirs) if os.path.exists(p)]
    return max(built, key=os.path.getmtime) if built else os.path.join(ROOT, "target", "release", "pqdm")


def report(bench, work, script):
    """Prints the machine, the peers' versions, the command and the table; writes it to WORK/results.md."""
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    versions = subprocess.check_output(py_cmd("import duckdb, polars, pyarrow; print(f'pyarrow {pyarrow.__version__}, duckdb {duckdb.__version__}, polars {polars.__version__}')")).decode().strip()
    header = (f"Machine: {os.cpu_count()} cores, {cpu}, {mem:.0f} GiB; {versions}\n"
              f"Command: python3 scripts/{script} {' '.join(sys.argv[1:])}\n")
    text = header + "\n" + bench.table() + "\n"
    print("\n" + text)
    with open(os.path.join(work, "results.md"), "w") as f:
        f.write(text)


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--generate":
        GENERATORS[sys.argv[2]](*sys.argv[3:])
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=20_000_000, help="aggTrades rows (default 20,000,000)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workloads", default="1,2,3,4,5,6,7,8")
    ap.add_argument("--work", default=os.path.join(ROOT, "target", "bench"))
    ap.add_argument("--pqdm", default=default_pqdm())
    ap.add_argument("--pqdm-vwap", default=None, help="the vwap example binary (default: beside --pqdm)")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    ensure_venv()
    os.makedirs(args.work, exist_ok=True)
    bench = Bench(args)
    flat = bench.path("flat.parquet")
    stamp = bench.path(f"flat-{args.rows}.ok")
    if not os.path.exists(stamp):
        for stale in os.listdir(args.work):
            bench.fresh(stale)
        print(f"generating {args.rows} aggTrades rows and kline CSVs under {args.work}", flush=True)
        generate("aggtrades", flat, args.rows)
        generate("csv", bench.path("csv"), 30)
        open(stamp, "w").close()
    workloads = {"1": bench.w1_write, "2": bench.w2_csv, "3": bench.w3_pruned, "4": bench.w4_vwap,
                 "5": bench.w5_latest, "6": bench.w6_upsert, "7": bench.w7_compact,
                 "8": bench.w8_compact_quarters}
    for w in args.workloads.split(","):
        workloads[w.strip()]()
    report(bench, args.work, "bench.py")


if __name__ == "__main__":
    main()
