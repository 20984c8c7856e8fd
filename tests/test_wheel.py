"""The installed package works: a wheel built from the project, installed into a fresh venv, runs
``scdx --help`` and ``scdx demo`` outside the checkout, on the contracts and recordings it carries."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import duckdb
import pytest

from devtools import PROJECT_ROOT
from pipelines.contracts import load_registry

# What a clean clone does not hold, or what the build must not pick up from a developer's checkout.
NOT_IN_A_CLONE = shutil.ignore_patterns(
    ".git", ".venv", "data", "build", "dist", "*.egg-info", "__pycache__", ".*_cache"
)


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{command}: {result.stdout[-3000:]}{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def outside(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A fresh venv holding only the wheel (its dependencies reached through a path file, since
    the machine has no index to install them from), and a working directory outside the checkout."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    # Symlinks stay links: pipelines/bundled/ points at schemas/ and recordings/, as in a clone.
    shutil.copytree(PROJECT_ROOT, source, symlinks=True, ignore=NOT_IN_A_CLONE)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SCDX_", "PYTHON", "VIRTUAL_ENV"))
    }
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(work / "dist"),
            ".",
        ],
        source,
        env,
    )
    (wheel,) = (work / "dist").glob("scdx-*.whl")
    venv = work / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], work, env)
    fresh_site = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    # Only the dependencies: the project venv's own scdx is an editable install whose finder is
    # started by a .pth file there, and .pth files of a directory added this way are not run.
    (fresh_site / "scdx-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(venv / "bin" / "python"),
            "install",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        work,
        env,
    )
    elsewhere = work / "elsewhere"
    elsewhere.mkdir()
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["COLUMNS"] = "220"
    shutil.rmtree(source)  # nothing may be read from the tree the wheel was built from
    return elsewhere, env


def test_the_installed_package_is_the_wheels_not_the_checkouts(outside: tuple[Path, dict[str, str]]) -> None:
    cwd, env = outside
    result = _run(
        [
            "python",
            "-c",
            "import pipelines, pipelines.common.settings as s; print(pipelines.__file__); print(s.BUNDLED)",
        ],
        cwd,
        env,
    )
    package, bundled = result.stdout.split()
    venv = Path(env["PATH"].split(os.pathsep)[0]).parent
    assert Path(package).is_relative_to(venv) and not Path(package).is_relative_to(PROJECT_ROOT)
    assert (Path(bundled) / "schemas" / "census_trade_imports.yaml").is_file()
    assert (Path(bundled) / "recordings").is_dir()


def test_scdx_help_lists_the_commands_from_the_installed_package(
    outside: tuple[Path, dict[str, str]],
) -> None:
    cwd, env = outside
    out = _run(["scdx", "--help"], cwd, env).stdout
    for command in ("refresh", "demo", "ingest-file", "query", "publish"):
        assert command in out


def test_scdx_demo_from_the_wheel_publishes_every_dataset_from_its_bundled_recordings(
    outside: tuple[Path, dict[str, str]],
) -> None:
    cwd, env = outside
    out = _run(["scdx", "demo"], cwd, env).stdout
    assert "supply_chain_scorecard" in out and "Lithium-ion batteries" in out
    database = cwd / "data" / "scdx.duckdb"
    with duckdb.connect(str(database), read_only=True) as con:
        published = {
            dataset
            for (dataset,) in con.execute(
                "SELECT DISTINCT dataset FROM meta.runs WHERE status = 'published'"
            ).fetchall()
        }
    contracts = {
        c.dataset for c in load_registry(PROJECT_ROOT / "schemas").contracts.values() if not c.source.inbox
    }
    assert published == contracts
