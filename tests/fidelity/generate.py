"""Differential inputs for tests/it/fidelity.rs: seeded CSV and Parquet files of 1-minute
candles in the shapes real tools write, each read back with pyarrow and DuckDB.

usage: generate.py OUT_DIR SEED CASES

Writes OUT_DIR/case-NNN.{csv,parquet} and OUT_DIR/cases.json: per case its file, and either
the rows pyarrow and DuckDB both read (after pqdm's documented normalisations: timestamps to
epoch ms UTC, numbers to f64/i64), or the row and column pqdm must refuse.
"""
import datetime as dt
import decimal
import json
import os
import random
import sys

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

out, seed, cases = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
VALUES = ["open", "high", "low", "close", "volume"]
HEADER = ["open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume", "count"]


def iso(ms, form):
    t = dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc)
    if form == "Z":
        return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    if form == "space":
        return t.strftime("%Y-%m-%d %H:%M:%S")
    local = t.astimezone(dt.timezone(dt.timedelta(hours=2)))
    base = local.strftime("%Y-%m-%dT%H:%M:%S")
    return base + {"+02:00": "+02:00", "+0200": "+0200", "+02": "+02"}[form]


def ts_text(ms, form):
    return {
        "ms": str(ms),
        "s": str(ms // 1000),
        "us": str(ms * 1000),
        "ns": str(ms * 1_000_000),
        "float_s": f"{ms / 1000:.1f}",
    }.get(form) or iso(ms, form)


def number_text(x, form):
    return {
        "plain": repr(x),
        "padded": f"{decimal.Decimal(repr(x)):.8f}",
        "sci": f"{x:.16e}",
    }[form]


def truth_rows(n):
    start = rng.choice([1_704_412_800_000, 1_735_689_600_000])
    rows = []
    for i in range(n):
        ms = start + i * 60_000
        vals = {c: round(rng.uniform(1, 90_000), rng.randint(0, 8)) for c in VALUES}
        rows.append({"timestamp": ms, **vals, "trades": rng.randint(0, 10**6)})
    return rows


def csv_case(path, rows):
    header = rng.random() < 0.6
    sep = rng.choice([",", ",", "\t", ";"])
    eol = rng.choice(["\n", "\r\n"])
    quote = rng.random() < 0.25
    bom = rng.random() < 0.2
    blank = rng.choice(["none", "none", "trailing", "middle"])
    ts_form = rng.choice(["ms", "ms", "s", "us", "ns", "float_s", "Z", "space", "+02:00", "+0200", "+02"])
    num_form = rng.choice(["plain", "padded", "sci"])
    count_form = rng.choice(["int", "int", "float"])
    bad = None
    if rng.random() < 0.15:
        bad = (rng.randrange(len(rows)), rng.choice(["count", "close", "open_time"]))
    lines = []
    for i, r in enumerate(rows):
        cells = [ts_text(r["timestamp"], ts_form)]
        cells += [number_text(r[c], num_form) for c in VALUES]
        cells += [str(r["timestamp"] + 59_999), "0", str(r["trades"]) + (".0" if count_form == "float" else "")]
        if bad and bad[0] == i:
            cells[HEADER.index(bad[1])] = {"count": "503.7", "close": "12.5x", "open_time": "1234"}[bad[1]]
        if quote:
            cells = [f'"{c}"' for c in cells]
        lines.append(sep.join(cells))
    if blank == "middle":
        lines.insert(len(lines) // 2, "")
    text = eol.join(([sep.join(HEADER)] if header else []) + lines) + eol
    if blank == "trailing":
        text += eol
    data = ("\ufeff" if bom else "") + text
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(data)
    dims = dict(kind="csv", header=header, sep=sep, eol=eol, quote=quote, bom=bom, blank=blank,
                ts=ts_form, num=num_form, count=count_form)
    if bad:
        # Headerless files take the kind's names (klines: timestamp ... trades).
        column = bad[1] if header else {"open_time": "timestamp", "count": "trades"}.get(bad[1], bad[1])
        return dims, {"refuse": {"row": bad[0] + 1, "column": column}}
    check_csv_peers(path, rows, header, sep)
    return dims, {"rows": rows}


def check_csv_peers(path, rows, header, sep):
    names = HEADER
    types = {c: pa.float64() for c in VALUES + ["count"]}
    types["open_time"] = pa.string()
    table = pacsv.read_csv(
        path,
        read_options=pacsv.ReadOptions(column_names=None if header else names, skip_rows=0),
        parse_options=pacsv.ParseOptions(delimiter=sep),
        convert_options=pacsv.ConvertOptions(column_types=types),
    ).to_pylist()
    con = duckdb.connect()
    cols = "{" + ", ".join(f"'{c}': '{'VARCHAR' if c == 'open_time' else 'DOUBLE'}'" for c in names) + "}"
    delim = "\\t" if sep == "\t" else sep
    duck = con.execute(
        f"select * from read_csv('{path}', delim=E'{delim}', header={str(header).lower()}, "
        f"columns={cols}, auto_detect=false, quote='\"')"
    ).fetchall()
    assert len(table) == len(rows) == len(duck), (path, len(table), len(rows), len(duck))
    for r, a, d in zip(rows, table, duck):
        for i, c in enumerate(names):
            if c in VALUES:
                assert a[c] == r[c] == d[i], (path, c, a[c], r[c], d[i])
        assert a["count"] == r["trades"] == d[8], (path, a["count"], r["trades"], d[8])


def parquet_case(path, rows):
    ts_form = rng.choice(["int_ms", "int_us", "ts_s", "ts_ms", "ts_us", "ts_ns", "ts_ns_utc", "iso_dict"])
    value_form = rng.choice(["double", "decimal", "dict_double", "dict_text"])
    count_form = rng.choice(["int64", "int32", "decimal"])
    ms = [r["timestamp"] for r in rows]
    if ts_form == "int_ms":
        ts = pa.array(ms, pa.int64())
    elif ts_form == "int_us":
        ts = pa.array([m * 1000 for m in ms], pa.int64())
    elif ts_form == "iso_dict":
        ts = pa.array([iso(m, "Z") for m in ms]).dictionary_encode()
    else:
        unit = ts_form.split("_")[1]
        tz = "UTC" if ts_form.endswith("utc") else None
        ts = pa.array([m * {"s": 1, "ms": 1, "us": 1000, "ns": 1_000_000}[unit] // (1000 if unit == "s" else 1) for m in ms],
                      pa.int64()).cast(pa.timestamp(unit, tz))
    cols = {"open_time": ts}
    for c in VALUES:
        v = [r[c] for r in rows]
        if value_form == "double":
            cols[c] = pa.array(v, pa.float64())
        elif value_form == "decimal":
            cols[c] = pa.array([decimal.Decimal(repr(x)) for x in v], pa.decimal128(18, 8))
        elif value_form == "dict_double":
            cols[c] = pa.array(v, pa.float64()).dictionary_encode()
        else:
            cols[c] = pa.array([repr(x) for x in v]).dictionary_encode()
    t = [r["trades"] for r in rows]
    cols["count"] = {
        "int64": pa.array(t, pa.int64()),
        "int32": pa.array(t, pa.int32()),
        "decimal": pa.array([decimal.Decimal(x) for x in t], pa.decimal128(12, 0)),
    }[count_form]
    pq.write_table(pa.table(cols), path)
    check_parquet_peers(path, rows)
    return dict(kind="parquet", ts=ts_form, values=value_form, count=count_form), {"rows": rows}


def check_parquet_peers(path, rows):
    arrow = pq.read_table(path).to_pylist()
    duck = duckdb.connect().execute(f"select * from read_parquet('{path}')").fetchall()
    assert len(arrow) == len(rows) == len(duck)
    for r, a, d in zip(rows, arrow, duck):
        for i, c in enumerate(VALUES, start=1):
            assert float(a[c]) == r[c] == float(d[i]), (path, c, a[c], r[c], d[i])
        assert int(a["count"]) == r["trades"] == int(d[6]), (path, a["count"], d[6])


manifest = []
for n in range(cases):
    rows = truth_rows(rng.randint(3, 12))
    parquet = rng.random() < 0.35
    path = os.path.join(out, f"case-{n:03}.{'parquet' if parquet else 'csv'}")
    dims, expected = (parquet_case if parquet else csv_case)(path, rows)
    manifest.append({"file": path, "dims": dims, **expected})
with open(os.path.join(out, "cases.json"), "w") as f:
    json.dump(manifest, f)
