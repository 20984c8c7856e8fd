"""DuckDB's type names as SQLAlchemy types, for the GX dialect's reflection (``gx_duckdb``).

Each column's type is the SQLAlchemy type of the name DuckDB gives it in
``duckdb_columns().data_type`` (``DOUBLE`` -> ``sqlalchemy.DOUBLE``, ``VARCHAR[]`` ->
``ARRAY(VARCHAR)``), so GX's type expectations name DuckDB's types.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from duckdb_engine import datatypes as duckdb_types
from sqlalchemy import util
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql import sqltypes
from sqlalchemy.sql.type_api import TypeEngine

# DuckDB's type names (as duckdb_columns().data_type spells them) -> the SQLAlchemy type of that name.
_SCALAR_TYPES: dict[str, Callable[[], TypeEngine[Any]]] = {
    "BOOLEAN": sqltypes.BOOLEAN,
    "TINYINT": duckdb_types.TinyInteger,
    "SMALLINT": sqltypes.SMALLINT,
    "INTEGER": sqltypes.INTEGER,
    "BIGINT": sqltypes.BIGINT,
    "HUGEINT": duckdb_types.HugeInteger,
    "UTINYINT": duckdb_types.UTinyInteger,
    "USMALLINT": duckdb_types.USmallInteger,
    "UINTEGER": duckdb_types.UInteger,
    "UBIGINT": duckdb_types.UBigInteger,
    "UHUGEINT": duckdb_types.UHugeInteger,
    "BIGNUM": duckdb_types.VarInt,
    "VARINT": duckdb_types.VarInt,
    "FLOAT": sqltypes.FLOAT,  # DuckDB's FLOAT is 4 bytes (REAL); it names it FLOAT
    "DOUBLE": sqltypes.DOUBLE,
    "VARCHAR": sqltypes.VARCHAR,
    "JSON": sqltypes.JSON,
    "BLOB": sqltypes.BLOB,
    "UUID": sqltypes.UUID,
    "BIT": postgresql.BIT,
    "DATE": sqltypes.DATE,
    "TIME": sqltypes.TIME,
    "TIME WITH TIME ZONE": lambda: sqltypes.TIME(timezone=True),
    "TIMESTAMP": sqltypes.TIMESTAMP,
    "TIMESTAMP_S": sqltypes.TIMESTAMP,
    "TIMESTAMP_MS": sqltypes.TIMESTAMP,
    "TIMESTAMP_NS": sqltypes.TIMESTAMP,
    "TIMESTAMP WITH TIME ZONE": lambda: sqltypes.TIMESTAMP(timezone=True),
    "INTERVAL": postgresql.INTERVAL,
}
_TYPE_NAME = re.compile(r"([A-Za-z_][A-Za-z0-9_ ]*?)\s*(?:\((.*)\))?", re.DOTALL)
_QUOTED = re.compile(r"'((?:[^']|'')*)'")


def _split_top_level(arguments: str) -> list[str]:
    """``a INTEGER, b MAP(VARCHAR, INTEGER)`` -> its two parts: commas inside brackets or quotes stay."""
    parts, depth, quote, start = [], 0, "", 0
    for i, char in enumerate(arguments):
        if quote:
            quote = "" if char == quote else quote  # a doubled quote closes and reopens: same result
        elif char in "'\"":
            quote = char
        elif char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(arguments[start:i].strip())
            start = i + 1
    parts.append(arguments[start:].strip())
    return [p for p in parts if p]


def _field(part: str) -> tuple[str, TypeEngine[Any]]:
    """A STRUCT or UNION member, ``name TYPE`` or ``"quoted name" TYPE``."""
    if part.startswith('"'):
        end = 1
        while True:
            end = part.index('"', end)
            if part[end + 1 : end + 2] != '"':
                break
            end += 2
        return part[1:end].replace('""', '"'), duckdb_type(part[end + 1 :])
    name, _, member_type = part.partition(" ")
    return name, duckdb_type(member_type)


def duckdb_type(name: str) -> TypeEngine[Any]:
    """The SQLAlchemy type of a column whose DuckDB type is ``name`` (``duckdb_columns().data_type``).

    Scalars map to the SQLAlchemy type of the same name, so GX's type expectations name DuckDB's
    types (``DOUBLE``, ``VARCHAR``); lists and arrays map to ``ARRAY``; STRUCT, MAP and UNION to
    duckdb_engine's types. A type DuckDB names but SQLAlchemy cannot represent (an extension's)
    reflects as ``NullType`` with a warning, as SQLAlchemy's own dialects do.
    """
    text_ = name.strip()
    dimensions = 0
    while text_.endswith("]"):
        text_ = text_[: text_.rindex("[")].rstrip()
        dimensions += 1
    if dimensions:
        return sqltypes.ARRAY(duckdb_type(text_), dimensions=dimensions if dimensions > 1 else None)
    match = _TYPE_NAME.fullmatch(text_)
    base, arguments = (match[1].upper(), match[2] or "") if match else ("", "")
    if base == "DECIMAL":
        precision, scale = (int(a) for a in _split_top_level(arguments))
        return sqltypes.DECIMAL(precision, scale)
    if base in ("STRUCT", "UNION"):
        fields = dict(_field(p) for p in _split_top_level(arguments))
        compound: TypeEngine[Any] = (duckdb_types.Struct if base == "STRUCT" else duckdb_types.Union)(fields)
        return compound
    if base == "MAP":
        key, value = _split_top_level(arguments)
        mapping: TypeEngine[Any] = duckdb_types.Map(duckdb_type(key), duckdb_type(value))
        return mapping
    if base == "ENUM":
        return sqltypes.Enum(*(v.replace("''", "'") for v in _QUOTED.findall(arguments)))
    factory = _SCALAR_TYPES.get(base)
    if factory is None:
        util.warn(f"Did not recognize DuckDB type {name!r}; it reflects as NullType")
        return sqltypes.NULLTYPE
    return factory()
