"""A real Airflow 3 deployment for the tests and the workers bench: PostgreSQL metadata DB, api-server, scheduler and
dag-processor as separate processes with the LocalExecutor (see shared/notes/airflow-real-scheduler.md),
or with the CeleryExecutor and Celery workers on a Redis broker (``celery_env``, ``start_worker``).

Every process runs in its own process group and is stopped in ``stop()`` (SIGTERM, then SIGKILL);
the database is created fresh and dropped at the end. Nothing here is a mock: it is the same
``airflow`` commands an operator runs (README, "Operating the scheduler").
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import psycopg2

from devtools import PROJECT_ROOT

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
AIRFLOW = str(Path(sys.executable).parent / "airflow")
SCDX = str(Path(sys.executable).parent / "scdx")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _psql(sql: str) -> None:
    con = psycopg2.connect(dbname="postgres", **PG)
    con.autocommit = True
    try:
        with con.cursor() as cursor:
            cursor.execute(sql)
    finally:
        con.close()


def _kill_leftovers(process: subprocess.Popen[bytes]) -> None:
    """A group leader that exited may leave children in its group (a Celery pool process)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def worker_hostname() -> str:
    """The host name a test's Celery worker reports to Airflow (``AIRFLOW__CORE__HOSTNAME_CALLABLE``
    points here): two workers on one machine stand for two hosts, and the task instances say which."""
    return os.environ["SCDX_TEST_WORKER_HOSTNAME"]


def celery_env(database: str, redis_db: int) -> dict[str, str]:
    """The CeleryExecutor on the local Redis (its own db index) with results in the metadata DB.

    One task per worker at a time and one message prefetched: a killed worker then takes down only
    the task it was running (Airflow retries it), never a reserved message another worker could run.
    """
    return {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:6379/{redis_db}",
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{database}",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
        "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
    }


