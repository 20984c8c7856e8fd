"""Census International Trade API semantics over recorded responses.

Recordings are the API's own response bodies (array of arrays, header first, all strings), one
file per endpoint and month: ``<recordings>/census_intltrade/<endpoint dir>/YYYY-MM.json``. The
replay answers any query the real API would accept for the variables recorded:

- ``get=A,B,...`` selects and orders variables; an unknown one is HTTP 400, as upstream;
- every other parameter except ``key`` is a predicate; repeated values are OR-ed, a trailing
  ``*`` is a prefix wildcard; ``time`` takes ``YYYY-MM``, ``YYYY`` or ``from YYYY-MM to YYYY-MM``;
- predicate variables are appended to the header (so one also in ``get`` appears twice);
- no matching rows is HTTP 204 with an empty body.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from pipelines.replay.reply import Reply

ENDPOINT_DIRS = {
    "/data/timeseries/intltrade/imports/hs": "imports_hs",
    "/data/timeseries/intltrade/exports/hs": "exports_hs",
}
NON_PREDICATES = {"get", "key"}
_TIME_RANGE = re.compile(r"^from\s+(\d{4}-\d{2})\s+to\s+(\d{4}-\d{2})$")
_JSON_TYPE = "application/json;charset=utf-8"


def render(header: Sequence[str], rows: Sequence[Sequence[str]]) -> bytes:
    """A body formatted as the API formats it: one array per line."""
    lines = [json.dumps(list(header), separators=(",", ":"))]
    lines += [json.dumps(list(row), separators=(",", ":")) for row in rows]
    return ("[" + ",\n".join(lines) + "]").encode()


def _error(status: int, message: str) -> Reply:
    return Reply(status, {"Content-Type": "text/plain;charset=utf-8"}, f"error: {message}".encode())


def _time_matches(value: str, wanted: str) -> bool:
    ranged = _TIME_RANGE.match(wanted.strip())
    if ranged:
        return ranged.group(1) <= value <= ranged.group(2)
    if re.fullmatch(r"\d{4}", wanted):
        return value.startswith(wanted + "-")
    return value == wanted


def _value_matches(value: str, wanted: str) -> bool:
    if wanted.endswith("*"):
        return value.startswith(wanted[:-1])
    return value == wanted


class CensusTradeReplay:
    """All recorded months of every Census trade endpoint found under ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.rows: dict[str, list[dict[str, str]]] = {}
        self.variables: dict[str, list[str]] = {}
        for endpoint, subdir in ENDPOINT_DIRS.items():
            files = sorted((directory / subdir).glob("*.json"))
            if not files:
                continue
            rows: list[dict[str, str]] = []
            variables: list[str] = []
            for path in files:
                header, *data = json.loads(path.read_bytes())
                for name in header:
                    if name not in variables:
                        variables.append(name)
                rows.extend(dict(zip(header, row, strict=True)) for row in data)
            self.rows[endpoint] = rows
            self.variables[endpoint] = variables

    def answer(self, path: str, query: list[tuple[str, str]]) -> Reply:
        """The API's reply to GET ``path?query``."""
        known = self.variables[path]
        requested = [v for name, value in query if name == "get" for v in value.split(",") if v]
        if not requested:
            return _error(400, "the 'get' parameter is required")
        for name in requested:
            if name not in known:
                return _error(400, f"unknown variable '{name}'")
        predicates: dict[str, list[str]] = {}
        for name, value in query:
            if name in NON_PREDICATES:
                continue
            if name not in known:
                return _error(400, f"unknown predicate variable: '{name}'")
            predicates.setdefault(name, []).append(value)
        selected = [
            row
            for row in self.rows[path]
            if all(
                any(
                    (_time_matches if name == "time" else _value_matches)(row.get(name, ""), w)
                    for w in wanted
                )
                for name, wanted in predicates.items()
            )
        ]
        if not selected:
            return Reply(204, {}, b"")
        header = requested + list(predicates)
        return Reply(
            200, {"Content-Type": _JSON_TYPE}, render(header, [[row[v] for v in header] for row in selected])
        )


def routes(recordings_dir: Path) -> dict[str, Callable[[str, list[tuple[str, str]]], Reply]]:
    """The Census endpoints recorded under ``recordings_dir/census_intltrade``."""
    replay = CensusTradeReplay(recordings_dir / "census_intltrade")
    return {endpoint: replay.answer for endpoint in replay.rows}
