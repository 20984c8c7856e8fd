"""The shared vocabulary at work: code lists, referential checks, units and drift policy."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest

from pipelines.common.settings import Settings
from pipelines.contracts import Contract, ContractError, Registry, load_registry, parse_contract
from pipelines.orchestration.refresh import refresh_dataset
from pipelines.replay.server import ReplayServer
from pipelines.sources import RawPage, SourceRows
from pipelines.sources.window import Window
from pipelines.stages.normalize import DriftRejected, NormalizeStats, build_page
from pipelines.stages.quarantine import QuarantinedError
from pipelines.store.layout import Layout
from pipelines.store.tiers import open_public

from .conftest import SCHEMAS, catalog_runs

WINDOW = Window(date(2026, 1, 1), date(2026, 3, 1))


def _with_policy(contract: Contract, **policy: str) -> Contract:
    return contract.model_copy(update={"evolution": contract.evolution.model_copy(update=policy)})


def _edit_month(
    recordings: Path, month: str, column: int, value: str, code: str = "5700", hs4: str = "8507"
) -> None:
    path = recordings / "census_intltrade" / "imports_hs" / f"{month}.json"
    rows = json.loads(path.read_bytes())
    target = next(r for r in rows if r[0] == code and r[2] == hs4)
    target[column] = value
    path.write_text("[" + ",\n".join(json.dumps(r) for r in rows) + "]")


def _drift(layout: Layout) -> list[tuple[object, ...]]:
    """Every drift event of every run, from the run history (a quarantined run makes no release)."""
    from pipelines.store.catalog_tables import drift
    from pipelines.store.tiers import catalog_of

    return sorted((r["field"], r["kind"], r["action"]) for r in catalog_of(layout).rows_of(drift))


# --- code lists --------------------------------------------------------------------------


def test_code_lists_load_with_their_documented_sizes(registry: Registry) -> None:
    lists = registry.codelists
    assert len(lists.values("countries", "schedule_c_code")) == 240
    assert len(lists.values("critical_minerals", "mineral")) == 50
    assert lists.values("feoc_countries", "iso_alpha2") == ["CN", "IR", "KP", "RU"]
    counties = {r["county_fips"]: r for r in lists.rows("counties")}
    assert counties["09110"]["name"] == "Capitol Planning Region" and counties["09110"]["vintage"] == "2022"
    assert counties["09001"]["valid_to"] == "2022" and counties["01001"]["vintage"] == "2010"
    assert {r["iso_alpha2"] for r in lists.rows("countries") if r["schedule_c_code"] == "7660"} == {"CD"}


def test_every_basket_heading_maps_to_a_category_and_crosswalk_minerals_are_critical(
    registry: Registry,
) -> None:
    lists = registry.codelists
    minerals = set(lists.values("critical_minerals", "mcs_commodity"))
    assert set(lists.values("hs_critical_minerals", "mcs_commodity")) <= minerals
    assert set(lists.values("hs_critical_minerals", "hs4")) <= set(lists.values("ev_basket_hs", "hs4"))
    feoc_codes = set(lists.values("feoc_countries", "schedule_c_code"))
    assert feoc_codes <= set(lists.values("countries", "schedule_c_code"))


def test_code_list_with_an_unquoted_comma_is_refused_naming_file_and_line(tmp_path: Path) -> None:
    import shutil

    schemas = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, schemas)
    path = schemas / "codelists" / "sctg2.csv"
    path.write_text(path.read_text().replace('"Pulp, newsprint, paper, and paperboard"', "Pulp, newsprint"))
    with pytest.raises(ContractError, match=r"sctg2.csv, line 28: 2 values expected"):
        load_registry(schemas)


def test_numeric_shared_type_without_a_unit_is_refused(tmp_path: Path) -> None:
    import shutil

    schemas = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, schemas)
    types = schemas / "types.yaml"
    types.write_text(types.read_text() + "  tonnage:\n    arrow: float64\n    description: no unit\n")
    with pytest.raises(ContractError, match="numeric type 'tonnage' needs a unit"):
        load_registry(schemas)


# --- referential checks ------------------------------------------------------------------


def test_unknown_country_code_is_rejected_by_the_referential_check_and_recorded_as_drift(
    census: Contract, registry: Registry, settings: Settings, layout: Layout, recordings_copy: Path
) -> None:
    _edit_month(recordings_copy, "2026-02", 0, "5701")  # not a Schedule C code
    with ReplayServer(recordings_copy) as server, pytest.raises(QuarantinedError) as caught:
        refresh_dataset(census, registry, settings, server.url, window=WINDOW)
    assert "ExpectColumnValuesToBeInSet(country_code)" in str(caught.value) and "5701" in str(caught.value)
    assert _drift(layout) == [("country_code", "new_code", "rejected")]


def _add_total(recordings: Path, month: str, hs4: str = "8507") -> None:
    """The API's all-countries row ("-") for one heading and month (the bundled recordings serve
    none: they carry real partner rows only)."""
    path = recordings / "census_intltrade" / "imports_hs" / f"{month}.json"
    rows = json.loads(path.read_bytes())
    china = next(r for r in rows if r[0] == "5700" and r[2] == hs4)
    total = str(2 * int(china[4]))
    rows.append(["-", "TOTAL FOR ALL COUNTRIES", *china[2:4], total, total, *china[6:]])
    path.write_text("[" + ",\n".join(json.dumps(r) for r in rows) + "]")


def test_recorded_payloads_pass_the_referential_checks_groups_and_total_included(
    census: Contract, registry: Registry, settings: Settings, layout: Layout, recordings_copy: Path
) -> None:
    _add_total(recordings_copy, "2026-02")
    with ReplayServer(recordings_copy) as server:
        run = refresh_dataset(census, registry, settings, server.url, window=WINDOW)
    assert run.status == "published" and run.drift == []
    with open_public(layout) as con:
        kinds = con.execute(
            "SELECT DISTINCT partner_kind FROM curated.census_trade_imports ORDER BY 1"
        ).fetchall()
    assert kinds == [("country",), ("group",), ("total",)]


def test_new_code_under_a_warn_policy_publishes_and_is_recorded(
    census: Contract, registry: Registry, settings: Settings, layout: Layout, recordings_copy: Path
) -> None:
    _edit_month(recordings_copy, "2026-02", 0, "5701")
    with ReplayServer(recordings_copy) as server:
        run = refresh_dataset(
            _with_policy(census, new_code="warn"), registry, settings, server.url, window=WINDOW
        )
    assert run.status == "published" and run.drift_summary() == "1 (1 warned)"
    assert _drift(layout) == [("country_code", "new_code", "warned")]


def test_code_lists_are_published_as_commented_ref_tables(
    census: Contract, registry: Registry, settings: Settings, layout: Layout, replay: ReplayServer
) -> None:
    refresh_dataset(census, registry, settings, replay.url, window=WINDOW)
    with open_public(layout) as con:
        assert con.execute("SELECT count(*) FROM curated.ref_countries").fetchone() == (240,)
        assert con.execute(
            "SELECT schedule_c_code FROM curated.ref_feoc_countries ORDER BY 1"
        ).fetchall() == [("4621",), ("5070",), ("5700",), ("5790",)]
        comments = con.execute(
            "SELECT view_name, comment FROM duckdb_views() WHERE schema_name = 'curated' AND view_name LIKE 'ref_%' ORDER BY 1"
        ).fetchall()
    assert [t for t, _ in comments] == sorted(f"ref_{n}" for n in registry.codelists.names)
    assert all(c and "schemas/codelists/" in c for _, c in comments)


# --- drift at run time -------------------------------------------------------------------


def test_type_change_under_reject_quarantines_before_staging_naming_field_and_row(
    census: Contract, registry: Registry, settings: Settings, layout: Layout, recordings_copy: Path
) -> None:
    _edit_month(recordings_copy, "2026-03", 4, "1.2e9 est.")
    with ReplayServer(recordings_copy) as server, pytest.raises(QuarantinedError) as caught:
        refresh_dataset(census, registry, settings, server.url, window=WINDOW)
    message = str(caught.value)
    assert "rejected by the contract's evolution policy" in message
    assert (
        "field 'general_value_usd': type_change" in message
        and "'1.2e9 est.'" in message
        and "row " in message
    )
    report = json.loads((caught.value.quarantine_path / "drift.json").read_text())
    assert report["raw"] == str(layout.raw_dir(census.dataset, caught.value.run_id))
    assert not layout.staged_dir(census.dataset, caught.value.run_id).exists()
    assert not any(layout.root.joinpath("staged", census.dataset).glob("*.tmp"))
    assert _drift(layout) == [("general_value_usd", "type_change", "rejected")]
    assert [r["status"] for r in catalog_runs(layout)] == ["quarantined"]


def _page(rows: SourceRows) -> RawPage:
    return RawPage(
        dataset="census_trade_imports", path=Path("raw/page.json"), body=b"", manifest={"status": 200}
    )


def _census_rows(**columns: list[str | None]) -> SourceRows:
    base: dict[str, list[str | None]] = {
        "time": ["2026-01-01", "2026-01-01"],
        "I_COMMODITY": ["8507", "8507"],
        "COMM_LVL": ["HS4", "HS4"],
        "I_COMMODITY_SDESC": ["BATTERIES", "BATTERIES"],
        "CTY_CODE": ["5700", "-"],
        "CTY_NAME": ["CHINA", "TOTAL FOR ALL COUNTRIES"],
        "GEN_VAL_MO": ["10", "20"],
        "CON_VAL_MO": ["10", "20"],
    }
    base.update(columns)
    return SourceRows(
        columns={k: v for k, v in base.items() if v is not None},
        source_rows=2,
        derived={"partner_kind": ["country", "total"]},
    )


def test_type_change_under_warn_makes_the_value_null_and_records_it(
    census: Contract, registry: Registry
) -> None:
    rows = _census_rows(I_COMMODITY_SDESC=["BATTERIES", "BATTERIES"], CON_VAL_MO=["10", "n/a"])
    stats = NormalizeStats()
    table = build_page(rows, _with_policy(census, type_change="warn"), registry, _page(rows), stats)
    assert table.column("consumption_value_usd").to_pylist() == [10, None]
    (event,) = stats.drift.values()
    assert (event.field, event.kind, event.action) == ("consumption_value_usd", "type_change", "warned")
    assert "'n/a'" in event.detail


@pytest.mark.parametrize(("policy", "expected"), [("warn", "warned"), ("allow", "allowed")])
def test_new_source_column_is_ignored_and_recorded_per_policy(
    census: Contract, registry: Registry, policy: str, expected: str
) -> None:
    rows = _census_rows(GEN_QY1_MO=["5", "9"])
    stats = NormalizeStats()
    table = build_page(rows, _with_policy(census, new_field=policy), registry, _page(rows), stats)
    assert table.column_names == census.field_names
    assert [(e.field, e.kind, e.action) for e in stats.drift.values()] == [
        ("GEN_QY1_MO", "new_field", expected)
    ]


def test_new_source_column_under_reject_names_it(census: Contract, registry: Registry) -> None:
    rows = _census_rows(GEN_QY1_MO=["5", "9"])
    with pytest.raises(DriftRejected, match="new_field: the source sent column 'GEN_QY1_MO'"):
        build_page(rows, _with_policy(census, new_field="reject"), registry, _page(rows), NormalizeStats())


def test_missing_nullable_field_under_warn_becomes_null_but_a_required_one_is_rejected(
    census: Contract, registry: Registry
) -> None:
    lenient = _with_policy(census, missing_field="warn")
    rows = _census_rows(I_COMMODITY_SDESC=None)
    stats = NormalizeStats()
    table = build_page(rows, lenient, registry, _page(rows), stats)
    assert table.column("hs_description").to_pylist() == [None, None]
    assert [(e.field, e.kind, e.action) for e in stats.drift.values()] == [
        ("hs_description", "missing_field", "warned")
    ]
    required_missing = _census_rows(GEN_VAL_MO=None)
    with pytest.raises(DriftRejected, match="field 'general_value_usd': missing_field"):
        build_page(required_missing, lenient, registry, _page(required_missing), NormalizeStats())


UNIT_CONTRACT = """
dataset: mine_output
version: 1.0.0
title: test
description: test
provider: {agency: USGS, steward: test}
classification: public
allowed_use: test
license: public domain
retention: {raw: 1 year, curated: indefinite}
source: {module: census_intltrade, base_url: https://example.gov, path: /x}
fields:
  - {name: country, type: name, source: Country, nullable: false, description: country}
  - {name: production_t, type: metric_tons, source: Prod_2022, description: mine production}
primary_key: [country]
"""


def test_kilotons_are_converted_to_the_types_metric_tons_and_the_conversion_recorded(
    registry: Registry,
) -> None:
    contract = parse_contract(UNIT_CONTRACT, "mine_output.yaml", registry.types, registry.codelists)
    rows = SourceRows(
        columns={"Country": ["Australia", "Chile"], "Prod_2022": ["2.5", None]},
        source_rows=2,
        units={"Prod_2022": "kt"},
    )
    stats = NormalizeStats()
    table = build_page(rows, contract, registry, _page(rows), stats)
    assert table.column("production_t").to_pylist() == [2500.0, None]
    assert table.schema.field("production_t").type == pa.float64()
    (conversion,) = stats.conversions
    assert (
        conversion.field,
        conversion.from_unit,
        conversion.to_unit,
        conversion.factor,
        conversion.rows,
    ) == ("production_t", "kt", "t", 1000.0, 1)


def test_a_unit_of_another_dimension_is_refused_in_the_contract(registry: Registry) -> None:
    text = UNIT_CONTRACT.replace(
        "description: mine production}", "description: mine production, source_unit: USD}"
    )
    with pytest.raises(
        ContractError, match=r"field 'production_t': cannot convert USD \(money\) to t \(mass\)"
    ):
        parse_contract(text, "mine_output.yaml", registry.types, registry.codelists)
