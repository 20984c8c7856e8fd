"""The disruption early-warning mart (issue 23) on the public FLOW aggregates of the real
generator's partner submissions (disclosure-controlled by ``pipelines.disclosure.protect``) and the
recorded BTS border-crossing export, published through the real ingest path."""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import duckdb
import pyarrow as pa
import pytest

from pipelines.common.settings import Settings
from pipelines.contracts import Registry
from pipelines.marts import publish_marts
from pipelines.store.layout import Layout
from pipelines.store.tiers import open_public

from .flow_tables import generated_aggregates, publish_flow_tables, publish_with_recorded_bts
from .test_marts import _crossing, publish_fixture

MART = "flow_disruption_warning"


@dataclass(frozen=True)
class Aggregates:
    """The two public FLOW tables the generator's submissions give."""

    port: pa.Table
    forecast: pa.Table


@pytest.fixture(scope="module")
def aggregates(tmp_path_factory: pytest.TempPathFactory) -> Aggregates:
    return Aggregates(*generated_aggregates(tmp_path_factory.mktemp("flow")))


@pytest.fixture
def warning(
    aggregates: Aggregates, registry: Registry, settings: Settings, layout: Layout
) -> Iterator[duckdb.DuckDBPyConnection]:
    """The public release with the recorded BTS export and the FLOW aggregates, marts built."""
    build = publish_with_recorded_bts(registry, settings, aggregates.port, aggregates.forecast)
    assert build.built.get(MART, 0) > 0 and MART not in build.failed, build.failed
    with open_public(layout) as con:
        yield con


def _row(con: duckdb.DuckDBPyConnection, port: str, week: str) -> dict[str, object]:
    cursor = con.execute(f"SELECT * FROM marts.{MART} WHERE port_code = ? AND week = ?", [port, week])
    columns = [d[0] for d in cursor.description or []]
    (row,) = cursor.fetchall()
    return dict(zip(columns, row, strict=True))


def test_los_angeles_surge_weeks_are_flagged_surge_with_their_ratio_in_the_reason(
    warning: duckdb.DuckDBPyConnection,
) -> None:
    for week in ("2024-W20", "2024-W21", "2024-W22", "2024-W23"):
        row = _row(warning, "USLAX", week)
        assert row["flag"] == "surge", (week, row["reason"])
        ratio = row["inbound_ratio"]
        assert isinstance(ratio, float) and ratio > 1.25
        assert f"is {ratio:.2f} x its 8-week median" in str(row["reason"])
        # The generator lengthens dwell by 2.5 days in the surge: the reason lists that too.
        assert "dwell:" in str(row["reason"]) and float(row["dwell_excess_days"]) >= 1.5  # type: ignore[arg-type]
    flagged = warning.execute(
        f"SELECT week FROM marts.{MART} WHERE port_code = 'USLAX' AND flag <> 'none' ORDER BY week"
    ).fetchall()
    assert flagged == [("2024-W20",), ("2024-W21",), ("2024-W22",), ("2024-W23",)]


def test_a_week_whose_port_cell_is_suppressed_has_no_indicator_and_says_why(
    warning: duckdb.DuckDBPyConnection,
) -> None:
    # Houston has two partners (too few) and Savannah one dominant terminal: every week suppressed.
    for port, reason in (("USHOU", "too_few_partners"), ("USSAV", "dominant_partner")):
        row = _row(warning, port, "2024-W14")
        assert row["suppressed"] is True and row["suppression_reason"] == reason
        indicators = ("loaded_teu_in", "baseline_teu_in", "inbound_ratio", "dwell_days", "dwell_excess_days")
        assert [row[c] for c in (*indicators, "forecast_1w_error_pct", "forecast_4w_error_pct", "flag")] == [
            None
        ] * 8
        assert row["reason"] == (
            f"suppressed: the port's cell for this week is suppressed ({reason}), so no indicator is published"
        )
    # Houston's closure (W14 at 10 %) is therefore not visible publicly: the row says suppressed, not closure.
    assert not warning.execute(
        f"SELECT count(*) FROM marts.{MART} WHERE flag = 'closure_or_drop'"
    ).fetchone()[0]  # type: ignore[index]


