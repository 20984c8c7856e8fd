"""Partner submissions (FLOW-style data sharing): CSV or Parquet files a partner signs and submits
to the inbox.

Nothing is fetched: ``scdx partner submit`` puts a file and its signed envelope in the inbox, and
``scdx partner ingest`` lands each verified one (pipelines.orchestration.inbox). The columns are
the contract's own names, in a CSV header or as Parquet column names. Which format a file is, is
told from its bytes (Parquet's ``PAR1`` magic), never its name. A CSV hands over text, a Parquet
file its typed columns; normalize casts either to the contract's types, naming the field and row
of a value that does not cast. The partner of every row is the authenticated submitter, which the
landing manifest carries (``partner_id``); a ``partner_id`` column in the file is dropped and
recorded as drift, never read.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.common.errors import UsageError
from pipelines.contracts import Contract, Registry
from pipelines.sources import DriftEvent, NormalizeError, RawPage, SourceRows
from pipelines.sources.formats import PARQUET_MAGIC

if TYPE_CHECKING:
    from pipelines.sources.http import FetchedPage
    from pipelines.sources.paging import PageContext

FORMATS = ("csv", "parquet")
PARTNER_FIELD = "partner_id"


def fetch_pages(ctx: PageContext) -> Iterator[FetchedPage]:
    """Partner data is never fetched: it arrives through the inbox."""
    raise UsageError(
        f"{ctx.contract.dataset}: partner data is submitted (scdx partner submit), never fetched"
    )


def parse_page(page: RawPage, contract: Contract, registry: Registry) -> SourceRows | None:
    """One submitted CSV or Parquet file -> its columns, with every row's partner taken from the manifest."""
    partner = page.manifest.get(PARTNER_FIELD)
    if not partner:
        raise NormalizeError(contract.dataset, page.path, "not an authenticated partner submission")
    if page.body.startswith(PARQUET_MAGIC):
        read = _parquet_columns(page, contract)
    else:
        read = _csv_columns(page, contract)
    if read is None:
        return None
    columns, rows, first_row = read
    drift: tuple[DriftEvent, ...] = ()
    if PARTNER_FIELD in columns:
        del columns[PARTNER_FIELD]
        drift = (
            DriftEvent(
                PARTNER_FIELD,
                "new_field",
                "ignored",
                "the file carries a partner_id column; every row's partner is the authenticated "
                f"submitter {partner!r}",
            ),
        )
    return SourceRows(
        columns=columns,
        source_rows=rows,
        derived={PARTNER_FIELD: [str(partner)] * rows},
        first_row=first_row,
        drift=drift,
    )


# A file's columns by name, its row count, and the row number of its first data row.
Columns = tuple[dict[str, Any], int, int]


def _csv_columns(page: RawPage, contract: Contract) -> Columns | None:
    reader = csv.reader(io.StringIO(page.body.decode("utf-8-sig")))
    header = next(reader, None)
    if header is None:
        return None
    rows = [row for row in reader if any(value.strip() for value in row)]
    for number, row in enumerate(rows, start=2):
        if len(row) != len(header):
            raise NormalizeError(
                contract.dataset, page.path, f"{len(row)} values for {len(header)} columns", row=number
            )
    if not rows:
        return None
    names = [name.strip() for name in header]
    columns: dict[str, Sequence[str | None]] = {
        name: [row[i].strip() or None for row in rows] for i, name in enumerate(names)
    }
    return columns, len(rows), 2


def _parquet_columns(page: RawPage, contract: Contract) -> Columns | None:
    """The file's typed columns by name (row 1 is its first row: Parquet has no header row)."""
    try:
        table = pq.read_table(page.path)
    except (pa.ArrowException, OSError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NormalizeError(contract.dataset, page.path, f"not a readable Parquet file: {message}") from None
    names = [name.strip() for name in table.column_names]
    if len(set(names)) != len(names):
        raise NormalizeError(contract.dataset, page.path, f"Parquet columns named twice: {names}")
    if not table.num_rows:
        return None
    columns = {name: table.column(i).combine_chunks() for i, name in enumerate(names)}
    return columns, table.num_rows, 1
