"""A SQLAlchemy dialect that lets Great Expectations 1.x validate inside DuckDB.

GX 1.24 has no DuckDB support. Through plain duckdb_engine every expectation fails with a
MetricResolutionError: GX reads its result after the connection context closed, and since
duckdb_engine's cursor is the connection itself, the ROLLBACK on close discards the pending
result. Validation only reads, so this dialect makes begin/commit/rollback no-ops.

GX also picks its regex SQL by probing the dialect for known markers. DuckDB's
``regexp_matches(text, pattern)`` is a search (not a full match), exactly the semantics of the
``REGEXP_MATCHES`` GX emits for a dialect exposing the ``DremioDialect`` marker, so we expose it.
tests/test_validate.py checks the regex semantics against Python's ``re.search``.
"""

from __future__ import annotations

from typing import Any

from duckdb_engine import Dialect as DuckDBEngineDialect
from sqlalchemy.dialects import registry

SCHEME = "scdx_duckdb"


class ReadOnlyDuckDBDialect(DuckDBEngineDialect):  # type: ignore[misc]
    """duckdb_engine with no-op transactions, for read-only validation queries."""

    supports_statement_cache = False
    DremioDialect = True  # marker GX probes for to emit REGEXP_MATCHES (see module docstring)

    def do_begin(self, dbapi_connection: Any) -> None:
        """Validation only reads: no transaction to begin."""

    def do_commit(self, dbapi_connection: Any) -> None:
        """Nothing to commit."""

    def do_rollback(self, dbapi_connection: Any) -> None:
        """Never roll back: it would discard the result GX is about to fetch."""


def register() -> None:
    """Make ``scdx_duckdb:///path`` URLs resolve to :class:`ReadOnlyDuckDBDialect`."""
    registry.register(SCHEME, __name__, "ReadOnlyDuckDBDialect")
