"""Fixtures of the Python package's tests (run by python/tests/pytest.rs under `cargo test`)."""

import os
import subprocess
import sys
import uuid

import polars as pl
import pytest

REPO = os.environ.get("PQDM_REPO", os.path.join(os.path.dirname(__file__), "..", ".."))


def klines(start_ms: int, n: int, symbol: str = "BTCUSDT", step_ms: int = 60_000) -> pl.DataFrame:
    """``n`` one-minute candles from ``start_ms`` with values from their index: every value is
    known, so a read can be compared exactly."""
    i = pl.int_range(0, n, eager=True)
    return pl.DataFrame({
        "timestamp": start_ms + i * step_ms,
        "open": 100.0 + i,
        "high": 101.0 + i,
        "low": 99.0 + i,
        "close": 100.5 + i,
        "volume": 1.0 + i / 4,
        "exchange": ["BINANCE"] * n,
        "symbol": [symbol] * n,
        "timeframe": ["1m"] * n,
    })


@pytest.fixture
def frame():
    return klines


_SERVER = {}


@pytest.fixture(scope="session")
def s3_endpoint():
    """The local S3 server `.ci/run` started (PQDM_TEST_S3_ENDPOINT), else one started here."""
    endpoint = os.environ.get("PQDM_TEST_S3_ENDPOINT")
    if endpoint:
        yield endpoint
        return
    proc = subprocess.Popen(
        [sys.executable, os.path.join(REPO, "tests", "s3_server.py"), "--port", "0",
         "--parent", str(os.getpid())],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    line = proc.stdout.readline().strip()
    assert line.startswith("PORT "), line
    _SERVER["proc"] = proc
    yield f"http://127.0.0.1:{line.split()[1]}"
    proc.terminate()
    proc.wait()


@pytest.fixture
def s3(s3_endpoint):
    """A new bucket; the storage options that reach it, and its name."""
    import boto3

    bucket = f"pqdm-py-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    client.create_bucket(Bucket=bucket)
    options = {"endpoint": s3_endpoint, "region": "us-east-1", "access_key_id": "testing",
               "secret_access_key": "testing", "allow_http": True}
    return options, bucket, client


def run_python(code: str, env: dict = None, timeout: float = 120, args=()) -> subprocess.CompletedProcess:
    """``code`` (given ``args``) in a fresh interpreter with the same ``pqdm`` on its path."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout)
