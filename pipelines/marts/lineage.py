"""A published table's lineage: the runs and files its current release came from; for a mart,
those of the curated tables it was built from (through the marts it reads)."""

from __future__ import annotations

from typing import Any

from pipelines.marts import load_marts
from pipelines.store.layout import Layout
from pipelines.store.tiers import open_current

LINEAGE_COLUMNS = (
    "version",
    "table_name",
    "run_id",
    "kind",
    "path",
    "sha256",
    "url",
    "fetched_at",
    "run_started_at",
    "run_status",
)


def source_tables(table: str) -> list[str]:
    """The curated tables behind ``table`` (``curated.x``, ``marts.y``, or a bare mart or dataset
    name): itself, or for a mart every curated table it reads, directly or through other marts."""
    by_name = {m.name: m for m in load_marts()}
    schema = "marts" if table in by_name else "curated"
    name = table if "." in table else f"{schema}.{table}"
    if not name.startswith("marts."):
        return [name]
    pending, sources = [name.removeprefix("marts.")], []
    while pending:
        mart = by_name.get(pending.pop())
        if mart is None:
            continue
        sources += [f"curated.{d}" for d in mart.datasets]
        pending += list(mart.marts)
    return sorted(set(sources))


def table_lineage(layout: Layout, table: str, tier: str = "public") -> list[dict[str, Any]]:
    """The runs and files the current release of ``table`` (``curated.x``, ``marts.y`` or ``x``)
    came from; for a mart, those of the curated tables it was built from."""
    with open_current(layout, tier) as con:
        rows = con.execute(
            "SELECT l.version, l.table_name, l.run_id, l.kind, l.path, l.sha256, l.url, l.fetched_at, "
            "r.started_at, r.status FROM meta.lineage l LEFT JOIN meta.runs r USING (run_id) "
            "WHERE l.table_name IN (SELECT unnest(?::VARCHAR[])) ORDER BY l.table_name, l.run_id, l.kind DESC, l.path",
            [source_tables(table)],
        ).fetchall()
    return [dict(zip(LINEAGE_COLUMNS, row, strict=True)) for row in rows]
