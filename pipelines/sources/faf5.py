"""Freight Analysis Framework, version 5 (BTS/FHWA, produced by ORNL): the regional database.

Paging: none. A release is one published file, ``FAF5.x.zip`` (the contract's path), holding one
CSV with every flow record: origin and destination FAF zone, foreign origin and destination region,
foreign inbound, domestic and foreign outbound mode, SCTG2 commodity, trade type, distance band,
then wide measure columns per year. The real file has millions of rows, so it is read as a stream
(the zip member, decompressed as it is read, parsed in blocks): memory holds one block, not the file.

Quirks handled here and nowhere else:
- the CSV is inside a zip archive (a CSV extracted by hand is read as well, for ``ingest-file``);
- codes are written as numbers: zones lose their leading zero (``11`` is zone 011) and SCTG2 too
  (``1`` is 01); foreign codes and foreign modes are empty where they do not apply;
- measures are wide, one column per measure and year (``tons_2017`` ... ``tmiles_2050``); each flow
  record becomes one row per year, with the measure columns named by their stem (``tons``,
  ``value``, ``current_value``, ``tmiles``);
- which years are forecasts is read from the header, not assumed: FAF publishes current-dollar
  values (``current_value_YYYY``) only for years that have happened, so a year without one is a
  forecast, except the base year (the header's first), whose constant dollars are its current
  dollars (its current value is its value);
- a record is identified by all ten classification codes, some of which are empty, so a
  ``flow_id`` joins them (``-`` for an empty one) to give the table a key without nulls.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import IO, Any

from pipelines.contracts import Contract, Registry
from pipelines.sources import NormalizeError, RawPage, SourceRows
from pipelines.sources.http import FetchedPage
from pipelines.sources.paging import PageContext

# What a file of this source can be (pipelines.sources.formats): a file in hand is checked against it.
FORMATS = ("zip", "csv")

# Classification columns of the FAF5 layout, in the file's order: they make up a record's flow_id.
DIMENSIONS = (
    "fr_orig",
    "dms_orig",
    "dms_dest",
    "fr_dest",
    "fr_inmode",
    "dms_mode",
    "fr_outmode",
    "sctg2",
    "trade_type",
    "dist_band",
)

# Codes the CSV writes as plain numbers, and the width their code lists give them.
PADDED = {"fr_orig": 3, "dms_orig": 3, "dms_dest": 3, "fr_dest": 3, "sctg2": 2}
# The one measure FAF publishes only for years that have happened.
CURRENT_VALUE = "current_value"
CONSTANT_VALUE = "value"
MEASURE_COLUMN = re.compile(r"^(?P<stem>[a-z][a-z0-9_]*?)_(?P<year>(19|20)[0-9]{2})$")
ZIP_MAGIC = b"PK\x03\x04"
ZIP_TYPES = ("application/zip", "application/x-zip-compressed", "application/octet-stream")
# Bytes of CSV parsed at a time (about 24,000 FAF5 records): what memory holds, however large the file.
BLOCK_BYTES = 8 * 1024 * 1024


def fetch_pages(ctx: PageContext) -> Iterator[FetchedPage]:
    """The release is one file: a single GET of the contract's path (a zip of one CSV)."""
    file_name = ctx.contract.source.path.rsplit("/", 1)[-1]
    yield ctx.fetch(ctx.request((), file_name, expect=ZIP_TYPES))


@dataclass(frozen=True)
class WideLayout:
    """What a FAF5 header says: classification columns, measures per year, and which years are forecasts."""

    columns: tuple[str, ...]
    other: tuple[str, ...]  # every column that is not a measure of a year (the classification codes)
    stems: tuple[str, ...]  # measure stems, in the header's order (tons, value, current_value, tmiles)
    years: tuple[int, ...]
    forecast_years: frozenset[int]

    @property
    def base_year(self) -> int:
        return self.years[0]


