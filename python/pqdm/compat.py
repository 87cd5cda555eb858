"""The old ``ParquetDatasetManager``'s methods as a drop-in, on pqdm's datasets.

Each method does what the old class's documentation promised (not what its bugs did); the
README's migration page lists, per call, what it does now. Frames go in as pandas, Polars or
pyarrow and come out as pandas, as before.

Environment, as the command line reads it, with the old ``ARES_`` prefix honoured beside
``PQDM_`` (an argument wins, then ``PQDM_*``, then ``ARES_*``; empty counts as unset):
``*_SCAN_BATCH_SIZE`` (rows per batch ``scan_dataset`` reads), ``*_COMPRESSION`` and ``*_MODE``
(writes), ``PQDM_CACHE_DIR`` (the projection cache folder, default ``~/.cache/pqdm``)."""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from types import SimpleNamespace
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence

from . import _frames, _pqdm
from .dataset import Dataset, Report
from .errors import NotFoundError

_WARNED: set = set()


def _warn_once(what: str, message: str) -> None:
    """A ``DeprecationWarning`` for a parameter with no meaning any more, once per process."""
    if what not in _WARNED:
        _WARNED.add(what)
        warnings.warn(message, DeprecationWarning, stacklevel=3)


def _setting(given: Optional[str], name: str) -> Optional[str]:
    """``given``, else ``PQDM_<name>``, else ``ARES_<name>`` (empty variables count as unset)."""
    if given:
        return given
    for prefix in ("PQDM_", "ARES_"):
        value = os.environ.get(prefix + name)
        if value:
            return value
    return None


@contextlib.contextmanager
def _created(path: str, kind: str, **options: Any) -> Iterator[Dataset]:
    """The dataset at ``path``, created as ``kind`` if there is none; one this call created is
    removed again if the block fails while it is still empty (a failed first write leaves no
    empty dataset behind, as on the command line)."""
    try:
        ds, created = Dataset.open(path), False
    except NotFoundError:
        ds, created = Dataset.open_or_create(path, kind, **options), True
    try:
        yield ds
    except BaseException:
        if created:
            ds._native.discard_if_empty()
        raise


def _kind_of(df: Any, schema_name: Optional[str]) -> str:
    """The dataset kind for ``schema_name`` (the old schema names are the kinds' names); without
    one, from the frame's columns: ``agg_trade_id`` -> aggtrades, ``trade_id`` -> trades,
    ``funding_rate`` without ``open`` -> futures, ``label`` -> split, else klines."""
    if schema_name:
        return str(schema_name).lower()
    cols = {str(c).lower() for c in getattr(df, "columns", [])}
    if {"agg_trade_id", "a", "aggtradeid"} & cols:
        return "aggtrades"
    if {"trade_id", "id"} & cols and "open" not in cols:
        return "trades"
    if {"funding_rate", "fundingrate", "last_funding_rate"} & cols and "open" not in cols:
        return "futures"
    if "label" in cols:
        return "split"
    return "klines"


