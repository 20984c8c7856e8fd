"""Bench of Celery workers (``python -m devtools bench workers``): the same ingest DAG runs, all
triggered at once, on a cluster with one worker and then on one with two, each as issue 24 deploys
it: Airflow metadata in PostgreSQL, Redis as the broker, the data root on the local S3 API (moto),
the releases as Iceberg snapshots in a PostgreSQL catalog; every round starts from empty stores,
so both publish the same batches. The agencies are the replay server on the recordings.

Besides the wall time it reports what could limit the second worker: how busy the machine's cores
were (from /proc/stat over the round), how long tasks waited between being queued and starting,
how much of the round the single-slot publish pool was busy (one publisher at a time, by design),
and the slowest DAG run against its own tasks' time (a run's five tasks run one after another, so
whatever happens between them is on the critical path whatever the number of workers).
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from devtools import PROJECT_ROOT
from devtools.airflow_cluster import AirflowCluster, celery_env
from devtools.local_pg import fresh_database
from devtools.local_s3 import S3Endpoint, local_s3

DEFAULT_DATASETS = (
    "afdc_charging_stations",
    "usgs_mineral_production",
    "usgs_mineral_salient",
    "faf5_regional_flows",
    "bts_border_crossings",
    "eia_electricity",
)
REDIS_DB = 12  # the bench's own index on the shared Redis; only it is flushed
LOGICAL_DATE = "2026-04-20T00:00:00+00:00"


@dataclass
class Round:
    """One cluster's run of the DAGs."""

    workers: int
    dag_runs: int
    seconds: float  # first trigger to the last run's success
    task_tries: int
    task_seconds: float  # the tries' own durations, summed
    queued_seconds: float  # queued -> started, summed over the tries
    publish_seconds: float  # durations of the publish tasks (the one-slot pool), summed
    busy_cores: float  # the machine's busy cores, averaged over the round
    cores: int
    longest_run_seconds: float  # the slowest DAG run, start to end: the round's critical path
    longest_run_task_seconds: float  # how much of it its own tasks ran (the rest: between tasks)

    @property
    def runs_per_minute(self) -> float:
        return 60 * self.dag_runs / self.seconds


def _cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def _seconds(start: str | None, end: str | None) -> float:
    if not start or not end:
        return 0.0
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


@contextmanager
def _cluster(workdir: Path, workers: int, s3: S3Endpoint, replay_url: str) -> Iterator[AirflowCluster]:
    """A Celery cluster with ``workers`` workers, each with a scratch directory of its own."""
    import redis

    broker = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    try:
        broker.flushdb()
    except redis.ConnectionError as exc:
        raise SystemExit(
            f"the workers bench needs Redis on 127.0.0.1:6379 ({exc}): "
            "apt-get install redis-server && service redis-server start"
        ) from None
    home = workdir / f"airflow-{workers}"
    home.mkdir(parents=True)
    database = f"scdx_bench_airflow_{secrets.token_hex(4)}"
    with ExitStack() as stack:
        catalog_url = stack.enter_context(fresh_database("scdx_bench_catalog"))
        env = {
            **s3.environment(),
            "SCDX_SCHEMAS_DIR": str(PROJECT_ROOT / "schemas"),
            "SCDX_REPLAY_URL": replay_url,
            "SCDX_DATA_DIR": str(workdir / f"scratch-{workers}"),
            "SCDX_STORE_KIND": "iceberg",
            "SCDX_DATA_URL": f"s3://{s3.create_bucket('scdx-bench')}/scdx",
            "SCDX_CATALOG_URL": catalog_url,
            **celery_env(database, REDIS_DB),
            "AIRFLOW__CORE__PARALLELISM": "8",
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        }
        airflow = AirflowCluster(home, PROJECT_ROOT / "dags", env, database=database)
        try:
            airflow.start()
            names = [f"worker{i + 1}" for i in range(workers)]
            for name in names:
                airflow.start_worker(name, {"SCDX_DATA_DIR": str(workdir / f"scratch-{workers}" / name)})
            while not all(airflow.worker_ready(name) for name in names):
                airflow.check_alive()
                time.sleep(1)
            yield airflow
        finally:
            airflow.stop()
            broker.flushdb()


def _round(airflow: AirflowCluster, workers: int, datasets: tuple[str, ...]) -> Round:
    dag_ids = [f"ingest_{d}" for d in datasets]
    for dag_id in dag_ids:
        airflow.wait_for_dag(dag_id)
        airflow.api("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
    busy_before, total_before = _cpu_ticks()
    started = time.monotonic()
    runs = {
        dag_id: airflow.api("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": LOGICAL_DATE})[
            "dag_run_id"
        ]
        for dag_id in dag_ids
    }
    pending = dict(runs)
    while pending:
        airflow.check_alive()
        for dag_id, run_id in list(pending.items()):
            state = airflow.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"]
            if state == "failed":
                raise SystemExit(f"{dag_id} run {run_id} failed\n{airflow.logs()}")
            if state == "success":
                del pending[dag_id]
        time.sleep(0.5)
    seconds = time.monotonic() - started
    busy_after, total_after = _cpu_ticks()
    cores = os.cpu_count() or 1
    tries: list[dict[str, Any]] = []
    spans: dict[str, tuple[float, float]] = {}  # dag id -> (run seconds, its tasks' seconds)
    for dag_id, run_id in runs.items():
        run = airflow.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        own = airflow.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        tries.extend(own)
        spans[dag_id] = (
            _seconds(run["start_date"], run["end_date"]),
            sum(_seconds(t["start_date"], t["end_date"]) for t in own),
        )
    longest = max(spans.values())
    return Round(
        workers=workers,
        dag_runs=len(runs),
        seconds=seconds,
        task_tries=len(tries),
        task_seconds=sum(_seconds(t["start_date"], t["end_date"]) for t in tries),
        queued_seconds=sum(_seconds(t["queued_when"], t["start_date"]) for t in tries),
        publish_seconds=sum(
            _seconds(t["start_date"], t["end_date"]) for t in tries if t["task_id"] == "publish"
        ),
        busy_cores=cores * (busy_after - busy_before) / max(1, total_after - total_before),
        cores=cores,
        longest_run_seconds=longest[0],
        longest_run_task_seconds=longest[1],
    )


def run_workers_bench(workdir: Path, datasets: tuple[str, ...] = DEFAULT_DATASETS) -> dict[str, Any]:
    """One worker, then two, on the same DAG runs from empty stores; the figures and the ratio."""
    from pipelines.replay.server import ReplayServer

    workdir.mkdir(parents=True, exist_ok=True)
    rounds: list[Round] = []
    with local_s3() as s3, ReplayServer(PROJECT_ROOT / "recordings") as replay:
        for workers in (1, 2):
            with _cluster(workdir, workers, s3, replay.url) as airflow:
                rounds.append(_round(airflow, workers, datasets))
    one, two = rounds
    return {
        "datasets": list(datasets),
        "rounds": [{**asdict(r), "runs_per_minute": r.runs_per_minute} for r in rounds],
        "two_over_one_throughput": two.runs_per_minute / one.runs_per_minute,
    }