def read_layout(header: list[str], dataset: str, where: str) -> WideLayout:
    """The layout of a FAF5 regional header; an error naming the column when it is inconsistent.

    Every measure stem must have every year except ``current_value``, which FAF publishes for the
    years after the base year that have happened: those are the estimate years, the rest forecasts.
    """
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise NormalizeError(dataset, where, f"header repeats column(s) {', '.join(duplicates)}")
    by_stem: dict[str, set[int]] = {}
    other: list[str] = []
    for name in header:
        match = MEASURE_COLUMN.match(name)
        if match:
            by_stem.setdefault(match["stem"], set()).add(int(match["year"]))
        else:
            other.append(name)
    if not by_stem:
        raise NormalizeError(dataset, where, "header has no measure columns such as tons_2017")
    years = sorted(set().union(*by_stem.values()))
    for stem, stem_years in by_stem.items():
        if stem == CURRENT_VALUE:
            continue
        absent = [y for y in years if y not in stem_years]
        if absent:
            raise NormalizeError(
                dataset, where, f"header has no column {stem}_{absent[0]} (other measures have {absent[0]})"
            )
    current = by_stem.get(CURRENT_VALUE, set())
    if years[0] in current:
        # Only a year after the base year can carry a separate current-dollar value.
        raise NormalizeError(dataset, where, f"header has {CURRENT_VALUE}_{years[0]} for the base year")
    forecasts = frozenset(y for y in years[1:] if y not in current)
    late_estimates = [y for y in sorted(current) if forecasts and y > min(forecasts)]
    if late_estimates:
        raise NormalizeError(
            dataset,
            where,
            f"header has {CURRENT_VALUE}_{late_estimates[0]} after forecast year {min(forecasts)}",
        )
    # A layout without current dollars (FAF5.0: base year and forecasts) still has the base year's.
    stems = (*by_stem, *(() if CURRENT_VALUE in by_stem else (CURRENT_VALUE,)))
    return WideLayout(
        columns=tuple(header),
        other=tuple(other),
        stems=stems,
        years=tuple(years),
        forecast_years=forecasts,
    )


def _first_line(stream: IO[bytes], dataset: str, where: str) -> list[str]:
    line = stream.readline(1 << 16)
    text = line.decode("utf-8-sig", errors="replace").strip()
    if not text:
        raise NormalizeError(dataset, where, "empty CSV: no header row")
    return [name.strip().strip('"') for name in text.split(",")]


def _open_csv(stack: ExitStack, page: RawPage, dataset: str) -> tuple[IO[bytes], IO[bytes], str]:
    """(stream for the header, stream for the data, what to call it) of the page's CSV.

    Two streams of the same member: the header is read first to type every column as text.
    """
    with page.path.open("rb") as probe:
        magic = probe.read(4)
    if magic == ZIP_MAGIC:
        try:
            archive = stack.enter_context(zipfile.ZipFile(page.path))
        except zipfile.BadZipFile as exc:
            raise NormalizeError(dataset, page.path, f"not a readable zip archive: {exc}") from None
        members = [i.filename for i in archive.infolist() if i.filename.lower().endswith(".csv")]
        if len(members) != 1:
            raise NormalizeError(
                dataset,
                page.path,
                f"expected one CSV member in the zip archive, found {len(members)}: {', '.join(members) or 'none'}",
            )
        (member,) = members
        return (
            stack.enter_context(archive.open(member)),
            stack.enter_context(archive.open(member)),
            f"{page.path}:{member}",
        )
    if magic[:1] in (b"<", b"{", b"["):
        raise NormalizeError(
            dataset, page.path, "expected the FAF5 zip (or its CSV), got an HTML or JSON document"
        )
    return (
        stack.enter_context(page.path.open("rb")),
        stack.enter_context(page.path.open("rb")),
        str(page.path),
    )


def _quirks_undone(batch: Any, layout: WideLayout) -> dict[str, Any]:
    """The classification columns of one block with their codes as the code lists write them."""
    import pyarrow.compute as pc

    out: dict[str, Any] = {}
    for name in layout.other:
        column = batch.column(name)
        width = PADDED.get(name)
        out[name] = pc.utf8_lpad(column, width=width, padding="0") if width else column
    return out


