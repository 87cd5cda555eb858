#!/usr/bin/env python3
"""Commits at scale: what a one-day upsert, opening a dataset and `latest` cost at 1,000 and at
100,000 files, and opening after many commits; delta-rs opens the same tables in the same run.

    python3 scripts/bench_commits.py [--rounds 3] [--commits 1000] [--workloads upsert,upsert_tail,open,open_log,latest,history,travel]

Builds two klines datasets of one candle a day (klines, partitioned by exchange/symbol/timeframe/
year/month/day): 100 symbols x 10 days (1,000 files) and 100 symbols x 1,000 days (100,000
files), and one of COMMITS one-row commits. Measures whole processes (wall time and peak RSS,
as scripts/bench.py does; delta-rs, Python `deltalake`, in the same virtualenv):

- upsert:  a new price for the last day of every symbol (100 partitions, every row replaced),
           upserted into each dataset (`pqdm ingest --force`, a new price each round);
- upsert_tail: the same with 99 - ROUNDS up to 98 entries after the newest checkpoint (each
           dataset is first upserted into until it has 99 - ROUNDS: the most a daily pipeline
           meets before the next checkpoint, every 100 commits; the entries all touch the same
           day, so none of their files is left out of the write's snapshot by its path);
- open:    `pqdm info` (opens the current version) against delta-rs opening the same table
           through its log (`DeltaTable(path)` and its file list);
- open_log: `pqdm info` with `_manifest.json` moved aside: pqdm opens through the log alone (the
           newest checkpoint and the entries after it), as delta-rs does;
- latest:  `pqdm latest` (the latest timestamp per symbol);
- history: the same two after COMMITS commits (`pqdm info`; delta-rs from its checkpoint);
- travel:  one symbol (1,000 files) of the version before the newest of the 100,000-file dataset
           (`pqdm scan --version`, to a Parquet file) against delta-rs reading the same partition
           of the same version (`DeltaTable(version=...)`, `to_pyarrow_table(partitions=...)`).

Also prints, per dataset, the bytes each commit adds to the history (its Delta log entry, the
commit point) and rewrites (`_manifest.json`), and the log files an opener of the newest version
reads.
Prints a Markdown table (written to target/bench-commits/results.md too).
"""
import argparse
import glob
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the measuring, the virtualenv and the table)

DELTA_OPEN = """
import sys
from deltalake import DeltaTable
t = DeltaTable(sys.argv[1])
print(t.version(), len(t.file_uris()))
"""

DELTA_TRAVEL = """
import sys, warnings
from deltalake import DeltaTable
warnings.simplefilter("ignore", DeprecationWarning)
t = DeltaTable(sys.argv[1], version=int(sys.argv[2]))
print(t.to_pyarrow_table(partitions=[("symbol", "=", sys.argv[3])]).num_rows)
"""

DELTALAKE = "deltalake==1.6.6"


def gen_days(path, symbols, days, first_day, price):
    """One candle a day for SYMBOLS x DAYS from day FIRST_DAY, every close PRICE."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    symbols, days, first_day, price = int(symbols), int(days), int(first_day), float(price)
    ts = bench.START_MS + np.arange(first_day, first_day + days, dtype=np.int64) * bench.DAY_MS
    n = symbols * len(ts)
    pq.write_table(pa.table({
        "timestamp": np.tile(ts, symbols),
        "open": np.full(n, price), "high": np.full(n, price), "low": np.full(n, price), "close": np.full(n, price),
        "volume": np.ones(n),
        "symbol": pa.array([f"S{s:03d}USDT" for s in range(symbols) for _ in range(len(ts))]),
    }), path)


def gen_ones(folder, n):
    """N one-candle files, one day apart (one commit each)."""
    os.makedirs(folder, exist_ok=True)
    for i in range(int(n)):
        gen_days(os.path.join(folder, f"{i:05d}.parquet"), 1, 1, i, 1.0)


def ensure_deltalake():
    """delta-rs beside the peers in the benchmark's virtualenv."""
    try:
        import deltalake  # noqa: F401
    except ImportError:
        subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", DELTALAKE])


def tree_bytes(pattern):
    return sum(os.path.getsize(p) for p in glob.glob(pattern))


