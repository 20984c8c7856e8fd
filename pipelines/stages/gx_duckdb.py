"""A SQLAlchemy dialect that lets Great Expectations 1.x validate inside DuckDB.

GX 1.24 has no DuckDB support. Through plain duckdb_engine every expectation fails with a
MetricResolutionError: GX reads its result after the connection context closed, and since
duckdb_engine's cursor is the connection itself, the ROLLBACK on close discards the pending
result. Validation only reads, so this dialect makes begin/commit/rollback no-ops.

GX also picks its regex SQL by probing the dialect for known markers. DuckDB's
``regexp_matches(text, pattern)`` is a search (not a full match), exactly the semantics of the
``REGEXP_MATCHES`` GX emits for a dialect exposing the ``DremioDialect`` marker, so we expose it.
tests/test_validate.py checks the regex semantics against Python's ``re.search``.

Code-list checks compile to ``x IN (<hundreds of values>)`` inside a CASE; DuckDB evaluates a
long IN list there about ten times slower than a membership test against one list parameter,
so long lists are sent as ``x IN (SELECT unnest(?))`` with the list as a single value (same NULL
semantics; see docs/performance.md).

GX reads column types through SQLAlchemy's reflection (``Inspector.get_pk_constraint`` and
``get_columns``) for its type expectations, and on every validation that needs the table's
columns. The dialect answers it from DuckDB's own catalog (``gx_duckdb_reflection``), each type
by the name DuckDB gives it (``gx_duckdb_types``).
"""

from __future__ import annotations

from typing import Any

from duckdb_engine import Dialect as DuckDBEngineDialect
from sqlalchemy import bindparam
from sqlalchemy.dialects import registry
from sqlalchemy.sql.elements import BinaryExpression, BindParameter

from pipelines.stages.gx_duckdb_reflection import DuckDBCatalogReflection

SCHEME = "scdx_duckdb"
LONG_IN_LIST = 32  # shorter lists compile as usual


def _long_scalar_list(binary: BinaryExpression[Any], kw: dict[str, Any]) -> list[Any] | None:
    """The values of ``x IN (<expanding bind>)`` when it is long, scalar and bound at execution."""
    right = binary.right
    if kw.get("literal_binds") or not isinstance(right, BindParameter) or not right.expanding:
        return None
    values = right.value
    if not isinstance(values, (list, tuple)) or len(values) <= LONG_IN_LIST:
        return None
    if not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in values):
        return None
    types = {type(v) for v in values}
    return list(values) if len(types) == 1 else None


class _Compiler(DuckDBEngineDialect.statement_compiler):  # type: ignore[misc]
    def _in_unnest(self, binary: BinaryExpression[Any], keyword: str, kw: dict[str, Any]) -> str | None:
        values = _long_scalar_list(binary, kw)
        if values is None:
            return None
        left = self.process(binary.left, **kw)
        as_list = self.process(bindparam(None, value=values, unique=True), **kw)
        return f"({left} {keyword} (SELECT unnest({as_list})))"

    def visit_in_op_binary(self, binary: BinaryExpression[Any], operator: Any, **kw: Any) -> str:
        fast = self._in_unnest(binary, "IN", kw)
        return fast if fast is not None else str(self._generate_generic_binary(binary, " IN ", **kw))

    def visit_not_in_op_binary(self, binary: BinaryExpression[Any], operator: Any, **kw: Any) -> str:
        fast = self._in_unnest(binary, "NOT IN", kw)
        return fast if fast is not None else str(super().visit_not_in_op_binary(binary, operator, **kw))


class TransactionlessDuckDBDialect(DuckDBEngineDialect):  # type: ignore[misc]
    """duckdb_engine with no-op transactions, GX's regex marker and the long ``IN`` rewrite.

    Its reflection is duckdb_engine's (PostgreSQL's ``pg_catalog`` queries, which fail on DuckDB):
    this is the dialect as it was before it reflected from DuckDB's catalog, which ``python -m devtools bench
    validate`` runs as its baseline. Validation uses :class:`ReadOnlyDuckDBDialect`.
    """

    supports_statement_cache = False
    statement_compiler = _Compiler
    DremioDialect = True  # marker GX probes for to emit REGEXP_MATCHES (see module docstring)

    def do_begin(self, dbapi_connection: Any) -> None:
        """Validation only reads: no transaction to begin."""

    def do_commit(self, dbapi_connection: Any) -> None:
        """Nothing to commit."""

    def do_rollback(self, dbapi_connection: Any) -> None:
        """Never roll back: it would discard the result GX is about to fetch."""


class ReadOnlyDuckDBDialect(DuckDBCatalogReflection, TransactionlessDuckDBDialect):
    """The dialect GX validates through: no-op transactions, and reflection from DuckDB's catalog."""

    supports_statement_cache = False  # SQLAlchemy reads it from each dialect class itself


def register() -> None:
    """Make ``scdx_duckdb:///path`` URLs resolve to :class:`ReadOnlyDuckDBDialect`."""
    registry.register(SCHEME, __name__, "ReadOnlyDuckDBDialect")
