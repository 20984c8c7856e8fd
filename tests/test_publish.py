"""Publishing swaps whole versions in atomically; readers are never blocked nor see half a refresh."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from datetime import date
from pathlib import Path

import pytest

from pipelines.contracts import Contract, Registry
from pipelines.layout import Layout
from pipelines.publish import open_public, publish_lock, rollback
from pipelines.refresh import refresh_dataset
from pipelines.replay.server import ReplayServer
from pipelines.settings import Settings
from pipelines.versions import VersionError, current_version, version_files
from pipelines.window import Window

WINDOWS = [
    Window(date(2024, 1, 1), date(2024, 6, 1)),
    Window(date(2024, 7, 1), date(2025, 6, 1)),
    Window(date(2025, 7, 1), date(2026, 3, 1)),
]


def test_public_path_is_a_symlink_to_the_current_immutable_version(
    census: Contract, registry: Registry, settings: Settings, layout: Layout, replay: ReplayServer
) -> None:
    refresh_dataset(census, registry, settings, replay.url, window=WINDOWS[0])
    refresh_dataset(census, registry, settings, replay.url, window=WINDOWS[1])
    assert layout.public_db.is_symlink()
    assert os.readlink(layout.public_db) == "versions/public/scdx-v000002.duckdb"
    assert current_version(layout.store("public")) == 2 and sorted(version_files(layout.store("public"))) == [
        1,
        2,
    ]
    with open_public(layout) as con:
        publishes = con.execute(
            "SELECT version, kind, previous_version, table_rows FROM meta.publishes ORDER BY 1"
        ).fetchall()
    assert [(v, k, p) for v, k, p, _ in publishes] == [(1, "data", None), (2, "data", 1)]
    assert (
        json.loads(publishes[1][3])["curated.census_trade_imports"]
        > json.loads(publishes[0][3])["curated.census_trade_imports"]
    )


def test_old_versions_beyond_the_retention_are_removed(
    census: Contract, registry: Registry, settings: Settings, layout: Layout, replay: ReplayServer
) -> None:
    keep_two = settings.with_overrides(keep_versions=2)
    for window in WINDOWS:
        refresh_dataset(census, registry, keep_two, replay.url, window=window)
    assert sorted(version_files(layout.store("public"))) == [2, 3]
    assert current_version(layout.store("public")) == 3


def test_leftovers_of_a_crashed_publish_are_cleaned_by_the_next_one(
    census: Contract, registry: Registry, settings: Settings, layout: Layout, replay: ReplayServer
) -> None:
    refresh_dataset(census, registry, settings, replay.url, window=WINDOWS[0])
    leftover = layout.public_versions_dir / "scdx-v000002.duckdb.tmpdeadbeef"
    leftover.write_bytes(b"half a database")
    stray_link = layout.root / ".scdx.duckdb.0123.link"
    stray_link.symlink_to("versions/public/nowhere")
    refresh_dataset(census, registry, settings, replay.url, window=WINDOWS[1])
    assert not leftover.exists() and not stray_link.is_symlink()
    assert current_version(layout.store("public")) == 2


def test_second_publisher_waits_for_the_lock_and_fails_cleanly_on_timeout(layout: Layout) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import time, sys
                from pathlib import Path
                from pipelines.layout import Layout
                from pipelines.publish import publish_lock
                with publish_lock(Layout(Path({str(layout.root)!r}))):
                    print("locked", flush=True)
                    time.sleep(30)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(VersionError, match="another publish holds"), publish_lock(layout, timeout_s=0.5):
            pass
    finally:
        holder.kill()
        holder.wait()
    with publish_lock(layout, timeout_s=5):
        pass


READER = """
import json, sys, time
import duckdb
path, stop_file, out = sys.argv[1], sys.argv[2], sys.argv[3]
seen, errors, mismatches = set(), [], []
deadline = time.monotonic() + 300
import os
while not os.path.exists(stop_file) and time.monotonic() < deadline:
    try:
        con = duckdb.connect(path, read_only=True)
        try:
            version, rows = con.execute(
                "SELECT version, table_rows FROM meta.publishes ORDER BY version DESC LIMIT 1").fetchone()
            expected = json.loads(rows)["curated.census_trade_imports"]
            actual = con.execute("SELECT count(*) FROM curated.census_trade_imports").fetchone()[0]
            seen.add(version)
            if actual != expected:
                mismatches.append([version, expected, actual])
        finally:
            con.close()
        if not os.path.exists(out + ".ready"):
            open(out + ".ready", "w").close()
    except Exception as exc:
        errors.append(repr(exc))
json.dump({"seen": sorted(seen), "errors": errors, "mismatches": mismatches}, open(out, "w"))
"""


def test_a_reader_process_querying_through_refreshes_and_a_rollback_sees_only_complete_versions(
    census: Contract,
    registry: Registry,
    settings: Settings,
    layout: Layout,
    replay: ReplayServer,
    tmp_path: Path,
) -> None:
    refresh_dataset(census, registry, settings, replay.url, window=WINDOWS[0])
    stop, out = tmp_path / "stop", tmp_path / "reader.json"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(layout.public_db), str(stop), str(out)])
    try:
        ready = Path(str(out) + ".ready")
        deadline = time.monotonic() + 60
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        for window in WINDOWS[1:] + WINDOWS[:1]:
            refresh_dataset(census, registry, settings, replay.url, window=window)
        rollback(layout)  # restores version 3 as version 5
        time.sleep(0.5)
    finally:
        stop.touch()
        reader.wait(timeout=60)
    result = json.loads(out.read_text())
    assert result["errors"] == []
    assert result["mismatches"] == []
    assert result["seen"][0] == 1 and result["seen"][-1] == 5
    assert len(result["seen"]) >= 2
