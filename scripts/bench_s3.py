#!/usr/bin/env python3
"""Object storage: scans of a many-file dataset on a local S3 server (moto), pqdm against pyarrow and Polars.

    python3 scripts/bench_s3.py [--days 1000] [--rounds 3] [--latency-ms 0]

Starts tests/s3_server.py (moto with a request log), has pqdm write DAYS days of 1-minute candles for one
symbol (one file per day) to s3://bench/klines, then times, per tool, as child processes, the median of
ROUNDS runs of:
  full    every row, one column (close)
  pruned  the last 30 days (pqdm: a timestamp filter; peers: year/month/day partition filters)
  latest  the newest timestamp (pqdm: from its summary; peers: max over the timestamp column)
and counts the requests each made: LIST, GET, HEAD. moto answers on loopback in well under a
millisecond; --latency-ms delays every request by that much, as a store across a network would
(S3 answers small requests in 10 to 50 ms).
Needs the release binary (cargo build --release) and makes a virtualenv with the peers and moto under
$CARGO_TARGET_DIR (default ~/.cache/pqdm-target).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/pqdm-target"))
PQDM = TARGET / "release/pqdm"
VENV = TARGET / "bench-s3-venv"


def venv_python():
    py = VENV / "bin/python"
    if not (VENV / ".ready").exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "--quiet", "pyarrow", "polars", "moto[server]"], check=True)
        (VENV / ".ready").write_text("")
    return str(py)


PEER = r"""
import sys, time
tool, work, endpoint, base = sys.argv[1:5]
if tool == "pyarrow":
    import pyarrow.dataset as ds, pyarrow.fs as fs, pyarrow.compute as pc
    s3 = fs.S3FileSystem(endpoint_override=endpoint, scheme="http", access_key="bench",
                         secret_key="bench", region="us-east-1")
    d = ds.dataset(base.removeprefix("s3://"), filesystem=s3, format="parquet", partitioning="hive")
    if work == "full":
        n = d.to_table(columns=["close"]).num_rows
    elif work == "pruned":
        f = (ds.field("year") == 2026) & (((ds.field("month") == 8) & (ds.field("day") >= 28)) | (ds.field("month") == 9))
        n = d.to_table(columns=["close"], filter=f).num_rows
    else:
        n = pc.max(d.to_table(columns=["timestamp"])["timestamp"]).as_py()
else:
    import polars as pl
    opts = {"aws_endpoint_url": endpoint, "aws_access_key_id": "bench", "aws_secret_access_key": "bench",
            "aws_region": "us-east-1", "aws_allow_http": "true"}
    lf = pl.scan_parquet(base + "/**/*.parquet", storage_options=opts, hive_partitioning=True)
    if work == "full":
        n = lf.select("close").collect().height
    elif work == "pruned":
        n = lf.filter((pl.col("year") == 2026) & (((pl.col("month") == 8) & (pl.col("day") >= 28)) | (pl.col("month") == 9))).select("close").collect().height
    else:
        n = lf.select(pl.col("timestamp").max()).collect().item()
print(n)
"""


def http(endpoint, method, path):
    req = urllib.request.Request(endpoint + path, method=method)
    with urllib.request.urlopen(req) as r:
        return r.read()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--latency-ms", type=float, default=0)
    args = ap.parse_args()
    py = venv_python()
    server = subprocess.Popen([py, str(ROOT / "tests/s3_server.py"), "--parent", str(os.getpid()),
                               "--latency-ms", str(args.latency_ms)],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    endpoint = "http://127.0.0.1:" + server.stdout.readline().split()[1]
    env = dict(os.environ, AWS_ENDPOINT_URL=endpoint, AWS_REGION="us-east-1", AWS_ACCESS_KEY_ID="bench",
               AWS_SECRET_ACCESS_KEY="bench", AWS_ALLOW_HTTP="true")
    try:
        http(endpoint, "PUT", "/bench")
        base = "s3://bench/klines"
        # One 1-minute candle per minute for DAYS days from 2024-01-01, written by Polars locally.
        flat = TARGET / "tmp/bench_s3_klines.parquet"
        flat.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([py, "-c", f"""
import polars as pl
n = {args.days} * 1440
ts = pl.int_range(0, n, eager=True) * 60_000 + 1_704_067_200_000
pl.DataFrame({{"open_time": ts, "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5, "volume": 3.0,
              "exchange": "BINANCE", "symbol": "BTCUSDT", "timeframe": "1m"}}).write_parquet("{flat}")
"""], check=True)
        t = time.perf_counter()
        subprocess.run([str(PQDM), "ingest", "-q", "--dataset", base, "--kind", "klines", str(flat)],
                       check=True, env=env)
        print(f"pqdm wrote {args.days} files to {base} in {time.perf_counter() - t:.1f} s")
        last = 1_704_067_200_000 + (args.days * 1440 - 1) * 60_000
        since = last - 30 * 86_400_000 + 60_000
        since_iso = time.strftime("%Y-%m-%d", time.gmtime((since + 86_399_999) // 1000))
        commands = {
            "pqdm": {
                "full": [str(PQDM), "scan", base, "--columns", "close", "--format", "parquet", "--output", "/dev/null"],
                "pruned": [str(PQDM), "scan", base, "--columns", "close", "--filter", f"timestamp >= {since_iso}",
                           "--format", "parquet", "--output", "/dev/null"],
                "latest": [str(PQDM), "latest", base, "--json"],
            },
            **{tool: {w: [py, "-c", PEER, tool, w, endpoint, base] for w in ("full", "pruned", "latest")}
               for tool in ("pyarrow", "polars")},
        }
        rows = []
        for work in ("full", "pruned", "latest"):
            for tool in ("pqdm", "pyarrow", "polars"):
                times, counts = [], None
                for _ in range(args.rounds):
                    http(endpoint, "POST", "/__reset")
                    t = time.perf_counter()
                    out = subprocess.run(commands[tool][work], check=True, env=env, capture_output=True, text=True)
                    times.append(time.perf_counter() - t)
                    log = json.loads(http(endpoint, "GET", "/__requests"))
                    counts = {
                        "LIST": sum(1 for r in log if r.startswith("GET ") and ("list-type" in r or "prefix=" in r)),
                        "GET": sum(1 for r in log if r.startswith("GET ") and "list-type" not in r and "prefix=" not in r),
                        "HEAD": sum(1 for r in log if r.startswith("HEAD ")),
                    }
                lines = out.stdout.strip().splitlines()
                answer = json.loads(out.stdout)["latest_timestamp"] if work == "latest" and tool == "pqdm" \
                    else (lines[-1] if lines else "-")
                rows.append((work, tool, statistics.median(times), counts, answer))
        print(f"\n{'workload':8} {'tool':8} {'median s':>9} {'vs pqdm':>8} {'LIST':>5} {'GET':>6} {'HEAD':>6}  answer")
        for work, tool, t, c, answer in rows:
            ref = next(r[2] for r in rows if r[0] == work and r[1] == "pqdm")
            print(f"{work:8} {tool:8} {t:9.3f} {t / ref:7.2f}x {c['LIST']:5} {c['GET']:6} {c['HEAD']:6}  {answer}")
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
