#!/usr/bin/env python3
"""Generate the sample inputs in data/ in the real Binance formats (deterministic, stdlib only).

    python3 scripts/make_sample_data.py [OUT_DIR]   # default: data/

- spot klines, headerless, millisecond timestamps (2024) and microsecond timestamps (2025),
  as a .zip archive holding one CSV (Binance's format) and as a plain CSV;
- USD-M futures klines with a header row;
- spot aggTrades, headerless, True/False flags, in a .zip;
- a USD-M funding-rate CSV (calc_time,funding_interval_hours,last_funding_rate).
"""
import csv
import io
import os
import random
import sys
import zipfile

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "data")
rng = random.Random(20240105)

DAY_2024 = 1704412800000  # 2024-01-05T00:00:00Z in ms
DAY_2025 = 1735689600000  # 2025-01-01T00:00:00Z in ms


def kline_rows(start_ms, price, minutes, unit_us=False):
    rows = []
    for i in range(minutes):
        t = start_ms + i * 60_000
        o = price
        c = max(1.0, o * (1 + rng.gauss(0, 0.0008)))
        h = max(o, c) * (1 + abs(rng.gauss(0, 0.0003)))
        low = min(o, c) * (1 - abs(rng.gauss(0, 0.0003)))
        v = round(abs(rng.gauss(20, 8)) + 0.01, 5)
        n = rng.randint(50, 900)
        tb = round(v * rng.uniform(0.3, 0.7), 5)
        scale = 1000 if unit_us else 1
        rows.append([
            t * scale, f"{o:.2f}", f"{h:.2f}", f"{low:.2f}", f"{c:.2f}", f"{v}",
            (t + 59_999) * scale + (999 if unit_us else 0), f"{v * c:.4f}", n, f"{tb}", f"{tb * c:.4f}", 0,
        ])
        price = c
    return rows


def csv_text(rows, header=None):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if header:
        w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def write(path, text):
    full = os.path.join(OUT, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w", newline="") as f:
        f.write(text)


def write_zip(path, inner, text):
    full = os.path.join(OUT, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with zipfile.ZipFile(full, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(inner, text)


KLINE_HEADER = ["open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume",
                "count", "taker_buy_volume", "taker_buy_quote_volume", "ignore"]

# Spot klines: 2024 in ms (zip), 2025 in µs (zip and plain CSV).
write_zip("spot/klines/BTCUSDT-1m-2024-01-05.zip", "BTCUSDT-1m-2024-01-05.csv",
          csv_text(kline_rows(DAY_2024, 44000.0, 1440)))
write_zip("spot/klines/ETHUSDT-1m-2024-01-05.zip", "ETHUSDT-1m-2024-01-05.csv",
          csv_text(kline_rows(DAY_2024, 2250.0, 1440)))
write_zip("spot/klines/BTCUSDT-1m-2025-01-01.zip", "BTCUSDT-1m-2025-01-01.csv",
          csv_text(kline_rows(DAY_2025, 93500.0, 1440, unit_us=True)))
write("spot/klines/ETHUSDT-1m-2025-01-01.csv", csv_text(kline_rows(DAY_2025, 3330.0, 1440, unit_us=True)))

# USD-M futures klines: header row, ms.
write("futures/um/klines/BTCUSDT-1m-2024-01-05.csv",
      csv_text(kline_rows(DAY_2024, 44050.0, 1440), header=KLINE_HEADER))

# Spot aggTrades: headerless, 8 columns, Python-style booleans.
rows = []
agg_id, trade_id, t, price = 3_000_000_000, 3_400_000_000, DAY_2024, 44000.0
for _ in range(6000):
    n = rng.randint(1, 4)
    t += rng.randint(1, 30_000)
    price = round(max(1.0, price * (1 + rng.gauss(0, 0.0002))), 2)
    rows.append([agg_id, f"{price:.2f}", f"{abs(rng.gauss(0.05, 0.1)) + 0.00001:.5f}", trade_id,
                 trade_id + n - 1, t, rng.random() < 0.5, True])
    agg_id += 1
    trade_id += n
    if t >= DAY_2024 + 86_400_000:
        break
write_zip("spot/aggTrades/BTCUSDT-aggTrades-2024-01-05.zip", "BTCUSDT-aggTrades-2024-01-05.csv", csv_text(rows))

# USD-M funding rates: every 8 hours through January 2024.
rows = []
first = 1704067200000  # 2024-01-01
for i in range(93):
    rows.append([first + i * 8 * 3_600_000 + rng.randint(0, 5), 8, f"{rng.gauss(0.0001, 0.00005):.8f}"])
write("futures/um/fundingRate/BTCUSDT-fundingRate-2024-01.csv",
      csv_text(rows, header=["calc_time", "funding_interval_hours", "last_funding_rate"]))
print(f"sample data written under {os.path.abspath(OUT)}")
