"""The history in the operational catalog: contracts and runs as they are recorded, a dataset's
latest published run, the releases of a tier, and rollback (a new release from the catalog alone).
"""

from __future__ import annotations

import json
import logging
import os
import socket
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from pipelines.contracts import Contract, Registry
from pipelines.store import Release
from pipelines.store.catalog import Catalog
from pipelines.store.layout import Layout
from pipelines.store.runs import RunRecord
from pipelines.store.tiers import catalog_of, open_store, tier_of

log = logging.getLogger("scdx.publish")


def run_values(run: RunRecord, tier: str) -> dict[str, Any]:
    """A run record as a row of the catalog's runs."""
    values: dict[str, Any] = {name: getattr(run, name) for name in RunRecord.columns()}
    values["raw_sha256"] = json.dumps(list(run.raw_sha256))
    values["warnings"] = json.dumps(list(run.warnings))
    values["tier"] = tier
    values["pid"] = os.getpid()
    values["host"] = socket.gethostname()
    return values


def run_details(run: RunRecord) -> dict[str, list[dict[str, Any]]]:
    """A run's drift and unit conversions, as the catalog keeps them."""
    now = datetime.now(UTC)
    return {
        "drift": [{**event, "detected_at": now} for event in run.drift],
        "unit_conversions": [dict(c) for c in run.unit_conversions],
    }


def record_contract(catalog: Catalog, contract: Contract, registry: Registry) -> None:
    """The contract a run ran under, by version and digest (once per version)."""
    catalog.record_contract(
        {
            "dataset": contract.dataset,
            "version": contract.version,
            "sha256": registry.contract_sha256(contract.dataset),
            "title": contract.title,
            "agency": contract.provider.agency,
            "steward": contract.provider.steward,
            "classification": contract.classification,
            "recorded_at": datetime.now(UTC),
        }
    )


def record_run(run: RunRecord, contract: Contract, registry: Registry, layout: Layout) -> None:
    """Record a run (at its start, and whenever it ends without a release) in the catalog only:
    a run that publishes nothing makes no release."""
    catalog = catalog_of(layout)
    record_contract(catalog, contract, registry)
    catalog.record_run(run_values(run, tier_of(contract)), run_details(run))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def begin_run(
    run: RunRecord, contract: Contract, registry: Registry, layout: Layout, owned_by_process: bool = True
) -> None:
    """Record a run as ``running`` when it starts; runs on this host whose process is gone (killed)
    become ``abandoned`` first, so every run ends in a terminal status.

    ``owned_by_process=False``: the run spans several processes (Airflow's tasks, each its own),
    so no process's end says it was abandoned: Airflow's retries and its failure handling end it.
    """
    catalog = catalog_of(layout)
    for run_id in catalog.abandon_dead_runs(_alive):
        log.warning("run %s was killed before it could record its outcome: marked abandoned", run_id)
    open_store(layout, tier_of(contract)).heal()
    record_contract(catalog, contract, registry)
    values = run_values(run, tier_of(contract))
    if not owned_by_process:
        values.update(pid=None, host="airflow")
    catalog.record_run(values, run_details(run))


@dataclass(frozen=True)
class PublishedRun:
    """The dataset's latest published run: what it fetched and under which contract."""

    run_id: str
    window_start: date | None
    window_end: date | None
    raw_sha256: tuple[str, ...]
    contract_version: str
    contract_sha256: str | None
    publish_version: int
    rolled_back_since: bool


def latest_published_run(layout: Layout, contract: Contract) -> PublishedRun | None:
    """The dataset's most recent published run (None before the first publish), from the catalog."""
    catalog = catalog_of(layout)
    published = [r for r in catalog.runs(contract.dataset, "published") if r["publish_version"] is not None]
    if not published:
        return None
    row = max(published, key=lambda r: (r["publish_version"], r["started_at"]))
    sha = catalog.contract_sha256(contract.dataset, row["contract_version"])
    rolled_back = any(
        r["kind"] == "rollback" and r["number"] > row["publish_version"]
        for r in catalog.releases(tier_of(contract))
    )
    return PublishedRun(
        run_id=row["run_id"],
        window_start=row["window_start"],
        window_end=row["window_end"],
        raw_sha256=tuple(json.loads(row["raw_sha256"] or "[]")),
        contract_version=row["contract_version"],
        contract_sha256=sha,
        publish_version=int(row["publish_version"]),
        rolled_back_since=rolled_back,
    )


def list_publishes(layout: Layout, tier: str = "public") -> list[Release]:
    """Every release of the tier, newest first."""
    return list(reversed(open_store(layout, tier).releases()))


def rollback(
    layout: Layout, to_version: int | None = None, tier: str = "public", keep_versions: int = 10
) -> tuple[int, int]:
    """A new release restoring release ``to_version``'s tables (default: the one before the current);
    returns (new release, restored release). Works from the catalog alone: the current release's
    file may be damaged or gone."""
    release = open_store(layout, tier, keep_versions).rollback(to_version)
    log.info("%s tier: release %d restores release %s", tier, release.number, release.restored)
    return release.number, int(release.restored or 0)
