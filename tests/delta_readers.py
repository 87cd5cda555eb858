"""Reads a Delta table with one of three engines and prints what it saw as one JSON document.

    python tests/delta_readers.py READER TABLE [--version N] [--storage-options JSON]

READER is `deltalake` (delta-rs' Python binding), `polars` (`pl.scan_delta`) or `duckdb` (DuckDB's
delta extension, `delta_scan`). TABLE is a local folder or `s3://bucket/prefix`; JSON is an object
of storage options, as the Rust tests pass them: AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ALLOW_HTTP (deltalake and Polars take them as they are;
for DuckDB they become an S3 secret). Without --version the current version is read.

It prints, on one line:

    {"version": V, "columns": [...], "types": {column: type}, "rows": [[...], ...]}

- version: the version read, as the engine reports it (deltalake), else the one asked for with
  --version, else null (Polars and DuckDB do not say which version they read).
- columns: the column names, sorted; partition columns included, as the engine returns them.
- types: each column's type in the engine's own words (`str()` of it): they differ between
  engines, so compare them with care; rows and columns are what compare across engines.
- rows: each row's values in the order of `columns`, the rows sorted by all columns in turn with
  nulls first (then numbers, then strings, then anything else), so equal tables print equal rows.
  Values are plain JSON: ints stay ints, floats floats (NaN and infinities become the strings
  "NaN", "inf", "-inf"), strings, null; dates and times in ISO 8601 (a time with a zone in UTC),
  decimals as strings, bytes in hex, lists and structs as arrays and objects.

Reading fails with exit code 1 and the engine's error on stderr (usage errors exit 2). Only the
reader's own engine is imported, so the script runs in either venv of tests/pyenv.py: `deltalake`
and `polars` in the main one, `duckdb` in the `--duckdb-delta` one (DuckDB's delta extension
loads only into the DuckDB of its version; it and httpfs, for S3, are loaded from the files their
wheels, duckdb-extension-delta and -httpfs, install under site-packages: nothing is downloaded at
run time).
"""

import argparse
import datetime
import decimal
import json
import math
import os
import sys


def read_deltalake(table, version, options):
    """delta-rs: the table as a pyarrow Table; the version it loaded."""
    from deltalake import DeltaTable

    dt = DeltaTable(table, version=version, storage_options=options)
    data = dt.to_pyarrow_table()
    types = {field.name: str(field.type) for field in data.schema}
    return dt.version(), data.column_names, types, data.to_pylist()


def read_polars(table, version, options):
    """Polars' scan_delta (which finds the files through deltalake)."""
    import polars as pl

    frame = pl.scan_delta(table, version=version, storage_options=options).collect()
    types = {name: str(dtype) for name, dtype in frame.schema.items()}
    return version, frame.columns, types, frame.rows(named=True)


def duckdb_extension(name):
    """An extension's file, as its wheel duckdb-extension-NAME installs it:
    duckdb_extension_NAME/extensions/v<DuckDB's version>/NAME.duckdb_extension."""
    import importlib

    import duckdb

    package = importlib.import_module(f"duckdb_extension_{name}")
    path = os.path.join(
        os.path.dirname(package.__file__),
        "extensions", f"v{duckdb.__version__}", f"{name}.duckdb_extension",
    )
    if not os.path.isfile(path):
        raise RuntimeError(f"no {name} extension for DuckDB {duckdb.__version__} at {path}")
    return path


def sql_string(text):
    return "'" + text.replace("'", "''") + "'"


