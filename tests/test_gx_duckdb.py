"""scdx's DuckDB dialect answers SQLAlchemy's reflection from DuckDB's catalog, without failing queries."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlalchemy as sa
from duckdb_engine import datatypes as duckdb_types

from pipelines.stages import gx_duckdb
from pipelines.stages.gx_duckdb_types import duckdb_type


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "reflect.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(
            """
            CREATE TABLE trade (
                period DATE NOT NULL,
                hs_code VARCHAR NOT NULL DEFAULT '0000',
                value_usd BIGINT,
                share DOUBLE CHECK (share >= 0),
                ratio FLOAT,
                amount DECIMAL(12, 2),
                flagged BOOLEAN,
                seen_at TIMESTAMP WITH TIME ZONE,
                tags VARCHAR[],
                PRIMARY KEY (period, hs_code),
                UNIQUE (value_usd)
            )
            """
        )
        con.execute("CREATE TABLE note (id INTEGER PRIMARY KEY, period DATE, hs_code VARCHAR)")
        con.execute("COMMENT ON TABLE trade IS 'monthly trade'")
        con.execute("COMMENT ON COLUMN trade.value_usd IS 'customs value'")
        con.execute("CREATE VIEW big_trade AS SELECT period, hs_code, value_usd * 2 AS doubled FROM trade")
        pq = path.with_name("trade.parquet")
        con.execute(f"COPY trade TO '{pq}' (FORMAT parquet)")
        con.execute(f"CREATE VIEW staged AS SELECT * FROM read_parquet(['{pq}'])")
        con.execute("CREATE SCHEMA other")
        con.execute("CREATE TABLE other.trade (code VARCHAR)")
    return path


@pytest.fixture
def engine(database: Path) -> Iterator[tuple[sa.Engine, list[str], list[str]]]:
    """The dialect's engine, with the statements it sent and those that succeeded."""
    gx_duckdb.register()
    engine = sa.create_engine(f"{gx_duckdb.SCHEME}:///{database}")
    sent: list[str] = []
    succeeded: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: sent.append(args[2]))
    sa.event.listen(engine, "after_cursor_execute", lambda *args: succeeded.append(args[2]))
    yield engine, sent, succeeded
    engine.dispose()


def _types(columns: list[Any]) -> dict[str, str]:
    return {c["name"]: repr(c["type"]) for c in columns}


def test_get_columns_reflects_tables_and_views_with_duckdb_types_and_no_failing_query(
    engine: tuple[sa.Engine, list[str], list[str]],
) -> None:
    eng, sent, succeeded = engine
    inspector = sa.inspect(eng)
    trade = inspector.get_columns("trade")
    assert _types(trade) == {
        "period": "DATE()",
        "hs_code": "VARCHAR()",
        "value_usd": "BIGINT()",
        "share": "DOUBLE()",
        "ratio": "FLOAT()",
        "amount": "DECIMAL(precision=12, scale=2)",
        "flagged": "BOOLEAN()",
        "seen_at": "TIMESTAMP(timezone=True)",
        "tags": "ARRAY(VARCHAR())",
    }
    by_name = {c["name"]: c for c in trade}
    assert by_name["period"]["nullable"] is False and by_name["share"]["nullable"] is True
    assert by_name["hs_code"]["default"] == "'0000'"
    assert by_name["value_usd"]["comment"] == "customs value"
    assert _types(inspector.get_columns("big_trade")) == {
        "period": "DATE()",
        "hs_code": "VARCHAR()",
        "doubled": "BIGINT()",
    }
    # The production path: a view over staged Parquet.
    assert _types(inspector.get_columns("staged")) == {**_types(trade)}
    assert sent and sent == succeeded
    assert not any("pg_catalog" in s for s in sent)


def test_constraints_comments_and_names_come_from_duckdbs_catalog(
    engine: tuple[sa.Engine, list[str], list[str]],
) -> None:
    eng, sent, succeeded = engine
    inspector = sa.inspect(eng)
    assert inspector.get_pk_constraint("trade") == {
        "name": "trade_period_hs_code_pkey",
        "constrained_columns": ["period", "hs_code"],
    }
    assert inspector.get_pk_constraint("staged") == {"name": None, "constrained_columns": []}
    assert inspector.get_unique_constraints("trade") == [
        {"name": "trade_value_usd_key", "column_names": ["value_usd"]}
    ]
    assert inspector.get_check_constraints("trade") == [
        {"name": "trade_share_check", "sqltext": '("share" >= 0)'}
    ]
    assert inspector.get_foreign_keys("trade") == []
    assert inspector.get_table_comment("trade") == {"text": "monthly trade"}
    assert inspector.get_table_names() == ["note", "trade"]
    assert inspector.get_view_names() == ["big_trade", "staged"]
    assert inspector.get_table_names(schema="other") == ["trade"]
    assert _types(inspector.get_columns("trade", schema="other")) == {"code": "VARCHAR()"}
    assert inspector.has_table("staged") and inspector.has_table("trade", schema="other")
    assert not inspector.has_table("missing") and not inspector.has_table("note", schema="other")
    with pytest.raises(sa.exc.NoSuchTableError):
        inspector.get_columns("missing")
    assert sent == succeeded