def test_the_baseline_needs_eight_published_weeks_and_steps_over_a_suppressed_one(
    warning: duckdb.DuckDBPyConnection, aggregates: Aggregates
) -> None:
    published = {
        r["week"]: r["loaded_teu_in"]
        for r in aggregates.port.to_pylist()
        if r["level"] == "port_week" and r["port_code"] == "USLAX" and not r["suppressed"]
    }
    early = _row(warning, "USLAX", "2024-W08")
    assert (early["baseline_weeks"], early["baseline_teu_in"], early["flag"]) == (7, None, None)
    assert early["reason"] == "no baseline: 7 of the 8 published weeks it needs in the 12 weeks before"
    first = _row(warning, "USLAX", "2024-W09")
    weeks = [f"2024-W{w:02d}" for w in range(1, 9)]
    assert first["baseline_weeks"] == 8
    assert first["baseline_teu_in"] == pytest.approx(statistics.median(published[w] for w in weeks), abs=0.5)
    # Los Angeles' W14 (the week of Houston's closure) is suppressed as a complement: W15's
    # baseline is the eight published weeks before it, W06..W13, W14 left out.
    assert "2024-W14" not in published
    after = _row(warning, "USLAX", "2024-W15")
    weeks = [f"2024-W{w:02d}" for w in range(6, 14)]
    assert after["baseline_teu_in"] == pytest.approx(statistics.median(published[w] for w in weeks), abs=0.5)


def test_forecast_error_is_the_published_forecast_against_realised_inbound(
    warning: duckdb.DuckDBPyConnection, aggregates: Aggregates
) -> None:
    forecasts = {
        (r["week"], r["horizon_weeks"]): r["teu_expected"]
        for r in aggregates.forecast.to_pylist()
        if r["level"] == "port_week" and r["port_code"] == "USLAX" and not r["suppressed"]
    }
    realised = {
        r["week"]: r["loaded_teu_in"]
        for r in aggregates.port.to_pylist()
        if r["level"] == "port_week" and r["port_code"] == "USLAX" and not r["suppressed"]
    }
    compared = sorted(w for w, h in forecasts if h == 4 and w in realised)
    assert compared, "no week of Los Angeles has both a published 4-week forecast and realised inbound"
    for week in compared:
        row = _row(warning, "USLAX", week)
        error = 100 * (forecasts[week, 4] - realised[week]) / realised[week]  # shown to 0.1 %
        assert row["forecast_4w_teu"] == forecasts[week, 4]
        assert row["forecast_4w_error_pct"] == pytest.approx(error, abs=0.05)
    # A forecast without realised inbound (Savannah is suppressed) gives no error.
    savannah = _row(warning, "USSAV", "2024-W05")
    assert savannah["forecast_1w_teu"] is not None and savannah["forecast_1w_error_pct"] is None


def test_recorded_bts_flags_join_the_land_ports_of_the_seaports_state_for_the_weeks_month(
    warning: duckdb.DuckDBPyConnection,
) -> None:
    # The recorded export holds Dec 2023 and Jan 2024: January overlaps W01..W04 of the generator's
    # weeks (W05's Thursday is 1 February). Texas has freight crossings in January; with no three
    # preceding months recorded, none can be assessed. California's only row is passengers.
    houston = _row(warning, "USHOU", "2024-W02")
    texas = warning.execute(
        "SELECT count(*) FROM marts.freight_exposure_border_ports WHERE state_usps = 'TX' AND month = DATE '2024-01-01'"
    ).fetchone()
    assert houston["bts_month"] == date(2024, 1, 1) and texas and texas[0] > 0
    assert (houston["land_port_measures"], houston["land_port_disruption"]) == (texas[0], None)
    assert (
        houston["land_port_detail"]
        == f"{texas[0]} freight port-measures in TX, none with a complete 3-month average to assess"
    )
    assert _row(warning, "USHOU", "2024-W05")["bts_month"] == date(2024, 2, 1)
    los_angeles = _row(warning, "USLAX", "2024-W02")
    assert los_angeles["land_port_measures"] == 0 and los_angeles["land_port_disruption"] is None
    assert los_angeles["land_port_detail"] == "no BTS freight crossings published for CA in this month"


