"""A real Celery cluster on this machine: PostgreSQL metadata (a fresh database), the Redis broker
(a db index of its own), api-server, scheduler, dag-processor and two ``airflow celery worker``
processes standing for two hosts, each with a scratch directory of its own; the data root is on the
local S3 API (moto on 127.0.0.1) and the releases are Iceberg snapshots in a PostgreSQL catalog. Four ingest DAGs are triggered at once, then the marts; one
worker is SIGKILLed while it runs a task (the FAF5 download, held open by the replay server), and
Airflow retries that task on the other. The release the cluster publishes must equal what one
machine's ``scdx refresh`` publishes from the same recordings: nothing lost, nothing doubled.

The round runs once (module fixture); the tests below each check one thing it must show.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from devtools import PROJECT_ROOT
from devtools.airflow_cluster import SCDX, AirflowCluster, celery_env
from devtools.local_s3 import S3Endpoint
from devtools.release_checks import CROSS_STORE_DIGITS, checksums
from pipelines.contracts import load_registry
from pipelines.replay.server import Fault, ReplayServer
from pipelines.store.tiers import catalog_of, open_current

from .conftest import RECORDINGS, SCHEMAS, postgres_database, store_environment

pytestmark = pytest.mark.airflow

DATASETS = (
    "afdc_charging_stations",
    "usgs_mineral_production",
    "usgs_mineral_salient",
    "faf5_regional_flows",
)
HELD = "faf5_regional_flows"  # its download is held open until its worker is killed
HELD_PATH = "/faf5/data/download_files/"
WORKERS = ("worker-a", "worker-b")
REDIS_DB = 13  # the cluster's own index on the shared Redis; only it is flushed
LOGICAL_DATE = "2026-04-20T00:00:00+00:00"


def cluster_env(root: Path, s3: S3Endpoint, catalog_url: str) -> dict[str, str]:
    """Where every process of the cluster keeps its data, as on several hosts: the data root on the
    local S3 API (raw, staged, quarantine, reports and the Iceberg warehouse), releases and runs in
    a PostgreSQL catalog; each process's SCDX_DATA_DIR is its scratch space only. The object
    store's endpoint, region and keys reach the tasks through the Airflow connection
    ``scdx_object_store``, not the environment (whose AWS variables are left empty)."""
    endpoint = s3.environment()
    connection = {
        "conn_type": "aws",
        "login": endpoint["AWS_ACCESS_KEY_ID"],
        "password": endpoint["AWS_SECRET_ACCESS_KEY"],
        "extra": {"endpoint_url": endpoint["AWS_ENDPOINT_URL"], "region_name": endpoint["AWS_REGION"]},
    }
    return {
        **dict.fromkeys(endpoint, ""),
        "AIRFLOW_CONN_SCDX_OBJECT_STORE": json.dumps(connection),
        "SCDX_DATA_DIR": str(root / "scratch"),
        "SCDX_STORE_KIND": "iceberg",
        "SCDX_DATA_URL": f"s3://{s3.create_bucket()}/scdx",
        "SCDX_CATALOG_URL": catalog_url,
    }


def release_checksums(env: dict[str, str]) -> dict[str, tuple[int, int]]:
    """Every curated table and mart of the current release: (rows, order-free row-hash sum)."""
    with store_environment(env) as layout, open_current(layout) as con:
        return checksums(con, significant=CROSS_STORE_DIGITS)


def duplicate_keys(env: dict[str, str]) -> dict[str, int]:
    """Per dataset, the rows sharing a primary key with another row (0 everywhere when nothing doubled)."""
    registry = load_registry(SCHEMAS)
    out = {}
    with store_environment(env) as layout, open_current(layout) as con:
        for dataset in DATASETS:
            key = ", ".join(registry.get(dataset).primary_key)
            (extra,) = con.execute(
                f"SELECT count(*) - count(DISTINCT ({key})) FROM curated.{dataset}"
            ).fetchone() or (0,)
            out[dataset] = int(extra)
    return out


def published_runs(env: dict[str, str]) -> dict[str, int]:
    """Per dataset, how many runs published (a task retried after a kill must not publish twice)."""
    with store_environment(env) as layout:
        catalog = catalog_of(layout)
        return {d: len(catalog.runs(dataset=d, status="published")) for d in DATASETS}


@dataclass
class Round:
    """What the cluster did, for the tests to check."""

    single_machine: dict[str, tuple[int, int]]
    cluster: dict[str, tuple[int, int]]
    duplicates: dict[str, int]
    published: dict[str, int]
    tries: dict[str, list[dict[str, Any]]]  # "<dag_id>.<task_id>" -> every try, in order
    killed: str
    killed_try: int
    seconds: dict[str, float]


def _wait(airflow: AirflowCluster, done: Any) -> Any:
    """Poll until ``done()`` returns something true; no deadline of its own (the test's timeout is
    the guard), but it fails at once when a process the cluster still counts on has died."""
    while True:
        airflow.check_alive()
        result = done()
        if result:
            return result
        time.sleep(1)


def _run_state(airflow: AirflowCluster, dag_id: str, run_id: str) -> str | None:
    run = airflow.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
    if run["state"] == "failed":
        raise AssertionError(f"{dag_id} run {run_id} failed\n{airflow.logs()}")
    return "success" if run["state"] == "success" else None


def _tries(airflow: AirflowCluster, dag_id: str, run_id: str) -> dict[str, list[dict[str, Any]]]:
    instances = airflow.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
    out = {}
    for ti in instances:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{ti['task_id']}/tries"
        out[f"{dag_id}.{ti['task_id']}"] = sorted(
            airflow.api("GET", path)["task_instances"], key=lambda t: t["try_number"]
        )
    return out


def _running_on(airflow: AirflowCluster, dag_id: str, run_id: str, task_id: str) -> tuple[str, int] | None:
    """(worker, try number) of the task while it runs on one of the workers."""
    ti = airflow.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")
    return (
        (ti["hostname"], ti["try_number"]) if ti["state"] == "running" and ti["hostname"] in WORKERS else None
    )


def _single_machine(root: Path, replay: ReplayServer) -> dict[str, tuple[int, int]]:
    """What one machine's default (a local data dir and store) publishes from the recordings."""
    env = {"SCDX_SCHEMAS_DIR": str(SCHEMAS), "SCDX_DATA_DIR": str(root / "one-machine")}
    result = subprocess.run(
        [SCDX, "refresh", *DATASETS, "--replay-url", replay.url],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return release_checksums(env)


def _drive(airflow: AirflowCluster, replay: ReplayServer) -> tuple[dict[str, Any], str]:
    """Trigger the four ingests at once, kill the worker holding the FAF5 download, then the marts."""
    clock = {"start": time.monotonic()}
    for dag_id in (*(f"ingest_{d}" for d in DATASETS), "publish_marts"):
        airflow.wait_for_dag(dag_id)
        airflow.api("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
    runs = {
        f"ingest_{d}": airflow.api(
            "POST", f"/api/v2/dags/ingest_{d}/dagRuns", {"logical_date": LOGICAL_DATE}
        )["dag_run_id"]
        for d in DATASETS
    }
    # The event: the replay server has the FAF5 request and holds it; the task says where it runs.
    _wait(airflow, lambda: any(r.path.startswith(HELD_PATH) and r.status == -1 for r in replay.requests))
    held = f"ingest_{HELD}"
    victim, killed_try = _wait(airflow, lambda: _running_on(airflow, held, runs[held], "extract_and_land"))
    clock["held"] = time.monotonic()
    airflow.kill(f"worker-{victim}")
    for dag_id, run_id in runs.items():
        _wait(airflow, lambda d=dag_id, r=run_id: _run_state(airflow, d, r))
    clock["ingested"] = time.monotonic()
    marts = airflow.api("POST", "/api/v2/dags/publish_marts/dagRuns", {"logical_date": None})["dag_run_id"]
    runs["publish_marts"] = marts
    _wait(airflow, lambda: _run_state(airflow, "publish_marts", marts))
    clock["marts"] = time.monotonic()
    tries: dict[str, list[dict[str, Any]]] = {}
    for dag_id, run_id in runs.items():
        tries.update(_tries(airflow, dag_id, run_id))
    seconds = {
        "trigger to held task": clock["held"] - clock["start"],
        "trigger to four ingests done (kill and retry included)": clock["ingested"] - clock["start"],
        "marts run": clock["marts"] - clock["ingested"],
    }
    return {"tries": tries, "seconds": seconds, "killed_try": killed_try}, victim


@pytest.fixture(scope="module")
def celery_round(s3_endpoint: S3Endpoint, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Round]:
    import redis

    root = tmp_path_factory.mktemp("celery")
    broker = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    try:
        broker.flushdb()
    except redis.ConnectionError as exc:
        pytest.fail(
            f"no Redis on 127.0.0.1:6379 ({exc}): apt-get install redis-server && service redis-server start"
        )
    home = root / "airflow"
    home.mkdir()
    catalogs = postgres_database()  # the scdx catalog (releases, runs, Iceberg tables); dropped after
    with ReplayServer(RECORDINGS) as replay, closing(catalogs):
        single_machine = _single_machine(root, replay)
        replay.faults.add(Fault(path=HELD_PATH, mode="stall", delay_s=900))
        env = {
            "SCDX_SCHEMAS_DIR": str(SCHEMAS),
            "SCDX_REPLAY_URL": replay.url,
            **cluster_env(root / "cluster", s3_endpoint, next(catalogs)),
        }
        database = f"scdx_celery_{secrets.token_hex(4)}"  # dropped by airflow.stop()
        airflow = AirflowCluster(
            home,
            PROJECT_ROOT / "dags",
            {
                **env,
                **celery_env(database, REDIS_DB),
                "AIRFLOW__CORE__PARALLELISM": "4",
                # Runs only when triggered: no scheduled or Asset-triggered runs beside the test's own.
                "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
                # A dead worker's task is noticed after 30 s without a heartbeat and retried 5 s later.
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
                "SCDX_RETRY_DELAY_S": "5",
            },
            database=database,
        )
        try:
            started = time.monotonic()
            airflow.start()
            for name in WORKERS:  # each "host" its own scratch directory: no local disk is shared
                airflow.start_worker(name, {"SCDX_DATA_DIR": str(root / "cluster" / name)})
            _wait(airflow, lambda: all(airflow.worker_ready(name) for name in WORKERS))
            up = time.monotonic() - started
            outcome, victim = _drive(airflow, replay)
            reader = {**env, **s3_endpoint.environment()}  # this process reads with the AWS variables
            yield Round(
                single_machine=single_machine,
                cluster=release_checksums(reader),
                duplicates=duplicate_keys(reader),
                published=published_runs(reader),
                tries=outcome["tries"],
                killed=victim,
                killed_try=outcome["killed_try"],
                seconds={"start to healthy with two workers": up, **outcome["seconds"]},
            )
        finally:
            airflow.stop()
            broker.flushdb()


def _overlap(first: dict[str, Any], second: dict[str, Any]) -> bool:
    """Two tries ran at the same time (each has started and ended)."""
    spans = [
        (datetime.fromisoformat(t["start_date"]), datetime.fromisoformat(t["end_date"]))
        for t in (first, second)
        if t["start_date"] and t["end_date"]
    ]
    return len(spans) == 2 and spans[0][0] < spans[1][1] and spans[1][0] < spans[0][1]


@pytest.mark.timeout(900)  # the whole round: start, four ingests with a kill and a retry, the marts
def test_four_ingests_at_once_and_the_marts_run_on_both_workers_side_by_side(celery_round: Round) -> None:
    tries = [t for per_task in celery_round.tries.values() for t in per_task]
    per_worker = {w: sum(t["hostname"] == w for t in tries) for w in WORKERS}
    print(f"task tries per worker: {per_worker}; seconds: {celery_round.seconds}")
    assert {t["hostname"] for t in tries} == set(WORKERS)
    # The two workers ran tasks at the same time.
    a, b = ([t for t in tries if t["hostname"] == w] for w in WORKERS)
    assert any(_overlap(x, y) for x in a for y in b)
    assert all(per_task[-1]["state"] == "success" for per_task in celery_round.tries.values())


def test_the_task_on_the_killed_worker_is_retried_on_the_other(celery_round: Round) -> None:
    held = {t["try_number"]: t for t in celery_round.tries[f"ingest_{HELD}.extract_and_land"]}
    survivor = next(w for w in WORKERS if w != celery_round.killed)
    killed = held[celery_round.killed_try]
    assert (killed["hostname"], killed["state"]) == (celery_round.killed, "failed")
    # The next try is Airflow's retry, on the survivor, and it is the last: it succeeded.
    assert max(held) == celery_round.killed_try + 1
    retry = held[celery_round.killed_try + 1]
    assert (retry["hostname"], retry["state"]) == (survivor, "success")
    # Everything after the kill ran on the survivor.
    later = [t for k, tries in celery_round.tries.items() if k.startswith(f"ingest_{HELD}.") for t in tries]
    assert {t["hostname"] for t in later if t["task_id"] != "extract_and_land"} == {survivor}


def test_the_cluster_publishes_what_one_machine_publishes_nothing_lost_or_doubled(
    celery_round: Round,
) -> None:
    assert celery_round.cluster == celery_round.single_machine
    assert {f"curated.{d}" for d in DATASETS} <= set(celery_round.cluster)
    assert celery_round.duplicates == dict.fromkeys(DATASETS, 0)
    assert celery_round.published == dict.fromkeys(DATASETS, 1)
