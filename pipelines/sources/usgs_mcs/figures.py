"""A published figure and the long form the figures are handed over in.

Special values: ``W`` withheld, ``NA`` / ``XX`` not available, ``E`` net exporter, bounds (``>25``,
``    >9,100,000``, ``<50``, ``Less than ½ unit``), thousands separators (``72,000``) and
``Included in World total.`` in place of a reserve.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from pipelines.contracts import Contract
from pipelines.sources import DriftEvent, DriftRejected, RawPage, SourceRows
from pipelines.sources.usgs_mcs.table import clean

_NUMBER = re.compile(r"^(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?$")
_BOUND = re.compile(r"^([<>])\s*(.+)$")
_LESS_THAN_HALF = re.compile(r"^less than (?:½|1/2|one-half) unit$", re.IGNORECASE)
# Cells that mean "no figure" (MCS: NA not available, XX not applicable).
_NO_FIGURE = {"na", "xx", "--", "included in world total"}


@dataclass(frozen=True)
class Cell:
    """One published figure, read: the number as castable text, and what the text said about it."""

    number: str | None
    qualifier: str | None = None
    withheld: bool = False
    published: str | None = None
    readable: bool = True


def read_cell(text: str) -> Cell:
    """A USGS figure: a number (thousands separators dropped), a bound, or a special value."""
    published = clean(text)
    if not published:
        return Cell(None)
    folded = published.casefold().rstrip(".")
    if published == "W":
        return Cell(None, withheld=True, published=published)
    if published == "E":
        return Cell(None, qualifier="net_exporter", published=published)
    if folded in _NO_FIGURE:
        return Cell(None, published=published)
    if _LESS_THAN_HALF.match(published):
        return Cell("0.5", qualifier="less_than", published=published)
    bound = _BOUND.match(published)
    if bound and _NUMBER.match(bound.group(2)):
        qualifier = "more_than" if bound.group(1) == ">" else "less_than"
        return Cell(bound.group(2).replace(",", ""), qualifier=qualifier, published=published)
    if _NUMBER.match(published):
        return Cell(published.replace(",", ""), published=published)
    return Cell(published, published=published, readable=False)


def checked_cell(
    text: str, page: RawPage, contract: Contract, field_name: str, column: str, row: int
) -> Cell:
    """:func:`read_cell`, with text that is no figure handled by the contract's type_change policy.

    Under ``reject`` the error names the file row and column here (long-form rows do not map back
    to file rows); otherwise the text goes on and common normalize nulls it and records the drift.
    """
    cell = read_cell(text)
    if not cell.readable and contract.evolution.type_change == "reject":
        event = DriftEvent(
            field_name,
            "type_change",
            "rejected",
            f"column {column!r}: {cell.published!r} is not a number, a bound (>25), W, NA or E",
        )
        raise DriftRejected(contract.dataset, page.path, event, row=row)
    return cell


def flag(value: bool) -> str:
    """A yes/no as the text column normalize casts to a boolean."""
    return "true" if value else "false"


@dataclass
class LongRows:
    """Long-form rows sharing one unit: agency-named text columns and derived values, by name."""

    columns: dict[str, list[str | None]]
    derived: dict[str, list[str | None]]
    count: int = 0

    def add(self, columns: dict[str, str | None], derived: dict[str, str | None]) -> None:
        for name, value in columns.items():
            self.columns.setdefault(name, [None] * self.count).append(value)
        for name, value in derived.items():
            self.derived.setdefault(name, [None] * self.count).append(value)
        self.count += 1
        for values in (*self.columns.values(), *self.derived.values()):
            if len(values) < self.count:
                values.append(None)


def grouped(
    groups: dict[str | None, LongRows],
    source_rows: int,
    value_column: str,
    drift: tuple[DriftEvent, ...] = (),
) -> Iterator[SourceRows]:
    """One SourceRows per unit found in the header; the file's row count and drift go with the first."""
    for position, (group_unit, rows) in enumerate(groups.items()):
        yield SourceRows(
            columns=rows.columns,
            source_rows=source_rows if position == 0 else 0,
            derived=rows.derived,
            units={value_column: group_unit} if group_unit else {},
            drift=drift if position == 0 else (),
        )