def _flow_id(codes: dict[str, Any]) -> Any:
    import pyarrow.compute as pc

    parts = [pc.fill_null(codes[name], "-") for name in DIMENSIONS]
    return pc.binary_join_element_wise(*parts, ".")


def parse_batches(page: RawPage, contract: Contract, registry: Registry) -> Iterator[SourceRows]:
    """A FAF5 regional file -> one SourceRows per block of records and year, streamed.

    Each SourceRows holds one year of one block: the classification codes (quirks undone), the
    measures of that year under their stems, and the derived ``year``, ``is_forecast`` and
    ``flow_id``. Row ``i`` of it is file row ``first_row + i``, so an error names the file's row.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    dataset = contract.dataset
    if page.path.stat().st_size == 0:
        return
    with ExitStack() as stack:
        header_stream, data_stream, where = _open_csv(stack, page, dataset)
        header = _first_line(header_stream, dataset, where)
        layout = read_layout(header, dataset, where)
        try:
            reader = pacsv.open_csv(
                data_stream,
                read_options=pacsv.ReadOptions(block_size=BLOCK_BYTES, use_threads=False),
                convert_options=pacsv.ConvertOptions(
                    # Everything as text: common normalize casts to the contract and names a bad row.
                    column_types={name: pa.string() for name in header},
                    strings_can_be_null=True,
                    null_values=[""],
                ),
            )
        except (pa.ArrowInvalid, zipfile.BadZipFile, EOFError, OSError) as exc:
            raise NormalizeError(dataset, where, f"unreadable CSV: {str(exc).splitlines()[0]}") from None
        if list(reader.schema.names) != header:
            raise NormalizeError(dataset, where, f"CSV header {reader.schema.names} is not {header}")
        row = 2  # the header is row 1
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except (pa.ArrowInvalid, zipfile.BadZipFile, EOFError, OSError) as exc:
                raise NormalizeError(
                    dataset, where, f"unreadable after row {row - 1}: {str(exc).splitlines()[0]}"
                ) from None
            yield from _year_rows(batch, layout, row)
            row += batch.num_rows


def _year_rows(batch: Any, layout: WideLayout, first_row: int) -> Iterator[SourceRows]:
    """One block of wide records as one SourceRows per year (the long form, a year at a time)."""
    import pyarrow as pa

    n = batch.num_rows
    codes = _quirks_undone(batch, layout)
    flow_id = _flow_id(codes) if all(name in codes for name in DIMENSIONS) else None
    for position, year in enumerate(layout.years):
        columns = dict(codes)
        for stem in layout.stems:
            name = f"{stem}_{year}"
            if name in layout.columns:
                columns[stem] = batch.column(name)
            elif stem == CURRENT_VALUE and year == layout.base_year:
                columns[stem] = batch.column(f"{CONSTANT_VALUE}_{year}")
            else:
                # A forecast year has no current-dollar value.
                columns[stem] = pa.nulls(n, pa.string())
        derived: dict[str, Any] = {
            "year": pa.repeat(pa.scalar(year, pa.int64()), n),
            "is_forecast": pa.repeat(pa.scalar(year in layout.forecast_years, pa.bool_()), n),
        }
        if flow_id is not None:
            derived["flow_id"] = flow_id
        yield SourceRows(
            columns=columns,
            # A record is one source row, however many years it spreads over.
            source_rows=n if position == 0 else 0,
            derived=derived,
            first_row=first_row,
        )


def parse_page(page: RawPage, contract: Contract, registry: Registry) -> SourceRows | None:
    """The whole file as one SourceRows (small files only; normalize streams with parse_batches)."""
    import pyarrow as pa

    parts = list(parse_batches(page, contract, registry))
    if not parts:
        return None
    columns = {name: pa.concat_arrays([p.columns[name] for p in parts]) for name in parts[0].columns}
    derived = {name: pa.concat_arrays([p.derived[name] for p in parts]) for name in parts[0].derived}
    return SourceRows(columns=columns, source_rows=sum(p.source_rows for p in parts), derived=derived)
