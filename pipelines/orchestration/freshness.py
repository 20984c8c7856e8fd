"""Freshness: is a dataset's published data as recent as its contract's SLA promises?

For an incremental dataset the age is measured on the data (as-of date minus the latest period
published); for a snapshot dataset, on the last successful publish. A late dataset is reported
(the Airflow check task fails with this message; ``scdx freshness`` lists them all).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from pipelines.contracts import Contract
from pipelines.store.layout import Layout
from pipelines.store.tiers import catalog_of, last_published


@dataclass(frozen=True)
class Freshness:
    dataset: str
    as_of: date
    latest: date | None
    basis: str  # "data" (latest period) or "publish" (last successful publish)
    age_days: int | None
    max_age_days: int | None
    # Why the age is measured on ``as_of`` and not on the day asked about (replaying), if it is not.
    as_of_note: str | None = None

    @property
    def late(self) -> bool:
        if self.max_age_days is None:
            return False
        return self.age_days is None or self.age_days > self.max_age_days

    def describe(self) -> str:
        if self.max_age_days is None:
            return f"{self.dataset}: no freshness SLA"
        if self.latest is None:
            return f"{self.dataset}: LATE, nothing published yet (SLA {self.max_age_days} days)"
        state = "LATE" if self.late else "fresh"
        return (
            f"{self.dataset}: {state}, latest {self.basis} {self.latest:%Y-%m-%d} is {self.age_days} days old "
            f"on {self.as_of:%Y-%m-%d}{self.as_of_note or ''} (SLA {self.max_age_days} days)"
        )


def _last_publish_date(contract: Contract, layout: Layout) -> date | None:
    """When the dataset last published, from the run history."""
    finished = [
        r["finished_at"] for r in catalog_of(layout).runs(contract.dataset, "published") if r["finished_at"]
    ]
    if not finished:
        return None
    latest: datetime = max(finished)
    return (latest if latest.tzinfo else latest.replace(tzinfo=UTC)).astimezone(UTC).date()


def check_freshness(
    contract: Contract, layout: Layout, as_of: date, recorded_as_of: date | None = None
) -> Freshness:
    """How old the dataset's published data is on ``as_of``, against its SLA.

    ``recorded_as_of``: replaying, the day the recordings stand for (pipelines.replay.as_of). The
    data of a replayed run can be no newer than its recordings, so an incremental dataset's age is
    measured on that day when ``as_of`` is later: offline, a run on any later day (a newly
    unpaused DAG's first scheduled run) judges the data as the day they were recorded would.
    """
    sla = contract.freshness.max_age_days if contract.freshness else None
    cursor = contract.source.incremental
    note = None
    if cursor is not None:
        latest, basis = last_published(layout, contract, cursor.field), "data"
        if recorded_as_of is not None and recorded_as_of < as_of:
            note = f", the day the recordings stand for (replaying on {as_of:%Y-%m-%d})"
            as_of = recorded_as_of
    else:
        latest, basis = _last_publish_date(contract, layout), "publish"
    age = (as_of - latest).days if latest is not None else None
    return Freshness(contract.dataset, as_of, latest, basis, age, sla, note)
