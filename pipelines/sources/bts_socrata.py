"""BTS Border Crossing/Entry Data on Socrata (dataset ``keg4-3bc2``), by API or export file.

Paging: Socrata SODA 2 pages with ``$limit``/``$offset`` over a total ``$order`` (the contract's
params) and reports no total, so paging stops at the first short page (pipelines.sources.paging.
offset_pages). The run's window becomes a ``$where`` on the date column, so an incremental run
asks only for the months it needs.

Quirks handled here and nowhere else, for every layout BTS has published:
- the SODA API (JSON) names columns ``port_name``, ``port_code`` ...; the CSV export names them
  ``Port Name``, ``Port Code`` ...; exports up to about 2020 called the point column ``Location``
  and had no Latitude/Longitude columns (they are read from the WKT ``POINT (lon lat)`` then);
- the month is "Jan 2024" in today's export, "03/01/2019 12:00:00 AM" in older exports and a
  floating timestamp "2024-01-01T00:00:00.000" in the API: all become the month's first day;
- older exports wrote port codes as numbers ("209"), losing the leading zeros of "0209";
- older exports named two measures "Truck Containers Full" and "Rail Containers Full"; the
  bts_measures code list records the current name of each former one;
- Socrata's JSON leaves a row's null values out of its object, and gives the point as GeoJSON;
- the state is published by name; its USPS code is looked up in the states code list.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from pipelines.contracts import Contract, Registry
from pipelines.sources import NormalizeError, RawPage, SourceRows
from pipelines.sources.http import FetchedPage
from pipelines.sources.paging import PageContext, offset_pages, static_params
from pipelines.sources.window import Window, add_months

# What a file of this source can be (pipelines.sources.formats): a file in hand is checked against it.
FORMATS = ("csv", "json")

JSON_TYPES = ("application/json",)
BATCH_BYTES = 16 << 20  # CSV read block: one batch holds about 150,000 rows of the export
# Older exports called the point column Location; the API and today's export call it point/Point.
COLUMN_ALIASES = {"location": "point"}
# Every date layout BTS has used for the month of a row.
DATE_FORMATS = (
    "%b %Y",  # Jan 2024 (the CSV export since about 2021)
    "%m/%d/%Y %I:%M:%S %p",  # 03/01/2019 12:00:00 AM (exports up to about 2020)
    "%Y-%m-%dT%H:%M:%S.%f",  # 2024-01-01T00:00:00.000 (SODA floating timestamp)
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d",
)
_WKT_POINT = r"^\s*POINT\s*\(\s*(?P<longitude>[-+0-9.eE]+)\s+(?P<latitude>[-+0-9.eE]+)\s*\)\s*$"


def date_column(contract: Contract) -> str:
    """The agency's name of the column the incremental cursor is on (``date``)."""
    cursor = contract.source.incremental
    if cursor is None:
        raise ValueError(f"{contract.dataset}: the Socrata source needs source.incremental")
    source = contract.field(cursor.field).source
    if source is None:
        raise ValueError(f"{contract.dataset}: incremental field {cursor.field!r} has no source column")
    return source


def where_clause(column: str, window: Window) -> str:
    """SoQL ``$where`` selecting the window's months of a floating-timestamp column."""
    after = add_months(window.end, 1)
    return f"{column} >= '{window.start:%Y-%m-%d}T00:00:00' AND {column} < '{after:%Y-%m-%d}T00:00:00'"


def request_params(ctx: PageContext) -> list[tuple[str, str]]:
    """The contract's fixed parameters ($order) and the window as ``$where``; paging adds the rest."""
    return [
        *static_params(ctx.contract, ctx.registry),
        ("$where", where_clause(date_column(ctx.contract), ctx.window)),
    ]


def _body(page: FetchedPage) -> bytes:
    """The page's bytes, also when pipelines.sources.http spooled a large body to disk (``body_file``)."""
    spooled: Path | None = getattr(page, "body_file", None)
    return spooled.read_bytes() if spooled is not None else page.body


