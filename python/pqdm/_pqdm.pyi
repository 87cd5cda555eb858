"""Type stubs of the native core ``pqdm._pqdm`` (Rust, PyO3). Use :mod:`pqdm` instead: these
take filters as ``(column, op, [values as text])`` triples and return reports as JSON text."""

from typing import Any, Dict, Iterator, List, Optional, Tuple

__version__: str

Triple = Tuple[str, str, List[str]]

class ArrowStream:
    """A result read once through the Arrow C stream interface."""

    def __arrow_c_stream__(self, requested_schema: Optional[Any] = None) -> Any: ...
    def __len__(self) -> int: ...

class Batches(Iterator[ArrowStream]):
    def __iter__(self) -> "Batches": ...
    def __next__(self) -> ArrowStream: ...

class NativeDataset:
    @staticmethod
    def open(
        path: str, any: bool = False, storage_options: Optional[Dict[str, str]] = None
    ) -> "NativeDataset": ...
    @staticmethod
    def create(
        path: str,
        kind: str,
        exists_ok: bool,
        partition_by: Optional[List[str]] = None,
        compression: Optional[str] = None,
        max_rows_per_file: Optional[int] = None,
        auto_compact: Optional[int] = None,
        checkpoint_interval: Optional[int] = None,
        metadata: Optional[Dict[str, str]] = None,
        storage_options: Optional[Dict[str, str]] = None,
    ) -> "NativeDataset": ...
    @property
    def path(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def kind(self) -> str: ...
    def refresh(self) -> int: ...
    def discard_if_empty(self) -> bool: ...
    def write(
        self,
        data: Any,
        mode: Optional[str] = None,
        compression: Optional[str] = None,
        max_rows_per_file: Optional[int] = None,
        min_rows_per_group: Optional[int] = None,
        row_group_size: Optional[int] = None,
        metadata: Optional[Dict[str, str]] = None,
        constants: Optional[Dict[str, str]] = None,
        lenient: bool = False,
        timestamp_unit: Optional[str] = None,
        compact_after: Optional[int] = None,
    ) -> str: ...
    def scan(
        self,
        columns: Optional[List[str]] = None,
        filters: List[Triple] = ...,
        version: Optional[int] = None,
        limit: Optional[int] = None,
    ) -> ArrowStream: ...
    def cached_scan(
        self,
        cache_dir: str,
        ttl_seconds: Optional[float] = None,
        columns: Optional[List[str]] = None,
        filters: List[Triple] = ...,
        version: Optional[int] = None,
    ) -> Tuple[ArrowStream, str]: ...
    def batches(
        self,
        batch_size: int,
        columns: Optional[List[str]] = None,
        filters: List[Triple] = ...,
        version: Optional[int] = None,
    ) -> Batches: ...
    def version_as_of(self, at_ms: int) -> int: ...
    def latest(self, by: List[str] = ..., filters: List[Triple] = ...) -> str: ...
    def info(self) -> str: ...
    def history(self) -> str: ...
    def compact(
        self,
        target_rows: Optional[int] = None,
        filters: List[Triple] = ...,
        min_small_files: Optional[int] = None,
    ) -> str: ...
    def verify(self, repair: bool) -> str: ...
    def vacuum(self, retain_versions: int, retention_seconds: float) -> str: ...
    def materialize(
        self,
        to: str,
        columns: Optional[List[str]] = None,
        filters: List[Triple] = ...,
        version: Optional[int] = None,
        partition_by: Optional[List[str]] = None,
    ) -> str: ...
    def migrate(
        self,
        sources: List[str],
        constants: Optional[Dict[str, str]] = None,
        skip_bad: bool = False,
    ) -> str: ...

def set_storage_options(options: Dict[str, str]) -> None: ...
def kinds() -> List[str]: ...
def kind_columns(kind: str) -> List[Tuple[str, str]]: ...
def enforce_schema(
    data: Any, kind: str, constants: Optional[Dict[str, str]] = None, lenient: bool = False
) -> ArrowStream: ...
def cache_entries(dir: str) -> str: ...
def cache_clear(dir: str) -> int: ...
def cache_gc(dir: str, ttl_seconds: Optional[float] = None, max_bytes: Optional[int] = None) -> List[str]: ...
def scan_batch_size() -> Optional[int]: ...
def write_parquet_file(
    data: Any,
    path: str,
    compression: Optional[str] = None,
    row_group_size: Optional[int] = None,
    metadata: Optional[Dict[str, str]] = None,
) -> int: ...
def adopt(path: str, kind: Optional[str] = None) -> str: ...
