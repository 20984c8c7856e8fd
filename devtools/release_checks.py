"""What a release holds, as numbers to compare: the publish tests, the store conformance suite and
the fault catalogue check that a refused input or a failed publish changed nothing."""

from __future__ import annotations

import duckdb


def checksums(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, int]]:
    """Every curated table and mart of a release: (rows, an order-free sum of row hashes)."""
    names = con.execute(
        "SELECT schema_name || '.' || view_name FROM duckdb_views() WHERE schema_name IN ('curated', 'marts') "
        "AND NOT internal ORDER BY 1"
    ).fetchall()
    out = {}
    for (name,) in names:
        rows, digest = con.execute(
            f"SELECT count(*), coalesce(sum(hash(t)), 0) FROM {name} AS t"
        ).fetchone() or (0, 0)
        out[name] = (int(rows), int(digest))
    return out
