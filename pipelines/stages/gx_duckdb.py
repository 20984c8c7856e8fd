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
columns. duckdb_engine inherits PostgreSQL's reflection, whose ``pg_catalog`` queries DuckDB cannot
bind (``pg_collation`` does not exist), so GX fell back to column names without types after two
failed queries. This dialect answers reflection from DuckDB's own catalog (``duckdb_tables()``,
``duckdb_views()``, ``duckdb_columns()``, ``duckdb_constraints()``), with bound parameters, and
maps each type by the name DuckDB gives it (``DOUBLE`` -> ``sqlalchemy.DOUBLE``, ``VARCHAR[]`` ->
``ARRAY(VARCHAR)``). tests/test_gx_duckdb.py checks it on tables and views.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from duckdb_engine import Dialect as DuckDBEngineDialect
from duckdb_engine import datatypes as duckdb_types
from sqlalchemy import bindparam, text, util
from sqlalchemy.dialects import postgresql, registry
from sqlalchemy.engine import Connection, ObjectKind, ObjectScope, reflection
from sqlalchemy.engine.interfaces import ReflectedColumn
from sqlalchemy.sql import sqltypes
from sqlalchemy.sql.elements import BinaryExpression, BindParameter
from sqlalchemy.sql.type_api import TypeEngine

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


# DuckDB's type names (as duckdb_columns().data_type spells them) -> the SQLAlchemy type of that name.
_SCALAR_TYPES: dict[str, Callable[[], TypeEngine[Any]]] = {
    "BOOLEAN": sqltypes.BOOLEAN,
    "TINYINT": duckdb_types.TinyInteger,
    "SMALLINT": sqltypes.SMALLINT,
    "INTEGER": sqltypes.INTEGER,
    "BIGINT": sqltypes.BIGINT,
    "HUGEINT": duckdb_types.HugeInteger,
    "UTINYINT": duckdb_types.UTinyInteger,
    "USMALLINT": duckdb_types.USmallInteger,
    "UINTEGER": duckdb_types.UInteger,
    "UBIGINT": duckdb_types.UBigInteger,
    "UHUGEINT": duckdb_types.UHugeInteger,
    "BIGNUM": duckdb_types.VarInt,
    "VARINT": duckdb_types.VarInt,
    "FLOAT": sqltypes.FLOAT,  # DuckDB's FLOAT is 4 bytes (REAL); it names it FLOAT
    "DOUBLE": sqltypes.DOUBLE,
    "VARCHAR": sqltypes.VARCHAR,
    "JSON": sqltypes.JSON,
    "BLOB": sqltypes.BLOB,
    "UUID": sqltypes.UUID,
    "BIT": postgresql.BIT,
    "DATE": sqltypes.DATE,
    "TIME": sqltypes.TIME,
    "TIME WITH TIME ZONE": lambda: sqltypes.TIME(timezone=True),
    "TIMESTAMP": sqltypes.TIMESTAMP,
    "TIMESTAMP_S": sqltypes.TIMESTAMP,
    "TIMESTAMP_MS": sqltypes.TIMESTAMP,
    "TIMESTAMP_NS": sqltypes.TIMESTAMP,
    "TIMESTAMP WITH TIME ZONE": lambda: sqltypes.TIMESTAMP(timezone=True),
    "INTERVAL": postgresql.INTERVAL,
}
_TYPE_NAME = re.compile(r"([A-Za-z_][A-Za-z0-9_ ]*?)\s*(?:\((.*)\))?", re.DOTALL)
_QUOTED = re.compile(r"'((?:[^']|'')*)'")


def _split_top_level(arguments: str) -> list[str]:
    """``a INTEGER, b MAP(VARCHAR, INTEGER)`` -> its two parts: commas inside brackets or quotes stay."""
    parts, depth, quote, start = [], 0, "", 0
    for i, char in enumerate(arguments):
        if quote:
            quote = "" if char == quote else quote  # a doubled quote closes and reopens: same result
        elif char in "'\"":
            quote = char
        elif char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(arguments[start:i].strip())
            start = i + 1
    parts.append(arguments[start:].strip())
    return [p for p in parts if p]


