"""World mine production and reserves (``mcs2024-lithi_world.csv``, usgs_mineral_production) in long form.

Header: ``Source, Country, Type, Prod_<unit>[_est]_<year>..., Prod_notes, Reserves_<unit>,
Reserves_notes`` (MCS2022: production columns only, no notes, no reserves). The year, the
estimate marker and the unit live in the column names (``Prod_t_2022``, ``Prod_kt_est_2023``,
``Reserves_kt``); reserves have no year and are dated to the edition's reference year, the latest
production year of the same table.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from pipelines.contracts import Contract, Registry
from pipelines.sources import DriftEvent, NormalizeError, RawPage, SourceRows
from pipelines.sources.usgs_mcs.estimates import note_estimates, unread_estimate
from pipelines.sources.usgs_mcs.figures import LongRows, checked_cell, flag, grouped
from pipelines.sources.usgs_mcs.names import CountryNames, country_name, is_aggregate, world_mineral
from pipelines.sources.usgs_mcs.table import (
    PRODUCTION_COLUMN,
    Table,
    clean,
    edition_of,
    mass_unit,
    unknown_columns,
)

_RESERVES = re.compile(r"^reserves_(?P<unit>[a-z]+)$", re.IGNORECASE)
# The production notes column: "Prod_notes", or "Prod_note" in some MCS2024 files (antimony,
# beryllium, bauxite).
_PROD_NOTES = ("Prod_notes", "Prod_note")


@dataclass(frozen=True)
class WorldFigure:
    """A figure column of a world table: what it measures, for which year, in which unit."""

    position: int
    measure: str  # production or reserves
    year: int
    unit: str  # the mass unit the column is published in
    estimated: bool  # the header marks it an estimate (Prod_t_est_2023)


@dataclass(frozen=True)
class WorldHeader:
    """Where a world table holds what, read from its header."""

    country_at: int
    source_at: int | None
    type_at: int | None
    prod_notes_at: int | None
    reserves_notes_at: int | None
    figures: list[WorldFigure]
    unknown: list[int]  # columns this reader does not know, passed on for the drift policy
    production_years: set[int]
    unmarked_years: set[int]  # production years the header does not mark as estimates


def world_header(page: RawPage, contract: Contract, registry: Registry, table: Table) -> WorldHeader:
    """The figures of a world table's header, reserves dated to its latest production year."""
    country_at = table.index("Country")
    if country_at is None:  # table_kind found one; this guard is for the type checker
        raise NormalizeError(contract.dataset, page.path, f"{table.name} has no Country column")
    source_at, type_at = table.index("Source"), table.index("Type")
    prod_notes_at = next((at for name in _PROD_NOTES if (at := table.index(name)) is not None), None)
    reserves_notes_at = table.index("Reserves_notes")
    figures: list[WorldFigure] = []
    reserves: list[tuple[int, str]] = []
    for position, name in enumerate(table.header):
        if position in (prod_notes_at, reserves_notes_at):
            continue
        prod = PRODUCTION_COLUMN.match(name)
        if prod:
            unit = mass_unit(page, contract, registry, prod.group("unit").lower(), name)
            figures.append(
                WorldFigure(position, "production", int(prod.group("year")), unit, bool(prod.group("est")))
            )
            continue
        reserve = _RESERVES.match(name)
        if reserve:
            reserves.append(
                (position, mass_unit(page, contract, registry, reserve.group("unit").lower(), name))
            )
    # Reserves are undated in the header: the edition's reference year is its latest production year.
    reference_year = max(f.year for f in figures)
    figures += [WorldFigure(position, "reserves", reference_year, unit, False) for position, unit in reserves]
    known = {
        p for p in (country_at, source_at, type_at, prod_notes_at, reserves_notes_at) if p is not None
    } | {f.position for f in figures}
    production = [f for f in figures if f.measure == "production"]
    return WorldHeader(
        country_at,
        source_at,
        type_at,
        prod_notes_at,
        reserves_notes_at,
        figures,
        unknown_columns(table, known),
        production_years={f.year for f in production},
        unmarked_years={f.year for f in production if not f.estimated},
    )


