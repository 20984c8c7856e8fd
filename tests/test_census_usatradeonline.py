"""USA Trade Online "Standard Report" CSVs, the Census trade datasets' second format, on the real
reports of 16 partners and the Europe group (recordings/census_intltrade/usatradeonline/)."""

from __future__ import annotations

import contextlib
import shutil
from datetime import date
from pathlib import Path

import pytest

from pipelines.common.settings import Settings
from pipelines.contracts import Contract, Registry
from pipelines.marts import publish_marts
from pipelines.orchestration.guards import start_run
from pipelines.orchestration.refresh import ingest_file, refresh_dataset
from pipelines.replay.server import ReplayServer
from pipelines.store.layout import Layout
from pipelines.store.runs import RunRecord
from pipelines.store.tiers import open_public

from .conftest import AS_OF, RECORDINGS

REPORTS = RECORDINGS / "census_intltrade" / "usatradeonline"
CHINA_HS2 = REPORTS / "usatradeonline_imports_hs2_china.csv"
ASIA_HS2 = REPORTS / "usatradeonline_imports_hs2_asia-others.csv"
AMERICAS_EUROPE_HS2 = REPORTS / "usatradeonline_imports_hs2_north-america-europe-uk.csv"


def _ingest(contract: Contract, registry: Registry, settings: Settings, path: Path) -> RunRecord:
    run = start_run(contract)
    with contextlib.suppress(ValueError, RuntimeError):  # a refused run raises once it is recorded
        ingest_file(contract, registry, settings, path, run=run)
    return run


def _query(settings: Settings, sql: str) -> list[tuple[object, ...]]:
    with open_public(Layout(settings.data_dir)) as con:
        return con.execute(sql).fetchall()


def test_usatradeonline_hs2_report_maps_commodity_country_time_and_values_and_declares_what_it_lacks(
    census: Contract, registry: Registry, settings: Settings
) -> None:
    run = _ingest(census, registry, settings, CHINA_HS2)
    assert run.status == "published", run.error
    assert run.rows_published == 2646 and run.coverage == "partial"
    # "01 Live Animals","China","January 2024","1,266,017"
    assert _query(
        settings,
        "SELECT period, hs_code, hs_level, hs_description, country_code, country_name, partner_kind, "
        "general_value_usd, consumption_value_usd FROM curated.census_trade_imports "
        "WHERE hs_code = '01' AND period = DATE '2024-01-01'",
    ) == [(date(2024, 1, 1), "01", "HS2", "Live Animals", "5700", "China", "country", 1266017.0, None)]
    assert any(
        event["field"] == "consumption_value_usd"
        and event["kind"] == "missing_field"
        and event["action"] == "allowed"
        and "Customs Value (Gen) ($US)" in event["detail"]
        for event in run.drift
    )


def test_usatradeonline_partner_names_map_to_schedule_c_and_europe_is_a_group(
    census: Contract, registry: Registry, settings: Settings
) -> None:
    for report in (ASIA_HS2, AMERICAS_EUROPE_HS2):
        assert _ingest(census, registry, settings, report).status == "published"
    partners = dict(
        (name, (code, kind))
        for name, code, kind in _query(
            settings,
            "SELECT DISTINCT country_name, country_code, partner_kind FROM curated.census_trade_imports",
        )
    )
    assert partners["Korea, South"] == ("5800", "country")
    assert partners["Europe"] == ("4XXX", "group")
    assert partners["Mexico"] == ("2010", "country") and partners["United Kingdom"] == ("4120", "country")
    assert len([p for p in partners.values() if p[1] == "country"]) == 15


def _altered(tmp_path: Path, old: str, new: str, count: int = 1) -> Path:
    path = tmp_path / CHINA_HS2.name
    text = CHINA_HS2.read_bytes().decode()
    assert old in text
    path.write_bytes(text.replace(old, new, count).encode())
    return path