def _field(part: str) -> tuple[str, TypeEngine[Any]]:
    """A STRUCT or UNION member, ``name TYPE`` or ``"quoted name" TYPE``."""
    if part.startswith('"'):
        end = 1
        while True:
            end = part.index('"', end)
            if part[end + 1 : end + 2] != '"':
                break
            end += 2
        return part[1:end].replace('""', '"'), duckdb_type(part[end + 1 :])
    name, _, member_type = part.partition(" ")
    return name, duckdb_type(member_type)


def duckdb_type(name: str) -> TypeEngine[Any]:
    """The SQLAlchemy type of a column whose DuckDB type is ``name`` (``duckdb_columns().data_type``).

    Scalars map to the SQLAlchemy type of the same name, so GX's type expectations name DuckDB's
    types (``DOUBLE``, ``VARCHAR``); lists and arrays map to ``ARRAY``; STRUCT, MAP and UNION to
    duckdb_engine's types. A type DuckDB names but SQLAlchemy cannot represent (an extension's)
    reflects as ``NullType`` with a warning, as SQLAlchemy's own dialects do.
    """
    text_ = name.strip()
    dimensions = 0
    while text_.endswith("]"):
        text_ = text_[: text_.rindex("[")].rstrip()
        dimensions += 1
    if dimensions:
        return sqltypes.ARRAY(duckdb_type(text_), dimensions=dimensions if dimensions > 1 else None)
    match = _TYPE_NAME.fullmatch(text_)
    base, arguments = (match[1].upper(), match[2] or "") if match else ("", "")
    if base == "DECIMAL":
        precision, scale = (int(a) for a in _split_top_level(arguments))
        return sqltypes.DECIMAL(precision, scale)
    if base in ("STRUCT", "UNION"):
        fields = dict(_field(p) for p in _split_top_level(arguments))
        compound: TypeEngine[Any] = (duckdb_types.Struct if base == "STRUCT" else duckdb_types.Union)(fields)
        return compound
    if base == "MAP":
        key, value = _split_top_level(arguments)
        mapping: TypeEngine[Any] = duckdb_types.Map(duckdb_type(key), duckdb_type(value))
        return mapping
    if base == "ENUM":
        return sqltypes.Enum(*(v.replace("''", "'") for v in _QUOTED.findall(arguments)))
    factory = _SCALAR_TYPES.get(base)
    if factory is None:
        util.warn(f"Did not recognize DuckDB type {name!r}; it reflects as NullType")
        return sqltypes.NULLTYPE
    return factory()


# Every table and view: the relations a reflection call chooses among.
_RELATIONS = """
    SELECT database_name, schema_name, table_name AS name, temporary, comment, 'table' AS kind
    FROM duckdb_tables()
    UNION ALL
    SELECT database_name, schema_name, view_name AS name, temporary, comment, 'view' AS kind
    FROM duckdb_views() WHERE NOT internal
"""


