"""The CeleryExecutor as installed here (celery pinned below 5.7, the provider 3.26.0): it imports,
and a real ``airflow celery worker`` answers a ping through the local Redis (127.0.0.1:6379, a db
index of its own, flushed before and after); and the DAGs' retry delay the cluster test shortens.
The whole cluster is in test_celery_cluster.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.airflow_cluster import AIRFLOW

REDIS_DB = 12  # this test's own index on the shared Redis; only it is flushed


def _redis() -> object:
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        pytest.fail(
            f"no Redis on 127.0.0.1:6379 ({exc}): apt-get install redis-server && service redis-server start"
        )
    return client


def _celery_env(home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
        "AIRFLOW__CELERY__RESULT_BACKEND": f"redis://127.0.0.1:6379/{REDIS_DB}",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
    }


def test_the_celery_executor_imports_with_the_pinned_celery() -> None:
    import celery
    from airflow.providers.celery.executors.celery_executor import CeleryExecutor

    # The provider 3.26.0 fails to import under celery 5.7.0 (celery.backends.database.retry moved).
    assert tuple(int(p) for p in celery.__version__.split(".")[:2]) < (5, 7)
    assert CeleryExecutor.__name__ == "CeleryExecutor"


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path, dict[str, str]]]:
    client = _redis()
    client.flushdb()  # type: ignore[attr-defined]
    env = _celery_env(tmp_path)
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [AIRFLOW, "celery", "worker", "--celery-hostname", "ping@%h", "--skip-serve-logs"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process, log, env
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        client.flushdb()  # type: ignore[attr-defined]


@pytest.mark.timeout(240)
def test_a_celery_worker_answers_a_ping_through_the_local_redis(
    worker: tuple[subprocess.Popen[bytes], Path, dict[str, str]],
) -> None:
    process, log, env = worker
    # The health check the compose file's worker runs, against this worker's node name.
    ping = [
        str(Path(sys.executable).parent / "celery"),
        "--app",
        "airflow.providers.celery.executors.celery_executor.app",
        "inspect",
        "ping",
        "--timeout",
        "5",
    ]
    while True:  # until the worker answers, or it died (then its log says why)
        assert process.poll() is None, (
            f"the worker exited with {process.returncode}:\n{log.read_text()[-4000:]}"
        )
        answer = subprocess.run(ping, env=env, capture_output=True, text=True, timeout=120)
        if answer.returncode == 0:
            break
    assert "ping@" in answer.stdout and "pong" in answer.stdout, answer.stdout


def test_a_failed_task_first_retries_after_a_minute_unless_scdx_retry_delay_s_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from datetime import timedelta

    from pipelines.orchestration.dag_support import retry_delay

    monkeypatch.delenv("SCDX_RETRY_DELAY_S", raising=False)
    assert retry_delay() == timedelta(minutes=1)
    # The cluster test kills a worker on purpose: its retry need not wait a minute.
    monkeypatch.setenv("SCDX_RETRY_DELAY_S", "5")
    assert retry_delay() == timedelta(seconds=5)
