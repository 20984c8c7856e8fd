"""A refresh of one dataset: extract -> land -> normalize -> stage -> validate -> publish.

The four steps below are what both the CLI (``refresh_dataset``) and the Airflow tasks call; each
updates the run record, and a failure is recorded in ``meta.runs`` before it propagates.
"""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

from pipelines.common.progress import NO_PROGRESS, Progress
from pipelines.common.settings import Settings
from pipelines.contracts import Contract, Registry
from pipelines.orchestration.guards import dataset_guard, interrupts_recorded, start_run
from pipelines.orchestration.steps import (
    step_extract_land,
    step_land_file,
    step_normalize_stage,
    step_publish,
    step_validate,
)
from pipelines.sources.window import Window
from pipelines.store.history import begin_run
from pipelines.store.layout import Layout
from pipelines.store.runs import NOTHING_TO_PUBLISH, RunRecord

log = logging.getLogger("scdx.refresh")


def refresh_dataset(
    contract: Contract,
    registry: Registry,
    settings: Settings,
    base_url: str,
    window: Window | None = None,
    as_of: date | None = None,
    run: RunRecord | None = None,
    force: bool = False,
    allow_shrink: bool = False,
    progress: Progress = NO_PROGRESS,
) -> RunRecord:
    """The whole refresh of one dataset; returns its run record or raises (run recorded either way).

    Pass ``run`` (from :func:`start_run`) to keep hold of the record when the refresh raises.
    ``force``: normalize and publish even when the upstream bytes are unchanged. ``allow_shrink``:
    publish even when it removes more rows than the contract's max_shrink_pct. ``progress``: told
    each stage, page and batch of rows as the run goes.
    """
    run = run or start_run(contract)
    with interrupts_recorded(run, contract, registry, settings), dataset_guard(contract, settings):
        begin_run(run, contract, registry, Layout(settings.data_dir))
        landed = step_extract_land(
            run, contract, registry, settings, base_url, window=window, as_of=as_of, progress=progress
        )
        staged = step_normalize_stage(
            run, landed, contract, registry, settings, force=force, validating_next=True, progress=progress
        )
        if run.status in NOTHING_TO_PUBLISH:
            return run
        step_validate(run, staged, contract, registry, settings, progress)
        step_publish(run, staged, contract, registry, settings, allow_shrink, progress)
    log.info(
        "%s run %s: published %d rows (release %s)",
        contract.dataset,
        run.run_id,
        run.rows_published,
        run.publish_version,
        extra={"dataset": contract.dataset, "run_id": run.run_id},
    )
    return run


def ingest_file(
    contract: Contract,
    registry: Registry,
    settings: Settings,
    path: Path,
    run: RunRecord | None = None,
    allow_shrink: bool = False,
    submission: dict[str, str] | None = None,
) -> RunRecord:
    """The same land -> normalize -> stage -> validate -> publish path, for a file in hand
    (``submission``: a verified partner submission, see pipelines.orchestration.inbox)."""
    run = run or start_run(contract)
    with interrupts_recorded(run, contract, registry, settings), dataset_guard(contract, settings):
        begin_run(run, contract, registry, Layout(settings.data_dir))
        landed = step_land_file(run, contract, registry, settings, path, submission)
        staged = step_normalize_stage(run, landed, contract, registry, settings, validating_next=True)
        if run.status in NOTHING_TO_PUBLISH:
            return run
        step_validate(run, staged, contract, registry, settings)
        step_publish(run, staged, contract, registry, settings, allow_shrink)
    return run


__all__ = ["ingest_file", "refresh_dataset"]
