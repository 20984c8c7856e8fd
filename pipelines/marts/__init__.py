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

import hashlib
import re
import uuid
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import TYPE_CHECKING

from pipelines.common.errors import ScdxError
from pipelines.common.sql import IDENTIFIER, quote_identifier, quote_literal
from pipelines.store import Column, Draft, StoreError, TableSchema
from pipelines.store.layout import Layout

if TYPE_CHECKING:
    import duckdb

HEADER = re.compile(r"^--\s?(mart|reads|title|method|column|check):\s?(.*)$")


class MartError(ScdxError, RuntimeError):
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
    """What a marts build did: the marts built (rows), skipped (inputs missing) and failed (left
    out of the release: a mart that cannot be built from these tables is not shown at all)."""

    version: int | None
    built: dict[str, int]
    skipped: dict[str, str]
    failed: dict[str, str] = field(default_factory=dict)


def _schema(con: duckdb.DuckDBPyConnection, mart: Mart) -> TableSchema:
    """The mart's columns as DuckDB made them, with the comments of its header."""
    comment = (
        f"{mart.title}. Method: {mart.method} "
        f"Reads: {', '.join(r if r.startswith('marts.') else 'curated.' + r for r in mart.reads)}."
    )
    columns = con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE schema_name = 'marts' AND table_name = ? "
        "ORDER BY column_index",
        [mart.name],
    ).fetchall()
    return TableSchema(tuple(Column(n, str(t), mart.columns.get(n, "")) for n, t in columns), comment)


def _definition_sha256(mart: Mart) -> str:
    """What a built mart was made from: its SQL and the header it publishes (title, method, column
    comments), so a changed comment rebuilds it as a changed statement does."""
    header = [mart.title, mart.method, *(f"{c}: {d}" for c, d in mart.columns.items())]
    return hashlib.sha256("\n".join([mart.sql, *header]).encode()).hexdigest()


def build_marts(draft: Draft, changed: set[str] | None = None, marts: list[Mart] | None = None) -> MartsBuild:
    """Rebuild, in a draft release, every mart that reads a table the draft changed (``changed``:
    schema-qualified names), directly or through other marts, or whose SQL or header changed since
    it was built (with ``changed`` None, only those). A mart whose inputs are not all in the draft is
    skipped, and left out if an older build of it is there; a mart whose SQL or checks fail on
    these tables is left out of the release (reported as failed): a release never shows a mart
    built from other data than its tables."""
    import duckdb

    from pipelines.store.segments import drop_relation

    selected = marts if marts is not None else load_marts()
    touched = set(changed or ())
    built: dict[str, int] = {}
    skipped: dict[str, str] = {}
    failed: dict[str, str] = {}
    for mart in build_order(selected):
        tables = draft.tables()
        name = f"marts.{mart.name}"
        inputs = {f"curated.{d}" for d in mart.datasets} | {f"marts.{m}" for m in mart.marts}
        missing = sorted(i.removeprefix("curated.") for i in inputs if i not in tables)
        if missing:
            skipped[mart.name] = f"inputs not published: {', '.join(missing)}"
            if name in tables:
                draft.drop_table(name)
                touched.add(name)
            continue
        existing = tables.get(name)
        stale = existing is None or existing.source_sha256 != _definition_sha256(mart)
        if not stale and not (inputs & touched):
            continue  # built from these very inputs by this very definition already
        con = draft.connection()
        drop_relation(con, name)
        try:
            con.execute(mart.sql)
            for check in mart.checks:
                offending = con.execute(check).fetchall()
                if offending:
                    raise MartError(f"marts.{mart.name} failed its check ({check}): e.g. {offending[:3]}")
        except (duckdb.Error, MartError) as exc:
            failed[mart.name] = str(exc) if isinstance(exc, MartError) else f"marts.{mart.name}: {exc}"
            drop_relation(con, name)
            if name in tables:
                draft.drop_table(name)
            touched.add(name)
            continue
        schema = _schema(con, mart)
        target = draft.scratch() / f"mart-{mart.name}-{uuid.uuid4().hex[:8]}.parquet"
        con.execute(f"COPY {mart.table} TO {quote_literal(str(target))} (FORMAT parquet, COMPRESSION zstd)")
        (rows,) = con.execute(f"SELECT count(*) FROM {mart.table}").fetchone() or (0,)
        draft.replace_table(name, [target], schema, None, kind="mart", source_sha256=_definition_sha256(mart))
        built[mart.name] = int(rows)
        touched.add(name)
    return MartsBuild(None, built, skipped, failed)


def publish_marts(layout: Layout, keep_versions: int = 10, marts: list[Mart] | None = None) -> MartsBuild:
    """Rebuild the marts that are missing or out of date with the published tables, as one release
    (none when every mart is current)."""
    from pipelines.store.tiers import open_store

    store = open_store(layout, "public", keep_versions)
    outcome: list[MartsBuild] = []

    def change(draft: Draft) -> None:
        outcome.append(build_marts(draft, None, marts))

    try:
        release = store.publish(change, "marts")
    except StoreError as exc:
        raise MartError(str(exc)) from None
    if not outcome:  # nothing published yet: nothing to build from
        return MartsBuild(None, {}, {m.name: "nothing published yet" for m in marts or load_marts()})
    return replace(outcome[0], version=release.number if release else None)
