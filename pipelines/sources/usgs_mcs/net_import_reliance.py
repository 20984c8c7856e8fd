"""Figure 2 net import reliance (``MCS2024_Fig2_Net_Import_Reliance.csv``, usgs_mineral_salient).

Header: ``Source, Import_Share_Order, Commodity, Net_Import_Reliance_pct_<year>,
Major_Import_Sources_<y>_<y>, Notes``: one figure per commodity, for the year its column names,
with the major import sources of the period theirs names.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from pipelines.contracts import Contract, Registry
from pipelines.sources import DriftEvent, DriftRejected, RawPage, SourceRows
from pipelines.sources.usgs_mcs.figures import Cell, LongRows, checked_cell, flag
from pipelines.sources.usgs_mcs.names import commodity_mineral, mineral_names
from pipelines.sources.usgs_mcs.salient import SALIENT_VALUE_FIELDS
from pipelines.sources.usgs_mcs.table import (
    NET_IMPORT_RELIANCE_COLUMN,
    Table,
    clean,
    edition_of,
    unknown_columns,
)

_IMPORT_SOURCES = re.compile(r"^major_import_sources_(\d{4})_(\d{4})$", re.IGNORECASE)


@dataclass(frozen=True)
class ImportSourcesColumn:
    """The major import sources column and the period its name gives (``2019-2022``)."""

    position: int
    period: str


@dataclass(frozen=True)
class FigureTwo:
    """Where a Figure 2 table holds what: the figure, its year, the import sources, the notes."""

    table: Table
    source_at: int | None
    commodity_at: int
    figure_at: int
    year: int
    import_sources: ImportSourcesColumn | None
    notes_at: int | None
    unknown: list[int]  # columns this reader does not know, passed on for the drift policy

    def columns(self, cells: list[str], edition: str, cell: Cell) -> dict[str, str | None]:
        """One row's agency-named columns; the salient statistics' columns are there, empty."""
        sources = self.import_sources
        columns: dict[str, str | None] = {
            "DataSource": edition,
            "Commodity": clean(cells[self.commodity_at]),
            "Year": str(self.year),
            "NetImportReliance": cell.number,
            "Major_Import_Sources": (clean(cells[sources.position]) or None) if sources else None,
            "Notes": (clean(cells[self.notes_at]) or None) if self.notes_at is not None else None,
        }
        for value_column in SALIENT_VALUE_FIELDS:
            columns.setdefault(value_column, None)
        for position_unknown in self.unknown:
            columns[self.table.header[position_unknown]] = clean(cells[position_unknown]) or None
        return columns

    def derived(self, cell: Cell, mineral: str | None) -> dict[str, str | None]:
        """One row's values computed here: what the figure is, and how it was published."""
        return {
            "source_table": "net_import_reliance",
            "mineral": mineral,
            "measure": "net_import_reliance",
            "form": "all",
            "unit": "percent",
            "value_qualifier": cell.qualifier,
            "withheld": flag(cell.withheld),
            "published_value": cell.published,
            "source_column": self.table.header[self.figure_at],
            "import_sources_period": self.import_sources.period if self.import_sources else None,
        }


def figure_two(page: RawPage, contract: Contract, table: Table) -> FigureTwo:
    """The columns of a Figure 2 table from its header; one without a Commodity column is drift."""
    source_at, commodity_at = table.index("Source"), table.index("Commodity")
    if commodity_at is None:
        raise DriftRejected(
            contract.dataset,
            page.path,
            DriftEvent("commodity", "missing_field", "rejected", f"{table.name} has no Commodity column"),
        )
    figure_at, year = next(
        (p, int(m.group(1))) for p, h in enumerate(table.header) if (m := NET_IMPORT_RELIANCE_COLUMN.match(h))
    )
    sources = next(
        (
            ImportSourcesColumn(p, f"{m.group(1)}-{m.group(2)}")
            for p, h in enumerate(table.header)
            if (m := _IMPORT_SOURCES.match(h))
        ),
        None,
    )
    notes_at = table.index("Notes")
    # Import_Share_Order is the figure's display order (by reliance): not a figure, not loaded.
    order_at = table.index("Import_Share_Order")
    known = {p for p in (source_at, commodity_at, figure_at, notes_at, order_at) if p is not None}
    if sources is not None:
        known.add(sources.position)
    unknown = unknown_columns(table, known)
    return FigureTwo(table, source_at, commodity_at, figure_at, year, sources, notes_at, unknown)


def net_import_reliance_rows(
    page: RawPage, contract: Contract, registry: Registry, table: Table
) -> Iterator[SourceRows]:
    """Figure 2: one net import reliance figure per commodity, with its major import sources."""
    figure = figure_two(page, contract, table)
    edition = edition_of(page, contract, table, figure.source_at)
    names = mineral_names(registry)
    rows = LongRows({}, {})
    for row, cells in table.rows:
        cell = checked_cell(
            cells[figure.figure_at],
            page,
            contract,
            "net_import_reliance_pct",
            table.header[figure.figure_at],
            row,
        )
        mineral = commodity_mineral(clean(cells[figure.commodity_at]), names)
        rows.add(figure.columns(cells, edition, cell), figure.derived(cell, mineral))
    yield SourceRows(columns=rows.columns, source_rows=len(table.rows), derived=rows.derived)
