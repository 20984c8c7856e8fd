"""SQLAlchemy's reflection answered from DuckDB's own catalog, for the GX dialect (``gx_duckdb``).

duckdb_engine inherits PostgreSQL's reflection, whose ``pg_catalog`` queries DuckDB cannot bind
(``pg_collation`` does not exist), so GX fell back to column names without types after two failed
queries. :class:`DuckDBCatalogReflection` answers reflection from ``duckdb_tables()``,
``duckdb_views()``, ``duckdb_columns()`` and ``duckdb_constraints()``, with bound parameters.
tests/test_gx_duckdb.py checks it on tables and views.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, ObjectKind, ObjectScope, reflection
from sqlalchemy.engine.interfaces import ReflectedColumn

from pipelines.stages.gx_duckdb_types import duckdb_type

# Every table and view: the relations a reflection call chooses among.
_RELATIONS = """
    SELECT database_name, schema_name, table_name AS name, temporary, comment, 'table' AS kind
    FROM duckdb_tables()
    UNION ALL
    SELECT database_name, schema_name, view_name AS name, temporary, comment, 'view' AS kind
    FROM duckdb_views() WHERE NOT internal
"""


class DuckDBCatalogReflection:
    """A dialect's reflection from DuckDB's catalog; mixed into a duckdb_engine dialect, before it.

    SQLAlchemy reflects through the ``get_multi_*`` methods (a single table is a call with one
    name); each is one catalog query here. With ``schema`` None a name resolves as DuckDB resolves
    it, a temporary relation first, then the current database's current schema.
    """

    identifier_preparer: Any  # the dialect's

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
