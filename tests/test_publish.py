"""Releases as the refresh makes them (issue 20): only changes make releases, a dataset and the marts
built from it are one release, rollback works from the catalog alone, damage is never built upon,
every run ends in a terminal status, and a publish costs its batch, not the database."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest

from devtools.release_checks import checksums
from pipelines.common.faults import FAULT_ENV
from pipelines.common.settings import Settings
from pipelines.contracts import Contract, Registry
from pipelines.marts import load_marts
from pipelines.orchestration.guards import start_run
from pipelines.orchestration.refresh import refresh_dataset
from pipelines.replay.server import Fault, ReplayServer
from pipelines.sources.http import FetchError
from pipelines.sources.window import Window
from pipelines.stages.publish import PublishError
from pipelines.stages.quarantine import QuarantinedError
from pipelines.store import DamagedRelease, StoreError
from pipelines.store.layout import Layout
from pipelines.store.locks import file_lock
from pipelines.store.tiers import open_public, open_store

from .conftest import catalog_runs

SCDX = str(Path(sys.executable).parent / "scdx")
Q1_2026 = Window(date(2026, 1, 1), date(2026, 3, 1))
SIX_MONTHS = Window(date(2025, 10, 1), date(2026, 3, 1))


def _env(layout: Layout) -> dict[str, str]:
    return {**os.environ, "SCDX_DATA_DIR": str(layout.root), "COLUMNS": "250"}


def test_nightly_refreshes_of_unchanged_upstream_and_runs_that_publish_nothing_make_no_release(
    census: Contract, registry: Registry, settings: Settings, layout: Layout, recordings_copy: Path
) -> None:
    with ReplayServer(recordings_copy) as replay:
        refresh_dataset(census, registry, settings, replay.url, window=Q1_2026)
        for _night in range(3):
            assert (
                refresh_dataset(census, registry, settings, replay.url, window=Q1_2026).status == "unchanged"
            )
        no_data = refresh_dataset(
            census, registry, settings, replay.url, window=Window(date(2026, 9, 1), date(2026, 10, 1))
        )
        assert no_data.status == "no_data"
        replay.faults.add(Fault(503, census.source.path, times=10))
        failed = start_run(census)
        with pytest.raises(FetchError):
            refresh_dataset(census, registry, settings, replay.url, window=Q1_2026, run=failed)
        assert failed.status == "failed"
    month = recordings_copy / "census_intltrade" / "imports_hs" / "2026-02.json"
    rows = json.loads(month.read_bytes())
    rows[1][4] = "-5"  # a negative value: the batch is quarantined
    month.write_text(json.dumps(rows))
    with ReplayServer(recordings_copy) as replay, pytest.raises(QuarantinedError):
        refresh_dataset(census, registry, settings, replay.url, window=Q1_2026)
    store = open_store(layout)
    assert [r.number for r in store.releases()] == [1]
    statuses = [r["status"] for r in catalog_runs(layout)]
    assert statuses == [
        "published",
        "unchanged",
        "unchanged",
        "unchanged",
        "no_data",
        "failed",
        "quarantined",
    ]


def test_a_dataset_and_the_marts_built_from_it_are_one_release(
    census: Contract, registry: Registry, settings: Settings, layout: Layout, replay: ReplayServer
) -> None:
    refresh_dataset(census, registry, settings, replay.url, window=Q1_2026)
    run = refresh_dataset(census, registry, settings, replay.url, window=SIX_MONTHS)
    (release,) = [r for r in open_store(layout).releases() if run.run_id in r.run_ids]
    assert {"curated.census_trade_imports", "marts.import_concentration"} <= set(release.changed)
    # The mart of the release is what its own curated table gives, computed again from scratch
    # (sums in another order may differ in the last bits of a float: compared approximately).
    (mart,) = [m for m in load_marts() if m.name == "import_concentration"]
    order = "ORDER BY period_grain, period, hs_level, hs_code"
    with open_public(layout) as con:
        published = con.execute(f"SELECT * FROM marts.import_concentration {order}").fetchall()
        scratch = duckdb.connect()
        scratch.execute(f"ATTACH '{layout.public_db}' AS release (READ_ONLY)")
        scratch.execute("CREATE SCHEMA curated; CREATE SCHEMA marts")
        for (name,) in con.execute(
            "SELECT view_name FROM duckdb_views() WHERE schema_name = 'curated' AND NOT internal"
        ).fetchall():
            scratch.execute(f"CREATE TABLE curated.{name} AS SELECT * FROM release.curated.{name}")
    scratch.execute(mart.sql)
    rebuilt = scratch.execute(f"SELECT * FROM marts.import_concentration {order}").fetchall()
    assert len(rebuilt) == len(published) > 0
    for mine, theirs in zip(rebuilt, published, strict=True):
        for a, b in zip(mine, theirs, strict=True):
            assert a == (pytest.approx(b, rel=1e-9) if isinstance(b, float) else b)


def test_rollback_works_from_the_catalog_alone_to_a_release_before_a_table_with_the_current_file_damaged(
    census: Contract, registry: Registry, settings: Settings, layout: Layout, replay: ReplayServer
) -> None:
    refresh_dataset(census, registry, settings, replay.url, window=Q1_2026)
    with open_public(layout) as con:
        first = checksums(con)
    usgs = registry.get("usgs_mineral_salient")
    refresh_dataset(usgs, registry, settings, replay.url, window=Q1_2026)
    current = layout.store("public").version_path(2)
    current.chmod(0o644)
    with current.open("r+b") as handle:
        handle.write(os.urandom(1 << 20))  # a megabyte of the current release's file overwritten
    listed = subprocess.run([SCDX, "publish", "list"], env=_env(layout), capture_output=True, text=True)
    assert listed.returncode == 0 and "2  " in listed.stdout and "usgs_mineral_salient" in listed.stdout
    rolled = subprocess.run(
        [SCDX, "publish", "rollback", "1"], env=_env(layout), capture_output=True, text=True
    )
    assert rolled.returncode == 0, rolled.stderr
    assert "release 3 is current; it restores the tables and marts of release 1" in rolled.stdout
    with open_public(layout) as con:
        assert checksums(con) == first  # usgs_mineral_salient (younger than release 1) is gone too
    assert [(r.number, r.kind, r.restored) for r in open_store(layout).releases()][-1] == (3, "rollback", 1)


def test_a_damaged_table_file_is_never_built_upon_and_verify_names_it(
    census: Contract, registry: Registry, settings: Settings, layout: Layout, replay: ReplayServer
) -> None:
    refresh_dataset(census, registry, settings, replay.url, window=Q1_2026)
    (victim,) = sorted((layout.root / "tables" / "public" / "curated.census_trade_imports").glob("*.parquet"))
    victim.chmod(0o644)
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF  # a flipped byte: same size
    victim.write_bytes(bytes(data))
    bts = registry.get("bts_border_crossings")
    with pytest.raises(
        PublishError, match=r"tables/public/curated\.census_trade_imports/.*scdx publish rollback"
    ):
        refresh_dataset(bts, registry, settings, replay.url)
    verified = subprocess.run([SCDX, "publish", "verify"], env=_env(layout), capture_output=True, text=True)
    assert verified.returncode == 1
    assert victim.name in verified.stderr and "checksum differs" in verified.stderr
    with pytest.raises(DamagedRelease):
        open_store(layout).publish(lambda draft: None, "data")


def test_a_killed_refresh_is_abandoned_at_the_next_start_and_signals_end_runs_as_interrupted(
    census: Contract, registry: Registry, settings: Settings, layout: Layout, replay: ReplayServer
) -> None:
    args = [
        SCDX,
        "refresh",
        census.dataset,
        "--replay-url",
        replay.url,
        "--start",
        "2026-01",
        "--end",
        "2026-03",
    ]
    killed = subprocess.run(
        args, env={**_env(layout), FAULT_ENV: "after_land"}, capture_output=True, text=True
    )
    assert killed.returncode == -signal.SIGKILL
    assert [r["status"] for r in catalog_runs(layout)] == ["running"]
    refresh_dataset(census, registry, settings, replay.url, window=Q1_2026)
    assert [r["status"] for r in catalog_runs(layout)] == ["abandoned", "published"]
    for signal_number, exit_code in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
        # The replay stalls the first month: the refresh is mid-download when the signal comes.
        replay.faults.add(Fault(path=census.source.path, mode="stall", delay_s=10))
        seen = len(replay.requests)
        child = subprocess.Popen(
            [*args[:-4], "--start", "2025-10", "--end", "2026-03"],
            env=_env(layout),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        replay.wait_for_requests(seen + 1, timeout_s=60)
        child.send_signal(signal_number)
        _, err = child.communicate(timeout=60)
        assert child.returncode == exit_code, err[-2000:]
        name = signal.Signals(signal_number).name
        assert f"scdx: interrupted by {name}; the run in progress is recorded as interrupted" in err
        assert catalog_runs(layout)[-1]["status"] == "interrupted"
        replay.faults.clear()
    assert [r.number for r in open_store(layout).releases()] == [1]


def test_publishing_a_month_writes_that_month_and_shares_every_other_file(
    census: Contract, registry: Registry, settings: Settings, layout: Layout, recordings_copy: Path
) -> None:
    with ReplayServer(recordings_copy) as replay:
        refresh_dataset(
            census, registry, settings, replay.url, window=Window(date(2024, 1, 1), date(2026, 3, 1))
        )
    before = {p: (p.stat().st_ino, p.stat().st_size) for p in (layout.root / "tables").rglob("*.parquet")}
    table_bytes = sum(size for p, (_, size) in before.items() if "curated.census_trade_imports" in str(p))
    month = recordings_copy / "census_intltrade" / "imports_hs" / "2026-03.json"
    rows = json.loads(month.read_bytes())
    rows[1][4] = str(int(rows[1][4]) + 1)  # March revised
    month.write_text(json.dumps(rows))
    with ReplayServer(recordings_copy) as replay:
        run = refresh_dataset(
            census, registry, settings, replay.url, window=Window(date(2026, 3, 1), date(2026, 3, 1))
        )
    assert run.status == "published" and run.rows_published < 100
    after = {p: (p.stat().st_ino, p.stat().st_size) for p in (layout.root / "tables").rglob("*.parquet")}
    # Every file of the earlier release is still there, the same file (never copied or rewritten).
    assert all(after.get(p) == identity for p, identity in before.items())
    added = [p for p in after if p not in before and "curated.census_trade_imports" in str(p)]
    assert len(added) == 1 and after[added[0]][1] < table_bytes / 5
    with open_public(layout) as con:
        assert con.execute("SELECT count(*) FROM curated.census_trade_imports").fetchone() == (1924,)


def test_leftovers_of_a_crashed_publish_are_cleaned_by_the_next_one(
    census: Contract, registry: Registry, settings: Settings, layout: Layout, replay: ReplayServer
) -> None:
    refresh_dataset(census, registry, settings, replay.url, window=Q1_2026)
    leftover = layout.public_versions_dir / "scdx-v000002.duckdb.tmpdeadbeef"
    leftover.write_bytes(b"half a database")
    stray_link = layout.root / ".scdx.duckdb.0123.link"
    stray_link.symlink_to("versions/public/nowhere")
    orphan = layout.root / "tables" / "public" / "curated.census_trade_imports" / "000002-deadbeef.parquet"
    orphan.write_bytes(b"PAR1 no release ever recorded this")
    refresh_dataset(census, registry, settings, replay.url, window=SIX_MONTHS)
    assert not leftover.exists() and not stray_link.is_symlink() and not orphan.exists()
    assert os.readlink(layout.public_db) == "versions/public/scdx-v000002.duckdb"


def test_a_second_publisher_waits_for_the_tier_lock_and_fails_cleanly_on_timeout(
    layout: Layout, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pipelines.store.local as local

    monkeypatch.setattr(local, "LOCK_TIMEOUT_S", 0.5)
    lock = layout.store("public").lock
    lock.parent.mkdir(parents=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom pathlib import Path\nfrom pipelines.store.locks import file_lock\n"
            f"with file_lock(Path({str(lock)!r}), 5, 'test'):\n    print('locked', flush=True)\n    sys.stdin.read()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(StoreError, match="another publish holds"):
            open_store(layout).publish(lambda draft: None, "data")
    finally:
        holder.communicate("", timeout=30)
    with file_lock(lock, 5, "test"):
        pass
