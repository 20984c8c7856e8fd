"""NREL Alternative Fuels Data Center (AFDC) station locator API (``/api/alt-fuel-stations/v1``).

Paging: NREL ``offset``/``limit``; the body's ``total_results`` says when the last page has
arrived (pipelines.sources.paging.offset_pages). The key travels as the ``api_key`` query parameter (the
contract's auth block; pipelines.common.redact keeps it out of everything written).

Quirks handled here and nowhere else:
- a response is one JSON object: the search (latitude, longitude, precision), counts by fuel and
  the stations in ``fuel_stations``; each station, a nested object, becomes one row;
- ``ev_connector_types`` is a JSON array and stays a list (a list column); other nested objects
  (``ev_network_ids``) are carried as JSON text;
- attributes appear over the years (``facility_type``, ``ev_pricing`` ...) and optional ones are
  left out of some stations (``ev_network_ids``): an attribute a station lacks is null for it,
  one no station of the page has is a missing column (common normalize applies the contract's
  missing_field policy and records the drift);
- the station ``id`` is an integer in JSON; it is an identifier, kept as text;
- ``access_code`` (public / private) came later than ``groups_with_access_code``: responses of
  early 2018 and before carry only the older field, whose text starts with the same fact
  ("Public - Credit card at all times", "Private - Government only", "TEMPORARILY UNAVAILABLE
  (Public)"). A station without ``access_code`` gets it derived from that text (the derivation is
  recorded as drift, action ``derived``); a text that says neither public nor private ("PLANNED -
  not yet accessible") is an error naming the station, never a guess or a null.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipelines.contracts import Contract, Registry
from pipelines.sources import DriftEvent, NormalizeError, RawPage, SourceRows
from pipelines.sources.http import FetchedPage
from pipelines.sources.paging import PageContext, offset_pages, static_params

# What a file of this source can be (pipelines.sources.formats): a file in hand is checked against it.
FORMATS = ("json",)


JSON_TYPES = ("application/json",)
STATIONS = "fuel_stations"
ACCESS = "access_code"
OLDER_ACCESS = "groups_with_access_code"

# groups_with_access_code as the station locator wrote it before access_code existed (values seen
# in real responses and AFDC exports: "Public", "Public - Call ahead", "Public - Card key at all
# times", "Public - Credit card at all times", "Public - see hours", "Private", "Private access
# only", "Private - Government only", "Private - Fleet customers only", each possibly wrapped in a
# status: "TEMPORARILY UNAVAILABLE (Public)", "PLANNED - not yet accessible (Private)"). The access
# is the text's first word, inside the status wrapper when there is one.
_STATUS_WRAPPER = re.compile(
    r"^(?:temporarily unavailable|planned - not yet accessible)\s*\((?P<inner>.*)\)$", re.I
)
_OLDER_ACCESS_WORDS = {"public": "public", "private": "private"}


def _body(page: FetchedPage) -> bytes:
    """The page's bytes, also when pipelines.sources.http spooled a large body to disk (``body_file``)."""
    spooled: Path | None = getattr(page, "body_file", None)
    return spooled.read_bytes() if spooled is not None else page.body


def _page_rows(page: FetchedPage) -> tuple[int, int | None]:
    """(stations in this page, total_results of the search) of a station locator response."""
    try:
        document = json.loads(_body(page))
    except ValueError:
        document = None
    if not isinstance(document, dict) or not isinstance(document.get(STATIONS), list):
        raise ValueError(
            f"{page.request.dataset}: GET {page.request.redacted_url}: not a station locator response "
            f"(no {STATIONS} array)"
        )
    total = document.get("total_results")
    return len(document[STATIONS]), int(total) if total is not None else None


