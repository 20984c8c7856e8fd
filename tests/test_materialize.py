"""A release's materialized copy (``scdx publish materialize``): the current release once more, its
rows in DuckDB tables, for analysts' query speed. It must read exactly as the release it copies,
never leave readers on half of anything, and give way to the next publish.

Releases here are the conformance suite's (tests/store_helpers.py): ``curated.t`` and the mart
``marts.m`` built from it, which a reader checks agree.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from devtools.release_checks import checksums
from pipelines.cli.app import app
from pipelines.common.faults import MATERIALIZE_POINTS
from pipelines.store.layout import Layout
from pipelines.store.local import LocalStore
from pipelines.store.materialize import COPY_SUFFIX
from pipelines.store.tiers import release_tables

from .conftest import postgres_database
from .store_helpers import current_release, damage_file, helper_process, make_store, publish_tag

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture(params=["sqlite", "postgresql"])
def data_dir(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """A local store's data directory, its catalog in SQLite (in it) or in a fresh PostgreSQL database."""
    monkeypatch.setenv("SCDX_STORE_KIND", "local")
    root = tmp_path / "data"
    root.mkdir()
    if request.param == "postgresql":
        databases = postgres_database()
        monkeypatch.setenv("SCDX_CATALOG_URL", next(databases))
        yield root
        next(databases, None)
    else:
        monkeypatch.delenv("SCDX_CATALOG_URL", raising=False)
        yield root


def _store(data_dir: Path) -> LocalStore:
    store = make_store(data_dir, keep=5)
    assert isinstance(store, LocalStore)
    return store


def _link(data_dir: Path) -> Path:
    return Layout(data_dir).store("public").link


def _pointed_at(data_dir: Path) -> str:
    return os.readlink(_link(data_dir)).rsplit("/", 1)[-1]


def _copies(data_dir: Path) -> list[str]:
    return sorted(p.name for p in (data_dir / "versions" / "public").glob(f"*{COPY_SUFFIX}"))


def _shape(con: duckdb.DuckDBPyConnection) -> dict[str, object]:
    """What a reader sees of a release besides its rows: its tables with their comments (views or
    DuckDB tables alike), every column's type and comment, and meta.*."""
    return {
        "tables": release_tables(con, ["curated", "marts", "meta"]),
        "columns": con.execute(
            "SELECT schema_name, table_name, column_name, data_type, comment FROM duckdb_columns() ORDER BY ALL"
        ).fetchall(),
        "meta": {
            name: con.execute(f"SELECT * FROM {name} ORDER BY ALL").fetchall()
            for name in release_tables(con, ["meta"])
        },
    }


def _child(*args: str, fault: str | None = None) -> subprocess.CompletedProcess[str]:
    """tests/store_helpers.py in a child process, run to its end (or its crash point)."""
    process = helper_process(*args, fault=fault)
    stdout, stderr = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_a_materialized_release_reads_exactly_as_its_release_file_with_its_rows_in_duckdb_tables(
    data_dir: Path,
) -> None:
    store = _store(data_dir)
    publish_tag(store, 1, 5000)
    with duckdb.connect(str(store.release_path(1)), read_only=True) as con:
        views_sums, views_shape = checksums(con), _shape(con)

    done = store.materialize()

    assert done is not None and done.made and done.release == 1
    assert _pointed_at(data_dir) == f"scdx-v000001{COPY_SUFFIX}"
    with duckdb.connect(str(_link(data_dir)), read_only=True) as con:
        assert checksums(con) == views_sums
        assert _shape(con) == views_shape
        # Its tables are DuckDB tables, not views over Parquet files.
        plan = "".join(row[1] for row in con.execute("EXPLAIN SELECT sum(n) FROM curated.t").fetchall())
        kinds = con.execute(
            "SELECT (SELECT count(*) FROM duckdb_views() WHERE NOT internal), "
            "(SELECT count(*) FROM duckdb_tables() WHERE schema_name IN ('curated', 'marts'))"
        ).fetchone()
    assert "READ_PARQUET" not in plan.upper()
    assert kinds == (0, 2)
    # Asked again, nothing is written twice.
    again = store.materialize()
    assert again is not None and not again.made


def test_the_next_publish_points_readers_at_its_own_release_and_removes_the_copy(data_dir: Path) -> None:
    store = _store(data_dir)
    publish_tag(store, 1, 100)
    store.materialize()
    assert _copies(data_dir) == [f"scdx-v000001{COPY_SUFFIX}"]

    publish_tag(store, 2, 200)

    assert _pointed_at(data_dir) == "scdx-v000002.duckdb"
    assert current_release(data_dir) == (2, 200)
    assert _copies(data_dir) == []
    store.materialize()
    assert _copies(data_dir) == [f"scdx-v000002{COPY_SUFFIX}"]
    assert current_release(data_dir) == (2, 200)
    # A rollback is a new release too: readers see it at once, as views, until it is materialized.
    restored = store.rollback(1)
    assert restored.number == 3 and current_release(data_dir) == (1, 100)
    assert _pointed_at(data_dir) == "scdx-v000003.duckdb" and _copies(data_dir) == []


