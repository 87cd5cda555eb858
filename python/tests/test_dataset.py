"""The Pythonic API: pqdm.Dataset, against the files and the other readers."""

import datetime as dt
import os

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.dataset as pads
import pytest
from conftest import klines

import pqdm

T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z


def test_create_write_scan_round_trip_exactly(tmp_path):
    ds = pqdm.Dataset.create(tmp_path / "k", "klines")
    assert (ds.version, ds.kind) == (0, "klines")
    frame = klines(T0, 5)
    report = ds.write(frame)
    assert (report["version"], report["mode"], report["rows_written"]) == (1, "upsert", 5)
    assert [f["rows"] for f in report["files"]] == [5]
    assert report["files"][0]["path"].startswith("exchange=BINANCE/symbol=BTCUSDT/timeframe=1m/year=2024/month=1/day=1/")
    got = ds.scan(columns=list(frame.columns)).sort("timestamp")
    assert got.equals(frame)
    # What pqdm wrote is what pyarrow reads from the tree.
    plain = pads.dataset(str(tmp_path / "k"), partitioning="hive").to_table(columns=["timestamp", "close"])
    assert plain.column("close").to_pylist() == [100.5, 101.5, 102.5, 103.5, 104.5]


def test_frames_of_polars_pandas_and_pyarrow_are_written_alike(tmp_path):
    ds = pqdm.Dataset.open_or_create(tmp_path / "k", kind="klines")
    base = klines(T0, 3)
    ds.write(base)
    ds.write(klines(T0 + 3 * 60_000, 3).to_pandas())
    ds.write(klines(T0 + 6 * 60_000, 3).to_arrow())
    ds.write(klines(T0 + 9 * 60_000, 3).lazy())
    assert ds.version == 4
    got = ds.scan(columns=["timestamp", "open"]).sort("timestamp")
    assert got["timestamp"].to_list() == [T0 + i * 60_000 for i in range(12)]
    assert got["open"].to_list() == [100.0, 101.0, 102.0] * 4


def test_outputs_polars_pandas_pyarrow_and_lazy(tmp_path):
    ds = pqdm.Dataset.create(tmp_path / "k", "klines")
    ds.write(klines(T0, 4))
    cols = ["timestamp", "close", "symbol"]
    pdf = ds.scan(cols, output="pandas").sort_values("timestamp").reset_index(drop=True)
    assert isinstance(pdf, pd.DataFrame)
    assert pdf["close"].tolist() == [100.5, 101.5, 102.5, 103.5]
    assert pdf["symbol"].tolist() == ["BTCUSDT"] * 4
    table = ds.scan(cols, output="pyarrow")
    assert isinstance(table, pa.Table)
    assert table.num_rows == 4 and table.column_names == cols
    lf = ds.scan(lazy=True)
    assert isinstance(lf, pl.LazyFrame)
    got = lf.filter(pl.col("close") > 102).select("timestamp", "close").sort("timestamp").collect()
    assert got.to_dict(as_series=False) == {"timestamp": [T0 + 120_000, T0 + 180_000], "close": [102.5, 103.5]}
    assert ds.scan(lazy=True).head(2).collect().height == 2
    with pytest.raises(pqdm.InvalidInputError, match="output must be one of"):
        ds.scan(output="csv")


