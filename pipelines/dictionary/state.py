"""What the current public release says about each dataset and mart, for the catalog's pages.

Everything is read from the release itself (its views, ``meta.*`` and comments), so a page says
what an analyst opening ``scdx.duckdb`` sees. A dataset's "last publish" is the last run whose
rows its table holds (``meta.partition_runs``), not the latest release, which a marts rebuild or
another dataset's publish may have made.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from pipelines.common.sql import quote_identifier
from pipelines.contracts import Contract, Provenance, from_recordings, provenance_of
from pipelines.store.layout import Layout

# Shared types whose values are points in time: a dataset's date coverage is the span of the first
# field of one of them (its incremental cursor field when it has one).
TIME_TYPES = ("month", "quarter_start", "date", "year")
SAMPLE_ROWS = 5
RUN_COLUMNS = (
    "run_id",
    "status",
    "started_at",
    "rows_landed",
    "rows_published",
    "rows_quarantined",
    "validation",
    "error",
)


@dataclass
class DatasetState:
    """What the public release says about one dataset (all None or empty when it is not in it)."""

    rows: int | None = None
    coverage_field: str | None = None
    coverage: tuple[str, str] | None = None
    last_run: str | None = None
    last_version: int | None = None
    last_published_at: str | None = None
    sample_columns: list[str] = field(default_factory=list)
    sample_rows: list[list[str]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    provenance: Provenance | None = None


def coverage_field(contract: Contract) -> str | None:
    """The field whose span is the dataset's date coverage: the incremental cursor field, else the
    first field of a time type (None when the contract has none)."""
    if contract.source.incremental:
        return contract.source.incremental.field
    return next((f.name for f in contract.fields if f.type in TIME_TYPES), None)


def _text(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return "" if value is None else str(value)


def _last_data_publish(con: duckdb.DuckDBPyConnection, table: str, state: DatasetState) -> None:
    """The latest run whose rows the table holds, and the release it first published them in."""
    row = con.execute(
        "SELECT r.run_id, r.publish_version, p.published_at FROM meta.runs r "
        "LEFT JOIN meta.publishes p ON p.version = r.publish_version "
        "WHERE r.run_id IN (SELECT run_id FROM meta.partition_runs WHERE table_name = ?) "
        "ORDER BY r.finished_at DESC, r.run_id DESC LIMIT 1",
        [table],
    ).fetchone()
    if row is not None:
        state.last_run, state.last_version, state.last_published_at = row[0], row[1], _text(row[2])


def _sample(con: duckdb.DuckDBPyConnection, contract: Contract, state: DatasetState) -> None:
    """Coverage and the first rows in key order."""
    view = f"curated.{quote_identifier(contract.dataset)}"
    name = coverage_field(contract)
    if name is not None:
        low, high = con.execute(
            f"SELECT min({quote_identifier(name)}), max({quote_identifier(name)}) FROM {view}"
        ).fetchone() or (None, None)
        state.coverage_field = name
        state.coverage = (_text(low), _text(high)) if low is not None else None
    order = ", ".join(quote_identifier(k) for k in contract.primary_key)
    result = con.execute(f"SELECT * FROM {view} ORDER BY {order} LIMIT {SAMPLE_ROWS}")
    state.sample_columns = [d[0] for d in result.description or []]
    state.sample_rows = [[_text(v) for v in row] for row in result.fetchall()]


def dataset_state(
    con: duckdb.DuckDBPyConnection, contract: Contract, views: set[str], recordings_dir: Path | None
) -> DatasetState:
    """One dataset's state in the release ``con`` reads (``views``: its curated views)."""
    state = DatasetState()
    table = f"curated.{contract.dataset}"
    state.runs = [
        dict(zip(RUN_COLUMNS, row, strict=True))
        for row in con.execute(
            f"SELECT {', '.join(RUN_COLUMNS)} FROM meta.runs WHERE dataset = ? ORDER BY started_at DESC LIMIT 10",
            [contract.dataset],
        ).fetchall()
    ]
    if contract.dataset not in views:
        return state
    (count,) = con.execute(
        f"SELECT count(*) FROM curated.{quote_identifier(contract.dataset)}"
    ).fetchone() or (0,)
    state.rows = int(count)
    _last_data_publish(con, table, state)
    _sample(con, contract, state)
    urls = [
        url
        for (url,) in con.execute(
            "SELECT DISTINCT url FROM meta.lineage WHERE table_name = ? AND url IS NOT NULL "
            "AND version = (SELECT max(version) FROM meta.publishes)",
            [table],
        ).fetchall()
    ]
    replayed = recordings_dir is not None and from_recordings(urls, recordings_dir)
    state.provenance = provenance_of(contract, replayed)
    return state


def data_docs_page(layout: Layout, dataset: str, out_dir: Path) -> tuple[str, str] | None:
    """The latest GX Data Docs validation page of a dataset, as (link relative to ``out_dir``, run
    id); None when GX never validated it here. Pages are
    ``gx/data_docs/validations/<dataset>/<suite version>/<run id>/<time>/<batch>.html``."""
    root = layout.data_docs_dir / "validations" / dataset
    pages = (
        sorted(root.rglob("*.html"), key=lambda p: (p.parent.parent.name, p.parent.name))
        if root.is_dir()
        else []
    )
    if not pages:
        return None
    latest = pages[-1]
    return relative_link(latest, out_dir), latest.parent.parent.name


def relative_link(target: Path, out_dir: Path) -> str:
    """A link from a page in ``out_dir`` to ``target``, relative so the catalog opens offline."""
    return Path(os.path.relpath(target.resolve(), out_dir.resolve())).as_posix()
