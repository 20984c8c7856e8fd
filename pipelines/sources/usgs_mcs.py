"""USGS Mineral Commodity Summaries (MCS) data release: CSV files on ScienceBase.

Paging: USGS publishes files, not an API. A run asks for each file the contract lists, one request
per file (``pipelines.sources.paging.file_requests``), the file name in the contract's paging parameter
(ScienceBase: ``/catalog/file/get/<item id>?name=<file>``).

Tables are told apart by their header, never by a fixed column list, so that the next edition
parses too:

- world production and reserves (``mcs2024-lithi_world.csv``, contract usgs_mineral_production):
  ``Source, Country, Type, Prod_<unit>[_est]_<year>..., Prod_notes, Reserves_<unit>, Reserves_notes``
  (MCS2022: production columns only, no notes, no reserves);
- salient statistics (``mcs2024-lithi_salient.csv``, usgs_mineral_salient):
  ``DataSource, Commodity, Year, <Measure>[_<Form>...]_<unit>...``;
- Figure 2 net import reliance (``MCS2024_Fig2_Net_Import_Reliance.csv``, usgs_mineral_salient):
  ``Source, Import_Share_Order, Commodity, Net_Import_Reliance_pct_<year>, Major_Import_Sources_<y>_<y>, Notes``.

Each is turned into long form here (one row per figure) and handed over as text columns; common
normalize does types, units (``SourceRows.units``, per unit found in the header) and drift.

Quirks handled here and nowhere else:
- UTF-8 with a byte-order mark, CRLF line endings, all-comma padding rows, empty-named trailing
  columns (a named column the contract does not know is passed on, so the drift policy sees it);
- the year, the estimate marker and the unit live in the column names (``Prod_t_2022``,
  ``Prod_kt_est_2023``, ``Reserves_kt``); reserves have no year and are dated to the edition's
  reference year, the latest production year of the same table;
- footnote digits glued to names (``Other countries6``, ``New Caledonia11``), the footnote marker
  "e" (estimated) glued to names (``Japane``, ``Russiae`` in MCS2024 gallium) and non-breaking
  spaces inside and around names and numbers (``United\\u00a0States``, ``\\u00a0\\u00a0325``);
- special values: ``W`` withheld, ``NA`` / ``XX`` not available, ``E`` net exporter, bounds
  (``>25``, ``    >9,100,000``, ``<50``, ``Less than ½ unit``), thousands separators (``72,000``),
  ``Included in World total.`` in place of a reserve;
- which figures are estimates: the header marks the latest year (``Prod_t_est_2023``,
  ``Prod_t_Est_2021``); a production note (``Prod_notes``, ``Prod_note`` in some MCS2024 files)
  marks others, worded differently from edition to edition ("Production in 2021 is also
  estimated.", "Estimated in 2021 also.", "Also estimated in 2022" ...: ESTIMATE_WORDINGS), and an
  "e" glued to the country marks the whole row; a note that speaks of an estimate for an unmarked
  year in a wording not in that table is drift (type_change), never silently ignored;
- the nickel salient table names two price columns ``Price_dt dlb (both used)``: the first copy
  is in dollars per metric ton, the second in dollars per pound;
- net import reliance columns of the rare-earths table end in ``_t`` although they are percent;
- a file whose header is another table's (the MCS 2024 cobalt "salient" file holds the world
  production table) is rejected as a contract violation naming the file; nothing is loaded.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from typing import NoReturn

from pipelines.contracts import Contract, Registry
from pipelines.sources import ACTIONS, DriftEvent, DriftRejected, NormalizeError, RawPage, SourceRows
from pipelines.sources.http import FetchedPage
from pipelines.sources.paging import PageContext, file_requests

# What a file of this source can be (pipelines.sources.formats): a file in hand is checked against it.
FORMATS = ("csv",)

# What a good answer is; an HTML error page behind a 200 is retried by the common client.
EXPECT = ("text/csv", "application/csv", "application/octet-stream", "text/plain")

WORLD_MEASURE_TYPE = "usgs_world_measure"
COUNTRY_CROSSWALK = "usgs_country_names"

_PROD = re.compile(r"^prod_(?P<unit>[a-z]+)(?P<est>_est)?_(?P<year>\d{4})$", re.IGNORECASE)
_RESERVES = re.compile(r"^reserves_(?P<unit>[a-z]+)$", re.IGNORECASE)
_FOOTNOTE = re.compile(r"(?<=[^\d\s])\d+$")
_FILE_CODE = re.compile(r"mcs\d{4}-([a-z]+)_", re.IGNORECASE)
_FILE_EDITION = re.compile(r"mcs(\d{4})", re.IGNORECASE)
_NUMBER = re.compile(r"^(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?$")
_BOUND = re.compile(r"^([<>])\s*(.+)$")
_LESS_THAN_HALF = re.compile(r"^less than (?:½|1/2|one-half) unit$", re.IGNORECASE)
_NIR_FIGURE = re.compile(r"^net_import_reliance_pct_(\d{4})$", re.IGNORECASE)
_IMPORT_SOURCES = re.compile(r"^major_import_sources_(\d{4})_(\d{4})$", re.IGNORECASE)
_YEAR = re.compile(r"^\d{4}$")
_SENTENCE_END = re.compile(r"(?<=\.)\s+")
_A_YEAR = re.compile(r"\b(\d{4})\b")
# The production notes column: "Prod_notes", or "Prod_note" in some MCS2024 files (antimony,
# beryllium, bauxite).
_PROD_NOTES = ("Prod_notes", "Prod_note")


@dataclass(frozen=True)
class EstimateWording:
    """One way a production note says that figures its header does not mark are estimates too."""

    sentence: re.Pattern[str]  # one whole sentence of the note; group "year" names the year, else all
    seen: str  # where USGS wrote it so


def _wording(pattern: str, seen: str) -> EstimateWording:
    return EstimateWording(re.compile(pattern, re.IGNORECASE), seen)


# "This year is an estimate too", as each edition words it in Prod_notes (a sentence matched whole,
# ignoring case and the final period): every wording in the world tables of MCS2023 and MCS2024
# (all commodities, from the repository recordings/PROVENANCE.md names for them) and MCS2025's as
# quoted. Sentences that merely mention estimates ("Estimated amount of rhenium recovered ...",
# "Other countries estimated to still have ... capacity") match none. The header marks the latest
# year itself in every edition (Prod_t_Est_2021 in MCS2022, Prod_t_est_2023 in MCS2024). Tested
# with each edition's files in tests/test_usgs_production.py.
ESTIMATE_WORDINGS = (
    _wording(
        r"also estimated in (?P<year>\d{4})",
        "MCS2024 'Also estimated in 2022' (lithium, graphite, nickel, antimony ...), 'also estimated in 2022'",
    ),
    _wording(
        r"estimated in (?P<year>\d{4}) also",
        "MCS2023 'Estimated in 2021 also.' (rare earths, salt); MCS2024 'estimated in 2022 also' (gallium)",
    ),
    _wording(
        r"production in (?P<year>\d{4}) is also estimated",
        "MCS2023 'Production in 2021 is also estimated.' (lithium, cobalt, beryllium ...); MCS2024 (aluminum)",
    ),
    _wording(r"production data in (?P<year>\d{4}) were also estimated", "MCS2023 (magnesium metal)"),
    _wording(
        r"estimated (?P<year>\d{4})",
        "MCS2025 'Estimated 2023.' (lithium, manganese, vanadium; as Our World in Data quotes the release)",
    ),
    _wording(
        r"estimated(?: in both years)?", "MCS2023 'Estimated in both years.' (silver), 'Estimated' (perlite)"
    ),
)


def note_estimates(note: str, years: Collection[int]) -> tuple[set[int], list[tuple[str, int]]]:
    """The ``years`` a production note says are estimates, and its unrecognised estimate sentences.

    A sentence that matches no wording of ESTIMATE_WORDINGS but speaks of an estimate ("estimat")
    and names one of ``years`` comes back with that year: its meaning is unknown, not "no".
    """
    estimated: set[int] = set()
    unknown: list[tuple[str, int]] = []
    for sentence in _SENTENCE_END.split(clean(note)):
        sentence = sentence.rstrip(".").strip()
        matched = next((m for w in ESTIMATE_WORDINGS if (m := w.sentence.fullmatch(sentence))), None)
        if matched is not None:
            year = matched.groupdict().get("year")
            estimated |= set(years) if year is None else {int(year)} & set(years)
        elif "estimat" in sentence.casefold():
            unknown += [(sentence, int(y)) for y in _A_YEAR.findall(sentence) if int(y) in years]
    return estimated, unknown


# Cells that mean "no figure" (MCS: NA not available, XX not applicable).
_NO_FIGURE = {"na", "xx", "--", "included in world total"}
_AGGREGATES = ("world total", "other countries")

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


# --- fetching ------------------------------------------------------------------------------------


def fetch_pages(ctx: PageContext) -> Iterator[FetchedPage]:
    """One request per file the contract lists (ScienceBase ``?name=<file>``), through common paging."""
    for request in file_requests(ctx, expect=EXPECT):
        yield ctx.fetch(request)


# --- reading a file ------------------------------------------------------------------------------


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


def table_kind(table: Table) -> str:
    """world, salient or net_import_reliance from the header; unknown when it is none of them."""
    names = {h.casefold() for h in table.header}
    if any(_NIR_FIGURE.match(h) for h in table.header):
        return "net_import_reliance"
    if {"commodity", "year"} <= names:
        return "salient"
    if "country" in names and any(_PROD.match(h) for h in table.header):
        return "world"
    return "unknown"


_TABLE_TITLES = {
    "world": "world mine production and reserves by country",
    "salient": "U.S. salient statistics",
    "net_import_reliance": "Figure 2 net import reliance",
    "unknown": "no MCS table this pipeline knows",
}


def _wrong_table(
    page: RawPage, contract: Contract, table: Table, found: str, expected: str, key: str
) -> NoReturn:
    """Reject a file whose header is another table's, naming the file, what it holds and what was expected."""
    event = DriftEvent(
        key,
        "missing_field",
        "rejected",
        f"{table.name} holds {_TABLE_TITLES[found]} (columns {describe_header(table)}), "
        f"not {expected}; the file is not loaded",
    )
    raise DriftRejected(contract.dataset, page.path, event)


