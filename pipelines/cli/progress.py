"""The progress of a refresh as the command line shows it: a live display (rich) when stderr is a
terminal, plain log lines otherwise (make, CI, a pipe) or when logs are structured."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from rich.filesize import decimal
from rich.progress import BarColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichDisplay

from pipelines.cli.app import err_console, structured_logs
from pipelines.common.progress import LogProgress, Progress, Tally


class LiveProgress:
    """A line per dataset (its stage, pages fetched, bytes landed, rows staged) under a bar of
    datasets done out of the total."""

    def __init__(self, display: RichDisplay, total: int) -> None:
        self.display = display
        self.total = total
        self.done = 0
        self.overall = display.add_task(self._overall(), total=total, line="")
        self.lines: dict[str, TaskID] = {}
        self.tallies: dict[str, Tally] = {}
        self._lock = threading.Lock()

    def _overall(self) -> str:
        return f"datasets {self.done}/{self.total}"

    def _show(self, dataset: str) -> None:
        tally = self.tallies.setdefault(dataset, Tally())
        line = (
            f"{tally.stage:<20} {tally.pages:>6,} pages {decimal(tally.bytes):>10} landed "
            f"{tally.rows:>12,} rows"
        )
        if dataset not in self.lines:
            self.lines[dataset] = self.display.add_task(dataset, total=None, line=line)
        else:
            self.display.update(self.lines[dataset], line=line)

    def stage(self, dataset: str, name: str) -> None:
        with self._lock:
            self.tallies.setdefault(dataset, Tally()).stage = name
            self._show(dataset)

    def page(self, dataset: str, nbytes: int) -> None:
        with self._lock:
            tally = self.tallies.setdefault(dataset, Tally())
            tally.pages += 1
            tally.bytes += nbytes
            self._show(dataset)

    def rows(self, dataset: str, n: int) -> None:
        with self._lock:
            self.tallies.setdefault(dataset, Tally()).rows += n
            self._show(dataset)

    def finished(self, dataset: str, status: str) -> None:
        with self._lock:
            self.tallies.setdefault(dataset, Tally()).stage = status
            self._show(dataset)
            self.display.update(self.lines[dataset], total=1, completed=1)
            self.done += 1
            self.display.update(self.overall, description=self._overall(), completed=self.done)


@contextmanager
def refresh_progress(total: int) -> Iterator[Progress]:
    """What a refresh of ``total`` datasets reports to: a live display on a terminal (not with
    SCDX_LOG_FORMAT=json), else log lines."""
    if not err_console.is_terminal or err_console.is_dumb_terminal or structured_logs():
        yield LogProgress(total)
        return
    display = RichDisplay(
        TextColumn("{task.description:<24}"),
        BarColumn(bar_width=20),
        TextColumn("{task.fields[line]}"),
        TimeElapsedColumn(),
        console=err_console,
    )
    with display:
        yield LiveProgress(display, total)
