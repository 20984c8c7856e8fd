"""EIA Open Data API v2 (``https://api.eia.gov/v2/<route>/data/``), for any route.

Nothing here is specific to one route: the contract gives the route (``source.path``), the data
columns (``data[]``), the facets (``facets[<facet>][]``), the frequency and the sort order, in the
API's own parameter names; this module adds the window (``start``/``end`` in the frequency's date
format) and pages with ``offset``/``length`` through the common :func:`pipelines.sources.paging.offset_pages`.
The key travels as the ``api_key`` query parameter (contract ``auth``), so it is redacted like every
credential parameter.

Quirks handled here and nowhere else:
- the body is ``{"response": {"total", "data": [...], "warnings"?, "dateFormat", ...}, "request": ...}``
  and every value is a string, ``total`` included (``"10426"``); decimals may lack their leading
  zero (``".7"``); net generation can be negative;
- a ``warnings`` entry "incomplete return" (the API returns at most 5000 JSON rows per call) means
  "page further", never "done" and never an error;
- column names are camelCase or hyphenated (``gross-generation``); hyphens become underscores
  (``gross_generation``), which is what the contract's field sources name;
- the unit of a data column travels in a sibling column ``<column>-units`` ("megawatthours"): it
  becomes the page's unit of that column (and normalize converts to the type's unit), not a column;
- ``period`` is written in the response's ``dateFormat`` (``YYYY-MM`` for monthly data) and becomes
  the first day of its period;
- an error comes back as ``{"error": ..., "code": ...}`` instead of a ``response``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from pipelines.common.redact import redact_text
from pipelines.contracts import Contract, Registry
from pipelines.sources import NormalizeError, RawPage, SourceRows
from pipelines.sources.http import FetchedPage
from pipelines.sources.paging import PageContext, offset_pages, static_params
from pipelines.sources.window import Window

# What a file of this source can be (pipelines.sources.formats): a file in hand is checked against it.
FORMATS = ("json",)


UNITS_SUFFIX = "-units"
INCOMPLETE_RETURN = "incomplete return"

# EIA's unit names -> units of schemas/types.yaml.
EIA_UNITS = {
    "megawatthours": "MWh",
    "thousand megawatthours": "thousand_MWh",
}

_QUARTER = re.compile(r"^([0-9]{4})-Q([1-4])$")


def window_bounds(contract: Contract, window: Window) -> tuple[str, str]:
    """``start`` and ``end`` of the window in the date format of the contract's frequency."""
    frequency = str(contract.source.params.get("frequency", "monthly"))
    if frequency == "monthly":
        return f"{window.start:%Y-%m}", f"{window.end:%Y-%m}"
    if frequency == "quarterly":
        return (
            f"{window.start.year}-Q{(window.start.month - 1) // 3 + 1}",
            f"{window.end.year}-Q{(window.end.month - 1) // 3 + 1}",
        )
    if frequency == "annual":
        return f"{window.start:%Y}", f"{window.end:%Y}"
    raise ValueError(
        f"{contract.dataset}: EIA frequency {frequency!r} is not supported (monthly, quarterly, annual)"
    )


def page_params(ctx: PageContext) -> list[tuple[str, str]]:
    """The contract's route parameters and the run's window; offset, length and key come later."""
    start, end = window_bounds(ctx.contract, ctx.window)
    return [*static_params(ctx.contract, ctx.registry), ("start", start), ("end", end)]


