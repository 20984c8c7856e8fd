"""``scdx``: the command line of the pipeline (refresh, demo, replay server, datasets, query)."""

from __future__ import annotations

import importlib
import logging
import os
import signal
import sys

from pipelines.cli.app import app, err_console, say
from pipelines.common.errors import ScdxError
from pipelines.store.runs import RunInterrupted

__all__ = ["app", "main"]

# The command modules register their commands on the app when imported; the help lists its panels
# (running the pipeline, querying and exploring, operating) in the order of these imports.
for _module in ("pipeline", "query", "explore", "operate", "releases", "partners"):
    importlib.import_module(f"pipelines.cli.{_module}")


def _interrupt(signum: int, _frame: object) -> None:
    """SIGINT or SIGTERM: end the command through the runs in progress, which record themselves
    as interrupted on the way out (pipelines.orchestration.refresh)."""
    raise RunInterrupted(signal.Signals(signum).name, 128 + signum)


def main() -> None:
    """Console-script entry point.

    SIGINT and SIGTERM end a command cleanly: the run in progress is recorded as interrupted,
    nothing half-published stays, one line says so, and the exit code is 130 or 143.

    Ends with ``os._exit`` after flushing: DuckDB 2.0's nanobind bindings print dozens of
    "leaked instance" lines at interpreter shutdown once GX and duckdb_engine are both imported
    (harmless, but it buries the summary). Everything we own is closed and flushed first.
    """
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        app()  # typer reports bad usage of options and arguments itself (exit code 2)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except RunInterrupted as exc:
        err_console.print(
            f"scdx: {exc}; the run in progress is recorded as interrupted, nothing was half-published",
            highlight=False,
        )
        code = exc.exit_code
    except ScdxError as exc:
        # The one place scdx's errors become exit codes: one line, never a traceback.
        say(f"scdx: {exc}", err=True)
        code = exc.exit_code
    except OSError as exc:  # the machine said no (a full disk, a read-only directory)
        say(f"scdx: {exc}", err=True)
        code = 1
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
