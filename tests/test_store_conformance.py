"""The release store conformance suite: what any implementation of ``pipelines.store.ReleaseStore``
must do, run here against the local store with its catalog in SQLite and in PostgreSQL, and
against the Iceberg store (catalog on PostgreSQL, warehouse on the local S3 API).

Every release of the suite holds ``curated.t`` and the mart ``marts.m`` built from it; a reader
that ever sees them disagree has seen half a release (tests/store_helpers.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.release_checks import checksums
from pipelines.store import DamagedRelease, StoreError

from .conftest import postgres_database
from .store_helpers import (
    current_release,
    damage_file,
    files_written_by,
    helper_process,
    make_store,
    own_files,
    publish_tag,
    referenced_files,
    remove,
    stored_files,
    stored_releases,
    whole,
)

PROJECT = Path(__file__).resolve().parents[1]
PUBLISH_STEPS = (
    "publish:before_commit",
    "publish:before_catalog",
    "publish:before_swap",
    "publish:after_swap",
)


def _store_environment(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, kind: str, catalog: str
) -> Iterator[None]:
    """The environment of one store kind and catalog: a fresh PostgreSQL database per test (the
    Iceberg tables' catalog too) and, for Iceberg, a fresh bucket on the local S3 API."""
    monkeypatch.setenv("SCDX_STORE_KIND", kind)
    if kind == "iceberg":
        bucket = request.getfixturevalue("s3_bucket")  # sets the AWS_* variables for this test
        monkeypatch.setenv("SCDX_DATA_URL", f"s3://{bucket}/scdx")
    if catalog == "postgresql":
        databases = postgres_database()
        monkeypatch.setenv("SCDX_CATALOG_URL", next(databases))
        yield
        next(databases, None)
    else:
        monkeypatch.delenv("SCDX_CATALOG_URL", raising=False)
        yield


STORES = ["local-sqlite", "local-postgresql", "iceberg-postgresql"]


@pytest.fixture(params=STORES)
def data_dir(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """A data directory of a store kind whose catalog is SQLite (in it) or a fresh PostgreSQL database."""
    root = tmp_path / "data"
    root.mkdir()
    kind, catalog = request.param.split("-")
    for _ in _store_environment(request, monkeypatch, kind, catalog):
        yield root


@pytest.fixture(params=["local-sqlite", "iceberg-postgresql"])
def loop_data_dir(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """As ``data_dir``, one catalog per store kind: local readers open files only, never the
    catalog (one kind is enough there); Iceberg readers pin releases through PostgreSQL."""
    root = tmp_path / "data"
    root.mkdir()
    kind, catalog = request.param.split("-")
    for _ in _store_environment(request, monkeypatch, kind, catalog):
        yield root


def _child(*args: str, fault: str | None = None, **env: str) -> subprocess.Popen[str]:
    """The suite's publisher or reader in a child process (tests/store_helpers.py)."""
    return helper_process(*args, fault=fault, **env)


def _current(data_dir: Path) -> tuple[int, int] | str:
    return current_release(data_dir)


# --- atomicity ------------------------------------------------------------------------------------


@pytest.mark.parametrize("step", PUBLISH_STEPS)
def test_a_release_is_all_of_a_change_or_none_of_it_when_its_publisher_is_killed_at_any_step(
    data_dir: Path, step: str
) -> None:
    store = make_store(data_dir)
    publish_tag(store, 1, 100)
    killed = _child("publish", str(data_dir), "2", "200", fault=step)
    killed.communicate(timeout=120)
    assert killed.returncode == -signal.SIGKILL
    # Readers see one whole release: the old one, or (once the catalog committed) the new one.
    seen = _current(data_dir)
    assert seen in ((1, 100), (2, 200)), seen
    # The next publish goes through, points the path at it and leaves no stray file behind.
    store = make_store(data_dir)
    publish_tag(store, 3, 300)
    assert _current(data_dir) == (3, 300)
    numbers = [r.number for r in store.releases()]
    assert numbers == list(range(1, len(numbers) + 1))
    assert stored_files(data_dir, store) == referenced_files(store)
    assert not list((data_dir / "versions" / "public").glob("*.tmp*"))


@pytest.mark.timeout(1800)  # Iceberg readers pin each release through the catalog and S3: ~30 ms an open
def test_readers_opening_the_path_10000_times_while_publishers_run_and_are_killed_see_only_whole_releases(
    tmp_path: Path, loop_data_dir: Path
) -> None:
    data_dir = loop_data_dir
    store = make_store(data_dir, keep=5)
    publish_tag(store, 1, 1001)
    report, ready = tmp_path / "reader.json", tmp_path / "ready"
    reader = _child("read-loop", str(data_dir), "10000", str(report), str(ready))
    tag, kills = 2, 0
    try:
        while reader.poll() is None:
            # Every third publisher is killed mid-publish, at a different step each time.
            fault = PUBLISH_STEPS[(tag // 3) % len(PUBLISH_STEPS)] if tag % 3 == 0 else None
            publisher = _child(
                "publish-many", str(data_dir), str(tag), "1", fault=fault, SCDX_KEEP_VERSIONS="5"
            )
            publisher.communicate(timeout=300)
            kills += publisher.returncode == -signal.SIGKILL
            tag += 1
    finally:
        reader.communicate(timeout=600)
    result = json.loads(report.read_text())
    assert result["opens"] == 10000
    assert result["mixed"] == [] and result["errors"] == []
    assert len(result["tags"]) > 1 and kills >= 1


# --- rollback -------------------------------------------------------------------------------------


def test_rollback_restores_a_kept_release_exactly_as_a_new_one_even_when_the_current_file_is_damaged_or_gone(
    data_dir: Path,
) -> None:
    store = make_store(data_dir)
    for tag in (1, 2, 3):
        publish_tag(store, tag, 100 * tag)
    with store.connect(1) as con:
        first = checksums(con)
    for path in own_files(data_dir, store, 3):  # a megabyte of the current release's own files overwritten
        damage_file(data_dir, store, path, overwrite=1 << 20)
    restored = store.rollback(1)
    assert (restored.number, restored.restored, restored.kind) == (4, 1, "rollback")
    with store.connect() as con:
        assert checksums(con) == first
    for path in own_files(data_dir, store, 4):  # the current release's own files gone altogether
        remove(data_dir, store, path)
    again = store.rollback(2)
    assert again.number == 5 and _current(data_dir) == (2, 200)
    assert [r.number for r in store.releases()] == [1, 2, 3, 4, 5]  # history only grows


def test_rollback_to_a_release_that_predates_a_table_leaves_exactly_its_tables(data_dir: Path) -> None:
    store = make_store(data_dir)
    publish_tag(store, 1, 10)
    before = store.tables(1)

    def add_table(draft: object) -> None:
        from .store_helpers import T_SCHEMA

        con = draft.connection()  # type: ignore[attr-defined]
        path = draft.scratch() / "later.parquet"  # type: ignore[attr-defined]
        con.execute(f"COPY (SELECT 9::BIGINT AS tag, 1::BIGINT AS n) TO '{path}' (FORMAT parquet)")
        draft.replace_table("curated.later", [path], T_SCHEMA, "run-later")  # type: ignore[attr-defined]

    store.publish(add_table, "data", run_ids=["run-later"])  # type: ignore[arg-type]
    assert "curated.later" in store.tables()
    store.rollback(1)
    assert set(store.tables()) == set(before)
    with store.connect() as con:
        assert con.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = 'later'").fetchone() == (0,)


# --- damage ---------------------------------------------------------------------------------------


def test_a_damaged_file_is_never_built_upon_and_verify_names_it(data_dir: Path) -> None:
    store = make_store(data_dir)
    publish_tag(store, 1, 50)
    publish_tag(store, 2, 60)
    assert store.verify() == []
    (victim,) = files_written_by(store, 2, "curated.t")
    damage_file(data_dir, store, victim)  # one byte flipped, size unchanged
    with pytest.raises(DamagedRelease, match=rf"{victim}.*scdx publish rollback"):
        publish_tag(store, 3, 70)
    damage = store.verify()
    assert [(d.release, d.path) for d in damage] == [(2, victim)]
    assert _current(data_dir) == (2, 60)  # nothing published from the damaged release
    store.rollback(1)
    publish_tag(store, 4, 80)  # built on release 1's files, which are whole
    assert _current(data_dir) == (4, 80)


# --- retention ------------------------------------------------------------------------------------


def test_retention_keeps_the_newest_releases_and_only_the_files_they_reference(data_dir: Path) -> None:
    store = make_store(data_dir, keep=3)
    for tag in range(1, 7):
        publish_tag(store, tag, tag)
    kept = [r.number for r in store.releases() if r.kept]
    assert kept == [4, 5, 6]
    assert stored_releases(data_dir, store) == [4, 5, 6]
    assert stored_files(data_dir, store) == referenced_files(store)
    with pytest.raises(StoreError, match="release 2 of the public tier is no longer kept"):
        store.rollback(2)
    assert store.rollback(4).restored == 4


def test_a_change_that_changes_nothing_makes_no_release(data_dir: Path) -> None:
    store = make_store(data_dir)
    publish_tag(store, 1, 10)
    assert publish_tag(store, 1, 10) is None
    assert [r.number for r in store.releases()] == [1]
    assert stored_files(data_dir, store) == referenced_files(store)


# --- concurrency and signals ----------------------------------------------------------------------


def test_two_publishers_at_once_both_publish_whole_releases_one_after_the_other(data_dir: Path) -> None:
    make_store(data_dir)  # creates the catalog before the race
    first = _child("publish-many", str(data_dir), "100", "4", SCDX_KEEP_VERSIONS="20")
    second = _child("publish-many", str(data_dir), "200", "4", SCDX_KEEP_VERSIONS="20")
    for child in (first, second):
        _, err = child.communicate(timeout=600)
        assert child.returncode == 0, err[-2000:]
    store = make_store(data_dir, keep=20)
    releases = store.releases()
    assert [r.number for r in releases] == list(range(1, 9))
    tags = set()
    for release in releases:
        with store.connect(release.number) as con:
            found = whole(con)
        assert not isinstance(found, str), (release.number, found)
        tags.add(found[0])
    assert tags == {100, 101, 102, 103, 200, 201, 202, 203}


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM])
def test_a_publisher_stopped_by_a_signal_leaves_a_whole_release_and_the_next_publish_goes_through(
    data_dir: Path, signal_number: int
) -> None:
    store = make_store(data_dir)
    publish_tag(store, 1, 10)
    # The publisher stops itself at the step before its catalog commit: the signal arrives there.
    publisher = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, signal, sys\n"
            # Ctrl-C as a terminal delivers it: a job a shell started in the background (a CI
            # script run with `&`) inherits SIGINT ignored, and would publish through it.
            "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
            "import pipelines.common.faults as faults\n"
            f"faults.crash_point = lambda name: os.kill(os.getpid(), {int(signal_number)}) if name == 'publish:before_catalog' else None\n"
            "import pipelines.store.local as local\n"
            "local.crash_point = faults.crash_point\n"
            "from tests.store_helpers import main\n"
            f"main(['publish', {str(data_dir)!r}, '2', '20'])\n",
        ],
        cwd=PROJECT,
        env={**os.environ},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert publisher.returncode != 0
    assert _current(data_dir) == (1, 10)
    assert not list((data_dir / "versions" / "public").glob("*.tmp*"))
    store = make_store(data_dir)
    publish_tag(store, 3, 30)
    assert _current(data_dir) == (3, 30) and stored_files(data_dir, store) == referenced_files(store)
