"""EIA Open Data API v2 semantics over recorded responses.

Recordings are whole API responses (``<recordings>/eia_v2/*.json``), each saying in its ``request``
block which route it answers. The replay answers that route from the recorded rows, as the API
answers a query:

- ``frequency`` must be the recorded one; ``data[]`` picks data columns (with their ``-units``
  columns), an unknown one is HTTP 400; ``facets[<facet>][]`` filters (values OR-ed), an unknown
  facet is HTTP 400; ``start``/``end`` bound ``period``; ``sort[i][column]``/``sort[i][direction]``
  order the rows (stable, in the recorded order otherwise);
- ``offset``/``length`` page; ``length`` defaults to and is capped at 5000 JSON rows, and a page
  cut by that cap carries the recorded "incomplete return" warning, as the API does;
- ``response.total`` is the number of recorded rows matching, written as a string like upstream;
- ``api_key`` is accepted and ignored (there is nothing to protect in a recording), so the offline
  demo runs without a key;
- bodies are written as EIA writes them: compact JSON with ``/`` escaped as ``\\/``.

Only recorded rows are served: a recording that is one page of a larger answer (the Colorado 2022
file holds 5000 rows of 10426) makes the replay's ``total`` the recorded count, so the pages it
serves always add up to the total they announce.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.replay.reply import Reply

SUBDIR = "eia_v2"
MAX_JSON_ROWS = 5000
_JSON_TYPE = "application/json; charset=utf-8"
_SORT = re.compile(r"^sort\[(\d+)\]\[(column|direction)\]$")
_FACET = re.compile(r"^facets\[([A-Za-z0-9_-]+)\]\[\d*\]$")
_DATA = re.compile(r"^data\[\d*\]$")
UNITS_SUFFIX = "-units"


def render(document: Any) -> bytes:
    """A body formatted as the EIA API formats it: compact JSON, slashes escaped."""
    # "/" only ever occurs inside JSON strings, so replacing it after encoding is safe.
    return json.dumps(document, separators=(",", ":")).replace("/", "\\/").encode()


def _error(status: int, message: str) -> Reply:
    return Reply(status, {"Content-Type": _JSON_TYPE}, render({"error": message, "code": status}))


@dataclass
class _Route:
    """The recorded rows of one route and what the recording says about them."""

    command: str
    frequency: str
    date_format: str
    description: str
    api_version: str
    excel_version: str
    data_columns: list[str]
    warning: dict[str, Any] | None
    rows: list[dict[str, Any]] = field(default_factory=list)


class EiaReplay:
    """Every route recorded under ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.routes: dict[str, _Route] = {}
        for path in sorted(directory.glob("*.json")):
            document = json.loads(path.read_bytes())
            request, response = document["request"], document["response"]
            command = request["command"]
            route = self.routes.get(command)
            if route is None:
                warnings = response.get("warnings") or []
                route = _Route(
                    command=command,
                    frequency=response["frequency"],
                    date_format=response["dateFormat"],
                    description=response["description"],
                    api_version=document.get("apiVersion", ""),
                    excel_version=document.get("ExcelAddInVersion", ""),
                    data_columns=list(request["params"].get("data", [])),
                    warning=warnings[0] if warnings else None,
                )
                self.routes[command] = route
            route.rows.extend(response["data"])

    def answer(self, path: str, query: list[tuple[str, str]]) -> Reply:
        """The API's reply to GET ``path?query``."""
        route = self.routes[path]
        asked = _Query.parse(query)
        if isinstance(asked, Reply):
            return asked
        refused = asked.refusal(route)
        if refused is not None:
            return refused
        single, data = asked.single, asked.data
        try:
            offset = int(single.get("offset", "0"))
            length = int(single.get("length", str(MAX_JSON_ROWS)))
        except ValueError:
            return _error(400, "offset and length must be whole numbers")
        capped = length > MAX_JSON_ROWS
        length = min(length, MAX_JSON_ROWS)
        matched = asked.matching(route)
        if isinstance(matched, Reply):
            return matched
        page = [self._project(row, data, route) for row in matched[offset : offset + length]]
        body: dict[str, Any] = {}
        cut_by_cap = ("length" not in single or capped) and offset + len(page) < len(matched)
        if cut_by_cap and route.warning is not None:
            body["warnings"] = [route.warning]
        body.update(
            total=str(len(matched)),
            dateFormat=route.date_format,
            frequency=route.frequency,
            data=page,
            description=route.description,
        )
        document = {
            "response": body,
            "request": {"command": route.command, "params": asked.echo()},
            "apiVersion": route.api_version,
            "ExcelAddInVersion": route.excel_version,
        }
        return Reply(200, {"Content-Type": _JSON_TYPE}, render(document))

    @staticmethod
    def _project(row: dict[str, Any], data: Sequence[str], route: _Route) -> dict[str, Any]:
        """A record with the dimension columns and only the data columns asked for (and their units)."""
        dropped = {c for c in route.data_columns if c not in data}
        dropped |= {c + UNITS_SUFFIX for c in dropped}
        return {k: v for k, v in row.items() if k not in dropped}