# --- cells ---------------------------------------------------------------------------------------


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


def _flag(value: bool) -> str:
    return "true" if value else "false"


# --- code lists: minerals and countries ----------------------------------------------------------


def mineral_names(registry: Registry) -> dict[str, str]:
    """Folded mineral and MCS chapter names -> MCS chapter (critical_minerals.mcs_commodity)."""
    names: dict[str, str] = {}
    for row in registry.codelists.rows("critical_minerals"):
        names.setdefault(fold(row["mcs_commodity"]), row["mcs_commodity"])
        names.setdefault(fold(row["mineral"]), row["mcs_commodity"])
    return names


def mineral_file_code(commodity: str) -> str:
    """The 5-letter code USGS files a chapter under: its letters, lower case (Rare earths: raree)."""
    return re.sub(r"[^a-z]", "", commodity.lower())[:5]


def commodity_mineral(commodity: str, names: dict[str, str]) -> str | None:
    """The MCS chapter of a commodity as a table names it, ignoring USGS's qualifiers.

    "Graphite (Natural)", "RARE EARTHS, compounds and metals", "ZINC, refined" -> Graphite, Rare
    earths, Zinc; a commodity off the critical-minerals list ("CEMENT") -> None.
    """
    base = fold(commodity).split(",", 1)[0]
    base = re.sub(r"\s*\(.*?\)", "", base).strip()
    return names.get(base)


