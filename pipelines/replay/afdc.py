"""NREL AFDC station locator semantics over a recorded nearest-stations search.

Recordings are the API's own response bodies (``<recordings>/nrel_afdc/*.json``), each the answer
to one ``nearest.json`` search. The replay holds each search's stations and answers
``GET /api/alt-fuel-stations/v1/nearest.json`` as developer.nrel.gov does:

- ``api_key`` is accepted and not checked (a recording has nothing to protect), so an offline run
  works without a key; live, api.data.gov answers a request without one with HTTP 403;
- ``location`` (or ``latitude``/``longitude``) must be a recorded search's, and ``radius`` (miles,
  default 5.0) at most its radius: stations farther than ``radius`` are left out;
- ``fuel_type`` (comma list or ``all``), ``status`` (default ``E``, or ``all``) and ``access``
  (``public``, ``private``, ``all``) filter the stations;
- ``limit`` (1 to 200, default 20) and ``offset`` page them; ``total_results`` counts every
  station that matches and ``offset`` echoes the request, so paging ends where the API's would;
- a bad parameter is HTTP 422 with the API's ``{"errors": [...]}``.

The other members of a recorded body (the geocoded search point, ``station_counts``) are
answered as recorded; each station object is sent exactly as recorded.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.replay.reply import Reply

ENDPOINT = "/api/alt-fuel-stations/v1/nearest.json"
DEFAULT_LIMIT = 20
MAX_LIMIT = 200
DEFAULT_RADIUS = 5.0
_JSON_TYPE = "application/json; charset=utf-8"


def _json(status: int, body: Any) -> Reply:
    return Reply(status, {"Content-Type": _JSON_TYPE}, json.dumps(body, separators=(",", ":")).encode())


def _invalid(message: str) -> Reply:
    return _json(422, {"errors": [message]})


# The request each recording answers (the body does not echo it), from the VCR cassette that
# recorded it; see recordings/PROVENANCE.md.
RECORDED_SEARCHES: dict[str, dict[str, Any]] = {
    "afdc_nearest_elec_lpg_80203_2018-05-18.json": {
        "location": "80203",
        "radius": 6.0,
        "fuel_types": ("ELEC", "LPG"),
    },
}


@dataclass(frozen=True)
class RecordedSearch:
    """One recorded nearest-stations response: where it searched, for which fuels, what it found."""

    location: str
    radius: float
    fuel_types: tuple[str, ...]
    document: dict[str, Any]

    @property
    def stations(self) -> list[dict[str, Any]]:
        stations: list[dict[str, Any]] = self.document["fuel_stations"]
        return stations


class StationLocatorReplay:
    """Every recorded search under ``directory`` (files named in RECORDED_SEARCHES)."""

    def __init__(self, directory: Path) -> None:
        self.searches: list[RecordedSearch] = []
        for name, request in RECORDED_SEARCHES.items():
            path = directory / name
            if path.exists():
                document = json.loads(path.read_bytes())
                self.searches.append(
                    RecordedSearch(request["location"], request["radius"], request["fuel_types"], document)
                )

    def _search(self, params: dict[str, str]) -> RecordedSearch | None:
        for search in self.searches:
            point = (params.get("latitude"), params.get("longitude"))
            recorded = (str(search.document.get("latitude")), str(search.document.get("longitude")))
            if params.get("location") == search.location or point == recorded:
                return search
        return None

    def answer(self, path: str, query: list[tuple[str, str]]) -> Reply:
        """The API's reply to ``GET nearest.json?query``."""
        params = dict(query)
        if not (params.get("location") or (params.get("latitude") and params.get("longitude"))):
            return _invalid("You must specify a location or latitude and longitude.")
        try:
            radius = float(params.get("radius", DEFAULT_RADIUS))
            offset = int(params.get("offset", "0"))
            limit_text = params.get("limit", str(DEFAULT_LIMIT))
            limit = None if limit_text == "all" else int(limit_text)
        except ValueError:
            return _invalid("radius, offset and limit must be numbers (limit may be 'all').")
        if offset < 0 or (limit is not None and not 1 <= limit <= MAX_LIMIT):
            return _invalid(f"limit must be between 1 and {MAX_LIMIT}, offset 0 or more.")
        search = self._search(params)
        fuels = params.get("fuel_type", "all").split(",")
        if (
            search is None
            or radius > search.radius
            or not set(search.fuel_types if "all" in fuels else fuels) <= set(search.fuel_types)
        ):
            return Reply(
                404,
                {"Content-Type": "text/plain"},
                f"not recorded: no recorded search covers location={params.get('location')} "
                f"radius={radius} fuel_type={','.join(fuels)}".encode(),
            )
        status = params.get("status", "E").split(",")
        access = params.get("access", "all")
        matching = [
            station
            for station in search.stations
            if float(station.get("distance") or 0) <= radius
            and ("all" in fuels or station.get("fuel_type_code") in fuels)
            and ("all" in status or station.get("status_code") in status)
            and (access == "all" or station.get("access_code") == access)
        ]
        window = matching[offset:] if limit is None else matching[offset : offset + limit]
        document = {
            **search.document,
            "total_results": len(matching),
            "offset": offset,
            "fuel_stations": window,
        }
        return _json(200, document)


def routes(recordings_dir: Path) -> dict[str, Callable[[str, list[tuple[str, str]]], Reply]]:
    """The station locator endpoint, if searches are recorded under ``recordings_dir/nrel_afdc``."""
    replay = StationLocatorReplay(recordings_dir / "nrel_afdc")
    return {ENDPOINT: replay.answer} if replay.searches else {}
