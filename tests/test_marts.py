"""Risk marts on small fixtures whose expected values are computed by hand in each test."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from pipelines.cli.flow_demo import submit_and_ingest
from pipelines.common.settings import Settings
from pipelines.contracts import Registry, duckdb_ddl
from pipelines.marts import MartError, build_order, datasets_read, load_marts, parse_mart, publish_marts
from pipelines.stages.publish import refresh_reference_tables, table_schema
from pipelines.store import Draft
from pipelines.store.layout import Layout
from pipelines.store.tiers import open_public, open_store

Rows = list[tuple[object, ...]] | list[dict[str, object]]


def publish_fixture(layout: Layout, registry: Registry, rows: dict[str, Rows]) -> None:
    """A public release holding exactly these curated rows (and the reference code lists).

    A row is a tuple of every column in contract order, or a dict of some columns (the rest null).
    """

    def change(draft: Draft) -> None:
        refresh_reference_tables(draft, registry)
        con = draft.connection()
        con.execute("CREATE SCHEMA IF NOT EXISTS fixture")
        for dataset, values in rows.items():
            contract = registry.get(dataset)
            for statement in duckdb_ddl(contract, registry, schema="fixture"):
                con.execute(statement)
            for value in values:
                columns = list(value) if isinstance(value, dict) else []
                params = list(value.values()) if isinstance(value, dict) else list(value)
                names = f" ({', '.join(columns)})" if columns else ""
                placeholders = ", ".join("?" for _ in params)
                con.execute(f"INSERT INTO fixture.{dataset}{names} VALUES ({placeholders})", params)
            target = draft.scratch() / f"{dataset}.parquet"
            con.execute(f"COPY fixture.{dataset} TO '{target}' (FORMAT parquet)")
            draft.replace_table(f"curated.{dataset}", [target], table_schema(contract, registry), "fixture")

    open_store(layout).publish(change, "fixture")


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
    assert build.built["import_concentration"] == 4 and "import_concentration" not in build.skipped
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


def _chapter(period: date, hs2: str, code: str, name: str, value: int) -> tuple[object, ...]:
    return (period, hs2, "HS2", "ELECTRIC MACHINERY", code, name, "country", value, None)


def test_without_a_total_concentration_needs_five_partners_else_it_is_null_with_the_reason(
    layout: Layout, registry: Registry
) -> None:
    month = date(2025, 1, 1)
    five = [
        ("2010", "Mexico", 400),
        ("5700", "China", 200),
        ("5520", "Vietnam", 200),
        ("5830", "Taiwan", 100),
    ]
    publish_fixture(
        layout,
        registry,
        {
            "census_trade_imports": [
                # A heading with one partner and no all-countries total (the demo's API recordings).
                _imports(month, "8507", "5700", "CHINA", "country", 500),
                _imports(month, "8507", "0014", "PACIFIC RIM COUNTRIES", "group", 800),
                # A chapter from a report of five partners, and one of four.
                *(_chapter(month, "85", code, name, value) for code, name, value in five),
                _chapter(month, "85", "5880", "Japan", 100),
                *(_chapter(month, "28", code, name, value) for code, name, value in five),
            ]
        },
    )
    publish_marts(layout)
    with open_public(layout) as con:
        rows = {
            code: row
            for code, *row in con.execute(
                "SELECT hs_code, total_import_value_usd, supplier_countries, top_supplier, top_supplier_share_pct, "
                "hhi, feoc_share_pct, country_coverage_pct, concentration_note "
                "FROM marts.import_concentration WHERE period_grain = 'month'"
            ).fetchall()
        }
    # China over itself would be 100 % and HHI 10,000: not a concentration figure, so none is given.
    total, suppliers, *figures, note = rows["8507"]
    assert (total, suppliers, figures) == (500, 1, [None] * 5)
    assert note.startswith("not computed: 1 partner country and no all-countries total")
    # Five partners: shares 0.4, 0.2, 0.2, 0.1, 0.1 of their sum, HHI 2,600; coverage is unknown.
    assert rows["85"][:7] == [1000, 5, "Mexico", 40.0, 2600.0, 20.0, None]
    assert rows["85"][7].startswith("shares of the 5 partner countries present")
    # Four partners and no total: too few to say the rest of the world does not change the picture.
    assert rows["28"][1:7] == [4, None, None, None, None, None]
    assert "4 partner countries" in rows["28"][7]


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
            "SELECT comment FROM duckdb_views() WHERE view_name = 'import_concentration'"
        ).fetchone() or ("",)
        columns = dict(
            con.execute(
                "SELECT column_name, comment FROM duckdb_columns() WHERE table_name = 'import_concentration'"
            ).fetchall()
        )
    assert "Method:" in comment and "HHI = 10,000 x sum of squared shares" in comment
    assert "Herfindahl" in columns["hhi"] and columns["period_grain"]


def test_every_column_a_mart_produces_is_documented_in_its_header_and_published_as_its_comment(
    layout: Layout, registry: Registry, settings: Settings
) -> None:
    marts = load_marts()
    contracted = [d for d in datasets_read(marts) if d in registry.contracts]
    publish_fixture(layout, registry, {dataset: [] for dataset in contracted})
    # The partner aggregates are published by disclosure control, not from a contract of their own:
    # the partners' generated submissions go through the inbox, which publishes them.
    submit_and_ingest(settings)
    # That release built the marts on them; what is left out of date is built now.
    assert publish_marts(layout).failed == {}
    with open_public(layout) as con:
        built = con.execute(
            "SELECT DISTINCT table_name FROM duckdb_columns() WHERE schema_name = 'marts'"
        ).fetchall()
        assert {name for (name,) in built} == {m.name for m in marts}
        for mart in marts:
            produced = con.execute(
                "SELECT column_name, comment FROM duckdb_columns() WHERE schema_name = 'marts' "
                "AND table_name = ? ORDER BY column_index",
                [mart.name],
            ).fetchall()
            assert [name for name, _ in produced] == list(mart.columns), (
                f"marts.{mart.name}: header and SQL differ"
            )
            assert dict(produced) == mart.columns


def test_a_changed_column_comment_rebuilds_the_mart_with_it(layout: Layout, registry: Registry) -> None:
    (mart,) = [m for m in load_marts() if m.name == "import_concentration"]
    publish_fixture(layout, registry, {"census_trade_imports": []})
    publish_marts(layout, marts=[mart])
    assert publish_marts(layout, marts=[mart]).version is None  # nothing changed: no release
    reworded = replace(mart, columns={**mart.columns, "hhi": "Reworded."})
    assert publish_marts(layout, marts=[reworded]).built == {"import_concentration": 0}
    with open_public(layout) as con:
        (comment,) = con.execute(
            "SELECT comment FROM duckdb_columns() WHERE table_name = 'import_concentration' AND column_name = 'hhi'"
        ).fetchone() or ("",)
    assert comment == "Reworded."


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
    assert build.skipped["needs_more"] == "inputs not published: bts_border_crossings"
    assert "import_concentration" in build.built


def test_a_mart_that_fails_its_check_is_left_out_of_the_release_never_kept_from_older_data(
    layout: Layout, registry: Registry
) -> None:
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
    build = publish_marts(layout, marts=[strict])
    assert build.built == {} and "marts.always_wrong failed its check" in build.failed["always_wrong"]
    # Nothing changed (the mart was never there): no release either.
    assert build.version is None
    with open_public(layout) as con:
        assert con.execute(
            "SELECT count(*) FROM duckdb_views() WHERE view_name = 'always_wrong'"
        ).fetchone() == (0,)
    # A mart built earlier whose check fails on new data leaves the release too, never kept stale.
    passing = parse_mart(
        "-- mart: always_wrong\n-- title: t\nCREATE OR REPLACE TABLE marts.always_wrong AS SELECT 2 AS x",
        "always_wrong.sql",
    )
    assert publish_marts(layout, marts=[passing]).built == {"always_wrong": 1}
    again = publish_marts(layout, marts=[strict])
    assert "always_wrong" in again.failed and again.version is not None
    with open_public(layout) as con:
        assert con.execute(
            "SELECT count(*) FROM duckdb_views() WHERE view_name = 'always_wrong'"
        ).fetchone() == (0,)


def _world(
    mineral: str, country: str, iso: str | None, measure: str, value: float | None, **extra: object
) -> dict[str, object]:
    return {
        "edition": "MCS2024",
        "mineral": mineral,
        "country_name": country,
        "country_iso": iso,
        "is_aggregate": iso is None,
        "year": extra.pop("year", 2023),
        "measure": measure,
        "value_t": value,
        "estimated": False,
        "withheld": value is None,
        **extra,
    }


def _reliance(
    mineral: str, year: int, table: str, value: float | None, qualifier: str | None, text: str
) -> dict[str, object]:
    return {
        "edition": "MCS2024",
        "source_table": table,
        "commodity": mineral.upper(),
        "mineral": mineral,
        "year": year,
        "measure": "net_import_reliance",
        "form": "",
        "unit": "pct",
        "net_import_reliance_pct": value,
        "value_qualifier": qualifier,
        "withheld": False,
        "published_value": text,
        "source_column": "NIR_pct",
    }


def test_mineral_supply_risk_hhi_top_producer_feoc_share_and_reliance_as_published(
    layout: Layout, registry: Registry
) -> None:
    publish_fixture(
        layout,
        registry,
        {
            "usgs_mineral_production": [
                _world("Graphite", "China", "CN", "production", 600.0),
                _world("Graphite", "Mozambique", "MZ", "production", 300.0),
                _world("Graphite", "Brazil", "BR", "production", 100.0),
                _world("Graphite", "United States", "US", "production", None),  # withheld: W
                _world("Graphite", "Other countries", None, "production", 5000.0),
                _world("Graphite", "World total (rounded)", None, "production", 6000.0),
                _world("Graphite", "China", "CN", "production", 9999.0, year=2022),  # an earlier year
                _world("Graphite", "China", "CN", "reserves", 200.0),
                _world("Graphite", "Brazil", "BR", "reserves", 200.0),
            ],
            "usgs_mineral_salient": [
                _reliance("Graphite", 2023, "salient", 100.0, None, "100"),
                _reliance("Graphite", 2022, "salient", 90.0, None, "90"),
                _reliance("Graphite", 2023, "net_import_reliance", 100.0, None, "100"),
                _reliance("Gallium", 2023, "net_import_reliance", 95.0, "more_than", ">95"),
            ],
        },
    )
    build = publish_marts(layout)
    assert build.built["mineral_supply_risk"] == 2
    with open_public(layout) as con:
        graphite = con.execute(
            "SELECT production_year, producing_countries, world_production_t, top_producer, top_producer_iso, "
            "top_producer_share_pct, production_hhi, feoc_production_share_pct, reserves_hhi, "
            "feoc_reserves_share_pct, net_import_reliance_pct, net_import_reliance_year "
            "FROM marts.mineral_supply_risk WHERE mineral = 'Graphite'"
        ).fetchone()
        gallium = con.execute(
            "SELECT production_year, net_import_reliance_pct, net_import_reliance_qualifier, "
            "net_import_reliance_published FROM marts.mineral_supply_risk WHERE mineral = 'Gallium'"
        ).fetchone()
    # 2023 countries only: shares 0.6, 0.3, 0.1 (aggregates and the withheld US left out):
    # HHI = (0.36 + 0.09 + 0.01) x 10,000 = 4,600; China (FEOC) 60 %. Reserves 0.5/0.5: HHI 5,000, FEOC 50 %.
    assert graphite == (2023, 3, 1000.0, "China", "CN", 60.0, 4600.0, 60.0, 5000.0, 50.0, 100.0, 2023)
    # A mineral with only a published reliance figure keeps it, qualifier and text as published.
    assert gallium == (None, 95.0, "more_than", ">95")


def _qcew(
    area: str, area_type: str, state: str, industry: str, employment: int | None, **extra: object
) -> dict[str, object]:
    suppressed = employment is None
    return {
        "period": date(2021, 10, 1),
        "quarter": "2021-Q4",
        "area_fips": area,
        "area_type": area_type,
        "state_fips": state,
        "county_fips": area if area_type == "county" else None,
        "own_code": "5",
        "industry_code": industry,
        "agglvl_code": {"state": "58", "county": "78"}[area_type],
        "size_code": "0",
        "suppressed": suppressed,
        "establishments": extra.pop("establishments", 3),
        "month3_employment": employment,
        "lq_suppressed": suppressed,
        "oty_suppressed": suppressed,
        **extra,
    }


def test_workforce_capacity_keeps_suppressed_cells_null_and_counts_them(
    layout: Layout, registry: Registry
) -> None:
    publish_fixture(
        layout,
        registry,
        {
            "bls_qcew_industry": [
                _qcew(
                    "26000", "state", "26", "335911", 1200, avg_weekly_wage_usd=1500, lq_month3_employment=2.5
                ),
                _qcew("26125", "county", "26", "335911", 700),
                _qcew("26163", "county", "26", "335911", None),
                _qcew("26161", "county", "26", "335911", None),
                _qcew("13000", "state", "13", "335911", None, establishments=2),
                _qcew("13157", "county", "13", "335911", None),
                # An earlier quarter is not the latest: not in the mart.
                {
                    **_qcew("26000", "state", "26", "335911", 999),
                    "period": date(2021, 7, 1),
                    "quarter": "2021-Q3",
                },
            ]
        },
    )
    publish_marts(layout)
    with open_public(layout) as con:
        rows = con.execute(
            "SELECT state_usps, industry_title, employment, avg_weekly_wage_usd, location_quotient, "
            "state_suppressed, establishments, county_cells, suppressed_county_cells "
            "FROM marts.workforce_capacity ORDER BY state_fips"
        ).fetchall()
    assert rows == [
        ("GA", "Storage Battery Manufacturing", None, None, None, True, 2, 1, 1),
        ("MI", "Storage Battery Manufacturing", 1200, 1500, 2.5, False, 3, 3, 2),
    ]


def _station(
    station_id: str, network: str | None, level2: int, dc_fast: int, access: str = "public", status: str = "E"
) -> dict[str, object]:
    return {
        "station_id": station_id,
        "station_name": f"Station {station_id}",
        "fuel_type_code": "ELEC",
        "status_code": status,
        "access_code": access,
        "ev_level2_evse_num": level2,
        "ev_dc_fast_num": dc_fast,
        "ev_network": network,
        "state": "CO",
        "latitude": 39.7,
        "longitude": -104.9,
    }


def test_ev_charging_access_counts_open_stations_and_ports_per_level_and_network(
    layout: Layout, registry: Registry
) -> None:
    publish_fixture(
        layout,
        registry,
        {
            "afdc_charging_stations": [
                _station("1", "ChargePoint Network", 2, 0),
                _station("2", "ChargePoint Network", 4, 2),
                _station("3", None, 1, 0, access="private"),
                _station("4", "Tesla", 0, 8, status="T"),  # temporarily unavailable: not counted
            ]
        },
    )
    publish_marts(layout)
    with open_public(layout) as con:
        rows = con.execute(
            "SELECT charging_level, network, stations, public_stations, ports, public_ports "
            "FROM marts.ev_charging_access ORDER BY charging_level, network"
        ).fetchall()
    assert rows == [
        ("dc_fast", "ChargePoint Network", 1, 1, 2, 2),
        ("level2", "ChargePoint Network", 2, 2, 6, 6),
        ("level2", "Non-networked", 1, 0, 1, 0),
    ]


def test_a_mart_that_reads_another_mart_is_built_after_it_and_skipped_without_it() -> None:
    base = parse_mart(
        "-- mart: zz_base\n-- reads: census_trade_imports\n-- title: t\nSELECT 1", "zz_base.sql"
    )
    top = parse_mart("-- mart: aa_top\n-- reads: marts.zz_base\n-- title: t\nSELECT 1", "aa_top.sql")
    assert [m.name for m in build_order([top, base])] == ["zz_base", "aa_top"]
    assert datasets_read([top, base]) == ["census_trade_imports"]
    with pytest.raises(MartError, match=r"reads marts\.missing, which no \.sql file defines"):
        build_order([parse_mart("-- mart: x\n-- reads: marts.missing\n-- title: t\nSELECT 1", "x.sql")])


def _flow(mode: str, value: float, year: int = 2023, forecast: bool = False) -> dict[str, object]:
    return {
        "flow_id": f"-.011.012.-.-.{mode}.-.20.1.1",
        "origin_zone": "011",
        "destination_zone": "012",
        "domestic_mode": mode,
        "sctg2": "20",
        "trade_type": "1",
        "distance_band": "1",
        "year": year,
        "is_forecast": forecast,
        "weight_t": 10.0,
        "value_constant_usd": value,
        "freight_tonne_km": 100.0,
    }


def test_scorecard_scales_each_pillar_from_its_mart_with_the_inputs_beside_it(
    layout: Layout, registry: Registry
) -> None:
    jan_2025 = date(2025, 1, 1)
    publish_fixture(
        layout,
        registry,
        {
            "usgs_mineral_production": [
                _world("Lithium", "Australia", "AU", "production", 50.0),
                _world("Lithium", "Chile", "CL", "production", 30.0),
                _world("Lithium", "China", "CN", "production", 20.0),
            ],
            "usgs_mineral_salient": [_reliance("Lithium", 2023, "salient", 34.0, None, "34")],
            "census_trade_imports": [
                _imports(jan_2025, "2836", "-", "TOTAL FOR ALL COUNTRIES", "total", 1000),
                _imports(jan_2025, "2836", "5700", "CHINA", "country", 500),
                _imports(jan_2025, "2836", "3370", "CHILE", "country", 500),
            ],
            "bls_qcew_industry": [
                _qcew("26000", "state", "26", "335911", 300),
                _qcew("06000", "state", "06", "335911", 100),
                _qcew("13000", "state", "13", "335911", None),  # suppressed: left out
            ],
            "faf5_regional_flows": [
                _flow("1", 600.0),
                _flow("2", 400.0),
                _flow("2", 9999.0, year=2030, forecast=True),  # a forecast: not counted
            ],
        },
    )
    build = publish_marts(layout)
    assert "supply_chain_scorecard" in build.built, build.skipped
    with open_public(layout) as con:
        lithium = con.execute(
            "SELECT raw_materials_score, manufacturing_score, workforce_score, logistics_score, pillars_scored, "
            "mean_score, net_import_reliance_pct, production_hhi, feoc_production_share_pct, import_hhi, "
            "import_feoc_share_pct, workforce_states, workforce_hhi, dominant_mode, dominant_mode_share_pct "
            "FROM marts.supply_chain_scorecard WHERE item = 'Lithium'"
        ).fetchone()
        batteries = con.execute(
            "SELECT raw_materials_score, manufacturing_score, workforce_score, logistics_score, pillars_scored "
            "FROM marts.supply_chain_scorecard WHERE item = 'Lithium-ion batteries'"
        ).fetchone()
    # Raw materials: shares 0.5/0.3/0.2 give HHI 3,800; China 20 %; reliance 34 %: (34 + 38 + 20) / 3 = 30.7.
    # Manufacturing: imports 50/50 China/Chile: HHI 5,000, FEOC 50 %: (50 + 50) / 2 = 50.
    # Workforce: 300 and 100 employed in two states: HHI (0.75^2 + 0.25^2) x 10,000 = 6,250 -> 62.5.
    # Logistics: truck carries 600 of 1,000 of SCTG 20's value -> 60. Mean (30.7 + 50 + 62.5 + 60) / 4 = 50.8.
    assert lithium == (
        30.7,
        50.0,
        62.5,
        60.0,
        4,
        50.8,
        34.0,
        3800.0,
        20.0,
        5000.0,
        50.0,
        2,
        6250.0,
        "Truck",
        60.0,
    )
    # A product takes its minerals' mean raw-materials score; pillars without inputs stay null.
    assert batteries == (30.7, None, 62.5, None, 2)


def _flow_of(sctg2: str, mode: str, value: float) -> dict[str, object]:
    return {**_flow(mode, value), "sctg2": sctg2, "flow_id": f"-.011.012.-.-.{mode}.-.{sctg2}.1.1"}


def test_scorecard_pillars_differ_by_item_or_are_null_with_the_reason(
    layout: Layout, registry: Registry
) -> None:
    jan_2025 = date(2025, 1, 1)
    chapter_85 = [
        ("2010", "Mexico", 400),
        ("5700", "China", 200),
        ("5520", "Vietnam", 200),
        ("5830", "Taiwan", 100),
    ]
    publish_fixture(
        layout,
        registry,
        {
            "usgs_mineral_production": [_world("Lithium", "Australia", "AU", "production", 50.0)],
            "usgs_mineral_salient": [_reliance("Lithium", 2023, "salient", 34.0, None, "34")],
            "census_trade_imports": [
                _imports(jan_2025, "2836", "-", "TOTAL FOR ALL COUNTRIES", "total", 1000),
                _imports(jan_2025, "2836", "5700", "CHINA", "country", 500),
                _imports(jan_2025, "2836", "3370", "CHILE", "country", 500),
                _imports(jan_2025, "8507", "5700", "CHINA", "country", 500),  # one partner: unknown
                *(_chapter(jan_2025, "85", code, name, value) for code, name, value in chapter_85),
                _chapter(jan_2025, "85", "5880", "Japan", 100),
            ],
            "bls_qcew_industry": [_qcew("26000", "state", "26", "335911", 300)],
            "faf5_regional_flows": [
                _flow_of("20", "1", 600.0),
                _flow_of("20", "2", 400.0),
                _flow_of("35", "6", 600.0),  # pipeline carrying electronics: not a credible flow
                _flow_of("35", "1", 400.0),
            ],
        },
    )
    build = publish_marts(layout)
    assert "supply_chain_scorecard" in build.built, build.skipped
    with open_public(layout) as con:
        rows = {
            item: row
            for item, *row in con.execute(
                "SELECT item, manufacturing_score, manufacturing_basis, logistics_score, logistics_note "
                "FROM marts.supply_chain_scorecard"
            ).fetchall()
        }
    # Lithium: its heading 2836 has a reported total: China and Chile half each, (50 + 50) / 2 = 50.
    assert rows["Lithium"][:2] == [50.0, "HS4 headings 2836"]
    # Batteries: heading 8507 has one partner, so its chapter 85 stands in, and says so:
    # HHI 2,600 and China 20 % -> (26 + 20) / 2 = 23.
    assert rows["Lithium-ion batteries"][0] == 23.0
    assert rows["Lithium-ion batteries"][1].startswith("HS2 chapters (proxy") and rows[
        "Lithium-ion batteries"
    ][1].endswith("85")
    # Logistics: truck carries 60 % of SCTG 20; SCTG 35's "largest mode" is pipeline, which cannot
    # carry batteries or chips, so neither is scored; graphite has no group of its own.
    assert rows["Lithium"][2:] == [
        60.0,
        "SCTG 20 Basic chemicals, the group that carries the item (FAF5 has no finer commodity)",
    ]
    for item in ("Lithium-ion batteries", "Semiconductors"):
        assert (
            rows[item][2] is None and "pipeline" in rows[item][3] and rows[item][3].startswith("not scored")
        )
    assert rows["Graphite"][2] is None and "SCTG 13 and 23" in rows["Graphite"][3]


def _crossing(month: date, measure: str, value: int) -> dict[str, object]:
    return {
        "port_name": "Laredo",
        "state": "Texas",
        "state_usps": "TX",
        "port_code": "2304",
        "border": "US-Mexico Border",
        "month": month,
        "measure": measure,
        "value": value,
        "latitude": 27.5,
        "longitude": -99.5,
    }


def test_border_port_month_more_than_30_pct_below_its_trailing_3_month_average_is_a_disruption(
    layout: Layout, registry: Registry
) -> None:
    months = [date(2024, m, 1) for m in range(1, 7)]
    trucks = [1000, 1100, 900, 650, 1000, 500]
    publish_fixture(
        layout,
        registry,
        {
            "bts_border_crossings": [
                *(_crossing(m, "Trucks", v) for m, v in zip(months, trucks, strict=True)),
                _crossing(months[3], "Pedestrians", 1),  # not freight: not in the mart
            ]
        },
    )
    publish_marts(layout)
    with open_public(layout) as con:
        rows = con.execute(
            "SELECT month, crossings, trailing_avg_3m, change_vs_trailing_pct, disruption "
            "FROM marts.freight_exposure_border_ports ORDER BY month"
        ).fetchall()
    # April: 650 against (1000 + 1100 + 900) / 3 = 1000 is -35 %: a disruption. May: 1000 against
    # (1100 + 900 + 650) / 3 = 883.3 is +13.2 %. June: 500 against (900 + 650 + 1000) / 3 = 850 is -41.2 %.
    assert rows[:3] == [(m, v, None, None, None) for m, v in zip(months[:3], trucks[:3], strict=True)]
    assert rows[3:] == [
        (months[3], 650, 1000.0, -35.0, True),
        (months[4], 1000, 883.3, 13.2, False),
        (months[5], 500, 850.0, -41.2, True),
    ]


def test_freight_exposure_mode_shares_and_top_corridors_of_a_chain_commodity(
    layout: Layout, registry: Registry
) -> None:
    other_corridor = {**_flow("1", 100.0), "flow_id": "x", "origin_zone": "012", "destination_zone": "011"}
    publish_fixture(
        layout,
        registry,
        {"faf5_regional_flows": [_flow("1", 600.0), _flow("2", 300.0), other_corridor]},
    )
    publish_marts(layout)
    with open_public(layout) as con:
        modes = con.execute(
            "SELECT mode, value_usd, value_share_pct, tons_share_pct FROM marts.freight_exposure ORDER BY mode"
        ).fetchall()
        corridors = con.execute(
            "SELECT corridor_rank, origin, destination, value_usd, value_share_pct "
            "FROM marts.freight_exposure_corridors ORDER BY corridor_rank"
        ).fetchall()
    # Value 700 by truck and 300 by rail of 1,000; tons 20 and 10 of 30.
    assert modes == [("Rail", 300.0, 30.0, 33.33), ("Truck", 700.0, 70.0, 66.67)]
    assert corridors == [
        (1, "Birmingham AL", "Mobile AL", 900.0, 90.0),
        (2, "Mobile AL", "Birmingham AL", 100.0, 10.0),
    ]


def _marts_built_from_rows_in_order(demo: Path, direction: str) -> dict[str, tuple[int, int]]:
    """Every mart built from the demo release's curated tables, their rows shuffled (``ASC``) or in
    the reverse of that order (``DESC``): every two rows that tie meet in both orders."""
    import duckdb

    from devtools.release_checks import CROSS_STORE_DIGITS, checksums
    from pipelines.store.tiers import release_tables

    con = duckdb.connect()
    con.execute("CREATE SCHEMA curated; CREATE SCHEMA marts")
    with open_public(Layout(demo)) as release:
        for name in [n.partition(".")[2] for n in release_tables(release, ["curated"])]:
            con.register("rows_in", release.sql(f"SELECT * FROM curated.{name}").to_arrow_table())
            con.execute(
                f"CREATE TABLE curated.{name} AS SELECT * FROM rows_in ORDER BY hash(rows_in) {direction}"
            )
            con.unregister("rows_in")
    for mart in build_order(load_marts()):
        con.execute(mart.sql)
    return {k: v for k, v in checksums(con, CROSS_STORE_DIGITS).items() if k.startswith("marts.")}


def test_every_mart_is_the_same_whatever_order_its_curated_rows_come_in(
    demo_run: tuple[Path, object],
) -> None:
    # Two stores (or two runs) hand a mart's query its rows in different orders: ties (the top
    # supplier, the reliance figure of a mineral with two commodities) must not decide by order.
    demo = demo_run[0]
    first, second = (
        _marts_built_from_rows_in_order(demo, "ASC"),
        _marts_built_from_rows_in_order(demo, "DESC"),
    )
    assert len(first) == len(load_marts())
    assert first == second
