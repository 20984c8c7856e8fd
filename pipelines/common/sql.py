"""The one place SQL text is made from names and values that are not SQL themselves.

Everything that reaches DuckDB from outside (a file's header cell, a response's value, a
partner's upload, a path under the data directory) is either a bound parameter (``?``) or passes
through one of these helpers; nothing else pastes text into a statement. Identifiers that come
from a contract have passed ``IDENTIFIER`` when the contract was loaded and are quoted again here;
names from anywhere else are quoted with every ``"`` doubled, so no name can end its quotes.
Where DuckDB takes no parameter (a table function's file argument, ``ATTACH``, ``COMMENT ON``), a
literal is built by ``quote_literal``: every ``'`` doubled, NUL refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pipelines.common.errors import ScdxError

# A contract's dataset and field names: safe as SQL identifiers and as path segments alike.
IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class UnsafeSqlText(ScdxError, ValueError):
    """A name or value that cannot be written into SQL safely (NUL, or an unchecked identifier)."""


def _refuse_nul(text: str, what: str) -> str:
    if "\x00" in text:
        raise UnsafeSqlText(f"refusing a {what} holding a NUL character: {text[:80]!r}")
    return text


def quote_identifier(name: str) -> str:
    """A contract identifier (dataset, field, schema), double-quoted; refused unless it passes IDENTIFIER."""
    if not IDENTIFIER.match(name):
        raise UnsafeSqlText(f"refusing unsafe SQL identifier {name!r}")
    return f'"{name}"'


def quote_name(name: str) -> str:
    """Any name (a column an agency sent, a header cell) as a quoted identifier: ``"`` doubled."""
    return '"' + _refuse_nul(name, "name").replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """A SQL string literal: ``'`` doubled, NUL refused. Prefer a bound parameter where DuckDB takes one."""
    return "'" + _refuse_nul(text, "value").replace("'", "''") + "'"


def literal_list(texts: Iterable[str]) -> str:
    """A DuckDB list of string literals (``['a', 'b']``), e.g. the files of ``read_parquet``."""
    return "[" + ", ".join(quote_literal(t) for t in texts) + "]"


__all__ = ["IDENTIFIER", "UnsafeSqlText", "literal_list", "quote_identifier", "quote_literal", "quote_name"]