def world_mineral(page: RawPage, contract: Contract, registry: Registry, table: Table) -> str:
    """The mineral of a world table: its file code (mcs2024-lithi_world.csv), checked against Type."""
    chapters = sorted(set(mineral_names(registry).values()))
    by_code = {mineral_file_code(c): c for c in chapters}
    code = _FILE_CODE.search(table.name)
    from_file = by_code.get(code.group(1).lower()) if code else None
    type_at = table.index("Type")
    from_type: set[str] = set()
    if type_at is not None:
        texts = " | ".join(fold(cells[type_at]) for _, cells in table.rows)
        for name, chapter in mineral_names(registry).items():
            if re.search(rf"\b{re.escape(name)}\b", texts):
                from_type.add(chapter)
    if from_file and from_type and from_file not in from_type:
        raise NormalizeError(
            contract.dataset,
            page.path,
            f"{table.name}: the file name says {from_file} but its Type column says {', '.join(sorted(from_type))}",
            field="mineral",
        )
    if from_file:
        return from_file
    if len(from_type) == 1:
        return from_type.pop()
    raise NormalizeError(
        contract.dataset,
        page.path,
        f"{table.name}: cannot tell the mineral (no known commodity code in the file name, "
        f"Type column names {sorted(from_type) or 'none'})",
        field="mineral",
    )


