"""Socrata SODA 2 semantics over recorded rows (BTS Border Crossing/Entry Data, ``keg4-3bc2``).

Recordings are the dataset's CSV export (``<recordings>/bts_border_crossing/*.csv``); the replay
holds its rows as the SODA API holds them (field names ``port_name`` ..., the month as a floating
timestamp, numbers as text, the point as GeoJSON) and answers ``/resource/<id>.json`` as SODA does:

- ``$where``: comparisons (``=``, ``!=``, ``<>``, ``<``, ``<=``, ``>``, ``>=``) and ``BETWEEN ... AND``
  joined by ``AND``, typed by the column (dates compare as timestamps, numbers as numbers);
  other SoQL (``OR``, functions) is answered 400, naming what the replay does not implement;
- ``$order``: columns or ``:id``, each ``ASC`` or ``DESC``; without it, rows in recorded order;
- ``$limit`` (default 1000, at most 50000) and ``$offset`` (default 0);
- ``<column>=<value>``: SODA's simple equality filters;
- ``$$app_token`` is accepted and ignored; any other ``$`` parameter is answered 400.

A row's null values are left out of its JSON object, as Socrata does. Errors are SODA's JSON
error objects with HTTP 400.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pipelines.common.errors import ScdxError
from pipelines.replay.reply import Reply

DEFAULT_LIMIT = 1000
MAX_LIMIT = 50000
_JSON_TYPE = "application/json;charset=utf-8"
_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<number>-?[0-9]+(?:\.[0-9]+)?)"
    r"|(?P<op><>|!=|>=|<=|=|<|>)|(?P<paren>[()])|(?P<word>:?[A-Za-z_][A-Za-z0-9_]*))"
)
_TIMESTAMP_FORMATS = ("%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d")


class SoqlError(ScdxError, ValueError):
    """A query the replay cannot answer; becomes SODA's 400 error object."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _error(error: SoqlError) -> Reply:
    body = {"code": error.code, "error": True, "message": str(error), "data": {}}
    return Reply(400, {"Content-Type": _JSON_TYPE}, json.dumps(body).encode())


def _timestamp(text: str) -> datetime:
    for layout in _TIMESTAMP_FORMATS:
        try:
            return datetime.strptime(text, layout)
        except ValueError:
            continue
    raise SoqlError("query.soql.type-mismatch", f"Could not parse '{text}' as a floating timestamp")


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # text, number, floating_timestamp, point


