"""Releases are listed, restorable and traceable; restricted data stays in its own tier."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest
import yaml

from pipelines.common.settings import Settings
from pipelines.contracts import Contract, Registry, load_registry
from pipelines.marts.lineage import table_lineage
from pipelines.orchestration.refresh import refresh_dataset
from pipelines.replay.server import ReplayServer
from pipelines.sources.window import Window
from pipelines.store import StoreError
from pipelines.store.history import list_publishes, rollback
from pipelines.store.layout import Layout
from pipelines.store.tiers import open_current, open_public

from .conftest import SCHEMAS, TEST_API_KEY

SCDX = str(Path(sys.executable).parent / "scdx")
Q1_2026 = Window(date(2026, 1, 1), date(2026, 3, 1))
SIX_MONTHS = Window(date(2025, 10, 1), date(2026, 3, 1))


def _count(layout: Layout) -> int:
    with open_public(layout) as con:
        (count,) = con.execute("SELECT count(*) FROM curated.census_trade_imports").fetchone() or (0,)
    return int(count)


def test_rollback_restores_the_previous_release_as_a_new_one_keeping_history(
    census: Contract, registry: Registry, settings: Settings, layout: Layout, replay: ReplayServer
) -> None:
    refresh_dataset(census, registry, settings, replay.url, window=Q1_2026)
    first = _count(layout)
    refresh_dataset(census, registry, settings, replay.url, window=SIX_MONTHS)
    assert _count(layout) > first
    new, restored = rollback(layout)
    assert (new, restored) == (3, 1)
    assert os.readlink(layout.public_db).endswith("scdx-v000003.duckdb") and _count(layout) == first
    with open_public(layout) as con:
        assert con.execute("SELECT count(*) FROM meta.runs WHERE status = 'published'").fetchone() == (2,)
        history = con.execute(
            "SELECT version, kind, previous_version, restored_version FROM meta.publishes ORDER BY 1"
        ).fetchall()
    assert history == [(1, "data", None, None), (2, "data", 1, None), (3, "rollback", 2, 1)]
    listed = list_publishes(layout)
    assert [(r.number, r.kind, r.kept) for r in listed] == [
        (3, "rollback", True),
        (2, "data", True),
        (1, "data", True),
    ]
    assert listed[0].table_rows["curated.census_trade_imports"] == first


def test_rolling_back_to_a_release_no_longer_kept_fails_and_changes_nothing(
    census: Contract, registry: Registry, settings: Settings, layout: Layout, replay: ReplayServer
) -> None:
    keep_two = settings.with_overrides(keep_versions=2)
    for window in (Q1_2026, SIX_MONTHS):
        refresh_dataset(census, registry, keep_two, replay.url, window=window)
    rollback(layout, to_version=1, keep_versions=2)  # release 3
    before = _count(layout)
    with pytest.raises(StoreError, match=r"release 1 of the public tier is no longer kept \(kept: 2, 3\)"):
        rollback(layout, to_version=1, keep_versions=2)
    assert os.readlink(layout.public_db).endswith("scdx-v000003.duckdb") and _count(layout) == before


def test_lineage_names_the_runs_raw_files_and_staged_parquet_behind_the_current_table(
    census: Contract,
    registry: Registry,
    settings: Settings,
    layout: Layout,
    replay: ReplayServer,
    api_key: str,
) -> None:
    older = refresh_dataset(
        census, registry, settings, replay.url, window=Window(date(2025, 10, 1), date(2025, 12, 1))
    )
    newer = refresh_dataset(census, registry, settings, replay.url, window=Q1_2026)
    rows = table_lineage(layout, "curated.census_trade_imports")
    assert {r["run_id"] for r in rows} == {
        older.run_id,
        newer.run_id,
    }  # Oct-Dec from one, Jan-Mar from the other
    raw = [r for r in rows if r["kind"] == "raw"]
    assert len(raw) == 3 + 3
    for r in raw:
        assert (
            r["url"].startswith(replay.url + "/data/timeseries/intltrade/imports/hs?")
            and "key=REDACTED" in r["url"]
        )
        assert hashlib.sha256((layout.root / r["path"]).read_bytes()).hexdigest() == r["sha256"]
    staged = [r for r in rows if r["kind"] == "staged"]
    assert {Path(r["path"]).parts[:3] for r in staged} == {
        ("staged", "census_trade_imports", older.run_id),
        ("staged", "census_trade_imports", newer.run_id),
    }
    # The marts trace back through the curated tables they read.
    assert {r["run_id"] for r in table_lineage(layout, "marts.import_concentration")} == {
        older.run_id,
        newer.run_id,
    }
    with open_public(layout) as con:
        assert TEST_API_KEY not in str(con.execute("SELECT * FROM meta.run_files").fetchall())
        raw_files = con.execute(
            "SELECT path, bytes, fetched_at FROM meta.run_files WHERE kind = 'raw' AND run_id = ?",
            [older.run_id],
        ).fetchall()
    # Every response of the run, each with its size on disk and the time it was fetched.
    assert len(raw_files) == 3
    for path, size, fetched_at in raw_files:
        assert (layout.root / path).stat().st_size == size
        assert datetime.fromisoformat(fetched_at).tzinfo is not None


def test_publish_list_rollback_and_lineage_commands(
    census: Contract, registry: Registry, settings: Settings, layout: Layout, replay: ReplayServer
) -> None:
    refresh_dataset(census, registry, settings, replay.url, window=Q1_2026)
    refresh_dataset(census, registry, settings, replay.url, window=SIX_MONTHS)
    env = {**os.environ, "SCDX_DATA_DIR": str(layout.root), "COLUMNS": "250"}
    listed = subprocess.run([SCDX, "publish", "list"], env=env, capture_output=True, text=True)
    lines = listed.stdout.splitlines()
    assert listed.returncode == 0 and len(lines) == 2  # one line per release
    assert lines[0].split()[0] == "2" and "current" in lines[0] and "curated.census_trade_imports" in lines[0]
    rolled = subprocess.run([SCDX, "publish", "rollback"], env=env, capture_output=True, text=True)
    assert rolled.returncode == 0, rolled.stderr
    assert "release 3 is current; it restores the tables and marts of release 1" in rolled.stdout
    traced = subprocess.run(
        [SCDX, "lineage", "curated.census_trade_imports"], env=env, capture_output=True, text=True
    )
    assert traced.returncode == 0 and "/data/timeseries/intltrade/imports/hs?" in traced.stdout
    missing = subprocess.run([SCDX, "publish", "rollback", "99"], env=env, capture_output=True, text=True)
    assert missing.returncode == 1 and "release 99 of the public tier does not exist" in missing.stderr


@pytest.fixture
def with_restricted(tmp_path: Path) -> Registry:
    """The project's schemas plus a restricted copy of the Census contract under its own name."""
    schemas = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, schemas)
    raw = yaml.safe_load((schemas / "census_trade_imports.yaml").read_text())
    raw.update(
        dataset="census_trade_sensitive", classification="restricted", title="Sensitive copy of imports"
    )
    (schemas / "census_trade_sensitive.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_registry(schemas)


def test_a_restricted_dataset_publishes_only_to_the_owner_only_restricted_database(
    with_restricted: Registry, settings: Settings, layout: Layout, replay: ReplayServer
) -> None:
    registry = with_restricted
    public_run = refresh_dataset(
        registry.get("census_trade_imports"), registry, settings, replay.url, window=Q1_2026
    )
    secret_run = refresh_dataset(
        registry.get("census_trade_sensitive"), registry, settings, replay.url, window=Q1_2026
    )
    assert secret_run.status == "published" and secret_run.rows_published == public_run.rows_published

    with open_current(layout, "restricted") as con:
        assert con.execute("SELECT count(*) FROM curated.census_trade_sensitive").fetchone() == (208,)
        assert (
            con.execute(
                "SELECT count(*) FROM meta.lineage WHERE table_name = 'curated.census_trade_sensitive'"
            ).fetchone()[0]
            > 0
        )  # type: ignore[index]
    public_files = [
        *layout.public_versions_dir.iterdir(),
        *(layout.root / "tables" / "public").rglob("*.parquet"),
    ]
    for token in ("census_trade_sensitive", secret_run.run_id, "Sensitive copy"):
        for version_file in public_files:
            assert token.encode() not in version_file.read_bytes(), (token, version_file)
    with duckdb.connect(str(layout.public_db), read_only=True) as con:
        names = {n for (n,) in con.execute("SELECT view_name FROM duckdb_views()").fetchall()}
        assert "census_trade_sensitive" not in names
        text = str(con.execute("SELECT * FROM meta.runs").fetchall()) + str(
            con.execute("SELECT * FROM meta.lineage").fetchall()
        )
        text += str(con.execute("SELECT comment FROM duckdb_columns()").fetchall())
        assert "census_trade_sensitive" not in text and secret_run.run_id not in text

    restricted = layout.store("restricted")
    assert stat.S_IMODE(restricted.versions_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(restricted.link.parent.stat().st_mode) == 0o700
    tables = layout.root / "restricted" / "tables" / "restricted"
    assert stat.S_IMODE(tables.stat().st_mode) == 0o700
    for version_file in [*restricted.versions_dir.iterdir(), *tables.rglob("*.parquet")]:
        assert stat.S_IMODE(version_file.stat().st_mode) == 0o400
    # Its run files too: raw responses, manifests, staged Parquet, reports.
    for area in ("raw", "staged", "reports"):
        run_dir = layout.root / area / "census_trade_sensitive" / secret_run.run_id
        assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700, area
        for path in run_dir.rglob("*"):
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