@dataclass
class _Query:
    """A request's parameters as the API reads them: data columns, facets, sorts and the rest."""

    data: list[str] = field(default_factory=list)
    facets: dict[str, list[str]] = field(default_factory=dict)
    sorts: dict[int, dict[str, str]] = field(default_factory=dict)
    single: dict[str, str] = field(default_factory=dict)  # frequency, start, end, offset, length, api_key

    @classmethod
    def parse(cls, query: list[tuple[str, str]]) -> _Query | Reply:
        """The parameters of a query string; HTTP 400 for one the API does not take."""
        asked = cls()
        for name, value in query:
            if _DATA.match(name):
                asked.data.append(value)
            elif facet := _FACET.match(name):
                asked.facets.setdefault(facet.group(1), []).append(value)
            elif sort := _SORT.match(name):
                asked.sorts.setdefault(int(sort.group(1)), {})[sort.group(2)] = value
            elif name in {"frequency", "start", "end", "offset", "length", "api_key"}:
                asked.single[name] = value
            else:
                return _error(400, f"Invalid parameter: {name}")
        return asked

    def refusal(self, route: _Route) -> Reply | None:
        """HTTP 400 for a frequency, data column or facet the route does not have; None when it has them."""
        if self.single.get("frequency", route.frequency) != route.frequency:
            return _error(400, f"Invalid frequency '{self.single['frequency']}' for this route")
        unknown = [c for c in self.data if c not in route.data_columns]
        if unknown:
            return _error(400, f"Invalid data column(s): {', '.join(unknown)}")
        columns = set(route.rows[0]) if route.rows else set()
        for facet_name in self.facets:
            if facet_name not in columns:
                return _error(400, f"Invalid facet: {facet_name}")
        return None

    def matching(self, route: _Route) -> list[dict[str, Any]] | Reply:
        """The route's rows the facets and period bounds select, in the order asked; HTTP 400 for
        a sort on a column the route does not have."""
        start, end = self.single.get("start"), self.single.get("end")
        matched = [
            row
            for row in route.rows
            if all(row.get(name) in wanted for name, wanted in self.facets.items())
            and (start is None or row["period"] >= start)
            and (end is None or row["period"][: len(end)] <= end)
        ]
        columns = set(route.rows[0]) if route.rows else set()
        for _, spec in sorted(self.sorts.items(), reverse=True):  # last key first: stable sorts compose
            column = spec.get("column", "")
            if column not in columns:
                return _error(400, f"Invalid sort column: {column}")
            matched.sort(key=lambda row: str(row.get(column, "")), reverse=spec.get("direction") == "desc")
        return matched

    def echo(self) -> dict[str, Any]:
        """The ``request.params`` block the API echoes (never the key)."""
        single = self.single
        echo: dict[str, Any] = {}
        if "frequency" in single:
            echo["frequency"] = single["frequency"]
        if self.data:
            echo["data"] = self.data
        if self.facets:
            echo["facets"] = self.facets
        for name in ("start", "end"):
            if name in single:
                echo[name] = single[name]
        if self.sorts:
            echo["sort"] = [self.sorts[i] for i in sorted(self.sorts)]
        echo["offset"] = single.get("offset", "0")
        if "length" in single:
            echo["length"] = single["length"]
        return echo


def routes(recordings_dir: Path) -> dict[str, Callable[[str, list[tuple[str, str]]], Reply]]:
    """The EIA routes recorded under ``recordings_dir/eia_v2``."""
    directory = recordings_dir / SUBDIR
    if not directory.is_dir():
        return {}
    replay = EiaReplay(directory)
    return {command: replay.answer for command in replay.routes}