@dataclass
class CountryNames:
    """USGS country name -> ISO alpha-2: the usgs_country_names crosswalk, else the Census list."""

    crosswalk: dict[str, str] = field(default_factory=dict)
    census: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, registry: Registry) -> CountryNames:
        names = cls()
        for row in registry.codelists.rows(COUNTRY_CROSSWALK):
            names.crosswalk[fold(row["usgs_name"])] = row["iso_alpha2"]
        for row in registry.codelists.rows("countries"):
            names.census.setdefault(fold(row["name"]), row["iso_alpha2"])
            # "Burma (Myanmar)", "Tanzania (United Republic of Tanzania)": USGS writes the short name.
            short = re.sub(r"\s*\(.*\)$", "", row["name"])
            names.census.setdefault(fold(short), row["iso_alpha2"])
        return names

    def without_estimate_marker(self, name: str) -> str | None:
        """The name without the footnote marker "e" glued to it ("Japane" -> "Japan"); None if it has none.

        Only when the name is no country and the name without the "e" is one: "Chile" stays.
        """
        if name.endswith("e") and self.iso(name) is None and self.iso(name[:-1]) is not None:
            return name[:-1]
        return None

    def iso(self, name: str) -> str | None:
        """The code of a country name; a qualifier after a comma ("Ukraine, concentrate") is ignored."""
        candidates = [fold(name)]
        if ", " in name:
            candidates.append(fold(name.rsplit(", ", 1)[0]))
        for candidate in candidates:
            code = self.crosswalk.get(candidate) or self.census.get(candidate)
            if code:
                return code
        return None


def country_name(text: str) -> str:
    """A USGS country cell without footnote digits or stray spaces ("Other countries6")."""
    return _FOOTNOTE.sub("", clean(text)).rstrip()


def is_aggregate(name: str) -> bool:
    """World total and "Other countries" rows sum several countries."""
    folded = fold(name)
    return folded == "world" or folded.startswith(_AGGREGATES)


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


# --- long form -----------------------------------------------------------------------------------


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


