#!/usr/bin/env python3
"""Writes at scale: pqdm's upsert against Polars, pyarrow and DuckDB partitioned writes, same run.

    python3 scripts/bench_scale.py [--symbols 100] [--days 365] [--rounds 1] [--workloads ingest,reupsert,day,tiny,wide] [--skip pyarrow]

Generates one-minute candles for SYMBOLS x DAYS (default 100 x 365: 36,500 daily partitions,
52.6M rows) as one flat Parquet file, and measures (whole-process wall time and peak RSS, as
scripts/bench.py does; the peers run in the same virtualenv, target/bench-venv):

- ingest:   the flat file into an empty dataset: pqdm's default upsert, pqdm append, Polars
            `sink_parquet(PartitionBy)`, pyarrow `write_dataset` (and with --duckdb, DuckDB's
            `COPY ... PARTITION_BY`: over 13 minutes at 36,500 partitions), all snappy,
            partitioned by exchange/symbol/timeframe/year/month/day;
- reupsert: the same keys with other prices and volumes upserted into the full dataset (every
            row replaced; `--force`, and the rounds alternate between that file and the first, so
            that neither the sources index nor the upsert's unchanged-row check skips any); the
            peers have no upsert: Polars rewrites the whole dataset from the file, for scale;
- day:      the last day again (a corrected delivery) for every symbol, upserted into the full
            dataset (two such files of other values, taken in turns with `--force`, so that every
            round replaces the day); Polars merges the same day by hand (read the day's
            partitions, anti-join, concat, write);
- tiny:     4 candles a day for 10 symbols x 1,000 days (10,000 partitions): upsert vs append,
            Polars and DuckDB;
- wide:     1 candle a day for 100 symbols x 1,000 days (100,000 partitions): upsert.

Prints a Markdown table (written to target/bench-scale/results.md too).
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the measuring, the virtualenv and the table)

PARTS = ["exchange", "symbol", "timeframe", "year", "month", "day"]
WITH_DATES = """
import sys, glob, os, shutil, polars as pl
dt = pl.from_epoch("timestamp", time_unit="ms")
def prepared(lf):
    return lf.with_columns(exchange=pl.lit("BINANCE"), timeframe=pl.lit("1m"),
                           year=dt.dt.year(), month=dt.dt.month(), day=dt.dt.day())
"""

POLARS_SINK = WITH_DATES + f"""
prepared(pl.scan_parquet(sys.argv[1])).sink_parquet(
    pl.PartitionBy(sys.argv[2], key={PARTS!r}), compression="snappy", mkdir=True)
"""

PYARROW_WRITE = f"""
import sys, pyarrow as pa, pyarrow.compute as pc, pyarrow.dataset as ds, pyarrow.parquet as pq
t = pq.read_table(sys.argv[1])
dt = pc.cast(t["timestamp"], pa.timestamp("ms"))
n = len(t)
t = (t.append_column("exchange", pa.array(["BINANCE"] * n)).append_column("timeframe", pa.array(["1m"] * n))
      .append_column("year", pc.year(dt)).append_column("month", pc.month(dt)).append_column("day", pc.day(dt)))
ds.write_dataset(t, sys.argv[2], format="parquet", partitioning={PARTS!r}, partitioning_flavor="hive",
                 existing_data_behavior="overwrite_or_ignore", max_partitions=1_000_000, max_open_files=1024)
"""

DUCKDB_COPY = """
import sys, duckdb
duckdb.connect().execute(f\"\"\"COPY (SELECT *, 'BINANCE' AS exchange, '1m' AS timeframe,
  year(make_timestamp(timestamp * 1000)) AS year, month(make_timestamp(timestamp * 1000)) AS month,
  day(make_timestamp(timestamp * 1000)) AS day FROM read_parquet('{sys.argv[1]}'))
  TO '{sys.argv[2]}' (FORMAT parquet, COMPRESSION snappy, PARTITION_BY (exchange, symbol, timeframe, year, month, day))\"\"\")
"""

# Upsert one day by hand: the day's partitions read, their rows with a new key dropped, the new
# rows added, each partition rewritten in place.
POLARS_DAY = WITH_DATES + """
base, new = sys.argv[2], prepared(pl.scan_parquet(sys.argv[1])).collect()
y, m, d = new["year"][0], new["month"][0], new["day"][0]
old = pl.scan_parquet(f"{base}/exchange=BINANCE/symbol=*/timeframe=1m/year={y}/month={m}/day={d}/*.parquet",
                      hive_partitioning=True).collect()
