"""`scdx report`: the risk report of the current release, one static HTML page that opens offline.

The report is written from the database `scdx demo` builds over the bundled recordings, then
loaded by a real browser (Debian's headless chromium), which must draw every chart."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest

from devtools import PROJECT_ROOT
from pipelines.report import CHARTS, WHEN_PUBLISHED

SCDX = str(Path(sys.executable).parent / "scdx")
CHROMIUM = "/usr/bin/chromium"
# The demo publishes partner data, so the charts shown only when their tables exist are in it too.
CHART_KEYS = [chart.__name__ for chart, _ in (*CHARTS, *WHEN_PUBLISHED)]
# Set to a path (docs/img/report.png) to refresh the screenshot the analyst guide shows.
SCREENSHOT_COPY = os.environ.get("SCDX_REPORT_SCREENSHOT")


@pytest.fixture(scope="module")
def report(demo_run: tuple[Path, subprocess.CompletedProcess[str]]) -> tuple[Path, Path, str]:
    """The demo's data dir, the report `scdx report` wrote into it, and what the command printed.
    The session's one `scdx demo` (tests/conftest.py): the report adds report/ to it, and these
    tests only read it."""
    data_dir, demo = demo_run
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    env = {**os.environ, "SCDX_DATA_DIR": str(data_dir), "COLUMNS": "220"}
    result = subprocess.run([SCDX, "report"], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return data_dir, data_dir / "report" / "index.html", result.stdout


def _sections(page: str) -> dict[str, str]:
    """Each chart's section of the page, by chart key."""
    parts = re.split(r'<section id="([a-z_]+)" class="figure">', page)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_scdx_report_writes_the_page_under_the_data_dir_and_prints_its_path(
    report: tuple[Path, Path, str],
) -> None:
    data_dir, _, stdout = report
    assert f"risk report written: {data_dir / 'report' / 'index.html'}" in stdout
    assert (data_dir / "report" / "index.html").is_file()


def test_every_chart_has_its_svg_method_data_table_and_the_release_and_runs_it_came_from(
    report: tuple[Path, Path, str],
) -> None:
    data_dir, index, _ = report
    page = index.read_text()
    with duckdb.connect(str(data_dir / "scdx.duckdb"), read_only=True) as con:
        (release,) = con.execute("SELECT max(version) FROM meta.publishes").fetchone() or (None,)
        scorecard_rows = con.execute("SELECT count(*) FROM marts.supply_chain_scorecard").fetchone()
        runs = dict(
            con.execute(
                "SELECT dataset, arg_max(run_id, finished_at) FROM meta.runs WHERE status = 'published' GROUP BY ALL"
            ).fetchall()
        )
    assert f"Release <strong>{release}</strong>" in page
    sections = _sections(page)
    assert list(sections) == CHART_KEYS
    for key, section in sections.items():
        assert f'<div class="chart" data-chart="{key}"' in section and "<svg" in section, key
        assert '<p class="method"><strong>Method.</strong>' in section, key
        assert f"From release {release}" in section and "built in release" in section, key
        rows = re.search(r"Data table \(([\d,]+) rows\)", section)
        assert rows and int(rows.group(1).replace(",", "")) > 0, key
    assert f"Data table ({scorecard_rows[0] if scorecard_rows else 0} rows)" in sections["scorecard"]
    # The runs behind each chart, by id: the scorecard reads every dataset but EIA and AFDC.
    for dataset in (
        "census_trade_imports",
        "usgs_mineral_production",
        "bls_qcew_industry",
        "faf5_regional_flows",
    ):
        assert runs[dataset] in sections["scorecard"], dataset
    assert runs["bts_border_crossings"] in sections["border_ports"]
    # The method the mart states in the release comes with its chart.
    assert "marts.import_concentration</strong>: Import concentration per HS heading" in page