def _grouped(
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


def _unknown_columns(table: Table, known: set[int]) -> list[int]:
    return [p for p in range(len(table.header)) if p not in known]


def world_rows(page: RawPage, contract: Contract, registry: Registry, table: Table) -> Iterator[SourceRows]:
    """A world production and reserves table in long form, one SourceRows per unit."""
    country_at = table.index("Country")
    if country_at is None:  # table_kind found one; this guard is for the type checker
        raise NormalizeError(contract.dataset, page.path, f"{table.name} has no Country column")
    source_at, type_at = table.index("Source"), table.index("Type")
    prod_notes_at = next((at for name in _PROD_NOTES if (at := table.index(name)) is not None), None)
    reserves_notes_at = table.index("Reserves_notes")
    figures: list[tuple[int, str, int, str, bool]] = []  # (position, measure, year, unit, estimated)
    reserves: list[tuple[int, str]] = []
    for position, name in enumerate(table.header):
        if position in (prod_notes_at, reserves_notes_at):
            continue
        prod = _PROD.match(name)
        if prod:
            unit = mass_unit(page, contract, registry, prod.group("unit").lower(), name)
            figures.append((position, "production", int(prod.group("year")), unit, bool(prod.group("est"))))
            continue
        reserve = _RESERVES.match(name)
        if reserve:
            reserves.append(
                (position, mass_unit(page, contract, registry, reserve.group("unit").lower(), name))
            )
    # Reserves are undated in the header: the edition's reference year is its latest production year.
    reference_year = max(year for _, _, year, _, _ in figures)
    figures += [(position, "reserves", reference_year, unit, False) for position, unit in reserves]
    known = {
        p for p in (country_at, source_at, type_at, prod_notes_at, reserves_notes_at) if p is not None
    } | {p for p, *_ in figures}
    unknown = _unknown_columns(table, known)
    edition = edition_of(page, contract, table, source_at)
    mineral = world_mineral(page, contract, registry, table)
    countries = CountryNames.load(registry)
    production_years = {year for _, measure, year, _, _ in figures if measure == "production"}
    unmarked = {year for _, measure, year, _, est in figures if measure == "production" and not est}
    drift: list[DriftEvent] = []
    groups: dict[str | None, LongRows] = {}
    for row, cells in table.rows:
        name = country_name(cells[country_at])
        if not name:
            raise NormalizeError(contract.dataset, page.path, "a row with figures has no country", row=row)
        aggregate = is_aggregate(name)
        marked = None if aggregate else countries.without_estimate_marker(name)
        name = marked or name
        prod_note = clean(cells[prod_notes_at]) if prod_notes_at is not None else ""
        also_estimated, unread = note_estimates(prod_note, unmarked)
        if marked is not None:
            also_estimated = production_years
        for sentence, year in unread:
            drift.append(_unread_estimate(page, contract, table, prod_notes_at, sentence, year, row))
        for position, measure, year, unit, estimated in figures:
            cell = checked_cell(cells[position], page, contract, "value_t", table.header[position], row)
            notes_at = prod_notes_at if measure == "production" else reserves_notes_at
            columns: dict[str, str | None] = {
                "Source": edition,
                "Country": name,
                "Value": cell.number,
            }
            if type_at is not None:
                columns["Type"] = clean(cells[type_at]) or None
            # MCS2022's tables have no notes columns: no note, like an empty cell.
            columns["Notes"] = (clean(cells[notes_at]) or None) if notes_at is not None else None
            for position_unknown in unknown:
                columns[table.header[position_unknown]] = clean(cells[position_unknown]) or None
            groups.setdefault(unit, LongRows({}, {})).add(
                columns,
                {
                    "mineral": mineral,
                    "country_iso": None if aggregate else countries.iso(name),
                    "is_aggregate": _flag(aggregate),
                    "year": str(year),
                    "measure": measure,
                    "value_qualifier": cell.qualifier,
                    "estimated": _flag(estimated or (measure == "production" and year in also_estimated)),
                    "withheld": _flag(cell.withheld),
                    "published_value": cell.published,
                },
            )
    yield from _grouped(groups, len(table.rows), "Value", tuple(drift[:1]))


def _unread_estimate(
    page: RawPage, contract: Contract, table: Table, notes_at: int | None, sentence: str, year: int, row: int
) -> DriftEvent:
    """A note speaking of an estimate for ``year`` in unknown wording: rejected, or the event to record."""
    column = table.header[notes_at] if notes_at is not None else "Prod_notes"
    policy = contract.evolution.type_change
    event = DriftEvent(
        "estimated",
        "type_change",
        ACTIONS[policy],
        f"{table.name}: column {column!r}: the note {sentence!r} speaks of an estimate for {year} in "
        f"wording this source does not recognise (usgs_mcs.ESTIMATE_WORDINGS); {year} is flagged only "
        "where the header marks it",
    )
    if policy == "reject":
        raise DriftRejected(contract.dataset, page.path, event, row=row)
    return event


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


_SALIENT_VALUE_FIELDS = {
    "Quantity": "quantity_t",
    "Price": "price_usd",
    "Employment": "employees",
    "NetImportReliance": "net_import_reliance_pct",
}


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
    unknown = _unknown_columns(table, {p for p in known if p is not None})
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
            field_name = _SALIENT_VALUE_FIELDS[spec.value_column]
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
                    "withheld": _flag(cell.withheld),
                    "published_value": cell.published,
                    "source_column": table.header[position],
                },
            )
    for rows in groups.values():
        # Every group names every column the contract maps (a group of prices has no quantity; a
        # salient table has no Figure 2 columns), so none of them reads as a missing field.
        for value_column in (*_SALIENT_VALUE_FIELDS, "Major_Import_Sources", "Notes"):
            rows.columns.setdefault(value_column, [None] * rows.count)
    yield from _grouped(groups, len(table.rows), "Quantity")