merged = pl.concat([old.join(new, on=["exchange", "symbol", "timeframe", "timestamp"], how="anti"),
                    new.select(old.columns)])
tmp = base + ".day"
merged.lazy().sink_parquet(pl.PartitionBy(tmp, key=%r), compression="snappy", mkdir=True)
for folder in glob.glob(f"{tmp}/**/day={d}", recursive=True):
    target = base + folder[len(tmp):]
    shutil.rmtree(target, ignore_errors=True)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    os.rename(folder, target)
shutil.rmtree(tmp)
""" % (PARTS,)


def gen_candles(path, symbols, days, per_day, first_day=0, seed=11):
    """SYMBOLS x DAYS x PER_DAY candles, sorted by symbol then time, a row group per symbol; another
    SEED gives the same keys with other prices and volumes."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    symbols, days, per_day, first_day, seed = int(symbols), int(days), int(per_day), int(first_day), int(seed)
    step = bench.DAY_MS // per_day
    day = np.arange(first_day, first_day + days, dtype=np.int64)[:, None] * bench.DAY_MS
    ts = (bench.START_MS + day + np.arange(per_day, dtype=np.int64)[None, :] * step).ravel()
    rng = np.random.default_rng(seed)
    writer = None
    for s in range(symbols):
        price = 100 + s + rng.random(len(ts))
        table = pa.table({
            "timestamp": ts,
            "open": price, "high": price + 0.5, "low": price - 0.5, "close": price,
            "volume": rng.random(len(ts)) * 10,
            "symbol": pa.array([f"S{s:03d}USDT"] * len(ts)),
        })
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=len(ts))
    writer.close()


