"""Shared fixtures: the real contracts, the replay server on the recorded payloads, a data dir."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from devtools import PROJECT_ROOT
from devtools.local_pg import PostgresMissing, fresh_database
from devtools.local_s3 import S3Endpoint, local_s3
from pipelines.common.settings import HttpPolicy, Settings
from pipelines.contracts import Contract, Registry, load_registry
from pipelines.replay.server import ReplayServer
from pipelines.store.layout import Layout

SCHEMAS = PROJECT_ROOT / "schemas"
RECORDINGS = PROJECT_ROOT / "recordings"
CENSUS_MONTHS = RECORDINGS / "census_intltrade" / "imports_hs"
# A distinctive fake key: tests assert it reaches the server and nothing on disk or in logs.
TEST_API_KEY = "scdxTESTkey-7f3a9c1d2e4b5a6f"
# The day the tests pretend to run on, so windows are the same on every machine and every date.
AS_OF = date(2026, 11, 23)

SCDX = str(Path(sys.executable).parent / "scdx")

# Keep test subprocesses (Airflow, CLI) off any real scheduler or agency.
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")


def catalog_runs(layout: Layout, dataset: str | None = None) -> list[dict[str, Any]]:
    """The run history of a data directory (the operational catalog), oldest first."""
    from pipelines.store.tiers import catalog_of

    return sorted(catalog_of(layout).runs(dataset), key=lambda r: r["started_at"])


def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one test's catalogs (operational and Iceberg), dropped
    afterwards; a generator: ``next()`` gives its URL, closing it drops the database."""
    from pipelines.store.catalog import _engines

    try:
        with fresh_database() as url:
            try:
                yield url
            finally:
                engine = _engines.pop(url, None)
                if engine is not None:
                    engine.dispose()
    except PostgresMissing as exc:
        pytest.fail(str(exc))


@contextmanager
def store_environment(env: Mapping[str, str]) -> Iterator[Layout]:
    """This process set up as a subprocess given ``env`` was (store kind, catalog, object store),
    for reading what it published; the layout of its data directory."""
    with pytest.MonkeyPatch.context() as patch:
        for name in ("SCDX_STORE_KIND", "SCDX_DATA_URL", "SCDX_CATALOG_URL"):
            patch.delenv(name, raising=False)
        for name, value in env.items():
            patch.setenv(name, value)
        yield Layout(Path(env["SCDX_DATA_DIR"]))


@pytest.fixture(scope="session")
def registry() -> Registry:
    return load_registry(SCHEMAS)


@pytest.fixture(scope="session")
def census(registry: Registry) -> Contract:
    return registry.get("census_trade_imports")


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """`scdx demo` run once per session into a data dir of its own: every dataset replayed offline
    from the bundled recordings, the hand downloads ingested, the marts built; with what it printed
    (at a fixed width, so table rows stay on one line). Not asserted here: each user says what a
    failed demo means to it.

    Shared, so a user must not change what is published: reading it, or writing a directory of
    its own beside it (``scdx docs``: catalog/, ``scdx report``: report/), is all. A copy would not
    do for a test that changes it: a release's views name their Parquet files by absolute path."""
    data_dir = tmp_path_factory.mktemp("demo") / "data"
    result = subprocess.run(
        [SCDX, "demo"],
        env={**os.environ, "SCDX_DATA_DIR": str(data_dir), "COLUMNS": "220"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    return data_dir, result


@pytest.fixture
def fast_http() -> HttpPolicy:
    """Real retry logic with millisecond backoff, so fault tests stay quick."""
    return HttpPolicy(
        connect_timeout_s=2.0,
        read_timeout_s=5.0,
        max_attempts=4,
        backoff_initial_s=0.01,
        backoff_max_s=0.05,
        retry_after_max_s=30.0,
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def settings(data_dir: Path, fast_http: HttpPolicy) -> Settings:
    return Settings(data_dir=data_dir, schemas_dir=SCHEMAS, recordings_dir=RECORDINGS, http=fast_http)


@pytest.fixture
def layout(data_dir: Path) -> Layout:
    return Layout(data_dir)


@pytest.fixture
def replay() -> Iterator[ReplayServer]:
    """The replay server on the bundled recordings, in this process, on a free loopback port."""
    with ReplayServer(RECORDINGS) as server:
        yield server


@pytest.fixture
def recordings_copy(tmp_path: Path) -> Path:
    """A private copy of the recordings a test may alter (to inject bad data)."""
    target = tmp_path / "recordings"
    shutil.copytree(RECORDINGS, target)
    return target


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SCDX_CENSUS_API_KEY", TEST_API_KEY)
    return TEST_API_KEY


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[S3Endpoint]:
    """An S3 API (moto) on 127.0.0.1 for the session; each test makes its own bucket."""
    with local_s3() as endpoint:
        yield endpoint


@pytest.fixture
def s3_bucket(s3_endpoint: S3Endpoint, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on the local S3 API, with the AWS variables pointing at it for this test."""
    for name, value in s3_endpoint.environment().items():
        monkeypatch.setenv(name, value)
    return s3_endpoint.create_bucket()


_exit_status: list[int] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _exit_status.append(int(exitstatus))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """End the process once pytest is done, before interpreter shutdown.

    DuckDB 2.0's nanobind bindings print dozens of "leaked instance" lines at shutdown once GX
    and duckdb_engine have been imported in the process; they would bury pytest's summary. The
    same workaround as the scdx CLI (pipelines/cli.py: main)."""
    if _exit_status:
        import sys

        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_exit_status[-1])


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the GX conformance counts (tests/test_gx_conformance.py) when that test ran."""
    from tests.gx_conformance.harness import SUMMARY

    summary = terminalreporter.config.stash.get(SUMMARY, None)
    if summary is not None:
        terminalreporter.write_sep("-", "GX conformance of the DuckDB adapter")
        terminalreporter.write_line(summary)
