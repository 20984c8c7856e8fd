"""Risk marts: SQL kept as files in this package, built into schema ``marts`` of the public database.

Each ``<name>.sql`` starts with a header of ``--`` comment lines:

    -- mart: import_concentration
    -- reads: census_trade_imports[, other_dataset ..., marts.other_mart ...]
    -- title: one line
    -- method: how it is computed (continues on following indented comment lines)
    -- column: name: what the column means            (any number)
    -- check: SQL returning offending rows; any row fails the build   (any number)

followed by the statement that creates ``marts.<name>``. Marts read only public curated tables
and other marts (``marts.<name>`` in ``reads``; those are built first), so nothing restricted can
reach them. A build is one new public version: all marts whose inputs
are published, their comments, and their checks, in one transaction; a failed check publishes
nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING

from pipelines.layout import Layout
from pipelines.sql import IDENTIFIER, quote_identifier, quote_literal

if TYPE_CHECKING:
    import duckdb

HEADER = re.compile(r"^--\s?(mart|reads|title|method|column|check):\s?(.*)$")


class MartError(RuntimeError):
    """A mart could not be built or failed its checks; nothing was published."""


@dataclass(frozen=True)
class Mart:
    name: str
    reads: tuple[str, ...]
    title: str
    method: str
    sql: str
    columns: dict[str, str] = field(default_factory=dict)
    checks: tuple[str, ...] = ()

    @property
    def table(self) -> str:
        return f"marts.{quote_identifier(self.name)}"

    @property
    def datasets(self) -> tuple[str, ...]:
        """The curated datasets this mart reads."""
        return tuple(r for r in self.reads if not r.startswith("marts."))

    @property
    def marts(self) -> tuple[str, ...]:
        """The other marts this mart reads (built before it)."""
        return tuple(r.removeprefix("marts.") for r in self.reads if r.startswith("marts."))


def parse_mart(text: str, source: str) -> Mart:
    """A mart from its SQL file text; ``source`` names the file in errors."""
    values: dict[str, list[str]] = {}
    last = None
    body: list[str] = []
    for line in text.splitlines():
        match = HEADER.match(line)
        if match and not body:
            last = match.group(1)
            values.setdefault(last, []).append(match.group(2).strip())
        elif line.startswith("--") and not body and last in ("method", "check"):
            values[last][-1] += " " + line.lstrip("-").strip()
        elif line.strip() or body:
            body.append(line)
    try:
        (name,) = values["mart"]
        (title,) = values["title"]
    except (KeyError, ValueError):
        raise MartError(
            f"{source}: the header needs exactly one '-- mart:' and one '-- title:' line"
        ) from None
    if not IDENTIFIER.match(name):
        raise MartError(f"{source}: mart name {name!r} is not a safe identifier")
    columns = {}
    for entry in values.get("column", []):
        column, _, description = entry.partition(":")
        columns[column.strip()] = description.strip()
    reads = tuple(r.strip() for r in ",".join(values.get("reads", [])).split(",") if r.strip())
    return Mart(
        name=name,
        reads=reads,
        title=title,
        method=" ".join(values.get("method", [])),
        sql="\n".join(body),
        columns=columns,
        checks=tuple(values.get("check", [])),
    )


def build_order(marts: list[Mart]) -> list[Mart]:
    """Marts in name order, except that a mart comes after the marts it reads."""
    by_name = {m.name: m for m in marts}
    ordered: list[Mart] = []
    visiting: set[str] = set()

    def visit(mart: Mart) -> None:
        if mart in ordered:
            return
        if mart.name in visiting:
            raise MartError(f"marts.{mart.name}: reads itself through other marts (a cycle)")
        visiting.add(mart.name)
        for name in mart.marts:
            if name not in by_name:
                raise MartError(f"marts.{mart.name} reads marts.{name}, which no .sql file defines")
            visit(by_name[name])
        ordered.append(mart)

    for mart in sorted(marts, key=lambda m: m.name):
        visit(mart)
    return ordered


def load_marts() -> list[Mart]:
    """Every mart shipped in this package, in build order (name order, inputs first)."""
    package = resources.files(__name__)
    marts = [
        parse_mart(entry.read_text(encoding="utf-8"), entry.name)
        for entry in package.iterdir()
        if entry.name.endswith(".sql")
    ]
    return build_order(marts)


def datasets_read(marts: list[Mart]) -> list[str]:
    """The datasets the marts read (what publish_marts is scheduled on)."""
    return sorted({d for m in marts for d in m.datasets})


@dataclass(frozen=True)
class MartsBuild:
    version: int | None
    built: dict[str, int]
    skipped: dict[str, str]


def _build(con: duckdb.DuckDBPyConnection, marts: list[Mart]) -> tuple[dict[str, int], dict[str, str]]:
    import duckdb

    published = {
        t
        for (t,) in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'curated'"
        ).fetchall()
    }
    built: dict[str, int] = {}
    skipped: dict[str, str] = {}
    con.execute("CREATE SCHEMA IF NOT EXISTS marts")
    for mart in build_order(marts):
        missing = [d for d in mart.datasets if d not in published]
        missing += [f"marts.{m}" for m in mart.marts if m not in built]
        if missing:
            skipped[mart.name] = f"inputs not published yet: {', '.join(missing)}"
            continue
        try:
            con.execute(mart.sql)
        except duckdb.Error as exc:
            raise MartError(f"marts.{mart.name}: {exc}") from None
        for check in mart.checks:
            offending = con.execute(check).fetchall()
            if offending:
                raise MartError(f"marts.{mart.name} failed its check ({check}): e.g. {offending[:3]}")
        comment = (
            f"{mart.title}. Method: {mart.method} "
            f"Reads: {', '.join(r if r.startswith('marts.') else 'curated.' + r for r in mart.reads)}."
        )
        con.execute(f"COMMENT ON TABLE {mart.table} IS {quote_literal(comment)}")
        for column, description in mart.columns.items():
            con.execute(
                f"COMMENT ON COLUMN {mart.table}.{quote_identifier(column)} IS {quote_literal(description)}"
            )
        (rows,) = con.execute(f"SELECT count(*) FROM {mart.table}").fetchone() or (0,)
        built[mart.name] = int(rows)
    return built, skipped


def publish_marts(layout: Layout, keep_versions: int = 10, marts: list[Mart] | None = None) -> MartsBuild:
    """Build every mart whose inputs are published, as one new public version."""
    from pipelines.publish import PublishError, new_public_version

    selected = marts if marts is not None else load_marts()
    if not layout.public_db.exists():
        return MartsBuild(None, {}, {m.name: "nothing published yet" for m in selected})
    outcome: dict[str, tuple[dict[str, int], dict[str, str]]] = {}

    def change(con: duckdb.DuckDBPyConnection, version: int) -> list[str]:
        outcome["result"] = _build(con, selected)
        return []

    try:
        version = new_public_version(layout, keep_versions, "marts", change)
    except PublishError as exc:
        raise MartError(str(exc)) from None
    built, skipped = outcome["result"]
    return MartsBuild(version, built, skipped)