def _page_rows(page: FetchedPage) -> tuple[int, int | None]:
    """Rows in a SODA JSON page; Socrata reports no total, so paging ends at a short page."""
    try:
        rows = json.loads(_body(page))
    except ValueError:
        rows = None
    if not isinstance(rows, list):
        raise ValueError(
            f"{page.request.dataset}: GET {page.request.redacted_url}: not a SODA JSON array of rows"
        )
    return len(rows), None


def fetch_pages(ctx: PageContext) -> Iterator[FetchedPage]:
    """``$limit`` rows at growing ``$offset`` of the window's ``$where``, in the contract's ``$order``."""
    yield from offset_pages(ctx, request_params(ctx), _page_rows, expect=JSON_TYPES)


# --- normalize -----------------------------------------------------------------------------------


def column_name(header: str) -> str:
    """The SODA field name of an export header ("Port Name" -> port_name, Location -> point)."""
    name = header.strip().lstrip("\ufeff").strip().lower().replace(" ", "_")
    return COLUMN_ALIASES.get(name, name)


def month_of(text: str) -> str | None:
    """``YYYY-MM-01`` of a date in any layout BTS has used; None if none matches."""
    value = text.strip()
    for layout in DATE_FORMATS:
        try:
            parsed = datetime.strptime(value, layout)
        except ValueError:
            continue
        return date(parsed.year, parsed.month, 1).isoformat()
    return None


def _map_distinct(array: pa.Array, mapping: Callable[[str], str | None]) -> pa.Array:
    """``mapping`` applied once per distinct value (a month, a port, a measure), then spread back."""
    distinct = pc.unique(array)
    mapped = pa.array([None if v is None else mapping(v) for v in distinct.to_pylist()], pa.string())
    return pc.take(mapped, pc.index_in(array, value_set=distinct))


def _months(array: pa.Array, contract: Contract, page: RawPage, first_row: int) -> pa.Array:
    months = _map_distinct(array, month_of)
    unreadable = pc.and_(pc.is_valid(array), pc.is_null(months))
    if pc.any(unreadable).as_py():
        position = int(pc.index(unreadable, True).as_py())
        raise NormalizeError(
            contract.dataset,
            page.path,
            f"date {array[position].as_py()!r} is in none of the known layouts "
            "('Jan 2024', '03/01/2019 12:00:00 AM', '2024-01-01T00:00:00.000')",
            row=first_row + position,
            field="date",
        )
    return months


def _padded_port_codes(array: pa.Array) -> pa.Array:
    # A port code read as a number upstream ("209") gets its leading zeros back ("0209").
    short = pc.match_substring_regex(array, r"^[0-9]{1,3}$")
    return pc.if_else(short, pc.utf8_lpad(array, width=4, padding="0"), array)


def _current_measures(array: pa.Array, registry: Registry) -> pa.Array:
    renamed = {
        row["former_name"]: row["measure"]
        for row in registry.codelists.rows("bts_measures")
        if row["former_name"]
    }
    return _map_distinct(array, lambda name: renamed.get(name, name))


def _coordinates(point: pa.Array) -> tuple[pa.Array, pa.Array]:
    """(latitude, longitude) text of WKT points; null where a row has no point."""
    parts = pc.extract_regex(point, _WKT_POINT)
    return parts.field("latitude"), parts.field("longitude")


def _state_codes(array: pa.Array, registry: Registry) -> pa.Array:
    usps = {row["name"]: row["usps"] for row in registry.codelists.rows("states")}
    return _map_distinct(array, usps.get)