def test_a_copy_of_a_release_superseded_before_it_was_written_is_dropped(data_dir: Path) -> None:
    store = _store(data_dir)
    publish_tag(store, 1, 100)
    publish_tag(store, 2, 200)

    assert store.materialize(1) is None

    assert _copies(data_dir) == [] and _pointed_at(data_dir) == "scdx-v000002.duckdb"
    assert not (data_dir / "versions" / "public" / ".materializing").exists()


@pytest.mark.parametrize("step", MATERIALIZE_POINTS)
def test_a_materialize_killed_at_any_step_leaves_readers_on_the_whole_release_and_the_next_one_finishes(
    data_dir: Path, step: str
) -> None:
    store = _store(data_dir)
    publish_tag(store, 1, 100)

    killed = _child("materialize", str(data_dir), fault=step)

    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert current_release(data_dir) == (1, 100)
    done = _store(data_dir).materialize()
    assert done is not None and done.release == 1
    assert _pointed_at(data_dir) == f"scdx-v000001{COPY_SUFFIX}"
    assert current_release(data_dir) == (1, 100)
    assert _copies(data_dir) == [f"scdx-v000001{COPY_SUFFIX}"]
    assert not (data_dir / "versions" / "public" / ".materializing").exists()
    publish_tag(store, 2, 200)
    assert _copies(data_dir) == [] and current_release(data_dir) == (2, 200)


def test_verify_names_a_damaged_copy_and_materialize_writes_it_again(data_dir: Path) -> None:
    store = _store(data_dir)
    publish_tag(store, 1, 100)
    copy = store.materialize()
    assert copy is not None
    damage_file(data_dir, store, str(copy.path))

    damage = store.verify()
    result = CliRunner().invoke(app, ["publish", "verify", "--data-dir", str(data_dir)])

    assert [(d.release, d.path) for d in damage] == [(1, f"versions/public/scdx-v000001{COPY_SUFFIX}")]
    assert result.exit_code == 1
    assert f"scdx-v000001{COPY_SUFFIX}" in result.output and "scdx publish materialize" in result.output
    again = store.materialize()
    assert again is not None and again.made
    assert store.verify() == [] and current_release(data_dir) == (1, 100)


def test_a_copy_that_went_missing_sends_readers_back_to_the_release_file(data_dir: Path) -> None:
    store = _store(data_dir)
    publish_tag(store, 1, 100)
    copy = store.materialize()
    assert copy is not None
    copy.path.unlink()

    store.heal()  # what a run that publishes nothing does as it ends

    assert _pointed_at(data_dir) == "scdx-v000001.duckdb" and current_release(data_dir) == (1, 100)


def test_materialize_from_the_command_line_says_what_it_did(data_dir: Path) -> None:
    runner = CliRunner()
    empty = runner.invoke(app, ["publish", "materialize", "--data-dir", str(data_dir)])
    publish_tag(_store(data_dir), 1, 100)
    made = runner.invoke(app, ["publish", "materialize", "--data-dir", str(data_dir)])
    again = runner.invoke(app, ["publish", "materialize", "--data-dir", str(data_dir)])

    assert empty.exit_code == 0 and "nothing to materialize in the public tier" in empty.output
    assert made.exit_code == 0, made.output
    assert "release 1 of the public tier materialized as DuckDB tables" in made.output
    assert again.exit_code == 0 and "materialized already" in again.output


@pytest.mark.timeout(900)
def test_readers_opening_the_path_while_releases_are_published_and_materialized_see_only_whole_releases(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCDX_STORE_KIND", "local")
    monkeypatch.delenv("SCDX_CATALOG_URL", raising=False)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    publish_tag(_store(data_dir), 1, 1001)
    report, ready = tmp_path / "reader.json", tmp_path / "ready"
    reader = helper_process("read-loop", str(data_dir), "1500", str(report), str(ready))
    tag, kills, copies = 2, 0, 0
    try:
        while reader.poll() is None:
            # Every release is materialized; every other materialize is killed, at each step in turn.
            assert _child("publish-many", str(data_dir), str(tag), "1").returncode == 0
            fault = MATERIALIZE_POINTS[(tag // 2) % len(MATERIALIZE_POINTS)] if tag % 2 else None
            materialized = _child("materialize", str(data_dir), fault=fault)
            kills += materialized.returncode == -signal.SIGKILL
            copies += materialized.returncode == 0
            tag += 1
    finally:
        reader.communicate(timeout=600)
    result = json.loads(report.read_text())
    assert result["opens"] == 1500
    assert result["mixed"] == [] and result["errors"] == []
    assert len(result["tags"]) > 1 and kills >= 1 and copies >= 1
