"""The disruption early-warning mart (issue 23) on the real FLOW path: the generator's partner
submissions signed, ingested into the restricted tier and published as disclosure-controlled
aggregates (which rebuilds the marts), beside the recorded BTS border-crossing export."""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from datetime import date

import duckdb
import pytest

from pipelines.cli.flow_demo import submit_and_ingest
from pipelines.common.settings import Settings
from pipelines.contracts import Registry
from pipelines.marts import publish_marts
from pipelines.store.layout import Layout
from pipelines.store.tiers import open_public

from .flow_release import flow_release, ingest_recorded_bts
from .test_marts import _crossing, publish_fixture

MART = "flow_disruption_warning"


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory, registry: Registry) -> Settings:
    return flow_release(registry, tmp_path_factory.mktemp("flow") / "data")


@pytest.fixture
def warning(release: Settings) -> Iterator[duckdb.DuckDBPyConnection]:
    with open_public(Layout(release.data_dir)) as con:
        yield con


def _row(con: duckdb.DuckDBPyConnection, port: str, week: str) -> dict[str, object]:
    cursor = con.execute(f"SELECT * FROM marts.{MART} WHERE port_code = ? AND week = ?", [port, week])
    columns = [d[0] for d in cursor.description or []]
    (row,) = cursor.fetchall()
    return dict(zip(columns, row, strict=True))


def _published(con: duckdb.DuckDBPyConnection, table: str, port: str, horizon: int = 0) -> dict[str, float]:
    """``{week: value}`` of the published port_week cells of ``port`` in the public ``table``
    (loaded inbound TEUs, or the forecast TEUs of ``horizon``)."""
    value = "teu_expected" if horizon else "loaded_teu_in"
    where = f"horizon_weeks = {horizon}" if horizon else "true"
    sql = f"SELECT week, {value} FROM curated.{table} WHERE level = 'port_week' AND port_code = ? AND NOT suppressed"
    return dict(con.execute(f"{sql} AND {where}", [port]).fetchall())


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
        # The shippers foresaw part of the surge: their 1-week index rose with it, no miss.
        assert float(row["forecast_1w_index"]) > 1.1 and "forecast_miss" not in str(row["reason"])  # type: ignore[arg-type]
    flagged = warning.execute(
        f"SELECT week FROM marts.{MART} WHERE port_code = 'USLAX' AND flag <> 'none' ORDER BY week"
    ).fetchall()
    assert flagged == [("2024-W20",), ("2024-W21",), ("2024-W22",), ("2024-W23",)]


def test_houstons_storm_closure_is_flagged_closure_or_drop_and_a_forecast_miss(
    warning: duckdb.DuckDBPyConnection,
) -> None:
    for week in ("2024-W14", "2024-W15"):
        row = _row(warning, "USHOU", week)
        ratio, gap = row["inbound_ratio"], row["forecast_1w_gap"]
        assert row["suppressed"] is False and row["flag"] == "closure_or_drop", (week, row["reason"])
        assert isinstance(ratio, float) and ratio < 0.70 and isinstance(gap, float) and gap > 0.25
        assert str(row["reason"]).startswith(
            f"closure_or_drop: inbound {row['loaded_teu_in']:,.0f} TEU is {ratio:.2f} x its 8-week median"
        )
        # The shippers did not see the storm coming: their forecast index stayed near 1.
        assert (
            f"forecast_miss: the 1-week forecast index {row['forecast_1w_index']:.2f} against the realised index {ratio:.2f}"
            in str(row["reason"])
        )
    flagged = warning.execute(
        f"SELECT week FROM marts.{MART} WHERE port_code = 'USHOU' AND flag <> 'none' ORDER BY week"
    ).fetchall()
    assert flagged == [("2024-W14",), ("2024-W15",)]


def test_a_week_whose_port_cell_is_suppressed_has_no_indicator_and_says_why(
    warning: duckdb.DuckDBPyConnection,
) -> None:
    # Charleston has two partners (too few) and Savannah one dominant terminal: every week suppressed.
    for port, reason in (("USCHS", "too_few_partners"), ("USSAV", "dominant_partner")):
        row = _row(warning, port, "2024-W14")
        assert row["suppressed"] is True and row["suppression_reason"] == reason
        indicators = ("loaded_teu_in", "baseline_teu_in", "inbound_ratio", "dwell_days", "dwell_excess_days")
        gaps = ("forecast_1w_index", "forecast_4w_index", "forecast_1w_gap", "forecast_4w_gap")
        assert [row[c] for c in (*indicators, *gaps, "flag")] == [None] * 10
        assert row["reason"] == (
            f"suppressed: the port's cell for this week is suppressed ({reason}), so no indicator is published"
        )
    suppressed = warning.execute(
        f"SELECT DISTINCT port_code FROM marts.{MART} WHERE suppressed ORDER BY port_code"
    ).fetchall()
    assert suppressed == [("USCHS",), ("USSAV",)]