class ParquetDatasetManager:
    """The old manager's methods, each one call of pqdm's library (one implementation, in Rust).

    ``logger``: where the one-line reports go (default: the ``pqdm`` logger)."""

    def __init__(self, logger: Optional[logging.Logger] = None) -> None:
        self.logger = logger or logging.getLogger("pqdm")

    def write_partitioned_dataset(
        self,
        df: Any,
        base_dir: str,
        partition_cols: Optional[Sequence[str]] = None,
        schema_name: Optional[str] = None,
        compression: Optional[str] = None,
        max_rows_per_file: Optional[int] = None,
        min_rows_per_group: Optional[int] = None,
        metadata: Optional[Mapping[str, Any]] = None,
        file_visitor: Optional[Callable[[Any], None]] = None,
        mode: Optional[str] = None,
    ) -> Report:
        """Writes ``df`` into the hive-partitioned dataset at ``base_dir`` (created as the kind
        ``schema_name`` names, partitioned by ``partition_cols``, when it does not exist) as one
        atomic commit, upserting by the kind's key by default (a re-run stores no duplicates).

        Column aliases and timestamps of any unit are normalised as the kind says.
        ``file_visitor`` is called once per file written, with an object holding ``path``
        (absolute), ``size`` (bytes), ``rows`` and ``partition`` (dict). Returns the write report
        (``version``, ``rows_written``, ``files``, ...)."""
        compression = _setting(compression, "COMPRESSION")
        with _created(base_dir, _kind_of(df, schema_name), partition_by=partition_cols,
                      compression=compression, max_rows_per_file=max_rows_per_file,
                      metadata=metadata) as ds:
            if partition_cols is not None:
                stored = [p["name"] for p in ds.info()["partition_columns"]]
                if list(partition_cols) != stored:
                    _warn_once("write_partitioned_dataset.partition_cols",
                               f"partition_cols={list(partition_cols)} is ignored: {base_dir} is partitioned "
                               f"by {stored}, fixed when a dataset is created (materialize_projection "
                               "rewrites a dataset with other partitions)")
            report = ds.write(
                df,
                mode=_setting(mode, "MODE"),
                compression=compression,
                max_rows_per_file=max_rows_per_file,
                min_rows_per_group=min_rows_per_group,
                metadata=metadata,
            )
        if file_visitor is not None:
            for f in report["files"]:
                file_visitor(SimpleNamespace(
                    path=os.path.join(ds.path, f["path"]),
                    size=f["bytes"],
                    rows=f["rows"],
                    partition=f["partition"],
                ))
        self.logger.info("%s: %s rows in %s files, version %s",
                         base_dir, report["rows_written"], len(report["files"]), report["version"])
        return report

    def scan_dataset(
        self,
        base_dir: str,
        columns: Optional[Sequence[str]] = None,
        filters: Any = None,
        batch_size: Optional[int] = None,
    ) -> Any:
        """The rows of ``base_dir`` matching ``filters`` (old tuples ``(column, op, value)``,
        ops ``==, !=, <, <=, >, >=, in, not in``, ANDed) with ``columns``, as a pandas DataFrame.
        Partition and timestamp filters prune folders and files before any is read.

        ``batch_size`` (else ``PQDM_SCAN_BATCH_SIZE``/``ARES_SCAN_BATCH_SIZE``): the files are
        read by the streaming engine in batches of that many rows, joined into the one frame;
        unset, in one collect (faster, more memory)."""
        ds = Dataset.open(base_dir)
        size = batch_size or _pqdm.scan_batch_size()
        if not size:
            return ds.scan(columns, filters, output="pandas")
        import pyarrow as pa

        tables = list(ds.batches(size, columns, filters, output="pyarrow"))
        if not tables:
            return ds.scan(columns, filters, limit=0, output="pandas")
        return pa.concat_tables(tables).to_pandas()

    def write_flat_parquet(
        self,
        df: Any,
        path: str,
        compression: Optional[str] = None,
        metadata: Optional[Mapping[str, Any]] = None,
        row_group_size: Optional[int] = None,
    ) -> int:
        """Writes ``df`` as one plain Parquet file at ``path`` (no dataset, no manifest),
        atomically (a temporary name, then a rename); returns its rows."""
        return _pqdm.write_parquet_file(
            _frames.to_stream(df), os.fspath(path), _setting(compression, "COMPRESSION"),
            row_group_size, None if metadata is None else {str(k): str(v) for k, v in metadata.items()},
        )

    def enforce_schema(self, df: Any, schema_name: str) -> Any:
        """``df`` cast to the kind ``schema_name`` exactly as a write casts it: aliases
        renamed, timestamps to Int64 milliseconds, dtypes cast; a value that does not fit
        raises ``InvalidInputError`` naming column, row and value. Returns the frame type it was
        given (pandas by default)."""
        stream = _pqdm.enforce_schema(_frames.to_stream(df), _kind_of(df, schema_name))
        module = type(df).__module__.split(".")[0]
        return _frames.from_stream(stream, module if module in _frames.OUTPUTS else "pandas")

    def cached_projection(
        self,
        base_dir: str,
        columns: Optional[Sequence[str]] = None,
        filters: Any = None,
        cache_dir: Optional[str] = None,
        ttl_seconds: Optional[float] = None,
    ) -> Any:
        """The scan ``scan_dataset`` returns, kept as a Parquet entry in the cache folder
        (``cache_dir``, else ``PQDM_CACHE_DIR``, else ``~/.cache/pqdm``) keyed by the dataset's
        version, the columns and the filters: a later identical call reads only the entry; any
        commit to the dataset, or an entry older than ``ttl_seconds``, recomputes it."""
        folder = cache_dir or os.environ.get("PQDM_CACHE_DIR") or os.path.join(
            os.path.expanduser("~"), ".cache", "pqdm")
        return Dataset.open(base_dir).scan(columns, filters, output="pandas", cache=folder, ttl=ttl_seconds)

    def materialize_projection(
        self,
        base_dir: str,
        output_dir: str,
        columns: Optional[Sequence[str]] = None,
        filters: Any = None,
        partition_cols: Optional[Sequence[str]] = None,
    ) -> Report:
        """Writes the scan as a new partitioned dataset at ``output_dir`` whose manifest records
        its source (path, version, columns, filters); the write report."""
        return Dataset.open(base_dir).materialize(output_dir, columns, filters, partition_by=partition_cols)

    def compact_dataset(
        self,
        base_dir: str,
        target_rows: Optional[int] = None,
        filters: Any = None,
        min_small_files: Optional[int] = None,
    ) -> Report:
        """Rewrites each partition's small files into files near ``target_rows`` (default: the
        dataset's max rows per file), proving every row kept before an atomic commit."""
        report = Dataset.open(base_dir).compact(
            target_rows=target_rows, filters=filters, min_small_files=min_small_files)
        self.logger.info("%s: compacted %s files into %s", base_dir,
                         report["files_before"], report["files_after"])
        return report

    def migrate_flat_parquet_dir_to_partitioned(
        self,
        src_dir: str,
        dst_dir: str,
        schema_name: str,
        partition_cols: Optional[Sequence[str]] = None,
        constants: Optional[Mapping[str, Any]] = None,
        skip_bad: bool = False,
    ) -> Report:
        """Writes every flat Parquet (or CSV) file under ``src_dir`` into the dataset at
        ``dst_dir`` (created as ``schema_name``) as one commit; ``constants`` add columns the
        files lack (``{"exchange": "BINANCE"}``). An unreadable file stops it with nothing
        written, unless ``skip_bad`` (then the report's ``skipped`` names them)."""
        import json

        with _created(dst_dir, str(schema_name).lower(), partition_by=partition_cols) as ds:
            return json.loads(ds._native.migrate(
                [os.fspath(src_dir)],
                None if constants is None else {str(k): str(v) for k, v in constants.items()},
                skip_bad,
            ))

    def get_latest_timestamp(
        self,
        base_dir: str,
        filters: Any = None,
        **key: Any,
    ) -> Optional[int]:
        """The latest timestamp (Int64 ms, UTC) in ``base_dir``, or None when it holds no rows
        (or does not exist); ``filters`` or keyword values (``symbol="BTCUSDT"``) narrow it.
        Answered from the manifest, no data file read unless a filter cuts into a file."""
        triples = list(filters or []) + [(k, "==", v) for k, v in key.items() if v is not None]
        try:
            ds = Dataset.open(base_dir)
        except NotFoundError:
            return None
        return ds.latest(by=[], filters=triples)["latest_timestamp"]

    def update_manifest(self, base_dir: str, schema_name: Optional[str] = None) -> Report:
        """Brings ``base_dir``'s manifest up to date: every pqdm commit already does, so for a
        dataset this only returns its summary (``info``); a hive folder written by other tools
        (or the old class) gets a manifest for its files in place (``pqdm adopt``, as
        ``schema_name`` when given)."""
        try:
            return Dataset.open(base_dir).info()
        except NotFoundError:
            if not os.path.isdir(base_dir):
                raise
        _pqdm.adopt(os.fspath(base_dir), schema_name)
        return Dataset.open(base_dir).info()


__all__ = ["ParquetDatasetManager"]
