"""The steps of a run: extract and land (or land a file in hand), normalize and stage, validate,
publish. Each updates the run record and records a failure before it propagates; the CLI and the
Airflow task bodies call the same steps.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.common.ahead import read_ahead
from pipelines.common.errors import ScdxError
from pipelines.common.faults import crash_point
from pipelines.common.progress import NO_PROGRESS, Progress, counted_pages, counted_rows
from pipelines.common.settings import Settings
from pipelines.contracts import Contract, Registry
from pipelines.sources import DriftEvent, DriftRejected, FormatRefused, source_module
from pipelines.sources.credentials import resolve_api_key
from pipelines.sources.formats import refusal, sniff
from pipelines.sources.window import Window, incremental_window
from pipelines.stages.extract import extract
from pipelines.stages.land import FailedAttempts, LandedBatch, LandError, land, land_file, open_landed
from pipelines.stages.publish import PublishResult, publish
from pipelines.stages.quarantine import QuarantinedError, quarantine_batch, quarantine_drift
from pipelines.stages.root_files import data_root_of, put_landed, put_staged, put_tree, run_prefix
from pipelines.stages.stage import StagedBatch
from pipelines.store.history import latest_published_run, record_run
from pipelines.store.layout import Layout
from pipelines.store.runs import RunRecord
from pipelines.store.tiers import last_published

if TYPE_CHECKING:
    from pipelines.stages.normalize import NormalizeStats
    from pipelines.stages.validate import ValidationReport

from pipelines.orchestration.guards import failure_recorded

log = logging.getLogger("scdx.refresh")


FETCH_AHEAD = 1  # responses held in memory ahead of land (each at most HttpPolicy.spool_bytes)


def _fields(run: RunRecord) -> dict[str, str]:
    """The run's fields of a log line (structured logs show them as keys)."""
    return {"dataset": run.dataset, "run_id": run.run_id}


def _last_published_landing(contract: Contract, layout: Layout) -> LandedBatch | None:
    """The raw files of the dataset's latest published run, if still on disk (to share bytes with)."""
    previous = latest_published_run(layout, contract)
    if previous is None:
        return None
    try:
        return open_landed(contract.dataset, previous.run_id, layout)
    except (LandError, OSError, ValueError):
        return None  # removed by retention, or never complete: land writes every file anew


def step_extract_land(
    run: RunRecord,
    contract: Contract,
    registry: Registry,
    settings: Settings,
    base_url: str,
    window: Window | None = None,
    as_of: date | None = None,
    connection_lookup: Callable[[str], str | None] | None = None,
    progress: Progress = NO_PROGRESS,
) -> LandedBatch:
    """Decide the window, fetch every page and land it; returns the landed batch."""
    layout = Layout(settings.data_dir)
    progress.stage(contract.dataset, "extract and land")
    with failure_recorded(run, contract, registry, settings):
        if window is None:
            cursor = contract.source.incremental
            last = last_published(layout, contract, cursor.field) if cursor else None
            window = incremental_window(contract, last, as_of or datetime.now(UTC).date())
        run.window_start, run.window_end = window.start, window.end
        api_key = resolve_api_key(contract.source.auth, connection_lookup, live=settings.live)
        log.info(
            "%s run %s: window %s from %s", contract.dataset, run.run_id, window, base_url, extra=_fields(run)
        )
        failed_attempts = FailedAttempts(layout.raw_dir(contract.dataset, run.run_id) / "_failed_attempts")
        pages = extract(
            contract,
            registry,
            window,
            base_url,
            api_key,
            # A body too large for memory is spooled under the data directory, beside where it lands.
            replace(settings.http, spool_dir=settings.http.spool_dir or str(layout.work_dir)),
            rate_limited=settings.live,
            on_failed_attempt=failed_attempts,
        )
        # The next response downloads while this one is hashed and written.
        ahead = read_ahead(pages, FETCH_AHEAD, f"scdx-fetch-{contract.dataset}")
        landed = land(
            counted_pages(ahead, progress, contract.dataset),
            contract.dataset,
            run.run_id,
            layout,
            earlier=_last_published_landing(contract, layout),
        )
        _put_landed(landed, settings)
        log.info(
            "%s run %s: landed %d responses, %d bytes",
            contract.dataset,
            run.run_id,
            len(landed.pages),
            landed.total_bytes,
            extra=_fields(run),
        )
    run.raw_files = len(landed.pages)
    run.raw_bytes = landed.total_bytes
    run.raw_sha256 = landed.sha256s
    crash_point("after_land")
    return landed