def test_table_autoload_and_metadata_reflect_work_through_the_catalog(
    engine: tuple[sa.Engine, list[str], list[str]],
) -> None:
    eng, sent, succeeded = engine
    trade = sa.Table("trade", sa.MetaData(), autoload_with=eng)
    assert [c.name for c in trade.primary_key] == ["period", "hs_code"]
    assert trade.comment == "monthly trade"
    metadata = sa.MetaData()
    metadata.reflect(bind=eng, views=True)
    assert sorted(metadata.tables) == ["big_trade", "note", "staged", "trade"]
    assert sent == succeeded


def test_a_temporary_table_hides_a_table_of_the_same_name_as_in_duckdbs_own_lookup() -> None:
    gx_duckdb.register()
    engine = sa.create_engine(f"{gx_duckdb.SCHEME}:///:memory:")
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("CREATE TABLE t (a INTEGER)")
            connection.exec_driver_sql("CREATE TEMP TABLE t (b VARCHAR, c DOUBLE)")
            inspector = sa.inspect(connection)
            assert _types(inspector.get_columns("t")) == {"b": "VARCHAR()", "c": "DOUBLE()"}
            assert inspector.get_temp_table_names() == ["t"]
            assert inspector.get_table_names() == ["t"]
            assert _types(inspector.get_columns("t", schema="main")) == {"a": "INTEGER()"}
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("duckdb_name", "expected"),
    [
        ("INTEGER", sa.INTEGER()),
        ("DOUBLE", sa.DOUBLE()),
        ("FLOAT", sa.FLOAT()),
        ("VARCHAR", sa.VARCHAR()),
        ("TIMESTAMP WITH TIME ZONE", sa.TIMESTAMP(timezone=True)),
        ("TIME WITH TIME ZONE", sa.TIME(timezone=True)),
        ("TIMESTAMP_NS", sa.TIMESTAMP()),
        ("DECIMAL(18,3)", sa.DECIMAL(18, 3)),
        ("HUGEINT", duckdb_types.HugeInteger()),
        ("UBIGINT", duckdb_types.UBigInteger()),
        ("VARCHAR[]", sa.ARRAY(sa.VARCHAR())),
        ("INTEGER[3]", sa.ARRAY(sa.INTEGER())),
        ("INTEGER[][]", sa.ARRAY(sa.INTEGER(), dimensions=2)),
        ("ENUM('a', 'it''s')", sa.Enum("a", "it's")),
    ],
)
def test_duckdb_type_names_map_to_the_sqlalchemy_type_of_the_same_name(
    duckdb_name: str, expected: Any
) -> None:
    assert repr(duckdb_type(duckdb_name)) == repr(expected)


def test_nested_duckdb_types_map_to_duckdb_engines_struct_map_and_union() -> None:
    struct = duckdb_type('STRUCT(a INTEGER, "b, c" MAP(VARCHAR, DOUBLE[]))')
    assert isinstance(struct, duckdb_types.Struct)
    assert list(struct.fields) == ["a", "b, c"]
    inner = struct.fields["b, c"]
    assert isinstance(inner, duckdb_types.Map)
    assert repr(inner.value_type) == repr(sa.ARRAY(sa.DOUBLE()))
    union = duckdb_type("UNION(num INTEGER, str VARCHAR)")
    assert isinstance(union, duckdb_types.Union) and list(union.fields) == ["num", "str"]


def test_a_type_sqlalchemy_cannot_represent_reflects_as_nulltype_with_a_warning() -> None:
    with pytest.warns(sa.exc.SAWarning, match="GEOMETRY"):
        assert isinstance(duckdb_type("GEOMETRY"), sa.types.NullType)


def test_type_expectations_pass_on_duckdb_tables_and_views(database: Path) -> None:
    # GX reads types through get_columns; before the dialect reflected from DuckDB's catalog, the
    # reflection failed and GX errored on every type expectation.
    from pipelines.stages.gx_suite import duckdb_datasource, import_gx, release

    import_gx()
    import great_expectations as gx
    from great_expectations import expectations as gxe

    context = gx.get_context(mode="ephemeral")
    datasource = duckdb_datasource(context, "reflect", database)
    try:
        for relation in ("trade", "staged"):
            batch = (
                datasource.add_table_asset(relation, table_name=relation)
                .add_batch_definition_whole_table("all")
                .get_batch()
            )
            checks = [
                (gxe.ExpectColumnValuesToBeOfType(column="value_usd", type_="BIGINT"), True),
                (gxe.ExpectColumnValuesToBeOfType(column="share", type_="DOUBLE"), True),
                (gxe.ExpectColumnValuesToBeOfType(column="hs_code", type_="VARCHAR"), True),
                (gxe.ExpectColumnValuesToBeOfType(column="hs_code", type_="INTEGER"), False),
                (
                    gxe.ExpectColumnValuesToBeInTypeList(column="period", type_list=["DATE", "TIMESTAMP"]),
                    True,
                ),
                (gxe.ExpectColumnValuesToBeInTypeList(column="amount", type_list=["FLOAT", "DOUBLE"]), False),
            ]
            for expectation, verdict in checks:
                result = batch.validate(expectation)
                assert not result.exception_info.get("raised_exception"), (relation, expectation)
                assert result.success is verdict, (relation, expectation, result.result)
    finally:
        release(context, datasource)