class Commits(bench.Bench):
    SIZES = [(10, "1,000"), (1000, "100,000")]

    def ingest(self, src, base, *extra):
        subprocess.check_call([self.pqdm, "ingest", src, "--dataset", base, "--kind", "klines", "--exchange", "BINANCE",
                               "--timeframe", "1m", "--quiet", *extra], stdout=subprocess.DEVNULL)

    def dataset(self, days):
        base = self.path(f"d{days}")
        if not os.path.exists(os.path.join(base, "_manifest.json")):
            src = self.path(f"d{days}.parquet")
            bench.generate_with(__file__, "days", src, 100, days, 0, 1.0)
            print(f"building the {days * 100:,}-file dataset", flush=True)
            self.ingest(src, base, "--mode", "append")
        return base

    def upsert(self):
        for days, files in self.SIZES:
            base = self.dataset(days)
            day = self.path(f"day{days}.parquet")
            prices = iter(range(2, 10_000))

            def new_price(_tool):
                bench.generate_with(__file__, "days", day, 100, 1, days - 1, next(prices))

            cmd = [self.pqdm, "ingest", day, "--dataset", base, "--exchange", "BINANCE", "--timeframe", "1m",
                   "--quiet", "--force"]
            self.run(f"upsert 1 day x 100 symbols into {files} files", {"pqdm": cmd}, before=new_price)
            self.sizes(base, files)

    def upsert_tail(self):
        for days, files in self.SIZES:
            base = self.dataset(days)
            day = self.path(f"day{days}.parquet")
            prices = iter(range(20_000, 30_000))

            def new_price(_tool=None):
                bench.generate_with(__file__, "days", day, 100, 1, days - 1, next(prices))

            cmd = [self.pqdm, "ingest", day, "--dataset", base, "--exchange", "BINANCE", "--timeframe", "1m",
                   "--quiet", "--force"]
            before = tail_after_checkpoint(base)
            # The rounds end one entry before the next checkpoint (written by the commit of a
            # multiple of 100).
            first = 99 - self.args.rounds
            while tail_after_checkpoint(base) != first:
                new_price()
                subprocess.check_call(cmd, stdout=subprocess.DEVNULL)
            print(f"  ({files} files: {before} -> {first} entries after the newest checkpoint)", flush=True)
            self.run(f"upsert 1 day x 100 symbols into {files} files, {first}-98 entries after the checkpoint",
                     {"pqdm": cmd}, before=new_price)

    def sizes(self, base, files):
        entries = sorted(glob.glob(os.path.join(base, "_delta_log", "*.json")))
        versions = glob.glob(os.path.join(base, "_pqdm", "versions", "*.json"))
        self.notes.append(
            f"{files} files: a commit adds its Delta log entry to the history ({os.path.getsize(entries[-1]) / 2**10:.1f} KiB, "
            f"the commit point) and rewrites `_manifest.json` ({os.path.getsize(os.path.join(base, '_manifest.json')) / 2**20:.2f} MiB); "
            f"{len(versions)} full version copies under `_pqdm/versions/`")

    def open(self):
        for days, files in self.SIZES:
            base = self.dataset(days)
            self.run(f"open the {files}-file dataset", {"pqdm": [self.pqdm, "info", base, "--json"],
                                                        "delta-rs": bench.py_cmd(DELTA_OPEN, base)})

    def open_log(self):
        """pqdm opening through the log alone (checkpoint + tail), as it does when `_manifest.json`
        is missing or not the newest entry's copy: the file is moved aside while measured."""
        for days, files in self.SIZES:
            base = self.dataset(days)
            copy = os.path.join(base, "_manifest.json")
            os.rename(copy, copy + ".aside")
            try:
                self.run(f"open the {files}-file dataset through its log", {"pqdm": [self.pqdm, "info", base, "--json"]})
            finally:
                os.rename(copy + ".aside", copy)

    def latest(self):
        for days, files in self.SIZES:
            base = self.dataset(days)
            self.run(f"latest per symbol, {files} files", {"pqdm": [self.pqdm, "latest", base, "--by", "symbol", "--json"]})

    def travel(self):
        base = self.dataset(1000)
        newest = max(int(os.path.basename(p).split(".")[0])
                     for p in glob.glob(os.path.join(base, "_delta_log", "*.json")))
        older, out = newest - 1, self.path("travel.parquet")
        self.run(f"one symbol (1,000 files) of version {older} of the 100,000-file dataset", {
            "pqdm": [self.pqdm, "scan", base, "--version", str(older), "--filter", "symbol == S001USDT",
                     "--format", "parquet", "--output", out, "--quiet"],
            "delta-rs": bench.py_cmd(DELTA_TRAVEL, base, str(older), "S001USDT"),
        })

    def history(self):
        n = self.args.commits
        base = self.path(f"h{n}")
        if not os.path.exists(os.path.join(base, "_manifest.json")):
            print(f"making {n} commits", flush=True)
            ones = self.path(f"ones{n}")
            bench.generate_with(__file__, "ones", ones, n)
            for name in sorted(os.listdir(ones)):
                self.ingest(os.path.join(ones, name), base, "--mode", "append")
        log = os.path.join(base, "_delta_log")
        checkpoints = sorted(glob.glob(os.path.join(log, "*.checkpoint.parquet")))
        newest = int(os.path.basename(checkpoints[-1]).split(".")[0]) if checkpoints else -1
        tail = [p for p in glob.glob(os.path.join(log, "*.json")) if int(os.path.basename(p).split(".")[0]) > newest]
        self.notes.append(f"after {n} commits: the Delta log has {len(checkpoints)} checkpoints; an opener reads "
                          f"checkpoint {newest} and {len(tail)} entries after it; pqdm opens from `_manifest.json` "
                          f"(checked against the newest entry's hash)")
        self.run(f"open after {n} commits", {"pqdm": [self.pqdm, "info", base, "--json"],
                                              "delta-rs": bench.py_cmd(DELTA_OPEN, base)})


def tail_after_checkpoint(base):
    """How many Delta log entries of `base` follow its newest checkpoint."""
    names = os.listdir(os.path.join(base, "_delta_log"))
    newest = max(int(n[:20]) for n in names if n.endswith(".json") and n[:20].isdigit())
    checkpoints = [int(n[:20]) for n in names if n.endswith(".checkpoint.parquet")]
    return newest - max(checkpoints, default=-1)


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--generate":
        {"days": gen_days, "ones": gen_ones}[sys.argv[2]](*sys.argv[3:])
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--commits", type=int, default=1000)
    ap.add_argument("--workloads", default="upsert,upsert_tail,open,open_log,latest,history,travel")
    ap.add_argument("--work", default=os.path.join(bench.ROOT, "target", "bench-commits"))
    ap.add_argument("--pqdm", default=bench.default_pqdm())
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    bench.ensure_venv()
    ensure_deltalake()
    os.makedirs(args.work, exist_ok=True)
    commits = Commits(args)
    commits.notes = []
    for w in args.workloads.split(","):
        getattr(commits, w.strip())()
    bench.report(commits, args.work, "bench_commits.py")
    print("\n".join(f"- {n}" for n in commits.notes))


if __name__ == "__main__":
    main()