def test_datasets_whose_recordings_are_constructed_are_marked_and_linked_to_their_provenance(
    report: tuple[Path, Path, str],
) -> None:
    _, index, _ = report
    sections = _sections(index.read_text())
    marks = {
        (key, dataset): kind
        for key, section in sections.items()
        for dataset, kind in re.findall(r'data-dataset="(\w+)" data-provenance="(\w+)"', section)
    }
    assert marks[("import_concentration", "census_trade_imports")] == "constructed"
    assert marks[("workforce", "bls_qcew_industry")] == "constructed"
    assert marks[("freight_modes", "faf5_regional_flows")] == "constructed"
    # Real agency values, served by the offline replay: recorded, not constructed.
    assert marks[("world_production", "usgs_mineral_production")] == "recorded"
    assert marks[("border_ports", "bts_border_crossings")] == "recorded"
    page = index.read_text()
    for folder in ("census_intltrade", "bls_qcew", "faf5", "usgs_mcs", "bts_border_crossing"):
        assert f'href="#provenance-{folder}"' in page, folder
        assert f'<h3 id="provenance-{folder}">{folder}/' in page, folder
    assert "**constructed**: 0.25×, 1.6×, 1.5× the China value" in page  # the provenance note itself


def test_the_page_loads_nothing_from_the_network_and_runs_no_script(report: tuple[Path, Path, str]) -> None:
    _, index, _ = report
    page = index.read_text()
    resources = re.findall(r'(?:src|href|xlink:href)\s*=\s*"([^"]*)"', page) + re.findall(
        r"url\(([^)]*)\)", page
    )
    assert [r for r in resources if not r.startswith("#")] == []
    assert "<script" not in page and "<link" not in page and "@import" not in page
    assert "<iframe" not in page and "<img" not in page


def test_nothing_published_yet_is_one_line_and_exit_code_1(tmp_path: Path) -> None:
    env = {**os.environ, "SCDX_DATA_DIR": str(tmp_path / "empty"), "COLUMNS": "1000"}
    result = subprocess.run([SCDX, "report"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"scdx: nothing published yet in {tmp_path / 'empty'}: run `scdx refresh` (or `scdx demo`) first"
    ]
    assert not (tmp_path / "empty" / "report").exists()


class _Charts(HTMLParser):
    """Per chart container of a DOM: the marks drawn in its SVG and those with a hover title."""

    def __init__(self) -> None:
        super().__init__()
        self.marks: dict[str, int] = {}
        self.titled: dict[str, int] = {}
        self.expected: dict[str, int] = {}
        self._chart: str | None = None
        self._depth = 0
        self._in_mark = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "div" and "data-chart" in attributes:
            self._chart, self._depth = attributes["data-chart"], 0
            self.marks[self._chart] = self.titled[self._chart] = 0
            self.expected[self._chart] = int(attributes.get("data-marks") or 0)
        if self._chart is None:
            return
        if tag == "div":
            self._depth += 1
        if attributes.get("role") == "graphics-symbol" and tag in {"path", "rect", "circle", "line", "text"}:
            self.marks[self._chart] += 1
            self._in_mark = True
        elif tag == "title" and self._in_mark:
            self.titled[self._chart] += 1
            self._in_mark = False

    def handle_endtag(self, tag: str) -> None:
        if self._chart is not None and tag == "div":
            self._depth -= 1
            if self._depth == 0:
                self._chart = None


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(
            f"{CHROMIUM} is missing: the report is tested in a real browser; install it with `apt-get install -y chromium`"
        )
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            f"--user-data-dir={profile}",
            # Any request that left the machine would fail: the page must not need one.
            "--host-resolver-rules=MAP * ~NOTFOUND",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_chromium_draws_every_chart_with_marks_and_hover_titles_and_takes_a_screenshot(
    report: tuple[Path, Path, str], tmp_path: Path
) -> None:
    _, index, _ = report
    url = index.resolve().as_uri()
    dom = _chromium("--dump-dom", url, profile=tmp_path / "profile-dom")
    assert dom.returncode == 0, dom.stderr[-3000:]
    charts = _Charts()
    charts.feed(dom.stdout)
    assert list(charts.marks) == CHART_KEYS
    for key in CHART_KEYS:
        assert charts.marks[key] > 0, f"{key}: the browser drew no marks"
        assert charts.marks[key] == charts.expected[key], key
        assert charts.titled[key] == charts.marks[key], f"{key}: marks without a hover title"
    screenshot = tmp_path / "report.png"
    shot = _chromium(
        f"--screenshot={screenshot}", "--window-size=1400,4000", url, profile=tmp_path / "profile-shot"
    )
    assert shot.returncode == 0, shot.stderr[-3000:]
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and screenshot.stat().st_size > 100_000
    if SCREENSHOT_COPY:
        shutil.copyfile(screenshot, PROJECT_ROOT / SCREENSHOT_COPY)
