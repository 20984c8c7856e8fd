"""What every step runs under: one writer per dataset, and a run record that always ends.

A run is recorded when it starts; whatever error ends a step (or a signal between steps) is
recorded as the run's terminal status on the way out, and the error goes on unchanged.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pipelines.common.errors import ScdxError
from pipelines.common.redact import redact_text
from pipelines.common.settings import Settings
from pipelines.contracts import Contract, Registry
from pipelines.store.history import record_run
from pipelines.store.layout import Layout, new_run_id
from pipelines.store.locks import file_lock
from pipelines.store.runs import RunInterrupted, RunRecord

if TYPE_CHECKING:
    pass


log = logging.getLogger("scdx.refresh")


@contextmanager
def dataset_guard(contract: Contract, settings: Settings) -> Iterator[None]:
    """One writer of a dataset's run files at a time (CLI run or Airflow task), and a clean slate:
    what a crashed earlier run left half-written (staging, validation scratch) is removed first.
    A restricted dataset's run files (raw, staged, reports, quarantine) are its owner's only."""
    layout = Layout(settings.data_dir)
    previous_umask = os.umask(0o077) if contract.classification == "restricted" else None
    try:
        with file_lock(
            layout.dataset_lock(contract.dataset),
            settings.dataset_lock_timeout_s,
            contract.dataset,
        ):
            for leftover in layout.stale_temporaries(contract.dataset):
                log.warning("%s: removing %s left by an interrupted run", contract.dataset, leftover)
                if leftover.is_dir():
                    shutil.rmtree(leftover, ignore_errors=True)
                else:
                    leftover.unlink(missing_ok=True)
            yield
    finally:
        if previous_umask is not None:
            os.umask(previous_umask)


def start_run(contract: Contract, run_id: str | None = None) -> RunRecord:
    return RunRecord(
        run_id=run_id or new_run_id(),
        dataset=contract.dataset,
        contract_version=contract.version,
        started_at=datetime.now(UTC),
    )


@contextmanager
def failure_recorded(
    run: RunRecord,
    contract: Contract,
    registry: Registry,
    settings: Settings,
    unless: type[Exception] | None = None,
) -> Iterator[None]:
    """Record a step's failure in the run history (redacted), whatever it was, then let it go on.

    ``unless``: an error the caller handles (and records) itself. The step runs under the
    dataset's guard (one writer of its run files at a time). Nothing is caught here: the outcome
    is recorded on the way out while the error propagates unchanged.
    """
    completed = False
    try:
        with dataset_guard(contract, settings):
            yield
        completed = True
    finally:
        error = None if completed else sys.exc_info()[1]
        if error is not None and not (unless is not None and isinstance(error, unless)):
            _finish_failed(run, error)
            record_outcome(run, contract, registry, settings)


def _finish_failed(run: RunRecord, error: BaseException) -> None:
    """The terminal status a step's error gives its run: interrupted by a signal, blocked by the
    publish audit, or failed."""
    if isinstance(error, (KeyboardInterrupt, RunInterrupted)):
        run.finish("interrupted", error=f"interrupted by {getattr(error, 'signal_name', 'SIGINT')}")
    else:
        run.finish(
            getattr(error, "run_status", "failed"), error=redact_text(f"{type(error).__name__}: {error}")
        )


@contextmanager
def interrupts_recorded(
    run: RunRecord, contract: Contract, registry: Registry, settings: Settings
) -> Iterator[None]:
    """A signal between steps still ends the run as interrupted (a step records its own)."""
    try:
        yield
    except (KeyboardInterrupt, RunInterrupted) as exc:
        if run.status == "running":
            _finish_failed(run, exc)
            record_outcome(run, contract, registry, settings)
        raise


def record_outcome(run: RunRecord, contract: Contract, registry: Registry, settings: Settings) -> None:
    """Record how a run ended; if even that fails (the catalog unreachable), say so in the log:
    the run stays ``running`` and the next start marks it abandoned."""
    try:
        record_run(run, contract, registry, Layout(settings.data_dir))
    except (ScdxError, OSError) as record_error:
        log.error(
            "%s: could not record the %s run %s: %s", contract.dataset, run.status, run.run_id, record_error
        )