def step_land_file(
    run: RunRecord,
    contract: Contract,
    registry: Registry,
    settings: Settings,
    path: Path,
    submission: dict[str, str] | None = None,
) -> LandedBatch:
    """Land a file a user downloaded by hand, in place of fetching (scdx ingest-file).

    The file must be one of the formats its source reads (pipelines.sources.formats), else it is refused
    before anything lands. A file in hand is a partial batch: nothing says it holds every row of
    what it touches, so publishing merges it (or refuses it, as the contract says). A verified
    partner ``submission`` (its partner_id and submission_id, kept in the manifest) is complete:
    it replaces the partitions it holds, which are the partner's own.
    """
    with failure_recorded(run, contract, registry, settings):
        formats = source_module(contract.source.module).FORMATS
        kind = sniff(path, whole=True)
        why = refusal(formats, kind)
        if why is not None:
            raise FormatRefused(contract.dataset, path, why)
        landed = land_file(
            path, contract.dataset, run.run_id, Layout(settings.data_dir), kind.encoding, submission
        )
        _put_landed(landed, settings)
    run.coverage, run.coverage_note = "partial", f"file in hand {path.name}"
    if submission is not None:
        run.coverage, run.coverage_note = "complete", f"partner submission {submission['submission_id']}"
    run.raw_files = len(landed.pages)
    run.raw_bytes = landed.total_bytes
    run.raw_sha256 = landed.sha256s
    log.info(
        "%s run %s: landed file %s (%d bytes)", contract.dataset, run.run_id, path.name, landed.total_bytes
    )
    crash_point("after_land")
    return landed


def _put_landed(landed: LandedBatch, settings: Settings) -> None:
    """Put the landed responses on the data root (SCDX_DATA_URL), when there is one."""
    root = data_root_of(settings)
    if root is not None:
        put = put_landed(landed, root)
        log.info(
            "%s run %s: %d new raw objects on %s",
            landed.dataset,
            landed.run_id,
            put.objects_written,
            root.url,
        )


def unchanged_upstream(run: RunRecord, contract: Contract, registry: Registry, layout: Layout) -> str | None:
    """The latest published run's id when this run landed exactly its bytes, else None.

    Same window, same responses (sha256, in order), same contract file, and no rollback since:
    normalizing and publishing again would change nothing. Checksums, not conditional requests,
    since the agencies' APIs send no validators (ETag, Last-Modified) to ask with.
    """
    if not run.raw_sha256:
        return None
    previous = latest_published_run(layout, contract)
    if (
        previous is None
        or previous.rolled_back_since
        or previous.raw_sha256 != tuple(run.raw_sha256)
        or (previous.window_start, previous.window_end) != (run.window_start, run.window_end)
        or previous.contract_version != contract.version
        or previous.contract_sha256 != registry.contract_sha256(contract.dataset)
    ):
        return None
    return previous.run_id


def step_normalize_stage(
    run: RunRecord,
    landed: LandedBatch,
    contract: Contract,
    registry: Registry,
    settings: Settings,
    restage: bool = False,
    force: bool = False,
    validating_next: bool = False,
    progress: Progress = NO_PROGRESS,
) -> StagedBatch:
    """Normalize the landed pages to contract types and stage them as Parquet.

    Drift the contract's evolution policy rejects quarantines the run (QuarantinedError) with a
    report naming the field; allowed and warned drift is kept on the run record. ``restage``: a
    retried Airflow task replaces what its killed attempt staged. When the agency sent the same
    bytes as the latest published run, the run ends as ``unchanged`` at once (``force``: normalize
    and publish anyway, e.g. after a change to the source module). ``validating_next``: this process
    validates next (a whole refresh, not an Airflow task), so GX is imported meanwhile.
    """
    layout = Layout(settings.data_dir)
    same_as = None if force else unchanged_upstream(run, contract, registry, layout)
    if same_as is not None:
        return _end_unchanged(run, contract, registry, layout, same_as)
    # Imported here: a run that stops as unchanged never loads Arrow (a tenth of its time).
    from pipelines.stages.normalize import NormalizeStats

    if validating_next:
        _warm_up_validation()
    progress.stage(contract.dataset, "normalize and stage")
    stats = NormalizeStats()
    staged = _staged(run, landed, contract, registry, settings, stats, restage, progress)
    run.drift = stats.drift_dicts()
    run.rows_staged = staged.rows
    if stats.pages == stats.empty_pages:
        # Only "no data" answers (HTTP 204, empty pages): not an error, nothing to validate or publish.
        run.finish("no_data")
        record_run(run, contract, registry, layout)
        log.info("%s run %s: no data in the window; nothing published", contract.dataset, run.run_id)
    crash_point("after_stage")
    return staged


def _end_unchanged(
    run: RunRecord, contract: Contract, registry: Registry, layout: Layout, same_as: str
) -> StagedBatch:
    """The agency sent the bytes of a published run: the run ends ``unchanged``, nothing staged."""
    run.finish("unchanged")
    record_run(run, contract, registry, layout)
    log.info(
        "%s run %s: upstream bytes identical to published run %s; nothing published",
        contract.dataset,
        run.run_id,
        same_as,
    )
    return StagedBatch(contract.dataset, run.run_id, layout.staged_dir(contract.dataset, run.run_id), (), 0)