def test_filters_prune_and_all_operators_hold(tmp_path):
    ds = pqdm.Dataset.create(tmp_path / "k", "klines")
    ds.write(pl.concat([klines(T0, 3, "BTCUSDT"), klines(T0, 3, "ETHUSDT"), klines(T0, 3, "SOLUSDT")]))

    def rows(filters, col="symbol"):
        return sorted(ds.scan(columns=["symbol", "timestamp"], filters=filters)[col].to_list())

    assert rows([("symbol", "==", "ETHUSDT")]) == ["ETHUSDT"] * 3
    assert rows([("symbol", "!=", "ETHUSDT")]) == ["BTCUSDT"] * 3 + ["SOLUSDT"] * 3
    assert rows([("symbol", "in", ["BTCUSDT", "SOLUSDT"])]) == ["BTCUSDT"] * 3 + ["SOLUSDT"] * 3
    assert rows([("symbol", "not in", ["BTCUSDT", "SOLUSDT"])]) == ["ETHUSDT"] * 3
    ts = [("symbol", "==", "BTCUSDT")]
    assert rows(ts + [("timestamp", "<", T0 + 60_000)], "timestamp") == [T0]
    assert rows(ts + [("timestamp", "<=", T0 + 60_000)], "timestamp") == [T0, T0 + 60_000]
    assert rows(ts + [("timestamp", ">", T0 + 60_000)], "timestamp") == [T0 + 120_000]
    assert rows(ts + [("timestamp", ">=", dt.datetime(2024, 1, 1, 0, 1))], "timestamp") == [T0 + 60_000, T0 + 120_000]
    assert rows(ts + ["timestamp between [2024-01-01T00:01:00, 2024-01-01T00:01:30]"], "timestamp") == [T0 + 60_000]
    with pytest.raises(pqdm.InvalidInputError, match="unknown column `sym`"):
        ds.scan(filters=[("sym", "==", "x")])
    with pytest.raises(pqdm.InvalidInputError, match="unknown operator `~`"):
        ds.scan(filters=[("symbol", "~", "x")])
    with pytest.raises(pqdm.InvalidInputError, match="OR of ANDs"):
        ds.scan(filters=[[("symbol", "==", "x")], [("symbol", "==", "y")]])


def test_versions_history_info_latest(tmp_path):
    ds = pqdm.Dataset.create(tmp_path / "k", "klines")
    ds.write(klines(T0, 3))
    ds.write(klines(T0 + 60_000, 3).with_columns(pl.col("close") * 2))  # upsert 2 of 3, adds 1
    assert ds.version == 2
    assert ds.scan(version=1)["close"].sort().to_list() == [100.5, 101.5, 102.5]
    assert ds.scan()["close"].sort().to_list() == [100.5, 201.0, 203.0, 205.0]
    history = ds.history()
    assert [h["version"] for h in history] == [0, 1, 2]
    assert [h["operation"]["name"] for h in history] == ["create", "write", "write"]
    assert history[2]["operation"]["rows_added"] == 3 and history[2]["rows"] == 4
    info = ds.info()
    assert (info["kind"], info["version"], info["total_rows"], info["has_manifest"]) == ("klines", 2, 4, True)
    assert info["latest_timestamp"] == T0 + 3 * 60_000
    assert info["keys"][0]["key"] == {"exchange": "BINANCE", "symbol": "BTCUSDT", "timeframe": "1m"}
    assert [p["name"] for p in info["partition_columns"]] == ["exchange", "symbol", "timeframe", "year", "month", "day"]
    latest = ds.latest()
    assert latest == {"latest_timestamp": T0 + 180_000, "by_key": [
        {"key": {"exchange": "BINANCE", "symbol": "BTCUSDT", "timeframe": "1m"}, "latest_timestamp": T0 + 180_000}]}
    assert ds.latest(by=["symbol"], filters=[("timestamp", "<", T0 + 60_000)])["latest_timestamp"] == T0


def test_as_of_reads_the_version_current_at_an_instant(tmp_path):
    import time

    ds = pqdm.Dataset.create(tmp_path / "k", "klines")
    ds.write(klines(T0, 3))
    time.sleep(0.02)
    between = dt.datetime.now(dt.timezone.utc)
    time.sleep(0.02)
    ds.write(klines(T0, 3).with_columns(pl.col("close") * 2))
    old = [100.5, 101.5, 102.5]
    for at in [between, between.isoformat(), int(between.timestamp() * 1000), between.replace(tzinfo=None)]:
        assert ds.scan(as_of=at)["close"].sort().to_list() == old, at
    assert ds.scan(as_of="2100-01-01")["close"].sort().to_list() == [201.0, 203.0, 205.0]
    assert sum(len(b) for b in ds.batches(as_of=between)) == 3
    assert ds.materialize(tmp_path / "view", as_of=between)["rows_written"] == 3
    with pytest.raises(pqdm.PqdmError, match="no kept version was committed at or before 2020-01-01"):
        ds.scan(as_of=dt.date(2020, 1, 1))
    with pytest.raises(pqdm.InvalidInputError, match="not both"):
        ds.scan(version=1, as_of=between)
    with pytest.raises(pqdm.InvalidInputError, match="as_of"):
        ds.scan(as_of="yesterday")


