"""U.S. salient statistics (``mcs2024-lithi_salient.csv``, usgs_mineral_salient) in long form.

Header: ``DataSource, Commodity, Year, <Measure>[_<Form>...]_<unit>...``; the measure, its form
and its unit are read from each column name. The nickel table names two price columns
``Price_dt dlb (both used)``: the first copy is in dollars per metric ton, the second in dollars
per pound.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from pipelines.contracts import Contract, Registry
from pipelines.sources import DriftEvent, DriftRejected, NormalizeError, RawPage, SourceRows
from pipelines.sources.usgs_mcs.figures import LongRows, checked_cell, flag, grouped
from pipelines.sources.usgs_mcs.names import commodity_mineral, mineral_names
from pipelines.sources.usgs_mcs.table import (
    Table,
    clean,
    edition_of,
    file_name,
    mass_unit,
    unknown_columns,
)

_YEAR = re.compile(r"^\d{4}$")
_SALIENT_MEASURES = {
    "usprod": "production",
    "prod": "production",
    "imports": "imports",
    "exports": "exports",
    "consump": "apparent_consumption",
    "shipments": "shipments",
    "stocks": "stocks",
    "price": "price",
    "employment": "employment",
    "nir": "net_import_reliance",
}
# Price units as USGS abbreviates them in column names: dollars per metric ton, kilogram, pound.
_PRICE_UNITS = {"dt": "USD/t", "dkg": "USD/kg", "dlb": "USD/lb"}
_PERCENT_TOKENS = {"pct", "t", "kt"}  # NIR columns end in _pct, or in _t for rare earths
_COUNT_TOKENS = {"num"}

# The long-form column each kind of figure goes in -> the contract field it becomes. Figure 2
# (net_import_reliance) fills the same columns, so both tables load into one contract.
SALIENT_VALUE_FIELDS = {
    "Quantity": "quantity_t",
    "Price": "price_usd",
    "Employment": "employees",
    "NetImportReliance": "net_import_reliance_pct",
}


@dataclass(frozen=True)
class SalientColumn:
    """What a salient-statistics column holds, read from its name."""

    measure: str
    form: str
    unit: str  # the contract's unit of the figure (t for every mass, converted by normalize)
    mass_unit: str | None  # the unit the column is published in, for quantities
    value_column: str  # the long-form column the figure goes in


def salient_column(
    name: str, copy: int, page: RawPage, contract: Contract, registry: Registry
) -> SalientColumn | None:
    """A salient column's measure, form and unit from its name; None for a name that is no measure.

    ``copy`` counts earlier columns of the same name: the nickel table's two
    "Price_dt dlb (both used)" columns are dollars per metric ton, then dollars per pound.
    """
    tokens = name.split("_")
    measure = _SALIENT_MEASURES.get(tokens[0].casefold())
    if measure is None or len(tokens) < 2:
        return None
    rest = tokens[1:]
    if measure == "apparent_consumption" and rest[0].casefold() in {"reported", "apparent"}:
        measure = f"{rest[0].casefold()}_consumption"
        rest = rest[1:]
    last = rest[-1] if rest else ""
    unit_words = [
        w for w in re.findall(r"[a-z]+", last.casefold()) if w in _PRICE_UNITS or w in {"t", "kt", "kg"}
    ]
    unit_token = unit_words[min(copy, len(unit_words) - 1)] if unit_words else last.casefold()

    def form(tokens_: Sequence[str]) -> str:
        return "_".join(tokens_) or "all"

    if measure == "price":
        if unit_token not in _PRICE_UNITS:
            event = DriftEvent(
                "price_usd",
                "type_change",
                "rejected",
                f"{file_name(page)}: price column {name!r} gives unit {last!r}, not dt, dkg or dlb",
            )
            raise DriftRejected(contract.dataset, page.path, event)
        return SalientColumn(measure, form(rest[:-1]), _PRICE_UNITS[unit_token], None, "Price")
    if measure == "employment":
        return SalientColumn(
            measure,
            form(rest[:-1] if last.casefold() in _COUNT_TOKENS else rest),
            "count",
            None,
            "Employment",
        )
    if measure == "net_import_reliance":
        body = rest[:-1] if last.casefold() in _PERCENT_TOKENS else rest
        return SalientColumn(measure, form(body), "percent", None, "NetImportReliance")
    unit = mass_unit(page, contract, registry, unit_token, name)
    return SalientColumn(measure, form(rest[:-1]), "t", unit, "Quantity")


def salient_rows(page: RawPage, contract: Contract, registry: Registry, table: Table) -> Iterator[SourceRows]:
    """A salient-statistics table in long form, one SourceRows per mass unit in its header."""
    source_at = table.index("DataSource")
    if source_at is None:
        source_at = table.index("Source")
    commodity_at, year_at = table.index("Commodity"), table.index("Year")
    if commodity_at is None or year_at is None:
        raise NormalizeError(contract.dataset, page.path, f"{table.name} has no Commodity or Year column")
    measures: list[tuple[int, SalientColumn]] = []
    seen: dict[str, int] = {}
    for position, name in enumerate(table.header):
        if position in (source_at, commodity_at, year_at):
            continue
        spec = salient_column(name, seen.get(name, 0), page, contract, registry)
        seen[name] = seen.get(name, 0) + 1
        if spec is not None:
            measures.append((position, spec))
    known = {source_at, commodity_at, year_at} | {p for p, _ in measures}
    unknown = unknown_columns(table, {p for p in known if p is not None})
    edition = edition_of(page, contract, table, source_at)
    names = mineral_names(registry)
    groups: dict[str | None, LongRows] = {}
    for row, cells in table.rows:
        commodity = clean(cells[commodity_at])
        year = clean(cells[year_at])
        if not _YEAR.match(year):
            event = DriftEvent("year", "type_change", "rejected", f"Year {year!r} is not a year")
            raise DriftRejected(contract.dataset, page.path, event, row=row)
        for position, spec in measures:
            field_name = SALIENT_VALUE_FIELDS[spec.value_column]
            cell = checked_cell(cells[position], page, contract, field_name, table.header[position], row)
            columns: dict[str, str | None] = {
                "DataSource": edition,
                "Commodity": commodity,
                "Year": year,
                spec.value_column: cell.number,
            }
            for position_unknown in unknown:
                columns[table.header[position_unknown]] = clean(cells[position_unknown]) or None
            groups.setdefault(spec.mass_unit, LongRows({}, {})).add(
                columns,
                {
                    "source_table": "salient",
                    "mineral": commodity_mineral(commodity, names),
                    "measure": spec.measure,
                    "form": spec.form,
                    "unit": spec.unit,
                    "value_qualifier": cell.qualifier,
                    "withheld": flag(cell.withheld),
                    "published_value": cell.published,
                    "source_column": table.header[position],
                },
            )
    for rows in groups.values():
        # Every group names every column the contract maps (a group of prices has no quantity; a
        # salient table has no Figure 2 columns), so none of them reads as a missing field.
        for value_column in (*SALIENT_VALUE_FIELDS, "Major_Import_Sources", "Notes"):
            rows.columns.setdefault(value_column, [None] * rows.count)
    yield from grouped(groups, len(table.rows), "Quantity")
