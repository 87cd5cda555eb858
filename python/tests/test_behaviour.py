"""Behaving well inside Python: the GIL released, Ctrl-C, exit, logging."""

import json
import threading
import time

import polars as pl
from conftest import klines, run_python

import pqdm

T0 = 1_704_067_200_000


def big(n, symbol):
    """``n`` candles over many days (one file per day)."""
    return klines(T0, n, symbol)


def test_two_threads_scan_two_datasets_in_parallel_with_the_gil_released(tmp_path):
    datasets = []
    for name in ("a", "b"):
        ds = pqdm.Dataset.create(tmp_path / name, "klines", partition_by=["symbol"])
        ds.write(big(1_500_000, name.upper()))
        datasets.append(ds)
    spans = {}
    ticks = []

    def scan(ds):
        start = time.perf_counter()
        rows = ds.scan(["timestamp", "close"], [("close", ">", 0.0)]).height
        spans[ds.path] = (start, time.perf_counter(), rows)

    threads = [threading.Thread(target=scan, args=(ds,)) for ds in datasets]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        ticks.append(time.perf_counter())  # Python runs here only while no scan holds the GIL
        time.sleep(0.001)
    for t in threads:
        t.join()
    (a0, a1, ra), (b0, b1, rb) = spans.values()
    assert ra == rb == 1_500_000
    # Both calls were inside Rust at the same time: each started before the other ended.
    assert a0 < b1 and b0 < a1, spans
    # And the main thread kept running Python meanwhile.
    inside = [t for t in ticks if max(a0, b0) < t < min(a1, b1)]
    assert len(inside) >= 3, (len(inside), spans)


INTERRUPT = r"""
import json, os, signal, threading, time
import polars as pl
import pqdm
from conftest import klines

T0 = 1_704_067_200_000
ds = pqdm.Dataset.create({path!r}, "klines")
ds.write(klines(T0, 1000))
before = ds.scan().sort("timestamp")
# Ctrl-C while the second write (the third commit, after create) is held 3 s at a failpoint: sent
# once the file that step follows exists (its journal, or its log entry: the commit point).
def interrupt_when_written():
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        folder = os.path.join({path!r}, {watch!r})
        if any(name.startswith({prefix!r}) for name in (os.listdir(folder) if os.path.isdir(folder) else [])):
            os.kill(os.getpid(), signal.SIGINT)
            return
        time.sleep(0.005)
threading.Thread(target=interrupt_when_written, daemon=True).start()
started = time.monotonic()
try:
    ds.write(klines(T0 + 500 * 60_000, 200_000).with_columns(pl.col("close") * 3))
    outcome = "finished"
except KeyboardInterrupt:
    outcome = "interrupted"
after = pqdm.Dataset.open({path!r})
staged = [n for d, _, names in os.walk({path!r}) for n in names if n.endswith(".staged")]
print(json.dumps({{
    "outcome": outcome,
    "seconds": time.monotonic() - started,
    "version": after.version,
    "same_rows": after.scan().sort("timestamp").equals(before),
    "staged": staged,
    "verify_problems": [k for k, v in after.verify().items() if k in ("missing", "orphans", "checksum_mismatches") and v],
    "history": [h["version"] for h in after.history()],
}}))
"""


