"""The bodies of the Airflow tasks (the ingest steps, the report after the marts, the partner inbox), callable (and tested) without Airflow.

Each task gets the run record of the previous one (a small JSON dict, via XCom), does one step
of pipelines.orchestration.refresh and returns the updated record. Paths are derived from the dataset and run
id, never passed around, so a retried task finds exactly what the earlier one wrote.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any, TypeVar

from pipelines.common.progress import LogProgress
from pipelines.common.settings import Settings, load_settings
from pipelines.contracts import Contract, Registry, SecretRef, load_partners, load_registry
from pipelines.orchestration.dag_support import PUBLISH_POOL
from pipelines.orchestration.guards import start_run
from pipelines.orchestration.inbox import inbox_dir, ingest_inbox, pending_partners
from pipelines.orchestration.steps import (
    step_extract_land,
    step_normalize_stage,
    step_publish,
    step_validate,
)
from pipelines.sources.window import interval_window
from pipelines.stages.land import open_landed
from pipelines.stages.root_files import data_root_of, fetch_landed, fetch_staged
from pipelines.stages.stage import open_staged
from pipelines.store.data_root import DataRoot
from pipelines.store.history import begin_run
from pipelines.store.layout import Layout
from pipelines.store.runs import NOTHING_TO_PUBLISH, RunRecord
from pipelines.store.tiers import last_published

Files = TypeVar("Files")


def _load(dataset: str) -> tuple[Settings, Registry, Contract]:
    settings = load_settings()
    registry = load_registry(settings.schemas_dir)
    return settings, registry, registry.get(dataset)


def extract_and_land(
    dataset: str,
    base_url: str,
    interval_start: date | None = None,
    interval_end: date | None = None,
    connection_lookup: Callable[[str], str | None] | None = None,
) -> dict[str, Any]:
    """Start a run, fetch the months its data interval covers (plus lookback) from ``base_url``
    (the agency, or a replay server: the caller chooses, pipelines.replay.endpoints), land every
    response."""
    settings, registry, contract = _load(dataset)
    run = start_run(contract)
    begin_run(run, contract, registry, Layout(settings.data_dir), owned_by_process=False)
    window = None
    if interval_end is not None:
        cursor = contract.source.incremental
        last = last_published(Layout(settings.data_dir), contract, cursor.field) if cursor else None
        window = interval_window(contract, last, interval_start or interval_end, interval_end)
    step_extract_land(
        run,
        contract,
        registry,
        settings,
        base_url,
        window=window,
        connection_lookup=connection_lookup,
        progress=LogProgress(),
    )
    return run.to_dict()


@contextmanager
def _run_files(
    run: RunRecord,
    settings: Settings,
    from_root: Callable[[str, str, DataRoot, Path], Files],
    from_disk: Callable[[str, str, Layout], Files],
) -> Iterator[Files]:
    """What an earlier task of the run wrote: from the data root (SCDX_DATA_URL) into a directory of
    this task's own, since that task may have run on another host; else from the data directory."""
    root = data_root_of(settings)
    if root is None:
        yield from_disk(run.dataset, run.run_id, Layout(settings.data_dir))
        return
    with TemporaryDirectory(prefix=f"scdx-{run.dataset}-") as scratch:
        yield from_root(run.dataset, run.run_id, root, Path(scratch))


def normalize_and_stage(run_state: dict[str, Any]) -> dict[str, Any]:
    """Normalize the run's landed pages and stage them as Parquet."""
    run = RunRecord.from_dict(run_state)
    settings, registry, contract = _load(run.dataset)
    with _run_files(run, settings, fetch_landed, open_landed) as landed:
        # A retry after a killed attempt re-stages the same raw pages (staging is derived, never landed).
        step_normalize_stage(run, landed, contract, registry, settings, restage=True, progress=LogProgress())
    return run.to_dict()


def _on_staged(run_state: dict[str, Any], step: Callable[..., object], **options: Any) -> dict[str, Any]:
    run = RunRecord.from_dict(run_state)
    settings, registry, contract = _load(run.dataset)
    with _run_files(run, settings, fetch_staged, open_staged) as staged:
        step(run, staged, contract, registry, settings, progress=LogProgress(), **options)
    return run.to_dict()


def validate(run_state: dict[str, Any]) -> dict[str, Any]:
    """Validate the staged batch; raises QuarantinedError (batch quarantined, run recorded) on failure."""
    return _on_staged(run_state, step_validate)


