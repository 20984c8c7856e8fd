"""The catalog's view of the risk marts: each mart's method, inputs, columns and checks.

The definition (title, method, inputs, column comments, checks) is the mart's SQL file header
(``pipelines/marts/*.sql``); rows, the method as published (the table comment) and the columns
as built come from the current release when the mart is in it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from pipelines.common.sql import quote_identifier
from pipelines.marts import Mart
from pipelines.marts.lineage import source_tables
from pipelines.store.tiers import release_tables


@dataclass
class MartColumn:
    name: str
    type: str
    comment: str


@dataclass
class MartState:
    """A mart's page: its definition, and what the release holds of it."""

    mart: Mart
    sources: list[str]
    method: str
    columns: list[MartColumn] = field(default_factory=list)
    rows: int | None = None
    built_version: int | None = None
    built_at: str | None = None


def mart_state(con: duckdb.DuckDBPyConnection | None, mart: Mart, views: set[str]) -> MartState:
    """``mart`` as the release ``con`` holds it (``views``: its mart views), or as defined when it
    is not built (no connection: nothing is published)."""
    state = MartState(
        mart=mart,
        sources=source_tables(f"marts.{mart.name}"),
        method=mart.method,
        columns=[MartColumn(name, "", comment) for name, comment in mart.columns.items()],
    )
    if con is None or mart.name not in views:
        return state
    comment = release_tables(con, ["marts"]).get(f"marts.{mart.name}")
    state.method = comment or mart.method
    state.columns = [
        MartColumn(str(n), str(t), str(c or ""))
        for n, t, c in con.execute(
            "SELECT column_name, data_type, comment FROM duckdb_columns() "
            "WHERE schema_name = 'marts' AND table_name = ? ORDER BY column_index",
            [mart.name],
        ).fetchall()
    ]
    (rows,) = con.execute(f"SELECT count(*) FROM marts.{quote_identifier(mart.name)}").fetchone() or (0,)
    state.rows = int(rows)
    built = con.execute(
        "SELECT version, published_at FROM meta.publishes WHERE list_contains(changed, ?) "
        "ORDER BY version DESC LIMIT 1",
        [f"marts.{mart.name}"],
    ).fetchone()
    if built is not None:
        state.built_version, state.built_at = int(built[0]), built[1].isoformat(timespec="seconds")
    return state
