"""docker-compose.yml cannot run here (no Docker engine); its contents are checked instead,
against what the code needs: services, commands, healthchecks, mounts and environment."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

import pipelines.common.settings
from devtools import PROJECT_ROOT
from pipelines.contracts import Registry

COMPOSE = PROJECT_ROOT / "docker-compose.yml"
LONG_RUNNING = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def _env(service: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in service["environment"].items()}


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    return {target.split(":")[0]: source for source, target in (v.split(":", 1) for v in service["volumes"])}


def test_compose_has_the_official_shape_of_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"postgres", "redis", "airflow-init", *LONG_RUNNING, "airflow-worker"} <= set(services)
    commands = {name: services[name]["command"] for name in LONG_RUNNING}
    assert commands == {
        "airflow-apiserver": "api-server",
        "airflow-scheduler": "scheduler",
        "airflow-dag-processor": "dag-processor",
        "airflow-triggerer": "triggerer",
    }
    assert services["airflow-worker"]["command"] == "celery worker"


def test_local_executor_by_default_and_celery_with_redis_and_a_worker_under_a_profile(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    assert services["redis"]["profiles"] == ["celery"] and services["airflow-worker"]["profiles"] == [
        "celery"
    ]
    assert "profiles" not in services["airflow-scheduler"] and "profiles" not in services["postgres"]
    env = _env(services["airflow-scheduler"])
    assert env["AIRFLOW__CORE__EXECUTOR"] == "${AIRFLOW_EXECUTOR:-LocalExecutor}"
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://redis:6379/0"
    assert services["airflow-worker"]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_airflow_services_share_the_postgres_database_the_api_url_and_one_jwt_secret(
    compose: dict[str, Any],
) -> None:
    for name in (*LONG_RUNNING, "airflow-init", "airflow-worker"):
        env = _env(compose["services"][name])
        assert (
            env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
            == "postgresql+psycopg2://airflow:airflow@postgres/airflow"
        )
        # Tasks reach the API server by its service name; every process signs with the same secret.
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
        assert env["AIRFLOW__API_AUTH__JWT_SECRET"].startswith("${AIRFLOW_JWT_SECRET:?")


def test_init_migrates_sets_the_admin_password_and_imports_the_pools_the_dags_use(
    compose: dict[str, Any],
) -> None:
    init = compose["services"]["airflow-init"]
    script = init["command"][-1]
    assert "airflow db migrate" in script
    assert "scdx airflow-pools --out /opt/airflow/config/pools.json" in script
    assert "airflow pools import /opt/airflow/config/pools.json" in script
    passwords = _env(init)["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
    assert passwords.startswith("/opt/airflow/config/") and passwords in script
    # The password file is on a volume every service mounts, so the api-server reads what init wrote.
    for name in ("airflow-init", "airflow-apiserver"):
        assert _mounts(compose["services"][name])["/opt/airflow/config"] == "airflow-config"


def test_every_long_running_service_has_a_healthcheck_and_waits_for_init_and_postgres(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    assert services["postgres"]["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    for name in (*LONG_RUNNING, "airflow-worker"):
        assert services[name]["healthcheck"]["test"], name
        depends = services[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["airflow-init"]["condition"] == "service_completed_successfully"
    assert (
        "http://localhost:8080/api/v2/monitor/health" in services["airflow-apiserver"]["healthcheck"]["test"]
    )


def test_dags_schemas_and_the_data_dir_are_mounted_where_the_code_looks(compose: dict[str, Any]) -> None:
    for name in LONG_RUNNING:
        service = compose["services"][name]
        env, mounts = _env(service), _mounts(service)
        assert mounts[env["AIRFLOW__CORE__DAGS_FOLDER"]] == "./dags"
        assert mounts[env["SCDX_SCHEMAS_DIR"]] == "./schemas"
        assert mounts[env["SCDX_DATA_DIR"]] == "scdx-data"
    assert "scdx-data" in compose["volumes"], "the data dir lives on a named volume"
    for source in ("./dags", "./schemas"):
        assert (PROJECT_ROOT / source).is_dir()


def test_every_setting_and_api_key_the_code_reads_is_passed_to_the_containers(
    compose: dict[str, Any], registry: Registry
) -> None:
    env = _env(compose["services"]["airflow-scheduler"])
    settings_source = inspect.getsource(pipelines.common.settings)
    for variable in (
        "SCDX_DATA_DIR",
        "SCDX_SCHEMAS_DIR",
        "SCDX_RECORDINGS_DIR",
        "SCDX_LIVE",
        "SCDX_KEEP_VERSIONS",
    ):
        assert f'"{variable}"' in settings_source and variable in env
    for contract in registry.contracts.values():
        if contract.source.auth:
            assert contract.source.auth.env in env, (
                f"{contract.dataset}: {contract.source.auth.env} not passed"
            )


def test_image_installs_the_project_and_its_locked_dependencies(compose: dict[str, Any]) -> None:
    assert compose["services"]["airflow-scheduler"]["build"] == "."
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    assert "FROM apache/airflow:3.3.2-python3.11" in dockerfile
    assert "pip install --no-cache-dir -r requirements.lock" in dockerfile
    assert "pip install --no-cache-dir --no-deps ." in dockerfile
    assert _env(compose["services"]["airflow-scheduler"])["SCDX_RECORDINGS_DIR"] == "/opt/scdx/recordings"
    assert "COPY --chown=airflow:root recordings ./recordings" in dockerfile


def test_env_example_names_every_variable_compose_interpolates() -> None:
    # $${VAR} is an escaped dollar, left for the container shell.
    needed = set(re.findall(r"(?<!\$)\$\{([A-Z_]+)", COMPOSE.read_text()))
    example = Path(PROJECT_ROOT / ".env.example").read_text()
    defined = set(re.findall(r"^([A-Z_]+)=", example, flags=re.M))
    assert needed <= defined, needed - defined


def _lock_pins() -> dict[str, str]:
    lock = (PROJECT_ROOT / "requirements.lock").read_text()
    return dict(re.findall(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;]+)", lock, flags=re.M))


def test_the_celery_profile_runs_workers_on_redis_with_task_states_in_postgres(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    redis, worker = services["redis"], services["airflow-worker"]
    assert redis["image"].startswith("redis:") and redis["healthcheck"]["test"] == [
        "CMD",
        "redis-cli",
        "ping",
    ]
    env = _env(worker)
    # The broker is the redis service; results go to the metadata database, not to the broker.
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://redis:6379/0"
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+postgresql://airflow:airflow@postgres/airflow"
    assert int(env["AIRFLOW__CELERY__WORKER_CONCURRENCY"]) >= 1
    # The worker runs the same executor setting as the scheduler (one .env value for both).
    assert env["AIRFLOW__CORE__EXECUTOR"] == _env(services["airflow-scheduler"])["AIRFLOW__CORE__EXECUTOR"]
    assert "CeleryExecutor" in (PROJECT_ROOT / ".env.example").read_text()
    # The health check pings this worker's own node through the broker with the executor's Celery app.
    check = worker["healthcheck"]["test"][-1]
    assert "celery --app airflow.providers.celery.executors.celery_executor.app inspect ping" in check
    assert '-d "celery@$${HOSTNAME}"' in check or '-d "celery@${HOSTNAME}"' in check
    # A stopping worker finishes its task (a publish is never cut short by a redeploy).
    assert env["DUMB_INIT_SETSID"] == "0" and worker["stop_grace_period"]


def test_workers_run_tasks_so_they_get_the_dags_the_schemas_the_data_and_every_setting(
    compose: dict[str, Any],
) -> None:
    worker, scheduler = compose["services"]["airflow-worker"], compose["services"]["airflow-scheduler"]
    assert _mounts(worker) == _mounts(scheduler)
    worker_env, scheduler_env = _env(worker), _env(scheduler)
    assert {k: v for k, v in scheduler_env.items() if k.startswith("SCDX_")} == {
        k: v for k, v in worker_env.items() if k.startswith("SCDX_")
    }


def test_every_service_reaching_postgres_or_redis_waits_until_it_is_healthy(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["postgres"]["healthcheck"]["test"] and services["redis"]["healthcheck"]["test"]
    for name, service in services.items():
        env = _env(service) if "environment" in service else {}
        if "@postgres/" in env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", ""):
            assert service["depends_on"]["postgres"]["condition"] == "service_healthy", name
    # The broker's users: the scheduler (whose executor sends the tasks) and the workers. redis is
    # only in the celery profile, so the scheduler's wait is not required without it.
    assert services["airflow-worker"]["depends_on"]["redis"] == {"condition": "service_healthy"}
    assert services["airflow-scheduler"]["depends_on"]["redis"] == {
        "condition": "service_healthy",
        "required": False,
    }


def test_the_image_pins_celery_below_5_7_with_the_celery_provider_it_imports_under() -> None:
    pins = _lock_pins()
    celery = tuple(int(part) for part in pins["celery"].split(".")[:2])
    assert celery < (5, 7), "apache-airflow-providers-celery 3.26.0 fails to import under celery 5.7"
    assert pins["apache-airflow-providers-celery"] == "3.26.0"
    assert {"kombu", "redis", "billiard"} <= set(pins)
    # The image installs exactly these pins, and `make venv` (the scale extra) the same ones.
    assert "pip install --no-cache-dir -r requirements.lock" in (PROJECT_ROOT / "Dockerfile").read_text()
    pyproject = (PROJECT_ROOT / "pyproject.toml").read_text()
    for package in ("celery", "apache-airflow-providers-celery"):
        assert re.search(rf'"{re.escape(package)}(\[[a-z,]+\])?=={re.escape(pins[package])}"', pyproject), (
            package
        )
