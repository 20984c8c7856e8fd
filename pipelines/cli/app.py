"""The ``scdx`` application, its consoles and the options and helpers its commands share."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from pipelines.common.redact import install_log_redaction
from pipelines.common.settings import Settings, load_settings
from pipelines.contracts import Registry, load_registry

# A run that found no data in its window (months not yet released) is not a failure.


# A run that found no data in its window (months not yet released) is not a failure.
OK_STATUSES = ("published", "no_data", "unchanged")


app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="scdx: the Supply Chain Data Exchange pipeline (refresh, demo, query, releases, lineage).",
)


def _width(stream: object) -> int | None:
    # Rich assumes 80 columns when not on a terminal (make, CI logs); the summary needs more.
    if os.environ.get("COLUMNS"):
        return None
    return None if getattr(stream, "isatty", lambda: False)() else 140


console = Console(width=_width(sys.stdout))


err_console = Console(stderr=True, width=_width(sys.stderr))


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(name)s: %(message)s",
        handlers=[RichHandler(console=err_console, show_path=False, rich_tracebacks=False)],
        force=True,
    )
    for noisy in ("great_expectations", "urllib3", "filelock", "sqlalchemy"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    install_log_redaction()


def cli_settings(data_dir: Path | None, live: bool, replay_url: str | None) -> Settings:
    settings = load_settings()
    changes: dict[str, object] = {}
    if data_dir is not None:
        changes["data_dir"] = data_dir.expanduser().resolve()
    if live:
        changes["live"] = True
    if replay_url:
        changes["replay_url"] = replay_url
    return settings.with_overrides(**changes) if changes else settings


def cli_registry(settings: Settings) -> Registry:
    """The contracts of the settings' schemas directory; one that does not load raises
    ContractError, which the command line shows as one line with exit code 2."""
    return load_registry(settings.schemas_dir)


AllowShrinkOption = Annotated[
    bool,
    typer.Option(
        "--allow-shrink",
        help="Publish even when it removes more of a table's rows than its contract's max_shrink_pct.",
    ),
]


DataDirOption = Annotated[
    Path | None, typer.Option("--data-dir", help="Data directory (default $SCDX_DATA_DIR or ./data).")
]


RestrictedOption = Annotated[
    bool, typer.Option("--restricted", help="The restricted tier instead of the public one.")
]


def tier_name(restricted: bool) -> str:
    return "restricted" if restricted else "public"


def print_query(settings: Settings, sql: str) -> None:
    from pipelines.store.layout import Layout
    from pipelines.store.tiers import open_public

    with open_public(Layout(settings.data_dir)) as con:
        cursor = con.execute(sql)
        columns = [d[0] for d in cursor.description or []]
        rows = cursor.fetchall()
    console.print(f"[bold]Example analyst query[/bold] (read-only):\n[cyan]{sql}[/cyan]")
    table = Table()
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)