def duckdb_secret(options):
    """The S3 secret that stands for the storage options (object_store's keys, any case)."""
    options = {key.upper(): str(value) for key, value in options.items()}
    endpoint = options.pop("AWS_ENDPOINT_URL", options.pop("AWS_ENDPOINT", None))
    allow_http = options.pop("AWS_ALLOW_HTTP", "false").lower() == "true"
    fields = {
        "KEY_ID": options.pop("AWS_ACCESS_KEY_ID", None),
        "SECRET": options.pop("AWS_SECRET_ACCESS_KEY", None),
        "REGION": options.pop("AWS_REGION", None),
    }
    if options:
        raise ValueError(f"storage options the duckdb reader does not know: {sorted(options)}")
    if endpoint is not None:
        scheme, _, host = endpoint.partition("://")
        if not host or scheme not in ("http", "https"):
            raise ValueError(f"AWS_ENDPOINT_URL must be http(s)://host[:port], not {endpoint!r}")
        if scheme == "http" and not allow_http:
            raise ValueError("an http:// endpoint needs AWS_ALLOW_HTTP=true")
        fields.update(ENDPOINT=host.rstrip("/"), URL_STYLE="path", USE_SSL=str(scheme == "https"))
    items = ", ".join(
        f"{key} {value if key == 'USE_SSL' else sql_string(value)}"
        for key, value in fields.items()
        if value is not None
    )
    return f"CREATE SECRET (TYPE s3, {items})"


def read_duckdb(table, version, options):
    """DuckDB's delta_scan (time travel with its `version` parameter)."""
    import duckdb

    con = duckdb.connect(config={"autoinstall_known_extensions": False})
    # httpfs reads the data files on S3 (the delta extension reads the log itself).
    for name in ("httpfs", "delta"):
        con.execute(f"LOAD {sql_string(duckdb_extension(name))}")
    if options:
        con.execute(duckdb_secret(options))
    at = "" if version is None else f", version => {int(version)}"
    rel = con.sql(f"SELECT * FROM delta_scan({sql_string(table)}{at})")
    types = {name: str(kind) for name, kind in zip(rel.columns, rel.types)}
    rows = [dict(zip(rel.columns, row)) for row in rel.fetchall()]
    return version, rel.columns, types, rows


READERS = {"deltalake": read_deltalake, "polars": read_polars, "duckdb": read_duckdb}


def plain(value):
    """A value as plain JSON (see the module's docstring)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value).replace("nan", "NaN")
    if isinstance(value, datetime.datetime) and value.tzinfo is not None:
        return value.astimezone(datetime.timezone.utc).isoformat()
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return str(value)


def order(value):
    """Sort key of a plain value: nulls, then numbers, then strings, then the rest."""
    if value is None:
        return (0,)
    if isinstance(value, (bool, int, float)):
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    return (3, json.dumps(value, sort_keys=True))


def json_str(value):
    """A storage option's value as the string the engines take (JSON true is "true")."""
    return value if isinstance(value, str) else json.dumps(value)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("reader", choices=sorted(READERS))
    parser.add_argument("table", help="a local folder or s3://bucket/prefix")
    parser.add_argument("--version", type=int, help="read this version (default: the current)")
    parser.add_argument("--storage-options", default="{}", help="a JSON object of strings")
    args = parser.parse_args()
    try:
        options = json.loads(args.storage_options)
        if not isinstance(options, dict):
            raise ValueError("--storage-options must be a JSON object")
        table = args.table if "://" in args.table else os.path.abspath(args.table)
        version, columns, types, rows = READERS[args.reader](
            table, args.version, {k: json_str(v) for k, v in options.items()} or None
        )
    except Exception as error:  # the reader's refusal is an answer the tests look at
        leave(1, f"{args.reader}: {type(error).__name__}: {error}", sys.stderr)
    columns = sorted(columns)
    rows = sorted(
        ([plain(row[c]) for c in columns] for row in rows),
        key=lambda row: [order(v) for v in row],
    )
    types = {c: types[c] for c in columns}
    document = {"version": version, "columns": columns, "types": types, "rows": rows}
    leave(0, json.dumps(document, allow_nan=False, ensure_ascii=False), sys.stdout)


def leave(code, text, stream):
    """Prints `text` and exits at once: deltalake's pyarrow scan leaves threads that now and then
    abort the interpreter's shutdown ("terminate called without an active exception", exit 134,
    about one run in ten here; delta-rs issue 2184, Polars issue 24169), after the answer is out."""
    print(text, file=stream)
    stream.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