def test_usatradeonline_partner_in_no_list_is_new_code_drift_naming_it_and_its_row(
    census: Contract, registry: Registry, settings: Settings, tmp_path: Path
) -> None:
    run = _ingest(
        census, registry, settings, _altered(tmp_path, '"China","March 2024"', '"Atlantis","March 2024"')
    )
    assert run.status == "quarantined", run.error
    assert "'Atlantis' (row 6)" in (run.error or "") and "new_code" in (run.error or "")


def test_usatradeonline_measure_without_a_field_and_an_exports_report_are_refused_by_name(
    census: Contract, registry: Registry, settings: Settings, tmp_path: Path
) -> None:
    unknown = _ingest(
        census, registry, settings, _altered(tmp_path, "Customs Value (Gen) ($US)", "CIF Value ($US)")
    )
    assert unknown.status == "failed" and "unknown: CIF Value ($US)" in (unknown.error or ""), unknown.error
    exports = _ingest(
        census,
        registry,
        settings,
        _altered(tmp_path, "Standard Report - Imports", "Standard Report - Exports"),
    )
    assert exports.status == "failed" and "census_trade_imports reads imports" in (exports.error or "")


def test_usatradeonline_month_that_is_not_a_month_names_the_row_and_field(
    census: Contract, registry: Registry, settings: Settings, tmp_path: Path
) -> None:
    run = _ingest(census, registry, settings, _altered(tmp_path, '"February 2024"', '"Q1 2024"'))
    assert run.status == "failed"
    assert "row 5, field 'Time'" in (run.error or "") and "'Q1 2024'" in (run.error or ""), run.error


@pytest.mark.parametrize("report", [CHINA_HS2.name], ids=["china-hs2"])
def test_reports_merge_beside_the_api_months_and_the_next_api_refresh_keeps_them(
    census: Contract, registry: Registry, settings: Settings, tmp_path: Path, report: str
) -> None:
    recordings = tmp_path / "recordings"
    shutil.copytree(RECORDINGS, recordings)
    with ReplayServer(recordings) as replay:
        first = refresh_dataset(census, registry, settings, replay.url, as_of=AS_OF)
        assert first.status == "published" and first.rows_published == 1924
        assert _ingest(census, registry, settings, REPORTS / report).status == "published"
        # A later API refresh replaces its months at its level (HS4): the chapters stay.
        again = refresh_dataset(census, registry, settings, replay.url, as_of=AS_OF, force=True)
    # The API's months hold the same rows again: no change, no release; the chapters stay.
    assert again.status == "unchanged", again.error
    assert _query(
        settings, "SELECT hs_level, count(*) FROM curated.census_trade_imports GROUP BY 1 ORDER BY 1"
    ) == [
        ("HS2", 2646),
        ("HS4", 1924),
    ]


def test_import_concentration_from_the_reports_is_real_many_partner_concentration(
    census: Contract, registry: Registry, settings: Settings
) -> None:
    for report in (CHINA_HS2, ASIA_HS2, AMERICAS_EUROPE_HS2):
        assert _ingest(census, registry, settings, report).status == "published"
    publish_marts(Layout(settings.data_dir), settings.keep_versions)
    rows = _query(
        settings,
        "SELECT hs_code, supplier_countries, top_supplier, top_supplier_share_pct, hhi, total_is_reported "
        "FROM marts.import_concentration WHERE hs_level = 'HS2' AND period_grain = 'year' "
        "AND period = DATE '2025-01-01' ORDER BY hs_code",
    )
    chapters = {row[0]: row for row in rows}
    # Chapters holding the basket's headings only (85: batteries, magnets, semiconductors).
    assert set(chapters) == {"25", "26", "28", "38", "75", "81", "85", "87"}
    _, suppliers, top, share, hhi, reported = chapters["85"]
    assert suppliers == 16 and reported is False
    # Electrical machinery in 2025: Mexico first, far from "China is half".
    assert top == "Mexico" and 15 < float(share) < 30 and 500 < float(hhi) < 2500  # type: ignore[arg-type]
    assert len({row[3] for row in rows}) == len(rows)  # no constructed constant share
