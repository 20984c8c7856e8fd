"""What every chart of the report is made of: the chart, its data table, its method and the
tables it reads; the rows it draws, read from the release; the chart rendered to static SVG.

Charts are Vega-Lite specifications built with altair and rendered to SVG by vl-convert (the
Vega engine compiled into a Python wheel), so the report needs no JavaScript and no network.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import altair as alt
import duckdb

Row = dict[str, Any]


@dataclass(frozen=True)
class Table:
    """A chart's data table: column names and rows, as drawn."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]

    def records(self) -> list[Row]:
        """The rows as JSON-ready records (dates as ISO text, decimals as floats), for the chart."""
        return [{c: _json_value(v) for c, v in zip(self.columns, row, strict=True)} for row in self.rows]


@dataclass(frozen=True)
class Figure:
    """One chart of the report: what it shows, how it was computed and what it reads."""

    key: str
    title: str
    chart: alt.TopLevelMixin
    table: Table
    method: str
    reads: tuple[str, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def read_table(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> Table:
    """The rows of a query of the release, with their column names."""
    cursor = con.execute(sql, params or [])
    columns = tuple(d[0] for d in cursor.description or [])
    return Table(columns, tuple(tuple(row) for row in cursor.fetchall()))


def chart_data(table: Table) -> alt.InlineData:
    """The table as inline chart data (no file, no URL)."""
    return alt.InlineData(values=table.records())


# A drawn mark (Vega's SVG gives each one role="graphics-symbol") with its tooltip as aria-label.
_MARK = re.compile(r'<(path|rect|circle|line|text)\b([^>]*?role="graphics-symbol"[^>]*?)(/?)>')
_LABEL = re.compile(r'aria-label="([^"]*)"')


def _with_hover_title(match: re.Match[str]) -> str:
    tag, attributes, self_closing = match.group(1), match.group(2), match.group(3)
    label = _LABEL.search(attributes)
    if label is None:
        return match.group(0)
    title = f"<title>{label.group(1)}</title>"  # already escaped as an attribute value
    if self_closing:
        return f"<{tag}{attributes}>{title}</{tag}>"
    return f"<{tag}{attributes}>{title}"


def render_svg(chart: alt.TopLevelMixin) -> str:
    """The chart as inline SVG; each mark carries its tooltip as an SVG <title>, which browsers
    show on hover without any script."""
    import vl_convert

    styled = chart.configure_axis(labelFontSize=12, titleFontSize=12, labelLimit=300).configure_legend(
        labelFontSize=12, titleFontSize=12, titleLimit=500, labelLimit=320
    )
    svg: str = vl_convert.vegalite_to_svg(styled.to_dict())
    return _MARK.sub(_with_hover_title, svg)


def mark_count(svg: str) -> int:
    """How many marks a rendered chart drew."""
    return len(_MARK.findall(svg))


def cell(value: Any) -> str:
    """A value as the data table shows it (thousands separated, no trailing zeros, empty for null)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float | Decimal):
        number = float(value)
        return f"{number:,.0f}" if abs(number) >= 1000 else f"{number:,.2f}".rstrip("0").rstrip(".")
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)