def fetch_pages(ctx: PageContext) -> Iterator[FetchedPage]:
    """The contract's search (fuel type, location, radius) page by page, ``limit`` stations each."""
    yield from offset_pages(ctx, static_params(ctx.contract, ctx.registry), _page_rows, expect=JSON_TYPES)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _stations(page: RawPage, contract: Contract) -> tuple[list[dict[str, Any]], int | None]:
    """(the stations of a response, the ``total_results`` it declares for the whole search)."""
    try:
        document = json.loads(page.body)
    except ValueError as exc:
        raise NormalizeError(contract.dataset, page.path, f"not JSON: {exc}") from None
    stations = document.get(STATIONS) if isinstance(document, dict) else None
    if not isinstance(stations, list):
        raise NormalizeError(
            contract.dataset, page.path, f"expected the station locator's JSON object with a {STATIONS} array"
        )
    for number, station in enumerate(stations, start=1):
        if not isinstance(station, dict):
            raise NormalizeError(contract.dataset, page.path, "a station is not a JSON object", row=number)
    total = document.get("total_results")
    if total is not None and (not isinstance(total, int) or isinstance(total, bool) or total < 0):
        raise NormalizeError(
            contract.dataset, page.path, f"total_results is {total!r}, not a count", field="total_results"
        )
    return stations, total


def _list_column(stations: list[dict[str, Any]], name: str, contract: Contract, page: RawPage) -> pa.Array:
    values: list[list[str] | None] = []
    for number, station in enumerate(stations, start=1):
        value = station.get(name)
        if value is not None and not isinstance(value, list):
            raise NormalizeError(
                contract.dataset, page.path, f"expected a JSON array, found {value!r}", row=number, field=name
            )
        values.append(None if value is None else [str(v) for v in value])
    return pa.array(values, pa.list_(pa.string()))


def access_from_older_field(text: str) -> str | None:
    """public or private from an older response's ``groups_with_access_code``; None if it says neither."""
    inner = text.strip()
    wrapped = _STATUS_WRAPPER.match(inner)
    if wrapped:
        inner = wrapped.group("inner").strip()
    first = re.match(r"[a-z]+", inner, re.I)
    return _OLDER_ACCESS_WORDS.get(first.group(0).lower()) if first else None


def _access_codes(
    stations: list[dict[str, Any]], contract: Contract, page: RawPage
) -> tuple[list[str | None], DriftEvent | None]:
    """Each station's access_code, derived from groups_with_access_code where a station lacks it."""
    codes: list[str | None] = []
    derived: list[str] = []
    for number, station in enumerate(stations, start=1):
        code, older = station.get(ACCESS), station.get(OLDER_ACCESS)
        if code is not None or older is None:
            codes.append(_text(code))
            continue
        access = access_from_older_field(str(older))
        if access is None:
            raise NormalizeError(
                contract.dataset,
                page.path,
                f"station {station.get('id')} has no {ACCESS} and its older field {OLDER_ACCESS} "
                f"{older!r} says neither public nor private; {ACCESS} cannot be derived",
                row=number,
                field=ACCESS,
            )
        codes.append(access)
        derived.append(str(older))
    if not derived:
        return codes, None
    event = DriftEvent(
        ACCESS,
        "missing_field",
        "derived",
        f"{len(derived)} of {len(stations)} station(s) in {page.path.name} carry no {ACCESS} (an older "
        f"API edition); derived from the older field {OLDER_ACCESS} "
        f"({', '.join(sorted(set(derived))[:5])})",
    )
    return codes, event


def parse_page(page: RawPage, contract: Contract, registry: Registry) -> SourceRows | None:
    """One response (or a downloaded JSON file) -> one row per station; None if it has none.

    Row numbers in errors count stations in ``fuel_stations`` from 1.
    """
    stations, total = _stations(page, contract)
    if not stations:
        return None
    names: dict[str, None] = {}
    for station in stations:
        names.update(dict.fromkeys(station))
    columns: dict[str, pa.Array] = {}
    for name in names:
        if any(isinstance(station.get(name), list) for station in stations):
            columns[name] = _list_column(stations, name, contract, page)
        else:
            columns[name] = pa.array([_text(station.get(name)) for station in stations], pa.string())
    drift: tuple[DriftEvent, ...] = ()
    if OLDER_ACCESS in names:
        codes, event = _access_codes(stations, contract, page)
        if event is not None:
            columns[ACCESS] = pa.array(codes, pa.string())
            drift = (event,)
    return SourceRows(
        columns=columns, source_rows=len(stations), first_row=1, declared_records=total, drift=drift
    )