def _warm_up_validation() -> None:
    """Start importing GX now (a whole refresh validates next), after Arrow's Parquet module, so
    the two imports do not run side by side."""
    import pyarrow.parquet  # noqa: F401

    from pipelines.stages.gx_suite import warm_up

    warm_up()


def _staged(
    run: RunRecord,
    landed: LandedBatch,
    contract: Contract,
    registry: Registry,
    settings: Settings,
    stats: NormalizeStats,
    restage: bool,
    progress: Progress = NO_PROGRESS,
) -> StagedBatch:
    """Normalize and stage the landed pages; drift the contract rejects quarantines the run."""
    from pipelines.stages.normalize import normalize
    from pipelines.stages.stage import stage

    layout, root = Layout(settings.data_dir), data_root_of(settings)
    try:
        with failure_recorded(run, contract, registry, settings, unless=DriftRejected):
            batches = normalize(landed, contract, registry, stats, scratch_dir=layout.work_dir)
            staged = stage(
                counted_rows(batches, progress, contract.dataset),
                contract,
                registry,
                run.run_id,
                layout,
                restage,
            )
            if root is not None:
                put_staged(staged, root)
            _judge_declared_count(run, contract, stats)
    except DriftRejected as rejected:
        run.drift = [*stats.drift_dicts(), asdict(rejected.event)]
        error = quarantine_drift(contract.dataset, run.run_id, str(rejected), run.drift, layout, root)
        _finish_quarantined(run, contract, registry, settings, error, rows=stats.source_rows)
        raise error from None
    finally:
        run.rows_landed = stats.source_rows
        run.unit_conversions = stats.conversion_dicts()
    return staged


class ShortBatch(ScdxError, RuntimeError):
    """The responses hold fewer records than the agency says the request has, and the contract
    refuses such a batch (publish.short_batch: refuse)."""


def _judge_declared_count(run: RunRecord, contract: Contract, stats: NormalizeStats) -> None:
    """A batch short of the agency's declared count is refused or marked partial (the contract says)."""
    declared = stats.declared_records
    if declared is None or stats.source_rows >= declared:
        return
    note = f"{stats.source_rows:,} of the {declared:,} records the agency declares"
    if contract.publish.short_batch == "refuse":
        raise ShortBatch(
            f"{contract.dataset}: the responses hold {note}; a short batch cannot replace what is "
            "published (contract publish.short_batch: refuse), nothing published"
        )
    run.coverage, run.coverage_note = "partial", note
    run.warnings.append(f"partial batch: {note}; merged by primary key, nothing removed")


def step_validate(
    run: RunRecord,
    staged: StagedBatch,
    contract: Contract,
    registry: Registry,
    settings: Settings,
    progress: Progress = NO_PROGRESS,
) -> ValidationReport:
    """Validate; a blocking failure quarantines the batch, records the run and raises QuarantinedError.

    A failed referential check is also drift of kind new_code, recorded with the action its
    severity stands for.
    """
    from pipelines.stages.validate import validate

    progress.stage(contract.dataset, "validate")
    layout, root = Layout(settings.data_dir), data_root_of(settings)
    with failure_recorded(run, contract, registry, settings):
        report = validate(staged, contract, registry, layout)
        if root is not None:
            put_tree(report.report_path.parent, run_prefix("reports", run.dataset, run.run_id), root)
    run.validation = report.outcome
    run.warnings = [*run.warnings, *(c.describe() for c in report.warnings)]
    for check in report.checks:
        if check.drift_kind and not check.success:
            action = "rejected" if check.severity == "blocking" else "warned"
            event = DriftEvent(check.column or "", check.drift_kind, action, check.describe())
            run.drift.append(asdict(event))
    if report.passed:
        crash_point("after_validate")
        return report
    with failure_recorded(run, contract, registry, settings):
        error = quarantine_batch(staged, report, layout, root)
    _finish_quarantined(run, contract, registry, settings, error, rows=staged.rows)
    raise error


def _finish_quarantined(
    run: RunRecord,
    contract: Contract,
    registry: Registry,
    settings: Settings,
    error: QuarantinedError,
    rows: int,
) -> None:
    run.rows_quarantined = rows
    run.quarantine_path = error.location
    run.finish("quarantined", error=str(error))
    record_run(run, contract, registry, Layout(settings.data_dir))


def step_publish(
    run: RunRecord,
    staged: StagedBatch,
    contract: Contract,
    registry: Registry,
    settings: Settings,
    allow_shrink: bool = False,
    progress: Progress = NO_PROGRESS,
) -> PublishResult:
    """Publish the validated batch into a new version of the curated database (audited first:
    ``allow_shrink`` lets it remove more rows than the contract's max_shrink_pct)."""
    progress.stage(contract.dataset, "publish")
    with failure_recorded(run, contract, registry, settings):
        layout, root = Layout(settings.data_dir), data_root_of(settings)
        return publish(staged, contract, registry, layout, run, settings.keep_versions, allow_shrink, root)