def _response(body: bytes) -> dict[str, Any]:
    """The ``response`` object of a body; ValueError saying why when it is not an EIA API v2 response."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("response"), dict):
        error = document.get("error") if isinstance(document, dict) else None
        detail = f"the API answered with an error: {error}" if error else "no 'response' object"
        # An error message may quote the request; never let it carry a key further.
        raise ValueError(f"not an EIA API v2 response: {redact_text(str(detail))}")
    response: dict[str, Any] = document["response"]
    if not isinstance(response.get("data"), list):
        raise ValueError("EIA response without a data array")
    return response


def _incomplete(response: Mapping[str, Any]) -> bool:
    warnings = response.get("warnings") or []
    return any(
        isinstance(w, dict) and str(w.get("warning", "")).strip().lower() == INCOMPLETE_RETURN
        for w in warnings
    )


def _total(value: Any) -> int | None:
    """EIA's ``total`` (a string such as ``"10426"``) as a number, None when absent or unreadable."""
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def page_count(page: FetchedPage) -> tuple[int, int | None]:
    """(rows in this page, total rows to page through), as offset_pages wants them.

    ``total`` is the agency's count. A page carrying the "incomplete return" warning is never the
    last one: when the total does not say so already (missing, or reached by this page), the total
    reported here is one row beyond the page, so the next offset is asked for; an empty page ends it.
    """
    try:
        response = _response(page.body)
    except ValueError as exc:
        raise ValueError(f"{page.request.dataset}: {page.request.redacted_url}: {exc}") from None
    rows = len(response["data"])
    total = _total(response.get("total"))
    offset = next((int(v) for k, v in page.request.params if k == "offset"), 0)
    if rows and _incomplete(response) and (total is None or offset + rows >= total):
        total = offset + rows + 1
    return rows, total


def fetch_pages(ctx: PageContext) -> Iterator[FetchedPage]:
    """Every page of the window: offset/length until ``response.total`` rows have come."""
    yield from offset_pages(ctx, page_params(ctx), page_count, expect=("application/json",))


def snake_case(column: str) -> str:
    """EIA's hyphenated column names with underscores (``gross-generation`` -> ``gross_generation``)."""
    return column.replace("-", "_")


def _period_value(value: str | None, date_format: str) -> str | None:
    """A ``period`` in the response's dateFormat -> ``YYYY-MM-DD`` (first day of the period).

    A value that does not have the announced shape is handed on unchanged, so the contract's type
    check reports it with its row and the evolution policy decides.
    """
    if value is None:
        return None
    if date_format == "YYYY-MM" and len(value) == 7:
        return value + "-01"
    if date_format == "YYYY" and len(value) == 4:
        return value + "-01-01"
    quarter = _QUARTER.match(value)
    if quarter:
        return f"{quarter.group(1)}-{3 * int(quarter.group(2)) - 2:02d}-01"
    return value


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def parse_page(page: RawPage, contract: Contract, registry: Registry) -> SourceRows | None:
    """One response (or a response saved by hand) -> its records as text columns.

    Row numbers in errors count the objects of ``response.data`` from 1. None for an empty page
    (the end of paging, or a window with no data).
    """
    try:
        response = _response(page.body)
    except ValueError as exc:
        raise NormalizeError(contract.dataset, page.path, str(exc)) from None
    data: list[Any] = response["data"]
    if not data:
        return None
    names: list[str] = []
    for row_number, record in enumerate(data, start=1):
        if not isinstance(record, dict):
            raise NormalizeError(contract.dataset, page.path, "record is not a JSON object", row=row_number)
        for name in record:
            if name not in names:
                names.append(name)
    date_format = str(response.get("dateFormat") or "YYYY-MM")
    columns: dict[str, list[str | None]] = {}
    units: dict[str, str] = {}
    for name in names:
        values = [_text(record.get(name)) for record in data]
        if name.endswith(UNITS_SUFFIX):
            column = snake_case(name[: -len(UNITS_SUFFIX)])
            units[column] = _unit(values, contract, page, name)
            continue
        if name == "period":
            values = [_period_value(v, date_format) for v in values]
        columns[snake_case(name)] = values
    return SourceRows(
        columns=columns,
        source_rows=len(data),
        units=units,
        first_row=1,
        declared_records=_total(response.get("total")),
    )


def _unit(values: list[str | None], contract: Contract, page: RawPage, column: str) -> str:
    """The one unit a ``<column>-units`` column gives for the page, as a unit of the shared types."""
    published = sorted({v for v in values if v})
    if len(published) != 1:
        raise NormalizeError(
            contract.dataset,
            page.path,
            f"expected one unit per page, found {published or 'none'}",
            field=column,
        )
    unit = EIA_UNITS.get(published[0].strip().lower())
    if unit is None:
        raise NormalizeError(
            contract.dataset,
            page.path,
            f"unit {published[0]!r} is not one this source knows ({', '.join(sorted(EIA_UNITS))})",
            field=column,
        )
    return unit
