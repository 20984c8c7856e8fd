"""``scdx report``: the risk report of the current release as one static, self-contained HTML page.

Every chart is rendered to inline SVG when the report is written (altair and vl-convert), so the
page opens offline, runs no script and loads nothing: no CDN, no font, no image file. Each chart
comes with its method, its data table, the release and runs it was drawn from, and a
"constructed" mark on every dataset whose values come from constructed recordings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
from jinja2 import Environment, PackageLoader, select_autoescape

from pipelines.common.errors import ScdxError
from pipelines.common.settings import Settings
from pipelines.contracts import Registry, load_registry, provenance_notes
from pipelines.report import charts_flows, charts_risk, charts_warning
from pipelines.report.figure import Figure, cell, mark_count, render_svg
from pipelines.report.release import (
    DatasetRuns,
    Release,
    TableRelease,
    current_release,
    dataset_runs,
    datasets_behind,
    table_releases,
)
from pipelines.store.layout import Layout
from pipelines.store.tiers import is_published, open_public, release_tables

__all__ = ["CHARTS", "WHEN_PUBLISHED", "ReportError", "write_report"]

Chart = Callable[[duckdb.DuckDBPyConnection], Figure]

# The report's charts in page order, each with the tables it needs in the release.
CHARTS: tuple[tuple[Chart, tuple[str, ...]], ...] = (
    (charts_risk.scorecard, ("marts.supply_chain_scorecard",)),
    (charts_risk.import_concentration, ("marts.import_concentration",)),
    (charts_risk.world_production, ("curated.usgs_mineral_production", "curated.ref_feoc_countries")),
    (charts_flows.freight_modes, ("marts.freight_exposure",)),
    (charts_flows.border_ports, ("marts.freight_exposure_border_ports",)),
    (charts_flows.workforce, ("marts.workforce_capacity",)),
)
# Charts shown only when their tables are in the release (else left out, not listed as missing):
# the partner data's, which exist only once FLOW partners have submitted.
WHEN_PUBLISHED: tuple[tuple[Chart, tuple[str, ...]], ...] = (
    (charts_warning.flow_warning, (charts_warning.MART,)),
)


class ReportError(ScdxError):
    """The report cannot be written (nothing is published yet)."""


@dataclass(frozen=True)
class Section:
    """A chart as the page shows it: drawn (figure, SVG, sources) or missing from the release."""

    key: str
    title: str
    figure: Figure | None = None
    svg: str = ""
    marks: int = 0
    tables: tuple[TableRelease, ...] = ()
    datasets: tuple[DatasetRuns, ...] = ()
    mart_methods: tuple[tuple[str, str], ...] = ()
    missing: tuple[str, ...] = ()


def _tables_present(con: duckdb.DuckDBPyConnection) -> set[str]:
    return set(release_tables(con, ["curated", "marts"]))


def _mart_methods(con: duckdb.DuckDBPyConnection, tables: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    comments = release_tables(con, ["marts"])
    return tuple((table, comments[table]) for table in tables if comments.get(table))


def _section(
    con: duckdb.DuckDBPyConnection,
    chart: Chart,
    needs: tuple[str, ...],
    release: Release,
    settings: Settings,
    registry: Registry,
) -> Section:
    key = chart.__name__
    missing = tuple(t for t in needs if t not in _tables_present(con))
    if missing:
        return Section(key, (chart.__doc__ or key).strip().splitlines()[0], missing=missing)
    figure = chart(con)
    svg = render_svg(figure.chart)
    # Tables published without a contract of their own (the partner aggregates, which disclosure
    # control publishes) have no runs to list; their figure's notes say where their values come from.
    runs = tuple(
        dataset_runs(con, d, release.version, settings.recordings_dir, registry)
        for d in datasets_behind(figure.reads)
        if d in registry.contracts
    )
    return Section(
        key=figure.key,
        title=figure.title,
        figure=figure,
        svg=svg,
        marks=mark_count(svg),
        tables=tuple(table_releases(con, figure.reads)),
        datasets=runs,
        mart_methods=_mart_methods(con, figure.reads),
    )


def write_report(settings: Settings, out_dir: Path) -> Path:
    """Write the report of the current public release to ``out_dir/index.html``; returns its path.

    Raises ReportError when nothing is published yet in the data directory.
    """
    layout = Layout(settings.data_dir)
    if not is_published(layout):
        raise ReportError(
            f"nothing published yet in {settings.data_dir}: run `scdx refresh` (or `scdx demo`) first"
        )
    registry = load_registry(settings.schemas_dir)
    with open_public(layout) as con:
        release = current_release(con)
        present = _tables_present(con)
        charts = [*CHARTS, *((c, n) for c, n in WHEN_PUBLISHED if present.issuperset(n))]
        sections = [_section(con, chart, needs, release, settings, registry) for chart, needs in charts]
    folders = {r.provenance.folder for s in sections for r in s.datasets if r.provenance.folder}
    env = Environment(
        loader=PackageLoader("pipelines.report", "templates"), autoescape=select_autoescape(["html"])
    )
    env.filters["cell"] = cell
    page = env.get_template("report.html").render(
        release=release,
        sections=sections,
        notes=provenance_notes(settings.recordings_dir, folders),
        data_dir=settings.data_dir,
        generated_at=datetime.now(UTC).replace(microsecond=0),
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    index = out_dir / "index.html"
    index.write_text(page, encoding="utf-8")
    return index