def net_import_reliance_rows(
    page: RawPage, contract: Contract, registry: Registry, table: Table
) -> Iterator[SourceRows]:
    """Figure 2: one net import reliance figure per commodity, with its major import sources."""
    source_at, commodity_at = table.index("Source"), table.index("Commodity")
    if commodity_at is None:
        raise DriftRejected(
            contract.dataset,
            page.path,
            DriftEvent("commodity", "missing_field", "rejected", f"{table.name} has no Commodity column"),
        )
    figure_at, year = next(
        (p, int(m.group(1))) for p, h in enumerate(table.header) if (m := _NIR_FIGURE.match(h))
    )
    sources = next(
        (
            (p, f"{m.group(1)}-{m.group(2)}")
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
        known.add(sources[0])
    unknown = _unknown_columns(table, known)
    edition = edition_of(page, contract, table, source_at)
    names = mineral_names(registry)
    rows = LongRows({}, {})
    for row, cells in table.rows:
        commodity = clean(cells[commodity_at])
        cell = checked_cell(
            cells[figure_at], page, contract, "net_import_reliance_pct", table.header[figure_at], row
        )
        columns: dict[str, str | None] = {
            "DataSource": edition,
            "Commodity": commodity,
            "Year": str(year),
            "NetImportReliance": cell.number,
            "Major_Import_Sources": (clean(cells[sources[0]]) or None) if sources else None,
            "Notes": (clean(cells[notes_at]) or None) if notes_at is not None else None,
        }
        for value_column in _SALIENT_VALUE_FIELDS:
            columns.setdefault(value_column, None)
        for position_unknown in unknown:
            columns[table.header[position_unknown]] = clean(cells[position_unknown]) or None
        rows.add(
            columns,
            {
                "source_table": "net_import_reliance",
                "mineral": commodity_mineral(commodity, names),
                "measure": "net_import_reliance",
                "form": "all",
                "unit": "percent",
                "value_qualifier": cell.qualifier,
                "withheld": _flag(cell.withheld),
                "published_value": cell.published,
                "source_column": table.header[figure_at],
                "import_sources_period": sources[1] if sources else None,
            },
        )
    yield SourceRows(columns=rows.columns, source_rows=len(table.rows), derived=rows.derived)


# --- the source module API -----------------------------------------------------------------------


def wants_world_tables(contract: Contract, registry: Registry) -> bool:
    """Whether a contract takes world production tables (its measure is a world measure) or U.S. ones."""
    return any(f.type == WORLD_MEASURE_TYPE for f in contract.fields)


def parse_batches(page: RawPage, contract: Contract, registry: Registry) -> Iterator[SourceRows]:
    """One published file -> its figures in long form, one SourceRows per unit in its header.

    The table's shape is read from its header; a file holding another table than the contract
    takes (the MCS 2024 cobalt "salient" file holds world production) is rejected, naming it.
    """
    table = read_table(page, contract)
    kind = table_kind(table)
    if wants_world_tables(contract, registry):
        if kind != "world":
            _wrong_table(page, contract, table, kind, _TABLE_TITLES["world"], "country_name")
        yield from world_rows(page, contract, registry, table)
        return
    if kind == "salient":
        yield from salient_rows(page, contract, registry, table)
    elif kind == "net_import_reliance":
        yield from net_import_reliance_rows(page, contract, registry, table)
    else:
        expected = (
            "U.S. salient statistics (DataSource, Commodity, Year, <Measure>_<unit> columns) "
            "or Figure 2 net import reliance"
        )
        _wrong_table(page, contract, table, kind, expected, "commodity")


def parse_page(page: RawPage, contract: Contract, registry: Registry) -> SourceRows | None:
    """The whole file as one SourceRows when its figures share one unit (parse_batches otherwise)."""
    batches = list(parse_batches(page, contract, registry))
    if not batches:
        return None
    if len(batches) > 1:
        units = sorted({u for b in batches for u in b.units.values()})
        raise NormalizeError(
            contract.dataset,
            page.path,
            f"{file_name(page)} publishes figures in several units ({', '.join(units)}); read it with parse_batches",
        )
    return batches[0]
