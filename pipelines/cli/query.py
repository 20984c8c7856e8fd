"""``scdx query``: read-only SQL against the current release, as a table for people or as CSV, JSON
or Parquet for scripts (written by DuckDB itself)."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import duckdb
import typer
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from pipelines.cli.app import EXPLORE, DataDirOption, app, cli_settings, console, say
from pipelines.common.errors import UsageError
from pipelines.common.settings import Settings

TABLE_ROWS = 50
# Statements that only read: DESCRIBE, SHOW, SUMMARIZE, VALUES and FROM-first queries parse as SELECT.
READ_ONLY = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}
COPY_OPTIONS = {"csv": "FORMAT csv, HEADER", "json": "FORMAT json, ARRAY true", "parquet": "FORMAT parquet"}


class Format(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"
    parquet = "parquet"


def duckdb_message(exc: duckdb.Error) -> str:
    """DuckDB's message on one line (without the caret lines pointing into the query)."""
    lines = [line.strip() for line in str(exc).splitlines()]
    return " ".join(line for line in lines if line and not line.startswith(("LINE ", "^")))


def _statement(sql: str) -> str:
    """The one read-only statement of ``sql``, or a UsageError saying why not."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise UsageError(f"query: {duckdb_message(exc)}") from None
    if not statements:
        raise UsageError("query: no SQL statement given")
    if len(statements) > 1:
        raise UsageError(f"query: one statement at a time ({len(statements)} given)")
    (statement,) = statements
    if statement.type not in READ_ONLY:
        kind = statement.type.name
        raise UsageError(f"query: the published data is read-only; {kind} statements are refused")
    return str(statement.query).strip().rstrip(";")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if value != 0 and not 1e-4 <= abs(value) < 1e15:
            return f"{value:.6g}"
        return f"{value:,.6f}".rstrip("0").rstrip(".")
    if isinstance(value, int | Decimal):
        return f"{value:,}"
    return str(value)


def _numeric(type_code: Any) -> bool:
    return str(type_code).split("(")[0] in {
        "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
        "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL",
    }  # fmt: skip


def rows_table(con: duckdb.DuckDBPyConnection, sql: str, limit: int, title: str | None = None) -> None:
    """Print the first ``limit`` rows as a table (numbers right-aligned with separators, column
    names in full), and how many more there are."""
    query = f"SELECT * FROM (\n{sql}\n)"
    cursor = con.execute(f"{query} LIMIT {int(limit)}")
    description = cursor.description or []
    rows = cursor.fetchall()
    table = Table(title=title, title_justify="left")
    for name, type_code, *_ in description:
        numeric = _numeric(type_code)
        table.add_column(name, justify="right" if numeric else "left", min_width=len(name), no_wrap=numeric)
    # Years read as years (2024, not 2,024); every other number with its thousands separators.
    plain = [name == "year" or name.endswith("_year") for name, *_ in description]
    for row in rows:
        table.add_row(
            *(str(v) if p and isinstance(v, int) else _cell(v) for v, p in zip(row, plain, strict=True))
        )
    # As wide as the column names need, wider than the terminal if need be (a pager scrolls).
    needed = Measurement.get(console, console.options.update(width=1_000_000), table).minimum
    Console(
        file=console.file,
        width=max(console.width, needed),
        force_terminal=console.is_terminal,
        color_system=console.color_system,  # type: ignore[arg-type]
    ).print(table)
    if len(rows) == limit:
        (total,) = con.execute(f"SELECT count(*) FROM ({query})").fetchone() or (0,)
        if total > limit:
            say(f"{limit:,} of {total:,} rows; --limit N for more, --format csv for all of them")


def _copy(con: duckdb.DuckDBPyConnection, sql: str, fmt: Format, limit: int | None, out: Path | None) -> None:
    """COPY the result in ``fmt`` to ``out`` (or stdout, through a temporary file: DuckDB writes
    files, and a pipe or an appended file must not be truncated)."""
    query = f"SELECT * FROM (\n{sql}\n)" + (f" LIMIT {int(limit)}" if limit is not None else "")
    if out is not None:
        con.execute(f"COPY ({query}) TO ? ({COPY_OPTIONS[fmt]})", [str(out)])
        return
    if fmt is Format.parquet and sys.stdout.isatty():
        raise UsageError("query: Parquet is binary; give --out FILE or redirect stdout")
    with tempfile.TemporaryDirectory(prefix="scdx-query-") as tmp:
        path = Path(tmp) / f"result.{fmt}"
        con.execute(f"COPY ({query}) TO ? ({COPY_OPTIONS[fmt]})", [str(path)])
        sys.stdout.flush()
        with path.open("rb") as result:
            try:
                shutil.copyfileobj(result, sys.stdout.buffer)
                sys.stdout.flush()
            except BrokenPipeError:  # `| head`: the reader has what it wanted; nothing more to say
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def run_query(
    settings: Settings,
    sql: str,
    fmt: Format = Format.table,
    limit: int | None = None,
    out: Path | None = None,
    title: str | None = None,
    release: int | None = None,
) -> None:
    """Run one read-only statement against the current public release (or the kept release
    ``release``) and print or write it."""
    from pipelines.store import StoreError
    from pipelines.store.layout import Layout
    from pipelines.store.tiers import is_published, open_public  # with SQLAlchemy: only when needed

    statement = _statement(sql)
    layout = Layout(settings.data_dir)
    if not is_published(layout):
        raise UsageError(f"query: nothing published yet in {settings.data_dir} (run `scdx refresh` first)")
    try:
        with open_public(layout, release) as con:
            if fmt is Format.table:
                rows_table(con, statement, TABLE_ROWS if limit is None else limit, title)
            else:
                _copy(con, statement, fmt, limit, out)
    except duckdb.Error as exc:
        raise UsageError(f"query: {duckdb_message(exc)}") from None
    except StoreError as exc:  # a release not kept (or never made)
        raise UsageError(f"query: {exc}") from None


def _format_of(fmt: Format | None, out: Path | None) -> Format:
    if fmt is None:
        suffix = out.suffix.lstrip(".").lower() if out else ""
        fmt = Format(suffix) if suffix in COPY_OPTIONS else Format.table
    if fmt is Format.table and out is not None:
        raise UsageError("query: --out writes csv, json or parquet (give --format or a file ending in one)")
    if out is not None and not out.parent.is_dir():
        raise UsageError(f"query: --out {out}: no directory {out.parent}")
    return fmt


@app.command(rich_help_panel=EXPLORE)
def query(
    sql: Annotated[str, typer.Argument(help="One SQL query (SELECT, WITH, FROM, DESCRIBE, SUMMARIZE ...).")],
    fmt: Annotated[
        Format | None,
        typer.Option(
            "--format",
            "-f",
            help="table (for people; the default), csv, json (an array of objects) or parquet; "
            "default from the --out file's suffix.",
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(
            min=0, help=f"At most N rows (a table shows {TABLE_ROWS} by default; csv, json, parquet all)."
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the result to this file.")] = None,
    release: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Query this kept release (its number in `scdx publish list`) instead of the current one.",
        ),
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Run a read-only SQL query against the current release of the curated tables and marts
    (or an earlier kept release, with --release).

    Tables show numbers right-aligned with separators and say how many rows are left out; csv, json
    and parquet are written by DuckDB, whole, unwrapped and unstyled. A query that fails or would
    change the data ends with one line and exit code 2."""
    settings = cli_settings(data_dir)
    run_query(settings, sql, _format_of(fmt, out), limit, out, release=release)
