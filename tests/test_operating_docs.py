"""README, "Operating the scheduler": its commands are the Makefile's, and the environment
`make airflow-env` gives a second shell is the one the real-scheduler test runs Airflow with."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from devtools import PROJECT_ROOT
from devtools.airflow_cluster import AirflowCluster

README = PROJECT_ROOT / "README.md"


def _section() -> str:
    text = README.read_text()
    start = text.index("## Operating the scheduler")
    return text[start : text.index("\n## ", start + 1)]


def _airflow_env() -> dict[str, str]:
    printed = subprocess.run(
        ["make", "-s", "--no-print-directory", "airflow-env"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    lines = printed.splitlines()
    assert lines and all(line.startswith("export ") for line in lines), printed
    return dict(line.removeprefix("export ").split("=", 1) for line in lines)


def test_the_readme_names_make_targets_that_exist() -> None:
    section = _section()
    targets = set(re.findall(r"\bmake (?:-s )?([a-z][\w-]*)", section))
    assert {"airflow", "airflow-env"} <= targets
    for target in targets:
        dry = subprocess.run(
            ["make", "-n", target], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60
        )
        assert dry.returncode == 0, (target, dry.stderr)


def test_the_readme_says_to_unpause_publish_marts_and_where_the_admin_password_is() -> None:
    section = _section()
    assert "airflow dags unpause publish_marts" in section
    assert "simple_auth_manager_passwords.json.generated" in section
    assert 'eval "$(make -s airflow-env)"' in section


def test_make_airflow_env_sets_what_the_scheduler_test_sets_pointing_at_this_checkout(tmp_path: Path) -> None:
    env = _airflow_env()
    cluster = AirflowCluster(tmp_path, PROJECT_ROOT / "dags", {}).env
    # The variables a second shell needs, each one the cluster test sets too, to the same end.
    assert {"AIRFLOW_HOME", "AIRFLOW__CORE__DAGS_FOLDER", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"} <= set(env)
    assert set(env) - {"PATH", "SCDX_DATA_DIR"} <= set(cluster)
    assert (
        env["AIRFLOW__CORE__DAGS_FOLDER"]
        == cluster["AIRFLOW__CORE__DAGS_FOLDER"]
        == str(PROJECT_ROOT / "dags")
    )
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == cluster["AIRFLOW__CORE__LOAD_EXAMPLES"]
    # SQLite needs an absolute path (four slashes); the home is the checkout's .airflow.
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{PROJECT_ROOT}/.airflow/airflow.db"
    assert env["AIRFLOW_HOME"] == str(PROJECT_ROOT / ".airflow")
    assert env["PATH"] == f"{PROJECT_ROOT}/.venv/bin:$PATH"


def test_a_second_shell_that_evals_make_airflow_env_finds_airflow_and_the_project_dags(
    tmp_path: Path,
) -> None:
    # Airflow writes its airflow.cfg into AIRFLOW_HOME: a temporary one, not the checkout's .airflow.
    script = (
        'eval "$(make -s --no-print-directory airflow-env)"; export AIRFLOW_HOME="$1"; '
        "command -v airflow; airflow config get-value core dags_folder"
    )
    # A shell whose PATH does not hold the venv, as a newcomer's second terminal.
    path = os.pathsep.join(
        p for p in os.environ["PATH"].split(os.pathsep) if Path(p) != Path(sys.executable).parent
    )
    shell = subprocess.run(
        ["bash", "-c", script, "bash", str(tmp_path / "airflow")],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PATH": path},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shell.returncode == 0, shell.stderr[-2000:]
    found, dags_folder = shell.stdout.strip().splitlines()[-2:]
    assert found == f"{PROJECT_ROOT}/.venv/bin/airflow"
    assert dags_folder == str(PROJECT_ROOT / "dags")