def test_info_and_history_are_the_cli_json(tmp_path):
    import json
    import subprocess

    ds = pqdm.Dataset.create(tmp_path / "k", "klines")
    ds.write(klines(T0, 2))
    exe = os.environ.get("PQDM_BIN")
    if not exe:
        pytest.skip("no pqdm binary beside the extension (PQDM_BIN)")
    out = json.loads(subprocess.run([exe, "info", str(tmp_path / "k"), "--json"], capture_output=True, check=True).stdout)
    for extra in ("wall_ms", "peak_rss_bytes"):
        out.pop(extra)
    assert out == ds.info()
    out = json.loads(subprocess.run([exe, "history", str(tmp_path / "k"), "--json"], capture_output=True, check=True).stdout)
    assert out["versions"] == ds.history()


def test_batches_compact_verify_vacuum_materialize_cache(tmp_path):
    ds = pqdm.Dataset.create(tmp_path / "k", "klines")
    for i in range(3):
        ds.write(klines(T0 + i * 600_000, 10))
    sizes = [b.height for b in ds.batches(7)]
    assert sum(sizes) == 30 and max(sizes) <= 7
    pdf_batches = list(ds.batches(100, columns=["close"], output="pandas"))
    assert sum(len(b) for b in pdf_batches) == 30 and list(pdf_batches[0].columns) == ["close"]
    before = ds.scan().sort("timestamp")
    report = ds.compact()
    assert (report["version"], report["files_before"], report["files_after"], report["rows"]) == (4, 3, 1, 30)
    assert ds.scan().sort("timestamp").equals(before)
    assert ds.compact()["version"] is None
    verify = ds.verify()
    assert verify["missing"] == [] and verify["orphans"] == [] and verify["duplicate_keys"] == 0
    vac = ds.vacuum(retain_versions=1, retention=0)
    assert vac["versions_removed"] == [0, 1, 2, 3] and vac["files_deleted"] == 3
    assert [h["version"] for h in ds.history()] == [4]
    mat = ds.materialize(tmp_path / "view", columns=["timestamp", "close", "symbol"], filters=[("timestamp", "<", T0 + 600_000)])
    assert mat["rows_written"] == 10
    view = pqdm.Dataset.open(tmp_path / "view")
    assert view.scan(["close"])["close"].sort().to_list() == [100.5 + i for i in range(10)]
    cache = tmp_path / "cache"
    first = ds.scan(["close"], [("symbol", "==", "BTCUSDT")], cache=cache, ttl="1h")
    assert first.height == 30
    entries = pqdm.cache_entries(cache)
    assert len(entries) == 1 and entries[0]["rows"] == 30
    assert ds.scan(["close"], [("symbol", "==", "BTCUSDT")], cache=cache).equals(first)
    assert pqdm.cache_clear(cache) == 1


def test_bad_input_raises_named_errors_and_changes_nothing(tmp_path):
    with pytest.raises(pqdm.NotFoundError, match="no such folder"):
        pqdm.Dataset.open(tmp_path / "none")
    with pytest.raises(FileNotFoundError):
        pqdm.Dataset.open(tmp_path / "none")
    ds = pqdm.Dataset.create(tmp_path / "k", "klines")
    with pytest.raises(pqdm.ConflictError, match="a dataset already exists here"):
        pqdm.Dataset.create(tmp_path / "k", "klines")
    with pytest.raises(pqdm.InvalidInputError, match="unknown kind"):
        pqdm.Dataset.create(tmp_path / "x", "nokind")
    with pytest.raises(pqdm.InvalidInputError, match="holds kind `klines`, not `trades`"):
        pqdm.Dataset.open_or_create(tmp_path / "k", "trades")
    ds.write(klines(T0, 2))
    snapshot = sorted((p, open(p, "rb").read()) for p in _files(tmp_path / "k"))
    bad = klines(T0, 2).with_columns(pl.Series("open", ["1.5", "oops"]))
    with pytest.raises(pqdm.InvalidInputError, match=r"column `open`, row 2: cannot cast value \"oops\" to f64"):
        ds.write(bad)
    with pytest.raises(ValueError):
        ds.write(bad)
    with pytest.raises(pqdm.InvalidInputError, match="expected a Polars, pandas or pyarrow frame"):
        ds.write([1, 2, 3])
    with pytest.raises(pqdm.ConflictError, match="mode `error`: partition .* already holds data"):
        ds.write(klines(T0, 2), mode="error")
    with pytest.raises(pqdm.InvalidInputError, match="invalid option"):
        ds.write(klines(T0, 2), mode="sideways")
    assert sorted((p, open(p, "rb").read()) for p in _files(tmp_path / "k")) == snapshot
    assert ds.refresh() == 1


