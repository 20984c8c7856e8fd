"""Under a real scheduler (PostgreSQL, LocalExecutor, api-server, scheduler, dag-processor):
a triggered ingest publishes, its Asset event runs publish_marts, and a three-month backfill
replaces rather than duplicates. The commands are the README's "Operating the scheduler"."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
import yaml

from devtools import PROJECT_ROOT
from devtools.airflow_cluster import AirflowCluster
from pipelines.replay.server import ReplayServer

from .conftest import RECORDINGS, SCHEMAS

pytestmark = pytest.mark.airflow
INGEST = "ingest_census_trade_imports"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AirflowCluster, Path]]:
    root = tmp_path_factory.mktemp("scheduler")
    # The census contract with a monthly schedule, so a three-month backfill is three runs
    # (the nightly contract would make it ninety); everything else is the project's own.
    schemas = root / "schemas"
    shutil.copytree(SCHEMAS, schemas)
    contract = schemas / "census_trade_imports.yaml"
    raw = yaml.safe_load(contract.read_text())
    raw["schedule"] = "0 6 1 * *"
    contract.write_text(yaml.safe_dump(raw, sort_keys=False))
    data_dir = root / "data"
    home = root / "airflow"
    home.mkdir()
    with ReplayServer(RECORDINGS) as replay:
        env = {
            "SCDX_DATA_DIR": str(data_dir),
            "SCDX_SCHEMAS_DIR": str(schemas),
            "SCDX_REPLAY_URL": replay.url,
        }
        airflow = AirflowCluster(home, PROJECT_ROOT / "dags", env)
        try:
            airflow.start()
            yield airflow, data_dir
        finally:
            airflow.stop()


def _table_digest(data_dir: Path) -> tuple[int, str, int]:
    with duckdb.connect(str(data_dir / "scdx.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT * FROM curated.census_trade_imports ORDER BY ALL").fetchall()
        (duplicates,) = con.execute(
            "SELECT count(*) FROM (SELECT period, hs_code, country_code FROM curated.census_trade_imports "
            "GROUP BY ALL HAVING count(*) > 1)"
        ).fetchone() or (0,)
    return len(rows), hashlib.sha256(repr(rows).encode()).hexdigest(), int(duplicates)


def _completed_runs(data_dir: Path) -> int:
    """Runs that ended well: published, or found the rows already published ("unchanged"), from
    the run history (a run that changes nothing makes no release, so meta.runs may not show it)."""
    from pipelines.store.catalog import open_catalog

    return sum(r["status"] in ("published", "unchanged") for r in open_catalog(data_dir).runs())


def test_triggered_ingest_publishes_and_its_asset_event_builds_the_marts(
    cluster: tuple[AirflowCluster, Path],
) -> None:
    airflow, data_dir = cluster
    airflow.wait_for_dag(INGEST)
    airflow.wait_for_dag("publish_marts")
    airflow.run("airflow", "dags", "unpause", "publish_marts")
    airflow.run("airflow", "dags", "unpause", INGEST)
    airflow.run("airflow", "dags", "trigger", INGEST, "--logical-date", "2026-04-20T00:00:00+00:00")
    airflow.wait_for_run(INGEST, lambda r: r["run_type"] == "manual")
    count, _, duplicates = _table_digest(data_dir)
    assert count == 1924 and duplicates == 0
    marts_run = airflow.wait_for_run("publish_marts", lambda r: r["run_type"] == "asset_triggered")
    assert marts_run["state"] == "success"
    with duckdb.connect(str(data_dir / "scdx.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM marts.import_concentration").fetchone()[0] > 0  # type: ignore[index]
    # The marts run ends by refreshing the risk report of the release it built.
    assert "import_concentration" in (data_dir / "report" / "index.html").read_text()
    # Unpausing started a scheduled run for the latest interval, whatever today is: offline it
    # replays the recordings and judges freshness on the day they stand for, so it is green too.
    scheduled = airflow.wait_for_run(INGEST, lambda r: r["run_type"] == "scheduled")
    assert scheduled["state"] == "success"


@pytest.mark.timeout(1200)  # two backfills of three runs each, on two shared cores
def test_a_three_month_backfill_replaces_and_never_duplicates_even_when_run_twice(
    cluster: tuple[AirflowCluster, Path],
) -> None:
    airflow, data_dir = cluster
    airflow.wait_for_run(INGEST, lambda r: r["run_type"] == "manual")
    before = _table_digest(data_dir)
    runs_before = _completed_runs(data_dir)
    backfill = [
        "airflow",
        "backfill",
        "create",
        "--dag-id",
        INGEST,
        "--from-date",
        "2026-01-01",
        "--to-date",
        "2026-03-31",
    ]
    airflow.run(*backfill)
    airflow.wait_for_backfills(INGEST, 1)
    assert _completed_runs(data_dir) == runs_before + 3  # one run per month of the range
    assert _table_digest(data_dir) == before
    airflow.run(*backfill, "--reprocess-behavior", "completed")
    airflow.wait_for_backfills(INGEST, 2)
    assert _completed_runs(data_dir) == runs_before + 6
    assert _table_digest(data_dir) == before
