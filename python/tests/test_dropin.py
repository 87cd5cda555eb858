"""The drop-in ParquetDatasetManager: every method, the old usage example unchanged."""

import json
import os
import warnings

import numpy as np
import pandas as pd
import polars as pl
import pyarrow.parquet as pq
import pytest
from conftest import klines

import pqdm
from pqdm import ParquetDatasetManager

T0 = 1_704_067_200_000


def old_frame(n=4, symbol="ETHUSDT"):
    """A frame as the old callers built it: Binance's column names (``open_time``, ``count``,
    ``taker_buy_base_asset_volume`` style aliases) and microsecond ``datetime64`` times."""
    times = pd.to_datetime([T0 * 1000 + i * 60_000_000 + 123 for i in range(n)], unit="us")
    return pd.DataFrame({
        "open_time": times,
        "open": [10.0 + i for i in range(n)],
        "high": [11.0 + i for i in range(n)],
        "low": [9.0 + i for i in range(n)],
        "close": [10.5 + i for i in range(n)],
        "volume": [0.25 * i for i in range(n)],
        "count": np.arange(n, dtype="int64") * 7,
        "exchange": "BINANCE",
        "symbol": symbol,
        "timeframe": "1m",
    })


def test_the_old_usage_example_runs_unchanged(tmp_path):
    base_dir = str(tmp_path / "data" / "klines")
    # --- the old class's usage example, as its callers wrote it ---
    manager = ParquetDatasetManager()
    df = old_frame()
    manager.write_partitioned_dataset(
        df,
        base_dir,
        partition_cols=["exchange", "symbol", "timeframe", "year", "month", "day"],
        schema_name="klines",
        compression="snappy",
    )
    result = manager.scan_dataset(
        base_dir,
        columns=["timestamp", "close", "symbol"],
        filters=[("symbol", "==", "ETHUSDT"), ("timestamp", ">=", T0 + 60_000)],
    )
    latest = manager.get_latest_timestamp(base_dir)
    # --- end of the example ---
    assert isinstance(result, pd.DataFrame)
    assert result.sort_values("timestamp")["close"].tolist() == [11.5, 12.5, 13.5]
    assert latest == T0 + 3 * 60_000
    manifest = json.load(open(os.path.join(base_dir, "_manifest.json")))
    assert (manifest["file_count"], manifest["latest_timestamp"]) == (1, T0 + 3 * 60_000)


