"""How far a refresh has come, told to whoever watches: the steps report events through
:class:`Progress`, and the caller chooses who hears them (passed down explicitly, never global).

The command line shows a live display on a terminal (pipelines.cli.progress) and log lines
otherwise; the Airflow task bodies pass :class:`LogProgress`, so the task log tells the same
story; a caller that passes nothing gets :data:`NO_PROGRESS`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol, TypeVar


class _Page(Protocol):
    @property
    def size(self) -> int: ...


class _Batch(Protocol):
    @property
    def num_rows(self) -> int: ...


P = TypeVar("P", bound=_Page)
B = TypeVar("B", bound=_Batch)

log = logging.getLogger("scdx.progress")


class Progress(Protocol):
    """What a refresh reports as it goes (called from the step's thread or a read-ahead thread)."""

    def stage(self, dataset: str, name: str) -> None:
        """The dataset's run entered a stage (extract, normalize, validate, publish)."""
        ...

    def page(self, dataset: str, nbytes: int) -> None:
        """One response of ``nbytes`` bytes was fetched and landed."""
        ...

    def rows(self, dataset: str, n: int) -> None:
        """``n`` more rows were normalized and staged."""
        ...

    def finished(self, dataset: str, status: str) -> None:
        """The dataset's run ended with ``status`` (published, unchanged, failed ...)."""
        ...


class NoProgress:
    """Reports nothing."""

    def stage(self, dataset: str, name: str) -> None:
        pass

    def page(self, dataset: str, nbytes: int) -> None:
        pass

    def rows(self, dataset: str, n: int) -> None:
        pass

    def finished(self, dataset: str, status: str) -> None:
        pass


NO_PROGRESS: Progress = NoProgress()


@dataclass
class Tally:
    """What one dataset's run has done so far."""

    stage: str = "waiting"
    pages: int = 0
    bytes: int = 0
    rows: int = 0

    def describe(self) -> str:
        return f"{self.pages:,} pages, {self.bytes:,} bytes, {self.rows:,} rows"


class LogProgress:
    """Progress as plain log lines: one when a stage starts and one when the run ends (each page
    at DEBUG), each carrying the dataset as a field for structured logs."""

    def __init__(self, total: int | None = None) -> None:
        self.total = total
        self.done = 0
        self.tallies: dict[str, Tally] = {}
        self._lock = threading.Lock()

    def _tally(self, dataset: str) -> Tally:
        return self.tallies.setdefault(dataset, Tally())

    def stage(self, dataset: str, name: str) -> None:
        with self._lock:
            tally = self._tally(dataset)
            tally.stage = name
            so_far = f" ({tally.describe()} so far)" if tally.pages or tally.rows else ""
        log.info("%s: %s%s", dataset, name, so_far, extra={"dataset": dataset, "stage": name})

    def page(self, dataset: str, nbytes: int) -> None:
        with self._lock:
            tally = self._tally(dataset)
            tally.pages += 1
            tally.bytes += nbytes
            pages, total = tally.pages, tally.bytes
        log.debug(
            "%s: page %d, %d bytes (%d in all)", dataset, pages, nbytes, total, extra={"dataset": dataset}
        )

    def rows(self, dataset: str, n: int) -> None:
        with self._lock:
            self._tally(dataset).rows += n

    def finished(self, dataset: str, status: str) -> None:
        with self._lock:
            self.done += 1
            summary = self._tally(dataset).describe()
            count = f" ({self.done} of {self.total} datasets)" if self.total else ""
        log.info(
            "%s: %s, %s%s", dataset, status, summary, count, extra={"dataset": dataset, "status": status}
        )


def counted_pages(pages: Iterable[P], progress: Progress, dataset: str) -> Iterator[P]:
    """The pages as they are, each reported (its ``size``) once the consumer is done with it."""
    for page in pages:
        size = page.size  # measured before landing moves a spooled body
        yield page
        progress.page(dataset, size)


def counted_rows(batches: Iterable[B], progress: Progress, dataset: str) -> Iterator[B]:
    """The record batches as they are, each one's rows reported as it is handed on."""
    for batch in batches:
        progress.rows(dataset, batch.num_rows)
        yield batch
