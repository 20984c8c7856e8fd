"""The ``scdx`` application, its consoles and the options and helpers its commands share."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.text import Text

from pipelines.common.errors import UsageError
from pipelines.common.redact import install_log_redaction
from pipelines.common.settings import Settings, load_settings
from pipelines.contracts import Registry, load_registry

# A run that found no data in its window (months not yet released) is not a failure.
OK_STATUSES = ("published", "no_data", "unchanged")

# The help lists the commands in these panels, in this order (the order the modules register them).
PIPELINE = "Run the pipeline"
EXPLORE = "Query and explore"
OPERATE = "Operate"


def _version(show: bool) -> None:
    if show:
        try:
            number = version("scdx")
        except PackageNotFoundError:  # a checkout that was never installed
            number = "unknown"
        print(f"scdx {number}")
        raise typer.Exit()


app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
    help="scdx: the Supply Chain Data Exchange pipeline. Exit codes: 0 done, 1 a dataset failed, "
    "was quarantined, blocked or is late, 2 bad usage or configuration.",
)


@app.callback()
def _main(
    _show_version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print scdx's version and exit."),
    ] = False,
) -> None:
    """scdx: the Supply Chain Data Exchange pipeline."""


def _width(stream: object) -> int | None:
    # Rich assumes 80 columns when not on a terminal (make, CI logs); tables for people need more.
    # What is meant for machines is printed unwrapped whatever the width (say(), soft_wrap).
    if os.environ.get("COLUMNS"):
        return None
    return None if getattr(stream, "isatty", lambda: False)() else 140


console = Console(width=_width(sys.stdout))


err_console = Console(stderr=True, width=_width(sys.stderr))


def say(text: str, *, err: bool = False, style: str | None = None) -> None:
    """One line as it is (no markup, no highlighting), never wrapped: scripts read these."""
    (err_console if err else console).print(text, style=style, markup=False, highlight=False, soft_wrap=True)


def _iso_time(moment: datetime) -> Text:
    return Text(moment.astimezone().isoformat(timespec="seconds"))


class _IsoFormatter(logging.Formatter):
    """Log times in ISO 8601 with the UTC offset (2026-04-12T06:00:03+00:00)."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _iso_time(datetime.fromtimestamp(record.created)).plain


# Attributes every LogRecord has; any other was passed as ``extra`` (dataset, run_id, stage ...).
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (ISO 8601, UTC), level, logger, message, the fields a call
    passed as ``extra`` (dataset, run_id ...) and the traceback, if any, as ``exception``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _RECORD_ATTRIBUTES})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def structured_logs() -> bool:
    """SCDX_LOG_FORMAT=json: one JSON object per log line (the nightly's log collector reads them)."""
    return os.environ.get("SCDX_LOG_FORMAT", "").strip().lower() == "json"


def setup_logging(verbose: bool) -> None:
    """Log lines with ISO 8601 times: through rich on a terminal, plain (never wrapped) otherwise,
    JSON objects with SCDX_LOG_FORMAT=json."""
    handler: logging.Handler
    if structured_logs():
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
    elif err_console.is_terminal:
        handler = RichHandler(
            console=err_console, show_path=False, rich_tracebacks=False, log_time_format=_iso_time
        )
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        formatter = _IsoFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
        handler.setFormatter(formatter)
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler], force=True)
    for noisy in ("great_expectations", "urllib3", "filelock", "sqlalchemy"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    install_log_redaction()


def _check_data_dir(data_dir: Path, writes: bool) -> None:
    """Refuse a data directory that is not one (or cannot be written, when the command writes)."""
    existing = data_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"data directory {data_dir}: {existing} is not a directory (set --data-dir)")
    if writes and not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"data directory {data_dir} is not writable (set --data-dir or SCDX_DATA_DIR)")


def cli_settings(
    data_dir: Path | None, live: bool = False, replay_url: str | None = None, *, writes: bool = False
) -> Settings:
    """The settings of a command; ``writes``: the command writes the data directory."""
    settings = load_settings()
    changes: dict[str, object] = {}
    if data_dir is not None:
        changes["data_dir"] = data_dir.expanduser().resolve()
    if live:
        changes["live"] = True
    if replay_url:
        changes["replay_url"] = replay_url
    settings = settings.with_overrides(**changes) if changes else settings
    _check_data_dir(settings.data_dir, writes)
    return settings


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


VerboseOption = Annotated[
    bool, typer.Option("--verbose", "-v", help="Log every step (DEBUG) instead of the main ones.")
]


def tier_name(restricted: bool) -> str:
    return "restricted" if restricted else "public"
