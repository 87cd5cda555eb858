"""pqdm: hive-partitioned Parquet datasets of market data with a versioned manifest and atomic
commits, on a local disk or S3 — the Python front of the Rust library (one implementation).

- :class:`Dataset`: ``open``/``create``/``open_or_create``, ``write`` (Polars, pandas, pyarrow
  frames), ``scan`` (Polars, pandas or pyarrow; lazy on request), ``batches``, ``latest``,
  ``info``, ``history``, ``compact``, ``verify``, ``vacuum``, ``materialize``.
- :class:`ParquetDatasetManager`: the old class's methods as a drop-in.
- :class:`PqdmError` and its subclasses :class:`InvalidInputError`, :class:`ConflictError`,
  :class:`NotFoundError`.
"""

from ._pqdm import __version__
from .compat import ParquetDatasetManager
from .dataset import Dataset, cache_clear, cache_entries, cache_gc, set_storage_options
from .errors import ConflictError, InvalidInputError, NotFoundError, PqdmError


def kinds() -> list:
    """The names of the built-in dataset kinds."""
    from . import _pqdm

    return _pqdm.kinds()


def kind_columns(kind: str) -> list:
    """A kind's columns as ``(name, dtype)`` pairs, in order (``i64``, ``f64``, ``str``, ...)."""
    from . import _pqdm

    return _pqdm.kind_columns(kind)


__all__ = [
    "__version__",
    "Dataset",
    "ParquetDatasetManager",
    "PqdmError",
    "InvalidInputError",
    "ConflictError",
    "NotFoundError",
    "set_storage_options",
    "cache_entries",
    "cache_clear",
    "cache_gc",
    "kinds",
    "kind_columns",
]
