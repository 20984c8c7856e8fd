"""The Airflow DAGs: they parse cleanly and cheaply, follow the house policy, and run end to end
under ``dag.test()`` against the replay server (SQLite metadata DB in a temporary AIRFLOW_HOME).

Airflow reads its configuration at import, so each check runs in a subprocess with its own env."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import duckdb
import pytest

from devtools import PROJECT_ROOT
from pipelines.contracts import load_registry
from pipelines.replay.server import ReplayServer

from .conftest import RECORDINGS, SCHEMAS, TEST_API_KEY

pytestmark = pytest.mark.airflow
DAGS = PROJECT_ROOT / "dags"


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    home = tmp_path_factory.mktemp("airflow_home")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    }
    migrate = subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    yield env


def _python(code: str, env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _last_json(output: str) -> dict[str, object]:
    line = [line for line in output.splitlines() if line.startswith("{")][-1]
    result: dict[str, object] = json.loads(line)
    return result


def run_dag_test(dag_id: str, logical_date: date, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``dag.test()`` of one generated DAG in a child process; prints {"state", "tasks"} as JSON last."""
    return _python(
        f"""
        import json, pendulum
        from airflow.dag_processing.dagbag import DagBag
        dag = DagBag(dag_folder={str(DAGS)!r}).get_dag({dag_id!r})
        run = dag.test(logical_date=pendulum.datetime({logical_date.year}, {logical_date.month}, {logical_date.day}, tz="UTC"))
        states = {{ti.task_id: str(ti.state) for ti in run.get_task_instances()}}
        print(json.dumps({{"state": str(run.state), "tasks": states}}))
        """,
        env,
    )


