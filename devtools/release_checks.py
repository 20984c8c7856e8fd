"""What a release holds, as numbers to compare: the publish tests, the store conformance suite and
the fault catalogue check that a refused input or a failed publish changed nothing; the Iceberg and
cluster tests that two stores published the same tables."""

from __future__ import annotations

import duckdb

from pipelines.common.sql import quote_name
from pipelines.store.tiers import release_tables

FLOATING = ("DOUBLE", "FLOAT", "REAL")
# Digits two stores' releases agree to: a double has 15-17; summing in another order moves the last few.
CROSS_STORE_DIGITS = 12


def _row(con: duckdb.DuckDBPyConnection, name: str, significant: int | None) -> str:
    """The expression hashed per row: the row itself, or with floating-point columns rounded to
    ``significant`` digits (a sum of doubles depends on the order it adds them in, and two stores
    hand a query its rows in different orders)."""
    if significant is None:
        return "t"
    columns = con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {name})").fetchall()
    fields = []
    for column, column_type in columns:
        value = f"t.{quote_name(column)}"
        if str(column_type) in FLOATING:
            value = (
                f"CASE WHEN {value} = 0 OR NOT isfinite({value}) THEN {value} ELSE "
                f"round({value}, CAST({significant - 1} - floor(log10(abs({value}))) AS INTEGER)) END"
            )
        fields.append(f"{quote_name(column)} := {value}")
    return f"struct_pack({', '.join(fields)})"


def checksums(con: duckdb.DuckDBPyConnection, significant: int | None = None) -> dict[str, tuple[int, int]]:
    """Every curated table and mart of a release: (rows, an order-free sum of row hashes).

    ``significant``: compare floating-point values to that many significant digits (for releases
    two stores built: their sums of doubles may differ in the last bits); exact when None.
    """
    out = {}
    for name in release_tables(con, ["curated", "marts"]):
        rows, digest = con.execute(
            f"SELECT count(*), coalesce(sum(hash({_row(con, name, significant)})), 0) FROM {name} AS t"
        ).fetchone() or (0, 0)
        out[name] = (int(rows), int(digest))
    return out
