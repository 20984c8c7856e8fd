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

One module per thing read: ``table`` (the CSV file, which table its header is, edition, units),
``figures`` (a published figure and the long form), ``names`` (minerals and countries),
``estimates`` (which figures are estimates), and one per table: ``world``, ``salient``,
``net_import_reliance``. This module is the source module API (pipelines.sources.SourceModule).

Quirks handled in this package and nowhere else (each in the module that reads it):
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

from collections.abc import Iterator

from pipelines.contracts import Contract, Registry
from pipelines.sources import NormalizeError, RawPage, SourceRows
from pipelines.sources.http import FetchedPage
from pipelines.sources.paging import PageContext, file_requests
from pipelines.sources.usgs_mcs.estimates import ESTIMATE_WORDINGS, EstimateWording, note_estimates
from pipelines.sources.usgs_mcs.figures import Cell, LongRows, checked_cell, read_cell
from pipelines.sources.usgs_mcs.names import (
    COUNTRY_CROSSWALK,
    CountryNames,
    commodity_mineral,
    country_name,
    is_aggregate,
    mineral_file_code,
    mineral_names,
    world_mineral,
)
from pipelines.sources.usgs_mcs.net_import_reliance import net_import_reliance_rows
from pipelines.sources.usgs_mcs.salient import SalientColumn, salient_column, salient_rows
from pipelines.sources.usgs_mcs.table import (
    TABLE_TITLES,
    Table,
    clean,
    describe_header,
    edition_of,
    file_name,
    fold,
    mass_unit,
    read_table,
    table_kind,
    wrong_table,
)
from pipelines.sources.usgs_mcs.world import world_rows

# What a file of this source can be (pipelines.sources.formats): a file in hand is checked against it.
FORMATS = ("csv",)

# What a good answer is; an HTML error page behind a 200 is retried by the common client.
EXPECT = ("text/csv", "application/csv", "application/octet-stream", "text/plain")

WORLD_MEASURE_TYPE = "usgs_world_measure"


def fetch_pages(ctx: PageContext) -> Iterator[FetchedPage]:
    """One request per file the contract lists (ScienceBase ``?name=<file>``), through common paging."""
    for request in file_requests(ctx, expect=EXPECT):
        yield ctx.fetch(request)


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
            wrong_table(page, contract, table, kind, TABLE_TITLES["world"], "country_name")
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
        wrong_table(page, contract, table, kind, expected, "commodity")


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


__all__ = [
    "COUNTRY_CROSSWALK",
    "ESTIMATE_WORDINGS",
    "EXPECT",
    "FORMATS",
    "WORLD_MEASURE_TYPE",
    "Cell",
    "CountryNames",
    "EstimateWording",
    "LongRows",
    "SalientColumn",
    "Table",
    "checked_cell",
    "clean",
    "commodity_mineral",
    "country_name",
    "describe_header",
    "edition_of",
    "fetch_pages",
    "file_name",
    "fold",
    "is_aggregate",
    "mass_unit",
    "mineral_file_code",
    "mineral_names",
    "net_import_reliance_rows",
    "note_estimates",
    "parse_batches",
    "parse_page",
    "read_cell",
    "read_table",
    "salient_column",
    "salient_rows",
    "table_kind",
    "wants_world_tables",
    "world_mineral",
    "world_rows",
]
