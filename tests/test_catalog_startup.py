"""Workers starting together on an empty data root all open the operational catalog."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from pipelines.store.catalog import open_catalog
from tests.conftest import postgres_database

WORKERS = 6


def _open_after_barrier(data_dir: str, url: str | None, barrier: Barrier) -> None:
    barrier.wait()  # every process reaches the empty catalog at the same moment
    open_catalog(Path(data_dir), url)


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None
    else:
        yield from postgres_database()


@pytest.mark.parametrize("round_", range(3))
def test_processes_opening_an_empty_catalog_at_once_all_succeed(
    tmp_path: Path, catalog_url: str | None, round_: int
) -> None:
    # Two Celery workers once failed here: both found the tables missing and the second one's
    # CREATE TABLE failed ("table scdx_releases already exists").
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(WORKERS)
    data_dir = tmp_path / f"data-{round_}"
    workers = [
        context.Process(target=_open_after_barrier, args=(str(data_dir), catalog_url, barrier))
        for _ in range(WORKERS)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    assert [worker.exitcode for worker in workers] == [0] * WORKERS
    assert open_catalog(data_dir, catalog_url).releases("public") == []