class Scale(bench.Bench):
    def ingest_cmd(self, src, dataset, *extra):
        return [self.pqdm, "ingest", src, "--dataset", dataset, "--kind", "klines", "--exchange", "BINANCE",
                "--timeframe", "1m", "--quiet", *extra]

    def full(self):
        """pqdm's and Polars' full datasets, which `reupsert` and `day` start from."""
        for tool, cmd in [("pqdm", self.ingest_cmd(self.flat, self.path("full", "pqdm"))),
                          ("polars", bench.py_cmd(POLARS_SINK, self.flat, self.path("full", "polars")))]:
            if not os.path.exists(self.path("full", tool + ".ok")):
                self.fresh("full", tool)
                for held in ("reupsert", "day"):
                    if os.path.exists(self.path("full", f"pqdm.{held}.holds")):
                        os.remove(self.path("full", f"pqdm.{held}.holds"))
                bench.measure(cmd)
                open(self.path("full", tool + ".ok"), "w").close()

    def not_held(self, name, files):
        """Which of `files` (same keys, other values) to upsert into pqdm's full dataset so that
        every row of theirs changes: the one it did not take last. `pqdm.<name>.holds` says which
        it took, and the dataset's version whether that write committed (a failed or killed run
        leaves the one before). The sources index would skip a file given again, and an upsert
        whose rows are unchanged commits nothing: such a round would measure no write at all."""
        dataset = self.path("full", "pqdm")
        state_path = self.path("full", f"pqdm.{name}.holds")
        version = json.load(open(os.path.join(dataset, "_manifest.json")))["version"]
        state = json.load(open(state_path)) if os.path.exists(state_path) else {}
        held = state.get("pending") if state.get("version", version) < version else state.get("held")
        src = files[1] if held == files[0] else files[0]
        with open(state_path, "w") as f:
            json.dump({"held": held, "pending": src, "version": version}, f)
        return src

    def ingest(self):
        cmds = {"pqdm": self.ingest_cmd(self.flat, self.path("w", "pqdm")),
                "pqdm-append": self.ingest_cmd(self.flat, self.path("w", "pqdm-append"), "--mode", "append"),
                "polars": bench.py_cmd(POLARS_SINK, self.flat, self.path("w", "polars")),
                "pyarrow": bench.py_cmd(PYARROW_WRITE, self.flat, self.path("w", "pyarrow"))}
        if self.args.duckdb:
            # Left out by default: at 36,500 partitions DuckDB 2.0.1's COPY had not finished
            # after 13 minutes (6 GB resident) on the 2-core machine.
            cmds["duckdb"] = bench.py_cmd(DUCKDB_COPY, self.flat, self.path("w", "duckdb"))
        for tool in self.args.skip.split(","):
            cmds.pop(tool.strip(), None)
        self.run(f"ingest {self.label} as upsert", cmds,
                 before=lambda t: (self.set_aside("w", t), self.warm(self.flat)))
        self.set_aside("w")

    def reupsert(self):
        self.full()
        other = self.path(f"candles-{self.args.symbols}x{self.args.days}-seed12.parquet")
        if not os.path.exists(other):
            bench.generate_with(__file__, "candles", other, self.args.symbols, self.args.days, 1440, 0, 12)
        cmds = {"pqdm": None, "polars": bench.py_cmd(POLARS_SINK, self.flat, self.path("w", "polars"))}

        def before(tool):
            self.set_aside("w", tool)
            if tool != "pqdm":
                self.warm(self.flat)
                return
            # The dataset was built from the first file: the second one comes first.
            src = self.not_held("reupsert", [other, self.flat])
            cmds["pqdm"] = self.ingest_cmd(src, self.path("full", "pqdm"), "--force")
            self.warm(src)
        self.run(f"re-upsert {self.label} (all replaced)", cmds, before=before)
        self.set_aside("w")

    def day(self):
        self.full()
        days = [self.path(f"day-seed{seed}.parquet") for seed in (21, 22)]
        for day, seed in zip(days, (21, 22)):
            if not os.path.exists(day):
                bench.generate_with(__file__, "candles", day, self.args.symbols, 1, 1440, self.args.days - 1, seed)
        cmds = {"pqdm": None, "polars": bench.py_cmd(POLARS_DAY, days[0], self.path("full", "polars"))}

        def before(tool):
            if tool == "pqdm":
                cmds["pqdm"] = self.ingest_cmd(self.not_held("day", days), self.path("full", "pqdm"), "--force")
        self.run(f"upsert 1 day x {self.args.symbols} symbols (replaced) into it", cmds, before=before)

    def small(self, name, symbols, days, per_day, tools):
        src = self.path(f"{name}.parquet")
        if not os.path.exists(src):
            bench.generate_with(__file__, "candles", src, symbols, days, per_day)
        cmds = {"pqdm": self.ingest_cmd(src, self.path("w", "pqdm")),
                "pqdm-append": self.ingest_cmd(src, self.path("w", "pqdm-append"), "--mode", "append"),
                "polars": bench.py_cmd(POLARS_SINK, src, self.path("w", "polars")),
                "duckdb": bench.py_cmd(DUCKDB_COPY, src, self.path("w", "duckdb"))}
        label = f"{symbols * days:,} partitions x {per_day} rows"
        self.run(label, {t: cmds[t] for t in tools}, before=lambda t: self.set_aside("w", t))
        self.set_aside("w")

    def tiny(self):
        self.small("tiny", 10, 1000, 4, ["pqdm", "pqdm-append", "polars", "duckdb"])

    def wide(self):
        self.small("wide", 100, 1000, 1, ["pqdm", "polars"])


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--generate":
        gen_candles(*sys.argv[3:])
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--symbols", type=int, default=100)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--workloads", default="ingest,reupsert,day,tiny,wide")
    ap.add_argument("--work", default=os.path.join(bench.ROOT, "target", "bench-scale"))
    ap.add_argument("--pqdm", default=bench.default_pqdm())
    ap.add_argument("--duckdb", action="store_true", help="DuckDB in `ingest` too (slow at this partition count)")
    ap.add_argument("--skip", default="", help="tools to leave out of `ingest`, e.g. pyarrow (3 minutes a round)")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    bench.ensure_venv()
    os.makedirs(args.work, exist_ok=True)
    scale = Scale(args)
    scale.flat = scale.path(f"candles-{args.symbols}x{args.days}.parquet")
    scale.label = f"{args.symbols} symbols x {args.days} days ({args.symbols * args.days:,} partitions, " \
                  f"{args.symbols * args.days * 1440 / 1e6:.1f}M rows)"
    if not os.path.exists(scale.flat):
        print(f"generating {scale.label} under {args.work}", flush=True)
        bench.generate_with(__file__, "candles", scale.flat, args.symbols, args.days, 1440)
    for w in args.workloads.split(","):
        getattr(scale, w.strip())()
    bench.report(scale, args.work, "bench_scale.py")
    scale.remove_set_aside()


if __name__ == "__main__":
    main()
