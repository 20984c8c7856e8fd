"""The risk report's disruption early-warning timeline (issue 23): drawn offline from
marts.flow_disruption_warning when partner aggregates are published, absent when they are not."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pytest

from pipelines.common.settings import Settings
from pipelines.contracts import Registry
from pipelines.report import write_report
from pipelines.report.charts_warning import flow_warning
from pipelines.store.layout import Layout
from pipelines.store.tiers import open_public

from .flow_tables import generated_aggregates, publish_with_recorded_bts

KEY = "flow_warning"


@pytest.fixture(scope="module")
def aggregates(tmp_path_factory: pytest.TempPathFactory) -> tuple[pa.Table, pa.Table]:
    return generated_aggregates(tmp_path_factory.mktemp("flow"))


def _section(page: str, key: str) -> str | None:
    parts = re.split(r'<section id="([a-z_]+)" class="figure">', page)
    return dict(zip(parts[1::2], parts[2::2], strict=True)).get(key)


def test_the_timeline_draws_each_port_with_flagged_weeks_and_suppressed_gaps_offline(
    aggregates: tuple[pa.Table, pa.Table], registry: Registry, settings: Settings, tmp_path: Path
) -> None:
    publish_with_recorded_bts(registry, settings, *aggregates)
    page = write_report(settings, tmp_path / "report").read_text(encoding="utf-8")
    section = _section(page, KEY)
    assert section is not None, "the timeline is missing although the mart is published"
    assert f'<a href="#{KEY}">Disruption early warning: container ports week by week</a></li>' in page
    svg = section.split('<p class="method">')[0]
    assert "<svg" in svg and "<script" not in svg and "http://" not in svg.replace("http://www.w3.org", "")
    # One panel per port (all three, the two always suppressed ones included).
    for port in ("USHOU Houston", "USLAX Los Angeles", "USSAV Savannah"):
        assert f">{port}</text>" in svg, port
    # The surge weeks are diamonds whose hover title gives the flag and the reason's ratio.
    surge = re.findall(
        r"<title>[^<]*flag: surge; port: USLAX Los Angeles; week: 2024-W2[0-3]; "
        r"reason: surge: inbound [\d,]+ TEU is 1\.\d\d x its 8-week median [^<]*</title>",
        svg,
    )
    assert len(surge) == 4
    # Suppressed weeks are grey bands labelled suppressed, with the reason on hover; Los Angeles'
    # complementary W14 is one of them.
    assert ">suppressed (complementary)</text>" in svg and ">suppressed (too_few_partners)</text>" in svg
    assert re.search(r"<title>[^<]*port: USLAX Los Angeles; week: 2024-W14; suppressed: complementary;", svg)
    assert "Constructed partner data" in section
    assert re.search(r"4 of 78 port-weeks flagged \(surge 4\); 53 suppressed\.", section)


def test_no_line_crosses_a_suppressed_week(
    aggregates: tuple[pa.Table, pa.Table], registry: Registry, settings: Settings, layout: Layout
) -> None:
    publish_with_recorded_bts(registry, settings, *aggregates)
    with open_public(layout) as con:
        figure = flow_warning(con)
    rows = [dict(zip(figure.table.columns, r, strict=True)) for r in figure.table.rows]
    segment = {r["week"]: r["segment"] for r in rows if r["port"].startswith("USLAX")}
    # Lines are drawn per segment: W13 and W15 lie on either side of the suppressed W14.
    assert segment["2024-W13"] != segment["2024-W15"]
    assert segment["2024-W01"] == segment["2024-W13"] and segment["2024-W15"] == segment["2024-W26"]
    values = [r["loaded_teu_in"] for r in rows if r["suppressed"]]
    assert values and values == [None] * len(values)


def test_without_partner_aggregates_the_report_has_no_timeline_and_no_missing_entry(
    registry: Registry, settings: Settings, tmp_path: Path
) -> None:
    publish_with_recorded_bts(registry, settings, None, None)
    page = write_report(settings, tmp_path / "report").read_text(encoding="utf-8")
    assert _section(page, KEY) is None and f'href="#{KEY}"' not in page
    assert _section(page, "border_ports") is not None  # the rest of the report is there
