"""Frames in and out: Polars, pandas and pyarrow frames go to the native core, and results come
back, through the Arrow C stream interface (no copy on either side but pandas' own)."""

from __future__ import annotations

import datetime as _dt
from typing import Any, Iterable, List, Optional, Sequence, Tuple

from .errors import InvalidInputError

OUTPUTS = ("polars", "pandas", "pyarrow")


def to_stream(data: Any) -> Any:
    """An object with ``__arrow_c_stream__`` holding ``data``'s rows.

    Accepts a Polars ``DataFrame`` or ``LazyFrame`` (collected), a pandas ``DataFrame`` (its
    index is not written), a pyarrow ``Table``, ``RecordBatch`` or ``RecordBatchReader``, or any
    object of the Arrow PyCapsule interface."""
    module = type(data).__module__.split(".")[0]
    if module == "polars" and hasattr(data, "collect"):
        return data.collect()
    if module == "pandas":
        import pyarrow as pa

        return pa.Table.from_pandas(data, preserve_index=False)
    if hasattr(data, "__arrow_c_stream__"):
        return data
    raise InvalidInputError(
        f"expected a Polars, pandas or pyarrow frame, got {type(data).__module__}.{type(data).__name__}"
    )


def from_stream(stream: Any, output: str) -> Any:
    """The frame of ``output`` kind (``polars``, ``pandas`` or ``pyarrow``) reading ``stream``."""
    if output == "polars":
        import polars as pl

        return pl.DataFrame(stream)
    if output in ("pyarrow", "pandas"):
        import pyarrow as pa

        table = pa.table(stream)
        return table if output == "pyarrow" else table.to_pandas()
    raise InvalidInputError(f"output must be one of {', '.join(OUTPUTS)}, not {output!r}")


def _text(value: Any) -> str:
    """A filter value as the text pqdm types by the column (dates and times as epoch ms, UTC)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, str)):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        return str(int(round(value.timestamp() * 1000)))
    if isinstance(value, _dt.date):
        return value.isoformat()
    if type(value).__module__.split(".")[0] == "numpy":
        import numpy as np

        if isinstance(value, np.datetime64):
            return str(int(value.astype("datetime64[ms]").astype("int64")))
        return _text(value.item())
    raise InvalidInputError(f"filter value {value!r} of type {type(value).__name__} is not supported")


Triple = Tuple[str, str, List[str]]


def filters(given: Optional[Iterable[Any]]) -> List[Triple]:
    """Filters as the native core takes them, from tuples ``(column, op, value)`` (ops ``==, !=,
    <, <=, >, >=, in, not in, between, is_null, is_not_null``; a list for ``in``/``not in``, two
    values for ``between``) or strings in the command line's grammar (``"symbol == BTCUSDT"``).
    Any number of them, ANDed. A list of lists (pyarrow's OR of ANDs) is refused."""
    if given is None:
        return []
    if isinstance(given, (str, tuple)):
        given = [given]
    out: List[Triple] = []
    for f in given:
        if isinstance(f, str):
            out.append((f, "", []))
            continue
        if isinstance(f, list) and f and all(isinstance(x, (tuple, list)) for x in f):
            raise InvalidInputError(
                f"filters {given!r}: a list of lists (an OR of ANDs) is not supported; "
                "give one list of (column, op, value) tuples, which are ANDed"
            )
        if not isinstance(f, (tuple, list)) or len(f) not in (2, 3):
            raise InvalidInputError(
                f"filter {f!r}: expected (column, op, value) or a string such as 'symbol == BTCUSDT'"
            )
        column, op = str(f[0]), str(f[1]).strip().lower()
        value = f[2] if len(f) == 3 else None
        if op in ("in", "not in", "not_in", "between"):
            if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
                raise InvalidInputError(f"filter {f!r}: `{op}` takes a list of values")
            values = [_text(v) for v in value]
        elif op in ("is_null", "is_not_null", "is null", "is not null"):
            values = []
        else:
            if value is None:
                raise InvalidInputError(
                    f"filter {f!r}: a comparison with None matches nothing; use (column, 'is_null')"
                )
            values = [_text(value)]
        out.append((column, op, values))
    return out


def columns(given: Optional[Sequence[str]]) -> Optional[List[str]]:
    """A column list (a single name is one column)."""
    if given is None:
        return None
    if isinstance(given, str):
        return [given]
    return [str(c) for c in given]
