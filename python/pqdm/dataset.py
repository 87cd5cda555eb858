"""The Pythonic API: :class:`Dataset`, one pqdm dataset on a local disk or at ``s3://``."""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Union

from . import _frames, _pqdm

PathLike = Union[str, "os.PathLike[str]"]
Report = Dict[str, Any]

DEFAULT_BATCH_SIZE = 262_144


def set_storage_options(options: Optional[Mapping[str, Any]]) -> None:
    """Object-storage settings for ``s3://`` datasets (``endpoint``, ``region``,
    ``access_key_id``, ``secret_access_key``, ``session_token``, ``allow_http``,
    ``skip_signature``, ``single_writer``, or any key of object_store's S3 client), over the
    ``AWS_*`` variables and ``~/.aws``: the defaults of every dataset opened afterwards without
    ``storage_options`` of its own (as the command line's ``--storage-option``); the last call
    wins. An unknown key raises ``InvalidInputError``."""
    if options is None:
        return
    _pqdm.set_storage_options({str(k): _option_text(v) for k, v in options.items()})


def _options(options: Optional[Mapping[str, Any]]) -> Optional[Dict[str, str]]:
    if options is None:
        return None
    return {str(k): _option_text(v) for k, v in options.items()}


def _option_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _path(path: PathLike) -> str:
    """A local path with ``~`` expanded, or an ``s3://`` URL as it is."""
    return os.path.expanduser(os.fspath(path))


def _millis(value: Any) -> int:
    """An instant in ms since the epoch, UTC: ms as an int, a ``datetime`` (naive ones are
    taken as UTC) or ISO-8601 text (``2024-01-05``, ``2024-01-05T10:00:00Z``)."""
    import datetime as dt

    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            value = None
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return int(value.timestamp() * 1000)
    from .errors import InvalidInputError

    raise InvalidInputError("invalid option: as_of: expected ms since the epoch, a datetime or ISO-8601 text")


def _seconds(value: Union[None, int, float, str]) -> Optional[float]:
    """A duration in seconds from a number or text such as ``30m``, ``1h``, ``7d``."""
    if value is None or isinstance(value, (int, float)):
        return value
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    text = str(value).strip()
    for unit in sorted(units, key=len, reverse=True):
        if text.endswith(unit) and text[: -len(unit)].strip().replace(".", "", 1).isdigit():
            return float(text[: -len(unit)]) * units[unit]
    from .errors import InvalidInputError

    raise InvalidInputError(f"invalid option: duration {value!r}: expected seconds or e.g. 30m, 1h, 7d")