def undo_quirks(
    columns: dict[str, pa.Array], contract: Contract, registry: Registry, page: RawPage, first_row: int
) -> SourceRows:
    """Text columns under SODA names, in any layout -> one layout, quirks undone (module docstring)."""
    out = dict(columns)
    rows = len(next(iter(columns.values()))) if columns else 0
    if "date" in out:
        out["date"] = _months(out["date"], contract, page, first_row)
    if "port_code" in out:
        out["port_code"] = _padded_port_codes(out["port_code"])
    if "measure" in out:
        out["measure"] = _current_measures(out["measure"], registry)
    if "point" in out and "latitude" not in out and "longitude" not in out:
        out["latitude"], out["longitude"] = _coordinates(out["point"])
    derived = {"state_usps": _state_codes(out["state"], registry)} if "state" in out else {}
    return SourceRows(columns=out, source_rows=rows, derived=derived, first_row=first_row)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict) and value.get("type") == "Point":
        # GeoJSON point of the API -> the export's WKT, so every layout carries one point format.
        longitude, latitude = value["coordinates"]
        return f"POINT ({longitude} {latitude})"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _json_rows(page: RawPage, contract: Contract) -> dict[str, pa.Array]:
    try:
        rows = json.loads(page.body)
    except ValueError as exc:
        raise NormalizeError(contract.dataset, page.path, f"not JSON: {exc}") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise NormalizeError(contract.dataset, page.path, "expected a SODA JSON array of row objects")
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    # Socrata leaves a row's nulls out of its object: a key absent from one row is null there.
    return {name: pa.array([_text(row.get(name)) for row in rows], pa.string()) for name in names}


def _csv_header(page: RawPage, contract: Contract) -> list[str]:
    with page.path.open("rb") as handle:
        first_line = handle.readline().decode("utf-8-sig", errors="replace")
    header = next(csv.reader(io.StringIO(first_line)), [])
    if len(header) < 2:
        raise NormalizeError(contract.dataset, page.path, "expected a CSV export with a header row", row=1)
    return header


def _csv_batches(page: RawPage, contract: Contract) -> Iterator[dict[str, pa.Array]]:
    header = _csv_header(page, contract)
    names = [column_name(h) for h in header]
    options = pa_csv.ConvertOptions(
        column_types=dict.fromkeys(names, pa.string()), null_values=[""], strings_can_be_null=True
    )
    read = pa_csv.ReadOptions(column_names=names, skip_rows=1, block_size=BATCH_BYTES)
    try:
        reader = pa_csv.open_csv(page.path, read_options=read, convert_options=options)
        for batch in reader:
            yield {name: batch.column(name) for name in names}
    except pa.ArrowInvalid as exc:
        message = str(exc).strip().splitlines()[0]
        raise NormalizeError(contract.dataset, page.path, f"not a readable CSV export: {message}") from None


def parse_batches(page: RawPage, contract: Contract, registry: Registry) -> Iterator[SourceRows]:
    """One SODA JSON page or one CSV export (any layout) -> SourceRows, the export in batches.

    Nothing for an empty answer (``[]``: no rows in the window).
    """
    if int(page.manifest.get("bytes", 1)) == 0 or page.path.stat().st_size == 0:
        return
    with page.path.open("rb") as handle:
        start = handle.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
    if start.startswith(b"["):
        columns = _json_rows(page, contract)
        if columns:
            yield undo_quirks(columns, contract, registry, page, first_row=1)
        return
    row = 2  # the header is row 1
    for columns in _csv_batches(page, contract):
        rows = undo_quirks(columns, contract, registry, page, first_row=row)
        row += rows.source_rows
        if rows.source_rows:
            yield rows


def parse_page(page: RawPage, contract: Contract, registry: Registry) -> SourceRows | None:
    """The whole page or file as one SourceRows (None when it has no rows)."""
    batches = list(parse_batches(page, contract, registry))
    if not batches:
        return None
    if len(batches) == 1:
        return batches[0]
    columns = {name: pa.concat_arrays([b.columns[name] for b in batches]) for name in batches[0].columns}
    derived = {name: pa.concat_arrays([b.derived[name] for b in batches]) for name in batches[0].derived}
    return SourceRows(columns=columns, source_rows=sum(b.source_rows for b in batches), derived=derived)
