"""Risk marts on small fixtures whose expected values are computed by hand in each test."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import duckdb
import pytest

from pipelines.codelists import ref_table_statements
from pipelines.contracts import Registry, duckdb_ddl
from pipelines.layout import Layout
from pipelines.marts import MartError, load_marts, parse_mart, publish_marts
from pipelines.publish import new_public_version, open_public


def publish_fixture(layout: Layout, registry: Registry, rows: dict[str, list[tuple[object, ...]]]) -> None:
    """A public version holding exactly these curated rows (and the reference code lists)."""

    def change(con: duckdb.DuckDBPyConnection, version: int) -> list[str]:
        for name in registry.codelists.names:
            for statement in ref_table_statements(registry.codelists, name):
                con.execute(statement)
        for dataset, values in rows.items():
            for statement in duckdb_ddl(registry.get(dataset), registry):
                con.execute(statement)
            placeholders = ", ".join("?" for _ in values[0])
            con.executemany(
                f"INSERT INTO curated.{dataset} VALUES ({placeholders})", [list(v) for v in values]
            )
        return []

    new_public_version(layout, 10, "fixture", change)


@pytest.fixture
def layout(tmp_path: Path) -> Iterator[Layout]:
    yield Layout(tmp_path / "data")


def _imports(period: date, hs: str, code: str, name: str, kind: str, value: int) -> tuple[object, ...]:
    return (period, hs, "HS4", "BATTERIES", code, name, kind, value, value)


def test_import_concentration_shares_hhi_feoc_share_and_change_on_prior_year(
    layout: Layout, registry: Registry
) -> None:
    jan_2025, jan_2024 = date(2025, 1, 1), date(2024, 1, 1)
    publish_fixture(
        layout,
        registry,
        {
            "census_trade_imports": [
                _imports(jan_2025, "8507", "-", "TOTAL FOR ALL COUNTRIES", "total", 1000),
                _imports(jan_2025, "8507", "5700", "CHINA", "country", 500),
                _imports(jan_2025, "8507", "5800", "KOREA, SOUTH", "country", 300),
                _imports(jan_2025, "8507", "5880", "JAPAN", "country", 200),
                _imports(jan_2025, "8507", "0014", "PACIFIC RIM COUNTRIES", "group", 1000),
                _imports(jan_2024, "8507", "-", "TOTAL FOR ALL COUNTRIES", "total", 800),
                _imports(jan_2024, "8507", "5800", "KOREA, SOUTH", "country", 600),
                _imports(jan_2024, "8507", "4621", "RUSSIA", "country", 200),
            ]
        },
    )
    build = publish_marts(layout)
    assert build.built == {"import_concentration": 4} and build.skipped == {}
    with open_public(layout) as con:
        row = con.execute(
            "SELECT total_import_value_usd, supplier_countries, top_supplier, top_supplier_share_pct, hhi, "
            "feoc_share_pct, country_coverage_pct, change_on_prior_year_pct, category "
            "FROM marts.import_concentration WHERE period_grain = 'month' AND period = DATE '2025-01-01'"
        ).fetchone()
        earlier = con.execute(
            "SELECT top_supplier, hhi, feoc_share_pct FROM marts.import_concentration "
            "WHERE period_grain = 'year' AND period = DATE '2024-01-01'"
        ).fetchone()
    # Shares 0.5, 0.3, 0.2 of the 1000 total: HHI = (0.25 + 0.09 + 0.04) x 10,000 = 3,800.
    # China (FEOC) 50 %; the group row is not a supplier; 1000 against 800 a year earlier is +25 %.
    assert row == (1000, 3, "CHINA", 50.0, 3800.0, 50.0, 100.0, 25.0, "batteries")
    # 2024: Korea 0.75 and Russia (FEOC) 0.25: HHI = (0.5625 + 0.0625) x 10,000 = 6,250.
    assert earlier == ("KOREA, SOUTH", 6250.0, 25.0)


def test_shares_use_the_all_countries_total_so_partial_coverage_gives_a_lower_bound(
    layout: Layout, registry: Registry
) -> None:
    month = date(2025, 3, 1)
    publish_fixture(
        layout,
        registry,
        {
            "census_trade_imports": [
                _imports(month, "2504", "-", "TOTAL FOR ALL COUNTRIES", "total", 400),
                _imports(month, "2504", "5700", "CHINA", "country", 100),
            ]
        },
    )
    publish_marts(layout)
    with open_public(layout) as con:
        assert con.execute(
            "SELECT top_supplier_share_pct, hhi, country_coverage_pct FROM marts.import_concentration WHERE period_grain = 'month'"
        ).fetchone() == (25.0, 625.0, 25.0)


def test_marts_carry_their_method_as_table_comment_and_column_comments(
    layout: Layout, registry: Registry
) -> None:
    publish_fixture(
        layout,
        registry,
        {"census_trade_imports": [_imports(date(2025, 1, 1), "8507", "5700", "CHINA", "country", 1)]},
    )
    publish_marts(layout)
    with open_public(layout) as con:
        (comment,) = con.execute(
            "SELECT comment FROM duckdb_tables() WHERE table_name = 'import_concentration'"
        ).fetchone() or ("",)
        columns = dict(
            con.execute(
                "SELECT column_name, comment FROM duckdb_columns() WHERE table_name = 'import_concentration'"
            ).fetchall()
        )
    assert "Method:" in comment and "HHI = 10,000 x sum of squared shares" in comment
    assert "Herfindahl" in columns["hhi"] and columns["period_grain"]


def test_a_mart_whose_inputs_are_not_published_is_skipped_with_the_reason(
    layout: Layout, registry: Registry
) -> None:
    publish_fixture(
        layout,
        registry,
        {"census_trade_imports": [_imports(date(2025, 1, 1), "8507", "5700", "CHINA", "country", 1)]},
    )
    needs_more = parse_mart(
        "-- mart: needs_more\n-- reads: bts_border_crossings\n-- title: t\nCREATE TABLE marts.needs_more AS SELECT 1",
        "x.sql",
    )
    build = publish_marts(layout, marts=[*load_marts(), needs_more])
    assert build.skipped == {"needs_more": "inputs not published yet: bts_border_crossings"}


def test_a_failed_mart_check_publishes_nothing(layout: Layout, registry: Registry) -> None:
    publish_fixture(
        layout,
        registry,
        {"census_trade_imports": [_imports(date(2025, 1, 1), "8507", "5700", "CHINA", "country", 1)]},
    )
    strict = parse_mart(
        "-- mart: always_wrong\n-- title: t\n-- check: SELECT * FROM marts.always_wrong\n"
        "CREATE OR REPLACE TABLE marts.always_wrong AS SELECT 1 AS x",
        "always_wrong.sql",
    )
    with open_public(layout) as con:
        (before,) = con.execute("SELECT max(version) FROM meta.publishes").fetchone() or (0,)
    with pytest.raises(MartError, match=r"marts.always_wrong failed its check"):
        publish_marts(layout, marts=[strict])
    with open_public(layout) as con:
        assert con.execute("SELECT max(version) FROM meta.publishes").fetchone() == (before,)
        assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'marts'").fetchone() == (
            0,
        )