def test_old_aliases_and_microsecond_timestamps_read_back_exactly(tmp_path):
    base = str(tmp_path / "k")
    m = ParquetDatasetManager()
    df = old_frame(6)
    m.write_partitioned_dataset(df, base, schema_name="klines")
    got = m.scan_dataset(base, columns=["timestamp", "open", "high", "low", "close", "volume", "trades", "symbol"])
    got = got.sort_values("timestamp").reset_index(drop=True)
    # pqdm stores milliseconds: the microsecond times come back as their milliseconds, exactly.
    assert got["timestamp"].tolist() == [(t.value // 1000) // 1000 for t in df["open_time"]]
    assert got["timestamp"].tolist() == [T0 + i * 60_000 for i in range(6)]
    for col in ["open", "high", "low", "close", "volume"]:
        assert got[col].tolist() == df[col].tolist()
    assert got["trades"].tolist() == df["count"].tolist()
    assert got["symbol"].tolist() == ["ETHUSDT"] * 6
    # Integer microseconds (Binance spot since 2025) are normalised the same way.
    us = pd.DataFrame({"open_time": [T0 * 1000 + 6 * 60_000_000], "open": [1.0], "high": [1.0],
                       "low": [1.0], "close": [1.0], "volume": [1.0], "exchange": "BINANCE",
                       "symbol": "ETHUSDT", "timeframe": "1m"})
    m.write_partitioned_dataset(us, base, schema_name="klines")
    assert m.get_latest_timestamp(base) == T0 + 6 * 60_000


def test_write_options_file_visitor_metadata_and_upsert(tmp_path):
    base = str(tmp_path / "k")
    seen = []
    m = ParquetDatasetManager()
    report = m.write_partitioned_dataset(
        pl.concat([klines(T0, 3), klines(T0, 2, "ETHUSDT")]), base, schema_name="klines",
        compression="zstd", max_rows_per_file=2, min_rows_per_group=1,
        metadata={"source": "vision"}, file_visitor=seen.append)
    assert report["rows_written"] == 5 and report["version"] == 1
    assert sorted(v.rows for v in seen) == [1, 2, 2]
    assert all(os.path.isfile(v.path) and os.path.getsize(v.path) == v.size for v in seen)
    meta = pq.ParquetFile(seen[0].path).metadata
    assert meta.metadata[b"source"] == b"vision"
    assert meta.row_group(0).column(0).compression == "ZSTD"
    # A re-run upserts: no duplicates.
    m.write_partitioned_dataset(klines(T0, 3), base, schema_name="klines")
    assert len(m.scan_dataset(base)) == 5


def test_scan_dataset_filters_and_batch_size(tmp_path, monkeypatch):
    base = str(tmp_path / "k")
    m = ParquetDatasetManager()
    m.write_partitioned_dataset(pl.concat([klines(T0, 5), klines(T0, 5, "ETHUSDT")]), base, schema_name="klines")
    f = [("symbol", "in", ["ETHUSDT"]), ("close", ">", 101.0), ("close", "<=", 103.5), ("open", "!=", 102.0)]
    assert sorted(m.scan_dataset(base, ["close"], f)["close"]) == [101.5, 103.5]
    assert sorted(m.scan_dataset(base, ["close"], [("symbol", "not in", ["ETHUSDT"]), ("close", "<", 101)])["close"]) == [100.5]
    by_batches = m.scan_dataset(base, ["timestamp", "symbol"], batch_size=3)
    assert len(by_batches) == 10
    monkeypatch.setenv("ARES_SCAN_BATCH_SIZE", "4")
    assert len(m.scan_dataset(base, ["timestamp"], [("symbol", "==", "ETHUSDT")])) == 5
    empty = m.scan_dataset(base, ["timestamp", "close"], [("symbol", "==", "NONE")])
    assert list(empty.columns) == ["timestamp", "close"] and len(empty) == 0
    with pytest.raises(pqdm.InvalidInputError):
        m.scan_dataset(base, filters=[("close", "like", 1)])


def test_partition_cols_of_an_existing_dataset_warn_once(tmp_path):
    base = str(tmp_path / "k")
    m = ParquetDatasetManager()
    m.write_partitioned_dataset(klines(T0, 1), base, schema_name="klines")
    pqdm.compat._WARNED.discard("write_partitioned_dataset.partition_cols")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m.write_partitioned_dataset(klines(T0, 1), base, partition_cols=["symbol"], schema_name="klines")
        m.write_partitioned_dataset(klines(T0, 1), base, partition_cols=["symbol"], schema_name="klines")
    texts = [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)]
    assert len(texts) == 1 and "partition_cols=['symbol'] is ignored" in texts[0]


def test_write_flat_parquet_and_enforce_schema(tmp_path):
    m = ParquetDatasetManager()
    path = str(tmp_path / "flat" / "part-0.parquet")
    os.makedirs(os.path.dirname(path))
    assert m.write_flat_parquet(old_frame(3), path, compression="gzip", metadata={"a": "b"}) == 3
    table = pq.read_table(path)
    assert table.num_rows == 3 and table.column("close").to_pylist() == [10.5, 11.5, 12.5]
    assert pq.ParquetFile(path).metadata.metadata[b"a"] == b"b"
    assert os.listdir(os.path.dirname(path)) == ["part-0.parquet"]
    cast = m.enforce_schema(old_frame(2), "klines")
    assert isinstance(cast, pd.DataFrame)
    assert cast["timestamp"].tolist() == [T0, T0 + 60_000]
    assert cast["trades"].tolist() == [0, 7]
    assert str(cast["timestamp"].dtype) == "int64"
    assert isinstance(m.enforce_schema(pl.from_pandas(old_frame(2)), "klines"), pl.DataFrame)
    bad = old_frame(2).assign(open=["1", "x"])
    with pytest.raises(pqdm.InvalidInputError, match=r"column `open`, row 2"):
        m.enforce_schema(bad, "klines")


def test_cached_projection_ttl_and_materialize(tmp_path):
    base = str(tmp_path / "k")
    m = ParquetDatasetManager()
    m.write_partitioned_dataset(klines(T0, 4), base, schema_name="klines")
    cache = str(tmp_path / "cache")
    a = m.cached_projection(base, ["close"], [("symbol", "==", "BTCUSDT")], cache_dir=cache, ttl_seconds=3600)
    assert sorted(a["close"]) == [100.5, 101.5, 102.5, 103.5]
    assert len(pqdm.cache_entries(cache)) == 1
    b = m.cached_projection(base, ["close"], [("symbol", "==", "BTCUSDT")], cache_dir=cache, ttl_seconds=3600)
    assert b.equals(a)
    m.write_partitioned_dataset(klines(T0 + 4 * 60_000, 1), base, schema_name="klines")
    c = m.cached_projection(base, ["close"], [("symbol", "==", "BTCUSDT")], cache_dir=cache)
    assert len(c) == 5  # a commit changes the key: recomputed
    report = m.materialize_projection(base, str(tmp_path / "view"), ["timestamp", "close", "symbol"],
                                      [("timestamp", "<", T0 + 120_000)], partition_cols=["symbol"])
    assert report["rows_written"] == 2
    view = pqdm.Dataset.open(tmp_path / "view")
    assert [p["name"] for p in view.info()["partition_columns"]] == ["symbol"]
    assert json.load(open(tmp_path / "view" / "_manifest.json"))["source"]["columns"] == ["timestamp", "close", "symbol"]


def test_compact_migrate_latest_update_manifest(tmp_path):
    base = str(tmp_path / "k")
    m = ParquetDatasetManager()
    for i in range(3):
        m.write_partitioned_dataset(klines(T0 + i * 60_000, 1), base, schema_name="klines")
    report = m.compact_dataset(base, target_rows=100)
    assert (report["files_before"], report["files_after"], report["rows"]) == (3, 1, 3)
    flat = tmp_path / "old_output"
    flat.mkdir()
    old_frame(3, "BTCUSDT").drop(columns=["exchange"]).to_parquet(flat / "part-0.parquet")
    old_frame(2, "ETHUSDT").drop(columns=["exchange"]).to_parquet(flat / "part-1.parquet")
    mig = m.migrate_flat_parquet_dir_to_partitioned(str(flat), str(tmp_path / "migrated"), "klines",
                                                    constants={"exchange": "BINANCE"})
    assert mig["rows_written"] == 5 and mig["skipped"] == []
    assert m.get_latest_timestamp(str(tmp_path / "migrated"), symbol="ETHUSDT") == T0 + 60_000
    assert m.get_latest_timestamp(str(tmp_path / "migrated"), [("symbol", "==", "BTCUSDT")]) == T0 + 120_000
    assert m.get_latest_timestamp(str(tmp_path / "nothing")) is None
    with pytest.raises(pqdm.NotFoundError, match="no_such_dir"):
        m.migrate_flat_parquet_dir_to_partitioned(str(tmp_path / "no_such_dir"), str(tmp_path / "m2"), "klines")
    assert not os.path.exists(tmp_path / "m2")  # the dataset the failed call created is gone
    bad = old_frame(2).assign(open=["1", "x"])
    with pytest.raises(pqdm.InvalidInputError, match=r"column `open`, row 2: cannot cast value \"x\""):
        m.write_partitioned_dataset(bad, str(tmp_path / "new"), schema_name="klines")
    assert not os.path.exists(tmp_path / "new")
    info = m.update_manifest(base)
    assert (info["version"], info["total_rows"]) == (4, 3)
    # A hive folder the old class wrote (no pqdm manifest) gets one in place.
    hive = tmp_path / "hive" / "exchange=BINANCE" / "symbol=BTCUSDT" / "timeframe=1m"
    hive.mkdir(parents=True)
    klines(T0, 2).drop("exchange", "symbol", "timeframe").write_parquet(hive / "part-0.parquet")
    adopted = m.update_manifest(str(tmp_path / "hive"), "klines")
    assert (adopted["version"], adopted["total_rows"], adopted["kind"]) == (1, 2, "klines")
    assert m.get_latest_timestamp(str(tmp_path / "hive")) == T0 + 60_000


def test_ares_variables_set_compression_and_mode(tmp_path, monkeypatch):
    base = str(tmp_path / "k")
    m = ParquetDatasetManager()
    seen = []
    monkeypatch.setenv("ARES_COMPRESSION", "gzip")
    monkeypatch.setenv("ARES_MODE", "append")
    m.write_partitioned_dataset(klines(T0, 2), base, schema_name="klines", file_visitor=seen.append)
    m.write_partitioned_dataset(klines(T0, 2), base, schema_name="klines")
    assert len(m.scan_dataset(base)) == 4  # appended twice, not upserted
    assert pq.ParquetFile(seen[0].path).metadata.row_group(0).column(0).compression == "GZIP"
    monkeypatch.setenv("PQDM_MODE", "upsert")  # PQDM_* before ARES_*, an argument before both
    m.write_partitioned_dataset(klines(T0, 2).with_columns(pl.col("close") * 2), base, schema_name="klines")
    assert sorted(m.scan_dataset(base)["close"]) == [201.0, 203.0]
    m.write_partitioned_dataset(klines(T0, 2), base, schema_name="klines", mode="append")
    assert len(m.scan_dataset(base)) == 4
