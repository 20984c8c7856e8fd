"""Partner submissions (FLOW-style data sharing): CSV files a partner signs and submits to the inbox.

Nothing is fetched: ``scdx partner submit`` puts a file and its signed envelope in the inbox, and
``scdx partner ingest`` lands each verified one (pipelines.orchestration.inbox). The columns are
the contract's own names. The partner of every row is the authenticated submitter, which the
landing manifest carries (``partner_id``); a ``partner_id`` column in the file is dropped and
recorded as drift, never read.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import TYPE_CHECKING

from pipelines.common.errors import UsageError
from pipelines.contracts import Contract, Registry
from pipelines.sources import DriftEvent, NormalizeError, RawPage, SourceRows

if TYPE_CHECKING:
    from pipelines.sources.http import FetchedPage
    from pipelines.sources.paging import PageContext

FORMATS = ("csv",)
PARTNER_FIELD = "partner_id"


def fetch_pages(ctx: PageContext) -> Iterator[FetchedPage]:
    """Partner data is never fetched: it arrives through the inbox."""
    raise UsageError(
        f"{ctx.contract.dataset}: partner data is submitted (scdx partner submit), never fetched"
    )


def parse_page(page: RawPage, contract: Contract, registry: Registry) -> SourceRows | None:
    """One submitted CSV -> its columns, with every row's partner taken from the manifest."""
    partner = page.manifest.get(PARTNER_FIELD)
    if not partner:
        raise NormalizeError(contract.dataset, page.path, "not an authenticated partner submission")
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
    columns = {name: [row[i].strip() or None for row in rows] for i, name in enumerate(names)}
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
        source_rows=len(rows),
        derived={PARTNER_FIELD: [str(partner)] * len(rows)},
        drift=drift,
    )
