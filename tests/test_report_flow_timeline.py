"""The risk report's disruption early-warning timeline (issue 23): drawn offline from
marts.flow_disruption_warning when partner aggregates are published, absent when they are not."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipelines.common.settings import Settings
from pipelines.contracts import Registry
from pipelines.report import write_report
from pipelines.report.charts_warning import flow_warning
from pipelines.store.layout import Layout
from pipelines.store.tiers import open_public

from .flow_release import flow_release, ingest_recorded_bts

KEY = "flow_warning"


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory, registry: Registry) -> Settings:
    return flow_release(registry, tmp_path_factory.mktemp("flow") / "data")


def _section(page: str, key: str) -> str | None:
    parts = re.split(r'<section id="([a-z_]+)" class="figure">', page)
    return dict(zip(parts[1::2], parts[2::2], strict=True)).get(key)


def test_the_timeline_draws_each_port_with_flagged_weeks_and_suppressed_gaps_offline(
    release: Settings, tmp_path: Path
) -> None:
    page = write_report(release, tmp_path / "report").read_text(encoding="utf-8")
    section = _section(page, KEY)
    assert section is not None, "the timeline is missing although the mart is published"
    assert f'<a href="#{KEY}">Disruption early warning: container ports week by week</a></li>' in page
    svg = section.split('<p class="method">')[0]
    assert "<svg" in svg and "<script" not in svg and "http://" not in svg.replace("http://www.w3.org", "")
    # One panel per port (all four, the two always suppressed ones included).
    for port in ("USCHS Charleston", "USHOU Houston", "USLAX Los Angeles", "USSAV Savannah"):
        assert f">{port}</text>" in svg, port
    # The surge weeks are diamonds whose hover title gives the flag and the reason's ratio.
    surge = re.findall(
        r"<title>[^<]*flag: surge; port: USLAX Los Angeles; week: 2024-W2[0-3]; "
        r"reason: surge: inbound [\d,]+ TEU is 1\.\d\d x its 8-week median [^<]*</title>",
        svg,
    )
    assert len(surge) == 4
    # Houston's storm closure is a diamond too, its reason giving the drop and the forecast miss.
    closure = re.findall(
        r"<title>[^<]*flag: closure_or_drop; port: USHOU Houston; week: 2024-W1[45]; "
        r"reason: closure_or_drop: inbound [\d,]+ TEU is 0\.\d\d x its 8-week median [^<]*forecast_miss[^<]*</title>",
        svg,
    )
    assert len(closure) == 2
    # Suppressed weeks are grey bands labelled suppressed, with the reason on hover.
    assert ">suppressed (dominant_partner)</text>" in svg and ">suppressed (too_few_partners)</text>" in svg
    assert re.search(
        r"<title>[^<]*port: USCHS Charleston; week: 2024-W14; suppressed: too_few_partners;", svg
    )
    assert "Constructed partner data" in section
    assert re.search(r"6 of 104 port-weeks flagged \(closure_or_drop 2, surge 4\); 52 suppressed\.", section)


def test_no_line_crosses_a_suppressed_week(release: Settings) -> None:
    with open_public(Layout(release.data_dir)) as con:
        figure = flow_warning(con)
    rows = [dict(zip(figure.table.columns, r, strict=True)) for r in figure.table.rows]
    segments = {
        port: [r["segment"] for r in rows if r["port"].startswith(port)] for port in ("USHOU", "USSAV")
    }
    # Lines are drawn per segment: Houston publishes every week (its closure included), one line;
    # every week of Savannah is suppressed, so no two of its weeks share a segment.
    assert len(segments["USHOU"]) == 26 and len(set(segments["USHOU"])) == 1
    assert len(segments["USSAV"]) == 26 and len(set(segments["USSAV"])) == 26
    values = [r["loaded_teu_in"] for r in rows if r["suppressed"]]
    assert len(values) == 52 and values == [None] * len(values)


def test_without_partner_aggregates_the_report_has_no_timeline_and_no_missing_entry(
    registry: Registry, settings: Settings, tmp_path: Path
) -> None:
    ingest_recorded_bts(registry, settings)
    page = write_report(settings, tmp_path / "report").read_text(encoding="utf-8")
    assert _section(page, KEY) is None and f'href="#{KEY}"' not in page
    assert _section(page, "border_ports") is not None  # the rest of the report is there