@dataclass(frozen=True)
class CountryRow:
    """The country of a row and the production years its row marks as estimates."""

    name: str  # without footnote digits or the estimate marker glued to it
    aggregate: bool
    also_estimated: set[int]  # beyond what the header marks: by the note, or all by the marker
    unread: list[tuple[str, int]]  # estimate sentences of the note in wording not known, and their year


@dataclass(frozen=True)
class WorldTable:
    """A world table being read: its header, edition, mineral and the country names to match."""

    page: RawPage
    contract: Contract
    table: Table
    header: WorldHeader
    edition: str
    mineral: str
    countries: CountryNames

    def country(self, row: int, cells: list[str]) -> CountryRow:
        """A row's country, and which of its production figures are estimates."""
        header = self.header
        name = country_name(cells[header.country_at])
        if not name:
            raise NormalizeError(
                self.contract.dataset, self.page.path, "a row with figures has no country", row=row
            )
        aggregate = is_aggregate(name)
        marked = None if aggregate else self.countries.without_estimate_marker(name)
        prod_note = clean(cells[header.prod_notes_at]) if header.prod_notes_at is not None else ""
        also_estimated, unread = note_estimates(prod_note, header.unmarked_years)
        if marked is not None:
            also_estimated = header.production_years
        return CountryRow(marked or name, aggregate, also_estimated, unread)

    def long_rows(
        self, row: int, cells: list[str], country: CountryRow
    ) -> Iterator[tuple[str, dict[str, str | None], dict[str, str | None]]]:
        """A row's figures in long form: (unit, agency-named columns, derived values) each."""
        header, table = self.header, self.table
        for figure in header.figures:
            cell = checked_cell(
                cells[figure.position],
                self.page,
                self.contract,
                "value_t",
                table.header[figure.position],
                row,
            )
            notes_at = header.prod_notes_at if figure.measure == "production" else header.reserves_notes_at
            columns: dict[str, str | None] = {
                "Source": self.edition,
                "Country": country.name,
                "Value": cell.number,
            }
            if header.type_at is not None:
                columns["Type"] = clean(cells[header.type_at]) or None
            # MCS2022's tables have no notes columns: no note, like an empty cell.
            columns["Notes"] = (clean(cells[notes_at]) or None) if notes_at is not None else None
            for position_unknown in header.unknown:
                columns[table.header[position_unknown]] = clean(cells[position_unknown]) or None
            estimated = figure.estimated or (
                figure.measure == "production" and figure.year in country.also_estimated
            )
            derived: dict[str, str | None] = {
                "mineral": self.mineral,
                "country_iso": None if country.aggregate else self.countries.iso(country.name),
                "is_aggregate": flag(country.aggregate),
                "year": str(figure.year),
                "measure": figure.measure,
                "value_qualifier": cell.qualifier,
                "estimated": flag(estimated),
                "withheld": flag(cell.withheld),
                "published_value": cell.published,
            }
            yield figure.unit, columns, derived


def world_rows(page: RawPage, contract: Contract, registry: Registry, table: Table) -> Iterator[SourceRows]:
    """A world production and reserves table in long form, one SourceRows per unit."""
    header = world_header(page, contract, registry, table)
    world = WorldTable(
        page,
        contract,
        table,
        header,
        edition=edition_of(page, contract, table, header.source_at),
        mineral=world_mineral(page, contract, registry, table),
        countries=CountryNames.load(registry),
    )
    drift: list[DriftEvent] = []
    groups: dict[str | None, LongRows] = {}
    for row, cells in table.rows:
        country = world.country(row, cells)
        for sentence, year in country.unread:
            drift.append(unread_estimate(page, contract, table, header.prod_notes_at, sentence, year, row))
        for unit, columns, derived in world.long_rows(row, cells, country):
            groups.setdefault(unit, LongRows({}, {})).add(columns, derived)
    yield from grouped(groups, len(table.rows), "Value", tuple(drift[:1]))