def publish(run_state: dict[str, Any], allow_shrink: bool = False) -> dict[str, Any]:
    """Publish the validated batch (with the marts built from it) as the tier's next release;
    ``allow_shrink`` lets it remove more rows than the contract's max_shrink_pct."""
    return _on_staged(run_state, step_publish, allow_shrink=allow_shrink)


def has_data(run_state: dict[str, Any]) -> bool:
    """False when the run found nothing in its window, or nothing new upstream (validate and
    publish are then skipped)."""
    return run_state.get("status") not in NOTHING_TO_PUBLISH


def check_freshness(dataset: str, as_of: date) -> dict[str, Any]:
    """Freshness of the dataset on ``as_of``; the caller fails the task when it is late.

    Replaying (not live), an incremental dataset is judged on the day its recordings stand for
    when ``as_of`` is later (recordings/as_of.yaml): offline, a first scheduled run is green."""
    from pipelines.orchestration.freshness import check_freshness as measure
    from pipelines.replay.as_of import recordings_as_of

    settings, _, contract = _load(dataset)
    recorded = None if settings.live else recordings_as_of(settings.recordings_dir, contract.source.module)
    report = measure(contract, Layout(settings.data_dir), as_of, recorded)
    return {
        "dataset": dataset,
        "late": report.late,
        "message": report.describe(),
        "age_days": report.age_days,
    }


def refresh_report() -> dict[str, Any]:
    """Write the risk report of the current public release where `scdx report` writes it
    (``$SCDX_DATA_DIR/report/index.html``); returns its path."""
    from pipelines.report import write_report

    settings = load_settings()
    index = write_report(settings, settings.data_dir / "report")
    return {"report": str(index)}


def materialize_public() -> dict[str, Any]:
    """Write the current public release once more as DuckDB tables for analysts (``scdx publish
    materialize``); returns the release and how long it took (nothing when already done)."""
    from pipelines.store.layout import Layout
    from pipelines.store.tiers import materialize_current

    settings = load_settings()
    done = materialize_current(Layout(settings.data_dir), "public", settings.keep_versions)
    if done is None:
        return {"release": None}
    return {"release": done.release, "made": done.made, "seconds": round(done.seconds, 2)}


def waiting_partner_secrets() -> dict[str, SecretRef]:
    """Where the keys of the partners with submissions waiting in the inbox are (partner id ->
    its env variable and Airflow connection): the keys an ingest of the inbox will need."""
    settings = load_settings()
    waiting = pending_partners(inbox_dir(settings))
    return {p.id: p.secret for p in load_partners(settings.schemas_dir).partners if p.id in waiting}


def ingest_partner_inbox(keys: Mapping[str, bytes]) -> dict[str, Any]:
    """Verify and ingest every partner submission waiting in the inbox (what ``scdx partner
    ingest`` does) with the signing keys the caller resolved (partner id -> key).

    Returns the datasets published into the restricted tier and each submission's status by
    submission id and dataset, never a partner id or a refusal's reason (those stay in the
    inbox's ``refused/<id>/reason.txt``): the record goes to Airflow's metadata database."""
    settings = load_settings()
    registry = load_registry(settings.schemas_dir)
    partners = load_partners(settings.schemas_dir, set(registry.contracts))
    outcomes = ingest_inbox(settings, registry, partners, keys)
    return {
        "published": sorted({o.dataset for o in outcomes if o.status == "published"}),
        "submissions": [
            {"submission_id": o.submission_id, "dataset": o.dataset, "status": o.status} for o in outcomes
        ],
    }


def airflow_pools(registry: Registry) -> dict[str, dict[str, Any]]:
    """Airflow pools, in ``airflow pools import`` format: one per agency API, sized to its
    documented concurrency, and the one-slot publish pool (one process writes a database)."""
    pools: dict[str, dict[str, Any]] = {
        PUBLISH_POOL: {"slots": 1, "description": "scdx: publishing is serialized", "include_deferred": False}
    }
    for contract in sorted(registry.contracts.values(), key=lambda c: c.dataset):
        source = contract.source
        slots = source.rate_limit.concurrent_requests if source.rate_limit else 1
        entry = pools.setdefault(
            source.pool_name,
            {
                "slots": slots,
                "description": f"scdx: {contract.provider.agency} API ({source.base_url})",
                "include_deferred": False,
            },
        )
        entry["slots"] = min(int(entry["slots"]), slots)
    return pools
