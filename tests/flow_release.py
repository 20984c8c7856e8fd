"""A data directory on the real FLOW path, for the tests of what reads the public partner
aggregates: the recorded BTS export ingested through the file path, then every partner's generated
submission signed, submitted to the inbox and ingested (``scdx demo``'s partner leg), which
publishes the disclosure-controlled aggregates and rebuilds the marts that read them."""

from __future__ import annotations

from pathlib import Path

from pipelines.cli.flow_demo import submit_and_ingest
from pipelines.common.settings import Settings
from pipelines.contracts import Registry
from pipelines.orchestration.refresh import ingest_file

from .conftest import RECORDINGS, SCHEMAS

BTS_EXPORT = RECORDINGS / "bts_border_crossing" / "border_crossing_entry_data_socrata_export_head40.csv"


def ingest_recorded_bts(registry: Registry, settings: Settings) -> None:
    """The recorded BTS border-crossing export through the real file path (marts rebuilt)."""
    ingest_file(registry.get("bts_border_crossings"), registry, settings, BTS_EXPORT)


def flow_release(registry: Registry, data_dir: Path) -> Settings:
    """Settings of a new data directory holding the recorded BTS export and the partners' public
    aggregates with the marts built on both."""
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = Settings(data_dir=data_dir, schemas_dir=SCHEMAS, recordings_dir=RECORDINGS)
    ingest_recorded_bts(registry, settings)
    outcomes = submit_and_ingest(settings)
    assert {o.status for o in outcomes} == {"published"}, [(o.submission_id, o.status) for o in outcomes]
    return settings
