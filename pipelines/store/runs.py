"""The record of one run of one dataset, as stored in ``meta.runs``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, date, datetime
from typing import Any

# no_data: every response of the window said "nothing for this period" (e.g. months not yet
# released); nothing is validated or published, and the freshness check decides if that is late.
# unchanged: the agency sent exactly the bytes the latest published run landed (same window, same
# contract), so normalizing and publishing again would change nothing; nothing is published.
# blocked: publishing would have removed more of a table than the contract allows (max_shrink_pct),
# or a partial batch the contract refuses; nothing published, the message gives the numbers.
# interrupted: SIGINT or SIGTERM ended it (recorded on the way out); abandoned: found running at a
# later start, its process gone (kill -9, a lost machine).
RUN_STATUSES = (
    "running",
    "published",
    "quarantined",
    "blocked",
    "failed",
    "no_data",
    "unchanged",
    "interrupted",
    "abandoned",
)
NOTHING_TO_PUBLISH = ("no_data", "unchanged")
DETAIL_LISTS = ("drift", "unit_conversions")


class RunInterrupted(BaseException):
    """SIGTERM reached a run (SIGINT arrives as KeyboardInterrupt): it ends as ``interrupted``.

    A BaseException, like KeyboardInterrupt, so that no handler of ordinary errors swallows it.
    """

    def __init__(self, signal_name: str, exit_code: int) -> None:
        super().__init__(f"interrupted by {signal_name}")
        self.signal_name = signal_name
        self.exit_code = exit_code


@dataclass
class RunRecord:
    """What happened in a run: counts at each stage, checksums, outcome and error."""

    run_id: str
    dataset: str
    contract_version: str
    started_at: datetime
    status: str = "running"
    finished_at: datetime | None = None
    window_start: date | None = None
    window_end: date | None = None
    rows_landed: int = 0
    rows_staged: int = 0
    rows_published: int = 0
    rows_quarantined: int = 0
    raw_files: int = 0
    raw_bytes: int = 0
    raw_sha256: list[str] = field(default_factory=list)
    validation: str | None = None
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    quarantine_path: str | None = None
    publish_version: int | None = None
    # complete: the batch holds every row of what it replaces (the contract's own requests);
    # partial: it may not (a file in hand, fewer records than the agency declares), so publishing
    # merges it by primary key or refuses it (the contract's publish.partial). coverage_note says why.
    coverage: str = "complete"
    coverage_note: str | None = None
    # Rows of the curated table before and after this run's publish (the write-audit-publish check).
    table_rows_before: int | None = None
    table_rows_after: int | None = None
    # Kept in their own tables (meta.schema_drift, meta.unit_conversions), not in meta.runs.
    drift: list[dict[str, Any]] = field(default_factory=list)
    unit_conversions: list[dict[str, Any]] = field(default_factory=list)

    def finish(self, status: str, error: str | None = None) -> RunRecord:
        """Mark the run finished now with ``status`` (and the error that ended it, if any)."""
        if status not in RUN_STATUSES:
            raise ValueError(f"unknown run status {status!r}")
        self.status = status
        self.error = error
        self.finished_at = datetime.now(UTC)
        return self

    @property
    def seconds(self) -> float:
        end = self.finished_at or datetime.now(UTC)
        return (end - self.started_at).total_seconds()

    @classmethod
    def columns(cls) -> list[str]:
        """The columns of meta.runs, in order."""
        return [f.name for f in fields(cls) if f.name not in DETAIL_LISTS]

    def drift_summary(self) -> str:
        """e.g. "2 (1 rejected)" for the refresh summary; "-" when the source matched the contract."""
        if not self.drift:
            return "-"
        actions: dict[str, int] = {}
        for event in self.drift:
            actions[event["action"]] = actions.get(event["action"], 0) + 1
        return f"{len(self.drift)} (" + ", ".join(f"{n} {a}" for a, n in sorted(actions.items())) + ")"

    def values(self) -> list[Any]:
        return [getattr(self, name) for name in self.columns()]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (Airflow XCom)."""
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, (datetime, date)):
                data[key] = value.isoformat()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        values = dict(data)
        for key in ("started_at", "finished_at"):
            if values.get(key):
                values[key] = datetime.fromisoformat(values[key])
        for key in ("window_start", "window_end"):
            if values.get(key):
                values[key] = date.fromisoformat(values[key])
        return cls(**values)


RUNS_DDL = """
CREATE TABLE IF NOT EXISTS meta.runs (
    run_id VARCHAR NOT NULL,
    dataset VARCHAR NOT NULL,
    contract_version VARCHAR NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    status VARCHAR NOT NULL,
    finished_at TIMESTAMPTZ,
    window_start DATE,
    window_end DATE,
    rows_landed BIGINT,
    rows_staged BIGINT,
    rows_published BIGINT,
    rows_quarantined BIGINT,
    raw_files INTEGER,
    raw_bytes BIGINT,
    raw_sha256 VARCHAR[],
    validation VARCHAR,
    warnings VARCHAR[],
    error VARCHAR,
    quarantine_path VARCHAR,
    publish_version INTEGER,
    coverage VARCHAR,
    coverage_note VARCHAR,
    table_rows_before BIGINT,
    table_rows_after BIGINT
)
"""

# Columns added to meta.runs after its first release, for databases published before them.
RUNS_MIGRATIONS = [
    "ALTER TABLE meta.runs ADD COLUMN IF NOT EXISTS coverage VARCHAR",
    "ALTER TABLE meta.runs ADD COLUMN IF NOT EXISTS coverage_note VARCHAR",
    "ALTER TABLE meta.runs ADD COLUMN IF NOT EXISTS table_rows_before BIGINT",
    "ALTER TABLE meta.runs ADD COLUMN IF NOT EXISTS table_rows_after BIGINT",
]

DRIFT_DDL = """
CREATE TABLE IF NOT EXISTS meta.schema_drift (
    run_id VARCHAR NOT NULL,
    dataset VARCHAR NOT NULL,
    field VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    action VARCHAR NOT NULL,
    detail VARCHAR,
    detected_at TIMESTAMPTZ NOT NULL
)
"""

CONVERSIONS_DDL = """
CREATE TABLE IF NOT EXISTS meta.unit_conversions (
    run_id VARCHAR NOT NULL,
    dataset VARCHAR NOT NULL,
    field VARCHAR NOT NULL,
    from_unit VARCHAR NOT NULL,
    to_unit VARCHAR NOT NULL,
    factor DOUBLE NOT NULL,
    rows BIGINT NOT NULL,
    file VARCHAR
)
"""