def _with_cell(table: pa.Table, match: dict[str, object], values: dict[str, object]) -> pa.Table:
    """``table`` with the published values of the one row matching ``match`` replaced."""
    rows = table.to_pylist()
    (row,) = [r for r in rows if all(r[k] == v for k, v in match.items())]
    row.update({**values, "suppressed": False, "suppression_reason": None, "contributors": "3-4"})
    return pa.Table.from_pylist(rows, schema=table.schema)


def test_a_drop_and_a_forecast_miss_are_flagged_first_condition_first_with_their_figures(
    aggregates: Aggregates, registry: Registry, settings: Settings, layout: Layout
) -> None:
    # A constructed variant of the generator's public tables: Los Angeles' W11 falls to half, and
    # a 1-week forecast of W12 (suppressed in the generator's tables) is published 40 % low.
    los_angeles = {"level": "port_week", "port_code": "USLAX"}
    (w11,) = [r for r in aggregates.port.to_pylist() if r | los_angeles == r and r["week"] == "2024-W11"]
    (w12,) = [r for r in aggregates.port.to_pylist() if r | los_angeles == r and r["week"] == "2024-W12"]
    port = _with_cell(
        aggregates.port, {**los_angeles, "week": "2024-W11"}, {"loaded_teu_in": w11["loaded_teu_in"] // 2}
    )
    forecast = _with_cell(
        aggregates.forecast,
        {**los_angeles, "week": "2024-W12", "horizon_weeks": 1},
        {"teu_expected": round(0.6 * w12["loaded_teu_in"])},
    )
    publish_with_recorded_bts(registry, settings, port, forecast)
    with open_public(layout) as con:
        drop, miss = _row(con, "USLAX", "2024-W11"), _row(con, "USLAX", "2024-W12")
    ratio = drop["inbound_ratio"]
    assert drop["flag"] == "closure_or_drop" and isinstance(ratio, float) and ratio < 0.70
    assert str(drop["reason"]).startswith(
        f"closure_or_drop: inbound {w11['loaded_teu_in'] // 2:,.0f} TEU is {ratio:.2f} x"
    )
    # W12's baseline now holds the half week: the median of eight weeks is not moved by one.
    error = round(100 * (round(0.6 * w12["loaded_teu_in"]) - w12["loaded_teu_in"]) / w12["loaded_teu_in"], 1)
    assert (miss["flag"], miss["forecast_1w_error_pct"]) == ("forecast_miss", error)
    assert f"is {error:+.1f} % off the realised {round(w12['loaded_teu_in']):,} TEU" in str(miss["reason"])


def test_a_land_port_disruption_in_the_weeks_month_is_named_with_its_change(
    aggregates: Aggregates, registry: Registry, layout: Layout
) -> None:
    # Constructed months (the recording has no three-month history): Laredo's trucks fall 35 %
    # in April 2024, the month of W14..W17.
    months = [date(2024, m, 1) for m in (1, 2, 3, 4)]
    crossings = [_crossing(m, "Trucks", v) for m, v in zip(months, [1000, 1100, 900, 650], strict=True)]
    publish_fixture(layout, registry, {"bts_border_crossings": crossings})
    publish_flow_tables(layout, aggregates.port, aggregates.forecast)
    publish_marts(layout)
    with open_public(layout) as con:
        april = _row(con, "USHOU", "2024-W15")
        march = _row(con, "USHOU", "2024-W12")
    assert (april["land_port_disruptions"], april["land_port_disruption"]) == (1, True)
    assert april["land_port_detail"] == "Laredo 2304 Trucks -35.0 %"
    assert march["land_port_disruption"] is None  # March has no complete trailing average


def test_without_partner_aggregates_the_mart_is_left_out_with_the_reason(
    registry: Registry, settings: Settings, layout: Layout
) -> None:
    build = publish_with_recorded_bts(registry, settings, None, None)
    assert build.skipped[MART] == "inputs not published: flow_forecast_weekly, flow_port_weekly"
    assert MART not in build.failed and "freight_exposure_border_ports" not in build.skipped
    with open_public(layout) as con:
        assert not con.execute(
            "SELECT count(*) FROM duckdb_views() WHERE schema_name = 'marts' AND view_name = ?", [MART]
        ).fetchone()[0]  # type: ignore[index]
