"""Reading a USGS MCS file: the CSV table as published, which table it is, its edition and units.

Tables are told apart by their header, never by a fixed column list, so that the next edition
parses too. UTF-8 with a byte-order mark, CRLF line endings, all-comma padding rows and
empty-named trailing columns are undone here.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass
from typing import NoReturn

from pipelines.contracts import Contract, Registry
from pipelines.sources import DriftEvent, DriftRejected, NormalizeError, RawPage

# A world table's production column (Prod_t_2022, Prod_kt_est_2023): unit, estimate marker, year.
PRODUCTION_COLUMN = re.compile(r"^prod_(?P<unit>[a-z]+)(?P<est>_est)?_(?P<year>\d{4})$", re.IGNORECASE)
# Figure 2's figure column (Net_Import_Reliance_pct_2023): the year it is for.
NET_IMPORT_RELIANCE_COLUMN = re.compile(r"^net_import_reliance_pct_(\d{4})$", re.IGNORECASE)
_FILE_EDITION = re.compile(r"mcs(\d{4})", re.IGNORECASE)


def clean(text: str | None) -> str:
    """A cell without non-breaking spaces, runs of white space or surrounding blanks."""
    if not text:
        return ""
    return " ".join(text.replace("\u00a0", " ").split())


def fold(text: str) -> str:
    """A name folded for matching: no accents, straight apostrophes, lower case, single spaces."""
    decomposed = unicodedata.normalize("NFKD", clean(text).replace("\u2019", "'"))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def file_name(page: RawPage) -> str:
    """The name USGS gave the file: the requested name, or the name of the file brought in by hand."""
    return str(page.manifest.get("file_name") or page.manifest.get("partition") or page.path.name)


@dataclass(frozen=True)
class Table:
    """A CSV table as published, padding rows and empty unnamed columns dropped."""

    name: str
    header: list[str]
    # (row number as a person reading the file counts it, cells aligned with the header)
    rows: list[tuple[int, list[str]]]

    def index(self, wanted: str) -> int | None:
        """Position of the column called ``wanted`` (ignoring case), or None."""
        for position, name in enumerate(self.header):
            if name.casefold() == wanted.casefold():
                return position
        return None


def read_table(page: RawPage, contract: Contract) -> Table:
    """The file's header and non-empty rows; a file that is not UTF-8 CSV is a clear error."""
    name = file_name(page)
    try:
        text = page.body.decode("utf-8-sig")  # the byte-order mark goes with the codec
    except UnicodeDecodeError as exc:
        raise NormalizeError(
            contract.dataset, page.path, f"{name} is not UTF-8 text (byte {exc.start}); expected a CSV table"
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        raw_header = next(reader)
    except StopIteration:
        raise NormalizeError(contract.dataset, page.path, f"{name} is empty; expected a CSV table") from None
    header = [clean(h) for h in raw_header]
    rows: list[tuple[int, list[str]]] = []
    cells: list[str] = raw_header
    for cells in reader:
        if not any(clean(c) for c in cells):
            continue  # all-comma padding rows
        if len(cells) > len(header) and any(clean(c) for c in cells[len(header) :]):
            raise NormalizeError(
                contract.dataset,
                page.path,
                f"{name}: {len(cells)} values, the header has {len(header)} columns",
                row=reader.line_num,
            )
        rows.append((reader.line_num, [*cells[: len(header)], *[""] * (len(header) - len(cells))]))
    # USGS pads every row to the header's width and ends the file with a line end. A last row
    # short of columns with no line end after it is a download cut mid-record: read as it is, it
    # would publish a partial row and drop every row after the cut.
    if rows and len(cells) < len(header) and not text.endswith(("\n", "\r")):
        raise NormalizeError(
            contract.dataset,
            page.path,
            f"{name}: the file ends mid-record ({len(cells)} of {len(header)} columns and no line end "
            "after the last row); expected a whole CSV table: download it again",
            row=reader.line_num,
        )
    # Empty-named columns: dropped when empty everywhere; one holding data keeps a name so the
    # drift policy sees it.
    keep = [
        position
        for position, column in enumerate(header)
        if column or any(clean(cells[position]) for _, cells in rows)
    ]
    named = [header[p] or f"column_{p + 1}" for p in keep]
    return Table(name, named, [(number, [cells[p] for p in keep]) for number, cells in rows])


def describe_header(table: Table, limit: int = 8) -> str:
    """The first columns of a header, for messages."""
    shown = ", ".join(table.header[:limit])
    return shown + (", ..." if len(table.header) > limit else "")


def unknown_columns(table: Table, known: set[int]) -> list[int]:
    """The positions of the columns a table reader does not know: passed on for the drift policy."""
    return [p for p in range(len(table.header)) if p not in known]


def table_kind(table: Table) -> str:
    """world, salient or net_import_reliance from the header; unknown when it is none of them."""
    names = {h.casefold() for h in table.header}
    if any(NET_IMPORT_RELIANCE_COLUMN.match(h) for h in table.header):
        return "net_import_reliance"
    if {"commodity", "year"} <= names:
        return "salient"
    if "country" in names and any(PRODUCTION_COLUMN.match(h) for h in table.header):
        return "world"
    return "unknown"


TABLE_TITLES = {
    "world": "world mine production and reserves by country",
    "salient": "U.S. salient statistics",
    "net_import_reliance": "Figure 2 net import reliance",
    "unknown": "no MCS table this pipeline knows",
}


def wrong_table(
    page: RawPage, contract: Contract, table: Table, found: str, expected: str, key: str
) -> NoReturn:
    """Reject a file whose header is another table's, naming the file, what it holds and what was expected."""
    event = DriftEvent(
        key,
        "missing_field",
        "rejected",
        f"{table.name} holds {TABLE_TITLES[found]} (columns {describe_header(table)}), "
        f"not {expected}; the file is not loaded",
    )
    raise DriftRejected(contract.dataset, page.path, event)


def edition_of(page: RawPage, contract: Contract, table: Table, column: int | None) -> str:
    """The edition a table belongs to: its Source column (filled where a row lacks it), else the file name."""
    found = {
        clean(cells[column]).upper() for _, cells in table.rows if column is not None and clean(cells[column])
    }
    if len(found) > 1:
        raise NormalizeError(
            contract.dataset, page.path, f"{table.name}: rows name several editions {sorted(found)}"
        )
    if found:
        return found.pop()
    from_name = _FILE_EDITION.search(table.name)
    if from_name:
        return f"MCS{from_name.group(1)}"
    raise NormalizeError(
        contract.dataset, page.path, f"{table.name}: no Source column value and no edition in the file name"
    )


def mass_unit(page: RawPage, contract: Contract, registry: Registry, unit: str, column: str) -> str:
    """A unit from a column name that types.yaml knows as a mass (t, kt, kg); drift otherwise."""
    known = registry.types.units.get(unit)
    if known is None or known.dimension != "mass":
        event = DriftEvent(
            column,
            "type_change",
            "rejected",
            f"{file_name(page)}: column {column!r} gives unit {unit!r}, which is not a mass unit of types.yaml",
        )
        raise DriftRejected(contract.dataset, page.path, event)
    return unit
