#!/usr/bin/env python3
"""Write the hostile-input corpus under tests/corpus/ (small files; needs pyarrow for the Parquet ones).

    python3 scripts/make_hostile_corpus.py [OUT_DIR]
"""
import io
import json
import os
import sys
import zipfile

import pyarrow as pa
import pyarrow.parquet as pq

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "corpus")
os.makedirs(OUT, exist_ok=True)
T = 1704412800000  # 2024-01-05


def kline(t, o="1.5", q="10.0"):
    return f"{t},{o},2.5,1.0,2.0,{q},{t + 59999},20.0,5,4.0,8.0,0\n"


def write(name, data, mode="w"):
    with open(os.path.join(OUT, name), mode) as f:
        f.write(data)


def zipped(name, entries):
    with zipfile.ZipFile(os.path.join(OUT, name), "w", zipfile.ZIP_DEFLATED) as z:
        for inner, text in entries:
            z.writestr(inner, text)


good = pa.table({"timestamp": [T + i * 60000 for i in range(100)], "open": [1.0] * 100, "high": [1.0] * 100,
                 "low": [1.0] * 100, "close": [1.0] * 100, "volume": [1.0] * 100})
buf = io.BytesIO()
pq.write_table(good, buf)
write("truncated.parquet", buf.getvalue()[: len(buf.getvalue()) // 2], "wb")
pq.write_table(pa.table({"a": [1, 2], "b": ["x", "y"]}), os.path.join(OUT, "wrong_schema.parquet"))
write("BTCUSDT-1m-2024-01-05-ragged.csv", kline(T) + "1704412860000,1.5,2.5\n" + kline(T + 120000))
write("wrong_kind.csv", "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker\n1,2.0,3.0,4,5,1704412800000,true\n")
write("empty.csv", "")
zipped("BTCUSDT-1m-2024-01-05-two.zip", [("a.csv", kline(T)), ("b.csv", kline(T))])
zipped("BTCUSDT-1m-2024-01-05-none.zip", [("README.txt", "no data here\n")])
zipped("BTCUSDT-1m-2024-01-05-bomb.zip", [("BTCUSDT-1m-2024-01-05.csv", kline(T) * 60000)])
write("BTCUSDT-1m-1969-12-31.csv", kline(-86400000))
write("BTCUSDT-1m-2264-01-01.csv", kline(9300000000000))
write("BTCUSDT-1m-2024-01-06-nan.csv", kline(T + 86400000, "NaN") + kline(T + 86460000, "inf") + kline(T + 86520000, "-inf"))
write("BTCUSDT-aggTrades-2024-01-05-negative.csv", "1,2.0,-3.0,4,5,1704412800000,True,True\n2,2.0,1.0,6,6,1704412800001,False,True\n")
symbols = ["BTC/USDT", "A=B", "ETH USDT", "币安币", "../x", "%2F", "..", "."]
write("weird_symbols.csv", "symbol,open_time,open,high,low,close,volume\n" + "".join(
    f"{s},{T + i * 60000},1,1,1,1,1\n" for i, s in enumerate(symbols)))
write("manifest_corrupt.json", "\x00\x01 this is not json {{{")
write("manifest_truncated.json", '{"format_version": 1, "version": 3, "files": [{"path": "exch')
write("manifest_future.json", json.dumps({"format_version": 99, "version": 1, "files": []}))
print(f"corpus written to {os.path.abspath(OUT)}")