def test_dagbag_loads_every_dag_file_without_import_errors_and_dags_follow_policy(
    airflow_env: dict[str, str],
) -> None:
    result = _python(
        f"""
        import json
        from airflow.dag_processing.dagbag import DagBag
        bag = DagBag(dag_folder={str(DAGS)!r})
        dags = {{}}
        for dag_id, dag in bag.dags.items():
            dags[dag_id] = {{
                "owner": dag.default_args.get("owner"),
                "retries": dag.default_args.get("retries"),
                "backoff": dag.default_args.get("retry_exponential_backoff"),
                "tags": sorted(dag.tags),
                "doc": bool(dag.doc_md),
                "schedule": str(dag.schedule),
                "tasks": [t.task_id for t in dag.topological_sort()],
                "outlets": {{t.task_id: [a.uri for a in t.outlets] for t in dag.tasks}},
                "pools": {{t.task_id: t.pool for t in dag.tasks}},
                "timeouts": [str(t.execution_timeout) for t in dag.tasks],
            }}
        print(json.dumps({{"errors": {{k: str(v) for k, v in bag.import_errors.items()}}, "dags": dags}}))
        """,
        airflow_env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    parsed = _last_json(result.stdout)
    assert parsed["errors"] == {}
    dags = parsed["dags"]
    assert isinstance(dags, dict)
    # House policy for every DAG: retries with backoff, an owner, tags and documentation.
    for dag_id, policy in dags.items():
        assert policy["retries"] >= 2 and policy["backoff"] is True, dag_id
        assert policy["owner"] and policy["tags"] and policy["doc"], dag_id
        # Airflow reads a comma in owner as a list: each DAG has one owner, one name.
        assert "," not in policy["owner"], (dag_id, policy["owner"])
    assert dags["ingest_afdc_charging_stations"]["owner"] == "National Renewable Energy Laboratory"
    assert dags["ingest_faf5_regional_flows"]["owner"] == "Bureau of Transportation Statistics"
    fetched = [name for name, c in load_registry(SCHEMAS).contracts.items() if not c.source.inbox]
    assert {f"ingest_{name}" for name in fetched} | {"publish_marts", "partner_inbox"} == set(dags)
    assert isinstance(dags, dict) and "ingest_census_trade_imports" in dags
    ingest = dags["ingest_census_trade_imports"]
    assert ingest["owner"] == "U.S. Census Bureau"
    assert ingest["retries"] >= 2 and ingest["backoff"] is True
    assert {"scdx", "ingest", "public", "U.S. Census Bureau"} <= set(ingest["tags"])
    assert ingest["doc"] and ingest["schedule"] == "0 6 * * *"
    assert ingest["tasks"] == [
        "extract_and_land",
        "normalize_and_stage",
        "validate",
        "publish",
        "check_freshness",
    ]
    # Only the publish task emits the dataset's Asset.
    assert ingest["outlets"] == {
        "extract_and_land": [],
        "normalize_and_stage": [],
        "validate": [],
        "publish": ["scdx://curated/census_trade_imports"],
        "check_freshness": [],
    }
    assert ingest["pools"] == {
        "extract_and_land": "scdx_census_intltrade",
        "normalize_and_stage": "default_pool",
        "validate": "default_pool",
        "publish": "scdx_publish",
        "check_freshness": "default_pool",
    }
    assert all(timeout == "2:00:00" for timeout in ingest["timeouts"])
    marts = dags["publish_marts"]
    # The report is refreshed and the release materialized after the marts are published; neither
    # holds the publish pool (materialize takes the publish lock only for its swap).
    assert marts["tasks"] == ["build_marts", "refresh_report", "materialize_release"]
    assert marts["pools"] == {
        "build_marts": "scdx_publish",
        "materialize_release": "default_pool",
        "refresh_report": "default_pool",
    }
    assert "scdx://curated/census_trade_imports" in marts["schedule"]


def test_parsing_the_dag_files_imports_no_pipeline_stage_or_heavy_library(
    airflow_env: dict[str, str],
) -> None:
    result = _python(
        f"""
        import json, runpy, sys
        for path in {sorted(str(p) for p in DAGS.glob("*.py"))!r}:
            runpy.run_path(path)
        heavy = ["pyarrow", "duckdb", "great_expectations", "altair", "vl_convert", "pipelines.orchestration.refresh", "pipelines.orchestration.tasks", "pipelines.stages.publish", "pipelines.report"]
        print(json.dumps({{"loaded": [m for m in heavy if m in sys.modules]}}))
        """,
        airflow_env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert _last_json(result.stdout)["loaded"] == []


def test_dag_test_runs_the_ingest_end_to_end_and_leaves_the_curated_table_populated(
    airflow_env: dict[str, str], tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    with ReplayServer(RECORDINGS) as replay:
        env = {
            **airflow_env,
            "SCDX_DATA_DIR": str(data_dir),
            "SCDX_REPLAY_URL": replay.url,
            "SCDX_CENSUS_API_KEY": TEST_API_KEY,
        }
        result = run_dag_test("ingest_census_trade_imports", date(2026, 4, 20), env)
        requests_seen = list(replay.requests)
    assert result.returncode == 0, result.stderr[-3000:]
    assert _last_json(result.stdout)["state"] == "success"
    # The data interval (2026-04-20) drives the window: an empty table loads from the contract's start.
    assert len(requests_seen) == 28 and all(("key", TEST_API_KEY) in r.query for r in requests_seen)
    logs = result.stdout + result.stderr
    assert TEST_API_KEY not in logs
    # The publish task's log says what the release changed, table by table, not the run record.
    assert (
        "public release 1: published curated.census_trade_imports 1,924 rows (new); marts rebuilt: " in logs
    )
    assert "import_concentration" in logs.split("marts rebuilt: ")[1].splitlines()[0]
    assert "Returned value was" not in logs.split("task_id=publish")[-1].split("task_id=check_freshness")[0]
    with duckdb.connect(str(data_dir / "scdx.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM curated.census_trade_imports").fetchone() == (1924,)
        assert con.execute("SELECT status, rows_published FROM meta.runs").fetchall() == [("published", 1924)]
    leaking = [p for p in data_dir.rglob("*") if p.is_file() and TEST_API_KEY.encode() in p.read_bytes()]
    assert leaking == []


def test_publish_marts_builds_the_marts_then_refreshes_the_risk_report_and_materializes_that_release(
    airflow_env: dict[str, str], tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    with ReplayServer(RECORDINGS) as replay:
        env = {**airflow_env, "SCDX_DATA_DIR": str(data_dir), "SCDX_REPLAY_URL": replay.url}
        ingest = run_dag_test("ingest_census_trade_imports", date(2026, 4, 20), env)
        assert ingest.returncode == 0, ingest.stderr[-3000:]
        result = run_dag_test("publish_marts", date(2026, 4, 20), env)
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = _last_json(result.stdout)
    assert outcome["state"] == "success"
    assert outcome["tasks"] == {
        "build_marts": "success",
        "refresh_report": "success",
        "materialize_release": "success",
    }
    with duckdb.connect(str(data_dir / "scdx.duckdb"), read_only=True) as con:
        (version,) = con.execute("SELECT max(version) FROM meta.publishes").fetchone() or (None,)
        stored = con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'marts'").fetchone()
    # Analysts open the release's materialized copy: its marts are DuckDB tables.
    assert os.readlink(data_dir / "scdx.duckdb").endswith(f"scdx-v{version:06d}.tables.duckdb")
    assert stored is not None and stored[0] > 0
    page = (data_dir / "report" / "index.html").read_text()
    # Only the imports are published: their chart is drawn, the others say what is missing.
    assert f"Release <strong>{version}</strong>" in page
    assert 'data-chart="import_concentration"' in page
    assert "marts.workforce_capacity is not published yet" in page


def test_offline_a_run_long_after_the_recordings_is_green_judged_on_the_day_they_stand_for(
    airflow_env: dict[str, str], tmp_path: Path
) -> None:
    """A newcomer unpauses the DAG months after the recordings were made: its first scheduled run
    replays them and its freshness check measures their newest month on the day they stand for
    (recordings/as_of.yaml), not on the run's day, so the run is green."""
    with ReplayServer(RECORDINGS) as replay:
        env = {**airflow_env, "SCDX_DATA_DIR": str(tmp_path / "data"), "SCDX_REPLAY_URL": replay.url}
        result = run_dag_test("ingest_census_trade_imports", date(2027, 2, 14), env)
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = _last_json(result.stdout)
    assert outcome["state"] == "success", outcome
    assert (
        "census_trade_imports: fresh, latest data 2026-03-01 is 66 days old on 2026-05-06, the day the "
        "recordings stand for (replaying on 2027-02-14) (SLA 75 days)"
    ) in result.stdout + result.stderr


def test_a_late_dataset_publishes_then_fails_its_freshness_check_naming_age_and_sla(
    airflow_env: dict[str, str], tmp_path: Path
) -> None:
    # Recordings that stand for 2026-11-23 but hold nothing after March: the agency missed releases.
    recordings = tmp_path / "recordings"
    shutil.copytree(RECORDINGS, recordings)
    (recordings / "as_of.yaml").write_text("census_intltrade: 2026-11-23\n")
    with ReplayServer(recordings) as replay:
        env = {
            **airflow_env,
            "SCDX_DATA_DIR": str(tmp_path / "data"),
            "SCDX_REPLAY_URL": replay.url,
            "SCDX_RECORDINGS_DIR": str(recordings),
        }
        result = run_dag_test("ingest_census_trade_imports", date(2026, 11, 23), env)
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = _last_json(result.stdout)
    tasks = outcome["tasks"]
    assert isinstance(tasks, dict)
    assert tasks["publish"] == "success" and tasks["check_freshness"] == "failed"
    assert outcome["state"] == "failed"
    logs = result.stdout + result.stderr
    assert (
        "census_trade_imports: LATE, latest data 2026-03-01 is 267 days old on 2026-11-23 (SLA 75 days)"
        in logs
    )


def test_dag_parse_benchmark_smoke_run_reports_figures_and_a_ratio(airflow_env: dict[str, str]) -> None:
    from devtools.bench_dags import dag_parse_bench

    figures = dag_parse_bench(DAGS, repeats=1, env=airflow_env)
    assert figures["project"]["import_errors"] == 0 and figures["project"]["dags"] >= 2
    assert figures["baseline"]["dags"] == 1
    assert figures["project"]["median_s"] > 0 and figures["ratio_project_to_baseline"] > 0