class ReadOnlyDuckDBDialect(TransactionlessDuckDBDialect):
    """The dialect GX validates through: no-op transactions, and reflection from DuckDB's catalog.

    SQLAlchemy reflects through the ``get_multi_*`` methods (a single table is a call with one
    name); each is one catalog query here. With ``schema`` None a name resolves as DuckDB resolves
    it, a temporary relation first, then the current database's current schema.
    """

    supports_statement_cache = False  # SQLAlchemy reads it from each dialect class itself

    def _relations(
        self,
        schema: str | None,
        filter_names: Sequence[str] | None,
        scope: ObjectScope,
        kind: ObjectKind,
    ) -> tuple[str, dict[str, Any]] | None:
        """The SELECT of the relations a reflection call covers and its parameters (None: none)."""
        kinds = [
            k for k, wanted in (("table", ObjectKind.TABLE), ("view", ObjectKind.VIEW)) if wanted in kind
        ]
        temporary = [
            t
            for t, wanted in ((False, ObjectScope.DEFAULT), (True, ObjectScope.TEMPORARY))
            if wanted in scope
        ]
        if not kinds or not temporary:
            return None
        params: dict[str, Any] = {"kinds": kinds, "temporary": temporary}
        if schema is None:
            where = "(temporary OR (database_name = current_database() AND schema_name = current_schema()))"
        else:
            database, params["schema_name"] = self.identifier_preparer._separate(schema)
            where = "schema_name = :schema_name AND database_name = "
            if database is None:
                where += "current_database()"
            else:
                where += ":database_name"
                params["database_name"] = database
        if filter_names:
            where += " AND list_contains(:filter_names, name)"
            params["filter_names"] = list(filter_names)
        select = (
            f"SELECT database_name, schema_name, name, comment FROM ({_RELATIONS}) "
            f"WHERE {where} AND list_contains(:kinds, kind) AND list_contains(:temporary, temporary) "
            # A temporary relation hides one of the same name, as in DuckDB's own name lookup.
            "QUALIFY row_number() OVER (PARTITION BY name ORDER BY temporary DESC) = 1"
        )
        return select, params

    def _catalog_rows(
        self,
        connection: Connection,
        select: str,
        schema: str | None,
        filter_names: Sequence[str] | None,
        scope: ObjectScope,
        kind: ObjectKind,
        **params: Any,
    ) -> list[Any]:
        """Rows of ``select``, which reads the covered relations from ``{relations}``."""
        relations = self._relations(schema, filter_names, scope, kind)
        if relations is None:
            return []
        sql, relation_params = relations
        return list(connection.execute(text(select.format(relations=sql)), {**relation_params, **params}))

    def get_multi_columns(
        self,
        connection: Connection,
        *,
        schema: str | None = None,
        filter_names: Sequence[str] | None = None,
        scope: ObjectScope = ObjectScope.DEFAULT,
        kind: ObjectKind = ObjectKind.TABLE,
        **kw: Any,
    ) -> Iterable[tuple[tuple[str | None, str], list[ReflectedColumn]]]:
        """Each relation's columns, in order, with their types, nullability, defaults and comments."""
        rows = self._catalog_rows(
            connection,
            "SELECT r.name, c.column_name, c.data_type, c.is_nullable, c.column_default, c.comment, "
            "c.is_generated, c.generation_expression FROM ({relations}) AS r JOIN duckdb_columns() AS c "
            "ON c.database_name = r.database_name AND c.schema_name = r.schema_name AND c.table_name = r.name "
            "ORDER BY r.name, c.column_index",
            schema,
            filter_names,
            scope,
            kind,
        )
        columns: dict[str, list[ReflectedColumn]] = {}
        for relation, name, data_type, nullable, default, comment, generated, expression in rows:
            column: ReflectedColumn = {
                "name": name,
                "type": duckdb_type(data_type),
                "nullable": bool(nullable),
                "default": default,
                "comment": comment,
            }
            if generated:
                column["computed"] = {"sqltext": expression, "persisted": False}
            columns.setdefault(relation, []).append(column)
        return [((schema, relation), cols) for relation, cols in columns.items()]

    def _constraints(
        self,
        connection: Connection,
        constraint_type: str,
        schema: str | None,
        filter_names: Sequence[str] | None,
        scope: ObjectScope,
        kind: ObjectKind,
    ) -> dict[str, list[Any]]:
        """Each relation's constraints of one type (a view's: none), by relation name."""
        rows = self._catalog_rows(
            connection,
            "SELECT r.name, k.constraint_name, k.constraint_column_names, k.expression, "
            "k.referenced_table, k.referenced_column_names FROM ({relations}) AS r "
            "LEFT JOIN duckdb_constraints() AS k ON k.database_name = r.database_name "
            "AND k.schema_name = r.schema_name AND k.table_name = r.name "
            "AND k.constraint_type = :constraint_type ORDER BY r.name, k.constraint_index",
            schema,
            filter_names,
            scope,
            kind,
            constraint_type=constraint_type,
        )
        found: dict[str, list[Any]] = {}
        for relation, *constraint in rows:
            found.setdefault(relation, [])
            if constraint[0] is not None:
                found[relation].append(constraint)
        return found

    def get_multi_pk_constraint(
        self,
        connection: Connection,
        *,
        schema: str | None = None,
        filter_names: Sequence[str] | None = None,
        scope: ObjectScope = ObjectScope.DEFAULT,
        kind: ObjectKind = ObjectKind.TABLE,
        **kw: Any,
    ) -> Iterable[tuple[tuple[str | None, str], dict[str, Any]]]:
        """Each relation's primary key (a view's, or a table's without one: no columns)."""
        found = self._constraints(connection, "PRIMARY KEY", schema, filter_names, scope, kind)
        return [
            (
                (schema, relation),
                {"name": keys[0][0], "constrained_columns": list(keys[0][1])}
                if keys
                else {"name": None, "constrained_columns": []},
            )
            for relation, keys in found.items()
        ]

    def get_multi_foreign_keys(
        self,
        connection: Connection,
        *,
        schema: str | None = None,
        filter_names: Sequence[str] | None = None,
        scope: ObjectScope = ObjectScope.DEFAULT,
        kind: ObjectKind = ObjectKind.TABLE,
        **kw: Any,
    ) -> Iterable[tuple[tuple[str | None, str], list[dict[str, Any]]]]:
        """Each relation's foreign keys (DuckDB's reference a table of the same schema)."""
        found = self._constraints(connection, "FOREIGN KEY", schema, filter_names, scope, kind)
        return [
            (
                (schema, relation),
                [
                    {
                        "name": name,
                        "constrained_columns": list(columns),
                        "referred_schema": schema,
                        "referred_table": referred_table,
                        "referred_columns": list(referred_columns),
                        "options": {},
                    }
                    for name, columns, _, referred_table, referred_columns in keys
                ],
            )
            for relation, keys in found.items()
        ]

    def get_multi_unique_constraints(
        self,
        connection: Connection,
        *,
        schema: str | None = None,
        filter_names: Sequence[str] | None = None,
        scope: ObjectScope = ObjectScope.DEFAULT,
        kind: ObjectKind = ObjectKind.TABLE,
        **kw: Any,
    ) -> Iterable[tuple[tuple[str | None, str], list[dict[str, Any]]]]:
        """Each relation's UNIQUE constraints."""
        found = self._constraints(connection, "UNIQUE", schema, filter_names, scope, kind)
        return [
            (
                (schema, relation),
                [{"name": name, "column_names": list(columns)} for name, columns, *_ in keys],
            )
            for relation, keys in found.items()
        ]

    def get_multi_check_constraints(
        self,
        connection: Connection,
        *,
        schema: str | None = None,
        filter_names: Sequence[str] | None = None,
        scope: ObjectScope = ObjectScope.DEFAULT,
        kind: ObjectKind = ObjectKind.TABLE,
        **kw: Any,
    ) -> Iterable[tuple[tuple[str | None, str], list[dict[str, Any]]]]:
        """Each relation's CHECK constraints, with their expressions as DuckDB prints them."""
        found = self._constraints(connection, "CHECK", schema, filter_names, scope, kind)
        return [
            ((schema, relation), [{"name": name, "sqltext": expression} for name, _, expression, *_ in keys])
            for relation, keys in found.items()
        ]

    def get_multi_indexes(
        self,
        connection: Connection,
        *,
        schema: str | None = None,
        filter_names: Sequence[str] | None = None,
        scope: ObjectScope = ObjectScope.DEFAULT,
        kind: ObjectKind = ObjectKind.TABLE,
        **kw: Any,
    ) -> Iterable[tuple[tuple[str | None, str], list[dict[str, Any]]]]:
        """No indexes: DuckDB's catalog gives an index only as its CREATE INDEX text, as duckdb_engine."""
        return [
            ((schema, relation), [])
            for relation in self._names(connection, schema, filter_names, scope, kind)
        ]

    def get_multi_table_comment(
        self,
        connection: Connection,
        *,
        schema: str | None = None,
        filter_names: Sequence[str] | None = None,
        scope: ObjectScope = ObjectScope.DEFAULT,
        kind: ObjectKind = ObjectKind.TABLE,
        **kw: Any,
    ) -> Iterable[tuple[tuple[str | None, str], dict[str, Any]]]:
        """Each relation's comment (``COMMENT ON TABLE`` / ``VIEW``)."""
        rows = self._catalog_rows(
            connection,
            "SELECT name, comment FROM ({relations}) ORDER BY name",
            schema,
            filter_names,
            scope,
            kind,
        )
        return [((schema, relation), {"text": comment}) for relation, comment in rows]

    def get_multi_table_options(
        self,
        connection: Connection,
        *,
        schema: str | None = None,
        filter_names: Sequence[str] | None = None,
        scope: ObjectScope = ObjectScope.DEFAULT,
        kind: ObjectKind = ObjectKind.TABLE,
        **kw: Any,
    ) -> Iterable[tuple[tuple[str | None, str], dict[str, Any]]]:
        """No table options: DuckDB has none of PostgreSQL's (storage parameters, tablespaces)."""
        return [
            ((schema, relation), {})
            for relation in self._names(connection, schema, filter_names, scope, kind)
        ]

    def _names(
        self,
        connection: Connection,
        schema: str | None,
        filter_names: Sequence[str] | None,
        scope: ObjectScope,
        kind: ObjectKind,
    ) -> list[str]:
        rows = self._catalog_rows(
            connection, "SELECT name FROM ({relations}) ORDER BY name", schema, filter_names, scope, kind
        )
        return [name for (name,) in rows]

    def has_table(
        self, connection: Connection, table_name: str, schema: str | None = None, **kw: Any
    ) -> bool:
        """Whether a table or view of that name is visible (in ``schema``, or DuckDB's search path)."""
        return bool(self._names(connection, schema, [table_name], ObjectScope.ANY, ObjectKind.ANY))

    def has_multi_table(
        self, connection: Connection, table_names: Sequence[str], schema: str | None = None, **kw: Any
    ) -> Iterable[tuple[tuple[str | None, str], bool]]:
        """For each name, whether a table or view of that name is visible."""
        found = set(self._names(connection, schema, table_names, ObjectScope.ANY, ObjectKind.ANY))
        return [((schema, name), name in found) for name in table_names]

    @reflection.cache
    def get_table_names(self, connection: Connection, schema: str | None = None, **kw: Any) -> list[str]:
        """The schema's tables (not temporary ones)."""
        return self._names(connection, schema, None, ObjectScope.DEFAULT, ObjectKind.TABLE)

    @reflection.cache
    def get_view_names(self, connection: Connection, schema: str | None = None, **kw: Any) -> list[str]:
        """The schema's views (not temporary ones)."""
        return self._names(connection, schema, None, ObjectScope.DEFAULT, ObjectKind.VIEW)

    @reflection.cache
    def get_temp_table_names(self, connection: Connection, **kw: Any) -> list[str]:
        """The session's temporary tables."""
        return self._names(connection, None, None, ObjectScope.TEMPORARY, ObjectKind.TABLE)

    @reflection.cache
    def get_temp_view_names(self, connection: Connection, **kw: Any) -> list[str]:
        """The session's temporary views."""
        return self._names(connection, None, None, ObjectScope.TEMPORARY, ObjectKind.VIEW)

    def get_materialized_view_names(
        self, connection: Connection, schema: str | None = None, **kw: Any
    ) -> list[str]:
        """None: DuckDB has no materialized views."""
        return []


def register() -> None:
    """Make ``scdx_duckdb:///path`` URLs resolve to :class:`ReadOnlyDuckDBDialect`."""
    registry.register(SCHEME, __name__, "ReadOnlyDuckDBDialect")