def test_the_baseline_needs_eight_published_weeks(warning: duckdb.DuckDBPyConnection) -> None:
    published = _published(warning, "flow_port_weekly", "USLAX")
    early = _row(warning, "USLAX", "2024-W08")
    assert (early["baseline_weeks"], early["baseline_teu_in"], early["flag"]) == (7, None, None)
    assert early["reason"] == "no baseline: 7 of the 8 published weeks it needs in the 12 weeks before"
    first = _row(warning, "USLAX", "2024-W09")
    weeks = [f"2024-W{w:02d}" for w in range(1, 9)]
    assert first["baseline_weeks"] == 8
    assert first["baseline_teu_in"] == pytest.approx(statistics.median(published[w] for w in weeks), abs=0.5)
    # Houston's W16: the closure weeks are two of its eight, and the median is not moved by them.
    after = _row(warning, "USHOU", "2024-W16")
    houston = _published(warning, "flow_port_weekly", "USHOU")
    weeks = [f"2024-W{w:02d}" for w in range(8, 16)]
    assert after["baseline_teu_in"] == pytest.approx(statistics.median(houston[w] for w in weeks), abs=0.5)
    assert after["flag"] == "none"


def test_the_forecast_index_is_compared_with_the_realised_index_not_with_total_inbound(
    warning: duckdb.DuckDBPyConnection,
) -> None:
    for port in ("USLAX", "USHOU"):
        realised = _published(warning, "flow_port_weekly", port)
        forecast = {horizon: _published(warning, "flow_forecast_weekly", port, horizon) for horizon in (1, 4)}
        compared = 0
        for number in range(13, 27):
            week = f"2024-W{number:02d}"
            baseline_weeks = [f"2024-W{w:02d}" for w in range(number - 8, number)]  # all published here
            row = _row(warning, port, week)
            ratio = realised[week] / statistics.median(realised[w] for w in baseline_weeks)
            for horizon in (1, 4):
                index = forecast[horizon][week] / statistics.median(
                    forecast[horizon][w] for w in baseline_weeks
                )
                assert row[f"forecast_{horizon}w_index"] == pytest.approx(index, abs=0.0006), (port, week)
                assert row[f"forecast_{horizon}w_gap"] == pytest.approx(index - ratio, abs=0.0006), (
                    port,
                    week,
                )
            compared += 1
            missed = abs(index_1w := row["forecast_1w_gap"]) > 0.25  # type: ignore[arg-type]
            assert ("forecast_miss" in str(row["reason"])) == missed, (port, week, index_1w)
        assert compared == 14
    # The shippers carry about 30 % of the port's inbound: their TEUs are far below it, which is
    # not a miss (the old comparison with total inbound was -70 % every week).
    row = _row(warning, "USLAX", "2024-W13")
    assert float(row["forecast_1w_teu"]) < 0.5 * float(row["loaded_teu_in"]) and row["flag"] == "none"  # type: ignore[arg-type]
    # A forecast without realised inbound (Savannah is suppressed) gives no index.
    savannah = _row(warning, "USSAV", "2024-W13")
    assert savannah["forecast_1w_teu"] is not None and savannah["forecast_1w_index"] is None


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


def test_a_land_port_disruption_in_the_weeks_month_is_named_with_its_change(
    registry: Registry, settings: Settings, layout: Layout
) -> None:
    # Constructed months (the recording has no three-month history): Laredo's trucks fall 35 %
    # in April 2024, the month of W14..W17.
    months = [date(2024, m, 1) for m in (1, 2, 3, 4)]
    crossings = [_crossing(m, "Trucks", v) for m, v in zip(months, [1000, 1100, 900, 650], strict=True)]
    publish_fixture(layout, registry, {"bts_border_crossings": crossings})
    submit_and_ingest(settings)
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
    ingest_recorded_bts(registry, settings)
    build = publish_marts(layout)
    assert build.skipped[MART] == "inputs not published: flow_forecast_weekly, flow_port_weekly"
    assert MART not in build.failed and "freight_exposure_border_ports" not in build.skipped
    with open_public(layout) as con:
        assert not con.execute(
            "SELECT count(*) FROM duckdb_views() WHERE schema_name = 'marts' AND view_name = ?", [MART]
        ).fetchone()[0]  # type: ignore[index]