class AirflowCluster:
    """api-server + scheduler + dag-processor (and any other components asked for) on a fresh PostgreSQL database."""

    def __init__(
        self,
        home: Path,
        dags: Path,
        extra_env: dict[str, str],
        components: tuple[str, ...] = (),
        database: str | None = None,
    ) -> None:
        """``components``: processes to run besides the three, e.g. ``("triggerer",)`` for
        deferrable tasks and asset watchers; ``database``: a metadata database to reuse."""
        self.home = home
        self.components = ("api-server", "scheduler", "dag-processor", *components)
        self.database = database or f"scdx_airflow_{secrets.token_hex(4)}"
        self.port = free_port()
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.killed: set[str] = set()
        (home / "passwords.json").write_text(json.dumps({"admin": "admin"}))
        self.env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{PG['user']}@{PG['host']}:{PG['port']}/{self.database}",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "3",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.port}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(free_port()),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
            **extra_env,  # last: a test's settings (the executor, its broker) win
        }
        self.token: str | None = None

    # --- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        _psql(f'CREATE DATABASE "{self.database}"')
        self.run("airflow", "db", "migrate")
        pools = self.home / "pools.json"
        self.run("scdx", "airflow-pools", "--out", str(pools))
        self.run("airflow", "pools", "import", str(pools))
        for name in self.components:
            log = (self.home / f"{name}.log").open("wb")
            self.processes[name] = subprocess.Popen(
                [AIRFLOW, name], env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._wait_healthy()

    def start_worker(self, name: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
        """``airflow celery worker`` named ``name`` (its Celery node name and the host name its task
        instances record), in its own process group, with its own log-server port; ``env``: what
        this worker's host sets differently (its own scratch directory)."""
        log = (self.home / f"worker-{name}.log").open("wb")
        process = subprocess.Popen(
            [AIRFLOW, "celery", "worker", "--celery-hostname", f"{name}@%h", "--without-mingle"],
            env={
                **self.env,
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": f"{__name__}.worker_hostname",
                "PYTHONPATH": os.pathsep.join(
                    filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])
                ),
                "SCDX_TEST_WORKER_HOSTNAME": name,
                **(env or {}),
            },
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes[f"worker-{name}"] = process
        return process

    def worker_ready(self, name: str) -> bool:
        """Celery logs "<node name> ready." once the worker ``name`` consumes from the broker."""
        log = self.home / f"worker-{name}.log"
        return log.exists() and f"{name}@" in (text := log.read_text(errors="replace")) and " ready." in text

    def kill(self, name: str) -> None:
        """SIGKILL a process, its process group and every process it started, as when its host dies.

        The group is not enough: Airflow's task supervisor puts each task runner in a process group
        of its own, so a task would outlive a worker whose group alone was killed (and hold its
        dataset's lock until its own request timed out)."""
        import psutil

        process = self.processes[name]
        self.killed.add(name)
        tree = psutil.Process(process.pid).children(recursive=True)
        os.killpg(process.pid, signal.SIGKILL)
        for child in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        process.wait(timeout=30)
        psutil.wait_procs(tree, timeout=30)

    def check_alive(self) -> None:
        """Fail with the logs when a process this cluster started (and did not kill) has exited."""
        for name, process in self.processes.items():
            if name not in self.killed and process.poll() is not None:
                raise AssertionError(f"{name} exited with {process.returncode}\n{self.logs()}")

    def stop(self) -> None:
        import psutil

        # Task runners sit in process groups of their own (see kill): note them before their parents go.
        descendants = []
        for process in self.processes.values():
            with contextlib.suppress(psutil.NoSuchProcess):
                descendants += psutil.Process(process.pid).children(recursive=True)
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
                _kill_leftovers(process)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        for child in psutil.wait_procs(descendants, timeout=5)[1]:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        try:
            _psql(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        except psycopg2.Error as exc:  # leave the test result to what happened before
            print(f"could not drop {self.database}: {exc}", file=sys.stderr)

    def logs(self) -> str:
        return "\n".join(
            f"===== {p.name}\n{p.read_text(errors='replace')[-4000:]}"
            for p in sorted(self.home.glob("*.log"))
        )

    # --- commands ---------------------------------------------------------------------------
    def run(self, program: str, *args: str, timeout: float = 300) -> str:
        """An `airflow ...` or `scdx ...` command as an operator types it; its output."""
        executable = {"airflow": AIRFLOW, "scdx": SCDX}[program]
        result = subprocess.run(
            [executable, *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if result.returncode != 0:
            raise AssertionError(
                f"{program} {' '.join(args)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
            )
        return result.stdout

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        url = f"http://127.0.0.1:{self.port}{path}"
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback only
            payload = response.read()
        return json.loads(payload) if payload else None

    def _wait_healthy(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise AssertionError(f"airflow {name} exited with {process.returncode}\n{self.logs()}")
            try:
                health = self.api("GET", "/api/v2/monitor/health")
                states = {k: v.get("status") for k, v in health.items() if isinstance(v, dict)}
                wanted = [
                    "metadatabase",
                    *(c.replace("-", "_") for c in self.components if c != "api-server"),
                ]
                if all(states.get(k) == "healthy" for k in wanted):
                    self.token = self.api("POST", "/auth/token", {"username": "admin", "password": "admin"})[
                        "access_token"
                    ]
                    return
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(1)
        raise AssertionError(f"Airflow did not become healthy in {timeout:.0f} s\n{self.logs()}")

    def wait_for_dag(self, dag_id: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.api("GET", f"/api/v2/dags/{dag_id}")
                return
            except urllib.error.HTTPError:
                time.sleep(2)
        raise AssertionError(f"DAG {dag_id} was not parsed in {timeout:.0f} s\n{self.logs()}")

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        runs: list[dict[str, Any]] = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=100")["dag_runs"]
        return runs

    def wait_for_run(
        self, dag_id: str, matches: Callable[[dict[str, Any]], bool], timeout: float = 600
    ) -> dict[str, Any]:
        """Wait until a run the predicate picks has succeeded; fail fast if it failed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for run in self.dag_runs(dag_id):
                if matches(run) and run["state"] == "success":
                    return run
                if matches(run) and run["state"] == "failed":
                    raise AssertionError(f"{dag_id} run {run['dag_run_id']} failed\n{self.logs()}")
            time.sleep(2)
        raise AssertionError(f"{dag_id}: no matching successful run in {timeout:.0f} s\n{self.logs()}")

    def wait_for_backfills(self, dag_id: str, count: int, timeout: float = 900) -> None:
        """Wait until ``count`` backfills of the DAG have completed with no failed run."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            backfills = self.api("GET", f"/api/v2/backfills?dag_id={dag_id}")["backfills"]
            failed = [
                r for r in self.dag_runs(dag_id) if r["state"] == "failed" and r["run_type"] == "backfill"
            ]
            if failed:
                raise AssertionError(f"{dag_id} run failed: {failed[0]['dag_run_id']}\n{self.logs()}")
            if len(backfills) >= count and all(b.get("completed_at") for b in backfills):
                return
            time.sleep(3)
        raise AssertionError(f"{dag_id}: {count} backfill(s) not completed in {timeout:.0f} s\n{self.logs()}")