def _files(root):
    for d, _, names in os.walk(root):
        for n in names:
            yield os.path.join(d, n)


def test_object_storage_round_trip(s3):
    options, bucket, client = s3
    url = f"s3://{bucket}/klines"
    ds = pqdm.Dataset.open_or_create(url, "klines", storage_options=options)
    ds.write(klines(T0, 4).to_pandas())
    again = pqdm.Dataset.open(url, storage_options=options)
    assert again.version == 1
    got = again.scan(["timestamp", "close"], [("timestamp", ">=", T0 + 120_000)]).sort("timestamp")
    assert got.to_dict(as_series=False) == {"timestamp": [T0 + 120_000, T0 + 180_000], "close": [102.5, 103.5]}
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert "klines/_manifest.json" in keys
    assert any(k.startswith("klines/exchange=BINANCE/symbol=BTCUSDT/") and k.endswith(".parquet") for k in keys)
    with pytest.raises(pqdm.NotFoundError, match="not a pqdm dataset"):
        pqdm.Dataset.open(f"s3://{bucket}/nothing", storage_options=options)
    with pytest.raises(pqdm.InvalidInputError, match="unknown storage option `colour`"):
        pqdm.set_storage_options({"colour": "red"})


def test_storage_options_belong_to_each_dataset(s3):
    """Two datasets in one process, each with its own options: one whose endpoint answers
    nothing is refused, naming itself, while the other writes and reads on."""
    options, bucket, _ = s3
    good = pqdm.Dataset.open_or_create(f"s3://{bucket}/own", "klines", storage_options=options)
    unreachable = dict(options, endpoint="http://127.0.0.1:9")
    with pytest.raises(pqdm.PqdmError, match=f"s3://{bucket}/other"):
        pqdm.Dataset.open_or_create(f"s3://{bucket}/other", "klines", storage_options=unreachable)
    good.write(klines(T0, 3).to_pandas())
    again = pqdm.Dataset.open(f"s3://{bucket}/own", storage_options=options)
    assert again.version == 1
    assert again.scan(["close"]).height == 3


def test_a_value_that_does_not_cast_names_itself_and_the_parameter_that_helps(tmp_path):
    ds = pqdm.Dataset.create(tmp_path / "k", "klines")
    frame = klines(T0, 3).with_columns(pl.Series("close", ["1.5", "abc", "2.5"]))
    with pytest.raises(pqdm.InvalidInputError) as refused:
        ds.write(frame)
    assert str(refused.value) == (
        'frame: column `close`, row 2: cannot cast value "abc" to f64 '
        "(pass lenient=True to turn such values into nulls)"
    )
    assert ds.refresh() == 0
    report = ds.write(frame, lenient=True)
    assert (report["rows_written"], report["nulled"]) == (3, {"close": 1})


def test_every_dataset_is_a_delta_table_with_checkpoints_at_its_interval(tmp_path):
    from deltalake import DeltaTable

    ds = pqdm.Dataset.create(tmp_path / "k", "klines", checkpoint_interval=2)
    ds.write(klines(T0, 5))
    ds.write(klines(T0 + 2 * 60_000, 5))  # upsert: 3 candles replaced, 2 new
    log = sorted(os.listdir(tmp_path / "k" / "_delta_log"))
    assert "00000000000000000002.checkpoint.parquet" in log and "_last_checkpoint" in log
    table = DeltaTable(str(tmp_path / "k"))
    assert table.version() == 2
    got = pl.from_arrow(table.to_pyarrow_table()).sort("timestamp")
    assert got["timestamp"].to_list() == [T0 + i * 60_000 for i in range(7)]
    assert got["timestamp"].to_list() == ds.scan(columns=["timestamp"]).sort("timestamp")["timestamp"].to_list()
    with pytest.raises(pqdm.InvalidInputError):
        pqdm.Dataset.create(tmp_path / "z", "klines", checkpoint_interval=0)