def interrupted_write(tmp_path, held_at, watch, prefix):
    """The INTERRUPT script's findings: its second write held 3 s at failpoint ``held_at`` and
    interrupted once ``<watch>/`` (under the dataset) holds a file named ``<prefix>...``."""
    code = INTERRUPT.format(path=str(tmp_path / "k"), watch=watch, prefix=prefix)
    env = {"PQDM_FAILPOINTS": f"{held_at}=sleep:3000@3", "PYTHONPATH": _pythonpath()}
    out = run_python(code, env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_ctrl_c_stops_a_write_and_leaves_the_last_version(tmp_path):
    got = interrupted_write(tmp_path, "commit.journaled", "_pqdm/journal", "")
    assert got["outcome"] == "interrupted"
    assert got["version"] == 1 and got["history"] == [0, 1]
    assert got["same_rows"] is True
    assert got["staged"] == [] and got["verify_problems"] == []


def test_ctrl_c_after_the_commit_point_keeps_the_commit(tmp_path):
    # Held just after the log entry (the commit point) is in place, so that the interrupt, sent
    # once the entry exists, lands while the write is still running (held before the entry,
    # a write that tidies up fast returned before the interrupt arrived).
    got = interrupted_write(tmp_path, "commit.tidy", "_delta_log", "00000000000000000002")
    # The interrupt is raised once the commit that had become visible has finished.
    assert got["outcome"] == "interrupted" and got["version"] == 2 and got["history"] == [0, 1, 2]
    assert got["same_rows"] is False and got["staged"] == [] and got["verify_problems"] == []


def test_no_crash_at_process_exit(tmp_path):
    code = f"""
import sys
import pqdm
from conftest import klines
ds = pqdm.Dataset.open_or_create({str(tmp_path / 'k')!r}, "klines")
ds.write(klines(1_704_067_200_000, 50_000))
batches = ds.batches(1000)
first = next(batches)           # a batch scan left running at exit
lazy = ds.scan(lazy=True)       # a LazyFrame never collected
print(first.height)
"""
    for _ in range(3):
        out = run_python(code, {"PYTHONPATH": _pythonpath()})
        assert (out.returncode, out.stdout.strip()) == (0, "1000"), out.stderr


def test_logger_gets_the_drop_in_reports(tmp_path):
    import logging

    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    logger = logging.getLogger("test-pqdm")
    logger.setLevel(logging.INFO)
    logger.addHandler(Keep())
    m = pqdm.ParquetDatasetManager(logger=logger)
    m.write_partitioned_dataset(klines(T0, 2), str(tmp_path / "k"), schema_name="klines")
    assert records == [f"{tmp_path / 'k'}: 2 rows in 1 files, version 1"]


def _pythonpath():
    import os

    import pqdm as package

    here = os.path.dirname(__file__)
    return os.pathsep.join([os.path.dirname(os.path.dirname(package.__file__)), here])


def test_the_stubs_name_exactly_what_the_native_module_holds():
    import ast
    import os

    from pqdm import _pqdm

    stub = ast.parse(open(os.path.join(os.path.dirname(pqdm.__file__), "_pqdm.pyi")).read())
    declared = {n.name for n in stub.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    declared |= {t.id for n in stub.body if isinstance(n, ast.AnnAssign) for t in [n.target]}
    native = {n for n in dir(_pqdm) if not n.startswith("_") or n == "__version__"}
    assert declared == native
    methods = {n.name for c in stub.body if isinstance(c, ast.ClassDef) and c.name == "NativeDataset"
               for n in c.body if isinstance(n, ast.FunctionDef)}
    assert methods == {n for n in dir(_pqdm.NativeDataset) if not n.startswith("_")}
    assert pqdm.kind_columns("futures") == [("timestamp", "i64"), ("funding_rate", "f64"),
                                             ("funding_interval_hours", "i64"), ("mark_price", "f64"),
                                             ("exchange", "str"), ("symbol", "str")]
    assert "klines" in pqdm.kinds()
    assert pqdm.Dataset.write.__doc__ and _pqdm.NativeDataset.scan.__doc__


def test_pqdm_log_lines_reach_python_logging(tmp_path):
    code = f"""
import logging, sys
logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(name)s %(levelname)s %(message)s")
import pqdm
from conftest import klines
ds = pqdm.Dataset.create(sys.argv[1], "klines")
ds.write(klines(1_704_067_200_000, 10))
"""
    out = run_python(code, {"PYTHONPATH": _pythonpath(), "PQDM_LOG": "info"}, args=[str(tmp_path / "a")])
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert any(l.startswith("pqdm INFO pqdm::metrics: [") and "write: done in" in l for l in lines), lines
    quiet = run_python(code, {"PYTHONPATH": _pythonpath()}, args=[str(tmp_path / "b")])
    assert quiet.returncode == 0 and quiet.stdout == "", quiet.stdout  # warnings only by default