class SocrataDataset:
    """One Socrata dataset's rows (SODA field names, values as SODA's JSON carries them)."""

    def __init__(self, columns: list[Column], rows: list[dict[str, Any]]) -> None:
        self.columns = {c.name: c for c in columns}
        self.rows = rows

    # --- typed values ----------------------------------------------------------------------

    def _typed(self, column: str, value: Any) -> Any:
        kind = self.columns[column].kind if column in self.columns else "id"
        if value is None:
            return None
        if kind == "floating_timestamp":
            return _timestamp(str(value))
        if kind in ("number", "id"):
            try:
                return float(value)
            except ValueError:
                raise SoqlError("query.soql.type-mismatch", f"'{value}' is not a number") from None
        if kind == "point":
            raise SoqlError("query.soql.type-mismatch", f"the replay does not compare points ({column})")
        return str(value)

    def _value(self, row: dict[str, Any], column: str) -> Any:
        return self._typed(column, row.get(column))

    def _column(self, name: str) -> str:
        if name != ":id" and name not in self.columns:
            raise SoqlError("query.soql.no-such-column", f"No such column: {name}")
        return name

    # --- $where ----------------------------------------------------------------------------

    def _tokens(self, text: str) -> list[tuple[str, str]]:
        tokens, position = [], 0
        while position < len(text.rstrip()):
            match = _TOKEN.match(text, position)
            if not match or match.end() == position:
                raise SoqlError("query.compiler.malformed", f"Could not parse $where at '{text[position:]}'")
            kind = match.lastgroup or ""
            tokens.append((kind, match.group(kind)))
            position = match.end()
        return tokens

    def where(self, text: str) -> Callable[[dict[str, Any]], bool]:
        """A row predicate for a ``$where`` of AND-ed comparisons and BETWEENs."""
        tokens = self._tokens(text)
        tests: list[Callable[[dict[str, Any]], bool]] = []
        index = 0

        def literal(column: str, token: tuple[str, str]) -> Any:
            kind, raw = token
            if kind == "string":
                return self._typed(column, raw[1:-1].replace("''", "'"))
            if kind == "number":
                return self._typed(column, raw)
            raise SoqlError("query.compiler.malformed", f"expected a literal, found '{raw}'")

        def take() -> tuple[str, str]:
            nonlocal index
            if index >= len(tokens):
                raise SoqlError("query.compiler.malformed", "unexpected end of $where")
            index += 1
            return tokens[index - 1]

        while True:
            kind, word = take()
            if kind != "word":
                raise SoqlError(
                    "query.compiler.malformed",
                    f"the replay implements comparisons joined by AND, not '{word}'",
                )
            column = self._column(word)
            kind, operator = take()
            if kind == "word" and operator.upper() == "BETWEEN":
                low = literal(column, take())
                if take()[1].upper() != "AND":
                    raise SoqlError("query.compiler.malformed", "BETWEEN needs AND")
                high = literal(column, take())
                tests.append(self._between(column, low, high))
            elif kind == "op":
                tests.append(self._compare(column, operator, literal(column, take())))
            else:
                raise SoqlError(
                    "query.compiler.malformed", f"expected an operator after {column}, found '{operator}'"
                )
            if index == len(tokens):
                break
            kind, joiner = take()
            if joiner.upper() != "AND":
                raise SoqlError(
                    "query.compiler.malformed",
                    f"the replay implements comparisons joined by AND, not '{joiner}'",
                )
        return lambda row: all(test(row) for test in tests)

    def _compare(self, column: str, operator: str, wanted: Any) -> Callable[[dict[str, Any]], bool]:
        checks: dict[str, Callable[[Any, Any], bool]] = {
            "=": lambda a, b: a == b,
            "!=": lambda a, b: a != b,
            "<>": lambda a, b: a != b,
            "<": lambda a, b: a < b,
            "<=": lambda a, b: a <= b,
            ">": lambda a, b: a > b,
            ">=": lambda a, b: a >= b,
        }
        check = checks[operator]

        def test(row: dict[str, Any]) -> bool:
            value = self._value(row, column)
            return value is not None and check(value, wanted)  # null compares false, as in SQL

        return test

    def _between(self, column: str, low: Any, high: Any) -> Callable[[dict[str, Any]], bool]:
        def test(row: dict[str, Any]) -> bool:
            value = self._value(row, column)
            return value is not None and bool(low <= value <= high)

        return test

    # --- $order ----------------------------------------------------------------------------

    def order(self, rows: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
        """Rows sorted by a ``$order`` list (``a DESC, b``); nulls sort last ascending."""
        keys = []
        for part in text.split(","):
            words = part.split()
            if not words or len(words) > 2 or (len(words) == 2 and words[1].upper() not in ("ASC", "DESC")):
                raise SoqlError("query.compiler.malformed", f"Could not parse $order '{text}'")
            keys.append((self._column(words[0]), len(words) == 2 and words[1].upper() == "DESC"))
        ordered = list(rows)
        for column, descending in reversed(keys):  # stable sorts, last key first

            def key(row: dict[str, Any], column: str = column) -> tuple[bool, Any]:
                value = self._value(row, column)
                return (value is None, 0 if value is None else value)

            ordered.sort(key=key, reverse=descending)
        return ordered

    # --- the endpoint ----------------------------------------------------------------------

    def answer(self, path: str, query: list[tuple[str, str]]) -> Reply:
        """SODA's reply to ``GET /resource/<id>.json?query``."""
        try:
            return self._answer(query)
        except SoqlError as error:
            return _error(error)

    @staticmethod
    def _count(name: str, text: str | None, default: int, maximum: int | None = None) -> int:
        if text is None:
            return default
        if not text.isdigit() or (maximum is not None and int(text) > maximum):
            limit = f" between 0 and {maximum}" if maximum is not None else ""
            raise SoqlError("query.soql.invalid-parameter", f"{name} must be an integer{limit}")
        return int(text)

    def _answer(self, query: list[tuple[str, str]]) -> Reply:
        params: dict[str, str] = {}
        filters: list[tuple[str, str]] = []
        for name, value in query:
            if name == "$$app_token":
                continue
            if name.startswith("$"):
                if name not in ("$where", "$order", "$limit", "$offset"):
                    raise SoqlError("query.soql.invalid-parameter", f"the replay does not implement {name}")
                params[name] = value
            else:
                filters.append((self._column(name), value))
        rows = [row for row in self.rows if all(row.get(c) == v for c, v in filters)]
        if "$where" in params:
            keep = self.where(params["$where"])
            rows = [row for row in rows if keep(row)]
        if "$order" in params:
            rows = self.order(rows, params["$order"])
        offset = self._count("$offset", params.get("$offset"), 0)
        limit = self._count("$limit", params.get("$limit"), DEFAULT_LIMIT, MAX_LIMIT)
        page = [{k: v for k, v in row.items() if k != ":id"} for row in rows[offset : offset + limit]]
        headers = {
            "Content-Type": _JSON_TYPE,
            "X-SODA2-Fields": json.dumps(list(self.columns)),
            "X-SODA2-Types": json.dumps([c.kind for c in self.columns.values()]),
        }
        return Reply(200, headers, render(page))


def render(rows: list[dict[str, Any]]) -> bytes:
    """A body formatted as SODA formats it: one compact object per line, commas leading."""
    if not rows:
        return b"[]\n"
    return ("[" + "\n,".join(json.dumps(row, separators=(",", ":")) for row in rows) + "]\n").encode()


# --- BTS Border Crossing/Entry Data -----------------------------------------------------------

BTS_ENDPOINT = "/resource/keg4-3bc2.json"
BTS_COLUMNS = [
    Column("port_name", "text"),
    Column("state", "text"),
    Column("port_code", "text"),
    Column("border", "text"),
    Column("date", "floating_timestamp"),
    Column("measure", "text"),
    Column("value", "number"),
    Column("latitude", "number"),
    Column("longitude", "number"),
    Column("point", "point"),
]
_WKT = re.compile(r"^POINT \((\S+) (\S+)\)$")


def bts_rows_from_export(path: Path, first_id: int = 1) -> list[dict[str, Any]]:
    """The API's rows of a CSV export: SODA names, "Jan 2024" as a timestamp, WKT as GeoJSON."""
    rows = []
    with path.open(encoding="utf-8-sig", newline="") as handle:
        for number, record in enumerate(csv.DictReader(handle), start=first_id):
            row: dict[str, Any] = {":id": number}
            for header, value in record.items():
                name = header.strip().lower().replace(" ", "_")
                if value == "":
                    continue  # Socrata leaves nulls out of a row's object
                if name == "date":
                    value = datetime.strptime(value, "%b %Y").strftime("%Y-%m-%dT%H:%M:%S.000")
                if name == "point":
                    match = _WKT.match(value)
                    if match is None:
                        raise ValueError(f"{path}: row {number}: point {value!r} is not WKT")
                    row[name] = {"type": "Point", "coordinates": [float(match[1]), float(match[2])]}
                    continue
                row[name] = value
            rows.append(row)
    return rows


def routes(recordings_dir: Path) -> dict[str, Callable[[str, list[tuple[str, str]]], Reply]]:
    """The Socrata datasets recorded under ``recordings_dir`` (BTS border crossings)."""
    exports = sorted((recordings_dir / "bts_border_crossing").glob("*.csv"))
    if not exports:
        return {}
    rows: list[dict[str, Any]] = []
    for path in exports:
        rows.extend(bts_rows_from_export(path, first_id=len(rows) + 1))
    return {BTS_ENDPOINT: SocrataDataset(BTS_COLUMNS, rows).answer}