class Dataset:
    """A hive-partitioned Parquet dataset with a versioned manifest (a folder or
    ``s3://bucket/prefix``).

    >>> ds = pqdm.Dataset.open_or_create("/data/klines", kind="klines")
    >>> ds.write(frame, constants={"exchange": "BINANCE"})["version"]
    1
    >>> ds.scan(columns=["timestamp", "close"], filters=[("symbol", "==", "BTCUSDT")])

    Every method that reads or writes data releases the GIL while pqdm works, so threads run
    in parallel, and Ctrl-C stops it cleanly (an interrupted write leaves the last version)."""

    def __init__(self, native: "_pqdm.NativeDataset") -> None:
        self._native = native

    @classmethod
    def open(cls, path: PathLike, *, storage_options: Optional[Mapping[str, Any]] = None) -> "Dataset":
        """Opens the dataset at ``path``; raises ``NotFoundError`` when there is none.
        ``storage_options`` (see :func:`set_storage_options`) are this dataset's own."""
        return cls(_pqdm.NativeDataset.open(_path(path), False, _options(storage_options)))

    @classmethod
    def create(
        cls,
        path: PathLike,
        kind: str,
        *,
        partition_by: Optional[Sequence[str]] = None,
        compression: Optional[str] = None,
        max_rows_per_file: Optional[int] = None,
        auto_compact: Optional[int] = None,
        checkpoint_interval: Optional[int] = None,
        metadata: Optional[Mapping[str, Any]] = None,
        storage_options: Optional[Mapping[str, Any]] = None,
    ) -> "Dataset":
        """Creates an empty dataset (version 0) of ``kind`` (``klines``, ``aggtrades``,
        ``trades``, ``futures``, ``split``, ``unified``); raises ``ConflictError`` if one exists.
        The dataset is also a Delta Lake table (``deltalake.DeltaTable(path)`` reads it); it
        writes a Delta checkpoint every ``checkpoint_interval`` versions (default 100)."""
        return cls._create(path, kind, False, partition_by, compression, max_rows_per_file,
                           auto_compact, checkpoint_interval, metadata, storage_options)

    @classmethod
    def open_or_create(
        cls,
        path: PathLike,
        kind: str,
        *,
        partition_by: Optional[Sequence[str]] = None,
        compression: Optional[str] = None,
        max_rows_per_file: Optional[int] = None,
        auto_compact: Optional[int] = None,
        checkpoint_interval: Optional[int] = None,
        metadata: Optional[Mapping[str, Any]] = None,
        storage_options: Optional[Mapping[str, Any]] = None,
    ) -> "Dataset":
        """Opens the dataset at ``path``, creating it as ``kind`` if there is none; one of
        another kind raises ``InvalidInputError``. Safe when several processes race."""
        return cls._create(path, kind, True, partition_by, compression, max_rows_per_file,
                           auto_compact, checkpoint_interval, metadata, storage_options)

    @classmethod
    def _create(cls, path, kind, exists_ok, partition_by, compression, max_rows_per_file,
                auto_compact, checkpoint_interval, metadata, storage_options) -> "Dataset":
        native = _pqdm.NativeDataset.create(
            _path(path), kind, exists_ok, _frames.columns(partition_by), compression,
            max_rows_per_file, auto_compact, checkpoint_interval,
            None if metadata is None else {str(k): str(v) for k, v in metadata.items()},
            _options(storage_options),
        )
        return cls(native)

    @property
    def path(self) -> str:
        """The base folder or URL."""
        return self._native.path

    @property
    def version(self) -> int:
        """The version this handle last loaded or committed (see :meth:`refresh`)."""
        return self._native.version

    @property
    def kind(self) -> str:
        """The dataset's kind."""
        return self._native.kind

    def refresh(self) -> int:
        """Loads the current version (other writers' commits); returns it."""
        return self._native.refresh()

    def write(
        self,
        data: Any,
        *,
        mode: Optional[str] = None,
        compression: Optional[str] = None,
        max_rows_per_file: Optional[int] = None,
        min_rows_per_group: Optional[int] = None,
        row_group_size: Optional[int] = None,
        metadata: Optional[Mapping[str, Any]] = None,
        constants: Optional[Mapping[str, Any]] = None,
        lenient: bool = False,
        timestamp_unit: Optional[str] = None,
        compact_after: Optional[int] = None,
    ) -> Report:
        """Writes a Polars, pandas or pyarrow frame as one atomic commit; returns the report
        ``pqdm ingest --json`` prints (``version``, ``mode``, ``rows_written``, ``files``, ...).

        Columns are matched to the kind case-insensitively with the common aliases
        (``open_time`` -> ``timestamp``, ``qty`` -> ``quantity``, ...), timestamps of any unit or
        date-time type are stored as milliseconds. ``mode``: ``upsert`` (default for keyed
        kinds), ``append``, ``overwrite``, ``error``. ``constants`` fill columns the frame lacks
        (``exchange``, ``symbol``, ``timeframe``). A value that cannot be cast raises
        ``InvalidInputError`` naming column, row and value, and nothing is written."""
        report = self._native.write(
            _frames.to_stream(data), mode, compression, max_rows_per_file, min_rows_per_group,
            row_group_size,
            None if metadata is None else {str(k): str(v) for k, v in metadata.items()},
            None if constants is None else {str(k): str(v) for k, v in constants.items()},
            lenient, timestamp_unit, compact_after,
        )
        return json.loads(report)

    def scan(
        self,
        columns: Optional[Sequence[str]] = None,
        filters: Any = None,
        version: Optional[int] = None,
        *,
        limit: Optional[int] = None,
        lazy: bool = False,
        output: str = "polars",
        cache: Optional[PathLike] = None,
        ttl: Union[None, int, float, str] = None,
        as_of: Any = None,
    ) -> Any:
        """Reads the rows matching ``filters`` (tuples ``(column, op, value)`` or strings such
        as ``"timestamp >= 2024-01-05"``, ANDed; partition and timestamp filters prune folders
        and files before any is opened) with ``columns``, at ``version`` (default: current) or
        at the version that was current at ``as_of`` (a ``datetime``, ISO-8601 text or ms: the
        newest kept version committed at or before it).

        Returns a Polars ``DataFrame``; ``output="pandas"`` or ``"pyarrow"`` for those;
        ``lazy=True`` a Polars ``LazyFrame`` whose projection and row limit are pushed into
        pqdm's scan when it is collected. ``cache`` (a folder) keeps the result as a projection
        cache entry (``ttl``: recompute entries older than this)."""
        cols, triples = _frames.columns(columns), _frames.filters(filters)
        version = self._version_to_read(version, as_of)
        if lazy:
            if output != "polars" or cache is not None:
                from .errors import InvalidInputError

                raise InvalidInputError("lazy=True returns a Polars LazyFrame: no output or cache")
            return self._lazy(cols, triples, version, limit)
        if cache is not None:
            stream, _status = self._native.cached_scan(_path(cache), _seconds(ttl), cols, triples, version)
            frame = _frames.from_stream(stream, output)
            return frame if limit is None else frame[:limit]
        return _frames.from_stream(self._native.scan(cols, triples, version, limit), output)

    def _version_to_read(self, version: Optional[int], as_of: Any) -> Optional[int]:
        if as_of is None:
            return version
        if version is not None:
            from .errors import InvalidInputError

            raise InvalidInputError("name the version to read by its number or by as_of, not both")
        return self._native.version_as_of(_millis(as_of))

    def _lazy(self, cols, triples, version, limit):
        import polars as pl
        from polars.io.plugins import register_io_source

        native = self._native
        schema = pl.DataFrame(native.scan(cols, triples, version, 0)).schema

        def source(with_columns, predicate, n_rows, batch_size):
            rows = n_rows if limit is None else min(n_rows if n_rows is not None else limit, limit)
            frame = pl.DataFrame(native.scan(with_columns or cols, triples, version, rows))
            yield frame if predicate is None else frame.filter(predicate)

        return register_io_source(source, schema=schema)

    def batches(
        self,
        batch_size: Optional[int] = None,
        columns: Optional[Sequence[str]] = None,
        filters: Any = None,
        version: Optional[int] = None,
        *,
        output: str = "polars",
        as_of: Any = None,
    ) -> Iterator[Any]:
        """The scan in frames of at most ``batch_size`` rows (default: ``PQDM_SCAN_BATCH_SIZE``,
        ``ARES_SCAN_BATCH_SIZE``, ``pqdm.toml``, else 262,144), read as they are consumed."""
        version = self._version_to_read(version, as_of)
        size = batch_size or _pqdm.scan_batch_size() or DEFAULT_BATCH_SIZE
        native = self._native.batches(size, _frames.columns(columns), _frames.filters(filters), version)
        for stream in native:
            yield _frames.from_stream(stream, output)

    def latest(self, by: Optional[Sequence[str]] = None, filters: Any = None) -> Report:
        """The latest timestamp (ms) overall and per value of ``by`` (default: the partition
        columns but the derived year/month/day), from the manifest: the fields of
        ``pqdm latest --json``, ``latest_timestamp`` and ``by_key``."""
        triples = _frames.filters(filters)
        overall = json.loads(self._native.latest([], triples))
        if by is None:
            info = self.info()
            derived = {"year", "month", "day", "date", "hour"}
            by = [p["name"] for p in info["partition_columns"] if p["name"] not in derived]
        per_key = json.loads(self._native.latest(list(by), triples)) if by else []
        return {
            "latest_timestamp": overall[0]["latest_timestamp"] if overall else None,
            "by_key": per_key,
        }

    def info(self) -> Report:
        """The fields of ``pqdm info --json``: kind, schema, partition columns, version, files,
        rows, bytes, time range, ``keys`` (per exchange/symbol/...) and ``has_manifest``."""
        return json.loads(self._native.info())

    def history(self) -> List[Report]:
        """One entry per kept version, oldest first (``pqdm history --json``'s ``versions``)."""
        return json.loads(self._native.history())

    def compact(
        self,
        *,
        target_rows: Optional[int] = None,
        filters: Any = None,
        min_small_files: Optional[int] = None,
    ) -> Report:
        """Rewrites small files of each partition into files near ``target_rows``, verified
        and atomic (``pqdm compact --json``); ``version`` is None when nothing needed it."""
        return json.loads(self._native.compact(target_rows, _frames.filters(filters), min_small_files))

    def verify(self, *, repair: bool = False) -> Report:
        """Checks files against the manifest, duplicate keys, gaps and bad values
        (``pqdm verify --json``); ``repair=True`` fixes what it safely can."""
        return json.loads(self._native.verify(repair))

    def vacuum(self, *, retain_versions: int = 10, retention: Union[int, float, str] = "1h") -> Report:
        """Deletes versions beyond the newest ``retain_versions`` and the files none of them
        references once they left the current version longer ago than ``retention``."""
        return json.loads(self._native.vacuum(retain_versions, _seconds(retention)))

    def materialize(
        self,
        to: PathLike,
        columns: Optional[Sequence[str]] = None,
        filters: Any = None,
        version: Optional[int] = None,
        *,
        partition_by: Optional[Sequence[str]] = None,
        as_of: Any = None,
    ) -> Report:
        """Writes the scan as a new dataset at ``to`` whose manifest records its source."""
        version = self._version_to_read(version, as_of)
        return json.loads(self._native.materialize(
            _path(to), _frames.columns(columns), _frames.filters(filters), version,
            _frames.columns(partition_by),
        ))

    def __repr__(self) -> str:
        return f"pqdm.Dataset({self.path!r}, kind={self.kind!r}, version={self.version})"


def cache_entries(cache_dir: PathLike) -> List[Report]:
    """The entries of a projection cache folder (``pqdm cache ls --json``)."""
    return json.loads(_pqdm.cache_entries(_path(cache_dir)))


def cache_clear(cache_dir: PathLike) -> int:
    """Removes every entry of a projection cache folder; how many."""
    return _pqdm.cache_clear(_path(cache_dir))


def cache_gc(cache_dir: PathLike, *, ttl: Union[None, int, float, str] = None,
             max_bytes: Optional[int] = None) -> List[str]:
    """Removes expired entries, those of versions their dataset moved past and of datasets that
    are gone, then the least recently used beyond ``max_bytes``; their keys."""
    return _pqdm.cache_gc(_path(cache_dir), _seconds(ttl), max_bytes)
