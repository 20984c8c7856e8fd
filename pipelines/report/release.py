"""Which release a chart comes from: the current release, the release that last changed each table
it reads, and the runs (with their recordings' provenance) behind the datasets under it.

Everything here is read from the release itself (``meta.publishes``, ``meta.runs``,
``meta.lineage``), so the report says exactly what an analyst opening the same file would see.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from pipelines.contracts import Provenance, Registry, from_recordings, provenance_of
from pipelines.marts import load_marts


@dataclass(frozen=True)
class Release:
    """The release the report was made from."""

    version: int
    published_at: datetime


@dataclass(frozen=True)
class TableRelease:
    """The release that last changed a table, and the runs that release records."""

    table: str
    version: int
    published_at: datetime
    run_ids: tuple[str, ...]


@dataclass(frozen=True)
class DatasetRuns:
    """The runs whose rows a dataset's table holds in the release, and how they were fetched."""

    dataset: str
    run_ids: tuple[str, ...]
    last_finished_at: datetime | None
    provenance: Provenance


def current_release(con: duckdb.DuckDBPyConnection) -> Release:
    """The release this connection reads (the newest one its meta.publishes records)."""
    row = con.execute(
        "SELECT version, published_at FROM meta.publishes ORDER BY version DESC LIMIT 1"
    ).fetchone()
    if row is None:
        raise LookupError("the release records no publish")  # a release always records itself
    return Release(int(row[0]), row[1])


def table_releases(con: duckdb.DuckDBPyConnection, tables: tuple[str, ...]) -> list[TableRelease]:
    """For each table, the latest release that changed it."""
    out = []
    for table in tables:
        row = con.execute(
            "SELECT version, published_at, run_ids FROM meta.publishes WHERE list_contains(changed, ?) "
            "ORDER BY version DESC LIMIT 1",
            [table],
        ).fetchone()
        if row is not None:
            out.append(TableRelease(table, int(row[0]), row[1], tuple(row[2] or ())))
    return out


def datasets_behind(tables: tuple[str, ...]) -> list[str]:
    """The curated datasets a set of tables is built from (marts through the marts they read);
    reference code lists are not datasets."""
    marts = {m.name: m for m in load_marts()}
    found: set[str] = set()
    pending = list(tables)
    while pending:
        schema, _, name = pending.pop().partition(".")
        if schema == "marts" and name in marts:
            pending.extend(f"curated.{d}" for d in marts[name].datasets)
            pending.extend(f"marts.{m}" for m in marts[name].marts)
        elif schema == "curated" and not name.startswith("ref_"):
            found.add(name)
    return sorted(found)


def dataset_runs(
    con: duckdb.DuckDBPyConnection, dataset: str, version: int, recordings_dir: Path, registry: Registry
) -> DatasetRuns:
    """The runs behind a dataset's table in release ``version`` (from its lineage) and whether
    their bytes came from the bundled recordings (the replay server, or a recorded file)."""
    rows = con.execute(
        "SELECT l.run_id, max(r.finished_at), list(DISTINCT l.url) FILTER (WHERE l.url IS NOT NULL) "
        "FROM meta.lineage l LEFT JOIN meta.runs r USING (run_id) "
        "WHERE l.table_name = ? AND l.version = ? GROUP BY l.run_id ORDER BY l.run_id",
        [f"curated.{dataset}", version],
    ).fetchall()
    urls = [url for row in rows for url in (row[2] or [])]
    finished = [row[1] for row in rows if row[1] is not None]
    return DatasetRuns(
        dataset=dataset,
        run_ids=tuple(row[0] for row in rows),
        last_finished_at=max(finished) if finished else None,
        provenance=provenance_of(registry.get(dataset), from_recordings(urls, recordings_dir)),
    )
